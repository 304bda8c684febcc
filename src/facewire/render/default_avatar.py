"""facewire's own avatar: the head `sculpt` builds, with all 52 ARKit morph targets authored as
smooth displacement fields, generated in code (no downloaded asset) and cached per process.

How the targets are made: every shape is a field over the rest vertices and their tags (which piece,
which side of the lip seam, how much of the jaw they follow). Shapes of the avatar's left side are
authored once and masked at the midline with a soft blend; the right side is their mirror image,
vertex for vertex. Lids turn about the eye centre on their shells (eyeBlink, eyeSquint, eyeWide).
``eyeLook*`` targets are only the lids' follow-through (the upper lid rides up when the eye looks up,
…): the eyeballs themselves turn by gaze, which the renderer applies about `AvatarMesh.eye_centers`.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.spatial import cKDTree

from .. import arkit
from .mesh import AvatarMesh, Part
from .sculpt import (
    HAIR_RGB,
    IRIS_RGB,
    LANDMARKS,
    SKIN_RGB,
    Kind,
    Landmarks,
    lid_margin_deg,
    lid_point,
    sculpt,
)

__all__ = ["PART_NAMES", "VERSION", "build_default_avatar", "default_avatar", "mirror_map"]

VERSION = 2
"""Bumped whenever the generated mesh changes (caches and golden images key on it)."""

JAW_OPEN_DEG = 9.5  # rotation of the jaw about its hinge at jawOpen = 1 (~17 mm at the lower lip)
BLINK_UPPER_DEG = -16.0  # upper-lid margin elevation with the eye closed: below the eye centre
BLINK_LOWER_DEG = -12.0  # the lower lid rises to meet it (the upper lid, on a larger shell, overlaps)

PARTS = {  # name: (linear RGBA base colour, roughness)
    "skin": ((*SKIN_RGB, 1.0), 0.55),
    "brows": ((*HAIR_RGB, 1.0), 0.7),
    "hair": ((*HAIR_RGB, 1.0), 0.45),
    "sclera": ((0.92, 0.90, 0.87, 1.0), 0.2),
    "iris": ((*IRIS_RGB, 1.0), 0.15),
    "pupil": ((0.006, 0.006, 0.008, 1.0), 0.1),
    "teeth": ((0.93, 0.91, 0.84, 1.0), 0.3),
    "tongue": ((0.62, 0.20, 0.20, 1.0), 0.45),
    "mouth": ((0.13, 0.028, 0.028, 1.0), 0.9),
    "shirt": ((0.035, 0.075, 0.14, 1.0), 0.8),
}
PART_NAMES = tuple(PARTS)
_JAW_DRIVEN = frozenset({"jawOpen", "jawForward", "jawLeft", "tongueOut"})  # the cavity moves with the jaw


def _smooth(e0: float, e1: float, x):
    t = np.clip((np.asarray(x, float) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def mirror_map(positions: np.ndarray, tags: np.ndarray | None = None, tol: float = 1e-6) -> np.ndarray:
    """Index of each vertex's mirror twin (x → −x), matching ``tags`` too (e.g. coincident lip twins)."""
    key = np.asarray(positions, np.float64)
    mirrored = key * [-1, 1, 1]
    if tags is not None:
        extra = np.asarray(tags, np.float64).reshape(len(key), -1)
        key, mirrored = np.hstack([key, extra]), np.hstack([mirrored, extra])
    dist, idx = cKDTree(key).query(mirrored)
    if dist.max() > tol:
        raise ValueError(f"mesh is not mirror symmetric: a vertex is {dist.max():.2e} m from its twin")
    return idx


