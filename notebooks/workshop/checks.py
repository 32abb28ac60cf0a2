"""Checks for the workshop's exercises: each says whether an answer is right, and what to look at if not.

Every check prints one line, ``✓ ...`` or ``✗ ...`` (or ``… not answered yet``), and returns True or
False. In the exercise notebooks a wrong or missing answer is not an error (the notebook runs on);
the solution notebooks call the checks with ``strict=True``, so a solution that stops being right
fails the test run. ``hint("1.2")`` prints the hint for an exercise from ``hints.md``.

>>> _verdict(True, "right", "wrong", strict=False)
✓ right
True
>>> _verdict(False, "right", "wrong", strict=False)
✗ wrong
False
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["hint", "ex1_1", "ex1_2", "ex1_3", "ex1_4", "ex2_1", "ex2_2", "ex2_3", "ex2_4", "ex3_1", "ex3_2",
           "ex3_3", "ex3_4"]

_HINTS = Path(__file__).with_name("hints.md")


class CheckFailed(AssertionError):
    """A strict check (solutions) found a wrong answer."""


def _verdict(ok: bool, good: str, bad: str, *, strict: bool) -> bool:
    print(f"✓ {good}" if ok else f"✗ {bad}")
    if strict and not ok:
        raise CheckFailed(bad)
    return ok


def _unanswered(answer: Any, strict: bool) -> bool:
    if answer is None or answer is Ellipsis:
        print("… not answered yet: replace the ... in the cell above, run it, then run this check again")
        if strict:
            raise CheckFailed("not answered")
        return True
    return False


def hint(exercise: str) -> None:
    """Print the hint for ``exercise`` ("1.2") from hints.md."""
    text = _HINTS.read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(exercise)}\b.*?$(.*?)(?=^## |\Z)", text, re.S | re.M)
    print(m.group(1).strip() if m else f"no hint for {exercise!r}; the exercises are 1.1-1.4, 2.1-2.4, 3.1-3.4")


# ------------------------------------------------------------------------------ block 1: the ontology
def ex1_1(wb: Any, answer: Any, *, strict: bool = False) -> bool:
    """The parts of flower_head, as the ontology lists them."""
    if _unanswered(answer, strict):
        return False
    want = tuple(wb.ontology.parts("flower_head"))
    got = tuple(answer) if isinstance(answer, (list, tuple)) else (answer,)
    return _verdict(sorted(got) == sorted(want), f"flower_head is made of {', '.join(want)}",
                    f"{got!r} is not it: look at the `parts` of flower_head in wb.ontology (or ontology.yaml)",
                    strict=strict)


def ex1_2(wb: Any, answer: Any, *, strict: bool = False) -> bool:
    """A saved, pending, valid person's proposal that adds `sepal` as a part of flower_head, lint-free."""
    if _unanswered(answer, strict):
        return False
    from workbench.review.store import ProposalStore

    try:
        p = ProposalStore(wb.workspace).load(answer.id if hasattr(answer, "id") else answer)
    except Exception as e:  # noqa: BLE001 - the participant's answer may be anything
        return _verdict(False, "", f"cannot load that proposal ({e}): save it with ProposalStore(ws).save(p)",
                        strict=strict)
    adds = [e for e in p.edits if e.op.get("op") == "add_concept" and e.op.get("id") == "sepal"]
    problems = []
    if p.status != "pending":
        problems.append(f"it is {p.status}, not pending (a proposal waits for review)")
    if not adds:
        problems.append("it has no add_concept edit with id 'sepal'")
    elif not adds[0].valid:
        problems.append(f"its add_concept is invalid: {adds[0].problem}")
    elif "flower_head" not in (adds[0].op.get("parents") or []):
        problems.append("sepal is not a part of flower_head (parents: [flower_head])")
    lint = [w for e in p.edits for w in e.lint]
    if lint:
        problems.append(f"lint: {lint[0]}")
    return _verdict(not problems, f"proposal {p.id} adds a sepal to the flower head, waiting for review",
                    "; ".join(problems), strict=strict)


