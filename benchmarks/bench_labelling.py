"""A simulated person labels with each strategy: person-seconds against the hybrid's test balanced accuracy.

    python benchmarks/bench_labelling.py [--scenes parts] [--seeds 0,1,2] [--budgets 100,200,400,800,1600]
                                         [--pool 30] [--page 36] [--epochs 12] [--tiny]
    python benchmarks/bench_labelling.py --merge parts.json,house.json --json OUT.json   # scenes run apart

The person is an oracle that answers from the ground-truth part masks (``Prepared.segments.labels``)
and pays a stated number of seconds per action (:data:`ACTION_SECONDS`, each figure with its source).
Each strategy first gives image labels to ``--pool`` training images per class (1 s each, as the CNN's
labels), then labels segments of those images only:

- ``store_order``: one segment at a time in store order (a single label each);
- ``least_certain``: one at a time, the segment the current ranking is least sure of first
  (:func:`workbench.models.propagate.rank_table`, ``order="uncertain"``, over every part; re-ranked every
  :data:`RERANK_EVERY` labels, the part models retrained at each checkpoint);
- ``grid``: grid pages of ``--page`` segments ranked most-likely first, for one part at a time (round
  robin over the parts with :data:`~workbench.models.propagate.MIN_LABELS` positives): a glance per page, a
  verification per item, a correction per wrong item (the wrong ones get their true label); a part whose
  page is mostly wrong is done. Interleaved: after each page (and while no part is ready) one single label
  for every part still short of MIN_LABELS, on the next pool segment that is that part (the person spots
  it on the image, as the labeler counts a part down to its grid), so every part gets started;
- ``llm_presort``: needs a recorded pre-sort for the scene to replay; where none exists it is not run and
  the result says so.

At each checkpoint of person-seconds (``--budgets``, image labels included) the hybrid is trained on the
labels so far (validation and test images labelled from the masks for every method alike, as in
``bench_curves.py``: they are not counted as person-time) and scored on the fixed test split. The CNN's
curve: image labels only, ``k`` training images per class (cost k × classes × 1 s). ``person_time_ratio``
(per seed, then the median): the hybrid's person-seconds to come within 2 points of the CNN's best test
balanced accuracy (the first checkpoint that does; a checkpoint is an upper bound) ÷ the CNN's
person-seconds to first reach that best. ``person_time_ratio_median_curves``: the same on the median curves
over seeds (the CNN's best median accuracy and when its median curve first reaches it; the first checkpoint
where the hybrid's median curve comes within 2 points), because a seed's CNN best on a near-chance scene is
noise that sets that seed's target. Partly labelled images leave composite targets unknown
(:func:`workbench.models.train.composite_targets_known`); each checkpoint's ``composite_targets`` says where
the part models filled them. Writes ``benchmarks/results/labelling.{json,md,png,svg}``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]  # + this checkout
from _common import RESULTS, SEEDS, Prepared, finish, machine_info, md_table, pct, summarize, write_json  # noqa: E402
from bench_curves import LABEL_SECONDS, _subset, _train_one, draw_training_images  # noqa: E402

from workbench._io import atomic_write_text  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.models.propagate import MIN_LABELS, rank_table, segment_features  # noqa: E402

__all__ = ["ACTION_SECONDS", "STRATEGIES", "run", "table", "plot", "simulate", "merge"]

STRATEGIES = ("store_order", "least_certain", "grid", "llm_presort")
#: Labels between re-rankings in the least-certain strategy (the similarity part; the models retrain
#: at each checkpoint, as a background retrain every N labels would).
RERANK_EVERY = 20
#: A grid page whose share of right items falls below this ends that part's grid (the person sees the
#: page is mostly wrong: the ranking has run out of that part).
PAGE_DONE_BELOW = 0.5
#: A part is done after this many such pages in a row.
DONE_AFTER = 1
#: Distance to the CNN's best test balanced accuracy the hybrid must come within.
WITHIN = 0.02

#: Seconds per action of the simulated person, with where each figure comes from.
ACTION_SECONDS: dict[str, Any] = {
    "image_label_s": LABEL_SECONDS["image_label_s"],
    "segment_label_s": LABEL_SECONDS["segment_label_s"],
    "grid_page_s": 2.0,
    "grid_item_s": 0.5,
    "correction_s": LABEL_SECONDS["segment_label_s"],
    "sources": {
        "image_label_s": "Bearman et al., 'What's the Point: Semantic Segmentation with Point Supervision', ECCV 2016, "
                         "Table 1: an image-level label ~1 s per class (as bench_curves.py).",
        "segment_label_s": "Bearman et al. 2016, Table 1: pointing at an instance ~2.4 s; a segment label is one click on a "
                           "segment plus a concept key, taken as one point annotation (as bench_curves.py).",
        "grid_page_s": "assumption: one orienting look at a new page of 36 small crops and its concept before "
                       "acting, taken as about twice Bearman et al.'s 1 s image-level label.",
        "grid_item_s": "assumption: looking at one crop of a grid long enough to see it is (not) the concept. It lies "
                       "between Krishna et al., 'Embracing Error to Enable Rapid Crowdsourcing', CHI 2016 (people react "
                       "to images streamed at 100 ms each, with errors, in binary verification) and a deliberate "
                       "one-by-one yes/no verification (Papadopoulos et al., 'We don't need no bounding-boxes', CVPR "
                       "2016, report verification several times faster than drawing; their per-box figure was not "
                       "verified here). 0.5 s is 5x Krishna's rate and leaves time for a deliberate look.",
        "correction_s": "a deselect click and a concept key for a wrong item: the same as a single segment label "
                        "(Bearman et al. 2016, ~2.4 s per point annotation), an upper-end assumption.",
    },
}


# ------------------------------------------------------------------------------------------ the person
class Person:
    """The simulated person: answers from the masks, counts seconds per action, keeps the labels made."""

    def __init__(self, truth: list[str | None], pool_rows: np.ndarray, seconds: dict[str, Any]):
        self.truth = truth
        self.pool = np.asarray(pool_rows, dtype=np.int64)
        self.s = seconds
        self.labels: dict[int, str] = {}
        self.spent = 0.0
        self.actions = {"single": 0, "page": 0, "grid_item": 0, "correction": 0}

    def single(self, row: int) -> None:
        self.labels[int(row)] = self.truth[row] or "none"
        self.spent += self.s["segment_label_s"]
        self.actions["single"] += 1

    def page(self, rows: np.ndarray, concept: str) -> float:
        """One grid page for ``concept``: right items take it, wrong ones get their true label. Share right."""
        self.spent += self.s["grid_page_s"] + len(rows) * self.s["grid_item_s"]
        self.actions["page"] += 1
        self.actions["grid_item"] += len(rows)
        right = 0
        for r in rows:
            t = self.truth[r] or "none"
            self.labels[int(r)] = t
            if t == concept:
                right += 1
            else:
                self.spent += self.s["correction_s"]
                self.actions["correction"] += 1
        return right / max(len(rows), 1)

    def unlabelled(self) -> np.ndarray:
        return np.array([r for r in self.pool if int(r) not in self.labels], dtype=np.int64)


def _label_list(n: int, labels: dict[int, str]) -> list[str | None]:
    out: list[str | None] = [None] * n
    for r, lab in labels.items():
        out[r] = lab
    return out


def simulate(strategy: str, features: np.ndarray, truth: list[str | None], pool_rows: np.ndarray,
             parts: list[str], budgets: list[float], start_s: float, checkpoint: Callable[[float, dict[int, str]], None],
             model_scores: Callable[[], dict[str, np.ndarray]], page: int = 36,
             seconds: dict[str, Any] = ACTION_SECONDS) -> dict[str, Any]:
    """Run one strategy until the last budget (or nothing is left); ``checkpoint(seconds, labels)`` at each
    budget passed. ``model_scores()`` the part models' current scores on every row (may be empty)."""
    person = Person(truth, pool_rows, seconds)
    person.spent = start_s  # the image labels
    todo = list(budgets)
    n = len(truth)
    precisions: list[float] = []

    def tick() -> bool:
        while todo and person.spent >= todo[0]:
            checkpoint(todo.pop(0), dict(person.labels))
        return bool(todo)

    def ready(c: str) -> bool:
        return sum(1 for v in person.labels.values() if v == c) >= MIN_LABELS

    def next_single() -> bool:  # the next unlabelled segment in store order, one label; False when none is left
        cand = person.unlabelled()
        if not len(cand):
            return False
        person.single(cand[0])
        return True

    def seed_single(c: str) -> bool:  # one single label on the next unlabelled segment that is ``c``
        cand = person.unlabelled()
        hit = next((r for r in cand if (truth[r] or "none") == c), None)
        if hit is None:
            return False
        person.single(hit)
        return True

    if strategy == "store_order":
        while todo and next_single():
            tick()
    elif strategy == "least_certain":
        while todo:
            cand = person.unlabelled()
            if not len(cand):
                break
            labs = _label_list(n, person.labels)
            ms = model_scores()
            doubt = np.full(len(cand), np.inf)
            for c in parts:
                if not ready(c) and c not in ms:
                    continue
                rows, sc, _ = rank_table(features, labs, c, order="uncertain", candidates=cand, model_scores=ms.get(c))
                d = np.full(len(cand), np.inf)
                d[np.searchsorted(cand, rows)] = np.abs(sc - 0.5)
                doubt = np.minimum(doubt, d)
            # before any part can be ranked: store order (a stable sort of equal keys keeps it)
            for r in cand[np.argsort(doubt, kind="stable")[:RERANK_EVERY]]:
                person.single(r)
                if not tick():
                    break
    elif strategy == "grid":
        # Grid pages for the parts with MIN_LABELS positives, in turn; after each page (and whenever no part
        # is ready) one single label for every part still short of MIN_LABELS, as the labeler counts a part
        # down to its grid: the person spots that part on the next pool image showing it and clicks it.
        # So every part gets started, however rare, instead of waiting for corrections on other parts'
        # pages. A part with no segment left to seed it, or whose page is mostly wrong, is done.
        done: set[str] = set()
        misses = {c: 0 for c in parts}
        turn = 0
        while todo:
            waiting = [c for c in parts if c not in done]
            if not waiting:
                break
            go = [c for c in waiting if ready(c)]
            if go:
                c = go[turn % len(go)]
                turn += 1
                cand = person.unlabelled()
                if not len(cand):
                    break
                rows, _, _ = rank_table(features, _label_list(n, person.labels), c, order="confident",
                                        candidates=cand, limit=page, model_scores=model_scores().get(c))
                share = person.page(rows, c)
                precisions.append(share)
                misses[c] = misses[c] + 1 if share < PAGE_DONE_BELOW else 0
                if misses[c] >= DONE_AFTER:
                    done.add(c)
                if not tick():
                    break
            for c in [c for c in waiting if not ready(c) and c not in done]:
                if not seed_single(c):
                    done.add(c)  # no unlabelled segment of it is left in the pool
                elif not tick():
                    break
        # every part's grid done: the rest of the pool one by one, in store order
        while todo and next_single():
            tick()
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    while todo:  # nothing left to label: the later checkpoints see the same labels
        checkpoint(todo.pop(0), dict(person.labels))
    return {"actions": person.actions, "labels": len(person.labels), "spent_s": round(person.spent, 1),
            "page_precision": summarize(precisions, 3) if precisions else None}


