"""Pose an `AvatarMesh` by a `FaceFrame`: morph targets, then gaze about the eye centres, then head
pose about the head pivot, as vectorised numpy (the renderer does the two rigid steps on the GPU).

Morph targets are blended in the neutral head's own frame (only the vertices some target moves are
touched). Normals follow the targets through per-target normal deltas computed once from the
triangles, so a morphed face is lit as its new shape. The rigid steps use the frame's conventions
(`facewire.frame.HeadPose`, `Gaze`): glTF axes coincide with the camera frame when the avatar faces
the camera, so ``R = Ry(yaw)·Rx(−pitch)·Rz(roll)`` applies unchanged. Head translation is not
applied: the renderer's camera frames the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame, Gaze, HeadPose
from .mesh import AvatarMesh

__all__ = [
    "LEFT_EYE",
    "NO_EYE",
    "RIGHT_EYE",
    "Deformer",
    "Posed",
    "eye_rotations",
    "head_rotation",
    "rotation_matrix",
    "vertex_normals",
]

NO_EYE, LEFT_EYE, RIGHT_EYE = 0, 1, 2  # values of `Deformer.eye_id`


def rotation_matrix(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """3×3 float32 R = Ry(yaw)·Rx(−pitch)·Rz(roll): +yaw turns +Z towards +X, +pitch turns +Z towards +Y."""
    y, p, r = np.radians([yaw_deg, -pitch_deg, roll_deg])
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return (ry @ rx @ rz).astype(np.float32)


def head_rotation(head: HeadPose) -> np.ndarray:
    """The head's rotation matrix (3×3 float32) in glTF axes."""
    return rotation_matrix(head.yaw_deg, head.pitch_deg, head.roll_deg)


def eye_rotations(gaze: Gaze) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) eyeball rotations: +yaw looks to the subject's left (+X), +pitch looks up."""
    return (rotation_matrix(gaze.left_yaw_deg, gaze.left_pitch_deg),
            rotation_matrix(gaze.right_yaw_deg, gaze.right_pitch_deg))


