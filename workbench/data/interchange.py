"""Part annotations in and out: COCO, LabelMe and mask folders to the workbench's layout, and back to COCO.

Import (``workbench dataset import``) writes a new data set in the layout :class:`ImageFolder` reads::

    <out>/<class>/<image>            the image, hard-linked to the source where possible, else copied
    <out>/<class>/<stem>.parts.png   its part mask: 0 = background, k = the part parts.json maps k to
    <out>/parts.json                 mask index -> concept id
    <out>/import.json                where it came from: format, sources, options, counts

Sources are only read (never written; a hard link shares the source's bytes, so edit neither in place:
``copy=True`` makes independent copies). The data set appears whole or not at all: it is written to a
sibling temporary folder and renamed into place, and ``out`` must be absent or empty.

Formats:

* ``coco``: a COCO annotation file (``images``, ``annotations``, ``categories``), polygons and run-length
  masks (compressed or not; crowd regions count as their category's pixels) rasterised as ``pycocotools``
  does; the image files live under a separate folder (``images``). ``file_name`` is looked up below that
  folder, and, when not there, by its base name anywhere under it (PartImageNet's ``n01440764_10029.JPEG`` sits in ``train/n01440764/``). Every image the
  file lists gets a mask (all background when it has no annotations). PartImageNet's files work as they
  are: its category ids start at 0 and some of its polygons have one or two points (they have no area and
  are left out, counted).
* ``labelme``: a folder of LabelMe JSON files (one per image, ``imagePath`` relative to the JSON file);
  ``polygon``, ``rectangle``, ``circle`` and ``mask`` shapes are drawn as LabelMe draws them (Pillow);
  ``line``, ``linestrip`` and ``point`` shapes have no area and are left out (counted).
* ``masks``: an image folder, a mask folder with one PNG per image at the same relative path
  (``<masks>/<class>/<stem>.png``), and a legend: a YAML or JSON mapping from mask value to part name
  (``{1: head, 2: body, 255: null}``: indexed masks, palette masks read as indices) or from colour to
  part name (``{"#ff0000": head, "0,255,0": body}``: colour masks, PASCAL-Part style). Value 0 and black
  are the background; ``null`` marks other background/ignore values (VOC's 255). A value or colour the
  legend does not name is an error naming the mask. Images without a mask are left out (counted).

Names: a category, label or legend name becomes a concept id by a slug (``"Quadruped Head"`` ->
``quadruped_head``) unless ``mapping`` (``--map FILE``, YAML ``{name: concept_id}``, ``null`` to leave a
category out) names it. Class folders are slugs too, so they can match an ontology's root. The image's
class (``class_from``): ``supercategory`` or ``category`` of its annotations (COCO; an image whose
annotations disagree is an error), ``folder`` (the folder holding the image file, e.g. PartImageNet's
synset folder, or the LabelMe JSON), or any other word: that fixed class for every image.

Mask indices: when the source's own numbers are all 1..65535 and each concept has exactly one
(COCO category ids, an indexed legend), they are kept, so a workbench export comes back with the same
indices; otherwise concepts are numbered 1..N (COCO: in order of category id; legend: in file order;
LabelMe: in order of concept id).

Overlaps (COCO, LabelMe): where annotations overlap, the smaller one wins (a head drawn over a body stays
a head); between equal areas, the later one. Overlapping pixels are counted in the report.

Coordinates are those of the *upright* image (EXIF orientation applied), the grid the workbench's masks
use and the one LabelMe and most tools draw on; a size in the annotations that differs is an error. A point
a little outside the image (up to 2 px + 1% of its longer side) is clipped, as pycocotools does; farther
out is an error (the annotation belongs to another image, or to another size of it).

Export (``workbench dataset export --format coco``): one COCO annotation per labelled segment of a
workspace (:func:`export_coco_store`) or per part of each mask of a data set (:func:`export_coco_dataset`),
a compressed run-length mask (``pycocotools.mask.encode``) in the full, upright image's coordinates;
``file_name`` is the image's path in the data set (``<class>/<image>``), so ``--class-from folder`` reads
the class back. Segments labelled "none" are not exported (COCO has no "no concept" category), nor labels
of concepts the ontology no longer has (counted). Import -> export -> import gives the same masks and ids.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import shutil
import tempfile
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pycocotools.mask as coco_mask
from PIL import Image, ImageDraw

from workbench._io import atomic_write_text, default_dir_mode, open_bounded, read_bytes_bounded
from workbench._yaml import read_yaml_file
from workbench.data.datasets import (
    IMAGE_EXTENSIONS,
    PARTS_FILE,
    PARTS_SUFFIX,
    ImageFolder,
    _upright_size,
)
from workbench.errors import DatasetError, ImageLoadError
from workbench.ontology.graph import Ontology, is_valid_id

__all__ = [
    "FORMATS",
    "CLASS_FROM",
    "MAX_ANNOTATION_BYTES",
    "MAX_LABELME_BYTES",
    "ImportReport",
    "ExportReport",
    "concept_slug",
    "read_mapping",
    "import_coco",
    "import_labelme",
    "import_masks",
    "export_coco_dataset",
    "export_coco_store",
]

#: The import formats.
FORMATS = ("coco", "labelme", "masks")
#: The words ``class_from`` takes; any other value is a fixed class name.
CLASS_FROM = ("supercategory", "category", "folder")
#: A COCO annotation file larger than this is refused (PartImageNet's train.json is well below).
MAX_ANNOTATION_BYTES = 1024 * 1024 * 1024
#: A LabelMe JSON file larger than this is refused (an embedded imageData makes them large).
MAX_LABELME_BYTES = 256 * 1024 * 1024
#: A mask image larger than this is refused before it is read.
_MAX_MASK_BYTES = 256 * 1024 * 1024
#: Polygon points may lie outside the image by 2 px plus this fraction of its longer side (annotation tools
#: let points be dragged past the edge; they are clipped, as pycocotools does); farther is an error.
_BOUNDS_TOLERANCE = 0.01
_MARKER = "import.json"
_SHOWN = 8  # problems shown in an error message; the rest are counted


# ------------------------------------------------------------------------------------------ names
def concept_slug(name: str) -> str:
    """A concept id (and folder name) made from any name: ASCII, lowercase, ``_`` between words,
    starting with a letter (``c_`` is put before a leading digit), at most 64 characters; ``""`` when
    nothing is left.

    >>> concept_slug("Quadruped Head"), concept_slug("side-mirror"), concept_slug("Flügel"), concept_slug("2nd")
    ('quadruped_head', 'side_mirror', 'flugel', 'c_2nd')
    """
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if slug and not slug[0].isalpha():
        slug = "c_" + slug
    return slug[:64].rstrip("_")


def read_mapping(path: str | os.PathLike[str]) -> dict[str, str | None]:
    """A ``--map`` file: YAML (or JSON) mapping source names to concept ids; ``null`` leaves a name out."""
    data = read_yaml_file(path, DatasetError, "a name map file")
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a mapping from names to concept ids, e.g. "
                           "{\"Quadruped Head\": head, \"Quadruped Tail\": null}")
    out: dict[str, str | None] = {}
    for k, v in data.items():
        if v is not None and not is_valid_id(v):
            raise DatasetError(f"{path}: {k!r} maps to {v!r}, which is not a concept id (lowercase letters, digits "
                               f"and _, starting with a letter{_eg(v)}); or null to leave it out")
        out[str(k)] = v
    return out


def _eg(value: object) -> str:
    slug = concept_slug(str(value))
    return f", e.g. {slug!r}" if slug else ""


def _concept_for(name: str, mapping: dict[str, str | None], where: str) -> str | None:
    if name in mapping:
        return mapping[name]
    slug = concept_slug(name)
    if not slug:
        raise DatasetError(f"{where}: cannot make a concept id from the name {name!r}; give it one in a "
                           "--map file ({name: concept_id})")
    return slug


def _class_name(name: str, where: str) -> str:
    slug = concept_slug(name)
    if not slug:
        raise DatasetError(f"{where}: cannot make a class folder name from {name!r}; give the class with "
                           "--class-from NAME")
    return slug


def _assign_indices(sources: list[tuple[Any, str]]) -> tuple[dict[Any, int], dict[int, str]]:
    """Mask indices for ``(source key, concept id)`` pairs, in the order given (see the module doc)."""
    concepts: dict[str, list[Any]] = {}
    for key, cid in sources:
        concepts.setdefault(cid, []).append(key)
    keep = all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= 65535 for k, _ in sources) \
        and all(len(keys) == 1 for keys in concepts.values())
    if keep:
        index = {k: k for k, _ in sources}
    else:
        number = {cid: i for i, cid in enumerate(concepts, start=1)}
        index = {k: number[cid] for k, cid in sources}
    if len(concepts) > 65535:
        raise DatasetError(f"{len(concepts)} distinct parts: a part mask holds at most 65,535")
    parts_map = {index[keys[0]]: cid for cid, keys in concepts.items()}
    return index, dict(sorted(parts_map.items()))


# ---------------------------------------------------------------------------------------- reports
@dataclass
class ImportReport:
    """What an import wrote and what it left out."""

    out: Path
    format: str
    classes: Counter = field(default_factory=Counter)  #: class -> images written
    with_parts: int = 0  #: images written with a part mask
    parts_map: dict[int, str] = field(default_factory=dict)
    linked: int = 0  #: images hard-linked to their source
    copied: int = 0  #: images copied
    skipped: list[tuple[str, str]] = field(default_factory=list)  #: (source, why) of images left out
    notes: Counter = field(default_factory=Counter)  #: what was left out or resolved, counted

    @property
    def images(self) -> int:
        return sum(self.classes.values())

    def summary(self) -> str:
        lines = [f"imported {self.images} images ({self.with_parts} with part masks) from {self.format} into "
                 f"{self.out}: " + ", ".join(f"{c} {n}" for c, n in sorted(self.classes.items())),
                 "  parts.json: " + (" ".join(f"{k}={v}" for k, v in self.parts_map.items()) or "(no parts)"),
                 f"  images hard-linked {self.linked}, copied {self.copied} (sources are never written)"]
        lines += [f"  {what}: {n}" for what, n in sorted(self.notes.items())]
        if self.skipped:
            lines.append(f"  left out {len(self.skipped)} image(s):")
            lines += [f"    {src}: {why}" for src, why in self.skipped[:50]]
            if len(self.skipped) > 50:
                lines.append(f"    ... and {len(self.skipped) - 50} more (all in {self.out / _MARKER})")
        lines.append(f"next: workbench dataset check {self.out} --ontology FILE")
        return "\n".join(lines)


@dataclass
class ExportReport:
    """What an export wrote."""

    out: Path
    images: int = 0
    annotations: int = 0
    categories: int = 0
    notes: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        lines = [(f"wrote {self.out}: {self.images} images, {self.annotations} annotations (run-length masks), "
                  f"{self.categories} categories")]
        lines += [f"  {what}: {n}" for what, n in sorted(self.notes.items())]
        return "\n".join(lines)


class _ItemError(DatasetError):
    """A problem with one image: with ``keep_going`` it is left out and listed, else the import stops."""


# ------------------------------------------------------------------------------------------ staging
@dataclass
class _Item:
    """One image to write: its source file, class and name in the output, and how to draw its mask."""

    source: Path
    cls: str
    name: str  # file name inside <out>/<cls>/
    origin: str  # what to name in messages (the annotation file, entry or JSON file)
    draw: Callable[[int, int], np.ndarray | None] | None  # (height, width) -> int mask, or None


class _Staging:
    """The output folder, built beside ``out`` and renamed into place by :meth:`commit`."""

    def __init__(self, out: Path, copy: bool):
        if out.exists() or out.is_symlink():
            if not out.is_dir() or out.is_symlink():
                raise DatasetError(f"{out}: exists and is not a folder; choose a new output folder with --out")
            if any(out.iterdir()):
                raise DatasetError(f"{out}: folder is not empty; choose a new or empty folder with --out "
                                   "(nothing was written)")
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.copy = copy
        self.dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".import.tmp", dir=out.parent))
        os.chmod(self.dir, default_dir_mode())

    def add_image(self, item: _Item, report: ImportReport) -> Path:
        folder = self.dir / item.cls
        folder.mkdir(exist_ok=True)
        dst = folder / item.name
        if not self.copy:
            try:
                os.link(item.source, dst)
                report.linked += 1
                return dst
            except OSError:
                pass  # another file system, no permission, links not supported: copy
        shutil.copyfile(item.source, dst)
        report.copied += 1
        return dst

    def add_mask(self, item: _Item, mask: np.ndarray, wide: bool) -> None:
        stem = item.name.rsplit(".", 1)[0]
        img = Image.fromarray(mask.astype(np.uint16 if wide else np.uint8))
        img.save(self.dir / item.cls / f"{stem}{PARTS_SUFFIX}", format="PNG", compress_level=6)

    def commit(self, parts_map: dict[int, str], marker: dict[str, Any]) -> None:
        (self.dir / PARTS_FILE).write_text(
            json.dumps({str(k): v for k, v in parts_map.items()}, indent=2) + "\n", encoding="utf-8")
        (self.dir / _MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if self.out.exists():
            self.out.rmdir()  # empty: checked when staging began
        os.replace(self.dir, self.out)

    def abort(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _check_names(items: list[_Item]) -> None:
    """Give every image a unique name in its class folder (and a unique mask name): the base name, or,
    where two share it, ``<source folder>_<base name>``; still clashing: an error."""
    def key(it: _Item) -> tuple[str, str]:
        return it.cls, it.name.rsplit(".", 1)[0].lower()

    seen: dict[tuple[str, str], list[_Item]] = {}
    for it in items:
        seen.setdefault(key(it), []).append(it)
    for group in seen.values():
        if len(group) > 1:
            for it in group:
                it.name = f"{it.source.parent.name}_{it.source.name}".lstrip("._")
    final: dict[tuple[str, str], _Item] = {}
    for it in items:
        low = it.name.lower()
        if not low.endswith(IMAGE_EXTENSIONS) or low.endswith(PARTS_SUFFIX) or it.name.startswith("."):
            raise DatasetError(f"{it.origin}: {it.source.name!r} is not named like an image (one of "
                               f"{', '.join(IMAGE_EXTENSIONS)}, not *{PARTS_SUFFIX}, not hidden); rename it")
        k = key(it)
        if k in final:
            raise DatasetError(f"{it.origin}: {it.source} and {final[k].source} would both be "
                               f"{it.cls}/{k[1]}.*; rename one of them")
        final[k] = it


def _write(items: list[_Item], out: Path, parts_map: dict[int, str], fmt: str, *, copy: bool,
           keep_going: bool, marker: dict[str, Any], report: ImportReport) -> ImportReport:
    """Write every item (image, mask) into a staging folder; rename it into place when all went well."""
    _check_names(items)
    wide = max(parts_map, default=0) > 255
    stage = _Staging(Path(out), copy)
    try:
        for it in items:
            try:
                try:
                    w, h = _upright_size(it.source)
                except ImageLoadError as e:
                    raise _ItemError(f"{it.origin}: image {e.path}: {e.reason}") from None
                mask = it.draw(h, w) if it.draw is not None else None
            except _ItemError as e:
                if not keep_going:
                    raise DatasetError(f"{e} (nothing was written; --keep-going leaves such images out)") from None
                report.skipped.append((str(it.source), str(e)))
                continue
            stage.add_image(it, report)
            if mask is not None:
                stage.add_mask(it, mask, wide)
                report.with_parts += 1
            report.classes[it.cls] += 1
        if not report.images:
            raise DatasetError(f"{marker.get('source')}: no image was imported"
                               + (f" ({len(report.skipped)} left out, e.g. {report.skipped[0][1]})" if report.skipped else ""))
        report.parts_map = parts_map
        marker = {**marker, "images": report.images, "with_parts": report.with_parts,
                  "classes": dict(sorted(report.classes.items())), "notes": dict(sorted(report.notes.items())),
                  "left_out": [{"source": s, "why": w} for s, w in report.skipped]}
        stage.commit(parts_map, marker)
    except BaseException:
        stage.abort()
        raise
    return report


def _marker(fmt: str, source: Path, **options: Any) -> dict[str, Any]:
    return {"generator": "workbench dataset import", "version": 1, "format": fmt, "source": str(source),
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()},
            "overlaps": "the smaller annotation wins; between equal areas, the later one"}


# ---------------------------------------------------------------------------------------- drawing
def _paint(shapes: list[tuple[int, np.ndarray]], h: int, w: int, report: ImportReport) -> np.ndarray:
    """One index mask from ``(index, bool mask)`` shapes: smaller areas painted last (they win), between
    equal areas the later shape."""
    out = np.zeros((h, w), np.int32)
    painted = np.zeros((h, w), bool)
    order = sorted(range(len(shapes)), key=lambda i: (-int(shapes[i][1].sum()), i))
    overlap = 0
    for i in order:
        index, m = shapes[i]
        overlap += int((painted & m & (out != index)).sum())
        out[m] = index
        painted |= m
    if overlap:
        report.notes["overlapping pixels resolved (the smaller annotation wins)"] += overlap
    return out


def _finite_numbers(values: Any) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _check_points(xs: np.ndarray, ys: np.ndarray, h: int, w: int, where: str) -> None:
    t = 2.0 + _BOUNDS_TOLERANCE * max(h, w)
    bad = (xs < -t) | (xs > w + t) | (ys < -t) | (ys > h + t)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _ItemError(f"{where}: point ({xs[i]:g}, {ys[i]:g}) lies outside the {w}x{h} image "
                         "(coordinates are pixels of the upright image)")


# ------------------------------------------------------------------------------------------- COCO
def _rle_counts(text: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``, checked)."""
    counts: list[int] = []
    p, n = 0, len(text)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError("the string ends inside a number")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {text[p]!r} cannot be in a run-length string")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if k > 7:
                raise ValueError("a run length is too long")
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _decode_rle(seg: dict, h: int, w: int, where: str) -> np.ndarray:
    """A bool mask from a COCO run-length mask, its size and run lengths checked first (pycocotools
    would write past the mask on run lengths that add up to more than its pixels)."""
    size = seg.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise _ItemError(f"{where}: a run-length mask needs \"size\": [height, width]")
    if size != [h, w]:
        raise _ItemError(f"{where}: run-length mask of size {size[1]}x{size[0]} (width x height) but the image is "
                         f"{w}x{h}")
    counts = seg.get("counts")
    if isinstance(counts, (bytes, str)):
        try:
            counts = _rle_counts(counts.decode("ascii") if isinstance(counts, bytes) else counts)
        except (ValueError, UnicodeDecodeError) as e:
            raise _ItemError(f"{where}: corrupt compressed run-length mask ({e})") from None
    elif not (isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in counts)):
        raise _ItemError(f"{where}: run-length \"counts\" must be a list of integers or a compressed string")
    if any(v < 0 for v in counts) or sum(counts) != h * w:
        raise _ItemError(f"{where}: run lengths add up to {sum(counts)} pixels (with none negative), "
                         f"not the image's {h * w}")
    return _from_counts(counts, h, w)


