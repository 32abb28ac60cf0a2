"""Tests for workbench/workspace.py: create/open, clear errors, git history, edits that carry labels."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from workbench.data.store import SegmentData
from workbench.errors import EditError, SettingsError, WorkspaceError
from workbench.ontology.graph import Ontology
from workbench.workspace.folder import FORMAT_VERSION, MARKER_FILE, Workspace
from workbench.workspace.settings import Settings

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


@pytest.fixture
def ws(daisy_ws):
    return daisy_ws


def _git(path: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True).stdout


def _label_some(ws: Workspace, concepts: list[str]) -> list[int]:
    img = ws.store.add_image("daisy/0001.png", "a" * 64, 8, 8, "daisy")
    segs = []
    for i in range(len(concepts)):
        m = np.zeros((8, 8), bool)
        m[i, i] = True
        segs.append(SegmentData((i, i, i + 1, i + 1), 1, m))
    ids = ws.store.add_segments(img, "weightfree-x", segs)
    for sid, c in zip(ids, concepts):
        ws.store.set_label(sid, c, source="person", author="alice")
    return ids


# -- create and open --------------------------------------------------------------------------------------


def test_create_lays_out_the_folder_and_open_reads_it_back(tmp_path, daisy):
    settings = Settings(workers=2, random_state=3)
    with Workspace.create(tmp_path / "new" / "ws", daisy, settings) as ws:
        for name in (MARKER_FILE, ".gitignore", "ontology.yaml", "workbench.yaml", "labels.sqlite"):
            assert (ws.path / name).is_file(), name
        for d in (ws.models_dir, ws.proposals_dir, ws.cache_dir):
            assert d.is_dir()
        assert ws.ontology_path.read_bytes() == daisy.dumps().encode()
        _label_some(ws, ["petal"])
    with Workspace.open(tmp_path / "new" / "ws") as again:
        assert again.ontology == daisy
        assert again.settings == settings
        assert again.store.counts() == {"petal": 1}


def test_create_in_an_existing_empty_folder(tmp_path, daisy):
    (tmp_path / "empty").mkdir()
    Workspace.create(tmp_path / "empty", daisy).close()
    assert (tmp_path / "empty" / MARKER_FILE).exists()


def test_create_refuses_non_empty_folders_files_and_existing_workspaces(tmp_path, daisy):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(WorkspaceError, match="not empty and is not a workspace"):
        Workspace.create(tmp_path / "busy", daisy)
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkspaceError, match="is a file"):
        Workspace.create(tmp_path / "file", daisy)
    Workspace.create(tmp_path / "ws", daisy).close()
    with pytest.raises(WorkspaceError, match="already a workspace"):
        Workspace.create(tmp_path / "ws", daisy)
    with pytest.raises(WorkspaceError, match="needs an Ontology"):
        Workspace.create(tmp_path / "other", {"name": "daisy"})  # type: ignore[arg-type]
    assert not (tmp_path / "other").exists()


def test_open_explains_what_is_wrong(tmp_path, daisy):
    with pytest.raises(WorkspaceError, match="no such folder.*workbench init"):
        Workspace.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "ontology.yaml").write_text(daisy.dumps())
    with pytest.raises(WorkspaceError, match=r"not a workbench workspace \(no \.workbench file\).*workbench init"):
        Workspace.open(tmp_path / "plain")


def test_open_refuses_a_newer_format_with_upgrade_hint(ws):
    marker = ws.path / MARKER_FILE
    text = marker.read_text()
    assert f"version: {FORMAT_VERSION}" in text
    marker.write_text(text.replace(f"version: {FORMAT_VERSION}", f"version: {FORMAT_VERSION + 1}"))
    with pytest.raises(WorkspaceError, match="newer workbench.*upgrade"):
        Workspace.open(ws.path)
    marker.write_text("format: something-else\nversion: 1\n")
    with pytest.raises(WorkspaceError, match="not a workbench workspace marker"):
        Workspace.open(ws.path)


def test_open_names_a_bad_settings_file(ws):
    ws.settings_path.write_text("workerz: 2\n")
    with pytest.raises(SettingsError, match=r"workbench\.yaml.*'workerz'.*did you mean 'workers'"):
        Workspace.open(ws.path)


def test_ontology_is_reread_when_the_file_changes(ws, daisy):
    assert ws.ontology is ws.ontology  # cached
    smaller = Ontology.loads(
        "version: 1\nname: tiny\nroot: daisy\nconcepts:\n- {id: daisy, label: Daisy, parts: [petal]}\n"
        "- {id: petal, label: Petal}\n",
        "tiny.yaml",
    )
    smaller.save(ws.ontology_path)
    assert ws.ontology == smaller
    ws.save_ontology(daisy)
    assert ws.ontology == daisy


def test_save_settings(ws):
    ws.save_settings(ws.settings.replace(crop_size=48))
    assert Settings.load(ws.settings_path).crop_size == 48 and ws.settings.crop_size == 48


# -- git ----------------------------------------------------------------------------------------------------


@needs_git
def test_workspace_is_a_git_repo_with_an_initial_commit(ws):
    assert _git(ws.path, "rev-parse", "--show-toplevel").strip() == str(ws.path.resolve())
    log = _git(ws.path, "log", "--format=%s").splitlines()
    assert len(log) == 1 and "Create workspace" in log[0]
    tracked = set(_git(ws.path, "ls-files").split())
    assert {".workbench", ".gitignore", "ontology.yaml", "workbench.yaml"} <= tracked
    assert "labels.sqlite" not in tracked
    _label_some(ws, ["petal"])  # the store and its WAL change: still nothing to commit
    (ws.cache_dir / "x.npz").write_bytes(b"cache")
    assert _git(ws.path, "status", "--porcelain") == ""
    assert ws.head() == _git(ws.path, "rev-parse", "HEAD").strip()


@needs_git
def test_commit_commits_only_the_given_paths_and_returns_the_sha(ws, daisy):
    (ws.proposals_dir / "0001.yaml").write_text("edits: []\n")
    ws.save_ontology(daisy.with_concepts(daisy["petal"].replace(description="White ray florets.")))
    sha = ws.commit("Describe petals better", ["ontology.yaml"])
    assert sha == ws.head() and len(sha) == 40
    assert _git(ws.path, "show", "--name-only", "--format=", sha).split() == ["ontology.yaml"]
    assert "?? proposals/0001.yaml" in _git(ws.path, "status", "--porcelain")
    assert ws.commit("Nothing changed", ["ontology.yaml"]) is None
    sha2 = ws.commit("Add proposal", [ws.proposals_dir / "0001.yaml"])  # absolute paths work too
    assert sha2 != sha
    with pytest.raises(WorkspaceError, match="not inside the workspace"):
        ws.commit("x", ["../elsewhere.txt"])
    with pytest.raises(WorkspaceError, match="message"):
        ws.commit("  ", ["ontology.yaml"])


@needs_git
def test_commits_work_without_a_configured_identity_and_ignore_an_outer_git_dir(tmp_path, daisy, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "nonexistent.gitconfig"))
    outer = tmp_path / "outer"
    subprocess.run(["git", "init", "-q", str(outer)], check=True)
    monkeypatch.setenv("GIT_DIR", str(outer / ".git"))  # as inside a git hook
    with Workspace.create(tmp_path / "ws", daisy) as ws:
        assert (ws.path / ".git").is_dir()
        monkeypatch.delenv("GIT_DIR")
        assert _git(ws.path, "log", "--format=%an <%ae>").strip() == "Constructability Workbench <workbench@localhost>"
    assert subprocess.run(["git", "-C", str(outer), "log"], capture_output=True).returncode != 0  # no commits there


def test_without_git_the_workspace_works_and_says_so(tmp_path, daisy, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with caplog.at_level("WARNING", logger="workbench.workspace.folder"):
        ws = Workspace.create(tmp_path / "ws", daisy)
    with ws:
        assert "git was not found" in caplog.text
        assert not ws.has_git and ws.head() is None and not (ws.path / ".git").exists()
        _label_some(ws, ["petal"])
        after = ws.apply_edits([{"op": "rename", "old": "petal", "new": "ray_floret"}])
        assert "ray_floret" in after
        with pytest.raises(WorkspaceError, match="install git"):
            ws.commit("Rename petal", ["ontology.yaml"])
    Workspace.open(tmp_path / "ws").close()


# -- edits carry labels -----------------------------------------------------------------------------------------


def test_apply_edits_renames_and_merges_carry_labels(ws):
    ids = _label_some(ws, ["petal", "disk", "leaf", "stem", "none"])
    after = ws.apply_edits(
        [
            {"op": "rename", "old": "petal", "new": "ray_floret"},
            {"op": "merge", "sources": ["leaf", "stem"], "into": "greenery", "label": "Green parts"},
        ],
        author="alice",
    )
    assert ws.ontology == after and Ontology.load(ws.ontology_path) == after
    assert ws.store.counts() == {"disk": 1, "greenery": 2, "none": 1, "ray_floret": 1}
    assert ws.store.label(ids[0]).concept == "ray_floret"
    assert [e.op for e in ws.store.concept_events()] == ["rename", "merge"]
    assert ws.orphan_labels() == {}


def test_removed_concepts_keep_their_labels(ws):
    _label_some(ws, ["leaf", "leaf", "petal"])
    ws.apply_edits([{"op": "remove_concept", "id": "leaf"}])
    assert "leaf" not in ws.ontology
    assert ws.orphan_labels() == {"leaf": 2}
    assert len(ws.store.labels("leaf")) == 2


def test_an_invalid_edit_changes_nothing(ws):
    _label_some(ws, ["petal"])
    before = ws.ontology_path.read_bytes()
    with pytest.raises(EditError):
        ws.apply_edits(
            [{"op": "rename", "old": "petal", "new": "ray_floret"}, {"op": "rename", "old": "nope", "new": "x"}]
        )
    assert ws.ontology_path.read_bytes() == before
    assert ws.store.counts() == {"petal": 1} and ws.store.concept_events() == []


def test_a_failed_ontology_write_rolls_the_labels_back(ws, monkeypatch):
    _label_some(ws, ["petal"])

    def boom(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(Ontology, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        ws.apply_edits([{"op": "rename", "old": "petal", "new": "ray_floret"}])
    assert ws.store.counts() == {"petal": 1} and ws.store.concept_events() == []


@needs_git
def test_apply_edits_with_a_message_commits_the_ontology(ws):
    ws.apply_edits([{"op": "rename", "old": "petal", "new": "ray_floret"}], message="Call petals ray florets")
    assert ws.last_commit == ws.head()
    assert _git(ws.path, "log", "-1", "--format=%s").strip() == "Call petals ray florets"
    assert "ray_floret" in _git(ws.path, "show", "HEAD:ontology.yaml")


def test_export_labels_writes_text_files(ws):
    _label_some(ws, ["petal", "disk"])
    json_path, csv_path = ws.export_labels()
    assert json_path.parent == ws.exports_dir
    assert csv_path.read_text().count("\n") == 3  # header + two labels


def test_a_relative_dataset_setting_is_relative_to_the_workspace_not_the_cwd(ws, tmp_path, monkeypatch):
    assert ws.dataset_root == ws.path  # no data set: relative image paths start at the workspace
    ws.save_settings(ws.settings.replace(dataset="../data"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert ws.dataset_root == ws.path / "../data"
    assert ws.image_path("daisy/0001.png") == ws.path / "../data/daisy/0001.png"
    assert ws.image_path("/abs/x.png") == Path("/abs/x.png")
    ws.save_settings(ws.settings.replace(dataset=str(tmp_path / "abs")))
    assert ws.dataset_root == tmp_path / "abs"
