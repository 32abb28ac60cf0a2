"""The ontology: a directed acyclic graph of visual concepts, read from and written to one YAML file.

An ontology has one *root* (the class the classifier decides, e.g. ``daisy``) and "is made of"
edges from a concept to its *parts* (``daisy → flower_head → petal, disk``). Concepts with no parts
are the part nets (they look at image segments); concepts with parts are composites (they combine
their parts' scores). An :class:`Ontology` is an immutable value: every change goes through an edit
(:mod:`workbench.ontology.edits`) and yields a new, validated ontology, so every change is a reviewable diff.

YAML schema (version 2; version 1 files read unchanged)
------------------------------------------------------
::

    version: 1                 # required: 1, or 2 when a concept is provisional; newer means "upgrade"
    name: daisy                # required, a non-empty string
    root: daisy                # required, the id of the root concept
    concepts:                  # required, a list; each item a mapping with these keys:
    - id: daisy                #   required, slug: ^[a-z][a-z0-9_]{0,63}$
      label: Daisy             #   required, non-empty text shown to people
      imagenet_id: n11939491   #   optional, root only: a WordNet/ImageNet synset id, n + 8 digits
      description: ...         #   optional text a person and an LLM read (what it looks like)
      implementation: rule     #   optional, "net" (default) or "rule"
      rule: has_yellow_disk    #   required with implementation: rule (a registered rule name), else absent
      parts:                   #   optional list of concept ids this concept is made of
      - flower_head
      provisional: true        #   optional (version 2), not on the root: accepted but not yet confirmed

Rules: ids are unique; every part is a concept; no cycles; the root is no concept's part; every
concept is reachable from the root (so exactly one concept, the root, has no parents). Unknown keys
are errors. The canonical form, which :meth:`Ontology.dumps` writes, lists the root first and the
other concepts sorted by id, keys in the order above, parts sorted, empty or default fields left
out; loading a canonical file and saving it gives the same bytes. YAML comments are not kept: put
notes in ``description``. Files are read with the safe YAML loader only (no object-constructing
tags), with size and alias limits, and written atomically.

Provisional concepts (schema version 2). A concept added after the workspace's first train is
*provisional* until a person confirms it: it is labelled, trained and shown like any other, but its
parents' models do not combine its score (:meth:`Ontology.composed_parts`), so the classifier is the
one it was before the concept came. A file is written with the lowest version that can hold it:
``version: 1`` while no concept is provisional (so every older file loads and saves byte-identical,
and an older workbench still reads it), ``version: 2`` with ``provisional: true`` on each such
concept (an older workbench then says "upgrade" instead of misreading it). Migration from version 1
is the identity: every concept in a version 1 file is confirmed. ``provisional`` in a version 1
file is an error naming the concept.

>>> o = Ontology("toy", "daisy", [
...     Concept("daisy", "Daisy", parts=("flower_head", "stem")),
...     Concept("flower_head", "Flower head", parts=("petal", "disk")),
...     Concept("petal", "Petal"), Concept("disk", "Disk"), Concept("stem", "Stem")])
>>> o.parts("flower_head")
('disk', 'petal')
>>> o.bottom_up()
['disk', 'petal', 'stem', 'flower_head', 'daisy']
>>> o.kind("daisy"), o.kind("flower_head"), o.kind("petal")
('root', 'composite', 'part')
>>> Ontology.loads(o.dumps(), "toy.yaml") == o
True
>>> Ontology.loads("version: 1\\nname: t\\nroot: a\\nconcepts:\\n- {id: a, label: A, parts: [b]}\\n", "t.yaml")
Traceback (most recent call last):
...
workbench.errors.OntologyError: t.yaml: concept 'a': part 'b' is not a concept in this ontology; define it under concepts or fix the name
"""
from __future__ import annotations

import difflib
import re
import reprlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import replace as _dc_replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import networkx as nx
import yaml

