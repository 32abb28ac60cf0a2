"""Proposals: edits someone (Claude, a script, a person) suggests for the ontology, reviewed before use.

A :class:`Proposal` is plain data stored as ``proposals/NNNN.yaml`` in the workspace: a list of
:class:`ProposedEdit` (each the operation exactly as proposed, a rationale, and, when it cannot be
applied, the ``problem``), an overall title and rationale, the :class:`Evidence` it was made from,
its author (``claude:<model>``, ``scripted:<file>``, ``person:<name>``), the hash of the ontology it
was made against (``base``), the recorded model ``exchange`` (for replay), and the audit trail of
decisions. Nothing in a proposal is ever executed: ops are parsed by the strict
:func:`workbench.ontology.edits.edit_from_dict`, and text is data (use :func:`escape_html` /
:func:`escape_terminal` to show it).

Lifecycle::

    make_proposal(ontology, raw_edits, ...)   validate each op in order, keep the invalid ones with why
    ProposalStore(ws).save(p)                 proposals/0007.yaml, a fresh id (exclusive create)
    preview(ws, p)                            diff, concepts added/removed/changed, labels touched, retrain
    accept(ws, p, [0, 2], by="ana")           re-validate, apply + git commit with trailers, record it
    reject(ws, p, by="ana", reason="...")     record it; the ontology is untouched

>>> from workbench.ontology.graph import Ontology, Concept
>>> o = Ontology("daisy", "daisy", [Concept("daisy", "Daisy")])
>>> p = make_proposal(o, [
...     {"op": {"op": "add_concept", "id": "petal", "label": "Petal", "parents": ["daisy"]},
...      "rationale": "white blades around the centre"},
...     {"op": {"op": "add_part", "parent": "stem", "part": "petal"}},
...     {"op": {"op": "add_concept", "id": "disk", "label": "Disk", "description": "maybe yellow",
...             "parents": ["daisy"]}},
... ], kind="suggest", author="scripted:example")
>>> [(e.decision, e.problem) for e in p.edits][:2]
[('pending', None), ('invalid', "add_part stem → petal: no concept 'stem' in the ontology")]
>>> p.edits[2].lint
("speculative: 'maybe' hedges; describe what is visible, or leave the concept out (description)",)
>>> Proposal.from_dict(p.to_dict(), "<memory>") == p
True
"""
from __future__ import annotations

import hashlib
import html
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from workbench._io import (
    atomic_write_bytes,
    atomic_write_text,
    dump_yaml,
    load_yaml_text,
    read_yaml_file,
)
from workbench.errors import EditError, ProposalConflict, ProposalError, WorkbenchError
from workbench.ontology.edits import Edit, edit_from_dict, invert_edits, text_diff
from workbench.ontology.graph import Ontology
from workbench.ontology.lint import lint_concept

__all__ = [
    "PROPOSAL_STATUSES",
    "DECISIONS",
    "KINDS",
    "PROPOSAL_FORMAT",
    "ProposedEdit",
    "Evidence",
    "Proposal",
    "Preview",
    "ProposalStore",
    "ontology_hash",
    "make_proposal",
    "lint_op",
    "preview",
    "accept",
    "reject",
    "commit_message",
    "introduced_by",
    "proposals_touching",
    "concepts_introduced",
    "concepts_mentioned",
    "escape_html",
    "escape_terminal",
    "proposal_html",
]

PROPOSAL_STATUSES = ("pending", "accepted", "partial", "rejected")
DECISIONS = ("pending", "accepted", "rejected", "invalid")
#: What made the proposal: a per-image suggestion, a refactor, a person's own edit, a rule, a pre-sort.
KINDS = ("suggest", "refactor", "person", "rule", "presort")
#: Version of the proposal file layout (``format:`` key); a newer one is refused with "upgrade".
PROPOSAL_FORMAT = 1
_ID_RE = re.compile(r"^[0-9]{4,9}$")
_FILE_RE = re.compile(r"^([0-9]{4,9})\.yaml$")
_SECRET_KEYS = {"api_key", "x-api-key", "authorization", "anthropic_api_key", "proxy-authorization"}


