"""The merge gate: does a proposal make the classifier better (or, for a simplification, no worse)?

Like a chess engine's patch testing: before a change is merged, the models it affects are retrained
and the root's balanced accuracy is compared with and without it on the SAME validation images (the
class-balanced split of :func:`workbench.models.train.split_images`), with a paired bootstrap confidence
interval of the difference::

    current ontology ──train (saved models reused)──▶ base models ──┐
    ontology + edits ──train only what changed ─────▶ candidate ────┼─▶ per-image right/wrong on val
                                                                    └─▶ paired, class-stratified bootstrap
                                                                        of Δ balanced accuracy → CI

Rules (thresholds from the workspace settings ``gate_confidence``, ``gate_min_gain``,
``gate_max_loss``, ``gate_bootstrap``):

- an **addition** (adds concepts or parts) merges when the interval's lower bound is above 0 and at
  least ``gate_min_gain``; it is rejected when even the upper bound shows no gain;
- a **simplification** (merge, remove, remove_part, a rule replacing a net) merges when the lower
  bound is at or above ``-gate_max_loss`` (no significant loss); it is rejected when the loss is
  significant (upper bound below 0) or the estimate itself loses more than ``gate_max_loss``;
- a **neutral** change (descriptions, renames) follows the simplification rule; one that changes no
  model at all merges without training.

Everything else is "inconclusive": more validation images (or labels) are needed. A concept the
proposal introduces that has no labelled segments yet makes the verdict inconclusive, naming it.
Nothing is written to the workspace: candidate models live in a temporary folder.

Pins (:mod:`workbench.workspace.pins`, run by :mod:`workbench.models.pins`): the pins of every concept
the candidate retrains are run against the base and the candidate models; a pin that passed and now
fails turns the decision into "reject" (the verdict's ``pins`` lists it; a person may still override,
recorded), and pins that newly pass are reported too.

What :func:`apply_proposal` merges: a "merge" verdict, or anything with a person's override
(``Gate-override:``). An addition the gate cannot judge yet ("inconclusive": its new concepts have no
labels, or too few) is accepted as *provisional* (:mod:`workbench.review.provisional`): its concepts are
labelled and trained but left out of their parents' composition until the gate, on a later train, shows
a gain and a person confirms them. Nothing else merges on "inconclusive".

A verdict reads in words (:meth:`Verdict.meaning`): how many validation images, the interval, on how
many images the two classifiers differ, and what the decision means; when every bootstrap resample
gives the same difference it says so ("no difference on any of the 16 images") instead of printing an
interval of zero width. The commit trailer (:meth:`Verdict.summary`) keeps its machine-readable form.

>>> r = paired_bootstrap([1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0], n_resamples=200)
>>> r.difference, r.n
(0.25, 4)
>>> decide("addition", 0.03, 0.01, 0.05, min_gain=0.0, max_loss=0.01)
'merge'
>>> decide("simplification", -0.2, -0.3, -0.1, min_gain=0.0, max_loss=0.01)
'reject'
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.data.segments import settings_hash
from workbench.errors import EditError, ProposalConflict, ProposalError, WorkbenchError
from workbench.models.job import collect_workspace, trainable_ontology, training_config, workspace_segmenter
from workbench.models.metrics import BootstrapResult, paired_bootstrap
from workbench.models.pins import compare_pins, run_pins
from workbench.models.store import ModelStore
from workbench.models.train import (
    SegmentTable,
    TrainConfig,
    image_level_scores,
    plan_training,
    train_hybrid,
)
from workbench.ontology.edits import apply_edits, edit_from_dict
from workbench.review import decisions
from workbench.review.proposals import Proposal
from workbench.review.store import ProposalStore

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = [
    "Verdict",
    "BootstrapResult",
    "DECISIONS",
    "KINDS",
    "paired_bootstrap",
    "decide",
    "edit_kind",
    "gate",
    "gate_edits",
    "override",
    "apply_proposal",
    "goes_provisional",
    "GateRejected",
]

DECISIONS = ("merge", "reject", "inconclusive")
KINDS = ("addition", "simplification", "neutral")

_ADDING_OPS = {"add_concept", "add_part", "split"}
_SIMPLIFYING_OPS = {"merge", "remove_concept", "remove_part"}
#: Ops an addition that can go provisional may hold besides add_concept: they change no model.
_PROVISIONAL_COMPANIONS = {"describe"}


class GateRejected(ProposalError):
    """The merge gate rejected a proposal; ``verdict`` holds its numbers, ``note`` what else went wrong
    (" (could not record the verdict: ...)", or ""). Merge anyway with an override."""

    def __init__(self, message: str, verdict: Verdict, note: str = ""):
        super().__init__(message)
        self.verdict = verdict
        self.note = note


# --------------------------------------------------------------------------------------------- statistics
def decide(kind: str, difference: float, low: float, high: float, *, min_gain: float, max_loss: float) -> str:
    """The gate's rule (see the module docstring): "merge", "reject" or "inconclusive"."""
    if kind not in KINDS:
        raise WorkbenchError(f"unknown change kind {kind!r}: one of {', '.join(KINDS)}")
    eps = 1e-12
    if kind == "addition":
        if low > eps and low >= min_gain - eps:
            return "merge"
        if high <= max(min_gain, 0.0) + eps:
            return "reject"
        return "inconclusive"
    if low >= -max_loss - eps:
        return "merge"
    if high < -eps or difference < -max_loss - eps:
        return "reject"
    return "inconclusive"


