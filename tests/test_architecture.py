"""The package's architecture, enforced rather than conventional.

- Core code (every module outside ``workbench/jupyter/``) imports without loading ipywidgets, IPython,
  anywidget or jupyter_server: each module is imported in a fresh interpreter and ``sys.modules``
  checked after each.
- The package's own import graph has no cycle. Every ``import`` statement of every module counts:
  at the top of the file, inside functions, and under ``if TYPE_CHECKING:``; relative imports are
  resolved, ``from workbench.x import y`` is an import of ``workbench.x.y`` when that is a module, and
  ``importlib.import_module("workbench.x")`` with a literal name counts as an import.
- Layering: each subpackage's ``__init__`` docstring has a line ``May import: ...`` naming the
  subpackages and modules it may depend on (or ``everything in workbench except ...``); an import of
  the package's own code that the line does not allow fails, naming the file, line and statement.
  The rest is fixed here: the foundation modules (every top-level module except the CLI:
  ``workbench.errors``, ``._io``, ``._version``, ``.parallel``, ``._redact``, ...) import only each
  other; the CLI imports anything but ``workbench.jupyter`` (its own "May import:" line, when it has
  one, may narrow that); the root package (``workbench/__init__``) imports the foundation and, for
  ``workbench.open``, ``workbench.jupyter``.
- Imports of the package's own modules inside functions are rare (fewer than
  :data:`MAX_FUNCTION_LEVEL_IMPORTS` in all): they are for keeping torch out of a process that must
  stay light, not a way around a cycle.
"""
from __future__ import annotations

import ast
import itertools
import json
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "workbench"
FORBIDDEN_IN_CORE = ("ipywidgets", "IPython", "anywidget", "jupyter_server")
MAX_FUNCTION_LEVEL_IMPORTS = 20
JUPYTER = "workbench.jupyter"
CLI = "workbench.cli"
ROOT_PACKAGE = "workbench"
_SKIP_DIRS = {"__pycache__", "node_modules", "labextension"}


# ------------------------------------------------------------------------------------------ the graph
def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package: dotted name → file."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        if _SKIP_DIRS & set(path.relative_to(PKG).parts):
            continue
        out[_module_name(path)] = path
    return out


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


@dataclass(frozen=True)
class Import:
    importer: str  # the module whose file holds the statement
    target: str  # the own module it imports
    line: int
    function: str | None  # the enclosing function, None at module level
    type_checking: bool  # under `if TYPE_CHECKING:`
    statement: str

    def where(self) -> str:
        rel = modules()[self.importer].relative_to(ROOT)
        scope = f" (in {self.function}())" if self.function else ""
        scope += " (under TYPE_CHECKING)" if self.type_checking else ""
        return f"{rel}:{self.line}: `{self.statement}`{scope}"


def _own(name: str) -> bool:
    return name == ROOT_PACKAGE or name.startswith(ROOT_PACKAGE + ".")


