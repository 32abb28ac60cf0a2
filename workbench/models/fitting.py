"""Fitting the torch nets: :class:`TorchConceptModel`, the base every conv net of the workbench shares.

It owns what the nets have in common: the configuration check (layer lists, conv-layer count and
parameter budget, on a weightless copy), seeded initialisation that never draws from torch's global
RNG, the training loop (Adam on the class-balanced log loss, seeded order and augmentation, early
stopping on the validation loss), prediction in batches, the torch thread count around all of it,
and the module's state in the model file. A net only says how it is built (``_build``), what ``X``
it takes (``_check_X``) and how a batch is made (``_batch``).

The helpers the nets use to say so are here too: :func:`check_uint8_images`, :func:`uint8_batch`
(with random flips while training), :func:`run_batches`, and for the composite's own fit
:func:`balanced_weights` and :func:`using_torch_threads`.

>>> balanced_weights(np.array([1, 0, 0, 0])).tolist()
[2.0, 0.6666666865348816, 0.6666666865348816, 0.6666666865348816]
"""
from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import ModelError
from workbench.models.contract import (
    MAX_CONV_LAYERS,
    PART_PARAM_BUDGET,
    ConceptModel,
    check_labels,
)

__all__ = [
    "TorchConceptModel",
    "using_torch_threads",
    "balanced_weights",
    "check_uint8_images",
    "uint8_batch",
    "run_batches",
]

#: Parameters of nets built from one entry per conv layer (:class:`workbench.models.nets.TinyCNN`).
_LAYER_LISTS = ("channels", "kernel_sizes", "pools")


# ============================================================================================ helpers
@contextlib.contextmanager
def using_torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, then restore (process-wide: not for concurrent threads)."""
    old = torch.get_num_threads()
    if n != old:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if n != old:
            torch.set_num_threads(old)


def _seed(random_state: int | None) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    return int(random_state)


def _reset_parameters(module: nn.Module, g: torch.Generator) -> None:
    """PyTorch's default init (uniform ±1/sqrt(fan_in)) drawn from ``g``, not the global RNG."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            with torch.no_grad():
                m.weight.uniform_(-bound, bound, generator=g)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound, generator=g)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()


