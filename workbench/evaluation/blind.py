"""Part-blind baselines: classifiers that see colours and coarse layout, never shapes or segments.

A data set on which these score well says little about parts: the class can be read off colour
statistics. Each baseline learns from image labels only (no masks, no segments, no ontology) and
reports its supervision and parameter count. Every choice a baseline makes (regularisation strength,
palette size, which statistic, when to stop) is made on the validation images; the test images are
only scored, by the caller.

- ``colour_histogram``: a joint RGB histogram (4×4×4 = 64 bins, normalised, square-rooted) and an
  L2 logistic regression.
- ``colour_layout``: pooled colour co-occurrence. Colours are quantised to a palette fitted on the
  training pixels (k-means in CIELAB, k chosen on validation); for pixel offsets of 2, 4, 8 and 16 px
  at the working size (128², in four directions) the unordered pairs of palette colours are counted
  and normalised per offset, plus the palette histogram; then an L2 logistic regression. It catches
  "white next to yellow" or "a green region 16 px wide" without any segment.
- ``colour_threshold``: one hand-written colour statistic and one threshold. The statistic is
  "fraction of colour-A pixels with a colour-B pixel within r px" (A, B named colours by hue,
  saturation and value; r in 1, 2, 4 px at 128²) or "fraction of the image that is colour A"; for each
  candidate the threshold and its direction are fitted on train, and the candidate is chosen on
  validation. With A = yellow, B = white, r = 1 it is the statistic that read the old demo set.
- ``blurred_cnn``: a tiny CNN on the image blurred (Gaussian, σ = 6 px at 256²) and shrunk to 32²:
  coarse colour layout, no part shapes; weight decay and the stopping epoch chosen on validation.

>>> rng = np.random.default_rng(0)
>>> imgs = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
>>> y = np.arange(40) % 2
>>> imgs[y == 1, :, :, 0] = 250                        # positives are red-saturated: colour-separable
>>> model = fit_baseline("colour_histogram", imgs[:20], y[:20], imgs[20:30], y[20:30])
>>> balanced_accuracy(y[30:], model.predict_proba(imgs[30:]))
1.0
>>> model.supervision, model.n_params
('image labels', 65)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "BASELINES",
    "WORKING_SIZE",
    "SUPERVISION",
    "BlindModel",
    "fit_baseline",
    "colour_histogram",
    "colour_layout",
    "colour_threshold",
    "blurred_cnn",
    "balanced_accuracy",
    "stratified_split",
    "prepare_images",
    "LogisticRegression",
    "colour_histogram_features",
    "colour_layout_features",
    "named_colours",
]

#: Side of the square every image is resized to before any feature is computed.
WORKING_SIZE = 128
#: What every baseline here learns from.
SUPERVISION = "image labels"
#: L2 strengths tried (on standardised features); the validation split picks one.
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
#: Pixel offsets (at ``WORKING_SIZE``) of the co-occurrence counts.
OFFSETS = (2, 4, 8, 16)
#: Palette sizes tried by ``colour_layout``; the validation split picks one.
PALETTE_SIZES = (8, 16)
#: Radii (px at ``WORKING_SIZE``) of the adjacency statistics of ``colour_threshold``.
RADII = (1, 2, 4)
#: ``blurred_cnn``: weight decays tried and the most epochs; validation picks the decay and the epoch.
CNN_WEIGHT_DECAYS = (0.0, 1e-3, 1e-2)
CNN_EPOCHS = 40

Images = np.ndarray | Sequence[np.ndarray]


# ------------------------------------------------------------------------------------------ helpers
def balanced_accuracy(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """Mean of the true-positive and true-negative rates (a constant answer scores 0.5).

    >>> balanced_accuracy(np.array([1, 1, 0, 0]), np.array([0.9, 0.1, 0.2, 0.3]))
    0.75
    """
    y = np.asarray(y).astype(int)
    pred = np.asarray(p, dtype=np.float64) >= threshold
    rates = [float(np.mean(pred[y == k] == bool(k))) for k in (0, 1) if np.any(y == k)]
    return float(np.mean(rates)) if rates else float("nan")


def stratified_split(y: np.ndarray, fractions: tuple[float, float, float] = (0.5, 0.25, 0.25),
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a class-stratified train / validation / test split (each class shuffled with ``seed``).

    >>> tr, va, te = stratified_split(np.array([0] * 8 + [1] * 8), seed=1)
    >>> len(tr), len(va), len(te), sorted(set(tr) | set(va) | set(te)) == list(range(16))
    (8, 4, 4, True)
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        n_tr = round(fractions[0] * len(idx))
        n_va = round(fractions[1] * len(idx))
        parts[0] += idx[:n_tr].tolist()
        parts[1] += idx[n_tr:n_tr + n_va].tolist()
        parts[2] += idx[n_tr + n_va:].tolist()
    return tuple(np.array(sorted(p), dtype=np.int64) for p in parts)  # type: ignore[return-value]


def prepare_images(images: Images, size: int = WORKING_SIZE) -> np.ndarray:
    """Every image as float32 RGB in [0, 1], resized (bilinear, antialiased) to ``size``×``size``."""
    out = np.empty((len(images), size, size, 3), dtype=np.float32)
    for i, im in enumerate(images):
        a = np.asarray(im)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
            raise ValueError(f"image {i}: expected a uint8 H×W×3 array, got {a.dtype} {a.shape}")
        if a.shape[:2] != (size, size):
            a = np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0))
        out[i] = a.astype(np.float32) / 255.0
    return out


def _choose(candidates: list[tuple[float, float, Any]]) -> Any:
    """The candidate with the best (validation score, tie-break); the first of equals wins."""
    best = max(range(len(candidates)), key=lambda i: (candidates[i][0], candidates[i][1], -i))
    return candidates[best][2]


# ------------------------------------------------------------------------------ logistic regression
class LogisticRegression:
    """Binary logistic regression with an L2 penalty, fitted by L-BFGS on standardised features,
    classes weighted to equal total weight. ``l2`` is the penalty on the weights (not the bias),
    relative to the mean loss.

    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
    >>> LogisticRegression(l2=0.01).fit(X, y).predict_proba(np.array([[0.2], [2.8]])).round(1).tolist()
    [0.0, 1.0]
    """

    def __init__(self, l2: float = 1.0, max_iter: int = 500):
        self.l2 = float(l2)
        self.max_iter = max_iter

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticRegression:
        from scipy.optimize import minimize

        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0) + 1e-8
        Z = (X - self.mean_) / self.scale_
        n_pos = max(1.0, y.sum())
        n_neg = max(1.0, len(y) - y.sum())
        sw = np.where(y == 1, 0.5 / n_pos, 0.5 / n_neg)  # sums to 1

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            z = Z @ w[:-1] + w[-1]
            # log(1 + e^z) - y z, computed stably
            value = float(sw @ (np.logaddexp(0.0, z) - y * z)) + 0.5 * self.l2 * float(w[:-1] @ w[:-1])
            g = sw * (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))) - y)
            return value, np.concatenate([Z.T @ g + self.l2 * w[:-1], [g.sum()]])

        res = minimize(loss, np.zeros(Z.shape[1] + 1), jac=True, method="L-BFGS-B",
                       options={"maxiter": self.max_iter, "gtol": 1e-8})
        self.coef_, self.intercept_ = res.x[:-1], float(res.x[-1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = ((np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    @property
    def n_params(self) -> int:
        return len(self.coef_) + 1


# ------------------------------------------------------------------------------------------ features
def colour_histogram_features(x: np.ndarray, bins: int = 4) -> np.ndarray:
    """Joint RGB histogram (``bins``³), normalised to sum 1 and square-rooted, of each prepared image."""
    q = np.minimum((x * bins).astype(np.int64), bins - 1)
    idx = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    flat = idx.reshape(len(x), -1)
    h = np.stack([np.bincount(row, minlength=bins ** 3) for row in flat]).astype(np.float64)
    return np.sqrt(h / flat.shape[1])


def _lab(x: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(x.reshape(-1, 1, 3)).reshape(x.shape).astype(np.float32)


def _kmeans(points: np.ndarray, k: int, seed: int, iters: int = 25) -> np.ndarray:
    """k-means++ then Lloyd iterations; the centres (k×3)."""
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(len(points))]]
    d2 = ((points - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())] if d2.sum() > 0 else points[rng.integers(len(points))])
        d2 = np.minimum(d2, ((points - centres[-1]) ** 2).sum(axis=1))
    c = np.array(centres, dtype=np.float64)
    for _ in range(iters):
        a = _nearest(points, c)
        new = np.array([points[a == j].mean(axis=0) if np.any(a == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (points ** 2).sum(1)[:, None] - 2 * points @ centres.T + (centres ** 2).sum(1)[None, :]
    return np.argmin(d, axis=1)


def _pair_counts(q: np.ndarray, k: int, offset: int) -> np.ndarray:
    """Unordered palette-pair counts of one quantised image at one offset, 4 directions pooled."""
    pairs = [(q[:, :-offset], q[:, offset:]), (q[:-offset, :], q[offset:, :]),
             (q[:-offset, :-offset], q[offset:, offset:]), (q[:-offset, offset:], q[offset:, :-offset])]
    c = np.zeros(k * k, dtype=np.float64)
    for a, b in pairs:
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        c += np.bincount((lo * k + hi).ravel(), minlength=k * k)
    iu = np.triu_indices(k)
    return c.reshape(k, k)[iu]


def colour_layout_features(x: np.ndarray, centres: np.ndarray, offsets: Sequence[int] = OFFSETS, *,
                           lab: np.ndarray | None = None) -> np.ndarray:
    """Palette histogram + per-offset palette-pair co-occurrences, each normalised and square-rooted.

    ``x``: prepared images (N×S×S×3 in [0, 1]); ``centres``: the palette in CIELAB; ``lab``: ``x`` in
    CIELAB when the caller has it already."""
    k = len(centres)
    lab = _lab(x) if lab is None else lab
    rows = []
    for im in lab:
        q = _nearest(im.reshape(-1, 3).astype(np.float64), centres).reshape(im.shape[:2])
        parts = [np.bincount(q.ravel(), minlength=k).astype(np.float64)]
        parts += [_pair_counts(q, k, o) for o in offsets]
        rows.append(np.concatenate([np.sqrt(p / max(1.0, p.sum())) for p in parts]))
    return np.stack(rows)


#: Named colours of ``colour_threshold``: (name, test on hue in degrees, saturation, value in [0, 1]).
_NAMED: tuple[tuple[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]], ...] = (
    ("white", lambda h, s, v: (s < 0.2) & (v > 0.75)),
    ("black", lambda h, s, v: v < 0.2),
    ("grey", lambda h, s, v: (s < 0.2) & (v >= 0.2) & (v <= 0.75)),
    ("red", lambda h, s, v: (s >= 0.2) & (v >= 0.2) & ((h < 15) | (h >= 330))),
    ("orange_brown", lambda h, s, v: (s >= 0.2) & (v >= 0.2) & (h >= 15) & (h < 40)),
    ("yellow", lambda h, s, v: (s >= 0.35) & (v >= 0.35) & (h >= 40) & (h < 70)),
    ("green", lambda h, s, v: (s >= 0.2) & (v >= 0.2) & (h >= 70) & (h < 170)),
    ("blue", lambda h, s, v: (s >= 0.2) & (v >= 0.2) & (h >= 170) & (h < 260)),
    ("purple_pink", lambda h, s, v: (s >= 0.2) & (v >= 0.2) & (h >= 260) & (h < 330)),
)


def named_colours(x: np.ndarray) -> np.ndarray:
    """Boolean masks (N×C×H×W) of the named colours of each prepared image (C = 9: white, black, grey,
    red, orange_brown, yellow, green, blue, purple_pink; overlaps and gaps allowed)."""
    from skimage.color import rgb2hsv

    hsv = rgb2hsv(x.reshape(-1, x.shape[2], 3)).reshape(x.shape)
    h, s, v = hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2]
    return np.stack([f(h, s, v) for _, f in _NAMED], axis=1)


def _threshold_statistics(x: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Every candidate statistic of ``colour_threshold`` for each prepared image: (N×M, names)."""
    from scipy.ndimage import maximum_filter

    masks = named_colours(x)
    names = [n for n, _ in _NAMED]
    c = len(names)
    off = ~np.eye(c, dtype=bool)
    labels = [f"fraction {a}" for a in names]
    labels += [f"fraction of {a} pixels within {r} px of {b}" for r in RADII for a in names for b in names if a != b]
    out = np.zeros((len(x), len(labels)))
    for i, m in enumerate(masks):
        flat = m.reshape(c, -1).astype(np.float32)
        area = flat.sum(axis=1).astype(np.float64)
        vals = [area / flat.shape[1]]
        for r in RADII:
            near = maximum_filter(m, size=(1, 2 * r + 1, 2 * r + 1)).reshape(c, -1).astype(np.float32)
            both = (flat @ near.T).astype(np.float64)  # [a, b]: pixels of a within r of b
            vals.append((both / np.maximum(area, 1.0)[:, None])[off])
        out[i] = np.concatenate(vals)
    return out, labels