from workbench._io import atomic_write_text
from workbench._yaml import load_yaml_text, read_yaml_file
from workbench.errors import OntologyError

__all__ = [
    "SCHEMA_VERSION",
    "BASE_SCHEMA_VERSION",
    "IMPLEMENTATIONS",
    "ID_PATTERN",
    "IMAGENET_ID_PATTERN",
    "RESERVED_IDS",
    "CONCEPT_KEYS",
    "Concept",
    "Ontology",
    "load_ontology",
    "is_valid_id",
]

#: The newest schema version this workbench reads and writes (``version:`` in the file). Version 2 adds
#: ``provisional``; a file without provisional concepts is written as version 1 (see the module docstring).
SCHEMA_VERSION = 2
#: The version a file gets when none of its concepts is provisional (every older workbench reads it).
BASE_SCHEMA_VERSION = 1
#: How a concept is implemented: a tiny trained net, or a plain-code rule from the rules registry.
IMPLEMENTATIONS = ("net", "rule")
#: Concept ids (and rule names): lowercase slug, starting with a letter, at most 64 characters.
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: Ids a concept may not take: ``none`` is the label store's "this segment is no concept" label.
RESERVED_IDS = frozenset({"none"})
#: An ImageNet (WordNet) synset id such as ``n11939491``.
IMAGENET_ID_PATTERN = re.compile(r"^n[0-9]{8}$")
#: The keys of a concept mapping, in canonical order.
CONCEPT_KEYS = ("id", "label", "imagenet_id", "description", "implementation", "rule", "parts", "provisional")
_TOP_KEYS = ("version", "name", "root", "concepts")
_HEADER = "# Constructability Workbench ontology; schema: `python -m pydoc workbench.ontology`\n"


def is_valid_id(value: object) -> bool:
    """True if ``value`` is a valid concept id (a slug such as ``flower_head``).

    >>> is_valid_id("flower_head"), is_valid_id("Flower head"), is_valid_id("2petals")
    (True, False, False)
    """
    return isinstance(value, str) and ID_PATTERN.match(value) is not None and not value.endswith("\n")


