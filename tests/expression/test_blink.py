"""BlinkStage: statistics of generated streams, combination with incoming lids, triggers, contract."""

import numpy as np
import pytest

from facewire import arkit
from facewire.bench.alive import REAL_BLINK_GROUPS
from facewire.errors import InputError
from facewire.expression import stats
from facewire.expression.blink import (
    CLOSING_S,
    INTERVAL_LOG_SIGMA_BY_STATE,
    RATES_PER_MIN,
    STATES,
    BlinkParams,
    BlinkStage,
    blink_curve,
)
from facewire.frame import FaceFrame, Gaze
from facewire.pipeline import Stage

FPS = 60
I = arkit.INDEX
BL, BR = I["eyeBlinkLeft"], I["eyeBlinkRight"]

# Measured on the real takes (test_stats.py checks these against the data): all spontaneous blinks.
DATA_CLOSING_MS = 75
DATA_OPENING_MS = 122
DATA_DOUBLE_FRACTION = 0.062
DATA_LOG_SIGMA = 0.65
# The same per activity group (rest ← idle + silent holds, listening ← performances, speaking ← speech-like).
DATA_LOG_SIGMA_BY_STATE = {"rest": 0.71, "listening": 0.56, "speaking": 0.63}


def t_ns(i: int, fps: float = FPS) -> int:
    return round(i * 1e9 / fps)


def run(stage, seconds: float, fps: float = FPS, frame: FaceFrame | None = None) -> list[FaceFrame]:
    base = frame if frame is not None else FaceFrame(t_ns=0)
    return [stage.process(base.replace(t_ns=t_ns(i, fps))) for i in range(int(seconds * fps))]


@pytest.fixture(scope="module")
def ten_minutes():
    """10 simulated minutes at 60 fps per state, measured with the real-take detectors."""
    out = {}
    t = np.round(np.arange(600 * FPS) * (1e9 / FPS)).astype(np.int64)
    for k, state in enumerate(("rest", "listening", "speaking")):
        weights = BlinkStage("synthetic", state=state, seed=100 + k).render(t)  # == process, frame by frame
        rec = stats.Recording(t_s=t / 1e9, weights=weights, gaze=np.zeros((len(t), 4)), tracked=np.ones(len(t), dtype=bool))
        out[state] = stats.blink_stats([rec])
    return out


# -- the curve ---------------------------------------------------------------------------------------
def test_curve_closes_fast_and_opens_slowly():
    t = np.arange(0, 0.5, 1e-4)
    y = blink_curve(t)
    assert y[0] == 0 and y[-1] == 0
    k = int(np.argmax(y))
    assert t[k] == pytest.approx(CLOSING_S, abs=2e-4) and y[k] == pytest.approx(1.0)
    closing = t[k] - t[np.argmax(y > 0.1)]
    opening = t[k + np.argmax(y[k:] < 0.1)] - t[k]
    assert opening > 1.5 * closing
    assert np.abs(np.diff(y)).max() < 0.01  # continuous at 10 kHz
    assert blink_curve(-0.1) == 0


# -- statistics of generated streams ------------------------------------------------------------------
@pytest.mark.parametrize("state", ["rest", "listening", "speaking"])
def test_rate_matches_the_state(ten_minutes, state):
    s = ten_minutes[state]
    assert s.rate_per_min == pytest.approx(RATES_PER_MIN[state], rel=0.12)


def test_listening_blinks_come_more_regularly_than_resting_ones():
    # the performances' intervals are tighter (log σ 0.56) than the idle and held takes' (0.71)
    t = np.round(np.arange(600 * FPS) * (1e9 / FPS)).astype(np.int64)
    spread = {}
    for state in ("rest", "listening"):
        stage = BlinkStage("synthetic", state=state, seed=7)
        stage.render(t)
        gaps = np.diff(stage.onsets_s)
        spread[state] = np.std(np.log(gaps[gaps >= 0.5]))  # double blinks left out, as the detectors do
    assert spread["listening"] < spread["rest"] - 0.05


def test_interval_spread_per_state_is_honoured():
    t = np.round(np.arange(300 * FPS) * (1e9 / FPS)).astype(np.int64)
    cv = {}
    for sigma in (0.2, 1.0):
        params = BlinkParams(interval_log_sigmas={"listening": sigma}, double_fraction=0.0)
        stage = BlinkStage("synthetic", state="listening", seed=3, params=params)
        stage.render(t)
        gaps = np.diff(stage.onsets_s)
        cv[sigma] = np.std(gaps) / np.mean(gaps)
    assert cv[0.2] < 0.35 and cv[1.0] > 0.7


