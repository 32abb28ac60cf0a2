"""A second reviewer's output as data: :class:`Finding` and :class:`Review`, stored in a proposal file.

A review is advice written *beside* a proposal's edits (the ``review:`` block of ``proposals/NNNN.yaml``):
who reviewed (``scripted:<file>``, ``claude:<model>``, ``replay``), when, against which ontology, and
its findings. Each finding says what kind of problem it is (:data:`FINDING_KINDS`), which edit and
concept it is about, how serious it is (:data:`SEVERITIES`), one sentence, and the evidence behind it
(label counts, a similarity). ``source`` says whether the workbench's own code found it (``check``:
label overlap, description similarity, validation, the word lint) or the reviewer judged it
(``reviewer``). Nothing here can decide a proposal: a review has no edits, no status and no decision.

>>> f = Finding("overlap", "description of 'stalk' is close to 'stem' (token Jaccard 0.62)", about="stalk",
...             edit=1, severity="warning", evidence={"concept": "stem", "jaccard": 0.62})
>>> r = Review("scripted:daisy.reviews.yaml", "2026-11-23T10:00:00Z", (f,), scripted=True)
>>> Review.from_dict(r.to_dict(), "<memory>") == r
True
>>> r.counts()
{'serious': 0, 'warning': 1, 'info': 0}
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ProposalError

__all__ = ["FINDING_KINDS", "SEVERITIES", "SOURCES", "Finding", "Review", "REVIEW_FORMAT"]

#: What a finding is about. ``not_visual``: not something a camera sees at the scale of one segment;
#: ``overlap``: duplicates an existing concept (labels or description); ``contradiction``: the edit does
#: not fit the ontology; ``unsupported``: the rationale is not borne out by the evidence image; ``ok``:
#: looked at and found nothing to say against it.
FINDING_KINDS = ("not_visual", "overlap", "contradiction", "unsupported", "ok")
#: How much a finding should weigh with the person, most serious first.
SEVERITIES = ("serious", "warning", "info")
#: ``check``: found by the workbench's own code; ``reviewer``: the reviewer's judgement.
SOURCES = ("check", "reviewer")
#: Version of the ``review:`` block.
REVIEW_FORMAT = 1
_MAX_TEXT = 2000


@dataclass(frozen=True)
class Finding:
    """One thing a reviewer points out about a proposal (advice, never a decision)."""

    kind: str  #: one of FINDING_KINDS
    message: str  #: one sentence for the person (data: escape when shown)
    about: str | None = None  #: the concept id it is about, if any
    edit: int | None = None  #: index of the edit it is about; None: the whole proposal
    severity: str = "info"  #: one of SEVERITIES
    source: str = "reviewer"  #: one of SOURCES
    evidence: dict = field(default_factory=dict)  #: plain data: counts, similarities, segment ids

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS:
            raise ProposalError(f"finding kind must be one of {', '.join(FINDING_KINDS)}, got {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ProposalError(f"finding severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        if self.source not in SOURCES:
            raise ProposalError(f"finding source must be one of {', '.join(SOURCES)}, got {self.source!r}")

    def __hash__(self) -> int:  # evidence is a dict: hash what identifies the finding
        return hash((self.kind, self.message, self.about, self.edit, self.severity, self.source))

    @property
    def is_lint(self) -> bool:
        """True for a finding that repeats the word lint (surfaces that show the lint already skip it)."""
        return self.source == "check" and bool(self.evidence.get("lint"))

    def line(self) -> str:
        """One line: ``warning overlap [edit 1, stalk]: ...``."""
        where = ", ".join(x for x in (f"edit {self.edit}" if self.edit is not None else "", self.about or "") if x)
        return f"{self.severity} {self.kind}" + (f" [{where}]" if where else "") + f": {self.message}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "severity": self.severity, "source": self.source}
        if self.edit is not None:
            d["edit"] = self.edit
        if self.about is not None:
            d["about"] = self.about
        d["message"] = self.message
        if self.evidence:
            d["evidence"] = _plain(self.evidence)
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "<memory>") -> Finding:
        if not isinstance(d, Mapping):
            raise ProposalError(f"{source}: a finding is a mapping, got {type(d).__name__}")
        keys = ("kind", "severity", "source", "edit", "about", "message", "evidence")
        unknown = [k for k in d if k not in keys]
        if unknown:
            raise ProposalError(f"{source}: unknown key {unknown[0]!r} in a finding (allowed: {', '.join(keys)})")
        edit = d.get("edit")
        if edit is not None and (isinstance(edit, bool) or not isinstance(edit, int) or edit < 0):
            raise ProposalError(f"{source}: finding `edit` must be an edit index (0, 1, ...), got {edit!r}")
        about = d.get("about")
        if about is not None and not isinstance(about, str):
            raise ProposalError(f"{source}: finding `about` must be a concept id, got {type(about).__name__}")
        message = d.get("message", "")
        if not isinstance(message, str):
            raise ProposalError(f"{source}: finding `message` must be text, got {type(message).__name__}")
        evidence = d.get("evidence") or {}
        if not isinstance(evidence, Mapping):
            raise ProposalError(f"{source}: finding `evidence` must be a mapping")
        try:
            return cls(kind=d.get("kind"), message=message[:_MAX_TEXT], about=about, edit=edit,
                       severity=d.get("severity", "info"), source=d.get("source", "reviewer"),
                       evidence=dict(evidence))
        except ProposalError as e:
            raise ProposalError(f"{source}: {e}") from None


@dataclass(frozen=True)
class Review:
    """A reviewer's findings about one proposal, as stored beside its edits."""

    reviewer: str  #: "scripted:<file>", "claude:<model>", "replay", or a plugin's name
    at: str  #: when, ISO 8601 UTC
    findings: tuple[Finding, ...] = ()
    model: str | None = None  #: the model id, for a model reviewer
    scripted: bool = False  #: True when the reviewer's judgements were authored by hand, not model output
    base: str = ""  #: sha256 of the ontology reviewed against (as a proposal's ``base``)
    summary: str = ""  #: the reviewer's overall sentence, if any
    exchange: dict | None = None  #: record/replay of a model reviewer: {"request", "response"}; never a key

    def __post_init__(self) -> None:
        if isinstance(self.findings, list):
            object.__setattr__(self, "findings", tuple(self.findings))

    def __hash__(self) -> int:
        return hash((self.reviewer, self.at, self.findings))

    def counts(self) -> dict[str, int]:
        """Findings per severity (every severity listed, most serious first); ``ok`` findings count as info."""
        out = {s: 0 for s in SEVERITIES}
        for f in self.findings:
            out[f.severity] += 1
        return out

    def line(self) -> str:
        """``2 warning, 1 serious (scripted:daisy.reviews.yaml)`` or ``no concerns (...)``."""
        c = self.counts()
        said = ", ".join(f"{n} {s}" for s, n in c.items() if n and s != "info")
        who = self.reviewer + (", authored, not model output" if self.scripted else "")
        return f"{said or 'no concerns'} ({who})"

    def for_edit(self, index: int) -> list[Finding]:
        return [f for f in self.findings if f.edit == index]

    def general(self) -> list[Finding]:
        return [f for f in self.findings if f.edit is None]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": REVIEW_FORMAT, "reviewer": self.reviewer, "at": self.at}
        if self.model is not None:
            d["model"] = self.model
        d["scripted"] = self.scripted
        if self.base:
            d["base"] = self.base
        if self.summary:
            d["summary"] = self.summary
        d["findings"] = [f.to_dict() for f in self.findings]
        if self.exchange is not None:
            d["exchange"] = _plain(self.exchange)
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "<memory>") -> Review:
        """Validate a stored ``review:`` block; :class:`ProposalError` naming ``source`` and the key."""
        if not isinstance(d, Mapping):
            raise ProposalError(f"{source}: `review` must be a mapping or null, got {type(d).__name__}")
        keys = ("format", "reviewer", "at", "model", "scripted", "base", "summary", "findings", "exchange")
        unknown = [k for k in d if k not in keys]
        if unknown:
            raise ProposalError(f"{source}: unknown key {unknown[0]!r} in `review` (allowed: {', '.join(keys)})")
        fmt = d.get("format", REVIEW_FORMAT)
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt > REVIEW_FORMAT or fmt < 1:
            raise ProposalError(f"{source}: review format {fmt!r} is not one this workbench reads ({REVIEW_FORMAT})")
        for k in ("reviewer", "at"):
            if not isinstance(d.get(k), str):
                raise ProposalError(f"{source}: review `{k}` must be text")
        for k in ("model", "base", "summary"):
            if d.get(k) is not None and not isinstance(d[k], str):
                raise ProposalError(f"{source}: review `{k}` must be text")
        if not isinstance(d.get("scripted", False), bool):
            raise ProposalError(f"{source}: review `scripted` must be true or false")
        findings = d.get("findings") or []
        if not isinstance(findings, list):
            raise ProposalError(f"{source}: review `findings` must be a list")
        if d.get("exchange") is not None and not isinstance(d["exchange"], Mapping):
            raise ProposalError(f"{source}: review `exchange` must be a mapping")
        return cls(
            reviewer=d["reviewer"], at=d["at"], model=d.get("model"), scripted=d.get("scripted", False),
            base=d.get("base") or "", summary=(d.get("summary") or "")[:_MAX_TEXT],
            findings=tuple(Finding.from_dict(f, f"{source}: findings[{i}]") for i, f in enumerate(findings)),
            exchange=dict(d["exchange"]) if d.get("exchange") is not None else None,
        )


def _plain(v: Any, depth: int = 0) -> Any:
    if depth > 50:
        return "<nested too deeply>"
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, Mapping):
        return {str(k): _plain(x, depth + 1) for k, x in v.items()}
    if isinstance(v, Sequence) and not isinstance(v, (bytes, bytearray)):
        return [_plain(x, depth + 1) for x in v]
    return repr(v)
