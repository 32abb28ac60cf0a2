"""Shared test fixtures: the daisy ontology and daisy workspaces built once per session.

A workspace is a folder (a git repository, a SQLite label store, model files), so tests never share
one: each session builds a *template* the first time a test asks for it, and every test gets its own
copy (``shutil.copytree`` of the folder, ``.git`` and all, in milliseconds) in its ``tmp_path``.

Workspaces, each one step further than the last:

- ``daisy_ws``: ``ontologies/daisy.yaml``, default settings, nothing else (``tmp_path/ws``).
- ``segmented_ws``: a small generated daisy / not-daisy data set (``tmp_path/data``, 3 images per
  class, 96 pixels, with part masks) segmented by the weight-free segmenter, no labels; the setting
  ``dataset: ../data`` points at the copy.
- ``labelled_ws``: the same, every segment labelled from the ground-truth part masks.
- ``trained_ws``: the same, every concept trained (``max_epochs`` :data:`FAST_EPOCHS`, otherwise the
  settings' configuration, as ``workbench train --max-epochs 2`` would); ``trained`` gives it with its
  models loaded and its image and segment tables (:class:`TrainedTables`).

Module-scoped fixtures copy a template themselves: ``workspace_templates.copy("labelled", folder)``.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workbench.data.datasets import ImageFolder, generate_demo
from workbench.data.labelers import label_from_masks
from workbench.data.segment import WeightFreeSegmenter, segment_dataset, settings_hash
from workbench.ontology.graph import Ontology
from workbench.workspace.folder import Workspace
from workbench.workspace.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DAISY_YAML = REPO / "ontologies" / "daisy.yaml"
#: The generated data set of the session's workspaces: (images per class, size in pixels, seed).
DEMO_SET = (5, 96, 1)
#: Part-net epochs of ``trained_ws``.
FAST_EPOCHS = 2
KINDS = ("bare", "segmented", "labelled", "trained")


class WorkspaceTemplates:
    """The session's template workspaces, built on first use (each from the one before)."""

    def __init__(self, factory: pytest.TempPathFactory):
        self._factory = factory
        self._roots: dict[str, Path] = {}

    def root(self, kind: str) -> Path:
        """The template folder of ``kind``: ``ws/`` (and ``data/`` from ``segmented`` on). Never write to it."""
        if kind not in KINDS:
            raise ValueError(f"no workspace template {kind!r}; one of {', '.join(KINDS)}")
        if kind not in self._roots:
            root = self._factory.mktemp(f"template-{kind}")
            getattr(self, f"_build_{kind}")(root)
            self._roots[kind] = root
        return self._roots[kind]

    def copy(self, kind: str, dest: Path) -> Path:
        """Copy the ``kind`` template into ``dest`` (``dest/ws``, ``dest/data``); return the workspace path."""
        shutil.copytree(self.root(kind), dest, symlinks=True, dirs_exist_ok=True)
        return dest / "ws"

    def _from(self, kind: str, root: Path) -> Workspace:
        return Workspace.open(self.copy(kind, root))

    def _build_bare(self, root: Path) -> None:
        Workspace.create(root / "ws", Ontology.load(DAISY_YAML)).close()

    def _build_segmented(self, root: Path) -> None:
        n, size, seed = DEMO_SET
        folder = generate_demo(root / "data", n_per_class=n, size=size, seed=seed)
        with Workspace.create(root / "ws", Ontology.load(DAISY_YAML), Settings(dataset="../data")) as ws:
            segment_dataset(ws.store, folder, WeightFreeSegmenter(), cache_dir=ws.cache_dir / "segments",
                            progress=False)

    def _build_labelled(self, root: Path) -> None:
        with self._from("segmented", root) as ws:
            label_from_masks(ws.store, ImageFolder(root / "data"), ws.ontology,
                             settings_hash=settings_hash(WeightFreeSegmenter()))

    def _build_trained(self, root: Path) -> None:
        with self._from("labelled", root) as ws:
            train_fast(ws)


def train_fast(ws: Workspace) -> TrainedTables:
    """Train ``ws``'s concept models as ``workbench train --max-epochs 2`` does (only what changed: on
    a trained workspace, it loads the saved models)."""
    # here, not at the top: it imports torch, which every test run would pay for at start-up
    from workbench.models.job import collect_workspace, training_config
    from workbench.models.train import train_hybrid

    shash = settings_hash(WeightFreeSegmenter())
    config = training_config(ws.settings, max_epochs=FAST_EPOCHS)
    images, segments = collect_workspace(ws, config, shash)  # the workspace's stored split, test included
    result = train_hybrid(ws.ontology, images, segments, config, models_dir=ws.models_dir, settings_hash=shash)
    return TrainedTables(ws, config, images, segments, result)


@dataclass
class TrainedTables:
    """A trained workspace as the evaluation sees it: the configuration it was trained with, its image and
    segment tables (split as training split them) and the training result (``.models``)."""

    ws: Workspace
    config: Any
    images: Any
    segments: Any
    result: Any


@pytest.fixture
def daisy() -> Ontology:
    """The shipped daisy ontology, loaded fresh."""
    return Ontology.load(DAISY_YAML)


@pytest.fixture(scope="session")
def workspace_templates(tmp_path_factory: pytest.TempPathFactory) -> WorkspaceTemplates:
    return WorkspaceTemplates(tmp_path_factory)


def _open_copy(templates: WorkspaceTemplates, kind: str, dest: Path) -> Iterator[Workspace]:
    with Workspace.open(templates.copy(kind, dest)) as ws:
        yield ws


@pytest.fixture
def daisy_ws(workspace_templates: WorkspaceTemplates, tmp_path: Path) -> Iterator[Workspace]:
    """A new workspace with the daisy ontology and default settings, at ``tmp_path/ws``."""
    yield from _open_copy(workspace_templates, "bare", tmp_path)


@pytest.fixture
def segmented_ws(workspace_templates: WorkspaceTemplates, tmp_path: Path) -> Iterator[Workspace]:
    """A daisy workspace over ``tmp_path/data`` (generated), segmented, no labels."""
    yield from _open_copy(workspace_templates, "segmented", tmp_path)


@pytest.fixture
def labelled_ws(workspace_templates: WorkspaceTemplates, tmp_path: Path) -> Iterator[Workspace]:
    """:func:`segmented_ws` with every segment labelled from the ground-truth part masks."""
    yield from _open_copy(workspace_templates, "labelled", tmp_path)


@pytest.fixture
def trained_ws(workspace_templates: WorkspaceTemplates, tmp_path: Path) -> Iterator[Workspace]:
    """:func:`labelled_ws` with every concept's model trained (fast settings) into ``models/``."""
    yield from _open_copy(workspace_templates, "trained", tmp_path)


@pytest.fixture
def trained(trained_ws: Workspace) -> TrainedTables:
    """:func:`trained_ws` with its saved models loaded and its tables collected (nothing retrains)."""
    return train_fast(trained_ws)
