"""Labelers that are not a person: ground-truth part masks.

:func:`label_from_masks` gives each stored segment the concept whose ground-truth mask covers most of
the segment's pixels, when that concept covers at least ``min_overlap`` (default 0.5, i.e. a strict
majority-or-tie of the segment) of them; otherwise ``"none"``. Only mask indices that ``parts.json``
maps to a concept *of the ontology* count as that concept; the others (``other_petal``, ``sun``...) and
the background count as "none" pixels. Labels are recorded with ``source="ground_truth"`` and
``author="masks:parts.json"``, so demos and benchmarks never pass them off as a person's work; a
segment whose current label is a person's is left alone.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

__all__ = ["GROUND_TRUTH_AUTHOR", "DEFAULT_MIN_OVERLAP", "LabelRunReport", "concept_for_segment", "label_from_masks"]

#: The author recorded on ground-truth labels.
GROUND_TRUTH_AUTHOR = "masks:parts.json"
#: A segment gets a concept when that concept's mask covers at least this fraction of its pixels.
DEFAULT_MIN_OVERLAP = 0.5


@dataclass
class LabelRunReport:
    """What :func:`label_from_masks` did."""

    labelled: Counter = field(default_factory=Counter)  # concept (or "none") -> segments labelled now
    unchanged: int = 0  # already carried the same ground-truth label
    kept_person: int = 0  # a person's label was there: left alone
    images: int = 0  # images whose segments were considered
    no_masks: list[str] = field(default_factory=list)  # images in the store without part masks in the folder
    problems: list[tuple[str, str]] = field(default_factory=list)  # (image, reason)

    def summary(self) -> str:
        total = sum(self.labelled.values())
        per = ", ".join(f"{c} {n}" for c, n in sorted(self.labelled.items(), key=lambda kv: (-kv[1], kv[0])))
        text = (
            f"labelled {total} segments of {self.images} images from ground-truth masks "
            f"(source=ground_truth, author={GROUND_TRUTH_AUTHOR}): {per or 'nothing'}; "
            f"{self.unchanged} unchanged, {self.kept_person} kept a person's label"
        )
        if self.no_masks:
            text += f"; {len(self.no_masks)} image(s) have no part masks"
        if self.problems:
            text += "; problems:\n" + "\n".join(f"  {p}: {r}" for p, r in self.problems)
        return text


def concept_for_segment(
    segment_mask: np.ndarray, parts: np.ndarray, index_to_concept: dict[int, str], min_overlap: float = DEFAULT_MIN_OVERLAP
) -> str:
    """The concept for one segment (see module doc). ``segment_mask`` and ``parts`` have the same shape;
    ``index_to_concept`` holds only the indices that map to ontology concepts.

    >>> parts = np.array([[1, 1, 2], [1, 0, 2]])
    >>> concept_for_segment(parts > -1, parts, {1: "petal", 2: "disk"})
    'petal'
    >>> concept_for_segment(parts > -1, parts, {1: "petal", 2: "disk"}, min_overlap=0.6)
    'none'
    >>> concept_for_segment(parts > -1, parts, {2: "disk"})
    'none'
    """
    seg = np.asarray(segment_mask, dtype=bool)
    area = int(seg.sum())
    if area == 0:
        return "none"
    counts = np.bincount(np.asarray(parts)[seg].ravel().astype(np.int64))
    per_concept: Counter = Counter()
    for index, n in enumerate(counts.tolist()):
        if n and index in index_to_concept:
            per_concept[index_to_concept[index]] += n
    if not per_concept:
        return "none"
    concept, n = max(per_concept.items(), key=lambda kv: (kv[1], kv[0]))
    return concept if n / area >= min_overlap else "none"


def label_from_masks(
    store: Any,
    folder: Any,
    ontology_concepts: Iterable[str] | Any,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
    settings_hash: str | None = None,
) -> LabelRunReport:
    """Label the stored segments of ``folder``'s images from its ground-truth part masks.

    ``ontology_concepts``: the ontology (anything with ``.concepts``) or its concept ids.
    ``settings_hash``: only segments made with these settings (default: all stored segments).
    Images are matched by their path in the store, which :func:`workbench.data.segment.segment_dataset`
    records as the record id (``daisy/0003.png``). Labels are written one transaction per image.
    """
    if not 0 < min_overlap <= 1:
        raise WorkbenchError(f"min_overlap must be in (0, 1], got {min_overlap}")
    concepts = set(getattr(ontology_concepts, "concepts", ontology_concepts))
    index_to_concept = {int(i): c for i, c in folder.parts_map.items() if c in concepts}
    records = {r.id: r for r in folder.records}
    report = LabelRunReport()
    for image in store.images():
        rec = records.get(image.path)
        if rec is None:
            continue
        if rec.parts_path is None:
            report.no_masks.append(rec.id)
            continue
        try:
            parts = folder.load_parts(rec)
        except WorkbenchError as e:
            report.problems.append((rec.id, str(e)))
            continue
        segments = store.segments(image_id=image.id, settings_hash=settings_hash)
        if segments and parts.shape != tuple(segments[0].shape):
            report.problems.append(
                (rec.id, f"part mask is {parts.shape[1]}x{parts.shape[0]} but segments are {segments[0].shape[1]}x{segments[0].shape[0]}")
            )
            continue
        report.images += 1
        todo = []
        for s in segments:
            x0, y0, x1, y1 = s.bbox
            concept = concept_for_segment(s.crop_mask(), parts[y0:y1, x0:x1], index_to_concept, min_overlap)
            current = store.label(s.id)
            if current is not None and current.source == "person":
                report.kept_person += 1
            elif current is not None and current.source == "ground_truth" and current.concept == concept:
                report.unchanged += 1
            else:
                todo.append((s.id, concept))
                report.labelled[concept] += 1
        if todo:
            store.set_labels(todo, source="ground_truth", author=GROUND_TRUTH_AUTHOR)
    return report
