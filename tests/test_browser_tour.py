"""The tour as a person meets it, in a real JupyterLab and headless Debian Chromium (Playwright).

One Run All of ``notebooks/00_tour.ipynb`` (copied into the server root, as ``jupyter lab`` run from
the repository serves it), then what a person does next, each a check:

1. the labeler at the end of section 3 takes keys: something is left to label, the count it shows is
   the store's from the start, each key lands in the store and the next segment is shown (the round
   trip, key to next segment on screen, has a median of at most 100 ms);
2. the Workbench sidebar shows the workspace the notebook opened, with no setting typed
   (``workbench.open`` records it for the notebook's kernel);
3. the review widget shown before ``wb.apply`` says what ``wb.apply`` did (its status and each edit's
   decision, never "pending" beside "accepted");
4. a concept proposed in the labeler ("New concept…") appears in the sidebar without pressing Refresh;
5. a concept's card in the sidebar has its examples and accuracy, and its button inserts the labeler
   cell;
6. the notebook, saved and reopened without its kernel, shows each widget's readable stand-in instead
   of "Error displaying widget: model not found".

Screenshots of every widget go to ``test-artifacts/browser/`` (``$WORKBENCH_ARTIFACTS``). Skipped when
/usr/bin/chromium is missing, unless ``WORKBENCH_REQUIRE_BROWSER=1``.
"""
from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import pytest

from workbench.jupyter.widgets.labeler import GRID_PAGE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_utils import (  # noqa: E402
    REPO,
    JupyterLab,
    artifacts_dir,
    browser_page,
    chromium_or_skip,
    run_palette,
)

pytestmark = pytest.mark.browser

TOUR = REPO / "notebooks" / "00_tour.ipynb"
#: The labeler's round trip in the browser: key pressed -> the next segment on screen (median).
MAX_ROUND_TRIP_MS = 100


def _errors(page) -> list[str]:
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
                        ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']").all_inner_texts()


def _text(locator) -> str:
    """The text there, spaces collapsed (textContent: JupyterLab skips rendering cells out of view, whose
    innerText is then empty)."""
    locator.scroll_into_view_if_needed()
    return " ".join((locator.text_content() or "").split())


def _shot(locator, name: str) -> Path:
    path = artifacts_dir() / name
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(path))
    return path


