"""Incremental vs full retraining after one leaf's labels change, interleaved.

    python benchmarks/bench_incremental.py [--per-class 40] [--repeats 3] [--json ...]

On the generated demo set (the quick demo's 40 images per class by default), the hybrid is trained
once and saved. Then a few of one leaf's segment labels change (``--flip`` of them become
``none``) and two things are timed, interleaved (full, incremental, incremental, full, …):

- *full*: every concept retrained on the changed labels (``force=True``);
- *incremental*: :func:`workbench.models.train.train_hybrid` against the saved models, which retrains only
  the concepts whose fingerprint changed (the leaf and its ancestors) and loads the others.

Each repeat of either side starts from a fresh copy of the saved models and of the per-segment score
cache as the first training left it (``train_hybrid(score_cache=...)``, as ``workbench train`` keeps it
in the workspace's ``cache/scores``); copying is not timed. The full side reads the scores of parts
whose retrained model comes out identical (same data, same seed) from that cache too.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]  # + this checkout
from _common import RESULTS, Prepared, finish, fmt_stat, interleave, md_table, summarize  # noqa: E402

__all__ = ["run", "table"]


def run(per_class: int = 40, size: int = 256, repeats: int = 3, epochs: int = 12, leaf: str = "leaf",
        flip: int = 3, work: Path | None = None, log: Any = print) -> dict[str, Any]:
    from workbench.models.train import SegmentTable, TrainConfig, train_hybrid

    work = Path(work or tempfile.mkdtemp(prefix="wb-bench-incremental-"))
    t0 = time.perf_counter()
    p = Prepared(work, per_class, size)
    try:
        config = TrainConfig(max_epochs=epochs)
        saved, scores = work / "models-base", work / "scores-base"
        for d in (saved, scores):
            if d.exists():
                shutil.rmtree(d)
        train_hybrid(p.ontology, p.images, p.segments, config, models_dir=saved, settings_hash=p.shash,
                     score_cache=scores)
        labels = list(p.segments.labels)
        rows = [i for i, lab in enumerate(labels) if lab == leaf][:flip]
        for r in rows:
            labels[r] = "none"
        s = p.segments
        changed = SegmentTable(s.segment_ids, s.image_index, s.bboxes, labels, s.crops)
        scratch, scratch_scores = work / "models-scratch", work / "scores-scratch"
        retrained: list[list[str]] = []

        def setup(side: str, i: int) -> None:
            for src, dst in ((saved, scratch), (scores, scratch_scores)):
                if dst.exists():
                    shutil.rmtree(dst)
                shutil.copytree(src, dst)

        def incremental() -> None:
            res = train_hybrid(p.ontology, p.images, changed, config, models_dir=scratch, settings_hash=p.shash,
                               score_cache=scratch_scores)
            retrained.append(res.retrained)

        def full() -> None:
            train_hybrid(p.ontology, p.images, changed, config, models_dir=scratch, settings_hash=p.shash, force=True,
                         score_cache=scratch_scores)

        stats = interleave({"full": full, "incremental": incremental}, repeats=repeats, setup=setup)
        ratios = [f / i for f, i in zip(stats["full"]["values"], stats["incremental"]["values"]) if i > 0]
        out = {
            "benchmark": "incremental",
            "data": {"per_class": per_class, "size": size, "images": len(p.images), "segments": len(p.segments)},
            "change": f"{len(rows)} segment labels of '{leaf}' set to 'none'",
            "epochs": epochs,
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "full_s": stats["full"],
            "incremental_s": stats["incremental"],
            "ratio": summarize(ratios, 2),
            "retrained": sorted(set(retrained[0])) if retrained else [],
            "concepts": len(p.ontology.concepts),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        log(f"incremental: {fmt_stat(out['incremental_s'])} vs full {fmt_stat(out['full_s'])}, "
            f"ratio {out['ratio']['median']}x; retrained {out['retrained']}")
        return out
    finally:
        p.close()


def table(res: dict[str, Any]) -> str:
    return md_table(
        ["after", "full retrain", "incremental", "speed-up", "retrained"],
        [[res["change"], fmt_stat(res["full_s"]), fmt_stat(res["incremental_s"]),
          f"{res['ratio']['median']}× ({res['ratio']['min']}–{res['ratio']['max']})",
          f"{', '.join(res['retrained'])} (of {res['concepts']})"]],
        "lrrrl")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=RESULTS / "incremental.json")
    args = ap.parse_args(argv)
    return finish(run(args.per_class, args.size, args.repeats, args.epochs, work=args.workdir), table, args.json)


if __name__ == "__main__":
    sys.exit(main())
