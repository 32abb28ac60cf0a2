"""The workspace's history: what changed in the ontology, by which proposal, who decided, and why.

Every accepted proposal is one git commit of ``ontology.yaml`` whose message holds the title, the
rationale and trailers (``Proposal:``, ``Proposed-by:``, ``Accepted-by:``, ``Gate:``,
``Gate-override:``, ``Reverts:``). This module reads them back:

- :func:`history` lists the changes (newest first) as :class:`Change` records, each with the
  ontology edits it made: the proposal's accepted edits when they reproduce the commit exactly,
  else the edits :func:`workbench.ontology.diff.semantic_diff` finds between the two versions;
- :func:`why` says which change introduced a concept and which last changed it, following renames
  and merges back through those edits;
- :func:`revert` undoes one change as a NEW commit (``Reverts: <sha>``): the inverse of its edits,
  computed against the ontology it was applied to, applied to the ontology as it is now. A revert
  that would silently undo a later change (the concept was edited since) or no longer applies is
  refused with :class:`~workbench.errors.ProposalConflict` naming the concept and the later commit.
  Labels a rename or merge moved in the store go back (:meth:`LabelStore.revert_concept_event`).
"""
from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.errors import (
    EditError,
    OntologyError,
    ProposalConflict,
    ProposalError,
    WorkbenchError,
)
from workbench.ontology.diff import semantic_diff
from workbench.ontology.edits import apply_edits, edit_from_dict, invert_edits
from workbench.ontology.graph import Concept, Ontology
from workbench.review.decisions import decision_lock
from workbench.review.proposals import now_utc
from workbench.review.queries import accepted_ops
from workbench.review.refs import is_commit_sha, is_proposal_ref
from workbench.review.store import ProposalStore
from workbench.workspace.folder import ONTOLOGY_FILE, git_env
from workbench.workspace.pins import follow_edits

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = [
    "Change",
    "Explanation",
    "TRAILERS",
    "history",
    "why",
    "revert",
    "resolve_commit",
    "parse_message",
]

log = logging.getLogger(__name__)

#: The trailers the workbench writes and reads, in the order they are shown.
TRAILERS = ("Proposal", "Proposed-by", "Accepted-by", "Gate", "Gate-override", "Reverts", "Reverted-by",
            "Reverts-proposal")
_TRAILER_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):\s?(.*)$")
_FIELDS = ("label", "description", "implementation", "rule", "imagenet_id")
_ONTOLOGY = "ontology.yaml"


# ------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Change:
    """One commit of the workspace that changed the ontology (newest first in :func:`history`)."""

    sha: str
    date: str  # ISO 8601 author date
    author: str  # git author name
    title: str  # the subject line
    rationale: str = ""  # the message body without the edit list and the trailers
    proposal: str | None = None  # "0007" (trailer Proposal:)
    proposed_by: str | None = None  # "claude:<model>", "scripted:<file>", "person:<name>"
    accepted_by: str | None = None
    gate: str | None = None  # the gate's one-line summary
    gate_override: str | None = None  # "<by>: <reason>" when a person merged against the gate
    reverts: str | None = None  # sha of the change this one reverts
    reverted_by: str | None = None  # sha of a later change that reverted this one
    edits: tuple[Mapping[str, Any], ...] = ()  # the ontology edits it made, as plain data
    concepts: tuple[str, ...] = ()  # concept ids whose definition it changed (added, removed, edited)
    parent: str | None = None  # the first parent's sha (None for the first commit)
    trailers: Mapping[str, str] = field(default_factory=dict)

    @property
    def short(self) -> str:
        return self.sha[:12]

    def summary(self) -> str:
        """One line: ``abc123def456 proposal 0007 (claude:…, accepted by ana): Add a sepal``."""
        who = []
        if self.proposed_by:
            who.append(self.proposed_by)
        if self.accepted_by:
            who.append(f"accepted by {self.accepted_by}")
        what = f"proposal {self.proposal}" if self.proposal else ("revert" if self.reverts else "commit")
        people = f" ({', '.join(who)})" if who else ""
        return f"{self.short} {what}{people}: {self.title}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha": self.sha, "date": self.date, "author": self.author, "title": self.title,
            "rationale": self.rationale, "proposal": self.proposal, "proposed_by": self.proposed_by,
            "accepted_by": self.accepted_by, "gate": self.gate, "gate_override": self.gate_override,
            "reverts": self.reverts, "reverted_by": self.reverted_by, "edits": [dict(e) for e in self.edits],
            "concepts": list(self.concepts), "parent": self.parent, "trailers": dict(self.trailers),
        }  # fmt: skip


