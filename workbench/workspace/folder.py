"""The workspace: one folder, a git repository, holding an ontology, its labels, models and proposals.

Layout::

    my-workspace/
      .workbench        marker + format version (YAML); what makes a folder a workspace
      .gitignore        cache/ and the SQLite label store (see below)
      ontology.yaml     the concept graph (workbench.ontology.graph), committed: every change a diff
      workbench.yaml    settings (workbench.workspace.settings), committed
      labels.sqlite     the label store (workbench.data.store), NOT committed
      models/           one file per concept model + metrics, committed
      proposals/        NNNN.yaml proposals and their verdicts, committed
      pins/             <concept>.yaml: per-concept tests (workbench.workspace.pins), committed
      cache/            segment / crop caches, rebuilt on demand, not committed

Why the label store is not in git: it is already durable (every label committed to SQLite as it is
made, WAL + ``synchronous=FULL``), it is binary (git can neither diff nor merge it, and every commit
would store a full copy), and copying it while a labeler writes can catch the database without its
``-wal`` file. For a reviewable, committable record of the labels use :meth:`Workspace.export_labels`
(JSON + CSV text under ``exports/``), and for a byte copy :meth:`LabelStore.backup`.

Git is used through the ``git`` command. Commits made by the workbench use the user's configured
identity, or "Constructability Workbench <workbench@localhost>" where none is configured, and never
ask for a signing passphrase (``commit.gpgsign=false``) nor run commit hooks (``--no-verify``: they
commit files the workbench itself wrote, and a global hook must not break them). Without git the workspace still works;
:attr:`Workspace.has_git` is False and :meth:`Workspace.commit` says how to fix it.

>>> import tempfile, os
>>> from workbench.ontology.graph import Ontology, Concept
>>> o = Ontology("daisy", "daisy", [Concept("daisy", "Daisy", parts=("petal",)), Concept("petal", "Petal")])
>>> ws = Workspace.create(os.path.join(tempfile.mkdtemp(), "ws"), o)
>>> ws.ontology == o, ws.ontology_path.name, ws.head() is not None
(True, 'ontology.yaml', True)
>>> ws.apply_edits([{"op": "rename", "old": "petal", "new": "ray_floret"}]).parts("daisy")
('ray_floret',)
>>> ws.close()
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench._io import atomic_write_text
from workbench._version import __version__
from workbench._yaml import dump_yaml, read_yaml_file
from workbench.data.store import NONE, LabelStore
from workbench.errors import WorkspaceError
from workbench.ontology.edits import apply_edits as _apply_edits
from workbench.ontology.edits import edit_from_dict
from workbench.ontology.graph import Ontology
from workbench.workspace.pins import follow_edits
from workbench.workspace.settings import SETTINGS_FILE, Settings

__all__ = [
    "Workspace",
    "FORMAT_VERSION",
    "MARKER_FILE",
    "ONTOLOGY_FILE",
    "STORE_FILE",
    "GITIGNORE",
]

#: Workspace layout version written to ``.workbench``; a higher one is refused with "upgrade".
FORMAT_VERSION = 1
MARKER_FILE = ".workbench"
ONTOLOGY_FILE = "ontology.yaml"
STORE_FILE = "labels.sqlite"
_MARKER_FORMAT = "constructability-workbench-workspace"
_GIT_FALLBACK_IDENTITY = ("Constructability Workbench", "workbench@localhost")
_GIT_TIMEOUT_S = 60

GITIGNORE = """\
# Written by the Constructability Workbench.
# Caches are rebuilt from the images on demand.
cache/
# The label store is durable on its own (SQLite, every label committed as it is made) and binary:
# git cannot diff or merge it, and a copy taken mid-write can miss its -wal file. Commit a text
# export instead (Workspace.export_labels writes exports/labels.json and .csv).
labels.sqlite
labels.sqlite-wal
labels.sqlite-shm
labels.sqlite-journal
"""

log = logging.getLogger(__name__)


class Workspace:
    """An open workspace. Make one with :meth:`create` or :meth:`open`; close it (or use ``with``)."""

    def __init__(self, path: Path, settings: Settings, store: LabelStore):
        # Use Workspace.create / Workspace.open; this only wires already-validated parts together.
        self.path = path
        self.settings = settings
        self.store = store
        self._ontology: Ontology | None = None
        self._ontology_stamp: tuple[int, int, int] | None = None
        self.last_commit: str | None = None  # sha of the commit apply_edits(message=...) made

    # -- paths ---------------------------------------------------------------------------------------------

    @property
    def ontology_path(self) -> Path:
        return self.path / ONTOLOGY_FILE

    @property
    def settings_path(self) -> Path:
        return self.path / SETTINGS_FILE

    @property
    def store_path(self) -> Path:
        return self.path / STORE_FILE

    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    @property
    def proposals_dir(self) -> Path:
        return self.path / "proposals"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    @property
    def exports_dir(self) -> Path:
        return self.path / "exports"

    @property
    def dataset_root(self) -> Path:
        """The folder the store's relative image paths start from: the ``dataset`` setting (absolute, or
        relative to the workspace, ``~`` expanded), else the workspace itself."""
        ds = self.settings.dataset
        if not ds:
            return self.path
        p = Path(os.path.expanduser(ds))
        return p if p.is_absolute() else self.path / p

    def image_path(self, stored: str | os.PathLike[str]) -> Path:
        """Where the image the store recorded as ``stored`` lives (absolute paths stay as they are)."""
        p = Path(stored)
        return p if p.is_absolute() else self.dataset_root / p

    # -- create / open -------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], ontology: Ontology, settings: Settings | None = None
    ) -> Workspace:
        """Make a new workspace in ``path`` (a new or empty folder) and commit it to a new git repository."""
        if not isinstance(ontology, Ontology):
            raise WorkspaceError(f"Workspace.create needs an Ontology, got {type(ontology).__name__}")
        settings = Settings() if settings is None else settings
        if not isinstance(settings, Settings):
            raise WorkspaceError(f"Workspace.create needs a Settings or None, got {type(settings).__name__}")
        path = Path(path).expanduser().absolute()
        if (path / MARKER_FILE).exists():
            raise WorkspaceError(f"{path}: already a workspace; use it with `--workspace {path}` (e.g. `workbench "
                                 f"segment --workspace {path}`), or in a notebook with `workbench.open('{path}')`")
        if path.exists() and not path.is_dir():
            raise WorkspaceError(f"{path}: is a file; choose a new or empty folder for the workspace")
        if path.is_dir() and any(path.iterdir()):
            raise WorkspaceError(
                f"{path}: folder is not empty and is not a workspace; choose a new or empty folder "
                "(the workbench will not mix its files with others)"
            )
        made_dir = not path.exists()
        store = None
        try:
            # Folders and files get the default modes (0o777 / 0o666 less the umask: 0755 / 0644 under
            # 022), like any project folder, so a workspace can be shared or served. Nothing in it is
            # a secret: the API key is read from the environment only, settings refuse secret-looking
            # keys and values, and recorded Claude exchanges are scrubbed before they are saved. A
            # file the user has made private keeps its mode when rewritten (workbench._io).
            path.mkdir(parents=True, exist_ok=True)
            for sub in ("models", "proposals"):
                (path / sub).mkdir()
                (path / sub / ".gitkeep").write_bytes(b"")
            (path / "cache").mkdir()
            ontology.save(path / ONTOLOGY_FILE)
            settings.save(path / SETTINGS_FILE)
            atomic_write_text(path / ".gitignore", GITIGNORE)
            store = LabelStore(path / STORE_FILE)
            # The marker goes last: a folder without it is not a workspace, so a failed create is visible.
            atomic_write_text(
                path / MARKER_FILE,
                dump_yaml({"format": _MARKER_FORMAT, "version": FORMAT_VERSION, "created_by": f"workbench {__version__}"}),
            )
            ws = cls(path, settings, store)
            if ws.has_git:
                ws._git_init()
                ws.commit(
                    f"Create workspace for ontology {ontology.name!r}",
                    [MARKER_FILE, ".gitignore", ONTOLOGY_FILE, SETTINGS_FILE, "models/.gitkeep", "proposals/.gitkeep"],
                )
            else:
                log.warning("%s: git was not found on PATH; the workspace works, but changes are not versioned", path)
            return ws
        except BaseException:
            if store is not None:
                store.close()
            _remove_partial(path, made_dir)
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Workspace:
        """Open an existing workspace; clear errors for a missing folder, a non-workspace, a newer format."""
        path = Path(path).expanduser().absolute()
        if not path.is_dir():
            raise WorkspaceError(f"{path}: no such folder; create a workspace with `workbench init {path}`")
        marker = path / MARKER_FILE
        if not marker.is_file():
            raise WorkspaceError(
                f"{path}: not a workbench workspace (no {MARKER_FILE} file); "
                f"create one with `workbench init {path}`"
            )
        meta = read_yaml_file(marker, WorkspaceError)
        if not isinstance(meta, Mapping) or meta.get("format") != _MARKER_FORMAT:
            raise WorkspaceError(f"{marker}: not a workbench workspace marker (expected format: {_MARKER_FORMAT})")
        version = meta.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise WorkspaceError(f"{marker}: `version` must be a positive integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise WorkspaceError(
                f"{path}: written by a newer workbench (workspace format {version}, this one reads up to "
                f"{FORMAT_VERSION}); upgrade: pip install -U constructability-workbench"
            )
        settings = Settings.load(path / SETTINGS_FILE) if (path / SETTINGS_FILE).exists() else Settings()
        store = LabelStore(path / STORE_FILE)
        ws = cls(path, settings, store)
        try:
            ws.ontology  # noqa: B018 - fail now, naming the file, rather than at first use
        except BaseException:
            store.close()
            raise
        return ws

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    # -- ontology and settings -------------------------------------------------------------------------------

    @property
    def ontology(self) -> Ontology:
        """The ontology in ``ontology.yaml``, re-read when the file changes on disk."""
        st = self.ontology_path.stat() if self.ontology_path.exists() else None
        if st is None:
            raise WorkspaceError(f"{self.ontology_path}: missing; restore it from git (`git checkout -- {ONTOLOGY_FILE}`)")
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._ontology is None or stamp != self._ontology_stamp:
            self._ontology = Ontology.load(self.ontology_path)
            self._ontology_stamp = stamp
        return self._ontology

    def save_ontology(self, ontology: Ontology) -> None:
        """Write ``ontology.yaml`` atomically (no commit: see :meth:`commit`)."""
        if not isinstance(ontology, Ontology):
            raise WorkspaceError(f"save_ontology needs an Ontology, got {type(ontology).__name__}")
        ontology.save(self.ontology_path)
        self._ontology = None  # re-read (and re-stamped) on next access

    def save_settings(self, settings: Settings) -> None:
        """Write ``workbench.yaml`` atomically and use the new settings."""
        if not isinstance(settings, Settings):
            raise WorkspaceError(f"save_settings needs a Settings, got {type(settings).__name__}")
        settings.save(self.settings_path)
        self.settings = settings

    def apply_edits(self, edits: Iterable[Any], *, author: str = "workbench", message: str | None = None) -> Ontology:
        """Apply edits (objects or plain dicts) to the ontology, carrying labels along; returns the result.

        All edits are validated before anything is written. Renames and merges move the affected labels
        in the store, and their pins (``pins/<concept>.yaml``) with them; removed or split concepts keep
        their labels under the old id (see :meth:`orphan_labels`). The store change and the ontology write happen inside one store
        transaction: if the ontology cannot be written the labels stay as they were. With ``message``,
        ``ontology.yaml`` is also committed to git and the commit sha is available as
        ``self.last_commit``.
        """
        edits = [edit_from_dict(e) if isinstance(e, Mapping) else e for e in edits]
        before = self.ontology
        after = _apply_edits(before, edits)  # validates every edit; raises EditError naming the concept
        with self.store.transaction():
            for e in edits:
                if e.op == "rename":
                    self.store.rename_concept(e.old, e.new, author=author)
                elif e.op == "merge":
                    self.store.merge_concepts(list(e.sources), e.into, author=author)
            self.save_ontology(after)
        moved, notes = follow_edits(self, edits)  # pins follow renames and merges, as labels do
        if message and notes:
            message = message.rstrip("\n") + "\n\n" + "\n".join(notes) + "\n"
        self.last_commit = self.commit(message, [ONTOLOGY_FILE, *moved]) if message else None
        return after

    def orphan_labels(self) -> dict[str, int]:
        """Current label counts of concepts no longer in the ontology (kept, never deleted)."""
        known = set(self.ontology.concepts)
        return {c: n for c, n in self.store.counts().items() if c not in known and c != NONE}

    def export_labels(self, *, history: bool = False) -> tuple[Path, Path]:
        """Write ``exports/labels.json`` and ``exports/labels.csv`` (text you can commit and diff)."""
        self.exports_dir.mkdir(exist_ok=True)
        json_path, csv_path = self.exports_dir / "labels.json", self.exports_dir / "labels.csv"
        self.store.export_json(json_path, history=history)
        self.store.export_csv(csv_path, history=history)
        return json_path, csv_path

    # -- git ---------------------------------------------------------------------------------------------------

    @property
    def has_git(self) -> bool:
        """True when the ``git`` command is available (the workspace is or will be a repository)."""
        return shutil.which("git") is not None

    def head(self) -> str | None:
        """The sha of the current commit, or None (no git, or no commit yet)."""
        if not self.has_git or not (self.path / ".git").exists():
            return None
        r = self._git("rev-parse", "--verify", "--quiet", "HEAD", check=False)
        return r.stdout.strip() or None

    def commit(self, message: str, paths: Sequence[str | os.PathLike[str]]) -> str | None:
        """Commit ``paths`` (files or folders inside the workspace, relative or absolute) with ``message``.

        Only those paths are committed, whatever else changed. Returns the new commit's sha, or None
        when they hold no change since the last commit.
        """
        if not isinstance(message, str) or not message.strip():
            raise WorkspaceError("a commit needs a message saying why the change was made")
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        rel = [self._relative(p) for p in paths]
        if not rel:
            raise WorkspaceError("commit: give the paths to commit (e.g. ['ontology.yaml'])")
        if not self.has_git:
            raise WorkspaceError(
                f"{self.path}: git was not found on PATH, so changes cannot be committed; install git "
                "(e.g. apt install git) and commit again. The workspace itself works without it"
            )
        self._git_init()
        self._git("add", "-A", "--", *rel)
        staged = self._git("diff", "--cached", "--quiet", "--", *rel, check=False)
        if staged.returncode == 0 and self.head() is not None:
            return None
        self._git(*self._identity(), "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify",
                  "-m", message, "--", *rel)  # fmt: skip
        head = self.head()
        assert head is not None  # noqa: S101 - a commit just succeeded
        return head

    def _relative(self, p: str | os.PathLike[str]) -> str:
        full = (self.path / p).absolute() if not Path(p).is_absolute() else Path(p).absolute()
        try:
            rel = Path(os.path.normpath(full)).relative_to(self.path)
        except ValueError:
            raise WorkspaceError(f"{p}: not inside the workspace {self.path}; only workspace files are committed") from None
        if rel.parts and rel.parts[0] == ".git":
            raise WorkspaceError(f"{p}: cannot commit git's own files")
        return rel.as_posix() or "."

    def _git_init(self) -> None:
        if (self.path / ".git").exists():
            return
        r = self._git("init", "-q", "-b", "main", check=False)
        if r.returncode != 0:  # git older than 2.28 has no -b
            self._git("init", "-q")

    def _identity(self) -> list[str]:
        name = self._git("config", "user.name", check=False).stdout.strip()
        email = self._git("config", "user.email", check=False).stdout.strip()
        if name and email:
            return []
        return ["-c", f"user.name={name or _GIT_FALLBACK_IDENTITY[0]}", "-c", f"user.email={email or _GIT_FALLBACK_IDENTITY[1]}"]

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            r = subprocess.run(
                ["git", *args], cwd=self.path, env=git_env(), capture_output=True, text=True,
                timeout=_GIT_TIMEOUT_S, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except FileNotFoundError:
            raise WorkspaceError(f"{self.path}: git was not found on PATH; install git to version the workspace") from None
        except subprocess.TimeoutExpired:
            raise WorkspaceError(f"{self.path}: `git {' '.join(args[:2])}` took over {_GIT_TIMEOUT_S} s; gave up") from None
        if check and r.returncode != 0:
            detail = " ".join((r.stderr or r.stdout).split())
            raise WorkspaceError(f"{self.path}: `git {' '.join(a for a in args if not a.startswith('user.'))}` failed: {detail}")
        return r


# -- private helpers ----------------------------------------------------------------------------------------------


def git_env() -> dict[str, str]:
    """The environment minus variables that would point git at another repository (e.g. inside a hook)."""
    drop = {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX"}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def _remove_partial(path: Path, made_dir: bool) -> None:
    """Undo a failed create: the folder was new or empty, so everything in it is ours."""
    if not path.is_dir():
        return
    if made_dir:
        shutil.rmtree(path, ignore_errors=True)
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
