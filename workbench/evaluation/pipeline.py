"""The main job, headless: data set + ontology → workspace → segments → labels → models → report.

``workbench run`` and ``workbench demo`` call :func:`run`, which runs the named stages in order::

    open_workspace → segment → label → train → evaluate → compare → [more seeds] → explain_held_out → write

The images are split once, by class, into train / validation / test (stored in the workspace: an image
never changes side). Models learn on train; every choice (early stopping, thresholds, rule constants'
calibration, a concept's status) looks at validation; the report's figures are on test, which nothing
else reads. With ``seeds`` > 1 every figure is measured again with each further model seed (the split
stays), and the report gives each figure's median and range, and a paired bootstrap interval of
hybrid − CNN on the test images.

Each stage is a small function; ``workbench segment``, ``workbench label --from-masks`` and ``workbench
train`` (and the notebook's dashboard, for train and evaluate) run the same stage functions on an
existing workspace. Running :func:`run` again on the same output folder reuses the workspace: cached
segments are read back, unchanged concepts are not retrained.
"""
from __future__ import annotations

import dataclasses
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
    BLIND_IN_REPORT,
    balanced_accuracy,
    baseline_metrics,
    blind_metrics,
    concept_metrics,
    hybrid_metrics,
    load_images,
    reuse_check,
    shuffled_control,
)
from workbench.evaluation.report import render_explanation, summary_table, write_report
from workbench.evaluation.studies import ablation, paired_difference, swap, with_part_scores
from workbench.models.contract import ConceptModel
from workbench.models.hybrid import Explanation
from workbench.models.job import TrainingRun, train_workspace, workspace_segmenter
from workbench.models.nets import PartNet
from workbench.models.prototype import PrototypeConfig, train_prototype
from workbench.models.train import (
    ImageTable,
    SegmentTable,
    TrainConfig,
    leaf_split,
    resolve_image_path,
    train_hybrid,
)
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_ontology
from workbench.parallel import executor as make_executor
from workbench.workspace.folder import Workspace
from workbench.workspace.settings import Settings

__all__ = [
    "run",
    "demo",
    "DEMO_SIZES",
    "DEFAULT_DEMO_SCENE",
    "DEMO_ONTOLOGIES",
    "more_seeds",
    "seed_summary",
    "warnings_for",
    "labelled_folder",
    "open_workspace",
    "segment",
    "label",
    "train",
    "evaluate",
    "compare",
    "explain_held_out",
    "write",
]

#: Images per class of the generated demo set: (quick, full).
DEMO_SIZES = (40, 150)
#: The scene ``workbench demo`` generates by default: one whose class needs its parts (part-blind
#: baselines stay near chance on it, ``benchmarks/results/blind.md``).
DEFAULT_DEMO_SCENE = "parts"
#: The shipped ontology each demo scene is classified with.
DEMO_ONTOLOGIES = {"daisy": "daisy", "parts": "daisy", "house": "house"}

#: Held-out images the report explains.
EXPLAINED_IMAGES = 6

#: Long edge at which whole images are held in memory for the baseline, the prototype and the report's
#: pictures (they use 64-256 px): a set of large photos costs this much per image, not its full size.
PIXELS_MAX_SIDE = 512


def _log_default(msg: str) -> None:
    print(msg, flush=True)


def _log_nothing(msg: str) -> None:
    pass


class _Stage:
    """One running stage; ``seconds`` is set when it ends."""

    seconds: float = 0.0


