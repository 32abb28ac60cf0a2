"""Where the shipped ontologies and scripted suggestions live: the one lookup every reader uses.

Installed from a wheel they sit in ``workbench/_ontologies`` (pyproject force-includes the
repository's ``ontologies/`` there); in a checkout they are read from ``ontologies/`` itself.
"""
from __future__ import annotations

from pathlib import Path

from workbench.errors import WorkbenchError

__all__ = ["shipped_file", "shipped_ontology", "SHIPPED_DIRS"]

_PACKAGE = Path(__file__).resolve().parents[1]
#: Searched in order: the installed copy, then the checkout's folder.
SHIPPED_DIRS = (_PACKAGE / "_ontologies", _PACKAGE.parent / "ontologies")


def shipped_file(name: str) -> Path:
    """Path of a shipped file by name (``daisy.suggestions.yaml``); an error names where it looked.

    >>> shipped_file("daisy.yaml").name
    'daisy.yaml'
    """
    for base in SHIPPED_DIRS:
        p = base / name
        if p.is_file():
            return p
    raise WorkbenchError(f"shipped file {name!r} not found (looked in {', '.join(str(d) for d in SHIPPED_DIRS)})")


def shipped_ontology(name: str) -> Path:
    """Path of a shipped ontology (``daisy`` → ``ontologies/daisy.yaml``), installed or in a checkout."""
    return shipped_file(f"{name}.yaml")
