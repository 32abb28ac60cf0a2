"""Pins: per-concept tests a person writes by pointing at a segment ("this must be a petal").

A pin says that one segment must (``must``) or must not (``must_not``) be scored as one concept by that
concept's model. Pins are the workspace's regression tests: ``workbench test`` runs them
(:mod:`workbench.models.pins`), and the merge gate runs the pins of every concept a proposal retrains
and names the ones it would newly break.

**Where they live.** One reviewable YAML file per concept, ``pins/<concept>.yaml``, committed to the
workspace's git repository; adding or removing a pin writes the file atomically and commits it with a
message naming the segment and the concept, so every pin has an author, a date and a diff::

    # Pins of 'petal': segments its model must (or must not) score as 'petal'. `workbench test` runs them.
    version: 1
    concept: petal
    pins:
    - image: daisy/0003.png
      sha256: 3f5a…(64 hex digits: the image's content)
      box: [12, 40, 31, 58]
      mask: 9c0e5d2a11b7f360
      expect: must
      by: alice
      date: '2026-12-02T10:11:12Z'
      note: the long white one at the top

Pins are kept sorted (image, box) and every key in a fixed order, so one change is one small hunk.

**Which segment.** A pin names its segment by content, not by the store's row id: the image's content
sha256, the segment's box ``(x0, y0, x1, y1)`` in the image's pixels and a digest of its mask inside the
box (:func:`mask_digest`). So a pin survives a rebuilt label store or a moved data set, and
:func:`match_segments` finds the store's segments that are it. A pin whose segment is in the store no
more (the images were segmented again with other settings) is *stale*: reported as such by
``workbench test``, never dropped and never counted as passed or failed. ``image`` is the path for
people to read; it is not used to match.

**Pinned segments are tests, not training data.** :func:`pinned_segment_ids` gives every store segment
any pin names (of any concept, stale pins aside); the training job (:func:`workbench.models.job.collect_workspace`)
removes their labels, so no pinned segment trains, early-stops or is measured as a labelled example.

Errors (:class:`PinError`) name the file and the problem: bad YAML, a missing or wrong field, a file
for a concept the ontology does not have.

>>> import tempfile, os, numpy as np
>>> from workbench.ontology.graph import Ontology, Concept
>>> from workbench.data.segments import Segment
>>> from workbench.workspace.folder import Workspace
>>> o = Ontology("daisy", "daisy", [Concept("daisy", "Daisy", parts=("petal",)), Concept("petal", "Petal")])
>>> ws = Workspace.create(os.path.join(tempfile.mkdtemp(), "ws"), o)
>>> img = ws.store.add_image("daisy/0001.png", "ab" * 32, width=4, height=3, class_label="daisy")
>>> mask = np.zeros((3, 4), bool); mask[1:3, 1:3] = True
>>> [sid] = ws.store.add_segments(img, "s", [Segment.from_mask(mask)])
>>> pin = add_pin(ws, sid, "petal", by="alice")
>>> pin.describe()
"segment of daisy/0001.png at (1, 1, 3, 3) must be 'petal'"
>>> [p.box for p in pins(ws)], pinned_segment_ids(ws) == {sid}
([(1, 1, 3, 3)], True)
>>> remove_pin(ws, sid, "petal", by="alice").expect, pins(ws)
('must', [])
>>> ws.close()
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from workbench._io import atomic_write_text
from workbench._yaml import read_yaml_file
from workbench.data.store import NONE, SegmentRow
from workbench.errors import PinError, StoreError
from workbench.ontology.graph import Ontology



class Workspace(Protocol):
    """What the pins use of a :class:`workbench.workspace.folder.Workspace`. A protocol, not an import:
    the folder carries pins along with accepted renames and merges (:func:`follow_edits`), so it imports
    this module, and an import back would be a cycle."""

    path: Path
    ontology_path: Path
    cache_dir: Path
    store: Any
    ontology: Ontology
    has_git: bool

    def commit(self, message: str, paths: Any) -> str | None: ...

__all__ = [
    "PINS_DIR",
    "PINS_VERSION",
    "EXPECTS",
    "PinError",
    "Pin",
    "mask_digest",
    "segment_identity",
    "pins_path",
    "read_pins_file",
    "pins",
    "pin_files",
    "unknown_concepts",
    "add_pin",
    "remove_pin",
    "find_pin",
    "find_segment",
    "match_segments",
    "pinned_segment_ids",
    "follow_edits",
]

#: The folder of the pin files, inside the workspace (committed).
PINS_DIR = "pins"
#: Version of the pin file format this module writes; a higher one is refused with "upgrade".
PINS_VERSION = 1
#: What a pin expects of its concept's model on its segment.
EXPECTS = ("must", "must_not")
_PIN_KEYS = ("image", "sha256", "box", "mask", "expect", "by", "date", "note")
_REQUIRED = ("sha256", "box", "mask", "expect", "by", "date")
_TOP_KEYS = ("version", "concept", "pins")
_CONCEPT_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_MASK_RE = re.compile(r"^[0-9a-f]{16}$")
_MAX_NOTE = 500


def mask_digest(crop_mask: np.ndarray) -> str:
    """A digest of a segment's mask inside its box (16 hex digits), independent of how it is stored.

    >>> m = np.zeros((2, 3), bool); m[0, 1] = True
    >>> mask_digest(m) == mask_digest(m.copy()), mask_digest(m) == mask_digest(~m)
    (True, False)
    """
    m = np.asarray(crop_mask, dtype=bool)
    if m.ndim != 2:
        raise PinError(f"a segment's mask inside its box must be 2-D, got shape {m.shape}")
    head = f"{m.shape[0]}x{m.shape[1]}:".encode()
    return hashlib.sha256(head + np.packbits(m, axis=None).tobytes()).hexdigest()[:16]


def segment_identity(row: SegmentRow) -> tuple[tuple[int, int, int, int], str]:
    """``(box, mask digest)`` of a stored segment: with its image's sha256, what a pin matches on."""
    return tuple(int(v) for v in row.bbox), mask_digest(row.crop_mask())  # type: ignore[return-value]


