"""The hostile-input suite's index, and safe loading checked in the source itself.

The suite (all in the default run, fast enough for CI; ``-m slow`` adds longer kill loops):

- ``test_hostile_images.py``: a generated corpus of hostile and awkward images through every loader;
- ``test_hostile_ontology.py``: hostile YAML at every door, generated documents and edit sequences;
- ``test_hostile_durability.py``: SIGKILL at random moments against the label store and file writes;
- ``test_hostile_secrets.py``: a canary API key through the command line and its error paths;
- this file: no unsafe deserializer or code execution anywhere in the package (a static check of
  every module's syntax tree, so a new ``torch.load`` without ``weights_only=True`` fails CI).

Elsewhere: pickle payloads in model files (``test_models.py``) and SAM checkpoints (``test_sam.py``),
per-format image loading (``test_datasets.py``), the parser's own hostile cases (``test_ontology.py``),
LLM output fuzzing through the SDK (``test_claude.py``). Fuzz targets for the image loader and the
ontology parser, run on demand: ``benchmarks/fuzz_images.py``, ``benchmarks/fuzz_ontology.py``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "workbench"
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "_BoundedSafeLoader"}


def _name(node: ast.AST) -> str:
    """Dotted name of a call target (``torch.load``, ``yaml.load``, ``eval``), '' if not simple."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_calls(source: str, filename: str = "<source>") -> list[str]:
    """Every unsafe deserialization or code execution in ``source``, one message each."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and node.attr in ("Loader", "UnsafeLoader", "FullLoader", "CLoader",
                                                             "unsafe_load", "full_load", "unsafe_load_all"):
            if _name(node.value) == "yaml":
                problems.append(f"{filename}:{node.lineno}: yaml.{node.attr} (unsafe YAML)")
        if not isinstance(node, ast.Call):
            continue
        name, where = _name(node.func), f"{filename}:{node.lineno}"
        if name == "torch.load" and not _is_const(_kw(node, "weights_only"), True):
            problems.append(f"{where}: torch.load without weights_only=True")
        elif name in ("yaml.load", "yaml.load_all"):
            loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or _name(loader).split(".")[-1] not in SAFE_YAML_LOADERS:
                problems.append(f"{where}: {name} without a safe Loader")
        elif name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "marshal.loads", "dill.load", "dill.loads",
                      "joblib.load", "shelve.open"):
            problems.append(f"{where}: {name} (unpickles)")
        elif name in ("np.load", "numpy.load") and _is_const(_kw(node, "allow_pickle"), True):
            problems.append(f"{where}: {name} with allow_pickle=True")
        elif name in ("eval", "exec", "compile", "builtins.eval", "builtins.exec"):
            problems.append(f"{where}: {name}() runs text as code")
        elif name.startswith("subprocess.") and _is_const(_kw(node, "shell"), True):
            problems.append(f"{where}: {name} with shell=True")
        elif name in ("os.system", "os.popen"):
            problems.append(f"{where}: {name} runs a shell")
    return problems


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "node_modules" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_unsafe_loading_or_code_execution_in_the_package(path):
    assert unsafe_calls(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent))) == []


@pytest.mark.parametrize("source, expected", [
    ("import torch\ntorch.load(p)", "weights_only"),
    ("import torch\ntorch.load(p, weights_only=False)", "weights_only"),
    ("import yaml\nyaml.load(t)", "safe Loader"),
    ("import yaml\nyaml.load(t, Loader=yaml.Loader)", "unsafe YAML"),
    ("import yaml\nyaml.unsafe_load(t)", "unsafe YAML"),
    ("import pickle\npickle.loads(b)", "unpickles"),
    ("import numpy as np\nnp.load(f, allow_pickle=True)", "allow_pickle"),
    ("eval(model_text)", "runs text as code"),
    ("import subprocess\nsubprocess.run(cmd, shell=True)", "shell=True"),
])
def test_the_checker_catches_each_unsafe_pattern(source, expected):
    problems = unsafe_calls(source)
    assert problems and any(expected in p for p in problems), problems


@pytest.mark.parametrize("source", [
    "import torch\ntorch.load(p, map_location='cpu', weights_only=True)",
    "import yaml\nyaml.load(t, Loader=_BoundedSafeLoader)",
    "import yaml\nyaml.safe_load(t)",
    "import numpy as np\nnp.load(f, allow_pickle=False)",
    "import subprocess\nsubprocess.run(['git', 'status'])",
])
def test_the_checker_accepts_the_safe_forms(source):
    assert unsafe_calls(source) == []