def edit_kind(edits: Sequence[Any], before: Any | None = None) -> str:
    """"addition", "simplification" or "neutral" for a list of edits (objects or dicts).

    A ``describe`` that turns a net into a rule is a simplification (a plain-code rule replacing a net).
    """
    ops = []
    for e in edits:
        d = e if isinstance(e, Mapping) else e.to_dict()
        ops.append(d)
    if any(d.get("op") in _ADDING_OPS for d in ops):
        return "addition"
    if any(d.get("op") == "set_provisional" and d.get("provisional") is False for d in ops):
        return "addition"  # confirming a provisional concept adds it to its parents' composition
    for d in ops:
        if d.get("op") in _SIMPLIFYING_OPS or (d.get("op") == "set_provisional" and d.get("provisional", True)):
            return "simplification"
        if d.get("op") == "describe" and d.get("implementation") == "rule":
            was_rule = before is not None and d.get("id") in before.concepts and \
                before.concepts[d["id"]].implementation == "rule"
            if not was_rule:
                return "simplification"
    return "neutral"


# ------------------------------------------------------------------------------------------------ verdict
def _pts(x: float | None, signed: bool = True) -> str:
    if x is None:
        return "–"
    return f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one proposal, with every number it was based on."""

    decision: str  # "merge" | "reject" | "inconclusive"
    kind: str  # "addition" | "simplification" | "neutral"
    message: str  # one sentence for people: why this decision
    base_balanced_accuracy: float | None = None
    candidate_balanced_accuracy: float | None = None
    difference: float | None = None  # candidate − base (balanced accuracy, 0..1)
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = 0.95
    n: int = 0  # validation images compared
    fraction_not_better: float | None = None  # bootstrap share of resamples with Δ <= 0
    n_resamples: int = 0
    seeds: tuple[int, ...] = ()
    retrained: tuple[str, ...] = ()  # concepts the candidate retrained
    thresholds: Mapping[str, float] = field(default_factory=dict)  # min_gain, max_loss
    seconds: float = 0.0
    proposal: str | None = None
    labels_needed: tuple[str, ...] = ()  # concepts to label before the gate can decide
    override: Mapping[str, str] | None = None  # {"by", "reason"} when a person merged against the gate
    gained: int | None = None  # validation images the candidate gets right and the base wrong
    lost: int | None = None  # validation images the base gets right and the candidate wrong
    pins: Mapping[str, Any] | None = None  # pins of the retrained concepts, before vs after (compare_pins)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise WorkbenchError(f"Verdict: decision must be one of {', '.join(DECISIONS)}, got {self.decision!r}")
        if self.kind not in KINDS:
            raise WorkbenchError(f"Verdict: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    @property
    def passed(self) -> bool:
        return self.decision == "merge"

    @property
    def all_equal(self) -> bool:
        """Every bootstrap resample gave the same difference (an interval of zero width)."""
        return (self.difference is not None and self.ci_low is not None and self.ci_high is not None
                and abs(self.ci_high - self.ci_low) < 1e-12)

    @property
    def pins_newly_failing(self) -> int:
        """How many pins pass with the base models and fail with the candidate's (they block a merge)."""
        return len((self.pins or {}).get("newly_failing") or ())

    def interval_text(self) -> str:
        """``+3.1 pts, 95% CI [+0.8, +5.4]``, or ``no difference on any of the 16 images`` when every
        resample gave 0 (``+6.2 pts on every resample of the 16 images`` when they all gave the same gain)."""
        if self.difference is None:
            return ""
        if self.all_equal:
            if abs(self.difference) < 1e-12:
                return f"no difference on any of the {self.n} images"
            return f"{_pts(self.difference)} pts on every resample of the {self.n} images"
        conf = f"{round(100 * self.confidence):d}%"
        return f"{_pts(self.difference)} pts, {conf} CI [{_pts(self.ci_low)}, {_pts(self.ci_high)}]"

    def meaning(self) -> str:
        """The verdict in sentences for a person: what was compared, on how many images, the interval,
        and what the decision means (and what to do next)."""
        parts: list[str] = []
        if self.difference is not None:
            base, cand = self.base_balanced_accuracy, self.candidate_balanced_accuracy
            acc = (f" (balanced accuracy {_pts(base, signed=False)}% → {_pts(cand, signed=False)}%)"
                   if base is not None and cand is not None else "")
            if self.all_equal and abs(self.difference) < 1e-12:
                parts.append(f"On the {self.n} validation images the current and the changed classifier are right on "
                             f"exactly the same images{acc}: no difference on any of the {self.n} images.")
            else:
                conf = f"{round(100 * self.confidence):d}%"
                ci = ("every bootstrap resample gives the same change" if self.all_equal else
                      f"the {conf} interval runs from {_pts(self.ci_low)} to {_pts(self.ci_high)} pts")
                parts.append(f"On {self.n} validation images the change moves the root's balanced accuracy by "
                             f"{_pts(self.difference)} pts{acc}; {ci}.")
            if self.gained is not None and self.lost is not None and not (self.all_equal and self.difference == 0):
                parts.append(f"It is right on {self.gained} image{'s' if self.gained != 1 else ''} the current "
                             f"classifier gets wrong and wrong on {self.lost} it gets right.")
        if self.pins_newly_failing:
            n = self.pins_newly_failing
            parts.append(f"{n} pin{'s' if n != 1 else ''} that passed now fail{'s' if n == 1 else ''}: a person said "
                         "these segments must (not) be that concept, so the merge is blocked.")
        elif self.pins and self.pins.get("newly_passing"):
            n = len(self.pins["newly_passing"])
            parts.append(f"{n} pin{'s' if n != 1 else ''} newly pass{'es' if n == 1 else ''}.")
        gain = "an addition must show a gain (the interval above 0)" if self.kind == "addition" else (
            f"a {self.kind} change may lose at most {_pts(self.thresholds.get('max_loss', 0.0), signed=False)} pts")
        if self.difference is None:
            said = self.message.strip().rstrip(".")
            if said:
                parts.insert(0, said[:1].upper() + said[1:] + ".")
            means = {"merge": "Nothing the classifier computes changes, so it can merge.",
                     "reject": "It cannot merge.",
                     "inconclusive": "The gate cannot judge it yet."}[self.decision]
        else:
            means = {"merge": f"Verdict merge: {gain}, and it does.",
                     "reject": (f"Verdict reject: a pin that passed now fails, and that blocks a merge whatever "
                                f"the accuracy says ({gain})." if self.pins_newly_failing
                                else f"Verdict reject: {gain}; this one does not."),
                     "inconclusive": f"Verdict inconclusive: {gain}, and these images cannot tell yet; label more "
                                     "segments or add validation images, then gate again."}[self.decision]
        parts.append(means)
        if self.override:
            parts.append(f"Overridden by {self.override.get('by', '?')}: {self.override.get('reason', '')}.")
        return " ".join(parts)

    def line(self) -> str:
        """The verdict in one line without the ``Gate:`` key: ``merge (+3.1 pts, 95% CI [+0.8, +5.4], n=48)``
        (``merge (no difference on any of the 16 images)`` when every resample gave 0; ``, 1 pin newly
        fails`` when one did); an override is appended (``— overridden by ana: reason``)."""
        if self.difference is None:
            text = f"{self.decision} ({self.message})"
        elif self.all_equal and abs(self.difference) < 1e-12:
            text = f"{self.decision} ({self.interval_text()})"
        else:
            text = f"{self.decision} ({self.interval_text()}, n={self.n})"
        if self.pins_newly_failing:
            n = self.pins_newly_failing
            text = text[:-1] + f"; {n} pin{'s' if n != 1 else ''} newly fail{'s' if n == 1 else ''})"
        if self.override:
            text += f" — overridden by {self.override.get('by', '?')}: {self.override.get('reason', '')}"
        return " ".join(text.split())

    def summary(self) -> str:
        """One line for a commit message: ``Gate: merge (+3.1 pts, 95% CI [+0.8, +5.4], n=48)``."""
        return f"Gate: {self.line()}"

    def __str__(self) -> str:
        text = f"{self.summary()}\n{self.meaning()}"
        if self.pins and (self.pins.get("text") or "").strip():
            text += "\n" + str(self.pins["text"])
        return text

    def _repr_html_(self) -> str:  # a notebook shows the verdict, escaped (the message may quote concept ids)
        import html

        colour = {"merge": "#1a7f37", "reject": "#cf222e", "inconclusive": "#9a6700"}[self.decision]
        extra = f"<br><small>retrained: {html.escape(', '.join(self.retrained))}</small>" if self.retrained else ""
        pins = ""
        if self.pins and (self.pins.get("text") or "").strip():
            pins = f"<pre style='margin:4px 0'>{html.escape(str(self.pins['text']))}</pre>"
        return (f"<div><b style='color:{colour}'>{html.escape(self.summary())}</b><br>"
                f"{html.escape(self.meaning())}{pins}{extra}</div>")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float):
                v = round(v, 6)
            elif isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, Mapping):
                v = dict(v)
            d[f.name] = v
        d["meaning"] = self.meaning()  # the verdict in words, for whoever reads the proposal file
        d["summary"] = self.line()  # what decisions.accept writes after "Gate: " in the commit message
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        if isinstance(kw.get("thresholds"), Mapping):
            kw["thresholds"] = dict(kw["thresholds"])
        return cls(**kw)

    def with_override(self, *, by: str, reason: str) -> Verdict:
        return dataclasses.replace(self, override={"by": by, "reason": reason})