# ------------------------------------------------------------------------------------------ data model
@dataclass(frozen=True)
class ProposedEdit:
    """One proposed operation, kept exactly as proposed (even when malformed), and what became of it."""

    op: dict  #: the operation as proposed (plain data); parsed only by edit_from_dict
    rationale: str = ""  #: why, in the proposer's words (data: escape when shown)
    problem: str | None = None  #: why it cannot be applied; None = valid
    lint: tuple[str, ...] = ()  #: concept-lint warnings (shown, not blocking)
    decision: str = "pending"  #: one of DECISIONS; "invalid" whenever problem is set

    def __post_init__(self) -> None:
        if isinstance(self.lint, list):
            object.__setattr__(self, "lint", tuple(self.lint))
        if self.problem is not None and self.decision != "invalid":
            object.__setattr__(self, "decision", "invalid")

    @property
    def valid(self) -> bool:
        """True when the op parsed and applied where it was proposed (no ``problem``, not marked invalid)."""
        return self.problem is None and self.decision != "invalid"

    def edit(self) -> Edit:
        """The edit object; :class:`ProposalError` when this op is invalid (it can never be applied)."""
        if not self.valid:
            raise ProposalError(f"{self.summary()}: invalid, cannot be applied: {self.problem or 'marked invalid'}")
        try:
            return edit_from_dict(self.op)
        except EditError as e:
            raise ProposalError(f"{self.summary()}: invalid, cannot be applied: {e}") from None

    def summary(self) -> str:
        """One line: ``rename petal → ray_petal`` (or the raw op name for a malformed one)."""
        try:
            return edit_from_dict(self.op).summary()
        except EditError:
            name = self.op.get("op") if isinstance(self.op, Mapping) else None
            return f"{name if isinstance(name, str) else '?'} (malformed)"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": _plain(self.op), "rationale": self.rationale}
        if self.problem is not None:
            d["problem"] = self.problem
        if self.lint:
            d["lint"] = list(self.lint)
        d["decision"] = self.decision
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "<memory>") -> ProposedEdit:
        d = _mapping(d, source, ("op", "rationale", "problem", "lint", "decision"), ("op",))
        op = d["op"]
        if not isinstance(op, dict):
            op = {"value": op}
        decision = d.get("decision", "pending")
        if decision not in DECISIONS:
            raise ProposalError(f"{source}: `decision` must be one of {', '.join(DECISIONS)}, got {decision!r}")
        problem = d.get("problem")
        lint = d.get("lint", [])
        if not isinstance(lint, list) or not all(isinstance(x, str) for x in lint):
            raise ProposalError(f"{source}: `lint` must be a list of strings")
        return cls(op, _str(d.get("rationale", ""), "rationale", source), None if problem is None else
                   _str(problem, "problem", source), tuple(lint), decision)


@dataclass(frozen=True)
class Evidence:
    """What the proposal was made from."""

    image: str | None = None  #: data-set record id (e.g. "daisy/0003.png") or workspace-relative path
    image_sha256: str | None = None
    segments: tuple[int, ...] = ()  #: store segment ids shown to the proposer
    thumbnail: str | None = None  #: workspace-relative PNG path, optional

    def __post_init__(self) -> None:
        if isinstance(self.segments, list):
            object.__setattr__(self, "segments", tuple(self.segments))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k in ("image", "image_sha256", "thumbnail"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.segments:
            d["segments"] = [int(s) for s in self.segments]
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "<memory>") -> Evidence:
        d = _mapping(d or {}, source, ("image", "image_sha256", "segments", "thumbnail"), ())
        segs = d.get("segments", [])
        if not isinstance(segs, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in segs):
            raise ProposalError(f"{source}: evidence `segments` must be a list of segment ids (integers)")
        return cls(*(_opt_str(d.get(k), k, source) for k in ("image", "image_sha256")), tuple(segs),
                   _opt_str(d.get("thumbnail"), "thumbnail", source))


