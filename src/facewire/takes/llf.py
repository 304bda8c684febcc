"""Live Link Face CSV takes: the file Epic's iPhone app records (``<slate>_iPhone.csv``), byte for byte.

Format, as the app writes it (checked against every real take in ``../shared/data/takes``):

- Header ``Timecode,BlendShapeCount,`` then 61 labels: the 52 ARKit shapes in PascalCase in Unreal's
  order except that ``JawRight`` comes before ``JawLeft`` and ``MouthRight`` before ``MouthLeft``,
  then ``HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,
  RightEyeRoll``. Newer app versions spell the count column ``BlendshapeCount``. Columns are read
  by name, so only the labels matter, not their order.
- One row per frame: timecode, ``61``, then 61 numbers with 10 decimals (``%.10f`` of the app's
  float32 values), LF line ends. A frame with no face is just ``<timecode>,0``.
- Timecode ``HH:MM:SS:FF.fff``: time of day, ``FF.fff`` a frame number on a **60 fps base** with a
  thousandths sub-frame, whatever the take's rate (30 fps takes step by 2.000 frames).
- Head and eye angles are radians. Their signs, checked against the eye blendshapes of the real
  takes: eye yaw > 0 looks to the subject's right, eye pitch > 0 looks down. facewire's `Gaze`
  and `HeadPose` use degrees with yaw > 0 to the subject's left and pitch > 0 up, so yaw and pitch
  change sign and roll does not. (The head columns are zero in every real take, so the head signs
  follow the eyes' and are not verified.)

Mapping to frames: ``t_ns`` is the timecode's time of day in nanoseconds (a take that runs past
midnight keeps counting); the writer computes the timecode back from ``t_ns``, which is exact because
a timecode step (1/60000 s) is far coarser than a nanosecond. Values the frame has no field for
travel in its ``extras``: ``llf.LeftEyeRoll`` / ``llf.RightEyeRoll`` (radians, when not zero),
``unclipped.<name>`` for weights above 1 (the app writes up to 1.076) and ``llf.BlendshapeCount``
(= 61) to remember the newer spelling of the count column. With those, Live Link Face CSV →
JSON Lines → Live Link Face CSV gives back the same bytes.

A NaN or infinite value is an error naming ``file:line`` and the column; a row is never silently
dropped.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from typing import IO, Any, Self

import numpy as np

from .. import arkit
from ..atomic import STDIO, atomic_write
from ..errors import InputError, OutputError
from ..frame import FaceFrame, Gaze, HeadPose
from ._extras import split_unclipped, unclipped_weights
from ._files import open_take_text, readable_take

__all__ = [
    "COUNT_LABELS",
    "HEADER",
    "SUFFIXES",
    "TIMECODE_FPS",
    "VALUE_LABELS",
    "LlfCsvWriter",
    "format_timecode",
    "looks_like_llf",
    "parse_timecode",
    "read_llf_csv",
]

SUFFIXES = (".llf.csv",)

TIMECODE_FPS = 60
"""The frame base of the app's timecode, for 30 and 60 fps takes alike."""

COUNT_LABELS = ("BlendShapeCount", "BlendshapeCount")
"""Both spellings of the count column seen in real takes; the first is written by default."""

BLENDSHAPE_COUNT = 61

_HEAD_LABELS = ("HeadYaw", "HeadPitch", "HeadRoll")
_EYE_LABELS = ("LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll")


def _app_order() -> tuple[str, ...]:
    names = [arkit.pascal(n) for n in arkit.NAMES]
    for a, b in (("JawLeft", "JawRight"), ("MouthLeft", "MouthRight")):
        i, j = names.index(a), names.index(b)
        names[i], names[j] = names[j], names[i]
    return (*names, *_HEAD_LABELS, *_EYE_LABELS)


VALUE_LABELS: tuple[str, ...] = _app_order()
"""The 61 value columns in the app's header order."""

HEADER: tuple[str, ...] = ("Timecode", COUNT_LABELS[0], *VALUE_LABELS)