@dataclass(frozen=True)
class Explanation:
    """Why a concept is what it is: the change that introduced it and the one that last changed it."""

    concept: str
    exists: bool  # it is in the current ontology
    introduced: Change | None  # None: it is older than the history (e.g. a copied workspace)
    last_changed: Change | None  # the newest change to its definition (may be ``introduced``)
    removed: Change | None = None  # for a concept no longer in the ontology: the change that removed it
    names: tuple[str, ...] = ()  # its ids, newest first (renames followed)
    merged_from: tuple[str, ...] = ()  # the concepts merged into it when a merge introduced it
    changes: tuple[Change, ...] = ()  # every change to it, newest first

    def summary(self) -> str:
        def one(c: Change) -> str:
            s = c.summary()
            why = c.rationale.strip().splitlines()[0] if c.rationale.strip() else ""
            gate = f" [Gate: {c.gate}]" if c.gate else ""
            return f"{s}{f' — {why}' if why else ''}{gate}"

        name = self.concept
        lines = []
        if len(self.names) > 1:
            lines.append(f"'{name}' was called {', '.join(repr(n) for n in self.names[1:])} before")
        if self.removed is not None:
            lines.append(f"'{name}' was removed by {one(self.removed)}")
        if self.introduced is not None:
            via = f" (merged from {', '.join(self.merged_from)})" if self.merged_from else ""
            lines.append(f"'{name}' was introduced{via} by {one(self.introduced)}")
        else:
            lines.append(f"'{name}' is older than the workspace's history")
        if self.last_changed is not None and self.last_changed is not self.introduced:
            lines.append(f"last changed by {one(self.last_changed)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:  # rationales are model text: escaped, never rendered as Markdown
        import html

        return f"<pre style='white-space: pre-wrap'>{html.escape(self.summary())}</pre>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "concept": self.concept, "exists": self.exists,
            "introduced": self.introduced.to_dict() if self.introduced else None,
            "last_changed": self.last_changed.to_dict() if self.last_changed else None,
            "removed": self.removed.to_dict() if self.removed else None,
            "names": list(self.names), "merged_from": list(self.merged_from),
            "changes": [c.sha for c in self.changes], "summary": self.summary(),
        }  # fmt: skip


# ------------------------------------------------------------------------------------------- parsing
def parse_message(message: str) -> tuple[str, str, dict[str, str]]:
    """``(title, rationale, trailers)`` of a commit message.

    Trailers are the last paragraph when every line of it is ``Key: value`` (as git reads them);
    the rationale is the body without the trailers and without the ``- edit`` list the workbench adds.

    >>> parse_message("Add sepal\\n\\nDaisies have them.\\n\\n- add_concept sepal\\n\\nProposal: 0003\\nAccepted-by: ana\\n")
    ('Add sepal', 'Daisies have them.', {'Proposal': '0003', 'Accepted-by': 'ana'})
    """
    text = message.replace("\r\n", "\n").strip("\n")
    title, _, body = text.partition("\n")
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip("\n")) if p.strip()]
    trailers: dict[str, str] = {}
    if paragraphs:
        lines = paragraphs[-1].splitlines()
        matches = [_TRAILER_RE.match(ln) for ln in lines]
        if lines and all(matches):
            for m in matches:
                trailers.setdefault(m.group(1), m.group(2).strip())  # type: ignore[union-attr]
            paragraphs = paragraphs[:-1]
    kept = [p for p in paragraphs if not all(ln.startswith("- ") for ln in p.splitlines())]
    return title.strip(), "\n\n".join(p.strip() for p in kept), trailers


