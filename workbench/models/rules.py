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
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
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
    "crop_features",
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
    from skimage.color import rgb2hsv

    return rgb2hsv(rgb.reshape(-1, 1, 3)).reshape(-1, 3)


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
    full image) with ``image_shape`` adds the size relative to the image.
    """
    from skimage.measure import regionprops

    crop = np.asarray(crop)
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[-1] != 3:
        raise ModelError(f"a segment crop must be a uint8 S×S×3 array, got {crop.dtype} {crop.shape}")
    m = (crop.max(axis=2) > BLACK_LEVEL) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != crop.shape[:2]:
        raise ModelError(f"mask shape {m.shape} does not match the crop {crop.shape[:2]}")
    n = int(m.sum())
    cx = cy = frac = None
    if bbox is not None and image_shape is not None:
        h, w = image_shape[:2]
        cx, cy = (bbox[0] + bbox[2]) / 2.0 / w, (bbox[1] + bbox[3]) / 2.0 / h
        if area is not None:
            frac = area / float(h * w)
    if n == 0:
        return SegmentFeatures(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, cx, cy, frac)
    hsv = _rgb_to_hsv(crop[m])
    h_deg, s, v = hsv[:, 0] * 360.0, hsv[:, 1], hsv[:, 2]
    ang = np.deg2rad(h_deg)
    wsum = s.sum()
    hue = float(np.rad2deg(np.arctan2((np.sin(ang) * s).sum(), (np.cos(ang) * s).sum())) % 360.0) if wsum > 0 else 0.0
    yellow = float(np.mean((h_deg >= 35) & (h_deg <= 70) & (s > 0.35) & (v > 0.35)))
    white = float(np.mean((s < 0.25) & (v > 0.65)))
    green = float(np.mean((h_deg >= 75) & (h_deg <= 165) & (s > 0.2) & (v > 0.15)))
    props = regionprops(m.astype(np.uint8))[0]
    major, minor = float(props.axis_major_length), float(props.axis_minor_length)
    elongation = major / max(minor, 1.0)
    perimeter = float(props.perimeter)
    circularity = min(1.0, 4 * np.pi * n / perimeter**2) if perimeter > 0 else 1.0
    return SegmentFeatures(
        area_fraction=n / float(m.size),
        hue=hue,
        saturation=float(s.mean()),
        value=float(v.mean()),
        yellow_fraction=yellow,
        white_fraction=white,
        green_fraction=green,
        elongation=elongation,
        eccentricity=float(props.eccentricity),
        solidity=float(props.solidity),
        circularity=float(circularity),
        center_x=cx,
        center_y=cy,
        image_fraction=frac,
    )


#: How many crops' features :func:`crop_features` remembers (about 1 KB each).
FEATURE_CACHE_SIZE = 50_000
_feature_cache: OrderedDict[bytes, SegmentFeatures] = OrderedDict()
_feature_cache_lock = threading.Lock()


def crop_features(crop: np.ndarray) -> SegmentFeatures:
    """:func:`segment_features` of a crop alone, remembered by the crop's content: a rule fitted and then
    scored on the same crops (training, evaluation, the control, the swap, more seeds) measures each
    crop's shape once. The cache keeps the :data:`FEATURE_CACHE_SIZE` most recently used crops.

    >>> c = np.zeros((8, 8, 3), np.uint8); c[2:6, 2:6] = 200
    >>> crop_features(c) == segment_features(c)
    True
    """
    a = np.ascontiguousarray(crop)
    key = hashlib.blake2b(a.tobytes(), digest_size=16, person=str(a.shape).encode()[:16]).digest()
    with _feature_cache_lock:
        hit = _feature_cache.get(key)
        if hit is not None:
            _feature_cache.move_to_end(key)
            return hit
    f = segment_features(a)
    with _feature_cache_lock:
        _feature_cache[key] = f
        while len(_feature_cache) > FEATURE_CACHE_SIZE:
            _feature_cache.popitem(last=False)
    return f


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

    def _features(self, X: Any) -> list[SegmentFeatures]:
        if isinstance(X, np.ndarray):
            if X.dtype != np.uint8 or X.ndim != 4 or X.shape[-1] != 3:
                raise ModelError(
                    f"concept '{self.concept}': X must be segment crops (uint8 N×S×S×3) or SegmentFeatures, "
                    f"got {X.dtype} {X.shape}"
                )
            return [crop_features(c) for c in X]
        X = list(X)
        if not all(isinstance(f, SegmentFeatures) for f in X):
            raise ModelError(f"concept '{self.concept}': X must be segment crops or a sequence of SegmentFeatures")
        return X

    def scores(self, X: Any) -> np.ndarray:
        """The rule's raw scores in [0, 1] (before the threshold mapping), with the learned constants
        once fitted (the hand-set ones before)."""
        rule = get_rule(self.rule)
        k = getattr(self, "constants_", None)
        return np.array([rule(f, k) for f in self._features(X)], dtype=np.float64)

    def _hashable(self, X: Any) -> tuple[Any, ...]:
        if isinstance(X, np.ndarray):
            return (X,)
        return (np.stack([f.as_array() for f in X]) if len(X) else np.zeros((0, len(fields(SegmentFeatures)))),)

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> "RuleModel":
        started = time.perf_counter()
        feats = self._features(X)
        yb = check_labels(y, len(feats), self.concept, need_both=self.calibrate)
        rule = get_rule(self.rule)
        learned = rule.fit_constants(feats, yb) if self.fit_constants else None
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
        s = np.array([rule(f, self.constants_) for f in feats])
        default = rule.threshold if self.threshold is None else float(self.threshold)
        self.threshold_ = _best_threshold(s, yb, default) if self.calibrate else default
        self.rule_source_hash_ = rule.source_hash
        self._finish_fit(feats, yb, self._features(X_val) if X_val is not None and y_val is not None else None, y_val,
                         started, constants_fitted=self.constants_fitted_, constants_source=self.constants_source_)
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
