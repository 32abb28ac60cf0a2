"""The notebook entry point: ``wb = workbench.open("my-workspace")``, then ``wb.label()``, ``wb.review()``,
``wb.graph()``, ``wb.train()``, ``wb.explain(image)``, ``wb.apply(ref)``.

:class:`Workbench` is a thin facade over a :class:`~workbench.workspace.folder.Workspace`: each method makes
one widget or calls one core function (``workbench.open`` imports this module only when called, so
``import workbench`` stays light and the core never needs Jupyter). Nothing is stored here that the
workspace does not store; the handle remembers the widgets it made (weakly) so that a change made
through it (apply, train, revert) redraws them, and in a kernel ``open`` tells the Workbench sidebar
which workspace this notebook uses (:mod:`workbench.jupyter._registry`).
"""
from __future__ import annotations

import dataclasses
import html
import logging
import os
import weakref
from typing import Any

from workbench.errors import ProposalError, WorkbenchError
from workbench.jupyter import _registry
from workbench.jupyter.widgets.dashboard import TrainingDashboard, explain_widget
from workbench.jupyter.widgets.graph import OntologyGraph
from workbench.jupyter.widgets.labeler import Labeler, default_author
from workbench.jupyter.widgets.review import ReviewWidget
from workbench.models.pins import PinReport, run_pins, saved_models
from workbench.review.cells import proposal_cells
from workbench.review.gate import GateRejected, Verdict, apply_proposal
from workbench.review.gate import gate as run_gate
from workbench.review.history import history, revert, why
from workbench.review.provisional import ProvisionalConcept, judge, provisional_status
from workbench.review.provisional import confirm as confirm_concept
from workbench.review.provisional import remove as remove_concept
from workbench.review.proposals import Proposal
from workbench.review.store import ProposalStore
from workbench.workspace.folder import Workspace
from workbench.workspace.pins import Pin, add_pin, find_segment, pins, remove_pin

__all__ = ["Workbench", "Applied", "NotMerged", "open", "expect_output"]

_log = logging.getLogger(__name__)


class NotMerged(GateRejected):
    """``wb.apply`` merged nothing: the gate said "reject" or "inconclusive" (a :class:`GateRejected`, so
    ``except GateRejected`` catches it). A notebook shows its message alone, without a traceback through
    the workbench's own code: the refusal is the answer, not a bug."""

    def _render_traceback_(self) -> list[str]:  # IPython shows these lines instead of the traceback
        return [f"{type(self).__name__}: {self}"]