def _git(ws: Workspace, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return ws._git(*args, check=check)


def _blobs(ws: Workspace, specs: Sequence[str]) -> dict[str, str | None]:
    """The text of ``<rev>:<path>`` objects, read through one ``git cat-file --batch``."""
    if not specs:
        return {}

    r = subprocess.run(["git", "cat-file", "--batch"], cwd=ws.path, env=git_env(), input=("\n".join(specs) + "\n").encode(),
                       capture_output=True, timeout=120)  # fmt: skip
    out: dict[str, str | None] = {}
    data, pos = r.stdout, 0
    for spec in specs:
        end = data.index(b"\n", pos)
        header = data[pos:end].decode("utf-8", "replace").split()
        pos = end + 1
        if len(header) == 3 and header[1] == "blob":
            n = int(header[2])
            out[spec] = data[pos:pos + n].decode("utf-8", "replace")
            pos += n + 1
        else:  # "<spec> missing" (no such file in that commit)
            out[spec] = None
    return out


def _load(text: str | None, source: str) -> Ontology | None:
    if text is None:
        return None
    try:
        return Ontology.loads(text, source)
    except (OntologyError, WorkbenchError):
        return None


def _accepted_ops(ws: Workspace, pid: str) -> list[dict[str, Any]] | None:
    try:
        return [dict(o) for o in accepted_ops(ProposalStore(ws, commit=False).load(pid))]
    except WorkbenchError:
        return None


def _reproduces(before: Ontology, ops: Sequence[Mapping[str, Any]], after: Ontology) -> list[Any] | None:
    try:
        edits = [edit_from_dict(o) for o in ops]
        return edits if apply_edits(before, edits) == after else None
    except WorkbenchError:
        return None


def _edits_of(ws: Workspace, before: Ontology | None, after: Ontology | None, trailers: Mapping[str, str],
              by_sha: Mapping[str, Change]) -> list[Any]:
    """The edits a commit made: the proposal's (if they reproduce it), a revert's inverse, else a diff."""
    if before is None or after is None or before == after:
        return []
    pid = trailers.get("Proposal")
    if pid:
        ops = _accepted_ops(ws, pid)
        if ops:
            edits = _reproduces(before, ops, after)
            if edits is not None:
                return edits
    reverted = by_sha.get(trailers.get("Reverts", ""))
    if reverted is not None and reverted.edits:
        try:
            original = [edit_from_dict(e) for e in reverted.edits]
            inv = invert_edits(after, original)
            if _reproduces(before, [e.to_dict() for e in inv], after) is not None:
                return inv
        except WorkbenchError:
            pass
    try:
        return semantic_diff(before, after)
    except WorkbenchError:  # pragma: no cover - semantic_diff reproduces any valid pair
        return []


def _touched(before: Ontology | None, after: Ontology | None) -> tuple[str, ...]:
    b = dict(before.concepts) if before is not None else {}
    a = dict(after.concepts) if after is not None else {}
    return tuple(sorted(c for c in set(a) | set(b) if a.get(c) != b.get(c)))


def _changes(ws: Workspace, limit: int | None = None) -> list[tuple[Change, Ontology | None, Ontology | None]]:
    """(change, ontology before, ontology after) of every commit that touched ontology.yaml, newest first."""
    if ws.head() is None:
        return []
    fmt = "%H%x1f%P%x1f%aI%x1f%an%x1f%B%x1e"
    r = _git(ws, "log", f"--format={fmt}", "--first-parent", "--", _ONTOLOGY)
    raw = []
    for rec in r.stdout.split("\x1e"):
        rec = rec.strip("\n")
        if not rec:
            continue
        sha, parents, date, author, body = (rec.split("\x1f") + [""] * 5)[:5]
        raw.append((sha, parents.split()[0] if parents.split() else None, date, author, body))
    specs = []
    for sha, parent, *_ in raw:
        specs.append(f"{sha}:{_ONTOLOGY}")
        if parent:
            specs.append(f"{parent}:{_ONTOLOGY}")
    blobs = _blobs(ws, specs)
    by_sha: dict[str, Change] = {}
    out: list[tuple[Change, Ontology | None, Ontology | None]] = []
    for sha, parent, date, author, body in reversed(raw):  # oldest first: a revert needs what it reverts
        after = _load(blobs.get(f"{sha}:{_ONTOLOGY}"), f"{sha[:12]}:{_ONTOLOGY}")
        before = _load(blobs.get(f"{parent}:{_ONTOLOGY}"), f"{parent[:12]}:{_ONTOLOGY}") if parent else None
        title, rationale, trailers = parse_message(body)
        edits = _edits_of(ws, before, after, trailers, by_sha)
        ch = Change(
            sha=sha, date=date, author=author, title=title, rationale=rationale,
            proposal=trailers.get("Proposal"), proposed_by=trailers.get("Proposed-by"),
            accepted_by=trailers.get("Accepted-by"), gate=trailers.get("Gate"),
            gate_override=trailers.get("Gate-override") or _override_in(trailers.get("Gate")), reverts=_full_sha(trailers.get("Reverts"), by_sha),
            edits=tuple(e.to_dict() for e in edits), concepts=_touched(before, after), parent=parent,
            trailers=dict(trailers),
        )  # fmt: skip
        by_sha[sha] = ch
        out.append((ch, before, after))
    reverted = {c.reverts: c.sha for c, _, _ in out if c.reverts}
    from dataclasses import replace

    out = [(replace(c, reverted_by=reverted.get(c.sha)) if c.sha in reverted else c, b, a) for c, b, a in out]
    out.reverse()
    return out[:limit] if limit is not None else out


def _override_in(gate: str | None) -> str | None:
    """``<by>: <reason>`` from a gate line ``… — overridden by <by>: <reason>`` (see Verdict.line)."""
    if gate and " — overridden by " in gate:
        return gate.split(" — overridden by ", 1)[1].strip()
    return None


def _full_sha(short: str | None, by_sha: Mapping[str, Change]) -> str | None:
    if not short:
        return None
    for sha in by_sha:
        if sha.startswith(short.lower()):
            return sha
    return short


# ------------------------------------------------------------------------------------------------ API
def history(ws: Workspace, limit: int | None = None) -> list[Change]:
    """The changes to the workspace's ontology, newest first (``limit``: at most that many)."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise WorkbenchError(f"history: limit must be a non-negative integer, got {limit!r}")
    return [c for c, _, _ in _changes(ws, limit)]


def why(ws: Workspace, concept: str) -> Explanation:
    """Which change introduced ``concept`` and which last changed it, with their rationale.

    Renames are followed back (``ray`` renamed from ``petal``: the proposal that added ``petal``
    introduced it); a concept made by a merge was introduced by that merge (``merged_from`` names
    the sources). A concept no longer in the ontology is explained too (``removed``).
    """
    if not isinstance(concept, str) or not concept:
        raise WorkbenchError(f"why: give a concept id, got {concept!r}")
    current = ws.ontology
    changes = _changes(ws)
    exists = concept in current.concepts
    name = concept
    removed = None
    start = 0
    if not exists:  # explain a concept that is gone: the change that removed (or renamed) it, and before
        for k, (ch, before, after) in enumerate(changes):
            if before is not None and concept in before.concepts and (after is None or concept not in after.concepts):
                removed, start = ch, k + 1
                break
        if removed is None:
            known = ", ".join(sorted(current.concepts))
            raise WorkbenchError(f"concept '{concept}' is not in the ontology and never was in its history "
                                 f"(concepts now: {known})")
    names = [concept]
    introduced = last = None
    merged_from: tuple[str, ...] = ()
    touched: list[Change] = []
    for ch, before, after in changes[start:]:
        if after is None:
            continue
        prev = name
        for e in reversed(ch.edits):
            if e.get("op") == "rename" and e.get("new") == prev:
                prev = e.get("old")
        in_after = name in after.concepts
        in_before = before is not None and prev in before.concepts
        if not in_after:
            continue
        if not in_before:
            introduced = ch
            touched.append(ch)
            last = last or ch
            for e in ch.edits:
                if e.get("op") == "merge" and e.get("into") == name:
                    merged_from = tuple(e.get("sources", ()))
            break
        if prev != name or not _same(after.concepts[name], before.concepts[prev]):  # type: ignore[union-attr]
            touched.append(ch)
            last = last or ch
        if prev != name:
            names.append(prev)
        name = prev
    return Explanation(concept, exists, introduced, last, removed, tuple(names), merged_from, tuple(touched))


def _same(a: Concept, b: Concept) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in _FIELDS) and a.parts == b.parts


def resolve_commit(ws: Workspace, ref: Any) -> tuple[str, str | None]:
    """``(commit sha, proposal id or None)`` for a proposal ref (``7``, ``"0007"``,
    ``"proposals/0007.yaml"``) or a commit sha (7 or more hex digits); which one it is, is
    :func:`workbench.review.refs.is_proposal_ref`'s call."""
    text = str(ref).strip() if isinstance(ref, (str, int)) and not isinstance(ref, bool) else None
    if not text:
        raise WorkbenchError(f"revert: give a proposal id ('0007') or a commit sha, got {ref!r}")
    if is_proposal_ref(ref):
        p = ProposalStore(ws, commit=False).load(ref)
        if not p.commit:
            raise ProposalError(f"proposal {p.id} is {p.status} and was never applied, so there is nothing to revert")
        if not is_commit_sha(p.commit):
            raise ProposalError(f"proposal {p.id}: its `commit` {p.commit[:20]!r} is not a commit sha")
        return p.commit.lower(), p.id
    if not is_commit_sha(text):
        raise WorkbenchError(f"revert: {text!r} is neither a proposal id ('0007') nor a commit sha")
    r = _git(ws, "rev-parse", "--verify", "--quiet", f"{text}^{{commit}}", check=False)
    if r.returncode != 0 or not r.stdout.strip():
        raise WorkbenchError(f"revert: no commit {text!r} in {ws.path}; see `workbench history --workspace {ws.path}`")
    return r.stdout.strip(), None


def revert(ws: Workspace, ref: Any, *, by: str, reason: str = "") -> Change:
    """Undo one change as a new commit; returns that commit's :class:`Change`.

    ``ref``: a proposal id or a commit sha. Refused (:class:`ProposalConflict`) when it was already
    reverted, when its inverse no longer applies, or when a later change edited what it would undo.
    Holds the workspace's decision lock (the one accept/reject hold) while it reads and writes.
    """
    if not isinstance(by, str) or not by.strip():
        raise ProposalError("revert needs the name of the person deciding (by='ana')")
    sha, pid = resolve_commit(ws, ref)

    with decision_lock(ws, f"revert of {str(ref)[:40]!r}"):
        return _revert_locked(ws, sha, pid, by=by, reason=reason)


def _revert_locked(ws: Workspace, sha: str, pid: str | None, *, by: str, reason: str) -> Change:
    changes = _changes(ws)
    index = {c.sha: k for k, (c, _, _) in enumerate(changes)}
    if sha not in index:
        raise WorkbenchError(f"commit {sha[:12]} did not change {ONTOLOGY_FILE}: nothing to revert")
    ch, before, after = changes[index[sha]]
    what = f"proposal {ch.proposal} (commit {ch.short})" if ch.proposal else f"commit {ch.short}"
    if before is None or after is None:
        raise ProposalConflict(f"{what} created the ontology; it cannot be reverted (there is nothing before it)")
    if ch.reverted_by:
        raise ProposalConflict(f"{what} was already reverted by commit {ch.reverted_by[:12]}")
    edits = [edit_from_dict(e) for e in ch.edits]
    if not edits:
        raise WorkbenchError(f"{what} made no change to the ontology: nothing to revert")
    later = [c for c, _, _ in changes[: index[sha]]]  # newer changes, newest first
    current = ws.ontology
    try:
        inverse = invert_edits(before, edits)
    except EditError as e:  # pragma: no cover - edits reproduce the commit, so they invert against it
        raise ProposalConflict(f"{what}: its edits cannot be inverted: {e}") from None
    _check_untouched_since(before, after, current, later, what)
    try:
        result = apply_edits(current, inverse)
    except EditError as e:
        raise ProposalConflict(
            f"{what} cannot be reverted: the ontology changed since and its inverse no longer applies ({e}). "
            f"Later changes: {', '.join(c.short for c in reversed(later)) or 'none'}; revert those first") from None
    if current == after and result != before:  # pragma: no cover - the inverse of exact edits is exact
        raise ProposalConflict(f"{what}: its inverse does not restore the ontology before it; please report this")

    inv_ops = [e.to_dict() for e in inverse]
    author = by if by.startswith(("person:", "claude:")) else f"person:{by}"
    with ws.store.transaction():
        for e in reversed(edits):
            if e.op in ("rename", "merge"):
                _revert_labels(ws, e, author)
        ws.save_ontology(result)
    lines = [f'Revert "{ch.title}"', "", f"This reverts {what}."]
    if reason.strip():
        lines += ["", reason.strip()]
    lines += ["", *[f"- {edit_from_dict(o).summary()}" for o in inv_ops]]
    lines += ["", f"Reverts: {sha}", f"Reverted-by: {' '.join(by.split())}"]
    if pid or ch.proposal:
        lines.append(f"Reverts-proposal: {pid or ch.proposal}")
    moved, _notes = follow_edits(ws, [e for e in inverse if e.op == "rename"])  # renamed pins go back too
    new = ws.commit("\n".join(lines) + "\n", [ONTOLOGY_FILE, *moved])
    if new is None:  # pragma: no cover - the ontology file did change
        raise WorkbenchError(f"revert of {what}: nothing was committed")
    _record_in_proposal(ws, pid or ch.proposal, by, new, reason)
    return history(ws, limit=1)[0]


def _check_untouched_since(before: Ontology, after: Ontology, current: Ontology, later: Sequence[Change],
                           what: str) -> None:
    """Refuse a revert that would overwrite a later edit of what the change did."""

    def blame(c: str) -> str:
        for ch in reversed(later):  # oldest first
            if c in ch.concepts:
                return f" by {ch.summary()}"
        return ""

    for c in sorted(set(before.concepts) | set(after.concepts)):
        b, a = before.concepts.get(c), after.concepts.get(c)
        if a == b:
            continue
        now = current.concepts.get(c)
        if a is None:  # removed by the change: it must still be absent
            if now is not None:
                raise ProposalConflict(f"cannot revert {what}: it removed '{c}', which was added again since{blame(c)}")
            continue
        if now is None:
            raise ProposalConflict(f"cannot revert {what}: '{c}' was removed or renamed since{blame(c)}; "
                                   "revert that change first")
        if b is None:  # added by the change: removing it must not drop later edits to it
            if not _same(now, a):
                raise ProposalConflict(f"cannot revert {what}: it added '{c}', which was changed since{blame(c)}; "
                                       "revert that change first")
            continue
        for f in _FIELDS:
            if getattr(a, f) != getattr(b, f) and getattr(now, f) != getattr(a, f):
                raise ProposalConflict(f"cannot revert {what}: the {f} of '{c}' was changed again since{blame(c)}; "
                                       "revert that change first")
        added, dropped = set(a.parts) - set(b.parts), set(b.parts) - set(a.parts)
        if not added <= set(now.parts) or dropped & set(now.parts):
            raise ProposalConflict(f"cannot revert {what}: the parts of '{c}' were changed again since{blame(c)}; "
                                   "revert that change first")


def _revert_labels(ws: Workspace, e: Any, author: str) -> None:
    """Move the labels a rename/merge moved back, through the store's concept events."""
    store = ws.store
    sources = [e.old] if e.op == "rename" else list(e.sources)
    target = e.new if e.op == "rename" else e.into
    events = store.concept_events()
    undone = {int(x) for ev in events if ev.op == "revert" for x in ev.sources if str(x).isdigit()}
    for ev in reversed(events):
        if ev.op == e.op and ev.target == target and list(ev.sources) == sources and ev.id not in undone:
            store.revert_concept_event(ev.id, author=author)
            return
    if e.op == "rename":  # no event recorded (e.g. a store restored from a backup): rename back
        store.rename_concept(e.new, e.old, author=author)
    else:
        log.warning("%s: no store event for %s; labels of %s stay on %r", ws.path, e.summary(), sources, target)


def _record_in_proposal(ws: Workspace, pid: str | None, by: str, sha: str, reason: str) -> None:
    if not pid:
        return
    try:
        from dataclasses import replace

        store = ProposalStore(ws)
        p = store.load(pid)
        entry = {"at": now_utc(), "by": by, "action": "revert", "edits": [], "note": reason or f"reverted by {sha[:12]}",
                 "commit": sha}
        store.update(replace(p, decisions=p.decisions + (entry,)), message=f"Record revert of proposal {pid} "
                     f"(commit {sha[:12]})")
    except WorkbenchError as e:  # the revert itself is committed; the record is a courtesy
        log.warning("%s: could not record the revert in proposal %s: %s", ws.path, pid, e)
