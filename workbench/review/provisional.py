"""Provisional concepts: an addition is labelled, trained and judged before it joins the classifier.

Accepting an ``add_concept`` in a workspace that has a trained classifier commits the new concept as
*provisional* (:mod:`workbench.review.decisions`): it gets labeler keys and its own model, and it is
shown everywhere (marked), but no parent combines its score, so the classifier and the root's accuracy
are what they were. Its life from there::

    accepted ──label it──▶ enough labels (provisional_min_labels) ──train──▶ judge: the gate compares the
    composition with and without it on validation (paired bootstrap) and records gain / no gain in the
    proposal file ──▶ confirm (a commit whose message holds the verdict) or remove (a commit)

- :func:`provisional_status` lists the provisional concepts: parents, labelled training segments, how
  many the gate needs, the proposal that brought it, the last verdict recorded.
- :func:`judge` runs the gate for each provisional concept with enough labels (what ``workbench train``
  and ``wb.train()`` run after training, and ``workbench provisional --workspace WS --gate``) and records
  each verdict in the proposal file that introduced the concept.
- :func:`confirm` runs the gate (or takes a verdict) and, on "merge", commits the concept into its
  parents' composition (``set_provisional … (confirmed)``, trailers ``Proposal:``, ``Confirmed-by:``,
  ``Gate:``); on any other verdict it refuses (:class:`NotConfirmed`) unless a person gives an override,
  which is recorded (``Gate-override:``). "Inconclusive, merged anyway" never happens.
- :func:`remove` takes a provisional concept out again (a commit); its labels stay in the store.

Nothing here trains into the workspace's ``models/``: the gate trains its candidates in a scratch folder.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import ProposalError, WorkbenchError
from workbench.ontology.edits import RemoveConcept, SetProvisional
from workbench.review.decisions import decision_lock
from workbench.review.gate import GateRejected, Verdict, gate_edits
from workbench.review.proposals import now_utc, one_line
from workbench.review.queries import introduced_by
from workbench.review.store import ProposalStore

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = ["ProvisionalConcept", "NotConfirmed", "provisional_status", "judge", "confirm", "remove",
           "training_labels"]


class NotConfirmed(GateRejected):
    """:func:`confirm` refused: the gate did not show a gain (``verdict``). Confirm anyway with an override."""


@dataclass(frozen=True)
class ProvisionalConcept:
    """One provisional concept and where it stands."""

    concept: str
    parents: tuple[str, ...]  #: the concepts that will combine it once confirmed
    labels: int  #: segments labelled as it on training images (and on images not yet split)
    needed: int  #: the setting ``provisional_min_labels``
    proposal: str | None = None  #: the proposal that brought it ("0012"), None if none did
    verdict: Verdict | None = None  #: the last gate verdict recorded for it (None: not judged yet)

    @property
    def ready(self) -> bool:
        """Enough labels for the gate to judge it."""
        return self.labels >= self.needed

    def line(self) -> str:
        """``bud (provisional, part of flower_head): 12 of 10 labels — judged: merge (+6.2 pts, …)``."""
        where = f"part of {', '.join(self.parents)}" if self.parents else "no parent"
        head = f"{self.concept} (provisional, {where}): {self.labels} of {self.needed} labels"
        if self.verdict is not None:
            return f"{head} — judged: {self.verdict.line()}"
        if self.ready:
            return f"{head} — ready: train, then the gate judges it"
        return f"{head} — label {self.needed - self.labels} more before the gate can judge it"

    def to_dict(self) -> dict[str, Any]:
        return {"concept": self.concept, "parents": list(self.parents), "labels": self.labels, "needed": self.needed,
                "ready": self.ready, "proposal": self.proposal,
                "verdict": self.verdict.to_dict() if self.verdict is not None else None}


def training_labels(ws: Workspace, concepts: Iterable[str]) -> dict[str, int]:
    """Per concept, its labelled segments on training images (images the split has not placed yet count
    too: they go to training unless a validation or test quota still needs them)."""
    want = set(concepts)
    sides = ws.store.image_splits()
    out = {c: 0 for c in want}
    for seg, lab in ws.store.segments_with_labels():
        if lab is not None and lab.concept in want and sides.get(seg.image_id, "train") == "train":
            out[lab.concept] += 1
    return out


def _recorded(p: Any, concept: str) -> Verdict | None:
    """The last verdict a :func:`judge` or :func:`confirm` recorded for ``concept`` in proposal ``p``."""
    for d in reversed(p.decisions):
        if d.get("concept") == concept and isinstance(d.get("verdict"), Mapping):
            try:
                return Verdict.from_dict(d["verdict"])
            except (TypeError, WorkbenchError):
                return None
    return None


def provisional_status(ws: Workspace, concepts: Iterable[str] | None = None) -> list[ProvisionalConcept]:
    """Every provisional concept of the workspace's ontology (or those of ``concepts``), sorted by id."""
    o = ws.ontology
    ids = o.provisional()
    if concepts is not None:
        wanted = list(concepts)
        for c in wanted:
            _require_provisional(ws, c)
        ids = [c for c in ids if c in set(wanted)]
    counts = training_labels(ws, ids)
    out = []
    for c in ids:
        p = introduced_by(ws, c)
        out.append(ProvisionalConcept(c, o.parents(c), counts.get(c, 0), ws.settings.provisional_min_labels,
                                      p.id if p is not None else None, _recorded(p, c) if p is not None else None))
    return out


