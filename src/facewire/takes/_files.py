"""What every take reader shares: checking that the file can be read before parsing lazily."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Sequence
from typing import IO

from .. import arkit
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


def arkit_columns(names: Sequence[object], path: str, field: str, noun: str) -> tuple[list[int], list[int]]:
    """Which columns of a named-target file hold ARKit shapes, and their ARKit indices.

    Names match in camelCase or PascalCase; other names are skipped with one warning naming them
    (``noun``: what a column is called in that format); an ARKit name twice is an error.
    """
    columns: list[int] = []
    targets: list[int] = []
    skipped: list[str] = []
    for col, name in enumerate(names):
        try:
            index = arkit.index_of(name) if isinstance(name, str) else None
        except KeyError:
            index = None
        if index is None:
            skipped.append(str(name))
            continue
        if index in targets:
            raise InputError(f"{path}: {field}: {arkit.NAMES[index]!r} appears twice")
        columns.append(col)
        targets.append(index)
    if skipped:
        shown = ", ".join(skipped[:8]) + (f" and {len(skipped) - 8} more" if len(skipped) > 8 else "")
        warnings.warn(f"{path}: skipping {len(skipped)} non-ARKit {noun}{'s' if len(skipped) > 1 else ''}: {shown}",
                      stacklevel=4)
    return columns, targets


def is_arkit_name(name: object) -> bool:
    """Whether ``name`` is one of the 52 ARKit names (camelCase or PascalCase)."""
    try:
        return isinstance(name, str) and arkit.index_of(name) >= 0
    except KeyError:
        return False
