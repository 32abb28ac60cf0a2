"""Smoke tests of the benchmarks: each runs at a tiny size through ``benchmarks/run.py`` and writes
valid JSON and a Markdown table; a benchmark whose module is missing is skipped with its reason.

The figures themselves are not checked (they depend on the machine); their shape is.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import run as bench_run  # noqa: E402  (benchmarks/run.py)
from _common import interleave, summarize  # noqa: E402


def _run(tmp_path: Path, name: str) -> dict:
    out = tmp_path / "results"
    code = bench_run.main(["--profile", "tiny", "--only", name, "--out", str(out), "--workdir", str(tmp_path / "w")])
    data = json.loads((out / "latest.json").read_text())  # valid JSON, or this raises
    md = (out / "latest.md").read_text()
    assert data["order"] == [name] and data["machine"]["cpus"] >= 1
    entry = data["benchmarks"][name]
    assert code == (1 if entry["status"] == "failed" else 0)
    assert entry["status"] in ("ok", "skipped"), entry.get("traceback", entry)
    if entry["status"] == "ok":
        assert entry["wall_s"] > 0 and entry["peak_rss_mb"] > 0
        assert "| " in md and "Reproduce: `python benchmarks/run.py --profile tiny`" in md
    else:
        assert entry["reason"] and entry["reason"] in md
    return entry


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def test_scoring(tmp_path):
    r = _run(tmp_path, "scoring")["result"]
    assert r["images"] == 4 and r["segment_uncached_s"]["n"] == 2 and r["segment_cached_s"]["n"] == 2
    assert _finite(r["segmenter_images_per_s"]["median"]) and r["cache_speedup"]["median"] > 1


def test_incremental(tmp_path):
    r = _run(tmp_path, "incremental")["result"]
    assert r["full_s"]["n"] == r["incremental_s"]["n"] == 2
    assert {"leaf", "daisy"} <= set(r["retrained"])  # the changed leaf and the root above it
    assert len(r["retrained"]) < r["concepts"]  # the others were loaded, not retrained


def test_curves(tmp_path):
    r = _run(tmp_path, "curves")["result"]
    assert set(r["domains"]) == {"parts", "house"} and "test" in r["protocol"]
    for d in r["domains"].values():
        assert d["data"]["splits"]["test"] > 0
        assert [p["per_class"] for p in d["points"]] == [2, "all"]
        for p in d["points"]:
            for m in ("hybrid_segments", "cnn_per_net", "cnn_total", "colour_histogram", "colour_layout"):
                acc = p[m]["balanced_accuracy"]
                assert acc["n"] + len(p[m]["errors"]) == 1
                assert acc["median"] is None or 0.0 <= acc["median"] <= 1.0
            assert p["labelling"]["hybrid_every_segment_s"] > p["labelling"]["baseline_s"] > 0
        if d["points"][-1]["hybrid_segments"]["balanced_accuracy"]["n"]:  # all labels trained: the studies ran
            assert d["studies"] and set(d["studies"][0]["ablation"]) and "swap" in d["studies"][0]
    assert r["label_seconds"]["source"]


@pytest.mark.slow  # a whole `workbench run --quick` in a subprocess: ~10 s idle, 30 s on a busy machine
def test_demo_quick(tmp_path):
    r = _run(tmp_path, "demo_quick")["result"]
    assert r["wall_s"] > 0 and r["peak_rss_mb"] > 50 and r["split"]["val"] > 0


@pytest.mark.parametrize("name", ["label", "growth"])
def test_other_helpers_benchmarks_run_or_are_skipped_with_a_reason(tmp_path, name):
    entry = _run(tmp_path, name)
    if entry["status"] == "ok":
        assert entry["result"]


def test_summarize_and_interleave():
    s = summarize([2.0, 1.0, 4.0])
    assert (s["median"], s["min"], s["max"], s["noisy"]) == (2.0, 1.0, 4.0, True)
    assert summarize([1.0, 1.4])["noisy"] is False
    order = []
    stats = interleave({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=4)
    assert order == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert stats["a"]["n"] == stats["b"]["n"] == 4


def test_unknown_benchmark_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        bench_run.main(["--only", "nope", "--out", str(tmp_path)])
    assert info.value.code == 2


def test_growth_refactors_keep_the_ontology_smaller(tmp_path):
    entry = _run(tmp_path, "growth")
    if entry["status"] == "skipped":
        pytest.skip(entry["reason"])
    r = entry["result"]
    w, wo = r["with_refactors"], r["without_refactors"]
    assert w["series"][0]["concepts"] == wo["series"][0]["concepts"] == 1
    assert w["series"][-1]["images"] == wo["series"][-1]["images"] > 0
    assert len(w["final_concepts"]) < len(wo["final_concepts"])


@pytest.mark.parametrize("name", ["fuzz_images", "fuzz_ontology"])
def test_fuzz_targets_fallback_runs(name, capsys):
    """The fuzz targets (on demand, not in CI) do not rot: their plain-Python fallback runs a few inputs."""
    import importlib

    mod = importlib.import_module(name)
    from _fuzz import fuzz_main

    assert fuzz_main(name, mod.target, mod.seeds, argv=["--fallback", "--runs", "40", "--seed", "1"]) == 0
    assert "no crash" in capsys.readouterr().out


def test_fuzz_fallback_reports_a_crash(tmp_path, monkeypatch, capsys):
    from _fuzz import fuzz_main

    monkeypatch.chdir(tmp_path)

    def fragile(data: bytes) -> None:
        if b"boom" in data:
            raise ValueError("found it")

    assert fuzz_main("t", fragile, lambda: [b"ok", b"boom"], argv=["--fallback", "--runs", "0"]) == 1
    assert [p.read_bytes() for p in tmp_path.glob("crash-*.bin")] == [b"boom"]


def test_include_takes_an_earlier_result_and_says_when_it_was_measured(tmp_path):
    first = _run(tmp_path / "a", "growth")
    if first["status"] == "skipped":
        pytest.skip(first["reason"])
    out = tmp_path / "b"
    assert bench_run.main(["--profile", "tiny", "--only", "growth", "--include",
                           f"growth={tmp_path / 'a' / 'results' / 'latest.json'}", "--out", str(out)]) == 0
    data = json.loads((out / "latest.json").read_text())
    assert data["benchmarks"]["growth"]["included_from"].endswith("latest.json")
    assert data["benchmarks"]["growth"]["result"]["with_refactors"] == first["result"]["with_refactors"]
    assert "measured separately" in (out / "latest.md").read_text()
    (out / "latest.md").unlink()
    assert bench_run.main(["--render", str(out / "latest.json")]) == 0
    assert "Ontology growth" in (out / "latest.md").read_text()
    with pytest.raises(SystemExit):
        bench_run.main(["--include", f"growth={tmp_path / 'missing.json'}", "--out", str(out)])


@pytest.mark.slow  # generates, segments and trains five times: ~30 s idle, ~75 s on a busy machine
def test_relations_on_off(tmp_path):
    import bench_relations

    r = bench_relations.run(10, (None,), (0,), 3, tmp_path / "w", log=lambda *a: None)
    (pt,) = r["points"]
    for side in ("off", "on"):
        assert pt[side]["n"] == 1 and 0.0 <= pt[side]["median"] <= 1.0
    assert pt["gain_per_seed"] == [round(pt["raw_on"][0] - pt["raw_off"][0], 4)]
    assert r["control"]["on"]["n"] == r["control"]["off"]["n"] == 1
    assert "| all |" in bench_relations.table(r) and "shuffled-labels control" in bench_relations.table(r)


def test_curves_take_the_labelling_time_a_person_really_took(tmp_path):
    import numpy as np
    from bench_curves import measured_segment_seconds

    from workbench.data.store import SegmentData
    from workbench.ontology.graph import Ontology
    from workbench.workspace.folder import Workspace

    ws = Workspace.create(tmp_path / "ws", Ontology.load(Path(__file__).parent.parent / "ontologies" / "daisy.yaml"))
    try:
        with pytest.raises(ValueError, match="no timed labels"):
            measured_segment_seconds(ws.path)
        img = ws.store.add_image("a.png", "0" * 64, 8, 8, "daisy")
        mask = np.zeros((8, 8), bool)
        mask[:2, :2] = True
        sids = ws.store.add_segments(img, "h", [SegmentData((0, 0, 2, 2), 4, mask)] * 4)
        for sid, ms in zip(sids, (1000, 3000, 2000, None)):
            ws.store.set_label(sid, "petal", source="person", author="ana", elapsed_ms=ms)
        ws.store.set_label(sids[3], "disk", source="ground_truth", author="masks", elapsed_ms=99_000)
    finally:
        ws.close()
    secs, n = measured_segment_seconds(tmp_path / "ws")
    assert (secs, n) == (2.0, 3)  # the median of the person's timed labels; masks and untimed ones ignored


def test_labelling(tmp_path):
    r = _run(tmp_path, "labelling")["result"]
    d = r["domains"]["parts"]
    assert d["strategies"]["llm_presort"]["status"] == "not run" and d["strategies"]["llm_presort"]["reason"]
    for name in ("store_order", "least_certain", "grid"):
        s = d["strategies"][name]
        assert s["status"] == "ok" and len(s["runs"]) == 1
        pts = s["runs"][0]["points"]
        assert [p["seconds"] for p in pts] == r["settings"]["budgets_s"]
        assert [p["labels"] for p in pts] == sorted(p["labels"] for p in pts)  # more time, never fewer labels
        assert all(p["balanced_accuracy"] is None or 0.0 <= p["balanced_accuracy"] <= 1.0 for p in pts)
    assert d["strategies"]["grid"]["runs"][0]["actions"]["single"] >= 1  # the seed labels before the pages
    assert {"cnn_per_net", "cnn_total"} == set(d["cnn"])
    ratio = d["ratio"]
    assert "person_time_ratio" in ratio and ratio["note"]
    assert r["person_time_ratio"] == ratio["person_time_ratio"]
    assert all(r["action_seconds"]["sources"][k] for k in ("grid_page_s", "grid_item_s", "correction_s"))
    import bench_labelling

    paths = bench_labelling.plot(r, tmp_path / "labelling")  # the figure, from the JSON as written
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in paths[1].read_bytes()[:2000]
    assert "person_time_ratio" in bench_labelling.table(r)


def test_simulated_person_pays_for_each_action_and_grid_pages_find_parts_faster():
    import numpy as np
    from bench_labelling import ACTION_SECONDS, simulate

    rng = np.random.default_rng(0)
    truth = list(rng.choice(["petal", "disk", "none", "none", "none"], size=600))
    features = np.stack([np.array([t == c for c in ("petal", "disk", "none")], float) * 3 for t in truth])
    features = (features + rng.normal(scale=0.5, size=features.shape)).astype(np.float32)
    pool = np.arange(500)  # rows 500.. are never labelled (not in the pool)
    seen = {}

    def run(strategy):
        got = []
        info = simulate(strategy, features, truth, pool, ["petal", "disk"], [60.0, 240.0], 10.0,
                        lambda s, labels: got.append((s, labels)), lambda: {}, page=20)
        seen[strategy] = got
        return info

    grid = run("grid")
    a, s = grid["actions"], ACTION_SECONDS
    assert a["page"] >= 1 and a["grid_item"] == 20 * a["page"] and a["single"] >= 5
    assert grid["spent_s"] == round(10.0 + a["single"] * s["segment_label_s"] + a["page"] * s["grid_page_s"]
                                    + a["grid_item"] * s["grid_item_s"] + a["correction"] * s["correction_s"], 1)
    store = run("store_order")
    for strategy in ("grid", "store_order"):
        (t1, l1), (t2, l2) = seen[strategy]
        assert (t1, t2) == (60.0, 240.0) and set(l1) <= set(l2) and max(l2) < 500
        assert all(lab == (truth[r] or "none") for r, lab in l2.items())  # the oracle answers from the truth
    parts = {k: sum(1 for v in seen[k][1][1].values() if v != "none") for k in seen}
    assert parts["grid"] > 2 * parts["store_order"], parts
    assert store["page_precision"] is None and grid["page_precision"]["median"] > 0.8
