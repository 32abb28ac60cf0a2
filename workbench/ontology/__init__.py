"""The ontology stage: the concept graph, the whitelisted edits that change it, and the concept lint.

Owns: ``ontology.yaml`` (schema, validation, canonical save) in :mod:`.graph` (the YAML schema is
documented there: ``python -m pydoc workbench.ontology.graph``); the edit operations,
their inverses and diffs in :mod:`.edits`; non-visual wording flags in :mod:`.lint`; where the
shipped ontologies live in :mod:`.shipped`.

May import: workbench.errors, workbench._io, workbench._yaml
"""
from workbench.ontology.graph import (
    CONCEPT_KEYS,
    ID_PATTERN,
    IMAGENET_ID_PATTERN,
    IMPLEMENTATIONS,
    RESERVED_IDS,
    SCHEMA_VERSION,
    Concept,
    Ontology,
    is_valid_id,
    load_ontology,
)

__all__ = ["SCHEMA_VERSION", "IMPLEMENTATIONS", "ID_PATTERN", "IMAGENET_ID_PATTERN", "RESERVED_IDS",
           "CONCEPT_KEYS", "Concept", "Ontology", "load_ontology", "is_valid_id"]
