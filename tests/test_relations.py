"""Relations between parts (``TrainConfig.composition_relations``): near(A,B), the best co-located evidence of two
child parts, as an extra named input of a composite — its definition, the model, scoring and
explanations, and the fingerprint."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.errors import ModelError
from workbench.models.hybrid import (
    HybridClassifier,
    near_pairs,
    relation_pairs,
    relation_scores,
    score_images,
)
from workbench.models.loading import load_model
from workbench.models.nets import CompositeNet
from workbench.ontology.graph import Ontology

DAISY = Ontology.load(Path(__file__).resolve().parents[1] / "ontologies" / "daisy.yaml")


def test_near_pairs_pairs_touching_boxes_of_one_image_only():
    boxes = np.array([[0, 0, 10, 10],     # 0: image 0
                      [8, 0, 18, 10],     # 1: image 0, next to 0
                      [100, 100, 110, 110],  # 2: image 0, far from both
                      [8, 0, 18, 10]])    # 3: image 1, where 1 is in image 0
    s, t = near_pairs(boxes, np.array([0, 0, 0, 1]))
    assert sorted(zip(s.tolist(), t.tolist())) == [(0, 1), (1, 0)]  # never a segment with itself


def test_near_pairs_pairs_a_ring_with_the_box_it_surrounds():
    ring, centre = [20, 20, 80, 80], [45, 45, 55, 55]
    s, t = near_pairs(np.array([ring, centre]), np.array([0, 0]))
    assert len(s) == 2


def test_relation_scores_take_the_best_near_product_and_name_its_segments():
    boxes = np.array([[0, 0, 10, 10], [8, 0, 18, 10], [100, 100, 110, 110], [0, 0, 4, 4]])
    index = np.array([0, 0, 0, 1])
    a = np.array([0.9, 0.1, 0.0, 0.9])  # A strong on segment 0 (and alone in image 1)
    b = np.array([0.0, 0.8, 1.0, 0.0])  # B strongest on the far segment 2, weaker next to A
    v, win = relation_scores(a, b, near_pairs(boxes, index), index, 2)
    assert v[0] == pytest.approx(0.9 * 0.8)  # not 0.9 * 1.0: segment 2 is not near segment 0
    assert win[0].tolist() == [0, 1]
    assert v[1] == 0.0 and win[1].tolist() == [-1, -1]  # one segment: no pair


def test_relation_pairs_are_the_pairs_of_child_parts():
    assert relation_pairs(DAISY, "flower_head") == (("disk", "petal"),)
    assert relation_pairs(DAISY, "daisy") == (("leaf", "stem"),)  # flower_head is no part


def scattered_or_together(n: int, seed: int = 0):
    """Both classes have A and B present; only in class 1 are they together: [A, B, near(A,B)]."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    a, b = rng.uniform(0.7, 1.0, n), rng.uniform(0.7, 1.0, n)
    near = np.where(y == 1, a * b, rng.uniform(0.0, 0.1, n))
    return np.stack([a, b, near], axis=1), y


def test_the_relation_separates_what_the_children_maxima_cannot(tmp_path):
    X, y = scattered_or_together(200)
    Xv, yv = scattered_or_together(200, seed=1)
    without = CompositeNet("flower_head", children=("disk", "petal"), interactions=True).fit(X[:, :2], y)
    with_rel = CompositeNet("flower_head", children=("disk", "petal"), interactions=True,
                            relations=(("disk", "petal"),)).fit(X, y)
    acc = lambda m, Z: float(np.mean((m.predict_proba(Z) >= 0.5) == yv))  # noqa: E731
    assert acc(without, Xv[:, :2]) < 0.7
    assert acc(with_rel, Xv) > 0.95
    assert with_rel.n_params == 1 + 2 + 1 + 1
    assert "near(disk,petal)" in with_rel.formula()
    # saved and loaded: the same relations, the same predictions
    back = load_model(with_rel.save(tmp_path / "fh.safetensors"))
    assert back.relations == (("disk", "petal"),)
    assert np.allclose(back.predict_proba(Xv), with_rel.predict_proba(Xv))


def test_a_relation_must_name_children_and_the_error_names_the_concept():
    with pytest.raises(ModelError, match="flower_head.*leaf"):
        CompositeNet("flower_head", children=("disk", "petal"), relations=(("disk", "leaf"),))


class Const:
    """A part 'model' that scores a segment by a fixed table (by the crop's first pixel)."""

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float64)

    def predict_proba(self, X):
        return self.table[np.asarray(X)[:, 0, 0, 0].astype(int)]


def _toy_models():
    # segments 0..3 of one image; 0 a disk, 1 a petal next to it, 2 a petal far away, 3 leaf/stem
    parts = {"disk": Const([0.9, 0.0, 0.0, 0.0]), "petal": Const([0.0, 0.6, 0.95, 0.0]),
             "leaf": Const([0.0, 0.0, 0.0, 0.8]), "stem": Const([0.0, 0.0, 0.0, 0.7])}
    X, y = scattered_or_together(100)
    fh = CompositeNet("flower_head", children=("disk", "petal"), relations=(("disk", "petal"),)).fit(X, y)
    Xr = np.random.default_rng(0).uniform(0, 1, (100, 4))
    root = CompositeNet("daisy", children=("flower_head", "leaf", "stem"), relations=(("leaf", "stem"),)).fit(
        Xr, (Xr[:, 0] > 0.5).astype(int))
    crops = np.zeros((4, 2, 2, 3), np.uint8)
    crops[:, 0, 0, 0] = np.arange(4)
    boxes = np.array([[40, 40, 60, 60], [55, 40, 80, 60], [200, 200, 230, 230], [0, 150, 10, 250]])
    return {**parts, "flower_head": fh, "daisy": root}, crops, boxes


def test_scoring_needs_boxes_and_says_which_concept():
    models, crops, _ = _toy_models()
    with pytest.raises(ModelError, match="flower_head.*near\\(disk,petal\\).*bboxes"):
        score_images(DAISY, models, crops, np.zeros(4, np.int64), 1)


def test_explain_names_the_pair_of_segments_behind_the_relation():
    models, crops, boxes = _toy_models()
    ex = HybridClassifier(DAISY, models).explain(crops, [tuple(b) for b in boxes])
    fh = ex.concepts["flower_head"]
    value, pair = fh.relations["near(disk,petal)"]
    assert pair == (0, 1) and value == pytest.approx(0.9 * 0.6)  # the near petal, not the stronger far one
    assert ex.concepts["petal"].segment == 2  # the part alone still reports its own best segment
    assert "near(disk,petal)" in str(ex) and "on segments 0 and 1" in str(ex)
    assert fh.to_dict()["relations"]["near(disk,petal)"]["segments"] == [0, 1]
    direct = HybridClassifier(DAISY, models).predict_proba([crops], [boxes])
    assert direct[0] == pytest.approx(ex.probability)
