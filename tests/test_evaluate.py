"""The metrics of workbench/evaluation/evaluate.py: accuracy, balanced accuracy on imbalanced input,
per-concept and hybrid metrics and the reuse check on hand-built tables whose answers are counted by
hand, then the shuffled-labels control on a small trained workspace (the swap test and the ablation:
test_studies.py)."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.evaluation.evaluate import (
    accuracy,
    balanced_accuracy,
    concept_metrics,
    hybrid_metrics,
    load_images,
    reuse_check,
    shuffled_control,
)
from workbench.models.train import ImageTable, SegmentTable
from workbench.ontology.graph import Concept, Ontology
from workbench.workspace.settings import COMPOSITION_MODES

sys.path.insert(0, str(Path(__file__).parent))
from stub_models import Table, Weighted  # noqa: E402


# ---------------------------------------------------------------------------------------- accuracy
def test_accuracy_counts_decisions_at_the_threshold():
    y = np.array([1, 0, 1, 0])
    assert accuracy(y, np.array([0.9, 0.1, 0.5, 0.49])) == 1.0  # 0.5 is a yes
    assert accuracy(y, np.array([0.9, 0.1, 0.5, 0.49]), threshold=0.6) == 0.75
    assert accuracy(y, np.array([0.0, 1.0, 0.0, 1.0])) == 0.0
    assert accuracy(np.array([]), np.array([])) is None


def test_balanced_accuracy_of_a_constant_predictor_is_one_half_however_imbalanced():
    y = np.array([1] * 9 + [0])
    always, never = np.ones(10), np.zeros(10)
    assert accuracy(y, always) == 0.9 and balanced_accuracy(y, always) == 0.5
    assert accuracy(y, never) == 0.1 and balanced_accuracy(y, never) == 0.5


def test_balanced_accuracy_is_the_mean_of_the_two_recalls():
    y = np.array([1] * 8 + [0] * 2)
    p = np.array([1, 1, 1, 1, 1, 1, 0, 0, 1, 0], dtype=float)  # 6 of 8 positives, 1 of 2 negatives
    assert balanced_accuracy(y, p) == pytest.approx((6 / 8 + 1 / 2) / 2, abs=1e-4)
    assert accuracy(y, p) == 0.7
    assert balanced_accuracy(y, y.astype(float)) == 1.0
    assert balanced_accuracy(np.array([1, 1]), np.array([1.0, 0.0])) == 0.5  # one class: its recall
    assert balanced_accuracy(np.array([]), np.array([])) is None


# ----------------------------------------------------------------------- hand-built tables and models
PLANT = Ontology("toy", "plant", [
    Concept("plant", "Plant", parts=("flower", "stem")),
    Concept("flower", "Flower", parts=("disk", "petal")),
    Concept("disk", "Disk", implementation="rule", rule="yellow_disk"), Concept("petal", "Petal"),
    Concept("stem", "Stem"),
])

IMAGES = [("plant", "train"), ("plant", "val"), ("plant", "val"), ("other", "train"), ("other", "val"),
          ("other", "val")]
# (image, label, disk, petal, stem); training segments are scored wrongly on purpose, so metrics that
# used them would not come out as counted below
SEGMENTS = [
    (0, "disk", 0.1, 0.0, 0.0),   # 0  train
    (0, "petal", 0.0, 0.2, 0.0),  # 1  train
    (1, "disk", 0.9, 0.1, 0.0),   # 2
    (1, "petal", 0.2, 0.8, 0.1),  # 3
    (1, "stem", 0.0, 0.0, 0.9),   # 4
    (2, "disk", 0.7, 0.3, 0.0),   # 5
    (2, "petal", 0.1, 0.6, 0.0),  # 6
    (2, None, 0.0, 0.0, 0.3),     # 7  unlabelled
    (4, "none", 0.2, 0.3, 0.1),   # 8
    (4, "stem", 0.1, 0.1, 0.8),   # 9
    (5, "none", 0.6, 0.1, 0.2),   # 10 disk fires on a background segment
    (3, "none", 0.9, 0.9, 0.9),   # 11 train
]


def tables() -> tuple[ImageTable, SegmentTable]:
    n = len(SEGMENTS)
    crops = np.zeros((n, 2, 2, 3), np.uint8)
    crops[:, 0, 0, 0] = np.arange(n)
    images = ImageTable(np.arange(len(IMAGES)), [f"{c}/{i}.png" for i, (c, _) in enumerate(IMAGES)],
                        [c for c, _ in IMAGES], [f"{i:064x}" for i in range(len(IMAGES))],
                        np.array([s for _, s in IMAGES]))
    segments = SegmentTable(np.arange(100, 100 + n), np.array([s[0] for s in SEGMENTS]),
                            np.array([[10 * r, 0, 10 * r + 5, 5] for r in range(n)]), [s[1] for s in SEGMENTS], crops)
    return images, segments


def models(root=None):
    parts = {c: Table([s[k] for s in SEGMENTS]) for k, c in enumerate(("disk", "petal", "stem"), start=2)}
    return {**parts, "flower": Weighted([0.5, 0.5]), "plant": root or Weighted([0.8, 0.2])}


def test_concept_metrics_score_parts_on_labelled_validation_segments_only():
    images, segments = tables()
    m = concept_metrics(PLANT, models(), images, segments)
    assert list(m) == PLANT.bottom_up()
    disk = m["disk"]
    # validation segments 2..10 but the unlabelled 7: disk on 2 and 5, and a false alarm on 10
    assert (disk["val_examples"], disk["val_positives"]) == (8, 2)
    assert disk["val_accuracy"] == 0.875 and disk["val_balanced_accuracy"] == pytest.approx((1 + 5 / 6) / 2, abs=1e-4)
    assert (disk["kind"], disk["implementation"], disk["model"], disk["params"]) == ("part", "rule", "Table", 1)
    assert m["petal"]["val_accuracy"] == 1.0 and m["stem"]["val_accuracy"] == 1.0
    assert (m["petal"]["implementation"], m["petal"]["val_positives"]) == ("net", 2)


def test_concept_metrics_score_composites_on_validation_images():
    images, segments = tables()
    m = concept_metrics(PLANT, models(), images, segments)
    # flower: present where a disk and a petal are labelled (images 0, 1, 2); 0.5·disk + 0.5·petal
    # on validation images 1, 2, 4, 5 is .85, .65, .25, .35: all right
    assert (m["flower"]["kind"], m["flower"]["val_examples"], m["flower"]["val_positives"]) == ("composite", 4, 2)
    assert m["flower"]["val_accuracy"] == 1.0 and m["flower"]["params"] == 3
    # plant: 0.8·flower + 0.2·stem is .86, .58, .36, .32 on them (and wrong on both training images)
    assert (m["plant"]["kind"], m["plant"]["val_accuracy"], m["plant"]["val_balanced_accuracy"]) == ("root", 1.0, 1.0)


def test_hybrid_metrics_are_the_roots_on_validation_images():
    images, segments = tables()
    h = hybrid_metrics(PLANT, models(), images, segments)
    assert h["mode"] == "segments" and h["mode"] in COMPOSITION_MODES
    assert (h["val_accuracy"], h["balanced_accuracy"], h["val_images"]) == (1.0, 1.0, 4)
    assert h["params"] == 1 + 1 + 1 + 3 + 3
    constant = hybrid_metrics(PLANT, models(root=Weighted([0.0, 0.0], bias=1.0)), images, segments)
    assert (constant["val_accuracy"], constant["balanced_accuracy"]) == (0.5, 0.5)


def test_reuse_check_counts_where_each_part_fires():
    images, segments = tables()
    r = reuse_check(PLANT, models(), images, segments)
    disk = r["disk"]
    assert disk["by_label"] == {"disk": {"n": 2, "fire_rate": 1.0}, "none": {"n": 2, "fire_rate": 0.5},
                                "petal": {"n": 2, "fire_rate": 0.0}, "stem": {"n": 2, "fire_rate": 0.0}}
    # validation segments by image class (the unlabelled one included): plant 2 of 6, other 1 of 3
    assert disk["by_image_class"] == {"other": {"n": 3, "fire_rate": 0.333}, "plant": {"n": 6, "fire_rate": 0.333}}
    # labelled segments of another label where the part fires, strongest first (training ones too)
    assert disk["hard_negatives"] == [{"segment_id": 111, "label": "none", "score": 0.9},
                                      {"segment_id": 110, "label": "none", "score": 0.6}]
    assert r["petal"]["by_label"]["petal"] == {"n": 2, "fire_rate": 1.0}
    assert set(r) == {"disk", "petal", "stem"}


def test_load_images_reports_what_it_cannot_read(tmp_path):
    from PIL import Image

    Image.new("RGB", (6, 4), (10, 20, 30)).save(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    images = ImageTable(np.arange(3), ["ok.png", "broken.png", "missing.png"], ["a"] * 3, ["0"] * 3)
    pixels, problems = load_images(images, tmp_path)
    assert pixels[0].shape == (4, 6, 3) and pixels[1] is None and pixels[2] is None
    assert [p for p, _ in problems] == [str(tmp_path / "broken.png"), str(tmp_path / "missing.png")]
    assert all(reason for _, reason in problems)


# ------------------------------------------------------------------------ on a small trained workspace
def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_shuffled_control_is_reproducible_and_changes_nothing(trained):
    onto, images, segments = trained.ws.ontology, trained.images, trained.segments
    labels = list(segments.labels)
    saved = _digest(trained.ws.models_dir)
    first = shuffled_control(onto, images, segments, trained.config)
    assert "error" not in first, first
    assert 0.0 <= first["balanced_accuracy"] <= 1.0 and "permuted" in first["method"] and "rules" in first["method"]
    assert first["on"] == "test"  # the trained workspace keeps test images aside
    again = shuffled_control(onto, images, segments, trained.config)
    np.testing.assert_array_equal(again.pop("_scores"), first.pop("_scores"))  # seeded by random_state
    assert again == first
    assert segments.labels == labels  # the table's labels are not shuffled in place
    assert _digest(trained.ws.models_dir) == saved


def test_a_control_that_cannot_train_is_reported_not_raised(trained):
    images, segments = trained.images, trained.segments
    unlabelled = SegmentTable(segments.segment_ids, segments.image_index, segments.bboxes,
                              [None] * len(segments), segments.crops)
    out = shuffled_control(trained.ws.ontology, images, unlabelled, trained.config)
    assert out["balanced_accuracy"] is None and "positive" in out["error"]
