"""Part-blind baselines on the generated scenes, and the hybrid's first indication on the new ones.

    python benchmarks/bench_blind.py [--per-class 150] [--size 256] [--seeds 0,1,2]
                                     [--scenes daisy,parts,house] [--hybrid-scenes parts,house]
                                     [--hybrid-per-class 150] [--no-hybrid] [--workdir DIR]
                                     [--json benchmarks/results/blind.json] [--md benchmarks/results/blind.md]

For every scene of :data:`workbench.data.datasets.DEMO_SCENES` asked for and every seed: generate the
set with that seed (``generate_demo(..., seed=seed, scene=scene)``), split it by image, class-stratified,
into train / validation / test (50 / 25 / 25 %, the split seeded with the same seed), fit every
part-blind baseline of :mod:`workbench.evaluation.blind` on train (every choice on validation) and
score test: balanced accuracy, median and range over the seeds. The load average is recorded when
each scene starts.

Then, only for the scenes given in ``--hybrid-scenes`` (none by default: the hybrid's figures on these
scenes, over seeds and label counts, come from ``bench_curves.py``), the main job on the seed-0 set, as
a user runs it: ``python -m workbench.cli run --dataset DIR --ontology ontologies/<ontology>.yaml --out
OUT --quick`` (``--hybrid-pythonpath`` runs another checkout's copy); its figures are the report's test
balanced accuracies.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]  # + this checkout

from _common import REPO, RESULTS, machine_info, md_table, summarize, write_json  # noqa: E402

#: The fractions of the by-image, class-stratified split.
FRACTIONS = (0.5, 0.25, 0.25)
#: The ceiling a part-blind baseline should stay at or below on a scene meant to need parts.
CEILING = 0.75
#: Scenes meant to need parts (the default daisy scene is measured for comparison).
PART_SCENES = ("parts", "house")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _stat(s: dict[str, Any]) -> str:
    return f"{_pct(s['median'])} ({_pct(s['min'])}–{_pct(s['max'])})" if s.get("n") else "–"


def load_set(root: Path) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Images, labels (1 = the scene's positive class) and record ids of a generated set."""
    from workbench.data.datasets import ImageFolder

    folder = ImageFolder(root)
    marker = json.loads((root / "demo.json").read_text())
    positive = marker["classes"][0]
    images, y, ids = [], [], []
    for rec, image in folder.iter_images():
        images.append(image)
        y.append(int(rec.label == positive))
        ids.append(rec.id)
    return images, np.array(y), ids


def blind_scene(scene: str, per_class: int, size: int, seeds: tuple[int, ...], work: Path,
                log: Any = print) -> dict[str, Any]:
    """Every part-blind baseline on ``scene``, one generated set and split per seed."""
    from workbench.data.datasets import generate_demo
    from workbench.evaluation.blind import (
        BASELINES,
        balanced_accuracy,
        fit_baseline,
        stratified_split,
    )

    out: dict[str, Any] = {"scene": scene, "loadavg_at_start": [round(v, 2) for v in os.getloadavg()],
                           "per_class": per_class, "size": size, "seeds": list(seeds), "runs": []}
    t_scene = time.perf_counter()
    for seed in seeds:
        data = work / f"{scene}-{per_class}-{size}-seed{seed}"
        if not (data / "demo.json").exists():
            generate_demo(data, n_per_class=per_class, size=size, seed=seed, scene=scene)
        images, y, _ = load_set(data)
        tr, va, te = stratified_split(y, FRACTIONS, seed=seed)
        for name in BASELINES:
            t = time.perf_counter()
            model = fit_baseline(name, [images[i] for i in tr], y[tr], [images[i] for i in va], y[va], seed=seed)
            test = balanced_accuracy(y[te], model.predict_proba([images[i] for i in te]))
            run = {"seed": seed, "baseline": name, "test_balanced_accuracy": round(test, 4),
                   "n_train": len(tr), "n_val": len(va), "n_test": len(te),
                   "seconds": round(time.perf_counter() - t, 1), **model.describe()}
            out["runs"].append(run)
            log(f"  {scene} seed {seed} {name}: test {_pct(test)}, chose {model.choice} ({run['seconds']} s)")
    out["summary"] = {name: summarize([r["test_balanced_accuracy"] for r in out["runs"] if r["baseline"] == name])
                      for name in BASELINES}
    first = {r["baseline"]: r for r in out["runs"]}
    out["baselines"] = {name: {"supervision": r["supervision"], "params": r["params"], "params_note": r["params_note"]}
                        for name, r in first.items()}
    out["seconds"] = round(time.perf_counter() - t_scene, 1)
    return out


