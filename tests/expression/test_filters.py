import math

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.expression.filters import (
    GAZE,
    HEAD_ROTATION,
    HEAD_TRANSLATION,
    WEIGHTS,
    OneEuroFilter,
    OneEuroParams,
    OneEuroStage,
)
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.pipeline import Stage

FPS = 30
FRAME_NS = 1e9 / FPS
T = np.arange(6 * FPS) / FPS  # 6 s at 30 fps


def t_ns(i: int) -> int:
    return round(i * FRAME_NS)


# -- test signals: all start and end at their baseline, so zero-padded shifts keep their energy ----
def pulse(amp: float, base: float = 0.0, rise_s: float = 0.0, t0: float = 1.0, hold_s: float = 1.5) -> np.ndarray:
    """A step up (or a ramp taking rise_s) at t0, held, then back down."""
    if rise_s > 0:
        up = np.clip((T - t0) / rise_s, 0, 1)
        down = np.clip(1 - (T - t0 - rise_s - hold_s) / rise_s, 0, 1)
    else:
        up = (T >= t0).astype(float)
        down = (T < t0 + hold_s).astype(float)
    return base + amp * np.minimum(up, down)


def sine_burst(freq: float, amp: float, base: float = 0.0, periods: int | None = None, t0: float = 0.5) -> np.ndarray:
    periods = periods or max(2, int(3 * freq))
    tt = T - t0
    on = (tt >= 0) & (tt < periods / freq)
    return base + np.where(on, amp * np.sin(2 * np.pi * freq * tt), 0.0)


def xcorr_lag(x: np.ndarray, y: np.ndarray, max_lag: int = 3) -> float:
    """Frames by which y trails x: argmax of the cross-correlation, refined by a parabola.

    ``max_lag`` must stay under half the period of a periodic signal (else a neighbouring period can
    win); 3 frames suits everything here up to 4 Hz at 30 fps.
    """
    a, b = x - x[0], y - x[0]
    n = len(a)
    r = []
    for k in range(-max_lag, max_lag + 1):
        shifted = np.zeros(n)
        if k >= 0:
            shifted[k:] = a[: n - k]
        else:
            shifted[:k] = a[-k:]
        r.append(shifted @ b)
    r = np.array(r)
    i = int(np.argmax(r))
    frac = 0.0
    if 0 < i < len(r) - 1:
        p, q, s = r[i - 1], r[i], r[i + 1]
        frac = 0.5 * (p - s) / (p - 2 * q + s)
    return i - max_lag + frac


def test_xcorr_lag_measures_pure_delays():
    x = pulse(0.5, rise_s=0.3)
    for d in range(3):
        y = np.concatenate([np.full(d, x[0]), x[: len(x) - d]])
        assert xcorr_lag(x, y) == pytest.approx(d, abs=1e-9)
    s = sine_burst(2, 1)
    assert xcorr_lag(s, np.concatenate([[0], s[:-1]])) == pytest.approx(1, abs=1e-9)


# -- moderate motion at 30 fps, per channel kind --------------------------------------------------
WEIGHT_SIGNALS = {
    "step 0.1": pulse(0.1, 0.1),
    "step 0.3": pulse(0.3, 0.1),
    "step 0.6 (blink-like)": pulse(0.6, 0.1),
    "slow ramp 0.3/s": pulse(0.3, 0.1, rise_s=1.0),
    "ramp 1/s": pulse(0.5, 0.1, rise_s=0.5),
    "ramp 2.7/s (smile)": pulse(0.8, 0.1, rise_s=0.3),
    "sine 0.5 Hz ±0.3": sine_burst(0.5, 0.3, 0.4),
    "sine 1 Hz ±0.3": sine_burst(1, 0.3, 0.4),
    "sine 2 Hz ±0.2": sine_burst(2, 0.2, 0.4),
    "sine 3 Hz ±0.2 (speech)": sine_burst(3, 0.2, 0.4),
    "sine 4 Hz ±0.1 (speech)": sine_burst(4, 0.1, 0.4),
}
ROTATION_SIGNALS = {
    "step 5°": pulse(5),
    "step 10°": pulse(10),
    "turn 30° in 0.5 s": pulse(30, rise_s=0.5),
    "turn 20° in 1 s": pulse(20, rise_s=1.0),
    "sway 0.5 Hz ±20°": sine_burst(0.5, 20),
    "nod 1 Hz ±10°": sine_burst(1, 10),
    "nod 2 Hz ±5°": sine_burst(2, 5),
}
TRANSLATION_SIGNALS = {
    "step 2 cm": pulse(2),
    "move 5 cm in 0.5 s": pulse(5, rise_s=0.5),
    "move 3 cm in 1 s": pulse(3, rise_s=1.0),
    "sway 0.5 Hz ±3 cm": sine_burst(0.5, 3),
    "bob 2 Hz ±1 cm": sine_burst(2, 1),
}
GAZE_SIGNALS = {
    "saccade 5°": pulse(5),
    "saccade 15°": pulse(15),
    "pursuit 20°/s": pulse(20, rise_s=1.0),
    "scan 0.5 Hz ±10°": sine_burst(0.5, 10),
    "scan 2 Hz ±5°": sine_burst(2, 5),
}


