"""Benchmarks, run as ``facewire bench <what>``: medians, percentiles and ratios measured in one run."""

from __future__ import annotations

import argparse

__all__ = ["run"]


def run(what: str, args: argparse.Namespace) -> int:
    if what == "track":
        from .track import main
    elif what == "accuracy":
        from .accuracy import main
    else:  # argparse restricts the choices
        raise ValueError(f"unknown benchmark {what!r}")
    return main(args)
