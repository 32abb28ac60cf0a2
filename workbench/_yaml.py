"""Safe, bounded YAML: the one loader for every YAML file the workbench reads (ontology, settings,
proposals, edit files, scripted suggestions), with errors in the workbench's own words.

Plain data only (no tags that construct objects), duplicate keys refused, at most
:data:`MAX_YAML_ALIASES` aliases and :data:`MAX_YAML_ALIAS_EXPANSION` nodes added by them (an alias bomb is
named as such), files read through :func:`workbench._io.read_bytes_bounded`; a syntax error names the file,
line and column. :func:`dump_yaml` writes the canonical, alias-free form.
"""
from __future__ import annotations

import os
import re
from typing import Any

import yaml

from workbench._io import human_bytes, read_bytes_bounded
from workbench.errors import (
    EditError,
    OntologyError,
    ProposalError,
    SettingsError,
    WorkbenchError,
    WorkspaceError,
)

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_ALIASES", "MAX_YAML_ALIAS_EXPANSION", "load_yaml_text", "read_yaml_file",
           "dump_yaml"]

#: Refuse YAML files larger than this many bytes (ontologies, settings and proposals are small).
MAX_YAML_BYTES = 2 * 1024 * 1024
#: Refuse YAML documents that use more than this many aliases (``*name``).
MAX_YAML_ALIASES = 100
#: Refuse YAML documents whose aliases would add more than this many nodes once expanded (alias bombs:
#: "billion laughs", a few lines of nested aliases that stand for billions of values).
MAX_YAML_ALIAS_EXPANSION = 100_000


