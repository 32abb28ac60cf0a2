"""The workspace: one folder, a git repository holding the ontology, the settings, the label store,
the models, the proposals and the cache.

Owns: ``workbench.yaml`` (one validated settings object, :mod:`.settings`), the folder itself
with its git history (:mod:`.folder`) and its per-concept tests, ``pins/<concept>.yaml`` (:mod:`.pins`).

May import: workbench.errors, workbench._io, workbench._yaml, workbench._redact, workbench._version, workbench.ontology, workbench.data
"""
from workbench.workspace.folder import (
           FORMAT_VERSION,
           GITIGNORE,
           MARKER_FILE,
           ONTOLOGY_FILE,
           STORE_FILE,
           Workspace,
)
from workbench.workspace.settings import (
           COMPOSITION_MODES,
           DEFAULT_CLAUDE_MODEL,
           SEGMENTER_NAMES,
           SETTINGS_FILE,
           Settings,
)

__all__ = ["Workspace", "FORMAT_VERSION", "MARKER_FILE", "ONTOLOGY_FILE", "STORE_FILE", "GITIGNORE",
           "Settings", "SETTINGS_FILE", "SEGMENTER_NAMES", "COMPOSITION_MODES", "DEFAULT_CLAUDE_MODEL"]
