"""Propagation: after a few labels of a concept, rank the unlabelled segments for it, and retrain it alone.

A person labelling parts one segment at a time spends most of the time on segments a machine could
have sorted. Here, once a part concept has :data:`MIN_LABELS` positive labels (or a trained model),
every unlabelled segment gets a score in 0..1 for that concept from two sources::

    crops ──cheap features (colour, shape, size; computed once per segment)──▶ similarity to the labelled
          positives vs the labelled negatives (k nearest of each)  ─┐
    crops ──the concept's saved model (ModelStore), when there is one──────▶ its probability ──┴─▶ score

- ``order="confident"``: most likely first, for a grid page a person confirms at a glance;
- ``order="uncertain"``: nearest the decision (0.5) first, for single labels (active learning).

The features are the rule features of :func:`workbench.models.rules.feature_matrix` (computed for all
crops at once), a coarse colour histogram of the segment's pixels and the size of its box: no torch,
about 1 ms per 10 segments, cached per workspace and segmenter. :func:`rank_table` is the whole ranking
on a :class:`~workbench.models.train.SegmentTable`'s arrays and a list of labels; the workspace-level
:func:`rank_for_concept` (what the labeler calls) and ``benchmarks/bench_labelling.py`` (the simulated
person) both call it, so the benchmark measures what the labeler does.

:func:`train_concept` retrains one part concept from the label store and saves it through
:class:`~workbench.models.store.ModelStore` with the fingerprint a full training would give it (so
``workbench train`` then keeps it, and retrains only the composites above it); :class:`BackgroundTrainer`
runs it in a background thread every ``every`` labels of a concept, never two trainings of one concept
at once, so the next ranking uses the new model without blocking the labeler's keys.
"""
from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench._io import atomic_write_bytes
from workbench.data.segments import settings_hash
from workbench.errors import WorkbenchError
from workbench.models.job import collect_workspace, training_config, workspace_segmenter
from workbench.models.rules import feature_matrix
from workbench.models.scoring import cached_segment_scores, model_key
from workbench.models.store import ModelStore
from workbench.models.train import collect, leaf_split, make_model, plan_training
from workbench.workspace.folder import Workspace

__all__ = [
    "MIN_LABELS",
    "ORDERS",
    "Ranked",
    "segment_features",
    "similarity_scores",
    "rank_table",
    "rank_for_concept",
    "TrainedConcept",
    "train_concept",
    "BackgroundTrainer",
]

#: Positive labels of a concept before propagation ranks for it (without a trained model).
MIN_LABELS = 5
#: ``order`` values: most likely first (grid pages), nearest the decision first (single labels).
ORDERS = ("confident", "uncertain")
NONE = "none"
#: Nearest labelled neighbours (of each side) whose distances make a segment's similarity score.
K_NEAREST = 5
#: Labelled examples of each side the similarity looks at (a seeded sample beyond this): bounds the
#: distance matrix at 10k segments to a few MB per chunk.
MAX_EXAMPLES = 600
_CHUNK = 2048  # candidate rows per distance block
_HIST_BINS = 3  # colour histogram: 3 levels per RGB channel = 27 bins
_BLACK = 12  # a crop pixel belongs to the segment when some channel is above this (as the rules read it)


@dataclass(frozen=True)
class Ranked:
    """One unlabelled segment ranked for a concept."""

    segment_id: int
    score: float  # 0..1, how much it looks like the concept
    model: str  # what ranked it: e.g. "petal net 3f2a9c1d + similarity (colour+shape, 12 labelled)"


