"""Benchmarks, run as ``facewire bench <what>``: medians, percentiles and ratios measured in one run.

Each benchmark is a module here with ``HELP`` (one line), ``add_arguments(parser)`` and
``main(args) -> int``; listing it in ``BENCHMARKS`` makes it a ``facewire bench`` verb.
"""

from __future__ import annotations

import argparse
import importlib

from ..plugins import module_exists

__all__ = ["BENCHMARKS", "register"]

BENCHMARKS = ("track", "accuracy", "lipsync", "alive", "affect", "completion", "render", "likeness", "watermark",
              "batch", "serve")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` and one sub-verb per benchmark module that exists."""
    b = sub.add_parser("bench", help="benchmarks: speed and accuracy, with ratios against a baseline")
    verbs = b.add_subparsers(dest="what", required=True, metavar="WHAT")
    for name in BENCHMARKS:
        module_name = f"{__name__}.{name}"
        if not module_exists(module_name):
            continue
        module = importlib.import_module(module_name)
        p = verbs.add_parser(name, help=module.HELP)
        module.add_arguments(p)
        p.set_defaults(func=module.main)
