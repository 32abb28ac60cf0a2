"""The hybrid classifier: the ontology evaluated bottom-up over an image's segments.

``segments`` mode (the default)::

    segments ──part net or rule──▶ score per segment ──max──▶ part score (and the segment that won)
    children's scores ──composite net──▶ composite score … ──▶ root probability

With relations (``TrainConfig.composition_relations``), a composite whose children include two parts A and B
also sees ``near(A,B)``: the best *co-located* evidence, the largest ``score_A(s) · score_B(t)``
over two different segments s, t of the image whose boxes are near (:func:`near_pairs`). "A petal
somewhere and a disk somewhere" scores high on petal and disk; only petals next to the disk score
high on ``near(disk,petal)``. The explanation names the two segments that made it fire.

Every prediction carries an :class:`Explanation`: for each concept its score and, for parts, the
segment that made it fire. Nothing here trains; :mod:`workbench.models.train` fits the models and hands
them over. ``prototype`` mode (the source study's convolutional maps) lives in
:mod:`workbench.models.prototype`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from workbench.errors import ModelError
from workbench.ontology.graph import Ontology

__all__ = ["ScoringModel", "HybridClassifier", "ConceptFiring", "Explanation", "part_scores", "score_images",
           "explanations",
           "near_pairs", "relation_name", "relation_pairs", "relation_scores", "NEAR"]

#: Two segments are *near* when the distance between their box centres is at most NEAR times the sum
#: of their boxes' half-diagonals (1.0: the boxes' circumscribed circles touch or overlap).
NEAR = 1.0


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
    # composites with relations: name -> (score, (segment of A, segment of B) or None)
    relations: dict[str, tuple[float, tuple[int, int] | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"concept": self.concept, "score": round(float(self.score), 4), "kind": self.kind}
        if self.segment is not None:
            d["segment"] = int(self.segment)
        if self.bbox is not None:
            d["bbox"] = [int(v) for v in self.bbox]
        if self.relations:
            d["relations"] = {k: {"score": round(float(v), 4), "segments": list(pair) if pair else None}
                              for k, (v, pair) in self.relations.items()}
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
            for name, (v, pair) in c.relations.items():
                on = f" on segments {pair[0]} and {pair[1]}" if pair else ""
                lines.append(f"      {name:<18} {v:.2f}{on}")
        return "\n".join(lines)


def part_scores(
    ontology: Ontology, models: Mapping[str, ScoringModel], crops: np.ndarray, image_index: np.ndarray, n_images: int,
    known: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score every segment crop with every part model and keep each image's best segment per part.

    ``crops`` (N×S×S×3) are the segments of ``n_images`` images, ``image_index`` (N,) says whose;
    ``known``: per-segment scores of some parts already computed (N,), used as they are.
    Returns ``(scores, best, seg_scores)``: per part, the image-level score (n_images,), the row of
    the winning segment (-1 for an image without segments, which scores 0), and every segment's score.
    """
    known = known or {}
    seg_scores = {
        leaf: np.asarray(known[leaf], dtype=np.float64).reshape(-1) if leaf in known else
        np.asarray(models[leaf].predict_proba(crops), dtype=np.float64).reshape(-1) if len(crops) else np.zeros(0)
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


def relation_name(a: str, b: str) -> str:
    """The name of the relation feature between parts ``a`` and ``b``: ``near(a,b)``."""
    return f"near({a},{b})"


def relation_pairs(ontology: Ontology, concept: str) -> tuple[tuple[str, str], ...]:
    """The pairs of ``concept``'s children that are both parts (scored per segment), in parts order."""
    kids = [k for k in ontology.composed_parts(concept) if not ontology.composed_parts(k)]
    return tuple((kids[i], kids[j]) for i in range(len(kids)) for j in range(i + 1, len(kids)))


def near_pairs(bboxes: np.ndarray, image_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair of different segments of the same image whose boxes are near (:data:`NEAR`).

    Boxes are ``(x0, y0, x1, y1)``; returns the two row arrays ``(s, t)``.
    """
    b = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    idx = np.asarray(image_index)
    centre = (b[:, :2] + b[:, 2:]) / 2
    half_diag = np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) / 2
    rows_s, rows_t = [], []
    order = np.argsort(idx, kind="stable")
    bounds = np.flatnonzero(np.r_[True, idx[order][1:] != idx[order][:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        r = order[lo:hi]
        d = np.linalg.norm(centre[r][:, None] - centre[r][None], axis=-1)
        ok = d <= NEAR * (half_diag[r][:, None] + half_diag[r][None])
        np.fill_diagonal(ok, False)
        i, j = np.nonzero(ok)
        rows_s.append(r[i])
        rows_t.append(r[j])
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
    return cat(rows_s).astype(np.int64), cat(rows_t).astype(np.int64)


def relation_scores(
    score_a: np.ndarray, score_b: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], image_index: np.ndarray,
    n_images: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the best co-located evidence ``max score_a(s)·score_b(t)`` over near pairs (s, t).

    Returns the values (n_images,; 0 for an image without a near pair) and the winning rows
    (n_images×2, -1 where there is none).
    """
    v = np.zeros(n_images)
    win = np.full((n_images, 2), -1, dtype=np.int64)
    s, t = pairs
    if len(s):
        prod = score_a[s] * score_b[t]
        img = np.asarray(image_index)[s]
        order = np.lexsort((prod, img))
        last = np.r_[img[order][1:] != img[order][:-1], True]
        top = order[last]
        v[img[top]] = prod[top]
        win[img[top]] = np.stack([s[top], t[top]], axis=1)
    return v, win


def score_images(
    ontology: Ontology, models: Mapping[str, ScoringModel], crops: np.ndarray, image_index: np.ndarray, n_images: int,
    bboxes: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`part_scores`, then every composite bottom-up over its children's image-level scores.

    A composite model with ``relations`` (pairs of parts) also takes ``near(a,b)`` for each pair
    (:func:`relation_scores`), which needs the segments' ``bboxes``; those values are returned under
    ``scores["<concept>:near(a,b)"]``, and the winning segment rows (n_images×2) under the same key
    in ``best``.
    """
    scores, best, seg_scores = part_scores(ontology, models, crops, image_index, n_images)
    near: tuple[np.ndarray, np.ndarray] | None = None
    for c in ontology.bottom_up():
        if c not in scores:
            cols = [scores[p] for p in ontology.composed_parts(c)]
            for a, b in getattr(models[c], "relations", ()) or ():
                if bboxes is None:
                    raise ModelError(
                        f"concept '{c}' uses the relation {relation_name(a, b)}, which needs the segments' boxes: "
                        "pass bboxes= to score it"
                    )
                if a not in seg_scores or b not in seg_scores:
                    raise ModelError(f"concept '{c}': relation {relation_name(a, b)} is between parts that are not "
                                     "both parts (concepts scored per segment) of the ontology")
                if near is None:
                    near = near_pairs(bboxes, image_index)
                key = f"{c}:{relation_name(a, b)}"
                scores[key], best[key] = relation_scores(seg_scores[a], seg_scores[b], near, image_index, n_images)
                cols.append(scores[key])
            X = np.stack(cols, axis=1)
            scores[c] = np.asarray(models[c].predict_proba(X), dtype=np.float64).reshape(-1) if n_images else np.zeros(0)
    return scores, best, seg_scores


def explanations(
    ontology: Ontology, models: Mapping[str, ScoringModel], scores: Mapping[str, np.ndarray],
    best: Mapping[str, np.ndarray], bboxes: np.ndarray | None, start: np.ndarray,
) -> list[Explanation]:
    """An :class:`Explanation` per image from :func:`score_images`' ``scores`` and ``best`` over many
    images, whose segments are rows ``start[i]:start[i+1]`` (segment numbers in the explanations are
    each image's own, from 0; boxes from ``bboxes`` when given)."""
    o = ontology
    order = list(o.bottom_up())
    kinds = {c: o.kind(c) for c in order}
    rels = {c: [(relation_name(a, b), f"{c}:{relation_name(a, b)}") for a, b in getattr(models[c], "relations", ()) or ()]
            for c in order}
    col = {c: np.asarray(scores[c]).tolist() for c in order}
    won = {c: np.asarray(best[c]).tolist() for c in order if c in best}
    box_rows = np.asarray(bboxes, dtype=np.int64).reshape(-1, 4).tolist() if bboxes is not None else None
    rel_cols = {key: (np.asarray(scores[key]).tolist(), np.asarray(best[key]).tolist())
                for c in order for _, key in rels[c]}
    out = []
    for i in range(len(start) - 1):
        first = int(start[i])
        firing: dict[str, ConceptFiring] = {}
        for c in order:
            row = won[c][i] if c in won else -1
            idx = row - first if row >= 0 else None
            box = tuple(box_rows[row]) if (idx is not None and box_rows is not None) else None
            rel = {}
            for name, key in rels[c]:
                v, pairs = rel_cols[key]
                pair = pairs[i]
                rel[name] = (float(v[i]), (pair[0] - first, pair[1] - first) if pair[0] >= 0 else None)
            firing[c] = ConceptFiring(c, float(col[c][i]), kinds[c], idx, box, rel)  # type: ignore[arg-type]
        out.append(Explanation(o.root, float(col[o.root][i]), firing))
    return out


class HybridClassifier:
    """Compose fitted concept models along an ontology.

    ``models`` maps every concept id to a fitted model: leaves take crops (N×S×S×3 uint8), composites
    take their children's scores (N×k, children in ``ontology.composed_parts(id)`` order: a provisional
    concept is scored, and shown in explanations, but no parent combines its score).
    """

    def __init__(self, ontology: Ontology, models: Mapping[str, ScoringModel]):
        missing = [c for c in ontology.concepts if c not in models]
        if missing:
            raise ModelError(
                f"concept(s) {', '.join(missing)} have no trained model: run `workbench train` first"
            )
        self.ontology = ontology
        self.models = dict(models)

    def predict_proba(
        self, crops_per_image: Sequence[np.ndarray], bboxes_per_image: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        """Root probability per image, given each image's segment crops (and boxes, for relations)."""
        nonempty = [np.asarray(c) for c in crops_per_image if len(c)]
        crops = np.concatenate(nonempty) if nonempty else np.zeros((0, 1, 1, 3), np.uint8)
        index = np.concatenate([np.full(len(c), i, dtype=np.int64) for i, c in enumerate(crops_per_image)] or
                               [np.zeros(0, np.int64)])
        boxes = None
        if bboxes_per_image is not None:
            nb = [np.asarray(b, dtype=np.int64).reshape(-1, 4) for b in bboxes_per_image if len(b)]
            boxes = np.concatenate(nb) if nb else np.zeros((0, 4), np.int64)
        scores, _, _ = score_images(self.ontology, self.models, crops, index, len(crops_per_image), boxes)
        return scores[self.ontology.root]

    def explain(
        self, crops: np.ndarray, bboxes: Sequence[tuple[int, int, int, int]] | None = None
    ) -> Explanation:
        """Explain one image: each concept's score, for parts the segment that fired, and for composites
        with relations each relation's value and the two segments that made it."""
        boxes = np.asarray(bboxes, dtype=np.int64).reshape(-1, 4) if bboxes is not None else None
        scores, best, _ = score_images(self.ontology, self.models, crops, np.zeros(len(crops), np.int64), 1, boxes)
        return explanations(self.ontology, self.models, scores, best, boxes, np.array([0, len(crops)]))[0]