# ---------------------------------------------------------------------------------------------- the gate
def _segmenter_hash(ws: Workspace) -> str | None:
    """The settings hash of the workspace's segmenter (as `workbench train` uses), None if it can't be built."""
    try:
        return settings_hash(workspace_segmenter(ws))
    except WorkbenchError:
        return None


def _default_config(ws: Workspace, saved: Mapping[str, Any] | None) -> TrainConfig:
    """The workspace's training configuration with the settings the saved models were trained with
    (so unchanged concepts load instead of retraining); the workspace's alone when none are saved or
    they no longer fit."""
    base = training_config(ws.settings)
    if not saved:
        return base
    try:
        return base.with_fingerprint_settings(saved)
    except (TypeError, ValueError):
        return base


def _relabel(labels: Sequence[str | None], edits: Sequence[Any]) -> list[str | None]:
    """Carry segment labels through renames and merges, as the store would on apply."""
    out = list(labels)
    for e in edits:
        if e.op == "rename":
            mapping = {e.old: e.new}
        elif e.op == "merge":
            mapping = {s: e.into for s in e.sources}
        else:
            continue
        out = [mapping.get(lab, lab) if lab is not None else None for lab in out]
    return out


def _correct(ontology: Any, models: Mapping[str, Any], images: Any, segments: Any) -> np.ndarray:
    scores, _, _ = image_level_scores(ontology, models, segments, len(images))
    y = images.targets(ontology.root)
    return (scores[ontology.root] >= 0.5) == (y == 1)


