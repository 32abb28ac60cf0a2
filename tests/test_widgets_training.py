"""Widgets over trained models: the training dashboard, explain, the ontology graph and its card,
and the labeler's "least certain" filter. One tiny workspace is labelled from its ground-truth masks
and trained once for the module (few epochs)."""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser_utils import copy_workspace  # noqa: E402

from workbench.jupyter.widgets.dashboard import TrainingDashboard, explain_image, explain_widget  # noqa: E402
from workbench.jupyter.widgets.graph import OntologyGraph, accuracy_colour, concept_info, graph_html  # noqa: E402
from workbench.review.decisions import accept  # noqa: E402
from workbench.review.proposals import make_proposal  # noqa: E402
from workbench.review.store import ProposalStore  # noqa: E402
from workbench.workspace.folder import Workspace  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory, workspace_templates):
    ws = Workspace.open(workspace_templates.copy("labelled", tmp_path_factory.mktemp("trained")))
    dash = TrainingDashboard(ws, max_epochs=1)
    out = dash.run()
    yield ws, dash, out
    ws.close()


def test_dashboard_shows_each_concept_trained_and_the_table(trained):
    ws, dash, out = trained
    assert dash.error.value == "" and out is not None
    assert set(dash.bars) == set(ws.ontology.concepts)
    assert all(b.value == 1.0 and b.bar_style == "success" for b in dash.bars.values())
    for c, st in dash.status.items():
        assert st.value.startswith("trained") and "val balanced accuracy" in st.value, (c, st.value)
    assert "retrained" in dash.note.value
    assert "<th>val balanced accuracy</th><th>status</th>" in dash.table.value
    assert "<th>val accuracy</th><th>parameters</th><th>train" not in dash.table.value
    for c, m in out["concepts"].items():
        assert f"<code>{c}</code>" in dash.table.value
        assert m["status"] in ("ok", "weak", "dead")
        side = json.loads((ws.models_dir / f"{c}.json").read_text())
        assert side["metrics"]["n_params"] == m["params"]
    assert "hybrid (segments)" in dash.table.value and "no report.json" in dash.table.value


def test_training_again_keeps_unchanged_models(trained):
    ws, _, _ = trained
    dash = TrainingDashboard(ws, max_epochs=1)
    out = dash.run()
    assert out["result"].retrained == []
    assert all(s.value.startswith("kept") for s in dash.status.values())


def test_the_reports_test_figures_are_shown_as_such(trained, tmp_path):
    ws, dash, out = trained
    report = ws.path / "report.json"
    report.write_text(json.dumps({"hybrid": [{"mode": "segments", "balanced_accuracy": 0.8, "params": 2827}],
                                  "baselines": {"cnn_per_net": {"balanced_accuracy": 0.7, "params": 993},
                                                "cnn_total": {"balanced_accuracy": 0.75, "params": 2808}}}))
    try:
        html = dash.table_html(out)
    finally:
        report.unlink()
    assert "CNN, per-net budget (64² input) (report.json)</td><td>70.0%</td><td>test</td><td>993" in html
    assert "CNN, total budget" in html and "75.0%" in html and "this training</td>" in html
    assert "same-budget" not in html


def test_training_errors_show_in_the_dashboard(segmented_ws):
    dash = TrainingDashboard(segmented_ws, max_epochs=1)
    assert dash.run() is None
    assert "positive" in dash.error.value and "label" in dash.error.value  # no labels yet: says what to do
    assert not dash.button.disabled


def test_explain_an_image(trained):
    ws, dash, _ = trained
    path = ws.store.images()[0].path
    w = explain_widget(ws, path)
    assert "data:image/jpeg;base64," in w.value and ws.ontology.root in w.value
    assert len(re.findall(r"daisy: p=\d\.\d\d", w.value)) == 1  # the scores are listed once
    # every fired part with a segment gets a box with a readable HTML label (name and score), not pixels
    _, ex, _ = explain_image(ws, path)
    fired = [c for c in ex.concepts.values() if c.bbox is not None and c.score >= ex.threshold]
    labels = re.findall(r"<span style='position:absolute;[^>]*font:12px[^>]*>([a-z_]+) (\d\.\d\d)</span>", w.value)
    assert sorted(labels) == sorted((c.concept, f"{c.score:.2f}") for c in fired)
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "wb-fallback" in bundle["text/html"]
    dash.explain_box.value = "nope.png"
    dash.explain_button.click()
    assert "no image &#x27;nope.png&#x27; in the label store" in dash.error.value


