"""Drawing code of the ``parts`` daisy scene (private; see :func:`workbench.data.datasets.generate_demo`).

In the original scene a daisy is the only thing with white petals around a yellow disk, so colour
statistics alone read the class. Here every negative is made of *look-alikes* drawn with the daisy's
colours in the daisy's arrangement, each differing from a daisy by one part:

- ``broad_petals`` (like a white pink or a strawberry blossom): a yellow disk ringed by five to
  seven broad white petals with fringed tips (``other_petal``), on a stem with the daisy's
  lance-shaped leaves: no daisy petal, so no flower head;
- ``other_leaves`` (like chamomile or feverfew): the daisy's head and stem, but oval, deeply lobed or
  three-parted leaves (``other_leaf``), never lance-shaped ones.

A positive holds a daisy (narrow white petals around a yellow disk, a stem, lance-shaped ``leaf``
leaves, all visible), often beside look-alikes of either kind; a negative holds one to three
look-alikes of one kind, so it never shows a daisy petal and a daisy leaf together. The class follows
from the parts: a daisy petal and a daisy leaf present. Everything a colour statistic could read is
drawn from the same distributions in both classes: head sizes, the area of white and the length of its
edge (the fringes give the broad petals the edge of many narrow ones), the cream rim round every disk
(``other_disk``), leaf area, stems, one or two flowerless weeds with non-lance leaves, backgrounds and
distractors (pink and purple flowers, white pebbles, yellow buttons, grass and stones). Measured with
the part-blind baselines of :mod:`workbench.evaluation.blind` (``benchmarks/bench_blind.py``).

Mask indices are those of ``workbench.data.datasets.PARTS_SCENE_PARTS``; everything is drawn without
anti-aliasing on the image and the mask together, so masks are exact.
"""
from __future__ import annotations

import math

import numpy as np

from workbench.data._demo_scene import (
    DISK,
    LEAF,
    OTHER_DISK,
    OTHER_PETAL,
    PETAL,
    STEM,
    _background,
    _bezier,
    _Canvas,
    _ellipse,
    _head_transform,
    _jit,
    _lens,
    _radial_head,
    _white_shapes,
)

__all__ = ["render_scene", "OTHER_LEAF", "NEGATIVE_KINDS", "LEAF_KINDS"]

#: Mask index of a leaf that is not a daisy leaf (oval, lobed or three-parted).
OTHER_LEAF = 9
#: The look-alike kinds of a negative, drawn with equal probability.
NEGATIVE_KINDS = ("broad_petals", "other_leaves")
#: Leaf outlines: the daisy's, then the others.
LEAF_KINDS = ("lance", "oval", "lobed", "trifoliate")

Point = tuple[float, float]

_PINKS = ((236, 120, 170), (214, 70, 150), (150, 80, 190), (120, 90, 210), (235, 95, 45))


def _rotate(pts: list[tuple[float, float]], x0: float, y0: float, angle: float) -> list[Point]:
    ca, sa = math.cos(angle), math.sin(angle)
    return [(x0 + ca * x - sa * y, y0 + sa * x + ca * y) for x, y in pts]


