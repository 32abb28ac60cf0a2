"""Label-count curves: the hybrid (both composition modes) against the same-budget baseline.

    python benchmarks/bench_curves.py [--per-class 150] [--sizes 10,30,100,all] [--seeds 0,1,2]
                                      [--epochs 12] [--json benchmarks/results/curves.json]

On the generated daisy / not-daisy set (``--per-class`` images per class, segmented by the default
weight-free segmenter, segment labels from the ground-truth masks), one fixed class-balanced
validation set (30% of the smaller class, the same for every point). For each number ``k`` of
labelled training images per class and each seed, ``k`` training images per class are drawn with
that seed and three classifiers are trained on exactly those images, in an order that rotates
from point to point (the sides interleaved):

- ``hybrid_segments``: part nets / rules on the segments of those images, composites bottom-up;
- ``hybrid_prototype``: the source study's convolutional composition on the same labels;
- ``baseline``: the same-budget end-to-end CNN on the same images' class labels.

Each point gives the balanced accuracy on the validation set (median and range over the seeds), the
training time, and the human labelling time it would take under stated assumptions
(:data:`LABEL_SECONDS`). Inference images/s and parameter counts are measured once at the largest
size, interleaved. Early stopping of every model looks at the validation set, for all three alike.
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
    fmt_stat,
    interleave,
    md_table,
    pct,
    summarize,
)

from workbench.errors import WorkbenchError  # noqa: E402

__all__ = ["LABEL_SECONDS", "measured_segment_seconds", "run", "table"]

METHODS = ("hybrid_segments", "hybrid_prototype", "baseline")

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
        "training images only (the validation set is labelled alike for every method). Hybrid, "
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


def _train_one(method: str, p: Prepared, train_rows: np.ndarray, seed: int, epochs: int) -> dict[str, Any]:
    from workbench.evaluation.evaluate import baseline_metrics, hybrid_metrics
    from workbench.models.prototype import PrototypeConfig, train_prototype
    from workbench.models.train import TrainConfig, train_hybrid

    val_rows = np.flatnonzero(p.images.mask("val"))
    images, segments, pixels = _subset(p, np.concatenate([train_rows, val_rows]))
    config = TrainConfig(max_epochs=epochs, random_state=seed)
    t, cpu = time.perf_counter(), time.process_time()
    if method == "hybrid_segments":
        res = train_hybrid(p.ontology, images, segments, config)
        m = hybrid_metrics(p.ontology, res.models, images, segments)
    elif method == "hybrid_prototype":
        m = train_prototype(p.ontology, images, segments, pixels, config, PrototypeConfig(max_epochs=max(4, epochs * 2 // 3)))
    else:
        m = baseline_metrics(p.ontology, images, pixels, config, max_epochs=epochs * 5 // 2)
        m.pop("_model", None)
    return {"balanced_accuracy": m["balanced_accuracy"], "params": m["params"], "train_s": time.perf_counter() - t,
            "train_cpu_s": time.process_time() - cpu, "val_images": int(images.mask("val").sum())}


def _inference(p: Prepared, epochs: int) -> dict[str, Any]:
    """Images/s of each classifier on the validation images, interleaved; models trained on all data."""
    from workbench.evaluation.evaluate import baseline_metrics
    from workbench.models.baseline import resize_images
    from workbench.models.hybrid import score_images
    from workbench.models.prototype import PrototypeConfig, _pad_to
    from workbench.models.prototype_nets import PrototypeLeafNet, PrototypeParentNet
    from workbench.models.train import TrainConfig, train_hybrid

    config = TrainConfig(max_epochs=min(epochs, 3), random_state=0)
    res = train_hybrid(p.ontology, p.images, p.segments, config)
    base = baseline_metrics(p.ontology, p.images, p.pixels, config, max_epochs=2)["_model"]
    val = np.flatnonzero(p.images.mask("val"))
    vpix = [p.pixels[i] for i in val]
    rows = np.flatnonzero(np.isin(p.segments.image_index, val))
    remap = np.full(len(p.images), -1, np.int64)
    remap[val] = np.arange(len(val))
    crops, index = p.segments.crops[rows], remap[p.segments.image_index[rows]]
    boxes = p.segments.bboxes[rows]

    # the prototype: inference cost does not depend on the weights, so nets fitted one epoch stand in
    pc = PrototypeConfig()
    o = p.ontology
    leaves = {c: PrototypeLeafNet(c, input_size=pc.input_size, pool=pc.pool, max_epochs=1).fit(
        resize_images(list(crops[:64]), pc.input_size), (np.arange(min(64, len(crops))) % 2)) for c in o.leaves()}
    parents: dict[str, Any] = {}

    def prototype(images: list) -> None:
        """Leaves slid over whole images, each parent over its children's maps (fitted on first use)."""
        whole = resize_images(images, pc.image_size)
        maps = {c: n.feature_map(whole) for c, n in leaves.items()}
        for c in o.bottom_up():
            if c in maps:
                continue
            kids = o.parts(c)
            side = max(maps[k].shape[-1] for k in kids)
            X = np.stack([_pad_to(maps[k], side) for k in kids], axis=1)
            if c not in parents:
                parents[c] = PrototypeParentNet(c, n_children=len(kids), max_epochs=1).fit(X, np.arange(len(X)) % 2)
            maps[c] = parents[c].predict_proba(X) if c == o.root else parents[c].feature_map(X)

    prototype(vpix[:2])
    sides = {
        "hybrid_segments (cached segments)": lambda: score_images(o, res.models, crops, index, len(val), boxes),
        "hybrid_prototype": lambda: prototype(vpix),
        "baseline": lambda: base.predict_proba(resize_images(vpix, base.image_size)),
    }
    stats = interleave(sides, repeats=5)
    out = {}
    for name, s in stats.items():
        ips = summarize([len(val) / v for v in s["values"]], 1)
        out[name] = {"images_per_s": ips, "seconds": s, "images": len(val)}
    return out


