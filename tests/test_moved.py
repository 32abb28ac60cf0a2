"""Old flat-layout module paths (``workbench.train``, ``workbench.proposals`` …) still import, as the very
module at its new home, with a DeprecationWarning; nothing in the repository itself uses them."""
from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

from workbench._moved import MOVED

REPO = Path(__file__).resolve().parents[1]


def test_an_old_path_is_the_module_at_its_new_home():
    # one fresh interpreter: each old path is imported there for the first time
    code = (
        "import importlib, json, sys, warnings\n"
        "from workbench._moved import MOVED\n"
        "out = {}\n"
        "for old, new in sorted(MOVED.items()):\n"
        "    with warnings.catch_warnings(record=True) as w:\n"
        "        warnings.simplefilter('always')\n"
        "        mod = importlib.import_module(old)\n"
        "    out[old] = [mod is importlib.import_module(new),\n"
        "                any(issubclass(x.category, DeprecationWarning) and new in str(x.message) for x in w)]\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    got = json.loads(out.stdout)
    assert set(got) == set(MOVED)
    assert {old: v for old, v in got.items() if v != [True, True]} == {}


def test_every_new_home_exists():
    for new in MOVED.values():
        assert importlib.util.find_spec(new) is not None, new


_OLD = re.compile(r"^\s*(?:from|import)\s+(" + "|".join(re.escape(m) for m in MOVED) + r")(?:\s|$|\.)", re.M)


def test_nothing_in_the_repository_imports_an_old_path():
    offenders = []
    for folder in ("workbench", "tests", "benchmarks", "scripts", "notebooks"):
        for p in (REPO / folder).rglob("*.py"):
            if p.name in ("_moved.py", "test_moved.py") or "node_modules" in p.parts:
                continue
            for m in _OLD.finditer(p.read_text(encoding="utf-8")):
                offenders.append(f"{p.relative_to(REPO)}: {m.group(0).strip()}")
    assert not offenders, "\n".join(offenders)