def vertex_normals(positions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (not normalised; zero for vertices in no triangle)."""
    p = positions.astype(np.float64)
    face = np.cross(p[triangles[:, 1]] - p[triangles[:, 0]], p[triangles[:, 2]] - p[triangles[:, 0]])
    n = len(positions)
    idx = triangles.ravel()
    out = np.empty((n, 3))
    for k in range(3):  # bincount is far faster than np.add.at
        out[:, k] = np.bincount(idx, weights=np.repeat(face[:, k], 3), minlength=n)
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(length > 0, length, 1)


@dataclass(frozen=True)
class Posed:
    """Vertex positions and unit normals (float32, N×3) of a posed avatar, glTF axes."""

    positions: np.ndarray
    normals: np.ndarray


class Deformer:
    """Blends an avatar's morph targets and applies head pose and gaze.

    ``morph_into(weights, out)`` writes morphed positions and normals into an interleaved (N, 6)
    buffer and returns the vertex range it changed, which is what the renderer uploads per frame;
    `pose` is the complete CPU path (morph, gaze, head) for callers that want vertices.
    """

    def __init__(self, avatar: AvatarMesh) -> None:
        self.avatar = avatar
        n = len(avatar.positions)
        self.vertex_count = n
        names = [name for name in arkit.NAMES if name in avatar.morph_targets]
        self.target_index = np.array([arkit.INDEX[name] for name in names], dtype=np.intp)
        triangles = (np.concatenate([p.indices for p in avatar.parts]) if avatar.parts
                     else np.zeros((0, 3), np.uint32)).astype(np.intp)
        base = avatar.positions
        deltas = np.stack([avatar.morph_targets[name] for name in names]) if names else np.zeros((0, n, 3), np.float32)
        moved = np.abs(deltas).max(axis=(0, 2)) > 0 if names else np.zeros(n, bool)
        # normals change on every vertex that shares a triangle with a moved one
        ring = moved.copy()
        if len(triangles):
            touched = moved[triangles].any(axis=1)
            ring[triangles[touched].ravel()] = True
        self.rows = np.flatnonzero(ring)
        base_n = vertex_normals(base, triangles) if len(triangles) else np.zeros((n, 3))
        base_unit = _unit(base_n)
        normal_deltas = np.zeros((len(names), len(self.rows), 3), np.float32)
        for k in range(len(names)):
            # only the triangles touching a moved vertex can change: recompute those alone
            d = deltas[k]
            if len(triangles) == 0:
                break
            sel = np.abs(d).max(axis=1) > 0
            if not sel.any():
                continue
            local = vertex_normals(base + d, triangles)
            normal_deltas[k] = (_unit(local) - base_unit)[self.rows]
        r = len(self.rows)
        self._dpos = np.ascontiguousarray(deltas[:, self.rows, :].reshape(len(names), r * 3))
        self._dnrm = np.ascontiguousarray(normal_deltas.reshape(len(names), r * 3))
        self._base = np.concatenate([base, avatar.normals], axis=1).astype(np.float32)  # (N, 6)
        self._base_rows = np.ascontiguousarray(self._base[self.rows])
        eye_id = np.zeros(n, np.float32)
        for value, verts in ((LEFT_EYE, avatar.eye_vertices[0]), (RIGHT_EYE, avatar.eye_vertices[1])):
            if len(verts) and int(verts.max()) >= n:
                raise InputError(f"eye_vertices: vertex {int(verts.max())} out of range, mesh has {n}")
            eye_id[verts] = value
        self.eye_id = eye_id
        self.head_weight = (avatar.head_weight if avatar.head_weight is not None else np.ones(n, np.float32))
        self.head_pivot = np.asarray(avatar.head_pivot, np.float32)
        self.eye_centers = np.asarray(avatar.eye_centers, np.float32)

    def neutral(self) -> np.ndarray:
        """A fresh interleaved (N, 6) buffer of neutral positions and normals."""
        return self._base.copy()

    def active_weights(self, weights: np.ndarray) -> np.ndarray:
        """The frame's weights of the targets this avatar has (in `target_index` order)."""
        return np.asarray(weights, np.float32)[self.target_index]

    def morph_into(self, weights: np.ndarray, out: np.ndarray) -> tuple[int, int]:
        """Write morphed positions+normals into ``out`` (N, 6); returns the changed range [lo, hi)."""
        if len(self.rows) == 0:
            return (0, 0)
        w = self.active_weights(weights)
        r = len(self.rows)
        rows = self._base_rows.copy()
        # einsum, not BLAS: OpenBLAS's worker threads spin after each call and starve the
        # rasteriser's threads (llvmpipe) on a small machine; one core does this in a fraction of a ms
        rows[:, :3] += np.einsum("k,kn->n", w, self._dpos).reshape(r, 3)
        rows[:, 3:] += np.einsum("k,kn->n", w, self._dnrm).reshape(r, 3)
        out[self.rows] = rows
        return int(self.rows[0]), int(self.rows[-1]) + 1

    def pose(self, frame: FaceFrame) -> Posed:
        """Positions and unit normals after morphs, gaze and head pose (all on the CPU)."""
        buf = self.neutral()
        self.morph_into(frame.weights, buf)
        pos, nrm = buf[:, :3].astype(np.float64), buf[:, 3:].astype(np.float64)
        for value, rot in zip((LEFT_EYE, RIGHT_EYE), eye_rotations(frame.gaze)):
            sel = self.eye_id == value
            c = self.eye_centers[value - 1].astype(np.float64)
            pos[sel] = (pos[sel] - c) @ rot.T.astype(np.float64) + c
            nrm[sel] = nrm[sel] @ rot.T.astype(np.float64)
        rot = head_rotation(frame.head).astype(np.float64)
        w = self.head_weight.astype(np.float64)[:, None]
        pivot = self.head_pivot.astype(np.float64)
        pos = pos + w * (((pos - pivot) @ rot.T + pivot) - pos)
        nrm = nrm + w * (nrm @ rot.T - nrm)
        return Posed(pos.astype(np.float32), _unit(nrm).astype(np.float32))
