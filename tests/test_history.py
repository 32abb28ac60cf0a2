"""History of a workspace grown through proposals: trailers read back, every concept traced to the
proposal that introduced it (through renames and merges), reverts as new commits that restore the
ontology byte for byte and move labels back, stale and conflicting reverts refused."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from workbench.errors import ProposalConflict, ProposalError, WorkbenchError
from workbench.ontology.graph import Concept, Ontology
from workbench.review.decisions import accept
from workbench.review.history import history, parse_message, resolve_commit, revert, why
from workbench.review.proposals import make_proposal
from workbench.review.store import ProposalStore
from workbench.workspace.folder import Workspace

ROOT = Path(__file__).resolve().parents[1]
SEED = Ontology("daisy", "daisy", [Concept("daisy", "Daisy", "A daisy in a photo.")])

STEPS = [  # (author, title, rationale, ops)
    ("claude:test-model", "Daisies have a flower head", "The round top of the plant carries most of the signal.",
     [{"op": "add_concept", "id": "flower_head", "label": "Flower head", "parents": ["daisy"]},
      {"op": "add_concept", "id": "petal", "label": "Petal", "description": "A white strap.",
       "parents": ["flower_head"]}]),
    ("person:ana", "Disk, stem and leaf", "Parts a camera sees on every daisy.",
     [{"op": "add_concept", "id": "disk", "label": "Disk", "parents": ["flower_head"]},
      {"op": "add_concept", "id": "stem", "label": "Stem", "parents": ["daisy"]},
      {"op": "add_concept", "id": "leaf", "label": "Leaf", "parents": ["daisy"]}]),
    ("claude:test-model", "Call petals ray florets", "Botanists call them ray florets.",
     [{"op": "rename", "old": "petal", "new": "ray", "label": "Ray floret"}]),
    ("scripted:daisy.suggestions.yaml", "Stem and leaf are one green thing", "They are never told apart.",
     [{"op": "merge", "sources": ["stem", "leaf"], "into": "greenery", "label": "Greenery"}]),
    ("person:ben", "Say what the disk looks like", "A yellow button.",
     [{"op": "describe", "id": "disk", "description": "A round yellow button of tiny florets."}]),
]


def _git(ws, *args):
    return subprocess.run(["git", *args], cwd=ws.path, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The grown workspace, built once; each test gets a copy (git, label store and all)."""
    path = tmp_path_factory.mktemp("history") / "ws"
    ws = Workspace.create(path, SEED)
    # labels on concepts that later proposals rename and merge
    img = ws.store.add_image("daisy/0001.png", "a" * 64, class_label="daisy", width=8, height=8)
    ids = _segments(ws, img, 4)
    for k, (author, title, rationale, ops) in enumerate(STEPS):
        if k == 2:  # before the rename: two petals, a stem and a leaf labelled
            for sid, c in zip(ids, ["petal", "petal", "stem", "leaf"]):
                ws.store.set_label(sid, c, source="person", author="ana")
        p = make_proposal(ws.ontology, [{"op": o, "rationale": f"because {k}"} for o in ops], kind="suggest",
                          author=author, title=title, rationale=rationale)
        p = ProposalStore(ws).save(p)
        gate = {"summary": f"merge (+{k}.0 pts, 95% CI [+0.1, +{k}.5], n=12)"} if k == 0 else None
        accept(ws, p, by="ana", gate=gate)
    ws.close()
    return path, ids