def ex1_3(wb: Any, answer: Any, *, strict: bool = False) -> bool:
    """A leaf description the concept lint accepts, that still talks about colour or shape."""
    if _unanswered(answer, strict):
        return False
    from workbench.ontology.lint import lint_concept

    if not isinstance(answer, str) or len(answer.split()) < 5:
        return _verdict(False, "", "write a sentence or two (a string of at least five words)", strict=strict)
    warnings = lint_concept("Leaf", answer)
    visual = re.search(r"green|shape|edge|oval|long|narrow|wide|round|pointed|smooth|toothed|colou?r", answer, re.I)
    if warnings:
        return _verdict(False, "", f"lint says: {warnings[0]}", strict=strict)
    return _verdict(bool(visual), "a description a camera can check",
                    "lint is happy, but say what a leaf looks like (its colour, shape or edge)", strict=strict)


def ex1_4(wb: Any, answer: Any, *, strict: bool = False) -> bool:
    """The review: only the petal description accepted; no stalk; the invalid edit left alone."""
    if _unanswered(answer, strict):
        return False
    from course import REVIEW_TITLE

    from workbench.review.store import ProposalStore

    p = next((q for q in ProposalStore(wb.workspace).list() if q.title == REVIEW_TITLE), None)
    if p is None:
        return _verdict(False, "", "the proposal to review is gone; run the set-up cell again", strict=strict)
    accepted = [i for i, e in enumerate(p.edits) if e.decision == "accepted"]
    if p.status == "pending":
        return _verdict(False, "", "it is still pending: accept the edits you want (accept(ws, p, [..], by=...))",
                        strict=strict)
    if "stalk" in wb.ontology.concepts:
        return _verdict(False, "", "'stalk' is in the ontology now: it is the stem under another name. "
                        "Revert that (wb.revert(...)) and accept only the petal edit", strict=strict)
    return _verdict(accepted == [0], "only the petal description went in: the stalk duplicates the stem, "
                    "and the sepal edit was invalid (no concept 'sepal' to add as a part)",
                    f"accepted edits {accepted}; the one worth having is edit 0", strict=strict)


# ------------------------------------------------------------------------- block 2: label and train
def ex2_1(wb: Any, answer: Any = True, *, strict: bool = False) -> bool:
    """At least 10 segments labelled by a person (any name) through the labeler."""
    n = sum(wb.store.counts(source="person").values())
    return _verdict(n >= 10, f"{n} segments labelled by hand", f"{n} labelled by hand so far; label at least 10",
                    strict=strict)


def ex2_2(wb: Any, answer: Any = True, *, strict: bool = False) -> bool:
    """Every segment labelled, the hand labels kept."""
    done, total = wb.store.progress()
    kept = sum(wb.store.counts(source="person").values())
    ok = total > 0 and done == total and kept >= 10
    return _verdict(ok, f"all {total} segments labelled, {kept} of them by hand",
                    f"{done} of {total} labelled ({kept} by hand): label the rest from the masks "
                    "(label_from_masks), which keeps hand labels", strict=strict)


def ex2_3(wb: Any, answer: Any, outcome: Any = None, *, strict: bool = False) -> bool:
    """The part (leaf concept) with the lowest validation balanced accuracy."""
    if _unanswered(answer, strict):
        return False
    if outcome is None:
        return _verdict(False, "", "train first: outcome = wb.train().outcome", strict=strict)
    leaves = {c: m["val_balanced_accuracy"] for c, m in outcome["concepts"].items() if m["kind"] == "part"}
    worst = min(leaves, key=lambda c: (leaves[c] if leaves[c] is not None else 2, c))
    return _verdict(answer == worst, f"{worst} is the weakest part ({leaves[worst]:.0%} balanced)",
                    f"{answer!r} is not the lowest: compare val_balanced_accuracy of the parts", strict=strict)


def ex2_4(wb: Any, answer: Any, retrained: Any = None, *, strict: bool = False) -> bool:
    """The concepts that retrained after three stem labels changed: stem and what is built on it."""
    if _unanswered(answer, strict):
        return False
    want = sorted(retrained) if retrained is not None else ["daisy", "stem"]
    got = sorted(answer) if isinstance(answer, (list, tuple, set)) else [answer]
    return _verdict(got == want, f"{', '.join(want)} retrained: the stem's data changed, and the daisy "
                    "is built on the stem; petal, disk, leaf and flower_head were loaded",
                    f"{got} is not it: which concepts are built on the stem?", strict=strict)


