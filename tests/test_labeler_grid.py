"""Grid review in the labeler, driven headless the way the browser drives it (custom messages with the
focused tile's segment id): pages ranked by propagation, deselecting, one transaction per page, undo of a
whole page, provenance (``via``), the countdown before a concept can be ranked, the default strategy,
least-certain single labels from propagation, and background retraining that never blocks a key.

Each test gets its own copy of a small segmented workspace with half of its images labelled from the
ground-truth masks (the other half left for the grid)."""
from __future__ import annotations

import copy
import sqlite3
import time

import pytest

import workbench.jupyter.widgets.labeler as labeler_mod
from workbench.data.datasets import ImageFolder
from workbench.data.labelers import label_from_masks
from workbench.data.segment import WeightFreeSegmenter, settings_hash
from workbench.jupyter.widgets.labeler import GRID_PAGE, Labeler
from workbench.models.propagate import MIN_LABELS, rank_for_concept


@pytest.fixture
def half_ws(segmented_ws, tmp_path):
    """Every other image labelled from its masks (ground truth); the rest unlabelled."""
    ws = segmented_ws
    folder = ImageFolder(tmp_path / "data")
    some = copy.copy(folder)
    some.records = [r for i, r in enumerate(folder.records) if i % 2 == 0]
    label_from_masks(ws.store, some, ws.ontology, settings_hash=settings_hash(WeightFreeSegmenter()))
    return ws


def key(w: Labeler, k: str, sid: int | None = None) -> None:
    msg = {"type": "key", "key": k}
    if sid is not None:
        msg["segment_id"] = sid
    w._handle_custom_msg(msg, [])


def keymap(w: Labeler) -> dict[str, str]:
    return {b["concept"]: b["key"] for b in w.bindings if b["action"] == "label"}


def test_a_grid_page_is_what_propagation_ranks_all_selected(half_ws):
    ws = half_ws
    w = Labeler(ws, author="ana", concept="petal", grid=True, train_every=0)
    assert w.error == "" and w.mode == "grid" and w.segment_id is None and w.current == {}
    expected = [r.segment_id for r in rank_for_concept(ws, "petal", order="confident", limit=GRID_PAGE)]
    assert w.page_ids == expected and len(expected) == GRID_PAGE
    assert w.grid["concept"] == "petal" and w.grid["model"].startswith("similarity")
    assert all(t["thumb"].startswith("data:image/jpeg;base64,") for t in w.grid["tiles"])
    assert w.grid_choices == {}  # all selected
    assert all(ws.store.label(s) is None for s in w.page_ids)  # only unlabelled segments are offered
    assert w.filter_value == "grid:petal" and "grid review of petal" in w.filter_text
    keys = {b["key"]: b["action"] for b in w.bindings}
    assert {keys["Enter"], keys[" "], keys["x"], keys["u"], keys["s"]} == {"accept_page", "toggle", "deselect",
                                                                           "undo", "skip_page"}
    assert keys["!"] == "pin"  # pins the focused tile as a per-concept test
    w.close()


def test_deselect_by_key_accept_in_one_transaction_with_provenance(half_ws):
    ws = half_ws
    w = Labeler(ws, author="ana", concept="petal", grid=True, train_every=0)
    page = w.page_ids
    model = w.grid["model"]
    key(w, "x", page[0])  # deselect -> none
    key(w, " ", page[1])  # toggle -> none
    key(w, " ", page[2])
    key(w, " ", page[2])  # toggled back: selected
    key(w, keymap(w)["stem"], page[3])  # a concept key on the focused tile: stem
    assert w.grid_choices == {str(page[0]): "none", str(page[1]): "none", str(page[3]): "stem"}
    key(w, "x")  # no tile focused: says so, changes nothing
    assert "Focus a tile first" in w.message
    assert all(ws.store.label(s) is None for s in page)  # nothing stored before Enter
    assert w.wait(60)
    key(w, "Enter")
    assert w.error == ""
    rows = {s: ws.store.label(s) for s in page}
    assert [rows[s].concept for s in page[:4]] == ["none", "none", "petal", "stem"]
    assert all(rows[s].concept == "petal" for s in page[4:])
    assert {(r.source, r.author, r.via) for r in rows.values()} == {("person", "ana", f"grid petal: {model}")}
    assert all(r.elapsed_ms is not None and r.elapsed_ms >= 0 for r in rows.values())
    assert "page accepted" in w.message and f"{len(page) - 3} petal" in w.message
    # the next page: other segments, all unlabelled, all selected
    nxt = w.page_ids
    assert nxt and not set(nxt) & set(page) and w.grid_choices == {}
    assert all(ws.store.label(s) is None for s in nxt)
    w.close()