class _Stages:
    """Numbered stages, each named when it starts and timed when it ends::

        [6/14] cnn: the end-to-end CNN on whole images, per-net and total budget …
        [6/14] cnn  12.3 s
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
        if settings.dataset and ws.settings.dataset and ws.dataset_root.resolve() != Path(settings.dataset).resolve():
            ws.close()
            raise WorkbenchError(
                f"{path}: this workspace was built from another data set ({ws.settings.dataset}); its images would "
                f"mix with those of {settings.dataset}. Use another --out folder, or delete {path} first")
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
    """Fill ``trained.concepts`` (each concept's validation and test metrics, status and training
    examples) and ``trained.hybrid`` (the root's balanced accuracy on the test images, validation
    beside); returns ``trained``."""
    onto = trained.result.ontology
    models = trained.scored = with_part_scores(onto, trained.result.models, trained.segments)
    concepts = concept_metrics(onto, models, trained.images, trained.segments)
    for c, m in concepts.items():
        m["train_examples"] = trained.result.examples.get(c)
    trained.concepts = concepts
    trained.hybrid = hybrid_metrics(onto, models, trained.images, trained.segments)
    trained.hybrid["supervision"] = _hybrid_supervision(trained.images, trained.segments)
    return trained


def _hybrid_supervision(images: ImageTable, segments: SegmentTable) -> dict[str, Any]:
    """What the hybrid learned from: segment labels and image labels of training and validation images."""
    seen = np.isin(images.split, ("train", "val"))
    rows = seen[segments.image_index] & segments.labelled() if len(segments) else np.zeros(0, bool)
    return {"kind": "segment labels and image labels", "segment_labels": int(rows.sum()),
            "train_images": int(images.mask("train").sum()), "val_images": int(images.mask("val").sum())}


def _baselines(trained: TrainingRun, pixels: Sequence[np.ndarray | None], config: TrainConfig, *, epochs: int,
               stage: _Stages, seconds: dict[str, float]) -> dict[str, Any]:
    """The CNN at both budgets and the part-blind baselines, each fitted on the training images with
    every choice on validation, scored on test."""
    onto, images = trained.result.ontology, trained.images
    out: dict[str, Any] = {}
    total = int(trained.hybrid.get("params") or 0)
    with stage("cnn", f"the end-to-end CNN on whole images: per-net budget (< 1000 parameters) and total "
                      f"budget (≤ {total} parameters, the hybrid's)") as st:
        per_net = baseline_metrics(onto, images, pixels, config, max_epochs=epochs)
        per_net.pop("_model", None)
        whole = baseline_metrics(onto, images, pixels, config, max_epochs=epochs, budget=max(total, per_net["params"]))
        whole.pop("_model", None)
        out["cnn_per_net"], out["cnn_total"] = per_net, whole
    seconds["cnn"] = st.seconds
    with stage("part-blind", f"baselines that see colours and layout, never parts: {', '.join(BLIND_IN_REPORT)}") as st:
        for name in BLIND_IN_REPORT:
            out[name] = blind_metrics(onto, images, pixels, name, seed=config.random_state)
    seconds["part-blind"] = st.seconds
    return out


def compare(
    trained: TrainingRun,
    pixels: Sequence[np.ndarray | None],
    *,
    quick: bool = False,
    max_epochs: int | None = None,
    modes: tuple[str, ...] = ("segments", "prototype"),
    stages: _Stages | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """What the hybrid is measured against, all on the test images: the CNN at the per-net and the
    total budget and the part-blind baselines (``baselines``), the study's prototype composition
    (``prototype``, when in ``modes``), the shuffled-labels ``control``; and what it is made of: the
    ``ablation`` of every concept, the ``swap`` of every net, the ``reuse`` check, and each rule against
    the net it replaces (``rules``, on validation: it is a choice).
    Returns ``(results, seconds per step)``; ``stages`` names and times each step as it runs."""
    onto, images, segments, config = trained.result.ontology, trained.images, trained.segments, trained.config
    out: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    stage = stages if stages is not None else _Stages()
    out["baselines"] = _baselines(trained, pixels, config, epochs=max_epochs or (30 if quick else 60),
                                  stage=stage, seconds=seconds)
    if "prototype" in modes:
        with stage("prototype", "the study's prototype composition") as st:
            out["prototype"] = _prototype(trained, pixels, config, max_epochs or (8 if quick else 15))
        seconds["prototype"] = st.seconds
    with stage("control", "the hybrid retrained on shuffled segment labels, rules refitted on them") as st:
        out["control"] = shuffled_control(onto, images, segments, config)
    seconds["control"] = st.seconds
    with stage("ablation", "each concept replaced by a constant, its training prior") as st:
        out["ablation"] = ablation(onto, trained.scored or trained.models, images, segments,
                                   random_state=config.random_state)
    seconds["ablation"] = st.seconds
    with stage("swap", "each net retrained with another seed and swapped in, nothing else retrained") as st:
        out["swap"] = swap(onto, trained.scored or trained.models, images, segments, config)
    seconds["swap"] = st.seconds
    for c, sw in out["swap"].items():
        stage.log(f"  swap {c}: root balanced accuracy {_percent(sw['balanced_accuracy_before'])} → "
                  f"{_percent(sw['balanced_accuracy_after'])}: {sw['verdict']}")
    with stage("reuse", "where each part fires outside its concept; each rule against a net"):
        out["reuse"] = reuse_check(onto, trained.scored or trained.models, images, segments)
        out["rules"] = _rule_comparison(onto, images, segments, config, trained.concepts)
    return out, seconds


def _prototype(trained: TrainingRun, pixels: Sequence[np.ndarray | None], config: TrainConfig,
               epochs: int) -> dict[str, Any]:
    """The study's prototype composition, scored on the held-out images (validation beside)."""
    proto = train_prototype(trained.result.ontology, trained.images, trained.segments, pixels, config,
                            PrototypeConfig(max_epochs=epochs))
    return {k: v for k, v in proto.items() if k != "concepts"} | {"concepts": proto["concepts"]}


