"""CSV takes: one row per frame, a header naming every column, for spreadsheets and DCC scripts.

Columns (:data:`HEADER`): ``time_s`` (seconds, 9 decimals = exact nanoseconds), ``tracked`` (0/1),
``confidence``, the 52 ARKit weights by camelCase name in canonical order, ``headYaw``,
``headPitch``, ``headRoll`` (degrees), ``headX``, ``headY``, ``headZ`` (canonical-face units ≈ cm),
``leftEyeYaw``, ``leftEyePitch``, ``rightEyeYaw``, ``rightEyePitch`` (degrees).

Numbers are written so that they read back bit for bit: weights with the shortest text that
round-trips in float32, everything else with Python's shortest round-trip ``repr``. ``seq``,
``source``, ``face``, ``capture_ns`` and landmarks are not stored; reading numbers frames 0, 1, …

Reading goes by column *name*: any order, unknown columns ignored, missing columns take their
defaults (weights, head and gaze 0, ``tracked`` 1, ``confidence`` 1 if tracked else 0). Only
``time_s`` is required.
"""

from __future__ import annotations

import contextlib
import csv as _csv
import os
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import IO, Any, Self

import numpy as np

from .. import arkit
from ..atomic import STDIO, atomic_write
from ..errors import InputError, OutputError
from ..frame import FaceFrame, Gaze, HeadPose
from ._files import open_take_text, readable_take

__all__ = ["HEADER", "SUFFIXES", "CsvWriter", "read_csv"]

SUFFIXES = (".csv",)

_HEAD_COLUMNS = ("headYaw", "headPitch", "headRoll", "headX", "headY", "headZ")
_HEAD_FIELDS = ("yaw_deg", "pitch_deg", "roll_deg", "x", "y", "z")
_GAZE_COLUMNS = ("leftEyeYaw", "leftEyePitch", "rightEyeYaw", "rightEyePitch")
_GAZE_FIELDS = ("left_yaw_deg", "left_pitch_deg", "right_yaw_deg", "right_pitch_deg")

HEADER: tuple[str, ...] = ("time_s", "tracked", "confidence", *arkit.NAMES, *_HEAD_COLUMNS, *_GAZE_COLUMNS)


# -- writing ---------------------------------------------------------------------------------------
def format_time_ns(t_ns: int) -> str:
    """Exact seconds with 9 decimals (integer arithmetic, no float rounding)."""
    sign = "-" if t_ns < 0 else ""
    whole, frac = divmod(abs(int(t_ns)), 1_000_000_000)
    return f"{sign}{whole}.{frac:09d}"


def _format_weights(weights: np.ndarray) -> list[str]:
    # str(np.float32) is the shortest decimal that round-trips *as float32*; reading parses it as
    # float64 first, so keep it only where that double rounding is verified exact, else '%.9g'
    # (always exact: 9 digits sit far from any float32 rounding midpoint).
    texts = [str(v) for v in weights]
    back = np.array(texts, dtype=np.float64).astype(np.float32)
    for i in np.flatnonzero(back != weights):
        texts[i] = f"{weights[i]:.9g}"
    return texts


def _row(frame: FaceFrame) -> list[str]:
    head, gaze = frame.head, frame.gaze
    return [
        format_time_ns(frame.t_ns),
        "1" if frame.tracked else "0",
        repr(frame.confidence),
        *_format_weights(frame.weights),
        *(repr(getattr(head, f)) for f in _HEAD_FIELDS),
        *(repr(getattr(gaze, f)) for f in _GAZE_FIELDS),
    ]


