"""The merge gate: the paired bootstrap against closed-form answers, the decision rule, and the gate
on a tiny generated workspace (a harmful simplification rejected, a neutral edit merged, an addition
without labels inconclusive), never writing to the workspace's models."""
from __future__ import annotations

import hashlib
import html
from pathlib import Path

import numpy as np
import pytest

from workbench.data.datasets import generate_demo
from workbench.data.labelers import label_from_masks
from workbench.data.segment import WeightFreeSegmenter, segment_dataset, settings_hash
from workbench.errors import ProposalConflict
from workbench.evaluation.evaluate import balanced_accuracy
from workbench.models.train import TrainConfig, collect, split_images, train_hybrid
from workbench.ontology.graph import Ontology
from workbench.review.gate import (
    Verdict,
    decide,
    edit_kind,
    gate_edits,
    paired_bootstrap,
)
from workbench.workspace.folder import Workspace
from workbench.workspace.settings import Settings

DAISY = Ontology.load(Path(__file__).resolve().parents[1] / "ontologies" / "daisy.yaml")
FAST = TrainConfig(max_epochs=4, patience=2, val_fraction=0.5)


# ------------------------------------------------------------------------------------------- statistics
def test_bootstrap_point_estimate_is_the_balanced_accuracy_difference():
    rng = np.random.default_rng(1)
    y = np.array([1] * 30 + [0] * 20)
    base = rng.random(50) < 0.6
    cand = rng.random(50) < 0.8
    r = paired_bootstrap(y, base, cand, n_resamples=200)

    def predictions(correct):  # the answers a model that is right exactly there gives
        return np.where(correct, y, 1 - y).astype(float)

    assert r.base == pytest.approx(balanced_accuracy(y, predictions(base)), abs=1e-4)
    assert r.candidate == pytest.approx(balanced_accuracy(y, predictions(cand)), abs=1e-4)
    assert r.difference == pytest.approx(r.candidate - r.base)
    assert r.n == 50 and r.low <= r.difference <= r.high


def test_bootstrap_interval_matches_the_closed_form_standard_error():
    # Stratified resampling of per-image differences d: Δ = ½(mean d|pos + mean d|neg), so its
    # bootstrap variance is ¼(var_pos/n_pos + var_neg/n_neg) (population variances).
    rng = np.random.default_rng(7)
    y = np.array([1] * 60 + [0] * 40)
    base = rng.random(100) < 0.5
    cand = np.where(rng.random(100) < 0.3, ~base, base)  # flips 30% of the answers
    r = paired_bootstrap(y, base, cand, n_resamples=40_000, confidence=0.95, random_state=3)
    d = cand.astype(float) - base.astype(float)
    se = 0.5 * np.sqrt(d[y == 1].var() / 60 + d[y == 0].var() / 40)
    assert (r.high - r.low) / 2 == pytest.approx(1.959964 * se, rel=0.06)
    assert (r.high + r.low) / 2 == pytest.approx(r.difference, abs=0.3 * se)


def test_bootstrap_hand_cases():
    y = [1, 1, 0, 0]
    same = paired_bootstrap(y, [1, 0, 1, 0], [1, 0, 1, 0], n_resamples=50)
    assert (same.difference, same.low, same.high, same.fraction_not_better) == (0.0, 0.0, 0.0, 1.0)
    # right everywhere the base was wrong everywhere: +100 pts whatever the resample
    fixed = paired_bootstrap(y, [0, 0, 0, 0], [1, 1, 1, 1], n_resamples=50)
    assert (fixed.base, fixed.candidate) == (0.0, 1.0)
    assert fixed.low == fixed.high == fixed.difference == 1.0 and fixed.fraction_not_better == 0.0
    # d = [0, 1] within each class: each class mean is 0, ½, 1 with probability ¼, ½, ¼, so
    # Δ = ½(pos + neg) is 0 with probability 1/16 (and 1 with 1/16): CI [0, 1], P(Δ <= 0) = 0.0625
    half = paired_bootstrap(y, [1, 0, 1, 0], [1, 1, 1, 1], n_resamples=40_000, random_state=2)
    assert (half.base, half.candidate, half.difference) == (0.5, 1.0, 0.5)
    assert (half.low, half.high) == (0.0, 1.0)
    assert half.fraction_not_better == pytest.approx(1 / 16, abs=0.004)
    # several seeds average per image
    seeds = paired_bootstrap(y, [[1, 1, 1, 1]] * 2, [[1, 1, 1, 1], [0, 0, 1, 1]], n_resamples=50)
    assert seeds.difference == pytest.approx(-0.25)


