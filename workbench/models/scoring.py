"""Scoring many images at once: the saved hybrid over a folder, near what the hardware allows.

The per-image path (load, segment, crop each segment, one small forward pass per net) spends its
time on overheads, not arithmetic. Here::

    image ──hash──▶ segments (segment cache, else the segmenter) ──▶ crops (crop cache, else cut from
    the compact masks) ──▶ chunks of images: every crop of the chunk through each part net (batch norm
    folded in) and rule (features vectorised) in one batch ──▶ composites on arrays of scores ──▶
    explanations

- :func:`crop_segments` cuts every segment of an image with the same bytes as
  :meth:`workbench.data.segments.Segment.crop` (a test checks it byte for byte), at about twice its speed;
- :class:`CropCache` keeps each image's crops keyed by the *segments' content* (their boxes and
  masks, the image's hash and the crop size), so a segmenter change or a new crop size misses, and a
  cached image is scored without decoding it;
- :func:`score_folder` maps chunks of images over any ``concurrent.futures.Executor`` (local processes
  or a Dask client's executor; ``None``: inline), each chunk scored by the same code, so the results
  do not depend on where they ran. The rule models measure their crops vectorised too
  (:func:`workbench.models.rules.feature_matrix`);
- :func:`cached_segment_scores` keeps each part model's per-segment scores by model content and
  crops, so retraining (``train_hybrid(score_cache=...)``) scores only the parts that changed.

:func:`write_scores` writes the predictions and what fired as CSV and JSON (``workbench score``).
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from workbench._io import atomic_write_bytes, default_file_mode
from workbench.data._segcache import (
    SegmentCache,
    pack_segments,
    sha256_file,
    unpack_segments,
)
from workbench.data.datasets import is_image_name, load_image
from workbench.data.segments import Segment, Segmenter, as_rgb, settings_hash
from workbench.errors import WorkbenchError
from workbench.models.contract import ConceptModel
from workbench.models.fitting import check_uint8_images, using_torch_threads
from workbench.models.hybrid import Explanation, explanations, score_images
from workbench.models.nets import PartNet
from workbench.models.rules import get_rule
from workbench.ontology.graph import Ontology

__all__ = ["crop_segments", "CropCache", "fast_models", "model_key", "crops_key", "cached_segment_scores",
           "ImageScore", "ScoreRun", "score_folder", "iter_scores", "image_files", "write_scores", "CHUNK"]

#: Images scored together: their crops go through each net in one batch.
CHUNK = 32


# ------------------------------------------------------------------------------------------- crops
def crop_segments(image: np.ndarray, segments: Sequence[Segment], size: int = 32) -> np.ndarray:
    """Every segment's crop (uint8 N×size×size×3): the same bytes as ``np.stack([s.crop(image, size)
    for s in segments])`` at about twice its speed: each box's pixels masked straight into the padded
    square, one PIL bilinear resize per segment and nothing else per segment. (An exact re-implementation
    of PIL's resampling as integer matrix products was tried: it is slower than PIL's C loop on boxes of
    this size, and much slower where numpy's BLAS runs several threads on a busy machine.)"""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        image = as_rgb(image)
    out = np.zeros((len(segments), size, size, 3), np.uint8)
    for i, s in enumerate(segments):
        if image.shape[:2] != s.shape:
            raise WorkbenchError(
                f"segment {i} was cut from a {s.shape[1]}x{s.shape[0]} image but this one is "
                f"{image.shape[1]}x{image.shape[0]}: crop the image the segments were made from")
        x0, y0, x1, y1 = s.bbox
        h, w = y1 - y0, x1 - x0
        if h <= 0 or w <= 0:
            continue
        side = max(h, w)
        oy, ox = (side - h) // 2, (side - w) // 2
        square = out[i] if side == size else np.zeros((side, side, 3), np.uint8)
        np.multiply(image[y0:y1, x0:x1], s.crop_mask()[:, :, None], out=square[oy:oy + h, ox:ox + w])
        if side != size:
            out[i] = np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR), dtype=np.uint8)
    return out


