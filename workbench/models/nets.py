"""Concept models: one tiny net (or rule, see :mod:`workbench.models.rules`) per concept of the ontology.

Every model follows one estimator contract (scikit-learn's, see STYLE.md):

- ``__init__`` stores its parameters and nothing else (nets also check their parameter budget there,
  on a weightless copy, so an over-budget configuration fails where it is written);
- ``fit(X, y, X_val=None, y_val=None) -> self``; everything learned ends in ``_``
  (``module_``, ``metrics_``, ``data_hash_`` ...); randomness only through ``random_state``;
- ``predict_proba(X) -> np.ndarray`` of P(concept) in [0, 1], one per row; ``predict(X)``;
  ``evaluate(X, y) -> dict``; ``n_params``; ``get_params()`` / ``clone(**changes)``;
- ``save(path)`` / ``load(path)``: one safetensors file whose JSON header carries
  ``{format, version, model, config, state, metrics, data_hash, n_params}``. No pickle is ever read.

The models, by what they take as ``X``:

============================  ==========================================  =======================
model                         X                                           parameters
============================  ==========================================  =======================
:class:`PartNet`              segment crops, uint8 N×S×S×3 (S=32)         < 1000, ≤ 3 conv layers
:class:`PrototypeLeafNet`     crops N×256×256×3; ``feature_map`` on images 960 (the study's leaf)
:class:`PrototypeParentNet`   children's maps N×k×h×w                     9k + 7 (25 for k = 2)
:class:`CompositeNet`         children's scores N×k in [0, 1]             1 + k (+ k(k-1)/2)
``rules.RuleModel``           crops or ``rules.SegmentFeatures``          1 (a threshold)
``baseline.BaselineCNN``      whole images, resized to 64×64              < 1000, ≤ 3 conv layers
============================  ==========================================  =======================

>>> import numpy as np
>>> net = PartNet("disk")
>>> net.n_params < PART_PARAM_BUDGET
True
>>> PartNet("disk", channels=(16, 16, 16))
Traceback (most recent call last):
...
workbench.errors.ModelError: concept 'disk': PartNet has 4,785 parameters, over the budget of fewer than 1,000: use fewer or narrower conv layers (channels=(16, 16, 16), kernel_sizes=(1, 3, 3))
>>> PrototypeLeafNet("petal").n_params, PrototypeParentNet("flower_head", n_children=2).n_params
(960, 25)
>>> comp = CompositeNet("flower_head", children=("disk", "petal")).fit(
...     np.array([[0.9, 0.8], [0.1, 0.9], [0.8, 0.1], [0.1, 0.2]] * 5), np.array([1, 0, 0, 0] * 5))
>>> comp.predict(np.array([[0.95, 0.9], [0.05, 0.9]])).tolist()
[True, False]
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import struct
import time
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench._io import atomic_write_bytes
from workbench._version import __version__
from workbench.errors import ModelError, NotFittedError

__all__ = [
    "PART_PARAM_BUDGET",
    "MAX_CONV_LAYERS",
    "COMPOSITE_PARAM_BUDGET",
    "MODEL_FILE_FORMAT",
    "MODEL_FILE_VERSION",
    "ConceptModel",
    "TorchConceptModel",
    "TinyCNN",
    "PartNet",
    "PrototypeLeafNet",
    "PrototypeParentNet",
    "CompositeNet",
    "load_model",
    "read_model_info",
    "binary_metrics",
    "data_hash",
    "center_crop_maps",
    "prototype_map_side",
]

#: A part net (and the baseline) must have strictly fewer trainable parameters than this.
PART_PARAM_BUDGET = 1000
#: ... and at most this many conv layers.
MAX_CONV_LAYERS = 3
#: A composite has "a few dozen" parameters at most.
COMPOSITE_PARAM_BUDGET = 64
#: Written in every model file's header; :meth:`ConceptModel.load` refuses anything else.
MODEL_FILE_FORMAT = "workbench.concept_model"
#: Bump when a saved model could no longer be read back the same way.
MODEL_FILE_VERSION = 1
#: Model files are tiny (a few KB); refuse to read anything larger than this.
MAX_MODEL_FILE_BYTES = 64 * 1024 * 1024

_MODEL_CLASSES: dict[str, type["ConceptModel"]] = {}


# ============================================================================================ helpers
def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall of the two classes), log loss and counts.

    >>> binary_metrics(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.2, 0.1]))["balanced_accuracy"]
    0.75
    """
    y = np.asarray(y).astype(bool).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if len(y) == 0:
        return {"accuracy": None, "balanced_accuracy": None, "log_loss": None, "examples": 0, "positives": 0}
    pred = p >= threshold
    recalls = [float(np.mean(pred[y == c] == c)) for c in (False, True) if np.any(y == c)]
    q = np.clip(p, 1e-7, 1 - 1e-7)
    loss = -np.mean(np.where(y, np.log(q), np.log1p(-q)))
    return {
        "accuracy": round(float(np.mean(pred == y)), 6),
        "balanced_accuracy": round(float(np.mean(recalls)), 6),
        "log_loss": round(float(loss), 6),
        "examples": int(len(y)),
        "positives": int(y.sum()),
    }


