"""Phones + audio → coarticulated, prosody-modulated ARKit frames: the heart of lip sync.

Two channels, after JALI (Edwards et al. 2016): **lips** follow the phones' visemes blended by
Cohen–Massaro dominance functions, **jaw** opening follows the same visemes scaled by loudness.

- *Dominance.* Every phone owns its interval (dominance 1) and spreads ``α·exp(−(d/s)²)`` outside it
  (``d`` the distance to the interval, ``s`` its reach: anticipatory before, carry-over after).
  A viseme's weight at time t is its phones' share of the total dominance, so a rounded /uw/
  (α 0.9, 120 ms) reaches ahead into "s-t-r" while /t/ /k/ /n/ /s/ (α 0.4: the tongue does their
  work) barely colour their neighbours, and /h/ (α 0.15 even inside itself) takes its vowel's
  shape. Table: :data:`DOMINANCE`.
- *Closures.* Bilabials must close and labiodentals must touch, whatever the neighbours want: a
  closure envelope (1 over the phone, 20 ms cosine ramps) overrides the blend with the PP pose
  (mouthPress, mouthRoll*, jawOpen 0.05 → ≤ 0.1 at every P/B/M) or pulls towards FF
  (mouthRollLower, mouthUpperUp*) with strength 0.7.
- *Dynamics.* jawOpen = viseme jaw × (0.35 + 0.9·loudness); other mouth shapes × (0.55 + 0.6·loudness);
  both × the speech gate of `facewire.audio.prosody` (white noise, breaths, hiss: mouth stays
  closed). Brows and a head nod come from the prosody tracker (pitch accents); the frame on which a
  phrase end is detected carries ``extras["lipsync.phraseEnd"] = 1``.
- *Without phones* (live frames whose phones are still pending, or no recogniser): an acoustic
  estimate — openness from loudness, the vowel family from the spectral centroid (low → rounded
  oh/ou, high → spread E/ih, else aa), frication → SS — drives the same channels.

:class:`Animator` is the streaming engine (push audio and final phones, take the frames that are
ready); :func:`animate` runs it once over a whole utterance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from .. import arkit, mouth
from ..errors import InputError
from ..frame import FaceFrame, HeadPose
from .io import SAMPLE_RATE, Resampler, sanitize
from .phones import SILENCE, Phone
from .prosody import (
    HOP_S,
    PHRASE_END_KEY,
    FeatureExtractor,
    Features,
    Prosody,
    ProsodyTracker,
)

__all__ = ["DOMINANCE", "REACH_S", "Animator", "animate"]


@dataclass(frozen=True)
class _Dominance:
    alpha: float
    ahead_s: float  # anticipatory reach
    after_s: float  # carry-over reach


DOMINANCE: Mapping[str, _Dominance] = MappingProxyType({
    "sil": _Dominance(0.35, 0.06, 0.06),
    "PP": _Dominance(1.0, 0.05, 0.05),
    "FF": _Dominance(0.9, 0.05, 0.05),
    "TH": _Dominance(0.7, 0.05, 0.05),
    "DD": _Dominance(0.4, 0.05, 0.05),
    "kk": _Dominance(0.4, 0.05, 0.05),
    "CH": _Dominance(0.8, 0.07, 0.06),
    "SS": _Dominance(0.45, 0.05, 0.05),
    "nn": _Dominance(0.4, 0.05, 0.05),
    "RR": _Dominance(0.6, 0.07, 0.06),
    "aa": _Dominance(0.8, 0.08, 0.07),
    "E": _Dominance(0.8, 0.08, 0.07),
    "ih": _Dominance(0.8, 0.08, 0.07),
    "oh": _Dominance(0.85, 0.1, 0.08),
    "ou": _Dominance(0.9, 0.12, 0.09),
})
"""Viseme → dominance (α, anticipatory and carry-over reach in seconds); HH uses α 0.15."""

_HH_ALPHA = 0.15
REACH_S = 0.4
"""How far a phone's dominance is taken into account (3.3 × the longest reach: exp(−11), nothing left)."""
_RAMP_S = 0.02
_FF_STRENGTH = 0.7
_CHUNK_FRAMES = 600

_NV = len(mouth.VISEMES)
_V = {v: i for i, v in enumerate(mouth.VISEMES)}
_POSES = np.array([[mouth.VISEME_POSES[v].get(n, 0.0) for n in arkit.NAMES] for v in mouth.VISEMES], np.float64)
_JAW = arkit.INDEX["jawOpen"]
_MOUTH_COLS = np.array([i for i, n in enumerate(arkit.NAMES) if n.startswith(("mouth", "cheek", "tongue")) or
                        n in ("jawForward",)], np.intp)
