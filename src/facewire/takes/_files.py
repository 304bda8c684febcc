"""What every take reader shares: checking that the file can be read before parsing lazily."""

from __future__ import annotations

import os

from ..atomic import STDIO
from ..errors import InputError


def readable_take(path: str | os.PathLike[str]) -> str:
    """The path as a string, after checking that it opens (``"-"`` = stdin, always accepted)."""
    path = os.fspath(path)
    if path != STDIO:
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise InputError(f"cannot read take {path}: {exc.strerror or exc}") from exc
    return path