@pytest.mark.parametrize(
    ("kind", "diff", "lo", "hi", "expected"),
    [
        ("addition", 0.05, 0.01, 0.09, "merge"),
        ("addition", 0.02, -0.01, 0.05, "inconclusive"),
        ("addition", 0.0, 0.0, 0.0, "reject"),
        ("addition", -0.05, -0.09, -0.01, "reject"),
        ("simplification", 0.0, -0.005, 0.02, "merge"),
        ("simplification", -0.005, -0.04, 0.03, "inconclusive"),
        ("simplification", -0.1, -0.2, 0.0, "reject"),
        ("simplification", -0.03, -0.06, -0.005, "reject"),
        ("neutral", 0.0, 0.0, 0.0, "merge"),
    ],
)
def test_decision_rule(kind, diff, lo, hi, expected):
    assert decide(kind, diff, lo, hi, min_gain=0.0, max_loss=0.01) == expected


def test_min_gain_raises_the_bar_for_additions():
    assert decide("addition", 0.03, 0.01, 0.05, min_gain=0.02, max_loss=0.01) == "inconclusive"
    assert decide("addition", 0.05, 0.03, 0.07, min_gain=0.02, max_loss=0.01) == "merge"


def test_edit_kinds():
    assert edit_kind([{"op": "add_concept", "id": "x", "label": "X", "parents": ["daisy"]}]) == "addition"
    assert edit_kind([{"op": "remove_part", "parent": "a", "part": "b"}]) == "simplification"
    assert edit_kind([{"op": "merge", "sources": ["a", "b"], "into": "a"}]) == "simplification"
    assert edit_kind([{"op": "describe", "id": "petal", "implementation": "rule", "rule": "white_petal"}],
                     DAISY) == "simplification"
    assert edit_kind([{"op": "describe", "id": "disk", "implementation": "rule", "rule": "yellow_disk"}],
                     DAISY) == "neutral"  # it already was a rule
    assert edit_kind([{"op": "describe", "id": "petal", "description": "white"}]) == "neutral"
    assert edit_kind([{"op": "rename", "old": "petal", "new": "ray"}]) == "neutral"


def test_verdict_summary_and_round_trip():
    v = Verdict("merge", "addition", "gains", 0.70, 0.731, 0.031, 0.008, 0.054, 0.95, 48,
                fraction_not_better=0.01, n_resamples=1000, seeds=(0,), retrained=("daisy",))
    assert v.summary() == "Gate: merge (+3.1 pts, 95% CI [+0.8, +5.4], n=48)"
    assert Verdict.from_dict(v.to_dict()) == v
    assert "\n" not in Verdict("inconclusive", "addition", "label some segments as 'sky'").summary()
    html = Verdict("reject", "addition", "no gain for <b>sepal</b>").with_override(by="<i>x</i>", reason="r")._repr_html_()
    assert "<b>sepal" not in html and "&lt;i&gt;x" in html and "overridden by" in html
    with pytest.raises(Exception, match="decision"):
        Verdict("maybe", "addition", "")


def test_a_verdict_reads_in_words_with_n_the_interval_and_what_it_means():
    v = Verdict("merge", "addition", "gains", 0.70, 0.731, 0.031, 0.008, 0.054, 0.95, 48,
                n_resamples=1000, gained=3, lost=1, thresholds={"min_gain": 0.0, "max_loss": 0.01})
    words = v.meaning()
    assert "On 48 validation images" in words and "+3.1 pts" in words
    assert "the 95% interval runs from +0.8 to +5.4 pts" in words
    assert "right on 3 images the current classifier gets wrong and wrong on 1" in words
    assert "Verdict merge: an addition must show a gain" in words
    assert words in str(v) and html.escape(words) in v._repr_html_() and v.to_dict()["meaning"] == words
    # every resample equal: said in words, never as an interval of zero width
    same = Verdict("merge", "neutral", "no loss", 0.75, 0.75, 0.0, 0.0, 0.0, 0.95, 16, n_resamples=1000,
                   gained=0, lost=0, thresholds={"min_gain": 0.0, "max_loss": 0.01})
    assert same.all_equal and same.summary() == "Gate: merge (no difference on any of the 16 images)"
    assert "no difference on any of the 16 images" in same.meaning() and "[+0.0, +0.0]" not in str(same)
    assert "[+0.0, +0.0]" not in same._repr_html_()
    fixed = Verdict("merge", "addition", "gains", 0.5, 0.5625, 0.0625, 0.0625, 0.0625, 0.95, 16, n_resamples=1000)
    assert fixed.line() == "merge (+6.2 pts on every resample of the 16 images, n=16)"
    waiting = Verdict("inconclusive", "addition", "label some segments as 'bud' first")
    assert waiting.meaning() == "Label some segments as 'bud' first. The gate cannot judge it yet."
    ov = v.with_override(by="ana", reason="needed")
    assert ov.line().endswith("— overridden by ana: needed") and "Overridden by ana: needed." in ov.meaning()


