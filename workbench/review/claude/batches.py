"""Many suggestions at half price: the Message Batches API, resumable from ``proposals/batches.yaml``.

:func:`submit_batch` sends one ``suggest`` request per image and records, atomically and before it
returns, the batch id, each custom id's image, the recorded requests (images by hash) and the
ontology they were made against. :func:`collect_batch` matches the results by custom id, saves each
proposal at once and notes it in the record, so a re-run after a crash loads what was saved and
duplicates nothing. The record holds no secret (it is scrubbed before it is written).
"""
from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench._io import atomic_write_text
from workbench._redact import scrub
from workbench._yaml import dump_yaml, read_yaml_file
from workbench.errors import SuggesterError
from workbench.ontology.graph import Ontology
from workbench.review.claude.client import ClaudeSuggester
from workbench.review.claude.parse import parse_response
from workbench.review.proposals import Evidence, Proposal
from workbench.review.store import ProposalStore

if TYPE_CHECKING:  # pragma: no cover
    from workbench.workspace.folder import Workspace

__all__ = ["BATCHES_FILE", "BatchPending", "submit_batch", "collect_batch"]

log = logging.getLogger(__name__)

#: Batch records of a workspace, relative to its proposals folder.
BATCHES_FILE = "batches.yaml"


class BatchPending(SuggesterError):
    """The batch has not finished yet; collect again later."""



def _batches_path(ws: Workspace) -> Path:
    return Path(ws.proposals_dir) / BATCHES_FILE


def _read_batches(ws: Workspace) -> dict[str, Any]:
    path = _batches_path(ws)
    if not path.exists():
        return {"batches": {}}
    data = read_yaml_file(path, SuggesterError) or {}
    if not isinstance(data, Mapping) or not isinstance(data.get("batches", {}), Mapping):
        raise SuggesterError(f"{path}: expected a mapping with `batches:`; fix or remove the file")
    return {"batches": dict(data.get("batches") or {})}


def _write_batches(ws: Workspace, data: Mapping[str, Any]) -> None:
    text = "# Message Batches submitted from this workspace (workbench.review.claude); no secrets in here\n"
    atomic_write_text(_batches_path(ws), text + dump_yaml(scrub(dict(data))))


def submit_batch(ws: Workspace, items: Sequence[tuple[Any, Any]], suggester: ClaudeSuggester) -> str:
    """Send one ``suggest`` request per (image, context) with the Message Batches API (half price).

    Each request gets a custom id (``img-0000``, ...); the batch id, the custom-id → image map, the
    recorded requests and the ontology they were made against are written atomically to
    ``proposals/batches.yaml`` before this returns, so :func:`collect_batch` can resume any time.
    """
    items = list(items)
    if not items:
        raise SuggesterError("submit_batch: no images given")
    client = suggester.client()
    ontology = ws.ontology
    requests, records = [], {}
    for i, (image, context) in enumerate(items):
        cid = f"img-{i:04d}"
        params, sent = suggester.suggest_request(ontology, image, context)
        requests.append({"custom_id": cid, "params": params})
        rec = suggester.record(params, [sent])
        records[cid] = {
            "image": getattr(context, "image_id", None),
            "image_sha256": getattr(context, "image_sha256", None) or sent.sha256,
            "messages": rec["messages"],
        }
    template = {k: v for k, v in suggester.record(requests[0]["params"], []).items() if k != "messages"}
    batch = suggester.call(lambda: client.messages.batches.create(requests=requests))
    data = _read_batches(ws)
    data["batches"][batch.id] = {
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": suggester.model,
        "author": suggester.author,
        "ontology": ontology.dumps(),
        "request": template,
        "items": records,
        "collected": {},
        "failed": {},
    }
    _write_batches(ws, data)
    return batch.id


