"""Diffs between two ontologies: the canonical YAML's unified diff, and the edits that turn one into the other.

``semantic_diff(a, b)`` is what ``workbench ontology diff --semantic`` prints and what the history reads
when a commit carries no proposal: ``apply_edits(a, semantic_diff(a, b)) == b`` always.

>>> from workbench.ontology.graph import Ontology, Concept
>>> o = Ontology("d", "daisy", [Concept("daisy", "Daisy", parts=("petal",)), Concept("petal", "Petal")])
>>> o2 = Ontology("d", "daisy", [Concept("daisy", "Daisy", parts=("ray_petal",)), Concept("ray_petal", "Petal")])
>>> semantic_diff(o, o2)
[Rename(old='petal', new='ray_petal', label=None)]
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import networkx as nx

from workbench.errors import EditError
from workbench.ontology.edits import (
    AddConcept,
    AddPart,
    ConceptSpec,
    Edit,
    Merge,
    RemoveConcept,
    RemovePart,
    Rename,
    Split,
    describe_between,
)
from workbench.ontology.graph import Concept, Ontology, _r

__all__ = ["semantic_diff", "text_diff"]


def text_diff(a: Ontology, b: Ontology, a_name: str = "a/ontology.yaml", b_name: str = "b/ontology.yaml") -> str:
    """Unified diff of the two ontologies' canonical YAML ("" when they are equal)."""
    return "".join(difflib.unified_diff(
        a.dumps().splitlines(keepends=True), b.dumps().splitlines(keepends=True), fromfile=a_name, tofile=b_name
    ))


def semantic_diff(a: Ontology, b: Ontology) -> list[Edit]:
    """Edits that turn ``a`` into ``b``: ``apply_edits(a, semantic_diff(a, b)) == b``.

    Concepts only in ``a`` that match one only in ``b`` in every field but the id (and a changed
    root id) come out as renames; then new concepts are added, descriptions changed, parts added and
    removed, old concepts removed. The ontologies' ``name`` is not an edit: the result keeps ``a``'s.
    """
    state = _DiffState(a)
    only_a, only_b = set(a) - set(b), set(b) - set(a)
    renames: list[tuple[str, str]] = []
    if a.root != b.root and a.root in only_a and b.root in only_b:
        renames.append((a.root, b.root))

    def key(c: Concept) -> tuple[Any, ...]:
        return (c.label, c.description, c.implementation, c.rule)

    ka: dict[tuple[Any, ...], list[str]] = {}
    kb: dict[tuple[Any, ...], list[str]] = {}
    for x in sorted(only_a - {a.root}):
        ka.setdefault(key(a[x]), []).append(x)
    for y in sorted(only_b - {b.root}):
        kb.setdefault(key(b[y]), []).append(y)
    for k, xs in ka.items():
        if len(xs) == 1 and len(kb.get(k, ())) == 1:
            renames.append((xs[0], kb[k][0]))
    for old, new in sorted(renames):
        state.do(Rename(old, new))

    scaffold = None
    target = b
    cur_root = state.cur[state.cur.root]
    if cur_root.id != b.root and b.root not in state.cur and cur_root.id in b:
        # A new root above the old one (daisy → plant → daisy): one split says so.
        nb = b[b.root]
        state.attempt(Split(cur_root.id, (
            ConceptSpec(b.root, nb.label, nb.description, nb.implementation, nb.rule, (cur_root.id,), ()),
            ConceptSpec(cur_root.id, cur_root.label, cur_root.description, cur_root.implementation, cur_root.rule,
                        cur_root.parts, (b.root,)),
        )))
    elif cur_root.id != b.root and cur_root.id not in b and b.root in cur_root.parts:
        # The old root goes and one of its parts becomes the root: merge them.
        nb = b[b.root]
        state.attempt(Merge((cur_root.id, b.root), b.root, nb.label, nb.description, nb.implementation, nb.rule))
    if state.cur.root != b.root:
        # The root changes to a concept that already exists: put a temporary root above the current one,
        # reshape below it, and merge it into the new root at the end.
        scaffold = _fresh_id("scaffold_root", set(a) | set(b))
        r = state.cur[state.cur.root]
        state.do(Split(r.id, (
            ConceptSpec(scaffold, "Scaffold root (temporary)", parts=(r.id,), parents=()),
            ConceptSpec(r.id, r.label, r.description, r.implementation, r.rule, r.parts, (scaffold,)),
        )))
        concepts = [state.cur[scaffold].replace(parts=(b.root,))]
        concepts += [c.replace(imagenet_id=None) if c.id == b.root else c for c in b.concepts.values()]
        target = Ontology(b.name, scaffold, concepts)

    _reshape(state, target)

    if scaffold is not None:
        r = b[b.root]
        state.do(Merge((scaffold, b.root), b.root, r.label, r.description, r.implementation, r.rule))
        state.extend(describe_between(state.cur[b.root], r, b.root))
    if state.cur.root != b.root or dict(state.cur.concepts) != dict(b.concepts):  # pragma: no cover - a bug
        raise EditError(f"semantic_diff could not reproduce {_r(b.name)}; please report this")
    return state.edits


class _DiffState:
    def __init__(self, o: Ontology) -> None:
        self.cur = o
        self.edits: list[Edit] = []

    def do(self, e: Edit) -> None:
        self.cur = e.apply(self.cur)
        self.edits.append(e)

    def extend(self, es: Iterable[Edit]) -> None:
        for e in es:
            self.do(e)

    def attempt(self, e: Edit) -> bool:
        try:
            self.do(e)
        except EditError:
            return False
        return True


def _fresh_id(base: str, taken: set[str]) -> str:
    i, cid = 1, base
    while cid in taken:
        i += 1
        cid = f"{base}_{i}"
    return cid


def _reshape(state: _DiffState, b: Ontology) -> None:
    """Edits from ``state.cur`` to ``b`` when both have the same root id."""
    root = b.root
    for cid in nx.lexicographical_topological_sort(b.graph):
        if cid not in state.cur:
            c = b[cid]
            state.do(AddConcept(cid, c.label, c.description, c.implementation, c.rule, (), b.parents(cid)))
    for cid in b:
        state.extend(describe_between(state.cur[cid], b[cid], cid))
    want = set(b.edges())
    gone = set(state.cur) - set(b)

    def edges() -> set[tuple[str, str]]:
        return set(state.cur.edges())

    progress = True
    while progress:  # the readable path: each step valid on its own
        progress = False
        for u, v in sorted(want - edges()):
            progress |= state.attempt(AddPart(u, v))
        for u, v in sorted(edges() - want):
            if u not in gone and v not in gone:
                progress |= state.attempt(RemovePart(u, v))
        for x in state.cur.bottom_up():
            if x in gone:
                progress |= state.attempt(RemoveConcept(x))
    if edges() == want and set(state.cur) == set(b):
        return
    # Fallback that always works: hang everything from the root, then rewire, then unhang.
    for x in sorted(set(state.cur) - {root}):
        if not state.cur.graph.has_edge(root, x):
            state.do(AddPart(root, x))
    for u, v in sorted(edges() - want):
        if u != root and u not in gone and v not in gone:
            state.do(RemovePart(u, v))
    for x in state.cur.bottom_up():
        if x in gone:
            state.do(RemoveConcept(x))
    for u, v in sorted(want - edges()):
        state.do(AddPart(u, v))
    for u, v in sorted(edges() - want):
        state.do(RemovePart(u, v))
