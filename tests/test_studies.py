"""workbench/evaluation/studies.py: the ablation of every concept, the swap of every net, and the paired
interval, on hand-built models whose answers are known, then on a small trained workspace."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.evaluation.evaluate import hybrid_metrics
from workbench.evaluation.studies import Constant, ablation, paired_difference, swap, training_prior
from workbench.models.train import ImageTable, SegmentTable
from workbench.ontology.graph import Concept, Ontology

sys.path.insert(0, str(Path(__file__).parent))
from stub_models import Table, Weighted  # noqa: E402

PLANT = Ontology("toy", "plant", [
    Concept("plant", "Plant", parts=("flower", "stem")),
    Concept("flower", "Flower", parts=("disk", "petal")),
    Concept("disk", "Disk"), Concept("petal", "Petal"), Concept("stem", "Stem"),
])


def _tables(n_per_side: int = 6):
    """Images of two classes on three sides; each image has a disk, a petal, a stem and a background
    segment. Plants' disks and petals score high, the others' low; stems score 0.5 everywhere (useless)."""
    classes, sides, rows = [], [], []
    for side in ("train", "val", "test"):
        for k in range(2 * n_per_side):
            plant = k % 2 == 0
            i = len(classes)
            classes.append("plant" if plant else "other")
            sides.append(side)
            flower = 0.9 if plant else 0.1
            # a plant's parts are labelled as such; the other's look-alikes are "none"
            rows += [(i, "disk" if plant else "none", flower, 0.0, 0.0),
                     (i, "petal" if plant else "none", 0.0, flower, 0.0),
                     (i, "stem", 0.0, 0.0, 0.5),
                     (i, "none", 0.0, 0.0, 0.0)]
    n = len(rows)
    crops = np.zeros((n, 2, 2, 3), np.uint8)
    crops[:, 0, 0, 0] = np.arange(n) % 256
    crops[:, 0, 0, 1] = np.arange(n) // 256
    images = ImageTable(np.arange(len(classes)), [f"{c}/{i}.png" for i, c in enumerate(classes)], classes,
                        [f"{i:064x}" for i in range(len(classes))], np.array(sides))
    segments = SegmentTable(np.arange(n), np.array([r[0] for r in rows]),
                            np.array([[10 * (r % 4), 0, 10 * (r % 4) + 5, 5] for r in range(n)]),
                            [r[1] for r in rows], crops)
    return images, segments, rows


class Table2(Table):
    """Table, indexed by the segment number written in the crop's first two channels."""

    def predict_proba(self, X):
        X = np.asarray(X)
        return self.scores[X[:, 0, 0, 0].astype(int) + 256 * X[:, 0, 0, 1].astype(int)]


def _models(rows):
    parts = {c: Table2([r[k] for r in rows]) for k, c in enumerate(("disk", "petal", "stem"), start=2)}
    return {**parts, "flower": Weighted([0.5, 0.5]), "plant": Weighted([0.8, 0.2], bias=0.0)}


def test_training_prior_counts_training_examples_only():
    images, segments, _ = _tables()
    # parts: of the training images' labelled segments (4 per image), disk on half the images: 6 of 48
    assert training_prior(PLANT, "disk", images, segments) == pytest.approx(6 / 48)
    assert training_prior(PLANT, "stem", images, segments) == pytest.approx(12 / 48)
    # composites: the training images where all parts are labelled: the 6 plants of 12
    assert training_prior(PLANT, "flower", images, segments) == pytest.approx(0.5)


def test_ablation_finds_the_concept_the_decision_uses_and_the_one_it_does_not():
    images, segments, rows = _tables()
    a = ablation(PLANT, _models(rows), images, segments)
    assert set(a) == {"disk", "petal", "stem", "flower"}  # every concept but the root
    # without the flower every test image gets the same score: chance
    assert a["flower"]["balanced_accuracy_before"] == 1.0 and a["flower"]["balanced_accuracy_after"] == 0.5
    assert a["flower"]["difference"] == -0.5 and a["flower"]["ci_high"] < 0 and a["flower"]["n"] == 12
    assert a["flower"]["verdict"].startswith("used")
    # the stem scores 0.5 everywhere: its prior instead changes no decision
    assert a["stem"]["difference"] == 0.0 and "no difference on any of the 12" in a["stem"]["verdict"]
    assert a["stem"]["constant"] == pytest.approx(0.25)


def test_ablation_and_swap_score_the_test_images_only():
    images, segments, rows = _tables()
    models = _models(rows)
    before = hybrid_metrics(PLANT, models, images, segments)
    assert before["on"] == "test" and before["images"] == 12
    # break the models on validation and training images only: the test figures must not move
    broken = list(rows)
    for r, (i, lab, d, p, s) in enumerate(rows):
        if images.split[i] != "test":
            broken[r] = (i, lab, 1 - d, 1 - p, s)
    a1 = ablation(PLANT, models, images, segments)
    a2 = ablation(PLANT, _models(broken), images, segments)
    assert {c: v["balanced_accuracy_after"] for c, v in a1.items()} == {c: v["balanced_accuracy_after"] for c, v in a2.items()}


def test_paired_difference_leaves_out_images_a_method_did_not_score():
    y = np.array([1, 0, 1, 0, 1, 0])
    base = np.array([0.9, 0.1, 0.1, 0.9, np.nan, 0.2])  # right, right, wrong, wrong, –, right
    cand = np.array([0.9, 0.1, 0.9, 0.1, 0.9, 0.9])  # right on the first four
    d = paired_difference(y, base, cand, np.arange(6))
    assert d["n"] == 5  # image 4 was not scored by base
    # base: positives 1/2, negatives 2/3 → 0.5833; candidate: 2/2 and 2/3 → 0.8333
    assert d["difference"] == pytest.approx(0.25, abs=1e-4) and d["ci_low"] <= d["difference"] <= d["ci_high"]
    assert paired_difference(y, base, cand, np.array([0, 2]))["difference"] is None  # one class only


def test_constant_stand_in():
    c = Constant(0.3)
    assert c.predict_proba(np.zeros((4, 2))).tolist() == [0.3] * 4 and c.n_params == 0 and c.relations == ()


# ------------------------------------------------------------------------------ a trained workspace
def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_swap_covers_every_net_concept_and_changes_nothing_saved(trained):
    onto, models, images, segments = trained.ws.ontology, trained.result.models, trained.images, trained.segments
    saved, given = _digest(trained.ws.models_dir), dict(models)
    before = hybrid_metrics(onto, models, images, segments)
    s = swap(onto, models, images, segments, trained.config)
    nets = [c for c in onto.bottom_up() if onto.concepts[c].implementation == "net"]
    assert list(s) == nets and "disk" not in s  # every net, composites and the root included; not the rule
    for c, w in s.items():
        assert f"random_state={trained.config.random_state + 1}" in w["how"]
        assert w["balanced_accuracy_before"] == before["balanced_accuracy"]
        assert 0.0 <= w["balanced_accuracy_after"] <= 1.0 and w["verdict"]
    assert all(models[c] is given[c] for c in given)
    assert _digest(trained.ws.models_dir) == saved
