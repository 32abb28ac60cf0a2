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

from . import __version__
from .errors import WorkbenchError

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_REPO_ONTOLOGIES = Path(__file__).resolve().parent.parent / "ontologies"


def _shipped_ontology(name: str) -> Path:
    """Path of a shipped ontology (``daisy`` → ``ontologies/daisy.yaml``), installed or in a checkout."""
    for base in (Path(__file__).resolve().parent / "_ontologies", _REPO_ONTOLOGIES):
        p = base / f"{name}.yaml"
        if p.exists():
            return p
    raise WorkbenchError(f"shipped ontology {name!r} not found (looked in {_REPO_ONTOLOGIES})")


def _out(msg: str = "") -> None:
    print(msg, flush=True)


def _err(msg: str) -> None:
    print(f"workbench: error: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- ontology
def _cmd_ontology_validate(args: argparse.Namespace) -> int:
    from .errors import OntologyError
    from .ontology import Ontology

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
    from .ontology import Ontology

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
    from .edits import semantic_diff, text_diff
    from .ontology import Ontology

    a, b = Ontology.load(args.a), Ontology.load(args.b)
    if args.semantic:
        edits = semantic_diff(a, b)
        from ._io import dump_yaml

        sys.stdout.write(dump_yaml([e.to_dict() for e in edits]) if edits else "")
        return EXIT_OK if not edits else EXIT_INVALID if args.exit_code else EXIT_OK
    diff = text_diff(a, b, str(args.a), str(args.b))
    sys.stdout.write(diff)
    return EXIT_INVALID if (diff and args.exit_code) else EXIT_OK


def _cmd_ontology_apply_edit(args: argparse.Namespace) -> int:
    from ._io import read_yaml_file
    from .edits import apply_edits, edit_from_dict, text_diff
    from .errors import EditError
    from .ontology import Ontology

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

    from .datasets import generate_demo

    t0 = time.perf_counter()
    folder = generate_demo(args.out, n_per_class=args.n_per_class, size=args.size, seed=args.seed)
    n = len(folder.records)
    _out(f"generated {n} images in {time.perf_counter() - t0:.1f} s under {args.out} "
         f"(classes: {', '.join(folder.classes)}; ground-truth part masks: parts.json)")
    return EXIT_OK


def _cmd_dataset_check(args: argparse.Namespace) -> int:
    from .datasets import check_dataset

    report = check_dataset(args.root)
    _out(str(report))
    return EXIT_INVALID if report.problems else EXIT_OK


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

    for register in _EXTRA_COMMANDS:
        register(sub)
    return p


#: Other modules' commands register here (kept as functions so `--help` stays fast: no heavy imports).
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


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
