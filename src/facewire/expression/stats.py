"""Blink and gaze statistics of a face stream, the same ruler for real takes and generated streams.

`BlinkStage` and `GazeStage` are fitted to numbers this module measures on the real Live Link Face
takes (``tools/fit_blink_gaze.py`` prints them), and their tests measure the generated streams with
the very same detectors, so "the avatar blinks like the takes" is one comparison, not two methods.

Blinks (`detect_blinks`): the mean of ``eyeBlinkLeft``/``eyeBlinkRight`` minus a running baseline
(10th percentile over ``baseline_s``), so a held squint does not count. A blink is a peak at least
``min_amplitude`` above the baseline (and that prominent). Each side of it is measured from its own
resting level, the lowest lid within `FLANK_BEFORE_S` before and `FLANK_AFTER_S` after the peak:
the upper lid follows the eye down (Becker & Fuchs 1988), so a blink that comes with a downward gaze
shift ends on a higher level than it started from, and measured from the start's level it would
never end. Its duration is the width at half height (FWHM: the time the lid is more than half
closed, each side's half measured from that side's level); onset and offset are where each side
crosses 10 % (linearly interpolated between samples); ``closing`` is onset → peak, ``opening`` peak →
offset. Left out (`BlinkStats.closures`): peaks wider than ``max_fwhm_s`` at half height (deliberate
closures) and lid holds, peaks flat at the top (`MAX_PLATEAU`: the lid following a downward
fixation). Left/right asymmetry: the lag between the two eyes' 50 % crossings on the way down and
the difference of their amplitudes over their mean.

Gaze (`detect_saccades`): the cyclopean gaze (mean of both eyes, degrees). Samples during blinks
(the tracker loses the iris and reports the eye rolling down) and without a face hold the last good
value, so a gaze shift hidden by a blink reappears as one step when the lid opens. A saccade is a
run of samples whose speed exceeds ``velocity_deg_s``, joined across one slower sample, whose
amplitude is at least ``min_amplitude_deg``; a fixation is the time between two saccades. At 30-60
fps a saccade lasts one to four samples, so the durations and peak velocities measured on real
takes are limits of the sampling (and of the tracker's smoothing), not of the eye; the main sequence
is checked on generated streams sampled at 1 kHz.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
from scipy.ndimage import percentile_filter
from scipy.signal import find_peaks

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame

__all__ = [
    "DOUBLE_BLINK_GAP_S",
    "REAL_TAKES",
    "SPONTANEOUS_GROUPS",
    "Blink",
    "BlinkStats",
    "EyeLookFit",
    "GazeStats",
    "Recording",
    "Saccade",
    "blink_stats",
    "blink_template",
    "detect_blinks",
    "detect_saccades",
    "fit_blink_shape",
    "fit_eye_look",
    "fit_main_sequence",
    "fixation_durations",
    "gaze_stats",
    "lid_coupling",
    "load_recording",
    "real_takes",
]

_BLINK_L = arkit.INDEX["eyeBlinkLeft"]
_BLINK_R = arkit.INDEX["eyeBlinkRight"]

DOUBLE_BLINK_GAP_S = 0.5
"""Two blinks whose peaks are closer than this are a double blink (the lid never settles open)."""

FLANK_BEFORE_S = 0.3
"""How far before a blink's peak its closing side's resting level is looked for (lowest lid level):
**design**, longer than the closing phase (≈ 70-100 ms) and short enough to stay in one fixation."""

FLANK_AFTER_S = 0.5
"""How far after the peak the opening side's resting level is looked for: **design**, longer than
the slow reopening tail (the lid is 90 % open ≈ 130-200 ms after the peak in the takes)."""

MAX_PLATEAU = 0.8
"""A peak whose width at 80 % of its height exceeds this share of its width at half height is a lid
hold, not a blink: **data**. A blink's lid does not stay at its peak (the real blinks measure
0.40-0.70, 5th-95th percentile, 163 blinks of the spontaneous takes, one above 0.8), whereas the
upper lid following the eye down for a fixation holds its level (0.9-1.0)."""

# The real takes in ``../shared/data/takes`` (see its README), grouped by what the performer does.
# Blink rates and intervals come from the takes where blinking is spontaneous; the range-of-motion
# takes close the eyes on purpose and serve only the eyeLook ↔ angle fit.
REAL_TAKES: Mapping[str, str] = MappingProxyType({
    "neurosync/default.csv": "rest",  # 51 s idle, 60 fps
    "neurosync/MySlate_161_iPhone_cal.csv": "emotion-hold",  # fearful, silent, 60 fps
    "neurosync/MySlate_162_iPhone_cal.csv": "emotion-hold",  # fearful
    "neurosync/MySlate_164_iPhone_cal.csv": "emotion-hold",  # angry/disgusted
    "neurosync/MySlate_165_iPhone_cal.csv": "emotion-hold",  # angry/disgusted
    "neurosync/MySlate_167_iPhone_cal.csv": "emotion-hold",  # sad
    "neurosync/MySlate_168_iPhone_cal.csv": "emotion-hold",  # sad
    "alexdjulin/apfel.csv": "speech-like",  # word-like mouth bursts, 30 fps
    "alexdjulin/S07-001.csv": "performance",  # smiles and expressions, 30 fps
    "alexdjulin/S88-001.csv": "performance",
    "alexdjulin/facial.csv": "performance",
    "alexdjulin/alex_rom_3.csv": "range-of-motion",  # every shape on purpose, eyes closed and rolled
    "alexdjulin/alex_rom_4.csv": "range-of-motion",
    "jmtechart/MySlate_3_Jason_Millers_iPhone.csv": "range-of-motion",  # 5.5 s of brows and mouth
})
"""Real take (relative to the takes directory) → activity group."""

SPONTANEOUS_GROUPS = ("rest", "emotion-hold", "speech-like", "performance")
"""Groups whose blinks are spontaneous (the range-of-motion takes close the eyes on purpose)."""


# -- recordings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recording:
    """A stream as arrays: times (s, from the first frame), weights N×52, gaze N×4, tracked N.

    ``gaze`` columns are left yaw, left pitch, right yaw, right pitch in degrees (`Gaze` order).
    """

    t_s: np.ndarray
    weights: np.ndarray
    gaze: np.ndarray
    tracked: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        n = len(self.t_s)
        if self.weights.shape != (n, arkit.COUNT) or self.gaze.shape != (n, 4) or self.tracked.shape != (n,):
            raise InputError(f"recording {self.name!r}: expected N×52 weights, N×4 gaze and N tracked flags "
                             f"for N={n} times, got {self.weights.shape}, {self.gaze.shape}, {self.tracked.shape}")
        if n > 1 and np.any(np.diff(self.t_s) <= 0):
            raise InputError(f"recording {self.name!r}: expected strictly increasing frame times")

    @classmethod
    def from_frames(cls, frames: Iterable[FaceFrame], name: str = "") -> Recording:
        t, w, g, tr = [], [], [], []
        for f in frames:
            t.append(f.t_ns)
            w.append(f.weights)
            g.append((f.gaze.left_yaw_deg, f.gaze.left_pitch_deg, f.gaze.right_yaw_deg, f.gaze.right_pitch_deg))
            tr.append(f.tracked)
        if not t:
            raise InputError(f"recording {name!r}: expected at least one frame, got none")
        t_ns = np.array(t, dtype=np.int64)
        return cls(t_s=(t_ns - t_ns[0]) / 1e9, weights=np.array(w, dtype=np.float32),
                   gaze=np.array(g, dtype=np.float64), tracked=np.array(tr, dtype=bool), name=name)

    @property
    def fps(self) -> float:
        return 1.0 / float(np.median(np.diff(self.t_s))) if len(self.t_s) > 1 else float("nan")

    @property
    def tracked_s(self) -> float:
        """Time with a face: the sum of the frame intervals that start on a tracked frame."""
        if len(self.t_s) < 2:
            return 0.0
        dt = np.diff(self.t_s)
        return float(dt[self.tracked[:-1]].sum())

    def segments(self, max_gap_frames: float = 2.5) -> list[slice]:
        """Runs of tracked frames without a time gap longer than ``max_gap_frames`` frame periods."""
        if len(self.t_s) == 0:
            return []
        period = 1.0 / self.fps if len(self.t_s) > 1 else 1.0
        breaks = np.ones(len(self.t_s), dtype=bool)
        breaks[1:] = np.diff(self.t_s) > max_gap_frames * period
        out, start = [], None
        for i in range(len(self.t_s)):
            if start is not None and (not self.tracked[i] or breaks[i]):
                out.append(slice(start, i))
                start = None
            if start is None and self.tracked[i]:
                start = i
        if start is not None:
            out.append(slice(start, len(self.t_s)))
        return out


def load_recording(path: str | os.PathLike[str]) -> Recording:
    """A take file (any format `read_take` knows) as a `Recording`."""
    from ..takes import read_take

    return Recording.from_frames(read_take(path), name=Path(path).name)


def real_takes(takes_dir: str | os.PathLike[str], groups: Sequence[str] | None = None) -> dict[str, Recording]:
    """The real takes of `REAL_TAKES` under ``takes_dir`` (optionally only some groups), by relative name."""
    root = Path(takes_dir)
    out = {}
    for rel, group in REAL_TAKES.items():
        if groups is None or group in groups:
            out[rel] = load_recording(root / rel)
    return out


# -- blinks -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Blink:
    """One blink: peak time (s), amplitude above baseline, phase durations (s), left/right asymmetry."""

    t_s: float
    amplitude: float
    closing_s: float
    opening_s: float
    fwhm_s: float
    lag_ms: float  # left eye's 50 % crossing minus the right eye's: > 0 when the left lid is late
    amplitude_asymmetry: float  # (left − right) / mean of the two amplitudes

    @property
    def duration_s(self) -> float:
        return self.closing_s + self.opening_s


def _crossing(y: np.ndarray, k: int, level: float, step: int, stop: int) -> float:
    """Fractional index where y falls to ``level`` walking from peak k in direction ``step``."""
    i = k
    while (i + step - stop) * step <= 0 and y[i + step] > level:
        i += step
    j = i + step
    if (j - stop) * step > 0:  # never got down there before the bound: the bound's sample
        return float(i)
    a, b = y[i], y[j]
    return i + step * ((a - level) / (a - b) if a != b else 0.0)


def _above_base(y: np.ndarray, size: int) -> np.ndarray:
    """The trace over its running 10th percentile (``size`` samples): the lids' own resting level."""
    return y - percentile_filter(y, 10, size=size, mode="nearest")


