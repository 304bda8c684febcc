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
    PEAK_VELOCITY_LOG_SIGMA,
    GazeBehaviour,
    GazeParams,
    GazeStage,
    eye_look_weights,
    main_sequence_peak_velocity_deg_s,
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
    if isinstance(frames, stats.Recording):
        g = frames.gaze
        return np.stack([(g[:, 0] + g[:, 2]) / 2, (g[:, 1] + g[:, 3]) / 2], axis=1)
    return np.array([((f.gaze.left_yaw_deg + f.gaze.right_yaw_deg) / 2, (f.gaze.left_pitch_deg + f.gaze.right_pitch_deg) / 2)
                     for f in frames])


def rendered(stage: GazeStage, seconds: float, fps: float = FPS) -> stats.Recording:
    """A long synthetic take through `GazeStage.render` (frame-by-frame `process` in one go; see
    test_render_is_process_frame_by_frame)."""
    t = np.round(np.arange(int(seconds * fps)) * (1e9 / fps)).astype(np.int64)
    weights, eyes = stage.render(t)
    return stats.Recording(t_s=t / 1e9, weights=weights, gaze=eyes, tracked=np.ones(len(t), dtype=bool))


def measure(frames, **detect) -> stats.GazeStats:
    # blink_mask_level 2: no blinks here, and the lids following the gaze down must not mask it
    rec = frames if isinstance(frames, stats.Recording) else stats.Recording.from_frames(frames)
    return stats.gaze_stats([rec], blink_mask_level=2.0, **detect)


# -- main sequence -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kilohertz():
    stage = GazeStage("synthetic", target="free", seed=21)
    return rendered(stage, 60, fps=1000), stage


# Published peak velocities (mean, SD °/s): Hopf et al. 2018, horizontal saccades to 5/15/30° targets
# (100 healthy people); Collewijn et al. 1988, the asymptote for saccades of 40° and more.
HOPF_2018 = {5.0: (213.0, 29.0), 15.0: (352.0, 50.0), 30.0: (455.0, 67.0)}
COLLEWIJN_1988 = (502.0, 32.0)


def test_generated_saccades_follow_the_main_sequence(kilohertz):
    frames, stage = kilohertz
    sacc, _ = stats.detect_saccades(frames, velocity_deg_s=1.0, min_amplitude_deg=0.1,
                                    blink_mask_level=2.0, mask_pad_s=0.0)
    a = np.array([s.amplitude_deg for s in sacc])
    v = np.array([s.peak_velocity_deg_s for s in sacc])
    assert len(a) > 100 and a.max() > 10 and (a < 1).sum() > 30  # saccades and microsaccades
    # measured on the frames at 1 kHz: peak velocities within one SD of the published means
    for amplitude, (mean, sd) in HOPF_2018.items():
        near = np.abs(a - amplitude) <= 0.2 * amplitude
        if near.sum() >= 5:
            assert abs(np.median(v[near]) - mean) <= sd, amplitude
    # the frames carry the planned profile: each detected saccade peaks at the speed the stage logged
    # (a few back-to-back microsaccades read as one movement)
    onsets = np.array([e.t_s for e in stage.saccades])
    peaks = np.array([e.peak_velocity_deg_s for e in stage.saccades])
    ratios = []
    for s in sacc:  # the detector's onset is the last still sample, within 1 ms before the logged one
        k = int(np.argmin(np.abs(onsets - s.t_s)))
        if abs(onsets[k] - s.t_s) <= 0.0015:
            ratios.append(s.peak_velocity_deg_s / peaks[k])
    assert len(ratios) > 0.8 * len(sacc)
    assert np.mean(np.abs(np.array(ratios) - 1) < 0.05) > 0.95


def test_saccade_log_and_microsaccades(kilohertz):
    _, stage = kilohertz
    events = list(stage.saccades)
    micro = [e for e in events if e.micro]
    big = [e for e in events if not e.micro]
    assert all(e.amplitude_deg <= 1.0 for e in micro)
    assert 0.8 <= len(micro) / 60 <= 2.5  # ≈ 1.5/s during fixations
    assert min(e.amplitude_deg for e in big) >= 1.0  # free wandering draws saccades of 1° and more
    a = np.array([e.amplitude_deg for e in events])
    v = np.array([e.peak_velocity_deg_s for e in events])
    d = np.array([e.duration_s for e in events])
    np.testing.assert_allclose(d, math.pi / 2 * a / v)  # half-cosine profile
    # scattered around the main sequence by the log-normal spread, not more
    log_ratio = np.log(v / main_sequence_peak_velocity_deg_s(a))
    assert np.std(log_ratio) == pytest.approx(PEAK_VELOCITY_LOG_SIGMA, rel=0.2)
    assert abs(np.mean(log_ratio)) < 0.03
    # microsaccades lie on the same main sequence (Zuber et al. 1965): slow and short
    assert all(5.0 < e.peak_velocity_deg_s < 60.0 and e.duration_s < 0.045 for e in micro)


