"""Workshop set-up: each block starts from a known workspace, so nobody is stuck behind a missed step.

``start(block)`` builds the starting point of an exercise block in a new temporary folder and returns
``(wb, folder)``: the open workbench and the generated image folder. ``catch_up(wb, step)`` does one
exercise for a participant who wants to move on (the same code as the solution notebooks).
``petals_by_disk_rule(wb)`` is exercise 3.4's harmful proposal, made for the participant.

Blocks: 1 the ontology as proposals (from the shipped daisy ontology, one pending proposal to review),
2 labelling and training (daisy ontology, segmented, nothing labelled), 3 the pull-request loop
(daisy ontology, labelled from the masks and trained).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["start", "catch_up", "stand_in_answer", "petals_by_disk_rule", "REVIEW_TITLE", "DISK_RULE_TITLE",
           "N_PER_CLASS"]

#: Images per class of the workshop's generated set (20 daisies, 20 not).
N_PER_CLASS = 20
#: The title of the proposal block 1 asks to review.
REVIEW_TITLE = "A side view: thin petals, a stalk, and a sepal"
#: The title of exercise 3.4's proposal (petals found by the disk's yellow rule), which a pin should block.
DISK_RULE_TITLE = "Petals by the disk's rule"


def _new_dir(block: int) -> Path:
    base = os.environ.get("WORKBENCH_NOTEBOOK_DIR")
    if base:
        os.makedirs(base, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"wb-workshop{block}-", dir=base))


def start(block: int, *, author: str = "you") -> tuple[Any, Any]:
    """The workspace exercise block ``block`` (1, 2 or 3) starts from; ``(wb, folder)``."""
    import workbench
    from workbench.data.datasets import generate_demo
    from workbench.ontology.graph import Ontology
    from workbench.ontology.shipped import shipped_ontology
    from workbench.workspace.folder import Workspace
    from workbench.workspace.settings import Settings

    if block not in (1, 2, 3):
        raise ValueError(f"the workshop has blocks 1, 2 and 3, not {block!r}")
    here = _new_dir(block)
    folder = generate_demo(here / "data", n_per_class=N_PER_CLASS if block > 1 else 4, seed=0)
    Workspace.create(here / "workspace", Ontology.load(shipped_ontology("daisy")),
                     Settings(dataset=str(folder.root))).close()
    wb = workbench.open(here / "workspace", author=author)
    wb.here = here  # the run's folder, for clean-up
    if block == 1:
        _review_proposal(wb)
    if block >= 2:
        from workbench.data.segment import make_segmenter, segment_dataset

        ws = wb.workspace
        seg = make_segmenter(ws.settings.segmenter, **ws.settings.segmenter_options)
        segment_dataset(ws.store, folder, seg, cache_dir=ws.cache_dir / "segments", progress=False)
    if block == 3:
        from workbench.data.labelers import label_from_masks
        from workbench.jupyter.widgets.dashboard import train_workspace

        label_from_masks(wb.store, folder, wb.ontology)
        train_workspace(wb.workspace)
    return wb, folder


def _review_proposal(wb: Any) -> Any:
    """Block 1's proposal to review: a good edit, a redundant one and an invalid one."""
    from workbench.review.proposals import make_proposal
    from workbench.review.store import ProposalStore

    ws = wb.workspace
    petal = ws.ontology.concepts["petal"].description
    raw = [
        {"op": {"op": "describe", "id": "petal",
                "description": petal + " Seen from the side, a petal is a thin white line or a narrow sliver."},
         "rationale": "In this side view the petals look very different from the top views."},
        {"op": {"op": "add_concept", "id": "stalk", "label": "Stalk", "parents": ["daisy"],
                "description": "A long thin green stalk under the flower head."},
         "rationale": "The flower stands on a long green stalk."},
        {"op": {"op": "add_part", "parent": "flower_head", "part": "sepal"},
         "rationale": "Green points show under the petals."},
    ]
    p = make_proposal(ws.ontology, raw, kind="suggest", author="scripted:workshop", title=REVIEW_TITLE,
                      rationale="A daisy seen from the side.")
    return ProposalStore(ws).save(p)


def petals_by_disk_rule(wb: Any) -> Any:
    """Exercise 3.4's proposal: find petals with the disk's rule (``yellow_disk``), a simplification
    that white petals do not fit. Saved once; running the cell again returns the same pending proposal."""
    from workbench.review.proposals import make_proposal
    from workbench.review.store import ProposalStore

    store = ProposalStore(wb.workspace)
    for p in store.list(status="pending"):
        if p.title == DISK_RULE_TITLE:
            return p
    return store.save(make_proposal(
        wb.ontology, [{"op": {"op": "describe", "id": "petal", "implementation": "rule", "rule": "yellow_disk"},
                       "rationale": "One rule for both parts of the flower head: fewer parameters."}],
        kind="refactor", author="person:a colleague", title=DISK_RULE_TITLE))


def stand_in_answer(wb: Any, folder: Any, segment_id: int) -> str:
    """The concept the part masks give a segment: what a careful person would press (used by the
    solutions to play the participant's part when the notebook runs unattended)."""
    from workbench.data.labelers import concept_for_segment

    ws = wb.workspace
    row = ws.store.segment(segment_id)
    rec = next(r for r in folder.records if r.id == ws.store.image(row.image_id).path)
    parts = folder.load_parts(rec)
    x0, y0, x1, y1 = row.bbox
    known = {i: c for i, c in folder.parts_map.items() if c in ws.ontology.concepts}
    return concept_for_segment(row.crop_mask(), parts[y0:y1, x0:x1], known)


def catch_up(wb: Any, folder: Any, step: str) -> None:
    """Do exercise ``step`` ("2.1", "2.2", "3.1") for a participant who wants to move on."""
    from workbench.data.labelers import label_from_masks

    if step == "2.1":
        lab = wb.label(author="catch-up")
        for _ in range(10):
            if lab.segment_id is None:
                break
            lab.label(stand_in_answer(wb, folder, lab.segment_id))
    elif step == "2.2":
        label_from_masks(wb.store, folder, wb.ontology)
    elif step == "3.1":
        from workbench.review.proposals import make_proposal
        from workbench.review.store import ProposalStore

        p = ProposalStore(wb.workspace).save(make_proposal(
            wb.ontology, [{"op": {"op": "describe", "id": "petal", "implementation": "rule", "rule": "white_elongated"},
                           "rationale": "A petal is white and longer than wide."}],
            kind="refactor", author="person:catch-up", title="Petals by rule"))
        wb.apply(p.id, override="workshop catch-up: merged to carry on")
    else:
        raise ValueError(f"no catch-up for step {step!r} (there are: 2.1, 2.2, 3.1)")
