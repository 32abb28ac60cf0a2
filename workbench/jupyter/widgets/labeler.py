"""The segment labeler: keyboard-first, every label in the store on the keypress, nothing lost.

One image with the current segment outlined, its crop, and a strip of the upcoming segments
(rendered in Python ahead of time, so the next one is there when the key is pressed). One key per
part concept (``1``-``9``, then letters), ``n`` none, ``s`` skip, ``u``/Backspace undo (several
steps), ``[`` / ``]`` previous / next image, Enter accepts an LLM suggestion.

The widget is a view: labels, suggestions and proposals live in the workspace (its store and
``proposals/``); what the widget keeps is where it is (the current segment, the upcoming ones, the
session's undo stack) and the pictures it prefetched. Every action goes through a Python method
(:meth:`Labeler.press`, :meth:`Labeler.label`, ...) that the browser calls with a custom message, so
tests drive exactly what a person's keypress does. An exception in an action is shown in the
widget's ``error`` area (and logged), never only in the log console.

Filters (combine ``image_class`` with any of the others):

- ``unlabelled=True`` (default): segments without a current label, in store order; resumes after the
  last segment this author labelled.
- ``concept="petal"``: segments currently labelled ``petal`` (to check or correct them).
- ``image_class="daisy"``: only segments of images of that class.
- ``suggested=True``: segments with a pending LLM suggestion; Enter accepts it.
- ``least_certain=True``: unlabelled segments the current part models score nearest 0.5 first
  (active learning); needs trained models (the widget says so when there are none).
"""
from __future__ import annotations

import html
import logging
import os
import time
import traceback
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from workbench.data.store import NONE
from workbench.errors import ImageLoadError, WorkbenchError
from workbench.jupyter.widgets._live import LiveDisplay
from workbench.jupyter.widgets._render import (
    ImageCache,
    context_view,
    crop_view,
    image_file,
    jpeg_data_url,
    png_data_url,
    with_fallback,
)
from workbench.models.inference import least_certain_order
from workbench.review.proposals import Evidence, make_proposal
from workbench.review.store import ProposalStore

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = ["Labeler", "concept_keys", "ACTION_KEYS", "default_author"]

log = logging.getLogger(__name__)
_STATIC = Path(__file__).parent / "_static"

#: Keys of the actions that are not a concept (a concept never gets one of these letters).
ACTION_KEYS: dict[str, str] = {
    "n": "none",
    "s": "skip",
    "u": "undo",
    "Backspace": "undo",
    "[": "prev_image",
    "]": "next_image",
    "Enter": "accept",
}
_CONCEPT_KEY_ORDER = [*"123456789", *"abcdefghijklmopqrtvwxyz"]  # n, s, u are actions


def default_author() -> str:
    """Who labels: ``WORKBENCH_AUTHOR``, else the login name (``USER`` / ``USERNAME``), else "person"."""
    for var in ("WORKBENCH_AUTHOR", "USER", "USERNAME"):
        v = os.environ.get(var, "").strip()
        if v:
            return v
    return "person"


def concept_keys(concepts: list[str], keep: dict[str, str] | None = None) -> dict[str, str]:
    """Key -> concept id for the labelable concepts, digits first, then letters (not n, s, u).

    ``keep`` (concept -> key) holds keys already dealt: a concept keeps its key when others are added
    or removed, so a person's fingers are not betrayed mid-session.

    >>> concept_keys(["disk", "leaf"])
    {'1': 'disk', '2': 'leaf'}
    >>> concept_keys(["bud", "disk", "leaf"], keep={"disk": "1", "leaf": "2"})
    {'1': 'disk', '2': 'leaf', '3': 'bud'}
    """
    if len(concepts) > len(_CONCEPT_KEY_ORDER):
        raise WorkbenchError(
            f"{len(concepts)} part concepts but only {len(_CONCEPT_KEY_ORDER)} keys: label with "
            "Labeler.label(concept) or the buttons for the rest"
        )
    keep = {c: k for c, k in (keep or {}).items() if c in concepts and k in _CONCEPT_KEY_ORDER}
    out = {k: c for c, k in keep.items()}
    free = [k for k in _CONCEPT_KEY_ORDER if k not in out]
    for c in concepts:
        if c not in keep:
            out[free.pop(0)] = c
    return dict(sorted(out.items(), key=lambda kv: _CONCEPT_KEY_ORDER.index(kv[0])))