def _count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per-example weights so both classes weigh the same in the loss (n / (2 n_class))."""
    y = y.astype(bool)
    n, npos = len(y), int(y.sum())
    w = np.empty(n, dtype=np.float32)
    w[y] = n / (2.0 * max(npos, 1))
    w[~y] = n / (2.0 * max(n - npos, 1))
    return w


def check_uint8_images(X: Any, concept: str, what: str, size: int | None) -> torch.Tensor:
    """``X`` as a tensor if it is uint8 N×S×S×3 (S = ``size`` when given); else a ModelError naming ``what``."""
    if not isinstance(X, np.ndarray) or X.dtype != np.uint8 or X.ndim != 4 or X.shape[-1] != 3:
        shape = getattr(X, "shape", None)
        dtype = getattr(X, "dtype", type(X).__name__)
        raise ModelError(f"concept '{concept}': X must be {what} as a uint8 array N×S×S×3, got {dtype} {shape}")
    if size is not None and X.shape[1:3] != (size, size):
        raise ModelError(
            f"concept '{concept}': X must be {size}×{size} {what}, got {X.shape[1]}×{X.shape[2]}: crop at "
            f"size={size} (or build the model with the size you crop at)"
        )
    return torch.from_numpy(np.ascontiguousarray(X))


def uint8_batch(Xt: torch.Tensor, idx: torch.Tensor, g: torch.Generator | None, flips: str) -> torch.Tensor:
    """uint8 N×H×W×3 rows ``idx`` → float N×3×H×W in [0, 1]; with ``g``, random flips per example.

    ``flips``: "" none; "h" horizontal; "hvt" horizontal, vertical and transpose (the 8 symmetries of a
    square: label-preserving for a segment on black background).
    """
    x = Xt[idx].permute(0, 3, 1, 2).float().div_(255.0)
    if g is not None and flips:
        n = x.shape[0]
        for axis in flips:
            m = (torch.rand(n, generator=g) < 0.5).view(n, 1, 1, 1)
            if axis == "h":
                x = torch.where(m, x.flip(3), x)
            elif axis == "v":
                x = torch.where(m, x.flip(2), x)
            elif axis == "t" and x.shape[2] == x.shape[3]:
                x = torch.where(m, x.transpose(2, 3), x)
    return x


# ============================================================================================ base
class TorchConceptModel(ConceptModel):
    """Shared training loop for the nets: Adam, class-balanced BCE, seeded generator, early stopping.

    One epoch visits every training example once in a seeded random order; each example's loss is
    weighted so positives and negatives count the same (balanced). With ``X_val``, training stops
    after ``patience`` epochs without a better (balanced) validation loss, once that loss has beaten
    chance (:data:`CHANCE_LOSS`: before, a net on its first plateau keeps training), and keeps the best
    epoch; without it, it runs ``max_epochs``.
    """

    max_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int
    augment: bool
    random_state: int | None
    torch_threads: int
    #: Strictly fewer trainable parameters than this (:meth:`_check_params`).
    param_budget: ClassVar[int] = PART_PARAM_BUDGET
    _predict_batch: ClassVar[int] = 512

    # hooks ----------------------------------------------------------------------------------------
    def _build(self) -> nn.Module:
        """A fresh module whose forward maps a float batch to logits of shape (N,)."""
        raise NotImplementedError

    def _check_X(self, X: Any) -> Any:
        """Validate ``X``; return what ``_batch`` indexes (kept compact: uint8 stays uint8)."""
        raise NotImplementedError

    def _batch(self, Xt: torch.Tensor, idx: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Float batch for the module; ``g`` given means training (augment if enabled)."""
        raise NotImplementedError

    # configuration ----------------------------------------------------------------------------
    def _check_params(self) -> None:
        """The configuration check every net runs, from ``__init__`` (so a bad configuration fails where
        it is written) and again from ``fit``: one ``channels``/``kernel_sizes``/``pools`` entry per conv
        layer (nets built from those lists), at most :data:`MAX_CONV_LAYERS` conv layers and fewer than
        :attr:`param_budget` parameters, counted on a weightless copy. A net with more to check
        overrides this and calls it."""
        what = self.get_params()
        if all(k in what for k in _LAYER_LISTS):
            lengths = [len(what[k]) for k in _LAYER_LISTS]
            if len(set(lengths)) > 1:
                raise ModelError(
                    f"concept '{self.concept}': channels, kernel_sizes and pools need one entry per conv layer, "
                    f"got {lengths[0]}, {lengths[1]} and {lengths[2]}"
                )
        meta = self._meta_module()
        n = _count_params(meta)
        convs = sum(isinstance(m, nn.Conv2d) for m in meta.modules())
        limit = self.param_budget
        if n >= limit or convs > MAX_CONV_LAYERS:
            knobs = ", ".join(f"{k}={what[k]!r}" for k in ("channels", "kernel_sizes", "input_size", "n_children") if k in what)
            over = (
                f"{convs} conv layers, over the limit of {MAX_CONV_LAYERS}"
                if convs > MAX_CONV_LAYERS
                else f"{n:,} parameters, over the budget of fewer than {limit:,}"
            )
            raise ModelError(
                f"concept '{self.concept}': {type(self).__name__} has {over}: use fewer or narrower conv layers ({knobs})"
            )

    def _meta_module(self) -> nn.Module:
        with torch.device("meta"):
            return self._build()

    def _fresh_module(self, g: torch.Generator | None) -> nn.Module:
        """The module on the CPU, initialised from ``g`` (the global RNG is never drawn from)."""
        module = self._meta_module().to_empty(device="cpu")
        _reset_parameters(module, g if g is not None else torch.Generator().manual_seed(0))
        return module

    @property
    def n_params(self) -> int:
        return _count_params(self.module_ if hasattr(self, "module_") else self._meta_module())

    # training ---------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> TorchConceptModel:
        started = time.perf_counter()
        self._check_params()
        Xt = self._check_X(X)
        yn = check_labels(y, len(Xt), self.concept, need_both=True)
        Xv = yv = None
        if X_val is not None and y_val is not None and len(y_val):
            Xv = self._check_X(X_val)
            yv = check_labels(y_val, len(Xv), self.concept, need_both=False)
        with using_torch_threads(self.torch_threads):
            g = torch.Generator().manual_seed(_seed(self.random_state))
            module = self._fresh_module(g)
            history = _train_loop(self, module, Xt, yn, Xv, yv, g)
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self.module_ = module
        self._finish_fit(X, yn, X_val if Xv is not None else None, yv, started, **history)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return self._predict_proba(X)

    def _predict_proba(self, X: Any) -> np.ndarray:
        Xt = self._check_X(X)
        return run_batches(self, self.module_, Xt, lambda out: torch.sigmoid(out))

    # files ----------------------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return dict(self.module_.state_dict()), {}

    def _restore(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        module = self._fresh_module(None)
        module.load_state_dict(tensors, strict=True)
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self.module_ = module


def run_batches(
    model: TorchConceptModel, module: nn.Module, Xt: torch.Tensor, post: Callable[[torch.Tensor], torch.Tensor]
) -> np.ndarray:
    """``post(module(batch))`` over ``Xt`` in the model's prediction batches (no augmentation, no
    gradients, the model's thread count), concatenated as float64."""
    outs = []
    with using_torch_threads(model.torch_threads), torch.no_grad():
        for start in range(0, len(Xt), model._predict_batch):
            idx = torch.arange(start, min(start + model._predict_batch, len(Xt)))
            outs.append(post(module(model._batch(Xt, idx, None))).double())
    if not outs:
        return np.zeros(0)
    return torch.cat(outs).numpy()


#: The class-balanced log loss of a constant answer (ln 2, a little below): a net whose best validation
#: loss is above it has not learned anything yet, so early stopping waits.
CHANCE_LOSS = math.log(2) - 0.01


def _train_loop(
    model: TorchConceptModel,
    module: nn.Module,
    Xt: torch.Tensor,
    y: np.ndarray,
    Xv: torch.Tensor | None,
    yv: np.ndarray | None,
    g: torch.Generator,
) -> dict[str, Any]:
    yt = torch.from_numpy(y.astype(np.float32))
    wt = torch.from_numpy(balanced_weights(y))
    opt = torch.optim.Adam(module.parameters(), lr=model.lr, weight_decay=model.weight_decay)
    best_loss, best_state, best_epoch, epochs = math.inf, None, -1, 0
    if Xv is not None:
        yvt = torch.from_numpy(yv.astype(np.float32))
        wvt = torch.from_numpy(balanced_weights(yv))
    for epoch in range(model.max_epochs):
        module.train()
        for idx in torch.randperm(len(Xt), generator=g).split(model.batch_size):
            if len(idx) < 2:  # batch norm needs two examples
                continue
            logits = module(model._batch(Xt, idx, g))
            loss = (F.binary_cross_entropy_with_logits(logits, yt[idx], reduction="none") * wt[idx]).sum() / wt[idx].sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        epochs = epoch + 1
        if Xv is None:
            continue
        module.eval()
        with torch.no_grad():
            logits = torch.cat(
                [module(model._batch(Xv, i, None)) for i in torch.arange(len(Xv)).split(model._predict_batch)]
            )
            vloss = float((F.binary_cross_entropy_with_logits(logits, yvt, reduction="none") * wvt).sum() / wvt.sum())
        if vloss < best_loss - 1e-4:
            best_loss, best_epoch = vloss, epoch
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        elif epoch - best_epoch >= model.patience and best_loss < CHANCE_LOSS:
            # patience counts only once the net has beaten chance: a net still on its first plateau
            # (some part nets sit there for several epochs before they start to learn) keeps training
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    return {
        "epochs": epochs,
        "best_epoch": (best_epoch + 1) if best_state is not None else epochs,
        "val_balanced_loss": round(best_loss, 6) if best_state is not None else None,
    }
