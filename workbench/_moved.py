"""Old module paths of the flat layout, still importable for code written against them.

Until the stage subpackages (``workbench.ontology``, ``.data``, ``.workspace``, ``.models``, ``.evaluation``,
``.review``, ``.jupyter``) existed, every module sat directly in ``workbench/``. A notebook or script that
still says ``from workbench.proposals import ProposalStore`` keeps working: importing an old path gives the
module at its new home (the very same module object) and a :class:`DeprecationWarning` naming that home.
``workbench._server`` in a hand-written Jupyter config keeps loading the server extension the same way.

Nothing inside the package imports an old path (a test checks that).

>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     import workbench.lint as old
>>> import workbench.ontology.lint as new
>>> old is new, "workbench.ontology.lint" in str(caught[0].message)
(True, True)
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

__all__ = ["MOVED", "install"]

#: Old dotted path → new dotted path.
MOVED: dict[str, str] = {
    "workbench.edits": "workbench.ontology.edits",
    "workbench.lint": "workbench.ontology.lint",
    "workbench.datasets": "workbench.data.datasets",
    "workbench.segment": "workbench.data.segment",
    "workbench.sam": "workbench.data.sam",
    "workbench.store": "workbench.data.store",
    "workbench.labelers": "workbench.data.labelers",
    "workbench.settings": "workbench.workspace.settings",
    "workbench.rules": "workbench.models.rules",
    "workbench.baseline": "workbench.models.baseline",
    "workbench.prototype": "workbench.models.prototype",
    "workbench.hybrid": "workbench.models.hybrid",
    "workbench.train": "workbench.models.train",
    "workbench.evaluate": "workbench.evaluation.evaluate",
    "workbench.report": "workbench.evaluation.report",
    "workbench.pipeline": "workbench.evaluation.pipeline",
    "workbench.proposals": "workbench.review.proposals",
    "workbench.suggest": "workbench.review.suggest",
    "workbench.claude": "workbench.review.claude",
    "workbench.gate": "workbench.review.gate",
    "workbench.history": "workbench.review.history",
    "workbench.cells": "workbench.review.cells",
    "workbench.session": "workbench.jupyter.session",
    "workbench._server": "workbench.jupyter.server",
    "workbench.widgets": "workbench.jupyter.widgets",
    "workbench.widgets.labeler": "workbench.jupyter.widgets.labeler",
    "workbench.widgets.review": "workbench.jupyter.widgets.review",
    "workbench.widgets.graph": "workbench.jupyter.widgets.graph",
    "workbench.widgets.dashboard": "workbench.jupyter.widgets.dashboard",
}


class _Loader(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {self.new}; import it from there", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(self.new)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module: ModuleType) -> None:  # the new module is already executed
        return None


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(new), is_package=fullname == "workbench.widgets")


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (``import workbench`` does this)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())  # before the path finder, which would load a second copy
