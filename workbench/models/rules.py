"""Plain-code rules: a concept implemented by a readable Python function instead of a net.

A rule maps a segment's :class:`SegmentFeatures` (colour in HSV, shape, position) to a score in
[0, 1]. Rules are registered by name in :data:`RULES`; an ontology concept with ``implementation:
rule`` names one in its ``rule:`` field. :class:`RuleModel` wraps a rule in the same estimator
contract as the nets (fit, predict_proba, metrics, save/load), so a net can be swapped for code.

A rule is readable code, but its numbers are not hand-tuned: the shipped rules are named conditions
(``yellow_fraction ≥ …, saturation ≥ …, elongation ≤ …``, each a ramp between two constants) whose
constants :class:`RuleModel` learns from the training segments it is given (the hand-set values are
only defaults, kept when there are too few positives or with ``fit_constants=False``). Every learned
constant counts as a parameter, the threshold too.

Features come from the crop alone (the segment on a black background, as the segmenter crops it):
the segment's pixels are those brighter than :data:`BLACK_LEVEL` in some channel, unless the caller
passes the segment's own mask. Position features need the segment's box in the image.

>>> import numpy as np
>>> yy, xx = np.mgrid[:32, :32]
>>> disc = np.zeros((32, 32, 3), np.uint8)
>>> disc[(yy - 16) ** 2 + (xx - 16) ** 2 < 100] = (230, 190, 20)        # a yellow disc
>>> bar = np.zeros((32, 32, 3), np.uint8)
>>> bar[14:18, 2:30] = (240, 240, 235)                                   # a white bar
>>> round(RULES["yellow_disk"](segment_features(disc)), 2), round(RULES["yellow_disk"](segment_features(bar)), 2)
(1.0, 0.0)
>>> model = RuleModel("yellow_disk", "disk").fit(np.stack([disc, bar] * 3), np.array([1, 0] * 3))
>>> model.predict(np.stack([disc, bar])).tolist(), model.n_params   # 4 conditions × 2 constants + threshold
([True, False], 9)
>>> get_rule("yellow_disk").text()                                   # hand-set defaults
'yellow_fraction ≥ 0.70 (from 0.40), saturation ≥ 0.82 (from 0.72), elongation ≤ 1.60 (to 2.60), solidity ≥ 0.85 (from 0.60)'
>>> get_rule("yellow_disk").text(model.constants_)                   # learned from the three discs
'yellow_fraction ≥ 1.00 (from 0.95), saturation ≥ 0.91 (from 0.86), elongation ≤ 1.00 (to 1.50), solidity ≥ 0.97 (from 0.92)'
"""
from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from workbench.errors import ModelError
from workbench.models.contract import ConceptModel, check_labels
from workbench.models.metrics import data_hash

__all__ = [
    "BLACK_LEVEL",
    "SegmentFeatures",
    "segment_features",
    "feature_matrix",
    "FEATURE_NAMES",
    "Condition",
    "at_least",
    "at_most",
    "MIN_POSITIVES",
    "Rule",
    "RULES",
    "register_rule",
    "get_rule",
    "ramp",
    "RuleModel",
]

#: A crop pixel belongs to the segment when some channel is above this (the background is black).
BLACK_LEVEL = 12


@dataclass(frozen=True)
class SegmentFeatures:
    """What a rule can look at. Fractions are over the segment's pixels; hues in degrees [0, 360)."""

    area_fraction: float  # segment pixels / crop pixels (the crop is the box padded to a square)
    hue: float  # mean hue in degrees, circular mean weighted by saturation
    saturation: float  # mean saturation, 0..1
    value: float  # mean brightness, 0..1
    yellow_fraction: float  # hue 35-70°, saturation > 0.35, value > 0.35
    white_fraction: float  # saturation < 0.25, value > 0.65
    green_fraction: float  # hue 75-165°, saturation > 0.2, value > 0.15
    elongation: float  # major / minor axis of the segment's ellipse (1 = round)
    eccentricity: float  # of that ellipse (0 = circle, → 1 = line)
    solidity: float  # area / convex-hull area (1 = convex)
    circularity: float  # 4π·area / perimeter², clipped to [0, 1]
    center_x: float | None = None  # segment centre in the image, 0 = left .. 1 = right (needs bbox)
    center_y: float | None = None  # 0 = top .. 1 = bottom (needs bbox)
    image_fraction: float | None = None  # segment area / image area (needs area and image_shape)

    def as_array(self) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in asdict(self).values()], dtype=np.float64)


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """skimage's ``rgb2hsv`` of uint8 pixels (P×3), the same operations on every pixel (so the same
    bits: uint8 × (1/255) as ``img_as_float`` does; ties go to blue, then green, then red)
    without its per-branch fancy indexing."""
    arr = np.multiply(np.asarray(rgb).reshape(-1, 3), 1.0 / 255, dtype=np.float64)
    r, g, b = arr[:, 0], arr[:, 1], arr[:, 2]
    v = np.maximum(np.maximum(r, g), b)
    delta = v - np.minimum(np.minimum(r, g), b)
    flat = delta == 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(flat, 0.0, delta / v)
        h = np.where(b == v, 4.0 + (r - g) / delta, np.where(g == v, 2.0 + (b - r) / delta, (g - b) / delta))
    h = np.where(flat, 0.0, (h / 6.0) % 1.0)
    out = np.stack([h, s, v], axis=1)
    out[np.isnan(out)] = 0
    return out