def filter_signal(signal: np.ndarray, params: OneEuroParams) -> np.ndarray:
    f = OneEuroFilter.from_params(params)
    return np.array([f(v, t_ns(i)) for i, v in enumerate(signal)])


@pytest.mark.parametrize(
    "params, signals",
    [
        pytest.param(WEIGHTS, WEIGHT_SIGNALS, id="weights"),
        pytest.param(HEAD_ROTATION, ROTATION_SIGNALS, id="head-rotation"),
        pytest.param(HEAD_TRANSLATION, TRANSLATION_SIGNALS, id="head-translation"),
        pytest.param(GAZE, GAZE_SIGNALS, id="gaze"),
    ],
)
def test_default_lag_is_at_most_one_frame(params, signals):
    lags = {name: xcorr_lag(s, filter_signal(s, params)) for name, s in signals.items()}
    assert all(0 <= lag <= 1.0 for lag in lags.values()), lags
    # and with jitter on top (1 % of the channel's range) moderate motion still lags ≤ 1 frame
    rng = np.random.default_rng(0)
    scale = max(np.ptp(s) for s in signals.values())
    for name, s in signals.items():
        if name.startswith("slow"):
            continue
        noisy = s + rng.normal(0, 0.01 * scale, len(s))
        assert xcorr_lag(s, filter_signal(noisy, params)) <= 1.0, name


def test_slow_filter_does_lag_more_than_a_frame():
    # The lag measurement is not vacuous: a plain 1 Hz low-pass (beta 0) trails a ramp by ≈ 4.8 frames.
    s = WEIGHT_SIGNALS["ramp 1/s"]
    assert xcorr_lag(s, filter_signal(s, OneEuroParams(1.0, 0.0)), max_lag=8) > 4


@pytest.mark.parametrize(
    "params, sigma, factor",
    [
        pytest.param(WEIGHTS, 0.01, 1.9, id="weights"),
        pytest.param(HEAD_ROTATION, 0.5, 1.9, id="head-rotation"),
        pytest.param(HEAD_TRANSLATION, 0.1, 1.8, id="head-translation"),
        pytest.param(GAZE, 1.0, 1.6, id="gaze"),
    ],
)
def test_jitter_on_static_signal_is_reduced(params, sigma, factor):
    rng = np.random.default_rng(1)
    noisy = 0.4 + rng.normal(0, sigma, 3000)
    out = filter_signal(noisy, params)[FPS:]  # skip the first second (start-up)
    assert sigma / out.std() >= factor
    assert out.mean() == pytest.approx(0.4, abs=sigma / 5)


# -- OneEuroFilter semantics ----------------------------------------------------------------------
def test_scalar_in_scalar_out_and_first_sample_passes():
    f = OneEuroFilter(1.0, 0.0)
    assert f(0.25, 0) == 0.25 and isinstance(f(0.5, t_ns(1)), float)


def test_constant_signal_is_unchanged():
    f = OneEuroFilter(1.0, 5.0)
    assert all(f(0.7, t_ns(i)) == pytest.approx(0.7) for i in range(30))


def test_matches_reference_recurrence():
    # Casiez et al. 2012, written out for one step with dt = 0.1 s.
    f = OneEuroFilter(min_cutoff_hz=1.0, beta=0.5, d_cutoff_hz=2.0)
    f(0.0, 0)
    dt = 0.1
    alpha = lambda fc: 1 / (1 + 1 / (2 * math.pi * fc * dt))
    dx = (1.0 - 0.0) / dt
    edx = alpha(2.0) * dx
    cutoff = 1.0 + 0.5 * abs(edx)
    assert f(1.0, 100_000_000) == pytest.approx(alpha(cutoff) * 1.0)


