"""Honest measurement: the hybrid, the CNN baselines (per-net and total budget), the part-blind
baselines, the shuffled-labels control, the swap test and the reuse check.

Reported figures are on the **test** images (``images.split == "test"``): nothing is trained, stopped,
fitted or chosen on them. Validation images serve every choice (early stopping, thresholds, a concept's
status) and their figures are kept beside, named ``val_*``. A table without test images (a library call
that split only train / validation) is measured on validation, and every result says which
(``"on": "test"`` or ``"validation"``).

Every function here takes fitted models and the tables from :mod:`workbench.models.train`; none of them
changes what is saved in the workspace. Results carry each image's score under the private key
``"_scores"`` (one per image row, NaN where not scored) for paired comparisons
(:mod:`workbench.evaluation.studies`); the report drops private keys.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from workbench.data.datasets import load_image
from workbench.data.segments import downscale
from workbench.errors import ImageLoadError
from workbench.evaluation.blind import fit_baseline
from workbench.evaluation.health import concept_status, score_facts
from workbench.models.baseline import BaselineCNN, resize_images
from workbench.models.contract import ConceptModel
from workbench.models.hybrid import part_scores
from workbench.models.metrics import accuracy, balanced_accuracy
from workbench.models.train import (
    ImageTable,
    SegmentTable,
    TrainConfig,
    composite_targets_known,
    image_level_scores,
    leaf_targets,
    resolve_image_path,
    train_hybrid,
)
from workbench.ontology.graph import Ontology

__all__ = [
    "accuracy",
    "balanced_accuracy",
    "concept_metrics",
    "hybrid_metrics",
    "baseline_metrics",
    "blind_metrics",
    "BLIND_IN_REPORT",
    "TOTAL_BUDGET_IMAGE_SIZE",
    "shuffled_control",
    "reuse_check",
    "load_images",
]


#: Side of the images the total-budget CNN sees: twice the per-net CNN's 64, so parts a few pixels wide
#: at 64² (a door, a petal) are visible to it (its parameter count does not depend on the size).
TOTAL_BUDGET_IMAGE_SIZE = 128

#: The part-blind baselines every report shows (:mod:`workbench.evaluation.blind`).
BLIND_IN_REPORT = ("colour_histogram", "colour_layout")


def _on(split: str) -> str:
    return "test" if split == "test" else "validation"


def concept_metrics(
    ontology: Ontology, models: Mapping[str, ConceptModel], images: ImageTable, segments: SegmentTable
) -> dict[str, dict[str, Any]]:
    """Validation metrics and health of every concept: parts on labelled validation segments,
    composites and the root on validation images (targets from
    :func:`workbench.models.train.composite_targets_known`; images whose target is unknown are left out).

    ``val_balanced_accuracy`` is the number every surface shows and the status is judged from (a status
    is a finding that steers work, so validation); ``test_balanced_accuracy`` is the held-out figure the
    report adds (None without test examples); ``val_accuracy`` is kept as an extra.
    ``status``/``status_reason`` come from :func:`workbench.evaluation.health.concept_status`."""
    val_img = images.mask("val")
    train_img = images.mask("train")
    test_img = images.mask("test")
    val_seg = val_img[segments.image_index] if len(segments) else np.zeros(0, bool)
    train_seg = train_img[segments.image_index] if len(segments) else np.zeros(0, bool)
    test_seg = test_img[segments.image_index] if len(segments) else np.zeros(0, bool)
    scores, _, seg_scores = image_level_scores(ontology, models, segments, len(images))
    targets, known = composite_targets_known(ontology, images, segments)
    out: dict[str, dict[str, Any]] = {}
    for c in ontology.bottom_up():
        m = models[c]
        if c in seg_scores:
            rows, y = leaf_targets(segments, c)
            keep = val_seg[rows]
            yv, pv = y[keep], seg_scores[c][rows[keep]]
            held = test_seg[rows]
            yt, pt = y[held], seg_scores[c][rows[held]]
            pos_rows = rows[train_seg[rows] & (y == 1)]
            train = {"train_positives": int(len(pos_rows)),
                     "train_positive_images": int(len(np.unique(segments.image_index[pos_rows])))}
            unit = "segment"
        else:
            # images whose target is known only (a partly labelled image is neither positive nor negative)
            kv, kt = val_img & known[c], test_img & known[c]
            yv, pv = targets[c][kv], scores[c][kv]
            yt, pt = targets[c][kt], scores[c][kt]
            train = {"train_positives": int(np.sum(targets[c][train_img & known[c]]))}
            unit = "image"
        facts = {**score_facts(yv, pv), **train}
        status, reason = concept_status(facts, unit)
        out[c] = {
            "kind": ontology.kind(c),
            "implementation": ontology.concepts[c].implementation,
            "model": type(m).__name__,
            "params": int(m.n_params),
            "val_balanced_accuracy": facts["val_balanced_accuracy"],
            "test_balanced_accuracy": balanced_accuracy(yt, pt) if len(yt) else None,
            "test_examples": int(len(yt)),
            "val_accuracy": accuracy(yv, pv),
            "val_examples": facts["val_examples"],
            "val_positives": facts["val_positives"],
            "val_score_spread": facts["val_score_spread"],
            "val_predicted_positive_fraction": facts["val_predicted_positive_fraction"],
            **train,
            "status": status,
            "status_reason": reason,
        }
    return out


def hybrid_metrics(
    ontology: Ontology, models: Mapping[str, ConceptModel], images: ImageTable, segments: SegmentTable,
    split: str | None = None,
) -> dict[str, Any]:
    """The root's balanced accuracy on the held-out images (``split``: default :meth:`ImageTable.held_out`) and on
    validation, and the hybrid's size. ``"_scores"``: the root's score on every image row."""
    on = split or images.held_out()
    held, val = images.mask(on), images.mask("val")
    t = time.perf_counter()
    scores, _, _ = image_level_scores(ontology, models, segments, len(images))
    seconds = time.perf_counter() - t
    y = images.targets(ontology.root)
    root = scores[ontology.root]
    return {
        "mode": "segments",
        "on": _on(on),
        "balanced_accuracy": balanced_accuracy(y[held], root[held]),
        "accuracy": accuracy(y[held], root[held]),
        "val_balanced_accuracy": balanced_accuracy(y[val], root[val]),
        "val_accuracy": accuracy(y[val], root[val]),
        "params": int(sum(m.n_params for m in models.values())),
        "scoring_images_per_s": round(len(images) / seconds, 1) if seconds > 0 else None,
        "images": int(held.sum()),
        "val_images": int(val.sum()),
        "_scores": np.asarray(root, dtype=np.float64),
    }


def load_images(images: ImageTable, image_root: str | Path | None,
                max_side: int | None = None) -> tuple[list[np.ndarray | None], list[tuple[str, str]]]:
    """Load every image of the table (None where it can no longer be read, with the reason).

    ``max_side``: an image larger than that on its long edge is downscaled to it as it is read (the file
    is untouched), so many large photos cost ``max_side``² pixels each in memory, not their full size.
    """
    root = Path(image_root) if image_root is not None else None
    out: list[np.ndarray | None] = []
    problems: list[tuple[str, str]] = []
    for p in images.paths:
        path = resolve_image_path(p, root)
        try:
            out.append(load_image(path) if max_side is None else downscale(load_image(path), max_side))
        except ImageLoadError as e:
            problems.append((str(path), e.reason))
            out.append(None)
    return out, problems


def baseline_metrics(
    ontology: Ontology,
    images: ImageTable,
    pixels: Sequence[np.ndarray | None],
    config: TrainConfig = TrainConfig(),
    max_epochs: int | None = None,
    budget: int | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """Train the end-to-end CNN on whole training images (early stopping on validation); score the
    held-out images. ``budget``: at most this many parameters (the total-budget baseline,
    :meth:`BaselineCNN.for_budget`, which also sees the images at :data:`TOTAL_BUDGET_IMAGE_SIZE`);
    default a part net's budget at 64² (the per-net baseline)."""
    kwargs: dict[str, Any] = {"random_state": config.random_state, "torch_threads": config.torch_threads}
    if max_epochs:
        kwargs["max_epochs"] = max_epochs
    model = (BaselineCNN(ontology.root, **kwargs) if budget is None
             else BaselineCNN.for_budget(budget, concept=ontology.root, image_size=TOTAL_BUDGET_IMAGE_SIZE, **kwargs))
    on = split or images.held_out()
    ok = np.array([p is not None for p in pixels], dtype=bool)
    X = resize_images([p for p in pixels if p is not None], model.image_size)
    y = images.targets(ontology.root)[ok]
    side = images.split[ok]
    tr, va, held = side == "train", side == "val", side == on
    t = time.perf_counter()
    model.fit(X[tr], y[tr], X[va], y[va])
    fit_s = time.perf_counter() - t
    p = model.predict_proba(X)
    scores = np.full(len(images), np.nan)
    scores[ok] = p
    return {
        "model": "BaselineCNN",
        "budget": "per-net" if budget is None else "total",
        "on": _on(on),
        "balanced_accuracy": balanced_accuracy(y[held], p[held]),
        "accuracy": accuracy(y[held], p[held]),
        "val_balanced_accuracy": balanced_accuracy(y[va], p[va]),
        "val_accuracy": accuracy(y[va], p[va]),
        "params": int(model.n_params),
        "channels": list(model.channels),
        "image_size": int(model.image_size),
        "supervision": {"kind": "image labels", "train_images": int(tr.sum()), "val_images": int(va.sum())},
        "train_images": int(tr.sum()),
        "fit_seconds": round(fit_s, 2),
        "_scores": scores,
        "_model": model,
    }


