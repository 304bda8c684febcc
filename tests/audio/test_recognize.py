"""Phone recognition without a transcript: espeak speech, silence, noise, streaming against offline and
in any chunking."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from facewire.audio.io import load_audio
from facewire.audio.recognize import (
    ALLPHONE_LAG_S,
    STABLE_LAG_S,
    PhoneRecognizer,
    recognize,
)
from facewire.mouth import phone_visemes

TEXT = "please bring me some paper and a blue pen before lunch"


def _visemes_at(phones, times):
    vis = phone_visemes([p.label for p in phones])
    out = []
    for t in times:
        i = next((k for k, p in enumerate(phones) if p.start_s <= t < p.end_s), None)
        out.append(vis[i] if i is not None else "sil")
    return np.array(out)


def _contiguous(phones, duration_s):
    assert phones[0].start_s == 0.0
    assert all(abs(a.end_s - b.start_s) < 1e-9 for a, b in itertools.pairwise(phones))
    assert abs(phones[-1].end_s - duration_s) <= 0.011


def test_espeak_speech_gives_mostly_the_right_visemes():
    from facewire.audio.tts import synthesize

    speech = synthesize(TEXT, voice="en-us+f3")
    phones = recognize(speech.samples, sample_rate=speech.sample_rate)
    _contiguous(phones, len(speech.samples) / speech.sample_rate)
    t = np.arange(0, speech.phones[-1].end_s, 1 / 60)
    truth = _visemes_at(list(speech.phones), t)
    acc = np.mean(_visemes_at(phones, t) == truth)
    # the best constant guess (the most common true viseme) is the floor to beat clearly; the
    # +f3 variant and this sentence were never heard in training (tools/train_visemes.py)
    floor = max(np.mean(truth == v) for v in set(truth))
    assert acc >= 0.6 and acc >= floor + 0.4, (acc, floor)
    allphone = recognize(speech.samples, sample_rate=speech.sample_rate, method="allphone")
    _contiguous(allphone, len(speech.samples) / speech.sample_rate)
    assert np.mean(_visemes_at(allphone, t) == truth) >= floor + 0.2


def test_silence_gives_only_sil():
    phones = recognize(np.zeros(3 * 16000, np.float32))
    assert {p.label for p in phones} == {"SIL"}
    _contiguous(phones, 3.0)


def test_white_noise_gives_few_phones():
    x = np.random.default_rng(3).normal(0, 0.1, 3 * 16000).astype(np.float32)
    speechlike = [p for p in recognize(x) if p.label != "SIL"]
    assert len(speechlike) <= 3  # 3 s of real speech holds ~35


def test_empty_input_gives_no_phones():
    assert recognize(np.zeros(0, np.float32)) == []


@pytest.mark.parametrize("method", ["acoustic", "allphone"])
def test_streaming_matches_offline(shared_file, method):
    x = load_audio(shared_file("data/speech/librivox/ss01-0880.wav"))
    offline = recognize(x, method=method)
    rec = PhoneRecognizer(method=method)
    streamed = []
    rng = np.random.default_rng(0)
    i = 0
    while i < len(x):
        n = int(rng.integers(0, 2500))  # odd sizes, 0 included
        streamed += rec.feed(x[i:i + n])
        i += n
    streamed += rec.finish()
    _contiguous(streamed, len(x) / 16000)
    t = np.arange(0, len(x) / 16000, 0.01)
    agree = np.mean(_visemes_at(streamed, t) == _visemes_at(offline, t))
    # allphone: live cepstral normalisation differs from the offline one (close, not equal);
    # acoustic: the same features, the search fixed after a bounded lag
    assert agree >= (0.95 if method == "acoustic" else 0.6), agree


def test_streaming_phones_are_final_within_the_lag(shared_file):
    x = load_audio(shared_file("data/speech/pocketsphinx/goforward.wav"))
    rec = PhoneRecognizer()
    lags = []
    for i in range(0, len(x), 320):
        lags += [rec.position_s - p.end_s for p in rec.feed(x[i:i + 320])]
    assert len(lags) >= 5 and max(lags) <= STABLE_LAG_S + 0.02 + 1e-9
    rec.finish()
    rec = PhoneRecognizer(method="allphone")
    lags = []
    for i in range(0, len(x), 320):
        lags += [rec.position_s - p.end_s for p in rec.feed(x[i:i + 320])]
    assert lags and min(lags) >= ALLPHONE_LAG_S - 1e-9
    rec.finish()


def test_unknown_method_is_an_input_error():
    from facewire.errors import InputError

    with pytest.raises(InputError, match="method"):
        recognize(np.zeros(160, np.float32), method="words")


def test_streaming_other_rates_and_int16_and_reset():
    from facewire.audio.tts import synthesize

    speech = synthesize("hello there", voice="en-us")
    rec = PhoneRecognizer(sample_rate=speech.sample_rate)
    pcm = (speech.samples * 32767).astype(np.int16)
    out = []
    for i in range(0, len(pcm), 997):
        out += rec.feed(pcm[i:i + 997])
    out += rec.finish()
    _contiguous(out, len(pcm) / speech.sample_rate)
    rec.reset()
    assert rec.position_s == 0.0
    assert rec.finish() == []


def test_streaming_rejects_stereo():
    from facewire.errors import InputError

    with pytest.raises(InputError, match="mono"):
        PhoneRecognizer().feed(np.zeros((100, 2), np.float32))


@pytest.mark.parametrize("method", ["acoustic", "allphone"])
def test_recognition_does_not_depend_on_earlier_calls(method):
    from facewire.audio.tts import synthesize

    target = synthesize("the blue table", voice="en-us")
    other = synthesize("a quick brown fox jumps over the lazy dog", voice="en-gb-x-rp")
    alone = recognize(target.samples, sample_rate=target.sample_rate, method=method)
    recognize(other.samples, sample_rate=other.sample_rate, method=method)
    assert repr(recognize(target.samples, sample_rate=target.sample_rate, method=method)) == repr(alone)
    stream = PhoneRecognizer(sample_rate=target.sample_rate, method=method)
    first = stream.feed(target.samples) + stream.finish()
    stream.feed(other.samples[: other.samples.size // 2])
    stream.reset()  # a stream abandoned half-way leaves nothing behind either
    assert repr(stream.feed(target.samples) + stream.finish()) == repr(first)


def _fed_in(rec, x, chunking):
    """Everything ``rec`` returns for ``x`` fed in ``chunking`` (seconds per chunk, or a named pattern)."""
    rate = rec.sample_rate
    rng = np.random.default_rng(1)
    out, i, k = [], 0, 0
    while i < x.size:
        if chunking == "one sample, then 0.5 s":
            n = 1 if k == 0 else rate // 2
        elif chunking == "odd sizes, 0 included":
            n = int(rng.integers(0, 3000))
        else:
            n = max(1, round(chunking * rate))
        out += rec.feed(x[i:i + n])
        i, k = i + n, k + 1
    return out + rec.finish()


@pytest.mark.parametrize("method", ["acoustic", "allphone"])
def test_streaming_does_not_depend_on_the_chunk_sizes(shared_file, method):
    from facewire.audio.tts import synthesize

    speech = synthesize(TEXT, voice="en-us+f3")  # 22,050 Hz: the resampler streams too
    clips = [(speech.samples, speech.sample_rate),
             (load_audio(shared_file("data/speech/librivox/ss01-0880.wav")), 16000)]
    for x, rate in clips:
        rec = PhoneRecognizer(sample_rate=rate, method=method)
        whole = _fed_in(rec, x, x.size / rate)
        _contiguous(whole, x.size / rate)
        for chunking in (0.02, 0.037, 0.1, 1.0, 5.0, "one sample, then 0.5 s", "odd sizes, 0 included"):
            got = _fed_in(rec, x, chunking)
            # the same phones (tolerance: none, see the module doc): what is final depends on the
            # frames decoded, never on how the audio was cut into calls
            assert len(got) == len(whole), (rate, chunking, len(got), len(whole))
            for a, b in zip(got, whole, strict=True):
                assert a.label == b.label and abs(a.start_s - b.start_s) < 1e-9 and abs(a.end_s - b.end_s) < 1e-9, \
                    (rate, chunking, a, b)


def test_a_long_silence_is_reported_while_it_lasts():
    from facewire.audio.recognize import RUN_PIECE_S

    # A viseme is held until the next one starts, except that a long one comes out in pieces: frames
    # waiting for the phones (lip sync of a file) are not held back by a minute of silence.
    rec = PhoneRecognizer()
    early = []
    x = np.zeros(round(2.5 * RUN_PIECE_S * 16000), np.float32)
    for i in range(0, x.size, 1600):
        early += [(p, rec.position_s) for p in rec.feed(x[i:i + 1600])]
    assert [p.label for p, _ in early] == ["SIL", "SIL"]
    assert [t for p, _ in early for t in (p.start_s, p.end_s)] == pytest.approx(np.array([0.0, 1.0, 1.0, 2.0]) * RUN_PIECE_S)
    assert all(pos - p.end_s <= STABLE_LAG_S + 0.1 + 1e-9 for p, pos in early)
    rest = rec.finish()
    _contiguous([p for p, _ in early] + rest, x.size / 16000)
