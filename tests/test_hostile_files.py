"""Special and oversized files at every door, library wording, and the modes of what the workbench writes.

Every reader (ontology, settings, proposal files, edit files, images, ``parts.json``, part masks) is
given a character device, a FIFO, a Unix socket, a folder, a symbolic link to ``/dev/zero`` and a
regular file over its size limit: each is refused fast, with an error naming the file and what it is,
and no traceback. Command-line doors run in a subprocess with a timeout, so a reader that blocks on a
FIFO or reads ``/dev/zero`` forever fails its test instead of hanging the suite.

Then: YAML and image-library errors come out in the workbench's words (line and column, no
``"<unicode string>"``, no library class names), alias bombs are named as such, and files and folders
the workbench writes follow the umask (set in a subprocess, never in this process).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench._io import read_bytes_bounded
from workbench._yaml import MAX_YAML_BYTES, read_yaml_file
from workbench.data.datasets import (
    MAX_IMAGE_BYTES,
    MAX_PARTS_JSON_BYTES,
    ImageFolder,
    check_dataset,
    load_image,
)
from workbench.errors import (
    DatasetError,
    ImageLoadError,
    OntologyError,
    SettingsError,
    SuggesterError,
)
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_ontology
from workbench.review.suggest import ReplaySuggester
from workbench.workspace.folder import Workspace
from workbench.workspace.settings import Settings

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, Unix sockets and /dev/zero are POSIX")

REPO = Path(__file__).resolve().parent.parent
DAISY = shipped_ontology("daisy")
KINDS = ["character device", "FIFO", "socket", "directory", "symlink to /dev/zero", "oversized"]
#: What the refusal says for each kind.
SAYS = {
    "character device": "is a character device, not",
    "FIFO": "is a FIFO (named pipe), not",
    "socket": "is a socket, not",
    "directory": "is a folder (a directory), not",
    "symlink to /dev/zero": "is a symbolic link to a character device (/dev/zero), not",
    "oversized": "is larger than the",
}
#: A library's wording that must not reach the user.
LEAKS = ("<unicode string>", "Traceback", "YAMLError", "ScannerError", "ParserError", "ComposerError",
         "ConstructorError", "ReaderError", "<block", "<stream", "tag:yaml.org", "DOS attack", "Pillow",
         "SyntaxError", "ValueError", "OSError", "UnidentifiedImageError")


@pytest.fixture(autouse=True)
def hang_guard():
    """A reader that blocks (on a FIFO, say) fails its test after 20 s instead of hanging the suite.

    A hang guard, not a timing assertion: every refusal here takes milliseconds.
    """
    if not hasattr(signal, "SIGALRM"):  # pragma: no cover
        yield
        return

    def hung(signum, frame):
        raise TimeoutError("a reader blocked for 20 s (a FIFO opened, or a device read without end)")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def short_tmp():
    """A folder with a short path: a Unix socket's path must fit in 108 bytes, pytest's tmp_path may not."""
    d = Path(tempfile.mkdtemp(prefix="wbh"))
    if len(str(d)) > 60:  # pragma: no cover - a very long TMPDIR
        d = Path(tempfile.mkdtemp(prefix="wbh", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def place(kind: str, path: Path, oversize: int, *, anywhere: bool = False) -> Path:
    """Make a special file of ``kind`` at ``path`` (``anywhere``: /dev/zero itself will do); return its path.

    ``oversize``: the size of the "oversized" regular file (sparse: nothing is written but its length).
    """
    if kind == "character device":
        if anywhere:
            return Path("/dev/zero")
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # the same device as /dev/zero
        except (OSError, AttributeError):
            pytest.skip("cannot make a device file here (needs root); the symlink case covers devices")
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "socket":
        if len(os.fsencode(path)) > 100:  # pragma: no cover - see short_tmp
            pytest.skip(f"socket path too long for AF_UNIX: {path}")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        s.close()  # the socket file stays on disk after the socket is closed
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "oversized":
        with open(path, "wb") as f:
            f.truncate(oversize)
    else:  # pragma: no cover
        raise ValueError(kind)
    return path


def assert_refused(message: str, path: Path | str, kind: str) -> None:
    assert str(path) in message or Path(path).name in message, f"the file is not named: {message}"
    assert SAYS[kind] in message, f"{kind}: {message}"
    assert not any(w in message for w in LEAKS), message


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m workbench.cli ARGS`` with a hang guard (a FIFO read would block forever)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=20, cwd=cwd, check=False, env=env, stdin=subprocess.DEVNULL)


def _png(w: int = 16, h: int = 12) -> bytes:
    b = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(b, "PNG")
    return b.getvalue()


def _mask(w: int = 16, h: int = 12) -> bytes:
    b = io.BytesIO()
    Image.fromarray(np.ones((h, w), dtype=np.uint8), "L").save(b, "PNG")
    return b.getvalue()


# ------------------------------------------------------------------------------------ the API doors
@pytest.mark.parametrize("kind", KINDS)
def test_ontology_load_refuses_special_files(short_tmp, kind):
    path = place(kind, short_tmp / "onto.yaml", MAX_YAML_BYTES + 1, anywhere=True)
    with pytest.raises(OntologyError) as info:
        Ontology.load(path)
    assert_refused(str(info.value), path, kind)
    assert "an ontology file" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_settings_load_refuses_special_files(short_tmp, kind):
    path = place(kind, short_tmp / "workbench.yaml", MAX_YAML_BYTES + 1, anywhere=True)
    with pytest.raises(SettingsError) as info:
        Settings.load(path)
    assert_refused(str(info.value), path, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_a_proposal_file_to_replay_is_refused_when_special(short_tmp, kind):
    path = place(kind, short_tmp / "0001.yaml", MAX_YAML_BYTES + 1, anywhere=True)
    with pytest.raises(SuggesterError) as info:
        ReplaySuggester([path])
    assert_refused(str(info.value), path, kind)
    assert "a proposal file" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_load_image_refuses_special_files_before_the_image_library_opens_them(short_tmp, kind):
    path = place(kind, short_tmp / "x.png", MAX_IMAGE_BYTES + 1, anywhere=True)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert info.value.path == path
    assert_refused(str(info.value), path, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_a_special_part_mask_is_refused_by_name(short_tmp, kind):
    root = short_tmp / "ds"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(_png())
    (root / "parts.json").write_text('{"1": "petal"}')
    mask = place(kind, root / "a" / "x.parts.png", MAX_IMAGE_BYTES + 1)
    folder = ImageFolder(root)
    assert [r.parts_path for r in folder.records] == [mask]
    with pytest.raises(ImageLoadError) as info:
        folder.load_parts(folder.records[0])
    assert_refused(str(info.value), mask, kind)
    assert "a part mask image" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_special_parts_json_is_refused_by_name(short_tmp, kind):
    root = short_tmp / "ds"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(_png())
    path = place(kind, root / "parts.json", MAX_PARTS_JSON_BYTES + 1)
    with pytest.raises(DatasetError) as info:
        ImageFolder(root)
    assert_refused(str(info.value), path, kind)


@pytest.mark.parametrize("kind", ["FIFO", "directory", "symlink to /dev/zero"])
def test_opening_a_workspace_with_a_special_settings_file_is_refused(short_tmp, kind):
    ws = Workspace.create(short_tmp / "ws", Ontology.load(DAISY))
    ws.close()
    (short_tmp / "ws" / "workbench.yaml").unlink()
    path = place(kind, short_tmp / "ws" / "workbench.yaml", MAX_YAML_BYTES + 1)
    with pytest.raises(SettingsError) as info:
        Workspace.open(short_tmp / "ws")
    assert_refused(str(info.value), path, kind)


def test_a_file_whose_size_on_record_is_wrong_is_read_no_further_than_the_limit():
    """/proc files report size 0 and hold more: the reader stops after limit + 1 bytes and refuses."""
    status = Path("/proc/self/status")
    if not status.is_file() or status.stat().st_size != 0:
        pytest.skip("needs a Linux /proc file whose recorded size is 0")
    with pytest.raises(OntologyError) as info:
        read_bytes_bounded(status, 16, OntologyError, "an ontology file")
    assert "is larger than the 16 bytes limit for an ontology file (more arrived while reading it)" in str(info.value)
    assert read_bytes_bounded(status, 1 << 20, OntologyError).startswith(b"Name:")


_SWAPPED = r"""
import os, sys
from workbench._io import read_bytes_bounded
from workbench.errors import OntologyError
fifo, regular = sys.argv[1], sys.argv[2]
real_stat = os.stat
# The FIFO passes the check by name, as if it were swapped in between the check and the open.
os.stat = lambda p, *a, **k: real_stat(regular if os.fspath(p) == fifo else p, *a, **k)
try:
    read_bytes_bounded(fifo, 1000, OntologyError, "an ontology file")
