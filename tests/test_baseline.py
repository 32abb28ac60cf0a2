"""The same-budget end-to-end baseline (the shared contract is checked in test_models.py)."""
from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from workbench.errors import ModelError
from workbench.models.baseline import BaselineCNN, resize_images
from workbench.models.contract import MAX_CONV_LAYERS, PART_PARAM_BUDGET


def scenes(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Variable-size 'photos': green noise with, on positives, a yellow disc ringed by white."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(70, 130, 2))
        im = np.clip(rng.normal((60, 120, 50), 30, (h, w, 3)), 0, 255).astype(np.uint8)
        pos = i % 2 == 0
        yy, xx = np.mgrid[:h, :w]
        cy, cx = rng.integers(20, h - 20), rng.integers(20, w - 20)
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        if pos:
            im[d2 < 18**2] = (240, 240, 235)
            im[d2 < 7**2] = (230, 190, 20)
        else:
            im[d2 < 12**2] = (180, 60, 160)  # a purple flower
        images.append(im)
        labels.append(int(pos))
    return images, np.array(labels)


def test_budget_is_the_part_nets() -> None:
    m = BaselineCNN()
    assert m.n_params == 927 < PART_PARAM_BUDGET
    convs = [x for x in m._meta_module().modules() if isinstance(x, nn.Conv2d)]
    assert len(convs) <= MAX_CONV_LAYERS
    with pytest.raises(ModelError, match=r"concept 'daisy': BaselineCNN has 1,\d{3} parameters, over the budget"):
        BaselineCNN("daisy", channels=(8, 8, 8))
    with pytest.raises(ModelError, match=r"concept 'daisy': BaselineCNN has 4 conv layers, over the limit of 3"):
        BaselineCNN("daisy", channels=(2, 2, 2, 2), kernel_sizes=(3, 3, 3, 3), pools=(1, 1, 1, 2))
    with pytest.raises(ModelError, match=r"concept 'daisy': .*one entry per conv layer, got 2, 1 and 2"):
        BaselineCNN("daisy", channels=(4, 4), kernel_sizes=(3,), pools=(2, 2))


def test_resize_accepts_lists_of_any_size() -> None:
    ims = [np.full((50, 80, 3), 200, np.uint8), np.zeros((120, 90, 3), np.uint8)]
    out = resize_images(ims, 64)
    assert out.shape == (2, 64, 64, 3) and out.dtype == np.uint8
    assert out[0].min() == 200 and out[1].max() == 0
    with pytest.raises(ModelError, match="image 0: must be a uint8 H×W×3"):
        resize_images([np.zeros((10, 10))], 64)


def test_baseline_learns_a_separable_image_task() -> None:
    X, y = scenes(80, seed=0)
    Xv, yv = scenes(40, seed=1)
    m = BaselineCNN("daisy", max_epochs=10).fit(X, y, Xv, yv)
    assert m.evaluate(Xv, yv)["balanced_accuracy"] >= 0.9
    assert m.metrics_["val_examples"] == 40
    # a list of images and the same images pre-resized give the same answer
    np.testing.assert_allclose(m.predict_proba(resize_images(Xv, 64)), m.predict_proba(Xv))
