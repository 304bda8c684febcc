"""Phone recognition without a transcript: espeak speech, silence, noise, streaming against offline."""

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
