"""Phones + audio → coarticulated, prosody-modulated ARKit frames: the heart of lip sync.

Two channels, after JALI (Edwards et al. 2016): **lips** follow the phones' visemes blended by
Cohen–Massaro dominance functions, **jaw** opening follows per-phone targets of its own, led and smoothed.

- *Dominance.* Every phone owns its interval (dominance 1) and spreads ``α·exp(−(d/s)²)`` outside it
  (``d`` the distance to the interval, ``s`` its reach: anticipatory before, carry-over after).
  A viseme's weight at time t is its phones' share of the total dominance, so a rounded /uw/
  (α 0.9, 120 ms) reaches ahead into "s-t-r" while /t/ /k/ /n/ /s/ (α 0.4: the tongue does their
  work) barely colour their neighbours, and /h/ (α 0.15 even inside itself) takes its vowel's
  shape. Table: :data:`DOMINANCE`.
- *Closures.* Bilabials must close and labiodentals must touch, whatever the neighbours want: a
  closure envelope (1 over the phone, 10 ms cosine ramps) overrides the blend with the PP pose
  (mouthPress, mouthRoll*, jawOpen 0.05 → ≤ 0.1 at every P/B/M) or pulls towards FF
  (mouthRollLower, mouthUpperUp*) with strength 0.7. Outside its interval a phone's dominance
  starts at :data:`SPREAD` (0.7) × α, so a neighbour colours a phone's edges without taking them
  over: given exact phones the frames read back (`mouth.arkit_to_visemes`) as the viseme being
  spoken at > 90 % of frames.
- *Jaw.* A channel of its own (JALI): each phone's :data:`JAW_OPEN` target (vowels by height, AA >
  AE > AH > EH > IH > IY; short vowels undershoot, :data:`JAW_FULL_S`) blended by
  :data:`JAW_DOMINANCE` under a smooth bell (:data:`JAW_SMOOTH_S`: jaws are slow) and led by
  :data:`JAW_LEAD_S` (40 ms: the jaw opens before the sound it shapes); scaled by loudness
  (:data:`JAW_QUIET`); never below the lip blend's own jaw (× :data:`JAW_POSE_SHARE`), so that the
  mouth keeps its viseme's proportions. Before a phrase the jaw opens a little to breathe in
  (:data:`PRESPEECH_S`, :data:`PRESPEECH_JAW`). Tuned against the video-tracked jaws of GRID
  speakers (``facewire bench lipsync``); the last retune (pose share 0.9 → 0.8, undershoot
  0.1 → 0.05 s, pre-speech opening 0.35 → 0.5) was chosen on the clips bbaf2n, brbk7n, lbax4n and
  checked on lbbc2a, lrwp9a, lwbsza (with transcript and phone-anchored alignment, mean r: tuning
  clips 0.690 → 0.706, held-out 0.674 → 0.697). A pose share of 0.5 scored higher on GRID (tuning
  0.711, held-out 0.703) but the frames then read back as the spoken viseme at only 87%.
- *Gains.* Other mouth shapes × (:data:`LIP_QUIET` + (1 − it)·loudness); all × the speech gate of
  `facewire.audio.prosody` (white noise, breaths, hiss: mouth stays closed). Offline the gate looks
  :data:`GATE_LOOKAHEAD_S` ahead (a causal gate opens late). Brows and a head nod come from the
  prosody tracker (pitch accents); the frame on which a phrase end is detected carries
  ``extras["lipsync.phraseEnd"] = 1``.
- *Laughter* (`prosody.LaughDetector`: regular aspirated voiced bursts) shows as a held open smile
  instead of a mouth flapping with each "ha"; offline it shows from :data:`LAUGH_LOOKAHEAD_S` ahead.
- *Without phones* (live frames whose phones are still pending, or no recogniser): an acoustic
  estimate — openness from loudness, the vowel family from the spectral centroid (low → rounded
  oh/ou, high → spread E/ih, else aa), frication → SS — drives the same channels.

:class:`Animator` is the streaming engine (push audio and final phones, take the frames that are
ready); :func:`animate` runs it once over a whole utterance. Frames are assembled without
`FaceFrame`'s per-frame validation (their values are valid by construction; see `_frames`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from .. import arkit, mouth
from ..errors import InputError
from ..frame import FaceFrame, Gaze, HeadPose
from .io import SAMPLE_RATE, Resampler, sanitize
from .phones import SILENCE, Phone
from .prosody import (
    HOP_S,
    PHRASE_END_KEY,
    PHRASE_PAUSE_S,
    FeatureExtractor,
    Features,
    Prosody,
    ProsodyTracker,
)

__all__ = ["DOMINANCE", "JAW_DOMINANCE", "JAW_OPEN", "REACH_S", "SPREAD", "Animator", "animate"]


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

_VOWEL_JAW = {"AA": 0.8, "AW": 0.75, "AY": 0.75, "AO": 0.7, "AE": 0.7, "OY": 0.6, "EH": 0.55, "AH": 0.5,
              "OW": 0.5, "EY": 0.5, "ER": 0.35, "IH": 0.3, "UH": 0.3, "IY": 0.2, "UW": 0.15}
JAW_OPEN: Mapping[str, float] = MappingProxyType({
    "SIL": 0.0, **_VOWEL_JAW,
    "HH": 0.4, "K": 0.3, "G": 0.3, "NG": 0.3, "R": 0.25, "L": 0.25, "N": 0.2, "T": 0.2, "D": 0.2,
    "TH": 0.2, "DH": 0.2, "Y": 0.15, "W": 0.15, "CH": 0.15, "JH": 0.15, "SH": 0.15, "ZH": 0.15,
    "S": 0.1, "Z": 0.1, "F": 0.1, "V": 0.1, "P": 0.05, "B": 0.05, "M": 0.05,
})
"""Phone → jaw opening (0 closed … 1 wide): the jaw channel's targets. Vowels by height
(AA > AE > AH > EH > IH > IY, back vowels alike); consonants by how far the jaw must rise for them
(sibilants and labials close it, velars and liquids leave it half open)."""

JAW_DOMINANCE: Mapping[str, float] = MappingProxyType({
    "SIL": 0.6, **{v: 1.0 for v in _VOWEL_JAW},
    "P": 0.8, "B": 0.8, "M": 0.8, "F": 0.7, "V": 0.7, "S": 0.7, "Z": 0.7, "SH": 0.7, "ZH": 0.7,
    "CH": 0.7, "JH": 0.7, "TH": 0.5, "DH": 0.5, "T": 0.4, "D": 0.4, "N": 0.4, "L": 0.4, "R": 0.4,
    "W": 0.4, "Y": 0.4, "K": 0.35, "G": 0.35, "NG": 0.35, "HH": 0.1,
})
"""Phone → how strongly it holds the jaw to its target against its neighbours (the tongue tip and
back do the work of /t d n l k g/, so the jaw barely rises for them between vowels)."""

JAW_SMOOTH_S = 0.02
"""Scale of the jaw's low-pass (a logistic bell ≈ a Gaussian of σ 1.8·this): jaws are slow."""
JAW_LEAD_S = 0.04
"""Jaw anticipation: the jaw moves this much before the sound it shapes (the acoustic onset of a
vowel follows the jaw's opening gesture)."""
JAW_POSE_SHARE = 0.8
"""The jaw never drops below this share of the lip blend's own jaw (its viseme poses' jawOpen): an
/aa/ with a half-shut jaw reads as /t/ (at 0.7 or less, espeak phones read back as the spoken
viseme at 87% of frames instead of ≥ 90%)."""
LIP_QUIET = 0.7
"""Mouth shapes (lips) at zero loudness, as a fraction of full."""
JAW_QUIET = 0.6
"""Jaw opening at zero loudness, as a fraction of full (loudness scales the rest: louder, wider)."""
JAW_FULL_S = 0.05
"""Vowels shorter than this undershoot their jaw target in proportion (down to half): the jaw has
no time to get there (Lindblom's undershoot; unstressed vowels are the short ones)."""
PRESPEECH_S = 0.3
PRESPEECH_JAW = 0.5
"""Before a phrase (after a pause of at least ``PHRASE_PAUSE_S``) the jaw opens to ``PRESPEECH_JAW``
over the last ``PRESPEECH_S`` of the pause: speakers part the lips and drop the jaw to breathe in
before they speak (seen on the GRID speakers: their jaws open 200-400 ms before the first sound).
Only when the speech after the pause passes the speech gate (no pre-speech opening before noise)."""
GATE_LOOKAHEAD_S = 0.05
"""Offline the speech gate looks this far ahead, so that onsets open on time."""
LAUGH_LOOKAHEAD_S = 1.0
"""Offline, laughter found up to this far ahead already shows (the detector needs four "ha"s)."""

