"""Proposal references: the one parser of ``7``, ``"0007"``, ``"proposals/0007.yaml"`` and the file's path.

A proposal lives in ``proposals/NNNN.yaml`` (4 to 9 digits) inside its workspace. A reference to it
is accepted as

- a number: ``7`` or ``"7"`` or ``"0007"`` (ASCII digits, at most 9, at least 1);
- its file name ``"0007.yaml"``, or ``"proposals/0007.yaml"`` (``\\`` read as ``/``);
- the file's absolute path, when the workspace's ``proposals/`` folder is known and the file is in it;

and refused, with a message naming the reference, when it holds control characters, ``..``, a drive
letter or an absolute path outside the proposals folder, more folders than ``proposals/``, a name
that is not ``NNNN.yaml``, a number of more than 9 digits, or 0. :func:`parse_ref` gives the
canonical id (``"0007"``); :class:`~workbench.review.store.ProposalStore`, the notebook cells, the
history's revert, the Jupyter server and the command line all go through it.

:func:`is_proposal_ref` tells a proposal reference from a commit sha (what ``revert`` takes): a
number of up to 6 digits or a ``.yaml`` file is a proposal, 7 to 64 hex digits a commit.

>>> parse_ref(7), parse_ref("0007"), parse_ref(" proposals/0007.yaml "), parse_ref("0012.yaml")
('0007', '0007', '0007', '0012')
>>> ref_path(7)
'proposals/0007.yaml'
>>> is_proposal_ref("0007"), is_proposal_ref("3f9c2e7"), is_commit_sha("3f9c2e7")
(True, False, True)
>>> parse_ref("proposals/../ontology.yaml")
Traceback (most recent call last):
...
workbench.errors.ProposalError: 'proposals/../ontology.yaml': a proposal ref must be proposals/NNNN.yaml inside the workspace (no absolute paths, no '..')
"""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from workbench.errors import ProposalError

__all__ = [
    "PROPOSALS_DIR",
    "MAX_ID_DIGITS",
    "REF_HELP",
    "REF_OR_COMMIT_HELP",
    "parse_ref",
    "format_id",
    "ref_path",
    "file_id",
    "is_proposal_id",
    "is_proposal_ref",
    "is_commit_sha",
]

#: The workspace folder proposals live in (directly, no sub-folders).
PROPOSALS_DIR = "proposals"
#: Proposal ids have 4 to this many digits (``0007`` ... ``999999999``).
MAX_ID_DIGITS = 9
#: How a proposal reference is written, for help texts.
REF_HELP = "7, 0007 or proposals/0007.yaml"
#: How ``revert`` takes what it undoes, for help texts.
REF_OR_COMMIT_HELP = "a proposal id (7, 0007) or a commit sha"

_ID = re.compile(rf"^[0-9]{{4,{MAX_ID_DIGITS}}}$")
_FILE = re.compile(rf"^([0-9]{{4,{MAX_ID_DIGITS}}})\.yaml$")
_NUMBER = re.compile(r"^[0-9]+$")  # ASCII only: '٧' or '²' are digits to str.isdigit, never an id here
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_REF_CHARS = 4096
#: A number this long or shorter is a proposal id to ``revert``; longer (7+ hex digits) a commit sha.
_MAX_REVERT_ID_DIGITS = 6


def _shown(text: str) -> str:
    """A reference as quoted in an error: shortened, control and invisible characters escaped (repr)."""
    return repr(text if len(text) <= 60 else text[:57] + "...")


