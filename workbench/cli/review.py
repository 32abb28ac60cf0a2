"""``workbench review ID``: a second reviewer's findings on a proposal, stored beside its edits.

The reviewer (the ``--reviewer`` option, else the workspace's ``reviewer`` setting) writes findings
into the proposal's ``review:`` block and the change is committed; the edits, the status and the
ontology are never touched. The findings are printed with the proposal (``workbench proposals show``
prints them too).
"""
from __future__ import annotations

import argparse
from typing import Any

from workbench.cli.common import EXIT_OK, say
from workbench.cli.proposals import print_proposal
from workbench.review.render import escape_terminal as esc
from workbench.review.reviewers import make_reviewer, review_proposal
from workbench.workspace.folder import Workspace

__all__ = ["cmd_review"]


def cmd_review(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        name = args.reviewer or getattr(ws.settings, "reviewer", "scripted")
        if name == "none":
            name = "scripted"  # asked for a review explicitly: at least the checks
        options: dict[str, Any] = {}
        if name == "replay" and args.replay_from:
            options["recorded"] = [str(f) for f in args.replay_from]
        reviewer = make_reviewer(name, ws, **options)
        say(f"reviewer: {esc(getattr(reviewer, 'name', name))}"
            + ("" if args.reviewer else " (the workspace's `reviewer` setting; choose with --reviewer)"))
        p = review_proposal(ws, args.ref, reviewer)
        print_proposal(ws, p, with_preview=False)
        say("the review is advice stored beside the edits; a person decides: workbench proposals accept|reject "
            f"{p.id} --workspace {args.workspace} --by NAME")
        return EXIT_OK
    finally:
        ws.close()