def blind_metrics(
    ontology: Ontology,
    images: ImageTable,
    pixels: Sequence[np.ndarray | None],
    name: str,
    *,
    seed: int = 0,
    split: str | None = None,
) -> dict[str, Any]:
    """The part-blind baseline ``name`` (:mod:`workbench.evaluation.blind`) fitted on the training images,
    every choice on validation, scored on the held-out images."""
    on = split or images.held_out()
    ok = np.array([p is not None for p in pixels], dtype=bool)
    rows = np.flatnonzero(ok)
    y = images.targets(ontology.root)
    side = images.split
    tr = [i for i in rows if side[i] == "train"]
    va = [i for i in rows if side[i] == "val"]
    t = time.perf_counter()
    try:
        model = fit_baseline(name, [pixels[i] for i in tr], y[tr], [pixels[i] for i in va], y[va], seed=seed)
    except ValueError as e:
        return {"model": name, "on": _on(on), "balanced_accuracy": None, "error": str(e)}
    fit_s = time.perf_counter() - t
    scores = np.full(len(images), np.nan)
    scores[rows] = model.predict_proba([pixels[i] for i in rows])
    held = ok & (side == on)
    val = ok & (side == "val")
    return {
        "model": name,
        "on": _on(on),
        "balanced_accuracy": balanced_accuracy(y[held], scores[held]),
        "val_balanced_accuracy": balanced_accuracy(y[val], scores[val]),
        "params": int(model.n_params),
        "params_note": model.params_note,
        "chosen_on_validation": model.choice,
        "supervision": {"kind": model.supervision, "train_images": len(tr), "val_images": len(va)},
        "fit_seconds": round(fit_s, 2),
        "_scores": scores,
    }