class Labeler(LiveDisplay, anywidget.AnyWidget):
    """Label a workspace's segments with the keyboard. Make one with ``workbench.open(ws).label()``."""

    _esm = _STATIC / "labeler.js"
    _css = _STATIC / "labeler.css"

    # --- what the browser shows (views of the store, recomputed; never the source of truth)
    current = traitlets.Dict().tag(sync=True)  # the segment being labelled (pictures + facts), {} when done
    upcoming = traitlets.List().tag(sync=True)  # [{segment_id, thumb}] next in line, prefetched
    bindings = traitlets.List().tag(sync=True)  # [{key, action, concept, label}] one per button (`keys` is taken by ipywidgets)
    progress = traitlets.Dict().tag(sync=True)  # {labelled, total, counts: {concept: n}}
    filter_text = traitlets.Unicode("").tag(sync=True)  # the active filter, in words
    filter_value = traitlets.Unicode("unlabelled").tag(sync=True)  # the filter menu's entry for it
    filter_options = traitlets.List().tag(sync=True)  # [{value, text}] for the filter menu
    composites = traitlets.List().tag(sync=True)  # [{id, label}] possible parents of a new concept
    error = traitlets.Unicode("").tag(sync=True)  # the last action's error (shown in red)
    notice = traitlets.Unicode("").tag(sync=True)  # a lasting remark about the filter (e.g. no models)
    message = traitlets.Unicode("").tag(sync=True)  # what the last action did
    skipped = traitlets.List().tag(sync=True)  # [{image, reason}] images that cannot be shown (skipped)
    empty = traitlets.Unicode("").tag(sync=True)  # why nothing is shown (the filter has nothing left), else ""

    def __init__(
        self,
        workspace: Workspace,
        *,
        unlabelled: bool | None = None,
        concept: str | None = None,
        image_class: str | None = None,
        suggested: bool = False,
        least_certain: bool = False,
        author: str | None = None,
        settings_hash: str | None = None,
        prefetch: int = 6,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.workspace = workspace
        self.store = workspace.store
        self.author = (author or default_author()).strip() or "person"
        self.settings_hash = settings_hash
        self.prefetch = max(1, int(prefetch))
        self._images = ImageCache(size=8)
        self._views: OrderedDict[int, dict[str, Any]] = OrderedDict()  # prefetched pictures by segment id
        self._bad_images: dict[int, str] = {}  # image id -> why it cannot be shown (skipped)
        self._image_paths: dict[int, Path] = {}  # image id -> file (for background prefetch)
        self._undo: list[int] = []  # segment ids labelled in this session, latest last
        self._shown_at = time.perf_counter()
        self._filters: dict[str, Any] = {}
        self._order: list[int] | None = None  # explicit order (concept / suggested / least certain)
        self._pos: dict[int, int] = {}
        self._allowed: set[int] | None = None  # segment ids allowed by image_class
        self._seg_image: dict[int, int] = {}
        self._image_segments: dict[int, list[int]] = {}
        self._image_list: list[int] = []
        self._cur: int | None = None
        self._next: list[int] = []
        self.on_msg(self._on_msg)
        self._guard(
            self.set_filters,
            unlabelled=unlabelled, concept=concept, image_class=image_class,
            suggested=suggested, least_certain=least_certain, resume=True,
        )

    # ------------------------------------------------------------------------------ public actions
    @property
    def segment_id(self) -> int | None:
        """The segment being labelled (None when this filter has nothing left)."""
        return self._cur

    @property
    def upcoming_ids(self) -> list[int]:
        return list(self._next)

    def press(self, key: str) -> None:
        """What a keypress does: a concept key labels, the action keys act, other keys do nothing."""
        self._sync_ontology()
        by_key = {k["key"]: k for k in self.bindings}
        entry = by_key.get(key)
        if entry is None:
            return
        action = entry["action"]
        if action == "label":
            self.label(entry["concept"])
        elif action == "none":
            self.label(NONE)
        else:
            getattr(self, action)()

    def label(self, concept: str) -> None:
        """Label the current segment ``concept`` (or ``"none"``), store it, show the next one."""
        sid = self._cur
        if sid is None:
            self.message = "Nothing to label with this filter."
            return
        known = set(self.workspace.ontology.leaves()) | {NONE}
        if concept not in known:
            raise WorkbenchError(
                f"{concept!r} is not a part concept of the ontology ({', '.join(sorted(known))}); "
                "to add one, use “New concept” (it becomes a proposal to review)"
            )
        elapsed = int(min(3_600_000, (time.perf_counter() - self._shown_at) * 1000))
        old = self.store.label(sid)
        self.store.set_label(sid, concept, source="person", author=self.author, elapsed_ms=elapsed)
        self._undo.append(sid)
        self._count(old.concept if old else None, concept)
        self.message = f"segment {sid}: {concept}"
        self._advance_from(sid)

    def accept(self) -> None:
        """Enter: accept the current segment's pending LLM suggestion (labelled by you, source person)."""
        if self._cur is None:
            self.message = "Nothing to accept with this filter."
            return
        pending = self.store.suggestions(pending_only=True, segment_id=self._cur)
        if not pending:
            self.message = f"segment {self._cur} has no pending suggestion to accept; press a concept key"
            return
        self.label(pending[-1].concept)

    def skip(self) -> None:
        """Leave the current segment as it is and go to the next one."""
        if self._cur is None:
            return
        self.message = f"skipped segment {self._cur}"
        self._advance_from(self._cur)

    def undo(self) -> None:
        """Undo this session's last label (repeat to go further back) and show that segment again."""
        if not self._undo:
            self.message = "Nothing to undo in this session."
            return
        sid = self._undo.pop()
        row = self.store.undo(sid, author=self.author)
        self._refresh_progress()
        self.message = f"undid segment {sid}: now {row.concept if row and row.concept else 'unlabelled'}"
        self._show(sid)

    def goto(self, segment_id: int) -> None:
        """Show segment ``segment_id`` now (a click on a thumbnail of the strip)."""
        sid = int(segment_id)
        if sid not in self._seg_image:
            raise WorkbenchError(f"no segment {sid} here (filter: {self.filter_text})")
        self._show(sid)

    def sync(self) -> None:
        """Catch up with what changed in the store since this widget last looked (labels made in other
        cells, by other people, from masks): the counts, and the current segment when it no longer
        belongs to the filter. Cheap; the browser asks for it when the widget gets the focus."""
        self._sync_ontology()
        self._refresh_progress()
        if self._cur is not None and not self._wanted(self._cur):
            self._advance_from(self._cur)
        elif self._cur is None:
            first = self._candidates(after=None, n=1, inclusive=True)
            if first:
                self._show(first[0])

    def refresh(self) -> None:
        """Re-read everything (segments, the filter's order, keys, counts) and stay on the current segment
        when it still belongs to the filter: what ``wb.apply`` and ``wb.train`` run on shown labelers."""
        cur = self._cur
        self._ontology_seen = self.workspace.ontology
        self._index_segments()
        self._build_order()
        self._set_static()
        self._refresh_progress()
        self._views.clear()
        if cur is not None and cur in self._seg_image and self._wanted(cur):
            self._show(cur)
        else:
            found = self._candidates(after=cur, n=1) if cur is not None else []
            found = found or self._candidates(after=None, n=1, inclusive=True)
            self._show(found[0] if found else None)
        self.update_displays()

    def next_image(self) -> None:
        self._jump_image(+1)

    def prev_image(self) -> None:
        self._jump_image(-1)

    def create_concept(
        self,
        id: str,
        label: str,
        description: str = "",
        parents: list[str] | tuple[str, ...] | str | None = None,
        rationale: str = "",
    ) -> Any:
        """Propose a new concept (an ``add_concept`` edit, kind "person"), saved to ``proposals/`` for review.

        The current segment and its image are the evidence. Returns the saved proposal; nothing in the
        ontology changes until the proposal is accepted (``wb.review(...)``).
        """
        o = self.workspace.ontology
        if isinstance(parents, str):
            parents = [parents]
        parents = list(parents or [o.root])
        op = {"op": "add_concept", "id": str(id).strip(), "label": str(label).strip(), "parents": parents}
        if description.strip():
            op["description"] = description.strip()
        evidence = Evidence()
        if self._cur is not None:
            seg = self.store.segment(self._cur)
            im = self.store.image(seg.image_id)
            evidence = Evidence(image=im.path, image_sha256=im.sha256, segments=(self._cur,))
        why = rationale.strip()
        if not why and self._cur is not None:
            why = f"Seen while labelling segment {self._cur}"
        proposal = make_proposal(
            o, [{"op": op, "rationale": why}], kind="person", author=f"person:{self.author}",
            title=f"Add concept {op['id']}", rationale=why, evidence=evidence,
        )
        bad = [e.problem for e in proposal.edits if e.problem]
        if bad:
            raise WorkbenchError(f"new concept {op['id']!r} cannot be proposed: {'; '.join(bad)}")
        saved = ProposalStore(self.workspace).save(proposal)
        lint = [w for e in saved.edits for w in e.lint]
        self.message = (
            f"proposal {saved.id} saved (add concept {op['id']}): review it with wb.review({saved.id!r})"
            + (f"; lint: {'; '.join(lint)}" if lint else "")
        )
        return saved

    def set_filters(
        self,
        *,
        unlabelled: bool | None = None,
        concept: str | None = None,
        image_class: str | None = None,
        suggested: bool = False,
        least_certain: bool = False,
        resume: bool = False,
    ) -> None:
        """Change what is shown (see the module docstring) and go to the first segment it selects."""
        if concept is not None and concept not in set(self.workspace.ontology.concepts) | {NONE}:
            raise WorkbenchError(f"filter concept={concept!r}: no such concept in the ontology")
        if sum(bool(x) for x in (concept is not None, suggested, least_certain)) > 1:
            raise WorkbenchError("choose one of concept=, suggested=True, least_certain=True (image_class= combines)")
        if unlabelled is None:
            unlabelled = concept is None
        self._ontology_seen = self.workspace.ontology
        self._filters = {"unlabelled": bool(unlabelled), "concept": concept, "image_class": image_class,
                         "suggested": bool(suggested), "least_certain": bool(least_certain)}
        self.notice = ""
        self.message = ""
        self._index_segments()
        self._build_order()
        self._set_static()
        self._refresh_progress()
        if not self._seg_image:
            self.notice = (f"No segments in this workspace's store yet: segment the images first, e.g. "
                           f"`workbench segment --workspace {self.workspace.path} --dataset DIR`")
        self._views.clear()
        start: int | None = None
        if resume:
            last = self.store.last_label(source="person", author=self.author)
            start = last.segment_id if last is not None else None
        if start is not None and self._order is None:
            first = self._candidates(after=start, n=1)
        else:
            first = self._candidates(after=None, n=1, inclusive=True)
        self._show(first[0] if first else None)

    # ------------------------------------------------------------------------------ messages
    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "key":
            with self.hold_sync():  # one message to the browser per key (the next segment, counts, message)
                self._guard(self.press, str(content.get("key", "")))
        elif kind == "action" and content.get("action") in {"skip", "undo", "next_image", "prev_image", "accept"}:
            self._guard(getattr(self, content["action"]))
        elif kind == "label":
            self._guard(self.label, str(content.get("concept", "")))
        elif kind == "goto":
            self._guard(self.goto, content.get("segment_id"))
        elif kind == "filter":
            self._guard(self._apply_filter_value, str(content.get("value", "")))
        elif kind == "create_concept":
            self._guard(
                self.create_concept,
                str(content.get("id", "")), str(content.get("label", "")), str(content.get("description", "")),
                content.get("parents") or None, str(content.get("rationale", "")),
            )
        elif kind == "dismiss":
            self.error = ""
        elif kind == "sync":
            self._guard(self.sync)

    def _guard(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an action; an exception becomes the widget's ``error`` (and a log record), never a crash."""
        self.error = ""
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - shown to the person, who can act on it
            log.warning("labeler: %s", "".join(traceback.format_exception_only(type(e), e)).strip())
            self.error = f"{type(e).__name__}: {e}" if not isinstance(e, WorkbenchError) else str(e)
            return None

    def _apply_filter_value(self, value: str) -> None:
        kind, _, arg = value.partition(":")
        cls = self._filters.get("image_class")
        if kind == "unlabelled":
            self.set_filters(image_class=cls)
        elif kind == "suggested":
            self.set_filters(suggested=True, image_class=cls)
        elif kind == "least_certain":
            self.set_filters(least_certain=True, image_class=cls)
        elif kind == "concept":
            self.set_filters(concept=arg, image_class=cls)
        elif kind == "class":
            f = {k: v for k, v in self._filters.items() if k != "image_class"}
            self.set_filters(**f, image_class=arg or None)
        else:
            raise WorkbenchError(f"unknown filter {value!r}")

    # ------------------------------------------------------------------------------ ordering
    def _index_segments(self) -> None:
        rows = self.store.segments(settings_hash=self.settings_hash)
        self._seg_image = {s.id: s.image_id for s in rows}
        self._image_segments = {}
        for s in rows:
            self._image_segments.setdefault(s.image_id, []).append(s.id)
        self._image_list = list(self._image_segments)
        cls = self._filters.get("image_class")
        if cls is None:
            self._allowed = None
        else:
            ids = {im.id for im in self.store.images(class_label=cls)}
            self._allowed = {s for s, i in self._seg_image.items() if i in ids}
            if not self._allowed:
                self.notice = f"no segments on images of class {cls!r}"

    def _build_order(self) -> None:
        f = self._filters
        self._order = None
        if f["concept"] is not None:
            self._order = [r.segment_id for r in self.store.labels(concept=f["concept"])]
        elif f["suggested"]:
            self._order = list(dict.fromkeys(s.segment_id for s in self.store.suggestions(pending_only=True)))
        elif f["least_certain"]:
            self._order = self._least_certain_order()
        if self._order is not None:
            self._order = [s for s in self._order if s in self._seg_image and self._ok(s)]
            self._pos = {s: i for i, s in enumerate(self._order)}

    def _least_certain_order(self) -> list[int] | None:
        """Unlabelled segments by how close the most doubtful part model scores them to 0.5
        (:func:`workbench.models.inference.least_certain_order`); its notice is shown."""
        order, self.notice = least_certain_order(self.workspace, self.settings_hash)
        return order

    def _ok(self, sid: int) -> bool:
        if self._allowed is not None and sid not in self._allowed:
            return False
        return self._seg_image.get(sid) not in self._bad_images

    def _wanted(self, sid: int) -> bool:
        """Does ``sid`` (still) belong to the filter? Checked when it comes up, so others' labels count."""
        if not self._ok(sid):
            return False
        f = self._filters
        if f["suggested"]:
            return bool(self.store.suggestions(pending_only=True, segment_id=sid))
        if f["unlabelled"]:
            return self.store.label(sid) is None
        return True

    def _candidates(self, after: int | None, n: int, inclusive: bool = False) -> list[int]:
        """Up to ``n`` segments the filter selects after ``after`` (wrapping around once)."""
        out: list[int] = []
        if self._order is not None:
            if not self._order:
                return out
            start = 0 if after is None else self._pos.get(after, -1) + (0 if inclusive else 1)
            m = len(self._order)
            for k in range(m):
                s = self._order[(start + k) % m]
                if s == after and not inclusive:
                    continue
                if s not in out and self._wanted(s):
                    out.append(s)
                    if len(out) >= n:
                        break
            return out
        # unlabelled in store order: let SQLite find them (fast with 10,000s of segments)
        chunk = max(32, 4 * n)
        for wrap_pass in (0, 1):
            cursor = after if wrap_pass == 0 else None
            if after is None and wrap_pass == 1:
                break
            while len(out) < n:
                rows = self.store.unlabeled(settings_hash=self.settings_hash, after=cursor, limit=chunk)
                for r in rows:
                    if wrap_pass == 1 and after is not None and r.id >= after:
                        return out
                    if r.id != after and r.id not in out and self._ok(r.id):
                        out.append(r.id)
                        if len(out) >= n:
                            return out
                if len(rows) < chunk:
                    break
                cursor = rows[-1].id
        return out

    # ------------------------------------------------------------------------------ showing
    def _advance_from(self, sid: int) -> None:
        nxt = [s for s in self._next if s != sid and self._wanted(s)]
        if nxt:
            self._show(nxt[0])
        else:
            found = self._candidates(after=sid, n=1)
            self._show(found[0] if found else None)

    def _jump_image(self, step: int) -> None:
        if not self._image_list:
            return
        cur_img = self._seg_image.get(self._cur) if self._cur is not None else None
        idx = self._image_list.index(cur_img) if cur_img in self._image_list else (-1 if step > 0 else 0)
        for k in range(1, len(self._image_list) + 1):
            img = self._image_list[(idx + step * k) % len(self._image_list)]
            segs = [s for s in self._image_segments[img] if self._ok(s)]
            if not segs:
                continue
            wanted = [s for s in segs if self._wanted(s)]
            self._show((wanted or segs)[0])
            self.message = f"image {self.store.image(img).path}"
            return
        self.message = "no other image with segments for this filter"

    def _show(self, sid: int | None) -> None:
        """Make ``sid`` current: its pictures (prefetched), the next ones, and the strip."""
        for _ in range(len(self._image_list) + 1):
            if sid is None:
                break
            view = self._view(sid)
            if view is not None:
                break
            later = self._candidates(after=sid, n=1)  # its image failed: skip it (error already shown)
            sid = later[0] if later and later[0] != sid else None
        self._cur = sid
        self._shown_at = time.perf_counter()
        if sid is None:
            self._next = []
            self.upcoming = []
            self.current = {}
            self.empty = self._empty_text()
            return
        self.empty = ""
        current = dict(self._view(sid) or {})
        current["label"] = (lambda r: r.concept if r else None)(self.store.label(sid))
        sugg = self.store.suggestions(pending_only=True, segment_id=sid)
        current["suggestion"] = {"concept": sugg[-1].concept, "model": sugg[-1].model} if sugg else None
        nxt: list[int] = []
        strip: list[dict[str, Any]] = []
        for s in self._candidates(after=sid, n=self.prefetch):
            v = self._view(s)
            if v is not None:
                nxt.append(s)
                strip.append({"segment_id": s, "thumb": v["thumb"], "image": v["image"]})
        self._next = nxt
        keep = {sid, *nxt, *self._undo[-self.prefetch:]}
        for s in [s for s in self._views if s not in keep][: max(0, len(self._views) - 4 * self.prefetch)]:
            self._views.pop(s, None)
        self.upcoming = strip
        self.current = current
        self._prefetch_images((nxt or [sid])[-1])

    def _prefetch_images(self, after: int) -> None:
        """Start decoding the images of the segments after the strip, so they are ready in time."""
        seen: set[int] = set()
        for s in self._candidates(after=after, n=self.prefetch):
            img = self._seg_image.get(s)
            if img is None or img in seen or img in self._bad_images:
                continue
            seen.add(img)
            if img not in self._image_paths:
                self._image_paths[img] = image_file(self.workspace, self.store.image(img).path)
            self._images.prefetch(self._image_paths[img])

    def _view(self, sid: int) -> dict[str, Any] | None:
        """The pictures and facts of one segment, rendered once and kept (None: its image is unreadable)."""
        if sid in self._views:
            self._views.move_to_end(sid)
            return self._views[sid]
        seg = self.store.segment(sid)
        if seg.image_id in self._bad_images:
            return None
        im = self.store.image(seg.image_id)
        path = image_file(self.workspace, im.path)
        try:
            pixels = self._images.get(path)
            if pixels.shape[:2] != tuple(seg.shape):
                raise ImageLoadError(path, f"is {pixels.shape[1]}x{pixels.shape[0]} but its segments were made on a "
                                           f"{seg.shape[1]}x{seg.shape[0]} image (the file changed)")
            view = {
                "segment_id": sid,
                "image_id": im.id,
                "image": im.path,
                "image_class": im.class_label,
                "bbox": list(seg.bbox),
                "area": seg.area,
                "context": jpeg_data_url(context_view(pixels, seg, 384, self._images.scaled(path, 384))),
                "crop": jpeg_data_url(crop_view(pixels, seg, 192)),
                "thumb": png_data_url(crop_view(pixels, seg, 64, outline=True)),
            }
        except ImageLoadError as e:
            self._bad_images[seg.image_id] = e.reason
            self.skipped = [*self.skipped, {"image": im.path, "reason": e.reason}]
            msg = f"image {im.path} ({path}): {e.reason}; its segments are skipped"
            self.error = (self.error + "\n" if self.error else "") + msg
            log.warning("labeler: %s", msg)
            return None
        self._views[sid] = view
        return view

    def _empty_text(self) -> str:
        """Why this filter shows nothing, and what to do next (one sentence for the person)."""
        f = self._filters
        cls = f" on images of class {f['image_class']}" if f.get("image_class") else ""
        if not self._seg_image:
            return "No segments in this workspace yet: segment the images first."
        if f.get("concept") is not None:
            return (f"No segment{cls} is labelled {f['concept']} yet. Pick another filter above, or label some "
                    f"segments {f['concept']} first.")
        if f.get("suggested"):
            return f"No LLM suggestion{cls} awaits confirmation. Pick another filter above."
        done, total = self.store.progress(self.settings_hash)
        if f.get("least_certain") and self._order is None:
            return "No trained models yet, so nothing to rank: train first (wb.train()), or pick “unlabelled”."
        return (f"Nothing left to label{cls}: every segment has a label ({done} / {total}). Pick “labelled …” "
                "above to check or correct labels, or add and segment more images.")

    # ------------------------------------------------------------------------------ static parts
    def _set_static(self) -> None:
        o = self.workspace.ontology
        leaves = o.leaves()
        km = concept_keys(leaves, keep={b["concept"]: b["key"] for b in self.bindings if b["action"] == "label"})
        keys = [{"key": k, "action": "label", "concept": c, "label": o.concepts[c].label} for k, c in km.items()]
        keys += [
            {"key": "n", "action": "none", "concept": NONE, "label": "none of these"},
            {"key": "s", "action": "skip", "concept": None, "label": "skip"},
            {"key": "u", "action": "undo", "concept": None, "label": "undo"},
            {"key": "Backspace", "action": "undo", "concept": None, "label": "undo", "hidden": True},
            {"key": "[", "action": "prev_image", "concept": None, "label": "previous image"},
            {"key": "]", "action": "next_image", "concept": None, "label": "next image"},
            {"key": "Enter", "action": "accept", "concept": None, "label": "accept suggestion"},
        ]
        self.bindings = keys
        self.composites = [{"id": c, "label": o.concepts[c].label} for c in o.bottom_up()[::-1] if o.parts(c)]
        opts = [{"value": "unlabelled", "text": "unlabelled"},
                {"value": "suggested", "text": "LLM-suggested, awaiting confirmation"},
                {"value": "least_certain", "text": "least certain (active learning)"}]
        opts += [{"value": f"concept:{c}", "text": f"labelled {c}"} for c in [*leaves, NONE]]
        classes = sorted({im.class_label for im in self.store.images() if im.class_label})
        opts += [{"value": "class:", "text": "any image class"}]
        opts += [{"value": f"class:{c}", "text": f"images of class {c}"} for c in classes]
        self.filter_options = opts
        f = self._filters
        what = ("labelled " + f["concept"] if f["concept"] is not None else "LLM-suggested" if f["suggested"]
                else "least certain" if f["least_certain"] else "unlabelled" if f["unlabelled"] else "all")
        self.filter_text = what + (f" · class {f['image_class']}" if f["image_class"] else "")
        value = (f"concept:{f['concept']}" if f["concept"] is not None else "suggested" if f["suggested"]
                 else "least_certain" if f["least_certain"] else "unlabelled")
        self.filter_value = f"class:{f['image_class']}" if f["image_class"] and value == "unlabelled" else value

    def _sync_ontology(self) -> None:
        """When ``ontology.yaml`` changed (a proposal was accepted), refresh the keys, menus and counts:
        a concept proposed while labelling gets its key as soon as it is accepted."""
        o = self.workspace.ontology  # the workspace re-reads the file only when it changed on disk
        if o is not getattr(self, "_ontology_seen", None):
            self._ontology_seen = o
            if self.bindings:  # not the first call (set_filters draws them then)
                self._set_static()
                self._refresh_progress()
                self.message = "the ontology changed: keys updated"

    def _refresh_progress(self) -> None:
        done, total = self.store.progress(self.settings_hash)
        self.progress = {"labelled": done, "total": total, "counts": self.store.counts()}

    def _count(self, old: str | None, new: str) -> None:
        """Update the shown counts after one label (a full recount per key would cost ms per 10k labels)."""
        p = dict(self.progress)
        counts = dict(p.get("counts", {}))
        if old is not None:
            counts[old] = max(0, counts.get(old, 0) - 1)
            if not counts[old]:
                del counts[old]
        else:
            p["labelled"] = p.get("labelled", 0) + 1
        counts[new] = counts.get(new, 0) + 1
        p["counts"] = dict(sorted(counts.items()))
        self.progress = p

    def close(self) -> None:
        self._images.close()
        self._closed = True
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_fallback(super()._repr_mimebundle_(**kwargs), "Workbench labeler", self._fallback_body)

    def _fallback_body(self) -> str:
        """The labeler as a still picture: the current segment on its image, the counts, the keys."""
        e = html.escape
        p = self.progress or {}
        cur = self.current or {}
        keys = " · ".join(f"{b['key']} {b['label']}" for b in self.bindings if not b.get("hidden"))
        head = f"<div>{p.get('labelled', 0)} / {p.get('total', 0)} segments labelled · filter: {e(self.filter_text)}</div>"
        if not cur:
            return head + f"<div><i>{e(self.empty)}</i></div>"
        return (head + f"<div style='display:flex;gap:8px;align-items:flex-start'><img src='{cur['context']}' "
                f"width='256' alt='segment {cur['segment_id']}'><div>segment {cur['segment_id']} of {e(cur['image'])}"
                f"<br><small>keys: {e(keys)}</small></div></div>")

    def __repr__(self) -> str:
        return f"Labeler({self.workspace!r}, filter={self.filter_text!r}, segment={self._cur})"
