"""The Jupyter server extension: a workspace served over REST under ``/workbench/api/``.

The JupyterLab front end (``workbench/jupyter/_frontend``, prebuilt into ``workbench/jupyter/labextension``) reads
the workspace through these handlers; every one of them needs an authenticated Jupyter user.

==========================================  ==========================================================
``GET  /workbench/api/workspaces?path=D&kernel=K``  the workspace the notebook's kernel K opened (``workbench.open``
                                            records it), then workspaces at or above D, below D, elsewhere under the root
``GET  /workbench/api/state?workspace=W``   a stamp that changes when the ontology, proposals, history or
                                            models change (the sidebar polls it to stay current)
``GET  /workbench/api/concept?workspace=W&concept=C``  a concept's card: metrics and status, labelled segments,
                                            six example crops, the change that introduced it
``GET  /workbench/api/ontology?workspace=W``  the ontology as concepts with kind, parts, implementation
                                            and the validation metrics of each trained model
``GET  /workbench/api/proposals?workspace=W``  proposal summaries (status, gate verdict, stale)
``GET  /workbench/api/proposals/0007?workspace=W``  one proposal, with its notebook cells
``GET  /workbench/api/history?workspace=W``  the workspace's recent changes (git history)
``GET  /workbench/api/why?workspace=W&concept=C``  which change introduced / last changed concept C
``GET  /workbench/api/images?workspace=W``  images in the label store (for "suggest edits")
``POST /workbench/api/suggest``             ``{"workspace", "image", "suggester"?, "settings"?}``: a new proposal
``POST /workbench/api/refactor``            ``{"workspace", "suggester"?, "settings"?}``: a new proposal
``POST /workbench/api/gate``                ``{"workspace", "proposal", "settings"?}``: run the merge gate on a
                                            pending proposal and record its verdict in the proposal
``POST /workbench/api/review``              ``{"workspace", "proposal", "reviewer"?}``: a second reviewer's findings,
                                            stored beside the proposal's edits (never a decision)
==========================================  ==========================================================

Paths are confined twice. ``W`` is relative to the server's root directory and must name a
workspace inside it; an image must stay inside the workspace's data set (or the workspace) and
inside the root. An absolute path, a ``..`` component, a symlink that leads outside, and anything under a
``.git`` folder are refused (400 for a malformed value, 403 for a path outside, 404 for nothing
there), with a JSON body ``{"error": ..., "status": ...}`` saying why. Request bodies are JSON
objects of at most :data:`MAX_BODY_BYTES` with only the keys the endpoint knows, each type-checked;
``settings`` overrides are validated by :class:`workbench.workspace.settings.Settings` (so an API key is
refused there too; overrides apply to one request and are never saved). The only writes go through
the proposal store: new proposal files (suggest, refactor) and a gate verdict recorded in a pending
proposal (gate), a second reviewer's findings beside a proposal's edits (review; also after suggest and
refactor, with the workspace's ``reviewer`` setting), each committed to the workspace repository.

The functions below are plain (no server needed) and are what the handlers call:

>>> import tempfile, os
>>> root = tempfile.mkdtemp()
>>> resolve_workspace(root, "../etc")
Traceback (most recent call last):
...
workbench.jupyter.server.PathRefused: '../etc': '..' is not allowed; give a path inside the Jupyter root without '..'
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

import tornado.web
from jupyter_core.paths import jupyter_runtime_dir
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from workbench._redact import env_secrets
from workbench.data.datasets import load_image
from workbench.errors import ProposalError, WorkbenchError
from workbench.evaluation.health import concept_status, facts_from_metrics
from workbench.jupyter import _registry
from workbench.jupyter.widgets._render import ImageCache, crop_view, png_data_url
from workbench.models.store import ModelStore
from workbench.review.decisions import preview
from workbench.review.history import history, why
from workbench.review.proposals import PROPOSAL_STATUSES, ontology_hash
from workbench.review.refs import MAX_ID_DIGITS, parse_ref
from workbench.review.reviewers import REVIEWERS, review_if_configured, review_proposal
from workbench.review.store import ProposalStore
from workbench.review.suggest import SuggestContext, make_suggester
from workbench.workspace.folder import MARKER_FILE, Workspace

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

# The workspace module (numpy, networkx, SQLite) is imported on first use, not when Jupyter loads the
# extension: every server start in an environment that has the workbench installed would pay for it.

__all__ = [
    "API_PREFIX",
    "MAX_BODY_BYTES",
    "SETTINGS_OVERRIDES",
    "PathRefused",
    "BadRequest",
    "check_relative",
    "resolve_workspace",
    "resolve_inside",
    "find_workspaces",
    "kernel_workspace",
    "workspace_state",
    "concept_card",
    "parse_body",
    "settings_with",
    "ontology_tree",
    "proposal_summaries",
    "proposal_detail",
    "history_entries",
    "why_concept",
    "image_list",
    "suggest",
    "refactor",
    "run_gate",
    "run_review",
    "review_summary",
]

#: Where the REST API lives, below the server's base URL.
API_PREFIX = "workbench/api"
#: Largest request body accepted (requests are small JSON objects; images are referenced, never sent).
MAX_BODY_BYTES = 64 * 1024
#: Longest path accepted in a request.
_MAX_PATH_CHARS = 1024
#: Settings a request may override for one call (what the front end's Settings Editor holds); never a key.
SETTINGS_OVERRIDES = ("claude_model", "llm_max_image_edge", "gate_confidence", "gate_min_gain", "gate_max_loss")
#: Largest model sidecar (``models/<concept>.json``) read for metrics.
_CONCEPT_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class PathRefused(WorkbenchError):
    """A path in a request is malformed (400), outside the allowed folder (403) or names nothing (404)."""

    def __init__(self, path: object, reason: str, status: int = 403):
        self.path = path
        self.reason = reason
        self.status = status
        super().__init__(f"{path!r}: {reason}")


class BadRequest(WorkbenchError):
    """A request body or parameter is invalid; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


