"""BlazeFace detector (anchors, decoding, NMS) on real faces, and the rotated-ROI geometry it feeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facewire.vision.detector import Detection, FaceDetector, ssd_anchors
from facewire.vision.roi import Roi, crop, roi_from_points, rotation_from
from facewire.vision.tracker import LandmarkTracker

# Hand-marked on skimage.data.astronaut() (see test_tracker.py for how): both eyes' corner
# midpoints and the nose tip, in image pixels.
ASTRONAUT_EYES = ((202.5, 101.8), (246.8, 103.5))
ASTRONAUT_NOSE_TIP = (222.5, 128.5)


@pytest.fixture(scope="module")
def detector(models) -> FaceDetector:
    return FaceDetector(models.detector)


# -- anchors -----------------------------------------------------------------------------------
def test_anchor_count_and_layout():
    a = ssd_anchors()
    assert a.shape == (896, 2)
    assert a.dtype == np.float32
    # 16×16 grid with 2 anchors per cell first (512), then the 8×8 grid with 6 per cell (384)
    np.testing.assert_array_equal(a[0], [1 / 32, 1 / 32])
    np.testing.assert_array_equal(a[1], [1 / 32, 1 / 32])
    np.testing.assert_array_equal(a[2], [3 / 32, 1 / 32])  # x runs fastest
    np.testing.assert_array_equal(a[32], [1 / 32, 3 / 32])  # second row of the 16×16 grid
    np.testing.assert_array_equal(a[511], [31 / 32, 31 / 32])
    np.testing.assert_array_equal(a[512:518], np.tile([1 / 16, 1 / 16], (6, 1)))
    np.testing.assert_array_equal(a[-6:], np.tile([15 / 16, 15 / 16], (6, 1)))
    assert len(np.unique(a, axis=0)) == 16 * 16 + 8 * 8
    assert a.min() > 0 and a.max() < 1


# -- detections on real and degenerate images --------------------------------------------------
def test_astronaut_has_exactly_one_confident_face(detector, astronaut):
    dets = detector(astronaut)
    assert len(dets) == 1, [d.score for d in dets]
    det = dets[0]
    assert det.score > 0.8
    assert det.keypoints.shape == (6, 2)
    x0, y0, x1, y1 = det.box
    assert x0 < x1 and y0 < y1
    for k in (0, 1):  # subject's right eye, left eye
        kx, ky = det.keypoints[k]
        assert x0 < kx < x1 and y0 < ky < y1, (k, det.keypoints[k], det.box)
    # keypoint 0 is the subject's right eye: on the image's left in an unmirrored photo
    assert det.keypoints[0, 0] < det.keypoints[1, 0]
    # the keypoints land near the eyes and nose tip measured by hand (within a third of the eye gap)
    gap = math.dist(*ASTRONAUT_EYES)
    for k, ref in ((0, ASTRONAUT_EYES[0]), (1, ASTRONAUT_EYES[1]), (2, ASTRONAUT_NOSE_TIP)):
        assert math.dist(det.keypoints[k], ref) < gap / 3, (k, det.keypoints[k], ref)
    # the box contains the hand-marked eyes and nose
    for px, py in (*ASTRONAUT_EYES, ASTRONAUT_NOSE_TIP):
        assert x0 < px < x1 and y0 < py < y1


def test_astronaut_detection_roi_is_eye_aligned(detector, astronaut):
    det = detector(astronaut)[0]
    roi = det.roi()
    eye = det.keypoints[1] - det.keypoints[0]
    assert roi.rotation == pytest.approx(math.atan2(eye[1], eye[0]), abs=1e-6)
    assert roi.size == pytest.approx(1.5 * max(det.box[2] - det.box[0], det.box[3] - det.box[1]))


@pytest.mark.parametrize("value", [0, 128, 255])
def test_uniform_image_has_no_face(detector, value):
    assert detector(np.full((480, 640, 3), value, dtype=np.uint8)) == []


@pytest.mark.parametrize("side", range(1, 8))
def test_tiny_images_have_no_face(models, detector, side):
    rng = np.random.default_rng(side)
    for img in (
        np.zeros((side, side, 3), np.uint8),
        np.full((side, side, 3), 200, np.uint8),
        rng.integers(0, 256, (side, side, 3), dtype=np.uint8),
    ):
        assert detector(img) == []
    # the tracker refuses such images outright
    assert LandmarkTracker(models)(np.full((side, side, 3), 200, np.uint8)) == []


def test_detection_roi_from_hand_made_detection():
    keypoints = np.array([[40, 50], [80, 50], [60, 70], [60, 85], [15, 55], [105, 55]], np.float32)
    det = Detection(box=(10.0, 20.0, 110.0, 100.0), keypoints=keypoints, score=0.9)
    roi = det.roi()
    assert (roi.cx, roi.cy, roi.size, roi.rotation) == pytest.approx((60.0, 60.0, 150.0, 0.0))
    assert det.roi(scale=1.0).size == pytest.approx(100.0)


# -- ROI geometry, hand-computed -----------------------------------------------------------------
def test_crop_to_image_upright():
    m = Roi(cx=100.0, cy=50.0, size=64.0).crop_to_image(32)
    # 2 image px per crop px, crop (0, 0) at the square's top-left corner (68, 18)
    np.testing.assert_allclose(m, [[2, 0, 68], [0, 2, 18]], atol=1e-12)


@pytest.mark.parametrize("rotation", [0.0, 0.3, math.pi / 2, -2.0, math.pi])
def test_crop_centre_maps_to_roi_centre(rotation):
    roi = Roi(cx=100.0, cy=50.0, size=64.0, rotation=rotation)
    m = roi.crop_to_image(32)
    np.testing.assert_allclose(m @ [16, 16, 1], [100, 50], atol=1e-9)
    # the crop's x axis runs along (cos θ, sin θ) in the image, its y axis along (-sin θ, cos θ)
    c, s = 32 * math.cos(rotation), 32 * math.sin(rotation)
    np.testing.assert_allclose(m @ [32, 16, 1], [100 + c, 50 + s], atol=1e-9)
    np.testing.assert_allclose(m @ [16, 32, 1], [100 - s, 50 + c], atol=1e-9)


def test_crop_to_image_rotated_hand_values():
    # θ = 90°: c = 0, n = 2; tx = 100 - (0·16 - 2·16) = 132, ty = 50 - (2·16 + 0·16) = 18
    m = Roi(cx=100.0, cy=50.0, size=64.0, rotation=math.pi / 2).crop_to_image(32)
    np.testing.assert_allclose(m, [[0, -2, 132], [2, 0, 18]], atol=1e-12)
    np.testing.assert_allclose(m @ [24, 16, 1], [100, 66], atol=1e-12)  # crop right → image down
    np.testing.assert_allclose(m @ [16, 8, 1], [116, 50], atol=1e-12)  # crop up → image right
    # θ = 30°: c = √3, n = 1; tx = 100 - (16√3 - 16), ty = 50 - (16 + 16√3)
    m = Roi(cx=100.0, cy=50.0, size=64.0, rotation=math.pi / 6).crop_to_image(32)
    r3 = math.sqrt(3)
    np.testing.assert_allclose(m, [[r3, -1, 116 - 16 * r3], [1, r3, 34 - 16 * r3]], atol=1e-12)
    np.testing.assert_allclose(m @ [32, 16, 1], [100 + 16 * r3, 66], atol=1e-12)


def test_to_image_scales_depth_like_xy():
    roi = Roi(cx=100.0, cy=50.0, size=64.0, rotation=math.pi / 2)
    out = roi.to_image(np.array([[16, 16, 0], [24, 16, 5], [16, 8, -3]], np.float32), 32)
    np.testing.assert_allclose(out, [[100, 50, 0], [100, 66, 10], [116, 50, -6]], atol=1e-4)
    np.testing.assert_allclose(roi.to_image(np.array([[24.0, 16.0]]), 32), [[100, 66]], atol=1e-4)


def test_crop_samples_where_the_matrix_says():
    img = np.zeros((200, 200, 3), np.uint8)
    img[65:68, 99:102] = 255  # a bright 3×3 dot centred on (x=100, y=66)
    roi = Roi(cx=100.0, cy=50.0, size=64.0, rotation=math.pi / 2)
    patch = crop(img, roi, 32)
    assert patch.shape == (32, 32, 3) and patch.dtype == np.float32
    assert 0.0 <= patch.min() and patch.max() <= 1.0
    v, u = np.unravel_index(np.argmax(patch[..., 0]), (32, 32))
    assert (u, v) == (24, 16)
    assert patch[16, 24, 0] == pytest.approx(1.0)
    flipped = crop(img, roi, 32, flip=True)  # the pixels mirrored: u → side - 1 - u
    v, u = np.unravel_index(np.argmax(flipped[..., 0]), (32, 32))
    assert (u, v) == (7, 16)
    assert np.allclose(flipped, patch[:, ::-1], atol=1e-6)


def test_rotation_from_eye_line():
    assert rotation_from(np.array([0.0, 0.0]), np.array([10.0, 0.0])) == pytest.approx(0.0)
    # right eye lower than left in the image (y down): the crop must turn clockwise on screen
    assert rotation_from(np.array([0.0, 0.0]), np.array([10.0, 10.0])) == pytest.approx(math.pi / 4)
    assert rotation_from(np.array([0.0, 0.0]), np.array([10.0, -10.0])) == pytest.approx(-math.pi / 4)
    assert rotation_from(np.array([0.0, 0.0]), np.array([-10.0, 0.0])) == pytest.approx(math.pi)


def test_roi_from_points_hand_values():
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 4.0]])
    roi = roi_from_points(pts, 0.0, 1.5)
    assert (roi.cx, roi.cy, roi.size, roi.rotation) == pytest.approx((5.0, 2.0, 15.0, 0.0))
    # measured in the rotated frame: u = y, v = -x, extent 4 × 10, same centre
    roi = roi_from_points(pts, math.pi / 2, 1.5)
    assert (roi.cx, roi.cy, roi.size) == pytest.approx((5.0, 2.0, 15.0))
    # a square rotated by 45° is tight in its own frame, not in the image's
    diamond = np.array([[0.0, -5.0], [5.0, 0.0], [0.0, 5.0], [-5.0, 0.0]])
    assert roi_from_points(diamond, math.pi / 4, 1.0).size == pytest.approx(5 * math.sqrt(2))
    assert roi_from_points(diamond, 0.0, 1.0).size == pytest.approx(10.0)


def test_roi_iou_hand_values():
    a = Roi(cx=0.0, cy=0.0, size=10.0)
    assert a.iou(a) == pytest.approx(1.0)
    assert a.iou(Roi(cx=5.0, cy=0.0, size=10.0)) == pytest.approx(50 / 150)
    assert a.iou(Roi(cx=20.0, cy=0.0, size=10.0)) == 0.0
    assert a.iou(Roi(cx=0.0, cy=0.0, size=0.0)) == 0.0
