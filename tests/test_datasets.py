"""Tests for workbench/datasets.py: the hostile image corpus, the image folder, and the demo set."""
from __future__ import annotations

import io
import json
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.data.datasets import (
    DEMO_PARTS,
    ImageFolder,
    check_dataset,
    generate_demo,
    load_image,
)
from workbench.errors import DatasetError, ImageLoadError


# ------------------------------------------------------------------------------------------ helpers
def _noise_rgb(w: int = 64, h: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encoded(array: np.ndarray, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(array).save(b, fmt, **kw)
    return b.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose valid IHDR (with a correct CRC) claims width x height RGB pixels, with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _expect_error(path: Path, *words: str, **kw) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        load_image(path, **kw)
    err = info.value
    assert err.path == path and path.name in str(err)
    assert err.reason and any(w in err.reason.lower() for w in words), err.reason
    return err


# ------------------------------------------------------------------------------------ hostile files
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("where", [4, 8, 20, 60, 200, "half", "last-200"])
def test_truncated_files_are_refused_by_name(tmp_path, fmt, where):
    data = _encoded(_noise_rgb(), fmt)
    cut = {"half": len(data) // 2, "last-200": len(data) - 200}.get(where, where)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[:cut])
    _expect_error(path, "truncated", "not an image", "corrupt")


def test_complete_file_loads_as_reference(tmp_path):
    rgb = _noise_rgb()
    path = tmp_path / "ok.png"
    path.write_bytes(_encoded(rgb, "PNG"))
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
    np.testing.assert_array_equal(out, rgb)


def test_empty_missing_folder_and_non_image(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    _expect_error(tmp_path / "empty.jpg", "empty")
    _expect_error(tmp_path / "missing.png", "not found")
    (tmp_path / "dir.png").mkdir()
    _expect_error(tmp_path / "dir.png", "folder")
    (tmp_path / "notes.png").write_text("this is not an image, just text\n" * 20)
    _expect_error(tmp_path / "notes.png", "not an image")
    (tmp_path / "random.gif").write_bytes(np.random.default_rng(1).bytes(5000))
    _expect_error(tmp_path / "random.gif", "not an image")


def test_decompression_bomb_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(50_000, 50_000))
    assert path.stat().st_size < 200
    err = _expect_error(path, "decompression bomb")
    assert "50000x50000" in err.reason or "2,500,000,000" in err.reason
    # even with our own limit lifted, Pillow's hard limit still refuses it cleanly
    _expect_error(path, "decompression bomb", max_pixels=None)


def test_max_pixels_is_checked_from_the_header(tmp_path):
    below_pillow = tmp_path / "big.png"  # 9000 x 8000 = 72 M: under Pillow's hard limit, over ours
    below_pillow.write_bytes(_png_header_only(9000, 8000))
    err = _expect_error(below_pillow, "decompression bomb")
    assert "9000x8000" in err.reason
    small = tmp_path / "small.png"
    small.write_bytes(_encoded(_noise_rgb(100, 100), "PNG"))
    assert load_image(small).shape == (100, 100, 3)
    _expect_error(small, "decompression bomb", max_pixels=5000)


def test_no_pillow_warning_escapes(tmp_path):
    # 10000 x 9000 = 90 M pixels: over PIL.Image.MAX_IMAGE_PIXELS, so Pillow warns while opening
    path = tmp_path / "warns.png"
    path.write_bytes(_png_header_only(10_000, 9_000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageLoadError):
            load_image(path, max_pixels=None)
    assert caught == []


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 24), (255, 0, 0, 0)).save(path, quality=95)  # pure cyan ink
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    r, g, b = out[12, 16].astype(int)
    assert r < 40 and g > 215 and b > 215


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (8, 1))
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    out = load_image(path)
    assert out.shape == (8, 256, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], (ramp >> 8).astype(np.uint8))
    assert np.all(out[..., 0] == out[..., 2])
    assert (out == 255).mean() < 0.01  # clipping would saturate almost everything


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (20, 10), 0)
    im.putpalette([0, 255, 0] + [255, 0, 0] + [0] * 762)  # index 0 green (transparent), 1 red
    im.paste(1, (10, 0, 20, 10))
    path = tmp_path / "pal.png"
    im.save(path, transparency=0)
    out = load_image(path)
    assert out.shape == (10, 20, 3)
    assert tuple(out[5, 2]) == (0, 0, 0)  # transparent -> black background (not its green)
    assert tuple(out[5, 15]) == (255, 0, 0)
    white = load_image(path, background=(255, 255, 255))
    assert tuple(white[5, 2]) == (255, 255, 255)