@dataclass(frozen=True)
class Concept:
    """One visual concept: a node of the ontology. Plain data; the ontology validates it.

    ``parts`` is stored as a tuple (a list given here is turned into one); an :class:`Ontology`
    keeps it sorted.
    """

    id: str  #: slug, unique in the ontology
    label: str  #: short text for people ("Flower head")
    description: str = ""  #: what it looks like: colour, shape, size relative to the others
    implementation: str = "net"  #: "net" or "rule"
    parts: tuple[str, ...] = ()  #: ids of the concepts this one is made of
    rule: str | None = None  #: rule name when implementation == "rule"
    imagenet_id: str | None = None  #: root only, e.g. "n11939491"
    #: accepted but not yet confirmed: trained and shown, left out of its parents' composition
    provisional: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.parts, list):
            object.__setattr__(self, "parts", tuple(self.parts))

    def replace(self, **changes: Any) -> Concept:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return _dc_replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Canonical mapping: keys in :data:`CONCEPT_KEYS` order, default/empty fields left out."""
        d: dict[str, Any] = {"id": self.id, "label": self.label}
        if self.imagenet_id is not None:
            d["imagenet_id"] = self.imagenet_id
        if self.description:
            d["description"] = self.description
        if self.implementation != "net":
            d["implementation"] = self.implementation
        if self.rule is not None:
            d["rule"] = self.rule
        if self.parts:
            d["parts"] = sorted(self.parts)
        if self.provisional:
            d["provisional"] = True
        return d


class Ontology:
    """An immutable, validated graph of concepts. ``==`` compares name, root and concepts.

    Build one with ``Ontology(name, root, concepts)`` (concepts: an iterable of :class:`Concept` or
    a mapping id → Concept), :meth:`from_dict`, :meth:`loads` or :meth:`load`; each validates and
    raises :class:`~workbench.errors.OntologyError` listing every problem. ``source`` (a file name)
    only labels error messages; it is not part of the value.
    """

    __slots__ = ("_name", "_root", "_concepts", "_graph", "_source", "_hash")

    def __init__(
        self,
        name: str,
        root: str,
        concepts: Iterable[Concept] | Mapping[str, Concept],
        *,
        source: str = "<memory>",
    ) -> None:
        items = list(concepts.values()) if isinstance(concepts, Mapping) else list(concepts)
        problems: list[str] = []
        if isinstance(concepts, Mapping):
            for key, c in concepts.items():
                if isinstance(c, Concept) and key != c.id:
                    problems.append(f"{source}: concept {_r(c.id)} is stored under the key {_r(key)}; use its id")
        by_id = _validate(name, root, items, source, problems, graph_complete=not problems)
        if problems:
            raise _error(source, problems)
        ordered = [root] + sorted(k for k in by_id if k != root)
        self._concepts: Mapping[str, Concept] = MappingProxyType(
            {k: _sorted_parts(by_id[k]) for k in ordered}
        )
        self._name = name
        self._root = root
        self._source = source
        self._graph: nx.DiGraph | None = None
        self._hash: int | None = None

    # ------------------------------------------------------------------------------------ value
    @property
    def name(self) -> str:
        """The ontology's name (usually the root's id)."""
        return self._name

    @property
    def root(self) -> str:
        """Id of the root concept: the class the classifier decides."""
        return self._root

    @property
    def concepts(self) -> Mapping[str, Concept]:
        """Read-only mapping id → :class:`Concept`, root first, then sorted by id."""
        return self._concepts

    @property
    def source(self) -> str:
        """Where this ontology was read from (for messages); not part of its value."""
        return self._source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ontology):
            return NotImplemented
        return (self._name, self._root, dict(self._concepts)) == (other._name, other._root, dict(other._concepts))

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((self._name, self._root, tuple(self._concepts.values())))
        return self._hash

    def __repr__(self) -> str:
        return f"Ontology(name={_r(self._name)}, root={_r(self._root)}, concepts={len(self._concepts)})"

    def __contains__(self, concept_id: object) -> bool:
        return concept_id in self._concepts

    def __iter__(self) -> Iterator[str]:
        return iter(self._concepts)

    def __len__(self) -> int:
        return len(self._concepts)

    def __getitem__(self, concept_id: str) -> Concept:
        return self._concepts[self._require(concept_id)]

    def _require(self, concept_id: str) -> str:
        if concept_id not in self._concepts:
            hint = _did_you_mean(concept_id, self._concepts)
            raise OntologyError(f"{self._source}: no concept {_r(concept_id)} in ontology {_r(self._name)}{hint}")
        return concept_id

    # ----------------------------------------------------------------------------- pure changes
    def replace(
        self,
        *,
        name: str | None = None,
        root: str | None = None,
        concepts: Iterable[Concept] | Mapping[str, Concept] | None = None,
    ) -> Ontology:
        """A new, validated ontology with some of name, root and concepts replaced."""
        return Ontology(
            self._name if name is None else name,
            self._root if root is None else root,
            self._concepts if concepts is None else concepts,
            source=self._source,
        )

    def with_concepts(self, *concepts: Concept, remove: Iterable[str] = ()) -> Ontology:
        """A new ontology with ``concepts`` added or replaced (by id) and the ids in ``remove`` dropped.

        Edges live in ``parts``, so a caller removing a concept also rewrites its parents.
        """
        drop = set(remove)
        d = {k: v for k, v in self._concepts.items() if k not in drop}
        for c in concepts:
            d[c.id] = c
        return self.replace(concepts=list(d.values()))

    # ------------------------------------------------------------------------------------ graph
    @property
    def graph(self) -> nx.DiGraph:
        """A frozen ``networkx.DiGraph`` with an edge parent → part; node attribute ``concept``."""
        if self._graph is None:
            g = nx.DiGraph()
            for cid, c in self._concepts.items():
                g.add_node(cid, concept=c)
            for cid, c in self._concepts.items():
                g.add_edges_from((cid, p) for p in c.parts)
            self._graph = nx.freeze(g)
        return self._graph

    def parts(self, concept_id: str) -> tuple[str, ...]:
        """The ids ``concept_id`` is made of, sorted."""
        return self._concepts[self._require(concept_id)].parts

    def parents(self, concept_id: str) -> tuple[str, ...]:
        """The ids of the concepts that have ``concept_id`` as a part, sorted."""
        return tuple(sorted(self.graph.predecessors(self._require(concept_id))))

    def edges(self) -> list[tuple[str, str]]:
        """Every (parent, part) edge, sorted."""
        return sorted(self.graph.edges())

    def composed_parts(self, concept_id: str) -> tuple[str, ...]:
        """The parts whose scores ``concept_id``'s model combines: its parts that are not provisional, sorted.

        Equal to :meth:`parts` while no part is provisional; a concept whose parts are all provisional
        combines none and scores segments itself (it is one of :meth:`leaves`).
        """
        c = self._concepts[self._require(concept_id)]
        return tuple(p for p in c.parts if not self._concepts[p].provisional)

    def provisional(self) -> list[str]:
        """The ids of the provisional concepts (accepted, not yet confirmed), sorted."""
        return sorted(c for c, v in self._concepts.items() if v.provisional)

    def confirmed(self) -> Ontology:
        """This ontology with every provisional concept confirmed (what confirming them all would give)."""
        if not self.provisional():
            return self
        return self.replace(concepts=[c.replace(provisional=False) for c in self._concepts.values()])

    def leaves(self) -> list[str]:
        """Concepts that combine no part, other than the root: the part nets (and rules), which score
        segments. Sorted. A concept whose only parts are provisional is one of them."""
        return sorted(c for c in self._concepts if c != self._root and not self.composed_parts(c))

    def composites(self) -> list[str]:
        """Concepts whose model combines parts (the root included when it has any). Sorted."""
        return sorted(c for c in self._concepts if self.composed_parts(c))

    def kind(self, concept_id: str) -> str:
        """``"root"``, ``"composite"`` (combines parts) or ``"part"`` (scores segments)."""
        self._require(concept_id)
        return "root" if concept_id == self._root else "composite" if self.composed_parts(concept_id) else "part"

    def bottom_up(self) -> list[str]:
        """Every concept after all its parts: by height (leaves 0, then 1 + max over parts), then id.

        Deterministic; the evaluation and training order of the hybrid classifier.
        """
        height: dict[str, int] = {}
        for cid in reversed(list(nx.lexicographical_topological_sort(self.graph))):
            height[cid] = 1 + max((height[p] for p in self._concepts[cid].parts), default=-1)
        return sorted(height, key=lambda c: (height[c], c))

    def descendants(self, concept_id: str) -> list[str]:
        """Every concept reachable through parts from ``concept_id`` (not itself), sorted."""
        return sorted(nx.descendants(self.graph, self._require(concept_id)))

    def ancestors(self, concept_id: str) -> list[str]:
        """Every concept that has ``concept_id`` among its (transitive) parts, sorted.

        These are what must be retrained when ``concept_id`` changes.
        """
        return sorted(nx.ancestors(self.graph, self._require(concept_id)))

    # --------------------------------------------------------------------------------- plain data
    def to_dict(self) -> dict[str, Any]:
        """The canonical plain-data form (what :meth:`dumps` writes)."""
        return {
            "version": SCHEMA_VERSION if self.provisional() else BASE_SCHEMA_VERSION,
            "name": self._name,
            "root": self._root,
            "concepts": [c.to_dict() for c in self._concepts.values()],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "<memory>") -> Ontology:
        """Validate plain data (a parsed YAML file) and build an ontology.

        Raises :class:`~workbench.errors.OntologyError` whose ``problems`` holds one message per
        problem, each starting with ``source`` and naming the concept.
        """
        problems: list[str] = []
        if not isinstance(data, dict):
            raise _error(source, [
                f"{source}: an ontology file must be a YAML mapping with keys {', '.join(_TOP_KEYS)}; "
                f"got {_type_name(data)}"
            ])
        for key in data:
            if key not in _TOP_KEYS:
                problems.append(f"{source}: unknown top-level key {_r(key)} (allowed: {', '.join(_TOP_KEYS)})")
        version = data.get("version")
        if "version" not in data:
            problems.append(f"{source}: missing `version`; add `version: {BASE_SCHEMA_VERSION}` as the first line "
                            f"(`version: {SCHEMA_VERSION}` when a concept is provisional)")
        elif type(version) is not int:
            problems.append(f"{source}: `version` must be an integer, got {_type_name(version)} ({_r(version)})")
        elif version > SCHEMA_VERSION:
            raise _error(source, [
                f"{source}: written by a newer workbench (schema version {version}; this one reads "
                f"{SCHEMA_VERSION}): upgrade the workbench (pip install -U constructability-workbench)"
            ])
        elif version < 1:
            problems.append(f"{source}: unsupported schema version {version}; this workbench reads {SCHEMA_VERSION}")
        for key in ("name", "root"):
            if key not in data:
                problems.append(f"{source}: missing `{key}`")
            elif not isinstance(data[key], str):
                problems.append(f"{source}: `{key}` must be a string, got {_type_name(data[key])} ({_r(data[key])})")
        name = data.get("name") if isinstance(data.get("name"), str) else None
        root = data.get("root") if isinstance(data.get("root"), str) else None
        raw = data.get("concepts")
        items: list[Any] | None = None
        complete = True
        if "concepts" not in data:
            problems.append(f"{source}: missing `concepts` (a list of concepts, the root first)")
            complete = False
        elif not isinstance(raw, list):
            problems.append(f"{source}: `concepts` must be a list of mappings, got {_type_name(raw)}")
            complete = False
        else:
            items = []
            for i, entry in enumerate(raw):
                c, ok = _concept_from_entry(entry, i, source, problems)
                complete = complete and ok
                items.append(c)
                if version == BASE_SCHEMA_VERSION and isinstance(entry, dict) and "provisional" in entry:
                    cid = entry.get("id")
                    where = f"concept {_r(cid)}" if isinstance(cid, str) else f"concepts[{i}]"
                    problems.append(f"{source}: {where}: `provisional` needs schema version {SCHEMA_VERSION}; "
                                    f"write `version: {SCHEMA_VERSION}` as the first line (version 1 files have no "
                                    "provisional concepts)")
        if root is None and "root" in data:
            complete = False
        _validate(name, root, items, source, problems, graph_complete=complete,
                  check_name=name is not None, check_root=root is not None)
        if problems:
            raise _error(source, problems)
        return cls(name, root, items, source=source)  # type: ignore[arg-type]

    def dumps(self) -> str:
        """The canonical YAML text (deterministic: the same ontology always gives the same bytes)."""
        return _HEADER + yaml.dump(
            self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
        )

    @classmethod
    def loads(cls, text: str | bytes, source: str = "<memory>") -> Ontology:
        """Parse and validate YAML text (safe loader; size, alias and UTF-8 checks)."""
        return cls.from_dict(load_yaml_text(text, source, OntologyError), source)

    @classmethod
    def load(cls, path: str | Path) -> Ontology:
        """Read and validate an ontology file (bounded: a folder, FIFO, device or oversized file is refused)."""
        return cls.from_dict(read_yaml_file(path, OntologyError, "an ontology file"), str(path))

    def save(self, path: str | Path) -> None:
        """Write the canonical YAML atomically (temp file + ``os.replace``)."""
        atomic_write_text(path, self.dumps())


def load_ontology(path: str | Path) -> Ontology:
    """Read and validate an ontology file (same as :meth:`Ontology.load`)."""
    return Ontology.load(path)


# ------------------------------------------------------------------------------------ private helpers
class _Dumper(yaml.SafeDumper):
    """Safe dumper without aliases; multi-line text as ``|`` blocks so diffs stay line by line."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002
        return True


