"""A canary API key set in the environment of a notebook run appears nowhere afterwards.

``notebooks/01_grow_ontology.ipynb`` is executed with nbclient and ``ANTHROPIC_API_KEY`` set to a
canary value, so its Claude cell really runs: the SDK client is built with the key and sends a request
to ``ANTHROPIC_BASE_URL``, here a closed port on loopback (refused at once: no network is used). The
notebook must report that Claude could not answer and carry on with what it wrote so far. Then the
canary must appear nowhere: not in the executed notebook (sources, outputs, error messages), not in
any file the run wrote (workspace, proposals, label store, exports, git objects decompressed), not in
the working folder the kernel ran in.
"""
from __future__ import annotations

import shutil
import socket
import zlib
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_grow_ontology.ipynb"
CANARY = "sk-ant-canary-5f0c1e7d9a2b4c6e8f00-DO-NOT-LEAK"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _file_texts(root: Path):
    """(path, bytes) for every file under root; git's loose objects decompressed."""
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.is_symlink():
            continue
        data = p.read_bytes()
        if ".git" in p.parts and "objects" in p.parts and len(p.parent.name) == 2:
            try:
                data = zlib.decompress(data)
            except zlib.error:
                pass
        yield p, data


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("canary")
    runs, cwd = tmp / "runs", tmp / "cwd"
    runs.mkdir()
    cwd.mkdir()
    shutil.copy(NOTEBOOK, cwd / NOTEBOOK.name)
    mp = pytest.MonkeyPatch()
    mp.setenv("ANTHROPIC_API_KEY", CANARY)  # the kernel inherits this process's environment
    mp.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    mp.setenv("WORKBENCH_NOTEBOOK_DIR", str(runs))  # the notebook keeps what it wrote here
    try:
        nb = nbformat.read(cwd / NOTEBOOK.name, as_version=4)
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        mp.undo()
    return nb, runs, cwd


def test_the_claude_cell_ran_with_the_key(canary_run):
    nb, runs, _ = canary_run
    claude_cell = next(c for c in nb.cells if c.cell_type == "code" and "ANTHROPIC_API_KEY" in c.source)
    text = "".join(o.get("text", "") for o in claude_cell.outputs if o.output_type == "stream")
    assert "Claude could not answer" in text, text  # the key path was taken, and failed cleanly
    assert any(runs.rglob("ontology.yaml")), "the run wrote no workspace under WORKBENCH_NOTEBOOK_DIR"


def test_canary_is_not_in_the_executed_notebook(canary_run):
    nb, _, _ = canary_run
    assert CANARY not in nbformat.writes(nb)
    assert "canary-5f0c1e7d" not in nbformat.writes(nb)  # not even a fragment


def test_canary_is_in_no_file_the_run_wrote(canary_run):
    _, runs, cwd = canary_run
    checked = 0
    for root in (runs, cwd):
        for path, data in _file_texts(root):
            checked += 1
            assert CANARY.encode() not in data, f"the canary key leaked into {path}"
            assert b"canary-5f0c1e7d" not in data, f"a fragment of the canary key leaked into {path}"
    assert checked > 20  # the workspace, its git objects, proposals, the data set


def test_the_scan_would_find_a_leak(tmp_path):
    """The scan is not vacuous: a key in a git object (compressed) is found."""
    obj = tmp_path / ".git" / "objects" / "ab"
    obj.mkdir(parents=True)
    (obj / "cdef").write_bytes(zlib.compress(f"blob 40\0key={CANARY}".encode()))
    assert any(CANARY.encode() in data for _, data in _file_texts(tmp_path))
