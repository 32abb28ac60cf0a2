"""Pre-sorting segments with Claude: numbered crops on one grid, a suggested concept (or "none") each.

The suggestions are stored as suggestions only (``store.add_suggestions``), waiting for a person's
confirmation in the labeling widget.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.data.datasets import load_image
from workbench.errors import SuggesterError
from workbench.review.claude.client import ClaudeSuggester

if TYPE_CHECKING:  # pragma: no cover
    from workbench.workspace.folder import Workspace

__all__ = ["presort_image"]


def _segment_crop(image: np.ndarray, row: Any, size: int = 128) -> np.ndarray:
    """The segment's pixels on black, its bbox padded to a centred square, ``size`` px."""
    from PIL import Image

    x0, y0, x1, y1 = row.bbox
    patch = np.array(image[y0:y1, x0:x1], copy=True)
    patch[~row.crop_mask()] = 0
    h, w = patch.shape[:2]
    side = max(h, w, 1)
    square = np.zeros((side, side, 3), np.uint8)
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = patch
    return np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS))


def presort_image(ws: Workspace, image_id: int, suggester: ClaudeSuggester, *,
                  settings_hash: str | None = None) -> list[tuple[int, str]]:
    """Pre-sort the stored segments of one image with ``suggester`` and store the suggestions.

    They are stored with ``store.add_suggestions(items, model=suggester.model)``: suggestions only,
    waiting for a person's confirmation in the labeling widget. Returns the (segment id, concept) pairs.
    """
    row = ws.store.image(image_id)
    segments = ws.store.segments(image_id, settings_hash)
    if not segments:
        raise SuggesterError(f"image {row.path} (id {image_id}) has no segments; run `workbench segment` first")
    path = ws.image_path(row.path)
    image = load_image(path)
    crops = []
    for s in segments:
        if tuple(s.shape) != image.shape[:2]:
            raise SuggesterError(f"segment {s.id} was cut from a {s.shape[1]}x{s.shape[0]} image but {path} is "
                                 f"{image.shape[1]}x{image.shape[0]}; re-segment it")
        crops.append((s.id, _segment_crop(image, s)))
    items = suggester.presort(ws.ontology, image, crops, class_label=row.class_label)
    if items:
        ws.store.add_suggestions(items, model=suggester.model)
    return items
