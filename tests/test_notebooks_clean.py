"""Committed notebooks are clean: no outputs, no execution counts, stable cell ids, no secrets.

nbval runs every notebook under ``notebooks/`` as part of ``python -m pytest``; this file checks what
nbval does not: that the files in git carry no results of a run (outputs are noise in a diff, can hold
a user's data, and an output without an execution count makes nbval fail with "Unrun reference cell
has outputs"), that cell ids are stable hand-made names (``tour-03``), not the random ones Jupyter
invents, and that nothing in them looks like an API key or a private key.

No output at all, checked cells included: what a cell must print is checked in code
(``workbench.jupyter.session.expect_output``, written by ``scripts/build_notebooks.py``).
"""
from __future__ import annotations

import copy
import importlib.util
import json
import re
import warnings
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"

#: A stable cell id: lowercase words joined by "-" (``tour-03``, ``ex1-07``, ``wb-0007-md`` as
#: workbench.review.cells makes them); Jupyter's random ids (``a1b2c3d4``, UUIDs) are not.
STABLE_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")
RANDOM_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$")

#: What a secret looks like (values, not names: the text ANTHROPIC_API_KEY is fine).
SECRET_PATTERNS = {
    "Anthropic API key": re.compile(r"sk-ant-[A-Za-z0-9_\-]{6,}"),
    "OpenAI-style API key": re.compile(r"\bsk-[A-Za-z0-9]{32,}"),
    "AWS access key id": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "key assigned in code": re.compile(
        r"""(?i)\b(api[_-]?key|secret|token|password)\b["']?\s*[:=]\s*["'][A-Za-z0-9_\-+/]{16,}["']"""
    ),
}


def notebooks() -> list[Path]:
    return sorted(p for p in NB_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _strings(obj) -> list[str]:
    """Every string in a JSON document (keys too), decoded: sources, outputs, metadata."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def secrets_in(text: str) -> list[str]:
    """Names of the kinds of secret found in a notebook file's text (raw and decoded)."""
    try:
        texts = [text, *_strings(json.loads(text))]
    except ValueError:
        texts = [text]
    return [what for what, rx in SECRET_PATTERNS.items() if any(rx.search(t) for t in texts)]


def problems(path: Path) -> list[str]:
    """Every reason ``path`` is not a clean notebook (empty: clean)."""
    text = path.read_text(encoding="utf-8")
    out = [f"{path.name}: contains something that looks like a {what}; remove it (keys come from the environment)"
           for what in secrets_in(text)]
    try:
        raw = json.loads(text)
        with warnings.catch_warnings():  # nbformat "corrects" missing and duplicate ids: judge the raw file
            warnings.simplefilter("ignore")
            nbformat.validate(nbformat.from_dict(copy.deepcopy(raw)))
    except Exception as e:  # noqa: BLE001 - any parse/validation failure is the finding
        return out + [f"{path.name}: not a valid notebook ({type(e).__name__}: {e})"]
    if (raw.get("nbformat"), raw.get("nbformat_minor")) < (4, 5):
        out.append(f"{path.name}: nbformat {raw.get('nbformat')}.{raw.get('nbformat_minor')} has no cell ids; save as 4.5 or later")
    if "widgets" in raw.get("metadata", {}):
        out.append(f"{path.name}: saved widget state in the notebook metadata; clear it (Edit → Clear Outputs)")
    seen: set[str] = set()
    for k, cell in enumerate(raw.get("cells", [])):
        where = f"{path.name} cell {k} ({cell.get('id', 'no id')})"
        cid = cell.get("id")
        if not cid:
            out.append(f"{where}: no cell id")
        elif not STABLE_ID.match(cid) or RANDOM_ID.match(cid):
            out.append(f"{where}: id {cid!r} is not a stable name like 'tour-03' (random ids change on every copy)")
        elif cid in seen:
            out.append(f"{where}: duplicate cell id {cid!r}")
        seen.add(cid or "")
        if "execution" in cell.get("metadata", {}):
            out.append(f"{where}: execution timing metadata from a run; strip it")
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            out.append(f"{where}: has outputs; commit notebooks without outputs (check printed text in code: "
                       "workbench.jupyter.session.expect_output)")
        if cell.get("execution_count") is not None:
            out.append(f"{where}: has an execution count; commit notebooks without them")
    return out


# --------------------------------------------------------------------------------- the committed ones
def test_there_are_notebooks():
    names = {p.name for p in notebooks()}
    assert {"00_tour.ipynb", "01_grow_ontology.ipynb", "02_segment_and_label.ipynb", "03_train_and_compose.ipynb",
            "04_pull_request_loop.ipynb"} <= names


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: str(p.relative_to(NB_DIR)))
def test_committed_notebook_is_clean(path):
    assert problems(path) == []


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "scripts" / "build_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _cells(nb) -> list[tuple]:
    return [(c.cell_type, c.id, c.source, json.dumps(c.get("outputs", []), sort_keys=True)) for c in nb.cells]