def _require_provisional(ws: Workspace, concept: str) -> None:
    o = ws.ontology
    if concept not in o.concepts:
        o[concept]  # raises OntologyError naming the concept, with a "did you mean"
    if not o[concept].provisional:
        raise ProposalError(f"'{concept}' is not provisional: it is already part of the composition of "
                            f"{', '.join(o.parents(concept)) or 'nothing'} ({ws.ontology_path}). To change or remove "
                            "it, make a proposal (workbench suggest / the labeler's New concept…)")


def _record(ws: Workspace, pid: str | None, concept: str, entry: dict[str, Any], verdict: Verdict | None,
            message: str) -> None:
    """Add ``entry`` (with the verdict) to proposal ``pid``'s decisions; the verdict becomes its ``gate``."""
    if pid is None:
        return
    store = ProposalStore(ws)
    p = store.load(pid)
    entry = {"at": now_utc(), "edits": [], "concept": concept, **entry}
    if verdict is not None:
        entry["verdict"] = verdict.to_dict()
    store.update(dataclasses.replace(p, decisions=p.decisions + (entry,),
                                     gate=verdict.to_dict() if verdict is not None else p.gate), message=message)


def judge(ws: Workspace, concepts: Iterable[str] | None = None, *, force: bool = False, record: bool = True,
          **gate_options: Any) -> dict[str, Verdict]:
    """Run the gate for each provisional concept (of ``concepts``; default all) that has enough labels
    (``force=True``: whatever it has): the composition with it against the composition without it, on
    the validation images. Each verdict is recorded in the proposal that brought the concept (``record``).
    Returns {concept: verdict}; concepts without enough labels are left out (see :func:`provisional_status`)."""
    out: dict[str, Verdict] = {}
    for st in provisional_status(ws, concepts):
        if not (st.ready or force):
            continue
        v = gate_edits(ws, [SetProvisional(st.concept, False)], proposal_id=st.proposal, **gate_options)
        out[st.concept] = v
        if record:
            _record(ws, st.proposal, st.concept, {"by": "workbench", "action": "gate",
                                                   "note": f"confirming '{st.concept}': {v.line()}"}, v,
                    f"Gate verdict for provisional concept '{st.concept}' (proposal {st.proposal}): {v.line()}")
    return out


def _author(by: str) -> str:
    return by if by.startswith(("person:", "claude:")) else f"person:{by}"


def _check_person(by: Any, action: str) -> str:
    if not isinstance(by, str) or not by.strip():
        raise ProposalError(f"{action} needs the name of the person deciding (by='ana')")
    return by.strip()


