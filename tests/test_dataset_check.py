"""A data set is checked against the ontology before heavy work (workbench/data/check.py, `workbench dataset
check --ontology`, the start of `init --dataset`, `segment` and `run`, and `ontology validate` for rules):
clear errors, in under 2 s, without importing torch."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.data.check import check_fit
from workbench.data.datasets import generate_demo
from workbench.errors import DatasetError
from workbench.models._rule_names import RULE_NAMES
from workbench.ontology.graph import Concept, Ontology

ONTOLOGIES = Path(__file__).resolve().parents[1] / "ontologies"
DAISY, SEED = ONTOLOGIES / "daisy.yaml", ONTOLOGIES / "daisy.seed.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check") / "demo"
    generate_demo(root, n_per_class=2, size=48)
    return root


def _ontology(tmp_path: Path, text: str, name: str = "o.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _daisy_with(tmp_path: Path, old: str, new: str) -> Path:
    return _ontology(tmp_path, DAISY.read_text().replace(old, new))


def test_the_demo_fits_the_daisy_ontology_with_a_note(demo):
    report = check_fit(demo, DAISY, rules=RULE_NAMES)
    assert report.ok, report.problems
    assert len(report.notes) == 1 and "other_petal (index 5)" in report.notes[0] and "count as 'none'" in report.notes[0]


def test_each_problem_is_named(demo, tmp_path):
    seed = check_fit(demo, SEED, rules=RULE_NAMES)
    assert len(seed.problems) == 1 and "the ontology is its root 'daisy' alone: nothing to train" in seed.problems[0]
    assert check_fit(demo, SEED, rules=RULE_NAMES, purpose="segment").ok  # a workspace may start from a seed

    typo_rule = check_fit(demo, _daisy_with(tmp_path, "rule: yellow_disk", "rule: yelow_disk"), rules=RULE_NAMES)
    assert typo_rule.problems == [typo_rule.problems[0]]
    assert "'disk' names the rule 'yelow_disk'" in typo_rule.problems[0] and "did you mean 'yellow_disk'" in typo_rule.problems[0]
    assert check_fit(demo, _daisy_with(tmp_path, "rule: yellow_disk", "rule: yelow_disk"), rules=None).ok

    renamed_root = _daisy_with(tmp_path, "daisy", "daisies")
    report = check_fit(demo, renamed_root, rules=RULE_NAMES, purpose="segment")
    assert len(report.problems) == 1
    assert "no class folder named like the ontology's root 'daisies'" in report.problems[0]
    assert "did you mean 'daisy'?" in report.problems[0] and str(demo / "daisies") in report.problems[0]

    (tmp_path / "typo").mkdir()
    data = tmp_path / "typo" / "demo"
    generate_demo(data, n_per_class=1, size=48)
    parts = json.loads((data / "parts.json").read_text())
    parts["1"] = "Petals"
    (data / "parts.json").write_text(json.dumps(parts))
    report = check_fit(data, DAISY, rules=RULE_NAMES, purpose="segment")
    assert len(report.problems) == 1 and "'Petals' (index 1) is not a concept" in report.problems[0]
    assert "did you mean 'petal'?" in report.problems[0] and str(data / "parts.json") in report.problems[0]

    house = check_fit(demo, ONTOLOGIES / "house.yaml", rules=RULE_NAMES)
    assert len(house.problems) == 2 and "none of its ids (petal, disk" in house.problems[1]
    assert "its parts: door, roof, wall, window" in house.problems[1]
    with pytest.raises(DatasetError) as e:
        house.raise_if_problems()
    assert e.value.problems == house.problems


def test_a_part_without_masks_is_a_note(demo):
    onto = Ontology("d", "daisy", [Concept("daisy", "Daisy", parts=("petal", "sepal")), Concept("petal", "Petal"),
                                   Concept("sepal", "Sepal")])
    report = check_fit(demo, onto)
    assert report.ok and any("no mask index" in n and "sepal" in n for n in report.notes)


def test_cli_check_stops_before_loading_images(demo, tmp_path, capsys):
    assert main(["dataset", "check", str(demo), "--ontology", str(DAISY)]) == 0
    out = capsys.readouterr().out
    assert f"data set {demo} fits ontology {DAISY}" in out and "4 images in 2 classes" in out
    assert main(["dataset", "check", str(demo), "--ontology", str(ONTOLOGIES / "house.yaml")]) == 1
    captured = capsys.readouterr()
    assert "(2 problems; no image was loaded)" in captured.err and "4 images" not in captured.out
    assert "no class folder named like the ontology's root 'house'" in captured.err


def test_init_segment_and_run_stop_early(demo, tmp_path, capsys):
    bad = _daisy_with(tmp_path, "daisy", "daisies")
    assert main(["init", str(tmp_path / "ws"), "--ontology", str(bad), "--dataset", str(demo)]) == 1
    assert "no class folder named like" in capsys.readouterr().err and not (tmp_path / "ws").exists()
    assert main(["init", str(tmp_path / "ws"), "--ontology", str(SEED), "--dataset", str(demo)]) == 0
    capsys.readouterr()
    other = tmp_path / "other"
    other.mkdir()
    (other / "cats").mkdir()
    assert main(["segment", "--workspace", str(tmp_path / "ws"), "--dataset", str(other), "--no-progress"]) == 1
    assert "no class folder named like the ontology's root 'daisy'" in capsys.readouterr().err
    t0 = time.perf_counter()
    assert main(["run", "--dataset", str(demo), "--ontology", str(SEED), "--out", str(tmp_path / "o")]) == 1
    assert time.perf_counter() - t0 < 2
    assert "nothing to train" in capsys.readouterr().err and not (tmp_path / "o").exists()


_RUNNER = """
import sys, time
from workbench.cli import main
t0 = time.perf_counter()
code = main(sys.argv[1:])
print("seconds:", time.perf_counter() - t0)
print("torch:", "torch" in sys.modules)
sys.exit(code)
"""


@pytest.mark.parametrize("argv", [
    ["dataset", "check", "{demo}", "--ontology", "{bad}"],
    ["init", "{tmp}/ws", "--ontology", "{bad}", "--dataset", "{demo}"],
    ["ontology", "validate", "{bad}"],
], ids=["dataset-check", "init", "ontology-validate"])
def test_the_check_is_light_and_quick(argv, demo, tmp_path):
    bad = _daisy_with(tmp_path, "rule: yellow_disk", "rule: no_such_rule")
    runner = tmp_path / "runner.py"
    runner.write_text(_RUNNER)
    args = [a.format(demo=demo, bad=bad, tmp=tmp_path) for a in argv]
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(runner), *args], capture_output=True, text=True, timeout=60, check=False)
    wall = time.perf_counter() - t0
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no_such_rule" in r.stderr and "Traceback" not in r.stderr
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines() if line.startswith(("seconds:", "torch:")))
    assert lines["torch"] == "False"
    assert float(lines["seconds"]) < 2, lines  # the command itself, after the interpreter started
    assert wall < 10  # the interpreter's start on a loaded machine included


def test_ontology_validate_reports_unknown_rules_and_a_lone_root(tmp_path, capsys):
    bad = _daisy_with(tmp_path, "rule: yellow_disk", "rule: yelow_disk")
    assert main(["ontology", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: names 1 rule the workbench does not have" in err and "did you mean 'yellow_disk'" in err
    assert main(["ontology", "validate", str(SEED), str(DAISY)]) == 0
    out = capsys.readouterr().out
    assert "daisy.seed.yaml: ok — 1 concepts" in out and "the root alone: nothing to train yet" in out
    assert "daisy.yaml: ok — 6 concepts, root 'daisy', 4 parts\n" in out


def test_rule_names_are_the_rules_rules_py_registers():
    """workbench/models/_rule_names.py lists, without torch, exactly the rules workbench/models/rules.py
    registers (rules registered elsewhere, e.g. by other tests, are not shipped rules)."""
    from workbench.models.rules import RULES

    shipped = {name for name, rule in RULES.items() if rule.func.__module__ == "workbench.models.rules"}
    assert shipped == set(RULE_NAMES), "add the new rule's name to workbench/models/_rule_names.py"
    assert list(RULE_NAMES) == sorted(RULE_NAMES)
