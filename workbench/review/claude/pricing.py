"""What a Claude suggestion costs: tokens of the image, the cached prefix and the answer, in dollars.

>>> e = estimate_cost((1568, 1568), prefix_tokens=3000, model="claude-sonnet-5-5")
>>> e.image_tokens, e.input_tokens
(3279, 6399)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from workbench.review.claude.prompts import INSTRUCTIONS
from workbench.review.claude.schema import tools
from workbench.workspace.settings import DEFAULT_CLAUDE_MODEL

__all__ = ["PRICES", "CostEstimate", "estimate_cost"]

#: USD per million tokens: (input, 5-minute cache write, cache read, output). Source: the model pages
#: of platform.claude.com (Sonnet 5.5, Opus 5.5, Haiku 4.5 overviews), read 2026-11-23. Batches: half.
#: The Sonnet 5.5 migration guide quotes cache reads at $0.10 where its model page says $0.20; the
#: higher figure is used (an estimate should not flatter). Prices change: check before budgeting.
PRICES: dict[str, tuple[float, float, float, float]] = {
    "claude-sonnet-5-5": (2.00, 2.50, 0.20, 10.00),
    "claude-sonnet-5": (2.00, 2.50, 0.20, 10.00),
    "claude-opus-5-5": (4.00, 5.00, 0.20, 20.00),
    "claude-haiku-4-5": (1.00, 1.25, 0.10, 5.00),
}


@dataclass(frozen=True)
class CostEstimate:
    """Input tokens and dollars of one suggestion, with the prefix uncached (first call) and cached."""

    model: str
    image_tokens: int
    prefix_tokens: int
    task_tokens: int
    output_tokens: int
    input_tokens: int
    usd_uncached: float     # prefix written to the cache (first call in 5 minutes)
    usd_cached: float       # prefix read from the cache
    usd_batch_cached: float  # the cached case at Batches API prices (half)
    prices: tuple[float, float, float, float]  # USD/MTok: input, cache write, cache read, output

    def __str__(self) -> str:
        return (f"{self.model}: {self.input_tokens} input tokens ({self.image_tokens} image, {self.prefix_tokens} cached "
                f"prefix, {self.task_tokens} task) + ~{self.output_tokens} output: ${self.usd_uncached:.4f} first call, "
                f"${self.usd_cached:.4f} with the prefix cached, ${self.usd_batch_cached:.4f} in a batch")


def estimate_cost(
    image_size: tuple[int, int] = (1568, 1568),
    prefix_tokens: int | None = None,
    model: str | None = None,
    *,
    output_tokens: int = 1000,
    task_tokens: int = 120,
    max_image_edge: int = 1568,
) -> CostEstimate:
    """Estimate one ``suggest`` call: the image at ≈ w·h/750 tokens (after downscaling to
    ``max_image_edge``), the cached prefix (tools + instructions + ontology; measured from
    :func:`propose_edits_tool` and :data:`INSTRUCTIONS` at ~4 characters a token when not given),
    the task text, and ``output_tokens`` of answer (thinking included). Prices: :data:`PRICES`
    (unknown models are priced as the default model). Note: some models downscale images above
    ~1.15 megapixels further (to ~1,600 tokens), which makes this an upper bound.
    """
    model = model or DEFAULT_CLAUDE_MODEL
    w, h = image_size
    if max(w, h) > max_image_edge:
        s = max_image_edge / max(w, h)
        w, h = round(w * s), round(h * s)
    image_tokens = math.ceil(w * h / 750)
    if prefix_tokens is None:
        chars = len(json.dumps(tools())) + len(INSTRUCTIONS) + 1500  # ~1500 characters of a small ontology
        prefix_tokens = math.ceil(chars / 4)
    p_in, p_write, p_read, p_out = PRICES.get(model, PRICES.get(DEFAULT_CLAUDE_MODEL, (2.0, 2.5, 0.2, 10.0)))
    fresh = image_tokens + task_tokens
    uncached = (prefix_tokens * p_write + fresh * p_in + output_tokens * p_out) / 1e6
    cached = (prefix_tokens * p_read + fresh * p_in + output_tokens * p_out) / 1e6
    return CostEstimate(model, image_tokens, prefix_tokens, task_tokens, output_tokens,
                        image_tokens + prefix_tokens + task_tokens, round(uncached, 6), round(cached, 6),
                        round(cached / 2, 6), (p_in, p_write, p_read, p_out))