def shuffled_control(
    ontology: Ontology, images: ImageTable, segments: SegmentTable, config: TrainConfig = TrainConfig(),
    split: str | None = None,
) -> dict[str, Any]:
    """The same hybrid with segment labels shuffled between segments (same label frequencies), every
    concept retrained on them: part nets, composites, and rules, whose constants are fitted again on
    the shuffled labels (see :class:`workbench.models.rules.RuleModel`).

    If the concepts carry the classification, this control should fall towards chance; if it scores
    like the real hybrid, the concepts are decoration.
    """
    rng = np.random.default_rng(config.random_state + 7919)
    labelled = np.flatnonzero(segments.labelled())
    shuffled = list(segments.labels)
    perm = rng.permutation(labelled)
    for src, dst in zip(labelled, perm):
        shuffled[dst] = segments.labels[src]
    method = ("segment labels permuted at random between labelled segments (same label frequencies), then "
              "every concept retrained on them: part nets, composites, and rules (their constants and "
              "threshold fitted again on the permuted labels)")
    try:
        res = train_hybrid(ontology, images, segments, config, label_override=shuffled)
    except Exception as e:  # noqa: BLE001 - a control that cannot train is reported, not fatal
        return {"balanced_accuracy": None, "error": str(e), "method": method}
    m = hybrid_metrics(ontology, res.models, images, SegmentTable(
        segments.segment_ids, segments.image_index, segments.bboxes, shuffled, segments.crops), split=split)
    return {"balanced_accuracy": m["balanced_accuracy"], "on": m["on"],
            "val_balanced_accuracy": m["val_balanced_accuracy"], "method": method, "_scores": m["_scores"]}


def reuse_check(
    ontology: Ontology,
    models: Mapping[str, ConceptModel],
    images: ImageTable,
    segments: SegmentTable,
    threshold: float = 0.5,
    max_hard_negatives: int = 20,
) -> dict[str, Any]:
    """Where does each part fire outside its concept? Fire rate per true label and per image class,
    on validation segments, and the strongest false firings offered as hard negatives."""
    _, _, seg_scores = part_scores(ontology, models, segments.crops, segments.image_index, len(images))
    val = images.mask("val")[segments.image_index] if len(segments) else np.zeros(0, bool)
    out: dict[str, Any] = {}
    for c, s in seg_scores.items():
        by_label: dict[str, dict[str, Any]] = {}
        for lab in sorted({lab for lab in segments.labels if lab is not None}):
            rows = np.array([r for r, lb in enumerate(segments.labels) if lb == lab and val[r]], dtype=np.int64)
            if len(rows):
                by_label[lab] = {"n": int(len(rows)), "fire_rate": round(float(np.mean(s[rows] >= threshold)), 3)}
        by_class: dict[str, dict[str, Any]] = {}
        for cls in sorted({str(k) for k in images.classes}):
            rows = np.flatnonzero(val & (np.array([str(images.classes[i]) for i in segments.image_index]) == cls))
            if len(rows):
                by_class[cls] = {"n": int(len(rows)), "fire_rate": round(float(np.mean(s[rows] >= threshold)), 3)}
        wrong = [r for r, lb in enumerate(segments.labels) if lb is not None and lb != c and s[r] >= threshold]
        wrong.sort(key=lambda r: -s[r])
        out[c] = {
            "by_label": by_label,
            "by_image_class": by_class,
            "hard_negatives": [
                {"segment_id": int(segments.segment_ids[r]), "label": segments.labels[r], "score": round(float(s[r]), 3)}
                for r in wrong[:max_hard_negatives]
            ],
        }
    return out
