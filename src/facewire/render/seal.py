"""The seam between rendering and trust: every rendered image or video passes through a ``Seal``.

The renderer calls ``mark_frame`` on each RGB frame before it is encoded (the trust layer puts its
invisible watermark there) and ``finish`` on the finished file before it is moved into place (the
trust layer signs it with a C2PA manifest there). ``NoSeal`` is for tests of the renderer alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["NoSeal", "Seal"]


class Seal(Protocol):
    def mark_frame(self, rgb: np.ndarray, index: int) -> np.ndarray:
        """Return the frame to encode (uint8 H×W×3); never modify ``rgb`` in place."""

    def finish(self, path: Path, info: dict[str, Any]) -> Path:
        """Seal the finished file at ``path`` (a temporary name; ``info`` says what was rendered:
        take hash, avatar, size, fps, frame count) and return the path of the sealed file, which the
        caller then moves atomically to its destination."""


class NoSeal:
    """Leaves frames and files as they are."""

    def mark_frame(self, rgb: np.ndarray, index: int) -> np.ndarray:
        return rgb

    def finish(self, path: Path, info: dict[str, Any]) -> Path:
        return path
