"""Load any concept model file: :func:`load_model`, with every shipped model class imported.

A model file's header names its class (``"model": "PartNet"``); ``ConceptModel.load`` builds the
class of that name among those defined so far. This module imports them all, so a process that only
wants to read a model (the model store, the labeler's ranking) can load any file.
:data:`MODEL_CLASSES` is every class name a model file written by the workbench may carry: those
names never change, or files written before would no longer load.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from workbench.models.baseline import BaselineCNN
from workbench.models.contract import ConceptModel
from workbench.models.nets import CompositeNet, PartNet
from workbench.models.prototype_nets import PrototypeLeafNet, PrototypeParentNet
from workbench.models.rules import RuleModel

__all__ = ["MODEL_CLASSES", "load_model"]

#: The header's ``model`` -> the class that reads the file.
MODEL_CLASSES: Mapping[str, type[ConceptModel]] = {
    cls.__name__: cls
    for cls in (PartNet, CompositeNet, RuleModel, BaselineCNN, PrototypeLeafNet, PrototypeParentNet)
}


def load_model(path: str | Path) -> ConceptModel:
    """Load any concept model file (same as ``ConceptModel.load``, with every model class known)."""
    return ConceptModel.load(path)
