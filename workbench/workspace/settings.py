"""Workspace settings: one frozen dataclass, one YAML file (``workbench.yaml``), every key validated.

An unknown key is an error naming it (with a "did you mean"), a wrong type is an error naming the key,
the expected type and what was found. Secrets never live here: a key that looks like one (``api_key``,
``token``, ``secret``, ``password``) or a value that looks like an Anthropic key is refused, with a
pointer to the environment (``ANTHROPIC_API_KEY``).

>>> s = Settings()
>>> s.segmenter, s.crop_size, s.torch_threads
('weightfree', 32, 1)
>>> s.replace(workers=2).workers
2
>>> Settings.from_dict({"crop_sise": 64})
Traceback (most recent call last):
...
workbench.errors.SettingsError: <memory>: unknown setting 'crop_sise' (did you mean 'crop_size'?); valid settings: ...
>>> Settings.from_dict({"workers": "2"})
Traceback (most recent call last):
...
workbench.errors.SettingsError: <memory>: setting 'workers' must be an integer, got str ('2')
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from workbench._io import atomic_write_text
from workbench._redact import API_KEY_ENV, KEY_PATTERN, looks_like_secret_name, scrub
from workbench._yaml import dump_yaml, read_yaml_file
from workbench.errors import SettingsError

__all__ = ["Settings", "SETTINGS_FILE", "SEGMENTER_NAMES", "COMPOSITION_MODES", "DEFAULT_CLAUDE_MODEL"]

#: File name of the settings inside a workspace.
SETTINGS_FILE = "workbench.yaml"
#: Segmenters the workbench knows (mirrors ``workbench.data.segment.SEGMENTERS``; a test keeps them equal).
SEGMENTER_NAMES = ("weightfree", "sam")
#: How the hybrid classifier composes concept scores (see ``workbench.models.hybrid``).
COMPOSITION_MODES = ("segments", "prototype")
#: Second reviewers a proposal can get when it is saved (``workbench.review.reviewers.REVIEWERS``, and
#: "none"; a test keeps them equal).
REVIEWER_NAMES = ("none", "scripted", "replay", "claude")
#: The default Claude model: a current Sonnet (vision, tool use, cheaper than Opus). Model ids come and
#: go, so it is a setting; ``claude-sonnet-4-5`` already warns as deprecated in anthropic 2.x.
DEFAULT_CLAUDE_MODEL = "claude-sonnet-5-5"

_HEADER = "# Constructability Workbench settings; every key is documented in workbench/settings.py\n"


@dataclass(frozen=True)
class Settings:
    """Every setting of a workspace, with its default. Build with ``Settings(...)``, ``from_dict``, ``load``."""

    # Segmenter that cuts images into candidate part regions: "weightfree" (scikit-image, no weights,
    # the default) or "sam" (segment-anything; needs sam_checkpoint).
    segmenter: str = "weightfree"
    # Image folder (<root>/<class>/<image>) this workspace's images come from, absolute or relative to
    # the workspace; the store records image paths relative to it. None until a data set is added.
    dataset: str | None = None
    # Keyword options for the segmenter (passed to workbench.data.segment.make_segmenter); they are part of
    # the segment cache key, so changing one re-segments.
    segmenter_options: Mapping[str, Any] = field(default_factory=dict)
    # Long edge, in pixels, at which the segmenter works: a larger image is downscaled for segmenting and
    # each segment is mapped back onto the original (boxes, areas and masks in the original's pixels; the
    # image file is never changed), so memory follows this size, not the photo's. None: the segmenter's
    # own default (weightfree 512, sam 1024). It is the segmenter option `working_size`, so a value other
    # than the segmenter's current one re-segments (new segments; the old ones keep their labels).
    working_size: int | None = None
    # Path to a segment-anything checkpoint (.pth) for segmenter "sam"; relative to the workspace.
    sam_checkpoint: str | None = None
    # Side in pixels of the square segment crop the part nets see.
    crop_size: int = 32
    # torch intra-op threads per process. 1 by default: on a busy 2-core machine 2 threads can be
    # slower than 1, and parallelism comes from `workers` instead.
    torch_threads: int = 1
    # Worker processes for segmentation and training (1 = in process).
    workers: int = 1
    # Dask distributed scheduler address (e.g. "tcp://10.0.0.5:8786"); None = local processes.
    scheduler: str | None = None
    # Seed for every random choice (splits, sampling, weight init), so runs repeat. The split is drawn
    # with the seed in force when an image is first assigned, then stored: later seeds move no image.
    random_state: int = 0
    # Images held out for validation: this fraction of the smaller class, as many of each class. Early
    # stopping, thresholds, rule fitting, the merge gate and every other choice look at these.
    val_fraction: float = 0.2
    # Images held out for test: this fraction of the smaller class, as many of each class. Only the
    # report reads them; nothing is trained, stopped, fitted or chosen on them.
    test_fraction: float = 0.2
    # Claude model id the LLM suggester calls. The API key is never a setting: ANTHROPIC_API_KEY.
    claude_model: str = DEFAULT_CLAUDE_MODEL
    # Longest image edge, in pixels, sent to the LLM (images are downscaled to it; ~1568 is the
    # size beyond which Claude downscales anyway).
    llm_max_image_edge: int = 1568
    # Merge gate: confidence level of the interval on the root's balanced-accuracy change.
    gate_confidence: float = 0.95
    # Merge gate: a change that adds concepts must gain at least this much balanced accuracy.
    gate_min_gain: float = 0.0
    # Merge gate: a simplification (merge, remove, rule for a net) may lose at most this much.
    gate_max_loss: float = 0.01
    # Merge gate: paired-bootstrap resamples.
    gate_bootstrap: int = 1000
    # Provisional concepts (additions accepted after the first train): the gate judges one (composition
    # with vs without it) once it has at least this many segments labelled as it on training images.
    provisional_min_labels: int = 10
    # Hybrid composition mode: "segments" (score segments, best per concept, combine bottom-up) or
    # "prototype" (the source study's convolutional architecture).
    composition: str = "segments"
    # "segments" mode: composites also see near(A,B) for each pair of child parts, the best evidence
    # of A and B on two segments next to each other (e.g. petals around the disk, not just somewhere).
    # Measured on the generated set: 83% -> 97% balanced accuracy (benchmarks/results/relations.md).
    composition_relations: bool = True
    # Second reviewer run when a proposal is saved (`workbench suggest`, `refactor`, the labeler's "New
    # concept…", the sidebar): "scripted" (the workbench's checks plus findings authored for the shipped
    # demo; no key), "claude" (a model's findings; needs ANTHROPIC_API_KEY), "replay", or "none". Findings
    # are advice shown beside the diff; a reviewer never accepts, rejects or changes a proposal.
    reviewer: str = "scripted"

    def __post_init__(self) -> None:
        # Freeze the one mutable field (a copy, so the caller's dict is not shared) and validate.
        object.__setattr__(self, "segmenter_options", MappingProxyType(dict(self.segmenter_options or {})))
        problems = _problems(self, "<memory>")
        if problems:
            raise SettingsError("; ".join(problems))

    # -- construction ----------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, source: str = "<memory>") -> Settings:
        """Settings from a plain mapping (a parsed ``workbench.yaml``); missing keys take defaults."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise SettingsError(f"{source}: settings must be a YAML mapping of key: value, got {type(data).__name__}")
        problems: list[str] = []
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if not isinstance(key, str):
                problems.append(f"{source}: setting names must be text, got {key!r}")
            elif looks_like_secret_name(key):
                problems.append(_secret_message(source, key))
            elif key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{source}: unknown setting {key!r}{hint}; valid settings: {', '.join(names)}")
        if problems:
            raise SettingsError("; ".join(problems))
        values = {k: data[k] for k in names if k in data}
        for name, value in values.items():
            problems += _type_problems(name, value, source)
        if problems:
            raise SettingsError("; ".join(problems))
        values = {k: (float(v) if _FIELD_TYPES[k] is float else v) for k, v in values.items()}
        try:
            return cls(**values)
        except SettingsError as e:
            raise SettingsError(str(e).replace("<memory>", source)) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Settings:
        """Read and validate a settings file (an empty file means all defaults; a folder, FIFO, device
        or oversized file is refused)."""
        path = Path(path)
        return cls.from_dict(read_yaml_file(path, SettingsError, "a settings file"), str(path))

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied, validated like a file (unknown key or wrong type: error)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    # -- output ----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data, in field order (what ``save`` writes)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = _plain(v)
        return out

    def dumps(self) -> str:
        """The YAML text ``save`` writes: deterministic, every setting listed."""
        return _HEADER + dump_yaml(self.to_dict())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the settings atomically."""
        atomic_write_text(path, self.dumps())


# -- validation helpers ---------------------------------------------------------------------------------------

_FIELD_TYPES: dict[str, Any] = {
    "segmenter": str,
    "dataset": (str, None),
    "segmenter_options": dict,
    "working_size": (int, None),
    "sam_checkpoint": (str, None),
    "crop_size": int,
    "torch_threads": int,
    "workers": int,
    "scheduler": (str, None),
    "random_state": int,
    "val_fraction": float,
    "test_fraction": float,
    "claude_model": str,
    "llm_max_image_edge": int,
    "gate_confidence": float,
    "gate_min_gain": float,
    "gate_max_loss": float,
    "gate_bootstrap": int,
    "provisional_min_labels": int,
    "composition": str,
    "composition_relations": bool,
    "reviewer": str,
}
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", dict: "a mapping", bool: "true or false"}


def _type_problems(name: str, value: Any, source: str) -> list[str]:
    kind = _FIELD_TYPES[name]
    optional = isinstance(kind, tuple)
    base = kind[0] if optional else kind
    if optional and value is None:
        return []
    if base is dict:
        ok = isinstance(value, Mapping)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif base is bool:
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, base) and not isinstance(value, bool)
    if ok:
        return []
    what = _TYPE_WORDS[base] + (" or null" if optional else "")
    shown = scrub(repr(value))  # never echo a key into a log
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return [f"{source}: setting {name!r} must be {what}, got {type(value).__name__} ({shown})"]


def _problems(s: Settings, source: str) -> list[str]:
    """Type and range problems of a constructed Settings (the constructor runs this)."""
    problems: list[str] = []
    for f in dataclasses.fields(s):
        problems += _type_problems(f.name, getattr(s, f.name), source)
    if problems:
        return problems
    if s.segmenter not in SEGMENTER_NAMES:
        problems.append(f"{source}: setting 'segmenter' must be one of {', '.join(SEGMENTER_NAMES)}, got {s.segmenter!r}")
    if s.reviewer not in REVIEWER_NAMES:
        problems.append(f"{source}: setting 'reviewer' must be one of {', '.join(REVIEWER_NAMES)}, got {s.reviewer!r}")
    if s.composition not in COMPOSITION_MODES:
        problems.append(
            f"{source}: setting 'composition' must be one of {', '.join(COMPOSITION_MODES)}, got {s.composition!r}"
        )
    for name, low, high in (
        ("crop_size", 8, 512),
        ("torch_threads", 1, 1024),
        ("workers", 1, 1024),
        ("llm_max_image_edge", 64, 8000),
        ("gate_bootstrap", 10, 1_000_000),
        ("provisional_min_labels", 1, 1_000_000),
    ):
        v = getattr(s, name)
        if not low <= v <= high:
            problems.append(f"{source}: setting {name!r} must be between {low} and {high}, got {v}")
    if not 0.5 <= s.gate_confidence < 1.0:
        problems.append(f"{source}: setting 'gate_confidence' must be in [0.5, 1), got {s.gate_confidence}")
    for name in ("gate_min_gain", "gate_max_loss"):
        v = getattr(s, name)
        if not 0.0 <= v <= 1.0:
            problems.append(f"{source}: setting {name!r} is a balanced-accuracy difference in [0, 1], got {v}")
    for name in ("val_fraction", "test_fraction"):
        v = getattr(s, name)
        if not 0.0 < v < 0.5:
            problems.append(f"{source}: setting {name!r} is a fraction of the smaller class's images, "
                            f"above 0 and below 0.5, got {v}")
    if s.val_fraction + s.test_fraction >= 0.9:
        problems.append(f"{source}: settings 'val_fraction' + 'test_fraction' leave too few training images "
                        f"({s.val_fraction} + {s.test_fraction}); keep their sum below 0.9")
    if not s.claude_model.strip():
        problems.append(f"{source}: setting 'claude_model' must name a model, e.g. {DEFAULT_CLAUDE_MODEL!r}")
    if s.working_size is not None:
        if not 16 <= s.working_size <= 16384:
            problems.append(f"{source}: setting 'working_size' must be between 16 and 16384 (pixels), "
                            f"got {s.working_size}")
        given = s.segmenter_options.get("working_size")
        if given is not None and given != s.working_size:
            problems.append(f"{source}: setting 'working_size' is {s.working_size} but segmenter_options.working_size "
                            f"is {given!r}; keep one of them")
    problems += _secret_problems(s.segmenter_options, "segmenter_options", source)
    for name in ("sam_checkpoint", "scheduler", "claude_model", "segmenter", "dataset"):
        v = getattr(s, name)
        if isinstance(v, str) and KEY_PATTERN.search(v):
            problems.append(_secret_message(source, name, value=True))
    try:
        dump_yaml(_plain(s.segmenter_options))
    except Exception:  # noqa: BLE001 - any value YAML cannot write is the problem reported
        problems.append(f"{source}: segmenter_options must hold plain values (text, numbers, lists, mappings)")
    return problems


def _secret_problems(value: Any, where: str, source: str) -> list[str]:
    problems = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str) and looks_like_secret_name(k):
                problems.append(_secret_message(source, f"{where}.{k}"))
            problems += _secret_problems(v, f"{where}.{k}", source)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            problems += _secret_problems(v, f"{where}[{i}]", source)
    elif isinstance(value, str) and KEY_PATTERN.search(value):
        problems.append(_secret_message(source, where, value=True))
    return problems


def _secret_message(source: str, key: str, value: bool = False) -> str:
    what = f"the value of {key!r} looks like an API key" if value else f"{key!r} looks like a secret"
    return (
        f"{source}: {what}; secrets never go in settings files (they end up in git). "
        f"Set them in the environment instead, e.g. {API_KEY_ENV}"
    )


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v
