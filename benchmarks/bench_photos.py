"""Real photographs at 12 megapixels: peak memory and time of segmenting one, and of the main job on a
set with many of them.

    python benchmarks/bench_photos.py [--photos 20] [--workers 1,2] [--json FILE]

The photos are scikit-image's sample photographs (shipped in its wheel: chelsea, coffee, astronaut,
rocket, motorcycle, hubble), each a different crop, mirrored or not, upscaled (bicubic) to 4000 x 3000
and written as JPEG (``tests/_photos.py``): real content, so ~100-200 segments each, unlike a flat or
noise image that yields none. Every figure is measured on a command in a subprocess:

1. ``workbench segment`` of one 12 MP photo into a fresh workspace (target: peak <= 600 MB for the
   whole process), and the library call alone (``load_image`` + ``WeightFreeSegmenter().segment``);
2. ``workbench run --quick`` on the generated quick demo set (80 images of 256², with part masks) plus
   ``--photos`` 12 MP photos (half in each class; no part masks, so they get no segment labels but are
   segmented, cropped, scored, fed to the baseline and the prototype, and can be explained), once per
   ``--workers`` value (target: peak <= 1.5 GB, workers included).

Peak memory is the summed RSS of the command's process tree, sampled every 50 ms (``tree``: pages the
processes share, such as torch's libraries, count once per process, so with workers it overstates the
physical memory a little), and the largest single process's own peak as the kernel counted it
(``largest process``, from ``wait4``: exact, but one process). Wall times depend on the load: the load
average before each command is recorded. Each run starts from an empty output folder.
What this does not show: part recall on photos (they have no part masks), or accuracy on them.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import psutil

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]  # + this checkout, tests/_photos.py
from _common import RESULTS, finish, md_table  # noqa: E402

__all__ = ["run", "table", "measure"]

#: Targets of issue 15: one 12 MP photo segmented, and the main job over a set of such photos.
TARGETS_MB = {"segment": 600, "run_quick": 1536}
_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

_LIBRARY = r"""
import json, resource, sys, time
from workbench.data.datasets import load_image
from workbench.data.segment import WeightFreeSegmenter
t = time.perf_counter()
image = load_image(sys.argv[1])
segments = WeightFreeSegmenter().segment(image)
print(json.dumps({"segments": len(segments), "seconds": time.perf_counter() - t, "shape": list(image.shape),
                  "bits_mb": sum(s.bits.nbytes for s in segments) / 2**20}))