@dataclass(frozen=True)
class Proposal:
    """Edits proposed for an ontology, why, by whom, against which version, and what was decided."""

    id: str | None  #: "0007" once saved (file proposals/0007.yaml)
    kind: str  #: one of KINDS
    title: str
    rationale: str
    edits: tuple[ProposedEdit, ...]
    author: str  #: "claude:<model id>", "scripted:<file name>", "person:<name>"
    base: str  #: sha256 of the ontology YAML text it was made against (stale detection)
    evidence: Evidence = Evidence()
    exchange: dict | None = None  #: record/replay: {"request": {...}, "response": {...}}; never a key
    status: str = "pending"  #: one of PROPOSAL_STATUSES
    created: str = ""  #: ISO 8601 UTC
    decisions: tuple[dict, ...] = ()  #: audit trail: {"at", "by", "action", "edits": [idx...], "note"}
    gate: dict | None = None  #: merge-gate verdict (filled by the PR loop)
    commit: str | None = None  #: sha of the workspace commit that applied it

    def __post_init__(self) -> None:
        for name in ("edits", "decisions"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def ref(self) -> str:
        """``proposals/0007.yaml`` (or ``<unsaved>``)."""
        return f"proposals/{self.id}.yaml" if self.id else "<unsaved proposal>"

    @property
    def valid_edits(self) -> list[int]:
        """Indices of the edits that can be accepted."""
        return [i for i, e in enumerate(self.edits) if e.valid]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the YAML file (keys in a stable order; secrets never written)."""
        d: dict[str, Any] = {
            "format": PROPOSAL_FORMAT,
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "title": self.title,
            "author": self.author,
            "created": self.created,
            "base": self.base,
            "rationale": self.rationale,
            "evidence": self.evidence.to_dict(),
            "edits": [e.to_dict() for e in self.edits],
            "decisions": [_plain(x) for x in self.decisions],
            "gate": _plain(self.gate),
            "commit": self.commit,
            "exchange": _scrub(_plain(self.exchange)),
        }
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "<memory>") -> Proposal:
        """Validate plain data (a parsed proposal file); :class:`ProposalError` naming ``source`` and the key."""
        keys = ("format", "id", "kind", "status", "title", "author", "created", "base", "rationale", "evidence",
                "edits", "decisions", "gate", "commit", "exchange")
        d = _mapping(d, source, keys, ("kind", "author", "base", "edits"))
        fmt = d.get("format", PROPOSAL_FORMAT)
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
            raise ProposalError(f"{source}: `format` must be a positive integer, got {fmt!r}")
        if fmt > PROPOSAL_FORMAT:
            raise ProposalError(f"{source}: written by a newer workbench (proposal format {fmt}); upgrade: "
                                "pip install -U constructability-workbench")
        pid = d.get("id")
        if pid is not None and (not isinstance(pid, str) or not _ID_RE.match(pid)):
            raise ProposalError(f"{source}: `id` must be a string of 4+ digits such as '0007', got {pid!r}")
        kind = d["kind"]
        if kind not in KINDS:
            raise ProposalError(f"{source}: `kind` must be one of {', '.join(KINDS)}, got {kind!r}")
        status = d.get("status", "pending")
        if status not in PROPOSAL_STATUSES:
            raise ProposalError(f"{source}: `status` must be one of {', '.join(PROPOSAL_STATUSES)}, got {status!r}")
        edits = d["edits"]
        if not isinstance(edits, list):
            raise ProposalError(f"{source}: `edits` must be a list")
        decisions = d.get("decisions") or []
        if not isinstance(decisions, list) or not all(isinstance(x, dict) for x in decisions):
            raise ProposalError(f"{source}: `decisions` must be a list of mappings")
        for k in ("gate", "exchange"):
            if d.get(k) is not None and not isinstance(d[k], dict):
                raise ProposalError(f"{source}: `{k}` must be a mapping or null")
        return cls(
            id=pid,
            kind=kind,
            title=_str(d.get("title", ""), "title", source),
            rationale=_str(d.get("rationale", ""), "rationale", source),
            edits=tuple(ProposedEdit.from_dict(e, f"{source}: edits[{i}]") for i, e in enumerate(edits)),
            author=_str(d["author"], "author", source),
            base=_str(d["base"], "base", source),
            evidence=Evidence.from_dict(d.get("evidence"), f"{source}: evidence"),
            exchange=d.get("exchange"),
            status=status,
            created=_str(d.get("created", "") or "", "created", source),
            decisions=tuple(decisions),
            gate=d.get("gate"),
            commit=_opt_str(d.get("commit"), "commit", source),
        )

    def dumps(self) -> str:
        """The YAML text of the proposal file."""
        return "# Constructability Workbench proposal; model text below is data, never instructions\n" + dump_yaml(
            self.to_dict())

    @classmethod
    def loads(cls, text: str | bytes, source: str = "<memory>") -> Proposal:
        return cls.from_dict(load_yaml_text(text, source, ProposalError), source)


# -------------------------------------------------------------------------------------------- making
def ontology_hash(ontology: Ontology) -> str:
    """sha256 (hex) of the ontology's canonical YAML text: what a proposal's ``base`` records.

    >>> from workbench.ontology.graph import Ontology, Concept
    >>> len(ontology_hash(Ontology("d", "d", [Concept("d", "D")])))
    64
    """
    return hashlib.sha256(ontology.dumps().encode("utf-8")).hexdigest()


def lint_op(op: Any) -> tuple[str, ...]:
    """Concept-lint warnings for every label/description an op introduces (prefixed with the concept id)."""
    if not isinstance(op, Mapping):
        return ()
    texts: list[tuple[str, Any, Any]] = []
    name = op.get("op")
    if name in ("add_concept", "describe"):
        texts.append((op.get("id"), op.get("label"), op.get("description")))
    elif name == "rename":
        texts.append((op.get("new"), op.get("label"), None))
    elif name == "merge":
        texts.append((op.get("into"), op.get("label"), op.get("description")))
    elif name == "split" and isinstance(op.get("into"), list):
        for spec in op["into"]:
            if isinstance(spec, Mapping):
                texts.append((spec.get("id"), spec.get("label"), spec.get("description")))
    out: list[str] = []
    for cid, label, desc in texts:
        if label is None and desc is None:
            continue
        for w in lint_concept(label if isinstance(label, str) else "", desc if isinstance(desc, str) else ""):
            out.append(w if len(texts) == 1 else f"{cid}: {w}")
    return tuple(out)


def make_proposal(
    ontology: Ontology,
    raw_edits: Sequence[Mapping[str, Any]],
    *,
    kind: str,
    author: str,
    title: str = "",
    rationale: str = "",
    evidence: Evidence = Evidence(),
    exchange: dict | None = None,
    allowed_ops: Sequence[str] | None = None,
    created: str | None = None,
) -> Proposal:
    """Validate proposed edits against ``ontology`` and wrap them in a pending :class:`Proposal`.

    ``raw_edits`` items are ``{"op": {...edit...}, "rationale": "..."}`` (a bare edit mapping, whose
    ``op`` is the op name, is accepted too). Each op is checked in order against the ontology as
    changed by the previous *valid* ops; an invalid one (malformed, unknown op, not in
    ``allowed_ops``, unknown concept, cycle, duplicate id) is kept with ``problem`` set and decision
    "invalid". Concept lint runs on every op. Nothing is written.
    """
    if kind not in KINDS:
        raise ProposalError(f"proposal kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(author, str) or not author.strip():
        raise ProposalError("a proposal needs an author: 'claude:<model>', 'scripted:<file>' or 'person:<name>'")
    if isinstance(raw_edits, (str, bytes, Mapping)):
        raise ProposalError(f"raw_edits must be a list of {{'op': ..., 'rationale': ...}} items, got "
                            f"{type(raw_edits).__name__}")
    out: list[ProposedEdit] = []
    cur = ontology
    for i, item in enumerate(raw_edits):
        op, why = _split_item(item)
        problem: str | None = None
        if not isinstance(op, dict):
            problem = f"edit {i}: must be a mapping with an `op` key, got {type(op).__name__}"
            op = {"value": _plain(op)}
        elif allowed_ops is not None and op.get("op") not in allowed_ops:
            problem = (f"op {op.get('op')!r} is not allowed here (allowed: {', '.join(allowed_ops)})")
        else:
            try:
                cur = edit_from_dict(op).apply(cur)
            except EditError as e:
                problem = str(e)
        out.append(ProposedEdit(op=op, rationale=why, problem=problem, lint=lint_op(op),
                                decision="invalid" if problem else "pending"))
    return Proposal(
        id=None, kind=kind, title=title or _default_title(kind, out), rationale=rationale, edits=tuple(out),
        author=author, base=ontology_hash(ontology), evidence=evidence, exchange=exchange,
        created=created if created is not None else now_utc(),
    )


def _split_item(item: Any) -> tuple[Any, str]:
    if not isinstance(item, Mapping):
        return item, ""
    why = item.get("rationale", "")
    why = why if isinstance(why, str) else str(why)
    op = item.get("op")
    if isinstance(op, Mapping):
        return _plain(op), why
    if isinstance(op, str):  # a bare edit mapping, maybe with a rationale next to the fields
        return {k: _plain(v) for k, v in item.items() if k != "rationale"}, why
    return _plain(dict(item)), why


def _default_title(kind: str, edits: Sequence[ProposedEdit]) -> str:
    shown = ", ".join(e.summary() for e in edits[:3]) + (" …" if len(edits) > 3 else "")
    return f"{kind}: {shown}" if shown else f"{kind}: no edits"


# ------------------------------------------------------------------------------------------- storing
class ProposalStore:
    """The ``proposals/`` folder of a workspace: one ``NNNN.yaml`` per proposal.

    ``save`` gives a new proposal the next free id and creates its file exclusively (two writers
    never get the same id, a file is never overwritten by ``save``); ``update`` rewrites one
    atomically. With git, each write is committed (``proposals/NNNN.yaml`` only).
    """

    def __init__(self, workspace: Any, *, commit: bool = True):
        self.ws = workspace
        self.dir = Path(workspace.proposals_dir)
        self.commit = commit

    def path(self, pid: str) -> Path:
        return self.dir / f"{pid}.yaml"

    def ids(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        found = [m.group(1) for m in (_FILE_RE.match(p.name) for p in self.dir.iterdir()) if m]
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
            pid = f"{n:04d}"
            saved = replace(p, id=pid)
            if _create_exclusive(self.path(pid), saved.dumps()):
                self._commit(saved, f"Proposal {pid} ({saved.kind}, by {saved.author}): {_one_line(saved.title)}")
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
        """Load by ref: ``7``, ``"0007"``, ``"0007.yaml"`` or ``"proposals/0007.yaml"`` (never outside proposals/)."""
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
        """The file a ref names; :class:`ProposalError` for anything that is not ``proposals/NNNN.yaml``."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            if ref < 1:
                raise ProposalError(f"proposal ids start at 1, got {ref}")
            return self._confined(self.path(f"{ref:04d}"), str(ref))
        if isinstance(ref, os.PathLike):
            ref = os.fspath(ref)
        if not isinstance(ref, str) or not ref.strip():
            raise ProposalError(f"a proposal ref is an id ('7', '0007') or 'proposals/0007.yaml', got {ref!r}")
        ref = ref.strip()
        if ref.isdigit():
            return self.resolve(int(ref))
        pure = PurePosixPath(ref.replace("\\", "/"))
        if pure.is_absolute() or re.match(r"^[A-Za-z]:", ref) or ".." in pure.parts:
            raise ProposalError(f"{ref!r}: a proposal ref must be 'proposals/NNNN.yaml' inside the workspace "
                                "(no absolute paths, no '..')")
        parts = pure.parts
        if len(parts) == 2 and parts[0] == "proposals":
            name = parts[1]
        elif len(parts) == 1:
            name = parts[0]
        else:
            raise ProposalError(f"{ref!r}: proposals live directly in proposals/ (e.g. proposals/0007.yaml)")
        if not _FILE_RE.match(name):
            raise ProposalError(f"{ref!r}: not a proposal file name (NNNN.yaml, e.g. 0007.yaml)")
        return self._confined(self.dir / name, ref)

    def _confined(self, path: Path, ref: str) -> Path:
        if path.is_symlink() or (path.exists() and path.resolve().parent != self.dir.resolve()):
            raise ProposalError(f"{ref!r}: {self._rel(path)} is a link or resolves outside proposals/; refused")
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
        self.ws.commit(message, [f"proposals/{p.id}.yaml"])


def _create_exclusive(path: Path, text: str) -> bool:
    """Write ``text`` to a new file ``path`` atomically; False (nothing written) if ``path`` exists.

    The text goes to a temporary file first, which is then hard-linked to ``path``: ``link`` fails
    when the name exists, so two writers never share an id and a reader never sees a torn file.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


# ------------------------------------------------------------------------------------------- preview
@dataclass(frozen=True)
class Preview:
    """What accepting (some of) a proposal would do, before it is done."""

    diff: str  #: unified text diff of ontology.yaml
    added: list[str]  #: concept ids new in the result
    removed: list[str]  #: concept ids gone from the result
    changed: list[str]  #: ids in both whose fields or parts differ
    labels_touched: dict[int, int]  #: edit index -> labelled segments whose concept it renames/merges/removes/splits
    retrain: list[str]  #: concepts whose models would retrain (changed + added + their ancestors), bottom-up
    after: Ontology  #: the ontology after the chosen edits
    stale: bool  #: the ontology changed since the proposal was made (edits were re-validated)
    chosen: list[int] = field(default_factory=list)  #: the edit indices this preview applies


def _store(ws: Any) -> ProposalStore:
    return ProposalStore(ws)


def _as_proposal(ws: Any, ref: Any) -> Proposal:
    return ref if isinstance(ref, Proposal) else _store(ws).load(ref)


def _plan(
    ontology: Ontology, p: Proposal, accept: Sequence[int] | None, edited: Mapping[int, Mapping] | None,
) -> tuple[list[int], list[Edit], Ontology, bool]:
    """The chosen edits, parsed and applied in order to ``ontology``; raises naming the edit that fails."""
    stale = p.base != ontology_hash(ontology)
    edited = dict(edited or {})
    if accept is None:
        chosen = sorted(set(p.valid_edits) | set(edited))
    else:
        if isinstance(accept, (str, bytes)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in accept):
            raise ProposalError(f"{p.ref}: edits to accept must be indices (e.g. [0, 2]), got {accept!r}")
        chosen = sorted(set(accept))
    if not chosen:
        raise ProposalError(f"{p.ref}: no edit chosen (valid edits: {p.valid_edits or 'none'}); nothing to accept")
    for i in list(chosen) + list(edited):
        if not 0 <= i < len(p.edits):
            raise ProposalError(f"{p.ref}: it has edits 0..{len(p.edits) - 1}; there is no edit {i}")
    for i in edited:
        if i not in chosen:
            raise ProposalError(f"{p.ref}: edit {i} was edited but not chosen; add it to the accepted edits")
    edits: list[Edit] = []
    cur = ontology
    for i in chosen:
        pe = p.edits[i]
        if not pe.valid:
            raise ProposalError(f"{p.ref}: edit {i} ({pe.summary()}) is invalid and can never be accepted: {pe.problem or 'marked invalid'}. "
                                "Make a new proposal with a corrected op instead")
        try:
            e = edit_from_dict(edited[i]) if i in edited else pe.edit()
        except EditError as err:
            raise ProposalError(f"{p.ref}: the edited edit {i} is malformed: {err}") from None
        try:
            cur = e.apply(cur)
        except EditError as err:
            if stale:
                raise ProposalConflict(
                    f"{p.ref}: edit {i} ({e.summary()}) no longer applies: the ontology changed since the proposal "
                    f"was made ({err}). Reject it, or ask for a new suggestion against the current ontology") from None
            raise ProposalError(f"{p.ref}: edit {i} ({e.summary()}) does not apply with the chosen edits {chosen}: "
                                f"{err} (does it need an edit you left out?)") from None
        edits.append(e)
    return chosen, edits, cur, stale


def _touched_concepts(e: Edit) -> list[str]:
    if e.op == "rename":
        return [e.old]  # type: ignore[attr-defined]
    if e.op == "merge":
        return list(e.sources)  # type: ignore[attr-defined]
    if e.op in ("remove_concept", "split"):
        return [e.id]  # type: ignore[attr-defined]
    return []


def preview(
    ws: Any, proposal: Any, accept: Sequence[int] | None = None, edited: Mapping[int, Mapping] | None = None,
) -> Preview:
    """What accepting ``accept`` (default: every valid edit) would do to the workspace's current ontology.

    Labels touched are counted in the store as it is now, following earlier renames/merges of the same
    preview (a rename then a merge of the new id counts the same labels once for each edit).
    """
    p = _as_proposal(ws, proposal)
    before = ws.ontology
    chosen, edits, after, stale = _plan(before, p, accept, edited)
    counts = dict(ws.store.counts())
    touched: dict[int, int] = {}
    for i, e in zip(chosen, edits):
        touched[i] = sum(counts.get(c, 0) for c in _touched_concepts(e))
        if e.op == "rename":
            counts[e.new] = counts.pop(e.old, 0) + counts.get(e.new, 0)  # type: ignore[attr-defined]
        elif e.op == "merge":
            n = sum(counts.pop(s, 0) for s in e.sources)  # type: ignore[attr-defined]
            counts[e.into] = counts.get(e.into, 0) + n  # type: ignore[attr-defined]
    b, a = before.concepts, after.concepts
    added = sorted(set(a) - set(b))
    removed = sorted(set(b) - set(a))
    changed = sorted(c for c in set(a) & set(b) if a[c] != b[c])
    hit = set(added) | set(changed)
    for c in list(hit):
        hit.update(after.ancestors(c))
    retrain = [c for c in after.bottom_up() if c in hit]
    return Preview(text_diff(before, after, "a/ontology.yaml", "b/ontology.yaml"), added, removed, changed,
                   touched, retrain, after, stale, chosen)


# ---------------------------------------------------------------------------------------- deciding
def commit_message(p: Proposal, edits: Sequence[Edit], *, by: str, gate: Mapping | None = None,
                   note: str = "") -> str:
    """The git commit message of an accepted proposal: title, rationale, the edits, trailers."""
    lines = [_one_line(p.title) or f"Proposal {p.id}", ""]
    if p.rationale.strip():
        lines += [p.rationale.strip(), ""]
    lines += [f"- {e.summary()}" for e in edits]
    if note.strip():
        lines += ["", note.strip()]
    lines += ["", f"Proposal: {p.id}", f"Proposed-by: {_one_line(p.author)}", f"Accepted-by: {_one_line(by)}"]
    if gate:
        lines.append(f"Gate: {_gate_line(gate)}")
        ov = gate.get("override")
        if isinstance(ov, Mapping) and ov.get("by"):
            lines.append(f"Gate-override: {_one_line(str(ov['by']))}: {_one_line(str(ov.get('reason', '')))}")
    return "\n".join(lines) + "\n"


def _gate_line(gate: Mapping) -> str:
    for key in ("summary", "verdict", "decision"):
        if isinstance(gate.get(key), str):
            return _one_line(gate[key])
    return _one_line(", ".join(f"{k}={v}" for k, v in gate.items() if isinstance(v, (str, int, float, bool))))


def accept(
    ws: Any,
    ref_or_proposal: Any,
    accept: Sequence[int] | None = None,
    edited: Mapping[int, Mapping] | None = None,
    *,
    by: str,
    note: str = "",
    gate: Mapping | None = None,
) -> Proposal:
    """Apply the chosen edits (default: every valid one) to the workspace ontology and record it.

    Re-validates against the current ontology; a stale proposal is applied only if every chosen edit
    still applies (else :class:`ProposalConflict` naming the edit). Invalid edits can never be
    accepted. The ontology is written and committed by ``ws.apply_edits`` (message: title, rationale,
    trailers ``Proposal:``, ``Proposed-by:``, ``Accepted-by:``, ``Gate:``); then the proposal file
    records the decision and the commit sha. On any error the ontology file is left as it was.
    """
    if not isinstance(by, str) or not by.strip():
        raise ProposalError("accept needs the name of the person deciding (by='ana')")
    store = _store(ws)
    p = _as_proposal(ws, ref_or_proposal)
    if p.id is None:
        p = store.save(p)
    with decision_lock(ws, p):
        return _accept_locked(ws, store, store.load(p.id), accept, edited, by=by, note=note, gate=gate)


def _accept_locked(ws: Any, store: ProposalStore, p: Proposal, accept: Sequence[int] | None,
                   edited: Mapping[int, Mapping] | None, *, by: str, note: str, gate: Mapping | None) -> Proposal:
    if p.status != "pending":
        raise ProposalError(f"{p.ref} is already {p.status}; a decided proposal is not applied again "
                            "(make a new one, or revert its commit)")
    before_text = ws.ontology_path.read_bytes()
    before = ws.ontology
    chosen, edits, _after, stale = _plan(before, p, accept, edited)
    message = commit_message(p, edits, by=by, gate=gate, note=note)
    try:
        ws.apply_edits(edits, author=f"person:{by}" if not by.startswith(("person:", "claude:")) else by,
                       message=message)
    except BaseException:
        _restore(ws, before, before_text, edits)
        raise
    sha = ws.last_commit
    edited = dict(edited or {})
    new_edits = []
    for i, pe in enumerate(p.edits):
        if not pe.valid:
            new_edits.append(pe)
        else:
            new_edits.append(replace(pe, decision="accepted" if i in chosen else "rejected"))
    status = "accepted" if set(chosen) >= set(p.valid_edits) else "partial"
    entry: dict[str, Any] = {"at": now_utc(), "by": by, "action": "accept", "edits": list(chosen), "note": note}
    if edited:
        entry["edited"] = {str(i): _plain(dict(op)) for i, op in edited.items()}
    if stale:
        entry["stale"] = True
    done = replace(p, edits=tuple(new_edits), status=status, decisions=p.decisions + (entry,), commit=sha,
                   gate=dict(gate) if gate is not None else p.gate)
    try:
        return store.update(done, message=f"Record {status} of proposal {p.id} (commit {sha[:12] if sha else 'none'})")
    except WorkbenchError as err:
        raise ProposalError(f"{p.ref}: the edits were applied (commit {sha or 'none'}) but the proposal file could not "
                            f"record the decision: {err}. Run `workbench proposals show {p.id}` and fix the file") from err


@contextmanager
def decision_lock(ws: Any, what: Any) -> Iterator[None]:
    """One decision (accept, reject, revert) at a time per workspace: an OS file lock, released even if the
    process dies. ``what`` names the decision in the error (a Proposal is named by its file)."""
    what = what.ref if isinstance(what, Proposal) else str(what)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    lock_dir = Path(ws.cache_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "decisions.lock", "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ProposalError(f"{what}: another accept/reject/revert is running in this workspace; try again "
                                "when it has finished") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _restore(ws: Any, before: Ontology, before_text: bytes, edits: Sequence[Edit]) -> None:
    """After a failed apply: undo whatever part of it reached the disk (ontology bytes and moved labels)."""
    try:
        if ws.ontology_path.read_bytes() == before_text:
            return
        ws.apply_edits(invert_edits(before, list(edits)), author="workbench")  # moves labels back, no commit
    except WorkbenchError:
        pass
    finally:
        if ws.ontology_path.read_bytes() != before_text:
            atomic_write_bytes(ws.ontology_path, before_text)


def reject(ws: Any, ref: Any, *, by: str, reason: str = "") -> Proposal:
    """Record that ``by`` rejected the proposal; the ontology is not touched."""
    if not isinstance(by, str) or not by.strip():
        raise ProposalError("reject needs the name of the person deciding (by='ana')")
    store = _store(ws)
    p = _as_proposal(ws, ref)
    if p.id is None:
        p = store.save(p)
    with decision_lock(ws, p):
        return _reject_locked(store, store.load(p.id), by=by, reason=reason)


def _reject_locked(store: ProposalStore, p: Proposal, *, by: str, reason: str) -> Proposal:
    if p.status != "pending":
        raise ProposalError(f"{p.ref} is already {p.status}; only a pending proposal can be rejected")
    new_edits = tuple(pe if not pe.valid else replace(pe, decision="rejected") for pe in p.edits)
    entry = {"at": now_utc(), "by": by, "action": "reject", "edits": [], "note": reason}
    done = replace(p, edits=new_edits, status="rejected", decisions=p.decisions + (entry,))
    return store.update(done, message=f"Reject proposal {p.id}" + (f": {_one_line(reason)}" if reason else ""))


# ---------------------------------------------------------------------------------------- history
def concepts_introduced(op: Any) -> set[str]:
    """Concept ids an op brings into the ontology (add_concept id, rename new, merge into, split pieces)."""
    if not isinstance(op, Mapping):
        return set()
    name = op.get("op")
    out: set[str] = set()
    if name == "add_concept":
        out.add(op.get("id"))
    elif name == "rename":
        out.add(op.get("new"))
    elif name == "merge":
        out.add(op.get("into"))
    elif name == "split" and isinstance(op.get("into"), list):
        out.update(s.get("id") for s in op["into"] if isinstance(s, Mapping))
    return {c for c in out if isinstance(c, str)}


def concepts_mentioned(op: Any) -> set[str]:
    """Every concept id an op names (introduced, changed, removed, or used as a parent or part)."""
    if not isinstance(op, Mapping):
        return set()
    out = set(concepts_introduced(op))
    for k in ("id", "old", "new", "into", "parent", "part"):
        if isinstance(op.get(k), str):
            out.add(op[k])
    for k in ("sources", "parents", "parts"):
        if isinstance(op.get(k), list):
            out.update(x for x in op[k] if isinstance(x, str))
    if op.get("op") == "split" and isinstance(op.get("into"), list):
        for s in op["into"]:
            if isinstance(s, Mapping):
                for k in ("parts", "parents"):
                    if isinstance(s.get(k), list):
                        out.update(x for x in s[k] if isinstance(x, str))
    return out


def accepted_ops(p: Proposal) -> list[dict]:
    """The ops as applied: accepted edits, with a person's edited version where there is one."""
    edited: dict[int, dict] = {}
    for d in p.decisions:
        if d.get("action") == "accept" and isinstance(d.get("edited"), Mapping):
            edited.update({int(k): v for k, v in d["edited"].items()})
    return [edited.get(i, pe.op) for i, pe in enumerate(p.edits) if pe.decision == "accepted"]


def proposals_touching(ws: Any, concept: str) -> list[Proposal]:
    """Accepted (or partly accepted) proposals whose applied edits name ``concept``, oldest first."""
    return [p for p in _store(ws).list() if p.status in ("accepted", "partial")
            and any(concept in concepts_mentioned(op) for op in accepted_ops(p))]


def introduced_by(ws: Any, concept: str) -> Proposal | None:
    """The latest accepted proposal that brought ``concept`` into the ontology (None: it was there first)."""
    found = None
    for p in _store(ws).list():
        if p.status in ("accepted", "partial") and any(concept in concepts_introduced(op) for op in accepted_ops(p)):
            found = p
    return found


# ---------------------------------------------------------------------------------------- showing
def escape_html(text: Any) -> str:
    """Model text as inert HTML: ``<img src=x>`` becomes ``&lt;img src=x&gt;``.

    >>> escape_html('<img src="https://x/y.png"> ![a](https://x/a.png)')
    '&lt;img src=&quot;https://x/y.png&quot;&gt; ![a](https://x/a.png)'
    """
    return html.escape("" if text is None else str(text), quote=True)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_terminal(text: Any) -> str:
    """Model text safe for a terminal: control characters (ANSI escapes, bidi overrides) shown as ``\\xNN``.

    >>> escape_terminal("ok\\x1b[31m red")
    'ok\\\\x1b[31m red'
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}",
                        "" if text is None else str(text))


def proposal_html(p: Proposal) -> str:
    """A small, inert HTML summary of a proposal: every piece of text escaped, no links, no images."""
    rows = []
    for i, e in enumerate(p.edits):
        problem = f"<div class='wb-problem'>{escape_html(e.problem)}</div>" if e.problem else ""
        lint = "".join(f"<div class='wb-lint'>{escape_html(w)}</div>" for w in e.lint)
        rows.append(f"<li data-edit='{i}' class='wb-{escape_html(e.decision)}'><code>{escape_html(e.summary())}</code> "
                    f"<span class='wb-decision'>{escape_html(e.decision)}</span>"
                    f"<div class='wb-rationale'>{escape_html(e.rationale)}</div>{problem}{lint}</li>")
    return (f"<div class='wb-proposal'><h4>{escape_html(p.id or 'new')}: {escape_html(p.title)}</h4>"
            f"<div class='wb-meta'>{escape_html(p.kind)} by {escape_html(p.author)}, {escape_html(p.status)}</div>"
            f"<div class='wb-rationale'>{escape_html(p.rationale)}</div><ol start='0'>{''.join(rows)}</ol></div>")


# ---------------------------------------------------------------------------------------- helpers
def now_utc() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _one_line(s: Any) -> str:
    return " ".join(str(s).split())


def _plain(v: Any, depth: int = 0) -> Any:
    """A deep copy as plain YAML-safe data (dict/list/str/int/float/bool/None); anything else as its repr."""
    if depth > 50:
        return "<nested too deeply>"
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, Mapping):
        return {str(k): _plain(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x, depth + 1) for x in v]
    return repr(v)


def _scrub(v: Any) -> Any:
    """Drop anything that looks like a credential from recorded exchanges (header or key fields)."""
    if isinstance(v, dict):
        return {k: ("[redacted]" if str(k).lower() in _SECRET_KEYS else _scrub(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [_scrub(x) for x in v]
    return v


def _mapping(d: Any, source: str, keys: Sequence[str], required: Sequence[str]) -> dict:
    if not isinstance(d, dict):
        raise ProposalError(f"{source}: expected a mapping, got {type(d).__name__}")
    unknown = [k for k in d if k not in keys]
    if unknown:
        raise ProposalError(f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(keys)})")
    missing = [k for k in required if k not in d]
    if missing:
        raise ProposalError(f"{source}: missing `{missing[0]}`")
    return d


def _str(v: Any, key: str, source: str) -> str:
    if not isinstance(v, str):
        raise ProposalError(f"{source}: `{key}` must be a string, got {type(v).__name__}")
    return v


def _opt_str(v: Any, key: str, source: str) -> str | None:
    return None if v is None else _str(v, key, source)

