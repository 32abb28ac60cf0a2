"""Scoring many images (workbench/models/scoring.py): crops cut in one pass with the bytes of
Segment.crop, the crop cache keyed by segment content, rule features measured in batches (against
skimage's regionprops, which they replaced), the folded part nets, and `workbench score` inline, on
local processes and on a Dask LocalCluster with the same results."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from skimage.color import rgb2hsv
from skimage.measure import regionprops

from workbench.cli import main
from workbench.data._segcache import pack_segments
from workbench.data.segments import Segment
from workbench.errors import ModelError
from workbench.models.hybrid import HybridClassifier
from workbench.models.inference import load_workspace_models
from workbench.models.job import workspace_segmenter
from workbench.models.nets import PartNet
from workbench.models.rules import (
    BLACK_LEVEL,
    FEATURE_NAMES,
    feature_matrix,
    segment_features,
)
from workbench.models.scoring import (
    CropCache,
    crop_segments,
    fast_models,
    image_files,
    score_folder,
    write_scores,
)
from workbench.parallel import executor


# ------------------------------------------------------------------------------------------- crops
def _random_segments(rng: np.random.Generator, h: int, w: int, n: int) -> list[Segment]:
    out = []
    for _ in range(n):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = int(rng.integers(x0, w + 1)), int(rng.integers(y0, h + 1))
        out.append(Segment.from_crop(rng.random((y1 - y0, x1 - x0)) < 0.7, (x0, y0, x1, y1), (h, w)))
    return out


@pytest.mark.parametrize("size", [32, 17, 64])
def test_crops_cut_together_are_the_bytes_segment_crop_gives(size: int) -> None:
    rng = np.random.default_rng(size)
    for _ in range(25):  # boxes smaller and larger than the crop (PIL up- and downsampling), empty ones
        h, w = (int(v) for v in rng.integers(1, 300, 2))
        image = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        segs = _random_segments(rng, h, w, 6)
        np.testing.assert_array_equal(crop_segments(image, segs, size), np.stack([s.crop(image, size) for s in segs]))


def test_crops_of_the_wrong_image_are_refused() -> None:
    seg = Segment.from_mask(np.ones((8, 8), bool))
    with pytest.raises(Exception, match="8x8 image"):
        crop_segments(np.zeros((9, 8, 3), np.uint8), [seg])


def test_the_crop_cache_is_keyed_by_the_segments_and_refuses_damage(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    segs = _random_segments(rng, 40, 50, 3)
    packed = pack_segments(segs, (40, 50))
    cache = CropCache(tmp_path)
    key = CropCache.key("ab" * 32, packed, 32)
    crops = crop_segments(rng.integers(0, 256, (40, 50, 3)).astype(np.uint8), segs)
    assert cache.get(key, 3, 32) is None
    cache.put(key, crops)
    np.testing.assert_array_equal(cache.get(key, 3, 32), crops)
    assert cache.get(key, 4, 32) is None  # another segment count: not these crops
    other = pack_segments(segs[:2] + _random_segments(rng, 40, 50, 1), (40, 50))
    assert CropCache.key("ab" * 32, other, 32) != key  # other segments, other key
    assert CropCache.key("ab" * 32, packed, 16) != key and CropCache.key("cd" * 32, packed, 32) != key
    p = cache.path(key)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the crops
    p.write_bytes(bytes(data))
    assert cache.get(key, 3, 32) is None  # damaged: a miss, never trusted
    p.write_bytes(b"not an npz")
    assert cache.get(key, 3, 32) is None


# ---------------------------------------------------------------------------------- rule features
def _regionprops_features(crop: np.ndarray) -> np.ndarray:
    """The features as rules.py computed them before (skimage's rgb2hsv and regionprops, per crop)."""
    m = crop.max(axis=2) > BLACK_LEVEL
    n = int(m.sum())
    if n == 0:
        return np.array([0.0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])
    hsv = rgb2hsv(crop[m].reshape(-1, 1, 3)).reshape(-1, 3)
    h, s, v = hsv[:, 0] * 360.0, hsv[:, 1], hsv[:, 2]
    ang = np.deg2rad(h)
    hue = float(np.rad2deg(np.arctan2((np.sin(ang) * s).sum(), (np.cos(ang) * s).sum())) % 360.0) if s.sum() > 0 else 0.0
    props = regionprops(m.astype(np.uint8))[0]
    major, minor, perimeter = props.axis_major_length, props.axis_minor_length, props.perimeter
    return np.array([
        n / m.size, hue, s.mean(), v.mean(),
        np.mean((h >= 35) & (h <= 70) & (s > 0.35) & (v > 0.35)), np.mean((s < 0.25) & (v > 0.65)),
        np.mean((h >= 75) & (h <= 165) & (s > 0.2) & (v > 0.15)),
        major / max(minor, 1.0), props.eccentricity, props.solidity,
        min(1.0, 4 * np.pi * n / perimeter**2) if perimeter > 0 else 1.0,
    ])


def _random_crops(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    out = np.zeros((n, 32, 32, 3), np.uint8)
    for i in range(n):
        kind = i % 4
        if kind == 0:  # blobs with holes and notches
            m = ndimage.binary_opening(rng.random((32, 32)) < rng.uniform(0.3, 0.9))
        elif kind == 1:  # rotated ellipses, round to needle-thin
            a, b, th = rng.uniform(1, 16), rng.uniform(1, 16), rng.uniform(0, np.pi)
            u, v = (xx - 16) * np.cos(th) + (yy - 16) * np.sin(th), -(xx - 16) * np.sin(th) + (yy - 16) * np.cos(th)
            m = (u / a) ** 2 + (v / b) ** 2 < 1
        elif kind == 2:  # scattered pixels
            m = rng.random((32, 32)) < rng.uniform(0.01, 0.4)
        else:  # boxes, including single rows and columns
            m = np.zeros((32, 32), bool)
            y0, x0 = rng.integers(0, 31, 2)
            m[y0:y0 + rng.integers(1, 32), x0:x0 + rng.integers(1, 32)] = True
        colours = rng.integers(BLACK_LEVEL + 1, 256, (32, 32, 3)) if i % 3 else \
            np.broadcast_to(rng.integers(BLACK_LEVEL + 1, 256, 3), (32, 32, 3))
        out[i][m] = colours[m]
    return out


def test_batch_features_match_regionprops() -> None:
    X = np.concatenate([_random_crops(160), np.zeros((2, 32, 32, 3), np.uint8)])
    F = feature_matrix(X)
    R = np.stack([_regionprops_features(c) for c in X])
    exact = [FEATURE_NAMES.index(k) for k in ("area_fraction", "yellow_fraction", "white_fraction",
                                              "green_fraction", "solidity")]
    np.testing.assert_array_equal(F[:, exact], R[:, exact])  # counts and the convex hull: the same numbers
    np.testing.assert_allclose(F[:, :11], R, rtol=0, atol=1e-9)  # moments and means: summation order only
    assert np.isnan(F[:, 11:]).all()  # a crop alone has no position


def test_a_crops_features_are_the_same_bits_in_any_batch() -> None:
    X = _random_crops(40, seed=1)
    F = feature_matrix(X)
    for i in range(0, 40, 7):
        np.testing.assert_array_equal(feature_matrix(X[i:i + 1])[0], F[i])
        assert segment_features(X[i]).as_array()[:11].tolist() == F[i, :11].tolist()
    sub = feature_matrix(X, features={"solidity", "saturation"})
    cols = [FEATURE_NAMES.index(k) for k in ("area_fraction", "solidity", "saturation")]
    np.testing.assert_array_equal(sub[:, cols], F[:, cols])
    with pytest.raises(ModelError, match="unknown feature"):
        feature_matrix(X, features={"sparkle"})


# ------------------------------------------------------------------------------------ part nets
def test_folded_part_nets_predict_what_the_part_net_does() -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (300, 32, 32, 3)).astype(np.uint8)
    y = (X[:, 8:24, 8:24, 0].mean(axis=(1, 2)) > 127).astype(int)
    net = PartNet("p", max_epochs=2).fit(X[:200], y[:200])
    fast = fast_models({"p": net})["p"]
    assert fast is not net
    np.testing.assert_allclose(fast.predict_proba(X), net.predict_proba(X), rtol=0, atol=1e-5)
    odd = PartNet("q", crop_size=33, max_epochs=1).fit(rng.integers(0, 256, (40, 33, 33, 3)).astype(np.uint8),
                                                        np.r_[np.zeros(20, int), np.ones(20, int)])
    Xo = rng.integers(0, 256, (20, 33, 33, 3)).astype(np.uint8)
    np.testing.assert_allclose(fast_models({"q": odd})["q"].predict_proba(Xo), odd.predict_proba(Xo), atol=1e-5)


# ------------------------------------------------------------------------------- scoring a folder
def _score(ws, folder: Path, ex=None, chunk: int = 4):
    return score_folder(image_files(folder), ws.ontology, load_workspace_models(ws), workspace_segmenter(ws),
                        cache_dir=ws.cache_dir, crop_size=int(ws.settings.crop_size), executor=ex, chunk=chunk)


def test_scoring_a_folder_matches_the_hybrid_image_by_image(trained_ws) -> None:
    ws = trained_ws
    folder = ws.dataset_root
    run = _score(ws, folder)
    assert len(run.results) == len(image_files(folder)) and not run.problems
    assert all(r.cached == "segments" for r in run.results)  # the workspace's segments, crops cut once
    hybrid = HybridClassifier(ws.ontology, load_workspace_models(ws))
    seg = workspace_segmenter(ws)
    from workbench.data.datasets import load_image

    for r in run.results:
        image = load_image(r.path)
        segs = seg.segment(image)
        crops = np.stack([s.crop(image, 32) for s in segs])
        want = hybrid.explain(crops, [s.bbox for s in segs])
        assert r.explanation.probability == pytest.approx(want.probability, abs=1e-6)
        assert r.explanation.to_dict() == want.to_dict()  # the same concepts fire, on the same segments
    again = _score(ws, folder, chunk=3)
    assert all(r.cached == "segments+crops" for r in again.results)
    assert [r.explanation.to_dict() for r in again.results] == [r.explanation.to_dict() for r in run.results]


def test_score_command_writes_csv_and_json(trained_ws, tmp_path: Path, capsys) -> None:
    ws = trained_ws
    images = tmp_path / "images"
    shutil.copytree(ws.dataset_root, images)
    (images / "daisy" / "broken.png").write_bytes(b"not a png")
    ws.close()
    out = tmp_path / "out" / "scores.csv"
    assert main(["score", str(images), "--workspace", str(ws.path), "--out", str(out), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "scored " in said and "could not be scored" in said and "broken.png" in said
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(image_files(images))
    broken = [r for r in rows if r["path"].endswith("broken.png")]
    assert broken and broken[0]["error"] and broken[0]["probability"] == ""
    good = [r for r in rows if not r["error"]]
    assert all(0 <= float(r["probability"]) <= 1 and r["predicted"] in ("0", "1") for r in good)
    assert all(not r["path"].startswith("/") for r in rows)  # relative to DIR
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["root"] == "daisy" and doc["images"] == len(rows)
    first = next(r for r in doc["results"] if "error" not in r)
    assert set(first["concepts"]) == set(ws.ontology.concepts) and "fired" in first
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["score", str(empty), "--workspace", str(ws.path), "--no-progress"]) == 1
    assert "no images found" in capsys.readouterr().err


def test_write_scores_takes_a_json_name_too(trained_ws, tmp_path: Path) -> None:
    run = _score(trained_ws, trained_ws.dataset_root)
    csv_path, json_path = write_scores(run, tmp_path / "s.json")
    assert csv_path.name == "s.csv" and json_path.name == "s.json" and csv_path.exists() and json_path.exists()


def test_scoring_on_local_processes_and_a_dask_cluster_gives_the_inline_results(trained_ws) -> None:
    distributed = pytest.importorskip("distributed")
    ws = trained_ws
    inline = [r.to_dict() for r in _score(ws, ws.dataset_root, chunk=3).results]
    with executor(workers=2) as ex:
        local = [r.to_dict() for r in _score(ws, ws.dataset_root, ex, chunk=3).results]
    assert local == inline
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=None, silence_logs=40) as cluster:
        with executor(scheduler=cluster.scheduler_address) as ex:
            on_dask = [r.to_dict() for r in _score(ws, ws.dataset_root, ex, chunk=3).results]
    assert on_dask == inline


# ------------------------------------------------------------------------- retraining what changed
def test_retraining_scores_only_the_parts_that_retrained(trained_ws, tmp_path: Path, monkeypatch) -> None:
    """With a score cache, a part whose model did not change is not scored again: the composites read
    its per-segment scores from the cache (bit for bit what scoring gives), and train the same."""
    from workbench.data.segment import WeightFreeSegmenter, settings_hash
    from workbench.models.job import collect_workspace, training_config
    from workbench.models.rules import RuleModel
    from workbench.models.train import SegmentTable, train_hybrid

    ws = trained_ws
    shash = settings_hash(WeightFreeSegmenter())
    config = training_config(ws.settings, max_epochs=2)
    images, segments = collect_workspace(ws, config, shash)
    cache = tmp_path / "scores"
    first = train_hybrid(ws.ontology, images, segments, config, models_dir=ws.models_dir, settings_hash=shash,
                         score_cache=cache)
    assert first.retrained == [] and len(list(cache.glob("*.npy"))) == len(ws.ontology.leaves())

    labels = list(segments.labels)
    for r in [i for i, lab in enumerate(labels) if lab == "leaf"][:2]:
        labels[r] = "none"
    changed = SegmentTable(segments.segment_ids, segments.image_index, segments.bboxes, labels, segments.crops)
    scored: list[str] = []
    for cls in (PartNet, RuleModel):
        real = cls.predict_proba
        monkeypatch.setattr(cls, "predict_proba", lambda self, X, real=real: scored.append(self.concept) or real(self, X))
    plain_dir, cached_dir = tmp_path / "plain", tmp_path / "cached"
    shutil.copytree(ws.models_dir, plain_dir)
    shutil.copytree(ws.models_dir, cached_dir)
    plain = train_hybrid(ws.ontology, images, changed, config, models_dir=plain_dir, settings_hash=shash)
    assert sorted(set(scored)) == sorted(ws.ontology.leaves())  # without the cache: every part scored
    scored.clear()
    again = train_hybrid(ws.ontology, images, changed, config, models_dir=cached_dir, settings_hash=shash,
                         score_cache=cache)
    assert "leaf" in again.retrained and scored == ["leaf"]  # only the part that retrained
    root = ws.ontology.root  # the root retrained on the same scores: the same weights
    for attr in ("coef_", "interaction_coef_", "relation_coef_", "intercept_"):
        np.testing.assert_array_equal(getattr(again.models[root], attr), getattr(plain.models[root], attr))
    for f in cache.glob("*.npy"):  # a damaged entry is recomputed, not trusted
        f.write_bytes(b"garbage")
    scored.clear()
    shutil.rmtree(cached_dir)
    shutil.copytree(ws.models_dir, cached_dir)
    train_hybrid(ws.ontology, images, changed, config, models_dir=cached_dir, settings_hash=shash, score_cache=cache)
    assert sorted(set(scored)) == sorted(ws.ontology.leaves())
