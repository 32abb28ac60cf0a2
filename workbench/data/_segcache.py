"""Private: the compact on-disk / over-the-wire form of a list of segments, and the segment cache.

A list of segments is packed into plain numpy arrays (no pickles): each mask cut to its bounding box
and bit-packed (the form a :class:`~workbench.data.segments.Segment` holds in memory), so a 256x256
image with 40 segments is a few kilobytes instead of 2.6 MB of bools, and a 12-megapixel photo with
120 segments a few megabytes instead of 1.4 GB. Workers return this form to the parent process and the
cache stores it as a compressed ``.npz`` with a SHA-256 checksum over the arrays and the cache key; an
entry that is truncated, corrupt, written for another key or in another format is reported as a miss
(and then recomputed and rewritten), never trusted. Entries written uncompressed by earlier releases
hold the same arrays and still read.
"""
from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workbench._io import atomic_write_bytes
from workbench.data.segments import Segment

__all__ = ["CACHE_FORMAT", "pack_segments", "unpack_segments", "SegmentCache", "sha256_file", "sha256_array"]

#: Bumped when the packed layout or the meaning of a cached result changes; part of every cache key.
CACHE_FORMAT = 1

_ARRAYS = ("shape", "bboxes", "areas", "offsets", "bits")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_array(image: np.ndarray) -> str:
    """SHA-256 of an in-memory image: its dtype, shape and pixels (so a transposed copy differs)."""
    a = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def pack_segments(segments: Sequence[Segment], shape: Sequence[int]) -> dict[str, np.ndarray]:
    """Pack the segments of one image of ``shape`` (H, W) into plain arrays (see module doc)."""
    n = len(segments)
    bb = np.asarray([s.bbox for s in segments], dtype=np.int64).reshape(n, 4)
    areas = np.asarray([s.area for s in segments], dtype=np.int64).reshape(n)
    chunks = [np.asarray(s.bits, dtype=np.uint8) for s in segments]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([c.size for c in chunks], out=offsets[1:])
    bits = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint8)
    return {
        "shape": np.asarray(shape[:2], dtype=np.int64),
        "bboxes": bb,
        "areas": areas,
        "offsets": offsets,
        "bits": bits.astype(np.uint8, copy=False),
    }


def unpack_segments(packed: dict[str, np.ndarray]) -> tuple[tuple[int, int], list[Segment]]:
    """Inverse of :func:`pack_segments`: ``(shape, [Segment, ...])``, each holding its packed bits
    (no mask is unpacked here)."""
    h, w = (int(v) for v in packed["shape"])
    bits, offsets, areas = packed["bits"], packed["offsets"].tolist(), packed["areas"].tolist()
    out = [Segment.from_packed(bits[offsets[i] : offsets[i + 1]], box, (h, w), int(areas[i]))
           for i, box in enumerate(packed["bboxes"].tolist())]
    return (h, w), out


def _checksum(key: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    h = hashlib.sha256(f"workbench-segments/{CACHE_FORMAT}/{key}".encode())
    for name in _ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(memoryview(a).cast("B") if a.size else b"")
    return np.frombuffer(h.digest(), dtype=np.uint8)


class SegmentCache:
    """Content-addressed segment cache under ``root``: ``<root>/<segmenter name>/<settings hash>/<ab>/<image hash>.npz``.

    The key is ``(image hash, segmenter name, settings hash)``, so changing any setting gives new keys
    (and old entries stay valid for the old settings). Writes are atomic.

    >>> import tempfile
    >>> cache = SegmentCache(tempfile.mkdtemp())
    >>> m = np.zeros((4, 5), bool); m[1:3, 2:4] = True
    >>> cache.put("ab" * 32, "weightfree", "s1", pack_segments([Segment.from_mask(m)], (4, 5)))
    >>> shape, segs = unpack_segments(cache.get("ab" * 32, "weightfree", "s1"))
    >>> shape, segs[0].bbox, segs[0].area, bool((segs[0].mask == m).all())
    ((4, 5), (2, 1, 4, 3), 4, True)
    >>> cache.get("ab" * 32, "weightfree", "s2") is None
    True
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        #: entries found damaged (path, reason) since this object was made; they were treated as misses
        self.corrupt: list[tuple[Path, str]] = []

    def path(self, image_hash: str, name: str, settings_hash: str) -> Path:
        return self.root / name / settings_hash / image_hash[:2] / f"{image_hash}.npz"

    @staticmethod
    def _key(image_hash: str, name: str, settings_hash: str) -> str:
        return f"{image_hash}/{name}/{settings_hash}"

    def get(self, image_hash: str, name: str, settings_hash: str) -> dict[str, np.ndarray] | None:
        """The packed segments, or ``None`` on a miss or a damaged entry (recorded in ``corrupt``)."""
        p = self.path(image_hash, name, settings_hash)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            self.corrupt.append((p, f"unreadable: {e}"))
            return None
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {name_: np.array(z[name_]) for name_ in (*_ARRAYS, "checksum")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            self.corrupt.append((p, f"not a readable segment cache entry ({type(e).__name__}: {e})"))
            return None
        if not np.array_equal(arrays.pop("checksum"), _checksum(self._key(image_hash, name, settings_hash), arrays)):
            self.corrupt.append((p, "checksum mismatch (damaged, or written for another key or format)"))
            return None
        return arrays

    def put(self, image_hash: str, name: str, settings_hash: str, packed: dict[str, np.ndarray]) -> None:
        arrays = {k: np.asarray(packed[k]) for k in _ARRAYS}
        buf = io.BytesIO()
        np.savez_compressed(buf, checksum=_checksum(self._key(image_hash, name, settings_hash), arrays), **arrays)
        atomic_write_bytes(self.path(image_hash, name, settings_hash), buf.getvalue())
