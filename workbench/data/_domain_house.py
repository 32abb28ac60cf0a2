"""Drawing code of the generated ``house`` scene (private; see :func:`workbench.data.datasets.generate_demo`).

A house, seen from the front: a wall under a pitched roof, with a door at the bottom and windows
(glass panes divided by a light cross-shaped frame). The negatives are buildings of the same make,
in the same colours and arrangement, that differ from a house by a part:

- ``kennel``: a roof and a wall, an arched opening instead of a door, louvred vents instead of
  windows;
- ``shed``: a roof and a wall, a barn door (braced with a light X) instead of a door, louvred vents
  instead of windows;
- ``garage``: a roof, a wall and real windows, but a wide garage door (light horizontal panel lines)
  instead of a door.

So a house is "a door and a window": the decision needs the door and window concepts, which differ
from their look-alikes by shape only. Every building draws its colours from the same palettes
whatever its kind: one wall colour, one roof colour, one light trim colour (window frames, vent slats,
barn-door braces, garage-door lines, opening rims), one colour for the large insert (door, opening,
barn door or garage door) and one for the small ones (window panes or vents). Insert sizes are
matched: the large insert covers about the same share of the wall in every kind, and there are one
to four small inserts of the same size in every kind. Backgrounds (sky over grass or soil, or the
original demo's textures) and distractors (trees, bushes, a fence, clouds) are shared.

Mask indices are those of ``workbench.data.datasets.HOUSE_PARTS``; everything is drawn without
anti-aliasing on the image and the mask together, so masks are exact.
"""
from __future__ import annotations

import math

import numpy as np

from workbench.data._demo_scene import (
    _background,
    _Canvas,
    _ellipse,
    _jit,
    _smooth_noise,
)

__all__ = ["render_scene", "NEGATIVE_KINDS", "ROOF", "WALL", "DOOR", "WINDOW", "OPENING", "BARN_DOOR",
           "GARAGE_DOOR", "VENT", "TREE", "FENCE"]

BACKGROUND, ROOF, WALL, DOOR, WINDOW, OPENING, BARN_DOOR, GARAGE_DOOR, VENT, TREE, FENCE = range(11)

#: The look-alike kinds of a negative, drawn with equal probability.
NEGATIVE_KINDS = ("kennel", "shed", "garage")

RGB = tuple[int, int, int]
Point = tuple[float, float]

_WALLS: tuple[RGB, ...] = ((228, 214, 180), (240, 226, 150), (190, 190, 185), (175, 85, 65), (160, 190, 215),
                           (160, 185, 150), (215, 170, 120))
_ROOFS: tuple[RGB, ...] = ((170, 60, 45), (110, 70, 45), (75, 75, 80), (60, 75, 110), (70, 110, 70), (140, 90, 60))
_TRIMS: tuple[RGB, ...] = ((248, 248, 245), (240, 235, 215), (225, 225, 230))
_INSERTS: tuple[RGB, ...] = ((50, 60, 85), (120, 170, 210), (95, 60, 35), (150, 40, 40), (40, 90, 60),
                             (45, 45, 50), (70, 110, 160))


def _pick(rng: np.random.Generator, palette: tuple[RGB, ...], amount: int = 12) -> RGB:
    return _jit(rng, palette[int(rng.integers(len(palette)))], amount)


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


# ---------------------------------------------------------------------------------------- backdrop
def _backdrop(rng: np.random.Generator, s: int, ground_y: float) -> np.ndarray:
    """Sky over a ground strip (70%), else one of the original demo's textured backgrounds."""
    if rng.random() >= 0.7:
        return _background(rng, s).astype(np.float32)
    top = np.array([70, 120, 205]) + rng.integers(-25, 26, 3)
    bottom = np.array([160, 195, 230]) + rng.integers(-25, 16, 3)
    t = np.linspace(0, 1, s)[:, None, None]
    img = top * (1 - t) + bottom * t + np.zeros((1, s, 1))
    ground = (np.array([80, 130, 55]) if rng.random() < 0.6 else np.array([120, 95, 70])) + rng.integers(-15, 16, 3)
    n = _smooth_noise(rng, s, int(rng.integers(4, 10)))[..., None]
    g = ground * (0.75 + 0.4 * n)
    gy = int(ground_y)
    img[gy:] = g[gy:]
    return np.clip(img, 0, 255).astype(np.float32)


