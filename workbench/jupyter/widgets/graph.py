"""The ontology as an interactive graph (networkx + pyvis, offline) with a card per concept.

Nodes are coloured by validation balanced accuracy (red 50% → green 100%, grey: no model yet; red
whatever the number when :func:`workbench.evaluation.health.concept_status` calls the concept weak or
dead, the reason in its tooltip and card) and sized by
parameters, read from the ``models/<concept>.json`` sidecars training writes; rules are diamonds,
nets are circles. The pyvis page (vis-network inlined, ~700 KB, no CDN) runs in an isolated iframe
(``srcdoc``, ``sandbox="allow-scripts"`` without same-origin, a Content-Security-Policy that allows no
network): clicking a node posts its id to the widget, which shows that concept's card: description,
implementation, parameters, balanced accuracy and status, example segments, and the accepted proposals that touched it.
:meth:`OntologyGraph.save_svg` writes the static picture the report uses.
"""
from __future__ import annotations

import html
import json
import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets
import traitlets

from workbench._io import atomic_write_text
from workbench.errors import WorkbenchError
from workbench.evaluation.health import concept_status, facts_from_metrics
from workbench.evaluation.report import (
    RED,
    accuracy_colour,
    concept_colour,
    ontology_svg,
    status_text,
)
from workbench.jupyter.widgets._live import LiveDisplay
from workbench.jupyter.widgets._render import (
    ImageCache,
    crop_view,
    image_file,
    png_data_url,
    svg_data_url,
    with_fallback,
)
from workbench.models.store import ModelStore
from workbench.review.provisional import provisional_status
from workbench.review.queries import proposals_touching

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = ["OntologyGraph", "GraphFrame", "concept_info", "graph_html", "accuracy_colour", "static_svg"]

log = logging.getLogger(__name__)
_STATIC = Path(__file__).parent / "_static"
_PALETTE = [(200, 60, 60), (230, 160, 40), (120, 180, 60), (40, 150, 80)]
_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
        "font-src data:")
_REMOTE = re.compile(r"<(?:link|script)\b[^>]*(?:href|src)=\"https?://[^\"]*\"[^>]*>(?:\s*</script>)?", re.I)


def concept_info(workspace: Workspace) -> dict[str, dict[str, Any]]:
    """Per concept, from its model sidecar (the ``metrics_`` recorded at training, as the sidebar
    shows them): ``val_balanced_accuracy``, ``params``, and ``status``/``status_reason`` from
    :func:`workbench.evaluation.health.concept_status` (all None when not trained)."""
    out: dict[str, dict[str, Any]] = {}
    store = ModelStore(workspace.models_dir)
    onto = workspace.ontology
    for c in onto.concepts:
        info: dict[str, Any] = {"val_balanced_accuracy": None, "params": None, "trained": False,
                                "status": None, "status_reason": None}
        m = store.metrics(c)
        if m is not None:
            bal = m.get("val_balanced_accuracy")
            status, reason = concept_status(facts_from_metrics(m), "segment" if onto.kind(c) == "part" else "image")
            info = {"val_balanced_accuracy": float(bal) if isinstance(bal, (int, float)) else None,
                    "params": m.get("n_params"), "trained": True, "status": status, "status_reason": reason,
                    "val_examples": m.get("val_examples"), "train_examples": m.get("train_examples")}
        info["provisional"] = onto.concepts[c].provisional  # trained and shown, not yet combined by its parents
        out[c] = info
    return out


def static_svg(ontology: Any, info: dict[str, dict[str, Any]]) -> str:
    """The report's SVG of ``ontology`` (:func:`workbench.evaluation.report.ontology_svg`) with each
    concept's parameters and balanced accuracy from ``info`` (:func:`concept_info`); a concept without a
    model reads "untrained" rather than "? p · –"."""
    svg = ontology_svg(ontology, {c: {**v, "params": v["params"] if v.get("params") is not None else "?"}
                                  for c, v in info.items()})
    return svg.replace(" · ? p · –", " · untrained")


