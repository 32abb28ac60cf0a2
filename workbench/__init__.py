"""Constructability Workbench: image classifiers a person can read, review and edit.

An *ontology* of visual concepts (daisy → flower head → petal, disk; leaf; stem), one tiny net or
plain-code rule per concept, composed bottom-up into a classifier; every change a reviewable diff.

The core (this package) imports without Jupyter; widgets live in :mod:`workbench.jupyter.widgets`.
"""
from workbench import _moved
from workbench._version import __version__

_moved.install()  # old flat-layout module paths still import (with a DeprecationWarning)

__all__ = ["__version__", "open", "Workbench"]


def __getattr__(name: str):  # lazy, so `import workbench` stays light (no widgets, no torch)
    if name in ("open", "Workbench"):
        from workbench.jupyter import session

        return getattr(session, name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
