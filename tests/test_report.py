"""The report (workbench/evaluation/report.py): report.json carries exactly the numbers it is given, in
plain JSON; report.html is one self-contained file (no remote URL, no script, images inline) that
escapes every string that comes from data, concept names with HTML in them included."""
from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.evaluation.report import (
    accuracy_colour,
    ontology_svg,
    render_explanation,
    summary_table,
    write_report,
)
from workbench.models.hybrid import ConceptFiring, Explanation
from workbench.ontology.graph import Concept, Ontology

EVIL = "<img src=x onerror=alert(1)>"
ONTO = Ontology("toy", "plant", [
    Concept("plant", "Plant", parts=("flower", "stem")),
    Concept("flower", "Flower", f"petals {EVIL}", parts=("disk", "petal")),
    Concept("disk", "Disk", implementation="rule", rule="yellow_disk"), Concept("petal", "Petal"),
    Concept("stem", "Stem", "a <b>green</b> line"),
])


def _report() -> dict:
    concepts = {c: {"kind": ONTO.kind(c), "implementation": ONTO.concepts[c].implementation, "params": 10 + i,
                    "val_balanced_accuracy": 0.7 + 0.05 * i, "val_accuracy": 0.9 + 0.01 * i,
                    "status": "ok", "status_reason": "", "train_examples": np.int64(3 * i)}
                for i, c in enumerate(ONTO.bottom_up())}
    concepts["stem"].update(val_balanced_accuracy=0.5, val_accuracy=0.885, status="dead",
                            status_reason=f"predicts 'no' for every validation segment {EVIL}")
    concepts[f"<b>{EVIL}</b>"] = {"kind": "part", "implementation": "net", "params": 1, "val_balanced_accuracy": None,
                                  "val_accuracy": None}
    return {
        "ontology": ONTO.name,
        "root": ONTO.root,
        "dataset": Path("/data/set"),
        "labels_source": f"masks {EVIL}",
        "splits": {"train": 4, "val": np.int64(2), "test": 2,
                   "images": {"train": ["a.png"], "val": ["b.png"], "test": [f"c{EVIL}.png"]}},
        "seeds": {"seeds": [0, 1], "median_and_range": {"hybrid": {"median": 0.8, "min": 0.75, "max": 0.85}},
                  "paired": {"hybrid_minus_cnn_total": {"difference": 0.15, "ci_low": -0.05, "ci_high": 0.3, "n": 2}}},
        "concepts": concepts,
        "hybrid": [{"mode": "segments", "val_balanced_accuracy": np.float64(0.875), "balanced_accuracy": 0.8,
                    "params": 120, "supervision": {"kind": "segment labels and image labels", "segment_labels": 40,
                                                   "train_images": 4, "val_images": 2}}],
        "baselines": {"cnn_per_net": {"val_balanced_accuracy": 0.7, "balanced_accuracy": 0.65, "params": 990,
                                      "supervision": {"kind": "image labels", "train_images": 4, "val_images": 2}},
                      "cnn_total": {"val_balanced_accuracy": 0.72, "balanced_accuracy": 0.66, "params": 118},
                      "colour_histogram": {"val_balanced_accuracy": 0.6, "balanced_accuracy": 0.77, "params": 65}},
        "control": {"val_balanced_accuracy": 0.5, "balanced_accuracy": 0.5, "method": f"shuffled {EVIL}"},
        "ablation": {"stem": {"constant": 0.2, "balanced_accuracy_before": 0.8, "balanced_accuracy_after": 0.8,
                              "difference": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 2, "verdict": "no difference"}},
        "swap": {f"petal{EVIL}": {"how": "another seed", "balanced_accuracy_before": 0.875,
                                  "balanced_accuracy_after": 0.75, "difference": -0.125, "ci_low": -0.3,
                                  "ci_high": 0.1, "n": 2, "verdict": "swappable"}},
        "rules": {"disk": {"rule": f"yellow_disk{EVIL}", "rule_val_balanced_accuracy": 0.9,
                           "net_val_balanced_accuracy": 0.8, "rule_params": 0, "net_params": 955}},
        "warnings": [f"The part-blind baseline colour_histogram is close {EVIL}"],
        "scores": np.array([0.25, 0.5]),
        "timings": {"total": 1.5},
    }