def _fit_threshold(values: np.ndarray, y: np.ndarray) -> tuple[float, int, float]:
    """The threshold and direction (+1: above means positive) with the best balanced accuracy on
    ``values``; returns (threshold, direction, that balanced accuracy)."""
    order = np.argsort(values, kind="stable")
    v, t = values[order], y[order]
    n_pos, n_neg = max(1, t.sum()), max(1, len(t) - t.sum())
    # cutting after position i: predictions "positive above" for items i+1..; cuts only between distinct values
    neg_below = np.concatenate([[0], np.cumsum(t == 0)])
    pos_below = np.concatenate([[0], np.cumsum(t == 1)])
    bacc_up = 0.5 * (neg_below / n_neg + (n_pos - pos_below) / n_pos)
    valid = np.concatenate([[True], v[1:] != v[:-1], [True]])
    bacc_up = np.where(valid, bacc_up, -1.0)
    bacc_down = np.where(valid, 1.0 - bacc_up, -1.0)
    cuts = np.concatenate([[v[0] - 1.0], (v[1:] + v[:-1]) / 2, [v[-1] + 1.0]])
    i_up, i_down = int(np.argmax(bacc_up)), int(np.argmax(bacc_down))
    if bacc_up[i_up] >= bacc_down[i_down]:
        return float(cuts[i_up]), 1, float(bacc_up[i_up])
    return float(cuts[i_down]), -1, float(bacc_down[i_down])


