"""Running pins: does each concept's model still score its pinned segments as a person said it must?

A pin (:mod:`workbench.workspace.pins`) names a segment and a part concept and expects the concept's
model to score it at or above the decision threshold (``must``) or below it (``must_not``). Every
concept model decides at 0.5: a net's probability, and a rule's output, which maps its learned threshold
to 0.5 (:class:`workbench.models.rules.RuleModel`), so the threshold shown is 0.5 for both.

Each pin comes out as one of:

- ``pass`` / ``fail``: the model scored the segment and met / missed the expectation;
- ``stale``: the pinned segment is not in the label store any more (the images were segmented again
  with other settings): neither passed nor failed, and listed, never dropped;
- ``skipped``: it could not be run here, with the reason: the concept is not in the ontology given (a
  proposal renames or removes it), it has parts now, no model for it was given, or its image cannot be
  read.

The API, for ``workbench test``, the notebook and the merge gate::

    run_pins(ws, models, concepts=None, *, ontology=None, crop_size=None) -> PinReport
    compare_pins(before: PinReport, after: PinReport) -> PinComparison

``models`` is any mapping concept → fitted :class:`~workbench.models.contract.ConceptModel`: the saved
models (:func:`saved_models`), or models trained in a temporary folder. So the gate judges a proposal
with the base and the candidate models of the same run::

    before = run_pins(ws, base_models, concepts=retrained, ontology=base_ontology)
    after = run_pins(ws, candidate_models, concepts=retrained, ontology=candidate_ontology)
    change = compare_pins(before, after)
    change.newly_failing      # pins that pass (or were not tested) before and fail after: block the merge
    change.text()             # in plain words, for the verdict and the commit message

``concepts`` limits the run to the pins of those concepts (the gate: the ones the proposal retrains);
``ontology`` is the ontology the models belong to (default: the workspace's): pins of concepts it does not
have are ``skipped``, and :attr:`PinComparison.no_longer_tested` names them. ``crop_size`` is the side of
the crops the models take (default: a model's own ``crop_size``, else the workspace setting), the crops
cut exactly as training cuts them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.data.datasets import load_image
from workbench.errors import ImageLoadError, WorkbenchError
from workbench.models.contract import ConceptModel
from workbench.models.store import ModelStore
from workbench.ontology.graph import Ontology
from workbench.workspace.pins import Pin, match_segments, pins

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = ["THRESHOLD", "STATUSES", "PinResult", "PinReport", "PinComparison", "run_pins", "compare_pins",
           "saved_models"]

#: Every concept model's decision point (rules map their learned threshold onto it).
THRESHOLD = 0.5
#: What can become of a pin when it is run.
STATUSES = ("pass", "fail", "stale", "skipped")


@dataclass(frozen=True)
class PinResult:
    """One pin, run: its status (:data:`STATUSES`), the model's score on the segment (None when not
    scored), the threshold, the store segment it matched (None when stale) and, for stale and skipped
    pins, why."""

    pin: Pin
    status: str
    score: float | None = None
    threshold: float = THRESHOLD
    segment_id: int | None = None
    reason: str = ""

    def line(self) -> str:
        """``FAIL  segment 812 of daisy/0003.png at (12, 40, 31, 58) must be 'petal': scored 0.31 (threshold 0.50)``."""
        p = self.pin
        where = f"segment {self.segment_id} of {p.image}" if self.segment_id is not None else f"segment of {p.image}"
        head = f"{self.status.upper() if self.status == 'fail' else self.status:<7} {where} at {p.box} {p.expectation}"
        if self.score is not None:
            return f"{head}: scored {self.score:.2f} (threshold {self.threshold:.2f})"
        return f"{head}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        p = self.pin
        return {"pin": p.id, "concept": p.concept, "expect": p.expect, "image": p.image, "sha256": p.sha256,
                "box": list(p.box), "segment_id": self.segment_id, "status": self.status,
                "score": None if self.score is None else round(self.score, 4), "threshold": self.threshold,
                "reason": self.reason}


@dataclass(repr=False)
class PinReport:
    """The result of :func:`run_pins`: one :class:`PinResult` per pin, by concept then image. Shown as
    its :meth:`text` (in a notebook too)."""

    results: list[PinResult] = field(default_factory=list)

    def __repr__(self) -> str:
        return self.text()

    def of(self, status: str) -> list[PinResult]:
        return [r for r in self.results if r.status == status]

    @property
    def passed(self) -> list[PinResult]:
        return self.of("pass")

    @property
    def failed(self) -> list[PinResult]:
        return self.of("fail")

    @property
    def stale(self) -> list[PinResult]:
        return self.of("stale")

    @property
    def skipped(self) -> list[PinResult]:
        return self.of("skipped")

    @property
    def ok(self) -> bool:
        """No pin failed (stale and skipped pins neither pass nor fail)."""
        return not self.failed

    def by_concept(self) -> dict[str, list[PinResult]]:
        out: dict[str, list[PinResult]] = {}
        for r in self.results:
            out.setdefault(r.pin.concept, []).append(r)
        return out

    def get(self, pin: Pin) -> PinResult | None:
        """This report's result for ``pin`` (matched by concept and segment), or None."""
        return next((r for r in self.results if r.pin.key == pin.key), None)

    def counts(self) -> dict[str, int]:
        return {s: len(self.of(s)) for s in STATUSES}

    def summary(self) -> str:
        """``12 pins: 10 pass, 1 fails, 1 stale`` (or ``no pins``)."""
        if not self.results:
            return "no pins"
        c = self.counts()
        parts = [f"{c['pass']} pass", f"{c['fail']} fail{'s' if c['fail'] == 1 else ''}"]
        parts += [f"{c[s]} {s}" for s in ("stale", "skipped") if c[s]]
        return f"{len(self.results)} pin{'s' if len(self.results) != 1 else ''}: {', '.join(parts)}"

    def text(self, verbose: bool = True) -> str:
        """Per concept: its counts, then each pin (``verbose``; otherwise only failing, stale and skipped
        ones), then the summary line."""
        if not self.results:
            return "No pins. Pin a segment with `workbench pin add SEGMENT CONCEPT --workspace WS --by NAME` (or the " \
                   "labeler's ! key)."
        lines = []
        for concept, rs in self.by_concept().items():
            sub = PinReport(rs)
            lines.append(f"{concept}: {sub.summary()}")
            lines += [f"  {r.line()}" for r in rs if verbose or r.status != "pass"]
        lines.append(("All pins pass" if self.ok else f"{len(self.failed)} pin{'s' if len(self.failed) != 1 else ''} "
                      "FAIL") + f" ({self.summary()}).")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts(), "ok": self.ok, "results": [r.to_dict() for r in self.results]}


