"""Edits: the whitelisted operations that change an ontology, each a small reviewable data object.

Every edit is a frozen dataclass with an ``op`` name. ``validate(o)`` raises
:class:`~workbench.errors.EditError` naming the concept and why; ``apply(o)`` returns a new, validated
ontology (the old one is untouched); ``inverse(o_before)`` returns the edits that undo it, so that
``apply_edits(e.apply(o), e.inverse(o)) == o`` exactly; ``to_dict()`` / :func:`edit_from_dict` turn
it into plain data and back. :func:`edit_from_dict` is where an LLM's tool call is parsed: it is
strict (unknown op or field, wrong type → EditError) and never evaluates anything.

=================  =============================================================================
op                 fields (``?`` optional)
=================  =============================================================================
``add_concept``    id, label, description?, implementation?, rule?, parts?, parents (≥ 1)
``remove_concept`` id (not the root; its parts must stay reachable)
``rename``         old, new, label? (edges follow; renaming the root renames ``root``)
``add_part``       parent, part
``remove_part``    parent, part (the part must stay reachable)
``merge``          sources (≥ 2), into (new or one of sources), label?, description?,
                   implementation?, rule?  — parts and parents united, self-loops dropped
``split``          id, into: concept specs (id, label, description?, implementation?, rule?,
                   parts: which of id's parts (or other new concepts) it gets, parents?: which of
                   id's parents (or other new concepts) it is a part of; absent = all of id's
                   parents). Every part and every parent of ``id`` must go to some new concept;
                   splitting the root, the one new concept with no parents becomes the root.
``describe``       id, label?, description?, implementation?, rule?, imagenet_id? ("" clears it;
                   implementation: net clears the rule)
=================  =============================================================================

Those eight are the whitelist (:data:`EDIT_OPS`) a proposal may hold. One more op records a decision
the workbench itself makes and is never proposed (:data:`WORKBENCH_OPS`; accepting a proposal that
holds it is refused): ``set_provisional`` (id, provisional) marks an accepted concept provisional
(left out of its parents' composition) or confirms it. It exists so that history, ``why`` and
``revert`` read such commits like any other. Provisional flags follow a concept through rename and
describe; a split's pieces inherit it; a merge is provisional only when every source is.

>>> from workbench.ontology.graph import Ontology, Concept
>>> o = Ontology("d", "daisy", [Concept("daisy", "Daisy", parts=("petal",)), Concept("petal", "Petal")])
>>> e = edit_from_dict({"op": "rename", "old": "petal", "new": "ray_petal"})
>>> o2 = e.apply(o)
>>> o2.parts("daisy")
('ray_petal',)
>>> apply_edits(o2, e.inverse(o)) == o
True
>>> RemoveConcept("daisy").apply(o)
Traceback (most recent call last):
...
workbench.errors.EditError: remove_concept daisy: cannot remove the root 'daisy'; rename it, or merge it with another concept
"""
from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

import networkx as nx

from workbench.errors import EditError, OntologyError
from workbench.ontology.graph import IMPLEMENTATIONS, Concept, Ontology, _r, is_valid_id

__all__ = [
    "Edit",
    "ConceptSpec",
    "AddConcept",
    "RemoveConcept",
    "Rename",
    "AddPart",
    "RemovePart",
    "Merge",
    "Split",
    "Describe",
    "SetProvisional",
    "EDIT_OPS",
    "WORKBENCH_OPS",
    "edit_from_dict",
    "edits_from_data",
    "edits_to_data",
    "apply_edits",
    "invert_edits",
]


