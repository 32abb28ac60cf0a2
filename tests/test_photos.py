"""Real photographs through every stage, and compact segments at any image size.

The photos are scikit-image's sample photographs (``tests/_photos.py``: shipped in its wheel, no
download), upscaled past the segmenter's working size so that every segment is mapped back from the
working size onto the original. What these tests show: a segment is its box, its area and the mask
inside the box, everywhere (segmenter, cache, store, crops, explanation); what the mapping gives is
exactly what the earlier full-size label map gave (so stored rows, cache entries and label rows made
before stay valid); segmenting, storing, cropping, labelling (the labeler's pictures), explaining and
the report's pictures all run on a real photo. What they do not show: part recall or accuracy on
photos (there are no part masks for them). The 12-megapixel memory check is in
``tests/test_hostile_photos.py``; the figures in ``benchmarks/bench_photos.py``.
"""
from __future__ import annotations

import base64
import io
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _photos import PHOTOS, photo  # noqa: E402

from workbench.data._segcache import CACHE_FORMAT, SegmentCache, _checksum, pack_segments  # noqa: E402
from workbench.data.datasets import ImageFolder, load_image  # noqa: E402
from workbench.data.segment import WeightFreeSegmenter, segment_dataset, settings_hash  # noqa: E402
from workbench.data.segments import (  # noqa: E402
    Segment,
    resize_labels,
    segments_from_labels,
    upscale_mask,
)
from workbench.data.store import LabelStore, SegmentData  # noqa: E402
from workbench.errors import SegmentationError, SettingsError  # noqa: E402
from workbench.workspace.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def full_size_reference(seg: WeightFreeSegmenter, image: np.ndarray) -> list[tuple[tuple, int, np.ndarray]]:
    """What the segmenter gave before segments were compact: the label map upscaled to the whole image,
    one full-size mask per label, cut to its box here only to compare. ``(bbox, area, mask in box)``."""
    h, w = image.shape[:2]
    labels = seg.labels(image)  # the full-size label map (the public method still builds it)
    scale = min(1.0, seg.settings["working_size"] / max(h, w))
    min_area, max_area = seg.settings["min_area"] / scale**2, seg.settings["max_area_fraction"] * h * w
    ids, counts = np.unique(labels, return_counts=True)
    keep = ids[(counts >= min_area) & (counts <= max_area)]
    slices = ndimage.find_objects(labels - labels.min() + 1)
    out = []
    for lab in keep.tolist():
        ys, xs = slices[lab - labels.min()]
        cut = labels[ys, xs] == lab
        out.append(((xs.start, ys.start, xs.stop, ys.stop), int(cut.sum()), cut))
    out.sort(key=lambda t: (t[0][1], t[0][0], t[0][3], t[0][2]))
    return out


