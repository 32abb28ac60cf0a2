"""Training: from the label store to fitted concept models, retraining only what changed.

The data flow::

    store (segments + current labels) ──crops──▶ SegmentTable      (one row per segment)
    store (images + class labels)     ──split──▶ ImageTable        (train / val, by image, balanced val)
    leaves:     crops of labelled train segments → PartNet or RuleModel   (positives: that concept;
                negatives: every other label, "none" included, from images of every class)
    composites: children's image-level scores (max over segments) → CompositeNet, children frozen
                (with ``composition_relations``: also near(A,B) for each pair of parts among the children)
    root:       the same, target = the image's class

Splits are by image, never by segment, so no image contributes to both sides. The validation set
is class-balanced (as many images of each class).

Incremental training: each concept gets a *fingerprint*, a hash of its implementation, model
settings, training data (segment ids and labels, the split) and its children's fingerprints. A
concept whose fingerprint matches its saved model is loaded, not retrained;
:func:`plan_training` says which concepts retrain and why.

Provisional concepts (accepted additions not yet confirmed) are trained like any other, but no parent
combines their score: a composite's children are its :meth:`~workbench.ontology.graph.Ontology.composed_parts`.
So adding one trains its own model and leaves every other fingerprint, and the root's accuracy, as they were.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from workbench._io import atomic_write_bytes
from workbench.data.datasets import load_image
from workbench.data.segment import Segment
from workbench.errors import ImageLoadError, ModelError, WorkbenchError
from workbench.models.contract import ConceptModel
from workbench.models.hybrid import (
    HybridClassifier,
    near_pairs,
    part_scores,
    relation_pairs,
    relation_scores,
    score_images,
)
from workbench.models.nets import CompositeNet, PartNet
from workbench.models.rules import RuleModel
from workbench.models.scoring import cached_segment_scores
from workbench.models.store import ModelStore
from workbench.ontology.graph import Ontology

__all__ = [
    "TrainConfig",
    "FINGERPRINT_NAMES",
    "SegmentTable",
    "ImageTable",
    "collect",
    "resolve_image_path",
    "SPLITS",
    "split_images",
    "leaf_targets",
    "leaf_split",
    "composite_targets",
    "composite_targets_known",
    "evidence_threshold",
    "plan_training",
    "ConceptPlan",
    "TrainResult",
    "train_hybrid",
    "image_level_scores",
]

NONE = "none"


#: Config fields recorded under another name in the fingerprints (``models/<concept>.json``, key
#: ``parts.settings``): the settings file's name won in the code, the sidecars keep the name they were
#: written with, so an unchanged workspace keeps matching its saved models and nothing retrains.
FINGERPRINT_NAMES: Mapping[str, str] = {"composition_relations": "relations"}


@dataclass(frozen=True)
class TrainConfig:
    """How concept models are trained (one per run; part of every concept's fingerprint).

    Fields that are also workspace settings carry the setting's name (``workbench.yaml``), so
    :func:`workbench.models.job.training_config` passes them through unchanged.
    """

    crop_size: int = 32  # side of the segment crops the part nets see
    val_fraction: float = 0.2  # fraction of the smaller class's images held out for validation (choices)
    test_fraction: float = 0.2  # fraction of the smaller class's images held out for test (only reported)
    random_state: int = 0  # seeds the split and every model
    max_epochs: int = 30  # part nets: at most this many epochs (early stopping on validation loss)
    patience: int = 5  # part nets: epochs without improvement before stopping
    interactions: bool = True  # composites: add pairwise products of children's scores ("A and B")
    torch_threads: int = 1  # torch threads per training process (1 is often fastest on a busy 2-core box)
    max_negatives_per_positive: float = 4.0  # part nets: keep all positives, at most this many negatives each
    composition_relations: bool = True  # composites: add near(A,B), the best co-located evidence of two child parts

    def composite_settings(self) -> dict[str, Any]:
        """A composite's settings in its fingerprint: the model settings, plus relations when on (so
        composites saved before relations existed retrain once when it is on, and stay valid when off)."""
        on = {FINGERPRINT_NAMES["composition_relations"]: True} if self.composition_relations else {}
        return {**self.model_settings(), **on}

    def model_settings(self) -> dict[str, Any]:
        """A part's settings in its fingerprint (torch threads are not among them: they change the speed,
        not the model)."""
        return {
            "crop_size": self.crop_size,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "interactions": self.interactions,
            "random_state": self.random_state,
            "max_negatives_per_positive": self.max_negatives_per_positive,
        }

    def with_fingerprint_settings(self, saved: Mapping[str, Any]) -> TrainConfig:
        """This config with the settings a saved model's fingerprint recorded (the first item of
        :meth:`workbench.models.store.ModelStore.saved_training`); keys that are no config field are
        ignored, a wrong value raises ``TypeError``/``ValueError`` as the constructor does."""
        fields_by_key = {FINGERPRINT_NAMES.get(f.name, f.name): f.name for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{fields_by_key[k]: v for k, v in saved.items() if k in fields_by_key})


# --------------------------------------------------------------------------------------------- tables
@dataclass
class ImageTable:
    """One row per image: its store id, path, class, and split."""

    image_ids: np.ndarray  # int64 (M,)
    paths: list[str]
    classes: list[str | None]
    shas: list[str]
    split: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<U5"))  # "train" | "val" | "test"

    def __len__(self) -> int:
        return len(self.image_ids)

    def targets(self, positive: str) -> np.ndarray:
        """1 for images of class ``positive`` (the ontology's root), else 0."""
        return np.array([c == positive for c in self.classes], dtype=np.int64)

    def mask(self, split: str) -> np.ndarray:
        return self.split == split

    def held_out(self) -> str:
        """The split reported figures are measured on: ``"test"`` when the table has test images, else
        ``"val"`` (a library call that split only train / validation; the figure then says so)."""
        return "test" if self.mask("test").any() else "val"


@dataclass
class SegmentTable:
    """One row per segment of every image: its store id, image row, box, current label and crop."""

    segment_ids: np.ndarray  # int64 (N,)
    image_index: np.ndarray  # int64 (N,): row in the ImageTable
    bboxes: np.ndarray  # int64 (N, 4)
    labels: list[str | None]  # current label: a concept id, "none", or None (unlabelled)
    crops: np.ndarray  # uint8 (N, S, S, 3)

    def __len__(self) -> int:
        return len(self.segment_ids)

    def of_image(self, i: int) -> np.ndarray:
        """Row indices of image row ``i``'s segments."""
        return np.flatnonzero(self.image_index == i)

    def labelled(self) -> np.ndarray:
        return np.array([lab is not None for lab in self.labels], dtype=bool)


def resolve_image_path(path: str, image_root: Path | None) -> Path:
    """Where an image the store recorded as ``path`` lives: absolute paths as they are, relative ones
    under ``image_root`` (the data set)."""
    p = Path(path)
    if p.is_absolute() or image_root is None:
        return p
    return image_root / p


def collect(
    store: Any,
    settings_hash: str | None,
    crop_size: int = 32,
    image_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    on_problem: Callable[[str, str], None] | None = None,
) -> tuple[ImageTable, SegmentTable]:
    """Read images, segments and current labels from the store and cut every segment's crop.

    Crops are cached per image (content hash + segmenter settings + crop size) under
    ``cache_dir/crops`` as plain ``.npz`` files; a damaged entry is recomputed. An image that can no
    longer be read is reported through ``on_problem(path, reason)`` and left out.
    """
    root = Path(image_root) if image_root is not None else None
    crop_dir = Path(cache_dir) / "crops" if cache_dir is not None else None
    rows = store.segments_with_labels(settings_hash=settings_hash)
    by_image: dict[int, list[tuple[Any, Any]]] = {}
    for seg, lab in rows:
        by_image.setdefault(seg.image_id, []).append((seg, lab))

    images = [im for im in store.images() if im.id in by_image or settings_hash is None]
    images.sort(key=lambda im: im.id)
    keep: list[Any] = []
    seg_ids: list[int] = []
    img_idx: list[int] = []
    boxes: list[tuple[int, int, int, int]] = []
    labels: list[str | None] = []
    # every crop goes straight into one array (no per-image copies kept until a final stack)
    crops = np.empty((sum(len(v) for v in by_image.values()), crop_size, crop_size, 3), np.uint8)
    for im in images:
        segs = by_image.get(im.id, [])
        cached = _read_crops(crop_dir, im.sha256, settings_hash, crop_size, len(segs))
        if cached is None and segs:
            path = resolve_image_path(im.path, root)
            try:
                pixels = load_image(path)
            except ImageLoadError as e:
                if on_problem:
                    on_problem(str(path), e.reason)
                continue
            cached = np.stack(  # each crop from its segment's box: never a full-image mask
                [Segment.from_crop(s.crop_mask(), s.bbox, s.shape, s.area).crop(pixels, crop_size) for s, _ in segs]
            ).astype(np.uint8)
            del pixels  # a large photo is held for its own crops only
            _write_crops(crop_dir, im.sha256, settings_hash, crop_size, cached)
        i = len(keep)
        keep.append(im)
        if cached is not None and len(segs):
            crops[len(seg_ids) : len(seg_ids) + len(segs)] = cached
        for s, lab in (segs if cached is not None else []):
            seg_ids.append(s.id)
            img_idx.append(i)
            boxes.append(s.bbox)
            labels.append(lab.concept if lab is not None else None)
    itab = ImageTable(
        np.array([im.id for im in keep], dtype=np.int64),
        [im.path for im in keep],
        [im.class_label for im in keep],
        [im.sha256 for im in keep],
    )
    stab = SegmentTable(
        np.array(seg_ids, dtype=np.int64),
        np.array(img_idx, dtype=np.int64),
        np.array(boxes, dtype=np.int64).reshape(-1, 4),
        labels,
        crops[: len(seg_ids)] if len(seg_ids) < len(crops) else crops,
    )
    return itab, stab


def _crop_path(crop_dir: Path, sha: str, settings_hash: str | None, size: int) -> Path:
    return crop_dir / f"{sha[:24]}-{(settings_hash or 'all')[:16]}-{size}.npz"


def _read_crops(crop_dir: Path | None, sha: str, shash: str | None, size: int, n: int) -> np.ndarray | None:
    if crop_dir is None:
        return None
    p = _crop_path(crop_dir, sha, shash, size)
    try:
        with np.load(p, allow_pickle=False) as z:
            crops = z["crops"]
            digest = str(z["sha256"])
        if crops.shape != (n, size, size, 3) or hashlib.sha256(crops.tobytes()).hexdigest() != digest:
            return None
        return crops
    except (OSError, KeyError, ValueError, EOFError):
        return None


def _write_crops(crop_dir: Path | None, sha: str, shash: str | None, size: int, crops: np.ndarray) -> None:
    if crop_dir is None:
        return
    import io

    buf = io.BytesIO()
    np.savez(buf, crops=crops, sha256=np.array(hashlib.sha256(crops.tobytes()).hexdigest()))
    atomic_write_bytes(_crop_path(crop_dir, sha, shash, size), buf.getvalue())


SPLITS = ("train", "val", "test")


def split_images(
    images: ImageTable,
    val_fraction: float = 0.2,
    random_state: int = 0,
    test_fraction: float = 0.0,
    assigned: Mapping[int, str] | None = None,
) -> np.ndarray:
    """Assign each image to "train", "val" or "test", by image, class-stratified and class-balanced.

    Each class gives the same number of validation images, ``round(val_fraction * n)``, and of test
    images, ``round(test_fraction * n)``, where ``n`` is the smallest class's image count. Images in
    ``assigned`` (store id → split: the workspace's stored split) keep their side; the others fill what
    is missing of each class's quota, test first, then validation, in an order given by a hash of the
    image's content and the seed. So adding images never moves an image between sides: a test image
    stays a test image.

    >>> t = ImageTable(np.arange(6), [""] * 6, ["a", "a", "a", "a", "b", "b"], [str(i) for i in range(6)])
    >>> s = split_images(t, 0.5)
    >>> sorted(zip(t.classes, s)).count(("a", "val")), sorted(zip(t.classes, s)).count(("b", "val"))
    (1, 1)
    >>> s = split_images(t, 0.5, test_fraction=0.5)
    >>> [int(np.sum(s == side)) for side in ("train", "val", "test")]
    [2, 2, 2]
    """
    for name, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= v < 1.0 or (name == "val_fraction" and v == 0.0):
            raise WorkbenchError(f"{name} must be at least 0 and below 1 (val_fraction above 0), got {v}")
    split = np.full(len(images), "train", dtype="<U5")
    groups: dict[str | None, list[int]] = {}
    for i, c in enumerate(images.classes):
        groups.setdefault(c, []).append(i)
    if not groups:
        return split
    known = dict(assigned or {})
    smallest = min(len(g) for g in groups.values())
    quota = {"test": int(round(test_fraction * smallest)), "val": int(round(val_fraction * smallest))}
    for members in groups.values():
        fresh = []
        for i in members:
            side = known.get(int(images.image_ids[i]))
            if side in SPLITS:
                split[i] = side
            else:
                fresh.append(i)
        order = sorted(
            fresh, key=lambda i: hashlib.sha256(f"{random_state}:{images.shas[i]}:{i}".encode()).hexdigest()
        )
        for side in ("test", "val"):
            missing = max(0, quota[side] - int(np.sum(split[members] == side)))
            for i in order[:missing]:
                split[i] = side
            order = order[missing:]
    return split


# -------------------------------------------------------------------------------------------- targets
def leaf_targets(segments: SegmentTable, concept: str) -> tuple[np.ndarray, np.ndarray]:
    """(row indices of labelled segments, 1 where the label is ``concept``) — every other label,
    ``"none"`` included, is a negative, whatever the image's class."""
    rows = np.flatnonzero(segments.labelled())
    y = np.array([segments.labels[r] == concept for r in rows], dtype=np.int64)
    return rows, y


def composite_targets_known(
    ontology: Ontology, images: ImageTable, segments: SegmentTable
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Image-level targets for every concept, and where each target is known.

    A part is *present* on an image when some segment of it is labelled with the part, *absent* only
    when the image is decided (every one of its segments has a label, ``"none"`` included) and none is
    the part, and *unknown* otherwise: a partly labelled image whose labelled segments are not petals
    says nothing about its petals. An inner composite is present when all of its parts are present
    (recursively; a flower head is there when petals and a disk are), absent when one of them is known
    to be absent, else unknown. The root is the image's class, always known.

    Returns ``(targets, known)``: int64 0/1 arrays (0 where unknown) and bool arrays, one per concept.
    Composites train, early-stop and are measured only where ``known`` is True; with every segment
    labelled (ground-truth masks) everything is known and the targets are exactly the presence sets.
    """
    n = len(images)
    idx = np.asarray(segments.image_index, dtype=np.int64)
    unlabelled = ~segments.labelled() if len(segments) else np.zeros(0, dtype=bool)
    decided = np.bincount(idx[unlabelled], minlength=n)[:n] == 0 if len(segments) else np.ones(n, dtype=bool)
    labels = np.array([lab if lab is not None else "" for lab in segments.labels], dtype=object)
    present: dict[str, np.ndarray] = {}
    known: dict[str, np.ndarray] = {}
    for c in ontology.leaves():
        v = np.zeros(n, dtype=np.int64)
        if len(segments):
            v[idx[labels == c]] = 1
        present[c] = v
        known[c] = (v == 1) | decided
    for c in ontology.bottom_up():
        if c in present:
            continue
        if c == ontology.root:
            present[c] = images.targets(ontology.root)
            known[c] = np.ones(n, dtype=bool)
        else:
            parts = ontology.composed_parts(c)
            pres = np.all(np.stack([present[p] == 1 for p in parts]), axis=0)
            absent = np.any(np.stack([known[p] & (present[p] == 0) for p in parts]), axis=0)
            present[c] = pres.astype(np.int64)
            known[c] = pres | absent
    return present, known


def composite_targets(ontology: Ontology, images: ImageTable, segments: SegmentTable) -> dict[str, np.ndarray]:
    """Image-level 0/1 targets for every concept (:func:`composite_targets_known`'s first half: an
    unknown target reads 0). Use :func:`composite_targets_known` to leave unknown images out."""
    return composite_targets_known(ontology, images, segments)[0]


def evidence_threshold(scores: np.ndarray, present: np.ndarray) -> float:
    """The image-level score threshold that best separates images where a part is known present from
    those where it is known absent (highest balanced accuracy of ``score >= t``; the lowest such ``t``);
    0.5 when both kinds are not there. An image's score is its best segment's, so on a busy image a
    part net's look-alike segment often passes 0.5: the threshold is set where the known images say.

    >>> evidence_threshold(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 1, 0, 0]))
    0.8
    >>> evidence_threshold(np.array([0.9]), np.array([1]))
    0.5
    """
    scores, present = np.asarray(scores, dtype=np.float64), np.asarray(present).astype(bool)
    if present.all() or not present.any():
        return 0.5
    best, best_t = -1.0, 0.5
    for t in np.unique(scores):
        hit = scores >= t
        ba = 0.5 * (hit[present].mean() + (~hit[~present]).mean())
        if ba > best + 1e-12:
            best, best_t = ba, float(t)
    return best_t


# ------------------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class ConceptPlan:
    concept: str
    retrain: bool
    reason: str  # "new concept", "training data changed", "children changed", "settings changed", ...
    fingerprint: str
    parts: dict[str, Any] = field(default_factory=dict, compare=False)  # what the fingerprint hashes


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _leaf_fingerprint_parts(ontology: Ontology, c: str, segments: SegmentTable, split: np.ndarray,
                            config: TrainConfig, settings_hash: str | None) -> dict[str, Any]:
    rows, y = leaf_targets(segments, c)
    side = split[segments.image_index[rows]] if len(rows) else np.zeros(0, dtype="<U5")
    concept = ontology.concepts[c]
    return {
        "implementation": concept.implementation,
        "rule": concept.rule,
        "settings": config.model_settings(),
        "segmenter": settings_hash,
        "data": _digest([segments.segment_ids[rows].tolist(), y.tolist(), side.tolist()]),
    }


def plan_training(
    ontology: Ontology,
    images: ImageTable,
    segments: SegmentTable,
    config: TrainConfig,
    models_dir: Path | None,
    settings_hash: str | None = None,
    force: bool = False,
) -> dict[str, ConceptPlan]:
    """Which concepts must retrain, and why; the others load their saved model."""
    store = ModelStore(models_dir) if models_dir is not None else None
    targets, known = composite_targets_known(ontology, images, segments)
    prints: dict[str, str] = {}
    plans: dict[str, ConceptPlan] = {}
    for c in ontology.bottom_up():
        if c in ontology.leaves():
            parts = _leaf_fingerprint_parts(ontology, c, segments, images.split, config, settings_hash)
        else:
            parts = {
                "implementation": ontology.concepts[c].implementation,
                "children": {p: prints[p] for p in ontology.composed_parts(c)},
                "settings": config.composite_settings(),
                # the known mask joins the hash only when some target is unknown, so a fully labelled
                # workspace keeps the fingerprints it always had
                "data": _digest([images.image_ids.tolist(), targets[c].tolist(), images.split.tolist()]
                                + ([] if known[c].all() else [known[c].tolist()])),
            }
        fp = _digest(parts)
        prints[c] = fp
        saved = store.sidecar(c) if store is not None else None
        if force:
            plans[c] = ConceptPlan(c, True, "forced", fp, parts)
        elif saved is None:
            plans[c] = ConceptPlan(c, True, "new concept (no saved model)", fp, parts)
        elif saved.fingerprint == fp and store is not None and store.has(c):
            plans[c] = ConceptPlan(c, False, "unchanged", fp, parts)
        else:
            old = saved.parts
            why = [k for k in ("implementation", "rule", "settings", "segmenter", "data") if old.get(k) != parts.get(k)]
            if "children" in parts:
                changed = [p for p, v in parts["children"].items() if old.get("children", {}).get(p) != v]
                if changed:
                    why.append(f"children changed ({', '.join(changed)})")
            names = {"data": "training data changed", "settings": "settings changed", "segmenter": "segments changed",
                     "implementation": "implementation changed", "rule": "rule changed"}
            plans[c] = ConceptPlan(c, True, "; ".join(names.get(w, w) for w in why) or "model file changed", fp, parts)
    return plans


# ------------------------------------------------------------------------------------------- training
def make_model(ontology: Ontology, concept: str, config: TrainConfig, random_state: int | None = None) -> ConceptModel:
    """A fresh, unfitted model for ``concept`` as the ontology says (net or rule, part or composite)."""
    c = ontology.concepts[concept]
    seed = config.random_state if random_state is None else random_state
    if not ontology.composed_parts(concept):
        if c.implementation == "rule":
            return RuleModel(c.rule, concept=concept)
        return PartNet(concept, crop_size=config.crop_size, max_epochs=config.max_epochs,
                       patience=config.patience, random_state=seed, torch_threads=config.torch_threads)
    if c.implementation == "rule":
        raise ModelError(
            f"concept '{concept}' has parts and implementation 'rule': rules score segments, so only a part "
            "(a concept without parts) can be a rule"
        )
    return CompositeNet(concept, children=ontology.composed_parts(concept), interactions=config.interactions,
                        relations=relation_pairs(ontology, concept) if config.composition_relations else (),
                        random_state=seed, torch_threads=config.torch_threads)


def _cap_negatives(rows: np.ndarray, y: np.ndarray, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Keep every positive and a seeded sample of at most ``max_negatives_per_positive`` negatives each.

    Most segments of an image are background ("none"): without a cap, training time grows with the
    background while the positives stay few. Validation is never subsampled.
    """
    pos, neg = rows[y == 1], rows[y == 0]
    cap = int(np.ceil(config.max_negatives_per_positive * max(len(pos), 1)))
    if len(neg) > cap:
        rng = np.random.default_rng(config.random_state)
        neg = np.sort(rng.choice(neg, size=cap, replace=False))
    keep = np.sort(np.concatenate([pos, neg]))
    return keep, np.isin(keep, pos).astype(np.int64)


