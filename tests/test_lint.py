"""Tests for workbench/lint.py: non-visual, functional, speculative and abstract concept wording."""
from __future__ import annotations

from pathlib import Path

import pytest

from workbench.ontology.graph import Ontology
from workbench.ontology.lint import lint_concept

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("label, description, kind, word", [
    ("Stone", "Mohs hardness about 6", "non-visual", "Mohs hardness"),
    ("Petal", "soft and smells sweet", "non-visual", "smell"),
    ("Fruit", "tastes bitter", "non-visual", "taste"),
    ("Bulb", "weighs about 20 g", "non-visual", "weight"),
    ("Stem", "its temperature is low", "non-visual", "temperature"),
    ("Gem", "the price is high", "non-visual", "price"),
    ("Hinge", "allows pivoting", "function", "allows"),
    ("Hook", "used for climbing", "function", "used for"),
    ("Root", "helps the plant stand", "function", "helps"),
    ("Bract", "maybe a bract", "speculative", "maybe"),
    ("Bract", "possibly green", "speculative", "possibly"),
    ("Dot", "might be pollen", "speculative", "might"),
    ("Dot", "probably a seed", "speculative", "probably"),
])
def test_flags_each_kind_of_wording(label, description, kind, word):
    warnings = lint_concept(label, description)
    hits = [w for w in warnings if w.startswith(f"{kind}:") and repr(word) in w]
    assert hits, warnings
    assert hits[0].endswith("(description)")


def test_labels_are_checked_too_and_say_where():
    w = lint_concept("Fragrant petal", "white blade")
    assert w == ["non-visual: 'smell' is not something a camera sees (label)"]


def test_long_and_abstract_labels():
    assert lint_concept("Upper outer white radiating ray petal blade", "")[0].startswith("label too long: 7 words")
    assert lint_concept("Supercalifragilisticexpialidocious-petalx-stem", "")[0].startswith("label too long:")
    assert any(w.startswith("abstract label: 'structure'") for w in lint_concept("Support structure", ""))
    assert any(w.startswith("abstract label: 'component'") for w in lint_concept("Floral components", ""))


@pytest.mark.parametrize("label, description", [
    ("Petal", "A narrow white blade, sometimes tipped with pink, pointing outward from the yellow disk."),
    ("Leaf", "Spoon-shaped, matte dark green, in a low rosette."),
    ("Disk", "A round deep-yellow button of hardly visible florets; warm yellow, grainy."),  # 'hardly' is not 'hard'
    ("Stem", "A thin green line, several flower-head widths long."),
])
def test_visual_descriptions_pass(label, description):
    assert lint_concept(label, description) == []


def test_the_shipped_ontologies_are_clean():
    for name in ("daisy", "car"):
        o = Ontology.load(ROOT / "ontologies" / f"{name}.yaml")
        for c in o.concepts.values():
            assert lint_concept(c.label, c.description) == [], (name, c.id)


def test_non_text_is_ignored_not_crashed_on():
    assert lint_concept(None, None) == []
    assert lint_concept(3, ["x"]) == []  # type: ignore[arg-type]