def test_vector_channels_are_independent():
    f = OneEuroFilter(1.0, 1.0)
    a = OneEuroFilter(1.0, 1.0)
    rng = np.random.default_rng(2)
    for i in range(20):
        x = rng.random(3)
        out = f(x, t_ns(i))
        assert out[1] == pytest.approx(a(x[1], t_ns(i)))


def test_duplicate_and_backward_timestamps_return_previous():
    f = OneEuroFilter(1.0, 0.0)
    f(0.0, 0)
    y1 = f(1.0, t_ns(1))
    assert f(5.0, t_ns(1)) == y1  # duplicate timestamp
    assert f(5.0, 0) == y1  # going backwards
    assert f(1.0, t_ns(2)) > y1


def test_nan_input_is_ignored_per_channel():
    f = OneEuroFilter(1.0, 0.0)
    ref = OneEuroFilter(1.0, 0.0)
    f(np.array([0.0, 0.0]), 0)
    ref(0.0, 0)
    y = f(np.array([1.0, np.nan]), t_ns(1))
    assert y[0] == pytest.approx(ref(1.0, t_ns(1))) and y[1] == 0.0
    g = OneEuroFilter(1.0, 0.0)
    assert math.isnan(g(float("nan"), 0))  # nothing to return yet
    assert g(0.5, t_ns(1)) == 0.5  # first finite value initialises
    assert g(float("nan"), t_ns(2)) == 0.5


def test_input_array_is_not_aliased_or_mutated():
    f = OneEuroFilter(1.0, 0.0)
    x = np.array([0.1, 0.2])
    out = f(x, 0)
    out[0] = 99
    assert x[0] == 0.1 and f(x, t_ns(1))[0] == pytest.approx(0.1)


def test_shape_change_and_bad_params_are_input_errors():
    f = OneEuroFilter(1.0, 0.0)
    f(np.zeros(3), 0)
    with pytest.raises(InputError, match="shape"):
        f(np.zeros(4), t_ns(1))
    for bad in ({"min_cutoff_hz": 0}, {"d_cutoff_hz": -1}, {"beta": -1}, {"beta": math.nan}):
        with pytest.raises(InputError):
            OneEuroFilter(**{"min_cutoff_hz": 1.0, "beta": 0.0, **bad})


def test_reset_forgets_state():
    f = OneEuroFilter(1.0, 0.0)
    f(0.0, 0)
    f(1.0, t_ns(1))
    f.reset()
    assert f(0.8, t_ns(2)) == 0.8


# -- OneEuroStage ---------------------------------------------------------------------------------
def make_frame(i: int, w: float = 0.3, yaw: float = 0.0, x: float = 0.0, gaze: float = 0.0, **kw) -> FaceFrame:
    weights = np.full(arkit.COUNT, w, dtype=np.float32)
    return FaceFrame(
        t_ns=kw.pop("t", t_ns(i)),
        seq=i,
        weights=weights,
        head=HeadPose(yaw_deg=yaw, pitch_deg=-yaw, roll_deg=yaw / 2, x=x, y=-x, z=x),
        gaze=Gaze(gaze, -gaze, gaze, gaze / 2),
        **kw,
    )


def test_stage_is_a_stage_and_does_not_mutate():
    stage = OneEuroStage()
    assert isinstance(stage, Stage)
    a, b = make_frame(0, 0.1), make_frame(1, 0.9, yaw=20, x=3, gaze=10)
    snapshot = b.to_json()
    out = stage.process(a)
    out = stage.process(b)
    assert b.to_json() == snapshot
    assert out is not b and out.seq == 1 and out.t_ns == b.t_ns
    assert 0.1 < out.weights[0] < 0.9 and 0 < out.head.yaw_deg < 20 and 0 < out.gaze.left_yaw_deg < 10
    assert out.weights.dtype == np.float32 and not out.weights.flags.writeable


