"""The review stage: every change to the ontology as a pull request that a person decides.

Owns: proposals as data (:mod:`.proposals`), references to them (:mod:`.refs`), their files
(:mod:`.store`), deciding them (:mod:`.decisions`: preview, accept, reject), questions about them
(:mod:`.queries`), showing them (:mod:`.render`), the suggester registry and Claude (:mod:`.suggest`,
:mod:`.claude`), the merge gate (:mod:`.gate`), the history, ``why`` and revert (:mod:`.history`),
and proposals rendered as notebook cells (:mod:`.cells`).

May import: workbench.errors, workbench._io, workbench._yaml, workbench._redact, workbench.parallel, workbench.ontology, workbench.data,
workbench.workspace, workbench.models, workbench.evaluation
"""