#: The figures measured again for every seed (report key → where :func:`_seed_figures` finds it).
SEED_FIGURES = ("hybrid", "prototype", "cnn_per_net", "cnn_total", "colour_histogram", "colour_layout", "control")


def _seed_figures(hybrid: dict[str, Any], compared: dict[str, Any]) -> dict[str, Any]:
    """One seed's test balanced accuracy per method, and each method's per-image scores (private)."""
    found = {"hybrid": hybrid, "prototype": compared.get("prototype"), "control": compared.get("control"),
             **compared.get("baselines", {})}
    return {k: found[k] for k in SEED_FIGURES if found.get(k) is not None}


def more_seeds(trained: TrainingRun, pixels: Sequence[np.ndarray | None], seeds: Sequence[int], *,
               quick: bool = False, max_epochs: int | None = None, modes: tuple[str, ...] = ("segments", "prototype"),
               stages: _Stages | None = None) -> list[dict[str, Any]]:
    """Every figure measured again with each of ``seeds`` as the models' seed: the hybrid retrained in
    memory (nothing saved), the baselines, the prototype composition and the control; the split stays.
    Returns one ``{method: result}`` per seed."""
    stage = stages if stages is not None else _Stages()
    onto, images, segments = trained.result.ontology, trained.images, trained.segments
    out = []
    for seed in seeds:
        config = dataclasses.replace(trained.config, random_state=int(seed))
        with stage(f"seed {seed}", "the hybrid, the baselines, the prototype composition and the control again"):
            res = train_hybrid(onto, images, segments, config, seeds={c: int(seed) for c in onto.concepts})
            again = TrainingRun(res, images, segments, config, trained.settings_hash)
            again.hybrid = hybrid_metrics(onto, with_part_scores(onto, res.models, segments), images, segments)
            quiet = _Stages()
            compared: dict[str, Any] = {"baselines": _baselines(again, pixels, config,
                                                                epochs=max_epochs or (30 if quick else 60),
                                                                stage=quiet, seconds={})}
            if "prototype" in modes:
                compared["prototype"] = _prototype(again, pixels, config, max_epochs or (8 if quick else 15))
            compared["control"] = shuffled_control(onto, images, segments, config)
            out.append(_seed_figures(again.hybrid, compared))
    return out