def test_interval_spreads_are_the_real_takes(shared_dir, skip_or_fail):
    takes = shared_dir / "data" / "takes"
    missing = [rel for rel in stats.REAL_TAKES if not (takes / rel).is_file()]
    if missing:
        skip_or_fail(f"real takes missing under {takes}: {', '.join(missing)}")
    real = stats.real_takes(takes)
    for state in ("rest", "listening", "speaking"):
        recs = [r for k, r in real.items() if stats.REAL_TAKES[k] in REAL_BLINK_GROUPS[state]]
        assert INTERVAL_LOG_SIGMA_BY_STATE[state] == pytest.approx(stats.blink_stats(recs).ibi_log_sigma, abs=0.01)


def test_rates_order_by_state(ten_minutes):
    assert ten_minutes["listening"].rate_per_min < ten_minutes["rest"].rate_per_min < ten_minutes["speaking"].rate_per_min


@pytest.mark.parametrize("state", ["rest", "listening", "speaking"])
def test_intervals_are_broad_like_real_ones(ten_minutes, state):
    s = ten_minutes[state]
    assert 0.5 <= s.ibi_cv <= 1.2  # log-normal σ 0.56-0.71 → CV 0.6-0.8, doubles widen it
    assert s.ibi_log_sigma == pytest.approx(DATA_LOG_SIGMA_BY_STATE[state], abs=0.1)
    assert s.ibi_pct_s[50] < np.mean(s.ibi_s)  # right-skewed


@pytest.mark.parametrize("state", ["rest", "listening", "speaking"])
def test_shape_matches_the_takes(ten_minutes, state):
    s = ten_minutes[state]
    assert s.closing_ms[50] < s.opening_ms[50]
    assert s.closing_ms[50] == pytest.approx(DATA_CLOSING_MS, rel=0.2)
    assert s.opening_ms[50] == pytest.approx(DATA_OPENING_MS, rel=0.2)
    assert 100 <= s.duration_ms[50] <= 400


def test_double_blinks_and_asymmetry(ten_minutes):
    pooled = [ten_minutes[s] for s in ten_minutes]
    double = np.mean([s.double_fraction for s in pooled])
    assert double == pytest.approx(DATA_DOUBLE_FRACTION, abs=0.03)
    for s in pooled:
        assert 1.0 < s.lag_ms_sd < 10.0  # a few ms, not zero
        assert 0.02 < s.amplitude_asymmetry_sd < 0.1
        assert s.closures == 0


def test_frame_rate_does_not_change_when_blinks_happen():
    a, b = BlinkStage("synthetic", seed=7), BlinkStage("synthetic", seed=7)
    run(a, 60, fps=30)
    run(b, 60, fps=60)
    assert len(a.onsets_s) > 10
    np.testing.assert_allclose(a.onsets_s, b.onsets_s)


# -- determinism and the stage contract -----------------------------------------------------------------
def test_seeded_runs_repeat_and_seeds_differ():
    w1 = np.array([f.weights for f in run(BlinkStage("synthetic", seed=3), 30)])
    w2 = np.array([f.weights for f in run(BlinkStage("synthetic", seed=3), 30)])
    w3 = np.array([f.weights for f in run(BlinkStage("synthetic", seed=4), 30)])
    np.testing.assert_array_equal(w1, w2)
    assert not np.array_equal(w1, w3)


def test_reset_repeats_the_stream():
    stage = BlinkStage("synthetic", seed=11)
    first = np.array([f.weights for f in run(stage, 20)])
    stage.reset()
    second = np.array([f.weights for f in run(stage, 20)])
    np.testing.assert_array_equal(first, second)


def test_is_a_stage_and_never_mutates_its_input():
    stage = BlinkStage("synthetic", seed=1)
    assert isinstance(stage, Stage)
    w = np.full(arkit.COUNT, 0.3, dtype=np.float32)
    frames = [FaceFrame(t_ns=t_ns(i), weights=w, gaze=Gaze(1, 2, 3, 4)) for i in range(600)]
    before = [f.to_json() for f in frames]
    out = [stage.process(f) for f in frames]
    assert [f.to_json() for f in frames] == before
    assert any(o is not f for o, f in zip(out, frames))
    assert all(o.gaze == f.gaze for o, f in zip(out, frames))


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_weights_stay_in_range(level):
    frame = FaceFrame(t_ns=0, weights=np.full(arkit.COUNT, level, dtype=np.float32))
    for mode in ("synthetic", "augment"):
        out = np.array([f.weights for f in run(BlinkStage(mode, seed=2), 30, frame=frame)])
        assert out.min() >= 0.0 and out.max() <= 1.0


