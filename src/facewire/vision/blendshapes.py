"""facewire's blendshape solver: pose-free landmarks → the 52 ARKit coefficients.

Method. The head pose is removed first: `PoseSolver` fits a similarity (rotation, scale,
translation) of the rigid part of the mesh to facewire's canonical face and expresses every
landmark in that head frame, in centimetres. The solver therefore sees shape only and is invariant
to head rotation, face size in the image and position by construction. Its input (`features`) is
the displacement from the canonical face of 136 expressive mesh points (MediaPipe's blendshape
subset within the 468-point mesh) plus, per eye, the iris centre relative to the midpoint of that
eye's corners; x, y and z each, 414 numbers, standardised with the training set's mean and spread.

The model is an ensemble of three two-layer networks (ReLU hidden layer, sigmoid output); the
prediction is the mean of their outputs. Each network is split by face region: the right-eye
channels, the left-eye channels (both see the two eyes, the brows and the upper cheeks, and the
iris features), the brow channels (upper face), the mouth and jaw channels (lower face) and the
cheek and nose channels (mid face) have hidden units of their own that see only their region's
landmarks. About 35 µs per face in numpy, features included.

Training (``tools/train_solver.py``, reproducible, weights in ``data/solver.npz``). The networks
are students of MediaPipe's blendshape model. Real pairs: frames of four GRID clips and the
astronaut photo, as they are, augmented (rotation, scale, shift and mirror; small perspective
warps; brightness, contrast, colour, blur, noise and JPEG loss) and tracked frame to frame, are
seen by both pipelines: facewire's package-model landmarks are the input, the official pipeline's
blendshapes (its 478-point model + blendshape model) the label. These teach the systematic gap
between the two landmark models. Synthetic samples add random combinations of facial motions
(smiles, brow raises, blinks, squints, jaw and lip movements, gaze shifts…) as displacement
fields to both landmark sets of a real pair and let the teacher label the moved official
landmarks, covering expressions the video lacks. Left/right mirrored copies keep the solver
symmetric. The two GRID clips held out of training (listed in the weights as ``held_out``) give
a pooled mean Pearson r of about 0.84 against the official pipeline. ``tongueOut`` is not
observable in the landmarks and stays 0.

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

__all__ = ["FEATURE_POINTS", "BlendshapeSolver", "features", "load_weights", "mirror_features"]

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
    """`PoseResult` → 52 ARKit weights in [0, 1] (numpy only; about 35 µs per face, features included).

    The weights hold an ensemble of E two-layer networks over the same standardised features:
    ``w1`` E×F×H, ``b1`` E×H, ``w2`` E×H×K, ``b2`` E×K (2-D arrays are read as a single network);
    the prediction is the mean of the members' sigmoid outputs.
    """

    def __init__(self, weights: dict[str, np.ndarray] | None = None) -> None:
        w = weights if weights is not None else load_weights()
        self.mean = np.asarray(w["mean"], dtype=np.float32)
        self.std = np.asarray(w["std"], dtype=np.float32)
        w1, b1, w2, b2 = (np.asarray(w[k], dtype=np.float32) for k in ("w1", "b1", "w2", "b2"))
        if w1.ndim == 2:  # a single network
            w1, b1, w2, b2 = w1[None], b1[None], w2[None], b2[None]
        self.members, _, self.hidden = w1.shape
        # the members' first layers side by side: one matrix product for all of them
        self.w1 = np.ascontiguousarray(w1.transpose(1, 0, 2).reshape(w1.shape[1], -1))
        self.b1 = b1.reshape(-1)
        self.w2, self.b2 = w2, b2[:, None, :]
        self.out_index = np.asarray(w["out_index"], dtype=np.intp)  # ARKit indices the networks predict

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Weights for a batch of feature vectors (N×F → N×52)."""
        z = (np.asarray(x, dtype=np.float32) - self.mean) / self.std
        h = np.maximum(z @ self.w1 + self.b1, 0.0).reshape(len(z), self.members, self.hidden).transpose(1, 0, 2)
        y = (1.0 / (1.0 + np.exp(-(np.matmul(h, self.w2) + self.b2)))).mean(0)
        out = np.zeros((len(z), arkit.COUNT), dtype=np.float32)
        out[:, self.out_index] = y
        return out

    def __call__(self, pose: PoseResult) -> np.ndarray:
        return self.predict(features(pose.head_frame)[None])[0]
