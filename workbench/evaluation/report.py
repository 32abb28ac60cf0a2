"""The report: ``report.json`` (the numbers) and a self-contained ``report.html`` (no CDN, no script).

The HTML shows the ontology as a graph coloured by each concept's validation balanced accuracy (red
where its status is ``weak`` or ``dead``, see :mod:`workbench.evaluation.health`), a table like the
source study's (concept, balanced accuracy, status, parameters, examples), the hybrid against the
same-budget baseline and the controls, and a few explained images. Every string from data is
HTML-escaped.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from workbench._io import atomic_write_text
from workbench.models.hybrid import Explanation
from workbench.ontology.graph import Ontology

__all__ = ["write_report", "render_explanation", "ontology_svg", "summary_table", "accuracy_colour", "concept_colour",
           "status_text", "RED"]

_PALETTE = [(200, 60, 60), (230, 160, 40), (120, 180, 60), (40, 150, 80)]
RED = "#{:02x}{:02x}{:02x}".format(*_PALETTE[0])  # weak and dead concepts, whatever their number
_BAD = ("weak", "dead")


def accuracy_colour(acc: float | None) -> str:
    """Red at 50% accuracy (chance) through amber to green at 100%; grey when unknown."""
    if acc is None:
        return "#cccccc"
    t = min(max((acc - 0.5) / 0.5, 0.0), 1.0) * (len(_PALETTE) - 1)
    i = min(int(t), len(_PALETTE) - 2)
    f = t - i
    a, b = _PALETTE[i], _PALETTE[i + 1]
    return "#%02x%02x%02x" % tuple(int(a[k] + (b[k] - a[k]) * f) for k in range(3))


def concept_colour(info: dict[str, Any]) -> str:
    """A concept's colour: red when its ``status`` is weak or dead, else by ``val_balanced_accuracy``."""
    if info.get("status") in _BAD:
        return RED
    return accuracy_colour(info.get("val_balanced_accuracy"))


def status_text(info: dict[str, Any]) -> str:
    """``ok``, or ``weak: <reason>`` / ``dead: <reason>``; ``–`` when there is no status."""
    st = info.get("status")
    if not st:
        return "–"
    reason = info.get("status_reason") or ""
    return f"{st}: {reason}" if reason and st != "ok" else str(st)


