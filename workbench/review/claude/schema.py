"""The JSON schemas Claude answers through: the ``propose_edits`` and ``sort_segments`` tools.

The edit schema is generated from :data:`workbench.ontology.edits.EDIT_OPS` and each edit class's
field table, so a new op or field shows up here by itself; every object is closed
(``additionalProperties: false``). The same schemas serve forced tool use and, for models that
refuse it, the structured-output format.

>>> schema = propose_edits_tool()["input_schema"]
>>> ops = [s["properties"]["op"]["enum"][0] for s in schema["properties"]["edits"]["items"]["properties"]["op"]["anyOf"]]
>>> ops[:3]
['add_concept', 'remove_concept', 'rename']
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, fields
from typing import Any

from workbench.ontology.edits import EDIT_OPS, ConceptSpec
from workbench.ontology.graph import IMPLEMENTATIONS

__all__ = ["PROPOSE_TOOL", "SORT_TOOL", "REVIEW_TOOL", "REFACTOR_OPS", "edit_schema", "propose_edits_tool",
           "sort_segments_tool", "review_findings_tool", "tools"]

#: Tool names (also the structured-output schema names).
PROPOSE_TOOL = "propose_edits"
SORT_TOOL = "sort_segments"
#: The second reviewer's tool: findings about a proposal (it has no field that could carry an edit or a decision).
REVIEW_TOOL = "review_findings"
#: Operations a refactor may propose (it keeps the ontology compact; it does not grow it).
REFACTOR_OPS = ("merge", "rename", "split", "remove_concept", "remove_part", "describe")


def _kind_schema(kind: str) -> dict[str, Any]:
    base = kind[4:] if kind.startswith("opt_") else kind
    if base == "id":
        return {"type": "string", "description": "a concept id (lowercase letters, digits and _)"}
    if base in ("label", "text"):
        return {"type": "string"}
    if base == "impl":
        return {"type": "string", "enum": list(IMPLEMENTATIONS)}
    if base == "ids":
        return {"type": "array", "items": {"type": "string"}}
    if base == "specs":
        return {"type": "array", "items": _object_schema(ConceptSpec)}
    raise AssertionError(kind)  # pragma: no cover - a kind edits.py added without a schema here


def _object_schema(cls: type, op: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    if op is not None:
        props["op"] = {"type": "string", "enum": [op]}
        required.append("op")
    kinds: dict[str, str] = cls._kinds  # type: ignore[attr-defined]
    for f in fields(cls):
        props[f.name] = _kind_schema(kinds[f.name])
        if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
            required.append(f.name)
    doc = (cls.__doc__ or "").strip().splitlines()
    out: dict[str, Any] = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    if doc:
        out["description"] = doc[0]
    return out


def edit_schema(ops: Sequence[str] | None = None) -> dict[str, Any]:
    """JSON schema of one edit operation: ``anyOf`` one object per op of :data:`EDIT_OPS` (or ``ops``).

    Generated from the edit classes' field tables, so a new op or field shows up here by itself.
    """
    names = list(EDIT_OPS) if ops is None else list(ops)
    return {"anyOf": [_object_schema(EDIT_OPS[name], name) for name in names]}


def propose_edits_tool() -> dict[str, Any]:
    """The ``propose_edits`` tool: a title, an overall rationale and a list of {op, rationale}."""
    return {
        "name": PROPOSE_TOOL,
        "description": "Propose whitelisted edits to the ontology, each with its rationale. A person reviews them.",
        "input_schema": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "description": "one line: what the proposal does"},
                "rationale": {"type": "string", "description": "why, overall, from what is visible"},
                "edits": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "op": edit_schema(),
                            "rationale": {"type": "string", "description": "what in the image shows it"},
                        },
                        "required": ["op", "rationale"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["title", "rationale", "edits"],
            "additionalProperties": False,
        },
    }


def sort_segments_tool() -> dict[str, Any]:
    """The ``sort_segments`` tool: cell number → concept id or ``"none"``."""
    return {
        "name": SORT_TOOL,
        "description": "Assign each numbered segment of the grid a concept id of the ontology, or \"none\".",
        "input_schema": {
            "type": "object",
            "properties": {
                "assignments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "cell": {"type": "integer", "description": "the number drawn on the cell"},
                            "concept": {"type": "string", "description": "a concept id, or \"none\""},
                        },
                        "required": ["cell", "concept"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["assignments"],
            "additionalProperties": False,
        },
    }


def tools() -> list[dict[str, Any]]:
    """Both tools, in the order every request declares them (part of the cached prefix)."""
    return [propose_edits_tool(), sort_segments_tool()]


def review_findings_tool() -> dict[str, Any]:
    """The ``review_findings`` tool: an overall sentence and findings about a proposal's edits.

    Closed objects only: there is no field for edits, a status or a decision, so an answer can only
    ever be read as advice (and :func:`workbench.review.claude.reviewer.parse_review` reads nothing else).
    The kinds and severities are :data:`workbench.review.findings.FINDING_KINDS` and ``SEVERITIES``.
    """
    return {
        "name": REVIEW_TOOL,
        "description": "Write review findings about a proposed ontology change. A person decides; you only advise.",
        "input_schema": {
            "type": "object",
            "properties": {
                "summary": {"type": "string", "description": "one or two sentences: what a reviewer should know"},
                "findings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "edit": {"type": "integer", "description": "index of the edit it is about; -1 for the "
                                                                       "whole proposal"},
                            "about": {"type": "string", "description": "the concept id it is about, or \"\""},
                            "kind": {"type": "string",
                                     "enum": ["not_visual", "overlap", "contradiction", "unsupported", "ok"]},
                            "severity": {"type": "string", "enum": ["serious", "warning", "info"]},
                            "message": {"type": "string", "description": "one plain sentence"},
                        },
                        "required": ["edit", "about", "kind", "severity", "message"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["summary", "findings"],
            "additionalProperties": False,
        },
    }
