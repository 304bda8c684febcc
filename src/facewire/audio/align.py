"""Forced alignment: where each phone of a known transcript lies in the audio (PocketSphinx 5).

Two passes, as PocketSphinx does it: a word-level alignment of the transcript (``set_align_text``,
optional silences between words), then a phone/state alignment of that word sequence
(``set_alignment``). Words the CMU dictionary lacks get a pronunciation from the letter-to-sound
rules in `facewire.audio.sphinx` (crude but timing comes from the audio, see there).

**Mismatch.** A transcript that does not fit the audio still "aligns" somewhere, so the fit is
scored: PocketSphinx's acoustic scores are normalised per frame against the best-scoring senone,
so minus the alignment's total score per 10 ms frame (in nats) says how far the forced path
stays from what the audio sounds most like. Measured (``facewire bench lipsync`` and the shared
recordings): right transcripts of real speech 0.65–1.8 nats/frame, of espeak-ng speech 0.9–4.0
(median 2.4: synthetic voices fit the model worse); unrelated transcripts 3.9–5.9, and most of
them find no alignment at all (also a mismatch). Hence :data:`MISMATCH_NATS_PER_FRAME` = 4.0.
A transcript that differs in a word or two (GRID sentences of the same grammar: 1.8–2.9) is
*not* caught. When the state-level pass fails, word boundaries from the first pass are split
evenly among the word's phones and the fit comes from the word scores.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from . import sphinx
from .phones import SILENCE, Phone

__all__ = ["MISMATCH_NATS_PER_FRAME", "NOISE_FLOOR", "Aligner", "Alignment", "AlignmentError", "align"]

_SCORE_TO_NATS = 1024 * math.log(1.0001)  # alignment scores: log base 1.0001, shifted right 10 bits
BEAM = 1e-80  # wider than the default 1e-48: the state-level pass failed on one GRID clip with it
MISMATCH_NATS_PER_FRAME = 4.0
"""Alignment loses more than this (nats per 10 ms frame) against free phone recognition → mismatch."""

NOISE_FLOOR = 1e-3
"""Gaussian noise (RMS, full scale 1) added before decoding. Digitally silent stretches (TTS, gated
microphones) give −∞ log energies that wreck PocketSphinx's cepstral mean normalisation: on espeak
speech free phone recognition went from 30% to 55% frame accuracy with this −60 dBFS floor. Real
recordings already have a higher floor and do not change."""


class AlignmentError(InputError):
    """The transcript does not match the audio (or could not be aligned to it at all)."""


@dataclass(frozen=True)
class Alignment:
    """Phones of an alignment and how well they fit (nats per frame lost against free recognition)."""

    phones: tuple[Phone, ...]
    loss_nats_per_frame: float


def noisy_pcm16(samples: np.ndarray, sample_rate: int) -> bytes:
    """``to_pcm16`` with :data:`NOISE_FLOOR` added (seeded: the same audio decodes the same way)."""
    x = np.frombuffer(sphinx.to_pcm16(samples, sample_rate), dtype="<i2").astype(np.float32)
    rng = np.random.default_rng(len(x))
    x += rng.normal(0.0, NOISE_FLOOR * 32768.0, x.shape).astype(np.float32)
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def _word_name(name: str) -> str | None:
    name = name.split("(")[0]
    return None if name.startswith(("<", "[")) else name


class Aligner:
    """One PocketSphinx decoder for alignment (not thread-safe on its own; `align` locks one)."""

    def __init__(self, models: sphinx.SphinxModels | None = None, *, check_mismatch: bool = True) -> None:
        self._decoder = sphinx.new_decoder(models, beam=BEAM)
        self.check_mismatch = check_mismatch

    def _ensure_words(self, words: list[str]) -> None:
        missing = [w for w in dict.fromkeys(words) if self._decoder.lookup_word(w) is None]
        for i, w in enumerate(missing):
            self._decoder.add_word(w, sphinx.guess_pronunciation(w), i == len(missing) - 1)

    def _decode(self, pcm: bytes) -> None:
        d = self._decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()

    def align_pcm(self, pcm: bytes, text: str) -> Alignment:
        """Align 16 kHz int16 bytes (already with the noise floor) to ``text``; no mismatch check."""
        words = sphinx.normalize_words(text)
        if not words:
            raise InputError(f"transcript: expected words, got {text[:40]!r}")
        n_frames = len(pcm) // 2 // 160
        if n_frames < 3 * len(words):
            raise AlignmentError(f"transcript does not match the audio: {len(words)} words in"
                                 f" {n_frames * sphinx.FRAME_S:.2f} s of audio")
        self._ensure_words(words)
        d = self._decoder
        try:
            d.set_align_text(" ".join(words))
            self._decode(pcm)
            segments = [(s.word, s.start_frame, s.end_frame + 1, s.ascore) for s in d.seg() or ()]
            if d.hyp() is None or not segments:
                raise RuntimeError("no word alignment")
        except RuntimeError as exc:
            raise AlignmentError(f"transcript does not match the audio: PocketSphinx found no alignment"
                                 f" of {len(words)} words ({exc})") from exc
        phones: list[Phone] = []
        try:
            d.set_alignment()
            self._decode(pcm)
            score = 0
            for word in d.get_alignment():
                name = _word_name(word.name)
                for p in word:
                    score += p.score
                    label = sphinx.phone_label(p.name)
                    start, end = p.start * sphinx.FRAME_S, (p.start + p.duration) * sphinx.FRAME_S
                    phones.append(Phone(label, start, end, word=name if label != SILENCE else None))
            loss = -score * _SCORE_TO_NATS / max(n_frames, 1)
        except RuntimeError:
            # The state-level pass sometimes fails where the word pass succeeded (seen on one GRID
            # clip, depending on the noise floor): split each word's span evenly among its phones.
            phones = self._split_words(segments)
            loss = -sum(math.log(max(a, 1e-300)) for *_, a in segments) / max(n_frames, 1)
        return Alignment(tuple(_contiguous(phones, n_frames * sphinx.FRAME_S)), loss)

    def _split_words(self, segments: list[tuple[str, int, int, float]]) -> list[Phone]:
        phones = []
        for word, a, b, _ in segments:
            name = _word_name(word)
            pron = (self._decoder.lookup_word(word) or "").split() if name else []
            if not pron:
                phones.append(Phone(SILENCE, a * sphinx.FRAME_S, b * sphinx.FRAME_S))
                continue
            edges = np.linspace(a, b, len(pron) + 1) * sphinx.FRAME_S
            phones += [Phone(sphinx.phone_label(p), float(edges[i]), float(edges[i + 1]), word=name)
                       for i, p in enumerate(pron)]
        return phones

    def align_with_score(self, samples: np.ndarray, text: str, *,
                         sample_rate: int = sphinx.SAMPLE_RATE) -> Alignment:
        """The phones and the fit (nats per frame), without deciding whether it is a mismatch."""
        return self.align_pcm(noisy_pcm16(samples, sample_rate), text)

    def align(self, samples: np.ndarray, text: str, *, sample_rate: int = sphinx.SAMPLE_RATE) -> list[Phone]:
        """Phones of ``text`` timed in ``samples``; `AlignmentError` when they do not fit."""
        result = self.align_with_score(samples, text, sample_rate=sample_rate)
        if self.check_mismatch and result.loss_nats_per_frame > MISMATCH_NATS_PER_FRAME:
            raise AlignmentError(
                f"transcript does not match the audio: acoustic fit {result.loss_nats_per_frame:.1f} nats/frame"
                f" (expected ≤ {MISMATCH_NATS_PER_FRAME} for a matching transcript)")
        return list(result.phones)


def _contiguous(phones: list[Phone], total_s: float) -> list[Phone]:
    """Close gaps (PocketSphinx may skip frames between words) with SIL and merge adjacent SILs."""
    out: list[Phone] = []
    t = 0.0
    for p in sorted(phones, key=lambda p: p.start_s):
        start = max(p.start_s, t)
        if start > t + 1e-9:
            out.append(Phone(SILENCE, t, start))
        if p.end_s > start:
            out.append(Phone(p.label, start, p.end_s, p.stress, p.word))
            t = p.end_s
    if total_s > t + 1e-9:
        out.append(Phone(SILENCE, t, total_s))
    merged: list[Phone] = []
    for p in out:
        if merged and p.label == SILENCE and merged[-1].label == SILENCE:
            merged[-1] = Phone(SILENCE, merged[-1].start_s, p.end_s)
        else:
            merged.append(p)
    return merged


_default: Aligner | None = None
_lock = threading.Lock()


def align(samples: np.ndarray, text: str, *, sample_rate: int = sphinx.SAMPLE_RATE) -> list[Phone]:
    """Forced alignment of ``text`` to ``samples`` (mono, any rate): contiguous ARPABET/SIL phones.

    Raises `AlignmentError` (an `InputError`) when the transcript does not match the audio.
    """
    global _default
    with _lock:
        if _default is None:
            _default = Aligner()
        return _default.align(samples, text, sample_rate=sample_rate)
