"""Is a concept working? One status per concept — ``ok``, ``weak`` or ``dead`` — and a sentence that
says what it lacks, judged from its validation balanced accuracy and how much its output varies.

:func:`score_facts` turns validation targets and scores into facts; :func:`facts_from_metrics` reads
the same facts (as far as they can be recovered) from a model's recorded ``metrics_``;
:func:`concept_status` is the one place that turns facts into a status. Every surface (the CLI train
table, ``report.json``/``report.html``, the graph widget, the dashboard) shows what it returns.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "DEAD_ONE_CLASS_FRACTION",
    "DEAD_SCORE_SPREAD",
    "STATUSES",
    "WEAK_BALANCED_ACCURACY",
    "concept_status",
    "facts_from_metrics",
    "score_facts",
]

STATUSES = ("ok", "weak", "dead")

# Below this validation balanced accuracy a concept is ``weak``: chance is 0.5, and a part that is
# right on only ~2 of 3 examples of each class adds more noise than signal to what it composes into.
WEAK_BALANCED_ACCURACY = 0.65
# A concept whose validation scores have a standard deviation below this is ``dead``: its output is
# (nearly) the same for every segment/image, whatever it is shown.
DEAD_SCORE_SPREAD = 0.01
# A concept that gives the same answer for at least this fraction of its validation examples (while
# the other class makes up more than the remaining fraction of them) is ``dead`` too.
DEAD_ONE_CLASS_FRACTION = 0.99


def score_facts(y: Any, p: Any, threshold: float = 0.5) -> dict[str, Any]:
    """Validation facts from targets ``y`` and scores ``p``: balanced accuracy, examples, positives,
    the scores' spread (standard deviation) and the fraction predicted positive.

    >>> score_facts(np.array([1, 0, 0, 0]), np.zeros(4))["val_predicted_positive_fraction"]
    0.0
    """
    y = np.asarray(y).astype(bool).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if not len(y):
        return {"val_balanced_accuracy": None, "val_examples": 0, "val_positives": 0,
                "val_score_spread": None, "val_predicted_positive_fraction": None}
    pred = p >= threshold
    rates = [float(np.mean(pred[y == k] == k)) for k in (False, True) if np.any(y == k)]
    return {
        "val_balanced_accuracy": round(float(np.mean(rates)), 4),
        "val_examples": len(y),
        "val_positives": int(y.sum()),
        "val_score_spread": round(float(np.std(p)), 6),
        "val_predicted_positive_fraction": round(float(np.mean(pred)), 6),
    }


def facts_from_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The facts :func:`concept_status` needs, from a model's recorded ``metrics_`` (its sidecar).

    The fraction predicted positive is recovered from accuracy, balanced accuracy and the counts
    where that is possible (the two classes differ in size); the scores' spread is not recorded.
    """
    bal, acc = metrics.get("val_balanced_accuracy"), metrics.get("val_accuracy")
    n, pos = metrics.get("val_examples"), metrics.get("val_positives")
    facts: dict[str, Any] = {"val_balanced_accuracy": bal, "val_examples": n, "val_positives": pos,
                             "val_score_spread": None, "val_predicted_positive_fraction": None,
                             "train_positives": metrics.get("train_positives")}
    if all(isinstance(v, (int, float)) for v in (bal, acc, n, pos)) and n and 0 < pos < n and 2 * pos != n:
        neg = n - pos
        tpr = min(max((acc * n - 2 * bal * neg) / (pos - neg), 0.0), 1.0)  # acc·n = tpr·P + tnr·N, 2·bal = tpr + tnr
        tnr = min(max(2 * bal - tpr, 0.0), 1.0)
        facts["val_predicted_positive_fraction"] = round((tpr * pos + (1 - tnr) * neg) / n, 6)
    return facts


def concept_status(facts: Mapping[str, Any], unit: str = "segment") -> tuple[str, str]:
    """``(status, reason)``: ``ok`` with an empty reason, or ``weak``/``dead`` with a sentence saying
    what the concept lacks. ``unit`` names what is scored ("segment" for parts, "image" otherwise).

    >>> concept_status({"val_balanced_accuracy": 0.5, "val_examples": 10, "val_positives": 2,
    ...                 "val_predicted_positive_fraction": 0.0})
    ('dead', "predicts 'no' for every validation segment (10, 2 of them positive)")
    """
    n, pos = facts.get("val_examples") or 0, facts.get("val_positives")
    bal = facts.get("val_balanced_accuracy")
    spread, frac = facts.get("val_score_spread"), facts.get("val_predicted_positive_fraction")
    lack = _training_facts(facts, unit)
    if not n:
        return "weak", _join(f"no validation {unit}s to measure it on", lack)
    if pos == 0:
        return "weak", _join(f"no validation positives among its {n} validation {unit}s: it cannot be measured", lack)
    if pos == n:
        return "weak", _join(f"no validation negatives among its {n} validation {unit}s: it cannot be measured", lack)
    if isinstance(frac, (int, float)) and pos is not None:
        for answer, share, truth in (("yes", frac, pos / n), ("no", 1 - frac, 1 - pos / n)):
            if share >= DEAD_ONE_CLASS_FRACTION and truth < DEAD_ONE_CLASS_FRACTION:
                every = "every" if share >= 1 else f"{share:.1%} of the"
                return "dead", _join(f"predicts '{answer}' for {every} validation {unit}"
                                     f"{'' if share >= 1 else 's'} ({n}, {pos} of them positive)", lack)
    if isinstance(spread, (int, float)) and spread < DEAD_SCORE_SPREAD:
        return "dead", _join(f"its score barely varies across the {n} validation {unit}s "
                             f"(standard deviation {spread:.3f})", lack)
    if isinstance(bal, (int, float)) and bal < WEAK_BALANCED_ACCURACY:
        return "weak", _join(f"validation balanced accuracy {bal:.1%} is below {WEAK_BALANCED_ACCURACY:.0%} "
                             f"({pos} positive of {n} {unit}s)", lack)
    return "ok", ""


def _training_facts(facts: Mapping[str, Any], unit: str) -> str:
    tp, imgs = facts.get("train_positives"), facts.get("train_positive_images")
    if not isinstance(tp, int):
        return ""
    if unit != "segment":
        return f"trained on {tp} positive training image{'' if tp == 1 else 's'}"
    what = f"trained on {tp} positive label{'' if tp == 1 else 's'}"
    if isinstance(imgs, int) and tp:
        return f"{what}, {'all ' if tp > 1 else ''}from {imgs} image{'' if imgs == 1 else 's'}"
    return what


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if second else first