# Canonical value vector: 52 weights (ARKit order), then head (3), then eyes (6), as on the wire.
_CANONICAL = (*(arkit.pascal(n) for n in arkit.NAMES), *_HEAD_LABELS, *_EYE_LABELS)
_APP_FROM_CANONICAL = np.array([_CANONICAL.index(label) for label in VALUE_LABELS], dtype=np.intp)
_ROW_FORMAT = ",".join(["%.10f"] * BLENDSHAPE_COUNT)
_EXTRA_COUNT = "llf." + COUNT_LABELS[1]
_EXTRA_LEFT_ROLL = "llf.LeftEyeRoll"
_EXTRA_RIGHT_ROLL = "llf.RightEyeRoll"

_NS_PER_DAY = 86_400 * 1_000_000_000
_TIMECODE = re.compile(r"\s*(\d{1,2}):(\d{2}):(\d{2}):(\d{2,3})(?:\.(\d+))?\s*")


# -- timecode ----------------------------------------------------------------------------------
def parse_timecode(text: str, fps: int = TIMECODE_FPS) -> int:
    """``HH:MM:SS:FF.fff`` → nanoseconds since midnight (``FF.fff`` frames at ``fps``, exact rounding)."""
    m = _TIMECODE.fullmatch(text)
    if m is None:
        raise InputError(f"Timecode: expected HH:MM:SS:FF.fff, got {text!r}")
    hours, minutes, seconds, frames = (int(g) for g in m.group(1, 2, 3, 4))
    if minutes >= 60 or seconds >= 60 or frames >= fps:
        raise InputError(f"Timecode: expected minutes and seconds below 60 and frames below {fps}, got {text!r}")
    digits = m.group(5) or ""
    scale = 10 ** len(digits)
    units = frames * scale + (int(digits) if digits else 0)  # frames × scale
    den = fps * scale
    sub_ns = (2 * units * 1_000_000_000 + den) // (2 * den)  # round half up, integers only
    return ((hours * 60 + minutes) * 60 + seconds) * 1_000_000_000 + sub_ns


def format_timecode(t_ns: int, fps: int = TIMECODE_FPS) -> str:
    """Nanoseconds → ``HH:MM:SS:FF.fff`` (time of day, wrapping at 24 h); inverse of `parse_timecode`."""
    if t_ns < 0:
        raise InputError(f"t_ns: a Live Link Face timecode needs a time of day ≥ 0, got {t_ns}")
    units = (2 * (t_ns % _NS_PER_DAY) * fps * 1000 + 1_000_000_000) // 2_000_000_000  # thousandths of a frame
    seconds, sub = divmod(units, fps * 1000)
    frames, thousandths = divmod(sub, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours % 24:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}.{thousandths:03d}"


