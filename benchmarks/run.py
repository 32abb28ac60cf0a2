"""Run every benchmark, print one table, write ``benchmarks/results/latest.json`` and ``latest.md``.

    python benchmarks/run.py                       # the full pass (tens of minutes on 2 cores)
    nice -n 5 python benchmarks/run.py --full-demo # ... plus the non-quick `workbench demo`
    python benchmarks/run.py --profile tiny        # every benchmark at a tiny size (seconds; the smoke test)
    python benchmarks/run.py --only scoring,incremental

Benchmarks (each its own script too, ``python benchmarks/bench_<name>.py``):

- ``scoring``: cached vs uncached segmentation, images/s of the default segmenter, scoring an image
  with cached segments vs its first segmentation (``bench_scoring.py``);
- ``incremental``: incremental vs full retrain after one leaf's labels change (``bench_incremental.py``);
- ``demo_quick``: wall time and peak memory (this process tree) of ``workbench demo --quick``;
- ``photos``: real 12-megapixel photographs: peak memory of ``workbench segment`` on one, and of
  ``workbench run --quick`` on the quick demo set plus 20 of them, 1 and 2 workers (``bench_photos.py``);
- ``label``: labelling action latency with 10,000 segments in the store (``bench_label.py``, when present);
- ``growth``: ontology growth with and without refactors (``bench_growth.py``; needs the scripted suggester);
- ``curves``: on both generated domains (``parts``, ``house``), held-out test split, seeds: the hybrid vs the
  CNN at the per-net and the total budget and the part-blind baselines at 10/30/all labelled images per
  class, with labelling time; ablation, control and swap with all labels (``bench_curves.py``);
- ``labelling``: a simulated person labels with each strategy (one by one, least certain first, grid pages with
  propagation): person-seconds against the hybrid's test balanced accuracy, with the CNN's curve from image
  labels and ``person_time_ratio`` (``bench_labelling.py``);
- ``demo_full``: ``workbench demo`` (not quick), only with ``--full-demo``.

A benchmark that cannot run here (a module another part of the project has not shipped yet) is
skipped with the reason printed and recorded. Each benchmark's own wall time and the peak memory of
this process tree while it ran are recorded too. ``latest.json`` is rewritten after every benchmark,
so an interrupted pass keeps what it measured.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]  # + this checkout
from _common import RESULTS, PeakRSS, machine_info, md_table, peak_rss_of, write_json
from _common import pct as _pct  # noqa: E402

ORDER = ("scoring", "incremental", "demo_quick", "photos", "label", "growth", "curves", "labelling", "demo_full")

#: Keyword arguments of each benchmark's ``run`` per profile. "tiny" keeps every benchmark to seconds.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "scoring": {"images": 4, "repeats": 2, "per_class": 4, "size": 96, "epochs": 1},
        "incremental": {"per_class": 4, "size": 96, "repeats": 2, "epochs": 1},
        "curves": {"per_class": 6, "size": 96, "sizes": (2, None), "seeds": (0,), "epochs": 1},
        "demo_quick": {"per_class": 4, "size": 96},
        "photos": {"tiny": True},
        "label": {"tiny": True},
        "growth": {"tiny": True},
        "labelling": {"tiny": True},
    },
    "default": {
        "scoring": {},
        "incremental": {},
        "curves": {},
        "demo_quick": {},
        "photos": {},
        "label": {},
        "growth": {},
        "labelling": {},
        "demo_full": {},
    },
}


class Skip(Exception):
    """A benchmark that cannot run here; the message says why."""


# ----------------------------------------------------------------------------------- the demo, measured
def run_demo(quick: bool = True, per_class: int | None = None, size: int = 256, work: Path | None = None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Wall time and peak memory (process tree, sampled) of the main job in a subprocess.

    ``per_class`` None: ``workbench demo [--quick]`` itself. Otherwise ``workbench run --quick`` on a
    generated set of that size (the tiny profile).
    """
    work = Path(work or tempfile.mkdtemp(prefix="wb-bench-demo-"))
    out = work / ("demo-quick" if quick else "demo-full") if per_class is None else work / f"run-{per_class}x{size}"
    exe = [sys.executable, "-m", "workbench.cli"]
    if per_class is None:
        cmd = exe + ["demo", "--no-progress", "--out", str(out)] + (["--quick"] if quick else [])
        shown = "workbench demo" + (" --quick" if quick else "")
    else:
        from workbench.data.datasets import generate_demo
        from workbench.ontology.shipped import shipped_ontology

        data = work / f"data-{per_class}x{size}"
        if not (data / "parts.json").exists():
            generate_demo(data, n_per_class=per_class, size=size, seed=0)
        cmd = exe + ["run", "--quick", "--no-progress", "--dataset", str(data), "--ontology",
                     str(shipped_ontology("daisy")), "--out", str(out)]
        shown = f"workbench run --quick ({2 * per_class} generated images of {size}²)"
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, peak, code = peak_rss_of(cmd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if code != 0:
        raise RuntimeError(f"{shown} failed with exit code {code}")
    report = json.loads((out / "report.json").read_text())
    res = {
        "benchmark": "demo_quick" if quick else "demo_full",
        "command": shown,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),  # user + system of the command and the children it waited for
        "peak_rss_mb": round(peak / 2**20),
        "targets": {"wall_s": 180 if quick else 900, "peak_rss_mb": 1536},
        "split": report.get("splits", {}) and {k: report["splits"][k] for k in ("train", "val", "test")},
        "report_timings_s": report.get("timings"),
        "balanced_accuracy": {"hybrid": {h["mode"]: h["balanced_accuracy"] for h in report.get("hybrid", [])},
                              **{k: v.get("balanced_accuracy") for k, v in report.get("baselines", {}).items()},
                              "control": report.get("control", {}).get("balanced_accuracy")},
        "note": "one run (not repeated): the wall time depends on how busy the machine was (see loadavg); the CPU "
                "time much less",
    }
    log(f"{shown}: {res['wall_s']} s wall, peak {res['peak_rss_mb']} MB")
    return res