# ----------------------------------------------------------------------------------------- paths


def check_relative(rel: object, *, what: str = "path") -> tuple[str, ...]:
    """The components of a relative POSIX path, or :class:`PathRefused` saying what is wrong with it.

    >>> check_relative("a/./b/")
    ('a', 'b')
    >>> check_relative("/etc/passwd")
    Traceback (most recent call last):
    ...
    workbench.jupyter.server.PathRefused: '/etc/passwd': absolute paths are not allowed; give a path relative to the Jupyter root
    """
    if not isinstance(rel, str):
        raise PathRefused(rel, f"the {what} must be text", 400)
    if len(rel) > _MAX_PATH_CHARS:
        raise PathRefused(rel[:40] + "...", f"the {what} is longer than {_MAX_PATH_CHARS} characters", 400)
    if "\x00" in rel or any(ord(ch) < 32 for ch in rel):
        raise PathRefused(rel, f"the {what} contains control characters", 400)
    if "\\" in rel:
        raise PathRefused(rel, f"the {what} contains a backslash; use '/' between folders", 400)
    if rel.startswith(("/", "~")) or PureWindowsPath(rel).drive:
        raise PathRefused(rel, "absolute paths are not allowed; give a path relative to the Jupyter root", 403)
    parts = tuple(p for p in PurePosixPath(rel).parts if p not in ("", "."))
    if ".." in parts:
        raise PathRefused(rel, "'..' is not allowed; give a path inside the Jupyter root without '..'", 403)
    if ".git" in parts:
        raise PathRefused(rel, "paths under .git are git's own files and are never served or written", 403)
    return parts


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(path))


def resolve_inside(folder: str | os.PathLike[str], rel: object, *, what: str = "path", must_exist: bool = True) -> Path:
    """The real path of ``rel`` inside ``folder``; refused when it (or a symlink on the way) leads out.

    Also refused: anything whose real path lies under a ``.git`` folder of ``folder``.
    """
    base = _real(folder)
    parts = check_relative(rel, what=what)
    real = _real(base.joinpath(*parts))
    if not _inside(real, base):
        raise PathRefused(rel, f"leads outside {base.name or base} (through a symlink); refused", 403)
    if ".git" in real.relative_to(base).parts:
        raise PathRefused(rel, "leads under .git (through a symlink); git's own files are never served or written", 403)
    if must_exist and not real.exists():
        raise PathRefused(rel, f"no such file or folder in {base.name or base}", 404)
    return real