def _leaf_polygons(rng: np.random.Generator, kind: str, x0: float, y0: float, length: float,
                   angle: float) -> list[tuple[list[Point], Point, Point]]:
    """Leaf blade polygon(s) starting at (x0, y0) along ``angle``; each with its midrib (base, end).

    Areas are matched across kinds: every kind covers about 0.18 × length² on average.
    """
    if kind == "lance":
        width = length * rng.uniform(0.2, 0.3)
        return [(_lens(x0, y0, length, width, angle), (x0, y0),
                 (x0 + 0.85 * length * math.cos(angle), y0 + 0.85 * length * math.sin(angle)))]
    if kind == "oval":  # a short leaf stalk, then a broad oval blade
        ln = length * rng.uniform(0.47, 0.53)
        wd = ln * rng.uniform(0.8, 0.95)
        stalk = ln * 0.12
        t = np.linspace(0, 2 * math.pi, 28, endpoint=False)
        pts = [(stalk + ln / 2 * (1 - math.cos(tt)), wd / 2 * math.sin(tt)) for tt in t]
        return [(_rotate(pts, x0, y0, angle), (x0, y0),
                 (x0 + (stalk + 0.85 * ln) * math.cos(angle), y0 + (stalk + 0.85 * ln) * math.sin(angle)))]
    if kind == "lobed":  # deep round lobes along both edges (pinnatifid)
        length *= 0.75
        width = length * rng.uniform(0.45, 0.6)
        lobes = int(rng.integers(3, 6))
        t = np.linspace(0, 1, 48)
        env = np.sin(math.pi * t) ** 0.7 * (0.45 + 0.55 * np.abs(np.sin(lobes * math.pi * t)))
        up = [(tt * length, width / 2 * e) for tt, e in zip(t, env)]
        pts = up + [(x, -y) for x, y in reversed(up[1:-1])]
        return [(_rotate(pts, x0, y0, angle), (x0, y0),
                 (x0 + 0.85 * length * math.cos(angle), y0 + 0.85 * length * math.sin(angle)))]
    # trifoliate: a stalk and three oval leaflets spread from its end
    stalk = length * 0.3
    sx, sy = x0 + stalk * math.cos(angle), y0 + stalk * math.sin(angle)
    out: list[tuple[list[Point], Point, Point]] = [([], (x0, y0), (sx, sy))]  # the stalk: its midrib line only
    for da in (-0.85, 0.0, 0.85):
        a = angle + da + rng.normal(0, 0.08)
        ln = length * rng.uniform(0.33, 0.38)
        wd = ln * rng.uniform(0.7, 0.85)
        t = np.linspace(0, 2 * math.pi, 20, endpoint=False)
        pts = [(ln / 2 * (1 - math.cos(tt)), wd / 2 * math.sin(tt)) for tt in t]
        out.append((_rotate(pts, sx, sy, a), (sx, sy), (sx + 0.8 * ln * math.cos(a), sy + 0.8 * ln * math.sin(a))))
    return out


def _stem_and_leaves(cv: _Canvas, rng: np.random.Generator, x: float, y: float, r: float, n_leaves: int,
                     leaf_kind: str | None) -> None:
    """A curved stem from (x, y) down past the bottom edge, with ``n_leaves`` leaves of ``leaf_kind``
    (``None``: a random non-lance kind per leaf) near its foot."""
    s = cv.size
    y_end = s * 1.05
    x_end = x + rng.uniform(-0.25, 0.25) * (y_end - y)
    ctrl = ((x + x_end) / 2 + rng.uniform(-0.2, 0.2) * (y_end - y), (y + y_end) / 2)
    pts = _bezier((x, y), ctrl, (x_end, y_end), n=16)
    width = max(2.0, r * rng.uniform(0.07, 0.12), s * 0.008)
    cv.line(pts, width, _jit(rng, (50, 120, 45), 18), STEM)
    leaf_colour = _jit(rng, (60, 150, 55), 22)
    side = 1 if rng.random() < 0.5 else -1
    # leaves sit on the stem's lower part, inside the picture
    last = max(5, min(len(pts) - 2, int(np.searchsorted([p[1] for p in pts], 0.95 * s))))
    for k in range(n_leaves):
        i = int(rng.integers(min(5, last - 1), last))
        lx, ly = pts[i]
        side = -side
        angle = -math.pi / 2 + side * rng.uniform(0.6, 1.25)
        length = max(8.0, r * rng.uniform(0.85, 1.3), s * 0.07)
        kind = leaf_kind or LEAF_KINDS[int(rng.integers(1, len(LEAF_KINDS)))]
        label = LEAF if kind == "lance" else OTHER_LEAF
        colour = _jit(rng, leaf_colour, 8)
        rib = _jit(rng, (40, 100, 38), 8)
        for poly, a, b in _leaf_polygons(rng, kind, lx, ly, length, angle):
            cv.polygon(poly, colour, label)
            cv.line([a, b], max(1.0, width * 0.3), rib, label)


