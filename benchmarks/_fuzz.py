"""Shared runner of the fuzz targets: atheris when it is installed, else a plain-Python fallback.

With atheris (``pip install -e ".[fuzz]"``): coverage-guided fuzzing (libFuzzer) seeded with a
corpus folder; libFuzzer's own flags pass through (``-atheris_runs=N``, ``-max_total_time=S``,
``-max_len=B``); new interesting inputs are written into the corpus folder, crashes to
``crash-<sha1>`` files in the current folder.

Without atheris, or with ``--fallback``: the seeds are replayed, then ``--runs`` random mutations of
them (bit flips, cuts, inserted and zeroed bytes; seeded by ``--seed``) go through the same target.
Not coverage-guided, so much weaker than atheris, but it needs nothing and finds the shallow crashes.
A crashing input is saved as ``crash-<sha1>.bin`` and the process exits 1.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["mutate", "fuzz_main"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to six random edits of ``data``: flip a bit, cut the tail, insert bytes, zero a run."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.choice(("flip", "cut", "insert", "zero", "dup"))
        i = rng.randrange(len(b)) if b else 0
        if op == "flip" and b:
            b[i] ^= 1 << rng.randrange(8)
        elif op == "cut":
            del b[i:]
        elif op == "insert":
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == "zero" and b:
            n = rng.randint(1, 64)
            b[i:i + n] = bytes(len(b[i:i + n]))
        elif op == "dup" and b:
            n = rng.randint(1, 64)
            b[i:i] = b[i:i + n]
    return bytes(b)


def _save_crash(data: bytes) -> Path:
    p = Path(f"crash-{hashlib.sha1(data).hexdigest()}.bin")
    p.write_bytes(data)
    return p


def fuzz_main(name: str, target: Callable[[bytes], None], seeds: Callable[[], Sequence[bytes]],
              instrument: Callable[[], None] | None = None, argv: list[str] | None = None) -> int:
    """Run ``target`` under atheris (when importable) or the fallback; return an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog=name, description=f"fuzz {name}", add_help=True)
    ap.add_argument("--fallback", action="store_true", help="plain-Python mutation fuzzing even if atheris is installed")
    ap.add_argument("--runs", type=int, default=2000, help="fallback: mutated inputs to try (default 2000)")
    ap.add_argument("--seed", type=int, default=0, help="fallback: random seed")
    ap.add_argument("--corpus", type=Path, default=None, help="seed corpus folder (default: a temp folder of generated seeds)")
    args, passthrough = ap.parse_known_args(argv)
    try:
        import atheris  # type: ignore[import-not-found]
    except ImportError:
        atheris = None
    use_atheris = atheris is not None and not args.fallback
    if use_atheris and instrument is not None:  # before anything imports the code under test
        with atheris.instrument_imports():
            instrument()
    seed_data = list(seeds())
    corpus = args.corpus or Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    corpus.mkdir(parents=True, exist_ok=True)
    for i, d in enumerate(seed_data):
        (corpus / f"seed-{i:03d}").write_bytes(d)
    if use_atheris:
        print(f"{name}: atheris {getattr(atheris, '__version__', '')}, corpus {corpus} ({len(seed_data)} seeds)",
              flush=True)
        atheris.Setup([sys.argv[0], *passthrough, str(corpus)], target)
        atheris.Fuzz()
        return 0
    why = "--fallback given" if args.fallback else "atheris is not installed (pip install -e '.[fuzz]')"
    print(f"{name}: plain-Python fallback ({why}): {len(seed_data)} seeds, then {args.runs} mutations, "
          f"seed {args.seed}", flush=True)
    rng = random.Random(args.seed)
    files = sorted(corpus.iterdir())
    pool = [f.read_bytes() for f in files if f.is_file()]
    t0 = time.perf_counter()
    for k in range(len(pool) + args.runs):
        data = pool[k] if k < len(pool) else mutate(rng.choice(pool), rng)
        try:
            target(data)
        except Exception:  # noqa: BLE001 - any exception the target lets out is a finding
            path = _save_crash(data)
            traceback.print_exc()
            print(f"{name}: CRASH on input {k} ({len(data)} bytes), saved as {path}", file=sys.stderr)
            return 1
    print(f"{name}: {len(pool) + args.runs} inputs, no crash, {time.perf_counter() - t0:.1f} s", flush=True)
    return 0