# ------------------------------------------------------------------------------------------- features
def segment_features(crops: np.ndarray, bboxes: np.ndarray | None = None) -> np.ndarray:
    """Cheap features of many segment crops (uint8 N×S×S×3 on black), one float32 row each, standardised
    per column over these crops: the rule features (colour fractions, hue as a saturation-weighted
    angle, elongation, solidity, circularity, area), a 27-bin colour histogram of the segment's pixels
    and, with ``bboxes`` (N×4, x0 y0 x1 y1), the box's log width and height.

    Each group is scaled to carry about equal weight in a Euclidean distance, whatever its size.
    """
    crops = np.asarray(crops)
    n = len(crops)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    F = feature_matrix(crops)[:, :11]
    hue = np.deg2rad(np.nan_to_num(F[:, 1]))
    sat = F[:, 2]
    rule = np.column_stack([F[:, 0], np.cos(hue) * sat, np.sin(hue) * sat, sat, F[:, 3], F[:, 4], F[:, 5], F[:, 6],
                            np.log(np.maximum(F[:, 7], 1.0)), F[:, 8], F[:, 9], F[:, 10]])
    hist = np.zeros((n, _HIST_BINS ** 3))
    for lo in range(0, n, 1024):
        c = crops[lo:lo + 1024]
        m = c.max(axis=3) > _BLACK
        q = (c.astype(np.int32) * _HIST_BINS) // 256
        code = (q[..., 0] * _HIST_BINS + q[..., 1]) * _HIST_BINS + q[..., 2]
        rows = np.broadcast_to(np.arange(len(c))[:, None, None], code.shape)
        counts = np.zeros((len(c), _HIST_BINS ** 3))
        np.add.at(counts, (rows[m], code[m]), 1.0)
        hist[lo:lo + len(c)] = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    groups = [rule, np.sqrt(hist)]
    if bboxes is not None and len(bboxes):
        b = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
        groups.append(np.column_stack([np.log1p(np.maximum(b[:, 2] - b[:, 0], 0)),
                                       np.log1p(np.maximum(b[:, 3] - b[:, 1], 0))]))
    out = []
    for g in groups:
        g = np.nan_to_num(np.asarray(g, dtype=np.float64))
        z = (g - g.mean(axis=0)) / np.maximum(g.std(axis=0), 1e-6)
        out.append(z / np.sqrt(g.shape[1]))  # each group weighs about one unit of squared distance
    return np.concatenate(out, axis=1).astype(np.float32)


def _sample(rows: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    if len(rows) <= cap:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=cap, replace=False))


def _mean_knn(d2: np.ndarray, k: int) -> np.ndarray:
    """Mean distance to the ``k`` nearest columns of each row of squared distances ``d2``."""
    k = min(k, d2.shape[1])
    part = np.partition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else d2
    return np.sqrt(np.maximum(part, 0)).mean(axis=1)


def similarity_scores(features: np.ndarray, positives: np.ndarray, negatives: np.ndarray,
                      rows: np.ndarray | None = None, k: int = K_NEAREST) -> np.ndarray:
    """How much each of ``rows`` (default: all) looks like the ``positives`` rather than the
    ``negatives`` (row indices of ``features``): ``d⁻ / (d⁺ + d⁻)`` with ``d±`` the mean distance to the
    ``k`` nearest of each side, in 0..1 (0.5: as near to both). Without negatives, ``exp(-d⁺ / s)`` with
    ``s`` the positives' own median of that distance among themselves.

    >>> f = np.array([[0.0], [0.1], [5.0], [5.1], [0.05], [5.05]], np.float32)
    >>> s = similarity_scores(f, np.array([0, 1]), np.array([2, 3]), np.array([4, 5]), k=1)
    >>> bool(s[0] > 0.9 and s[1] < 0.1)
    True
    """
    rows = np.arange(len(features)) if rows is None else np.asarray(rows, dtype=np.int64)
    pos = _sample(np.asarray(positives, dtype=np.int64), MAX_EXAMPLES, 1)
    neg = _sample(np.asarray(negatives, dtype=np.int64), MAX_EXAMPLES, 2)
    out = np.zeros(len(rows), np.float64)
    if not len(pos) or not len(rows):
        return out
    P = features[pos].astype(np.float32)
    N = features[neg].astype(np.float32) if len(neg) else None
    pp = (P * P).sum(axis=1)
    nn = (N * N).sum(axis=1) if N is not None else None
    scale = None
    if N is None:
        if len(pos) > 1:
            dd = pp[:, None] + pp[None, :] - 2 * P @ P.T
            np.fill_diagonal(dd, np.inf)
            scale = float(np.median(_mean_knn(dd, min(k, len(pos) - 1)))) or 1.0
        else:
            scale = 1.0
    for lo in range(0, len(rows), _CHUNK):
        X = features[rows[lo:lo + _CHUNK]].astype(np.float32)
        xx = (X * X).sum(axis=1)
        dp = _mean_knn(xx[:, None] + pp[None, :] - 2 * X @ P.T, k)
        if N is None:
            out[lo:lo + len(X)] = np.exp(-dp / scale)
        else:
            dn = _mean_knn(xx[:, None] + nn[None, :] - 2 * X @ N.T, k)
            out[lo:lo + len(X)] = dn / np.maximum(dp + dn, 1e-9)
    return out