def _from_counts(counts: list[int], h: int, w: int) -> np.ndarray:
    """The bool mask of checked run lengths (alternating 0 and 1 runs, column by column)."""
    values = np.zeros(len(counts), np.bool_)
    values[1::2] = True
    return np.repeat(values, counts).reshape(w, h).T


def _coco_shape(ann: dict, h: int, w: int, where: str, report: ImportReport) -> np.ndarray | None:
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        return _decode_rle(seg, h, w, where)
    if not isinstance(seg, list):
        raise _ItemError(f"{where}: \"segmentation\" must be a list of polygons or a run-length mask "
                         f"(a box alone is not a part mask)")
    mask = np.zeros((h, w), bool)
    drawn = False
    for poly in seg:
        if not _finite_numbers(poly) or len(poly) % 2:
            raise _ItemError(f"{where}: a polygon must be a flat list of x, y numbers (an even count)")
        if len(poly) < 6:
            report.notes["polygons with fewer than 3 points left out (no area)"] += 1
            continue
        pts = np.asarray(poly, dtype=np.float64)
        _check_points(pts[0::2], pts[1::2], h, w, where)
        rle = coco_mask.frPyObjects([list(map(float, poly))], h, w)[0]  # pycocotools' own rasteriser
        mask |= _from_counts(_rle_counts(rle["counts"].decode("ascii")), h, w)
        drawn = True
    return mask if drawn else None