def _rot_x(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


class _Author:
    """The fields the targets are built from, over one sculpted mesh."""

    def __init__(self, sc, info, lm: Landmarks) -> None:
        self.sc, self.lm, self.skin_z = sc, lm, info["skin_z"]
        self.centres = info["centres"]
        p = sc.positions
        self.p, self.x, self.y, self.z = p, p[:, 0], p[:, 1], p[:, 2]
        k = sc.kind
        self.soft = np.isin(k, (Kind.SKIN, Kind.BAG, Kind.BROW, Kind.LID_UP, Kind.LID_LOW)).astype(float)
        # cavity vertices fade out with depth behind the lips for the lip shapes
        self.fade = np.where(k == Kind.BAG, np.clip(1 - 1.8 * sc.depth, 0, 1), 1.0)
        # lids follow the skin only where they merge into it (far from the margin)
        self.fade = np.where(np.isin(k, (Kind.LID_UP, Kind.LID_LOW)), sc.lid_s, self.fade) * self.soft
        self.left = _smooth(-0.004, 0.004, self.x)
        self.left_wide = _smooth(-0.005, 0.012, self.x)
        self.jaw = self._jaw_weights()

    def gauss(self, cx: float, cy: float, sx: float, sy: float, *, absx: bool = False) -> np.ndarray:
        x = np.abs(self.x) if absx else self.x
        return np.exp(-((x - cx) / sx) ** 2 - ((self.y - cy) / sy) ** 2)

    def _jaw_weights(self) -> np.ndarray:
        """0..1 jaw share of each vertex: a smooth ramp across the seam's line on the cheeks (no
        kink, so no crease when the jaw moves), and upper lip 0 / lower lip 1 between the corners."""
        sc, lm = self.sc, self.lm
        ax = np.abs(self.x)
        # the ramp's half-height grows from the corners out to the cheeks and the jaw's angle
        h = 0.005 + 0.022 * _smooth(0.5 * lm.corner_x, 2.2 * lm.corner_x, ax)
        ramp = _smooth(-1.0, 1.0, (lm.seam_y - self.y) / h)
        inside = 1 - _smooth(0.55 * lm.corner_x, 1.05 * lm.corner_x, ax)  # between the corners
        w = np.where(sc.lip < 0, inside + (1 - inside) * ramp, (1 - inside) * ramp)
        w *= _smooth(-0.06, 0.0, self.z) * _smooth(-0.13, -0.085, self.y)
        w = np.where(sc.kind == Kind.SKIN, w, 0.0)
        w = np.where(sc.kind == Kind.BAG, sc.jaw, w)
        w = np.where(np.isin(sc.kind, (Kind.TEETH_LOW, Kind.TONGUE)), 1.0, w)
        return w

    def jaw_rotation(self, deg: float, weight: np.ndarray | None = None) -> np.ndarray:
        hinge = np.array(self.lm.jaw_hinge)
        moved = (self.p - hinge) @ _rot_x(deg).T + hinge - self.p
        return moved * (self.jaw if weight is None else weight)[:, None]

    def lip_masks(self) -> tuple[np.ndarray, np.ndarray]:
        seam = self.lm.seam_y
        up = (self.sc.lip > 0) * np.exp(-(self.x / 0.026) ** 2 - ((self.y - seam) / 0.009) ** 2)
        low = (self.sc.lip < 0) * np.exp(-(self.x / 0.026) ** 2 - ((self.y - seam) / 0.011) ** 2)
        return up * self.fade, low * self.fade

    def lids(self, which: int, *, upper: float = 0.0, lower: float = 0.0, close_upper: float | None = None,
             close_lower: float | None = None, az_deg: float = 0.0) -> np.ndarray:
        """Lid motion of one eye: margins raised by ``upper``/``lower`` degrees (or moved to the
        ``close_*`` elevations), the shells turned by ``az_deg`` about the eye's vertical axis."""
        sc = self.sc
        out = np.zeros_like(self.p)
        centre = self.centres[which - 1]
        side = 1 if which == 1 else -1
        for kind, shift, close, far in ((Kind.LID_UP, upper, close_upper, 75.0), (Kind.LID_LOW, lower, close_lower, -68.0)):
            sel = np.nonzero((sc.kind == kind) & (sc.eye == which))[0]
            az, s = sc.lid_az[sel], sc.lid_s[sel]
            margin = np.radians(lid_margin_deg(az * side, kind == Kind.LID_UP))
            if close is not None:
                new_margin = np.minimum(margin, np.radians(close)) if kind == Kind.LID_UP \
                    else np.maximum(margin, np.radians(close))
            else:
                new_margin = margin + np.radians(shift) * np.cos(0.5 * np.pi * np.clip(np.abs(az) / np.radians(80), 0, 1))
            far_r = np.radians(far)
            el = new_margin + s * (far_r - new_margin)
            moved = lid_point(centre, az + side * np.radians(az_deg) * (1 - s), el, sc.lid_r[sel], s, self.skin_z)
            out[sel] = moved - self.p[sel]
        return out


def _left_shapes(a: _Author) -> dict[str, np.ndarray]:
    lm, seam = a.lm, a.lm.seam_y
    L, Lw = a.left, a.left_wide
    up, low = a.lip_masks()
    corner = a.gauss(lm.corner_x, seam + 0.001, 0.013, 0.012) * L * a.fade
    corner_narrow = a.gauss(lm.corner_x + 0.001, seam, 0.008, 0.007) * L * a.fade
    cheek = a.gauss(lm.cheek[0], lm.cheek[1], 0.017, 0.015) * L * a.soft
    lips = np.exp(-(a.x / 0.026) ** 2 - ((a.y - seam) / 0.008) ** 2) * a.fade
    brow = a.gauss(0.032, lm.brow_y, 0.024, 0.012) * L * a.soft
    v = np.array
    s: dict[str, np.ndarray] = {}
    s["mouthSmileLeft"] = corner[:, None] * v([0.006, 0.008, -0.004]) + cheek[:, None] * v([0.001, 0.003, 0.0015])
    s["mouthFrownLeft"] = corner[:, None] * v([0.001, -0.0075, -0.001]) + (low * Lw)[:, None] * v([0, -0.0012, 0])
    s["mouthDimpleLeft"] = corner_narrow[:, None] * v([0.003, 0.0005, -0.005])
    s["mouthStretchLeft"] = corner[:, None] * v([0.0075, -0.0045, -0.003]) + (low * Lw)[:, None] * v([0.001, -0.002, 0])
    press = lips * L * a.soft
    s["mouthPressLeft"] = np.stack([0.0015 * press, -0.6 * (a.y - seam) * press, -0.0022 * press], -1)
    s["mouthLowerDownLeft"] = (low * Lw)[:, None] * v([0.0, -0.0065, 0.0012])
    s["mouthUpperUpLeft"] = (up * Lw)[:, None] * v([0.0, 0.006, 0.0012])
    s["browDownLeft"] = brow[:, None] * v([-0.003, -0.005, 0.001])
    s["browOuterUpLeft"] = (a.gauss(0.046, lm.brow_y - 0.002, 0.014, 0.013) * L * a.soft)[:, None] * v([0.0, 0.006, 0.0])
    s["cheekSquintLeft"] = (a.gauss(lm.cheek[0], lm.cheek[1] + 0.010, 0.016, 0.013) * L * a.soft)[:, None] \
        * v([0.0, 0.004, 0.0015]) + a.lids(1, lower=6.0)
    s["noseSneerLeft"] = (a.gauss(0.011, -0.008, 0.008, 0.012) * L * a.soft)[:, None] * v([0.0, 0.0035, 0.0008]) \
        + (a.gauss(0.016, lm.brow_y, 0.012, 0.01) * L * a.soft)[:, None] * v([-0.001, -0.002, 0])
    s["eyeBlinkLeft"] = a.lids(1, close_upper=BLINK_UPPER_DEG, close_lower=BLINK_LOWER_DEG)
    s["eyeSquintLeft"] = a.lids(1, upper=-7.0, close_lower=-14.0) \
        + (a.gauss(lm.eye_x, lm.eye_y - 0.02, 0.016, 0.008) * L * a.soft)[:, None] * v([0.0, 0.002, 0.001])
    s["eyeWideLeft"] = a.lids(1, upper=14.0, lower=-5.0) + brow[:, None] * v([0.0, 0.0015, 0.0])
    s["eyeLookUpLeft"] = a.lids(1, upper=7.0, lower=4.0)
    s["eyeLookDownLeft"] = a.lids(1, upper=-12.0, lower=-4.0)
    s["eyeLookInLeft"] = a.lids(1, az_deg=-8.0)
    s["eyeLookOutLeft"] = a.lids(1, az_deg=8.0)
    return s


def _middle_shapes(a: _Author) -> dict[str, np.ndarray]:
    lm, seam = a.lm, a.lm.seam_y
    up, low = a.lip_masks()
    v = np.array
    s: dict[str, np.ndarray] = {}
    s["jawOpen"] = a.jaw_rotation(JAW_OPEN_DEG)
    s["jawForward"] = a.jaw[:, None] * v([0.0, 0.0, 0.007])
    s["jawLeft"] = a.jaw[:, None] * v([0.007, 0.0, 0.0])
    # mouthClose (with jawOpen) brings both lips to half the jaw's travel, where they meet; the
    # field (½ − jaw share) is continuous off the lips, so the cheeks carry no crease
    full = a.jaw_rotation(JAW_OPEN_DEG, np.ones(len(a.p)))
    near = np.exp(-(a.x / 0.032) ** 4 - ((a.y - seam) / 0.014) ** 2) * a.fade
    s["mouthClose"] = full * ((0.5 - a.jaw) * near)[:, None]
    lips = np.exp(-(a.x / 0.028) ** 2 - ((a.y - seam) / 0.013) ** 2) * a.fade
    side = np.sign(a.sc.lip)
    s["mouthFunnel"] = np.stack([-0.30 * a.x * lips, 0.0028 * side * lips, 0.007 * lips], -1)
    s["mouthPucker"] = np.stack([-0.42 * a.x * lips, -0.0006 * side * lips, 0.009 * lips], -1)
    mouth = np.exp(-(a.x / 0.032) ** 2 - ((a.y - seam) / 0.016) ** 2) * a.fade
    s["mouthLeft"] = np.stack([0.008 * mouth, 0 * mouth, -0.0015 * mouth * np.tanh(a.x / 0.02)], -1)
    roll_low = (a.sc.lip < 0) * np.exp(-(a.x / 0.024) ** 2 - ((a.y - seam) / 0.006) ** 2) * a.fade
    roll_up = (a.sc.lip > 0) * np.exp(-(a.x / 0.024) ** 2 - ((a.y - seam) / 0.005) ** 2) * a.fade
    s["mouthRollLower"] = roll_low[:, None] * v([0.0, 0.0018, -0.0045])
    s["mouthRollUpper"] = roll_up[:, None] * v([0.0, -0.0018, -0.004])
    shrug_low = (a.sc.lip < 0) * np.exp(-(a.x / 0.03) ** 2 - ((a.y - seam + 0.012) / 0.02) ** 2) * a.fade
    s["mouthShrugLower"] = shrug_low[:, None] * v([0.0, 0.0045, 0.002])
    shrug_up = (a.sc.lip > 0) * np.exp(-(a.x / 0.028) ** 2 - ((a.y - seam - 0.004) / 0.01) ** 2) * a.fade
    s["mouthShrugUpper"] = shrug_up[:, None] * v([0.0, 0.003, 0.0015])
    inner = a.gauss(0.016, lm.brow_y, 0.013, 0.013, absx=True) * a.soft
    s["browInnerUp"] = inner[:, None] * v([0.0, 0.007, 0.0]) + (inner * -np.tanh(a.x / 0.005) * 0.0008)[:, None] * v([1, 0, 0])
    puff = a.gauss(0.037, seam + 0.012, 0.017, 0.018, absx=True) * a.soft * (a.sc.kind != Kind.BAG)
    out = a.p - np.array([0.0, a.p[:, 1].mean(), lm.head_center[2]])
    out[:, 1] = 0
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    s["cheekPuff"] = puff[:, None] * out * 0.008
    tongue = a.sc.kind == Kind.TONGUE
    t = np.where(tongue, a.sc.depth, 0.0)
    s["tongueOut"] = np.stack([-0.25 * a.x * t, -0.002 * tongue - 0.004 * t, 0.004 * tongue + 0.026 * t ** 1.3], -1) \
        + up[:, None] * v([0, 0.002, 0.001]) + low[:, None] * v([0, -0.0035, 0.001]) \
        + a.jaw_rotation(JAW_OPEN_DEG * 0.2) * (~tongue)[:, None]
    return s


@functools.lru_cache(maxsize=1)
def default_avatar() -> AvatarMesh:
    """The default head (built once per process, about a third of a second)."""
    return build_default_avatar()


def build_default_avatar(lm: Landmarks = LANDMARKS) -> AvatarMesh:
    """Sculpt the head and author its 52 targets."""
    sc, info = sculpt(lm)
    author = _Author(sc, info, lm)
    mirror = mirror_map(sc.positions, np.c_[sc.kind, sc.lip])
    flip = np.array([-1.0, 1.0, 1.0])
    targets: dict[str, np.ndarray] = {}
    bag = np.nonzero(sc.kind == Kind.BAG)[0]
    bag = bag[sc.src[bag] >= 0]
    follow = (1 - 0.6 * sc.depth[bag])[:, None]
    shapes = {**_middle_shapes(author), **_left_shapes(author)}
    for name, delta in shapes.items():
        if name not in _JAW_DRIVEN:  # the cavity behind the lips goes where the lips go
            delta[bag] = delta[sc.src[bag]] * follow
        targets[name] = delta
        if name.endswith("Left"):
            targets[arkit.MIRROR[name]] = delta[mirror] * flip
    # the two-sided ones that are motions towards a side
    targets["jawRight"] = targets["jawLeft"][mirror] * flip
    targets["mouthRight"] = targets["mouthLeft"][mirror] * flip
    for delta in targets.values():  # the fields' far tails: exactly still, so sparse storage stays small
        delta[np.linalg.norm(delta, axis=1) < 2e-6] = 0.0
    targets = {name: targets[name].astype(np.float32) for name in arkit.NAMES}

    parts = []
    all_tri = []
    for name in PART_NAMES:
        tri = np.concatenate(sc.parts[name])
        all_tri.append(tri)
        colour, rough = PARTS[name]
        parts.append(Part(name, tri, colour, rough))
    normals = _normals(sc.positions, np.concatenate(all_tri))
    colors = np.c_[np.clip(sc.colors, 0, 1), np.ones(len(sc.positions))]
    head_weight = np.where(sc.kind == Kind.NECK, _smooth(-0.11, -0.05, sc.positions[:, 1]), 1.0)
    eyes = tuple(np.nonzero((sc.kind == Kind.EYE) & (sc.eye == which))[0] for which in (1, 2))
    return AvatarMesh(
        name="facewire default",
        positions=sc.positions,
        normals=normals,
        parts=tuple(parts),
        morph_targets=targets,
        colors=colors,
        head_pivot=(0.0, -0.065, -0.02),
        head_weight=head_weight,
        eye_centers=info["centres"],
        eye_vertices=eyes,
    )


def _normals(pos: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = pos[tri[:, 0]], pos[tri[:, 1]], pos[tri[:, 2]]
    face = np.cross(b - a, c - a)
    n = np.zeros_like(pos)
    for k in range(3):
        np.add.at(n, tri[:, k], face)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(length > 1e-20, n / np.maximum(length, 1e-20), [0.0, 0.0, 1.0])