def hybrid_scene(scene: str, per_class: int, size: int, work: Path, pythonpath: str | None,
                 log: Any = print) -> dict[str, Any]:
    """The existing main job (``workbench run --quick``) on the seed-0 set of ``scene``."""
    from workbench.data.datasets import DEMO_SCENES, generate_demo

    data = work / f"{scene}-{per_class}-{size}-seed0"
    if not (data / "demo.json").exists():
        generate_demo(data, n_per_class=per_class, size=size, seed=0, scene=scene)
    ontology = REPO / "ontologies" / f"{DEMO_SCENES[scene].ontology}.yaml"
    out_dir = work / f"run-{scene}-{per_class}"
    cmd = [sys.executable, "-m", "workbench.cli", "run", "--dataset", str(data), "--ontology", str(ontology),
           "--out", str(out_dir), "--quick"]
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    load = [round(v, 2) for v in os.getloadavg()]
    log(f"  {scene}: {' '.join(cmd[2:])}")
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = round(time.perf_counter() - t, 1)
    res: dict[str, Any] = {"scene": scene, "ontology": str(ontology.relative_to(REPO)), "per_class": per_class,
                           "size": size, "seed": 0, "command": "workbench " + " ".join(cmd[3:]),
                           "code_from": pythonpath or "this checkout", "loadavg_at_start": load,
                           "seconds": seconds, "returncode": proc.returncode}
    if proc.returncode != 0:
        res["error"] = (proc.stderr or proc.stdout)[-2000:]
        log(f"  {scene}: the main job failed ({proc.returncode}); see the JSON")
        return res
    report = json.loads((out_dir / "report.json").read_text())
    modes = {h["mode"]: h for h in report["hybrid"]}
    base = report["baselines"]
    res.update({
        "split": {k: report["splits"][k] for k in ("train", "val", "test")},
        "test_balanced_accuracy": {
            "hybrid_segments": modes.get("segments", {}).get("balanced_accuracy"),
            "hybrid_prototype": modes.get("prototype", {}).get("balanced_accuracy"),
            "cnn_per_net": base["cnn_per_net"].get("balanced_accuracy"),
            "cnn_total": base["cnn_total"].get("balanced_accuracy"),
            "shuffled_labels_control": report["control"].get("balanced_accuracy"),
        },
        "params": {"hybrid_segments": modes.get("segments", {}).get("params"),
                   "hybrid_prototype": modes.get("prototype", {}).get("params"),
                   "cnn_per_net": base["cnn_per_net"].get("params"), "cnn_total": base["cnn_total"].get("params")},
        "concepts": {c: {k: m.get(k) for k in ("kind", "implementation", "val_balanced_accuracy",
                                               "test_balanced_accuracy", "params")}
                     for c, m in report["concepts"].items()},
    })
    log(f"  {scene}: hybrid (segments) {_pct(res['test_balanced_accuracy']['hybrid_segments'])} on "
        f"{report['splits']['test']} test images ({seconds:.0f} s)")
    return res


