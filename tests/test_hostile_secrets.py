"""Secrets: with a canary ``ANTHROPIC_API_KEY`` in the environment, the command line (``init``,
``run --quick`` on a tiny set, and its error paths) writes the key into no file, database, git
object, report, stdout or stderr; and the one redaction module (``workbench/_redact.py``) that the
proposal files, the Claude records and the settings messages go through.

The Claude client's own canary checks (requests, recorded exchanges) are in ``tests/test_claude.py``.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from workbench._redact import escape_control, scrub
from workbench.cli import main
from workbench.errors import SettingsError
from workbench.ontology.graph import Concept, Ontology
from workbench.ontology.shipped import shipped_ontology
from workbench.review.proposals import make_proposal
from workbench.workspace.settings import Settings

CANARY = "sk-ant-canary-3f9c2e71d0b84a6f-DO-NOT-LEAK"
NEEDLES = (CANARY.encode(), b"3f9c2e71d0b84a6f")


def _leaks(root: Path) -> list[str]:
    """Files under ``root`` holding the canary: plain bytes, and git's zlib-compressed loose objects."""
    found = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            data = p.read_bytes()
            if "/.git/objects/" in str(p) and len(n) == 38:
                try:
                    data = zlib.decompress(data)
                except zlib.error:
                    pass
            if any(s in data for s in NEEDLES):
                found.append(str(p.relative_to(root)))
    return found


@pytest.fixture
def canary(monkeypatch, caplog):
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    caplog.set_level(logging.DEBUG)
    return CANARY


def _check_output(capfd, caplog) -> str:
    out = capfd.readouterr()
    text = out.out + out.err + caplog.text
    assert not any(s.decode() in text for s in NEEDLES), "the key was printed or logged"
    return text


def test_cli_main_job_and_its_error_paths_never_write_or_print_the_key(tmp_path, canary, capfd, caplog):
    from workbench.data.datasets import generate_demo

    data = tmp_path / "data"
    generate_demo(data, n_per_class=4, size=96, seed=0)
    daisy = str(shipped_ontology("daisy"))
    ws = tmp_path / "ws"

    assert main(["init", str(ws), "--dataset", str(data)]) == 0
    assert (ws / ".git").is_dir() and (ws / "workbench.yaml").is_file()
    assert main(["run", "--quick", "--no-progress", "--dataset", str(data), "--ontology", daisy,
                 "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.json").is_file()
    _check_output(capfd, caplog)

    bad = tmp_path / "not-a-dataset"
    bad.mkdir()
    (bad / "notes.txt").write_text("no class folders here")
    errors = [
        ["init", str(ws)],  # already a workspace
        ["run", "--quick", "--no-progress", "--dataset", str(bad), "--ontology", daisy, "--out", str(tmp_path / "o2")],
        ["run", "--quick", "--dataset", str(tmp_path / "missing"), "--ontology", daisy, "--out", str(tmp_path / "o3")],
        ["train", "--workspace", str(ws)],  # nothing segmented or labelled yet
        ["label", "--workspace", str(tmp_path / "nowhere"), "--from-masks"],
        ["ontology", "validate", str(bad / "notes.txt")],
    ]
    for argv in errors:
        assert main(argv) == 1, argv
        text = _check_output(capfd, caplog)
        assert "Traceback" not in text, argv
    assert _leaks(tmp_path) == []


def test_a_subprocess_failing_with_the_key_in_its_environment_does_not_print_it(tmp_path):
    env = {**os.environ, "ANTHROPIC_API_KEY": CANARY, "PYTHONFAULTHANDLER": "1"}
    for argv in (["run", "--quick", "--dataset", str(tmp_path / "missing"), "--ontology",
                  str(shipped_ontology("daisy")), "--out", str(tmp_path / "o")],
                 ["init", str(tmp_path / "ws2"), "--ontology", str(tmp_path / "missing.yaml")],
                 ["no-such-command"]):
        run = subprocess.run([sys.executable, "-m", "workbench.cli", *argv], capture_output=True, env=env,
                             timeout=120)
        assert run.returncode in (1, 2), (argv, run.stderr[-500:])
        assert not any(s in run.stdout + run.stderr for s in NEEDLES), argv
    assert _leaks(tmp_path) == []


def test_the_leak_detector_finds_the_key_in_a_file_and_in_a_git_object(tmp_path):
    """The checks above can fail: a planted key is found, plain or inside a compressed git object."""
    (tmp_path / "a.txt").write_text(f"key={CANARY}\n")
    obj = tmp_path / ".git" / "objects" / "ab"
    obj.mkdir(parents=True)
    (obj / ("c" * 38)).write_bytes(zlib.compress(b"blob 40\x00" + CANARY.encode()))
    assert sorted(_leaks(tmp_path)) == sorted(["a.txt", f".git/objects/ab/{'c' * 38}"])


# ------------------------------------------------------------------------------------ the redaction module
def test_scrub_replaces_the_env_key_key_shaped_text_and_credential_fields_and_nothing_else(canary):
    record = {
        "request": {"headers": {"X-Api-Key": "abc", "Authorization": ["Bearer xyz"]}, "api_key": 7,
                    "max_tokens": 8192, "messages": [("said " + CANARY, "sk-ant-api03-other0123")]},
        "response": {"usage": {"input_tokens": 12, "output_tokens": 3}, "text": "no secret here"},
    }
    out = scrub(record, extra_secrets=["no secret"])
    assert out["request"]["headers"] == {"X-Api-Key": "<redacted>", "Authorization": "<redacted>"}
    assert out["request"]["api_key"] == "<redacted>"
    assert out["request"]["messages"] == [["said <redacted>", "sk-ant-<redacted>"]]
    assert out["request"]["max_tokens"] == 8192 and out["response"]["usage"] == {"input_tokens": 12,
                                                                                "output_tokens": 3}
    assert out["response"]["text"] == "<redacted> here"
    assert record["request"]["api_key"] == 7  # the input is not changed


def test_a_proposal_file_holds_no_key_wherever_the_exchange_carries_it(canary):
    o = Ontology("daisy", "daisy", [Concept("daisy", "Daisy")])
    p = make_proposal(o, [], kind="suggest", author="claude:m", exchange={
        "request": {"headers": {"x-api-key": CANARY}, "note": f"key={CANARY}"},
        "response": {"content": [{"type": "text", "text": "echo sk-ant-api03-PLANTED0123"}]}})
    text = p.dumps()
    assert CANARY not in text and "3f9c2e71d0b84a6f" not in text and "PLANTED" not in text
    assert "<redacted>" in text


def test_settings_messages_never_echo_a_key(canary):
    for data in ({"workers": CANARY}, {"workers": "sk-ant-api03-PLANTED0123"}):
        with pytest.raises(SettingsError) as e:
            Settings.from_dict(data)
        assert "3f9c2e71d0b84a6f" not in str(e.value) and "PLANTED" not in str(e.value)
        assert "must be an integer" in str(e.value)


def test_one_control_character_escape():
    assert escape_control("a\tb\nc") == "a\tb\nc"  # tab and newline kept
    assert escape_control("x\x1b[2J\r\x7f\x9b\u202e\u2066y") == "x\\x1b[2J\\x0d\\x7f\\x9b\\u202e\\u2066y"
