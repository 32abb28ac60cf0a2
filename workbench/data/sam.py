"""The segment-anything backend: ``SamAutomaticMaskGenerator`` over a checkpoint the user points to.

Checkpoints are not shipped (375 MB to 2.5 GB): download one of :data:`SAM_CHECKPOINTS` and point to
it with ``SamSegmenter(checkpoint=PATH)``, ``workbench segment --sam-checkpoint PATH``, or the
environment variable ``WORKBENCH_SAM_CHECKPOINT``. The state dict is read with
``torch.load(..., weights_only=True)`` (never the upstream loader, which unpickles arbitrary objects)
and the architecture is read off the tensors' shapes, so ``model_type`` (vit_b / vit_l / vit_h) is
inferred when not given. CUDA is used when present, the CPU otherwise (vit_b: ~40 s per image there).
Where torchvision is missing or broken, a small pure torch/PIL stand-in is installed first
(:mod:`workbench.data._tv_shim`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from workbench.data._segcache import sha256_file
from workbench.data._tv_shim import ensure_torchvision
from workbench.data.segments import Segment, as_rgb, downscale, upscale_mask, working_scale
from workbench.errors import SegmentationError

__all__ = [
    "SAM_CHECKPOINTS",
    "CHECKPOINT_ENV",
    "SamConfig",
    "SamSegmenter",
    "import_segment_anything",
    "infer_sam_config",
    "load_sam",
    "resolve_checkpoint",
]

#: Official checkpoints by model type.
SAM_CHECKPOINTS = {
    "vit_b": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
    "vit_l": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    "vit_h": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
}
#: Environment variable naming the checkpoint file when none is given.
CHECKPOINT_ENV = "WORKBENCH_SAM_CHECKPOINT"

_HOW = (
    "download one of the official checkpoints ("
    + ", ".join(f"{k}: {v}" for k, v in SAM_CHECKPOINTS.items())
    + f") and point to it with --sam-checkpoint PATH, the `sam_checkpoint` setting, or {CHECKPOINT_ENV}=PATH"
)

# encoder (embed_dim, depth, heads, global blocks) of the official model types
_STANDARD = {
    "vit_b": (768, 12, 12, (2, 5, 8, 11)),
    "vit_l": (1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": (1280, 32, 16, (7, 15, 23, 31)),
}


def import_segment_anything():
    """Import ``segment_anything``, installing the torchvision stand-in first if torchvision fails."""
    ensure_torchvision()
    try:
        import segment_anything
    except ImportError as e:
        raise SegmentationError(
            f"the sam segmenter needs segment-anything ({e}): pip install 'constructability-workbench[sam]'"
        ) from None
    return segment_anything


@dataclass(frozen=True)
class SamConfig:
    """A SAM architecture, as read off a state dict (see :func:`infer_sam_config`)."""

    model_type: str  # vit_b | vit_l | vit_h, or "custom" for another shape
    img_size: int  # input side of the image encoder (1024 for the official models)
    patch_size: int  # ViT patch side (16)
    embed_dim: int  # encoder width
    depth: int  # encoder blocks
    num_heads: int  # encoder attention heads
    mlp_ratio: float  # encoder MLP width / embed_dim
    window_size: int  # windowed-attention side (14); 0 when every block is global
    global_attn_indexes: tuple[int, ...]  # blocks with global attention
    prompt_dim: int  # prompt/decoder width (256)
    mask_in_chans: int  # prompt encoder's mask channels (16)
    decoder_depth: int  # two-way transformer layers (2)
    decoder_mlp_dim: int  # two-way transformer MLP width (2048)
    decoder_heads: int  # two-way transformer heads (8; not recoverable from shapes, always 8 upstream)
    num_multimask_outputs: int  # masks per prompt (3)
    iou_head_depth: int  # IoU head layers (3)
    iou_head_hidden_dim: int  # IoU head width (256)

    def build(self):
        """A randomly initialised ``segment_anything.modeling.Sam`` of this shape (eval mode)."""
        import torch

        import_segment_anything()
        from segment_anything.modeling import (
            ImageEncoderViT,
            MaskDecoder,
            PromptEncoder,
            Sam,
            TwoWayTransformer,
        )

        grid = self.img_size // self.patch_size
        sam = Sam(
            image_encoder=ImageEncoderViT(
                depth=self.depth,
                embed_dim=self.embed_dim,
                img_size=self.img_size,
                mlp_ratio=self.mlp_ratio,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=self.num_heads,
                patch_size=self.patch_size,
                qkv_bias=True,
                use_rel_pos=True,
                global_attn_indexes=self.global_attn_indexes,
                window_size=self.window_size,
                out_chans=self.prompt_dim,
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=self.prompt_dim,
                image_embedding_size=(grid, grid),
                input_image_size=(self.img_size, self.img_size),
                mask_in_chans=self.mask_in_chans,
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=self.num_multimask_outputs,
                transformer=TwoWayTransformer(
                    depth=self.decoder_depth,
                    embedding_dim=self.prompt_dim,
                    mlp_dim=self.decoder_mlp_dim,
                    num_heads=self.decoder_heads,
                ),
                transformer_dim=self.prompt_dim,
                iou_head_depth=self.iou_head_depth,
                iou_head_hidden_dim=self.iou_head_hidden_dim,
            ),
            pixel_mean=[123.675, 116.28, 103.53],
            pixel_std=[58.395, 57.12, 57.375],
        )
        return sam.eval()


def _count(sd: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.match(k))})


def infer_sam_config(state_dict: dict, source: str = "<state dict>") -> SamConfig:
    """Read a SAM architecture off the shapes of a state dict (official or smaller ones).

    Raises :class:`SegmentationError` naming ``source`` when it is not a SAM state dict.
    """
    sd = state_dict
    try:
        embed, _, patch, _ = sd["image_encoder.patch_embed.proj.weight"].shape
        img_size = sd["image_encoder.pos_embed"].shape[1] * patch
        depth = _count(sd, r"image_encoder\.blocks\.(\d+)\.")
        mlp_ratio = sd["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / embed
        grid = img_size // patch
        rel = [sd[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape for i in range(depth)]
        heads = embed // rel[0][1]
        global_idx = tuple(i for i, s in enumerate(rel) if s[0] == 2 * grid - 1)
        windowed = [s[0] for s in rel if s[0] != 2 * grid - 1]
        window = (windowed[0] + 1) // 2 if windowed else 0
        prompt_dim = sd["image_encoder.neck.0.weight"].shape[0]
        mask_in = sd["prompt_encoder.mask_downscaling.3.weight"].shape[0]
        dec_depth = _count(sd, r"mask_decoder\.transformer\.layers\.(\d+)\.")
        dec_mlp = sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]
        n_masks = sd["mask_decoder.mask_tokens.weight"].shape[0] - 1
        iou_depth = _count(sd, r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\.")
        iou_hidden = sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]
    except (KeyError, IndexError, AttributeError, ValueError, TypeError) as e:
        raise SegmentationError(
            f"{source}: not a segment-anything (SAM) checkpoint (missing or odd tensor {e}); {_HOW}"
        ) from None
    model_type = "custom"
    for name, (e_, d_, h_, g_) in _STANDARD.items():
        if (embed, depth, heads, global_idx, img_size) == (e_, d_, h_, g_, 1024):
            model_type = name
    return SamConfig(
        model_type, int(img_size), int(patch), int(embed), depth, int(heads), float(mlp_ratio), int(window),
        global_idx, int(prompt_dim), int(mask_in), dec_depth, int(dec_mlp), 8, int(n_masks), iou_depth, int(iou_hidden),
    )  # fmt: skip


def resolve_checkpoint(checkpoint: str | os.PathLike | None) -> Path:
    """The checkpoint file to use: the argument, else ``$WORKBENCH_SAM_CHECKPOINT``; it must exist."""
    if checkpoint is None or str(checkpoint) == "":
        env = os.environ.get(CHECKPOINT_ENV)
        if not env:
            raise SegmentationError(f"the sam segmenter needs a checkpoint and none was given: {_HOW}")
        checkpoint = env
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise SegmentationError(f"SAM checkpoint {path} not found: {_HOW}")
    return path


def load_sam(checkpoint: str | os.PathLike | None = None, model_type: str | None = None, device: str | None = None):
    """Load a SAM model: state dict read with ``weights_only=True``, architecture inferred (or checked
    against ``model_type``), moved to ``device`` (CUDA when present, else CPU). Returns ``(sam, config)``."""
    import pickle

    import torch

    path = resolve_checkpoint(checkpoint)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise SegmentationError(
            f"SAM checkpoint {path} could not be read as a weights-only torch file ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); {_HOW}"
        ) from None
    if isinstance(sd, dict) and not any(k.startswith("image_encoder.") for k in sd):
        for wrapper in ("model", "state_dict"):
            if isinstance(sd.get(wrapper), dict):
                sd = sd[wrapper]
                break
    if not isinstance(sd, dict):
        raise SegmentationError(f"SAM checkpoint {path} holds a {type(sd).__name__}, not a state dict; {_HOW}")
    config = infer_sam_config(sd, str(path))
    if model_type is not None:
        if model_type not in SAM_CHECKPOINTS:
            raise SegmentationError(f"unknown SAM model type {model_type!r}: choose one of {', '.join(SAM_CHECKPOINTS)}")
        if config.model_type != model_type:
            raise SegmentationError(
                f"SAM checkpoint {path} is a {config.model_type} model (encoder width {config.embed_dim}, "
                f"{config.depth} blocks), not {model_type}: drop the model type to infer it, or get the "
                f"{model_type} checkpoint from {SAM_CHECKPOINTS[model_type]}"
            )
    sam = config.build()
    try:
        sam.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise SegmentationError(f"SAM checkpoint {path} does not fit a {config.model_type} model: {str(e)[:300]}; {_HOW}") from None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return sam.to(device), config


_GENERATOR_DEFAULTS = {
    "points_per_side": 32,
    "points_per_batch": 64,
    "pred_iou_thresh": 0.88,
    "stability_score_thresh": 0.95,
    "stability_score_offset": 1.0,
    "box_nms_thresh": 0.7,
    "crop_n_layers": 0,
    "crop_nms_thresh": 0.7,
    "crop_overlap_ratio": 512 / 1500,
    "crop_n_points_downscale_factor": 1,
}


class SamSegmenter:
    """segment-anything's automatic mask generator as a :class:`~workbench.data.segment.Segmenter`.

    ``checkpoint``: a SAM ``.pth`` file (else ``$WORKBENCH_SAM_CHECKPOINT``); ``model_type``: checked
    against the checkpoint, inferred when ``None``; ``device``: ``cuda``/``cpu``, CUDA when present.
    Other keyword arguments are the generator's (``points_per_side``, ``pred_iou_thresh``, ...; an
    unknown one is an error) plus ``working_size`` (long edge images are downscaled to first; each mask
    is mapped back onto the original inside its box only), ``min_area`` and ``max_area_fraction`` (as in
    the weight-free segmenter).

    ``settings`` holds the checkpoint's SHA-256 rather than its path, so moving the file keeps the
    cache, and replacing it invalidates it. The loaded model is not pickled: a worker process that
    receives this segmenter loads the checkpoint once itself.
    """

    name = "sam"

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        model_type: str | None = None,
        device: str | None = None,
        working_size: int = 1024,
        min_area: int = 20,
        max_area_fraction: float = 0.9,
        **generator: Any,
    ):
        unknown = sorted(set(generator) - set(_GENERATOR_DEFAULTS))
        if unknown:
            raise SegmentationError(
                f"sam segmenter: unknown setting(s) {', '.join(unknown)}; known: "
                f"{', '.join(['working_size', 'min_area', 'max_area_fraction', *_GENERATOR_DEFAULTS])}"
            )

        self.checkpoint = resolve_checkpoint(checkpoint)
        self.device = device
        self._generator_settings = {**_GENERATOR_DEFAULTS, **generator}
        self._model, self._config = load_sam(self.checkpoint, model_type, device)
        self._generator = None
        self._settings = {
            "model_type": self._config.model_type,
            "checkpoint_sha256": sha256_file(self.checkpoint),
            "working_size": int(working_size),
            "min_area": int(min_area),
            "max_area_fraction": float(max_area_fraction),
            **self._generator_settings,
        }

    @property
    def settings(self) -> dict:
        return dict(self._settings)

    @property
    def config(self) -> SamConfig:
        return self._config

    def __repr__(self) -> str:
        return f"SamSegmenter(checkpoint={str(self.checkpoint)!r}, model_type={self._config.model_type!r})"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_model"] = None
        state["_generator"] = None
        return state

    def _mask_generator(self):
        if self._generator is None:
            if self._model is None:
                self._model, _ = load_sam(self.checkpoint, None, self.device)
            import_segment_anything()
            from segment_anything import SamAutomaticMaskGenerator

            self._generator = SamAutomaticMaskGenerator(self._model, output_mode="binary_mask", **self._generator_settings)
        return self._generator

    def segment(self, image: np.ndarray) -> list[Segment]:
        import torch

        image = as_rgb(image)
        h, w = image.shape[:2]
        if h < 2 or w < 2:
            return []
        s = self._settings
        scale = working_scale((h, w), s["working_size"])
        work = downscale(image, s["working_size"])
        with torch.inference_mode():
            records = self._mask_generator().generate(work)
        min_area = s["min_area"] / (scale * scale)
        max_area = s["max_area_fraction"] * h * w
        out = []
        for r in records:  # working-size masks, mapped back one box at a time
            seg = upscale_mask(r.pop("segmentation"), (h, w))
            if min_area <= seg.area <= max_area:
                out.append(seg)
        out.sort(key=lambda sg: (sg.bbox[1], sg.bbox[0], sg.bbox[3], sg.bbox[2], -sg.area))
        return out
