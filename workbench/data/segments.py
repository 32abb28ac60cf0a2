"""The segment: one region of an image, and what every segmenter provides.

A :class:`Segment` is compact: its bounding box in the original image's coordinates, its area, the
image's shape, and its mask *inside the box only*, bit-packed. A 12-megapixel photo's ~120 segments
take a few megabytes this way, where one full-image mask per segment took 12 MB each. The
full-image mask is still available (:attr:`Segment.mask`) for code that wants it, built on demand;
nothing in the workbench asks for it. Its :meth:`~Segment.crop` is the input of a part net.

Segmenters work at a *working size* (their ``working_size`` setting: the long edge an image is
downscaled to before segmenting); :func:`segments_from_labels` and :func:`upscale_mask` map what they
find back onto the original image, box by box, without ever building a full-size label map or mask.
Any object with ``name``, ``settings`` and ``segment(image)`` is a :class:`Segmenter` (the segmenters
themselves live in :mod:`workbench.data.segment` and :mod:`workbench.data.sam`).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from workbench.errors import SegmentationError

__all__ = [
    "Segment",
    "Segmenter",
    "settings_hash",
    "working_scale",
    "downscale",
    "segments_from_labels",
    "upscale_mask",
    "resize_labels",
    "as_rgb",
]

Box = tuple[int, int, int, int]


class Segment:
    """One region of an image: ``bbox`` ``(x0, y0, x1, y1)`` in the image's pixels (maxima exclusive),
    ``area`` in pixels, ``shape`` ``(H, W)`` of the image, and the mask inside the box (bit-packed;
    :meth:`crop_mask` unpacks it).

    ``Segment(mask, bbox, area)`` takes a full-image mask (the older form) and keeps only the part
    inside ``bbox``; :meth:`from_crop` takes the mask inside the box directly, :meth:`from_mask`
    computes box and area from a full-image mask.

    >>> m = np.zeros((5, 6), bool); m[1:3, 2:5] = True
    >>> s = Segment.from_mask(m)
    >>> s.bbox, s.area, s.shape, s.crop_mask().shape
    ((2, 1, 5, 3), 6, (5, 6), (2, 3))
    >>> bool((s.mask == m).all())
    True
    """

    __slots__ = ("bbox", "area", "shape", "_bits")

    def __init__(self, mask: np.ndarray, bbox: Sequence[int], area: int, shape: Sequence[int] | None = None):
        x0, y0, x1, y1 = (int(v) for v in bbox)
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise SegmentationError(f"a segment mask must be 2-D (H x W), got shape {mask.shape}")
        if shape is None:  # a full-image mask: keep what lies inside the box
            shape = mask.shape
            crop = mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
        else:
            crop = mask
        h, w = (int(v) for v in shape)
        if not (0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h) or crop.shape != (y1 - y0, x1 - x0):
            raise SegmentationError(
                f"segment box {(x0, y0, x1, y1)} does not fit a {w}x{h} image with a "
                f"{crop.shape[1] if crop.ndim == 2 else '?'}x{crop.shape[0]} mask inside the box"
            )
        self.bbox: Box = (x0, y0, x1, y1)
        self.area = int(area)
        self.shape: tuple[int, int] = (h, w)
        self._bits = np.packbits(crop, axis=None)

    @classmethod
    def from_crop(cls, crop: np.ndarray, bbox: Sequence[int], shape: Sequence[int], area: int | None = None) -> Segment:
        """A segment from the mask inside its box (bool, ``(y1-y0) x (x1-x0)``) and the image's shape;
        ``area`` defaults to the mask's pixel count."""
        crop = np.asarray(crop, dtype=bool)
        return cls(crop, bbox, int(np.count_nonzero(crop)) if area is None else area, shape=shape)

    @classmethod
    def from_packed(cls, bits: np.ndarray, bbox: Sequence[int], shape: Sequence[int], area: int) -> Segment:
        """A segment from the bit-packed mask inside its box (``np.packbits(crop, axis=None)``), as the
        segment cache and the label store keep it; the bits are checked for length, not copied."""
        self = cls.__new__(cls)
        x0, y0, x1, y1 = (int(v) for v in bbox)
        h, w = (int(v) for v in shape)
        bits = np.asarray(bits, dtype=np.uint8).reshape(-1)
        if not (0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h) or bits.size != (((y1 - y0) * (x1 - x0) + 7) // 8):
            raise SegmentationError(f"packed segment: box {(x0, y0, x1, y1)} and {bits.size} bytes of mask do not "
                                    f"fit a {w}x{h} image")
        self.bbox, self.area, self.shape, self._bits = (x0, y0, x1, y1), int(area), (h, w), bits
        return self

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> Segment:
        """Build a segment from a full-image boolean mask (bbox and area computed).

        >>> m = np.zeros((5, 6), bool); m[1:3, 2:5] = True
        >>> Segment.from_mask(m).bbox, Segment.from_mask(m).area
        ((2, 1, 5, 3), 6)
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise SegmentationError(f"a segment mask must be 2-D (H x W), got shape {mask.shape}")
        rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
        if not rows.any():
            return cls(mask, (0, 0, 0, 0), 0)
        y0, y1 = np.flatnonzero(rows)[[0, -1]]
        x0, x1 = np.flatnonzero(cols)[[0, -1]]
        crop = mask[y0 : y1 + 1, x0 : x1 + 1]
        return cls(crop, (int(x0), int(y0), int(x1) + 1, int(y1) + 1), int(np.count_nonzero(crop)), shape=mask.shape)

    @property
    def bits(self) -> np.ndarray:
        """The mask inside the box, bit-packed (``np.packbits(crop_mask(), axis=None)``; read-only use)."""
        return self._bits

    def crop_mask(self) -> np.ndarray:
        """The mask inside the bounding box (bool, ``(y1-y0) x (x1-x0)``)."""
        x0, y0, x1, y1 = self.bbox
        n = (y1 - y0) * (x1 - x0)
        return np.unpackbits(self._bits, count=n).view(bool).reshape(y1 - y0, x1 - x0)

    @property
    def mask(self) -> np.ndarray:
        """The full-image boolean mask (H x W), built on demand: it costs a byte per pixel of the whole
        image, so prefer :meth:`crop_mask` with :attr:`bbox`."""
        full = np.zeros(self.shape, dtype=bool)
        x0, y0, x1, y1 = self.bbox
        full[y0:y1, x0:x1] = self.crop_mask()
        return full

    def __repr__(self) -> str:
        return f"Segment(bbox={self.bbox}, area={self.area}, shape={self.shape})"

    def crop(self, image: np.ndarray, size: int = 32) -> np.ndarray:
        """The segment's pixels on a black background, its bbox padded to a centred square, resized to
        ``size`` x ``size``: uint8 ``size x size x 3`` (the input of a part net). Only the box is read
        from ``image``: the memory it takes is the box's, not the image's."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            image = as_rgb(image)  # the whole image: float scaling is decided on all of its values
        if image.shape[:2] != self.shape:
            raise SegmentationError(
                f"segment mask is {self.shape[1]}x{self.shape[0]} but the image is "
                f"{image.shape[1]}x{image.shape[0]}: "
                "crop the image the segment was made from"
            )
        x0, y0, x1, y1 = self.bbox
        h, w = y1 - y0, x1 - x0
        if h <= 0 or w <= 0:
            return np.zeros((size, size, 3), np.uint8)
        side = max(h, w)
        square = np.zeros((side, side, 3), np.uint8)
        oy, ox = (side - h) // 2, (side - w) // 2
        square[oy : oy + h, ox : ox + w] = image[y0:y1, x0:x1] * self.crop_mask()[:, :, None]
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


# ------------------------------------------------------------------------------------- working size
def working_scale(shape: Sequence[int], working_size: int) -> float:
    """The factor an image of ``shape`` (H, W, ...) is downscaled by to fit ``working_size`` on its long
    edge (1.0 when it fits: smaller images are never upscaled).

    >>> working_scale((3000, 4000), 512), working_scale((300, 400), 512)
    (0.128, 1.0)
    """
    return min(1.0, working_size / max(int(shape[0]), int(shape[1]), 1))


def downscale(image: np.ndarray, working_size: int) -> np.ndarray:
    """``image`` (RGB uint8) downscaled (bilinear) to fit ``working_size`` on its long edge; itself if it fits."""
    h, w = image.shape[:2]
    scale = working_scale((h, w), working_size)
    if scale >= 1.0:
        return image
    wh = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(wh, Image.BILINEAR))