def resolve_workspace(root: str | os.PathLike[str], rel: object) -> Path:
    """The real path of the workspace ``rel`` (relative to the Jupyter ``root``), checked.

    Refused: malformed or absolute paths, ``..``, ``.git``, symlinks leading out of ``root`` (403),
    and folders that are not workspaces (404, with the command that makes one).
    """
    real = resolve_inside(root, rel, what="workspace path")
    if not real.is_dir():
        raise PathRefused(rel, "not a folder; give the workspace folder", 404)
    if not (real / MARKER_FILE).is_file():
        raise PathRefused(rel, f"not a workbench workspace (no {MARKER_FILE}); make one with `workbench init`", 404)
    return real


#: Folders discovery never enters (besides hidden ones and symlinks): environments and build output.
SKIP_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "env", "build", "dist"})
#: How deep discovery looks below a folder, and how long it may take in all.
DISCOVERY_DEPTH = 4
DISCOVERY_SECONDS = 0.5


def _workspaces_below(base: Path, start: Path, depth: int, deadline: float, skip: Path | None = None) -> list[Path]:
    """Workspace folders below ``start`` (breadth first, at most ``depth`` levels, until ``deadline``);
    never inside a workspace, a hidden folder, a symlink, :data:`SKIP_FOLDERS`, or ``skip``."""
    found: list[Path] = []
    level = [start]
    for _ in range(depth):
        nxt: list[Path] = []
        for folder in level:
            if time.monotonic() > deadline:
                return found
            try:
                children = sorted(folder.iterdir())
            except OSError:
                continue
            for child in children:
                if (child.name.startswith(".") or child.name in SKIP_FOLDERS or child == skip
                        or child.is_symlink() or not child.is_dir()):
                    continue
                if (child / MARKER_FILE).is_file():
                    found.append(child)
                else:
                    nxt.append(child)
        level = nxt
    return found


def _newest_first(paths: list[Path], base: Path) -> list[Path]:
    """Shallowest first; among equally deep ones the most recently made (a tour run twice: the last run)."""
    def key(p: Path) -> tuple[int, float]:
        try:
            made = (p / MARKER_FILE).stat().st_mtime
        except OSError:
            made = 0.0
        return (len(p.relative_to(base).parts), -made)

    return sorted(paths, key=key)


def find_workspaces(root: str | os.PathLike[str], rel: object = "", *, depth: int = DISCOVERY_DEPTH,
                    seconds: float = DISCOVERY_SECONDS) -> list[str]:
    """Workspaces near the folder ``rel``, nearest first: it or its nearest ancestor inside ``root``,
    then below it (up to ``depth`` levels), then anywhere else under ``root`` (same depth).

    Paths are returned relative to ``root`` (POSIX). Hidden folders, symlinks, :data:`SKIP_FOLDERS`
    and the insides of workspaces are never searched; the search stops after ``seconds``.
    """
    base = _real(root)
    start = resolve_inside(base, rel, what="folder")
    if not start.is_dir():
        start = start.parent
    deadline = time.monotonic() + seconds
    found: list[Path] = []
    here = start
    while True:
        if (here / MARKER_FILE).is_file():
            found.append(here)
            break
        if here == base:
            break
        here = here.parent
    if not (start / MARKER_FILE).is_file():
        found += _newest_first(_workspaces_below(base, start, depth, deadline), base)
    if start != base:
        found += _newest_first(_workspaces_below(base, base, depth, deadline, skip=start), base)
    out: list[str] = []
    for p in found:
        r = p.relative_to(base).as_posix()
        r = "" if r == "." else r
        if r not in out:
            out.append(r)
    return out


def kernel_workspace(root: str | os.PathLike[str], runtime_dir: str | os.PathLike[str], kernel: object) -> dict[str, Any]:
    """The workspace the notebook kernel ``kernel`` opened with ``workbench.open``
    (:mod:`workbench.jupyter._registry`): ``{"workspace": path relative to root}``, or
    ``{"outside": folder name}`` when it lies outside the Jupyter root (never served), or ``{}``."""
    if not isinstance(kernel, str) or not _registry.KERNEL_ID.match(kernel):
        if kernel in (None, ""):
            return {}
        raise BadRequest(f"kernel id {str(kernel)[:40]!r} is malformed")
    found = _registry.lookup(runtime_dir, kernel)
    if found is None or not (found / MARKER_FILE).is_file():
        return {}
    base = _real(root)
    if not _inside(found, base) or ".git" in found.relative_to(base).parts:
        return {"outside": found.name, "outside_path": str(found)}
    r = found.relative_to(base).as_posix()
    return {"workspace": "" if r == "." else r}


