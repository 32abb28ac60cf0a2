"""What every concept model reports about itself: :func:`binary_metrics` of its probabilities, and the
:func:`data_hash` of the data it was fitted on (both recorded in the model file's header and in the
sidecar's fingerprint); and the two rates the evaluation reports, :func:`accuracy` and
:func:`balanced_accuracy` (rounded to 4 places). Plain numpy, no torch.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

__all__ = ["binary_metrics", "data_hash", "accuracy", "balanced_accuracy"]


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
