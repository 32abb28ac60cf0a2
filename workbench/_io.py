"""Small I/O helpers shared by the core: atomic writes and safe, bounded YAML loading."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from workbench.errors import WorkbenchError

__all__ = ["atomic_write_bytes", "atomic_write_text", "load_yaml_text", "read_yaml_file", "dump_yaml"]

#: Refuse YAML files larger than this many bytes (ontologies, settings and proposals are small).
MAX_YAML_BYTES = 2 * 1024 * 1024
#: Refuse YAML documents that use more than this many aliases (alias bombs).
MAX_YAML_ALIASES = 100


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_text(path: str | Path, text: str) -> None:
    """Atomic UTF-8 text write (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


class _BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases, so a billion-laughs document is refused before it expands."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} YAML aliases (alias bomb?)")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        # PyYAML keeps the last of two equal keys without a word; a hand-edited file that lists
        # `parts:` twice would silently lose the first list. Refuse instead.
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (line {key_node.start_mark.line + 1})", key_node.start_mark
                    )
                seen.add(key)
            except TypeError:
                pass  # an unhashable key: the base class reports it
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str | bytes, source: str, error: type[WorkbenchError] = WorkbenchError) -> Any:
    """Parse YAML with the safe loader only; raise ``error`` naming ``source`` on any problem.

    Object-constructing tags (``!!python/object`` ...) are refused by the safe loader and never run.

    >>> load_yaml_text("a: [1, 2]", "x.yaml")
    {'a': [1, 2]}
    >>> load_yaml_text("{a: 1, a: 2}", "x.yaml")
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: x.yaml: invalid YAML: duplicate key 'a' (line 1) ...
    >>> load_yaml_text("!!python/object/apply:os.system ['echo hi']", "x.yaml")
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: x.yaml: YAML tag not allowed (only plain YAML is accepted): ...
    """
    if isinstance(text, bytes):
        if len(text) > MAX_YAML_BYTES:
            raise error(f"{source}: file is {len(text)} bytes, over the {MAX_YAML_BYTES}-byte limit")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise error(f"{source}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    if len(text) > MAX_YAML_BYTES:
        raise error(f"{source}: file is over the {MAX_YAML_BYTES}-byte limit")
    try:
        return yaml.load(text, Loader=_BoundedSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as e:
        if "duplicate key" in str(e):
            raise error(f"{source}: invalid YAML: {_one_line(e)}") from None
        raise error(f"{source}: YAML tag not allowed (only plain YAML is accepted): {_one_line(e)}") from None
    except yaml.YAMLError as e:
        raise error(f"{source}: invalid YAML: {_one_line(e)}") from None
    except RecursionError:
        raise error(f"{source}: YAML nested too deeply") from None


def read_yaml_file(path: str | Path, error: type[WorkbenchError] = WorkbenchError) -> Any:
    """Read and safely parse a YAML file, with the size limit checked before reading it whole."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    if size > MAX_YAML_BYTES:
        raise error(f"{path}: file is {size} bytes, over the {MAX_YAML_BYTES}-byte limit")
    return load_yaml_text(path.read_bytes(), str(path), error)


def dump_yaml(data: Any) -> str:
    """Deterministic block-style YAML: keys in the order given, unicode kept, no aliases."""

    class _NoAliasDumper(yaml.SafeDumper):
        def ignore_aliases(self, data):  # noqa: ARG002
            return True

    return yaml.dump(
        data, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