# ----------------------------------------------------------------------------------------- training
def _train_hybrid(p: Prepared, pool_imgs: np.ndarray, labels: dict[int, str], seed: int, epochs: int) -> dict[str, Any]:
    """The hybrid on the pool images (their labels so far) plus the validation and test images (mask
    labels); test balanced accuracy and the fitted part models."""
    from workbench.evaluation.evaluate import hybrid_metrics
    from workbench.evaluation.studies import with_part_scores
    from workbench.models.train import TrainConfig, train_hybrid

    held = np.flatnonzero(np.isin(p.images.split, ("val", "test")))
    keep = np.sort(np.concatenate([pool_imgs, held]))
    images, segments, _ = _subset(p, keep)
    rows = np.flatnonzero(np.isin(p.segments.image_index, keep))  # the subset's rows, in order
    in_pool = np.isin(p.segments.image_index[rows], pool_imgs)
    segments.labels = [labels.get(int(r)) if in_pool[i] else p.segments.labels[r] for i, r in enumerate(rows)]
    config = TrainConfig(max_epochs=epochs, random_state=seed)
    res = train_hybrid(p.ontology, images, segments, config)
    m = hybrid_metrics(p.ontology, with_part_scores(p.ontology, res.models, segments), images, segments)
    return {"balanced_accuracy": m.get("balanced_accuracy"), "params": m.get("params"), "models": res.models,
            "notes": res.notes}


