"""Blink and gaze statistics: the detectors on hand-made signals, and the real takes against the
published human ranges and against the constants the stages bake in."""

import math

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.expression import blink, gaze, stats
from facewire.expression.blink import blink_curve
from facewire.frame import FaceFrame, Gaze

FPS = 60.0
BL, BR = arkit.INDEX["eyeBlinkLeft"], arkit.INDEX["eyeBlinkRight"]


def recording(weights: np.ndarray, gaze_deg: np.ndarray | None = None, tracked: np.ndarray | None = None,
              fps: float = FPS) -> stats.Recording:
    n = len(weights)
    g = np.zeros((n, 4)) if gaze_deg is None else gaze_deg
    tr = np.ones(n, dtype=bool) if tracked is None else tracked
    return stats.Recording(t_s=np.arange(n) / fps, weights=weights.astype(np.float32), gaze=g, tracked=tr)


def blinks_at(onsets_s: list[float], seconds: float, fps: float = FPS, base: float = 0.05, amp: float = 0.8,
              lag_s: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * fps)) / fps
    w = np.zeros((len(t), arkit.COUNT))
    for onset in onsets_s:
        w[:, BL] = np.maximum(w[:, BL], amp * blink_curve(t - onset - lag_s))
        w[:, BR] = np.maximum(w[:, BR], amp * blink_curve(t - onset))
    w[:, BL] += base
    w[:, BR] += base
    return w


# -- detectors on signals with known answers --------------------------------------------------------
def test_detects_every_blink_and_times_its_phases():
    onsets = [1.0, 3.1, 5.7, 8.0]
    blinks, closures = stats.detect_blinks(recording(blinks_at(onsets, 10.0)))
    assert closures == 0
    assert len(blinks) == 4
    peaks = np.array([b.t_s for b in blinks])
    np.testing.assert_allclose(peaks, np.array(onsets) + blink.CLOSING_S, atol=1.0 / FPS)
    for b in blinks:
        assert b.amplitude == pytest.approx(0.8, abs=0.03)
        # half-cosine: 10 % → peak is 0.795 of the closing phase
        assert b.closing_s == pytest.approx(0.795 * blink.CLOSING_S, abs=0.006)
        assert b.opening_s > b.closing_s
        assert abs(b.lag_ms) < 1.0


def test_measures_a_left_right_lag():
    blinks, _ = stats.detect_blinks(recording(blinks_at([1.0, 3.0], 5.0, lag_s=0.008)))
    assert [round(b.lag_ms) for b in blinks] == [8, 8]


def test_a_long_closure_is_not_a_blink():
    w = blinks_at([1.0], 6.0)
    t = np.arange(len(w)) / FPS
    held = (t > 3.0) & (t < 4.2)
    w[held, BL] = w[held, BR] = 0.9
    blinks, closures = stats.detect_blinks(recording(w))
    assert (len(blinks), closures) == (1, 1)


def _fwhm_of_curve(amp: float = 1.0) -> float:
    """Width (s) at half height of `blink_curve`, from a 10 kHz sampling: the known answer."""
    t = np.arange(0.0, 0.6, 1e-4)
    above = t[amp * blink_curve(t) > 0.5 * amp]
    return float(above[-1] - above[0])


def test_duration_is_the_time_the_lid_is_more_than_half_closed():
    blinks, _ = stats.detect_blinks(recording(blinks_at([1.0, 3.1, 5.7], 8.0)))
    assert len(blinks) == 3
    for b in blinks:
        # linear interpolation between 60 fps samples: within a quarter frame of the true FWHM
        assert b.fwhm_s == pytest.approx(_fwhm_of_curve(), abs=0.25 / FPS)