def _cloud(cv: _Canvas, rng: np.random.Generator, x: float, y: float, r: float) -> None:
    c = int(rng.integers(215, 240))
    for _ in range(int(rng.integers(3, 6))):
        cv.polygon(_ellipse(x + rng.uniform(-1.2, 1.2) * r, y + rng.uniform(-0.3, 0.3) * r, r * rng.uniform(0.6, 1.0),
                            r * rng.uniform(0.4, 0.6), 0), (c, c, min(255, c + 8)), BACKGROUND)


def _tree(cv: _Canvas, rng: np.random.Generator, x: float, ground: float, h: float) -> None:
    trunk = _jit(rng, (100, 70, 45), 12)
    w = h * rng.uniform(0.06, 0.1)
    cv.polygon(_rect(x - w / 2, ground - h * 0.55, x + w / 2, ground), trunk, TREE)
    crown = _jit(rng, (55, 120, 50), 20)
    r = h * rng.uniform(0.25, 0.35)
    for _ in range(int(rng.integers(3, 6))):
        cv.polygon(_ellipse(x + rng.uniform(-0.5, 0.5) * r, ground - h * 0.6 + rng.uniform(-0.4, 0.3) * r,
                            r * rng.uniform(0.6, 0.9), r * rng.uniform(0.6, 0.9), 0), _jit(rng, crown, 8), TREE)


def _bush(cv: _Canvas, rng: np.random.Generator, x: float, ground: float, r: float) -> None:
    colour = _jit(rng, (60, 125, 55), 20)
    for _ in range(int(rng.integers(2, 5))):
        cv.polygon(_ellipse(x + rng.uniform(-1, 1) * r, ground - r * rng.uniform(0.3, 0.7), r * rng.uniform(0.5, 0.8),
                            r * rng.uniform(0.4, 0.6), 0), _jit(rng, colour, 8), TREE)


def _fence(cv: _Canvas, rng: np.random.Generator, x0: float, x1: float, ground: float, h: float, colour: RGB) -> None:
    step = h * rng.uniform(0.35, 0.5)
    w = step * 0.55
    x = x0
    while x < x1:
        cv.polygon([(x, ground), (x, ground - h * 0.85), (x + w / 2, ground - h), (x + w, ground - h * 0.85), (x + w, ground)],
                   colour, FENCE)
        x += step
    cv.polygon(_rect(x0, ground - h * 0.7, x1, ground - h * 0.6), colour, FENCE)


# ------------------------------------------------------------------------------------------ inserts
def _window(cv: _Canvas, rng: np.random.Generator, x0: float, y0: float, w: float, h: float, glass: RGB, trim: RGB) -> None:
    """Glass panes in a frame with a cross-shaped mullion: four panes."""
    f = max(1.5, w * rng.uniform(0.08, 0.12))
    cv.polygon(_rect(x0, y0, x0 + w, y0 + h), trim, WINDOW)
    cx, cy = x0 + w / 2, y0 + h * rng.uniform(0.4, 0.5)
    for px0, px1 in ((x0 + f, cx - f / 2), (cx + f / 2, x0 + w - f)):
        for py0, py1 in ((y0 + f, cy - f / 2), (cy + f / 2, y0 + h - f)):
            if px1 - px0 >= 1 and py1 - py0 >= 1:
                cv.polygon(_rect(px0, py0, px1, py1), _jit(rng, glass, 5), WINDOW)


def _vent(cv: _Canvas, rng: np.random.Generator, x0: float, y0: float, w: float, h: float, fill: RGB, trim: RGB) -> None:
    """A louvred vent: a framed panel crossed by three to five light horizontal slats."""
    f = max(1.5, w * rng.uniform(0.08, 0.12))
    cv.polygon(_rect(x0, y0, x0 + w, y0 + h), trim, VENT)
    cv.polygon(_rect(x0 + f, y0 + f, x0 + w - f, y0 + h - f), _jit(rng, fill, 5), VENT)
    n = int(rng.integers(3, 6))
    for k in range(1, n + 1):
        y = y0 + f + (h - 2 * f) * k / (n + 1)
        cv.polygon(_rect(x0 + f, y - f * 0.45, x0 + w - f, y + f * 0.45), trim, VENT)


