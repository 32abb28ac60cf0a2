"""Proposal review: a proposal's edits as a checklist, its evidence (the image, the segments an edit
touches), the diff, a before/after graph, the preview, and accept selected / edit / reject.

Everything a proposal carries is model (or person) text: titles, rationales, ops, lint warnings and
problems are escaped before they are shown, and nothing in them is ever run. Invalid edits are shown
with their problem and cannot be selected. Editing an op means editing its JSON in a textarea: it is
parsed and validated (:func:`workbench.ontology.edits.edit_from_dict`) as it is typed, and accepted only when
valid. Decisions go through :func:`workbench.review.decisions.accept` / :func:`~workbench.review.decisions.reject`
(which re-validate against the current ontology, commit, and record who decided).

A second reviewer's findings (:mod:`workbench.review.reviewers`) appear beside the diff and under each
edit they are about; a pending proposal that has none is reviewed when the widget first shows it, with
the workspace's ``reviewer`` setting (``none``: not). The findings are advice: only the buttons decide.
"""
from __future__ import annotations

import html
import json
import logging
from typing import TYPE_CHECKING, Any

import ipywidgets

from workbench.data.store import NONE
from workbench.errors import EditError, WorkbenchError
from workbench.jupyter.widgets._live import LiveDisplay
from workbench.jupyter.widgets._render import (
    ImageCache,
    crop_view,
    evidence_view,
    image_file,
    jpeg_data_url,
    png_data_url,
    svg_data_url,
    with_fallback,
)
from workbench.jupyter.widgets.graph import concept_info, static_svg
from workbench.ontology.edits import edit_from_dict
from workbench.review.decisions import accept, preview, reject
from workbench.review.reviewers import review_if_configured
from workbench.review.store import ProposalStore

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = ["ReviewWidget", "finding_html", "review_html"]

log = logging.getLogger(__name__)
_e = html.escape
#: Thumbnails shown per edit that moves labelled segments.
TOUCHED_THUMBS = 6
#: Colour and mark of a finding by severity.
_SEVERITY_STYLE = {"serious": ("#cf222e", "✖"), "warning": ("#9a6700", "⚠"), "info": ("#1a7f37", "✔")}


def finding_html(f: Any) -> str:
    """One finding as inert HTML: mark, severity, kind, the concept, the sentence, who found it."""
    colour, mark = _SEVERITY_STYLE.get(f.severity, ("#555", "•"))
    about = f" <code>{_e(f.about)}</code>" if f.about else ""
    by = "workbench check" if f.source == "check" else "reviewer"
    return (f"<div class='wb-finding wb-finding-{_e(f.severity)}' style='color:{colour};margin-left:1em'>"
            f"{mark} <b>{_e(f.severity)}</b> {_e(f.kind.replace('_', ' '))}{about}: "
            f"<span style='color:#333'>{_e(f.message)}</span> <small style='color:#777'>({by})</small></div>")


def review_html(p: Any, *, note: str = "") -> str:
    """The review block shown beside the diff: who reviewed and when, the summary, every finding."""
    r = p.review
    if r is None:
        return ("<div class='wb-findings'><b>Second reviewer</b><br><i>not reviewed yet</i>"
                + (f"<br><small style='color:#a00'>{_e(note)}</small>" if note else "")
                + f"<br><small>run <code>workbench review {_e(p.id or 'ID')} --workspace WS</code></small></div>")
    who = _e(r.reviewer) + (" <small>(scripted: authored findings, not model output)</small>" if r.scripted else "")
    counts = ", ".join(f"{n} {s}" for s, n in r.counts().items() if n) or "no findings"
    rows = []
    for f in r.findings:
        where = f"<small style='color:#777'>edit {f.edit}</small> " if f.edit is not None else ""
        rows.append(where + finding_html(f).replace("margin-left:1em", "margin-left:0;display:inline"))
    return ("<div class='wb-findings' style='max-width:520px;border-left:3px solid #ddd;padding-left:8px'>"
            f"<b>Second reviewer</b>: {who} · {_e(r.at)}<br><small>{_e(counts)} · advice only: you decide</small>"
            + (f"<div style='margin:4px 0'>{_e(r.summary)}</div>" if r.summary else "")
            + "".join(f"<div>{x}</div>" for x in rows) + "</div>")


