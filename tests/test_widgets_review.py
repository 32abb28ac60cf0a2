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


# ------------------------------------------------------------------------------- after a decision, wb.apply
def _describe(ws, text="A white strap-shaped ray around the disk."):
    return ProposalStore(ws).save(make_proposal(ws.ontology, [{"op": {"op": "describe", "id": "petal",
                                                                      "description": text}, "rationale": "sharper"}],
                                                kind="person", author="person:t", title="Sharper petal"))


def _sepal(ws):
    return ProposalStore(ws).save(make_proposal(ws.ontology, [{"op": {
        "op": "add_concept", "id": "sepal", "label": "Sepal", "parents": ["flower_head"],
        "description": "Small green points under the flower head."}, "rationale": "seen from the side"}],
        kind="person", author="person:t", title="A sepal"))


def _sepal_and_part(ws):
    """An addition that also changes an existing concept: the gate cannot judge it without sepal labels, and
    it cannot go provisional (the add_part changes the classifier), so it is refused."""
    return ProposalStore(ws).save(make_proposal(ws.ontology, [
        {"op": {"op": "add_concept", "id": "sepal", "label": "Sepal", "parents": ["flower_head"],
                "description": "Small green points under the flower head."}, "rationale": "seen from the side"},
        {"op": {"op": "add_part", "parent": "daisy", "part": "disk"}, "rationale": "the disk alone says daisy"}],
        kind="person", author="person:t", title="A sepal"))


def test_after_accepting_every_edit_says_its_decision_not_pending(ws):
    p = _proposal(ws)
    w = ReviewWidget(ws, p.id, by="ana")
    w.accept()
    assert "<b class='wb-status'>accepted</b>" in w.header.value
    texts = [r.text.value for r in w.rows]
    assert not any("(pending)" in t for t in texts), texts
    assert "(accepted)" in texts[0] and "(invalid)" in texts[1]
    assert all(r.check.disabled for r in w.rows) and w.accept_button.disabled
    assert w.preview_html.value == "" and w.graphs.value == ""  # no preview against the new ontology


def test_a_review_widget_follows_wb_apply_in_another_cell(labelled_ws):
    ws = labelled_ws
    p = _describe(ws)
    with workbench.open(ws.path, author="dora") as wb:
        w = wb.review(p.id)
        assert "<b class='wb-status'>pending</b>" in w.header.value and not w.accept_button.disabled
        applied = wb.apply(p.id)
        assert applied.merged and applied.commit
        assert "<b class='wb-status'>accepted</b>" in w.header.value, w.header.value
        assert w.accept_button.disabled and w.reject_button.disabled
        assert "(accepted)" in w.rows[0].text.value and "(pending)" not in w.rows[0].text.value
        assert "Gate: merge" in w.header.value and applied.commit[:12] in w.result.value


def test_apply_merges_on_merge_and_says_so_once(labelled_ws):
    ws = labelled_ws
    p = _describe(ws)
    with workbench.open(ws.path, author="dora") as wb:
        applied = wb.apply(p.id)
    text = str(applied)
    assert text.startswith(f"Merged proposal {p.id} (Sharper petal) as commit {applied.commit[:12]}.")
    assert text.count("no concept model is affected") == 1 and text.count("Gate:") == 1, text
    assert applied._repr_html_().count("no concept model is affected") == 1
    assert applied.verdict.decision == "merge" and ProposalStore(ws).load(p.id).status == "accepted"


def test_apply_refuses_an_inconclusive_verdict_unless_overridden(labelled_ws):
    from workbench.review.gate import GateRejected

    ws = labelled_ws
    p = _sepal_and_part(ws)
    before = ws.ontology_path.read_bytes()
    with workbench.open(ws.path, author="dora") as wb:
        w = wb.review(p.id)
        with pytest.raises(GateRejected) as e:
            wb.apply(p.id)
        message = str(e.value)
        assert "not merged" in message and "inconclusive" in message and "override=" in message
        assert message.count("label some segments as 'sepal'") == 1, message  # the verdict once
        assert ws.ontology_path.read_bytes() == before and "sepal" not in ws.ontology
        recorded = ProposalStore(ws).load(p.id)
        assert recorded.status == "pending" and recorded.gate["decision"] == "inconclusive"
        assert "Gate: inconclusive" in w.header.value  # the shown widget says what the gate said
        applied = wb.apply(p.id, override="the sepal is visible in the new photos")
    assert applied.merged and "sepal" in ws.ontology
    assert "against the gate" in str(applied) and "the sepal is visible" in str(applied)
    import subprocess

    msg = subprocess.run(["git", "-C", str(ws.path), "show", "-s", "--format=%B", applied.commit],
                         capture_output=True, text=True, check=True).stdout
    assert "Gate-override:" in msg and "the sepal is visible in the new photos" in msg and "inconclusive" in msg