def graph_html(ontology: Any, info: dict[str, dict[str, Any]], height: int = 460) -> str:
    """A self-contained pyvis page of the ontology that posts ``{wbSelect: id}`` to its parent on a click."""
    from pyvis.network import Network

    net = Network(height=f"{height - 20}px", width="100%", directed=True, cdn_resources="in_line")
    net.set_options(json.dumps({
        "layout": {"hierarchical": {"enabled": True, "direction": "UD", "sortMethod": "directed",
                                    "levelSeparation": 110, "nodeSpacing": 190}},
        "physics": {"enabled": False},
        "interaction": {"hover": True},
        "nodes": {"font": {"size": 14, "multi": False}, "widthConstraint": {"maximum": 170}},
        "edges": {"arrows": {"to": {"enabled": True, "scaleFactor": 0.6}}, "color": "#888"},
    }))
    for c in ontology.bottom_up()[::-1]:
        concept = ontology.concepts[c]
        i = info.get(c, {})
        acc, params = i.get("val_balanced_accuracy"), i.get("params")
        rule = concept.implementation == "rule"
        bad = i.get("status") in ("weak", "dead")
        impl = "rule" if rule else "net"
        if acc is None:
            sub = f"{impl} · untrained"
        else:
            sub = f"{impl} · {params} p\nbal. acc. {acc:.0%}" + (f" · {i['status']}" if bad else "")
        if concept.provisional:
            sub += "\nprovisional"
        net.add_node(
            c, label=f"{concept.label}\n{sub}", shape="diamond" if rule else "dot",
            color={"background": concept_colour(i), "border": "#9a6700" if concept.provisional else "#333"},
            size=10 + 3 * math.log2(1 + (params or 0)), borderWidth=3 if c == ontology.root or concept.provisional else 1,
            title=html.escape(f"{c}: {concept.description}" + (f" — {status_text(i)}" if bad else "")
                              + (" — provisional: not yet combined by its parents" if concept.provisional else "")),
            shapeProperties={"borderDashes": [5, 3]} if rule or concept.provisional else {},
        )
    for a, b in ontology.edges():
        if ontology.concepts[b].provisional:  # not (yet) an input of a's model
            net.add_edge(a, b, dashes=True, color="#9a6700", title="provisional: not yet combined")
        else:
            net.add_edge(a, b)
    page = net.generate_html()
    page = _REMOTE.sub("", page)  # pyvis links bootstrap from a CDN; the graph does not need it
    page = page.replace("<head>", f'<head><meta http-equiv="Content-Security-Policy" content="{_CSP}">', 1)
    # the graph fills its frame exactly: no page margin, no border, so no scrollbar inside the notebook's
    fit = ("<style>html,body{margin:0;padding:0;overflow:hidden}.card{border:0!important}"
           "#mynetwork{height:100vh!important;width:100%!important;border:0!important;float:none!important}</style>")
    page = page.replace("</head>", fit + "</head>", 1)
    hook = ("<script>if (typeof network !== 'undefined') { network.on('selectNode', function (p) {"
            " parent.postMessage({wbSelect: String(p.nodes[0])}, '*'); }); }</script>")
    return page.replace("</body>", hook + "</body>", 1)


class GraphFrame(anywidget.AnyWidget):
    """An isolated iframe showing ``srcdoc``; a node clicked inside sets ``selected``."""

    _esm = _STATIC / "graph.js"
    srcdoc = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    height = traitlets.Int(460).tag(sync=True)