def _explained():
    image = np.zeros((40, 60, 3), np.uint8)
    ex = Explanation("plant", 0.8, {
        "petal": ConceptFiring("petal", 0.9, "part", segment=1, bbox=(5, 5, 20, 20)),
        "stem": ConceptFiring("stem", 0.2, "part", segment=0, bbox=(30, 0, 35, 40)),
        "plant": ConceptFiring("plant", 0.8, "root"),
    })
    return image, ex, [(f"daisy/{EVIL}.png (class: daisy)", render_explanation(image, ex), ex)]


def _tags(page: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every element of the page with its attributes, as a browser's parser sees them."""
    found: list[tuple[str, list[tuple[str, str]]]] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, [(k, v or "") for k, v in attrs]))

    Tags().feed(page)
    return found


def test_report_json_holds_the_given_keys_as_plain_json(tmp_path):
    report = _report()
    jpath, hpath = write_report(tmp_path / "out", report, ONTO)
    assert (jpath, hpath) == (tmp_path / "out" / "report.json", tmp_path / "out" / "report.html")
    back = json.loads(jpath.read_text())
    assert list(back) == list(report)  # every key, in order
    assert back["dataset"] == "/data/set" and back["splits"]["val"] == 2
    assert back["hybrid"][0]["val_balanced_accuracy"] == 0.875 and back["scores"] == [0.25, 0.5]
    assert back["concepts"]["petal"]["train_examples"] == 3 * ONTO.bottom_up().index("petal")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.json"]  # no temp files


def test_something_that_is_not_json_is_refused_by_name(tmp_path):
    with pytest.raises(TypeError, match="not JSON-serialisable: object"):
        write_report(tmp_path, {**_report(), "bad": object()}, ONTO)


def test_the_html_is_self_contained(tmp_path):
    _, _, explained = _explained()
    _, hpath = write_report(tmp_path, _report(), ONTO, explained)
    page = hpath.read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    without_svg_namespace = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", without_svg_namespace)  # no remote address
    assert "@import" not in page and "url(" not in page
    tags = _tags(page)
    assert not {t for t, _ in tags} & {"script", "link", "iframe", "object", "embed", "base"}
    links = [(t, k, v) for t, attrs in tags for k, v in attrs if k in ("src", "href", "srcset", "action")]
    assert links and all(v.startswith("data:image/png;base64,") for _, _, v in links), links
    assert not [(t, k) for t, attrs in tags for k, _ in attrs if k.startswith("on")]  # no event handler
    assert [t for t, _ in tags].count("svg") == 1  # the ontology, inline


def test_every_string_from_data_is_escaped(tmp_path):
    _, _, explained = _explained()
    _, hpath = write_report(tmp_path, _report(), ONTO, explained)
    page = hpath.read_text()
    assert EVIL not in page and "<b>green</b>" not in page and "onerror=alert(1)>" not in page
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    assert f"&lt;b&gt;{escaped}&lt;/b&gt;" in page  # the concept name with HTML in it
    assert f"petals {escaped}" in page  # a description, in the graph's tooltip
    assert f"masks {escaped}" in page and f"yellow_disk{escaped}" in page and f"petal{escaped}" in page
    assert f"daisy/{escaped}.png" in page  # an image's name


def test_the_explanation_png_boxes_only_the_parts_that_fired():
    image, ex, _ = _explained()
    png = render_explanation(image, ex, size=120)
    im = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert im.shape == (80, 120, 3)  # the longer side scaled to size
    scale = 2
    x0, y0, x1, _ = (v * scale for v in (5, 5, 20, 20))
    assert im[y0 + 10, x0].any() and im[y0 + 10, x1].any()  # the petal's box is drawn
    assert not im[y0 + 10, x0 + 10].any()  # and not filled
    sx0, sx1 = 30 * scale, 35 * scale
    assert not im[40, sx0].any() and not im[40, sx1].any()  # stem scored 0.2: no box


def test_the_graph_colours_concepts_by_accuracy_and_dashes_rules():
    assert accuracy_colour(0.5) == "#c83c3c" and accuracy_colour(0.3) == "#c83c3c"  # chance and below: red
    assert accuracy_colour(1.0) == "#289650" and accuracy_colour(None) == "#cccccc"
    svg = ontology_svg(ONTO, {"disk": {"val_balanced_accuracy": 1.0, "val_accuracy": 0.5, "params": 0},
                              "petal": {"val_balanced_accuracy": 0.9, "status": "weak", "status_reason": "few"}})
    assert svg.count("<rect") == len(ONTO.concepts) and svg.count("<line") == 4  # one per part-of edge
    disk = re.search(r'<rect[^>]*fill="(#[0-9a-f]{6})"[^>]*stroke-dasharray[^>]*>.{0,200}?>disk<', svg)
    assert disk and disk.group(1) == "#289650"  # the rule: dashed, green at 100% balanced accuracy
    petal = re.search(r'<rect[^>]*fill="(#[0-9a-f]{6})"[^>]*><title>[^<]*weak: few</title></rect>.{0,200}?>petal<', svg)
    assert petal and petal.group(1) == "#c83c3c"  # weak: red whatever its number
    assert svg.count("stroke-dasharray") == 1