def test_blink_that_lands_on_a_lower_lid_level_keeps_its_own_duration():
    # The eye looks down during the blink and the lid follows it (rises by 0.3 and stays): measured
    # from the level it started at, the blink would never end; each side has its own level.
    t = np.arange(int(6.0 * FPS)) / FPS
    onset = 2.0
    curve = blink_curve(t - onset)
    step = np.where(t > onset + blink.CLOSING_S, 0.3, 0.0)  # the new lid level, reached under the closed lid
    w = np.zeros((len(t), arkit.COUNT))
    w[:, BL] = w[:, BR] = step + (1.0 - step) * 0.9 * curve  # a blink closes what the lid leaves open
    blinks, left_out = stats.detect_blinks(recording(w))
    assert (len(blinks), left_out) == (1, 0)
    flat = stats.detect_blinks(recording(blinks_at([onset], 6.0, base=0.0, amp=0.9)))[0][0]
    b = blinks[0]
    # the opening side is measured from the new level: the same blink, the same phases
    assert b.duration_s == pytest.approx(flat.duration_s, abs=1.0 / FPS)
    assert b.fwhm_s == pytest.approx(flat.fwhm_s, abs=1.0 / FPS)
    assert b.duration_s < 0.3


def test_lid_following_a_downward_fixation_is_not_a_blink():
    # A saccade 15° down raises the lid by 0.27 for a 0.3 s fixation (`gaze.LID_FOLLOW_DOWN_PER_DEG`),
    # a box-shaped hold, not a peak; a real blink 2 s later is still found.
    w = blinks_at([4.0], 6.0, base=0.0)
    t = np.arange(len(w)) / FPS
    hold = (t >= 1.0) & (t < 1.3)
    w[hold, BL] += 0.27
    w[hold, BR] += 0.27
    blinks, left_out = stats.detect_blinks(recording(w))
    assert [round(b.t_s, 1) for b in blinks] == [round(4.0 + blink.CLOSING_S, 1)]
    assert left_out == 1


def test_generated_blinks_with_gaze_shifts_measure_like_flat_ones():
    # A generated speaking take: blinks come with downward gaze shifts and the lids follow the eyes.
    # With each side measured from its own level, the duration percentiles stay those of the curve.
    from facewire.bench.alive import generate

    rec, _ = generate("speaking", 2.0, FPS, 3)
    s = stats.blink_stats([rec])
    assert s.blinks > 30
    assert s.duration_ms[90] < 400
    assert s.fwhm_ms[50] == pytest.approx(_fwhm_of_curve() * 1e3, rel=0.15)


def test_double_blinks_and_intervals():
    rec = recording(blinks_at([1.0, 1.25, 4.0, 7.0, 7.3], 9.0))
    s = stats.blink_stats([rec])
    assert s.blinks == 5
    np.testing.assert_allclose(np.sort(s.ibi_s), [0.25, 0.3, 2.75, 3.0], atol=0.02)
    assert s.double_fraction == pytest.approx(2 / 5)
    assert s.rate_per_min == pytest.approx(5 / (rec.tracked_s / 60))


def test_untracked_gap_splits_segments_and_rate_counts_tracked_time():
    w = blinks_at([1.0, 4.0, 7.0], 9.0)
    tracked = np.ones(len(w), dtype=bool)
    tracked[int(2.5 * FPS):int(3.5 * FPS)] = False
    rec = recording(w, tracked=tracked)
    assert len(rec.segments()) == 2
    s = stats.blink_stats([rec])
    assert s.blinks == 3
    np.testing.assert_allclose(s.ibi_s, [3.0], atol=0.02)  # 1 → 4 spans the gap and is not counted
    assert rec.tracked_s == pytest.approx(8.0, abs=0.05)


def test_saccade_detector_on_steps():
    n = int(6 * FPS)
    g = np.zeros((n, 4))
    t = np.arange(n) / FPS
    for t0, yaw in ((1.0, 10.0), (2.5, -5.0), (4.0, 3.0)):
        g[t >= t0, 0] = g[t >= t0, 2] = yaw
    sacc, fix = stats.detect_saccades(recording(np.zeros((n, arkit.COUNT)), g))
    assert [round(s.amplitude_deg) for s in sacc] == [10, 15, 8]
    np.testing.assert_allclose(fix, [1.5, 1.5], atol=2.0 / FPS)


