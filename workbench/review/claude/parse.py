"""Reading Claude's answers: a Messages-API response (a plain dict, as recorded) into a Proposal or
pre-sort suggestions. Pure: no network, so a recorded exchange replays offline.

A refusal, a cut-off answer (``max_tokens``) or an answer without the structured output raises
:class:`~workbench.errors.SuggesterError`: never a half proposal. Malformed operations are kept and
marked invalid with the reason; every valid-looking one is checked against the ontology by
:func:`~workbench.review.proposals.make_proposal`. Model text quoted in a message is shortened and
its control characters shown, never obeyed.
"""
from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench._redact import escape_control
from workbench.errors import SuggesterError
from workbench.ontology.graph import Ontology
from workbench.review.claude.schema import PROPOSE_TOOL, REFACTOR_OPS, SORT_TOOL
from workbench.review.proposals import Evidence, Proposal, make_proposal

__all__ = ["PresortWarning", "parse_response", "parse_presort", "check_stop", "shorten"]

_MAX_TITLE = 200
_MAX_TEXT = 4000


class PresortWarning(UserWarning):
    """A pre-sorting answer named a segment or concept that does not exist (it was dropped)."""



def shorten(value: Any, n: int = 160) -> str:
    """Model text for a message: shortened, control and bidi characters made visible (data, not markup)."""
    text = value if isinstance(value, str) else json.dumps(value, default=repr)[: n + 1]
    text = escape_control(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def check_stop(response: Mapping[str, Any], what: str) -> None:
    stop = response.get("stop_reason")
    if stop == "refusal":
        raise SuggesterError(
            f"Claude declined to answer this {what} (stop_reason 'refusal'); nothing was proposed and the "
            "ontology is unchanged. Try another image, or a different model (setting claude_model)."
        )
    if stop in ("max_tokens", "model_context_window_exceeded"):
        usage = response.get("usage") or {}
        raise SuggesterError(
            f"Claude's answer to this {what} was cut off ({stop}, {usage.get('output_tokens', '?')} output tokens): "
            "nothing was proposed (a cut-off answer is never used in part). Raise max_tokens "
            "(ClaudeSuggester(max_tokens=...)) and ask again."
        )
    if stop == "pause_turn":
        raise SuggesterError(f"Claude paused its answer to this {what} (stop_reason 'pause_turn'); ask again.")


def _structured_input(response: Mapping[str, Any], tool: str, what: str) -> Any:
    """The tool call's input, or (structured-output format) the JSON of the text; else SuggesterError."""
    content = response.get("content")
    if not isinstance(content, list):
        raise SuggesterError(f"the response to this {what} has no content list; nothing was proposed")
    texts = []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "tool_use" and block.get("name") == tool:
            return block.get("input")
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
    text = "".join(texts).strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(\{.*\})\s*```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1)
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            return _Malformed(f"the structured answer is not valid JSON ({e.msg} at character {e.pos})", text)
    names = [b.get("name") for b in content if isinstance(b, Mapping) and b.get("type") == "tool_use"]
    if names:
        got = f"it called {', '.join(shorten(n, 40) for n in names)}"
    else:
        got = f"it answered in text: {shorten(text)!r}" if text else "it gave no answer"
    raise SuggesterError(f"Claude did not answer this {what} through {tool} ({got}); nothing was proposed")


@dataclass(frozen=True)
class _Malformed:
    why: str
    raw: Any


def _raw_edits(data: Any) -> tuple[str, str, list[dict[str, Any]], list[str | None]]:
    """(title, rationale, [{"op", "rationale"}...], [problem per edit or None]) from a tool input."""
    if isinstance(data, _Malformed):
        return "", "", [{"op": {"malformed": shorten(data.raw, 400)}, "rationale": ""}], [data.why]
    if not isinstance(data, Mapping):
        why = f"the tool input must be an object with title, rationale and edits, got {type(data).__name__}"
        return "", "", [{"op": {"malformed": shorten(data, 400)}, "rationale": ""}], [why]
    title = data.get("title") if isinstance(data.get("title"), str) else ""
    rationale = data.get("rationale") if isinstance(data.get("rationale"), str) else ""
    items = data.get("edits")
    if items is None:
        items = []
    if not isinstance(items, list):
        why = f"`edits` must be a list of {{op, rationale}} objects, got {type(items).__name__}"
        return title[:_MAX_TITLE], rationale[:_MAX_TEXT], [{"op": {"malformed": shorten(items, 400)}, "rationale": ""}], [why]
    raw: list[dict[str, Any]] = []
    problems: list[str | None] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raw.append({"op": {"malformed": shorten(item, 400)}, "rationale": ""})
            problems.append(f"edit {i + 1} must be an object with op and rationale, got {type(item).__name__}")
            continue
        why = item.get("rationale") if isinstance(item.get("rationale"), str) else ""
        op = item.get("op")
        if isinstance(op, str):  # a flattened {"op": "rename", "old": ..., ...}: accept, still strictly checked
            op = {k: v for k, v in item.items() if k != "rationale"}
        if not isinstance(op, Mapping):
            raw.append({"op": {"malformed": shorten(op, 400)}, "rationale": why[:_MAX_TEXT]})
            problems.append(f"edit {i + 1}: `op` must be an object naming the operation and its fields, "
                            f"got {type(op).__name__}")
            continue
        raw.append({"op": dict(op), "rationale": why[:_MAX_TEXT]})
        problems.append(None)
    return title[:_MAX_TITLE], rationale[:_MAX_TEXT], raw, problems


def parse_response(
    ontology: Ontology,
    response: Mapping[str, Any],
    *,
    author: str,
    evidence: Evidence | None = None,
    exchange: Mapping[str, Any] | None = None,
    kind: str = "suggest",
    title: str = "",
) -> Proposal:
    """The :class:`Proposal` in a Messages-API response (a plain dict, as recorded).

    Every operation is validated against ``ontology`` by :func:`~workbench.review.proposals.make_proposal`;
    malformed ones are kept, marked invalid with the reason. A refusal, a cut-off answer or an answer
    without the structured output raises :class:`SuggesterError` (no proposal at all). Pure: no
    network, so a recorded exchange replays offline. ``kind="refactor"`` also marks operations that
    are not refactors (:data:`REFACTOR_OPS`) invalid.
    """
    if not isinstance(response, Mapping):
        raise SuggesterError(f"a Messages-API response must be a mapping, got {type(response).__name__}")
    what = "refactor request" if kind == "refactor" else "image"
    check_stop(response, what)
    data = _structured_input(response, PROPOSE_TOOL, what)
    t, rationale, raw, problems = _raw_edits(data)
    proposal = make_proposal(
        ontology, raw, kind=kind, author=author, title=t or title, rationale=rationale,
        evidence=evidence if evidence is not None else Evidence(),
        exchange=dict(exchange) if exchange is not None else None,
        allowed_ops=REFACTOR_OPS if kind == "refactor" else None,
    )
    if any(problems):
        edits = tuple(
            dataclasses.replace(pe, problem=why, decision="invalid") if why else pe
            for pe, why in zip(proposal.edits, problems)
        )
        proposal = dataclasses.replace(proposal, edits=edits)
    return proposal


def parse_presort(ontology: Ontology, response: Mapping[str, Any], segment_ids: Sequence[int]) -> list[tuple[int, str]]:
    """(segment id, concept id or ``"none"``) per answered cell of a ``sort_segments`` response.

    Cells are numbered 1..len(segment_ids). Unknown cells, unknown concept ids and repeated cells are
    dropped with a :class:`PresortWarning`; a refusal or cut-off raises :class:`SuggesterError`.
    """
    check_stop(response, "pre-sorting request")
    data = _structured_input(response, SORT_TOOL, "pre-sorting request")
    if isinstance(data, _Malformed) or not isinstance(data, Mapping) or not isinstance(data.get("assignments"), list):
        raise SuggesterError("the pre-sorting answer is malformed (expected {assignments: [{cell, concept}]}); "
                             "nothing stored")
    out: list[tuple[int, str]] = []
    seen: set[int] = set()
    dropped: list[str] = []
    for a in data["assignments"]:
        cell = a.get("cell") if isinstance(a, Mapping) else None
        concept = a.get("concept") if isinstance(a, Mapping) else None
        if isinstance(cell, bool) or not isinstance(cell, int) or not 1 <= cell <= len(segment_ids):
            dropped.append(f"cell {shorten(cell, 20)} (there are cells 1..{len(segment_ids)})")
            continue
        if not isinstance(concept, str) or (concept != "none" and concept not in ontology):
            dropped.append(f"cell {cell}: unknown concept {shorten(concept, 40)!r}")
            continue
        if cell in seen:
            dropped.append(f"cell {cell}: answered twice (kept the first)")
            continue
        seen.add(cell)
        out.append((int(segment_ids[cell - 1]), concept))
    if dropped:
        warnings.warn("pre-sorting: dropped " + "; ".join(dropped), PresortWarning, stacklevel=2)
    return out