# ---------------------------------------------------------------------- block 3: the pull-request loop
def _petal_rule_proposal(wb: Any) -> Any:
    from workbench.review.store import ProposalStore

    for p in reversed(ProposalStore(wb.workspace).list()):
        for e in p.edits:
            if e.op.get("id") == "petal" and e.op.get("implementation") == "rule":
                return p
    return None


def ex3_1(wb: Any, answer: Any = True, *, strict: bool = False) -> bool:
    """A proposal making the petal a rule, gated (its verdict recorded) and decided."""
    p = _petal_rule_proposal(wb)
    if p is None:
        return _verdict(False, "", "no proposal makes petal a rule yet", strict=strict)
    if p.status == "pending" and not p.gate:
        return _verdict(False, "", f"proposal {p.id} is saved but not gated: wb.apply({p.id!r})", strict=strict)
    if p.status == "pending":
        return _verdict(False, "", f"the gate said {p.gate.get('decision')}: decide (override with a reason, or reject)",
                        strict=strict)
    return _verdict(True, f"proposal {p.id} is {p.status} ({(p.gate or {}).get('summary', 'no gate')})", "", strict=strict)


def ex3_2(wb: Any, answer: Any, *, strict: bool = False) -> bool:
    """The proposal id that last changed the petal."""
    if _unanswered(answer, strict):
        return False
    last = wb.why("petal").last_changed
    want = last.proposal if last is not None else None
    return _verdict(str(answer).zfill(4) == str(want), f"proposal {want} last changed the petal",
                    f"{answer!r} is not it: print(wb.why('petal'))", strict=strict)


def ex3_3(wb: Any, answer: Any = True, *, strict: bool = False) -> bool:
    """The petal change reverted: the petal is a net again, by a revert commit."""
    p = _petal_rule_proposal(wb)
    reverts = [c for c in wb.history() if c.reverts and p is not None and c.reverts == p.commit]
    ok = wb.ontology.concepts["petal"].implementation == "net" and bool(reverts)
    return _verdict(ok, f"reverted by {reverts[0].short if reverts else '?'}: the petal is a net again",
                    "the petal change is not reverted yet: wb.revert(<proposal id>, reason=...)", strict=strict)


def ex3_4(wb: Any, answer: Any = True, *, strict: bool = False) -> bool:
    """A "must not be petal" pin, and the disk-rule proposal gated and blocked by a pin that newly fails.

    What is checked is the process (a pin written, the gate run, a pin named in its verdict), never an
    accuracy: the verdict's numbers are whatever the gate measured."""
    from course import DISK_RULE_TITLE

    from workbench.review.store import ProposalStore
    from workbench.workspace.pins import pins

    mine = [p for p in pins(wb.workspace, "petal", strict=False) if p.expect == "must_not"]
    if not mine:
        return _verdict(False, "", "no pin says 'must not be petal' yet: wb.pin((\"daisy/0000.png\", disk_box), "
                        "\"petal\", \"must_not\")", strict=strict)
    p = next((q for q in reversed(ProposalStore(wb.workspace).list()) if q.title == DISK_RULE_TITLE), None)
    if p is None:
        return _verdict(False, "", "the proposal is not made yet: disk_rule = course.petals_by_disk_rule(wb)",
                        strict=strict)
    if not p.gate:
        return _verdict(False, "", f"pinned; now gate the proposal: wb.apply({p.id!r})", strict=strict)
    blocked = (p.gate.get("pins") or {}).get("newly_failing") or []
    if p.status == "accepted":
        return _verdict(False, "", f"proposal {p.id} is merged (overridden); undo it with wb.revert({p.id!r}) and "
                        "leave it unmerged", strict=strict)
    if not blocked:
        return _verdict(False, "", f"the gate said {p.gate.get('summary', '?')}, and no pin newly failed: did you pin "
                        "the disk of daisy/0000.png (must_not) before wb.apply?", strict=strict)
    return _verdict(True, f"the gate blocked proposal {p.id}: {len(blocked)} pin(s) newly fail "
                    f"({p.gate.get('summary', '')})", "", strict=strict)
