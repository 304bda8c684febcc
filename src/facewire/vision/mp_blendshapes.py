"""MediaPipe's own blendshape model (from the official ``.task`` bundle), used as the reference.

It reads 146 of the 478 landmarks as image-pixel x, y and returns MediaPipe's 52 categories;
we reorder them into ARKit order by name. Only available when the user supplies the bundle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import arkit
from .runtime import TfliteModel

__all__ = ["SUBSET", "MediaPipeBlendshapes"]

# The landmarks the model reads, in its input order (kLandmarksSubsetIdxs of MediaPipe's
# face_blendshapes_graph.cc).
SUBSET = np.array([
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168,
    172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276,
    282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318,
    321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380,
    381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466,
    468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
])
SUBSET.flags.writeable = False


class MediaPipeBlendshapes:
    """478×3 image-pixel landmarks → 52 ARKit weights (tongueOut always 0)."""

    def __init__(self, model_path: str | Path) -> None:
        self.model = TfliteModel(model_path)

    def scores(self, landmarks: np.ndarray) -> np.ndarray:
        """The raw 52 scores in MediaPipe's order (``_neutral`` first)."""
        (out,) = self.model(np.asarray(landmarks, dtype=np.float32)[SUBSET, :2][None])
        return out.reshape(-1)

    def __call__(self, landmarks: np.ndarray) -> np.ndarray:
        return np.clip(arkit.mediapipe_to_arkit(self.scores(landmarks)), 0.0, 1.0)
