"""Tests for workbench/evaluation/blind.py: part-blind baselines on tiny synthetic sets whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.evaluation.blind import (
    BASELINES,
    L2_GRID,
    SUPERVISION,
    LogisticRegression,
    balanced_accuracy,
    colour_histogram_features,
    fit_baseline,
    prepare_images,
    stratified_split,
)


def _blobs(rng: np.random.Generator, n: int, colour: tuple[int, int, int], size: int = 48) -> np.ndarray:
    """Noisy grey-green images, each with a few blobs of ``colour`` at random places."""
    out = rng.integers(40, 120, (n, size, size, 3)).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for im in out:
        for _ in range(3):
            cy, cx, r = rng.integers(8, size - 8), rng.integers(8, size - 8), rng.integers(4, 8)
            im[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = colour
    return out


def _split(x: np.ndarray, y: np.ndarray, seed: int = 0):
    tr, va, te = stratified_split(y, seed=seed)
    return x[tr], y[tr], x[va], y[va], x[te], y[te]


@pytest.fixture(scope="module")
def separable():
    """Positives carry red blobs, negatives blue ones: any colour statistic reads the class."""
    rng = np.random.default_rng(0)
    x = np.concatenate([_blobs(rng, 24, (230, 40, 40)), _blobs(rng, 24, (40, 60, 230))])
    return x, np.array([1] * 24 + [0] * 24)


@pytest.mark.parametrize("name", list(BASELINES))
def test_a_colour_separable_set_is_learned(separable, name):
    x, y = separable
    xtr, ytr, xva, yva, xte, yte = _split(x, y)
    model = fit_baseline(name, xtr, ytr, xva, yva)
    assert balanced_accuracy(yte, model.predict_proba(xte)) >= 0.9
    assert model.supervision == SUPERVISION == "image labels"
    assert model.n_params > 0 and model.describe()["baseline"] == name


@pytest.mark.parametrize("name", list(BASELINES))
def test_a_colour_identical_set_stays_near_chance(name):
    """Both classes drawn from one distribution (the labels say nothing about the pixels): 40 test
    images, so one standard deviation of chance is about 0.08 and 0.25 is three of them."""
    rng = np.random.default_rng(1)
    x = np.concatenate([_blobs(rng, 40, (230, 200, 40)), _blobs(rng, 40, (230, 200, 40))])
    y = rng.permutation(np.array([1] * 40 + [0] * 40))
    xtr, ytr, xva, yva, xte, yte = _split(x, y)
    model = fit_baseline(name, xtr, ytr, xva, yva)
    assert abs(balanced_accuracy(yte, model.predict_proba(xte)) - 0.5) <= 0.25


def test_layout_sees_arrangement_the_histogram_cannot():
    """Negatives are images like the positives with their pixels shuffled in place: the same colour
    distribution (at the working size, so no resizing blends them), so the histogram baseline is at
    chance while the co-occurrence of colours at offsets separates them."""
    rng = np.random.default_rng(2)
    pos = _blobs(rng, 40, (240, 240, 240), size=128)
    neg = np.stack([rng.permutation(im.reshape(-1, 3)).reshape(im.shape) for im in _blobs(rng, 40, (240, 240, 240), size=128)])
    shuffled = rng.permutation(pos[0].reshape(-1, 3)).reshape(pos[0].shape)
    h = colour_histogram_features(prepare_images(np.stack([pos[0], shuffled])))
    assert np.array_equal(h[0], h[1])
    x, y = np.concatenate([pos, neg]), np.array([1] * 40 + [0] * 40)
    xtr, ytr, xva, yva, xte, yte = _split(x, y)
    hist = fit_baseline("colour_histogram", xtr, ytr, xva, yva)
    assert abs(balanced_accuracy(yte, hist.predict_proba(xte)) - 0.5) <= 0.25
    layout = fit_baseline("colour_layout", xtr, ytr, xva, yva)
    assert balanced_accuracy(yte, layout.predict_proba(xte)) >= 0.9


def test_the_threshold_statistic_is_chosen_on_validation():
    """On train, red and green both mark the positives; on validation only green does (red marks the
    negatives there). The statistic must come from validation: green."""
    rng = np.random.default_rng(3)
    red, green, grey = (230, 30, 30), (30, 200, 30), (128, 128, 128)

    def images(n: int, colours):
        ims = np.full((n, 48, 48, 3), 90, np.uint8)
        for im in ims:
            for k, c in enumerate(colours):
                im[6 + 14 * k: 16 + 14 * k, 6:40] = c
            im += rng.integers(0, 8, im.shape, dtype=np.uint8)
        return ims

    xtr = np.concatenate([images(12, [red, green]), images(12, [grey, grey])])
    xva = np.concatenate([images(8, [grey, green]), images(8, [red, grey])])
    ytr, yva = np.array([1] * 12 + [0] * 12), np.array([1] * 8 + [0] * 8)
    model = fit_baseline("colour_threshold", xtr, ytr, xva, yva)
    assert "green" in model.choice["statistic"] and "red" not in model.choice["statistic"]
    assert model.choice["val_balanced_accuracy"] == 1.0
    assert model.n_params == 2


def test_the_l2_strength_is_the_best_on_validation(separable):
    """The chosen L2 strength is one whose validation balanced accuracy is the best of the grid,
    recomputed here from the features with the same logistic regression."""
    x, y = separable
    xtr, ytr, xva, yva, _, _ = _split(x, y, seed=4)
    model = fit_baseline("colour_histogram", xtr, ytr, xva, yva)
    ftr, fva = colour_histogram_features(prepare_images(xtr)), colour_histogram_features(prepare_images(xva))
    scores = {l2: balanced_accuracy(yva, LogisticRegression(l2).fit(ftr, ytr).predict_proba(fva)) for l2 in L2_GRID}
    assert model.choice["l2"] in L2_GRID
    assert scores[model.choice["l2"]] == max(scores.values())
    assert model.n_params == 65


def test_fit_refuses_unknown_names_and_one_class_splits(separable):
    x, y = separable
    with pytest.raises(ValueError, match="unknown part-blind baseline"):
        fit_baseline("nope", x, y, x, y)
    with pytest.raises(ValueError, match="both classes"):
        fit_baseline("colour_histogram", x, y, x[y == 1], y[y == 1])


def test_stratified_split_is_disjoint_stratified_and_seeded():
    y = np.array([0] * 20 + [1] * 12)
    tr, va, te = stratified_split(y, seed=5)
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    assert sorted([*tr, *va, *te]) == list(range(len(y)))
    assert (y[tr] == 1).sum() == 6 and (y[va] == 1).sum() == 3 and (y[te] == 1).sum() == 3
    assert [a.tolist() for a in stratified_split(y, seed=5)] == [tr.tolist(), va.tolist(), te.tolist()]
    assert stratified_split(y, seed=6)[0].tolist() != tr.tolist()


def test_logistic_regression_and_balanced_accuracy():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] - 0.5 * X[:, 2] > 0).astype(int)
    lr = LogisticRegression(l2=1e-3).fit(X, y)
    assert balanced_accuracy(y, lr.predict_proba(X)) > 0.95 and lr.n_params == 4
    strong = LogisticRegression(l2=100.0).fit(X, y)
    assert np.abs(strong.coef_).sum() < np.abs(lr.coef_).sum()  # the penalty shrinks the weights
    assert balanced_accuracy(np.array([1, 1, 1, 0]), np.ones(4)) == 0.5


def test_each_baseline_has_a_function_of_its_own(separable):
    from workbench.evaluation import blind

    x, y = separable
    xtr, ytr, xva, yva, xte, _ = _split(x, y)
    model = blind.colour_histogram(xtr, ytr, xva, yva)
    assert model.name == "colour_histogram"
    assert np.array_equal(model.predict_proba(xte), fit_baseline("colour_histogram", xtr, ytr, xva, yva).predict_proba(xte))
    assert all(callable(getattr(blind, name)) for name in BASELINES)


def test_the_benchmark_runs_and_renders(tmp_path):
    """benchmarks/bench_blind.py end to end on a tiny set (no main job): every baseline scored, the table rendered."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_blind

    res = bench_blind.run(6, 64, (0,), ("house",), (), 6, tmp_path, log=lambda *a: None)
    runs = res["blind"]["house"]["runs"]
    assert sorted(r["baseline"] for r in runs) == sorted(BASELINES)
    assert all(r["supervision"] == "image labels" and r["n_test"] > 0 for r in runs)
    text = bench_blind.table(res)
    assert "| `house` |" in text and "`colour_threshold`" in text and "ceiling" in text