# ------------------------------------------------------------------------------------------ workspace
def _tree_digest(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.is_file()}


# not the shared workspaces of conftest.py: the verdicts need 16 full-size images per class and gate_bootstrap
@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    folder = generate_demo(root / "data", n_per_class=16, seed=3)
    w = Workspace.create(root / "ws", DAISY, Settings(dataset=str(root / "data"), gate_bootstrap=2000))
    seg = WeightFreeSegmenter()
    segment_dataset(w.store, folder, seg, cache_dir=w.cache_dir / "segments", progress=False)
    label_from_masks(w.store, folder, DAISY, settings_hash=settings_hash(seg))
    images, segments = collect(w.store, settings_hash(seg), FAST.crop_size, image_root=root / "data",
                               cache_dir=w.cache_dir)
    images.split = split_images(images, FAST.val_fraction, 0)
    train_hybrid(DAISY, images, segments, FAST, models_dir=w.models_dir, settings_hash=settings_hash(seg))
    yield w
    w.close()


def test_a_describe_edit_is_neutral_and_merges_without_training(ws):
    models_before = _tree_digest(ws.models_dir)
    v = gate_edits(ws, [{"op": "describe", "id": "petal", "description": "A narrow white strap."}], config=FAST)
    assert (v.kind, v.decision, v.retrained) == ("neutral", "merge", ())
    # fast because nothing trains and nothing is resampled: the fingerprints alone decide
    assert v.message == "no concept model is affected (nothing to retrain)"
    assert (v.n, v.n_resamples, v.base_balanced_accuracy) == (0, 0, None)
    assert _tree_digest(ws.models_dir) == models_before


@pytest.mark.slow
def test_a_rename_retrains_and_merges_with_no_loss(ws):
    v = gate_edits(ws, [{"op": "rename", "old": "petal", "new": "ray"}], config=FAST)
    assert v.kind == "neutral" and "ray" in v.retrained
    assert v.decision == "merge" and v.difference == 0.0


def test_an_addition_without_labels_is_inconclusive_and_names_the_concept(ws):
    v = gate_edits(ws, [{"op": "add_concept", "id": "sky", "label": "Sky", "parents": ["daisy"]}], config=FAST)
    assert (v.kind, v.decision, v.labels_needed) == ("addition", "inconclusive", ("sky",))
    assert "'sky'" in v.message and "label" in v.message


def test_edits_that_no_longer_apply_are_a_conflict(ws):
    with pytest.raises(ProposalConflict, match="no_such"):
        gate_edits(ws, [{"op": "remove_concept", "id": "no_such"}], proposal_id="0009", config=FAST)


def test_removing_the_part_that_carries_the_signal_is_rejected_refused_overridden_and_reverted(ws):
    from workbench.review.cells import proposal_cells
    from workbench.review.gate import GateRejected, apply_proposal, override
    from workbench.review.history import history, revert
    from workbench.review.proposals import make_proposal
    from workbench.review.store import ProposalStore

    store = ProposalStore(ws)
    p = store.save(make_proposal(ws.ontology, [{"op": {"op": "remove_concept", "id": c}, "rationale": "simpler"}
                                               for c in ("disk", "petal", "flower_head")],
                                 kind="refactor", author="scripted:test", title="Drop the flower head"))
    head = ws.head()
    models_before = _tree_digest(ws.models_dir)
    keep: dict = {}
    with pytest.raises(GateRejected, match="override") as e:
        apply_proposal(ws, p.id, by="ana", config=FAST, keep=keep)
    v = e.value.verdict
    assert (v.decision, v.kind, v.proposal) == ("reject", "simplification", p.id), v.to_dict()
    assert v.difference < -ws.settings.gate_max_loss
    assert v.candidate_balanced_accuracy < v.base_balanced_accuracy
    assert v.retrained == ("daisy",)  # leaf and stem are reused, only the root retrains
    assert v.n == 16 and v.n_resamples == 2000
    assert v.summary().startswith("Gate: reject (-")
    assert _tree_digest(ws.models_dir) == models_before  # nothing written to the workspace's models
    assert ws.ontology == DAISY and store.load(p.id).status == "pending" and ws.head() != head  # verdict recorded
    assert store.load(p.id).gate["decision"] == "reject"  # the verdict is on record for the panel
    md = proposal_cells(ws, p.id, verdict=v, models=keep)[0]["source"]
    assert "**Merge gate**: reject \\(" in md and "Before | after" in md and "what fires on" in md
    assert md.count("](data:image/png;base64,") >= 2

    done = override(ws, p.id, by="ana", reason="a smaller demo is worth it", verdict=v)
    assert done.status == "accepted" and done.gate["override"] == {"by": "ana", "reason": "a smaller demo is worth it"}
    assert "flower_head" not in ws.ontology.concepts and ws.head() != head
    last = history(ws, limit=1)[0]
    assert last.proposal == p.id and last.gate.startswith("reject (")
    assert last.gate_override == "ana: a smaller demo is worth it"
    assert last.trailers.get("Gate-override") == "ana: a smaller demo is worth it"  # its own trailer
    assert "Merged against the gate (reject) by ana" in last.rationale

    revert(ws, p.id, by="ana")
    assert ws.ontology == DAISY