_BROWS = (arkit.INDEX["browInnerUp"], arkit.INDEX["browOuterUpLeft"], arkit.INDEX["browOuterUpRight"])
_ALPHA = np.array([DOMINANCE[v].alpha for v in mouth.VISEMES])
_AHEAD = np.array([DOMINANCE[v].ahead_s for v in mouth.VISEMES])
_AFTER = np.array([DOMINANCE[v].after_s for v in mouth.VISEMES])
_BILABIAL = frozenset(("P", "B", "M"))
_LABIODENTAL = frozenset(("F", "V"))


class _PhoneTable:
    """Phones as arrays (start, end, viseme, α, closure kind) for vectorised dominance."""

    def __init__(self) -> None:
        self.phones: list[Phone] = []
        self._arrays: tuple[np.ndarray, ...] | None = None
        self.offset = 0  # index of phones[0] in the whole sequence (old ones are dropped)

    def extend(self, phones: Sequence[Phone]) -> None:
        for p in phones:
            if not isinstance(p, Phone):
                raise InputError(f"phones: expected Phone values, got {type(p).__name__}")
            if self.phones and p.start_s < self.phones[-1].start_s - 1e-6:
                raise InputError(f"phones: expected increasing start times, got {p.start_s:.3f} s after "
                                 f"{self.phones[-1].start_s:.3f} s")
            self.phones.append(p)
        self._arrays = None

    @property
    def end_s(self) -> float:
        return self.phones[-1].end_s if self.phones else 0.0

    def drop_before(self, t_s: float) -> None:
        k = 0
        # keep one phone before the window: HH looks at its neighbours
        while k + 2 < len(self.phones) and self.phones[k + 1].end_s < t_s:
            k += 1
        if k:
            self.phones = self.phones[k:]
            self.offset += k
            self._arrays = None

    def arrays(self) -> tuple[np.ndarray, ...]:
        if self._arrays is None:
            labels = [p.label for p in self.phones]
            vis = np.array([_V[v] for v in mouth.phone_visemes(labels)], np.intp)
            start = np.array([p.start_s for p in self.phones])
            end = np.array([p.end_s for p in self.phones])
            alpha = _ALPHA[vis].copy() if len(vis) else np.zeros(0)
            hh = np.array([lab == "HH" for lab in labels], bool)
            if hh.size:
                alpha[hh] = _HH_ALPHA
            kind = np.array([1 if lab in _BILABIAL else 2 if lab in _LABIODENTAL else 0 for lab in labels], np.intp)
            self._arrays = (start, end, vis, alpha, kind)
        return self._arrays


