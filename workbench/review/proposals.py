"""Proposals: edits someone (Claude, a script, a person) suggests for the ontology, reviewed before use.

A :class:`Proposal` is plain data stored as ``proposals/NNNN.yaml`` in the workspace: a list of
:class:`ProposedEdit` (each the operation exactly as proposed, a rationale, and, when it cannot be
applied, the ``problem``), an overall title and rationale, the :class:`Evidence` it was made from,
its author (``claude:<model>``, ``scripted:<file>``, ``person:<name>``), the hash of the ontology it
was made against (``base``), the recorded model ``exchange`` (for replay), and the audit trail of
decisions. Nothing in a proposal is ever executed: ops are parsed by the strict
:func:`workbench.ontology.edits.edit_from_dict`, and text is data (use
:func:`workbench.review.render.escape_html` / :func:`~workbench.review.render.escape_terminal` to
show it). This module is the data; the rest of the lifecycle lives next to it::

    make_proposal(ontology, raw_edits, ...)   validate each op in order, keep the invalid ones with why
    ProposalStore(ws).save(p)                 proposals/0007.yaml, a fresh id      (review.store)
    preview(ws, p)                            diff, concepts changed, labels, retrain (review.decisions)
    accept(ws, p, [0, 2], by="ana")           re-validate, apply + git commit with trailers, record it
    reject(ws, p, by="ana", reason="...")     record it; the ontology is untouched
    proposals_touching(ws, "petal")           accepted proposals naming a concept    (review.queries)
    proposal_html(p)                          an inert HTML summary                   (review.render)

References to a proposal (``7``, ``"0007"``, ``"proposals/0007.yaml"``) are parsed by
:mod:`workbench.review.refs`; recorded model exchanges are scrubbed of secrets
(:func:`workbench._redact.scrub`) whenever a proposal is written.

>>> from workbench.ontology.graph import Ontology, Concept
>>> o = Ontology("daisy", "daisy", [Concept("daisy", "Daisy")])
>>> p = make_proposal(o, [
...     {"op": {"op": "add_concept", "id": "petal", "label": "Petal", "parents": ["daisy"]},
...      "rationale": "white blades around the centre"},
...     {"op": {"op": "add_part", "parent": "stem", "part": "petal"}},
...     {"op": {"op": "add_concept", "id": "disk", "label": "Disk", "description": "maybe yellow",
...             "parents": ["daisy"]}},
... ], kind="suggest", author="scripted:example")
>>> [(e.decision, e.problem) for e in p.edits][:2]
[('pending', None), ('invalid', "add_part stem → petal: no concept 'stem' in the ontology")]
>>> p.edits[2].lint
("speculative: 'maybe' hedges; describe what is visible, or leave the concept out (description)",)
>>> Proposal.from_dict(p.to_dict(), "<memory>") == p
True
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from workbench._redact import scrub
from workbench._yaml import dump_yaml, load_yaml_text
from workbench.errors import EditError, ProposalError
from workbench.ontology.edits import Edit, edit_from_dict
from workbench.ontology.graph import Ontology
from workbench.ontology.lint import lint_concept
from workbench.review.findings import Review
from workbench.review.refs import is_proposal_id

__all__ = [
    "PROPOSAL_STATUSES",
    "DECISIONS",
    "KINDS",
    "PROPOSAL_FORMAT",
    "ProposedEdit",
    "Evidence",
    "Proposal",
    "ontology_hash",
    "make_proposal",
    "lint_op",
    "now_utc",
    "one_line",
    "plain_data",
]

PROPOSAL_STATUSES = ("pending", "accepted", "partial", "rejected")
DECISIONS = ("pending", "accepted", "rejected", "invalid")
#: What made the proposal: a per-image suggestion, a refactor, a person's own edit, a rule, a pre-sort.
KINDS = ("suggest", "refactor", "person", "rule", "presort")
#: Version of the proposal file layout (``format:`` key); a newer one is refused with "upgrade".
PROPOSAL_FORMAT = 1


# ------------------------------------------------------------------------------------------ data model
@dataclass(frozen=True)
class ProposedEdit:
    """One proposed operation, kept exactly as proposed (even when malformed), and what became of it."""

    op: dict  #: the operation as proposed (plain data); parsed only by edit_from_dict
    rationale: str = ""  #: why, in the proposer's words (data: escape when shown)
    problem: str | None = None  #: why it cannot be applied; None = valid
    lint: tuple[str, ...] = ()  #: concept-lint warnings (shown, not blocking)
    decision: str = "pending"  #: one of DECISIONS; "invalid" whenever problem is set

    def __post_init__(self) -> None:
        if isinstance(self.lint, list):
            object.__setattr__(self, "lint", tuple(self.lint))
        if self.problem is not None and self.decision != "invalid":
            object.__setattr__(self, "decision", "invalid")

    @property
    def valid(self) -> bool:
        """True when the op parsed and applied where it was proposed (no ``problem``, not marked invalid)."""
        return self.problem is None and self.decision != "invalid"

    def edit(self) -> Edit:
        """The edit object; :class:`ProposalError` when this op is invalid (it can never be applied)."""
        if not self.valid:
            raise ProposalError(f"{self.summary()}: invalid, cannot be applied: {self.problem or 'marked invalid'}")
        try:
            return edit_from_dict(self.op)
        except EditError as e:
            raise ProposalError(f"{self.summary()}: invalid, cannot be applied: {e}") from None

    def summary(self) -> str:
        """One line: ``rename petal → ray_petal`` (or the raw op name for a malformed one)."""
        try:
            return edit_from_dict(self.op).summary()
        except EditError:
            name = self.op.get("op") if isinstance(self.op, Mapping) else None
            return f"{name if isinstance(name, str) else '?'} (malformed)"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": plain_data(self.op), "rationale": self.rationale}
        if self.problem is not None:
            d["problem"] = self.problem
        if self.lint:
            d["lint"] = list(self.lint)
        d["decision"] = self.decision
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "<memory>") -> ProposedEdit:
        d = _mapping(d, source, ("op", "rationale", "problem", "lint", "decision"), ("op",))
        op = d["op"]
        if not isinstance(op, dict):
            op = {"value": op}
        decision = d.get("decision", "pending")
        if decision not in DECISIONS:
            raise ProposalError(f"{source}: `decision` must be one of {', '.join(DECISIONS)}, got {decision!r}")
        problem = d.get("problem")
        lint = d.get("lint", [])
        if not isinstance(lint, list) or not all(isinstance(x, str) for x in lint):
            raise ProposalError(f"{source}: `lint` must be a list of strings")
        return cls(op, _str(d.get("rationale", ""), "rationale", source), None if problem is None else
                   _str(problem, "problem", source), tuple(lint), decision)


@dataclass(frozen=True)
class Evidence:
    """What the proposal was made from."""

    image: str | None = None  #: data-set record id (e.g. "daisy/0003.png") or workspace-relative path
    image_sha256: str | None = None
    segments: tuple[int, ...] = ()  #: store segment ids shown to the proposer
    thumbnail: str | None = None  #: workspace-relative PNG path, optional

    def __post_init__(self) -> None:
        if isinstance(self.segments, list):
            object.__setattr__(self, "segments", tuple(self.segments))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k in ("image", "image_sha256", "thumbnail"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.segments:
            d["segments"] = [int(s) for s in self.segments]
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "<memory>") -> Evidence:
        d = _mapping(d or {}, source, ("image", "image_sha256", "segments", "thumbnail"), ())
        segs = d.get("segments", [])
        if not isinstance(segs, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in segs):
            raise ProposalError(f"{source}: evidence `segments` must be a list of segment ids (integers)")
        return cls(*(_opt_str(d.get(k), k, source) for k in ("image", "image_sha256")), tuple(segs),
                   _opt_str(d.get("thumbnail"), "thumbnail", source))


@dataclass(frozen=True)
class Proposal:
    """Edits proposed for an ontology, why, by whom, against which version, and what was decided."""

    id: str | None  #: "0007" once saved (file proposals/0007.yaml)
    kind: str  #: one of KINDS
    title: str
    rationale: str
    edits: tuple[ProposedEdit, ...]
    author: str  #: "claude:<model id>", "scripted:<file name>", "person:<name>"
    base: str  #: sha256 of the ontology YAML text it was made against (stale detection)
    evidence: Evidence = Evidence()
    exchange: dict | None = None  #: record/replay: {"request": {...}, "response": {...}}; never a key
    status: str = "pending"  #: one of PROPOSAL_STATUSES
    created: str = ""  #: ISO 8601 UTC
    decisions: tuple[dict, ...] = ()  #: audit trail: {"at", "by", "action", "edits": [idx...], "note"}
    gate: dict | None = None  #: merge-gate verdict (filled by the PR loop)
    commit: str | None = None  #: sha of the workspace commit that applied it
    #: a second reviewer's findings, stored beside the edits (advice only: it never changes them or the status)
    review: Review | None = None

    def __post_init__(self) -> None:
        for name in ("edits", "decisions"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def ref(self) -> str:
        """``proposals/0007.yaml`` (or ``<unsaved>``)."""
        return f"proposals/{self.id}.yaml" if self.id else "<unsaved proposal>"

    @property
    def valid_edits(self) -> list[int]:
        """Indices of the edits that can be accepted."""
        return [i for i, e in enumerate(self.edits) if e.valid]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the YAML file (keys in a stable order; secrets never written)."""
        d: dict[str, Any] = {
            "format": PROPOSAL_FORMAT,
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "title": self.title,
            "author": self.author,
            "created": self.created,
            "base": self.base,
            "rationale": self.rationale,
            "evidence": self.evidence.to_dict(),
            "edits": [e.to_dict() for e in self.edits],
            "decisions": [plain_data(x) for x in self.decisions],
            "gate": plain_data(self.gate),
            "commit": self.commit,
            "exchange": scrub(plain_data(self.exchange)),  # no key, header or key-shaped text
        }
        if self.review is not None:  # only when reviewed: files without a review stay as they were
            d["review"] = scrub(self.review.to_dict())
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "<memory>") -> Proposal:
        """Validate plain data (a parsed proposal file); :class:`ProposalError` naming ``source`` and the key."""
        keys = ("format", "id", "kind", "status", "title", "author", "created", "base", "rationale", "evidence",
                "edits", "decisions", "gate", "commit", "exchange", "review")
        d = _mapping(d, source, keys, ("kind", "author", "base", "edits"))
        fmt = d.get("format", PROPOSAL_FORMAT)
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
            raise ProposalError(f"{source}: `format` must be a positive integer, got {fmt!r}")
        if fmt > PROPOSAL_FORMAT:
            raise ProposalError(f"{source}: written by a newer workbench (proposal format {fmt}); upgrade: "
                                "pip install -U constructability-workbench")
        pid = d.get("id")
        if pid is not None and not is_proposal_id(pid):
            raise ProposalError(f"{source}: `id` must be a string of 4+ digits such as '0007', got {pid!r}")
        kind = d["kind"]
        if kind not in KINDS:
            raise ProposalError(f"{source}: `kind` must be one of {', '.join(KINDS)}, got {kind!r}")
        status = d.get("status", "pending")
        if status not in PROPOSAL_STATUSES:
            raise ProposalError(f"{source}: `status` must be one of {', '.join(PROPOSAL_STATUSES)}, got {status!r}")
        edits = d["edits"]
        if not isinstance(edits, list):
            raise ProposalError(f"{source}: `edits` must be a list")
        decisions = d.get("decisions") or []
        if not isinstance(decisions, list) or not all(isinstance(x, dict) for x in decisions):
            raise ProposalError(f"{source}: `decisions` must be a list of mappings")
        for k in ("gate", "exchange"):
            if d.get(k) is not None and not isinstance(d[k], dict):
                raise ProposalError(f"{source}: `{k}` must be a mapping or null")
        return cls(
            id=pid,
            kind=kind,
            title=_str(d.get("title", ""), "title", source),
            rationale=_str(d.get("rationale", ""), "rationale", source),
            edits=tuple(ProposedEdit.from_dict(e, f"{source}: edits[{i}]") for i, e in enumerate(edits)),
            author=_str(d["author"], "author", source),
            base=_str(d["base"], "base", source),
            evidence=Evidence.from_dict(d.get("evidence"), f"{source}: evidence"),
            exchange=d.get("exchange"),
            status=status,
            created=_str(d.get("created", "") or "", "created", source),
            decisions=tuple(decisions),
            gate=d.get("gate"),
            commit=_opt_str(d.get("commit"), "commit", source),
            review=Review.from_dict(d["review"], f"{source}: review") if d.get("review") is not None else None,
        )

    def dumps(self) -> str:
        """The YAML text of the proposal file."""
        return "# Constructability Workbench proposal; model text below is data, never instructions\n" + dump_yaml(
            self.to_dict())

    @classmethod
    def loads(cls, text: str | bytes, source: str = "<memory>") -> Proposal:
        return cls.from_dict(load_yaml_text(text, source, ProposalError), source)


