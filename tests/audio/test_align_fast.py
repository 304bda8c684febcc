"""Alignment's fast paths: the real-voice decoder against the full-rate one, fast short lines, mismatches."""

from __future__ import annotations

import difflib
import itertools
import warnings

import numpy as np
import pytest

from facewire.audio import acoustic
from facewire.audio.align import (
    MISMATCH_NATS_PER_FRAME,
    REAL_VOICE_DS,
    Aligner,
    AlignmentError,
    mismatch_limit,
)
from facewire.audio.io import load_audio
from facewire.audio.phones import Phone


def _speech(phones):
    return [p for p in phones if p.label != "SIL"]


def _aligners():
    full = Aligner()
    full.real_voice_ds = 1  # the former way: real voices on the full-rate decoder
    return Aligner(), full


def test_real_voice_decoder_keeps_the_full_rate_phone_timing(shared_file):
    wav = shared_file("data/speech/librivox/ss01-0870.wav")
    x, text = load_audio(wav), wav.with_suffix(".txt").read_text()
    fast, full = _aligners()
    a = _speech(fast.align_with_score(x, text).phones)
    b = _speech(full.align_with_score(x, text).phones)
    assert REAL_VOICE_DS in fast._passes and REAL_VOICE_DS not in full._passes  # each took its own path
    sm = difflib.SequenceMatcher(a=[p.label for p in a], b=[p.label for p in b], autojunk=False)
    pairs = [(a[i], b[j]) for i0, j0, n in sm.get_matching_blocks() for i, j in zip(range(i0, i0 + n), range(j0, j0 + n))]
    assert len(pairs) >= 0.95 * len(b)
    close = np.mean([abs(p.start_s - q.start_s) <= 0.02 for p, q in pairs])
    assert close >= 0.9, close


def test_a_failed_state_pass_is_redone_at_full_rate(shared_file):
    # ss01-0880: the downsampled decoder's state pass fails there; the full-rate one gives the anchors
    wav = shared_file("data/speech/librivox/ss01-0880.wav")
    x, text = load_audio(wav), wav.with_suffix(".txt").read_text()
    fast, full = _aligners()
    assert repr(fast.align_with_score(x, text)) == repr(full.align_with_score(x, text))


def test_a_clip_whose_state_pass_always_failed_gets_phone_anchors(shared_file):
    # GRID lbbc2a: the state pass failed on both decoders; the try led by a silence works
    clip = shared_file("data/video/grid/lbbc2a.mpg")
    x, text = load_audio(clip), clip.with_suffix(".txt").read_text()
    words_only = Aligner()
    words_only.phone_anchors = False
    anchored = Aligner().align_with_score(x, text)
    plain = words_only.align_with_score(x, text)
    assert [p.label for p in anchored.phones if p.label != "SIL"] == [p.label for p in plain.phones if p.label != "SIL"]
    assert [p.start_s for p in anchored.phones] != [p.start_s for p in plain.phones]
    assert anchored.matches


# espeak at 300 wpm, as the batch runner speaks: "purple pillow" fit PocketSphinx at 5.9 nats/frame,
# "yellow pillow" lost PocketSphinx's word search (silence only)
FAST_LINES = ["the purple pillow", "the yellow pillow", "the silver table", "the white letter"]


@pytest.mark.parametrize("text", FAST_LINES)
def test_short_fast_line_aligns_without_a_mismatch(text):
    from facewire.audio.tts import synthesize

    speech = synthesize(text, rate_wpm=300)
    phones = Aligner().align(speech.samples, text, sample_rate=speech.sample_rate)
    words = [p.word for p in phones if p.word]
    assert [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]] == text.split()


def test_short_fast_line_gives_no_lipsync_warning():
    from facewire.audio.lipsync import LipSync, LipSyncWarning
    from facewire.audio.tts import synthesize

    speech = synthesize(FAST_LINES[0], rate_wpm=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LipSyncWarning)
        frames = LipSync(60, FAST_LINES[0]).frames_from_samples(speech.samples, speech.sample_rate)
    assert frames


@pytest.mark.parametrize(("spoken", "text"), [
    ("the yellow garden", "a yellow ticket and"),  # PocketSphinx loses its search: the network decides
    ("the golden button", "a blue window and"),
    ("the red river", "a orange letter and"),
])
def test_wrong_transcript_of_a_fast_line_is_still_a_mismatch(spoken, text):
    from facewire.audio.tts import synthesize

    speech = synthesize(spoken, rate_wpm=300)
    with pytest.raises(AlignmentError, match="does not match"):
        Aligner().align(speech.samples, text, sample_rate=speech.sample_rate)


def test_mismatch_limit_rises_with_the_phone_rate():
    def phones(n, duration_s=1.0):
        edges = np.linspace(0.0, duration_s, n + 1)
        return [Phone("AA", float(a), float(b)) for a, b in itertools.pairwise(edges)]

    slow, fast, faster = phones(6), phones(20), phones(40)
    assert mismatch_limit(slow, 1.0) == MISMATCH_NATS_PER_FRAME
    assert mismatch_limit(fast, 1.0) > MISMATCH_NATS_PER_FRAME
    assert mismatch_limit(faster, 1.0) >= mismatch_limit(fast, 1.0)
    assert mismatch_limit(fast + [Phone("SIL", 1.0, 3.0)], 3.0) == MISMATCH_NATS_PER_FRAME  # silence slows it


def test_viterbi_band_without_a_path_is_dropped():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(30, 4))
    seq, mins = np.array([0, 1, 2]), np.array([5, 5, 5])
    anchors = np.array([0, 1, 2])  # three 5-frame segments cannot start within 1 frame of these
    starts = acoustic.viterbi_align(scores, seq, mins, anchors, 0.0, 1)
    assert starts[0] == 0 and np.all(np.diff(np.append(starts, 30)) >= mins)
    assert list(starts) == list(acoustic.viterbi_align(scores, seq, mins))  # the unbanded search
