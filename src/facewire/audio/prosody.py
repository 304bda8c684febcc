"""Acoustic features and prosody: loudness, F0, voicing, noise detection → brows, head nods, phrase ends.

:class:`FeatureExtractor` turns 16 kHz audio into one feature row per 10 ms hop, streamed (push
chunks, get the rows whose windows are complete; 16 ms look-ahead): RMS level (dBFS), F0 by YIN
(de Cheveigné & Kawahara 2002; cumulative-mean-normalised difference, threshold 0.15, 60-400 Hz,
on the signal low-passed and decimated to 8 kHz, computed for all frames at once with float32 FFT
cross-correlations), its aperiodicity, spectral flatness,
zero-crossing rate and spectral centroid.

:class:`ProsodyTracker` reads those rows causally (the same code live and offline) and gives, per
hop: a speech gate (voiced speech, widened ±150 ms to take in its unvoiced consonants: white noise,
breaths and hiss are aperiodic and flat-spectrum, so they never open it), loudness relative to the
speaker's running voiced peak, pitch in semitones over the speaker's running median, brow raise
(``browInnerUp``/``browOuterUp*``) and a head nod (head pitch, a few degrees down) on pitch accents
— loudness peaks of voiced syllables whose pitch stands ≥ 1.5 st over the median — and phrase
ends: speech followed by ≥ 250 ms without it.

:class:`LaughDetector` (run by the tracker, ``Prosody.laugh``) finds laughter: a steady beat of
aspirated voiced bursts ("h-a h-a h-a h-a"), which lip sync shows as a held smile. Breaths are
band-limited aperiodic noise: like hiss they never open the speech gate.

Phrase ends reach the blink layer through :class:`PhraseEndBlinks` (a stage wrapping a
``BlinkStage``: a frame whose ``extras`` hold ``lipsync.phraseEnd`` calls its ``phrase_end()``),
or from :attr:`ProsodyTracker.phrase_ends_s` / ``LipSync.phrase_ends_s`` for offline use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..frame import FaceFrame
from .io import SAMPLE_RATE

__all__ = [
    "HOP_S",
    "LOOKAHEAD_S",
    "PHRASE_END_KEY",
    "PHRASE_PAUSE_S",
    "FeatureExtractor",
    "Features",
    "LaughDetector",
    "PhraseEndBlinks",
    "Prosody",
    "ProsodyTracker",
    "yin",
]

HOP = 160
HOP_S = HOP / SAMPLE_RATE
"""Feature rate: one row per 10 ms."""

_WIN = 512  # energy/spectrum window (32 ms)
_YIN_RATE = SAMPLE_RATE // 2  # YIN runs at 8 kHz: F0 ≤ 400 Hz needs no more, and it is half the work
_YIN_W = 160  # YIN integration window (20 ms at 8 kHz)
_F0_MIN_HZ, _F0_MAX_HZ = 60.0, 400.0
_TAU_MIN = int(_YIN_RATE / _F0_MAX_HZ)
_TAU_MAX = (math.ceil(_YIN_RATE / _F0_MIN_HZ))
_HALFBAND = np.array([-1, 0, 9, 16, 9, 0, -1], np.float32) / 32  # low-pass before taking every 2nd sample
_YIN_SPAN = 2 * (_YIN_W + _TAU_MAX + 1) + _HALFBAND.size  # 16 kHz samples one row's YIN looks at
_AHEAD = _WIN // 2  # samples each row needs past its own time
_YIN_END = _YIN_W + _HALFBAND.size // 2  # 16 kHz samples the YIN span reaches past the row's time
_BLOCK = max(_WIN, _YIN_SPAN - _YIN_END + _AHEAD)  # samples one row looks at (its time at _BLOCK - _AHEAD)
_YIN_FFT = 1 << (math.ceil(math.log2(_YIN_W + _TAU_MAX + _YIN_W)))
_YIN_THRESHOLD = 0.15
_HANN = np.hanning(_WIN).astype(np.float32)
_FREQS = np.fft.rfftfreq(_WIN, 1.0 / SAMPLE_RATE).astype(np.float32)
_BAND = (_FREQS >= 100) & (_FREQS <= 6000)
_BAND_FREQS = _FREQS[_BAND]

LOOKAHEAD_S = _AHEAD / SAMPLE_RATE
"""How far past a row's time its window reaches (16 ms): the features' share of live latency."""

PHRASE_END_KEY = "lipsync.phraseEnd"
"""``FaceFrame.extras`` key set to 1.0 on the frame at which a phrase end is detected."""

PHRASE_PAUSE_S = 0.3
"""A pause this long after speech ends a phrase."""


@dataclass(frozen=True)
class Features:
    """Feature rows (one per `HOP_S`) from row ``start`` on; every field is a float32 array."""

    start: int
    rms_db: np.ndarray
    f0_hz: np.ndarray  # 0 where unvoiced
    aperiodicity: np.ndarray  # YIN's d′ at the chosen lag: ~0 periodic … ~1 noise
    flatness: np.ndarray  # spectral flatness 100-6000 Hz: ~0 tonal … ~0.56 white noise
    zcr: np.ndarray  # zero crossings per sample
    centroid_hz: np.ndarray

    def __len__(self) -> int:
        return int(self.rms_db.size)

    @property
    def t_s(self) -> np.ndarray:
        return (self.start + np.arange(len(self))) * HOP_S

    @staticmethod
    def empty(start: int = 0) -> Features:
        z = np.zeros(0, np.float32)
        return Features(start, z, z, z, z, z, z)

    @staticmethod
    def concat(parts: Sequence[Features]) -> Features:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Features.empty()
        return Features(parts[0].start, *(np.concatenate([getattr(p, f.name) for p in parts])
                                          for f in fields(Features) if f.name != "start"))

    def tail(self, start: int) -> Features:
        """The rows from absolute row ``start`` on."""
        k = max(0, start - self.start)
        return Features(self.start + k, *(getattr(self, f.name)[k:] for f in fields(Features) if f.name != "start"))


def yin(blocks: np.ndarray, rate: int = _YIN_RATE) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz, 0 where aperiodic) and aperiodicity for rows of ``blocks`` (n × L at 8 kHz, L ≥ W + τmax).

    Each row's integration window is its first ``_YIN_W`` samples and lags reach forward. float32
    throughout (scipy's FFT: several times faster than numpy's for float32, and precise enough).
    """
    import scipy.fft

    n = blocks.shape[0]
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    x = np.ascontiguousarray(blocks[:, : _YIN_W + _TAU_MAX + 1], dtype=np.float32)
    spec_x = scipy.fft.rfft(x, _YIN_FFT, axis=1)
    spec_h = scipy.fft.rfft(x[:, :_YIN_W], _YIN_FFT, axis=1)
    r = scipy.fft.irfft(spec_x * np.conj(spec_h), _YIN_FFT, axis=1)[:, : _TAU_MAX + 1]  # Σ_j x_j x_{j+τ}
    sq = np.zeros((n, x.shape[1] + 1), np.float32)
    np.cumsum(x * x, axis=1, out=sq[:, 1:])
    taus = np.arange(_TAU_MAX + 1)
    e0 = sq[:, _YIN_W][:, None]
    et = sq[:, taus + _YIN_W] - sq[:, taus]
    d = np.maximum(e0 + et - 2.0 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    dn = np.ones_like(d)
    dn[:, 1:] = d[:, 1:] * taus[1:].astype(np.float32) / np.maximum(cum, 1e-12)
    band = dn[:, _TAU_MIN: _TAU_MAX]
    below = band < _YIN_THRESHOLD
    # first dip under the threshold, then walk to its local minimum; else the global minimum
    first = np.where(below.any(axis=1), below.argmax(axis=1), band.argmin(axis=1))
    idx = first.copy()
    rows = np.arange(n)
    for _ in range(12):  # the local minimum is a few lags after the crossing
        nxt = np.minimum(idx + 1, band.shape[1] - 1)
        step = band[rows, nxt] < band[rows, idx]
        if not step.any():
            break
        idx = np.where(step, nxt, idx)
    aper = band[rows, idx]
    tau = (idx + _TAU_MIN).astype(np.float64)
    # parabolic interpolation around the minimum
    lo, hi = np.clip(idx - 1, 0, band.shape[1] - 1), np.clip(idx + 1, 0, band.shape[1] - 1)
    a, b, c = band[rows, lo], band[rows, idx], band[rows, hi]
    den = (a - 2 * b + c).astype(np.float64)
    shift = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(den == 0, 1, den), 0.0)
    tau = tau + np.clip(shift, -1, 1)
    silent = e0[:, 0] < 1e-7 * _YIN_W
    f0 = np.where((aper < 0.35) & ~silent, rate / tau, 0.0)
    aper = np.where(silent, 1.0, np.clip(aper, 0.0, 1.0))
    return f0.astype(np.float32), aper.astype(np.float32)