def seed_summary(per_seed: Sequence[dict[str, Any]], seeds: Sequence[int], images: ImageTable,
                 root: str) -> dict[str, Any]:
    """Median and range over seeds of every method's held-out balanced accuracy, and the paired
    bootstrap interval of hybrid − CNN (each budget) on the test images, seeds averaged per image."""
    methods = [m for m in SEED_FIGURES if all(m in f for f in per_seed)]
    summary: dict[str, Any] = {}
    for m in methods:
        vals = [f[m].get("balanced_accuracy") for f in per_seed]
        vals = [v for v in vals if v is not None]
        summary[m] = ({"median": round(float(np.median(vals)), 4), "min": min(vals), "max": max(vals),
                       "values": vals} if vals else {"median": None, "min": None, "max": None, "values": []})
    on = images.held_out()
    rows = np.flatnonzero(images.mask(on))
    y = images.targets(root)
    diffs = {}
    for cnn in ("cnn_per_net", "cnn_total", "colour_histogram", "colour_layout"):
        if cnn in methods and all("_scores" in f[cnn] for f in per_seed):
            base = np.stack([f[cnn]["_scores"] for f in per_seed])
            cand = np.stack([f["hybrid"]["_scores"] for f in per_seed])
            diffs[f"hybrid_minus_{cnn}"] = paired_difference(y, base, cand, rows, random_state=int(seeds[0]))
    return {"seeds": [int(s) for s in seeds], "on": "test" if on == "test" else "validation",
            "split": "the same for every seed (stored in the workspace); the models' seeds vary",
            "median_and_range": summary, "paired": diffs,
            "paired_method": "paired, class-stratified bootstrap over the held-out images (2000 resamples, 95%); "
                             "each image's correctness averaged over the seeds"}


