"""The main job end to end on a tiny generated data set, through the CLI entry point."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from workbench.cli import main
from workbench.data.datasets import generate_demo
from workbench.evaluation.pipeline import run

DAISY_YAML = str(Path(__file__).resolve().parents[1] / "ontologies" / "daisy.yaml")
REQUIRED = {"ontology", "splits", "seeds", "concepts", "hybrid", "baselines", "ablation", "swap", "control",
            "warnings", "timings"}
BASELINES = {"cnn_per_net", "cnn_total", "colour_histogram", "colour_layout"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    generate_demo(root / "data", n_per_class=8, seed=5)
    (root / "data" / "daisy" / "broken.png").write_bytes(b"not a png")  # skipped, and reported
    mask = sorted((root / "data" / "not_daisy").glob("*.parts.png"))[0]
    Image.new("L", (7, 5)).save(mask)  # a part mask of the wrong size: its image is not labelled
    rep = run(root / "data", DAISY_YAML, root / "out", quick=True, max_epochs=3, progress=False,
              log=lambda m: None, modes=("segments", "prototype"))
    return root, rep


def test_report_has_the_documented_fields(report):
    root, rep = report
    on_disk = json.loads((root / "out" / "report.json").read_text())
    assert REQUIRED <= set(on_disk)
    sp = on_disk["splits"]
    assert sp["train"] > 0 and sp["val"] > 0 and sp["test"] > 0
    assert sp["train"] + sp["val"] + sp["test"] == 16 and sum(map(len, sp["images"].values())) == 16
    assert sp["by_class"]["daisy"]["test"] == sp["by_class"]["not_daisy"]["test"]  # class-balanced
    assert not set(sp["images"]["test"]) & (set(sp["images"]["train"]) | set(sp["images"]["val"]))
    for c, m in on_disk["concepts"].items():
        assert {"kind", "implementation", "params", "balanced_accuracy", "test_balanced_accuracy", "status",
                "train_examples"} <= set(m), c
        assert m["kind"] in ("part", "composite", "root") and m["status"] in ("ok", "weak", "dead")
    modes = {h["mode"] for h in on_disk["hybrid"]}
    assert modes == {"segments", "prototype"}
    for h in on_disk["hybrid"]:
        assert {"balanced_accuracy", "val_balanced_accuracy", "params"} <= set(h) and h["on"] == "test"
        assert not any(k.startswith("_") for k in h)
    b = on_disk["baselines"]
    assert set(b) == BASELINES and all(x["on"] == "test" and "supervision" in x for x in b.values())
    assert b["cnn_per_net"]["params"] < 1000 < b["cnn_total"]["params"] <= on_disk["hybrid"][0]["params"]
    assert b["cnn_per_net"]["supervision"]["kind"] == "image labels"
    assert on_disk["hybrid"][0]["supervision"]["segment_labels"] > 0
    # ablation for every concept below the root, swap for every net concept (not the rule)
    onto = [c for c in on_disk["concepts"] if c != on_disk["root"]]
    assert set(on_disk["ablation"]) == set(onto)
    nets = {c for c, m in on_disk["concepts"].items() if m["implementation"] == "net"}
    assert set(on_disk["swap"]) == nets and "disk" not in nets
    for d in list(on_disk["ablation"].values()) + list(on_disk["swap"].values()):
        assert {"balanced_accuracy_before", "balanced_accuracy_after", "difference", "ci_low", "ci_high", "verdict"} <= set(d)
    assert "balanced_accuracy" in on_disk["control"] and "rules" in on_disk["control"]["method"]
    assert on_disk["seeds"]["seeds"] == [0] and "hybrid_minus_cnn_total" in on_disk["seeds"]["paired"]
    assert on_disk["labels_source"].startswith("ground-truth")
    # the shipped daisy implements its disk with a plain-code rule; the report compares it with a net
    disk = on_disk["rules"]["disk"]
    assert disk["rule"] == "yellow_disk" and disk["net_params"] < 1000
    assert {"rule_val_balanced_accuracy", "net_val_balanced_accuracy"} <= set(disk)
    assert on_disk["concepts"]["disk"]["implementation"] == "rule"


def test_skipped_files_are_reported_once_with_their_reason(report):
    root, rep = report
    sk = rep["skipped"]
    assert [Path(i["path"]).name for i in sk["images"]] == ["broken.png"] and sk["images"][0]["reason"]
    assert "broken.png" not in sk["images"][0]["reason"]  # the path is named once, beside its reason
    assert len(sk["masks"]) == 1 and sk["masks"][0]["reason"] and "not_daisy" in sk["masks"][0]["path"]
    html = (root / "out" / "report.html").read_text()
    assert "broken.png" in html and sk["masks"][0]["reason"].replace("'", "&#x27;") in html


def test_report_html_shows_what_the_json_holds(report):
    root, rep = report
    html = (root / "out" / "report.html").read_text()
    for text in ("CNN, per-net budget", "CNN, total budget", "part-blind: colour histogram", "part-blind: colour layout",
                 "Ablation", "Swap", "test balanced accuracy", "Which images are in which split",
                 "control: hybrid on shuffled segment labels", "hybrid − CNN, total budget"):
        assert text in html, text
    for w in rep["warnings"]:
        assert w.replace("'", "&#x27;") in html


def test_report_html_is_self_contained(report):
    root, _ = report
    html = (root / "out" / "report.html").read_text()
    assert "<svg" in html and "data:image/png;base64," in html
    for remote in ("http://", "https://", "<script"):
        assert remote not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_second_run_reuses_segments_models_and_the_split(report, capsys):
    root, first = report
    lines: list[str] = []
    rep = run(root / "data", DAISY_YAML, root / "out", quick=True, max_epochs=3, progress=False,
              log=lines.append, modes=("segments",))
    assert rep["segmenter"]["cached_images"] == rep["segmenter"]["images"]
    assert all(reason == "unchanged" for reason in rep["retrained"].values())
    assert rep["splits"]["images"] == first["splits"]["images"]  # stored: no image changes side
    assert rep["hybrid"][0]["balanced_accuracy"] == first["hybrid"][0]["balanced_accuracy"]
    # each stage is named when it starts and timed when it ends; every swap result is printed
    assert lines[0] == f"[1/13] workspace: {root / 'out' / 'workspace'} …", lines[:2]
    for name in ("segment", "train", "cnn", "part-blind", "control", "ablation", "swap", "write"):
        assert sum(line.startswith("[") and f"] {name}" in line for line in lines) == 2, name
    assert any(line.startswith("[13/13] write  ") and line.endswith(" s") for line in lines), lines[-3:]
    for c in rep["swap"]:
        assert any(line.startswith(f"  swap {c}: root balanced accuracy") for line in lines), c
    # the split was assigned in the first run and said then, not now
    assert not any("test image" in line and "aside" in line for line in lines)


def test_seeds_give_median_range_and_a_paired_interval(report):
    root, first = report
    rep = run(root / "data", DAISY_YAML, root / "out", quick=True, max_epochs=2, progress=False,
              log=lambda m: None, modes=("segments",), seeds=2)
    s = rep["seeds"]
    assert s["seeds"] == [0, 1] and len(s["per_seed"]) == 2
    for method in ("hybrid", "cnn_per_net", "cnn_total", "colour_histogram", "colour_layout", "control"):
        r = s["median_and_range"][method]
        assert len(r["values"]) == 2 and r["min"] <= r["median"] <= r["max"], method
    assert s["per_seed"][0]["hybrid"]["balanced_accuracy"] == rep["hybrid"][0]["balanced_accuracy"]
    d = s["paired"]["hybrid_minus_cnn_per_net"]
    assert d["n"] == rep["splits"]["test"] and d["ci_low"] <= d["difference"] <= d["ci_high"]
    assert not any(k.startswith("_") for f in s["per_seed"] for m in f.values() for k in m)


def test_run_without_masks_says_how_to_label(tmp_path, capsys):
    data = tmp_path / "data"
    generate_demo(data, n_per_class=2, seed=1)
    (data / "parts.json").unlink()
    code = main(["run", "--dataset", str(data), "--ontology", DAISY_YAML, "--out", str(tmp_path / "o")])
    assert code == 1
    err = capsys.readouterr().err
    assert "no ground-truth part masks" in err and "wb.label()" in err


def test_an_image_without_segments_is_listed_even_beside_a_failed_namesake(tmp_path):
    """Generated classes reuse file names (daisy/0001.png, not_daisy/0001.png): a failure of one must not
    hide the other from the images that gave no segments."""
    from types import SimpleNamespace

    import numpy as np

    from workbench.evaluation.pipeline import _skipped

    rows = [SimpleNamespace(id=1, path="daisy/0001.png"), SimpleNamespace(id=2, path="not_daisy/0001.png")]
    ws = SimpleNamespace(store=SimpleNamespace(images=lambda: rows))
    trained = SimpleNamespace(images=SimpleNamespace(image_ids=np.array([], dtype=np.int64)),
                              problems=[(str(tmp_path / "daisy" / "0001.png"), "not an image file")])
    out = _skipped(ws, trained, SimpleNamespace(problems=[]), SimpleNamespace(problems=[], no_masks=[]), [], tmp_path)
    assert [i["path"] for i in out["images"]] == [str(tmp_path / "daisy" / "0001.png")]
    assert out["no_segments"] == ["not_daisy/0001.png"]
