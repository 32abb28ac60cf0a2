"""The notebook entry point: ``wb = workbench.open("my-workspace")``, then ``wb.label()``, ``wb.review()``,
``wb.graph()``, ``wb.train()``, ``wb.explain(image)``.

:class:`Workbench` is a thin facade over a :class:`~workbench.workspace.folder.Workspace`: each method makes
one widget (imported only when called, so ``import workbench`` stays light and the core never needs
Jupyter) or calls one core function. Nothing is stored here that the workspace does not store.
"""
from __future__ import annotations

import html
import os
from typing import Any

from workbench.jupyter.widgets.dashboard import TrainingDashboard, explain_widget
from workbench.jupyter.widgets.graph import OntologyGraph
from workbench.jupyter.widgets.labeler import Labeler, default_author
from workbench.jupyter.widgets.review import ReviewWidget
from workbench.review.cells import proposal_cells
from workbench.review.gate import apply_proposal
from workbench.review.gate import gate as run_gate
from workbench.review.history import history, revert, why
from workbench.workspace.folder import Workspace

__all__ = ["Workbench", "open", "expect_output"]


class Workbench:
    """An open workspace with its widgets. Make one with :func:`workbench.open`."""

    def __init__(self, workspace: Workspace, *, author: str | None = None):
        self.workspace = workspace
        self._author = author

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
    def label(self, **filters: Any) -> Any:
        """The segment labeler (keyboard first). Filters: ``unlabelled``, ``concept``, ``image_class``,
        ``suggested``, ``least_certain``; also ``author``, ``settings_hash``, ``prefetch``."""
        filters.setdefault("author", self._author)
        return Labeler(self.workspace, **filters)

    def review(self, ref: str | int | None = None) -> Any:
        """Review a proposal (``ref``: "7", "0007", "proposals/0007.yaml"); None: the oldest pending one."""
        return ReviewWidget(self.workspace, ref, by=self.author)

    def graph(self) -> Any:
        """The ontology as an interactive graph; select a concept to see its card."""
        return OntologyGraph(self.workspace)

    def train(self, *, max_epochs: int | None = None, force: bool = False, start: bool = True) -> Any:
        """Train (only what changed) with a live dashboard, shown at once in a notebook so the bars move;
        ``start=False`` returns it with a Train button instead. Results: ``dash.outcome``."""
        dash = TrainingDashboard(self.workspace, max_epochs=max_epochs, force=force)
        return dash.show_and_run() if start else dash

    def explain(self, image: Any) -> Any:
        """Why the hybrid says what it says about one image (a store path like "daisy/0003.png", an
        image id, or an RGB array): each concept's score and the segment that made it fire."""
        return explain_widget(self.workspace, image)

    # -- the pull-request loop (workbench.review.gate, workbench.review.history, workbench.review.cells) ----------------------
    def apply(self, ref: Any, accept: Any = None, *, gate: bool = True, override: str | None = None) -> Any:
        """Run the merge gate on a proposal, then apply it (commit message: rationale, trailers, verdict).

        A "reject" verdict refuses (:class:`workbench.review.gate.GateRejected`) unless ``override="why"``;
        the override is recorded. ``gate=False`` applies without the gate. Returns the Verdict (or the
        Proposal when ungated).
        """
        p, verdict = apply_proposal(self.workspace, ref, accept, by=self.author, gate=gate, override=override)
        return verdict if verdict is not None else p

    def history(self, limit: int | None = None) -> list[Any]:
        """The changes to the ontology, newest first (:class:`workbench.review.history.Change`)."""
        return history(self.workspace, limit)

    def why(self, concept: str) -> Any:
        """Which proposal introduced ``concept`` and which last changed it, and why."""
        return why(self.workspace, concept)

    def revert(self, ref: Any, reason: str = "") -> Any:
        """Undo a change (proposal id or commit sha) as a new commit; refused if later changes conflict."""
        return revert(self.workspace, ref, by=self.author, reason=reason)

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
    """Open the workspace at ``path`` for the notebook (see :class:`Workbench`)."""
    return Workbench(Workspace.open(path), author=author)


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
