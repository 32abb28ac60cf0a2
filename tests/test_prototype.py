"""The ``prototype`` composition (workbench/models/prototype.py): trained on a tiny labelled workspace it
trains every concept, reports the study's parameter counts at this size and rates in [0, 1]; the nets
it composes predict probabilities in [0, 1] on crops and on whole images."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.data.segment import WeightFreeSegmenter, settings_hash
from workbench.evaluation.evaluate import load_images
from workbench.models import PART_PARAM_BUDGET, PrototypeLeafNet, PrototypeParentNet
from workbench.models.prototype import PrototypeConfig, _pad_to, train_prototype
from workbench.models.train import TrainConfig, collect, split_images
from workbench.workspace.settings import COMPOSITION_MODES


def test_train_prototype_on_a_tiny_workspace(labelled_ws):
    ws, onto = labelled_ws, labelled_ws.ontology
    config = TrainConfig(max_epochs=1)
    images, segments = collect(ws.store, settings_hash(WeightFreeSegmenter()), config.crop_size,
                               image_root=ws.dataset_root, cache_dir=ws.cache_dir)
    images.split = split_images(images, config.val_fraction, config.random_state)
    pixels, problems = load_images(images, ws.dataset_root)
    assert not problems
    proto = PrototypeConfig(max_epochs=1, image_size=64)
    r = train_prototype(onto, images, segments, pixels, config, proto)

    assert r["mode"] == "prototype" and r["mode"] in COMPOSITION_MODES
    assert set(r["concepts"]) == set(onto.concepts)
    # leaves: the study's stack at 32-pixel crops with pool 2 (under the part budget): convs 5, 3, 3 with
    # batch norm, 32 → 28 → 14 → 12 → 6 → 4 → 2, then Linear(2×2→1);
    # a parent over k children: conv k→1 3×3 (9k) + batch norm (2) + Linear(2×2→1) (5)
    leaf = (3 * 8 * 25 + 16) + (8 * 4 * 9 + 8) + (4 * 9 + 2) + (2 * 2 + 1)
    assert leaf == 955 < PART_PARAM_BUDGET
    for c in onto.leaves():
        assert r["concepts"][c]["params"] == leaf, c
    for c in onto.composites():
        assert r["concepts"][c]["params"] == 9 * len(onto.parts(c)) + 7, c
    assert r["params"] == sum(m["params"] for m in r["concepts"].values())
    assert r["architecture"] == {"leaf_input_size": 32, "pool": 2, "image_size": 64, "leaf_params": leaf}
    for c, m in r["concepts"].items():
        assert m["val_accuracy"] is None or 0.0 <= m["val_accuracy"] <= 1.0, c
        assert m["train_examples"] > 0, c
    assert r["concepts"][onto.root]["train_examples"] == int(images.mask("train").sum())
    assert 0.0 <= r["val_accuracy"] <= 1.0 and 0.0 <= r["balanced_accuracy"] <= 1.0


def test_the_prototype_nets_predict_probabilities_on_crops_and_images():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    y = np.arange(16) % 2
    leaf = PrototypeLeafNet("petal", input_size=32, pool=2, max_epochs=1, batch_size=8).fit(crops, y)
    assert leaf.n_params == 955
    p = leaf.predict_proba(crops)
    assert p.shape == (16,) and ((p >= 0) & (p <= 1)).all()
    images = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    maps = leaf.feature_map(images)
    assert maps.ndim == 3 and maps.shape[0] == 2
    windows = leaf.score_map(images)
    assert windows.shape[0] == 2 and ((windows >= 0) & (windows <= 1)).all()

    X = rng.normal(size=(12, 2, 6, 6)).astype(np.float32)
    parent = PrototypeParentNet("flower_head", n_children=2, max_epochs=2).fit(X, np.arange(12) % 2)
    assert parent.n_params == 25
    q = parent.predict_proba(X)
    assert q.shape == (12,) and ((q >= 0) & (q <= 1)).all()
    assert parent.feature_map(X).shape == (12, 2, 2)


def test_maps_of_different_sides_are_padded_to_the_centre():
    maps = np.arange(8, dtype=np.float32).reshape(2, 2, 2) + 1
    out = _pad_to(maps, 4)
    assert out.shape == (2, 4, 4)
    assert (out[:, 1:3, 1:3] == maps).all() and out.sum() == maps.sum()
    assert _pad_to(maps, 2) is maps


@pytest.mark.parametrize("input_size, pool", [(16, 2), (64, 4)])
def test_inputs_too_small_for_the_stack_are_refused_by_name(input_size, pool):
    from workbench.errors import ModelError

    with pytest.raises(ModelError, match="petal.*input_size"):
        PrototypeLeafNet("petal", input_size=input_size, pool=pool)
