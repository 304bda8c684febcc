"""Optional parts of the package that register themselves (CLI verbs, benchmarks) when present."""

from __future__ import annotations

import importlib.util

__all__ = ["module_exists"]


def module_exists(name: str) -> bool:
    """True when ``name`` (dotted) can be imported; False when it or a parent package is absent."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False
