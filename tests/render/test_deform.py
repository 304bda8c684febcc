"""Posing an avatar on the CPU: morph targets with their normals, gaze about the eye centres, head
pose about the pivot, in the frame's own rotation convention."""

from __future__ import annotations

import numpy as np
import pytest

from facewire import arkit
from facewire.frame import FaceFrame, Gaze, HeadPose, euler_to_quaternion
from facewire.render.deform import Deformer, rotation_matrix, vertex_normals
from facewire.render.mesh import AvatarMesh, Part
from facewire.render.probe import probe_head


def _quat_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _weights(**named: float) -> np.ndarray:
    w = np.zeros(arkit.COUNT, np.float32)
    for name, value in named.items():
        w[arkit.INDEX[name]] = value
    return w


@pytest.mark.parametrize("angles", [(30, 0, 0), (0, 20, 0), (0, 0, -15), (25, -10, 12)])
def test_rotation_matches_the_frames_quaternion(angles):
    np.testing.assert_allclose(rotation_matrix(*angles), _quat_matrix(*euler_to_quaternion(*angles)), atol=1e-6)


def test_rotation_signs_follow_the_frame_conventions():
    nose = np.array([0.0, 0.0, 1.0])
    assert (rotation_matrix(30, 0, 0) @ nose)[0] > 0.4  # +yaw: nose towards +X, the image's right
    assert (rotation_matrix(0, 30, 0) @ nose)[1] > 0.4  # +pitch: nose up
    top = np.array([0.0, 1.0, 0.0])
    assert (rotation_matrix(0, 0, 30) @ top)[0] < -0.4  # +roll: counter-clockwise as the viewer sees it


def _plane() -> AvatarMesh:
    """A 3×3-vertex square in the XY plane facing +Z, one target tilting it about the Y axis by 45°."""
    xs, ys = np.meshgrid([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0])
    pos = np.stack([xs.ravel(), ys.ravel(), np.zeros(9)], axis=1)
    tris = []
    for r in range(2):
        for c in range(2):
            a = r * 3 + c
            tris += [(a, a + 1, a + 3), (a + 1, a + 4, a + 3)]
    tilt = np.zeros_like(pos)
    tilt[:, 2] = -pos[:, 0]  # z = -x: the plane turns to face (+X+Z)/√2
    normals = np.tile([0.0, 0.0, 1.0], (9, 1))
    return AvatarMesh("plane", pos, normals, (Part("skin", np.array(tris)),), {"jawOpen": tilt},
                      head_pivot=(0.0, 0.0, -1.0), head_weight=np.array([1, 1, 1, 1, 1, 1, 0, 0, 0], np.float32))


def test_vertex_normals_of_a_flat_square_face_forwards():
    m = _plane()
    n = vertex_normals(m.positions, np.concatenate([p.indices for p in m.parts]).astype(np.intp))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    np.testing.assert_allclose(n, np.tile([0, 0, 1], (9, 1)), atol=1e-9)


def test_morph_moves_positions_and_turns_normals():
    m = _plane()
    d = Deformer(m)
    posed = d.pose(FaceFrame(0, weights=_weights(jawOpen=1.0)))
    np.testing.assert_allclose(posed.positions, m.positions + m.morph_targets["jawOpen"], atol=1e-6)
    np.testing.assert_allclose(posed.normals, np.tile([1 / np.sqrt(2), 0, 1 / np.sqrt(2)], (9, 1)), atol=1e-5)
    half = d.pose(FaceFrame(0, weights=_weights(jawOpen=0.5)))
    np.testing.assert_allclose(half.positions, m.positions + 0.5 * m.morph_targets["jawOpen"], atol=1e-6)
    assert np.allclose(np.linalg.norm(half.normals, axis=1), 1.0, atol=1e-5)


def test_morph_into_reports_the_range_it_changed():
    head = probe_head()
    d = Deformer(head)
    buf = d.neutral()
    lo, hi = d.morph_into(_weights(jawOpen=1.0, eyeBlinkLeft=1.0), buf)
    changed = np.flatnonzero(np.any(buf != d.neutral(), axis=1))
    assert len(changed) > 0 and lo <= changed.min() and changed.max() < hi
    # weights of shapes this avatar lacks are ignored, not an error
    assert "cheekPuff" not in head.morph_targets
    buf2 = d.neutral()
    d.morph_into(_weights(cheekPuff=1.0), buf2)
    np.testing.assert_array_equal(buf2, d.neutral())


def test_head_pose_rotates_about_the_pivot_by_head_weight():
    m = _plane()
    posed = Deformer(m).pose(FaceFrame(0, head=HeadPose(yaw_deg=90)))
    pivot = np.array(m.head_pivot)
    rot = rotation_matrix(90, 0, 0)
    full = (m.positions[:6] - pivot) @ rot.T + pivot
    np.testing.assert_allclose(posed.positions[:6], full, atol=1e-6)
    np.testing.assert_allclose(posed.positions[6:], m.positions[6:], atol=1e-7)  # weight 0: the neck stays
    np.testing.assert_allclose(posed.normals[:6], np.tile([1, 0, 0], (6, 1)), atol=1e-6)


def test_gaze_turns_each_eye_about_its_own_centre():
    head = probe_head()
    d = Deformer(head)
    left, right = (np.asarray(v, np.intp) for v in head.eye_vertices)
    c_left = np.array(head.eye_centers[0])
    neutral = d.pose(FaceFrame(0))
    looked = d.pose(FaceFrame(0, gaze=Gaze(left_yaw_deg=25, left_pitch_deg=10)))
    # distances to the centre are kept, the pupil (front-most vertex) moves towards +X and up
    np.testing.assert_allclose(np.linalg.norm(looked.positions[left] - c_left, axis=1),
                               np.linalg.norm(neutral.positions[left] - c_left, axis=1), atol=1e-6)
    front = left[np.argmax(neutral.positions[left, 2])]
    assert looked.positions[front, 0] > neutral.positions[front, 0] + 0.003
    assert looked.positions[front, 1] > neutral.positions[front, 1] + 0.001
    np.testing.assert_array_equal(looked.positions[right], neutral.positions[right])  # the right eye did not move
