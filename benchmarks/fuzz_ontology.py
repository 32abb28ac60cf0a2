"""Fuzz target: the ontology parser (``Ontology.loads``) and edit parsing. On demand, not in CI.

    pip install -e ".[fuzz]"                                    # atheris (coverage-guided libFuzzer)
    python benchmarks/fuzz_ontology.py -atheris_runs=100000     # or -max_total_time=600
    python benchmarks/fuzz_ontology.py --fallback --runs 5000   # no atheris: replay + random mutations

The invariant: any bytes either parse into a valid :class:`~workbench.ontology.graph.Ontology` that
survives ``loads(dumps(o)) == o`` (byte-identical canonical text), or raise a
:class:`~workbench.errors.WorkbenchError` naming the source; the same bytes read as a list of edits
either apply or raise a ``WorkbenchError``. No other exception, no object constructed by a YAML tag
(a marker file must never appear), no output written. Seeds: the shipped ontologies and a few
hostile documents (tags, aliases, deep nesting, duplicate keys, non-UTF-8).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from _fuzz import fuzz_main  # noqa: E402

_DAISY: list = []  # the shipped daisy ontology, loaded once
_MARKER = Path(tempfile.mkdtemp(prefix="fuzz-ontology-")) / "pwned"


def _instrument() -> None:
    import workbench._io  # noqa: F401
    import workbench.ontology.edits  # noqa: F401
    import workbench.ontology.graph  # noqa: F401


def seeds() -> list[bytes]:
    repo = HERE.parent / "ontologies"
    out = [p.read_bytes() for p in sorted(repo.glob("*.yaml"))]
    m = str(_MARKER)
    out += [
        f"version: 1\nname: x\nroot: a\nconcepts:\n- id: a\n  label: !!python/object/apply:os.system ['touch {m}']\n".encode(),
        b'a0: &a0 ["x"]\na1: &a1 [*a0, *a0, *a0]\na2: &a2 [*a1, *a1, *a1]\nversion: *a2\n',
        b"x: " + b"[" * 200 + b"]" * 200 + b"\n",
        b"version: 1\nversion: 1\n",
        out[0].replace(b"Disk", b"D\xefsk\xff", 1) if out else b"\xff\xfe",
        b"- op: rename\n  old: petal\n  new: ray\n- op: describe\n  id: disk\n  label: Centre\n",
        b"- op: add_concept\n  id: bud\n  label: Bud\n  parents: [daisy]\n",
    ]
    return out


def target(data: bytes) -> None:
    from workbench._yaml import load_yaml_text
    from workbench.errors import WorkbenchError
    from workbench.ontology.edits import apply_edits, edit_from_dict
    from workbench.ontology.graph import Ontology
    from workbench.ontology.shipped import shipped_ontology

    try:
        o = Ontology.loads(data, "fuzz.yaml")
    except WorkbenchError as e:
        if "fuzz.yaml" not in str(e):
            raise AssertionError(f"refusal does not name the source: {e}") from None
    else:
        text = o.dumps()
        if Ontology.loads(text, "again.yaml") != o or Ontology.loads(text, "again.yaml").dumps() != text:
            raise AssertionError("load -> dump -> load is not the identity")
    if not _DAISY:
        _DAISY.append(Ontology.load(shipped_ontology("daisy")))
    try:
        raw = load_yaml_text(data, "edits.yaml")
        items = raw if isinstance(raw, list) else [raw]
        apply_edits(_DAISY[0], [edit_from_dict(d) for d in items])
    except WorkbenchError:
        pass
    if _MARKER.exists():
        raise AssertionError("a YAML tag ran code")


if __name__ == "__main__":
    sys.exit(fuzz_main("fuzz_ontology", target, seeds, _instrument))