def test_main_sequence_functions_match_the_published_velocities():
    for amplitude, (mean, sd) in HOPF_2018.items():
        assert abs(main_sequence_peak_velocity_deg_s(amplitude) - mean) <= sd
    asymptote, sd = COLLEWIJN_1988
    assert abs(main_sequence_peak_velocity_deg_s(60.0) - asymptote) <= sd
    v = main_sequence_peak_velocity_deg_s(np.array([5.0, 10.0, 20.0, 40.0, 80.0]))
    assert np.all(np.diff(v) > 0) and np.all(np.diff(v, 2) < 0)  # growing, saturating
    assert saccade_peak_velocity_deg_s(10.0) == main_sequence_peak_velocity_deg_s(10.0)
    # durations of the half-cosine: (π/2)·A/Vp, near the textbook 2.2 ms/°·A + 21 ms, finite at 0
    assert saccade_duration_s(10.0) == pytest.approx(math.pi / 2 * 10 / main_sequence_peak_velocity_deg_s(10.0))
    assert saccade_duration_s(10.0, 400.0) == pytest.approx(math.pi / 2 * 10 / 400)
    assert saccade_duration_s(10.0) == pytest.approx(0.0022 * 10 + 0.021, rel=0.25)
    assert saccade_duration_s(0.0) == pytest.approx(saccade_duration_s(1e-6), rel=1e-4)


def test_render_is_process_frame_by_frame():
    t = np.round(np.arange(30 * FPS) * (1e9 / FPS)).astype(np.int64)

    def pair():
        blink = BlinkStage("synthetic", state="speaking", seed=3)
        return GazeStage("synthetic", state="speaking", seed=4, on_saccade=blink.gaze_shift), blink

    gaze_stage, blink = pair()
    frames = [blink.process(gaze_stage.process(FaceFrame(t_ns=int(x), tracked=False))) for x in t]
    gaze_stage2, blink2 = pair()
    weights, eyes = gaze_stage2.render(t, blink=blink2)
    np.testing.assert_array_equal(weights, np.array([f.weights for f in frames]))
    np.testing.assert_array_equal(eyes, np.array([(f.gaze.left_yaw_deg, f.gaze.left_pitch_deg, f.gaze.right_yaw_deg,
                                                   f.gaze.right_pitch_deg) for f in frames]))
    assert blink.onsets_s == blink2.onsets_s and len(blink.onsets_s) > 5  # the hook fired the same blinks
    assert list(gaze_stage.saccades) == list(gaze_stage2.saccades)
    alone, _ = GazeStage("synthetic", seed=4).render(t)
    assert alone.shape == (len(t), arkit.COUNT)


# -- fixations and amplitudes against the takes ---------------------------------------------------------------
def test_free_gaze_measures_like_the_takes():
    g = measure(rendered(GazeStage("synthetic", target="free", seed=5), 600))
    assert g.amplitude_log_median_deg == pytest.approx(DATA_FREE_AMPLITUDE_DEG, rel=0.2)
    assert g.fixation_log_median_s == pytest.approx(DATA_FREE_FIXATION_S, rel=0.2)
    assert 0.2 <= g.fixation_pct_s[50] <= 0.6  # Rayner 1998


def test_rest_gaze_measures_like_the_idle_take():
    g = measure(rendered(GazeStage("synthetic", state="rest", seed=6), 600))
    assert g.fixation_log_median_s == pytest.approx(DATA_REST_FIXATION_S, rel=0.3)
    assert g.amplitude_pct_deg[50] == pytest.approx(DATA_REST_AMPLITUDE_DEG, rel=0.3)


@pytest.mark.parametrize("state, away", [("listening", 0.25), ("speaking", 0.6), ("thinking", 0.8)])
def test_aversion_share_by_state(state, away):
    frames = rendered(GazeStage("synthetic", state=state, seed=8), 300)
    g = cyclopean(frames)
    share = float(np.mean(np.hypot(g[:, 0], g[:, 1]) > 5.0))
    assert share == pytest.approx(away, abs=0.1)


def test_thinking_looks_up_more_than_speaking():
    def up_share(state):
        g = cyclopean(rendered(GazeStage("synthetic", state=state, seed=9), 300))
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