def _json_file(path: Path, limit: int, what: str) -> Any:
    raw = read_bytes_bounded(path, limit, DatasetError, what)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text (byte {e.start}); expected {what} (JSON)") from None
    except RecursionError:
        raise DatasetError(f"{path}: JSON nested too deeply; expected {what}") from None
    except ValueError as e:
        raise DatasetError(f"{path}: not valid JSON ({e}); expected {what}") from None


def _require(obj: Any, key: str, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DatasetError(f"{where}: missing \"{key}\" ({what})")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DatasetError(f"{where}: \"{key}\" must be {what}, got {type(value).__name__} {str(value)[:40]!r}")
    return value


class _Finder:
    """Image files below a folder: by relative path, else by base name anywhere below it (built once)."""

    def __init__(self, root: Path):
        self.root = root
        self._by_name: dict[str, list[Path]] | None = None

    def find(self, rel: str, where: str) -> Path:
        rel = rel.replace("\\", "/")
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or ".." in parts:
            raise _ItemError(f"{where}: file name {rel!r} must be a relative path inside the image folder")
        direct = self.root.joinpath(*parts)
        if direct.is_file():
            return direct
        if self._by_name is None:
            self._by_name = {}
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in filenames:
                    self._by_name.setdefault(f, []).append(Path(dirpath) / f)
        found = self._by_name.get(parts[-1], [])
        if len(found) == 1:
            return found[0]
        if not found:
            raise _ItemError(f"{where}: image {rel!r} not found in {self.root} (nor a file of that name below it); "
                             "pass the folder holding the images with --images")
        raise _ItemError(f"{where}: image {rel!r} is not at {direct}, and {len(found)} files below {self.root} "
                         f"have its name ({', '.join(str(p) for p in found[:3])}); which one is meant is unclear")


def import_coco(
    annotations: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    images: str | os.PathLike[str] | None = None,
    class_from: str = "supercategory",
    unannotated_class: str | None = None,
    mapping: dict[str, str | None] | None = None,
    copy: bool = False,
    keep_going: bool = False,
) -> ImportReport:
    """Import a COCO annotation file (see the module doc); ``images``: the folder ``file_name`` is relative
    to (default: the annotation file's folder)."""
    src = Path(annotations)
    images_dir = Path(images) if images is not None else src.parent
    if not images_dir.is_dir():
        raise DatasetError(f"{images_dir}: image folder not found; pass the folder holding the images with --images")
    mapping = mapping or {}
    data = _json_file(src, MAX_ANNOTATION_BYTES, "a COCO annotation file")
    if not isinstance(data, dict):
        raise DatasetError(f"{src}: expected a COCO object with \"images\", \"annotations\" and \"categories\"")
    imgs = _require(data, "images", list, str(src), "a list of images")
    anns = _require(data, "annotations", list, str(src), "a list of annotations")
    cats = _require(data, "categories", list, str(src), "a list of categories")
    report = ImportReport(Path(out), "coco")

    categories: dict[Any, dict] = {}
    for i, c in enumerate(cats):
        where = f"{src}: categories[{i}]"
        cid = _require(c, "id", (int, str), where, "a number")
        _require(c, "name", str, where, "a name")
        if class_from == "supercategory":
            _require(c, "supercategory", str, where, "the object class (or pick --class-from category|folder|NAME)")
        if cid in categories:
            raise DatasetError(f"{where}: category id {cid!r} appears twice")
        categories[cid] = c
    concept: dict[Any, str | None] = {k: _concept_for(c["name"], mapping, f"{src}: category {k!r}")
                                      for k, c in categories.items()}
    dropped = {k for k, v in concept.items() if v is None}
    ordered = sorted((k for k in categories if k not in dropped), key=lambda k: (isinstance(k, str), k))
    index, parts_map = _assign_indices([(k, concept[k]) for k in ordered])  # type: ignore[misc]

    by_id: dict[Any, dict] = {}
    for i, im in enumerate(imgs):
        where = f"{src}: images[{i}]"
        iid = _require(im, "id", (int, str), where, "a number")
        _require(im, "file_name", str, where, "the image's path below the image folder")
        for key in ("width", "height"):
            if key in im and (not isinstance(im[key], int) or isinstance(im[key], bool) or im[key] <= 0):
                raise DatasetError(f"{where}: \"{key}\" must be a positive integer, got {im[key]!r}")
        if iid in by_id:
            raise DatasetError(f"{where}: image id {iid!r} appears twice")
        by_id[iid] = im
    per_image: dict[Any, list[tuple[int, dict]]] = {}
    for i, a in enumerate(anns):
        where = f"{src}: annotations[{i}]"
        iid = _require(a, "image_id", (int, str), where, "the id of an image")
        cid = _require(a, "category_id", (int, str), where, "the id of a category")
        if iid not in by_id:
            raise DatasetError(f"{where}: image_id {iid!r} is not in \"images\"")
        if cid not in categories:
            raise DatasetError(f"{where}: category_id {cid!r} is not in \"categories\"")
        if "segmentation" not in a:
            raise DatasetError(f"{where}: missing \"segmentation\" (a box alone is not a part mask)")
        per_image.setdefault(iid, []).append((i, a))

    finder = _Finder(images_dir)
    items: list[_Item] = []
    for iid, im in by_id.items():
        where = f"{src}: image {iid!r} ({im['file_name']})"
        own = per_image.get(iid, [])
        try:
            if class_from == "folder":  # the folder the image file is in (PartImageNet: its synset)
                path = finder.find(im["file_name"], where)
                if path.parent == images_dir:
                    raise _ItemError(f"{where}: the image lies directly in {images_dir}, with no folder to take the "
                                     "class from; use --class-from NAME")
                cls = _class_name(path.parent.name, where)
            else:
                cls = _coco_class(im, own, categories, class_from, unannotated_class, where)
                if cls is None:
                    report.notes["images without annotations left out (their class is unknown: "
                                 "--unannotated-class NAME)"] += 1
                    continue
                path = finder.find(im["file_name"], where)
        except _ItemError as e:
            if not keep_going:
                raise DatasetError(f"{e} (nothing was written; --keep-going leaves such images out)") from None
            report.skipped.append((im["file_name"], str(e)))
            continue
        items.append(_Item(path, cls, path.name, where, _coco_drawer(im, own, index, dropped, src, where, report)))
    if dropped:
        report.notes["categories left out by the map"] = len(dropped)
    marker = _marker("coco", src, images=images_dir, class_from=class_from, unannotated_class=unannotated_class,
                     categories={str(k): concept[k] for k in categories})
    return _write(items, Path(out), parts_map, "coco", copy=copy, keep_going=keep_going, marker=marker, report=report)


def _coco_class(im: dict, own: list[tuple[int, dict]], categories: dict[Any, dict], class_from: str,
                unannotated: str | None, where: str) -> str | None:
    if class_from not in ("supercategory", "category"):
        return _class_name(class_from, "--class-from")
    if not own:
        return _class_name(unannotated, "--unannotated-class") if unannotated else None
    key = "supercategory" if class_from == "supercategory" else "name"
    names = sorted({categories[a["category_id"]][key] for _, a in own})
    if len(names) > 1:
        raise _ItemError(f"{where}: its annotations name different {class_from} values ({', '.join(names)}), so "
                         "its class is unclear; pick another --class-from")
    return _class_name(names[0], where)


def _coco_drawer(im: dict, own: list[tuple[int, dict]], index: dict[Any, int], dropped: set, src: Path,
                 where: str, report: ImportReport) -> Callable[[int, int], np.ndarray]:
    def draw(h: int, w: int) -> np.ndarray:
        if (im.get("width", w), im.get("height", h)) != (w, h):
            raise _ItemError(f"{where}: {src.name} says {im.get('width')}x{im.get('height')} but the image is {w}x{h} "
                             "(upright, after its EXIF orientation)")
        shapes = []
        for i, a in own:
            if a["category_id"] in dropped:
                continue
            m = _coco_shape(a, h, w, f"{src}: annotations[{i}]", report)
            if m is not None and m.any():
                shapes.append((index[a["category_id"]], m))
        return _paint(shapes, h, w, report)
    return draw


# ----------------------------------------------------------------------------------------- LabelMe
_NO_AREA = ("line", "linestrip", "point", "points")


def _labelme_shape(shape: Any, h: int, w: int, where: str) -> np.ndarray | None:
    if not isinstance(shape, dict):
        raise _ItemError(f"{where}: a shape must be an object with \"label\" and \"points\"")
    kind = shape.get("shape_type") or "polygon"
    pts = shape.get("points")
    if not (isinstance(pts, list) and all(isinstance(p, list) and len(p) == 2 and _finite_numbers(p) for p in pts)):
        raise _ItemError(f"{where}: \"points\" must be a list of [x, y] pairs")
    if kind in _NO_AREA:
        return None
    arr = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    _check_points(arr[:, 0], arr[:, 1], h, w, where)
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    xy = [tuple(p) for p in arr.tolist()]
    if kind == "polygon":
        if len(xy) < 3:
            return None
        draw.polygon(xy, outline=1, fill=1)
    elif kind == "rectangle":
        if len(xy) != 2:
            raise _ItemError(f"{where}: a rectangle has 2 points (opposite corners), got {len(xy)}")
        (x0, y0), (x1, y1) = xy
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1)
    elif kind == "circle":
        if len(xy) != 2:
            raise _ItemError(f"{where}: a circle has 2 points (centre, a point on it), got {len(xy)}")
        (cx, cy), (px, py) = xy
        d = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - d, cy - d, cx + d, cy + d], outline=1, fill=1)
    elif kind == "mask":
        return _labelme_mask(shape, xy, h, w, where)
    else:
        raise _ItemError(f"{where}: unknown shape_type {kind!r} (polygon, rectangle, circle, mask; line, "
                         "linestrip and point have no area)")
    return np.asarray(canvas, dtype=bool)