class _Collector(ast.NodeVisitor):
    def __init__(self, importer: str):
        self.importer = importer
        self.functions: list[str] = []
        self.type_checking = 0
        self.found: list[Import] = []
        self.seen: set[tuple[int, str]] = set()

    def _add(self, node: ast.stmt | ast.expr, target: str) -> None:
        if _own(target) and (node.lineno, target) not in self.seen:  # `from x import a, b`: one import of x
            self.seen.add((node.lineno, target))
            self.found.append(Import(self.importer, target, node.lineno, self.functions[-1] if self.functions else None,
                                     self.type_checking > 0, ast.unparse(node)))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_If(self, node: ast.If) -> None:
        test = ast.unparse(node.test)
        guarded = test in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        self.type_checking += guarded
        for child in node.body:
            self.visit(child)
        self.type_checking -= guarded
        for child in node.orelse:
            self.visit(child)

    def visit_Call(self, node: ast.Call) -> None:
        """``importlib.import_module("workbench.x")`` and ``__import__("workbench.x")`` with a literal name
        (a name computed at run time cannot be seen)."""
        f = node.func
        fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if fname in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            name = node.args[0].value
            if name.startswith("."):  # relative to the `package` argument: __name__ / __package__ or a literal
                pkg = node.args[1] if len(node.args) > 1 else None
                base = pkg.value if isinstance(pkg, ast.Constant) and isinstance(pkg.value, str) else (
                    self.importer if _is_package(self.importer) else self.importer.rpartition(".")[0])
                level = len(name) - len(name.lstrip("."))
                parts = base.split(".")
                name = ".".join(parts[: len(parts) - (level - 1)] + ([name.lstrip(".")] if name.lstrip(".") else []))
            self._add(node, name)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            package = self.importer if _is_package(self.importer) else self.importer.rpartition(".")[0]
            base = package.split(".")
            if node.level - 1 >= len(base):
                raise AssertionError(f"{modules()[self.importer]}:{node.lineno}: relative import beyond the package")
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        for alias in node.names:
            sub = f"{module}.{alias.name}"
            self._add(node, sub if sub in modules() else module)


@cache
def imports() -> tuple[Import, ...]:
    """Every import of an own module, in every module of the package."""
    out: list[Import] = []
    for name, path in modules().items():
        c = _Collector(name)
        c.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        out += c.found
    return tuple(out)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


# ------------------------------------------------------------------------------------------ layering
def layer(module: str) -> str:
    """``workbench.models.train`` → ``workbench.models``; top-level modules are their own layer."""
    parts = module.split(".")
    return ".".join(parts[:2])


def subpackages() -> list[str]:
    """The stage subpackages (the CLI, a module or a package, has its rule here instead)."""
    return sorted(m for m in modules() if m.count(".") == 1 and _is_package(m) and m != CLI)


def foundation() -> set[str]:
    """Every top-level module but the CLI (and the root package)."""
    return {m for m in modules() if m.count(".") == 1 and not _is_package(m) and m != CLI}


def layers() -> set[str]:
    return set(subpackages()) | foundation() | {CLI, ROOT_PACKAGE}


_MAY_IMPORT = re.compile(r"^May import:(.*(?:\n(?!\s*\n).*)*)", re.MULTILINE)


def _may_import_lines(module: str) -> list[str]:
    path = modules()[module]
    return _MAY_IMPORT.findall(ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "")


def may_import(subpackage: str) -> set[str]:
    """The layers ``subpackage``'s ``__init__`` docstring allows it to import (its "May import:" line,
    continued on the following lines up to a blank line)."""
    path = modules()[subpackage]
    found = _may_import_lines(subpackage)
    assert len(found) == 1, f"{path.relative_to(ROOT)}: the docstring needs exactly one line 'May import: ...' " \
                            f"naming what {subpackage} may depend on (found {len(found)})"
    text = " ".join(found[0].split()).rstrip(".")
    everything = re.match(r"everything in workbench(?: except (.*))?$", text)
    named = [n.strip() for n in (everything.group(1) or "" if everything else text).split(",") if n.strip()]
    named = [n for n in named if n.lower() != "nothing"]
    unknown = [n for n in named if n not in layers()]
    assert not unknown, (f"{path.relative_to(ROOT)}: 'May import:' names {', '.join(unknown)}, which is not a "
                         f"subpackage or top-level module of workbench ({', '.join(sorted(layers()))})")
    return (layers() - set(named)) if everything else set(named)


def allowed(importer_layer: str) -> set[str]:
    if importer_layer == CLI:  # its own line when it says (never the Jupyter layer: checked below)
        return (may_import(CLI) if _may_import_lines(CLI) else layers() - {JUPYTER}) | {CLI}
    if importer_layer in subpackages():
        return may_import(importer_layer) | {importer_layer}
    if importer_layer == ROOT_PACKAGE:  # `workbench.open` is the notebook session, resolved lazily
        return foundation() | {ROOT_PACKAGE, JUPYTER}
    assert importer_layer in foundation(), importer_layer
    return foundation()


