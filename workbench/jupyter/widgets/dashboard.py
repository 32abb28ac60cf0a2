"""The training dashboard and the explanation view.

:class:`TrainingDashboard` trains the workspace's hybrid (only what changed, as
:func:`workbench.models.train.train_hybrid` plans it; the training job of :mod:`workbench.models.job`)
with a progress bar per concept that moves as each model trains, its validation loss and balanced accuracy as
soon as it is fitted, then the final table (concept, balanced accuracy, status, parameters, examples), the hybrid's line
and, when the workspace has a ``report.json`` (``workbench run``), the same-budget baseline's line.
:func:`explain_widget` shows which concept fired on which segment of one image.
"""
from __future__ import annotations

import html
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets

from workbench.evaluation.pipeline import evaluate, train
from workbench.evaluation.report import RED, render_explanation, status_text
from workbench.models.inference import explain_image  # noqa: F401 - public here too (notebooks import it)

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = ["TrainingDashboard", "explain_widget", "train_workspace", "load_report", "explain_image"]

log = logging.getLogger(__name__)


def train_workspace(
    workspace: Workspace, *, max_epochs: int | None = None, force: bool = False,
    progress: Any = None, on_fitted: Any = None, on_problem: Any = None,
) -> dict[str, Any]:
    """Collect, split, train (incrementally) and measure, as ``workbench train`` does (the pipeline's
    train and evaluate stages); returns ``{"result", "concepts", "hybrid", "images", "segments"}``."""
    trained = evaluate(train(workspace, max_epochs=max_epochs or None, force=force, progress=progress,
                             on_fitted=on_fitted, on_problem=on_problem))
    return {"result": trained.result, "concepts": trained.concepts, "hybrid": trained.hybrid,
            "images": trained.images, "segments": trained.segments}


def load_report(workspace: Workspace) -> dict[str, Any] | None:
    """The ``report.json`` of ``workbench run`` for this workspace (next to it or inside it), if any."""
    for p in (Path(workspace.path) / "report.json", Path(workspace.path).parent / "report.json"):
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "baseline" in data:
            return data
    return None


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where ``display`` reaches a front end)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _bad_style(m: dict[str, Any]) -> str:
    """A table row's style: red for a weak or dead concept."""
    return f" style='color:{RED}'" if m.get("status") in ("weak", "dead") else ""


def _pct(v: Any) -> str:
    return "–" if v is None else f"{float(v):.1%}"