# ------------------------------------------------------------------------------------- field checks
# Each edit field has a kind; one checker serves edit_from_dict (plain data) and validate (objects).
def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _check_value(kind: str, value: Any, name: str, problems: list[str], where: str) -> Any:
    optional = kind.startswith("opt_")
    base = kind[4:] if optional else kind
    if value is None:
        if optional:
            return None
        problems.append(f"{where}: `{name}` is required")
        return None
    if base == "id":
        if not _is_str(value):
            problems.append(f"{where}: `{name}` must be a concept id (a string), got {type(value).__name__} ({_r(value)})")
        elif not is_valid_id(value):
            problems.append(f"{where}: `{name}` {_r(value)} is not a valid id (lowercase letters, digits and _, "
                            "starting with a letter, at most 64 characters)")
        return value
    if base == "label":
        if not _is_str(value):
            problems.append(f"{where}: `{name}` must be a string, got {type(value).__name__} ({_r(value)})")
        elif not value.strip():
            problems.append(f"{where}: `{name}` is empty")
        return value
    if base == "text":
        if not _is_str(value):
            problems.append(f"{where}: `{name}` must be a string, got {type(value).__name__} ({_r(value)})")
        return value
    if base == "bool":
        if not isinstance(value, bool):
            problems.append(f"{where}: `{name}` must be true or false, got {type(value).__name__} ({_r(value)})")
        return value
    if base == "impl":
        if not _is_str(value) or value not in IMPLEMENTATIONS:
            problems.append(f"{where}: `{name}` must be one of {', '.join(IMPLEMENTATIONS)}, got {_r(value)}")
        return value
    if base == "ids":
        if not isinstance(value, (list, tuple)):
            problems.append(f"{where}: `{name}` must be a list of concept ids, got {type(value).__name__} ({_r(value)})")
            return ()
        out = tuple(value)
        for v in out:
            _check_value("id", v, f"{name}[]", problems, where)
        counts = Counter(v for v in out if _is_str(v))
        dups = sorted(v for v, n in counts.items() if n > 1)
        if dups:
            problems.append(f"{where}: `{name}` lists {', '.join(map(repr, dups))} more than once")
        return out
    if base == "specs":
        if not isinstance(value, (list, tuple)):
            problems.append(f"{where}: `{name}` must be a list of concept specs, got {type(value).__name__}")
            return ()
        out = []
        for i, v in enumerate(value):
            if isinstance(v, ConceptSpec):
                _parse_fields(ConceptSpec, {f.name: getattr(v, f.name) for f in fields(ConceptSpec)},
                              problems, f"{where}: {name}[{i}]")
                out.append(v)
            elif isinstance(v, Mapping):
                kwargs = _parse_fields(ConceptSpec, v, problems, f"{where}: {name}[{i}]")
                if kwargs is not None:
                    out.append(ConceptSpec(**kwargs))
            else:
                problems.append(f"{where}: {name}[{i}] must be a mapping with id, label, parts, parents; "
                                f"got {type(v).__name__}")
        return tuple(out)
    raise AssertionError(kind)  # pragma: no cover - a programming error in a _kinds table


def _parse_fields(cls: type, data: Mapping[str, Any], problems: list[str], where: str) -> dict[str, Any] | None:
    """Check ``data`` against ``cls._kinds``; return constructor kwargs, or None if a field is missing."""
    kinds: dict[str, str] = cls._kinds  # type: ignore[attr-defined]
    n = len(problems)
    for key in data:
        if key == "op" and cls is not ConceptSpec:
            continue
        if not isinstance(key, str) or key not in kinds:
            close = difflib.get_close_matches(str(key), list(kinds), n=1)
            hint = f" (did you mean {_r(close[0])}?)" if close else ""
            problems.append(f"{where}: unknown field {_r(key)}{hint} (allowed: {', '.join(kinds)})")
    required = [f.name for f in fields(cls) if f.default is MISSING]
    for name in required:
        if name not in data:
            problems.append(f"{where}: missing field `{name}` (fields: {', '.join(kinds)})")
    if len(problems) > n and any(name not in data for name in required):
        return None
    kwargs = {}
    for name, kind in kinds.items():
        if name in data:
            kwargs[name] = _check_value(kind, data[name], name, problems, where)
    return kwargs


