"""Ontology growth: concepts vs images processed, with and without refactors (scripted suggester).

    python benchmarks/bench_growth.py [--json benchmarks/results/growth.json]

Two workspaces start from ``ontologies/daisy.seed.yaml`` (the root only). The scripted suggester
(:class:`workbench.review.suggest.ScriptedSuggester`, ``ontologies/daisy.suggestions.yaml``: hand-written
steps, not model output) plays its per-image suggestions in order, each saved as a proposal and
accepted through :func:`workbench.review.decisions.accept`, exactly as ``workbench suggest`` would. One
workspace also plays the script's refactor steps where the script puts them (every 3 images); the
other never refactors. After every step the benchmark records the concepts, leaves, proposal
edits accepted and concept-lint warnings, and whether the end result equals ``ontologies/daisy.yaml``.

This measures the workflow, not a model: with an LLM suggester the curve would differ run to run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]  # + this checkout
from _common import RESULTS, finish, md_table  # noqa: E402

__all__ = ["run", "table"]


def _play(work: Path, refactor: bool) -> dict[str, Any]:
    from workbench.ontology.graph import Ontology
    from workbench.review.suggest import SHIPPED_SCRIPT, SHIPPED_SEED, play_script
    from workbench.workspace.folder import Workspace

    ws = Workspace.create(work / ("with-refactors" if refactor else "without-refactors"), Ontology.load(SHIPPED_SEED))
    series: list[dict[str, Any]] = [{"images": 0, "step": "seed", "concepts": len(ws.ontology.concepts),
                                     "leaves": len(ws.ontology.leaves())}]
    images = 0
    t0 = time.perf_counter()

    def on_step(p: Any) -> None:
        nonlocal images
        images += p.kind == "suggest"
        o = ws.ontology
        series.append({"images": images, "step": p.kind, "title": p.title, "concepts": len(o.concepts),
                       "leaves": len(o.leaves()), "accepted_edits": len(p.valid_edits),
                       "lint_warnings": sum(len(e.lint) for e in p.edits)})

    try:
        play_script(ws, SHIPPED_SCRIPT, by="person:benchmark", refactor=refactor, on_step=on_step)
        final = ws.ontology
        target = Ontology.load(SHIPPED_SCRIPT.parent / "daisy.yaml")
        return {"series": series, "final_concepts": sorted(final.concepts), "equals_daisy_yaml": final == target,
                "seconds": round(time.perf_counter() - t0, 2)}
    finally:
        ws.close()


def run(tiny: bool = False, work: Path | None = None, log: Any = print) -> dict[str, Any]:
    """Both runs (the script is small, so ``tiny`` changes nothing)."""
    work = Path(tempfile.mkdtemp(prefix="wb-bench-growth-", dir=work))
    with_r = _play(work, refactor=True)
    without = _play(work, refactor=False)
    log(f"growth: {len(with_r['final_concepts'])} concepts with refactors, "
        f"{len(without['final_concepts'])} without")
    return {"benchmark": "growth", "script": "ontologies/daisy.suggestions.yaml (scripted, not model output)",
            "refactor_every_images": 3, "with_refactors": with_r, "without_refactors": without}


def table(res: dict[str, Any]) -> str:
    def by_images(series: list[dict[str, Any]]) -> dict[int, int]:
        out: dict[int, int] = {}
        for s in series:
            out[s["images"]] = s["concepts"]  # the count after the last step at that many images
        return out

    a, b = by_images(res["with_refactors"]["series"]), by_images(res["without_refactors"]["series"])
    rows = [[k, a.get(k), b.get(k)] for k in sorted(set(a) | set(b))]
    text = md_table(["images processed", "concepts, refactor every 3 images", "concepts, no refactors"], rows, "rrr")
    w, wo = res["with_refactors"], res["without_refactors"]
    extra = [c for c in wo["final_concepts"] if c not in w["final_concepts"]]
    return (text + f"\n\nWith refactors (counted after the refactor at 3 and 6 images) the result equals "
            f"`ontologies/daisy.yaml`: {w['equals_daisy_yaml']}. Without, it ends with "
            f"{len(wo['final_concepts'])} concepts, among them {', '.join(extra)}.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=RESULTS / "growth.json")
    args = ap.parse_args(argv)
    return finish(run(), table, args.json)


if __name__ == "__main__":
    sys.exit(main())
