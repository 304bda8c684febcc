"""Calibration: neutral offsets learnt over a window, applied per shape; profiles save and load."""

import numpy as np
import pytest

from facewire import FaceFrame, InputError, arkit
from facewire.expression.calibration import CalibrationProfile, CalibrationStage

SQUINT = arkit.INDEX["eyeSquintLeft"]
LOOK = arkit.INDEX["eyeLookUpLeft"]
JAW = arkit.INDEX["jawOpen"]


def _frames(n=90, fps=30, rest=0.3):
    """A face resting at eyeSquint=rest and looking up a bit, that opens its jaw at frame 45."""
    for i in range(n):
        w = np.zeros(52, np.float32)
        w[SQUINT] = rest
        w[LOOK] = 0.2
        w[JAW] = 0.8 if 45 <= i < 50 else 0.0
        yield FaceFrame(t_ns=round(i * 1e9 / fps), weights=w)


def test_auto_learns_rest_and_rescales():
    stage = CalibrationStage(window_s=1.0)
    out = [stage.process(f) for f in _frames()]
    assert stage.done
    assert out[5].weight("eyeSquintLeft") == pytest.approx(0.3)  # pass-through while learning
    assert out[60].weight("eyeSquintLeft") == pytest.approx(0.0, abs=1e-6)  # rest becomes zero
    assert out[60].weight("eyeLookUpLeft") == pytest.approx(0.2)  # gaze is never offset
    assert out[46].weight("jawOpen") == pytest.approx(0.8)  # motion outside the window untouched
    full = np.zeros(52, np.float32)
    full[SQUINT] = 1.0
    assert stage.profile.apply(full)[SQUINT] == pytest.approx(1.0)  # the range still reaches 1


def test_untracked_frames_pass_and_do_not_count():
    stage = CalibrationStage(window_s=0.5)
    f = FaceFrame.untracked(0)
    assert stage.process(f) is f
    assert not stage.done


def test_profile_round_trip(tmp_path):
    offset = np.zeros(52, np.float32)
    offset[SQUINT] = 0.25
    prof = CalibrationProfile(offset=offset)
    prof.save(tmp_path / "cal.json")
    back = CalibrationProfile.load(tmp_path / "cal.json")
    assert np.array_equal(back.offset, prof.offset) and np.array_equal(back.gain, prof.gain)
    stage = CalibrationStage(back, mode="fixed")
    w = np.zeros(52, np.float32)
    w[SQUINT] = 0.25
    assert stage.process(FaceFrame(t_ns=0, weights=w)).weight("eyeSquintLeft") == 0.0


@pytest.mark.parametrize("text", ["not json", '{"offset": {"smile": 0.1}}', '{"offset": {"jawOpen": 1.5}}'])
def test_bad_profile_files(tmp_path, text):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(InputError):
        CalibrationProfile.load(p)


def test_bad_arguments():
    with pytest.raises(InputError, match="mode"):
        CalibrationStage(mode="sometimes")
    with pytest.raises(InputError, match="window_s"):
        CalibrationStage(window_s=0)