def _door(cv: _Canvas, rng: np.random.Generator, x0: float, y1: float, w: float, h: float, fill: RGB, trim: RGB) -> None:
    """A front door: a tall framed leaf (or two) with a knob; sometimes a small glass light on top."""
    f = max(1.5, w * rng.uniform(0.06, 0.09))
    cv.polygon(_rect(x0, y1 - h, x0 + w, y1), trim, DOOR)
    double = w > h * 0.55
    leaves = ((x0 + f, x0 + w / 2 - f / 4), (x0 + w / 2 + f / 4, x0 + w - f)) if double else ((x0 + f, x0 + w - f),)
    for lx0, lx1 in leaves:
        cv.polygon(_rect(lx0, y1 - h + f, lx1, y1), _jit(rng, fill, 4), DOOR)
    knob = max(1.5, w * 0.06)
    kx = x0 + w / 2 - 2.5 * knob if double else (x0 + w - f - 2.5 * knob if rng.random() < 0.5 else x0 + f + 2.5 * knob)
    cv.polygon(_ellipse(kx, y1 - h * 0.45, knob, knob, 0, 10), trim, DOOR)


def _opening(cv: _Canvas, rng: np.random.Generator, x0: float, y1: float, w: float, h: float, fill: RGB, trim: RGB) -> None:
    """An arched opening (a kennel's): a dark arch with a light rim, no leaf, no knob."""
    f = max(1.5, w * rng.uniform(0.06, 0.09))
    t = np.linspace(math.pi, 2 * math.pi, 24)

    def arch(half: float, top: float) -> list[Point]:
        return [(x0 + w / 2 + half * math.cos(a), top + half + half * math.sin(a)) for a in t] + \
            [(x0 + w / 2 + half, y1), (x0 + w / 2 - half, y1)]

    cv.polygon(arch(w / 2, y1 - h), trim, OPENING)
    cv.polygon(arch(w / 2 - f, y1 - h + f), _jit(rng, fill, 4), OPENING)


def _barn_door(cv: _Canvas, rng: np.random.Generator, x0: float, y1: float, w: float, h: float, fill: RGB, trim: RGB) -> None:
    """A barn door: a framed panel braced by a light X."""
    f = max(1.5, w * rng.uniform(0.06, 0.09))
    cv.polygon(_rect(x0, y1 - h, x0 + w, y1), trim, BARN_DOOR)
    cv.polygon(_rect(x0 + f, y1 - h + f, x0 + w - f, y1), _jit(rng, fill, 4), BARN_DOOR)
    cv.line([(x0 + f, y1 - h + f), (x0 + w - f, y1)], f, trim, BARN_DOOR)
    cv.line([(x0 + w - f, y1 - h + f), (x0 + f, y1)], f, trim, BARN_DOOR)


def _garage_door(cv: _Canvas, rng: np.random.Generator, x0: float, y1: float, w: float, h: float, fill: RGB, trim: RGB) -> None:
    """A garage door: a wide framed panel with light horizontal panel lines."""
    f = max(1.5, w * rng.uniform(0.05, 0.07))
    cv.polygon(_rect(x0, y1 - h, x0 + w, y1), trim, GARAGE_DOOR)
    cv.polygon(_rect(x0 + f, y1 - h + f, x0 + w - f, y1), _jit(rng, fill, 4), GARAGE_DOOR)
    n = int(rng.integers(2, 5))
    for k in range(1, n + 1):
        y = y1 - h + f + (h - f) * k / (n + 1)
        cv.polygon(_rect(x0 + f, y - f * 0.4, x0 + w - f, y + f * 0.4), trim, GARAGE_DOOR)