_ODD_BREAKS = frozenset("\r\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # YAML 1.1 reads NEL, LS, PS and CR as line breaks; PyYAML would write them raw in plain or block
    # style and read back something else, so such strings are written double-quoted (escaped).
    if _ODD_BREAKS.intersection(value):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value.rstrip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 3


def _r(value: Any) -> str:
    """A bounded repr for messages: a huge or alias-expanded value must not make a huge (or endless) message."""
    return _REPR.repr(value)


def _error(source: str, problems: list[str]) -> OntologyError:
    if len(problems) == 1:
        return OntologyError(problems[0], problems)
    lines = "\n".join(f"  - {p}" for p in problems)
    return OntologyError(f"{source}: {len(problems)} problems in the ontology:\n{lines}", problems)


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


def _did_you_mean(name: object, candidates: Iterable[str]) -> str:
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {_r(close[0])}?)" if close else ""


def _slug_hint(value: str) -> str:
    slug = re.sub(r"[^a-z0-9_]+", "_", value.strip().lower()).strip("_")
    if slug and not slug[0].isalpha():
        slug = "c_" + slug
    slug = slug[:64]
    return f", e.g. {_r(slug)}" if slug and ID_PATTERN.match(slug) else ""


def _concept_from_entry(entry: Any, index: int, source: str, problems: list[str]) -> tuple[Any, bool]:
    """Turn one ``concepts:`` item into a Concept (field types are checked later by _validate).

    Returns (concept or None, whether its edges are known).
    """
    where = f"{source}: concepts[{index}]"
    if not isinstance(entry, dict):
        problems.append(f"{where}: each concept must be a mapping with at least `id` and `label`, "
                        f"got {_type_name(entry)}")
        return None, False
    cid = entry.get("id")
    if "id" not in entry:
        label = entry.get("label")
        named = f" (label {_r(label)})" if isinstance(label, str) else ""
        problems.append(f"{where}{named}: missing `id`")
        return None, False
    if isinstance(cid, str):
        where = f"{source}: concept {_r(cid)}"
    for key in entry:
        if key not in CONCEPT_KEYS:
            hint = _did_you_mean(key, CONCEPT_KEYS)
            problems.append(f"{where}: unknown key {_r(key)}{hint} (allowed: {', '.join(CONCEPT_KEYS)})")
    if "label" not in entry:
        problems.append(f"{where}: missing `label` (a short name people read, e.g. {_r(str(cid).replace('_', ' '))})")
    kwargs = {k: entry[k] for k in CONCEPT_KEYS if k in entry and k != "label"}
    parts = kwargs.get("parts", ())
    ok = True
    if parts is None:
        parts = kwargs["parts"] = ()
    if not isinstance(parts, list) and parts != ():
        ok = False
    elif any(not isinstance(p, str) for p in parts):
        ok = False
    return Concept(label=entry.get("label", cid if isinstance(cid, str) else "?"), **kwargs), ok