def test_a_page_is_stored_whole_or_not_at_all(half_ws):
    ws = half_ws
    w = Labeler(ws, author="ana", concept="petal", grid=True, train_every=0)
    page = w.page_ids
    # the 10th label of the page fails inside the transaction (a trigger refuses it): none may stay
    con = sqlite3.connect(ws.store.path)
    con.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON labels WHEN NEW.segment_id = {page[9]} "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    con.commit()
    key(w, "Enter")
    assert w.error and str(page[9]) in w.error  # the store names the segment whose label failed
    assert all(ws.store.label(s) is None for s in page) and w.page_ids == page  # the page stays to retry
    con.execute("DROP TRIGGER refuse")
    con.commit()
    con.close()
    key(w, "Enter")
    assert w.error == "" and all(ws.store.label(s).concept == "petal" for s in page)
    w.close()


def test_undo_undoes_the_whole_page_and_shows_it_again(half_ws):
    ws = half_ws
    w = Labeler(ws, author="ana", concept="petal", grid=True, train_every=0)
    first = w.page_ids
    key(w, "x", first[5])
    key(w, "Enter")
    second = w.page_ids
    key(w, "x", second[0])
    key(w, "Enter")
    labelled = ws.store.progress()[0]
    key(w, "u")  # the second page: all its labels gone, the page back with its choices
    assert w.page_ids == second and w.grid_choices == {str(second[0]): "none"}
    assert all(ws.store.label(s) is None for s in second)
    assert ws.store.progress()[0] == labelled - len(second)
    assert "undid the page" in w.message
    key(w, "Backspace")  # and the first
    assert w.page_ids == first and w.grid_choices == {str(first[5]): "none"}
    assert all(ws.store.label(s) is None for s in first)
    assert w.progress["labelled"] == ws.store.progress()[0]
    key(w, "u")
    assert "Nothing to undo" in w.message
    w.close()


def test_skip_leaves_a_page_unlabelled_and_does_not_offer_it_again(half_ws):
    ws = half_ws
    w = Labeler(ws, author="ana", concept="petal", grid=True, train_every=0)
    first = w.page_ids
    key(w, "s")
    assert all(ws.store.label(s) is None for s in first)
    assert w.page_ids and not set(w.page_ids) & set(first)
    w.close()


def test_the_next_page_is_built_while_this_one_is_on_screen(half_ws):
    w = Labeler(half_ws, author="ana", concept="petal", grid=True, train_every=0)
    assert w.wait(60)
    built = [t["segment_id"] for t in w._grid_future.result()["tiles"]]  # ranked and rendered in the background
    t = time.perf_counter()
    key(w, "Enter")
    took = time.perf_counter() - t
    assert w.page_ids == built
    t = time.perf_counter()
    w._build_page("petal", exclude=set(w.page_ids))  # what Enter would cost without the prefetch
    build = time.perf_counter() - t
    assert took < max(0.25, build), (took, build)
    w.close()


