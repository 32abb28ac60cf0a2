"""Tests for the generated scenes of workbench/data/datasets.py's ``generate_demo``: the ``parts``
daisy scene and the ``house`` scene (layout, determinism, part masks against parts.json and the
ontology, the class following from the parts) and their part-blind ceiling."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.data._demo_scene import render_scene as render_original
from workbench.data.datasets import (
    DEMO_CLASSES,
    DEMO_PARTS,
    DEMO_SCENES,
    PARTS_FILE,
    PARTS_SUFFIX,
    check_dataset,
    generate_demo,
)
from workbench.errors import DatasetError
from workbench.evaluation.blind import balanced_accuracy, fit_baseline, stratified_split
from workbench.ontology.graph import Ontology

REPO = Path(__file__).resolve().parents[1]
NEW_SCENES = ("parts", "house")
#: Per scene, two ontology parts that a positive always shows together and a negative never does.
DECIDING = {"parts": ("petal", "leaf"), "house": ("door", "window")}


def _ontology(scene: str) -> Ontology:
    return Ontology.load(REPO / "ontologies" / f"{DEMO_SCENES[scene].ontology}.yaml")


@pytest.fixture(scope="module", params=NEW_SCENES)
def small_set(request, tmp_path_factory):
    scene = request.param
    return scene, generate_demo(tmp_path_factory.mktemp(scene) / "set", n_per_class=10, size=128, seed=2, scene=scene)


def test_layout_parts_json_and_marker(small_set):
    scene, folder = small_set
    spec = DEMO_SCENES[scene]
    assert folder.classes == sorted(spec.classes) and len(folder.records) == 20
    for cls in spec.classes:
        names = sorted(p.name for p in (folder.root / cls).iterdir())
        assert names == sorted([f"{i:04d}.png" for i in range(10)] + [f"{i:04d}{PARTS_SUFFIX}" for i in range(10)])
    parts = json.loads((folder.root / PARTS_FILE).read_text())
    assert {int(k): v for k, v in parts.items()} == spec.parts == folder.parts_map
    marker = json.loads((folder.root / "demo.json").read_text())
    assert marker["scene"] == scene and marker["classes"] == list(spec.classes)
    report = check_dataset(folder.root)
    assert report.ok and sum(report.with_parts.values()) == 20


def test_part_masks_name_the_ontology_concepts(small_set):
    """parts.json names every part of the scene's ontology, and nothing else that is a concept; every
    mask index is in parts.json; masks are exact (an image pixel's colour is drawn with its mask value)."""
    scene, folder = small_set
    onto = _ontology(scene)
    assert onto.root == DEMO_SCENES[scene].classes[0]
    named = set(folder.parts_map.values())
    assert set(onto.leaves()) <= named
    assert named & set(onto.concepts) == set(onto.leaves())
    for rec in folder.records:
        mask = folder.load_parts(rec)  # raises on an index parts.json does not name
        assert mask.shape == folder.load(rec).shape[:2]
        assert set(np.unique(mask).tolist()) - {0} <= set(folder.parts_map)


def test_the_class_follows_from_the_parts(small_set):
    """Ground-truth part presence decides the class: a positive shows every part of the ontology, a
    negative never shows both deciding parts. (So the ontology's concepts suffice.)"""
    scene, folder = small_set
    onto = _ontology(scene)
    index = {c: i for i, c in folder.parts_map.items()}
    a, b = DECIDING[scene]
    for rec in folder.records:
        counts = np.bincount(folder.load_parts(rec).ravel(), minlength=max(folder.parts_map) + 1)
        present = {c for c in onto.leaves() if counts[index[c]] > 0}
        if rec.label == DEMO_SCENES[scene].classes[0]:
            assert present == set(onto.leaves()), rec.id
        else:
            assert not {a, b} <= present, rec.id


@pytest.mark.parametrize("scene", NEW_SCENES)
def test_deterministic_and_seeded(scene, tmp_path):
    one = generate_demo(tmp_path / "one", n_per_class=2, size=96, seed=5, scene=scene)
    two = generate_demo(tmp_path / "two", n_per_class=2, size=96, seed=5, scene=scene)
    other = generate_demo(tmp_path / "other", n_per_class=2, size=96, seed=6, scene=scene)
    files = sorted(p.relative_to(one.root) for p in one.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two.root) for p in two.root.rglob("*") if p.is_file())
    assert all((one.root / f).read_bytes() == (two.root / f).read_bytes() for f in files)
    assert any((one.root / f).read_bytes() != (other.root / f).read_bytes() for f in files if f.suffix == ".png")


