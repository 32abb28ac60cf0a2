"""Real photographs for the tests and benchmarks, with no download: the sample photos that
scikit-image ships inside its wheel (``skimage/data/*.png|jpg``), read straight from the package folder
(never through ``skimage.data``'s fetchers, some of which go to the network), upscaled to any size.

An upscaled photo has real content (edges, texture, gradients: a cat, a rocket, coffee, an astronaut),
unlike the flat or noise images the hostile corpus used for its 12-megapixel file, so the segmenter
finds a realistic number of segments in it (~100-200 at the default working size). What it is not: a
photo with part annotations. There are no ground-truth part masks here, so no part recall can be
measured on these; they test memory, speed, and that every stage runs on a real picture.

Used by ``tests/test_photos.py``, ``tests/test_hostile_photos.py`` and ``benchmarks/bench_photos.py``.
"""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["PHOTOS", "TWELVE_MP", "photo_path", "photo", "photo_jpeg", "photo_set"]

#: The colour photographs in scikit-image's wheel: name -> file in ``skimage/data``.
PHOTOS = {
    "chelsea": "chelsea.png",  # a cat, 451 x 300
    "coffee": "coffee.png",  # a cup of coffee, 600 x 400
    "astronaut": "astronaut.png",  # Eileen Collins, 512 x 512
    "rocket": "rocket.jpg",  # a rocket on its pad, 640 x 427
    "motorcycle": "motorcycle_left.png",  # a motorcycle, 741 x 500
    "hubble": "hubble_deep_field.jpg",  # the Hubble deep field, 1000 x 872
}
#: 4000 x 3000: 12 megapixels, a phone camera's photo.
TWELVE_MP = (4000, 3000)


def photo_path(name: str) -> Path:
    """The file of photo ``name`` inside the installed scikit-image (it ships in the wheel)."""
    import skimage

    path = Path(skimage.__file__).resolve().parent / "data" / PHOTOS[name]
    if not path.is_file():  # pragma: no cover - a scikit-image build without its sample data
        raise FileNotFoundError(f"{path}: scikit-image's sample photo {name!r} is not installed")
    return path


@lru_cache(maxsize=8)
def _original(name: str) -> np.ndarray:
    with Image.open(photo_path(name)) as im:
        return np.asarray(im.convert("RGB"))


def photo(name: str = "chelsea", size: tuple[int, int] | None = None, variant: int = 0) -> np.ndarray:
    """Photo ``name`` as RGB uint8, upscaled (bicubic) to ``size`` = (width, height) when given.

    ``variant`` > 0 makes a different picture of the same scene (a seeded crop of 70-100 % of it,
    maybe mirrored, a small colour shift), so a set of many photos has no two alike: the segment cache
    is content-addressed and must not turn a benchmark into cache hits.
    """
    a = _original(name)
    if variant:
        rng = np.random.default_rng(variant)
        h, w = a.shape[:2]
        f = rng.uniform(0.7, 1.0)
        ch, cw = max(8, int(h * f)), max(8, int(w * f))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        a = a[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            a = a[:, ::-1]
        shift = rng.integers(-12, 13, size=3)
        a = np.clip(a.astype(np.int16) + shift, 0, 255).astype(np.uint8)
    if size is not None and (a.shape[1], a.shape[0]) != tuple(size):
        a = np.asarray(Image.fromarray(np.ascontiguousarray(a)).resize(tuple(size), Image.BICUBIC))
    return np.ascontiguousarray(a)


def photo_jpeg(name: str = "chelsea", size: tuple[int, int] = TWELVE_MP, variant: int = 0, quality: int = 90) -> bytes:
    """:func:`photo` encoded as a JPEG (what a camera writes)."""
    buf = io.BytesIO()
    Image.fromarray(photo(name, size, variant)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def photo_set(root: Path, n: int, size: tuple[int, int] = TWELVE_MP, classes: tuple[str, ...] = ("daisy", "not_daisy"),
              prefix: str = "photo") -> list[Path]:
    """Write ``n`` different JPEG photos of ``size`` into ``root/<class>/``, alternating over
    ``classes`` and cycling over :data:`PHOTOS` (variants 1, 2, ...); return their paths."""
    names = list(PHOTOS)
    out = []
    for i in range(n):
        folder = Path(root) / classes[i % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{prefix}{i:03d}-{names[i % len(names)]}.jpg"
        path.write_bytes(photo_jpeg(names[i % len(names)], size, variant=i + 1))
        out.append(path)
    return out
