"""FaceFrame: validation, immutability, JSON round trip."""

import numpy as np
import pytest

from facewire import FaceFrame, Gaze, HeadPose, InputError, arkit
from facewire.frame import euler_to_quaternion
from facewire.vision.pose import euler_to_rotation


def _frame(**kw) -> FaceFrame:
    rng = np.random.default_rng(0)
    base = {"t_ns": 123_456_789, "seq": 7, "source": "cam", "weights": rng.random(52, dtype=np.float32),
            "head": HeadPose(12.5, -3.25, 40.0, 1.0, -2.0, 55.0), "gaze": Gaze(1.5, -2.5, 3.0, 4.0),
            "landmarks": rng.random((478, 3)).astype(np.float32) * 500, "confidence": 0.75, "face": 1,
            "capture_ns": 99}
    base.update(kw)
    return FaceFrame(**base)


def test_json_round_trip_is_bit_exact():
    f = _frame()
    g = FaceFrame.from_json(f.to_json())
    assert g.t_ns == f.t_ns and g.seq == f.seq and g.source == f.source and g.face == f.face
    assert g.capture_ns == f.capture_ns and g.confidence == f.confidence
    assert np.array_equal(g.weights, f.weights) and np.array_equal(g.landmarks, f.landmarks)
    assert g.head == f.head and g.gaze == f.gaze


def test_untracked_round_trip_and_defaults():
    f = FaceFrame.untracked(5, seq=1)
    g = FaceFrame.from_json(f.to_json())
    assert not g.tracked and g.confidence == 0.0 and g.landmarks is None
    assert not g.weights.any()


def test_arrays_are_read_only_and_copied():
    w = np.zeros(52, np.float32)
    f = _frame(weights=w)
    w[0] = 1.0  # the caller's array is not the frame's
    assert f.weights[0] == 0.0
    with pytest.raises(ValueError):
        f.weights[0] = 0.5
    with pytest.raises(ValueError):
        f.landmarks[0, 0] = 1.0


def test_replace_shares_frozen_arrays_and_validates():
    f = _frame()
    g = f.replace(seq=8)
    assert g.landmarks is f.landmarks and g.seq == 8 and f.seq == 7
    with pytest.raises(InputError, match="weights"):
        f.replace(weights=np.full(52, 2.0, np.float32))


@pytest.mark.parametrize("bad, match", [
    ({"weights": np.zeros(51)}, "weights: expected shape 52"),
    ({"weights": np.r_[np.zeros(51), np.nan]}, "weights: expected finite"),
    ({"landmarks": np.full((478, 3), np.inf)}, "landmarks: expected finite"),
    ({"landmarks": np.zeros((478, 2))}, "landmarks: expected shape N×3"),
    ({"confidence": 1.5}, "confidence"),
    ({"confidence": float("nan")}, "confidence"),
    ({"t_ns": 1.5}, "t_ns"),
])
def test_bad_values_are_refused_with_the_field_named(bad, match):
    with pytest.raises(InputError, match=match):
        _frame(**bad)


def test_frozen_nan_array_is_still_refused():
    w = np.full(52, np.nan, np.float32)
    w.flags.writeable = False
    with pytest.raises(InputError, match="finite"):
        _frame(weights=w)


def test_head_pose_refuses_nan():
    with pytest.raises(InputError, match="head.yaw_deg"):
        HeadPose(yaw_deg=float("nan"))


@pytest.mark.parametrize("text, match", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "expected an object"),
    ('{"t_ns": 1}', "missing field 'weights'"),
    ('{"v": 99, "t_ns": 1, "weights": []}', "schema version"),
])
def test_malformed_json_gives_clear_errors(text, match):
    with pytest.raises(InputError, match=match):
        FaceFrame.from_json(text)


def test_weight_by_name_and_dict():
    f = _frame()
    assert f.weight("jawOpen") == f.weights[arkit.INDEX["jawOpen"]]
    assert f.weight("JawOpen") == f.weight("jawOpen")
    assert list(f.as_dict()) == list(arkit.NAMES)


@pytest.mark.parametrize("ypr", [(30, 0, 0), (0, 20, 0), (0, 0, -45), (25, -10, 15)])
def test_quaternion_matches_rotation_matrix(ypr):
    x, y, z, w = euler_to_quaternion(*ypr)
    # rotation matrix of the quaternion
    q = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    assert np.allclose(q, euler_to_rotation(*ypr), atol=1e-9)