# ----------------------------------------------------------------------------------------- requests


def parse_body(raw: bytes, fields: Mapping[str, tuple[type, bool]]) -> dict[str, Any]:
    """Parse a JSON request body: an object with only ``fields`` (name -> (type, required)).

    >>> parse_body(b'{"image": "a.png"}', {"image": (str, True)})
    {'image': 'a.png'}
    >>> parse_body(b'{"image": 3}', {"image": (str, True)})
    Traceback (most recent call last):
    ...
    workbench.jupyter.server.BadRequest: field 'image' must be str, got int
    """
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"request body of {len(raw)} bytes is over the limit of {MAX_BODY_BYTES}", 413)
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(f"request body is not UTF-8 JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(map(repr, unknown))}; this endpoint takes {', '.join(fields)}")
    for name, (typ, required) in fields.items():
        if name not in data:
            if required:
                raise BadRequest(f"field {name!r} is required")
            continue
        value = data[name]
        if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
            raise BadRequest(f"field {name!r} must be {typ.__name__}, got {type(value).__name__}")
    return data


def settings_with(ws: Workspace, overrides: Mapping[str, Any] | None) -> Any:
    """The workspace's settings with the request's overrides (only :data:`SETTINGS_OVERRIDES`), validated.

    A null override means "keep the workspace's value". Nothing is written.
    """
    if not overrides:
        return ws.settings
    bad = sorted(k for k in overrides if k not in SETTINGS_OVERRIDES)
    if bad:
        raise BadRequest(f"setting(s) {', '.join(map(repr, bad))} cannot be changed from the browser; "
                         f"allowed: {', '.join(SETTINGS_OVERRIDES)}")  # fmt: skip
    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return ws.settings.replace(**changes)
    except WorkbenchError as e:
        raise BadRequest(str(e)) from None


# ----------------------------------------------------------------------------------------- views


def _jsonable(value: Any) -> Any:
    """Plain JSON data from objects with ``to_dict``, dataclasses, tuples and mappings (anything else: its str)."""
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return _jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    return str(value)


def _model_metrics(ws: Workspace, concept: str) -> dict[str, Any] | None:
    metrics = ModelStore(ws.models_dir).metrics(concept)
    if metrics is None:
        return None
    keep = ("val_balanced_accuracy", "val_examples", "train_balanced_accuracy", "train_examples", "n_params")
    return {k: _jsonable(metrics.get(k)) for k in keep if k in metrics}


