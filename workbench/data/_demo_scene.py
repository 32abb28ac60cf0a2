"""Drawing code of the generated demo set (private; see :func:`workbench.data.datasets.generate_demo`).

Every object is drawn with the same polygons on the RGB image and on the mask, without
anti-aliasing, so the mask is exact for what is visible: a later object overwrites an earlier one in
both. All sizes are fractions of the image side, so any ``size`` gives the same scenes, scaled.

Mask indices are those of ``workbench.data.datasets.DEMO_PARTS``.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["render_scene", "PETAL", "DISK", "STEM", "LEAF", "OTHER_PETAL", "OTHER_DISK", "SUN", "WHITE_SHAPE"]

BACKGROUND, PETAL, DISK, STEM, LEAF, OTHER_PETAL, OTHER_DISK, SUN, WHITE_SHAPE = range(9)

Point = tuple[float, float]
RGB = tuple[int, int, int]

# Other flowers' petal colours: pink, magenta, purple, violet, red, orange-red, blue. Never white or yellow.
_OTHER_PETAL_COLOURS: tuple[RGB, ...] = (
    (236, 120, 170), (214, 70, 150), (150, 80, 190), (120, 90, 210), (205, 40, 50), (235, 95, 45), (80, 120, 220),
)


class _Canvas:
    """An RGB image and its part mask, drawn together."""

    def __init__(self, background: np.ndarray):
        self.size = background.shape[0]
        self.rgb = Image.fromarray(background, "RGB")
        self.mask = Image.new("L", self.rgb.size, BACKGROUND)
        self._d = ImageDraw.Draw(self.rgb)
        self._m = ImageDraw.Draw(self.mask)

    def polygon(self, pts: list[Point], colour: RGB, label: int) -> None:
        if len(pts) >= 3:
            self._d.polygon(pts, fill=colour)
            self._m.polygon(pts, fill=label)

    def line(self, pts: list[Point], width: float, colour: RGB, label: int) -> None:
        w = max(1, int(round(width)))
        self._d.line(pts, fill=colour, width=w, joint="curve")
        self._m.line(pts, fill=label, width=w, joint="curve")


# ------------------------------------------------------------------------------------------ helpers
def _jit(rng: np.random.Generator, colour: RGB, amount: int) -> RGB:
    c = np.asarray(colour) + rng.integers(-amount, amount + 1, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))  # type: ignore[return-value]


def _ellipse(cx: float, cy: float, a: float, b: float, angle: float, n: int | None = None) -> list[Point]:
    """Polygon of an ellipse with semi-axes a (along ``angle``) and b."""
    if n is None:
        n = int(np.clip((a + b) * 1.2, 10, 64))
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = a * np.cos(t), b * np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    return [(cx + ca * xi - sa * yi, cy + sa * xi + ca * yi) for xi, yi in zip(x, y)]


def _lens(x0: float, y0: float, length: float, width: float, angle: float, n: int = 14) -> list[Point]:
    """A pointed leaf shape starting at (x0, y0) and pointing along ``angle``."""
    t = np.linspace(0, 1, n)
    up = [(tt * length, width / 2 * math.sin(math.pi * tt) ** 0.8) for tt in t]
    pts = up + [(x, -y) for x, y in reversed(up[1:-1])]
    ca, sa = math.cos(angle), math.sin(angle)
    return [(x0 + ca * x - sa * y, y0 + sa * x + ca * y) for x, y in pts]


def _bezier(p0: Point, p1: Point, p2: Point, n: int = 12) -> list[Point]:
    t = np.linspace(0, 1, n)[:, None]
    pts = (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)
    return [(float(x), float(y)) for x, y in pts]


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1], size x size."""
    small = Image.fromarray(rng.random((cells, cells)).astype(np.float32), "F")
    big = np.asarray(small.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)
    lo, hi = big.min(), big.max()
    return (big - lo) / (hi - lo + 1e-9)


