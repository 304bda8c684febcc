"""The photo avatar's per-landmark blendshape basis: how each ARKit weight moves the 468 mesh points.

Authored on facewire's canonical face (head frame, centimetres) with the same displacement fields
that ``tools/train_solver.py`` (``motions()``) adds to real faces to teach the blendshape solver,
so a weight the tracker reads off a face moves the photo's landmarks the way that face moved. The
basis is linear: ``local = rest + Σ w_k · basis[k]``. Shapes the solver has no motion for get a
small authored field (``mouthClose``, ``jawForward``, the shrugs, the lids following an eye look) or
none (``eyeLookIn``/``eyeLookOut``, ``tongueOut``: the renderer draws the turned iris and the tongue).
Blinks are special: the eyelid margin is drawn by the renderer over the eye (a lid sliding down),
so the basis moves only the skin above the lid; `BLINK_MARGINS` names the margin points.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .. import arkit
from ..vision.pose import canonical_face

__all__ = ["BLINK_MARGINS", "LOWER_LID", "LOWER_LIP", "UPPER_LID", "UPPER_LIP", "landmark_basis"]

POINTS = 478  # the basis covers the iris points too (they stay put: the renderer turns the iris itself)
UPPER_LID = {"Right": (246, 161, 160, 159, 158, 157, 173), "Left": (466, 388, 387, 386, 385, 384, 398)}
LOWER_LID = {"Right": (7, 163, 144, 145, 153, 154, 155), "Left": (249, 390, 373, 374, 380, 381, 382)}
LOWER_LIP = (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)
UPPER_LIP = (185, 40, 39, 37, 0, 267, 269, 270, 409, 191, 80, 81, 82, 13, 312, 311, 310, 415)
CORNERS = (61, 291, 78, 308)
LIPS = LOWER_LIP + UPPER_LIP + CORNERS
SIDE = {"Right": -1.0, "Left": 1.0}  # the subject's left is +x in the head frame
BLINK_MARGINS = UPPER_LID
JAW_OPEN_DEG = 12.0
_JAW_PIVOT = np.array([0.0, -3.0, -8.0])


def _canon() -> np.ndarray:
    return canonical_face()[0]


def _bump(canon: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-((canon - centre) ** 2).sum(1) / (2 * sigma**2))


def _field(canon: np.ndarray, points, vec, sigma: float = 0.0) -> np.ndarray:
    """Displacement ``vec`` at ``points``, spread to neighbours by a Gaussian of ``sigma`` cm."""
    disp = np.zeros_like(canon)
    vec = np.asarray(vec, dtype=np.float64)
    if sigma > 0:
        weight = np.zeros(len(canon))
        for p in points:
            weight = np.maximum(weight, _bump(canon, canon[p], sigma))
        disp += weight[:, None] * vec
    else:
        disp[list(points)] += vec
    return disp


def _jaw_weight(canon: np.ndarray) -> np.ndarray:
    y_cut = canon[14, 1] + 0.05
    weight = np.clip((y_cut - canon[:, 1]) / 1.0, 0, 1) * (canon[:, 1] < y_cut)
    weight[list(LOWER_LIP)] = 1.0
    weight[[61, 291, 78, 308]] = 0.5
    return weight


def _jaw(canon: np.ndarray, angle_deg: float, side_cm: float = 0.0, forward_cm: float = 0.0) -> np.ndarray:
    """The lower face rotated about a pivot behind the ears, optionally slid sideways or forwards."""
    weight = _jaw_weight(canon)
    a = math.radians(angle_deg)
    rot = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    moved = (canon - _JAW_PIVOT) @ rot.T + _JAW_PIVOT
    disp = (moved - canon) * weight[:, None]
    disp[:, 0] += side_cm * weight
    disp[:, 2] += forward_cm * weight
    return disp


def _lid_skin(canon: np.ndarray, side: str, amount: float) -> np.ndarray:
    """The skin above the upper lid following it down (the margin itself is drawn, not warped)."""
    disp = _field(canon, [UPPER_LID[side][3]], [0, -0.25 * amount, 0], 0.8)
    disp[list(UPPER_LID[side]) + list(LOWER_LID[side])] = 0.0
    return disp


def _lid(canon: np.ndarray, side: str, amount: float) -> np.ndarray:
    """Upper lid margin towards the lower one (negative: wider open), the skin above following."""
    disp = np.zeros_like(canon)
    for u, lo in zip(UPPER_LID[side], LOWER_LID[side]):
        disp[u] = (canon[lo] - canon[u]) * amount * 0.95
    follow = _field(canon, [UPPER_LID[side][3]], [0, -0.25 * amount, 0], 0.8)
    return disp + follow * (np.abs(disp).sum(1) == 0)[:, None]


def _squint(canon: np.ndarray, side: str, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower lid up, cheek up): ARKit splits these into eyeSquint and cheekSquint."""
    lids = np.zeros_like(canon)
    for u, lo in zip(UPPER_LID[side], LOWER_LID[side]):
        lids[lo] = (canon[u] - canon[lo]) * 0.35 * amount
    return lids, _field(canon, [205 if side == "Right" else 425], [0, 0.35 * amount, 0], 1.2)


def _corner(canon: np.ndarray, side: str, vec, sigma: float = 1.0) -> np.ndarray:
    corner = 61 if side == "Right" else 291
    return _field(canon, [corner], np.asarray(vec, np.float64) * np.array([SIDE[side], 1.0, 1.0]), sigma)


