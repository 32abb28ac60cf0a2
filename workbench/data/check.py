"""Does a data set fit an ontology? Checked in well under a second, before any image is loaded.

:func:`check_fit` reads only names: the class folders, ``parts.json`` and the ontology file. It finds
what would otherwise surface minutes into segmenting or training:

* the ontology is its root alone: nothing to train (only when ``purpose="train"``: a workspace may start
  from a seed ontology and grow it by proposals before anything is trained);
* a concept names a rule the workbench does not have (``rules``: the known rule names; the command line
  passes :data:`workbench.models._rule_names.RULE_NAMES`, which needs no torch);
* no class folder is named like the ontology's root (the root's images are the positives);
* a ``parts.json`` id that is a near miss of a concept which has no mask index of its own (a typo:
  ``tial`` for ``tail``), with the concept it probably means;
* ``parts.json`` maps ids, but none of them is a part of the ontology (``purpose="train"``): every
  label from the masks would be "none" (e.g. PartImageNet's ``quadruped_head`` against a ``head``).

Other ``parts.json`` ids that are not concepts are not problems: they mean "none" by design (the demo's
``other_petal``, ``sun``); with ``purpose="train"`` they are listed as a note, each with its closest
concept id. Parts of the
ontology without any mask index are a note too (their nets get no positives from the masks).

>>> import tempfile
>>> from workbench.data.datasets import generate_demo
>>> from workbench.ontology.graph import Concept, Ontology
>>> root = Path(tempfile.mkdtemp()) / "demo"
>>> _ = generate_demo(root, n_per_class=1, size=64)
>>> onto = Ontology("x", "daisy", [Concept("daisy", "Daisy", parts=("tail",)), Concept("tail", "Tail")])
>>> report = check_fit(root, onto)
>>> report.ok
False
>>> print(report.problems[0].split("parts.json: ")[1])  # doctest: +ELLIPSIS
none of its ids (petal, disk, ...) is a part of the ontology <memory> (its parts: tail): every label ...
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from workbench.data.datasets import PARTS_FILE, ImageFolder, _read_parts_map
from workbench.errors import DatasetError
from workbench.ontology.graph import Ontology

__all__ = ["PURPOSES", "FitReport", "check_fit", "closest_concept"]

#: What the data set and ontology are about to be used for: ``train`` (``workbench run``, ``dataset
#: check --ontology``) checks everything; ``segment`` (``init --dataset``, ``segment``) leaves out what a
#: growing ontology may still lack (parts, and parts that the masks name).
PURPOSES = ("train", "segment")

#: A ``parts.json`` id this similar to a concept id (:class:`difflib.SequenceMatcher` ratio) that has no
#: mask index of its own is taken for a typo of it.
TYPO_CUTOFF = 0.75
#: The closest concept named in the notes (a hint, not a verdict).
HINT_CUTOFF = 0.7


def closest_concept(name: str, concepts: Collection[str], cutoff: float = HINT_CUTOFF) -> str | None:
    """The concept id closest to ``name`` (case and spaces ignored first), or None.

    >>> closest_concept("Flower Head", ["flower_head", "petal"]), closest_concept("tial", ["tail", "head"])
    ('flower_head', 'tail')
    >>> closest_concept("sun", ["petal", "disk"]) is None
    True
    """
    folded = "_".join(name.strip().lower().replace("-", " ").split())
    if folded in concepts:
        return folded
    close = difflib.get_close_matches(folded, sorted(concepts), n=1, cutoff=cutoff)
    return close[0] if close else None


@dataclass
class FitReport:
    """What :func:`check_fit` found: ``problems`` stop the work, ``notes`` are worth reading."""

    dataset: Path
    ontology: str  #: where the ontology came from (its file), for messages
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (f"data set {self.dataset} fits ontology {self.ontology}" if self.ok else
                f"data set {self.dataset} does not fit ontology {self.ontology}: {len(self.problems)} problem(s)")
        return "\n".join([head, *(f"  problem: {p}" for p in self.problems), *(f"  note: {n}" for n in self.notes)])

    def raise_if_problems(self) -> None:
        """Raise :class:`DatasetError` carrying every problem (``.problems``); nothing when there is none."""
        if self.ok:
            return
        if len(self.problems) == 1:
            e = DatasetError(self.problems[0])
        else:
            e = DatasetError(f"data set {self.dataset} does not fit ontology {self.ontology} "
                             f"({len(self.problems)} problems; fix them before segmenting or training)")
        e.problems = list(self.problems)  # type: ignore[attr-defined]  # the command line lists them
        raise e


class _Names:
    """What :class:`ImageFolder` reads about a data set, without listing its images: the class folders and
    ``parts.json`` (the same folders, the same errors; a data set of 20,000 images is checked in
    milliseconds)."""

    def __init__(self, root: Path):
        self.root = root
        if not root.is_dir():
            ImageFolder(root)  # raises the data set's own error (not found, not a folder)
        self.classes = sorted(d.name for d in os.scandir(root) if d.is_dir() and not d.name.startswith((".", "_")))
        if not self.classes:
            ImageFolder(root)  # raises: no class folders
        parts_file = root / PARTS_FILE
        self.parts_map = _read_parts_map(parts_file) if os.path.lexists(parts_file) else {}


def check_fit(
    dataset: str | os.PathLike[str],
    ontology: Ontology | str | os.PathLike[str],
    *,
    rules: Collection[str] | None = None,
    purpose: str = "train",
) -> FitReport:
    """Check that the data set at ``dataset`` fits ``ontology`` (see the module doc); reads names only.

    ``ontology``: an :class:`Ontology` or its file. ``rules``: the rule names that exist (None: rules
    are not checked). Raises only when ``dataset`` is not a data set at all or the ontology file is
    invalid (:class:`DatasetError`, :class:`~workbench.errors.OntologyError`); everything else is in the
    report (:meth:`FitReport.raise_if_problems`).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    onto = ontology if isinstance(ontology, Ontology) else Ontology.load(ontology)
    source = onto.source
    folder = _Names(Path(dataset))
    report = FitReport(folder.root, source)
    concepts = set(onto.concepts)
    parts = concepts - {onto.root}

    # the ontology alone
    if purpose == "train" and not parts:
        report.problems.append(
            f"{source}: the ontology is its root {onto.root!r} alone: nothing to train. Add its parts "
            f"(`workbench ontology apply-edit {source} --edit EDIT.yaml`) or grow it from proposals "
            "(`workbench suggest`) first")
    if rules is not None:
        known = set(rules)
        for cid, c in onto.concepts.items():
            if c.implementation == "rule" and c.rule not in known:
                hint = closest_concept(c.rule or "", known)
                report.problems.append(
                    f"{source}: concept {cid!r} names the rule {c.rule!r}, which the workbench does not have"
                    f"{f'; did you mean {hint!r}?' if hint else ''} (known rules: {', '.join(sorted(known)) or 'none'}); "
                    "fix `rule:` or make it `implementation: net`")

    # the class folders
    if onto.root not in folder.classes:
        hint = closest_concept(onto.root, folder.classes, cutoff=0.5)
        report.problems.append(
            f"{folder.root}: no class folder named like the ontology's root {onto.root!r} (class folders: "
            f"{', '.join(folder.classes)}){f'; did you mean {hint!r}?' if hint else ''}. The root's images "
            f"(the positives) go in {folder.root / onto.root}/: rename that folder, or the root in {source}")

    # parts.json
    if not folder.parts_map:
        return report
    parts_file = folder.root / PARTS_FILE
    ids: dict[str, list[int]] = {}
    for index, cid in folder.parts_map.items():
        ids.setdefault(cid, []).append(index)
    outside: list[str] = []
    for cid, indices in ids.items():
        if cid in concepts:
            continue
        where = f"index {', '.join(map(str, indices))}"
        typo = closest_concept(cid, parts - set(ids), cutoff=TYPO_CUTOFF)
        if typo is not None:
            report.problems.append(
                f"{parts_file}: {cid!r} ({where}) is not a concept of {source}; did you mean {typo!r}? "
                f"({typo!r} has no mask index, so as it stands its pixels would count as 'none'.) Fix the id "
                "in parts.json, or rename the concept")
            continue
        hint = closest_concept(cid, concepts)
        outside.append(f"{cid} ({where}{f'; closest concept: {hint}' if hint else ''})")
    named_parts = parts & set(ids)
    if purpose == "train" and parts and not named_parts:
        report.problems.append(
            f"{parts_file}: none of its ids ({', '.join(ids)}) is a part of the ontology {source} (its parts: "
            f"{', '.join(sorted(parts))}): every label from the masks would be 'none'. Map the ids to concept "
            "ids (`workbench dataset import ... --map MAP.yaml`, or edit parts.json), or rename the concepts")
        return report
    if outside and purpose == "train":  # a growing ontology (segment) lacks many of them on purpose
        report.notes.append(f"{parts_file}: ids that are not concepts of {source} count as 'none': "
                            + ", ".join(outside))
    unmasked = sorted(c for c in parts - named_parts if not onto.parts(c))
    if purpose == "train" and unmasked:
        report.notes.append(f"parts of {source} with no mask index in {parts_file} (no positive examples from the "
                            f"masks: label them by hand): {', '.join(unmasked)}")
    return report
