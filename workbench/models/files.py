"""The model file format: one safetensors file per concept model (``models/<concept>.safetensors``).

The file holds the model's tensors and, in the safetensors metadata under ``"workbench"``, one JSON
header::

    {"format": "workbench.concept_model", "version": 1, "workbench_version": "...", "model": "PartNet",
     "concept": "petal", "config": {constructor arguments}, "state": {learned plain data},
     "metrics": {...}, "data_hash": "sha256:...", "n_params": 935}

:func:`read_model_header` parses that header itself before any tensor is touched, and refuses with a
:class:`~workbench.errors.ModelError` naming the file: a missing file, one over
:data:`MAX_MODEL_FILE_BYTES`, one that is not safetensors (a pickle is never unpickled, so never run),
a corrupt one, one of another ``format`` or of another ``version``.

Owns the bytes and the header: :func:`write_model_file`, :func:`read_model_header`,
:func:`read_model_info`, and how a header's ``config`` and tensors are read back
(:func:`model_config`, :func:`model_tensors`). Which class a header's ``model`` names, and building
it, is :mod:`workbench.models.contract`'s (``ConceptModel.save`` / ``load``); :func:`load_model
<workbench.models.loading.load_model>` loads any file. Importing this module does not import torch.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench._io import atomic_write_bytes
from workbench._version import __version__
from workbench.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = [
    "MODEL_FILE_FORMAT",
    "MODEL_FILE_VERSION",
    "MAX_MODEL_FILE_BYTES",
    "HEADER_FIELDS",
    "RENAMED_PARAMETERS",
    "ADDED_PARAMETERS",
    "write_model_file",
    "read_model_header",
    "read_model_info",
    "model_config",
    "model_tensors",
]

#: Written in every model file's header; :func:`read_model_header` refuses anything else.
MODEL_FILE_FORMAT = "workbench.concept_model"
#: Bump when a saved model could no longer be read back the same way.
MODEL_FILE_VERSION = 1
#: Model files are tiny (a few KB); refuse to read anything larger than this.
MAX_MODEL_FILE_BYTES = 64 * 1024 * 1024
#: What a model puts in its header (this module adds ``format``, ``version`` and ``workbench_version``).
HEADER_FIELDS = ("model", "concept", "config", "state", "metrics", "data_hash", "n_params")
#: Constructor parameters renamed since model files were written: the name in an older header's
#: ``config`` -> today's name (:func:`model_config` applies it).
RENAMED_PARAMETERS: Mapping[str, str] = {"n_threads": "torch_threads"}
#: Constructor parameters added since model files were written: model class -> {parameter: the value
#: that reproduces what an older file's model did} (:func:`model_config` fills them in when absent).
ADDED_PARAMETERS: Mapping[str, Mapping[str, Any]] = {"RuleModel": {"fit_constants": False},
                                                     "BaselineCNN": {"budget": None}}


# ------------------------------------------------------------------------------------------ writing
def write_model_file(path: str | Path, fields: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> Path:
    """Write one model file (atomically): ``tensors`` and a header of ``fields`` (exactly
    :data:`HEADER_FIELDS`) plus the format, its version and this workbench's version."""
    from safetensors.torch import save as st_save

    if set(fields) != set(HEADER_FIELDS):
        raise ValueError(f"a model file header has the fields {list(HEADER_FIELDS)}, got {sorted(fields)}")
    header = {"format": MODEL_FILE_FORMAT, "version": MODEL_FILE_VERSION, "workbench_version": __version__,
              **{k: _jsonable(v) for k, v in fields.items()}}
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    data = st_save(tensors, metadata={"workbench": json.dumps(header, sort_keys=True)})
    path = Path(path)
    atomic_write_bytes(path, data)
    return path


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


# ------------------------------------------------------------------------------------------ reading
def read_model_header(path: str | Path) -> tuple[dict[str, Any], bytes]:
    """The header of a model file and the file's bytes, once the checks above passed.

    Parses the safetensors JSON header itself (8-byte little-endian length, then JSON): nothing else
    of the file is interpreted.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelError(f"{path}: model file not found: train the concept first") from None
    if size > MAX_MODEL_FILE_BYTES:
        raise ModelError(f"{path}: {size} bytes, over the {MAX_MODEL_FILE_BYTES}-byte limit for a model file")
    data = path.read_bytes()
    bad = f"{path}: not a workbench model file (corrupt, truncated, or another format such as a pickle)"
    if len(data) < 8:
        raise ModelError(bad)
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ModelError(bad)
    try:
        meta = json.loads(data[8 : 8 + n].decode("utf-8"))["__metadata__"]
        header = json.loads(meta["workbench"])
    except Exception:  # noqa: BLE001
        raise ModelError(bad) from None
    if not isinstance(header, dict) or header.get("format") != MODEL_FILE_FORMAT:
        raise ModelError(bad)
    version = header.get("version")
    if version != MODEL_FILE_VERSION:
        raise ModelError(
            f"{path}: model file format version {version!r} (written by workbench "
            f"{header.get('workbench_version', '?')}); this workbench {__version__} reads version "
            f"{MODEL_FILE_VERSION}: retrain it (`workbench train {header.get('concept', '<concept>')}`)"
        )
    return header, data


def read_model_info(path: str | Path) -> dict[str, Any]:
    """The header of a model file (model class, concept, config, metrics, data_hash, n_params), no weights.

    Cheap: for reports and for deciding what must retrain.
    """
    header, _ = read_model_header(path)
    return header


def model_config(header: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments a header records, as the constructor takes them: renamed parameters
    under today's name, lists back to tuples.

    >>> model_config({"config": {"concept": "petal", "channels": [6, 8, 6], "n_threads": 1}})
    {'concept': 'petal', 'channels': (6, 8, 6), 'torch_threads': 1}
    """
    config = dict(header["config"])
    for old, new in RENAMED_PARAMETERS.items():  # files written before the parameter was renamed
        if old in config:
            config[new] = config.pop(old)
    for name, value in ADDED_PARAMETERS.get(str(header.get("model")), {}).items():  # ... before it existed
        config.setdefault(name, value)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}


def model_tensors(data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a model file's bytes (as :func:`read_model_header` returned them); safetensors
    raises on damaged bytes, never runs code."""
    from safetensors.torch import load as st_load

    return st_load(data)