class Workbench:
    """An open workspace with its widgets. Make one with :func:`workbench.open`."""

    def __init__(self, workspace: Workspace, *, author: str | None = None):
        self.workspace = workspace
        self._author = author
        self._widgets: weakref.WeakSet[Any] = weakref.WeakSet()  # shown widgets, refreshed after a change

    # -- the workspace ----------------------------------------------------------------------------------
    @property
    def ontology(self) -> Any:
        """The ontology as it is now in ``ontology.yaml``."""
        return self.workspace.ontology

    @property
    def store(self) -> Any:
        return self.workspace.store

    @property
    def author(self) -> str:
        """Who labels and decides: ``author=`` given to :func:`open`, else WORKBENCH_AUTHOR / USER."""
        return self._author or default_author()

    def close(self) -> None:
        self.workspace.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- widgets ----------------------------------------------------------------------------------------
    def _keep(self, widget: Any) -> Any:
        """Remember a widget this handle made, so :meth:`refresh` (run after apply, train, revert) updates it."""
        self._widgets.add(widget)
        return widget

    def refresh(self) -> None:
        """Bring every widget made by this handle up to date with the workspace (the ontology, labels,
        proposals and models as they are now). Runs by itself after :meth:`apply`, :meth:`train` and
        :meth:`revert`; call it after changing the workspace some other way (the CLI, the sidebar)."""
        for w in list(self._widgets):
            refresh = getattr(w, "refresh", None)
            if refresh is not None and not getattr(w, "_closed", False):
                try:
                    refresh()
                except Exception as e:  # noqa: BLE001 - one stale widget must not break the others
                    _log.warning("refreshing %s: %s", type(w).__name__, e)

    def label(self, **filters: Any) -> Any:
        """The segment labeler (keyboard first). Filters: ``unlabelled``, ``concept``, ``image_class``,
        ``suggested``, ``least_certain``; ``grid=True`` (with ``concept=``: grid review pages of that concept;
        ``grid=False``: one at a time; default: ``labeler.DEFAULT_STRATEGY``); also ``author``,
        ``settings_hash``, ``prefetch``, ``grid_size``, ``train_every``."""
        filters.setdefault("author", self._author)
        return self._keep(Labeler(self.workspace, **filters))

    def review(self, ref: str | int | None = None) -> Any:
        """Review a proposal (``ref``: "7", "0007", "proposals/0007.yaml"); None: the oldest pending one."""
        return self._keep(ReviewWidget(self.workspace, ref, by=self.author))

    def graph(self) -> Any:
        """The ontology as an interactive graph; select a concept to see its card."""
        return self._keep(OntologyGraph(self.workspace))

    def train(self, *, max_epochs: int | None = None, force: bool = False, start: bool = True) -> Any:
        """Train (only what changed) with a live dashboard, shown at once in a notebook so the bars move;
        ``start=False`` returns it with a Train button instead. Results: ``dash.outcome``. The graphs and
        labelers this handle showed are refreshed afterwards (new accuracies, least-certain order)."""
        dash = TrainingDashboard(self.workspace, max_epochs=max_epochs, force=force, on_done=self._after_train)
        return dash.show_and_run() if start else dash

    def _after_train(self, *args: Any) -> None:
        """After a train: the gate judges every provisional concept that now has enough labels (the verdict
        is recorded in its proposal and shown by ``wb.provisional()``, the graph and the sidebar), then the
        widgets refresh."""
        try:
            judge(self.workspace)
        except WorkbenchError as e:  # the models are saved; say why there is no verdict, then refresh anyway
            _log.warning("provisional concepts not judged: %s (wb.provisional() runs the gate again)", e)
        self.refresh()

    def explain(self, image: Any) -> Any:
        """Why the hybrid says what it says about one image (a store path like "daisy/0003.png", an
        image id, or an RGB array): each concept's score and the segment that made it fire."""
        return explain_widget(self.workspace, image)

    # -- the pull-request loop (workbench.review.gate, workbench.review.history, workbench.review.cells) ----------------------
    def apply(self, ref: Any, accept: Any = None, *, gate: bool = True, override: str | None = None) -> Applied:
        """Run the merge gate on a proposal, then merge it only when the gate says "merge".

        Returns an :class:`Applied` (shown in a notebook as one block: merged, the commit, the verdict).
        An addition of new concepts the gate cannot judge yet ("inconclusive": no labels) is accepted as
        provisional (trained, combined by no parent until ``wb.confirm``). Any other "reject" or
        "inconclusive" verdict merges nothing: the verdict is recorded in the proposal and
        :class:`NotMerged` (a :class:`workbench.review.gate.GateRejected`) is raised, saying how to merge anyway:
        ``override="why"`` merges against the gate and records who and why (``Gate-override:`` in the
        commit message). ``gate=False`` applies without the gate. The widgets this handle showed are
        refreshed afterwards.
        """
        store = ProposalStore(self.workspace)
        p = ref if isinstance(ref, Proposal) else store.load(ref)
        if p.id is None:
            p = store.save(p)
        if p.status != "pending":
            raise ProposalError(f"{p.ref} is already {p.status} (commit {(p.commit or 'none')[:12]}); to undo it: "
                                f"wb.revert({p.id!r})")
        try:  # the one gate-then-accept rule, as `workbench gate ID --merge` runs it
            done, verdict = apply_proposal(self.workspace, p, accept, by=self.author, gate=gate, override=override)
        except GateRejected as e:
            self.refresh()
            raise NotMerged(
                f"proposal {p.id} not merged: {_verdict_text(e.verdict)}.{e.note} To merge it anyway, give the "
                f"reason: wb.apply({p.id!r}, override=\"why\")", e.verdict) from None
        if override and done.gate:
            verdict = Verdict.from_dict(done.gate)  # the verdict as recorded, with who overrode it and why
        self.refresh()
        return Applied(done, verdict)

    def provisional(self, *, gate: bool = True) -> list[ProvisionalConcept]:
        """The provisional concepts (accepted additions not yet combined by their parents): labels, what the
        gate needs, the last verdict. ``gate=True`` first runs the gate for each one with enough labels
        (composition with vs without it, on validation) and records the verdict in its proposal."""
        if gate:
            judge(self.workspace)
        self.refresh()
        return provisional_status(self.workspace)

    def confirm(self, concept: str, *, override: str | None = None) -> Verdict:
        """Confirm provisional ``concept``: the gate runs, and on "merge" its parents combine it from now on
        (a commit holding the verdict). Any other verdict raises (the concept stays provisional) unless
        ``override="why"`` gives a reason, recorded as ``Gate-override:``. Returns the verdict."""
        _sha, verdict = confirm_concept(self.workspace, concept, by=self.author, override=override)
        self.refresh()
        return verdict

    def remove(self, concept: str, reason: str = "") -> str | None:
        """Remove provisional ``concept`` (a commit; its labels stay in the store). Returns the commit sha."""
        sha = remove_concept(self.workspace, concept, by=self.author, reason=reason)
        self.refresh()
        return sha

    def history(self, limit: int | None = None) -> list[Any]:
        """The changes to the ontology, newest first (:class:`workbench.review.history.Change`)."""
        return history(self.workspace, limit)

    def why(self, concept: str) -> Any:
        """Which proposal introduced ``concept`` and which last changed it, and why."""
        return why(self.workspace, concept)

    def revert(self, ref: Any, reason: str = "") -> Any:
        """Undo a change (proposal id or commit sha) as a new commit; refused if later changes conflict."""
        change = revert(self.workspace, ref, by=self.author, reason=reason)
        self.refresh()
        return change

    # -- pins: per-concept tests (workbench.workspace.pins, workbench.models.pins) ----------------------------------
    def pin(self, segment: Any, concept: str, expect: str = "must", *, note: str = "") -> Pin:
        """Pin a stored segment: ``concept``'s model ``must`` (or ``must_not``) score it as ``concept``.
        ``segment``: its id in the label store, or ``(image, box)`` as an explanation names the segment
        that fired (``("daisy/0003.png", firing.bbox)``). Committed as ``pins/<concept>.yaml`` with the
        handle's author; its label no longer trains or measures anything (see :meth:`test`)."""
        if isinstance(segment, tuple):
            image, box = segment
            segment = find_segment(self.workspace, image, box=box)
        return add_pin(self.workspace, segment, concept, expect, by=self.author, note=note)

    def unpin(self, segment: int | str, concept: str | None = None, *, reason: str = "") -> Pin:
        """Remove a pin: a segment id and its concept, or a pin id (``wb.pins()`` shows them)."""
        return remove_pin(self.workspace, segment, concept, by=self.author, reason=reason)

    def pins(self, concept: str | None = None) -> list[Pin]:
        """The workspace's pins (of ``concept``, or all)."""
        return pins(self.workspace, concept, strict=False)

    def test(self, concept: str | None = None) -> PinReport:
        """Run the pins (of ``concept``, or all) against the saved models: pass, fail or stale, with the
        score each model gave its pinned segment (what ``workbench test`` prints)."""
        items = pins(self.workspace, concept)
        concepts = sorted({p.concept for p in items})
        return run_pins(self.workspace, saved_models(self.workspace, concepts), concepts)

    def propose_cells(self, ref: Any, *, gate: bool = False) -> list[dict[str, Any]] | None:
        """A proposal as notebook cells. In a notebook kernel: shows the review Markdown and puts the
        ``wb.apply(...)`` code cell below the active cell (run it deliberately), returns None; elsewhere
        (no IPython) returns the cells. ``gate=True`` runs the gate first and adds its verdict and the
        before/after pictures of the retrained concepts."""
        verdict, models = None, None
        if gate:
            models = {}
            verdict = run_gate(self.workspace, ref, keep=models)
        cells = proposal_cells(self.workspace, ref, verdict=verdict, models=models)
        shell = _ipython()
        if shell is None:
            return cells
        from IPython.display import Markdown, display

        display(Markdown(cells[0]["source"]), metadata={"workbench": cells[0]["metadata"]["workbench"]})
        shell.set_next_input(cells[1]["source"], replace=False)
        return None

    # -- display ----------------------------------------------------------------------------------------
    def _summary(self) -> dict[str, Any]:
        o = self.workspace.ontology
        done, total = self.workspace.store.progress()
        pending = 0
        pdir = self.workspace.proposals_dir
        if pdir.is_dir():
            pending = sum(1 for p in pdir.glob("[0-9][0-9][0-9][0-9].yaml"))
        return {"path": str(self.workspace.path), "root": o.root, "concepts": len(o.concepts),
                "labelled": done, "segments": total, "proposals": pending}

    def __repr__(self) -> str:
        s = self._summary()
        return (f"Workbench({s['path']!r}: ontology {s['root']!r} with {s['concepts']} concepts, "
                f"{s['labelled']}/{s['segments']} segments labelled, {s['proposals']} proposal file(s))")

    def _repr_html_(self) -> str:
        s = self._summary()
        e = html.escape
        return (
            f"<div><b>Workbench</b> <code>{e(s['path'])}</code><br>ontology <b>{e(s['root'])}</b>: "
            f"{s['concepts']} concepts · {s['labelled']}/{s['segments']} segments labelled · "
            f"{s['proposals']} proposal file(s)<br><small>wb.label() · wb.review() · wb.graph() · wb.train() · "
            "wb.explain(image)</small></div>"
        )