def run(per_class: int = 150, sizes: tuple[int | None, ...] = (10, 30, 100, None), seeds: tuple[int, ...] = SEEDS,
        epochs: int = 12, size: int = 256, work: Path | None = None, workers: int = 1,
        log: Any = print) -> dict[str, Any]:
    """Run the benchmark; return the JSON-ready result."""
    work = Path(work or tempfile.mkdtemp(prefix="wb-bench-curves-"))
    t0 = time.perf_counter()
    p = Prepared(work, per_class, size, workers=workers)
    try:
        n_train = {c: int(np.sum(p.images.mask("train") & (np.array(p.images.classes) == c)))
                   for c in sorted({str(c) for c in p.images.classes})}
        log(f"curves: {len(p.images)} images ({n_train} for training), {len(p.segments)} segments, "
            f"{int(p.images.mask('val').sum())} validation images; prepared in {time.perf_counter() - t0:.0f} s")
        points = []
        turn = 0
        for k in sizes:
            raw: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
            label_time = None
            for seed in seeds:
                rows = draw_training_images(p, k, seed)
                label_time = label_time or _label_time(p, rows)
                order = METHODS[turn % 3:] + METHODS[:turn % 3]
                turn += 1
                for m in order:
                    try:
                        r = _train_one(m, p, rows, seed, epochs)
                    except WorkbenchError as e:  # e.g. too few labels for a leaf: a point, not a crash
                        r = {"balanced_accuracy": None, "params": None, "train_s": None, "train_cpu_s": None,
                             "error": str(e)}
                    raw[m].append(r)
                    log(f"  k={k or 'all'} seed={seed} {m}: balanced accuracy {r['balanced_accuracy']}, "
                        f"train {r['train_s'] or 0:.1f} s" + (f" ({r['error']})" if "error" in r else ""))
            points.append({
                "per_class": k if k is not None else "all",
                "train_images_per_class": min(k, min(n_train.values())) if k is not None else min(n_train.values()),
                "labelling": label_time,
                **{m: {"balanced_accuracy": summarize([r["balanced_accuracy"] for r in raw[m]]),
                       "train_s": summarize([r["train_s"] for r in raw[m]], 2),
                       "train_cpu_s": summarize([r.get("train_cpu_s") for r in raw[m]], 2),
                       "params": next((r["params"] for r in raw[m] if r["params"]), None),
                       "errors": [r["error"] for r in raw[m] if "error" in r]} for m in METHODS},
            })
        for pt in points:  # accuracies: the median and range matter; "noisy" is for timings
            for m in METHODS:
                pt[m]["balanced_accuracy"].pop("noisy", None)
        inference = _inference(p, epochs)
        return {
            "benchmark": "curves",
            "data": {"per_class": per_class, "size": size, "images": len(p.images), "segments": len(p.segments),
                     "val_images": int(p.images.mask("val").sum()), "train_images": n_train,
                     "segmenter_settings_hash": p.shash},
            "settings": {"seeds": list(seeds), "epochs": epochs, "prototype_epochs": max(4, epochs * 2 // 3),
                         "baseline_epochs": epochs * 5 // 2, "crop_size": 32,
                         "interleaving": "the three methods in an order that rotates every (size, seed) point"},
            "label_seconds": LABEL_SECONDS,
            "points": points,
            "inference": inference,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    finally:
        p.close()


def table(res: dict[str, Any]) -> str:
    """README-ready Markdown: accuracy and labelling time per number of labelled images per class."""
    rows = []
    for pt in res["points"]:
        lt = pt["labelling"]
        rows.append([
            f"{pt['per_class']} ({pt['train_images_per_class']})",
            *(fmt_acc(pt[m]["balanced_accuracy"]) for m in METHODS),
            f"{lt['hybrid_every_segment_s'] / 60:.0f} / {lt['hybrid_parts_only_s'] / 60:.0f} min",
            f"{lt['baseline_s'] / 60:.1f} min",
        ])
    head = ["labelled images per class", "hybrid (segments)", "hybrid (prototype)", "same-budget CNN",
            "hybrid labelling (every segment / parts only)", "CNN labelling"]
    out = [md_table(head, rows, "lrrrrr")]
    out += ["", _equal_time(res)]
    pt = res["points"][-1]
    inf = res["inference"]
    out.append("")
    out.append(md_table(
        ["classifier", "parameters", "inference images/s"],
        [["hybrid (segments), segments cached", pt["hybrid_segments"]["params"],
          fmt_stat(inf["hybrid_segments (cached segments)"]["images_per_s"], "", 0)],
         ["hybrid (prototype)", pt["hybrid_prototype"]["params"], fmt_stat(inf["hybrid_prototype"]["images_per_s"], "", 0)],
         ["same-budget CNN", pt["baseline"]["params"], fmt_stat(inf["baseline"]["images_per_s"], "", 0)]],
        "lrr"))
    return "\n".join(out)


def _equal_time(res: dict[str, Any]) -> str:
    """One sentence comparing the two at equal estimated labelling time (hybrid counted 'parts only')."""
    pts = res["points"]
    cnn = [(p["labelling"]["baseline_s"], p["baseline"]["balanced_accuracy"]["median"]) for p in pts]
    hyb = [(p["labelling"]["hybrid_parts_only_s"], p["hybrid_segments"]["balanced_accuracy"]["median"]) for p in pts]
    s = res["label_seconds"]
    basis = (f"{s['segment_label_s']} s per segment label, {s['image_label_s']} s per image label "
             f"({s['source'].split(',')[0]} et al. 2016; the hybrid counted 'parts only')")
    cheapest = min(hyb, key=lambda h: h[0])
    afford = [c for c in cnn if c[0] <= cheapest[0] and c[1] is not None]
    if not afford or cheapest[1] is None:
        return f"Estimated labelling time: {basis}."
    best = max(afford, key=lambda c: c[1])
    return (f"Estimated labelling time, {basis}: for the hybrid's cheapest point (~{cheapest[0] / 60:.0f} min, "
            f"{pct(cheapest[1])}) the CNN can have ~{best[0] / 60:.1f} min of image labels and reaches {pct(best[1])}.")


def fmt_acc(s: dict[str, Any]) -> str:
    """Median balanced accuracy with its range over the seeds."""
    if s.get("median") is None:
        return "–"
    return f"{pct(s['median'])} ({pct(s['min'])}–{pct(s['max'])})"


def _sizes(text: str) -> tuple[int | None, ...]:
    return tuple(None if t.strip() == "all" else int(t) for t in text.split(","))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=150, help="generated images per class (150: the full demo's)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--sizes", type=_sizes, default=(10, 30, 100, None), help="labelled images per class, 'all'")
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
    return finish(run(args.per_class, args.sizes, args.seeds, args.epochs, args.size, args.workdir), table, args.json)


if __name__ == "__main__":
    sys.exit(main())
