"""Second reviewers: findings about a proposal, written before a person sees it, never a decision.

A :class:`Reviewer` reads a proposal (and the ontology and workspace it is about) and returns a
:class:`~workbench.review.findings.Review`: the workbench's own checks (:mod:`workbench.review.checks`:
contradictions, the word lint, description similarity, label overlap in the store) plus its own
judgement (is each new concept visual and observable at the scale of one segment; is the rationale
borne out by the evidence image). Reviewers are registered by name, like the suggesters:

==========  ==========================================================================================
name        what it is
==========  ==========================================================================================
scripted    :class:`ScriptedReviewer`: findings authored by hand for the shipped demo suggestions
            (``ontologies/daisy.reviews.yaml``), marked ``scripted: true``: not model output. For any
            other proposal it has no judgement of its own and says so; the checks still run.
replay      :class:`ReplayReviewer`: re-reads a recorded model review (the proposal's own, or one from
            other proposal files for the same edits), offline.
claude      :class:`workbench.review.claude.reviewer.ClaudeReviewer`: schema-structured findings through
            the ``anthropic`` SDK (same safety as ``suggest``: key from the environment only, cached
            prefix, images downscaled, the exchange recorded for replay).
==========  ==========================================================================================

A reviewer can never accept, reject or change a proposal: :func:`review_proposal` keeps only the
``Review`` object a reviewer returns and stores it in the proposal's ``review:`` block, beside edits
and status that it copies from the file unchanged; the ontology is never written.

>>> from workbench.ontology.shipped import shipped_ontology
>>> from workbench.review.suggest import ScriptedSuggester
>>> s = ScriptedSuggester()
>>> o = Ontology.load(shipped_ontology("daisy"))
>>> p = s.play(s.steps[2], o)          # the demo's third step: 'petal_tip' and 'stalk'
>>> r = make_reviewer("scripted").review(o, p)
>>> r.scripted, [f.line() for f in r.findings][:2]  # doctest: +NORMALIZE_WHITESPACE
(True, ["serious not_visual [edit 0, petal_tip]: A pink tip is a colouring of part of a petal, not a region a
segmenter cuts out; say it in the petal's description.", "serious overlap [edit 1, stalk]: 'stalk' is the same thin
green line as 'stem'; labels would be split between two names."])
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from workbench._yaml import read_yaml_file
from workbench.errors import ProposalError, SuggesterError, WorkbenchError
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_file
from workbench.review.checks import code_findings, sort_findings
from workbench.review.claude.reviewer import ClaudeReviewer, parse_review
from workbench.review.findings import Finding, Review
from workbench.review.proposals import Proposal, now_utc, ontology_hash, one_line
from workbench.review.store import ProposalStore

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = [
    "Reviewer",
    "REVIEWERS",
    "make_reviewer",
    "register_reviewer",
    "ScriptedReviewer",
    "ReplayReviewer",
    "SHIPPED_REVIEWS",
    "review_proposal",
    "review_if_configured",
    "edits_fingerprint",
    "finish_review",
]

log = logging.getLogger(__name__)

#: The shipped authored findings for the demo suggestions (``ontologies/daisy.suggestions.yaml``).
SHIPPED_REVIEWS = shipped_file("daisy.reviews.yaml")


@runtime_checkable
class Reviewer(Protocol):
    """Writes findings about a proposal; never decides or changes it."""

    name: str

    def review(self, ontology: Ontology, proposal: Proposal, workspace: Workspace | None = None) -> Review:
        """Findings about ``proposal`` against ``ontology`` (and the label store of ``workspace``, if given)."""
        ...


def edits_fingerprint(proposal: Proposal) -> str:
    """sha256 of a proposal's edits (ops and rationales): how a recorded review finds its proposal again."""
    data = [{"op": e.op, "rationale": e.rationale} for e in proposal.edits]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=repr).encode("utf-8")).hexdigest()


def finish_review(ontology: Ontology, proposal: Proposal, workspace: Workspace | None, judged: Sequence[Finding],
                  *, reviewer: str, **meta: Any) -> Review:
    """A :class:`Review`: the code checks (:func:`~workbench.review.checks.code_findings`) and the
    reviewer's own ``judged`` findings, most serious first. ``meta``: model, scripted, summary, exchange."""
    store = workspace.store if workspace is not None else None
    findings = code_findings(ontology, proposal, store) + [f for f in judged if isinstance(f, Finding)]
    return Review(reviewer=reviewer, at=now_utc(), findings=tuple(sort_findings(findings)),
                  base=ontology_hash(ontology), **meta)


# --------------------------------------------------------------------------------------------- scripted
_FILE_KEYS = ("format", "name", "scripted", "script", "reviews")
_ENTRY_KEYS = ("step", "title", "summary", "findings")