# -------------------------------------------------------------------------------------------- models
@dataclass
class BlindModel:
    """A fitted part-blind baseline: ``predict_proba(images)`` → P(positive) per image."""

    name: str
    n_params: int
    choice: dict[str, Any]  # what validation chose (and its validation balanced accuracy)
    _predict: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    supervision: str = SUPERVISION
    params_note: str = ""

    def predict_proba(self, images: Images) -> np.ndarray:
        return np.asarray(self._predict(prepare_images(images)), dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        return {"baseline": self.name, "supervision": self.supervision, "params": self.n_params,
                "params_note": self.params_note, "chosen_on_validation": self.choice}


def _fit_lr_on(features_tr: np.ndarray, y_tr: np.ndarray, features_va: np.ndarray, y_va: np.ndarray
               ) -> tuple[LogisticRegression, float, float]:
    """Fit one LR per L2 strength on train, keep the best on validation: (model, l2, val bacc)."""
    cands = []
    for l2 in L2_GRID:
        lr = LogisticRegression(l2).fit(features_tr, y_tr)
        p = lr.predict_proba(features_va)
        loss = -np.mean(y_va * np.log(p + 1e-9) + (1 - y_va) * np.log(1 - p + 1e-9))
        cands.append((balanced_accuracy(y_va, p), -loss, (lr, l2)))
    lr, l2 = _choose(cands)
    return lr, l2, max(c[0] for c in cands)


def _fit_colour_histogram(xtr, ytr, xva, yva, seed: int) -> BlindModel:
    lr, l2, va = _fit_lr_on(colour_histogram_features(xtr), ytr, colour_histogram_features(xva), yva)
    return BlindModel("colour_histogram", lr.n_params, {"l2": l2, "val_balanced_accuracy": round(va, 4)},
                      lambda x: lr.predict_proba(colour_histogram_features(x)),
                      params_note="64 weights + bias of a logistic regression (standardisation statistics not counted)")


def _fit_colour_layout(xtr, ytr, xva, yva, seed: int) -> BlindModel:
    rng = np.random.default_rng(seed)
    lab_tr, lab_va = _lab(xtr), _lab(xva)
    pixels = lab_tr.reshape(-1, 3).astype(np.float64)
    sample = pixels[rng.choice(len(pixels), size=min(len(pixels), 20000), replace=False)]
    cands = []
    for k in PALETTE_SIZES:
        centres = _kmeans(sample, k, seed)
        lr, l2, va = _fit_lr_on(colour_layout_features(xtr, centres, lab=lab_tr), ytr,
                                colour_layout_features(xva, centres, lab=lab_va), yva)
        cands.append((va, -k, (lr, l2, centres, va)))
    lr, l2, centres, va = _choose(cands)
    k = len(centres)
    return BlindModel("colour_layout", lr.n_params + centres.size,
                      {"palette": k, "l2": l2, "val_balanced_accuracy": round(va, 4)},
                      lambda x: lr.predict_proba(colour_layout_features(x, centres)),
                      params_note=f"{lr.n_params - 1} weights + bias of a logistic regression and the {k}×3 palette "
                                  "(k-means on training pixels)")


def _fit_colour_threshold(xtr, ytr, xva, yva, seed: int) -> BlindModel:
    s_tr, names = _threshold_statistics(xtr)
    s_va, _ = _threshold_statistics(xva)
    cands = []
    for j in range(s_tr.shape[1]):
        thr, direction, tr_bacc = _fit_threshold(s_tr[:, j], ytr)
        pred = (direction * (s_va[:, j] - thr) > 0).astype(float)
        cands.append((balanced_accuracy(yva, pred), tr_bacc, (j, thr, direction)))
    j, thr, direction = _choose(cands)
    va = max(c[0] for c in cands)

    def predict(x: np.ndarray) -> np.ndarray:
        s, _ = _threshold_statistics(x)
        return (direction * (s[:, j] - thr) > 0).astype(np.float64)

    return BlindModel("colour_threshold", 2,
                      {"statistic": names[j], "threshold": round(thr, 4), "positive_when": "above" if direction > 0 else "below",
                       "val_balanced_accuracy": round(va, 4), "candidates": len(names)},
                      predict, params_note="a threshold and its direction; the statistic picked among "
                                           f"{len(names)} on validation")


def _fit_blurred_cnn(xtr, ytr, xva, yva, seed: int) -> BlindModel:
    import torch
    from torch import nn

    def small(x: np.ndarray) -> torch.Tensor:
        from scipy.ndimage import gaussian_filter

        blurred = gaussian_filter(x, sigma=(0, 3.0, 3.0, 0))  # σ = 3 px at 128² (6 px at 256²)
        t = torch.from_numpy(np.ascontiguousarray(blurred.transpose(0, 3, 1, 2)))
        return nn.functional.interpolate(t, size=(32, 32), mode="area")

    def net() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(16, 1))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ttr, tva = small(xtr), small(xva)
        ytr_t = torch.tensor(ytr, dtype=torch.float32)
        w_pos = 0.5 / max(1, int(ytr.sum()))
        w_neg = 0.5 / max(1, int(len(ytr) - ytr.sum()))
        weights = torch.where(ytr_t == 1, w_pos, w_neg)
        cands = []
        for wd in CNN_WEIGHT_DECAYS:
            torch.manual_seed(seed)
            model = net()
            opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=wd)
            g = torch.Generator().manual_seed(seed)
            best = (-1.0, 0.0, None, 0)
            for epoch in range(CNN_EPOCHS):
                model.train()
                perm = torch.randperm(len(ttr), generator=g)
                for b in range(0, len(ttr), 32):
                    i = perm[b:b + 32]
                    xb = ttr[i]
                    flip = torch.rand(len(i), generator=g) < 0.5
                    xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
                    loss = (nn.functional.binary_cross_entropy_with_logits(model(xb).squeeze(1), ytr_t[i],
                                                                            reduction="none") * weights[i]).sum()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                model.eval()
                with torch.no_grad():
                    pva = torch.sigmoid(model(tva).squeeze(1)).numpy()
                va = balanced_accuracy(yva, pva)
                if va > best[0]:
                    best = (va, 0.0, {k: v.clone() for k, v in model.state_dict().items()}, epoch + 1)
            cands.append((best[0], -wd, (wd, best[2], best[3], best[0])))
        wd, state, epochs, va = _choose(cands)
        model = net()
        model.load_state_dict(state)
        model.eval()
        n_params = sum(p.numel() for p in model.parameters())
    finally:
        torch.set_num_threads(threads)

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(model(small(x)).squeeze(1)).numpy()

    return BlindModel("blurred_cnn", int(n_params),
                      {"weight_decay": wd, "epochs": epochs, "val_balanced_accuracy": round(va, 4)}, predict,
                      params_note="3 conv layers + Linear on a 32² image blurred with σ = 6 px at 256²")


