"""Images as sent to Claude: downscaled, encoded, and recorded by their hash instead of their pixels.

>>> s = encode_image(np.zeros((100, 4000, 3), np.uint8), max_edge=1000)
>>> (s.width, s.height, s.media_type), "data" in s.record()["source"]
((1000, 25, 'image/jpeg'), False)
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import SuggesterError

__all__ = ["SentImage", "encode_image", "numbered_grid"]


@dataclass(frozen=True)
class SentImage:
    """An image as sent: the encoded bytes and what the exchange record keeps instead of them."""

    data: bytes = dataclasses.field(repr=False)
    media_type: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def block(self) -> dict[str, Any]:
        """The Messages-API image block (base64)."""
        return {"type": "image", "source": {"type": "base64", "media_type": self.media_type,
                                            "data": base64.b64encode(self.data).decode("ascii")}}

    def record(self) -> dict[str, Any]:
        """The block as recorded: the pixels replaced by their sha256, size and byte count."""
        return {"type": "image", "source": {"type": "base64", "media_type": self.media_type,
                                            "sha256": self.sha256, "bytes": len(self.data),
                                            "width": self.width, "height": self.height}}


def encode_image(image: Any, max_edge: int = 1568, fmt: str = "jpeg") -> SentImage:
    """Downscale ``image`` (H×W[×3] array or PIL image) so its long edge ≤ ``max_edge``; encode it.

    >>> s = encode_image(np.zeros((100, 4000, 3), np.uint8), max_edge=1000)
    >>> (s.width, s.height, s.media_type)
    (1000, 25, 'image/jpeg')
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        img = image
    else:
        arr = np.asarray(image)
        if arr.ndim not in (2, 3) or arr.size == 0:
            raise SuggesterError(f"the image must be an H×W or H×W×3 array, got shape {arr.shape}")
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
    img = img.convert("RGB")
    w, h = img.size
    if max(w, h) > max_edge:
        scale = max_edge / max(w, h)
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
        img = img.resize((w, h), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG", optimize=True)
        media = "image/png"
    else:
        img.save(buf, format="JPEG", quality=90)
        media = "image/jpeg"
    return SentImage(buf.getvalue(), media, w, h)


def numbered_grid(crops: Sequence[Any], max_edge: int) -> Any:
    """Crops laid out on a numbered grid (1..n, left to right, top to bottom) as a PIL image."""
    from PIL import Image, ImageDraw

    n = len(crops)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cell = max(48, min(192, max_edge // max(cols, rows)))
    grid = Image.new("RGB", (cols * cell, rows * cell), (40, 40, 40))
    draw = ImageDraw.Draw(grid)
    for i, crop in enumerate(crops):
        arr = np.asarray(crop)
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        tile = Image.fromarray(arr).convert("RGB")
        tile.thumbnail((cell - 4, cell - 4))
        x, y = (i % cols) * cell, (i // cols) * cell
        grid.paste(tile, (x + 2 + (cell - 4 - tile.width) // 2, y + 2 + (cell - 4 - tile.height) // 2))
        label = str(i + 1)
        draw.rectangle((x + 1, y + 1, x + 8 + 7 * len(label), y + 14), fill=(0, 0, 0))
        draw.text((x + 4, y + 2), label, fill=(255, 255, 0))
    return grid