def gate(
    ws: Workspace,
    proposal: Any,
    accept: Sequence[int] | None = None,
    *,
    seeds: Sequence[int] | None = None,
    executor: Executor | None = None,
    config: Any = None,
    keep: dict[str, Any] | None = None,
) -> Verdict:
    """Retrain what ``proposal`` (a Proposal or a ref such as ``"0007"``) affects and judge it.

    ``accept``: indices of the edits to test (default: every valid one). ``seeds``: training seeds
    for the retrained concepts (default: the workspace's ``random_state``); more seeds average out
    training noise, each extra one costs a retrain. ``config``: a :class:`workbench.models.train.TrainConfig`
    (default: the settings the workspace's saved models were trained with, so unchanged concepts load
    instead of retraining; without saved models, the workspace settings). ``keep``: a dict that receives the trained models and
    tables (``base``/``candidate``: ``(ontology, models)``, ``images``, ``segments``,
    ``candidate_segments``) for before/after pictures (:func:`workbench.review.cells.proposal_cells`).
    """
    if not isinstance(proposal, Proposal):
        proposal = ProposalStore(ws, commit=False).load(proposal)
    # the same choice of edits accept() makes (valid ones by default; a stale proposal re-validated)
    _chosen, edits, _after, _stale = decisions.plan_edits(ws.ontology, proposal, accept, None)
    return gate_edits(ws, edits, proposal_id=proposal.id, seeds=seeds, executor=executor, config=config, keep=keep)