def ontology_tree(ws: Workspace) -> dict[str, Any]:
    """The ontology as plain data for the panel: concepts bottom-up data plus each model's metrics."""
    o = ws.ontology
    text = o.dumps()
    concepts = []
    for cid in [o.root, *sorted(c for c in o.concepts if c != o.root)]:
        c = o.concepts[cid]
        concepts.append({
            "id": c.id, "label": c.label, "description": c.description, "kind": o.kind(cid),
            "implementation": c.implementation, "rule": c.rule, "parts": list(o.parts(cid)),
            "parents": list(o.parents(cid)), "metrics": _model_metrics(ws, cid),
            "provisional": bool(getattr(c, "provisional", False)),
        })  # fmt: skip
    return {
        "name": o.name, "root": o.root, "concepts": concepts, "head": ws.head(),
        "ontology_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }  # fmt: skip


def _gate_summary(gate: Any) -> Any:
    return _jsonable(gate) if gate is not None else None


def review_summary(review: Any) -> dict[str, Any] | None:
    """A proposal's review for the sidebar: who, when, scripted or not, counts per severity, summary and
    findings (the recorded model exchange left out); None when it has not been reviewed."""
    if review is None:
        return None
    return {"reviewer": review.reviewer, "at": review.at, "model": review.model, "scripted": review.scripted,
            "summary": review.summary, "counts": review.counts(),
            "findings": [f.to_dict() for f in review.findings]}  # fmt: skip


def proposal_summaries(ws: Workspace, status: str | None = None) -> list[dict[str, Any]]:
    """One line of plain data per saved proposal, newest first (id, kind, title, status, gate, stale)."""
    if status is not None and status not in PROPOSAL_STATUSES:
        raise BadRequest(f"unknown status {status!r}; one of {', '.join(PROPOSAL_STATUSES)}")
    current = ontology_hash(ws.ontology)
    out = []
    for p in ProposalStore(ws).list(status=status):
        out.append({
            "id": p.id, "kind": p.kind, "title": p.title, "status": p.status, "author": p.author,
            "created": p.created, "edits": len(p.edits), "invalid": sum(1 for e in p.edits if not e.valid),
            "gate": _gate_summary(p.gate), "commit": p.commit, "stale": p.base != current,
            "review": review_summary(p.review),
        })  # fmt: skip
    out.sort(key=lambda d: str(d["id"]), reverse=True)
    return out


def _check_proposal_ref(ref: object) -> str:
    """The canonical id of a proposal reference in a request (``7``, ``0007``, ``proposals/0007.yaml``;
    never a path outside the workspace's proposals/), or a 400."""
    try:
        return parse_ref(ref)
    except ProposalError as e:
        raise BadRequest(str(e)) from None


def proposal_detail(ws: Workspace, ref: str) -> dict[str, Any]:
    """One proposal as plain data, with ``cells`` (notebook cells that review and apply it) and ``diff``."""
    ref = _check_proposal_ref(ref)
    try:
        p = ProposalStore(ws).load(ref)
    except WorkbenchError as e:
        raise BadRequest(str(e), 404) from None
    data = _jsonable(p.to_dict())
    data["review"] = review_summary(p.review)
    data["stale"] = p.base != ontology_hash(ws.ontology)
    from workbench.review.cells import (
        proposal_cells,  # lazy: it renders with torch; the server starts without
    )

    data["cells"] = _jsonable(proposal_cells(ws, p))
    try:
        data["diff"] = preview(ws, p).diff if p.status == "pending" else None
    except WorkbenchError as e:
        data["diff"], data["diff_problem"] = None, str(e)
    return data


def history_entries(ws: Workspace, limit: int = 50) -> list[dict[str, Any]]:
    """The workspace's recent changes, newest first (from ``workbench.review.history`` when present, else git log)."""
    return [_jsonable(c) for c in history(ws, limit=limit)]


def why_concept(ws: Workspace, concept: object) -> dict[str, Any]:
    """Which change introduced ``concept`` and which last changed it (``workbench.review.history.why``)."""
    if not isinstance(concept, str) or not _CONCEPT_ID.match(concept):
        raise BadRequest(f"concept id {str(concept)[:40]!r} must look like petal or flower_head")

    return _jsonable(why(ws, concept))


def image_list(ws: Workspace, limit: int = 500) -> list[dict[str, Any]]:
    """Images in the label store (id, path, class) for the "suggest edits for an image" picker."""
    out = []
    for row in ws.store.images()[:limit]:
        out.append({"id": row.id, "path": row.path, "class_label": row.class_label})
    return out


def workspace_state(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A stamp of what the sidebar shows, for the workspace ``folder`` (already resolved): it changes
    when ``ontology.yaml``, a proposal file, a model's metrics or the git history (HEAD and branch refs)
    change. Only names, sizes and modification times are read, and the workspace is not opened, so the
    sidebar can poll it every few seconds for about a millisecond each."""
    root = Path(folder)
    entries = [root / "ontology.yaml", root / ".git" / "HEAD", root / ".git" / "packed-refs"]
    for sub, pattern in (("proposals", "*.yaml"), ("models", "*.json"), (".git/refs/heads", "*")):
        d = root / sub
        if d.is_dir():
            entries += sorted(d.glob(pattern))
    h = hashlib.sha256()
    for path in entries:
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{path.relative_to(root).as_posix()}:{st.st_size}:{st.st_mtime_ns};".encode())
    return {"stamp": h.hexdigest()[:24]}


#: Example segments a concept card shows.
CARD_EXAMPLES = 6


def concept_card(ws: Workspace, concept: object, examples: int = CARD_EXAMPLES) -> dict[str, Any]:
    """Everything the sidebar's concept card shows: the concept, its model's metrics and status (the
    one concept metric: validation balanced accuracy), its labelled segments, ``examples`` of them as
    small PNG data URLs, and which change introduced it (``workbench.review.history.why``)."""
    if not isinstance(concept, str) or not _CONCEPT_ID.match(concept):
        raise BadRequest(f"concept id {str(concept)[:40]!r} must look like petal or flower_head")
    o = ws.ontology
    if concept not in o.concepts:
        raise BadRequest(f"no concept {concept!r} in the ontology ({', '.join(o.concepts)})", 404)
    c = o.concepts[concept]
    kind = o.kind(concept)
    metrics = ModelStore(ws.models_dir).metrics(concept)
    status, reason = (concept_status(facts_from_metrics(metrics), "segment" if kind == "part" else "image")
                      if metrics is not None else (None, None))
    store = ws.store
    rows = store.labels(concept=concept)
    shown: list[dict[str, Any]] = []
    images = ImageCache(size=4)
    try:
        for row in rows[: examples * 3]:
            if len(shown) >= examples:
                break
            try:
                seg = store.segment(row.segment_id)
                im = store.image(seg.image_id)
                pixels = images.get(ws.image_path(im.path))
                shown.append({"segment": seg.id, "image": im.path, "src": png_data_url(crop_view(pixels, seg, 64))})
            except WorkbenchError:
                continue  # a moved or unreadable image: leave that example out
    finally:
        images.close()
    try:
        traced = why(ws, concept)
        introduced = _jsonable(traced.introduced) if traced.introduced is not None else None
        summary = traced.summary()
    except WorkbenchError as e:
        introduced, summary = None, str(e)
    return {
        "id": c.id, "label": c.label, "description": c.description, "kind": kind,
        "implementation": c.implementation, "rule": c.rule, "parts": list(o.parts(concept)),
        "parents": list(o.parents(concept)), "metrics": _model_metrics(ws, concept), "status": status,
        "status_reason": reason, "labelled": len(rows), "examples": shown, "introduced": introduced,
        "why": summary, "provisional": bool(getattr(c, "provisional", False)),
    }  # fmt: skip


def _image_root(ws: Workspace) -> Path:
    return ws.dataset_root


def _suggester(ws: Workspace, name: str | None, settings: Any) -> Any:
    if name is None:
        name = "claude" if env_secrets() else "scripted"
    if name == "claude":
        return make_suggester(name, workspace=ws, model=settings.claude_model, max_image_edge=settings.llm_max_image_edge)
    return make_suggester(name, workspace=ws)


def suggest(ws: Workspace, image: str, *, suggester: str | None = None, overrides: Mapping[str, Any] | None = None,
            root: str | os.PathLike[str] | None = None) -> Any:  # fmt: skip
    """Ask a suggester for edits prompted by one image; the proposal is saved and returned.

    ``image`` is relative to the workspace's data set (or to the workspace when it has none) and must
    stay inside it, and inside ``root`` when given (the server passes its root: a workspace whose
    ``dataset`` setting points elsewhere cannot make it read, or send to a model, files outside).
    The suggester is ``claude`` when ``ANTHROPIC_API_KEY`` is set, else ``scripted``.
    """
    settings = settings_with(ws, overrides)
    path = resolve_inside(_image_root(ws), image, what="image path")
    if root is not None:
        base = _real(root)
        if not _inside(path, base):
            raise PathRefused(image, "the workspace's data set lies outside the Jupyter root; images there are "
                              "not served (move the data set under the root, or start Jupyter higher up)")  # fmt: skip
        if ".git" in path.relative_to(base).parts:
            raise PathRefused(image, "lies under .git; git's own files are never served")
    if not path.is_file():
        raise PathRefused(image, "not a file; give an image inside the workspace's data set", 404)

    s = _suggester(ws, suggester, settings)

    array = load_image(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    rel = PurePosixPath(*check_relative(image)).as_posix()
    class_label = rel.split("/")[0] if "/" in rel else None
    p = s.suggest(ws.ontology, array, SuggestContext(image_id=rel, image_sha256=sha, class_label=class_label))
    return _save(ws, p, f"for image {rel}")


def refactor(ws: Workspace, *, suggester: str | None = None, overrides: Mapping[str, Any] | None = None) -> Any:
    """Ask a suggester to simplify the ontology given the proposal history; the proposal is saved and returned."""
    settings = settings_with(ws, overrides)
    s = _suggester(ws, suggester, settings)
    return _save(ws, s.refactor(ws.ontology, ProposalStore(ws).list()), "for a refactor")


def run_gate(ws: Workspace, ref: str, *, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run the merge gate on a pending proposal and record the verdict in its file; returns the verdict.

    ``overrides`` may change the gate's thresholds for this run (the verdict records the thresholds it
    used); the workspace's settings file is not changed. Applying (``wb.apply``) gates again with the
    workspace's own settings.
    """
    ref = _check_proposal_ref(ref)
    settings = settings_with(ws, overrides)
    store = ProposalStore(ws)
    try:
        p = store.load(ref)
    except WorkbenchError as e:
        raise BadRequest(str(e), 404) from None
    if p.status != "pending":
        raise BadRequest(f"proposal {p.id} is already {p.status}; only pending proposals are gated", 409)

    ws.settings = settings  # this request's Workspace object only; nothing is saved
    from workbench.review.gate import (
        gate,  # lazy: the gate trains (torch); the server starts without it
    )

    verdict = gate(ws, p)
    store.update(dataclasses.replace(p, gate=verdict.to_dict()), message=f"Gate verdict for proposal {p.id}: {verdict.line()}")
    return verdict.to_dict()


def _save(ws: Workspace, p: Any, what: str) -> Any:
    """Save a new proposal and review it with the workspace's ``reviewer`` setting (a failed review is
    logged, the proposal kept); one without edits (e.g. a used-up script) is refused, not saved."""
    if not p.edits:
        raise BadRequest(f"the suggester ({p.author}) proposed no edits {what}; nothing was saved", 422)
    saved, _problem = review_if_configured(ws, ProposalStore(ws).save(p))
    return saved


def run_review(ws: Workspace, ref: str, *, reviewer: str | None = None) -> dict[str, Any]:
    """Review a proposal (``reviewer``: a registered name, default the ``reviewer`` setting) and store the
    findings in its file; returns the review as :func:`review_summary` data. The edits, the status and the
    ontology are not touched."""
    ref = _check_proposal_ref(ref)
    if reviewer is not None and reviewer not in REVIEWERS:
        raise BadRequest(f"unknown reviewer {reviewer[:40]!r}; one of {', '.join(REVIEWERS)}")
    try:
        ProposalStore(ws).load(ref)
    except WorkbenchError as e:
        raise BadRequest(str(e), 404) from None
    return {"review": review_summary(review_proposal(ws, ref, reviewer).review)}


# ----------------------------------------------------------------------------------------- handlers


class _Handler(APIHandler):
    """Shared plumbing: JSON answers, JSON errors, the workspace from ``?workspace=``."""

    def prepare(self) -> Any:
        length = self.request.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            self._json_error(413, f"request body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
            return None
        return super().prepare()

    @property
    def root(self) -> str:
        return self.settings.get("server_root_dir") or os.getcwd()

    def _json_error(self, status: int, message: str) -> None:
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"error": message, "status": status}))

    def _reply(self, data: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(_jsonable(data)))

    def _open(self, rel: object) -> Workspace:
        if rel is None:
            raise BadRequest("give the workspace folder as ?workspace=<path relative to the Jupyter root>")
        return Workspace.open(resolve_workspace(self.root, rel))

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args)`` off the event loop and answer with its result or a JSON error."""
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))
        except (PathRefused, BadRequest) as e:
            self._json_error(e.status, str(e))
        except WorkbenchError as e:
            self._json_error(422, f"{type(e).__name__}: {e}")
        else:
            self._reply(result)

    def _with_ws(self, rel: object, fn: Any, *args: Any, **kwargs: Any) -> Any:
        ws = self._open(rel)
        try:
            return fn(ws, *args, **kwargs)
        finally:
            ws.close()


class WorkspacesHandler(_Handler):
    @property
    def runtime_dir(self) -> str:
        """Where the server's kernels keep their connection files (and workbench.open its records)."""
        km = self.settings.get("kernel_manager")
        folder = getattr(km, "connection_dir", None) or getattr(self.serverapp, "runtime_dir", None)
        if not folder:
            folder = jupyter_runtime_dir()
        return str(folder)

    @tornado.web.authenticated
    async def get(self) -> None:
        path, kernel = self.get_query_argument("path", ""), self.get_query_argument("kernel", None)

        def work() -> dict[str, Any]:
            mine = kernel_workspace(self.root, self.runtime_dir, kernel)
            found = find_workspaces(self.root, path)
            if "workspace" in mine:
                found = [mine["workspace"], *(w for w in found if w != mine["workspace"])]
            return {"workspaces": found, "kernel": mine}

        await self._run(work)


class StateHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        rel = self.get_query_argument("workspace", None)

        def work() -> dict[str, Any]:
            if rel is None:
                raise BadRequest("give the workspace folder as ?workspace=<path relative to the Jupyter root>")
            return workspace_state(resolve_workspace(self.root, rel))

        await self._run(work)


class ConceptHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        rel = self.get_query_argument("workspace", None)
        await self._run(self._with_ws, rel, concept_card, self.get_query_argument("concept", None))


class OntologyHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self._run(self._with_ws, self.get_query_argument("workspace", None), ontology_tree)


class ProposalsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, ref: str | None = None) -> None:
        rel = self.get_query_argument("workspace", None)
        if ref:
            await self._run(self._with_ws, rel, proposal_detail, ref)
        else:
            status = self.get_query_argument("status", None)
            await self._run(lambda: {"proposals": self._with_ws(rel, proposal_summaries, status)})


class HistoryHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        rel = self.get_query_argument("workspace", None)
        await self._run(lambda: {"history": self._with_ws(rel, history_entries)})


class WhyHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        rel = self.get_query_argument("workspace", None)
        await self._run(self._with_ws, rel, why_concept, self.get_query_argument("concept", None))


class ImagesHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        rel = self.get_query_argument("workspace", None)
        await self._run(lambda: {"images": self._with_ws(rel, image_list)})