# ------------------------------------------------------------------------------------------ the tests
def test_the_analysis_sees_the_package():
    """The checks below would pass vacuously if the walk found nothing: it finds every stage."""
    mods = modules()
    for expected in ("workbench", "workbench.cli", "workbench.errors", "workbench.models.hybrid",
                     "workbench.review.gate", "workbench.jupyter.session", "workbench.ontology.graph"):
        assert expected in mods
    assert {"workbench.ontology", "workbench.data", "workbench.workspace", "workbench.models",
            "workbench.evaluation", "workbench.review", JUPYTER} <= set(subpackages())
    assert {"workbench.errors", "workbench._io", "workbench._version", "workbench.parallel"} <= foundation()
    found = imports()
    assert any(i.importer == "workbench.models.train" and i.target == "workbench.models.hybrid" for i in found)


def test_the_import_analysis_resolves_relative_and_submodule_imports():
    src = textwrap.dedent("""
        from typing import TYPE_CHECKING
        from . import hybrid
        from .nets import PartNet
        from .. import errors
        from workbench.models import train
        from workbench.models import PartNet
        import workbench.data.store
        if TYPE_CHECKING:
            from workbench.workspace.folder import Workspace
        def f():
            from workbench.ontology.graph import Ontology
            importlib.import_module("workbench.review.gate")
            importlib.import_module(".rules", __package__)
    """)
    c = _Collector("workbench.models.store")
    c.visit(ast.parse(src))
    got = [(i.target, i.function, i.type_checking) for i in c.found]
    assert got == [
        ("workbench.models.hybrid", None, False), ("workbench.models.nets", None, False),
        ("workbench.errors", None, False), ("workbench.models.train", None, False), ("workbench.models", None, False),
        ("workbench.data.store", None, False), ("workbench.workspace.folder", None, True),
        ("workbench.ontology.graph", "f", False), ("workbench.review.gate", "f", False),
        ("workbench.models.rules", "f", False),
    ]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    ring = {"a": {"b"}, "b": {"c", "a"}, "c": {"d"}, "d": {"a"}}
    assert _shortest_cycle(ring, {"a", "b", "c", "d"}) == ["a", "b", "a"]
    assert _shortest_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}, {"a", "b", "c"}) == ["a", "b", "c", "a"]


