"""The `workbench` command line: the same operations as the notebooks, headless.

Exit codes scripts can rely on:

* 0 — success;
* 1 — the input was read but is invalid or the operation failed (the message says which file and why);
* 2 — the command line itself is wrong (unknown option, missing argument);
* 130 — interrupted (Ctrl-C).

This module holds the parser and the dispatcher; each command group's handlers live in their own
module (:mod:`.ontology`, :mod:`.dataset`, :mod:`.workspace`, :mod:`.loop`, :mod:`.proposals`,
:mod:`.pull_requests`), and only the chosen command's module is imported.

May import: everything in workbench except workbench.jupyter, workbench.cli
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from workbench._version import __version__
from workbench.cli.common import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, error
from workbench.errors import WorkbenchError
from workbench.review.refs import REF_HELP, REF_OR_COMMIT_HELP

__all__ = ["main", "build_parser"]


def _handler(q: argparse.ArgumentParser, module: str, name: str) -> None:
    """The command ``q`` runs ``workbench.cli.<module>.<name>(args)``."""
    q.set_defaults(handler=(module, name))


# ------------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench",
        description=(
            "Constructability Workbench: build an image classifier out of readable parts.\n"
            "An ontology (concepts and what they are made of) + one tiny net or rule per concept,\n"
            "composed bottom-up, every change a reviewable diff.\n\n"
            "Start here:  workbench demo --quick        (the whole loop on generated data, ~2 min)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _ontology_commands(sub)
    _dataset_commands(sub)
    _loop_commands(sub)
    _proposal_commands(sub)
    _pull_request_commands(sub)
    return p


def _ontology_commands(sub: argparse._SubParsersAction) -> None:
    po = sub.add_parser("ontology", help="validate, show, diff or edit an ontology YAML file")
    so = po.add_subparsers(dest="ontology_command", metavar="ACTION")
    so.required = True
    v = so.add_parser("validate", help="check one or more ontology files; exit 1 if any is invalid")
    v.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _handler(v, "ontology", "cmd_validate")
    s = so.add_parser("show", help="print the ontology as a tree (or its canonical YAML)")
    s.add_argument("file", type=Path, metavar="FILE")
    s.add_argument("--descriptions", "-d", action="store_true", help="include each concept's description")
    s.add_argument("--yaml", action="store_true", help="print the canonical YAML instead of a tree")
    _handler(s, "ontology", "cmd_show")
    d = so.add_parser("diff", help="show what changed between two ontology files")
    d.add_argument("a", type=Path, metavar="OLD")
    d.add_argument("b", type=Path, metavar="NEW")
    d.add_argument("--semantic", action="store_true", help="list the edit operations instead of a text diff")
    d.add_argument("--exit-code", action="store_true", help="exit 1 when the files differ (like git diff)")
    _handler(d, "ontology", "cmd_diff")
    a = so.add_parser("apply-edit", help="apply edit operations from a YAML file (prints the diff first)")
    a.add_argument("file", type=Path, metavar="FILE")
    a.add_argument("--edit", type=Path, required=True, metavar="EDIT.yaml",
                   help="a YAML mapping (one edit) or list of edits, e.g. {op: add_part, parent: x, part: y}")
    a.add_argument("--out", type=Path, help="write here instead of overwriting FILE")
    a.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    _handler(a, "ontology", "cmd_apply_edit")


def _dataset_commands(sub: argparse._SubParsersAction) -> None:
    pd = sub.add_parser("dataset", help="generate the demo data set or check an image folder")
    sd = pd.add_subparsers(dest="dataset_command", metavar="ACTION")
    sd.required = True
    g = sd.add_parser("generate", help="write the generated daisy / not-daisy demo set with part masks")
    g.add_argument("out", type=Path, metavar="DIR")
    g.add_argument("--n-per-class", type=int, default=60, metavar="N", help="images per class (default 60)")
    g.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    g.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    _handler(g, "dataset", "cmd_generate")
    c = sd.add_parser("check", help="load every image of DIR/<class>/<image> and report problems")
    c.add_argument("root", type=Path, metavar="DIR")
    _handler(c, "dataset", "cmd_check")


def _loop_commands(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser("init", help="create a workspace folder (git repository, label store, settings)")
    i.add_argument("path", type=Path, metavar="PATH")
    i.add_argument("--ontology", type=Path, help="ontology YAML to start from (default: the shipped daisy)")
    i.add_argument("--dataset", type=Path, help="image folder <DIR>/<class>/<image> this workspace uses")
    _handler(i, "workspace", "cmd_init")

    def loop_opts(q: argparse.ArgumentParser, segmenting: bool = True) -> None:
        q.add_argument("--segmenter", choices=["weightfree", "sam"], help="default: the workspace setting")
        q.add_argument("--sam-checkpoint", type=Path, metavar="PATH",
                       help="segment-anything checkpoint (.pth); or set WORKBENCH_SAM_CHECKPOINT")
        if segmenting:
            q.add_argument("--workers", type=int, metavar="N", help="worker processes (default: the setting, 1)")
            q.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address, e.g. tcp://host:8786")
            q.add_argument("--no-progress", action="store_true", help="no progress bar")

    sg = sub.add_parser("segment", help="cut every image of a data set into segments and store them")
    sg.add_argument("--workspace", type=Path, required=True, metavar="WS")
    sg.add_argument("--dataset", type=Path, metavar="DIR", help="default: the workspace's data set")
    loop_opts(sg)
    _handler(sg, "loop", "cmd_segment")

    lb = sub.add_parser("label", help="label stored segments headless (from ground-truth part masks)")
    lb.add_argument("--workspace", type=Path, required=True, metavar="WS")
    lb.add_argument("--from-masks", action="store_true", help="use the data set's <image>.parts.png masks")
    lb.add_argument("--dataset", type=Path, metavar="DIR", help="default: the workspace's data set")
    lb.add_argument("--min-overlap", type=float, default=0.5,
                    help="fraction of a segment a part's mask must cover to label it with that part (0.5)")
    _handler(lb, "loop", "cmd_label")

    tr = sub.add_parser("train", help="train the concept models that changed, then print their accuracy")
    tr.add_argument("--workspace", type=Path, required=True, metavar="WS")
    tr.add_argument("--force", action="store_true", help="retrain every concept, changed or not")
    tr.add_argument("--max-epochs", type=int, default=30, help="part nets: at most this many epochs (30)")
    loop_opts(tr, segmenting=False)
    _handler(tr, "loop", "cmd_train")

    rn = sub.add_parser("run", help="the whole loop headless: workspace, segment, label, train, evaluate, report")
    rn.add_argument("--dataset", type=Path, required=True, metavar="DIR")
    rn.add_argument("--ontology", type=Path, required=True, metavar="FILE")
    rn.add_argument("--out", type=Path, required=True, metavar="DIR", help="report and workspace go here")
    rn.add_argument("--segmenter", default="weightfree", choices=["weightfree", "sam"])
    rn.add_argument("--quick", action="store_true", help="fewer epochs: a first look in a few minutes")
    rn.add_argument("--workers", type=int, default=1, metavar="N")
    rn.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address")
    rn.add_argument("--no-progress", action="store_true")
    _handler(rn, "loop", "cmd_run")

    dm = sub.add_parser("demo", help="`run` on the generated daisy data set with ontologies/daisy.yaml")
    dm.add_argument("--out", type=Path, default=Path("demo-out"), metavar="DIR", help="default: ./demo-out")
    dm.add_argument("--quick", action="store_true", help="80 images and fewer epochs (~3 min on 2 cores)")
    dm.add_argument("--workers", type=int, default=1, metavar="N")
    dm.add_argument("--no-progress", action="store_true")
    _handler(dm, "loop", "cmd_demo")


def _proposal_commands(sub: argparse._SubParsersAction) -> None:
    def suggester_opts(q: argparse.ArgumentParser) -> None:
        q.add_argument("--workspace", type=Path, required=True, metavar="WS")
        q.add_argument("--suggester", choices=["scripted", "claude", "replay"],
                       help="default: claude when ANTHROPIC_API_KEY is set, else scripted (the authored demo script)")
        q.add_argument("--script", type=Path, metavar="FILE",
                       help="scripted: the suggestions file (default: the shipped daisy.suggestions.yaml)")
        q.add_argument("--replay-from", type=Path, nargs="+", metavar="FILE",
                       help="replay: saved proposal files whose recorded exchange to replay")
        q.add_argument("--no-save", action="store_true", help="print the proposal, do not save it")

    sg = sub.add_parser("suggest", help="ask a suggester for ontology edits for each image; saves proposals to review")
    suggester_opts(sg)
    sg.add_argument("images", nargs="*", type=Path, metavar="IMAGE")
    sg.add_argument("--batch", action="store_true", help="claude: send all images as one Message Batch (half price)")
    sg.add_argument("--collect", nargs="?", const="", metavar="BATCH_ID",
                    help="fetch a submitted batch's proposals (default: the newest uncollected one)")
    _handler(sg, "proposals", "cmd_suggest")

    rf = sub.add_parser("refactor", help="ask a suggester to merge/rename/split/remove concepts; saves a proposal")
    suggester_opts(rf)
    _handler(rf, "proposals", "cmd_refactor")

    pp = sub.add_parser("proposals", help="list, show, accept or reject the workspace's proposals")
    sp = pp.add_subparsers(dest="proposals_command", metavar="ACTION")
    sp.required = True
    ls = sp.add_parser("list", help="every proposal: id, status, kind, valid edits, author, title")
    ls.add_argument("--workspace", type=Path, required=True, metavar="WS")
    ls.add_argument("--status", choices=["pending", "accepted", "partial", "rejected"])
    sh = sp.add_parser("show", help="one proposal: edits, rationale, problems, lint, and the preview diff")
    ac = sp.add_parser("accept", help="apply (some of) a proposal's edits and commit them, naming who decided")
    rj = sp.add_parser("reject", help="record a rejection; the ontology is not touched")
    for q in (sh, ac, rj):
        q.add_argument("ref", metavar="ID", help=REF_HELP)
        q.add_argument("--workspace", type=Path, required=True, metavar="WS")
    sh.add_argument("--edits", metavar="I,J", help="preview only these edits (e.g. 0,2)")
    ac.add_argument("--edits", metavar="I,J", help="accept only these edits (default: every valid one)")
    for q in (ac, rj):
        q.add_argument("--by", required=True, metavar="NAME", help="the person deciding (recorded and in the commit)")
    ac.add_argument("--note", metavar="TEXT", help="a note for the record and the commit message")
    rj.add_argument("--reason", metavar="TEXT", help="why (recorded in the proposal)")
    for q in (sh, ac, rj, ls):
        _handler(q, "proposals", "cmd_proposals")


def _pull_request_commands(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("history", help="the changes to the workspace's ontology: proposal, who decided, gate")
    h.add_argument("--workspace", type=Path, required=True, metavar="WS")
    h.add_argument("--limit", type=int, metavar="N", help="at most N changes (newest first)")
    _handler(h, "pull_requests", "cmd_history")
    w = sub.add_parser("why", help="which proposal introduced a concept and which last changed it, and why")
    w.add_argument("concept", metavar="CONCEPT")
    w.add_argument("--workspace", type=Path, required=True, metavar="WS")
    _handler(w, "pull_requests", "cmd_why")
    r = sub.add_parser("revert", help="undo one change (proposal id or commit sha) as a new commit")
    r.add_argument("ref", metavar="REF", help=REF_OR_COMMIT_HELP)
    r.add_argument("--workspace", type=Path, required=True, metavar="WS")
    r.add_argument("--by", required=True, metavar="NAME", help="the person deciding (recorded in the commit)")
    r.add_argument("--reason", metavar="TEXT", help="why (goes into the commit message)")
    _handler(r, "pull_requests", "cmd_revert")
    g = sub.add_parser("gate", help="retrain what a proposal affects and judge it (exit 0 only for 'merge')")
    g.add_argument("ref", metavar="ID", help=REF_HELP)
    g.add_argument("--workspace", type=Path, required=True, metavar="WS")
    g.add_argument("--edits", metavar="I,J", help="gate only these edits (default: every valid one)")
    g.add_argument("--merge", action="store_true", help="accept it when the gate does not reject it")
    g.add_argument("--by", metavar="NAME", help="with --merge: the person deciding")
    g.add_argument("--override", metavar="REASON", help="with --merge: merge even on a reject verdict, recording why")
    _handler(g, "pull_requests", "cmd_gate")


# -------------------------------------------------------------------------------------------- dispatcher
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        module, name = args.handler
        # The one lazy import of the command line: only the chosen command's module, so `--help`, a
        # wrong argument and the light commands (`ontology`, `dataset`, `init`) never import torch.
        handler = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except WorkbenchError as e:
        problems = getattr(e, "problems", None)
        if problems and len(problems) > 1:
            error(str(e))
            for pr in problems:
                print(f"  - {pr}", file=sys.stderr)
        else:
            error(str(e))
        return EXIT_INVALID
    except BrokenPipeError:  # `workbench ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