except OntologyError as e:
    print(e)
"""


def test_a_fifo_swapped_in_after_the_check_is_refused_without_blocking(short_tmp):
    fifo = place("FIFO", short_tmp / "o.yaml", 0)
    regular = short_tmp / "r.yaml"
    regular.write_text("a: 1\n")
    run = subprocess.run([sys.executable, "-c", _SWAPPED, str(fifo), str(regular)], capture_output=True, text=True,
                         timeout=20, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert_refused(run.stdout, fifo, "FIFO")


# ------------------------------------------------------------------------------------ the CLI doors
@pytest.mark.parametrize("kind", KINDS)
def test_cli_ontology_validate_refuses_special_files(short_tmp, kind):
    path = place(kind, short_tmp / "onto.yaml", MAX_YAML_BYTES + 1, anywhere=True)
    run = cli("ontology", "validate", str(path), cwd=short_tmp)
    assert run.returncode == 1, run.stderr[-2000:]
    assert_refused(run.stderr, path, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_cli_apply_edit_refuses_a_special_edit_file_and_writes_nothing(short_tmp, kind):
    onto = short_tmp / "daisy.yaml"
    onto.write_bytes(DAISY.read_bytes())
    edit = place(kind, short_tmp / "edit.yaml", MAX_YAML_BYTES + 1, anywhere=True)
    run = cli("ontology", "apply-edit", str(onto), "--edit", str(edit), cwd=short_tmp)
    assert run.returncode == 1, run.stderr[-2000:]
    assert_refused(run.stderr, edit, kind)
    assert "an edit file" in run.stderr
    assert onto.read_bytes() == DAISY.read_bytes()


def test_cli_dataset_check_reports_every_special_image_and_mask_by_name(short_tmp):
    root = short_tmp / "ds"
    (root / "a").mkdir(parents=True)
    (root / "parts.json").write_text('{"1": "petal"}')
    expected = {}
    for i, kind in enumerate(KINDS):
        try:
            expected[f"a/img{i}.png"] = place(kind, root / "a" / f"img{i}.png", MAX_IMAGE_BYTES + 1), kind
        except pytest.skip.Exception:
            continue
        (root / "a" / f"ok{i}.png").write_bytes(_png())
        expected[f"a/ok{i}.parts.png"] = place(kind, root / "a" / f"ok{i}.parts.png", MAX_IMAGE_BYTES + 1), kind
    (root / "a" / "good.png").write_bytes(_png())
    (root / "a" / "good.parts.png").write_bytes(_mask())
    run = cli("dataset", "check", str(root), cwd=short_tmp)
    assert run.returncode == 1, run.stderr[-2000:]
    lines = (run.stdout + run.stderr).splitlines()
    assert "Traceback" not in run.stdout + run.stderr
    for shown, (_, kind) in expected.items():
        line = next((x for x in lines if f"problem: {shown}:" in x), None)
        assert line is not None, f"{shown} ({kind}) is not reported:\n{run.stdout}"
        assert_refused(line, shown, kind)
    report = check_dataset(root)
    assert report.with_parts == {"a": 1}  # the good mask still counts


@pytest.mark.parametrize("kind", ["FIFO", "directory", "symlink to /dev/zero", "oversized"])
def test_cli_dataset_check_refuses_a_special_parts_json(short_tmp, kind):
    root = short_tmp / "ds"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(_png())
    path = place(kind, root / "parts.json", MAX_PARTS_JSON_BYTES + 1)
    run = cli("dataset", "check", str(root), cwd=short_tmp)
    assert run.returncode == 1, run.stderr[-2000:]
    assert_refused(run.stderr, path, kind)


# ------------------------------------------------------------------------------- library wording
MALFORMED = {
    "unclosed list": ("version: 1\nname: [unclosed\n", "line 3, column 1"),
    "tab indent": ("version: 1\nname:\n\t- x\n", "line 3, column 1: a tab character"),
    "bad indent": ("version: 1\n name: x\n", "line 2, column 6"),
    "block end": ("version: 1\nconcepts:\n  - id: a\n label: b\n", "line 4"),
    "nul byte": ("version: 1\x00\nname: x\n", "line 1, column 11: the character U+0000 is not allowed"),
    "undefined alias": ("version: 1\nname: *nope\n", "the alias *nope refers to no &nope anchor"),
    "two documents": ("version: 1\n---\nname: x\n", "line 2, column 1: a second YAML document"),
    "unclosed quote": ("version: 1\nname: 'x\n", "the file ends too early (in the quoted text"),
    "python tag": ("name: !!python/object/apply:os.system ['true']\n",
                   "YAML tag not allowed (only plain YAML is accepted) at line 1, column 7: the tag !!python/"),
    "bad date": ("version: 1\nname: 2001-99-99\n", "'2001-99-99' cannot be read as a date or time (month must be in 1..12)"),
    "bad int": ("version: !!int abc\n", "'abc' cannot be read as an integer; put it in quotes"),
    "list as key": ("? [a]\n: b\n", "a key is a list or a mapping"),
    "merge key": ("a: &a {x: 1}\nb: {<<: *a}\n", "merge keys (<<) are not supported"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
@pytest.mark.parametrize("door", ["ontology", "settings"])
def test_yaml_errors_are_in_the_workbenchs_words_with_line_and_column(tmp_path, name, door):
    text, says = MALFORMED[name]
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    load, error = (Ontology.load, OntologyError) if door == "ontology" else (Settings.load, SettingsError)
    with pytest.raises(error) as info:
        load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    assert says in msg, msg
    assert not any(w in msg for w in LEAKS), msg


def test_cli_validate_prints_yaml_errors_without_library_wording(short_tmp):
    paths = []
    for i, name in enumerate(sorted(MALFORMED)):
        p = short_tmp / f"m{i}.yaml"
        p.write_text(MALFORMED[name][0])
        paths.append(p)
    run = cli("ontology", "validate", *map(str, paths), cwd=short_tmp)
    assert run.returncode == 1
    for p in paths:
        assert f"{p}: invalid ontology" in run.stderr
    assert not any(w in run.stderr for w in LEAKS), run.stderr


def _bomb(levels: int, width: int) -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels,width", [(9, 9), (12, 12), (30, 2)])
def test_an_alias_bomb_is_named_as_one(tmp_path, levels, width):
    path = tmp_path / "laughs.yaml"
    path.write_text(_bomb(levels, width))
    with pytest.raises(OntologyError) as info:
        Ontology.load(path)
    assert str(info.value) == f"{path}: uses YAML aliases to expand to more than 100,000 nodes (an alias bomb); refused"


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("version: 1\nname: &n [a, *n]\n")
    with pytest.raises(OntologyError, match=r"loop\.yaml: uses a YAML alias inside its own anchor"):
        Ontology.load(path)


def test_a_few_aliases_that_expand_a_little_still_load(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("x: &x [lol, lol]\ny: [*x, *x, *x]\n")
    assert read_yaml_file(path, OntologyError) == {"x": ["lol", "lol"], "y": [["lol", "lol"]] * 3}


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_image_library_wording_is_translated(tmp_path):
    good = bytearray(_png(64, 48))
    cases = {
        "bomb.png": (_png_claiming(50_000, 50_000), "decompression bomb: the header says 2,500,000,000 pixels"),
        "junk.png": (b"this is not a picture at all", "not an image file (or in a format the workbench cannot read)"),
        "flipped.png": (bytes(good[:60] + bytes([good[60] ^ 0xFF]) + good[61:]), "cannot decode the image"),
    }
    for name, (data, says) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ImageLoadError) as info:
            load_image(p, max_pixels=None)
        assert says in info.value.reason, (name, info.value.reason)
        assert not any(w in info.value.reason for w in LEAKS), (name, info.value.reason)


# ----------------------------------------------------------------------------------- file modes
_WRITER = r"""
import json, os, sys
os.umask(int(sys.argv[2], 8))
from pathlib import Path
from workbench.ontology.graph import Ontology
from workbench.ontology.shipped import shipped_ontology
from workbench.workspace.folder import Workspace
root = Path(sys.argv[1])
o = Ontology.load(shipped_ontology("daisy"))
o.save(root / "new-folder" / "ontology.yaml")
ws = Workspace.create(root / "ws", o)
labels_json, _ = ws.export_labels()
ws.store.backup(root / "ws" / "exports" / "labels-backup.sqlite")
from workbench.review.proposals import make_proposal
from workbench.review.store import ProposalStore
ProposalStore(ws, commit=False).save(make_proposal(ws.ontology, [{"op": "describe", "id": "petal", "label": "Ray"}],
                                                   kind="person", author="person:test", title="relabel"))
