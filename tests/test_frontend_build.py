"""The JupyterLab extension's committed build matches its source, and it installs with the package.

The front end (workbench/jupyter/_frontend) is built by hand (``npm run build:prod``) and the output is
committed in workbench/jupyter/labextension, so ``pip install`` needs no Node. These tests catch a source
change without a rebuild, a settings schema that could hold a secret or unknown keys, and packaging
that would not ship or enable the extension.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from workbench.jupyter import server as _server
from workbench.workspace.settings import Settings

REPO = Path(__file__).resolve().parents[1]
FRONTEND = REPO / "workbench" / "jupyter" / "_frontend"
BUILD = REPO / "workbench" / "jupyter" / "labextension"
NAME = "constructability-workbench"


def _build_hash_module():
    spec = importlib.util.spec_from_file_location("_wb_build_hash", FRONTEND / "build_hash.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_build_matches_the_source() -> None:
    recorded = (BUILD / "build_hash.txt").read_text().strip()
    current = _build_hash_module().source_hash(FRONTEND)
    assert recorded == current, (
        "workbench/jupyter/_frontend changed since workbench/jupyter/labextension was built: run "
        "`cd workbench/jupyter/_frontend && npm ci && npm run build:prod` and commit workbench/jupyter/labextension"
    )


def test_source_hash_sees_every_input(tmp_path: Path) -> None:
    mod = _build_hash_module()
    copy = tmp_path / "fe"
    shutil.copytree(FRONTEND, copy, ignore=shutil.ignore_patterns("node_modules", "lib"))
    before = mod.source_hash(copy)
    names = {p.relative_to(copy).as_posix() for p in mod.source_files(copy)}
    assert {"src/index.ts", "src/commands.ts", "schema/plugin.json", "package.json", "package-lock.json"} <= names
    (copy / "node_modules").mkdir()
    (copy / "node_modules" / "x.ts").write_text("ignored")
    assert mod.source_hash(copy) == before
    src = copy / "src" / "panel.ts"
    src.write_text(src.read_text() + "\n// edited\n")
    assert mod.source_hash(copy) != before


def test_build_output_is_a_loadable_prebuilt_extension() -> None:
    pkg = json.loads((BUILD / "package.json").read_text())
    assert pkg["name"] == NAME
    assert (BUILD / pkg["jupyterlab"]["_build"]["load"]).is_file()
    installed = json.loads((BUILD / "install.json").read_text())
    assert installed["packageName"] == NAME
    # the schema shipped is the schema in the source
    shipped = json.loads((BUILD / "schemas" / NAME / "plugin.json").read_text())
    assert shipped == json.loads((FRONTEND / "schema" / "plugin.json").read_text())
    assert json.loads((FRONTEND / "package.json").read_text())["name"] == NAME


def test_settings_schema_is_closed_and_never_holds_a_key() -> None:
    schema = json.loads((FRONTEND / "schema" / "plugin.json").read_text())
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    for name, spec in props.items():
        assert not re.search(r"key|token|secret|passw|credential", name, re.IGNORECASE), name
        assert spec.get("description"), f"setting {name} needs a description"
    assert "ANTHROPIC_API_KEY" in schema["description"]
    # every per-request override the server accepts is a setting, described with the workspace name
    assert len(props) == len(_server.SETTINGS_OVERRIDES) + 1  # + the workspace folder
    fields = {f for f in Settings.__dataclass_fields__}
    for field in _server.SETTINGS_OVERRIDES:
        assert field in fields
        assert any(field in p["description"] for p in props.values()), field
    # the front end maps each setting to the server's name: the mapping lives in index.ts
    index = (FRONTEND / "src" / "index.ts").read_text()
    for field in _server.SETTINGS_OVERRIDES:
        assert re.search(rf"\b{field}: settings\.\w+", index), field


def test_one_plugin_id_and_command_ids_in_one_place() -> None:
    index = (FRONTEND / "src" / "index.ts").read_text()
    assert re.findall(r"PLUGIN_ID = '([^']+)'", index) == [f"{NAME}:plugin"]
    commands = (FRONTEND / "src" / "commands.ts").read_text()
    block = commands.split("export namespace CommandIDs {", 1)[1].split("}", 1)[0]
    ids = re.findall(r"export const \w+ = '([^']+)'", block)
    assert len(ids) == len(set(ids)) >= 7
    assert all(i.startswith("workbench:") for i in ids)
    assert "category: CATEGORY" in commands and "CATEGORY = 'Workbench'" in commands
    for src in (FRONTEND / "src").glob("*.ts"):
        text = src.read_text()
        assert "console.log" not in text, src.name
        assert "innerHTML" not in text, f"{src.name}: model text must be set with textContent"
        other = set(re.findall(r"'(workbench:[a-z-]+)'", text)) - set(ids) - {"workbench:icon"}
        assert not other, f"{src.name} uses command ids not declared in commands.ts: {other}"


def test_npm_resolves_against_the_snapshot_and_the_lockfile_is_committed() -> None:
    assert "before=" in (FRONTEND / ".npmrc").read_text()
    lock = json.loads((FRONTEND / "package-lock.json").read_text())
    assert lock["packages"][""]["name"] == NAME
    tracked = subprocess.run(["git", "ls-files", "workbench/jupyter/_frontend", "workbench/jupyter/labextension"], cwd=REPO,
                             capture_output=True, text=True, check=False).stdout.split()  # fmt: skip
    if tracked:  # in a git checkout: the lockfile and the build are committed, node_modules is not
        assert "workbench/jupyter/_frontend/package-lock.json" in tracked
        assert "workbench/jupyter/labextension/package.json" in tracked
        assert not any("node_modules" in t for t in tracked)


@pytest.mark.slow
def test_wheel_ships_the_extension_and_enables_the_server_extension(tmp_path: Path) -> None:
    """Build the wheel (no Node involved) and look inside: ~10-30 s, needs hatchling from PyPI."""
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(REPO)],
                       capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    if r.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if ".data/data/" in n]
    assert any(n.endswith(f"share/jupyter/labextensions/{NAME}/package.json") for n in data)
    assert any(n.endswith(f"share/jupyter/labextensions/{NAME}/install.json") for n in data)
    assert any(n.endswith("etc/jupyter/jupyter_server_config.d/workbench.json") for n in data)
    assert not any(n.startswith("workbench/jupyter/_frontend") for n in names)
    assert "workbench/jupyter/server.py" in names
