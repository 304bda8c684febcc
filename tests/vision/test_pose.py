"""Head pose and gaze: exact maths on synthetic points, and the behaviour on real, transformed faces.

Sign conventions as the code has them (camera frame x right, y up, z towards the viewer):
positive yaw turns the face towards +x (the viewer's right), positive pitch tilts it up, and
positive roll is a counter-clockwise turn of the face *as seen in the image*, i.e. what
``cv2.getRotationMatrix2D`` with a positive angle does to a picture: the top of the head moves
to the viewer's left (the subject's right shoulder).
"""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest

from facewire.media import open_input
from facewire.vision.pose import (
    PoseSolver,
    canonical_face,
    euler_to_rotation,
    rotation_to_euler,
    umeyama,
)
from facewire.vision.tracker import LandmarkTracker
from facewire.vision.video import VideoTracker

GRID_CLIPS = ("bbaf2n", "brbk7n", "lbax4n", "lbbc2a", "lrwp9a", "lwbsza")
ASTRONAUT_FACE_CENTRE = (222.0, 130.0)  # between the eyes and the mouth, by eye
ANGLE_TOLERANCE_DEG = 3.0


def about_face(img: np.ndarray, angle_deg: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """The astronaut turned by ``angle_deg`` (cv2: positive = counter-clockwise on screen) and scaled
    about her face centre, which lands in the middle of a 512² canvas (so the face never leaves it)."""
    m = cv2.getRotationMatrix2D(ASTRONAUT_FACE_CENTRE, angle_deg, scale)
    m[:, 2] += (256 - ASTRONAUT_FACE_CENTRE[0], 256 - ASTRONAUT_FACE_CENTRE[1])
    return cv2.warpAffine(img, m, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def head_pose(models, rgb: np.ndarray):
    """Head pose of the one face in a still image, from a fresh tracker after the region has settled."""
    tracker = LandmarkTracker(models)
    for _ in range(3):
        obs = tracker(rgb)
    assert len(obs) == 1, "no face tracked"
    return PoseSolver()(obs[0].landmarks, (rgb.shape[1], rgb.shape[0])).head


# -- exact maths ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_umeyama_recovers_a_similarity_exactly(seed):
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(40, 3)) * [5, 7, 3]
    r = euler_to_rotation(*rng.uniform(-80, 80, 3))
    s, t = rng.uniform(0.2, 5.0), rng.normal(size=3) * 20
    dst = s * src @ r.T + t
    s2, r2, t2 = umeyama(src, dst)
    assert s2 == pytest.approx(s, rel=1e-10)
    np.testing.assert_allclose(r2, r, atol=1e-10)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    assert np.linalg.det(r2) == pytest.approx(1.0)


def test_umeyama_never_returns_a_reflection():
    rng = np.random.default_rng(7)
    src = rng.normal(size=(30, 3))
    dst = src * [-1.0, 1.0, 1.0]  # a mirror image: the best proper rotation, never det -1
    _, r, _ = umeyama(src, dst)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)


@pytest.mark.parametrize(
    "yaw,pitch,roll",
    list(itertools.product(
        (-170.0, -60.0, -5.0, 0.0, 30.0, 120.0),  # yaw
        (-80.0, -30.0, 0.0, 15.0, 60.0),  # pitch (|pitch| < 90: no gimbal lock)
        (-150.0, -45.0, 0.0, 10.0, 90.0, 179.0),  # roll
    )),
)
def test_euler_round_trip(yaw, pitch, roll):
    r = euler_to_rotation(yaw, pitch, roll)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    assert rotation_to_euler(r) == pytest.approx((yaw, pitch, roll), abs=1e-9)


