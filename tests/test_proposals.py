"""Tests for the proposal modules of workbench/review: the data (proposals.py), the store (store.py),
preview/accept/reject (decisions.py), the queries (queries.py) and the escaping (render.py).
Reference forms are tested once, in tests/test_refs.py."""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from workbench.data.store import SegmentData
from workbench.errors import ProposalConflict, ProposalError, WorkspaceError
from workbench.ontology.graph import Concept, Ontology
from workbench.review.decisions import accept, preview, reject
from workbench.review.proposals import (
    Evidence,
    Proposal,
    ProposedEdit,
    make_proposal,
    ontology_hash,
)
from workbench.review.queries import introduced_by, proposals_touching
from workbench.review.render import escape_html, escape_terminal, proposal_html
from workbench.review.store import ProposalStore
from workbench.workspace.folder import Workspace

ROOT = Path(__file__).resolve().parents[1]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


def _small() -> Ontology:
    return Ontology("daisy", "daisy", [
        Concept("daisy", "Daisy", parts=("flower_head", "stem")),
        Concept("flower_head", "Flower head", parts=("petal",)),
        Concept("petal", "Petal", "white blade"),
        Concept("stem", "Stem", "green line"),
    ])


@pytest.fixture
def ws(tmp_path):  # its own, not conftest's daisy_ws: the tests need the small hand-written ontology above
    with Workspace.create(tmp_path / "ws", _small()) as w:
        yield w


def _item(op: dict, why: str = "") -> dict:
    return {"op": op, "rationale": why}


def _git(path: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True).stdout


def _label(ws: Workspace, concepts: list[str]) -> list[int]:
    img = ws.store.add_image("daisy/0001.png", "b" * 64, 8, 8, "daisy")
    segs = []
    for i in range(len(concepts)):
        m = np.zeros((8, 8), bool)
        m[i % 8, :] = True
        segs.append(SegmentData(bbox=(0, i % 8, 8, i % 8 + 1), area=8, mask=m))
    ids = ws.store.add_segments(img, "test-1", segs)
    for sid, c in zip(ids, concepts):
        ws.store.set_label(sid, c, source="person", author="ana")
    return ids


# ------------------------------------------------------------------------------------------- make_proposal
def test_each_op_is_validated_in_order_and_invalid_ones_are_kept_with_why():
    o = _small()
    raw = [
        _item({"op": "add_concept", "id": "disk", "label": "Disk", "parents": ["flower_head"]}, "yellow centre"),
        _item({"op": "describe", "id": "disk", "description": "round yellow button"}),  # needs the one before
        _item({"op": "teleport", "id": "disk"}),  # unknown op
        _item({"op": "add_part", "parent": "daisy"}),  # malformed: missing field
        _item({"op": "add_part", "parent": "sepal", "part": "disk"}),  # unknown concept
        _item({"op": "add_part", "parent": "petal", "part": "daisy"}),  # root as a part / cycle
        _item({"op": "add_part", "parent": "petal", "part": "flower_head"}),  # cycle
        _item({"op": "add_concept", "id": "stem", "label": "Stem again", "parents": ["daisy"]}),  # duplicate id
        "delete everything",  # not a mapping at all
        _item({"op": "remove_concept", "id": "disk"}),  # valid: disk exists after op 0
    ]
    p = make_proposal(o, raw, kind="suggest", author="scripted:test")
    assert [e.valid for e in p.edits] == [True, True, False, False, False, False, False, False, False, True]
    assert [e.decision for e in p.edits] == ["pending", "pending"] + ["invalid"] * 7 + ["pending"]
    assert "unknown op 'teleport'" in p.edits[2].problem
    assert "missing field `part`" in p.edits[3].problem
    assert "no concept 'sepal'" in p.edits[4].problem
    assert "part of itself" in p.edits[6].problem and "flower_head" in p.edits[6].problem
    assert "already exists" in p.edits[7].problem
    assert p.edits[8].op == {"value": "delete everything"} and "mapping" in p.edits[8].problem
    assert p.edits[0].rationale == "yellow centre"
    assert p.base == ontology_hash(o) and p.status == "pending" and p.created.endswith("Z")
    # the ops are kept exactly as proposed
    assert p.edits[2].op == {"op": "teleport", "id": "disk"}
    for e in p.edits:
        if not e.valid:
            with pytest.raises(ProposalError, match="invalid, cannot be applied"):
                e.edit()


