"""The source study's two nets ("prototype" mode), reproduced to compare with its table:
:class:`PrototypeLeafNet` (960 parameters at 256-pixel crops, applied convolutionally to whole images
for a map per part) and :class:`PrototypeParentNet` (a parent over its children's maps, 25 parameters
for two children), with the two map helpers they share, :func:`center_crop_maps` and
:func:`prototype_map_side`. Training them over an ontology is :mod:`workbench.models.prototype`'s.

>>> PrototypeLeafNet("petal").n_params, PrototypeParentNet("flower_head", n_children=2).n_params
(960, 25)
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import ModelError
from workbench.models.contract import COMPOSITE_PARAM_BUDGET
from workbench.models.fitting import (
    TorchConceptModel,
    check_uint8_images,
    run_batches,
    uint8_batch,
)

__all__ = ["PrototypeLeafNet", "PrototypeParentNet", "center_crop_maps", "prototype_map_side"]


# ============================================================================================ maps
def center_crop_maps(maps: torch.Tensor, size: int) -> torch.Tensor:
    """Center-crop (or zero-pad, when smaller) the last two dims of ``maps`` to ``size``×``size``.

    Same convention as torchvision's ``center_crop``, which the source study used: the study's root
    received its ``flower_head`` child's 2×2 map zero-padded to 6×6 this way.

    >>> center_crop_maps(torch.arange(49.).view(1, 7, 7), 6).shape, center_crop_maps(torch.ones(1, 2, 2), 6).sum().item()
    (torch.Size([1, 6, 6]), 4.0)
    """
    h, w = maps.shape[-2:]
    if h < size or w < size:  # pad like torchvision: extra pixel goes to the bottom/right
        ph, pw = max(size - h, 0), max(size - w, 0)
        maps = F.pad(maps, (pw // 2, (pw + 1) // 2, ph // 2, (ph + 1) // 2))
        h, w = maps.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return maps[..., top : top + size, left : left + size]


def prototype_map_side(input_size: int, pool: int = 4) -> int:
    """Side of the prototype leaf's map for a square input: three valid convs (5, 3, 3), each pooled.

    >>> prototype_map_side(256), prototype_map_side(512)
    (3, 7)
    """
    s = int(input_size)
    for k in (5, 3, 3):
        s = (s - k + 1) // pool
        if s < 1:
            return 0
    return s


# ============================================================================================ leaf
class _PrototypeLeafModule(nn.Module):
    """The source study's leaf: three valid convs (5, 3, 3; no bias) each + BN + ReLU + max-pool, then
    Linear(map side² → 1). At 256×256 input the map is 3×3, so Linear(9 → 1): 960 parameters."""

    def __init__(self, map_side: int, pool: int):
        super().__init__()

        def block(cin: int, cout: int, k: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, k, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(pool)]

        self.features = nn.Sequential(*block(3, 8, 5), *block(8, 4, 3), *block(4, 1, 3))
        self.head = nn.Linear(map_side * map_side, 1)
        self.map_side = map_side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


class PrototypeLeafNet(TorchConceptModel):
    """The source study's leaf net ("prototype" mode), trained on crops, applied convolutionally to images.

    Parameters (960 at the defaults): conv 3→8 5×5 (600) + BN(8) (16), conv 8→4 3×3 (288) + BN(4) (8),
    conv 4→1 3×3 (36) + BN(1) (2), Linear(9→1) (10). Each conv is valid (no padding), no bias, then
    ReLU and max-pool 4, so 256 → 252 → 63 → 61 → 15 → 13 → 3: a 3×3 map, flattened into the Linear.

    - ``predict_proba(crops)``: crops of exactly ``input_size`` (the study: 256).
    - ``feature_map(images)``: the conv stack on whole images of any size ≥ ``input_size``: N×h×w
      (a 512×512 image gives 7×7). This is what a :class:`PrototypeParentNet` combines.
    - ``score_map(images)``: the Linear slid over the map as a 3×3 conv + sigmoid: P(concept) per
      window, N×(h-2)×(w-2); on an ``input_size`` image it equals ``predict_proba``.

    ``pool`` (default 4, the study's) may be lowered for smaller inputs; the Linear then takes the
    map side², and the budget (< 1000) is checked.
    """

    input_kind = "crops"
    _predict_batch = 32

    def __init__(
        self,
        concept: str = "part",
        *,
        input_size: int = 256,
        pool: int = 4,
        max_epochs: int = 30,
        batch_size: int = 32,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        patience: int = 5,
        augment: bool = True,
        random_state: int | None = 0,
        torch_threads: int = 1,
    ):
        self.concept = concept
        self.input_size = input_size
        self.pool = pool
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.augment = augment
        self.random_state = random_state
        self.torch_threads = torch_threads
        self._check_params()

    def _check_params(self) -> None:
        if prototype_map_side(self.input_size, self.pool) < 1:
            raise ModelError(
                f"concept '{self.concept}': input_size={self.input_size} is too small for the prototype leaf with "
                f"pool={self.pool} (three valid convs 5, 3, 3 each pooled by {self.pool}): use input_size >= "
                f"{_min_prototype_input(self.pool)}"
            )
        super()._check_params()

    def _build(self) -> nn.Module:
        return _PrototypeLeafModule(prototype_map_side(self.input_size, self.pool), self.pool)

    def _check_X(self, X: Any) -> torch.Tensor:
        return check_uint8_images(X, self.concept, "segment crops", self.input_size)

    def _batch(self, Xt: torch.Tensor, idx: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return uint8_batch(Xt, idx, g, "hvt" if self.augment else "")

    def _images(self, images: Any) -> torch.Tensor:
        Xt = check_uint8_images(images, self.concept, "images", None)
        if min(Xt.shape[1:3]) < self.input_size:
            raise ModelError(
                f"concept '{self.concept}': images must be at least {self.input_size}×{self.input_size} for the "
                f"prototype leaf's map, got {Xt.shape[1]}×{Xt.shape[2]}"
            )
        return Xt

    def feature_map(self, images: np.ndarray) -> np.ndarray:
        """The conv stack's output on whole images (uint8 N×H×W×3): float N×h×w (what parents combine)."""
        self._check_fitted()
        Xt = self._images(images)
        return run_batches(self, self.module_.features, Xt, lambda out: out[:, 0])

    def score_map(self, images: np.ndarray) -> np.ndarray:
        """P(concept) for every ``input_size`` window of each image (stride = the total pooling): N×h'×w'."""
        self._check_fitted()
        Xt = self._images(images)
        head = self.module_.head
        s = self.module_.map_side
        kernel = head.weight.view(1, 1, s, s)

        def post(out: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(F.conv2d(out, kernel, head.bias))[:, 0]

        return run_batches(self, self.module_.features, Xt, post)


def _min_prototype_input(pool: int) -> int:
    s = 1
    while prototype_map_side(s, pool) < 1:
        s += 1
    return s


# ============================================================================================ parent
class _PrototypeParentModule(nn.Module):
    """The study's parent: children's maps (center-cropped to ``crop``) → conv k→1 3×3 (no bias) + BN +
    ReLU + max-pool 2 → Linear(2×2 → 1). For k children: 9k + 2 + 5 parameters."""

    def __init__(self, n_children: int, crop: int, pool: int):
        super().__init__()
        self.crop = crop
        self.features = nn.Sequential(
            nn.Conv2d(n_children, 1, 3, bias=False), nn.BatchNorm2d(1), nn.ReLU(), nn.MaxPool2d(pool)
        )
        side = (crop - 2) // pool
        self.head = nn.Linear(side * side, 1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(center_crop_maps(maps, self.crop)).flatten(1)).squeeze(1)


class PrototypeParentNet(TorchConceptModel):
    """The source study's composite ("prototype" mode) over its children's maps.

    ``X``: float N×k×h×w, the children's ``feature_map`` outputs stacked in the ontology's part order;
    each is center-cropped to 6×6 (zero-padded if smaller, as the study's torchvision call did). Then
    conv k→1 3×3 (9k, no bias) + BN(1) (2) + ReLU + max-pool 2: 6 → 4 → 2, so a 2×2 map flattened into
    Linear(4→1) (5). A parent of two: 18 + 2 + 5 = 25 parameters. ``feature_map(X)`` (N×2×2) is what
    a grand-parent receives (the study's root got ``flower_head``'s 2×2 map padded to 6×6).
    """

    input_kind = "maps"
    param_budget = COMPOSITE_PARAM_BUDGET + 1  # a parent is a composite: at most COMPOSITE_PARAM_BUDGET
    _predict_batch = 1024

    def __init__(
        self,
        concept: str = "composite",
        *,
        n_children: int = 2,
        crop: int = 6,
        pool: int = 2,
        max_epochs: int = 100,
        batch_size: int = 64,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        patience: int = 10,
        augment: bool = False,
        random_state: int | None = 0,
        torch_threads: int = 1,
    ):
        self.concept = concept
        self.n_children = n_children
        self.crop = crop
        self.pool = pool
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.augment = augment
        self.random_state = random_state
        self.torch_threads = torch_threads
        self._check_params()

    def _check_params(self) -> None:
        if self.n_children < 1 or (self.crop - 2) // self.pool < 1:
            raise ModelError(f"concept '{self.concept}': need n_children >= 1 and crop >= 2 + pool (got "
                             f"{self.n_children}, {self.crop})")
        super()._check_params()

    def _build(self) -> nn.Module:
        return _PrototypeParentModule(self.n_children, self.crop, self.pool)

    def _check_X(self, X: Any) -> torch.Tensor:
        X = np.asarray(X) if not isinstance(X, torch.Tensor) else X.numpy()
        if X.ndim != 4 or X.shape[1] != self.n_children or not np.issubdtype(X.dtype, np.number):
            raise ModelError(
                f"concept '{self.concept}': X must be the {self.n_children} children's maps as a float array "
                f"N×{self.n_children}×h×w, got {X.dtype} {X.shape}"
            )
        return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))

    def _batch(self, Xt: torch.Tensor, idx: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        x = Xt[idx]
        if g is not None and self.augment:
            m = (torch.rand(len(idx), generator=g) < 0.5).view(-1, 1, 1, 1)
            x = torch.where(m, x.flip(3), x)
        return x

    def feature_map(self, X: np.ndarray) -> np.ndarray:
        """The conv part's output (N×2×2): this parent's map for its own parent."""
        self._check_fitted()
        Xt = self._check_X(X)
        m = self.module_
        return run_batches(self, nn.Sequential(), Xt, lambda x: m.features(center_crop_maps(x, m.crop))[:, 0])

