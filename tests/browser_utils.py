"""Shared helpers for widget and real-browser tests.

- :func:`make_tiny_workspace`: a generated daisy data set (a few 96-px images), segmented into a new
  workspace. Build it once per session and :func:`copy_workspace` per test (copying is ~ms,
  segmenting ~1 s).
- :func:`chromium_or_skip`: the Debian Chromium path, or skip (fail when ``WORKBENCH_REQUIRE_BROWSER=1``,
  as CI sets it, so a missing browser never passes silently).
- :class:`JupyterLab`: a JupyterLab server on loopback with a temp root dir and a random token;
  ``upload_notebook`` puts a notebook there through the contents API.
- :func:`browser_page`: Python Playwright driving ``/usr/bin/chromium`` headless (never a
  downloaded browser: ``playwright install`` is not used).

Test files import it with ``sys.path`` pointing at ``tests/`` (pytest runs with ``--import-mode=importlib``).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "REPO",
    "make_tiny_workspace",
    "copy_workspace",
    "chromium_or_skip",
    "artifacts_dir",
    "ARTIFACTS",
    "JupyterLab",
    "browser_page",
    "notebook_json",
    "run_palette",
]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# ------------------------------------------------------------------------------------------ workspaces
def make_tiny_workspace(root: Path, *, n_per_class: int = 2, size: int = 96, seed: int = 1) -> Path:
    """``root/data`` (generated daisy / not_daisy images with part masks) and ``root/ws`` (a workspace
    with the daisy ontology whose store holds every image's weight-free segments). Returns ``root/ws``."""
    from workbench.data.datasets import generate_demo
    from workbench.data.segment import WeightFreeSegmenter, segment_dataset
    from workbench.ontology.graph import Ontology
    from workbench.workspace.folder import Workspace
    from workbench.workspace.settings import Settings

    folder = generate_demo(root / "data", n_per_class=n_per_class, size=size, seed=seed)
    ws = Workspace.create(root / "ws", Ontology.load(REPO / "ontologies" / "daisy.yaml"),
                          Settings(dataset="../data"))
    try:
        segment_dataset(ws.store, folder, WeightFreeSegmenter(), progress=False)
    finally:
        ws.close()
    return root / "ws"


def copy_workspace(template_ws: Path, dest: Path) -> Path:
    """Copy a tiny workspace *and its data set* (``../data``) to ``dest``; returns the new workspace path."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template_ws.parent / "data", dest / "data")
    shutil.copytree(template_ws, dest / "ws")
    return dest / "ws"


# ------------------------------------------------------------------------------------------ browser
def chromium_or_skip() -> str:
    """The Chromium executable; skip the test when missing, unless ``WORKBENCH_REQUIRE_BROWSER=1`` (fail)."""
    if Path(CHROMIUM).exists():
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            _missing("Python playwright is not installed: pip install -e '.[test]'")
        return CHROMIUM
    _missing(f"{CHROMIUM} not found: run .ci/install-browser (apt-get install chromium chromium-driver)")
    return CHROMIUM  # unreachable


def _missing(why: str) -> None:
    if os.environ.get("WORKBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"WORKBENCH_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why)


#: Where the browser tests save screenshots of every widget (git-ignored), unless $WORKBENCH_ARTIFACTS says.
ARTIFACTS = REPO / "test-artifacts" / "browser"


def artifacts_dir(tmp_path: Path | None = None) -> Path:  # noqa: ARG001 - kept for the callers' signature
    """Where screenshots go: ``$WORKBENCH_ARTIFACTS`` (CI keeps it), else ``test-artifacts/browser/`` in
    the repository (ignored by git), so a person can open them after a run."""
    d = Path(os.environ.get("WORKBENCH_ARTIFACTS") or ARTIFACTS)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterLab:
    """A JupyterLab server for one test: loopback only, a random token, ``root`` as its root folder.

    Use as a context manager; the server (and its kernels) stop on exit. ``url(path)`` gives an
    address with the token; ``api(method, path, body)`` calls the REST API.
    """

    def __init__(self, root: Path, *, env: dict[str, str] | None = None, extra_args: list[str] | None = None,
                 unset: tuple[str, ...] = ()):
        self.root = Path(root)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.log_path = self.root.parent / f"jupyterlab-{self.port}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab") -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def __enter__(self) -> JupyterLab:
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
            "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
            "jupyterlab.NeverCheckForUpdate", "--allow-root", *self.extra_args,
        ]
        self.env.setdefault("JUPYTER_CONFIG_DIR", str(self.root.parent / "jupyter-config"))
        # no "get notified about Jupyter news?" toast over the widgets in every screenshot
        news = (Path(self.env["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
                / "notification.jupyterlab-settings")
        if not news.exists():
            news.parent.mkdir(parents=True, exist_ok=True)
            news.write_text(json.dumps({"fetchNews": "false"}))
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env,
                                     cwd=str(self.root), start_new_session=True)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.proc.returncode}); log:\n{self.log()}")
            try:
                self.api("GET", "api/status")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        self.__exit__(None, None, None)
        raise RuntimeError(f"JupyterLab did not answer on {self.base} within 40 s; log:\n{self.log()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                for k in self.api("GET", "api/kernels") or []:
                    self.api("DELETE", f"api/kernels/{k['id']}")
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base}/{path.lstrip('/')}", data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def upload_file(self, name: str, content: dict[str, Any]) -> str:
        """Put a notebook (nbformat data) at ``name`` through the contents API; returns its path."""
        self.api("PUT", f"api/contents/{name}", {"type": "notebook", "format": "json", "content": content})
        return name

    def upload_notebook(self, name: str, cells: list[str]) -> str:
        """Put a notebook made of ``cells`` (code) at ``name`` through the contents API; returns its path."""
        self.api("PUT", f"api/contents/{name}", {"type": "notebook", "format": "json", "content": notebook_json(cells)})
        return name

    def start_session(self, path: str, kernel: str = "python3") -> dict[str, Any]:
        """Start a kernel session for the notebook at ``path`` (JupyterLab then attaches to it)."""
        return self.api("POST", "api/sessions", {"path": path, "name": Path(path).name, "type": "notebook",
                                                  "kernel": {"name": kernel}})


def notebook_json(cells: list[str]) -> dict[str, Any]:
    """An nbformat 4 notebook (as plain data) of code cells with stable ids."""
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "source": src, "outputs": [],
                   "execution_count": None} for i, src in enumerate(cells)],
    }


@contextlib.contextmanager
def browser_page(*, viewport: tuple[int, int] = (1280, 900)) -> Iterator[Any]:
    """A Playwright page in headless Debian Chromium (``/usr/bin/chromium``); closed on exit."""
    from playwright.sync_api import sync_playwright

    exe = chromium_or_skip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            yield page
        finally:
            browser.close()


def run_palette(page: Any, label: str) -> None:
    """Run the JupyterLab command labelled ``label`` through the command palette (Ctrl+Shift+C)."""
    page.keyboard.press("Control+Shift+C")
    box = page.locator(".lm-CommandPalette-input")
    box.wait_for(state="visible", timeout=10_000)
    box.fill(label)
    page.locator(".lm-CommandPalette-item", has_text=label).first.wait_for(timeout=10_000)
    box.press("Enter")
