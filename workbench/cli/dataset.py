"""``workbench dataset generate | check | import | export``: the generated demo set, image folders, and
part annotations in other tools' formats.

Light: nothing here imports torch (``dataset check --ontology`` and :func:`require_fit` answer in well
under two seconds, before any image is loaded).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from workbench.cli.common import EXIT_INVALID, EXIT_OK, error, say
from workbench.data.check import check_fit
from workbench.data.datasets import check_dataset, generate_demo
from workbench.data.interchange import (
    export_coco_dataset,
    export_coco_store,
    import_coco,
    import_labelme,
    import_masks,
    read_mapping,
)
from workbench.errors import DatasetError
from workbench.models._rule_names import RULE_NAMES
from workbench.ontology.graph import Ontology
from workbench.workspace.folder import Workspace

__all__ = ["cmd_generate", "cmd_check", "cmd_import", "cmd_export", "require_fit"]


def require_fit(dataset: str | os.PathLike[str], ontology: Ontology | str | os.PathLike[str], *,
                purpose: str = "train") -> None:
    """Stop with every problem (:class:`DatasetError`, exit 1) when the data set does not fit the ontology;
    print the notes. The check reads names only: run it before segmenting or training
    (see :func:`workbench.data.check.check_fit`)."""
    report = check_fit(dataset, ontology, rules=RULE_NAMES, purpose=purpose)
    for note in report.notes:
        say(f"note: {note}")
    report.raise_if_problems()


def precheck_run(args: argparse.Namespace) -> None:
    """``workbench run``'s data set ↔ ontology check, before the command's module (and torch) loads."""
    if args.dataset is not None and args.ontology is not None:
        require_fit(args.dataset, args.ontology, purpose="train")


def precheck_segment(args: argparse.Namespace) -> None:
    """``workbench segment``'s check of the workspace's data set against its ontology, before torch loads."""
    ws = Workspace.open(args.workspace)
    try:
        dataset = Path(args.dataset) if args.dataset else (ws.dataset_root if ws.settings.dataset else None)
        if dataset is not None:
            require_fit(dataset, ws.ontology, purpose="segment")
    finally:
        ws.close()


def cmd_generate(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    folder = generate_demo(args.out, n_per_class=args.n_per_class, size=args.size, seed=args.seed,
                           scene=args.scene)
    n = len(folder.records)
    say(f"generated {n} images in {time.perf_counter() - t0:.1f} s under {args.out} "
        f"(classes: {', '.join(folder.classes)}; ground-truth part masks: parts.json)")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    if args.ontology is not None:  # the quick check of names first: no image is loaded when it fails
        fit = check_fit(args.root, args.ontology, rules=RULE_NAMES, purpose="train")
        if not fit.ok:
            error(f"data set {fit.dataset} does not fit ontology {fit.ontology} ({len(fit.problems)} problem"
                  f"{'s' if len(fit.problems) != 1 else ''}; no image was loaded)")
            for p in fit.problems:
                print(f"  - {p}", file=sys.stderr)
            for n in fit.notes:
                say(f"note: {n}")
            return EXIT_INVALID
        say(str(fit))
    report = check_dataset(args.root)
    say(str(report))
    return EXIT_INVALID if report.problems else EXIT_OK


def _needs(args: argparse.Namespace, fmt: str, **options: str) -> None:
    """Options a format needs (``--masks``) and options it does not take, as a clear error."""
    for dest, flag in options.items():
        if getattr(args, dest) is None:
            raise DatasetError(f"`workbench dataset import --format {fmt}` needs {flag}")


def _refuse(args: argparse.Namespace, fmt: str, *dests: str) -> None:
    for dest in dests:
        if getattr(args, dest) not in (None, False):
            raise DatasetError(f"--{dest.replace('_', '-')} is not an option of --format {fmt}")


def cmd_import(args: argparse.Namespace) -> int:
    mapping = read_mapping(args.map) if args.map else None
    common = {"mapping": mapping, "copy": args.copy, "keep_going": args.keep_going}
    t0 = time.perf_counter()
    if args.format == "coco":
        _refuse(args, "coco", "masks", "legend")
        report = import_coco(args.src, args.out, images=args.images, class_from=args.class_from or "supercategory",
                             unannotated_class=args.unannotated_class, **common)
    elif args.format == "labelme":
        _refuse(args, "labelme", "masks", "legend", "images", "unannotated_class")
        report = import_labelme(args.src, args.out, class_from=args.class_from or "folder", **common)
    else:
        _refuse(args, "masks", "images", "unannotated_class")
        _needs(args, "masks", masks="--masks DIR (the mask folder)", legend="--legend FILE (mask value or colour -> name)")
        report = import_masks(args.src, args.out, masks=args.masks, legend=args.legend,
                              class_from=args.class_from or "folder", **common)
    say(report.summary().replace("\nnext:", f"\n  took {time.perf_counter() - t0:.1f} s\nnext:", 1))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.dataset is not None:
        report = export_coco_dataset(args.dataset, out)
        say(report.summary())
        say(f"file_name is relative to {Path(args.dataset).resolve()}; import it back with `workbench dataset import "
            f"--format coco {out} --images {args.dataset} --class-from folder --out DIR`")
        return EXIT_OK
    ws = Workspace.open(args.workspace)
    try:
        report = export_coco_store(ws.store, ws.ontology, out, name=str(ws.path))
        say(report.summary())
        say(f"file_name is relative to {ws.dataset_root}; import it back with `workbench dataset import --format coco "
            f"{out} --images {ws.dataset_root} --class-from folder --out DIR`")
    finally:
        ws.close()
    return EXIT_OK