def gate_edits(
    ws: Workspace,
    edits: Sequence[Any],
    *,
    proposal_id: str | None = None,
    seeds: Sequence[int] | None = None,
    executor: Executor | None = None,
    config: Any = None,
    keep: dict[str, Any] | None = None,
) -> Verdict:
    """:func:`gate` for a plain list of edits (objects or dicts) against the workspace's current ontology."""
    t0 = time.perf_counter()
    s = ws.settings
    edits = [edit_from_dict(e) if isinstance(e, Mapping) else e for e in edits]
    base_o = ws.ontology
    who = f"proposal {proposal_id}" if proposal_id else "these edits"
    try:
        cand_o = apply_edits(base_o, edits)
    except EditError as e:
        raise ProposalConflict(f"{who} no longer applies to {ws.ontology_path}: {e}") from None
    kind = edit_kind(edits, base_o)
    thresholds = {"min_gain": s.gate_min_gain, "max_loss": s.gate_max_loss}
    saved_settings, saved_hash = ModelStore(ws.models_dir).saved_training()
    config = config or _default_config(ws, saved_settings)
    seeds = tuple(seeds) if seeds else (config.random_state,)
    common = dict(kind=kind, confidence=s.gate_confidence, thresholds=thresholds, proposal=proposal_id, seeds=seeds)

    def done(decision: str, message: str, **kw: Any) -> Verdict:
        return Verdict(decision, message=message, seconds=round(time.perf_counter() - t0, 2), **common, **kw)

    if not edits:
        return done("inconclusive", "no valid edit to test")
    if base_o == cand_o:
        return done("merge", "the edits leave the ontology unchanged")
    shash = _segmenter_hash(ws) or saved_hash
    # the split follows the workspace's seed, whatever seed the saved models were trained with
    images, segments = collect_workspace(ws, config, shash, split_seed=s.random_state)
    if not len(segments):
        return done("inconclusive", f"no segments in the workspace yet: run `workbench segment --workspace {ws.path}`")
    cand_segments = SegmentTable(segments.segment_ids, segments.image_index, segments.bboxes,
                                 _relabel(segments.labels, edits), segments.crops)
    # a provisional concept that cannot be trained yet (no parent combines it) is left out of both sides,
    # as `workbench train` leaves it out: it must not hold up the judgement of another change
    base_o, _ = trainable_ontology(base_o, images, segments)
    cand_o, _ = trainable_ontology(cand_o, images, cand_segments)

    # concepts the candidate has to learn but nobody has labelled yet
    train_img = images.mask("train")
    needed = []
    for leaf in cand_o.leaves():
        pos = sum(1 for r, lab in enumerate(cand_segments.labels) if lab == leaf and train_img[segments.image_index[r]])
        if pos == 0:
            needed.append(leaf)
    if needed:
        names = ", ".join(repr(c) for c in needed)
        return done("inconclusive", f"label some segments as {names} first: "
                    f"{'it has' if len(needed) == 1 else 'they have'} no labelled training segments yet, so the gate "
                    f"cannot train {'it' if len(needed) == 1 else 'them'}", labels_needed=tuple(needed))

    # nothing the models see changes (descriptions, labels): no model is affected
    base_plan = plan_training(base_o, images, segments, config, None, shash)
    cand_plan = plan_training(cand_o, images, cand_segments, config, None, shash)
    if {c: p.fingerprint for c, p in base_plan.items()} == {c: p.fingerprint for c, p in cand_plan.items()}:
        return done("merge", "no concept model is affected (nothing to retrain)")

    val = images.mask("val")
    if not val.any():
        return done("inconclusive", "no validation images: add images of every class")
    y = images.targets(base_o.root)[val]
    with tempfile.TemporaryDirectory(prefix="workbench-gate-") as tmp:
        tmpdir = Path(tmp)
        ModelStore(ws.models_dir).copy_to(ModelStore(tmpdir))  # reuse the saved models, never writing there
        try:
            base = train_hybrid(base_o, images, segments, config, models_dir=tmpdir, settings_hash=shash,
                                executor=executor)
        except WorkbenchError as e:
            return done("inconclusive", f"the current ontology cannot be trained: {e}")
        base_correct = _correct(base_o, base.models, images, segments)[val]
        cand_rows, retrained = [], ()
        for k, seed in enumerate(seeds):
            try:
                if k == 0 and seed == config.random_state:
                    cand = train_hybrid(cand_o, images, cand_segments, config, models_dir=tmpdir,
                                        settings_hash=shash, executor=executor)
                    retrained = tuple(cand.retrained)
                else:
                    only = retrained or tuple(c for c, p in cand_plan.items())
                    cand = train_hybrid(cand_o, images, cand_segments, config, settings_hash=shash,
                                        executor=executor, seeds={c: seed for c in only})
                    retrained = retrained or tuple(cand.retrained)
            except WorkbenchError as e:
                return done("inconclusive", f"the changed ontology cannot be trained: {e}")
            cand_rows.append(_correct(cand_o, cand.models, images, cand_segments)[val])
        pin_change = _pins_change(ws, base_o, base.models, cand_o, cand.models, retrained)
    if keep is not None:
        keep.update(base=(base_o, base.models), candidate=(cand_o, cand.models), images=images,
                    segments=segments, candidate_segments=cand_segments, retrained=retrained)
    boot = paired_bootstrap(y, np.stack([base_correct] * len(cand_rows)), np.stack(cand_rows),
                            n_resamples=s.gate_bootstrap, confidence=s.gate_confidence, random_state=s.random_state)
    decision = decide(kind, boot.difference, boot.low, boot.high, min_gain=s.gate_min_gain, max_loss=s.gate_max_loss)
    message = _message(decision, kind, boot, s.gate_min_gain, s.gate_max_loss)
    if pin_change is not None and pin_change["newly_failing"]:
        n = len(pin_change["newly_failing"])
        decision = "reject"
        message = (f"blocked: {n} pin{'s' if n != 1 else ''} that passed now fail{'s' if n == 1 else ''} "
                   f"({'; '.join(_pin_names(pin_change['newly_failing']))}); without the pins: {message}")
    cand_right = np.mean(np.stack(cand_rows), axis=0) >= 0.5
    return done(decision, message, base_balanced_accuracy=round(boot.base, 4),
                candidate_balanced_accuracy=round(boot.candidate, 4), difference=boot.difference, ci_low=boot.low,
                ci_high=boot.high, n=boot.n, fraction_not_better=boot.fraction_not_better,
                n_resamples=boot.n_resamples, retrained=retrained,
                gained=int(np.sum(cand_right & ~base_correct)), lost=int(np.sum(base_correct & ~cand_right)),
                pins=pin_change)