# -------------------------------------------------------------------------------------- backgrounds
def _grass(rng: np.random.Generator, s: int) -> np.ndarray:
    base = np.array([70, 125, 50]) + rng.integers(-15, 16, 3)
    n = _smooth_noise(rng, s, int(rng.integers(4, 10)))[..., None]
    img = base * (0.7 + 0.5 * n)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    k = int(rng.integers(80, 200) * (s / 256) ** 2) + 10
    x, y = rng.random((2, k)) * s
    ln = s * rng.uniform(0.03, 0.09, k)
    a = -math.pi / 2 + rng.uniform(-0.5, 0.5, k)
    x1, y1 = x + ln * np.cos(a), y + ln * np.sin(a)
    colours = np.where(rng.random(k)[:, None] < 0.5, [55, 110, 40], [95, 150, 65]) + rng.integers(-15, 16, (k, 3))
    width = max(1, round(s / 200))
    for i in range(k):
        d.line([(x[i], y[i]), (x1[i], y1[i])], fill=tuple(colours[i].tolist()), width=width)
    return np.asarray(im, dtype=np.float32)


def _soil(rng: np.random.Generator, s: int) -> np.ndarray:
    base = np.array([115, 82, 55]) + rng.integers(-20, 21, 3)
    n = _smooth_noise(rng, s, int(rng.integers(5, 14)))[..., None]
    img = base * (0.65 + 0.55 * n)
    speck = rng.random((s, s)) < 0.04
    img[speck] *= rng.uniform(0.5, 1.25)
    return img


def _sky(rng: np.random.Generator, s: int) -> np.ndarray:
    top = np.array([60, 110, 200]) + rng.integers(-20, 21, 3)
    bottom = np.array([150, 185, 225]) + rng.integers(-20, 16, 3)
    t = np.linspace(0, 1, s)[:, None, None]
    img = top * (1 - t) + bottom * t + np.zeros((1, s, 1))
    # soft blue-grey clouds (never white)
    c = _smooth_noise(rng, s, int(rng.integers(3, 7)))[..., None]
    img = img * (1 - 0.25 * c) + np.array([165, 175, 190]) * 0.25 * c
    if rng.random() < 0.5:  # a strip of ground at the bottom
        h = int(s * rng.uniform(0.15, 0.35))
        img[s - h:] = _grass(rng, s)[s - h:] if rng.random() < 0.6 else _soil(rng, s)[s - h:]
    return img


def _noise(rng: np.random.Generator, s: int) -> np.ndarray:
    cells = int(rng.integers(3, 12))
    img = np.stack([_smooth_noise(rng, s, cells) for _ in range(3)], axis=2)
    lo = rng.uniform(20, 70, 3)
    hi = lo + rng.uniform(60, 110, 3)
    return lo + img * (hi - lo)


def _stripes(rng: np.random.Generator, s: int) -> np.ndarray:
    c1 = rng.uniform(30, 160, 3).astype(np.float32)
    c2 = rng.uniform(30, 160, 3).astype(np.float32)
    period = s * rng.uniform(0.04, 0.15)
    a = rng.uniform(0, math.pi)
    ramp = np.arange(s, dtype=np.float32)
    phase = (ramp[None, :] * math.cos(a) + ramp[:, None] * math.sin(a)) * np.float32(2 * math.pi / period)
    wave = np.sin(phase)
    w = (wave > 0).astype(np.float32) if rng.random() < 0.5 else 0.5 + 0.5 * wave
    w = w[..., None]
    return c1 * w + c2 * (1 - w)


_BACKGROUNDS = (_grass, _soil, _sky, _noise, _stripes)


def _tame(img: np.ndarray) -> np.ndarray:
    """Keep backgrounds free of white-ish or yellow-ish areas that would look like petals or disks."""
    img = np.clip(img, 0, 255).astype(np.float32)
    mn = img.min(axis=2)
    white = mn > 165
    if white.any():
        img[white] *= (165 / mn[white])[:, None]
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    yellow = (r > 140) & (g > 110) & (b < 0.7 * np.minimum(r, g))
    if yellow.any():
        y = img[yellow]
        img[yellow] = 0.45 * y + 0.55 * y.mean(axis=1, keepdims=True) * np.array([0.95, 0.9, 1.15], np.float32)
    return img