@dataclass(frozen=True)
class Pin:
    """One per-concept test: the segment (``sha256`` of its image's content, ``box``, ``mask`` digest),
    the concept and what is expected of the concept's model there (``must`` score at or above its
    threshold, ``must_not`` score below it), who pinned it and when, an optional note, and ``image``
    (the stored path, for people; not used to match)."""

    concept: str
    expect: str
    sha256: str
    box: tuple[int, int, int, int]
    mask: str
    image: str
    by: str
    date: str
    note: str = ""

    @property
    def segment_key(self) -> tuple[str, tuple[int, int, int, int], str]:
        """What identifies the segment: (image sha256, box, mask digest)."""
        return (self.sha256, self.box, self.mask)

    @property
    def key(self) -> tuple[str, str, tuple[int, int, int, int], str]:
        """What identifies the pin: its concept and its segment (one pin per concept and segment)."""
        return (self.concept, *self.segment_key)

    @property
    def id(self) -> str:
        """A short, stable name for the pin (10 hex digits of its key), e.g. for `workbench pin remove --pin`."""
        x0, y0, x1, y1 = self.box
        return hashlib.sha256(f"{self.concept}:{self.sha256}:{x0},{y0},{x1},{y1}:{self.mask}".encode()).hexdigest()[:10]

    @property
    def expectation(self) -> str:
        """``must be 'petal'`` or ``must not be 'petal'``."""
        return f"{'must' if self.expect == 'must' else 'must not'} be {self.concept!r}"

    def describe(self) -> str:
        """One line for people: which segment, and what it must be."""
        return f"segment of {self.image or self.sha256[:12]} at {self.box} {self.expectation}"

    def to_dict(self) -> dict[str, Any]:
        """The pin as written in its file (keys in a fixed order; no ``note`` when it is empty)."""
        d: dict[str, Any] = {"image": self.image, "sha256": self.sha256, "box": _FlowList(self.box),
                             "mask": self.mask, "expect": self.expect, "by": self.by, "date": self.date}
        if self.note:
            d["note"] = self.note
        return d


class _FlowList(list):
    """A list written in flow style (``[1, 2, 3, 4]``): a box on one line."""


class _PinDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002
        return True


_PinDumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


# -------------------------------------------------------------------------------------------- files
def pins_path(ws: Workspace, concept: str) -> Path:
    """``pins/<concept>.yaml`` in the workspace."""
    _check_concept_id(concept, "pins_path")
    return ws.path / PINS_DIR / f"{concept}.yaml"


def pin_files(ws: Workspace) -> list[Path]:
    """Every ``pins/*.yaml`` file, by name (symlinks and folders are not pin files and are left out)."""
    folder = ws.path / PINS_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if p.is_file() and not p.is_symlink())