def _pins_change(ws: Workspace, base_o: Any, base_models: Mapping[str, Any], cand_o: Any,
                 cand_models: Mapping[str, Any], retrained: Sequence[str]) -> dict[str, Any] | None:
    """The pins of the concepts the candidate retrained, run with the base and the candidate models:
    :meth:`workbench.models.pins.PinComparison.to_dict` plus its ``text``; None when none of them has a pin."""
    if not retrained:
        return None
    before = run_pins(ws, base_models, concepts=retrained, ontology=base_o)
    if not before.results:
        return None
    after = run_pins(ws, cand_models, concepts=retrained, ontology=cand_o)
    change = compare_pins(before, after)
    return {**change.to_dict(), "text": change.text()}


def _pin_names(pairs: Sequence[Mapping[str, Any]]) -> list[str]:
    """``segment 812 must be 'petal'`` for each (before, after) pair of :meth:`PinComparison.to_dict`."""
    out = []
    for pair in pairs:
        after = pair.get("after") or {}
        expect = str(after.get("expect", "must")).replace("_", " ")
        seg = after.get("segment_id")
        out.append(f"segment {seg if seg is not None else '?'} of {after.get('image', '?')} {expect} be "
                   f"{after.get('concept', '?')!r}")
    return out


def _message(decision: str, kind: str, b: BootstrapResult, min_gain: float, max_loss: float) -> str:
    ci = (f"the same on every resample of the {b.n} images" if abs(b.high - b.low) < 1e-12
          else f"{round(100 * b.confidence)}% CI [{_pts(b.low)}, {_pts(b.high)}] pts")
    if kind == "addition":
        need = f"an addition must gain (CI lower bound > 0{f' and ≥ {_pts(min_gain)} pts' if min_gain > 0 else ''})"
        return {"merge": f"gains {_pts(b.difference)} pts ({ci}); {need}: it does",
                "reject": f"no gain: {_pts(b.difference)} pts ({ci}); {need}",
                "inconclusive": f"{_pts(b.difference)} pts ({ci}) is not yet a clear gain; {need}: "
                                "add validation images or labels and gate again"}[decision]
    need = f"a {kind} change may lose at most {_pts(max_loss, signed=False)} pts (CI lower bound ≥ {_pts(-max_loss)})"
    return {"merge": f"{_pts(b.difference)} pts ({ci}); {need}: it does not lose more",
            "reject": f"changes balanced accuracy by {_pts(b.difference)} pts ({ci}); {need}",
            "inconclusive": f"{_pts(b.difference)} pts ({ci}) cannot rule out a loss; {need}: "
                            "add validation images and gate again"}[decision]