class _EditRow:
    """One proposed edit: a checkbox, its text, and an optional JSON editor."""

    def __init__(self, index: int, pe: Any, on_change: Any, findings: Any = ()):
        self.index = index
        self.pe = pe
        self.findings = [f for f in findings if not f.is_lint]  # the lint is shown on its own line
        decided = pe.decision not in ("pending",)
        self.check = ipywidgets.Checkbox(value=pe.valid and not decided, disabled=not pe.valid or decided,
                                         indent=False, layout=ipywidgets.Layout(width="28px"))
        self.text = ipywidgets.HTML(self._text())
        self.edit_button = ipywidgets.ToggleButton(description="edit", disabled=not pe.valid or decided,
                                                   layout=ipywidgets.Layout(width="60px"))
        self.editor = ipywidgets.Textarea(value=json.dumps(pe.op, indent=1, ensure_ascii=False),
                                          layout=ipywidgets.Layout(width="520px", height="120px", display="none"))
        self.editor_note = ipywidgets.HTML()
        self.edited: dict | None = None
        self.edit_problem: str | None = None
        self.check.observe(lambda _c: on_change(), names=["value"])
        self.edit_button.observe(self._toggle, names=["value"])
        self.editor.observe(lambda _c: (self._parse(), on_change()), names=["value"])
        self.box = ipywidgets.VBox([
            ipywidgets.HBox([self.check, self.text, self.edit_button]),
            ipywidgets.HBox([self.editor, self.editor_note]),
        ])

    def _text(self) -> str:
        pe = self.pe
        colour = {"accepted": "#1a7f37", "rejected": "#cf222e", "not accepted": "#9a6700"}.get(pe.decision, "#555")
        parts = [(f"<b>{self.index}.</b> <code>{_e(pe.summary())}</code> "
                  f"<small class='wb-decision' style='color:{colour}'>({_e(pe.decision)})</small>")]
        if pe.rationale:
            parts.append(f"<div style='color:#333;margin-left:1em'>{_e(pe.rationale)}</div>")
        for w in pe.lint:
            parts.append(f"<div style='color:#a60;margin-left:1em'>⚠ lint: {_e(w)}</div>")
        if pe.problem:
            parts.append(f"<div style='color:#a00;margin-left:1em'>✖ cannot be applied: {_e(pe.problem)}</div>")
        parts += [finding_html(f) for f in self.findings]
        return "<div style='max-width:640px'>" + "".join(parts) + "</div>"

    def _toggle(self, change: dict[str, Any]) -> None:
        self.editor.layout.display = "" if change["new"] else "none"
        if not change["new"]:  # closing the editor drops the edit
            self.editor.value = json.dumps(self.pe.op, indent=1, ensure_ascii=False)

    def _parse(self) -> None:
        text = self.editor.value
        self.edited, self.edit_problem = None, None
        if text.strip() == json.dumps(self.pe.op, indent=1, ensure_ascii=False).strip():
            self.editor_note.value = ""
            return
        try:
            op = json.loads(text)
            if not isinstance(op, dict):
                raise ValueError("an op is a JSON object, e.g. {\"op\": \"rename\", \"old\": \"a\", \"new\": \"b\"}")
            edit_from_dict(op)
        except (ValueError, EditError) as err:
            self.edit_problem = str(err)
            self.editor_note.value = f"<span style='color:#a00'>✖ {_e(str(err))}</span>"
            return
        self.edited = op
        self.editor_note.value = "<span style='color:#070'>✔ valid op (will be used instead)</span>"


