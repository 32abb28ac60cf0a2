"""Real browser: JupyterLab on loopback, headless Debian Chromium (Playwright), a notebook that opens
the labeler on a tiny generated workspace; keys pressed in the widget land in the label store, and
JupyterLab's own notebook shortcuts do not see them (``1`` would turn the cell into a heading). The
same notebook shows the ontology graph: vis-network runs in its sandboxed frame under a no-network CSP,
and clicking a node shows that concept's card. The labeler's grid review: tiles deselected by key and
by click, Enter stores the page, and the next page is on screen within :data:`GRID_PAGE_MS` (median over
several pages, measured in the page from the keydown to the frame after the new page is in the DOM).

Skipped when /usr/bin/chromium is missing, unless WORKBENCH_REQUIRE_BROWSER=1 (CI), then it fails."""
from __future__ import annotations

import copy
import json
import statistics
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser_utils import (  # noqa: E402
    JupyterLab,
    artifacts_dir,
    browser_page,
    chromium_or_skip,
    make_tiny_workspace,
)

from workbench.data.store import LabelStore  # noqa: E402

pytestmark = pytest.mark.browser


def _person_labels(store_path: Path) -> list[tuple[int, str]]:
    with LabelStore(store_path) as store:
        return [(r.segment_id, r.concept) for r in store.labels(source="person") if r.author == "browser"]


def test_labeler_in_jupyterlab_stores_keypresses(tmp_path):
    chromium_or_skip()
    t0 = time.monotonic()
    root = tmp_path / "lab"
    root.mkdir()
    ws = make_tiny_workspace(root / "tiny", n_per_class=1, size=96)
    with LabelStore(ws / "labels.sqlite") as store:
        petal_key = "3"  # daisy leaves in order: disk, leaf, petal, stem
        first_ids = [s.id for s in store.unlabeled(limit=3)]
    cells = [
        "import workbench\n"
        f"wb = workbench.open({str(ws)!r}, author='browser')\n"
        "lab = wb.label()\n"
        "lab",
        "wb.graph()",
    ]
    with JupyterLab(root) as lab, browser_page() as page:
        lab.upload_notebook("labeler.ipynb", cells)
        lab.start_session("labeler.ipynb")  # a running kernel: no "Select Kernel" dialog
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.goto(lab.url("lab/tree/labeler.ipynb"), wait_until="domcontentloaded")
        cell = page.locator(".jp-Notebook .jp-Cell").first
        cell.wait_for(state="visible", timeout=30_000)
        page.get_by_text("| Idle").first.wait_for(timeout=30_000)
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")  # the labeler
        page.keyboard.press("Shift+Enter")  # the graph
        widget = page.locator(".wb-labeler")
        try:
            widget.wait_for(state="visible", timeout=40_000)
            page.locator(".wb-labeler img.wb-context[src^='data:image/']").wait_for(timeout=10_000)
        except Exception:
            page.screenshot(path=str(artifacts_dir(tmp_path) / "labeler-failed.png"))
            output = page.locator(".jp-Notebook .jp-Cell .jp-OutputArea").first
            if "javascript error" in output.inner_text(timeout=2_000):
                output.get_by_text("javascript error").first.click()
                page.wait_for_timeout(300)
            out = output.inner_text(timeout=2_000) + "\nconsole:\n" + "\n".join(console[-20:])
            raise AssertionError(f"the labeler did not render; cell output:\n{out}\nserver log:\n{lab.log()}") from None
        n_cells = page.locator(".jp-Notebook .jp-Cell").count()  # Shift+Enter added an empty cell below
        page.locator(".wb-labeler .wb-title").click()  # focus the widget, as a person would
        page.wait_for_function("document.activeElement && document.activeElement.classList.contains('wb-labeler')",
                               timeout=10_000)  # keys pressed before the focus lands would go to JupyterLab
        for k in (petal_key, "n", petal_key):
            page.keyboard.press(k)
            page.wait_for_timeout(150)
        deadline = time.monotonic() + 15
        got: list[tuple[int, str]] = []
        while time.monotonic() < deadline:
            got = _person_labels(ws / "labels.sqlite")
            if len(got) >= 3:
                break
            time.sleep(0.2)
        page.locator(".wb-labeler .wb-progtext").filter(has_text="3 / ").wait_for(timeout=10_000)
        shot = artifacts_dir(tmp_path) / "labeler.png"
        page.locator(".wb-labeler").screenshot(path=str(shot))
        # JupyterLab's shortcuts did not fire: the code cell is still a code cell, nothing was inserted
        assert page.locator(".jp-Notebook .jp-Cell").count() == n_cells
        assert page.locator(".jp-Notebook .jp-CodeCell").count() == n_cells
        # the ontology graph: vis-network runs inside the sandboxed, no-network frame, and a click on a
        # node reaches the widget (postMessage), which shows that concept's card
        iframe = page.locator(".jp-Notebook .jp-Cell").nth(1).locator("iframe")
        iframe.wait_for(state="visible", timeout=30_000)
        iframe.scroll_into_view_if_needed()
        graph = next(f for f in page.frames if f != page.main_frame and f.url.startswith("about:srcdoc"))
        graph.wait_for_function("typeof network !== 'undefined' && network.getPositions(['petal']).petal", timeout=15_000)
        card = page.locator(".wb-card").filter(has_text="strap-shaped")
        canvas = graph.locator("#mynetwork canvas").first
        for attempt in range(6):  # the layout may still be settling: read the node's place again and retry
            # the node's place on the canvas itself: Playwright scrolls the canvas into view and clicks
            # relative to it, so nothing above or below the graph (the card's height) moves the click
            where = graph.evaluate("() => network.canvasToDOM(network.getPositions(['petal']).petal)")
            canvas.click(position={"x": where["x"], "y": where["y"]})
            try:
                card.wait_for(timeout=2_500)
                break
            except Exception:
                if attempt == 5:
                    page.screenshot(path=str(artifacts_dir(tmp_path) / "graph-click-failed.png"))
                    raise
        page.locator(".wb-graph").first.screenshot(path=str(artifacts_dir(tmp_path) / "graph.png"))
        csp = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
        assert not csp, csp
    assert got == [(first_ids[0], "petal"), (first_ids[1], "none"), (first_ids[2], "petal")], got
    assert shot.stat().st_size > 5_000
    print(json.dumps({"seconds": round(time.monotonic() - t0, 1), "screenshot": str(shot)}))