def test_saccades_hidden_by_a_blink_reappear_as_one_step():
    n = int(4 * FPS)
    t = np.arange(n) / FPS
    w = blinks_at([1.9], 4.0, amp=0.9)
    g = np.zeros((n, 4))
    g[(t > 1.9) & (t < 2.15), 1] = g[(t > 1.9) & (t < 2.15), 3] = -25.0  # the tracker's roll-down artifact
    g[t >= 2.05, 0] = g[t >= 2.05, 2] = 12.0
    sacc, _ = stats.detect_saccades(recording(w, g))
    assert len(sacc) == 1
    assert sacc[0].amplitude_deg == pytest.approx(12.0, abs=0.5)


def test_main_sequence_fit_recovers_known_parameters():
    a = np.linspace(1, 40, 30)
    d = (2.2 * a + 21) / 1e3
    v = 600 * (1 - np.exp(-a / 12))
    fit = stats.fit_main_sequence(a, d, v)
    assert fit["duration_slope_ms_per_deg"] == pytest.approx(2.2)
    assert fit["duration_intercept_ms"] == pytest.approx(21)
    assert fit["vmax_deg_s"] == pytest.approx(600, rel=0.01)
    assert fit["c_deg"] == pytest.approx(12, rel=0.02)


def test_eye_look_fit_recovers_the_mapping_the_gaze_stage_uses():
    rng = np.random.default_rng(0)
    n = 2000
    frames = []
    for i in range(n):
        yaw, pitch = rng.uniform(-30, 30), rng.uniform(-20, 20)
        g = Gaze(yaw, pitch, yaw, pitch)
        w = np.zeros(arkit.COUNT)
        for name, value in gaze.eye_look_weights(g).items():
            w[arkit.INDEX[name]] = value
        frames.append(FaceFrame(t_ns=i * 16_666_667, weights=w, gaze=g))
    fit = stats.fit_eye_look([stats.Recording.from_frames(frames)])
    assert fit.out_deg == pytest.approx(gaze.LOOK_FULL_DEG["out"], rel=0.01)
    assert fit.in_deg == pytest.approx(gaze.LOOK_FULL_DEG["in"], rel=0.01)
    assert fit.up_deg == pytest.approx(gaze.LOOK_FULL_DEG["up"], rel=0.05)  # clipped at 1 beyond 24.8°: none here
    assert fit.down_deg == pytest.approx(gaze.LOOK_FULL_DEG["down"], rel=0.01)


def test_blink_shape_fit_recovers_the_curve():
    rng = np.random.default_rng(1)
    onsets = np.cumsum(rng.uniform(1.5, 3.0, 30))
    rec = recording(blinks_at(list(onsets), float(onsets[-1] + 2)))
    t, y, n = stats.blink_template([rec])
    assert n == 30
    closing, tau, shape = stats.fit_blink_shape(t, y)
    assert closing == pytest.approx(blink.CLOSING_S, rel=0.1)
    assert tau == pytest.approx(blink.OPENING_TAU_S, rel=0.1)
    assert shape == pytest.approx(blink.OPENING_SHAPE, rel=0.1)


def test_recording_validation():
    with pytest.raises(InputError, match="N×52"):
        stats.Recording(t_s=np.arange(3.0), weights=np.zeros((2, 52)), gaze=np.zeros((3, 4)), tracked=np.ones(3, bool))
    with pytest.raises(InputError, match="increasing"):
        stats.Recording(t_s=np.array([0, 1, 1.0]), weights=np.zeros((3, 52)), gaze=np.zeros((3, 4)), tracked=np.ones(3, bool))
    with pytest.raises(InputError, match="at least one frame"):
        stats.Recording.from_frames([])