def read_pins_file(path: str | Path) -> list[Pin]:
    """The pins in one file, checked: each problem raises :class:`PinError` naming the file (and the
    pin's number) and what is wrong."""
    path = Path(path)
    data = read_yaml_file(path, PinError, "a pin file")
    if not isinstance(data, Mapping):
        raise PinError(f"{path}: a pin file is a mapping with keys {', '.join(_TOP_KEYS)}; "
                       f"got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in _TOP_KEYS)
    if unknown:
        raise PinError(f"{path}: unknown key(s) {', '.join(unknown)}; a pin file has {', '.join(_TOP_KEYS)}")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PinError(f"{path}: `version` must be a positive integer, got {version!r}")
    if version > PINS_VERSION:
        raise PinError(f"{path}: written by a newer workbench (pin format {version}, this one reads up to "
                       f"{PINS_VERSION}); upgrade: pip install -U constructability-workbench")
    concept = data.get("concept")
    if not isinstance(concept, str) or not _CONCEPT_RE.match(concept):
        raise PinError(f"{path}: `concept` must be a concept id (lowercase letters, digits, _), got {concept!r}")
    if path.stem != concept:
        raise PinError(f"{path}: holds the pins of {concept!r} but is named {path.name!r}; "
                       f"rename it to {concept}.yaml")
    items = data.get("pins")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise PinError(f"{path}: `pins` must be a list of pins, got {type(items).__name__}")
    out: list[Pin] = []
    seen: dict[tuple[Any, ...], int] = {}
    for i, item in enumerate(items, 1):
        pin = _pin_from(item, concept, f"{path}: pin {i}")
        if pin.key in seen:
            raise PinError(f"{path}: pins {seen[pin.key]} and {i} name the same segment; keep one")
        seen[pin.key] = i
        out.append(pin)
    return out


def _pin_from(item: Any, concept: str, where: str) -> Pin:
    if not isinstance(item, Mapping):
        raise PinError(f"{where}: must be a mapping with keys {', '.join(_PIN_KEYS)}, got {type(item).__name__}")
    unknown = sorted(str(k) for k in item if k not in _PIN_KEYS)
    if unknown:
        raise PinError(f"{where}: unknown key(s) {', '.join(unknown)}; a pin has {', '.join(_PIN_KEYS)}")
    missing = [k for k in _REQUIRED if item.get(k) in (None, "")]
    if missing:
        raise PinError(f"{where}: missing {', '.join(missing)}")
    sha = item["sha256"]
    if not isinstance(sha, str) or not _SHA_RE.match(sha):
        raise PinError(f"{where}: `sha256` must be 64 lowercase hex digits (the image's content), got {sha!r}")
    box = item["box"]
    if (not isinstance(box, list) or len(box) != 4 or any(isinstance(v, bool) or not isinstance(v, int) for v in box)
            or not (0 <= box[0] < box[2] and 0 <= box[1] < box[3])):
        raise PinError(f"{where}: `box` must be [x0, y0, x1, y1], whole pixels with x0 < x1 and y0 < y1, got {box!r}")
    mask = item["mask"]
    if not isinstance(mask, str) or not _MASK_RE.match(mask):
        raise PinError(f"{where}: `mask` must be 16 lowercase hex digits (the mask's digest), got {mask!r}")
    expect = item["expect"]
    if expect not in EXPECTS:
        raise PinError(f"{where}: `expect` must be {' or '.join(EXPECTS)}, got {expect!r}")
    texts = {}
    for k in ("image", "by", "date", "note"):
        v = item.get(k, "")
        if v is None:
            v = ""
        if not isinstance(v, str):
            v = str(v)  # a date YAML read as a datetime, a numeric name
        texts[k] = v
    return Pin(concept, expect, sha, (box[0], box[1], box[2], box[3]), mask, texts["image"], texts["by"],
               texts["date"], texts["note"])


def _write_file(path: Path, concept: str, items: Iterable[Pin]) -> None:
    ordered = sorted(items, key=lambda p: (p.image, p.box, p.sha256, p.mask))
    body = yaml.dump({"version": PINS_VERSION, "concept": concept, "pins": [p.to_dict() for p in ordered]},
                     Dumper=_PinDumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    head = (f"# Pins of {concept!r}: segments its model must (or must not) score as {concept!r}. "
            "`workbench test` runs them.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, head + body)


def pins(ws: Workspace, concept: str | None = None, *, strict: bool = True) -> list[Pin]:
    """The workspace's pins (of ``concept``, or all), by concept then image.

    ``strict``: a file for a concept the ontology does not have (renamed or removed since) is an error
    naming the file; without it such pins are returned too (the training job still keeps their
    segments out, and the gate runs against another ontology).
    """
    if concept is not None:
        p = pins_path(ws, concept)
        files = [p] if p.is_file() else []
    else:
        files = pin_files(ws)
    known = ws.ontology.concepts if strict else None
    out: list[Pin] = []
    for f in files:
        items = read_pins_file(f)
        if known is not None and f.stem not in known:
            raise PinError(f"{f}: pins of {f.stem!r}, which is not a concept of {ws.ontology_path.name} (renamed "
                           f"or removed?); rename the file to pins/<new id>.yaml and its `concept:` with it, or "
                           f"delete the file (`git rm {PINS_DIR}/{f.name}`)")
        out.extend(items)
    return out


def unknown_concepts(ws: Workspace, ontology: Ontology | None = None) -> dict[str, Path]:
    """Pin files whose concept the ontology (default: the workspace's) does not have: concept → file."""
    known = (ontology or ws.ontology).concepts
    return {f.stem: f for f in pin_files(ws) if f.stem not in known}


# ---------------------------------------------------------------------------------------- matching
def match_segments(ws: Workspace, items: Iterable[Pin]) -> dict[tuple[str, tuple[int, int, int, int], str],
                                                                list[SegmentRow]]:
    """The store's segments that are each pin's segment, by :attr:`Pin.segment_key` (an empty list: the
    pin is stale). Segments of every segmenter setting and every copy of the image (same content,
    another path) count; only boxes that match have their mask digested."""
    wanted: dict[str, dict[tuple[int, int, int, int], set[str]]] = {}
    for p in items:
        wanted.setdefault(p.sha256, {}).setdefault(p.box, set()).add(p.mask)
    found: dict[tuple[str, tuple[int, int, int, int], str], list[SegmentRow]] = {}
    for sha, boxes in wanted.items():
        for box, masks in boxes.items():
            for m in masks:
                found[(sha, box, m)] = []
    if not wanted:
        return found
    for im in ws.store.images():
        boxes = wanted.get(im.sha256)
        if boxes is None:
            continue
        for row in ws.store.segments(image_id=im.id):
            box = tuple(int(v) for v in row.bbox)
            if box not in boxes:
                continue
            digest = mask_digest(row.crop_mask())
            if digest in boxes[box]:  # type: ignore[index]
                found[(im.sha256, box, digest)].append(row)  # type: ignore[index]
    return found


def pinned_segment_ids(ws: Workspace) -> set[int]:
    """Every store segment some pin names, whatever its concept (pins of concepts the ontology no longer
    has included): the segments training and evaluation must not see labelled."""
    items = pins(ws, strict=False)
    return {row.id for rows in match_segments(ws, items).values() for row in rows}


def find_segment(ws: Workspace, image: str, *, box: Iterable[int] | None = None,
                 at: tuple[int, int] | None = None) -> int:
    """The store id of a segment of ``image`` (its path as stored): the one with exactly ``box`` (as an
    explanation names the segment that fired), or the smallest one covering pixel ``at`` ``(x, y)``."""
    row = ws.store.find_image(str(image))
    if row is None:
        raise PinError(f"no image {image!r} in the label store of {ws.path}; give its path as stored, e.g. "
                       f"{ws.store.images()[0].path if ws.store.images() else 'daisy/0003.png'!r}")
    if (box is None) == (at is None):
        raise PinError("find_segment: give the segment's box or a pixel (at=(x, y)), one of the two")
    best = None
    want = tuple(int(v) for v in box) if box is not None else None
    for s in ws.store.segments(image_id=row.id):
        x0, y0, x1, y1 = s.bbox
        if want is not None:
            hit = tuple(s.bbox) == want
        else:
            x, y = (int(v) for v in at)  # type: ignore[union-attr]
            hit = x0 <= x < x1 and y0 <= y < y1 and bool(s.crop_mask()[y - y0, x - x0])
        if hit and (best is None or s.area < best.area):
            best = s
    if best is None:
        where = f"with box {want}" if want is not None else f"covering pixel {tuple(at)}"  # type: ignore[arg-type]
        raise PinError(f"{image}: no stored segment {where}")
    return best.id


def find_pin(ws: Workspace, ref: str) -> Pin:
    """The pin whose :attr:`Pin.id` starts with ``ref`` (at least 4 hex digits, unambiguous)."""
    ref = str(ref).strip().lower()
    if not re.fullmatch(r"[0-9a-f]{4,10}", ref):
        raise PinError(f"{ref!r} is not a pin id: 4 to 10 hex digits, as `workbench pin list` shows them")
    hits = [p for p in pins(ws, strict=False) if p.id.startswith(ref)]
    if not hits:
        raise PinError(f"{ws.path / PINS_DIR}: no pin with id {ref!r}; `workbench pin list --workspace {ws.path}` "
                       "lists them")
    if len(hits) > 1:
        raise PinError(f"pin id {ref!r} is ambiguous ({', '.join(p.id for p in hits)}); give more digits")
    return hits[0]


# ---------------------------------------------------------------------------------------- changing
def add_pin(ws: Workspace, segment_id: int, concept: str, expect: str = "must", *, by: str, note: str = "",
            commit: bool = True) -> Pin:
    """Pin store segment ``segment_id``: the model of ``concept`` ``must`` (or ``must_not``) score it as
    ``concept``. Writes ``pins/<concept>.yaml`` atomically and, with ``commit`` and git, commits it;
    returns the pin.

    The concept must be a part (a concept without parts: only parts score segments). Pinning a segment
    already pinned for the concept with the same expectation changes nothing (no commit); with the
    other expectation the pin is replaced, and the commit says so.
    """
    if expect not in EXPECTS:
        raise PinError(f"expect must be {' or '.join(EXPECTS)}, got {expect!r}")
    by = _check_person(by)
    note = _check_note(note)
    o = ws.ontology
    _check_pinnable(o, concept, ws)
    try:
        row = ws.store.segment(int(segment_id))
    except (TypeError, ValueError):
        raise PinError(f"segment id must be a whole number, got {segment_id!r}") from None
    except StoreError as e:
        raise PinError(str(e)) from None
    image = ws.store.image(row.image_id)
    box, digest = segment_identity(row)
    pin = Pin(concept, expect, image.sha256, box, digest, image.path, by, _now(), note)
    with _pins_lock(ws):
        path = pins_path(ws, concept)
        items = read_pins_file(path) if path.is_file() else []
        old = next((p for p in items if p.key == pin.key), None)
        if old is not None and old.expect == expect and (not note or old.note == note):
            return old
        items = [p for p in items if p.key != pin.key] + [pin]
        _write_file(path, concept, items)
        if commit and ws.has_git:
            verb = "Pin" if old is None else f"Re-pin (was {old.expectation})"
            ws.commit(_message(f"{verb} segment {row.id} of {image.path} at {box}: {pin.expectation}", by, note),
                      [path])
    return pin


def remove_pin(ws: Workspace, segment: int | Pin | str, concept: str | None = None, *, by: str,
               reason: str = "", commit: bool = True) -> Pin:
    """Remove a pin, given as store segment id + ``concept``, a :class:`Pin`, or a pin id (``find_pin``);
    stale pins (segment no longer stored) are removed by pin id. Commits the change (with git) naming
    the segment, the concept and ``by``; returns the pin removed."""
    by = _check_person(by)
    reason = _check_note(reason)
    if isinstance(segment, Pin):
        target_key, concept = segment.key, segment.concept
    elif isinstance(segment, str) and not segment.strip().isdigit():
        found = find_pin(ws, segment)
        target_key, concept = found.key, found.concept
    else:
        if concept is None:
            raise PinError("remove_pin: give the concept whose pin on this segment to remove")
        try:
            row = ws.store.segment(int(segment))
        except StoreError as e:
            raise PinError(str(e)) from None
        box, digest = segment_identity(row)
        target_key = (concept, ws.store.image(row.image_id).sha256, box, digest)
    _check_concept_id(concept, "remove_pin")
    with _pins_lock(ws):
        path = pins_path(ws, concept)
        items = read_pins_file(path) if path.is_file() else []
        old = next((p for p in items if p.key == target_key), None)
        if old is None:
            raise PinError(f"{path}: no pin of {concept!r} on that segment; "
                           f"`workbench pin list --workspace {ws.path} {concept}` lists them")
        rest = [p for p in items if p.key != target_key]
        if rest:
            _write_file(path, concept, rest)
        else:
            path.unlink()
        if commit and ws.has_git:
            ws.commit(_message(f"Unpin the segment of {old.image} at {old.box}: it no longer {old.expectation}",
                               by, reason, trailer="Unpinned-by"), [path])
    return old


def follow_edits(ws: Workspace, edits: Iterable[Any]) -> tuple[list[Path], list[str]]:
    """Carry the pins along with accepted ontology edits, as the label store carries labels: a
    ``rename`` moves ``pins/<old>.yaml`` to ``pins/<new>.yaml``; a ``merge`` moves every source's pins
    into the merged concept's file (where two name the same segment, the one already there, or the
    earlier source's, is kept and the other reported in the notes). Other edits leave pins alone (the
    pins of a removed concept stay, and ``workbench test`` names their file).

    Writes the files (atomically) but commits nothing: returns ``(paths changed, notes)`` for the
    caller to commit with the edits themselves. Edits are objects or plain dicts.
    """
    changed: list[Path] = []
    notes: list[str] = []
    with _pins_lock(ws):
        for e in edits:
            op = e.get("op") if isinstance(e, Mapping) else getattr(e, "op", None)
            field_ = (lambda k: e.get(k)) if isinstance(e, Mapping) else (lambda k: getattr(e, k, None))
            if op == "rename":
                moves, into = [field_("old")], field_("new")
            elif op == "merge":
                moves, into = [c for c in (field_("sources") or ()) if c != field_("into")], field_("into")
            else:
                continue
            target = pins_path(ws, into)
            kept = read_pins_file(target) if target.is_file() else []
            keys = {p.segment_key for p in kept}
            moved_any = False
            for src in moves:
                path = pins_path(ws, src)
                if not path.is_file():
                    continue
                for p in read_pins_file(path):
                    if p.segment_key in keys:
                        notes.append(f"{path.name}: dropped the pin of {p.image} at {p.box} ({p.expectation}): "
                                     f"{into!r} already has a pin on that segment")
                        continue
                    kept.append(Pin(into, p.expect, p.sha256, p.box, p.mask, p.image, p.by, p.date, p.note))
                    keys.add(p.segment_key)
                path.unlink()
                changed.append(path)
                moved_any = True
            if moved_any:
                _write_file(target, into, kept)
                changed.append(target)
    return changed, notes


# ---------------------------------------------------------------------------------------- helpers
def _message(title: str, by: str, note: str, trailer: str = "Pinned-by") -> str:
    body = f"\n\n{note}" if note else ""
    return f"{title}{body}\n\n{trailer}: {by}"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_concept_id(concept: object, what: str) -> None:
    if not isinstance(concept, str) or not _CONCEPT_RE.match(concept):
        raise PinError(f"{what}: {concept!r} is not a concept id (lowercase letters, digits, _)")


def _check_pinnable(o: Ontology, concept: str, ws: Workspace) -> None:
    _check_concept_id(concept, "a pin")
    if concept == NONE:
        raise PinError("'none' is no concept to pin: pin the segment as 'must not' be each concept it is not "
                       "(e.g. `workbench pin add SEGMENT petal --not`)")
    if concept not in o.concepts:
        raise PinError(f"{ws.ontology_path}: no concept {concept!r}; the parts are {', '.join(o.leaves())}")
    if concept not in o.leaves():
        raise PinError(f"{concept!r} is made of parts ({', '.join(o.composed_parts(concept))}): its model scores images from "
                       f"its parts' scores, not segments; pin one of its parts instead")


def _check_person(by: object) -> str:
    if not isinstance(by, str) or not by.strip() or "\n" in by or len(by) > 100:
        raise PinError(f"a pin needs the person's name (`by`, one line, at most 100 characters), got {by!r}")
    return by.strip()


def _check_note(note: object) -> str:
    if note is None:
        return ""
    if not isinstance(note, str) or len(note) > _MAX_NOTE:
        raise PinError(f"a pin's note must be text of at most {_MAX_NOTE} characters")
    return " ".join(note.split())


@contextmanager
def _pins_lock(ws: Workspace) -> Iterator[None]:
    """One pin change at a time per workspace (an OS file lock in ``cache/``, waited for: a change is
    quick), so a labeler and a command line pinning at once do not lose each other's pin."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    ws.cache_dir.mkdir(parents=True, exist_ok=True)
    with open(ws.cache_dir / "pins.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