def demo_table(res: dict[str, Any]) -> str:
    t = res["targets"]
    text = md_table(["command", "wall time", "CPU time (user + system)", "peak memory (process tree)", "targets"],
                    [[f"`{res['command']}`", f"{res['wall_s']} s", f"{res.get('cpu_s', '–')} s",
                      f"{res['peak_rss_mb']} MB", f"< {t['wall_s']} s wall, < {t['peak_rss_mb']} MB"]], "lrrrl")
    acc = res.get("balanced_accuracy")
    if acc:
        hyb, split = acc.get("hybrid") or {}, res.get("split") or {}
        text += (f"\n\nTest balanced accuracy on its {split.get('test', '?')} class-balanced test images "
                 f"({split.get('train', '?')} for training, {split.get('val', '?')} for validation; one seed: "
                 f"the README's tables come from `bench_curves.py`): hybrid (segments) {_pct(hyb.get('segments'))}, "
                 f"CNN per-net budget {_pct(acc.get('cnn_per_net'))}, CNN total budget {_pct(acc.get('cnn_total'))}, "
                 f"colour histogram {_pct(acc.get('colour_histogram'))}, colour layout {_pct(acc.get('colour_layout'))}, "
                 f"shuffled-labels control {_pct(acc.get('control'))}.")
    return text


# ----------------------------------------------------------------------------------------- the runner
def _module(name: str) -> Any:
    """The benchmark module ``bench_<name>`` with ``run`` and ``table``, or Skip saying why not."""
    try:
        mod = importlib.import_module(f"bench_{name}")
    except ImportError as e:
        raise Skip(f"benchmarks/bench_{name}.py cannot be imported here ({e})") from None
    if not callable(getattr(mod, "run", None)):
        raise Skip(f"benchmarks/bench_{name}.py has no run() function to call")
    return mod