#: Every baseline by name: ``fit(x_train, y_train, x_val, y_val, seed) -> BlindModel`` on prepared images.
BASELINES: dict[str, Callable[..., BlindModel]] = {
    "colour_histogram": _fit_colour_histogram,
    "colour_layout": _fit_colour_layout,
    "colour_threshold": _fit_colour_threshold,
    "blurred_cnn": _fit_blurred_cnn,
}


def fit_baseline(name: str, images_train: Images, y_train: Sequence[int], images_val: Images,
                 y_val: Sequence[int], *, seed: int = 0) -> BlindModel:
    """Fit the part-blind baseline ``name`` on the training images; every choice on the validation ones.

    ``y``: 1 for the positive class, 0 otherwise. Returns a :class:`BlindModel` (``predict_proba``,
    ``supervision``, ``n_params``, ``choice``).
    """
    if name not in BASELINES:
        raise ValueError(f"unknown part-blind baseline {name!r}: choose one of {', '.join(BASELINES)}")
    ytr, yva = np.asarray(y_train).astype(int), np.asarray(y_val).astype(int)
    if len(set(ytr.tolist())) < 2 or len(set(yva.tolist())) < 2:
        raise ValueError("training and validation images must both hold both classes")
    return BASELINES[name](prepare_images(images_train), ytr, prepare_images(images_val), yva, seed)


