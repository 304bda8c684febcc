"""What every take reader shares: checking that the file can be read before parsing lazily."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import IO

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


def open_take_text(path: str, stack: contextlib.ExitStack) -> IO[str]:
    """A take opened for reading as UTF-8 text (a BOM tolerated, newlines untranslated), closed by
    ``stack``; ``"-"`` reads stdin without ever closing the process's own stream."""
    if path == STDIO:
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
        stack.callback(stream.detach)
        return stream
    try:
        return stack.enter_context(open(path, encoding="utf-8-sig", newline=""))
    except OSError as exc:
        raise InputError(f"cannot read take {path}: {exc.strerror or exc}") from exc
