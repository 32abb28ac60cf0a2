"""Honest numbers on two generated domains: label-count curves on a held-out test split, over seeds.

    python benchmarks/bench_curves.py [--scenes parts,house] [--per-class 150] [--sizes 10,30,all]
                                      [--seeds 0,1,2] [--epochs 12] [--json benchmarks/results/curves.json]

For each scene (``parts``: daisies among look-alikes that differ by a part, ``ontologies/daisy.yaml``;
``house``: houses among look-alike buildings, ``ontologies/house.yaml``), ``--per-class`` images per
class are generated, segmented by the default weight-free segmenter and labelled from the ground-truth
part masks, then split once by image, class-stratified, into train / validation / test (20% of the
smaller class each for validation and test, as many of each class: the workspace defaults). For each
number ``k`` of labelled training images per class and each seed, ``k`` training images per class are
drawn with that seed and every method is trained on exactly those images, its choices made on the
validation images (early stopping, thresholds, regularisation), and scored on the test images, which
nothing else reads:

- ``hybrid_segments``: part nets / rules on the segments of those images, composites bottom-up
  (supervision: segment labels and image labels);
- ``cnn_per_net``: the end-to-end CNN with one part net's budget (< 1000 parameters; 64² images; image labels);
- ``cnn_total``: the same CNN widened to the hybrid's total parameter count, on 128² images
  (image labels);
- ``colour_histogram``, ``colour_layout``: part-blind baselines (image labels), which say whether the
  data set can be solved without parts;
- ``hybrid_prototype`` (only with ``--methods``): the source study's convolutional composition.

Each point gives the test balanced accuracy (median and range over the seeds) and a paired bootstrap
interval of hybrid − CNN (total budget) on the test images, seeds averaged per image; the labelling time
under stated assumptions (:data:`LABEL_SECONDS`). With all labels, for every seed: the ablation of every
concept and the shuffled-labels control (rules refitted); for the first seed, the swap of every net.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]  # + this checkout
from _common import (  # noqa: E402
    RESULTS,
    SEEDS,
    Prepared,
    finish,
    md_table,
    pct,
    summarize,
)

from workbench.errors import WorkbenchError  # noqa: E402

__all__ = ["LABEL_SECONDS", "measured_segment_seconds", "run", "table"]

METHODS = ("hybrid_segments", "cnn_per_net", "cnn_total", "colour_histogram", "colour_layout")
OPTIONAL_METHODS = ("hybrid_prototype",)
SCENES = ("parts", "house")

#: Seconds per labelling action: stated assumptions, with where they come from. The labeler records
#: real timings (``LabelStore.set_label(..., elapsed_ms=)``), so a user can put in their own.
LABEL_SECONDS: dict[str, Any] = {
    "image_label_s": 1.0,
    "segment_label_s": 2.4,
    "source": (
        "Bearman, Russakovsky, Ferrari, Fei-Fei, 'What's the Point: Semantic Segmentation with Point "
        "Supervision', ECCV 2016, Table 1 (annotation times measured on PASCAL VOC): an image-level "
        "label takes ~1 s per class; pointing at an object instance takes ~2.4 s. Here an image label "
        "is one yes/no class decision (1 s) and a segment label is one click on a segment plus a "
        "concept choice, taken as one point annotation (2.4 s)."
    ),
    "counted": (
        "training images only (validation and test images are labelled alike for every method). Hybrid, "
        "'every segment': each labelled segment (concept or 'none') costs one segment action, plus "
        "one image label; 'parts only': only segments labelled with a concept cost an action, the "
        "rest of the image is marked 'none' in one action. Baseline: one image label per image."
    ),
}


def _subset(p: Prepared, keep: np.ndarray) -> tuple[Any, Any, list]:
    """The image and segment tables restricted to image rows ``keep`` (sorted), re-indexed."""
    from workbench.models.train import ImageTable, SegmentTable

    keep = np.sort(np.asarray(keep, dtype=np.int64))
    imgs, segs = p.images, p.segments
    new_index = np.full(len(imgs), -1, dtype=np.int64)
    new_index[keep] = np.arange(len(keep))
    rows = np.flatnonzero(np.isin(segs.image_index, keep))
    it = ImageTable(imgs.image_ids[keep], [imgs.paths[i] for i in keep], [imgs.classes[i] for i in keep],
                    [imgs.shas[i] for i in keep], imgs.split[keep])
    st = SegmentTable(segs.segment_ids[rows], new_index[segs.image_index[rows]], segs.bboxes[rows],
                      [segs.labels[r] for r in rows], segs.crops[rows])
    return it, st, [p.pixels[i] for i in keep]


def draw_training_images(p: Prepared, k: int | None, seed: int) -> np.ndarray:
    """``k`` training image rows per class (all of them when ``k`` is None), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    train = p.images.mask("train")
    out = []
    for cls in sorted({str(c) for c in p.images.classes}):
        rows = np.flatnonzero(train & (np.array([str(c) for c in p.images.classes]) == cls))
        out.append(rows if k is None or k >= len(rows) else np.sort(rng.choice(rows, size=k, replace=False)))
    return np.concatenate(out)


