"""``workbench suggest | refactor | proposals``: suggesters propose ontology edits, people decide."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from workbench.cli.common import EXIT_INVALID, EXIT_OK, edit_indices, say
from workbench.data.datasets import load_image
from workbench.errors import ProposalError, SuggesterError
from workbench.review.claude import (
    BatchPending,
    ClaudeSuggester,
    collect_batch,
    submit_batch,
)
from workbench.review.decisions import accept, preview, reject
from workbench.review.proposals import Proposal
from workbench.review.render import escape_terminal as esc
from workbench.review.reviewers import review_if_configured
from workbench.review.store import ProposalStore
from workbench.review.suggest import (
    image_context,
    make_suggester,
    refactor_workspace,
    suggest_images,
)
from workbench.workspace.folder import Workspace

__all__ = ["cmd_suggest", "cmd_refactor", "cmd_proposals", "print_proposal", "print_review"]


def _suggester_from(args: argparse.Namespace, ws: Workspace) -> Any:
    name = args.suggester or ("claude" if os.environ.get("ANTHROPIC_API_KEY") else "scripted")
    options: dict[str, Any] = {}
    if name == "scripted" and args.script:
        options["path"] = args.script
    if name == "replay" and args.replay_from:
        options["proposal_files"] = [str(f) for f in args.replay_from]
    s = make_suggester(name, ws, **options)
    say(f"suggester: {getattr(s, 'author', None) or s.name}" + ("" if args.suggester else
        " (default: claude when ANTHROPIC_API_KEY is set, else the scripted demo; choose with --suggester)"))
    return s


def print_proposal(ws: Workspace, p: Proposal, *, with_preview: bool = True, accept: list[int] | None = None) -> None:
    """A proposal for the terminal (text from suggesters escaped): edits, decisions, problems, lint, and
    for a pending one what accepting it would do."""
    say(f"proposal {p.id or '(not saved)'} [{p.status}] {p.kind} by {esc(p.author)}, {p.created}")
    say(f"  title: {esc(p.title)}")
    if p.evidence.image:
        say(f"  image: {esc(p.evidence.image)}")
    if p.rationale:
        say(f"  rationale: {esc(p.rationale)}")
    if not p.edits:
        say("  (no edits)")
    review = p.review
    for i, e in enumerate(p.edits):
        say(f"  [{i}] {esc(e.summary())}  — {e.decision}")
        if e.rationale:
            say(f"      why: {esc(e.rationale)}")
        if e.problem:
            say(f"      problem: {esc(e.problem)}")
        for w in e.lint:
            say(f"      lint: {esc(w)}")
        for f in review.for_edit(i) if review is not None else ():
            if not f.is_lint:  # the lint is printed just above
                say(f"      review: {_finding(f)}")
    print_review(p)
    if p.commit:
        say(f"  commit: {p.commit}")
    if not with_preview or p.status != "pending" or not p.valid_edits:
        return
    try:
        pv = preview(ws, p, accept)
    except ProposalError as err:
        say(f"  preview: {esc(err)}")
        return
    if pv.stale:
        say("  note: the ontology changed since this proposal was made; the edits were checked again")
    say(f"  accepting edits {','.join(map(str, pv.chosen))} would:")
    say(f"    add: {', '.join(pv.added) or '-'}; remove: {', '.join(pv.removed) or '-'}; "
        f"change: {', '.join(pv.changed) or '-'}")
    if pv.provisional:
        say(f"    provisional: {', '.join(pv.provisional)} (trained and shown, combined by no parent until the gate "
            "shows a gain and a person confirms it: workbench confirm)")
    touched = ", ".join(f"[{i}] {n}" for i, n in pv.labels_touched.items() if n)
    say(f"    labelled segments touched: {touched or 'none'}")
    say(f"    retrain: {', '.join(pv.retrain) or 'nothing'}")
    sys.stdout.write(esc(pv.diff))


_MARK = {"serious": "!!", "warning": "! ", "info": "  "}


def _finding(f: Any) -> str:
    about = f" ({esc(f.about)})" if f.about else ""
    by = "check" if f.source == "check" else "reviewer"
    return f"{_MARK.get(f.severity, '  ')} {f.severity} {f.kind}{about}: {esc(f.message)} [{by}]"


def print_review(p: Proposal) -> None:
    """The second reviewer's block: who, when, the summary and the findings not tied to one edit."""
    r = p.review
    if r is None:
        say(f"  review: not reviewed yet (workbench review {p.id or 'ID'} --workspace WS)")
        return
    who = esc(r.reviewer) + (" (scripted: authored findings, not model output)" if r.scripted else "")
    say(f"  review by {who}, {r.at}: {esc(r.line().split(' (')[0])}")
    if r.summary:
        say(f"    {esc(r.summary)}")
    for f in r.general():
        say(f"    {_finding(f)}")


