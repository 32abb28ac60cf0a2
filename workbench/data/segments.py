"""The segment: one region of an image, and what every segmenter provides.

A :class:`Segment` is a boolean mask over the full image with its bounding box and area; its
:meth:`~Segment.crop` is the input of a part net. Any object with ``name``, ``settings`` and
``segment(image)`` is a :class:`Segmenter` (the segmenters themselves live in :mod:`workbench.data.segment`
and :mod:`workbench.data.sam`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from workbench.errors import SegmentationError

__all__ = ["Segment", "Segmenter", "settings_hash", "resize_labels", "as_rgb"]


@dataclass(eq=False)
class Segment:
    """One region of an image: ``mask`` (bool, H x W of the full image), ``bbox`` ``(x0, y0, x1, y1)``
    with exclusive maxima, ``area`` in pixels."""

    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    area: int

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> Segment:
        """Build a segment from a full-image boolean mask (bbox and area computed).

        >>> m = np.zeros((5, 6), bool); m[1:3, 2:5] = True
        >>> Segment.from_mask(m).bbox, Segment.from_mask(m).area
        ((2, 1, 5, 3), 6)
        """
        mask = np.asarray(mask, dtype=bool)
        rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
        if not rows.any():
            return cls(mask, (0, 0, 0, 0), 0)
        y0, y1 = np.flatnonzero(rows)[[0, -1]]
        x0, x1 = np.flatnonzero(cols)[[0, -1]]
        return cls(mask, (int(x0), int(y0), int(x1) + 1, int(y1) + 1), int(mask.sum()))

    def crop(self, image: np.ndarray, size: int = 32) -> np.ndarray:
        """The segment's pixels on a black background, its bbox padded to a centred square, resized to
        ``size`` x ``size``: uint8 ``size x size x 3`` (the input of a part net)."""
        image = as_rgb(image)
        if image.shape[:2] != self.mask.shape:
            raise SegmentationError(
                f"segment mask is {self.mask.shape[1]}x{self.mask.shape[0]} but the image is "
                f"{image.shape[1]}x{image.shape[0]}: crop the image the segment was made from"
            )
        x0, y0, x1, y1 = self.bbox
        h, w = y1 - y0, x1 - x0
        if h <= 0 or w <= 0:
            return np.zeros((size, size, 3), np.uint8)
        side = max(h, w)
        square = np.zeros((side, side, 3), np.uint8)
        oy, ox = (side - h) // 2, (side - w) // 2
        square[oy : oy + h, ox : ox + w] = image[y0:y1, x0:x1] * self.mask[y0:y1, x0:x1, None]
        if side == size:
            return square
        return np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR), dtype=np.uint8)


@runtime_checkable
class Segmenter(Protocol):
    """What every segmenter provides. ``settings`` is a JSON-able dict that fully determines the output
    (it is hashed into the cache key and stored with the segments)."""

    name: str
    settings: dict

    def segment(self, image: np.ndarray) -> list[Segment]: ...


def settings_hash(segmenter: Segmenter) -> str:
    """A short stable hash of a segmenter's name and settings (16 hex digits).

    >>> from types import SimpleNamespace as S
    >>> settings_hash(S(name="weightfree", settings={"scale": 800})) == settings_hash(S(name="weightfree", settings={"scale": 800}))
    True
    >>> settings_hash(S(name="weightfree", settings={"scale": 800})) == settings_hash(S(name="weightfree", settings={"scale": 999}))
    False
    """
    try:
        text = json.dumps({"name": segmenter.name, "settings": segmenter.settings}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise SegmentationError(f"segmenter {segmenter.name!r}: settings must be plain JSON data ({e})") from None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer label map to ``shape`` (H, W)."""
    h, w = shape
    ys = np.minimum((np.arange(h) + 0.5) * labels.shape[0] / h, labels.shape[0] - 1).astype(np.intp)
    xs = np.minimum((np.arange(w) + 0.5) * labels.shape[1] / w, labels.shape[1] - 1).astype(np.intp)
    return labels[ys[:, None], xs[None, :]]


def as_rgb(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise SegmentationError(f"expected an H x W x 3 image, got an array of shape {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[..., :3]
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0:
            a = a * 255.0
        a = np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)
