"""Claude as a collaborator: proposals per image, refactors, segment pre-sorting, bulk batches.

Nothing Claude returns is applied or executed here: every answer becomes a
:class:`~workbench.review.proposals.Proposal` (each operation validated against the ontology, invalid ones
kept and marked with the reason) that a person accepts, edits or rejects.

How a request is built (the same for :meth:`ClaudeSuggester.suggest`, ``refactor``, ``presort`` and
the batch helpers, so one prompt prefix is cached across them):

- **Key**: only from the environment (``ANTHROPIC_API_KEY``), checked before any request; it is
  never written to a proposal, an exchange record, a log message or a file.
- **Cached prefix**: the tools (``propose_edits``, ``sort_segments``), then the instructions, then
  the current ontology's YAML, the last block marked ``cache_control: {"type": "ephemeral"}``.
- **Image**: downscaled so the long edge is at most ``max_image_edge`` (aspect kept), sent as a
  base64 JPEG block; the exchange record keeps its sha256, size and byte count, never the pixels.
- **Structured output**: forced tool use (``tool_choice={"type": "tool", "name": ...}``) with a JSON
  schema generated from :data:`workbench.ontology.edits.EDIT_OPS`. Models that refuse forced tool choice
  (the 5.5 generation answers it with a 400) get the same schema as a structured-output format
  (``output_config.format``) instead; a model not known to refuse it but answering the 400 is
  retried once that way.
- **Errors**: our own retry loop (the SDK client runs with ``max_retries=0``): 429 honours
  ``retry-after``, 5xx/529 and timeouts back off; a 429 that says a spend limit or billing problem
  is not retried. Refusals and ``max_tokens`` cut-offs raise :class:`SuggesterError`: never a
  half proposal.

Where each part lives: the tool schemas (:mod:`.schema`), the instructions and system prompt
(:mod:`.prompts`), image encoding (:mod:`.images`), reading responses (:mod:`.parse`), the client with
its retries (:mod:`.client`), prices (:mod:`.pricing`), the Message Batches API (:mod:`.batches`) and
segment pre-sorting (:mod:`.presort`). Everything public is importable from here.

>>> schema = propose_edits_tool()["input_schema"]
>>> ops = [s["properties"]["op"]["enum"][0] for s in schema["properties"]["edits"]["items"]["properties"]["op"]["anyOf"]]
>>> ops[:3]
['add_concept', 'remove_concept', 'rename']
>>> e = estimate_cost((1568, 1568), prefix_tokens=3000, model="claude-sonnet-5-5")
>>> e.image_tokens, e.input_tokens
(3279, 6399)
"""
from workbench._redact import API_KEY_ENV
from workbench.review.claude.batches import (
    BATCHES_FILE,
    BatchPending,
    collect_batch,
    submit_batch,
)
from workbench.review.claude.client import ClaudeSuggester
from workbench.review.claude.images import SentImage, encode_image
from workbench.review.claude.parse import PresortWarning, parse_presort, parse_response
from workbench.review.claude.presort import presort_image
from workbench.review.claude.pricing import PRICES, CostEstimate, estimate_cost
from workbench.review.claude.prompts import INSTRUCTIONS
from workbench.review.claude.schema import (
    REFACTOR_OPS,
    edit_schema,
    propose_edits_tool,
    sort_segments_tool,
)

__all__ = [
    "ClaudeSuggester",
    "parse_response",
    "parse_presort",
    "propose_edits_tool",
    "sort_segments_tool",
    "edit_schema",
    "encode_image",
    "SentImage",
    "estimate_cost",
    "CostEstimate",
    "PRICES",
    "submit_batch",
    "collect_batch",
    "BatchPending",
    "presort_image",
    "PresortWarning",
    "API_KEY_ENV",
    "INSTRUCTIONS",
    "REFACTOR_OPS",
    "BATCHES_FILE",
]