def test_the_review_widget_shows_the_evidence_image_and_the_touched_segments(ws):
    seg = ws.store.segments()[0]
    ws.store.set_label(seg.id, "petal", source="person", author="x")
    image = ws.store.image(seg.image_id).path
    from workbench.review.proposals import Evidence

    p = ProposalStore(ws).save(make_proposal(
        ws.ontology, [{"op": {"op": "rename", "old": "petal", "new": "ray"}, "rationale": "botany"}],
        kind="person", author="person:t", title="ray", evidence=Evidence(image=image, segments=(seg.id,))))
    w = ReviewWidget(ws, p.id, by="ana")
    assert w.error.value == ""
    assert "data:image/jpeg;base64," in w.evidence.value and f"segments {seg.id} outlined" in w.evidence.value
    assert "edit 0 moves 1 labelled segment(s) of petal" in w.touched.value
    assert w.touched.value.count("data:image/png;base64,") == 1


def test_a_saved_review_shows_a_readable_picture_without_its_kernel(ws):
    p = _proposal(ws)
    bundle = ReviewWidget(ws, p.id, by="ana")._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    html = bundle["text/html"]
    assert "wb-fallback" in html and "run the cell again" in html
    assert "<script" not in html and "&lt;script&gt;" in html  # still escaped


def test_a_shown_review_updates_its_saved_picture_when_decided(labelled_ws, monkeypatch):
    """Displayed in a notebook, the widget's output (live view + saved stand-in) is sent again after the
    decision, so a notebook saved later shows "accepted", not the "pending" of the moment the cell ran."""
    import IPython.display

    sent: list[tuple[str, dict]] = []

    class Handle:
        def update(self, data, metadata=None, raw=False):
            sent.append(("update", data))

    def fake_display(data, metadata=None, raw=False, display_id=False):
        sent.append(("display", data))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    p = _describe(labelled_ws)
    w = ReviewWidget(labelled_ws, p.id, by="ana")
    w._ipython_display_()
    w.accept()
    assert [k for k, _ in sent] == ["display", "update"]
    assert "<b class='wb-status'>pending</b>" in sent[0][1]["text/html"]
    assert "<b class='wb-status'>accepted</b>" in sent[1][1]["text/html"]
    assert sent[1][1]["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id


def test_a_refusal_shows_its_message_without_a_traceback(labelled_ws):
    from workbench.jupyter.session import NotMerged
    from workbench.review.gate import GateRejected

    p = _sepal_and_part(labelled_ws)
    with workbench.open(labelled_ws.path) as wb, pytest.raises(GateRejected) as e:
        wb.apply(p.id)
    assert isinstance(e.value, NotMerged)
    lines = e.value._render_traceback_()  # what IPython shows in the cell's output
    assert lines == [f"NotMerged: {e.value}"] and "session.py" not in "".join(lines)


def test_findings_appear_beside_the_diff_and_under_their_edit_and_decide_nothing(ws, monkeypatch):
    import dataclasses

    from workbench.review.findings import Finding, Review

    p = _proposal(ws)
    before = ws.ontology_path.read_bytes()
    w = ReviewWidget(ws, p.id, by="ana")  # unreviewed and pending: the scripted reviewer runs first
    stored = ProposalStore(ws).load(p.id)
    assert stored.review is not None and stored.review.scripted and stored.status == "pending"
    assert ws.ontology_path.read_bytes() == before
    assert "Second reviewer" in w.findings_html.value and "authored findings, not model output" in w.findings_html.value
    assert "contradiction" in w.findings_html.value  # the invalid add_part, found by the checks
    assert w.findings_html in w.children[-2].children and w.diff_html in w.children[-2].children  # side by side
    # a model's findings, hostile text included, are shown escaped, under the edit they are about
    r = Review("claude:test-model", "2026-11-23T10:00:00Z",
               (Finding("overlap", "same as petal " + EVIL, about="ray_petal", edit=0, severity="serious"),),
               model="test-model")
    ProposalStore(ws).update(dataclasses.replace(stored, review=r))
    w = ReviewWidget(ws, p.id, by="ana")
    assert "same as petal" in w.rows[0].text.value and "<script>" not in w.rows[0].text.value
    assert "&lt;script&gt;" in w.findings_html.value and "<script>" not in w.findings_html.value
    assert not w.accept_button.disabled  # advice only: the person still decides
    done = w.accept()
    assert done.status in ("accepted", "partial") and done.review == r  # deciding keeps the review beside the edits


def test_a_reviewer_that_cannot_run_is_said_and_the_proposal_still_shows(ws, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    ws.settings = ws.settings.replace(reviewer="claude")
    p = _proposal(ws)
    w = ReviewWidget(ws, p.id, by="ana")
    assert w.error.value == "" and len(w.rows) == 3
    assert "not reviewed yet" in w.findings_html.value and "ANTHROPIC_API_KEY" in w.findings_html.value
    assert ProposalStore(ws).load(p.id).review is None