def ontology_svg(ontology: Ontology, concepts: dict[str, dict[str, Any]]) -> str:
    """An inline SVG of the ontology: root on top, parts below, nodes coloured by validation balanced
    accuracy (red when weak or dead, the reason in the tooltip); rules dashed."""
    import networkx as nx

    g = ontology.graph
    depth = {ontology.root: 0}
    for n in nx.topological_sort(g):
        for m in g.successors(n):
            depth[m] = max(depth.get(m, 0), depth.get(n, 0) + 1)
    layers: dict[int, list[str]] = {}
    for n in sorted(g.nodes):
        layers.setdefault(depth.get(n, 0), []).append(n)
    W, H, bw, bh = 760, 110 * (max(layers) + 1) + 20, 130, 44
    pos: dict[str, tuple[float, float]] = {}
    for d, ns in layers.items():
        for i, n in enumerate(ns):
            pos[n] = ((i + 1) * W / (len(ns) + 1), 30 + d * 110)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             'font-family="sans-serif" font-size="12">']
    for a, b in g.edges:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        parts.append(f'<line x1="{x1:.0f}" y1="{y1 + bh:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#666"/>')
    for n, (x, y) in pos.items():
        info = concepts.get(n, {})
        acc = info.get("val_balanced_accuracy")
        bad = info.get("status") in _BAD
        rule = ontology.concepts[n].implementation == "rule"
        dash = ' stroke-dasharray="5,3"' if rule else ""
        label = html.escape(n)
        sub = f"{'rule' if rule else 'net'} · {info.get('params', '?')} p · " + (f"{acc:.0%}" if acc is not None else "–") + (
            f" · {info['status']}" if bad else "")
        tip = ontology.concepts[n].description + (f" — {status_text(info)}" if bad else "")
        parts.append(
            f'<rect x="{x - bw / 2:.0f}" y="{y:.0f}" width="{bw}" height="{bh}" rx="8" fill="{concept_colour(info)}" '
            f'stroke="#333"{dash}><title>{html.escape(tip)}</title></rect>'
            f'<text x="{x:.0f}" y="{y + 18:.0f}" text-anchor="middle" font-weight="bold">{label}</text>'
            f'<text x="{x:.0f}" y="{y + 34:.0f}" text-anchor="middle">{html.escape(sub)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_explanation(image: np.ndarray, explanation: Explanation, size: int = 256) -> bytes:
    """A PNG of the image with each fired part's winning segment boxed and named."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(image).convert("RGB")
    scale = size / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
    draw = ImageDraw.Draw(im)
    colours = ["#ff3b30", "#007aff", "#34c759", "#ff9500", "#af52de", "#5ac8fa"]
    parts = [c for c in explanation.concepts.values() if c.bbox is not None]
    for i, c in enumerate(sorted(parts, key=lambda c: c.concept)):
        if c.score < explanation.threshold:
            continue
        x0, y0, x1, y1 = (v * scale for v in c.bbox)  # type: ignore[union-attr]
        col = colours[i % len(colours)]
        draw.rectangle([x0, y0, x1, y1], outline=col, width=2)
        draw.text((x0 + 2, max(0, y0 - 11)), f"{c.concept} {c.score:.2f}", fill=col)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def summary_table(report: dict[str, Any]) -> str:
    """The study-like table as Markdown (the README and the CLI print it)."""
    rows = ["| concept | kind | implementation | val balanced accuracy | status | parameters | train examples |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for c, m in report["concepts"].items():
        rows.append(f"| {c} | {m['kind']} | {m['implementation']} | {_pct(m.get('val_balanced_accuracy'))} | "
                    f"{status_text(m)} | {m['params']} | {m.get('train_examples', '–')} |")
    rows.append("")
    rows.append("| classifier | val accuracy | balanced accuracy | parameters |")
    rows.append("| --- | --- | --- | --- |")
    for h in report["hybrid"]:
        rows.append(f"| hybrid ({h['mode']}) | {_pct(h.get('val_accuracy'))} | {_pct(h.get('balanced_accuracy'))} | {h['params']} |")
    b = report.get("baseline") or {}
    if b:
        rows.append(f"| same-budget CNN baseline | {_pct(b.get('val_accuracy'))} | {_pct(b.get('balanced_accuracy'))} | {b['params']} |")
    ctl = report.get("control") or {}
    if ctl:
        rows.append(f"| control: shuffled segment labels | {_pct(ctl.get('val_accuracy'))} | {_pct(ctl.get('balanced_accuracy'))} | – |")
    return "\n".join(rows)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


def write_report(
    out_dir: str | Path,
    report: dict[str, Any],
    ontology: Ontology,
    explained: Sequence[tuple[str, bytes, Explanation]] = (),
) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir`` (atomically); return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jpath, hpath = out / "report.json", out / "report.html"
    atomic_write_text(jpath, json.dumps(report, indent=2, sort_keys=False, default=_plain) + "\n")
    e = html.escape
    h = report["hybrid"]
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Workbench report</title>",
        "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "th{background:#f3f3f3}.ex{display:inline-block;margin:6px;vertical-align:top;font-size:12px}"
        "pre{background:#f7f7f7;padding:6px;white-space:pre-wrap}</style></head><body>",
        f"<h1>Constructability Workbench report: {e(ontology.root)}</h1>",
        f"<p>Validation: {report['split']['val']} images (class-balanced); training: {report['split']['train']} "
        f"images. Segment labels: {e(str(report.get('labels_source', '')))}.</p>",
        "<h2>Ontology</h2>", ontology_svg(ontology, report["concepts"]),
        "<p>Colour: validation balanced accuracy (red 50% → green 100%; a constant answer scores 50%); "
        "red: the concept is weak or dead; dashed border: a plain-code rule.</p>",
        "<h2>Concepts</h2>", _concept_table(report["concepts"]),
        "<h2>Hybrid vs same-budget baseline</h2>", _html_table(
            ["classifier", "val accuracy", "balanced accuracy", "parameters"],
            [[f"hybrid ({x['mode']})", _pct(x.get("val_accuracy")), _pct(x.get("balanced_accuracy")), x["params"]] for x in h]
            + [["end-to-end CNN baseline", _pct(report["baseline"].get("val_accuracy")),
                _pct(report["baseline"].get("balanced_accuracy")), report["baseline"]["params"]]]
            + [["control: shuffled segment labels", _pct(report["control"].get("val_accuracy")),
                _pct(report["control"].get("balanced_accuracy")), "–"]]),
    ]
    sw = report.get("swap") or {}
    if sw:
        body.append(f"<p>Swap test: <b>{e(str(sw['concept']))}</b> {e(str(sw.get('how', '')))}: root accuracy "
                    f"{_pct(sw.get('val_accuracy_before'))} → {_pct(sw.get('val_accuracy_after'))}.</p>")
    if report.get("rules"):
        body.append("<h2>Rules against the nets they could replace</h2>")
        body.append(_html_table(["concept", "rule", "rule val accuracy", "net val accuracy", "rule params", "net params"],
                                [[c, r["rule"], _pct(r.get("rule_val_accuracy")), _pct(r.get("net_val_accuracy")),
                                  r.get("rule_params"), r.get("net_params")] for c, r in report["rules"].items()]))
    if explained:
        body.append("<h2>Explained validation images</h2>")
        for name, png, ex in explained:
            b64 = base64.b64encode(png).decode()
            body.append(f"<div class='ex'><img src='data:image/png;base64,{b64}' alt='{e(name)}'><br>{e(name)}"
                        f"<pre>{e(str(ex))}</pre></div>")
    body.append(f"<h2>Timings (s)</h2><pre>{e(json.dumps(report.get('timings', {}), indent=1))}</pre>")
    body.append("</body></html>")
    atomic_write_text(hpath, "\n".join(body))
    return jpath, hpath


def _concept_table(concepts: dict[str, dict[str, Any]]) -> str:
    """The concept table; weak and dead concepts' rows say so in red, with the reason."""
    e = html.escape
    head = ["concept", "kind", "implementation", "val balanced accuracy", "status", "parameters", "train examples"]
    rows = []
    for c, m in concepts.items():
        bad = m.get("status") in _BAD
        cells = [e(str(c)), e(str(m["kind"])), e(str(m["implementation"])), _pct(m.get("val_balanced_accuracy")),
                 e(status_text(m)), e(str(m["params"])), e(str(m.get("train_examples", "–")))]
        style = f" class='wb-{e(str(m['status']))}' style='color:{RED}'" if bad else ""
        rows.append(f"<tr{style}>" + "".join(f"<td>{v}</td>" for v in cells) + "</tr>")
    return ("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>")


def _html_table(head: list[str], rows: list[list[Any]]) -> str:
    e = html.escape
    return ("<table><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in r) + "</tr>" for r in rows) + "</table>")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")