def override(
    ws: Workspace,
    ref: Any,
    accept: Sequence[int] | None = None,
    *,
    by: str,
    reason: str,
    verdict: Verdict | None = None,
) -> Any:
    """Merge ``ref`` against the gate: a person's decision, recorded in the proposal's decisions and
    in the commit message (``Gate-override: <by>: <reason>``). Returns the accepted Proposal."""
    if not isinstance(reason, str) or not reason.strip():
        raise ProposalError("an override needs a reason (it goes into the commit message and the proposal)")
    if not isinstance(by, str) or not by.strip():
        raise ProposalError("an override needs the name of the person who decided (by=...)")
    p = ref if not isinstance(ref, (str, int)) else ProposalStore(ws).load(str(ref))
    if verdict is None:
        verdict = gate(ws, p, accept)
    reason = " ".join(reason.split())
    verdict = verdict.with_override(by=by.strip(), reason=reason)
    note = f"Merged against the gate ({verdict.decision}) by {by.strip()}: {reason}"
    return decisions.accept(ws, p, accept, by=by, note=note, gate=verdict.to_dict(), provisional=False)


_run_gate, _run_override = gate, override  # apply_proposal's ``gate``/``override`` arguments shadow them


def goes_provisional(edits: Sequence[Any], verdict: Verdict) -> bool:
    """Whether :func:`apply_proposal` accepts these edits as a provisional addition: the gate could not
    judge them yet ("inconclusive") and every edit adds a concept (nothing else a model sees changes), so
    the classifier stays as it is until a person confirms the new concepts."""
    ops = [e if isinstance(e, Mapping) else e.to_dict() for e in edits]
    return (verdict.decision == "inconclusive" and verdict.kind == "addition" and bool(ops)
            and all(d.get("op") == "add_concept" for d in ops))