def test_notebooks_match_their_builder():
    """The notebooks are generated by scripts/build_notebooks.py: edit it there, then run it."""
    builder = _builder()
    for name, cells in builder.NOTEBOOKS.items():
        path = NB_DIR / name
        assert path.exists(), f"{name}: missing; run python scripts/build_notebooks.py"
        committed = nbformat.read(path, as_version=4)
        assert _cells(committed) == _cells(builder.build(cells)), (
            f"{name} differs from scripts/build_notebooks.py: edit the builder and run it (not the notebook)"
        )


# ------------------------------------------------------------------------- the checker catches things
def _write(tmp_path: Path, cells: list, **meta) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(meta)
    nb.cells = cells
    p = tmp_path / "x.ipynb"
    nbformat.write(nb, p)
    return p


def test_checker_passes_a_clean_notebook(tmp_path):
    p = _write(tmp_path, [nbformat.v4.new_markdown_cell("# hi", id="x-01"),
                          nbformat.v4.new_code_cell("print(os.environ.get('ANTHROPIC_API_KEY') is None)", id="x-02")])
    assert problems(p) == []


def test_checker_catches_outputs_and_counts(tmp_path):
    c = nbformat.v4.new_code_cell("print(1)", id="x-01")
    c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    c.execution_count = 3
    found = problems(_write(tmp_path, [c]))
    assert any("has outputs" in f for f in found) and any("execution count" in f for f in found)


def test_checker_catches_widget_state_and_timings(tmp_path):
    c = nbformat.v4.new_code_cell("1", id="x-01")
    c.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    found = problems(_write(tmp_path, [c], widgets={"application/vnd.jupyter.widget-state+json": {}}))
    assert any("widget state" in f for f in found) and any("timing" in f for f in found)


def test_checker_refuses_outputs_even_on_checked_cells(tmp_path):
    c = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", id="x-01")
    c.outputs, c.execution_count = [nbformat.v4.new_output("stream", name="stdout", text="1\n")], 1
    found = problems(_write(tmp_path, [c]))
    assert any("has outputs" in f for f in found) and any("execution count" in f for f in found)


def test_expect_output_fails_a_cell_that_prints_something_else(capsys):
    from workbench.jupyter.session import expect_output

    with pytest.raises(AssertionError, match="expects"):
        with expect_output("daisy\n"):
            print("not_daisy")
    assert capsys.readouterr().out == "not_daisy\n"  # still shown to the reader


@pytest.mark.parametrize("cid", [None, "a1b2c3d4", "3f2c9e1a-77b0-4f0e-9d2e-1b2c3d4e5f60",
                                 "a1b2c3d4-77b0-4f0e-9d2e-1b2c3d4e5f60", "Tour-1", "tour"])
def test_checker_catches_missing_and_random_ids(tmp_path, cid):
    c = nbformat.v4.new_markdown_cell("x", id="x-01")
    p = _write(tmp_path, [c])
    raw = json.loads(p.read_text())
    if cid is None:
        del raw["cells"][0]["id"]
        raw["nbformat_minor"] = 5
    else:
        raw["cells"][0]["id"] = cid
    p.write_text(json.dumps(raw))
    assert any("id" in f for f in problems(p)), cid


@pytest.mark.parametrize("cid", ["tour-03", "ex1-07", "wb-0007-md", "wb-0007-code"])
def test_checker_accepts_stable_ids(tmp_path, cid):
    assert problems(_write(tmp_path, [nbformat.v4.new_markdown_cell("x", id=cid)])) == []


def test_checker_catches_duplicate_ids(tmp_path):
    cells = [nbformat.v4.new_markdown_cell("a", id="x-01"), nbformat.v4.new_markdown_cell("b", id="x-02")]
    p = _write(tmp_path, cells)
    p.write_text(p.read_text().replace('"x-02"', '"x-01"'))
    assert any("duplicate" in f for f in problems(p))


@pytest.mark.parametrize("secret", [
    "sk-ant-api03-" + "A" * 40,
    "sk-" + "a1" * 24,
    "AKIA" + "ABCDEFGHIJKLMNOP",
    "ghp_" + "x" * 36,
    "-----BEGIN RSA PRIVATE KEY-----",
    'api_key = "' + "q" * 24 + '"',
])
def test_checker_catches_secrets_in_source_and_outputs(tmp_path, secret):
    in_source = nbformat.v4.new_code_cell(f"client = make({secret!r})", id="x-01")
    assert any("looks like" in f for f in problems(_write(tmp_path, [in_source])))
    in_output = nbformat.v4.new_code_cell("print(key)", id="x-01")
    in_output.outputs = [nbformat.v4.new_output("stream", name="stdout", text=secret)]
    assert any("looks like" in f for f in problems(_write(tmp_path, [in_output])))