def detect_blinks(rec: Recording, *, min_amplitude: float = 0.2, max_fwhm_s: float = 0.4,
                  baseline_s: float = 2.0, flank_before_s: float = FLANK_BEFORE_S,
                  flank_after_s: float = FLANK_AFTER_S, max_plateau: float = MAX_PLATEAU) -> tuple[list[Blink], int]:
    """The spontaneous blinks of a recording and the number of other lid peaks left out.

    Left out (counted in the second value): closures whose width at half height exceeds
    ``max_fwhm_s`` (deliberate) and lid holds, peaks that stay near their top for more than
    ``max_plateau`` of their half-height width (the upper lid following the eye down for a fixation).
    Each side of a blink is measured from its own flank level (see the module doc).
    """
    blinks: list[Blink] = []
    left_out = 0
    fps = rec.fps
    before, after = max(1, round(flank_before_s * fps)), max(1, round(flank_after_s * fps))
    for seg in rec.segments():
        w = rec.weights[seg].astype(np.float64)
        n = len(w)
        if n < 5:
            continue
        size = max(3, round(baseline_s * fps) | 1)

        left, right = _above_base(w[:, _BLINK_L], size), _above_base(w[:, _BLINK_R], size)
        x = _above_base((w[:, _BLINK_L] + w[:, _BLINK_R]) / 2, size)
        peaks, _ = find_peaks(x, height=min_amplitude, prominence=min_amplitude)
        for n_k, k in enumerate(peaks):
            lo = int(peaks[n_k - 1]) if n_k > 0 else 0
            hi = int(peaks[n_k + 1]) if n_k + 1 < len(peaks) else n - 1
            if n_k > 0:  # between two peaks, walk no further than the valley between them
                lo = lo + int(np.argmin(x[lo:k + 1]))
            if n_k + 1 < len(peaks):
                hi = k + int(np.argmin(x[k:hi + 1]))
            # each side's own resting level: a lid that settles lower or higher after the blink
            # (the eye looked down or up meanwhile) must not stretch the blink to the next gaze shift
            pre = float(x[max(lo, k - before):k + 1].min())
            post = float(x[k:min(hi, k + after) + 1].min())
            amp = float(x[k])
            if amp - max(pre, post) <= 0:
                left_out += 1
                continue
            rise, fall = (x - pre) / (amp - pre), (x - post) / (amp - post)

            def width(level: float, rise: np.ndarray = rise, fall: np.ndarray = fall, k: int = int(k),
                      lo: int = lo, hi: int = hi) -> tuple[float, float]:
                return _crossing(rise, k, level, -1, lo), _crossing(fall, k, level, +1, hi)

            h0, h1 = width(0.5)
            half = h1 - h0
            p0, p1 = width(0.8)
            if half / fps > max_fwhm_s or (p1 - p0) > max_plateau * half:
                left_out += 1
                continue
            onset, offset = width(0.1)
            win = slice(max(k - 3, lo), min(k + 4, hi + 1))
            kl = win.start + int(np.argmax(left[win]))
            kr = win.start + int(np.argmax(right[win]))
            al, ar = left[kl], right[kr]
            if min(al, ar) > 0.25 * amp:
                tl = _crossing(left / al, kl, 0.5, -1, lo)
                tr = _crossing(right / ar, kr, 0.5, -1, lo)
                lag_ms = (tl - tr) / fps * 1e3
                asym = float((al - ar) / ((al + ar) / 2))
            else:  # one eye only (a wink or a tracking slip): no pairing to measure
                lag_ms, asym = float("nan"), float("nan")
            blinks.append(Blink(t_s=float(rec.t_s[seg][k]), amplitude=amp - pre, closing_s=(k - onset) / fps,
                                opening_s=(offset - k) / fps, fwhm_s=half / fps, lag_ms=float(lag_ms),
                                amplitude_asymmetry=asym))
    return blinks, left_out


