"""The report: ``report.json`` (the numbers) and a self-contained ``report.html`` (no CDN, no script).

The HTML shows, in this order: the warnings (a part-blind baseline within 5 points of the hybrid, weak or
dead concepts, concepts the decision does not use); the split; the ontology as a graph coloured by each
concept's validation balanced accuracy (red where its status is ``weak`` or ``dead``, see
:mod:`workbench.evaluation.health`); a table like the source study's (concept, balanced accuracy on
validation and test, status, parameters, examples); every method on the test images with its
supervision and parameters (the hybrid, the CNN at the per-net and the total budget, the part-blind
baselines, the shuffled-labels control), over seeds when there are several, and the paired interval of
hybrid − CNN; the ablation of every concept and the swap of every net; the rules against nets; a few
explained test images. Every string from data is HTML-escaped.
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
           "status_text", "RED", "METHOD_NAMES", "method_rows", "paired_lines", "supervision_text"]

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


def render_explanation(image: np.ndarray, explanation: Explanation, size: int = 256,
                       image_size: tuple[int, int] | None = None) -> bytes:
    """A PNG of the image with each fired part's winning segment boxed and named.

    ``image_size``: (width, height) of the original image the explanation's boxes are in, when ``image``
    is a downscaled copy of it (boxes are always in the original's pixels); default: ``image``'s own size.
    """
    from PIL import Image, ImageDraw

    im = Image.fromarray(image).convert("RGB")
    scale = size / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
    if image_size is not None:  # boxes in the original's pixels: map them onto this copy
        scale = im.width / max(1, int(image_size[0]))
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


#: How each method of the comparison is named in the tables, and what it sees.
METHOD_NAMES = {
    "hybrid": "hybrid (segments)",
    "prototype": "hybrid (prototype, the study's composition)",
    "cnn_per_net": "CNN, per-net budget (64² input)",
    "cnn_total": "CNN, total budget (≈ the hybrid's parameters, 128² input)",
    "colour_histogram": "part-blind: colour histogram",
    "colour_layout": "part-blind: colour layout",
    "control": "control: hybrid on shuffled segment labels",
}


def method_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per method: name, test balanced accuracy (and median / range over seeds), validation
    balanced accuracy, parameters, supervision in words."""
    seeds = report.get("seeds") or {}
    spread = seeds.get("median_and_range", {})
    n_seeds = len(seeds.get("seeds", [])) or 1
    found: dict[str, dict[str, Any]] = {"hybrid": report["hybrid"][0]}
    if len(report["hybrid"]) > 1:
        found["prototype"] = report["hybrid"][1]
    found.update(report.get("baselines") or {})
    if report.get("control"):
        found["control"] = report["control"]
    rows = []
    for key, name in METHOD_NAMES.items():
        m = found.get(key)
        if not m:
            continue
        over = spread.get(key) or {}
        rows.append({
            "key": key, "name": name, "test": m.get("balanced_accuracy"),
            "seeds": (f"{_pct(over.get('median'))} ({_pct(over.get('min'))}–{_pct(over.get('max'))})"
                      if n_seeds > 1 and over.get("median") is not None else ""),
            "val": m.get("val_balanced_accuracy"), "params": m.get("params", "–"),
            "supervision": supervision_text(m.get("supervision")) if key != "control" else "as the hybrid, labels shuffled",
        })
    return rows


def supervision_text(sup: Any) -> str:
    """``{"kind": ..., "segment_labels": n, "train_images": n, "val_images": n}`` in words."""
    if not isinstance(sup, dict):
        return "–"
    parts = [str(sup.get("kind", ""))]
    if sup.get("segment_labels") is not None:
        parts.append(f"{sup['segment_labels']} segment labels")
    if sup.get("train_images") is not None:
        parts.append(f"{sup['train_images']} train + {sup.get('val_images', 0)} validation images")
    return ", ".join(p for p in parts if p)


def summary_table(report: dict[str, Any]) -> str:
    """The study-like tables as Markdown (the CLI prints them): warnings, concepts, methods on test,
    hybrid − CNN, ablation and swap."""
    rows = [f"WARNING: {w}" for w in report.get("warnings", [])]
    sk = report.get("skipped") or {}
    n_skipped = len(sk.get("images", [])) + len(sk.get("masks", [])) + len(sk.get("no_segments", []))
    if n_skipped:
        rows.append(f"skipped: {len(sk.get('images', []))} image(s) that could not be read or segmented, "
                    f"{len(sk.get('masks', []))} part mask(s), {len(sk.get('no_segments', []))} image(s) without "
                    "segments (each listed with its reason in report.html and report.json)")
    if rows:
        rows.append("")
    sp = report.get("splits") or {}
    if sp:
        rows.append(f"split: {sp.get('train', 0)} train, {sp.get('val', 0)} validation, {sp.get('test', 0)} test images "
                    "(figures below are on test unless named validation)")
        rows.append("")
    rows += ["| concept | kind | implementation | val balanced accuracy | test balanced accuracy | status | parameters | train examples |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c, m in report["concepts"].items():
        rows.append(f"| {c} | {m['kind']} | {m['implementation']} | {_pct(m.get('val_balanced_accuracy'))} | "
                    f"{_pct(m.get('test_balanced_accuracy'))} | {status_text(m)} | {m['params']} | {m.get('train_examples', '–')} |")
    rows.append("")
    seeds = (report.get("seeds") or {}).get("seeds", [])
    over = f" over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else ""
    rows.append(f"| method | test balanced accuracy | median (range){over} | val balanced accuracy | parameters | supervision |")
    rows.append("| --- | --- | --- | --- | --- | --- |")
    for r in method_rows(report):
        rows.append(f"| {r['name']} | {_pct(r['test'])} | {r['seeds'] or '–'} | {_pct(r['val'])} | {r['params']} | {r['supervision']} |")
    for line in paired_lines(report):
        rows.append("")
        rows.append(line)
    if report.get("ablation"):
        rows += ["", "| concept replaced by a constant | root before → after | Δ (95% interval) | verdict |",
                 "| --- | --- | --- | --- |"]
        for c, a in report["ablation"].items():
            rows.append(f"| {c} (constant {a.get('constant')}) | {_pct(a.get('balanced_accuracy_before'))} → "
                        f"{_pct(a.get('balanced_accuracy_after'))} | {_interval(a)} | {a.get('verdict', '')} |")
    if report.get("swap"):
        rows += ["", "| net retrained with another seed, swapped in | root before → after | Δ (95% interval) | verdict |",
                 "| --- | --- | --- | --- |"]
        for c, w in report["swap"].items():
            rows.append(f"| {c} | {_pct(w.get('balanced_accuracy_before'))} → {_pct(w.get('balanced_accuracy_after'))} | "
                        f"{_interval(w)} | {w.get('verdict', '')} |")
    return "\n".join(rows)


def paired_lines(report: dict[str, Any]) -> list[str]:
    """hybrid − each CNN (and part-blind baseline) on the same test images, in words."""
    seeds = report.get("seeds") or {}
    out = []
    for key, d in (seeds.get("paired") or {}).items():
        other = METHOD_NAMES.get(key.replace("hybrid_minus_", ""), key)
        if d.get("difference") is None:
            out.append(f"hybrid − {other}: not measurable ({d.get('why', '')})")
            continue
        out.append(f"hybrid − {other}: {d['difference']:+.1%} balanced accuracy, 95% interval "
                   f"[{d['ci_low']:+.1%}, {d['ci_high']:+.1%}] on {d['n']} test images"
                   f" ({len(seeds.get('seeds', []))} seed{'s' if len(seeds.get('seeds', [])) != 1 else ''})")
    return out


def _interval(d: dict[str, Any]) -> str:
    if d.get("difference") is None:
        return "–"
    return f"{d['difference']:+.1%} [{d['ci_low']:+.1%}, {d['ci_high']:+.1%}]"


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
    sp = report.get("splits") or {}
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Workbench report</title>",
        "<style>body{font-family:sans-serif;max-width:1080px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "th{background:#f3f3f3}.ex{display:inline-block;margin:6px;vertical-align:top;font-size:12px}"
        f".warn{{border-left:6px solid {RED};background:#fdf0f0;padding:6px 10px;margin:6px 0}}"
        "pre{background:#f7f7f7;padding:6px;white-space:pre-wrap}</style></head><body>",
        f"<h1>Constructability Workbench report: {e(ontology.root)}</h1>",
    ]
    for w in report.get("warnings", []):
        body.append(f"<p class='warn'><b>Warning.</b> {e(w)}</p>")
    body.append(
        f"<p>Split by image, class-stratified: <b>{sp.get('train', 0)}</b> train, <b>{sp.get('val', 0)}</b> validation "
        f"(early stopping, thresholds, every choice), <b>{sp.get('test', 0)}</b> test (only scored here). "
        f"Segment labels: {e(str(report.get('labels_source', '')))}.</p>")
    if sp.get("images"):
        body.append("<details><summary>Which images are in which split</summary>" + "".join(
            f"<p><b>{e(side)}</b> ({len(paths)}): {e(', '.join(paths))}</p>" for side, paths in sp["images"].items())
            + "</details>")
    body += [
        "<h2>Ontology</h2>", ontology_svg(ontology, report["concepts"]),
        "<p>Colour: validation balanced accuracy (red 50% → green 100%; a constant answer scores 50%); "
        "red: the concept is weak or dead; dashed border: a plain-code rule.</p>",
        "<h2>Concepts</h2>", _concept_table(report["concepts"]),
    ]
    seeds = (report.get("seeds") or {}).get("seeds", [])
    body.append(f"<h2>Methods on the test images{' (seeds ' + e(', '.join(map(str, seeds))) + ')' if len(seeds) > 1 else ''}</h2>")
    body.append(_html_table(
        ["method", "test balanced accuracy", "median (range) over seeds", "val balanced accuracy", "parameters",
         "supervision"],
        [[r["name"], _pct(r["test"]), r["seeds"] or "–", _pct(r["val"]), r["params"], r["supervision"]]
         for r in method_rows(report)]))
    for line in paired_lines(report):
        body.append(f"<p>{e(line)}</p>")
    ctl = report.get("control") or {}
    if ctl.get("method"):
        body.append(f"<p>Control: {e(str(ctl['method']))}.</p>")
    if report.get("ablation"):
        body.append("<h2>Ablation: each concept replaced by a constant (its training prior)</h2>")
        body.append(_html_table(["concept", "constant", "root before", "root after", "Δ [95% interval]", "verdict"],
                                [[c, a.get("constant"), _pct(a.get("balanced_accuracy_before")),
                                  _pct(a.get("balanced_accuracy_after")), _interval(a), a.get("verdict", "")]
                                 for c, a in report["ablation"].items()]))
    if report.get("swap"):
        body.append("<h2>Swap: each net retrained with another seed, nothing else retrained</h2>")
        body.append(_html_table(["concept", "how", "root before", "root after", "Δ [95% interval]", "verdict"],
                                [[c, w.get("how", ""), _pct(w.get("balanced_accuracy_before")),
                                  _pct(w.get("balanced_accuracy_after")), _interval(w), w.get("verdict", "")]
                                 for c, w in report["swap"].items()]))
    if report.get("rules"):
        body.append("<h2>Rules against the nets they could replace (validation segments)</h2>")
        body.append(_html_table(["concept", "rule", "validation segments", "rule balanced accuracy",
                                 "net balanced accuracy", "rule params", "net params"],
                                [[c, r["rule"], r.get("val_segments", "–"), _pct(r.get("rule_val_balanced_accuracy")),
                                  _pct(r.get("net_val_balanced_accuracy")), r.get("rule_params"), r.get("net_params")]
                                 for c, r in report["rules"].items()]))
    if explained:
        body.append("<h2>Explained test images</h2>")
        for name, png, ex in explained:
            b64 = base64.b64encode(png).decode()
            body.append(f"<div class='ex'><img src='data:image/png;base64,{b64}' alt='{e(name)}'><br>{e(name)}"
                        f"<pre>{e(str(ex))}</pre></div>")
    sk = report.get("skipped") or {}
    rows = ([[i["path"], f"image ({i.get('stage', '')})", i["reason"]] for i in sk.get("images", [])]
            + [[m["path"], "part mask", m["reason"]] for m in sk.get("masks", [])]
            + [[p, "image", "no segments: in no split, never scored"] for p in sk.get("no_segments", [])])
    body.append("<h2>Skipped</h2>")
    body.append(_html_table(["file", "what", "why"], rows) if rows else "<p>Nothing was skipped.</p>")
    body.append(f"<h2>Timings (s)</h2><pre>{e(json.dumps(report.get('timings', {}), indent=1))}</pre>")
    body.append("</body></html>")
    atomic_write_text(hpath, "\n".join(body))
    return jpath, hpath


def _concept_table(concepts: dict[str, dict[str, Any]]) -> str:
    """The concept table; weak and dead concepts' rows say so in red, with the reason."""
    e = html.escape
    head = ["concept", "kind", "implementation", "val balanced accuracy", "test balanced accuracy", "status",
            "parameters", "train examples"]
    rows = []
    for c, m in concepts.items():
        bad = m.get("status") in _BAD
        cells = [e(str(c)), e(str(m["kind"])), e(str(m["implementation"])), _pct(m.get("val_balanced_accuracy")),
                 _pct(m.get("test_balanced_accuracy")), e(status_text(m)), e(str(m["params"])), e(str(m.get("train_examples", "–")))]
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
