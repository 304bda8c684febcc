"""facewire's blendshape solver and MediaPipe's reference model: golden values, symmetry, invariance, agreement."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facewire import arkit
from facewire.media import open_input
from facewire.models import load_task_bundle
from facewire.vision.blendshapes import (
    BlendshapeSolver,
    features,
    load_weights,
    mirror_features,
)
from facewire.vision.mp_blendshapes import MediaPipeBlendshapes
from facewire.vision.pose import PoseSolver
from facewire.vision.tracker import LandmarkTracker
from facewire.vision.video import TrackerOptions, VideoTracker

TASK = "models/face_landmarker_v2_with_blendshapes.task"
GOLDEN = "data/mediapipe_golden"
GOLDEN_TOLERANCE = 0.01  # measured max abs difference: 0.0023
GOLDEN_ASPECT = (0.8, 1.0)  # the golden landmarks are normalised to an image of w/h = 0.8
MIRROR_TOLERANCE = 0.1
INVARIANCE_TOLERANCE = 0.1
ASTRONAUT_FACE_CENTRE = (222.0, 130.0)
CANVAS = 512
# Held-out GRID clips, tracked as in `facewire bench accuracy`, pooled mean r over the channels that
# move: 0.835-0.850 over three training seeds and 0.854-0.855 with other sample seeds; the dense single
# network this solver replaced gave 0.744 here, a ridge regression on the same samples about 0.78.
# 0.8 is the product's acceptance line and separates the two.
AGREEMENT_MIN_R = 0.8
MOVING_STD = 0.05


@pytest.fixture(scope="module")
def bundle(shared_file):
    return load_task_bundle(shared_file(TASK))


@pytest.fixture(scope="module")
def solver():
    return BlendshapeSolver()


def head_frame(models, rgb: np.ndarray) -> np.ndarray:
    """Head-frame landmarks of the one face in a still image, after the tracked region has settled."""
    tracker = LandmarkTracker(models)
    for _ in range(4):
        obs = tracker(rgb)
    assert len(obs) == 1
    return PoseSolver()(obs[0].landmarks, (rgb.shape[1], rgb.shape[0])).head_frame


def place(img: np.ndarray, angle_deg: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """The astronaut turned and scaled about her face centre, which lands at the canvas centre plus ``shift``."""
    m = cv2.getRotationMatrix2D(ASTRONAUT_FACE_CENTRE, angle_deg, scale)
    m[:, 2] += (CANVAS / 2 + shift[0] - ASTRONAUT_FACE_CENTRE[0], CANVAS / 2 + shift[1] - ASTRONAUT_FACE_CENTRE[1])
    return cv2.warpAffine(img, m, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


@pytest.fixture(scope="module")
def upright(models, astronaut) -> np.ndarray:
    return features(head_frame(models, place(astronaut)))


# -- MediaPipe's own model against MediaPipe's golden test data ------------------------------------
def test_mediapipe_model_reproduces_golden_scores(bundle, shared_file):
    landmarks = np.array(json.loads(shared_file(f"{GOLDEN}/face_blendshapes_in_landmarks.json").read_text()))
    expected = json.loads(shared_file(f"{GOLDEN}/face_blendshapes_out.json").read_text())
    assert landmarks.shape == (478, 3)
    # normalised coordinates → pixels of an image with the golden aspect (the model reads x, y only)
    pixels = landmarks * np.array([*GOLDEN_ASPECT, 1.0])
    scores = MediaPipeBlendshapes(bundle.blendshapes).scores(pixels.astype(np.float32))
    got = dict(zip(arkit.MEDIAPIPE_NAMES, scores.tolist()))
    assert set(got) == set(expected)
    worst = max(expected, key=lambda n: abs(got[n] - expected[n]))
    assert abs(got[worst] - expected[worst]) <= GOLDEN_TOLERANCE, (worst, got[worst], expected[worst])


# -- the solver's structure -----------------------------------------------------------------------
def test_solver_output_shape_and_range(solver, upright):
    w = solver.predict(np.stack([upright, upright]))
    assert w.shape == (2, arkit.COUNT) and w.dtype == np.float32
    assert np.all((w >= 0) & (w <= 1))
    assert np.all(w[:, arkit.INDEX["tongueOut"]] == 0)  # not observable in the landmarks


def test_held_out_clips_are_recorded():
    held = [str(x) for x in load_weights().get("held_out", [])]
    assert len(held) >= 1


def test_mirror_features_is_an_involution(upright):
    x = np.random.default_rng(0).normal(size=(5, upright.size)).astype(np.float32)
    np.testing.assert_array_equal(mirror_features(mirror_features(x)), x)
    np.testing.assert_array_equal(mirror_features(mirror_features(upright)), upright)
    assert not np.allclose(mirror_features(upright), upright)


def test_solver_commutes_with_mirroring(solver, upright):
    w = solver.predict(upright[None])[0]
    mirrored = solver.predict(mirror_features(upright)[None])[0]
    delta = np.abs(mirrored - arkit.mirror_weights(w))
    worst = int(np.argmax(delta))
    assert delta[worst] <= MIRROR_TOLERANCE, (arkit.NAMES[worst], float(delta[worst]))


# -- invariance to where and how large the face is in the image ------------------------------------
VARIANTS = {
    "rotate -30°": {"angle": -30.0},
    "rotate +30°": {"angle": 30.0},
    "scale ×0.6": {"scale": 0.6},
    "scale ×1.5": {"scale": 1.5},
    "shift": {"shift": (-90.0, 60.0)},
    "rotate, scale and shift": {"angle": 20.0, "scale": 0.8, "shift": (70.0, -40.0)},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_solver_invariant_to_rotation_scale_position(models, astronaut, solver, upright, variant):
    v = VARIANTS[variant]
    img = place(astronaut, v.get("angle", 0.0), v.get("scale", 1.0), v.get("shift", (0.0, 0.0)))
    delta = np.abs(solver.predict(features(head_frame(models, img))[None])[0] - solver.predict(upright[None])[0])
    worst = int(np.argmax(delta))
    assert delta[worst] <= INVARIANCE_TOLERANCE, (arkit.NAMES[worst], float(delta[worst]))


# -- agreement with the official pipeline on clips the solver was not trained on -------------------
def test_agrees_with_official_pipeline_on_held_out_clips(models, bundle, shared_dir, skip_or_fail):
    held = [str(x) for x in load_weights()["held_out"]]
    clips = [shared_dir / "data" / "video" / "grid" / f"{name}.mpg" for name in held]
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        skip_or_fail(f"held-out GRID clips not found: {missing}")
    ours_t = VideoTracker(models, TrackerOptions(solver="facewire", landmarks=False))
    ref_t = VideoTracker(bundle, TrackerOptions(solver="mediapipe", landmarks=False))
    ours, ref = [], []
    for clip in clips:
        ours_t.reset()
        ref_t.reset()
        with open_input(str(clip)) as source:
            for image in source:
                a, b = ours_t.process(image)[0], ref_t.process(image)[0]
                assert a.tracked and b.tracked
                ours.append(a.weights)
                ref.append(b.weights)
    ours, ref = np.array(ours), np.array(ref)
    moving = [i for i in range(arkit.COUNT) if ref[:, i].std() > MOVING_STD]
    assert len(moving) >= 5
    r = {arkit.NAMES[i]: float(np.corrcoef(ours[:, i], ref[:, i])[0, 1]) for i in moving}
    assert np.mean(list(r.values())) >= AGREEMENT_MIN_R, r