def _intervals(rec: Recording, times: Sequence[float]) -> np.ndarray:
    """Intervals between consecutive event times that fall in the same tracked segment."""
    segs = rec.segments()
    out = []
    for seg in segs:
        t0, t1 = rec.t_s[seg.start], rec.t_s[seg.stop - 1]
        inside = [t for t in times if t0 <= t <= t1]
        out.extend(np.diff(inside))
    return np.array(out, dtype=np.float64)


def _pct(values: np.ndarray, q: Sequence[float] = (10, 25, 50, 75, 90)) -> dict[int, float]:
    return {int(p): (float(np.percentile(values, p)) if len(values) else float("nan")) for p in q}


@dataclass(frozen=True)
class BlinkStats:
    """Blink statistics over one or more recordings (times in s unless the name says ms)."""

    blinks: int
    closures: int
    minutes: float
    rate_per_min: float
    ibi_s: np.ndarray = field(repr=False)
    ibi_pct_s: dict[int, float]
    ibi_cv: float
    ibi_log_sigma: float  # σ of log(interval), pooled within recordings, double blinks left out
    double_fraction: float
    closing_ms: dict[int, float]
    opening_ms: dict[int, float]
    fwhm_ms: dict[int, float]
    duration_ms: dict[int, float]
    lag_ms_sd: float
    lag_ms_abs_median: float
    amplitude_asymmetry_sd: float
    amplitude_asymmetry_abs_median: float
    amplitude_pct: dict[int, float]

    def summary(self) -> str:
        p = self.ibi_pct_s
        return (f"{self.blinks} blinks in {self.minutes:.1f} min: {self.rate_per_min:.1f}/min; "
                f"interval p10/50/90 {p[10]:.2f}/{p[50]:.2f}/{p[90]:.2f} s, CV {self.ibi_cv:.2f}, "
                f"log-σ {self.ibi_log_sigma:.2f}; double {self.double_fraction:.1%}; "
                f"closing {self.closing_ms[50]:.0f} ms, opening {self.opening_ms[50]:.0f} ms "
                f"(FWHM {self.fwhm_ms[50]:.0f}, onset→offset {self.duration_ms[50]:.0f}); "
                f"L−R lag sd {self.lag_ms_sd:.1f} ms, amplitude asymmetry sd {self.amplitude_asymmetry_sd:.3f}; "
                f"{self.closures} closures and lid holds left out")


