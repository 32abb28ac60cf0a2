"""The `workbench` command line: the same operations as the notebooks, headless.

Exit codes scripts can rely on:

* 0 — success;
* 1 — the input was read but is invalid or the operation failed (the message says which file and why);
* 2 — the command line itself is wrong (unknown option, missing argument);
* 130 — interrupted (Ctrl-C).

This module holds the parser and the dispatcher; each command group's handlers live in their own
module (:mod:`.ontology`, :mod:`.dataset`, :mod:`.workspace`, :mod:`.loop`, :mod:`.proposals`,
:mod:`.pull_requests`, :mod:`.pins`, :mod:`.review`), and only the chosen command's module is imported.

May import: everything in workbench except workbench.jupyter, workbench.cli
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from workbench._version import __version__
from workbench.cli.common import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_USAGE, error
from workbench.errors import WorkbenchError
from workbench.review.refs import REF_HELP, REF_OR_COMMIT_HELP

#: The scenes of ``workbench dataset generate --scene`` (the keys of workbench.data.datasets.DEMO_SCENES,
#: written out so that parsing the command line imports no data module; a test keeps them equal).
DEMO_SCENE_NAMES = ("daisy", "parts", "house")

__all__ = ["main", "build_parser", "DEMO_QUICK_TIME"]

#: What `workbench demo --quick` takes, measured (the same figure in `--help` and `demo --help`).
DEMO_QUICK_TIME = "80 s on 2 idle CPU cores, up to 4 minutes on a busy machine"

WS_HELP = "the workspace folder (create one with `workbench init WS`)"


def _command(sub: argparse._SubParsersAction, name: str, *, help: str) -> argparse.ArgumentParser:
    """A (sub)command whose one line in its parent's list is also the description of its own ``--help``."""
    return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")


