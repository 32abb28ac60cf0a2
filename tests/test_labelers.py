"""Ground-truth labeler: the concept whose mask covers most of a segment, recorded as ground truth."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.data.datasets import generate_demo
from workbench.data.labelers import (
    GROUND_TRUTH_AUTHOR,
    concept_for_segment,
    label_from_masks,
)
from workbench.data.segment import WeightFreeSegmenter, segment_dataset, settings_hash
from workbench.data.store import LabelStore

ONTOLOGY = ["daisy", "flower_head", "petal", "disk", "stem", "leaf"]


def test_majority_rule_and_threshold():
    parts = np.zeros((10, 10), int)
    parts[:, :6] = 1  # petal
    parts[:, 6:] = 7  # sun: not an ontology concept
    everything = np.ones((10, 10), bool)
    m = {1: "petal"}
    assert concept_for_segment(everything, parts, m) == "petal"  # 60 %
    assert concept_for_segment(everything, parts, m, min_overlap=0.7) == "none"
    assert concept_for_segment(everything, parts, {1: "petal", 7: "disk"}) == "petal"
    right = np.zeros((10, 10), bool)
    right[:, 5:] = True  # 10 % petal, 90 % sun
    assert concept_for_segment(right, parts, m) == "none"
    assert concept_for_segment(np.zeros((10, 10), bool), parts, m) == "none"
    # two indices mapping to one concept add up
    parts[:, 6:] = 2
    assert concept_for_segment(right, parts, {1: "petal", 2: "petal"}) == "petal"


@pytest.fixture()
def stored(tmp_path):
    folder = generate_demo(tmp_path / "demo", n_per_class=2, size=192, seed=3)
    seg = WeightFreeSegmenter()
    store = LabelStore(tmp_path / "labels.sqlite")
    segment_dataset(store, folder, seg, progress=False)
    yield store, folder, settings_hash(seg)
    store.close()


def test_labels_match_the_masks_and_are_marked_ground_truth(stored):
    store, folder, shash = stored
    report = label_from_masks(store, folder, ONTOLOGY, settings_hash=shash)
    segments = store.segments(settings_hash=shash)
    assert sum(report.labelled.values()) == len(segments) and report.images == len(folder.records)
    assert report.labelled["petal"] > 0 and report.labelled["disk"] > 0 and report.labelled["none"] > 0
    index = {c: i for i, c in folder.parts_map.items()}
    by_path = {r.id: r for r in folder.records}
    for s in segments:
        label = store.label(s.id)
        assert label.source == "ground_truth" and label.author == GROUND_TRUTH_AUTHOR
        image = store.image(s.image_id)
        parts = folder.load_parts(by_path[image.path])
        mask = s.mask()
        if label.concept != "none":
            assert (parts[mask] == index[label.concept]).mean() >= 0.5
            assert label.concept in ONTOLOGY
        if image.class_label == "not_daisy":
            assert label.concept != "petal"  # negatives hold other flowers' petals: not in the ontology
    assert "ground_truth" in report.summary()


def test_rerun_is_idempotent_and_a_persons_label_is_kept(stored):
    store, folder, shash = stored
    first = store.segments(settings_hash=shash)[0]
    store.set_label(first.id, "leaf", source="person", author="ana")
    report = label_from_masks(store, folder, ONTOLOGY, settings_hash=shash)
    assert report.kept_person == 1
    again = label_from_masks(store, folder, ONTOLOGY, settings_hash=shash)
    assert sum(again.labelled.values()) == 0 and again.unchanged == len(store.segments()) - 1
    assert store.label(first.id).source == "person" and store.label(first.id).concept == "leaf"


def test_concepts_outside_the_ontology_are_none(stored):
    store, folder, shash = stored
    report = label_from_masks(store, folder, ["daisy", "disk"], settings_hash=shash)
    assert set(report.labelled) <= {"disk", "none"} and report.labelled["disk"] > 0


def test_min_overlap_validated(stored):
    store, folder, _ = stored
    with pytest.raises(Exception, match="min_overlap"):
        label_from_masks(store, folder, ONTOLOGY, min_overlap=0)