def blink_stats(recordings: Iterable[Recording], **detect: float) -> BlinkStats:
    """Detect blinks in each recording and pool their statistics."""
    all_blinks: list[Blink] = []
    ibis, log_dev = [], []
    closures = 0
    seconds = 0.0
    for rec in recordings:
        blinks, c = detect_blinks(rec, **detect)
        closures += c
        seconds += rec.tracked_s
        all_blinks.extend(blinks)
        ibi = _intervals(rec, [b.t_s for b in blinks])
        ibis.append(ibi)
        single = ibi[ibi >= DOUBLE_BLINK_GAP_S]
        if len(single) >= 3:  # deviations from each recording's own mean: rates differ between takes
            logs = np.log(single)
            log_dev.append(logs - logs.mean())
    ibi = np.concatenate(ibis) if ibis else np.zeros(0)
    dev = np.concatenate(log_dev) if log_dev else np.zeros(0)
    ms = lambda attr: _pct(np.array([getattr(b, attr) for b in all_blinks]) * 1e3)
    lags = np.array([b.lag_ms for b in all_blinks])
    asym = np.array([b.amplitude_asymmetry for b in all_blinks])
    lags, asym = lags[np.isfinite(lags)], asym[np.isfinite(asym)]
    n = len(all_blinks)
    minutes = seconds / 60.0
    return BlinkStats(
        blinks=n,
        closures=closures,
        minutes=minutes,
        rate_per_min=n / minutes if minutes > 0 else float("nan"),
        ibi_s=ibi,
        ibi_pct_s=_pct(ibi),
        ibi_cv=float(ibi.std() / ibi.mean()) if len(ibi) > 1 else float("nan"),
        ibi_log_sigma=float(np.sqrt((dev ** 2).sum() / max(len(dev) - len(log_dev), 1))) if len(dev) else float("nan"),
        double_fraction=float((ibi < DOUBLE_BLINK_GAP_S).sum() / n) if n else float("nan"),
        closing_ms=ms("closing_s"),
        opening_ms=ms("opening_s"),
        fwhm_ms=ms("fwhm_s"),
        duration_ms=ms("duration_s"),
        lag_ms_sd=float(lags.std()) if len(lags) else float("nan"),
        lag_ms_abs_median=float(np.median(np.abs(lags))) if len(lags) else float("nan"),
        amplitude_asymmetry_sd=float(asym.std()) if len(asym) else float("nan"),
        amplitude_asymmetry_abs_median=float(np.median(np.abs(asym))) if len(asym) else float("nan"),
        amplitude_pct=_pct(np.array([b.amplitude for b in all_blinks])),
    )


# -- gaze ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Saccade:
    """One saccade of the cyclopean gaze: onset time (s), amplitude (°), duration (s), peak speed (°/s)."""

    t_s: float
    amplitude_deg: float
    duration_s: float
    peak_velocity_deg_s: float
    end_s: float