class TrainingDashboard(ipywidgets.VBox):
    """Train with a live view: ``dash.run()`` (``wb.train()`` calls it), or the Train button."""

    def __init__(self, workspace: Workspace, *, max_epochs: int | None = None, force: bool = False, **kwargs: Any):
        self.workspace = workspace
        self.max_epochs = max_epochs
        self.force = force
        self.outcome: dict[str, Any] | None = None
        self.bars: dict[str, ipywidgets.FloatProgress] = {}
        self.status: dict[str, ipywidgets.HTML] = {}
        self.button = ipywidgets.Button(description="Train", icon="play", tooltip="train what changed")
        self.button.on_click(lambda _b: self.run())
        self.error = ipywidgets.HTML()
        self.note = ipywidgets.HTML()
        self.table = ipywidgets.HTML()
        self.explain_box = ipywidgets.Text(placeholder="image, e.g. daisy/0003.png", description="explain")
        self.explain_button = ipywidgets.Button(description="Explain")
        self.explain_button.on_click(lambda _b: self._guard(self._explain_clicked))
        self.explanation = ipywidgets.HTML()
        rows = self._rows()
        super().__init__([ipywidgets.HBox([self.button, self.note]), self.error, rows, self.table,
                          ipywidgets.HBox([self.explain_box, self.explain_button]), self.explanation], **kwargs)

    def _rows(self) -> ipywidgets.VBox:
        o = self.workspace.ontology
        lines = []
        for c in o.bottom_up():
            bar = ipywidgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout=ipywidgets.Layout(width="220px"))
            st = ipywidgets.HTML("waiting")
            self.bars[c], self.status[c] = bar, st
            lines.append(ipywidgets.HBox([ipywidgets.HTML(f"<code>{html.escape(c)}</code>",
                                                          layout=ipywidgets.Layout(width="140px")), bar, st]))
        return ipywidgets.VBox(lines)

    def show_and_run(self) -> TrainingDashboard:
        """In a notebook: show the dashboard now (so the bars move while training), then train.

        The returned dashboard does not display a second copy of itself; elsewhere this is just :meth:`run`.
        """
        if _in_kernel():
            from IPython.display import display

            display(self)
            self._displayed = True
        self.run()
        return self

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if getattr(self, "_displayed", False):  # already on screen (show_and_run): say so in text only
            return {"text/plain": repr(self)}
        return super()._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        if self.outcome is None:
            return f"TrainingDashboard({self.workspace!r}: not trained yet; .run() trains)"
        r = self.outcome["result"]
        return (f"TrainingDashboard({self.workspace!r}: retrained {', '.join(r.retrained) or 'nothing'}; "
                f"hybrid val accuracy {_pct(self.outcome['hybrid'].get('val_accuracy'))})")

    # -------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any] | None:
        """Train now; the bars and lines update as it goes. Returns what :func:`train_workspace` returns
        (None when it failed: the error is shown in the widget)."""
        self.error.value = ""
        self.button.disabled = True
        self.note.value = "training…"
        self._t0 = time.perf_counter()
        problems: list[str] = []
        try:
            self.outcome = train_workspace(
                self.workspace, max_epochs=self.max_epochs, force=self.force, progress=self._progress,
                on_fitted=self._fitted, on_problem=lambda p, r: problems.append(f"{p}: {r}"),
            )
        except Exception as e:  # noqa: BLE001 - shown to the person, who can act on it
            log.warning("training dashboard: %s", e)
            self._show_error(e)
            self.note.value = "training failed"
            return None
        finally:
            self.button.disabled = False
        result = self.outcome["result"]
        for c in self.bars:
            if c not in result.retrained:
                self.bars[c].value = 1.0
                self.bars[c].bar_style = "info"
                self._line(c, result.models.get(c), "kept (unchanged)")
        self.note.value = (f"done in {time.perf_counter() - self._t0:.1f} s: retrained "
                           f"{html.escape(', '.join(result.retrained) or 'nothing (all unchanged)')}")
        if problems:
            self.note.value += f"<br><span style='color:#a00'>{len(problems)} image(s) skipped: {html.escape(problems[0])}</span>"
        self.table.value = self.table_html(self.outcome)
        return self.outcome

    def table_html(self, outcome: dict[str, Any]) -> str:
        """The final table and the hybrid (and baseline, if a report exists) lines; text escaped."""
        e = html.escape
        head = ("<tr><th>concept</th><th>kind</th><th>implementation</th><th>val balanced accuracy</th><th>status</th>"
                "<th>parameters</th><th>train examples</th></tr>")
        body = "".join(
            f"<tr{_bad_style(m)}><td><code>{e(c)}</code></td><td>{e(str(m['kind']))}</td><td>{e(str(m['implementation']))}</td>"
            f"<td>{_pct(m.get('val_balanced_accuracy'))}</td><td>{e(status_text(m))}</td>"
            f"<td>{e(str(m['params']))}</td><td>{e(str(m.get('train_examples', '–')))}</td></tr>"
            for c, m in outcome["concepts"].items())
        h = outcome["hybrid"]
        cls = [f"<tr><td>hybrid ({e(str(h.get('mode', 'segments')))}), this training</td><td>{_pct(h.get('val_accuracy'))}</td>"
               f"<td>{_pct(h.get('balanced_accuracy'))}</td><td>{e(str(h.get('params')))}</td></tr>"]
        report = load_report(self.workspace)
        if report:
            b = report.get("baseline") or {}
            cls.append(f"<tr><td>same-budget CNN baseline (report.json)</td><td>{_pct(b.get('val_accuracy'))}</td>"
                       f"<td>{_pct(b.get('balanced_accuracy'))}</td><td>{e(str(b.get('params', '–')))}</td></tr>")
        else:
            cls.append("<tr><td colspan='4'><i>no report.json: run `workbench run` for the baseline line</i></td></tr>")
        style = "<style>.wb-t td,.wb-t th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style>"
        return (style + f"<table class='wb-t'>{head}{body}</table><table class='wb-t'><tr><th>classifier</th>"
                f"<th>val accuracy</th><th>balanced accuracy</th><th>parameters</th></tr>{''.join(cls)}</table>")

    def explain(self, image: Any) -> None:
        """Show :func:`explain_widget`'s view of ``image`` below the table."""
        self.explanation.value = explain_html(self.workspace, image)

    # -------------------------------------------------------------------------------------------
    def _progress(self, concept: str, what: str) -> None:
        bar = self.bars.get(concept)
        if bar is None:
            return
        if what == "training":
            bar.value, bar.bar_style = 0.5, ""
            self.status[concept].value = "training…"
        elif what == "done":
            bar.value, bar.bar_style = 1.0, "success"

    def _fitted(self, concept: str, model: Any) -> None:
        self._line(concept, model, "trained")

    def _line(self, concept: str, model: Any, verb: str) -> None:
        m = getattr(model, "metrics_", {}) or {}
        loss = m.get("val_balanced_loss", m.get("val_log_loss"))
        parts = [verb, f"val balanced accuracy {_pct(m.get('val_balanced_accuracy'))}"]
        if loss is not None:
            parts.append(f"val loss {float(loss):.3f}")
        if m.get("n_params") is not None:
            parts.append(f"{m['n_params']} params")
        if m.get("fit_seconds") is not None and verb == "trained":
            parts.append(f"{m['fit_seconds']:.1f} s")
        self.status[concept].value = html.escape(" · ".join(parts))

    def _explain_clicked(self) -> None:
        self.explain(self.explain_box.value.strip())

    def _show_error(self, e: Exception) -> None:
        self.error.value = (f"<div style='color:#a00;white-space:pre-wrap'>{html.escape(type(e).__name__)}: "
                            f"{html.escape(str(e))}</div>")

    def _guard(self, fn: Any) -> None:
        self.error.value = ""
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            log.warning("training dashboard: %s", e)
            self._show_error(e)


# ----------------------------------------------------------------------------------------------- explain
def explain_html(workspace: Workspace, image: Any) -> str:
    import base64

    pixels, ex, name = explain_image(workspace, image)
    png = base64.b64encode(render_explanation(pixels, ex, size=320)).decode("ascii")
    return (f"<div style='display:flex;gap:10px;align-items:flex-start'><img src='data:image/png;base64,{png}' "
            f"alt='{html.escape(name)}'><div><b>{html.escape(name)}</b><pre>{html.escape(str(ex))}</pre></div></div>")


def explain_widget(workspace: Workspace, image: Any) -> ipywidgets.HTML:
    """An HTML widget: the image with each fired part's segment boxed, and every concept's score."""
    try:
        return ipywidgets.HTML(explain_html(workspace, image))
    except Exception as e:  # noqa: BLE001 - shown, not swallowed
        log.warning("explain: %s", e)
        return ipywidgets.HTML(f"<div style='color:#a00'>{html.escape(type(e).__name__)}: {html.escape(str(e))}</div>")
