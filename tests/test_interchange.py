"""Part annotations in and out (workbench/data/interchange.py, `workbench dataset import|export`).

Every fixture is written here, in each format: a PartImageNet-like COCO file (category ids from 0, part
categories under object supercategories, file names without their synset folder, one- and two-point
polygons), LabelMe JSON files, indexed and colour masks with a legend. The expected masks come from the
formats' own reference code where there is one (pycocotools' COCO.annToMask) or from pixels set by hand.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pycocotools.mask as coco_mask
import pytest
from PIL import Image, ImageDraw
from pycocotools.coco import COCO

from workbench.cli import main
from workbench.data.datasets import ImageFolder
from workbench.data.interchange import (
    concept_slug,
    export_coco_store,
    import_coco,
    import_labelme,
    import_masks,
    read_mapping,
)
from workbench.data.segments import Segment
from workbench.errors import DatasetError
from workbench.ontology.graph import Concept, Ontology
from workbench.workspace.folder import Workspace
from workbench.workspace.settings import Settings

W, H = 40, 30


def _image(path: Path, w: int = W, h: int = H, seed: int = 0, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, format=fmt)
    return path


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _mask(path: Path) -> np.ndarray:
    with Image.open(path) as m:
        return np.asarray(m).astype(np.int64)


def _rect(x0, y0, x1, y1):
    return [x0, y0, x1, y0, x1, y1, x0, y1]


# ------------------------------------------------------------------------------------------- COCO
@pytest.fixture
def partimagenet(tmp_path):
    """A PartImageNet-shaped COCO file: images in train/<synset>/, file_name without the synset folder."""
    root = tmp_path / "partimagenet"
    _image(root / "train" / "n01440764" / "n01440764_1.JPEG", seed=1, fmt="JPEG")
    _image(root / "train" / "n01440764" / "n01440764_2.JPEG", seed=2, fmt="JPEG")
    _image(root / "train" / "n02085620" / "n02085620_7.JPEG", seed=3, fmt="JPEG")
    _image(root / "train" / "n02085620" / "n02085620_9.JPEG", seed=4, fmt="JPEG")  # no annotations
    rle = np.zeros((H, W), np.uint8)
    rle[20:25, 30:38] = 1
    counts, flat, run, value = [], rle.flatten(order="F"), 0, 0  # uncompressed COCO RLE, column-major
    for v in flat:
        if v != value:
            counts.append(run)
            run, value = 0, v
        run += 1
    counts.append(run)
    compressed = coco_mask.encode(np.asfortranarray(rle))
    doc = {
        "images": [
            {"id": 10, "file_name": "n01440764_1.JPEG", "width": W, "height": H},
            {"id": 11, "file_name": "n01440764_2.JPEG", "width": W, "height": H},
            {"id": 12, "file_name": "n02085620_7.JPEG", "width": W, "height": H},
            {"id": 13, "file_name": "n02085620_9.JPEG", "width": W, "height": H},
        ],
        "categories": [
            {"id": 0, "name": "Fish Head", "supercategory": "Fish"},
            {"id": 1, "name": "Fish Body", "supercategory": "Fish"},
            {"id": 2, "name": "Quadruped Head", "supercategory": "Quadruped"},
            {"id": 3, "name": "Quadruped Body", "supercategory": "Quadruped"},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1, "segmentation": [_rect(2, 2, 30, 20)], "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 0, "segmentation": [_rect(25, 5, 35, 15), [1, 1, 3, 3]],
             "iscrowd": 0},  # overlaps the body; the second polygon has two points (no area)
            {"id": 3, "image_id": 11, "category_id": 1, "iscrowd": 1,
             "segmentation": {"size": [H, W], "counts": counts}},
            {"id": 4, "image_id": 11, "category_id": 0, "segmentation": [[5.5, 4.0, 12.25, 4.5, 9.0, 14.75]],
             "iscrowd": 0},
            {"id": 5, "image_id": 12, "category_id": 3, "iscrowd": 1,
             "segmentation": {"size": [H, W], "counts": compressed["counts"].decode()}},
            {"id": 6, "image_id": 12, "category_id": 2, "segmentation": [[4, 4]], "iscrowd": 0},  # one point
        ],
    }
    ann = root / "train.json"
    ann.write_text(json.dumps(doc))
    return ann


@pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")  # cocoapi's annToMask, the reference
def test_partimagenet_coco_imports_as_it_is(partimagenet, tmp_path):
    src = partimagenet.parent
    before = _digest(src)
    out = tmp_path / "out"
    rep = import_coco(partimagenet, out, images=src / "train")
    assert _digest(src) == before  # the sources are never written
    assert json.loads((out / "parts.json").read_text()) == {
        "1": "fish_head", "2": "fish_body", "3": "quadruped_head", "4": "quadruped_body"}  # ids from 0: renumbered
    folder = ImageFolder(out)
    assert folder.classes == ["fish", "quadruped"]
    assert [r.id for r in folder.records] == ["fish/n01440764_1.JPEG", "fish/n01440764_2.JPEG",
                                             "quadruped/n02085620_7.JPEG"]
    assert rep.images == 3 and rep.with_parts == 3 and rep.linked == 3
    assert rep.notes["polygons with fewer than 3 points left out (no area)"] == 2
    assert rep.notes["images without annotations left out (their class is unknown: --unannotated-class NAME)"] == 1
    # each part's pixels are exactly what the COCO reference code draws; the smaller head wins over the body
    coco = COCO(str(partimagenet))
    index = {"Fish Head": 1, "Fish Body": 2, "Quadruped Head": 3, "Quadruped Body": 4}
    for rec, image_id in zip(folder.records, (10, 11, 12)):
        got = folder.load_parts(rec)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        for a in anns:  # cocoapi itself fails on polygons of one or two points: they have no area
            if isinstance(a["segmentation"], list):
                a["segmentation"] = [p for p in a["segmentation"] if len(p) >= 6]
        anns = sorted((a for a in anns if a["segmentation"]), key=lambda a: -int(coco.annToMask(a).sum()))
        want = np.zeros((H, W), np.int64)
        for a in anns:
            want[coco.annToMask(a).astype(bool)] = index[coco.loadCats([a["category_id"]])[0]["name"]]
        assert np.array_equal(got, want), rec.id
    head_and_body = folder.load_parts(folder.records[0])
    assert head_and_body[10, 28] == 1 and head_and_body[10, 10] == 2
    assert (out / "fish" / "n01440764_1.JPEG").stat().st_ino == (src / "train" / "n01440764" / "n01440764_1.JPEG").stat().st_ino
    marker = json.loads((out / "import.json").read_text())
    assert marker["format"] == "coco" and "smaller annotation wins" in marker["overlaps"]


def test_coco_class_choices_map_and_unannotated_images(partimagenet, tmp_path):
    images = partimagenet.parent / "train"
    mapping_file = tmp_path / "map.yaml"
    mapping_file.write_text('"Fish Head": head\n"Quadruped Head": head\n"Fish Body": body\n"Quadruped Body": null\n')
    rep = import_coco(partimagenet, tmp_path / "a", images=images, mapping=read_mapping(mapping_file),
                      unannotated_class="Not Quadruped", copy=True)
    assert json.loads((tmp_path / "a" / "parts.json").read_text()) == {"1": "head", "2": "body"}
    assert sorted(rep.classes) == ["fish", "not_quadruped", "quadruped"] and rep.copied == 4 and rep.linked == 0
    assert rep.notes["categories left out by the map"] == 1
    folder = ImageFolder(tmp_path / "a")
    unannotated = next(r for r in folder.records if r.label == "not_quadruped")
    assert not folder.load_parts(unannotated).any()  # listed in the file, no annotation: all background
    quad = next(r for r in folder.records if r.label == "quadruped")
    assert not folder.load_parts(quad).any()  # its body was left out by the map, its head has no area

    rep = import_coco(partimagenet, tmp_path / "b", images=images, class_from="animal")
    assert dict(rep.classes) == {"animal": 4}
    rep = import_coco(partimagenet, tmp_path / "synsets", images=images, class_from="folder")
    assert dict(rep.classes) == {"n01440764": 2, "n02085620": 2}  # the folders the files were found in
    with pytest.raises(DatasetError, match="different category values"):
        import_coco(partimagenet, tmp_path / "c", images=images, class_from="category")
    assert not (tmp_path / "c").exists()
    with pytest.raises(DatasetError, match="no image was imported .3 left out"):
        import_coco(partimagenet, tmp_path / "c", images=images, class_from="category", keep_going=True)
    (images / "n02085620" / "n02085620_7.JPEG").unlink()
    with pytest.raises(DatasetError, match="n02085620_7.JPEG' not found in"):
        import_coco(partimagenet, tmp_path / "d", images=images)
    rep = import_coco(partimagenet, tmp_path / "d", images=images, keep_going=True)
    assert rep.images == 2 and len(rep.skipped) == 1 and rep.skipped[0][0] == "n02085620_7.JPEG"
    assert not (tmp_path / "c").exists()


def _coco_file(tmp_path: Path, **change) -> Path:
    _image(tmp_path / "img" / "a.png")
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
           "categories": [{"id": 1, "name": "petal", "supercategory": "daisy"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [_rect(1, 1, 9, 9)]}]}
    for key, value in change.items():
        if key == "ann":
            doc["annotations"][0].update(value)
        elif key == "image":
            doc["images"][0].update(value)
        elif value is None:
            del doc[key]
        else:
            doc[key] = value
    f = tmp_path / "ann.json"
    f.write_text(json.dumps(doc))
    return f


@pytest.mark.parametrize("change, words", [
    ({"annotations": None}, 'missing "annotations"'),
    ({"ann": {"segmentation": [_rect(1, 1, 60, 9)]}}, "point (60, 1) lies outside the 40x30 image"),
    ({"ann": {"segmentation": [[1, 2, 3]]}}, "even count"),
    ({"ann": {"segmentation": {"size": [H + 1, W], "counts": [W * (H + 1)]}}}, "run-length mask of size 40x31"),
    ({"ann": {"segmentation": {"size": [H, W], "counts": [5, W * H]}}}, f"add up to {5 + W * H} pixels"),
    ({"ann": {"segmentation": {"size": [H, W], "counts": "0000zzzz"}}}, "corrupt compressed run-length mask"),
    ({"ann": {"segmentation": {"size": [H, W], "counts": "`1"}}}, "add up to"),
    ({"ann": {"category_id": 7}}, "category_id 7 is not in"),
    ({"ann": {"image_id": 7}}, "image_id 7 is not in"),
    ({"image": {"width": W + 1}}, "says 41x30 but the image is 40x30"),
    ({"image": {"file_name": "missing.png"}}, "image 'missing.png' not found"),
    ({"image": {"file_name": "../img/a.png"}}, "must be a relative path inside the image folder"),
    ({"categories": [{"id": 1, "name": "petal"}]}, 'missing "supercategory"'),
])
def test_malformed_coco_is_an_error_naming_the_file_and_nothing_is_written(tmp_path, change, words):
    f = _coco_file(tmp_path, **change)
    with pytest.raises(DatasetError) as e:
        import_coco(f, tmp_path / "out", images=tmp_path / "img")
    assert str(f) in str(e.value) and words in str(e.value), str(e.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_not_json_and_not_coco(tmp_path):
    bad = tmp_path / "ann.json"
    bad.write_text("{\"images\": [")
    with pytest.raises(DatasetError, match=f"{bad}: not valid JSON"):
        import_coco(bad, tmp_path / "out")
    bad.write_text("[1, 2]")
    with pytest.raises(DatasetError, match="expected a COCO object"):
        import_coco(bad, tmp_path / "out")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        import_coco(_coco_file(tmp_path), tmp_path / "out", images=tmp_path / "img")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_overlaps_smaller_wins_then_later(tmp_path):
    _image(tmp_path / "img" / "a.png")
    doc = {"images": [{"id": 1, "file_name": "a.png"}],
           "categories": [{"id": 1, "name": "small", "supercategory": "x"}, {"id": 2, "name": "big", "supercategory": "x"},
                          {"id": 3, "name": "twin", "supercategory": "x"}],
           "annotations": [{"image_id": 1, "category_id": 1, "segmentation": [_rect(10, 10, 15, 15)]},
                           {"image_id": 1, "category_id": 2, "segmentation": [_rect(0, 0, 30, 25)]},
                           {"image_id": 1, "category_id": 3, "segmentation": [_rect(12, 12, 17, 17)]}]}
    f = tmp_path / "ann.json"
    f.write_text(json.dumps(doc))
    rep = import_coco(f, tmp_path / "out", images=tmp_path / "img")
    m = _mask(tmp_path / "out" / "x" / "a.parts.png")
    assert m[5, 5] == 2 and m[11, 11] == 1 and m[16, 16] == 3
    assert m[13, 13] == 3  # small and twin have the same area: the later one wins
    assert rep.notes["overlapping pixels resolved (the smaller annotation wins)"] > 0


# ----------------------------------------------------------------------------------------- LabelMe
def _labelme(path: Path, image: str, shapes: list[dict], **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image,
                                "imageData": None, "imageHeight": H, "imageWidth": W, **extra}))


def test_labelme_folder(tmp_path):
    src = tmp_path / "lm"
    _image(src / "daisy" / "a.jpg", fmt="JPEG")
    _image(src / "images" / "b.png", seed=2)
    crop = Image.fromarray(np.array([[1, 0, 1], [1, 1, 1]], np.uint8) * 255)
    buf = io.BytesIO()
    crop.save(buf, format="PNG")
    _labelme(src / "daisy" / "a.json", "a.jpg", [
        {"label": "Petal", "points": [[2, 2], [12, 2], [12, 10], [2, 10]], "shape_type": "polygon"},
        {"label": "disk", "points": [[20, 20], [24, 26]], "shape_type": "rectangle"},
        {"label": "disk", "points": [[30, 8], [32, 8]], "shape_type": "circle"},
        {"label": "stem", "points": [[0, 29], [39, 29]], "shape_type": "line"},
        {"label": "leaf", "points": [[35, 25], [37, 26]], "shape_type": "mask", "mask": base64.b64encode(buf.getvalue()).decode()},
    ])
    _labelme(src / "not_daisy" / "b.json", "..\\images\\b.png", [
        {"label": "petal", "points": [[5, 5], [9, 9]], "shape_type": "rectangle"}])
    rep = import_labelme(src, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "parts.json").read_text()) == {"1": "disk", "2": "leaf", "3": "petal"}
    assert dict(rep.classes) == {"daisy": 1, "not_daisy": 1}
    assert rep.notes["shapes without area left out (line, point, polygon of < 3 points)"] == 1
    a = _mask(tmp_path / "out" / "daisy" / "a.parts.png")
    want = Image.new("L", (W, H))  # as LabelMe's shape_to_mask draws
    d = ImageDraw.Draw(want)
    d.polygon([(2, 2), (12, 2), (12, 10), (2, 10)], outline=3, fill=3)
    d.rectangle([20, 20, 24, 26], outline=1, fill=1)
    d.ellipse([28, 6, 32, 10], outline=1, fill=1)
    want = np.asarray(want).astype(np.int64)
    want[25:27, 35:38] = np.where(np.array([[1, 0, 1], [1, 1, 1]], bool), 2, want[25:27, 35:38])
    assert np.array_equal(a, want)
    b = _mask(tmp_path / "out" / "not_daisy" / "b.parts.png")
    assert b[5:10, 5:10].min() == 3 and b.sum() == 3 * 25


def test_labelme_errors(tmp_path):
    src = tmp_path / "lm"
    _image(src / "c" / "a.png")
    _labelme(src / "c" / "a.json", "a.png", [{"label": "x", "points": [[1, 1], [90, 1], [5, 5]]}])
    with pytest.raises(DatasetError, match=r"a\.json: shape 0 \('x'\): point \(90, 1\) lies outside"):
        import_labelme(src, tmp_path / "out")
    _labelme(src / "c" / "a.json", "gone.png", [])
    with pytest.raises(DatasetError, match="imageData is not read"):
        import_labelme(src, tmp_path / "out")
    (src / "c" / "a.json").write_text('{"no": "shapes"}')
    with pytest.raises(DatasetError, match='a.json: missing "shapes"'):
        import_labelme(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- masks
def _indexed_set(tmp_path: Path) -> tuple[Path, Path, Path]:
    images, masks = tmp_path / "JPEGImages", tmp_path / "SegmentationPart"
    legend = tmp_path / "legend.yaml"
    legend.write_text("1: head\n2: body\n7: Tail Fin\n255: null\n")
    for cls, n in (("fish", 2), ("not_fish", 1)):
        for i in range(n):
            _image(images / cls / f"{i}.jpg", seed=i, fmt="JPEG")
            m = np.zeros((H, W), np.uint8)
            m[2:10, 3:20] = 1 + i
            m[12:20, 5:9] = 7
            m[0, :] = 255
            pal = Image.fromarray(m, "P") if i == 0 else Image.fromarray(m)  # a palette mask reads as indices
            if i == 0:
                pal.putpalette([v for c in range(256) for v in (c, 255 - c, c // 2)])
            masks.joinpath(cls).mkdir(parents=True, exist_ok=True)
            pal.save(masks / cls / f"{i}.png")
    _image(images / "fish" / "unmasked.jpg", fmt="JPEG")
    return images, masks, legend


def test_indexed_masks_with_a_legend(tmp_path):
    images, masks, legend = _indexed_set(tmp_path)
    rep = import_masks(images, tmp_path / "out", masks=masks, legend=legend)
    assert json.loads((tmp_path / "out" / "parts.json").read_text()) == {"1": "head", "2": "body", "7": "tail_fin"}
    assert rep.notes["images without a mask left out"] == 1 and rep.images == 3
    m = _mask(tmp_path / "out" / "fish" / "1.parts.png")
    assert m[5, 5] == 2 and m[15, 6] == 7 and m[0, 0] == 0  # 255 is background by the legend


def test_colour_masks_with_a_legend(tmp_path):
    images, masks = tmp_path / "img", tmp_path / "masks"
    _image(images / "a.png")
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[1:5, 1:5] = (255, 0, 0)
    rgb[10:20, 10:20] = (0, 128, 0)
    rgb[25:, :] = (224, 224, 192)  # VOC's void colour
    masks.mkdir()
    Image.fromarray(rgb).save(masks / "a.png")
    legend = tmp_path / "legend.json"
    legend.write_text(json.dumps({"#ff0000": "head", "0,128,0": "body", "224, 224, 192": None}))
    import_masks(images, tmp_path / "out", masks=masks, legend=legend, class_from="bird")
    m = _mask(tmp_path / "out" / "bird" / "a.parts.png")
    assert json.loads((tmp_path / "out" / "parts.json").read_text()) == {"1": "head", "2": "body"}
    assert m[2, 2] == 1 and m[15, 15] == 2 and m[27, 3] == 0 and m[7, 30] == 0
    legend.write_text(json.dumps({"#ff0000": "head"}))
    with pytest.raises(DatasetError, match=r"masks/a\.png: colours #008000, #e0e0c0 are not in the legend"):
        import_masks(images, tmp_path / "out2", masks=masks, legend=legend, class_from="bird")
    Image.fromarray(rgb[:20]).save(masks / "a.png")
    legend.write_text(json.dumps({"#ff0000": "head", "#008000": "body", "#e0e0c0": None}))
    with pytest.raises(DatasetError, match=r"masks/a\.png: mask is 40x20 but its image is 40x30"):
        import_masks(images, tmp_path / "out2", masks=masks, legend=legend, class_from="bird")
    legend.write_text("{1: head, '#ff0000': body}")
    with pytest.raises(DatasetError, match="mixes mask values and colours"):
        import_masks(images, tmp_path / "out2", masks=masks, legend=legend, class_from="bird")
    assert not (tmp_path / "out2").exists()


# -------------------------------------------------------------------------------------- round trips
def test_masks_to_coco_and_back_gives_the_same_masks_and_ids(tmp_path):
    images, masks, legend = _indexed_set(tmp_path)
    assert main(["dataset", "import", "--format", "masks", str(images), "--masks", str(masks), "--legend", str(legend),
                 "--out", str(tmp_path / "first")]) == 0
    assert main(["dataset", "export", "--format", "coco", "--dataset", str(tmp_path / "first"),
                 "--out", str(tmp_path / "parts.json.coco")]) == 0
    coco = json.loads((tmp_path / "parts.json.coco").read_text())
    assert {c["id"]: c["name"] for c in coco["categories"]} == {1: "head", 2: "body", 7: "tail_fin"}
    assert main(["dataset", "import", "--format", "coco", str(tmp_path / "parts.json.coco"), "--images",
                 str(tmp_path / "first"), "--class-from", "folder", "--out", str(tmp_path / "second")]) == 0
    first, second = _digest(tmp_path / "first"), _digest(tmp_path / "second")
    first.pop("import.json"), second.pop("import.json")
    assert first == second  # every image, every .parts.png and parts.json, byte for byte


def test_workspace_labels_export_and_import_back(tmp_path, capsys):
    images, masks, legend = _indexed_set(tmp_path)
    import_masks(images, tmp_path / "data", masks=masks, legend=legend)
    folder = ImageFolder(tmp_path / "data")
    onto = Ontology("fish", "fish", [Concept("fish", "Fish", parts=("head", "body", "tail_fin")), Concept("head", "Head"),
                                     Concept("body", "Body"), Concept("tail_fin", "Tail fin")])
    ws = Workspace.create(tmp_path / "ws", onto, Settings(dataset=str(folder.root)))
    try:
        for rec in folder.records:  # one segment per part (as a perfect segmenter would cut them), labelled
            parts = folder.load_parts(rec)
            image_id = ws.store.add_image(rec.id, "0" * 64, W, H, rec.label)
            indices = sorted(set(np.unique(parts).tolist()) - {0})
            segs = [Segment.from_mask(parts == i) for i in indices] + [Segment.from_mask(parts == 0)]
            ids = ws.store.add_segments(image_id, "h" * 16, segs)
            concepts = [folder.parts_map[i] for i in indices] + ["none"]
            ws.store.set_labels(list(zip(ids, concepts)), source="person", author="t")
        rep = export_coco_store(ws.store, ws.ontology, tmp_path / "ws.coco.json")
    finally:
        ws.close()
    assert rep.notes["segments labelled 'none' (not exported)"] == 3 and rep.images == 3
    assert main(["dataset", "export", "--format", "coco", "--workspace", str(tmp_path / "ws"),
                 "--out", str(tmp_path / "cli.coco.json")]) == 0
    assert "3 images, 6 annotations (run-length masks), 4 categories" in capsys.readouterr().out
    by_cli, by_api = (json.loads((tmp_path / f).read_text()) for f in ("cli.coco.json", "ws.coco.json"))
    assert by_cli.pop("info") != by_api.pop("info") and by_cli == by_api  # the workspace is named in the info
    doc = json.loads((tmp_path / "ws.coco.json").read_text())
    assert [c["name"] for c in doc["categories"]] == ["fish", "body", "head", "tail_fin"]
    assert doc["annotations"][0]["attributes"]["source"] == "person"
    import_coco(tmp_path / "ws.coco.json", tmp_path / "back", images=folder.root, class_from="folder")
    back = ImageFolder(tmp_path / "back")
    assert [r.id for r in back.records] == [r.id for r in folder.records]
    for a, b in zip(folder.records, back.records):  # the same concept on every pixel
        assert np.array_equal(_named(folder, folder.load_parts(a)), _named(back, back.load_parts(b))), a.id


def _named(folder: ImageFolder, mask: np.ndarray) -> np.ndarray:
    lut = np.array([""] + [folder.parts_map.get(i, "?") for i in range(1, int(mask.max()) + 1)], dtype=object)
    return lut[mask]


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_import_options_and_errors(tmp_path, capsys):
    f = _coco_file(tmp_path)
    assert main(["dataset", "import", "--format", "coco", str(f), "--images", str(tmp_path / "img"),
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "imported 1 images (1 with part masks) from coco" in out and "parts.json: 1=petal" in out
    assert f"next: workbench dataset check {tmp_path / 'out'} --ontology FILE" in out
    assert main(["dataset", "import", "--format", "coco", str(f), "--masks", "m", "--out", str(tmp_path / "o2")]) == 1
    assert "--masks is not an option of --format coco" in capsys.readouterr().err
    assert main(["dataset", "import", "--format", "masks", str(tmp_path / "img"), "--out", str(tmp_path / "o2")]) == 1
    assert "needs --masks DIR" in capsys.readouterr().err
    bad_map = tmp_path / "map.yaml"
    bad_map.write_text("petal: Petal Leaf\n")
    assert main(["dataset", "import", "--format", "coco", str(f), "--map", str(bad_map), "--out", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert str(bad_map) in err and "'petal_leaf'" in err
    with pytest.raises(SystemExit):
        main(["dataset", "export", "--format", "coco", "--out", "x.json"])  # --workspace or --dataset


def test_slugs():
    assert concept_slug("Quadruped Head") == "quadruped_head"
    assert concept_slug("  Side   Mirror ") == "side_mirror"
    assert concept_slug("???") == ""


@pytest.mark.parametrize("seed", range(40))
def test_box_rle_equals_the_full_mask_rle(seed):
    """Export encodes a segment from its box without the full-image mask; the string must be exactly
    pycocotools' encoding of the full mask, including boxes that touch every edge, span the whole
    height (runs that continue into the next column), are empty, or are one pixel."""
    from workbench.data.interchange import _rle, _rle_in_box

    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    if seed % 4 == 0:  # the whole height, so runs join across columns
        y0, y1 = 0, h
    else:
        y0 = int(rng.integers(0, h)); y1 = int(rng.integers(y0 + 1, h + 1))
    x0 = int(rng.integers(0, w)); x1 = int(rng.integers(x0 + 1, w + 1))
    crop = rng.random((y1 - y0, x1 - x0)) < [0.0, 0.3, 0.9, 1.0][seed % 4 if seed % 8 else 3]
    full = np.zeros((h, w), bool)
    full[y0:y1, x0:x1] = crop
    assert _rle_in_box(crop, (x0, y0, x1, y1), (h, w)) == _rle(full)