#: The issue's goal: a grid page shown at most this long after Enter (median over pages).
GRID_PAGE_MS = 300.0

# In the page: the time from Enter's keydown to the first frame after the next page is in the DOM
# (the grid's data-page attribute is set once its tiles are drawn).
_TIMER_JS = """() => {
  window.__wbPageMs = [];
  const root = document.querySelector('.wb-labeler');
  const grid = root.querySelector('.wb-grid');
  let t0 = null;
  root.addEventListener('keydown', (e) => { if (e.key === 'Enter') t0 = performance.now(); }, true);
  new MutationObserver(() => {
    if (t0 === null) return;
    const start = t0;
    t0 = null;
    requestAnimationFrame(() => window.__wbPageMs.push(performance.now() - start));
  }).observe(grid, { attributes: true, attributeFilter: ['data-page'] });
}"""


def test_grid_review_in_jupyterlab_deselect_accept_next_page(tmp_path):
    chromium_or_skip()
    from workbench.data.datasets import ImageFolder
    from workbench.data.labelers import label_from_masks
    from workbench.data.segment import WeightFreeSegmenter, settings_hash
    from workbench.workspace.folder import Workspace

    t0 = time.monotonic()
    root = tmp_path / "lab"
    root.mkdir()
    ws_path = make_tiny_workspace(root / "tiny", n_per_class=5, size=96)
    with Workspace.open(ws_path) as ws:  # half the images labelled from their masks: petal can be ranked
        folder = ImageFolder(root / "tiny" / "data")
        some = copy.copy(folder)
        some.records = [r for i, r in enumerate(folder.records) if i % 2 == 0]
        label_from_masks(ws.store, some, ws.ontology, settings_hash=settings_hash(WeightFreeSegmenter()))
    cells = [
        "import workbench\n"
        f"wb = workbench.open({str(ws_path)!r}, author='browser')\n"
        "grid = wb.label(concept='petal', grid=True, train_every=0)\n"
        "grid",
    ]
    pages = 5
    with JupyterLab(root) as lab, browser_page() as page:
        lab.upload_notebook("grid.ipynb", cells)
        lab.start_session("grid.ipynb")
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.goto(lab.url("lab/tree/grid.ipynb"), wait_until="domcontentloaded")
        cell = page.locator(".jp-Notebook .jp-Cell").first
        cell.wait_for(state="visible", timeout=30_000)
        page.get_by_text("| Idle").first.wait_for(timeout=30_000)
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        widget = page.locator(".wb-labeler")
        tiles = widget.locator(".wb-grid .wb-tile")
        try:
            widget.wait_for(state="visible", timeout=40_000)
            tiles.first.wait_for(timeout=20_000)
        except Exception:
            page.screenshot(path=str(artifacts_dir(tmp_path) / "labeler-grid-failed.png"))
            raise AssertionError(f"the grid did not render; console:\n{console[-20:]}\nserver log:\n{lab.log()}") from None
        first = [int(x) for x in tiles.evaluate_all("ts => ts.map(t => t.dataset.segment)")]
        assert len(first) == 24
        widget.locator(".wb-title").click()  # focus the widget, as a person does
        page.wait_for_function("document.activeElement && document.activeElement.classList.contains('wb-labeler')",
                               timeout=10_000)
        page.evaluate(_TIMER_JS)
        page.keyboard.press("ArrowRight")  # focus ring on tile 1: x deselects it
        page.keyboard.press("x")
        page.keyboard.press("ArrowDown")  # tile 9 (8 per row): space toggles it off
        page.keyboard.press(" ")
        tiles.nth(5).click()  # a click toggles tile 5 off
        page.wait_for_function("document.querySelectorAll('.wb-tile.wb-off').length === 3", timeout=10_000)
        page.wait_for_timeout(300)  # Python's answer to the last toggle (its grid_choices) is drawn
        assert widget.locator(".wb-tile.wb-off").count() == 3
        deselected = {first[1], first[9], first[5]}
        shot = artifacts_dir(tmp_path) / "labeler-grid.png"
        widget.screenshot(path=str(shot))
        widget.locator(".wb-title").click()
        seen = [first]
        for n in range(pages):
            before = page.locator(".wb-grid").get_attribute("data-page")
            page.keyboard.press("Enter")
            page.wait_for_function(f"document.querySelector('.wb-grid').dataset.page !== {before!r}",
                                   timeout=10_000)
            ids = [int(x) for x in tiles.evaluate_all("ts => ts.map(t => t.dataset.segment)")]
            seen.append(ids)
            if not ids:
                break
            page.wait_for_timeout(1_500)  # a person looks at a page for seconds: the next one is built meanwhile
        page.wait_for_function(f"window.__wbPageMs.length >= {min(pages, len(seen) - 1)}", timeout=10_000)
        times = page.evaluate("window.__wbPageMs")
        widget.screenshot(path=str(artifacts_dir(tmp_path) / "labeler-grid-next.png"))
    with LabelStore(ws_path / "labels.sqlite") as store:
        rows = {s: store.label(s) for s in first}
    assert {s for s, r in rows.items() if r.concept == "none"} == deselected
    assert all(r.concept == "petal" for s, r in rows.items() if s not in deselected)
    assert all(r.author == "browser" and r.via.startswith("grid petal: ") for r in rows.values())
    assert all(not set(a) & set(b) for a, b in zip(seen, seen[1:]))  # every page shows new segments
    median = statistics.median(times)
    print(json.dumps({"seconds": round(time.monotonic() - t0, 1), "pages": len(times),
                      "page_ms": [round(t) for t in times], "median_ms": round(median, 1), "screenshot": str(shot)}))
    assert median <= GRID_PAGE_MS, times
    assert shot.stat().st_size > 5_000