# --------------------------------------------------------------------------------------------- ranking
def _order(scores: np.ndarray, order: str) -> np.ndarray:
    if order == "confident":
        return np.argsort(-scores, kind="stable")
    return np.argsort(np.abs(scores - 0.5), kind="stable")


def rank_table(features: np.ndarray, labels: Sequence[str | None], concept: str, *, order: str = "confident",
               limit: int | None = None, candidates: np.ndarray | None = None,
               model_scores: np.ndarray | None = None, model_name: str | None = None,
               model_weight: float = 0.5) -> tuple[np.ndarray, np.ndarray, str]:
    """The ranking itself, on arrays: ``(rows, scores, what ranked them)``, best first.

    ``features``: :func:`segment_features` of every segment of a table; ``labels``: each row's current
    label (a concept, ``"none"`` or None: unlabelled); ``candidates``: the rows that may be ranked
    (default: the unlabelled ones); ``model_scores``: the concept model's probability for every row
    (None: no model). The score is the similarity to the labelled positives vs negatives (every other
    label, as a part model trains) when there are at least :data:`MIN_LABELS` positives, the model's
    probability when there is a model, and ``model_weight`` × model + the rest × similarity when both.
    Raises :class:`WorkbenchError` (naming the concept and its count) with neither.
    """
    if order not in ORDERS:
        raise WorkbenchError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    labs = np.array([NONE if lab is None else lab for lab in labels], dtype=object)
    labelled = np.array([lab is not None for lab in labels], dtype=bool)
    pos = np.flatnonzero(labelled & (labs == concept))
    neg = np.flatnonzero(labelled & (labs != concept))
    if len(pos) < MIN_LABELS and model_scores is None:
        raise WorkbenchError(
            f"concept '{concept}' has {len(pos)} positive label{'s' if len(pos) != 1 else ''}: propagation ranks "
            f"segments for it after {MIN_LABELS} (or once it has a trained model); label "
            f"{MIN_LABELS - len(pos)} more segment{'s' if MIN_LABELS - len(pos) != 1 else ''} as '{concept}' first")
    rows = np.flatnonzero(~labelled) if candidates is None else np.asarray(candidates, dtype=np.int64)
    parts, names = [], []
    if model_scores is not None:
        parts.append(np.asarray(model_scores, dtype=np.float64).reshape(-1)[rows])
        names.append(model_name or f"{concept} model")
    if len(pos) >= MIN_LABELS:
        parts.append(similarity_scores(features, pos, neg, rows))
        names.append(f"similarity (colour+shape, {len(pos)} labelled, {len(neg)} other)")
    if len(parts) == 2:
        scores = model_weight * parts[0] + (1 - model_weight) * parts[1]
    else:
        scores = parts[0]
    idx = _order(scores, order)
    if limit is not None:
        idx = idx[: max(int(limit), 0)]
    return rows[idx], scores[idx], " + ".join(names)


#: Bumped whenever :func:`segment_features` changes what it computes (old cached files are then unused).
FEATURES_VERSION = "1"


