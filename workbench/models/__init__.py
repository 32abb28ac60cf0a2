"""The models stage: one tiny net or plain-code rule per concept, trained from the label store and
composed bottom-up into the hybrid classifier.

Owns: the estimator contract, the nets and the model files (:mod:`.nets`), rules (:mod:`.rules`), the
end-to-end CNN baseline (:mod:`.baseline`), the study's prototype composition (:mod:`.prototype`),
bottom-up composition and explanations (:mod:`.hybrid`) and the training job (:mod:`.train`).

May import: workbench.errors, workbench._io, workbench._version, workbench.parallel, workbench.ontology,
workbench.data, workbench.workspace
"""
from typing import Any

#: The names this package re-exports from :mod:`workbench.models.nets`, for code written against the
#: flat layout (``from workbench.models import PartNet``); resolved on first use, so importing
#: ``workbench.models.store`` (read by the server extension) does not import torch.
_FROM_NETS = ("PART_PARAM_BUDGET", "MAX_CONV_LAYERS", "COMPOSITE_PARAM_BUDGET", "MODEL_FILE_FORMAT",
              "MODEL_FILE_VERSION", "ConceptModel", "TorchConceptModel", "TinyCNN", "PartNet", "PrototypeLeafNet",
              "PrototypeParentNet", "CompositeNet", "load_model", "read_model_info", "binary_metrics", "data_hash",
              "center_crop_maps", "prototype_map_side")
__all__ = list(_FROM_NETS)


def __getattr__(name: str) -> Any:
    if name in _FROM_NETS:
        import importlib

        return getattr(importlib.import_module("workbench.models.nets"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