# --------------------------------------------------------------------------------------------- base
class Edit:
    """Base of the edit operations (each a frozen dataclass; see the module docstring)."""

    op: ClassVar[str]
    _kinds: ClassVar[dict[str, str]]

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))

    # -- public protocol
    def validate(self, o: Ontology) -> None:
        """Raise :class:`EditError` (naming the concept and why) if this edit does not apply to ``o``."""
        problems: list[str] = []
        _parse_fields(type(self), {f.name: getattr(self, f.name) for f in fields(self)}, problems, self.summary())
        if problems:
            raise _edit_error(problems)
        self._validate(o)

    def apply(self, o: Ontology) -> Ontology:
        """Return the new ontology (validated); ``o`` is not changed."""
        self.validate(o)
        try:
            return self._apply(o)
        except EditError:
            raise
        except OntologyError as e:
            raise _edit_error([f"{self.summary()}: the result would be invalid: {p}" for p in e.problems]) from None

    def inverse(self, o_before: Ontology) -> list[Edit]:
        """The edits that undo this one, given the ontology it was applied to (always a list)."""
        self.validate(o_before)
        return self._inverse(o_before)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"op": ..., field: value}``, tuples as lists, unset optional fields left out."""
        d: dict[str, Any] = {"op": self.op}
        d.update(_fields_to_data(self))
        return d

    def summary(self) -> str:
        """One line for people: ``rename petal → ray_petal``."""
        return self.op

    def __str__(self) -> str:
        return self.summary()

    # -- for subclasses
    def _validate(self, o: Ontology) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _apply(self, o: Ontology) -> Ontology:  # pragma: no cover - overridden
        raise NotImplementedError

    def _inverse(self, o: Ontology) -> list[Edit]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fail(self, why: str) -> EditError:
        return EditError(f"{self.summary()}: {why}")


def _fields_to_data(obj: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if f.default is not MISSING and v == f.default and not (f.name == "parents" and v == ()):
            continue
        if isinstance(v, tuple):
            v = [x.to_dict() if isinstance(x, ConceptSpec) else x for x in v]
        d[f.name] = v
    return d


def _edit_error(problems: list[str]) -> EditError:
    if len(problems) == 1:
        return EditError(problems[0], problems)
    return EditError(f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems), problems)


def _ids(xs: Iterable[str]) -> str:
    return ", ".join(repr(x) for x in xs)


def _need(o: Ontology, e: Edit, *ids: str) -> None:
    for cid in ids:
        if cid not in o:
            close = difflib.get_close_matches(cid, list(o.concepts), n=1)
            hint = f" (did you mean {_r(close[0])}?)" if close else ""
            raise e._fail(f"no concept {_r(cid)} in the ontology{hint}")


def _stranded(g: nx.DiGraph, root: str) -> list[str]:
    """Nodes of ``g`` not reachable from ``root``, sorted."""
    return sorted(set(g) - nx.descendants(g, root) - {root})


def _cycle_path(g: nx.DiGraph, start: str, end: str) -> str:
    return " → ".join(nx.shortest_path(g, start, end))


def _rebuild(o: Ontology, concepts: dict[str, Concept], root: str | None = None) -> Ontology:
    return Ontology(o.name, root or o.root, list(concepts.values()), source=o.source)


def _with_parts(c: Concept, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Concept:
    rm = set(remove)
    parts = sorted({p for p in c.parts if p not in rm} | set(add))
    return c.replace(parts=tuple(parts))


# ------------------------------------------------------------------------------------------ the ops
@dataclass(frozen=True)
class ConceptSpec:
    """A new concept in a :class:`Split`: its fields, which parts it gets and which parents it has.

    ``parents=None`` means "all the parents of the concept being split"; ``()`` means none (only
    for the piece that becomes the root when the root is split).
    """

    id: str
    label: str
    description: str = ""
    implementation: str = "net"
    rule: str | None = None
    parts: tuple[str, ...] = ()
    parents: tuple[str, ...] | None = None

    _kinds: ClassVar[dict[str, str]] = {
        "id": "id", "label": "label", "description": "text", "implementation": "impl",
        "rule": "opt_id", "parts": "ids", "parents": "opt_ids",
    }

    def __post_init__(self) -> None:
        for name in ("parts", "parents"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """Plain data, unset optional fields left out."""
        return _fields_to_data(self)


@dataclass(frozen=True)
class AddConcept(Edit):
    """Add a new concept as a part of ``parents`` (at least one), optionally made of ``parts``."""

    id: str
    label: str
    description: str = ""
    implementation: str = "net"
    rule: str | None = None
    parts: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()

    op: ClassVar[str] = "add_concept"
    _kinds: ClassVar[dict[str, str]] = {
        "id": "id", "label": "label", "description": "text", "implementation": "impl",
        "rule": "opt_id", "parts": "ids", "parents": "ids",
    }

    def summary(self) -> str:
        return f"add_concept {self.id}"

    def _validate(self, o: Ontology) -> None:
        if self.id in o:
            raise self._fail(f"concept {_r(self.id)} already exists; pick another id or use describe to change it")
        if not self.parents:
            raise self._fail(f"new concept {_r(self.id)} needs at least one parent: list the concepts it is a part "
                             f"of in `parents` (e.g. parents: [{o.root}])")
        _need(o, self, *self.parents, *self.parts)
        if o.root in self.parts:
            raise self._fail(f"the root {_r(o.root)} cannot be a part of {_r(self.id)}")
        both = sorted(set(self.parts) & set(self.parents))
        if both:
            raise self._fail(f"{_ids(both)} cannot be both a part and a parent of {_r(self.id)} (a cycle)")
        g = o.graph
        for p in self.parts:
            for q in self.parents:
                if nx.has_path(g, p, q):
                    raise self._fail(f"{_r(self.id)} would be part of itself: {q} → {self.id} → "
                                     f"{_cycle_path(g, p, q)} → {self.id}; drop {_r(p)} from parts or {_r(q)} from parents")

    def _apply(self, o: Ontology) -> Ontology:
        d = dict(o.concepts)
        d[self.id] = Concept(self.id, self.label, self.description, self.implementation, tuple(self.parts), self.rule)
        for q in self.parents:
            d[q] = _with_parts(d[q], add=[self.id])
        return _rebuild(o, d)

    def _inverse(self, o: Ontology) -> list[Edit]:
        return [RemoveConcept(self.id)]


@dataclass(frozen=True)
class RemoveConcept(Edit):
    """Remove a concept and its edges. Its parts must stay reachable through other parents."""

    id: str

    op: ClassVar[str] = "remove_concept"
    _kinds: ClassVar[dict[str, str]] = {"id": "id"}

    def summary(self) -> str:
        return f"remove_concept {self.id}"

    def _validate(self, o: Ontology) -> None:
        _need(o, self, self.id)
        if self.id == o.root:
            raise self._fail(f"cannot remove the root {_r(self.id)}; rename it, or merge it with another concept")
        g = nx.DiGraph(o.graph)
        g.remove_node(self.id)
        lost = _stranded(g, o.root)
        if lost:
            first = lost[0]
            raise self._fail(
                f"removing {_r(self.id)} would leave {_ids(lost)} unreachable (they are parts only through "
                f"{_r(self.id)}): first attach them elsewhere (add_part <parent> {first}) or remove them "
                f"(remove_concept {first}), or merge {_r(self.id)} into its parent instead")

    def _apply(self, o: Ontology) -> Ontology:
        d = dict(o.concepts)
        del d[self.id]
        for q in o.parents(self.id):
            d[q] = _with_parts(d[q], remove=[self.id])
        return _rebuild(o, d)

    def _inverse(self, o: Ontology) -> list[Edit]:
        c = o[self.id]
        back: list[Edit] = [AddConcept(c.id, c.label, c.description, c.implementation, c.rule, c.parts,
                                       o.parents(c.id))]
        return back + ([SetProvisional(c.id, True)] if c.provisional else [])


@dataclass(frozen=True)
class Rename(Edit):
    """Rename a concept (every edge follows; renaming the root renames ``root``), optionally relabel it."""

    old: str
    new: str
    label: str | None = None

    op: ClassVar[str] = "rename"
    _kinds: ClassVar[dict[str, str]] = {"old": "id", "new": "id", "label": "opt_label"}

    def summary(self) -> str:
        return f"rename {self.old} → {self.new}"

    def _validate(self, o: Ontology) -> None:
        _need(o, self, self.old)
        if self.new == self.old:
            raise self._fail(f"{_r(self.old)} already has that id; to change its label use describe")
        if self.new in o:
            raise self._fail(f"{_r(self.new)} already exists; to combine the two concepts use merge")

    def _apply(self, o: Ontology) -> Ontology:
        d: dict[str, Concept] = {}
        for cid, c in o.concepts.items():
            if self.old in c.parts:
                c = _with_parts(c, add=[self.new], remove=[self.old])
            if cid == self.old:
                c = c.replace(id=self.new, label=self.label if self.label is not None else c.label)
                cid = self.new
            d[cid] = c
        return _rebuild(o, d, root=self.new if o.root == self.old else o.root)

    def _inverse(self, o: Ontology) -> list[Edit]:
        return [Rename(self.new, self.old, o[self.old].label if self.label is not None else None)]


@dataclass(frozen=True)
class AddPart(Edit):
    """Make ``part`` (an existing concept) a part of ``parent``."""

    parent: str
    part: str

    op: ClassVar[str] = "add_part"
    _kinds: ClassVar[dict[str, str]] = {"parent": "id", "part": "id"}

    def summary(self) -> str:
        return f"add_part {self.parent} → {self.part}"

    def _validate(self, o: Ontology) -> None:
        _need(o, self, self.parent, self.part)
        if self.part == o.root:
            raise self._fail(f"the root {_r(o.root)} cannot be a part of anything")
        if self.part in o.parts(self.parent):
            raise self._fail(f"{_r(self.part)} is already a part of {_r(self.parent)}")
        if self.part == self.parent:
            raise self._fail(f"{_r(self.part)} cannot be a part of itself")
        if nx.has_path(o.graph, self.part, self.parent):
            raise self._fail(f"{_r(self.parent)} would be part of itself: {self.parent} → "
                             f"{_cycle_path(o.graph, self.part, self.parent)}")

    def _apply(self, o: Ontology) -> Ontology:
        return o.with_concepts(_with_parts(o[self.parent], add=[self.part]))

    def _inverse(self, o: Ontology) -> list[Edit]:
        return [RemovePart(self.parent, self.part)]


@dataclass(frozen=True)
class RemovePart(Edit):
    """Remove ``part`` from the parts of ``parent``. The part must stay reachable through another parent."""

    parent: str
    part: str

    op: ClassVar[str] = "remove_part"
    _kinds: ClassVar[dict[str, str]] = {"parent": "id", "part": "id"}

    def summary(self) -> str:
        return f"remove_part {self.parent} → {self.part}"

    def _validate(self, o: Ontology) -> None:
        _need(o, self, self.parent, self.part)
        if self.part not in o.parts(self.parent):
            raise self._fail(f"{_r(self.part)} is not a part of {_r(self.parent)} (its parts: "
                             f"{_ids(o.parts(self.parent)) or 'none'})")
        g = nx.DiGraph(o.graph)
        g.remove_edge(self.parent, self.part)
        lost = _stranded(g, o.root)
        if lost:
            raise self._fail(
                f"{_ids(lost)} would become unreachable from the root {_r(o.root)} ({_r(self.part)} has no other "
                f"parent): remove the concept instead (remove_concept {self.part}), or first add it as a part of "
                "another concept (add_part)")

    def _apply(self, o: Ontology) -> Ontology:
        return o.with_concepts(_with_parts(o[self.parent], remove=[self.part]))

    def _inverse(self, o: Ontology) -> list[Edit]:
        return [AddPart(self.parent, self.part)]


@dataclass(frozen=True)
class Merge(Edit):
    """Merge ``sources`` into one concept ``into`` (a new id or one of the sources).

    Its parts are the union of the sources' parts and its parents the union of their parents (edges
    between sources dropped). Fields not given come from ``into`` if it is a source, else from the
    first source. Merging the root makes ``into`` the root.
    """

    sources: tuple[str, ...]
    into: str
    label: str | None = None
    description: str | None = None
    implementation: str | None = None
    rule: str | None = None

    op: ClassVar[str] = "merge"
    _kinds: ClassVar[dict[str, str]] = {
        "sources": "ids", "into": "id", "label": "opt_label", "description": "opt_text",
        "implementation": "opt_impl", "rule": "opt_id",
    }

    def summary(self) -> str:
        return f"merge {', '.join(map(str, self.sources))} → {self.into}"

    def _validate(self, o: Ontology) -> None:
        if len(self.sources) < 2:
            raise self._fail("merge needs at least two `sources`; to change one concept use rename or describe")
        _need(o, self, *self.sources)
        if self.into in o and self.into not in self.sources:
            raise self._fail(f"{_r(self.into)} already exists and is not one of the sources; add it to `sources` "
                             "or pick a new id")
        s = set(self.sources)
        g = nx.DiGraph()
        g.add_edges_from((self.into if u in s else u, self.into if v in s else v) for u, v in o.graph.edges())
        g.remove_edges_from(list(nx.selfloop_edges(g)))
        if not nx.is_directed_acyclic_graph(g):
            path = [u for u, _ in nx.find_cycle(g, source=self.into)] + [self.into]
            raise self._fail(f"{_r(self.into)} would be part of itself: {' → '.join(path)} (one source reaches another "
                             "through other concepts); merge those concepts too, or remove_part first")

    def _apply(self, o: Ontology) -> Ontology:
        s = set(self.sources)
        base = o[self.into] if self.into in s else o[self.sources[0]]
        parts = set().union(*(o.parts(x) for x in self.sources)) - s
        parents = set().union(*(o.parents(x) for x in self.sources)) - s
        impl = self.implementation if self.implementation is not None else base.implementation
        rule = self.rule if self.rule is not None else (base.rule if impl == "rule" else None)
        merged = Concept(
            self.into,
            self.label if self.label is not None else base.label,
            self.description if self.description is not None else base.description,
            impl,
            tuple(sorted(parts)),
            rule,
            o[o.root].imagenet_id if o.root in s else None,
            all(o[x].provisional for x in self.sources),
        )
        d = {k: v for k, v in o.concepts.items() if k not in s}
        d[self.into] = merged
        for q in parents:
            d[q] = _with_parts(d[q], add=[self.into], remove=s)
        return _rebuild(o, d, root=self.into if o.root in s else o.root)

    def _inverse(self, o: Ontology) -> list[Edit]:
        specs = tuple(
            ConceptSpec(c.id, c.label, c.description, c.implementation, c.rule, c.parts, o.parents(c.id))
            for c in (o[x] for x in self.sources)
        )
        merged_provisional = all(o[x].provisional for x in self.sources)
        marks: list[Edit] = [SetProvisional(x, True) for x in self.sources
                             if o[x].provisional and not merged_provisional]
        return [Split(self.into, specs), *marks]


@dataclass(frozen=True)
class Split(Edit):
    """Split concept ``id`` into several new concepts (:class:`ConceptSpec`), reassigning its edges.

    Every part of ``id`` must go to at least one new concept, every parent of ``id`` must get at least
    one; new concepts may also be parts of each other. One new concept may keep the id ``id``.
    """

    id: str
    into: tuple[ConceptSpec, ...]

    op: ClassVar[str] = "split"
    _kinds: ClassVar[dict[str, str]] = {"id": "id", "into": "specs"}

    def summary(self) -> str:
        return f"split {self.id} → {', '.join(str(getattr(s, 'id', s)) for s in self.into)}"

    def _parents_of(self, spec: ConceptSpec, o: Ontology) -> tuple[str, ...]:
        return o.parents(self.id) if spec.parents is None else spec.parents

    def _rootless(self, o: Ontology) -> list[str]:
        """New concepts with no parent at all (neither listed in `parents` nor in another one's parts)."""
        return [s.id for s in self.into
                if not self._parents_of(s, o) and not any(s.id in t.parts for t in self.into)]

    def _validate(self, o: Ontology) -> None:
        _need(o, self, self.id)
        if len(self.into) < 2:
            raise self._fail("a split needs at least two new concepts in `into`; to change one use rename/describe")
        ids = [s.id for s in self.into]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise self._fail(f"new concept id {_ids(dup)} is used twice in `into`")
        for i in ids:
            if i in o and i != self.id:
                raise self._fail(f"{_r(i)} already exists; new concepts need new ids (one may keep {_r(self.id)})")
        pieces = set(ids)
        children = set(o.parts(self.id))
        parents = set(o.parents(self.id))
        for s in self.into:
            for p in s.parts:
                if p not in children and p not in pieces:
                    raise self._fail(f"new concept {_r(s.id)} lists part {_r(p)}, which is neither a part of {_r(self.id)} "
                                     "nor a new concept; a split only hands out existing parts (add_part later)")
            for q in self._parents_of(s, o):
                if q not in parents and q not in pieces:
                    raise self._fail(f"new concept {_r(s.id)} lists parent {_r(q)}, which is neither a parent of "
                                     f"{_r(self.id)} nor a new concept")
            if s.id in s.parts or (s.parents and s.id in s.parents):
                raise self._fail(f"new concept {_r(s.id)} cannot be a part of itself")
        given = set().union(*(s.parts for s in self.into))
        missing = sorted(children - given)
        if missing:
            raise self._fail(f"part {_ids(missing)} of {_r(self.id)} goes to no new concept; list it in the parts "
                             "of one of them (or remove_part it first)")
        taken = set().union(*(self._parents_of(s, o) for s in self.into))
        orphaned = sorted(parents - taken)
        if orphaned:
            raise self._fail(f"parent {_ids(orphaned)} of {_r(self.id)} gets none of the new concepts; list it in "
                             "the parents of one of them (or remove_part it first)")
        roots = self._rootless(o)
        if self.id == o.root and len(roots) != 1:
            raise self._fail(f"splitting the root {_r(self.id)}: exactly one new concept must have no parents (it "
                             f"becomes the root); got {_ids(roots) or 'none'}")
        if self.id != o.root and roots:
            raise self._fail(f"new concept {_ids(roots)} has no parents; list its parents")

    def _apply(self, o: Ontology) -> Ontology:
        pieces = {s.id for s in self.into}
        d = {k: v for k, v in o.concepts.items() if k != self.id}
        root = o.root
        rootless = self._rootless(o) if self.id == o.root else []
        new: dict[str, Concept] = {}
        for s in self.into:
            is_root = s.id in rootless
            if is_root:
                root = s.id
            new[s.id] = Concept(s.id, s.label, s.description, s.implementation, tuple(s.parts), s.rule,
                                o[o.root].imagenet_id if is_root else None, o[self.id].provisional)
        for q in o.parents(self.id):
            d[q] = _with_parts(d[q], remove=[self.id])
        for s in self.into:
            for q in self._parents_of(s, o):
                if q in pieces:
                    new[q] = _with_parts(new[q], add=[s.id])
                else:
                    d[q] = _with_parts(d[q], add=[s.id])
        d.update(new)
        return _rebuild(o, d, root=root)

    def _inverse(self, o: Ontology) -> list[Edit]:
        c = o[self.id]
        return [Merge(tuple(s.id for s in self.into), self.id, c.label, c.description, c.implementation, c.rule)]


@dataclass(frozen=True)
class Describe(Edit):
    """Change what a concept says about itself: label, description, implementation, rule, imagenet_id.

    Fields left as None are unchanged; ``implementation="net"`` clears the rule; ``imagenet_id=""``
    clears the ImageNet id (root only).
    """

    id: str
    label: str | None = None
    description: str | None = None
    implementation: str | None = None
    rule: str | None = None
    imagenet_id: str | None = None

    op: ClassVar[str] = "describe"
    _kinds: ClassVar[dict[str, str]] = {
        "id": "id", "label": "opt_label", "description": "opt_text", "implementation": "opt_impl",
        "rule": "opt_id", "imagenet_id": "opt_text",
    }

    def summary(self) -> str:
        changed = [f.name for f in fields(self) if f.name != "id" and getattr(self, f.name) is not None]
        return f"describe {self.id} ({', '.join(changed) or 'nothing'})"

    def _validate(self, o: Ontology) -> None:
        _need(o, self, self.id)
        if all(getattr(self, f.name) is None for f in fields(self) if f.name != "id"):
            raise self._fail("nothing to change: give at least one of label, description, implementation, rule, "
                             "imagenet_id")

    def _apply(self, o: Ontology) -> Ontology:
        c = o[self.id]
        impl = self.implementation if self.implementation is not None else c.implementation
        rule = self.rule if self.rule is not None else (c.rule if impl == "rule" else None)
        imagenet = c.imagenet_id if self.imagenet_id is None else (self.imagenet_id or None)
        return o.with_concepts(c.replace(
            label=self.label if self.label is not None else c.label,
            description=self.description if self.description is not None else c.description,
            implementation=impl, rule=rule, imagenet_id=imagenet,
        ))

    def _inverse(self, o: Ontology) -> list[Edit]:
        before, after = o[self.id], self.apply(o)[self.id]
        return describe_between(after, before, self.id)


def describe_between(before: Concept, after: Concept, new_id: str) -> list[Edit]:
    """The Describe that turns concept ``before`` into ``after`` (fields only), or ``[]`` if none differ;
    followed by a ``set_provisional`` when their provisional flags differ."""
    kw: dict[str, Any] = {}
    if before.label != after.label:
        kw["label"] = after.label
    if before.description != after.description:
        kw["description"] = after.description
    if (before.implementation, before.rule) != (after.implementation, after.rule):
        kw["implementation"] = after.implementation
        kw["rule"] = after.rule
    if before.imagenet_id != after.imagenet_id:
        kw["imagenet_id"] = after.imagenet_id or ""
    flag: list[Edit] = [SetProvisional(new_id, after.provisional)] if before.provisional != after.provisional else []
    return ([Describe(new_id, **kw)] if kw else []) + flag


@dataclass(frozen=True)
class SetProvisional(Edit):
    """Mark concept ``id`` provisional (``provisional=True``: left out of its parents' composition) or
    confirm it (``False``). The workbench's own record of accepting an addition and of a person's
    confirmation; never part of a proposal (see :data:`WORKBENCH_OPS`)."""

    id: str
    provisional: bool = True

    op: ClassVar[str] = "set_provisional"
    _kinds: ClassVar[dict[str, str]] = {"id": "id", "provisional": "bool"}

    def summary(self) -> str:
        return f"set_provisional {self.id} ({'provisional' if self.provisional else 'confirmed'})"

    def to_dict(self) -> dict[str, Any]:
        """``{"op": "set_provisional", "id": ..., "provisional": ...}``, the flag always written (it is the point)."""
        return {"op": self.op, "id": self.id, "provisional": self.provisional}

    def _validate(self, o: Ontology) -> None:
        _need(o, self, self.id)
        if self.id == o.root and self.provisional:
            raise self._fail(f"the root {_r(self.id)} cannot be provisional")
        if o[self.id].provisional == self.provisional:
            state = "provisional" if self.provisional else "confirmed (not provisional)"
            raise self._fail(f"{_r(self.id)} is already {state}")

    def _apply(self, o: Ontology) -> Ontology:
        return o.with_concepts(o[self.id].replace(provisional=self.provisional))

    def _inverse(self, o: Ontology) -> list[Edit]:
        return [SetProvisional(self.id, not self.provisional)]


#: Every edit operation a proposal may hold, by its ``op`` name: the whitelist (suggesters, the Claude
#: schema, proposal files).
EDIT_OPS: dict[str, type[Edit]] = {
    cls.op: cls for cls in (AddConcept, RemoveConcept, Rename, AddPart, RemovePart, Merge, Split, Describe)
}
#: Operations the workbench records itself (accepting an addition, confirming it) and no proposal may
#: hold; :func:`edit_from_dict` reads them so that history and revert read such commits.
WORKBENCH_OPS: dict[str, type[Edit]] = {SetProvisional.op: SetProvisional}
_ALL_OPS: dict[str, type[Edit]] = {**EDIT_OPS, **WORKBENCH_OPS}


# ------------------------------------------------------------------------------------- plain data
def edit_from_dict(data: Any) -> Edit:
    """Parse one edit from plain data (JSON/YAML, e.g. an LLM tool call). Strict; evaluates nothing.

    >>> edit_from_dict({"op": "add_part", "parent": "daisy", "part": "stem"})
    AddPart(parent='daisy', part='stem')
    >>> edit_from_dict({"op": "add_part", "parent": "daisy", "prt": "stem"})
    Traceback (most recent call last):
    ...
    workbench.errors.EditError: 2 problems:
      - add_part: unknown field 'prt' (did you mean 'part'?) (allowed: parent, part)
      - add_part: missing field `part` (fields: parent, part)
    """
    if not isinstance(data, Mapping):
        raise EditError(f"an edit must be a mapping with an `op` key, got {type(data).__name__} ({_r(data)})")
    op = data.get("op")
    if not isinstance(op, str) or op not in _ALL_OPS:
        close = difflib.get_close_matches(op, list(EDIT_OPS), n=1) if isinstance(op, str) else []
        hint = f" (did you mean {_r(close[0])}?)" if close else ""
        what = "missing `op`" if "op" not in data else f"unknown op {_r(op)}{hint}"
        raise EditError(f"{what}; the edit operations are: {', '.join(EDIT_OPS)}")
    cls = _ALL_OPS[op]
    problems: list[str] = []
    kwargs = _parse_fields(cls, data, problems, op)
    if problems or kwargs is None:
        raise _edit_error(problems)
    return cls(**kwargs)


def edits_from_data(data: Any) -> list[Edit]:
    """Parse a list of edits (or one edit mapping); every problem is reported, each with its index."""
    items = [data] if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise EditError(f"expected a list of edits (mappings with `op`), got {type(data).__name__}")
    out: list[Edit] = []
    problems: list[str] = []
    for i, item in enumerate(items):
        try:
            out.append(edit_from_dict(item))
        except EditError as e:
            problems.extend(f"edit {i + 1}: {p}" for p in e.problems)
    if problems:
        raise _edit_error(problems)
    return out


def edits_to_data(edits: Iterable[Edit]) -> list[dict[str, Any]]:
    """``[e.to_dict() for e in edits]``."""
    return [e.to_dict() for e in edits]


# ----------------------------------------------------------------------------------- sequences
def apply_edits(o: Ontology, edits: Sequence[Edit | Mapping[str, Any]]) -> Ontology:
    """Apply edits in order (plain mappings are parsed first); the first failure raises EditError naming it."""
    parsed = [e if isinstance(e, Edit) else edit_from_dict(e) for e in edits]
    for i, e in enumerate(parsed):
        try:
            o = e.apply(o)
        except EditError as err:
            if len(parsed) == 1:
                raise
            raise EditError(f"edit {i + 1} of {len(parsed)}: {err}", [f"edit {i + 1}: {p}" for p in err.problems]) from None
    return o


def invert_edits(o: Ontology, edits: Sequence[Edit]) -> list[Edit]:
    """The edits that undo ``edits`` applied to ``o``: ``apply_edits(apply_edits(o, es), invert_edits(o, es)) == o``."""
    undo: list[list[Edit]] = []
    for e in edits:
        undo.append(e.inverse(o))
        o = e.apply(o)
    return [u for step in reversed(undo) for u in step]
