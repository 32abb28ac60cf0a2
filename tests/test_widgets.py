"""The segment labeler driven headless, the way the browser drives it: custom messages and key names.

Each test gets its own copy of a tiny segmented workspace (built once per module)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import workbench  # noqa: E402
from workbench.data.store import LabelStore  # noqa: E402
from workbench.jupyter.widgets.labeler import Labeler, concept_keys  # noqa: E402
from workbench.workspace.folder import Workspace  # noqa: E402


@pytest.fixture
def ws(segmented_ws):
    return segmented_ws


def key(w: Labeler, k: str) -> None:
    w._handle_custom_msg({"type": "key", "key": k}, [])


def keymap(w: Labeler) -> dict[str, str]:
    return {k["concept"]: k["key"] for k in w.bindings if k["action"] == "label"}


def test_keys_digits_then_letters_skip_action_letters():
    km = concept_keys([f"c{i}" for i in range(14)])
    assert list(km)[:10] == [*"123456789", "a"]
    assert not {"n", "s", "u"} & set(km)


def test_a_keypress_stores_the_label_and_shows_the_next_segment(ws):
    w = Labeler(ws, author="alice")
    assert w.error == ""
    state = w.get_state()  # what the browser receives when the widget opens
    assert state["_model_module"] == "anywidget" and {"current", "upcoming", "bindings", "progress"} <= set(state)
    first, nxt = w.segment_id, w.upcoming_ids
    assert first is not None and len(nxt) == 6 and first not in nxt
    assert w.current["context"].startswith("data:image/jpeg;base64,")
    assert all(u["thumb"].startswith("data:image/png;base64,") for u in w.upcoming)
    key(w, keymap(w)["petal"])
    row = ws.store.label(first)
    assert (row.concept, row.source, row.author) == ("petal", "person", "alice")
    assert row.elapsed_ms is not None and row.elapsed_ms >= 0
    assert w.segment_id == nxt[0]
    key(w, "n")
    assert ws.store.label(nxt[0]).concept == "none"
    assert w.progress["labelled"] == 2 and w.progress["counts"] == {"none": 1, "petal": 1}
    assert w.progress["total"] == ws.store.progress()[1]
    # an unknown key does nothing
    before = w.segment_id
    key(w, "F5")
    assert w.segment_id == before and w.error == ""


def test_undo_walks_back_several_labels(ws):
    w = Labeler(ws, author="alice")
    km = keymap(w)
    s1 = w.segment_id
    key(w, km["petal"])
    s2 = w.segment_id
    key(w, km["disk"])
    s3 = w.segment_id
    key(w, km["leaf"])
    assert [ws.store.label(s).concept for s in (s1, s2, s3)] == ["petal", "disk", "leaf"]
    key(w, "u")
    assert ws.store.label(s3) is None and w.segment_id == s3
    key(w, "Backspace")
    assert ws.store.label(s2) is None and w.segment_id == s2
    key(w, "u")
    assert ws.store.label(s1) is None and w.segment_id == s1
    assert w.progress["labelled"] == 0
    key(w, "u")
    assert "Nothing to undo" in w.message
    # relabel after undo goes on to the next unlabelled one
    key(w, km["stem"])
    assert ws.store.label(s1).concept == "stem" and w.segment_id == s2


def test_a_thumbnail_click_jumps_to_that_segment(ws):
    w = Labeler(ws, author="alice")
    third = w.upcoming_ids[2]
    w._handle_custom_msg({"type": "goto", "segment_id": third}, [])
    assert w.segment_id == third and w.current["segment_id"] == third
    w._handle_custom_msg({"type": "goto", "segment_id": 10**9}, [])
    assert "no segment" in w.error and w.segment_id == third


def test_skip_leaves_the_segment_unlabelled(ws):
    w = Labeler(ws, author="alice")
    s1 = w.segment_id
    key(w, "s")
    assert ws.store.label(s1) is None and w.segment_id != s1


def test_resumes_after_the_last_label_when_reopened(ws):
    w = Labeler(ws, author="bob")
    for _ in range(4):
        key(w, "n")
    last, expected_next = ws.store.last_label(author="bob").segment_id, w.segment_id
    path = ws.path
    ws.close()
    with Workspace.open(path) as again:
        w2 = Labeler(again, author="bob")
        assert w2.segment_id == expected_next != last
        assert w2.progress["labelled"] == 4
    ws.store = LabelStore(path / "labels.sqlite")  # the fixture closes it again


def test_next_and_previous_image(ws):
    w = Labeler(ws, author="alice")
    img0 = w.current["image_id"]
    key(w, "]")
    img1 = w.current["image_id"]
    assert img1 != img0
    key(w, "[")
    assert w.current["image_id"] == img0


def test_filter_by_concept_and_by_image_class(ws):
    segs = [s.id for s in ws.store.segments()]
    ws.store.set_label(segs[5], "leaf", source="person", author="x")
    ws.store.set_label(segs[9], "leaf", source="person", author="x")
    w = Labeler(ws, concept="leaf", author="alice")
    assert w.segment_id == segs[5] and w.upcoming_ids == [segs[9]]
    assert w.current["label"] == "leaf"
    # correcting a label in the concept view
    key(w, keymap(w)["stem"])
    assert ws.store.label(segs[5]).concept == "stem"

    not_daisy = {im.id for im in ws.store.images(class_label="not_daisy")}
    w = Labeler(ws, image_class="not_daisy", author="alice")
    shown = [w.segment_id, *w.upcoming_ids]
    assert shown and all(ws.store.segment(s).image_id in not_daisy for s in shown)
    for _ in range(3):
        key(w, "n")
        assert ws.store.segment(w.segment_id).image_id in not_daisy
    # the same filter from the browser's menu
    w._handle_custom_msg({"type": "filter", "value": "class:daisy"}, [])
    assert "class daisy" in w.filter_text
    assert ws.store.image(ws.store.segment(w.segment_id).image_id).class_label == "daisy"


def test_suggested_filter_and_enter_accepts(ws):
    segs = [s.id for s in ws.store.segments()]
    ws.store.add_suggestions([(segs[3], "petal"), (segs[7], "disk")], model="claude-test")
    w = Labeler(ws, suggested=True, author="alice")
    assert w.segment_id == segs[3]
    assert w.current["suggestion"] == {"concept": "petal", "model": "claude-test"}
    key(w, "Enter")
    assert ws.store.label(segs[3]).concept == "petal"
    assert ws.store.suggestions(pending_only=False, segment_id=segs[3])[0].status == "confirmed"
    assert w.segment_id == segs[7]
    key(w, keymap(w)["leaf"])  # a different key rejects the suggestion
    assert ws.store.suggestions(pending_only=False, segment_id=segs[7])[0].status == "rejected"
    assert w.segment_id is None and "No LLM suggestion" in w.empty and w.current == {}
    key(w, "Enter")
    assert w.error == ""


def test_no_suggestions_says_so(ws):
    w = Labeler(ws, suggested=True, author="alice")
    assert w.segment_id is None and w.empty.startswith("No LLM suggestion awaits confirmation.")
    assert w.notice == "" and w.filter_value == "suggested"  # said once, and the menu shows the filter


def test_least_certain_without_models_says_so_and_falls_back(ws):
    w = Labeler(ws, least_certain=True, author="alice")
    assert "needs trained part models" in w.notice
    assert w.segment_id == ws.store.next_unlabeled().id


def test_create_a_concept_makes_a_person_proposal(ws):
    from workbench.review.store import ProposalStore

    w = Labeler(ws, author="alice")
    sid = w.segment_id
    w._handle_custom_msg({"type": "create_concept", "id": "bud", "label": "Flower bud",
                          "description": "a closed green knob on a stem", "parents": ["daisy"],
                          "rationale": "some images show closed buds"}, [])
    assert w.error == ""
    [p] = ProposalStore(ws).list()
    assert p.kind == "person" and p.author == "person:alice" and p.status == "pending"
    assert p.edits[0].op["op"] == "add_concept" and p.edits[0].op["id"] == "bud"
    assert p.evidence.segments == (sid,)
    assert p.id in w.message
    assert "bud" not in ws.ontology  # nothing changes until the proposal is accepted
    # an invalid one is refused in the widget, nothing saved
    w._handle_custom_msg({"type": "create_concept", "id": "petal", "label": "Petal again"}, [])
    assert "already exists" in w.error
    assert len(ProposalStore(ws).list()) == 1


def test_errors_show_in_the_widget_not_only_the_log(ws):
    w = Labeler(ws, author="alice")
    sid = w.segment_id
    w._handle_custom_msg({"type": "label", "concept": "unicorn"}, [])
    assert "not a part concept" in w.error and ws.store.label(sid) is None
    key(w, "n")
    assert w.error == ""  # the next action clears it


def test_a_missing_image_is_an_error_for_that_image_and_skipped(ws):
    first_img = ws.store.images()[0]
    (ws.path.parent / "data" / first_img.path).unlink()
    w = Labeler(ws, author="alice")
    assert first_img.path in w.error and "skipped" in w.error
    assert w.skipped == [{"image": first_img.path, "reason": "file not found"}]
    assert w.segment_id is not None
    assert ws.store.segment(w.segment_id).image_id != first_img.id
    assert all(ws.store.segment(s).image_id != first_img.id for s in w.upcoming_ids)


def test_a_corrupt_image_is_reported_too(ws):
    img = ws.store.images()[1]
    (ws.path.parent / "data" / img.path).write_bytes(b"not a png")
    w = Labeler(ws, author="alice")
    for _ in range(40):
        if w.segment_id is None:
            break
        assert ws.store.segment(w.segment_id).image_id != img.id
        key(w, "n")
    assert [x["image"] for x in w.skipped] == [img.path]  # stays listed after later actions
    assert "not an image" in w.skipped[0]["reason"]


def test_labels_are_data_in_the_browser_code():
    js = (Path(workbench.__file__).parent / "jupyter" / "widgets" / "_static" / "labeler.js").read_text()
    import re

    assert not re.search(r"\.(innerHTML|outerHTML)\b|insertAdjacentHTML|\beval\(|new Function", js)
    assert "data-lm-suppress-shortcuts" in js and "tabIndex = 0" in js


def test_open_gives_the_workbench_facade(ws):
    wb = workbench.open(ws.path, author="carol")
    try:
        assert "daisy" in repr(wb) and "segments labelled" in wb._repr_html_()
        lab = wb.label(image_class="daisy")
        assert isinstance(lab, Labeler) and lab.author == "carol"
        assert wb.ontology.root == "daisy"
    finally:
        wb.close()


def test_an_empty_store_says_what_to_do(daisy_ws):
    lab = Labeler(daisy_ws, author="alice")
    assert lab.segment_id is None and lab.error == ""
    assert "No segments" in lab.notice and "workbench segment" in lab.notice
    key(lab, "1")
    assert "Nothing to label" in lab.message


def test_an_accepted_concept_gets_its_key_without_reopening(ws):
    from workbench.review.decisions import accept
    from workbench.review.store import ProposalStore

    w = Labeler(ws, author="alice")
    w.create_concept("bud", "Flower bud", "a closed green knob", parents=["flower_head"])
    [p] = ProposalStore(ws).list()
    accept(ws, p.id, by="ana")
    before = keymap(w)
    sid = w.segment_id
    key(w, "1")  # the press notices the new ontology first; existing keys stay where they were
    assert before["disk"] == "1" and ws.store.label(sid).concept == "disk"
    after = keymap(w)
    assert {c: after[c] for c in before} == before and after["bud"] == "5"
    bud_key = after["bud"]
    target = w.segment_id
    key(w, bud_key)
    assert ws.store.label(target).concept == "bud"


def test_images_after_the_strip_are_decoded_in_the_background(ws):
    import time

    from workbench.jupyter.widgets._render import image_file

    images = ws.store.images()
    first = [s.id for s in ws.store.segments(image_id=images[0].id)]
    second = str(image_file(ws, images[1].path))
    w = Labeler(ws, author="alice", prefetch=1)
    assert second not in w._images._items
    w.goto(first[-2])  # the strip holds first[-1]; the segment after it is on the next image
    assert w.upcoming_ids == [first[-1]]
    deadline = time.monotonic() + 10
    while second not in w._images._items and time.monotonic() < deadline:
        time.sleep(0.02)
    assert second in w._images._items
    w.close()


def test_a_missing_browser_skips_unless_ci_requires_it(monkeypatch):
    import browser_utils

    monkeypatch.setattr(browser_utils, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("WORKBENCH_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        browser_utils.chromium_or_skip()
    monkeypatch.setenv("WORKBENCH_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="WORKBENCH_REQUIRE_BROWSER=1"):
        browser_utils.chromium_or_skip()


# ------------------------------------------------------------------------------- staying current, empty, saved
def test_labels_made_elsewhere_show_when_the_labeler_gets_the_focus(ws):
    w = Labeler(ws, author="alice")
    first = w.segment_id
    other = Labeler(ws, author="bob")  # another cell (or person) labels the segment alice is looking at
    other.label("petal")
    assert w.progress["labelled"] == 0  # not yet seen
    w._handle_custom_msg({"type": "sync"}, [])  # what the browser sends when the widget gets the focus
    assert w.progress["labelled"] == 1 and w.progress["counts"] == {"petal": 1}
    assert w.segment_id != first and ws.store.label(w.segment_id) is None


def test_an_empty_filter_says_why_in_a_sentence(ws):
    w = Labeler(ws, author="alice", concept="petal")
    assert w.segment_id is None and w.current == {} and w.upcoming == []
    assert w.empty.startswith("No segment is labelled petal yet.")
    for seg in ws.store.segments():
        ws.store.set_label(seg.id, "none", source="ground_truth", author="masks")
    w = Labeler(ws, author="alice")
    total = len(ws.store.segments())
    assert w.empty == (f"Nothing left to label: every segment has a label ({total} / {total}). Pick “labelled …” "
                       "above to check or correct labels, or add and segment more images.")
    js = (Path(__file__).parents[1] / "workbench/jupyter/widgets/_static/labeler.js").read_text()
    assert 'main.style.display = empty ? "none" : ""' in js  # no empty picture frames when there is nothing


def test_wb_apply_refreshes_a_shown_labeler(labelled_ws):
    ws = labelled_ws
    from workbench.review.proposals import make_proposal
    from workbench.review.store import ProposalStore

    seg = ws.store.segments()[0]
    ws.store.undo(seg.id, author="masks:parts.json")
    p = ProposalStore(ws).save(make_proposal(ws.ontology, [{"op": {"op": "rename", "old": "petal", "new": "ray"},
                                                            "rationale": "botany"}], kind="person",
                                             author="person:t", title="ray"))
    with workbench.open(ws.path, author="alice") as wb:
        w = wb.label()
        assert "petal" in keymap(w)
        wb.apply(p.id, gate=False)
        assert "ray" in keymap(w) and "petal" not in keymap(w)  # its keys follow the ontology at once


def test_a_saved_labeler_shows_a_picture_and_how_to_get_it_back(ws):
    w = Labeler(ws, author="alice")
    bundle, _metadata = w._repr_mimebundle_()  # anywidget: (data, metadata)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    html = bundle["text/html"]
    assert "wb-fallback" in html and "run the cell again" in html and "data:image/jpeg;base64," in html
    assert f"segment {w.segment_id}" in html and "0 / " in html


def test_the_pin_key_pins_the_current_segment_as_its_label_and_commits_it(labelled_ws):
    """``!`` in the one-at-a-time labeler pins the segment on screen as "must be" its label, in a committed
    ``pins/<concept>.yaml``; on an unlabelled segment it pins nothing and says why."""
    import subprocess

    from workbench.workspace.pins import pins

    ws = labelled_ws
    petal = [s for s, lab in ws.store.segments_with_labels() if lab is not None and lab.concept == "petal"]
    assert petal, "the fixture has petal labels"
    lab = Labeler(ws, concept="petal", grid=False, author="ana")
    shown = lab.segment_id
    lab.press("!")
    got = pins(ws)
    assert [(p.concept, p.expect) for p in got] == [("petal", "must")], lab.message
    assert "pinned segment" in lab.message and str(shown) in lab.message
    log = subprocess.run(["git", "-C", str(ws.path), "log", "-1", "--format=%B"], capture_output=True, text=True).stdout
    assert "petal" in log and "ana" in log
    lab.close()

    ws.store.clear_label(shown, author="ana")  # an unlabelled segment: nothing to pin it as
    fresh = Labeler(ws, grid=False, author="ana")
    fresh.goto(shown)
    fresh.press("!")
    assert "no label yet" in fresh.message
    assert len(pins(ws)) == 1
    fresh.close()
