"""`--preview`: the input video with the landmarks drawn on it and live bars of the 52 coefficients.

Written as H.264 through PyAV into a temporary file that is renamed into place when complete, so an
interrupted run never leaves a half-written video.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Self

import av
import cv2
import numpy as np

from . import arkit
from .errors import OutputError
from .frame import FaceFrame
from .render.video import h264_options

__all__ = ["PreviewWriter", "draw"]

_PANEL_W = 300
_ROW_H = 11
_GREEN = (80, 220, 120)
_IRIS = (255, 80, 80)


def draw(rgb: np.ndarray, frames: list[FaceFrame]) -> np.ndarray:
    """The picture with landmarks and a side panel of bars (first face), as RGB uint8."""
    img = np.ascontiguousarray(rgb).copy()
    h = img.shape[0]
    dot = max(1, round(min(img.shape[:2]) / 400))
    for frame in frames:
        if frame.tracked and frame.landmarks is not None:
            for i, (x, y, _) in enumerate(frame.landmarks):
                cv2.circle(img, (int(x), int(y)), dot, _IRIS if i >= 468 else _GREEN, -1, lineType=cv2.LINE_AA)
    panel_h = max(h, _ROW_H * 27 + 40)
    panel = np.full((panel_h, _PANEL_W, 3), 24, np.uint8)
    face = next((f for f in frames if f.tracked), None)
    status = "no face" if face is None else (
        f"yaw {face.head.yaw_deg:+5.1f} pitch {face.head.pitch_deg:+5.1f} roll {face.head.roll_deg:+5.1f}")
    cv2.putText(panel, status, (6, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (230, 230, 230), 1, cv2.LINE_AA)
    weights = face.weights if face is not None else np.zeros(arkit.COUNT)
    col_w = _PANEL_W // 2
    for i, (name, w) in enumerate(zip(arkit.NAMES, weights)):
        col, row = divmod(i, 26)
        x0, y0 = col * col_w + 4, 26 + row * _ROW_H
        bar = int((col_w - 8) * float(w))
        cv2.rectangle(panel, (x0, y0), (x0 + bar, y0 + _ROW_H - 2), (60, 140, 220), -1)
        cv2.putText(panel, name, (x0 + 2, y0 + _ROW_H - 3), cv2.FONT_HERSHEY_PLAIN, 0.62, (235, 235, 235), 1, cv2.LINE_AA)
    if panel_h > h:
        img = np.pad(img, ((0, panel_h - h), (0, 0), (0, 0)))
    return np.hstack([img, panel])


class PreviewWriter:
    """A video sink for (image, frames) pairs; the file appears only when the writer closes cleanly."""

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        self.path = Path(path)
        self.fps = fps
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        self._container = None
        self._stream = None
        self._pts = 0

    def __enter__(self) -> Self:
        try:
            # FFmpeg opens the file only when the first packet is muxed, frames into the run:
            # create it now so that an unwritable destination fails before any work is done.
            self._tmp.open("wb").close()
            self._container = av.open(str(self._tmp), mode="w", format=_format_for(self.path))
        except (OSError, av.FFmpegError) as exc:
            self._tmp.unlink(missing_ok=True)
            raise OutputError(f"{self.path}: cannot write the preview video ({exc})") from exc
        return self

    def send(self, rgb: np.ndarray, frames: list[FaceFrame]) -> None:
        picture = draw(rgb, frames)
        h, w = picture.shape[:2]
        picture = picture[: h - h % 2, : w - w % 2]  # yuv420p needs even sizes
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1000))
            self._stream.width, self._stream.height = picture.shape[1], picture.shape[0]
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = h264_options(crf="23", preset="veryfast")
        elif picture.shape[:2] != (self._stream.height, self._stream.width):
            picture = cv2.resize(picture, (self._stream.width, self._stream.height))
        vf = av.VideoFrame.from_ndarray(picture, format="rgb24")
        vf.pts = self._pts
        self._pts += 1
        try:
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except (OSError, av.FFmpegError) as exc:
            raise OutputError(f"{self.path}: cannot write the preview video ({exc})") from exc

    def __exit__(self, exc_type, *exc: object) -> None:
        # The file is published only when every frame was sent and the encoder flushed and closed
        # without error: a failure while finishing (disk full, …) must not rename a broken video in.
        complete = False
        container, self._container = self._container, None
        try:
            try:
                if self._stream is not None and exc_type is None:
                    for packet in self._stream.encode():
                        container.mux(packet)
            finally:
                if container is not None:
                    container.close()
            if exc_type is None and self._stream is not None:
                os.replace(self._tmp, self.path)
                complete = True
        except (OSError, av.FFmpegError) as error:
            if exc_type is None:  # else the error already on its way out is the one to report
                raise OutputError(f"{self.path}: cannot write the preview video ({error})") from error
        finally:
            if not complete:
                self._tmp.unlink(missing_ok=True)


def _format_for(path: Path) -> str:
    return {".mkv": "matroska", ".mov": "mov", ".webm": "webm"}.get(path.suffix.lower(), "mp4")
