"""Showing proposals: model text as inert HTML or terminal text, and a small HTML summary.

Everything a proposal holds in words (titles, rationales, op fields, problems) came from a model, a
script or a file: it is data, escaped wherever it is shown, never rendered as markup or obeyed as a
terminal escape. Notebook cells have their own Markdown escaping (:mod:`workbench.review.cells`).
"""
from __future__ import annotations

import html
from typing import Any

from workbench._redact import escape_control
from workbench.review.proposals import Proposal

__all__ = ["escape_html", "escape_terminal", "proposal_html"]


def escape_html(text: Any) -> str:
    """Model text as inert HTML: ``<img src=x>`` becomes ``&lt;img src=x&gt;``.

    >>> escape_html('<img src="https://x/y.png"> ![a](https://x/a.png)')
    '&lt;img src=&quot;https://x/y.png&quot;&gt; ![a](https://x/a.png)'
    """
    return html.escape("" if text is None else str(text), quote=True)


def escape_terminal(text: Any) -> str:
    """Model text safe for a terminal: control characters (ANSI escapes, bidi overrides) shown as ``\\xNN``.

    >>> escape_terminal("ok\\x1b[31m red")
    'ok\\\\x1b[31m red'
    """
    return escape_control("" if text is None else str(text))


def proposal_html(p: Proposal) -> str:
    """A small, inert HTML summary of a proposal: every piece of text escaped, no links, no images."""
    rows = []
    for i, e in enumerate(p.edits):
        problem = f"<div class='wb-problem'>{escape_html(e.problem)}</div>" if e.problem else ""
        lint = "".join(f"<div class='wb-lint'>{escape_html(w)}</div>" for w in e.lint)
        rows.append(f"<li data-edit='{i}' class='wb-{escape_html(e.decision)}'><code>{escape_html(e.summary())}</code> "
                    f"<span class='wb-decision'>{escape_html(e.decision)}</span>"
                    f"<div class='wb-rationale'>{escape_html(e.rationale)}</div>{problem}{lint}</li>")
    return (f"<div class='wb-proposal'><h4>{escape_html(p.id or 'new')}: {escape_html(p.title)}</h4>"
            f"<div class='wb-meta'>{escape_html(p.kind)} by {escape_html(p.author)}, {escape_html(p.status)}</div>"
            f"<div class='wb-rationale'>{escape_html(p.rationale)}</div><ol start='0'>{''.join(rows)}</ol></div>")