def run(per_class: int, size: int, seeds: tuple[int, ...], scenes: tuple[str, ...], hybrid_scenes: tuple[str, ...],
        hybrid_per_class: int, work: Path, pythonpath: str | None = None, log: Any = print) -> dict[str, Any]:
    t0 = time.perf_counter()
    res: dict[str, Any] = {"machine": machine_info(), "fractions": list(FRACTIONS), "ceiling": CEILING,
                           "blind": {}, "hybrid": {}}
    for scene in scenes:
        log(f"part-blind baselines on the '{scene}' scene ({2 * per_class} images of {size}², seeds {seeds})")
        res["blind"][scene] = blind_scene(scene, per_class, size, seeds, work, log)
    for scene in hybrid_scenes:
        log(f"the main job on the '{scene}' scene ({2 * hybrid_per_class} images, seed 0)")
        res["hybrid"][scene] = hybrid_scene(scene, hybrid_per_class, size, work, pythonpath, log)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def table(res: dict[str, Any]) -> str:
    """The Markdown report of a :func:`run` result."""
    from workbench.data.datasets import DEMO_SCENES

    m = res["machine"]
    blind = res["blind"]
    names = list(next(iter(blind.values()))["summary"]) if blind else []
    any_scene = next(iter(blind.values())) if blind else {}
    lines = [
        "# Part-blind baselines on the generated scenes",
        "",
        (f"Measured {m['date_utc']} on {m['cpus']} CPU cores ({m['platform']}, Python {m['python']}, "
         f"torch {m['torch']}), load average {m['loadavg'][0]} at the start (other jobs shared the machine; "
         f"per scene below), commit {m['git_commit'] or '?'} plus the working tree. Reproduce: "
         "`python benchmarks/bench_blind.py`. Raw results: `blind.json`."),
        "",
        (f"Set-up: for each scene and seed, `generate_demo(..., n_per_class={any_scene.get('per_class')}, "
         f"size={any_scene.get('size')}, seed=seed, scene=...)`, split by image, class-stratified, into "
         f"train / validation / test ({' / '.join(str(int(100 * f)) for f in res['fractions'])} %, split seeded "
         "with the same seed). Each baseline is fitted on train; everything it chooses (L2 strength, palette "
         "size, statistic and threshold, weight decay and stopping epoch) is chosen on validation; test is only "
         "scored. Balanced accuracy on test, median (min–max) over the seeds; one test image is "
         f"{100 / (any_scene.get('per_class', 1) * res['fractions'][2] * 2):.1f} points."),
        "",
    ]
    rows = []
    for scene, b in blind.items():
        rows.append([f"`{scene}`" + (" (default)" if scene == "daisy" else ""),
                     *[_stat(b["summary"][n]) for n in names], b["loadavg_at_start"][0]])
    lines.append(md_table(["scene", *[f"`{n}`" for n in names], "load average"], rows, "l" + "r" * (len(names) + 1)))
    lines.append("")
    if any_scene:
        lines.append(md_table(["baseline", "supervision", "parameters", "what the parameters are"],
                              [[f"`{n}`", d["supervision"], d["params"], d["params_note"]]
                               for n, d in any_scene["baselines"].items()], "llrl"))
        lines.append("")
    verdicts = []
    for scene, b in blind.items():
        worst = max(b["summary"][n]["max"] for n in names)
        best_median = max(b["summary"][n]["median"] for n in names)
        side = "at or below" if worst <= res["ceiling"] else "above"
        verdicts.append(f"- `{scene}`: {DEMO_SCENES[scene].description}. Highest median {_pct(best_median)}, "
                        f"highest single seed {_pct(worst)}: {side} the {_pct(res['ceiling'])} ceiling.")
    lines += ["Scenes:", "", *verdicts, ""]
    if res["hybrid"]:
        lines += [
            ("**The main job on the scenes** (`workbench run --dataset DIR --ontology FILE --out OUT --quick`, "
             "the seed-0 set, one seed; its own split, so not comparable one-to-one with the figures above; "
             "over seeds and label counts see `bench_curves.py`). Test balanced accuracies."),
            "",
        ]
        hrows = []
        for scene, h in res["hybrid"].items():
            if "error" in h:
                hrows.append([f"`{scene}`", "failed", "", "", "", "", "", h["loadavg_at_start"][0], f"{h['seconds']:.0f} s"])
                continue
            v = h["test_balanced_accuracy"]
            hrows.append([f"`{scene}`", f"`{h['ontology']}`",
                          f"{h['split']['train']} / {h['split']['val']} / {h['split']['test']}",
                          _pct(v["hybrid_segments"]), _pct(v["hybrid_prototype"]), _pct(v["cnn_per_net"]),
                          _pct(v["cnn_total"]), _pct(v["shuffled_labels_control"]), h["loadavg_at_start"][0],
                          f"{h['seconds']:.0f} s"])
        lines.append(md_table(["scene", "ontology", "train / val / test images", "hybrid (segments)",
                               "hybrid (prototype)", "CNN per-net budget", "CNN total budget",
                               "shuffled-labels control", "load average", "wall time"], hrows, "lllrrrrrrr"))
        lines.append("")
        for scene, h in res["hybrid"].items():
            if "concepts" in h:
                parts = ", ".join(f"{c} {_pct(m['test_balanced_accuracy'])}" for c, m in h["concepts"].items())
                lines.append(f"- `{scene}` concepts (test balanced accuracy; parts on segments, composites "
                             f"on images): {parts}.")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=150)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--scenes", default="daisy,parts,house")
    ap.add_argument("--hybrid-scenes", default="", help=f"e.g. {','.join(PART_SCENES)} (default none: see bench_curves.py)")
    ap.add_argument("--hybrid-per-class", type=int, default=None, help="default: --per-class")
    ap.add_argument("--no-hybrid", action="store_true")
    ap.add_argument("--hybrid-pythonpath", default=None, help="run the main job from this checkout instead")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=RESULTS / "blind.json")
    ap.add_argument("--md", type=Path, default=RESULTS / "blind.md")
    a = ap.parse_args(argv)
    seeds = tuple(int(s) for s in a.seeds.split(",") if s.strip())
    scenes = tuple(s for s in a.scenes.split(",") if s)
    hybrid_scenes = () if a.no_hybrid else tuple(s for s in a.hybrid_scenes.split(",") if s)
    with tempfile.TemporaryDirectory(prefix="bench-blind-") as tmp:
        work = a.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        res = run(a.per_class, a.size, seeds, scenes, hybrid_scenes, a.hybrid_per_class or a.per_class, work,
                  a.hybrid_pythonpath)
    write_json(a.json, res)
    a.md.write_text(table(res) + "\n")
    print(table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
