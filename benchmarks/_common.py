"""Shared helpers of the benchmarks: interleaved timing, robust summaries, peak memory, machine info.

Absolute times on a shared machine are noisy (another process can triple a 2-thread timing), so
every comparison here is measured side by side in the same run, the two sides interleaved
(A, B, A, B, …), and summarized as the median with the range and a ``noisy`` flag when the slowest
repeat took more than :data:`NOISY_RATIO` times the fastest.

The benchmarks import this as ``_common`` (``benchmarks/`` is on ``sys.path`` when a script in it
runs, and :mod:`benchmarks.run` / the smoke tests put it there).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"

if str(HERE) not in sys.path:  # so bench_segment / bench_demo import alike from a test or from run.py
    sys.path.insert(0, str(HERE))

from bench_demo import peak_rss_of  # noqa: E402  (one implementation of "peak RSS of a command")
from bench_segment import PeakRSS  # noqa: E402  (one sampler of "peak RSS of this process tree")

__all__ = [
    "NOISY_RATIO",
    "SEEDS",
    "HERE",
    "REPO",
    "RESULTS",
    "PeakRSS",
    "peak_rss_of",
    "summarize",
    "interleave",
    "timed",
    "machine_info",
    "max_rss_mb",
    "write_json",
    "md_table",
    "finish",
    "fmt_stat",
    "pct",
]

#: A timing is flagged ``noisy`` when max / min over its repeats exceeds this.
NOISY_RATIO = 1.5
#: Seeds of every accuracy figure (medians over them; the issue asks for at least 3).
SEEDS = (0, 1, 2)


def summarize(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """Median, min, max and ``noisy`` (max/min > 1.5) of repeated measurements.

    >>> s = summarize([1.0, 2.0, 1.1])
    >>> s["median"], s["min"], s["max"], s["n"], s["noisy"]
    (1.1, 1.0, 2.0, 3, True)
    >>> summarize([0.5, 0.6])["noisy"]
    False
    """
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0, "noisy": None, "values": []}
    lo, hi = min(vals), max(vals)
    return {
        "median": round(statistics.median(vals), digits),
        "min": round(lo, digits),
        "max": round(hi, digits),
        "n": len(vals),
        "noisy": bool(lo <= 0 or hi / lo > NOISY_RATIO) if len(vals) > 1 else None,
        "values": [round(v, digits) for v in vals],
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, result) of one call."""
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def interleave(
    sides: Mapping[str, Callable[[], Any]],
    repeats: int = 3,
    setup: Callable[[str, int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Time each side ``repeats`` times, interleaved A, B, A, B, …; ``{side: summarize(seconds)}``.

    ``setup(side, i)`` runs before each timed call and is not timed (e.g. dropping a cache so the
    "uncached" side really is uncached). The order alternates every round (A, B, then B, A), so a
    side is not always the one that runs just after the other.
    """
    names = list(sides)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(repeats):
        order = names if i % 2 == 0 else names[::-1]
        for n in order:
            if setup is not None:
                setup(n, i)
            dt, _ = timed(sides[n])
            times[n].append(dt)
    return {n: summarize(times[n]) for n in names}


def max_rss_mb() -> dict[str, float]:
    """Peak resident memory so far, from ``getrusage``: this process and its waited-for children."""
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB, macOS bytes
    return {
        "self_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20, 1),
        "children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 2**20, 1),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on, and how busy the machine was when the run started."""
    import numpy as np
    import torch

    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover - psutil is a dependency
        mem_gb = None
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "memory_gb": mem_gb,
        "loadavg": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "nice": os.nice(0),
        "git_commit": _git_commit(),
    }


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (a reader never sees half a file)."""
    from workbench._io import atomic_write_text

    path = Path(path)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return path


def finish(res: dict[str, Any], table: Callable[[dict[str, Any]], str], path: Path) -> int:
    """End of a benchmark script: add the machine, print the table, write the JSON; exit code 0."""
    res["machine"] = machine_info()
    print(table(res))
    write_json(path, res)
    print(f"wrote {path}")
    return 0


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A Markdown table; ``align`` one letter per column (``l`` or ``r``), default left.

    >>> print(md_table(["a", "b"], [[1, "x"]], "rl"))
    | a | b |
    | ---: | --- |
    | 1 | x |
    """
    align = align or "l" * len(headers)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join("–" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_stat(s: Mapping[str, Any] | None, unit: str = "s", digits: int = 2) -> str:
    """``median (min–max)`` plus `` noisy`` when flagged; ``–`` when missing.

    >>> fmt_stat({"median": 1.234, "min": 1.0, "max": 2.0, "noisy": True})
    '1.23 s (1.00–2.00) noisy'
    """
    if not s or s.get("median") is None:
        return "–"
    u = unit if unit in ("", "×", "%") else f" {unit}"
    text = f"{s['median']:.{digits}f}{u}"
    if s.get("min") is not None and s.get("max") is not None and s["min"] != s["max"]:
        text += f" ({s['min']:.{digits}f}–{s['max']:.{digits}f})"
    return text + (" noisy" if s.get("noisy") else "")


def pct(v: float | None) -> str:
    """A fraction as a percentage with one decimal; ``–`` for None.

    >>> pct(0.9167), pct(None)
    ('91.7%', '–')
    """
    return "–" if v is None else f"{100 * v:.1f}%"


# --------------------------------------------------------------------------------- the demo data
class Prepared:
    """A generated demo set (``scene``) segmented into a label store and labelled from its masks, as tables.

    ``images.split`` is the fixed class-stratified split (seed 0) every benchmark uses: 20% of the
    smaller class's images for validation and 20% for test, as many of each class (the workspace's
    defaults, :func:`workbench.models.train.split_images`).
    """

    def __init__(self, work: Path, n_per_class: int, size: int, workers: int = 1, scene: str = "daisy") -> None:
        from workbench.data.datasets import ImageFolder, generate_demo
        from workbench.data.labelers import label_from_masks
        from workbench.data.segment import (
            WeightFreeSegmenter,
            segment_dataset,
            settings_hash,
        )
        from workbench.data.store import LabelStore
        from workbench.models.train import collect, split_images
        from workbench.ontology.graph import Ontology
        from workbench.evaluation.pipeline import DEMO_ONTOLOGIES
        from workbench.ontology.shipped import shipped_ontology

        self.work = Path(work)
        self.scene = scene
        self.data = self.work / (f"data-{n_per_class}x{size}-seed0" if scene == "daisy"
                                 else f"data-{scene}-{n_per_class}x{size}-seed0")
        t = time.perf_counter()
        if not (self.data / "parts.json").exists():
            generate_demo(self.data, n_per_class=n_per_class, size=size, seed=0, scene=scene)
        self.folder = ImageFolder(self.data)
        self.generate_s = time.perf_counter() - t
        self.ontology = Ontology.load(shipped_ontology(DEMO_ONTOLOGIES[scene]))
        self.segmenter = WeightFreeSegmenter()
        self.shash = settings_hash(self.segmenter)
        self.cache = self.work / "cache"
        self.store = LabelStore(self.work / f"{self.data.name}.sqlite")  # one store per data set
        t = time.perf_counter()
        self.segment_report = segment_dataset(self.store, self.folder, self.segmenter,
                                              cache_dir=self.cache / "segments", workers=workers, progress=False)
        self.segment_s = time.perf_counter() - t
        label_from_masks(self.store, self.folder, self.ontology, settings_hash=self.shash)
        self.images, self.segments = collect(self.store, self.shash, 32, image_root=self.data, cache_dir=self.cache)
        self.images.split = split_images(self.images, 0.2, 0, test_fraction=0.2)
        self._pixels: list | None = None

    @property
    def pixels(self) -> list:
        """Every image of the table as RGB uint8 (loaded once)."""
        if self._pixels is None:
            from workbench.evaluation.evaluate import load_images

            self._pixels, _ = load_images(self.images, self.data)
        return self._pixels

    def close(self) -> None:
        self.store.close()