def test_plain_palette_grayscale_and_bilevel(tmp_path):
    p = Image.new("P", (8, 8), 3)
    p.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0] * 756)
    p.save(tmp_path / "p.gif")
    assert tuple(load_image(tmp_path / "p.gif")[0, 0]) == (10, 20, 30)
    Image.new("L", (8, 8), 77).save(tmp_path / "l.png")
    assert tuple(load_image(tmp_path / "l.png")[3, 3]) == (77, 77, 77)
    Image.new("1", (8, 8), 1).save(tmp_path / "one.bmp")
    assert tuple(load_image(tmp_path / "one.bmp")[3, 3]) == (255, 255, 255)


def test_rgba_and_la_composited_on_black(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[:, :3] = (255, 0, 0, 128)
    rgba[:, 3:] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.shape == (4, 6, 3)
    assert abs(int(out[0, 0, 0]) - 128) <= 1 and out[0, 0, 1] == 0
    assert tuple(out[0, 5]) == (0, 0, 255)
    la = Image.new("LA", (4, 4), (200, 255))
    la.putpixel((0, 0), (200, 0))
    la.save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png")
    assert tuple(out[2, 2]) == (200, 200, 200) and tuple(out[0, 0]) == (0, 0, 0)


def test_rgb_with_a_transparent_colour(tmp_path):
    a = np.zeros((4, 4, 3), np.uint8)
    a[0, 0] = (10, 20, 30)
    a[1, 1] = (200, 0, 0)
    Image.fromarray(a).save(tmp_path / "t.png", transparency=(10, 20, 30))
    out = load_image(tmp_path / "t.png", background=(255, 255, 255))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[1, 1]) == (200, 0, 0)


def test_corrupt_exif_keeps_the_picture(tmp_path):
    path = tmp_path / "c.jpg"
    Image.new("RGB", (30, 20), (1, 2, 3)).save(path, exif=b"Exif\x00\x00MM\x00*garbage")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_image(path).shape == (20, 30, 3)
    assert caught == []


# The EXIF meaning of each Orientation value, written independently of Pillow: how the stored
# pixels relate to the upright picture U (H x W). stored[i, j] = U[...].
_STORED_FROM_UPRIGHT = {
    1: lambda u: u,
    2: lambda u: u[:, ::-1],  # row 0 top, column 0 right
    3: lambda u: u[::-1, ::-1],  # row 0 bottom, column 0 right
    4: lambda u: u[::-1, :],  # row 0 bottom, column 0 left
    5: lambda u: u.transpose(1, 0, 2),  # row 0 left, column 0 top
    6: lambda u: np.rot90(u, 1),  # row 0 right, column 0 top
    7: lambda u: u[::-1, ::-1].transpose(1, 0, 2),  # row 0 right, column 0 bottom
    8: lambda u: np.rot90(u, -1),  # row 0 left, column 0 bottom
}
_QUADRANTS = {(0, 0): (255, 0, 0), (0, 1): (0, 255, 0), (1, 0): (0, 0, 255), (1, 1): (255, 255, 255)}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    h, w = 32, 48
    upright = np.zeros((h, w, 3), np.uint8)
    for (qy, qx), colour in _QUADRANTS.items():
        upright[qy * h // 2:(qy + 1) * h // 2, qx * w // 2:(qx + 1) * w // 2] = colour
    stored = np.ascontiguousarray(_STORED_FROM_UPRIGHT[orientation](upright))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif.tobytes())
    out = load_image(path)
    assert out.shape == (h, w, 3), f"orientation {orientation}: not upright"
    for (qy, qx), colour in _QUADRANTS.items():
        got = out[qy * h // 2 + h // 4, qx * w // 2 + w // 4].astype(int)
        assert np.abs(got - colour).max() < 40, (orientation, (qy, qx), got)


def test_animated_gif_and_png_give_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:], duration=50)
    for name in ("anim.gif", "anim.png"):
        with Image.open(tmp_path / name) as im:
            assert getattr(im, "n_frames", 1) == 3
        out = load_image(tmp_path / name)
        assert out.shape == (16, 16, 3)
        assert out[8, 8, 0] > 200 and out[8, 8, 2] < 50, name


