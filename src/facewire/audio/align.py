"""Forced alignment: where each phone of a known transcript lies in the audio.

Default method ``"acoustic"``, one PocketSphinx 5 pass and facewire's viseme network:

1. PocketSphinx aligns the transcript at word level (``set_align_text``, optional silences and
   fillers between words). Every word may be said as CMUdict has it or as espeak-ng's American or
   British English says it (`facewire.audio.g2p`, added as ``word(2)``…), so the search picks the
   pronunciation that fits the audio; words in neither get letter-to-sound rules
   (`facewire.audio.sphinx.guess_pronunciation`).
2. The phones of the chosen pronunciations, grouped into runs that share a viseme, are re-timed by
   Viterbi over the frame scores of the acoustic viseme model (`facewire.audio.acoustic`): each
   phone at least :data:`MIN_PHONE_FRAMES` frames, each word's start within
   :data:`ANCHOR_BAND_FRAMES` frames of where PocketSphinx put it (optionally also a soft cost,
   :data:`ANCHOR_COST`). A run of several phones is split evenly among them. Long audio is searched
   in pieces cut at the word pass's silences (:data:`CHUNK_FRAMES`), so the cost stays linear.
3. Where the network is unsure of that path (its loss above :data:`PHONE_ANCHOR_MIN_LOSS`: real
   voices, which it never heard in training), PocketSphinx's phone/state alignment is run too and
   every phone, not only each word's first, is held within the band of where PocketSphinx put it,
   at :data:`PHONE_ANCHOR_COST` nats per frame of distance; the search is run again. Measured: GRID
   jawOpen r with transcript 0.652 → 0.682 (tuning clips bbaf2n, brbk7n, lbax4n 0.628 → 0.690;
   held-out lbbc2a, lrwp9a, lwbsza 0.676 → 0.674: lbbc2a is one where the state pass fails and
   nothing changes), LibriVox onsets 89.1% → 96.0%; espeak accuracy 89.9% → 89.3%; speed on
   espeak 92× → 67× (the state pass runs on the sentences the network is unsure of), on real
   speech about half that of the word-anchored search.

**Speed on real voices.** Both PocketSphinx passes cost the same thing: 87% of their time is the
Gaussian scoring of the semi-continuous model (``ptm_mgau_frame_eval``, measured with perf), so a
real voice, which needs both, aligned at 45× real time on one core (LibriVox 37×, GRID 52×). The
network runs first now, and how sure it is (:data:`REAL_VOICE_CONFIDENCE`) picks the decoder: for
a real voice one with GMM downsampling :data:`REAL_VOICE_DS` and PocketSphinx's default beam
(:data:`REAL_VOICE_BEAM`), which scores about half as much. Its state pass fails on some recordings
where the full-rate one works (LibriVox ss01-0880, PocketSphinx's cards_005; always with a
one-frame ``<s>`` before a silence in the word pass, `_state_pass_fails`): those are aligned again
on the full-rate decoder, and where that fails too (GRID lbbc2a, which never had phone anchors
before) once more with the text led by a silence (:data:`LEAD_SILENCE`). Measured (``facewire
bench lipsync``, one core, a 2-core machine at load 10): real voices 45× → 64× real time (LibriVox
37× → 48×: one of its two utterances needs the full-rate decoder; GRID 52× → 68×; PocketSphinx's
samples 45× → 76×), LibriVox onsets 96.0% → 96.0%, GRID r 0.702 → 0.707 (lbbc2a 0.58 → 0.62),
espeak accuracy 89.3% → 89.6% (synthetic voices keep the full-rate decoder; the rise is
`acoustic.viterbi_align` no longer failing where the band left no path). Tried first: a
downsampled decoder for every voice: espeak 87.5%, LibriVox 92.1% (the failed state passes);
fewer Gaussians instead (``topn`` 2): real voices 55×, espeak 88.1%, GRID 0.697; no state pass at
all: 92×, but LibriVox 89.1% and GRID 0.675.

**Determinism.** The result is a function of (audio, text, parameters) alone, whatever the process
aligned before: each call loads a dictionary of the transcript's words only (`Aligner._load_words`;
growing one dictionary with ``add_word`` made calls depend on earlier transcripts) and resets the
front end (`sphinx.reset_features`: PocketSphinx's noise tracker and cepstral mean carry over from
one utterance to the next, which moved a short espeak line's fit from 2.6 to 4.2 nats/frame in the
batch runner — over the mismatch threshold).

Method ``"sphinx"`` is the former two-pass alignment: the word pass, then PocketSphinx's own
phone/state alignment (``set_alignment``). On the benchmark's espeak speech that second pass
failed for about half the sentences ("Failed to stop utterance processing"; the words were then
split evenly), and it halves the speed.

Measured (``facewire bench lipsync``, one core): viseme frame accuracy on 120 espeak sentences
"sphinx" without the espeak variants 71.6%, with them 73.2% (48 sentences), "acoustic" 89.9%
(voices held out of the network's training 88.6%); LibriVox onsets within 50 ms of PocketSphinx's
reference 99.0% "sphinx", 90.1% "acoustic"; speed 47× → 92× real time. Band 2 frames: espeak
90.0%, LibriVox 90.1% (40 sentences); band 3: 90.9%, 88.1%; band 4: 91.5%, 87.1%; a band of 2 with
a 3-frame phone minimum: 89.5%, 87.1%. With the word starts free
(no band) the espeak accuracy rises to 93% but LibriVox falls to 77%: on real voices the network,
trained on synthetic speech only, is less sure than PocketSphinx, so the band keeps it close to
the word pass. On the GRID clips (jawOpen r against video, with today's `animate`) "sphinx"
0.683, "acoustic" 0.650.

**Mismatch.** A transcript that does not fit the audio still "aligns" somewhere, so the fit is
scored: PocketSphinx's acoustic scores are normalised per frame against the best-scoring senone,
so minus the alignment's total score per 10 ms frame (in nats) says how far the forced path
stays from what the audio sounds most like. The word pass's scores are used (the loss of the
chosen words' segments). Measured: right transcripts of espeak speech 1.3–3.8 nats/frame (120
benchmark sentences: median 2.3, max 3.8), of real speech (PocketSphinx/LibriVox/GRID) 1.0–2.1;
a transcript of another recording: most find no alignment at all, the rest 3.5–5.1 for real
speech. Hence :data:`MISMATCH_NATS_PER_FRAME` = 4.0. A transcript that differs in a word or two
(sentences of the same grammar) is *not* caught. The ``"acoustic"`` method adds the network's
view: the mean over frames of (log posterior of the best viseme − that of the aligned viseme).
Measured: right transcripts 0.1–3.7 (espeak, median 0.7), 1.1–3.9 (real speech); transcripts of
other recordings 4.5–8.5 (real) and 5.9–24 (espeak) where PocketSphinx found an alignment at all
— among them a LibriVox utterance aligned to "eight of spades four of clubs …", whose PocketSphinx
loss is only 3.3. Hence :data:`NETWORK_MISMATCH_NATS_PER_FRAME` = 4.5 (a thin margin on real
speech; a false alarm costs little: the lip sync falls back to recognition).

Fast speech fits PocketSphinx worse: more phone changes per frame, each a cost to its HMMs. espeak
lines of three words at 300 wpm (the batch runner's) had right transcripts at 2.3–5.9 nats/frame,
so 20 of 100 were taken for mismatches; their wrong transcripts fit at only 2.1–2.8 (PocketSphinx
barely tells them apart at that rate) but the network put those at 10–21. So the threshold rises
with the spoken phone rate above :data:`MISMATCH_PHONE_RATE` (`mismatch_limit`; the real recordings
here speak 2–9 phones per second, silences included, and keep 4.0). And where the word pass loses
the search and returns silence alone (6 of 100 right transcripts at 300 wpm), the transcript is
timed by the network alone and must fit within :data:`NETWORK_ONLY_MISMATCH_NATS_PER_FRAME`.
Measured on 100 three-word espeak lines at 300 and 175 wpm, 40 benchmark sentences (4 voices,
150–300 wpm) and the 14 real recordings: right transcripts taken for mismatches at 300 wpm 20 → 0
of 100, sentences 4 → 0 of 40, real 0 → 0 of 14; wrong ones accepted at 300 wpm 0 → 0 of 100, at
175 wpm 2 → 1 of 100, sentences 0 → 0 of 40, real 3 → 3 of 14 (transcripts of the same grammar),
real with a longer transcript crammed in 0 → 0 of 39.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..mouth import VISEMES, phone_visemes
from . import acoustic, g2p, sphinx
from .phones import ARPABET, SILENCE, Phone

__all__ = [
    "MISMATCH_NATS_PER_FRAME",
    "NETWORK_MISMATCH_NATS_PER_FRAME",
    "NOISE_FLOOR",
    "Aligner",
    "Alignment",
    "AlignmentError",
    "align",
    "mismatch_limit",
]

_SCORE_TO_NATS = 1024 * math.log(1.0001)  # alignment scores: log base 1.0001, shifted right 10 bits
BEAM = 1e-80  # wider than the default 1e-48: the state-level pass failed on one GRID clip with it
METHODS = ("acoustic", "sphinx")
MIN_PHONE_FRAMES = 2
"""Acoustic re-timing: each phone lasts at least this many 10 ms frames."""
ANCHOR_COST = 0.0
"""Acoustic re-timing: nats per frame that a word's start costs to move from where the word pass put
it (0: the band below does better; measured with the band at 2 frames, a cost of 1 changed nothing)."""
ANCHOR_BAND_FRAMES: int | None = 2
"""Acoustic re-timing: a word's start stays within this many frames of the word pass's (None: free)."""
PHONE_ANCHORS = True
"""Acoustic re-timing: where the network is unsure (:data:`PHONE_ANCHOR_MIN_LOSS`), also anchor every
phone (not only each word's first) to PocketSphinx's phone/state alignment, where that pass
succeeds (see the module doc)."""
PHONE_ANCHOR_MIN_LOSS = 1.0
"""Network loss (nats per frame, see the module doc) of the word-anchored path above which the state
pass is run: espeak speech has a median of 0.7 (the network is sure), real voices 1.1-3.9."""
PHONE_ANCHOR_COST = 2.0
"""Nats per frame that a phone's start costs to move from PocketSphinx's (within the band). GRID
jawOpen r on the tuning clips with every phone anchored: cost 0 → 0.684, 1 → 0.688, 2 → 0.690 (a
weak pull: the network still decides where it is sure)."""
STATE_PASS_MAX_FRAMES = 6000
"""Phone anchors only for audio up to this many frames (60 s): PocketSphinx's state alignment keeps
a back-pointer per frame and HMM state, memory growing with length × length."""
REAL_VOICE_CONFIDENCE = -0.17
"""Mean over frames of the network's best log posterior below which a voice counts as real (it never
heard one in training). Measured: espeak −0.15 to −0.02 (40 benchmark sentences at 150–210 wpm;
down to −0.19 at 300 wpm), real voices −0.46 to −0.19 (LibriVox, GRID, PocketSphinx's samples). A
voice on the wrong side costs little: a real one on the full-rate decoder is slower, a synthetic
one (espeak's +f3 voice at 300 wpm) on the real-voice decoder gets its state-pass anchors there."""
REAL_VOICE_DS = 2
"""Real voices are decoded with PocketSphinx's GMM downsampling (``ds``) at this ratio: the full search
of each codebook's top Gaussians runs on every other frame (the previous frame's top ones are still
scored on every frame), which halves the cost of both passes (see the module doc)."""
LEAD_SILENCE = "<sil>"
"""Last try on a real voice whose state pass failed twice: the text to align starts with this
silence, so the word pass cannot open with a one-frame ``<s>`` (see `_state_pass_fails`). With it
every state pass on the 14 real recordings worked (without: 1 failed at full rate, 3 downsampled);
only as a last try because it moves a word pass that worked (LibriVox onsets 96% → 95% when used
on every real voice, though GRID r 0.701 → 0.705 and 74× real time)."""
REAL_VOICE_BEAM = 1e-48
"""Beam of the real-voice decoder: PocketSphinx's default (the wide :data:`BEAM` is for the full-rate
decoder, whose state pass failed on a GRID clip without it). Measured: real voices 54× → 63× real
time, LibriVox onsets and GRID r unchanged (96.0%, 0.701); the same state passes fail."""
CHUNK_FRAMES = 3000
"""Acoustic re-timing of long audio: searched in pieces of at least this many frames, cut where the
word pass found silence."""
_SEARCHES = ("_state_align", "_align")
"""The searches ``set_alignment`` and ``set_align_text`` create (names fixed by PocketSphinx)."""
_VISEME_INDEX = {v: i for i, v in enumerate(VISEMES)}
MISMATCH_NATS_PER_FRAME = 4.0
MISMATCH_PHONE_RATE = 10.0
"""Spoken phones per second (over the whole audio) up to which :data:`MISMATCH_NATS_PER_FRAME` holds
(espeak at 175 wpm: 8.6–10.1; the real recordings here: 2–9)."""
MISMATCH_NATS_PER_PHONE_RATE = 0.3
"""Nats/frame the mismatch threshold rises per phone per second above
:data:`MISMATCH_PHONE_RATE`. Measured on espeak lines of three words at 300 wpm (17–21 phones/s):
right transcripts 2.3–5.9 nats/frame (the batch runner's lines were falsely taken for mismatches
at 4.0); wrong ones were caught by the network (10–21 nats/frame) whatever this threshold."""
MISMATCH_MAX_NATS_PER_FRAME = 7.0
"""The most the mismatch threshold rises to."""
NETWORK_ONLY_MISMATCH_NATS_PER_FRAME = 1.5
"""Where PocketSphinx's word pass loses the search (silence only), the network
times the transcript alone and must fit it within this. Measured on espeak lines of three words
(175/300 wpm): right transcripts 0.02–0.32 nats/frame, wrong ones 2.1–9.3."""
NETWORK_MISMATCH_NATS_PER_FRAME = 4.5
"""The viseme network's log posterior of its best viseme minus that of the aligned viseme, per frame,
above which the transcript does not match (see the module doc)."""
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
    """Phones of an alignment and how well they fit (nats per frame lost against free recognition):
    by PocketSphinx's scores and, for the ``"acoustic"`` method, by the viseme network's."""

    phones: tuple[Phone, ...]
    loss_nats_per_frame: float
    network_loss_nats_per_frame: float = 0.0
    loss_limit_nats_per_frame: float = MISMATCH_NATS_PER_FRAME
    """The most PocketSphinx loss a matching transcript may have on this audio (see `mismatch_limit`)."""

    @property
    def matches(self) -> bool:
        """Both fits within their thresholds (:attr:`loss_limit_nats_per_frame`, :data:`NETWORK_MISMATCH_NATS_PER_FRAME`)."""
        return (self.loss_nats_per_frame <= self.loss_limit_nats_per_frame
                and self.network_loss_nats_per_frame <= NETWORK_MISMATCH_NATS_PER_FRAME)


def mismatch_limit(phones: list[Phone], duration_s: float) -> float:
    """The PocketSphinx loss (nats/frame) above which a transcript counts as mismatched.

    :data:`MISMATCH_NATS_PER_FRAME`, raised by :data:`MISMATCH_NATS_PER_PHONE_RATE` per spoken phone
    per second above :data:`MISMATCH_PHONE_RATE`, up to :data:`MISMATCH_MAX_NATS_PER_FRAME`: fast
    speech has more phone changes per frame, each a cost to PocketSphinx's HMMs, so a right
    transcript's loss grows with the rate (see the module doc)."""
    if duration_s <= 0:
        return MISMATCH_NATS_PER_FRAME
    rate = sum(p.label != SILENCE for p in phones) / duration_s
    raised = MISMATCH_NATS_PER_FRAME + MISMATCH_NATS_PER_PHONE_RATE * max(0.0, rate - MISMATCH_PHONE_RATE)
    return min(raised, MISMATCH_MAX_NATS_PER_FRAME)


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
    """PocketSphinx decoders for alignment, full-rate and for real voices (made on first need; not
    thread-safe on its own: `align` locks one)."""

    def __init__(self, models: sphinx.SphinxModels | None = None, *, check_mismatch: bool = True,
                 variants: bool = True, method: str = "acoustic") -> None:
        if method not in METHODS:
            raise InputError(f"alignment method: expected one of {', '.join(METHODS)}, got {method!r}")
        self._models = models or sphinx.model_files()
        self.check_mismatch = check_mismatch
        self.variants = variants
        self.method = method
        self.anchor_cost = ANCHOR_COST
        self.anchor_band = ANCHOR_BAND_FRAMES
        self.phone_anchors = PHONE_ANCHORS
        self.phone_anchor_cost = PHONE_ANCHOR_COST
        self.real_voice_ds = REAL_VOICE_DS  # 1: real voices on the full-rate decoder too (the former way)
        # Decoders by GMM downsampling ratio (`_use`): 1 for synthetic voices, REAL_VOICE_DS for real
        # ones (made on first need).
        self._passes: dict[int, _SphinxPass] = {}
        self._use(1)

    def _use(self, ds: int) -> None:
        """Make the decoder with GMM downsampling ``ds`` the one the passes run on."""
        if ds not in self._passes:
            self._passes[ds] = _SphinxPass(self._models, ds)
        self._pass = self._passes[ds]

    @property
    def _decoder(self):
        return self._pass.decoder

    def _entries(self, words: list[str]) -> list[str]:
        """Dictionary lines for ``words``: CMUdict's pronunciations, then espeak-ng's variants (or a
        letter-to-sound guess for a word in neither), as ``word``, ``word(2)``…"""
        cmu = sphinx.read_dictionary(self._models.dict)
        lines = []
        for w in dict.fromkeys(words):
            prons = []
            k = 1
            while (p := cmu.get(w if k == 1 else f"{w}({k})")) is not None:
                prons.append(p)
                k += 1
            extra = [p for p in (g2p.espeak_pronunciations(w) if self.variants else ()) if p not in prons]
            prons += [p for p in extra if all(ph in ARPABET for ph in p.split())]
            if not prons:
                prons = [sphinx.guess_pronunciation(w)]
            lines += [f"{w if k == 0 else f'{w}({k + 1})'} {p}" for k, p in enumerate(prons)]
        return lines

    def _load_words(self, words: list[str]) -> None:
        """Load a dictionary of exactly ``words`` (a pure function of the transcript): growing one
        dictionary call by call made the results depend on which transcripts came before."""
        key = tuple(dict.fromkeys(words))
        if key == self._pass.words:
            return
        self._pass.words = None
        # PocketSphinx re-initialises its searches on the new dictionary, and the alignment
        # searches crash doing so (segfault, pocketsphinx 5.1.1): drop them first.
        for name in _SEARCHES:
            with contextlib.suppress(KeyError):
                self._decoder.remove_search(name)
        with _dictionary_file(self._entries(words)) as path:
            self._decoder.load_dict(path)
        self._pass.words = key

    def _decode(self, pcm: bytes) -> None:
        d = self._decoder
        sphinx.reset_features(d, self._pass.cmn0)
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
        log_post = None
        passes: tuple[tuple[int, bool], ...] = ((1, False),)  # (GMM downsampling, leading silence)
        if self.method == "acoustic":
            # The network runs first: how sure it is tells a synthetic voice from a real one, and so
            # which decoder to try first (see REAL_VOICE_DS).
            x = np.frombuffer(pcm, "<i2").astype(np.float32) / np.float32(32768.0)
            log_post = acoustic.default_model().log_posteriors(acoustic.log_mel(x))[:n_frames]
            real = float(np.mean(log_post.max(axis=1))) < REAL_VOICE_CONFIDENCE
            if self.phone_anchors and n_frames <= STATE_PASS_MAX_FRAMES and real and self.real_voice_ds != 1:
                passes = ((self.real_voice_ds, False), (1, False), (1, True))
        for k, (ds, lead) in enumerate(passes):
            result = self._align_on(ds, pcm, words, log_post, n_frames, lead=lead, retry=k + 1 < len(passes))
            if result is not None:
                return result
        raise AssertionError("unreachable: the last decoder always gives a result")

    def _align_on(self, ds: int, pcm: bytes, words: list[str], log_post: np.ndarray | None, n_frames: int, *,
                  lead: bool = False, retry: bool = False) -> Alignment | None:
        """Both passes on the decoder with GMM downsampling ``ds``, the text led by :data:`LEAD_SILENCE`
        where ``lead``; None where ``retry`` is set and a pass failed (the caller tries the next)."""
        self._use(ds)
        self._load_words(words)
        d = self._decoder
        try:
            d.set_align_text(" ".join(([LEAD_SILENCE] if lead else []) + words))
            self._decode(pcm)
            segments = [(s.word, s.start_frame, s.end_frame + 1, s.ascore) for s in d.seg() or ()]
            if d.hyp() is None or not segments:
                raise RuntimeError("no word alignment")
        except RuntimeError as exc:
            raise AlignmentError(f"transcript does not match the audio: PocketSphinx found no alignment"
                                 f" of {len(words)} words ({exc})") from exc
        word_loss = -sum(math.log(max(a, 1e-300)) for *_, a in segments) / max(n_frames, 1)
        network_loss = 0.0
        spoken = [n for n in (_word_name(w) for w, *_ in segments) if n]
        if log_post is not None and spoken != words and retry:
            return None  # PocketSphinx lost the search: the full-rate decoder may not
        if log_post is not None and spoken != words:
            # PocketSphinx lost the search and returned silence only (seen on espeak lines at 300
            # wpm): the network times the transcript alone, and must fit it closely.
            phones, network_loss = self._network_only(words, log_post)
            if network_loss > NETWORK_ONLY_MISMATCH_NATS_PER_FRAME:
                raise AlignmentError(f"transcript does not match the audio: PocketSphinx found no alignment of"
                                     f" {len(words)} words and the viseme network alone fits them at"
                                     f" {network_loss:.1f} nats/frame (expected ≤ {NETWORK_ONLY_MISMATCH_NATS_PER_FRAME})")
            loss = word_loss
        elif log_post is not None:
            found = self._acoustic_phones(pcm, log_post, segments, n_frames, retry=retry)
            if found is None:
                return None
            phones, network_loss = found
            loss = word_loss
        else:
            phones, loss = self._state_pass(pcm, segments, n_frames, word_loss)
        duration_s = n_frames * sphinx.FRAME_S
        limit = mismatch_limit(phones, duration_s)
        return Alignment(tuple(_contiguous(phones, duration_s)), loss, network_loss, limit)

    def _network_only(self, words: list[str], log_post: np.ndarray) -> tuple[list[Phone], float]:
        """The transcript's phones (first pronunciations) between silences, timed by the network alone."""
        plist: list[tuple[str, str | None, int]] = [(SILENCE, None, -1)]
        for w in words:
            pron = (self._decoder.lookup_word(w) or "").split()
            plist += [(sphinx.phone_label(p), w, -1) for p in pron]
        plist.append((SILENCE, None, -1))
        scores = log_post - acoustic.PRIOR_SCALE * acoustic.default_model().log_prior
        return self._retime(plist, scores, log_post, 0.0)

    def _state_phones(self, pcm: bytes) -> tuple[list[Phone], int] | None:
        """PocketSphinx's phone/state alignment of the word pass's words: (phones, total score), or
        None where PocketSphinx fails ("Failed to stop utterance processing", common on espeak speech)."""
        d = self._decoder
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
        except RuntimeError:
            return None
        return phones, score

    def _state_pass(self, pcm: bytes, segments, n_frames: int, word_loss: float) -> tuple[list[Phone], float]:
        """PocketSphinx's phone/state alignment of the word sequence found (the ``"sphinx"`` method)."""
        found = self._state_phones(pcm)
        if found is None:
            # The state-level pass sometimes fails where the word pass succeeded (seen on one GRID
            # clip, depending on the noise floor): split each word's span evenly among its phones.
            return self._split_words(segments), word_loss
        phones, score = found
        return phones, -score * _SCORE_TO_NATS / max(n_frames, 1)

    def _word_phones(self, segments, state: list[Phone] | None = None) -> list[tuple[str, str | None, int]]:
        """(label, word, anchor) of every phone of the word pass, pronunciation variants resolved, SIL
        for silences and fillers; anchor: the word pass's start frame for a word's first phone, and
        with ``state`` (the state pass's phones, the same sequence) its start frame for every other
        phone; else −1."""
        out: list[tuple[str, str | None, int]] = []
        for word, a, *_ in segments:
            name = _word_name(word)
            pron = (self._decoder.lookup_word(word) or "").split() if name else []
            out += [(sphinx.phone_label(p), name, a if k == 0 else -1) for k, p in enumerate(pron)] or [(SILENCE, None, a)]
        if state is not None:
            state = [p for p in state if p.end_s > p.start_s]
            if [p.label for p in state] == [p[0] for p in out]:
                out = [(label, word, a if a >= 0 else round(q.start_s / sphinx.FRAME_S))
                       for (label, word, a), q in zip(out, state)]
        return out

    def _acoustic_phones(self, pcm: bytes, log_post: np.ndarray, segments, n_frames: int, *,
                         retry: bool = False) -> tuple[list[Phone], float] | None:
        """The word pass's phones re-timed by the acoustic viseme model (see the module doc), and the
        network's loss per frame on that path. Where that loss says the network is unsure (real
        voices), PocketSphinx's state pass anchors every phone and the search is run again; None
        where that pass fails and ``retry`` is set."""
        scores = log_post - acoustic.PRIOR_SCALE * acoustic.default_model().log_prior
        plist = self._word_phones(segments)
        phones, loss = self._retime(plist, scores, log_post, self.anchor_cost)
        if self.phone_anchors and loss > PHONE_ANCHOR_MIN_LOSS and n_frames <= STATE_PASS_MAX_FRAMES:
            if retry and _state_pass_fails(segments):
                return None
            state = self._state_phones(pcm)
            if state is None and retry:
                return None
            anchored = self._word_phones(segments, state[0]) if state is not None else plist
            if anchored != plist:  # the state pass succeeded and has the same phones
                phones, loss = self._retime(anchored, scores, log_post, self.phone_anchor_cost)
        return phones, loss

    def _retime(self, plist: list[tuple[str, str | None, int]], scores: np.ndarray, log_post: np.ndarray,
                anchor_cost: float) -> tuple[list[Phone], float]:
        """Viterbi re-timing of ``plist`` (label, word, anchor frame or −1) over the network's scores:
        the phones and the network's loss per frame on that path."""
        path = np.zeros(scores.shape[0], np.intp)
        labels = [p[0] for p in plist]
        groups: list[tuple[int, list[int]]] = []  # runs of phones sharing a viseme
        for i, v in enumerate(phone_visemes(labels)):
            if groups and groups[-1][0] == _VISEME_INDEX[v]:
                groups[-1][1].append(i)
            else:
                groups.append((_VISEME_INDEX[v], [i]))
        anchors = np.array([plist[idx[0]][2] for _, idx in groups])
        # Long files: the search is cut at the word pass's silences so that its cost stays linear.
        cuts = [0]
        for g in range(1, len(groups)):
            if groups[g][0] == 0 and anchors[g] > anchors[cuts[-1]] + CHUNK_FRAMES:
                cuts.append(g)
        bounds = [int(anchors[g]) if g else 0 for g in cuts] + [scores.shape[0]]
        phones: list[Phone] = []
        for c, g0 in enumerate(cuts):
            g1 = cuts[c + 1] if c + 1 < len(cuts) else len(groups)
            f0, f1 = bounds[c], bounds[c + 1]
            chunk = groups[g0:g1]
            seq = np.array([v for v, _ in chunk])
            mins = np.array([1 if v == 0 else MIN_PHONE_FRAMES * len(idx) for v, idx in chunk])
            if mins.sum() > f1 - f0:
                mins = np.ones_like(mins)
            starts = f0 + acoustic.viterbi_align(scores[f0:f1], seq, mins, anchors[g0:g1] - f0 * (anchors[g0:g1] >= 0),
                                                 anchor_cost, self.anchor_band)
            ends = np.append(starts[1:], f1)
            for (v, idx), a, b in zip(chunk, starts, ends):
                path[a:b] = v
                edges = np.linspace(a, b, len(idx) + 1) * sphinx.FRAME_S
                for k, i in enumerate(idx):
                    label, word, _ = plist[i]
                    phones.append(Phone(label, float(edges[k]), float(edges[k + 1]),
                                        word=word if label != SILENCE else None))
        t_n = scores.shape[0]
        loss = float(np.mean(log_post.max(axis=1) - log_post[np.arange(t_n), path])) if t_n else 0.0
        return phones, loss

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
        if self.check_mismatch and result.loss_nats_per_frame > result.loss_limit_nats_per_frame:
            raise AlignmentError(
                f"transcript does not match the audio: acoustic fit {result.loss_nats_per_frame:.1f} nats/frame"
                f" (expected ≤ {result.loss_limit_nats_per_frame:.1f} for a matching transcript)")
        if self.check_mismatch and result.network_loss_nats_per_frame > NETWORK_MISMATCH_NATS_PER_FRAME:
            raise AlignmentError(
                f"transcript does not match the audio: viseme fit {result.network_loss_nats_per_frame:.1f} nats/frame"
                f" (expected ≤ {NETWORK_MISMATCH_NATS_PER_FRAME} for a matching transcript)")
        return list(result.phones)


class _SphinxPass:
    """A PocketSphinx decoder for the word and state passes, its initial cepstral mean and the words
    whose dictionary it holds."""

    def __init__(self, models: sphinx.SphinxModels, ds: int) -> None:
        # The decoder starts on a one-word dictionary (loading CMUdict into it costs 0.3 s); each
        # call loads the transcript's own (see `Aligner._load_words`).
        with _dictionary_file(["a AH"]) as path:
            self.decoder = sphinx.new_decoder(models, dict_path=path, beam=BEAM if ds == 1 else REAL_VOICE_BEAM, ds=ds)
        self.cmn0 = self.decoder.get_cmn()
        self.words: tuple[str, ...] | None = None


def _state_pass_fails(segments: list[tuple[str, int, int, float]]) -> bool:
    """Whether the word pass's segments carry the mark of a state pass that will fail: a one-frame
    ``<s>`` and another filler from the same frame (a three-state silence HMM cannot fit in that
    frame). Seen on every real recording whose state pass failed (3 of 14; 0 of the 11 that worked)."""
    if len(segments) < 2:
        return False
    (w0, a0, b0, _), (w1, a1, *_) = segments[:2]
    return w0 == "<s>" and b0 - a0 <= 1 and _word_name(w1) is None and a1 == a0


@contextlib.contextmanager
def _dictionary_file(lines: list[str]) -> Iterator[str]:
    """A temporary PocketSphinx dictionary file holding ``lines`` (removed afterwards)."""
    fd, path = tempfile.mkstemp(prefix="facewire-", suffix=".dict")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


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