def test_an_op_after_an_invalid_one_is_checked_against_the_ontology_without_it():
    p = make_proposal(_small(), [
        _item({"op": "add_concept", "id": "disk", "label": "Disk", "parents": ["nowhere"]}),
        _item({"op": "describe", "id": "disk", "label": "Disk!"}),
    ], kind="suggest", author="scripted:test")
    assert not p.edits[0].valid and not p.edits[1].valid
    assert "no concept 'disk'" in p.edits[1].problem


def test_bare_edit_mappings_and_allowed_ops():
    p = make_proposal(_small(), [
        {"op": "rename", "old": "petal", "new": "ray_petal", "rationale": "botanical name"},
        {"op": "remove_concept", "id": "stem"},
    ], kind="refactor", author="scripted:test", allowed_ops=("rename", "merge"))
    assert p.edits[0].valid and p.edits[0].rationale == "botanical name"
    assert p.edits[0].op == {"op": "rename", "old": "petal", "new": "ray_petal"}
    assert not p.edits[1].valid and "not allowed here" in p.edits[1].problem
    with pytest.raises(ProposalError, match="kind"):
        make_proposal(_small(), [], kind="magic", author="x")
    with pytest.raises(ProposalError, match="author"):
        make_proposal(_small(), [], kind="suggest", author=" ")


def test_lint_runs_on_proposed_concepts():
    p = make_proposal(_small(), [
        _item({"op": "add_concept", "id": "hinge", "label": "Hinge", "description": "allows pivoting; possibly hard",
               "parents": ["daisy"]}),
        _item({"op": "describe", "id": "petal", "description": "white, narrow"}),
    ], kind="suggest", author="scripted:test")
    assert any(w.startswith("function:") for w in p.edits[0].lint)
    assert any(w.startswith("speculative:") for w in p.edits[0].lint)
    assert any("hardness" in w for w in p.edits[0].lint)
    assert p.edits[1].lint == ()
    assert p.edits[0].valid  # lint warns, never blocks


def test_round_trip_through_plain_data_and_yaml():
    p = make_proposal(_small(), [
        _item({"op": "add_concept", "id": "disk", "label": "Disk", "parents": ["flower_head"]}, "centre <b>x</b>"),
        _item({"op": "nope"}),
    ], kind="suggest", author="claude:claude-test", title="t", rationale="r ![i](https://evil/x.png)",
        evidence=Evidence("daisy/0003.png", "c" * 64, (4, 5), "cache/t.png"),
        exchange={"request": {"model": "m"}, "response": {"content": []}})
    assert Proposal.from_dict(p.to_dict(), "x") == p
    assert Proposal.loads(p.dumps(), "x") == p
    assert ProposedEdit.from_dict(p.edits[1].to_dict()) == p.edits[1]


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.update(colour="red"), "unknown key 'colour'"),
    (lambda d: d.update(status="merged"), "status"),
    (lambda d: d.update(kind="magic"), "kind"),
    (lambda d: d.update(id="../etc"), "id"),
    (lambda d: d.update(format=99), "newer workbench"),
    (lambda d: d.pop("base"), "missing `base`"),
    (lambda d: d["edits"][0].update(decision="maybe"), "decision"),
    (lambda d: d.update(edits="all"), "edits"),
])
def test_from_dict_refuses_malformed_files_naming_them(mutate, match):
    d = make_proposal(_small(), [_item({"op": "describe", "id": "stem", "label": "S"})],
                      kind="suggest", author="x").to_dict()
    mutate(d)
    with pytest.raises(ProposalError, match=match) as e:
        Proposal.from_dict(d, "proposals/0009.yaml")
    assert "proposals/0009.yaml" in str(e.value)


