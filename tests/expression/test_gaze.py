"""GazeStage: main sequence, fixations against the real takes, vergence, lids, targets, states, contract."""

import math

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.expression import stats
from facewire.expression.blink import BlinkStage
from facewire.expression.gaze import (
    LID_FOLLOW_DOWN_PER_DEG,
    LOOK_FULL_DEG,
    GazeBehaviour,
    GazeParams,
    GazeStage,
    eye_look_weights,
    saccade_duration_s,
    saccade_peak_velocity_deg_s,
    vergence_deg,
)
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.pipeline import Stage

FPS = 60
I = arkit.INDEX

# Measured on the real takes by the same detectors (test_stats.py checks these against the data).
DATA_FREE_AMPLITUDE_DEG = 3.8  # log-normal median of saccades ≥ 1°, all takes
DATA_FREE_FIXATION_S = 0.45  # log-normal median of fixations, all takes
DATA_REST_FIXATION_S = 1.8  # idle take
DATA_REST_AMPLITUDE_DEG = 1.9  # idle take, median

# Fixations of 5 s exactly on the target, no aversions, no microsaccades: the eyes go where told.
QUIET = GazeParams(microsaccade_rate_hz=0.0,
                   behaviour={s: GazeBehaviour((5.0, 0.0), 0.0, 0.0) for s in ("rest", "listening", "speaking", "thinking")})


def t_ns(i: int, fps: float = FPS) -> int:
    return round(i * 1e9 / fps)


def run(stage, seconds: float, fps: float = FPS, frame: FaceFrame | None = None, start: int = 0) -> list[FaceFrame]:
    base = frame if frame is not None else FaceFrame(t_ns=0)
    return [stage.process(base.replace(t_ns=t_ns(start + i, fps))) for i in range(int(seconds * fps))]


def cyclopean(frames) -> np.ndarray:
    return np.array([((f.gaze.left_yaw_deg + f.gaze.right_yaw_deg) / 2, (f.gaze.left_pitch_deg + f.gaze.right_pitch_deg) / 2)
                     for f in frames])


def measure(frames, **detect) -> stats.GazeStats:
    # blink_mask_level 2: no blinks here, and the lids following the gaze down must not mask it
    return stats.gaze_stats([stats.Recording.from_frames(frames)], blink_mask_level=2.0, **detect)


# -- main sequence -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kilohertz():
    stage = GazeStage("synthetic", target="free", seed=21)
    return run(stage, 60, fps=1000), stage


def test_generated_saccades_follow_the_main_sequence(kilohertz):
    frames, _ = kilohertz
    sacc, _ = stats.detect_saccades(stats.Recording.from_frames(frames), velocity_deg_s=1.0, min_amplitude_deg=0.1,
                                    blink_mask_level=2.0, mask_pad_s=0.0)
    a = np.array([s.amplitude_deg for s in sacc])
    assert len(a) > 100 and a.max() > 10 and (a < 1).sum() > 30  # saccades and microsaccades
    fit = stats.fit_main_sequence(a, np.array([s.duration_s for s in sacc]), np.array([s.peak_velocity_deg_s for s in sacc]))
    # Bahill et al. 1975 / Carpenter 1988: D ≈ 2.2 ms/° · A + 21 ms
    assert fit["duration_slope_ms_per_deg"] == pytest.approx(2.2, abs=0.3)
    assert fit["duration_intercept_ms"] == pytest.approx(21, abs=4)
    # peak velocity grows and saturates (published ceiling 500-700 °/s; a 10° saccade peaks near
    # 300-450 °/s); these saccades are mostly under 15°, so the exponential's ceiling is loosely pinned
    assert 350 <= fit["vmax_deg_s"] <= 800
    assert 300 <= fit["vmax_deg_s"] * (1 - math.exp(-10 / fit["c_deg"])) <= 450
    v = np.array([s.peak_velocity_deg_s for s in sacc])
    # the frames carry the planned profile (a few back-to-back microsaccades read as one movement)
    assert np.mean(np.abs(v / saccade_peak_velocity_deg_s(a) - 1) < 0.05) > 0.95


def test_saccade_log_and_microsaccades(kilohertz):
    _, stage = kilohertz
    events = list(stage.saccades)
    micro = [e for e in events if e.micro]
    big = [e for e in events if not e.micro]
    assert all(e.amplitude_deg <= 1.0 for e in micro)
    assert 0.8 <= len(micro) / 60 <= 2.5  # ≈ 1.5/s during fixations
    assert min(e.amplitude_deg for e in big) >= 1.0  # free wandering draws saccades of 1° and more
    for e in events:
        assert e.duration_s == pytest.approx(0.0022 * e.amplitude_deg + 0.021)


def test_main_sequence_functions():
    assert saccade_duration_s(10.0) == pytest.approx(0.043)
    assert saccade_peak_velocity_deg_s(10.0) == pytest.approx(math.pi / 2 * 10 / 0.043)
    v = saccade_peak_velocity_deg_s(np.array([5.0, 10.0, 20.0, 40.0, 80.0]))
    assert np.all(np.diff(v) > 0) and np.all(np.diff(v, 2) < 0)  # growing, saturating
    assert v[3] < 714


