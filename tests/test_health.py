"""Concept health (workbench/evaluation/health.py): every concept is ``ok``, ``weak`` or ``dead``, with a
sentence saying what it lacks; a constant part on an imbalanced validation set is dead and shows its
balanced accuracy (one half), not its plain accuracy; the graph colours weak and dead concepts red."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.evaluation.evaluate import concept_metrics
from workbench.evaluation.health import (
    DEAD_ONE_CLASS_FRACTION,
    DEAD_SCORE_SPREAD,
    WEAK_BALANCED_ACCURACY,
    concept_status,
    facts_from_metrics,
    score_facts,
)
from workbench.evaluation.report import RED, accuracy_colour
from workbench.jupyter.widgets.graph import graph_html
from workbench.models.metrics import binary_metrics
from workbench.models.train import ImageTable, SegmentTable
from workbench.ontology.graph import Concept, Ontology

sys.path.insert(0, str(Path(__file__).parent))
from stub_models import Table, Weighted  # noqa: E402

PLANT = Ontology("toy", "plant", [
    Concept("plant", "Plant", parts=("flower", "stem")),
    Concept("flower", "Flower", parts=("disk", "petal")),
    Concept("disk", "Disk"), Concept("petal", "Petal"), Concept("stem", "Stem"),
])
IMAGES = [("plant", "train"), ("plant", "val"), ("plant", "val"), ("other", "train"), ("other", "val"),
          ("other", "val")]
# (image, label, disk, petal, stem): stem scores 0 everywhere (dead); disk finds one of its two
# validation disks and fires on three of the eight other segments (weak); petal is right everywhere
SEGMENTS = [
    (0, "disk", 0.9, 0.0, 0.0), (0, "petal", 0.0, 0.9, 0.0), (0, "stem", 0.0, 0.0, 0.0), (3, "none", 0.0, 0.0, 0.0),
    (1, "disk", 0.9, 0.1, 0.0), (1, "petal", 0.1, 0.9, 0.0), (1, "stem", 0.6, 0.0, 0.0),
    (2, "disk", 0.2, 0.1, 0.0), (2, "petal", 0.1, 0.8, 0.0), (2, "none", 0.7, 0.2, 0.0),
    (4, "none", 0.6, 0.1, 0.0), (4, "none", 0.1, 0.2, 0.0), (5, "none", 0.1, 0.1, 0.0), (5, "none", 0.2, 0.3, 0.0),
]


@pytest.fixture(scope="module")
def metrics():
    n = len(SEGMENTS)
    crops = np.zeros((n, 2, 2, 3), np.uint8)
    crops[:, 0, 0, 0] = np.arange(n)
    images = ImageTable(np.arange(len(IMAGES)), [f"{c}/{i}.png" for i, (c, _) in enumerate(IMAGES)],
                        [c for c, _ in IMAGES], [f"{i:064x}" for i in range(len(IMAGES))],
                        np.array([s for _, s in IMAGES]))
    segments = SegmentTable(np.arange(n), np.array([s[0] for s in SEGMENTS]),
                            np.array([[10 * r, 0, 10 * r + 5, 5] for r in range(n)]), [s[1] for s in SEGMENTS], crops)
    models = {c: Table([s[k] for s in SEGMENTS]) for k, c in enumerate(("disk", "petal", "stem"), start=2)}
    models |= {"flower": Weighted([0.5, 0.5]), "plant": Weighted([0.8, 0.2])}
    return concept_metrics(PLANT, models, images, segments)


def test_a_constant_part_on_an_imbalanced_set_is_dead_at_one_half(metrics):
    stem = metrics["stem"]
    assert (stem["val_examples"], stem["val_positives"]) == (10, 1)
    assert stem["val_accuracy"] == 0.9  # what the old tables showed
    assert stem["val_balanced_accuracy"] == pytest.approx(0.5)  # what they show now
    assert stem["status"] == "dead"
    assert "predicts 'no' for every validation segment" in stem["status_reason"]
    assert "trained on 1 positive label, from 1 image" in stem["status_reason"]


def test_a_poor_part_is_weak_and_a_good_one_ok(metrics):
    disk = metrics["disk"]
    assert disk["val_balanced_accuracy"] == pytest.approx((1 / 2 + 5 / 8) / 2, abs=1e-4)
    assert disk["status"] == "weak" and "below 65%" in disk["status_reason"]
    assert (metrics["petal"]["status"], metrics["petal"]["status_reason"]) == ("ok", "")
    assert all(m["status"] in ("ok", "weak", "dead") for m in metrics.values())


def test_thresholds_decide_the_status():
    base = {"val_examples": 40, "val_positives": 10, "val_score_spread": 0.3, "val_predicted_positive_fraction": 0.3}
    below = WEAK_BALANCED_ACCURACY - 0.01
    assert concept_status({**base, "val_balanced_accuracy": below})[0] == "weak"
    assert concept_status({**base, "val_balanced_accuracy": WEAK_BALANCED_ACCURACY + 0.01}) == ("ok", "")
    flat = {**base, "val_balanced_accuracy": 0.9, "val_score_spread": DEAD_SCORE_SPREAD / 2}
    assert concept_status(flat)[0] == "dead" and "barely varies" in concept_status(flat)[1]
    yes = {**base, "val_balanced_accuracy": 0.5, "val_predicted_positive_fraction": DEAD_ONE_CLASS_FRACTION}
    assert concept_status(yes, "image")[0] == "dead" and "'yes'" in concept_status(yes, "image")[1]
    status, reason = concept_status({**base, "val_positives": 0, "val_balanced_accuracy": 1.0})
    assert status == "weak" and "no validation positives" in reason
    status, reason = concept_status({**base, "val_balanced_accuracy": 0.6, "train_positives": 12,
                                     "train_positive_images": 3})
    assert status == "weak" and reason.endswith("trained on 12 positive labels, all from 3 images")


def test_score_facts_measure_spread_and_answers():
    y = np.array([1] + [0] * 99)
    f = score_facts(y, np.full(100, 0.2))
    assert (f["val_balanced_accuracy"], f["val_score_spread"], f["val_predicted_positive_fraction"]) == (0.5, 0.0, 0.0)
    assert concept_status(f)[0] == "dead"
    good = score_facts(y, np.r_[0.9, np.full(99, 0.1)])  # right on its one positive: predicting 'no' 99% is fine
    assert concept_status(good) == ("ok", "")


def test_a_models_recorded_metrics_give_the_same_status():
    y = np.array([1] * 23 + [0] * 77)
    for p, want in ((np.zeros(100), "dead"), (np.ones(100), "dead"), (y * 0.8 + 0.1, "ok")):
        m = {f"val_{k}": v for k, v in binary_metrics(y, p).items()}
        assert concept_status(facts_from_metrics(m)) == concept_status(score_facts(y, p)), p[:3]
        assert concept_status(facts_from_metrics(m))[0] == want
    assert concept_status(facts_from_metrics({"val_balanced_accuracy": 0.52, "val_accuracy": 0.5,
                                              "val_examples": 10, "val_positives": 5}))[0] == "weak"


def test_the_graph_paints_weak_and_dead_concepts_red_and_says_why():
    info = {c: {"val_balanced_accuracy": 0.95, "params": 3, "status": "ok", "status_reason": ""} for c in PLANT.concepts}
    info["stem"] = {"val_balanced_accuracy": 0.5, "params": 3, "status": "dead",
                    "status_reason": "predicts 'no' for every validation segment"}
    page = graph_html(PLANT, info)
    nodes = {n["id"]: n for n in json.loads(re.search(r"nodes = new vis\.DataSet\((\[.*?\])\);", page).group(1))}
    assert nodes["stem"]["color"]["background"] == RED and "dead" in nodes["stem"]["label"]
    assert "predicts" in nodes["stem"]["title"]
    assert nodes["petal"]["color"]["background"] == accuracy_colour(0.95) != RED
    assert "bal. acc. 95%" in nodes["petal"]["label"]
