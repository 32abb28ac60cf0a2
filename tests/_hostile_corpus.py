"""A generated corpus of hostile and awkward image files, with what loading each must give.

Used by ``tests/test_hostile_images.py`` and, as seeds, by ``benchmarks/fuzz_images.py``. Each
:class:`Case` is a file name, its bytes, and either the upright RGB picture it must load as or the
words one of which the refusal's reason must contain. Expected pictures are built from plain numpy
arrays, independently of the loader under test.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["Case", "corpus", "write_corpus", "BIG_SIDE"]

#: 4000 x 3000 = 12 megapixels.
BIG_SIDE = (4000, 3000)


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    upright: np.ndarray | None = None  # the picture (H x W x 3 uint8) it must load as; None: refused
    tolerance: int = 0  # per-channel difference allowed (lossy formats)
    reason: tuple[str, ...] = ()  # for a refused file: one of these words is in the reason

    @property
    def good(self) -> bool:
        return self.upright is not None


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    image.save(b, fmt, **kw)
    return b.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose valid IHDR claims ``width`` x ``height`` RGB pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def quadrants(h: int = 32, w: int = 48) -> np.ndarray:
    """Red, green / blue, white quadrants: any flip or rotation moves a colour."""
    u = np.zeros((h, w, 3), np.uint8)
    u[: h // 2, : w // 2] = (255, 0, 0)
    u[: h // 2, w // 2:] = (0, 255, 0)
    u[h // 2:, : w // 2] = (0, 0, 255)
    u[h // 2:, w // 2:] = (255, 255, 255)
    return u


# How the stored pixels relate to the upright picture for each EXIF Orientation (the TIFF/EXIF spec's
# "0th row / 0th column" table), written with numpy only.
_STORED = {
    1: lambda u: u,
    2: lambda u: u[:, ::-1],
    3: lambda u: u[::-1, ::-1],
    4: lambda u: u[::-1],
    5: lambda u: u.transpose(1, 0, 2),
    6: lambda u: np.rot90(u, 1),
    7: lambda u: u[::-1, ::-1].transpose(1, 0, 2),
    8: lambda u: np.rot90(u, -1),
}


def corpus(big: bool = True) -> list[Case]:
    """Every case; ``big=False`` leaves out the 12-megapixel file (slow to encode)."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    png = _encode(Image.fromarray(noise), "PNG")
    jpg = _encode(Image.fromarray(noise), "JPEG", quality=90)
    cases: list[Case] = [Case("ok_rgb.png", png, noise)]

    # refused -------------------------------------------------------------------------------------
    cut_words = ("truncated", "not an image", "corrupt", "cannot decode")
    for cut in (8, 20, 40, len(png) // 2, len(png) * 3 // 4):
        cases.append(Case(f"truncated_png_at_{cut}.png", png[:cut], reason=cut_words))
    for cut in (2, 100, len(jpg) // 2, len(jpg) - 200):
        cases.append(Case(f"truncated_jpg_at_{cut}.jpg", jpg[:cut], reason=cut_words))
    cases += [
        Case("empty.png", b"", reason=("empty",)),
        Case("text.png", b"this is not an image, just text\n" * 20, reason=("not an image",)),
        Case("html.jpg", b"<!doctype html><html><body>404</body></html>", reason=("not an image",)),
        Case("random.gif", rng.bytes(4096), reason=("not an image",)),
        Case("bomb_50000x50000.png", png_claiming(50_000, 50_000), reason=("decompression bomb",)),
        Case("bomb_9000x8000.png", png_claiming(9_000, 8_000), reason=("decompression bomb",)),
        Case("zero_height.png", png_claiming(64, 0), reason=("empty", "not an image", "corrupt", "cannot decode")),
    ]

    # loaded, upright, RGB uint8 ------------------------------------------------------------------
    q = quadrants()
    cmyk = Image.fromarray(q).convert("CMYK")
    cases.append(Case("cmyk.jpg", _encode(cmyk, "JPEG", quality=95), q, tolerance=40))
    cases.append(Case("cmyk.tif", _encode(cmyk, "TIFF"), q))
    v16 = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    cases.append(Case("gray16.png", _encode(Image.fromarray(v16), "PNG"),
                      np.repeat((v16 >> 8).astype(np.uint8)[:, :, None], 3, axis=2)))
    cases.append(Case("gray16.tif", _encode(Image.fromarray(v16), "TIFF"),
                      np.repeat((v16 >> 8).astype(np.uint8)[:, :, None], 3, axis=2)))
    cases.append(Case("palette.png", _encode(Image.fromarray(q).quantize(4), "PNG"), q))
    cases.append(Case("palette.gif", _encode(Image.fromarray(q).quantize(4), "GIF"), q))
    alpha = np.zeros((32, 48), np.uint8)
    alpha[:, 12:] = 255
    rgba = np.dstack([q, alpha])
    on_black = (q * (alpha[:, :, None] // 255)).astype(np.uint8)
    cases.append(Case("rgba.png", _encode(Image.fromarray(rgba, "RGBA"), "PNG"), on_black))
    cases.append(Case("gray.png", _encode(Image.fromarray(q[:, :, 0]), "PNG"), np.repeat(q[:, :, :1], 3, axis=2)))
    for o, stored in _STORED.items():
        exif = Image.Exif()
        exif[0x0112] = o
        data = _encode(Image.fromarray(np.ascontiguousarray(stored(q))), "JPEG", quality=95, subsampling=0,
                       exif=exif.tobytes())
        cases.append(Case(f"exif_orientation_{o}.jpg", data, q, tolerance=40))
    frames = [Image.fromarray(np.full((16, 16, 3), c, np.uint8)) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    first = np.full((16, 16, 3), (255, 0, 0), np.uint8)
    for fmt, ext in (("GIF", "gif"), ("PNG", "png"), ("WEBP", "webp")):
        b = io.BytesIO()
        kw = {"lossless": True} if fmt == "WEBP" else {}
        frames[0].save(b, fmt, save_all=True, append_images=frames[1:], duration=50, loop=0, **kw)
        cases.append(Case(f"animated.{ext}", b.getvalue(), first, tolerance=2))
    if big:
        w, h = BIG_SIDE
        up = np.zeros((h, w, 3), np.uint8)
        up[:] = (30, 90, 160)
        up[:100, :100] = (250, 250, 0)
        cases.append(Case("twelve_megapixel.jpg", _encode(Image.fromarray(up), "JPEG", quality=80), up, tolerance=40))
    return cases


def write_corpus(folder: Path, cases: list[Case]) -> dict[str, Path]:
    """Write each case's bytes under ``folder``; ``{name: path}``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for c in cases:
        p = folder / c.name
        p.write_bytes(c.data)
        out[c.name] = p
    return out
