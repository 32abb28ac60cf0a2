"""The review stage: every change to the ontology as a pull request that a person decides.

Owns: proposal files and their decisions (:mod:`.proposals`), the suggester registry and Claude
(:mod:`.suggest`, :mod:`.claude`), the merge gate (:mod:`.gate`), the history, ``why`` and revert
(:mod:`.history`), and proposals rendered as notebook cells (:mod:`.cells`).

May import: workbench.errors, workbench._io, workbench.parallel, workbench.ontology, workbench.data,
workbench.workspace, workbench.models, workbench.evaluation
"""