def test_core_modules_import_without_jupyter():
    names = sorted(m for m in modules() if layer(m) != JUPYTER and "._frontend" not in m)
    # the control comes last: a widget module must be caught, or the check could not fail
    control = "workbench.jupyter.widgets.labeler"
    script = textwrap.dedent(f"""
        import importlib, json, sys
        FORBIDDEN = {FORBIDDEN_IN_CORE!r}
        out = []
        for name in {[*names, control]!r}:
            before = set(sys.modules)
            try:
                importlib.import_module(name)
            except Exception as e:
                out.append([name, "error", f"{{type(e).__name__}}: {{e}}"])
                continue
            bad = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
            if bad:
                out.append([name, "loads", bad[:6]])
                # forget what this import added, so the next module is judged on its own
                for m in set(sys.modules) - before:
                    if m.split(".")[0] in FORBIDDEN or m.split(".")[0] == "workbench":
                        del sys.modules[m]
        print(json.dumps(out))
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    problems = json.loads(r.stdout.strip().splitlines()[-1])
    assert problems and problems[-1][:2] == [control, "loads"], f"the check did not catch {control}: {problems}"
    problems = problems[:-1]
    assert not problems, "core modules that load Jupyter packages or fail to import:\n" + "\n".join(
        f"  {name}: {what} {detail}" for name, what, detail in problems)


def test_the_import_graph_has_no_cycle():
    edges: dict[str, set[str]] = {}
    for i in imports():
        if i.target != i.importer:
            edges.setdefault(i.importer, set()).add(i.target)
    cycles = _cycles(edges)
    lines = []
    for comp in cycles:
        chain = _shortest_cycle(edges, set(comp))
        lines.append(f"{len(comp)} modules import each other in a circle: {', '.join(comp)}; the shortest cycle:")
        for a, b in itertools.pairwise(chain):
            lines += [f"    {a} -> {b}: {i.where()}" for i in imports() if (i.importer, i.target) == (a, b)]
    assert not cycles, "\n".join(lines)


def _shortest_cycle(edges: dict[str, set[str]], comp: set[str]) -> list[str]:
    """The shortest closed path inside the strongly connected ``comp``: [a, b, ..., a]."""
    best: list[str] = []
    for start in sorted(comp):
        prev: dict[str, str] = {}
        queue, seen = [start], {start}
        while queue and start not in prev:
            nxt = []
            for v in queue:
                for w in sorted(edges.get(v, ()) & comp):
                    if w == start and start not in prev:
                        prev[start] = v
                    elif w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
            queue = nxt
        path, v = [start], prev[start]
        while v != start:
            path.append(v)
            v = prev[v]
        path = [start, *reversed(path[1:]), start]
        if not best or len(path) < len(best):
            best = path
    return best


def test_every_subpackage_says_what_it_may_import():
    for sub in subpackages():
        allowed_layers = may_import(sub)
        assert CLI not in allowed_layers, f"{sub} may not import the CLI"
        if sub != JUPYTER:
            assert JUPYTER not in allowed_layers, f"{sub} is core and may not import {JUPYTER}"
    assert may_import(JUPYTER) == layers() - {CLI}
    assert JUPYTER not in allowed(CLI), f"{CLI} may not import {JUPYTER}"


def test_the_layer_rules_are_not_vacuous():
    """The stages' order: each may use the ones before it, never the ones after."""
    order = ["workbench.ontology", "workbench.data", "workbench.workspace", "workbench.models", "workbench.evaluation",
             "workbench.review", JUPYTER]
    for k, sub in enumerate(order):
        assert set(order[k + 1:]).isdisjoint(allowed(sub)), (sub, sorted(set(order[k + 1:]) & allowed(sub)))
    assert allowed("workbench.errors") == foundation() and CLI not in allowed(JUPYTER)
    assert layer("workbench.models.train") == "workbench.models" and layer("workbench.errors") == "workbench.errors"


def test_imports_respect_the_layers():
    bad = [i for i in imports() if layer(i.target) not in allowed(layer(i.importer))]
    assert not bad, "imports that the importer's layer does not allow ('May import:' in its __init__ docstring):\n" + \
        "\n".join(f"  {layer(i.importer)} -> {i.target}: {i.where()}" for i in bad)


def test_function_level_imports_of_own_modules_are_rare():
    inside = [i for i in imports() if i.function is not None]
    assert len(inside) < MAX_FUNCTION_LEVEL_IMPORTS, (
        f"{len(inside)} imports of the package's own modules inside functions (at most "
        f"{MAX_FUNCTION_LEVEL_IMPORTS - 1}); move them to the top of the file unless they keep torch out of a "
        "process that must stay light:\n" + "\n".join(f"  {i.where()}" for i in inside))


@pytest.mark.parametrize("text, expected", [
    ("May import: workbench.errors, workbench._io", {"workbench.errors", "workbench._io"}),
    ("May import: workbench.errors,\nworkbench.ontology\n\nmore", {"workbench.errors", "workbench.ontology"}),
])
def test_may_import_lines_are_parsed_across_lines(text, expected):
    found = _MAY_IMPORT.findall(text)
    assert len(found) == 1
    assert {n.strip() for n in " ".join(found[0].split()).split(",")} == expected