def _contract_lips(canon: np.ndarray, amount: float, open_cm: float) -> np.ndarray:
    centre = canon[[13, 14]].mean(0)
    disp = np.zeros_like(canon)
    w = np.zeros(len(canon))
    w[list(LIPS)] = 1.0
    w = np.maximum(w, 0.6 * _bump(canon, centre, 1.3))
    disp[:, 0] = (centre[0] - canon[:, 0]) * amount * w
    disp[list(UPPER_LIP), 1] += open_cm
    disp[list(LOWER_LIP), 1] -= open_cm
    disp[:, 2] += 0.4 * amount * w
    return disp


def _half(canon: np.ndarray, disp: np.ndarray, side: str) -> np.ndarray:
    """The part of a symmetric field on one side of the face, blended smoothly across the midline."""
    share = 1.0 / (1.0 + np.exp(-SIDE[side] * canon[:, 0] / 0.35))
    return disp * share[:, None]


@lru_cache(maxsize=1)
def landmark_basis() -> np.ndarray:
    """(52, 478, 3) float32 displacements in head-frame centimetres at weight 1, ARKit order; read-only."""
    canon = _canon()
    shapes: dict[str, np.ndarray] = {}
    for side in ("Left", "Right"):
        s = SIDE[side]
        shapes[f"eyeBlink{side}"] = _lid_skin(canon, side, 1.0)
        shapes[f"eyeWide{side}"] = _lid(canon, side, -0.45)
        shapes[f"eyeLookDown{side}"] = _lid(canon, side, 0.2)  # the upper lid follows the eye down
        shapes[f"eyeLookUp{side}"] = _lid(canon, side, -0.15)
        lids, cheek = _squint(canon, side, 1.0)
        shapes[f"eyeSquint{side}"] = lids
        shapes[f"cheekSquint{side}"] = cheek
        brow_in, brow_out = (107, 70) if side == "Right" else (336, 300)
        shapes[f"browOuterUp{side}"] = _field(canon, [brow_out], [0, 0.6, 0], 1.0)
        shapes[f"browDown{side}"] = _field(canon, [brow_in], [-s * 0.25, -0.45, 0], 1.1)
        shapes[f"noseSneer{side}"] = _field(canon, [64 if side == "Right" else 294], [0, 0.35, 0], 0.6)
        shapes[f"mouthSmile{side}"] = _corner(canon, side, [0.45, 0.55, -0.2], 1.3)
        shapes[f"mouthFrown{side}"] = _corner(canon, side, [0.05, -0.45, 0], 1.0)
        shapes[f"mouthStretch{side}"] = _corner(canon, side, [0.5, -0.25, 0], 1.2)
        shapes[f"mouthDimple{side}"] = _corner(canon, side, [0.3, 0.05, -0.2], 0.7)
        upper, lower = ([0, 37, 39], [17, 84, 181]) if side == "Right" else ([0, 267, 269], [17, 314, 405])
        shapes[f"mouthPress{side}"] = (_field(canon, upper, [0, -0.12, 0], 0.5)
                                       + _field(canon, lower, [0, 0.12, 0], 0.5))
        shapes[f"mouthUpperUp{side}"] = _half(canon, _field(canon, UPPER_LIP, [0, 0.3, 0]), side)
        shapes[f"mouthLowerDown{side}"] = _half(canon, _field(canon, LOWER_LIP, [0, -0.35, 0]), side)
        shapes[f"mouth{side}"] = _field(canon, LIPS, [s * 0.7, 0, 0], 0.6)
        shapes[f"jaw{side}"] = _jaw(canon, 1.5, s * 0.6)
    shapes["browInnerUp"] = _field(canon, [107, 336, 9], [0, 0.55, 0], 0.9)
    shapes["jawOpen"] = _jaw(canon, JAW_OPEN_DEG)
    shapes["jawForward"] = _jaw(canon, 0.0, forward_cm=0.5)
    # mouthClose with jawOpen: the lips meet again (the lower lip 60 % of the way up, the upper 40 % down)
    lower_drop = _jaw(canon, JAW_OPEN_DEG)[list(LOWER_LIP)]
    shapes["mouthClose"] = np.zeros_like(canon)
    shapes["mouthClose"][list(LOWER_LIP)] = -0.6 * lower_drop
    shapes["mouthClose"][list(UPPER_LIP)] = 0.4 * lower_drop.mean(0)
    shapes["mouthPucker"] = _contract_lips(canon, 0.35, 0.0)
    shapes["mouthFunnel"] = _contract_lips(canon, 0.25, 0.25)
    shapes["mouthRollUpper"] = _field(canon, [0, 37, 267, 39, 269], [0, -0.2, 0])
    shapes["mouthRollLower"] = _field(canon, [17, 84, 314, 181, 405], [0, 0.2, 0])
    shapes["mouthShrugLower"] = _field(canon, list(LOWER_LIP) + [152, 175, 199, 200], [0, 0.3, 0.1], 0.6)
    shapes["mouthShrugUpper"] = _field(canon, UPPER_LIP, [0, 0.15, 0.05], 0.4)
    shapes["cheekPuff"] = (_field(canon, [205, 50, 187], [-0.45, 0, 0.2], 1.1)
                           + _field(canon, [425, 280, 411], [0.45, 0, 0.2], 1.1))
    basis = np.zeros((arkit.COUNT, POINTS, 3), np.float32)
    for name, disp in shapes.items():
        basis[arkit.INDEX[name], :len(canon)] = disp
    basis.flags.writeable = False
    return basis