ws.close()
from workbench.data.datasets import generate_demo
generate_demo(root / "demo", n_per_class=1, size=64)
private = root / "private.yaml"
o.save(private)
os.chmod(private, 0o600)
o.save(private)  # rewritten: a file the user made private stays private
left = sorted(p.name for p in root.rglob("*.tmp"))
def mode(p):
    return oct(os.stat(root / p).st_mode & 0o777)
print(json.dumps({"left": left, "modes": {p: mode(p) for p in [
    "new-folder", "new-folder/ontology.yaml", "ws", "ws/ontology.yaml", "ws/workbench.yaml", "ws/.workbench",
    "ws/models", "ws/proposals", "ws/cache", "ws/exports", "ws/exports/labels.json",
    "ws/exports/labels-backup.sqlite", "ws/proposals/0001.yaml", "demo", "demo/daisy", "demo/daisy/0000.png",
    "private.yaml"]}}))
"""


@pytest.mark.parametrize("umask,file_mode,dir_mode", [("022", "0o644", "0o755"), ("077", "0o600", "0o700"),
                                                       ("002", "0o664", "0o775")])
def test_written_files_and_folders_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    run = subprocess.run([sys.executable, "-c", _WRITER, str(tmp_path), umask], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    res = json.loads(run.stdout)
    assert res["left"] == []
    modes = res["modes"]
    assert modes.pop("private.yaml") == "0o600"
    for p, m in modes.items():
        expected = dir_mode if (tmp_path / p).is_dir() else file_mode
        assert m == expected, f"{p}: {m}, expected {expected} under umask {umask}"
