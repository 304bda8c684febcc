"""OVR viseme timelines (``.visemes.json``): per frame the 15 viseme weights, read and written.

facewire's own small format, for lip-sync tools that speak Meta/Oculus visemes (VRChat, Ready
Player Me avatars)::

    {"format": "facewire-visemes", "version": 1,
     "visemes": ["sil", "PP", …, "ou"],
     "start_ns": 0,
     "frames": [
       {"t": 0.000000000, "w": [1, 0, …15 numbers…]},
       …
     ]}

``t`` is seconds from ``start_ns`` (the first frame's media time), written with 9 decimals so
times come back to the nanosecond; ``w`` follows the ``visemes`` order, with 7 decimals (the fit is
good to ~2e-7; more digits would only show float32 noise). Readers match the
``visemes`` names, in any order, to OVR's; a name left out reads as 0, an unknown one is an error.

Weights ↔ visemes go through `facewire.mouth` (one table): writing fits each frame's mouth
shapes with the viseme poses (untracked frames are all ``sil``); reading builds each frame's
weights from its visemes. A timeline whose weights sum to 1 per frame (as OVRLipSync's do) comes
back from frames within 1e-6.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Self

import numpy as np

from ..errors import InputError
from ..frame import FaceFrame
from ..mouth import VISEMES, arkit_to_visemes, visemes_to_arkit
from ._document import DocumentWriter, load_json
from ._files import readable_take
from .csv import format_time_ns

__all__ = ["FORMAT", "SUFFIXES", "VERSION", "VisemesWriter", "read_visemes"]

SUFFIXES = (".visemes.json",)
FORMAT = "facewire-visemes"
VERSION = 1
_DECIMALS = 7


class VisemesWriter(DocumentWriter):
    """A sink writing a viseme timeline; frames are spooled, the file appears atomically on close."""

    def __enter__(self) -> Self:
        super().__enter__()
        self._start_ns: int | None = None
        return self

    def _add(self, frame: FaceFrame, spool: IO[str]) -> None:
        if self._start_ns is None:
            self._start_ns = frame.t_ns
        if frame.tracked:
            visemes = np.round(arkit_to_visemes(frame.weights), _DECIMALS) + 0.0  # + 0.0: no "-0.0"
        else:
            visemes = np.zeros(len(VISEMES))
            visemes[0] = 1.0
        t = format_time_ns(frame.t_ns - self._start_ns)
        weights = ", ".join(map(repr, visemes.tolist()))
        spool.write(("" if self.frames == 0 else ",\n") + f'  {{"t": {t}, "w": [{weights}]}}')

    def _finish(self, out: IO[str], spool: IO[str]) -> None:
        out.write("{\n")
        out.write(f'"format": "{FORMAT}", "version": {VERSION},\n')
        out.write(f'"visemes": {json.dumps(list(VISEMES))},\n')
        out.write(f'"start_ns": {self._start_ns or 0},\n')
        out.write('"frames": [' + ("\n" if self.frames else ""))
        self.copy_spool(spool, out)
        out.write(("\n" if self.frames else "") + "]\n}\n")


def read_visemes(path: str | os.PathLike[str]) -> Iterator[FaceFrame]:
    """Frames from a viseme timeline, their weights built from the visemes (see the module doc)."""
    path = readable_take(path)
    return _iter_visemes(path)


def _iter_visemes(path: str) -> Iterator[FaceFrame]:
    doc = load_json(path, "viseme timeline", parse_float=Decimal)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{path}: not a viseme timeline: expected \"format\": \"{FORMAT}\"")
    if doc.get("version") != VERSION:
        raise InputError(f"{path}: expected viseme timeline version {VERSION}, got {doc.get('version')!r}")
    names = doc.get("visemes")
    frames = doc.get("frames")
    if not isinstance(names, list) or not isinstance(frames, list):
        raise InputError(f"{path}: expected a 'visemes' list and a 'frames' list")
    unknown = [n for n in names if n not in VISEMES]
    if unknown:
        raise InputError(f"{path}: unknown viseme name{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                         f"expected OVR's {' '.join(VISEMES)}")
    if len(set(names)) != len(names):
        raise InputError(f"{path}: a viseme name appears twice in 'visemes'")
    dest = np.array([VISEMES.index(n) for n in names], dtype=np.intp)
    start = doc.get("start_ns", 0)
    if isinstance(start, bool) or not isinstance(start, int):
        raise InputError(f"{path}: start_ns: expected an integer, got {start!r}")
    for i, item in enumerate(frames):
        what = f"{path}: frames[{i}]"
        if not isinstance(item, dict) or "t" not in item or "w" not in item:
            raise InputError(f"{what}: expected an object with 't' and 'w'")
        t, w = item["t"], item["w"]
        if isinstance(t, bool) or not isinstance(t, (int, Decimal)):
            raise InputError(f"{what}.t: expected seconds, got {t!r}")
        if not isinstance(w, list) or len(w) != len(names):
            raise InputError(f"{what}.w: expected {len(names)} weights, got {w!r:.60}")
        try:
            values = np.array([float(x) for x in w if not isinstance(x, bool)], dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{what}.w: expected numbers") from None
        if len(values) != len(names) or not np.isfinite(values).all() or (values < 0).any():
            raise InputError(f"{what}.w: expected finite weights ≥ 0")
        visemes = np.zeros(len(VISEMES), dtype=np.float64)
        visemes[dest] = values
        t_ns = start + int((Decimal(t) * 1_000_000_000).to_integral_value())
        yield FaceFrame(t_ns=t_ns, seq=i, weights=visemes_to_arkit(visemes))