def test_twelve_megapixel_image_loads(tmp_path):
    path = tmp_path / "big.jpg"
    big = Image.new("RGB", (4000, 3000), (30, 90, 160))
    big.paste((250, 250, 0), (0, 0, 100, 100))
    big.save(path, quality=80)
    del big
    out = load_image(path)
    assert out.shape == (3000, 4000, 3) and out.dtype == np.uint8
    assert out[50, 50, 2] < 60 and out[1500, 2000, 2] > 130


# -------------------------------------------------------------------------------------- image folder
def test_image_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="nowhere.*not found"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(_encoded(_noise_rgb(), "PNG"))
    with pytest.raises(DatasetError, match=r"flat: no class folders"):
        ImageFolder(tmp_path / "flat")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cats").mkdir()
    (tmp_path / "bad" / "parts.json").write_text('{"0": "petal"}')
    with pytest.raises(DatasetError, match=r"parts\.json.*'0'"):
        ImageFolder(tmp_path / "bad")
    (tmp_path / "bad" / "parts.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match=r"parts\.json.*JSON object"):
        ImageFolder(tmp_path / "bad")


def _small_folder(root: Path) -> Path:
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    good = _noise_rgb(20, 10)
    (root / "cat" / "a.png").write_bytes(_encoded(good, "PNG"))
    (root / "cat" / "b.JPG").write_bytes(_encoded(good, "JPEG"))
    (root / "cat" / "c.png").write_bytes(_encoded(good, "PNG")[:100])  # truncated
    (root / "cat" / "notes.txt").write_text("ignored")
    (root / "dog" / "d.png").write_bytes(b"")  # empty
    (root / "dog" / "e.gif").write_bytes(_encoded(good, "GIF"))
    mask = np.zeros((10, 20), np.uint8)
    mask[:, :5] = 1
    Image.fromarray(mask, "L").save(root / "cat" / "a.parts.png")
    (root / "parts.json").write_text(json.dumps({"1": "ear"}))
    return root


def test_image_folder_skips_bad_images_and_reports_them(tmp_path):
    folder = ImageFolder(_small_folder(tmp_path / "ds"))
    assert folder.classes == ["cat", "dog"]
    assert [r.id for r in folder.records] == ["cat/a.png", "cat/b.JPG", "cat/c.png", "dog/d.png", "dog/e.gif"]
    assert folder.parts_map == {1: "ear"} and folder.has_parts
    a = folder.records[0]
    assert a.label == "cat" and a.parts_path == tmp_path / "ds" / "cat" / "a.parts.png"
    assert folder.records[1].parts_path is None
    loaded = [(r.id, img.shape) for r, img in folder.iter_images()]
    assert loaded == [("cat/a.png", (10, 20, 3)), ("cat/b.JPG", (10, 20, 3)), ("dog/e.gif", (10, 20, 3))]
    bad = {p.name: reason for p, reason in folder.problems}
    assert set(bad) == {"c.png", "d.png"}
    assert "truncated" in bad["c.png"] and "empty" in bad["d.png"]
    list(folder.iter_images())  # a second pass does not duplicate the problems
    assert len(folder.problems) == 2
    mask = folder.load_parts(a)
    assert mask.shape == (10, 20) and mask.dtype == np.int32 and set(np.unique(mask)) == {0, 1}
    with pytest.raises(DatasetError, match="no part mask"):
        folder.load_parts(folder.records[1])


def test_load_parts_validates_masks(tmp_path):
    root = _small_folder(tmp_path / "ds")
    folder = ImageFolder(root)
    a = folder.records[0]
    Image.fromarray(np.full((10, 20), 7, np.uint8), "L").save(a.parts_path)
    with pytest.raises(DatasetError, match=r"a\.parts\.png: mask indices \[7\] are not in"):
        folder.load_parts(a)
    Image.fromarray(np.zeros((11, 20), np.uint8), "L").save(a.parts_path)
    with pytest.raises(DatasetError, match="20x11 but its image a.png is 20x10"):
        folder.load_parts(a)
    Image.new("RGB", (20, 10)).save(a.parts_path)
    with pytest.raises(DatasetError, match="colour mode 'RGB'"):
        folder.load_parts(a)
    a.parts_path.write_bytes(b"junk")
    with pytest.raises(ImageLoadError, match="a.parts.png"):
        folder.load_parts(a)


def test_mask_follows_the_upright_image(tmp_path):
    root = tmp_path / "ds"
    (root / "x").mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30 wide x 20 high, upright 20 wide x 30 high
    Image.new("RGB", (30, 20), (9, 9, 9)).save(root / "x" / "r.jpg", exif=exif.tobytes())
    Image.fromarray(np.ones((30, 20), np.uint8), "L").save(root / "x" / "r.parts.png")
    (root / "parts.json").write_text('{"1": "thing"}')
    folder = ImageFolder(root)
    assert folder.load(folder.records[0]).shape[:2] == folder.load_parts(folder.records[0]).shape == (30, 20)


def test_check_dataset_report(tmp_path):
    root = _small_folder(tmp_path / "ds")
    Image.fromarray(np.zeros((4, 4), np.uint8), "L").save(root / "dog" / "zz.parts.png")  # orphan mask
    (root / "empty_class").mkdir()
    report = check_dataset(root)
    assert report.images == {"cat": 3, "dog": 2, "empty_class": 0}
    assert report.with_parts == {"cat": 1, "dog": 0, "empty_class": 0}
    names = sorted(p.name for p, _ in report.problems)
    assert names == ["c.png", "d.png", "empty_class", "zz.parts.png"]
    assert not report.ok
    text = str(report)
    assert "5 images in 3 classes" in text and "4 problem(s)" in text
    assert "problem: cat/c.png: truncated" in text and "problem: dog/zz.parts.png: part mask without an image" in text
    assert "1=ear" in text


# ----------------------------------------------------------------------------------------- demo set
@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> ImageFolder:
    return generate_demo(tmp_path_factory.mktemp("demo") / "set", n_per_class=16, size=128, seed=3)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_demo_layout_and_check(demo):
    assert demo.classes == ["daisy", "not_daisy"]
    assert len(demo.records) == 32 and all(r.parts_path is not None for r in demo.records)
    assert json.loads((demo.root / "parts.json").read_text()) == {str(k): v for k, v in DEMO_PARTS.items()}
    assert {"petal", "disk", "stem", "leaf"} <= set(DEMO_PARTS.values())
    report = check_dataset(demo.root)
    assert report.ok, str(report)
    assert report.images == report.with_parts == {"daisy": 16, "not_daisy": 16}
    assert not list(demo.root.parent.glob(".*tmp"))  # the staging folder is gone


def test_demo_is_deterministic(demo, tmp_path):
    again = generate_demo(tmp_path / "again", n_per_class=16, size=128, seed=3)
    assert _files(again.root) == _files(demo.root)
    other = generate_demo(tmp_path / "other", n_per_class=16, size=128, seed=4)
    a, b = _files(demo.root), _files(other.root)
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a if k.endswith(".png")) >= 30


