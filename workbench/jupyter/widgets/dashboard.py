"""The training dashboard and the explanation view.

:class:`TrainingDashboard` trains the workspace's hybrid (only what changed, as
:func:`workbench.models.train.train_hybrid` plans it; the training job of :mod:`workbench.models.job`)
with a progress bar per concept that moves as each model trains, its validation loss and balanced accuracy as
soon as it is fitted, then the final table (concept, balanced accuracy, status, parameters, examples), the hybrid's line
and, when the workspace has a ``report.json`` (``workbench run``), that report's methods on its test images (the
hybrid, the CNN at both budgets, the part-blind baselines), labelled as such: this training's figures are
validation figures, the report's are test figures.
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
from workbench.evaluation.report import RED, method_rows, status_text
from workbench.jupyter.widgets._render import _resize, jpeg_data_url, with_fallback
from workbench.models.inference import explain_image

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
        if isinstance(data, dict) and "baselines" in data and "hybrid" in data:
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

    def __init__(self, workspace: Workspace, *, max_epochs: int | None = None, force: bool = False,
                 on_done: Any = None, **kwargs: Any):
        self.workspace = workspace
        self.max_epochs = max_epochs
        self.force = force
        self.on_done = on_done  # called after a successful run (wb.train refreshes its other widgets)
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
        self.add_class("wb-dashboard")

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
        handle = None
        if _in_kernel():
            from IPython.display import display

            handle = display(self, display_id=True)
            self._displayed = True
        self.run()
        if handle is not None:  # the same output again, its saved stand-in now showing the results
            handle.update(self._bundle(), raw=True)
        return self

    def _bundle(self, **kwargs: Any) -> Any:
        """The widget view with its static stand-in (the table as it is now) for a saved notebook."""
        return with_fallback(super()._repr_mimebundle_(**kwargs), "Workbench training dashboard",
                             lambda: self.note.value + self.error.value + self.table.value + self.explanation.value)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if getattr(self, "_displayed", False):  # already on screen (show_and_run): say so in text only
            return {"text/plain": repr(self)}
        return self._bundle(**kwargs)

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
        if self.on_done is not None:
            self.on_done()
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
        cls = [f"<tr><td>hybrid ({e(str(h.get('mode', 'segments')))}), this training</td>"
               f"<td>{_pct(h.get('val_balanced_accuracy'))}</td><td>validation</td><td>{e(str(h.get('params')))}</td></tr>"]
        report = load_report(self.workspace)
        if report:
            for r in method_rows(report):
                cls.append(f"<tr><td>{e(r['name'])} (report.json)</td><td>{_pct(r['test'])}</td><td>test</td>"
                           f"<td>{e(str(r['params']))}</td></tr>")
        else:
            cls.append("<tr><td colspan='4'><i>no report.json: `workbench run` measures the hybrid against the CNNs and "
                       "part-blind baselines on test images</i></td></tr>")
        style = "<style>.wb-t td,.wb-t th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style>"
        return (style + f"<table class='wb-t'>{head}{body}</table><table class='wb-t'><tr><th>classifier</th>"
                f"<th>balanced accuracy</th><th>on</th><th>parameters</th></tr>{''.join(cls)}</table>")

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
#: Colours of the boxes drawn around the parts that fired (one per part, in order).
_BOX_COLOURS = ("#e8175d", "#0a64d6", "#16833a", "#d06000", "#7b3fc4", "#00838f")


def explain_html(workspace: Workspace, image: Any, size: int = 384) -> str:
    """The image with each fired part's winning segment boxed, its name and score in a readable label
    (HTML over the picture, not pixels drawn into it), and every concept's score once, beside it."""
    pixels, ex, name = explain_image(workspace, image)
    h, w = pixels.shape[:2]
    scale = size / max(h, w)
    shown = _resize(pixels, round(w * scale), round(h * scale))
    e = html.escape
    boxes = []
    fired = sorted((c for c in ex.concepts.values() if c.bbox is not None and c.score >= ex.threshold),
                   key=lambda c: c.concept)
    for i, c in enumerate(fired):
        x0, y0, x1, y1 = (v * scale for v in c.bbox)
        col = _BOX_COLOURS[i % len(_BOX_COLOURS)]
        label_top = "top:-19px" if y0 >= 19 else "bottom:-19px"
        boxes.append(
            f"<div style='position:absolute;left:{x0:.0f}px;top:{y0:.0f}px;width:{max(2, x1 - x0):.0f}px;"
            f"height:{max(2, y1 - y0):.0f}px;border:2px solid {col};box-sizing:border-box'>"
            f"<span style='position:absolute;left:-2px;{label_top};background:{col};color:#fff;font:12px/17px sans-serif;"
            f"padding:0 4px;border-radius:3px;white-space:nowrap'>{e(c.concept)} {c.score:.2f}</span></div>")
    picture = (f"<div style='position:relative;width:{shown.shape[1]}px;height:{shown.shape[0]}px;margin-top:20px;"
               f"flex:none'><img src='{jpeg_data_url(shown)}' alt='{e(name)}' width='{shown.shape[1]}' "
               f"height='{shown.shape[0]}' style='display:block'>{''.join(boxes)}</div>")
    return (f"<div class='wb-explain' style='display:flex;gap:14px;align-items:flex-start;flex-wrap:wrap'>{picture}"
            f"<div><b>{e(name)}</b><pre style='margin:4px 0'>{e(str(ex))}</pre></div></div>")


class ExplanationView(ipywidgets.HTML):
    """An HTML widget whose saved copy (a notebook reopened without its kernel) shows the same picture."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_fallback(super()._repr_mimebundle_(**kwargs), "Workbench explanation", lambda: self.value)


def explain_widget(workspace: Workspace, image: Any) -> ipywidgets.HTML:
    """An HTML widget: the image with each fired part's segment boxed, and every concept's score."""
    try:
        return ExplanationView(explain_html(workspace, image))
    except Exception as e:  # noqa: BLE001 - shown, not swallowed
        log.warning("explain: %s", e)
        return ExplanationView(f"<div style='color:#a00'>{html.escape(type(e).__name__)}: {html.escape(str(e))}</div>")