def test_cli_gate_prints_the_verdict_and_exits_by_decision(ws, capsys):
    from workbench.cli import main
    from workbench.review.proposals import make_proposal
    from workbench.review.store import ProposalStore

    store = ProposalStore(ws)
    neutral = store.save(make_proposal(ws.ontology, [{"op": {"op": "describe", "id": "stem", "description": "Thin."}}],
                                       kind="person", author="person:ana"))
    unlabelled = store.save(make_proposal(ws.ontology, [{"op": {"op": "add_concept", "id": "sky", "label": "Sky",
                                                                "parents": ["daisy"]}}],
                                          kind="suggest", author="claude:test"))
    assert main(["gate", neutral.id, "--workspace", str(ws.path)]) == 0
    assert "Gate: merge (no concept model is affected" in capsys.readouterr().out
    assert main(["gate", unlabelled.id, "--workspace", str(ws.path)]) == 1
    out = capsys.readouterr().out
    assert "label some segments as 'sky'" in out and "The gate cannot judge it yet." in out
    assert main(["gate", neutral.id, "--workspace", str(ws.path), "--merge", "--by", "ana"]) == 0
    assert "merged proposal" in capsys.readouterr().out
    assert ws.ontology.concepts["stem"].description == "Thin."
    from workbench.review.history import revert

    revert(ws, neutral.id, by="ana")
    assert ws.ontology == DAISY


@pytest.mark.slow
def test_several_seeds_average_the_candidate(ws):
    edits = [{"op": "remove_concept", "id": c} for c in ("disk", "petal", "flower_head")]
    v = gate_edits(ws, edits, config=FAST, seeds=(0, 1))
    assert v.seeds == (0, 1) and v.decision == "reject" and v.retrained == ("daisy",)


def test_gate_chooses_edits_like_accept(ws):
    from workbench.errors import ProposalError
    from workbench.review.gate import gate
    from workbench.review.proposals import make_proposal
    from workbench.review.store import ProposalStore

    p = ProposalStore(ws).save(make_proposal(ws.ontology, [
        {"op": {"op": "describe", "id": "leaf", "description": "Green."}},
        {"op": {"op": "remove_concept", "id": "no_such"}},
    ], kind="person", author="person:ana"))
    assert gate(ws, p.id).decision == "merge"  # the invalid edit is left out, as accept leaves it out
    with pytest.raises(ProposalError, match="invalid"):
        gate(ws, p.id, [0, 1])
    with pytest.raises(ProposalError, match="no edit 5"):
        gate(ws, p.id, [5])


@pytest.mark.slow
def test_a_rule_replacing_a_net_is_gated_as_a_simplification(ws):
    v = gate_edits(ws, [{"op": "describe", "id": "petal", "implementation": "rule", "rule": "white_elongated"}],
                   config=FAST)
    assert v.kind == "simplification" and "petal" in v.retrained and v.n == 16
    assert v.decision in ("merge", "reject", "inconclusive") and v.ci_low <= v.difference <= v.ci_high


def test_the_gate_trains_with_the_settings_of_the_saved_models(ws):
    from workbench.models.store import ModelStore
    from workbench.review.gate import _default_config

    settings, shash = ModelStore(ws.models_dir).saved_training()
    assert shash == settings_hash(WeightFreeSegmenter())
    config = _default_config(ws, settings)
    assert (config.max_epochs, config.patience, config.crop_size) == (FAST.max_epochs, FAST.patience, FAST.crop_size)
