"""Questions about the stored proposals: which concepts an op names or brings in, which accepted
proposals touched a concept, which one introduced it (what the graph widget's "why" shows).

>>> sorted(concepts_mentioned({"op": "merge", "sources": ["petal", "ray"], "into": "blade"}))
['blade', 'petal', 'ray']
>>> concepts_introduced({"op": "rename", "old": "petal", "new": "ray"})
{'ray'}
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workbench.review.proposals import Proposal
from workbench.review.store import ProposalStore

if TYPE_CHECKING:  # pragma: no cover
    from workbench.workspace.folder import Workspace

__all__ = ["concepts_introduced", "concepts_mentioned", "accepted_ops", "proposals_touching", "introduced_by"]


def concepts_introduced(op: Any) -> set[str]:
    """Concept ids an op brings into the ontology (add_concept id, rename new, merge into, split pieces)."""
    if not isinstance(op, Mapping):
        return set()
    name = op.get("op")
    out: set[str] = set()
    if name == "add_concept":
        out.add(op.get("id"))
    elif name == "rename":
        out.add(op.get("new"))
    elif name == "merge":
        out.add(op.get("into"))
    elif name == "split" and isinstance(op.get("into"), list):
        out.update(s.get("id") for s in op["into"] if isinstance(s, Mapping))
    return {c for c in out if isinstance(c, str)}


def concepts_mentioned(op: Any) -> set[str]:
    """Every concept id an op names (introduced, changed, removed, or used as a parent or part)."""
    if not isinstance(op, Mapping):
        return set()
    out = set(concepts_introduced(op))
    for k in ("id", "old", "new", "into", "parent", "part"):
        if isinstance(op.get(k), str):
            out.add(op[k])
    for k in ("sources", "parents", "parts"):
        if isinstance(op.get(k), list):
            out.update(x for x in op[k] if isinstance(x, str))
    if op.get("op") == "split" and isinstance(op.get("into"), list):
        for s in op["into"]:
            if isinstance(s, Mapping):
                for k in ("parts", "parents"):
                    if isinstance(s.get(k), list):
                        out.update(x for x in s[k] if isinstance(x, str))
    return out


def accepted_ops(p: Proposal) -> list[dict]:
    """The ops as applied: accepted edits, with a person's edited version where there is one."""
    edited: dict[int, dict] = {}
    for d in p.decisions:
        if d.get("action") == "accept" and isinstance(d.get("edited"), Mapping):
            edited.update({int(k): v for k, v in d["edited"].items()})
    return [edited.get(i, pe.op) for i, pe in enumerate(p.edits) if pe.decision == "accepted"]


def proposals_touching(ws: Workspace, concept: str) -> list[Proposal]:
    """Accepted (or partly accepted) proposals whose applied edits name ``concept``, oldest first."""
    return [p for p in ProposalStore(ws).list() if p.status in ("accepted", "partial")
            and any(concept in concepts_mentioned(op) for op in accepted_ops(p))]


def introduced_by(ws: Workspace, concept: str) -> Proposal | None:
    """The latest accepted proposal that brought ``concept`` into the ontology (None: it was there first)."""
    found = None
    for p in ProposalStore(ws).list():
        if p.status in ("accepted", "partial") and any(concept in concepts_introduced(op) for op in accepted_ops(p)):
            found = p
    return found
