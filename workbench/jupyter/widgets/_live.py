"""Widgets whose saved stand-in follows their state, not only the moment the cell ran.

A widget's MIME bundle carries a static ``text/html`` stand-in (:func:`._render.with_fallback`) that a
notebook reopened without its kernel shows. Displayed through :class:`LiveDisplay`, the output gets a
display id; :meth:`LiveDisplay.update_displays` sends the bundle again after a change that matters (a
proposal decided, the widgets refreshed after ``wb.apply`` or ``wb.train``), so what is saved is what
the person last saw. Not on every keypress: that would redraw the live view each time.
"""
from __future__ import annotations

import logging
from typing import Any

__all__ = ["LiveDisplay"]

log = logging.getLogger(__name__)


def _split(bundle: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if isinstance(bundle, tuple) and len(bundle) == 2:
        return bundle[0], bundle[1] or {}
    return bundle, {}


class LiveDisplay:
    """Mixin for a widget: display with a display id; :meth:`update_displays` redraws those outputs."""

    def _ipython_display_(self) -> None:
        from IPython.display import display

        data, metadata = _split(self._repr_mimebundle_())  # type: ignore[attr-defined]
        handle = display(data, metadata=metadata, raw=True, display_id=True)
        if handle is not None:
            self.__dict__.setdefault("_display_handles", []).append(handle)

    def update_displays(self) -> None:
        """Send the widget's bundle (live view and stand-in) again to every output that shows it."""
        handles = self.__dict__.get("_display_handles", [])
        if not handles:
            return
        data, metadata = _split(self._repr_mimebundle_())  # type: ignore[attr-defined]
        for h in handles:
            try:
                h.update(data, metadata=metadata, raw=True)
            except Exception as e:  # noqa: BLE001 - the live widget matters more than its saved picture
                log.info("updating a displayed widget: %s", e)