class FeatureExtractor:
    """Streaming feature rows: :meth:`push` 16 kHz samples, get the rows now complete; :meth:`flush` the rest."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # Signal padded in front with zeros so that row k's block is buf[k*HOP - offset : … + _BLOCK].
        self._buf = np.zeros(_BLOCK - _AHEAD, np.float32)
        self._next = 0  # next row to compute
        self._samples = 0  # real samples pushed
        self._buf_row0 = 0  # row whose block starts at buf[0]

    @property
    def samples_pushed(self) -> int:
        return self._samples

    @property
    def rows_done(self) -> int:
        return self._next

    def push(self, samples: np.ndarray) -> Features:
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._samples += x.size
        self._buf = np.concatenate([self._buf, x])
        return self._rows(limit=None)

    def flush(self) -> Features:
        """Rows up to the end of the audio pushed so far (their windows padded with silence)."""
        last = (math.ceil(self._samples / HOP))  # rows 0..last-1 cover the audio
        need = (last - 1 - self._buf_row0) * HOP + _BLOCK - self._buf.size
        if need > 0:
            self._buf = np.concatenate([self._buf, np.zeros(need, np.float32)])
        return self._rows(limit=last)

    def _rows(self, limit: int | None) -> Features:
        avail = (self._buf.size - _BLOCK) // HOP + 1 + self._buf_row0  # rows whose block is complete
        stop = avail if limit is None else min(avail, limit)
        if stop <= self._next:
            return Features.empty(self._next)
        k0 = self._next - self._buf_row0
        count = stop - self._next
        view = np.lib.stride_tricks.sliding_window_view(self._buf, _BLOCK)[k0 * HOP: (k0 + count - 1) * HOP + 1: HOP]
        feats = _features(view, self._next)
        self._next = stop
        drop = (self._next - self._buf_row0) * HOP
        self._buf = self._buf[drop:].copy()
        self._buf_row0 = self._next
        return feats


def _features(blocks: np.ndarray, start: int) -> Features:
    import scipy.fft

    win = blocks[:, -_WIN:]
    rms = np.sqrt(np.einsum("ij,ij->i", win, win, dtype=np.float64) / _WIN)
    rms_db = 20 * np.log10(rms + 1e-9)
    spec = scipy.fft.rfft(win * _HANN, axis=1)
    band = spec[:, _BAND]
    band = band.real ** 2 + band.imag ** 2 + np.float32(1e-12)
    flatness = np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1)
    centroid = (band @ _BAND_FREQS) / band.sum(axis=1)
    signs = np.signbit(win)
    zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / np.float32(_WIN - 1)
    # YIN at 8 kHz: integration window centred on the row's time, lags reaching back → reverse the
    # block, low-pass it and keep every second sample.
    centre = _BLOCK - _AHEAD
    seg = blocks[:, centre + _YIN_END - _YIN_SPAN: centre + _YIN_END][:, ::-1]
    k = _HALFBAND.size
    m = seg.shape[1] - k + 1  # filtered samples, of which every second one is kept
    f0, aper = yin(sum(_HALFBAND[j] * seg[:, j: j + m: 2] for j in range(k) if _HALFBAND[j]))
    quiet = rms_db < -60
    flatness = np.where(quiet, 1.0, flatness)
    return Features(start, rms_db.astype(np.float32), np.where(quiet, 0, f0).astype(np.float32),
                    np.where(quiet, 1.0, aper).astype(np.float32), flatness.astype(np.float32),
                    zcr.astype(np.float32), centroid.astype(np.float32))


# -- prosody --------------------------------------------------------------------------------------
_VOICED_APER = 0.3
_VOICED_FLATNESS = 0.3
_GATE_WIDEN = 15  # rows (150 ms) each side of voiced speech
_GATE_MIN_VOICED = 4  # a voiced run shorter than 40 ms is a click or a creak, not speech
_ACCENT_ST = 1.5
_PEAK_DECAY_DB_PER_S = 2.0
_LOUD_RANGE_DB = 30.0
_FLOOR_RISE_DB_PER_S = 1.0


@dataclass(frozen=True)
class Prosody:
    """Per-row controls from row ``start`` on (arrays, float32) and the phrase ends found in them (s)."""

    start: int
    gate: np.ndarray  # 0 … 1: is this speech
    loudness: np.ndarray  # 0 … 1 relative to the speaker's voiced peak
    pitch_st: np.ndarray  # semitones over the running median (0 unvoiced)
    brow: np.ndarray  # 0 … 1
    nod_deg: np.ndarray  # head pitch offset (negative = nod down)
    phrase_end: np.ndarray  # 1 on the row a phrase end is detected
    voiced: np.ndarray
    laugh: np.ndarray | None = None  # 0 … 1: laughter detected (see `LaughDetector`)

    def __len__(self) -> int:
        return int(self.gate.size)


class ProsodyTracker:
    """Causal prosody from feature rows (see the module doc); :meth:`push` rows in order."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.peak_db = -20.0
        self.floor_db = -60.0
        self.median_st = 0.0
        self.have_median = False
        self.voiced_run = 0
        self.since_voiced = 10_000
        self.in_phrase = False
        self.speech_rows = 0
        self.brow = 0.0
        self.brow_target = 0.0
        self.nod = 0.0
        self.nod_v = 0.0
        self.nod_kick = 0.0
        self.loud_hist: list[float] = [0.0, 0.0, 0.0]
        self.pitch_hist: list[float] = [0.0, 0.0, 0.0]
        self.last_accent = -10_000
        self.gate = 0.0
        self.pending_gate: list[float] = []
        self.phrase_ends_s: list[float] = []
        self.row = 0
        self.smooth_loud = 0.0
        self.laugh = LaughDetector()

    def push(self, f: Features) -> Prosody:
        n = len(f)
        out = {k: np.zeros(n, np.float32) for k in ("gate", "loudness", "pitch_st", "brow", "nod_deg", "phrase_end",
                                                   "voiced", "laugh")}
        rms, f0, aper, flat = f.rms_db.tolist(), f.f0_hz.tolist(), f.aperiodicity.tolist(), f.flatness.tolist()
        start = f.start
        decay = _PEAK_DECAY_DB_PER_S * HOP_S
        for i in range(n):
            row = start + i
            db = rms[i]
            # noise floor: fast down, slow up — a slowly rising floor cannot mistake speech for noise
            self.floor_db = db if db < self.floor_db else self.floor_db + _FLOOR_RISE_DB_PER_S * HOP_S
            voiced = (f0[i] > 0 and aper[i] < _VOICED_APER and flat[i] < _VOICED_FLATNESS
                      and db > max(self.floor_db + 9.0, -55.0))
            self.voiced_run = self.voiced_run + 1 if voiced else 0
            speech = self.voiced_run >= _GATE_MIN_VOICED or (voiced and self.since_voiced < _GATE_WIDEN)
            if speech:
                if self.since_voiced > _GATE_WIDEN:
                    # speech starts: widen it back over the unvoiced onset (a causal gate can only ramp up)
                    pass
                self.since_voiced = 0
            else:
                self.since_voiced += 1
            target = 1.0 if self.since_voiced <= _GATE_WIDEN else 0.0
            # the onset opens fast (20 ms), the release is slower (60 ms)
            self.gate += (target - self.gate) * (0.5 if target > self.gate else 0.15)
            # loudness against the voiced peak (instant attack, slow release)
            if voiced:
                self.peak_db = max(db, self.peak_db - decay)
            loud = min(1.0, max(0.0, (db - (self.peak_db - _LOUD_RANGE_DB)) / _LOUD_RANGE_DB))
            self.smooth_loud += (loud - self.smooth_loud) * 0.5
            # pitch over the running median (an exponential estimate of the median in semitones)
            st = 0.0
            if voiced and f0[i] > 0:
                abs_st = 12.0 * math.log2(f0[i] / 100.0)
                if not self.have_median:
                    self.median_st, self.have_median = abs_st, True
                else:
                    self.median_st += 0.02 if abs_st > self.median_st else -0.02
                st = abs_st - self.median_st
            # accents: a voiced loudness peak two rows ago, with raised pitch
            self.loud_hist = self.loud_hist[1:] + [loud if voiced else 0.0]
            self.pitch_hist = self.pitch_hist[1:] + [st]
            l0, l1, l2 = self.loud_hist
            if (l1 > 0.55 and l1 >= l0 and l1 > l2 and self.pitch_hist[1] >= _ACCENT_ST
                    and row - self.last_accent > 25):
                strength = min(1.0, (self.pitch_hist[1] - _ACCENT_ST) / 4.0 + 0.4) * l1
                self.brow_target = max(self.brow_target, 0.7 * strength)
                self.nod_kick = -2.5 * strength
                self.last_accent = row
            # brow: attack towards the target, which decays (≈ 0.35 s)
            self.brow += (self.brow_target - self.brow) * 0.25
            self.brow_target *= 0.97
            # head nod: a critically damped spring kicked on accents (≈ 3 Hz)
            w = 2 * math.pi * 2.5
            acc = w * w * (self.nod_kick - self.nod) - 2 * w * self.nod_v
            self.nod_v += acc * HOP_S
            self.nod += self.nod_v * HOP_S
            self.nod_kick *= 0.85
            # phrase ends
            end = 0.0
            if self.since_voiced == 0:
                self.in_phrase = True
                self.speech_rows += 1
            elif self.in_phrase and self.since_voiced * HOP_S >= PHRASE_PAUSE_S:
                if self.speech_rows * HOP_S >= 0.2:
                    end = 1.0
                    self.phrase_ends_s.append((row - self.since_voiced + 1) * HOP_S)
                self.in_phrase, self.speech_rows = False, 0
            out["gate"][i] = self.gate
            out["loudness"][i] = self.smooth_loud * self.gate
            out["pitch_st"][i] = st
            out["brow"][i] = self.brow
            out["nod_deg"][i] = self.nod
            out["phrase_end"][i] = end
            out["voiced"][i] = voiced
            out["laugh"][i] = self.laugh.push(row, voiced, db > self.floor_db + 12.0 and flat[i] > 0.1)
        self.row = start + n
        return Prosody(start, **out)

    def finish(self) -> Prosody:
        """At the end of the audio: a phrase still open ends here."""
        end = np.zeros(0, np.float32)
        if self.in_phrase and self.speech_rows * HOP_S >= 0.2:
            self.phrase_ends_s.append((self.row - self.since_voiced) * HOP_S)
            self.in_phrase = False
            end = np.ones(1, np.float32)
        z = np.zeros(end.size, np.float32)
        return Prosody(self.row, z, z, z, z + self.brow, z + self.nod, end, z, z + self.laugh.level)


