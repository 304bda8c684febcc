"""Rhubarb Lip Sync mouth cues, JSON (``.rhubarb.json``) and TSV (``.rhubarb.tsv``), read and written.

The files are Rhubarb's own (``rhubarb -f json|tsv``; protocols.md §6): times in seconds with two
decimals, shapes ``A``–``H`` and ``X``.

- TSV: ``start<TAB>shape`` per cue, the first at ``0.00``; the last line marks the end of the
  recording (Rhubarb writes ``X`` there).
- JSON: ``{"metadata": {"soundFile": …, "duration": …}, "mouthCues": [{"start", "end", "value"}…]}``.

Shapes and blendshapes meet in one table, `facewire.mouth`: writing classifies each frame's
weights into a shape (untracked frames are ``X``), merges runs of the same shape into one cue and
times the cues from the first frame; the last cue ends one frame period after the last frame.
Reading samples the cues at ``fps`` frames per second (default 100, Rhubarb's own centisecond
resolution, at which cues → frames → cues gives back the same cues) and gives every frame its
shape's representative weights; gaps between cues are ``X``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import IO, Any, NamedTuple, Self

from ..atomic import STDIO, atomic_write
from ..errors import InputError, OutputError
from ..frame import FaceFrame
from ..mouth import RHUBARB_SHAPES, arkit_to_rhubarb, rhubarb_to_arkit
from ._document import DocumentWriter, load_json
from ._files import readable_take
from ._timing import FpsMeter, check_fps, frame_time_ns

__all__ = [
    "DEFAULT_FPS",
    "JSON_SUFFIXES",
    "TSV_SUFFIXES",
    "Cue",
    "RhubarbJsonWriter",
    "RhubarbTsvWriter",
    "read_rhubarb_json",
    "read_rhubarb_tsv",
]

JSON_SUFFIXES = (".rhubarb.json",)
TSV_SUFFIXES = (".rhubarb.tsv",)

DEFAULT_FPS = 100.0
"""Frames per second when reading cues: Rhubarb's resolution, so nothing is lost."""

_CS_NS = 10_000_000  # one centisecond


class Cue(NamedTuple):
    """One mouth cue: ``[start_ns, end_ns)`` relative to the start of the recording, and its shape."""

    start_ns: int
    end_ns: int
    shape: str


def _seconds(cs: int) -> str:
    return f"{cs // 100}.{cs % 100:02d}"


