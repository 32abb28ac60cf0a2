"""``workbench history | why | revert | gate | provisional | confirm | remove``: the pull-request loop over the
ontology's git history, and the provisional concepts an accepted addition brings."""
from __future__ import annotations

import argparse

from workbench.cli.common import EXIT_INVALID, EXIT_OK, edit_indices, say
from workbench.errors import WorkbenchError
from workbench.review.decisions import plan_edits
from workbench.review.gate import GateRejected, apply_proposal, gate, goes_provisional
from workbench.review.history import history, revert, why
from workbench.review.provisional import NotConfirmed, confirm, judge, provisional_status, remove
from workbench.review.render import escape_terminal as esc
from workbench.review.store import ProposalStore
from workbench.workspace.folder import Workspace

__all__ = ["cmd_history", "cmd_why", "cmd_revert", "cmd_gate", "cmd_provisional", "cmd_confirm", "cmd_remove"]


def _say_verdict(v: object) -> None:
    """The verdict's machine-readable line, then what it means in words (and the pins that changed)."""
    say(esc(v.summary()))  # type: ignore[attr-defined]
    say(esc(v.meaning()))  # type: ignore[attr-defined]
    pins = getattr(v, "pins", None) or {}
    if str(pins.get("text") or "").strip():
        say(esc(str(pins["text"])))


def cmd_history(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        changes = history(ws, limit=args.limit)
        for c in changes:
            say(f"{c.short}  {c.date[:10]}  {esc(c.summary().split(' ', 1)[1])}")
            if c.gate:
                say(f"    Gate: {esc(c.gate)}")
            if c.reverts:
                say(f"    reverts {c.reverts[:12]}")
            if c.reverted_by:
                say(f"    reverted by {c.reverted_by[:12]}")
            if c.concepts:
                say(f"    concepts: {esc(', '.join(c.concepts))}")
        say(f"{len(changes)} change{'s' if len(changes) != 1 else ''} to the ontology")
        return EXIT_OK
    finally:
        ws.close()


def cmd_why(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        say(esc(why(ws, args.concept).summary()))
        return EXIT_OK
    finally:
        ws.close()


def cmd_revert(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        c = revert(ws, args.ref, by=args.by, reason=args.reason or "")
        say(f"reverted {c.reverts[:12] if c.reverts else args.ref} as a new commit {c.short}: {esc(c.title)}")
        return EXIT_OK
    finally:
        ws.close()


def cmd_gate(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        accept = edit_indices(args.edits)
        if args.merge:
            if not args.by:
                raise WorkbenchError("--merge needs --by NAME (the person deciding; recorded in the commit)")
            try:
                p, v = apply_proposal(ws, args.ref, accept, by=args.by, override=args.override)
            except GateRejected as e:
                _say_verdict(e.verdict)
                raise
            if v:
                _say_verdict(v)
            else:
                say("merged without the gate")
            prov = [c for c in ws.ontology.provisional() if c in set(_added(p))]
            if prov:
                say(f"accepted proposal {p.id} as provisional ({p.status}): commit {p.commit or 'none'}; "
                    f"{', '.join(prov)} {'is' if len(prov) == 1 else 'are'} trained but not yet combined: label "
                    f"{'it' if len(prov) == 1 else 'them'}, train, then `workbench confirm CONCEPT`")
            else:
                say(f"merged proposal {p.id} ({p.status}): commit {p.commit or 'none'}")
            return EXIT_OK
        v = gate(ws, args.ref, accept)
        _say_verdict(v)
        if v.retrained:
            say(f"retrained: {', '.join(v.retrained)} ({v.seconds:.1f} s)")
        if v.decision != "merge":
            p = ProposalStore(ws).load(args.ref)
            try:
                provisional = goes_provisional(plan_edits(ws.ontology, p, accept, None)[1], v)
            except WorkbenchError:  # the verdict above already says what is wrong with the edits
                provisional = False
            if provisional:
                say(f"an addition the gate cannot judge yet: `workbench gate {p.id} --merge --by NAME` accepts it as "
                    "provisional (trained and shown, combined by no parent); label it, train, and the gate judges it "
                    "before `workbench confirm CONCEPT`")
        return EXIT_OK if v.decision == "merge" else EXIT_INVALID
    finally:
        ws.close()


def _added(p: object) -> list[str]:
    """Concept ids a proposal's accepted edits add."""
    return [e.op.get("id") for e in getattr(p, "edits", ()) if e.decision == "accepted"
            and isinstance(e.op, dict) and e.op.get("op") == "add_concept"]


def cmd_provisional(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        if args.gate:
            for c, v in judge(ws).items():
                say(f"{c}:")
                _say_verdict(v)
        items = provisional_status(ws)
        for st in items:
            say(esc(st.line()))
        say(f"{len(items)} provisional concept{'s' if len(items) != 1 else ''}"
            + (f" (the gate needs {ws.settings.provisional_min_labels} labelled training segments each: "
               "setting provisional_min_labels)" if items else ""))
        return EXIT_OK
    finally:
        ws.close()


def cmd_confirm(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        try:
            sha, v = confirm(ws, args.concept, by=args.by, override=args.override)
        except NotConfirmed as e:
            _say_verdict(e.verdict)
            raise
        _say_verdict(v)
        say(f"confirmed {args.concept}: {', '.join(ws.ontology.parents(args.concept))} now combine it "
            f"(commit {sha or 'none'})")
        return EXIT_OK
    finally:
        ws.close()


def cmd_remove(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        sha = remove(ws, args.concept, by=args.by, reason=args.reason or "")
        say(f"removed provisional concept {args.concept} (commit {sha or 'none'}); its labels stay in the store")
        return EXIT_OK
    finally:
        ws.close()