def colour_histogram(images_train: Images, y_train: Sequence[int], images_val: Images, y_val: Sequence[int], *,
                     seed: int = 0) -> BlindModel:
    """Fit the ``colour_histogram`` baseline (see the module doc); :func:`fit_baseline` by name."""
    return fit_baseline("colour_histogram", images_train, y_train, images_val, y_val, seed=seed)


def colour_layout(images_train: Images, y_train: Sequence[int], images_val: Images, y_val: Sequence[int], *,
                  seed: int = 0) -> BlindModel:
    """Fit the ``colour_layout`` baseline (see the module doc); :func:`fit_baseline` by name."""
    return fit_baseline("colour_layout", images_train, y_train, images_val, y_val, seed=seed)


def colour_threshold(images_train: Images, y_train: Sequence[int], images_val: Images, y_val: Sequence[int], *,
                     seed: int = 0) -> BlindModel:
    """Fit the ``colour_threshold`` baseline (see the module doc); :func:`fit_baseline` by name."""
    return fit_baseline("colour_threshold", images_train, y_train, images_val, y_val, seed=seed)


def blurred_cnn(images_train: Images, y_train: Sequence[int], images_val: Images, y_val: Sequence[int], *,
                seed: int = 0) -> BlindModel:
    """Fit the ``blurred_cnn`` baseline (see the module doc); :func:`fit_baseline` by name."""
    return fit_baseline("blurred_cnn", images_train, y_train, images_val, y_val, seed=seed)