def _strategy_runs(p: Prepared, features: np.ndarray, strategy: str, seed: int, pool: int, budgets: list[float],
                   page: int, epochs: int, log: Callable[[str], None]) -> dict[str, Any]:
    truth = list(p.segments.labels)
    pool_imgs = draw_training_images(p, pool, seed)
    pool_rows = np.flatnonzero(np.isin(p.segments.image_index, pool_imgs))
    parts = list(p.ontology.leaves())
    points: list[dict[str, Any]] = []
    state: dict[str, Any] = {"models": {}}
    params: list[int] = []

    def scores() -> dict[str, np.ndarray]:
        if "scores" not in state:
            state["scores"] = {}
            for c, m in state["models"].items():
                if c in parts:
                    full = np.zeros(len(truth))
                    full[pool_rows] = np.asarray(m.predict_proba(p.segments.crops[pool_rows]), dtype=float).reshape(-1)
                    state["scores"][c] = full
        return state["scores"]

    def checkpoint(budget: float, labels: dict[int, str]) -> None:
        t = time.perf_counter()
        if points and labels == state.get("labels"):  # nothing new since the last checkpoint: the same hybrid
            points.append({**points[-1], "seconds": budget})
            return
        state["labels"] = labels
        try:
            r = _train_hybrid(p, pool_imgs, labels, seed, epochs)
            state["models"] = r["models"]
            state.pop("scores", None)
            params.append(r["params"])
            acc, err, notes = r["balanced_accuracy"], None, r["notes"]
        except WorkbenchError as e:  # e.g. a part without a positive yet: no hybrid at this budget
            acc, err, notes = None, str(e).split(":")[0], {}
        n_parts = sum(1 for v in labels.values() if v != "none")
        points.append({"seconds": budget, "balanced_accuracy": acc, "labels": len(labels), "part_labels": n_parts,
                       **({"error": err} if err else {}), **({"composite_targets": notes} if notes else {})})
        log(f"  [{p.scene}] {strategy} seed={seed} {budget:.0f} s: {len(labels)} labels ({n_parts} parts), "
            f"test balanced accuracy {acc} ({time.perf_counter() - t:.0f} s){' ' + err if err else ''}"
            + "".join(f"; {c}: {v}" for c, v in notes.items()))

    start = len(pool_imgs) * ACTION_SECONDS["image_label_s"]
    info = simulate(strategy, features, truth, pool_rows, parts, budgets, start, checkpoint, scores, page=page)
    return {"points": points, **info, "image_labels": int(len(pool_imgs)), "params": params[-1] if params else None}