def test_graph_nodes_and_card(trained, tmp_path):
    ws, _, out = trained
    g = OntologyGraph(ws)
    assert g.error.value == ""
    page = g.frame.srcdoc
    assert "vis.Network" in page and "Content-Security-Policy" in page and "wbSelect" in page
    assert not re.search(r"<(?:script|link)[^>]*(?:src|href)=\"https?://", page)  # nothing from the network
    nodes = json.loads(re.search(r"nodes = new vis\.DataSet\((\[.*?\])\);", page).group(1))
    by_id = {n["id"]: n for n in nodes}
    assert by_id["disk"]["shape"] == "diamond" and by_id["petal"]["shape"] == "dot"  # rule vs net
    acc = out["concepts"]["petal"]["val_balanced_accuracy"]
    side = json.loads((ws.models_dir / "petal.json").read_text())["metrics"]["val_balanced_accuracy"]
    info = concept_info(ws)["petal"]
    assert info["val_balanced_accuracy"] == side  # the number the sidebar shows
    want = "#c83c3c" if info["status"] in ("weak", "dead") else accuracy_colour(side)
    assert by_id["petal"]["color"]["background"] == want
    assert by_id["petal"]["size"] > by_id["disk"]["size"]  # 900-odd parameters vs a rule's few
    assert acc is not None
    # clicking a node in the frame (what the iframe's postMessage does) shows its card
    g.frame.set_state({"selected": "petal"})
    card = g.card.value
    assert g.picker.value == "petal" and "Petal" in card and "strap-shaped" in card
    assert card.count("data:image/png;base64,") >= 1  # example segments
    assert "proposals that touched it" in card and "validation balanced accuracy" in card
    g.info["petal"] = {**g.info["petal"], "status": "dead", "status_reason": "predicts 'no' for <every> segment"}
    dead = g.card_html("petal")
    assert "color:#c83c3c" in dead and "dead</span>: predicts &#x27;no&#x27; for &lt;every&gt; segment" in dead
    out_svg = g.save_svg(tmp_path / "ontology.svg")
    assert out_svg.read_text().startswith("<svg") and "petal" in out_svg.read_text()


def test_graph_card_lists_proposals_and_escapes(trained, tmp_path):
    ws_path = tmp_path / "copy"
    src, _, _ = trained
    shutil.copytree(src.path, ws_path)
    ws = Workspace.open(ws_path)
    try:
        p = ProposalStore(ws).save(make_proposal(ws.ontology, [
            {"op": {"op": "describe", "id": "stem", "description": "thin <b>green</b> line"}}],
            kind="person", author="person:<i>eve</i>", title="stem <script>x</script>"))
        accept(ws, p.id, by="ana")
        g = OntologyGraph(ws)
        g.select("stem")
        card = g.card.value
        assert p.id in card and "&lt;script&gt;" in card and "<script" not in card
        assert "thin &lt;b&gt;green&lt;/b&gt; line" in card
        g.frame.set_state({"selected": "no_such"})
        assert "no concept &#x27;no_such&#x27;" in g.error.value
    finally:
        ws.close()


def test_graph_html_escapes_tooltips():
    from workbench.ontology.graph import Concept, Ontology

    o = Ontology("x", "x", [Concept("x", "X", "see <img src=x onerror=alert(1)>", parts=("y",)), Concept("y", "Y")])
    nodes = json.loads(re.search(r"nodes = new vis\.DataSet\((\[.*?\])\);", graph_html(o, {})).group(1))
    title = {n["id"]: n["title"] for n in nodes}["x"]
    assert "<img" not in title and "&lt;img src=x onerror=alert(1)&gt;" in title