# -- detection -----------------------------------------------------------------------------------
def looks_like_llf(path: str | os.PathLike[str]) -> bool:
    """True when the file's first line starts ``Timecode,`` (how a ``.csv`` is recognised as LLF)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().lower().startswith(b"timecode,")


# -- writing ---------------------------------------------------------------------------------------
def _values(frame: FaceFrame) -> list[float]:
    """The 61 values of a tracked frame in the app's column order, as the app's float32s."""
    head, gaze, extras = frame.head, frame.gaze, frame.extras
    canonical = np.empty(BLENDSHAPE_COUNT, dtype=np.float64)
    canonical[:52] = unclipped_weights(frame.weights, extras)
    canonical[52:] = (
        math.radians(-head.yaw_deg), math.radians(-head.pitch_deg), math.radians(head.roll_deg),
        math.radians(-gaze.left_yaw_deg), math.radians(-gaze.left_pitch_deg), extras.get(_EXTRA_LEFT_ROLL, 0.0),
        math.radians(-gaze.right_yaw_deg), math.radians(-gaze.right_pitch_deg), extras.get(_EXTRA_RIGHT_ROLL, 0.0),
    )
    return canonical.astype(np.float32)[_APP_FROM_CANONICAL].tolist()


class LlfCsvWriter:
    """A sink writing a Live Link Face CSV take; the file appears atomically when the sink closes.

    ``count_label`` picks the count column's spelling (``"BlendShapeCount"`` or
    ``"BlendshapeCount"``); by default the first frame's ``extras`` decide, else the first. The
    header is written with the first frame (or on closing, for an empty take). Frames need
    ``t_ns ≥ 0``: it becomes the time-of-day timecode. Untracked frames are written as the app
    writes them, ``<timecode>,0``. If the ``with`` block ends with an exception the destination is
    left as it was.
    """

    def __init__(self, path: str | os.PathLike[str], *, count_label: str | None = None) -> None:
        if count_label is not None and count_label not in COUNT_LABELS:
            raise InputError(f"count_label: expected one of {', '.join(COUNT_LABELS)}, got {count_label!r}")
        self.path = os.fspath(path)
        self.count_label = count_label
        self._stack: contextlib.ExitStack | None = None
        self._file: IO[Any] | None = None
        self._header_done = False
        self._live = self.path == STDIO

    def __enter__(self) -> Self:
        if self._stack is not None:
            raise OutputError(f"{self.path}: writer is already open")
        stack = contextlib.ExitStack()
        self._file = stack.enter_context(atomic_write(self.path, "w", encoding="utf-8", newline="\n"))
        self._stack = stack
        self._header_done = False
        return self

    def _write_header(self, label: str) -> None:
        assert self._file is not None
        self._file.write(",".join(("Timecode", label, *VALUE_LABELS)) + "\n")
        self._header_done = True

    def send(self, frame: FaceFrame) -> None:
        if self._file is None:
            raise OutputError(f"{self.path}: writer is not open (use it in a with block)")
        if not self._header_done:
            label = self.count_label or (COUNT_LABELS[1] if _EXTRA_COUNT in frame.extras else COUNT_LABELS[0])
            self._write_header(label)
        timecode = format_timecode(frame.t_ns)
        if frame.tracked:
            self._file.write(f"{timecode},{BLENDSHAPE_COUNT}," + _ROW_FORMAT % tuple(_values(frame)) + "\n")
        else:
            self._file.write(f"{timecode},0\n")
        if self._live:
            self._file.flush()

    def __exit__(self, *exc: object) -> None:
        stack, file, self._stack, self._file = self._stack, self._file, None, None
        if stack is None:
            return
        if exc[0] is None and not self._header_done and file is not None:
            self._file = file
            try:
                self._write_header(self.count_label or COUNT_LABELS[0])
            finally:
                self._file = None
        stack.__exit__(*exc)


# -- reading ---------------------------------------------------------------------------------------
class _Layout:
    """Where each of the 61 values sits in a file's header."""

    def __init__(self, header: list[str]) -> None:
        names = [h.strip() for h in header]
        if len(names) < 2 or names[0].lower() != "timecode" or names[1].lower() not in {c.lower() for c in COUNT_LABELS}:
            shown = ",".join(names[:3]) + (",…" if len(names) > 3 else "")
            raise InputError(f"expected a Live Link Face header starting 'Timecode,BlendShapeCount,', got {shown!r}")
        self.count_label = COUNT_LABELS[1] if names[1] == COUNT_LABELS[1] else COUNT_LABELS[0]
        where: dict[str, int] = {}
        for i, n in enumerate(names[2:], start=2):
            key = n.lower()
            if key in where:
                raise InputError(f"column {n!r} appears twice in the header")
            where[key] = i
        missing = [label for label in _CANONICAL if label.lower() not in where]
        if missing:
            raise InputError(f"missing Live Link Face column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        self.columns = [where[label.lower()] for label in _CANONICAL]  # canonical index → file column
        self.width = len(names)
        self.extras_base: dict[str, float] = {_EXTRA_COUNT: float(BLENDSHAPE_COUNT)} if self.count_label == COUNT_LABELS[1] else {}

    def frame(self, cells: list[str], seq: int, t_ns: int) -> FaceFrame:
        count = cells[1].strip()
        if count == "0":
            return FaceFrame(t_ns=t_ns, seq=seq, tracked=False, confidence=0.0, extras=self.extras_base)
        if len(cells) != self.width:
            raise InputError(f"expected {self.width} fields like the header, got {len(cells)}")
        if not count.isdigit():
            raise InputError(f"{self.count_label}: expected a whole number, got {count!r}")
        try:
            values = np.array([float(cells[c]) for c in self.columns], dtype=np.float64)
        except ValueError:
            for k, c in enumerate(self.columns):
                try:
                    float(cells[c])
                except ValueError:
                    raise InputError(f"{_CANONICAL[k]}: expected a number, got {cells[c]!r}") from None
            raise
        if not np.isfinite(values).all():
            k = int(np.flatnonzero(~np.isfinite(values))[0])
            raise InputError(f"{_CANONICAL[k]}: expected a finite number, got {cells[self.columns[k]].strip()!r}")
        v = values.astype(np.float32).astype(np.float64)  # the app's values are float32
        extras = dict(self.extras_base)
        weights = split_unclipped(v[:52], extras)
        hy, hp, hr, ly, lp, lr, ry, rp, rr = v[52:].tolist()
        if lr != 0.0 or math.copysign(1.0, lr) < 0:
            extras[_EXTRA_LEFT_ROLL] = lr
        if rr != 0.0 or math.copysign(1.0, rr) < 0:
            extras[_EXTRA_RIGHT_ROLL] = rr
        return FaceFrame(
            t_ns=t_ns,
            seq=seq,
            weights=weights,
            head=HeadPose(yaw_deg=-math.degrees(hy), pitch_deg=-math.degrees(hp), roll_deg=math.degrees(hr)),
            gaze=Gaze(left_yaw_deg=-math.degrees(ly), left_pitch_deg=-math.degrees(lp),
                      right_yaw_deg=-math.degrees(ry), right_pitch_deg=-math.degrees(rp)),
            extras=extras,
        )


def read_llf_csv(path: str | os.PathLike[str]) -> Iterator[FaceFrame]:
    """Frames from a Live Link Face CSV take (``"-"`` = stdin), columns matched by name.

    The file is checked for readability at once; rows are parsed lazily, one at a time, so a take
    of any size streams in constant memory. Frame times come from the timecodes (see the module
    doc). A bad header (naming the missing columns), a row of the wrong width, a bad timecode or a
    bad, NaN or infinite number raises `InputError` naming ``file:line``.
    """
    path = readable_take(path)
    return _iter_llf(path)


def _iter_llf(path: str) -> Iterator[FaceFrame]:
    label = "<stdin>" if path == STDIO else path
    with contextlib.ExitStack() as stack:
        stream = open_take_text(path, stack)
        layout: _Layout | None = None
        seq = 0
        day_ns = 0
        previous_ns = None
        lineno = 0
        while True:
            try:
                line = stream.readline()
            except UnicodeDecodeError as exc:
                raise InputError(f"{label}: not UTF-8 text near line {lineno + 1} ({exc.reason})") from exc
            except OSError as exc:
                raise InputError(f"{label}:{lineno + 1}: cannot read ({exc.strerror or exc})") from exc
            if not line:
                break
            lineno += 1
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            cells = text.split(",")
            try:
                if layout is None:
                    layout = _Layout(cells)
                    continue
                if len(cells) < 2:
                    raise InputError(f"expected a timecode and a count, got {text[:40]!r}")
                t_ns = parse_timecode(cells[0])
                if previous_ns is not None and t_ns + day_ns < previous_ns - _NS_PER_DAY // 2:
                    day_ns += _NS_PER_DAY  # the take ran past midnight
                t_ns += day_ns
                previous_ns = t_ns
                frame = layout.frame(cells, seq, t_ns)
            except (ValueError, TypeError, OverflowError) as exc:  # InputError is a ValueError
                raise InputError(f"{label}:{lineno}: {exc}") from exc
            seq += 1
            yield frame
        if layout is None:
            raise InputError(f"{label}: empty file, expected a Live Link Face header starting 'Timecode,'")