def _cnn_curve(p: Prepared, ks: tuple[int, ...], seeds: tuple[int, ...], epochs: int, budget: int | None,
               log: Callable[[str], None]) -> dict[str, Any]:
    n_classes = len({str(c) for c in p.images.classes})
    out: dict[str, Any] = {}
    for method in ("cnn_per_net", "cnn_total"):
        pts = []
        for k in ks:
            accs = []
            for seed in seeds:
                rows = draw_training_images(p, k, seed)
                try:
                    accs.append(_train_one(method, p, rows, seed, epochs, budget)["balanced_accuracy"])
                except WorkbenchError:
                    accs.append(None)
                log(f"  [{p.scene}] {method} k={k} seed={seed}: test balanced accuracy {accs[-1]}")
            n_img = int(len(draw_training_images(p, k, seeds[0])))
            pts.append({"per_class": k, "seconds": n_img * ACTION_SECONDS["image_label_s"], "per_seed": accs,
                        "balanced_accuracy": {k2: v for k2, v in summarize(accs).items() if k2 != "noisy"}})
        out[method] = pts
    del n_classes
    return out


def _ratio(strategies: dict[str, Any], cnn: dict[str, Any], seeds: tuple[int, ...]) -> dict[str, Any]:
    """person_time_ratio per strategy and overall (the best strategy), per seed then the median."""
    per_seed_cnn = []
    for i, _ in enumerate(seeds):  # the CNN's best (either budget) for this seed, and when it first got there
        best, when = None, None
        for pts in cnn.values():
            for pt in pts:
                a = pt["per_seed"][i]
                if a is not None and (best is None or a > best + 1e-12):
                    best, when = a, pt["seconds"]
                elif a is not None and abs(a - best) <= 1e-12 and pt["seconds"] < when:
                    when = pt["seconds"]
        per_seed_cnn.append((best, when))
    out: dict[str, Any] = {"cnn_best_per_seed": [{"balanced_accuracy": b, "seconds": w} for b, w in per_seed_cnn]}
    ratios: dict[str, list[float | None]] = {}
    for name, s in strategies.items():
        if s.get("status") != "ok":
            continue
        rs = []
        for i, run in enumerate(s["runs"]):
            best, when = per_seed_cnn[i]
            hit = next((pt["seconds"] for pt in run["points"] if pt["balanced_accuracy"] is not None and best is not None
                        and pt["balanced_accuracy"] >= best - WITHIN - 1e-12), None)
            rs.append(None if hit is None or not when else round(hit / when, 3))
        ratios[name] = rs
    out["per_strategy"] = {}
    for name, rs in ratios.items():
        vals = [np.inf if r is None else r for r in rs]
        med = float(np.median(vals)) if vals else np.inf
        out["per_strategy"][name] = {"per_seed": rs, "median": None if not np.isfinite(med) else round(med, 3),
                                     "min": min((r for r in rs if r is not None), default=None),
                                     "max": None if any(r is None for r in rs) else max(rs, default=None)}
    out["on_median_curves"] = _ratio_on_median_curves(strategies, cnn)
    finite = {n: v for n, v in out["per_strategy"].items() if v["median"] is not None}
    if finite:
        win = min(finite, key=lambda n: finite[n]["median"])
        out.update(person_time_ratio=finite[win]["median"], range=[finite[win]["min"], finite[win]["max"]], strategy=win)
        out["note"] = (f"median over {len(seeds)} seeds of the best strategy ({win}); a checkpoint is an upper bound "
                       "on the time to get there (the hybrid may have got there between checkpoints)")
    else:
        best_acc = {n: max((pt["balanced_accuracy"] or 0) for run in s["runs"] for pt in run["points"])
                    for n, s in strategies.items() if s.get("status") == "ok"}
        closest = max(best_acc, key=best_acc.get) if best_acc else None
        out.update(person_time_ratio=None, range=None, strategy=closest)
        cnn_best = [b for b, _ in per_seed_cnn if b is not None]
        out["note"] = (f"the hybrid never came within {100 * WITHIN:.0f} points of the CNN's best test balanced accuracy "
                       f"({pct(float(np.median(cnn_best))) if cnn_best else '–'} median) within the budgets in a "
                       f"majority of seeds; closest: {closest} (best {pct(best_acc.get(closest))})")
    return out




