"""A workspace made by the release before the stage subpackages (the flat ``workbench/*.py`` layout)
opens and trains with the current code: its ``ontology.yaml``, ``workbench.yaml``, ``labels.sqlite``,
git history and ``models/<concept>.safetensors`` + ``.json`` all read, and ``workbench train`` with the
same settings finds every saved model up to date.

The workspace and its data set are ``tests/fixtures/old-workspace.tar.gz``; ``tests/fixtures/README.md``
says exactly how the old release built it.
"""
from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.data.segment import WeightFreeSegmenter, settings_hash
from workbench.models import load_model, read_model_info
from workbench.ontology.graph import Ontology
from workbench.workspace.folder import Workspace
from workbench.workspace.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "tests" / "fixtures" / "old-workspace.tar.gz"
#: Where the old release built it: the data set path its workbench.yaml records.
BUILT_AT = "/tmp/oldws-build/data"
CONCEPTS = {"daisy", "flower_head", "disk", "petal", "stem", "leaf"}
#: What the old release's build reported: 12 images, 122 segments, all labelled from the masks.
IMAGES, SEGMENTS = 12, 122


@pytest.fixture
def old(tmp_path) -> Path:
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python < 3.10.12: our own archive
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(tmp_path, **safe)
    return tmp_path / "old-workspace"


def _move_dataset(root: Path) -> None:
    """What a person does after moving the folders: point ``dataset`` at the data set's new place."""
    path = root / "ws" / "workbench.yaml"
    text = path.read_text()
    assert f"dataset: {BUILT_AT}\n" in text
    path.write_text(text.replace(f"dataset: {BUILT_AT}\n", f"dataset: {root / 'data'}\n"))


def test_the_old_workspace_opens_and_everything_in_it_reads(old):
    with Workspace.open(old / "ws") as ws:
        assert ws.settings.dataset == BUILT_AT  # the old file, read as it is
        assert ws.ontology == Ontology.load(ROOT / "ontologies" / "daisy.yaml")
        assert ws.settings == Settings.load(old / "ws" / "workbench.yaml")
        assert (ws.settings.segmenter, ws.settings.crop_size, ws.settings.composition_relations) == (
            "weightfree", 32, True)
        assert len(ws.store.images()) == IMAGES
        assert ws.store.progress() == (SEGMENTS, SEGMENTS)
        assert ws.store.progress(settings_hash(WeightFreeSegmenter())) == (SEGMENTS, SEGMENTS)  # same segmenter
        assert ws.head() is not None and ws.has_git
        log = subprocess.run(["git", "log", "--format=%s"], cwd=ws.path, capture_output=True, text=True,
                             check=True).stdout
        assert log.strip() == "Create workspace for ontology 'daisy'"
        for c in CONCEPTS:
            side = json.loads((ws.models_dir / f"{c}.json").read_text())
            model = load_model(ws.models_dir / f"{c}.safetensors")
            info = read_model_info(ws.models_dir / f"{c}.safetensors")
            assert model.concept == c and model.is_fitted, c
            assert model.n_params == side["metrics"]["n_params"], c
            assert info, c


def test_the_old_workspace_gets_a_test_split_once_then_retrains_only_what_changes(old, capsys):
    _move_dataset(old)
    ws_path = old / "ws"
    assert main(["train", "--workspace", str(ws_path), "--max-epochs", "2"]) == 0  # as the old release trained it
    out = capsys.readouterr().out
    # the old release had no test split: the first train assigns one, says so once, and retrains every
    # concept (some of its training images are test images now)
    assert "This workspace now keeps 2 test images aside" in out and "every concept retrains once" in out
    lines = {ln.split()[1]: ln.split()[0] for ln in out.splitlines() if ln.startswith("  ") and ln.split()[0] in (
        "kept", "trained")}
    assert set(lines) == CONCEPTS and set(lines.values()) == {"trained"}, out
    with Workspace.open(ws_path) as ws:
        sides = ws.store.image_splits()
    assert len(sides) == IMAGES and sorted(sides.values()).count("test") == 2
    saved = {p.name: p.read_bytes() for p in (ws_path / "models").iterdir()}
    assert main(["train", "--workspace", str(ws_path), "--max-epochs", "2"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[1]: ln.split()[0] for ln in out.splitlines() if ln.startswith("  ") and ln.split()[0] in (
        "kept", "trained")}
    retrained = sorted(c for c, verb in lines.items() if verb == "trained")
    assert retrained == [] and "test images aside" not in out, out  # said once; nothing changed, nothing retrains
    assert {p.name: p.read_bytes() for p in (ws_path / "models").iterdir()} == saved
    with Workspace.open(ws_path) as ws:
        assert ws.store.image_splits() == sides  # no image moved

    # and it trains what did change: a relabelled part retrains, with its parents
    with Workspace.open(ws_path) as ws:
        sid = next(s.id for s, lab in ws.store.segments_with_labels() if lab is not None and lab.concept == "stem")
        ws.store.set_label(sid, "none", source="person", author="ana")
    assert main(["train", "--workspace", str(ws_path), "--max-epochs", "2"]) == 0
    out = capsys.readouterr().out
    trained = {ln.split()[1] for ln in out.splitlines() if ln.startswith("  trained")}
    assert trained == {"stem", "daisy"}, out
