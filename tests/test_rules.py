"""Plain-code rules: features from crops, the shipped rules, the registry, RuleModel calibration, and
the rules' constants fitted from training segments (not hand-set), saved and loaded.

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
    at_least,
    at_most,
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
    """Paler-yellow discs score ~0.2 on the hand-set yellow_disk; calibrated, the rule still separates
    them from bars (constants kept hand-set here: this is about the threshold alone)."""
    pale = (230, 205, 60)  # saturation ~0.74: yellow, but not deep yellow
    X = np.stack([disc(pale, r=10), disc(pale, r=8), bar(pale), bar(WHITE)] * 3)
    y = np.array([1, 1, 0, 0] * 3)
    s = RuleModel("yellow_disk", "disk").scores(X)
    fixed = RuleModel("yellow_disk", "disk", calibrate=False, fit_constants=False).fit(X, y)
    calibrated = RuleModel("yellow_disk", "disk", fit_constants=False).fit(X, y)
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


# ------------------------------------------------------------------------------- fitted constants
PALE = (230, 205, 60)  # yellow, saturation ~0.74: below the hand-set "deep" condition (full from 0.82)


def oval(colour=YELLOW, rx=12.0, ry=6.0) -> np.ndarray:
    c = np.zeros((32, 32, 3), np.uint8)
    c[((YY - 16) / ry) ** 2 + ((XX - 16) / rx) ** 2 < 1] = colour
    return c


def pale_discs_vs_ovals_and_bars(k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Positives: pale-yellow discs. Negatives: deep-yellow ovals (2:1) and bars."""
    X = np.stack([disc(PALE, r=10), disc(PALE, r=8), disc(PALE, r=12), oval(YELLOW), bar(PALE), bar(WHITE)] * k)
    return X, np.array([1, 1, 1, 0, 0, 0] * k)


def test_fitted_constants_follow_the_training_positives() -> None:
    X, y = pale_discs_vs_ovals_and_bars()
    sat = np.array([segment_features(c).saturation for c in X[y == 1]])
    hand = RuleModel("yellow_disk", "disk", fit_constants=False).fit(X, y)
    fitted = RuleModel("yellow_disk", "disk").fit(X, y)
    defaults = get_rule("yellow_disk").defaults
    assert hand.constants_ == defaults and not hand.constants_fitted_
    assert fitted.constants_fitted_ and fitted.metrics_["constants_fitted"] is True
    # "deep" now holds fully where the positives are (it did not hand-set), and the ramp sits below them
    assert defaults["deep.hi"] > sat.max()
    assert fitted.constants_["deep.lo"] < fitted.constants_["deep.hi"] <= sat.min()
    assert (hand.scores(X[y == 1]) < 0.5).all() and (fitted.scores(X[y == 1]) == 1.0).all()
    # the 2:1 ovals score above the pale discs by hand, so no threshold separates them; fitted, all do
    assert hand.metrics_["train_balanced_accuracy"] < 1.0
    assert fitted.metrics_["train_balanced_accuracy"] == 1.0
    held_out = np.stack([disc(PALE, r=9), disc(PALE, r=11), oval(YELLOW, 13, 6), bar(PALE, width=5)])
    assert fitted.predict(held_out).tolist() == [True, True, False, False]
    assert hand.predict(held_out).tolist() != [True, True, False, False]
    assert "saturation ≥ " in fitted.describe() and "fitted on 6 training positives" in fitted.describe()


def test_shuffled_labels_give_other_constants() -> None:
    X, y = pale_discs_vs_ovals_and_bars(k=3)
    real = RuleModel("yellow_disk", "disk").fit(X, y)
    shuffled = RuleModel("yellow_disk", "disk").fit(X, np.random.default_rng(1).permutation(y))
    assert shuffled.constants_fitted_
    assert shuffled.constants_ != real.constants_
    # positives that include white bars: "most of it is yellow" can no longer demand much
    assert shuffled.constants_["yellow.hi"] < real.constants_["yellow.hi"]


def test_n_params_counts_every_learned_constant_and_the_threshold() -> None:
    X, y = pale_discs_vs_ovals_and_bars()
    n_constants = {"yellow_disk": 8, "white_elongated": 4, "green_elongated": 4}
    for rule, n in n_constants.items():
        assert len(get_rule(rule).defaults) == n
        assert RuleModel(rule, "c").n_params == n + 1  # before fit: what it would learn
        assert RuleModel(rule, "c", fit_constants=False).n_params == 1
    m = RuleModel("yellow_disk", "disk").fit(X, y)
    assert m.n_params == m.metrics_["n_params"] == 9
    assert RuleModel("yellow_disk", "disk", fit_constants=False).fit(X, y).n_params == 1