# ----------------------------------------------------------------------------------------- building
def _building(cv: _Canvas, rng: np.random.Generator, kind: str, cx: float, ground: float, width: float) -> None:
    wall_h = width * rng.uniform(0.55, 0.8)
    x0, x1 = cx - width / 2, cx + width / 2
    y0 = ground - wall_h
    wall, roof, trim = _pick(rng, _WALLS), _pick(rng, _ROOFS), _pick(rng, _TRIMS, 6)
    big, small = _pick(rng, _INSERTS), _pick(rng, _INSERTS)
    cv.polygon(_rect(x0, y0, x1, ground), wall, WALL)
    # the roof: a gable triangle or a trapezoid (hipped) with eaves
    eave = width * rng.uniform(0.04, 0.1)
    roof_h = width * rng.uniform(0.3, 0.5)
    if rng.random() < 0.6:
        pts = [(x0 - eave, y0 + 1), (cx, y0 - roof_h), (x1 + eave, y0 + 1)]
    else:
        top = width * rng.uniform(0.15, 0.4)
        pts = [(x0 - eave, y0 + 1), (cx - top / 2, y0 - roof_h), (cx + top / 2, y0 - roof_h), (x1 + eave, y0 + 1)]
    cv.polygon(pts, roof, ROOF)
    # the large insert: about the same share of the wall whatever it is
    share = rng.uniform(0.1, 0.2) * width * wall_h
    if kind == "house":
        h = wall_h * rng.uniform(0.55, 0.75)
        w = min(share / h, width * 0.35)
    elif kind == "kennel":
        h = wall_h * rng.uniform(0.5, 0.7)
        w = min(share / h / 0.9, width * 0.45)
    elif kind == "shed":
        h = wall_h * rng.uniform(0.55, 0.75)
        w = min(share / h, width * 0.45)
    else:  # garage
        h = wall_h * rng.uniform(0.42, 0.55)
        w = min(share / h, width * 0.6)
    left = rng.random() < 0.5
    if kind in ("kennel", "shed") or rng.random() < 0.35:
        bx0 = cx - w / 2
    else:
        bx0 = x0 + width * 0.08 if left else x1 - width * 0.08 - w
    draw = {"house": _door, "kennel": _opening, "shed": _barn_door, "garage": _garage_door}[kind]
    draw(cv, rng, bx0, ground, w, h, big, trim)
    # one to four small inserts on the free part of the wall: windows or vents
    sw = width * rng.uniform(0.12, 0.2)
    sh = sw * rng.uniform(0.9, 1.35)
    n = int(rng.integers(1, 5))
    slots = []  # one row high on the wall, beside the large insert or above it
    row = y0 + wall_h * rng.uniform(0.12, 0.2)
    x = x0 + width * 0.06
    while x + sw <= x1 - width * 0.06:
        if x + sw < bx0 - width * 0.03 or x > bx0 + w + width * 0.03 or row + sh < ground - h - wall_h * 0.04:
            slots.append((x, row))
        x += sw + width * rng.uniform(0.05, 0.09)
    if len(slots) < n:  # not enough room on the wall: one more in the gable
        slots.append((cx - sw / 2, y0 - roof_h * 0.6))
    picks = sorted(rng.choice(len(slots), size=min(n, len(slots)), replace=False).tolist())
    for i in picks:
        sx, sy = slots[i]
        if kind in ("house", "garage"):
            _window(cv, rng, sx, sy, sw, sh, small, trim)
        else:
            _vent(cv, rng, sx, sy, sw, sh, small, trim)


def _scene(cv: _Canvas, rng: np.random.Generator, kind: str, ground: float) -> None:
    s = cv.size
    if rng.random() < 0.4:
        _cloud(cv, rng, rng.uniform(0.1, 0.9) * s, rng.uniform(0.05, 0.25) * s, s * rng.uniform(0.04, 0.08))
    if rng.random() < 0.35:
        _tree(cv, rng, rng.choice([rng.uniform(0.02, 0.2), rng.uniform(0.8, 0.98)]) * s, ground, s * rng.uniform(0.35, 0.6))
    width = s * rng.uniform(0.42, 0.7)
    cx = rng.uniform(0.5 * width, s - 0.5 * width)
    _building(cv, rng, kind, cx, ground, width)
    r = rng.random()
    if r < 0.25:
        _bush(cv, rng, rng.uniform(0.05, 0.95) * s, ground + s * 0.02, s * rng.uniform(0.04, 0.08))
    elif r < 0.4:
        x0 = rng.uniform(0.0, 0.5) * s
        _fence(cv, rng, x0, x0 + s * rng.uniform(0.2, 0.5), ground + s * 0.03, s * rng.uniform(0.06, 0.1),
               _pick(rng, _TRIMS, 6))


def render_scene(rng: np.random.Generator, size: int, positive: bool) -> tuple[np.ndarray, np.ndarray]:
    """One image (RGB uint8 size×size×3) and its part mask (uint8 size×size).

    A positive is a house (wall, roof, door and at least one window visible); a negative is one
    look-alike of :data:`NEGATIVE_KINDS`, chosen at random. Deterministic given the generator's state.
    """
    kind = "house" if positive else NEGATIVE_KINDS[int(rng.integers(len(NEGATIVE_KINDS)))]
    ground = size * rng.uniform(0.78, 0.92)
    cv = _Canvas(np.clip(_backdrop(rng, size, ground), 0, 255).astype(np.uint8))
    _scene(cv, rng, kind, ground)
    mask = np.asarray(cv.mask, dtype=np.uint8)
    rgb = np.asarray(cv.rgb, dtype=np.float32)
    rgb *= rng.uniform(0.93, 1.04, 3).astype(np.float32)  # slight colour cast of the whole picture
    rgb += rng.integers(-4, 5, rgb.shape, dtype=np.int8)
    return np.clip(rgb, 0, 255).astype(np.uint8), mask.copy()