def open(path: str | os.PathLike[str], *, author: str | None = None) -> Workbench:  # noqa: A001 - workbench.open
    """Open the workspace at ``path`` for the notebook (see :class:`Workbench`).

    In a Jupyter kernel this also tells the Workbench sidebar which workspace this notebook uses (a
    small record in the Jupyter runtime folder, :mod:`workbench.jupyter._registry`), so the sidebar
    shows it with no setting typed.
    """
    wb = Workbench(Workspace.open(path), author=author)
    _registry.register(wb.workspace.path)
    return wb


def _verdict_text(v: Verdict) -> str:
    """The verdict in one line, each number once: the gate's message already states the difference and
    its interval (``Verdict.summary`` would repeat them), so only the decision and ``n`` go before it."""
    if v.difference is None:
        return v.summary()  # "Gate: inconclusive (label some segments as ... first)"
    return f"Gate: {v.decision} (n={v.n}): {v.message}"


@dataclasses.dataclass(frozen=True)
class Applied:
    """What :meth:`Workbench.apply` did: the decided ``proposal`` (status, ``commit``) and the gate's
    ``verdict`` (None with ``gate=False``). A notebook shows it once, as one block."""

    proposal: Any
    verdict: Verdict | None

    @property
    def merged(self) -> bool:
        return self.proposal.status == "accepted"

    @property
    def commit(self) -> str | None:
        return self.proposal.commit

    def lines(self) -> list[str]:
        p = self.proposal
        marked = (p.decisions[-1].get("provisional") if p.decisions else None) or []
        if marked and self.verdict is not None and not self.verdict.override:  # accepted as a provisional addition
            return [f"Accepted proposal {p.id} ({p.title}) as commit {(p.commit or '?')[:12]}: "
                    f"{', '.join(marked)} provisional (trained, not yet combined by its parents). Label "
                    f"{'it' if len(marked) == 1 else 'them'}, train, then wb.confirm({marked[0]!r}).",
                    _verdict_text(self.verdict)]
        head = f"Merged proposal {p.id} ({p.title}) as commit {(p.commit or '?')[:12]}"
        if self.verdict is None:
            return [head + " without the gate (gate=False)."]
        v = self.verdict
        out = [head + (f", against the gate: overridden by {v.override.get('by', '?')}: {v.override.get('reason', '')}"
                       if v.override else ".")]
        out.append(_verdict_text(dataclasses.replace(v, override=None)))
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        e = html.escape
        colour = "#9a6700" if self.verdict is not None and self.verdict.override else "#1a7f37"
        first, *rest = self.lines()
        return (f"<div class='wb-applied'><b style='color:{colour}'>{e(first)}</b>"
                + "".join(f"<br>{e(line)}" for line in rest) + "</div>")


def _ipython() -> Any:
    """The running IPython shell (a notebook kernel), or None outside one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


class expect_output:  # noqa: N801 - used as a context manager, like contextlib's
    """Check what a notebook cell prints: the text is shown as usual, then compared with ``expected``;
    a difference raises AssertionError showing both (so nbval fails the run without stored outputs).

    >>> with expect_output("2\\n"):
    ...     print(1 + 1)
    2
    """

    def __init__(self, expected: str):
        self.expected = expected

    def __enter__(self) -> expect_output:
        import contextlib
        import io

        self._buf = io.StringIO()
        self._redirect = contextlib.redirect_stdout(self._buf)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._redirect.__exit__(*exc)
        got = self._buf.getvalue()
        print(got, end="")
        if exc[0] is None and got != self.expected:
            raise AssertionError(f"this cell printed\n{got!r}\nbut the notebook expects\n{self.expected!r}")
