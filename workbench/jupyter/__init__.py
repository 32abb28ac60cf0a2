"""The Jupyter layer: thin views over the core, and nothing the core needs.

Owns: the notebook entry point ``workbench.open`` (:mod:`.session`), the widgets (:mod:`.widgets`),
the jupyter_server extension (:mod:`.server`) and the JupyterLab front end (``_frontend``, prebuilt
into ``labextension``). Widgets turn events into core calls; they train and load nothing themselves.

May import: everything in workbench except workbench.cli
"""
