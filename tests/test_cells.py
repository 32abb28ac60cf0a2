"""Proposals as notebook cells: valid nbformat v4, stable ids and metadata, model text that cannot
load remote content or escape its block, inline thumbnails only from inside the workspace, and
insertion that is atomic, idempotent and shows in an nbdime diff as just the inserted cells."""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from workbench.errors import ProposalError, WorkbenchError
from workbench.ontology.graph import Ontology
from workbench.review.cells import (
    apply_code,
    cell_ids,
    insert_cells,
    md_escape,
    proposal_cells,
)
from workbench.review.decisions import accept
from workbench.review.proposals import Evidence, make_proposal
from workbench.review.store import ProposalStore

DAISY = Ontology.load(Path(__file__).resolve().parents[1] / "ontologies" / "daisy.yaml")
HOSTILE = ("Sepals matter ![x](http://evil.example/p.png) <img src=http://evil.example/q.png> "
           "<script>alert(1)</script> [click](javascript:alert(1)) ``` end of fence")


def _png(size=(12, 8)):
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def ws(daisy_ws):
    (daisy_ws.path / "evidence").mkdir()
    (daisy_ws.path / "evidence" / "thumb.png").write_bytes(_png())
    return daisy_ws


def _proposal(ws, thumbnail="evidence/thumb.png", **kw):
    ops = [
        {"op": {"op": "add_concept", "id": "sepal", "label": "Sepal", "parents": ["flower_head"],
                "description": "Green ``` leaflets under the head; maybe it smells sweet"}, "rationale": HOSTILE},
        {"op": {"op": "remove_concept", "id": "no_such_concept"}, "rationale": "typo"},
        {"op": {"op": "describe", "id": "disk", "implementation": "rule", "rule": "green_elongated"},
         "rationale": "a rule"},
    ]
    p = make_proposal(ws.ontology, ops, kind="suggest", author="claude:test-model", title="Add a sepal " + HOSTILE,
                      rationale=HOSTILE, evidence=Evidence(image="daisy/0003.png", segments=(4, 7), thumbnail=thumbnail),
                      **kw)
    return ProposalStore(ws).save(p)


def _outside_code(md: str) -> str:
    """The Markdown with fenced code blocks removed (what is rendered as Markdown/HTML)."""
    return re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1\s*$", "", md)


def test_cells_are_valid_and_carry_stable_ids_and_metadata(ws):
    p = _proposal(ws)
    cells = proposal_cells(ws, p)
    assert [c["cell_type"] for c in cells] == ["markdown", "code"]
    assert [c["id"] for c in cells] == ["wb-0001-md", "wb-0001-code"] == list(cell_ids("0001"))
    for c in cells:
        assert c["metadata"]["workbench"]["proposal"] == "0001" and c["metadata"]["workbench"]["kind"] == "suggest"
    assert cells[1]["source"].endswith('wb.apply("proposals/0001.yaml")')
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.from_dict(c) for c in cells]
    nbformat.validate(nb)
    assert proposal_cells(ws, p) == cells  # deterministic: same proposal, same cells


def test_markdown_shows_diff_lint_problems_and_rule_code(ws):
    md = proposal_cells(ws, _proposal(ws))[0]["source"]
    assert "+- id: sepal" in md and "+  - sepal" in md  # the unified diff of ontology.yaml
    assert "```diff" in md or "````diff" in md
    assert "cannot be applied" in md and "no\\_such\\_concept" in md
    assert "lint" in md and "smell" in md
    assert "Rule code" in md and "b/rules/green_elongated" in md and "def green_elongated" in md
    assert "a/rules/yellow_disk" in md  # the disk was the yellow_disk rule before


def test_model_text_cannot_load_remote_content_or_break_out(ws):
    md = proposal_cells(ws, _proposal(ws))[0]["source"]
    rendered_as_markdown = _outside_code(md)
    assert "<" not in rendered_as_markdown  # no raw HTML at all outside code blocks
    for m in re.finditer(r"!\[", rendered_as_markdown):  # the only images are inline PNG data URIs
        assert re.match(r"!\[[^\]]*\]\(data:image/png;base64,", rendered_as_markdown[m.start():]), m
    mistune = pytest.importorskip("mistune")
    html = mistune.html(md)
    assert not re.search(r"<img[^>]+src=\"(?!data:image/png;base64,)", html)  # no remote image
    assert "<script" not in html and "<a " not in html  # no script, no link at all
    # the diff's fence is longer than the backticks inside it, so the description cannot close it
    fence = re.search(r"^(`{3,})diff$", md, re.M).group(1)
    assert len(fence) == 4
    body = md.split(fence + "diff\n", 1)[1].split("\n" + fence + "\n", 1)[0]
    assert "+- id: sepal" in body and "```" in body  # the hostile ``` stayed inside the block
    assert "data:image/png;base64," in md  # the evidence thumbnail, inline


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/passwd", ".git/config", "evidence/link.png",
                                 "evidence/not.png", "evidence/missing.png"])
def test_thumbnails_come_only_from_png_files_inside_the_workspace(ws, bad):
    (ws.path.parent / "outside.png").write_bytes(_png())
    os.symlink(ws.path.parent / "outside.png", ws.path / "evidence" / "link.png")
    (ws.path / "evidence" / "not.png").write_text("<svg onload=alert(1)>")
    md = proposal_cells(ws, _proposal(ws, thumbnail=bad))[0]["source"]
    assert "data:image" not in md and "thumbnail not shown" in md


