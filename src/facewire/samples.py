"""Built-in sample input: a real face (skimage's astronaut photo) moved, turned and scaled over time.

Used by ``facewire demo`` and the benchmarks, so both run on any machine without a camera or data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from .media import Image

__all__ = ["FACE_CENTRE", "astronaut", "astronaut_clip"]

FACE_CENTRE = (225.0, 125.0)  # of the astronaut's face in the 512×512 photo, px


def astronaut() -> np.ndarray:
    """The 512×512 RGB astronaut portrait shipped with scikit-image (public domain, NASA)."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


def astronaut_clip(frames: int = 120, size: tuple[int, int] = (640, 480), fps: float = 30.0) -> Iterator[Image]:
    """A clip of the photo drifting across the frame while rolling ±25° and zooming ×0.8–×1.25."""
    photo = astronaut()
    w, h = size
    base = 0.55 * h / 200.0  # the face (≈200 px tall with hair) fills about half the height
    for i in range(frames):
        phase = 2 * math.pi * i / max(frames, 1)
        angle = 25.0 * math.sin(phase)
        scale = base * (1.0 + 0.22 * math.sin(2 * phase + 0.5))
        cx = w / 2 + 0.15 * w * math.sin(phase + 1.0)
        cy = h / 2 + 0.08 * h * math.sin(1.5 * phase)
        m = cv2.getRotationMatrix2D(FACE_CENTRE, angle, scale)
        m[:, 2] += (cx - FACE_CENTRE[0], cy - FACE_CENTRE[1])
        rgb = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        yield Image(t_ns=round(i * 1e9 / fps), rgb=rgb, index=i)