def _call(fn: Callable[..., Any], kwargs: dict[str, Any], work: Path, log: Callable[[str], None]) -> Any:
    params = inspect.signature(fn).parameters
    accepted = {k: v for k, v in kwargs.items() if k in params}
    ignored = sorted(set(kwargs) - set(accepted))
    if "tiny" in ignored:
        raise Skip(f"{fn.__module__}.run() has no tiny size (no 'tiny' parameter)")
    if "work" in params:
        accepted["work"] = work
    if "log" in params:
        accepted["log"] = log
    return fn(**accepted)


def _table(name: str, res: dict[str, Any]) -> str:
    """The Markdown table of one benchmark's result."""
    if name.startswith("demo_"):
        return demo_table(res)
    mod = _module(name)
    return mod.table(res) if callable(getattr(mod, "table", None)) else "```\n" + json.dumps(res, indent=1)[:2000] + "\n```"


def run_one(name: str, kwargs: dict[str, Any], work: Path, log: Callable[[str], None]) -> tuple[dict[str, Any], str]:
    """Run one benchmark; return (its JSON, its Markdown table)."""
    if name in ("demo_quick", "demo_full"):
        res = _call(run_demo, {**kwargs, "quick": name == "demo_quick"}, work, log)
        return res, demo_table(res)
    res = _call(_module(name).run, kwargs, work, log)
    return res, _table(name, res)


TITLES = {
    "scoring": "Segmentation and scoring: first time vs cached, per image vs batched, each ÷ the segmenter",
    "incremental": "Retraining after one leaf's labels change",
    "demo_quick": "The main job: `workbench demo --quick`",
    "photos": "Real 12-megapixel photographs: peak memory of `workbench segment` and `workbench run --quick`",
    "label": "Labelling action latency (10,000 segments in the store)",
    "growth": "Ontology growth with and without refactors",
    "curves": "Hybrid vs CNNs and part-blind baselines by labelled images per class (test balanced accuracy, median and range over seeds)",
    "labelling": "Person-seconds against test balanced accuracy: labelling strategies of a simulated person, and the CNN",
    "demo_full": "The main job, full: `workbench demo`",
}