#: Columns of :func:`feature_matrix`: the :class:`SegmentFeatures` fields, in order.
FEATURE_NAMES: tuple[str, ...] = ("area_fraction", "hue", "saturation", "value", "yellow_fraction", "white_fraction",
                                  "green_fraction", "elongation", "eccentricity", "solidity", "circularity",
                                  "center_x", "center_y", "image_fraction")
_EMPTY_ROW = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)  # a crop without segment pixels
#: skimage's 4-neighbourhood perimeter: weights of the border-pixel codes (see skimage.measure.perimeter)
_PERIMETER_WEIGHTS = np.zeros(50)
_PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1.0
_PERIMETER_WEIGHTS[[21, 33]] = np.sqrt(2)
_PERIMETER_WEIGHTS[[13, 23]] = (1 + np.sqrt(2)) / 2
_FEATURE_CHUNK = 512  # crops per vectorised pass (bounds the temporary arrays to a few MB)


def feature_matrix(crops: np.ndarray, masks: np.ndarray | None = None,
                   features: Iterable[str] | None = None) -> np.ndarray:
    """:class:`SegmentFeatures` of many crops at once, as a float matrix (N × :data:`FEATURE_NAMES`; the
    position columns are NaN: a crop alone has no position).

    ``crops``: uint8 N×S×S×3 on black; ``masks`` (N×S×S bool): the segments' own masks instead of the
    black-level guess; ``features``: only these columns (the others NaN; a rule model asks for the
    features its conditions read). Vectorised over the crops, with no per-crop Python: the colours
    (skimage's HSV of every segment pixel), the second moments (elongation, eccentricity), skimage's
    4-neighbourhood perimeter and the convex-hull area (solidity) counted row by row from the hull's
    exact left and right envelopes in integer arithmetic. Each row depends on its crop only, so a
    crop's features are the same bits in any batch; :func:`segment_features` is this on one crop.
    Compared with skimage's ``regionprops`` (what it replaced): area, colour fractions and solidity are
    equal, the moment and mean features agree to about 1e-12 (summation order), see
    ``tests/test_scoring.py``.
    """
    crops = np.asarray(crops)
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[-1] != 3:
        raise ModelError(f"segment crops must be a uint8 N×S×S×3 array, got {crops.dtype} {crops.shape}")
    need = set(FEATURE_NAMES[:11] if features is None else features)
    unknown = need - set(FEATURE_NAMES)
    if unknown:
        raise ModelError(f"unknown feature(s) {sorted(unknown)}: SegmentFeatures has {', '.join(FEATURE_NAMES)}")
    out = np.full((len(crops), len(FEATURE_NAMES)), np.nan)
    for lo in range(0, len(crops), _FEATURE_CHUNK):
        c = crops[lo:lo + _FEATURE_CHUNK]
        if masks is None:
            m = np.maximum(np.maximum(c[..., 0], c[..., 1]), c[..., 2]) > BLACK_LEVEL
        else:
            m = np.asarray(masks[lo:lo + _FEATURE_CHUNK], dtype=bool)
        out[lo:lo + len(c), :11] = _features_chunk(c, m, need)
    return out


def _features_chunk(crops: np.ndarray, m: np.ndarray, need: set[str]) -> np.ndarray:
    n_crops, side = m.shape[0], m.shape[1]
    out = np.tile(np.array(_EMPTY_ROW), (n_crops, 1))
    n = m.sum(axis=(1, 2))
    some = n > 0
    cols = {name: np.full(int(some.sum()), np.nan) for name in FEATURE_NAMES[:11]}
    if some.any():
        crops, m, n = crops[some], m[some], n[some]
        k = len(n)
        nf = n.astype(np.float64)
        cols["area_fraction"] = nf / float(side * side)
        if need & {"hue", "saturation", "value", "yellow_fraction", "white_fraction", "green_fraction"}:
            _colour(cols, crops[m], np.repeat(np.arange(k), n), nf, need)
        if need & {"elongation", "eccentricity"}:
            _moments(cols, m, nf)
        if "circularity" in need:
            _circularity(cols, m, nf)
        if "solidity" in need:
            cols["solidity"] = nf / _convex_area(m)
        out[some] = np.stack([cols[name] for name in FEATURE_NAMES[:11]], axis=1)
    keep = [i for i, name in enumerate(FEATURE_NAMES[:11]) if name in need or name == "area_fraction"]
    drop = np.setdiff1d(np.arange(11), keep)
    out[:, drop] = np.nan
    return out


def _colour(cols: dict[str, np.ndarray], pixels: np.ndarray, idx: np.ndarray, nf: np.ndarray, need: set[str]) -> None:
    """Colour features from skimage's HSV of every segment pixel, summed per crop in pixel order."""
    k = len(nf)
    hsv = _rgb_to_hsv(pixels)
    h_deg, s, v = hsv[:, 0] * 360.0, hsv[:, 1], hsv[:, 2]

    def per_crop(x: np.ndarray) -> np.ndarray:
        return np.bincount(idx, weights=x, minlength=k)

    wsum = per_crop(s)
    if "hue" in need:
        ang = np.deg2rad(h_deg)
        cols["hue"] = np.where(wsum > 0, np.rad2deg(np.arctan2(per_crop(np.sin(ang) * s),
                                                               per_crop(np.cos(ang) * s))) % 360.0, 0.0)
    cols["saturation"] = wsum / nf
    if "value" in need:
        cols["value"] = per_crop(v) / nf
    count = lambda b: np.bincount(idx[b], minlength=k) / nf  # noqa: E731
    if "yellow_fraction" in need:
        cols["yellow_fraction"] = count((h_deg >= 35) & (h_deg <= 70) & (s > 0.35) & (v > 0.35))
    if "white_fraction" in need:
        cols["white_fraction"] = count((s < 0.25) & (v > 0.65))
    if "green_fraction" in need:
        cols["green_fraction"] = count((h_deg >= 75) & (h_deg <= 165) & (s > 0.2) & (v > 0.15))