def _cyclopean(rec: Recording, seg: slice, blink_mask_level: float, mask_pad_s: float) -> np.ndarray:
    g = rec.gaze[seg]
    eye = np.stack([(g[:, 0] + g[:, 2]) / 2, (g[:, 1] + g[:, 3]) / 2], axis=1)
    lids = np.maximum(rec.weights[seg, _BLINK_L], rec.weights[seg, _BLINK_R]).astype(np.float64)
    # the lid level that means "blinking" is relative to the lids' own resting level
    bad = lids > np.percentile(lids, 10) + blink_mask_level
    pad = round(mask_pad_s * rec.fps)
    if pad > 0 and bad.any():
        kernel = np.ones(2 * pad + 1)
        bad = np.convolve(bad.astype(float), kernel, mode="same") > 0
    if bad.all():
        return np.full_like(eye, np.nan)
    first = int(np.argmin(bad))
    eye[:first] = eye[first]
    for i in range(first + 1, len(eye)):
        if bad[i]:
            eye[i] = eye[i - 1]
    return eye


def detect_saccades(rec: Recording, *, velocity_deg_s: float = 30.0, min_amplitude_deg: float = 1.0,
                    blink_mask_level: float = 0.3, mask_pad_s: float = 0.1) -> tuple[list[Saccade], list[float]]:
    """Saccades of a recording and the durations (s) of the fixations between them (see the module doc)."""
    saccades: list[Saccade] = []
    fixations: list[float] = []
    for seg in rec.segments():
        t = rec.t_s[seg]
        if len(t) < 4:
            continue
        eye = _cyclopean(rec, seg, blink_mask_level, mask_pad_s)
        if not np.isfinite(eye).all():
            continue
        speed = np.zeros(len(t))
        speed[1:] = np.linalg.norm(np.diff(eye, axis=0), axis=1) / np.diff(t)  # sample i−1 → i
        fast = speed > velocity_deg_s
        # join runs split by a single slower sample (noise at the peak of a sampled saccade)
        gap = ~fast[1:-1] & fast[:-2] & fast[2:]
        fast[1:-1] |= gap
        edges = np.diff(np.r_[0, fast.astype(np.int8), 0])
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        seg_saccades = []
        for s, e in zip(starts, stops):  # samples s..e−1 moved; the eye left eye[s−1], arrived at eye[e−1]
            a, b = max(s - 1, 0), e - 1
            amp = float(np.linalg.norm(eye[b] - eye[a]))
            if amp < min_amplitude_deg:
                continue
            seg_saccades.append(Saccade(t_s=float(t[a]), amplitude_deg=amp, duration_s=float(t[b] - t[a]),
                                        peak_velocity_deg_s=float(speed[s:e].max()), end_s=float(t[b])))
        saccades.extend(seg_saccades)
        # fixations between two saccades of the segment; the first and the last are cut by its ends
        fixations.extend(nxt.t_s - cur.end_s for cur, nxt in itertools.pairwise(seg_saccades))
    return saccades, fixations


def fixation_durations(rec: Recording, **detect: float) -> np.ndarray:
    """Durations (s) of the fixations between detected saccades."""
    return np.array(detect_saccades(rec, **detect)[1])


def fit_main_sequence(amplitude_deg: np.ndarray, duration_s: np.ndarray,
                      peak_velocity_deg_s: np.ndarray) -> dict[str, float]:
    """Least-squares fits of duration = slope·A + intercept and peak velocity = Vmax·(1 − e^(−A/C)).

    Returns ``duration_slope_ms_per_deg``, ``duration_intercept_ms``, ``vmax_deg_s``, ``c_deg``.
    """
    a = np.asarray(amplitude_deg, dtype=np.float64)
    d = np.asarray(duration_s, dtype=np.float64) * 1e3
    v = np.asarray(peak_velocity_deg_s, dtype=np.float64)
    if len(a) < 3:
        nan = float("nan")
        return {"duration_slope_ms_per_deg": nan, "duration_intercept_ms": nan, "vmax_deg_s": nan, "c_deg": nan}
    slope, intercept = np.polyfit(a, d, 1)
    best = (math.inf, float("nan"), float("nan"))
    for c in np.geomspace(1.0, 60.0, 400):  # Vmax is linear given C: solve it, scan C
        basis = 1.0 - np.exp(-a / c)
        vmax = float(basis @ v / (basis @ basis))
        err = float(((v - vmax * basis) ** 2).sum())
        if err < best[0]:
            best = (err, vmax, float(c))
    return {"duration_slope_ms_per_deg": float(slope), "duration_intercept_ms": float(intercept),
            "vmax_deg_s": best[1], "c_deg": best[2]}


