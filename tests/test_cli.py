"""The `workbench` command: exit codes scripts rely on, messages that name the file and the problem."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main

ONTOLOGIES = Path(__file__).resolve().parents[1] / "ontologies"


def test_validate_shipped_ontologies(capsys):
    assert main(["ontology", "validate", str(ONTOLOGIES / "daisy.yaml"), str(ONTOLOGIES / "car.yaml")]) == 0
    out = capsys.readouterr().out
    assert "daisy.yaml: ok" in out and "car.yaml: ok" in out


def test_validate_broken_file_names_file_and_problem(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nroot: a\nconcepts:\n- id: a\n  label: A\n  parts: [ghost]\n")
    assert main(["ontology", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "ghost" in err


def test_object_constructing_tag_is_refused_and_not_run(tmp_path, capsys):
    canary = tmp_path / "PWNED"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'!!python/object/apply:os.system ["touch {canary}"]\n')
    assert main(["ontology", "validate", str(evil)]) == 1
    assert not canary.exists()
    assert "tag not allowed" in capsys.readouterr().err


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as e:
        main(["ontology", "validate"])
    assert e.value.code == 2


def test_apply_edit_and_diff(tmp_path, capsys):
    onto = tmp_path / "daisy.yaml"
    onto.write_bytes((ONTOLOGIES / "daisy.yaml").read_bytes())
    edit = tmp_path / "edit.yaml"
    edit.write_text("op: add_concept\nid: sepal\nlabel: Sepal\nparents: [flower_head]\n")
    assert main(["ontology", "apply-edit", str(onto), "--edit", str(edit), "--out", str(tmp_path / "new.yaml")]) == 0
    assert "+- id: sepal" in capsys.readouterr().out
    assert main(["ontology", "diff", "--semantic", str(onto), str(tmp_path / "new.yaml")]) == 0
    assert "add_concept" in capsys.readouterr().out
    # the original is untouched
    assert onto.read_bytes() == (ONTOLOGIES / "daisy.yaml").read_bytes()


def test_bad_edit_is_refused_and_nothing_written(tmp_path, capsys):
    onto = tmp_path / "daisy.yaml"
    onto.write_bytes((ONTOLOGIES / "daisy.yaml").read_bytes())
    edit = tmp_path / "edit.yaml"
    edit.write_text("op: add_part\nparent: petal\npart: daisy\n")  # the root as a part: a cycle
    assert main(["ontology", "apply-edit", str(onto), "--edit", str(edit)]) == 1
    assert onto.read_bytes() == (ONTOLOGIES / "daisy.yaml").read_bytes()
    assert "cannot be a part" in capsys.readouterr().err


def test_init_segment_label_train_headless(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["dataset", "generate", str(data), "--n-per-class", "6", "--seed", "2"]) == 0
    assert main(["dataset", "check", str(data)]) == 0
    ws = tmp_path / "ws"
    assert main(["init", str(ws)]) == 0
    assert main(["segment", "--workspace", str(ws), "--dataset", str(data), "--no-progress"]) == 0
    assert main(["label", "--workspace", str(ws), "--from-masks"]) == 0
    assert main(["train", "--workspace", str(ws), "--max-epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "trained petal" in out and "hybrid: validation balanced accuracy" in out
    assert "Split the images by class into 8 train, 2 validation, 2 test" in out  # said once ...
    assert "test images are kept for the report" in out
    header = next(ln for ln in out.splitlines() if ln.strip().startswith("concept "))
    assert header.split()[:3] == ["concept", "kind", "params"]
    assert "val balanced accuracy" in header and header.rstrip().endswith("status") and "val accuracy" not in header
    petal = next(ln for ln in out.splitlines() if ln.strip().startswith("petal ") and "%" in ln)
    assert petal.split()[4] in ("ok", "weak", "weak:", "dead", "dead:")  # every row carries a status
    assert main(["train", "--workspace", str(ws), "--max-epochs", "2"]) == 0
    again = capsys.readouterr().out
    assert "kept    petal" in again and "Split the images" not in again  # ... and not again


def test_not_a_workspace(tmp_path, capsys):
    assert main(["train", "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"workbench init {tmp_path}" in err and "Workspace." not in err, err


def test_workspace_errors_name_commands_not_python_apis(tmp_path, capsys):
    """A shell user is told which command to run, not which Python method."""
    ws = tmp_path / "ws"
    assert main(["init", str(ws)]) == 0
    capsys.readouterr()
    assert main(["init", str(ws)]) == 1  # already a workspace
    err = capsys.readouterr().err
    assert "already a workspace" in err and f"--workspace {ws}" in err and "Workspace." not in err, err
    assert main(["label", "--workspace", str(ws)]) == 2  # a person labels in a notebook
    err = capsys.readouterr().err
    assert f"workbench label --workspace {ws} --from-masks" in err and f"workbench.open('{ws}').label()" in err, err
    assert "wb = " not in err


def test_label_min_overlap_out_of_range_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["label", "--workspace", str(tmp_path), "--from-masks", "--min-overlap", "1.5"])
    assert e.value.code == 2
    assert "--min-overlap" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said, meant", [
    (["trian", "--workspace", "ws"], "trian", "train"),
    (["ontology", "valdate", "x.yaml"], "ontology valdate", "ontology validate"),
    (["proposals", "lst"], "proposals lst", "proposals list"),
])
def test_mistyped_command_suggests_the_nearest(argv, said, meant, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == f"workbench: unknown command {said!r}; did you mean {meant!r}?"


def test_unknown_command_without_a_near_one_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["zzzzzz"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown command 'zzzzzz'" in err and "did you mean" not in err and "demo" in err


def _parsers():
    """``(name, parser)`` for the top-level parser and every (sub)command's."""
    from workbench.cli import build_parser

    stack = [("workbench", build_parser())]
    while stack:
        name, p = stack.pop()
        yield name, p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend((f"{name} {n}", q) for n, q in action.choices.items())


