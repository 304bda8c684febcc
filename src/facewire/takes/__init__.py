"""Takes: recorded `FaceFrame` streams on disk, one module per format.

Each format module provides a writer sink class (``Writer(path)``), a reader function
(``read(path) -> Iterator[FaceFrame]``) and its ``SUFFIXES``; :data:`FORMATS` maps every suffix to
that pair. Adding a format is one new module plus one line in ``_MODULES``.

``"-"`` means standard output for :func:`open_writer` and standard input for :func:`read_take`,
both as JSON Lines, the lossless native format.
"""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import Callable, Iterator, Mapping, NamedTuple

from ..atomic import STDIO
from ..errors import InputError
from ..frame import FaceFrame
from ..pipeline import Sink
from . import csv as _csv_take
from . import jsonl as _jsonl_take
from .csv import CsvWriter, read_csv
from .jsonl import JsonlWriter, read_jsonl

__all__ = [
    "Format",
    "FORMATS",
    "open_writer",
    "read_take",
    "format_for",
    "JsonlWriter",
    "read_jsonl",
    "CsvWriter",
    "read_csv",
]


class Format(NamedTuple):
    """One take format: its name, the sink class that writes it and the function that reads it."""

    name: str
    writer: Callable[[str], Sink]
    reader: Callable[[str], Iterator[FaceFrame]]


_MODULES = (
    (_jsonl_take.SUFFIXES, Format("jsonl", JsonlWriter, read_jsonl)),
    (_csv_take.SUFFIXES, Format("csv", CsvWriter, read_csv)),
)

FORMATS: Mapping[str, Format] = MappingProxyType(
    {suffix: fmt for suffixes, fmt in _MODULES for suffix in suffixes}
)
"""Lower-case file suffix → format."""

_STDIO_FORMAT = FORMATS[".jsonl"]


def format_for(path: str | os.PathLike[str]) -> Format:
    """The format a path's suffix (case-insensitive) selects; `InputError` listing the choices."""
    path = os.fspath(path)
    if path == STDIO:
        return _STDIO_FORMAT
    suffix = os.path.splitext(path)[1].lower()
    try:
        return FORMATS[suffix]
    except KeyError:
        supported = ", ".join(sorted(FORMATS))
        got = repr(suffix) if suffix else "no extension"
        raise InputError(f"{path}: unsupported take format ({got}); expected one of {supported}, or '-'") from None


def open_writer(path: str | os.PathLike[str]) -> Sink:
    """A sink (use it in a ``with`` block) writing a take in the format ``path``'s suffix names."""
    path = os.fspath(path)
    return format_for(path).writer(path)


def read_take(path: str | os.PathLike[str]) -> Iterator[FaceFrame]:
    """The frames of a take, in the format ``path``'s suffix names."""
    path = os.fspath(path)
    return format_for(path).reader(path)