class OntologyGraph(LiveDisplay, ipywidgets.VBox):
    """The workspace's ontology as a graph with a concept card. ``select(id)`` or click a node."""

    def __init__(self, workspace: Workspace, *, height: int = 460, examples: int = 6, **kwargs: Any):
        self.workspace = workspace
        self.examples = examples
        self._images = ImageCache(size=4)
        self.frame = GraphFrame(height=height)
        self.picker = ipywidgets.Dropdown(description="concept", options=[])
        self.card = ipywidgets.HTML()
        self.error = ipywidgets.HTML()
        super().__init__([self.error, ipywidgets.HBox([self.picker]), self.frame, self.card], **kwargs)
        self.add_class("wb-graph")
        self.frame.observe(self._on_frame, names=["selected"])
        self.picker.observe(self._on_pick, names=["value"])
        self._guard(self.refresh)

    # ---------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the ontology and the model sidecars and redraw."""
        o = self.workspace.ontology
        self.info = concept_info(self.workspace)
        self.frame.srcdoc = graph_html(o, self.info, self.frame.height)
        current = self.picker.value
        self.picker.options = [(f"{o.concepts[c].label} ({c})", c) for c in o.bottom_up()[::-1]]
        self.select(current if current in o.concepts else o.root)  # redraws the card: its metrics may be new
        self.update_displays()

    def select(self, concept: str) -> None:
        """Show ``concept``'s card (what clicking its node does)."""
        o = self.workspace.ontology
        if concept not in o.concepts:
            raise WorkbenchError(f"no concept {concept!r} in the ontology ({', '.join(o.concepts)})")
        if self.picker.value != concept:
            self.picker.value = concept  # triggers _on_pick → card
            return
        self.card.value = self.card_html(concept)

    def _provisional_line(self, concept: str) -> str:
        """Where a provisional concept stands: labels against what the gate needs, the last verdict, what next."""
        try:
            [st] = provisional_status(self.workspace, [concept])
        except WorkbenchError as err:
            return f"not yet combined by its parents ({err})"
        nxt = (f"wb.confirm({concept!r}) or wb.remove({concept!r})" if st.verdict is not None
               else "label it, train, then wb.provisional()")
        return f"not yet combined by {', '.join(st.parents)}; {st.line().split(': ', 1)[1]} · next: {nxt}"

    def card_html(self, concept: str) -> str:
        """The concept's card as inert HTML (all text escaped; pictures are data URLs made here)."""
        e = html.escape
        o = self.workspace.ontology
        c = o.concepts[concept]
        i = self.info.get(concept, {}) if hasattr(self, "info") else {}
        acc = i.get("val_balanced_accuracy")
        bad = i.get("status") in ("weak", "dead")
        status = (f"<span style='color:{RED};font-weight:bold'>{e(str(i['status']))}</span>: {e(i.get('status_reason') or '')}"
                  if bad else e(str(i.get("status") or "—")))
        impl = "rule " + e(c.rule or "") if c.implementation == "rule" else "net"
        counts = self.workspace.store.counts()
        rows = [
            ("kind", e(o.kind(concept))),
            ("implementation", impl),
            ("parts", e(", ".join(o.parts(concept)) or "—")),
            ("part of", e(", ".join(o.parents(concept)) or "—")),
            ("parameters", e(str(i.get("params"))) if i.get("params") is not None else "— (not trained)"),
            ("validation balanced accuracy", (f"{acc:.1%}" if acc is not None else "—") + (f" · {status}" if bad else "")),
            ("labelled segments", str(counts.get(concept, 0))),
        ]
        if c.provisional:
            rows.append(("provisional", e(self._provisional_line(concept))))
        table = "".join(f"<tr><th style='text-align:left;padding-right:8px'>{k}</th><td>{v}</td></tr>" for k, v in rows)
        thumbs = "".join(f"<img src='{u}' width='64' height='64' title='segment {s}' style='margin:2px;background:#111'>"
                         for s, u in self._examples(concept))
        props = self._proposals(concept)
        return (
            f"<div class='wb-card' style='border:1px solid #ccc;border-radius:6px;padding:8px;max-width:820px'>"
            f"<h4 style='margin:0 0 4px 0'>{e(c.label)} <code>{e(concept)}</code></h4>"
            f"<p style='margin:4px 0'>{e(c.description) or '<i>no description</i>'}</p>"
            f"<table>{table}</table>"
            f"<div><b>examples</b><br>{thumbs or '<i>no labelled segments yet</i>'}</div>"
            f"<div><b>proposals that touched it</b>{props}</div></div>"
        )

    def static_svg(self) -> str:
        """The graph as the report draws it (SVG), with the metrics of the saved models."""
        return static_svg(self.workspace.ontology, concept_info(self.workspace))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_fallback(super()._repr_mimebundle_(**kwargs), "Workbench ontology graph",
                             lambda: f"<img src='{svg_data_url(self.static_svg())}' alt='ontology graph' "
                                     f"style='max-width:100%'>{self.card.value}")

    def close(self) -> None:
        self._images.close()
        self._closed = True
        super().close()

    def save_svg(self, path: str | Path) -> Path:
        """Write the static graph (``workbench.evaluation.report.ontology_svg``, as in the report) to ``path``."""
        path = Path(path)
        atomic_write_text(path, self.static_svg())
        return path

    # ---------------------------------------------------------------------------------------------
    def _examples(self, concept: str) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        store = self.workspace.store
        for row in store.labels(concept=concept)[: self.examples * 3]:
            if len(out) >= self.examples:
                break
            try:
                seg = store.segment(row.segment_id)
                pixels = self._images.get(image_file(self.workspace, store.image(seg.image_id).path))
                out.append((seg.id, png_data_url(crop_view(pixels, seg, 64))))
            except WorkbenchError as err:  # a missing image: leave that example out
                log.info("graph card: %s", err)
        return out

    def _proposals(self, concept: str) -> str:
        e = html.escape
        found = proposals_touching(self.workspace, concept)
        if not found:
            return " <i>none</i>"
        return "<ul style='margin:2px 0'>" + "".join(
            f"<li><code>{e(p.id or '')}</code> {e(p.title)} <small>({e(p.kind)} by {e(p.author)}, {e(p.status)})</small></li>"
            for p in found) + "</ul>"

    def _on_frame(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._guard(self.select, change["new"])

    def _on_pick(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._guard(lambda: setattr(self.card, "value", self.card_html(change["new"])))

    def _guard(self, fn: Any, *args: Any) -> None:
        self.error.value = ""
        try:
            fn(*args)
        except Exception as err:  # noqa: BLE001 - shown in the widget
            log.warning("graph: %s", err)
            self.error.value = f"<div style='color:#a00'>{html.escape(type(err).__name__)}: {html.escape(str(err))}</div>"