def apply_proposal(
    ws: Workspace,
    ref: Any,
    accept: Sequence[int] | None = None,
    *,
    by: str,
    gate: bool = True,
    override: str | None = None,
    note: str = "",
    **gate_options: Any,
) -> tuple[Any, Verdict | None]:
    """Gate, then accept: what ``wb.apply("proposals/0007.yaml")`` and ``workbench gate ID --merge`` run.
    Returns ``(proposal, verdict)``.

    - "merge": accepted with the verdict in the commit message (``Gate:``); concepts it adds join their
      parents at once (the gate showed their gain);
    - "inconclusive" on an addition of new concepts (:func:`goes_provisional`): accepted as
      *provisional*: the concepts are labelled and trained but no parent combines them until the gate
      shows a gain on a later train and a person confirms them (:mod:`workbench.review.provisional`);
    - anything else ("reject", or "inconclusive" on any other change) merges nothing: the verdict is
      recorded in the proposal file and :class:`GateRejected` says how to merge anyway.

    ``override="why"`` merges whatever the verdict, recording the override (``Gate-override:``);
    ``gate=False`` skips the gate.
    """
    store = ProposalStore(ws)
    p = ref if isinstance(ref, Proposal) else store.load(ref)
    if p.id is None:
        p = store.save(p)
    if p.status != "pending":
        raise ProposalError(f"{p.ref} is already {p.status} (commit {(p.commit or 'none')[:12]}); "
                            f"to undo it: `workbench revert {p.id} --workspace {ws.path} --by NAME` (in a notebook: "
                            f"wb.revert({p.id!r}))")
    if not gate:
        if override:
            raise ProposalError("override= is for merging against the gate; with gate=False there is no verdict")
        return decisions.accept(ws, p, accept, by=by, note=note), None
    verdict = _run_gate(ws, p, accept, **gate_options)
    if verdict.decision == "merge":
        return decisions.accept(ws, p, accept, by=by, note=note, gate=verdict.to_dict(), provisional=False), verdict
    if override:
        return _run_override(ws, p, accept, by=by, reason=override, verdict=verdict), verdict
    _chosen, edits, _after, _stale = decisions.plan_edits(ws.ontology, p, accept, None)
    if goes_provisional(edits, verdict):
        return decisions.accept(ws, p, accept, by=by, note=note, gate=verdict.to_dict(), provisional=True), verdict
    try:
        store.update(dataclasses.replace(p, gate=verdict.to_dict()),
                     message=f"Gate verdict for proposal {p.id}: {verdict.line()}")
    except WorkbenchError as e:  # the refusal matters more than recording it
        log_msg = f" (could not record the verdict: {e})"
    else:
        log_msg = ""
    raise GateRejected(
        f"proposal {p.id} not merged: {verdict.summary()} — {verdict.meaning()}{log_msg} To merge it anyway, "
        f"give the reason: wb.apply({p.id!r}, override=\"why\") or "
        f"`workbench gate {p.id} --workspace {ws.path} --merge --override \"why\" --by NAME`", verdict, log_msg)
