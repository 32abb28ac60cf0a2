"""The label store: images, their segments, and every label a person, an LLM or a mask file gave them.

One SQLite file per workspace (``labels.sqlite``). What it promises:

* **A label is durable when ``set_label`` returns.** Each label write is its own transaction, committed
  before the call returns, in WAL mode with ``synchronous=FULL``: the write-ahead log is fsynced on every
  commit, so an acknowledged label survives a killed process (SIGKILL) *and* a power cut or OS crash.
  ``synchronous=NORMAL`` would survive SIGKILL too (the WAL lives in the OS page cache) but may lose the
  last commits on power loss; labels are a person's time, and one fsync per keypress costs far less than
  the person takes to press the next key. Bulk writers (the ground-truth labeler) use
  :meth:`LabelStore.set_labels`, one transaction and one fsync for the batch.
* **History, not overwrites.** ``labels`` and ``image_labels`` are append-only: the current label of a
  segment is its latest row; undo appends the label it restores (or a *cleared* row, ``concept`` NULL).
  The one exception is a concept rename or merge, which rewrites the ``concept`` column of the affected
  rows in one transaction and records every row it changed in ``concept_event_labels`` (so the change is
  visible and :meth:`LabelStore.revert_concept_event` can put it back). Removing a concept from the
  ontology touches nothing here: its labels stay retrievable with ``labels(concept=...)``.
* **Provenance.** Every label row says who made it (``source``: person, llm, ground_truth; ``author``)
  and, for a person's labels made other than one at a time, how (``via``: the labeler's grid review
  writes ``"grid: <what ranked the page>"``, an accepted LLM suggestion ``"suggestion: <model>"``).
  ``via`` is a column added to stores made before it (NULL on their old rows), so old stores keep opening.
* **Nothing silently deleted.** Re-segmenting an image with the same settings hash replaces its
  segments only while none of them has a label or a suggestion; otherwise it is an error.
* **Versioned schema.** A store written by a newer workbench is refused with a message saying upgrade.

Concurrency: a ``LabelStore`` owns one SQLite connection, guarded by a lock so threads of one process
may share it. Each *process* must open its own ``LabelStore`` (never pass one through ``fork`` or a
process pool); SQLite's locking and ``busy_timeout`` let several processes write the same file.

Masks are stored compactly: the bbox-cropped boolean mask, ``np.packbits`` then ``zlib``, boxes in the
original image's pixels. :meth:`SegmentRow.crop_mask` reads it back inside the box and
:meth:`SegmentRow.segment` as a :class:`~workbench.data.segments.Segment`; the full-image mask
(:meth:`SegmentRow.mask`) is rebuilt exactly on request, but nothing in the workbench asks for it.

>>> import tempfile, os, numpy as np
>>> tmp = tempfile.mkdtemp()
>>> store = LabelStore(os.path.join(tmp, "labels.sqlite"))
>>> img = store.add_image("daisy/0001.png", "ab" * 32, width=4, height=3, class_label="daisy")
>>> mask = np.zeros((3, 4), bool); mask[1:3, 1:3] = True
>>> [sid] = store.add_segments(img, "weightfree-1", [SegmentData(bbox=(1, 1, 3, 3), area=4, mask=mask)])
>>> bool((store.segment(sid).mask() == mask).all())
True
>>> store.set_label(sid, "disk", source="person", author="alice").concept
'disk'
>>> store.counts()
{'disk': 1}
>>> store.undo(sid, author="alice") is None, store.label(sid)
(False, None)
>>> store.close()
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from workbench._io import atomic_write_text, default_file_mode
from workbench.data.segments import Segment
from workbench.errors import StoreError

__all__ = [
    "SCHEMA_VERSION",
    "SOURCES",
    "SPLIT_NAMES",
    "NONE",
    "MAX_VIA",
    "SegmentData",
    "ImageRow",
    "SegmentRow",
    "LabelRow",
    "ImageLabelRow",
    "SuggestionRow",
    "ConceptEvent",
    "LabelStore",
]

#: Version of the SQLite schema this module writes; a store with a higher version is refused.
SCHEMA_VERSION = 1
#: Who a label comes from: a person, an LLM (author = model id), or ground-truth masks (author = file).
SOURCES = ("person", "llm", "ground_truth")
#: The concept id meaning "this segment is none of the ontology's concepts".
NONE = "none"
#: Seconds a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_S = 10.0

_CONCEPT_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SUGGESTION_STATUSES = ("pending", "confirmed", "rejected")

_SCHEMA = """
CREATE TABLE schema_version (
    version INTEGER NOT NULL,
    written_at TEXT NOT NULL
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    class_label TEXT,              -- the data set's label (class folder); corrections go to image_labels
    added_at TEXT NOT NULL,
    UNIQUE (sha256, path)
);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id),
    settings_hash TEXT NOT NULL,   -- segmenter name + settings, so two segmentations never mix
    x0 INTEGER NOT NULL, y0 INTEGER NOT NULL, x1 INTEGER NOT NULL, y1 INTEGER NOT NULL,  -- max exclusive
    area INTEGER NOT NULL CHECK (area >= 0),
    mask BLOB NOT NULL,            -- zlib(np.packbits(mask[y0:y1, x0:x1]))
    mask_height INTEGER NOT NULL,  -- shape of the full-image mask
    mask_width INTEGER NOT NULL
);
CREATE INDEX segments_by_image ON segments (image_id, settings_hash);
CREATE INDEX segments_by_settings ON segments (settings_hash);
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,        -- increasing: the latest row of a segment is its current label
    segment_id INTEGER NOT NULL REFERENCES segments(id),
    concept TEXT,                  -- a concept id, 'none', or NULL = cleared
    source TEXT NOT NULL CHECK (source IN ('person', 'llm', 'ground_truth')),
    author TEXT NOT NULL,          -- 'alice', 'claude-...', 'masks:parts.json'
    created_at TEXT NOT NULL,
    reverts INTEGER REFERENCES labels(id),  -- set on undo rows: the label row this one undoes
    elapsed_ms INTEGER,            -- time the person took for this label, when the labeler measured it
    via TEXT                       -- how a person's label was made, when not one at a time: 'grid: <ranker>'
);
CREATE INDEX labels_by_segment ON labels (segment_id, id);
CREATE INDEX labels_by_concept ON labels (concept);
CREATE VIEW current_labels AS
    SELECT l.* FROM labels l
    JOIN (SELECT segment_id, MAX(id) AS id FROM labels GROUP BY segment_id) latest ON l.id = latest.id;