def test_insert_is_atomic_idempotent_and_a_clean_nbdime_diff(ws, tmp_path):
    nbdime = pytest.importorskip("nbdime")
    path = tmp_path / "tour.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Tour", id="intro"), nbformat.v4.new_code_cell("wb = 1", id="open"),
                nbformat.v4.new_code_cell("wb.graph()", id="graph")]
    nbformat.write(nb, path)
    original = nbformat.read(path, as_version=4)
    p = _proposal(ws)
    ids = insert_cells(path, proposal_cells(ws, p), after_cell_id="open")
    assert ids == ["intro", "open", "wb-0001-md", "wb-0001-code", "graph"]
    once = nbformat.read(path, as_version=4)
    nbformat.validate(once)
    diff = nbdime.diff_notebooks(original, once)
    assert [d["key"] for d in diff] == ["cells"]
    ops = diff[0]["diff"]
    assert [(o["op"], o["key"]) for o in ops] == [("addrange", 2)]
    assert [c["id"] for c in ops[0]["valuelist"]] == ["wb-0001-md", "wb-0001-code"]
    # again: same notebook, byte for byte
    before = path.read_bytes()
    assert insert_cells(path, proposal_cells(ws, p)) == ids
    assert path.read_bytes() == before
    # after the proposal is accepted its cells change in place; nothing else does
    accept(ws, p, [0], by="ana")
    insert_cells(path, proposal_cells(ws, "0001"))
    again = nbformat.read(path, as_version=4)
    assert [c.get("id") for c in again.cells] == ids
    changed = {d["key"] for d in nbdime.diff_notebooks(once, again)[0]["diff"]}
    assert changed <= {2, 3}
    with pytest.raises(WorkbenchError, match="no cell with id"):
        insert_cells(path, proposal_cells(ws, _proposal(ws)), after_cell_id="nope")
    assert nbformat.read(path, as_version=4) == again  # a refused insert leaves the file as it was


def test_refs_and_unsaved_proposals():
    """Cells name a proposal by its canonical ref (workbench.review.refs; every form is tested in test_refs.py)."""
    assert apply_code(7) == apply_code("proposals/0007.yaml") == 'wb.apply("proposals/0007.yaml")'
    assert cell_ids(7) == ("wb-0007-md", "wb-0007-code")
    for bad in ["0007; import os", "proposals/../0007.yaml"]:  # a refused ref never becomes code
        with pytest.raises(ProposalError):
            apply_code(bad)
    assert md_escape("a\n\n# b") == "a \\# b"


def test_unsaved_proposal_is_refused(ws):
    p = make_proposal(ws.ontology, [{"op": {"op": "describe", "id": "disk", "label": "Centre"}}],
                      kind="person", author="person:ana")
    with pytest.raises(ProposalError, match="save"):
        proposal_cells(ws, p)


def test_propose_cells_in_a_kernel_shows_the_review_and_queues_the_apply_cell(ws):
    from IPython.core.interactiveshell import InteractiveShell

    import workbench

    p = _proposal(ws)
    shell = InteractiveShell.instance()
    shown = []
    try:
        shell.display_pub.publish = lambda data, metadata=None, **kw: shown.append((data, metadata))
        with workbench.open(ws.path, author="ana") as wb:
            assert wb.propose_cells(p.id) is None
        assert shell.rl_next_input == "# Apply proposal 0001 (runs the merge gate first; merges only on a 'merge' verdict)\n" \
            'wb.apply("proposals/0001.yaml")'
        (data, meta), = shown
        assert data["text/markdown"].startswith("### Proposal 0001") and meta["workbench"]["proposal"] == "0001"
    finally:
        InteractiveShell.clear_instance()


def test_a_hostile_commit_field_never_reaches_git(ws, tmp_path):
    from dataclasses import replace

    from workbench.review.history import revert

    target = tmp_path / "written-by-git"
    p = _proposal(ws)
    ProposalStore(ws).update(replace(p, status="accepted", commit=f"--output={target}"))
    md = proposal_cells(ws, p.id)[0]["source"]
    assert "not a commit sha" in md and not target.exists()
    with pytest.raises(ProposalError, match="not a commit sha"):
        revert(ws, p.id, by="ana")
    assert not target.exists()


def test_the_second_reviewer_s_findings_appear_in_the_cell_escaped_like_all_model_text(ws):
    import dataclasses

    from workbench.review.findings import Finding, Review

    p = _proposal(ws)
    md = proposal_cells(ws, p)[0]["source"]
    assert "**Second reviewer**: *not reviewed yet*" in md
    r = Review("claude:test-model", "2026-11-23T10:00:00Z", (
        Finding("unsupported", "No sepal visible " + HOSTILE, about="sepal", edit=0, severity="serious"),
        Finding("ok", "the whole proposal is small", severity="info"),
    ), model="test-model", summary="Summary " + HOSTILE)
    ProposalStore(ws).update(dataclasses.replace(p, review=r))
    md = proposal_cells(ws, p.id)[0]["source"]
    edit0 = md[md.index("0. "):md.index("1. ")]
    assert "✖ review, *serious* unsupported `sepal`: No sepal visible" in edit0  # under the edit it is about
    block = md[md.index("**Second reviewer**"):]
    assert "claude\\:test\\-model" in block and "1 serious, 1 info" in block and "the whole proposal is small" in block
    assert md.index("**Second reviewer**") > md.index("**Diff of")  # right after the diff
    rendered = _outside_code(md)
    assert "<" not in rendered  # the hostile text stays text
    for m in re.finditer(r"!\[", rendered):
        assert re.match(r"!\[[^\]]*\]\(data:image/png;base64,", rendered[m.start():]), m
