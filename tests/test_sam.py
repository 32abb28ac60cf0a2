"""The segment-anything backend on its real code path: a tiny random `Sam` saved as a checkpoint file,
loaded through our weights-only loader, run through SamAutomaticMaskGenerator (shapes, not quality)."""
from __future__ import annotations

import pickle
import sys
from functools import partial

import numpy as np
import pytest
import torch

from workbench.data import _tv_shim
from workbench.data.sam import (
    CHECKPOINT_ENV,
    SAM_CHECKPOINTS,
    SamSegmenter,
    import_segment_anything,
    infer_sam_config,
    load_sam,
)
from workbench.data.segment import Segment, make_segmenter, settings_hash
from workbench.errors import SegmentationError

import_segment_anything()
from segment_anything import sam_model_registry  # noqa: E402
from segment_anything.modeling import (  # noqa: E402
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

GENERATOR = dict(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.95, max_area_fraction=1.0, min_area=1)


def tiny_sam(seed: int = 0) -> Sam:
    """A randomly initialised SAM, img_size 128, one encoder block: built from the upstream classes."""
    torch.manual_seed(seed)
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=1, embed_dim=32, img_size=128, mlp_ratio=2, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=2, patch_size=16, qkv_bias=True, use_rel_pos=True, global_attn_indexes=(0,), window_size=4,
            out_chans=32,
        ),
        prompt_encoder=PromptEncoder(embed_dim=32, image_embedding_size=(8, 8), input_image_size=(128, 128), mask_in_chans=4),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=32, mlp_dim=64, num_heads=8),
            transformer_dim=32, iou_head_depth=2, iou_head_hidden_dim=16,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    ).eval()  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("sam") / "tiny_sam.pth"
    sam = tiny_sam()
    torch.save(sam.state_dict(), path)
    return path, sam


def test_loader_reads_weights_only_and_rebuilds_the_same_model(checkpoint):
    path, original = checkpoint
    model, config = load_sam(path, device="cpu")
    assert (config.img_size, config.embed_dim, config.depth, config.num_heads) == (128, 32, 1, 2)
    assert config.model_type == "custom"
    theirs, ours = original.state_dict(), model.state_dict()
    assert theirs.keys() == ours.keys()
    for k in theirs:
        assert torch.equal(theirs[k], ours[k]), k


def test_sam_segmenter_runs_the_automatic_mask_generator(checkpoint):
    path, _ = checkpoint
    seg = SamSegmenter(path, device="cpu", **GENERATOR)
    image = (np.random.default_rng(0).random((60, 90, 3)) * 255).astype(np.uint8)
    segments = seg.segment(image)
    assert segments, "pred/stability thresholds at 0 must let some mask through"
    for s in segments:
        assert isinstance(s, Segment)
        assert s.mask.shape == (60, 90) and s.mask.dtype == bool
        x0, y0, x1, y1 = s.bbox
        assert 0 <= x0 < x1 <= 90 and 0 <= y0 < y1 <= 60
        assert s.area == s.mask.sum() == s.mask[y0:y1, x0:x1].sum()
        assert s.crop(image, 16).shape == (16, 16, 3)
    # the settings name the checkpoint by content and carry the generator's settings
    assert seg.settings["points_per_side"] == 4 and len(seg.settings["checkpoint_sha256"]) == 64
    # pickled for a worker: the model is dropped and reloaded there, with the same output
    clone = pickle.loads(pickle.dumps(seg))
    assert clone._model is None
    again = clone.segment(image)
    assert [s.bbox for s in again] == [s.bbox for s in segments]
    assert settings_hash(clone) == settings_hash(seg)


def test_huge_image_is_downscaled_and_masks_mapped_back(checkpoint):
    path, _ = checkpoint
    seg = SamSegmenter(path, device="cpu", working_size=64, **GENERATOR)
    image = (np.random.default_rng(1).random((200, 300, 3)) * 255).astype(np.uint8)
    segments = seg.segment(image)
    assert segments and all(s.mask.shape == (200, 300) for s in segments)


def test_checkpoint_from_env_and_make_segmenter(checkpoint, monkeypatch):
    path, _ = checkpoint
    monkeypatch.setenv(CHECKPOINT_ENV, str(path))
    seg = make_segmenter("sam", device="cpu", points_per_side=2)
    assert seg.checkpoint == path


@pytest.mark.parametrize("model_type", ["vit_b", "vit_l", "vit_h"])
def test_model_type_is_inferred_from_official_shapes(model_type):
    with torch.device("meta"):  # shapes only: no memory, no weights
        sd = sam_model_registry[model_type]().state_dict()
    config = infer_sam_config(sd)
    assert config.model_type == model_type
    assert (config.img_size, config.window_size, config.prompt_dim) == (1024, 14, 256)


def test_missing_checkpoint_says_where_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    with pytest.raises(SegmentationError) as e:
        SamSegmenter()
    assert CHECKPOINT_ENV in str(e.value) and SAM_CHECKPOINTS["vit_b"] in str(e.value)
    with pytest.raises(SegmentationError, match="not found.*--sam-checkpoint"):
        SamSegmenter(tmp_path / "nope.pth")


def test_wrong_checkpoint_is_refused(tmp_path, checkpoint):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(SegmentationError, match="junk.pth.*weights-only"):
        load_sam(junk)
    other = tmp_path / "other.pth"
    torch.save({"linear.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(SegmentationError, match="not a segment-anything"):
        load_sam(other)
    with pytest.raises(SegmentationError, match="is a custom model.*not vit_b"):
        load_sam(checkpoint[0], model_type="vit_b")


def test_pickle_payload_is_never_executed(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pth"
    torch.save({"x": Boom()}, evil)
    with pytest.raises(SegmentationError, match="weights-only"):
        load_sam(evil)


def test_unknown_generator_setting(checkpoint):
    with pytest.raises(SegmentationError, match="points_per_sid"):
        SamSegmenter(checkpoint[0], points_per_sid=8)


def test_torchvision_stand_in():
    # segment_anything imported above: with torchvision missing here, it came through the stand-in
    tv = sys.modules["torchvision"]
    try:
        import importlib.util

        real = importlib.util.find_spec("torchvision") is not None and not getattr(tv, _tv_shim.SHIM_ATTR, False)
    except ValueError:
        real = False
    if not real:
        from torchvision.ops.boxes import batched_nms
        from torchvision.transforms.functional import resize, to_pil_image

        assert batched_nms is _tv_shim.batched_nms
        im = to_pil_image(np.zeros((10, 20, 3), np.uint8))
        assert resize(im, (5, 8)).size == (8, 5)
    # our NMS agrees with a brute-force reference on random boxes
    rng = np.random.default_rng(0)
    xy = rng.random((40, 2)) * 50
    boxes = torch.tensor(np.concatenate([xy, xy + rng.random((40, 2)) * 30 + 1], axis=1))
    scores = torch.tensor(rng.random(40))
    cats = torch.tensor(rng.integers(0, 3, 40))
    keep = _tv_shim.batched_nms(boxes, scores, cats, iou_threshold=0.3).tolist()
    expected = []
    for i in sorted(range(40), key=lambda i: -scores[i]):
        if all(cats[i] != cats[j] or _iou(boxes[i], boxes[j]) <= 0.3 for j in expected):
            expected.append(i)
    assert keep == expected


def _iou(a, b) -> float:
    ix = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
    iy = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
    inter = ix * iy
    area = lambda r: float((r[2] - r[0]) * (r[3] - r[1]))  # noqa: E731
    return inter / (area(a) + area(b) - inter)
