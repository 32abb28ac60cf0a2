"""Tests for workbench/review/refs.py: every accepted and every refused form of a proposal reference, and
the line between a proposal reference and a commit sha (what the store, cells, revert, the server and the
command line all rely on)."""
from __future__ import annotations

from pathlib import Path, PurePath

import pytest

from workbench.errors import ProposalError
from workbench.review.refs import (
    REF_HELP,
    file_id,
    format_id,
    is_commit_sha,
    is_proposal_id,
    is_proposal_ref,
    parse_ref,
    ref_path,
)


@pytest.mark.parametrize("ref, pid", [
    (7, "0007"),
    ("7", "0007"),
    ("0007", "0007"),
    (" 0007 \n", "0007"),
    ("00000007", "0007"),  # leading zeros, still at most 9 digits
    ("0007.yaml", "0007"),
    ("proposals/0007.yaml", "0007"),
    ("./proposals/0007.yaml", "0007"),
    ("proposals\\0007.yaml", "0007"),  # a Windows separator
    (PurePath("proposals/0007.yaml"), "0007"),
    (12345, "12345"),
    ("123456789", "123456789"),
    ("123456789.yaml", "123456789"),
])
def test_accepted_forms_give_the_canonical_id(ref, pid):
    assert parse_ref(ref) == pid
    assert ref_path(ref) == f"proposals/{pid}.yaml"


@pytest.mark.parametrize("ref, match", [
    # not a reference at all
    (None, "got NoneType"),
    (True, "got bool"),
    (3.5, "got float"),
    (b"0007", "got bytes"),
    ("", "empty"),
    ("   ", "empty"),
    # numbers out of range
    (0, "start at 1"),
    (-1, "start at 1"),
    ("0", "start at 1"),
    ("0000", "start at 1"),
    (10**9, "at most 9 digits"),
    ("1234567890", "at most 9 digits"),
    ("9" * 5000, "is not a proposal"),  # never handed to int(): Python refuses such long numbers itself
    ("٧", "not a proposal file name"),  # a digit to str.isdigit, not an ASCII id
    ("²", "not a proposal file name"),
    ("-1", "not a proposal file name"),
    # outside proposals/
    ("../ontology.yaml", r"no '\.\.'"),
    ("proposals/../ontology.yaml", r"no '\.\.'"),
    ("proposals/0001.yaml/../../x.yaml", r"no '\.\.'"),
    ("..\\0007.yaml", r"no '\.\.'"),
    ("/etc/passwd", "absolute path"),
    ("/proposals/0007.yaml", "absolute path"),
    ("C:/x/0001.yaml", "absolute path"),
    ("c:0001.yaml", "absolute path"),
    ("sub/0001.yaml", "directly in proposals/"),
    ("proposals/sub/0001.yaml", "directly in proposals/"),
    # not a proposal file name
    ("ontology.yaml", "not a proposal file name"),
    ("7.yaml", "not a proposal file name"),
    ("proposals/0007", "not a proposal file name"),
    ("0007.yml", "not a proposal file name"),
    ("0007; import os", "not a proposal file name"),
    ("x", "not a proposal file name"),
    ("1234567890.yaml", "not a proposal file name"),
    # control and invisible characters
    ("00\x0007", "control"),
    ("0007\x1b[2J", "control"),
    ("proposals/\u202e0007.yaml", "control"),
    ("00\u200b07", "control"),
])
def test_refused_forms_say_why(ref, match):
    with pytest.raises(ProposalError, match=match) as e:
        parse_ref(ref)
    message = str(e.value)
    assert "\x1b" not in message and "\u202e" not in message and len(message) < 300


def test_an_absolute_path_is_accepted_only_inside_the_given_proposals_folder(tmp_path):
    pdir = tmp_path / "ws" / "proposals"
    pdir.mkdir(parents=True)
    assert parse_ref(pdir / "0007.yaml", proposals_dir=pdir) == "0007"
    assert parse_ref(str(pdir / "0007.yaml"), proposals_dir=str(pdir)) == "0007"
    (tmp_path / "link").symlink_to(tmp_path / "ws")  # the same folder by another path
    assert parse_ref(tmp_path / "link" / "proposals" / "0007.yaml", proposals_dir=pdir) == "0007"
    for bad in (tmp_path / "0007.yaml", tmp_path / "other" / "proposals" / "0007.yaml", pdir / "sub" / "0007.yaml",
                pdir / ".." / "proposals" / "0007.yaml", pdir / "notes.yaml", Path("/etc/passwd")):
        with pytest.raises(ProposalError, match="absolute path"):
            parse_ref(bad, proposals_dir=pdir)
    with pytest.raises(ProposalError, match="absolute path"):
        parse_ref(pdir / "0007.yaml")  # no folder given: no absolute path at all


def test_ids_and_file_names():
    assert format_id(7) == "0007" and format_id(123456) == "123456"
    assert [file_id(n) for n in ("0007.yaml", "7.yaml", "0007.yaml.tmp", ".0007.yaml.x1.tmp", "batches.yaml")] == [
        "0007", None, None, None, None]
    assert [is_proposal_id(v) for v in ("0007", "123456789", "7", "1234567890", "../etc", 7, None)] == [
        True, True, False, False, False, False, False]
    assert "proposals/0007.yaml" in REF_HELP


@pytest.mark.parametrize("ref, proposal", [
    (7, True), ("7", True), ("0007", True), ("123456", True), ("proposals/0007.yaml", True), ("0007.yaml", True),
    (Path("proposals/0007.yaml"), True),
    ("1234567", False),  # 7 digits: git's shortest abbreviation of a commit
    ("deadbeef", False), ("3f9c2e71d0b84a6f" * 2, False), ("HEAD", False), (True, False), (None, False),
])
def test_a_proposal_ref_or_a_commit(ref, proposal):
    assert is_proposal_ref(ref) is proposal


def test_commit_shas():
    assert is_commit_sha("deadbee") and is_commit_sha("DEADBEEF") and is_commit_sha("a" * 64)
    assert not any(is_commit_sha(v) for v in ("dead", "a" * 65, "-deadbeef", "deadbeeg", "HEAD~1", None, 1234567))