"""


def measure(cmd: list[str], interval: float = 0.05, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``: wall seconds, peak summed RSS of its process tree (sampled), the largest single
    process's peak RSS (``wait4``, exact), exit code, the load average before, and its output's tail."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **_ENV, **(env or {})})
    out_lines: list[str] = []
    import threading

    reader = threading.Thread(target=lambda: out_lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    me = psutil.Process(proc.pid)
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [me, *me.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(interval)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    reader.join(timeout=10)
    return {"wall_s": round(wall, 1), "peak_tree_mb": round(max(peak, usage.ru_maxrss * 1024) / 2**20),
            "largest_process_mb": round(usage.ru_maxrss / 1024), "exit_code": proc.returncode,
            "loadavg_before": round(load, 2), "output_tail": "".join(out_lines)[-3000:]}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "workbench.cli", *args]


def _photo_set(root: Path, n: int, size: tuple[int, int]) -> list[Path]:
    from _photos import photo_set

    return photo_set(root, n, size)


def segment_one(work: Path, size: tuple[int, int], log: Callable[[str], None]) -> dict[str, Any]:
    """``workbench segment`` of one photo into a fresh workspace, and the library call alone."""
    from _photos import photo_jpeg

    data = work / f"one-{size[0]}x{size[1]}"
    (data / "daisy").mkdir(parents=True, exist_ok=True)
    path = data / "daisy" / "chelsea.jpg"
    path.write_bytes(photo_jpeg("chelsea", size))
    ws = work / f"ws-one-{size[0]}x{size[1]}"
    init = subprocess.run(_cli("init", str(ws), "--dataset", str(data)), capture_output=True, text=True, check=False)
    if init.returncode != 0:
        raise RuntimeError(f"workbench init failed: {init.stderr[-2000:]}")
    cli = measure(_cli("segment", "--workspace", str(ws), "--no-progress"))
    if cli["exit_code"] != 0:
        raise RuntimeError(f"workbench segment failed: {cli['output_tail']}")
    lib = measure([sys.executable, "-c", _LIBRARY, str(path)])
    if lib["exit_code"] != 0:
        raise RuntimeError(f"the library call failed: {lib['output_tail']}")
    facts = json.loads(lib["output_tail"].strip().splitlines()[-1])
    res = {"photo": f"chelsea, {size[0]}x{size[1]}, JPEG {path.stat().st_size / 2**20:.1f} MB",
           "workbench_segment": {k: v for k, v in cli.items() if k != "output_tail"},
           "summary": cli["output_tail"].strip().splitlines()[-1] if cli["output_tail"].strip() else "",
           "library": {**{k: v for k, v in lib.items() if k != "output_tail"}, **facts}}
    log(f"workbench segment, one {size[0]}x{size[1]} photo: peak {cli['peak_tree_mb']} MB, {cli['wall_s']} s "
        f"({res['summary']}); library call: peak {lib['largest_process_mb']} MB, {facts['segments']} segments")
    return res


def run_quick(work: Path, photos: int, size: tuple[int, int], workers: int, per_class: int, demo_size: int,
              log: Callable[[str], None]) -> dict[str, Any]:
    """``workbench run --quick`` on the generated demo set plus ``photos`` photos of ``size``."""
    from workbench.data.datasets import generate_demo
    from workbench.ontology.shipped import shipped_ontology

    data = work / f"mixed-{per_class}x{demo_size}-{photos}x{size[0]}x{size[1]}"
    if not (data / "parts.json").exists():
        generate_demo(data, n_per_class=per_class, size=demo_size, seed=0)
        _photo_set(data, photos, size)
    out = work / f"run-{data.name}-w{workers}"
    shutil.rmtree(out, ignore_errors=True)  # a fresh workspace: nothing cached, every concept trains
    m = measure(_cli("run", "--quick", "--no-progress", "--dataset", str(data), "--ontology",
                     str(shipped_ontology("daisy")), "--out", str(out), "--workers", str(workers)))
    if m["exit_code"] != 0:
        raise RuntimeError(f"workbench run --quick failed (exit {m['exit_code']}): {m['output_tail']}")
    report = json.loads((out / "report.json").read_text())
    seg = report.get("segmenter") or {}
    res = {"photos": photos, "photo_size": list(size), "generated": 2 * per_class, "generated_size": demo_size,
           "workers": workers, **{k: v for k, v in m.items() if k != "output_tail"},
           "images_segmented": seg.get("images"), "segments": seg.get("segments"),
           "problems": len(report.get("problems") or []), "timings_s": report.get("timings")}
    log(f"workbench run --quick, {2 * per_class} generated + {photos} photos of {size[0]}x{size[1]}, "
        f"{workers} worker(s): peak {m['peak_tree_mb']} MB (largest process {m['largest_process_mb']} MB), "
        f"{m['wall_s']} s")
    return res


def run(photos: int = 20, workers: tuple[int, ...] = (1, 2), size: tuple[int, int] = (4000, 3000),
        per_class: int = 40, demo_size: int = 256, tiny: bool = False, work: Path | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every measurement; ``tiny``: a 1000 x 750 photo and 2 of them in a 4-per-class set (seconds)."""
    if tiny:
        photos, workers, size, per_class, demo_size = 2, (1,), (1000, 750), 4, 96
    work = Path(work or tempfile.mkdtemp(prefix="wb-bench-photos-"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"tiny": tiny, "targets_mb": TARGETS_MB, "segment_one": segment_one(work, size, log),
                           "run_quick": [run_quick(work, photos, size, w, per_class, demo_size, log) for w in workers]}
    return res


def table(res: dict[str, Any]) -> str:
    one = res["segment_one"]
    cli, lib = one["workbench_segment"], one["library"]
    t = res["targets_mb"]
    rows = [[f"`workbench segment`, one photo ({one['photo']})", f"{cli['wall_s']} s", f"{cli['peak_tree_mb']} MB",
             f"{cli['largest_process_mb']} MB", f"≤ {t['segment']} MB", cli["loadavg_before"]],
            [f"library call (`load_image` + `segment`), {lib['segments']} segments, masks {lib['bits_mb']:.1f} MB packed",
             f"{lib['wall_s']} s", f"{lib['peak_tree_mb']} MB", f"{lib['largest_process_mb']} MB", "",
             lib["loadavg_before"]]]
    for r in res["run_quick"]:
        w, h = r["photo_size"]
        rows.append([f"`workbench run --quick`, {r['generated']} generated images of {r['generated_size']}² + "
                     f"{r['photos']} photos of {w}x{h}, {r['workers']} worker(s); {r['segments']} segments",
                     f"{r['wall_s']} s", f"{r['peak_tree_mb']} MB", f"{r['largest_process_mb']} MB",
                     f"≤ {t['run_quick']} MB", r["loadavg_before"]])
    text = md_table(["command", "wall time", "peak memory (process tree)", "largest process", "target",
                     "load before"], rows, "lrrrrr")
    return text + ("\n\nPhotos: scikit-image's sample photographs upscaled (bicubic), JPEG; they have no part "
                   "masks, so nothing here measures part recall or accuracy on them.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=20, help="12 MP photos added to the quick demo set")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts for `run --quick`")
    ap.add_argument("--size", default="4000x3000", help="photo size WxH")
    ap.add_argument("--tiny", action="store_true", help="a 1000x750 photo and a 2-photo set: seconds")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=RESULTS / "photos.json")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    res = run(photos=args.photos, workers=tuple(int(v) for v in args.workers.split(",")), size=(w, h),
              tiny=args.tiny, work=args.workdir)
    return finish(res, table, args.json)


if __name__ == "__main__":
    sys.exit(main())