def _to_cs(t_ns: int) -> int:
    return (t_ns + _CS_NS // 2) // _CS_NS


# -- writing ---------------------------------------------------------------------------------------
class _CueBuilder:
    """Turns frames into cues in centiseconds, merging runs and zero-length cues as they come."""

    def __init__(self) -> None:
        self.t0: int | None = None
        self.meter = FpsMeter()
        self.pending: list[Any] | None = None  # [start_cs, shape] of the cue still open
        self.last: list[Any] | None = None  # the cue before it, not yet final either

    def add(self, frame: FaceFrame) -> list[Any] | None:
        """Feed a frame; returns a cue ``[start_cs, shape]`` that can no longer change, or None."""
        if self.t0 is None:
            self.t0 = frame.t_ns
        if self.meter.count and frame.t_ns < self.meter.last_ns:
            raise OutputError(f"Rhubarb cues: frame times must not go back (t_ns {frame.t_ns} after {self.meter.last_ns})")
        self.meter.add(frame.t_ns)
        shape = arkit_to_rhubarb(frame.weights) if frame.tracked else "X"
        start = _to_cs(frame.t_ns - self.t0)
        if self.pending is None:
            self.pending = [start, shape]
            return None
        if shape == self.pending[1]:
            return None
        if start == self.pending[0]:  # the open cue would last no time: it takes the new shape
            self.pending[1] = shape
            if self.last is not None and self.last[1] == shape:
                self.pending = self.last
                self.last = None
            return None
        done, self.last, self.pending = self.last, self.pending, [start, shape]
        return done

    def finish(self, default_period_ns: int) -> tuple[list[list[Any]], int]:
        """The cues still open and the end of the recording in centiseconds."""
        cues = [c for c in (self.last, self.pending) if c is not None]
        if self.t0 is None:
            return cues, 0
        end = _to_cs(self.meter.last_ns - self.t0 + (self.meter.period_ns() or default_period_ns))
        return cues, max(end, cues[-1][0] + 1)


class RhubarbTsvWriter:
    """A sink writing Rhubarb TSV cues; streams, and the file appears atomically when it closes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._cm: Any = None
        self._file: IO[str] | None = None
        self._cues = _CueBuilder()

    def __enter__(self) -> Self:
        if self._cm is not None:
            raise OutputError(f"{self.path}: writer is already open")
        self._cm = atomic_write(self.path, "w", encoding="utf-8", newline="\n")
        self._file = self._cm.__enter__()
        self._cues = _CueBuilder()
        return self

    def send(self, frame: FaceFrame) -> None:
        if self._file is None:
            raise OutputError(f"{self.path}: writer is not open (use it in a with block)")
        done = self._cues.add(frame)
        if done is not None:
            self._file.write(f"{_seconds(done[0])}\t{done[1]}\n")

    def __exit__(self, *exc: object) -> None:
        cm, file, self._cm, self._file = self._cm, self._file, None, None
        if cm is None:
            return
        try:
            if exc[0] is None and file is not None:
                cues, end = self._cues.finish(round(1e9 / DEFAULT_FPS))
                if not cues:
                    cues = [[0, "X"]]  # Rhubarb writes a dummy X cue for an empty recording
                for start, shape in cues:
                    file.write(f"{_seconds(start)}\t{shape}\n")
                file.write(f"{_seconds(end)}\tX\n")
        except BaseException as error:
            cm.__exit__(type(error), error, error.__traceback__)
            raise
        cm.__exit__(*exc)


class RhubarbJsonWriter(DocumentWriter):
    """A sink writing Rhubarb JSON cues (laid out as Rhubarb does); ``sound_file`` goes in the metadata."""

    def __init__(self, path: str | os.PathLike[str], *, sound_file: str = "") -> None:
        super().__init__(path)
        self.sound_file = str(sound_file)
        self._cues = _CueBuilder()
        self._spooled: list[Any] | None = None  # the last cue spooled has no end yet

    def __enter__(self) -> Self:
        super().__enter__()
        self._cues = _CueBuilder()
        self._spooled: list[Any] | None = None
        return self

    def _emit(self, cue: list[Any], spool: IO[str]) -> None:
        # A cue's end is the next cue's start, so each cue is written when the next is known.
        if self._spooled is not None:
            self._write_cue(self._spooled, cue[0], spool)
        self._spooled = cue

    def _write_cue(self, cue: list[Any], end: int, spool: IO[str]) -> None:
        spool.write(f'    {{ "start": {_seconds(cue[0])}, "end": {_seconds(end)}, "value": "{cue[1]}" }},\n')

    def _add(self, frame: FaceFrame, spool: IO[str]) -> None:
        done = self._cues.add(frame)
        if done is not None:
            self._emit(done, spool)

    def _finish(self, out: IO[str], spool: IO[str]) -> None:
        cues, end = self._cues.finish(round(1e9 / DEFAULT_FPS))
        if not cues and self._spooled is None:
            cues = [[0, "X"]]
            end = max(end, 1)
        for cue in cues:
            self._emit(cue, spool)
        assert self._spooled is not None
        last = self._spooled
        out.write("{\n")
        out.write('  "metadata": {\n')
        out.write(f'    "soundFile": {json.dumps(self.sound_file)},\n')
        out.write(f'    "duration": {_seconds(end)}\n')
        out.write("  },\n")
        out.write('  "mouthCues": [\n')
        self.copy_spool(spool, out)
        out.write(f'    {{ "start": {_seconds(last[0])}, "end": {_seconds(end)}, "value": "{last[1]}" }}\n')
        out.write("  ]\n}\n")


# -- reading ---------------------------------------------------------------------------------------
def _time_ns(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise InputError(f"{what}: expected a time in seconds ≥ 0, got {value!r}")
    try:
        seconds = Decimal(str(value).strip())
    except InvalidOperation:
        raise InputError(f"{what}: expected seconds, got {value!r}") from None
    if not seconds.is_finite() or seconds < 0:
        raise InputError(f"{what}: expected a time in seconds ≥ 0, got {value!r}")
    return int((seconds * 1_000_000_000).to_integral_value())


def _shape(value: Any, what: str) -> str:
    if not isinstance(value, str) or value.strip() not in RHUBARB_SHAPES:
        raise InputError(f"{what}: expected a mouth shape {'/'.join(RHUBARB_SHAPES)}, got {value!r}")
    return value.strip()


def _frames(cues: list[Cue], end_ns: int, fps: float) -> Iterator[FaceFrame]:
    """Frames every 1/fps from 0 up to (not including) the end; each takes the shape covering it."""
    k = 0
    c = 0
    while (t := frame_time_ns(k, fps)) < end_ns:
        while c < len(cues) and cues[c].end_ns <= t:
            c += 1
        shape = cues[c].shape if c < len(cues) and cues[c].start_ns <= t else "X"
        yield FaceFrame(t_ns=t, seq=k, weights=rhubarb_to_arkit(shape))
        k += 1


def _check_order(cues: list[Cue], label: str) -> None:
    for i in range(1, len(cues)):
        if cues[i].start_ns < cues[i - 1].start_ns:
            raise InputError(f"{label}: cue {i} starts before the cue before it")


def read_rhubarb_json(path: str | os.PathLike[str], *, fps: float = DEFAULT_FPS) -> Iterator[FaceFrame]:
    """Frames sampled at ``fps`` from Rhubarb JSON cues (see the module doc)."""
    path = readable_take(path)
    fps = check_fps(fps, "fps")
    return _iter_json(path, fps)


def _iter_json(path: str, fps: float) -> Iterator[FaceFrame]:
    doc = load_json(path, "Rhubarb", parse_float=Decimal)
    if not isinstance(doc, dict) or not isinstance(doc.get("mouthCues"), list):
        raise InputError(f"{path}: not Rhubarb JSON: expected an object with a 'mouthCues' list")
    cues: list[Cue] = []
    for i, item in enumerate(doc["mouthCues"]):
        what = f"{path}: mouthCues[{i}]"
        if not isinstance(item, dict) or not {"start", "end", "value"} <= item.keys():
            raise InputError(f"{what}: expected an object with start, end and value")
        start, end = _time_ns(item["start"], f"{what}.start"), _time_ns(item["end"], f"{what}.end")
        if end < start:
            raise InputError(f"{what}: ends ({item['end']}) before it starts ({item['start']})")
        cues.append(Cue(start, end, _shape(item["value"], f"{what}.value")))
    _check_order(cues, path)
    end_ns = max((c.end_ns for c in cues), default=0)
    metadata = doc.get("metadata")
    if isinstance(metadata, dict) and "duration" in metadata:
        end_ns = max(end_ns, _time_ns(metadata["duration"], f"{path}: metadata.duration"))
    yield from _frames(cues, end_ns, fps)


def read_rhubarb_tsv(path: str | os.PathLike[str], *, fps: float = DEFAULT_FPS) -> Iterator[FaceFrame]:
    """Frames sampled at ``fps`` from Rhubarb TSV cues (the last line is the end of the recording)."""
    path = readable_take(path)
    fps = check_fps(fps, "fps")
    return _iter_tsv(path, fps)


def _iter_tsv(path: str, fps: float) -> Iterator[FaceFrame]:
    marks: list[tuple[int, str]] = []
    try:
        with contextlib.ExitStack() as stack:
            if path == STDIO:
                f: IO[str] = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
                stack.callback(f.detach)  # never close the process's stdin
            else:
                f = stack.enter_context(open(path, encoding="utf-8-sig", newline=""))
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                parts = line.split()
                if len(parts) != 2:
                    raise InputError(f"{path}:{lineno}: expected 'start<TAB>shape', got {line.rstrip()[:40]!r}")
                marks.append((_time_ns(parts[0], f"{path}:{lineno}: start"), _shape(parts[1], f"{path}:{lineno}: shape")))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not Rhubarb TSV (not UTF-8 text: {exc.reason})") from exc
    except OSError as exc:
        raise InputError(f"cannot read take {path}: {exc.strerror or exc}") from exc
    if not marks:
        raise InputError(f"{path}: empty file, expected Rhubarb TSV cues ('start<TAB>shape' lines)")
    cues = [Cue(s, marks[i + 1][0], shape) for i, (s, shape) in enumerate(marks[:-1])]
    _check_order(cues + [Cue(marks[-1][0], marks[-1][0], marks[-1][1])], path)
    yield from _frames(cues, marks[-1][0], fps)
