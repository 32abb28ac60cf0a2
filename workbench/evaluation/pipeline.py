"""The main job, headless: data set + ontology → workspace → segments → labels → models → report.

``workbench run`` and ``workbench demo`` call :func:`run`, which runs the named stages in order::

    open_workspace → segment → label → train → evaluate → compare → explain_validation → write

Each stage is a small function; ``workbench segment``, ``workbench label --from-masks`` and ``workbench
train`` (and the notebook's dashboard, for train and evaluate) run the same stage functions on an
existing workspace. Running :func:`run` again on the same output folder reuses the workspace: cached
segments are read back, unchanged concepts are not retrained.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from workbench.data.datasets import ImageFolder, generate_demo
from workbench.data.labelers import (
    DEFAULT_MIN_OVERLAP,
    LabelRunReport,
    label_from_masks,
)
from workbench.data.segment import SegmentRunReport, segment_dataset
from workbench.data.segments import Segmenter
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
from workbench.models.contract import ConceptModel
from workbench.models.hybrid import Explanation
from workbench.models.job import TrainingRun, train_workspace, workspace_segmenter
from workbench.models.nets import PartNet
from workbench.models.prototype import PrototypeConfig, train_prototype
from workbench.models.train import ImageTable, SegmentTable, TrainConfig, leaf_split
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_ontology
from workbench.parallel import executor as make_executor
from workbench.workspace.folder import Workspace
from workbench.workspace.settings import Settings

__all__ = [
    "run",
    "demo",
    "DEMO_SIZES",
    "labelled_folder",
    "open_workspace",
    "segment",
    "label",
    "train",
    "evaluate",
    "compare",
    "explain_validation",
    "write",
]

#: Images per class of the generated demo set: (quick, full).
DEMO_SIZES = (40, 150)

#: Validation images the report explains.
EXPLAINED_IMAGES = 6


def _log_default(msg: str) -> None:
    print(msg, flush=True)


def _log_nothing(msg: str) -> None:
    pass


class _Stage:
    """One running stage; ``seconds`` is set when it ends."""

    seconds: float = 0.0


class _Stages:
    """Numbered stages, each named when it starts and timed when it ends::

        [6/12] baseline: the same-budget end-to-end CNN …
        [6/12] baseline  12.3 s
    """

    def __init__(self, total: int = 0, log: Callable[[str], None] = _log_nothing) -> None:
        self.total, self.log, self.done = total, log, 0

    @contextmanager
    def __call__(self, name: str, what: str = "") -> Iterator[_Stage]:
        self.done += 1
        head = f"[{self.done}/{self.total}] {name}" if self.total else name
        self.log(f"{head}: {what} …" if what else f"{head} …")
        stage, t = _Stage(), time.perf_counter()
        yield stage
        stage.seconds = time.perf_counter() - t
        self.log(f"{head}  {stage.seconds:.1f} s")


def _training_bar(ontology: Ontology, show: bool) -> tuple[Callable[[str, str], None], Callable[[], None]]:
    """``(progress, close)``: a bar on standard error over the concepts that train (none when not ``show``)."""
    bar = tqdm(total=len(ontology.concepts), unit="concept", desc="train", disable=not show)

    def progress(concept: str, what: str) -> None:
        if what == "done":
            bar.update(1)
        else:
            bar.set_postfix_str(concept)

    return progress, bar.close


def _percent(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


# ------------------------------------------------------------------------------------------------ stages
def labelled_folder(dataset: Path, out: Path) -> ImageFolder:
    """The data set as an image folder; one without ground-truth part masks is an error saying how to
    label it in a notebook instead (headless labels come only from masks)."""
    folder = ImageFolder(dataset)
    if not folder.has_parts:
        raise WorkbenchError(
            f"{dataset}: no ground-truth part masks (parts.json + <image>.parts.png), so segments cannot be "
            f"labelled headless. Label them by hand instead: `workbench init {out / 'workspace'} --dataset "
            f"{dataset}`, `workbench segment --workspace {out / 'workspace'}`, then in a notebook `import workbench; "
            f"wb = workbench.open('{out / 'workspace'}'); wb.label()`, then `workbench train --workspace "
            f"{out / 'workspace'}`"
        )
    return folder


def open_workspace(path: Path, ontology: Ontology, settings: Settings, *, source: Any = None,
                   log: Callable[[str], None] = _log_default) -> Workspace:
    """The workspace at ``path`` with this ontology and these settings: reused when it exists (a
    different ontology is saved and committed, naming ``source``; different settings are saved),
    created otherwise."""
    if (path / "ontology.yaml").exists():
        ws = Workspace.open(path)
        if ws.ontology != ontology:
            ws.save_ontology(ontology)
            ws.commit(f"Ontology replaced by {source if source is not None else ontology.name} for `workbench run`",
                      ["ontology.yaml"])
        if ws.settings != settings:
            ws.save_settings(settings)
        log(f"reusing workspace {path}")
    else:
        ws = Workspace.create(path, ontology, settings)
        log(f"created workspace {path}")
    return ws


def segment(ws: Workspace, folder: ImageFolder, segmenter: Segmenter | None = None, *, workers: int | None = None,
            scheduler: str | None = None, progress: bool = True) -> SegmentRunReport:
    """Segment every image of ``folder`` into the workspace's store (cached under its cache folder).

    ``segmenter``: default the workspace's (:func:`workbench.models.job.workspace_segmenter`);
    ``workers``/``scheduler``: default the workspace settings; each worker uses ``torch_threads``.
    """
    seg = segmenter if segmenter is not None else workspace_segmenter(ws)
    with make_executor(workers=workers or ws.settings.workers, scheduler=scheduler or ws.settings.scheduler,
                       threads=ws.settings.torch_threads) as ex:
        return segment_dataset(ws.store, folder, seg, executor=ex, cache_dir=ws.cache_dir / "segments",
                               progress=progress)


def label(ws: Workspace, folder: ImageFolder, *, min_overlap: float = DEFAULT_MIN_OVERLAP,
          settings_hash: str | None = None) -> LabelRunReport:
    """Label the stored segments of ``folder``'s images from its ground-truth part masks (recorded as
    such, never as a person's work); ``settings_hash``: only that segmenter's segments (default: all)."""
    return label_from_masks(ws.store, folder, ws.ontology, min_overlap=min_overlap, settings_hash=settings_hash)


def train(
    ws: Workspace,
    *,
    max_epochs: int | None = None,
    force: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
    segmenter: Segmenter | None = None,
    progress: Callable[[str, str], None] | None = None,
    on_fitted: Callable[[str, ConceptModel], None] | None = None,
    on_problem: Callable[[str, str], None] | None = None,
) -> TrainingRun:
    """The workspace's training job (:func:`workbench.models.job.train_workspace`); with ``workers`` > 1
    or a ``scheduler``, independent parts train in parallel (each worker with ``torch_threads``)."""
    with make_executor(workers=workers, scheduler=scheduler, threads=ws.settings.torch_threads) as ex:
        return train_workspace(ws, force=force, max_epochs=max_epochs, progress=progress, on_fitted=on_fitted,
                               on_problem=on_problem, executor=ex, segmenter=segmenter)


def evaluate(trained: TrainingRun) -> TrainingRun:
    """Fill ``trained.concepts`` (each concept's validation metrics and training examples) and
    ``trained.hybrid`` (the root's accuracy on the validation images); returns ``trained``."""
    onto, models = trained.result.ontology, trained.result.models
    concepts = concept_metrics(onto, models, trained.images, trained.segments)
    for c, m in concepts.items():
        m["train_examples"] = trained.result.examples.get(c)
    trained.concepts = concepts
    trained.hybrid = hybrid_metrics(onto, models, trained.images, trained.segments)
    return trained


def compare(
    trained: TrainingRun,
    pixels: Sequence[np.ndarray | None],
    *,
    quick: bool = False,
    max_epochs: int | None = None,
    modes: tuple[str, ...] = ("segments", "prototype"),
    stages: _Stages | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """What the hybrid is measured against: the same-budget end-to-end CNN (``baseline``), the study's
    prototype composition (``prototype``, when in ``modes``), the shuffled-labels ``control``, the
    ``swap`` and ``reuse`` checks, and each rule against the net it replaces (``rules``).
    Returns ``(results, seconds per step)``; ``stages`` names and times each step as it runs."""
    onto, images, segments, config = trained.result.ontology, trained.images, trained.segments, trained.config
    out: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    stage = stages if stages is not None else _Stages()
    with stage("baseline", "the same-budget end-to-end CNN on whole images") as st:
        base = baseline_metrics(onto, images, pixels, config, max_epochs=max_epochs or (30 if quick else 60))
        base.pop("_model", None)
        out["baseline"] = base
    seconds["baseline"] = st.seconds
    if "prototype" in modes:
        with stage("prototype", "the study's prototype composition") as st:
            proto = train_prototype(onto, images, segments, pixels, config,
                                    PrototypeConfig(max_epochs=max_epochs or (8 if quick else 15)))
            out["prototype"] = {k: v for k, v in proto.items() if k != "concepts"} | {"concepts": proto["concepts"]}
        seconds["prototype"] = st.seconds
    with stage("control", "the hybrid retrained on shuffled segment labels") as st:
        out["control"] = shuffled_control(onto, images, segments, config)
    seconds["control"] = st.seconds
    with stage("swap", "one part retrained with another seed and swapped in") as st:
        out["swap"] = swap_test(onto, trained.models, images, segments, config=config)
    seconds["swap"] = st.seconds
    sw = out["swap"]
    stage.log(f"swap test: {sw['concept']} {sw['how']}, swapped in: root balanced accuracy "
              f"{_percent(sw['balanced_accuracy_before'])} → {_percent(sw['balanced_accuracy_after'])}")
    with stage("reuse", "where each part fires outside its concept; each rule against a net"):
        out["reuse"] = reuse_check(onto, trained.models, images, segments)
        out["rules"] = _rule_comparison(onto, images, segments, config, trained.concepts)
    return out, seconds


def explain_validation(trained: TrainingRun, pixels: Sequence[np.ndarray | None],
                       n: int = EXPLAINED_IMAGES) -> list[tuple[str, bytes, Explanation]]:
    """``(name, PNG, explanation)`` of up to ``n`` validation images, spread over the validation set."""
    images, segments = trained.images, trained.segments
    hyb = trained.result.hybrid()
    val_rows = [i for i in np.flatnonzero(images.mask("val")) if pixels[i] is not None]
    explained = []
    for i in val_rows[:: max(1, len(val_rows) // n)][:n]:
        rows = segments.of_image(int(i))
        ex = hyb.explain(segments.crops[rows], [tuple(b) for b in segments.bboxes[rows]])
        explained.append((f"{images.paths[i]} (class: {images.classes[i]})",
                          render_explanation(pixels[i], ex), ex))  # type: ignore[arg-type]
    return explained


def write(out: Path, report: dict[str, Any], ontology: Ontology,
          explained: Sequence[tuple[str, bytes, Explanation]], log: Callable[[str], None] = _log_default) -> None:
    """Write ``report.json`` and ``report.html`` into ``out`` and print the summary table."""
    jpath, hpath = write_report(out, report, ontology, explained)
    log(summary_table(report))
    log(f"wrote {jpath} and {hpath}")


# -------------------------------------------------------------------------------------------- the main job
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
    folder = labelled_folder(dataset, out)
    wpath = out / "workspace"
    settings = Settings(dataset=str(dataset), segmenter=segmenter, segmenter_options=segmenter_options or {},
                        workers=workers, scheduler=scheduler, random_state=random_state)
    stage = _Stages(11 + ("prototype" in modes), log)
    with stage("workspace", str(wpath)):
        ws = open_workspace(wpath, onto, settings, source=getattr(ontology, "name", ontology), log=log)
    try:
        with stage("segment", f"cut every image into segments ({segmenter})") as st:
            srep = segment(ws, folder, progress=progress)
        timings["segment"] = st.seconds
        log(srep.summary())

        with stage("label", "segments from the ground-truth part masks") as st:
            lrep = label(ws, folder, settings_hash=srep.settings_hash)
        timings["label"] = st.seconds
        log(f"labelled from ground-truth masks: {lrep.summary()}")

        with stage("train", "one model per changed concept"):
            bar, close_bar = _training_bar(onto, progress)
            try:
                trained = train(ws, max_epochs=max_epochs or (12 if quick else 30), workers=workers,
                                scheduler=scheduler, progress=bar)
            finally:
                close_bar()
        timings.update(trained.seconds)
        log("training:\n" + trained.result.summary())

        with stage("evaluate", "each concept and the composed classifier on the validation images") as st:
            evaluate(trained)
        timings["evaluate"] = st.seconds
        pixels, load_problems = load_images(trained.images, dataset)
        compared, seconds = compare(trained, pixels, quick=quick, max_epochs=max_epochs, modes=modes, stages=stage)
        timings.update(seconds)
        with stage("explain", f"up to {EXPLAINED_IMAGES} validation images, part by part"):
            explained = explain_validation(trained, pixels)
        timings["total"] = time.perf_counter() - t_all
        report = _report(onto, dataset, wpath, segmenter, srep, trained, compared, explained,
                         trained.problems + load_problems + list(srep.problems), timings, quick)
        with stage("write", f"{out / 'report.json'} and report.html"):
            write(out, report, onto, explained, log)
        return report
    finally:
        ws.close()


def _report(onto: Ontology, dataset: Path, wpath: Path, segmenter: str, srep: SegmentRunReport,
            trained: TrainingRun, compared: dict[str, Any], explained: Sequence[tuple[str, bytes, Explanation]],
            problems: Sequence[tuple[str, str]], timings: dict[str, float], quick: bool) -> dict[str, Any]:
    """``report.json``'s content (its keys are documented in the README)."""
    images = trained.images
    hybrid = [trained.hybrid] + ([compared["prototype"]] if "prototype" in compared else [])
    return {
        "ontology": onto.name,
        "root": onto.root,
        "dataset": str(dataset),
        "workspace": str(wpath.resolve()),
        "segmenter": {"name": segmenter, "settings_hash": trained.settings_hash, "images": srep.images,
                      "segments": srep.segments, "cached_images": srep.cached},
        "labels_source": "ground-truth part masks (parts.json), not a person",
        "split": {"train": int(images.mask("train").sum()), "val": int(images.mask("val").sum())},
        "concepts": {c: {"kind": m["kind"], "implementation": m["implementation"], "params": m["params"],
                         "val_balanced_accuracy": m["val_balanced_accuracy"], "status": m["status"],
                         "status_reason": m["status_reason"], "train_examples": m["train_examples"],
                         "val_examples": m["val_examples"], "val_positives": m["val_positives"],
                         "val_accuracy": m["val_accuracy"]}
                     for c, m in trained.concepts.items()},
        "hybrid": hybrid,
        "baseline": compared["baseline"],
        "swap": compared["swap"],
        "control": compared["control"],
        "reuse": compared["reuse"],
        "rules": compared["rules"],
        "retrained": {c: p.reason for c, p in trained.result.plans.items()},
        "explanations": [{"image": name, **ex.to_dict()} for name, _, ex in explained],
        "problems": [{"path": p, "reason": r} for p, r in problems],
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "quick": quick,
    }


def _rule_comparison(onto: Ontology, images: ImageTable, segments: SegmentTable, config: TrainConfig,
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
