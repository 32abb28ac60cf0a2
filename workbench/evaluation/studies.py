"""Which concepts the decision uses, whether each net can be swapped, and paired comparisons.

- :func:`ablation`: every concept below the root in turn has its output replaced by a constant, its
  training prior (the fraction of positive training segments for a part, of positive training images
  for a composite); the change in the root's held-out balanced accuracy, with a paired bootstrap
  confidence interval, says whether the decision uses that concept.
- :func:`swap`: every net concept in turn is retrained with another seed and swapped in, nothing else
  retrained (the source study's modularity test, for every net rather than one picked by name).
- :func:`paired_difference`: the confidence interval of a difference in balanced accuracy between two
  methods scored on the same held-out images (several seeds: averaged per image), e.g. hybrid − CNN.

Part scores are computed once and reused for every ablated or swapped variant: only the concept that
changes is scored again.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workbench.models.contract import ConceptModel
from workbench.models.hybrid import relation_name, score_images
from workbench.models.metrics import balanced_accuracy, paired_bootstrap
from workbench.models.train import (
    ImageTable,
    SegmentTable,
    TrainConfig,
    composite_targets_known,
    leaf_split,
    leaf_targets,
    make_model,
)
from workbench.ontology.graph import Ontology

__all__ = ["Constant", "with_part_scores", "training_prior", "paired_difference", "ablation", "swap", "CONFIDENCE",
           "RESAMPLES"]

#: Confidence level and resamples of every interval in the report.
CONFIDENCE = 0.95
RESAMPLES = 2000


class Constant:
    """A stand-in model whose output is ``value`` for every input (no parameters, no relations)."""

    n_params = 0
    relations: tuple[tuple[str, str], ...] = ()

    def __init__(self, value: float):
        self.value = float(value)

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.value, dtype=np.float64)


class _Scored:
    """A part's scores computed once, returned for the same crops again."""

    relations: tuple[tuple[str, str], ...] = ()

    def __init__(self, values: np.ndarray, n_params: int = 0):
        self.values, self.n_params = values, int(n_params)

    def predict_proba(self, X: Any) -> np.ndarray:
        if len(X) != len(self.values):
            raise ValueError(f"scores were computed for {len(self.values)} segments, asked for {len(X)}")
        return self.values


def with_part_scores(ontology: Ontology, models: Mapping[str, Any], segments: SegmentTable) -> dict[str, Any]:
    """``models`` with every part replaced by its scores on ``segments``' crops, computed once: scoring
    the same table again (metrics, ablation, swap, reuse) costs only the composites. Only valid for
    that table's crops (another number of crops is an error)."""
    return {**models, **{k: _Scored(v, getattr(models[k], "n_params", 0))
                         for k, v in _leaf_scores(ontology, models, segments).items()}}


def training_prior(ontology: Ontology, concept: str, images: ImageTable, segments: SegmentTable) -> float:
    """The fraction of positive training examples of ``concept``: labelled segments of training images
    for a part, training images for a composite whose target is known (:func:`composite_targets_known`)."""
    train = images.mask("train")
    if not ontology.composed_parts(concept):
        rows, y = leaf_targets(segments, concept)
        keep = train[segments.image_index[rows]] if len(rows) else np.zeros(0, bool)
        return float(y[keep].mean()) if keep.any() else 0.0
    targets, known = composite_targets_known(ontology, images, segments)
    keep = train & known[concept]
    return float(targets[concept][keep].mean()) if keep.any() else 0.0