def _load_reviews(path: Path) -> tuple[str, dict[int, tuple[str, tuple[Finding, ...]]]]:
    data = read_yaml_file(path, ProposalError)
    src = str(path)
    if not isinstance(data, dict) or not isinstance(data.get("reviews"), list):
        raise ProposalError(f"{src}: a reviews file is a mapping with a `reviews:` list")
    for k in data:
        if k not in _FILE_KEYS:
            raise ProposalError(f"{src}: unknown key {k!r} (allowed: {', '.join(_FILE_KEYS)})")
    if data.get("format", 1) != 1:
        raise ProposalError(f"{src}: unsupported reviews format {data.get('format')!r} (this workbench reads 1)")
    if data.get("scripted") is not True:
        raise ProposalError(f"{src}: a scripted reviews file must say `scripted: true` (its findings are authored)")
    script = data.get("script")
    if not isinstance(script, str) or not script:
        raise ProposalError(f"{src}: `script` must name the suggestions file the reviews are for")
    out: dict[int, tuple[str, tuple[Finding, ...]]] = {}
    for i, entry in enumerate(data["reviews"]):
        where = f"{src}: reviews[{i}]"
        if not isinstance(entry, dict):
            raise ProposalError(f"{where}: each review is a mapping with {', '.join(_ENTRY_KEYS)}")
        for k in entry:
            if k not in _ENTRY_KEYS:
                raise ProposalError(f"{where}: unknown key {k!r} (allowed: {', '.join(_ENTRY_KEYS)})")
        step = entry.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ProposalError(f"{where}: `step` must be the script step's index (0, 1, ...), got {step!r}")
        if step in out:
            raise ProposalError(f"{where}: step {step} is reviewed twice")
        summary = entry.get("summary") or ""
        if not isinstance(summary, str):
            raise ProposalError(f"{where}: `summary` must be text")
        findings = entry.get("findings") or []
        if not isinstance(findings, list):
            raise ProposalError(f"{where}: `findings` must be a list")
        parsed = []
        for j, f in enumerate(findings):
            fd = dict(f) if isinstance(f, dict) else f
            if isinstance(fd, dict):
                fd.setdefault("source", "reviewer")
            parsed.append(Finding.from_dict(fd, f"{where}: findings[{j}]"))
        out[step] = (summary, tuple(parsed))
    return script, out


def _script_step(p: Proposal) -> int | None:
    req = (p.exchange or {}).get("request") if isinstance(p.exchange, Mapping) else None
    step = req.get("step") if isinstance(req, Mapping) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


class ScriptedReviewer:
    """Authored findings for the steps of a suggestions script (no model involved), plus the code checks.

    A proposal played from the script (author ``scripted:<script>``, its recorded step) gets the
    findings written for that step; any other proposal gets the checks alone and a summary saying the
    script has nothing to say about it. Every review it writes says ``scripted: true``.
    """

    def __init__(self, path: str | Path = SHIPPED_REVIEWS):
        self.path = Path(path)
        self.script, self.entries = _load_reviews(self.path)
        self.name = f"scripted:{self.path.name}"

    def __repr__(self) -> str:
        return f"ScriptedReviewer({str(self.path)!r})"

    def review(self, ontology: Ontology, proposal: Proposal, workspace: Workspace | None = None) -> Review:
        step = _script_step(proposal) if proposal.author == f"scripted:{self.script}" else None
        if step is not None and step in self.entries:
            summary, judged = self.entries[step]
            n = len(proposal.edits)
            judged = tuple(dataclasses.replace(f, edit=None) if f.edit is not None and f.edit >= n else f for f in judged)
        else:
            summary = (f"Only the workbench's checks ran: the scripted reviewer has findings for the demo's steps "
                       f"({self.script}) alone. For a judgement of this proposal, use the claude reviewer.")
            judged = ()
        return finish_review(ontology, proposal, workspace, judged, reviewer=self.name, scripted=True, summary=summary)


# ----------------------------------------------------------------------------------------------- replay
class ReplayReviewer:
    """Re-reads recorded model reviews offline: same recording, same proposal → the same findings.

    For a proposal it uses the proposal's own recorded review (when a model wrote it), else a recorded
    review of another proposal with the same edits (:func:`edits_fingerprint`) from ``recorded``:
    :class:`Proposal` objects, proposal files, or (with ``workspace``) refs such as ``"0007"``.
    """

    name = "replay"

    def __init__(self, recorded: Sequence[Any] = (), workspace: Workspace | None = None):
        self._by_edits: dict[str, Review] = {}
        for ref in recorded:
            p = ref if isinstance(ref, Proposal) else self._load(ref, workspace)
            if p.review is not None and p.review.exchange:
                self._by_edits.setdefault(edits_fingerprint(p), p.review)

    @staticmethod
    def _load(ref: Any, workspace: Workspace | None) -> Proposal:
        if workspace is not None and not Path(str(ref)).is_file():
            return ProposalStore(workspace).load(ref)
        path = Path(ref)
        try:
            return Proposal.from_dict(read_yaml_file(path, ProposalError), str(path))
        except ProposalError as e:
            raise SuggesterError(f"replay: cannot read {path}: {e}") from None

    def review(self, ontology: Ontology, proposal: Proposal, workspace: Workspace | None = None) -> Review:
        rec = proposal.review if proposal.review is not None and proposal.review.exchange else None
        rec = rec or self._by_edits.get(edits_fingerprint(proposal))
        if rec is None or not isinstance(rec.exchange, Mapping) or not isinstance(rec.exchange.get("response"), Mapping):
            raise SuggesterError(f"replay: no recorded model review for {proposal.ref} (review it once with "
                                 "`--reviewer claude`, or give --replay-from files that hold one)")
        summary, judged = parse_review(rec.exchange["response"], proposal)
        return finish_review(ontology, proposal, workspace, judged, reviewer="replay", model=rec.model,
                             summary=summary, exchange=rec.exchange)