def explain_held_out(trained: TrainingRun, pixels: Sequence[np.ndarray | None],
                       n: int = EXPLAINED_IMAGES,
                       sizes: Sequence[tuple[int, int] | None] | None = None) -> list[tuple[str, bytes, Explanation]]:
    """``(name, PNG, explanation)`` of up to ``n`` held-out images (test, or validation without test
    images), spread over them. ``sizes``: each image's original (width, height) when ``pixels`` are
    downscaled copies (the explanations' boxes are in the original's pixels)."""
    images, segments = trained.images, trained.segments
    hyb = trained.result.hybrid()
    val_rows = [i for i in np.flatnonzero(images.mask(images.held_out())) if pixels[i] is not None]
    explained = []
    for i in val_rows[:: max(1, len(val_rows) // n)][:n]:
        rows = segments.of_image(int(i))
        ex = hyb.explain(segments.crops[rows], [tuple(b) for b in segments.bboxes[rows]])
        explained.append((f"{images.paths[i]} (class: {images.classes[i]})",
                          render_explanation(pixels[i], ex, image_size=sizes[i] if sizes else None), ex))  # type: ignore[arg-type]
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
    seeds: int = 1,
    modes: tuple[str, ...] | None = None,
    max_epochs: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = _log_default,
    workspace: str | Path | None = None,
) -> dict[str, Any]:
    """Run the whole loop and write ``out/report.json`` and ``out/report.html``; return the report.

    The workspace lives in ``workspace`` (default ``out/workspace``); one built from another data set
    is refused, never mixed. Segment labels come from the data set's ground-truth part
    masks (recorded as such, never as a person's work); a data set without masks stops with a message
    saying how to label in the notebook. ``random_state`` seeds the split (when images are first
    assigned) and the models; ``seeds`` > 1 measures every figure again with the model seeds
    ``random_state + 1 …`` and reports median, range and paired intervals. ``modes``: the compositions
    measured (default both; ``--quick`` leaves out the prototype composition, about a minute on 2 cores).
    """
    if modes is None:
        modes = ("segments",) if quick else ("segments", "prototype")
    if seeds < 1:
        raise WorkbenchError(f"seeds must be at least 1, got {seeds}")
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    out = Path(out)
    dataset = Path(dataset).resolve()
    onto = ontology if isinstance(ontology, Ontology) else Ontology.load(ontology)
    folder = labelled_folder(dataset, out)
    wpath = Path(workspace) if workspace is not None else out / "workspace"
    settings = Settings(dataset=str(dataset), segmenter=segmenter, segmenter_options=segmenter_options or {},
                        workers=workers, scheduler=scheduler, random_state=random_state)
    n_stages = 13 + ("prototype" in modes) + (seeds - 1)
    stage = _Stages(n_stages, log)
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

        with stage("train", "one model per changed concept, on the training images"):
            bar, close_bar = _training_bar(onto, progress)
            try:
                trained = train(ws, max_epochs=max_epochs or (12 if quick else 30), workers=workers,
                                scheduler=scheduler, progress=bar)
            finally:
                close_bar()
        for note in trained.notes:
            log(note)
        timings.update(trained.seconds)
        log("training:\n" + trained.result.summary())

        with stage("evaluate", "each concept (validation and test) and the composed classifier (test)") as st:
            evaluate(trained)
        timings["evaluate"] = st.seconds
        pixels, load_problems = load_images(trained.images, dataset, max_side=PIXELS_MAX_SIDE)
        original = {im.id: (im.width, im.height) for im in ws.store.images()}
        sizes = [original.get(int(i)) for i in trained.images.image_ids]
        compared, seconds = compare(trained, pixels, quick=quick, max_epochs=max_epochs, modes=modes, stages=stage)
        timings.update(seconds)
        seed_list = [random_state + k for k in range(seeds)]
        per_seed = [_seed_figures(trained.hybrid, compared)]
        if seeds > 1:
            t = time.perf_counter()
            per_seed += more_seeds(trained, pixels, seed_list[1:], quick=quick, max_epochs=max_epochs, modes=modes,
                                   stages=stage)
            timings["more_seeds"] = time.perf_counter() - t
        seed_info = seed_summary(per_seed, seed_list, trained.images, onto.root)
        seed_info["per_seed"] = [{m: _public(v) for m, v in f.items()} for f in per_seed]
        with stage("explain", f"up to {EXPLAINED_IMAGES} test images, part by part"):
            explained = explain_held_out(trained, pixels, sizes=sizes)
        timings["total"] = time.perf_counter() - t_all
        report = _report(onto, dataset, wpath, segmenter, srep, trained, compared, explained,
                         trained.problems + load_problems + list(srep.problems), timings, quick, seed_info)
        report["skipped"] = _skipped(ws, trained, srep, lrep, load_problems, dataset)
        with stage("write", f"{out / 'report.json'} and report.html"):
            write(out, report, onto, explained, log)
        return report
    finally:
        ws.close()


def _public(result: Any) -> Any:
    """A result without its private keys (``_scores``, ``_model``), for ``report.json``."""
    if isinstance(result, dict):
        return {k: _public(v) for k, v in result.items() if not str(k).startswith("_")}
    return result


#: A part-blind baseline within this many balanced-accuracy points of the hybrid is warned about.
BLIND_WARNING_POINTS = 0.05
#: A concept whose ablation moves the root's test balanced accuracy by at most this much is warned about.
UNUSED_POINTS = 0.01


def warnings_for(report: dict[str, Any]) -> list[str]:
    """Sentences a reader must see before the figures: part-blind baselines close to the hybrid, concepts
    that do not work, concepts the decision does not use, figures not measured on test."""
    out: list[str] = []
    hyb = report["hybrid"][0]
    h = hyb.get("balanced_accuracy")
    for name, b in report.get("baselines", {}).items():
        if not name.startswith("colour") or b.get("balanced_accuracy") is None or h is None:
            continue
        if b["balanced_accuracy"] >= h - BLIND_WARNING_POINTS:
            where = "above it" if b["balanced_accuracy"] > h else f"within {BLIND_WARNING_POINTS * 100:.0f} points of it"
            out.append(f"The part-blind baseline {name} scores {b['balanced_accuracy']:.1%} against the hybrid's "
                       f"{h:.1%} on test ({where}), so this data set can be solved (nearly) without parts, and "
                       "the hybrid's result says little about its concepts.")
    bad = [c for c, m in report.get("concepts", {}).items() if m.get("status") in ("weak", "dead")]
    if bad:
        out.append(f"Concept{'s' if len(bad) > 1 else ''} {', '.join(bad)} "
                   f"{'are' if len(bad) > 1 else 'is'} weak or dead on validation (see the concept table).")
    unused = [c for c, a in report.get("ablation", {}).items()
              if a.get("difference") is not None and abs(a["difference"]) <= UNUSED_POINTS]
    if unused:
        out.append(f"Replacing {', '.join(unused)} by a constant (the training prior) leaves the root's test balanced "
                   f"accuracy within {UNUSED_POINTS * 100:.0f} point of where it was: the decision does not use "
                   f"{'them' if len(unused) > 1 else 'it'} (see the ablation table).")
    if hyb.get("on") != "test":
        out.append("No test images: every figure is on the validation images, which also chose the models "
                   "(early stopping, thresholds); they are not held-out results.")
    return out


def _report(onto: Ontology, dataset: Path, wpath: Path, segmenter: str, srep: SegmentRunReport,
            trained: TrainingRun, compared: dict[str, Any], explained: Sequence[tuple[str, bytes, Explanation]],
            problems: Sequence[tuple[str, str]], timings: dict[str, float], quick: bool,
            seed_info: dict[str, Any]) -> dict[str, Any]:
    """``report.json``'s content (its keys are documented in the README)."""
    images = trained.images
    hybrid = [_public(trained.hybrid)] + ([_public(compared["prototype"])] if "prototype" in compared else [])
    report = {
        "ontology": onto.name,
        "root": onto.root,
        "dataset": str(dataset),
        "workspace": str(wpath.resolve()),
        "segmenter": {"name": segmenter, "settings_hash": trained.settings_hash, "images": srep.images,
                      "segments": srep.segments, "cached_images": srep.cached},
        "labels_source": "ground-truth part masks (parts.json), not a person",
        "splits": _splits(images, trained.config),
        "seeds": seed_info,
        "concepts": {c: {"kind": m["kind"], "implementation": m["implementation"], "params": m["params"],
                         "balanced_accuracy": m["val_balanced_accuracy"],
                         "val_balanced_accuracy": m["val_balanced_accuracy"],
                         "test_balanced_accuracy": m["test_balanced_accuracy"], "status": m["status"],
                         "status_reason": m["status_reason"], "train_examples": m["train_examples"],
                         "val_examples": m["val_examples"], "val_positives": m["val_positives"],
                         "test_examples": m["test_examples"], "val_accuracy": m["val_accuracy"]}
                     for c, m in trained.concepts.items()},
        "hybrid": hybrid,
        "baselines": _public(compared["baselines"]),
        "control": _public(compared["control"]),
        "ablation": compared["ablation"],
        "swap": compared["swap"],
        "reuse": compared["reuse"],
        "rules": compared["rules"],
        "retrained": {c: p.reason for c, p in trained.result.plans.items()},
        "explanations": [{"image": name, **ex.to_dict()} for name, _, ex in explained],
        "problems": [{"path": p, "reason": r} for p, r in problems],
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "quick": quick,
    }
    if "prototype" not in compared:
        report["not_run"] = {"prototype": "the study's prototype composition is left out of --quick runs (about a "
                                          "minute on 2 cores); run without --quick to measure it"}
    report["warnings"] = warnings_for(report)
    return report


def _skipped(ws: Workspace, trained: TrainingRun, srep: SegmentRunReport, lrep: LabelRunReport,
             load_problems: Sequence[tuple[str, str]], dataset: Path) -> dict[str, Any]:
    """What the run left out, and why: images that could not be read or segmented, part masks that could
    not be used, images that gave no segments (so they are in no split)."""
    images = [{"path": p, "reason": r, "stage": "segment"} for p, r in srep.problems]
    images += [{"path": p, "reason": r, "stage": "train"} for p, r in trained.problems]
    images += [{"path": p, "reason": r, "stage": "evaluate"} for p, r in load_problems]
    unique = list({i["path"]: i for i in reversed(images)}.values())[::-1]  # each path once, first stage kept
    failed = {Path(i["path"]).resolve() for i in unique}
    kept = {int(i) for i in trained.images.image_ids}
    no_segments = [im.path for im in ws.store.images()
                   if im.id not in kept and resolve_image_path(im.path, dataset).resolve() not in failed]
    return {"images": unique, "masks": [{"path": p, "reason": r} for p, r in lrep.problems],
            "no_masks": list(lrep.no_masks), "no_segments": no_segments}


def _splits(images: ImageTable, config: TrainConfig) -> dict[str, Any]:
    """Counts per side and class, the fractions, and which image is on which side."""
    sides = ("train", "val", "test")
    classes = sorted({str(c) for c in images.classes})
    return {
        **{side: int(images.mask(side).sum()) for side in sides},
        "by_class": {c: {side: int(sum(1 for k, s in zip(images.classes, images.split) if str(k) == c and s == side))
                         for side in sides} for c in classes},
        "fractions": {"val": config.val_fraction, "test": config.test_fraction},
        "how": "by image, class-stratified, as many validation and as many test images of each class; stored in "
               "the workspace's label store when an image is first seen, never moved after",
        "images": {side: [p for p, s in zip(images.paths, images.split) if s == side] for side in sides},
    }


def _rule_comparison(onto: Ontology, images: ImageTable, segments: SegmentTable, config: TrainConfig,
                     concepts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """For every part implemented by a rule, train the net it replaces on the same training segments and
    compare their balanced accuracy on the same validation segments (a choice between them is a choice,
    so validation)."""
    out: dict[str, Any] = {}
    for c in onto.leaves():
        concept = onto.concepts[c]
        if concept.implementation != "rule":
            continue
        tr, ytr, va, yva = leaf_split(segments, images, c, config)
        net = PartNet(c, crop_size=config.crop_size, max_epochs=config.max_epochs, random_state=config.random_state,
                      torch_threads=config.torch_threads)
        net.fit(segments.crops[tr], ytr, segments.crops[va] if len(va) else None, yva if len(va) else None)
        out[c] = {"rule": concept.rule, "val_segments": int(len(va)),
                  "rule_val_balanced_accuracy": concepts[c]["val_balanced_accuracy"], "rule_params": concepts[c]["params"],
                  "net_val_balanced_accuracy": balanced_accuracy(yva, net.predict_proba(segments.crops[va])) if len(va) else None,
                  "net_params": net.n_params}
    return out


def demo(out: str | Path = "demo-out", *, quick: bool = False, seed: int = 0, scene: str = DEFAULT_DEMO_SCENE,
         **kwargs: Any) -> dict[str, Any]:
    """Generate the demo set (if not there yet: ``scene``, ``seed``) and :func:`run` on it with its ontology
    (``ontologies/daisy.yaml`` for the daisy scenes, ``ontologies/house.yaml`` for ``house``), writing
    ``out/report.json`` and ``report.html``; each data set keeps its own workspace in ``out``."""
    out = Path(out)
    n = DEMO_SIZES[0] if quick else DEMO_SIZES[1]
    data = out / f"data-{scene}-{n}-seed{seed}"
    if not (data / "parts.json").exists():
        log = kwargs.get("log", _log_default)
        t = time.perf_counter()
        generate_demo(data, n_per_class=n, seed=seed, scene=scene)
        log(f"generated the demo data set ({scene}, {2 * n} images) in {time.perf_counter() - t:.1f} s: {data}")
    return run(data, shipped_ontology(DEMO_ONTOLOGIES.get(scene, "daisy")), out, quick=quick, random_state=seed,
               workspace=out / f"workspace-{data.name.removeprefix('data-')}", **kwargs)