@dataclass(frozen=True)
class GazeStats:
    """Saccade and fixation statistics over one or more recordings."""

    saccades: int
    seconds: float
    rate_per_s: float
    amplitude_pct_deg: dict[int, float]
    amplitude_log_median_deg: float
    amplitude_log_sigma: float
    fixation_pct_s: dict[int, float]
    fixation_log_median_s: float
    fixation_log_sigma: float
    main_sequence: dict[str, float]
    amplitude_deg: np.ndarray = field(repr=False)
    fixation_s: np.ndarray = field(repr=False)

    def summary(self) -> str:
        a, f, m = self.amplitude_pct_deg, self.fixation_pct_s, self.main_sequence
        return (f"{self.saccades} saccades in {self.seconds:.0f} s ({self.rate_per_s:.2f}/s); amplitude "
                f"p10/50/90 {a[10]:.1f}/{a[50]:.1f}/{a[90]:.1f}° (log-normal median {self.amplitude_log_median_deg:.1f}°, "
                f"σ {self.amplitude_log_sigma:.2f}); fixation p10/50/90 {f[10]:.2f}/{f[50]:.2f}/{f[90]:.2f} s "
                f"(log-normal median {self.fixation_log_median_s:.2f} s, σ {self.fixation_log_sigma:.2f}); "
                f"duration ≈ {m['duration_slope_ms_per_deg']:.2f} ms/°·A + {m['duration_intercept_ms']:.0f} ms, "
                f"peak velocity ≈ {m['vmax_deg_s']:.0f}·(1 − e^(−A/{m['c_deg']:.1f}°)) °/s")


def _log_fit(x: np.ndarray) -> tuple[float, float]:
    x = x[x > 0]
    if len(x) < 2:
        return float("nan"), float("nan")
    logs = np.log(x)
    return float(np.exp(logs.mean())), float(logs.std(ddof=1))


def gaze_stats(recordings: Iterable[Recording], **detect: float) -> GazeStats:
    """Detect saccades and fixations in each recording and pool their statistics."""
    sacc: list[Saccade] = []
    fix: list[float] = []
    seconds = 0.0
    for rec in recordings:
        s, f = detect_saccades(rec, **detect)
        sacc.extend(s)
        fix.extend(f)
        seconds += rec.tracked_s
    amp = np.array([s.amplitude_deg for s in sacc])
    fixa = np.array(fix)
    amp_med, amp_sigma = _log_fit(amp)
    fix_med, fix_sigma = _log_fit(fixa)
    return GazeStats(
        saccades=len(sacc),
        seconds=seconds,
        rate_per_s=len(sacc) / seconds if seconds > 0 else float("nan"),
        amplitude_pct_deg=_pct(amp),
        amplitude_log_median_deg=amp_med,
        amplitude_log_sigma=amp_sigma,
        fixation_pct_s=_pct(fixa),
        fixation_log_median_s=fix_med,
        fixation_log_sigma=fix_sigma,
        main_sequence=fit_main_sequence(amp, np.array([s.duration_s for s in sacc]),
                                        np.array([s.peak_velocity_deg_s for s in sacc])),
        amplitude_deg=amp,
        fixation_s=fixa,
    )


# -- eyeLook ↔ angle ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class EyeLookFit:
    """Degrees of eye rotation at which each eyeLook direction reaches weight 1 (a line through 0)."""

    out_deg: float
    in_deg: float
    up_deg: float
    down_deg: float
    samples: int


def fit_eye_look(recordings: Iterable[Recording], *, min_angle_deg: float = 1.0,
                 blink_mask_level: float = 0.3) -> EyeLookFit:
    """Fit weight = angle / full-scale for each direction on tracked, open-eyed frames of both eyes.

    ``eyeLookOutLeft`` and ``eyeLookInRight`` rise with positive yaw (to the subject's left),
    ``eyeLookInLeft`` and ``eyeLookOutRight`` with negative yaw; ``eyeLookUp*`` with positive pitch,
    ``eyeLookDown*`` with negative pitch (`Gaze` conventions).
    """
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"out": [], "in": [], "up": [], "down": []}
    samples = 0
    for rec in recordings:
        lids = np.maximum(rec.weights[:, _BLINK_L], rec.weights[:, _BLINK_R])
        ok = rec.tracked & (lids < np.percentile(lids, 10) + blink_mask_level)
        samples += int(ok.sum())
        w, g = rec.weights[ok].astype(np.float64), rec.gaze[ok]
        idx = arkit.INDEX
        for side, yaw, pitch in (("Left", g[:, 0], g[:, 1]), ("Right", g[:, 2], g[:, 3])):
            left_side = yaw if side == "Left" else -yaw  # towards this eye's own side = "out"
            pairs["out"].append((left_side, w[:, idx["eyeLookOut" + side]]))
            pairs["in"].append((-left_side, w[:, idx["eyeLookIn" + side]]))
            pairs["up"].append((pitch, w[:, idx["eyeLookUp" + side]]))
            pairs["down"].append((-pitch, w[:, idx["eyeLookDown" + side]]))
    full = {}
    for key, items in pairs.items():
        ang = np.concatenate([a for a, _ in items]) if items else np.zeros(0)
        wt = np.concatenate([b for _, b in items]) if items else np.zeros(0)
        use = ang > min_angle_deg
        slope = float((ang[use] * wt[use]).sum() / (ang[use] ** 2).sum()) if use.any() else float("nan")
        full[key] = 1.0 / slope if slope > 0 else float("nan")
    return EyeLookFit(out_deg=full["out"], in_deg=full["in"], up_deg=full["up"], down_deg=full["down"], samples=samples)