def _lip_visemes(t: np.ndarray, table: _PhoneTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Viseme weights (n × 15), bilabial closure and labiodental contact (n) at times ``t``."""
    start, end, vis, alpha, kind = table.arrays()
    n = t.size
    lo = np.searchsorted(end, t[0] - REACH_S) if n else 0
    hi = np.searchsorted(start, t[-1] + REACH_S) if n else 0
    if hi <= lo:
        w = np.zeros((n, _NV))
        w[:, 0] = 1.0
        return w, np.zeros(n), np.zeros(n)
    s, e, v, a, k = start[lo:hi], end[lo:hi], vis[lo:hi], alpha[lo:hi], kind[lo:hi]
    tt = t[:, None]
    before = np.maximum(s[None, :] - tt, 0.0) / _AHEAD[v][None, :]
    after = np.maximum(tt - e[None, :], 0.0) / _AFTER[v][None, :]
    inside = (before == 0) & (after == 0)
    # A phone fully owns its own interval (dominance 1, HH excepted); outside, it spreads with α·exp(−(d/s)²).
    own = np.where(a < _HH_ALPHA + 1e-9, _HH_ALPHA, 1.0)
    dom = np.where(inside, own[None, :], a[None, :] * np.exp(-((before + after) ** 2)))
    onehot = np.zeros((v.size, _NV))
    onehot[np.arange(v.size), v] = 1.0
    total = dom.sum(axis=1, keepdims=True)
    w = (dom @ onehot) / np.maximum(total, 1e-12)
    w[total[:, 0] < 1e-9] = np.eye(_NV)[0]
    # closure envelopes: 1 inside the phone, cosine ramps of _RAMP_S outside
    dist = np.maximum(np.maximum(s[None, :] - tt, tt - e[None, :]), 0.0)
    env = np.where(dist < _RAMP_S, 0.5 * (1.0 + np.cos(np.pi * dist / _RAMP_S)), 0.0)
    close = np.where(k[None, :] == 1, env, 0.0).max(axis=1)
    touch = np.where(k[None, :] == 2, env, 0.0).max(axis=1)
    return w, close, touch


def _acoustic_visemes(loud: np.ndarray, gate: np.ndarray, voiced: np.ndarray, centroid: np.ndarray,
                      flatness: np.ndarray) -> np.ndarray:
    """A viseme mix from the sound alone (see the module doc)."""
    n = loud.size
    w = np.zeros((n, _NV))
    openness = np.clip(loud * gate * 1.1, 0.0, 1.0) * (voiced > 0.5)
    rounded = np.clip((900.0 - centroid) / 500.0, 0.0, 1.0)
    front = np.clip((centroid - 1400.0) / 900.0, 0.0, 1.0)
    w[:, _V["aa"]] = openness * (1 - rounded) * (1 - front)
    w[:, _V["oh"]] = openness * rounded * 0.6
    w[:, _V["ou"]] = openness * rounded * 0.4
    w[:, _V["E"]] = openness * front * 0.6
    w[:, _V["ih"]] = openness * front * 0.4
    fric = (voiced < 0.5) & (flatness > 0.2) & (gate > 0.5)
    w[:, _V["SS"]] = np.where(fric, 0.6 * gate, 0.0)
    w[:, 0] = np.clip(1.0 - w[:, 1:].sum(axis=1), 0.0, 1.0)
    return w


def _compose(lip: np.ndarray, close: np.ndarray, touch: np.ndarray, loud: np.ndarray, amp: np.ndarray,
             brow: np.ndarray, acoustic: np.ndarray) -> np.ndarray:
    """ARKit weights (n × 52) from the lip channel, closures and controls."""
    lip = lip.copy()
    pp, ff = np.zeros(_NV), np.zeros(_NV)
    pp[_V["PP"]], ff[_V["FF"]] = 1.0, 1.0
    t = (touch * _FF_STRENGTH)[:, None]
    lip = lip * (1 - t) + t * ff
    c = close[:, None]
    lip = lip * (1 - c) + c * pp
    shapes = lip @ _POSES
    # acoustic frames already carry loudness in their viseme mix: no second loudness factor
    jaw_gain = np.where(acoustic, 1.0, 0.35 + 0.9 * loud)
    lip_gain = np.where(acoustic, 1.0, 0.55 + 0.6 * loud)
    out = np.zeros_like(shapes)
    # a closure is articulated fully whatever the loudness or the gate (a pressed mouth never flaps)
    lip_scale = lip_gain * amp * (1 - np.maximum(close, touch)) + np.maximum(close, touch)
    out[:, _MOUTH_COLS] = shapes[:, _MOUTH_COLS] * lip_scale[:, None]
    jaw = shapes[:, _JAW] * jaw_gain * amp
    out[:, _JAW] = jaw * (1 - close) + close * np.minimum(jaw, 0.05)
    out[:, _BROWS[0]] = brow
    out[:, _BROWS[1]] = 0.8 * brow
    out[:, _BROWS[2]] = 0.8 * brow
    return np.clip(out, 0.0, 1.0).astype(np.float32)


class Animator:
    """Streaming lip-sync engine: push 16 kHz audio and final phones, take the frames that are ready.

    ``phones``: ``"wait"`` (a frame waits until the phones around it are final: offline with a
    recogniser), ``"use"`` (phones where final, the acoustic estimate where still pending: live),
    ``"none"`` (acoustic estimate only). ``capture_ns`` given to :meth:`frames` is stamped on them.
    """

    def __init__(self, fps: float = 60.0, *, phones: str = "wait", source: str = "lipsync") -> None:
        if not (isinstance(fps, (int, float)) and 1 <= fps <= 1000):
            raise InputError(f"fps: expected 1..1000 frames per second, got {fps!r}")
        if phones not in ("wait", "use", "none"):
            raise InputError(f"phones: expected 'wait', 'use' or 'none', got {phones!r}")
        self.fps, self.mode, self.source = float(fps), phones, source
        self._features = FeatureExtractor()
        self._prosody = ProsodyTracker()
        self._table = _PhoneTable()
        self._phones_final_s = 0.0
        self._rows: dict[str, np.ndarray] = {}
        self._row0 = 0
        self._next = 0  # next frame index
        self._audio_ended = False
        self._phones_ended = phones == "none"
        self._pending_end = 0.0
        self._end_row = None

    # -- input --------------------------------------------------------------------------------
    @property
    def phrase_ends_s(self) -> list[float]:
        return list(self._prosody.phrase_ends_s)

    @property
    def audio_s(self) -> float:
        return self._features.samples_pushed / SAMPLE_RATE

    def push_audio(self, samples: np.ndarray) -> None:
        self._append(self._features.push(sanitize(samples, "audio chunk")))

    def end_audio(self) -> None:
        if not self._audio_ended:
            self._append(self._features.flush())
            end = self._prosody.finish()
            if len(end) and self._rows:
                self._rows["phrase_end"][-1] = max(self._rows["phrase_end"][-1], end.phrase_end[0])
            self._audio_ended = True

    def push_phones(self, phones: Sequence[Phone], *, final_until_s: float | None = None) -> None:
        self._table.extend(phones)
        self._phones_final_s = max(self._phones_final_s, final_until_s if final_until_s is not None
                                   else self._table.end_s)

    def end_phones(self) -> None:
        self._phones_ended = True
        self._phones_final_s = math.inf

    def _append(self, f: Features) -> None:
        if not len(f):
            return
        p: Prosody = self._prosody.push(f)
        new = {"gate": p.gate, "loud": p.loudness, "brow": p.brow, "nod": p.nod_deg, "phrase_end": p.phrase_end,
               "voiced": p.voiced, "centroid": f.centroid_hz, "flatness": f.flatness}
        if not self._rows:
            self._rows, self._row0 = new, f.start
        else:
            self._rows = {k: np.concatenate([self._rows[k], v]) for k, v in new.items()}

    # -- output -------------------------------------------------------------------------------
    def _frame_total(self) -> int:
        """Frames over the whole audio (known once it ended): one per 1/fps, at least one."""
        return max(1, (math.ceil(self.audio_s * self.fps - 1e-9)))

    def _ready_count(self) -> int:
        rows_end = self._row0 + (self._rows["gate"].size if self._rows else 0)
        if self._audio_ended:
            limit = self._frame_total()
        else:
            # a frame needs the feature row at or after its time
            limit = (math.floor((rows_end - 1) * HOP_S * self.fps)) + 1 if rows_end else 0
        if self.mode == "wait" and not self._phones_ended:
            limit = min(limit, (math.floor((self._phones_final_s - REACH_S) * self.fps)) + 1)
        return max(limit, self._next)

    def frames(self, capture_ns: int = 0) -> list[FaceFrame]:
        """Every frame that is ready now, in order."""
        stop = self._ready_count()
        out: list[FaceFrame] = []
        while self._next < stop:
            k1 = min(stop, self._next + _CHUNK_FRAMES)
            out.extend(self._render(self._next, k1, capture_ns))
            self._next = k1
        self._trim()
        return out

    def _render(self, k0: int, k1: int, capture_ns: int) -> list[FaceFrame]:
        t = np.arange(k0, k1) / self.fps
        rows = self._rows
        n_rows = rows["gate"].size if rows else 0
        if n_rows:
            r = np.clip(np.round(t / HOP_S).astype(np.intp) - self._row0, 0, n_rows - 1)
            gate, loud, brow, nod = rows["gate"][r], rows["loud"][r], rows["brow"][r], rows["nod"][r]
            voiced, centroid, flat = rows["voiced"][r], rows["centroid"][r], rows["flatness"][r]
            # a phrase end lands on the first frame at or after its row
            ends = np.zeros(t.size, bool)
            flagged = np.flatnonzero(rows["phrase_end"] > 0)
            if flagged.size:
                frame_of = np.ceil((flagged + self._row0) * HOP_S * self.fps - 1e-9).astype(np.intp)
                if self._audio_ended:  # a phrase end detected past the last frame lands on the last one
                    frame_of = np.minimum(frame_of, self._frame_total() - 1)
                hit = frame_of[(frame_of >= k0) & (frame_of < k1)] - k0
                ends[hit] = True
        else:
            gate = loud = brow = nod = voiced = centroid = flat = np.zeros(t.size)
            ends = np.zeros(t.size, bool)
        gate = np.asarray(gate, np.float64)
        use_phones = self.mode != "none" and bool(self._table.phones)
        if use_phones:
            lip, close, touch = _lip_visemes(t, self._table)
            covered = (t + REACH_S <= self._phones_final_s) | (self._phones_ended and self.mode != "none")
        else:
            lip, close, touch = np.zeros((t.size, _NV)), np.zeros(t.size), np.zeros(t.size)
            covered = np.zeros(t.size, bool)
        if not n_rows and use_phones:
            # phones without audio: speech wherever a phone is not silence, at a fixed loudness
            gate, loud, brow, nod = self._phone_controls(t)
        acoustic = ~covered
        if acoustic.any():
            est = _acoustic_visemes(np.asarray(loud, np.float64), gate, np.asarray(voiced, np.float64),
                                    np.asarray(centroid, np.float64), np.asarray(flat, np.float64))
            lip = np.where(acoustic[:, None], est, lip)
            close = np.where(acoustic, 0.0, close)
            touch = np.where(acoustic, 0.0, touch)
        weights = _compose(lip, close, touch, np.asarray(loud, np.float64), gate, np.asarray(brow, np.float64),
                           acoustic)
        frames = []
        for i in range(t.size):
            k = k0 + i
            frames.append(FaceFrame(
                t_ns=round(k * 1e9 / self.fps), seq=k, source=self.source, weights=weights[i],
                head=HeadPose(pitch_deg=float(nod[i])), capture_ns=capture_ns,
                extras={PHRASE_END_KEY: 1.0} if ends[i] else {},
            ))
        return frames

    def _phone_controls(self, t: np.ndarray) -> tuple[np.ndarray, ...]:
        start, end, vis, _, _ = self._table.arrays()
        i = np.clip(np.searchsorted(end, t, side="right"), 0, max(0, end.size - 1))
        speaking = (vis[i] != 0) & (t >= start[i]) & (t < end[i]) if end.size else np.zeros(t.size, bool)
        # smooth the on/off of speech over ±40 ms so that onsets are not steps
        gate = speaking.astype(np.float64)
        kernel = np.hanning(int(0.08 * self.fps) * 2 + 1)
        if kernel.sum() > 0 and gate.size:
            gate = np.maximum(gate, np.convolve(gate, kernel / kernel.max(), mode="same").clip(0, 1) * 0.8)
        loud = np.full(t.size, 0.75)
        brow = np.zeros(t.size)
        nod = np.zeros(t.size)
        for p in self._table.phones:  # stressed vowels (TTS knows them) raise the brows a little
            if p.stress == 1 and p.label != SILENCE:
                c = 0.5 * (p.start_s + p.end_s)
                dt = t - c
                pulse = np.where(dt > -0.1, np.exp(-np.maximum(dt, 0) / 0.3) * np.clip((dt + 0.1) / 0.1, 0, 1), 0.0)
                brow = np.maximum(brow, 0.25 * pulse)
                nod = np.minimum(nod, -1.0 * pulse)
        return gate, loud, brow, nod

    def _trim(self) -> None:
        """Forget rows and phones the next frames no longer need (memory stays flat on long streams)."""
        t_next = self._next / self.fps
        if self._rows:
            keep_from = max(0, int(t_next / HOP_S) - 2 - self._row0)
            if keep_from > 4096:
                self._rows = {k: v[keep_from:].copy() for k, v in self._rows.items()}
                self._row0 += keep_from
        if len(self._table.phones) > 64:
            self._table.drop_before(t_next - REACH_S)


def animate(phones: Sequence[Phone], samples: np.ndarray | None, fps: float = 60.0, *,
            sample_rate: int = SAMPLE_RATE) -> list[FaceFrame]:
    """Coarticulated, prosody-modulated ARKit frames (``source="lipsync"``), one per 1/fps.

    Frames cover the audio (or, when ``samples`` is None, the phones). ``samples`` at ``sample_rate``
    are resampled to 16 kHz; with no phones the acoustic estimate alone drives the mouth.
    """
    phones = list(phones)
    anim = Animator(fps, phones="wait" if phones else "none")
    anim.push_phones(phones)
    anim.end_phones()
    if samples is None:
        if not phones:
            raise InputError("animate: expected phones, samples or both, got neither")
        duration = phones[-1].end_s
        n = max(1, (math.ceil(duration * fps - 1e-9)))
        anim._audio_ended = True
        anim._features._samples = round(duration * SAMPLE_RATE)
        anim._next = 0
        out: list[FaceFrame] = []
        for k0 in range(0, n, _CHUNK_FRAMES):
            out.extend(anim._render(k0, min(n, k0 + _CHUNK_FRAMES), 0))
        return out
    x = np.asarray(samples)
    if x.ndim != 1:
        raise InputError(f"samples: expected a mono 1-D array, got shape {x.shape}")
    if sample_rate != SAMPLE_RATE:
        rs = Resampler(int(sample_rate))
        x = np.concatenate([rs(sanitize(x, "samples")), rs.flush()])
    out = []
    step = 10 * SAMPLE_RATE
    for i in range(0, max(1, x.size), step):
        anim.push_audio(x[i: i + step])
        out.extend(anim.frames())
    anim.end_audio()
    out.extend(anim.frames())
    return out
