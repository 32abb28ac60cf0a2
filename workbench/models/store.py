"""The model folder: one owner for ``models/<concept>.safetensors`` and its ``models/<concept>.json`` sidecar.

Training writes, through :meth:`ModelStore.save`, each concept's model file (the weights and a header
written by :meth:`~workbench.models.contract.ConceptModel.save`) and a small JSON sidecar beside it::

    {"concept": "petal", "fingerprint": "…", "parts": {…what the fingerprint hashed…}, "metrics": {…}}

Every reader (incremental training, the gate, the graph widget, the dashboard, the labeler's ranking,
the server extension) goes through this class, so every read gets the same checks: no symlinks, a
size limit, a JSON object, or ``None`` (a sidecar that cannot be read means "not trained": the concept
retrains, a view shows it untrained).

>>> import tempfile
>>> store = ModelStore(tempfile.mkdtemp())
>>> store.sidecar("petal") is None, store.has("petal")
(True, False)
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench._io import atomic_write_text

if TYPE_CHECKING:
    from workbench.models.contract import ConceptModel

__all__ = ["ModelStore", "Sidecar", "MAX_SIDECAR_BYTES", "MODEL_SUFFIX", "SIDECAR_SUFFIX"]

#: A sidecar is a few kilobytes; anything larger is not one of ours and is ignored.
MAX_SIDECAR_BYTES = 1024 * 1024
MODEL_SUFFIX = ".safetensors"
SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class Sidecar:
    """What training recorded next to a model: the fingerprint that decides whether it retrains, the
    inputs of that fingerprint (``parts``: settings, segmenter hash, data hashes, children) and the
    model's metrics."""

    concept: str
    fingerprint: str | None
    parts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"concept": self.concept, "fingerprint": self.fingerprint, "parts": self.parts, "metrics": self.metrics}


class ModelStore:
    """The ``models/`` folder of a workspace (or any folder training writes to, such as the gate's
    temporary copy)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"ModelStore({str(self.folder)!r})"

    # -- paths ------------------------------------------------------------------------------------------
    def model_path(self, concept: str) -> Path:
        return self.folder / f"{concept}{MODEL_SUFFIX}"

    def sidecar_path(self, concept: str) -> Path:
        return self.folder / f"{concept}{SIDECAR_SUFFIX}"

    # -- reading ----------------------------------------------------------------------------------------
    def has(self, concept: str) -> bool:
        """A model file exists for ``concept`` (a plain file, not a symlink)."""
        p = self.model_path(concept)
        return p.is_file() and not p.is_symlink()

    def sidecar(self, concept: str) -> Sidecar | None:
        """The concept's sidecar, or None when it is missing, a symlink, too large or not valid JSON."""
        p = self.sidecar_path(concept)
        try:
            if p.is_symlink() or not p.is_file() or p.stat().st_size > MAX_SIDECAR_BYTES:
                return None
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, Mapping):
            return None
        fp = data.get("fingerprint")
        parts, metrics = data.get("parts"), data.get("metrics")
        return Sidecar(str(data.get("concept", concept)), fp if isinstance(fp, str) else None,
                       dict(parts) if isinstance(parts, Mapping) else {},
                       dict(metrics) if isinstance(metrics, Mapping) else {})

    def metrics(self, concept: str) -> dict[str, Any] | None:
        """The concept's recorded metrics (None when it has not been trained)."""
        side = self.sidecar(concept)
        return None if side is None else side.metrics

    def sidecars(self) -> Iterator[Sidecar]:
        """Every readable sidecar in the folder, by file name."""
        if not self.folder.is_dir():
            return
        for p in sorted(self.folder.glob(f"*{SIDECAR_SUFFIX}")):
            side = self.sidecar(p.stem)
            if side is not None:
                yield side

    def any_saved(self) -> bool:
        """Whether the folder holds any saved model (with a readable sidecar)."""
        return next(self.sidecars(), None) is not None

    def saved_training(self) -> tuple[dict[str, Any] | None, str | None]:
        """(model settings, segmenter hash) the saved models were trained with, from their sidecars."""
        settings, shash = None, None
        for side in self.sidecars():
            if settings is None and isinstance(side.parts.get("settings"), Mapping):
                settings = dict(side.parts["settings"])
            if shash is None and isinstance(side.parts.get("segmenter"), str):
                shash = side.parts["segmenter"]
            if settings is not None and shash is not None:
                break
        return settings, shash

    def load(self, concept: str) -> ConceptModel:
        """The concept's fitted model (a :class:`~workbench.errors.ModelError` names the file and the fix)."""
        from workbench.models.loading import (
            load_model,  # torch only when a model is loaded
        )

        return load_model(self.model_path(concept))

    # -- writing ----------------------------------------------------------------------------------------
    def save(self, concept: str, model: ConceptModel, *, fingerprint: str | None, parts: Mapping[str, Any]) -> None:
        """Write the model file, then its sidecar (both atomically): a crash between the two leaves a
        model without a matching sidecar, which only means it retrains next time."""
        self.folder.mkdir(parents=True, exist_ok=True)
        model.save(self.model_path(concept))
        side = Sidecar(concept, fingerprint, dict(parts), dict(getattr(model, "metrics_", {}) or {}))
        atomic_write_text(self.sidecar_path(concept), json.dumps(side.to_dict(), indent=1, sort_keys=True, default=str))

    def copy_to(self, other: ModelStore) -> None:
        """Copy every model file and sidecar (plain files only) into ``other`` (the gate's scratch folder)."""
        if not self.folder.is_dir():
            return
        other.folder.mkdir(parents=True, exist_ok=True)
        for f in self.folder.iterdir():
            if f.suffix in (MODEL_SUFFIX, SIDECAR_SUFFIX) and f.is_file() and not f.is_symlink():
                shutil.copy2(f, other.folder / f.name)