def test_too_few_labels_count_down_then_the_grid_opens(segmented_ws):
    ws = segmented_ws
    w = Labeler(ws, author="ana", concept="leaf", grid=True, train_every=0)
    assert w.mode == "single" and w.segment_id is not None
    assert f"starts once it has {MIN_LABELS} labels" in w.notice and "0 so far, 5 more to go" in w.notice
    for n in range(1, MIN_LABELS):
        key(w, keymap(w)["leaf"])
        assert w.mode == "single" and f"{n} so far, {MIN_LABELS - n} more to go" in w.notice
    key(w, keymap(w)["leaf"])  # the fifth: the grid is built in the background, keys stay single meanwhile
    assert w.wait(60)
    key(w, "n")  # the next key is still a single label; then the grid is shown
    assert w.mode == "grid" and w.page_ids and w.notice == ""
    assert "grid review of leaf is ready" in w.message
    assert all(ws.store.label(s) is None for s in w.page_ids)
    w.close()


@pytest.mark.parametrize("strategy", labeler_mod.STRATEGIES)
def test_the_default_strategy_decides_what_wb_label_opens(half_ws, monkeypatch, strategy):
    monkeypatch.setattr(labeler_mod, "DEFAULT_STRATEGY", strategy)
    w = Labeler(half_ws, author="ana", train_every=0)
    if strategy == "grid":  # the first part concept in key order that can be ranked
        assert w.mode == "grid" and w.grid["concept"] == "disk" and w.filter_value == "grid:disk"
    else:
        assert w.mode == "single" and w.segment_id is not None
        assert w.filter_value == ("least_certain" if strategy == "least_certain" else "unlabelled")
    w.close()
    # explicit choices win over the default, and a filter is never replaced by a grid
    assert Labeler(half_ws, author="ana", grid=False, train_every=0).mode == "single"
    assert Labeler(half_ws, author="ana", least_certain=True, train_every=0).mode == "single"
    assert Labeler(half_ws, author="ana", concept="petal", train_every=0).filter_value == "concept:petal"


def test_the_default_strategy_without_labels_is_one_at_a_time_without_a_countdown(segmented_ws, monkeypatch):
    monkeypatch.setattr(labeler_mod, "DEFAULT_STRATEGY", "grid")
    w = Labeler(segmented_ws, author="ana", train_every=0)
    assert w.mode == "single" and w.segment_id is not None and w.notice == "" and w.filter_value == "unlabelled"
    for _ in range(MIN_LABELS + 1):
        key(w, keymap(w)["petal"])
    assert w.mode == "single" and w._grid_future is None  # no grid behind the person's back
    w.close()


def test_the_filter_menu_switches_to_a_grid_and_back(half_ws):
    w = Labeler(half_ws, author="ana", grid=False, train_every=0)
    assert {"grid:petal", "grid:"} <= {o["value"] for o in w.filter_options}
    w._handle_custom_msg({"type": "filter", "value": "grid:stem"}, [])
    assert w.error == "" and w.mode == "grid" and w.grid["concept"] == "stem"
    w._handle_custom_msg({"type": "filter", "value": "unlabelled"}, [])
    assert w.mode == "single" and w.segment_id is not None and w.grid == {}
    w._handle_custom_msg({"type": "filter", "value": "grid:daisy"}, [])  # a composite: not ranked
    assert "grid pages confirm a part concept" in w.error
    w.close()


def test_least_certain_single_labels_follow_propagation(half_ws):
    ws = half_ws
    w = Labeler(ws, author="ana", least_certain=True, train_every=0)
    firsts = [rank_for_concept(ws, c, order="uncertain")[0].segment_id for c in ws.ontology.leaves()]
    assert w.segment_id == firsts[0] and w.upcoming_ids[: len(firsts) - 1] == [s for s in firsts[1:] if s != firsts[0]][: len(firsts) - 1]
    assert "nearest the decision" in w.notice
    w.close()


