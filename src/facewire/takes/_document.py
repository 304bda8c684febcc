"""What the one-document take writers share (A2F JSON, Rhubarb JSON, viseme JSON).

Those files put counts and durations *before* the per-frame data, which are known only at the end.
A writer streams its rows into a spool (memory up to a few MiB, then a temporary file) and, when
the sink closes, writes the head, the spooled rows and the tail in one atomic write — so memory
stays bounded however long the take, and a failed run leaves the destination as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from typing import IO, Any, Self

from ..atomic import STDIO, atomic_write
from ..errors import InputError, OutputError
from ..frame import FaceFrame

__all__ = ["DocumentWriter", "load_json"]

_SPOOL_BYTES = 4 << 20


class DocumentWriter:
    """Base sink: subclasses implement ``_add(frame, spool)`` and ``_finish(out, spool)``.

    ``_add`` may return False to leave a frame out (it is then not counted). ``binary = True``
    makes the spool and the output bytes instead of UTF-8 text with LF newlines.
    """

    binary = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._spool: IO[Any] | None = None
        self.frames = 0

    def __enter__(self) -> Self:
        if self._spool is not None:
            raise OutputError(f"{self.path}: writer is already open")
        if self.binary:
            self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+b")
        else:
            self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+", encoding="utf-8",
                                                        newline="\n")
        self.frames = 0
        self._opened()
        return self

    def _opened(self) -> None:
        """Hook: reset per-document state when the sink opens."""

    def send(self, frame: FaceFrame) -> None:
        if self._spool is None:
            raise OutputError(f"{self.path}: writer is not open (use it in a with block)")
        try:
            kept = self._add(frame, self._spool)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: spooling failed ({exc.strerror or exc})") from exc
        if kept is not False:
            self.frames += 1

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        spool, self._spool = self._spool, None
        if spool is None:
            return
        with contextlib.closing(spool):
            if exc_type is not None:
                return
            text = {} if self.binary else {"encoding": "utf-8", "newline": "\n"}
            with atomic_write(self.path, "wb" if self.binary else "w", **text) as out:
                self._finish(out, spool)

    @staticmethod
    def copy_spool(spool: IO[str], out: IO[str]) -> None:
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            out.write(chunk)

    def _add(self, frame: FaceFrame, spool: IO[str]) -> bool | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish(self, out: IO[str], spool: IO[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def load_json(path: str, what: str, **kwargs: Any) -> Any:
    """The parsed JSON of a take file (``"-"`` = stdin), or `InputError` naming the file, line and column."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        if path == STDIO:
            return json.load(sys.stdin.buffer, parse_constant=no_constant, **kwargs)
        with open(path, "rb") as f:
            return json.load(f, parse_constant=no_constant, **kwargs)
    except OSError as exc:
        raise InputError(f"cannot read take {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid {what} JSON ({exc.msg}, column {exc.colno})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid {what} JSON (not UTF-8 text: {exc.reason})") from exc
    except ValueError as exc:
        raise InputError(f"{path}: not valid {what} JSON ({exc})") from exc
