"""A real 12-megapixel photograph at every door that holds pixels: segmented into the label store through
the segment cache, read back, cut into crops as training cuts them, in a process capped at 1.5 GB.

The photo is scikit-image's ``chelsea`` (shipped in its wheel) upscaled to 4000 x 3000 and saved as a
JPEG (``tests/_photos.py``): real content, ~100-150 segments, where the hostile corpus's 12-megapixel
file (``tests/_hostile_corpus.py``) is flat colour and yields none. Before segments were compact this
took 1.7 GB (a full-image mask per segment); the whole process must now stay under 600 MB, torch
included. Figures for many such photos through ``workbench run --quick``: ``benchmarks/bench_photos.py``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _photos import TWELVE_MP, photo_jpeg  # noqa: E402

#: Peak resident memory of the whole process (interpreter, numpy, scikit-image, torch and the photo).
LIMIT_MB = 600

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
cap = int(sys.argv[3]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))  # a regression fails here, not on the shared machine
from workbench.data.datasets import ImageFolder
from workbench.data.segment import WeightFreeSegmenter, segment_dataset, settings_hash
from workbench.data.store import LabelStore
from workbench.models.train import collect  # torch too: training's crop cutter
# VmHWM, not ru_maxrss: after a vfork/exec from a large parent (pytest late in a full run) ru_maxrss
# still holds the parent's peak, VmHWM is this process's own
peak = lambda: next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:")) / 1024
root, work = Path(sys.argv[1]), Path(sys.argv[2])
out = {"imports_mb": peak()}
seg = WeightFreeSegmenter()
with LabelStore(work / "labels.sqlite") as store:
    t = time.perf_counter()
    rep = segment_dataset(store, ImageFolder(root), seg, cache_dir=work / "cache", progress=False)
    out.update(segment_s=time.perf_counter() - t, segment_mb=peak(), images=rep.images, segments=rep.segments,
               problems=rep.problems)
    again = segment_dataset(store, ImageFolder(root), seg, cache_dir=work / "cache", progress=False)
    out["cached"] = again.cached
    rows = store.segments()
    out["shapes"] = sorted({tuple(r.shape) for r in rows})
    out["max_x1"] = max(r.bbox[2] for r in rows)
    t = time.perf_counter()
    images, table = collect(store, settings_hash(seg), 32, image_root=root, cache_dir=work)
    out.update(crops_s=time.perf_counter() - t, crops=list(table.crops.shape), crops_max=int(table.crops.max()))
out["peak_mb"] = peak()
print(json.dumps(out))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB and RLIMIT_AS as on Linux")
def test_a_real_12_megapixel_photo_is_segmented_stored_and_cropped_in_bounded_memory(tmp_path):
    root = tmp_path / "photos"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "chelsea-12mp.jpg").write_bytes(photo_jpeg("chelsea", TWELVE_MP))
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(tmp_path), "1536"], capture_output=True,
                         text=True, timeout=300, env=env, cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads(run.stdout.strip().splitlines()[-1])
    assert res["images"] == 1 and not res["problems"] and res["cached"] == 1
    assert 50 <= res["segments"] <= 400, res  # real content: a realistic number of segments
    assert res["shapes"] == [[3000, 4000]] and res["max_x1"] > 2000  # boxes in the photo's own pixels
    assert res["crops"] == [res["segments"], 32, 32, 3] and res["crops_max"] > 0
    assert res["peak_mb"] < LIMIT_MB, res
