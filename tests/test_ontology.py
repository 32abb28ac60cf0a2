"""Tests for workbench.ontology.graph: the shipped files, validation messages, safe loading, round trips."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import OntologyError
from workbench.ontology.graph import (
    BASE_SCHEMA_VERSION,
    CONCEPT_KEYS,
    SCHEMA_VERSION,
    Concept,
    Ontology,
    load_ontology,
)

ONTOLOGIES = Path(__file__).resolve().parent.parent / "ontologies"


def load_text(tmp_path: Path, text: str | bytes, name: str = "onto.yaml") -> Ontology:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return Ontology.load(path)


def problems_of(tmp_path: Path, text: str | bytes, name: str = "onto.yaml") -> list[str]:
    with pytest.raises(OntologyError) as info:
        load_text(tmp_path, text, name)
    return info.value.problems


GOOD = """\
version: 1
name: toy
root: daisy
concepts:
- id: daisy
  label: Daisy
  parts: [flower_head, stem]
- id: flower_head
  label: Flower head
  parts: [petal, disk]
- id: petal
  label: Petal
- id: disk
  label: Disk
- id: stem
  label: Stem
"""


# ------------------------------------------------------------------------------------- shipped files
@pytest.mark.parametrize("name", ["daisy", "car"])
def test_shipped_ontologies_load_and_round_trip_byte_for_byte(tmp_path, name):
    path = ONTOLOGIES / f"{name}.yaml"
    o = load_ontology(path)
    assert o.dumps().encode("utf-8") == path.read_bytes()
    o.save(tmp_path / "copy.yaml")
    assert (tmp_path / "copy.yaml").read_bytes() == path.read_bytes()
    assert all(c.description.strip() for c in o.concepts.values()), "every shipped concept is described"


def test_daisy_is_the_source_studys_ontology():
    o = load_ontology(ONTOLOGIES / "daisy.yaml")
    assert o.root == "daisy" and o[o.root].imagenet_id == "n11939491"
    assert o.parts("daisy") == ("flower_head", "leaf", "stem")
    assert o.parts("flower_head") == ("disk", "petal")
    assert o.leaves() == ["disk", "leaf", "petal", "stem"]
    assert o.composites() == ["daisy", "flower_head"]
    assert [o.kind(c) for c in ("daisy", "flower_head", "petal")] == ["root", "composite", "part"]


def test_car_ontology():
    o = load_ontology(ONTOLOGIES / "car.yaml")
    assert o.root == "car" and o.leaves() == ["car_body", "wheel", "window"]


# ------------------------------------------------------------------------------------------- graph
def test_graph_helpers(tmp_path):
    o = load_text(tmp_path, GOOD)
    assert list(o.concepts) == ["daisy", "disk", "flower_head", "petal", "stem"]  # root first, then sorted
    assert o.parents("petal") == ("flower_head",)
    assert o.descendants("daisy") == ["disk", "flower_head", "petal", "stem"]
    assert o.ancestors("disk") == ["daisy", "flower_head"]
    assert sorted(o.graph.edges()) == o.edges()
    assert o.bottom_up() == ["disk", "petal", "stem", "flower_head", "daisy"]
    with pytest.raises(OntologyError, match="no concept 'petl'.*did you mean 'petal'"):
        o.parts("petl")


def test_bottom_up_puts_every_concept_after_its_parts_with_shared_parts(tmp_path):
    o = Ontology("x", "r", [Concept("r", "R", parts=("a", "b")), Concept("a", "A", parts=("c",)),
                            Concept("b", "B", parts=("c", "a")), Concept("c", "C")])
    order = o.bottom_up()
    assert sorted(order) == sorted(o.concepts)
    for cid in order:
        assert all(order.index(p) < order.index(cid) for p in o.parts(cid))
    assert order == o.bottom_up()


def test_graph_is_frozen(tmp_path):
    o = load_text(tmp_path, GOOD)
    with pytest.raises(Exception, match="[Ff]rozen"):
        o.graph.add_edge("petal", "daisy")


def test_ontology_is_an_immutable_value(tmp_path):
    a, b = load_text(tmp_path, GOOD), Ontology.loads(GOOD, "other.yaml")
    assert a == b and hash(a) == hash(b) and a.source != b.source
    with pytest.raises(TypeError):
        a.concepts["x"] = Concept("x", "X")  # type: ignore[index]
    c = a.with_concepts(a["petal"].replace(label="Ray petal"))
    assert c != a and a["petal"].label == "Petal" and c["petal"].label == "Ray petal"


def test_parts_are_kept_sorted_so_equal_graphs_are_equal():
    a = Ontology("x", "r", [Concept("r", "R", parts=("b", "a")), Concept("a", "A"), Concept("b", "B")])
    b = Ontology("x", "r", [Concept("b", "B"), Concept("a", "A"), Concept("r", "R", parts=["a", "b"])])
    assert a == b and a["r"].parts == ("a", "b")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    o = load_text(tmp_path, GOOD)
    target = tmp_path / "saved.yaml"
    o.save(target)
    before = target.read_bytes()
    changed = o.with_concepts(o["petal"].replace(description="white"))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        changed.save(target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onto.yaml", "saved.yaml"]


def test_canonical_form_key_order_and_defaults_left_out():
    o = Ontology("x", "r", [
        Concept("r", "R", description="d", parts=("a",), imagenet_id="n11939491"),
        Concept("a", "A", implementation="rule", rule="is_round"),
    ])
    text = o.dumps()
    assert text.splitlines()[1:4] == [f"version: {BASE_SCHEMA_VERSION}", "name: x", "root: r"]
    assert "- id: r\n  label: R\n  imagenet_id: n11939491\n  description: d\n  parts:\n  - a\n" in text
    assert "- id: a\n  label: A\n  implementation: rule\n  rule: is_round\n" in text
    assert "implementation: net" not in text
    assert list(o["a"].to_dict()) == [k for k in CONCEPT_KEYS if k in o["a"].to_dict()]


def test_multiline_descriptions_are_written_as_blocks():
    o = Ontology("x", "r", [Concept("r", "R", description="line one\nline two\n")])
    assert "description: |\n    line one\n    line two\n" in o.dumps()
    assert Ontology.loads(o.dumps()) == o


# ------------------------------------------------------------------------------------ validation
BAD_CASES = [
    # (id, yaml, substrings that one problem must contain: the concept and the problem)
    ("cycle", GOOD.replace("- id: disk\n  label: Disk\n", "- id: disk\n  label: Disk\n  parts: [flower_head]\n"),
     ["'disk'", "cycle", "disk → flower_head → disk"]),
    ("self-part", GOOD.replace("- id: stem\n  label: Stem\n", "- id: stem\n  label: Stem\n  parts: [stem]\n"),
     ["'stem'", "cycle stem → stem"]),
    ("unknown part", GOOD.replace("[petal, disk]", "[petals, disk]"),
     ["concept 'flower_head'", "part 'petals' is not a concept", "did you mean 'petal'"]),
    ("duplicate id", GOOD + "- id: petal\n  label: Petal again\n",
     ["concept 'petal'", "defined more than once", "concepts[2], concepts[5]"]),
    ("missing root key", GOOD.replace("root: daisy\n", ""), ["missing `root`"]),
    ("root not a concept", GOOD.replace("root: daisy", "root: daisies"),
     ["root 'daisies' is not one of the concepts", "did you mean 'daisy'"]),
    ("second root", GOOD + "- id: sun\n  label: Sun\n",
     ["concept 'sun'", "not a part of anything", "second root"]),
    ("unreachable", GOOD + "- id: sun\n  label: Sun\n  parts: [ray]\n- id: ray\n  label: Ray\n",
     ["concept 'ray'", "unreachable from the root 'daisy'", "sun"]),
    ("root as a part", GOOD.replace("[petal, disk]", "[petal, disk, daisy]"),
     ["concept 'flower_head'", "lists the root 'daisy' as a part"]),
    ("bad id", GOOD.replace("id: petal", "id: Ray Petal").replace("[petal, disk]", "[Ray Petal, disk]"),
     ["concept 'Ray Petal'", "bad id", "'ray_petal'"]),
    ("reserved id", GOOD.replace("id: petal", "id: none").replace("[petal, disk]", "[none, disk]"),
     ["concept 'none'", "reserved", "no concept"]),
    ("unknown key", GOOD.replace("  label: Disk\n", "  label: Disk\n  colour: yellow\n"),
     ["concept 'disk'", "unknown key 'colour'"]),
    ("typo key", GOOD.replace("  label: Disk\n", "  lable: Disk\n"),
     ["concept 'disk'", "unknown key 'lable'", "did you mean 'label'"]),
    ("missing label", GOOD.replace("  label: Disk\n", ""), ["concept 'disk'", "missing `label`"]),
    ("empty label", GOOD.replace("  label: Disk\n", "  label: ' '\n"), ["concept 'disk'", "`label` is empty"]),
    ("label wrong type", GOOD.replace("  label: Disk\n", "  label: 42\n"),
     ["concept 'disk'", "`label` must be a string", "an integer"]),
    ("description wrong type", GOOD.replace("  label: Disk\n", "  label: Disk\n  description: [a, b]\n"),
     ["concept 'disk'", "`description` must be a string"]),
    ("parts wrong type", GOOD.replace("[petal, disk]", "petal"),
     ["concept 'flower_head'", "`parts` must be a list"]),
    ("part wrong type", GOOD.replace("[petal, disk]", "[petal, disk, 3]"),
     ["concept 'flower_head'", "`parts` must list concept ids", "3"]),
    ("part twice", GOOD.replace("[petal, disk]", "[petal, disk, petal]"),
     ["concept 'flower_head'", "part 'petal' is listed twice"]),
    ("bad implementation", GOOD.replace("  label: Disk\n", "  label: Disk\n  implementation: cnn\n"),
     ["concept 'disk'", "`implementation` must be one of net, rule", "'cnn'"]),
    ("rule without name", GOOD.replace("  label: Disk\n", "  label: Disk\n  implementation: rule\n"),
     ["concept 'disk'", "`implementation: rule` needs `rule:"]),
    ("rule with net", GOOD.replace("  label: Disk\n", "  label: Disk\n  rule: is_yellow\n"),
     ["concept 'disk'", "`rule: is_yellow` is given but the implementation is `net`"]),
    ("bad rule name", GOOD.replace("  label: Disk\n", "  label: Disk\n  implementation: rule\n  rule: Is Yellow\n"),
     ["concept 'disk'", "bad rule name 'Is Yellow'"]),
    ("bad imagenet id", GOOD.replace("  label: Daisy\n", "  label: Daisy\n  imagenet_id: daisy\n"),
     ["concept 'daisy'", "bad imagenet_id 'daisy'"]),
    ("imagenet id not on root", GOOD.replace("  label: Disk\n", "  label: Disk\n  imagenet_id: n11939491\n"),
     ["concept 'disk'", "only the root ('daisy') may have an imagenet_id"]),
    ("concept not a mapping", GOOD + "- sun\n", ["concepts[5]", "must be a mapping", "a string"]),
    ("concept without id", GOOD + "- label: Sun\n", ["concepts[5] (label 'Sun')", "missing `id`"]),
    ("id wrong type", GOOD + "- id: 7\n  label: Seven\n", ["concepts[5]", "`id` must be a string"]),
    ("concepts not a list", "version: 1\nname: x\nroot: a\nconcepts: {a: 1}\n", ["`concepts` must be a list"]),
    ("concepts empty", "version: 1\nname: x\nroot: a\nconcepts: []\n", ["`concepts` is empty"]),
    ("missing concepts", "version: 1\nname: x\nroot: a\n", ["missing `concepts`"]),
    ("unknown top key", GOOD + "author: me\n", ["unknown top-level key 'author'"]),
    ("name wrong type", GOOD.replace("name: toy", "name: [toy]"), ["`name` must be a string"]),
    ("missing version", GOOD.replace("version: 1\n", ""), ["missing `version`", "add `version: 1`"]),
    ("version wrong type", GOOD.replace("version: 1", "version: '1'"), ["`version` must be an integer"]),
    ("version too old", GOOD.replace("version: 1", "version: 0"), ["unsupported schema version 0"]),
    ("version newer", GOOD.replace("version: 1", f"version: {SCHEMA_VERSION + 1}"),
     ["newer workbench", "upgrade the workbench"]),
    ("provisional in a version 1 file", GOOD.replace("- id: stem\n  label: Stem\n",
                                                     "- id: stem\n  label: Stem\n  provisional: true\n"),
     ["concept 'stem': `provisional` needs schema version 2"]),
    ("provisional root", GOOD.replace("version: 1", "version: 2").replace(
        "- id: daisy\n  label: Daisy\n", "- id: daisy\n  label: Daisy\n  provisional: true\n"),
     ["the root cannot be provisional"]),
    ("provisional not a boolean", GOOD.replace("version: 1", "version: 2").replace(
        "- id: stem\n  label: Stem\n", "- id: stem\n  label: Stem\n  provisional: 'yes'\n"),
     ["`provisional` must be true or false"]),
    ("not a mapping", "- a\n- b\n", ["must be a YAML mapping", "a list"]),
    ("empty file", "", ["must be a YAML mapping", "null"]),
    ("scalar file", "daisy\n", ["must be a YAML mapping", "a string"]),
    ("invalid yaml", "version: 1\nname: [unclosed\n", ["invalid YAML"]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_each_problem_has_one_clear_message_naming_the_file_and_concept(tmp_path, text, expected):
    problems = problems_of(tmp_path, text, "broken.yaml")
    path = str(tmp_path / "broken.yaml")
    assert all(p.startswith(path + ":") for p in problems), problems
    matching = [p for p in problems if all(s in p for s in expected)]
    assert len(matching) == 1, f"expected one problem containing {expected}, got {problems}"


def test_all_problems_are_collected_not_just_the_first(tmp_path):
    text = GOOD.replace("  label: Disk\n", "  label: Disk\n  colour: yellow\n").replace("[petal, disk]", "[petal, disk, x]")
    text += "- id: sun\n  label: Sun\n"
    with pytest.raises(OntologyError) as info:
        load_text(tmp_path, text, "many.yaml")
    assert len(info.value.problems) == 3
    assert "3 problems" in str(info.value) and "many.yaml" in str(info.value)
    for p in info.value.problems:
        assert p in str(info.value)


def test_a_cycle_is_reported_once_with_its_path(tmp_path):
    text = GOOD.replace("- id: disk\n  label: Disk\n", "- id: disk\n  label: Disk\n  parts: [daisy2]\n")
    text += "- id: daisy2\n  label: D2\n  parts: [flower_head]\n"
    problems = problems_of(tmp_path, text)
    cycles = [p for p in problems if "cycle" in p]
    assert len(cycles) == 1 and "daisy2 → flower_head → disk → daisy2" in cycles[0]


def test_broken_parts_do_not_cascade_into_unreachable_messages(tmp_path):
    problems = problems_of(tmp_path, GOOD.replace("[petal, disk]", "petal"))
    assert len(problems) == 1, problems


def test_constructor_validates_concept_objects_too():
    with pytest.raises(OntologyError) as info:
        Ontology("x", "r", [Concept("r", "R", parts=("a",)), Concept("a", 5)])  # type: ignore[arg-type]
    assert info.value.problems == ["<memory>: concept 'a': `label` must be a string, got an integer (5)"]
    with pytest.raises(OntologyError, match="stored under the key 'b'"):
        Ontology("x", "r", {"r": Concept("r", "R", parts=("a",)), "b": Concept("a", "A")})


def test_huge_values_give_short_messages(tmp_path):
    text = GOOD.replace("  label: Disk\n", "  label: [" + ", ".join(["x" * 1000] * 1000) + "]\n")
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1 and len(problems[0]) < len(str(tmp_path)) + 300


# ---------------------------------------------------------------------------------------- safety
@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:builtins.open ['{marker}', 'w']",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/object/new:builtins.open ['{marker}', 'w']",
    "!!python/name:os.system",
    "!!python/module:os",
])
def test_object_constructing_tags_are_refused_and_never_executed(tmp_path, tag):
    marker = tmp_path / "pwned"
    text = GOOD.replace("  label: Disk\n", f"  label: Disk\n  description: {tag.format(marker=marker)}\n")
    problems = problems_of(tmp_path, text, "evil.yaml")
    assert len(problems) == 1 and "evil.yaml" in problems[0] and "tag not allowed" in problems[0]
    assert not marker.exists()


def test_a_top_level_tag_is_refused_too(tmp_path):
    marker = tmp_path / "pwned"
    problems = problems_of(tmp_path, f"!!python/object/apply:os.system ['touch {marker}']\n", "evil.yaml")
    assert "tag not allowed" in problems[0] and not marker.exists()


def _bomb(levels: int, width: int, key: str = "description") -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n" + GOOD + f"extra: *a{levels - 1}\n"


def test_alias_bomb_is_refused_quickly(tmp_path):
    problems = problems_of(tmp_path, _bomb(12, 12), "bomb.yaml")  # expanded, it would be 12**11 nodes
    assert len(problems) == 1 and "alias" in problems[0] and "bomb.yaml" in problems[0]


def test_alias_bomb_under_the_alias_count_is_named_as_an_alias_bomb(tmp_path):
    # 9 levels x 9 aliases stay under the alias count; expanding it would take 9**8 elements.
    text = _bomb(9, 9).replace("  label: Disk\n", "  label: *a8\n")
    problems = problems_of(tmp_path, text, "bomb.yaml")
    assert len(problems) == 1 and "bomb.yaml" in problems[0] and "(an alias bomb); refused" in problems[0]
    assert "expand to more than 100,000 nodes" in problems[0]


def test_aliases_that_expand_a_little_are_not_expanded_in_messages(tmp_path):
    # 3 levels x 9 aliases: 9**2 values, under the expansion limit; the schema error stays short.
    text = _bomb(3, 9).replace("  label: Disk\n", "  label: *a2\n")
    problems = problems_of(tmp_path, text)
    assert any("concept 'disk'" in p and "`label` must be a string" in p for p in problems)
    assert all(len(p) < len(str(tmp_path)) + 300 for p in problems)


def test_non_utf8_bytes_are_refused(tmp_path):
    problems = problems_of(tmp_path, GOOD.encode("utf-8").replace(b"Disk", b"D\xefsk\xff"), "latin.yaml")
    assert len(problems) == 1 and "latin.yaml" in problems[0] and "not UTF-8" in problems[0]


def test_deep_nesting_is_refused(tmp_path):
    problems = problems_of(tmp_path, GOOD + "extra: " + "[" * 20000 + "]" * 20000 + "\n", "deep.yaml")
    assert len(problems) == 1 and "deep.yaml" in problems[0] and "nested too deeply" in problems[0]


def test_oversized_file_is_refused_before_parsing(tmp_path):
    text = GOOD + "# " + "x" * (3 * 1024 * 1024) + "\n"
    problems = problems_of(tmp_path, text, "big.yaml")
    assert len(problems) == 1 and "big.yaml" in problems[0] and "limit" in problems[0]


def test_missing_file(tmp_path):
    with pytest.raises(OntologyError, match="nothere.yaml: file not found"):
        Ontology.load(tmp_path / "nothere.yaml")


# ---------------------------------------------------------------------------------- round trips
_IDS = [f"c{i}" for i in range(12)] + ["petal", "disk", "flower_head", "z_9"]
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def ontologies(draw) -> Ontology:
    """Random valid ontologies: concept i's parents are drawn from concepts before it (so a DAG, all reachable)."""
    ids = draw(st.lists(st.sampled_from(_IDS), min_size=1, max_size=8, unique=True))
    parts: dict[str, set[str]] = {i: set() for i in ids}
    for k, cid in enumerate(ids[1:], start=1):
        for parent in draw(st.lists(st.sampled_from(ids[:k]), min_size=1, max_size=3, unique=True)):
            parts[parent].add(cid)
    concepts = []
    for k, cid in enumerate(ids):
        impl = draw(st.sampled_from(["net", "net", "rule"]))
        concepts.append(Concept(
            cid,
            draw(_TEXT.filter(str.strip)),
            draw(_TEXT),
            impl,
            tuple(draw(st.permutations(sorted(parts[cid])))),
            draw(st.sampled_from(["is_round", "rule_2"])) if impl == "rule" else None,
            draw(st.one_of(st.none(), st.just("n11939491"))) if k == 0 else None,
        ))
    order = draw(st.permutations(concepts))
    return Ontology(draw(_TEXT.filter(str.strip)), ids[0], order)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ontologies())
