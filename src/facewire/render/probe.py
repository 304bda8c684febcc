"""A small procedural head for tests and benchmarks of the renderer when no authored avatar is at hand:
an ellipsoid skull on a neck, two eyeballs with iris and pupil, upper lids that blink, and a mouth
that opens. Only a handful of ARKit targets (jawOpen, eyeBlinkLeft/Right, mouthSmileLeft/Right,
browInnerUp) exist; the rest are missing, which the renderer must tolerate.
"""

from __future__ import annotations

import numpy as np

from .deform import vertex_normals
from .mesh import AvatarMesh, Part

__all__ = ["probe_head"]

SKIN = (0.62, 0.38, 0.28, 1.0)  # linear RGB of a warm mid skin tone
LID_OPEN_DEG = 45.0  # the open lid's front edge, from straight up
LID_CLOSE_DEG = 95.0  # how far a full blink swings it: past the iris's lower edge


def _grid(rings: int, segments: int, theta0: float, theta1: float):
    """Vertices and triangles of a (rings+1)×(segments) lat-long grid, polar angle theta0..theta1.

    Returns unit directions (+Y at theta=0, longitude 0 = +Z, towards +X) and CCW-outward triangles.
    """
    theta = np.linspace(theta0, theta1, rings + 1)
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1).reshape(-1, 3)
    tris = []
    for r in range(rings):
        for s in range(segments):
            a, b = r * segments + s, r * segments + (s + 1) % segments
            c, d = a + segments, b + segments
            tris += [(a, c, b), (b, c, d)]
    return dirs, np.array(tris, np.int64)


def _rot_x(deg: float) -> np.ndarray:
    a = np.radians(deg)  # +deg turns +Y towards +Z
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _sphere(radius: float, rings: int, segments: int, theta1: float = np.pi, tilt_deg: float = 0.0):
    """A sphere (or a cap down to polar angle ``theta1``) about the origin, its pole tilted about X."""
    dirs, tris = _grid(rings, segments, 0.0, theta1)
    return radius * dirs @ _rot_x(tilt_deg).T, tris


