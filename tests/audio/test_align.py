"""Forced alignment on real recordings: words, onsets against PocketSphinx's reference, mismatches."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from facewire.audio.align import Aligner, AlignmentError, align
from facewire.audio.io import load_audio
from facewire.audio.sphinx import normalize_words, phone_label
from facewire.errors import InputError

CARDS = ["cards_001", "cards_003", "cards_005", "goforward"]


def _contiguous(phones, duration_s):
    assert phones[0].start_s == 0.0
    assert all(abs(a.end_s - b.start_s) < 1e-9 for a, b in itertools.pairwise(phones))
    assert abs(phones[-1].end_s - duration_s) <= 0.011


@pytest.mark.parametrize("name", CARDS)
def test_alignment_words_match_transcript(shared_file, name):
    wav = shared_file(f"data/speech/pocketsphinx/{name}.wav")
    text = shared_file(f"data/speech/pocketsphinx/{name}.txt").read_text()
    x = load_audio(wav)
    phones = align(x, text)
    _contiguous(phones, len(x) / 16000)
    words = [p.word for p in phones if p.word is not None]
    spoken = [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]
    assert spoken == normalize_words(text)


def test_librivox_onsets_close_to_reference(shared_file):
    import difflib

    hits = total = 0
    for stem in ("ss01-0870", "ss01-0880"):
        base = f"data/speech/librivox/{stem}"
        ref = [(phone_label(p["t"]), p["b"]) for w in json.loads(shared_file(base + ".phone.json").read_text())["w"]
               for p in w["w"] if phone_label(p["t"]) != "SIL"]
        ours = [(p.label, p.start_s) for p in align(load_audio(shared_file(base + ".wav")),
                                                    shared_file(base + ".txt").read_text()) if p.label != "SIL"]
        sm = difflib.SequenceMatcher(a=[r[0] for r in ref], b=[o[0] for o in ours], autojunk=False)
        for a, b, n in sm.get_matching_blocks():
            hits += sum(abs(ref[a + k][1] - ours[b + k][1]) <= 0.05 for k in range(n))
        total += len(ref)
    assert hits / total >= 0.9


def test_mismatching_transcript_raises(shared_file):
    x = load_audio(shared_file("data/speech/librivox/ss01-0870.wav"))
    with pytest.raises(AlignmentError, match="does not match"):
        align(x, "eight of spades four of clubs seven of hearts")
    with pytest.raises(InputError):  # AlignmentError is an InputError
        align(x[:1600], "and mister john dashwood had then leisure to consider how much")


def test_unknown_words_get_a_pronunciation(shared_file):
    x = load_audio(shared_file("data/speech/pocketsphinx/goforward.wav"))
    phones = align(x, "go forwardly ten meterz")
    assert [p.word for p in phones if p.word][-1] == "meterz"


@pytest.mark.parametrize("voice", ["en-gb-x-rp", "en-us+f3"])  # both held out of the viseme model's training
def test_espeak_speech_aligns_to_its_own_phone_timing(voice):
    from facewire.audio.tts import synthesize
    from facewire.bench.lipsync import frame_accuracy

    text = "the neighbour carried a parcel to the harbour before dinner"
    speech = synthesize(text, voice=voice, rate_wpm=190)
    dur = len(speech.samples) / speech.sample_rate
    acoustic = align(speech.samples, text, sample_rate=speech.sample_rate)
    _contiguous(acoustic, dur)
    sphinx_only = Aligner(method="sphinx").align(speech.samples, text, sample_rate=speech.sample_rate)
    a = frame_accuracy(acoustic, speech.phones, dur)
    b = frame_accuracy(sphinx_only, speech.phones, dur)
    # espeak-ng carries a little state between utterances (a few samples), so one sentence gives a
    # slightly different score depending on what was said before: the margin leaves room for that
    assert a >= 0.7 and a >= b + 0.03, (a, b)


def test_british_speech_can_choose_the_non_rhotic_pronunciation():
    from facewire.audio.tts import synthesize

    speech = synthesize("the market", voice="en-gb-x-rp", rate_wpm=150)
    phones = align(speech.samples, "the market", sample_rate=speech.sample_rate)
    assert [p.label for p in phones if p.word == "market"] == ["M", "AA", "K", "IH", "T"]
    plain = Aligner(variants=False).align(speech.samples, "the market", sample_rate=speech.sample_rate)
    assert "R" in [p.label for p in plain if p.word == "market"]


def test_empty_transcript_is_an_input_error():
    with pytest.raises(InputError, match="expected words"):
        align(np.zeros(16000, np.float32), " ,. ")


def test_other_sample_rates_align_the_same(shared_file):
    from scipy.signal import resample_poly

    x = load_audio(shared_file("data/speech/pocketsphinx/goforward.wav"))
    text = "go forward ten meters"
    a = [p for p in align(x, text) if p.label != "SIL"]
    b = [p for p in align(resample_poly(x, 3, 1).astype(np.float32), text, sample_rate=48000) if p.label != "SIL"]
    assert [p.label for p in a] == [p.label for p in b]
    # the resampled copy differs slightly in its spectrum: the network may move a boundary by a frame or four
    assert max(abs(p.start_s - q.start_s) for p, q in zip(a, b)) <= 0.05


# -- determinism: an alignment depends on (audio, text) only, not on what the process aligned before --
HISTORY = ["she sells sea shells by the sea shore", "a quick brown fox jumps over the lazy dog",
           "please call stella and ask her to bring these things"]


@pytest.mark.parametrize("method", ["acoustic", "sphinx"])
def test_alignment_does_not_depend_on_earlier_calls(method):
    from facewire.audio.tts import synthesize

    target = synthesize("the blue table", voice="en-us", rate_wpm=175)
    alone = Aligner(method=method).align_with_score(target.samples, "the blue table", sample_rate=target.sample_rate)
    busy = Aligner(method=method)
    for text in HISTORY:
        s = synthesize(text, voice="en-us+f3")
        busy.align(s.samples, text, sample_rate=s.sample_rate)
    after = busy.align_with_score(target.samples, "the blue table", sample_rate=target.sample_rate)
    assert repr(after) == repr(alone)  # the same phones, times and fit scores to the last bit
    again = busy.align_with_score(target.samples, "the blue table", sample_rate=target.sample_rate)
    assert repr(again) == repr(alone)