def _ratio_on_median_curves(strategies: dict[str, Any], cnn: dict[str, Any]) -> dict[str, Any]:
    """The same ratio on the median curves over seeds: the CNN's best median test balanced accuracy (over
    both budgets and every k) and the person-seconds where its median curve first reaches it; per strategy the
    first checkpoint where the hybrid's median curve comes within WITHIN of it. A seed's checkpoint without a
    hybrid counts below every accuracy, so the median curve has no value where most seeds have none. Less noisy than per seed: one seed's lucky CNN at 10 s sets
    no target."""
    best, when = None, None
    for pts in cnn.values():
        for pt in pts:
            vals = [v for v in pt["per_seed"] if v is not None]
            if not vals:
                continue
            a = float(np.median(vals))
            if best is None or a > best + 1e-12 or (abs(a - best) <= 1e-12 and pt["seconds"] < when):
                best, when = a, pt["seconds"]
    out: dict[str, Any] = {"cnn_best_median": None if best is None else round(best, 4), "cnn_seconds": when,
                           "no_model": "a seed without a hybrid at a checkpoint counts below every accuracy",
                           "per_strategy": {}}
    for name, s in strategies.items():
        if s.get("status") != "ok" or best is None:
            continue
        curve = []
        for j, _ in enumerate(s["runs"][0]["points"]):
            vals = [-np.inf if run["points"][j]["balanced_accuracy"] is None else run["points"][j]["balanced_accuracy"]
                    for run in s["runs"]]
            med = float(np.median(vals))
            curve.append((s["runs"][0]["points"][j]["seconds"], med if np.isfinite(med) else None))
        hit = next((sec for sec, a in curve if a is not None and a >= best - WITHIN - 1e-12), None)
        out["per_strategy"][name] = {"median_curve": [{"seconds": sec, "balanced_accuracy": None if a is None else round(a, 4)}
                                                      for sec, a in curve],
                                     "seconds": hit, "ratio": None if hit is None or not when else round(hit / when, 3)}
    done = {n: v["ratio"] for n, v in out["per_strategy"].items() if v["ratio"] is not None}
    win = min(done, key=done.get) if done else None
    out.update(person_time_ratio=done.get(win) if win else None, strategy=win)
    out["why"] = ("the per-seed ratio divides by the seconds at which one seed's CNN peaked; on a scene where the CNN "
                  "stays near chance that peak is noise (e.g. a lucky 10 s point), so the ratio is dominated by it. "
                  "The median curves first average the seeds out, then compare once.")
    return out


