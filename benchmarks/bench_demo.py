"""Benchmark the main job: `workbench demo --quick` wall time and peak memory, and incremental vs full
retraining after one leaf's labels change.

    python benchmarks/bench_demo.py [--out DIR] [--json FILE]

Prints the figures and writes them as JSON. Targets (issue 4): quick demo under 3 minutes and under
1.5 GB peak memory on a 2-core machine. Absolute times on a shared machine are noisy: the load
average at the start is recorded with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


def peak_rss_of(cmd: list[str]) -> tuple[float, int, int]:
    """Run ``cmd``; return (wall seconds, peak RSS in bytes of it and its children, exit code)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    p = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    return time.perf_counter() - t0, peak, proc.returncode


def incremental_ratio(workspace: Path, dataset: Path) -> dict[str, float]:
    """Time a full retrain and a retrain after flipping a few of one leaf's labels, on a workspace."""
    from workbench.data.segment import make_segmenter, settings_hash
    from workbench.models.train import (
        SegmentTable,
        TrainConfig,
        collect,
        split_images,
        train_hybrid,
    )
    from workbench.workspace.folder import Workspace

    ws = Workspace.open(workspace)
    shash = settings_hash(make_segmenter(ws.settings.segmenter, **dict(ws.settings.segmenter_options)))
    config = TrainConfig(max_epochs=12)
    images, segments = collect(ws.store, shash, 32, image_root=dataset, cache_dir=ws.cache_dir)
    images.split = split_images(images, config.val_fraction, 0, config.test_fraction, ws.store.image_splits())
    with tempfile.TemporaryDirectory() as models:
        t = time.perf_counter()
        train_hybrid(ws.ontology, images, segments, config, models_dir=models)
        full = time.perf_counter() - t
        labels = list(segments.labels)
        for r in [i for i, lab in enumerate(labels) if lab == "leaf"][:3]:
            labels[r] = "none"
        changed = SegmentTable(segments.segment_ids, segments.image_index, segments.bboxes, labels, segments.crops)
        t = time.perf_counter()
        res = train_hybrid(ws.ontology, images, changed, config, models_dir=models)
        inc = time.perf_counter() - t
    ws.close()
    return {"full_retrain_s": round(full, 2), "incremental_retrain_s": round(inc, 2),
            "ratio": round(full / inc, 1) if inc > 0 else None, "retrained": res.retrained}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="demo output folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/demo.json"))
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="wb-bench-demo-"))
    load = os.getloadavg()[0]
    exe = [sys.executable, "-m", "workbench.cli", "demo", "--quick", "--no-progress", "--out", str(out)]
    wall, peak, code = peak_rss_of(exe)
    if code != 0:
        print(f"demo failed with exit code {code}", file=sys.stderr)
        return 1
    report = json.loads((out / "report.json").read_text())
    inc = incremental_ratio(Path(report["workspace"]), Path(report["dataset"]))
    figures = {
        "load_average_at_start": round(load, 2),
        "demo_quick_wall_s": round(wall, 1),
        "demo_quick_peak_rss_mb": round(peak / 2**20),
        "targets": {"demo_quick_wall_s": 180, "demo_quick_peak_rss_mb": 1536},
        "incremental": inc,
        "report_timings_s": report["timings"],
    }
    print(f"workbench demo --quick: {wall:.0f} s wall (target < 180 s), peak memory {peak / 2**20:.0f} MB "
          f"(target < 1536 MB), load average at start {load:.1f}")
    print(f"retrain after one leaf's labels change: {inc['incremental_retrain_s']} s vs full "
          f"{inc['full_retrain_s']} s ({inc['ratio']}x faster; retrained {', '.join(inc['retrained'])})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
