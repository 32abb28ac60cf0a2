"""Segmentation benchmark: speed, cache speed-up, peak memory, and part recall of the default segmenter.

    python benchmarks/bench_segment.py [--images 500] [--workers 2] [--out bench_segment.json]

On the generated 256x256 demo set, through ``segment_dataset`` into a real label store:

1. first pass, ``--workers`` local processes, empty cache: images/s (target >= 4);
2. second pass, same images and settings: every image from the cache; ratio first/second (target >= 20x);
3. peak memory of the first pass: the summed RSS of this process and all its children, sampled every
   20 ms (target < 1.5 GB, Binder has 2 GB);
4. part recall per part (see ``workbench.data.segment.part_recall``) on the whole set, from the cache.

Prints the figures and writes them as JSON. Wall-clock figures depend on what else the machine runs:
the JSON records the load average at the start.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import psutil

from workbench.data.datasets import generate_demo
from workbench.data.segment import (
    WeightFreeSegmenter,
    part_recall,
    segment_dataset,
    settings_hash,
)
from workbench.data.store import LabelStore


class PeakRSS:
    """Samples the RSS of this process plus all its descendants; ``peak`` in bytes."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=500, help="images in the run (half daisy, half not)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", default="bench_segment.json")
    ap.add_argument("--workdir", default=None, help="where to put the data set, cache and store (default: a temp dir)")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_segment_"))
    load = os.getloadavg()
    t = time.perf_counter()
    folder = generate_demo(work / "demo", n_per_class=args.images // 2, size=args.size, seed=0)
    gen_s = time.perf_counter() - t
    seg = WeightFreeSegmenter()
    cache = work / "cache"
    with LabelStore(work / "labels.sqlite") as store:
        with PeakRSS() as mem:
            first = segment_dataset(store, folder, seg, cache_dir=cache, workers=args.workers, progress=True)
        second = segment_dataset(store, folder, seg, cache_dir=cache, workers=args.workers, progress=True)
        inline_cached = segment_dataset(store, folder, seg, cache_dir=cache, workers=1, progress=False)
    recall = part_recall(folder, seg, cache_dir=cache, workers=1)
    n = len(folder.records)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_at_start": load},
        "images": n,
        "size": args.size,
        "workers": args.workers,
        "segmenter": {"name": seg.name, "settings": seg.settings, "settings_hash": settings_hash(seg)},
        "generate_s": round(gen_s, 2),
        "first_pass": {"seconds": round(first.seconds, 2), "images_per_s": round(n / first.seconds, 2),
                       "segments": first.segments, "problems": len(first.problems)},
        "second_pass_cached": {"seconds": round(second.seconds, 3), "images_per_s": round(n / second.seconds, 1),
                               "from_cache": second.cached},
        "cached_inline": {"seconds": round(inline_cached.seconds, 3), "from_cache": inline_cached.cached},
        "cache_speedup": round(first.seconds / second.seconds, 1),
        "cache_speedup_inline": round(first.seconds / inline_cached.seconds, 1),
        "peak_rss_mb": round(mem.peak / 2**20, 1),
        "part_recall": recall.to_dict(),
    }  # fmt: skip
    print()
    print(f"images/s ({args.workers} workers, {n} images {args.size}px): {result['first_pass']['images_per_s']}  (target >= 4)")
    print(f"cached second pass: {result['cache_speedup']}x faster with {args.workers} workers, "
          f"{result['cache_speedup_inline']}x inline  (target >= 20x)")  # fmt: skip
    print(f"peak RSS incl. children, {n}-image run: {result['peak_rss_mb']} MB  (target < 1536 MB)")
    print(recall.table())
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
