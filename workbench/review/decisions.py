"""Deciding a proposal: preview it, accept (apply + commit) or reject it, one decision at a time.

:func:`preview` says what accepting (some of) a proposal would do to the workspace as it is now;
:func:`accept` re-validates the chosen edits against the current ontology, applies and commits them
(:func:`commit_message`: title, rationale, the edits and the trailers ``Proposal:``, ``Proposed-by:``,
``Accepted-by:``, ``Gate:``) and records the decision in the proposal file; :func:`reject` records a
rejection and leaves the ontology byte-identical.

Additions go *provisional*: once the workspace has a trained classifier (a saved model of the root), a
concept an accepted ``add_concept`` brings is marked provisional in the same commit (the
``set_provisional`` edit, listed in the message): it gets labeler keys and its own model, but no parent
combines its score until a person confirms it (:mod:`workbench.review.provisional`) after the gate shows
a gain. Before the first train there is no classifier to protect and nothing to judge against, so an
accepted concept joins its parents at once (``provisional=`` overrides either way). Every decision holds :func:`decision_lock` (so does
a revert, :func:`workbench.review.history.revert`).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench._io import atomic_write_bytes
from workbench.errors import EditError, ProposalConflict, ProposalError, WorkbenchError
from workbench.ontology.diff import text_diff
from workbench.models.store import ModelStore
from workbench.ontology.edits import EDIT_OPS, Edit, SetProvisional, edit_from_dict, invert_edits
from workbench.ontology.graph import Ontology
from workbench.review.proposals import (
    Proposal,
    now_utc,
    one_line,
    ontology_hash,
    plain_data,
)
from workbench.review.store import ProposalStore

if TYPE_CHECKING:  # pragma: no cover
    from workbench.workspace.folder import Workspace

__all__ = ["Preview", "preview", "plan_edits", "accept", "reject", "commit_message", "decision_lock",
           "has_trained_classifier", "provisional_marks"]


@dataclass(frozen=True)
class Preview:
    """What accepting (some of) a proposal would do, before it is done."""

    diff: str  #: unified text diff of ontology.yaml
    added: list[str]  #: concept ids new in the result
    removed: list[str]  #: concept ids gone from the result
    changed: list[str]  #: ids in both whose fields or parts differ
    labels_touched: dict[int, int]  #: edit index -> labelled segments whose concept it renames/merges/removes/splits
    retrain: list[str]  #: concepts whose models would retrain (added, or changed in implementation, rule or
    #: combined parts, and the concepts that combine them), bottom-up
    after: Ontology  #: the ontology after the chosen edits (new concepts marked provisional where they would be)
    stale: bool  #: the ontology changed since the proposal was made (edits were re-validated)
    chosen: list[int] = field(default_factory=list)  #: the edit indices this preview applies
    provisional: list[str] = field(default_factory=list)  #: added concepts accepting would make provisional


def _as_proposal(ws: Workspace, ref: Any) -> Proposal:
    return ref if isinstance(ref, Proposal) else ProposalStore(ws).load(ref)


def plan_edits(
    ontology: Ontology, p: Proposal, accept: Sequence[int] | None, edited: Mapping[int, Mapping] | None,
) -> tuple[list[int], list[Edit], Ontology, bool]:
    """``(chosen indices, their edits, the ontology after them, stale)``: the chosen edits (default: every
    valid one, plus the ``edited`` ones) parsed and applied in order to ``ontology``.

    :class:`ProposalError` names the edit that is invalid, malformed or does not apply with the others;
    :class:`ProposalConflict` when it no longer applies because the ontology changed since the proposal
    was made (``stale``). Writes nothing.
    """
    stale = p.base != ontology_hash(ontology)
    edited = dict(edited or {})
    if accept is None:
        chosen = sorted(set(p.valid_edits) | set(edited))
    else:
        if isinstance(accept, (str, bytes)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in accept):
            raise ProposalError(f"{p.ref}: edits to accept must be indices (e.g. [0, 2]), got {accept!r}")
        chosen = sorted(set(accept))
    if not chosen:
        raise ProposalError(f"{p.ref}: no edit chosen (valid edits: {p.valid_edits or 'none'}); nothing to accept")
    for i in list(chosen) + list(edited):
        if not 0 <= i < len(p.edits):
            raise ProposalError(f"{p.ref}: it has edits 0..{len(p.edits) - 1}; there is no edit {i}")
    for i in edited:
        if i not in chosen:
            raise ProposalError(f"{p.ref}: edit {i} was edited but not chosen; add it to the accepted edits")
    edits: list[Edit] = []
    cur = ontology
    for i in chosen:
        pe = p.edits[i]
        if not pe.valid:
            raise ProposalError(f"{p.ref}: edit {i} ({pe.summary()}) is invalid and can never be accepted: {pe.problem or 'marked invalid'}. "
                                "Make a new proposal with a corrected op instead")
        try:
            e = edit_from_dict(edited[i]) if i in edited else pe.edit()
        except EditError as err:
            raise ProposalError(f"{p.ref}: the edited edit {i} is malformed: {err}") from None
        if e.op not in EDIT_OPS:
            raise ProposalError(f"{p.ref}: edit {i} ({e.summary()}) is the workbench's own record of a decision "
                                "(confirming or setting aside a concept), which no proposal may make: use "
                                "`workbench confirm` / `workbench remove` (wb.confirm / wb.remove) instead")
        try:
            cur = e.apply(cur)
        except EditError as err:
            if stale:
                raise ProposalConflict(
                    f"{p.ref}: edit {i} ({e.summary()}) no longer applies: the ontology changed since the proposal "
                    f"was made ({err}). Reject it, or ask for a new suggestion against the current ontology") from None
            raise ProposalError(f"{p.ref}: edit {i} ({e.summary()}) does not apply with the chosen edits {chosen}: "
                                f"{err} (does it need an edit you left out?)") from None
        edits.append(e)
    return chosen, edits, cur, stale


def _touched_concepts(e: Edit) -> list[str]:
    if e.op == "rename":
        return [e.old]  # type: ignore[attr-defined]
    if e.op == "merge":
        return list(e.sources)  # type: ignore[attr-defined]
    if e.op in ("remove_concept", "split"):
        return [e.id]  # type: ignore[attr-defined]
    return []


def preview(
    ws: Workspace, proposal: Any, accept: Sequence[int] | None = None, edited: Mapping[int, Mapping] | None = None,
) -> Preview:
    """What accepting ``accept`` (default: every valid edit) would do to the workspace's current ontology.

    Labels touched are counted in the store as it is now, following earlier renames/merges of the same
    preview (a rename then a merge of the new id counts the same labels once for each edit).
    """
    p = _as_proposal(ws, proposal)
    before = ws.ontology
    chosen, edits, after, stale = plan_edits(before, p, accept, edited)
    counts = dict(ws.store.counts())
    touched: dict[int, int] = {}
    for i, e in zip(chosen, edits):
        touched[i] = sum(counts.get(c, 0) for c in _touched_concepts(e))
        if e.op == "rename":
            counts[e.new] = counts.pop(e.old, 0) + counts.get(e.new, 0)  # type: ignore[attr-defined]
        elif e.op == "merge":
            n = sum(counts.pop(s, 0) for s in e.sources)  # type: ignore[attr-defined]
            counts[e.into] = counts.get(e.into, 0) + n  # type: ignore[attr-defined]
    marks = provisional_marks(ws, edits, None)  # what accept() adds: new concepts go provisional once trained
    for m in marks:
        after = m.apply(after)
    b, a = before.concepts, after.concepts
    added = sorted(set(a) - set(b))
    removed = sorted(set(b) - set(a))
    changed = sorted(c for c in set(a) & set(b) if a[c] != b[c])
    # a model retrains when its own definition or the parts it combines change, and so does every concept
    # that combines it; a provisional concept trains but no parent combines it (its parent stays as it is)
    hit = set(added) | {c for c in changed if (a[c].implementation, a[c].rule, after.composed_parts(c))
                        != (b[c].implementation, b[c].rule, before.composed_parts(c))}
    hit |= {e.into for e in edits if e.op == "merge" and e.into in a}  # type: ignore[attr-defined]  # new labels
    todo = list(hit)
    while todo:
        c = todo.pop()
        for parent in after.parents(c):
            if c in after.composed_parts(parent) and parent not in hit:
                hit.add(parent)
                todo.append(parent)
    retrain = [c for c in after.bottom_up() if c in hit]
    return Preview(text_diff(before, after, "a/ontology.yaml", "b/ontology.yaml"), added, removed, changed,
                   touched, retrain, after, stale, chosen, sorted(m.id for m in marks))


def commit_message(p: Proposal, edits: Sequence[Edit], *, by: str, gate: Mapping | None = None,
                   note: str = "") -> str:
    """The git commit message of an accepted proposal: title, rationale, the edits, trailers."""
    lines = [one_line(p.title) or f"Proposal {p.id}", ""]
    if p.rationale.strip():
        lines += [p.rationale.strip(), ""]
    lines += [f"- {e.summary()}" for e in edits]
    if note.strip():
        lines += ["", note.strip()]
    lines += ["", f"Proposal: {p.id}", f"Proposed-by: {one_line(p.author)}", f"Accepted-by: {one_line(by)}"]
    if gate:
        lines.append(f"Gate: {_gate_line(gate)}")
        ov = gate.get("override")
        if isinstance(ov, Mapping) and ov.get("by"):
            lines.append(f"Gate-override: {one_line(str(ov['by']))}: {one_line(str(ov.get('reason', '')))}")
    return "\n".join(lines) + "\n"


def _gate_line(gate: Mapping) -> str:
    for key in ("summary", "verdict", "decision"):
        if isinstance(gate.get(key), str):
            return one_line(gate[key])
    return one_line(", ".join(f"{k}={v}" for k, v in gate.items() if isinstance(v, (str, int, float, bool))))


@contextmanager
def _deciding(ws: Workspace, ref: Any, by: str, action: str, decided: str) -> Iterator[tuple[ProposalStore, Proposal]]:
    """What every decision starts with: who decides, the proposal saved (an unsaved one gets its file),
    the workspace's decision lock held, the file read again under it and still pending (``decided``
    says what to do instead when it is not)."""
    if not isinstance(by, str) or not by.strip():
        raise ProposalError(f"{action} needs the name of the person deciding (by='ana')")
    store = ProposalStore(ws)
    p = _as_proposal(ws, ref)
    if p.id is None:
        p = store.save(p)
    with decision_lock(ws, p):
        p = store.load(p.id)  # another process may have decided it since it was read
        if p.status != "pending":
            raise ProposalError(f"{p.ref} is already {p.status}; {decided}")
        yield store, p


def accept(
    ws: Workspace,
    ref_or_proposal: Any,
    accept: Sequence[int] | None = None,
    edited: Mapping[int, Mapping] | None = None,
    *,
    by: str,
    note: str = "",
    gate: Mapping | None = None,
    provisional: bool | None = None,
) -> Proposal:
    """Apply the chosen edits (default: every valid one) to the workspace ontology and record it.

    ``provisional``: whether the concepts its ``add_concept`` edits bring are provisional (left out of
    their parents' composition until confirmed); None (the default): provisional once the workspace has
    a trained classifier (see the module docstring).

    Re-validates against the current ontology; a stale proposal is applied only if every chosen edit
    still applies (else :class:`ProposalConflict` naming the edit). Invalid edits can never be
    accepted. The ontology is written and committed by ``ws.apply_edits`` (message: title, rationale,
    trailers ``Proposal:``, ``Proposed-by:``, ``Accepted-by:``, ``Gate:``); then the proposal file
    records the decision and the commit sha. On any error the ontology file is left as it was.
    """
    with _deciding(ws, ref_or_proposal, by, "accept",
                   "a decided proposal is not applied again (make a new one, or revert its commit)") as (store, p):
        return _accept_locked(ws, store, p, accept, edited, by=by, note=note, gate=gate, provisional=provisional)


def has_trained_classifier(ws: Workspace) -> bool:
    """True once the workspace has a saved model of its root: from then on, additions go provisional."""
    return ModelStore(ws.models_dir).has(ws.ontology.root)


def provisional_marks(ws: Workspace, edits: Sequence[Edit], provisional: bool | None) -> list[Edit]:
    """The ``set_provisional`` edits that make the concepts ``edits`` add provisional (none when
    ``provisional`` is False, or None and the workspace has no trained classifier yet)."""
    if provisional is None:
        provisional = has_trained_classifier(ws)
    if not provisional:
        return []
    return [SetProvisional(e.id) for e in edits if e.op == "add_concept"]  # type: ignore[attr-defined]


def _provisional_note(after: Ontology, marks: Sequence[Edit]) -> str:
    if not marks:
        return ""
    lines = []
    for m in marks:
        cid = m.id  # type: ignore[attr-defined]
        parents = ", ".join(after.parents(cid)) or "its parents"
        lines.append(f"'{cid}' is provisional: it is labelled and trained, but {parents} do not combine its "
                     f"score until a person confirms it (`workbench confirm {cid}`) after the gate shows a gain.")
    return "\n".join(lines)


def _accept_locked(ws: Workspace, store: ProposalStore, p: Proposal, accept: Sequence[int] | None,
                   edited: Mapping[int, Mapping] | None, *, by: str, note: str, gate: Mapping | None,
                   provisional: bool | None = None) -> Proposal:
    before_text = ws.ontology_path.read_bytes()
    before = ws.ontology
    chosen, edits, _after, stale = plan_edits(before, p, accept, edited)
    marks = provisional_marks(ws, edits, provisional)
    extra = _provisional_note(_after, marks)
    message = commit_message(p, [*edits, *marks], by=by, gate=gate,
                             note="\n\n".join(x for x in (note.strip(), extra) if x))
    edits = [*edits, *marks]
    try:
        ws.apply_edits(edits, author=f"person:{by}" if not by.startswith(("person:", "claude:")) else by,
                       message=message)
    except BaseException:
        _restore(ws, before, before_text, edits)
        raise
    sha = ws.last_commit
    edited = dict(edited or {})
    new_edits = []
    for i, pe in enumerate(p.edits):
        if not pe.valid:
            new_edits.append(pe)
        else:
            new_edits.append(replace(pe, decision="accepted" if i in chosen else "rejected"))
    status = "accepted" if set(chosen) >= set(p.valid_edits) else "partial"
    entry: dict[str, Any] = {"at": now_utc(), "by": by, "action": "accept", "edits": list(chosen), "note": note}
    if marks:
        entry["provisional"] = [m.id for m in marks]  # type: ignore[attr-defined]
    if edited:
        entry["edited"] = {str(i): plain_data(dict(op)) for i, op in edited.items()}
    if stale:
        entry["stale"] = True
    done = replace(p, edits=tuple(new_edits), status=status, decisions=p.decisions + (entry,), commit=sha,
                   gate=dict(gate) if gate is not None else p.gate)
    try:
        return store.update(done, message=f"Record {status} of proposal {p.id} (commit {sha[:12] if sha else 'none'})")
    except WorkbenchError as err:
        raise ProposalError(f"{p.ref}: the edits were applied (commit {sha or 'none'}) but the proposal file could not "
                            f"record the decision: {err}. Run `workbench proposals show {p.id}` and fix the file") from err


@contextmanager
def decision_lock(ws: Workspace, what: Any) -> Iterator[None]:
    """One decision (accept, reject, revert) at a time per workspace: an OS file lock, released even if the
    process dies. ``what`` names the decision in the error (a Proposal is named by its file)."""
    what = what.ref if isinstance(what, Proposal) else str(what)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    lock_dir = Path(ws.cache_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "decisions.lock", "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ProposalError(f"{what}: another accept/reject/revert is running in this workspace; try again "
                                "when it has finished") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _restore(ws: Workspace, before: Ontology, before_text: bytes, edits: Sequence[Edit]) -> None:
    """After a failed apply: undo whatever part of it reached the disk (ontology bytes and moved labels)."""
    try:
        if ws.ontology_path.read_bytes() == before_text:
            return
        ws.apply_edits(invert_edits(before, list(edits)), author="workbench")  # moves labels back, no commit
    except WorkbenchError:
        pass
    finally:
        if ws.ontology_path.read_bytes() != before_text:
            atomic_write_bytes(ws.ontology_path, before_text)


def reject(ws: Workspace, ref: Any, *, by: str, reason: str = "") -> Proposal:
    """Record that ``by`` rejected the proposal; the ontology is not touched."""
    with _deciding(ws, ref, by, "reject", "only a pending proposal can be rejected") as (store, p):
        new_edits = tuple(pe if not pe.valid else replace(pe, decision="rejected") for pe in p.edits)
        entry = {"at": now_utc(), "by": by, "action": "reject", "edits": [], "note": reason}
        done = replace(p, edits=new_edits, status="rejected", decisions=p.decisions + (entry,))
        return store.update(done, message=f"Reject proposal {p.id}" + (f": {one_line(reason)}" if reason else ""))