def _label_time(p: Prepared, train_rows: np.ndarray) -> dict[str, float]:
    segs = p.segments
    in_train = np.isin(segs.image_index, train_rows)
    labels = [segs.labels[r] for r in np.flatnonzero(in_train)]
    n_lab = sum(lab is not None for lab in labels)
    n_parts = sum(lab is not None and lab != "none" for lab in labels)
    n_img = len(train_rows)
    s = LABEL_SECONDS
    return {
        "images": int(n_img),
        "labelled_segments": int(n_lab),
        "part_segments": int(n_parts),
        "hybrid_every_segment_s": round(n_lab * s["segment_label_s"] + n_img * s["image_label_s"], 1),
        "hybrid_parts_only_s": round(n_parts * s["segment_label_s"] + n_img * (s["image_label_s"] + s["segment_label_s"]), 1),
        "baseline_s": round(n_img * s["image_label_s"], 1),
    }


def measured_segment_seconds(workspace: str | Path) -> tuple[float, int]:
    """(median seconds per segment label, number of timed labels) that people took in a workspace: the
    labeler records each keypress's time (``elapsed_ms``). Raises ValueError when none were timed."""
    from workbench.data.store import LabelStore
    from workbench.workspace.folder import STORE_FILE

    with LabelStore(Path(workspace) / STORE_FILE) as store:
        ms = [r.elapsed_ms for r in store.labels(source="person", history=True) if r.elapsed_ms]
    if not ms:
        raise ValueError(f"{workspace}: no timed labels by a person yet (label some in `wb.label()` first)")
    return float(np.median(ms)) / 1000.0, len(ms)


