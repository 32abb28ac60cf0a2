"""The checks every reviewer runs in code before its own judgement: facts, not opinions.

:func:`code_findings` looks at a proposal against the current ontology and (when given) the label store:

- **contradiction**: an edit the validation refused when it was proposed, or that no longer applies to
  the current ontology (the proposal is stale and an earlier change removed what it builds on);
- **not_visual**: the word lint (:func:`workbench.ontology.lint.lint_concept`) on the wording the edit
  introduces;
- **overlap** by description: a proposed concept whose label and description share most of their
  words with an existing concept's (:func:`similarity`, token overlap after a small stemmer);
- **overlap** by labels: an evidence segment already labelled with an existing concept, and segments
  labelled both with a proposed concept and with another one in the store's history (a concept that
  people relabel back and forth is probably the same thing twice).

Every finding here has ``source="check"``. Nothing is written.

>>> sorted(tokens("A long green stalk under the flowers."))
['flower', 'green', 'long', 'stalk']
>>> round(similarity("Leaf rosette: a flat ring of green leaves at the foot of the stem",
...                  "Leaf: a green leaf, mostly in a low rosette at the foot of the stem"), 2)
0.71
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from workbench.errors import EditError
from workbench.ontology.edits import edit_from_dict
from workbench.ontology.graph import Ontology
from workbench.review.findings import Finding
from workbench.review.proposals import Proposal, ontology_hash

__all__ = ["code_findings", "proposed_concepts", "similarity", "tokens", "SIMILARITY_WARN", "LABEL_OVERLAP_WARN"]

#: Description similarity from which a proposed concept is reported as overlapping an existing one.
SIMILARITY_WARN = 0.6
#: Share of a proposed concept's labelled segments also labelled another concept that is reported.
LABEL_OVERLAP_WARN = 0.2
#: Least labelled segments before the label overlap of a concept is judged.
LABEL_OVERLAP_MIN = 3

_STOP = frozenset("""a an the of and or in on at to from by with without for as is are be been it its this that these
those one two some many most more less very much often usually sometimes each every any all no not than then
into onto over under below above near around between like seen shows shown image photo picture daisy""".split())
_WORD = re.compile(r"[a-z]+")


def _stem(w: str) -> str:
    for suffix, repl in (("ies", "y"), ("ves", "f"), ("es", "e"), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            return w[: -len(suffix)] + repl
    return w


def tokens(text: str) -> set[str]:
    """Content words of ``text``: lower case, stop words out, plural endings folded (``leaves`` → ``leaf``)."""
    return {_stem(w) for w in _WORD.findall(text.lower().replace("_", " ")) if len(w) > 2 and w not in _STOP}


def similarity(a: str, b: str) -> float:
    """How much of the shorter text's content words the other one has (overlap coefficient, 0..1).

    The overlap coefficient, not Jaccard: a short new description inside a long existing one (the
    refactored ``leaf`` says its leaves sit in a rosette) is the duplicate to catch.
    """
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / min(len(ta), len(tb))


def _text(concept_id: str, label: Any, description: Any) -> str:
    return " ".join(str(x) for x in (concept_id, label or "", description or ""))


def proposed_concepts(proposal: Proposal) -> list[tuple[int, str, str]]:
    """(edit index, concept id, its text: id, label, description) for every concept a proposal adds or names anew."""
    out: list[tuple[int, str, str]] = []
    for i, pe in enumerate(proposal.edits):
        op = pe.op if isinstance(pe.op, Mapping) else {}
        name = op.get("op")
        if name == "add_concept" and isinstance(op.get("id"), str):
            out.append((i, op["id"], _text(op["id"], op.get("label"), op.get("description"))))
        elif name == "split" and isinstance(op.get("into"), list):
            for spec in op["into"]:
                if isinstance(spec, Mapping) and isinstance(spec.get("id"), str):
                    out.append((i, spec["id"], _text(spec["id"], spec.get("label"), spec.get("description"))))
    return out


def _replaced(proposal: Proposal) -> set[str]:
    """Concepts the proposal itself removes, merges or renames away (an overlap with them is the point)."""
    gone: set[str] = set()
    for pe in proposal.edits:
        op = pe.op if isinstance(pe.op, Mapping) else {}
        if op.get("op") == "merge" and isinstance(op.get("sources"), list):
            gone |= {s for s in op["sources"] if isinstance(s, str)}
        elif op.get("op") in ("remove_concept", "split") and isinstance(op.get("id"), str):
            gone.add(op["id"])
        elif op.get("op") == "rename" and isinstance(op.get("old"), str):
            gone.add(op["old"])
    return gone


def _contradictions(ontology: Ontology, proposal: Proposal) -> list[Finding]:
    out = []
    for i, pe in enumerate(proposal.edits):
        if pe.problem:
            out.append(Finding("contradiction", f"{pe.summary()} cannot be applied: {pe.problem}", edit=i,
                               severity="serious", source="check", about=_about(pe.op)))
    if proposal.base == ontology_hash(ontology):
        return out
    cur = ontology  # stale: do the valid edits still apply, in order, to today's ontology?
    for i, pe in enumerate(proposal.edits):
        if not pe.valid:
            continue
        try:
            cur = edit_from_dict(pe.op).apply(cur)
        except EditError as e:
            out.append(Finding("contradiction", f"{pe.summary()} no longer fits the current ontology (it changed "
                               f"since this was proposed): {e}", edit=i, severity="serious", source="check",
                               about=_about(pe.op)))
    return out


def _about(op: Any) -> str | None:
    if not isinstance(op, Mapping):
        return None
    for k in ("id", "into", "new", "part"):
        if isinstance(op.get(k), str):
            return op[k]
    return None


def _lint(proposal: Proposal) -> list[Finding]:
    out = []
    for i, pe in enumerate(proposal.edits):
        for w in pe.lint:
            out.append(Finding("not_visual", f"word lint: {w}", edit=i, severity="warning", source="check",
                               about=_about(pe.op), evidence={"lint": True}))
    return out


def _description_overlap(ontology: Ontology, proposal: Proposal) -> list[Finding]:
    out = []
    gone = _replaced(proposal)
    for i, cid, text in proposed_concepts(proposal):
        best: tuple[float, str] | None = None
        for other in ontology.concepts.values():
            if other.id == cid or other.id in gone or other.id == ontology.root:
                continue
            s = similarity(text, _text(other.id, other.label, other.description))
            if best is None or s > best[0]:
                best = (s, other.id)
        if best is not None and best[0] >= SIMILARITY_WARN:
            s, other = best
            shared = sorted(tokens(text) & tokens(_text(other, ontology.concepts[other].label,
                                                        ontology.concepts[other].description)))
            out.append(Finding(
                "overlap", f"'{cid}' is described much like the existing '{other}' (similarity {s:.2f}; shared words: "
                f"{', '.join(shared[:8])}): is it the same thing?", about=cid, edit=i,
                severity="warning", source="check",
                evidence={"concept": other, "similarity": round(s, 3), "shared_words": shared[:12]}))
    return out


def _label_overlap(ontology: Ontology, proposal: Proposal, store: Any) -> list[Finding]:
    out: list[Finding] = []
    known = set(ontology.concepts)
    adds = proposed_concepts(proposal)
    # 1. the evidence segments: already labelled with an existing concept?
    if adds and proposal.evidence.segments:
        for sid in proposal.evidence.segments:
            try:
                row = store.label(int(sid))
            except Exception:  # noqa: BLE001 - a segment of another store, or gone: no evidence either way
                continue
            if row is None or row.concept in (None, "none") or row.concept not in known:
                continue
            i, cid, _ = adds[0]
            if row.concept == cid:
                continue
            out.append(Finding(
                "overlap", f"the evidence segment {sid} is already labelled '{row.concept}' in the store: is '{cid}' "
                f"a new concept or another name for '{row.concept}'?", about=cid, edit=i, severity="warning",
                source="check", evidence={"concept": row.concept, "segment": int(sid)}))
    # 2. concepts the proposal adds that already have labels (a provisional concept, a re-proposal):
    #    how many of their segments were also labelled another concept at some time
    ever: dict[int, set[str]] = {}
    for i, cid, _ in adds:
        rows = store.labels(concept=cid, history=True)
        segs = {r.segment_id for r in rows}
        if len(segs) < LABEL_OVERLAP_MIN:
            continue
        if not ever:
            for r in store.labels(history=True):
                if r.concept is not None:
                    ever.setdefault(r.segment_id, set()).add(r.concept)
        co: Counter[str] = Counter()
        for s in segs:
            for c in ever.get(s, ()):
                if c != cid and c != "none":
                    co[c] += 1
        for other, n in co.most_common(3):
            if n / len(segs) >= LABEL_OVERLAP_WARN:
                out.append(Finding(
                    "overlap", f"{n} of the {len(segs)} segments labelled '{cid}' were also labelled '{other}' at "
                    f"some time: people confuse the two", about=cid, edit=i, severity="warning", source="check",
                    evidence={"concept": other, "shared_segments": n, "segments": len(segs)}))
    # 3. merges: how many labelled segments each source brings (evidence for the person, not a problem)
    counts = store.counts()
    for i, pe in enumerate(proposal.edits):
        op = pe.op if isinstance(pe.op, Mapping) else {}
        if op.get("op") == "merge" and isinstance(op.get("sources"), list) and pe.valid:
            have = {s: counts.get(s, 0) for s in op["sources"] if isinstance(s, str)}
            said = ", ".join(f"{s} {n}" for s, n in have.items())
            out.append(Finding("ok", f"merging labelled segments: {said}", about=op.get("into"), edit=i,
                               severity="info", source="check", evidence={"labelled": have}))
    return out


def code_findings(ontology: Ontology, proposal: Proposal, store: Any = None) -> list[Finding]:
    """The findings the workbench's own code makes (see the module docstring); ``store``: a
    :class:`workbench.data.store.LabelStore` for the label checks (None: those are skipped)."""
    out = _contradictions(ontology, proposal) + _lint(proposal) + _description_overlap(ontology, proposal)
    if store is not None:
        out += _label_overlap(ontology, proposal, store)
    return out


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Most serious first, then by edit (whole-proposal findings first), stable otherwise."""
    rank = {"serious": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: (rank[f.severity], -1 if f.edit is None else f.edit))