# -- modes ---------------------------------------------------------------------------------------------
def test_auto_leaves_tracked_faces_alone_and_animates_untracked_ones():
    stage = BlinkStage(seed=5)
    assert stage.mode == "auto"
    tracked = [FaceFrame(t_ns=t_ns(i)) for i in range(1800)]
    assert all(stage.process(f) is f for f in tracked)
    assert stage.onsets_s  # the clock kept running
    untracked = [FaceFrame.untracked(t_ns(1800 + i)) for i in range(1800)]
    out = [stage.process(f) for f in untracked]
    assert all(not o.tracked for o in out)
    assert max(o.weight("eyeBlinkLeft") for o in out) > 0.85


def test_synthetic_closes_what_the_lid_leaves_open():
    frame = FaceFrame(t_ns=0, weights=np.where(np.isin(np.arange(52), [BL, BR]), 0.3, 0.0).astype(np.float32))
    out = np.array([f.weights[BL] for f in run(BlinkStage("synthetic", seed=8), 30, frame=frame)])
    assert out.min() == pytest.approx(0.3, abs=1e-6)
    assert out.max() > 0.9


def test_augment_never_overrides_a_real_blink():
    # a real face blinking every 2 s, its tracker missing nothing
    n = 60 * FPS
    real = np.array([0.9 * blink_curve((i / FPS) % 2.0 - 0.5) for i in range(n)])
    stage = BlinkStage("augment", seed=9)
    out = []
    for i in range(n):
        w = np.zeros(52, np.float32)
        w[BL] = w[BR] = real[i]
        out.append(stage.process(FaceFrame(t_ns=t_ns(i), weights=w)).weights[BL])
    out = np.array(out)
    assert np.all(out >= real.astype(np.float32) - 1e-7)
    synthetic_only = out[real < 1e-3]
    assert synthetic_only.max() > 0.85  # its own blinks still come where the face did not blink


def test_blink_lowers_look_up_and_wide_and_adds_look_down_and_squint():
    w = np.zeros(52, np.float32)
    for name in ("eyeLookUpLeft", "eyeWideLeft"):
        w[I[name]] = 0.5
    stage = BlinkStage("synthetic", seed=1)
    frames = run(stage, 20, frame=FaceFrame(t_ns=0, weights=w))
    peak = max(frames, key=lambda f: f.weight("eyeBlinkLeft"))
    assert peak.weight("eyeBlinkLeft") > 0.85
    assert peak.weight("eyeLookUpLeft") < 0.15
    assert peak.weight("eyeWideLeft") < 0.15
    assert peak.weight("eyeLookDownLeft") > 0.07
    assert peak.weight("eyeSquintLeft") > 0.03
    rest = min(frames, key=lambda f: f.weight("eyeBlinkLeft"))
    assert rest.weight("eyeLookUpLeft") == pytest.approx(0.5)


# -- states and triggers ----------------------------------------------------------------------------------
def test_state_validation_and_switching():
    stage = BlinkStage("synthetic", state="listening")
    assert stage.state == "listening"
    stage.state = "speaking"
    assert stage.state == "speaking"
    with pytest.raises(InputError, match="blink state: expected one of rest, listening, speaking, thinking, got 'shouting'"):
        stage.set_state("shouting")
    with pytest.raises(InputError, match="blink mode"):
        BlinkStage("sometimes")
    assert set(STATES) == set(RATES_PER_MIN)


def test_params_validation_names_the_field():
    with pytest.raises(InputError, match=r"rates_per_min\['rest'\]"):
        BlinkParams(rates_per_min={"rest": 0, "listening": 1, "speaking": 1, "thinking": 1})
    with pytest.raises(InputError, match="double_fraction"):
        BlinkParams(double_fraction=0.7)
    with pytest.raises(InputError, match="closing_s"):
        BlinkParams(closing_s=-0.1)
    with pytest.raises(InputError, match="gaze_shift"):
        BlinkParams(gaze_shift=(40.0, 10.0, 0.5))
    with pytest.raises(InputError, match=r"interval_log_sigmas\['shouting'\]"):
        BlinkParams(interval_log_sigmas={"shouting": 0.5})
    with pytest.raises(InputError, match=r"interval_log_sigmas\['rest'\]"):
        BlinkParams(interval_log_sigmas={"rest": 0.0})