def _check_type(where: str, key: str, value: Any, kind: type | tuple[type, ...], problems: list[str],
                what: str) -> bool:
    if isinstance(value, kind) and not isinstance(value, bool):
        return True
    problems.append(f"{where}: `{key}` must be {what}, got {_type_name(value)} ({_r(value)})")
    return False


def _concept_problems(c: Concept, where: str, root: str | None, problems: list[str]) -> None:
    """Field-level checks of one concept (types, slugs, implementation/rule, imagenet_id)."""
    if not isinstance(c.label, str):
        problems.append(f"{where}: `label` must be a string, got {_type_name(c.label)} ({_r(c.label)})")
    elif not c.label.strip():
        problems.append(f"{where}: `label` is empty; give a short name people read")
    if not isinstance(c.description, str):
        problems.append(f"{where}: `description` must be a string, got {_type_name(c.description)}")
    if not isinstance(c.implementation, str) or c.implementation not in IMPLEMENTATIONS:
        problems.append(f"{where}: `implementation` must be one of {', '.join(IMPLEMENTATIONS)}, "
                        f"got {_r(c.implementation)}")
    elif c.implementation == "rule" and c.rule is None:
        problems.append(f"{where}: `implementation: rule` needs `rule: <rule name>` (see workbench.models.rules)")
    elif c.implementation == "net" and c.rule is not None:
        problems.append(f"{where}: `rule: {c.rule}` is given but the implementation is `net`; "
                        "add `implementation: rule` or drop `rule`")
    if c.rule is not None and _check_type(where, "rule", c.rule, str, problems, "a rule name (a string)"):
        if not is_valid_id(c.rule):
            problems.append(f"{where}: bad rule name {_r(c.rule)}: use lowercase letters, digits and _, "
                            f"starting with a letter{_slug_hint(c.rule)}")
    if c.imagenet_id is not None and _check_type(where, "imagenet_id", c.imagenet_id, str, problems,
                                                 "a string such as 'n11939491'"):
        if not IMAGENET_ID_PATTERN.match(c.imagenet_id):
            problems.append(f"{where}: bad imagenet_id {_r(c.imagenet_id)}: expected n followed by 8 digits, "
                            "e.g. 'n11939491'")
        elif root is not None and c.id != root:
            problems.append(f"{where}: only the root ({_r(root)}) may have an imagenet_id; remove it here")
    if not isinstance(c.provisional, bool):
        problems.append(f"{where}: `provisional` must be true or false, got {_type_name(c.provisional)} "
                        f"({_r(c.provisional)})")
    elif c.provisional and root is not None and c.id == root:
        problems.append(f"{where}: the root cannot be provisional (it is the class the classifier decides); "
                        "remove `provisional`")
    if not isinstance(c.parts, tuple):
        problems.append(f"{where}: `parts` must be a list of concept ids, got {_type_name(c.parts)}")
    else:
        for p in c.parts:
            if not isinstance(p, str):
                problems.append(f"{where}: `parts` must list concept ids (strings); got {_type_name(p)} ({_r(p)})")
        seen: set[str] = set()
        for p in c.parts:
            if isinstance(p, str) and p in seen:
                problems.append(f"{where}: part {_r(p)} is listed twice; list it once")
            if isinstance(p, str):
                seen.add(p)