SPREAD = 0.7
"""Outside its interval a phone's dominance starts at this fraction of its α: a neighbour colours
the phone's edges but never outweighs it at its own boundary (what the face shows there is the
phone being spoken, with the next one's shape coming in)."""

_HH_ALPHA = 0.15
REACH_S = 0.4
"""How far a phone's dominance is taken into account (3.3 × the longest reach: exp(−11), nothing left)."""
_RAMP_S = 0.01
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
_LAUGH_POSE = np.zeros(arkit.COUNT)
for _name, _w in (("jawOpen", 0.35), ("mouthSmileLeft", 0.7), ("mouthSmileRight", 0.7), ("mouthStretchLeft", 0.2),
                  ("mouthStretchRight", 0.2), ("mouthUpperUpLeft", 0.25), ("mouthUpperUpRight", 0.25),
                  ("mouthLowerDownLeft", 0.2), ("mouthLowerDownRight", 0.2), ("cheekSquintLeft", 0.4),
                  ("cheekSquintRight", 0.4)):
    _LAUGH_POSE[arkit.INDEX[_name]] = _w
_LAUGH_COLS = np.union1d(_MOUTH_COLS, [_JAW])
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
            jaw = np.array([JAW_OPEN[lab] for lab in labels])
            vowel = np.array([lab in _VOWEL_JAW for lab in labels], bool)
            if vowel.any():
                jaw[vowel] *= np.clip((end[vowel] - start[vowel]) / JAW_FULL_S, 0.5, 1.0)
            jaw_dom = np.array([JAW_DOMINANCE[lab] for lab in labels])
            self._arrays = (start, end, vis, alpha, kind, jaw, jaw_dom)
        return self._arrays


