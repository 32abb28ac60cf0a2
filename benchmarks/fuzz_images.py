"""Fuzz target: the hardened image loader (:func:`workbench.data.datasets.load_image`). On demand, not in CI.

    pip install -e ".[fuzz]"                                   # atheris (coverage-guided libFuzzer)
    python benchmarks/fuzz_images.py -atheris_runs=100000      # or -max_total_time=600
    python benchmarks/fuzz_images.py --fallback --runs 5000    # no atheris: replay + random mutations

The invariant: every input either loads as an RGB ``uint8`` H×W×3 array or raises
:class:`~workbench.errors.ImageLoadError` naming the file; any other exception, or a Python warning,
is a finding. Seeds: the generated hostile corpus of ``tests/_hostile_corpus.py`` (PNG, JPEG, GIF,
WebP, TIFF; CMYK, 16-bit, palette, RGBA, EXIF-rotated, animated; truncated and bombs) without the
12-megapixel file. ``max_pixels`` is lowered to 4 M so a mutated header cannot make one input
allocate gigabytes. See ``benchmarks/_fuzz.py`` for the runner.
"""
from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]

from _fuzz import fuzz_main  # noqa: E402

_PATH = Path(tempfile.mkdtemp(prefix="fuzz-images-")) / "input.img"


def _instrument() -> None:
    import PIL.Image  # noqa: F401
    import PIL.PngImagePlugin  # noqa: F401

    import workbench.data.datasets  # noqa: F401


def seeds() -> list[bytes]:
    from _hostile_corpus import corpus

    return [c.data for c in corpus(big=False)]


def target(data: bytes) -> None:
    import numpy as np

    from workbench.data.datasets import load_image
    from workbench.errors import ImageLoadError

    _PATH.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping the loader is a finding too
        try:
            out = load_image(_PATH, max_pixels=4_000_000)
        except ImageLoadError as e:
            if not (e.reason and _PATH.name in str(e)):
                raise AssertionError(f"refusal without the file's name or a reason: {e!r}") from None
            return
    if not (isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
            and out.size > 0):
        raise AssertionError(f"loaded something that is not RGB uint8 HxWx3: {getattr(out, 'dtype', type(out))} "
                             f"{getattr(out, 'shape', '')}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(fuzz_main("fuzz_images", target, seeds, _instrument))