def _quiet(**changes) -> BlinkParams:
    """Spontaneous blinks rare enough (1/min) that whatever blinks was triggered."""
    rates = {s: 1.0 for s in STATES}
    return BlinkParams(rates_per_min=rates, double_fraction=0.0, **changes)


def test_phrase_end_blinks_soon_after():
    stage = BlinkStage("synthetic", seed=3, params=_quiet(phrase_end={s: 1.0 for s in STATES}))
    run(stage, 1)
    assert stage.phrase_end()
    before = len(stage.onsets_s)
    frames = [stage.process(FaceFrame(t_ns=t_ns(60 + i))) for i in range(30)]
    assert len(stage.onsets_s) == before + 1
    assert 1.0 < stage.onsets_s[-1] <= 1.0 + 0.25 + 1 / FPS
    assert max(f.weight("eyeBlinkLeft") for f in frames) > 0.85


def test_phrase_ends_raise_the_rate():
    plain, talky = BlinkStage("synthetic", state="speaking", seed=4), BlinkStage("synthetic", state="speaking", seed=4)
    run(plain, 120)
    for i in range(120 * FPS):
        talky.process(FaceFrame(t_ns=t_ns(i)))
        if i % (2 * FPS) == FPS:
            talky.phrase_end()
    assert len(talky.onsets_s) > len(plain.onsets_s) + 10


def test_gaze_shift_probability_grows_with_amplitude():
    stage = BlinkStage("synthetic", seed=3, params=_quiet(gaze_shift=(15.0, 45.0, 1.0)))
    run(stage, 1)
    assert not stage.gaze_shift(10.0)
    assert stage.gaze_shift(50.0)
    assert not stage.gaze_shift(50.0)  # refractory: one blink per 0.5 s
    hits = sum(BlinkStage("synthetic", seed=s, params=_quiet()).gaze_shift(30.0) for s in range(400))
    assert hits / 400 == pytest.approx(0.7 * 0.5, abs=0.07)


def test_watch_gaze_reads_shifts_from_frames():
    stage = BlinkStage("synthetic", seed=3, watch_gaze=True, params=_quiet(gaze_shift=(15.0, 30.0, 1.0)))
    for i in range(120):
        yaw = 0.0 if i < 60 else 20.0 if i < 61 else 40.0  # a 40° shift over 2 frames at t = 1 s
        stage.process(FaceFrame(t_ns=t_ns(i), gaze=Gaze(yaw, 0, yaw, 0)))
    assert len(stage.onsets_s) == 1
    assert stage.onsets_s[0] == pytest.approx(62 / FPS)  # the frame where the shift has ended


def test_time_going_backwards_restarts_the_clock():
    stage = BlinkStage("synthetic", seed=1)
    run(stage, 5)
    out = stage.process(FaceFrame(t_ns=0))
    assert out.weights.max() <= 1.0
    assert stage.process(FaceFrame(t_ns=t_ns(1))).t_ns == t_ns(1)


def test_render_is_process_frame_by_frame():
    t = np.round(np.arange(40 * FPS) * (1e9 / FPS)).astype(np.int64)
    lids = np.zeros((len(t), arkit.COUNT), dtype=np.float32)
    lids[:, BL] = lids[:, BR] = np.linspace(0.0, 0.5, len(t))  # an incoming lid the blinks must close over
    for mode in ("synthetic", "augment"):
        stage = BlinkStage(mode, state="speaking", seed=4)
        expected = np.array([stage.process(FaceFrame(t_ns=int(x), weights=w, tracked=False)).weights
                             for x, w in zip(t, lids)])
        got = BlinkStage(mode, state="speaking", seed=4).render(t, lids)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
        assert (got[:, BL] > 0.9).any()  # it did blink


def test_render_validates_its_input():
    stage = BlinkStage("synthetic", seed=1)
    with pytest.raises(InputError, match="render t_ns: expected a 1-D array of integer nanoseconds"):
        stage.render(np.array([0.0, 1.0]))
    with pytest.raises(InputError, match=r"render weights: expected finite 2×52 values"):
        stage.render(np.array([0, 1]), np.zeros((2, 3)))
    with pytest.raises(InputError, match="watch_gaze"):
        BlinkStage("synthetic", watch_gaze=True).render(np.array([0, 1]))
