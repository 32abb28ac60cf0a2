"""The Binder configuration says what the project needs (repo2docker reads only binder/).

What can be checked without building the image (``scripts/check_binder.sh`` builds it): a CPU torch
pinned exactly, the project installed non-editable (an editable install would not place the prebuilt
JupyterLab extension), the extension names postBuild enables are the ones the package ships, the
Python version fits ``requires-python``, and the shell scripts parse.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"


def _requirements() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def test_requirements_pin_a_cpu_torch_and_install_the_project():
    req = _requirements()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in req
    torch = [ln for ln in req if re.match(r"^torch\b", ln)]
    assert len(torch) == 1 and re.fullmatch(r"torch==\d+\.\d+\.\d+", torch[0]), torch
    assert "." in req, "the project itself ('.') must be installed"
    assert not any(ln.startswith(("-e", "--editable")) for ln in req), "editable installs skip the labextension"


def test_torch_pin_satisfies_the_project():
    pin = next(ln for ln in _requirements() if ln.startswith("torch=="))[len("torch=="):]
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floor = next(d for d in deps if d.startswith("torch"))
    m = re.match(r"torch>=(\d+)\.(\d+)", floor)
    assert m and tuple(int(x) for x in pin.split(".")[:2]) >= (int(m[1]), int(m[2])), (pin, floor)


def test_runtime_python_fits_requires_python():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert m, runtime
    need = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    lo = re.match(r">=(\d+)\.(\d+)", need)
    assert (int(m[1]), int(m[2])) >= (int(lo[1]), int(lo[2]))


def test_postbuild_enables_the_extensions_the_package_ships():
    post = (BINDER / "postBuild").read_text()
    assert post.startswith("#!/bin/bash") and os.access(BINDER / "postBuild", os.X_OK)
    labext = json.loads((ROOT / "workbench" / "jupyter" / "labextension" / "package.json").read_text())["name"]
    assert f"jupyter labextension enable {labext}" in post
    server = json.loads((ROOT / "jupyter-config" / "jupyter_server_config.d" / "workbench.json").read_text())
    (module,) = server["ServerApp"]["jpserver_extensions"]
    assert f"jupyter server extension enable --sys-prefix {module}" in post


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("script", ["binder/postBuild", "binder/start", "scripts/check_binder.sh"])
def test_scripts_parse(script):
    r = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_tour_the_badge_opens_exists():
    assert (ROOT / "notebooks" / "00_tour.ipynb").is_file()
    assert "notebooks/00_tour.ipynb" in (ROOT / "scripts" / "check_binder.sh").read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_start_keeps_notebook_output_in_home_runs_and_execs_the_server(tmp_path):
    """binder/start must exec its arguments (it wraps the server) with WORKBENCH_NOTEBOOK_DIR set."""
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_NOTEBOOK_DIR"} | {"HOME": str(tmp_path)}
    r = subprocess.run(["bash", str(BINDER / "start"), "sh", "-c", 'echo "$WORKBENCH_NOTEBOOK_DIR"; exit 7'],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 7 and r.stdout.strip() == str(tmp_path / "runs"), (r.returncode, r.stdout, r.stderr)
    env["WORKBENCH_NOTEBOOK_DIR"] = "/elsewhere"  # a value set by the user wins
    r = subprocess.run(["bash", str(BINDER / "start"), "sh", "-c", 'echo "$WORKBENCH_NOTEBOOK_DIR"'],
                       capture_output=True, text=True, env=env)
    assert r.stdout.strip() == "/elsewhere"
