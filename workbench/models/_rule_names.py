"""The names of the rules :mod:`workbench.models.rules` registers, known without importing torch.

The command line checks an ontology's ``rule:`` fields before any heavy work (``workbench ontology
validate``, ``workbench dataset check --ontology``, the start of ``init --dataset``, ``segment`` and
``run``), in a process that must stay light; :mod:`workbench.models.rules` imports torch. So the shipped
rule names are written out here, and ``tests/test_dataset_check.py`` fails when they differ from the
rules that module registers: add a rule there, add its name here.
"""
from __future__ import annotations

__all__ = ["RULE_NAMES"]

#: Every rule :mod:`workbench.models.rules` registers (``@register_rule(name, ...)``), sorted.
RULE_NAMES: tuple[str, ...] = ("green_elongated", "white_elongated", "yellow_disk")