def lid_coupling(recordings: Iterable[Recording], *, min_angle_deg: float = 1.0) -> tuple[float, float]:
    """Per degree of vertical gaze, open-eyed: eyeBlink gained looking down, eyeWide gained looking up.

    Least-squares slopes through zero of the mean eyeBlink (over its 10th percentile) against
    downward pitch, and of the mean eyeWide against upward pitch, on frames without a blink.
    """
    down_x, down_y, up_x, up_y = [], [], [], []
    for rec in recordings:
        lids = (rec.weights[:, _BLINK_L] + rec.weights[:, _BLINK_R]) / 2.0
        rest = np.percentile(lids[rec.tracked], 10) if rec.tracked.any() else 0.0
        pitch = (rec.gaze[:, 1] + rec.gaze[:, 3]) / 2.0
        # open-eyed: not within 0.3 s of a blink peak (the tracker reports the eye rolling down in a blink)
        blink_t = np.array([b.t_s for b in detect_blinks(rec)[0]])
        near = np.zeros(len(rec.t_s), dtype=bool)
        for tb in blink_t:
            near |= np.abs(rec.t_s - tb) < 0.3
        ok = rec.tracked & ~near
        wide = (rec.weights[:, arkit.INDEX["eyeWideLeft"]] + rec.weights[:, arkit.INDEX["eyeWideRight"]]) / 2.0
        down = ok & (pitch < -min_angle_deg)
        up = ok & (pitch > min_angle_deg)
        down_x.append(-pitch[down]); down_y.append(np.clip(lids[down] - rest, 0, 1))
        up_x.append(pitch[up]); up_y.append(wide[up])
    dx, dy = np.concatenate(down_x), np.concatenate(down_y)
    ux, uy = np.concatenate(up_x), np.concatenate(up_y)
    return float(dx @ dy / (dx @ dx)), float(ux @ uy / (ux @ ux))


# -- blink shape ----------------------------------------------------------------------------------------
def blink_template(recordings: Iterable[Recording], *, min_fps: float = 50.0, before_s: float = 0.3,
                   after_s: float = 0.6) -> tuple[np.ndarray, np.ndarray, int]:
    """The median blink, each normalised to its peak and aligned at its peak sample.

    Only recordings sampled at ``min_fps`` or faster take part (at 30 fps the closing phase is two
    samples). Returns sample times relative to the peak (s), the median trace and the blink count.
    """
    traces: list[np.ndarray] = []
    fps_seen: list[float] = []
    for rec in recordings:
        fps = rec.fps
        if not fps >= min_fps:
            continue
        before, after = round(before_s * fps), round(after_s * fps)
        for seg in rec.segments():
            w = rec.weights[seg].astype(np.float64)
            x = _above_base((w[:, _BLINK_L] + w[:, _BLINK_R]) / 2, max(3, round(2.0 * fps) | 1))
            times = rec.t_s[seg]
            for b in detect_blinks(Recording(times, rec.weights[seg], rec.gaze[seg], rec.tracked[seg]))[0]:
                k = int(np.argmin(np.abs(times - b.t_s)))
                if k - before < 0 or k + after >= len(x):
                    continue
                traces.append(x[k - before:k + after + 1] / x[k])
                fps_seen.append(fps)
    if not traces:
        raise InputError(f"blink template: no blinks in recordings sampled at {min_fps:g} fps or faster")
    lengths = {len(t) for t in traces}
    if len(lengths) > 1:
        raise InputError("blink template: recordings at different frame rates; pass one rate at a time")
    fps = float(np.median(fps_seen))
    n = len(traces[0])
    return (np.arange(n) - round(before_s * fps)) / fps, np.median(np.array(traces), axis=0), len(traces)


