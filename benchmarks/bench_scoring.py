"""Segmentation and scoring speed: cached vs uncached segmentation of the default segmenter, and
scoring an image with its cached segments vs scoring it on its first segmentation. Interleaved.

    python benchmarks/bench_scoring.py [--images 24] [--repeats 3] [--json ...]

Inline (one process, no pool), on ``--images`` generated demo images of 256²:

1. *segment, uncached*: :func:`workbench.data.segment.segment_images` into an empty cache (each repeat a
   new one) — the default segmenter's images/s; *segment, cached*: the same images from a warm cache;
2. *score, first time*: load the image, segment it, cut the crops, compose the hybrid's score;
   *score, cached segments*: the same with the segments read from the warm cache.

The hybrid is trained briefly on the quick demo set first (scoring cost does not depend on how well
it is trained). ``benchmarks/bench_segment.py`` measures the same cache with 2 workers at 500 images.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]  # + this checkout
from _common import RESULTS, Prepared, finish, fmt_stat, interleave, md_table, summarize  # noqa: E402

__all__ = ["run", "table"]


def _ips(stat: dict[str, Any], n: int) -> dict[str, Any]:
    return summarize([n / v for v in stat["values"] if v > 0], 1)


def run(images: int = 24, repeats: int = 3, per_class: int = 40, size: int = 256, epochs: int = 3,
        work: Path | None = None, log: Any = print) -> dict[str, Any]:
    from workbench.data.datasets import load_image
    from workbench.data.segment import segment_images
    from workbench.models.hybrid import HybridClassifier
    from workbench.models.train import TrainConfig, train_hybrid

    work = Path(work or tempfile.mkdtemp(prefix="wb-bench-scoring-"))
    t0 = time.perf_counter()
    p = Prepared(work, per_class, size)
    try:
        res = train_hybrid(p.ontology, p.images, p.segments, TrainConfig(max_epochs=epochs))
        hyb = HybridClassifier(p.ontology, res.models)
        seg = p.segmenter
        paths = [r.path for r in p.folder.records][:images]
        n = len(paths)
        warm = work / "warm-cache"
        segment_images([(str(q), q) for q in paths], seg, cache=warm, progress=False)
        cold = work / "cold-cache"

        def fresh(side: str, i: int) -> None:
            if cold.exists():
                shutil.rmtree(cold)

        seg_stats = interleave({
            "uncached": lambda: segment_images([(str(q), q) for q in paths], seg, cache=cold, progress=False),
            "cached": lambda: segment_images([(str(q), q) for q in paths], seg, cache=warm, progress=False),
        }, repeats=repeats, setup=fresh)

        def score(cache: Path) -> list[float]:
            out = []
            for r in segment_images([(str(q), q) for q in paths], seg, cache=cache, progress=False).results:
                image = load_image(r.path)
                crops = np.stack([s.crop(image, 32) for s in r.segments]) if r.segments else np.zeros((0, 32, 32, 3), np.uint8)
                boxes = np.array([s.bbox for s in r.segments], dtype=np.int64).reshape(-1, 4)
                out.append(float(hyb.predict_proba([crops], [boxes])[0]))
            return out

        score_stats = interleave({"first segmentation": lambda: score(cold), "cached segments": lambda: score(warm)},
                                 repeats=repeats, setup=fresh)
        out = {
            "benchmark": "scoring",
            "images": n,
            "size": size,
            "segmenter": {"name": seg.name, "settings_hash": p.shash},
            "segment_uncached_s": seg_stats["uncached"],
            "segment_cached_s": seg_stats["cached"],
            "segmenter_images_per_s": _ips(seg_stats["uncached"], n),
            "cache_speedup": summarize([u / c for u, c in zip(seg_stats["uncached"]["values"],
                                                               seg_stats["cached"]["values"]) if c > 0], 1),
            "score_first_s": score_stats["first segmentation"],
            "score_cached_s": score_stats["cached segments"],
            "score_first_images_per_s": _ips(score_stats["first segmentation"], n),
            "score_cached_images_per_s": _ips(score_stats["cached segments"], n),
            "score_speedup": summarize([u / c for u, c in zip(score_stats["first segmentation"]["values"],
                                                               score_stats["cached segments"]["values"]) if c > 0], 1),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        log(f"scoring: segmenter {out['segmenter_images_per_s']['median']} images/s uncached, cache "
            f"{out['cache_speedup']['median']}x; scoring {out['score_first_images_per_s']['median']} → "
            f"{out['score_cached_images_per_s']['median']} images/s with cached segments")
        return out
    finally:
        p.close()


def table(res: dict[str, Any]) -> str:
    n = res["images"]
    return md_table(
        [f"{n} images of {res['size']}², inline", "first time", "from the segment cache", "speed-up"],
        [["segment (default weight-free segmenter)", fmt_stat(res["segmenter_images_per_s"], "images/s", 1),
          fmt_stat(_ips(res["segment_cached_s"], n), "images/s", 0), fmt_stat(res["cache_speedup"], "×", 1)],
         ["score an image (load, segment, crops, hybrid)", fmt_stat(res["score_first_images_per_s"], "images/s", 1),
          fmt_stat(res["score_cached_images_per_s"], "images/s", 1), fmt_stat(res["score_speedup"], "×", 1)]],
        "lrrr")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=RESULTS / "scoring.json")
    args = ap.parse_args(argv)
    return finish(run(args.images, args.repeats, args.per_class, args.size, work=args.workdir), table, args.json)


if __name__ == "__main__":
    sys.exit(main())