def test_run_all_then_label_the_sidebar_follows_and_a_saved_copy_reads(tmp_path: Path) -> None:
    chromium_or_skip()
    from workbench.data.store import LabelStore
    from workbench.review.store import ProposalStore
    from workbench.workspace.folder import Workspace

    t0 = time.monotonic()
    root = tmp_path / "lab"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(TOUR, root / "notebooks" / TOUR.name)
    nb_path = f"notebooks/{TOUR.name}"
    # the tour writes next to itself (notebooks/runs/...), as it does for a person: no WORKBENCH_NOTEBOOK_DIR
    with JupyterLab(root, unset=("WORKBENCH_NOTEBOOK_DIR", "ANTHROPIC_API_KEY")) as lab, \
            browser_page(viewport=(1400, 1000)) as page:
        lab.start_session(nb_path)  # a running kernel: no "Select Kernel" dialog
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.goto(lab.url(f"lab/tree/{nb_path}"), wait_until="domcontentloaded")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        page.get_by_text("| Idle").first.wait_for(timeout=60_000)

        # ------------------------------------------------------------------ Run All
        page.locator(".jp-Notebook .jp-Cell").first.click()
        run_palette(page, "Run All Cells")
        last = page.locator(".jp-Notebook .jp-CodeCell", has_text="CLEAN_UP = False")
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            prompt = last.locator(".jp-InputArea-prompt").first.inner_text()
            if any(ch.isdigit() for ch in prompt) or _errors(page):
                break
            page.wait_for_timeout(1000)
        errors = _errors(page)
        assert not errors, f"Run All stopped at an error:\n{errors[0][-3000:]}"
        assert any(ch.isdigit() for ch in last.locator(".jp-InputArea-prompt").first.inner_text()), \
            "Run All did not reach the last cell in 7 minutes"
        runs = sorted((root / "notebooks" / "runs").glob("wb-00-*/workspace"))
        assert len(runs) == 1, runs
        ws_path = runs[0]
        ws_rel = ws_path.relative_to(root).as_posix()
        store_file = ws_path / "labels.sqlite"
        ran_all = time.monotonic() - t0

        # ------------------------------------------------------------------ 1. the labeler
        labeler = page.locator(".wb-labeler").first
        labeler.wait_for(state="visible", timeout=30_000)
        labeler.locator("img.wb-context[src^='data:image/']").wait_for(timeout=10_000)
        with LabelStore(store_file) as store:
            done, total = store.progress()
        assert done < total, "the tour left nothing to label"
        shown = _text(labeler.locator(".wb-progtext"))
        assert shown == f"{done} / {total} labelled", (shown, done, total, _text(labeler)[:2000],
                                                       labeler.inner_html()[:1500], console[-20:])  # right from the start
        assert labeler.locator(".wb-empty").is_hidden()
        _shot(labeler, "tour-labeler.png")
        labeler.locator(".wb-title").click()  # focus the widget, as a person does
        page.wait_for_function("document.activeElement && document.activeElement.classList.contains('wb-labeler')",
                               timeout=10_000)
        page.evaluate("""() => {
            const root = document.querySelector('.wb-labeler');
            const facts = root.querySelector('.wb-facts');
            window.__wbRoundTrips = [];
            let t0 = null;
            root.addEventListener('keydown', () => { t0 = performance.now(); }, true);
            new MutationObserver(() => {
                if (t0 !== null) { window.__wbRoundTrips.push(performance.now() - t0); t0 = null; }
            }).observe(facts, {childList: true, subtree: true, characterData: true});
        }""")
        keys = ["n", "3", "n", "n", "2", "n", "n", "3", "n", "n", "n", "4"]
        for k in keys:
            page.keyboard.press(k)
            page.wait_for_timeout(350)
        labeler.locator(".wb-progtext").filter(has_text=f"{done + len(keys)} / {total} labelled").wait_for(timeout=10_000)
        with LabelStore(store_file) as store:
            mine = [r for r in store.labels(source="person") if r.author == "you"]
        assert len(mine) == len(keys), mine
        trips = page.evaluate("window.__wbRoundTrips")
        assert len(trips) >= len(keys) - 1, trips
        median = statistics.median(trips)
        assert median <= MAX_ROUND_TRIP_MS, f"key -> next segment: median {median:.0f} ms ({trips})"

        # an empty filter says so in a sentence (no empty picture frames); "least certain" has work after training
        select = labeler.locator("select.wb-filter")
        select.select_option("suggested")
        empty = labeler.locator(".wb-empty")
        empty.wait_for(state="visible", timeout=10_000)
        assert "No LLM suggestion" in _text(empty) and select.input_value() == "suggested"
        assert "No LLM suggestion" not in (labeler.locator(".wb-notice").text_content() or "")  # said once
        assert labeler.locator(".wb-main").is_hidden() and labeler.locator(".wb-strip").is_hidden()
        _shot(labeler, "tour-labeler-empty-filter.png")
        select.select_option("least_certain")
        empty.wait_for(state="hidden", timeout=10_000)
        labeler.locator("img.wb-context[src^='data:image/']").wait_for(timeout=10_000)
        select.select_option("unlabelled")

        # ------------------------------------------------------------------ 2. the sidebar follows the notebook
        page.locator(".jp-SideBar.jp-mod-left [data-id='workbench-panel']").click()
        panel = page.locator("#workbench-panel")
        panel.locator(".jp-Workbench-workspace", has_text=ws_rel).wait_for(timeout=20_000)
        assert panel.locator(".jp-Workbench-workspace").inner_text() == ws_rel
        assert panel.locator(".jp-Workbench-workspaceSource").inner_text() == "opened by this notebook"
        settings = lab.api("GET", "lab/api/settings/constructability-workbench:plugin")
        assert not (settings.get("settings") or {}).get("workspace"), "a workspace setting was typed"
        panel.locator(".jp-Workbench-concept[data-concept='petal']").first.wait_for(timeout=10_000)

        # ------------------------------------------------------------------ 3. the review widget after wb.apply
        with Workspace.open(ws_path) as ws:
            applied = ProposalStore(ws).load("0009")
        review = page.locator(".wb-review").nth(1)  # tour-25's widget; wb.apply ran in the cell after it
        review.locator(".wb-status").wait_for(timeout=10_000)
        assert _text(review.locator(".wb-status")) == applied.status
        shown = _text(review)
        if applied.status == "accepted":
            assert "(pending)" not in shown
            assert "(accepted)" in shown and "Gate: merge" in shown, shown
            assert review.locator("button", has_text="Accept selected").is_disabled()
        else:  # the gate refused: the widget shows its verdict and still offers the decision
            assert "Gate: " in shown
        _shot(review, "tour-review-after-apply.png")
        _shot(page.locator(".wb-review").first, "tour-review.png")
        _shot(page.locator(".wb-graph").first, "tour-graph.png")
        _shot(page.locator(".wb-dashboard").first, "tour-dashboard.png")
        _shot(page.locator(".wb-explain").first, "tour-explanation.png")
        graph_text = _text(page.locator(".wb-graph .wb-card").first)
        assert "— (not trained)" not in graph_text  # the graph shown before training shows the models now

        # ------------------------------------------------------------------ 4. a labeler proposal, live in the sidebar
        refreshes = page.evaluate("""() => { window.__wbRefreshClicks = 0;
            document.querySelector('.jp-Workbench-refresh').addEventListener('click', () => window.__wbRefreshClicks++);
            return 0; }""")
        with Workspace.open(ws_path) as ws:
            before = {p.id for p in ProposalStore(ws).list()}
        labeler.locator("summary", has_text="New concept").click()
        labeler.locator("input[placeholder^='id']").fill("bud")
        labeler.locator("input[placeholder^='label']").fill("Flower bud")
        labeler.locator("textarea").fill("A closed green flower head, round, on top of a stem.")
        labeler.locator("button", has_text="Propose concept").click()
        labeler.locator(".wb-message", has_text="saved (add concept bud)").wait_for(timeout=10_000)
        with Workspace.open(ws_path) as ws:
            (new_id,) = {p.id for p in ProposalStore(ws).list()} - before
        panel.locator(f".jp-Workbench-proposal[data-proposal='{new_id}']").wait_for(timeout=15_000)
        assert "Add concept bud" in panel.locator(f".jp-Workbench-proposal[data-proposal='{new_id}']").inner_text()
        assert page.evaluate("window.__wbRefreshClicks") == refreshes == 0
        panel.locator(".jp-Workbench-pendingOnly").check()
        assert panel.locator(".jp-Workbench-proposal.jp-mod-accepted").count() == 0
        assert panel.locator(".jp-Workbench-proposal.jp-mod-pending").count() >= 1

        # ------------------------------------------------------------------ 5. the concept card
        panel.locator(".jp-Workbench-concept[data-concept='petal'] .jp-Workbench-conceptRow").first.click()
        card = panel.locator(".jp-Workbench-concept[data-concept='petal'] .jp-Workbench-card").first
        card.locator(".jp-Workbench-example").nth(5).wait_for(timeout=15_000)
        assert card.locator(".jp-Workbench-example").count() == 6
        text = card.inner_text()
        assert "balanced accuracy" in text and "parameters" in text and "introduced by" in text, text
        _shot(panel, "tour-sidebar.png")
        n_cells = page.locator(".jp-Notebook .jp-Cell").count()
        card.locator(".jp-Workbench-labelConcept").click()
        page.locator(".jp-Notebook .jp-CodeCell",  # the card's cell opens grid review of the concept
                     has_text='wb.label(concept="petal", grid=True)  # pages ranked as petal').wait_for(timeout=10_000)
        assert page.locator(".jp-Notebook .jp-Cell").count() == n_cells + 1

        # ------------------------------------------------------------------ 6. saved, reopened without its kernel
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Control+s")
        bundles: list[dict] = []
        deadline = time.monotonic() + 30
        while not bundles and time.monotonic() < deadline:
            page.wait_for_timeout(500)
            saved = json.loads((root / nb_path).read_text())
            bundles = [o["data"] for c in saved["cells"] for o in c.get("outputs", [])
                       if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        html = ["".join(b.get("text/html", "")) for b in bundles]  # nbformat keeps text as a list of lines
        assert bundles and all("wb-fallback" in h for h in html), [sorted(b) for b in bundles]
        for k in lab.api("GET", "api/kernels") or []:
            lab.api("DELETE", f"api/kernels/{k['id']}")
        page.reload(wait_until="domcontentloaded")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        fallback = page.locator(".wb-fallback")
        fallback.first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # every failed widget view has been swapped by now
        assert fallback.count() == len(bundles), (fallback.count(), len(bundles))
        assert page.get_by_text("Error displaying widget: model not found").count() == 0
        assert "run the cell again" in _text(fallback.first)
        _shot(page.locator(".wb-fallback").nth(0), "tour-saved-review.png")
        copies = page.locator(".wb-fallback", has_text="Workbench labeler")
        pictures = [copies.nth(i).locator("img").count() for i in range(copies.count())]
        # the one-at-a-time labeler keeps its segment's picture, the grid its page of tiles
        assert 1 in pictures and GRID_PAGE in pictures, pictures
        labeler_copy = copies.nth(pictures.index(1))
        _shot(labeler_copy, "tour-saved-labeler.png")
        _shot(copies.nth(pictures.index(GRID_PAGE)), "tour-saved-grid.png")
    print(json.dumps({"run_all_s": round(ran_all, 1), "total_s": round(time.monotonic() - t0, 1),
                      "round_trip_median_ms": round(median, 1)}))