def test_a_keypress_while_a_concept_retrains_is_answered_at_once(half_ws):
    ws = half_ws
    w = Labeler(ws, author="ana", grid=False, train_every=3)
    k = keymap(w)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        key(w, k["petal"])
        times.append(time.perf_counter() - t)
    assert w.trainer is not None
    assert w.trainer.training() == ["petal"], w.trainer.status  # the third petal started a retrain
    during = []
    while w.trainer.training() and len(during) < 8:
        t = time.perf_counter()
        key(w, "n")
        during.append(time.perf_counter() - t)
    assert during, "the training ended before a key could be pressed during it"
    assert max(during) < 0.5, (during, times)  # never waits for the training (which takes seconds)
    assert "petal: retraining in the background" in w.trainer_status or not w.trainer.training()
    assert w.trainer.wait(120)
    key(w, "n")  # the status follows at the next action
    assert "petal: retrained on" in w.trainer_status and " ago" in w.trainer_status, w.trainer_status
    assert ws.models_dir.joinpath("petal.safetensors").exists()
    w.close()


def test_an_unknown_default_strategy_is_a_clear_error(half_ws, monkeypatch):
    monkeypatch.setattr(labeler_mod, "DEFAULT_STRATEGY", "llm_presort")
    with pytest.raises(Exception, match="DEFAULT_STRATEGY must be one of grid, least_certain, store_order"):
        Labeler(half_ws, author="ana", train_every=0)


def test_the_pin_key_on_a_grid_tile_pins_it_by_its_choice_on_the_page(half_ws):
    """``!`` on a focused tile pins it as a per-concept test: selected → must be the page's concept,
    deselected → must not be it, given another concept → must be that one; each a committed pin file."""
    from workbench.workspace.pins import pins

    ws = half_ws
    w = Labeler(ws, author="ana", concept="petal", grid=True, train_every=0)
    page = w.page_ids
    key(w, "x", page[1])
    key(w, keymap(w)["stem"], page[2])
    for sid in page[:3]:
        key(w, "!", sid)
        assert "pinned segment" in w.message, w.message
    got = {(p.concept, p.expect) for p in pins(ws)}
    assert got == {("petal", "must"), ("petal", "must_not"), ("stem", "must")}
    assert all(ws.store.label(s) is None for s in page)  # pinning labels nothing
    w.close()


def test_a_grid_page_shows_the_llm_pre_sort_first_and_records_it(half_ws):
    """Pending LLM suggestions of the page's concept come first on the page (before propagation's ranking),
    and each stored label says which model suggested it; the person's label resolves the suggestion."""
    ws = half_ws
    unlabelled = [s.id for s, lab in ws.store.segments_with_labels() if lab is None]
    suggested = unlabelled[-3:]  # the end of store order: propagation alone would hardly put them first
    ws.store.add_suggestions([(sid, "petal") for sid in suggested], model="claude-test-model")
    w = Labeler(ws, author="ana", concept="petal", grid=True, train_every=0)
    assert w.page_ids[:3] == suggested, (w.page_ids[:5], suggested)
    assert "LLM pre-sort (claude-test-model)" in w.grid["model"]
    key(w, "x", suggested[0])  # the person disagrees with one suggestion
    assert w.wait(60)
    key(w, "Enter")
    assert w.error == ""
    rows = {sid: ws.store.label(sid) for sid in suggested}
    assert rows[suggested[0]].concept == "none" and rows[suggested[1]].concept == "petal"
    assert all("LLM pre-sort (claude-test-model)" in (r.via or "") for r in rows.values()), rows
    status = {s.segment_id: s.status for s in ws.store.suggestions(pending_only=False) if s.segment_id in suggested}
    assert status == {suggested[0]: "rejected", suggested[1]: "confirmed", suggested[2]: "confirmed"}
    w.close()


def test_llm_suggestions_open_a_grid_before_the_concept_has_five_labels(segmented_ws):
    """Nothing labelled and no model, so propagation cannot rank; pending LLM suggestions still make a page."""
    ws = segmented_ws
    sids = [s.id for s in ws.store.segments()][:4]
    ws.store.add_suggestions([(sid, "disk") for sid in sids], model="claude-test-model")
    w = Labeler(ws, author="ana", concept="disk", grid=True, train_every=0)
    assert w.mode == "grid" and w.page_ids == sids, (w.mode, w.notice)
    w.close()
