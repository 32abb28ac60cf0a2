"""The workspace's training job: settings → segmenter and training configuration → collect → split → train.

Every way of training a workspace runs this job: ``workbench train``, the train stage of ``workbench
run`` (:mod:`workbench.evaluation.pipeline`), the notebook's dashboard (``wb.train()``), and the merge
gate (:mod:`workbench.review.gate`, which builds its configuration from the settings the saved models
were trained with and trains in a scratch folder, but takes the segmenter, the configuration and the
tables from here). So the same ``workbench.yaml`` gives the same configuration whichever way it trains::

    workbench.yaml ──training_config──▶ TrainConfig ─────────────────────────┐
                   ──workspace_segmenter──▶ settings hash ──collect_workspace──▶ images, segments (split)
                                                                             └─train_hybrid──▶ TrainingRun

Settings and :class:`~workbench.models.train.TrainConfig` share their names (``crop_size``,
``random_state``, ``torch_threads``, ``composition_relations``): a field of the configuration that is
also a setting takes the setting's value.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.data.segment import make_segmenter
from workbench.data.segments import Segmenter, settings_hash
from workbench.errors import WorkbenchError
from workbench.models.contract import ConceptModel
from workbench.models.store import ModelStore
from workbench.models.train import (
    ImageTable,
    SegmentTable,
    TrainConfig,
    TrainResult,
    collect,
    leaf_targets,
    split_images,
    train_hybrid,
)
from workbench.ontology.edits import RemoveConcept
from workbench.ontology.graph import Ontology
from workbench.workspace.pins import pinned_segment_ids

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace
    from workbench.workspace.settings import Settings

__all__ = [
    "SETTINGS_IN_CONFIG",
    "trainable_ontology",
    "saved_ontology",
    "training_config",
    "workspace_segmenter",
    "collect_workspace",
    "without_pinned",
    "split_note",
    "TrainingRun",
    "train_workspace",
]

#: The :class:`TrainConfig` fields that are workspace settings of the same name.
SETTINGS_IN_CONFIG: tuple[str, ...] = ("crop_size", "random_state", "torch_threads", "composition_relations",
                                       "val_fraction", "test_fraction")


def training_config(settings: Settings, **overrides: Any) -> TrainConfig:
    """The training configuration the workspace ``settings`` give, with ``overrides`` (an override
    of None means "not given": the default stays).

    >>> from workbench.workspace.settings import Settings
    >>> c = training_config(Settings(torch_threads=2, composition_relations=False), max_epochs=3)
    >>> c.torch_threads, c.composition_relations, c.max_epochs
    (2, False, 3)
    """
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise WorkbenchError(f"training_config: no training setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
    values = {name: getattr(settings, name) for name in SETTINGS_IN_CONFIG}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**values)


def workspace_segmenter(ws: Workspace, name: str | None = None, sam_checkpoint: str | Path | None = None) -> Segmenter:
    """The segmenter ``workbench segment`` builds from the workspace settings (``segmenter``,
    ``segmenter_options``, and for SAM ``sam_checkpoint``); ``name`` and ``sam_checkpoint`` override
    the settings, as the command line's ``--segmenter`` and ``--sam-checkpoint`` do; the ``working_size``
    setting, when set, is the segmenter's ``working_size``. Its settings hash picks the workspace's segments."""
    s = ws.settings
    name = name or s.segmenter
    opts = dict(s.segmenter_options)
    if s.working_size is not None:
        opts.setdefault("working_size", s.working_size)
    if name == "sam":
        ckpt = sam_checkpoint or s.sam_checkpoint
        if ckpt:
            opts["checkpoint"] = str(ckpt)
    return make_segmenter(name, **opts)


def collect_workspace(
    ws: Workspace,
    config: TrainConfig,
    segments_hash: str | None,
    *,
    on_problem: Callable[[str, str], None] | None = None,
    split_seed: int | None = None,
    notes: list[str] | None = None,
) -> tuple[ImageTable, SegmentTable]:
    """The workspace's images and the segments made with ``segments_hash``, with their current labels
    and crops (cached under the workspace's cache), split into train, validation and test images.

    The split is the workspace's stored one (:meth:`workbench.data.store.LabelStore.image_splits`):
    images assigned before keep their side; new images are assigned with ``split_seed`` (default:
    ``config.random_state``) and ``config.val_fraction``/``test_fraction``, and recorded. ``notes``
    receives one sentence when images were newly assigned (said once: the next call finds them stored).

    Pinned segments (:func:`workbench.workspace.pins.pinned_segment_ids`: every segment a pin names, of
    any concept) come back *unlabelled*, whatever the store says: their labels train no part, stop no
    training early, fit no rule and count in no concept metric on validation or test, nor in the
    image-level part targets of composites. The segments stay in their images (a pin is a test of a
    segment, not of an image): the root and composites still score every segment of the image, and the
    image keeps its class and its side of the split. See :func:`without_pinned`.
    """
    images, segments = collect(ws.store, segments_hash, config.crop_size, image_root=ws.dataset_root,
                               cache_dir=ws.cache_dir, on_problem=on_problem)
    segments.labels = without_pinned(segments, pinned_segment_ids(ws))
    seed = config.random_state if split_seed is None else split_seed
    stored = ws.store.image_splits()
    images.split = split_images(images, config.val_fraction, seed, config.test_fraction, stored)
    fresh = {int(i): str(side) for i, side in zip(images.image_ids, images.split) if int(i) not in stored}
    if fresh:
        ws.store.assign_splits(fresh, seed=seed)
        if notes is not None:
            notes.append(split_note(fresh, first=not stored, trained_before=ModelStore(ws.models_dir).any_saved()))
    return images, segments


def without_pinned(segments: SegmentTable, pinned: set[int]) -> list[str | None]:
    """The table's labels with every pinned segment's label removed (None: unlabelled).

    >>> import numpy as np
    >>> t = SegmentTable(np.array([4, 5, 6]), np.zeros(3, np.int64), np.zeros((3, 4), np.int64),
    ...                  ["petal", "none", "disk"], np.zeros((3, 2, 2, 3), np.uint8))
    >>> without_pinned(t, {5, 6, 99})
    ['petal', None, None]
    """
    if not pinned:
        return list(segments.labels)
    return [None if int(sid) in pinned else lab for sid, lab in zip(segments.segment_ids, segments.labels)]


def split_note(fresh: dict[int, str], *, first: bool, trained_before: bool) -> str:
    """The sentence said once when images are newly assigned to the split.

    >>> split_note({1: "train", 2: "test", 3: "val"}, first=True, trained_before=True)  # doctest: +ELLIPSIS
    'This workspace now keeps 1 test image aside ...'
    """
    counts = {side: sum(1 for v in fresh.values() if v == side) for side in ("train", "val", "test")}
    sides = f"{counts['train']} train, {counts['val']} validation, {counts['test']} test"
    if first and trained_before:
        return (f"This workspace now keeps {counts['test']} test image{'s' if counts['test'] != 1 else ''} aside "
                f"({sides}; stored in the label store, they never move): nothing is trained, stopped or chosen "
                "on them, only the report scores them. Its models were trained before the test split existed, "
                "so every concept retrains once.")
    if first:
        return (f"Split the images by class into {sides} (stored in the label store: an image never changes "
                "side; test images are only scored by the report, never trained or chosen on).")
    return f"Assigned {len(fresh)} new image{'s' if len(fresh) != 1 else ''} to the split: {sides}."


@dataclass
class TrainingRun:
    """What :func:`train_workspace` did: the training result (models, plans, timings), the tables it
    trained on, the configuration and segments it used, the images it skipped, and how long collecting
    and training took. ``concepts`` (per-concept validation metrics) and ``hybrid`` (the root's) are
    filled by the evaluation stage (:func:`workbench.evaluation.pipeline.evaluate`)."""

    result: TrainResult
    images: ImageTable
    segments: SegmentTable
    config: TrainConfig
    settings_hash: str
    problems: list[tuple[str, str]] = field(default_factory=list)  # (image path, reason): left out
    seconds: dict[str, float] = field(default_factory=dict)  # "collect", "train"
    notes: list[str] = field(default_factory=list)  # sentences to show once (e.g. a newly assigned split)
    concepts: dict[str, dict[str, Any]] = field(default_factory=dict)
    hybrid: dict[str, Any] = field(default_factory=dict)
    # the models with every part's scores on ``segments`` computed once (the evaluation's steps reuse them)
    scored: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def models(self) -> dict[str, ConceptModel]:
        return self.result.models

    @property
    def retrained(self) -> list[str]:
        return self.result.retrained


def _without(ontology: Ontology, keep: Callable[[str], bool]) -> tuple[Ontology, list[str]]:
    """``ontology`` minus its provisional leaves for which ``keep`` is False (repeated: a provisional
    composite whose provisional parts all went becomes a leaf and is asked in turn), and their ids."""
    gone: list[str] = []
    while True:
        drop = next((c for c in ontology.provisional() if c in ontology.leaves() and not keep(c)), None)
        if drop is None:
            return ontology, gone
        ontology = RemoveConcept(drop).apply(ontology)
        gone.append(drop)


def trainable_ontology(ontology: Ontology, images: ImageTable, segments: SegmentTable) -> tuple[Ontology, list[str]]:
    """The ontology to train now, and a sentence per provisional concept left out of it.

    A provisional concept (an accepted addition no parent combines yet) needs labelled training segments
    of both kinds (some of it, some not) before its model can be fitted. Until then it is left out of
    training, so everything else still trains: no parent combines it, so no other fingerprint and nothing
    the classifier computes changes. A confirmed concept without labels stays an error (the classifier
    needs it).
    """
    train = images.mask("train")
    counts: dict[str, tuple[int, int]] = {}

    def ready(c: str) -> bool:
        rows, y = leaf_targets(segments, c)
        keep = train[segments.image_index[rows]] if len(rows) else np.zeros(0, bool)
        pos = int(y[keep].sum())
        counts[c] = (pos, int(keep.sum()) - pos)
        return bool(counts[c][0] and counts[c][1])

    ontology, gone = _without(ontology, ready)
    return ontology, [f"{c} (provisional) is not trained yet: {counts.get(c, (0, 0))[0]} labelled training segments "
                      f"are '{c}' and {counts.get(c, (0, 0))[1]} are not; label some as '{c}' "
                      f"(wb.label(concept='{c}')), then train again" for c in gone]


def saved_ontology(ws: Workspace) -> Ontology:
    """The workspace's ontology as its saved models can score it: provisional concepts not trained yet
    (no saved model) left out. Explanations and `workbench score` use it."""
    store = ModelStore(ws.models_dir)
    return _without(ws.ontology, store.has)[0]


def train_workspace(
    ws: Workspace,
    *,
    force: bool = False,
    max_epochs: int | None = None,
    progress: Callable[[str, str], None] | None = None,
    on_fitted: Callable[[str, ConceptModel], None] | None = None,
    on_problem: Callable[[str, str], None] | None = None,
    executor: Executor | None = None,
    segmenter: Segmenter | None = None,
) -> TrainingRun:
    """Train the workspace's concept models from its labels, only what changed (``force``: all), into
    its ``models/`` folder.

    ``max_epochs``: the part nets' limit (default: the configuration's). ``progress``/``on_fitted``
    follow each concept (see :func:`workbench.models.train.train_hybrid`); ``on_problem(path, reason)``
    hears of each image that can no longer be read (it is left out). ``executor`` trains independent
    parts in parallel. ``segmenter``: whose segments to train on (default :func:`workspace_segmenter`).
    """
    config = training_config(ws.settings, max_epochs=max_epochs)
    shash = settings_hash(segmenter if segmenter is not None else workspace_segmenter(ws))
    problems: list[tuple[str, str]] = []

    def problem(path: str, reason: str) -> None:
        problems.append((path, reason))
        if on_problem is not None:
            on_problem(path, reason)

    t = time.perf_counter()
    notes: list[str] = []
    images, segments = collect_workspace(ws, config, shash, on_problem=problem, notes=notes)
    seconds = {"collect": time.perf_counter() - t}
    if not len(segments):
        raise WorkbenchError(f"{ws.path}: no segments yet: run `workbench segment --workspace {ws.path} "
                             "--dataset DIR` first")
    ontology, waiting = trainable_ontology(ws.ontology, images, segments)
    notes += waiting
    t = time.perf_counter()
    result = train_hybrid(ontology, images, segments, config, models_dir=ws.models_dir, settings_hash=shash,
                          executor=executor, force=force, progress=progress, on_fitted=on_fitted,
                          score_cache=ws.cache_dir / "scores")
    seconds["train"] = time.perf_counter() - t
    return TrainingRun(result, images, segments, config, shash, problems, seconds, notes)
