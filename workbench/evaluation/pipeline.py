"""The main job, headless: data set + ontology → workspace → segments → labels → models → report.

``workbench run`` and ``workbench demo`` call :func:`run`. Running it again on the same output
folder reuses the workspace: cached segments are read back, unchanged concepts are not retrained.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from workbench.data.datasets import ImageFolder, generate_demo
from workbench.data.labelers import label_from_masks
from workbench.data.segment import make_segmenter, segment_dataset, settings_hash
from workbench.errors import WorkbenchError
from workbench.evaluation.evaluate import (
    accuracy,
    baseline_metrics,
    concept_metrics,
    hybrid_metrics,
    load_images,
    reuse_check,
    shuffled_control,
    swap_test,
)
from workbench.evaluation.report import render_explanation, summary_table, write_report
from workbench.models.nets import PartNet
from workbench.models.prototype import PrototypeConfig, train_prototype
from workbench.models.train import (
    TrainConfig,
    collect,
    leaf_split,
    split_images,
    train_hybrid,
)
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_ontology
from workbench.parallel import executor as make_executor
from workbench.workspace.folder import Workspace
from workbench.workspace.settings import Settings

__all__ = ["run", "demo", "DEMO_SIZES"]

#: Images per class of the generated demo set: (quick, full).
DEMO_SIZES = (40, 150)


def _log_default(msg: str) -> None:
    print(msg, flush=True)


def run(
    dataset: str | Path,
    ontology: str | Path | Ontology,
    out: str | Path,
    *,
    segmenter: str = "weightfree",
    segmenter_options: dict[str, Any] | None = None,
    quick: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
    random_state: int = 0,
    modes: tuple[str, ...] = ("segments", "prototype"),
    max_epochs: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = _log_default,
) -> dict[str, Any]:
    """Run the whole loop and write ``out/report.json`` and ``out/report.html``; return the report.

    The workspace lives in ``out/workspace``. Segment labels come from the data set's ground-truth part
    masks (recorded as such, never as a person's work); a data set without masks stops with a message
    saying how to label in the notebook.
    """
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    out = Path(out)
    dataset = Path(dataset).resolve()
    onto = ontology if isinstance(ontology, Ontology) else Ontology.load(ontology)
    folder = ImageFolder(dataset)
    if not folder.has_parts:
        raise WorkbenchError(
            f"{dataset}: no ground-truth part masks (parts.json + <image>.parts.png), so segments cannot be "
            "labelled headless. Label them in a notebook: `import workbench; wb = workbench.open("
            f"'{out / 'workspace'}'); wb.label()`, then run `workbench train --workspace {out / 'workspace'}`"
        )

    # workspace
    wpath = out / "workspace"
    settings = Settings(dataset=str(dataset), segmenter=segmenter, segmenter_options=segmenter_options or {},
                        workers=workers, scheduler=scheduler, random_state=random_state)
    if (wpath / "ontology.yaml").exists():
        ws = Workspace.open(wpath)
        if ws.ontology != onto:
            ws.save_ontology(onto)
            ws.commit(f"Ontology replaced by {getattr(ontology, 'name', ontology)} for `workbench run`", ["ontology.yaml"])
        if ws.settings != settings:
            ws.save_settings(settings)
        log(f"reusing workspace {wpath}")
    else:
        ws = Workspace.create(wpath, onto, settings)
        log(f"created workspace {wpath}")

    try:
        # segment
        t = time.perf_counter()
        seg = make_segmenter(segmenter, **(segmenter_options or {}))
        shash = settings_hash(seg)
        with make_executor(workers=workers, scheduler=scheduler) as ex:
            srep = segment_dataset(ws.store, folder, seg, executor=ex, cache_dir=ws.cache_dir / "segments",
                                   progress=progress)
        timings["segment"] = time.perf_counter() - t
        log(srep.summary())

        # label from ground truth
        t = time.perf_counter()
        lrep = label_from_masks(ws.store, folder, onto, settings_hash=shash)
        timings["label"] = time.perf_counter() - t
        log(f"labelled from ground-truth masks: {lrep.summary() if hasattr(lrep, 'summary') else lrep}")

        # train
        t = time.perf_counter()
        config = TrainConfig(crop_size=ws.settings.crop_size, random_state=random_state,
                             max_epochs=max_epochs or (12 if quick else 30), n_threads=ws.settings.torch_threads,
                             relations=ws.settings.composition_relations)
        problems: list[tuple[str, str]] = []
        images, segments = collect(ws.store, shash, config.crop_size, image_root=dataset,
                                   cache_dir=ws.cache_dir, on_problem=lambda p, r: problems.append((p, r)))
        images.split = split_images(images, config.val_fraction, random_state)
        timings["collect"] = time.perf_counter() - t
        t = time.perf_counter()
        with make_executor(workers=workers, scheduler=scheduler, threads=config.n_threads) as ex:
            # independent leaves train in parallel on the same executor as segmentation
            result = train_hybrid(onto, images, segments, config, models_dir=ws.models_dir, settings_hash=shash,
                                  executor=ex)
        timings["train"] = time.perf_counter() - t
        log("training:\n" + result.summary())

        # evaluate
        t = time.perf_counter()
        concepts = concept_metrics(onto, result.models, images, segments)
        for c, m in concepts.items():
            m["train_examples"] = result.examples.get(c)
        hybrid = [hybrid_metrics(onto, result.models, images, segments)]
        timings["evaluate"] = time.perf_counter() - t
        pixels, load_problems = load_images(images, dataset)
        problems += load_problems
        t = time.perf_counter()
        base = baseline_metrics(onto, images, pixels, config, max_epochs=max_epochs or (30 if quick else 60))
        base.pop("_model", None)
        timings["baseline"] = time.perf_counter() - t
        if "prototype" in modes:
            t = time.perf_counter()
            proto = train_prototype(onto, images, segments, pixels, config,
                                    PrototypeConfig(max_epochs=max_epochs or (8 if quick else 15)))
            hybrid.append({k: v for k, v in proto.items() if k != "concepts"} | {"concepts": proto["concepts"]})
            timings["prototype"] = time.perf_counter() - t
        t = time.perf_counter()
        control = shuffled_control(onto, images, segments, config)
        timings["control"] = time.perf_counter() - t
        t = time.perf_counter()
        swap = swap_test(onto, result.models, images, segments, config=config)
        timings["swap"] = time.perf_counter() - t
        reuse = reuse_check(onto, result.models, images, segments)
        rules = _rule_comparison(onto, images, segments, config, concepts)

        # explanations of a few validation images
        hyb = result.hybrid()
        explained = []
        val_rows = [i for i in np.flatnonzero(images.mask("val")) if pixels[i] is not None]
        pick = val_rows[:: max(1, len(val_rows) // 6)][:6]
        for i in pick:
            rows = segments.of_image(int(i))
            ex = hyb.explain(segments.crops[rows], [tuple(b) for b in segments.bboxes[rows]])
            explained.append((f"{images.paths[i]} (class: {images.classes[i]})",
                              render_explanation(pixels[i], ex), ex))  # type: ignore[arg-type]
        timings["total"] = time.perf_counter() - t_all
        report: dict[str, Any] = {
            "ontology": onto.name,
            "root": onto.root,
            "dataset": str(dataset),
            "workspace": str(wpath.resolve()),
            "segmenter": {"name": segmenter, "settings_hash": shash, "images": srep.images,
                          "segments": srep.segments, "cached_images": srep.cached},
            "labels_source": "ground-truth part masks (parts.json), not a person",
            "split": {"train": int(images.mask("train").sum()), "val": int(images.mask("val").sum())},
            "concepts": {c: {"kind": m["kind"], "implementation": m["implementation"], "params": m["params"],
                             "val_accuracy": m["val_accuracy"], "train_examples": m["train_examples"],
                             "val_balanced_accuracy": m["val_balanced_accuracy"], "val_examples": m["val_examples"]}
                         for c, m in concepts.items()},
            "hybrid": hybrid,
            "baseline": base,
            "swap": swap,
            "control": control,
            "reuse": reuse,
            "rules": rules,
            "retrained": {c: p.reason for c, p in result.plans.items()},
            "explanations": [{"image": name, **ex.to_dict()} for name, _, ex in explained],
            "problems": [{"path": p, "reason": r} for p, r in problems + list(srep.problems)],
            "timings": {k: round(v, 2) for k, v in timings.items()},
            "quick": quick,
        }
        jpath, hpath = write_report(out, report, onto, explained)
        log(summary_table(report))
        log(f"wrote {jpath} and {hpath}")
        return report
    finally:
        ws.close()


def _rule_comparison(onto: Ontology, images: Any, segments: Any, config: Any,
                     concepts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """For every part implemented by a rule, train the net it replaces and compare them."""
    out: dict[str, Any] = {}
    for c in onto.leaves():
        concept = onto.concepts[c]
        if concept.implementation != "rule":
            continue
        tr, ytr, va, yva = leaf_split(segments, images, c, config)
        net = PartNet(c, crop_size=config.crop_size, max_epochs=config.max_epochs, random_state=config.random_state)
        net.fit(segments.crops[tr], ytr, segments.crops[va], yva)
        out[c] = {"rule": concept.rule, "rule_val_accuracy": concepts[c]["val_accuracy"], "rule_params": concepts[c]["params"],
                  "net_val_accuracy": accuracy(yva, net.predict_proba(segments.crops[va])), "net_params": net.n_params}
    return out


def demo(out: str | Path = "demo-out", *, quick: bool = False, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Generate the daisy demo set (if not there yet) and :func:`run` on it with ``ontologies/daisy.yaml``."""
    out = Path(out)
    n = DEMO_SIZES[0] if quick else DEMO_SIZES[1]
    data = out / f"data-{n}-seed{seed}"
    if not (data / "parts.json").exists():
        log = kwargs.get("log", _log_default)
        t = time.perf_counter()
        generate_demo(data, n_per_class=n, seed=seed)
        log(f"generated the demo data set ({2 * n} images) in {time.perf_counter() - t:.1f} s: {data}")
    return run(data, shipped_ontology("daisy"), out, quick=quick, random_state=seed, **kwargs)
