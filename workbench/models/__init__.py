"""The models stage: one tiny net or plain-code rule per concept, trained from the label store and
composed bottom-up into the hybrid classifier.

Owns: the estimator contract and the budgets (:mod:`.contract`), the model file format (:mod:`.files`)
and loading any model file (:mod:`.loading`), the metrics every model reports (:mod:`.metrics`), the
torch nets' shared training loop (:mod:`.fitting`), the nets (:mod:`.nets`: PartNet, CompositeNet), rules
(:mod:`.rules`), the end-to-end CNN baseline (:mod:`.baseline`), the study's prototype nets
(:mod:`.prototype_nets`) and composition (:mod:`.prototype`), bottom-up composition and explanations
(:mod:`.hybrid`), training (:mod:`.train`), the workspace's training job from its settings (:mod:`.job`)
and the saved models at work on a workspace: explanations, the least-certain ranking (:mod:`.inference`),
and running a workspace's pins against any set of models (:mod:`.pins`).

May import: workbench.errors, workbench._io, workbench._yaml, workbench._version, workbench.parallel, workbench.ontology,
workbench.data, workbench.workspace
"""
from typing import Any

#: The names this package re-exports, for code written against the flat layout
#: (``from workbench.models import PartNet``): name → the module that defines it. Resolved on first
#: use, so importing ``workbench.models.store`` (read by the server extension) does not import torch.
_EXPORTS: dict[str, str] = {
    "PART_PARAM_BUDGET": "workbench.models.contract",
    "MAX_CONV_LAYERS": "workbench.models.contract",
    "COMPOSITE_PARAM_BUDGET": "workbench.models.contract",
    "ConceptModel": "workbench.models.contract",
    "MODEL_FILE_FORMAT": "workbench.models.files",
    "MODEL_FILE_VERSION": "workbench.models.files",
    "read_model_info": "workbench.models.files",
    "load_model": "workbench.models.loading",
    "binary_metrics": "workbench.models.metrics",
    "data_hash": "workbench.models.metrics",
    "TorchConceptModel": "workbench.models.fitting",
    "TinyCNN": "workbench.models.nets",
    "PartNet": "workbench.models.nets",
    "CompositeNet": "workbench.models.nets",
    "PrototypeLeafNet": "workbench.models.prototype_nets",
    "PrototypeParentNet": "workbench.models.prototype_nets",
    "center_crop_maps": "workbench.models.prototype_nets",
    "prototype_map_side": "workbench.models.prototype_nets",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