def cached_features(crops: np.ndarray, bboxes: np.ndarray | None, cache_dir: Path | None) -> np.ndarray:
    """:func:`segment_features`, kept on disk by content (the crops, the boxes and
    :data:`FEATURES_VERSION`): a labeler opened again on an unchanged workspace reads them instead of
    computing them (about 2 s at 10,000 segments on this machine). An unreadable or mismatched file is
    computed again and replaced; ``cache_dir`` None computes without caching."""
    crops = np.ascontiguousarray(crops)
    boxes = None if bboxes is None else np.ascontiguousarray(np.asarray(bboxes, dtype=np.int64))
    if cache_dir is None:
        return segment_features(crops, boxes)
    h = hashlib.blake2b(digest_size=16)
    for part in (FEATURES_VERSION.encode(), str(crops.shape).encode(), crops.tobytes(),
                 b"no boxes" if boxes is None else boxes.tobytes()):
        h.update(part)
    path = Path(cache_dir) / f"{h.hexdigest()}.npy"
    if path.is_file():
        try:
            got = np.load(path, allow_pickle=False)
            if got.ndim == 2 and got.shape[0] == len(crops):
                return got
        except (OSError, ValueError):
            pass  # a damaged cache file: computed again below
    features = segment_features(crops, boxes)
    buf = io.BytesIO()
    np.save(buf, features, allow_pickle=False)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError:  # a read-only cache costs time, never the ranking
        pass
    return features


# ------------------------------------------------------------------------------------ the workspace
class _Cached:
    """One workspace segmenter's segments, their image classes, crops and features, computed once."""

    def __init__(self, segment_ids: np.ndarray, image_classes: list[str | None], crops: np.ndarray,
                 features: np.ndarray, count: int):
        self.segment_ids = segment_ids
        self.row_of = {int(s): i for i, s in enumerate(segment_ids)}
        self.image_classes = np.array([str(c) if c is not None else "" for c in image_classes], dtype=object)
        self.crops = crops
        self.features = features
        self.count = count
        self.model_scores: dict[str, tuple[Any, np.ndarray, str]] = {}  # concept -> (file stamp, scores, name)


_CACHE: dict[tuple[str, str], _Cached] = {}
_CACHE_LOCK = threading.Lock()


def _table(ws: Workspace, shash: str) -> _Cached:
    """The cached segment table of ``ws`` for the segmenter ``shash``; rebuilt when segments were added."""
    key = (str(Path(ws.path).resolve()), shash)
    count = ws.store.progress(shash)[1]
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit.count == count:
            return hit
    images, segs = collect(ws.store, shash, int(ws.settings.crop_size), image_root=ws.dataset_root,
                           cache_dir=ws.cache_dir)
    classes = [images.classes[i] for i in segs.image_index]
    features = cached_features(segs.crops, segs.bboxes, Path(ws.cache_dir) / "features")
    entry = _Cached(segs.segment_ids, classes, segs.crops, features, count)
    with _CACHE_LOCK:
        _CACHE[key] = entry
    return entry


def _model_scores(ws: Workspace, concept: str, entry: _Cached) -> tuple[np.ndarray | None, str | None]:
    """The concept's saved model's scores on every cached segment (None without a model), recomputed
    only when the model file changes; scores are also cached on disk by model and crop content."""
    store = ModelStore(ws.models_dir)
    if not store.has(concept):
        return None, None
    st = store.model_path(concept).stat()
    stamp = (st.st_mtime_ns, st.st_size)
    hit = entry.model_scores.get(concept)
    if hit is not None and hit[0] == stamp:
        return hit[1], hit[2]
    try:
        model = store.load(concept)
    except WorkbenchError:
        return None, None
    scores = cached_segment_scores({concept: model}, entry.crops, ws.cache_dir / "scores")[concept]
    kind = "rule" if type(model).__name__ == "RuleModel" else "net"
    name = f"{concept} {kind} {(model_key(model) or '')[:8]}".rstrip()
    entry.model_scores[concept] = (stamp, scores, name)
    return scores, name