def test_stage_lag_and_jitter_with_defaults():
    # Through the stage: the same moderate-motion signals on a weight, head yaw/x and gaze.
    rng = np.random.default_rng(3)
    w_sig, yaw_sig = WEIGHT_SIGNALS["sine 3 Hz ±0.2 (speech)"], ROTATION_SIGNALS["turn 30° in 0.5 s"]
    x_sig, g_sig = TRANSLATION_SIGNALS["move 5 cm in 0.5 s"], GAZE_SIGNALS["saccade 15°"]
    stage = OneEuroStage()
    outs = [stage.process(make_frame(i, w_sig[i], yaw_sig[i], x_sig[i], g_sig[i])) for i in range(len(T))]
    assert xcorr_lag(w_sig, np.array([o.weights[5] for o in outs])) <= 1
    assert xcorr_lag(yaw_sig, np.array([o.head.yaw_deg for o in outs])) <= 1
    assert xcorr_lag(x_sig, np.array([o.head.x for o in outs])) <= 1
    assert xcorr_lag(g_sig, np.array([o.gaze.left_yaw_deg for o in outs])) <= 1

    stage.reset()
    noise = rng.normal(0, 0.01, (len(T), arkit.COUNT))
    outs = [
        stage.process(make_frame(i, 0.3, rng.normal(0, 0.5), 0.0, 0.0).replace(
            weights=np.clip(0.3 + noise[i], 0, 1).astype(np.float32))) for i in range(len(T))
    ]
    w_in = np.std(np.clip(0.3 + noise[FPS:], 0, 1), axis=0)
    w_out = np.std([o.weights for o in outs[FPS:]], axis=0)
    assert np.mean(w_in / w_out) >= 1.9 and np.all(w_in / w_out >= 1.5)
    assert 0.5 / np.std([o.head.yaw_deg for o in outs[FPS:]]) >= 1.7


def test_weights_are_clipped_to_unit_range():
    stage = OneEuroStage(beta=0.0)
    for i in range(10):
        out = stage.process(make_frame(i, 1.0 if i % 2 else 0.0))
        assert out.weights.min() >= 0 and out.weights.max() <= 1


def test_untracked_passes_through_and_resets():
    stage = OneEuroStage(min_cutoff_hz=0.5, beta=0.0)
    stage.process(make_frame(0, 0.0))
    lost = FaceFrame.untracked(t_ns=t_ns(1), seq=1)
    assert stage.process(lost) is lost
    # re-acquired: starts fresh instead of easing in from 0.0
    assert stage.process(make_frame(2, 0.8)).weights[0] == pytest.approx(0.8)


def test_gap_and_backward_time_reset():
    stage = OneEuroStage(min_cutoff_hz=0.5, beta=0.0)
    stage.process(make_frame(0, 0.0))
    assert stage.process(make_frame(1, 0.8)).weights[0] < 0.2  # smoothing is on
    gap = make_frame(0, 0.2, t=t_ns(1) + 600_000_000)  # > 0.5 s later
    assert stage.process(gap).weights[0] == pytest.approx(0.2)
    back = make_frame(0, 0.9, t=0)  # time went backwards (new take, seek)
    assert stage.process(back).weights[0] == pytest.approx(0.9)


def test_duplicate_timestamp_repeats_previous_output():
    stage = OneEuroStage()
    stage.process(make_frame(0, 0.0))
    first = stage.process(make_frame(1, 0.5, yaw=10))
    dup = stage.process(make_frame(1, 1.0, yaw=50))
    assert np.array_equal(dup.weights, first.weights) and dup.head == first.head


def test_head_and_gaze_can_be_left_alone():
    stage = OneEuroStage(head=False, gaze=False)
    stage.process(make_frame(0))
    frame = make_frame(1, yaw=30, x=5, gaze=12)
    out = stage.process(frame)
    assert out.head == frame.head and out.gaze == frame.gaze


def test_faces_are_filtered_independently():
    stage = OneEuroStage(min_cutoff_hz=0.5, beta=0.0)
    stage.process(make_frame(0, 0.0, face=0))
    assert stage.process(make_frame(0, 0.9, face=1)).weights[0] == pytest.approx(0.9)
    assert stage.process(make_frame(1, 0.9, face=0)).weights[0] < 0.5


def test_custom_head_params_are_used():
    fast = OneEuroStage(head_rotation=OneEuroParams(100.0, 0.0))
    slow = OneEuroStage(head_rotation=OneEuroParams(0.1, 0.0))
    for s in (fast, slow):
        s.process(make_frame(0, yaw=0.0))
    assert fast.process(make_frame(1, yaw=20)).head.yaw_deg > 19
    assert slow.process(make_frame(1, yaw=20)).head.yaw_deg < 1
