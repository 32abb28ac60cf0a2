"""Plain-code rules: a concept implemented by a readable Python function instead of a net.

A rule maps a segment's :class:`SegmentFeatures` (colour in HSV, shape, position) to a score in
[0, 1]. Rules are registered by name in :data:`RULES`; an ontology concept with ``implementation:
rule`` names one in its ``rule:`` field. :class:`RuleModel` wraps a rule in the same estimator
contract as the nets (fit, predict_proba, metrics, save/load), so a net can be swapped for code.

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
>>> model.predict(np.stack([disc, bar])).tolist()
[True, False]
"""
from __future__ import annotations

import hashlib
import inspect
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import numpy as np
import torch

from workbench.errors import ModelError
from workbench.models.contract import ConceptModel, check_labels
from workbench.models.metrics import data_hash

__all__ = [
    "BLACK_LEVEL",
    "SegmentFeatures",
    "segment_features",
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


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at ``lo``, 1 at ``hi``, linear between (a decreasing ramp when ``hi < lo``).

    >>> ramp(0.5, 0.0, 1.0), ramp(2.0, 0.0, 1.0), ramp(1.5, 2.0, 1.0)
    (0.5, 1.0, 0.5)
    """
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


@dataclass(frozen=True)
class Rule:
    """A named rule: ``func(features) -> score in [0, 1]``; ``threshold`` is its default decision point."""

    name: str
    func: Callable[[SegmentFeatures], float]
    description: str
    threshold: float = 0.5

    def __call__(self, features: SegmentFeatures) -> float:
        return float(np.clip(self.func(features), 0.0, 1.0))

    @property
    def source_hash(self) -> str:
        """Hash of the rule's source code: changes when someone edits the rule."""
        try:
            src = inspect.getsource(self.func)
        except (OSError, TypeError):
            src = repr(self.func)
        return "sha256:" + hashlib.sha256(src.encode()).hexdigest()


#: Every rule by name. Add one with :func:`register_rule`.
RULES: dict[str, Rule] = {}


def register_rule(
    name: str, description: str, threshold: float = 0.5, *, replace: bool = False
) -> Callable[[Callable[[SegmentFeatures], float]], Callable[[SegmentFeatures], float]]:
    """Decorator: register ``func`` as the rule ``name`` (refuses to overwrite unless ``replace``)."""

    def deco(func: Callable[[SegmentFeatures], float]) -> Callable[[SegmentFeatures], float]:
        if name in RULES and not replace:
            raise ModelError(f"rule '{name}' is already registered: pick another name or pass replace=True")
        RULES[name] = Rule(name, func, description, threshold)
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
@register_rule("yellow_disk", "A daisy's disk: deep yellow, roundish and compact.")
def yellow_disk(f: SegmentFeatures) -> float:
    yellow = ramp(f.yellow_fraction, 0.4, 0.7)  # most of the segment is yellow
    deep = ramp(f.saturation, 0.72, 0.82)  # deep yellow: pale discs (and the demo's suns) are less saturated
    roundish = ramp(f.elongation, 2.6, 1.6)  # axes within 1.6:1 count fully, 2.6:1 or worse not at all
    compact = ramp(f.solidity, 0.6, 0.85)  # no deep notches
    return min(yellow, deep, roundish, compact)  # all must hold


@register_rule("white_elongated", "A petal: white and longer than wide.")
def white_elongated(f: SegmentFeatures) -> float:
    white = ramp(f.white_fraction, 0.3, 0.6)
    long_ = ramp(f.elongation, 1.2, 2.2)
    return min(white, long_)


@register_rule("green_elongated", "A stem: green and much longer than wide.")
def green_elongated(f: SegmentFeatures) -> float:
    green = ramp(f.green_fraction, 0.2, 0.5)  # stems are dark: part of their pixels fall outside "green"
    long_ = ramp(f.elongation, 3.0, 6.0)
    return min(green, long_)


# ------------------------------------------------------------------------------------------ model
class RuleModel(ConceptModel):
    """A rule under the concept-model contract.

    ``X``: segment crops (uint8 N×S×S×3 on black, any S) or a sequence of :class:`SegmentFeatures`.
    ``fit`` (with ``calibrate``) picks the score threshold with the best balanced accuracy on the
    training data (ties: the one nearest the rule's default); otherwise the threshold is ``threshold``
    or the rule's default. ``predict_proba`` maps the score monotonically and piecewise-linearly so the
    threshold lands on 0.5: ``0.5·s/t`` below it, ``0.5 + 0.5·(s-t)/(1-t)`` above. One parameter.

    Parameters
    ----------
    rule: a name in :data:`RULES`.  concept: the concept id it implements.
    calibrate: learn the threshold from data.  threshold: a fixed threshold (when not calibrating).
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
        random_state: int | None = 0,
        torch_threads: int = 1,
    ):
        self.rule = rule
        self.concept = concept
        self.calibrate = calibrate
        self.threshold = threshold
        self.random_state = random_state
        self.torch_threads = torch_threads
        get_rule(rule)  # an unknown rule fails where it is named

    @property
    def n_params(self) -> int:
        return 1

    def _features(self, X: Any) -> list[SegmentFeatures]:
        if isinstance(X, np.ndarray):
            if X.dtype != np.uint8 or X.ndim != 4 or X.shape[-1] != 3:
                raise ModelError(
                    f"concept '{self.concept}': X must be segment crops (uint8 N×S×S×3) or SegmentFeatures, "
                    f"got {X.dtype} {X.shape}"
                )
            return [segment_features(c) for c in X]
        X = list(X)
        if not all(isinstance(f, SegmentFeatures) for f in X):
            raise ModelError(f"concept '{self.concept}': X must be segment crops or a sequence of SegmentFeatures")
        return X

    def scores(self, X: Any) -> np.ndarray:
        """The rule's raw scores in [0, 1] (before the threshold mapping)."""
        rule = get_rule(self.rule)
        return np.array([rule(f) for f in self._features(X)], dtype=np.float64)

    def _hashable(self, X: Any) -> tuple[Any, ...]:
        if isinstance(X, np.ndarray):
            return (X,)
        return (np.stack([f.as_array() for f in X]) if len(X) else np.zeros((0, len(fields(SegmentFeatures)))),)

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> "RuleModel":
        started = time.perf_counter()
        feats = self._features(X)
        yb = check_labels(y, len(feats), self.concept, need_both=self.calibrate)
        rule = get_rule(self.rule)
        s = np.array([rule(f) for f in feats])
        default = rule.threshold if self.threshold is None else float(self.threshold)
        self.threshold_ = _best_threshold(s, yb, default) if self.calibrate else default
        self.rule_source_hash_ = rule.source_hash
        self._finish_fit(feats, yb, self._features(X_val) if X_val is not None and y_val is not None else None, y_val, started)
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
        """One line: the rule, what it means, and the learned threshold."""
        r = get_rule(self.rule)
        t = f", threshold {self.threshold_:.2f}" if self.is_fitted else ""
        return f"{self.concept} = rule '{r.name}': {r.description}{t}"

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {}, {"threshold": float(self.threshold_), "rule_source_hash": self.rule_source_hash_}

    def _restore(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        if tensors:
            raise ModelError(f"a rule model holds no tensors, this file has {sorted(tensors)}")
        t = float(state["threshold"])
        if not 0.0 <= t <= 1.0:
            raise ModelError(f"threshold {t} outside [0, 1]")
        self.threshold_ = t
        self.rule_source_hash_ = str(state.get("rule_source_hash", ""))


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
