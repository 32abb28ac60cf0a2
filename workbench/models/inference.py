"""The workspace's saved models at work: load them, explain one image, rank unlabelled segments by doubt.

Everything here reads ``models/`` through :class:`~workbench.models.store.ModelStore` and trains
nothing. The notebook's views call these functions: the dashboard's explanation view
(:func:`explain_image`) and the labeler's "least certain" filter (:func:`least_certain_order`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.data.datasets import load_image
from workbench.data.segments import Segment, settings_hash
from workbench.errors import WorkbenchError
from workbench.models.contract import ConceptModel
from workbench.models.hybrid import Explanation, HybridClassifier
from workbench.models.job import saved_ontology, workspace_segmenter
from workbench.models.store import ModelStore
from workbench.models.train import collect

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = ["load_workspace_models", "explain_image", "least_certain_order"]


def load_workspace_models(ws: Workspace) -> dict[str, ConceptModel]:
    """Every concept's saved model; a concept without one is an error naming it (train first)."""
    o = saved_ontology(ws)  # a provisional concept not trained yet is left out (no parent combines it)
    store = ModelStore(ws.models_dir)
    missing = [c for c in o.concepts if not store.has(c)]
    if missing:
        raise WorkbenchError(f"concept(s) {', '.join(missing)} have no trained model in {ws.models_dir}: "
                             "train first (wb.train())")
    return {c: store.load(c) for c in o.concepts}


def explain_image(ws: Workspace, image: Any) -> tuple[np.ndarray, Explanation, str]:
    """``(pixels, Explanation, name)`` for a stored image (a path like "daisy/0003.png" or an image id)
    or an RGB array (segmented first with the workspace's segmenter), scored by the saved models."""
    size = int(ws.settings.crop_size)
    store = ws.store
    if isinstance(image, np.ndarray):
        pixels, name = image, "array"
        segs = workspace_segmenter(ws).segment(pixels)
        bboxes = [s.bbox for s in segs]
        crops = np.stack([s.crop(pixels, size) for s in segs]) if segs else np.zeros((0, size, size, 3), np.uint8)
    else:
        row = store.image(int(image)) if isinstance(image, int) or (isinstance(image, str) and image.isdigit()) \
            else store.find_image(str(image))
        if row is None:
            raise WorkbenchError(f"no image {image!r} in the label store; give a stored path like "
                                 f"{store.images()[0].path if store.images() else 'daisy/0003.png'!r}, an image id, or an RGB array")
        name = row.path
        pixels = load_image(ws.image_path(row.path))
        shash = settings_hash(workspace_segmenter(ws))
        rows = store.segments(image_id=row.id, settings_hash=shash) or store.segments(image_id=row.id)
        bboxes = [s.bbox for s in rows]
        segs = [Segment.from_crop(s.crop_mask(), s.bbox, s.shape, s.area) for s in rows]  # box-sized masks only
        crops = (np.stack([s.crop(pixels, size) for s in segs]) if segs else np.zeros((0, size, size, 3), np.uint8))
    hybrid = HybridClassifier(saved_ontology(ws), load_workspace_models(ws))
    return pixels, hybrid.explain(crops, bboxes), name


def least_certain_order(ws: Workspace, segments_hash: str | None = None) -> tuple[list[int] | None, str]:
    """Unlabelled segments (of the segmenter with ``segments_hash``; None: all) by how close the most
    doubtful part model scores them to 0.5, nearest first: ``(segment ids, notice)``.

    The order is None when no part has a trained model yet (the notice says to train first); parts
    without a readable model are left out of the ranking and named in the notice, as are images that
    can no longer be read.
    """
    store = ModelStore(ws.models_dir)
    models: dict[str, ConceptModel] = {}
    missing: list[str] = []
    for leaf in ws.ontology.leaves():
        if not store.has(leaf):
            missing.append(leaf)
            continue
        try:
            models[leaf] = store.load(leaf)
        except WorkbenchError as e:
            missing.append(f"{leaf} ({e})")
    if not models:
        return None, ("“Least certain” needs trained part models, and models/ has none yet: train first "
                      "(wb.train()). Showing unlabelled segments in order instead.")
    problems: list[str] = []
    _, table = collect(ws.store, segments_hash, int(ws.settings.crop_size), image_root=ws.dataset_root,
                       cache_dir=ws.cache_dir, on_problem=lambda p, r: problems.append(f"{p}: {r}"))
    rows = [i for i, lab in enumerate(table.labels) if lab is None]
    if not rows:
        return [], "Least certain: no unlabelled segment to rank" + (
            f" ({len(problems)} image(s) could not be read: {problems[0]})" if problems else "")
    X = table.crops[rows]
    doubt = np.full(len(rows), np.inf)
    for m in models.values():
        p = np.asarray(m.predict_proba(X), dtype=float).reshape(-1)
        doubt = np.minimum(doubt, np.abs(p - 0.5))
    order = np.argsort(doubt, kind="stable")
    notes = []
    if missing:
        notes.append(f"no trained model for {', '.join(missing)} (left out of the ranking)")
    if problems:
        notes.append(f"{len(problems)} image(s) could not be read: {problems[0]}")
    return [int(table.segment_ids[rows[i]]) for i in order], "Least certain first (nearest 0.5). " + "; ".join(notes)
