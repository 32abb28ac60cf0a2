"""What every concept model reports about itself: :func:`binary_metrics` of its probabilities, and the
:func:`data_hash` of the data it was fitted on (both recorded in the model file's header and in the
sidecar's fingerprint); and the two rates the evaluation reports, :func:`accuracy` and
:func:`balanced_accuracy` (rounded to 4 places); and :func:`paired_bootstrap`, the confidence interval
of a difference in balanced accuracy on the same images (the merge gate's, the report's hybrid − CNN,
ablation and swap). Plain numpy, no torch.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

__all__ = ["binary_metrics", "data_hash", "accuracy", "balanced_accuracy", "BootstrapResult", "paired_bootstrap"]


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall of the two classes), log loss and counts.

    >>> binary_metrics(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.2, 0.1]))["balanced_accuracy"]
    0.75
    """
    y = np.asarray(y).astype(bool).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if len(y) == 0:
        return {"accuracy": None, "balanced_accuracy": None, "log_loss": None, "examples": 0, "positives": 0}
    pred = p >= threshold
    recalls = [float(np.mean(pred[y == c] == c)) for c in (False, True) if np.any(y == c)]
    q = np.clip(p, 1e-7, 1 - 1e-7)
    loss = -np.mean(np.where(y, np.log(q), np.log1p(-q)))
    return {
        "accuracy": round(float(np.mean(pred == y)), 6),
        "balanced_accuracy": round(float(np.mean(recalls)), 6),
        "log_loss": round(float(loss), 6),
        "examples": int(len(y)),
        "positives": int(y.sum()),
    }


def data_hash(*arrays: Any) -> str:
    """A content hash of training data (dtype, shape and bytes of each array), ``sha256:<hex>``.

    >>> data_hash(np.zeros(3)) == data_hash(np.zeros(3)) != data_hash(np.ones(3))
    True
    """
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


def accuracy(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float | None:
    """Fraction of correct decisions; None when there is nothing to score.

    >>> accuracy(np.array([1, 0, 1]), np.array([0.9, 0.2, 0.4]))
    0.6667
    """
    y = np.asarray(y)
    if not len(y):
        return None
    return round(float(np.mean((np.asarray(p) >= threshold) == (y == 1))), 4)


def balanced_accuracy(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float | None:
    """Mean of the true-positive and true-negative rates (a constant answer scores 0.5).

    >>> balanced_accuracy(np.array([1, 1, 1, 0]), np.array([1.0, 1.0, 1.0, 1.0]))
    0.5
    """
    y = np.asarray(y)
    pred = np.asarray(p) >= threshold
    rates = [float(np.mean(pred[y == k] == bool(k))) for k in (0, 1) if np.any(y == k)]
    return round(float(np.mean(rates)), 4) if rates else None


# --------------------------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of Δ balanced accuracy (candidate − base); fractions in [0, 1]."""

    base: float  # balanced accuracy of the base (mean over seeds)
    candidate: float
    difference: float  # candidate − base
    low: float  # confidence interval of the difference
    high: float
    confidence: float
    n: int  # validation images
    n_resamples: int
    fraction_not_better: float  # share of resamples with difference <= 0 (a one-sided bootstrap p-value)


def _as_matrix(a: Any, n: int, name: str) -> np.ndarray:
    m = np.asarray(a, dtype=np.float64)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2 or m.shape[1] != n:
        raise WorkbenchError(f"paired_bootstrap: {name} must have {n} entries per seed, got shape {np.shape(a)}")
    return m


def paired_bootstrap(
    y: Sequence[int] | np.ndarray,
    correct_base: Any,
    correct_candidate: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> BootstrapResult:
    """Paired, class-stratified bootstrap of the difference in balanced accuracy.

    ``y`` is each validation image's class (1 = the root), ``correct_*`` whether each model got it
    right: shape ``(n,)`` or ``(seeds, n)`` (several training seeds, averaged per image). Images are
    resampled with replacement within each class, the same draw for both models (paired), so the
    balanced accuracy stays defined and the shared difficulty of an image cancels out. The interval
    is the percentile interval at ``confidence``.
    """
    y = np.asarray(y).astype(np.int64).ravel()
    n = len(y)
    if n == 0:
        raise WorkbenchError("paired_bootstrap: no images to compare on")
    base = _as_matrix(correct_base, n, "correct_base").mean(axis=0)
    cand = _as_matrix(correct_candidate, n, "correct_candidate").mean(axis=0)
    d = cand - base
    classes = [k for k in (0, 1) if np.any(y == k)]
    rng = np.random.default_rng(random_state)
    diffs = np.zeros(n_resamples, dtype=np.float64)
    for k in classes:
        dk = d[y == k]
        draw = rng.integers(0, len(dk), size=(n_resamples, len(dk)))
        diffs += dk[draw].mean(axis=1)
    diffs /= len(classes)

    def ba(v: np.ndarray) -> float:
        return float(np.mean([v[y == k].mean() for k in classes]))

    alpha = 1.0 - confidence
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(
        base=ba(base), candidate=ba(cand), difference=ba(cand) - ba(base), low=float(low), high=float(high),
        confidence=confidence, n=n, n_resamples=n_resamples, fraction_not_better=float(np.mean(diffs <= 0)),
    )