def markdown(results: dict[str, Any], tables: dict[str, str], command: str) -> str:
    m = results["machine"]
    lines = [
        f"Measured {m['date_utc']} on {m['cpus']} CPU cores ({m['platform']}, Python {m['python']}, torch "
        f"{m['torch']}), load average {m['loadavg'][0]} at the start (other jobs shared the machine), "
        f"commit {m['git_commit']}. Reproduce: `{command}`. Timings: median of interleaved repeats with their "
        f"range; *noisy* marks max/min > 1.5.",
        "",
    ]
    for name in results["order"]:
        b = results["benchmarks"][name]
        if b.get("included_from"):
            m2 = b["result"].get("machine") or {}
            extra = (f" (measured separately, {b['measured_utc']}, load average {(m2.get('loadavg') or ['?'])[0]}"
                     + (f", {b['wall_s']:.0f} s" if b.get("wall_s") else "") + ")")
        elif b.get("status") == "ok":
            extra = f" ({b['wall_s']:.0f} s; peak memory of the runner's process tree {b['peak_rss_mb']:.0f} MB)"
        else:
            extra = ""
        lines.append(f"**{TITLES.get(name, name)}**{extra}")
        lines.append("")
        if b.get("status") == "ok":
            lines.append(tables[name])
        else:
            lines.append(f"_{b['status']}: {b.get('reason', '')}_")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="default")
    ap.add_argument("--only", default=None, help="comma-separated benchmark names (default: all)")
    ap.add_argument("--skip", default="", help="comma-separated benchmark names to leave out")
    ap.add_argument("--full-demo", action="store_true", help="also run the non-quick `workbench demo`")
    ap.add_argument("--workdir", type=Path, default=None, help="data sets, caches and demo outputs (default: temp)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json and latest.md")
    ap.add_argument("--render", type=Path, metavar="LATEST.json",
                    help="run nothing: rewrite the Markdown next to an earlier latest.json from its results")
    ap.add_argument("--include", action="append", default=[], metavar="NAME=FILE",
                    help="take benchmark NAME's result from FILE (what `python benchmarks/bench_NAME.py --json FILE` "
                         "wrote earlier) instead of running it; the table says when it was measured")
    args = ap.parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text())
        tables = {n: _table(n, b["result"]) for n, b in results["benchmarks"].items() if b.get("status") == "ok"}
        md = markdown(results, tables, results["command"])
        args.render.with_suffix(".md").write_text(md + "\n")
        print(md)
        return 0
    included: dict[str, Path] = {}
    for item in args.include:
        name, sep, file = item.partition("=")
        if not sep or name not in ORDER or not Path(file).is_file():
            ap.error(f"--include {item!r}: expected NAME=FILE with NAME one of {', '.join(ORDER)} and an existing FILE")
        included[name] = Path(file)

    profile = PROFILES[args.profile]
    names = [n for n in ORDER if n in profile]
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = sorted(set(wanted) - set(ORDER))
        if unknown:
            ap.error(f"unknown benchmark(s) {unknown}; known: {', '.join(ORDER)}")
        names = [n for n in ORDER if n in wanted]
    names = [n for n in names if n not in {s.strip() for s in args.skip.split(",")}]
    if not args.full_demo and not args.only:
        names = [n for n in names if n != "demo_full"]
    names = [n for n in ORDER if n in names or n in included]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="wb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/run.py" + (f" --profile {args.profile}" if args.profile != "default" else "") + (
        " --full-demo" if args.full_demo or "demo_full" in names else "")
    results: dict[str, Any] = {"command": command, "profile": args.profile, "machine": machine_info(),
                               "order": [], "benchmarks": {}}
    tables: dict[str, str] = {}
    t_all = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, flush=True)

    for name in names:
        log(f"== {name}")
        t = time.perf_counter()
        if name in included:
            res = json.loads(included[name].read_text())
            if "benchmarks" in res:  # a latest.json of run.py: take that benchmark's entry
                entry = res["benchmarks"].get(name) or {}
                if entry.get("status") != "ok":
                    ap.error(f"--include {name}={included[name]}: that run has no result for {name}")
                res = {**entry["result"], "machine": res["machine"], "seconds": entry.get("wall_s")}
            tables[name] = _table(name, res)
            when = (res.get("machine") or {}).get("date_utc", "?")
            results["benchmarks"][name] = {"status": "ok", "included_from": str(included[name]), "measured_utc": when,
                                           "wall_s": res.get("seconds"), "peak_rss_mb": None, "result": res}
            results["order"].append(name)
            write_json(args.out / "latest.json", results)
            log(f"   included from {included[name]} (measured {when})")
            continue
        try:
            with PeakRSS(0.05) as mem:
                res, text = run_one(name, dict(profile.get(name, {})), work, log)
        except Skip as e:
            entry: dict[str, Any] = {"status": "skipped", "reason": str(e)}
            log(f"   skipped: {e}")
        except Exception as e:  # noqa: BLE001 - one failing benchmark is reported; the others still run
            entry = {"status": "failed", "reason": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            log(f"   FAILED: {type(e).__name__}: {e}")
        else:
            entry = {"status": "ok", "wall_s": round(time.perf_counter() - t, 1),
                     "peak_rss_mb": round(mem.peak / 2**20, 1), "result": res}
            tables[name] = text
        results["order"].append(name)
        results["benchmarks"][name] = entry
        results["total_s"] = round(time.perf_counter() - t_all, 1)
        write_json(args.out / "latest.json", results)
    results["total_s"] = round(time.perf_counter() - t_all, 1)
    write_json(args.out / "latest.json", results)
    md = markdown(results, tables, command)
    (args.out / "latest.md").write_text(md + "\n")
    print()
    print(md)
    print(f"wrote {args.out / 'latest.json'} and {args.out / 'latest.md'} in {results['total_s']:.0f} s")
    return 1 if any(b["status"] == "failed" for b in results["benchmarks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
