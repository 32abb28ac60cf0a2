"""Honest measurement: the hybrid, the same-budget baseline, the shuffled-labels control, the swap
test and the reuse check, all on the same class-balanced validation images.

Every function here takes fitted models and the tables from :mod:`workbench.models.train`; none of them
changes what is saved in the workspace.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from workbench.data.datasets import load_image
from workbench.errors import ImageLoadError
from workbench.evaluation.health import concept_status, score_facts
from workbench.models.baseline import BaselineCNN, resize_images
from workbench.models.contract import ConceptModel
from workbench.models.hybrid import part_scores
from workbench.models.metrics import accuracy, balanced_accuracy
from workbench.models.train import (
    ImageTable,
    SegmentTable,
    TrainConfig,
    composite_targets,
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
    "shuffled_control",
    "swap_test",
    "reuse_check",
    "load_images",
]


def concept_metrics(
    ontology: Ontology, models: Mapping[str, ConceptModel], images: ImageTable, segments: SegmentTable
) -> dict[str, dict[str, Any]]:
    """Validation metrics and health of every concept: parts on labelled validation segments,
    composites and the root on validation images (targets from
    :func:`workbench.models.train.composite_targets`).

    ``val_balanced_accuracy`` is the number every surface shows; ``val_accuracy`` is kept as an extra.
    ``status``/``status_reason`` come from :func:`workbench.evaluation.health.concept_status`."""
    val_img = images.mask("val")
    train_img = images.mask("train")
    val_seg = val_img[segments.image_index] if len(segments) else np.zeros(0, bool)
    train_seg = train_img[segments.image_index] if len(segments) else np.zeros(0, bool)
    scores, _, seg_scores = image_level_scores(ontology, models, segments, len(images))
    targets = composite_targets(ontology, images, segments)
    out: dict[str, dict[str, Any]] = {}
    for c in ontology.bottom_up():
        m = models[c]
        if c in seg_scores:
            rows, y = leaf_targets(segments, c)
            keep = val_seg[rows]
            yv, pv = y[keep], seg_scores[c][rows[keep]]
            pos_rows = rows[train_seg[rows] & (y == 1)]
            train = {"train_positives": int(len(pos_rows)),
                     "train_positive_images": int(len(np.unique(segments.image_index[pos_rows])))}
            unit = "segment"
        else:
            yv, pv = targets[c][val_img], scores[c][val_img]
            train = {"train_positives": int(np.sum(targets[c][train_img]))}
            unit = "image"
        facts = {**score_facts(yv, pv), **train}
        status, reason = concept_status(facts, unit)
        out[c] = {
            "kind": ontology.kind(c),
            "implementation": ontology.concepts[c].implementation,
            "model": type(m).__name__,
            "params": int(m.n_params),
            "val_balanced_accuracy": facts["val_balanced_accuracy"],
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
    ontology: Ontology, models: Mapping[str, ConceptModel], images: ImageTable, segments: SegmentTable
) -> dict[str, Any]:
    """The root's accuracy and balanced accuracy on the validation images, and the hybrid's size."""
    val = images.mask("val")
    t = time.perf_counter()
    scores, _, _ = image_level_scores(ontology, models, segments, len(images))
    seconds = time.perf_counter() - t
    y = images.targets(ontology.root)
    return {
        "mode": "segments",
        "val_accuracy": accuracy(y[val], scores[ontology.root][val]),
        "balanced_accuracy": balanced_accuracy(y[val], scores[ontology.root][val]),
        "params": int(sum(m.n_params for m in models.values())),
        "scoring_images_per_s": round(len(images) / seconds, 1) if seconds > 0 else None,
        "val_images": int(val.sum()),
    }


def load_images(images: ImageTable, image_root: str | Path | None) -> tuple[list[np.ndarray | None], list[tuple[str, str]]]:
    """Load every image of the table (None where it can no longer be read, with the reason)."""
    root = Path(image_root) if image_root is not None else None
    out: list[np.ndarray | None] = []
    problems: list[tuple[str, str]] = []
    for p in images.paths:
        path = resolve_image_path(p, root)
        try:
            out.append(load_image(path))
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
) -> dict[str, Any]:
    """Train the same-budget end-to-end CNN on whole training images; score the validation images."""
    model = BaselineCNN(ontology.root, random_state=config.random_state, torch_threads=config.torch_threads,
                        **({"max_epochs": max_epochs} if max_epochs else {}))
    ok = np.array([p is not None for p in pixels])
    X = resize_images([p for p in pixels if p is not None], model.image_size)
    y = images.targets(ontology.root)[ok]
    split = images.split[ok]
    tr, va = split == "train", split == "val"
    t = time.perf_counter()
    model.fit(X[tr], y[tr], X[va], y[va])
    fit_s = time.perf_counter() - t
    p = model.predict_proba(X[va])
    return {
        "model": "BaselineCNN",
        "val_accuracy": accuracy(y[va], p),
        "balanced_accuracy": balanced_accuracy(y[va], p),
        "params": int(model.n_params),
        "train_images": int(tr.sum()),
        "fit_seconds": round(fit_s, 2),
        "_model": model,
    }


def shuffled_control(
    ontology: Ontology, images: ImageTable, segments: SegmentTable, config: TrainConfig = TrainConfig()
) -> dict[str, Any]:
    """The same hybrid with segment labels shuffled between segments (same label frequencies).

    If the concepts carry the classification, this control should fall towards chance; if it scores
    like the real hybrid, the concepts are decoration.
    """
    rng = np.random.default_rng(config.random_state + 7919)
    labelled = np.flatnonzero(segments.labelled())
    shuffled = list(segments.labels)
    perm = rng.permutation(labelled)
    for src, dst in zip(labelled, perm):
        shuffled[dst] = segments.labels[src]
    try:
        res = train_hybrid(ontology, images, segments, config, label_override=shuffled)
    except Exception as e:  # noqa: BLE001 - a control that cannot train is reported, not fatal
        return {"balanced_accuracy": None, "error": str(e)}
    m = hybrid_metrics(ontology, res.models, images, SegmentTable(
        segments.segment_ids, segments.image_index, segments.bboxes, shuffled, segments.crops))
    return {"balanced_accuracy": m["balanced_accuracy"], "val_accuracy": m["val_accuracy"],
            "method": "segment labels permuted at random, then every concept retrained"}


def swap_test(
    ontology: Ontology,
    models: Mapping[str, ConceptModel],
    images: ImageTable,
    segments: SegmentTable,
    concept: str | None = None,
    config: TrainConfig = TrainConfig(),
) -> dict[str, Any]:
    """Retrain one part with another seed, swap it in without retraining anything else, and compare
    the root's validation accuracy before and after (the source study's "swap a petal net" test)."""
    leaves = ontology.leaves()
    nets = [c for c in leaves if ontology.concepts[c].implementation == "net"]
    concept = concept or ("petal" if "petal" in nets else (nets[0] if nets else leaves[0]))
    before = hybrid_metrics(ontology, models, images, segments)
    res = train_hybrid(ontology, images, segments, config, seeds={concept: config.random_state + 1})
    swapped = dict(models)
    swapped[concept] = res.models[concept]
    after = hybrid_metrics(ontology, swapped, images, segments)
    return {
        "concept": concept,
        "how": f"retrained with random_state={config.random_state + 1}, nothing else retrained",
        "val_accuracy_before": before["val_accuracy"],
        "val_accuracy_after": after["val_accuracy"],
        "balanced_accuracy_before": before["balanced_accuracy"],
        "balanced_accuracy_after": after["balanced_accuracy"],
    }


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
