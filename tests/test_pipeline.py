"""The main job end to end on a tiny generated data set, through the CLI entry point."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.data.datasets import generate_demo
from workbench.evaluation.pipeline import run

DAISY_YAML = str(Path(__file__).resolve().parents[1] / "ontologies" / "daisy.yaml")
REQUIRED = {"ontology", "split", "concepts", "hybrid", "baseline", "swap", "control", "timings"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    generate_demo(root / "data", n_per_class=8, seed=5)
    rep = run(root / "data", DAISY_YAML, root / "out", quick=True, max_epochs=3, progress=False,
              log=lambda m: None)
    return root, rep


def test_report_has_the_documented_fields(report):
    root, rep = report
    on_disk = json.loads((root / "out" / "report.json").read_text())
    assert REQUIRED <= set(on_disk)
    assert on_disk["split"]["val"] > 0 and on_disk["split"]["train"] > 0
    for c, m in on_disk["concepts"].items():
        assert {"kind", "implementation", "params", "val_accuracy", "train_examples"} <= set(m), c
        assert m["kind"] in ("part", "composite", "root")
    modes = {h["mode"] for h in on_disk["hybrid"]}
    assert modes == {"segments", "prototype"}
    for h in on_disk["hybrid"]:
        assert {"val_accuracy", "balanced_accuracy", "params"} <= set(h)
    assert on_disk["baseline"]["params"] <= 1000
    assert {"concept", "val_accuracy_before", "val_accuracy_after"} <= set(on_disk["swap"])
    assert "balanced_accuracy" in on_disk["control"]
    assert on_disk["labels_source"].startswith("ground-truth")
    # the shipped daisy implements its disk with a plain-code rule; the report compares it with a net
    disk = on_disk["rules"]["disk"]
    assert disk["rule"] == "yellow_disk" and disk["rule_params"] == 1 and disk["net_params"] < 1000
    assert on_disk["concepts"]["disk"]["implementation"] == "rule"


def test_report_html_is_self_contained(report):
    root, _ = report
    html = (root / "out" / "report.html").read_text()
    assert "<svg" in html and "data:image/png;base64," in html
    for remote in ("http://", "https://", "<script"):
        assert remote not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_second_run_reuses_segments_and_models(report, capsys):
    root, first = report
    lines: list[str] = []
    rep = run(root / "data", DAISY_YAML, root / "out", quick=True, max_epochs=3, progress=False,
              log=lines.append, modes=("segments",))
    assert rep["segmenter"]["cached_images"] == rep["segmenter"]["images"]
    assert all(reason == "unchanged" for reason in rep["retrained"].values())
    assert rep["hybrid"][0]["val_accuracy"] == first["hybrid"][0]["val_accuracy"]
    # each stage is named when it starts and timed when it ends; the swap test's result is printed
    assert lines[0] == f"[1/11] workspace: {root / 'out' / 'workspace'} …", lines[:2]
    for name in ("segment", "train", "baseline", "control", "swap", "write"):
        assert sum(line.startswith("[") and f"] {name}" in line for line in lines) == 2, name
    assert any(line.startswith("[11/11] write  ") and line.endswith(" s") for line in lines), lines[-3:]
    assert any(line.startswith(f"swap test: {rep['swap']['concept']} ") and "root balanced accuracy" in line
               for line in lines)


def test_run_without_masks_says_how_to_label(tmp_path, capsys):
    data = tmp_path / "data"
    generate_demo(data, n_per_class=2, seed=1)
    (data / "parts.json").unlink()
    code = main(["run", "--dataset", str(data), "--ontology", DAISY_YAML, "--out", str(tmp_path / "o")])
    assert code == 1
    err = capsys.readouterr().err
    assert "no ground-truth part masks" in err and "wb.label()" in err
