"""``workbench ontology validate | show | diff | apply-edit``: ontology files, no workspace needed.

Light: nothing here imports torch (``workbench ontology validate`` runs in CI hooks).
"""
from __future__ import annotations

import argparse
import difflib
import sys

from workbench._yaml import dump_yaml, read_yaml_file
from workbench.cli.common import EXIT_INVALID, EXIT_OK, error, say
from workbench.errors import EditError, OntologyError
from workbench.models._rule_names import RULE_NAMES
from workbench.ontology.diff import semantic_diff, text_diff
from workbench.ontology.edits import apply_edits, edit_from_dict
from workbench.ontology.graph import Ontology

__all__ = ["cmd_validate", "cmd_show", "cmd_diff", "cmd_apply_edit"]


def cmd_validate(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for f in args.files:
        try:
            o = Ontology.load(f)
        except OntologyError as e:
            status = EXIT_INVALID
            error(f"{f}: invalid ontology ({len(e.problems)} problem{'s' if len(e.problems) != 1 else ''})")
            for p in e.problems:
                print(f"  - {p}", file=sys.stderr)
            continue
        unknown = _unknown_rules(o)
        if unknown:
            status = EXIT_INVALID
            error(f"{f}: names {len(unknown)} rule{'s' if len(unknown) != 1 else ''} the workbench does not have "
                  f"(known rules: {', '.join(RULE_NAMES)})")
            for p in unknown:
                print(f"  - {p}", file=sys.stderr)
            continue
        alone = " (the root alone: nothing to train yet; add parts or grow it from proposals)" if len(o) == 1 else ""
        say(f"{f}: ok — {len(o.concepts)} concepts, root {o.root!r}, {len(o.leaves())} parts{alone}")
    return status


def _unknown_rules(o: Ontology) -> list[str]:
    """One line per concept whose ``rule:`` is not a shipped rule (a rule registered in your own Python
    code is not known to the command line)."""
    out = []
    for cid, c in o.concepts.items():
        if c.implementation == "rule" and c.rule not in RULE_NAMES:
            close = difflib.get_close_matches(c.rule or "", RULE_NAMES, n=1)
            out.append(f"concept {cid!r}: unknown rule {c.rule!r}{f' (did you mean {close[0]!r}?)' if close else ''}; "
                       "fix `rule:` or make it `implementation: net`")
    return out


def cmd_show(args: argparse.Namespace) -> int:
    o = Ontology.load(args.file)
    if args.yaml:
        sys.stdout.write(o.dumps())
        return EXIT_OK

    def walk(cid: str, depth: int, seen: set[str]) -> None:
        c = o.concepts[cid]
        impl = c.implementation if c.implementation == "net" else f"rule:{c.rule}"
        again = " (see above)" if cid in seen else ""
        prov = " (provisional: not yet combined by its parents; `workbench confirm`)" if c.provisional else ""
        say(f"{'  ' * depth}- {cid} [{impl}] {c.label}{prov}{again}")
        if cid in seen:
            return
        seen.add(cid)
        if args.descriptions and c.description:
            say(f"{'  ' * depth}    {c.description.strip()}")
        for p in o.parts(cid):
            walk(p, depth + 1, seen)

    walk(o.root, 0, set())
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    a, b = Ontology.load(args.a), Ontology.load(args.b)
    if args.semantic:
        edits = semantic_diff(a, b)
        sys.stdout.write(dump_yaml([e.to_dict() for e in edits]) if edits else "")
        return EXIT_INVALID if (edits and args.exit_code) else EXIT_OK
    diff = text_diff(a, b, str(args.a), str(args.b))
    sys.stdout.write(diff)
    return EXIT_INVALID if (diff and args.exit_code) else EXIT_OK


def cmd_apply_edit(args: argparse.Namespace) -> int:
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
    say(f"wrote {args.out or args.file}")
    return EXIT_OK