class ReviewWidget(LiveDisplay, ipywidgets.VBox):
    """Review one proposal of a workspace (``ref`` None: the oldest pending one)."""

    def __init__(self, workspace: Workspace, ref: Any = None, *, by: str, **kwargs: Any):
        self.workspace = workspace
        self.by = by
        self.proposal: Any = None
        self.rows: list[_EditRow] = []
        self._images = ImageCache(size=4)
        self._svgs: tuple[str, str] = ("", "")
        self._ref: Any = ref
        self.error = ipywidgets.HTML()
        self.header = ipywidgets.HTML()
        self.evidence = ipywidgets.HTML()
        self.touched = ipywidgets.HTML()
        self.checklist = ipywidgets.VBox()
        self.preview_html = ipywidgets.HTML()
        self.diff_html = ipywidgets.HTML()
        self.findings_html = ipywidgets.HTML()
        self._review_note = ""
        self.graphs = ipywidgets.HTML()
        self.note = ipywidgets.Text(placeholder="note / reason (optional)", layout=ipywidgets.Layout(width="420px"))
        self.accept_button = ipywidgets.Button(description="Accept selected", button_style="success", icon="check")
        self.reject_button = ipywidgets.Button(description="Reject", button_style="danger", icon="times")
        self.result = ipywidgets.HTML()
        self.accept_button.on_click(lambda _b: self._guard(self.accept))
        self.reject_button.on_click(lambda _b: self._guard(self.reject))
        super().__init__([self.error, self.header, self.evidence, self.checklist,
                          ipywidgets.HBox([self.accept_button, self.reject_button, self.note]), self.result,
                          self.preview_html, self.touched,
                          ipywidgets.HBox([self.diff_html, self.findings_html],
                                          layout=ipywidgets.Layout(flex_flow="row wrap", align_items="flex-start")),
                          self.graphs], **kwargs)
        self.add_class("wb-review")
        self._guard(self.load, ref)

    # -------------------------------------------------------------------------------------------
    def load(self, ref: Any = None) -> None:
        """Show proposal ``ref`` (None: the oldest pending one)."""
        store = ProposalStore(self.workspace)
        if ref is None:
            pending = store.list(status="pending")
            if not pending:
                self.proposal = None
                self.header.value = "<i>No pending proposals.</i>"
                self.checklist.children = ()
                self.evidence.value = self.touched.value = self.findings_html.value = ""
                self.preview_html.value = self.diff_html.value = self.graphs.value = ""
                self._set_buttons(False)
                return
            self.proposal = pending[0]
        else:
            self.proposal = store.load(ref)
        if self.proposal.status == "pending" and self.proposal.review is None:  # before the person reads it
            self.proposal, self._review_note = review_if_configured(self.workspace, self.proposal)
            self._review_note = self._review_note or ""
        p = self.proposal
        self._show_rows(p)
        self.header.value = self._header_html(p)
        self.evidence.value = self._evidence_html(p)
        self._set_buttons(p.status == "pending")
        self.result.value = self._status_html(p) if p.status != "pending" else ""
        self._changed()

    def refresh(self) -> None:
        """Read the proposal again (``wb.apply`` or another cell may have decided it) and redraw: its
        status, each edit's decision, the buttons. What ``wb.apply`` runs on the review widgets it showed."""
        ref = self.proposal.id if self.proposal is not None and self.proposal.id else self._ref
        self._guard(self.load, ref)
        self.update_displays()

    def _show_rows(self, p: Any) -> None:
        review = p.review
        self.rows = [_EditRow(i, pe, self._changed, review.for_edit(i) if review is not None else ())
                     for i, pe in enumerate(p.edits)]
        self.checklist.children = tuple(r.box for r in self.rows)
        self.findings_html.value = review_html(p, note=self._review_note)

    def selected(self) -> list[int]:
        """Indices of the checked edits."""
        return [r.index for r in self.rows if r.check.value and not r.check.disabled]

    def edited(self) -> dict[int, dict]:
        """Edits whose JSON was changed (and parses), by index; only checked ones count."""
        chosen = set(self.selected())
        return {r.index: r.edited for r in self.rows if r.edited is not None and r.index in chosen}

    def refresh_preview(self) -> None:
        """Recompute the preview, diff and before/after graphs for the current selection."""
        p = self.proposal
        if p is None:
            return
        if p.status != "pending":  # decided: the diff is in its commit; a preview would compare with the new ontology
            self.preview_html.value = ""
            self.diff_html.value = self.graphs.value = self.touched.value = ""
            return
        bad = [r for r in self.rows if r.edit_problem and r.check.value]
        if bad:
            self.preview_html.value = (f"<div style='color:#a00'>edit {bad[0].index}: its JSON is not a valid op; "
                                       "fix it or close the editor</div>")
            return
        if not self.selected():
            self.preview_html.value = "<i>no edit selected</i>"
            self.diff_html.value = self.graphs.value = self.touched.value = ""
            return
        try:
            pv = preview(self.workspace, p, self.selected(), self.edited())
        except WorkbenchError as err:
            self.preview_html.value = f"<div style='color:#a00'>{_e(str(err))}</div>"
            self.diff_html.value = self.graphs.value = self.touched.value = ""
            return
        touched = ", ".join(f"edit {i}: {n}" for i, n in sorted(pv.labels_touched.items()) if n) or "none"
        self.preview_html.value = (
            "<div><b>Preview</b>"
            + (" <span style='color:#a60'>(the ontology changed since this was proposed; edits re-validated)</span>"
               if pv.stale else "")
            + f"<br>added: {_e(', '.join(pv.added) or '—')} · removed: {_e(', '.join(pv.removed) or '—')} · "
              f"changed: {_e(', '.join(pv.changed) or '—')}"
            + (f"<br>provisional: {_e(', '.join(pv.provisional))} (trained and shown, combined by no parent until "
               "the gate shows a gain and you confirm it: wb.confirm)" if pv.provisional else "")
            + f"<br>labelled segments touched: {_e(touched)}"
            + f"<br>models to retrain: {_e(', '.join(pv.retrain) or 'none')}</div>"
        )
        self.diff_html.value = (f"<pre style='background:#f7f7f7;padding:6px;max-height:320px;overflow:auto'>"
                                f"{_e(pv.diff) or '(no change)'}</pre>")
        self.touched.value = self._touched_html(p, pv.labels_touched)
        info = concept_info(self.workspace)
        self._svgs = (static_svg(self.workspace.ontology, info), static_svg(pv.after, info))
        before, after = self._svgs
        # at their own size (12 px text), one under the other when the notebook is narrow; never shrunk
        self.graphs.value = (
            "<div style='display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start'>"
            f"<div style='max-width:100%;overflow-x:auto'><b>before</b><br>{before}</div>"
            f"<div style='max-width:100%;overflow-x:auto'><b>after</b><br>{after}</div></div>"
        )

    def accept(self, note: str | None = None) -> Any:
        """Accept the selected edits (with their edited JSON); commits through ``decisions.accept``."""
        if self.proposal is None:
            raise WorkbenchError("no proposal loaded")
        bad = [r.index for r in self.rows if r.edit_problem and r.check.value]
        if bad:
            raise WorkbenchError(f"edit {bad[0]}: the edited JSON is not a valid op; fix it or close its editor")
        done = accept(self.workspace, self.proposal, self.selected(), self.edited() or None, by=self.by,
                      note=self.note.value if note is None else note)
        self._decided(done, f"accepted {len(self.selected())} edit(s); ontology committed "
                            f"{(done.commit or '')[:12]}")
        return done

    def reject(self, reason: str | None = None) -> Any:
        """Reject the whole proposal (the ontology is untouched)."""
        if self.proposal is None:
            raise WorkbenchError("no proposal loaded")
        done = reject(self.workspace, self.proposal, by=self.by, reason=self.note.value if reason is None else reason)
        self._decided(done, "rejected")
        return done

    # -------------------------------------------------------------------------------------------
    def _decided(self, p: Any, what: str) -> None:
        self.proposal = p
        self.header.value = self._header_html(p)
        self._show_rows(p)  # each edit now says accepted / not accepted / rejected, never "(pending)"
        self._set_buttons(False)
        self._changed()
        self.result.value = f"<div style='color:#070'>Proposal {_e(p.id or '')} {_e(what)} (status: {_e(p.status)})</div>"
        self.update_displays()

    @staticmethod
    def _status_html(p: Any) -> str:
        colour = {"accepted": "#1a7f37", "rejected": "#cf222e"}.get(p.status, "#9a6700")
        commit = f" as commit {_e(p.commit[:12])}" if p.commit else ""
        return f"<div style='color:{colour}'>Proposal {_e(p.id or '')} is {_e(p.status)}{commit}</div>"

    # ----------------------------------------------------------------------------------- evidence
    def _evidence_html(self, p: Any) -> str:
        """The image the proposal was made from, with the evidence segments outlined (if it can be read)."""
        ev = p.evidence
        if not ev.image:
            return (f"<div class='wb-evidence'><small>evidence: segments {_e(', '.join(str(s) for s in ev.segments))}"
                    "</small></div>") if ev.segments else ""
        try:
            pixels = self._images.get(image_file(self.workspace, ev.image))
            segs = []
            for sid in ev.segments:
                try:
                    segs.append(self.workspace.store.segment(int(sid)))
                except (WorkbenchError, KeyError, ValueError):
                    continue
            url = jpeg_data_url(evidence_view(pixels, segs, 256))
        except WorkbenchError as err:  # the image moved or is unreadable: say so, keep reviewing
            return f"<div class='wb-evidence'><small>evidence image {_e(ev.image)}: {_e(str(err))}</small></div>"
        what = f"segments {', '.join(str(s) for s in ev.segments)} outlined" if segs else "the whole image"
        return (f"<div class='wb-evidence' style='margin:4px 0'><img src='{url}' alt='evidence {_e(ev.image)}' "
                f"style='max-width:256px;border:1px solid #ddd'><br><small>evidence: {_e(ev.image)} ({_e(what)})"
                "</small></div>")

    def _touched_html(self, p: Any, touched: dict[int, int]) -> str:
        """Per edit that moves labelled segments: how many, and a few of them as thumbnails."""
        store = self.workspace.store
        known = set(self.workspace.ontology.concepts) | {NONE}
        blocks = []
        for i, n in sorted(touched.items()):
            if not n or i >= len(p.edits):
                continue
            concepts = sorted(_concepts_in(p.edits[i].op) & known)
            thumbs = []
            for c in concepts:
                for row in store.labels(concept=c)[:TOUCHED_THUMBS]:
                    if len(thumbs) >= TOUCHED_THUMBS:
                        break
                    try:
                        seg = store.segment(row.segment_id)
                        pixels = self._images.get(image_file(self.workspace, store.image(seg.image_id).path))
                        thumbs.append(f"<img src='{png_data_url(crop_view(pixels, seg, 64))}' width='64' height='64' "
                                      f"title='segment {seg.id}: {_e(c)}' style='margin:2px;background:#111'>")
                    except WorkbenchError as err:
                        log.info("review thumbnails: %s", err)
            blocks.append(f"<div><small>edit {i} moves {n} labelled segment(s) of {_e(', '.join(concepts) or '?')}"
                          f"</small><br>{''.join(thumbs)}</div>")
        return "<div class='wb-touched'>" + "".join(blocks) + "</div>" if blocks else ""

    # ----------------------------------------------------------------------------------- display
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_fallback(super()._repr_mimebundle_(**kwargs), "Workbench proposal review", self._fallback_body)

    def _fallback_body(self) -> str:
        rows = "".join(r.text.value for r in self.rows)
        graphs = ""
        if self.proposal is not None and self.proposal.status == "pending" and self.graphs.value:
            graphs = "".join(f"<div><b>{what}</b><br><img src='{svg_data_url(svg)}' alt='ontology {what}' "
                             "style='max-width:100%'></div>" for what, svg in zip(("before", "after"), self._svgs))
        return (self.header.value + self.evidence.value + rows + self.result.value + self.preview_html.value
                + self.findings_html.value + graphs)

    def _set_buttons(self, on: bool) -> None:
        self.accept_button.disabled = not on
        self.reject_button.disabled = not on

    def _changed(self) -> None:
        self._guard(self.refresh_preview)

    @staticmethod
    def _header_html(p: Any) -> str:
        gate = (p.gate or {}).get("summary")
        gate_line = f"<br><small>Gate: {_e(str(gate))}</small>" if gate else ""
        return (f"<div><h4 style='margin:2px 0'>Proposal {_e(p.id or '(unsaved)')}: {_e(p.title)}</h4>"
                f"<small>{_e(p.kind)} by {_e(p.author)} · {_e(p.created)} · status "
                f"<b class='wb-status'>{_e(p.status)}</b></small>{gate_line}"
                f"<div style='margin:4px 0'>{_e(p.rationale)}</div></div>")

    def close(self) -> None:
        self._images.close()
        self._closed = True
        super().close()

    def _guard(self, fn: Any, *args: Any) -> Any:
        self.error.value = ""
        try:
            return fn(*args)
        except Exception as err:  # noqa: BLE001 - shown to the reviewer
            log.warning("review: %s", err)
            self.error.value = (f"<div style='color:#a00;white-space:pre-wrap'>{_e(type(err).__name__)}: "
                                f"{_e(str(err))}</div>")
            return None


def _concepts_in(op: Any) -> set[str]:
    """Every text value of an op (and of the lists in it): the concept ids it names, among other words."""
    out: set[str] = set()
    if isinstance(op, dict):
        for k, v in op.items():
            if k in ("op", "description", "label", "rule"):
                continue
            out |= _concepts_in(v)
    elif isinstance(op, (list, tuple)):
        for v in op:
            out |= _concepts_in(v)
    elif isinstance(op, str):
        out.add(op)
    return out
