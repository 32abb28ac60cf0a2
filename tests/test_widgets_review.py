"""The proposal review widget driven headless: checklist, escaping, preview, edit, accept, reject."""
from __future__ import annotations

import json

import pytest

import workbench
from workbench.jupyter.widgets.review import ReviewWidget
from workbench.review.proposals import make_proposal
from workbench.review.store import ProposalStore

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def ws(segmented_ws):
    return segmented_ws


def _proposal(ws, title="Sharper parts"):
    p = make_proposal(ws.ontology, [
        {"op": {"op": "rename", "old": "petal", "new": "ray_petal"}, "rationale": "botanists say ray " + EVIL},
        {"op": {"op": "add_part", "parent": "nowhere", "part": "leaf"}, "rationale": "bad"},
        {"op": {"op": "add_concept", "id": "bud", "label": "Bud", "description": "maybe a closed flower",
                "parents": ["daisy"]}, "rationale": "buds"},
    ], kind="suggest", author="claude:test-model", title=title + " " + EVIL, rationale="overall " + EVIL)
    return ProposalStore(ws).save(p)


def _all_html(w: ReviewWidget) -> str:
    parts = [w.header.value, w.preview_html.value, w.diff_html.value, w.error.value, w.result.value]
    parts += [r.text.value for r in w.rows] + [r.editor_note.value for r in w.rows]
    return "".join(parts)


def test_checklist_escapes_model_text_and_blocks_invalid_edits(ws):
    p = _proposal(ws)
    w = ReviewWidget(ws, p.id, by="ana")
    assert w.error.value == ""
    text = _all_html(w)
    assert "<script" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert [r.check.value for r in w.rows] == [True, False, True]
    assert w.rows[1].check.disabled and "cannot be applied" in w.rows[1].text.value
    assert "lint" in w.rows[2].text.value  # "maybe" is speculative wording: shown, not blocking
    assert w.selected() == [0, 2]
    # the preview of the selection: labels touched, retrain, diff and both graphs
    assert "ray_petal" in w.diff_html.value and "bud" in w.preview_html.value
    assert "models to retrain" in w.preview_html.value and "daisy" in w.preview_html.value
    assert w.graphs.value.count("<svg") == 2


def test_labels_touched_are_counted(ws):
    seg = ws.store.segments()[0].id
    ws.store.set_label(seg, "petal", source="person", author="x")
    w = ReviewWidget(ws, _proposal(ws).id, by="ana")
    assert "edit 0: 1" in w.preview_html.value


def test_unchecking_an_edit_updates_the_preview_and_accepting_applies_only_the_rest(ws):
    p = _proposal(ws)
    w = ReviewWidget(ws, p.id, by="ana")
    w.rows[2].check.value = False
    assert "bud" not in w.preview_html.value and "ray_petal" in w.diff_html.value
    w.accept_button.click()
    assert w.error.value == ""
    assert "ray_petal" in ws.ontology and "bud" not in ws.ontology
    done = ProposalStore(ws).load(p.id)
    assert done.status == "partial" and done.commit
    assert [e.decision for e in done.edits] == ["accepted", "invalid", "rejected"]
    assert w.accept_button.disabled and w.reject_button.disabled
    assert "partial" in w.result.value


def test_editing_an_op_validates_the_json_and_uses_it(ws):
    p = _proposal(ws)
    w = ReviewWidget(ws, p.id, by="ana")
    row = w.rows[0]
    row.edit_button.value = True
    row.editor.value = "{not json"
    assert "✖" in row.editor_note.value
    w.accept_button.click()
    assert "not a valid op" in w.error.value and "ray_petal" not in ws.ontology
    row.editor.value = json.dumps({"op": "rename", "old": "petal", "new": "blade", "extra": 1})
    assert "✖" in row.editor_note.value  # unknown key: the strict parser refuses it
    row.editor.value = json.dumps({"op": "rename", "old": "petal", "new": "blade"})
    assert "valid op" in row.editor_note.value and "blade" in w.diff_html.value
    w.accept_button.click()
    assert w.error.value == ""
    assert "blade" in ws.ontology and "ray_petal" not in ws.ontology and "bud" in ws.ontology
    done = ProposalStore(ws).load(p.id)
    assert done.status == "accepted" and done.decisions[-1]["edited"] == {"0": {"op": "rename", "old": "petal",
                                                                                "new": "blade"}}


def test_a_selection_that_does_not_apply_is_shown_not_raised(ws):
    p = make_proposal(ws.ontology, [
        {"op": {"op": "add_concept", "id": "bud", "label": "Bud", "parents": ["daisy"]}},
        {"op": {"op": "add_part", "parent": "flower_head", "part": "bud"}},
    ], kind="suggest", author="scripted:test")
    p = ProposalStore(ws).save(p)
    w = ReviewWidget(ws, p.id, by="ana")
    w.rows[0].check.value = False  # the second needs the first
    assert "does not apply" in w.preview_html.value or "no concept" in w.preview_html.value
    w.accept_button.click()
    assert w.error.value and "bud" not in ws.ontology


def test_reject_and_the_default_is_the_oldest_pending(ws):
    first = _proposal(ws, "first")
    second = _proposal(ws, "second")
    w = ReviewWidget(ws, by="ana")
    assert w.proposal.id == first.id
    before = ws.ontology
    w.note.value = "not convinced"
    w.reject_button.click()
    assert ProposalStore(ws).load(first.id).status == "rejected" and ws.ontology == before
    assert ReviewWidget(ws, by="ana").proposal.id == second.id
    ReviewWidget(ws, by="ana").reject()
    assert "No pending proposals" in ReviewWidget(ws, by="ana").header.value


def test_unknown_ref_is_an_error_in_the_widget(ws):
    w = ReviewWidget(ws, "0042", by="ana")
    assert "no such proposal" in w.error.value


def test_wb_review_uses_the_facade_author(ws):
    p = _proposal(ws)
    with workbench.open(ws.path, author="dora") as wb:
        w = wb.review(p.id)
        w.reject("no")
    assert ProposalStore(ws).load(p.id).decisions[-1]["by"] == "dora"