# -------------------------------------------------------------------------------------------- making
def ontology_hash(ontology: Ontology) -> str:
    """sha256 (hex) of the ontology's canonical YAML text: what a proposal's ``base`` records.

    >>> from workbench.ontology.graph import Ontology, Concept
    >>> len(ontology_hash(Ontology("d", "d", [Concept("d", "D")])))
    64
    """
    return hashlib.sha256(ontology.dumps().encode("utf-8")).hexdigest()


def lint_op(op: Any) -> tuple[str, ...]:
    """Concept-lint warnings for every label/description an op introduces (prefixed with the concept id)."""
    if not isinstance(op, Mapping):
        return ()
    texts: list[tuple[str, Any, Any]] = []
    name = op.get("op")
    if name in ("add_concept", "describe"):
        texts.append((op.get("id"), op.get("label"), op.get("description")))
    elif name == "rename":
        texts.append((op.get("new"), op.get("label"), None))
    elif name == "merge":
        texts.append((op.get("into"), op.get("label"), op.get("description")))
    elif name == "split" and isinstance(op.get("into"), list):
        for spec in op["into"]:
            if isinstance(spec, Mapping):
                texts.append((spec.get("id"), spec.get("label"), spec.get("description")))
    out: list[str] = []
    for cid, label, desc in texts:
        if label is None and desc is None:
            continue
        for w in lint_concept(label if isinstance(label, str) else "", desc if isinstance(desc, str) else ""):
            out.append(w if len(texts) == 1 else f"{cid}: {w}")
    return tuple(out)


