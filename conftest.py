"""Repository-wide pytest set-up (tests, doctests and the notebooks run by nbval).

The test command must never make billed Claude requests or depend on a person's key: a real
``ANTHROPIC_API_KEY`` in the shell is removed from this process (and so from the notebook kernels
nbval starts) unless ``WORKBENCH_LIVE_CLAUDE=1`` asks for live calls on purpose. Tests that need a key
set a canary one themselves.
"""
import os

if os.environ.get("WORKBENCH_LIVE_CLAUDE") != "1":
    os.environ.pop("ANTHROPIC_API_KEY", None)