def probe_head(detail: int = 1) -> AvatarMesh:
    """The probe avatar; ``detail`` scales the tessellation (1 ≈ 10k triangles)."""
    rings, segs = 44 * detail, 64 * detail
    chunks: list[tuple[str, np.ndarray, np.ndarray]] = []  # (part, positions, triangles local)

    # skull: an ellipsoid, a little narrower at the jaw
    dirs, tris = _grid(rings, segs, 0.0, np.pi)
    skull = dirs * np.array([0.078, 0.105, 0.092])
    skull[:, 0] *= 1 - 0.18 * np.clip(-dirs[:, 1], 0, 1)  # taper the jaw
    skull[:, 2] += 0.012 * np.clip(dirs[:, 2], 0, 1) ** 4  # a hint of a face plane forwards
    nose = np.exp(-((dirs[:, 0] / 0.10) ** 2 + ((dirs[:, 1] + 0.05) / 0.16) ** 2)) * np.clip(dirs[:, 2], 0, 1)
    skull[:, 2] += 0.022 * nose
    chunks.append(("skin", skull, tris))

    # neck: an open cylinder under the skull
    n_ring, n_seg = 8, 32
    phi = np.linspace(0, 2 * np.pi, n_seg, endpoint=False)
    ys = np.linspace(-0.19, -0.06, n_ring + 1)
    neck = np.stack([np.stack([0.048 * np.sin(phi), np.full(n_seg, y), 0.048 * np.cos(phi) - 0.012], -1) for y in ys]).reshape(-1, 3)
    ntris = []
    for r in range(n_ring):
        for s in range(n_seg):
            a, b = r * n_seg + s, r * n_seg + (s + 1) % n_seg
            ntris += [(a, b, a + n_seg), (b, b + n_seg, a + n_seg)]
    chunks.append(("skin", neck, np.array(ntris)))

    # mouth: a dark lens just in front of the lips, opened by jawOpen
    mouth_c = np.array([0.0, -0.052, 0.0])
    mdirs, mtris = _grid(8, 32, 0.0, np.pi)
    mouth = mdirs * np.array([0.026, 0.004, 0.006]) + mouth_c  # z is set below from the skull surface
    chunks.append(("mouth_interior", mouth, mtris))

    eye_centers = ((0.031, 0.018, 0.0), (-0.031, 0.018, 0.0))
    eye_r = 0.0125
    for side, c in enumerate(eye_centers):
        # the eye sits in the skull's front surface: its centre a little behind it
        pos, t = _sphere(eye_r, 18, 32, tilt_deg=90.0)  # pole forwards: the pupil
        chunks.append((f"eye{side}", pos + c, t))
        # the upper lid: a hemisphere shell tipped back so that its front edge rests above the iris
        lid, lt = _sphere(eye_r * 1.12, 10, 32, np.pi / 2, tilt_deg=-LID_OPEN_DEG)
        chunks.append((f"lid{side}", lid + c, lt))

    # place the face features on the skull's front surface
    def surface_z(x: float, y: float) -> float:
        i = np.argmin((skull[:, 0] - x) ** 2 + (skull[:, 1] - y) ** 2 + 1e3 * (skull[:, 2] < 0))
        return float(skull[i, 2])

    positions, parts_tris, names = [], [], []
    offset = 0
    for name, pos, t in chunks:
        pos = pos.copy()
        if name == "mouth_interior":
            pos[:, 2] += surface_z(0.0, mouth_c[1]) - 0.0045
        elif name.startswith(("eye", "lid")):
            side = int(name[-1])
            cx, cy, _ = eye_centers[side]
            pos[:, 2] += surface_z(cx, cy) - eye_r * 0.55
        positions.append(pos)
        parts_tris.append(t + offset)
        names.append(name)
        offset += len(pos)
    allpos = np.concatenate(positions)
    eye_c = []
    for side, (cx, cy, _) in enumerate(eye_centers):
        eye_c.append((cx, cy, surface_z(cx, cy) - eye_r * 0.55))

    starts = np.cumsum([0] + [len(p) for p in positions])
    span = {name: np.arange(starts[i], starts[i + 1]) for i, name in enumerate(names) if name not in ("skin",)}
    skull_idx = np.arange(starts[0], starts[1])
    neck_idx = np.arange(starts[1], starts[2])

    # eyes: iris and pupil by the angle from the eye's forward axis
    parts = []
    n = len(allpos)
    colors = np.ones((n, 4), np.float32)
    eye_vertices = []
    for side in (0, 1):
        idx = span[f"eye{side}"]
        d = allpos[idx] - np.asarray(eye_c[side])
        cos_fwd = d[:, 2] / eye_r
        iris = cos_fwd > 0.82
        pupil = cos_fwd > 0.95
        colors[idx[iris]] = (0.10, 0.22, 0.30, 1.0)
        colors[idx[pupil]] = (0.01, 0.01, 0.012, 1.0)
        eye_vertices.append(idx.astype(np.uint32))

    tri_skin = np.concatenate([parts_tris[0], parts_tris[1]])
    tri_eyes = np.concatenate([parts_tris[names.index("eye0")], parts_tris[names.index("eye1")]])
    tri_lids = np.concatenate([parts_tris[names.index("lid0")], parts_tris[names.index("lid1")]])
    parts = [
        Part("skin", tri_skin, SKIN, roughness=0.55),
        Part("eye_white", tri_eyes, (0.85, 0.83, 0.80, 1.0), roughness=0.08),
        Part("eyelid_skin", tri_lids, SKIN, roughness=0.55),
        Part("mouth_interior", parts_tris[names.index("mouth_interior")], (0.25, 0.04, 0.05, 1.0), roughness=0.4),
    ]

    # morph targets
    targets: dict[str, np.ndarray] = {}
    jaw = np.zeros((n, 3))
    lower = skull_idx[(allpos[skull_idx, 1] < -0.05) & (allpos[skull_idx, 2] > -0.02)]
    fall = np.clip((-0.05 - allpos[lower, 1]) / 0.03, 0, 1)
    jaw[lower, 1] -= 0.022 * fall
    mi = span["mouth_interior"]
    below = allpos[mi, 1] < -0.052
    jaw[mi[below], 1] -= 0.016
    jaw[mi[~below], 1] += 0.004
    targets["jawOpen"] = jaw

    for side, name in ((0, "eyeBlinkLeft"), (1, "eyeBlinkRight")):
        idx = span[f"lid{side}"]
        c = np.asarray(eye_c[side])
        d = allpos[idx] - c
        closed = d @ _rot_x(LID_CLOSE_DEG).T  # the lid swings forwards and down over the eye
        delta = np.zeros((n, 3))
        delta[idx] = closed - d
        targets[name] = delta

    for sign, name in ((1, "mouthSmileLeft"), (-1, "mouthSmileRight")):
        delta = np.zeros((n, 3))
        corner = np.array([sign * 0.026, -0.052])
        dist = np.hypot(allpos[skull_idx, 0] - corner[0], allpos[skull_idx, 1] - corner[1])
        w = np.exp(-(dist / 0.014) ** 2) * (allpos[skull_idx, 2] > 0)
        delta[skull_idx, 0] += sign * 0.005 * w
        delta[skull_idx, 1] += 0.008 * w
        md = np.hypot(allpos[mi, 0] - corner[0], allpos[mi, 1] - corner[1])
        wm = np.exp(-(md / 0.02) ** 2)
        delta[mi, 0] += sign * 0.005 * wm
        delta[mi, 1] += 0.008 * wm
        targets[name] = delta

    brow = np.zeros((n, 3))
    bd = np.hypot(allpos[skull_idx, 0] / 0.03, (allpos[skull_idx, 1] - 0.042) / 0.014)
    brow[skull_idx, 1] += 0.006 * np.exp(-bd ** 2) * (allpos[skull_idx, 2] > 0)
    targets["browInnerUp"] = brow

    head_weight = np.ones(n, np.float32)
    head_weight[neck_idx] = np.clip((allpos[neck_idx, 1] + 0.17) / 0.11, 0, 1) ** 2

    all_tris = np.concatenate([p.indices for p in parts]).astype(np.int64)
    normals = vertex_normals(allpos, all_tris)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return AvatarMesh(
        name="probe",
        positions=allpos.astype(np.float32),
        normals=normals.astype(np.float32),
        parts=tuple(parts),
        morph_targets={k: v.astype(np.float32) for k, v in targets.items()},
        colors=colors,
        head_pivot=(0.0, -0.09, -0.01),
        head_weight=head_weight,
        eye_centers=(tuple(eye_c[0]), tuple(eye_c[1])),
        eye_vertices=(eye_vertices[0], eye_vertices[1]),
    )