def _white(rng: np.random.Generator):
    base = (int(rng.integers(238, 256)), int(rng.integers(238, 256)), int(rng.integers(232, 256)))
    return lambda: tuple(int(v) for v in np.clip(np.asarray(base) - rng.integers(0, 16), 0, 255))


def _broad_petal(length: float, width: float, teeth: int, depth: float) -> list[tuple[float, float]]:
    """A broad petal from (0, 0) along +x: narrow at its base, widest near its fringed, toothed tip."""
    n = 10
    side = [(length * 0.85 * t, width / 2 * math.sin(math.pi / 2 * t) ** 0.4 * (0.6 + 0.4 * t)) for t in np.linspace(0, 1, n)]
    tip = []
    for k in range(2 * teeth + 1):
        y = width / 2 - width * k / (2 * teeth)
        x = length * (0.85 + (0.15 if k % 2 else 0.15 - depth) * math.cos(y / width * math.pi * 0.8))
        tip.append((x, y))
    return side + tip[1:-1] + [(x, -y) for x, y in reversed(side)]


def _head(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float, broad: bool) -> None:
    """A white-petalled head with a yellow disk: many narrow daisy petals, or five to seven broad
    look-alike ones with fringed tips covering about the same area of white with about the same
    length of white edge."""
    disk_r = r * rng.uniform(0.22, 0.33)
    tilt = rng.uniform(0.6, 1.0) if rng.random() < 0.5 else 1.0
    phi = rng.uniform(0, 2 * math.pi)
    centre = _jit(rng, (245, 200, 30), 12)
    f = _head_transform(cx, cy, phi, tilt)
    rim = disk_r * rng.uniform(1.35, 1.5)
    colour = _white(rng)
    if not broad:  # as the original scene's daisy: narrow elliptical petals from under the disk
        n = int(rng.integers(16, 35))
        inner = disk_r * rng.uniform(0.6, 0.9)
        petal_len, petal_width = r - disk_r * 0.75, max(2.0, (r - disk_r) * rng.uniform(0.18, 0.3))
        offset = rng.uniform(0, 2 * math.pi)
        for k in range(n):
            a = offset + 2 * math.pi * k / n + rng.normal(0, 0.06)
            ln = petal_len * rng.uniform(0.85, 1.12)
            d = inner + ln / 2
            pts = _ellipse(d * math.cos(a), d * math.sin(a), ln / 2, petal_width / 2 * rng.uniform(0.85, 1.15), a)
            cv.polygon(f(pts), colour(), PETAL)
        cv.polygon(f(_ellipse(0, 0, rim, rim, 0)), _jit(rng, (238, 230, 180), 8), OTHER_DISK)
        _disk(cv, rng, f, disk_r, centre)
        return
    n = int(rng.integers(5, 8))
    inner = disk_r * rng.uniform(0.3, 0.6)
    offset = rng.uniform(0, 2 * math.pi)
    for k in range(n):
        a = offset + 2 * math.pi * k / n + rng.normal(0, 0.05)
        ln = (r - inner) * rng.uniform(0.95, 1.08)
        wd = 2 * math.pi * (inner + ln * 0.7) / n * rng.uniform(0.76, 0.96)
        pts = _broad_petal(ln, wd, int(rng.integers(4, 7)), rng.uniform(0.15, 0.24))
        ca, sa = math.cos(a), math.sin(a)
        cv.polygon(f([(inner * ca + ca * x - sa * y, inner * sa + sa * x + ca * y) for x, y in pts]), colour(), OTHER_PETAL)
    cv.polygon(f(_ellipse(0, 0, rim, rim, 0)), _jit(rng, (238, 230, 180), 8), OTHER_DISK)
    _disk(cv, rng, f, disk_r, centre)