class CsvWriter:
    """A sink writing :data:`HEADER` then one row per frame; atomic unless ``path`` is ``"-"``.

    The header is written on entering, so an empty take is a header-only file. If the ``with``
    block ends with an exception the destination is left as it was.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._stack: contextlib.ExitStack | None = None
        self._file: IO[Any] | None = None
        self._writer: Any = None
        self._live = self.path == STDIO

    def __enter__(self) -> Self:
        if self._stack is not None:
            raise OutputError(f"{self.path}: writer is already open")
        with contextlib.ExitStack() as stack:
            self._file = stack.enter_context(atomic_write(self.path, "w", encoding="utf-8", newline=""))
            self._writer = _csv.writer(self._file, lineterminator="\n")
            self._writer.writerow(HEADER)
            self._stack = stack.pop_all()
        return self

    def send(self, frame: FaceFrame) -> None:
        if self._writer is None or self._file is None:
            raise OutputError(f"{self.path}: writer is not open (use it in a with block)")
        self._writer.writerow(_row(frame))
        if self._live:
            self._file.flush()

    def __exit__(self, *exc: object) -> None:
        stack, self._stack, self._file, self._writer = self._stack, None, None, None
        if stack is not None:
            stack.__exit__(*exc)


# -- reading ---------------------------------------------------------------------------------------
_NS = Decimal(1_000_000_000)


def _parse_time(text: str) -> int:
    try:
        seconds = Decimal(text.strip())
    except InvalidOperation:
        raise InputError(f"time_s: expected seconds, got {text!r}") from None
    if not seconds.is_finite():
        raise InputError(f"time_s: expected a finite number of seconds, got {text!r}")
    return int((seconds * _NS).to_integral_value(rounding=ROUND_HALF_EVEN))


def _parse_float(text: str, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{column}: expected a number, got {text!r}") from None


def _parse_tracked(text: str) -> bool:
    key = text.strip().lower()
    if key in ("1", "true"):
        return True
    if key in ("0", "false"):
        return False
    try:
        value = float(key)
    except ValueError:
        value = float("nan")
    if value in (0.0, 1.0):
        return bool(value)
    raise InputError(f"tracked: expected 0 or 1, got {text!r}")


class _Layout:
    """Where each known column sits in a file's header."""

    def __init__(self, header: list[str]) -> None:
        names = [h.strip() for h in header]
        seen: dict[str, int] = {}
        for i, n in enumerate(names):
            if n in seen and n in HEADER:
                raise InputError(f"column {n!r} appears twice in the header")
            seen.setdefault(n, i)
        if "time_s" not in seen:
            shown = ", ".join(repr(n) for n in names[:6]) + (", …" if len(names) > 6 else "")
            raise InputError(f"expected a facewire CSV header with a 'time_s' column, got {shown}")
        self.width = len(names)
        self.time = seen["time_s"]
        self.tracked = seen.get("tracked")
        self.confidence = seen.get("confidence")
        # (file column, weight index) pairs for the weights present
        self.weights = [(seen[n], i) for i, n in enumerate(arkit.NAMES) if n in seen]
        self.head = [(seen[c], f) for c, f in zip(_HEAD_COLUMNS, _HEAD_FIELDS) if c in seen]
        self.gaze = [(seen[c], f) for c, f in zip(_GAZE_COLUMNS, _GAZE_FIELDS) if c in seen]
        self.names = names

    def frame(self, row: list[str], seq: int, source: str) -> FaceFrame:
        if len(row) != self.width:
            raise InputError(f"expected {self.width} fields like the header, got {len(row)}")
        for i, cell in enumerate(row):
            if not cell.strip() and self.names[i] in HEADER:
                raise InputError(f"{self.names[i]}: empty value")
        tracked = True if self.tracked is None else _parse_tracked(row[self.tracked])
        if self.confidence is None:
            confidence = 1.0 if tracked else 0.0
        else:
            confidence = _parse_float(row[self.confidence], "confidence")
        weights = np.zeros(arkit.COUNT, dtype=np.float64)
        for col, i in self.weights:
            weights[i] = _parse_float(row[col], arkit.NAMES[i])
        head = HeadPose(**{f: _parse_float(row[c], self.names[c]) for c, f in self.head})
        gaze = Gaze(**{f: _parse_float(row[c], self.names[c]) for c, f in self.gaze})
        return FaceFrame(
            t_ns=_parse_time(row[self.time]),
            seq=seq,
            source=source,
            tracked=tracked,
            confidence=confidence,
            weights=weights,
            head=head,
            gaze=gaze,
        )


def read_csv(path: str | os.PathLike[str]) -> Iterator[FaceFrame]:
    """Frames from a CSV take (``"-"`` = stdin), matched to :data:`HEADER` by column name.

    The file is checked for readability at once; rows are parsed lazily. Blank lines are skipped.
    A missing header, a row of the wrong width, an empty cell or a bad number raises `InputError`
    naming ``file:line``.
    """
    path = readable_take(path)
    return _iter_csv(path)


def _iter_csv(path: str) -> Iterator[FaceFrame]:
    label = "<stdin>" if path == STDIO else path
    with contextlib.ExitStack() as stack:
        stream = open_take_text(path, stack)
        reader = _csv.reader(stream, strict=True)
        layout: _Layout | None = None
        seq = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except _csv.Error as exc:
                raise InputError(f"{label}:{reader.line_num}: malformed CSV ({exc})") from exc
            except UnicodeDecodeError as exc:
                raise InputError(f"{label}: not UTF-8 text near line {reader.line_num + 1} ({exc.reason})") from exc
            except OSError as exc:
                raise InputError(f"{label}:{reader.line_num + 1}: cannot read ({exc.strerror or exc})") from exc
            if not row or not any(cell.strip() for cell in row):
                continue
            try:
                if layout is None:
                    layout = _Layout(row)
                    continue
                frame = layout.frame(row, seq, "")
            except (ValueError, TypeError, OverflowError) as exc:  # InputError is a ValueError
                raise InputError(f"{label}:{reader.line_num}: {exc}") from exc
            seq += 1
            yield frame
        if layout is None:
            raise InputError(f"{label}: empty file, expected a CSV header with a 'time_s' column")