def _review_saved(ws: Workspace, p: Proposal, args: argparse.Namespace) -> Proposal:
    """Run the second reviewer on a just-saved proposal (``--reviewer`` or the setting); a failure is said, not fatal."""
    done, problem = review_if_configured(ws, p, getattr(args, "reviewer", None))
    if problem:
        say(f"note: {esc(problem)}")
    return done


def cmd_suggest(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        if args.collect is not None:
            try:
                proposals, failures = collect_batch(ws, args.collect or None)
            except BatchPending as e:
                say(f"batch still processing: {e}")
                return EXIT_OK
            for p in proposals:  # collected proposals get their second review too, before a person sees them
                print_proposal(ws, _review_saved(ws, p, args) if p.id is not None else p, with_preview=False)
            for cid, why in failures:
                say(f"failed: {cid}: {why}")
            say(f"{len(proposals)} proposals, {len(failures)} failures; review: workbench proposals list "
                f"--workspace {args.workspace}")
            return EXIT_INVALID if failures and not proposals else EXIT_OK
        if not args.images:
            raise SuggesterError("give the image files to suggest for (or --collect to fetch a batch)")
        suggester = _suggester_from(args, ws)
        if args.batch:
            if not isinstance(suggester, ClaudeSuggester):
                raise SuggesterError("--batch sends the images with Claude's Message Batches API: use --suggester claude")
            items = [(load_image(f), image_context(ws, Path(f))) for f in args.images]
            batch_id = submit_batch(ws, items, suggester)
            say(f"submitted batch {batch_id} ({len(items)} images, half price); collect the proposals with: "
                f"workbench suggest --workspace {args.workspace} --collect")
            return EXIT_OK
        for p in suggest_images(ws, suggester, args.images, save=not args.no_save):
            if p.id is not None:
                p = _review_saved(ws, p, args)
            print_proposal(ws, p)
        say(f"review: workbench proposals show --workspace {args.workspace} ID; "
            "accept: workbench proposals accept ... --by NAME")
        return EXIT_OK
    finally:
        ws.close()


def cmd_refactor(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        p = refactor_workspace(ws, _suggester_from(args, ws), save=not args.no_save)
        if p.id is not None:
            p = _review_saved(ws, p, args)
        print_proposal(ws, p)
        return EXIT_OK
    finally:
        ws.close()


def cmd_proposals(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        store = ProposalStore(ws)
        if args.proposals_command == "list":
            ps = store.list(args.status)
            for p in ps:
                say(f"{p.id}  {p.status:<8} {p.kind:<8} {len(p.valid_edits)}/{len(p.edits)} valid  "
                    f"{esc(p.author)}: {esc(p.title)}")
            say(f"{len(ps)} proposal{'s' if len(ps) != 1 else ''}")
        elif args.proposals_command == "show":
            print_proposal(ws, store.load(args.ref), accept=edit_indices(args.edits))
        elif args.proposals_command == "accept":
            p = accept(ws, args.ref, edit_indices(args.edits), by=args.by, note=args.note or "")
            print_proposal(ws, p, with_preview=False)
            say(f"applied and committed ({p.status}): {p.commit or 'no git commit'}")
        elif args.proposals_command == "reject":
            p = reject(ws, args.ref, by=args.by, reason=args.reason or "")
            say(f"proposal {p.id} rejected by {esc(args.by)}; the ontology is unchanged")
        return EXIT_OK
    finally:
        ws.close()