def test_load_save_round_trip_is_exact_and_byte_identical(tmp_path_factory, o):
    text = o.dumps()
    again = Ontology.loads(text, "rt.yaml")
    assert again == o
    assert again.dumps() == text
    path = tmp_path_factory.mktemp("rt") / "o.yaml"
    o.save(path)
    assert path.read_bytes() == text.encode("utf-8")
    assert Ontology.load(path) == o
    assert Ontology.from_dict(o.to_dict()) == o


@settings(max_examples=100, deadline=None)
@given(ontologies())
def test_graph_helpers_agree_with_the_concepts(o):
    order = o.bottom_up()
    assert sorted(order) == sorted(o.concepts) and order[-1] == o.root
    for cid in o.concepts:
        assert all(order.index(p) < order.index(cid) for p in o.parts(cid))
        for p in o.parts(cid):
            assert cid in o.parents(p)
        assert o.kind(cid) == ("root" if cid == o.root else "composite" if o.parts(cid) else "part")
    assert set(o.leaves()) | set(o.composites()) | {o.root} == set(o.concepts)
    assert set(o.descendants(o.root)) == set(o.concepts) - {o.root}


# ------------------------------------------------------------------------------------ provisional concepts
def _with_bud(provisional: bool) -> Ontology:
    o = Ontology.loads(GOOD, "toy.yaml")
    return o.with_concepts(Concept("bud", "Bud", provisional=provisional),
                           o["flower_head"].replace(parts=("petal", "disk", "bud")))


