"""Data sets: a hardened image loader, an image-folder data set with optional part masks, a checker,
and a generated daisy / not-daisy demo set with pixel-exact part masks.

Layout (the generated demo uses it too)::

    <root>/<class>/<image>.<png|jpg|jpeg|bmp|gif|webp|tif|tiff>
    <root>/<class>/<image>.parts.png     optional ground truth: an indexed mask, 0 = background
    <root>/parts.json                    {"1": "petal", "2": "disk", ...}: mask index -> concept id

Every image comes out of :func:`load_image` as RGB ``uint8`` H×W×3, upright (EXIF orientation
applied), whatever it was on disk. A file that cannot be an image (empty, truncated, not an image, a
decompression bomb) raises :class:`~workbench.errors.ImageLoadError` naming the file and the reason,
and :meth:`ImageFolder.iter_images` skips it, records it in ``problems`` and goes on.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp()) / "demo"
>>> folder = generate_demo(root, n_per_class=2, size=64, seed=0)
>>> folder.classes
['daisy', 'not_daisy']
>>> [r.id for r in folder.records]
['daisy/0000.png', 'daisy/0001.png', 'not_daisy/0000.png', 'not_daisy/0001.png']
>>> image = folder.load(folder.records[0])
>>> image.shape, image.dtype.name
((64, 64, 3), 'uint8')
>>> mask = folder.load_parts(folder.records[0])
>>> {"petal", "disk"} <= {folder.parts_map[int(i)] for i in set(mask.flat) - {0}}
True
>>> print(check_dataset(root))  # doctest: +ELLIPSIS
data set .../demo: 4 images in 2 classes, 4 with part masks, no problems
  class      images  with parts
  daisy           2           2
  not_daisy       2           2
  parts.json: 1=petal 2=disk 3=stem 4=leaf 5=other_petal 6=other_disk 7=sun 8=white_shape
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from workbench._io import default_dir_mode, open_bounded, read_bytes_bounded
from workbench.data._demo_scene import render_scene
from workbench.data._demo_scene_parts import render_scene as _render_parts_scene
from workbench.data._domain_house import render_scene as _render_house_scene
from workbench.errors import DatasetError, ImageLoadError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_IMAGE_BYTES",
    "IMAGE_EXTENSIONS",
    "is_image_name",
    "PARTS_SUFFIX",
    "PARTS_FILE",
    "DEMO_CLASSES",
    "DEMO_PARTS",
    "PARTS_SCENE_PARTS",
    "HOUSE_CLASSES",
    "HOUSE_PARTS",
    "DemoScene",
    "DEMO_SCENES",
    "load_image",
    "ImageRecord",
    "ImageFolder",
    "DatasetReport",
    "check_dataset",
    "generate_demo",
]

#: Images with more pixels than this (width × height, read from the file's header before any pixel
#: is decoded) are refused as possible decompression bombs. 64 Mi pixels: a 48-megapixel phone photo
#: loads, a 50,000² bomb does not. Pillow's own hard limit (``2 * PIL.Image.MAX_IMAGE_PIXELS``,
#: ~179 M pixels) also applies: a larger ``max_pixels`` cannot lift it.
DEFAULT_MAX_PIXELS = 64 * 1024 * 1024

#: Image files larger than this many bytes are refused before they are read (a 64-megapixel picture
#: stored uncompressed at 16 bits per channel is 384 MB).
MAX_IMAGE_BYTES = 512 * 1024 * 1024

#: ``parts.json`` files larger than this are refused (a map of a few hundred indices is a few KB).
MAX_PARTS_JSON_BYTES = 1024 * 1024

#: File name endings (lower-cased) taken as images in a class folder.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: ``<image stem>`` + this suffix is the image's ground-truth part mask; never taken as an image.
PARTS_SUFFIX = ".parts.png"

#: The file at the data set's root mapping mask index -> concept id.
PARTS_FILE = "parts.json"

#: Class folders of the generated demo: the positive class is the daisy ontology's root id.
DEMO_CLASSES = ("daisy", "not_daisy")

#: Mask index -> id in the generated demo. ``petal``, ``disk``, ``stem`` and ``leaf`` are the daisy
#: ontology's parts. A yellow centre of another flower, and a lone yellow disc, *are* visually a disk
#: and are labelled ``disk``. The rest are not in the ontology and mean "none" to the ground-truth
#: labeler: ``other_petal`` (pink/purple/red/orange petals of other flowers), ``other_disk`` (brown
#: centres), ``sun`` (a sun with its rays), ``white_shape`` (scattered white petal-like pebbles and
#: feathers).
DEMO_PARTS: dict[int, str] = {
    1: "petal",
    2: "disk",
    3: "stem",
    4: "leaf",
    5: "other_petal",
    6: "other_disk",
    7: "sun",
    8: "white_shape",
}

#: Mask index -> id in the ``parts`` daisy scene: :data:`DEMO_PARTS` plus ``other_leaf`` (an oval,
#: lobed or three-parted leaf: not a daisy leaf). The look-alikes' broad, fringed white petals are
#: ``other_petal``; the cream rim round every disk is ``other_disk`` (not yellow: not the disk).
PARTS_SCENE_PARTS: dict[int, str] = {**DEMO_PARTS, 9: "other_leaf"}

#: Class folders of the generated ``house`` scene: the positive class is ``ontologies/house.yaml``'s root.
HOUSE_CLASSES = ("house", "not_house")

#: Mask index -> id in the ``house`` scene. ``roof``, ``wall``, ``door`` and ``window`` are the house
#: ontology's parts (a window's light frame is window, a door's frame and knob are door). The rest mean
#: "none": a kennel's arched ``opening``, a shed's braced ``barn_door``, a ``garage_door``, a louvred
#: ``vent``, a ``tree`` or bush, a ``fence``.
HOUSE_PARTS: dict[int, str] = {
    1: "roof",
    2: "wall",
    3: "door",
    4: "window",
    5: "opening",
    6: "barn_door",
    7: "garage_door",
    8: "vent",
    9: "tree",
    10: "fence",
}


@dataclass(frozen=True)
class DemoScene:
    """A scene :func:`generate_demo` can draw."""

    classes: tuple[str, str]  #: class folders, the positive class first
    parts: dict[int, str]  #: mask index -> id, written to parts.json
    render: Callable[[np.random.Generator, int, bool], tuple[np.ndarray, np.ndarray]]  #: (rng, size, positive)
    ontology: str  #: the shipped ontology whose concepts the part masks name
    description: str


#: The scenes of :func:`generate_demo` by name; ``daisy`` is the default.
DEMO_SCENES: dict[str, DemoScene] = {
    "daisy": DemoScene(DEMO_CLASSES, DEMO_PARTS, render_scene, "daisy",
                       "daisies among other flowers, suns, yellow discs, plants and white shapes"),
    "parts": DemoScene(DEMO_CLASSES, PARTS_SCENE_PARTS, _render_parts_scene, "daisy",
                       "daisies and look-alikes in the daisy's colours that differ by a part "
                       "(broad petals, or oval / lobed / three-parted leaves)"),
    "house": DemoScene(HOUSE_CLASSES, HOUSE_PARTS, _render_house_scene, "house",
                       "houses and look-alike buildings in the same colours that differ by a part "
                       "(a kennel's opening, a shed's barn door, a garage door; vents instead of windows)"),
}

_DEMO_MARKER = "demo.json"
_DEMO_FILE_RE = re.compile(r"^\d{4}(\.parts)?\.png$")


# ------------------------------------------------------------------------------------------ loading
def load_image(
    path: str | os.PathLike[str],
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    *,
    background: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """Load one image as RGB ``uint8`` H×W×3, upright, or raise :class:`ImageLoadError`.

    - EXIF orientation (all 8 values) is applied with :func:`PIL.ImageOps.exif_transpose`.
    - Modes: grayscale, 1-bit, palette, CMYK, YCbCr, ... are converted to RGB; 16-bit images are
      *scaled* to 8 bits (``v >> 8``), not clipped; 32-bit integer images are read as 16-bit range,
      float images as 0..1 when their values fit, else as 16-bit range.
    - Transparency (RGBA, LA, palette with a transparent index) is composited on ``background``,
      black by default: segment crops are shown on black too, and white petals stay visible.
    - Animated files (GIF, APNG, WebP, multi-page TIFF): the first frame.
    - Refused before the file is opened: a folder, FIFO, socket or device (also behind a symbolic
      link), a file over :data:`MAX_IMAGE_BYTES`. Refused before any pixel is decoded: more than
      ``max_pixels`` pixels in the header (``None``: only Pillow's own limit), zero-sized images.
      Refused: empty, truncated (the file ends before the pixel data does; a file cut after its last
      pixel byte loads, as nothing of the picture is missing), unreadable and non-image files.

    No Pillow warning escapes (corrupt EXIF, bomb warnings, ...): a warning that matters becomes the
    error's reason, the rest are dropped. Note: this uses :func:`warnings.catch_warnings`, which
    before Python 3.14 is not thread-safe; load from processes (the default executor) or one thread.
    """
    p = Path(path)
    f = _open_image_file(p, "an image file")
    with f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(f) as im:
                _check_header(p, im, max_pixels)
                im.seek(0)  # first frame of an animation (already current after open; explicit)
                im.load()
                _exif_upright_in_place(im)
                return _to_rgb(p, im, background)
        except ImageLoadError:
            raise
        except Exception as e:  # noqa: BLE001 - Pillow raises many types on malformed files
            raise ImageLoadError(p, _reason(e)) from None


def _open_image_file(path: Path, what: str):
    """The image file opened for Pillow, or ImageLoadError: a folder, FIFO, socket or device is
    refused before it is opened, an empty or oversized file before a byte is read, and reads stop at
    :data:`MAX_IMAGE_BYTES` whatever the file's size claims."""
    f, size = open_bounded(path, MAX_IMAGE_BYTES, ImageLoadError, what)
    if size == 0:
        f.close()
        raise ImageLoadError(path, "empty file (0 bytes)")
    return f


def _orientation(im: Image.Image) -> int:
    """The EXIF Orientation (1..8) of an open image; 1 when absent, invalid or unreadable."""
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a corrupt EXIF block must not cost the picture
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _exif_upright_in_place(im: Image.Image) -> None:
    """Apply the EXIF orientation in place (no copy when there is nothing to do)."""
    if _orientation(im) == 1:
        return
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except Exception:  # noqa: BLE001 - unreadable orientation: keep the stored pixels
        pass


def _check_header(path: Path, im: Image.Image, max_pixels: int | None) -> None:
    w, h = im.size
    if w <= 0 or h <= 0:
        raise ImageLoadError(path, f"the header says the image is {w}x{h} pixels (empty image)")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageLoadError(
            path,
            f"refused as a possible decompression bomb: the header says {w}x{h} = {w * h:,} pixels, "
            f"over the limit of {max_pixels:,} (pass a larger max_pixels if the image is genuine)",
        )


# Pillow's wording for a damaged file, in ours (matched on its lower-cased message).
_PILLOW_WORDS = (
    ("broken data stream", "cannot decode the image: its compressed pixel data is corrupt"),
    ("unrecognized data stream", "cannot decode the image: its pixel data is corrupt"),
    ("could not create decoder", "cannot decode the image: its header names a compression that is corrupt or unsupported"),
    ("codec configuration error", "cannot decode the image: its header names a compression that is corrupt or unsupported"),
    ("tile cannot extend outside image", "corrupt image: its header places pixel data outside the picture"),
    ("broken png file", "corrupt PNG file: one of its chunks is damaged"),
    ("crc check failed", "corrupt PNG file: one of its chunks fails its checksum"),
    ("cannot load this image", "cannot decode the image: the file is damaged or in an unsupported variant"),
)


def _reason(e: Exception) -> str:
    """A human reason for a Pillow failure, in the workbench's words (no library class names)."""
    text = " ".join(str(e).split())
    low = text.lower()
    if isinstance(e, Image.DecompressionBombError):
        m = re.search(r"\((\d+) pixels\) exceeds limit of (\d+) pixels", text)
        if m:
            return (f"refused as a possible decompression bomb: the header says {int(m.group(1)):,} pixels, "
                    f"over the image library's hard limit of {int(m.group(2)):,}")
        return "refused as a possible decompression bomb: the header claims too many pixels"
    if isinstance(e, UnidentifiedImageError):
        return "not an image file (or in a format the workbench cannot read)"
    if "truncated" in low:
        return "truncated file: it ends before the image data does"
    if isinstance(e, MemoryError):
        return "not enough memory to decode this image"
    for needle, words in _PILLOW_WORDS:
        if needle in low:
            return words
    if isinstance(e, (SyntaxError, ValueError, EOFError)) or type(e).__module__.startswith("struct"):
        return f"corrupt or unsupported image data ({text})" if text else "corrupt or unsupported image data"
    return f"cannot decode the image ({text})" if text else "cannot decode the image"


def _to_rgb(path: Path, im: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return np.array(im, dtype=np.uint8)
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im)
        if mode == "F":
            a = a.astype(np.float64)
            a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
            a = a * 255.0 if a.size and a.min() >= 0.0 and a.max() <= 1.0 else a / 257.0
            g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        else:
            g = (np.clip(a.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L", "RGB") and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (*background, 255))
        return np.array(Image.alpha_composite(bg, rgba).convert("RGB"), dtype=np.uint8)
    try:
        return np.array(im.convert("RGB"), dtype=np.uint8)
    except ValueError as e:
        raise ImageLoadError(path, f"colour mode {mode!r} cannot be converted to RGB ({e})") from None


def _upright_size(path: Path) -> tuple[int, int]:
    """(width, height) of the image as :func:`load_image` returns it, read from the header only."""
    f = _open_image_file(path, "an image file")
    with f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(f) as im:
                w, h = im.size
                orientation = _orientation(im)
        except ImageLoadError:
            raise
        except Exception as e:  # noqa: BLE001
            raise ImageLoadError(path, _reason(e)) from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


# ------------------------------------------------------------------------------------------ folders
@dataclass(frozen=True)
class ImageRecord:
    """One image of an :class:`ImageFolder`."""

    path: Path  #: the image file
    label: str  #: its class: the name of the folder it sits in
    parts_path: Path | None  #: its ground-truth part mask ``<stem>.parts.png``, if there is one
    id: str  #: path relative to the root, POSIX style: ``"daisy/0003.png"``


def is_image_name(name: str) -> bool:
    """Whether a file name is one the workbench reads as an image (not hidden, not a part mask).

    >>> is_image_name("0003.PNG"), is_image_name("0003.parts.png"), is_image_name(".0003.png")
    (True, False, False)
    """
    low = name.lower()
    return not low.endswith(PARTS_SUFFIX) and low.endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _read_parts_map(path: Path) -> dict[int, str]:
    raw = read_bytes_bounded(path, MAX_PARTS_JSON_BYTES, DatasetError, "a parts.json file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DatasetError(f"{path}: not valid UTF-8 JSON ({e}); expected e.g. {{\"1\": \"petal\"}}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object mapping mask index to concept id, e.g. {{\"1\": \"petal\"}}")
    out: dict[int, str] = {}
    for k, v in data.items():
        if not (isinstance(k, str) and k.isdigit() and 1 <= int(k) <= 65535):
            raise DatasetError(f"{path}: key {k!r} is not a mask index 1..65535 (0 is the background)")
        if not isinstance(v, str) or not v.strip():
            raise DatasetError(f"{path}: index {k} maps to {v!r}; expected a non-empty concept id")
        out[int(k)] = v
    return dict(sorted(out.items()))


class ImageFolder:
    """An image-folder data set: ``<root>/<class>/<image>``, with optional part masks.

    Scanning is eager and cheap (names only); pixels are read by :meth:`load` / :meth:`iter_images`.
    Class folders are the non-hidden sub-folders of ``root`` (sorted); images are the files directly
    inside them with an image extension (case-insensitive), sorted by name; ``*.parts.png`` files
    are masks, never images. A mask is in the same pixel grid as the *upright* image (after EXIF
    orientation), i.e. the array :meth:`load` returns; :meth:`load_parts` checks it.
    """

    def __init__(self, root: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS):
        self.root = Path(root)
        self.max_pixels = max_pixels
        if not self.root.exists():
            raise DatasetError(f"{self.root}: data set folder not found")
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: not a folder; expected <root>/<class>/<image>")
        self.classes: list[str] = sorted(
            d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith((".", "_"))
        )
        if not self.classes:
            raise DatasetError(
                f"{self.root}: no class folders; expected one sub-folder per class holding its images, "
                "e.g. <root>/daisy/0001.png and <root>/not_daisy/0001.png"
            )
        parts_file = self.root / PARTS_FILE
        # Whatever has the name is read (and refused by name if it is a folder, FIFO, device ...), not skipped.
        self.parts_map: dict[int, str] = _read_parts_map(parts_file) if os.path.lexists(parts_file) else {}
        records: list[ImageRecord] = []
        for cls in self.classes:
            for f in sorted((self.root / cls).iterdir(), key=lambda q: q.name):
                # Anything with an image's name is a record, so a FIFO or a device named like an
                # image is reported as a problem by load_image rather than silently left out.
                if is_image_name(f.name):
                    mask = f.with_name(f.stem + PARTS_SUFFIX)
                    records.append(ImageRecord(f, cls, mask if os.path.lexists(mask) else None, f"{cls}/{f.name}"))
        self.records: list[ImageRecord] = records
        self.problems: list[tuple[Path, str]] = []

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.root)!r}: {len(self.records)} images, classes {self.classes})"

    def __len__(self) -> int:
        return len(self.records)

    @property
    def has_parts(self) -> bool:
        """True when ``parts.json`` maps at least one index and at least one image has a mask."""
        return bool(self.parts_map) and any(r.parts_path is not None for r in self.records)

    def load(self, record: ImageRecord) -> np.ndarray:
        """The image as RGB uint8 H×W×3 (see :func:`load_image`); raises ImageLoadError."""
        return load_image(record.path, self.max_pixels)

    def load_parts(self, record: ImageRecord) -> np.ndarray:
        """The part mask as an H×W ``int32`` array (0 = background; other values keys of ``parts_map``).

        Raises :class:`DatasetError` when the image has no mask, the mask is not an indexed image
        (mode L, P, I;16 or I), its size differs from the upright image's, or it holds an index that
        ``parts.json`` does not name; :class:`ImageLoadError` when the mask file is unreadable.
        """
        if record.parts_path is None:
            raise DatasetError(f"{record.path}: no part mask (expected {record.path.stem}{PARTS_SUFFIX} beside it)")
        mp = record.parts_path
        f = _open_image_file(mp, "a part mask image")
        with f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with Image.open(f) as m:
                    _check_header(mp, m, self.max_pixels)
                    if m.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                        raise DatasetError(
                            f"{mp}: part mask has colour mode {m.mode!r}; expected an indexed mask "
                            "(mode 'L' or 'P', pixel value = index in parts.json)"
                        )
                    m.load()
                    mask = np.asarray(m).astype(np.int32)
            except (ImageLoadError, DatasetError):
                raise
            except Exception as e:  # noqa: BLE001
                raise ImageLoadError(mp, _reason(e)) from None
        w, h = _upright_size(record.path)
        if mask.shape != (h, w):
            raise DatasetError(
                f"{mp}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {record.path.name} is {w}x{h} "
                "(upright, after EXIF orientation); the mask must cover the image pixel for pixel"
            )
        unknown = sorted(set(np.unique(mask).tolist()) - {0} - set(self.parts_map))
        if unknown:
            raise DatasetError(
                f"{mp}: mask indices {unknown} are not in {self.root / PARTS_FILE} "
                f"(it maps {sorted(self.parts_map) or 'nothing'}); add them there"
            )
        return mask

    def iter_images(self) -> Iterator[tuple[ImageRecord, np.ndarray]]:
        """Yield ``(record, image)`` for every image that loads; the others go to ``problems``.

        ``problems`` is reset when iteration starts, so it always describes the latest pass.
        """
        self.problems = []
        for record in self.records:
            try:
                image = self.load(record)
            except ImageLoadError as e:
                self.problems.append((record.path, e.reason))
                continue
            yield record, image


# ------------------------------------------------------------------------------------------- report
@dataclass
class DatasetReport:
    """What :func:`check_dataset` found: counts per class and every problem, one line each."""

    root: Path
    images: dict[str, int]  #: class -> images found (loadable or not)
    with_parts: dict[str, int]  #: class -> images with a valid part mask
    problems: list[tuple[Path, str]] = field(default_factory=list)  #: (file, reason)
    parts_map: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def total(self) -> int:
        return sum(self.images.values())

    def __str__(self) -> str:
        n_parts = sum(self.with_parts.values())
        status = "no problems" if self.ok else f"{len(self.problems)} problem(s)"
        lines = [
            f"data set {self.root}: {self.total} images in {len(self.images)} classes, "
            f"{n_parts} with part masks, {status}"
        ]
        width = max([len("class"), *map(len, self.images)])
        lines.append(f"  {'class':<{width}}  images  with parts")
        for cls, n in self.images.items():
            lines.append(f"  {cls:<{width}}  {n:>6}  {self.with_parts.get(cls, 0):>10}")
        if self.parts_map:
            lines.append("  parts.json: " + " ".join(f"{k}={v}" for k, v in self.parts_map.items()))
        for path, reason in self.problems:
            try:
                shown = path.relative_to(self.root).as_posix()
            except ValueError:
                shown = str(path)
            lines.append(f"  problem: {shown}: {reason}")
        return "\n".join(lines)


def check_dataset(root: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> DatasetReport:
    """Load every image and mask under ``root`` and report counts and problems (never raises for
    a bad file; raises :class:`DatasetError` only when ``root`` is not a data set at all).

    Problems: images that do not load, masks that do not load / do not match their image / hold
    indices missing from ``parts.json``, masks without an image, class folders without images.
    """
    folder = ImageFolder(root, max_pixels=max_pixels)
    images = {cls: 0 for cls in folder.classes}
    with_parts = {cls: 0 for cls in folder.classes}
    problems: list[tuple[Path, str]] = []
    loaded: set[Path] = set()
    for record, _ in folder.iter_images():
        loaded.add(record.path)
    problems.extend(folder.problems)
    for record in folder.records:
        images[record.label] += 1
        if record.parts_path is None or record.path not in loaded:
            continue
        try:
            folder.load_parts(record)
        except ImageLoadError as e:
            problems.append((e.path, e.reason))
        except DatasetError as e:
            problems.append((record.parts_path, str(e).split(": ", 1)[-1]))
        else:
            with_parts[record.label] += 1
    if any(r.parts_path for r in folder.records) and not folder.parts_map:
        problems.append((folder.root / PARTS_FILE, "images have part masks but there is no parts.json"))
    for cls in folder.classes:
        d = folder.root / cls
        for f in sorted(d.iterdir(), key=lambda q: q.name):
            if f.name.lower().endswith(PARTS_SUFFIX):
                stem = f.name[: -len(PARTS_SUFFIX)]
                if not any((d / (stem + ext)).is_file() or (d / (stem + ext.upper())).is_file() for ext in IMAGE_EXTENSIONS):
                    problems.append((f, "part mask without an image of the same name"))
        if images[cls] == 0:
            problems.append((d, "class folder holds no images"))
    return DatasetReport(folder.root, images, with_parts, problems, dict(folder.parts_map))


# --------------------------------------------------------------------------------------------- demo
def generate_demo(
    root: str | os.PathLike[str],
    n_per_class: int = 60,
    size: int = 256,
    seed: int = 0,
    *,
    scene: str = "daisy",
) -> ImageFolder:
    """Write a generated demo set under ``root`` (by default the daisy / not-daisy scene) and return it
    as an ImageFolder.

    ``daisy/NNNN.png`` are daisy-like flowers (white petals around a yellow disk, a stem, leaves) on
    textured backgrounds; ``not_daisy/NNNN.png`` share parts with them (other flowers, suns and
    yellow discs, plants without flowers, white petal-like shapes, mixtures). Each image has a
    pixel-exact ``NNNN.parts.png`` (mode L, values per :data:`DEMO_PARTS`, written to parts.json).

    ``scene`` picks another scene of :data:`DEMO_SCENES` (same layout, its own classes and parts.json):
    ``parts`` draws daisies and look-alikes that share the daisy's colours and arrangement and differ
    by a part (``workbench/data/_demo_scene_parts.py``); ``house`` draws houses and look-alike
    buildings (``workbench/data/_domain_house.py``). On the default ``daisy`` scene colour statistics
    alone read the class (``benchmarks/results/blind.md``).

    Deterministic: the same ``(n_per_class, size, seed)`` gives byte-identical files (PNG without
    timestamps; one random stream per image). The set appears whole: it is written to a sibling
    temporary folder and renamed into place. ``root`` must be absent, empty, or a demo set written
    earlier (it has ``demo.json``), which is then replaced.
    """
    if not isinstance(n_per_class, int) or n_per_class < 1:
        raise DatasetError(f"n_per_class must be a positive integer, got {n_per_class!r}")
    if not isinstance(size, int) or not 32 <= size <= 4096:
        raise DatasetError(f"size must be an integer from 32 to 4096 pixels, got {size!r}")
    if scene not in DEMO_SCENES:
        raise DatasetError(f"unknown demo scene {scene!r}: choose one of {', '.join(DEMO_SCENES)}")
    spec = DEMO_SCENES[scene]
    root = Path(root)
    replace_old = False
    if root.exists():
        if not root.is_dir():
            raise DatasetError(f"{root}: exists and is not a folder; choose another output folder")
        if any(root.iterdir()):
            if not (root / _DEMO_MARKER).is_file():
                raise DatasetError(
                    f"{root}: folder is not empty and is not a generated demo set; "
                    "choose an empty or new folder (nothing was written)"
                )
            replace_old = True
    root.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    os.chmod(stage, default_dir_mode())  # mkdtemp makes it 0700; renamed into place, it follows the umask
    try:
        for ci, cls in enumerate(spec.classes):
            (stage / cls).mkdir()
            for i in range(n_per_class):
                rng = np.random.default_rng([seed, ci, i])
                rgb, mask = spec.render(rng, size, cls == spec.classes[0])
                Image.fromarray(rgb, "RGB").save(stage / cls / f"{i:04d}.png", format="PNG", compress_level=1)
                Image.fromarray(mask, "L").save(stage / cls / f"{i:04d}{PARTS_SUFFIX}", format="PNG", compress_level=6)
        (stage / PARTS_FILE).write_text(json.dumps({str(k): v for k, v in spec.parts.items()}, indent=2) + "\n")
        marker = {"generator": "workbench.generate_demo", "version": 1, "n_per_class": n_per_class,
                  "size": size, "seed": seed, "classes": list(spec.classes)}
        if scene != "daisy":  # the default scene's marker stays byte for byte what it was
            marker["scene"] = scene
        (stage / _DEMO_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if replace_old:
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old.", dir=root.parent))
            os.replace(root, old / "x")
            os.replace(stage, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if root.exists():
                root.rmdir()  # empty: checked above
            os.replace(stage, root)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return ImageFolder(root)
