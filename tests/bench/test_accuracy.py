"""The blink-event counting of ``facewire bench accuracy`` on hand-made lid traces."""

from __future__ import annotations

import numpy as np

from facewire import arkit
from facewire.bench.accuracy import blink_events, blink_match


def test_a_closure_that_flickers_around_the_threshold_is_one_blink() -> None:
    trace = np.array([0.1, 0.2, 0.51, 0.47, 0.45, 0.6, 0.7, 0.2, 0.1])
    assert blink_events(trace) == [(2, 7)]


def test_the_lid_must_reopen_between_two_blinks() -> None:
    trace = np.array([0.1, 0.8, 0.25, 0.9, 0.9, 0.1, 0.6])
    assert blink_events(trace) == [(1, 2), (3, 5), (6, 7)]  # the last one runs to the end
    assert blink_events(np.zeros(5)) == []


def test_blink_match_counts_missed_and_extra_events() -> None:
    ref, ours = np.zeros((20, arkit.COUNT)), np.zeros((20, arkit.COUNT))
    left, right = arkit.INDEX["eyeBlinkLeft"], arkit.INDEX["eyeBlinkRight"]
    ref[5:8, left] = 0.9  # matched by ours two frames late
    ours[9:10, left] = 0.7
    ref[14, right] = 0.6  # missed: ours stays below 0.5
    ours[14, right] = 0.45
    ours[2, right] = 0.8  # extra: no reference blink near it
    assert blink_match(ours, ref) == (2, 1, 1)