_SUGGEST_FIELDS = {"workspace": (str, True), "image": (str, True), "suggester": (str, False), "settings": (dict, False)}


_REFACTOR_FIELDS = {"workspace": (str, True), "suggester": (str, False), "settings": (dict, False)}


class SuggestHandler(_Handler):
    @tornado.web.authenticated
    async def post(self) -> None:
        def work() -> Any:
            body = parse_body(self.request.body, _SUGGEST_FIELDS)
            p = self._with_ws(body["workspace"], suggest, body["image"], suggester=body.get("suggester"),
                              overrides=body.get("settings"), root=self.root)  # fmt: skip
            return {"proposal": p.to_dict()}

        await self._run(work)


class RefactorHandler(_Handler):
    @tornado.web.authenticated
    async def post(self) -> None:
        def work() -> Any:
            body = parse_body(self.request.body, _REFACTOR_FIELDS)
            p = self._with_ws(body["workspace"], refactor, suggester=body.get("suggester"), overrides=body.get("settings"))
            return {"proposal": p.to_dict()}

        await self._run(work)


_GATE_FIELDS = {"workspace": (str, True), "proposal": (str, True), "settings": (dict, False)}


class GateHandler(_Handler):
    @tornado.web.authenticated
    async def post(self) -> None:
        def work() -> Any:
            body = parse_body(self.request.body, _GATE_FIELDS)
            return {"gate": self._with_ws(body["workspace"], run_gate, body["proposal"], overrides=body.get("settings"))}

        await self._run(work)