def _disk(cv: _Canvas, rng: np.random.Generator, f, disk_r: float, centre: tuple[int, int, int]) -> None:
    """The yellow disk, dotted with darker florets (drawn on the head's cream rim of young florets,
    which is ``other_disk``: not yellow, so not the ontology's disk)."""
    cv.polygon(f(_ellipse(0, 0, disk_r, disk_r, 0)), centre, DISK)
    if disk_r > 4:
        for _ in range(int(disk_r)):
            rr = disk_r * 0.75 * math.sqrt(rng.random())
            t = rng.uniform(0, 2 * math.pi)
            dot = _ellipse(rr * math.cos(t), rr * math.sin(t), disk_r * 0.1, disk_r * 0.1, 0, 6)
            cv.polygon(f(dot), _jit(rng, (215, 150, 20), 12), DISK)


def _plant(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float, kind: str) -> None:
    """One flowering plant of ``kind``: ``daisy``, ``broad_petals`` or ``other_leaves``."""
    leaf_kind = None if kind == "other_leaves" else "lance"
    # the stem starts under the head's rim, so no petal gap shows more of it than another
    _stem_and_leaves(cv, rng, cx, cy + 0.5 * r, r, int(rng.integers(1, 4)), leaf_kind)
    _head(cv, rng, cx, cy, r, broad=(kind == "broad_petals"))


def _pink_flower(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float) -> None:
    """A distractor of either class: a pink, purple or orange flower with non-lance leaves."""
    _stem_and_leaves(cv, rng, cx, cy, r, int(rng.integers(0, 3)), None)
    colour = _jit(rng, _PINKS[int(rng.integers(len(_PINKS)))], 20)
    centre_r = r * rng.uniform(0.18, 0.3)
    brown = rng.random() < 0.5
    n = int(rng.integers(5, 12))
    _radial_head(cv, rng, cx, cy, r, n_petals=n, inner=centre_r * 0.5, petal_len=r - centre_r * 0.6,
                 petal_width=(r - centre_r) * rng.uniform(0.3, 0.7), petal_colour=lambda: _jit(rng, colour, 10),
                 petal_label=OTHER_PETAL, centre_colour=_jit(rng, (105, 65, 30), 12) if brown else _jit(rng, (245, 200, 30), 12),
                 centre_label=OTHER_DISK if brown else DISK, centre_radius=centre_r, tilt=1.0, phi=rng.uniform(0, 2 * math.pi))


def _grass_and_stones(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float) -> None:
    """Something in front of a plant: grass blades or a grey stone (background)."""
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(3, 8))):
            x = cx + rng.uniform(-r, r)
            y0 = cv.size * 1.02
            a = -math.pi / 2 + rng.uniform(-0.35, 0.35)
            ln = (y0 - cy) + r * rng.uniform(-0.6, 0.1)
            cv.line([(x, y0), (x + ln * math.cos(a), y0 + ln * math.sin(a))], max(2.0, r * 0.09),
                    _jit(rng, (60, 115, 45), 15), 0)
    else:
        a = r * rng.uniform(0.3, 0.55)
        t = rng.uniform(0, 2 * math.pi)
        g = int(rng.integers(90, 150))
        cv.polygon(_ellipse(cx + r * 0.9 * math.cos(t), cy + r * 0.9 * math.sin(t), a, a * 0.7, rng.uniform(0, math.pi)),
                   (g, g - 5, g - 12), 0)