class _BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases, refuses duplicate keys, and reports a value it cannot convert
    (``2001-99-99`` as a date, ``!!int abc``) as a YAML error at its line instead of a bare exception."""

    def __init__(self, stream):
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
        return super().compose_node(parent, index)

    def construct_object(self, node, deep=False):  # type: ignore[override]
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, KeyError, TypeError, OverflowError, ArithmeticError) as e:
            shown = node.value if isinstance(node.value, str) else "value"
            if len(shown) > 40:
                shown = f"{shown[:30]}... ({len(node.value)} characters)"
            as_ = _TYPE_WORDS.get(node.tag, f"the type {_short_tag(node.tag)}")
            # Only a date's reason is worth showing ("month must be in 1..12"); the others are Python's.
            why = f" ({' '.join(str(e).split())[:120]})" if node.tag == "tag:yaml.org,2002:timestamp" else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"{shown!r} cannot be read as {as_}{why}; put it in quotes if it is text",
                node.start_mark,
            ) from None

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        # PyYAML keeps the last of two equal keys without a word; a hand-edited file that lists
        # `parts:` twice would silently lose the first list. Refuse instead.
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
            except TypeError:
                pass  # an unhashable key: the base class reports it
        return super().construct_mapping(node, deep=deep)


_TYPE_WORDS = {
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true or false",
    "tag:yaml.org,2002:timestamp": "a date or time",
    "tag:yaml.org,2002:binary": "base64 binary data",
    "tag:yaml.org,2002:null": "null",
}

# PyYAML's names for what it expected or found, in plain words.
_TOKEN_WORDS = {
    "block end": "the end of the indented block",
    "block mapping start": "a more indented `key: value`",
    "block sequence start": "a more indented list",
    "block entry": "a list item (`- `)",
    "flow sequence start": "'['",
    "flow sequence end": "']'",
    "flow mapping start": "'{'",
    "flow mapping end": "'}'",
    "flow entry": "','",
    "document start": "the start of a document",
    "document end": "the end of the document",
    "stream end": "the end of the file",
    "stream start": "the start of the file",
    "scalar": "a value",
    "anchor": "an anchor (&name)",
    "alias": "an alias (*name)",
    "tag": "a tag (!name)",
    "key": "a key",
    "value": "a value",
    "directive": "a directive (%...)",
}

# What PyYAML was reading when it failed ("while parsing a flow sequence"), in plain words.
_CONTEXT_WORDS = {
    "a block mapping": "the `key: value` block",
    "a block collection": "the indented block",
    "a flow sequence": "the [...] list",
    "a flow mapping": "the {...} mapping",
    "a flow node": "the value",
    "a block node": "the value",
    "a quoted scalar": "the quoted text",
    "a double-quoted scalar": "the quoted text",
    "a single-quoted scalar": "the quoted text",
    "a plain scalar": "the value",
    "a block scalar": "the | or > text block",
    "a simple key": "the key",
    "an anchor": "the anchor (&name)",
    "an alias": "the alias (*name)",
    "a tag": "the tag",
    "a directive": "the % directive",
    "a mapping": "the mapping",
    "an ordered map": "the !!omap mapping",
    "pairs": "the !!pairs list",
}


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def _words(text: str) -> str:
    """PyYAML's problem text with its token names (``<block end>``) and tags in plain words."""
    text = re.sub(r"'?<([a-z ]+)>'?", lambda m: _TOKEN_WORDS.get(m.group(1), m.group(1)), text)
    return re.sub(r"tag:yaml\.org,2002:([\w/.:-]+)", r"!!\1", text)


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _line_col(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def _describe(e: yaml.YAMLError, text: str) -> tuple[str, str]:
    """``(category, detail)`` for a PyYAML error, in the workbench's words.

    ``category`` is ``"invalid YAML"`` or ``"YAML tag not allowed (only plain YAML is accepted)"``;
    ``detail`` says where (line, column) and what, without PyYAML's internal names.
    """
    invalid = "invalid YAML"
    if isinstance(e, yaml.reader.ReaderError):
        line, col = _line_col(text, e.position)
        ch = e.character
        if isinstance(ch, bytes):
            name = f"byte 0x{ch[0]:02X}" if ch else "byte"
        else:
            name = f"U+{ch if isinstance(ch, int) else ord(ch):04X}"
        return invalid, f"line {line}, column {col}: the character {name} is not allowed in a YAML file"
    if not isinstance(e, yaml.MarkedYAMLError):
        return invalid, " ".join(str(e).split())
    problem = e.problem or ""
    mark = e.problem_mark or e.context_mark
    where = _at(mark)
    m = re.match(r"could not determine a constructor for the tag '([^']*)'", problem)
    if m:
        tag = m.group(1)
        if tag == "tag:yaml.org,2002:merge":
            return invalid, f"{where}: merge keys (<<) are not supported; write the keys out"
        return ("YAML tag not allowed (only plain YAML is accepted)",
                f"{where}: the tag {_short_tag(tag)} would build a program object, not plain data")
    if problem == "found unhashable key":
        return invalid, f"{where}: a key is a list or a mapping; keys must be plain values (text or numbers)"
    m = re.match(r"found undefined alias '([^']*)'", problem)
    if m:
        return invalid, f"{where}: the alias *{m.group(1)} refers to no &{m.group(1)} anchor before it"
    m = re.match(r"found duplicate anchor '([^']*)'", e.context or "")
    if m:
        return invalid, f"{_at(e.problem_mark)}: the anchor &{m.group(1)} is defined twice"
    if problem == "expected a single document in the stream" or (
        e.context == "expected a single document in the stream"
    ):
        return invalid, f"{_at(e.problem_mark)}: a second YAML document starts here (`---`); a workbench file holds one"
    m = re.match(r"found character '(.*)' that cannot start any token", problem)
    if m:
        ch = m.group(1)
        if ch == "\\t":
            return invalid, f"{where}: a tab character; YAML is indented with spaces only"
        return invalid, f"{where}: the character '{ch}' cannot start a value; put the value in quotes"
    if problem == "mapping values are not allowed here":
        detail = "a `key: value` is not allowed here (check the indentation, or quote a value that contains ': ')"
    elif problem == "found unexpected end of stream":
        detail = "the file ends too early"
    else:
        detail = _words(problem)
    context = ""
    if e.context and e.context_mark is not None and e.problem_mark is not None:
        what = re.sub(r"^(while (parsing|scanning|constructing) )", "", e.context)
        what = _CONTEXT_WORDS.get(what, _words(what))
        if what != "for the next token":
            context = f" (in {what} that starts at {_at(e.context_mark)})"
    return invalid, f"{where}: {detail}{context}" if where else f"{detail}{context}"


def _expansion(root: Any) -> tuple[int, int] | None:
    """``(nodes written, nodes after expanding every alias)`` of a composed document; None when an
    alias sits inside its own anchor (a structure that contains itself). Counted without expanding:
    each distinct node once, its expanded size from its children's."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    cap = 1 << 62
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            sizes[key] = min(cap, 1 + sum(sizes[id(c)] for c in _children(node)))
            continue
        if key in sizes:
            continue
        if key in open_:
            return None
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node))
    return len(sizes), sizes[id(root)]


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


_WHAT = (  # most specific first
    (EditError, "an edit file"),
    (OntologyError, "an ontology file"),
    (SettingsError, "a settings file"),
    (ProposalError, "a proposal file"),
    (WorkspaceError, "a workspace file"),
)


def _what(error: type[WorkbenchError]) -> str:
    for cls, words in _WHAT:
        if issubclass(error, cls):
            return words
    return "a YAML file"


def load_yaml_text(
    text: str | bytes, source: str, error: type[WorkbenchError] = WorkbenchError, what: str | None = None
) -> Any:
    """Parse YAML with the safe loader only; raise ``error`` naming ``source`` on any problem.

    Object-constructing tags (``!!python/object`` ...) are refused by the safe loader and never run.
    Messages say where (line and column) and what, in the workbench's words. Alias bombs (aliases
    that would expand to a huge document) are refused before anything is built.

    >>> load_yaml_text("a: [1, 2]", "x.yaml")
    {'a': [1, 2]}
    >>> load_yaml_text("{a: 1, a: 2}", "x.yaml")
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: x.yaml: invalid YAML at line 1, column 8: duplicate key 'a'
    >>> load_yaml_text("a: [1, 2\\nb: 3\\n", "x.yaml")
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: x.yaml: invalid YAML at line 2, column 2: expected ',' or ']', but got ':' (in the [...] list that starts at line 1, column 4)
    >>> load_yaml_text("!!python/object/apply:os.system ['echo hi']", "x.yaml")
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: x.yaml: YAML tag not allowed (only plain YAML is accepted) at line 1, column 1: the tag !!python/object/apply:os.system would build a program object, not plain data
    """
    what = what or _what(error)
    if isinstance(text, bytes):
        if len(text) > MAX_YAML_BYTES:
            raise error(f"{source}: is larger than the {human_bytes(MAX_YAML_BYTES)} limit for {what} "
                        f"({human_bytes(len(text))})")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            line = text[: e.start].count(b"\n") + 1
            raise error(f"{source}: not UTF-8 text (line {line}, byte {e.start}: {e.reason}); "
                        "save the file as UTF-8") from None
    if len(text) > MAX_YAML_BYTES:
        raise error(f"{source}: is larger than the {human_bytes(MAX_YAML_BYTES)} limit for {what}")
    loader = None
    try:
        loader = _BoundedSafeLoader(text)  # checks every character first: ReaderError
        node = loader.get_single_node()
        if node is None:
            return None
        counted = _expansion(node)
        if counted is None:
            raise error(f"{source}: uses a YAML alias inside its own anchor (a structure that contains itself); "
                        "refused")
        written, expanded = counted
        if expanded - written > MAX_YAML_ALIAS_EXPANSION:
            raise error(f"{source}: uses YAML aliases to expand to more than {MAX_YAML_ALIAS_EXPANSION:,} nodes "
                        f"(an alias bomb); refused")
        if loader.aliases > MAX_YAML_ALIASES:
            raise error(f"{source}: uses {loader.aliases} YAML aliases, more than the {MAX_YAML_ALIASES} allowed "
                        "(many aliases can make a small file expand into a huge one: an alias bomb); refused")
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        category, detail = _describe(e, text)
        sep = " at " if detail.startswith("line ") else ": "
        raise error(f"{source}: {category}{sep}{detail}") from None
    except RecursionError:
        raise error(f"{source}: YAML nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(
    path: str | os.PathLike[str], error: type[WorkbenchError] = WorkbenchError, what: str | None = None
) -> Any:
    """Read (bounded: see :func:`read_bytes_bounded`) and safely parse a YAML file.

    ``what`` names the kind of file in messages (``"an ontology file"``); by default it follows
    ``error`` (:class:`~workbench.errors.OntologyError`: an ontology file, ...).
    """
    what = what or _what(error)
    data = read_bytes_bounded(path, MAX_YAML_BYTES, error, what)
    return load_yaml_text(data, str(path), error, what)


def dump_yaml(data: Any) -> str:
    """Deterministic block-style YAML: keys in the order given, unicode kept, no aliases."""

    class _NoAliasDumper(yaml.SafeDumper):
        def ignore_aliases(self, data):  # noqa: ARG002
            return True

    return yaml.dump(
        data, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )

