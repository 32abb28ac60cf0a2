"""The JupyterLab extension in a real browser: JupyterLab on loopback, Debian Chromium via Playwright.

One walk through the pull-request loop as a person does it: the Workbench panel opens and lists the
demo ontology, the palette command inserts a pending proposal as cells below the active cell, and
running the inserted code cell applies it: a new commit appears in the workspace repository and the
panel's history shows it. Screenshots are kept (``$WORKBENCH_ARTIFACTS`` or the test's tmp dir).

Skipped when /usr/bin/chromium is missing, unless ``WORKBENCH_REQUIRE_BROWSER=1``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_utils import JupyterLab, artifacts_dir, browser_page, chromium_or_skip, run_palette  # noqa: E402

pytestmark = pytest.mark.browser

PROPOSAL_TITLE = "Describe what a daisy looks like"


def _head(ws: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ws, capture_output=True, text=True, check=True).stdout.strip()


def _messages_since(ws: Path, sha: str) -> str:
    return subprocess.run(["git", "log", f"{sha}..HEAD", "--format=%H%n%B"], cwd=ws, capture_output=True,
                          text=True, check=True).stdout  # fmt: skip


def _seed_workspace(root: Path) -> Path:
    """``root/data`` (a tiny generated data set, segmented) and ``root/ws`` holding the seed ontology
    (the root concept only), with one pending proposal (a description change: no retraining)."""
    from workbench.data.datasets import generate_demo
    from workbench.data.segment import WeightFreeSegmenter, segment_dataset
    from workbench.ontology.graph import Ontology
    from workbench.review.proposals import make_proposal
    from workbench.review.store import ProposalStore
    from workbench.workspace.folder import Workspace
    from workbench.workspace.settings import Settings

    folder = generate_demo(root / "data", n_per_class=2, size=96, seed=1)
    seed = Ontology.load(Path(__file__).resolve().parents[1] / "ontologies" / "daisy.seed.yaml")
    with Workspace.create(root / "ws", seed, Settings(dataset="../data")) as ws:
        segment_dataset(ws.store, folder, WeightFreeSegmenter(), progress=False)
        p = make_proposal(
            ws.ontology,
            [{"op": {"op": "describe", "id": "daisy", "description": "A daisy in a photo: a flower head of white "
                     "petals around a yellow disk, held up on a thin green stem."},
              "rationale": "Say what a daisy looks like, not only that it is one."}],
            kind="person", author="person:test", title=PROPOSAL_TITLE,
            rationale="The seed description did not say what to look for.",
        )  # fmt: skip
        ProposalStore(ws).save(p)
    return root / "ws"


def test_panel_lists_the_ontology_inserts_a_proposal_and_applying_it_commits(tmp_path: Path) -> None:
    chromium_or_skip()
    from workbench.jupyter.session import Workbench
    from workbench.ontology.graph import Ontology

    t0 = time.monotonic()
    root = tmp_path / "root"
    root.mkdir()
    ws_path = _seed_workspace(root)
    pid = "0001"
    ontology = Ontology.load(ws_path / "ontology.yaml")
    shots = artifacts_dir(tmp_path)
    can_apply = hasattr(Workbench, "apply")

    with JupyterLab(root) as lab, browser_page() as page:
        # 0. the installed extension's settings schema is served, closed, and refuses a key
        served = lab.api("GET", "lab/api/settings/constructability-workbench:plugin")
        assert served["schema"]["additionalProperties"] is False
        assert set(served["schema"]["properties"]) >= {"claudeModel", "maxImageEdge", "gateMaxLoss"}
        with pytest.raises(urllib.error.HTTPError) as refused:
            lab.api("PUT", "lab/api/settings/constructability-workbench:plugin",
                    {"raw": json.dumps({"apiKey": "sk-ant-canary-0123456789"})})  # fmt: skip
        assert refused.value.code == 400
        settings_files = [p for p in tmp_path.rglob("*") if p.is_file() and "user-settings" in p.parts]
        assert "canary" not in "".join(p.read_text(errors="replace") for p in settings_files)
        # with no notebook open, the palette still lists "Insert Proposal as Cells", and running it says why not
        page.goto(lab.url("lab"), timeout=60_000)
        page.locator(".jp-LauncherCard").first.wait_for(timeout=60_000)
        run_palette(page, "Insert Proposal as Cells")
        error = page.locator(".jp-Dialog", has_text="Open a notebook first")
        error.wait_for(timeout=10_000)
        page.keyboard.press("Escape")
        error.wait_for(state="hidden", timeout=10_000)
        nb = lab.upload_notebook("demo.ipynb", ["import workbench\nwb = workbench.open('ws')"])
        page.goto(lab.url(f"lab/tree/{nb}"), timeout=60_000)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=60_000)

        # 1. the panel opens from its sidebar tab and lists the workspace's ontology
        page.locator(".jp-SideBar.jp-mod-left [data-id='workbench-panel']").click()
        panel = page.locator("#workbench-panel")
        for cid in ontology.concepts:
            panel.locator(f".jp-Workbench-concept[data-concept='{cid}']").first.wait_for(timeout=30_000)
        assert panel.locator(".jp-Workbench-workspace").inner_text() == "ws"
        labels = panel.locator(".jp-Workbench-conceptLabel").all_inner_texts()
        assert set(labels) == {c.label for c in ontology.concepts.values()}
        assert panel.locator(".jp-Workbench-concept[data-concept='daisy'] .jp-Workbench-impl").first.inner_text() == "net"
        proposal = panel.locator(f".jp-Workbench-proposal[data-proposal='{pid}']")
        proposal.wait_for(timeout=10_000)
        assert PROPOSAL_TITLE in proposal.inner_text() and "pending" in proposal.inner_text()
        page.screenshot(path=str(shots / "extension-1-panel.png"))
        assert proposal.locator(".jp-Workbench-gate").inner_text() == "not gated"
        proposal.locator(".jp-Workbench-runGate").click()  # the verdict is recorded and shown
        page.wait_for_function(
            "() => { const g = document.querySelector(\"#workbench-panel [data-proposal='0001'] .jp-Workbench-gate\");"
            " return g && g.textContent !== 'not gated'; }", timeout=60_000)  # fmt: skip
        from workbench.review.store import ProposalStore
        from workbench.workspace.folder import Workspace

        with Workspace.open(ws_path) as ws:
            recorded = ProposalStore(ws).load(pid).gate
        assert recorded and proposal.locator(".jp-Workbench-gate").inner_text().startswith(recorded["decision"])

        # 2. run the first cell (opens the workspace in the kernel), then insert the proposal below it
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Shift+Enter")
        page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputArea-prompt", has_text="[1]").wait_for(
            timeout=60_000)  # fmt: skip
        page.locator(".jp-Notebook .jp-Cell").first.click()
        run_palette(page, "Insert Proposal as Cells")
        page.locator(".jp-Dialog .jp-mod-accept").click()  # the one pending proposal is preselected
        code = page.locator(".jp-Notebook .jp-CodeCell", has_text=f'wb.apply("proposals/{pid}.yaml")')
        code.wait_for(timeout=20_000)
        cells = page.locator(".jp-Notebook .jp-Cell")  # [run cell, review (markdown), apply (code), empty]
        assert "jp-MarkdownCell" in (cells.nth(1).get_attribute("class") or "")
        cells.nth(1).filter(has_text=PROPOSAL_TITLE).wait_for(timeout=10_000)  # rendered Markdown
        assert f'wb.apply("proposals/{pid}.yaml")' in cells.nth(2).inner_text()
        n_cells = cells.count()
        run_palette(page, "Insert Proposal as Cells")  # a second time: selected again, not duplicated
        page.locator(".jp-Dialog .jp-mod-accept").click()
        page.locator(".jp-toast-content, .Toastify__toast", has_text="already in this notebook").first.wait_for(
            timeout=10_000)  # fmt: skip
        assert cells.count() == n_cells
        page.screenshot(path=str(shots / "extension-2-cells.png"))

        # 3. the graph command draws every concept
        run_palette(page, "Open Ontology Graph")
        graph = page.locator(".jp-WorkbenchGraph svg")
        graph.wait_for(timeout=10_000)
        drawn = {graph.locator("g.jp-WorkbenchGraph-node").nth(i).get_attribute("data-concept")
                 for i in range(graph.locator("g.jp-WorkbenchGraph-node").count())}  # fmt: skip
        assert drawn == set(ontology.concepts)
        assert graph.locator("line.jp-WorkbenchGraph-edge").count() == sum(len(ontology.parts(c)) for c in ontology.concepts)
        page.screenshot(path=str(shots / "extension-3-graph.png"))
        page.locator(".lm-TabBar-tab", has_text="demo.ipynb").first.click()

        # 4. running the code cell applies the proposal: a new commit in the workspace repository
        if not can_apply:
            pytest.skip("wb.apply (workbench.jupyter.session) has not landed: panel and insertion checked, apply not")
        before = _head(ws_path)
        code.click()
        page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + 60
        while f"Proposal: {pid}" not in _messages_since(ws_path, before) and time.monotonic() < deadline:
            time.sleep(0.5)
        page.screenshot(path=str(shots / "extension-4-applied.png"))
        log = _messages_since(ws_path, before)
        assert f"Proposal: {pid}" in log, f"no commit of proposal {pid}; log: {log!r}; cell says: {code.inner_text()}"
        applied = subprocess.run(["git", "log", f"{before}..HEAD", "--format=%H", "--", "ontology.yaml"], cwd=ws_path,
                                 capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
        assert len(applied) == 1, "applying one proposal changes ontology.yaml in one commit"
        assert "yellow disk" in Ontology.load(ws_path / "ontology.yaml").concepts["daisy"].description

        # 5. the panel updates by itself (it re-reads the workspace after a cell runs): the change is in
        # its history and the proposal is no longer pending
        panel.locator(".jp-Workbench-historyEntry", has_text=applied[0][:7]).wait_for(timeout=20_000)
        assert "accepted" in panel.locator(f".jp-Workbench-proposal[data-proposal='{pid}']").inner_text()
        page.screenshot(path=str(shots / "extension-5-history.png"))

        # 6. suggest -> cells -> run -> gated merge -> commit -> the panel updates: "Suggest Edits for an
        # Image" (the scripted suggester: no API key in tests) inserts the new proposal below the active cell
        code.click()
        run_palette(page, "Suggest Edits for an Image")
        page.locator(".jp-Dialog select").select_option(label="daisy/0000.png")
        page.locator(".jp-Dialog .jp-mod-accept").click()
        from workbench.review.suggest import ScriptedSuggester

        step = next(s for s in ScriptedSuggester().steps if s.kind == "suggest" and s.image == "daisy/0000.png")
        added = [e["op"]["id"] for e in step.edits if e["op"]["op"] == "add_concept"]
        assert added, "the first scripted step for daisy/0000.png adds concepts"
        code2 = page.locator(".jp-Notebook .jp-CodeCell", has_text='wb.apply("proposals/0002.yaml")')
        code2.wait_for(timeout=30_000)
        assert step.title in panel.locator(".jp-Workbench-proposal[data-proposal='0002']").inner_text()
        before = _head(ws_path)
        code2.click()
        page.keyboard.press("Shift+Enter")
        # nothing is labelled yet, so the gate cannot judge the new concepts: the addition is accepted as
        # provisional (labelled and trained, but no parent combines it until a person confirms it)
        accepted = code2.locator(".jp-OutputArea-output", has_text="provisional")
        accepted.wait_for(timeout=60_000)
        assert "wb.confirm(" in accepted.inner_text() and "Traceback" not in accepted.inner_text()
        merged = _messages_since(ws_path, before)
        assert "Proposal: 0002" in merged and "Gate:" in merged and "Gate-override:" not in merged
        onto = Ontology.load(ws_path / "ontology.yaml")
        assert all(onto.concepts[cid].provisional for cid in added)
        for cid in added:  # the panel shows the grown ontology by itself, each new concept marked provisional
            row = panel.locator(f".jp-Workbench-concept.jp-mod-provisional[data-concept='{cid}']").first
            row.wait_for(timeout=60_000)
            assert "provisional" in row.inner_text()

        # 7. every concept traces to the proposal that introduced it: the panel asks workbench.review.history.why
        traced = added[-1]
        panel.locator(f".jp-Workbench-concept[data-concept='{traced}'] .jp-Workbench-conceptRow").first.click()
        why = panel.locator(f".jp-Workbench-concept[data-concept='{traced}'] .jp-Workbench-why", has_text="proposal 0002")
        why.wait_for(timeout=10_000)
        assert "introduced" in why.inner_text() and step.title in why.inner_text()
        page.screenshot(path=str(shots / "extension-6-suggested.png"))
    assert time.monotonic() - t0 < 120


def test_panel_shows_review_findings_asks_for_a_review_and_marks_provisional_concepts(tmp_path: Path) -> None:
    """The sidebar beside a person's review: a scripted proposal's findings (serious ones open and red),
    a "Review" button on a proposal nobody reviewed (the findings appear, nothing is decided), and a
    provisional concept marked in the tree and on its card."""
    chromium_or_skip()
    from workbench.ontology.graph import Ontology
    from workbench.review.proposals import make_proposal
    from workbench.review.reviewers import review_proposal
    from workbench.review.store import ProposalStore
    from workbench.review.suggest import ScriptedSuggester, SuggestContext
    from workbench.workspace.folder import Workspace

    root = tmp_path / "root"
    (root / "notes").mkdir(parents=True)
    daisy = Path(__file__).resolve().parents[1] / "ontologies" / "daisy.yaml"
    text = daisy.read_text().replace("version: 1", "version: 2", 1).replace(
        "- id: leaf\n", "- id: leaf\n  provisional: true\n", 1)  # a concept not yet confirmed
    with Workspace.create(root / "ws", Ontology.loads(text)) as ws:
        s = ScriptedSuggester()
        step = s.steps[2]  # petal_tip and stalk: the authored review says neither should be accepted
        scripted = ProposalStore(ws).save(s.play(step, ws.ontology, SuggestContext(image_id=step.image)))
        review_proposal(ws, scripted.id, "scripted")
        plain = ProposalStore(ws).save(make_proposal(
            ws.ontology, [{"op": {"op": "describe", "id": "stem", "description": "maybe a green line"},
                           "rationale": "shorter"}], kind="person", author="person:test", title="Shorter stem"))
        ontology_before = ws.ontology_path.read_bytes()
    shots = artifacts_dir(tmp_path)
    with JupyterLab(root) as lab, browser_page(viewport=(1280, 1000)) as page:
        nb = lab.upload_notebook("notes/review.ipynb", ["1 + 1"])
        page.goto(lab.url(f"lab/tree/{nb}"), timeout=60_000)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        page.locator(".jp-SideBar.jp-mod-left [data-id='workbench-panel']").click()
        panel = page.locator("#workbench-panel")
        first = panel.locator(f".jp-Workbench-proposal[data-proposal='{scripted.id}']")
        first.wait_for(timeout=30_000)
        review = first.locator(".jp-Workbench-review")
        assert review.get_attribute("open") is not None  # pending with concerns: open by itself
        assert review.locator("summary").inner_text().startswith("Review: 2 serious")  # and the checks' warnings
        assert "authored findings, not model output" in review.inner_text()
        serious = review.locator(".jp-Workbench-finding.jp-mod-serious").all_inner_texts()
        assert len(serious) == 2 and "petal_tip" in serious[0] and "stalk" in serious[1]
        # the provisional concept: a badge in the tree and a sentence on its card
        leaf = panel.locator(".jp-Workbench-concept[data-concept='leaf']").first
        assert leaf.locator(".jp-Workbench-badge.jp-mod-provisional").inner_text() == "provisional"
        assert not panel.locator(".jp-Workbench-concept[data-concept='stem'] .jp-mod-provisional").count()
        leaf.locator(".jp-Workbench-conceptRow").first.click()
        card = leaf.locator(".jp-Workbench-card")
        card.locator(".jp-Workbench-cardTable").wait_for(timeout=10_000)
        assert "not yet part of its parent's composition" in card.inner_text()
        page.screenshot(path=str(shots / "extension-7-review.png"))
        # a proposal nobody reviewed: ask for it; the findings appear, the proposal stays pending
        other = panel.locator(f".jp-Workbench-proposal[data-proposal='{plain.id}']")
        assert "not reviewed yet" in other.inner_text()
        other.locator(".jp-Workbench-askReview").click()
        other.locator(".jp-Workbench-review").wait_for(timeout=30_000)
        assert "warning" in other.locator(".jp-Workbench-review summary").inner_text()  # the lint on 'maybe'
        assert "pending" in other.inner_text()
        panel.screenshot(path=str(shots / "extension-8-review-panel.png"))
    with Workspace.open(root / "ws") as ws:
        stored = ProposalStore(ws).load(plain.id)
        assert stored.review is not None and stored.status == "pending" and ws.ontology_path.read_bytes() == ontology_before