_LAUGH_BURST_ROWS = (4, 25)  # a "ha": 40-250 ms of voice
_LAUGH_PERIOD_ROWS = (13, 40)  # one every 130-400 ms (2.5-7.5 Hz)
_LAUGH_BURSTS = 4  # this many in a row, regular
_LAUGH_CV = 0.2  # period and burst-length variation allowed (coefficient of variation)
_LAUGH_RELEASE = 0.12  # per row once the bursts stop (≈ 100 ms to let go)


class LaughDetector:
    """Laughter from the voicing track, causally: ≥ 4 voiced bursts ("ha") of 40-250 ms at a steady
    2.5-7.5 Hz, their lengths and periods varying < 20 %, each gap between them breathy (aspirated
    noise well over the floor, not the silence of a stop). Speech rarely keeps such a beat with an
    /h/ before every syllable; a spoken "ha ha ha ha" is taken for a laugh (it looks like one).

    :meth:`push` per row gives the laugh level (0 … 1): 1 from the burst that completes the pattern
    while bursts keep coming on beat, released over ≈ 100 ms after the beat stops. Breaths (aperiodic)
    and noise never make voiced bursts, so they never count.
    """

    def __init__(self) -> None:
        self.bursts: list[tuple[int, int, bool]] = []  # (onset row, length rows, breathy gap before it)
        self.run = 0
        self.gap_rows = self.gap_breathy = 0
        self.level = 0.0
        self.active_until = -1

    def push(self, row: int, voiced: bool, breathy: bool) -> float:
        if voiced:
            if self.run == 0:  # a burst starts: judge the gap before it
                gap_ok = self.gap_rows > 0 and self.gap_breathy >= 0.5 * self.gap_rows
                self.bursts.append((row, 0, gap_ok))
                self.bursts = self.bursts[-_LAUGH_BURSTS - 1:]
            self.run += 1
            self.gap_rows = self.gap_breathy = 0
        else:
            if self.run:
                onset, _, gap_ok = self.bursts[-1]
                self.bursts[-1] = (onset, self.run, gap_ok)
                if self._pattern():
                    period = float(np.mean(np.diff([b[0] for b in self.bursts[-_LAUGH_BURSTS:]])))
                    self.active_until = row + int(1.5 * period)  # the next "ha" is due within a period
            self.run = 0
            self.gap_rows += 1
            self.gap_breathy += breathy
        if row <= self.active_until:
            self.level = 1.0
        else:
            self.level = max(0.0, self.level - _LAUGH_RELEASE)
        return self.level

    def _pattern(self) -> bool:
        last = self.bursts[-_LAUGH_BURSTS:]
        if len(last) < _LAUGH_BURSTS:
            return False
        lengths = np.array([b[1] for b in last], float)
        periods = np.diff([b[0] for b in last]).astype(float)
        if not (_LAUGH_BURST_ROWS[0] <= lengths.min() and lengths.max() <= _LAUGH_BURST_ROWS[1]):
            return False
        if not (_LAUGH_PERIOD_ROWS[0] <= periods.min() and periods.max() <= _LAUGH_PERIOD_ROWS[1]):
            return False
        if periods.std() > _LAUGH_CV * periods.mean() or lengths.std() > _LAUGH_CV * lengths.mean():
            return False
        return all(b[2] for b in last[1:])  # aspirated gaps: "h-a h-a"


class PhraseEndBlinks:
    """Stage: hands phrase ends marked on lip-sync frames to a ``BlinkStage``, then lets it blink.

    ``process(frame)`` calls ``blink.phrase_end()`` when the frame's ``extras`` hold
    :data:`PHRASE_END_KEY`, and returns ``blink.process(frame)``.
    """

    def __init__(self, blink: Any) -> None:
        self.blink = blink

    def process(self, frame: FaceFrame) -> FaceFrame:
        out = self.blink.process(frame)
        if frame.extras.get(PHRASE_END_KEY):
            self.blink.phrase_end()
        return out

    def reset(self) -> None:
        self.blink.reset()