def test_demo_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(DatasetError, match="mine: folder is not empty"):
        generate_demo(tmp_path / "mine", n_per_class=1, size=64)
    assert _files(tmp_path / "mine") == {"thesis.txt": b"precious"}
    first = generate_demo(tmp_path / "d", n_per_class=3, size=64, seed=1)
    assert len(first.records) == 6
    second = generate_demo(tmp_path / "d", n_per_class=1, size=64, seed=1)  # an earlier demo: replaced
    assert [r.id for r in second.records] == ["daisy/0000.png", "not_daisy/0000.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "mine"]
    with pytest.raises(DatasetError, match="n_per_class"):
        generate_demo(tmp_path / "e", n_per_class=0)


def test_demo_masks_match_what_is_drawn(demo):
    ids = {v: k for k, v in DEMO_PARTS.items()}
    pix: dict[str, list[np.ndarray]] = {name: [] for name in DEMO_PARTS.values()}
    pix["background"] = []
    for record, image in demo.iter_images():
        mask = demo.load_parts(record)
        assert mask.shape == image.shape[:2]
        present = set(np.unique(mask).tolist()) - {0}
        assert present <= set(DEMO_PARTS)
        if record.label == "daisy":
            assert {ids["petal"], ids["disk"]} <= present, record.id
        else:
            assert ids["petal"] not in present, record.id
        for k, name in DEMO_PARTS.items():
            pix[name].append(image[mask == k])
        pix["background"].append(image[mask == 0])
    px = {k: np.concatenate(v).astype(int) for k, v in pix.items() if v}
    assert demo.problems == []

    def frac(name, cond):
        p = px[name]
        return cond(p[:, 0], p[:, 1], p[:, 2]).mean()

    def white(r, g, b):
        return np.minimum(np.minimum(r, g), b) > 190

    def yellow(r, g, b):
        return (r > 170) & (g > 120) & (b < 110)

    def green(r, g, b):
        return (g > r) & (g > b)

    assert frac("petal", white) > 0.97
    assert frac("white_shape", white) > 0.9
    assert frac("disk", yellow) > 0.97
    assert frac("stem", green) > 0.97 and frac("leaf", green) > 0.97
    assert frac("other_petal", white) < 0.01 and frac("other_petal", yellow) < 0.05
    # backgrounds hold no accidental white or yellow blobs
    assert frac("background", white) < 0.002
    assert frac("background", yellow) < 0.002


def _colour_histograms(folder: ImageFolder) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for record, image in folder.iter_images():
        q = image.astype(int) // 64  # 4 levels per channel: 64 bins
        h = np.bincount((q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).ravel(), minlength=64) / q[..., 0].size
        xs.append(np.sqrt(h))
        ys.append(float(record.label == "daisy"))
    return np.array(xs), np.array(ys)


def _logistic_regression(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 2000, lr: float = 0.5):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = p - y
        w -= lr * (z.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return lambda x2: 1 / (1 + np.exp(-(((x2 - mu) / sd) @ w + b)))


def test_a_part_blind_colour_classifier_does_not_solve_the_demo(tmp_path):
    folder = generate_demo(tmp_path / "d", n_per_class=100, size=96, seed=11)
    x, y = _colour_histograms(folder)
    idx = np.random.default_rng(0).permutation(len(y))
    train, test = idx[:140], idx[140:]
    model = _logistic_regression(x[train], y[train])
    train_acc = ((model(x[train]) > 0.5) == y[train]).mean()
    test_acc = ((model(x[test]) > 0.5) == y[test]).mean()
    assert train_acc > 0.75  # the classifier works: colour carries real signal ...
    assert test_acc < 0.97, f"a colour histogram alone scores {test_acc:.2f} held out"  # ... but not all of it