def test_a_provisional_concept_is_saved_as_version_2_and_read_back():
    o = _with_bud(True)
    text = o.dumps()
    assert "\nversion: 2\n" in text and "- id: bud\n  label: Bud\n  provisional: true\n" in text
    back = Ontology.loads(text, "toy.yaml")
    assert back == o and back["bud"].provisional and back.provisional() == ["bud"]
    assert back.dumps() == text
    assert "provisional" not in _with_bud(False).dumps() and "\nversion: 1\n" in _with_bud(False).dumps()
    assert o != _with_bud(False) and o.confirmed() == _with_bud(False)


def test_every_shipped_ontology_is_version_1_and_saves_byte_identical():
    for path in sorted((Path(__file__).resolve().parents[1] / "ontologies").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if not text.startswith("# Constructability Workbench ontology"):
            continue  # suggestions, reviews: not ontologies
        o = Ontology.loads(text, str(path))
        assert o.provisional() == [] and o.dumps() == text, path.name


def test_a_provisional_part_is_left_out_of_its_parents_composition():
    o = _with_bud(True)
    assert o.parts("flower_head") == ("bud", "disk", "petal")  # the file's edges
    assert o.composed_parts("flower_head") == ("disk", "petal")  # what its model combines
    assert "bud" in o.leaves() and o.kind("bud") == "part"
    # a part whose only part is provisional still scores segments itself
    tip = o.with_concepts(Concept("tip", "Tip", provisional=True), o["petal"].replace(parts=("tip",)))
    assert o.kind("petal") == "part" and tip.kind("petal") == "part" and "petal" in tip.leaves()
    assert tip.confirmed().kind("petal") == "composite" and "petal" not in tip.confirmed().leaves()
    assert _with_bud(False).composed_parts("flower_head") == ("bud", "disk", "petal")