def _train_one(method: str, p: Prepared, train_rows: np.ndarray, seed: int, epochs: int,
               budget: int | None = None, keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``method`` on ``train_rows`` (choices on validation) and score the test images. The result's
    ``scores`` are per image row of the whole table (NaN outside the test images)."""
    from workbench.evaluation.evaluate import baseline_metrics, blind_metrics, hybrid_metrics
    from workbench.evaluation.studies import with_part_scores
    from workbench.models.prototype import PrototypeConfig, train_prototype
    from workbench.models.train import TrainConfig, train_hybrid

    held = np.flatnonzero(np.isin(p.images.split, ("val", "test")))
    keep_rows = np.sort(np.concatenate([train_rows, held]))
    images, segments, pixels = _subset(p, keep_rows)
    config = TrainConfig(max_epochs=epochs, random_state=seed)
    t, cpu = time.perf_counter(), time.process_time()
    if method == "hybrid_segments":
        res = train_hybrid(p.ontology, images, segments, config)
        m = hybrid_metrics(p.ontology, with_part_scores(p.ontology, res.models, segments), images, segments)
        if keep is not None:
            keep.update(models=res.models, images=images, segments=segments, config=config)
    elif method == "hybrid_prototype":
        m = train_prototype(p.ontology, images, segments, pixels, config, PrototypeConfig(max_epochs=max(4, epochs * 2 // 3)))
    elif method in ("cnn_per_net", "cnn_total"):
        m = baseline_metrics(p.ontology, images, pixels, config, max_epochs=epochs * 5 // 2,
                             budget=budget if method == "cnn_total" else None)
        m.pop("_model", None)
    else:
        m = blind_metrics(p.ontology, images, pixels, method, seed=seed)
    scores = np.full(len(p.images), np.nan)
    if m.get("_scores") is not None:
        sub = np.asarray(m["_scores"], dtype=np.float64)
        test = images.mask("test")
        scores[keep_rows[test]] = sub[test]
    return {"balanced_accuracy": m.get("balanced_accuracy"), "val_balanced_accuracy": m.get("val_balanced_accuracy"),
            "params": m.get("params"), "on": m.get("on"), "train_s": time.perf_counter() - t,
            "train_cpu_s": time.process_time() - cpu, "test_images": int(images.mask("test").sum()),
            "scores": scores, **({"error": m["error"]} if m.get("error") else {})}


def _studies(p: Prepared, kept: dict[str, Any], seed: int, swap_too: bool) -> dict[str, Any]:
    """With all labels: the ablation of every concept, the control, and (``swap_too``) the swap of every net."""
    from workbench.evaluation.evaluate import shuffled_control
    from workbench.evaluation.studies import ablation, swap, with_part_scores

    onto, images, segments, config = p.ontology, kept["images"], kept["segments"], kept["config"]
    scored = with_part_scores(onto, kept["models"], segments)
    out: dict[str, Any] = {"ablation": ablation(onto, scored, images, segments, random_state=seed)}
    ctl = shuffled_control(onto, images, segments, config)
    ctl.pop("_scores", None)
    out["control"] = ctl
    if swap_too:
        out["swap"] = swap(onto, scored, images, segments, config)
    return out


def _domain(p: Prepared, sizes: tuple[int | None, ...], seeds: tuple[int, ...], epochs: int,
            methods: tuple[str, ...], log: Any) -> dict[str, Any]:
    from workbench.evaluation.studies import paired_difference

    n_train = {c: int(np.sum(p.images.mask("train") & (np.array(p.images.classes) == c)))
               for c in sorted({str(c) for c in p.images.classes})}
    y = p.images.targets(p.ontology.root)
    test_rows = np.flatnonzero(p.images.mask("test"))
    points, studies = [], []
    for k in sizes:
        raw: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        label_time = None
        for seed in seeds:
            rows = draw_training_images(p, k, seed)
            label_time = label_time or _label_time(p, rows)
            kept: dict[str, Any] = {}
            budget = None
            for m in methods:  # the hybrid first: the total-budget CNN gets its parameter count
                try:
                    r = _train_one(m, p, rows, seed, epochs, budget, kept if k is None else None)
                except WorkbenchError as e:  # e.g. too few labels for a leaf: a point, not a crash
                    r = {"balanced_accuracy": None, "params": None, "train_s": None, "train_cpu_s": None,
                         "scores": np.full(len(p.images), np.nan), "error": str(e)}
                if m == "hybrid_segments":
                    budget = r["params"]
                raw[m].append(r)
                log(f"  [{p.scene}] k={k or 'all'} seed={seed} {m}: test balanced accuracy {r['balanced_accuracy']}, "
                    f"train {r['train_s'] or 0:.1f} s" + (f" ({r['error']})" if "error" in r else ""))
            if k is None and kept:
                t = time.perf_counter()
                studies.append({"seed": seed, **_studies(p, kept, seed, swap_too=seed == seeds[0])})
                log(f"  [{p.scene}] seed={seed} ablation, control{', swap' if seed == seeds[0] else ''} in "
                    f"{time.perf_counter() - t:.0f} s")
        paired = {}
        for other in ("cnn_total", "cnn_per_net", "colour_layout"):
            if other in raw and "hybrid_segments" in raw:
                paired[f"hybrid_minus_{other}"] = paired_difference(
                    y, np.stack([r["scores"] for r in raw[other]]), np.stack([r["scores"] for r in raw["hybrid_segments"]]),
                    test_rows, random_state=seeds[0])
        points.append({
            "per_class": k if k is not None else "all",
            "train_images_per_class": min(k, min(n_train.values())) if k is not None else min(n_train.values()),
            "labelling": label_time,
            "paired": paired,
            **{m: {"balanced_accuracy": summarize([r["balanced_accuracy"] for r in raw[m]]),
                   "val_balanced_accuracy": summarize([r.get("val_balanced_accuracy") for r in raw[m]]),
                   "train_s": summarize([r["train_s"] for r in raw[m]], 2),
                   "params": next((r["params"] for r in raw[m] if r["params"]), None),
                   "errors": [r["error"] for r in raw[m] if "error" in r]} for m in methods},
        })
        for m in methods:  # accuracies: the median and range matter; "noisy" is for timings
            points[-1][m]["balanced_accuracy"].pop("noisy", None)
            points[-1][m]["val_balanced_accuracy"].pop("noisy", None)
    return {"data": {"scene": p.scene, "ontology": p.ontology.name, "per_class": len(p.images) // 2,
                     "images": len(p.images), "segments": len(p.segments),
                     "splits": {s: int(p.images.mask(s).sum()) for s in ("train", "val", "test")},
                     "train_images": n_train, "segmenter_settings_hash": p.shash},
            "points": points, "studies": studies}


def run(per_class: int = 150, sizes: tuple[int | None, ...] = (10, 30, None), seeds: tuple[int, ...] = SEEDS,
        epochs: int = 12, size: int = 256, work: Path | None = None, workers: int = 1,
        scenes: tuple[str, ...] = SCENES, methods: tuple[str, ...] = METHODS, log: Any = print) -> dict[str, Any]:
    """Run the benchmark on every scene; return the JSON-ready result."""
    work = Path(work or tempfile.mkdtemp(prefix="wb-bench-curves-"))
    t0 = time.perf_counter()
    domains = {}
    for scene in scenes:
        t = time.perf_counter()
        p = Prepared(work / scene, per_class, size, workers=workers, scene=scene)
        try:
            log(f"curves [{scene}]: {len(p.images)} images, {len(p.segments)} segments; split "
                f"{ {s: int(p.images.mask(s).sum()) for s in ('train', 'val', 'test')} }; prepared in "
                f"{time.perf_counter() - t:.0f} s")
            domains[scene] = _domain(p, sizes, seeds, epochs, methods, log)
            domains[scene]["seconds"] = round(time.perf_counter() - t, 1)
        finally:
            p.close()
    return {
        "benchmark": "curves",
        "protocol": ("split once by image, class-stratified: train / validation (every choice) / test (only "
                     "scored); k training images per class drawn per seed; test balanced accuracy, median "
                     "and range over seeds; paired class-stratified bootstrap (2000 resamples, 95%) of "
                     "hybrid − baseline on the test images, seeds averaged per image"),
        "settings": {"seeds": list(seeds), "epochs": epochs, "prototype_epochs": max(4, epochs * 2 // 3),
                     "cnn_epochs": epochs * 5 // 2, "crop_size": 32, "size": size, "methods": list(methods)},
        "label_seconds": LABEL_SECONDS,
        "domains": domains,
        "seconds": round(time.perf_counter() - t0, 1),
    }


NAMES = {"hybrid_segments": "hybrid", "hybrid_prototype": "hybrid (prototype)", "cnn_per_net": "CNN per-net budget (64²)",
         "cnn_total": "CNN total budget (128²)", "colour_histogram": "colour histogram (part-blind)",
         "colour_layout": "colour layout (part-blind)"}


def table(res: dict[str, Any]) -> str:
    """README-ready Markdown per domain: test balanced accuracy per number of labelled images per class,
    hybrid − CNN (total budget) with its interval, labelling time; then the ablation and the control."""
    out = []
    methods = res["settings"]["methods"]
    for scene, d in res["domains"].items():
        data = d["data"]
        out.append(f"**{scene}** ({data['ontology']} ontology; {data['splits']['train']} train / "
                   f"{data['splits']['val']} validation / {data['splits']['test']} test images; "
                   f"seeds {', '.join(map(str, res['settings']['seeds']))})")
        out.append("")
        rows = []
        for pt in d["points"]:
            lt = pt["labelling"]
            diff = pt["paired"].get("hybrid_minus_cnn_total") or {}
            rows.append([
                f"{pt['per_class']} ({pt['train_images_per_class']})",
                *(fmt_acc(pt[m]["balanced_accuracy"]) for m in methods),
                (f"{diff['difference']:+.1%} [{diff['ci_low']:+.1%}, {diff['ci_high']:+.1%}]"
                 if diff.get("difference") is not None else "–"),
                f"{lt['hybrid_parts_only_s'] / 60:.0f} / {lt['baseline_s'] / 60:.1f} min",
            ])
        head = ["labelled images per class", *(NAMES[m] for m in methods), "hybrid − CNN total [95%]",
                "labelling: hybrid (parts only) / CNN"]
        out.append(md_table(head, rows, "l" + "r" * (len(head) - 1)))
        params = {m: d["points"][-1][m]["params"] for m in methods}
        out.append("")
        out.append("Parameters: " + ", ".join(f"{NAMES[m]} {params[m]}" for m in methods if params[m]) + ".")
        if d["studies"]:
            out.append("")
            out.append(_studies_table(d["studies"]))
        out.append("")
    return "\n".join(out).rstrip()


def _studies_table(studies: list[dict[str, Any]]) -> str:
    """Ablation per concept (Δ root test balanced accuracy, median and range over seeds), the control, the swap."""
    concepts = list(studies[0]["ablation"])
    rows = []
    for c in concepts:
        ds = [s["ablation"][c]["difference"] for s in studies if s["ablation"][c].get("difference") is not None]
        used = sum(1 for s in studies if (s["ablation"][c].get("ci_high") or 0) < 0)
        sw = (studies[0].get("swap") or {}).get(c)
        rows.append([c, f"{np.median(ds):+.1%} ({min(ds):+.1%} to {max(ds):+.1%})" if ds else "–",
                     f"{used} of {len(studies)}",
                     f"{sw['difference']:+.1%} [{sw['ci_low']:+.1%}, {sw['ci_high']:+.1%}]" if sw and sw.get("difference") is not None else "–"])
    ctl = [s["control"].get("balanced_accuracy") for s in studies if s["control"].get("balanced_accuracy") is not None]
    out = md_table(["concept", "ablation: Δ root (median, range)", "seeds where the interval is below 0",
                    f"swap (seed {studies[0]['seed']}): Δ root [95%]"], rows, "lrrr")
    if ctl:
        out += (f"\n\nShuffled-labels control (rules refitted): test balanced accuracy {pct(float(np.median(ctl)))} "
                f"({pct(min(ctl))}–{pct(max(ctl))}).")
    return out


def fmt_acc(s: dict[str, Any]) -> str:
    """Median balanced accuracy with its range over the seeds."""
    if s.get("median") is None:
        return "–"
    return f"{pct(s['median'])} ({pct(s['min'])}–{pct(s['max'])})"


def _sizes(text: str) -> tuple[int | None, ...]:
    return tuple(None if t.strip() == "all" else int(t) for t in text.split(","))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=lambda s: tuple(s.split(",")), default=SCENES, help="parts,house (default)")
    ap.add_argument("--methods", type=lambda s: tuple(s.split(",")), default=METHODS,
                    help=f"default {','.join(METHODS)}; also {','.join(OPTIONAL_METHODS)}")
    ap.add_argument("--per-class", type=int, default=150, help="generated images per class (150: the full demo's)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--sizes", type=_sizes, default=(10, 30, None), help="labelled images per class, 'all'")
    ap.add_argument("--seeds", type=lambda s: tuple(int(x) for x in s.split(",")), default=SEEDS)
    ap.add_argument("--epochs", type=int, default=12, help="part nets' max epochs (the quick demo's 12)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=RESULTS / "curves.json")
    ap.add_argument("--segment-seconds", type=float, default=None, help="your own seconds per segment label")
    ap.add_argument("--image-seconds", type=float, default=None, help="your own seconds per image label")
    ap.add_argument("--timings-from", type=Path, default=None, metavar="WORKSPACE",
                    help="seconds per segment label = the median a person took in this workspace's labeler")
    args = ap.parse_args(argv)
    if args.timings_from is not None:
        secs, n = measured_segment_seconds(args.timings_from)
        LABEL_SECONDS.update(segment_label_s=round(secs, 2), source=f"measured: median of {n} timed labels in "
                             f"{args.timings_from} (image labels: {LABEL_SECONDS['image_label_s']} s, assumed)")
    if args.segment_seconds is not None or args.image_seconds is not None:
        LABEL_SECONDS.update(segment_label_s=args.segment_seconds or LABEL_SECONDS["segment_label_s"],
                             image_label_s=args.image_seconds or LABEL_SECONDS["image_label_s"],
                             source="given on the command line")
    methods = tuple(m for m in ("hybrid_segments", *args.methods) if m in METHODS + OPTIONAL_METHODS)
    methods = tuple(dict.fromkeys(methods))  # the hybrid first, once
    return finish(run(args.per_class, args.sizes, args.seeds, args.epochs, args.size, args.workdir,
                      scenes=args.scenes, methods=methods), table, args.json)


if __name__ == "__main__":
    sys.exit(main())