# -- fixations and amplitudes against the takes ---------------------------------------------------------------
def test_free_gaze_measures_like_the_takes():
    g = measure(run(GazeStage("synthetic", target="free", seed=5), 600))
    assert g.amplitude_log_median_deg == pytest.approx(DATA_FREE_AMPLITUDE_DEG, rel=0.2)
    assert g.fixation_log_median_s == pytest.approx(DATA_FREE_FIXATION_S, rel=0.2)
    assert 0.2 <= g.fixation_pct_s[50] <= 0.6  # Rayner 1998


def test_rest_gaze_measures_like_the_idle_take():
    g = measure(run(GazeStage("synthetic", state="rest", seed=6), 600))
    assert g.fixation_log_median_s == pytest.approx(DATA_REST_FIXATION_S, rel=0.3)
    assert g.amplitude_pct_deg[50] == pytest.approx(DATA_REST_AMPLITUDE_DEG, rel=0.3)


@pytest.mark.parametrize("state, away", [("listening", 0.25), ("speaking", 0.6), ("thinking", 0.8)])
def test_aversion_share_by_state(state, away):
    frames = run(GazeStage("synthetic", state=state, seed=8), 300)
    g = cyclopean(frames)
    share = float(np.mean(np.hypot(g[:, 0], g[:, 1]) > 5.0))
    assert share == pytest.approx(away, abs=0.1)


def test_thinking_looks_up_more_than_speaking():
    def up_share(state):
        g = cyclopean(run(GazeStage("synthetic", state=state, seed=9), 300))
        away = np.hypot(g[:, 0], g[:, 1]) > 5.0
        return float(np.mean(g[away, 1] > 0))
    assert up_share("thinking") > up_share("speaking") + 0.15


# -- geometry ---------------------------------------------------------------------------------------------
def test_vergence_turns_both_eyes_in():
    assert vergence_deg(math.inf) == 0.0
    assert vergence_deg(0.6) == pytest.approx(2 * math.degrees(math.atan(0.0315 / 0.6)))
    assert vergence_deg(0.3) > vergence_deg(0.6) > vergence_deg(2.0) > 0
    for distance in (0.3, 0.6, 2.0):
        stage = GazeStage("synthetic", target=(0.0, 0.0, distance), seed=1, params=QUIET)
        f = run(stage, 3)[-1]
        # the left eye turns to the subject's right (negative yaw), the right eye to the left
        assert f.gaze.right_yaw_deg - f.gaze.left_yaw_deg == pytest.approx(vergence_deg(distance), abs=1e-4)
        assert f.gaze.left_pitch_deg == f.gaze.right_pitch_deg


def test_eye_look_mapping_hand_computed():
    w = eye_look_weights(Gaze(left_yaw_deg=10.0, left_pitch_deg=-7.02, right_yaw_deg=15.5, right_pitch_deg=12.4))
    assert w["eyeLookOutLeft"] == pytest.approx(10 / 43.1) and w["eyeLookInLeft"] == 0
    assert w["eyeLookInRight"] == pytest.approx(0.5) and w["eyeLookOutRight"] == 0
    assert w["eyeLookDownLeft"] == pytest.approx(0.2) and w["eyeLookUpLeft"] == 0
    assert w["eyeLookUpRight"] == pytest.approx(0.5) and w["eyeLookDownRight"] == 0
    w = eye_look_weights(Gaze(-80, -80, -80, 80))
    assert w["eyeLookInLeft"] == 1 and w["eyeLookOutRight"] == 1 and w["eyeLookDownLeft"] == 1 and w["eyeLookUpRight"] == 1
    assert 24 <= min(LOOK_FULL_DEG.values()) and max(LOOK_FULL_DEG.values()) <= 45


def test_lids_follow_the_gaze_down_and_up():
    down = run(GazeStage("synthetic", target=(0.0, -20.0), seed=1, params=QUIET), 2)[-1]
    assert down.gaze.left_pitch_deg == pytest.approx(-20.0)
    assert down.weight("eyeLookDownLeft") == pytest.approx(20 / 35.1, rel=1e-4)
    assert down.weight("eyeBlinkLeft") == pytest.approx(20 * LID_FOLLOW_DOWN_PER_DEG, rel=1e-4)
    assert down.weight("eyeWideLeft") == 0
    up = run(GazeStage("synthetic", target=(0.0, 10.0), seed=1, params=QUIET), 2)[-1]
    assert up.weight("eyeBlinkLeft") == 0 and up.weight("eyeWideLeft") > 0.3
    ahead = run(GazeStage("synthetic", seed=1, params=QUIET), 2)[-1]
    assert ahead.weight("eyeBlinkLeft") == 0 and ahead.gaze.left_pitch_deg == 0


