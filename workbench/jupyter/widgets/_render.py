"""Pictures for the widgets: an image with one segment outlined, its crop, thumbnails, as data URLs.

Everything here is plain numpy + Pillow and runs without a browser, so the labeler can render the
upcoming segments ahead of time (prefetch) and tests can check what would be shown.
"""
from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.data.datasets import load_image

if TYPE_CHECKING:
    from workbench.workspace.folder import Workspace

__all__ = ["ImageCache", "image_file", "png_data_url", "jpeg_data_url", "svg_data_url", "context_view", "crop_view",
           "evidence_view", "OUTLINE", "fallback_html", "with_fallback", "FALLBACK_NOTE"]

#: Colour of the outline drawn around the current segment (magenta shows on flowers, leaves and sky).
OUTLINE = (255, 0, 200)


def image_file(workspace: Workspace, stored_path: str) -> Path:
    """Where the image the store recorded as ``stored_path`` lives (:meth:`Workspace.image_path`)."""
    return workspace.image_path(stored_path)


class ImageCache:
    """A small LRU of decoded images (RGB uint8) keyed by file path, bounded by count and bytes (at
    least one image is kept, however large); load errors propagate. ``scaled`` keeps each image's
    context-size copy too, so a 12-megapixel photo is downscaled once, not once per segment.

    :meth:`prefetch` loads an image on one background thread, so the next image is decoded while a
    person labels this one; :meth:`get` waits for a load already under way instead of repeating it.
    """

    def __init__(self, size: int = 8, max_bytes: int = 256 * 2**20):
        self.size = size
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._scaled: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[str, Future] = {}
        self._pool: ThreadPoolExecutor | None = None

    def get(self, path: Path) -> np.ndarray:
        key = str(path)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            fut = self._pending.get(key)
        if fut is not None:
            fut.result()  # the background load; its ImageLoadError is raised here too
            with self._lock:
                if key in self._items:
                    return self._items[key]
        return self._load(key)

    def _load(self, key: str) -> np.ndarray:
        image = load_image(Path(key))  # raises ImageLoadError naming the file and the reason
        with self._lock:
            self._items[key] = image
            self._items.move_to_end(key)
            while len(self._items) > 1 and (len(self._items) > self.size
                                            or sum(a.nbytes for a in self._items.values()) > self.max_bytes):
                self._items.popitem(last=False)
        return image

    def prefetch(self, path: Path) -> None:
        """Start loading ``path`` in the background (no-op when cached or already loading)."""
        key = str(path)
        with self._lock:
            if key in self._items or key in self._pending:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-prefetch")
            fut = self._pool.submit(self._load, key)
            self._pending[key] = fut
        fut.add_done_callback(lambda _f: self._forget(key))

    def _forget(self, key: str) -> None:
        with self._lock:
            self._pending.pop(key, None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def scaled(self, path: Path, max_edge: int) -> np.ndarray:
        """The image with its long edge scaled to ``max_edge`` (cached like the full one)."""
        key = (str(path), int(max_edge))
        with self._lock:
            if key in self._scaled:
                self._scaled.move_to_end(key)
                return self._scaled[key]
        image = self.get(path)
        h, w = image.shape[:2]
        scale = max_edge / max(h, w)
        out = _resize(image, round(w * scale), round(h * scale))
        with self._lock:
            self._scaled[key] = out
            while len(self._scaled) > 2 * self.size:
                self._scaled.popitem(last=False)
        return out


#: What a widget's static fallback says (shown when a saved notebook is reopened without its kernel).
FALLBACK_NOTE = ("a still picture of this widget as it was last shown. The live widget needs its kernel: run "
                 "the cell again (or Run › Run All Cells) to get it back")


def fallback_html(title: str, body: str) -> str:
    """A widget's static stand-in: ``body`` (HTML made here, every value escaped) under a line saying
    what it is and how to get the live widget back. JupyterLab shows it, through the Workbench
    extension, where it would otherwise say "Error displaying widget: model not found"; viewers that
    cannot run widgets (GitHub, nbviewer) show it too."""
    import html

    return (f"<div class='wb-fallback' style='border:1px dashed #bbb;border-radius:6px;padding:6px 8px;"
            f"max-width:860px'><div style='color:#555;margin-bottom:4px'><b>{html.escape(title)}</b>: "
            f"{html.escape(FALLBACK_NOTE)}.</div>{body}</div>")


def with_fallback(bundle: Any, title: str, body: Any) -> Any:
    """A widget's MIME bundle with its static fallback added as ``text/html`` (``body``: HTML, or a
    function making it; a failure leaves the bundle as it was: the live widget matters more). anywidget
    returns ``(data, metadata)``; ipywidgets the data alone: both work."""
    if isinstance(bundle, tuple) and len(bundle) == 2:
        return with_fallback(bundle[0], title, body), bundle[1]
    if not isinstance(bundle, dict) or "application/vnd.jupyter.widget-view+json" not in bundle:
        return bundle
    try:
        html_body = body() if callable(body) else body
    except Exception:  # noqa: BLE001 - the fallback is a convenience; the widget itself still shows
        return bundle
    return {**bundle, "text/html": fallback_html(title, html_body)}


def svg_data_url(svg: str) -> str:
    """A ``data:image/svg+xml;base64,...`` URL (an ``<img>`` shows it even where inline SVG is stripped)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def png_data_url(pixels: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URL (fast compression: these are sent, not stored)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def jpeg_data_url(pixels: np.ndarray, quality: int = 88) -> str:
    """A ``data:image/jpeg;base64,...`` URL: photos (the context and crop views) are ~10x smaller than PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the mask's outline)."""
    m = np.pad(mask, 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask & ~inner


def _outline(canvas: np.ndarray, crop_mask: np.ndarray, box: tuple[float, float, float, float],
             colour: tuple[int, int, int], width: int = 2) -> None:
    """Draw the outline of ``crop_mask`` (the mask inside its bbox) where that bbox lands on ``canvas``
    (``box`` in canvas pixels): the mask is scaled first, so the line stays solid when enlarged."""
    from PIL import Image

    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0 = max(0, min(x0, w - 1)), max(0, min(y0, h - 1))
    x1, y1 = max(x0 + 1, min(x1, w)), max(y0 + 1, min(y1, h))
    m = np.asarray(Image.fromarray(crop_mask.astype(np.uint8) * 255).resize((x1 - x0, y1 - y0), Image.NEAREST)) > 127
    edge = _boundary(m)
    for _ in range(width - 1):  # thicken inwards and outwards by one pixel per step
        p = np.pad(edge, 1)
        edge = edge | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
    canvas[y0:y1, x0:x1][edge] = colour


def _resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    if pixels.shape[1] == width and pixels.shape[0] == height:
        return pixels.copy()
    return np.array(Image.fromarray(pixels).resize((max(1, width), max(1, height)), Image.BILINEAR), dtype=np.uint8)


def context_view(image: np.ndarray, segment: Any, max_edge: int = 384, scaled: np.ndarray | None = None) -> np.ndarray:
    """The whole image scaled so its long edge is ``max_edge``, the segment outlined and its box marked.

    ``scaled``: that scaled copy when the caller has it already (:meth:`ImageCache.scaled`); not modified.
    """
    h, w = image.shape[:2]
    if scaled is None:
        scale = max_edge / max(h, w)
        out = _resize(image, round(w * scale), round(h * scale))
    else:
        out = scaled.copy()
    oh, ow = out.shape[:2]
    sx, sy = ow / w, oh / h
    x0, y0, x1, y1 = segment.bbox
    # the box, thin and white so the outline stays the thing the eye follows
    bx0, by0 = int(x0 * sx), int(y0 * sy)
    bx1, by1 = max(bx0, min(ow - 1, int(x1 * sx))), max(by0, min(oh - 1, int(y1 * sy)))
    out[by0, bx0:bx1 + 1] = out[by1, bx0:bx1 + 1] = (255, 255, 255)
    out[by0:by1 + 1, bx0] = out[by0:by1 + 1, bx1] = (255, 255, 255)
    _outline(out, segment.crop_mask(), (x0 * sx, y0 * sy, x1 * sx, y1 * sy), OUTLINE, width=2)
    return out


def crop_view(image: np.ndarray, segment: Any, size: int = 160, pad: float = 0.25, outline: bool = True) -> np.ndarray:
    """The segment's box with ``pad`` of its size around it, scaled to fit ``size``², outlined."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = segment.bbox
    bw, bh = x1 - x0, y1 - y0
    side = max(bw, bh) * (1 + 2 * pad)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    X0, Y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
    X1, Y1 = min(w, int(np.ceil(cx + side / 2))), min(h, int(np.ceil(cy + side / 2)))
    region = image[Y0:Y1, X0:X1]
    rh, rw = region.shape[:2]
    scale = size / max(rh, rw)
    out = _resize(region, round(rw * scale), round(rh * scale))
    if outline:
        sx, sy = out.shape[1] / rw, out.shape[0] / rh
        _outline(out, segment.crop_mask(), ((x0 - X0) * sx, (y0 - Y0) * sy, (x1 - X0) * sx, (y1 - Y0) * sy),
                 OUTLINE, width=2 if size >= 96 else 1)
    return out


def evidence_view(image: np.ndarray, segments: list[Any], max_edge: int = 256) -> np.ndarray:
    """The whole image scaled so its long edge is ``max_edge``, every one of ``segments`` outlined."""
    h, w = image.shape[:2]
    scale = max_edge / max(h, w)
    out = _resize(image, round(w * scale), round(h * scale))
    sx, sy = out.shape[1] / w, out.shape[0] / h
    for seg in segments:
        x0, y0, x1, y1 = seg.bbox
        _outline(out, seg.crop_mask(), (x0 * sx, y0 * sy, x1 * sx, y1 * sy), OUTLINE, width=2)
    return out