# --------------------------------------------------------------------------------------------- registry
def _scripted(workspace: Workspace | None = None, path: str | Path | None = None, **options: Any) -> ScriptedReviewer:
    if options:
        raise SuggesterError(f"scripted reviewer: unknown option(s) {', '.join(sorted(options))} (it takes path)")
    return ScriptedReviewer(path or SHIPPED_REVIEWS)


def _claude(workspace: Workspace | None = None, **options: Any) -> ClaudeReviewer:
    if workspace is not None:
        options.setdefault("model", workspace.settings.claude_model)
        options.setdefault("max_image_edge", workspace.settings.llm_max_image_edge)
    return ClaudeReviewer(**options)


def _replay(workspace: Workspace | None = None, recorded: Sequence[Any] | None = None, **options: Any) -> ReplayReviewer:
    if options:
        raise SuggesterError(f"replay reviewer: unknown option(s) {', '.join(sorted(options))} (it takes recorded)")
    if recorded is None and workspace is not None:
        recorded = [p for p in ProposalStore(workspace).list() if p.review is not None and p.review.exchange]
    return ReplayReviewer(recorded or (), workspace=workspace)


#: Reviewer factories by name: ``factory(workspace=None, **options) -> Reviewer``.
REVIEWERS: dict[str, Callable[..., Reviewer]] = {"scripted": _scripted, "replay": _replay, "claude": _claude}


def register_reviewer(name: str, factory: Callable[..., Reviewer]) -> None:
    """Add a reviewer under ``name`` (a plugin's own)."""
    if not isinstance(name, str) or not name.isidentifier() or name == "none":
        raise SuggesterError(f"a reviewer name is an identifier other than 'none', got {name!r}")
    REVIEWERS[name] = factory


def make_reviewer(name: str, workspace: Workspace | None = None, **options: Any) -> Reviewer:
    """Build the reviewer registered as ``name`` ("scripted", "replay", "claude")."""
    if name not in REVIEWERS:
        raise SuggesterError(f"unknown reviewer {name!r}; choose one of {', '.join(REVIEWERS)} (or the setting "
                             "reviewer: none for no review)")
    return REVIEWERS[name](workspace=workspace, **options)


# ------------------------------------------------------------------------------------------- workspace
def review_proposal(ws: Workspace, ref: Any, reviewer: Reviewer | str | None = None, **options: Any) -> Proposal:
    """Review a saved proposal and store the findings in its file (committed); returns the proposal.

    ``reviewer``: a :class:`Reviewer`, a registered name, or None for the workspace's ``reviewer``
    setting. The reviewer sees a copy of the proposal; only the :class:`Review` it returns is kept, put
    beside the edits, status and decisions read from the file again just before writing. The ontology
    is never written. A reviewer that fails raises; the proposal file is then untouched.
    """
    store = ProposalStore(ws)
    p = store.load(ref)
    if reviewer is None or isinstance(reviewer, str):
        name = reviewer or _setting(ws)
        if name == "none":
            name = "scripted"  # asked for explicitly: the checks and any authored findings
        reviewer = make_reviewer(name, ws, **options)
    review = reviewer.review(ws.ontology, p, ws)
    if not isinstance(review, Review):
        raise SuggesterError(f"reviewer {getattr(reviewer, 'name', reviewer)!r} returned {type(review).__name__}, "
                             "not a Review; nothing was stored")
    current = store.load(p.id)  # what the file says now: edits, status and decisions come only from here
    done = dataclasses.replace(current, review=review)
    return store.update(done, message=f"Review of proposal {p.id} by {one_line(review.reviewer)}: {review.line()}")


def _setting(ws: Workspace) -> str:
    return str(getattr(ws.settings, "reviewer", "scripted") or "none")


def review_if_configured(ws: Workspace, p: Proposal, reviewer: str | None = None) -> tuple[Proposal, str | None]:
    """After a proposal is saved: review it with ``reviewer`` or the ``reviewer`` setting (``none``: not at all).

    Returns (the proposal, as stored, None) or, when the reviewer fails (no key, the API down), (the
    proposal as it was, a sentence saying so and how to try again): a proposal is never lost to its review.
    """
    name = reviewer or _setting(ws)
    if name == "none" or p.id is None:
        return p, None
    try:
        return review_proposal(ws, p.id, name), None
    except WorkbenchError as e:
        log.warning("review of proposal %s failed: %s", p.id, e)
        return p, (f"the {name} reviewer could not review proposal {p.id}: {e}. The proposal is saved; "
                   f"review it later with: workbench review {p.id} --workspace WS")
