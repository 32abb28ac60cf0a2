"""The fingerprint of the front-end source, recorded next to the committed build.

``npm run build:prod`` ends with ``python3 build_hash.py --write``: it writes
``../labextension/build_hash.txt`` (the hash of every build input below) and ``install.json`` (how
the extension was installed, shown by ``jupyter labextension list``). ``tests/test_frontend_build.py``
recomputes the hash from the source: a change to the TypeScript, styles, schema or dependencies
without a rebuild fails that test.

Not shipped in the wheel (pyproject excludes ``workbench/jupyter/_frontend``).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

__all__ = ["INPUTS", "source_files", "source_hash", "write"]

HERE = Path(__file__).resolve().parent
#: Build inputs, as glob patterns relative to this folder.
INPUTS = ("src/**/*.ts", "src/**/*.tsx", "style/**/*.css", "style/**/*.js", "schema/*.json",
          "package.json", "package-lock.json", "tsconfig.json", ".npmrc")  # fmt: skip
OUTPUT = HERE.parent / "labextension"
INSTALL = {
    "packageManager": "python",
    "packageName": "constructability-workbench",
    "uninstallInstructions": "Use your Python package manager (pip, conda, etc.) to uninstall constructability-workbench",
}


def source_files(folder: Path = HERE) -> list[Path]:
    """Every build input under ``folder``, sorted (never node_modules or build output)."""
    found = {p for pattern in INPUTS for p in folder.glob(pattern) if p.is_file() and "node_modules" not in p.parts}
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def source_hash(folder: Path = HERE) -> str:
    """sha256 over the inputs' relative paths and contents (line endings normalised to LF)."""
    h = hashlib.sha256()
    for p in source_files(folder):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(p.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()


def write(output: Path = OUTPUT) -> str:
    """Record the source hash and install.json in the build output; returns the hash."""
    if not (output / "package.json").is_file():
        raise SystemExit(f"{output}: no built extension there; run `npm run build:prod` (not this script alone)")
    digest = source_hash()
    (output / "build_hash.txt").write_text(digest + "\n")
    (output / "install.json").write_text(json.dumps(INSTALL, indent=2) + "\n")
    return digest


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        print(f"build_hash.txt: {write()}")
    else:
        print(source_hash())