# ------------------------------------------------------------------------------------ the Segment
def test_a_segment_holds_its_box_and_the_packed_mask_inside_it_only():
    image = photo("coffee", (1200, 800))
    segs = WeightFreeSegmenter().segment(image)
    assert 30 <= len(segs) <= 400
    for s in segs:
        x0, y0, x1, y1 = s.bbox
        assert s.shape == (800, 1200) and 0 <= x0 < x1 <= 1200 and 0 <= y0 < y1 <= 800
        assert s.bits.nbytes == ((y1 - y0) * (x1 - x0) + 7) // 8  # a bit per pixel of its box, nothing more
        assert s.crop_mask().shape == (y1 - y0, x1 - x0) and int(s.crop_mask().sum()) == s.area
        assert not any(isinstance(v, np.ndarray) and v.shape == (800, 1200) for v in (getattr(s, k) for k in s.__slots__))
    total = sum(s.bits.nbytes for s in segs)
    assert total < 800 * 1200 // 2  # all masks together: well under one full-size bool mask
    one = segs[len(segs) // 2]
    full = one.mask  # the full-image mask, built only when asked for
    assert full.shape == (800, 1200) and int(full.sum()) == one.area
    assert np.array_equal(Segment.from_mask(full).crop_mask(), one.crop_mask())


def test_segment_constructors_check_what_they_are_given():
    crop = np.ones((2, 3), bool)
    s = Segment.from_crop(crop, (4, 5, 7, 7), (10, 10))
    assert (s.bbox, s.area, s.shape) == ((4, 5, 7, 7), 6, (10, 10))
    assert Segment(s.mask, s.bbox, s.area).bbox == s.bbox  # the older form: a full-image mask
    with pytest.raises(SegmentationError, match="does not fit a 10x10 image"):
        Segment.from_crop(crop, (9, 5, 12, 7), (10, 10))
    with pytest.raises(SegmentationError, match="does not fit"):
        Segment.from_crop(crop, (4, 5, 8, 7), (10, 10))  # box 4 wide, mask 3 wide
    with pytest.raises(SegmentationError, match="do not fit"):
        Segment.from_packed(np.zeros(5, np.uint8), (0, 0, 3, 2), (10, 10), 6)
    with pytest.raises(SegmentationError, match="crop the image"):
        s.crop(np.zeros((10, 11, 3), np.uint8))


def test_a_crop_reads_only_the_box_and_equals_the_full_mask_crop():
    image = photo("rocket", (900, 600))
    for s in WeightFreeSegmenter().segment(image)[::7]:
        x0, y0, x1, y1 = s.bbox
        side = max(x1 - x0, y1 - y0)
        square = np.zeros((side, side, 3), np.uint8)
        oy, ox = (side - (y1 - y0)) // 2, (side - (x1 - x0)) // 2
        square[oy:oy + y1 - y0, ox:ox + x1 - x0] = image[y0:y1, x0:x1] * s.mask[y0:y1, x0:x1, None]
        want = square if side == 32 else np.asarray(Image.fromarray(square).resize((32, 32), Image.BILINEAR))
        assert np.array_equal(s.crop(image, 32), want)


# ------------------------------------------------------------------- mapped back from working size
@pytest.mark.parametrize("name,size,working", [("chelsea", (1203, 801), 512), ("coffee", (997, 661), 256),
                                               ("astronaut", (700, 700), 100), ("rocket", (333, 500), 512)])
def test_segments_mapped_back_equal_what_the_full_size_label_map_gave(name, size, working):
    image = photo(name, size)
    seg = WeightFreeSegmenter(working_size=working)
    new, old = seg.segment(image), full_size_reference(seg, image)
    assert len(new) == len(old) > 3
    for s, (box, area, cut) in zip(new, old):
        assert s.bbox == box and s.area == area
        assert np.array_equal(s.crop_mask(), cut)


def test_the_reference_comparison_can_fail():
    """A mapping off by one row would be caught: the reference differs from a shifted mask."""
    image = photo("chelsea", (1203, 801))
    seg = WeightFreeSegmenter()
    s, (box, _, cut) = seg.segment(image)[10], full_size_reference(seg, image)[10]
    shifted = np.roll(cut, 1, axis=0)
    assert s.bbox == box and not np.array_equal(s.crop_mask(), shifted)


def test_segments_from_labels_filters_by_area_in_the_original():
    labels = np.array([[0, 0, 1], [2, 2, 1]])
    segs = segments_from_labels(labels, (20, 30), min_area=60)  # each working pixel is 10 x 10
    assert [(s.bbox, s.area) for s in segs] == [((0, 0, 20, 10), 200), ((20, 0, 30, 20), 200), ((0, 10, 20, 20), 200)]
    assert segments_from_labels(labels, (20, 30), min_area=201) == []


def test_sam_masks_are_mapped_back_as_a_full_size_resize_would():
    rng = np.random.default_rng(0)
    for shape, big in [((48, 64), (300, 400)), ((64, 43), (1000, 671)), ((30, 30), (30, 30))]:
        small = ndimage.binary_opening(rng.random(shape) < 0.4)
        want = Segment.from_mask(resize_labels(small.astype(np.uint8), big).astype(bool))
        got = upscale_mask(small, big)
        assert (got.bbox, got.area, got.shape) == (want.bbox, want.area, want.shape)
        assert np.array_equal(got.crop_mask(), want.crop_mask())
    empty = upscale_mask(np.zeros((4, 4), bool), (40, 40))
    assert (empty.bbox, empty.area) == ((0, 0, 0, 0), 0)


# -------------------------------------------------------------------- store and cache: same bytes
def test_the_store_keeps_the_bytes_it_kept_before(tmp_path):
    """A compact segment is stored as the same row a full-image mask gave: old rows and new ones match."""
    image = photo("chelsea", (1000, 700))
    segs = WeightFreeSegmenter().segment(image)
    with LabelStore(tmp_path / "new.sqlite") as new, LabelStore(tmp_path / "old.sqlite") as old:
        for store, items in ((new, segs), (old, [SegmentData(s.bbox, s.area, s.mask) for s in segs])):
            img = store.add_image("a/x.jpg", "ab" * 32, 1000, 700, "a")
            store.add_segments(img, "h", items)
        a = new._read("SELECT x0, y0, x1, y1, area, mask_height, mask_width, mask FROM segments ORDER BY id")
        b = old._read("SELECT x0, y0, x1, y1, area, mask_height, mask_width, mask FROM segments ORDER BY id")
        assert a == b and len(a) == len(segs)
        rows = new.segments()
        assert all(np.array_equal(r.segment().crop(image, 32), s.crop(image, 32)) for r, s in zip(rows[::9], segs[::9]))
        assert new.add_segments(1, "h", segs) == [r.id for r in rows]  # the same segments again: kept, not duplicated


def test_a_cache_entry_written_uncompressed_by_an_earlier_release_still_reads(tmp_path):
    image = photo("astronaut", (600, 600))
    segs = WeightFreeSegmenter().segment(image)
    packed = pack_segments(segs, image.shape[:2])
    cache = SegmentCache(tmp_path)
    key = ("cd" * 32, "weightfree", "s1")
    path = cache.path(*key)
    path.parent.mkdir(parents=True)
    buf = io.BytesIO()  # exactly what the earlier release wrote: np.savez, not compressed
    np.savez(buf, checksum=_checksum(cache._key(*key), packed), **packed)
    path.write_bytes(buf.getvalue())
    assert CACHE_FORMAT == 1
    got = cache.get(*key)
    assert got is not None and not cache.corrupt
    assert all(np.array_equal(got[k], packed[k]) for k in packed)
    cache.put("ef" * 32, "weightfree", "s1", packed)  # written compressed now, and smaller
    assert cache.path("ef" * 32, "weightfree", "s1").stat().st_size < path.stat().st_size


def test_an_old_workspace_resegments_to_the_very_same_rows(tmp_path):
    """The store written by the release before the subpackages: segmenting its images again with the
    current code gives byte-identical rows, so every label row stays attached (nothing replaced)."""
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(ROOT / "tests" / "fixtures" / "old-workspace.tar.gz") as tar:
        tar.extractall(tmp_path, **safe)
    root = tmp_path / "old-workspace"
    with LabelStore(root / "ws" / "labels.sqlite") as store:
        before = store.segments()
        labels = store.labels()
        report = segment_dataset(store, ImageFolder(root / "data"), WeightFreeSegmenter(), progress=False)
        assert not report.problems and report.images == 12
        after = store.segments()
        assert [(r.id, r.bbox, r.area, r.packed) for r in after] == [(r.id, r.bbox, r.area, r.packed) for r in before]
        assert store.labels() == labels and len(labels) == 122


# -------------------------------------------------------------------------- the working-size setting
def test_the_working_size_setting_is_the_segmenters(daisy_ws):
    from workbench.models.job import workspace_segmenter

    default = workspace_segmenter(daisy_ws)
    assert settings_hash(default) == settings_hash(WeightFreeSegmenter())  # unset: nothing changes
    daisy_ws.save_settings(daisy_ws.settings.replace(working_size=1024))
    assert workspace_segmenter(daisy_ws).settings["working_size"] == 1024
    assert settings_hash(workspace_segmenter(daisy_ws)) != settings_hash(default)
    assert Settings(working_size=512, segmenter_options={"working_size": 512}).working_size == 512
    with pytest.raises(SettingsError, match="working_size' is 1024 but segmenter_options.working_size is 512"):
        Settings(working_size=1024, segmenter_options={"working_size": 512})
    with pytest.raises(SettingsError, match="between 16 and 16384"):
        Settings(working_size=8)


# ----------------------------------------------------------- a real photo through the workspace
@pytest.fixture
def photo_ws(trained_ws):
    """The trained daisy workspace with a real photo (1600 x 1200, JPEG) added and segmented."""
    data = trained_ws.dataset_root
    path = data / "daisy" / "photo-chelsea.jpg"
    Image.fromarray(photo("chelsea", (1600, 1200), variant=3)).save(path, quality=90)
    report = segment_dataset(trained_ws.store, ImageFolder(data), WeightFreeSegmenter(),
                             cache_dir=trained_ws.cache_dir / "segments", progress=False)
    assert not report.problems
    return trained_ws, path


def _png(data_url_or_bytes) -> np.ndarray:
    raw = data_url_or_bytes
    if isinstance(raw, str):
        raw = base64.b64decode(raw.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def test_a_real_photo_is_cropped_explained_and_drawn(photo_ws):
    from workbench.evaluation.evaluate import load_images
    from workbench.evaluation.report import render_explanation
    from workbench.models.inference import explain_image
    from workbench.models.train import collect

    ws, path = photo_ws
    row = ws.store.find_image("daisy/photo-chelsea.jpg")
    assert (row.width, row.height) == (1600, 1200)
    images, table = collect(ws.store, settings_hash(WeightFreeSegmenter()), 32, image_root=ws.dataset_root,
                            cache_dir=ws.cache_dir)
    i = images.paths.index("daisy/photo-chelsea.jpg")
    rows = table.of_image(i)
    assert len(rows) >= 30 and table.crops[rows].shape[1:] == (32, 32, 3) and table.crops[rows].max() > 0
    assert table.bboxes[rows][:, 2].max() > 1000  # boxes in the original's pixels, not the working size's

    pixels, ex, name = explain_image(ws, "daisy/photo-chelsea.jpg")
    assert pixels.shape == (1200, 1600, 3) and name == "daisy/photo-chelsea.jpg"
    boxes = [c.bbox for c in ex.concepts.values() if c.bbox is not None]
    assert boxes and all(0 <= b[0] < b[2] <= 1600 and 0 <= b[1] < b[3] <= 1200 for b in boxes)

    # the report's picture from a downscaled copy, its boxes mapped from the original's pixels
    small, _ = load_images(images, ws.dataset_root, max_side=400)
    assert small[i].shape == (300, 400, 3)
    ex.threshold = -1.0  # draw every part's box, fired or not
    full_png = _png(render_explanation(pixels, ex))
    mapped = _png(render_explanation(small[i], ex, image_size=(1600, 1200)))
    unmapped = _png(render_explanation(small[i], ex))  # boxes read as if in the copy's pixels: wrong places
    assert full_png.shape == mapped.shape == (192, 256, 3)

    def coloured(a):  # pixels of the drawn boxes (saturated colours the photo does not have)
        return (a.max(axis=2).astype(int) - a.min(axis=2)) > 150

    on = coloured(full_png)
    assert on.sum() > 50
    assert (coloured(mapped) & on).sum() > 0.6 * on.sum()
    assert (coloured(unmapped) & on).sum() < 0.5 * on.sum()


def test_the_labeler_shows_a_segment_of_a_real_photo(photo_ws):
    from workbench.jupyter.widgets.labeler import Labeler

    ws, _ = photo_ws
    row = ws.store.find_image("daisy/photo-chelsea.jpg")
    sid = ws.store.segments(image_id=row.id)[5].id
    labeler = Labeler(ws, author="test")
    try:
        labeler.goto(sid)
        cur = labeler.current
        assert labeler.error == "" and cur["segment_id"] == sid and cur["image"] == "daisy/photo-chelsea.jpg"
        context, crop = _png(cur["context"]), _png(cur["crop"])
        assert max(context.shape[:2]) == 384 and context.shape[:2] == (288, 384)
        assert max(crop.shape[:2]) == 192 and crop.std() > 5  # a picture, not a blank square
    finally:
        labeler.close()


def test_the_sample_photos_are_in_the_installed_wheel():
    for name in PHOTOS:
        a = photo(name)
        assert a.dtype == np.uint8 and a.ndim == 3 and min(a.shape[:2]) >= 256, name
    assert load_image(Path(__import__("_photos").photo_path("chelsea"))).shape == (300, 451, 3)


@pytest.mark.slow  # two subprocesses (`workbench segment`, `workbench run --quick`): ~15 s idle
def test_the_photo_benchmark_runs_at_its_tiny_size(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_photos

    res = bench_photos.run(tiny=True, work=tmp_path, log=lambda msg: None)
    one = res["segment_one"]
    assert one["workbench_segment"]["exit_code"] == 0 and one["library"]["segments"] > 30
    assert one["workbench_segment"]["peak_tree_mb"] >= one["workbench_segment"]["largest_process_mb"] > 50
    (quick,) = res["run_quick"]
    assert quick["exit_code"] == 0 and quick["photos"] == 2 and quick["images_segmented"] == 10
    assert "| `workbench run --quick`" in bench_photos.table(res)