def data_hash(*arrays: Any) -> str:
    """A content hash of training data (dtype, shape and bytes of each array), ``sha256:<hex>``.

    >>> data_hash(np.zeros(3)) == data_hash(np.zeros(3)) != data_hash(np.ones(3))
    True
    """
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


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


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
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


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def _balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per-example weights so both classes weigh the same in the loss (n / (2 n_class))."""
    y = y.astype(bool)
    n, npos = len(y), int(y.sum())
    w = np.empty(n, dtype=np.float32)
    w[y] = n / (2.0 * max(npos, 1))
    w[~y] = n / (2.0 * max(n - npos, 1))
    return w


# ============================================================================================ base
class ConceptModel:
    """The contract every concept model follows (see the module docstring).

    Subclasses implement ``fit``, ``predict_proba``, ``n_params`` and the two hooks that map their
    learned state to a file: ``_state()`` -> (tensors, plain-data state) and ``_restore(...)``.
    """

    #: What ``X`` is: "crops" (uint8 N×S×S×3), "scores" (N×k), "maps" (N×k×h×w), "images", "features".
    input_kind: ClassVar[str] = "crops"
    concept: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _MODEL_CLASSES[cls.__name__] = cls

    # ------------------------------------------------------------------------- parameters (sklearn)
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [n for n, p in sig.parameters.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as given (``fit`` never changes them)."""
        return {n: getattr(self, n) for n in self._param_names()}

    def clone(self, **changes: Any) -> "ConceptModel":
        """A new, unfitted model with the same parameters except ``changes`` (e.g. another seed)."""
        params = self.get_params()
        unknown = set(changes) - set(params)
        if unknown:
            raise ModelError(f"{type(self).__name__} has no parameter(s) {sorted(unknown)}; known: {sorted(params)}")
        params.update(changes)
        return type(self)(**params)

    def __repr__(self) -> str:
        defaults = {n: p.default for n, p in inspect.signature(type(self).__init__).parameters.items()}
        shown = [f"{k}={v!r}" for k, v in self.get_params().items() if k == "concept" or defaults.get(k) != v]
        return f"{type(self).__name__}({', '.join(shown)})"

    # ------------------------------------------------------------------------------- the contract
    @property
    def n_params(self) -> int:
        """Trainable parameters (batch-norm scale and shift included; running statistics are not)."""
        raise NotImplementedError

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> "ConceptModel":
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        """Boolean decision per row: ``predict_proba(X) >= threshold``."""
        return self.predict_proba(X) >= threshold

    def evaluate(self, X: Any, y: Any) -> dict[str, Any]:
        """:func:`binary_metrics` of this model on ``(X, y)``."""
        return binary_metrics(np.asarray(y), self.predict_proba(X))

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "metrics_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"concept '{self.concept}': this {type(self).__name__} is not fitted yet: call fit(X, y) "
                f"first (or `workbench train {self.concept}`)"
            )

    def _finish_fit(self, X: Any, y: np.ndarray, X_val: Any, y_val: Any, started: float, **extra: Any) -> None:
        """Record the metrics every model reports, and the hash of the data it was trained on."""
        self.data_hash_ = data_hash(*self._hashable(X), y)
        train = binary_metrics(y, self.predict_proba_unchecked(X))
        m: dict[str, Any] = {f"train_{k}": v for k, v in train.items()}
        if X_val is not None and y_val is not None and len(y_val):
            val = binary_metrics(np.asarray(y_val), self.predict_proba_unchecked(X_val))
            m.update({f"val_{k}": v for k, v in val.items()})
        else:
            m.update({f"val_{k}": None for k in train})
        m.update(extra)
        m["fit_seconds"] = round(time.perf_counter() - started, 3)
        m["n_params"] = self.n_params
        self.metrics_ = m

    def _hashable(self, X: Any) -> tuple[Any, ...]:
        return (X,)

    def predict_proba_unchecked(self, X: Any) -> np.ndarray:  # used by _finish_fit before metrics_ exists
        return self._predict_proba(X)

    def _predict_proba(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------- files
    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        raise NotImplementedError

    def _restore(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to ``path`` (one safetensors file, written atomically)."""
        from safetensors.torch import save as st_save

        self._check_fitted()
        tensors, state = self._state()
        header = {
            "format": MODEL_FILE_FORMAT,
            "version": MODEL_FILE_VERSION,
            "workbench_version": __version__,
            "model": type(self).__name__,
            "concept": self.concept,
            "config": _jsonable(self.get_params()),
            "state": _jsonable(state),
            "metrics": _jsonable(self.metrics_),
            "data_hash": self.data_hash_,
            "n_params": self.n_params,
        }
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        data = st_save(tensors, metadata={"workbench": json.dumps(header, sort_keys=True)})
        path = Path(path)
        atomic_write_bytes(path, data)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ConceptModel":
        """Read a model written by :meth:`save`. ``ConceptModel.load`` returns whichever class it holds.

        Refuses, with a :class:`ModelError` naming the file: another format version, a file of another
        model class (when called on a subclass), a corrupt or foreign file (a pickle is never run).
        """
        from safetensors.torch import load as st_load

        path = Path(path)
        header, data = _read_header(path)
        name = header.get("model")
        klass = _MODEL_CLASSES.get(name) if isinstance(name, str) else None
        if klass is None:
            raise ModelError(f"{path}: unknown model class {name!r}; known: {sorted(_MODEL_CLASSES)}")
        if cls is not ConceptModel and not issubclass(klass, cls):
            raise ModelError(f"{path}: holds a {name}, not a {cls.__name__}: load it with load_model(path)")
        try:
            tensors = st_load(data)
            config = dict(header["config"])
            for k, v in config.items():
                if isinstance(v, list):
                    config[k] = tuple(v)
            model = klass(**config)
            model._restore(tensors, dict(header.get("state") or {}))
            model.metrics_ = dict(header["metrics"])
            model.data_hash_ = str(header["data_hash"])
        except ModelError as e:
            raise ModelError(f"{path}: {e}") from None
        except Exception as e:  # noqa: BLE001 - any failure here means a damaged file
            raise ModelError(f"{path}: corrupt model file ({type(e).__name__}: {e}); retrain it") from None
        return model


def _read_header(path: Path) -> tuple[dict[str, Any], bytes]:
    """Parse the safetensors JSON header ourselves: 8-byte little-endian length, then JSON."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelError(f"{path}: model file not found: train the concept first") from None
    if size > MAX_MODEL_FILE_BYTES:
        raise ModelError(f"{path}: {size} bytes, over the {MAX_MODEL_FILE_BYTES}-byte limit for a model file")
    data = path.read_bytes()
    bad = f"{path}: not a workbench model file (corrupt, truncated, or another format such as a pickle)"
    if len(data) < 8:
        raise ModelError(bad)
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ModelError(bad)
    try:
        meta = json.loads(data[8 : 8 + n].decode("utf-8"))["__metadata__"]
        header = json.loads(meta["workbench"])
    except Exception:  # noqa: BLE001
        raise ModelError(bad) from None
    if not isinstance(header, dict) or header.get("format") != MODEL_FILE_FORMAT:
        raise ModelError(bad)
    version = header.get("version")
    if version != MODEL_FILE_VERSION:
        raise ModelError(
            f"{path}: model file format version {version!r} (written by workbench "
            f"{header.get('workbench_version', '?')}); this workbench {__version__} reads version "
            f"{MODEL_FILE_VERSION}: retrain it (`workbench train {header.get('concept', '<concept>')}`)"
        )
    return header, data


def read_model_info(path: str | Path) -> dict[str, Any]:
    """The header of a model file (model class, concept, config, metrics, data_hash, n_params), no weights.

    Cheap: for reports and for deciding what must retrain.
    """
    header, _ = _read_header(Path(path))
    return header


def load_model(path: str | Path) -> ConceptModel:
    """Load any concept model file (same as ``ConceptModel.load``)."""
    return ConceptModel.load(path)


# ============================================================================================ torch nets
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


class TorchConceptModel(ConceptModel):
    """Shared training loop for the nets: Adam, class-balanced BCE, seeded generator, early stopping.

    One epoch visits every training example once in a seeded random order; each example's loss is
    weighted so positives and negatives count the same (balanced). With ``X_val``, training stops
    after ``patience`` epochs without a better (balanced) validation loss and keeps the best epoch;
    without it, it runs ``max_epochs``.
    """

    max_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int
    augment: bool
    random_state: int | None
    n_threads: int
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

    # budget -----------------------------------------------------------------------------------
    def _check_budget(self, limit: int = PART_PARAM_BUDGET) -> None:
        n = self.n_params
        convs = sum(isinstance(m, nn.Conv2d) for m in self._meta_module().modules())
        if n >= limit or convs > MAX_CONV_LAYERS:
            what = self.get_params()
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
    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> "TorchConceptModel":
        started = time.perf_counter()
        Xt = self._check_X(X)
        yn = _check_y(y, len(Xt), self.concept, need_both=True)
        Xv = yv = None
        if X_val is not None and y_val is not None and len(y_val):
            Xv = self._check_X(X_val)
            yv = _check_y(y_val, len(Xv), self.concept, need_both=False)
        with _torch_threads(self.n_threads):
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
        return _run_batches(self, self.module_, Xt, lambda out: torch.sigmoid(out))

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


def _check_y(y: Any, n: int, concept: str, need_both: bool) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ModelError(f"concept '{concept}': y must be 1-D with one label per row of X ({n}), got shape {y.shape}")
    if y.dtype != bool and not np.isin(y, (0, 1)).all():
        raise ModelError(f"concept '{concept}': y must hold 0/1 (or booleans); got values {np.unique(y)[:5]}")
    y = y.astype(bool)
    if need_both and (y.all() or not y.any()):
        which = "negative" if y.all() else "positive"
        raise ModelError(
            f"concept '{concept}': training needs positive and negative examples, got {int(y.sum())} positive of "
            f"{n}: label some {which} examples ({'other concepts or none' if which == 'negative' else concept})"
        )
    return y


def _check_uint8_images(X: Any, concept: str, what: str, size: int | None) -> torch.Tensor:
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


def _uint8_batch(Xt: torch.Tensor, idx: torch.Tensor, g: torch.Generator | None, flips: str) -> torch.Tensor:
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


def _run_batches(model: TorchConceptModel, module: nn.Module, Xt: torch.Tensor, post: Any) -> np.ndarray:
    outs = []
    with _torch_threads(model.n_threads), torch.no_grad():
        for start in range(0, len(Xt), model._predict_batch):
            idx = torch.arange(start, min(start + model._predict_batch, len(Xt)))
            outs.append(post(module(model._batch(Xt, idx, None))).double())
    if not outs:
        return np.zeros(0)
    return torch.cat(outs).numpy()


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
    wt = torch.from_numpy(_balanced_weights(y))
    opt = torch.optim.Adam(module.parameters(), lr=model.lr, weight_decay=model.weight_decay)
    best_loss, best_state, best_epoch, epochs = math.inf, None, -1, 0
    if Xv is not None:
        yvt = torch.from_numpy(yv.astype(np.float32))
        wvt = torch.from_numpy(_balanced_weights(yv))
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
        elif epoch - best_epoch >= model.patience:
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    return {
        "epochs": epochs,
        "best_epoch": (best_epoch + 1) if best_state is not None else epochs,
        "val_balanced_loss": round(best_loss, 6) if best_state is not None else None,
    }


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
    n_threads: torch intra-op threads while fitting/predicting (1: best on a busy 2-core machine).
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
        n_threads: int = 1,
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
        self.n_threads = n_threads
        if not (len(channels) == len(kernel_sizes) == len(pools)):
            raise ModelError(
                f"concept '{concept}': channels, kernel_sizes and pools need one entry per conv layer, got "
                f"{len(channels)}, {len(kernel_sizes)} and {len(pools)}"
            )
        self._check_budget()

    def _build(self) -> nn.Module:
        return TinyCNN(self.channels, self.kernel_sizes, self.pools)

    def _check_X(self, X: Any) -> torch.Tensor:
        return _check_uint8_images(X, self.concept, "segment crops", self.crop_size)

    def _batch(self, Xt: torch.Tensor, idx: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return _uint8_batch(Xt, idx, g, "hvt" if self.augment else "")


# ============================================================================================ prototype
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
        n_threads: int = 1,
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
        self.n_threads = n_threads
        if prototype_map_side(input_size, pool) < 1:
            raise ModelError(
                f"concept '{concept}': input_size={input_size} is too small for the prototype leaf with pool={pool} "
                f"(three valid convs 5, 3, 3 each pooled by {pool}): use input_size >= {_min_prototype_input(pool)}"
            )
        self._check_budget()

    def _build(self) -> nn.Module:
        return _PrototypeLeafModule(prototype_map_side(self.input_size, self.pool), self.pool)

    def _check_X(self, X: Any) -> torch.Tensor:
        return _check_uint8_images(X, self.concept, "segment crops", self.input_size)

    def _batch(self, Xt: torch.Tensor, idx: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return _uint8_batch(Xt, idx, g, "hvt" if self.augment else "")

    def _images(self, images: Any) -> torch.Tensor:
        Xt = _check_uint8_images(images, self.concept, "images", None)
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
        return _run_batches(self, self.module_.features, Xt, lambda out: out[:, 0])

    def score_map(self, images: np.ndarray) -> np.ndarray:
        """P(concept) for every ``input_size`` window of each image (stride = the total pooling): N×h'×w'."""
        self._check_fitted()
        Xt = self._images(images)
        head = self.module_.head
        s = self.module_.map_side
        kernel = head.weight.view(1, 1, s, s)

        def post(out: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(F.conv2d(out, kernel, head.bias))[:, 0]

        return _run_batches(self, self.module_.features, Xt, post)


def _min_prototype_input(pool: int) -> int:
    s = 1
    while prototype_map_side(s, pool) < 1:
        s += 1
    return s


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
        n_threads: int = 1,
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
        self.n_threads = n_threads
        if n_children < 1 or (crop - 2) // pool < 1:
            raise ModelError(f"concept '{concept}': need n_children >= 1 and crop >= 2 + pool (got {n_children}, {crop})")
        self._check_budget(COMPOSITE_PARAM_BUDGET + 1)

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
        return _run_batches(self, nn.Sequential(), Xt, lambda x: m.features(center_crop_maps(x, m.crop))[:, 0])


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
    random_state, n_threads: the contract's (the fit is deterministic whatever the seed).
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
        n_threads: int = 1,
    ):
        self.concept = concept
        self.children = children
        self.interactions = interactions
        self.relations = tuple((str(a), str(b)) for a, b in relations)
        self.l2 = l2
        self.class_weight = class_weight
        self.max_params = max_params
        self.random_state = random_state
        self.n_threads = n_threads
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
        yb = _check_y(y, len(X), self.concept, need_both=True)
        if X.shape[1] <= r:
            raise ModelError(f"concept '{self.concept}': X has {X.shape[1]} columns, not enough for its children and "
                             f"{r} relation column(s)")
        self._check_budget(X.shape[1] - r)
        D = torch.from_numpy(self._design(X))
        yt = torch.from_numpy(yb.astype(np.float64))
        w = torch.from_numpy(_balanced_weights(yb).astype(np.float64)) if self.class_weight else torch.ones(len(yb), dtype=torch.float64)
        with _torch_threads(self.n_threads):
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