def test_the_fallback_least_certain_order_follows_the_trained_models_doubt(trained, tmp_path):
    """``inference.least_certain_order``: the order the labeler's "least certain" falls back to when
    propagation cannot rank any concept (its own order is tested in test_labeler_grid.py)."""
    from workbench.models.inference import least_certain_order
    from workbench.models.loading import load_model
    from workbench.models.train import collect

    src, _, _ = trained
    ws = Workspace.open(copy_workspace(src.path, tmp_path))
    try:
        # clear a handful of labels so there is something unlabelled to rank
        segs = [s.id for s in ws.store.segments()]
        for s in segs[::3]:
            ws.store.clear_label(s, author="test")
        order, notice = least_certain_order(ws)
        assert order and notice.startswith("Least certain first")
        _, table = collect(ws.store, None, ws.settings.crop_size, image_root=src.path.parent / "data")
        doubt = np.full(len(table.segment_ids), np.inf)
        for leaf in ws.ontology.leaves():
            m = load_model(ws.models_dir / f"{leaf}.safetensors")
            doubt = np.minimum(doubt, np.abs(np.asarray(m.predict_proba(table.crops)).reshape(-1) - 0.5))
        by_id = dict(zip(table.segment_ids.tolist(), doubt.tolist()))
        shown = order[:9]
        assert all(ws.store.label(s) is None for s in shown)
        assert [by_id[s] for s in shown] == sorted(by_id[s] for s in shown)
        unlabelled = [s for s in segs if ws.store.label(s) is None]
        assert sorted(order) == sorted(unlabelled)
        assert by_id[shown[0]] == min(by_id[s] for s in unlabelled)
    finally:
        ws.close()


def test_the_facade_trains_explains_and_draws(trained):
    import workbench

    ws, _, _ = trained
    with workbench.open(ws.path) as wb:
        dash = wb.train(max_epochs=1)
        assert dash.outcome is not None and dash.outcome["result"].retrained == []
        assert "retrained nothing" in repr(dash)
        assert "application/vnd.jupyter.widget-view+json" in dash._repr_mimebundle_()
        dash._displayed = True  # what show_and_run sets in a kernel: no second copy of the widget
        assert set(dash._repr_mimebundle_()) == {"text/plain"}
        assert wb.train(start=False).outcome is None
        assert "daisy: p=" in wb.explain(ws.store.images()[0].path).value
        assert "no image" in wb.explain("missing.png").value
        assert wb.graph().picker.value == "daisy"


def test_explain_an_array_segments_it_first(trained):
    from workbench.data.datasets import load_image
    from workbench.jupyter.widgets.dashboard import explain_image

    ws, _, _ = trained
    pixels = load_image(ws.path.parent / "data" / ws.store.images()[0].path)
    _, ex, name = explain_image(ws, pixels)
    _, ex2, _ = explain_image(ws, ws.store.images()[0].path)
    assert name == "array" and ex.root == "daisy"
    assert abs(ex.probability - ex2.probability) < 1e-6  # same segmenter, same segments, same answer


def test_a_graph_shown_before_training_shows_the_new_models_after_wb_train(workspace_templates, tmp_path):
    import workbench

    ws_path = workspace_templates.copy("labelled", tmp_path)
    with workbench.open(ws_path) as wb:
        graph = wb.graph()
        assert "untrained" in graph.frame.srcdoc and "bal. acc." not in graph.frame.srcdoc
        stale_card = graph.card.value
        dash = wb.train(max_epochs=1)
        assert dash.outcome is not None
        assert "untrained" not in graph.frame.srcdoc and "bal. acc." in graph.frame.srcdoc
        assert graph.card.value != stale_card and "— (not trained)" not in graph.card.value
        bundle = graph._repr_mimebundle_()
        assert "data:image/svg+xml;base64," in bundle["text/html"] and "wb-fallback" in bundle["text/html"]


def test_the_graph_page_fills_its_frame_without_a_scrollbar():
    from workbench.ontology.graph import Ontology

    page = graph_html(Ontology.load(Path(__file__).parents[1] / "ontologies" / "daisy.yaml"), {})
    assert "html,body{margin:0;padding:0;overflow:hidden}" in page and "#mynetwork{height:100vh!important" in page
    assert '"nodeSpacing": 190' in page  # room for two-line labels side by side
