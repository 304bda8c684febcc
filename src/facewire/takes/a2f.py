"""NVIDIA Audio2Face blendshape-weight JSON export (``.a2f.json``), read and written.

The schema (``../shared/reference/protocols.md`` §5a; no NVIDIA text, four independent consumers
agree)::

    {"exportFps": 60.0, "trackPath": "…/audio.wav", "numPoses": 52, "numFrames": N,
     "facsNames": ["eyeBlinkLeft", …], "weightMat": [[…52 numbers…], …N rows…]}

optionally followed by ``joints``/``rotations``/``translations`` (jaw and eye joints), which the
reader ignores. ``facsNames`` depends on the solved mesh: for an ARKit mesh it is the 52 ARKit
names, which map **by name** (camelCase or PascalCase); other poses (A2F's own 46 FACS poses, its
16 tongue shapes) have no ARKit meaning here and are skipped with one warning. The writer writes
the 52 ARKit names in canonical order.

Frame ``i`` is at ``i / exportFps`` seconds. The writer's ``exportFps`` is ``fps`` when given,
else the frames' mean rate snapped to a common rate (Live Link Face's 59.88 → 60), 60 for a single
frame; rows are written one per frame whatever their spacing. Weights are written as the shortest
text that reads back to the same float32; raw values outside [0, 1] that a reader kept in
``extras`` are written back as they came. Head pose and gaze are not part of the format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import IO, Any, Self

import numpy as np

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame
from ._document import DocumentWriter, load_json
from ._extras import split_unclipped, unclipped_weights
from ._files import arkit_columns, is_arkit_name, readable_take
from ._timing import FpsMeter, check_fps, frame_time_ns
from .csv import _format_weights

__all__ = ["SUFFIXES", "A2fWriter", "read_a2f"]

SUFFIXES = (".a2f.json",)

_DEFAULT_FPS = 60.0


class A2fWriter(DocumentWriter):
    """A sink writing an Audio2Face blendshape JSON; ``fps`` sets ``exportFps`` (default: measured).

    Rows are spooled as they come, so memory stays bounded; the file appears atomically when the
    sink closes, and not at all if the ``with`` block ends with an exception.
    """

    def __init__(self, path: str | os.PathLike[str], *, fps: float | None = None, track_path: str = "") -> None:
        super().__init__(path)
        self.fps = None if fps is None else check_fps(fps, "fps")
        self.track_path = str(track_path)
        self._meter = FpsMeter()

    def __enter__(self) -> Self:
        super().__enter__()
        self._meter = FpsMeter()
        return self

    def _add(self, frame: FaceFrame, spool: IO[str]) -> None:
        texts = _format_weights(frame.weights)
        if frame.extras:
            raw = unclipped_weights(frame.weights, frame.extras)
            for i in np.flatnonzero(raw != frame.weights):
                texts[i] = repr(float(raw[i]))
        spool.write(("" if self.frames == 0 else ",\n") + "    [" + ", ".join(texts) + "]")
        self._meter.add(frame.t_ns)

    def _finish(self, out: IO[str], spool: IO[str]) -> None:
        fps = self.fps if self.fps is not None else self._meter.fps(_DEFAULT_FPS)
        out.write("{\n")
        out.write(f'  "exportFps": {json.dumps(float(fps))},\n')
        out.write(f'  "trackPath": {json.dumps(self.track_path)},\n')
        out.write(f'  "numPoses": {arkit.COUNT},\n')
        out.write(f'  "numFrames": {self.frames},\n')
        out.write(f'  "facsNames": {json.dumps(list(arkit.NAMES))},\n')
        out.write('  "weightMat": [' + ("\n" if self.frames else ""))
        self.copy_spool(spool, out)
        out.write(("\n  " if self.frames else "") + "]\n}\n")


def read_a2f(path: str | os.PathLike[str]) -> Iterator[FaceFrame]:
    """Frames from an Audio2Face blendshape JSON, poses mapped to ARKit by name.

    The file is checked for readability at once and parsed (as one JSON document) when iteration
    starts. A missing key, inconsistent counts, a row of the wrong length or a non-finite number
    raises `InputError` naming the file and what was expected.
    """
    path = readable_take(path)
    return _iter_a2f(path)


def _field(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
    if key not in doc:
        raise InputError(f"{path}: not an Audio2Face export: missing {key!r}")
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InputError(f"{path}: {key}: expected {getattr(kind, '__name__', 'a number')}, got {type(value).__name__}")
    return value


def _iter_a2f(path: str) -> Iterator[FaceFrame]:
    doc = load_json(path, "Audio2Face")
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not an Audio2Face export: expected a JSON object, got {type(doc).__name__}")
    fps = check_fps(_field(doc, "exportFps", (int, float), path), f"{path}: exportFps")
    names = _field(doc, "facsNames", list, path)
    rows = _field(doc, "weightMat", list, path)
    num_poses = _field(doc, "numPoses", int, path)
    num_frames = _field(doc, "numFrames", int, path)
    if num_poses != len(names):
        raise InputError(f"{path}: numPoses is {num_poses} but facsNames has {len(names)} names")
    if num_frames != len(rows):
        raise InputError(f"{path}: numFrames is {num_frames} but weightMat has {len(rows)} rows")
    for col, name in enumerate(names):
        if not isinstance(name, str):
            raise InputError(f"{path}: facsNames[{col}]: expected a name, got {name!r}")
    if names and not any(is_arkit_name(n) for n in names):
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        raise InputError(f"{path}: facsNames has no ARKit blendshape names (got {shown}); "
                         "export the solve on an ARKit-named blendshape mesh")
    columns, targets = arkit_columns(names, path, "facsNames", "pose")
    cols = np.array(columns, dtype=np.intp)
    dest = np.array(targets, dtype=np.intp)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != num_poses:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise InputError(f"{path}: weightMat[{i}]: expected {num_poses} values, got {got}")
        try:
            values = np.array(row, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{path}: weightMat[{i}]: expected numbers") from None
        if not np.isfinite(values).all():
            raise InputError(f"{path}: weightMat[{i}]: expected finite numbers")
        full = np.zeros(arkit.COUNT, dtype=np.float64)
        full[dest] = values[cols]
        extras: dict[str, float] = {}
        weights = split_unclipped(full, extras)
        yield FaceFrame(t_ns=frame_time_ns(i, fps), seq=i, weights=weights, extras=extras)

