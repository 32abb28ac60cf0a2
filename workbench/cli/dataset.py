"""``workbench dataset generate | check``: the generated demo set and image folders.

Light: nothing here imports torch.
"""
from __future__ import annotations

import argparse
import time

from workbench.cli.common import EXIT_INVALID, EXIT_OK, say
from workbench.data.datasets import check_dataset, generate_demo

__all__ = ["cmd_generate", "cmd_check"]


def cmd_generate(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    folder = generate_demo(args.out, n_per_class=args.n_per_class, size=args.size, seed=args.seed,
                           scene=args.scene)
    n = len(folder.records)
    say(f"generated {n} images in {time.perf_counter() - t0:.1f} s under {args.out} "
        f"(classes: {', '.join(folder.classes)}; ground-truth part masks: parts.json)")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    report = check_dataset(args.root)
    say(str(report))
    return EXIT_INVALID if report.problems else EXIT_OK