def collect_batch(
    ws: Workspace, batch_id: str | None = None, suggester: ClaudeSuggester | None = None, *, save: bool = True
) -> tuple[list[Proposal], list[tuple[str, str]]]:
    """Fetch a finished batch: (its proposals, [(custom id, why it failed)]), matched by custom id.

    ``batch_id=None``: the newest batch in ``proposals/batches.yaml`` with results not yet collected.
    With ``save`` (default) each proposal is saved as ``proposals/NNNN.yaml`` and the batch record
    notes its id right away, so a re-run (after a crash, or to see the list again) loads the saved
    ones instead of saving duplicates, and nothing finished is lost. A batch still processing raises
    :class:`BatchPending` with its counts.
    """
    data = _read_batches(ws)
    batches = data["batches"]
    if not batches:
        raise SuggesterError(f"no batches recorded in {_batches_path(ws)}; submit one first (submit_batch)")
    if batch_id is None:
        open_ = [b for b, r in batches.items()
                 if len(r.get("collected") or {}) + len(r.get("failed") or {}) < len(r.get("items") or {})]
        batch_id = (open_ or list(batches))[-1]
    if batch_id not in batches:
        raise SuggesterError(f"batch {batch_id!r} is not recorded in {_batches_path(ws)} (known: {', '.join(batches)})")
    record = batches[batch_id]
    suggester = suggester or ClaudeSuggester.from_settings(ws.settings)
    store = ProposalStore(ws) if save else None
    collected: dict[str, str] = dict(record.get("collected") or {})
    failed: dict[str, str] = dict(record.get("failed") or {})
    items: Mapping[str, Any] = record.get("items") or {}
    proposals: dict[str, Proposal] = {}
    if store is not None:
        for cid, pid in collected.items():
            proposals[cid] = store.load(pid)
    if len(collected) + len(failed) < len(items) or not save:
        client = suggester.client()
        status = suggester.call(lambda: client.messages.batches.retrieve(batch_id))
        if status.processing_status != "ended":
            c = status.request_counts
            raise BatchPending(
                f"batch {batch_id} is still {status.processing_status} ({c.processing} processing, {c.succeeded} "
                f"succeeded, {c.errored} errored); run collect again later (batches finish within 24 hours)"
            )
        ontology = Ontology.loads(record["ontology"], f"{_batches_path(ws)}:{batch_id}")
        author = record.get("author") or suggester.author
        for line in suggester.call(lambda: list(client.messages.batches.results(batch_id))):
            cid = line.custom_id
            if cid not in items:
                log.warning("batch %s: result for unknown custom id %r ignored", batch_id, cid)
                continue
            if save and (cid in collected or cid in failed):
                continue
            result = line.result
            if result.type != "succeeded":
                err = getattr(getattr(result, "error", None), "error", None)
                failed[cid] = f"{result.type}: {getattr(err, 'type', '')} {getattr(err, 'message', '')}".strip()
            else:
                response = result.message.to_dict(mode="json", warnings=False)
                item = items[cid]
                exchange = {"request": {**record.get("request", {}), "messages": item.get("messages", [])},
                            "response": scrub(response), "batch": {"id": batch_id, "custom_id": cid}}
                evidence = Evidence(image=item.get("image"), image_sha256=item.get("image_sha256"))
                try:
                    p = parse_response(ontology, response, author=author, evidence=evidence, exchange=exchange)
                except SuggesterError as e:
                    failed[cid] = str(e)
                else:
                    if store is not None:
                        p = store.save(p)
                        collected[cid] = p.id
                    proposals[cid] = p
            if save:  # note each result at once: a crash later loses nothing and duplicates nothing
                record["collected"], record["failed"] = collected, failed
                _write_batches(ws, data)
    missing = [cid for cid in items if cid not in proposals and cid not in failed]
    for cid in missing:
        failed.setdefault(cid, "no result in the batch")
    if save and missing:
        record["failed"] = failed
        _write_batches(ws, data)
    order = list(items)
    return ([proposals[c] for c in order if c in proposals],
            [(c, failed[c]) for c in order if c in failed])
