"""What every command module shares: the exit codes, printing, and reading ``--edits I,J``.

Light on purpose (the standard library and ``workbench.errors`` only): ``workbench --help`` and the
light commands import it.
"""
from __future__ import annotations

import sys

from workbench.errors import ProposalError

__all__ = ["EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "EXIT_INTERRUPTED", "say", "error", "edit_indices"]

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def say(msg: str = "") -> None:
    """One line on standard output, flushed (so a pipe sees it as it happens)."""
    print(msg, flush=True)


def error(msg: str) -> None:
    """``workbench: error: <msg>`` on standard error."""
    print(f"workbench: error: {msg}", file=sys.stderr, flush=True)


def edit_indices(text: str | None) -> list[int] | None:
    """``"0,2"`` → ``[0, 2]``; None stays None (every valid edit).

    >>> edit_indices("0, 2"), edit_indices(None)
    ([0, 2], None)
    """
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ProposalError(f"--edits takes edit numbers separated by commas (e.g. 0,2), got {text!r}") from None