@pytest.fixture
def grown(template, tmp_path):
    src, ids = template
    shutil.copytree(src, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    applied = ProposalStore(ws).list()
    yield ws, applied, ids
    ws.close()


def _segments(ws, image_id, n):
    import numpy as np

    from workbench.data.segment import Segment

    masks = []
    for i in range(n):
        m = np.zeros((8, 8), bool)
        m[i, :] = True
        masks.append(Segment(m, (0, i, 8, i + 1), 8))
    return ws.store.add_segments(image_id, "h" * 16, masks)


def test_history_reads_the_trailers_newest_first(grown):
    ws, applied, _ = grown
    hist = history(ws)
    assert [c.proposal for c in hist] == ["0005", "0004", "0003", "0002", "0001", None]
    newest, first = hist[0], hist[4]
    assert newest.title == "Say what the disk looks like" and newest.accepted_by == "ana"
    assert newest.proposed_by == "person:ben" and newest.rationale.startswith("A yellow button.")
    assert newest.sha == applied[4].commit and newest.concepts == ("disk",)
    assert first.gate == "merge (+0.0 pts, 95% CI [+0.1, +0.5], n=12)"
    assert "[Gate: merge (+0.0 pts" in why(ws, "flower_head").summary()
    assert first.proposed_by == "claude:test-model"
    assert set(first.concepts) == {"daisy", "flower_head", "petal"}
    assert [e["op"] for e in first.edits] == ["add_concept", "add_concept"]
    assert hist[-1].title.startswith("Create workspace")
    assert len(history(ws, limit=2)) == 2
    assert hist[0].to_dict()["edits"][0]["op"] == "describe"


def test_every_concept_is_traced_to_the_proposal_that_introduced_it(grown):
    ws, applied, _ = grown
    expected = {"daisy": None, "flower_head": "0001", "ray": "0001", "disk": "0002", "greenery": "0004"}
    assert set(ws.ontology.concepts) == set(expected)
    for concept, pid in expected.items():
        ex = why(ws, concept)
        assert ex.exists and ex.introduced is not None, concept
        assert ex.introduced.proposal == pid, (concept, ex.summary())
    ray = why(ws, "ray")
    assert ray.names == ("ray", "petal") and ray.last_changed.proposal == "0003"
    assert "Botanists call them ray florets." in ray.last_changed.rationale
    assert "was called 'petal'" in ray.summary() and "<pre" in ray._repr_html_()
    disk = why(ws, "disk")
    assert (disk.introduced.proposal, disk.last_changed.proposal) == ("0002", "0005")
    assert "A yellow button." in disk.summary()
    green = why(ws, "greenery")
    assert green.merged_from == ("stem", "leaf")
    gone = why(ws, "stem")  # merged away: explained, with the change that removed it
    assert not gone.exists and gone.removed.proposal == "0004" and gone.introduced.proposal == "0002"
    with pytest.raises(WorkbenchError, match="never was"):
        why(ws, "sepal")


def test_revert_restores_the_ontology_byte_for_byte_as_a_new_commit(grown):
    ws, applied, _ = grown
    sha = applied[4].commit
    before = _git(ws, "show", f"{sha}^:ontology.yaml")
    head_before = ws.head()
    ch = revert(ws, "0005", by="ana", reason="the old text was fine")
    assert ws.ontology_path.read_text() == before
    assert ch.reverts == sha and ch.sha != head_before
    assert ch.sha in _git(ws, "log", "--format=%H").split()  # a new commit on top; nothing rewritten
    assert sha in _git(ws, "log", "--format=%H").split()
    assert _git(ws, "status", "--porcelain", "ontology.yaml") == ""
    hist = history(ws)
    assert hist[0].reverts == sha and hist[0].title == 'Revert "Say what the disk looks like"'
    assert next(c for c in hist if c.sha == sha).reverted_by == hist[0].sha
    assert "Reverts-proposal" in hist[0].trailers and hist[0].trailers["Reverted-by"] == "ana"
    assert why(ws, "disk").last_changed.sha == hist[0].sha
    decisions = ProposalStore(ws).load("0005").decisions
    assert decisions[-1]["action"] == "revert" and decisions[-1]["commit"] == hist[0].sha
    # reverting twice is refused
    with pytest.raises(ProposalConflict, match="already reverted"):
        revert(ws, sha, by="ana")


def test_revert_of_a_rename_moves_the_labels_back(grown):
    ws, applied, ids = grown
    assert ws.store.counts().get("ray") == 2
    text = ws.ontology_path.read_text()
    ch = revert(ws, applied[2].commit[:10], by="ana")
    assert "petal" in ws.ontology.concepts and "ray" not in ws.ontology.concepts
    assert ws.store.counts().get("petal") == 2 and not ws.store.counts().get("ray")
    assert ch.edits[0]["op"] == "rename" and ch.edits[0]["new"] == "petal"
    assert why(ws, "petal").introduced.proposal == "0001"
    # and the revert itself can be reverted: back to the same bytes
    revert(ws, ch.sha, by="ana")
    assert ws.ontology_path.read_text() == text and ws.store.counts().get("ray") == 2


def test_revert_of_a_merge_puts_each_label_back(grown):
    ws, applied, _ = grown
    revert(ws, "4", by="ana")
    counts = ws.store.counts()
    assert counts.get("stem") == 1 and counts.get("leaf") == 1 and not counts.get("greenery")
    assert {"stem", "leaf"} <= set(ws.ontology.parts("daisy"))


def test_a_revert_that_would_undo_later_changes_is_refused(grown):
    ws, applied, _ = grown
    text = ws.ontology_path.read_bytes()
    head = ws.head()
    # 0001 added flower_head, whose parts 0002 changed since
    with pytest.raises(ProposalConflict, match="added 'flower_head', which was changed since by .*0002"):
        revert(ws, "0001", by="ana")
    # 0002 added stem and leaf to daisy, merged away since by 0004
    with pytest.raises(ProposalConflict, match="since by .*0004"):
        revert(ws, "0002", by="ana")
    assert ws.ontology_path.read_bytes() == text and ws.head() == head  # nothing written, nothing committed
    revert(ws, "0004", by="ana")
    # with the merge undone, 0002 still conflicts: 0005 described the disk it added
    with pytest.raises(ProposalConflict, match="added 'disk', which was changed since by .*0005"):
        revert(ws, "0002", by="ana")


def test_refs_that_name_nothing_revertible(grown):
    ws, applied, _ = grown
    first = history(ws)[-1].sha
    with pytest.raises(ProposalConflict, match="created the ontology"):
        revert(ws, first, by="ana")
    with pytest.raises(WorkbenchError, match="no commit"):
        revert(ws, "deadbeef", by="ana")
    with pytest.raises(ProposalError, match="no such proposal"):
        revert(ws, "0042", by="ana")
    with pytest.raises(WorkbenchError):
        revert(ws, "../../etc/passwd", by="ana")
    with pytest.raises(ProposalError, match="by="):
        revert(ws, "0005", by="")
    pending = ProposalStore(ws).save(make_proposal(ws.ontology, [{"op": {"op": "describe", "id": "disk",
                                                                          "label": "Centre"}}],
                                                   kind="person", author="person:ana"))
    with pytest.raises(ProposalError, match="never applied"):
        revert(ws, pending.id, by="ana")
    assert resolve_commit(ws, applied[0].commit[:8]) == (applied[0].commit, None)
    assert resolve_commit(ws, "proposals/0001.yaml") == (applied[0].commit, "0001")


def test_parse_message_keeps_only_the_last_paragraph_as_trailers():
    title, body, tr = parse_message("T\n\nWhy: not a trailer here\nbecause\n\nGate: merge (+1.0 pts)\nReverts: abc\n")
    assert title == "T" and body.startswith("Why: not a trailer") and tr == {"Gate": "merge (+1.0 pts)", "Reverts": "abc"}
    assert parse_message("Only a title") == ("Only a title", "", {})


def test_cli_history_why_revert(grown, capsys):
    from workbench.cli import main

    ws, applied, _ = grown
    assert main(["history", "--workspace", str(ws.path), "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "proposal 0005 (person:ben, accepted by ana): Say what the disk looks like" in out
    assert "proposal 0004" in out and "0003" not in out and "2 changes" in out
    assert main(["why", "ray", "--workspace", str(ws.path)]) == 0
    out = capsys.readouterr().out
    assert "was called 'petal'" in out and "proposal 0001" in out and "proposal 0003" in out
    assert main(["revert", "0005", "--workspace", str(ws.path), "--by", "ana", "--reason", "too long"]) == 0
    assert "as a new commit" in capsys.readouterr().out
    assert main(["revert", "0005", "--workspace", str(ws.path), "--by", "ana"]) == 1
    assert "already reverted" in capsys.readouterr().err
    assert main(["why", "nothing_like_it", "--workspace", str(ws.path)]) == 1


def test_the_notebook_facade(grown):
    import workbench

    ws, applied, _ = grown
    with workbench.open(ws.path, author="cleo") as wb:
        assert [c.proposal for c in wb.history(limit=2)] == ["0005", "0004"]
        assert wb.why("greenery").introduced.proposal == "0004"
        ch = wb.revert("0004", reason="keep them apart")
        assert ch.trailers["Reverted-by"] == "cleo" and "keep them apart" in ch.rationale
        assert {"stem", "leaf"} <= set(wb.ontology.concepts)
        cells = wb.propose_cells("0005")  # no kernel here: the cells come back
        assert [c["id"] for c in cells] == ["wb-0005-md", "wb-0005-code"]


def test_the_scripted_daisy_demo_traces_every_concept_to_a_proposal(tmp_path):
    from workbench.review.suggest import play_script

    ws = Workspace.create(tmp_path / "demo", Ontology.load(ROOT / "ontologies" / "daisy.seed.yaml"))
    try:
        decided = play_script(ws, by="ana")
        assert ws.ontology == Ontology.load(ROOT / "ontologies" / "daisy.yaml")
        accepted = {p.id: p for p in decided if p.commit}
        for concept in ws.ontology.concepts:
            ex = why(ws, concept)
            if concept == ws.ontology.root:  # the seed: the workspace's first commit
                assert ex.introduced.proposal is None and ex.introduced.parent is None
                continue
            assert ex.introduced.proposal in accepted, (concept, ex.summary())
            p = accepted[ex.introduced.proposal]
            assert ex.introduced.sha == p.commit and ex.introduced.proposed_by == p.author
            assert ex.introduced.rationale.strip(), concept
        # the refactors merged, removed and re-described; those concepts are explained as gone
        gone = {c for p in decided if p.commit for e in p.edits if e.decision == "accepted"
                for c in ([e.op.get("id")] if e.op.get("op") == "add_concept" else [])} - set(ws.ontology.concepts)
        assert gone, "the script removes or merges some concepts it added"
        for c in gone:
            ex = why(ws, c)
            assert not ex.exists and ex.removed is not None and ex.removed.proposal in accepted
    finally:
        ws.close()


def test_revert_waits_for_no_one_while_another_decision_holds_the_lock(grown):
    import fcntl

    ws, applied, _ = grown
    head = ws.head()
    with open(ws.cache_dir / "decisions.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ProposalError, match="another accept/reject/revert is running"):
            revert(ws, "0005", by="ana")
    assert ws.head() == head
    revert(ws, "0005", by="ana")  # once the lock is free
    assert ws.head() != head