def confirm(ws: Workspace, concept: str, *, by: str, override: str | None = None, verdict: Verdict | None = None,
            **gate_options: Any) -> tuple[str | None, Verdict]:
    """Confirm provisional ``concept``: its parents' models combine it from now on. Returns
    ``(commit sha, verdict)``.

    The gate runs first (``verdict=`` reuses one from :func:`judge`). Only a "merge" verdict confirms;
    otherwise :class:`NotConfirmed` is raised (the verdict recorded in the proposal) unless ``override``
    gives a person's reason, which the commit records as ``Gate-override: <by>: <reason>``.
    """
    by = _check_person(by, "confirm")
    _require_provisional(ws, concept)
    if override is not None and not (isinstance(override, str) and override.strip()):
        raise ProposalError("an override needs a reason (it goes into the commit message and the proposal)")
    st = provisional_status(ws, [concept])[0]
    if verdict is None:
        verdict = gate_edits(ws, [SetProvisional(concept, False)], proposal_id=st.proposal, **gate_options)
    if verdict.decision != "merge" and not override:
        _record(ws, st.proposal, concept, {"by": "workbench", "action": "gate",
                                           "note": f"confirming '{concept}': {verdict.line()}"}, verdict,
                f"Gate verdict for provisional concept '{concept}' (proposal {st.proposal}): {verdict.line()}")
        raise NotConfirmed(
            f"'{concept}' not confirmed: {verdict.summary()} — {verdict.meaning()} It stays provisional (trained, "
            f"left out of {', '.join(st.parents)}). To confirm it anyway, give the reason: "
            f"wb.confirm({concept!r}, override=\"why\") or `workbench confirm {concept} --workspace {ws.path} "
            f"--by NAME --override \"why\"`; to drop it: `workbench remove {concept} ...`", verdict)
    if override:
        verdict = verdict.with_override(by=by, reason=" ".join(override.split()))
    edit = SetProvisional(concept, False)
    lines = [f"Confirm '{concept}': it joins the composition of {', '.join(st.parents)}", "", verdict.meaning(), "",
             f"- {edit.summary()}", ""]
    if st.proposal:
        lines.append(f"Proposal: {st.proposal}")
    lines += [f"Confirmed-by: {one_line(by)}", f"Gate: {one_line(verdict.line())}"]
    if verdict.override:
        lines.append(f"Gate-override: {one_line(by)}: {one_line(verdict.override['reason'])}")
    with decision_lock(ws, f"confirm {concept}"):
        _require_provisional(ws, concept)  # another process may have decided it meanwhile
        ws.apply_edits([edit], author=_author(by), message="\n".join(lines) + "\n")
        sha = ws.last_commit
    _record(ws, st.proposal, concept, {"by": by, "action": "confirm", "commit": sha,
                                       "note": (verdict.override or {}).get("reason", "")}, verdict,
            f"Record confirmation of '{concept}' (proposal {st.proposal}, commit {(sha or 'none')[:12]})")
    return sha, verdict


def remove(ws: Workspace, concept: str, *, by: str, reason: str = "") -> str | None:
    """Take provisional ``concept`` out of the ontology (a commit; its labels stay in the store, unused).
    Returns the commit sha. A confirmed concept is removed by a proposal instead."""
    by = _check_person(by, "remove")
    _require_provisional(ws, concept)
    st = provisional_status(ws, [concept])[0]
    edit = RemoveConcept(concept)
    lines = [f"Remove provisional concept '{concept}'", ""]
    if reason.strip():
        lines += [reason.strip(), ""]
    if st.verdict is not None:
        lines += [f"Last verdict: {st.verdict.meaning()}", ""]
    lines += [f"- {edit.summary()}", ""]
    if st.proposal:
        lines.append(f"Proposal: {st.proposal}")
    lines.append(f"Removed-by: {one_line(by)}")
    if st.verdict is not None:
        lines.append(f"Gate: {one_line(st.verdict.line())}")
    with decision_lock(ws, f"remove {concept}"):
        _require_provisional(ws, concept)
        ws.apply_edits([edit], author=_author(by), message="\n".join(lines) + "\n")
        sha = ws.last_commit
    _record(ws, st.proposal, concept, {"by": by, "action": "remove", "commit": sha, "note": reason}, None,
            f"Record removal of provisional concept '{concept}' (proposal {st.proposal})")
    return sha