_REVIEW_FIELDS = {"workspace": (str, True), "proposal": (str, True), "reviewer": (str, False)}


class ReviewHandler(_Handler):
    @tornado.web.authenticated
    async def post(self) -> None:
        def work() -> Any:
            body = parse_body(self.request.body, _REVIEW_FIELDS)
            return self._with_ws(body["workspace"], run_review, body["proposal"], reviewer=body.get("reviewer"))

        await self._run(work)


def _handlers(base_url: str) -> list[tuple[str, Any]]:
    api = url_path_join(base_url, API_PREFIX)
    return [
        (url_path_join(api, "workspaces"), WorkspacesHandler),
        (url_path_join(api, "state"), StateHandler),
        (url_path_join(api, "concept"), ConceptHandler),
        (url_path_join(api, "ontology"), OntologyHandler),
        (url_path_join(api, "proposals"), ProposalsHandler),
        (url_path_join(api, rf"proposals/([0-9]{{1,{MAX_ID_DIGITS}}})"), ProposalsHandler),
        (url_path_join(api, "history"), HistoryHandler),
        (url_path_join(api, "why"), WhyHandler),
        (url_path_join(api, "images"), ImagesHandler),
        (url_path_join(api, "suggest"), SuggestHandler),
        (url_path_join(api, "refactor"), RefactorHandler),
        (url_path_join(api, "gate"), GateHandler),
        (url_path_join(api, "review"), ReviewHandler),
    ]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Tell jupyter_server that this module is a server extension."""
    return [{"module": "workbench.jupyter.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the handlers on the running server (called by jupyter_server)."""
    web_app = serverapp.web_app
    web_app.add_handlers(".*$", _handlers(web_app.settings["base_url"]))
    serverapp.log.info("workbench: REST API at %s%s", web_app.settings["base_url"], API_PREFIX)
