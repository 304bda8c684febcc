"""Takes: recorded `FaceFrame` streams on disk, one module per format.

Each format module provides a writer sink class (``Writer(path)``), a reader function
(``read(path) -> Iterator[FaceFrame]``) and its ``SUFFIXES``; :data:`FORMATS` maps every suffix to
that pair and :data:`FORMAT_NAMES` every format's name. Adding a format is one new module plus one
line in ``_MODULES``.

=================  ==========================  =================================================
name               suffixes                    what
=================  ==========================  =================================================
``jsonl``          ``.jsonl``                  facewire's lossless native format
``csv``            ``.csv``                    facewire's spreadsheet-friendly CSV
``llf``            ``.llf.csv``                Live Link Face CSV (a ``.csv`` whose first line
                                               starts ``Timecode,`` also reads as this)
``a2f``            ``.a2f.json``               NVIDIA Audio2Face blendshape-weight export
``rhubarb-json``   ``.rhubarb.json``           Rhubarb Lip Sync mouth cues, JSON
``rhubarb-tsv``    ``.rhubarb.tsv``, ``.tsv``  Rhubarb Lip Sync mouth cues, TSV
``visemes``        ``.visemes.json``           OVR 15-viseme timeline
``gltf``           ``.glb``                    glTF 2.0 binary: head mesh with the 52 ARKit
                                               morph targets, weights + head rotation animated
=================  ==========================  =================================================

The longest matching suffix wins (``take.llf.csv`` is ``llf``, ``take.csv`` is ``csv``). For
reading, a plain ``.json`` is recognised by its keys. ``"-"`` means standard output for
:func:`open_writer` and standard input for :func:`read_take`, both as JSON Lines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ..atomic import STDIO
from ..errors import InputError
from ..frame import FaceFrame
from ..pipeline import Sink
from . import a2f as _a2f_take
from . import csv as _csv_take
from . import gltf as _gltf_take
from . import jsonl as _jsonl_take
from . import llf as _llf_take
from . import rhubarb as _rhubarb_take
from . import visemes as _visemes_take
from .a2f import A2fWriter, read_a2f
from .csv import CsvWriter, read_csv
from .gltf import GltfWriter, read_gltf
from .jsonl import JsonlWriter, read_jsonl
from .llf import LlfCsvWriter, read_llf_csv
from .rhubarb import (
    RhubarbJsonWriter,
    RhubarbTsvWriter,
    read_rhubarb_json,
    read_rhubarb_tsv,
)
from .visemes import VisemesWriter, read_visemes

__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "A2fWriter",
    "CsvWriter",
    "Format",
    "GltfWriter",
    "JsonlWriter",
    "LlfCsvWriter",
    "RhubarbJsonWriter",
    "RhubarbTsvWriter",
    "VisemesWriter",
    "format_for",
    "format_named",
    "open_writer",
    "read_a2f",
    "read_csv",
    "read_gltf",
    "read_jsonl",
    "read_llf_csv",
    "read_rhubarb_json",
    "read_rhubarb_tsv",
    "read_take",
    "read_visemes",
]


class Format(NamedTuple):
    """One take format: its name, the sink class that writes it and the function that reads it.

    ``reader_fps``: the reader samples at a chosen rate (``fps=`` keyword), because the file holds
    events, not frames. ``writer_fps``: the writer stores one frame rate (``fps=`` keyword, else
    measured). ``frame_lines``: one frame per line after a header (what a progress bar can count).
    """

    name: str
    writer: Callable[..., Sink]
    reader: Callable[..., Iterator[FaceFrame]]
    suffixes: tuple[str, ...] = ()
    reader_fps: bool = False
    writer_fps: bool = False
    frame_lines: bool = False


_MODULES = (
    Format("jsonl", JsonlWriter, read_jsonl, _jsonl_take.SUFFIXES, frame_lines=True),
    Format("csv", CsvWriter, read_csv, _csv_take.SUFFIXES, frame_lines=True),
    Format("llf", LlfCsvWriter, read_llf_csv, _llf_take.SUFFIXES, frame_lines=True),
    Format("a2f", A2fWriter, read_a2f, _a2f_take.SUFFIXES, writer_fps=True),
    Format("rhubarb-json", RhubarbJsonWriter, read_rhubarb_json, _rhubarb_take.JSON_SUFFIXES, reader_fps=True),
    Format("rhubarb-tsv", RhubarbTsvWriter, read_rhubarb_tsv, _rhubarb_take.TSV_SUFFIXES + (".tsv",), reader_fps=True),
    Format("visemes", VisemesWriter, read_visemes, _visemes_take.SUFFIXES),
    Format("gltf", GltfWriter, read_gltf, _gltf_take.SUFFIXES),
)

FORMATS: Mapping[str, Format] = MappingProxyType(
    {suffix: fmt for fmt in _MODULES for suffix in fmt.suffixes}
)
"""Lower-case file suffix → format."""

FORMAT_NAMES: Mapping[str, Format] = MappingProxyType({fmt.name: fmt for fmt in _MODULES})
"""Format name (as ``--from``/``--to`` take it) → format."""

_STDIO_FORMAT = FORMATS[".jsonl"]
_BY_LENGTH = sorted(FORMATS, key=len, reverse=True)
# A plain .json is read by what its first few KiB hold (each format's own top-level key).
_JSON_KEYS = ((b'"exportFps"', "a2f"), (b'"mouthCues"', "rhubarb-json"), (b'"facewire-visemes"', "visemes"))


def format_named(name: str | Format) -> Format:
    """The format called ``name`` (a `Format` passes through); `InputError` listing the names."""
    if isinstance(name, Format):
        return name
    try:
        return FORMAT_NAMES[str(name).lower()]
    except KeyError:
        raise InputError(f"unknown take format {name!r}; expected one of {', '.join(FORMAT_NAMES)}") from None


def _sniff_json(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    for key, name in _JSON_KEYS:
        if key in head:
            return name
    return None


def format_for(path: str | os.PathLike[str], *, reading: bool = False) -> Format:
    """The format a path's suffix (case-insensitive, longest match) selects.

    With ``reading=True`` the file's start may decide too: a ``.csv`` starting ``Timecode,`` is
    Live Link Face, a ``.json`` is told apart by its keys. `InputError` lists the choices.
    """
    path = os.fspath(path)
    if path == STDIO:
        return _STDIO_FORMAT
    name = os.path.basename(path).lower()
    suffix = next((s for s in _BY_LENGTH if name.endswith(s)), None)
    if reading and suffix == ".csv" and _llf_take.looks_like_llf(path):
        return FORMAT_NAMES["llf"]
    if reading and suffix is None and name.endswith(".json"):
        sniffed = _sniff_json(path)
        if sniffed is not None:
            return FORMAT_NAMES[sniffed]
    if suffix is None:
        supported = ", ".join(sorted(FORMATS))
        ext = os.path.splitext(path)[1].lower()
        got = repr(ext) if ext else "no extension"
        hint = " (name the format with a suffix such as .a2f.json)" if ext == ".json" else ""
        raise InputError(f"{path}: unsupported take format ({got}); expected one of {supported}, or '-'{hint}")
    return FORMATS[suffix]


def _options(accepts: bool, fps: float | None) -> dict[str, Any]:
    return {"fps": fps} if accepts and fps is not None else {}


def open_writer(path: str | os.PathLike[str], fmt: str | Format | None = None, *, fps: float | None = None) -> Sink:
    """A sink (use it in a ``with`` block) writing a take in ``fmt``, else the format ``path`` names.

    ``fps`` goes to writers that store one frame rate (Audio2Face); others ignore it.
    """
    path = os.fspath(path)
    chosen = format_named(fmt) if fmt is not None else format_for(path)
    return chosen.writer(path, **_options(chosen.writer_fps, fps))


def read_take(path: str | os.PathLike[str], fmt: str | Format | None = None, *, fps: float | None = None) -> Iterator[FaceFrame]:
    """The frames of a take in ``fmt``, else the format ``path`` names (or its first bytes show).

    ``fps`` goes to readers that sample events into frames (Rhubarb); others keep their own times.
    """
    path = os.fspath(path)
    chosen = format_named(fmt) if fmt is not None else format_for(path, reading=True)
    return chosen.reader(path, **_options(chosen.reader_fps, fps))