def _source_index(n_out: int, n_in: int) -> np.ndarray:
    """For each of ``n_out`` output pixels along one axis, the input pixel a nearest-neighbour resize
    from ``n_in`` takes (the one :func:`resize_labels` uses)."""
    return np.minimum((np.arange(n_out) + 0.5) * n_in / n_out, n_in - 1).astype(np.intp)


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer label map to ``shape`` (H, W). It allocates the whole
    output: to map segments back onto a large image use :func:`segments_from_labels` instead."""
    h, w = shape
    ys = _source_index(h, labels.shape[0])
    xs = _source_index(w, labels.shape[1])
    return labels[ys[:, None], xs[None, :]]


class _Upscale:
    """The nearest-neighbour map from a working-size array (hs x ws) to the original image (H x W):
    where each working pixel's rows and columns land, and how many original pixels each one covers."""

    def __init__(self, small: tuple[int, int], shape: tuple[int, int]):
        (self.hs, self.ws), (self.h, self.w) = small, shape
        self.ys, self.xs = _source_index(self.h, self.hs), _source_index(self.w, self.ws)
        self.row_n = np.bincount(self.ys, minlength=self.hs)  # original rows per working row
        self.col_n = np.bincount(self.xs, minlength=self.ws)
        self.identity = (self.hs, self.ws) == (self.h, self.w)

    def box(self, sy0: int, sx0: int, sy1: int, sx1: int) -> Box:
        """The original-image box ``(x0, y0, x1, y1)`` of the working-size box rows sy0:sy1, columns sx0:sx1."""
        if self.identity:
            return sx0, sy0, sx1, sy1
        y0, y1 = (int(v) for v in np.searchsorted(self.ys, (sy0, sy1)))
        x0, x1 = (int(v) for v in np.searchsorted(self.xs, (sx0, sx1)))
        return x0, y0, x1, y1

    def crop(self, small_crop: np.ndarray, sy0: int, sx0: int, box: Box) -> np.ndarray:
        """The working-size mask ``small_crop`` (placed at sy0, sx0) at the original size, inside ``box``."""
        if self.identity:
            return small_crop
        x0, y0, x1, y1 = box
        return small_crop[(self.ys[y0:y1] - sy0)[:, None], (self.xs[x0:x1] - sx0)[None, :]]

    def area(self, small_mask: np.ndarray, sy0: int = 0, sx0: int = 0) -> int:
        """Original-image pixels of the working-size mask ``small_mask`` placed at (sy0, sx0)."""
        r = self.row_n[sy0 : sy0 + small_mask.shape[0]]
        c = self.col_n[sx0 : sx0 + small_mask.shape[1]]
        return int(r @ small_mask.astype(np.int64) @ c)