def test_secrets_never_reach_the_file():
    p = make_proposal(_small(), [], kind="suggest", author="claude:m",
                      exchange={"request": {"headers": {"x-api-key": "sk-ant-CANARY", "Authorization": "Bearer sk-CANARY"},
                                            "api_key": "sk-ant-CANARY"}})
    assert "CANARY" not in p.dumps()


# ------------------------------------------------------------------------------------------------ storing
def test_store_assigns_fresh_ids_and_never_overwrites(ws):
    st = ProposalStore(ws)
    p = make_proposal(ws.ontology, [], kind="suggest", author="x")
    a = st.save(p)
    assert a.id == "0001" and (ws.proposals_dir / "0001.yaml").is_file()
    (ws.proposals_dir / "0002.yaml").write_text("someone else's\n")  # another writer got there first
    b = st.save(p)
    assert b.id == "0003"
    assert (ws.proposals_dir / "0002.yaml").read_text() == "someone else's\n"
    with pytest.raises(ProposalError, match="already exists"):
        st.save(a)
    assert st.load(1) == st.load("proposals/0001.yaml") == st.load(st.path("0001")) == a  # the file's own path too


def test_concurrent_saves_get_distinct_ids(ws):
    st = ProposalStore(ws, commit=False)
    p = make_proposal(ws.ontology, [], kind="suggest", author="x")
    got: list[str] = []
    lock = threading.Lock()

    def work():
        for _ in range(5):
            q = st.save(p)
            with lock:
                got.append(q.id)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 20 and len(set(got)) == 20
    assert sorted(st.ids()) == sorted(got)


def test_load_refuses_paths_outside_proposals(ws, tmp_path):
    """The store parses refs with workbench.review.refs (every form is tested there), given its own folder."""
    st = ProposalStore(ws)
    st.save(make_proposal(ws.ontology, [], kind="suggest", author="x"))
    outside = tmp_path / "elsewhere" / "0001.yaml"
    outside.parent.mkdir()
    outside.write_text(st.path("0001").read_text())
    for ref in ("../ontology.yaml", outside, str(outside), ws.path / "ontology.yaml"):
        with pytest.raises(ProposalError, match="inside the workspace"):
            st.load(ref)


def test_load_refuses_a_link_out_of_proposals(ws, tmp_path):
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(make_proposal(ws.ontology, [], kind="suggest", author="x").dumps())
    os.symlink(outside, ws.proposals_dir / "0005.yaml")
    with pytest.raises(ProposalError, match="outside proposals"):
        ProposalStore(ws).load("0005")


def test_missing_proposal_says_how_to_list(ws):
    with pytest.raises(ProposalError, match="workbench proposals list"):
        ProposalStore(ws).load(42)


# ------------------------------------------------------------------------------------------------ preview
def test_preview_reports_diff_concepts_labels_and_retrain(ws):
    _label(ws, ["petal", "petal", "petal", "stem", "flower_head"])
    p = ProposalStore(ws).save(make_proposal(ws.ontology, [
        _item({"op": "rename", "old": "petal", "new": "ray_petal"}),
        _item({"op": "add_concept", "id": "disk", "label": "Disk", "parents": ["flower_head"]}),
        _item({"op": "merge", "sources": ["ray_petal", "disk"], "into": "head_part"}),
        _item({"op": "remove_concept", "id": "stem"}),
    ], kind="refactor", author="scripted:test"))
    pv = preview(ws, p)
    assert pv.added == ["head_part"] and pv.removed == ["petal", "stem"]
    assert pv.changed == ["daisy", "flower_head"]
    assert pv.labels_touched == {0: 3, 1: 0, 2: 3, 3: 1}
    assert pv.retrain == ["head_part", "flower_head", "daisy"]
    assert "+- id: head_part" in pv.diff and "-- id: stem" in pv.diff
    assert not pv.stale and pv.chosen == [0, 1, 2, 3]
    only = preview(ws, p, accept=[3])
    assert only.removed == ["stem"] and only.labels_touched == {3: 1} and only.retrain == ["daisy"]
    # a subset that needs a left-out edit is refused, naming it
    with pytest.raises(ProposalError, match="edit 2"):
        preview(ws, p, accept=[2])