def _write_cache_file(path: Path, data: bytes) -> None:
    """A cache entry written atomically (a reader sees the old file or the new one) but not fsynced:
    an entry lost or torn by a crash fails its checksum or shape check and is recomputed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------------- fast part nets
class _FoldedNet:
    """A fitted PartNet's prediction, for scoring only: each conv's batch norm folded into its weights
    and bias (and the 1/255 input scaling into the first conv), the 2×2 max-pool as two element-wise
    maxima (PyTorch's max_pool2d kernel is slow on these 6-channel maps) before the ReLU (they commute).
    Probabilities agree with ``PartNet.predict_proba`` to float32 rounding (a test checks 1e-5); about
    twice as fast. Built by :func:`fast_models` only for the TinyCNN layout it knows."""

    relations: tuple = ()

    def __init__(self, model: Any):
        self.model = model
        self.concept = model.concept
        self.batch = max(int(getattr(model, "_predict_batch", 512)), 1)
        self.threads = int(getattr(model, "torch_threads", 1) or 1)
        layers = list(model.module_.features)
        blocks = []
        i = 0
        with torch.no_grad():
            while i < len(layers):
                conv, bn, relu = layers[i:i + 3]
                if not (isinstance(conv, nn.Conv2d) and conv.bias is None and isinstance(bn, nn.BatchNorm2d)
                        and isinstance(relu, nn.ReLU) and conv.stride == (1, 1) and conv.groups == 1):
                    raise TypeError("not a TinyCNN block")
                i += 3
                pool = 1
                if i < len(layers) and isinstance(layers[i], nn.MaxPool2d):
                    k = layers[i].kernel_size
                    if k not in (2, (2, 2)) or layers[i].stride not in (2, (2, 2)) or layers[i].padding not in (0, (0, 0)):
                        raise TypeError("only 2×2 max-pools are folded")
                    pool, i = 2, i + 1
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                w = conv.weight * scale.view(-1, 1, 1, 1)
                if not blocks:
                    w = w / 255.0
                blocks.append((w.contiguous(), (bn.bias - bn.running_mean * scale).contiguous(), conv.padding, pool))
        self.blocks = blocks
        self.head = model.module_.head

    @staticmethod
    def _pool2(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if h % 2 or w % 2:
            x = x[:, :, : h - h % 2, : w - w % 2]
            h, w = h - h % 2, w - w % 2
        v = x.reshape(n, c, h // 2, 2, w)
        r = torch.maximum(v[:, :, :, 0], v[:, :, :, 1]).reshape(n, c, h // 2, w // 2, 2)
        return torch.maximum(r[..., 0], r[..., 1])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        Xt = check_uint8_images(X, self.concept, "segment crops", getattr(self.model, "crop_size", None))
        outs = []
        with using_torch_threads(self.threads), torch.no_grad():
            for start in range(0, len(Xt), self.batch):
                x = Xt[start:start + self.batch].permute(0, 3, 1, 2).float()
                for w, b, pad, pool in self.blocks:
                    x = F.conv2d(x, w, b, padding=pad)
                    if pool == 2:
                        x = self._pool2(x)
                    x = x.relu_()
                pooled = torch.cat([x.amax(dim=(2, 3)), x.mean(dim=(2, 3))], dim=1)
                outs.append(torch.sigmoid(self.head(pooled).squeeze(1)).double())
        return torch.cat(outs).numpy() if outs else np.zeros(0)


def fast_models(models: Mapping[str, Any]) -> dict[str, Any]:
    """``models`` with every fitted PartNet whose layout :class:`_FoldedNet` knows replaced by its folded
    form (the others as they are); for scoring, never for training."""
    out = {}
    for c, m in models.items():
        try:
            out[c] = _FoldedNet(m) if isinstance(m, PartNet) and hasattr(m, "module_") else m
        except TypeError:
            out[c] = m
    return out


#: Bumped when the crops' meaning or layout changes; part of every crop-cache key.
CROP_CACHE_FORMAT = 1


class CropCache:
    """Each image's crops under ``root``, keyed by the image's hash, its segments' content (boxes,
    areas, masks) and the crop size: ``<root>/<ab>/<key>.crops``, the SHA-256 of key and crops, then the
    crops' raw bytes (read without decoding the image or parsing a header). A damaged, truncated or
    foreign entry is a miss, recomputed and rewritten. Writes are atomic."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def key(image_hash: str, packed: Mapping[str, np.ndarray], size: int) -> str:
        h = hashlib.sha256(f"workbench-crops/{CROP_CACHE_FORMAT}/{image_hash}/{size}".encode())
        for name in ("shape", "bboxes", "areas", "offsets", "bits"):
            a = np.ascontiguousarray(packed[name])
            h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
            h.update(memoryview(a).cast("B") if a.size else b"")
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.crops"

    @staticmethod
    def _digest(key: str, payload: bytes | memoryview) -> bytes:
        return hashlib.sha256(key.encode() + b"/" + bytes(payload)).digest()

    def get(self, key: str, n: int, size: int) -> np.ndarray | None:
        try:
            data = self.path(key).read_bytes()
        except OSError:
            return None
        want = n * size * size * 3
        if len(data) != 32 + want or self._digest(key, memoryview(data)[32:]) != data[:32]:
            return None
        return np.frombuffer(data, dtype=np.uint8, offset=32).reshape(n, size, size, 3).copy()

    def put(self, key: str, crops: np.ndarray) -> None:
        payload = np.ascontiguousarray(crops, dtype=np.uint8).tobytes()
        _write_cache_file(self.path(key), self._digest(key, payload) + payload)