def test_every_command_has_a_description_and_every_option_help():
    names = []
    for name, p in _parsers():
        names.append(name)
        assert (p.description or "").strip(), f"`{name} --help` has no description"
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert (action.help or "").strip(), f"{name}: {action.option_strings or action.dest} has no help"
    assert "workbench ontology validate" in names and "workbench demo" in names  # the walk reached them


def test_help_and_demo_help_give_the_same_time_estimate(capsys):
    from workbench.cli import DEMO_QUICK_TIME

    for argv in (["--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = " ".join(capsys.readouterr().out.split())  # argparse wraps long lines
        assert DEMO_QUICK_TIME in out, argv


def test_console_script_help_runs():
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "workbench demo --quick" in r.stdout


_LIGHT_RUNNER = """
import sys

from workbench.cli import main

try:
    code = main(sys.argv[1:])
except SystemExit as e:  # --help and argument errors exit from the parser
    code = e.code
print("heavy:", ",".join(sorted(m for m in ("torch", "ipywidgets", "anywidget") if m in sys.modules)))
sys.exit(code)
"""


@pytest.mark.parametrize("argv", [
    ["ontology", "validate", "{onto}/daisy.yaml", "{onto}/car.yaml"],
    ["dataset", "generate", "{tmp}/data", "--n-per-class", "1", "--size", "64"],
    ["init", "{tmp}/ws"],
    ["--help"],
    ["train", "--no-such-flag"],
    ["trian", "--workspace", "ws"],
], ids=["ontology-validate", "dataset-generate", "init", "help", "usage-error", "mistyped-command"])
def test_light_commands_do_not_import_torch(argv, tmp_path):
    """The dispatcher imports only the chosen command's module: parsing and the light commands stay
    free of torch and the notebook widgets (checked in a fresh interpreter, after the command ran)."""
    runner = tmp_path / "runner.py"
    runner.write_text(_LIGHT_RUNNER)
    args = [a.format(onto=ONTOLOGIES, tmp=tmp_path) for a in argv]
    r = subprocess.run([sys.executable, str(runner), *args], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == (2 if argv[-1] in ("--no-such-flag", "ws") else 0), r.stderr
    assert r.stdout.strip().splitlines()[-1] == "heavy:", r.stdout
    if argv[0] == "dataset":  # and check the generated folder, light too
        r = subprocess.run([sys.executable, str(runner), "dataset", "check", str(tmp_path / "data")],
                           capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "heavy:", r.stdout + r.stderr


def test_every_command_module_imports_and_has_its_handlers():
    """Each command the parser names resolves to a function of its module (the dispatcher's lookup)."""
    import importlib

    from workbench.cli import build_parser

    parser = build_parser()
    seen = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        handler = p.get_default("handler")
        if handler is not None:
            module, name = handler
            assert callable(getattr(importlib.import_module(f"workbench.cli.{module}"), name)), handler
            seen.add(handler)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    modules = {m for m, _ in seen}
    assert modules == {"ontology", "dataset", "workspace", "loop", "score", "proposals", "pull_requests", "pins", "review"}
    for m in modules:  # and every handler a module exports is reachable from the parser
        exported = {n for n in importlib.import_module(f"workbench.cli.{m}").__all__ if n.startswith("cmd_")}
        assert exported == {n for mod, n in seen if mod == m}, m


def test_generate_knows_every_demo_scene(tmp_path):
    from workbench.cli import DEMO_SCENE_NAMES
    from workbench.data.datasets import DEMO_SCENES

    assert set(DEMO_SCENE_NAMES) == set(DEMO_SCENES)
    assert main(["dataset", "generate", str(tmp_path / "h"), "--scene", "house", "--n-per-class", "1",
                 "--size", "64"]) == 0
    assert sorted(p.name for p in (tmp_path / "h").iterdir() if p.is_dir()) == ["house", "not_house"]
