"""Tests for workbench/settings.py: defaults, file round trip, unknown keys, types, ranges, secrets."""
from __future__ import annotations

import dataclasses
import inspect

import pytest

from workbench.data.segment import SEGMENTERS
from workbench.errors import SettingsError
from workbench.evaluation.pipeline import compare, run
from workbench.workspace.settings import COMPOSITION_MODES, SEGMENTER_NAMES, Settings


def test_defaults_are_valid_and_documented_in_the_source():
    s = Settings()
    assert (s.segmenter, s.crop_size, s.torch_threads, s.workers, s.scheduler) == ("weightfree", 32, 1, 1, None)
    assert (s.random_state, s.llm_max_image_edge, s.composition) == (0, 1568, "segments")
    assert s.claude_model.startswith("claude-")
    source = inspect.getsource(Settings)
    for f in dataclasses.fields(Settings):  # a comment line right above every field
        lines = source.splitlines()
        i = next(k for k, ln in enumerate(lines) if ln.strip().startswith(f"{f.name}:"))
        assert lines[i - 1].strip().startswith("#"), f"field {f.name} has no comment"


def test_save_load_round_trip_is_exact_and_deterministic(tmp_path):
    s = Settings(segmenter="sam", segmenter_options={"points_per_side": 16, "nested": {"a": [1, 2]}},
                 sam_checkpoint="ckpt/sam_vit_b.pth", workers=2, scheduler="tcp://10.0.0.5:8786",
                 gate_min_gain=0.02, composition="prototype")
    path = tmp_path / "workbench.yaml"
    s.save(path)
    first = path.read_bytes()
    loaded = Settings.load(path)
    assert loaded == s
    loaded.save(path)
    assert path.read_bytes() == first
    assert b"points_per_side: 16" in first


def test_empty_or_partial_file_takes_defaults(tmp_path):
    path = tmp_path / "workbench.yaml"
    path.write_text("")
    assert Settings.load(path) == Settings()
    path.write_text("workers: 3\ngate_confidence: 1  # an int where a float is expected is fine\n")
    with pytest.raises(SettingsError, match="gate_confidence"):
        Settings.load(path)  # 1 is out of range [0.5, 1)
    path.write_text("workers: 3\ngate_max_loss: 0\n")
    s = Settings.load(path)
    assert s.workers == 3 and s.gate_max_loss == 0.0 and isinstance(s.gate_max_loss, float)


def test_unknown_key_is_named_with_a_suggestion_and_the_valid_keys(tmp_path):
    path = tmp_path / "workbench.yaml"
    path.write_text("crop_sise: 64\n")
    with pytest.raises(SettingsError) as e:
        Settings.load(path)
    msg = str(e.value)
    assert str(path) in msg and "'crop_sise'" in msg and "did you mean 'crop_size'" in msg
    for f in dataclasses.fields(Settings):
        assert f.name in msg


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("workers", "2", "an integer"),
        ("workers", True, "an integer"),
        ("crop_size", 32.0, "an integer"),
        ("gate_confidence", "high", "a number"),
        ("segmenter_options", [1, 2], "a mapping"),
        ("scheduler", 8786, "a string or null"),
        ("segmenter", None, "a string"),
    ],
)
def test_wrong_type_names_key_expected_and_got(key, value, expected):
    with pytest.raises(SettingsError) as e:
        Settings.from_dict({key: value}, "ws/workbench.yaml")
    msg = str(e.value)
    assert msg.startswith("ws/workbench.yaml:") and repr(key) in msg and expected in msg
    assert f"got {type(value).__name__}" in msg


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"segmenter": "slic"}, "one of weightfree, sam"),
        ({"composition": "magic"}, "one of segments, prototype"),
        ({"crop_size": 4}, "between 8 and 512"),
        ({"workers": 0}, "between 1"),
        ({"gate_confidence": 0.2}, r"\[0.5, 1\)"),
        ({"gate_min_gain": -0.1}, "balanced-accuracy"),
        ({"claude_model": " "}, "name a model"),
    ],
)
def test_out_of_range_values_are_refused(changes, match):
    with pytest.raises(SettingsError, match=match):
        Settings().replace(**changes)


def test_replace_validates_and_does_not_mutate():
    s = Settings()
    t = s.replace(workers=4, random_state=7)
    assert (t.workers, t.random_state, s.workers) == (4, 7, 1)
    with pytest.raises(SettingsError, match="unknown setting 'worker'.*did you mean 'workers'"):
        s.replace(worker=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.workers = 3  # type: ignore[misc]
    opts = {"scale": 50}
    u = s.replace(segmenter_options=opts)
    opts["scale"] = 1
    assert u.segmenter_options["scale"] == 50
    with pytest.raises(TypeError):
        u.segmenter_options["scale"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    "data",
    [
        {"api_key": "abc"},
        {"ANTHROPIC_API_KEY": "abc"},
        {"github_token": "abc"},
        {"client_secret": "abc"},
        {"password": "abc"},
        {"segmenter_options": {"auth": {"access_token": "abc"}}},
    ],
)
def test_secret_keys_are_refused_pointing_to_the_environment(data):
    with pytest.raises(SettingsError, match="secret.*environment"):
        Settings.from_dict(data)


def test_secret_values_are_refused_and_never_echoed():
    canary = "sk-ant-api03-CANARY0123456789"
    for data in ({"claude_model": canary}, {"segmenter_options": {"x": [canary]}}, {"segmenter": [canary]}):
        with pytest.raises(SettingsError) as e:
            Settings.from_dict(data)
        assert "CANARY" not in str(e.value)


def test_not_a_mapping_and_bad_yaml(tmp_path):
    path = tmp_path / "workbench.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(SettingsError, match="mapping"):
        Settings.load(path)
    path.write_text("!!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(SettingsError, match="not allowed"):
        Settings.load(path)
    with pytest.raises(SettingsError, match="not found"):
        Settings.load(tmp_path / "missing.yaml")


def test_segmenter_and_composition_names_match_the_modules():
    assert set(SEGMENTER_NAMES) == set(SEGMENTERS)
    # the composition modes are the ones the main job trains and reports (`run(modes=...)`, default both
    # but in --quick runs); the name each reports under is checked in test_evaluate.py ("segments") and
    # test_prototype.py ("prototype")
    assert inspect.signature(run).parameters["modes"].default is None
    assert set(COMPOSITION_MODES) == set(inspect.signature(compare).parameters["modes"].default)


def test_composition_relations_is_a_boolean_setting():
    assert Settings().composition_relations is True
    assert Settings.from_dict({"composition_relations": False}).composition_relations is False
    with pytest.raises(SettingsError, match="composition_relations.*true or false"):
        Settings.from_dict({"composition_relations": "yes"})
