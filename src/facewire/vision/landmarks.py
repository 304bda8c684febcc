"""Face mesh and iris landmark models: a rotated crop in, image-space 3D landmarks out.

The mesh model (468 points from the package, or 478 from MediaPipe's official bundle) sees a
192×192 eye-aligned crop; the iris model sees a 64×64 crop around each eye and refines the eye
contour and adds five iris points per eye, giving the same 478-point layout as MediaPipe.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from .roi import Roi, crop, roi_from_points, rotation_from
from .runtime import TfliteModel

__all__ = ["LEFT_EYE_CORNERS", "RIGHT_EYE_CORNERS", "IrisModel", "MeshModel", "roi_from_landmarks"]

_MESH_INPUT = 192
_IRIS_INPUT = 64

# Eye corners in the 468-point mesh. "Right"/"left" are the subject's: 33/133 is the eye on the
# image's left in an unmirrored photo.
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)

# Where the iris model's 71 eye-region points go in the 468 mesh (per eye, in the model's order:
# lower lid, upper lid, then four halos reaching the brow), from MediaPipe's iris graph.
_EYE_REFINE_RIGHT = np.array([
    33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
    130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
    226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
    35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245,
    156, 70, 63, 105, 66, 107, 55, 193,
])
_EYE_REFINE_LEFT = np.array([
    263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
    359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
    446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
    265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465,
    383, 300, 293, 334, 296, 336, 285, 417,
])
# Only the lids themselves (first 16 points) replace the mesh: the halos of the iris model are
# no better than the mesh's and moving them would bend the brows.
_LIDS = 16


def roi_from_landmarks(landmarks: np.ndarray, scale: float = 1.5) -> Roi:
    """The next frame's region from this frame's mesh (MediaPipe's landmarks-to-ROI rule)."""
    rot = rotation_from(landmarks[RIGHT_EYE_CORNERS[0]], landmarks[LEFT_EYE_CORNERS[1]])
    return roi_from_points(landmarks[:468], rot, scale)


class MeshModel:
    """The face mesh model: (image, region) → (N×3 image-pixel landmarks, presence probability)."""

    def __init__(self, model_path: str | Path) -> None:
        self.model = TfliteModel(model_path)
        self.points = int(np.prod(self.model.output_shapes[0])) // 3

    def __call__(self, rgb: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        patch = crop(rgb, roi, _MESH_INPUT)
        outs = self.model(patch[None])
        # output order differs between the package and the bundle: pick by size
        mesh = next(o for o in outs if o.size == self.points * 3).reshape(self.points, 3)
        logit = float(next(o for o in outs if o.size == 1).ravel()[0])
        presence = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))
        return roi.to_image(mesh, _MESH_INPUT), presence


class IrisModel:
    """The iris model: refines both eyelids and appends 2×5 iris points (centre first)."""

    def __init__(self, model_path: str | Path) -> None:
        self.model = TfliteModel(model_path)

    def _eye(self, rgb: np.ndarray, landmarks: np.ndarray, corners: tuple[int, int], flip: bool):
        p0, p1 = landmarks[corners[0]], landmarks[corners[1]]
        roi = roi_from_points(np.stack([p0[:2], p1[:2]]), rotation_from(p0, p1), 2.3)
        patch = crop(rgb, roi, _IRIS_INPUT, border=cv2.BORDER_REPLICATE, flip=flip)
        contour, iris = self.model(patch[None])
        contour = contour.reshape(71, 3)
        iris = iris.reshape(5, 3)
        if flip:
            contour[:, 0] = _IRIS_INPUT - contour[:, 0]
            iris[:, 0] = _IRIS_INPUT - iris[:, 0]
        return roi.to_image(contour, _IRIS_INPUT), roi.to_image(iris, _IRIS_INPUT)

    def __call__(self, rgb: np.ndarray, landmarks: np.ndarray, eyes: tuple[int, ...] = (0, 1),
                 carry: dict | None = None) -> tuple[np.ndarray, dict]:
        """468-point mesh → 478 points with refined lids and irises, and the refinement to carry over.

        ``eyes`` says which eyes (0 = subject's right, 1 = left) run through the model now; any
        other eye reuses its refinement from ``carry`` as offsets from the mesh's own points, so
        it still follows this frame's mesh. Running one eye per frame halves the iris cost.
        """
        out = np.empty((478, 3), dtype=np.float32)
        out[:468] = landmarks[:468]
        carry = dict(carry or {})
        for k, (corners, refine, start, flip) in enumerate((
            ((33, 133), _EYE_REFINE_RIGHT, 468, False),
            ((362, 263), _EYE_REFINE_LEFT, 473, True),  # the model knows the image-left eye; mirror the other
        )):
            idx = refine[:_LIDS]
            centre = landmarks[list(corners), :2].mean(0)
            if k in eyes or k not in carry:
                contour, iris = self._eye(rgb, landmarks, corners, flip)
                # the iris model's z lives in its own frame: keep x, y and re-base depth on the mesh
                carry[k] = (contour[:_LIDS, :2] - landmarks[idx, :2], iris[:, :2] - centre, iris[:, 2] - iris[0, 2])
            lids, iris_xy, iris_dz = carry[k]
            out[idx, :2] = landmarks[idx, :2] + lids
            out[start:start + 5, :2] = centre + iris_xy
            out[start:start + 5, 2] = landmarks[idx, 2].mean() + iris_dz
        return out, carry
