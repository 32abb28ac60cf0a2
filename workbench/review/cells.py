"""Proposals as notebook cells: a Markdown cell to read, a code cell to run deliberately.

:func:`proposal_cells` turns a proposal into nbformat v4 cells::

    [markdown  id=wb-0007-md]    title, who proposed it, the rationale(s), the evidence thumbnail
                                 (inline data URI), each edit with its lint warnings or why it is
                                 invalid and the second reviewer's findings about it, the unified
                                 diff of ontology.yaml (and of a rule's code) with the review beside it,
                                 the merge gate's verdict, and, when models were trained for the gate,
                                 the concept's example segments and what fires, before | after
    [code      id=wb-0007-code]  wb.apply("proposals/0007.yaml")

Cell ids derive from the proposal id and every cell carries ``{"workbench": {"proposal": "0007",
"kind": ..., "role": "review" | "apply"}}`` in its metadata, so inserting the same proposal again
replaces its cells in place and a notebook diff (nbdime) shows only the cells that changed.

Model text (titles, rationales, concept labels and descriptions) is data: it is HTML-escaped and its
Markdown punctuation backslash-escaped, so it can neither load remote content (no image or link
syntax survives) nor break out of its paragraph; diffs sit in fenced blocks longer than any backtick
run inside them. Images are only ever inline ``data:image/png`` URIs made here.

>>> md_escape("![x](http://e.vil/a.png) <img src=x>")
'\\\\!\\\\[x\\\\]\\\\(http\\\\://e.vil/a.png\\\\) &lt;img src=x&gt;'
>>> apply_code("7")
'wb.apply("proposals/0007.yaml")'
"""
from __future__ import annotations

import base64
import difflib
import html
import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench._io import atomic_write_text
from workbench.errors import ProposalError, WorkbenchError
from workbench.evaluation.evaluate import load_images
from workbench.evaluation.report import render_explanation
from workbench.models.hybrid import HybridClassifier
from workbench.models.rules import RULES
from workbench.review.decisions import preview
from workbench.review.refs import is_commit_sha, parse_ref, ref_path
from workbench.review.store import ProposalStore

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = [
    "proposal_cells",
    "insert_cells",
    "apply_code",
    "cell_ids",
    "md_escape",
    "MAX_THUMBNAIL_BYTES",
]

#: A thumbnail larger than this is not inlined (the note says so).
MAX_THUMBNAIL_BYTES = 512 * 1024
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~:-])")  # < > & are HTML-escaped
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def md_escape(text: Any) -> str:
    """Text shown inside Markdown: HTML-escaped, Markdown punctuation backslash-escaped, one paragraph."""
    s = _MD_SPECIAL.sub(r"\\\1", str(text))
    s = html.escape(s, quote=True)
    return " ".join(s.split())


def _code(text: Any) -> str:
    """An inline code span holding ``text`` verbatim (a code span renders nothing: no HTML, no links)."""
    t = " ".join(str(text).split())
    run = max((len(m) for m in re.findall(r"`+", t)), default=0)
    tick = "`" * (run + 1)
    return f"{tick} {t} {tick}" if run or t.startswith(" ") else f"{tick}{t}{tick}"


def _pid(proposal_or_ref: Any) -> str:
    """The canonical id of a saved proposal or of a reference (:func:`workbench.review.refs.parse_ref`)."""
    return parse_ref(getattr(proposal_or_ref, "id", proposal_or_ref))


def apply_code(ref: Any) -> str:
    """The code cell's source: ``wb.apply("proposals/0007.yaml")``."""
    return f'wb.apply("{ref_path(_pid(ref))}")'


def cell_ids(ref: Any) -> tuple[str, str]:
    """The stable ids of a proposal's Markdown and code cells: ``("wb-0007-md", "wb-0007-code")``."""
    pid = _pid(ref)
    return f"wb-{pid}-md", f"wb-{pid}-code"


def _fence(text: str, lang: str) -> str:
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, run + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------------------------- pieces
def _thumbnail(ws: Workspace, evidence: Any) -> tuple[str | None, str | None]:
    """(data URI, note) for the evidence thumbnail: a PNG inside the workspace, never a link elsewhere."""
    rel = getattr(evidence, "thumbnail", None)
    if not rel:
        return None, None
    root = Path(ws.path).resolve()
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or (p.parts and p.parts[0] == ".git"):
        return None, "thumbnail not shown: its path must be relative, inside the workspace"
    full = root / p
    try:
        if full.is_symlink() or not full.resolve().is_relative_to(root):
            return None, "thumbnail not shown: it resolves outside the workspace"
        if full.stat().st_size > MAX_THUMBNAIL_BYTES:
            return None, f"thumbnail not shown: over {MAX_THUMBNAIL_BYTES // 1024} KiB"
        data = full.read_bytes()
    except OSError:
        return None, "thumbnail not shown: file missing"
    if not data.startswith(_PNG_MAGIC):
        return None, "thumbnail not shown: not a PNG file"
    return _png_uri(data), None