def test_euler_signs():
    forward, up = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    assert (euler_to_rotation(20, 0, 0) @ forward)[0] > 0.3  # yaw + → face turns to +x
    assert (euler_to_rotation(0, 20, 0) @ forward)[1] > 0.3  # pitch + → face tilts up
    assert (euler_to_rotation(0, 0, 20) @ up)[0] < -0.3  # roll + → top of the head to -x (CCW)


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (25, -10, 5), (-40, 20, -30), (10, 35, 60)])
def test_pose_solver_recovers_a_posed_canonical_face(yaw, pitch, roll):
    """The canonical face posed by hand and written in image coordinates (y down, z away) comes back exactly."""
    canon, _, _ = canonical_face()
    s, t = 4.0, np.array([320.0, -240.0, -50.0])  # camera frame; the image is 640×480
    cam = s * canon @ euler_to_rotation(yaw, pitch, roll).T + t
    landmarks = cam * [1.0, -1.0, -1.0]
    res = PoseSolver()(landmarks.astype(np.float32), (640, 480))
    assert (res.head.yaw_deg, res.head.pitch_deg, res.head.roll_deg) == pytest.approx((yaw, pitch, roll), abs=0.01)
    assert res.head.z == pytest.approx(640 / s, rel=1e-4)  # focal length = image width
    np.testing.assert_allclose(res.head_frame, canon, atol=1e-3)


# -- real faces: in-plane rotation, scale, mirror --------------------------------------------------
@pytest.fixture(scope="module")
def upright(models, astronaut):
    return head_pose(models, about_face(astronaut))


@pytest.mark.parametrize("theta", [-45, -30, -15, 15, 30, 45])
def test_in_plane_rotation_changes_roll_by_theta(models, astronaut, upright, theta):
    # cv2's positive angle turns the picture counter-clockwise on screen, which is positive roll
    head = head_pose(models, about_face(astronaut, theta))
    assert head.roll_deg - upright.roll_deg == pytest.approx(theta, abs=ANGLE_TOLERANCE_DEG)
    # yaw and pitch are not asserted: with the face pitched (-10° here) a turn about the camera axis
    # moves part of the pitch into yaw in this Euler order (≈ ±7° at 45°), which is correct maths.


@pytest.mark.parametrize("scale", [0.5, 0.75, 1.5, 2.0])
def test_scale_leaves_angles_alone(models, astronaut, scale):
    base = head_pose(models, astronaut)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    head = head_pose(models, cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=interp))
    for name in ("yaw_deg", "pitch_deg", "roll_deg"):
        assert abs(getattr(head, name) - getattr(base, name)) < ANGLE_TOLERANCE_DEG, name
    # distance follows the face size: half the face, twice as far (focal length = image width, which scales too)
    assert head.z == pytest.approx(base.z, rel=0.05)


@pytest.mark.parametrize("theta", [0, -20, 20])
def test_mirror_flips_yaw_and_roll(models, astronaut, theta):
    img = about_face(astronaut, theta) if theta else astronaut
    head = head_pose(models, img)
    mirrored = head_pose(models, np.ascontiguousarray(img[:, ::-1]))
    assert mirrored.yaw_deg == pytest.approx(-head.yaw_deg, abs=ANGLE_TOLERANCE_DEG)
    assert mirrored.roll_deg == pytest.approx(-head.roll_deg, abs=ANGLE_TOLERANCE_DEG)
    assert mirrored.pitch_deg == pytest.approx(head.pitch_deg, abs=ANGLE_TOLERANCE_DEG)
    if theta:
        assert math.copysign(1, head.roll_deg) == math.copysign(1, theta)


# -- gaze -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("clip", GRID_CLIPS)
def test_gaze_near_zero_when_looking_at_the_camera(models, shared_file, clip):
    """GRID speakers read to the camera: with eyes open (blinks excluded) gaze stays within 15°."""
    tracker = VideoTracker(models)
    with open_input(shared_file(f"data/video/grid/{clip}.mpg")) as source:
        frames = [f for f in tracker.frames(source) if f.tracked]
    assert len(frames) >= 74
    open_eyes = [f for f in frames if max(f.weight("eyeBlinkLeft"), f.weight("eyeBlinkRight")) < 0.5]
    assert len(open_eyes) >= 0.8 * len(frames)
    gaze = np.array([
        [f.gaze.left_yaw_deg, f.gaze.left_pitch_deg, f.gaze.right_yaw_deg, f.gaze.right_pitch_deg] for f in open_eyes
    ])
    within = (np.abs(gaze) < 15.0).all(axis=1)
    # a speaker's eyes do flick away now and then: nearly all frames, and the typical one, at the camera
    assert within.mean() >= 0.95, gaze[~within]
    assert (np.abs(np.median(gaze, axis=0)) < 10.0).all(), np.median(gaze, axis=0)