@dataclass(repr=False)
class PinComparison:
    """What changed between two runs of the same pins (before and after a change): pins that fail now
    and did not (``newly_failing``: a merge gate blocks on them), pass now and did not
    (``newly_passing``), fail in both (``still_failing``), and were run before but cannot be now
    (``no_longer_tested``: e.g. the change removes or renames their concept). Each item is ``(before,
    after)``; ``before`` is None for a pin the first run did not have."""

    newly_failing: list[tuple[PinResult | None, PinResult]] = field(default_factory=list)
    newly_passing: list[tuple[PinResult | None, PinResult]] = field(default_factory=list)
    still_failing: list[tuple[PinResult, PinResult]] = field(default_factory=list)
    no_longer_tested: list[tuple[PinResult, PinResult | None]] = field(default_factory=list)
    unchanged: int = 0

    def __repr__(self) -> str:
        return self.text()

    @property
    def blocks(self) -> bool:
        """Whether a merge must stop here: some pin newly fails."""
        return bool(self.newly_failing)

    def text(self) -> str:
        """In plain words, one line per pin that changed."""
        def was(b: PinResult | None) -> str:
            if b is None or b.score is None:
                return "not run before" if b is None else f"before: {b.status}, {b.reason}"
            return f"was {b.score:.2f}"

        lines = []
        n = len(self.newly_failing)
        if n:
            lines.append(f"{n} pin{'s' if n != 1 else ''} newly fail{'s' if n == 1 else ''}:")
            lines += [f"  {a.line()}; {was(b)}" for b, a in self.newly_failing]
        n = len(self.newly_passing)
        if n:
            lines.append(f"{n} pin{'s' if n != 1 else ''} newly pass{'es' if n == 1 else ''}:")
            lines += [f"  {a.line()}; {was(b)}" for b, a in self.newly_passing]
        n = len(self.no_longer_tested)
        if n:
            lines.append(f"{n} pin{'s' if n != 1 else ''} no longer tested:")
            lines += [f"  {b.line()} before; now {a.reason if a is not None else 'not run'}" for b, a in
                      self.no_longer_tested]
        n = len(self.still_failing)
        if n:
            lines.append(f"{n} pin{'s' if n != 1 else ''} failed before and still fail{'s' if n == 1 else ''}.")
        if not lines:
            return f"No pin changes ({self.unchanged} as before)."
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        def pair(b: PinResult | None, a: PinResult | None) -> dict[str, Any]:
            return {"before": None if b is None else b.to_dict(), "after": None if a is None else a.to_dict()}

        return {"newly_failing": [pair(b, a) for b, a in self.newly_failing],
                "newly_passing": [pair(b, a) for b, a in self.newly_passing],
                "still_failing": [pair(b, a) for b, a in self.still_failing],
                "no_longer_tested": [pair(b, a) for b, a in self.no_longer_tested],
                "unchanged": self.unchanged, "blocks": self.blocks}