def _diff_and_edits(ws: Workspace, p: Any, accept: Sequence[int] | None) -> tuple[str, str | None, list[Any]]:
    """(unified diff of ontology.yaml, problem or None, the chosen edits as objects)."""
    if p.status == "pending":
        try:
            pv = preview(ws, p, accept)
        except WorkbenchError as e:
            return "", str(e), []
        chosen = [p.edits[i].edit() for i in pv.chosen]
        return pv.diff, ("made against an older ontology: re-validated against the current one" if pv.stale
                         else None), chosen
    if p.commit:
        if not is_commit_sha(p.commit):  # data from a file: never an option for git
            return "", f"commit {p.commit[:20]!r} is not a commit sha", []
        try:
            before = ws._git("show", f"{p.commit}^:ontology.yaml").stdout
            after = ws._git("show", f"{p.commit}:ontology.yaml").stdout
        except WorkbenchError as e:
            return "", f"commit {p.commit[:12]} not found: {e}", []
        diff = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), "a/ontology.yaml",
                                            "b/ontology.yaml"))
        chosen = []
        for pe in p.edits:
            if pe.decision == "accepted":
                try:
                    chosen.append(pe.edit())
                except WorkbenchError:
                    pass
        return diff, None, chosen
    return "", f"{p.status}: nothing to apply", []


def _rule_diffs(before: Any, edits: Sequence[Any]) -> list[str]:
    """Unified diffs of rule code for edits that give a concept a (different) rule."""
    import inspect

    out = []
    for e in edits:
        d = e.to_dict()
        rule = d.get("rule")
        if not rule or d.get("implementation", "rule") != "rule":
            continue
        cid = d.get("id") or d.get("into")
        old = before.concepts.get(cid) if cid else None
        old_name = old.rule if old is not None and old.implementation == "rule" else None
        if old_name == rule:
            continue

        def src(name: str | None) -> str:
            if name is None:
                return ""
            r = RULES.get(name)
            if r is None:
                return f"# rule {name!r} is not registered in workbench/rules.py\n"
            try:
                return inspect.getsource(r.func)
            except (OSError, TypeError):
                return f"# source of rule {name!r} not available\n"

        a_name = f"a/rules/{old_name}" if old_name else f"a/{cid} (net)"
        diff = "".join(difflib.unified_diff(src(old_name).splitlines(True), src(rule).splitlines(True),
                                            a_name, f"b/rules/{rule}"))
        out.append(diff)
    return out


