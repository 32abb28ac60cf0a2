"""The data stage: images in, segments and labels out.

Owns: the hardened image loader and data sets (:mod:`.datasets`, the generated demo scene), the
segment type and segmenters (:mod:`.segment`, :mod:`.sam`), the content-addressed segment cache
(:mod:`._segcache`), the SQLite label store (:mod:`.store`) and the ground-truth labeler from part
masks (:mod:`.labelers`).

May import: workbench.errors, workbench._io, workbench._yaml, workbench.parallel, workbench.ontology
"""
