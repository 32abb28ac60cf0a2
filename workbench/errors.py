"""The error hierarchy: every error names the object it is about and, where there is one, the fix.

>>> issubclass(OntologyError, WorkbenchError)
True
>>> str(ImageLoadError("cat.png", "truncated file"))
'cat.png: truncated file'
"""
from __future__ import annotations

from pathlib import Path

__all__ = [
    "WorkbenchError",
    "OntologyError",
    "EditError",
    "SettingsError",
    "WorkspaceError",
    "PinError",
    "StoreError",
    "DatasetError",
    "ImageLoadError",
    "SegmentationError",
    "ModelError",
    "NotFittedError",
    "ProposalError",
    "ProposalConflict",
    "SuggesterError",
]


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose."""


class OntologyError(WorkbenchError):
    """An ontology file or object is invalid.

    ``problems`` lists one message per problem, each naming the file and the concept.
    """

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems) if problems else [message]
        super().__init__(message)


class EditError(OntologyError):
    """An edit does not apply to this ontology (unknown concept, cycle, duplicate id, ...)."""


class SettingsError(WorkbenchError):
    """A settings file or value is invalid (unknown key, wrong type, out of range)."""


class WorkspaceError(WorkbenchError):
    """A folder is not a workspace, or was written by a newer version."""


class PinError(WorkspaceError):
    """A pin file or a pin request is wrong (the message names the file or the segment, and the fix)."""


class StoreError(WorkbenchError):
    """The label store refused an operation or is damaged."""


class DatasetError(WorkbenchError):
    """A data set folder is malformed."""


class ImageLoadError(DatasetError):
    """One image could not be loaded; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class SegmentationError(WorkbenchError):
    """A segmenter could not be built or failed on an image."""


class ModelError(WorkbenchError):
    """A concept model is invalid, over budget, or its file is corrupt or from another version."""


class NotFittedError(ModelError):
    """A concept model was used before ``fit``."""


class ProposalError(WorkbenchError):
    """A proposal is malformed or cannot be applied."""


class ProposalConflict(ProposalError):
    """A proposal was made against an ontology that has changed since."""


class SuggesterError(WorkbenchError):
    """A suggester (Claude, scripted, replay) failed; the message says why and what to do."""
