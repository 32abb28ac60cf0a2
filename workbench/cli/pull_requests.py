"""``workbench history | why | revert | gate``: the pull-request loop over the ontology's git history."""
from __future__ import annotations

import argparse

from workbench.cli.common import EXIT_INVALID, EXIT_OK, edit_indices, say
from workbench.errors import WorkbenchError
from workbench.review.gate import GateRejected, apply_proposal, gate
from workbench.review.history import history, revert, why
from workbench.review.render import escape_terminal as esc
from workbench.workspace.folder import Workspace

__all__ = ["cmd_history", "cmd_why", "cmd_revert", "cmd_gate"]


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
                say(esc(e.verdict.summary()))
                say(esc(e.verdict.message))
                raise
            say(esc(v.summary()) if v else "merged without the gate")
            say(f"merged proposal {p.id} ({p.status}): commit {p.commit or 'none'}")
            return EXIT_OK
        v = gate(ws, args.ref, accept)
        say(esc(v.summary()))
        say(esc(v.message))
        if v.retrained:
            say(f"retrained: {', '.join(v.retrained)} ({v.seconds:.1f} s)")
        return EXIT_OK if v.decision == "merge" else EXIT_INVALID
    finally:
        ws.close()
