"""``workbench init``: create a workspace folder.

Light, like the ontology and dataset commands: nothing here imports torch (the loop's commands, which
train, are in :mod:`workbench.cli.loop`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.common import EXIT_OK, say
from workbench.cli.dataset import require_fit
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_ontology
from workbench.workspace.folder import Workspace
from workbench.workspace.settings import Settings

__all__ = ["cmd_init"]


def cmd_init(args: argparse.Namespace) -> int:
    onto = Ontology.load(args.ontology or shipped_ontology("daisy"))
    if args.dataset:  # names only, before the workspace exists: a data set that does not fit stops here
        require_fit(args.dataset, onto, purpose="segment")
    settings = Settings(dataset=str(Path(args.dataset).resolve()) if args.dataset else None)
    ws = Workspace.create(args.path, onto, settings)
    say(f"created workspace {ws.path} (ontology {onto.name!r}, {len(onto.concepts)} concepts; git: "
        f"{'yes' if ws.has_git else 'no'})")
    say(f"next: workbench segment --workspace {args.path} --dataset DIR")
    ws.close()
    return EXIT_OK
