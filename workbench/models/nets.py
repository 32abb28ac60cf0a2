"""The workbench's own nets: :class:`PartNet`, a leaf concept's tiny CNN over segment crops (built from
:class:`TinyCNN`, the conv stack :class:`~workbench.models.baseline.BaselineCNN` shares), and
:class:`CompositeNet`, a composite concept's logistic regression over its children's scores.

Both follow :mod:`workbench.models.contract`; PartNet trains with
:class:`~workbench.models.fitting.TorchConceptModel`'s loop. The source study's nets are in
:mod:`workbench.models.prototype_nets`.

>>> import numpy as np
>>> net = PartNet("disk")
>>> net.n_params  # under the part budget of fewer than 1,000
935
>>> PartNet("disk", channels=(16, 16, 16))
Traceback (most recent call last):
...
workbench.errors.ModelError: concept 'disk': PartNet has 4,785 parameters, over the budget of fewer than 1,000: use fewer or narrower conv layers (channels=(16, 16, 16), kernel_sizes=(1, 3, 3))
>>> comp = CompositeNet("flower_head", children=("disk", "petal")).fit(
...     np.array([[0.9, 0.8], [0.1, 0.9], [0.8, 0.1], [0.1, 0.2]] * 5), np.array([1, 0, 0, 0] * 5))
>>> comp.predict(np.array([[0.95, 0.9], [0.05, 0.9]])).tolist()
[True, False]
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import ModelError
from workbench.models.contract import COMPOSITE_PARAM_BUDGET, ConceptModel, check_labels
from workbench.models.fitting import (
    TorchConceptModel,
    balanced_weights,
    check_uint8_images,
    uint8_batch,
    using_torch_threads,
)

__all__ = ["TinyCNN", "PartNet", "CompositeNet"]


# ============================================================================================ TinyCNN
class TinyCNN(nn.Module):
    """conv blocks (conv, no bias → batch norm → ReLU → max-pool) then global max+avg pooling → Linear → logit.

    ``channels[i]`` output channels, ``kernel_sizes[i]`` (same padding), ``pools[i]`` (1 = none).
    """

    def __init__(self, channels: Sequence[int], kernel_sizes: Sequence[int], pools: Sequence[int]):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout, k, p in zip(channels, kernel_sizes, pools):
            layers += [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            if p > 1:
                layers.append(nn.MaxPool2d(p))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * cin, 1)  # [global max, global mean] of each channel → one logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        pooled = torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1)
        return self.head(pooled).squeeze(1)


# ============================================================================================ PartNet
class PartNet(TorchConceptModel):
    """A leaf concept's net in "segments" mode: segment crop (uint8 S×S×3 on black) → P(concept).

    Default architecture (935 parameters at S = 32; :class:`TinyCNN`)::

        1×1 conv 3→6 + BN + ReLU, max-pool 2     colour: which hues and brightness are there
        3×3 conv 6→8 + BN + ReLU, max-pool 2     local texture and edges
        3×3 conv 8→6 + BN + ReLU                 shape at the scale of the part
        [global max, global mean] of 6 maps → Linear(12→1) → sigmoid

    Parameters
    ----------
    concept: the concept id (named in errors and in the model file).
    crop_size: side S of the crops it takes (the segmenter's crop size).
    channels, kernel_sizes, pools: one entry per conv layer (at most 3), see :class:`TinyCNN`.
    max_epochs, batch_size, lr, weight_decay: Adam training.
    patience: epochs without a better validation loss before stopping (needs ``X_val``).
    augment: random flips and transposes of the crops while training.
    random_state: seed of initialisation, ordering and augmentation (None: a fresh one).
    torch_threads: torch intra-op threads while fitting/predicting (1: best on a busy 2-core machine).
    """

    input_kind = "crops"

    def __init__(
        self,
        concept: str = "part",
        *,
        crop_size: int = 32,
        channels: tuple[int, ...] = (6, 8, 6),
        kernel_sizes: tuple[int, ...] = (1, 3, 3),
        pools: tuple[int, ...] = (2, 2, 1),
        max_epochs: int = 30,
        batch_size: int = 64,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        patience: int = 5,
        augment: bool = True,
        random_state: int | None = 0,
        torch_threads: int = 1,
    ):
        self.concept = concept
        self.crop_size = crop_size
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
        self._check_params()

    def _build(self) -> nn.Module:
        return TinyCNN(self.channels, self.kernel_sizes, self.pools)

    def _check_X(self, X: Any) -> torch.Tensor:
        return check_uint8_images(X, self.concept, "segment crops", self.crop_size)

    def _batch(self, Xt: torch.Tensor, idx: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return uint8_batch(Xt, idx, g, "hvt" if self.augment else "")


# ============================================================================================ CompositeNet
class CompositeNet(ConceptModel):
    """A composite concept ("segments" mode): logistic regression over its children's scores.

    ``P = σ(b + Σ w_i·s_i [+ Σ_{i<j} v_ij·s_i·s_j] [+ Σ_r u_r·near_r])`` where ``s`` are the (frozen)
    children's scores in [0, 1], in the order of ``children``, and ``near_r`` one column per pair in
    ``relations`` (the best co-located evidence of two parts, :func:`workbench.models.hybrid.relation_scores`),
    after the children's columns. 1 + k (+ k(k-1)/2 with ``interactions``) + len(relations) parameters,
    at most ``max_params``. Fitted to convergence by L-BFGS on the class-balanced (``class_weight="balanced"``)
    log loss + ``l2``/2·|w|² (the intercept is not penalised): deterministic, no early stopping.
    ``formula()`` prints it.

    Parameters
    ----------
    concept: the concept id.  children: the children's ids, naming the columns of X (optional).
    interactions: add the pairwise products (e.g. "disk AND petal" beyond their sum).
    relations: pairs of children (parts), each adding a ``near(a,b)`` input column.
    l2: ridge penalty on the weights.  class_weight: "balanced" or None.
    max_params: the budget, checked when ``children`` is given and again in ``fit``.
    random_state, torch_threads: the contract's (the fit is deterministic whatever the seed).
    """

    input_kind = "scores"

    def __init__(
        self,
        concept: str = "composite",
        *,
        children: tuple[str, ...] = (),
        interactions: bool = False,
        relations: tuple[tuple[str, str], ...] = (),
        l2: float = 0.01,
        class_weight: str | None = "balanced",
        max_params: int = COMPOSITE_PARAM_BUDGET,
        random_state: int | None = 0,
        torch_threads: int = 1,
    ):
        self.concept = concept
        self.children = children
        self.interactions = interactions
        self.relations = tuple((str(a), str(b)) for a, b in relations)
        self.l2 = l2
        self.class_weight = class_weight
        self.max_params = max_params
        self.random_state = random_state
        self.torch_threads = torch_threads
        if class_weight not in ("balanced", None):
            raise ModelError(f"concept '{concept}': class_weight must be 'balanced' or None, got {class_weight!r}")
        if children:
            missing = [a for pair in self.relations for a in pair if a not in children]
            if missing:
                raise ModelError(f"concept '{concept}': relation(s) name {', '.join(sorted(set(missing)))}, "
                                 f"not among its children {', '.join(children)}")
            self._check_budget(len(children))

    def _count(self, k: int) -> int:
        """Parameters for ``k`` children (the relation columns come on top)."""
        return 1 + k + (k * (k - 1) // 2 if self.interactions else 0) + len(self.relations)

    def _check_budget(self, k: int) -> None:
        n = self._count(k)
        if n > self.max_params:
            raise ModelError(
                f"concept '{self.concept}': CompositeNet over {k} children has {n} parameters, over the budget of "
                f"{self.max_params}: turn off interactions or group children under an intermediate concept"
            )

    @property
    def n_params(self) -> int:
        if hasattr(self, "n_children_"):
            return self._count(self.n_children_)
        if self.children:
            return self._count(len(self.children))
        raise ModelError(f"concept '{self.concept}': parameter count unknown until children= is given or fit runs")

    def _design(self, X: np.ndarray) -> np.ndarray:
        """Children's columns, their pairwise products (with interactions), then the relation columns."""
        r = len(self.relations)
        kids, rel = (X[:, : X.shape[1] - r], X[:, X.shape[1] - r :]) if r else (X, X[:, :0])
        if not self.interactions:
            return np.column_stack([kids, rel]) if r else kids
        k = kids.shape[1]
        pairs = [kids[:, i] * kids[:, j] for i in range(k) for j in range(i + 1, k)]
        return np.column_stack([kids] + pairs + [rel]) if (pairs or r) else kids

    def _check_X(self, X: Any, k: int | None) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or (k is not None and X.shape[1] != k) or not np.isfinite(X).all():
            want = f"N×{k}" if k is not None else "N×k"
            rel = f" then {len(self.relations)} relation column(s)" if self.relations else ""
            raise ModelError(f"concept '{self.concept}': X must be the children's scores{rel}, finite floats {want}, "
                             f"got {X.shape}")
        return X

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> "CompositeNet":
        started = time.perf_counter()
        r = len(self.relations)
        k = len(self.children) + r if self.children else None
        X = self._check_X(X, k)
        yb = check_labels(y, len(X), self.concept, need_both=True)
        if X.shape[1] <= r:
            raise ModelError(f"concept '{self.concept}': X has {X.shape[1]} columns, not enough for its children and "
                             f"{r} relation column(s)")
        self._check_budget(X.shape[1] - r)
        D = torch.from_numpy(self._design(X))
        yt = torch.from_numpy(yb.astype(np.float64))
        w = torch.from_numpy(balanced_weights(yb).astype(np.float64)) if self.class_weight else torch.ones(len(yb), dtype=torch.float64)
        with using_torch_threads(self.torch_threads):
            beta = torch.zeros(D.shape[1], dtype=torch.float64, requires_grad=True)
            b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
            opt = torch.optim.LBFGS([beta, b], lr=1, max_iter=500, tolerance_grad=1e-10, tolerance_change=1e-14,
                                    history_size=20, line_search_fn="strong_wolfe")

            def closure() -> torch.Tensor:
                opt.zero_grad()
                z = D @ beta + b
                loss = (F.binary_cross_entropy_with_logits(z, yt, reduction="none") * w).sum() / w.sum()
                loss = loss + 0.5 * self.l2 * (beta * beta).sum()
                loss.backward()
                return loss

            opt.step(closure)
        self.n_children_ = X.shape[1] - r
        coef = beta.detach().numpy().copy()
        self.coef_ = coef[: self.n_children_]
        self.interaction_coef_ = coef[self.n_children_ : len(coef) - r]
        self.relation_coef_ = coef[len(coef) - r :]
        self.intercept_ = float(b.detach()[0])
        Xv = self._check_X(X_val, self.n_children_ + r) if X_val is not None and y_val is not None and len(y_val) else None
        self._finish_fit(X, yb, Xv, y_val, started)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return self._predict_proba(X)

    def _predict_proba(self, X: Any) -> np.ndarray:
        X = self._check_X(X, self.n_children_ + len(self.relations))
        z = self._design(X) @ np.concatenate([self.coef_, self.interaction_coef_, self.relation_coef_]) + self.intercept_
        return 1.0 / (1.0 + np.exp(-z))

    def formula(self) -> str:
        """The fitted model as one readable line, e.g. ``σ(-5.1 + 4.2·disk + 3.9·petal)``."""
        self._check_fitted()
        names = list(self.children) or [f"x{i}" for i in range(self.n_children_)]
        terms = [f"{c:+.2f}·{n}" for c, n in zip(self.coef_, names)]
        pairs = [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]
        terms += [f"{c:+.2f}·{a}·{b}" for c, (a, b) in zip(self.interaction_coef_, pairs)]
        terms += [f"{c:+.2f}·near({a},{b})" for c, (a, b) in zip(self.relation_coef_, self.relations)]
        return f"{self.concept} = σ({self.intercept_:.2f} " + " ".join(terms) + ")"

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return (
            {"coef": torch.from_numpy(self.coef_.copy()), "interaction_coef": torch.from_numpy(self.interaction_coef_.copy()),
             **({"relation_coef": torch.from_numpy(self.relation_coef_.copy())} if self.relations else {})},
            {"intercept": self.intercept_, "n_children": self.n_children_},
        )

    def _restore(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        k = int(state["n_children"])
        coef = tensors["coef"].double().numpy()
        inter = tensors["interaction_coef"].double().numpy()
        r = len(self.relations)
        rel = tensors["relation_coef"].double().numpy() if r else np.zeros(0)
        if coef.shape != (k,) or inter.shape != (self._count(k) - 1 - k - r,) or rel.shape != (r,):
            raise ModelError(f"weights of shapes {coef.shape}, {inter.shape}, {rel.shape} do not match {k} children "
                             f"and {r} relation(s)")
        self.n_children_, self.coef_, self.interaction_coef_, self.relation_coef_ = k, coef, inter, rel
        self.intercept_ = float(state["intercept"])