def _background(rng: np.random.Generator, s: int, kind: int | None = None) -> np.ndarray:
    f = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS))) if kind is None else kind]
    img = f(rng, s)
    if rng.random() < 0.3:  # blend two textures
        g = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
        m = _smooth_noise(rng, s, 3)[..., None]
        img = img * m + g(rng, s) * (1 - m)
    return np.clip(_tame(img), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------ objects
def _stem_and_leaves(cv: _Canvas, rng: np.random.Generator, x: float, y: float, r: float,
                     n_leaves: int, bottom: float | None = None) -> None:
    """A curved stem from (x, y) down to ``bottom`` (default: below the image) with leaves on it."""
    s = cv.size
    y_end = s + 0.05 * s if bottom is None else bottom
    x_end = x + rng.uniform(-0.25, 0.25) * (y_end - y)
    ctrl = ((x + x_end) / 2 + rng.uniform(-0.2, 0.2) * (y_end - y), (y + y_end) / 2)
    pts = _bezier((x, y), ctrl, (x_end, y_end))
    width = max(2.0, r * rng.uniform(0.07, 0.13), s * 0.008)
    stem_colour = _jit(rng, (50, 120, 45), 18)
    leaf_colour = _jit(rng, (70, 160, 60), 22)
    leaves = []
    for k in range(n_leaves):
        i = int(rng.integers(3, len(pts) - 2))
        lx, ly = pts[i]
        side = -1 if (k + rng.integers(2)) % 2 == 0 else 1
        angle = -math.pi / 2 + side * rng.uniform(0.5, 1.25)
        length = max(6.0, r * rng.uniform(0.7, 1.3), s * 0.06)
        leaves.append(_lens(lx, ly, length, length * rng.uniform(0.25, 0.45), angle))
    cv.line(pts, width, stem_colour, STEM)
    for leaf in leaves:
        cv.polygon(leaf, _jit(rng, leaf_colour, 8), LEAF)
        a = leaf[0]  # the leaf's base on the stem; its tip is the point farthest from it
        tip = max(leaf, key=lambda p: (p[0] - a[0]) ** 2 + (p[1] - a[1]) ** 2)
        mid = (a[0] + 0.85 * (tip[0] - a[0]), a[1] + 0.85 * (tip[1] - a[1]))
        cv.line([a, mid], max(1.0, width * 0.3), _jit(rng, (45, 105, 40), 8), LEAF)


def _head_transform(cx: float, cy: float, phi: float, tilt: float):
    c, s_ = math.cos(phi), math.sin(phi)

    def f(pts: list[Point]) -> list[Point]:
        return [(cx + c * x - s_ * y * tilt, cy + s_ * x + c * y * tilt) for x, y in pts]

    return f


def _radial_head(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float, *,
                 n_petals: int, inner: float, petal_len: float, petal_width: float,
                 petal_colour, petal_label: int, centre_colour: RGB, centre_label: int,
                 centre_radius: float, tilt: float, phi: float) -> None:
    """Petals radiating around a centre (in a tilted, rotated head frame), the centre drawn last."""
    f = _head_transform(cx, cy, phi, tilt)
    offset = rng.uniform(0, 2 * math.pi)
    for k in range(n_petals):
        a = offset + 2 * math.pi * k / n_petals + rng.normal(0, 0.06)
        ln = petal_len * rng.uniform(0.85, 1.12)
        d = inner + ln / 2
        pts = _ellipse(d * math.cos(a), d * math.sin(a), ln / 2, petal_width / 2 * rng.uniform(0.85, 1.15), a)
        cv.polygon(f(pts), petal_colour(), petal_label)
    cv.polygon(f(_ellipse(0, 0, centre_radius, centre_radius, 0)), centre_colour, centre_label)
    if centre_label == DISK and centre_radius > 4:  # darker florets on the disk: still disk
        for _ in range(int(centre_radius)):
            rr = centre_radius * 0.75 * math.sqrt(rng.random())
            t = rng.uniform(0, 2 * math.pi)
            dot = _ellipse(rr * math.cos(t), rr * math.sin(t), centre_radius * 0.1, centre_radius * 0.1, 0, 6)
            cv.polygon(f(dot), _jit(rng, (215, 150, 20), 12), DISK)


def _daisy(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float, stem: bool = True) -> None:
    if stem:
        _stem_and_leaves(cv, rng, cx, cy, r, int(rng.integers(1, 3)))
    disk_r = r * rng.uniform(0.2, 0.33)
    base_white = (int(rng.integers(238, 256)), int(rng.integers(238, 256)), int(rng.integers(232, 256)))
    _radial_head(
        cv, rng, cx, cy, r,
        n_petals=int(rng.integers(11, 27)),
        inner=disk_r * rng.uniform(0.6, 0.9),
        petal_len=r - disk_r * 0.75,
        petal_width=max(2.0, (r - disk_r) * rng.uniform(0.16, 0.32)),
        petal_colour=lambda: tuple(int(v) for v in np.clip(np.asarray(base_white) - rng.integers(0, 16), 0, 255)),
        petal_label=PETAL,
        centre_colour=_jit(rng, (245, 200, 30), 12),
        centre_label=DISK,
        centre_radius=disk_r,
        tilt=rng.uniform(0.55, 1.0) if rng.random() < 0.6 else 1.0,
        phi=rng.uniform(0, 2 * math.pi),
    )


def _other_flower(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float, stem: bool = True) -> None:
    if stem:
        _stem_and_leaves(cv, rng, cx, cy, r, int(rng.integers(0, 3)))
    colour = _OTHER_PETAL_COLOURS[int(rng.integers(len(_OTHER_PETAL_COLOURS)))]
    colour = _jit(rng, colour, 20)
    round_petals = rng.random() < 0.6
    centre_r = r * rng.uniform(0.18, 0.35)
    brown = rng.random() < 0.4
    n = int(rng.integers(5, 10)) if round_petals else int(rng.integers(10, 22))
    petal_len = (r - centre_r * 0.6) if round_petals else r - centre_r * 0.75
    width = petal_len * rng.uniform(0.6, 0.95) if round_petals else max(2.0, petal_len * rng.uniform(0.18, 0.3))
    _radial_head(
        cv, rng, cx, cy, r,
        n_petals=n,
        inner=centre_r * (0.3 if round_petals else 0.7),
        petal_len=petal_len,
        petal_width=width,
        petal_colour=lambda: _jit(rng, colour, 10),
        petal_label=OTHER_PETAL,
        centre_colour=_jit(rng, (105, 65, 30), 12) if brown else _jit(rng, (245, 200, 30), 12),
        centre_label=OTHER_DISK if brown else DISK,
        centre_radius=centre_r,
        tilt=rng.uniform(0.6, 1.0) if rng.random() < 0.5 else 1.0,
        phi=rng.uniform(0, 2 * math.pi),
    )


def _yellow_disc(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float, stem: bool) -> None:
    """A yellow disc without petals (a button, a ball, a flower that lost its petals): labelled disk."""
    if stem:
        _stem_and_leaves(cv, rng, cx, cy, r * 2.5, int(rng.integers(0, 3)))
    f = _head_transform(cx, cy, rng.uniform(0, math.pi), rng.uniform(0.6, 1.0))
    cv.polygon(f(_ellipse(0, 0, r, r, 0)), _jit(rng, (245, 200, 30), 12), DISK)
    for _ in range(int(r) if rng.random() < 0.5 else 0):
        rr = r * 0.75 * math.sqrt(rng.random())
        t = rng.uniform(0, 2 * math.pi)
        cv.polygon(f(_ellipse(rr * math.cos(t), rr * math.sin(t), r * 0.1, r * 0.1, 0, 6)), _jit(rng, (215, 150, 20), 12), DISK)


def _sun(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float) -> None:
    colour = _jit(rng, (255, 215, 60), 12)
    n = int(rng.integers(0, 16))
    if n >= 6:
        gap = r * rng.uniform(1.1, 1.3)
        ray = r * rng.uniform(0.35, 0.8)
        half = math.pi / n * rng.uniform(0.3, 0.6)
        off = rng.uniform(0, 2 * math.pi)
        for k in range(n):
            a = off + 2 * math.pi * k / n
            tri = [(cx + gap * math.cos(a - half), cy + gap * math.sin(a - half)),
                   (cx + (gap + ray) * math.cos(a), cy + (gap + ray) * math.sin(a)),
                   (cx + gap * math.cos(a + half), cy + gap * math.sin(a + half))]
            cv.polygon(tri, colour, SUN)
    cv.polygon(_ellipse(cx, cy, r, r, 0), colour, SUN)


def _white_shapes(cv: _Canvas, rng: np.random.Generator, n: int, scale: float, region=None) -> None:
    """Scattered white petal-like shapes (pebbles, feathers), randomly placed and oriented."""
    s = cv.size
    x0, y0, x1, y1 = region or (0, 0, s, s)
    for _ in range(n):
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        ln = scale * rng.uniform(0.5, 1.3)
        w = ln * rng.uniform(0.2, 0.6)
        c = int(rng.integers(228, 256))
        cv.polygon(_ellipse(x, y, ln / 2, w / 2, rng.uniform(0, math.pi)), (c, c, int(np.clip(c - rng.integers(-8, 14), 0, 255))), WHITE_SHAPE)
        if rng.random() < 0.3:  # a feather's grey shaft: still the white shape
            a = rng.uniform(0, math.pi)
            cv.line([(x - ln / 2 * math.cos(a) * 0.8, y - ln / 2 * math.sin(a) * 0.8), (x, y)], 1, (200, 200, 200), WHITE_SHAPE)


def _plant(cv: _Canvas, rng: np.random.Generator, x: float, y: float, r: float) -> None:
    _stem_and_leaves(cv, rng, x, y, r, int(rng.integers(2, 5)))


def _occluder(cv: _Canvas, rng: np.random.Generator, cx: float, cy: float, r: float) -> None:
    """Something in front of a flower: grass blades or a stone (background / none), or a leaf."""
    kind = rng.random()
    if kind < 0.4:  # foreground grass: labelled background
        for _ in range(int(rng.integers(3, 8))):
            x = cx + rng.uniform(-r, r)
            y0 = cv.size * 1.02
            a = -math.pi / 2 + rng.uniform(-0.35, 0.35)
            ln = (y0 - cy) + r * rng.uniform(-0.6, 0.1)
            cv.line([(x, y0), (x + ln * math.cos(a), y0 + ln * math.sin(a))], max(2.0, r * 0.09), _jit(rng, (60, 115, 45), 15), BACKGROUND)
    elif kind < 0.7:  # a grey stone
        a = r * rng.uniform(0.3, 0.55)
        t = rng.uniform(0, 2 * math.pi)
        g = int(rng.integers(90, 150))
        cv.polygon(_ellipse(cx + r * 0.8 * math.cos(t), cy + r * 0.8 * math.sin(t), a, a * 0.7, rng.uniform(0, math.pi)),
                   (g, g - 5, g - 12), BACKGROUND)
    else:  # a leaf of another plant
        t = rng.uniform(0, 2 * math.pi)
        ln = r * rng.uniform(0.8, 1.3)
        cv.polygon(_lens(cx + r * 1.3 * math.cos(t), cy + r * 1.3 * math.sin(t), ln, ln * 0.35, t + math.pi + rng.uniform(-0.4, 0.4)),
                   _jit(rng, (70, 160, 60), 20), LEAF)


# ------------------------------------------------------------------------------------------- scenes
def _head_size(rng: np.random.Generator, s: int, two: bool) -> float:
    return s * (rng.uniform(0.08, 0.18) if two else rng.uniform(0.1, 0.28))


def _positive(cv: _Canvas, rng: np.random.Generator) -> None:
    s = cv.size
    if rng.random() < 0.4:  # a distractor behind
        _distractor(cv, rng)
    n = 2 if rng.random() < 0.3 else 1
    heads = []
    for k in range(n):
        r = _head_size(rng, s, n == 2)
        lo, hi = 0.18 * s, 0.82 * s
        cx = rng.uniform(lo, hi) if n == 1 else (rng.uniform(lo, 0.45 * s) if k == 0 else rng.uniform(0.55 * s, hi))
        cy = rng.uniform(lo, 0.65 * s)
        _daisy(cv, rng, cx, cy, r, stem=rng.random() < 0.92)
        heads.append((cx, cy, r))
    if rng.random() < 0.35:
        cx, cy, r = heads[int(rng.integers(len(heads)))]
        _occluder(cv, rng, cx, cy, r)
    if rng.random() < 0.15:
        _distractor(cv, rng)


def _distractor(cv: _Canvas, rng: np.random.Generator) -> None:
    s = cv.size
    kind = rng.random()
    x, y = rng.uniform(0.1, 0.9, 2) * s
    if kind < 0.3:
        _other_flower(cv, rng, x, y, s * rng.uniform(0.07, 0.15), stem=rng.random() < 0.7)
    elif kind < 0.5:
        _white_shapes(cv, rng, int(rng.integers(2, 6)), s * rng.uniform(0.04, 0.09))
    elif kind < 0.7:
        _plant(cv, rng, x, y, s * rng.uniform(0.08, 0.15))
    elif kind < 0.85:
        _sun(cv, rng, x, rng.uniform(0.08, 0.3) * s, s * rng.uniform(0.05, 0.09))
    else:
        _yellow_disc(cv, rng, x, y, s * rng.uniform(0.03, 0.06), stem=False)


def _negative(cv: _Canvas, rng: np.random.Generator) -> None:
    s = cv.size
    kind = rng.random()
    lo, hi = 0.18 * s, 0.82 * s
    if kind < 0.22:  # other flowers
        n = 2 if rng.random() < 0.3 else 1
        for k in range(n):
            r = _head_size(rng, s, n == 2)
            cx = rng.uniform(lo, hi) if n == 1 else (rng.uniform(lo, 0.45 * s) if k == 0 else rng.uniform(0.55 * s, hi))
            _other_flower(cv, rng, cx, rng.uniform(lo, 0.65 * s), r, stem=rng.random() < 0.92)
        if rng.random() < 0.3:  # fallen white petals of something else
            _white_shapes(cv, rng, int(rng.integers(3, 10)), s * rng.uniform(0.05, 0.12))
    elif kind < 0.32:  # yellow discs without petals, on a stem or lying about
        for _ in range(1 if rng.random() < 0.7 else 2):
            _yellow_disc(cv, rng, rng.uniform(lo, hi), rng.uniform(lo, 0.65 * s), s * rng.uniform(0.03, 0.1), stem=rng.random() < 0.6)
    elif kind < 0.42:  # a sun, maybe over plants
        _sun(cv, rng, rng.uniform(lo, hi), rng.uniform(0.08, 0.3) * s, s * rng.uniform(0.06, 0.12))
        if rng.random() < 0.6:  # plants below the sun, not growing into it
            _plant(cv, rng, rng.uniform(lo, hi), rng.uniform(0.55, 0.8) * s, s * rng.uniform(0.1, 0.2))
    elif kind < 0.54:  # green plants, no flower
        for _ in range(int(rng.integers(1, 4))):
            _plant(cv, rng, rng.uniform(lo, hi), rng.uniform(lo, 0.7 * s), s * rng.uniform(0.1, 0.22))
    elif kind < 0.68:  # white petal-like shapes scattered, sometimes around a plant
        if rng.random() < 0.4:
            _plant(cv, rng, rng.uniform(lo, hi), rng.uniform(lo, 0.6 * s), s * rng.uniform(0.1, 0.2))
        _white_shapes(cv, rng, int(rng.integers(5, 22)), s * rng.uniform(0.06, 0.15))
    else:  # mixtures: the colours of a daisy, not its arrangement
        if rng.random() < 0.6:
            _plant(cv, rng, rng.uniform(lo, hi), rng.uniform(lo, 0.6 * s), s * rng.uniform(0.1, 0.2))
        if rng.random() < 0.5:
            _yellow_disc(cv, rng, rng.uniform(lo, hi), rng.uniform(lo, hi), s * rng.uniform(0.03, 0.08), stem=rng.random() < 0.5)
        else:
            _other_flower(cv, rng, rng.uniform(lo, hi), rng.uniform(lo, 0.65 * s), s * rng.uniform(0.08, 0.18), stem=True)
        _white_shapes(cv, rng, int(rng.integers(4, 18)), s * rng.uniform(0.05, 0.14))
        if rng.random() < 0.3:
            _sun(cv, rng, rng.uniform(lo, hi), rng.uniform(0.08, 0.25) * s, s * rng.uniform(0.05, 0.09))


def render_scene(rng: np.random.Generator, size: int, positive: bool) -> tuple[np.ndarray, np.ndarray]:
    """One image (RGB uint8 size×size×3) and its part mask (uint8 size×size).

    A positive always shows a visible daisy (petal and disk pixels both present); a negative never
    holds a daisy petal. Deterministic given the generator's state.
    """
    min_px = max(4, int(size * size * 0.0015))
    for _ in range(20):
        cv = _Canvas(_background(rng, size))
        (_positive if positive else _negative)(cv, rng)
        mask = np.asarray(cv.mask, dtype=np.uint8)
        if not positive or (np.count_nonzero(mask == PETAL) >= min_px and np.count_nonzero(mask == DISK) >= min_px // 4):
            break
    rgb = np.asarray(cv.rgb, dtype=np.float32)
    gain = rng.uniform(0.93, 1.04, 3).astype(np.float32)  # slight colour cast of the whole picture
    rgb *= gain
    rgb += rng.integers(-4, 5, rgb.shape, dtype=np.int8)
    return np.clip(rgb, 0, 255).astype(np.uint8), mask.copy()
