"""Notebook widgets over the workspace: label segments, review proposals, see the ontology and training.

Thin views (anywidget / ipywidgets): labels, proposals and models live in the workspace; the
widgets turn keypresses and clicks into calls on the core. Start from ``workbench.open(path)``:
``wb.label()``, ``wb.review()``, ``wb.graph()``, ``wb.train()``, ``wb.explain(image)``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Labeler", "ReviewWidget", "OntologyGraph", "TrainingDashboard", "explain_widget"]

_WHERE = {
    "Labeler": ".labeler",
    "ReviewWidget": ".review",
    "OntologyGraph": ".graph",
    "TrainingDashboard": ".dashboard",
    "explain_widget": ".dashboard",
}


def __getattr__(name: str) -> Any:  # lazy: importing the package does not import every widget
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
