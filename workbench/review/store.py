"""The proposal store: the ``proposals/`` folder of a workspace, one ``NNNN.yaml`` file per proposal.

Files are created exclusively (two writers never share an id, ``save`` never overwrites), rewritten
atomically, read only from directly inside ``proposals/`` (references are parsed by
:mod:`workbench.review.refs`; links and files resolving elsewhere are refused) and, in a workspace
with git, committed one file at a time.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench._io import atomic_write_text, default_file_mode
from workbench._yaml import read_yaml_file
from workbench.errors import ProposalError
from workbench.review.proposals import PROPOSAL_STATUSES, Proposal, one_line
from workbench.review.refs import file_id, format_id, parse_ref, ref_path

if TYPE_CHECKING:  # pragma: no cover
    from workbench.workspace.folder import Workspace

__all__ = ["ProposalStore"]


class ProposalStore:
    """The ``proposals/`` folder of a workspace: one ``NNNN.yaml`` per proposal.

    ``save`` gives a new proposal the next free id and creates its file exclusively (two writers
    never get the same id, a file is never overwritten by ``save``); ``update`` rewrites one
    atomically. With git, each write is committed (``proposals/NNNN.yaml`` only).
    """

    def __init__(self, workspace: Workspace, *, commit: bool = True):
        self.ws = workspace
        self.dir = Path(workspace.proposals_dir)
        self.commit = commit

    def path(self, pid: str) -> Path:
        return self.dir / f"{pid}.yaml"

    def ids(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        found = [pid for pid in (file_id(p.name) for p in self.dir.iterdir()) if pid]
        return sorted(found, key=int)

    def save(self, p: Proposal) -> Proposal:
        """Store a new proposal under a fresh id; returns it with ``id`` set."""
        if not isinstance(p, Proposal):
            raise ProposalError(f"ProposalStore.save needs a Proposal, got {type(p).__name__}")
        if p.id is not None and self.path(p.id).exists():
            raise ProposalError(f"{p.ref} already exists; use ProposalStore.update to change it")
        self.dir.mkdir(parents=True, exist_ok=True)
        n = max((int(i) for i in self.ids()), default=0) + 1
        for _ in range(10_000):
            pid = format_id(n)
            saved = replace(p, id=pid)
            if _create_exclusive(self.path(pid), saved.dumps()):
                self._commit(saved, f"Proposal {pid} ({saved.kind}, by {saved.author}): {one_line(saved.title)}")
                return saved
            n += 1
        raise ProposalError(f"{self.dir}: could not find a free proposal id")  # pragma: no cover

    def update(self, p: Proposal, *, message: str | None = None) -> Proposal:
        """Rewrite an existing proposal file atomically."""
        if p.id is None or not self.path(p.id).exists():
            raise ProposalError(f"{p.ref}: no such proposal to update; save it first")

        atomic_write_text(self.path(p.id), p.dumps())
        self._commit(p, message or f"Proposal {p.id}: {p.status}")
        return p

    def load(self, ref: Any) -> Proposal:
        """Load by ref: ``7``, ``"0007"``, ``"0007.yaml"``, ``"proposals/0007.yaml"`` or the file's path (never
        outside proposals/); a Proposal is loaded again by its id (an unsaved one is returned as it is)."""
        if isinstance(ref, Proposal):
            if ref.id is None:
                return ref
            ref = ref.id
        path = self.resolve(ref)
        if not path.is_file():
            have = ", ".join(self.ids()[-5:]) or "none yet"
            raise ProposalError(f"{self._rel(path)}: no such proposal (latest: {have}); "
                                "list them with `workbench proposals list`")
        return Proposal.from_dict(read_yaml_file(path, ProposalError), self._rel(path))

    def resolve(self, ref: Any) -> Path:
        """The file a ref names (:func:`~workbench.review.refs.parse_ref`: ``7``, ``"0007"``,
        ``"proposals/0007.yaml"``, the file's path); :class:`ProposalError` for anything that is not a
        ``NNNN.yaml`` directly in this workspace's ``proposals/``, or that is a link or resolves elsewhere."""
        pid = parse_ref(ref, proposals_dir=self.dir)
        return self._confined(self.path(pid), ref)

    def _confined(self, path: Path, ref: Any) -> Path:
        if path.is_symlink() or (path.exists() and path.resolve().parent != self.dir.resolve()):
            raise ProposalError(f"{str(ref)[:60]!r}: {self._rel(path)} is a link or resolves outside proposals/; "
                                "refused")
        return path

    def list(self, status: str | None = None) -> list[Proposal]:
        """Every stored proposal (oldest first), optionally only those with ``status``."""
        if status is not None and status not in PROPOSAL_STATUSES:
            raise ProposalError(f"status must be one of {', '.join(PROPOSAL_STATUSES)}, got {status!r}")
        out = [self.load(pid) for pid in self.ids()]
        return [p for p in out if status is None or p.status == status]

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(Path(self.ws.path)).as_posix()
        except ValueError:
            return str(path)

    def _commit(self, p: Proposal, message: str) -> None:
        if not self.commit or not getattr(self.ws, "has_git", False) or not (Path(self.ws.path) / ".git").exists():
            return
        self.ws.commit(message, [ref_path(p.id)])


def _create_exclusive(path: Path, text: str) -> bool:
    """Write ``text`` to a new file ``path`` atomically; False (nothing written) if ``path`` exists.

    The text goes to a temporary file first, which is then hard-linked to ``path``: ``link`` fails
    when the name exists, so two writers never share an id and a reader never sees a torn file.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, default_file_mode())  # mkstemp makes it 0600; a proposal follows the umask like every file
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create, then write
            try:
                with open(path, "xb") as f:
                    f.write(text.encode("utf-8"))
            except FileExistsError:
                return False
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
