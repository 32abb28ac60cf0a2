"""``workbench test | pin add | pin remove | pin list``: per-concept tests ("pins") a person writes.

``workbench test`` runs the workspace's pins against its saved models and exits 0 when none fails, 1
when any does (naming each failure); stale pins (the segment is not in the label store any more) and
pins that cannot run (no trained model yet) are listed, and fail nothing. Torch loads only when a model
does (``workbench pin ...`` never loads it).
"""
from __future__ import annotations

import argparse

from workbench.cli.common import EXIT_INVALID, EXIT_OK, say
from workbench.errors import WorkbenchError
from workbench.models.pins import run_pins, saved_models
from workbench.review.render import escape_terminal as esc
from workbench.workspace.folder import Workspace
from workbench.workspace.pins import PinError, add_pin, find_segment, pins, remove_pin

__all__ = ["cmd_test", "cmd_pin", "parse_point"]


def cmd_test(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        concept = args.concept
        if concept is not None and concept not in ws.ontology.concepts:
            raise PinError(f"{ws.ontology_path}: no concept {concept!r}; the parts are "
                           f"{', '.join(ws.ontology.leaves())}")
        items = pins(ws, concept)  # strict: a pin file of an unknown concept, or a bad one, is an error here
        if not items:
            say(f"No pins{f' of {concept!r}' if concept else ''} in {ws.path}. Pin a segment with `workbench pin add "
                f"SEGMENT CONCEPT --workspace {ws.path} --by NAME` (or the labeler's ! key).")
            return EXIT_OK
        concepts = sorted({p.concept for p in items})
        report = run_pins(ws, saved_models(ws, concepts), concepts)
        say(esc(report.text(verbose=not args.failures_only)))
        if report.failed:
            names = "; ".join(f"{r.pin.concept}: segment {r.segment_id} of {r.pin.image}" for r in report.failed)
            say(esc(f"Failing: {names}"))
            return EXIT_INVALID
        return EXIT_OK
    finally:
        ws.close()


def cmd_pin(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        action = args.pin_command
        if action == "list":
            items = pins(ws, args.concept, strict=False)
            for p in items:
                note = f"  ({p.note})" if p.note else ""
                say(esc(f"{p.id}  {p.concept:<14} {p.expect:<8} {p.image} at {p.box}  by {p.by} {p.date[:10]}{note}"))
            say(f"{len(items)} pin{'s' if len(items) != 1 else ''}")
            return EXIT_OK
        if action in ("add", "remove") and args.image is not None and args.concept is None and args.segment:
            args.segment, args.concept = None, args.segment  # `pin remove petal --image P --at X,Y`
        if action == "add":
            segment = _segment_arg(ws, args)
            p = add_pin(ws, segment, args.concept, "must_not" if args.must_not else "must", by=args.by,
                        note=args.note or "")
            say(esc(f"pinned {p.id}: {p.describe()} (pins/{p.concept}.yaml)"))
            return EXIT_OK
        if action == "remove":
            if args.pin:
                p = remove_pin(ws, args.pin, by=args.by, reason=args.reason or "")
            else:
                if args.concept is None:
                    raise PinError("pin remove: give SEGMENT and CONCEPT, or --pin ID")
                p = remove_pin(ws, _segment_arg(ws, args), args.concept, by=args.by, reason=args.reason or "")
            say(esc(f"removed pin {p.id}: {p.describe()}"))
            return EXIT_OK
        raise WorkbenchError(f"pin: unknown action {action!r}")  # pragma: no cover - argparse chooses
    finally:
        ws.close()


def _segment_arg(ws: Workspace, args: argparse.Namespace) -> int:
    """The store segment the command line names: SEGMENT (a store id), or ``--image PATH --at X,Y``."""
    if args.image is not None or args.at is not None:
        if args.image is None or args.at is None:
            raise PinError("--image and --at go together: --image daisy/0003.png --at 40,22")
        x, y = parse_point(args.at)
        return find_segment(ws, args.image, at=(x, y))
    if args.segment is None:
        raise PinError("name the segment: SEGMENT (its id in the label store) or --image PATH --at X,Y")
    try:
        return int(args.segment)
    except ValueError:
        raise PinError(f"SEGMENT is a segment id (a whole number), got {args.segment!r}; or use --image PATH "
                       "--at X,Y") from None


def parse_point(text: str) -> tuple[int, int]:
    """``"40,22"`` → ``(40, 22)``.

    >>> parse_point("40, 22")
    (40, 22)
    """
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise PinError(f"--at takes a pixel as X,Y (e.g. 40,22), got {text!r}") from None
    return x, y
