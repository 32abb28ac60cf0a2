"""Durability under SIGKILL at random moments, many times: the label store loses no acknowledged
label and stays intact; ontology and model files are always the old or the new version, never torn.

One helper process imports the package once, then forks a writer per round; the test kills the
writer with SIGKILL after a random delay (sometimes while it is still opening the store) and checks
the files on disk. Forking keeps a round to a few tens of milliseconds, so CI runs a few dozen kills
in seconds; ``pytest -m slow`` runs hundreds. (``tests/test_store.py`` has the basic one-process
label-store version of this check.)
"""
from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="needs fork and POSIX signals")

_HELPER = r"""
import os, sys
mode, path = sys.argv[1], sys.argv[2]
if mode == "model":
    import numpy as np, torch
    torch.set_num_threads(1)
    from workbench.models.nets import PartNet
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    y = np.arange(16) % 2
    versions = [PartNet("petal", max_epochs=1, random_state=s).fit(X, y) for s in (0, 1)]
elif mode == "ontology":
    from workbench.ontology.graph import Ontology
    from workbench.ontology.edits import Describe
    from workbench.ontology.shipped import shipped_ontology
    a = Ontology.load(shipped_ontology("daisy"))
    versions = [a, Describe("petal", description="A long white petal. " * 2000).apply(a)]
else:
    from workbench.data.store import LabelStore
    ids = [int(x) for x in sys.argv[3].split(",")]
    concepts = ["petal", "disk", "stem", "none"]
if mode != "labels":
    for i, v in enumerate(versions):
        v.save(path + f".v{i}")
os.write(1, b"ready\n")
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            i = 0
            if mode == "labels":
                store = LabelStore(path)
                while True:
                    seg, concept = ids[i % len(ids)], concepts[i % len(concepts)]
                    if i % 7 == 3:
                        n = store.set_labels([(s, concept) for s in ids[:3]], source="person", author="killed")
                        os.write(1, f"bulk {n} {concept}\n".encode())
                    else:
                        row = store.set_label(seg, concept, source="person", author="killed")
                        os.write(1, f"ack {row.id} {seg} {concept}\n".encode())  # acknowledged: set_label returned
                    i += 1
            else:
                while True:
                    versions[i % 2].save(path)
                    os.write(1, f"wrote {i % 2}\n".encode())
                    i += 1
        finally:
            os._exit(3)
    os.write(1, f"pid {pid}\n".encode())
    os.waitpid(pid, 0)
    os.write(1, b"dead\n")
"""