def saved_models(ws: Workspace, concepts: Iterable[str] | None = None) -> dict[str, ConceptModel]:
    """The workspace's saved models of ``concepts`` (default: every concept with pins) that exist; a
    concept without a saved model is left out (its pins are ``skipped``: train first)."""
    want = sorted(set(concepts) if concepts is not None else {p.concept for p in pins(ws, strict=False)})
    store = ModelStore(ws.models_dir)
    return {c: store.load(c) for c in want if store.has(c)}


def run_pins(
    ws: Workspace,
    models: Mapping[str, ConceptModel],
    concepts: Iterable[str] | None = None,
    *,
    ontology: Ontology | None = None,
    crop_size: int | None = None,
) -> PinReport:
    """Run the workspace's pins (of ``concepts``; default all) against ``models`` (concept → fitted
    model; see the module docstring) and return one result per pin. Reads images; writes nothing."""
    o = ontology if ontology is not None else ws.ontology
    items = pins(ws, strict=False)
    if concepts is not None:
        wanted = set(concepts)
        items = [p for p in items if p.concept in wanted]
    matched = match_segments(ws, items)
    results: dict[int, PinResult] = {}
    todo: dict[str, list[tuple[int, Pin, Any]]] = {}  # concept -> (index, pin, segment row)
    for i, p in enumerate(items):
        rows = matched.get(p.segment_key, [])
        sid = rows[0].id if rows else None
        if not rows:
            results[i] = PinResult(p, "stale", reason="the segment is not in the label store any more (the images "
                                   "were segmented again, with other settings?); re-pin it or remove the pin")
        elif p.concept not in o.concepts:
            results[i] = PinResult(p, "skipped", segment_id=sid, reason=f"{p.concept!r} is not a concept of this "
                                   "ontology")
        elif p.concept not in o.leaves():
            results[i] = PinResult(p, "skipped", segment_id=sid, reason=f"{p.concept!r} is made of parts now; "
                                   "only parts score segments")
        elif p.concept not in models:
            results[i] = PinResult(p, "skipped", segment_id=sid, reason=f"no trained model of {p.concept!r}: "
                                   "train first")
        else:
            todo.setdefault(p.concept, []).append((i, p, rows[0]))
    pixels: dict[str, np.ndarray | str] = {}  # stored image path -> pixels, or why they cannot be read
    for concept, group in todo.items():
        model = models[concept]
        size = int(crop_size or getattr(model, "crop_size", None) or ws.settings.crop_size)
        crops, keep = [], []
        for i, p, row in group:
            image = ws.store.image(row.image_id)
            if image.path not in pixels:
                try:
                    pixels[image.path] = load_image(ws.image_path(image.path))
                except ImageLoadError as e:
                    pixels[image.path] = e.reason
            px = pixels[image.path]
            if isinstance(px, str):
                results[i] = PinResult(p, "skipped", segment_id=row.id, reason=f"its image cannot be read ({px})")
                continue
            crops.append(row.segment().crop(px, size))
            keep.append((i, p, row))
        if not crops:
            continue
        try:
            scores = np.asarray(model.predict_proba(np.stack(crops).astype(np.uint8)), dtype=float).reshape(-1)
        except WorkbenchError as e:
            for i, p, row in keep:
                results[i] = PinResult(p, "skipped", segment_id=row.id, reason=f"the model of {concept!r} failed: {e}")
            continue
        for (i, p, row), s in zip(keep, scores):
            ok = s >= THRESHOLD if p.expect == "must" else s < THRESHOLD
            results[i] = PinResult(p, "pass" if ok else "fail", float(s), THRESHOLD, row.id)
    return PinReport([results[i] for i in range(len(items))])


def compare_pins(before: PinReport, after: PinReport) -> PinComparison:
    """What changed between ``before`` and ``after`` (the same workspace's pins, run against two sets of
    models): see :class:`PinComparison`. Pins are matched by concept and segment."""
    prior = {r.pin.key: r for r in before.results}
    out = PinComparison()
    seen = set()
    for a in after.results:
        b = prior.get(a.pin.key)
        seen.add(a.pin.key)
        if a.status == "fail":
            if b is not None and b.status == "fail":
                out.still_failing.append((b, a))
            else:
                out.newly_failing.append((b, a))
        elif a.status == "pass" and (b is None or b.status != "pass"):
            out.newly_passing.append((b, a))
        elif a.status in ("skipped", "stale") and b is not None and b.status in ("pass", "fail"):
            out.no_longer_tested.append((b, a))
        else:
            out.unchanged += 1
    for key, b in prior.items():
        if key not in seen and b.status in ("pass", "fail"):
            out.no_longer_tested.append((b, None))
    return out