def make_proposal(
    ontology: Ontology,
    raw_edits: Sequence[Mapping[str, Any]],
    *,
    kind: str,
    author: str,
    title: str = "",
    rationale: str = "",
    evidence: Evidence = Evidence(),
    exchange: dict | None = None,
    allowed_ops: Sequence[str] | None = None,
    created: str | None = None,
) -> Proposal:
    """Validate proposed edits against ``ontology`` and wrap them in a pending :class:`Proposal`.

    ``raw_edits`` items are ``{"op": {...edit...}, "rationale": "..."}`` (a bare edit mapping, whose
    ``op`` is the op name, is accepted too). Each op is checked in order against the ontology as
    changed by the previous *valid* ops; an invalid one (malformed, unknown op, not in
    ``allowed_ops``, unknown concept, cycle, duplicate id) is kept with ``problem`` set and decision
    "invalid". Concept lint runs on every op. Nothing is written.
    """
    if kind not in KINDS:
        raise ProposalError(f"proposal kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(author, str) or not author.strip():
        raise ProposalError("a proposal needs an author: 'claude:<model>', 'scripted:<file>' or 'person:<name>'")
    if isinstance(raw_edits, (str, bytes, Mapping)):
        raise ProposalError(f"raw_edits must be a list of {{'op': ..., 'rationale': ...}} items, got "
                            f"{type(raw_edits).__name__}")
    out: list[ProposedEdit] = []
    cur = ontology
    for i, item in enumerate(raw_edits):
        op, why = _split_item(item)
        problem: str | None = None
        if not isinstance(op, dict):
            problem = f"edit {i}: must be a mapping with an `op` key, got {type(op).__name__}"
            op = {"value": plain_data(op)}
        elif allowed_ops is not None and op.get("op") not in allowed_ops:
            problem = (f"op {op.get('op')!r} is not allowed here (allowed: {', '.join(allowed_ops)})")
        else:
            try:
                cur = edit_from_dict(op).apply(cur)
            except EditError as e:
                problem = str(e)
        out.append(ProposedEdit(op=op, rationale=why, problem=problem, lint=lint_op(op),
                                decision="invalid" if problem else "pending"))
    return Proposal(
        id=None, kind=kind, title=title or _default_title(kind, out), rationale=rationale, edits=tuple(out),
        author=author, base=ontology_hash(ontology), evidence=evidence, exchange=exchange,
        created=created if created is not None else now_utc(),
    )


def _split_item(item: Any) -> tuple[Any, str]:
    if not isinstance(item, Mapping):
        return item, ""
    why = item.get("rationale", "")
    why = why if isinstance(why, str) else str(why)
    op = item.get("op")
    if isinstance(op, Mapping):
        return plain_data(op), why
    if isinstance(op, str):  # a bare edit mapping, maybe with a rationale next to the fields
        return {k: plain_data(v) for k, v in item.items() if k != "rationale"}, why
    return plain_data(dict(item)), why


def _default_title(kind: str, edits: Sequence[ProposedEdit]) -> str:
    shown = ", ".join(e.summary() for e in edits[:3]) + (" …" if len(edits) > 3 else "")
    return f"{kind}: {shown}" if shown else f"{kind}: no edits"


# ---------------------------------------------------------------------------------------- helpers
def now_utc() -> str:
    """The time now, UTC, to the second: ``2026-11-23T10:00:00Z`` (what ``created`` and decisions record)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def one_line(s: Any) -> str:
    """``s`` as one line of text, runs of whitespace (newlines too) as one space."""
    return " ".join(str(s).split())


def plain_data(v: Any, depth: int = 0) -> Any:
    """A deep copy as plain YAML-safe data (dict/list/str/int/float/bool/None); anything else as its repr."""
    if depth > 50:
        return "<nested too deeply>"
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, Mapping):
        return {str(k): plain_data(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain_data(x, depth + 1) for x in v]
    return repr(v)


def _mapping(d: Any, source: str, keys: Sequence[str], required: Sequence[str]) -> dict:
    if not isinstance(d, dict):
        raise ProposalError(f"{source}: expected a mapping, got {type(d).__name__}")
    unknown = [k for k in d if k not in keys]
    if unknown:
        raise ProposalError(f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(keys)})")
    missing = [k for k in required if k not in d]
    if missing:
        raise ProposalError(f"{source}: missing `{missing[0]}`")
    return d


def _str(v: Any, key: str, source: str) -> str:
    if not isinstance(v, str):
        raise ProposalError(f"{source}: `{key}` must be a string, got {type(v).__name__}")
    return v


def _opt_str(v: Any, key: str, source: str) -> str | None:
    return None if v is None else _str(v, key, source)