class _Helper:
    """The helper process, its output lines in a queue, and one method per kill round."""

    def __init__(self, mode: str, path: Path, *extra: str):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", _HELPER, mode, str(path), *extra], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self._next(60)
        if first != "ready":
            self.close()
            pytest.fail(f"helper did not start: {first!r} {self.proc.stderr.read()[-2000:]}")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("<eof>")

    def _next(self, timeout: float = 30) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("helper stopped answering")

    def kill_round(self, delay: float) -> list[str]:
        """Fork a writer, SIGKILL it after ``delay`` seconds; return every line it printed."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        out: list[str] = []
        pid = None
        while pid is None:
            line = self._next()
            if line.startswith("pid "):
                pid = int(line.split()[1])
            elif line == "<eof>":
                pytest.fail(f"helper died: {self.proc.stderr.read()[-2000:]}")
            else:
                out.append(line)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)  # our grandchild, not yet reaped: the pid cannot be reused
        while (line := self._next()) != "dead":
            if line == "<eof>":
                pytest.fail(f"helper died: {self.proc.stderr.read()[-2000:]}")
            out.append(line)
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _delays(n: int, seed: int, longest: float) -> list[float]:
    """Kill moments: some during start-up (under 5 ms), the rest spread up to ``longest`` seconds."""
    rng = random.Random(seed)
    return [rng.uniform(0, 0.005) if k % 4 == 0 else rng.uniform(0, longest) for k in range(n)]


# ------------------------------------------------------------------------------------------ labels
@pytest.fixture
def seeded_store(tmp_path) -> tuple[Path, list[int]]:
    from workbench.data.segment import Segment
    from workbench.data.store import LabelStore

    path = tmp_path / "labels.sqlite"
    with LabelStore(path) as store:
        img = store.add_image("daisy/0000.png", "a" * 64, 16, 16, "daisy")
        segs = []
        for k in range(8):
            m = np.zeros((16, 16), bool)
            m[k * 2:(k + 1) * 2] = True
            segs.append(Segment.from_mask(m))
        ids = store.add_segments(img, "s" * 16, segs)
    return path, ids


def _label_rounds(seeded_store, rounds: int, seed: int) -> int:
    from workbench.data.store import LabelStore

    path, ids = seeded_store
    helper = _Helper("labels", path, ",".join(map(str, ids)))
    acked_total = 0
    try:
        acked: list[tuple[int, int, str]] = []
        bulk: list[tuple[int, str]] = []
        for r, delay in enumerate(_delays(rounds, seed, 0.25)):
            for line in helper.kill_round(delay):
                parts = line.split()
                if parts[0] == "ack":
                    acked.append((int(parts[1]), int(parts[2]), parts[3]))
                elif parts[0] == "bulk":
                    bulk.append((int(parts[1]), parts[2]))
            with LabelStore(path) as store:
                assert store.integrity_check() == ["ok"], f"round {r}"
                history = {row.id: (row.segment_id, row.concept) for row in store.labels(history=True)}
                lost = [a for a in acked if history.get(a[0]) != (a[1], a[2])]
                assert not lost, f"round {r}: acknowledged labels lost or changed: {lost[:5]}"
                # the history is append-only: every acknowledged row, single or bulk, must be counted in it
                per_concept = Counter(c for _, c in history.values())
                need = Counter(c for _, _, c in acked)
                for n, c in bulk:
                    need[c] += n
                short = {c: (per_concept[c], k) for c, k in need.items() if per_concept[c] < k}
                assert not short, f"round {r}: acknowledged bulk labels lost (have, acknowledged): {short}"
        acked_total = len(acked)
    finally:
        helper.close()
    return acked_total


def test_labelling_killed_at_random_moments_loses_no_acknowledged_label(seeded_store):
    assert _label_rounds(seeded_store, rounds=16, seed=1) > 20  # the kills did land after real work


@pytest.mark.slow
def test_labelling_killed_hundreds_of_times(seeded_store):
    assert _label_rounds(seeded_store, rounds=300, seed=2) > 500


# ----------------------------------------------------------------------------------- ontology, model
def _file_rounds(tmp_path: Path, mode: str, rounds: int, seed: int) -> dict[str, int]:
    name = "ontology.yaml" if mode == "ontology" else "petal.safetensors"
    path = tmp_path / name
    helper = _Helper(mode, path)
    seen = {"absent": 0, "v0": 0, "v1": 0, "writes": 0}
    try:
        versions = [Path(f"{path}.v{i}").read_bytes() for i in (0, 1)]
        assert versions[0] != versions[1]
        for r, delay in enumerate(_delays(rounds, seed, 0.15)):
            out = helper.kill_round(delay)
            seen["writes"] += sum(1 for line in out if line.startswith("wrote"))
            if not path.exists():
                assert seen["writes"] == 0, f"round {r}: the file vanished after it had been written"
                seen["absent"] += 1
                continue
            data = path.read_bytes()
            assert data in versions, f"round {r}: torn file ({len(data)} bytes; versions {[len(v) for v in versions]})"
            seen[f"v{versions.index(data)}"] += 1
        if path.exists():  # what is on disk loads (byte equality above already proves it is whole)
            if mode == "ontology":
                from workbench.ontology.graph import Ontology

                Ontology.load(path)
            else:
                from workbench.models.loading import load_model

                load_model(path)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name not in (name, f"{name}.v0", f"{name}.v1")]
        assert all(p.startswith(f".{name}.") and p.endswith(".tmp") for p in leftovers), leftovers
    finally:
        helper.close()
    return seen


@pytest.mark.parametrize("mode", ["ontology", "model"])
def test_files_written_during_random_kills_are_old_or_new_never_torn(tmp_path, mode):
    seen = _file_rounds(tmp_path, mode, rounds=16, seed=3)
    assert seen["writes"] > 0 and seen["v0"] + seen["v1"] > 0, seen


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ontology", "model"])
def test_files_survive_hundreds_of_kills(tmp_path, mode):
    seen = _file_rounds(tmp_path, mode, rounds=300, seed=4)
    assert seen["v0"] > 0 and seen["v1"] > 0, seen