def _labelme_mask(shape: dict, xy: list, h: int, w: int, where: str) -> np.ndarray:
    """LabelMe's ``mask`` shape: a base64 PNG covering the box between its two points."""
    data = shape.get("mask")
    if not isinstance(data, str) or len(xy) != 2:
        raise _ItemError(f"{where}: a mask shape needs 2 points (its box) and \"mask\" (a base64 PNG)")
    try:
        raw = base64.b64decode(data, validate=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(BytesIO(raw)) as m:
                if m.size[0] * m.size[1] > w * h:
                    raise ValueError("larger than the image")
                crop = np.asarray(m.convert("L")) > 0
    except (binascii.Error, ValueError, OSError) as e:
        raise _ItemError(f"{where}: the mask shape's \"mask\" is not a base64 PNG within the image ({e})") from None
    (x0, y0), _ = xy
    x0, y0 = int(x0), int(y0)
    ch, cw = crop.shape
    if x0 < 0 or y0 < 0 or x0 + cw > w or y0 + ch > h:
        raise _ItemError(f"{where}: the mask shape's {cw}x{ch} mask at ({x0}, {y0}) lies outside the {w}x{h} image")
    full = np.zeros((h, w), bool)
    full[y0:y0 + ch, x0:x0 + cw] = crop
    return full


def import_labelme(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    class_from: str = "folder",
    mapping: dict[str, str | None] | None = None,
    copy: bool = False,
    keep_going: bool = False,
) -> ImportReport:
    """Import a folder of LabelMe JSON files (searched recursively; see the module doc)."""
    root = Path(src)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder; expected a folder of LabelMe JSON files")
    if class_from in ("supercategory", "category"):
        raise DatasetError(f"--class-from {class_from} is for COCO files; LabelMe takes folder or a class NAME")
    mapping = mapping or {}
    report = ImportReport(Path(out), "labelme")
    files = sorted(p for p in root.rglob("*.json") if not any(q.startswith(".") for q in p.relative_to(root).parts))
    if not files:
        raise DatasetError(f"{root}: no LabelMe .json files found")
    docs: list[tuple[Path, dict, list[tuple[str, dict]]]] = []
    labels: set[str] = set()
    for f in files:
        doc = _json_file(f, MAX_LABELME_BYTES, "a LabelMe JSON file")
        shapes = _require(doc, "shapes", list, str(f), "a list of shapes (is this a LabelMe file?)")
        _require(doc, "imagePath", str, str(f), "the image's path relative to the JSON file")
        named: list[tuple[str, dict]] = []
        for i, s in enumerate(shapes):
            label = _require(s, "label", str, f"{f}: shapes[{i}]", "the part's name")
            if s.get("shape_type") in _NO_AREA:
                report.notes["shapes without area left out (line, point, polygon of < 3 points)"] += 1
                continue
            cid = _concept_for(label, mapping, f"{f}: shapes[{i}]")
            if cid is not None:
                labels.add(cid)
                named.append((cid, s))
            else:
                report.notes["shapes left out by the map"] += 1
        docs.append((f, {k: doc.get(k) for k in ("imagePath", "imageHeight", "imageWidth")}, named))
    index, parts_map = _assign_indices([(c, c) for c in sorted(labels)])

    items: list[_Item] = []
    for f, doc, named in docs:
        where = str(f)
        if class_from == "folder":
            rel = f.parent.relative_to(root)
            if not rel.parts:
                raise DatasetError(f"{f}: lies directly in {root}, with no class folder; use --class-from NAME")
            cls = _class_name(rel.parts[-1], where)
        else:
            cls = _class_name(class_from, "--class-from")
        rel_image = doc["imagePath"].replace("\\", "/")
        path = (f.parent / rel_image)
        if not path.is_file() and (f.parent / PurePosixPath(rel_image).name).is_file():
            path = f.parent / PurePosixPath(rel_image).name
        if not path.is_file():
            e = _ItemError(f"{f}: image {path} not found (LabelMe's embedded imageData is not read: keep the "
                           "image file where imagePath says)")
            if not keep_going:
                raise DatasetError(f"{e} (nothing was written; --keep-going leaves such images out)")
            report.skipped.append((str(f), str(e)))
            continue
        items.append(_Item(path, cls, path.name, where, _labelme_drawer(f, doc, named, index, report)))
    marker = _marker("labelme", root, class_from=class_from)
    return _write(items, Path(out), parts_map, "labelme", copy=copy, keep_going=keep_going, marker=marker, report=report)


def _labelme_drawer(f: Path, doc: dict, named: list[tuple[str, dict]], index: dict[str, int],
                    report: ImportReport) -> Callable[[int, int], np.ndarray]:
    def draw(h: int, w: int) -> np.ndarray:
        size = (doc.get("imageWidth"), doc.get("imageHeight"))
        if size != (None, None) and size != (w, h):
            raise _ItemError(f"{f}: imageWidth x imageHeight is {size[0]}x{size[1]} but the image is {w}x{h} "
                             "(upright, after its EXIF orientation)")
        shapes = []
        for i, (cid, s) in enumerate(named):
            m = _labelme_shape(s, h, w, f"{f}: shape {i} ({s.get('label')!r})")
            if m is None:
                report.notes["shapes without area left out (line, point, polygon of < 3 points)"] += 1
            elif m.any():
                shapes.append((index[cid], m))
        return _paint(shapes, h, w, report)
    return draw


# ------------------------------------------------------------------------------------------ masks
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
_TRIPLE = re.compile(r"^\s*\(?\s*(\d{1,3})\s*[, ]\s*(\d{1,3})\s*[, ]\s*(\d{1,3})\s*\)?\s*$")


def _legend_key(key: Any) -> tuple[str, int]:
    """``("index", 5)`` or ``("colour", 0xRRGGBB)`` from a legend key; ValueError otherwise."""
    if isinstance(key, int) and not isinstance(key, bool):
        return "index", key
    if isinstance(key, str):
        if key.strip().isdigit():
            return "index", int(key)
        m = _HEX.match(key.strip())
        if m:
            return "colour", int(m.group(1), 16)
        m = _TRIPLE.match(key)
        if m and all(int(v) <= 255 for v in m.groups()):
            r, g, b = (int(v) for v in m.groups())
            return "colour", (r << 16) | (g << 8) | b
    raise ValueError(key)


def _read_legend(path: Path) -> tuple[str, dict[int, str | None]]:
    data = read_yaml_file(path, DatasetError, "a mask legend file")
    if not isinstance(data, dict) or not data:
        raise DatasetError(f"{path}: expected a mapping from mask value or colour to a part name, e.g. "
                           "{1: head, 2: body} or {\"#ff0000\": head}")
    kinds: set[str] = set()
    out: dict[int, str | None] = {}
    for k, v in data.items():
        try:
            kind, key = _legend_key(k)
        except ValueError:
            raise DatasetError(f"{path}: {k!r} is neither a mask value (0..65535) nor a colour (\"#rrggbb\" or "
                               "\"r,g,b\")") from None
        if kind == "index" and not 0 <= key <= 65535:
            raise DatasetError(f"{path}: mask value {key} is outside 0..65535")
        if v is not None and not (isinstance(v, str) and v.strip()):
            raise DatasetError(f"{path}: {k!r} maps to {v!r}; expected a part name, or null for background")
        if key == 0 and v is not None:
            raise DatasetError(f"{path}: {k!r} is the background (value 0 / black) and cannot be a part")
        if key in out:
            raise DatasetError(f"{path}: {k!r} is given twice")
        kinds.add(kind)
        out[key] = v
    if len(kinds) > 1:
        raise DatasetError(f"{path}: mixes mask values and colours; a legend is one or the other")
    out.setdefault(0, None)
    return kinds.pop(), out


def _read_mask_values(path: Path, kind: str, h: int, w: int) -> np.ndarray:
    """The mask file as values (indexed: the pixel values; colour: 0xRRGGBB per pixel), size checked."""
    try:
        f, _ = open_bounded(path, _MAX_MASK_BYTES, ImageLoadError, "a mask image")
    except ImageLoadError as e:
        raise _ItemError(f"{path}: {e.reason}") from None
    with f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(f) as m:
                if m.size != (w, h):
                    raise _ItemError(f"{path}: mask is {m.size[0]}x{m.size[1]} but its image is {w}x{h} (upright, "
                                     "after its EXIF orientation); the mask must cover the image pixel for pixel")
                if kind == "index":
                    if m.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L"):
                        raise _ItemError(f"{path}: mask has colour mode {m.mode!r}, but the legend names mask values; "
                                         "give colours in the legend (\"#rrggbb\": name) for colour masks")
                    return np.asarray(m).astype(np.int64)
                rgb = np.asarray(m.convert("RGB")).astype(np.int64)
                return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        except _ItemError:
            raise
        except Exception as e:  # noqa: BLE001 - Pillow raises many types on malformed files
            raise _ItemError(f"{path}: cannot read the mask ({' '.join(str(e).split()) or type(e).__name__})") from None


def _masks_drawer(mask_path: Path, kind: str, legend: dict[int, str | None], index: dict[int, int],
                  legend_path: Path) -> Callable[[int, int], np.ndarray]:
    def draw(h: int, w: int) -> np.ndarray:
        values = _read_mask_values(mask_path, kind, h, w)
        uniq, inverse = np.unique(values, return_inverse=True)
        unknown = [int(u) for u in uniq if int(u) not in legend]
        if unknown:
            shown = ", ".join(f"#{u:06x}" if kind == "colour" else str(u) for u in unknown[:_SHOWN])
            raise _ItemError(f"{mask_path}: {'colours' if kind == 'colour' else 'values'} {shown}"
                             f"{' ...' if len(unknown) > _SHOWN else ''} are not in the legend {legend_path}; add them "
                             "(a part name, or null for background)")
        lut = np.array([index.get(int(u), 0) for u in uniq], dtype=np.int32)
        return lut[inverse.reshape(values.shape)]
    return draw


def import_masks(
    images: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    masks: str | os.PathLike[str],
    legend: str | os.PathLike[str],
    class_from: str = "folder",
    mapping: dict[str, str | None] | None = None,
    copy: bool = False,
    keep_going: bool = False,
) -> ImportReport:
    """Import an image folder with a folder of indexed or colour masks and a legend (see the module doc)."""
    root, mask_root, legend_path = Path(images), Path(masks), Path(legend)
    for p, what in ((root, "image folder"), (mask_root, "mask folder (--masks)")):
        if not p.is_dir():
            raise DatasetError(f"{p}: {what} not found")
    if class_from in ("supercategory", "category"):
        raise DatasetError(f"--class-from {class_from} is for COCO files; masks take folder or a class NAME")
    mapping = mapping or {}
    kind, table = _read_legend(legend_path)
    named: list[tuple[Any, str]] = []  # colours are tagged, so they are never kept as mask indices
    for key, name in table.items():
        if name is not None:
            cid = _concept_for(name, mapping, f"{legend_path}: {name!r}")
            if cid is not None:
                named.append((key if kind == "index" else ("colour", key), cid))
    tagged, parts_map = _assign_indices(named)
    index = {(k if kind == "index" else k[1]): v for k, v in tagged.items()}
    report = ImportReport(Path(out), "masks")
    items: list[_Item] = []
    for path in _image_files(root, mask_root):
        rel = path.relative_to(root)
        mask_path = mask_root.joinpath(*rel.parent.parts, path.stem + ".png")
        if not mask_path.is_file():
            report.notes["images without a mask left out"] += 1
            continue
        if class_from == "folder":
            if not rel.parent.parts:
                raise DatasetError(f"{path}: lies directly in {root}, with no class folder; use --class-from NAME")
            cls = _class_name(rel.parent.parts[-1], str(path))
        else:
            cls = _class_name(class_from, "--class-from")
        items.append(_Item(path, cls, path.name, str(mask_path),
                           _masks_drawer(mask_path, kind, table, index, legend_path)))
    if not items:
        raise DatasetError(f"{root}: no image has a mask in {mask_root} (expected <masks>/<same path>/<stem>.png)")
    marker = _marker("masks", root, masks=mask_root, legend=legend_path, class_from=class_from)
    return _write(items, Path(out), parts_map, "masks", copy=copy, keep_going=keep_going, marker=marker, report=report)


def _image_files(root: Path, skip: Path) -> Iterator[Path]:
    skip_resolved = skip.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and (d / n).resolve() != skip_resolved)
        for name in sorted(filenames):
            low = name.lower()
            if low.endswith(IMAGE_EXTENSIONS) and not low.endswith(PARTS_SUFFIX) and not name.startswith("."):
                yield d / name


