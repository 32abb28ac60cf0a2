"""``workbench score DIR --workspace WS``: the trained hybrid over a folder of images.

Segments and crops come from the workspace's caches when they hold them (and fill them when not);
images are scored in chunks, inline, on local worker processes (``--workers``) or on a Dask cluster
(``--scheduler``), with the same results everywhere (:mod:`workbench.models.scoring`).
"""
from __future__ import annotations

import argparse

from workbench.cli.common import EXIT_INVALID, EXIT_OK, say
from workbench.errors import WorkbenchError
from workbench.models.inference import load_workspace_models
from workbench.models.job import saved_ontology, workspace_segmenter
from workbench.models.scoring import image_files, score_folder, write_scores
from workbench.parallel import executor
from workbench.workspace.folder import Workspace

__all__ = ["cmd_score"]


def cmd_score(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.workspace)
    try:
        files = image_files(args.dir)
        if not files:
            raise WorkbenchError(f"{args.dir}: no images found (looked for .png, .jpg, .jpeg "
                                 "and the other image types, at any depth): point DIR at a folder of images")
        models = load_workspace_models(ws)
        seg = workspace_segmenter(ws, args.segmenter, args.sam_checkpoint)
        workers = args.workers if args.workers is not None else int(ws.settings.workers)
        with executor(workers=workers, scheduler=args.scheduler) as ex:
            run = score_folder(files, saved_ontology(ws), models, seg, cache_dir=ws.cache_dir,
                               crop_size=int(ws.settings.crop_size), executor=ex, progress=not args.no_progress)
        csv_path, json_path = write_scores(run, args.out, base=args.dir)
        say(run.summary())
        say(f"wrote {csv_path} and {json_path}")
        return EXIT_INVALID if run.problems and len(run.problems) == len(run.results) else EXIT_OK
    finally:
        ws.close()
