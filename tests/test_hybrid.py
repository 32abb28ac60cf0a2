"""The hybrid composition (workbench/models/hybrid.py) on hand-built inputs whose answers can be
checked by hand: part scores are the maximum over an image's segments, composites are evaluated
bottom-up over their children's scores (in ``ontology.parts`` order), ``near(A,B)`` pairs segments
whose boxes are near, ``explain()`` names the segments that fired, and ``predict_proba`` is what
``score_images`` gives for the root.

The models are the simplest ones the hybrid accepts (anything with ``predict_proba``): a part
"model" reads a segment's score from a table, a composite is a fixed weighted sum, so every expected
number below is arithmetic on the tables.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import ModelError
from workbench.models.hybrid import (
    NEAR,
    HybridClassifier,
    near_pairs,
    part_scores,
    relation_name,
    relation_pairs,
    score_images,
)
from workbench.ontology.graph import Concept, Ontology

sys.path.insert(0, str(Path(__file__).parent))
from stub_models import Table, Weighted  # noqa: E402

# plant = flower + stem; flower = disk + petal (leaves: disk, petal, stem)
PLANT = Ontology("toy", "plant", [
    Concept("plant", "Plant", parts=("flower", "stem")),
    Concept("flower", "Flower", parts=("disk", "petal")),
    Concept("disk", "Disk"), Concept("petal", "Petal"), Concept("stem", "Stem"),
])

# one row per segment: (image, disk, petal, stem, box)
SEGMENTS = [
    (0, 0.9, 0.3, 0.0, (0, 0, 10, 10)),        # row 0: image 0, the disk
    (0, 0.1, 0.8, 0.1, (8, 0, 18, 10)),        # row 1: image 0, a petal next to the disk
    (0, 0.2, 0.6, 0.7, (100, 100, 110, 110)),  # row 2: image 0, far away, the stem
    (1, 0.4, 0.5, 0.2, (0, 0, 4, 4)),          # row 3: image 1
    (1, 0.2, 0.1, 0.9, (50, 50, 54, 54)),      # row 4: image 1, far from row 3
]                                              # image 2 has no segments


def models(relations: bool = False):
    parts = {name: Table([s[k] for s in SEGMENTS]) for k, name in enumerate(("disk", "petal", "stem"), start=1)}
    flower = Weighted([0.5, 0.2, 0.5], relations=[("disk", "petal")]) if relations else Weighted([0.7, 0.3])
    return {**parts, "flower": flower, "plant": Weighted([0.6, 0.4])}


def crops(rows=None):
    rows = list(range(len(SEGMENTS))) if rows is None else list(rows)
    c = np.zeros((len(rows), 2, 2, 3), np.uint8)
    c[:, 0, 0, 0] = rows
    return c


INDEX = np.array([s[0] for s in SEGMENTS])
BOXES = np.array([s[4] for s in SEGMENTS])


def test_part_score_is_the_maximum_over_the_images_segments_and_names_its_row():
    scores, best, seg = part_scores(PLANT, models(), crops(), INDEX, 3)
    assert scores["disk"].tolist() == [0.9, 0.4, 0.0]
    assert scores["petal"].tolist() == [0.8, 0.5, 0.0]
    assert scores["stem"].tolist() == [0.7, 0.9, 0.0]
    assert best["disk"].tolist() == [0, 3, -1] and best["petal"].tolist() == [1, 3, -1]
    assert best["stem"].tolist() == [2, 4, -1]  # image 2 has no segment: score 0, no winner
    assert seg["petal"].tolist() == [0.3, 0.8, 0.6, 0.5, 0.1]
    assert set(scores) == {"disk", "petal", "stem"}  # composites are not scored here


def test_part_scores_do_not_depend_on_the_order_of_the_segments():
    order = [4, 1, 3, 0, 2]  # images interleaved
    scores, best, _ = part_scores(PLANT, models(), crops(order), INDEX[order], 3)
    assert scores["disk"].tolist() == [0.9, 0.4, 0.0] and scores["stem"].tolist() == [0.7, 0.9, 0.0]
    assert [order[r] for r in best["disk"][:2]] == [0, 3]  # rows of the reordered table, same segments


def test_composites_are_scored_bottom_up_over_their_childrens_scores():
    scores, _, _ = score_images(PLANT, models(), crops(), INDEX, 3)
    # flower = 0.7·disk + 0.3·petal; plant = 0.6·flower + 0.4·stem
    assert scores["flower"] == pytest.approx([0.7 * 0.9 + 0.3 * 0.8, 0.7 * 0.4 + 0.3 * 0.5, 0.0])
    assert scores["plant"] == pytest.approx([0.6 * 0.87 + 0.4 * 0.7, 0.6 * 0.43 + 0.4 * 0.9, 0.0])


def test_children_come_in_the_ontologys_parts_order():
    assert PLANT.parts("flower") == ("disk", "petal") and PLANT.parts("plant") == ("flower", "stem")
    swapped = {**models(), "flower": Weighted([0.3, 0.7])}  # the weights of the other order
    scores, _, _ = score_images(PLANT, swapped, crops(), INDEX, 3)
    assert scores["flower"][0] == pytest.approx(0.3 * 0.9 + 0.7 * 0.8)


def test_near_is_the_circumscribed_circles_touching():
    # box half-diagonals 5 and 5 (6×8 boxes): near while the centres are at most NEAR·10 apart
    a = [0, 0, 6, 8]
    at = round(10 * NEAR)
    touching, apart = [at, 0, at + 6, 8], [at + 1, 0, at + 7, 8]
    s, t = near_pairs(np.array([a, touching]), np.array([0, 0]))
    assert sorted(zip(s.tolist(), t.tolist())) == [(0, 1), (1, 0)]
    s, t = near_pairs(np.array([a, apart]), np.array([0, 0]))
    assert len(s) == 0
    s, t = near_pairs(np.array([a, a]), np.array([0, 1]))  # the same place in two images
    assert len(s) == 0


def test_a_relation_is_the_best_product_over_near_pairs():
    scores, best, _ = score_images(PLANT, models(relations=True), crops(), INDEX, 3, BOXES)
    key = f"flower:{relation_name('disk', 'petal')}"
    # image 0: rows 0 and 1 are near (0.9·0.8 beats 0.1·0.3), row 2 is far; image 1: rows 3 and 4 are far
    assert scores[key].tolist() == pytest.approx([0.9 * 0.8, 0.0, 0.0])
    assert best[key].tolist() == [[0, 1], [-1, -1], [-1, -1]]
    # flower = 0.5·disk + 0.2·petal + 0.5·near(disk,petal)
    assert scores["flower"] == pytest.approx([0.45 + 0.16 + 0.36, 0.2 + 0.1, 0.0])
    assert relation_pairs(PLANT, "flower") == (("disk", "petal"),)
    assert relation_pairs(PLANT, "plant") == ()  # flower is a composite, not a part


def test_a_relation_without_boxes_is_an_error_naming_the_concept():
    with pytest.raises(ModelError, match=r"flower.*near\(disk,petal\).*bboxes"):
        score_images(PLANT, models(relations=True), crops(), INDEX, 3)


def test_explain_names_the_segments_that_fired():
    rows = np.flatnonzero(INDEX == 0)
    ex = HybridClassifier(PLANT, models(relations=True)).explain(crops(rows), [tuple(b) for b in BOXES[rows]])
    c = ex.concepts
    assert (c["disk"].segment, c["petal"].segment, c["stem"].segment) == (0, 1, 2)
    assert c["disk"].bbox == (0, 0, 10, 10) and c["stem"].bbox == (100, 100, 110, 110)
    assert (c["disk"].kind, c["flower"].kind, c["plant"].kind) == ("part", "composite", "root")
    assert c["flower"].segment is None and c["flower"].bbox is None
    assert c["flower"].relations == {"near(disk,petal)": (pytest.approx(0.72), (0, 1))}
    assert c["flower"].score == pytest.approx(0.5 * 0.9 + 0.2 * 0.8 + 0.5 * 0.72)  # 0.97
    assert ex.probability == pytest.approx(0.6 * 0.97 + 0.4 * 0.7)
    assert ex.root == "plant" and ex.predicted
    assert [f.concept for f in ex.fired()] == ["flower", "disk", "plant", "petal", "stem"]  # ≥ 0.5, strongest first
    text = str(ex)
    assert "disk" in text and "on segment 0 (0, 0, 10, 10)" in text and "on segments 0 and 1" in text
    d = ex.to_dict()
    assert d["concepts"]["petal"] == {"concept": "petal", "score": 0.8, "kind": "part", "segment": 1,
                                      "bbox": [8, 0, 18, 10]}
    assert d["concepts"]["flower"]["relations"] == {"near(disk,petal)": {"score": 0.72, "segments": [0, 1]}}


def test_explain_without_boxes_names_segments_but_no_boxes():
    rows = np.flatnonzero(INDEX == 1)
    ex = HybridClassifier(PLANT, models()).explain(crops(rows))
    assert (ex.concepts["disk"].segment, ex.concepts["stem"].segment) == (0, 1)  # rows of this image's crops
    assert ex.concepts["disk"].bbox is None
    assert ex.probability == pytest.approx(0.6 * 0.43 + 0.4 * 0.9)


@pytest.mark.parametrize("relations", [False, True])
def test_predict_proba_is_the_root_score_of_score_images(relations):
    hybrid = HybridClassifier(PLANT, models(relations))
    per_image = [np.flatnonzero(INDEX == i) for i in range(3)]
    p = hybrid.predict_proba([crops(r) for r in per_image], [BOXES[r] for r in per_image])
    scores, _, _ = score_images(PLANT, models(relations), crops(), INDEX, 3, BOXES)
    assert p.tolist() == pytest.approx(scores["plant"].tolist())
    assert p[2] == 0.0 and p[0] > p[1]


def test_a_concept_without_a_model_is_named():
    partial = {k: v for k, v in models().items() if k != "petal"}
    with pytest.raises(ModelError, match="petal.*workbench train"):
        HybridClassifier(PLANT, partial)