def _lip_visemes(t: np.ndarray, table: _PhoneTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Viseme weights (n × 15), bilabial closure and labiodental contact (n) at times ``t``."""
    start, end, vis, alpha, kind = table.arrays()[:5]
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
    dom = np.where(inside, own[None, :], SPREAD * a[None, :] * np.exp(-((before + after) ** 2)))
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


def _logistic(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _jaw_track(t: np.ndarray, table: _PhoneTable) -> np.ndarray:
    """Jaw opening at times ``t`` from the phones alone: each phone's :data:`JAW_OPEN` target held
    over its interval, blended by :data:`JAW_DOMINANCE` under a smooth bell (normalised
    convolution, the same for any chunking of ``t``) and led by :data:`JAW_LEAD_S`."""
    start, end, _, _, _, jaw, dom = table.arrays()
    n = t.size
    reach = JAW_LEAD_S + 12 * JAW_SMOOTH_S
    lo = np.searchsorted(end, t[0] - reach) if n else 0
    hi = np.searchsorted(start, t[-1] + reach) if n else 0
    if hi <= lo:
        return np.zeros(n)
    tt = (t + JAW_LEAD_S)[:, None]
    # the share of the bell centred at tt that falls inside each phone
    k = _logistic((end[None, lo:hi] - tt) / JAW_SMOOTH_S) - _logistic((start[None, lo:hi] - tt) / JAW_SMOOTH_S)
    k *= dom[None, lo:hi]
    total = k.sum(axis=1)
    return np.where(total > 1e-9, (k @ jaw[lo:hi]) / np.maximum(total, 1e-9), 0.0)


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
             brow: np.ndarray, acoustic: np.ndarray, jaw_track: np.ndarray, jaw_floor: np.ndarray,
             laugh: np.ndarray) -> np.ndarray:
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
    jaw_gain = np.where(acoustic, 1.0, JAW_QUIET + (1.0 - JAW_QUIET) * loud)
    lip_gain = np.where(acoustic, 1.0, LIP_QUIET + (1.0 - LIP_QUIET) * loud)
    out = np.zeros_like(shapes)
    # a closure is articulated fully whatever the loudness or the gate (a pressed mouth never flaps)
    lip_scale = lip_gain * amp * (1 - np.maximum(close, touch)) + np.maximum(close, touch)
    out[:, _MOUTH_COLS] = shapes[:, _MOUTH_COLS] * lip_scale[:, None]
    jaw = np.where(acoustic, shapes[:, _JAW] * jaw_gain, np.maximum(shapes[:, _JAW] * lip_gain * JAW_POSE_SHARE,
                                                                    jaw_track * jaw_gain)) * amp
    jaw = np.maximum(jaw, jaw_floor)
    out[:, _JAW] = jaw * (1 - close) + close * np.minimum(jaw, 0.05)
    if laugh.any():  # laughter: a held open smile instead of a mouth flapping with every "ha"
        lam = laugh[:, None]
        out[:, _LAUGH_COLS] = out[:, _LAUGH_COLS] * (1 - lam) + lam * _LAUGH_POSE[None, _LAUGH_COLS]
    out[:, _BROWS[0]] = brow
    out[:, _BROWS[1]] = 0.8 * brow
    out[:, _BROWS[2]] = 0.8 * brow
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype(np.float32)


# -- building frames -------------------------------------------------------------------------------
# FaceFrame validates every field of every frame (finite, in range, shapes): a quarter of
# `animate`'s time. The values built here hold those invariants by construction (weights clipped
# float32 in a read-only array, finite head pitch, extras of one known key), so frames are
# assembled without the per-frame checks; test_animate compares them field by field with
# validated frames.
_FRAME_DEFAULTS = {f.name: (f.default_factory if f.default_factory is not dataclasses.MISSING else None,
                            f.default) for f in dataclasses.fields(FaceFrame)}
_FRAME_SLOTS = {name: FaceFrame.__dict__[name].__set__ for name in _FRAME_DEFAULTS}  # slot setters (bypass frozen)
_HEAD_SLOTS = [HeadPose.__dict__[f.name].__set__ for f in dataclasses.fields(HeadPose)]
_PITCH = [f.name for f in dataclasses.fields(HeadPose)].index("pitch_deg")
_GAZE = Gaze()
_PHRASE_END_EXTRAS = MappingProxyType({PHRASE_END_KEY: 1.0})
_NO_EXTRAS = FaceFrame(0).extras
_VARYING = ("t_ns", "seq", "weights", "head", "extras")


def _frames(k0: int, fps: float, source: str, weights: np.ndarray, nod_deg: np.ndarray, ends: np.ndarray,
            capture_ns: int) -> list[FaceFrame]:
    """Frames k0, k0+1, … from rows of ``weights`` (float32, in [0, 1]) and head pitch ``nod_deg``."""
    w = np.ascontiguousarray(weights, dtype=np.float32)
    w.flags.writeable = False
    nod = np.nan_to_num(nod_deg, nan=0.0, posinf=0.0, neginf=0.0).tolist()
    ends = ends.tolist()
    fixed = {name: (factory() if factory is not None else default) for name, (factory, default) in _FRAME_DEFAULTS.items()}
    fixed.update(source=str(source), capture_ns=int(capture_ns), gaze=_GAZE)
    fixed_setters = [(_FRAME_SLOTS[name], value) for name, value in fixed.items() if name not in _VARYING]
    set_t, set_seq, set_w, set_head, set_extras = (_FRAME_SLOTS[name] for name in _VARYING)
    new_frame, new_head = object.__new__, object.__new__
    out = []
    for i in range(w.shape[0]):
        k = k0 + i
        head = new_head(HeadPose)
        for j, setter in enumerate(_HEAD_SLOTS):
            setter(head, nod[i] if j == _PITCH else 0.0)
        f = new_frame(FaceFrame)
        for setter, value in fixed_setters:
            setter(f, value)
        set_t(f, round(k * 1e9 / fps))
        set_seq(f, k)
        set_w(f, w[i])
        set_head(f, head)
        set_extras(f, _PHRASE_END_EXTRAS if ends[i] else _NO_EXTRAS)
        out.append(f)
    return out


class Animator:
    """Streaming lip-sync engine: push 16 kHz audio and final phones, take the frames that are ready.

    ``phones``: ``"wait"`` (a frame waits until the phones around it are final: offline with a
    recogniser), ``"use"`` (phones where final, the acoustic estimate where still pending: live),
    ``"none"`` (acoustic estimate only). ``capture_ns`` given to :meth:`frames` is stamped on them.

    ``offline`` (default: when waiting for phones) lets frames wait for the audio ahead of them too:
    the speech gate looks `GATE_LOOKAHEAD_S` ahead, the pre-speech opening `PRESPEECH_S`, laughter
    `LAUGH_LOOKAHEAD_S`. Live animators (``offline=False``) look no further than the features do.
    """

    def __init__(self, fps: float = 60.0, *, phones: str = "wait", source: str = "lipsync",
                 offline: bool | None = None) -> None:
        if not (isinstance(fps, (int, float)) and 1 <= fps <= 1000):
            raise InputError(f"fps: expected 1..1000 frames per second, got {fps!r}")
        if phones not in ("wait", "use", "none"):
            raise InputError(f"phones: expected 'wait', 'use' or 'none', got {phones!r}")
        self.fps, self.mode, self.source = float(fps), phones, source
        self.offline = phones == "wait" if offline is None else bool(offline)
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
               "voiced": p.voiced, "centroid": f.centroid_hz, "flatness": f.flatness,
               "laugh": p.laugh if p.laugh is not None else np.zeros(len(p), np.float32)}
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
            # a frame needs the feature row at or after its time (and, waiting for phones, the gate's look-ahead)
            ahead = max(PRESPEECH_S + GATE_LOOKAHEAD_S, LAUGH_LOOKAHEAD_S) if self.offline else 0.0
            limit = (math.floor(((rows_end - 1) * HOP_S - ahead) * self.fps)) + 1 if rows_end else 0
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
            if self.offline:  # the gate and loudness look ahead (a causal gate opens late)
                ra = np.minimum(r[:, None] + np.arange(round(GATE_LOOKAHEAD_S / HOP_S) + 1), n_rows - 1)
                gate, loud = rows["gate"][ra].max(axis=1), rows["loud"][ra].max(axis=1)
            else:
                gate, loud = rows["gate"][r], rows["loud"][r]
            brow, nod = rows["brow"][r], rows["nod"][r]
            ahead = round((LAUGH_LOOKAHEAD_S if self.offline else 0.0) / HOP_S)
            laugh = rows["laugh"][np.minimum(r[:, None] + np.arange(ahead + 1), n_rows - 1)].max(axis=1)
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
            gate = loud = brow = nod = voiced = centroid = flat = laugh = np.zeros(t.size)
            ends = np.zeros(t.size, bool)
        gate = np.asarray(gate, np.float64)
        use_phones = self.mode != "none" and bool(self._table.phones)
        if use_phones:
            lip, close, touch = _lip_visemes(t, self._table)
            jaw = _jaw_track(t, self._table)
            floor = self._prespeech(t, rows) if n_rows and self.offline else np.zeros(t.size)
            covered = (t + REACH_S <= self._phones_final_s) | (self._phones_ended and self.mode != "none")
        else:
            lip, close, touch = np.zeros((t.size, _NV)), np.zeros(t.size), np.zeros(t.size)
            jaw = floor = np.zeros(t.size)
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
                           acoustic, jaw, np.where(acoustic, 0.0, floor), np.asarray(laugh, np.float64))
        return _frames(k0, self.fps, self.source, weights, np.asarray(nod, np.float64), ends, int(capture_ns))

    def _prespeech(self, t: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        """The pre-speech jaw opening at ``t`` (see :data:`PRESPEECH_S`), gated by the speech after the pause."""
        out = np.zeros(t.size)
        phones = self._table.phones
        start, end = self._table.arrays()[:2]
        lo, hi = np.searchsorted(end, t[0]), np.searchsorted(start, t[-1] + PRESPEECH_S)
        n_rows = rows["gate"].size
        for i in range(lo, min(hi, len(phones) - 1)):
            p = phones[i]
            if p.label != SILENCE or p.duration_s < PHRASE_PAUSE_S or phones[i + 1].label == SILENCE:
                continue
            r0 = round(p.end_s / HOP_S) - self._row0
            r1 = r0 + round(GATE_LOOKAHEAD_S / HOP_S) * 2
            if r0 >= n_rows or r1 < 0:
                continue
            gate = float(rows["gate"][max(r0, 0): max(r1, 1)].max(initial=0.0))
            ramp = np.clip((t - (p.end_s - PRESPEECH_S)) / PRESPEECH_S, 0.0, 1.0)
            out = np.maximum(out, np.where(t <= p.end_s + JAW_LEAD_S, PRESPEECH_JAW * gate * ramp, 0.0))
        return out

    def _phone_controls(self, t: np.ndarray) -> tuple[np.ndarray, ...]:
        start, end, vis = self._table.arrays()[:3]
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
    anim = Animator(fps, phones="wait" if phones else "none", offline=True)
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
