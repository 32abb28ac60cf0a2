"""Relations between parts on or off: the segments-mode hybrid's balanced accuracy, interleaved.

    python benchmarks/bench_relations.py [--per-class 150] [--sizes 30,all] [--seeds 0,1,2]
                                         [--epochs 12] [--workdir DIR] [--json benchmarks/results/relations.json]

The set-up of ``bench_curves.py`` (the generated daisy / not-daisy set, the same fixed class-balanced
validation set, ``k`` training images per class drawn per seed): for every (size, seed) point the
segments-mode hybrid is trained on exactly the same images twice, with ``TrainConfig.composition_relations``
off and on, in an order that alternates from point to point. Then the shuffled-labels control
(:func:`workbench.evaluation.evaluate.shuffled_control`) with relations on, and off for comparison, on all
training images for every seed. Reported: median and range over the seeds, and the per-seed gain.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]  # + this checkout

from _common import RESULTS, Prepared, summarize  # noqa: E402
from bench_curves import _sizes, _subset, draw_training_images, fmt_acc  # noqa: E402


def _one(p: Prepared, rows: np.ndarray, seed: int, epochs: int, relations: bool, control: bool = False) -> float | None:
    from workbench.evaluation.evaluate import hybrid_metrics, shuffled_control
    from workbench.models.train import TrainConfig, train_hybrid

    val_rows = np.flatnonzero(p.images.mask("val"))
    images, segments, _ = _subset(p, np.concatenate([rows, val_rows]))
    config = TrainConfig(max_epochs=epochs, random_state=seed, composition_relations=relations)
    if control:
        return shuffled_control(p.ontology, images, segments, config).get("balanced_accuracy")
    res = train_hybrid(p.ontology, images, segments, config)
    return hybrid_metrics(p.ontology, res.models, images, segments)["balanced_accuracy"]


def run(per_class: int, sizes: tuple[int | None, ...], seeds: tuple[int, ...], epochs: int, work: Path,
        control_too: bool = True, log: Any = print) -> dict[str, Any]:
    t0 = time.perf_counter()
    p = Prepared(work, per_class, 256)
    try:
        log(f"relations: {len(p.images)} images, {len(p.segments)} segments, "
            f"{int(p.images.mask('val').sum())} validation images")
        points, turn = [], 0
        for k in sizes:
            raw: dict[str, list] = {"off": [], "on": []}
            for seed in seeds:
                rows = draw_training_images(p, k, seed)
                for side in (("off", "on") if turn % 2 == 0 else ("on", "off")):
                    t = time.perf_counter()
                    raw[side].append(_one(p, rows, seed, epochs, side == "on"))
                    log(f"  k={k or 'all'} seed={seed} relations {side}: {raw[side][-1]} ({time.perf_counter() - t:.0f} s)")
                turn += 1
            gains = [b - a for a, b in zip(raw["off"], raw["on"]) if a is not None and b is not None]
            points.append({"per_class": k or "all", "off": summarize(raw["off"]), "on": summarize(raw["on"]),
                           "raw_off": raw["off"], "raw_on": raw["on"], "gain_per_seed": [round(g, 4) for g in gains]})
        control: dict[str, list] = {"off": [], "on": []}
        for i, seed in enumerate(seeds if control_too else ()):
            rows = draw_training_images(p, None, seed)
            for side in (("on", "off") if i % 2 == 0 else ("off", "on")):
                control[side].append(_one(p, rows, seed, epochs, side == "on", control=True))
                log(f"  control seed={seed} relations {side}: {control[side][-1]}")
        for pt in points:
            for side in ("off", "on"):
                pt[side].pop("noisy", None)
        ctl = {s: summarize(v) for s, v in control.items()}
        for v in ctl.values():
            v.pop("noisy", None)
        return {"benchmark": "relations", "per_class": per_class, "seeds": list(seeds), "epochs": epochs,
                "points": points, "control": ctl, "control_raw": control, "seconds": round(time.perf_counter() - t0, 1)}
    finally:
        p.close()


def table(res: dict[str, Any]) -> str:
    rows = ["| labelled images per class | relations off | relations on | gain per seed |",
            "| --- | ---: | ---: | --- |"]
    for pt in res["points"]:
        rows.append(f"| {pt['per_class']} | {fmt_acc(pt['off'])} | {fmt_acc(pt['on'])} | "
                    f"{', '.join(f'{g * 100:+.1f}' for g in pt['gain_per_seed'])} |")
    c = res["control"]
    if c["on"]["n"]:
        rows.append(f"| shuffled-labels control, all | {fmt_acc(c['off'])} | {fmt_acc(c['on'])} | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=150)
    ap.add_argument("--sizes", type=_sizes, default=(30, None))
    ap.add_argument("--seeds", type=lambda s: tuple(int(x) for x in s.split(",")), default=(0, 1, 2))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--no-control", action="store_true", help="skip the shuffled-labels control")
    ap.add_argument("--json", type=Path, default=RESULTS / "relations.json")
    args = ap.parse_args(argv)
    res = run(args.per_class, args.sizes, args.seeds, args.epochs, Path(args.workdir or tempfile.mkdtemp()),
              not args.no_control)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=1))
    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
