"""The hybrid classifier: the ontology evaluated bottom-up over an image's segments.

``segments`` mode (the default)::

    segments ──part net or rule──▶ score per segment ──max──▶ part score (and the segment that won)
    children's scores ──composite net──▶ composite score … ──▶ root probability

Every prediction carries an :class:`Explanation`: for each concept its score and, for parts, the
segment that made it fire. Nothing here trains; :mod:`workbench.train` fits the models and hands
them over. ``prototype`` mode (the source study's convolutional maps) lives in
:mod:`workbench.prototype`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from .errors import ModelError
from .ontology import Ontology

__all__ = ["ScoringModel", "HybridClassifier", "ConceptFiring", "Explanation", "part_scores", "score_images"]


class ScoringModel(Protocol):
    """What the hybrid needs of a fitted concept model: probabilities for a batch of inputs."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ConceptFiring:
    """One concept's verdict on one image."""

    concept: str
    score: float
    kind: str  # "part" | "composite" | "root"
    segment: int | None = None  # index of the winning segment (parts only)
    bbox: tuple[int, int, int, int] | None = None  # that segment's box, (x0, y0, x1, y1)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"concept": self.concept, "score": round(float(self.score), 4), "kind": self.kind}
        if self.segment is not None:
            d["segment"] = int(self.segment)
        if self.bbox is not None:
            d["bbox"] = [int(v) for v in self.bbox]
        return d


@dataclass
class Explanation:
    """Which concepts fired on an image, on which segment, with what score."""

    root: str
    probability: float
    concepts: dict[str, ConceptFiring] = field(default_factory=dict)
    threshold: float = 0.5

    @property
    def predicted(self) -> bool:
        return self.probability >= self.threshold

    def fired(self) -> list[ConceptFiring]:
        """The concepts scoring at or above the threshold, strongest first."""
        return sorted((c for c in self.concepts.values() if c.score >= self.threshold), key=lambda c: -c.score)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "probability": round(float(self.probability), 4),
            "predicted": bool(self.predicted),
            "concepts": {k: v.to_dict() for k, v in self.concepts.items()},
        }

    def __str__(self) -> str:
        lines = [f"{self.root}: p={self.probability:.2f} ({'yes' if self.predicted else 'no'})"]
        for c in sorted(self.concepts.values(), key=lambda c: (c.kind != "root", c.kind != "composite", c.concept)):
            where = f" on segment {c.segment} {c.bbox}" if c.segment is not None else ""
            mark = "✔" if c.score >= self.threshold else "·"
            lines.append(f"  {mark} {c.concept:<16} {c.score:.2f} ({c.kind}){where}")
        return "\n".join(lines)


def part_scores(
    ontology: Ontology, models: Mapping[str, ScoringModel], crops: np.ndarray, image_index: np.ndarray, n_images: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score every segment crop with every part model and keep each image's best segment per part.

    ``crops`` (N×S×S×3) are the segments of ``n_images`` images, ``image_index`` (N,) says whose.
    Returns ``(scores, best, seg_scores)``: per part, the image-level score (n_images,), the row of
    the winning segment (-1 for an image without segments, which scores 0), and every segment's score.
    """
    seg_scores = {
        leaf: np.asarray(models[leaf].predict_proba(crops), dtype=np.float64).reshape(-1) if len(crops) else np.zeros(0)
        for leaf in ontology.leaves()
    }
    scores: dict[str, np.ndarray] = {}
    best: dict[str, np.ndarray] = {}
    for leaf, s in seg_scores.items():
        v = np.zeros(n_images)
        b = np.full(n_images, -1, dtype=np.int64)
        if len(s):
            order = np.lexsort((s, image_index))  # by image, then score ascending
            last = np.r_[image_index[order][1:] != image_index[order][:-1], True]
            top = order[last]
            v[image_index[top]] = s[top]
            b[image_index[top]] = top
        scores[leaf], best[leaf] = v, b
    return scores, best, seg_scores


def score_images(
    ontology: Ontology, models: Mapping[str, ScoringModel], crops: np.ndarray, image_index: np.ndarray, n_images: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`part_scores`, then every composite bottom-up over its children's image-level scores."""
    scores, best, seg_scores = part_scores(ontology, models, crops, image_index, n_images)
    for c in ontology.bottom_up():
        if c not in scores:
            X = np.stack([scores[p] for p in ontology.parts(c)], axis=1)
            scores[c] = np.asarray(models[c].predict_proba(X), dtype=np.float64).reshape(-1) if n_images else np.zeros(0)
    return scores, best, seg_scores


class HybridClassifier:
    """Compose fitted concept models along an ontology.

    ``models`` maps every concept id to a fitted model: leaves take crops (N×S×S×3 uint8), composites
    take their children's scores (N×k, children in ``ontology.parts(id)`` order).
    """

    def __init__(self, ontology: Ontology, models: Mapping[str, ScoringModel]):
        missing = [c for c in ontology.concepts if c not in models]
        if missing:
            raise ModelError(
                f"concept(s) {', '.join(missing)} have no trained model: run `workbench train` first"
            )
        self.ontology = ontology
        self.models = dict(models)

    def predict_proba(self, crops_per_image: Sequence[np.ndarray]) -> np.ndarray:
        """Root probability per image, given each image's segment crops."""
        nonempty = [np.asarray(c) for c in crops_per_image if len(c)]
        crops = np.concatenate(nonempty) if nonempty else np.zeros((0, 1, 1, 3), np.uint8)
        index = np.concatenate([np.full(len(c), i, dtype=np.int64) for i, c in enumerate(crops_per_image)] or
                               [np.zeros(0, np.int64)])
        scores, _, _ = score_images(self.ontology, self.models, crops, index, len(crops_per_image))
        return scores[self.ontology.root]

    def explain(
        self, crops: np.ndarray, bboxes: Sequence[tuple[int, int, int, int]] | None = None
    ) -> Explanation:
        """Explain one image: each concept's score, and for parts the segment that fired."""
        scores, best, _ = score_images(self.ontology, self.models, crops, np.zeros(len(crops), np.int64), 1)
        o = self.ontology
        firing: dict[str, ConceptFiring] = {}
        for c in o.bottom_up():
            idx = int(best[c][0]) if c in best and best[c][0] >= 0 else None
            box = tuple(int(v) for v in bboxes[idx]) if (idx is not None and bboxes is not None) else None
            firing[c] = ConceptFiring(c, float(scores[c][0]), o.kind(c), idx, box)  # type: ignore[arg-type]
        return Explanation(o.root, float(scores[o.root][0]), firing)
