"""Phones without a transcript, offline (`recognize`) and streaming (`PhoneRecognizer`).

Two recognisers, chosen by measurement (``facewire bench lipsync``):

- ``"acoustic"`` (default): facewire's own viseme network (`facewire.audio.acoustic`, trained by
  ``tools/train_visemes.py``) on log-mel frames, decoded by Viterbi with minimum durations, each
  viseme segment reported as a representative phone (:data:`VISEME_PHONE`: ``PP`` → ``P`` so the
  lips still close, ``FF`` → ``F``, …). ``facewire bench lipsync`` (120 espeak sentences never
  used in training): viseme frame accuracy 92.3% (voices heard in training 94.4%, held-out voices
  90.2%), lips closed at 99.3% of P/B/M, 483× real time on one core (features, network and
  Viterbi); on the real GRID clips, mean r of jawOpen against the video 0.61 (allphone 0.635
  before; the loudness baseline 0.50).
- ``"allphone"``: PocketSphinx 5 phone recognition (allphone search with the phonetic language
  model in the wheel). Viseme frame accuracy on the same speech 47.5%, 28× real time.

Word recognition was tried too: the en-us LM and forced alignment of its hypothesis ran at 5–7×
real time on LibriVox, and its hypotheses on espeak speech were mostly wrong.

Streaming (acoustic): features and network run as audio arrives; a frame can be classified once
:data:`acoustic.LOOKAHEAD_S` of audio past it is in, and the Viterbi search fixes it
:data:`acoustic.MAX_LAG_FRAMES` frames later (one frame at a time, whatever the chunks). A viseme
is reported once the frame after it is fixed, so a phone is final :data:`STABLE_LAG_S` after it
ends, plus up to one chunk; a viseme held :data:`RUN_PIECE_S` is reported up to there and
continues as a new phone (a long silence does not hold back the frames waiting for it).
Streaming (allphone): the decoder takes the audio one 10 ms frame at a time and its partial
hypothesis is re-read after each; a phone is final once it ends ``ALLPHONE_LAG_S`` before the
newest audio; utterances are cut every :data:`MAX_UTTERANCE_S` seconds of audio so memory and
search cost stay flat.

**Chunking.** What a stream returns does not depend on how its audio is cut into `feed` calls:
what is final is decided per decoded frame, never per call (tolerance: none; the same phones for
chunks from one sample to a whole file, ``tests/audio/test_recognize.py``; the network's features
can differ in the last bit with the block size, ≤ 3e-5 in a score, which could matter only at an
exact tie of two paths). Before, they did: the acoustic search fixed a long chunk's early frames
with the whole chunk's look-ahead (a 10 ms chunk's with 4 frames') and split a viseme at every
call; allphone read its hypothesis once per call. Rendered by `animate`, 10 ms against whole-file
chunks differed by up to 0.52 in a weight (acoustic; allphone 0.27). PocketSphinx itself was not
the cause: its final hypothesis is the same for any ``process_raw`` block size (checked from 160
samples to a whole file, so its front end and cepstral mean carry across calls unchanged).
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from ..errors import InputError
from ..mouth import VISEMES
from . import acoustic, sphinx
from .align import NOISE_FLOOR
from .phones import SILENCE, Phone

__all__ = [
    "ALLPHONE_LAG_S",
    "DECODER_OPTIONS",
    "MAX_UTTERANCE_S",
    "METHODS",
    "RUN_PIECE_S",
    "STABLE_LAG_S",
    "VISEME_PHONE",
    "AllphoneRecognizer",
    "PhoneRecognizer",
    "recognize",
    "recognize_allphone",
]

METHODS = ("acoustic", "allphone")
ALLPHONE_LAG_S = 0.25
"""Allphone streaming: a phone is final once the audio fed reaches this far past its end."""
STABLE_LAG_S = acoustic.LOOKAHEAD_S + acoustic.MAX_LAG_FRAMES * sphinx.FRAME_S
"""Acoustic streaming: a phone is final at most this long after its end (plus the chunk fed)."""

VISEME_PHONE: Mapping[str, str] = MappingProxyType({
    "sil": SILENCE, "PP": "P", "FF": "F", "TH": "TH", "DD": "D", "kk": "K", "CH": "SH", "SS": "S",
    "nn": "N", "RR": "R", "aa": "AA", "E": "EH", "ih": "IH", "oh": "OW", "ou": "UW",
})
"""The phone reported for a recognised viseme (its viseme maps back to it)."""

RUN_PIECE_S = 1.0
"""Acoustic streaming: a viseme held this long is reported up to there and continues as a new phone,
so a long silence does not hold back the frames waiting for it (`Animator` in ``"wait"`` mode).
Long, so that speech is rarely cut: a cut vowel shorter than `animate.JAW_FULL_S` undershoots, a
cut pause shorter than `prosody.PHRASE_PAUSE_S` loses its pre-speech opening."""
_PIECE_FRAMES = round(RUN_PIECE_S / sphinx.FRAME_S)

MAX_UTTERANCE_S = 30.0
"""Longest stretch decoded as one utterance in streaming mode."""

DECODER_OPTIONS: dict = {}
"""PocketSphinx's default beams. Narrower ones (``beam=pbeam=1e-20``) were 25% faster on clean
audio but lost the search on audio with the noise floor (recognition stopped mid-utterance)."""

_FRAME_SAMPLES = 160
_UTTERANCE_SAMPLES = round(MAX_UTTERANCE_S * sphinx.SAMPLE_RATE)


def _decoder():
    models = sphinx.model_files()
    return sphinx.new_decoder(models, allphone=str(models.phone_lm), **DECODER_OPTIONS)


def _segments(decoder, offset_s: float, after_s: float = -math.inf, until_s: float = math.inf) -> list[Phone]:
    """The decoder's segments as phones (times ``offset_s`` on), only those ending in
    (``after_s``, ``until_s``]: building every phone of a 30 s utterance at each read cost more than
    the search itself."""
    out = []
    for s in decoder.seg() or ():
        end = offset_s + (s.end_frame + 1) * sphinx.FRAME_S
        if not after_s + 1e-9 < end <= until_s:
            continue
        start = offset_s + s.start_frame * sphinx.FRAME_S
        if end > start:
            out.append(Phone(sphinx.phone_label(s.word), start, end))
    return out


def _join(phones: list[Phone], start_s: float, end_s: float | None) -> list[Phone]:
    """Contiguous from ``start_s``: gaps filled by the previous phone, neighbouring SILs merged."""
    out: list[Phone] = []
    t = start_s
    for p in phones:
        if p.end_s <= t + 1e-9:
            continue
        if out and out[-1].label == p.label == SILENCE:
            out[-1] = Phone(SILENCE, out[-1].start_s, p.end_s)
        else:
            out.append(Phone(p.label, t, p.end_s, p.stress, p.word))
        t = p.end_s
    if end_s is not None and end_s > t + 1e-9:
        if out and out[-1].label == SILENCE:
            out[-1] = Phone(SILENCE, out[-1].start_s, end_s)
        else:
            out.append(Phone(SILENCE, t, end_s))
    return out


class _Noise:
    """The seeded −60 dBFS noise floor of `facewire.audio.align` (why: see ``NOISE_FLOOR`` there)."""

    def __init__(self) -> None:
        self._rng = np.random.default_rng(0)

    def __call__(self, pcm: bytes) -> bytes:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        x += self._rng.normal(0.0, NOISE_FLOOR * 32768.0, x.shape).astype(np.float32)
        return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


class AllphoneRecognizer:
    """Streaming phone recognition: `feed` chunks, get the phones that became final.

    ``feed(samples)`` takes mono samples at ``sample_rate`` (float −1..1 or int16, any length, even
    0) and returns the phones final since the last call, contiguous from 0 s; `finish` returns the
    rest and ends the stream; `reset` starts a new one at 0 s.
    """

    def __init__(self, *, sample_rate: int = sphinx.SAMPLE_RATE, stable_lag_s: float = ALLPHONE_LAG_S) -> None:
        self.sample_rate = int(sample_rate)
        self.stable_lag_s = float(stable_lag_s)
        self._decoder = _decoder()
        self._cmn0 = self._decoder.get_cmn()
        self._resampler = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next `feed` starts at 0 s."""
        if getattr(self, "_in_utt", False):
            self._decoder.end_utt()
        self._in_utt = False
        sphinx.reset_features(self._decoder, self._cmn0)  # a new stream decodes as in a new decoder
        self._noise = _Noise()
        self._utt_start_s = 0.0  # stream time of the current utterance's frame 0
        self._fed_samples = 0  # 16 kHz samples fed to the current utterance
        self._emitted_s = 0.0  # stream time up to which phones were returned
        self._pending = b""  # a partial 10 ms frame carried to the next call
        self._resampler = None
        if self.sample_rate != sphinx.SAMPLE_RATE:
            from .io import Resampler

            self._resampler = Resampler(self.sample_rate, sphinx.SAMPLE_RATE)

    @property
    def position_s(self) -> float:
        """Stream time of the newest audio fed (16 kHz samples decoded so far)."""
        return self._utt_start_s + self._fed_samples / sphinx.SAMPLE_RATE

    def feed(self, samples: np.ndarray) -> list[Phone]:
        """Decode a chunk; the phones that became final, in order."""
        x = np.asarray(samples)
        if self._resampler is not None:
            x = self._resampler(np.nan_to_num(_float(x)))
            pcm = sphinx.to_pcm16(x, sphinx.SAMPLE_RATE)
        else:
            pcm = sphinx.to_pcm16(x, sphinx.SAMPLE_RATE)
        pcm = self._pending + pcm
        usable = len(pcm) // (2 * _FRAME_SAMPLES) * 2 * _FRAME_SAMPLES
        pcm, self._pending = pcm[:usable], pcm[usable:]
        return self._decode(pcm)

    def _decode(self, pcm: bytes) -> list[Phone]:
        """Decode whole 10 ms frames of 16 kHz PCM; the phones that became final."""
        out: list[Phone] = []
        # One frame per step, whatever the caller's chunks: the partial hypothesis is read, and the
        # utterance cut, at the same stream frames for any chunking (see the module doc).
        noisy = self._noise(pcm) if pcm else b""
        step = 2 * _FRAME_SAMPLES
        for i in range(0, len(noisy), step):
            if not self._in_utt:
                self._decoder.start_utt()
                self._in_utt = True
            self._decoder.process_raw(noisy[i:i + step], False, False)
            self._fed_samples += _FRAME_SAMPLES
            out += self._stable()
            if self._fed_samples >= _UTTERANCE_SAMPLES:
                out += self._end_utterance()
        return out

    def _stable(self) -> list[Phone]:
        horizon = self.position_s - self.stable_lag_s
        # read after every frame: only the segments not yet returned become phones
        out = _join(_segments(self._decoder, self._utt_start_s, self._emitted_s, horizon), self._emitted_s, None)
        if out:
            self._emitted_s = out[-1].end_s
        return out

    def _end_utterance(self) -> list[Phone]:
        self._decoder.end_utt()
        self._in_utt = False
        end = self.position_s
        out = _join(_segments(self._decoder, self._utt_start_s), self._emitted_s, end)
        self._utt_start_s = end
        self._fed_samples = 0
        self._emitted_s = end
        return out

    def finish(self) -> list[Phone]:
        """End the stream: the phones not yet returned (the last one ends at the end of the audio)."""
        tail = b""
        if self._resampler is not None:
            tail = sphinx.to_pcm16(self._resampler.flush(), sphinx.SAMPLE_RATE)
        tail = self._pending + tail
        self._pending = b""
        whole = len(tail) // (2 * _FRAME_SAMPLES) * 2 * _FRAME_SAMPLES
        out = self._decode(tail[:whole])
        tail = tail[whole: len(tail) // 2 * 2]
        if tail:
            if not self._in_utt:
                self._decoder.start_utt()
                self._in_utt = True
            self._decoder.process_raw(self._noise(tail), False, False)
            self._fed_samples += len(tail) // 2
        if self._in_utt:
            out += self._end_utterance()
        self.reset()
        return out


def _float(x: np.ndarray) -> np.ndarray:
    """int16 or float samples as float32 −1..1 (for the resampler)."""
    if x.dtype.kind == "i":
        return x.astype(np.float32) / np.float32(np.iinfo(x.dtype).max + 1)
    return x.astype(np.float32, copy=False)


def recognize_allphone(samples: np.ndarray, *, sample_rate: int = sphinx.SAMPLE_RATE) -> list[Phone]:
    """PocketSphinx allphone phones of ``samples`` (mono, any rate): contiguous ARPABET/SIL from 0 s."""
    pcm = sphinx.to_pcm16(samples, sample_rate)
    total_s = len(pcm) // 2 / sphinx.SAMPLE_RATE
    if not pcm:
        return []
    noise = _Noise()
    out: list[Phone] = []
    step = int(MAX_UTTERANCE_S * sphinx.SAMPLE_RATE) * 2
    with _lock:
        d, cmn0 = _default_decoder()
        sphinx.reset_features(d, cmn0)  # nothing carried over from earlier calls
        for start in range(0, len(pcm), step):  # long files: one utterance per 30 s, memory stays flat
            d.start_utt()
            d.process_raw(noise(pcm[start:start + step]), False, True)
            d.end_utt()
            out += _segments(d, start / 2 / sphinx.SAMPLE_RATE)
    return _join(out, 0.0, total_s)


_shared = None
_lock = threading.Lock()


def _default_decoder():
    """The shared allphone decoder and its initial cepstral mean."""
    global _shared
    if _shared is None:
        d = _decoder()
        _shared = (d, d.get_cmn())
    return _shared


# -- the acoustic viseme recogniser -----------------------------------------------------------
_REP = [VISEME_PHONE[v] for v in VISEMES]


def _pcm_float(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono samples at any rate → 16 kHz float32 (cleaned, clipped), through `sphinx.to_pcm16`'s checks."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise InputError(f"audio samples: expected a 1-D mono array, got shape {x.shape}")
    if sample_rate == sphinx.SAMPLE_RATE and x.dtype.kind == "f":
        return np.clip(np.nan_to_num(x.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
    return np.frombuffer(sphinx.to_pcm16(x, sample_rate), "<i2").astype(np.float32) / np.float32(32768.0)


def _viseme_phones(vis: np.ndarray, start_frame: int) -> list[Phone]:
    """Per-frame viseme indices → one phone per run (frame t covers t..t+1 × 10 ms)."""
    if not vis.size:
        return []
    cuts = np.flatnonzero(np.diff(vis)) + 1
    bounds = np.concatenate([[0], cuts, [vis.size]])
    return [Phone(_REP[vis[a]], float((start_frame + a) * sphinx.FRAME_S), float((start_frame + b) * sphinx.FRAME_S))
            for a, b in itertools.pairwise(bounds)]


def _frames_phone(vis: int, start_frame: int, end_frame: int) -> Phone:
    return Phone(_REP[vis], start_frame * sphinx.FRAME_S, end_frame * sphinx.FRAME_S)


def _recognize_acoustic(samples: np.ndarray, sample_rate: int) -> list[Phone]:
    x = _pcm_float(samples, sample_rate)
    total_s = x.size / sphinx.SAMPLE_RATE
    if not x.size:
        return []
    model = acoustic.default_model()
    feats = acoustic.log_mel(x)
    vis = acoustic.decode_visemes(model.scores(feats)) if len(feats) else np.zeros(0, np.intp)
    return _join(_viseme_phones(vis, 0), 0.0, total_s)


def recognize(samples: np.ndarray, *, sample_rate: int = sphinx.SAMPLE_RATE, method: str = "acoustic") -> list[Phone]:
    """Phones of ``samples`` (mono, any rate) without a transcript: contiguous ARPABET/SIL from 0 s."""
    if method == "acoustic":
        return _recognize_acoustic(samples, sample_rate)
    if method == "allphone":
        return recognize_allphone(samples, sample_rate=sample_rate)
    raise InputError(f"recognition method: expected one of {', '.join(METHODS)}, got {method!r}")


class PhoneRecognizer:
    """Streaming recognition: `feed` chunks, get the phones that became final.

    ``feed(samples)`` takes mono samples at ``sample_rate`` (float −1..1 or int16, any length, even
    0) and returns the phones final since the last call, contiguous from 0 s; `finish` returns the
    rest and ends the stream; `reset` starts a new one at 0 s. ``method="allphone"`` uses
    `AllphoneRecognizer` behind the same interface.
    """

    def __init__(self, *, sample_rate: int = sphinx.SAMPLE_RATE, method: str = "acoustic") -> None:
        if method not in METHODS:
            raise InputError(f"recognition method: expected one of {', '.join(METHODS)}, got {method!r}")
        self.sample_rate = int(sample_rate)
        self.method = method
        self._allphone = AllphoneRecognizer(sample_rate=sample_rate) if method == "allphone" else None
        self._model = acoustic.default_model() if method == "acoustic" else None
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next `feed` starts at 0 s."""
        if self._allphone is not None:
            self._allphone.reset()
            return
        self._features = acoustic.FeatureStream()
        self._decoder = acoustic.StreamingDecoder()
        self._rows = np.zeros((0, acoustic.N_MELS), np.float32)  # feature rows kept for context
        self._row0 = 0  # stream index of _rows[0]
        self._scored = 0  # frames classified so far
        self._fixed = 0  # frames decided by the decoder
        self._run_vis = -1  # the viseme of the run of fixed frames not yet reported (-1: none)
        self._run_start = 0  # its first frame
        self._samples = 0  # 16 kHz samples fed
        self._resampler = None
        if self.sample_rate != sphinx.SAMPLE_RATE:
            from .io import Resampler

            self._resampler = Resampler(self.sample_rate, sphinx.SAMPLE_RATE)

    @property
    def position_s(self) -> float:
        """Stream time of the newest audio fed."""
        if self._allphone is not None:
            return self._allphone.position_s
        return self._samples / sphinx.SAMPLE_RATE

    def feed(self, samples: np.ndarray) -> list[Phone]:
        """Decode a chunk; the phones that became final, in order."""
        if self._allphone is not None:
            return self._allphone.feed(samples)
        x = np.asarray(samples)
        if x.ndim != 1:
            raise InputError(f"audio samples: expected a 1-D mono array, got shape {x.shape}")
        if self._resampler is not None:
            x = self._resampler(np.clip(np.nan_to_num(_float(x)), -1.0, 1.0))
        else:
            x = _pcm_float(x, sphinx.SAMPLE_RATE)
        self._samples += x.size
        rows = self._features.push(x)
        return self._advance(rows, final=False)

    def _advance(self, rows: np.ndarray, *, final: bool) -> list[Phone]:
        if rows.size:
            self._rows = np.concatenate([self._rows, rows])
        total = self._row0 + len(self._rows)  # feature rows available
        ahead = max(acoustic.CONTEXT)
        ready = total if final else total - ahead  # frames whose whole context is in
        fixed = []
        if ready > self._scored:
            back = -min(acoustic.CONTEXT)
            lo = max(self._scored - back, self._row0)
            block = self._rows[lo - self._row0:]
            scores = self._model.scores(block)[self._scored - lo: ready - lo]
            # edge rows are repeated only at the real stream edges: the block reaches back far
            # enough and, unless final, ahead far enough for every scored frame.
            self._scored = ready
            # One frame at a time: the search fixes frame t when frame t + MAX_LAG_FRAMES is in, for
            # any chunking (pushed at once, a long chunk's early frames were fixed with the look-ahead
            # of the whole chunk, a short chunk's with MAX_LAG_FRAMES: the output depended on both).
            fixed.extend(self._decoder.push(row[None]) for row in scores)
            keep_from = max(self._scored - back, 0)
            self._rows = self._rows[keep_from - self._row0:]
            self._row0 = keep_from
        if final:
            fixed.append(self._decoder.finish())
        vis = np.concatenate(fixed) if fixed else np.zeros(0, np.intp)
        return self._runs(vis, final=final)

    def _runs(self, vis: np.ndarray, *, final: bool) -> list[Phone]:
        """Fixed frames → the phones that ended: a viseme is reported once the next one is fixed, or
        in pieces of `RUN_PIECE_S` while it lasts (what is returned depends on the frames, not the calls)."""
        out: list[Phone] = []
        if vis.size:
            cuts = np.flatnonzero(np.diff(vis)) + 1
            for a, b in itertools.pairwise(np.concatenate([[0], cuts, [vis.size]])):
                v = int(vis[a])
                if v != self._run_vis:
                    out += self._close_run(self._fixed + int(a))
                    self._run_vis, self._run_start = v, self._fixed + int(a)
                end = self._fixed + int(b)
                while end - self._run_start >= _PIECE_FRAMES:
                    out.append(_frames_phone(v, self._run_start, self._run_start + _PIECE_FRAMES))
                    self._run_start += _PIECE_FRAMES
            self._fixed += vis.size
        if final:
            out += self._close_run(self._fixed)
        return out

    def _close_run(self, end_frame: int) -> list[Phone]:
        """The held run up to ``end_frame`` as a phone (none if nothing is held)."""
        vis, start = self._run_vis, self._run_start
        self._run_vis, self._run_start = -1, end_frame
        return [_frames_phone(vis, start, end_frame)] if vis >= 0 and end_frame > start else []

    def finish(self) -> list[Phone]:
        """End the stream: the phones not yet returned (the last one ends at the end of the audio)."""
        if self._allphone is not None:
            return self._allphone.finish()
        if self._resampler is not None:
            tail = self._resampler.flush()
            self._samples += tail.size
            rows = self._features.push(tail)
        else:
            rows = np.zeros((0, acoustic.N_MELS), np.float32)
        n_total = self._samples // acoustic.HOP
        rows = np.concatenate([rows, self._features.flush(n_total)])
        start = (self._run_start if self._run_vis >= 0 else self._fixed) * sphinx.FRAME_S
        out = self._advance(rows, final=True)
        end = self._samples / sphinx.SAMPLE_RATE
        if not out and self._samples == 0:
            self.reset()
            return []
        out = _join(out, start, end)
        self.reset()
        return out