def leaf_split(
    segments: SegmentTable, images: ImageTable, concept: str, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A part's training and validation rows and targets: ``(tr, ytr, va, yva)``.

    Rows are labelled segments (see :func:`leaf_targets`); a segment goes to the side of its image;
    training negatives are capped (:func:`_cap_negatives`), validation is kept whole. Segments of test
    images are on neither side.
    """
    rows, y = leaf_targets(segments, concept)
    side = images.split[segments.image_index[rows]] if len(rows) else np.zeros(0, dtype="<U5")
    train_side, val_side = side == "train", side == "val"
    tr, ytr = _cap_negatives(rows[train_side], y[train_side], config)
    return tr, ytr, rows[val_side], y[val_side]


def _fit_leaf(task: tuple[ConceptModel, np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> ConceptModel:
    model, Xtr, ytr, Xva, yva = task
    return model.fit(Xtr, ytr, Xva if len(yva) else None, yva if len(yva) else None)


def image_level_scores(
    ontology: Ontology, models: Mapping[str, ConceptModel], segments: SegmentTable, n_images: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every concept's score per image, the winning segment row per part, and per-segment scores
    (:func:`workbench.models.hybrid.score_images` over the table). Images without segments score 0 on every part."""
    return score_images(ontology, models, segments.crops, segments.image_index, n_images, segments.bboxes)


@dataclass
class TrainResult:
    """What :func:`train_hybrid` did: the models, the plan it followed, and timings."""

    ontology: Ontology
    models: dict[str, ConceptModel]
    plans: dict[str, ConceptPlan]
    seconds: dict[str, float]
    examples: dict[str, int]  # training examples per concept (segments for parts, images for composites)
    #: per composite, how its targets were filled where the labels left them unknown (see train_hybrid)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def retrained(self) -> list[str]:
        return [c for c, p in self.plans.items() if p.retrain]

    def hybrid(self) -> HybridClassifier:
        return HybridClassifier(self.ontology, self.models)

    def summary(self) -> str:
        lines = []
        for c, p in self.plans.items():
            verb = "trained" if p.retrain else "kept   "
            t = f" in {self.seconds.get(c, 0.0):.1f} s" if p.retrain else ""
            lines.append(f"  {verb} {c:<16} {p.reason}{t}")
            if c in self.notes:
                lines.append(f"  {'':7} {'':16} {self.notes[c]}")
        return "\n".join(lines)


def train_hybrid(
    ontology: Ontology,
    images: ImageTable,
    segments: SegmentTable,
    config: TrainConfig = TrainConfig(),
    models_dir: str | Path | None = None,
    settings_hash: str | None = None,
    executor: Executor | None = None,
    force: bool = False,
    label_override: Sequence[str | None] | None = None,
    seeds: Mapping[str, int] | None = None,
    progress: Callable[[str, str], None] | None = None,
    on_fitted: Callable[[str, ConceptModel], None] | None = None,
    score_cache: str | Path | None = None,
) -> TrainResult:
    """Fit (or load, when unchanged) every concept model, leaves first, then composites bottom-up.

    ``images.split`` must be set (see :func:`split_images`). Leaves train independently, through
    ``executor`` when one is given (a process pool or a Dask client's executor). With
    ``models_dir`` set, fitted models and their fingerprints are saved there; with
    ``label_override`` (the shuffled-labels control) or ``seeds`` nothing is saved.
    ``progress(concept, "training" | "done")`` and ``on_fitted(concept, model)`` (each model as soon
    as it is fitted, with its ``metrics_``) let a dashboard follow along. ``score_cache`` (a folder,
    e.g. the workspace's ``cache/scores``): every part's per-segment scores, which the composites train
    on, are kept there by model content and crops (:func:`workbench.models.scoring.cached_segment_scores`),
    so a part that did not retrain is not scored again.

    Composites train, early-stop and are measured on images whose target is known
    (:func:`composite_targets_known`). Where the known training images are of one kind only (partly
    labelled images: "absent" is known only on an image whose every segment is labelled), the unknown
    training images take their target from the evidence: each part as labelled where known, else its
    model's image-level score >= 0.5; ``TrainResult.notes`` says so. With every segment labelled nothing changes.
    """
    if len(images.split) != len(images):
        raise WorkbenchError("images.split is not set: call split_images(images) first")
    if label_override is not None:
        segments = SegmentTable(segments.segment_ids, segments.image_index, segments.bboxes,
                                list(label_override), segments.crops)
    mdir = Path(models_dir) if models_dir is not None and label_override is None and not seeds else None
    plans = plan_training(ontology, images, segments, config, mdir, settings_hash, force=force or mdir is None)
    models: dict[str, ConceptModel] = {}
    seconds: dict[str, float] = {}
    examples: dict[str, int] = {}
    notes: dict[str, str] = {}
    note = progress or (lambda c, msg: None)

    # leaves, independent of each other
    tasks, names = [], []
    for leaf in ontology.leaves():
        tr, ytr, va, yva = leaf_split(segments, images, leaf, config)
        examples[leaf] = int(len(tr))
        if not plans[leaf].retrain:
            models[leaf] = ModelStore(mdir).load(leaf)  # type: ignore[arg-type]
            continue
        if ytr.sum() == 0 or ytr.sum() == len(ytr):
            raise WorkbenchError(
                f"concept '{leaf}' has {int(ytr.sum())} positive and {int(len(ytr) - ytr.sum())} negative "
                "labelled training segments: it needs both. Label some segments as "
                f"'{leaf}' (and some as other concepts or 'none'), then train again: in a notebook with "
                "`workbench.open('WS').label()`, or from ground-truth part masks with "
                "`workbench label --workspace WS --from-masks`"
            )
        seed = (seeds or {}).get(leaf)
        tasks.append((make_model(ontology, leaf, config, seed), segments.crops[tr], ytr, segments.crops[va], yva))
        names.append(leaf)
    t0 = time.perf_counter()
    fitted = list(executor.map(_fit_leaf, tasks)) if executor is not None and len(tasks) > 1 else None
    for k, leaf in enumerate(names):
        t = time.perf_counter()
        note(leaf, "training")
        models[leaf] = fitted[k] if fitted is not None else _fit_leaf(tasks[k])
        seconds[leaf] = time.perf_counter() - (t0 if fitted is not None else t)
        note(leaf, "done")
        if on_fitted is not None:
            on_fitted(leaf, models[leaf])

    # composites, bottom-up, children frozen
    targets, known_target = composite_targets_known(ontology, images, segments)
    known = (cached_segment_scores(models, segments.crops, score_cache, only=ontology.leaves())
             if score_cache is not None else None)
    img_scores, _, seg_scores = part_scores(ontology, models, segments.crops, segments.image_index, len(images),
                                            known=known)
    tr_img, va_img = images.mask("train"), images.mask("val")
    near = near_pairs(segments.bboxes, segments.image_index) if config.composition_relations else None
    for c in ontology.bottom_up():
        if c in img_scores:
            continue
        cols = [img_scores[p] for p in ontology.composed_parts(c)]
        if near is not None:
            cols += [relation_scores(seg_scores[a], seg_scores[b], near, segments.image_index, len(images))[0]
                     for a, b in relation_pairs(ontology, c)]
        X = np.stack(cols, axis=1)
        y = targets[c]
        # only images whose target is known: a partly labelled image is no negative
        tr_c, va_c = tr_img & known_target[c], va_img & known_target[c]
        if (plans[c].retrain and c != ontology.root and not known_target[c][tr_img].all()
                and (not tr_c.any() or y[tr_c].min() == y[tr_c].max())):
            # The known training images are of one kind only (grid labels leave images partly labelled, so
            # "absent" is rarely known): the unknown ones take their target from the evidence, each part
            # labelled present/absent where known, else its model's image-level score at or above the
            # threshold that best separates the validation images whose part is known (0.5 without them).
            # Validation (early stopping) and every measurement still use known targets only.
            evidence = np.all(np.stack([
                np.where(known_target[p], targets[p] == 1,
                         img_scores[p] >= evidence_threshold(img_scores[p][va_img & known_target[p]],
                                                             targets[p][va_img & known_target[p]]))
                for p in ontology.composed_parts(c)]), axis=0)
            y = np.where(known_target[c], y, evidence.astype(np.int64))
            kind = ("no" if not tr_c.any() else "only positive" if y[tr_c].max() else "only negative")
            filled = tr_img & ~known_target[c]
            notes[c] = (f"{int(filled.sum())} training images with an unknown target took it from the part models "
                        f"({int(y[filled].sum())} present; {kind} training targets were known)")
            tr_c = tr_img
        examples[c] = int(tr_c.sum())
        if plans[c].retrain:
            if y[tr_c].min(initial=1) == y[tr_c].max(initial=0):
                raise WorkbenchError(
                    f"concept '{c}' has only {'positive' if y[tr_c].max(initial=0) else 'negative'} training "
                    f"images ({int(tr_c.sum())} of {int(tr_img.sum())} training images have a known target"
                    f"{', the rest filled from the part models' if c in notes else ''}): "
                    "it needs both (for the root: images of its class and of other classes; for a "
                    "composite: images where all of its parts are labelled, and images where one of them is "
                    "known to be absent, every segment of the image labelled and none with that part)"
                )
            t = time.perf_counter()
            note(c, "training")
            seed = (seeds or {}).get(c)
            m = make_model(ontology, c, config, seed)
            m.fit(X[tr_c], y[tr_c], X[va_c] if va_c.any() else None, y[va_c] if va_c.any() else None)
            seconds[c] = time.perf_counter() - t
            note(c, "done")
            models[c] = m
            if on_fitted is not None:
                on_fitted(c, m)
        else:
            models[c] = ModelStore(mdir).load(c)  # type: ignore[arg-type]
        img_scores[c] = np.asarray(models[c].predict_proba(X), dtype=np.float64)

    if mdir is not None:
        store = ModelStore(mdir)
        for c, p in plans.items():
            if p.retrain:
                store.save(c, models[c], fingerprint=p.fingerprint, parts=p.parts)
    return TrainResult(ontology, models, plans, seconds, examples, notes)
