"""The notebooks under pytest (nbval): what they write goes into one temporary folder, removed at the end.

The tour keeps its folder after a run (in ``runs/`` next to it, so the labeler and the JupyterLab
sidebar keep working); under pytest it must not litter the checkout, so ``WORKBENCH_NOTEBOOK_DIR``
points every notebook kernel (they inherit this process's environment) at a temporary folder,
unless it is set already. This module is loaded when pytest collects ``notebooks/``.
"""
from __future__ import annotations

import os
import shutil
import tempfile

_MADE: str | None = None
if not os.environ.get("WORKBENCH_NOTEBOOK_DIR"):
    _MADE = tempfile.mkdtemp(prefix="wb-nbval-")
    os.environ["WORKBENCH_NOTEBOOK_DIR"] = _MADE


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001 - pytest's hook signature
    if _MADE is not None:
        shutil.rmtree(_MADE, ignore_errors=True)