def test_too_few_positives_keep_the_hand_set_constants_and_say_so() -> None:
    X = np.stack([disc(PALE), disc(PALE, r=8), bar(WHITE), bar(PALE), oval()])
    m = RuleModel("yellow_disk", "disk").fit(X, np.array([1, 1, 0, 0, 0]))
    assert m.constants_ == get_rule("yellow_disk").defaults and not m.constants_fitted_
    assert m.n_params == m.metrics_["n_params"] == 1
    assert m.metrics_["constants_fitted"] is False and "3 needed" in m.metrics_["constants_source"]
    assert "hand-set" in m.describe()


def test_a_rule_without_conditions_has_one_parameter() -> None:
    name = "test_plain_bright"
    try:
        @register_rule(name, "Anything bright.")
        def bright(f: SegmentFeatures) -> float:
            return ramp(f.value, 0.4, 0.8)

        X = np.stack([disc(WHITE), disc((30, 30, 30))] * 4)
        m = RuleModel(name, "bright").fit(X, np.array([1, 0] * 4))
        assert m.n_params == 1 and m.constants_ == {} and not m.constants_fitted_
        assert "declares no conditions" in m.constants_source_
    finally:
        RULES.pop(name, None)


def test_a_registered_rule_with_conditions_is_fitted(tmp_path: Path) -> None:
    name = "test_red_round"
    try:
        @register_rule(name, "Red and round.", conditions={
            "red": at_least("saturation", 0.5, 0.9),
            "round": at_most("elongation", 1.5, 3.0),
        })
        def red_round(c) -> float:
            return min(c["red"], c["round"])

        X = np.stack([disc(RED), disc(RED, r=7), bar(RED), disc(WHITE)] * 3)
        y = np.array([1, 1, 0, 0] * 3)
        m = RuleModel(name, "red").fit(X, y)
        assert m.n_params == 5 and set(m.constants_) == {"red.lo", "red.hi", "round.lo", "round.hi"}
        assert m.predict(X).tolist() == y.astype(bool).tolist()
        loaded = load_model(m.save(tmp_path / "red.safetensors"))
        assert loaded.constants_ == m.constants_
        np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))
    finally:
        RULES.pop(name, None)


def test_conditions_refuse_bad_declarations() -> None:
    with pytest.raises(ModelError, match="unknown feature 'yellowness'"):
        at_least("yellowness", 0.1, 0.2)
    with pytest.raises(ModelError, match="lo < hi"):
        at_most("elongation", 3.0, 2.0)
    with pytest.raises(ModelError, match="finite"):
        at_least("saturation", float("nan"), 0.5)
    with pytest.raises(ModelError, match="must be a Condition"):
        register_rule("test_bad", "x", conditions={"a": ("saturation", 0.1, 0.2)})


def test_validation_data_never_changes_what_is_learned() -> None:
    X, y = pale_discs_vs_ovals_and_bars()
    Xa, ya = pale_discs_vs_ovals_and_bars(k=1)
    Xb = np.stack([disc(YELLOW), bar(YELLOW), disc(WHITE), disc(GREEN)])
    yb = np.array([1, 0, 0, 0])
    fits = [RuleModel("yellow_disk", "disk").fit(X, y, *v) for v in ((None, None), (Xa, ya), (Xb, yb), (Xb, 1 - yb))]
    for m in fits[1:]:
        assert m.constants_ == fits[0].constants_ and m.threshold_ == fits[0].threshold_
        np.testing.assert_array_equal(m.predict_proba(X), fits[0].predict_proba(X))
    assert fits[2].metrics_["val_balanced_accuracy"] != fits[3].metrics_["val_balanced_accuracy"]  # only scored


def test_save_and_load_keep_the_learned_constants(tmp_path: Path) -> None:
    X, y = pale_discs_vs_ovals_and_bars()
    m = RuleModel("yellow_disk", "disk").fit(X, y)
    assert m.constants_ != get_rule("yellow_disk").defaults
    loaded = load_model(m.save(tmp_path / "disk.safetensors"))
    assert loaded.constants_ == m.constants_ and loaded.constants_fitted_ and loaded.n_params == 9
    probe = np.concatenate([X, pale_discs_vs_ovals_and_bars(k=1)[0], np.stack([disc(YELLOW), oval(PALE, 11, 8)])])
    np.testing.assert_array_equal(loaded.predict_proba(probe), m.predict_proba(probe))
    assert loaded.describe() == m.describe()