def test_look_at_moves_the_eyes_after_the_latency():
    stage = GazeStage("synthetic", seed=2, params=QUIET)
    run(stage, 1)
    stage.look_at((15.0, 5.0))
    frames = run(stage, 1, start=FPS)
    g = cyclopean(frames)
    assert np.hypot(*g[int(0.15 * FPS)]) < 0.5  # still on the camera within the latency
    np.testing.assert_allclose(g[-1], [15.0, 5.0], atol=1e-6)  # there after 200 ms + 57 ms
    assert stage.target == ("point", (15.0, 5.0, 0.6))


def test_compensate_head_counter_rotates_within_limits():
    stage = GazeStage("synthetic", seed=2, params=QUIET, compensate_head=True)
    f = run(stage, 1, frame=FaceFrame(t_ns=0, head=HeadPose(yaw_deg=20.0, pitch_deg=-5.0)))[-1]
    assert (f.gaze.left_yaw_deg + f.gaze.right_yaw_deg) / 2 == pytest.approx(-20.0)
    assert f.gaze.left_pitch_deg == pytest.approx(5.0)
    f = run(stage, 1, frame=FaceFrame(t_ns=0, head=HeadPose(yaw_deg=90.0)), start=FPS)[-1]
    assert (f.gaze.left_yaw_deg + f.gaze.right_yaw_deg) / 2 == pytest.approx(-35.0)


# -- blinks with gaze shifts ---------------------------------------------------------------------------------
def test_large_gaze_shifts_trigger_blinks_through_the_hook():
    calls = []
    blinks = BlinkStage("synthetic", seed=4)
    eyes = GazeStage("synthetic", seed=4, params=QUIET, on_saccade=lambda a, t: calls.append((a, t)) or blinks.gaze_shift(a, t))
    for i in range(120 * FPS):
        if i % (2 * FPS) == FPS:  # 40° shifts back and forth every 2 s
            eyes.look_at((20.0, 0.0) if (i // (2 * FPS)) % 2 else (-20.0, 0.0))
        blinks.process(eyes.process(FaceFrame(t_ns=t_ns(i))))
    large = [(a, t) for a, t in calls if a > 30]
    assert len(large) >= 55
    assert all(0 <= t <= t_ns(120 * FPS) for _, t in calls)
    onsets = np.array(blinks.onsets_s)
    triggered = sum(np.any(np.abs(onsets - t / 1e9) < 1e-6) for _, t in large)
    assert triggered / len(large) == pytest.approx(0.7 * 25 / 30, abs=0.15)  # GAZE_SHIFT_BLINK at 40°


# -- determinism and the stage contract ---------------------------------------------------------------------
def test_seeded_runs_repeat_and_seeds_differ():
    a = cyclopean(run(GazeStage("synthetic", state="listening", seed=3), 20))
    b = cyclopean(run(GazeStage("synthetic", state="listening", seed=3), 20))
    c = cyclopean(run(GazeStage("synthetic", state="listening", seed=4), 20))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_is_a_stage_never_mutates_and_keeps_weights_in_range():
    stage = GazeStage("synthetic", state="speaking", seed=1)
    assert isinstance(stage, Stage)
    for level in (0.0, 0.7, 1.0):
        frames = [FaceFrame(t_ns=t_ns(i), weights=np.full(52, level, np.float32)) for i in range(600)]
        before = [f.to_json() for f in frames]
        out = [stage.process(f) for f in frames]
        assert [f.to_json() for f in frames] == before
        w = np.array([o.weights for o in out])
        assert w.min() >= 0 and w.max() <= 1
        untouched = [i for i in range(52) if not arkit.NAMES[i].startswith(("eyeLook", "eyeBlink", "eyeWide"))]
        np.testing.assert_array_equal(w[:, untouched], np.float32(level))


def test_auto_leaves_tracked_faces_alone_and_animates_untracked_ones():
    stage = GazeStage(state="speaking", seed=1)
    tracked = [FaceFrame(t_ns=t_ns(i), gaze=Gaze(3, 3, 3, 3)) for i in range(600)]
    assert all(stage.process(f) is f for f in tracked)
    out = [stage.process(FaceFrame.untracked(t_ns(600 + i))) for i in range(600)]
    assert all(not o.tracked for o in out)
    assert np.ptp(cyclopean(out)[:, 0]) > 2.0


def test_validation():
    with pytest.raises(InputError, match="gaze mode"):
        GazeStage("augment")
    with pytest.raises(InputError, match="gaze state"):
        GazeStage(state="dreaming")
    stage = GazeStage()
    for bad in ("moon", (1.0,), (1.0, float("nan")), (0.0, 0.0, -1.0), object()):
        with pytest.raises(InputError, match="gaze target"):
            stage.look_at(bad)
    with pytest.raises(InputError, match="away_fraction"):
        GazeBehaviour((0.4, 1.0), away_fraction=1.5, scatter_deg=1.0)
    with pytest.raises(InputError, match=r"look_full_deg\['up'\]"):
        GazeParams(look_full_deg={"out": 40, "in": 30, "up": 0, "down": 30})
    with pytest.raises(InputError, match=r"behaviour\['listening'\]"):
        GazeParams(behaviour={"rest": GazeBehaviour((1, 1), 0, 1)})