def run(scenes: tuple[str, ...] = ("parts",), seeds: tuple[int, ...] = SEEDS, per_class: int = 150, size: int = 256,
        pool: int = 30, budgets: tuple[float, ...] = (100, 200, 400, 800, 1600), page: int = 36, epochs: int = 12,
        cnn_ks: tuple[int, ...] = (5, 10, 30, 90), strategies: tuple[str, ...] = STRATEGIES, tiny: bool = False,
        work: Path | None = None, log: Callable[[str], None] = print,
        partial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run every strategy on every scene; return the JSON-ready result. ``partial(result so far)`` after
    each strategy and the CNN's curve (the grid and the CNN first), so an interrupted run keeps them."""
    if tiny:
        per_class, size, pool, budgets, page, epochs, cnn_ks = 6, 96, 2, (20, 40), 8, 1, (1, 2)
        seeds = seeds[:1]
    work = Path(work or tempfile.mkdtemp(prefix="wb-bench-labelling-"))
    t0 = time.perf_counter()
    domains: dict[str, Any] = {}
    out = {
        "benchmark": "labelling",
        "protocol": ("split once by image (train / validation / test); each strategy gives image labels to "
                     f"{pool} training images per class, then labels their segments as the strategy says, the "
                     "oracle answering from the part masks; at each person-seconds checkpoint the hybrid trains "
                     "on the labels so far (validation and test images labelled from the masks, for every method "
                     "alike, not counted) and is scored on test; CNN: image labels of k training images per class"),
        "settings": {"seeds": list(seeds), "pool_per_class": pool, "budgets_s": list(budgets), "page": page,
                     "epochs": epochs, "cnn_per_class": list(cnn_ks), "rerank_every": RERANK_EVERY,
                     "page_done_below": PAGE_DONE_BELOW, "within": WITHIN, "tiny": tiny},
        "action_seconds": ACTION_SECONDS,
        "domains": domains,
        "strategies": STRATEGY_NOTES,
        "ratios": ("person_time_ratio: the issue's definition, per seed (hybrid person-seconds to come within "
                   f"{100 * WITHIN:.0f} points of that seed's CNN best ÷ the CNN's seconds to reach it), then the median "
                   "over seeds (never = ∞; a median of ∞ is null). person_time_ratio_median_curves: the same on the "
                   "median curves over seeds (a seed without a hybrid at a checkpoint counts below every accuracy), because a seed's CNN best "
                   "on a near-chance scene is noise that sets the per-seed target"),
        "person_time_ratio": None,
        "person_time_ratio_median_curves": None,
        "complete": False,
    }

    def update(scene: str) -> None:
        d = domains[scene]
        d["ratio"] = _ratio(d["strategies"], d["cnn"], seeds) if d.get("cnn") else {
            "person_time_ratio": None, "note": "the CNN's curve is not measured yet", "per_strategy": {}}
        first = domains.get("parts") or next(iter(domains.values()))
        out["person_time_ratio"] = first.get("ratio", {}).get("person_time_ratio")
        out["person_time_ratio_median_curves"] = first.get("ratio", {}).get("on_median_curves", {}).get("person_time_ratio")
        out["seconds"] = round(time.perf_counter() - t0, 1)
        if partial is not None:
            partial(out)

    order = [s for s in ("grid", "least_certain", "store_order", "llm_presort") if s in strategies]
    for scene in scenes:
        t = time.perf_counter()
        p = Prepared(work / scene, per_class, size, scene=scene)
        try:
            tf = time.perf_counter()
            features = segment_features(p.segments.crops, p.segments.bboxes)
            log(f"labelling [{scene}]: {len(p.images)} images, {len(p.segments)} segments, features in "
                f"{time.perf_counter() - tf:.1f} s")
            res: dict[str, Any] = {}
            domains[scene] = d = {"data": {"images": len(p.images), "segments": len(p.segments),
                                           "splits": {s: int(p.images.mask(s).sum()) for s in ("train", "val", "test")}},
                                  "strategies": res, "cnn": {}}
            params = None
            for i, name in enumerate(order):
                if name == "llm_presort":
                    res[name] = {"status": "not run", "reason": (
                        "no recorded LLM pre-sort exists for this scene: the replay suggester replays recorded "
                        "suggest/refactor proposals only, and no pre-sort was ever recorded against the live API "
                        "from this machine (no network); none was invented")}
                else:
                    runs = []
                    for seed in seeds:
                        r = _strategy_runs(p, features, name, seed, pool, list(budgets), page, epochs, log)
                        params = params or r["params"]
                        runs.append(r)
                    res[name] = {"status": "ok", "runs": runs, "points": [
                        {"seconds": b, "balanced_accuracy": {k: v for k, v in summarize(
                            [run["points"][j]["balanced_accuracy"] for run in runs]).items() if k != "noisy"},
                         "labels": summarize([run["points"][j]["labels"] for run in runs], 0)["median"]}
                        for j, b in enumerate(budgets)]}
                if i == 0 or (not d["cnn"] and i == len(order) - 1):  # the CNN right after the first strategy
                    d["cnn"] = _cnn_curve(p, cnn_ks, seeds, epochs, params, log)
                update(scene)
            d["seconds"] = round(time.perf_counter() - t, 1)
        finally:
            p.close()
    out["complete"] = True
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


STRATEGY_NOTES = {
    "store_order": "single labels, one segment at a time in store order",
    "least_certain": (f"single labels, least certain first (rank_table order='uncertain' over every part with "
                      f"{MIN_LABELS} positives or a model), re-ranked every {RERANK_EVERY} labels; part models from the "
                      "last checkpoint"),
    "grid": (f"grid pages ranked most-likely first (rank_table order='confident'), one part at a time in turn over "
             f"the parts with {MIN_LABELS} positives; after each page, and while no part has {MIN_LABELS}, one single "
             "label for every part still short of them, on the next pool segment that is that part (the person spots "
             "it on the image, as the labeler counts a part down to its grid), so every part gets started; a part "
             f"whose page is under {PAGE_DONE_BELOW:.0%} right, or with nothing left to seed it, is done; then the rest "
             "of the pool one by one in store order"),
    "llm_presort": "replay of a recorded LLM pre-sort (none exists: not run)",
}

NAMES = {"store_order": "one by one, store order", "least_certain": "one by one, least certain first",
         "grid": "grid pages with propagation", "llm_presort": "LLM pre-sort (replay)"}


def table(res: dict[str, Any]) -> str:
    """Markdown: per scene, test balanced accuracy at each person-seconds checkpoint per strategy, the CNN's
    curve, and person_time_ratio."""
    out = []
    for scene, d in res["domains"].items():
        st = d["strategies"]
        ok = [n for n in st if st[n].get("status") == "ok"]
        rows = []
        for j, b in enumerate(res["settings"]["budgets_s"]):
            rows.append([f"{b:.0f} s", *(_acc(st[n]["points"][j]["balanced_accuracy"]) + f" ({st[n]['points'][j]['labels']:.0f} labels)"
                                         for n in ok)])
        out.append(f"**{scene}** ({d['data']['splits']['train']} train / {d['data']['splits']['val']} validation / "
                   f"{d['data']['splits']['test']} test images; seeds {', '.join(map(str, res['settings']['seeds']))}; "
                   f"hybrid: image labels of {res['settings']['pool_per_class']} images per class first)")
        out.append("")
        out.append(md_table(["person-seconds", *(NAMES[n] for n in ok)], rows, "l" + "r" * len(ok)))
        out.append("")
        crow = []
        for method, pts in d["cnn"].items():
            crow.append([{"cnn_per_net": "CNN per-net budget (64²)", "cnn_total": "CNN total budget (128²)"}[method],
                         *(f"{_acc(pt['balanced_accuracy'])} at {pt['seconds']:.0f} s" for pt in pts)])
        if d["cnn"]:
            ks = [pt["per_class"] for pt in next(iter(d["cnn"].values()))]
            out.append(md_table(["image labels only", *(f"{k} per class" for k in ks)], crow, "l" + "r" * len(ks)))
            out.append("")
        for n in st:
            if st[n].get("status") != "ok":
                out.append(f"{NAMES[n]}: {st[n]['status']}: {st[n]['reason']}.")
            elif st[n]["runs"][0].get("page_precision"):
                pp = [r["page_precision"]["median"] for r in st[n]["runs"] if r.get("page_precision")]
                out.append(f"{NAMES[n]}: median share of right items per page {np.median(pp):.0%} "
                           f"({min(pp):.0%}–{max(pp):.0%} over seeds).")
        r = d["ratio"]
        ps = "; ".join(f"{NAMES[n]} {v['median'] if v['median'] is not None else 'never'} (per seed "
                       f"{', '.join('never' if x is None else str(x) for x in v['per_seed'])})"
                       for n, v in r["per_strategy"].items())
        out.append("")
        out.append(f"`person_time_ratio` (hybrid person-seconds to come within {100 * res['settings']['within']:.0f} points of the "
                   f"CNN's best test balanced accuracy ÷ the CNN's person-seconds to reach it): "
                   f"**{r['person_time_ratio'] if r['person_time_ratio'] is not None else 'null'}**"
                   + (f" ({r['range'][0]}–{r['range'][1] if r['range'][1] is not None else 'never'})" if r.get("range") else "")
                   + f", {r['note']}. Per strategy: {ps}.")
        mc = r.get("on_median_curves") or {}
        if mc.get("cnn_best_median") is not None:
            pm = "; ".join(f"{NAMES[n]} {v['ratio'] if v['ratio'] is not None else 'never'}"
                           + (f" (at {v['seconds']:.0f} s)" if v["seconds"] is not None else "")
                           for n, v in mc["per_strategy"].items())
            out.append("")
            out.append(f"On the median curves over seeds (the CNN's best median {pct(mc['cnn_best_median'])}, first at "
                       f"{mc['cnn_seconds']:.0f} s; a seed without a hybrid at a checkpoint counts below every accuracy): "
                       f"**{mc['person_time_ratio'] if mc['person_time_ratio'] is not None else 'null'}**"
                       + (f" ({NAMES[mc['strategy']]})" if mc.get("strategy") else "")
                       + f". Per strategy: {pm}. Both are given because a seed's CNN best near chance is noise: "
                       "per seed, a lucky early CNN point sets the target; the median curves average the seeds first.")
        out.append("")
    a = res["action_seconds"]
    out.append(f"Seconds per action: image label {a['image_label_s']}, segment label {a['segment_label_s']}, grid page "
               f"{a['grid_page_s']} + {a['grid_item_s']} per item, correction {a['correction_s']} (sources in "
               "`labelling.json`).")
    return "\n".join(out).rstrip()


def _acc(s: dict[str, Any]) -> str:
    if not s or s.get("median") is None:
        return "–"
    return f"{pct(s['median'])} ({pct(s['min'])}–{pct(s['max'])})"


def plot(res: dict[str, Any], stem: Path) -> list[Path]:
    """Person-seconds (log) against test balanced accuracy: each strategy's median with its range over the
    seeds, the CNN's two curves, and the line 2 points below the CNN's best. PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    scenes = list(res["domains"])
    fig, axes = plt.subplots(1, len(scenes), figsize=(6.5 * len(scenes), 4.4), squeeze=False)
    for ax, scene in zip(axes[0], scenes):
        d = res["domains"][scene]
        for n, s in d["strategies"].items():
            if s.get("status") != "ok":
                continue
            xs = [pt["seconds"] for pt in s["points"]]
            med = [pt["balanced_accuracy"]["median"] for pt in s["points"]]
            lo = [pt["balanced_accuracy"]["min"] for pt in s["points"]]
            hi = [pt["balanced_accuracy"]["max"] for pt in s["points"]]
            (line,) = ax.plot(xs, [np.nan if v is None else v for v in med], marker="o", label=f"hybrid: {NAMES[n]}")
            ax.fill_between(xs, [np.nan if v is None else v for v in lo], [np.nan if v is None else v for v in hi],
                            color=line.get_color(), alpha=0.15)
        for method, pts in d["cnn"].items():
            xs = [pt["seconds"] for pt in pts]
            med = [pt["balanced_accuracy"]["median"] for pt in pts]
            ax.plot(xs, [np.nan if v is None else v for v in med], marker="s", linestyle="--",
                    label={"cnn_per_net": "CNN per-net budget", "cnn_total": "CNN total budget"}[method])
        best = [b["balanced_accuracy"] for b in d["ratio"].get("cnn_best_per_seed", []) if b["balanced_accuracy"] is not None]
        if best:
            ax.axhline(float(np.median(best)) - res["settings"]["within"], color="grey", linewidth=0.8, linestyle=":",
                       label="CNN's best − 2 points (median of the seeds' bests)")
        curve_best = (d["ratio"].get("on_median_curves") or {}).get("cnn_best_median")
        if curve_best is not None:
            ax.axhline(curve_best - res["settings"]["within"], color="black", linewidth=0.8, linestyle="--",
                       label="CNN's best median − 2 points")
        ax.set_xscale("log")
        ax.set_xlabel("person-seconds (log)")
        ax.set_ylabel("test balanced accuracy")
        ax.set_title(f"{scene}: person-time against test accuracy (median, range over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    for ext in ("png", "svg"):
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, dpi=110)
        paths.append(path)
    plt.close(fig)
    return paths


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from runs of different scenes (e.g. two processes at once, one per scene): the first's
    settings, every scene's domain, ``person_time_ratio`` from ``parts`` (else the first scene), complete
    only when every run is. The settings other than the scenes must agree."""
    if not results:
        raise ValueError("nothing to merge")
    first = results[0]
    for r in results[1:]:
        if r["settings"] != first["settings"]:
            raise ValueError(f"settings differ: {r['settings']} vs {first['settings']}")
        clash = set(r["domains"]) & set(first["domains"])
        if clash:
            raise ValueError(f"scene(s) {sorted(clash)} in more than one result")
    out = {**first, "domains": {k: v for r in results for k, v in r["domains"].items()}}
    lead = out["domains"].get("parts") or next(iter(out["domains"].values()))
    out["person_time_ratio"] = lead.get("ratio", {}).get("person_time_ratio")
    out["person_time_ratio_median_curves"] = lead.get("ratio", {}).get("on_median_curves", {}).get("person_time_ratio")
    out["complete"] = all(r.get("complete") for r in results)
    out["seconds"] = max(r.get("seconds") or 0 for r in results)
    out["machine_per_run"] = {k: r.get("machine") for r in results for k in r["domains"]}  # as each run measured
    out["merged"] = (f"{len(results)} runs merged ({', '.join(k for r in results for k in r['domains'])}), run at the "
                     "same time as separate processes; seconds is the longest run's")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=lambda s: tuple(s.split(",")), default=("parts",), help="parts (default), house")
    ap.add_argument("--seeds", type=lambda s: tuple(int(x) for x in s.split(",")), default=SEEDS)
    ap.add_argument("--per-class", type=int, default=150)
    ap.add_argument("--pool", type=int, default=30, help="training images per class given image labels first")
    ap.add_argument("--budgets", type=lambda s: tuple(float(x) for x in s.split(",")), default=(100, 200, 400, 800, 1600))
    ap.add_argument("--page", type=int, default=36, help="segments per grid page")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--strategies", type=lambda s: tuple(s.split(",")), default=STRATEGIES)
    ap.add_argument("--tiny", action="store_true", help="a tiny set, one seed, two checkpoints (the smoke test)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=RESULTS / "labelling.json")
    ap.add_argument("--merge", type=lambda s: [Path(x) for x in s.split(",")], default=None,
                    help="A.json,B.json: merge results of runs of different scenes into --json (no run)")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.strategies) - set(STRATEGIES))
    if unknown:
        ap.error(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
    def write(res: dict[str, Any], final: bool) -> int:
        if final:
            code = finish(res, table, args.json)
        else:
            res = {**res, "machine": machine_info()}
            write_json(args.json, res)
            code = 0
        atomic_write_text(args.json.with_suffix(".md"), table(res) + "\n")
        for path in plot(res, args.json.with_suffix("")):
            print(f"wrote {path}")
        return code

    if args.merge:
        import json

        try:
            merged = merge([json.loads(p.read_text()) for p in args.merge])
        except (OSError, ValueError, KeyError) as e:
            ap.error(f"cannot merge {', '.join(map(str, args.merge))}: {e}")
        return write(merged, True)

    res = run(args.scenes, args.seeds, args.per_class, pool=args.pool, budgets=args.budgets, page=args.page,
              epochs=args.epochs, strategies=args.strategies, tiny=args.tiny, work=args.workdir,
              partial=lambda r: write(r, False))
    return write(res, True)


if __name__ == "__main__":
    sys.exit(main())