def fit_blink_shape(t_s: np.ndarray, template: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (closing_s, opening_tau_s, opening_shape) of `blink.blink_curve` to a template.

    The model is sampled like the template: at the template's rate, with the true peak anywhere
    within half a sample of the peak sample, aligned and normalised at its highest sample.
    """
    from scipy.optimize import minimize

    from .blink import blink_curve

    t_s = np.asarray(t_s, dtype=np.float64)
    dt = float(np.median(np.diff(t_s)))
    phases = np.linspace(-0.5, 0.5, 9)[:-1] * dt

    def model(params: np.ndarray) -> np.ndarray:
        closing, tau, shape = params
        acc = np.zeros_like(t_s)
        for ph in phases:
            grid = t_s + closing + ph
            y = blink_curve(grid, closing, tau, shape)
            k = int(np.argmax(y))
            shift = k - int(np.argmin(np.abs(t_s)))
            acc += np.roll(y, -shift) / y[k]
        return acc / len(phases)

    def loss(params: np.ndarray) -> float:
        closing, tau, shape = params
        if not (0.01 < closing < 0.5 and 0.01 < tau < 0.5 and 0.5 < shape < 4.0):
            return 1e9
        return float(((model(params) - template) ** 2).sum())

    best = minimize(loss, np.array([0.09, 0.08, 1.5]), method="Nelder-Mead",
                    options={"xatol": 1e-5, "fatol": 1e-9, "maxiter": 4000})
    closing, tau, shape = (float(v) for v in best.x)
    return closing, tau, shape


# -- everything the stages bake in ----------------------------------------------------------------------
def fit_parameters(recordings: Mapping[str, Recording]) -> dict[str, float]:
    """The data-derived numbers baked into `blink` and `gaze`, measured on the real takes.

    ``recordings`` maps names of `REAL_TAKES` (as `real_takes` returns them) to recordings. Keys
    name the constant they feed; ``tools/fit_blink_gaze.py`` prints them beside the baked values.
    """
    def group(*names: str) -> list[Recording]:
        return [r for k, r in recordings.items() if REAL_TAKES.get(k) in names]

    spontaneous = group(*SPONTANEOUS_GROUPS)
    silent = blink_stats(group("rest", "emotion-hold"))
    pooled = blink_stats(spontaneous)
    performance = blink_stats(group("performance"))
    t, y, _ = blink_template(spontaneous)
    closing, tau, shape = fit_blink_shape(t, y)
    look = fit_eye_look(recordings.values())
    down, up = lid_coupling(recordings.values())
    everything = gaze_stats(recordings.values())
    rest_gaze = gaze_stats(group("rest"))
    listening_gaze = gaze_stats(group("performance"))
    speaking_gaze = gaze_stats(group("speech-like"))
    return {
        "blink.rate_rest_per_min": silent.rate_per_min,
        "blink.interval_log_sigma": pooled.ibi_log_sigma,
        "blink.double_fraction": pooled.double_fraction,
        "blink.closing_s": closing,
        "blink.opening_tau_s": tau,
        "blink.opening_shape": shape,
        "blink.lag_sd_s": performance.lag_ms_sd / 1e3,
        "blink.amplitude_asymmetry_sd": pooled.amplitude_asymmetry_sd,
        "gaze.look_full_out_deg": look.out_deg,
        "gaze.look_full_in_deg": look.in_deg,
        "gaze.look_full_up_deg": look.up_deg,
        "gaze.look_full_down_deg": look.down_deg,
        "gaze.lid_follow_down_per_deg": down,
        "gaze.lid_raise_up_per_deg": up,
        "gaze.free_amplitude_measured_deg": everything.amplitude_log_median_deg,
        "gaze.free_amplitude_log_sigma": everything.amplitude_log_sigma,
        "gaze.free_fixation_measured_s": everything.fixation_log_median_s,
        "gaze.free_fixation_log_sigma": everything.fixation_log_sigma,
        "gaze.rest_fixation_measured_s": rest_gaze.fixation_log_median_s,
        "gaze.rest_fixation_log_sigma": rest_gaze.fixation_log_sigma,
        "gaze.rest_amplitude_median_deg": rest_gaze.amplitude_pct_deg[50],
        "gaze.listening_fixation_median_s": listening_gaze.fixation_pct_s[50],
        "gaze.speaking_fixation_median_s": speaking_gaze.fixation_pct_s[50],
    }


def baked_parameters() -> dict[str, float]:
    """The constants baked into `BlinkParams` and `GazeParams`, keyed as `fit_parameters` keys them."""
    from . import blink, gaze  # the stages do not depend on this module

    p = blink.BlinkParams()
    g = gaze.GazeParams()
    # blink.rate_rest_per_min is not baked from the takes: the avatar's rest rate is the published
    # population mean (see `blink.RATES_PER_MIN`); the tool prints the takes' rate beside it.
    return {
        "blink.interval_log_sigma": p.interval_log_sigma,
        "blink.double_fraction": p.double_fraction,
        "blink.closing_s": p.closing_s,
        "blink.opening_tau_s": p.opening_tau_s,
        "blink.opening_shape": p.opening_shape,
        "blink.lag_sd_s": p.lag_sd_s,
        "blink.amplitude_asymmetry_sd": p.amplitude_asymmetry_sd,
        "gaze.look_full_out_deg": g.look_full_deg["out"],
        "gaze.look_full_in_deg": g.look_full_deg["in"],
        "gaze.look_full_up_deg": g.look_full_deg["up"],
        "gaze.look_full_down_deg": g.look_full_deg["down"],
        "gaze.lid_follow_down_per_deg": g.lid_follow_down_per_deg,
        "gaze.lid_raise_up_per_deg": g.lid_raise_up_per_deg,
        "gaze.free_amplitude_log_sigma": g.free_amplitude[1],
        "gaze.free_fixation_log_sigma": g.free_fixation[1],
        "gaze.rest_fixation_log_sigma": g.behaviour["rest"].fixation[1],
    }