def test_the_default_scene_is_unchanged(tmp_path):
    """The default is the original daisy scene: its pixels come from the original drawing code, its
    parts.json and demo.json are as before (no ``scene`` key)."""
    folder = generate_demo(tmp_path / "d", n_per_class=2, size=64, seed=7)
    same = generate_demo(tmp_path / "e", n_per_class=2, size=64, seed=7, scene="daisy")
    assert folder.classes == list(DEMO_CLASSES) and folder.parts_map == DEMO_PARTS
    assert "scene" not in json.loads((folder.root / "demo.json").read_text())
    for ci, cls in enumerate(DEMO_CLASSES):
        for i in range(2):
            rgb, mask = render_original(np.random.default_rng([7, ci, i]), 64, positive=(ci == 0))
            assert np.array_equal(np.asarray(Image.open(folder.root / cls / f"{i:04d}.png")), rgb)
            assert np.array_equal(np.asarray(Image.open(folder.root / cls / f"{i:04d}{PARTS_SUFFIX}")), mask)
            assert (folder.root / cls / f"{i:04d}.png").read_bytes() == (same.root / cls / f"{i:04d}.png").read_bytes()


def test_an_unknown_scene_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="unknown demo scene 'castle'.*daisy, parts, house"):
        generate_demo(tmp_path / "x", n_per_class=1, size=64, scene="castle")
    assert not (tmp_path / "x").exists()


#: The ceiling set: images per class and side. 60 per class split 50/25/25 leaves 30 held-out test
#: images. Why that does not flake: over generation seeds 0-7 at this size every baseline scored at
#: most 70% on both scenes (mean 52%); one standard deviation on 30 test images is about 9 points,
#: so 75% is about 2.5 of them above the mean; and generation and split are seeded, so a given code
#: version always gets the same answer. 128² is the size the baselines work at anyway.
CEILING_SET = (60, 128, 11)


def _ceiling_scores(scene: str, root: Path, names: tuple[str, ...]) -> dict[str, tuple[float, dict]]:
    n, size, seed = CEILING_SET
    folder = generate_demo(root, n_per_class=n, size=size, seed=seed, scene=scene)
    positive = DEMO_SCENES[scene].classes[0]
    images = [folder.load(r) for r in folder.records]
    y = np.array([int(r.label == positive) for r in folder.records])
    tr, va, te = stratified_split(y, seed=seed)
    out = {}
    for name in names:
        model = fit_baseline(name, [images[i] for i in tr], y[tr], [images[i] for i in va], y[va], seed=seed)
        out[name] = (balanced_accuracy(y[te], model.predict_proba([images[i] for i in te])), model.choice)
    return out


@pytest.mark.parametrize("scene", NEW_SCENES)
def test_colour_baselines_stay_at_or_below_the_ceiling(scene, tmp_path):
    """The three colour baselines, fitted on a fresh set, score at most 75% balanced accuracy on the
    held-out test images (see :data:`CEILING_SET` for the size)."""
    scores = _ceiling_scores(scene, tmp_path / "set", ("colour_histogram", "colour_layout", "colour_threshold"))
    for name, (score, choice) in scores.items():
        assert score <= 0.75, (scene, name, score, choice)


@pytest.mark.slow
@pytest.mark.parametrize("scene", NEW_SCENES)
def test_the_blurred_cnn_stays_at_or_below_the_ceiling(scene, tmp_path):
    """The same for the optional blurred CNN (the slowest baseline, so marked slow)."""
    (score, choice), = _ceiling_scores(scene, tmp_path / "set", ("blurred_cnn",)).values()
    assert score <= 0.75, (scene, score, choice)


def test_the_original_scene_is_read_by_colour_alone(tmp_path):
    """The control of the test above: on the default scene, the same set-up lets the single colour
    statistic read the class well above the ceiling (so the ceiling test can fail)."""
    n, size, seed = CEILING_SET
    folder = generate_demo(tmp_path / "set", n_per_class=n, size=size, seed=seed)
    images = [folder.load(r) for r in folder.records]
    y = np.array([int(r.label == DEMO_CLASSES[0]) for r in folder.records])
    tr, va, te = stratified_split(y, seed=seed)
    model = fit_baseline("colour_threshold", [images[i] for i in tr], y[tr], [images[i] for i in va], y[va])
    assert balanced_accuracy(y[te], model.predict_proba([images[i] for i in te])) > 0.75