def test_the_summary_table_has_a_row_per_concept_and_classifier():
    md = summary_table(_report())
    lines = md.splitlines()
    assert lines[0].startswith("WARNING: The part-blind baseline")
    assert any(ln.startswith("| petal | part | net | ") for ln in lines)
    sup = "segment labels and image labels, 40 segment labels, 4 train + 2 validation images"
    assert f"| hybrid (segments) | 80.0% | 80.0% (75.0%–85.0%) | 87.5% | 120 | {sup} |" in lines
    assert ("| CNN, per-net budget (64² input) | 65.0% | – | 70.0% | 990 | image labels, 4 train + 2 validation images |"
            in lines)
    assert any(ln.startswith("| CNN, total budget (≈ the hybrid's parameters, 128² input) | 66.0% |") for ln in lines)
    assert any(ln.startswith("| part-blind: colour histogram | 77.0% |") for ln in lines)
    assert "| control: hybrid on shuffled segment labels | 50.0% | – | 50.0% | – | as the hybrid, labels shuffled |" in lines
    assert ("hybrid − CNN, total budget (≈ the hybrid's parameters, 128² input): +15.0% balanced accuracy, 95% interval "
            "[-5.0%, +30.0%] on 2 test images (2 seeds)") in lines
    assert any(ln.startswith("| stem (constant 0.2) | 80.0% → 80.0% | +0.0% [+0.0%, +0.0%] |") for ln in lines)


def _rows(page: str, table_after: str) -> list[list[tuple[str, str]]]:
    """The rows of the first table after the heading ``table_after``: per row, (style, cell text)."""
    rows: list[list[tuple[str, str]]] = []

    class Rows(HTMLParser):
        on, style, cell = False, "", None

        def handle_starttag(self, tag, attrs):
            if tag == "tr" and self.on:
                self.style = dict(attrs).get("style") or ""
                rows.append([])
            elif tag == "td" and self.on:
                self.cell = ""

        def handle_endtag(self, tag):
            if tag == "td" and self.cell is not None:
                rows[-1].append((self.style, self.cell))
                self.cell = None
            elif tag == "table" and self.on:
                self.on = False

        def handle_data(self, data):
            if data == table_after:
                self.on = True
            elif self.cell is not None:
                self.cell += data

    Rows().feed(page)
    return [r for r in rows if r]


def test_concept_table_shows_balanced_accuracy_and_dead_concepts_in_red(tmp_path):
    _, hpath = write_report(tmp_path, _report(), ONTO)
    page = hpath.read_text()
    head = re.search(r"<h2>Concepts</h2>\s*<table><tr>(.*?)</tr>", page).group(1)
    assert "val balanced accuracy" in head and "status" in head and ">val accuracy<" not in head
    rows = {r[0][1]: r for r in _rows(page, "Concepts")}
    stem = rows["stem"]
    assert all("color:#c83c3c" in style for style, _ in stem)  # the whole row in red
    cells = [text for _, text in stem]
    assert "50.0%" in cells and "88.5%" not in cells  # balanced accuracy, not the plain 88.5%
    assert f"dead: predicts 'no' for every validation segment {EVIL}" in cells  # the sentence, unescaped by the parser
    assert EVIL not in page  # ... and escaped in the page
    petal = [text for _, text in rows["petal"]]
    assert "ok" in petal and all("color" not in style for style, _ in rows["petal"])
    assert json.loads((tmp_path / "report.json").read_text())["concepts"]["stem"]["status"] == "dead"


def test_the_summary_table_shows_balanced_accuracy_and_status():
    lines = summary_table(_report()).splitlines()
    head = next(ln for ln in lines if ln.startswith("| concept |"))
    assert head.startswith("| concept | kind | implementation | val balanced accuracy | test balanced accuracy | status |")
    stem = next(ln for ln in lines if ln.startswith("| stem |"))
    assert "| 50.0% | – | dead: predicts 'no'" in stem and "88.5%" not in stem