def test_untracked_only_recording_has_no_blinks():
    frames = [FaceFrame.untracked(i * 16_666_667) for i in range(100)]
    rec = stats.Recording.from_frames(frames)
    assert rec.segments() == []
    s = stats.blink_stats([rec])
    assert s.blinks == 0 and math.isnan(s.rate_per_min)


# -- the real takes -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(shared_dir, skip_or_fail):
    takes = shared_dir / "data" / "takes"
    missing = [rel for rel in stats.REAL_TAKES if not (takes / rel).is_file()]
    if missing:
        skip_or_fail(f"real takes missing under {takes}: {', '.join(missing)}")
    return stats.real_takes(takes)


def _group(real, *names):
    return [r for k, r in real.items() if stats.REAL_TAKES[k] in names]


def test_real_blinks_are_within_published_human_ranges(real):
    rest = stats.blink_stats(_group(real, "rest", "emotion-hold"))
    pooled = stats.blink_stats(_group(real, *stats.SPONTANEOUS_GROUPS))
    # one performer at 22.4/min (88 blinks in 3.9 min): just above the 8-21/min of primary gaze in
    # silence (Doughty 2001), within the 1.4-32.5/min that Doughty's reading, primary-gaze and
    # conversational ranges span together
    assert 8 <= rest.rate_per_min <= 32.5
    assert pooled.blinks >= 150
    # blinks last 100-400 ms and the lid closes faster (≈ 70-100 ms) than it reopens
    assert 50 <= pooled.closing_ms[50] <= 120
    assert 100 <= pooled.duration_ms[50] <= 400
    assert pooled.opening_ms[50] > 1.2 * pooled.closing_ms[50]
    # intervals broad and right-skewed
    assert 0.4 <= pooled.ibi_cv <= 1.4
    assert pooled.ibi_pct_s[50] < np.mean(pooled.ibi_s)
    # double blinks occasional; lids nearly synchronous and nearly equal
    assert 0.01 <= pooled.double_fraction <= 0.2
    assert pooled.lag_ms_abs_median < 5
    assert pooled.amplitude_asymmetry_abs_median < 0.1


def test_real_gaze_is_within_published_human_ranges(real):
    active = stats.gaze_stats(_group(real, "emotion-hold", "speech-like", "performance"))
    # fixations ≈ 200-400 ms (Rayner 1998) in the takes where the performer is doing something
    assert 0.2 <= active.fixation_pct_s[50] <= 0.6
    assert 1.5 <= active.amplitude_pct_deg[50] <= 10
    # The idle take is a still face staring at the phone: long fixations, small refixations. That is
    # what idling looks like, not a conversational range, so it is held to its own numbers only.
    idle = stats.gaze_stats(_group(real, "rest"))
    assert idle.fixation_log_median_s > 1.0
    assert idle.amplitude_pct_deg[50] < 3.0
    # At 30-60 fps, with the tracker's smoothing, measured saccades are slower than eyes are: the
    # main sequence is checked on generated streams at 1 kHz (test_gaze.py), not here.
    assert active.main_sequence["duration_intercept_ms"] > 21


def test_real_eye_look_mapping_is_30_to_45_degrees(real):
    fit = stats.fit_eye_look(real.values())
    for value in (fit.out_deg, fit.in_deg, fit.up_deg, fit.down_deg):
        assert 20 <= value <= 50


def test_baked_constants_are_what_the_takes_give(real):
    fitted = stats.fit_parameters(real)
    baked = stats.baked_parameters()
    for key, value in baked.items():
        assert value == pytest.approx(fitted[key], rel=0.03), key
    # the numbers test_gaze.py holds generated streams to
    assert fitted["gaze.free_amplitude_measured_deg"] == pytest.approx(3.8, rel=0.03)
    assert fitted["gaze.free_fixation_measured_s"] == pytest.approx(0.45, rel=0.03)
    assert fitted["gaze.rest_fixation_measured_s"] == pytest.approx(1.8, rel=0.03)
    assert fitted["gaze.rest_amplitude_median_deg"] == pytest.approx(1.9, rel=0.03)
