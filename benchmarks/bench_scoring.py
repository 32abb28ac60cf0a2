"""Segmentation and scoring speed, each scoring figure as a ratio to the segmenter's in the same run.

    python benchmarks/bench_scoring.py [--images 24] [--repeats 3] [--json ...]

On ``--images`` generated demo images of 256², interleaved (A, B, B, A, …):

1. *segment, uncached*: :func:`workbench.data.segment.segment_images` into an empty cache (each repeat a
   new one) — the default segmenter's images/s (the reference every ratio divides by); *cached*: the
   same images from a warm cache;
2. *per image* (the path before batching, kept as the "before"): load the image, its segments (from
   the cache or the segmenter), one ``Segment.crop`` each, the hybrid on that image alone;
3. *batched* (:func:`workbench.models.scoring.score_folder`, what ``workbench score`` runs inline):
   uncached = empty segment and crop caches (hash, load, segment, crops cut in one pass, chunks of
   32 images through each net and rule at once); cached = segments and crops from the caches;
4. with ``--parallel`` (off in ``run.py``: the workers' memory would count in its peak): *batched,
   cached, 2 workers* on a local pool of 2 processes (started before timing) over the images listed
   ``--passes`` times, inline alongside on the same list.

The hybrid is trained briefly on the quick demo set first (scoring cost does not depend on how well
it is trained). ``benchmarks/bench_segment.py`` measures the segment cache with 2 workers at 500 images.
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

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]  # + this checkout
from _common import RESULTS, Prepared, finish, fmt_stat, interleave, md_table, summarize  # noqa: E402

__all__ = ["run", "table"]


def _ips(stat: dict[str, Any], n: int) -> dict[str, Any]:
    return summarize([n / v for v in stat["values"] if v > 0], 1)


def run(images: int = 24, repeats: int = 3, per_class: int = 40, size: int = 256, epochs: int = 3, passes: int = 4,
        parallel: bool = False, work: Path | None = None, log: Any = print) -> dict[str, Any]:
    from workbench.data.datasets import load_image
    from workbench.data.segment import segment_images
    from workbench.models.hybrid import HybridClassifier
    from workbench.models.scoring import score_folder
    from workbench.models.train import TrainConfig, train_hybrid
    from workbench.parallel import executor

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
        segment_images([(str(q), q) for q in paths], seg, cache=warm / "segments", progress=False)
        score_folder(paths, p.ontology, res.models, seg, cache_dir=warm)  # fills the crop cache too
        cold = work / "cold-cache"

        def fresh(side: str, i: int) -> None:
            if cold.exists():
                shutil.rmtree(cold)

        def per_image(cache: Path) -> list[float]:
            out = []
            for r in segment_images([(str(q), q) for q in paths], seg, cache=cache / "segments", progress=False).results:
                image = load_image(r.path)
                crops = np.stack([s.crop(image, 32) for s in r.segments]) if r.segments else np.zeros((0, 32, 32, 3), np.uint8)
                boxes = np.array([s.bbox for s in r.segments], dtype=np.int64).reshape(-1, 4)
                out.append(float(hyb.predict_proba([crops], [boxes])[0]))
            return out

        def batched(cache: Path, ex: Any = None, many: list | None = None) -> list[float]:
            run_ = score_folder(many or paths, p.ontology, res.models, seg, cache_dir=cache, executor=ex)
            if run_.problems:
                raise RuntimeError(run_.problems[0].error)
            return [r.explanation.probability for r in run_.results]

        same = max(abs(a - b) for a, b in zip(per_image(warm), batched(warm)))
        stats = interleave({
            "segment uncached": lambda: segment_images([(str(q), q) for q in paths], seg, cache=cold, progress=False),
            "segment cached": lambda: segment_images([(str(q), q) for q in paths], seg, cache=warm / "segments",
                                                     progress=False),
            "per image uncached": lambda: per_image(cold),
            "per image cached": lambda: per_image(warm),
            "batched uncached": lambda: batched(cold),
            "batched cached": lambda: batched(warm),
        }, repeats=repeats, setup=fresh)
        many = paths * passes
        par = None
        if parallel:
            with executor(workers=2) as pool:
                batched(warm, pool, many)  # start the workers (imports, first chunk) before timing
                par = interleave({"inline": lambda: batched(warm, None, many),
                                  "2 workers": lambda: batched(warm, pool, many)}, repeats=repeats)

        def ratio(a: str, b: str = "segment uncached", st: dict = stats) -> dict[str, Any]:
            """images/s of ``a`` over images/s of ``b``, repeat by repeat (same round: same load)."""
            return summarize([tb / ta for ta, tb in zip(st[a]["values"], st[b]["values"]) if ta > 0], 2)

        out = {
            "benchmark": "scoring",
            "images": n,
            "size": size,
            "segmenter": {"name": seg.name, "settings_hash": p.shash},
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "segment_uncached_s": stats["segment uncached"],
            "segment_cached_s": stats["segment cached"],
            "segmenter_images_per_s": _ips(stats["segment uncached"], n),
            "cache_speedup": ratio("segment cached"),
            "score_first_s": stats["per image uncached"],
            "score_cached_s": stats["per image cached"],
            "score_first_images_per_s": _ips(stats["per image uncached"], n),
            "score_cached_images_per_s": _ips(stats["per image cached"], n),
            "score_speedup": ratio("per image cached", "per image uncached"),
            "batched_uncached_s": stats["batched uncached"],
            "batched_cached_s": stats["batched cached"],
            "batched_uncached_images_per_s": _ips(stats["batched uncached"], n),
            "batched_cached_images_per_s": _ips(stats["batched cached"], n),
            "ratio_per_image_uncached_to_segmenter": ratio("per image uncached"),
            "ratio_per_image_cached_to_segmenter": ratio("per image cached"),
            "ratio_batched_uncached_to_segmenter": ratio("batched uncached"),
            "ratio_batched_cached_to_segmenter": ratio("batched cached"),
            "batched_vs_per_image_cached": ratio("batched cached", "per image cached"),
            "parallel": None if par is None else {
                "images": len(many), "inline_images_per_s": _ips(par["inline"], len(many)),
                "workers_2_images_per_s": _ips(par["2 workers"], len(many)), "speedup": ratio("2 workers", "inline", par)},
            "max_abs_difference_batched_vs_per_image": same,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        log(f"scoring: segmenter {out['segmenter_images_per_s']['median']} images/s; batched scoring "
            f"{out['batched_uncached_images_per_s']['median']} uncached ({out['ratio_batched_uncached_to_segmenter']['median']}x), "
            f"{out['batched_cached_images_per_s']['median']} cached ({out['ratio_batched_cached_to_segmenter']['median']}x), "
            + (f"{out['parallel']['workers_2_images_per_s']['median']} cached on 2 workers" if par else ""))
        return out
    finally:
        p.close()


def table(res: dict[str, Any]) -> str:
    n = res["images"]
    r = lambda k: fmt_stat(res[k], "×", 2)  # noqa: E731
    par = res.get("parallel")
    rows = [
        ["segment (default weight-free segmenter)", fmt_stat(res["segmenter_images_per_s"], "images/s", 1), "1 (reference)",
         fmt_stat(_ips(res["segment_cached_s"], n), "images/s", 0), r("cache_speedup")],
        ["score, per image (load, segment, crops, hybrid on one image)", fmt_stat(res["score_first_images_per_s"], "images/s", 1),
         r("ratio_per_image_uncached_to_segmenter"), fmt_stat(res["score_cached_images_per_s"], "images/s", 1),
         r("ratio_per_image_cached_to_segmenter")],
        ["score, batched (`workbench score`, inline: chunks of 32 images per forward pass)",
         fmt_stat(res["batched_uncached_images_per_s"], "images/s", 1), r("ratio_batched_uncached_to_segmenter"),
         fmt_stat(res["batched_cached_images_per_s"], "images/s", 1), r("ratio_batched_cached_to_segmenter")],
    ]
    text = md_table([f"{n} images of {res['size']}²", "first time", "÷ segmenter", "cached (segments, crops)",
                     "÷ segmenter (cached: ÷ segmenter uncached)"], rows, "lrrrr")
    if par:
        text += (f"\n\nBatched scoring from the caches, {par['images']} images: inline "
                 f"{fmt_stat(par['inline_images_per_s'], 'images/s', 1)}, 2 worker processes "
                 f"{fmt_stat(par['workers_2_images_per_s'], 'images/s', 1)} ({fmt_stat(par['speedup'], '×', 2)}). "
                 f"Load average (1 min) as the measurements ended {res.get('load_average', ['?'])[0]}. Batched and per-image "
                 f"probabilities differ by at most {res['max_abs_difference_batched_vs_per_image']:.1e}.")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--parallel", action="store_true",
                    help="also time cached scoring on 2 worker processes (their memory counts in the peak)")
    ap.add_argument("--passes", type=int, default=4, help="with --parallel: the images scored this many times")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=RESULTS / "scoring.json")
    args = ap.parse_args(argv)
    return finish(run(args.images, args.repeats, args.per_class, args.size, passes=args.passes, parallel=args.parallel,
                      work=args.workdir), table, args.json)


if __name__ == "__main__":
    sys.exit(main())
