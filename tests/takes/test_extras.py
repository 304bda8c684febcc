"""`FaceFrame.extras`, the numbers a take format needs back, and raw weights outside [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.frame import FaceFrame
from facewire.takes._extras import split_unclipped, unclipped_weights


def test_extras_are_frozen_validated_and_absent_from_json_when_empty():
    source = {"llf.LeftEyeRoll": 0.25, "unclipped.jawOpen": 1.5}
    frame = FaceFrame(t_ns=0, extras=source)
    source["llf.LeftEyeRoll"] = 9.0  # the frame took a copy
    assert frame.extras == {"llf.LeftEyeRoll": 0.25, "unclipped.jawOpen": 1.5}
    with pytest.raises(TypeError):
        frame.extras["x"] = 1.0  # type: ignore[index]
    assert "extras" not in FaceFrame(t_ns=0).to_json_dict()
    back = FaceFrame.from_json(frame.to_json())
    assert back.extras == frame.extras
    assert frame.replace(t_ns=5).extras == frame.extras  # stages keep them


@pytest.mark.parametrize(
    "extras, message",
    [
        ([1, 2], "extras: expected a mapping"),
        ({"": 1.0}, "non-empty string keys"),
        ({"a": "x"}, r"extras\['a'\]: expected a number, got str"),
        ({"a": True}, r"expected a number, got bool"),
        ({"a": float("nan")}, r"extras\['a'\]: expected a finite number"),
    ],
)
def test_bad_extras_are_refused(extras, message):
    with pytest.raises(InputError, match=message):
        FaceFrame(t_ns=0, extras=extras)


def test_unclipped_weights_apply_only_while_the_weight_is_their_clip():
    raw = np.zeros(52)
    raw[arkit.INDEX["jawOpen"]] = 1.25
    raw[arkit.INDEX["tongueOut"]] = -0.5
    extras: dict[str, float] = {}
    clipped = split_unclipped(raw, extras)
    assert extras == {"unclipped.jawOpen": 1.25, "unclipped.tongueOut": -0.5}
    frame = FaceFrame(t_ns=0, weights=clipped, extras=extras)
    assert frame.weight("jawOpen") == 1.0 and frame.weight("tongueOut") == 0.0
    np.testing.assert_array_equal(unclipped_weights(frame.weights, frame.extras), raw)
    moved = frame.weights.copy()
    moved[arkit.INDEX["jawOpen"]] = 0.5  # a stage changed the weight: the raw value no longer applies
    got = unclipped_weights(moved, frame.extras)
    assert got[arkit.INDEX["jawOpen"]] == 0.5 and got[arkit.INDEX["tongueOut"]] == -0.5
    inside = np.full(52, 0.5)
    assert split_unclipped(inside, extras) is inside
