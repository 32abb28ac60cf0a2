"""Hand-built concept models for tests whose answers can be checked by hand (test_hybrid, test_evaluate,
test_health): a part whose score per segment comes from a table, and a composite with fixed weights."""
from __future__ import annotations

import numpy as np

__all__ = ["Table", "Weighted"]


class Table:
    """A part 'model': a segment's score from a table, looked up by the segment number written in its
    crop's first pixel."""

    n_params = 1

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=np.float64)

    def predict_proba(self, X):
        return self.scores[np.asarray(X)[:, 0, 0, 0].astype(int)]


class Weighted:
    """A composite with fixed weights: ``bias + X @ weights`` (columns: children in ``ontology.parts``
    order, then one per relation), clipped to [0, 1]."""

    def __init__(self, weights, bias=0.0, relations=()):
        self.weights, self.bias, self.relations = np.asarray(weights, dtype=np.float64), bias, tuple(relations)
        self.n_params = len(self.weights) + 1

    def predict_proba(self, X):
        X = np.asarray(X, dtype=np.float64)
        assert X.shape[1] == len(self.weights), X.shape
        return np.clip(self.bias + X @ self.weights, 0.0, 1.0)