# ----------------------------------------------------------------------------------------- export
def _rle(mask: np.ndarray) -> dict[str, Any]:
    enc = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in enc["size"]], "counts": enc["counts"].decode("ascii")}


def _rle_in_box(crop: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int]) -> dict[str, Any]:
    """The COCO run-length mask of a segment kept as its box and the mask inside it, without building the
    full-image mask: the same string as ``_rle`` of the full mask, in memory of the box's size.

    COCO counts run down the columns of the full image (column-major), starting with zeros. The runs of
    ones are found per column of the box and moved to full-image positions; two runs meet across columns
    only when the box spans the image's whole height, and are joined then.

    >>> full = np.zeros((5, 4), bool); full[0:5, 1:3] = True; full[2, 3] = True
    >>> _rle_in_box(full[0:5, 1:4], (1, 0, 4, 5), (5, 4)) == _rle(full)
    True
    """
    h, w = int(shape[0]), int(shape[1])
    x0, y0 = int(box[0]), int(box[1])
    c = np.asarray(crop, dtype=bool)
    padded = np.zeros((c.shape[0] + 2, c.shape[1]), np.int8)
    padded[1:-1] = c
    step = np.diff(padded, axis=0).T  # per box column, +1 where a run of ones starts, -1 past its end
    cols, rows = np.nonzero(step == 1)
    ecols, erows = np.nonzero(step == -1)  # same order: starts and ends alternate down each column
    starts = (x0 + cols).astype(np.int64) * h + y0 + rows
    ends = (x0 + ecols).astype(np.int64) * h + y0 + erows
    if len(starts) > 1:  # a run ending at the bottom row continues at the top of the next column
        join = ends[:-1] == starts[1:]
        if join.any():
            keep_start = np.concatenate([[True], ~join])
            keep_end = np.concatenate([~join, [True]])
            starts, ends = starts[keep_start], ends[keep_end]
    counts: list[int] = []
    pos = 0
    for s, e in zip(starts.tolist(), ends.tolist()):
        counts += [s - pos, e - s]
        pos = e
    if h * w - pos or not counts:  # pycocotools ends on the last run; no empty run of zeros after it
        counts.append(h * w - pos)
    enc = coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return {"size": [h, w], "counts": enc["counts"].decode("ascii")}