CREATE TABLE image_labels (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id),
    class_label TEXT,
    source TEXT NOT NULL CHECK (source IN ('person', 'llm', 'ground_truth')),
    author TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX image_labels_by_image ON image_labels (image_id, id);
CREATE TABLE suggestions (
    id INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL REFERENCES segments(id),
    concept TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'rejected')),
    resolved_at TEXT,
    resolved_by TEXT
);
CREATE INDEX suggestions_by_segment ON suggestions (segment_id, status);
CREATE INDEX suggestions_by_status ON suggestions (status);
CREATE TABLE concept_events (
    id INTEGER PRIMARY KEY,
    op TEXT NOT NULL CHECK (op IN ('rename', 'merge', 'revert')),
    sources TEXT NOT NULL,         -- JSON list of concept ids (for 'revert': the reverted event id)
    target TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE concept_event_labels (
    event_id INTEGER NOT NULL REFERENCES concept_events(id),
    label_id INTEGER NOT NULL REFERENCES labels(id),
    old_concept TEXT,
    PRIMARY KEY (event_id, label_id)
);
"""

#: Columns added to version-1 tables after it was released, added (``ALTER TABLE ... ADD COLUMN``, nullable)
#: when a store without them is opened: additive, so a store that has them still opens in a workbench that
#: does not know them (it names its columns) and old rows read as NULL ("not recorded").
_ADDED_COLUMNS = {
    # Provenance of a person's label beyond "person": the labeler's grid review records where the page's
    # ranking came from ("grid: petal model + similarity"), an accepted LLM suggestion its model.
    ("labels", "via"): "ALTER TABLE labels ADD COLUMN via TEXT",
}

#: Tables added after schema version 1 was released, created when a store without them is opened
#: (additive: a store that has them still opens in a workbench that does not know them).
_ADDED_TABLES = {
    # Which side of the train / validation / test split each image is on, stored when the image is first
    # assigned and never changed after: a test image stays a test image (see workbench.models.train).
    "image_splits": """
CREATE TABLE image_splits (
    image_id INTEGER PRIMARY KEY REFERENCES images(id),
    split TEXT NOT NULL CHECK (split IN ('train', 'val', 'test')),
    seed INTEGER NOT NULL,
    assigned_at TEXT NOT NULL
);
""",
}

#: The sides of the split.
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SegmentData:
    """A segment to store, with a full-image mask. The segmenter's compact
    :class:`~workbench.data.segments.Segment` (box, area, shape and the mask inside the box) is stored
    as it is, without ever building the full mask; this form is kept for callers that have one."""

    bbox: tuple[int, int, int, int]  # (x0, y0, x1, y1), max exclusive
    area: int  # pixels in the mask
    mask: np.ndarray  # bool, H x W: the full image


@dataclass(frozen=True)
class ImageRow:
    id: int
    path: str
    sha256: str
    width: int
    height: int
    class_label: str | None  # current: the latest image label, else the data set's label
    added_at: str


@dataclass(frozen=True)
class SegmentRow:
    id: int
    image_id: int
    settings_hash: str
    bbox: tuple[int, int, int, int]  # (x0, y0, x1, y1), max exclusive
    area: int
    shape: tuple[int, int]  # (H, W) of the full-image mask
    packed: bytes = field(repr=False)

    def crop_mask(self) -> np.ndarray:
        """The mask inside its bounding box (bool, (y1-y0) x (x1-x0))."""
        x0, y0, x1, y1 = self.bbox
        return _unpack_mask(self.packed, y1 - y0, x1 - x0)

    def segment(self) -> Segment:
        """This row as a compact :class:`~workbench.data.segments.Segment` (what :meth:`Segment.crop`
        cuts a part net's input from)."""
        return Segment.from_crop(self.crop_mask(), self.bbox, self.shape, self.area)

    def mask(self) -> np.ndarray:
        """The full-image boolean mask, exactly as it was stored (a byte per pixel of the whole image:
        prefer :meth:`crop_mask` with :attr:`bbox`)."""
        x0, y0, x1, y1 = self.bbox
        full = np.zeros(self.shape, dtype=bool)
        full[y0:y1, x0:x1] = self.crop_mask()
        return full


@dataclass(frozen=True)
class LabelRow:
    id: int
    segment_id: int
    concept: str | None  # None: cleared (only in history; ``label()`` returns None for it)
    source: str
    author: str
    created_at: str
    reverts: int | None = None  # on undo rows, the row undone
    elapsed_ms: int | None = None
    via: str | None = None  # how a person made it, beyond one at a time: "grid: <ranker>", "suggestion: <model>"


@dataclass(frozen=True)
class ImageLabelRow:
    id: int
    image_id: int
    class_label: str | None
    source: str
    author: str
    created_at: str


@dataclass(frozen=True)
class SuggestionRow:
    id: int
    segment_id: int
    concept: str
    model: str
    created_at: str
    status: str
    resolved_at: str | None
    resolved_by: str | None


@dataclass(frozen=True)
class ConceptEvent:
    id: int
    op: str  # rename | merge | revert
    sources: tuple[str, ...]
    target: str
    author: str
    created_at: str
    labels_changed: int


_LABEL_COLS = "id, segment_id, concept, source, author, created_at, reverts, elapsed_ms, via"
_SEGMENT_COLS = "id, image_id, settings_hash, x0, y0, x1, y1, area, mask_height, mask_width, mask"


class LabelStore:
    """Images, segments and labels in one SQLite file (see the module docstring for the guarantees)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._depth = 0
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder; give the path of the label store file (labels.sqlite)")
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open the label store: {e}") from None
        try:
            self._configure()
            self._ensure_schema()
        except BaseException:
            self._conn.close()
            raise

    # -- connection and schema ---------------------------------------------------------------------------

    def _configure(self) -> None:
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA journal_size_limit = 8388608")  # truncate the WAL to 8 MB after checkpoints
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a label store (SQLite says: {e})") from None
        if str(mode).lower() != "wal":
            raise StoreError(
                f"{self.path}: SQLite could not switch to WAL mode (got {mode!r}); "
                "put the workspace on a local file system"
            )

    def _ensure_schema(self) -> None:
        with self.transaction():
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                for statement in _split_sql(_SCHEMA) + [*_ADDED_TABLES.values()]:
                    self._conn.execute(statement)
                self._conn.execute(
                    "INSERT INTO schema_version (version, written_at) VALUES (?, ?)", (SCHEMA_VERSION, _now())
                )
                return
            if "schema_version" not in tables:
                raise StoreError(
                    f"{self.path}: an SQLite file but not a workbench label store (no schema_version table)"
                )
            row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0] if row else None
            if version is None:
                raise StoreError(f"{self.path}: label store has an empty schema_version table (damaged?)")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: label store schema version {version} was written by a newer workbench "
                    f"(this one reads up to {SCHEMA_VERSION}); upgrade: pip install -U constructability-workbench"
                )
            # version < SCHEMA_VERSION: migrations go here when there is a version 2.
            for name, sql in _ADDED_TABLES.items():
                if name not in tables:
                    self._conn.execute(sql)
            for (table, column), sql in _ADDED_COLUMNS.items():
                have = {r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    self._conn.execute(sql)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested calls join the outer one. Commits (durably) on exit.

        The workspace uses this to relabel concepts and write the ontology file as one step.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot start a write ({e})") from None
            self._depth = 1
            try:
                yield
            except sqlite3.Error as e:
                self._rollback()
                raise StoreError(f"{self.path}: write failed and was rolled back: {e}") from e
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as e:
                    self._rollback()
                    raise StoreError(f"{self.path}: commit failed and was rolled back: {e}") from e
            finally:
                self._depth = 0

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _check_open(self) -> None:
        if self._conn is None:
            raise StoreError(f"{self.path}: the label store is closed")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            self._check_open()
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: query failed: {e}") from e

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r})"

    @property
    def schema_version(self) -> int:
        return int(self._read("SELECT MAX(version) FROM schema_version")[0][0])

    def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check`` plus a foreign-key check; ``['ok']`` when healthy."""
        problems = [r[0] for r in self._read("PRAGMA integrity_check")]
        fk = self._read("PRAGMA foreign_key_check")
        if fk:
            problems = [p for p in problems if p != "ok"] + [f"foreign key violation: {r}" for r in fk]
        return problems

    def backup(self, path: str | os.PathLike[str]) -> None:
        """Write a consistent snapshot of the store to ``path`` (atomically), while it stays in use."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, default_file_mode())  # mkstemp makes it 0600; a backup follows the umask like the store
        os.close(fd)
        try:
            dst = sqlite3.connect(tmp)
            try:
                with self._lock:
                    self._check_open()
                    self._conn.backup(dst)
            finally:
                dst.close()
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    # -- images ------------------------------------------------------------------------------------------

    def add_image(
        self, path: str, sha256: str, width: int, height: int, class_label: str | None = None
    ) -> int:
        """Record an image; the same (sha256, path) again returns the existing id."""
        if not isinstance(path, str) or not path:
            raise StoreError(f"image path must be a non-empty string, got {path!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", str(sha256)):
            raise StoreError(f"image {path}: sha256 must be 64 lowercase hex digits, got {sha256!r}")
        for name, v in (("width", width), ("height", height)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise StoreError(f"image {path}: {name} must be a positive integer, got {v!r}")
        with self.transaction():
            self._conn.execute(
                "INSERT INTO images (path, sha256, width, height, class_label, added_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (sha256, path) DO NOTHING",
                (path, sha256, int(width), int(height), class_label, _now()),
            )
            return int(
                self._conn.execute("SELECT id FROM images WHERE sha256 = ? AND path = ?", (sha256, path)).fetchone()[0]
            )

    _IMAGE_SQL = (
        "SELECT i.id, i.path, i.sha256, i.width, i.height, "
        "COALESCE((SELECT il.class_label FROM image_labels il WHERE il.image_id = i.id ORDER BY il.id DESC LIMIT 1),"
        " i.class_label) AS current, i.added_at FROM images i"
    )

    def images(self, class_label: str | None = None) -> list[ImageRow]:
        """All images in insertion order, or those whose current class label is ``class_label``."""
        if class_label is None:
            rows = self._read(self._IMAGE_SQL + " ORDER BY i.id")
        else:
            rows = self._read(f"SELECT * FROM ({self._IMAGE_SQL}) WHERE current = ? ORDER BY id", (class_label,))
        return [ImageRow(*r) for r in rows]

    def image(self, image_id: int) -> ImageRow:
        rows = self._read(self._IMAGE_SQL + " WHERE i.id = ?", (int(image_id),))
        if not rows:
            raise StoreError(f"{self.path}: no image with id {image_id}")
        return ImageRow(*rows[0])

    def find_image(self, path: str) -> ImageRow | None:
        """The image recorded under ``path`` (latest if recorded with several contents), or None."""
        rows = self._read(f"SELECT * FROM ({self._IMAGE_SQL}) WHERE path = ? ORDER BY id DESC LIMIT 1", (path,))
        return ImageRow(*rows[0]) if rows else None

    def set_image_label(
        self, image_id: int, class_label: str | None, *, source: str, author: str
    ) -> ImageLabelRow:
        """Set (append) the image's class label; ``None`` clears it. Committed before returning."""
        _check_source(source, author)
        now = _now()
        with self.transaction():
            try:
                cur = self._conn.execute(
                    "INSERT INTO image_labels (image_id, class_label, source, author, created_at) VALUES (?, ?, ?, ?, ?)",
                    (int(image_id), class_label, source, author, now),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"{self.path}: no image with id {image_id}") from None
            return ImageLabelRow(int(cur.lastrowid), int(image_id), class_label, source, author, now)

    # -- the split --------------------------------------------------------------------------------------

    def image_splits(self) -> dict[int, str]:
        """Image id → "train" | "val" | "test" for every image assigned so far (see :meth:`assign_splits`)."""
        return {int(i): str(side) for i, side in self._read("SELECT image_id, split FROM image_splits")}

    def assign_splits(self, sides: Mapping[int, str], *, seed: int) -> int:
        """Record the split of images not yet assigned; an image already assigned keeps its side (there
        is no way to move it: a test image stays a test image). Returns how many were newly recorded."""
        bad = sorted({str(v) for v in sides.values()} - set(SPLIT_NAMES))
        if bad:
            raise StoreError(f"{self.path}: split sides are {', '.join(SPLIT_NAMES)}, got {', '.join(bad)}")
        now = _now()
        with self.transaction():
            before = self._conn.total_changes
            try:
                self._conn.executemany(
                    "INSERT INTO image_splits (image_id, split, seed, assigned_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (image_id) DO NOTHING",
                    [(int(i), str(v), int(seed), now) for i, v in sides.items()],
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"{self.path}: a split was given for an image that is not in the store") from None
            return self._conn.total_changes - before

    def image_label_history(self, image_id: int) -> list[ImageLabelRow]:
        rows = self._read(
            "SELECT id, image_id, class_label, source, author, created_at FROM image_labels WHERE image_id = ? ORDER BY id",
            (int(image_id),),
        )
        return [ImageLabelRow(*r) for r in rows]

    # -- segments ----------------------------------------------------------------------------------------

    def add_segments(self, image_id: int, settings_hash: str, segments: Iterable[Any]) -> list[int]:
        """Store an image's segments for one segmenter configuration; returns their ids in order.

        Segments are compact :class:`~workbench.data.segments.Segment` objects (box, area, image shape
        and the mask inside the box: stored without building a full-image mask), or any objects with
        ``.bbox`` (x0, y0, x1, y1; max exclusive), ``.area`` and ``.mask`` (bool, full image). Storing the same segments again returns the existing ids. Different segments
        for the same (image, settings_hash) replace the old ones only if none of those has a label or a
        suggestion; otherwise StoreError (labels are never deleted silently).
        """
        if not isinstance(settings_hash, str) or not settings_hash:
            raise StoreError(f"image {image_id}: settings_hash must be a non-empty string")
        encoded = [_encode_segment(image_id, i, s) for i, s in enumerate(segments)]
        with self.transaction():
            if self._conn.execute("SELECT 1 FROM images WHERE id = ?", (int(image_id),)).fetchone() is None:
                raise StoreError(f"{self.path}: no image with id {image_id}; add_image first")
            existing = self._conn.execute(
                "SELECT id, x0, y0, x1, y1, area, mask_height, mask_width, mask FROM segments "
                "WHERE image_id = ? AND settings_hash = ? ORDER BY id",
                (int(image_id), settings_hash),
            ).fetchall()
            if existing and [tuple(r[1:]) for r in existing] == encoded:
                return [int(r[0]) for r in existing]
            if existing:
                ids = [r[0] for r in existing]
                marks = ",".join("?" * len(ids))
                n_labels = self._conn.execute(
                    f"SELECT COUNT(*) FROM labels WHERE segment_id IN ({marks})", ids
                ).fetchone()[0]
                n_sugg = self._conn.execute(
                    f"SELECT COUNT(*) FROM suggestions WHERE segment_id IN ({marks})", ids
                ).fetchone()[0]
                if n_labels or n_sugg:
                    raise StoreError(
                        f"{self.path}: image {image_id} already has different segments for settings "
                        f"{settings_hash!r} with {n_labels} label(s) and {n_sugg} suggestion(s); refusing to "
                        "replace them (labels are never deleted silently). Segmenter output for the same "
                        "settings should not change: check the segmenter is deterministic, or change its settings"
                    )
                self._conn.execute(f"DELETE FROM segments WHERE id IN ({marks})", ids)
            out = []
            for x0, y0, x1, y1, area, h, w, blob in encoded:
                cur = self._conn.execute(
                    "INSERT INTO segments (image_id, settings_hash, x0, y0, x1, y1, area, mask_height, mask_width, mask)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (int(image_id), settings_hash, x0, y0, x1, y1, area, h, w, blob),
                )
                out.append(int(cur.lastrowid))
            return out

    def segments(self, image_id: int | None = None, settings_hash: str | None = None) -> list[SegmentRow]:
        """Segments in insertion order, optionally of one image and/or one segmenter configuration."""
        where, params = _segment_filter(image_id, settings_hash)
        rows = self._read(f"SELECT {_SEGMENT_COLS} FROM segments s{where} ORDER BY s.id", params)
        return [_segment_row(r) for r in rows]

    def segment(self, segment_id: int) -> SegmentRow:
        rows = self._read(f"SELECT {_SEGMENT_COLS} FROM segments WHERE id = ?", (int(segment_id),))
        if not rows:
            raise StoreError(f"{self.path}: no segment with id {segment_id}")
        return _segment_row(rows[0])

    def segments_with_labels(
        self, image_id: int | None = None, settings_hash: str | None = None
    ) -> list[tuple[SegmentRow, LabelRow | None]]:
        """Every segment with its current label (None when unlabelled or cleared), in one indexed query."""
        where, params = _segment_filter(image_id, settings_hash)
        cols = ", ".join(f"s.{c.strip()}" for c in _SEGMENT_COLS.split(","))
        lcols = ", ".join(f"l.{c.strip()}" for c in _LABEL_COLS.split(","))
        rows = self._read(
            f"SELECT {cols}, {lcols} FROM segments s LEFT JOIN labels l ON l.id = "
            f"(SELECT MAX(id) FROM labels WHERE segment_id = s.id){where} ORDER BY s.id",
            params,
        )
        n = len(_SEGMENT_COLS.split(","))
        out = []
        for r in rows:
            label = LabelRow(*r[n:]) if r[n] is not None and r[n + 2] is not None else None
            out.append((_segment_row(r[:n]), label))
        return out

    def unlabeled(
        self,
        *,
        image_id: int | None = None,
        settings_hash: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[SegmentRow]:
        """Segments whose current label is missing or cleared, in id order (``after``: ids greater than it)."""
        where, params = _segment_filter(image_id, settings_hash)
        clauses = [where[len(" WHERE "):]] if where else []
        clauses.append("(SELECT concept FROM labels WHERE segment_id = s.id ORDER BY id DESC LIMIT 1) IS NULL")
        if after is not None:
            clauses.append("s.id > ?")
            params = [*params, int(after)]
        sql = f"SELECT {_SEGMENT_COLS} FROM segments s WHERE {' AND '.join(clauses)} ORDER BY s.id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_segment_row(r) for r in self._read(sql, params)]

    def next_unlabeled(self, after: int | None = None, **filters: Any) -> SegmentRow | None:
        """The first unlabelled segment after ``after`` (the labeler's "next"); None when all are done."""
        rows = self.unlabeled(after=after, limit=1, **filters)
        return rows[0] if rows else None

    def progress(self, settings_hash: str | None = None) -> tuple[int, int]:
        """(segments with a current label, all segments), optionally for one segmenter configuration."""
        where, params = _segment_filter(None, settings_hash)
        total = self._read(f"SELECT COUNT(*) FROM segments s{where}", params)[0][0]
        done = self._read(
            "SELECT COUNT(*) FROM current_labels c JOIN segments s ON s.id = c.segment_id "
            f"WHERE c.concept IS NOT NULL{where.replace(' WHERE ', ' AND ')}",
            params,
        )[0][0]
        return int(done), int(total)

    # -- segment labels ----------------------------------------------------------------------------------

    def set_label(
        self, segment_id: int, concept: str, *, source: str, author: str, elapsed_ms: int | None = None,
        via: str | None = None,
    ) -> LabelRow:
        """Label a segment with a concept id or ``"none"``; committed durably before returning.

        ``via``: how the label was made when that matters for trusting it (the labeler's grid review
        writes ``"grid: <what ranked the page>"``, an accepted LLM suggestion ``"suggestion: <model>"``);
        None for one label at a time. A person's label also resolves that segment's pending suggestions
        (confirmed when it agrees, rejected otherwise), which is what :meth:`suggestion_agreement` counts.
        """
        _check_concept(concept)
        _check_source(source, author)
        _check_via(via)
        with self.transaction():
            return self._insert_label(int(segment_id), concept, source, author, None, elapsed_ms, via)

    def set_labels(
        self, items: Iterable[tuple[int, str]], *, source: str, author: str, via: str | None = None
    ) -> int:
        """Label many segments in one transaction (one fsync): ``[(segment_id, concept), ...]``."""
        _check_source(source, author)
        _check_via(via)
        items = list(items)
        for _, concept in items:
            _check_concept(concept)
        with self.transaction():
            for segment_id, concept in items:
                self._insert_label(int(segment_id), concept, source, author, None, None, via)
        return len(items)

    def clear_label(self, segment_id: int, *, author: str) -> LabelRow:
        """Remove a segment's current label (appends a cleared row; the history keeps what it was)."""
        _check_source("person", author)
        with self.transaction():
            return self._insert_label(int(segment_id), None, "person", author, None, None)

    def _insert_label(
        self,
        segment_id: int,
        concept: str | None,
        source: str,
        author: str,
        reverts: int | None,
        elapsed_ms: int | None,
        via: str | None = None,
    ) -> LabelRow:
        now = _now()
        try:
            cur = self._conn.execute(
                f"INSERT INTO labels ({_LABEL_COLS.split(', ', 1)[1]}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (segment_id, concept, source, author, now, reverts, elapsed_ms, via),
            )
        except sqlite3.IntegrityError:
            raise StoreError(f"{self.path}: no segment with id {segment_id}") from None
        if source == "person" and concept is not None:
            self._conn.execute(
                "UPDATE suggestions SET status = CASE WHEN concept = ? THEN 'confirmed' ELSE 'rejected' END, "
                "resolved_at = ?, resolved_by = ? WHERE segment_id = ? AND status = 'pending'",
                (concept, now, author, segment_id),
            )
        return LabelRow(int(cur.lastrowid), segment_id, concept, source, author, now, reverts, elapsed_ms, via)

    def undo(self, segment_id: int, *, author: str) -> LabelRow | None:
        """Undo the segment's last label action; returns the appended row, or None if nothing to undo.

        The appended row restores the label before it (with that label's source, author and ``via``) or,
        when there was none, is a cleared row by ``author``. Repeated undos walk further back.
        """
        _check_source("person", author)
        with self.transaction():
            history = self._label_history(int(segment_id))
            stack: list[LabelRow] = []
            for row in history:
                if row.reverts is None:
                    stack.append(row)
                elif stack:
                    stack.pop()
            if not stack:
                return None
            undone = stack.pop()
            if stack:
                prev = stack[-1]
                return self._insert_label(int(segment_id), prev.concept, prev.source, prev.author, undone.id, None,
                                          prev.via)
            return self._insert_label(int(segment_id), None, "person", author, undone.id, None)

    def label(self, segment_id: int) -> LabelRow | None:
        """The segment's current label, or None when it has none (never labelled, cleared, or undone)."""
        rows = self._read(
            f"SELECT {_LABEL_COLS} FROM labels WHERE segment_id = ? ORDER BY id DESC LIMIT 1", (int(segment_id),)
        )
        if not rows or rows[0][2] is None:
            return None
        return LabelRow(*rows[0])

    def last_label(self, *, source: str | None = None, author: str | None = None) -> LabelRow | None:
        """The most recently written label row (optionally by source/author): where a labeler resumes."""
        clauses, params = ["reverts IS NULL"], []
        if source is not None:
            clauses.append("source = ?")
            params.append(source)
        if author is not None:
            clauses.append("author = ?")
            params.append(author)
        rows = self._read(
            f"SELECT {_LABEL_COLS} FROM labels WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT 1", params
        )
        return LabelRow(*rows[0]) if rows else None

    def label_history(self, segment_id: int) -> list[LabelRow]:
        """Every label row of a segment, oldest first (undo and cleared rows included)."""
        return self._label_history(int(segment_id))

    def _label_history(self, segment_id: int) -> list[LabelRow]:
        rows = self._read(f"SELECT {_LABEL_COLS} FROM labels WHERE segment_id = ? ORDER BY id", (segment_id,))
        return [LabelRow(*r) for r in rows]

    def labels(
        self, concept: str | None = None, source: str | None = None, *, history: bool = False
    ) -> list[LabelRow]:
        """Current labels (cleared ones left out), filtered by concept and/or source; ``history=True``
        gives every row ever written instead. Labels of a concept removed from the ontology are here too."""
        table = "labels" if history else "current_labels"
        clauses, params = ([] if history else ["concept IS NOT NULL"]), []
        if concept is not None:
            clauses.append("concept = ?")
            params.append(concept)
        if source is not None:
            clauses.append("source = ?")
            params.append(source)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(f"SELECT {_LABEL_COLS} FROM {table}{where} ORDER BY segment_id, id", params)
        return [LabelRow(*r) for r in rows]

    def counts(self, source: str | None = None) -> dict[str, int]:
        """Number of segments per current concept ("none" included), sorted by concept id."""
        sql = "SELECT concept, COUNT(*) FROM current_labels WHERE concept IS NOT NULL"
        params: list[Any] = []
        if source is not None:
            sql += " AND source = ?"
            params.append(source)
        return {c: int(n) for c, n in self._read(sql + " GROUP BY concept ORDER BY concept", params)}

    # -- suggestions -------------------------------------------------------------------------------------

    def add_suggestion(self, segment_id: int, concept: str, *, model: str) -> int:
        """Record an LLM's suggested concept for a segment (pending until a person labels the segment)."""
        return self.add_suggestions([(segment_id, concept)], model=model)[0]

    def add_suggestions(self, items: Iterable[tuple[int, str]], *, model: str) -> list[int]:
        if not isinstance(model, str) or not model:
            raise StoreError("a suggestion needs the model id that made it")
        items = list(items)
        for _, concept in items:
            _check_concept(concept)
        now = _now()
        out = []
        with self.transaction():
            for segment_id, concept in items:
                try:
                    cur = self._conn.execute(
                        "INSERT INTO suggestions (segment_id, concept, model, created_at) VALUES (?, ?, ?, ?)",
                        (int(segment_id), concept, model, now),
                    )
                except sqlite3.IntegrityError:
                    raise StoreError(f"{self.path}: no segment with id {segment_id}") from None
                out.append(int(cur.lastrowid))
        return out

    def suggestions(self, pending_only: bool = True, segment_id: int | None = None) -> list[SuggestionRow]:
        clauses, params = [], []
        if pending_only:
            clauses.append("status = 'pending'")
        if segment_id is not None:
            clauses.append("segment_id = ?")
            params.append(int(segment_id))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(
            "SELECT id, segment_id, concept, model, created_at, status, resolved_at, resolved_by "
            f"FROM suggestions{where} ORDER BY id",
            params,
        )
        return [SuggestionRow(*r) for r in rows]

    def reject_suggestion(self, suggestion_id: int, *, author: str) -> None:
        """Mark a pending suggestion rejected without labelling its segment."""
        _check_source("person", author)
        with self.transaction():
            cur = self._conn.execute(
                "UPDATE suggestions SET status = 'rejected', resolved_at = ?, resolved_by = ? "
                "WHERE id = ? AND status = 'pending'",
                (_now(), author, int(suggestion_id)),
            )
            if cur.rowcount == 0:
                raise StoreError(f"{self.path}: no pending suggestion with id {suggestion_id}")

    def suggestion_agreement(self, model: str | None = None) -> dict[str, Any]:
        """How often a person's label agreed with the suggestion: {'confirmed', 'rejected', 'rate'}."""
        sql = "SELECT status, COUNT(*) FROM suggestions WHERE status != 'pending'"
        params: list[Any] = []
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        counts = dict(self._read(sql + " GROUP BY status", params))
        confirmed, rejected = int(counts.get("confirmed", 0)), int(counts.get("rejected", 0))
        total = confirmed + rejected
        return {"confirmed": confirmed, "rejected": rejected, "rate": confirmed / total if total else None}

    # -- concept renames and merges ----------------------------------------------------------------------

    def rename_concept(self, old: str, new: str, *, author: str = "workbench") -> int:
        """Carry every label (history included) and suggestion of ``old`` to ``new``; returns labels moved."""
        return self._relabel("rename", [old], new, author)

    def merge_concepts(self, sources: Sequence[str], into: str, *, author: str = "workbench") -> int:
        """Carry the labels of every concept in ``sources`` to ``into`` (which may be one of them)."""
        if isinstance(sources, str):
            raise StoreError("merge_concepts: sources must be a list of concept ids, not one string")
        return self._relabel("merge", list(sources), into, author)

    def _relabel(self, op: str, sources: list[str], target: str, author: str) -> int:
        for c in [*sources, target]:
            _check_concept(c)
            if c == NONE:
                raise StoreError(f"cannot {op} the reserved concept {NONE!r}")
        moving = [s for s in dict.fromkeys(sources) if s != target]
        with self.transaction():
            cur = self._conn.execute(
                "INSERT INTO concept_events (op, sources, target, author, created_at) VALUES (?, ?, ?, ?, ?)",
                (op, json.dumps(sources), target, author, _now()),
            )
            event = cur.lastrowid
            if not moving:
                return 0
            marks = ",".join("?" * len(moving))
            self._conn.execute(
                "INSERT INTO concept_event_labels (event_id, label_id, old_concept) "
                f"SELECT ?, id, concept FROM labels WHERE concept IN ({marks})",
                [event, *moving],
            )
            n = self._conn.execute(f"UPDATE labels SET concept = ? WHERE concept IN ({marks})", [target, *moving])
            self._conn.execute(f"UPDATE suggestions SET concept = ? WHERE concept IN ({marks})", [target, *moving])
            return int(n.rowcount)

    def revert_concept_event(self, event_id: int, *, author: str = "workbench") -> int:
        """Put back the concepts a rename/merge changed (rows since relabelled again are left alone).

        This is what undoing a merge needs: each label returns to the concept it had before.
        """
        with self.transaction():
            row = self._conn.execute(
                "SELECT op, target FROM concept_events WHERE id = ?", (int(event_id),)
            ).fetchone()
            if row is None:
                raise StoreError(f"{self.path}: no concept event with id {event_id}")
            op, target = row
            if op == "revert":
                raise StoreError(f"concept event {event_id} is itself a revert; revert the original instead")
            cur = self._conn.execute(
                "INSERT INTO concept_events (op, sources, target, author, created_at) VALUES ('revert', ?, ?, ?, ?)",
                (json.dumps([str(event_id)]), target, author, _now()),
            )
            new_event = cur.lastrowid
            self._conn.execute(
                "INSERT INTO concept_event_labels (event_id, label_id, old_concept) "
                "SELECT ?, l.id, l.concept FROM labels l JOIN concept_event_labels e ON e.label_id = l.id "
                "WHERE e.event_id = ? AND l.concept = ?",
                (new_event, int(event_id), target),
            )
            n = self._conn.execute(
                "UPDATE labels SET concept = (SELECT old_concept FROM concept_event_labels e "
                "WHERE e.event_id = ? AND e.label_id = labels.id) "
                "WHERE concept = ? AND id IN (SELECT label_id FROM concept_event_labels WHERE event_id = ?)",
                (int(event_id), target, int(event_id)),
            )
            return int(n.rowcount)

    def concept_events(self) -> list[ConceptEvent]:
        rows = self._read(
            "SELECT e.id, e.op, e.sources, e.target, e.author, e.created_at, "
            "(SELECT COUNT(*) FROM concept_event_labels x WHERE x.event_id = e.id) FROM concept_events e ORDER BY e.id"
        )
        return [ConceptEvent(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4], r[5], int(r[6])) for r in rows]

    # -- export ------------------------------------------------------------------------------------------

    _EXPORT_SQL = (
        "SELECT l.id, l.segment_id, s.image_id, i.path, i.sha256, s.settings_hash, s.x0, s.y0, s.x1, s.y1, s.area, "
        "l.concept, l.source, l.author, l.created_at, l.reverts, l.elapsed_ms, l.via "
        "FROM {table} l JOIN segments s ON s.id = l.segment_id JOIN images i ON i.id = s.image_id{where} "
        "ORDER BY l.segment_id, l.id"
    )
    _EXPORT_COLS = (
        "label_id", "segment_id", "image_id", "image_path", "image_sha256", "settings_hash",
        "x0", "y0", "x1", "y1", "area", "concept", "source", "author", "created_at", "reverts", "elapsed_ms",
        "via",
    )  # fmt: skip

    def _export_rows(self, history: bool) -> list[dict[str, Any]]:
        sql = self._EXPORT_SQL.format(
            table="labels" if history else "current_labels",
            where="" if history else " WHERE l.concept IS NOT NULL",
        )
        return [dict(zip(self._EXPORT_COLS, r)) for r in self._read(sql)]

    def export_csv(self, path: str | os.PathLike[str], *, history: bool = False) -> int:
        """Write the segment labels (current ones, or every row with ``history=True``) as CSV, atomically.

        Returns the number of rows written.
        """
        rows = self._export_rows(history)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self._EXPORT_COLS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, buf.getvalue())
        return len(rows)

    def export_json(self, path: str | os.PathLike[str], *, history: bool = False) -> int:
        """Write segment labels, image labels and concept events as one JSON document, atomically."""
        rows = self._export_rows(history)
        image_rows = self._read(
            "SELECT il.id, il.image_id, i.path, il.class_label, il.source, il.author, il.created_at "
            "FROM image_labels il JOIN images i ON i.id = il.image_id"
            + ("" if history else " WHERE il.id IN (SELECT MAX(id) FROM image_labels GROUP BY image_id)")
            + " ORDER BY il.image_id, il.id"
        )
        image_cols = ("label_id", "image_id", "image_path", "class_label", "source", "author", "created_at")
        doc = {
            "format": "workbench-labels",
            "schema_version": SCHEMA_VERSION,
            "history": history,
            "segment_labels": rows,
            "image_labels": [dict(zip(image_cols, r)) for r in image_rows],
            "concept_events": [
                {"id": e.id, "op": e.op, "sources": list(e.sources), "target": e.target, "author": e.author,
                 "created_at": e.created_at, "labels_changed": e.labels_changed}
                for e in self.concept_events()
            ],  # fmt: skip
        }
        atomic_write_text(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        return len(rows)


# -- private helpers ---------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _split_sql(script: str) -> list[str]:
    """Split the schema into statements (it has no semicolons inside strings or triggers)."""
    lines = [ln.split("--", 1)[0] for ln in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _check_concept(concept: object) -> None:
    if not isinstance(concept, str) or not _CONCEPT_RE.fullmatch(concept):
        raise StoreError(
            f"label concept must be a concept id (lowercase slug like 'petal') or {NONE!r}, got {concept!r}"
        )


def _check_source(source: object, author: object) -> None:
    if source not in SOURCES:
        raise StoreError(f"label source must be one of {', '.join(SOURCES)}; got {source!r}")
    if not isinstance(author, str) or not author.strip():
        raise StoreError(
            "every label needs an author: a person's name, the LLM's model id, or the mask file "
            f"(e.g. 'masks:parts.json'); got {author!r}"
        )


#: The longest ``via`` a label may carry (a short text naming a ranker or a model, never a document).
MAX_VIA = 200


def _check_via(via: object) -> None:
    if via is None:
        return
    if not isinstance(via, str) or not via.strip() or len(via) > MAX_VIA or any(ord(ch) < 32 for ch in via):
        raise StoreError(f"a label's via must be a short one-line text (at most {MAX_VIA} characters) naming how "
                         f"it was made, e.g. 'grid: petal model'; got {via!r}")


def _segment_filter(image_id: int | None, settings_hash: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if image_id is not None:
        clauses.append("s.image_id = ?")
        params.append(int(image_id))
    if settings_hash is not None:
        clauses.append("s.settings_hash = ?")
        params.append(settings_hash)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _segment_row(r: Sequence[Any]) -> SegmentRow:
    sid, image_id, settings_hash, x0, y0, x1, y1, area, h, w, blob = r
    return SegmentRow(int(sid), int(image_id), settings_hash, (x0, y0, x1, y1), int(area), (h, w), bytes(blob))


def _encode_segment(image_id: int, index: int, seg: Any) -> tuple:
    where = f"image {image_id}, segment {index}"
    if isinstance(seg, Segment):  # compact: box, area, shape and the packed mask inside the box, as stored
        x0, y0, x1, y1 = seg.bbox
        h, w = seg.shape
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise StoreError(f"{where}: bbox {(x0, y0, x1, y1)} is empty or outside the {w}x{h} image")
        if isinstance(seg.area, bool) or seg.area < 0:
            raise StoreError(f"{where}: area must be a non-negative integer, got {seg.area!r}")
        return (x0, y0, x1, y1, int(seg.area), h, w, zlib.compress(seg.bits.tobytes(), 6))
    try:
        bbox, area, mask = seg.bbox, seg.area, seg.mask
    except AttributeError as e:
        raise StoreError(f"{where}: a segment needs .bbox, .area and .mask ({e})") from None
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != bool:
        raise StoreError(f"{where}: mask must be a 2-D bool array (H x W), got {mask.dtype} {mask.shape}")
    try:
        x0, y0, x1, y1 = (int(v) for v in bbox)
    except (TypeError, ValueError):
        raise StoreError(f"{where}: bbox must be (x0, y0, x1, y1), got {bbox!r}") from None
    h, w = mask.shape
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise StoreError(f"{where}: bbox {(x0, y0, x1, y1)} is empty or outside the {w}x{h} mask")
    crop = mask[y0:y1, x0:x1]
    inside = int(crop.sum())
    if inside != int(mask.sum()):
        raise StoreError(f"{where}: mask has pixels outside its bbox {(x0, y0, x1, y1)}")
    if isinstance(area, bool) or not isinstance(area, (int, np.integer)) or area < 0:
        raise StoreError(f"{where}: area must be a non-negative integer, got {area!r}")
    blob = zlib.compress(np.packbits(crop, axis=None).tobytes(), 6)
    return (x0, y0, x1, y1, int(area), h, w, blob)


def _unpack_mask(blob: bytes, h: int, w: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(zlib.decompress(blob), dtype=np.uint8), count=h * w)
    return bits.reshape(h, w).astype(bool)