def rank_for_concept(ws: Workspace, concept: str, *, order: str = "confident", limit: int | None = None,
                     image_class: str | None = None, exclude: Iterable[int] = (),
                     model_weight: float = 0.5) -> list[Ranked]:
    """Unlabelled segments of the workspace (current segmenter settings) ranked for ``concept``:
    order="confident" most-likely first (for grid pages), "uncertain" nearest the decision first (for
    single labels). Raises WorkbenchError naming the concept and the count when it has < MIN_LABELS
    positive labels and no trained model.

    ``image_class``: only segments of images of that class; ``exclude``: segment ids to leave out (e.g.
    the page on screen). The segments' crops and features are computed once per workspace and
    segmenter (again when segments are added); labels are read from the store on every call.
    """
    onto = ws.ontology
    if concept not in onto.concepts:
        raise WorkbenchError(f"no concept '{concept}' in {ws.ontology_path}; known: {', '.join(sorted(onto.concepts))}")
    if concept not in onto.leaves():
        raise WorkbenchError(f"concept '{concept}' has parts ({', '.join(onto.parts(concept))}): segments are ranked "
                             "for parts only (a composite is scored from its parts' scores)")
    shash = settings_hash(workspace_segmenter(ws))
    entry = _table(ws, shash)
    current = {int(r.segment_id): r.concept for r in ws.store.labels()}
    labels = [current.get(int(s)) for s in entry.segment_ids]
    unl = np.array([lab is None for lab in labels], dtype=bool)
    if image_class is not None:
        unl &= entry.image_classes == str(image_class)
    skip = [entry.row_of[int(s)] for s in exclude if int(s) in entry.row_of]
    if skip:
        unl[skip] = False
    scores, name = _model_scores(ws, concept, entry)
    rows, vals, what = rank_table(entry.features, labels, concept, order=order, limit=limit,
                                  candidates=np.flatnonzero(unl), model_scores=scores, model_name=name,
                                  model_weight=model_weight)
    return [Ranked(int(entry.segment_ids[r]), float(v), what) for r, v in zip(rows, vals)]


# ---------------------------------------------------------------------------------- one concept's model
@dataclass(frozen=True)
class TrainedConcept:
    """What :func:`train_concept` did: ``retrained`` False when the saved model already matched the labels."""

    concept: str
    retrained: bool
    reason: str
    seconds: float
    positives: int
    negatives: int
    metrics: Mapping[str, Any]


def train_concept(ws: Workspace, concept: str, *, max_epochs: int | None = None, force: bool = False) -> TrainedConcept:
    """Retrain one part concept of ``ws`` from its current labels and save it through ModelStore, with
    the fingerprint the full training job gives it: ``workbench train`` then keeps it and retrains only
    the composites above it. Composites are not touched. Unchanged labels: nothing is trained
    (``force``: trained anyway)."""
    onto = ws.ontology
    if concept not in onto.leaves():
        raise WorkbenchError(f"train_concept: '{concept}' is not a part of {ws.ontology_path} (parts: "
                             f"{', '.join(onto.leaves())}); composites retrain with `workbench train`")
    t = time.perf_counter()
    config = training_config(ws.settings, max_epochs=max_epochs)
    shash = settings_hash(workspace_segmenter(ws))
    images, segments = collect_workspace(ws, config, shash)
    tr, ytr, va, yva = leaf_split(segments, images, concept, config)
    pos, neg = int(ytr.sum()), int(len(ytr) - ytr.sum())
    plan = plan_training(onto, images, segments, config, ws.models_dir, shash, force=force)[concept]
    if not plan.retrain:
        return TrainedConcept(concept, False, plan.reason, time.perf_counter() - t, pos, neg,
                              ModelStore(ws.models_dir).metrics(concept) or {})
    if pos == 0 or neg == 0:
        raise WorkbenchError(f"concept '{concept}' has {pos} positive and {neg} negative labelled training segments: "
                             f"it needs both to train; label some segments as '{concept}' and some as other "
                             "concepts or 'none'")
    model = make_model(onto, concept, config)
    model.fit(segments.crops[tr], ytr, segments.crops[va] if len(va) else None, yva if len(va) else None)
    ModelStore(ws.models_dir).save(concept, model, fingerprint=plan.fingerprint, parts=plan.parts)
    return TrainedConcept(concept, True, plan.reason, time.perf_counter() - t, pos, neg,
                          dict(getattr(model, "metrics_", {}) or {}))


