"""The `workbench` command line: the same operations as the notebooks, headless.

Exit codes scripts can rely on:

* 0 — success;
* 1 — the input was read but is invalid or the operation failed (the message says which file and why);
* 2 — the command line itself is wrong (unknown option, missing argument);
* 130 — interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from workbench import __version__
from workbench.errors import WorkbenchError

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

def _out(msg: str = "") -> None:
    print(msg, flush=True)


def _err(msg: str) -> None:
    print(f"workbench: error: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- ontology
def _cmd_ontology_validate(args: argparse.Namespace) -> int:
    from workbench.errors import OntologyError
    from workbench.ontology.graph import Ontology

    status = EXIT_OK
    for f in args.files:
        try:
            o = Ontology.load(f)
        except OntologyError as e:
            status = EXIT_INVALID
            _err(f"{f}: invalid ontology ({len(e.problems)} problem{'s' if len(e.problems) != 1 else ''})")
            for p in e.problems:
                print(f"  - {p}", file=sys.stderr)
            continue
        _out(f"{f}: ok — {len(o.concepts)} concepts, root {o.root!r}, {len(o.leaves())} parts")
    return status


def _cmd_ontology_show(args: argparse.Namespace) -> int:
    from workbench.ontology.graph import Ontology

    o = Ontology.load(args.file)
    if args.yaml:
        sys.stdout.write(o.dumps())
        return EXIT_OK

    def walk(cid: str, depth: int, seen: set[str]) -> None:
        c = o.concepts[cid]
        impl = c.implementation if c.implementation == "net" else f"rule:{c.rule}"
        again = " (see above)" if cid in seen else ""
        _out(f"{'  ' * depth}- {cid} [{impl}] {c.label}{again}")
        if cid in seen:
            return
        seen.add(cid)
        if args.descriptions and c.description:
            _out(f"{'  ' * depth}    {c.description.strip()}")
        for p in o.parts(cid):
            walk(p, depth + 1, seen)

    walk(o.root, 0, set())
    return EXIT_OK


def _cmd_ontology_diff(args: argparse.Namespace) -> int:
    from workbench.ontology.edits import semantic_diff, text_diff
    from workbench.ontology.graph import Ontology

    a, b = Ontology.load(args.a), Ontology.load(args.b)
    if args.semantic:
        edits = semantic_diff(a, b)
        from workbench._io import dump_yaml

        sys.stdout.write(dump_yaml([e.to_dict() for e in edits]) if edits else "")
        return EXIT_INVALID if (edits and args.exit_code) else EXIT_OK
    diff = text_diff(a, b, str(args.a), str(args.b))
    sys.stdout.write(diff)
    return EXIT_INVALID if (diff and args.exit_code) else EXIT_OK


def _cmd_ontology_apply_edit(args: argparse.Namespace) -> int:
    from workbench._io import read_yaml_file
    from workbench.errors import EditError
    from workbench.ontology.edits import apply_edits, edit_from_dict, text_diff
    from workbench.ontology.graph import Ontology

    o = Ontology.load(args.file)
    data = read_yaml_file(args.edit, EditError)
    items = data if isinstance(data, list) else [data]
    try:
        edits = [edit_from_dict(d) for d in items]
    except EditError as e:
        raise EditError(f"{args.edit}: {e}", problems=[f"{args.edit}: {p}" for p in e.problems]) from None
    new = apply_edits(o, edits)
    sys.stdout.write(text_diff(o, new, str(args.file), str(args.out or args.file)))
    if args.dry_run:
        return EXIT_OK
    new.save(args.out or args.file)
    _out(f"wrote {args.out or args.file}")
    return EXIT_OK


# ----------------------------------------------------------------------------------------------- dataset
def _cmd_dataset_generate(args: argparse.Namespace) -> int:
    import time

    from workbench.data.datasets import generate_demo

    t0 = time.perf_counter()
    folder = generate_demo(args.out, n_per_class=args.n_per_class, size=args.size, seed=args.seed)
    n = len(folder.records)
    _out(f"generated {n} images in {time.perf_counter() - t0:.1f} s under {args.out} "
         f"(classes: {', '.join(folder.classes)}; ground-truth part masks: parts.json)")
    return EXIT_OK


def _cmd_dataset_check(args: argparse.Namespace) -> int:
    from workbench.data.datasets import check_dataset

    report = check_dataset(args.root)
    _out(str(report))
    return EXIT_INVALID if report.problems else EXIT_OK


# -------------------------------------------------------------------------------------- workspace + loop
def _cmd_init(args: argparse.Namespace) -> int:
    from workbench.ontology.graph import Ontology
    from workbench.ontology.shipped import shipped_ontology
    from workbench.workspace.folder import Workspace
    from workbench.workspace.settings import Settings

    onto = Ontology.load(args.ontology or shipped_ontology("daisy"))
    settings = Settings(dataset=str(Path(args.dataset).resolve()) if args.dataset else None)
    ws = Workspace.create(args.path, onto, settings)
    _out(f"created workspace {ws.path} (ontology {onto.name!r}, {len(onto.concepts)} concepts; git: "
         f"{'yes' if ws.has_git else 'no'})")
    _out(f"next: workbench segment --workspace {args.path} --dataset DIR")
    ws.close()
    return EXIT_OK


def _open_ws(path: Path):
    from workbench.workspace.folder import Workspace

    return Workspace.open(path)


def _segmenter_from(args: argparse.Namespace, ws):
    from workbench.data.segment import make_segmenter

    name = args.segmenter or ws.settings.segmenter
    opts = dict(ws.settings.segmenter_options)
    if name == "sam":
        ckpt = getattr(args, "sam_checkpoint", None) or ws.settings.sam_checkpoint
        if ckpt:
            opts["checkpoint"] = str(ckpt)
    return make_segmenter(name, **opts)


def _cmd_segment(args: argparse.Namespace) -> int:
    from workbench.data.datasets import ImageFolder
    from workbench.data.segment import segment_dataset
    from workbench.parallel import executor as make_executor

    ws = _open_ws(args.workspace)
    try:
        if not (args.dataset or ws.settings.dataset):
            raise WorkbenchError("no data set: pass --dataset DIR (an image folder <DIR>/<class>/<image>)")
        dataset = Path(args.dataset) if args.dataset else ws.dataset_root
        if ws.dataset_root.resolve() != dataset.resolve():
            ws.save_settings(ws.settings.replace(dataset=str(dataset.resolve())))
        folder = ImageFolder(dataset)
        seg = _segmenter_from(args, ws)
        workers = args.workers or ws.settings.workers
        with make_executor(workers=workers, scheduler=args.scheduler or ws.settings.scheduler,
                           threads=ws.settings.torch_threads) as ex:
            rep = segment_dataset(ws.store, folder, seg, executor=ex, cache_dir=ws.cache_dir / "segments",
                                  progress=not args.no_progress)
        _out(rep.summary())
        return EXIT_INVALID if rep.problems and not rep.images else EXIT_OK
    finally:
        ws.close()


def _cmd_label(args: argparse.Namespace) -> int:
    from workbench.data.datasets import ImageFolder
    from workbench.data.labelers import label_from_masks

    if not args.from_masks:
        _err("only --from-masks labels headless; a person labels in the notebook: "
             "`wb = workbench.open(WS); wb.label()`")
        return EXIT_USAGE
    ws = _open_ws(args.workspace)
    try:
        if not (args.dataset or ws.settings.dataset):
            raise WorkbenchError("no data set: pass --dataset DIR")
        dataset = args.dataset or ws.dataset_root
        folder = ImageFolder(dataset)
        if not folder.has_parts:
            raise WorkbenchError(f"{dataset}: no parts.json with ground-truth part masks to label from")
        rep = label_from_masks(ws.store, folder, ws.ontology, min_overlap=args.min_overlap)
        _out(f"labelled from ground-truth masks (source=ground_truth, never counted as a person's): {rep.summary()}")
        return EXIT_OK
    finally:
        ws.close()


def _cmd_train(args: argparse.Namespace) -> int:
    from workbench.data.segment import settings_hash
    from workbench.evaluation.evaluate import concept_metrics, hybrid_metrics
    from workbench.models.train import TrainConfig, collect, split_images, train_hybrid

    ws = _open_ws(args.workspace)
    try:
        onto = ws.ontology
        shash = settings_hash(_segmenter_from(args, ws))
        config = TrainConfig(crop_size=ws.settings.crop_size, random_state=ws.settings.random_state,
                             n_threads=ws.settings.torch_threads, max_epochs=args.max_epochs,
                             relations=ws.settings.composition_relations)
        images, segments = collect(ws.store, shash, config.crop_size, image_root=ws.dataset_root,
                                   cache_dir=ws.cache_dir, on_problem=lambda p, r: _err(f"{p}: {r} (skipped)"))
        if not len(segments):
            raise WorkbenchError(f"{ws.path}: no segments yet: run `workbench segment --workspace {ws.path} --dataset DIR`")
        images.split = split_images(images, config.val_fraction, config.random_state)
        result = train_hybrid(onto, images, segments, config, models_dir=ws.models_dir, settings_hash=shash,
                              force=args.force)
        _out(result.summary())
        m = hybrid_metrics(onto, result.models, images, segments)
        for c, cm in concept_metrics(onto, result.models, images, segments).items():
            acc = cm["val_accuracy"]
            _out(f"  {c:<16} {cm['kind']:<9} {cm['params']:>5} params  val accuracy "
                 f"{'–' if acc is None else f'{acc:.1%}'}")
        _out(f"hybrid: val accuracy {m['val_accuracy']}, balanced {m['balanced_accuracy']} on {m['val_images']} images")
        return EXIT_OK
    finally:
        ws.close()


def _cmd_run(args: argparse.Namespace) -> int:
    from workbench.evaluation.pipeline import run

    run(args.dataset, args.ontology, args.out, segmenter=args.segmenter, quick=args.quick, workers=args.workers,
        scheduler=args.scheduler, progress=not args.no_progress)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from workbench.evaluation.pipeline import demo

    demo(args.out, quick=args.quick, workers=args.workers, progress=not args.no_progress)
    return EXIT_OK


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

    # ontology
    po = sub.add_parser("ontology", help="validate, show, diff or edit an ontology YAML file")
    so = po.add_subparsers(dest="ontology_command", metavar="ACTION")
    so.required = True
    v = so.add_parser("validate", help="check one or more ontology files; exit 1 if any is invalid")
    v.add_argument("files", nargs="+", type=Path, metavar="FILE")
    v.set_defaults(func=_cmd_ontology_validate)
    s = so.add_parser("show", help="print the ontology as a tree (or its canonical YAML)")
    s.add_argument("file", type=Path, metavar="FILE")
    s.add_argument("--descriptions", "-d", action="store_true", help="include each concept's description")
    s.add_argument("--yaml", action="store_true", help="print the canonical YAML instead of a tree")
    s.set_defaults(func=_cmd_ontology_show)
    d = so.add_parser("diff", help="show what changed between two ontology files")
    d.add_argument("a", type=Path, metavar="OLD")
    d.add_argument("b", type=Path, metavar="NEW")
    d.add_argument("--semantic", action="store_true", help="list the edit operations instead of a text diff")
    d.add_argument("--exit-code", action="store_true", help="exit 1 when the files differ (like git diff)")
    d.set_defaults(func=_cmd_ontology_diff)
    a = so.add_parser("apply-edit", help="apply edit operations from a YAML file (prints the diff first)")
    a.add_argument("file", type=Path, metavar="FILE")
    a.add_argument("--edit", type=Path, required=True, metavar="EDIT.yaml",
                   help="a YAML mapping (one edit) or list of edits, e.g. {op: add_part, parent: x, part: y}")
    a.add_argument("--out", type=Path, help="write here instead of overwriting FILE")
    a.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    a.set_defaults(func=_cmd_ontology_apply_edit)

    # dataset
    pd = sub.add_parser("dataset", help="generate the demo data set or check an image folder")
    sd = pd.add_subparsers(dest="dataset_command", metavar="ACTION")
    sd.required = True
    g = sd.add_parser("generate", help="write the generated daisy / not-daisy demo set with part masks")
    g.add_argument("out", type=Path, metavar="DIR")
    g.add_argument("--n-per-class", type=int, default=60, metavar="N", help="images per class (default 60)")
    g.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    g.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    g.set_defaults(func=_cmd_dataset_generate)
    c = sd.add_parser("check", help="load every image of DIR/<class>/<image> and report problems")
    c.add_argument("root", type=Path, metavar="DIR")
    c.set_defaults(func=_cmd_dataset_check)


    # workspace and the loop
    i = sub.add_parser("init", help="create a workspace folder (git repository, label store, settings)")
    i.add_argument("path", type=Path, metavar="PATH")
    i.add_argument("--ontology", type=Path, help="ontology YAML to start from (default: the shipped daisy)")
    i.add_argument("--dataset", type=Path, help="image folder <DIR>/<class>/<image> this workspace uses")
    i.set_defaults(func=_cmd_init)

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
    sg.set_defaults(func=_cmd_segment)

    lb = sub.add_parser("label", help="label stored segments headless (from ground-truth part masks)")
    lb.add_argument("--workspace", type=Path, required=True, metavar="WS")
    lb.add_argument("--from-masks", action="store_true", help="use the data set's <image>.parts.png masks")
    lb.add_argument("--dataset", type=Path, metavar="DIR", help="default: the workspace's data set")
    lb.add_argument("--min-overlap", type=float, default=0.5,
                    help="fraction of a segment a part's mask must cover to label it with that part (0.5)")
    lb.set_defaults(func=_cmd_label)

    tr = sub.add_parser("train", help="train the concept models that changed, then print their accuracy")
    tr.add_argument("--workspace", type=Path, required=True, metavar="WS")
    tr.add_argument("--force", action="store_true", help="retrain every concept, changed or not")
    tr.add_argument("--max-epochs", type=int, default=30, help="part nets: at most this many epochs (30)")
    loop_opts(tr, segmenting=False)
    tr.set_defaults(func=_cmd_train)

    rn = sub.add_parser("run", help="the whole loop headless: workspace, segment, label, train, evaluate, report")
    rn.add_argument("--dataset", type=Path, required=True, metavar="DIR")
    rn.add_argument("--ontology", type=Path, required=True, metavar="FILE")
    rn.add_argument("--out", type=Path, required=True, metavar="DIR", help="report and workspace go here")
    rn.add_argument("--segmenter", default="weightfree", choices=["weightfree", "sam"])
    rn.add_argument("--quick", action="store_true", help="fewer epochs: a first look in a few minutes")
    rn.add_argument("--workers", type=int, default=1, metavar="N")
    rn.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address")
    rn.add_argument("--no-progress", action="store_true")
    rn.set_defaults(func=_cmd_run)

    dm = sub.add_parser("demo", help="`run` on the generated daisy data set with ontologies/daisy.yaml")
    dm.add_argument("--out", type=Path, default=Path("demo-out"), metavar="DIR", help="default: ./demo-out")
    dm.add_argument("--quick", action="store_true", help="80 images and fewer epochs (~3 min on 2 cores)")
    dm.add_argument("--workers", type=int, default=1, metavar="N")
    dm.add_argument("--no-progress", action="store_true")
    dm.set_defaults(func=_cmd_demo)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return p


#: Other modules' commands register here (kept as functions so `--help` stays fast: no heavy imports).
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


# ------------------------------------------------------------------- suggest / refactor / proposals
def _suggester_from(args: argparse.Namespace, ws):
    from workbench.review.suggest import make_suggester

    name = args.suggester or ("claude" if os.environ.get("ANTHROPIC_API_KEY") else "scripted")
    options: dict = {}
    if name == "scripted" and args.script:
        options["path"] = args.script
    if name == "replay" and args.replay_from:
        options["proposal_files"] = [str(f) for f in args.replay_from]
    s = make_suggester(name, ws, **options)
    _out(f"suggester: {getattr(s, 'author', None) or s.name}" + ("" if args.suggester else
         " (default: claude when ANTHROPIC_API_KEY is set, else the scripted demo; choose with --suggester)"))
    return s


def _print_proposal(ws, p, *, with_preview: bool = True, accept=None) -> None:
    from workbench.errors import ProposalError
    from workbench.review.proposals import escape_terminal as esc
    from workbench.review.proposals import preview

    _out(f"proposal {p.id or '(not saved)'} [{p.status}] {p.kind} by {esc(p.author)}, {p.created}")
    _out(f"  title: {esc(p.title)}")
    if p.evidence.image:
        _out(f"  image: {esc(p.evidence.image)}")
    if p.rationale:
        _out(f"  rationale: {esc(p.rationale)}")
    if not p.edits:
        _out("  (no edits)")
    for i, e in enumerate(p.edits):
        _out(f"  [{i}] {esc(e.summary())}  — {e.decision}")
        if e.rationale:
            _out(f"      why: {esc(e.rationale)}")
        if e.problem:
            _out(f"      problem: {esc(e.problem)}")
        for w in e.lint:
            _out(f"      lint: {esc(w)}")
    if p.commit:
        _out(f"  commit: {p.commit}")
    if not with_preview or p.status != "pending" or not p.valid_edits:
        return
    try:
        pv = preview(ws, p, accept)
    except ProposalError as err:
        _out(f"  preview: {esc(err)}")
        return
    if pv.stale:
        _out("  note: the ontology changed since this proposal was made; the edits were checked again")
    _out(f"  accepting edits {','.join(map(str, pv.chosen))} would:")
    _out(f"    add: {', '.join(pv.added) or '-'}; remove: {', '.join(pv.removed) or '-'}; "
         f"change: {', '.join(pv.changed) or '-'}")
    touched = ", ".join(f"[{i}] {n}" for i, n in pv.labels_touched.items() if n)
    _out(f"    labelled segments touched: {touched or 'none'}")
    _out(f"    retrain: {', '.join(pv.retrain) or 'nothing'}")
    sys.stdout.write(esc(pv.diff))


def _edit_indices(text: str | None):
    if text is None:
        return None
    from workbench.errors import ProposalError

    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ProposalError(f"--edits takes edit numbers separated by commas (e.g. 0,2), got {text!r}") from None


def _cmd_suggest(args: argparse.Namespace) -> int:
    from workbench.errors import SuggesterError
    from workbench.review.suggest import _image_context, suggest_images

    ws = _open_ws(args.workspace)
    try:
        if args.collect is not None:
            from workbench.review.claude import BatchPending, collect_batch

            try:
                proposals, failures = collect_batch(ws, args.collect or None)
            except BatchPending as e:
                _out(f"batch still processing: {e}")
                return EXIT_OK
            for p in proposals:
                _print_proposal(ws, p, with_preview=False)
            for cid, why in failures:
                _out(f"failed: {cid}: {why}")
            _out(f"{len(proposals)} proposals, {len(failures)} failures; review: workbench proposals list "
                 f"--workspace {args.workspace}")
            return EXIT_INVALID if failures and not proposals else EXIT_OK
        if not args.images:
            raise SuggesterError("give the image files to suggest for (or --collect to fetch a batch)")
        suggester = _suggester_from(args, ws)
        if args.batch:
            from workbench.data.datasets import load_image
            from workbench.review.claude import ClaudeSuggester, submit_batch

            if not isinstance(suggester, ClaudeSuggester):
                raise SuggesterError("--batch sends the images with Claude's Message Batches API: use --suggester claude")
            items = [(load_image(f), _image_context(ws, Path(f))) for f in args.images]
            batch_id = submit_batch(ws, items, suggester)
            _out(f"submitted batch {batch_id} ({len(items)} images, half price); collect the proposals with: "
                 f"workbench suggest --workspace {args.workspace} --collect")
            return EXIT_OK
        for p in suggest_images(ws, suggester, args.images, save=not args.no_save):
            _print_proposal(ws, p)
        _out(f"review: workbench proposals show --workspace {args.workspace} ID; "
             "accept: workbench proposals accept ... --by NAME")
        return EXIT_OK
    finally:
        ws.close()


def _cmd_refactor(args: argparse.Namespace) -> int:
    from workbench.review.suggest import refactor_workspace

    ws = _open_ws(args.workspace)
    try:
        p = refactor_workspace(ws, _suggester_from(args, ws), save=not args.no_save)
        _print_proposal(ws, p)
        return EXIT_OK
    finally:
        ws.close()


def _cmd_proposals(args: argparse.Namespace) -> int:
    from workbench.review.proposals import ProposalStore, accept, reject
    from workbench.review.proposals import escape_terminal as esc

    ws = _open_ws(args.workspace)
    try:
        store = ProposalStore(ws)
        if args.proposals_command == "list":
            ps = store.list(args.status)
            for p in ps:
                _out(f"{p.id}  {p.status:<8} {p.kind:<8} {len(p.valid_edits)}/{len(p.edits)} valid  "
                     f"{esc(p.author)}: {esc(p.title)}")
            _out(f"{len(ps)} proposal{'s' if len(ps) != 1 else ''}")
        elif args.proposals_command == "show":
            _print_proposal(ws, store.load(args.ref), accept=_edit_indices(args.edits))
        elif args.proposals_command == "accept":
            p = accept(ws, args.ref, _edit_indices(args.edits), by=args.by, note=args.note or "")
            _print_proposal(ws, p, with_preview=False)
            _out(f"applied and committed ({p.status}): {p.commit or 'no git commit'}")
        elif args.proposals_command == "reject":
            p = reject(ws, args.ref, by=args.by, reason=args.reason or "")
            _out(f"proposal {p.id} rejected by {esc(args.by)}; the ontology is unchanged")
        return EXIT_OK
    finally:
        ws.close()


def _register_proposals(sub: argparse._SubParsersAction) -> None:
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
    sg.set_defaults(func=_cmd_suggest)

    rf = sub.add_parser("refactor", help="ask a suggester to merge/rename/split/remove concepts; saves a proposal")
    suggester_opts(rf)
    rf.set_defaults(func=_cmd_refactor)

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
        q.add_argument("ref", metavar="ID", help="7, 0007 or proposals/0007.yaml")
        q.add_argument("--workspace", type=Path, required=True, metavar="WS")
    sh.add_argument("--edits", metavar="I,J", help="preview only these edits (e.g. 0,2)")
    ac.add_argument("--edits", metavar="I,J", help="accept only these edits (default: every valid one)")
    for q in (ac, rj):
        q.add_argument("--by", required=True, metavar="NAME", help="the person deciding (recorded and in the commit)")
    ac.add_argument("--note", metavar="TEXT", help="a note for the record and the commit message")
    rj.add_argument("--reason", metavar="TEXT", help="why (recorded in the proposal)")
    for q in (sh, ac, rj, ls):
        q.set_defaults(func=_cmd_proposals)


_EXTRA_COMMANDS.append(_register_proposals)


# ------------------------------------------------------------------- the pull-request loop: history, gate
def _cmd_history(args: argparse.Namespace) -> int:
    from workbench.review.history import history
    from workbench.review.proposals import escape_terminal as esc

    ws = _open_ws(args.workspace)
    try:
        changes = history(ws, limit=args.limit)
        for c in changes:
            _out(f"{c.short}  {c.date[:10]}  {esc(c.summary().split(' ', 1)[1])}")
            if c.gate:
                _out(f"    Gate: {esc(c.gate)}")
            if c.reverts:
                _out(f"    reverts {c.reverts[:12]}")
            if c.reverted_by:
                _out(f"    reverted by {c.reverted_by[:12]}")
            if c.concepts:
                _out(f"    concepts: {esc(', '.join(c.concepts))}")
        _out(f"{len(changes)} change{'s' if len(changes) != 1 else ''} to the ontology")
        return EXIT_OK
    finally:
        ws.close()


def _cmd_why(args: argparse.Namespace) -> int:
    from workbench.review.history import why
    from workbench.review.proposals import escape_terminal as esc

    ws = _open_ws(args.workspace)
    try:
        _out(esc(why(ws, args.concept).summary()))
        return EXIT_OK
    finally:
        ws.close()


def _cmd_revert(args: argparse.Namespace) -> int:
    from workbench.review.history import revert
    from workbench.review.proposals import escape_terminal as esc

    ws = _open_ws(args.workspace)
    try:
        c = revert(ws, args.ref, by=args.by, reason=args.reason or "")
        _out(f"reverted {c.reverts[:12] if c.reverts else args.ref} as a new commit {c.short}: {esc(c.title)}")
        return EXIT_OK
    finally:
        ws.close()


def _cmd_gate(args: argparse.Namespace) -> int:
    from workbench.review.gate import GateRejected, apply_proposal, gate
    from workbench.review.proposals import escape_terminal as esc

    ws = _open_ws(args.workspace)
    try:
        accept = _edit_indices(args.edits)
        if args.merge:
            if not args.by:
                raise WorkbenchError("--merge needs --by NAME (the person deciding; recorded in the commit)")
            try:
                p, v = apply_proposal(ws, args.ref, accept, by=args.by, override=args.override)
            except GateRejected as e:
                _out(esc(e.verdict.summary()))
                _out(esc(e.verdict.message))
                raise
            _out(esc(v.summary()) if v else "merged without the gate")
            _out(f"merged proposal {p.id} ({p.status}): commit {p.commit or 'none'}")
            return EXIT_OK
        v = gate(ws, args.ref, accept)
        _out(esc(v.summary()))
        _out(esc(v.message))
        if v.retrained:
            _out(f"retrained: {', '.join(v.retrained)} ({v.seconds:.1f} s)")
        return EXIT_OK if v.decision == "merge" else EXIT_INVALID
    finally:
        ws.close()


def _register_pr_loop(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("history", help="the changes to the workspace's ontology: proposal, who decided, gate")
    h.add_argument("--workspace", type=Path, required=True, metavar="WS")
    h.add_argument("--limit", type=int, metavar="N", help="at most N changes (newest first)")
    h.set_defaults(func=_cmd_history)
    w = sub.add_parser("why", help="which proposal introduced a concept and which last changed it, and why")
    w.add_argument("concept", metavar="CONCEPT")
    w.add_argument("--workspace", type=Path, required=True, metavar="WS")
    w.set_defaults(func=_cmd_why)
    r = sub.add_parser("revert", help="undo one change (proposal id or commit sha) as a new commit")
    r.add_argument("ref", metavar="REF", help="a proposal id (7, 0007) or a commit sha")
    r.add_argument("--workspace", type=Path, required=True, metavar="WS")
    r.add_argument("--by", required=True, metavar="NAME", help="the person deciding (recorded in the commit)")
    r.add_argument("--reason", metavar="TEXT", help="why (goes into the commit message)")
    r.set_defaults(func=_cmd_revert)
    g = sub.add_parser("gate", help="retrain what a proposal affects and judge it (exit 0 only for 'merge')")
    g.add_argument("ref", metavar="ID", help="7, 0007 or proposals/0007.yaml")
    g.add_argument("--workspace", type=Path, required=True, metavar="WS")
    g.add_argument("--edits", metavar="I,J", help="gate only these edits (default: every valid one)")
    g.add_argument("--merge", action="store_true", help="accept it when the gate does not reject it")
    g.add_argument("--by", metavar="NAME", help="with --merge: the person deciding")
    g.add_argument("--override", metavar="REASON", help="with --merge: merge even on a reject verdict, recording why")
    g.set_defaults(func=_cmd_gate)


_EXTRA_COMMANDS.append(_register_pr_loop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except WorkbenchError as e:
        problems = getattr(e, "problems", None)
        if problems and len(problems) > 1:
            _err(str(e))
            for pr in problems:
                print(f"  - {pr}", file=sys.stderr)
        else:
            _err(str(e))
        return EXIT_INVALID
    except BrokenPipeError:  # `workbench ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
