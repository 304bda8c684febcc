"""Rotated square regions of interest and the affine crops that feed the face models.

MediaPipe's convention: a region is a centre, a side and a rotation such that the crop's x axis
runs along (cos θ, sin θ) in image pixels (y down). θ is chosen so that the eye line is horizontal
in the crop, which is what makes the landmark and iris models work on rolled heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Roi", "crop", "roi_from_points"]


@dataclass(frozen=True, slots=True)
class Roi:
    """A rotated square: centre (px), side length (px) and rotation (radians)."""

    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def crop_to_image(self, side: int) -> np.ndarray:
        """2×3 affine matrix mapping crop pixel coordinates (0..side) to image pixels."""
        s = self.size / side
        c, n = math.cos(self.rotation) * s, math.sin(self.rotation) * s
        half = side / 2.0
        tx = self.cx - (c * half - n * half)
        ty = self.cy - (n * half + c * half)
        return np.array([[c, -n, tx], [n, c, ty]], dtype=np.float64)

    def to_image(self, points: np.ndarray, side: int) -> np.ndarray:
        """Map N×2 or N×3 crop points to image pixels (z is scaled like x and y)."""
        m = self.crop_to_image(side)
        out = np.empty_like(points, dtype=np.float32)
        out[:, :2] = points[:, :2] @ m[:, :2].T + m[:, 2]
        if points.shape[1] > 2:
            out[:, 2] = points[:, 2] * (self.size / side)
        return out

    def iou(self, other: Roi) -> float:
        """Intersection over union of the axis-aligned squares (rotation ignored; used for de-duplication)."""
        ax0, ay0, ax1, ay1 = self.cx - self.size / 2, self.cy - self.size / 2, self.cx + self.size / 2, self.cy + self.size / 2
        bx0, by0, bx1, by1 = other.cx - other.size / 2, other.cy - other.size / 2, other.cx + other.size / 2, other.cy + other.size / 2
        iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
        inter = iw * ih
        union = self.size**2 + other.size**2 - inter
        return inter / union if union > 0 else 0.0


def rotation_from(p0: np.ndarray, p1: np.ndarray, target_rad: float = 0.0) -> float:
    """Rotation that makes the vector p0→p1 point along +x in the crop (MediaPipe's formula)."""
    angle = target_rad - math.atan2(-(float(p1[1]) - float(p0[1])), float(p1[0]) - float(p0[0]))
    return math.atan2(math.sin(angle), math.cos(angle))


def roi_from_points(points: np.ndarray, rotation: float, scale: float) -> Roi:
    """Square region around ``points`` measured in the rotated frame, enlarged by ``scale``.

    Like MediaPipe's rect-from-landmarks + rect transformation with ``square_long``: the extent is
    taken along the rotated axes so that a rolled face gets a tight box, then made square.
    """
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    c, s = math.cos(rotation), math.sin(rotation)
    # project into the rotated frame (inverse rotation)
    u = pts[:, 0] * c + pts[:, 1] * s
    v = -pts[:, 0] * s + pts[:, 1] * c
    uc, vc = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    side = max(u.max() - u.min(), v.max() - v.min()) * scale
    cx, cy = uc * c - vc * s, uc * s + vc * c
    return Roi(cx=float(cx), cy=float(cy), size=float(side), rotation=rotation)


def crop(image: np.ndarray, roi: Roi, side: int, border: int = cv2.BORDER_CONSTANT, flip: bool = False) -> np.ndarray:
    """The region resampled to side×side RGB float32 in [0, 1] (optionally mirrored left-right)."""
    m = roi.crop_to_image(side)
    if flip:
        # mirror the pixels: OpenCV samples at integer pixel centres, so pixel u ↔ pixel side − 1 − u
        # (the model's landmark coordinates use pixel edges, so those un-mirror as x → side − x)
        m = m @ np.array([[-1.0, 0.0, side - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # Inverting here rather than passing WARP_INVERSE_MAP is twice as fast in OpenCV 5 (measured).
    patch = cv2.warpAffine(image, cv2.invertAffineTransform(m), (side, side), flags=cv2.INTER_LINEAR, borderMode=border)
    return patch.astype(np.float32) * (1.0 / 255.0)