def _fraction(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 < x <= 1:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1, got {text}")
    return x


def _handler(q: argparse.ArgumentParser, module: str, name: str, precheck: str | None = None) -> None:
    """The command ``q`` runs ``workbench.cli.<module>.<name>(args)``; ``precheck`` (a function of
    ``workbench.cli.dataset``) runs first, before the command's module is imported: the quick checks
    of paths and names that should fail in a second, not after torch has loaded."""
    q.set_defaults(handler=(module, name), precheck=precheck)


# ------------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench",
        description=(
            "Constructability Workbench: build an image classifier out of readable parts.\n"
            "An ontology (concepts and what they are made of) + one tiny net or rule per concept,\n"
            "composed bottom-up, every change a reviewable diff.\n\n"
            "Start here:  workbench demo --quick        (the whole loop on generated data, "
            f"{DEMO_QUICK_TIME})"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"workbench {__version__}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND",
                           help="what to do; `workbench COMMAND --help` lists its options")
    sub.required = True
    _ontology_commands(sub)
    _dataset_commands(sub)
    _loop_commands(sub)
    _proposal_commands(sub)
    _pull_request_commands(sub)
    _provisional_commands(sub)
    _pin_commands(sub)
    return p


def _ontology_commands(sub: argparse._SubParsersAction) -> None:
    po = _command(sub, "ontology", help="validate, show, diff or edit an ontology YAML file")
    so = po.add_subparsers(dest="ontology_command", metavar="ACTION",
                         help="`workbench ontology ACTION --help` lists its options")
    so.required = True
    v = _command(so, "validate", help="check one or more ontology files; exit 1 if any is invalid")
    v.add_argument("files", nargs="+", type=Path, metavar="FILE", help="ontology YAML file(s) to check")
    _handler(v, "ontology", "cmd_validate")
    s = _command(so, "show", help="print the ontology as a tree (or its canonical YAML)")
    s.add_argument("file", type=Path, metavar="FILE", help="the ontology YAML file")
    s.add_argument("--descriptions", "-d", action="store_true", help="include each concept's description")
    s.add_argument("--yaml", action="store_true", help="print the canonical YAML instead of a tree")
    _handler(s, "ontology", "cmd_show")
    d = _command(so, "diff", help="show what changed between two ontology files")
    d.add_argument("a", type=Path, metavar="OLD", help="the ontology file before")
    d.add_argument("b", type=Path, metavar="NEW", help="the ontology file after")
    d.add_argument("--semantic", action="store_true", help="list the edit operations instead of a text diff")
    d.add_argument("--exit-code", action="store_true", help="exit 1 when the files differ (like git diff)")
    _handler(d, "ontology", "cmd_diff")
    a = _command(so, "apply-edit", help="apply edit operations from a YAML file (prints the diff first)")
    a.add_argument("file", type=Path, metavar="FILE", help="the ontology YAML file to edit")
    a.add_argument("--edit", type=Path, required=True, metavar="EDIT.yaml",
                   help="a YAML mapping (one edit) or list of edits, e.g. {op: add_part, parent: x, part: y}")
    a.add_argument("--out", type=Path, metavar="FILE", help="write here instead of overwriting FILE")
    a.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    _handler(a, "ontology", "cmd_apply_edit")


def _dataset_commands(sub: argparse._SubParsersAction) -> None:
    pd = _command(sub, "dataset", help="generate the demo data set, check an image folder, import or export part "
                                       "annotations (COCO, LabelMe, masks)")
    sd = pd.add_subparsers(dest="dataset_command", metavar="ACTION",
                         help="`workbench dataset ACTION --help` lists its options")
    sd.required = True
    g = _command(sd, "generate", help="write a generated demo set with part masks (default: daisies among look-alikes)")
    g.add_argument("out", type=Path, metavar="DIR", help="folder to write <DIR>/<class>/<image>.png into")
    g.add_argument("--n-per-class", type=int, default=60, metavar="N", help="images per class (default 60)")
    g.add_argument("--size", type=int, default=256, metavar="PX", help="image side in pixels (default 256)")
    g.add_argument("--seed", type=int, default=0, metavar="N",
                   help="random seed; the same seed gives the same files (default 0)")
    g.add_argument("--scene", choices=DEMO_SCENE_NAMES, default="parts",
                   help="parts (default: daisies among look-alikes in the daisy's colours that differ by one part; "
                        "ontologies/daisy.yaml), daisy (the first demo set: colour alone separates its classes) or "
                        "house (houses among look-alike buildings; ontologies/house.yaml)")
    _handler(g, "dataset", "cmd_generate")
    c = _command(sd, "check", help="load every image of DIR/<class>/<image> and report problems")
    c.add_argument("root", type=Path, metavar="DIR", help="the image folder to check")
    c.add_argument("--ontology", type=Path, metavar="FILE",
                   help="first check that the data set fits this ontology (class folder of the root, parts.json ids, "
                        "rules; names only, before any image is loaded)")
    _handler(c, "dataset", "cmd_check")
    im = _command(sd, "import", help="write part annotations from COCO, LabelMe or mask files as a data set "
                                     "(<class>/<image>, <image>.parts.png, parts.json)")
    im.add_argument("src", type=Path, metavar="SRC",
                    help="coco: the annotation JSON file; labelme: the folder of LabelMe JSON files; masks: the image "
                         "folder")
    im.add_argument("--format", required=True, choices=["coco", "labelme", "masks"], help="the source's format")
    im.add_argument("--out", type=Path, required=True, metavar="DIR", help="the new data set (absent or empty)")
    im.add_argument("--images", type=Path, metavar="DIR",
                    help="coco: the folder file_name is relative to (default: the JSON file's folder); a file not "
                         "there is looked up by name below it")
    im.add_argument("--masks", type=Path, metavar="DIR", help="masks: <DIR>/<image's relative path>.png per image")
    im.add_argument("--legend", type=Path, metavar="FILE",
                    help="masks: YAML/JSON mapping mask value or colour to a part name ({1: head} or "
                         "{'#ff0000': head}; null for background)")
    im.add_argument("--class-from", metavar="HOW",
                    help="supercategory (coco default) or category of the image's annotations, folder (the folder "
                         "holding the image or JSON; labelme and masks default), or a fixed class NAME")
    im.add_argument("--unannotated-class", metavar="NAME",
                    help="coco with --class-from supercategory|category: the class of images without annotations "
                         "(default: leave them out)")
    im.add_argument("--map", type=Path, metavar="FILE",
                    help="YAML mapping source names to concept ids (null: leave out); default: a slug of the name, "
                         "'Quadruped Head' -> quadruped_head")
    im.add_argument("--copy", action="store_true", help="copy the images (default: hard-link them where possible)")
    im.add_argument("--keep-going", action="store_true",
                    help="leave out (and list) images with problems instead of stopping")
    _handler(im, "dataset", "cmd_import")
    ex = _command(sd, "export", help="write part annotations as a COCO JSON file (run-length masks)")
    ex.add_argument("--format", required=True, choices=["coco"], help="the file's format")
    src = ex.add_mutually_exclusive_group(required=True)
    src.add_argument("--workspace", type=Path, metavar="WS", help="the workspace's labelled segments (not 'none')")
    src.add_argument("--dataset", type=Path, metavar="DIR", help="a data set's part masks and parts.json")
    ex.add_argument("--out", type=Path, required=True, metavar="FILE", help="the COCO JSON file to write")
    _handler(ex, "dataset", "cmd_export")


def _loop_commands(sub: argparse._SubParsersAction) -> None:
    i = _command(sub, "init", help="create a workspace folder (git repository, label store, settings)")
    i.add_argument("path", type=Path, metavar="PATH", help="the new workspace folder (must not be a workspace yet)")
    i.add_argument("--ontology", type=Path, metavar="FILE",
                   help="ontology YAML to start from (default: the shipped daisy)")
    i.add_argument("--dataset", type=Path, metavar="DIR", help="image folder <DIR>/<class>/<image> this workspace uses")
    _handler(i, "workspace", "cmd_init")

    def loop_opts(q: argparse.ArgumentParser, segmenting: bool = True) -> None:
        q.add_argument("--segmenter", choices=["weightfree", "sam"],
                       help="weightfree (no model download) or sam (segment-anything); default: the workspace setting")
        q.add_argument("--sam-checkpoint", type=Path, metavar="PATH",
                       help="segment-anything checkpoint (.pth); or set WORKBENCH_SAM_CHECKPOINT")
        if segmenting:
            q.add_argument("--workers", type=int, metavar="N", help="worker processes (default: the setting, 1)")
            q.add_argument("--scheduler", metavar="ADDR",
                           help="Dask scheduler address, e.g. tcp://host:8786 (default: local processes)")
            q.add_argument("--no-progress", action="store_true", help="no progress bar on standard error")

    sg = _command(sub, "segment", help="cut every image of a data set into segments and store them")
    sg.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    sg.add_argument("--dataset", type=Path, metavar="DIR", help="default: the workspace's data set")
    loop_opts(sg)
    _handler(sg, "loop", "cmd_segment", precheck="precheck_segment")

    lb = _command(sub, "label", help="label stored segments headless (from ground-truth part masks)")
    lb.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    lb.add_argument("--from-masks", action="store_true", help="use the data set's <image>.parts.png masks")
    lb.add_argument("--dataset", type=Path, metavar="DIR", help="default: the workspace's data set")
    lb.add_argument("--min-overlap", type=_fraction, default=0.5, metavar="F",
                    help="fraction of a segment a part's mask must cover to label it with that part (0.5)")
    _handler(lb, "loop", "cmd_label")

    tr = _command(sub, "train", help="train the concept models that changed, then print their accuracy")
    tr.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    tr.add_argument("--force", action="store_true", help="retrain every concept, changed or not")
    tr.add_argument("--max-epochs", type=int, default=30, metavar="N", help="part nets: at most this many epochs (30)")
    loop_opts(tr, segmenting=False)
    _handler(tr, "loop", "cmd_train")

    sc = _command(sub, "score", help="score a folder of images with the workspace's trained models: predictions "
                                     "and the concepts that fired, as CSV and JSON")
    sc.add_argument("dir", type=Path, metavar="DIR", help="the images (any depth; *.parts.png masks are left out)")
    sc.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    sc.add_argument("--out", type=Path, default=Path("scores.csv"), metavar="FILE",
                    help="write FILE.csv and FILE.json (default: scores.csv and scores.json here)")
    loop_opts(sc)
    _handler(sc, "score", "cmd_score")

    rn = _command(sub, "run", help="the whole loop headless: workspace, segment, label, train, evaluate, report")
    rn.add_argument("--dataset", type=Path, required=True, metavar="DIR",
                    help="image folder <DIR>/<class>/<image> with ground-truth part masks (parts.json)")
    rn.add_argument("--ontology", type=Path, required=True, metavar="FILE", help="the ontology YAML to build")
    rn.add_argument("--out", type=Path, required=True, metavar="DIR", help="report and workspace go here")
    rn.add_argument("--segmenter", default="weightfree", choices=["weightfree", "sam"],
                    help="weightfree (default; no model download) or sam (segment-anything)")
    rn.add_argument("--quick", action="store_true", help="fewer epochs: a first look in a few minutes")
    rn.add_argument("--seed", type=int, default=0, metavar="N",
                    help="seeds the split (when images are first assigned) and the models (default 0)")
    rn.add_argument("--seeds", type=int, default=1, metavar="K",
                    help="measure every figure with K model seeds (N, N+1, ...; the split stays) and report "
                         "median, range and the paired interval of hybrid − CNN (default 1; each seed adds a run)")
    rn.add_argument("--workers", type=int, default=1, metavar="N",
                    help="worker processes for segmenting and training (default 1)")
    rn.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address, e.g. tcp://host:8786")
    rn.add_argument("--no-progress", action="store_true", help="no progress bars on standard error")
    _handler(rn, "loop", "cmd_run", precheck="precheck_run")

    dm = _command(sub, "demo", help="`run` on a generated data set whose class needs its parts (daisies and "
                                    "look-alikes) with ontologies/daisy.yaml")
    dm.add_argument("--out", type=Path, default=Path("demo-out"), metavar="DIR",
                    help="data set, workspace and report go here (default: ./demo-out)")
    dm.add_argument("--quick", action="store_true", help=f"80 images and fewer epochs ({DEMO_QUICK_TIME})")
    dm.add_argument("--scene", choices=DEMO_SCENE_NAMES, default="parts",
                    help="parts (default: daisies among look-alikes that differ by a part), daisy (the first demo "
                         "set: colour alone reads it) or house (houses among look-alike buildings, "
                         "ontologies/house.yaml)")
    dm.add_argument("--seed", type=int, default=0, metavar="N",
                    help="seeds the generated images, the split and the models (default 0)")
    dm.add_argument("--seeds", type=int, default=1, metavar="K",
                    help="measure every figure with K model seeds and report median and range (default 1)")
    dm.add_argument("--workers", type=int, default=1, metavar="N",
                    help="worker processes for segmenting and training (default 1)")
    dm.add_argument("--no-progress", action="store_true", help="no progress bars on standard error")
    _handler(dm, "loop", "cmd_demo")


def _proposal_commands(sub: argparse._SubParsersAction) -> None:
    def suggester_opts(q: argparse.ArgumentParser) -> None:
        q.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
        q.add_argument("--suggester", choices=["scripted", "claude", "replay"],
                       help="default: claude when ANTHROPIC_API_KEY is set, else scripted (the authored demo script)")
        q.add_argument("--script", type=Path, metavar="FILE",
                       help="scripted: the suggestions file (default: the shipped daisy.suggestions.yaml)")
        q.add_argument("--replay-from", type=Path, nargs="+", metavar="FILE",
                       help="replay: saved proposal files whose recorded exchange to replay")
        q.add_argument("--no-save", action="store_true", help="print the proposal, do not save it")
        q.add_argument("--reviewer", choices=["none", "scripted", "replay", "claude"],
                       help="second reviewer of each saved proposal (default: the workspace's `reviewer` setting, "
                            "scripted unless changed)")

    sg = _command(sub, "suggest", help="ask a suggester for ontology edits for each image; saves proposals to review")
    suggester_opts(sg)
    sg.add_argument("images", nargs="*", type=Path, metavar="IMAGE",
                    help="image file(s) to ask about (none: with --collect, only collect)")
    sg.add_argument("--batch", action="store_true", help="claude: send all images as one Message Batch (half price)")
    sg.add_argument("--collect", nargs="?", const="", metavar="BATCH_ID",
                    help="fetch a submitted batch's proposals (default: the newest uncollected one)")
    _handler(sg, "proposals", "cmd_suggest")

    rf = _command(sub, "refactor", help="ask a suggester to merge/rename/split/remove concepts; saves a proposal")
    suggester_opts(rf)
    _handler(rf, "proposals", "cmd_refactor")

    pp = _command(sub, "proposals", help="list, show, accept or reject the workspace's proposals")
    sp = pp.add_subparsers(dest="proposals_command", metavar="ACTION",
                         help="`workbench proposals ACTION --help` lists its options")
    sp.required = True
    ls = _command(sp, "list", help="every proposal: id, status, kind, valid edits, author, title")
    ls.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    ls.add_argument("--status", choices=["pending", "accepted", "partial", "rejected"],
                    help="only proposals with this status (default: all)")
    sh = _command(sp, "show", help="one proposal: edits, rationale, problems, lint, and the preview diff")
    ac = _command(sp, "accept", help="apply (some of) a proposal's edits and commit them, naming who decided")
    rj = _command(sp, "reject", help="record a rejection; the ontology is not touched")
    for q in (sh, ac, rj):
        q.add_argument("ref", metavar="ID", help=REF_HELP)
        q.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    sh.add_argument("--edits", metavar="I,J", help="preview only these edits (e.g. 0,2)")
    ac.add_argument("--edits", metavar="I,J", help="accept only these edits (default: every valid one)")
    for q in (ac, rj):
        q.add_argument("--by", required=True, metavar="NAME", help="the person deciding (recorded and in the commit)")
    ac.add_argument("--note", metavar="TEXT", help="a note for the record and the commit message")
    rj.add_argument("--reason", metavar="TEXT", help="why (recorded in the proposal)")
    for q in (sh, ac, rj, ls):
        _handler(q, "proposals", "cmd_proposals")

    rv = _command(sub, "review", help="a second reviewer's findings on a proposal (stored beside its edits; advice, "
                                      "never a decision)")
    rv.add_argument("ref", metavar="ID", help=REF_HELP)
    rv.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    rv.add_argument("--reviewer", choices=["scripted", "replay", "claude"],
                    help="default: the workspace's `reviewer` setting (scripted: the checks plus findings authored "
                         "for the demo; claude needs ANTHROPIC_API_KEY; replay re-reads a recorded model review)")
    rv.add_argument("--replay-from", type=Path, nargs="+", metavar="FILE",
                    help="replay: proposal files holding a recorded model review of the same edits")
    _handler(rv, "review", "cmd_review")


def _pull_request_commands(sub: argparse._SubParsersAction) -> None:
    h = _command(sub, "history", help="the changes to the workspace's ontology: proposal, who decided, gate")
    h.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    h.add_argument("--limit", type=int, metavar="N", help="at most N changes (newest first)")
    _handler(h, "pull_requests", "cmd_history")
    w = _command(sub, "why", help="which proposal introduced a concept and which last changed it, and why")
    w.add_argument("concept", metavar="CONCEPT", help="the concept's id, e.g. petal")
    w.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    _handler(w, "pull_requests", "cmd_why")
    r = _command(sub, "revert", help="undo one change (proposal id or commit sha) as a new commit")
    r.add_argument("ref", metavar="REF", help=REF_OR_COMMIT_HELP)
    r.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    r.add_argument("--by", required=True, metavar="NAME", help="the person deciding (recorded in the commit)")
    r.add_argument("--reason", metavar="TEXT", help="why (goes into the commit message)")
    _handler(r, "pull_requests", "cmd_revert")
    g = _command(sub, "gate", help="retrain what a proposal affects and judge it (exit 0 only for 'merge')")
    g.add_argument("ref", metavar="ID", help=REF_HELP)
    g.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    g.add_argument("--edits", metavar="I,J", help="gate only these edits (default: every valid one)")
    g.add_argument("--merge", action="store_true", help="accept it when the gate does not reject it")
    g.add_argument("--by", metavar="NAME", help="with --merge: the person deciding")
    g.add_argument("--override", metavar="REASON", help="with --merge: merge even on a reject verdict, recording why")
    _handler(g, "pull_requests", "cmd_gate")


def _provisional_commands(sub: argparse._SubParsersAction) -> None:
    pv = _command(sub, "provisional", help="the provisional concepts (accepted additions not yet confirmed): labels, "
                                          "what the gate needs, the last verdict")
    pv.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    pv.add_argument("--gate", action="store_true",
                    help="run the gate (composition with vs without) for each one with enough labels and record it")
    _handler(pv, "pull_requests", "cmd_provisional")
    cf = _command(sub, "confirm", help="confirm a provisional concept: gate it, then its parents combine it "
                                      "(a commit holding the verdict)")
    rm = _command(sub, "remove", help="remove a provisional concept (a commit; its labels stay in the store)")
    for q in (cf, rm):
        q.add_argument("concept", metavar="CONCEPT", help="the provisional concept's id, e.g. bud")
        q.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
        q.add_argument("--by", required=True, metavar="NAME", help="the person deciding (recorded in the commit)")
    cf.add_argument("--override", metavar="REASON", help="confirm even without a 'merge' verdict, recording why")
    rm.add_argument("--reason", metavar="TEXT", help="why (goes into the commit message)")
    _handler(cf, "pull_requests", "cmd_confirm")
    _handler(rm, "pull_requests", "cmd_remove")


def _pin_commands(sub: argparse._SubParsersAction) -> None:
    t = _command(sub, "test", help="run the workspace's pins (per-concept tests) against its trained models; "
                                   "exit 1 when any fails")
    t.add_argument("concept", nargs="?", metavar="CONCEPT", help="only this concept's pins (default: all)")
    t.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    t.add_argument("--failures-only", action="store_true", help="list only failing, stale and skipped pins")
    _handler(t, "pins", "cmd_test")
    pn = _command(sub, "pin", help="add, remove or list pins: segments a concept's model must (or must not) "
                                   "score as that concept")
    sp = pn.add_subparsers(dest="pin_command", metavar="ACTION", help="`workbench pin ACTION --help` lists its options")
    sp.required = True
    a = _command(sp, "add", help="pin a segment: CONCEPT's model must score it as CONCEPT (--not: must not); commits "
                                 "pins/CONCEPT.yaml")
    r = _command(sp, "remove", help="remove a pin (SEGMENT CONCEPT, or --pin ID for a stale one); commits the change")
    for q in (a, r):
        q.add_argument("segment", nargs="?", metavar="SEGMENT", help="the segment's id in the label store")
        q.add_argument("concept", nargs="?" if q is r else None, metavar="CONCEPT", help="a part concept, e.g. petal")
        q.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
        q.add_argument("--by", required=True, metavar="NAME", help="the person (recorded in the pin and the commit)")
        q.add_argument("--image", metavar="PATH", help="instead of SEGMENT: the image as stored (e.g. daisy/0003.png)")
        q.add_argument("--at", metavar="X,Y", help="with --image: the smallest segment covering this pixel")
        _handler(q, "pins", "cmd_pin")
    a.add_argument("--not", dest="must_not", action="store_true", help="the model must NOT score it as CONCEPT")
    a.add_argument("--note", metavar="TEXT", help="why (kept in the pin and the commit message)")
    r.add_argument("--pin", metavar="ID", help="the pin's id, as `workbench pin list` shows it")
    r.add_argument("--reason", metavar="TEXT", help="why (goes into the commit message)")
    ls = _command(sp, "list", help="every pin: id, concept, expectation, image, box, who and when")
    ls.add_argument("concept", nargs="?", metavar="CONCEPT", help="only this concept's pins")
    ls.add_argument("--workspace", type=Path, required=True, metavar="WS", help=WS_HELP)
    _handler(ls, "pins", "cmd_pin")


# -------------------------------------------------------------------------------------------- dispatcher
def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's (sub)commands by name; empty when it has none."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _unknown_command(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """``"unknown command 'trian'; did you mean 'train'?"`` when a word in a command's place is not one,
    else None (argparse handles everything else). Only the leading words are looked at: options come
    after the command, and the top level has no option that takes a value."""
    words: list[str] = []
    for word in argv:
        if word.startswith("-"):
            return None  # --help, --version, or an option argparse will judge
        choices = _subcommands(parser)
        if not choices:
            return None
        if word not in choices:
            said = " ".join([*words, word])
            close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
            if close:
                return f"unknown command {said!r}; did you mean {' '.join([*words, close[0]])!r}?"
            return (f"unknown command {said!r}; the commands{' of ' + ' '.join(words) if words else ''} are: "
                    f"{', '.join(choices)}")
        words.append(word)
        parser = choices[word]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    unknown = _unknown_command(parser, argv)
    if unknown is not None:
        print(f"workbench: {unknown}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USAGE)
    args = parser.parse_args(argv)
    try:
        module, name = args.handler
        if getattr(args, "precheck", None):
            getattr(importlib.import_module(f"{__name__}.dataset"), args.precheck)(args)
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
