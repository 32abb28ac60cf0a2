"""Tests for workbench/suggest.py: the scripted daisy walk-through, replay, the registry."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.errors import SuggesterError
from workbench.ontology.graph import Ontology
from workbench.review.decisions import accept
from workbench.review.proposals import make_proposal
from workbench.review.queries import introduced_by, proposals_touching
from workbench.review.store import ProposalStore
from workbench.review.suggest import (
    SHIPPED_SCRIPT,
    SHIPPED_SEED,
    SUGGESTERS,
    ReplaySuggester,
    ScriptedSuggester,
    SuggestContext,
    Suggester,
    make_suggester,
    play_script,
    refactor_workspace,
    suggest_images,
)
from workbench.workspace.folder import Workspace

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "ontologies" / "daisy.yaml"
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


@pytest.fixture
def ws(tmp_path):  # its own, not conftest's daisy_ws: the scripted steps start from the seed (daisy alone)
    with Workspace.create(tmp_path / "ws", Ontology.load(SHIPPED_SEED)) as w:
        yield w


def test_the_seed_is_the_daisy_root_alone():
    seed, target = Ontology.load(SHIPPED_SEED), Ontology.load(TARGET)
    assert list(seed.concepts) == ["daisy"] and seed.name == target.name and seed.root == target.root
    assert seed["daisy"].imagenet_id == target["daisy"].imagenet_id


def test_the_script_is_named_and_marked_as_scripted():
    text = SHIPPED_SCRIPT.read_text()
    assert text.startswith("# SCRIPTED suggestions") and "NOT model output" in text
    s = ScriptedSuggester()
    assert s.name == "scripted:daisy.suggestions.yaml" and s.meta["scripted"] is True
    assert isinstance(s, Suggester)


@needs_git
def test_every_scripted_step_accepted_by_a_person_grows_the_seed_into_the_daisy_ontology(ws):
    s = make_suggester("scripted", ws)
    rng = np.random.default_rng(0)
    for step in s.steps:
        if step.kind == "suggest":
            image = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)  # the script does not look at pixels
            p = s.suggest(ws.ontology, image, SuggestContext(image_id=step.image))
            assert p.evidence.image == step.image
        else:
            p = s.refactor(ws.ontology, ProposalStore(ws).list())
        assert p.kind == step.kind and p.title == step.title
        assert p.author == "scripted:daisy.suggestions.yaml"
        assert all(e.valid for e in p.edits), [e.problem for e in p.edits]
        p = ProposalStore(ws).save(p)
        done = accept(ws, p.id, by="ana")
        assert done.status == "accepted" and done.commit
    assert ws.ontology == Ontology.load(TARGET)
    assert ws.ontology_path.read_text() == Ontology.load(TARGET).dumps()
    # every concept but the seed's root is explained by the proposal that introduced it
    for c in ws.ontology:
        p = introduced_by(ws, c)
        if c == "daisy":
            assert p is None and proposals_touching(ws, c)
        else:
            assert p is not None and p.status == "accepted"
            assert any(c in str(e.op) for e in p.edits)
    assert introduced_by(ws, "disk").kind == "refactor"  # renamed from the first image's 'center'
    assert introduced_by(ws, "petal").evidence.image == "daisy/0000.png"
    log = subprocess.run(["git", "log", "--format=%B"], cwd=ws.path, capture_output=True, text=True).stdout
    assert log.count("Accepted-by: ana") == len(s.steps)
    # the script is used up: one more request proposes nothing
    assert s.suggest(ws.ontology, None, SuggestContext()).edits == ()
    assert s.refactor(ws.ontology, []).edits == ()


def test_without_refactors_the_ontology_keeps_its_redundant_and_speculative_concepts(ws):
    sizes = [len(ws.ontology)]
    grown = play_script(ws, by="ana", refactor=False, on_step=lambda p: sizes.append(len(ws.ontology)))
    target = Ontology.load(TARGET)
    assert {"stalk", "leaf_rosette", "pollen", "petal_tip", "center"} == set(ws.ontology) - set(target)
    assert set(target) - set(ws.ontology) == {"disk"}  # the centre is only renamed by a refactor
    assert sizes == [1, 4, 6, 8, 9, 9, 10]  # grows with every image; the refactors bring it back to 6
    assert all(p.kind == "suggest" and p.status == "accepted" for p in grown)
    ops = [e["op"]["op"] for st in ScriptedSuggester().steps if st.kind == "refactor" for e in st.edits]
    assert "merge" in ops and "remove_concept" in ops and "rename" in ops
    # at least one suggestion carries wording the concept lint flags
    flagged = [w for p in grown for e in p.edits for w in e.lint]
    assert any(w.startswith("speculative:") for w in flagged) and any(w.startswith("function:") for w in flagged)


def test_scripted_picks_the_step_for_the_image_and_goes_on_across_instances(ws):
    s1 = ScriptedSuggester(SHIPPED_SCRIPT, workspace=ws)
    p = s1.suggest(ws.ontology, None, SuggestContext(image_id="daisy/0001.png"))
    assert [e.op["id"] for e in p.edits] == ["stem", "leaf"]
    ProposalStore(ws).save(p)
    s2 = ScriptedSuggester(SHIPPED_SCRIPT, workspace=ws)  # a new process: the workspace says what was played
    q = s2.suggest(ws.ontology, None, SuggestContext(image_id="somewhere/else.png"))
    assert [e.op["id"] for e in q.edits] == ["flower_head", "petal", "center"]
    assert q.evidence.image == "somewhere/else.png"
    assert 1 not in {st.index for st in s2.remaining()}


def test_scripted_edits_are_validated_like_any_other(ws):
    s = ScriptedSuggester()
    p = s.suggest(ws.ontology, None, SuggestContext(image_id="daisy/0002.png"))  # petal_tip needs petal
    assert [e.valid for e in p.edits] == [False, True]
    assert "no concept 'petal'" in p.edits[0].problem


@pytest.mark.parametrize("text, match", [
    ("steps: 3\n", "steps"),
    ("steps: []\ncolour: red\n", "unknown key 'colour'"),
    ("steps:\n- kind: delete\n  edits: []\n", "kind"),
    ("steps:\n- kind: suggest\n  edits: {op: x}\n", "edits"),
    ("steps:\n- kind: suggest\n  edits: []\n  run: rm -rf /\n", "unknown key 'run'"),
    ("steps: !!python/object/apply:os.system ['echo hi']\n", "tag not allowed"),
])
def test_malformed_scripts_are_refused_naming_the_file(tmp_path, text, match):
    f = tmp_path / "bad.suggestions.yaml"
    f.write_text(text)
    with pytest.raises(SuggesterError, match=match) as e:
        ScriptedSuggester(f)
    assert "bad.suggestions.yaml" in str(e.value)


# ------------------------------------------------------------------------------------------------ replay
def test_replay_reproduces_a_scripted_proposal_offline(ws):
    s = ScriptedSuggester()
    rec = ProposalStore(ws).save(s.suggest(ws.ontology, None, SuggestContext(image_id="daisy/0000.png")))
    r = make_suggester("replay", ws, proposal_files=[rec.id])
    again = r.suggest(ws.ontology, None, SuggestContext(image_id="daisy/0000.png"))
    assert [e.to_dict() for e in again.edits] == [e.to_dict() for e in rec.edits]
    assert (again.title, again.author, again.evidence, again.exchange) == (rec.title, rec.author, rec.evidence, rec.exchange)
    with pytest.raises(SuggesterError, match="no recorded suggest"):
        r.suggest(ws.ontology, None, SuggestContext())
    # against another ontology the same recording is re-validated
    later = ws.ontology
    for e in rec.edits:
        later = e.edit().apply(later)
    replayed = ReplaySuggester([ProposalStore(ws).path(rec.id)]).suggest(later, None, SuggestContext())
    assert all("already exists" in e.problem for e in replayed.edits)


def _claude_response(edits: list[dict]) -> dict:
    return {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 10},
        "content": [{"type": "tool_use", "id": "toolu_01", "name": "propose_edits",
                     "input": {"title": "Disk", "rationale": "a yellow centre <img src=x>", "edits": edits}}],
    }


def test_replay_reparses_a_recorded_claude_exchange_without_network(ws, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    edits = [{"op": {"op": "add_concept", "id": "flower_head", "label": "Flower head", "parents": ["daisy"]},
              "rationale": "a round head"},
             {"op": {"op": "remove_concept", "id": "daisy"}, "rationale": "ignore the schema, delete the root"}]
    recorded = make_proposal(ws.ontology, [], kind="suggest", author="claude:claude-test",
                             exchange={"request": {"model": "claude-test"}, "response": _claude_response(edits)})
    recorded = ProposalStore(ws).save(recorded)
    again = ReplaySuggester([recorded.id], workspace=ws).suggest(ws.ontology, None, SuggestContext())
    assert again.author == "claude:claude-test" and again.title == "Disk"
    assert again.rationale == "a yellow centre <img src=x>"
    assert [e.valid for e in again.edits] == [True, False]
    assert "root" in again.edits[1].problem
    assert again.exchange == recorded.exchange


def test_replay_of_a_claude_proposal_without_a_response_says_so(ws):
    rec = make_proposal(ws.ontology, [], kind="refactor", author="claude:m", exchange={"request": {}})
    with pytest.raises(SuggesterError, match="no recorded response"):
        ReplaySuggester([rec]).refactor(ws.ontology, [])


# ---------------------------------------------------------------------------------------------- registry
def test_registry_and_lazy_claude(ws):
    assert set(SUGGESTERS) >= {"scripted", "claude", "replay"}
    with pytest.raises(SuggesterError, match="unknown suggester 'gpt'.*scripted"):
        make_suggester("gpt")
    with pytest.raises(SuggesterError, match="unknown option"):
        make_suggester("scripted", colour="red")
    c = make_suggester("claude", ws)
    assert c.name == "claude" and c.model == ws.settings.claude_model
    assert c.max_image_edge == ws.settings.llm_max_image_edge
    code = "import workbench.review.suggest, sys; print('anthropic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.split() == ["False"]  # the anthropic SDK is imported only when Claude is called


def test_suggest_images_and_refactor_save_proposals_with_evidence(ws, tmp_path):
    img = tmp_path / "data" / "daisy" / "0000.png"
    img.parent.mkdir(parents=True)
    Image.fromarray(np.full((12, 12, 3), 200, np.uint8)).save(img)
    [p] = suggest_images(ws, make_suggester("scripted", ws), [img])
    assert p.id == "0001" and p.evidence.image == "daisy/0000.png" and len(p.evidence.image_sha256) == 64
    assert ProposalStore(ws).load(1) == p
    r = refactor_workspace(ws, make_suggester("scripted", ws))
    assert r.kind == "refactor" and r.id == "0002"
    assert not any(e.valid for e in r.edits)  # the refactor's concepts do not exist yet: all kept as invalid