def _bbox(mask: np.ndarray) -> list[float]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def _write_coco(out: Path, description: str, images: list[dict], annotations: list[dict],
                categories: list[dict]) -> None:
    doc = {"info": {"description": description, "version": "1.0"}, "licenses": [], "images": images,
           "annotations": annotations, "categories": categories}
    atomic_write_text(out, json.dumps(doc, separators=(",", ":")) + "\n")


def export_coco_dataset(root: str | os.PathLike[str], out: str | os.PathLike[str]) -> ExportReport:
    """A COCO file from a data set's part masks: one annotation per part index present in each mask
    (category id = the mask index, name = its concept id from parts.json). Images without a mask are not
    listed (an image with no annotations would come back as all background)."""
    folder = ImageFolder(root)
    if not folder.parts_map:
        raise DatasetError(f"{folder.root}: no {PARTS_FILE}, so no part masks to export")
    report = ExportReport(Path(out))
    images: list[dict] = []
    annotations: list[dict] = []
    for rec in folder.records:
        if rec.parts_path is None:
            report.notes["images without a part mask (not listed)"] += 1
            continue
        mask = folder.load_parts(rec)
        h, w = mask.shape
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": rec.id, "width": w, "height": h})
        for index in sorted(set(np.unique(mask).tolist()) - {0}):
            m = mask == index
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(index),
                                "segmentation": _rle(m), "area": int(m.sum()), "bbox": _bbox(m), "iscrowd": 0})
    categories = [{"id": k, "name": v, "supercategory": "part"} for k, v in folder.parts_map.items()]
    _write_coco(Path(out), f"part masks of {folder.root.name}, exported by the Constructability Workbench",
                images, annotations, categories)
    report.images, report.annotations, report.categories = len(images), len(annotations), len(categories)
    return report


