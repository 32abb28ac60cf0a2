"""Which workspace each notebook kernel opened, so the sidebar follows the notebook with no setting typed.

``workbench.open(path)`` in a Jupyter kernel writes one small JSON file next to the kernel's
connection file (the Jupyter runtime folder of the server that started the kernel)::

    <runtime>/workbench-kernel-<kernel id>.json   {"workspace": "/abs/path", "kernel": "<id>", "pid": 123, "time": ...}

The server extension reads it for the kernel of the notebook the person is looking at (the front end
knows the notebook's kernel id), so the sidebar shows the workspace the notebook opened, across
notebooks and kernels, without guessing. The file is removed when the kernel exits. Outside a kernel
(a script, the CLI, nbval's plain kernels included: they have a connection file too, so they register
as well) nothing else changes. A file per kernel: two kernels never write the same file.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path

from workbench._io import atomic_write_text

__all__ = ["PREFIX", "KERNEL_ID", "kernel_connection", "register", "lookup", "entry_path"]

#: Registry files are named ``<PREFIX><kernel id>.json``.
PREFIX = "workbench-kernel-"
#: What a kernel id looks like (jupyter_server uses UUIDs); anything else is refused.
KERNEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_MAX_ENTRY_BYTES = 8192
_registered: dict[str, Path] = {}


def kernel_connection() -> tuple[str, Path] | None:
    """``(kernel id, runtime folder)`` of the running IPython kernel, or None outside a kernel."""
    if "ipykernel" not in sys.modules:  # every kernel has it loaded; a script need not import it to learn so
        return None
    try:
        from ipykernel.connect import get_connection_file
    except ImportError:
        return None
    try:
        conn = Path(get_connection_file())
    except Exception:  # noqa: BLE001 - not in a running kernel (RuntimeError), or an odd set-up
        return None
    m = re.fullmatch(r"kernel-(.+)\.json", conn.name)
    if m is None or not KERNEL_ID.match(m.group(1)):
        return None
    return m.group(1), conn.resolve().parent


def entry_path(runtime_dir: str | os.PathLike[str], kernel_id: str) -> Path:
    """The registry file of ``kernel_id`` in ``runtime_dir`` (the id is checked first)."""
    if not isinstance(kernel_id, str) or not KERNEL_ID.match(kernel_id):
        raise ValueError(f"not a kernel id: {str(kernel_id)[:40]!r}")
    return Path(runtime_dir) / f"{PREFIX}{kernel_id}.json"


def register(workspace_path: str | os.PathLike[str]) -> Path | None:
    """Record that this kernel opened ``workspace_path``; returns the registry file (None outside a kernel).

    Never raises: the notebook works the same when the record cannot be written.
    """
    found = kernel_connection()
    if found is None:
        return None
    kernel_id, runtime = found
    path = entry_path(runtime, kernel_id)
    entry = {"workspace": os.path.realpath(workspace_path), "kernel": kernel_id, "pid": os.getpid(),
             "time": time.time()}
    try:
        atomic_write_text(path, json.dumps(entry))
    except OSError:
        return None
    if kernel_id not in _registered:
        atexit.register(_forget, path)
    _registered[kernel_id] = path
    return path


def _forget(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def lookup(runtime_dir: str | os.PathLike[str], kernel_id: str) -> Path | None:
    """The workspace folder the kernel ``kernel_id`` opened last (absolute, real), or None.

    A malformed, oversized or missing record reads as None; so does a folder that no longer exists.
    """
    try:
        path = entry_path(runtime_dir, kernel_id)
    except ValueError:
        return None
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_ENTRY_BYTES + 1)
        if len(raw) > _MAX_ENTRY_BYTES:
            return None
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    ws = data.get("workspace") if isinstance(data, dict) else None
    if not isinstance(ws, str) or not os.path.isabs(ws):
        return None
    real = Path(os.path.realpath(ws))
    return real if real.is_dir() else None