def _moments(cols: dict[str, np.ndarray], m: np.ndarray, nf: np.ndarray) -> None:
    """regionprops' second moments: eigenvalues of the inertia tensor [[mu02, -mu11], [-mu11, mu20]] / n."""
    side = m.shape[1]
    coord = np.arange(side, dtype=np.float64)
    rows, cols_ = m.sum(axis=2).astype(np.float64), m.sum(axis=1).astype(np.float64)
    dr = coord[None, :] - ((rows * coord).sum(axis=1) / nf)[:, None]
    dc = coord[None, :] - ((cols_ * coord).sum(axis=1) / nf)[:, None]
    mu20, mu02 = (rows * dr * dr).sum(axis=1), (cols_ * dc * dc).sum(axis=1)
    mu11 = ((m * dc[:, None, :]).sum(axis=2) * dr).sum(axis=1)  # no BLAS: a row's sum is the same in any batch
    a, b, c2 = mu02 / nf, -mu11 / nf, mu20 / nf
    root = np.sqrt(((a - c2) / 2) ** 2 + b * b)
    l1 = np.clip((a + c2) / 2 + root, 0, None)
    l2 = np.clip(np.minimum((a + c2) / 2 - root, l1), 0, None)
    cols["elongation"] = 4 * np.sqrt(l1) / np.maximum(4 * np.sqrt(l2), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["eccentricity"] = np.where(l1 == 0, 0.0, np.sqrt(np.clip(1 - l2 / np.where(l1 == 0, 1, l1), 0, None)))


def _circularity(cols: dict[str, np.ndarray], m: np.ndarray, nf: np.ndarray) -> None:
    """4π·area / perimeter² with skimage's 4-neighbourhood perimeter (border pixels coded by their
    neighbours, each code weighted), clipped to 1."""
    k = len(nf)
    p = np.pad(m, ((0, 0), (1, 1), (1, 1)))
    eroded = m & p[:, :-2, 1:-1] & p[:, 2:, 1:-1] & p[:, 1:-1, :-2] & p[:, 1:-1, 2:]
    border = np.pad((m & ~eroded).view(np.uint8), ((0, 0), (1, 1), (1, 1)))  # codes stay below 50: uint8
    code = (border[:, 1:-1, 1:-1] + 2 * (border[:, :-2, 1:-1] + border[:, 2:, 1:-1] + border[:, 1:-1, :-2]
                                         + border[:, 1:-1, 2:])
            + 10 * (border[:, :-2, :-2] + border[:, :-2, 2:] + border[:, 2:, :-2] + border[:, 2:, 2:]))
    hist = np.bincount((np.arange(k)[:, None] * 50 + code.reshape(k, -1)).ravel(), minlength=50 * k).reshape(k, 50)
    perimeter = (hist.astype(np.float64) * _PERIMETER_WEIGHTS).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["circularity"] = np.where(perimeter > 0,
                                       np.minimum(1.0, 4 * np.pi * nf / np.where(perimeter > 0, perimeter, 1) ** 2), 1.0)


def _convex_area(m: np.ndarray) -> np.ndarray:
    """Pixels whose centre lies in (or on) the convex hull of each mask's pixels taken as unit
    squares' edge midpoints — ``skimage.morphology.convex_hull_image``'s count, computed exactly.

    In doubled coordinates (Y = 2·row, X = 2·column) a row's leftmost pixel ``a`` gives the points
    (2r±1, 2a) and (2r, 2a-1), its rightmost ``b`` (2r±1, 2b) and (2r, 2b+1). The hull's left edge is
    the lower convex envelope of the left points (a monotone chain, vectorised over the crops), its
    right edge the upper envelope of the right points; a row's count is the pixel centres between them.
    """
    k, side = m.shape[0], m.shape[1]
    occupied = m.any(axis=2)
    first = np.where(occupied, m.argmax(axis=2), 0)
    last = np.where(occupied, side - 1 - m[:, :, ::-1].argmax(axis=2), 0)
    big = np.int64(1) << 40
    heights = 2 * side + 1  # Y = -1 .. 2·side-1, stored at Y + 1

    def points(x_edge: np.ndarray, x_mid: np.ndarray) -> np.ndarray:
        pts = np.full((k, heights), big, dtype=np.int64)
        xe = np.where(occupied, x_edge, big)
        pts[:, 1:-1:2] = np.where(occupied, x_mid, big)  # Y = 2r: the row's side edge midpoint
        pts[:, 0:-1:2] = xe  # Y = 2r - 1
        pts[:, 2::2] = np.minimum(pts[:, 2::2], xe)  # Y = 2r + 1 (shared with row r+1's 2(r+1) - 1)
        return pts

    both = _lower_envelope(np.concatenate([points(2 * first, 2 * first - 1), points(-2 * last, -(2 * last + 1))]), big)
    num, den = both(2 * np.arange(side))  # left edges in the first k rows, right edges (negated) after
    lnum, lden, rnum, rden = num[:k], den[:k], num[k:], den[k:]
    cmin = -((-lnum) // (2 * lden))  # ceil(x_left / 2)
    cmax = (-rnum) // (2 * rden)  # floor(x_right / 2)
    top = np.where(occupied.any(axis=1), occupied.argmax(axis=1), 0)
    bottom = side - 1 - occupied[:, ::-1].argmax(axis=1)
    inside = (np.arange(side)[None, :] >= top[:, None]) & (np.arange(side)[None, :] <= bottom[:, None])
    return np.where(inside, np.maximum(cmax - cmin + 1, 0), 0).sum(axis=1).astype(np.float64)


def _lower_envelope(pts: np.ndarray, big: np.int64):
    """The lower convex envelope of points (Y = column index - 1, X = ``pts``; ``big`` = no point) of
    every row, as a function ``f(ys) -> (num, den)`` with X = num / den at each query Y."""
    k, heights = pts.shape
    sy = np.zeros((k, heights + 1), dtype=np.int64)
    sx = np.zeros((k, heights + 1), dtype=np.int64)
    top = np.zeros(k, dtype=np.int64)
    rows = np.arange(k)
    for h in range(heights):
        x = pts[:, h]
        active = x != big
        if not active.any():
            continue
        y = h - 1
        while True:  # pop the chain's last vertex b while it lies on or above the chord from a to (y, x)
            ia, ib = np.maximum(top - 2, 0), np.maximum(top - 1, 0)
            ya, xa, yb, xb = sy[rows, ia], sx[rows, ia], sy[rows, ib], sx[rows, ib]
            pop = active & (top >= 2) & ((xb - xa) * (y - ya) - (x - xa) * (yb - ya) >= 0)
            if not pop.any():
                break
            top -= pop
        sy[rows, top] = np.where(active, y, sy[rows, top])
        sx[rows, top] = np.where(active, x, sx[rows, top])
        top += active
    sy, sx = sy[:, :heights], sx[:, :heights]

    def at(ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        valid = np.arange(heights)[None, :] < top[:, None]
        j = ((sy[:, None, :] <= ys[None, :, None]) & valid[:, None, :]).sum(axis=2)  # vertices at or below Y
        ia = np.clip(j - 1, 0, None)
        ib = np.minimum(j, np.maximum(top - 1, 0)[:, None])
        ya, xa = np.take_along_axis(sy, ia, 1), np.take_along_axis(sx, ia, 1)
        yb, xb = np.take_along_axis(sy, ib, 1), np.take_along_axis(sx, ib, 1)
        den = yb - ya
        flat = den <= 0
        y = ys[None, :]
        num = np.where(flat, xa, xa * den + (xb - xa) * (y - ya))
        return num, np.where(flat, 1, den)

    return at


def segment_features(
    crop: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    bbox: tuple[int, int, int, int] | None = None,
    image_shape: tuple[int, ...] | None = None,
    area: int | None = None,
) -> SegmentFeatures:
    """Features of one segment from its crop (uint8 S×S×3 on black) and, optionally, its crop-sized mask.

    ``bbox`` (x0, y0, x1, y1) and ``image_shape`` (H, W, ...) add the position; ``area`` (pixels in the
    full image) with ``image_shape`` adds the size relative to the image. The same numbers as
    :func:`feature_matrix` gives for this crop in any batch.
    """
    crop = np.asarray(crop)
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[-1] != 3:
        raise ModelError(f"a segment crop must be a uint8 S×S×3 array, got {crop.dtype} {crop.shape}")
    m = None
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != crop.shape[:2]:
            raise ModelError(f"mask shape {m.shape} does not match the crop {crop.shape[:2]}")
        m = m[None]
    row = feature_matrix(crop[None], m)[0]
    cx = cy = frac = None
    if bbox is not None and image_shape is not None:
        h, w = image_shape[:2]
        cx, cy = (bbox[0] + bbox[2]) / 2.0 / w, (bbox[1] + bbox[3]) / 2.0 / h
        if area is not None:
            frac = area / float(h * w)
    return _from_row(row, cx, cy, frac)


def _from_row(row: np.ndarray, cx: float | None = None, cy: float | None = None,
              frac: float | None = None) -> SegmentFeatures:
    """A :func:`feature_matrix` row as :class:`SegmentFeatures` (a NaN position is None, unless given)."""
    pos = [None if np.isnan(v) else float(v) for v in row[11:14]] if len(row) > 11 else [None] * 3
    return SegmentFeatures(*(float(v) for v in row[:11]), center_x=pos[0] if cx is None else cx,
                           center_y=pos[1] if cy is None else cy, image_fraction=pos[2] if frac is None else frac)


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at ``lo``, 1 at ``hi``, linear between (a decreasing ramp when ``hi < lo``).

    >>> ramp(0.5, 0.0, 1.0), ramp(2.0, 0.0, 1.0), ramp(1.5, 2.0, 1.0)
    (0.5, 1.0, 0.5)
    """
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


# ------------------------------------------------------------------------------- fitted conditions
#: A rule fits its constants only from at least this many training positives; with fewer it keeps
#: the hand-set defaults (and says so).
MIN_POSITIVES = 3
#: A fitted condition holds fully for all but this share of the training positives (at its edge).
EDGE_QUANTILE = 0.05
#: A fitted ramp is half as wide as the positives' middle 90 % ...
RAMP_SPREAD = 0.5
#: ... and at least this share of the feature's scale (:data:`FEATURE_SCALE`) wide.
MIN_RAMP = 0.05
#: Each feature's bounds (a fitted edge is clipped to them) and scale (for :data:`MIN_RAMP`);
#: fractions, saturation, value, solidity and the like are in [0, 1].
FEATURE_BOUNDS: dict[str, tuple[float, float]] = {"hue": (0.0, 360.0), "elongation": (1.0, np.inf)}
FEATURE_SCALE: dict[str, float] = {"hue": 360.0, "elongation": 10.0}
_FEATURES = tuple(f.name for f in fields(SegmentFeatures))
_OPS = {">=": "≥", "<=": "≤"}


@dataclass(frozen=True)
class Condition:
    """``feature >= ...`` or ``feature <= ...`` as a ramp with two constants, ``lo < hi``.

    ``>=``: holds not at all at ``lo`` or below, fully at ``hi`` or above. ``<=``: fully at ``lo`` or
    below, not at all at ``hi`` or above. The values given are the hand-set defaults; :meth:`fit`
    learns them from the training positives' values of the feature. Write them with
    :func:`at_least` and :func:`at_most`.
    """

    feature: str
    op: str  # ">=" or "<="
    lo: float
    hi: float
    note: str = ""  # what it means, for people

    def __post_init__(self) -> None:
        if self.feature not in _FEATURES:
            raise ModelError(
                f"condition on unknown feature {self.feature!r}: SegmentFeatures has {', '.join(_FEATURES)}"
            )
        if self.op not in _OPS:
            raise ModelError(f"condition on {self.feature!r}: op must be '>=' or '<=', got {self.op!r}")
        _check_ends(f"condition on {self.feature!r}", self.lo, self.hi)

    def degree(self, f: SegmentFeatures, lo: float, hi: float) -> float:
        """How far the condition holds for ``f``, in [0, 1] (0 when the feature is missing)."""
        x = getattr(f, self.feature)
        if x is None:
            return 0.0
        return ramp(x, lo, hi) if self.op == ">=" else ramp(x, hi, lo)

    def fit(self, values: np.ndarray) -> tuple[float, float] | None:
        """``(lo, hi)`` from the positives' values of the feature; ``None`` with too few finite ones.

        The full end sits at the positives' 5th percentile (``>=``; the 95th for ``<=``), clipped to
        the feature's bounds; the ramp runs from there away from the positives, half as wide as their
        middle 90 % and at least 5 % of the feature's scale, but stops at the feature's bound (unless
        the full end is on the bound: then the condition holds everywhere).
        """
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if len(v) < MIN_POSITIVES:
            return None
        q_lo, q_hi = np.quantile(v, [EDGE_QUANTILE, 1.0 - EDGE_QUANTILE])
        width = max(RAMP_SPREAD * float(q_hi - q_lo), MIN_RAMP * FEATURE_SCALE.get(self.feature, 1.0))
        b_lo, b_hi = FEATURE_BOUNDS.get(self.feature, (0.0, 1.0))
        if self.op == ">=":
            hi = float(np.clip(q_lo, b_lo, b_hi))
            lo = hi - width
            return (b_lo if b_lo < hi and lo < b_lo else lo), hi
        lo = float(np.clip(q_hi, b_lo, b_hi))
        hi = lo + width
        return lo, (b_hi if lo < b_hi < hi else hi)

    def text(self, lo: float, hi: float) -> str:
        """``saturation ≥ 0.82 (from 0.72)``: where it holds fully, and where the ramp starts."""
        if self.op == ">=":
            return f"{self.feature} ≥ {hi:.2f} (from {lo:.2f})"
        return f"{self.feature} ≤ {lo:.2f} (to {hi:.2f})"


def at_least(feature: str, lo: float, hi: float, note: str = "") -> Condition:
    """``feature`` ≥: not at all at ``lo``, fully from ``hi`` (hand-set defaults; fitted by RuleModel)."""
    return Condition(feature, ">=", lo, hi, note)


def at_most(feature: str, lo: float, hi: float, note: str = "") -> Condition:
    """``feature`` ≤: fully up to ``lo``, not at all from ``hi`` (hand-set defaults; fitted by RuleModel)."""
    return Condition(feature, "<=", lo, hi, note)


def _check_ends(where: str, lo: Any, hi: Any) -> None:
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ModelError(f"{where}: its constants must be finite numbers, got {lo!r} and {hi!r}")
    if not lo < hi:
        raise ModelError(f"{where}: needs lo < hi, got lo={lo!r}, hi={hi!r}")


# ------------------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """A named rule scoring a segment in [0, 1]; ``threshold`` is its default decision point.

    Without ``conditions``, ``func(features) -> score``: its constants are written in its code and
    only the threshold is learned. With ``conditions`` (name → :class:`Condition`), ``func`` takes
    the mapping name → degree each condition holds, and every condition's two constants
    (``<name>.lo``, ``<name>.hi``) can be learned from training segments (:class:`RuleModel`).
    """

    name: str
    func: Callable[..., float]
    description: str
    threshold: float = 0.5
    conditions: tuple[tuple[str, Condition], ...] = ()

    def __call__(self, features: SegmentFeatures, constants: Mapping[str, float] | None = None) -> float:
        """The score of ``features``, with ``constants`` (default: the hand-set ones)."""
        if not self.conditions:
            return float(np.clip(self.func(features), 0.0, 1.0))
        k = self.defaults if constants is None else constants
        degrees = {n: c.degree(features, k[f"{n}.lo"], k[f"{n}.hi"]) for n, c in self.conditions}
        return float(np.clip(self.func(degrees), 0.0, 1.0))

    def score_matrix(self, F: np.ndarray, constants: Mapping[str, float] | None = None) -> np.ndarray:
        """The scores of many segments from their :func:`feature_matrix` rows: the same numbers as calling
        the rule on each row's :class:`SegmentFeatures`, with the conditions' ramps computed on whole
        columns (only ``func`` runs once per segment)."""
        F = np.asarray(F, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        if not self.conditions:
            return np.array([self(_from_row(r)) for r in F], dtype=np.float64)
        k = self.defaults if constants is None else constants
        names = [n for n, _ in self.conditions]
        cols = []
        for n, c in self.conditions:
            x = F[:, FEATURE_NAMES.index(c.feature)]
            lo, hi = (k[f"{n}.lo"], k[f"{n}.hi"]) if c.op == ">=" else (k[f"{n}.hi"], k[f"{n}.lo"])
            with np.errstate(invalid="ignore"):
                d = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
            cols.append(np.where(np.isnan(x), 0.0, d))
        if not len(F):
            return np.zeros(0)
        rows = np.stack(cols, axis=1).tolist()
        return np.clip(np.array([self.func(dict(zip(names, r))) for r in rows], dtype=np.float64), 0.0, 1.0)

    def fit_constants_matrix(self, F: np.ndarray, y: np.ndarray) -> dict[str, float] | None:
        """:meth:`fit_constants` from :func:`feature_matrix` rows (the same constants)."""
        F = np.asarray(F, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        pos = F[np.asarray(y, dtype=bool)]
        if not self.conditions or len(pos) < MIN_POSITIVES:
            return None
        out = self.defaults
        for n, c in self.conditions:
            ends = c.fit(pos[:, FEATURE_NAMES.index(c.feature)])
            if ends is not None:
                out[f"{n}.lo"], out[f"{n}.hi"] = ends
        return out

    @property
    def defaults(self) -> dict[str, float]:
        """The hand-set constants, by name (``<condition>.lo``, ``<condition>.hi``); empty without conditions."""
        out: dict[str, float] = {}
        for n, c in self.conditions:
            out[f"{n}.lo"], out[f"{n}.hi"] = float(c.lo), float(c.hi)
        return out

    def fit_constants(self, features: Sequence[SegmentFeatures], y: np.ndarray) -> dict[str, float] | None:
        """Every constant learned from the positives among ``features`` (``y`` True); ``None`` when
        there are fewer than :data:`MIN_POSITIVES` of them or the rule has no conditions. A condition
        whose feature is missing on the positives keeps its default."""
        pos = [f for f, t in zip(features, y) if t]
        if not self.conditions or len(pos) < MIN_POSITIVES:
            return None
        out = self.defaults
        for n, c in self.conditions:
            ends = c.fit(np.array([np.nan if getattr(f, c.feature) is None else getattr(f, c.feature) for f in pos]))
            if ends is not None:
                out[f"{n}.lo"], out[f"{n}.hi"] = ends
        return out

    def check_constants(self, constants: Any) -> dict[str, float]:
        """``constants`` as this rule's: exactly its names, finite numbers, ``lo < hi``; a ModelError otherwise."""
        if not isinstance(constants, Mapping):
            raise ModelError(
                f"rule '{self.name}': constants must be a mapping name → number, got {type(constants).__name__}"
            )
        want, got = set(self.defaults), set(constants)
        if want != got:
            raise ModelError(
                f"rule '{self.name}': constants {sorted(got)} do not match the rule's {sorted(want)} "
                f"(unknown: {sorted(got - want)}, missing: {sorted(want - got)}); the rule changed since: retrain"
            )
        for n, _ in self.conditions:
            _check_ends(f"rule '{self.name}', condition '{n}'", constants[f"{n}.lo"], constants[f"{n}.hi"])
        return {k: float(constants[k]) for k in self.defaults}

    def text(self, constants: Mapping[str, float] | None = None) -> str:
        """The conditions with ``constants`` (default: hand-set), e.g. ``yellow_fraction ≥ 0.70 (from 0.40), ...``."""
        k = self.defaults if constants is None else constants
        return ", ".join(c.text(k[f"{n}.lo"], k[f"{n}.hi"]) for n, c in self.conditions)

    @property
    def source_hash(self) -> str:
        """Hash of the rule's source code and conditions: changes when someone edits the rule."""
        try:
            src = inspect.getsource(self.func)
        except (OSError, TypeError):
            src = repr(self.func)
        if self.conditions:
            src += repr(self.conditions)
        return "sha256:" + hashlib.sha256(src.encode()).hexdigest()


#: Every rule by name. Add one with :func:`register_rule`.
RULES: dict[str, Rule] = {}


def register_rule(
    name: str,
    description: str,
    threshold: float = 0.5,
    *,
    conditions: Mapping[str, Condition] | None = None,
    replace: bool = False,
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Decorator: register ``func`` as the rule ``name`` (refuses to overwrite unless ``replace``).

    Without ``conditions``, ``func(features) -> score``. With them, ``func(degrees) -> score`` where
    ``degrees`` maps each condition's name to how far it holds, and the conditions' constants are
    fitted to the training data (see :class:`RuleModel`).
    """
    conds = tuple((conditions or {}).items())
    for n, c in conds:
        if not isinstance(c, Condition):
            raise ModelError(
                f"rule '{name}': condition '{n}' must be a Condition (at_least/at_most), got {type(c).__name__}"
            )

    def deco(func: Callable[..., float]) -> Callable[..., float]:
        if name in RULES and not replace:
            raise ModelError(f"rule '{name}' is already registered: pick another name or pass replace=True")
        RULES[name] = Rule(name, func, description, threshold, conds)
        return func

    return deco


def get_rule(name: str) -> Rule:
    """The registered rule ``name``; a :class:`ModelError` listing the known rules otherwise."""
    try:
        return RULES[name]
    except (KeyError, TypeError):
        raise ModelError(
            f"unknown rule {name!r}: known rules are {', '.join(sorted(RULES)) or '(none)'}; "
            "register yours with @register_rule(name, description) in workbench/rules.py"
        ) from None


# --------------------------------------------------------------------------------------- the rules
# The numbers are hand-set defaults: RuleModel learns them from each concept's training segments.
@register_rule("yellow_disk", "A daisy's disk: deep yellow, roundish and compact.", conditions={
    "yellow": at_least("yellow_fraction", 0.4, 0.7, "most of the segment is yellow"),
    "deep": at_least("saturation", 0.72, 0.82, "deep yellow: pale discs (and the demo's suns) are less saturated"),
    "roundish": at_most("elongation", 1.6, 2.6, "axes within 1.6:1 count fully, 2.6:1 or worse not at all"),
    "compact": at_least("solidity", 0.6, 0.85, "no deep notches"),
})
def yellow_disk(c: Mapping[str, float]) -> float:
    return min(c["yellow"], c["deep"], c["roundish"], c["compact"])  # all must hold


@register_rule("white_elongated", "A petal: white and longer than wide.", conditions={
    "white": at_least("white_fraction", 0.3, 0.6),
    "long": at_least("elongation", 1.2, 2.2),
})
def white_elongated(c: Mapping[str, float]) -> float:
    return min(c["white"], c["long"])


@register_rule("green_elongated", "A stem: green and much longer than wide.", conditions={
    "green": at_least("green_fraction", 0.2, 0.5, "stems are dark: part of their pixels fall outside 'green'"),
    "long": at_least("elongation", 3.0, 6.0),
})
def green_elongated(c: Mapping[str, float]) -> float:
    return min(c["green"], c["long"])


# ------------------------------------------------------------------------------------------ model
#: The keys a RuleModel's saved state may hold (files from before fitted constants hold the first two).
_STATE_KEYS = frozenset({"threshold", "rule_source_hash", "constants", "constants_fitted", "constants_source"})


class RuleModel(ConceptModel):
    """A rule under the concept-model contract.

    ``X``: segment crops (uint8 N×S×S×3 on black, any S) or a sequence of :class:`SegmentFeatures`.
    ``fit(X, y)`` learns from the training segments only (validation data is only scored):

    1. with ``fit_constants``, every constant of the rule's conditions (:meth:`Rule.fit_constants`:
       from the positives' feature values); with fewer than :data:`MIN_POSITIVES` positives, or a rule
       without conditions, the hand-set constants stay (``constants_source_`` says why);
    2. with ``calibrate``, the score threshold with the best balanced accuracy on the training data
       (ties: the one nearest the rule's default); otherwise ``threshold`` or the rule's default.

    ``predict_proba`` maps the score monotonically and piecewise-linearly so the threshold lands on
    0.5: ``0.5·s/t`` below it, ``0.5 + 0.5·(s-t)/(1-t)`` above. Parameters: the learned constants
    plus the threshold.

    Parameters
    ----------
    rule: a name in :data:`RULES`.  concept: the concept id it implements.
    calibrate: learn the threshold from data.  threshold: a fixed threshold (when not calibrating).
    fit_constants: learn the conditions' constants from data (False: the hand-set ones).
    random_state, torch_threads: the contract's; a rule is deterministic and single-threaded.
    """

    input_kind = "crops"

    def __init__(
        self,
        rule: str = "yellow_disk",
        concept: str = "part",
        *,
        calibrate: bool = True,
        threshold: float | None = None,
        fit_constants: bool = True,
        random_state: int | None = 0,
        torch_threads: int = 1,
    ):
        self.rule = rule
        self.concept = concept
        self.calibrate = calibrate
        self.threshold = threshold
        self.fit_constants = fit_constants
        self.random_state = random_state
        self.torch_threads = torch_threads
        get_rule(rule)  # an unknown rule fails where it is named

    @property
    def n_params(self) -> int:
        """The threshold plus the constants learned (before ``fit``: those it would learn)."""
        if hasattr(self, "constants_fitted_"):
            return 1 + (len(self.constants_) if self.constants_fitted_ else 0)
        return 1 + (len(get_rule(self.rule).defaults) if self.fit_constants else 0)

    def _matrix(self, X: Any) -> np.ndarray:
        """The :func:`feature_matrix` rows of ``X`` (crops, SegmentFeatures, or rows already measured)."""
        if isinstance(X, _FeatureRows):
            return X.F
        if isinstance(X, np.ndarray):
            if X.dtype != np.uint8 or X.ndim != 4 or X.shape[-1] != 3:
                raise ModelError(
                    f"concept '{self.concept}': X must be segment crops (uint8 N×S×S×3) or SegmentFeatures, "
                    f"got {X.dtype} {X.shape}"
                )
            rule = get_rule(self.rule)
            return feature_matrix(X, features={c.feature for _, c in rule.conditions} if rule.conditions else None)
        X = list(X)
        if not all(isinstance(f, SegmentFeatures) for f in X):
            raise ModelError(f"concept '{self.concept}': X must be segment crops or a sequence of SegmentFeatures")
        return np.stack([f.as_array() for f in X]) if X else np.zeros((0, len(FEATURE_NAMES)))

    def scores(self, X: Any) -> np.ndarray:
        """The rule's raw scores in [0, 1] (before the threshold mapping), with the learned constants
        once fitted (the hand-set ones before)."""
        return get_rule(self.rule).score_matrix(self._matrix(X), getattr(self, "constants_", None))

    def _hashable(self, X: Any) -> tuple[Any, ...]:
        if isinstance(X, np.ndarray):
            return (X,)
        return (self._matrix(X),)

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> "RuleModel":
        started = time.perf_counter()
        F = self._matrix(X)
        yb = check_labels(y, len(F), self.concept, need_both=self.calibrate)
        rule = get_rule(self.rule)
        learned = rule.fit_constants_matrix(F, yb) if self.fit_constants else None
        self.constants_ = rule.defaults if learned is None else learned
        self.constants_fitted_ = learned is not None
        if learned is not None:
            self.constants_source_ = f"fitted on {int(yb.sum())} training positives"
        elif not rule.conditions:
            self.constants_source_ = "hand-set: the rule declares no conditions to fit"
        elif not self.fit_constants:
            self.constants_source_ = "hand-set: fit_constants=False"
        else:
            self.constants_source_ = f"hand-set: {int(yb.sum())} training positives, {MIN_POSITIVES} needed to fit"
        s = rule.score_matrix(F, self.constants_)
        default = rule.threshold if self.threshold is None else float(self.threshold)
        self.threshold_ = _best_threshold(s, yb, default) if self.calibrate else default
        self.rule_source_hash_ = rule.source_hash
        Fv = _FeatureRows(self._matrix(X_val)) if X_val is not None and y_val is not None else None
        self._finish_fit(_FeatureRows(F), yb, Fv, y_val, started, constants_fitted=self.constants_fitted_,
                         constants_source=self.constants_source_)
        self.data_hash_ = data_hash(*self._hashable(X), yb)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return self._predict_proba(X)

    def _predict_proba(self, X: Any) -> np.ndarray:
        s = self.scores(X)
        t = float(np.clip(self.threshold_, 1e-6, 1 - 1e-6))
        return np.where(s < t, 0.5 * s / t, 0.5 + 0.5 * (s - t) / (1 - t))

    def describe(self) -> str:
        """One line: the rule, what it means, its conditions with the learned constants, the threshold."""
        r = get_rule(self.rule)
        line = f"{self.concept} = rule '{r.name}' ({r.description})"
        if r.conditions:
            line += f": {r.text(getattr(self, 'constants_', None))}"
        if self.is_fitted:
            line += f"; threshold {self.threshold_:.2f}; constants {self.constants_source_}"
        return line

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {}, {"threshold": float(self.threshold_), "rule_source_hash": self.rule_source_hash_,
                    "constants": dict(self.constants_), "constants_fitted": bool(self.constants_fitted_),
                    "constants_source": self.constants_source_}

    def _restore(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        if tensors:
            raise ModelError(f"a rule model holds no tensors, this file has {sorted(tensors)}")
        unknown = set(state) - _STATE_KEYS
        if unknown:
            raise ModelError(f"rule model state has unknown key(s) {sorted(unknown)} (known: {sorted(_STATE_KEYS)}): "
                             "written by other code or damaged; retrain it")
        t = float(state["threshold"])
        if not 0.0 <= t <= 1.0:
            raise ModelError(f"threshold {t} outside [0, 1]")
        self.threshold_ = t
        self.rule_source_hash_ = str(state.get("rule_source_hash", ""))
        rule = get_rule(self.rule)
        if "constants" not in state:  # written before rules fitted their constants: the hand-set ones
            self.constants_, self.constants_fitted_ = rule.defaults, False
            self.constants_source_ = "hand-set: saved before rules fitted their constants"
            return
        self.constants_ = rule.check_constants(state["constants"])
        fitted = state.get("constants_fitted", False)
        if not isinstance(fitted, bool):
            raise ModelError(f"constants_fitted must be true or false, got {fitted!r}")
        self.constants_fitted_ = fitted
        self.constants_source_ = str(state.get("constants_source", ""))


class _FeatureRows:
    """Crops already measured (:func:`feature_matrix` rows), passed between RuleModel's own steps."""

    __slots__ = ("F",)

    def __init__(self, F: np.ndarray):
        self.F = F

    def __len__(self) -> int:
        return len(self.F)


def _best_threshold(s: np.ndarray, y: np.ndarray, default: float) -> float:
    """The threshold t (decide ``s >= t``) with the best balanced accuracy; ties → nearest ``default``."""
    u = np.unique(s)
    cands = np.unique(np.concatenate([[default], (u[:-1] + u[1:]) / 2.0, u[:1] / 2.0, [(u[-1] + 1.0) / 2.0]]))
    cands = np.clip(cands, 1e-3, 1 - 1e-3)
    pos, neg = y, ~y

    def bacc(t: float) -> float:
        d = s >= t
        return 0.5 * (d[pos].mean() + (~d[neg]).mean())

    scored = [(round(bacc(t), 12), -abs(t - default), t) for t in cands]
    return float(max(scored)[2])