def _strip(crops: np.ndarray, scores: Sequence[float] | None, size: int = 64) -> bytes:
    from PIL import Image, ImageDraw

    n = max(1, len(crops))
    im = Image.new("RGB", (n * (size + 4), size + 16), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    for i, c in enumerate(crops):
        tile = Image.fromarray(np.asarray(c, dtype=np.uint8)).convert("RGB").resize((size, size), Image.NEAREST)
        im.paste(tile, (i * (size + 4), 0))
        if scores is not None:
            s = scores[i]
            draw.text((i * (size + 4) + 2, size + 2), f"{s:.2f}", fill=(0, 128, 0) if s >= 0.5 else (170, 0, 0))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _before_after(ws: Workspace, models: Mapping[str, Any], verdict: Any) -> str:
    """Markdown table: the changed concepts' example segments and one image's explanation, before | after."""
    base_o, base_m = models["base"]
    cand_o, cand_m = models["candidate"]
    images, segs, csegs = models["images"], models["segments"], models["candidate_segments"]
    retrained = list(models.get("retrained") or getattr(verdict, "retrained", ()) or ())
    leaves = [c for c in retrained if c in cand_o.leaves()]
    rows = ["| | before | after |", "| --- | --- | --- |"]
    val_img = images.mask("val")
    for c in leaves[:3]:
        pos = [r for r, lab in enumerate(csegs.labels) if lab == c and val_img[csegs.image_index[r]]]
        pos = pos[:6] or [r for r, lab in enumerate(csegs.labels) if lab == c][:6]
        if not pos:
            continue
        crops = csegs.crops[pos]
        after = np.asarray(cand_m[c].predict_proba(crops)).reshape(-1).tolist()
        before_cell = "new concept: no model before"
        if c in base_m and c in base_o.leaves():
            before = np.asarray(base_m[c].predict_proba(crops)).reshape(-1).tolist()
            before_cell = f"![{md_escape(c)} before]({_png_uri(_strip(crops, before))})"
        rows.append(f"| {_code(c)} examples | {before_cell} | ![{md_escape(c)} after]({_png_uri(_strip(crops, after))}) |")
    # what fires on one validation image of the root class

    cls = np.array([str(x) for x in images.classes])
    pick = [i for i in np.flatnonzero(val_img & (cls == base_o.root))][:1] or list(np.flatnonzero(val_img))[:1]
    for i in pick:
        sub = type(images)(images.image_ids[[i]], [images.paths[i]], [images.classes[i]], [images.shas[i]])
        pixels, problems = load_images(sub, ws.dataset_root)
        if pixels[0] is None:
            rows.append(f"| image | (could not load {md_escape(images.paths[i])}) | |")
            continue
        seg_rows = segs.of_image(int(i))
        boxes = [tuple(b) for b in segs.bboxes[seg_rows]]
        ex_b = HybridClassifier(base_o, base_m).explain(segs.crops[seg_rows], boxes)
        ex_a = HybridClassifier(cand_o, cand_m).explain(csegs.crops[seg_rows], boxes)
        png_b = render_explanation(pixels[0], ex_b, size=192)
        png_a = render_explanation(pixels[0], ex_a, size=192)
        rows.append(f"| what fires on {_code(images.paths[i])} (p={ex_b.probability:.2f} → {ex_a.probability:.2f}) "
                    f"| ![before]({_png_uri(png_b)}) | ![after]({_png_uri(png_a)}) |")
    return "\n".join(rows) if len(rows) > 2 else ""


_MARK = {"serious": "✖", "warning": "⚠", "info": "✔"}


def _finding_md(f: Any) -> str:
    """One finding as a Markdown list item's text (escaped like all model text)."""
    about = f" {_code(f.about)}" if f.about else ""
    by = "workbench check" if f.source == "check" else "reviewer"
    return (f"{_MARK.get(f.severity, '•')} review, *{md_escape(f.severity)}* {md_escape(f.kind.replace('_', ' '))}"
            f"{about}: {md_escape(f.message)} ({by})")


def _review_md(p: Any) -> list[str]:
    """The second reviewer's block: who, when, the summary and the findings about the whole proposal."""
    r = p.review
    if r is None:
        return [f"**Second reviewer**: *not reviewed yet* (`workbench review {p.id} --workspace WS`)"]
    who = md_escape(r.reviewer) + (" (scripted: authored findings, not model output)" if r.scripted else "")
    counts = ", ".join(f"{n} {s}" for s, n in r.counts().items() if n) or "no findings"
    out = [f"**Second reviewer**: {who} · {md_escape(r.at)} · {md_escape(counts)} · advice only: a person decides"]
    if r.summary:
        out += ["", "> " + md_escape(r.summary)]
    general = r.general()
    if general:
        out.append("")
        out += [f"- {_finding_md(f)}" for f in general]
    return out


# ---------------------------------------------------------------------------------------------- cells
def proposal_cells(
    ws: Workspace,
    proposal: Any,
    *,
    verdict: Any = None,
    accept: Sequence[int] | None = None,
    models: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The proposal as two nbformat v4 cells (Markdown to read, code to run); see the module docstring.

    ``verdict``: a :class:`workbench.review.gate.Verdict` (or its dict) to show; default: the one recorded in
    the proposal, if any. ``models``: the ``keep`` dict a gate run filled, for before/after pictures.
    """
    p = proposal if not isinstance(proposal, (str, int)) else ProposalStore(ws, commit=False).load(proposal)
    if p.id is None:
        raise ProposalError("save the proposal first (ProposalStore(ws).save(p)): cells name it by its id")
    pid = _pid(p)
    md_id, code_id = cell_ids(pid)
    before = ws.ontology
    diff, diff_problem, chosen = _diff_and_edits(ws, p, accept)

    out = [f"### Proposal {pid}: {md_escape(p.title) or '(untitled)'}",
           "",
           f"*{md_escape(p.kind)}* by **{md_escape(p.author)}** · status **{md_escape(p.status)}**"
           + (f" · {md_escape(p.created)}" if p.created else "")]
    if p.rationale.strip():
        out += ["", "> " + md_escape(p.rationale)]
    uri, note = _thumbnail(ws, p.evidence)
    ev = p.evidence
    if ev.image or uri or note:
        out += ["", "**Evidence**" + (f": {_code(ev.image)}" if ev.image else "")
                + (f" (segments {', '.join(str(int(s)) for s in ev.segments)})" if ev.segments else "")]
        if uri:
            out += ["", f"![evidence thumbnail]({uri})"]
        if note:
            out += ["", f"*{md_escape(note)}*"]
    out += ["", "**Edits**", ""]
    for i, pe in enumerate(p.edits):
        line = f"{i}. {_code(pe.summary())} — *{md_escape(pe.decision)}*"
        if pe.rationale.strip():
            line += f": {md_escape(pe.rationale)}"
        out.append(line)
        if pe.problem:
            out.append(f"   - ✗ cannot be applied: {md_escape(pe.problem)}")
        for w in pe.lint:
            out.append(f"   - ⚠ lint: {md_escape(w)}")
        for f in p.review.for_edit(i) if p.review is not None else ():
            if not f.is_lint:
                out.append(f"   - {_finding_md(f)}")
    out += ["", "**Diff of `ontology.yaml`**", ""]
    if diff_problem:
        out += [f"*{md_escape(diff_problem)}*", ""]
    out.append(_fence(diff, "diff") if diff else "*(no change to the ontology)*")
    out += ["", *_review_md(p)]
    for rd in _rule_diffs(before, chosen):
        out += ["", "**Rule code**", "", _fence(rd, "diff")]
    v = verdict if verdict is not None else p.gate
    if v is not None:
        vd = v.to_dict() if hasattr(v, "to_dict") else dict(v)
        out += ["", "**Merge gate**: " + md_escape(vd.get("summary") or vd.get("decision", "")),
                "", "> " + md_escape(vd.get("message", ""))]
        if vd.get("retrained"):
            out.append(f"> retrained: {md_escape(', '.join(vd['retrained']))}")
        ov = vd.get("override")
        if ov:
            out.append(f"> overridden by {md_escape(ov.get('by', ''))}: {md_escape(ov.get('reason', ''))}")
    if models:
        table = ""
        try:
            table = _before_after(ws, models, v)
        except (WorkbenchError, OSError, KeyError, ValueError) as e:
            out += ["", f"*before/after pictures not available: {md_escape(e)}*"]
        if table:
            out += ["", "**Before | after**", "", table]
    elif any(e.op != "describe" or e.to_dict().get("implementation") for e in chosen):
        out += ["", "*Before/after pictures of the changed concepts appear when the gate has retrained them: "
                f"`wb.propose_cells(\"{pid}\", gate=True)`.*"]
    meta = {"proposal": pid, "kind": p.kind}
    md = {"cell_type": "markdown", "id": md_id, "metadata": {"workbench": {**meta, "role": "review"}},
          "source": "\n".join(out) + "\n"}
    code = {"cell_type": "code", "id": code_id, "metadata": {"workbench": {**meta, "role": "apply"}},
            "execution_count": None, "outputs": [],
            "source": f"# Apply proposal {pid} (runs the merge gate first; merges only on a 'merge' verdict)\n"
                      + apply_code(pid)}
    return [md, code]


def insert_cells(notebook_path: str | os.PathLike[str], cells: Sequence[Mapping[str, Any]],
                 after_cell_id: str | None = None) -> list[str]:
    """Insert ``cells`` into a notebook file, atomically; returns the notebook's cell ids in order.

    Cells of the same proposal already in the notebook are replaced where they are (idempotent);
    new ones go after the cell ``after_cell_id`` (default: at the end). Other cells are untouched.
    """
    import nbformat

    path = Path(notebook_path)
    try:
        nb = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: no such notebook") from None
    except Exception as e:  # noqa: BLE001 - nbformat raises many kinds on a bad file
        raise WorkbenchError(f"{path}: not a readable notebook: {e}") from None
    keep_ids = (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    new = []
    pids = set()
    for c in cells:
        node = nbformat.from_dict(dict(c))
        if not keep_ids:
            node.pop("id", None)
        pid = (c.get("metadata") or {}).get("workbench", {}).get("proposal")
        if pid:
            pids.add(pid)
        new.append(node)
    old_pos = [k for k, c in enumerate(nb.cells) if c.get("metadata", {}).get("workbench", {}).get("proposal") in pids]
    if old_pos:
        at = old_pos[0]
        nb.cells = [c for k, c in enumerate(nb.cells) if k not in set(old_pos)]
    elif after_cell_id is not None:
        found = [k for k, c in enumerate(nb.cells) if c.get("id") == after_cell_id]
        if not found:
            raise WorkbenchError(f"{path}: no cell with id {after_cell_id!r} to insert after")
        at = found[0] + 1
    else:
        at = len(nb.cells)
    nb.cells[at:at] = new
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:
        raise WorkbenchError(f"{path}: the cells would make an invalid notebook: {e.message}") from None
    atomic_write_text(path, nbformat.writes(nb))
    return [c.get("id", "") for c in nb.cells]
