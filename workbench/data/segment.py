"""Segmentation: turn an image into part-sized segments a person, an LLM or ground-truth masks can sort.

A :class:`Segment` is a region of an image, kept compact: its bounding box in the original image,
its area, and its mask inside the box (bit-packed); its :meth:`~Segment.crop` is the input of a part
net. Segmenters work at a *working size* (long edge ``working_size``); the segments they find are
mapped back onto the original image box by box, so memory follows the segments, not the image size.
Any object with ``name``, ``settings`` and ``segment(image)`` is a :class:`Segmenter`; two ship:
:class:`WeightFreeSegmenter` (scikit-image, the default, no weights to download) and
:class:`workbench.data.sam.SamSegmenter` (segment-anything over a checkpoint the user points to).

:func:`segment_images` maps a segmenter over many images through any ``concurrent.futures.Executor``
(see :mod:`workbench.parallel`), reading and filling a content-addressed cache; :func:`segment_dataset`
does that for an :class:`~workbench.data.datasets.ImageFolder` and stores the segments in the label store;
:func:`part_recall` measures how well a segmenter recovers ground-truth parts.

>>> import numpy as np
>>> image = np.zeros((64, 64, 3), np.uint8); image[8:40, 10:30] = (250, 250, 250)
>>> segs = WeightFreeSegmenter().segment(image)
>>> any(s.bbox == (10, 8, 30, 40) for s in segs)
True
>>> segs[0].crop(image, size=16).shape
(16, 16, 3)
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.data._segcache import (
    SegmentCache,
    pack_segments,
    sha256_array,
    sha256_file,
    unpack_segments,
)
from workbench.data.datasets import load_image
from workbench.data.sam import SamSegmenter
from workbench.data.segments import (
    Segment,
    Segmenter,
    as_rgb,
    downscale,
    resize_labels,
    segments_from_labels,
    settings_hash,
    working_scale,
)
from workbench.errors import ImageLoadError, SegmentationError, WorkbenchError
from workbench.parallel import executor as make_executor

__all__ = [
    "WORKING_SIZE",
    "WeightFreeSegmenter",
    "SEGMENTERS",
    "make_segmenter",
    "SegmentResult",
    "SegmentRun",
    "iter_segment_images",
    "segment_images",
    "SegmentRunReport",
    "segment_dataset",
    "PartRecallReport",
    "part_recall",
]

#: Long edge, in pixels, at which the weight-free segmenter works: larger images are downscaled to it
#: and the segments found are mapped back onto the original image (nearest neighbour, box by box), so
#: boxes and areas are always in the original's pixels while memory stays that of the working size.
WORKING_SIZE = 512


# ------------------------------------------------------------------------------ weight-free segmenter
_METHODS = ("felzenszwalb", "slic", "quickshift", "watershed")


@dataclass(frozen=True)
class _WeightFreeSettings:
    method: str = "felzenszwalb"  # one of felzenszwalb | slic | quickshift | watershed
    working_size: int = WORKING_SIZE  # long edge the segmenter works at; larger images are downscaled
    scale: float = 800.0  # felzenszwalb: higher -> larger segments (fewer background pieces)
    sigma: float = 0.3  # felzenszwalb / slic / quickshift: Gaussian pre-smoothing (0.5 blurs petals together)
    n_segments: int = 100  # slic / watershed: about how many regions
    compactness: float = 10.0  # slic / watershed: higher -> rounder regions
    min_area: int = 30  # drop segments smaller than this many pixels (at working size); also felzenszwalb's min_size
    max_area_fraction: float = 0.5  # drop segments covering more than this fraction of the image (background)

    def validate(self) -> None:
        problems = []
        if self.method not in _METHODS:
            problems.append(f"method {self.method!r} is not one of {', '.join(_METHODS)}")
        if self.working_size < 16:
            problems.append(f"working_size must be >= 16, got {self.working_size}")
        if not (0 < self.max_area_fraction <= 1):
            problems.append(f"max_area_fraction must be in (0, 1], got {self.max_area_fraction}")
        for name in ("scale", "compactness"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0")
        if self.sigma < 0 or self.min_area < 1 or self.n_segments < 1:
            problems.append("sigma must be >= 0, min_area >= 1 and n_segments >= 1")
        if problems:
            raise SegmentationError("weight-free segmenter settings: " + "; ".join(problems))


class WeightFreeSegmenter:
    """The default segmenter: scikit-image superpixels, no weights.

    Defaults (felzenszwalb, scale 800, sigma 0.3, min_area 30) were chosen by measuring part recall on
    the generated demo set (60 images, 256 px): disk 1.00, petal 0.91, stem 0.91, leaf 0.90 at ~33
    segments per image. Smaller ``scale`` or ``sigma`` 0 give more segments (50-130 per image) for no
    recall gain; ``sigma`` 0.5 merges neighbouring petals (petal recall 0.6); slic and watershed
    grids cut thin stems (stem recall < 0.2). See ``benchmarks/bench_segment.py``.

    Settings (keyword arguments; an unknown one is an error naming it): see ``_WeightFreeSettings``.
    Images larger than ``working_size`` on the long edge are segmented downscaled and each segment is
    mapped back onto the original (its box, area and mask in the original's pixels, as a
    nearest-neighbour upscale of the label map would give, without building that map). Segments below
    ``min_area`` pixels (at working size) or above ``max_area_fraction`` of the image are dropped, so a
    tiny image gives zero or few segments.
    """

    name = "weightfree"

    def __init__(self, **settings: Any):
        known = {f.name for f in dataclasses.fields(_WeightFreeSettings)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise SegmentationError(
                f"weight-free segmenter: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        self._s = _WeightFreeSettings(**settings)
        self._s.validate()

    @property
    def settings(self) -> dict:
        return dataclasses.asdict(self._s)

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.settings.items() if v != getattr(_WeightFreeSettings, k)}
        return f"WeightFreeSegmenter({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def working_labels(self, image: np.ndarray) -> np.ndarray:
        """The raw label map at working size (int, ``image`` downscaled to fit ``working_size``), before
        the size filters."""
        return _superpixels(downscale(as_rgb(image), self._s.working_size), self._s)

    def labels(self, image: np.ndarray) -> np.ndarray:
        """The raw label map at the size of ``image`` (int, H x W), before the size filters. For a large
        image this is a large array; :meth:`segment` never builds it."""
        image = as_rgb(image)
        labels = self.working_labels(image)
        return labels if labels.shape == image.shape[:2] else resize_labels(labels, image.shape[:2])

    def segment(self, image: np.ndarray) -> list[Segment]:
        image = as_rgb(image)
        h, w = image.shape[:2]
        if h < 2 or w < 2:
            return []
        labels = self.working_labels(image)
        scale = working_scale((h, w), self._s.working_size)
        min_area = self._s.min_area / (scale * scale)
        max_area = self._s.max_area_fraction * h * w
        return segments_from_labels(labels, (h, w), min_area, max_area)


def _superpixels(image: np.ndarray, s: _WeightFreeSettings) -> np.ndarray:
    import skimage.segmentation as seg

    if s.method == "felzenszwalb":
        return seg.felzenszwalb(image, scale=s.scale, sigma=s.sigma, min_size=s.min_area)
    if s.method == "slic":
        return seg.slic(image, n_segments=s.n_segments, compactness=s.compactness, sigma=s.sigma, start_label=1)
    if s.method == "quickshift":
        from skimage.util import img_as_float

        return seg.quickshift(img_as_float(image), kernel_size=3, max_dist=s.scale / 10, sigma=s.sigma)
    # watershed on the colour gradient from a regular grid of markers
    from skimage.color import rgb2gray
    from skimage.filters import sobel

    gradient = sobel(rgb2gray(image))
    return seg.watershed(gradient, markers=s.n_segments, compactness=s.compactness / 1000)


# ---------------------------------------------------------------------------------------- registry
#: Segmenters by name: ``make_segmenter(name, **settings)``.
SEGMENTERS: dict[str, Callable[..., Segmenter]] = {"weightfree": WeightFreeSegmenter, "sam": SamSegmenter}


def make_segmenter(name: str = "weightfree", **settings: Any) -> Segmenter:
    """Build a segmenter by name (``weightfree`` or ``sam``).

    >>> make_segmenter("weightfree", scale=50).settings["scale"]
    50
    >>> make_segmenter("mystery")
    Traceback (most recent call last):
    ...
    workbench.errors.SegmentationError: unknown segmenter 'mystery': choose one of weightfree, sam
    """
    try:
        factory = SEGMENTERS[name]
    except KeyError:
        raise SegmentationError(f"unknown segmenter {name!r}: choose one of {', '.join(SEGMENTERS)}") from None
    return factory(**settings)


# ------------------------------------------------------------------------------- many images, cached
@dataclass
class SegmentResult:
    """The outcome for one image. ``error`` is set (and ``segments`` empty) when it failed."""

    key: Any
    segments: list[Segment]
    shape: tuple[int, int] | None  # (H, W) of the full image
    image_sha256: str | None  # of the file's bytes for a path, of dtype+shape+pixels for an array
    cached: bool = False
    error: str | None = None
    path: Path | None = None


@dataclass
class SegmentRun:
    """All results of :func:`segment_images`, in input order, and the failed images ``(key, reason)``."""

    results: list[SegmentResult]
    problems: list[tuple[Any, str]]
    seconds: float = 0.0

    @property
    def cached(self) -> int:
        return sum(r.cached for r in self.results)


def _load_image(path: Path) -> np.ndarray:
    return load_image(path)


def _segment_task(key: Any, source: Any, segmenter: Segmenter, cache_root: str | None) -> tuple:
    """Run in a worker: hash, look up the cache, else load + segment + store. Returns plain data only."""
    path = None
    try:
        name, shash = segmenter.name, settings_hash(segmenter)
        cache = SegmentCache(cache_root) if cache_root else None
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            try:
                image_hash = sha256_file(path)
            except OSError as e:
                raise ImageLoadError(path, e.strerror or str(e)) from None
            image = None
        else:
            image = np.asarray(source)
            image_hash = sha256_array(image)
        if cache is not None and (packed := cache.get(image_hash, name, shash)) is not None:
            return key, image_hash, packed, True, None, [str(p) for p, _ in cache.corrupt]
        if image is None:
            image = _load_image(path)
        segments = segmenter.segment(image)
        packed = pack_segments(segments, np.shape(image)[:2])
        del image, segments
        if cache is not None:
            cache.put(image_hash, name, shash, packed)
        return key, image_hash, packed, False, None, [str(p) for p, _ in (cache.corrupt if cache else [])]
    except WorkbenchError as e:
        return key, None, None, False, str(e), []
    except Exception as e:  # noqa: BLE001 - one bad image must not stop a run; reported with its reason
        where = f"{path}: " if path is not None else ""
        return key, None, None, False, f"{where}{type(e).__name__}: {e}", []


def iter_segment_images(
    images: Iterable[tuple[Any, Any]],
    segmenter: Segmenter,
    executor: Executor | None = None,
    cache: str | Path | None = None,
    progress: bool = True,
    total: int | None = None,
    max_in_flight: int | None = None,
) -> Iterator[SegmentResult]:
    """Yield a :class:`SegmentResult` per ``(key, image array or path)``, in input order.

    ``executor``: any ``concurrent.futures.Executor`` (process pool, ``dask`` client's
    ``get_executor()``) or ``None`` to run inline. At most ``max_in_flight`` images are submitted ahead
    (default 4 per worker), so memory stays bounded however many images there are. ``cache`` is a
    directory (see :class:`~workbench.data._segcache.SegmentCache`). A failed image gives a result with
    ``error`` set; the run goes on.
    """
    from tqdm.auto import tqdm

    cache_root = str(cache) if cache is not None else None
    items = list(images) if total is None and not hasattr(images, "__len__") else images
    if total is None:
        total = len(items)  # type: ignore[arg-type]
    if max_in_flight is None:
        max_in_flight = 4 * max(1, getattr(executor, "_max_workers", 2) or 2)
    bar = tqdm(total=total, unit="img", desc=f"segment ({segmenter.name})", disable=not progress, smoothing=0.1)

    def finish(raw: tuple, source: Any) -> SegmentResult:
        key, image_hash, packed, cached, error, _corrupt = raw
        path = Path(source) if isinstance(source, (str, os.PathLike)) else None
        bar.update(1)
        if error is not None:
            return SegmentResult(key, [], None, image_hash, False, error, path)
        shape, segments = unpack_segments(packed)
        return SegmentResult(key, segments, shape, image_hash, cached, None, path)

    try:
        if executor is None:
            for key, source in items:
                yield finish(_segment_task(key, source, segmenter, cache_root), source)
            return
        pending: deque = deque()
        for key, source in items:
            pending.append((executor.submit(_segment_task, key, source, segmenter, cache_root), key, source))
            if len(pending) >= max_in_flight:
                yield _collect(pending.popleft(), finish)
        while pending:
            yield _collect(pending.popleft(), finish)
    finally:
        bar.close()


def _collect(entry: tuple, finish: Callable) -> SegmentResult:
    fut, key, source = entry
    try:
        raw = fut.result()
    except Exception as e:  # noqa: BLE001 - a worker that died (OOM, killed) is one bad image, reported
        raw = (key, None, None, False, f"worker failed: {type(e).__name__}: {e}", [])
    return finish(raw, source)


def segment_images(
    images: Iterable[tuple[Any, Any]],
    segmenter: Segmenter,
    executor: Executor | None = None,
    cache: str | Path | None = None,
    progress: bool = True,
) -> SegmentRun:
    """Segment ``(key, image or path)`` pairs; see :func:`iter_segment_images`. Holds every result in
    memory: for large runs iterate :func:`iter_segment_images` (or use :func:`segment_dataset`)."""
    t0 = time.perf_counter()
    results = list(iter_segment_images(images, segmenter, executor=executor, cache=cache, progress=progress))
    problems = [(r.key, r.error) for r in results if r.error is not None]
    return SegmentRun(results, problems, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------- into the store
@dataclass
class SegmentRunReport:
    """What :func:`segment_dataset` did."""

    settings_hash: str
    images: int = 0  # images segmented and stored
    segments: int = 0  # segments stored
    cached: int = 0  # images whose segments came from the cache
    problems: list[tuple[str, str]] = field(default_factory=list)  # (image path, reason)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return (self.images + len(self.problems)) / self.seconds if self.seconds > 0 else math.inf

    def summary(self) -> str:
        text = (
            f"{self.images} images, {self.segments} segments ({self.cached} images from cache) in "
            f"{self.seconds:.1f} s ({self.images_per_second:.1f} images/s), settings {self.settings_hash}"
        )
        if self.problems:
            text += f"; {len(self.problems)} image(s) failed:\n" + "\n".join(f"  {p}: {r}" for p, r in self.problems)
        return text


def _segment_records(
    records: list[Any],
    segmenter: Segmenter,
    executor: Executor | None,
    workers: int,
    cache_dir: str | Path | None,
    progress: bool,
    problems: list[tuple[str, str]],
) -> Iterator[tuple[Any, SegmentResult]]:
    """Segment data-set records in order; yield ``(record, result)`` for each image that worked and
    append ``(path, reason)`` to ``problems`` for each that did not."""
    by_key = {r.id: r for r in records}
    with make_executor(workers=workers, executor=executor) as ex:
        for res in iter_segment_images(
            ((r.id, r.path) for r in records), segmenter, executor=ex, cache=cache_dir, progress=progress, total=len(records)
        ):
            rec = by_key[res.key]
            if res.error is not None:  # the reason alone: the report names the path once
                problems.append((str(rec.path), res.error.removeprefix(f"{rec.path}: ")))
                continue
            yield rec, res


def segment_dataset(
    store: Any,
    folder: Any,
    segmenter: Segmenter,
    executor: Executor | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
) -> SegmentRunReport:
    """Segment every image of an :class:`~workbench.data.datasets.ImageFolder` and store the segments.

    Each image is added to ``store`` (``add_image`` with its file's SHA-256, size and class folder) and
    its segments replace those of the same image and settings hash. ``executor`` wins over ``workers``;
    ``workers > 1`` starts a local process pool for the run (see :func:`workbench.parallel.executor`).
    Images that fail are listed in the report's ``problems`` and the run goes on.
    """
    shash = settings_hash(segmenter)
    report = SegmentRunReport(shash)
    records = list(folder.records)
    t0 = time.perf_counter()
    for rec, res in _segment_records(records, segmenter, executor, workers, cache_dir, progress, report.problems):
        h, w = res.shape
        try:
            image_id = store.add_image(rec.id, res.image_sha256, w, h, rec.label)
            store.add_segments(image_id, shash, res.segments)
        except WorkbenchError as e:  # e.g. the store refuses to replace labelled segments
            report.problems.append((str(rec.path), str(e)))
            continue
        report.images += 1
        report.segments += len(res.segments)
        report.cached += res.cached
    report.seconds = time.perf_counter() - t0
    return report


# ------------------------------------------------------------------------------------- part recall
@dataclass
class PartRecallReport:
    """Per part concept: ground-truth instances, how many some segment covers with IoU >= ``iou``."""

    segmenter: str
    settings: dict
    iou: float
    images: int
    segments: int
    instances: dict[str, int]
    found: dict[str, int]  # instances one segment covers with IoU >= iou
    found_union: dict[str, int]  # instances the union of the segments mostly inside them covers (over-segmented but recoverable)
    seconds: float = 0.0
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def recall(self) -> dict[str, float]:
        return {p: (self.found[p] / n if n else math.nan) for p, n in self.instances.items()}

    @property
    def union_recall(self) -> dict[str, float]:
        return {p: (self.found_union[p] / n if n else math.nan) for p, n in self.instances.items()}

    @property
    def segments_per_image(self) -> float:
        return self.segments / self.images if self.images else math.nan

    def to_dict(self) -> dict:
        return {
            "segmenter": self.segmenter,
            "settings": self.settings,
            "iou": self.iou,
            "images": self.images,
            "segments_per_image": self.segments_per_image,
            "parts": {
                p: {"instances": n, "found": self.found[p], "recall": self.recall[p], "union_recall": self.union_recall[p]}
                for p, n in self.instances.items()
            },
            "seconds": self.seconds,
        }

    def table(self) -> str:
        """A Markdown table: part, instances, found, recall; then segments per image."""
        rows = ["| part | instances | recall | union recall |", "| --- | ---: | ---: | ---: |"]
        for p, n in self.instances.items():
            rows.append(f"| {p} | {n} | {self.recall[p]:.2f} | {self.union_recall[p]:.2f} |")
        rows.append(f"\n{self.images} images, {self.segments_per_image:.1f} segments per image (IoU >= {self.iou})")
        return "\n".join(rows)


def part_instances(parts: np.ndarray, parts_map: Mapping[int, str], min_area: int = 20) -> list[tuple[str, np.ndarray]]:
    """Ground-truth part instances of one image: ``(concept id, bool mask)`` per connected component
    (8-connected) of each part's mask; components under ``min_area`` pixels (slivers left by occlusion)
    are ignored. Parts of the same type that touch (two overlapping petals) form one instance.
    """
    from scipy import ndimage

    out = []
    for index, concept in sorted(parts_map.items()):
        m = parts == int(index)
        if not m.any():
            continue
        lab, n = ndimage.label(m, structure=np.ones((3, 3), bool))
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())
        for i in range(1, n + 1):
            if sizes[i] >= min_area:
                out.append((concept, lab == i))
    return out


def _match(instance: np.ndarray, segments: list[Segment]) -> tuple[float, float]:
    """``(best IoU of one segment, IoU of the union of the segments lying mostly (>= 50 %) inside)``."""
    ys, xs = np.nonzero(instance)
    iy0, iy1, ix0, ix1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    n_inst = ys.size
    best, union_inter, union_area = 0.0, 0, 0
    for s in segments:
        x0, y0, x1, y1 = s.bbox
        if x0 >= ix1 or x1 <= ix0 or y0 >= iy1 or y1 <= iy0 or s.area == 0:
            continue
        # the overlap of the two boxes, read from the segment's mask inside its own box
        oy0, oy1, ox0, ox1 = max(y0, iy0), min(y1, iy1), max(x0, ix0), min(x1, ix1)
        inside = s.crop_mask()[oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0]
        inter = int(np.count_nonzero(inside & instance[oy0:oy1, ox0:ox1]))
        if inter:
            best = max(best, inter / (n_inst + s.area - inter))
            if inter * 2 >= s.area:  # weight-free segments are disjoint, so the union adds up
                union_inter += inter
                union_area += s.area
    union = union_inter / (n_inst + union_area - union_inter) if union_area else 0.0
    return best, union


def part_recall(
    folder: Any,
    segmenter: Segmenter,
    *,
    iou: float = 0.5,
    classes: Iterable[str] | None = None,
    limit: int | None = None,
    min_instance_area: int = 20,
    executor: Executor | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    progress: bool = False,
) -> PartRecallReport:
    """Part recall of ``segmenter`` on an image folder with ground-truth part masks.

    For each part concept in ``folder.parts_map``: ``recall``, the fraction of ground-truth instances
    (see :func:`part_instances`) that one segment covers with IoU >= ``iou``; ``union_recall``, the
    fraction whose pure pieces (segments lying at least half inside the instance) together cover it
    with IoU >= ``iou`` (over-segmented, but the labeler can still recover it); segments per image.
    ``classes`` restricts to some class folders (e.g. ``["daisy"]``), ``limit`` to the first N images.
    """
    records = [r for r in folder.records if r.parts_path is not None and (classes is None or r.label in set(classes))]
    if limit is not None:
        records = records[:limit]
    parts_map = {int(k): v for k, v in folder.parts_map.items()}
    concepts = list(dict.fromkeys(parts_map.values()))
    instances = dict.fromkeys(concepts, 0)
    found = dict.fromkeys(concepts, 0)
    found_union = dict.fromkeys(concepts, 0)
    report = PartRecallReport(segmenter.name, segmenter.settings, iou, 0, 0, instances, found, found_union)
    t0 = time.perf_counter()
    for rec, res in _segment_records(records, segmenter, executor, workers, cache_dir, progress, report.problems):
        try:
            gt = folder.load_parts(rec)
        except WorkbenchError as e:
            report.problems.append((str(rec.parts_path), str(e)))
            continue
        report.images += 1
        report.segments += len(res.segments)
        for concept, inst in part_instances(gt, parts_map, min_instance_area):
            instances[concept] += 1
            best, union = _match(inst, res.segments)
            found[concept] += best >= iou
            found_union[concept] += union >= iou
    report.seconds = time.perf_counter() - t0
    # keep only concepts that occurred
    for c in [c for c, n in instances.items() if n == 0]:
        del instances[c], found[c], found_union[c]
    return report