class BackgroundTrainer:
    """Retrains one concept's model in a background thread every ``every`` new labels of it, without
    blocking the caller; ``notify(concept)`` after each label; ``status`` a short text; ``close()``.

    One worker thread (this machine's cores are few; torch releases the GIL while it trains), a lock
    over the counters, and never two trainings of one concept at once: labels that arrive while a
    concept trains count towards its next training, which starts as soon as that one ends when they
    reach ``every``. Each training opens the workspace anew in the
    thread (SQLite connections stay in the thread that made them). ``on_done(result_or_error)`` is
    called from the worker thread after each training.

    >>> t = BackgroundTrainer("no-such-workspace", every=3)
    >>> t.notify("petal"), t.notify("petal"), t.status
    (False, False, 'petal: 2 of 3 labels towards a retrain')
    >>> t.close()
    """

    def __init__(self, workspace: str | Path | Workspace, every: int = 20, *, max_epochs: int | None = None,
                 on_done: Callable[[TrainedConcept | Exception], None] | None = None,
                 trainer: Callable[[Path, str], TrainedConcept] | None = None) -> None:
        if int(every) < 1:
            raise WorkbenchError(f"BackgroundTrainer: every must be at least 1, got {every}")
        self.path = Path(getattr(workspace, "path", workspace))
        self.every = int(every)
        self.max_epochs = max_epochs
        self.on_done = on_done
        self._train = trainer or self._train_in_thread
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._running: dict[str, Future[Any]] = {}
        self._last: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-retrain")
        self._closed = False

    def _train_in_thread(self, path: Path, concept: str) -> TrainedConcept:
        with Workspace.open(path) as ws:
            return train_concept(ws, concept, max_epochs=self.max_epochs)

    def notify(self, concept: str, n: int = 1) -> bool:
        """Count ``n`` new labels of ``concept``; start its retraining when ``every`` have accumulated
        and it is not training already. Returns whether a training started. Never blocks on training."""
        with self._lock:
            if self._closed:
                return False
            self._counts[concept] = self._counts.get(concept, 0) + int(n)
            if self._counts[concept] < self.every or concept in self._running:
                return False
            self._counts[concept] = 0
            fut = self._pool.submit(self._run, concept)
            self._running[concept] = fut
            return True

    def _run(self, concept: str) -> TrainedConcept:
        self._last[concept] = "training…"
        try:
            res = self._train(self.path, concept)
        except Exception as e:  # noqa: BLE001 - reported in status and to on_done, never lost in a thread
            with self._lock:
                self._running.pop(concept, None)
                self._last[concept] = f"failed: {e}"
            if self.on_done is not None:
                self.on_done(e)
            raise
        with self._lock:
            self._running.pop(concept, None)
            self._last[concept] = (f"retrained in {res.seconds:.1f} s ({res.positives} positive, {res.negatives} other)"
                                   if res.retrained else f"kept ({res.reason})")
            if not self._closed and self._counts.get(concept, 0) >= self.every:  # labels made meanwhile: again
                self._counts[concept] = 0
                self._running[concept] = self._pool.submit(self._run, concept)
        if self.on_done is not None:
            self.on_done(res)
        return res

    def training(self) -> list[str]:
        """Concepts training right now."""
        with self._lock:
            return sorted(self._running)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no training runs (True) or ``timeout`` seconds pass (False). For tests and scripts."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                futs = list(self._running.values())
            if not futs:
                return True
            for f in futs:
                left = None if end is None else max(0.0, end - time.monotonic())
                try:
                    f.result(timeout=left)
                except TimeoutError:
                    return False
                except Exception:  # noqa: BLE001 - the failure is in status; waiting is done
                    pass
            if end is not None and time.monotonic() >= end:
                with self._lock:
                    return not self._running

    @property
    def status(self) -> str:
        """One line per concept: training, its last result, or how many labels towards the next retrain."""
        with self._lock:
            names = sorted(set(self._counts) | set(self._last) | set(self._running))
            lines = []
            for c in names:
                if c in self._running:
                    lines.append(f"{c}: training in the background")
                elif c in self._last and not self._counts.get(c):
                    lines.append(f"{c}: {self._last[c]}")
                else:
                    last = f"; last {self._last[c]}" if c in self._last else ""
                    lines.append(f"{c}: {self._counts.get(c, 0)} of {self.every} labels towards a retrain{last}")
            return "; ".join(lines) or "no labels counted yet"

    def close(self, wait: bool = True) -> None:
        """Stop taking notices; with ``wait``, let a running training finish (its model is saved whole)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> BackgroundTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