def _distractors(cv: _Canvas, rng: np.random.Generator, behind: bool) -> None:
    s = cv.size
    p = 0.45 if behind else 0.15
    if rng.random() >= p:
        return
    kind = rng.random()
    x, y = rng.uniform(0.1, 0.9) * s, rng.uniform(0.15, 0.7) * s
    if kind < 0.4:
        _pink_flower(cv, rng, x, y, s * rng.uniform(0.06, 0.13))
    elif kind < 0.7:
        _white_shapes(cv, rng, int(rng.integers(2, 7)), s * rng.uniform(0.04, 0.09))
    else:  # a small yellow button
        r = s * rng.uniform(0.025, 0.05)
        cv.polygon(_ellipse(x, y, r, r, 0), _jit(rng, (245, 200, 30), 12), DISK)


def _scene(cv: _Canvas, rng: np.random.Generator, kind: str) -> None:
    """One to three flowering plants side by side: the first of ``kind``; the others of the same kind
    in a negative, and in a positive look-alikes of either kind. So look-alike parts are common in
    both classes (the part nets meet them often), and every negative holds one kind only: never a
    daisy petal and a daisy leaf together. One or two flowerless weeds with non-lance leaves too."""
    s = cv.size
    _distractors(cv, rng, behind=True)
    for _ in range(int(rng.integers(1, 3))):
        _stem_and_leaves(cv, rng, rng.uniform(0.05, 0.95) * s, rng.uniform(0.45, 0.8) * s, s * rng.uniform(0.08, 0.14),
                         int(rng.integers(2, 5)), None)
    n = int(rng.choice([1, 2, 3], p=[0.25, 0.45, 0.3]))
    kinds = [kind] + [kind if kind != "daisy" else NEGATIVE_KINDS[int(rng.integers(2))] for _ in range(n - 1)]
    kinds = [kinds[i] for i in rng.permutation(n)]
    size = {1: (0.1, 0.24), 2: (0.08, 0.16), 3: (0.07, 0.13)}[n]
    heads = []
    for k, plant_kind in enumerate(kinds):
        r = s * rng.uniform(*size)
        lo, hi = 0.15 * s + s * 0.7 * k / n, 0.15 * s + s * 0.7 * (k + 1) / n
        cx, cy = rng.uniform(lo, hi), rng.uniform(0.18 * s, 0.55 * s)
        _plant(cv, rng, cx, cy, r, plant_kind)
        heads.append((cx, cy, r))
    if rng.random() < 0.3:
        cx, cy, r = heads[int(rng.integers(len(heads)))]
        _grass_and_stones(cv, rng, cx, cy, r)
    _distractors(cv, rng, behind=False)


def render_scene(rng: np.random.Generator, size: int, positive: bool) -> tuple[np.ndarray, np.ndarray]:
    """One image (RGB uint8 size×size×3) and its part mask (uint8 size×size).

    A positive shows a daisy whose petal, disk, stem and leaf pixels are all visible; a negative is
    one look-alike of :data:`NEGATIVE_KINDS` (chosen at random) and never holds a daisy petal *and* a
    daisy leaf. Deterministic given the generator's state.
    """
    kind = "daisy" if positive else NEGATIVE_KINDS[int(rng.integers(len(NEGATIVE_KINDS)))]
    min_px = max(4, int(size * size * 0.0015))
    need = {"daisy": (PETAL, LEAF, DISK, STEM), "broad_petals": (OTHER_PETAL, LEAF, DISK, STEM),
            "other_leaves": (PETAL, OTHER_LEAF, DISK, STEM)}[kind]
    for _ in range(20):
        cv = _Canvas(_background(rng, size))
        _scene(cv, rng, kind)
        mask = np.asarray(cv.mask, dtype=np.uint8)
        counts = np.bincount(mask.ravel(), minlength=16)
        if all(counts[i] >= (min_px // 4 if i in (DISK, STEM) else min_px) for i in need):
            break
    rgb = np.asarray(cv.rgb, dtype=np.float32)
    rgb *= rng.uniform(0.93, 1.04, 3).astype(np.float32)  # slight colour cast of the whole picture
    rgb += rng.integers(-4, 5, rgb.shape, dtype=np.int8)
    return np.clip(rgb, 0, 255).astype(np.uint8), mask.copy()