def format_id(number: int) -> str:
    """The canonical id of proposal ``number``: ``7`` → ``"0007"``; :class:`ProposalError` out of range."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise ProposalError(f"a proposal number is an integer, got {type(number).__name__}")
    if number < 1:
        raise ProposalError(f"proposal ids start at 1, got {number}")
    if number >= 10**MAX_ID_DIGITS:
        raise ProposalError(f"proposal ids have at most {MAX_ID_DIGITS} digits, got {_shown(str(number))}")
    return f"{number:04d}"


def parse_ref(ref: Any, *, proposals_dir: str | os.PathLike[str] | None = None) -> str:
    """The canonical id (``"0007"``) a proposal reference names; :class:`ProposalError` saying why not.

    ``proposals_dir``: the workspace's ``proposals/`` folder; only with it is an absolute path
    accepted, and only one naming a file directly in that folder.
    """
    if isinstance(ref, int) and not isinstance(ref, bool):
        return format_id(ref)
    if isinstance(ref, os.PathLike):
        ref = os.fspath(ref)
    if not isinstance(ref, str):
        raise ProposalError(f"a proposal ref is an id or a file ({REF_HELP}), got {type(ref).__name__}")
    text = ref.strip()
    if not text:
        raise ProposalError(f"a proposal ref is an id or a file ({REF_HELP}), got an empty one")
    if len(text) > _MAX_REF_CHARS:
        raise ProposalError(f"{_shown(text)}: a proposal ref of {len(text)} characters is not a proposal ({REF_HELP})")
    if not text.isprintable():  # control, bidi-override and zero-width characters
        raise ProposalError(f"{_shown(text)}: a proposal ref has no control or invisible characters ({REF_HELP})")
    if _NUMBER.match(text):
        if len(text) > MAX_ID_DIGITS:
            raise ProposalError(f"{_shown(text)}: proposal ids have at most {MAX_ID_DIGITS} digits")
        return format_id(int(text))
    pure = PurePosixPath(text.replace("\\", "/"))
    native = Path(text)
    if ".." in pure.parts or pure.is_absolute() or native.is_absolute() or _DRIVE.match(text):
        if proposals_dir is not None and native.is_absolute() and ".." not in native.parts:
            m = _FILE.match(native.name)
            if m and os.path.realpath(native.parent) == os.path.realpath(proposals_dir):
                return m.group(1)
        where = f"; a file's absolute path only directly in {proposals_dir}" if proposals_dir is not None else ""
        raise ProposalError(f"{_shown(text)}: a proposal ref must be {PROPOSALS_DIR}/NNNN.yaml inside the workspace "
                            f"(no absolute paths, no '..'){where}")
    parts = pure.parts
    if len(parts) == 2 and parts[0] == PROPOSALS_DIR:
        name = parts[1]
    elif len(parts) == 1:
        name = parts[0]
    else:
        raise ProposalError(f"{_shown(text)}: proposals live directly in {PROPOSALS_DIR}/ "
                            f"(e.g. {PROPOSALS_DIR}/0007.yaml)")
    m = _FILE.match(name)
    if not m:
        raise ProposalError(f"{_shown(text)}: not a proposal file name (NNNN.yaml, e.g. 0007.yaml)")
    return m.group(1)


def ref_path(ref: Any) -> str:
    """The workspace-relative file of a reference: ``proposals/0007.yaml``."""
    return f"{PROPOSALS_DIR}/{parse_ref(ref)}.yaml"


def file_id(name: str) -> str | None:
    """The id of a proposal file name (``"0007.yaml"`` → ``"0007"``); None for any other file."""
    m = _FILE.match(name)
    return m.group(1) if m else None


def is_proposal_id(value: Any) -> bool:
    """True for a canonical id as a proposal file records it: a string of 4 to 9 digits."""
    return isinstance(value, str) and bool(_ID.match(value))


def is_commit_sha(value: Any) -> bool:
    """True for a (possibly abbreviated) commit sha: 7 to 64 hex digits."""
    return isinstance(value, str) and bool(_SHA.match(value))


def is_proposal_ref(ref: Any) -> bool:
    """True when ``ref`` names a proposal rather than a commit: an int, a number of up to 6 digits, or a
    ``.yaml`` file or ``proposals/`` path. A number of 7 or more digits reads as a commit sha (7 hex
    digits is git's shortest abbreviation): name such a proposal by its file, ``proposals/1234567.yaml``."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return True
    if isinstance(ref, os.PathLike):
        return True
    if not isinstance(ref, str):
        return False
    text = ref.strip()
    if _NUMBER.match(text):
        return len(text) <= _MAX_REVERT_ID_DIGITS
    return text.replace("\\", "/").startswith(f"{PROPOSALS_DIR}/") or text.endswith(".yaml")