def test_preview_and_accept_with_a_person_edited_op(ws):
    p = ProposalStore(ws).save(make_proposal(ws.ontology, [
        _item({"op": "add_concept", "id": "disk", "label": "Disk maybe", "parents": ["flower_head"]}),
    ], kind="suggest", author="scripted:test"))
    fixed = {"op": "add_concept", "id": "disk", "label": "Disk", "description": "yellow", "parents": ["flower_head"]}
    assert preview(ws, p, edited={0: fixed}).after["disk"].label == "Disk"
    done = accept(ws, p, edited={0: fixed}, by="ana")
    assert ws.ontology["disk"].description == "yellow"
    assert done.decisions[-1]["edited"] == {"0": fixed}
    assert introduced_by(ws, "disk").id == p.id


# ------------------------------------------------------------------------------------------------ accept
@needs_git
def test_accept_commits_with_trailers_and_records_the_decision(ws):
    _label(ws, ["petal", "petal"])
    p = ProposalStore(ws).save(make_proposal(ws.ontology, [
        _item({"op": "rename", "old": "petal", "new": "ray_petal"}, "botanical"),
        _item({"op": "add_part", "parent": "ghost", "part": "stem"}),
        _item({"op": "describe", "id": "stem", "label": "Green stem"}),
    ], kind="refactor", author="claude:claude-test", title="Rename petals", rationale="clearer"))
    done = accept(ws, p.id, [0], by="ana", note="checked", gate={"summary": "pass: +0.01 [0.00, 0.02]"})
    assert ws.ontology.parts("flower_head") == ("ray_petal",)
    assert ws.store.counts() == {"ray_petal": 2}
    assert done.status == "partial" and [e.decision for e in done.edits] == ["accepted", "invalid", "rejected"]
    assert done.commit and len(done.commit) == 40
    assert done.decisions[-1]["by"] == "ana" and done.decisions[-1]["edits"] == [0]
    assert done.gate == {"summary": "pass: +0.01 [0.00, 0.02]"}
    msg = _git(ws.path, "log", "-1", "--format=%B", done.commit)
    assert msg.startswith("Rename petals\n\nclearer\n")
    assert "Proposal: 0001\nProposed-by: claude:claude-test\nAccepted-by: ana\nGate: pass: +0.01 [0.00, 0.02]" in msg
    assert _git(ws.path, "show", "--name-only", "--format=", done.commit).split() == ["ontology.yaml"]
    assert ProposalStore(ws).load(1) == done  # the file holds the decision and the sha
    assert not _git(ws.path, "status", "--porcelain", "proposals").strip()  # and is committed
    with pytest.raises(ProposalError, match="already partial"):
        accept(ws, "1", by="ana")
    assert [x.id for x in proposals_touching(ws, "ray_petal")] == ["0001"]
    assert proposals_touching(ws, "stem") == []  # the describe was not accepted


def test_accepting_an_invalid_edit_raises_naming_it_and_changes_nothing(ws):
    before = ws.ontology_path.read_bytes()
    p = ProposalStore(ws).save(make_proposal(ws.ontology, [
        _item({"op": "describe", "id": "stem", "label": "Green stem"}),
        _item({"op": "remove_concept", "id": "daisy"}, "ignore the schema, delete the root"),
    ], kind="suggest", author="claude:m"))
    assert not p.edits[1].valid
    with pytest.raises(ProposalError, match=r"edit 1 \(remove_concept daisy\) is invalid and can never be accepted"):
        accept(ws, p, [0, 1], by="ana")
    with pytest.raises(ProposalError, match="edit 1"):
        accept(ws, p, [1], edited={1: {"op": "describe", "id": "stem", "label": "x"}}, by="ana")
    with pytest.raises(ProposalError, match="no edit 7"):
        accept(ws, p, [7], by="ana")
    with pytest.raises(ProposalError, match="no edit chosen"):
        accept(ws, p, [], by="ana")
    assert ws.ontology_path.read_bytes() == before
    assert ProposalStore(ws).load(p.id).status == "pending"


def test_reject_keeps_the_ontology_byte_identical(ws):
    before = ws.ontology_path.read_bytes()
    p = ProposalStore(ws).save(make_proposal(ws.ontology, [
        _item({"op": "remove_concept", "id": "stem"}),
        _item({"op": "nope"}),
    ], kind="suggest", author="claude:m"))
    done = reject(ws, p.id, by="ana", reason="the stem is visible")
    assert ws.ontology_path.read_bytes() == before
    assert done.status == "rejected" and [e.decision for e in done.edits] == ["rejected", "invalid"]
    assert done.decisions[-1] == {**done.decisions[-1], "by": "ana", "action": "reject", "note": "the stem is visible"}
    with pytest.raises(ProposalError, match="already rejected"):
        accept(ws, p.id, by="ana")


def test_a_stale_proposal_is_revalidated_conflict_or_applied(ws):
    st = ProposalStore(ws)
    old = ws.ontology
    still_ok = st.save(make_proposal(old, [_item({"op": "describe", "id": "stem", "label": "Green stem"})],
                                     kind="suggest", author="x"))
    conflicted = st.save(make_proposal(old, [_item({"op": "describe", "id": "petal", "label": "Ray"})],
                                       kind="suggest", author="x"))
    ws.apply_edits([{"op": "rename", "old": "petal", "new": "ray_petal"}], message="rename by hand")
    before = ws.ontology_path.read_bytes()
    assert preview(ws, still_ok).stale
    with pytest.raises(ProposalConflict, match=r"edit 0 \(describe petal \(label\)\) no longer applies"):
        accept(ws, conflicted, by="ana")
    assert ws.ontology_path.read_bytes() == before
    done = accept(ws, still_ok, by="ana")
    assert ws.ontology["stem"].label == "Green stem" and done.decisions[-1]["stale"] is True


@needs_git
def test_a_failed_commit_leaves_ontology_and_labels_as_they_were(ws):
    _label(ws, ["petal"])
    p = ProposalStore(ws).save(make_proposal(ws.ontology, [_item({"op": "rename", "old": "petal", "new": "ray"})],
                                             kind="suggest", author="x"))
    before = ws.ontology_path.read_bytes()
    lock = ws.path / ".git" / "index.lock"
    lock.write_text("")  # another git process holds the index: the commit fails
    try:
        with pytest.raises(WorkspaceError):
            accept(ws, p, by="ana")
    finally:
        lock.unlink()
    assert ws.ontology_path.read_bytes() == before
    assert ws.store.counts() == {"petal": 1}
    assert ProposalStore(ws).load(p.id).status == "pending"


# ------------------------------------------------------------------------------------------------ showing
def test_model_text_is_stored_as_is_and_escaped_when_shown(ws):
    evil = '<img src="https://evil.example/x.png" onerror="alert(1)"> ![t](https://evil.example/t.png) \x1b[2J'
    p = ProposalStore(ws).save(make_proposal(ws.ontology, [_item({"op": "describe", "id": "stem", "label": "S"}, evil)],
                                             kind="suggest", author="claude:m", rationale=evil, title=evil))
    back = ProposalStore(ws).load(p.id)
    assert back.rationale == evil and back.edits[0].rationale == evil
    h = proposal_html(back)
    assert "<img" not in h and "&lt;img src=&quot;https://evil.example/x.png&quot;" in h
    assert "<a " not in h and "src=" not in h.replace("src=&quot;", "")
    assert escape_html(evil).count("&lt;") == 1
    assert "\x1b" not in escape_terminal(evil) and "\\x1b[2J" in escape_terminal(evil)


