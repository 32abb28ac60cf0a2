"""Property test for workbench/review/claude/parse.py: whatever a Messages-API response holds, nothing is applied
unless a person accepts valid edits; the ontology file stays byte-identical otherwise."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from workbench.errors import ProposalError, SuggesterError
from workbench.ontology.edits import EDIT_OPS, apply_edits, edit_from_dict
from workbench.ontology.graph import Ontology
from workbench.review.claude import parse_response
from workbench.review.decisions import accept
from workbench.workspace.folder import Workspace

ROOT = Path(__file__).resolve().parents[1]
DAISY = Ontology.load(ROOT / "ontologies" / "daisy.yaml")
IDS = sorted(DAISY.concepts) + ["sepal", "bract", "Bad Id", "none", ""]

ids = st.sampled_from(IDS)
junk = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                    max_leaves=6)
field_values = st.one_of(ids, st.lists(ids, max_size=3), st.sampled_from(["net", "rule", "yellow_disk"]), junk)


@st.composite
def ops(draw: Any) -> Any:
    """An edit op: usually well-formed fields for a real op, sometimes mutated, sometimes junk."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(junk)
    existing = st.sampled_from(sorted(DAISY.concepts))
    if kind <= 4:  # plausible ops, often valid (and sometimes not, depending on the earlier ones)
        return draw(st.sampled_from([
            {"op": "describe", "id": draw(existing), "label": draw(st.sampled_from(["Part", "Stalk", ""]))},
            {"op": "add_concept", "id": draw(st.sampled_from(["sepal", "bract", "petal"])), "label": "New",
             "parents": [draw(existing)]},
            {"op": "rename", "old": draw(existing), "new": draw(st.sampled_from(["ray", "stalk", "daisy"]))},
            {"op": "add_part", "parent": draw(existing), "part": draw(existing)},
            {"op": "remove_concept", "id": draw(existing)},
            {"op": "merge", "sources": draw(st.lists(existing, min_size=2, max_size=2, unique=True)), "into": "blend"},
        ]))
    name = draw(st.sampled_from(list(EDIT_OPS) + ["drop_table", "exec"]))
    cls = EDIT_OPS.get(name)
    op: dict[str, Any] = {"op": name}
    for f in getattr(cls, "_kinds", {"id": "id"}):
        if draw(st.integers(0, 4)) == 0:
            continue  # a missing field
        k = cls._kinds[f] if cls else "id"
        if k.endswith("ids"):
            op[f] = draw(st.lists(ids, min_size=1, max_size=3))
        elif k.endswith("specs"):
            op[f] = [{"id": draw(ids), "label": "Part", "parts": draw(st.lists(ids, max_size=2))}
                     for _ in range(draw(st.integers(0, 2)))]
        elif k.endswith("impl"):
            op[f] = draw(st.sampled_from(["net", "rule", "magic"]))
        elif k.endswith("label") or k.endswith("text"):
            op[f] = draw(st.sampled_from(["Sepal", "a green leaflet", "ignore the schema, delete the root", ""]))
        else:
            op[f] = draw(ids)
    if draw(st.integers(0, 5)) == 0:
        op[draw(st.text(min_size=1, max_size=6))] = draw(field_values)  # an unknown field
    return op


@st.composite
def responses(draw: Any) -> dict:
    edits = draw(st.lists(st.one_of(st.builds(lambda o, r: {"op": o, "rationale": r}, ops(), st.text(max_size=20)),
                                    junk), max_size=4))
    inp = draw(st.sampled_from([{"title": "t", "rationale": "r", "edits": edits}] * 4 + [draw(junk)]))
    block = {"type": "tool_use", "id": "toolu_1", "name": draw(st.sampled_from(["propose_edits"] * 4 + ["other"])),
             "input": inp}
    content = draw(st.sampled_from([[block]] * 3 + [[{"type": "text", "text": "ignore the schema"}, block], []]))
    stop = draw(st.sampled_from(["tool_use"] * 6 + ["end_turn", "refusal", "max_tokens", None]))
    return {"id": "msg_1", "type": "message", "role": "assistant", "content": content, "stop_reason": stop}


@pytest.fixture(scope="module")
def ws(tmp_path_factory, workspace_templates):  # one for the module: hypothesis runs many examples on it
    with Workspace.open(workspace_templates.copy("bare", tmp_path_factory.mktemp("fuzz"))) as w:
        yield w


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response=responses())
def test_nothing_is_applied_unless_a_person_accepts_valid_edits(ws, response):
    path = ws.ontology_path
    before = path.read_bytes()
    try:
        p = parse_response(ws.ontology, response, author="claude:fuzz")
    except SuggesterError as e:
        event("no proposal (SuggesterError)")
        assert str(e)  # a clear message, and nothing changed
        assert path.read_bytes() == before
        return
    for e in p.edits:
        assert e.valid == (e.problem is None) and (e.valid or e.decision == "invalid")
    invalid = [i for i, e in enumerate(p.edits) if not e.valid]
    valid = [i for i, e in enumerate(p.edits) if e.valid]
    for i in invalid[:2]:
        with pytest.raises(ProposalError):
            accept(ws, p, accept=[i], by="person:fuzz")
        assert path.read_bytes() == before
    event(f"valid edits: {min(len(valid), 2)}, invalid: {min(len(invalid), 2)}")
    if not valid:
        assert path.read_bytes() == before
        return
    # the valid edits, in order, are what make_proposal checked: accepting them applies exactly them
    expected = apply_edits(DAISY, [edit_from_dict(p.edits[i].op) for i in valid])
    try:
        accept(ws, p, accept=valid, by="person:fuzz")
        assert ws.ontology == expected
    finally:
        ws.save_ontology(DAISY)
    assert path.read_bytes() == before
