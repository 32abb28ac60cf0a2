"""Concept lint: flag concept wording a camera cannot check, before a person reviews it.

A concept in the ontology must be something a tiny net (or a plain rule) can find in pixels: a
colour, a shape, a texture, a position relative to other parts. The source study saw an LLM drift
into properties no image shows ("Mohs hardness", "smells sweet"), into function ("allows pivoting",
"used for climbing") and into hedging ("possibly a bract"). :func:`lint_concept` finds those words
in a proposed label and description and returns one readable warning per finding. Warnings are
shown next to the proposed edit; they never block it (a person decides).

>>> lint_concept("Petal", "A narrow white blade around the yellow disk.")
[]
>>> for w in lint_concept("Hardness", "Mohs hardness of the stem; maybe smells sweet."): print(w)
non-visual: 'hardness' is not something a camera sees (label)
non-visual: 'Mohs hardness' is not something a camera sees (description)
non-visual: 'smell' is not something a camera sees (description)
non-visual: 'taste' is not something a camera sees (description)
speculative: 'maybe' hedges; describe what is visible, or leave the concept out (description)
>>> lint_concept("Hinge", "A joint that allows pivoting of the petal.")
["function: 'allows' describes what it does, not how it looks (description)"]
>>> lint_concept("Structural support element providing overall mechanical stability", "")[0]
'label too long: 7 words (at most 5); name the part as a person would point at it'
"""
from __future__ import annotations

import re

__all__ = ["lint_concept", "MAX_LABEL_WORDS", "MAX_LABEL_CHARS", "NON_VISUAL", "FUNCTION_WORDS", "SPECULATIVE", "ABSTRACT"]

#: A label longer than this many words reads as a sentence, not a part's name.
MAX_LABEL_WORDS = 5
#: ... or than this many characters.
MAX_LABEL_CHARS = 40

#: Properties no camera sees: stem of the word → the name used in the warning.
NON_VISUAL: dict[str, str] = {
    r"mohs": "Mohs hardness", r"hard(ness)?": "hardness", r"soft(ness)?": "softness", r"weigh(s|t|ts|ing)?": "weight",
    r"heavy": "weight", r"smell(s|y|ing)?": "smell", r"scent(ed)?": "smell", r"odou?rs?": "smell",
    r"fragran(t|ce)": "smell", r"aroma(tic)?": "smell", r"tastes?": "taste", r"tasty": "taste",
    r"flavou?rs?": "taste", r"sweet": "taste", r"bitter": "taste", r"temperature": "temperature",
    r"hot": "temperature", r"price[sd]?": "price", r"costs?": "price", r"expensive": "price",
    r"cheap": "price", r"sounds?": "sound", r"noisy?": "sound", r"feels?": "touch",
    r"to the touch": "touch", r"nutriti(on|ous)": "nutrition", r"toxic": "toxicity",
    r"poison(ous)?": "toxicity", r"edible": "edibility", r"medicinal": "medicinal use", r"sticky": "stickiness",
}
#: Words that describe what a part does rather than how it looks.
FUNCTION_WORDS = (
    "allows", "allow", "enables", "used for", "use for", "helps", "help", "serves to", "serves as",
    "in order to", "responsible for", "purpose", "function", "protects", "attracts", "supports",
    "provides", "designed to",
)
#: Hedging words: a concept is either visible or left out.
SPECULATIVE = ("maybe", "possibly", "possible", "might", "probably", "perhaps", "likely", "presumably",
               "could be", "may be", "seems to", "appears to be")
#: Abstract nouns that make a label a category rather than a part one can point at.
ABSTRACT = ("structure", "element", "component", "system", "mechanism", "feature", "aspect", "entity",
            "region of interest", "thing", "object", "stability", "functionality")


def _find(pattern: str, text: str) -> bool:
    return re.search(rf"\b(?:{pattern})\b", text, flags=re.IGNORECASE) is not None


def _check_text(text: str, where: str, out: list[str]) -> None:
    seen: set[str] = set()
    for stem, name in NON_VISUAL.items():
        if name not in seen and _find(stem, text):
            if name == "hardness" and "Mohs hardness" in seen:
                continue
            seen.add(name)
            out.append(f"non-visual: {name!r} is not something a camera sees ({where})")
    for w in FUNCTION_WORDS:
        if re.search(rf"\b{re.escape(w)}\b", text, flags=re.IGNORECASE):
            out.append(f"function: {w!r} describes what it does, not how it looks ({where})")
            break
    for w in SPECULATIVE:
        if re.search(rf"\b{re.escape(w)}\b", text, flags=re.IGNORECASE):
            out.append(f"speculative: {w!r} hedges; describe what is visible, or leave the concept out ({where})")
            break


def lint_concept(label: str | None, description: str | None = "") -> list[str]:
    """Warnings for a concept's ``label`` and ``description`` (empty list: nothing to flag).

    Non-visual properties (hardness, weight, smell, taste, temperature, price, ...), function words
    ("allows", "used for", "helps"), speculative words ("maybe", "possibly", "might", "probably") and
    labels that are too long or abstract. Non-string input is ignored (the edit's own validation
    reports it).
    """
    out: list[str] = []
    label = label if isinstance(label, str) else ""
    description = description if isinstance(description, str) else ""
    words = label.split()
    if len(words) > MAX_LABEL_WORDS:
        out.append(f"label too long: {len(words)} words (at most {MAX_LABEL_WORDS}); name the part as a person "
                   "would point at it")
    elif len(label) > MAX_LABEL_CHARS:
        out.append(f"label too long: {len(label)} characters (at most {MAX_LABEL_CHARS})")
    abstract = [w for w in ABSTRACT if re.search(rf"\b{re.escape(w)}s?\b", label, flags=re.IGNORECASE)]
    if abstract:
        out.append(f"abstract label: {abstract[0]!r} names a category, not a part one can point at; say what it "
                   "looks like (e.g. 'green stem')")
    if label:
        _check_text(label, "label", out)
    if description:
        _check_text(description, "description", out)
    return out