def _rewrite_state(path: Path, out: Path, state: dict, drop_config: tuple[str, ...] = ()) -> None:
    """Write ``path`` again as ``out`` with another ``state`` in its header (and config keys dropped)."""
    import json
    import struct

    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["workbench"])
    header["state"] = state
    header["config"] = {k: v for k, v in header["config"].items() if k not in drop_config}
    out.write_bytes(st_save(st_load(data), metadata={"workbench": json.dumps(header)}))


def test_a_state_saved_before_fitted_constants_loads_with_the_hand_set_ones(tmp_path: Path) -> None:
    X, y = pale_discs_vs_ovals_and_bars()
    m = RuleModel("yellow_disk", "disk").fit(X, y)
    path = m.save(tmp_path / "new.safetensors")
    old = tmp_path / "old.safetensors"
    _rewrite_state(path, old, {"threshold": 0.3, "rule_source_hash": "sha256:old"}, drop_config=("fit_constants",))
    loaded = load_model(old)
    assert loaded.fit_constants is False  # what such a file's model did
    assert loaded.constants_ == get_rule("yellow_disk").defaults and not loaded.constants_fitted_
    assert loaded.n_params == 1 and "saved before" in loaded.constants_source_
    hand = RuleModel("yellow_disk", "disk", calibrate=False, threshold=0.3, fit_constants=False).fit(X, y)
    np.testing.assert_array_equal(loaded.predict_proba(X), hand.predict_proba(X))
    # the model file the old code wrote (tests/fixtures/model_files_v1) reads the same way
    fixture = load_model(Path(__file__).parent / "fixtures" / "model_files_v1" / "RuleModel.safetensors")
    assert fixture.constants_ == get_rule("yellow_disk").defaults and fixture.n_params == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s["constants"].update({"deep.lo": float("nan")}), "finite"),
        (lambda s: s["constants"].update({"deep.hi": float("inf")}), "finite"),
        (lambda s: s["constants"].update({"deep.lo": "0.7"}), "finite"),
        (lambda s: s["constants"].update({"deep.lo": 0.9, "deep.hi": 0.8}), "lo < hi"),
        (lambda s: s["constants"].update({"purple.lo": 0.1}), r"unknown: \['purple.lo'\]"),
        (lambda s: s["constants"].pop("yellow.hi"), r"missing: \['yellow.hi'\]"),
        (lambda s: s.update({"constants": [0.1, 0.2]}), "mapping"),
        (lambda s: s.update({"constants_fitted": "yes"}), "true or false"),
        (lambda s: s.update({"bias": 0.1}), r"unknown key\(s\) \['bias'\]"),
    ],
)
def test_a_damaged_rule_state_is_refused_by_name(tmp_path: Path, change, message: str) -> None:
    X, y = pale_discs_vs_ovals_and_bars()
    m = RuleModel("yellow_disk", "disk").fit(X, y)
    state = m._state()[1]
    state["constants"] = dict(state["constants"])
    change(state)
    bad = tmp_path / "bad.safetensors"
    _rewrite_state(m.save(tmp_path / "good.safetensors"), bad, state)
    with pytest.raises(ModelError, match=f"bad.safetensors: .*{message}"):
        load_model(bad)


def test_a_fitted_ramp_stops_at_the_feature_bound() -> None:
    # petals: elongation from ~1 to 6; the ramp would run below 1, where no segment can be
    lo, hi = at_least("elongation", 1.2, 2.2).fit(np.array([1.05, 1.1, 3.0, 5.0, 6.0]))
    assert lo == 1.0 < hi < 1.1
    lo, hi = at_most("saturation", 0.2, 0.3).fit(np.array([0.9, 0.95, 0.97, 0.99]))
    assert 0.9 < lo < hi == 1.0
    # positives without any yellow: the condition holds everywhere in the feature's range
    c = at_least("yellow_fraction", 0.4, 0.7)
    lo, hi = c.fit(np.zeros(5))
    assert lo < hi == 0.0 and c.degree(segment_features(bar(WHITE)), lo, hi) == 1.0
    assert c.fit(np.array([0.5, np.nan, np.nan])) is None  # too few finite values: keep the default
