"""Tests for workbench.ontology.edits: each operation, strict parsing, inverses, semantic and text diffs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import EditError, OntologyError
from workbench.ontology.diff import semantic_diff, text_diff
from workbench.ontology.edits import (
    EDIT_OPS,
    WORKBENCH_OPS,
    AddConcept,
    AddPart,
    ConceptSpec,
    Describe,
    Edit,
    Merge,
    RemoveConcept,
    RemovePart,
    Rename,
    SetProvisional,
    Split,
    apply_edits,
    edit_from_dict,
    edits_from_data,
    edits_to_data,
    invert_edits,
)
from workbench.ontology.graph import Concept, Ontology

ONTOLOGIES = Path(__file__).resolve().parent.parent / "ontologies"
DAISY = Ontology.load(ONTOLOGIES / "daisy.yaml")
CAR = Ontology.load(ONTOLOGIES / "car.yaml")


def check_invertible(o: Ontology, e: Edit) -> Ontology:
    """Apply ``e``; check the result reloads, the inverse restores ``o`` exactly, and the dict form round-trips."""
    new = e.apply(o)
    assert Ontology.loads(new.dumps()) == new
    assert apply_edits(new, e.inverse(o)) == o
    assert edit_from_dict(json.loads(json.dumps(e.to_dict()))) == e
    return new


def fails(o: Ontology, e: Edit, *expected: str) -> str:
    with pytest.raises(EditError) as info:
        e.apply(o)
    msg = str(info.value)
    for s in expected:
        assert s in msg, msg
    return msg


# ------------------------------------------------------------------------------------------ the ops
def test_add_concept():
    o = check_invertible(DAISY, AddConcept("sepal", "Sepal", "small green leaflets under the head",
                                           parents=("flower_head",)))
    assert o.parts("flower_head") == ("disk", "petal", "sepal") and o.kind("sepal") == "part"
    o = check_invertible(DAISY, AddConcept("ray_ring", "Ray ring", parts=("petal",), parents=("flower_head",)))
    assert o.parents("petal") == ("flower_head", "ray_ring")


def test_add_concept_errors_name_the_concept_and_the_fix():
    fails(DAISY, AddConcept("petal", "Petal"), "add_concept petal", "'petal' already exists")
    fails(DAISY, AddConcept("sepal", "Sepal"), "'sepal' needs at least one parent", "parents: [daisy]")
    fails(DAISY, AddConcept("sepal", "Sepal", parents=("flowerhead",)), "no concept 'flowerhead'",
          "did you mean 'flower_head'")
    fails(DAISY, AddConcept("x", "X", parts=("flower_head",), parents=("petal",)),
          "'x' would be part of itself", "petal → x → flower_head → petal")
    fails(DAISY, AddConcept("x", "X", parts=("daisy",), parents=("petal",)), "root 'daisy' cannot be a part")
    fails(DAISY, AddConcept("x", "X", implementation="rule", parents=("daisy",)), "concept 'x'",
          "needs `rule:")


def test_remove_concept():
    o = check_invertible(DAISY, RemoveConcept("leaf"))
    assert "leaf" not in o and o.parts("daisy") == ("flower_head", "stem")


def test_remove_concept_that_would_strand_parts_says_what_to_do():
    msg = fails(DAISY, RemoveConcept("flower_head"), "'disk', 'petal' unreachable")
    assert "add_part" in msg and "remove_concept disk" in msg and "merge" in msg
    fails(DAISY, RemoveConcept("daisy"), "cannot remove the root 'daisy'")
    fails(DAISY, RemoveConcept("sun"), "no concept 'sun'")
    # A part with another parent survives its parent's removal.
    o = AddPart("daisy", "petal").apply(DAISY)
    o = AddPart("daisy", "disk").apply(o)
    assert check_invertible(o, RemoveConcept("flower_head")).parts("daisy") == ("disk", "leaf", "petal", "stem")


def test_rename_updates_every_edge():
    o = AddPart("stem", "leaf").apply(DAISY)
    new = check_invertible(o, Rename("leaf", "foliage", label="Foliage"))
    assert new.parents("foliage") == ("daisy", "stem") and new["foliage"].label == "Foliage"
    assert all("leaf" not in c.parts for c in new.concepts.values())


def test_renaming_the_root_renames_root():
    new = check_invertible(DAISY, Rename("daisy", "bellis"))
    assert new.root == "bellis" and new["bellis"].imagenet_id == "n11939491"
    assert list(new.concepts)[0] == "bellis"


def test_rename_errors():
    fails(DAISY, Rename("petal", "disk"), "'disk' already exists", "merge")
    fails(DAISY, Rename("petal", "petal"), "already has that id")
    fails(DAISY, Rename("petal", "Ray Petal"), "'Ray Petal' is not a valid id")
    fails(DAISY, Rename("petals", "ray"), "no concept 'petals'")


def test_add_and_remove_part():
    o = check_invertible(DAISY, AddPart("stem", "leaf"))
    assert o.parents("leaf") == ("daisy", "stem")
    assert check_invertible(o, RemovePart("daisy", "leaf")).parents("leaf") == ("stem",)


def test_part_errors():
    fails(DAISY, AddPart("petal", "flower_head"), "'petal' would be part of itself", "petal → flower_head → petal")
    fails(DAISY, AddPart("petal", "petal"), "part of itself")
    fails(DAISY, AddPart("stem", "daisy"), "root 'daisy' cannot be a part")
    fails(DAISY, AddPart("flower_head", "petal"), "already a part")
    fails(DAISY, RemovePart("daisy", "petal"), "'petal' is not a part of 'daisy'")
    msg = fails(DAISY, RemovePart("flower_head", "petal"), "'petal' would become unreachable")
    assert "remove_concept petal" in msg


def test_merge_unites_edges_and_drops_self_loops():
    o = check_invertible(DAISY, Merge(("petal", "disk"), "florets", label="Florets"))
    assert o.parts("flower_head") == ("florets",) and o["florets"].label == "Florets"
    o = check_invertible(DAISY, Merge(("flower_head", "petal"), "flower_head"))  # into one of the sources
    assert o.parts("flower_head") == ("disk",) and "petal" not in o
    o = check_invertible(DAISY, Merge(("leaf", "stem", "disk"), "green", description="green bits"))
    assert o.parents("green") == ("daisy", "flower_head") and o["green"].label == "Leaf"


def test_merging_the_root_moves_the_root():
    o = check_invertible(DAISY, Merge(("daisy", "flower_head"), "bloom", label="Bloom"))
    assert o.root == "bloom" and o.parts("bloom") == ("disk", "leaf", "petal", "stem")
    assert o["bloom"].imagenet_id == "n11939491"


def test_merge_errors():
    fails(DAISY, Merge(("petal",), "x"), "at least two")
    fails(DAISY, Merge(("petal", "disk"), "stem"), "'stem' already exists and is not one of the sources")
    fails(DAISY, Merge(("daisy", "petal"), "x"), "'x' would be part of itself: x → flower_head → x")


def test_split_reassigns_parts_and_parents():
    e = Split("flower_head", (
        ConceptSpec("ray_head", "Ray head", parts=("petal",)),
        ConceptSpec("centre", "Centre", parts=("disk",), parents=("daisy", "ray_head")),
    ))
    o = check_invertible(DAISY, e)
    assert "flower_head" not in o
    assert o.parts("daisy") == ("centre", "leaf", "ray_head", "stem")
    assert o.parts("ray_head") == ("centre", "petal") and o.parts("centre") == ("disk",)


def test_split_keeping_the_id_and_splitting_the_root():
    o = check_invertible(DAISY, Split("flower_head", (
        ConceptSpec("flower_head", "Flower head", parts=("petal", "disk")),
        ConceptSpec("ring", "Ring", parts=("petal",), parents=("flower_head",)),
    )))
    assert o.parts("flower_head") == ("disk", "petal", "ring")
    o = check_invertible(DAISY, Split("daisy", (
        ConceptSpec("plant", "Plant", parts=("daisy", "leaf", "stem")),
        ConceptSpec("daisy", "Daisy", parts=("flower_head",)),
    )))
    assert o.root == "plant" and o["plant"].imagenet_id == "n11939491" and o["daisy"].imagenet_id is None


def test_split_errors():
    one = ConceptSpec("a", "A", parts=("petal", "disk"))
    fails(DAISY, Split("flower_head", (one,)), "at least two")
    fails(DAISY, Split("flower_head", (ConceptSpec("a", "A", parts=("petal",)), ConceptSpec("b", "B"))),
          "part 'disk' of 'flower_head' goes to no new concept")
    fails(DAISY, Split("flower_head", (one, ConceptSpec("b", "B", parts=("leaf",)))),
          "lists part 'leaf', which is neither a part of 'flower_head'")
    fails(DAISY, Split("flower_head", (one, ConceptSpec("stem", "S"))), "'stem' already exists")
    fails(DAISY, Split("flower_head", (one, ConceptSpec("a", "A2"))), "'a' is used twice")
    fails(DAISY, Split("flower_head", (ConceptSpec("a", "A", parts=("petal", "disk"), parents=()),
                                       ConceptSpec("b", "B", parents=("a",)))),
          "parent 'daisy' of 'flower_head' gets none of the new concepts")
    fails(DAISY, Split("daisy", (ConceptSpec("a", "A", parts=("flower_head",)),
                                 ConceptSpec("b", "B", parts=("leaf", "stem")))),
          "exactly one new concept must have no parents", "'a', 'b'")


def test_describe():
    o = check_invertible(DAISY, Describe("petal", label="Ray petal", description="white strap"))
    assert o["petal"].label == "Ray petal" and o["petal"].description == "white strap"
    o = check_invertible(DAISY, Describe("stem", implementation="rule", rule="green_elongated"))
    assert (o["stem"].implementation, o["stem"].rule) == ("rule", "green_elongated")
    o2 = check_invertible(o, Describe("stem", implementation="net"))
    assert (o2["stem"].implementation, o2["stem"].rule) == ("net", None) and o2 == DAISY
    check_invertible(o, Describe("stem", rule="thin_green"))
    assert check_invertible(DAISY, Describe("daisy", imagenet_id=""))["daisy"].imagenet_id is None
    assert check_invertible(DAISY, Describe("petal", label="Petal")) == DAISY  # a no-op has an empty inverse
    assert Describe("petal", label="Petal").inverse(DAISY) == []


def test_describe_errors():
    fails(DAISY, Describe("petal"), "nothing to change")
    fails(DAISY, Describe("petal", rule="white"), "concept 'petal'", "implementation is `net`")
    fails(DAISY, Describe("petal", imagenet_id="n11939491"), "only the root")
    fails(DAISY, Describe("petal", implementation="cnn"), "must be one of net, rule")
    fails(DAISY, Describe("petal", label=""), "`label` is empty")


def test_directly_built_edits_with_wrong_types_are_refused():
    fails(DAISY, Rename("petal", 3), "`new` must be a concept id")  # type: ignore[arg-type]
    fails(DAISY, AddPart("daisy", None), "`part` is required")  # type: ignore[arg-type]
    fails(DAISY, AddConcept("x", "X", parents="daisy"), "`parents` must be a list")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ plain data
def test_edit_from_dict_is_strict():
    with pytest.raises(EditError, match="unknown op 'renmae'.*did you mean 'rename'"):
        edit_from_dict({"op": "renmae", "old": "a", "new": "b"})
    with pytest.raises(EditError, match="missing `op`"):
        edit_from_dict({"old": "a", "new": "b"})
    with pytest.raises(EditError, match="must be a mapping"):
        edit_from_dict(["rename", "a", "b"])
    with pytest.raises(EditError, match="unknown field 'colour'"):
        edit_from_dict({"op": "describe", "id": "petal", "colour": "white"})
    with pytest.raises(EditError, match="missing field `new`"):
        edit_from_dict({"op": "rename", "old": "a"})
    with pytest.raises(EditError, match="`label` must be a string"):
        edit_from_dict({"op": "add_concept", "id": "x", "label": True, "parents": ["daisy"]})
    with pytest.raises(EditError, match="`parents` must be a list"):
        edit_from_dict({"op": "add_concept", "id": "x", "label": "X", "parents": "daisy"})
    with pytest.raises(EditError, match=r"`parents\[\]` must be a concept id"):
        edit_from_dict({"op": "add_concept", "id": "x", "label": "X", "parents": [{"id": "daisy"}]})
    with pytest.raises(EditError, match="`sources` lists 'a' more than once"):
        edit_from_dict({"op": "merge", "sources": ["a", "a"], "into": "b"})
    with pytest.raises(EditError, match=r"into\[0\]: unknown field 'op'"):
        edit_from_dict({"op": "split", "id": "a", "into": [{"op": "x", "id": "b", "label": "B"}]})
    with pytest.raises(EditError, match=r"into\[1\] must be a mapping"):
        edit_from_dict({"op": "split", "id": "a", "into": [{"id": "b", "label": "B"}, "c"]})


def test_edit_from_dict_never_evaluates_anything(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    for data in ({"op": "rename", "old": "petal", "new": payload},
                 {"op": payload, "old": "petal", "new": "x"},
                 {"op": "describe", "id": "petal", "description": payload}):
        try:
            e = edit_from_dict(data)
            e.apply(DAISY)
        except EditError:
            pass
    assert not marker.exists()
    # A description is only ever data.
    assert edit_from_dict({"op": "describe", "id": "petal", "description": payload}).apply(DAISY)[
        "petal"].description == payload


def test_edits_from_data_reports_every_bad_edit_by_index():
    with pytest.raises(EditError) as info:
        edits_from_data([{"op": "rename", "old": "a", "new": "b"}, {"op": "nope"}, {"op": "add_part"}])
    assert len(info.value.problems) == 3
    assert info.value.problems[0].startswith("edit 2:") and info.value.problems[1].startswith("edit 3:")
    assert edits_from_data({"op": "add_part", "parent": "a", "part": "b"}) == [AddPart("a", "b")]


def test_every_op_is_registered_and_documented():
    assert set(EDIT_OPS) == {"add_concept", "remove_concept", "rename", "add_part", "remove_part", "merge",
                             "split", "describe"}
    import workbench.ontology.edits as module

    for op in EDIT_OPS:
        assert f"``{op}``" in module.__doc__


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["petal", "daisy", "x1", "net", "rule"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_FIELDS = sorted({"id", "label", "old", "new", "parent", "part", "sources", "into", "parts", "parents",
                  "description", "implementation", "rule", "imagenet_id", "op"})


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(EDIT_OPS)), st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=5))
def test_fuzzed_plain_data_gives_an_edit_or_an_edit_error(op, fields):
    data = {**fields, "op": op}
    try:
        e = edit_from_dict(data)
    except EditError as err:
        assert err.problems
        return
    assert isinstance(e, EDIT_OPS[op])
    assert edit_from_dict(e.to_dict()) == e
    try:
        e.apply(DAISY)
    except EditError:
        pass


# ----------------------------------------------------------------------------------- sequences
def test_apply_edits_names_the_failing_edit():
    with pytest.raises(EditError, match=r"edit 2 of 2: rename leaf → stem: 'stem' already exists"):
        apply_edits(DAISY, [Rename("petal", "ray"), Rename("leaf", "stem")])
    assert apply_edits(DAISY, [{"op": "rename", "old": "petal", "new": "ray"}]) == Rename("petal", "ray").apply(DAISY)


def test_invert_edits_undoes_a_sequence():
    edits = [Rename("petal", "ray"), AddConcept("sepal", "Sepal", parents=("flower_head",)),
             Merge(("ray", "sepal"), "florets"), RemovePart("daisy", "leaf") if False else AddPart("stem", "leaf")]
    after = apply_edits(DAISY, edits)
    assert apply_edits(after, invert_edits(DAISY, edits)) == DAISY


def test_text_diff_is_a_small_unified_diff():
    assert text_diff(DAISY, DAISY) == ""
    diff = text_diff(DAISY, Describe("petal", label="Ray petal").apply(DAISY), "a.yaml", "b.yaml")
    assert diff.startswith("--- a.yaml\n+++ b.yaml\n")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert changed == ["-  label: Petal", "+  label: Ray petal"]


def test_semantic_diff_lists_readable_operations():
    assert semantic_diff(DAISY, DAISY) == []
    b = apply_edits(DAISY, [Rename("petal", "ray"), AddConcept("sepal", "Sepal", parents=("flower_head",)),
                            Describe("disk", description="yellow"), RemoveConcept("leaf")])
    d = semantic_diff(DAISY, b)
    assert [e.summary() for e in d] == ["rename petal → ray", "add_concept sepal", "describe disk (description)",
                                        "remove_concept leaf"]
    assert apply_edits(DAISY, d) == b


@pytest.mark.parametrize("a, b", [(DAISY, CAR), (CAR, DAISY)])
def test_semantic_diff_between_unrelated_ontologies(a, b):
    d = semantic_diff(a, b)
    assert apply_edits(a, d) == b.replace(name=a.name)


def test_semantic_diff_when_the_root_becomes_an_existing_concept():
    b = Split("daisy", (ConceptSpec("plant", "Plant", parts=("daisy", "leaf", "stem")),
                        ConceptSpec("daisy", "Daisy", parts=("flower_head",)))).apply(DAISY)
    assert apply_edits(DAISY, semantic_diff(DAISY, b)) == b
    assert apply_edits(b, semantic_diff(b, DAISY)) == DAISY


# --------------------------------------------------------------------------- property tests
_NEW_IDS = ["ray", "centre", "bud", "sepal", "x1", "x2", "x3", "petal", "wheel"]
_LABEL = st.text(min_size=1, max_size=12).filter(str.strip)


def _maybe(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def edits_for(draw, o: Ontology) -> Edit:
    """A random edit aimed at ``o`` (often valid, sometimes not)."""
    ids = list(o.concepts)
    some = st.sampled_from(ids)
    new_id = draw(st.sampled_from(_NEW_IDS))
    op = draw(st.sampled_from(sorted([*EDIT_OPS, *WORKBENCH_OPS])))
    if op == "set_provisional":  # the workbench's own op: provisional flags must survive every other edit
        cid = draw(some)
        return SetProvisional(cid, not o[cid].provisional)
    if op == "merge" and len(ids) < 2:
        op = "add_concept"
    if op == "add_concept":
        impl = draw(st.sampled_from(["net", "rule"]))
        return AddConcept(new_id, draw(_LABEL), draw(st.text(max_size=20)), impl,
                          "is_round" if impl == "rule" else None,
                          tuple(draw(st.lists(some, max_size=2, unique=True))),
                          tuple(draw(st.lists(some, min_size=1, max_size=2, unique=True))))
    if op == "remove_concept":
        return RemoveConcept(draw(some))
    if op == "rename":
        return Rename(draw(some), new_id, draw(_maybe(_LABEL)))
    if op == "add_part":
        return AddPart(draw(some), draw(some))
    if op == "remove_part":
        edges = o.edges()
        return RemovePart(*draw(st.sampled_from(edges))) if edges else RemovePart(draw(some), draw(some))
    if op == "merge":
        sources = tuple(draw(st.lists(some, min_size=2, max_size=3, unique=True)))
        into = draw(st.sampled_from([*sources, new_id]))
        return Merge(sources, into, draw(_maybe(_LABEL)), draw(_maybe(st.text(max_size=10))))
    if op == "split":
        cid = draw(some)
        n = draw(st.integers(2, 3))
        pool = [x for x in _NEW_IDS + ["y1", "y2", "y3"] if x not in o]
        piece_ids = draw(st.lists(st.sampled_from(pool), min_size=n - 1, max_size=n - 1, unique=True))
        piece_ids = [draw(st.sampled_from([cid, *pool]))] + piece_ids if draw(st.booleans()) else [cid, *piece_ids]
        piece_ids = list(dict.fromkeys(piece_ids))
        if len(piece_ids) < 2:
            piece_ids.append("y9")
        parts: dict[str, list[str]] = {p: [] for p in piece_ids}
        parents: dict[str, list[str]] = {p: [] for p in piece_ids}
        for child in o.parts(cid):
            for p in draw(st.lists(st.sampled_from(piece_ids), min_size=1, max_size=2, unique=True)):
                parts[p].append(child)
        for parent in o.parents(cid):
            for p in draw(st.lists(st.sampled_from(piece_ids), min_size=1, max_size=2, unique=True)):
                parents[p].append(parent)
        for j, p in enumerate(piece_ids[1:], start=1):
            if not parents[p] or draw(st.booleans()):
                parents[p].append(draw(st.sampled_from(piece_ids[:j])))
        return Split(cid, tuple(ConceptSpec(p, draw(_LABEL), parts=tuple(parts[p]), parents=tuple(parents[p]))
                                for p in piece_ids))
    impl = draw(_maybe(st.sampled_from(["net", "rule"])))
    return Describe(draw(some), draw(_maybe(_LABEL)), draw(_maybe(st.text(max_size=20))), impl,
                    draw(_maybe(st.sampled_from(["is_round", "white_blob"]))),
                    draw(_maybe(st.sampled_from(["", "n11939491"]))))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([DAISY, CAR]), st.data())
def test_random_edit_sequences_stay_valid_and_every_edit_inverts_exactly(start, data):
    o = start
    history: list[Edit] = []
    for _ in range(data.draw(st.integers(1, 8), label="n")):
        e = data.draw(edits_for(o), label="edit")
        assert edit_from_dict(json.loads(json.dumps(e.to_dict()))) == e  # plain-data round trip
        try:
            new = e.apply(o)
        except EditError as err:  # refused edits say why and change nothing
            assert err.problems and str(err)
            continue
        assert Ontology.loads(new.dumps()) == new  # still a valid ontology, and it round-trips
        assert apply_edits(new, e.inverse(o)) == o  # apply + inverse is the identity
        history.append(e)
        o = new
    assert apply_edits(o, invert_edits(start, history)) == start
    assert edits_from_data(edits_to_data(history)) == history


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([DAISY, CAR]), st.sampled_from([DAISY, CAR]), st.data())
def test_semantic_diff_replays_exactly(a, b, data):
    for _ in range(data.draw(st.integers(0, 5), label="n_a")):
        try:
            a = data.draw(edits_for(a), label="edit_a").apply(a)
        except EditError:
            pass
    for _ in range(data.draw(st.integers(0, 5), label="n_b")):
        try:
            b = data.draw(edits_for(b), label="edit_b").apply(b)
        except EditError:
            pass
    d = semantic_diff(a, b)
    assert apply_edits(a, d) == b.replace(name=a.name)
    assert edits_from_data(edits_to_data(d)) == d
    if a == b:
        assert d == []


def test_edit_errors_are_ontology_errors():
    # Callers that catch OntologyError (e.g. the CLI) also catch refused edits.
    assert issubclass(EditError, OntologyError)
    with pytest.raises(OntologyError):
        RemoveConcept("daisy").apply(DAISY)


def test_concepts_from_edits_match_what_the_yaml_says():
    o = AddConcept("sepal", "Sepal", "green", parents=("flower_head",)).apply(DAISY)
    assert o["sepal"] == Concept("sepal", "Sepal", "green")


def test_semantic_diff_when_root_and_part_swap_places():
    # Neither a split nor a merge expresses this: the diff goes through a temporary root.
    a = Ontology("t", "r", [Concept("r", "R", parts=("x", "y")), Concept("x", "X", parts=("y",)), Concept("y", "Y")])
    b = Ontology("t", "x", [Concept("x", "X", parts=("r",)), Concept("r", "R", parts=("y",)), Concept("y", "Y")])
    for one, other in ((a, b), (b, a)):
        d = semantic_diff(one, other)
        assert apply_edits(one, d) == other
        assert not any("scaffold" in c for c in apply_edits(one, d).concepts)


# ------------------------------------------------------------------------------------ provisional concepts
def test_set_provisional_is_the_workbenchs_op_not_a_proposable_one():
    assert "set_provisional" not in EDIT_OPS and WORKBENCH_OPS == {"set_provisional": SetProvisional}
    e = edit_from_dict({"op": "set_provisional", "id": "petal", "provisional": True})
    assert e == SetProvisional("petal") and e.to_dict() == {"op": "set_provisional", "id": "petal", "provisional": True}
    o = check_invertible(DAISY, e)
    assert o["petal"].provisional and o.composed_parts("flower_head") == ("disk",)
    with pytest.raises(EditError, match="already provisional"):
        e.apply(o)
    with pytest.raises(EditError, match="root 'daisy' cannot be provisional"):
        SetProvisional("daisy").apply(DAISY)
    with pytest.raises(EditError, match="must be true or false"):
        edit_from_dict({"op": "set_provisional", "id": "petal", "provisional": "yes"})


def test_provisional_flags_follow_renames_splits_and_merges_and_come_back_with_inverses():
    o = apply_edits(DAISY, [AddConcept("bud", "Bud", parents=("flower_head",)), SetProvisional("bud"),
                            AddConcept("tip", "Tip", parents=("petal",)), SetProvisional("tip")])
    assert Rename("bud", "button").apply(o)["button"].provisional
    pieces = Split("bud", (ConceptSpec("b1", "B1"), ConceptSpec("b2", "B2"))).apply(o)
    assert pieces["b1"].provisional and pieces["b2"].provisional
    assert Merge(("bud", "tip"), "bt").apply(o)["bt"].provisional  # every source provisional
    assert not Merge(("bud", "disk"), "disk").apply(o)["disk"].provisional  # a confirmed source: confirmed
    for e in (RemoveConcept("bud"), Merge(("bud", "disk"), "disk"), Merge(("bud", "tip"), "bt"),
              Rename("bud", "button"), Split("bud", (ConceptSpec("b1", "B1"), ConceptSpec("b2", "B2")))):
        check_invertible(o, e)


def test_semantic_diff_says_when_a_concept_became_provisional_or_was_confirmed():
    added = AddConcept("bud", "Bud", parents=("flower_head",)).apply(DAISY)
    provisional = SetProvisional("bud").apply(added)
    assert semantic_diff(DAISY, provisional) == [AddConcept("bud", "Bud", parents=("flower_head",)),
                                                 SetProvisional("bud")]
    assert semantic_diff(provisional, added) == [SetProvisional("bud", False)]
    assert semantic_diff(provisional, DAISY) == [RemoveConcept("bud")]