def _validate(
    name: Any,
    root: Any,
    items: list[Any] | None,
    source: str,
    problems: list[str],
    *,
    graph_complete: bool = True,
    check_name: bool = True,
    check_root: bool = True,
) -> dict[str, Concept]:
    """Append every problem of (name, root, concepts) to ``problems``; return the concepts by id.

    ``check_name``/``check_root`` are False when :meth:`Ontology.from_dict` already reported them;
    ``items`` is None when there is no concept list at all (also reported already).
    """
    if not check_name:
        pass
    elif not isinstance(name, str):
        problems.append(f"{source}: `name` must be a string, got {_type_name(name)}")
    elif not name.strip():
        problems.append(f"{source}: `name` is empty; name the ontology (e.g. after its root)")
    if check_root and not isinstance(root, str):
        problems.append(f"{source}: `root` must be a concept id (a string), got {_type_name(root)}")
        root = None
    elif not check_root:
        root = None
    by_id: dict[str, Concept] = {}
    first_index: dict[str, int] = {}
    dup_reported: set[str] = set()
    positions: dict[str, list[int]] = {}
    for i, c in enumerate(items or ()):
        if isinstance(c, Concept) and isinstance(c.id, str):
            positions.setdefault(c.id, []).append(i)
    for i, c in enumerate(items or ()):
        if c is None:
            continue
        if not isinstance(c, Concept):
            problems.append(f"{source}: concepts[{i}]: expected a Concept, got {_type_name(c)}")
            graph_complete = False
            continue
        if not isinstance(c.id, str):
            problems.append(f"{source}: concepts[{i}]: `id` must be a string, got {_type_name(c.id)} ({_r(c.id)})")
            graph_complete = False
            continue
        where = f"{source}: concept {_r(c.id)}"
        if not is_valid_id(c.id):
            problems.append(f"{where}: bad id {_r(c.id)}: ids are lowercase letters, digits and _, starting "
                            f"with a letter, at most 64 characters{_slug_hint(c.id)}")
        elif c.id in RESERVED_IDS:
            problems.append(f"{where}: the id {_r(c.id)} is reserved (it is the label for segments that are no "
                            "concept); choose another id, e.g. 'no_part'")
        if c.id in by_id:
            if c.id not in dup_reported:
                idx = [str(j) for j in positions[c.id]]
                problems.append(f"{where} is defined more than once (concepts[{'], concepts['.join(idx)}]); "
                                "keep one and merge their parts")
                dup_reported.add(c.id)
            continue
        _concept_problems(c, where, root, problems)
        if not isinstance(c.parts, tuple) or any(not isinstance(p, str) for p in c.parts):
            graph_complete = False
        by_id[c.id] = c
        first_index[c.id] = i
    if items is None:
        return by_id
    if not items:
        problems.append(f"{source}: `concepts` is empty; list at least the root concept")
        return by_id
    if root is not None and root not in by_id:
        problems.append(f"{source}: root {_r(root)} is not one of the concepts{_did_you_mean(root, by_id)}; "
                        "add it under concepts or fix `root`")
        root = None

    g = nx.DiGraph()
    g.add_nodes_from(sorted(by_id))
    for cid in sorted(by_id):
        parts = by_id[cid].parts
        if not isinstance(parts, tuple):
            continue
        for p in sorted({p for p in parts if isinstance(p, str)}):
            where = f"{source}: concept {_r(cid)}"
            if p not in by_id:
                problems.append(f"{where}: part {_r(p)} is not a concept in this ontology{_did_you_mean(p, by_id)}; "
                                "define it under concepts or fix the name")
            elif p == root:
                problems.append(f"{where}: lists the root {_r(root)} as a part; the root cannot be a part of "
                                "anything (remove it from these parts)")
            else:
                g.add_edge(cid, p)
    # Cycles: one message per strongly connected component (or self-loop), with one cycle's path.
    for comp in sorted((sorted(s) for s in nx.strongly_connected_components(g)), key=lambda s: s[0]):
        start = comp[0]
        if len(comp) == 1 and not g.has_edge(start, start):
            continue
        edges = nx.find_cycle(g.subgraph(comp), source=start)
        path = [u for u, _ in edges] + [edges[0][0]]
        problems.append(f"{source}: concept {_r(start)} is part of itself: cycle {' → '.join(path)}; "
                        f"remove one of these parts (e.g. {_r(edges[-1][1])} from the parts of {_r(edges[-1][0])})")
    if root is None or not graph_complete:
        return by_id
    reachable = nx.descendants(g, root) | {root}
    for cid in sorted(set(by_id) - reachable, key=lambda c: first_index[c]):
        parents = sorted(g.predecessors(cid))
        if not parents:
            problems.append(f"{source}: concept {_r(cid)} is not a part of anything and is not the root "
                            f"{_r(root)} (a second root); add it to the parts of a concept or remove it")
        else:
            problems.append(f"{source}: concept {_r(cid)} is unreachable from the root {_r(root)} (its parents: "
                            f"{', '.join(parents)} are not reachable either); connect it or remove it")
    return by_id


def _sorted_parts(c: Concept) -> Concept:
    parts = tuple(sorted(c.parts))
    return c if parts == c.parts else c.replace(parts=parts)