def segments_from_labels(labels: np.ndarray, shape: Sequence[int], min_area: float = 0,
                         max_area: float = np.inf) -> list[Segment]:
    """The segments of a label map computed at working size, mapped back onto an image of ``shape``
    (H, W) exactly as a nearest-neighbour upscale of the label map would place them, without building
    it: one segment per label whose area *in the original image* is within [``min_area``,
    ``max_area``], in top-left-first order. Memory: the segments' boxes, one at a time.
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0:
        return []
    up = _Upscale(labels.shape, (int(shape[0]), int(shape[1])))
    base = int(labels.min())
    shifted = (labels - base).astype(np.intp, copy=False)
    areas = np.bincount(shifted.ravel(), weights=(up.row_n[:, None] * up.col_n[None, :]).ravel().astype(np.float64))
    areas = np.rint(areas).astype(np.int64)
    keep = np.flatnonzero((areas > 0) & (areas >= min_area) & (areas <= max_area))
    if keep.size == 0:
        return []
    slices = ndimage.find_objects(shifted + 1)
    out = []
    for lab in keep.tolist():
        sl = slices[lab]
        if sl is None:
            continue
        sys_, sxs = sl
        small = shifted[sl] == lab
        box = up.box(sys_.start, sxs.start, sys_.stop, sxs.stop)
        out.append(Segment(up.crop(small, sys_.start, sxs.start, box), box, int(areas[lab]), shape=(up.h, up.w)))
    out.sort(key=lambda sg: (sg.bbox[1], sg.bbox[0], sg.bbox[3], sg.bbox[2]))
    return out


def upscale_mask(mask: np.ndarray, shape: Sequence[int]) -> Segment:
    """One working-size boolean mask as a segment of the original image of ``shape`` (H, W) (nearest
    neighbour, as :func:`resize_labels`), built inside its box only."""
    mask = np.asarray(mask, dtype=bool)
    up = _Upscale(mask.shape, (int(shape[0]), int(shape[1])))
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return Segment(np.zeros((0, 0), bool), (0, 0, 0, 0), 0, shape=(up.h, up.w))
    sy0, sy1 = np.flatnonzero(rows)[[0, -1]]
    sx0, sx1 = np.flatnonzero(cols)[[0, -1]]
    small = mask[sy0 : sy1 + 1, sx0 : sx1 + 1]
    box = up.box(int(sy0), int(sx0), int(sy1) + 1, int(sx1) + 1)
    return Segment(up.crop(small, int(sy0), int(sx0), box), box, up.area(small, int(sy0), int(sx0)), shape=(up.h, up.w))


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