# ------------------------------------------------------------------------ per-segment score cache
#: Bumped when what a model computes from the same crops changes (e.g. the rule features); part of every key.
SCORE_CACHE_FORMAT = 1


def model_key(model: Any) -> str | None:
    """A digest of what a fitted model computes: its class, parameters, saved state and tensors (and a
    rule's current source); ``None`` for a model without the contract's saved state."""
    try:
        tensors, state = model._state()
        params = model.get_params()
    except Exception:  # noqa: BLE001 - a model outside the contract is simply not cached
        return None
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{SCORE_CACHE_FORMAT}/{type(model).__module__}.{type(model).__name__}".encode())
    h.update(json.dumps([params, state], sort_keys=True, default=str).encode())
    rule = getattr(model, "rule", None)
    if isinstance(rule, str):
        h.update(get_rule(rule).source_hash.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def crops_key(crops: np.ndarray) -> str:
    """A digest of a crop array (shape, dtype and bytes)."""
    a = np.ascontiguousarray(crops)
    h = hashlib.blake2b(f"{a.dtype.str}{a.shape}".encode(), digest_size=20)
    h.update(memoryview(a).cast("B") if a.size else b"")
    return h.hexdigest()


def cached_segment_scores(models: Mapping[str, Any], crops: np.ndarray, cache_dir: str | Path | None,
                          only: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Every segment's score by each model in ``models`` (``only``: these concepts), read from
    ``cache_dir`` when a model with the same content scored the same crops before, else computed and
    written there (``<key of model>-<key of crops>.npy``; a damaged file is recomputed). Without a
    cache folder, computed."""
    wanted = list(models) if only is None else [c for c in only if c in models]
    out: dict[str, np.ndarray] = {}
    root = Path(cache_dir) if cache_dir is not None else None
    ck = crops_key(crops) if root is not None else ""
    for c in wanted:
        m = models[c]
        mk = model_key(m) if root is not None else None
        path = root / f"{mk}-{ck}.npy" if (root is not None and mk is not None) else None
        if path is not None:
            try:
                v = np.load(path, allow_pickle=False)
                if v.shape == (len(crops),) and v.dtype == np.float64:
                    out[c] = v
                    continue
            except (OSError, ValueError, EOFError):
                pass
        v = np.asarray(m.predict_proba(crops), dtype=np.float64).reshape(-1) if len(crops) else np.zeros(0)
        out[c] = v
        if path is not None:
            buf = io.BytesIO()
            np.save(buf, v, allow_pickle=False)
            _write_cache_file(path, buf.getvalue())
    return out


# ------------------------------------------------------------------------------------------ scoring
@dataclass
class ImageScore:
    """One image's verdict: the root probability and every concept's firing (an :class:`Explanation`),
    or the error that kept it from being scored."""

    key: Any
    path: str
    explanation: Explanation | None
    segments: int = 0
    cached: str = ""  # "segments+crops", "segments", "" (computed)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "segments": self.segments}
        if self.error is not None:
            d["error"] = self.error
            return d
        assert self.explanation is not None
        e = self.explanation
        d.update(e.to_dict())
        d["fired"] = [c.concept for c in e.fired()]
        return d


@dataclass
class ScoreRun:
    """What :func:`score_folder` did: one :class:`ImageScore` per image, in input order."""

    results: list[ImageScore]
    seconds: float
    root: str
    concepts: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[ImageScore]:
        return [r for r in self.results if r.error is not None]

    @property
    def images_per_second(self) -> float:
        return len(self.results) / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        ok = [r for r in self.results if r.error is None]
        yes = sum(1 for r in ok if r.explanation is not None and r.explanation.predicted)
        cached = sum(1 for r in ok if r.cached == "segments+crops")
        line = (f"scored {len(ok)} image(s) in {self.seconds:.1f} s ({self.images_per_second:.1f} images/s): "
                f"{yes} predicted '{self.root}', {len(ok) - yes} not; {cached} from cached segments and crops")
        if self.problems:
            first = self.problems[0]
            line += f"; {len(self.problems)} could not be scored (first: {first.path}: {first.error})"
        return line


def _prepare(path: str, segmenter: Segmenter, cache_root: str | None, crop_size: int
             ) -> tuple[np.ndarray, np.ndarray, int, str]:
    """One image's boxes (n×4) and crops, from the caches when they hold them: ``(bboxes, crops, n, cached)``."""
    name, shash = segmenter.name, settings_hash(segmenter)
    seg_cache = SegmentCache(Path(cache_root) / "segments") if cache_root else None
    crop_cache = CropCache(Path(cache_root) / "crops-by-segments") if cache_root else None
    try:
        image_hash = sha256_file(path)
    except OSError as e:
        raise WorkbenchError(f"{path}: cannot read the image ({e.strerror or e})") from None
    image = None
    packed = seg_cache.get(image_hash, name, shash) if seg_cache is not None else None
    cached = "segments"
    if packed is None:
        cached = ""
        image = load_image(path)
        packed = pack_segments(segmenter.segment(image), image.shape[:2])
        if seg_cache is not None:
            seg_cache.put(image_hash, name, shash, packed)
    n = len(packed["bboxes"])
    key = CropCache.key(image_hash, packed, crop_size)
    crops = crop_cache.get(key, n, crop_size) if crop_cache is not None else None
    if crops is None:
        if image is None:
            image = load_image(path)
        _, segments = unpack_segments(packed)
        crops = crop_segments(image, segments, crop_size)
        if crop_cache is not None:
            crop_cache.put(key, crops)
    elif cached:
        cached = "segments+crops"
    return np.asarray(packed["bboxes"], dtype=np.int64).reshape(-1, 4), crops, n, cached


def _score_chunk(items: Sequence[tuple[Any, str]], ontology: Ontology | dict, models: Mapping[str, ConceptModel],
                 segmenter: Segmenter, cache_root: str | None, crop_size: int) -> list[ImageScore]:
    """Score a chunk of images (run in a worker or inline): each image's crops, then all of the
    chunk's crops through every model at once. ``ontology`` travels to workers as its plain dict."""
    if not isinstance(ontology, Ontology):
        ontology = Ontology.from_dict(ontology)
    done: list[tuple[Any, str, np.ndarray, np.ndarray, int, str]] = []
    failed: dict[int, ImageScore] = {}
    for i, (key, path) in enumerate(items):
        try:
            bboxes, crops, n, cached = _prepare(path, segmenter, cache_root, crop_size)
        except WorkbenchError as e:
            failed[i] = ImageScore(key, str(path), None, error=str(e))
            continue
        except Exception as e:  # noqa: BLE001 - one bad image must not stop a run; reported with its reason
            failed[i] = ImageScore(key, str(path), None, error=f"{type(e).__name__}: {e}")
            continue
        done.append((key, str(path), bboxes, crops, n, cached))
    out: list[ImageScore] = []
    if done:
        crops = np.concatenate([d[3] for d in done]) if any(d[4] for d in done) else \
            np.zeros((0, crop_size, crop_size, 3), np.uint8)
        bboxes = np.concatenate([d[2] for d in done])
        index = np.repeat(np.arange(len(done)), [d[4] for d in done])
        scores, best, _ = score_images(ontology, models, crops, index, len(done), bboxes)
        start = np.r_[0, np.cumsum([d[4] for d in done])]
        exps = explanations(ontology, models, scores, best, bboxes, start)
        out = [ImageScore(d[0], d[1], e, d[4], d[5]) for d, e in zip(done, exps)]
    results: list[ImageScore] = []
    it = iter(out)
    for i in range(len(items)):
        results.append(failed[i] if i in failed else next(it))
    return results


def image_files(folder: str | Path) -> list[Path]:
    """The images under ``folder`` (any depth, sorted; hidden files and ``*.parts.png`` masks left out)."""
    root = Path(folder)
    if not root.is_dir():
        raise WorkbenchError(f"{root}: not a folder of images")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in filenames if is_image_name(f)]
    return sorted(found)


def iter_scores(
    paths: Iterable[str | Path],
    ontology: Ontology,
    models: Mapping[str, ConceptModel],
    segmenter: Segmenter,
    *,
    cache_dir: str | Path | None = None,
    crop_size: int = 32,
    executor: Executor | None = None,
    chunk: int = CHUNK,
    max_in_flight: int | None = None,
) -> Iterator[list[ImageScore]]:
    """Yield each chunk's :class:`ImageScore` list, in input order (see :func:`score_folder`)."""
    items = [(str(p), str(p)) for p in paths]
    chunks = [items[i:i + chunk] for i in range(0, len(items), max(1, chunk))]
    cache_root = str(cache_dir) if cache_dir is not None else None
    models = fast_models(models)
    if executor is None:
        for c in chunks:
            yield _score_chunk(c, ontology, models, segmenter, cache_root, crop_size)
        return
    if max_in_flight is None:
        max_in_flight = 2 * max(1, getattr(executor, "_max_workers", 2) or 2)
    pending: deque = deque()

    def collect(entry: tuple) -> list[ImageScore]:
        fut, c = entry
        try:
            return fut.result()
        except Exception as e:  # noqa: BLE001 - a worker that died is a chunk of failed images, reported
            return [ImageScore(k, p, None, error=f"worker failed: {type(e).__name__}: {e}") for k, p in c]

    plain = ontology.to_dict()  # an Ontology does not pickle; its dict does
    for c in chunks:
        pending.append((executor.submit(_score_chunk, c, plain, models, segmenter, cache_root, crop_size), c))
        if len(pending) >= max_in_flight:
            yield collect(pending.popleft())
    while pending:
        yield collect(pending.popleft())


def score_folder(
    paths: Iterable[str | Path],
    ontology: Ontology,
    models: Mapping[str, ConceptModel],
    segmenter: Segmenter,
    *,
    cache_dir: str | Path | None = None,
    crop_size: int = 32,
    executor: Executor | None = None,
    chunk: int = CHUNK,
    progress: bool = False,
) -> ScoreRun:
    """Score every image in ``paths`` with ``models`` composed along ``ontology``.

    Each image's segments come from ``cache_dir/segments`` (the workspace's segment cache) or the
    segmenter, its crops from ``cache_dir/crops-by-segments`` or :func:`crop_segments`; both caches
    are filled as it goes. Images go in chunks of ``chunk`` through ``executor`` (``None``: inline);
    the scores are the same wherever a chunk runs. A file that cannot be read is an
    :class:`ImageScore` with ``error`` set; the run goes on.
    """
    from tqdm.auto import tqdm

    paths = list(paths)
    t0 = time.perf_counter()
    results: list[ImageScore] = []
    with tqdm(total=len(paths), unit="img", desc="score", disable=not progress, smoothing=0.1) as bar:
        for part in iter_scores(paths, ontology, models, segmenter, cache_dir=cache_dir, crop_size=crop_size,
                                executor=executor, chunk=chunk):
            results.extend(part)
            bar.update(len(part))
    return ScoreRun(results, time.perf_counter() - t0, ontology.root, list(ontology.bottom_up()))


# ------------------------------------------------------------------------------------------- files
def write_scores(run: ScoreRun, out: str | Path, base: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``run`` as ``<out>.csv`` (one row per image: path, probability, prediction, the concepts
    that fired, every concept's score, error) and ``<out>.json`` (every explanation: per concept its
    score and, for parts, the segment and box that fired). ``out`` may end in .csv or .json; paths are
    written relative to ``base`` when under it. Returns both paths."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix.lower() in (".csv", ".json") else out
    csv_path, json_path = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".json")

    def rel(p: str) -> str:
        if base is None:
            return p
        try:
            return str(Path(p).resolve().relative_to(Path(base).resolve()))
        except ValueError:
            return p

    concepts = run.concepts
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "probability", "predicted", "fired", *concepts, "segments", "error"])
    for r in run.results:
        if r.error is not None or r.explanation is None:
            w.writerow([rel(r.path), "", "", "", *[""] * len(concepts), r.segments, r.error])
            continue
        e = r.explanation
        w.writerow([rel(r.path), f"{e.probability:.4f}", int(e.predicted), ";".join(c.concept for c in e.fired()),
                    *[f"{e.concepts[c].score:.4f}" for c in concepts], r.segments, ""])
    atomic_write_bytes(csv_path, buf.getvalue().encode())
    doc = {"root": run.root, "images": len(run.results), "seconds": round(run.seconds, 3),
           "results": [{**r.to_dict(), "path": rel(r.path)} for r in run.results]}
    atomic_write_bytes(json_path, (json.dumps(doc, indent=1) + "\n").encode())
    return csv_path, json_path
