"""facewire's blendshape solver: pose-free landmarks → the 52 ARKit coefficients.

Method. The head pose is removed first (`PoseSolver` expresses every landmark in the head frame,
in centimetres), so the solver sees shape only: it is invariant to head rotation, face size and
position by construction. Its input is the displacement of 138 expressive landmarks (MediaPipe's
blendshape subset, iris centres relative to their eye corners) from facewire's canonical face,
divided by a per-face scale so different face shapes share one range. A small two-layer network
(ReLU hidden layer, sigmoid output) maps these to the 52 coefficients.

Training (``tools/train_solver.py``, reproducible, weights in ``data/solver.npz``). The network is
a student of MediaPipe's blendshape model: real face images (GRID video frames and the astronaut
photo) are deformed by smooth image warps that act out facial motions (smiles, brow raises,
blinks, jaw and lip movements, gaze shifts…) at random intensities and combinations; the official
pipeline labels each warped image and facewire's package-model landmarks of the same image are the
input. Left/right mirrored copies keep the solver symmetric. ``tongueOut`` is not observable in
the landmarks and stays 0.

Calibration happens after the solver, per shape (`expression.calibration`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from .. import arkit
from ..errors import ModelError
from .mp_blendshapes import SUBSET
from .pose import PoseResult, canonical_face

__all__ = ["FEATURE_POINTS", "features", "mirror_features", "BlendshapeSolver", "load_weights"]

# MediaPipe's blendshape subset within the 468 mesh, plus the two iris centres.
FEATURE_POINTS = np.array([i for i in SUBSET if i < 468] + [468, 473])
_IRIS_ROWS = (len(FEATURE_POINTS) - 2, len(FEATURE_POINTS) - 1)
_EYES = (((33, 133), 468), ((362, 263), 473))


def features(head_frame: np.ndarray) -> np.ndarray:
    """Feature vector(s) from head-frame landmarks (…×478×3, cm): displacements from the canonical face."""
    canon, _, _ = canonical_face()
    pts = np.asarray(head_frame, dtype=np.float64)
    single = pts.ndim == 2
    if single:
        pts = pts[None]
    sel = pts[:, FEATURE_POINTS].copy()
    ref = np.empty((len(FEATURE_POINTS), 3))
    ref[: _IRIS_ROWS[0]] = canon[FEATURE_POINTS[: _IRIS_ROWS[0]]]
    for row, (corners, iris) in zip(_IRIS_ROWS, _EYES):
        # iris relative to its own eye's corners, so that lid and eye shape do not leak into gaze
        sel[:, row] = pts[:, iris] - pts[:, list(corners)].mean(1)
        ref[row] = 0.0
    out = (sel - ref).reshape(len(pts), -1).astype(np.float32)
    return out[0] if single else out


@lru_cache(maxsize=1)
def _feature_mirror() -> tuple[np.ndarray, np.ndarray]:
    """Permutation and sign flip that turn features of a face into those of its mirror image."""
    _, mirror, _ = canonical_face()
    pos = {int(p): k for k, p in enumerate(FEATURE_POINTS)}
    perm = np.array([pos[int(mirror[p])] if p < 468 else pos[473 if p == 468 else 468] for p in FEATURE_POINTS])
    sign = np.tile(np.array([-1.0, 1.0, 1.0], dtype=np.float32), len(FEATURE_POINTS))
    idx = (perm[:, None] * 3 + np.arange(3)).reshape(-1)
    return idx, sign


def mirror_features(x: np.ndarray) -> np.ndarray:
    """Features of the left/right mirror image of the face(s) described by ``x``."""
    idx, sign = _feature_mirror()
    return x[..., idx] * sign


@lru_cache(maxsize=4)
def load_weights(name: str = "solver.npz") -> dict[str, np.ndarray]:
    try:
        with resources.files("facewire.data").joinpath(name).open("rb") as fh:
            data = dict(np.load(fh))
    except FileNotFoundError as exc:
        raise ModelError(f"{name}: the blendshape solver's weights are missing; run tools/train_solver.py") from exc
    for arr in data.values():
        arr.flags.writeable = False
    return data


class BlendshapeSolver:
    """`PoseResult` → 52 ARKit weights in [0, 1] (numpy only; about 20 µs per face)."""

    def __init__(self, weights: dict[str, np.ndarray] | None = None) -> None:
        w = weights if weights is not None else load_weights()
        self.mean, self.std = w["mean"], w["std"]
        self.w1, self.b1, self.w2, self.b2 = w["w1"], w["b1"], w["w2"], w["b2"]
        self.out_index = w["out_index"]  # ARKit indices the network predicts

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Weights for a batch of feature vectors (N×F → N×52)."""
        z = (np.asarray(x, dtype=np.float32) - self.mean) / self.std
        h = np.maximum(z @ self.w1 + self.b1, 0.0)
        y = 1.0 / (1.0 + np.exp(-(h @ self.w2 + self.b2)))
        out = np.zeros((len(z), arkit.COUNT), dtype=np.float32)
        out[:, self.out_index] = y
        return out

    def __call__(self, pose: PoseResult) -> np.ndarray:
        return self.predict(features(pose.head_frame)[None])[0]
