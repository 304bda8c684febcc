"""JSON Lines takes: one `FaceFrame.to_json()` object per line, lossless for every field.

This is facewire's native take format. ``"-"`` writes to standard output (flushed per line, so it
can be piped live) and reads from standard input.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import IO, Any, Self

from ..atomic import STDIO, atomic_write
from ..errors import InputError, OutputError
from ..frame import FaceFrame
from ._files import readable_take

__all__ = ["SUFFIXES", "JsonlWriter", "read_jsonl"]

SUFFIXES = (".jsonl",)


class JsonlWriter:
    """A sink writing one JSON object per frame; the file appears atomically when the sink closes.

    If the ``with`` block ends with an exception the destination is left as it was.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._stack: contextlib.ExitStack | None = None
        self._file: IO[Any] | None = None
        self._live = self.path == STDIO

    def __enter__(self) -> Self:
        if self._stack is not None:
            raise OutputError(f"{self.path}: writer is already open")
        stack = contextlib.ExitStack()
        self._file = stack.enter_context(atomic_write(self.path, "w", encoding="utf-8", newline="\n"))
        self._stack = stack
        return self

    def send(self, frame: FaceFrame) -> None:
        if self._file is None:
            raise OutputError(f"{self.path}: writer is not open (use it in a with block)")
        self._file.write(frame.to_json() + "\n")
        if self._live:
            self._file.flush()

    def __exit__(self, *exc: object) -> None:
        stack, self._stack, self._file = self._stack, None, None
        if stack is not None:
            stack.__exit__(*exc)


def _label(path: str) -> str:
    return "<stdin>" if path == STDIO else path


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[FaceFrame]:
    """Frames from a JSON Lines take (``"-"`` = stdin); blank lines are skipped.

    The file is checked for readability at once; frames are then parsed lazily. A malformed line
    raises `InputError` naming ``file:line``.
    """
    path = readable_take(path)
    return _iter_jsonl(path)


def _iter_jsonl(path: str) -> Iterator[FaceFrame]:
    label = _label(path)
    with contextlib.ExitStack() as stack:
        if path == STDIO:
            stream: IO[bytes] = sys.stdin.buffer
        else:
            try:
                stream = stack.enter_context(open(path, "rb"))
            except OSError as exc:
                raise InputError(f"cannot read take {path}: {exc.strerror or exc}") from exc
        lineno = 0
        while True:
            try:
                line = stream.readline()
            except OSError as exc:
                raise InputError(f"{label}:{lineno + 1}: cannot read ({exc.strerror or exc})") from exc
            if not line:
                return
            lineno += 1
            if not line.strip():
                continue
            try:
                frame = FaceFrame.from_json(line)
            except (ValueError, TypeError, OverflowError) as exc:  # InputError is a ValueError
                raise InputError(f"{label}:{lineno}: {exc}") from exc
            yield frame
