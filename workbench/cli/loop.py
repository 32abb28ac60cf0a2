"""``workbench segment | label | train | run | demo``: the loop, headless.

``segment``, ``label --from-masks`` and ``train`` run the same stage functions as ``workbench run``
(:mod:`workbench.evaluation.pipeline`) on an existing workspace.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, error, say
from workbench.data.datasets import ImageFolder
from workbench.errors import WorkbenchError
from workbench.evaluation import pipeline
from workbench.models.job import workspace_segmenter
from workbench.review.provisional import judge, provisional_status
from workbench.workspace.folder import Workspace

__all__ = ["cmd_segment", "cmd_label", "cmd_train", "cmd_run", "cmd_demo"]


def cmd_segment(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        if not (args.dataset or ws.settings.dataset):
            raise WorkbenchError("no data set: pass --dataset DIR (an image folder <DIR>/<class>/<image>)")
        dataset = Path(args.dataset) if args.dataset else ws.dataset_root  # checked against the ontology already
        if ws.dataset_root.resolve() != dataset.resolve():
            ws.save_settings(ws.settings.replace(dataset=str(dataset.resolve())))
        folder = ImageFolder(dataset)
        seg = workspace_segmenter(ws, args.segmenter, args.sam_checkpoint)
        rep = pipeline.segment(ws, folder, seg, workers=args.workers, scheduler=args.scheduler,
                               progress=not args.no_progress)
        say(rep.summary())
        return EXIT_INVALID if rep.problems and not rep.images else EXIT_OK
    finally:
        ws.close()


def cmd_label(args: argparse.Namespace) -> int:
    if not args.from_masks:
        error(f"only --from-masks labels headless: `workbench label --workspace {args.workspace} --from-masks` "
              "labels from the data set's ground-truth part masks; a person labels segments in a notebook with "
              f"`workbench.open('{args.workspace}').label()`")
        return EXIT_USAGE
    ws = Workspace.open(args.workspace)
    try:
        if not (args.dataset or ws.settings.dataset):
            raise WorkbenchError("no data set: pass --dataset DIR")
        dataset = args.dataset or ws.dataset_root
        folder = ImageFolder(dataset)
        if not folder.has_parts:
            raise WorkbenchError(f"{dataset}: no parts.json with ground-truth part masks to label from")
        rep = pipeline.label(ws, folder, min_overlap=args.min_overlap)
        say(f"labelled from ground-truth masks (source=ground_truth, never counted as a person's): {rep.summary()}")
        return EXIT_OK
    finally:
        ws.close()


def cmd_train(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        trained = pipeline.train(ws, max_epochs=args.max_epochs, force=args.force,
                                 segmenter=workspace_segmenter(ws, args.segmenter, args.sam_checkpoint),
                                 on_problem=lambda p, r: error(f"{p}: {r} (skipped)"))
        for note in trained.notes:
            say(note)
        say(trained.result.summary())
        pipeline.evaluate(trained)
        say(f"  {'concept':<16} {'kind':<9} {'params':>6}  {'val balanced accuracy':>21}  status")
        for c, cm in trained.concepts.items():
            acc = cm["val_balanced_accuracy"]
            status = cm["status"] + (f": {cm['status_reason']}" if cm["status"] != "ok" and cm["status_reason"] else "")
            say(f"  {c:<16} {cm['kind']:<9} {cm['params']:>6}  {'–' if acc is None else f'{acc:.1%}':>21}  {status}")
        m = trained.hybrid
        bal = m["val_balanced_accuracy"]
        say(f"hybrid: validation balanced accuracy {'–' if bal is None else f'{bal:.1%}'} on {m['val_images']} images "
            "(test images are kept for the report: `workbench run`)")
        try:  # provisional concepts with enough labels: the gate judges them now
            verdicts = judge(ws)
        except WorkbenchError as e:  # the models are trained and saved; only the verdicts are missing
            error(f"provisional concepts not judged: {e} (run `workbench provisional --workspace {ws.path} --gate`)")
            verdicts = {}
        for c, v in verdicts.items():
            say(f"provisional {c}: {v.summary()}")
            say(f"  {v.meaning()}")
        for st in provisional_status(ws):
            say(f"  {st.line()}")
        return EXIT_OK
    finally:
        ws.close()


def cmd_run(args: argparse.Namespace) -> int:  # the data set was checked against the ontology already
    pipeline.run(args.dataset, args.ontology, args.out, segmenter=args.segmenter, quick=args.quick,
                 workers=args.workers, scheduler=args.scheduler, progress=not args.no_progress,
                 random_state=args.seed, seeds=args.seeds)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    pipeline.demo(args.out, quick=args.quick, workers=args.workers, progress=not args.no_progress,
                  scene=args.scene, seed=args.seed, seeds=args.seeds)
    return EXIT_OK
