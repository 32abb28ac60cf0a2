"""Plain-code rules: features from crops, the shipped rules, the registry, and RuleModel calibration.

The shared contract (fit/predict/save/load/refusals) is checked for RuleModel in test_models.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.errors import ModelError
from workbench.models.loading import load_model
from workbench.models.rules import (
    RULES,
    RuleModel,
    SegmentFeatures,
    get_rule,
    ramp,
    register_rule,
    segment_features,
)

YY, XX = np.mgrid[:32, :32]


def disc(colour=(230, 190, 20), r=10.0, size=32) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    c = np.zeros((size, size, 3), np.uint8)
    c[(yy - size // 2) ** 2 + (xx - size // 2) ** 2 < r * r] = colour
    return c


def bar(colour=(240, 240, 235), width=4, length=28) -> np.ndarray:
    c = np.zeros((32, 32, 3), np.uint8)
    c[16 - width // 2 : 16 + width - width // 2, 16 - length // 2 : 16 + length // 2] = colour
    return c


YELLOW, WHITE, GREEN, RED = (230, 190, 20), (240, 240, 235), (40, 150, 40), (200, 30, 30)


def test_features_of_a_yellow_disc() -> None:
    f = segment_features(disc(YELLOW, r=10))
    assert f.yellow_fraction == 1.0 and f.white_fraction == 0.0 and f.green_fraction == 0.0
    assert 40 <= f.hue <= 60
    assert f.elongation == pytest.approx(1.0, abs=0.05)
    assert f.eccentricity < 0.3 and f.solidity > 0.9 and f.circularity > 0.8
    assert f.area_fraction == pytest.approx(np.pi * 100 / 1024, rel=0.05)
    assert f.center_x is None and f.image_fraction is None


def test_features_of_a_white_bar() -> None:
    f = segment_features(bar(WHITE, width=4, length=28))
    assert f.white_fraction == 1.0 and f.yellow_fraction == 0.0
    assert f.elongation > 5 and f.eccentricity > 0.95


def test_position_needs_the_box_and_the_image() -> None:
    f = segment_features(disc(), bbox=(0, 300, 100, 400), image_shape=(400, 200, 3), area=5000)
    assert f.center_x == pytest.approx(0.25) and f.center_y == pytest.approx(0.875)
    assert f.image_fraction == pytest.approx(5000 / 80000)


def test_a_given_mask_replaces_the_black_background_guess() -> None:
    c = disc(YELLOW, r=10)
    c[16, 16] = 0  # a black pixel inside the disc: the guess drops it, a mask keeps it
    mask = (YY - 16) ** 2 + (XX - 16) ** 2 < 100
    assert segment_features(c).area_fraction < segment_features(c, mask).area_fraction
    with pytest.raises(ModelError, match="mask shape"):
        segment_features(c, mask[:10])
    with pytest.raises(ModelError, match="uint8 S×S×3"):
        segment_features(c.astype(float))


def test_empty_crop_has_zero_features() -> None:
    f = segment_features(np.zeros((32, 32, 3), np.uint8))
    assert f.area_fraction == 0 and all(get_rule(n)(f) == 0 for n in RULES)


@pytest.mark.parametrize(
    "rule, positive, negatives",
    [
        ("yellow_disk", disc(YELLOW), [bar(YELLOW), disc(WHITE), disc(GREEN), bar(WHITE), disc(RED)]),
        ("white_elongated", bar(WHITE, width=5, length=20), [disc(WHITE), bar(YELLOW), bar(GREEN), disc(YELLOW)]),
        ("green_elongated", bar(GREEN, width=3, length=30), [disc(GREEN), bar(WHITE), bar(YELLOW)]),
    ],
)
def test_shipped_rules_fire_on_their_concept_only(rule: str, positive: np.ndarray, negatives: list[np.ndarray]) -> None:
    r = get_rule(rule)
    assert r(segment_features(positive)) == 1.0
    for neg in negatives:
        assert r(segment_features(neg)) < 0.5


def test_registry_names_unknown_rules_and_refuses_duplicates() -> None:
    with pytest.raises(ModelError, match=r"unknown rule 'purple_thing': known rules are .*yellow_disk"):
        get_rule("purple_thing")
    with pytest.raises(ModelError, match="unknown rule"):
        RuleModel("purple_thing", "disk")
    with pytest.raises(ModelError, match="already registered"):
        register_rule("yellow_disk", "again")(lambda f: 1.0)


def test_a_registered_rule_works_in_a_model(tmp_path: Path) -> None:
    name = "test_bright_thing"
    try:
        @register_rule(name, "Anything bright.")
        def bright(f: SegmentFeatures) -> float:
            return ramp(f.value, 0.4, 0.8)

        X = np.stack([disc(WHITE), disc((30, 30, 30))] * 4)
        m = RuleModel(name, "bright").fit(X, np.array([1, 0] * 4))
        assert m.predict(X).tolist() == [True, False] * 4
        loaded = load_model(m.save(tmp_path / "bright.safetensors"))
        np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))
        assert "Anything bright" in m.describe()
    finally:
        RULES.pop(name, None)


def test_calibration_moves_the_threshold_to_the_data() -> None:
    """Paler-yellow discs score ~0.2 on yellow_disk; calibrated, the rule still separates them from bars."""
    pale = (230, 205, 60)  # saturation ~0.74: yellow, but not deep yellow
    X = np.stack([disc(pale, r=10), disc(pale, r=8), bar(pale), bar(WHITE)] * 3)
    y = np.array([1, 1, 0, 0] * 3)
    s = RuleModel("yellow_disk", "disk").scores(X)
    fixed = RuleModel("yellow_disk", "disk", calibrate=False).fit(X, y)
    calibrated = RuleModel("yellow_disk", "disk").fit(X, y)
    assert fixed.threshold_ == 0.5 and fixed.metrics_["train_balanced_accuracy"] == 0.5
    assert calibrated.metrics_["train_balanced_accuracy"] == 1.0
    assert calibrated.threshold_ <= s[y == 1].min()
    # the probability is monotone in the score and puts the threshold at 0.5
    p = calibrated.predict_proba(X)
    assert np.all(np.diff(p[np.argsort(s)]) >= 0)
    assert np.all((p >= 0.5) == (s >= calibrated.threshold_))


def test_fixed_threshold_without_calibration_needs_no_negatives() -> None:
    X = np.stack([disc(YELLOW)] * 3)
    m = RuleModel("yellow_disk", "disk", calibrate=False, threshold=0.3).fit(X, np.ones(3, int))
    assert m.threshold_ == 0.3 and m.predict(X).all()
    with pytest.raises(ModelError, match="positive and negative"):
        RuleModel("yellow_disk", "disk").fit(X, np.ones(3, int))


def test_rule_model_takes_precomputed_features() -> None:
    crops = np.stack([disc(YELLOW), bar(WHITE)] * 3)
    feats = [segment_features(c) for c in crops]
    y = np.array([1, 0] * 3)
    a = RuleModel("yellow_disk", "disk").fit(crops, y)
    b = RuleModel("yellow_disk", "disk").fit(feats, y)
    np.testing.assert_array_equal(a.predict_proba(crops), b.predict_proba(feats))
    with pytest.raises(ModelError, match="segment crops"):
        a.predict_proba(crops.astype(np.float32))
    with pytest.raises(ModelError, match="SegmentFeatures"):
        a.predict_proba([1, 2, 3])


def test_rule_file_records_the_rule_source(tmp_path: Path) -> None:
    from workbench.models.files import read_model_info

    m = RuleModel("yellow_disk", "disk").fit(np.stack([disc(), bar()] * 2), np.array([1, 0] * 2))
    info = read_model_info(m.save(tmp_path / "disk.safetensors"))
    assert info["config"]["rule"] == "yellow_disk" and info["n_params"] == 1
    assert info["state"]["rule_source_hash"] == get_rule("yellow_disk").source_hash
