"""The baseline: an end-to-end CNN on whole images, trained on the same split the caller gives the hybrid.

Two budgets are measured (the report names them): the *per-net* budget, one part net's (≤ 3 conv
layers, < 1000 parameters, the default), and the *total* budget, about as many parameters as the whole
hybrid (:meth:`BaselineCNN.for_budget`, still ≤ 3 conv layers, the same shape widened).

It is the same family as :class:`~workbench.models.nets.PartNet` (:class:`~workbench.models.nets.TinyCNN`:
conv + batch norm + ReLU + max-pool blocks, then global max and mean pooling into one Linear), so
the comparison is about what each net is shown (whole images vs. labelled parts), not about a
weaker architecture. Images are squashed (aspect ratio not kept, so nothing is cropped away) to
``image_size`` × ``image_size``, 64 by default: three 2× poolings leave an 8×8 map, fine enough for
a flower head in a photo and cheap on a CPU.

>>> BaselineCNN().n_params
927
>>> big = BaselineCNN.for_budget(2819)
>>> big.channels, big.n_params <= 2819
((11, 15, 7), True)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from workbench.errors import ModelError
from workbench.models.contract import PART_PARAM_BUDGET
from workbench.models.fitting import TorchConceptModel, check_uint8_images, uint8_batch
from workbench.models.nets import TinyCNN

__all__ = ["BaselineCNN", "resize_images"]


def resize_images(images: np.ndarray | Sequence[np.ndarray], size: int) -> np.ndarray:
    """Resize each H×W×3 uint8 image to ``size``×``size`` (bilinear, antialiased): uint8 N×size×size×3."""
    from PIL import Image

    if isinstance(images, np.ndarray) and images.ndim == 4 and images.shape[1:3] == (size, size):
        return images
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        a = np.asarray(im)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
            raise ModelError(f"image {i}: must be a uint8 H×W×3 array, got {a.dtype} {a.shape}")
        out[i] = np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR, reducing_gap=2.0))
    return out


class BaselineCNN(TorchConceptModel):
    """End-to-end image classifier, by default with a part net's budget. ``X``: uint8 images, N×H×W×3 or a list.

    Default (927 parameters)::

        3×3 conv 3→6 + BN + ReLU, max-pool 2     64 → 32
        3×3 conv 6→8 + BN + ReLU, max-pool 2     32 → 16
        3×3 conv 8→4 + BN + ReLU, max-pool 2     16 → 8
        [global max, global mean] of 4 maps → Linear(8→1) → sigmoid

    Parameters as :class:`~workbench.models.nets.PartNet`'s, plus ``image_size``; ``augment`` flips images
    left-right only (a flower upside down is not the same photo); ``budget``: at most this many
    parameters instead of a part net's budget (see :meth:`for_budget`).
    """

    input_kind = "images"
    _predict_batch = 128

    def __init__(
        self,
        concept: str = "root",
        *,
        image_size: int = 64,
        channels: tuple[int, ...] = (6, 8, 4),
        kernel_sizes: tuple[int, ...] = (3, 3, 3),
        pools: tuple[int, ...] = (2, 2, 2),
        max_epochs: int = 60,
        batch_size: int = 32,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        patience: int = 10,
        augment: bool = True,
        random_state: int | None = 0,
        torch_threads: int = 1,
        budget: int | None = None,
    ):
        self.concept = concept
        self.image_size = image_size
        self.channels = channels
        self.kernel_sizes = kernel_sizes
        self.pools = pools
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.augment = augment
        self.random_state = random_state
        self.torch_threads = torch_threads
        self.budget = budget
        self._check_params()

    @property
    def param_budget(self) -> int:  # type: ignore[override]
        """Fewer parameters than this: a part net's budget unless ``budget`` (at most that many) is given."""
        return PART_PARAM_BUDGET if self.budget is None else int(self.budget) + 1

    @classmethod
    def for_budget(cls, n_params: int, **kwargs: Any) -> "BaselineCNN":
        """The default net widened (every layer's channels scaled alike) to the most parameters that stay
        within ``n_params``: the total-budget baseline, about as large as the hybrid it is compared with."""
        base = kwargs.pop("channels", (6, 8, 4))
        best = cls(channels=base, budget=max(n_params, 1), **kwargs)
        for k in np.arange(1.0, 16.0, 0.05):
            channels = tuple(max(1, int(round(c * k))) for c in base)
            try:
                net = cls(channels=channels, budget=max(n_params, 1), **kwargs)
            except ModelError:
                break
            if net.n_params > best.n_params:
                best = net
        return best

    def _build(self) -> nn.Module:
        return TinyCNN(self.channels, self.kernel_sizes, self.pools)

    def _check_X(self, X: Any) -> torch.Tensor:
        if isinstance(X, np.ndarray) and X.ndim == 4 and X.dtype == np.uint8:
            X = resize_images(X, self.image_size)
        elif isinstance(X, (list, tuple)):
            X = resize_images(X, self.image_size)
        return check_uint8_images(X, self.concept, "images", self.image_size)

    def _hashable(self, X: Any) -> tuple[Any, ...]:
        return tuple(X) if isinstance(X, (list, tuple)) else (X,)

    def _batch(self, Xt: torch.Tensor, idx: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return uint8_batch(Xt, idx, g, "h" if self.augment else "")
