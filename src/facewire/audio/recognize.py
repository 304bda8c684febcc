"""Phones without a transcript: PocketSphinx 5 phone recognition (allphone search with the phonetic
language model in the wheel), offline (`recognize`) and streaming (`PhoneRecognizer`).

Why allphone and not words: word recognition with the en-us LM and then forced alignment of its
hypothesis ran at 5–7× real time on LibriVox (13–18× with narrow beams, at a much worse word error)
against 29× for allphone (whole bench set), and on espeak speech its word hypotheses were mostly
wrong anyway ("the quick brown fox …" → "we are still so really the ah"); the visemes only need
phone classes. Allphone viseme frame accuracy on espeak speech: 47.5% (``facewire bench lipsync``).

Streaming: the decoder's partial hypothesis is re-read after each fed chunk; a phone is *final*
once it ends at least :data:`STABLE_LAG_S` before the newest audio (earlier phones no longer
change in practice; if one still would, the emitted one stands). So a phone is reported
``STABLE_LAG_S`` + its own duration + up to one chunk after it starts. Utterances are cut every
:data:`MAX_UTTERANCE_S` seconds (at the last final phone) so memory and search cost stay flat on
endless streams.
"""

from __future__ import annotations

import threading

import numpy as np

from . import sphinx
from .align import NOISE_FLOOR
from .phones import SILENCE, Phone

__all__ = ["DECODER_OPTIONS", "MAX_UTTERANCE_S", "STABLE_LAG_S", "PhoneRecognizer", "recognize"]

STABLE_LAG_S = 0.25
"""A phone is final once the audio fed reaches this far past its end."""

MAX_UTTERANCE_S = 30.0
"""Longest stretch decoded as one utterance in streaming mode."""

DECODER_OPTIONS: dict = {}
"""PocketSphinx's default beams. Narrower ones (``beam=pbeam=1e-20``) were 25% faster on clean
audio but lost the search on audio with the noise floor (recognition stopped mid-utterance)."""

_FRAME_SAMPLES = 160


def _decoder():
    models = sphinx.model_files()
    return sphinx.new_decoder(models, allphone=str(models.phone_lm), **DECODER_OPTIONS)


def _segments(decoder, offset_s: float) -> list[Phone]:
    out = []
    for s in decoder.seg() or ():
        start = offset_s + s.start_frame * sphinx.FRAME_S
        end = offset_s + (s.end_frame + 1) * sphinx.FRAME_S
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


class PhoneRecognizer:
    """Streaming phone recognition: `feed` chunks, get the phones that became final.

    ``feed(samples)`` takes mono samples at ``sample_rate`` (float −1..1 or int16, any length, even
    0) and returns the phones final since the last call, contiguous from 0 s; `finish` returns the
    rest and ends the stream; `reset` starts a new one at 0 s.
    """

    def __init__(self, *, sample_rate: int = sphinx.SAMPLE_RATE, stable_lag_s: float = STABLE_LAG_S) -> None:
        self.sample_rate = int(sample_rate)
        self.stable_lag_s = float(stable_lag_s)
        self._decoder = _decoder()
        self._resampler = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next `feed` starts at 0 s."""
        if getattr(self, "_in_utt", False):
            self._decoder.end_utt()
        self._in_utt = False
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
        if not pcm:
            return []
        if not self._in_utt:
            self._decoder.start_utt()
            self._in_utt = True
        self._decoder.process_raw(self._noise(pcm), False, False)
        self._fed_samples += len(pcm) // 2
        out = self._stable()
        if self.position_s - self._utt_start_s >= MAX_UTTERANCE_S:
            out += self._end_utterance()
        return out

    def _stable(self) -> list[Phone]:
        horizon = self.position_s - self.stable_lag_s
        ready = [p for p in _segments(self._decoder, self._utt_start_s) if p.end_s <= horizon]
        out = _join(ready, self._emitted_s, None)
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
        tail = tail[: len(tail) // 2 * 2]
        if tail:
            if not self._in_utt:
                self._decoder.start_utt()
                self._in_utt = True
            self._decoder.process_raw(self._noise(tail), False, False)
            self._fed_samples += len(tail) // 2
        if not self._in_utt:
            return []
        out = self._end_utterance()
        self.reset()
        return out


def _float(x: np.ndarray) -> np.ndarray:
    """int16 or float samples as float32 −1..1 (for the resampler)."""
    if x.dtype.kind == "i":
        return x.astype(np.float32) / np.float32(np.iinfo(x.dtype).max + 1)
    return x.astype(np.float32, copy=False)


def recognize(samples: np.ndarray, *, sample_rate: int = sphinx.SAMPLE_RATE) -> list[Phone]:
    """Phones of ``samples`` (mono, any rate) without a transcript: contiguous ARPABET/SIL from 0 s."""
    pcm = sphinx.to_pcm16(samples, sample_rate)
    total_s = len(pcm) // 2 / sphinx.SAMPLE_RATE
    if not pcm:
        return []
    noise = _Noise()
    out: list[Phone] = []
    step = int(MAX_UTTERANCE_S * sphinx.SAMPLE_RATE) * 2
    with _lock:
        d = _default_decoder()
        for start in range(0, len(pcm), step):  # long files: one utterance per 30 s, memory stays flat
            d.start_utt()
            d.process_raw(noise(pcm[start:start + step]), False, True)
            d.end_utt()
            out += _segments(d, start / 2 / sphinx.SAMPLE_RATE)
    return _join(out, 0.0, total_s)


_shared = None
_lock = threading.Lock()


def _default_decoder():
    global _shared
    if _shared is None:
        _shared = _decoder()
    return _shared
