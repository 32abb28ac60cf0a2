"""The estimator contract every concept model follows (scikit-learn's), and the parameter budgets.

- ``__init__`` stores its parameters and nothing else (nets also check their parameter budget there,
  on a weightless copy, so an over-budget configuration fails where it is written; ``fit`` checks
  again);
- ``fit(X, y, X_val=None, y_val=None) -> self``; everything learned ends in ``_``
  (``module_``, ``metrics_``, ``data_hash_`` ...); randomness only through ``random_state``;
- ``predict_proba(X) -> np.ndarray`` of P(concept) in [0, 1], one per row; ``predict(X)``;
  ``evaluate(X, y) -> dict``; ``n_params``; ``get_params()`` / ``clone(**changes)``;
- ``save(path)`` / ``load(path)``: one safetensors file whose JSON header carries
  ``{format, version, model, config, state, metrics, data_hash, n_params}``
  (:mod:`workbench.models.files`). No pickle is ever read.

The models, by what they take as ``X``:

============================  ==========================================  =======================
model                         X                                           parameters
============================  ==========================================  =======================
``PartNet``                   segment crops, uint8 N×S×S×3 (S=32)         < 1000, ≤ 3 conv layers
``PrototypeLeafNet``          crops N×256×256×3; ``feature_map`` on images 960 (the study's leaf)
``PrototypeParentNet``        children's maps N×k×h×w                     9k + 7 (25 for k = 2)
``CompositeNet``              children's scores N×k in [0, 1]             1 + k (+ k(k-1)/2)
``RuleModel``                 crops or ``rules.SegmentFeatures``          1 + 2 per condition
``BaselineCNN``               whole images, resized to 64×64              < 1000, ≤ 3 conv layers
============================  ==========================================  =======================

``PartNet`` and ``CompositeNet`` are in :mod:`workbench.models.nets`, the source study's two nets in
:mod:`workbench.models.prototype_nets`, ``RuleModel`` in :mod:`workbench.models.rules` and
``BaselineCNN`` in :mod:`workbench.models.baseline`. The torch nets share one training loop,
:class:`workbench.models.fitting.TorchConceptModel`. Importing this module does not import torch.
"""
from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.errors import ModelError, NotFittedError
from workbench.models.files import (
    model_config,
    model_tensors,
    read_model_header,
    write_model_file,
)
from workbench.models.metrics import binary_metrics, data_hash

if TYPE_CHECKING:
    import torch

__all__ = ["PART_PARAM_BUDGET", "MAX_CONV_LAYERS", "COMPOSITE_PARAM_BUDGET", "ConceptModel", "check_labels"]

#: A part net (and the baseline) must have strictly fewer trainable parameters than this.
PART_PARAM_BUDGET = 1000
#: ... and at most this many conv layers.
MAX_CONV_LAYERS = 3
#: A composite has "a few dozen" parameters at most.
COMPOSITE_PARAM_BUDGET = 64

_MODEL_CLASSES: dict[str, type[ConceptModel]] = {}


class ConceptModel:
    """The contract every concept model follows (see the module docstring).

    Subclasses implement ``fit``, ``predict_proba``, ``n_params`` and the two hooks that map their
    learned state to a file: ``_state()`` -> (tensors, plain-data state) and ``_restore(...)``.
    Defining a subclass registers it under its class name, the ``model`` its files carry, so
    ``ConceptModel.load`` can build it (:mod:`workbench.models.loading` imports every shipped one).
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

    def clone(self, **changes: Any) -> ConceptModel:
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

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> ConceptModel:
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        """Boolean decision per row: ``predict_proba(X) >= threshold``."""
        return self.predict_proba(X) >= threshold

    def evaluate(self, X: Any, y: Any) -> dict[str, Any]:
        """:func:`~workbench.models.metrics.binary_metrics` of this model on ``(X, y)``."""
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
        self._check_fitted()
        tensors, state = self._state()
        fields = {"model": type(self).__name__, "concept": self.concept, "config": self.get_params(), "state": state,
                  "metrics": self.metrics_, "data_hash": self.data_hash_, "n_params": self.n_params}
        return write_model_file(path, fields, tensors)

    @classmethod
    def load(cls, path: str | Path) -> ConceptModel:
        """Read a model written by :meth:`save`. ``ConceptModel.load`` returns whichever class it holds
        (among the classes imported: :func:`workbench.models.loading.load_model` imports them all).

        Refuses, with a :class:`ModelError` naming the file: another format version, a file of another
        model class (when called on a subclass), a corrupt or foreign file (a pickle is never run).
        """
        path = Path(path)
        header, data = read_model_header(path)
        name = header.get("model")
        klass = _MODEL_CLASSES.get(name) if isinstance(name, str) else None
        if klass is None:
            raise ModelError(f"{path}: unknown model class {name!r}; known: {sorted(_MODEL_CLASSES)}")
        if cls is not ConceptModel and not issubclass(klass, cls):
            raise ModelError(f"{path}: holds a {name}, not a {cls.__name__}: load it with load_model(path)")
        try:
            tensors = model_tensors(data)
            model = klass(**model_config(header))
            model._restore(tensors, dict(header.get("state") or {}))
            model.metrics_ = dict(header["metrics"])
            model.data_hash_ = str(header["data_hash"])
        except ModelError as e:
            raise ModelError(f"{path}: {e}") from None
        except Exception as e:  # noqa: BLE001 - any failure here means a damaged file
            raise ModelError(f"{path}: corrupt model file ({type(e).__name__}: {e}); retrain it") from None
        return model


def check_labels(y: Any, n: int, concept: str, need_both: bool) -> np.ndarray:
    """``y`` as booleans, one per row of X (``n``), with both classes present when ``need_both``.

    >>> check_labels([1, 0, 1], 3, "disk", need_both=True).tolist()
    [True, False, True]
    >>> check_labels([1, 1], 2, "disk", need_both=True)
    Traceback (most recent call last):
    ...
    workbench.errors.ModelError: concept 'disk': training needs positive and negative examples, got 2 positive of 2: label some negative examples (other concepts or none)
    """
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