def paired_difference(
    y: np.ndarray, base: np.ndarray, candidate: np.ndarray, rows: np.ndarray, *,
    random_state: int = 0, n_resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Balanced accuracy of ``candidate`` − ``base`` on the image ``rows``, with a paired,
    class-stratified bootstrap interval. ``base``/``candidate``: scores per image row, ``(M,)`` or
    ``(seeds, M)`` (NaN where a method did not score an image: such rows are left out for both)."""
    b = np.atleast_2d(np.asarray(base, dtype=np.float64))
    c = np.atleast_2d(np.asarray(candidate, dtype=np.float64))
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[~np.isnan(b[:, rows]).any(axis=0) & ~np.isnan(c[:, rows]).any(axis=0)]
    yy = np.asarray(y)[rows]
    if not len(rows) or len(set(yy.tolist())) < 2:
        return {"difference": None, "ci_low": None, "ci_high": None, "n": int(len(rows)),
                "why": "needs held-out images of both classes"}
    correct_b = (b[:, rows] >= 0.5) == yy.astype(bool)
    correct_c = (c[:, rows] >= 0.5) == yy.astype(bool)
    boot = paired_bootstrap(yy, correct_b, correct_c, n_resamples=n_resamples, confidence=confidence,
                            random_state=random_state)
    return {"difference": round(boot.difference, 4), "ci_low": round(boot.low, 4), "ci_high": round(boot.high, 4),
            "n": boot.n, "confidence": confidence}


def _leaf_scores(ontology: Ontology, models: Mapping[str, Any], segments: SegmentTable) -> dict[str, np.ndarray]:
    return {leaf: np.asarray(models[leaf].predict_proba(segments.crops), dtype=np.float64).reshape(-1)
            if len(segments) else np.zeros(0) for leaf in ontology.leaves()}


def _root(ontology: Ontology, models: Mapping[str, Any], segments: SegmentTable, n: int) -> tuple[np.ndarray, dict]:
    scores, _, _ = score_images(ontology, models, segments.crops, segments.image_index, n, segments.bboxes)
    return scores[ontology.root], scores


def _effect_words(d: dict[str, Any], what: str) -> str:
    if d.get("difference") is None:
        return "not measurable: " + d.get("why", "no held-out images")
    lo, hi, diff, n = d["ci_low"], d["ci_high"], d["difference"], d["n"]
    if lo == hi == 0:
        return f"no difference on any of the {n} held-out images"
    if hi < 0:
        return f"used: the root loses {-diff:.1%} without {what}"
    if lo > 0:
        return f"the root does better without {what} (+{diff:.1%})"
    if diff < 0:
        return f"the root loses {-diff:.1%} without {what}, but the interval reaches 0: not conclusive on {n} images"
    if diff > 0:
        return f"the root gains {diff:.1%} without {what}, but the interval reaches 0: not conclusive on {n} images"
    return f"no measurable effect on the root ({n} held-out images)"


def ablation(
    ontology: Ontology, models: Mapping[str, ConceptModel], images: ImageTable, segments: SegmentTable, *,
    split: str | None = None, random_state: int = 0,
) -> dict[str, dict[str, Any]]:
    """For every concept below the root: its output replaced by its training prior, the root's held-out
    balanced accuracy before and after, the difference (after − before) and its interval."""
    on = split or images.held_out()
    n = len(images)
    rows = np.flatnonzero(images.mask(on))
    y = images.targets(ontology.root)
    fixed = with_part_scores(ontology, models, segments)
    full, _ = _root(ontology, fixed, segments, n)
    before = balanced_accuracy(y[rows], full[rows])
    out: dict[str, dict[str, Any]] = {}
    for c in ontology.bottom_up():
        if c == ontology.root:
            continue
        prior = training_prior(ontology, c, images, segments)
        variant = dict(fixed)
        variant[c] = Constant(prior)
        ablated, _ = _root(ontology, variant, segments, n)
        d = paired_difference(y, full, ablated, rows, random_state=random_state)
        out[c] = {"constant": round(prior, 4), "balanced_accuracy_before": before,
                  "balanced_accuracy_after": balanced_accuracy(y[rows], ablated[rows]), **d,
                  "verdict": _effect_words(d, c)}
    return out


def _composite_features(ontology: Ontology, concept: str, model: Any, scores: Mapping[str, np.ndarray]) -> np.ndarray:
    cols = [scores[p] for p in ontology.composed_parts(concept)]
    cols += [scores[f"{concept}:{relation_name(a, b)}"] for a, b in getattr(model, "relations", ()) or ()]
    return np.stack(cols, axis=1)


def swap(
    ontology: Ontology, models: Mapping[str, ConceptModel], images: ImageTable, segments: SegmentTable,
    config: TrainConfig = TrainConfig(), *, concepts: Sequence[str] | None = None, split: str | None = None,
) -> dict[str, dict[str, Any]]:
    """For every net concept (or ``concepts``): retrained with ``random_state + 1`` on the same training
    data, swapped in with nothing else retrained; the root's held-out balanced accuracy before and after."""
    on = split or images.held_out()
    n = len(images)
    rows = np.flatnonzero(images.mask(on))
    y = images.targets(ontology.root)
    seed = config.random_state + 1
    fixed = with_part_scores(ontology, models, segments)
    full, scores = _root(ontology, fixed, segments, n)
    before = balanced_accuracy(y[rows], full[rows])
    names = list(concepts) if concepts is not None else [
        c for c in ontology.bottom_up() if ontology.concepts[c].implementation == "net"]
    tr_img, va_img = images.mask("train"), images.mask("val")
    targets, known = composite_targets_known(ontology, images, segments)
    out: dict[str, dict[str, Any]] = {}
    for c in names:
        model = make_model(ontology, c, config, seed)
        if not ontology.composed_parts(c):
            tr, ytr, va, yva = leaf_split(segments, images, c, config)
            model.fit(segments.crops[tr], ytr, segments.crops[va] if len(va) else None, yva if len(va) else None)
        else:
            X, t = _composite_features(ontology, c, models[c], scores), targets[c]
            tr_c, va_c = tr_img & known[c], va_img & known[c]
            model.fit(X[tr_c], t[tr_c], X[va_c] if va_c.any() else None, t[va_c] if va_c.any() else None)
        variant = dict(fixed)
        variant[c] = model
        after, _ = _root(ontology, variant, segments, n)
        d = paired_difference(y, full, after, rows, random_state=config.random_state)
        out[c] = {"how": f"retrained with random_state={seed}, nothing else retrained",
                  "balanced_accuracy_before": before, "balanced_accuracy_after": balanced_accuracy(y[rows], after[rows]),
                  **d, "verdict": _swap_words(d)}
    return out


def _swap_words(d: dict[str, Any]) -> str:
    if d.get("difference") is None:
        return "not measurable: " + d.get("why", "no held-out images")
    if d["ci_low"] == d["ci_high"] == 0:
        return f"swappable: no difference on any of the {d['n']} held-out images"
    if d["ci_low"] <= 0 <= d["ci_high"]:
        return f"swappable: no measurable change ({d['difference']:+.1%}, interval reaches 0; {d['n']} held-out images)"
    return f"not swappable: the root moves by {d['difference']:+.1%} with another seed"
