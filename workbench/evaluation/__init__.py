"""The evaluation stage: honest measurement of a trained hybrid, the report, and the main job.

Owns: metrics, the baselines, the shuffled-labels control, the swap and reuse checks (:mod:`.evaluate`);
each concept's health, ``ok`` / ``weak`` / ``dead`` with the reason (:mod:`.health`); the part-blind
baselines that say whether a data set can be solved without parts (:mod:`.blind`); ``report.json`` and
the self-contained ``report.html`` (:mod:`.report`); the main job, data set + ontology → report, as named
stage functions (:mod:`.pipeline`).

May import: workbench.errors, workbench._io, workbench._yaml, workbench.parallel, workbench.ontology, workbench.data,
workbench.workspace, workbench.models
"""