def export_coco_store(store: Any, ontology: Ontology, out: str | os.PathLike[str], *,
                      name: str = "workspace") -> ExportReport:
    """A COCO file from a label store: one annotation per segment whose current label is a concept of
    ``ontology`` (category ids 1..N in the ontology's order, root first; supercategory = the concept's kind).
    Segments labelled "none", unlabelled ones and labels of concepts the ontology no longer has are left
    out (counted). Each annotation carries the label's ``source``, ``author``, the segment id and the
    segmenter settings hash under ``attributes``."""
    categories = [{"id": i, "name": cid, "supercategory": ontology.kind(cid)}
                  for i, cid in enumerate(ontology.concepts, start=1)]
    cat_id = {c["name"]: c["id"] for c in categories}
    report = ExportReport(Path(out))
    images: list[dict] = []
    annotations: list[dict] = []
    hashes: set[str] = set()
    for image in store.images():
        rows = [(s, lab) for s, lab in store.segments_with_labels(image_id=image.id) if lab is not None]
        anns = []
        for seg, lab in rows:
            if lab.concept not in cat_id:
                report.notes["segments labelled 'none' (not exported)" if lab.concept == "none" else
                             "segments labelled with concepts not in the ontology (not exported)"] += 1
                continue
            if not seg.area:
                continue
            x0, y0, x1, y1 = seg.bbox
            hashes.add(seg.settings_hash)
            rle = _rle_in_box(seg.crop_mask(), seg.bbox, seg.shape)  # never the full-image mask
            anns.append({"category_id": cat_id[lab.concept], "segmentation": rle, "area": int(seg.area),
                         "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "iscrowd": 0,
                         "attributes": {"source": lab.source, "author": lab.author, "segment_id": seg.id,
                                        "settings_hash": seg.settings_hash}})
        if not anns:
            report.notes["images with no exported label (not listed)"] += 1
            continue
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": image.path, "width": image.width, "height": image.height,
                       **({"class": image.class_label} if image.class_label else {})})
        for a in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **a})
    if len(hashes) > 1:
        report.notes["segmenter settings mixed in the export (their segments may overlap)"] = len(hashes)
    _write_coco(Path(out), f"segment labels of {name}, exported by the Constructability Workbench",
                images, annotations, categories)
    report.images, report.annotations, report.categories = len(images), len(annotations), len(categories)
    return report
