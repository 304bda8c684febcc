"""Head pose (6-DoF) and eye gaze from the 478 landmarks, against facewire's canonical face.

Rotation: a similarity (Umeyama) fit of the rigid part of the mesh (forehead, nose, eye corners,
cheekbones: nothing an expression moves much) to the canonical face, so pose is independent of
expression. Translation: weak perspective, with a focal length equal to the image width (≈ 53°
horizontal field of view, typical of webcams) turning the fitted scale into distance.
Gaze: each iris centre, in the head frame, relative to its eye's corners, as an angle on an eyeball
whose radius is a fixed fraction of the eye width.

The canonical face (``data/canonical_face.npz``) is built by ``tools/make_canonical_face.py``
from the package mesh model's own output on real video, so its depth convention matches the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from ..frame import Gaze, HeadPose

__all__ = ["RIGID", "PoseResult", "PoseSolver", "canonical_face", "euler_to_rotation", "rotation_to_euler", "umeyama"]

# Points an expression barely moves: nose bridge and tip, forehead, eye corners, cheekbones, temples.
RIGID = np.array([
    1, 4, 5, 6, 8, 9, 10, 151, 168, 195, 197,
    33, 133, 362, 263, 130, 359, 243, 463,
    67, 109, 338, 297, 103, 332, 69, 299, 108, 337,
    234, 454, 127, 356, 93, 323, 116, 345, 50, 280, 123, 352,
    21, 251, 54, 284, 162, 389,
])

# In the camera frame (x right, y up, z towards the viewer) the mesh model's image coordinates
# (x right, y down, z away) flip two axes: a proper rotation, so handedness is kept.
_TO_CAMERA = np.array([1.0, -1.0, -1.0])


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R, translation t minimising ‖dst − (s·R·src + t)‖² (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(3)
    if np.linalg.det(u @ vt) < 0:
        d[2] = -1.0
    r = (u * d) @ vt
    var = (a**2).sum() / len(src)
    s = float((sv * d).sum() / var) if var > 0 else 1.0
    return s, r, mu_d - s * r @ mu_s


def rotation_to_euler(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of R = Ry(yaw)·Rx(−pitch)·Rz(roll); see `HeadPose`."""
    b = math.asin(max(-1.0, min(1.0, -r[1, 2])))
    yaw = math.atan2(r[0, 2], r[2, 2])
    roll = math.atan2(r[1, 0], r[1, 1])
    return math.degrees(yaw), -math.degrees(b), math.degrees(roll)


def euler_to_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Inverse of `rotation_to_euler`."""
    a, b, c = math.radians(yaw_deg), -math.radians(pitch_deg), math.radians(roll_deg)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


EYEBALL_FRACTION = 0.42  # eyeball radius / eye-corner distance (≈ 12 mm / 29 mm)
_EYES = (((33, 133), 468), ((362, 263), 473))  # (corners, iris centre): subject's right, then left


@lru_cache(maxsize=1)
def canonical_face() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(468×3 canonical points in cm in the head frame, 468 mirror indices, 4 gaze offsets), read-only."""
    with resources.files("facewire.data").joinpath("canonical_face.npz").open("rb") as fh:
        data = np.load(fh)
        arrays = (data["points"].astype(np.float64), data["mirror"].astype(np.intp),
                  data["gaze_offset"].astype(np.float64))
    for arr in arrays:
        arr.flags.writeable = False
    return arrays


def iris_offsets(local: np.ndarray) -> np.ndarray:
    """Iris centres relative to their eye corners in eyeball radii: (right dx, dy, left dx, dy)."""
    out = np.empty(4)
    for k, (corners, iris) in enumerate(_EYES):
        a, b = local[corners[0]], local[corners[1]]
        radius = EYEBALL_FRACTION * np.linalg.norm(b - a)
        out[2 * k:2 * k + 2] = (local[iris, :2] - (a[:2] + b[:2]) / 2) / radius
    return out


@dataclass(frozen=True, slots=True)
class PoseResult:
    """Pose and gaze, plus the landmarks expressed in the head frame (cm) for the blendshape solver."""

    head: HeadPose
    gaze: Gaze
    rotation: np.ndarray
    head_frame: np.ndarray


class PoseSolver:
    """478 image-pixel landmarks (+ image size) → head pose, gaze and pose-free landmarks."""

    def __init__(self) -> None:
        self.canonical, self.mirror, self.gaze_offset = canonical_face()
        self._canon_rigid = self.canonical[RIGID]

    def __call__(self, landmarks: np.ndarray, image_size: tuple[int, int]) -> PoseResult:
        w, h = image_size
        cam = landmarks.astype(np.float64) * _TO_CAMERA
        s, r, t = umeyama(self._canon_rigid, cam[RIGID])
        yaw, pitch, roll = rotation_to_euler(r)
        focal = float(w)
        # position of the canonical origin (between the eyes) in the image, in pixels from centre
        cx, cy = t[0] - w / 2.0, t[1] + h / 2.0
        head = HeadPose(yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll, x=cx / s, y=cy / s, z=focal / s)
        # camera → head frame: inverse similarity
        local = ((cam - t) @ r) / s
        return PoseResult(head=head, gaze=self._gaze(local), rotation=r, head_frame=local.astype(np.float32))

    def _gaze(self, local: np.ndarray) -> Gaze:
        if local.shape[0] < 478:
            return Gaze()
        # offsets are measured on people looking into the camera, so that gaze 0 means "at camera"
        rx, ry, lx, ly = np.degrees(np.arcsin(np.clip(iris_offsets(local) - self.gaze_offset, -1.0, 1.0)))
        return Gaze(left_yaw_deg=lx, left_pitch_deg=ly, right_yaw_deg=rx, right_pitch_deg=ry)