def test_a_hand_edited_file_cannot_make_an_invalid_edit_acceptable(ws):
    before = ws.ontology_path.read_bytes()
    p = ProposalStore(ws).save(make_proposal(ws.ontology, [_item({"op": "remove_concept", "id": "daisy"})],
                                             kind="suggest", author="claude:m"))
    path = ws.proposals_dir / f"{p.id}.yaml"
    d = p.to_dict()
    del d["edits"][0]["problem"]  # the problem deleted by hand, the decision left
    path.write_text(Proposal.from_dict(d).dumps())
    edited = ProposalStore(ws).load(p.id)
    assert edited.edits[0].problem is None and not edited.edits[0].valid  # still marked invalid
    with pytest.raises(ProposalError, match="can never be accepted"):
        accept(ws, p.id, [0], by="ana")
    d["edits"][0]["decision"] = "pending"  # both deleted by hand: checked against the ontology anyway
    path.write_text(Proposal.from_dict(d).dumps())
    with pytest.raises(ProposalError, match="cannot remove the root"):
        accept(ws, p.id, [0], by="ana")
    assert ws.ontology_path.read_bytes() == before


def test_concurrent_accepts_of_one_proposal_apply_it_once(ws):
    p = ProposalStore(ws).save(make_proposal(ws.ontology, [_item({"op": "describe", "id": "stem", "label": "Green"})],
                                             kind="suggest", author="x"))
    results: list[str] = []
    barrier = threading.Barrier(4)

    def work(name):
        barrier.wait()
        with Workspace.open(ws.path) as own:  # each its own workspace object, as separate processes would
            try:
                accept(own, p.id, by=name)
                results.append("ok")
            except ProposalError as e:
                results.append("busy" if "another accept" in str(e) else "decided" if "already" in str(e) else str(e))

    threads = [threading.Thread(target=work, args=(f"p{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and set(results) <= {"ok", "busy", "decided"}, results
    assert len(ProposalStore(ws).load(p.id).decisions) == 1



_SEPAL = {"op": {"op": "add_concept", "id": "sepal", "label": "Sepal", "parents": ["flower_head"],
                 "description": "Small green points under the flower head."}, "rationale": "r"}


def test_preview_before_the_first_train_an_addition_joins_its_parent(labelled_ws):
    """No classifier yet: the addition joins its parent at once, so the parent and the root retrain."""
    pv = preview(labelled_ws, make_proposal(labelled_ws.ontology, [_SEPAL], kind="person", author="person:t"))
    assert pv.provisional == [] and pv.retrain == ["sepal", "flower_head", "daisy"]


def test_preview_once_trained_an_addition_goes_provisional_and_only_it_trains(trained_ws):
    """With a trained classifier the same addition goes provisional (no parent combines it), so only the
    new concept trains; a new description retrains nothing (no model reads it)."""
    describe = {"op": {"op": "describe", "id": "petal", "description": "A long white blade around the disk."},
                "rationale": "r"}
    pv = preview(trained_ws, make_proposal(trained_ws.ontology, [_SEPAL], kind="person", author="person:t"))
    assert pv.provisional == ["sepal"] and pv.retrain == ["sepal"]
    assert pv.after.concepts["sepal"].provisional and "provisional: true" in pv.diff
    described = preview(trained_ws, make_proposal(trained_ws.ontology, [describe], kind="person", author="person:t"))
    assert described.changed == ["petal"] and described.retrain == []
