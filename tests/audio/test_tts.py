"""espeak-ng through its library: audio and exactly timed phones."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from facewire.audio.phones import ARPABET, SILENCE
from facewire.audio.tts import ESPEAK_TO_ARPABET, synthesize
from facewire.errors import InputError


def test_phones_are_monotonic_and_span_the_audio():
    s = synthesize("The quick brown fox jumps over the lazy dog. Bob moved.")
    assert s.sample_rate == 22050 and s.samples.dtype == np.float32 and not s.samples.flags.writeable
    assert s.phones[0].start_s == 0.0
    assert s.phones[-1].end_s == pytest.approx(s.duration_s, abs=1e-3)
    for a, b in zip(s.phones, s.phones[1:]):
        assert a.end_s == pytest.approx(b.start_s, abs=1e-6) and a.end_s > a.start_s
    labels = [p.label for p in s.phones]
    assert set(labels) <= set(ARPABET) | {SILENCE}
    assert labels[:3] == ["SIL", "DH", "AH"]
    assert {"B", "M", "F", "JH", "Z"} <= set(labels)
    assert any(p.stress == 1 for p in s.phones) and {p.word for p in s.phones if p.label == "F"} == {"fox"}


def test_phone_times_match_the_sound():
    s = synthesize("Sasha, sasha.")
    rms = [np.sqrt(np.mean(s.samples[round(p.start_s * s.sample_rate): round(p.end_s * s.sample_rate)] ** 2))
           for p in s.phones]
    silent = [r for p, r in zip(s.phones, rms) if p.label == SILENCE]
    vowels = [r for p, r in zip(s.phones, rms) if p.label in ("AA", "AE", "AH")]
    assert max(silent) < 0.2 * min(vowels)


def test_rate_changes_duration_and_voices_differ():
    slow = synthesize("one two three four five", rate_wpm=120)
    fast = synthesize("one two three four five", rate_wpm=300)
    assert fast.duration_s < 0.7 * slow.duration_s
    gb = synthesize("one two three four five", voice="en-gb-x-rp")
    assert gb.samples.size != slow.samples.size


def test_table_maps_to_arpabet():
    assert set(ESPEAK_TO_ARPABET.values()) <= set(ARPABET) | {SILENCE}


def test_threads_share_the_engine_safely():
    texts = [f"number {i} is here" for i in range(6)]
    single = [synthesize(t).phones for t in texts]
    results: dict[int, tuple] = {}

    def run(i: int) -> None:
        results[i] = synthesize(texts[i]).phones

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(6):  # espeak-ng itself varies by a sample or two between runs
        assert [p.label for p in results[i]] == [p.label for p in single[i]]
        np.testing.assert_allclose([p.end_s for p in results[i]], [p.end_s for p in single[i]], atol=2e-3)


@pytest.mark.parametrize("kwargs,message", [
    ({"text": "  "}, "something to say"),
    ({"text": "hi", "voice": "xx-nonexistent"}, "no voice"),
    ({"text": "hi", "rate_wpm": 5}, "words per minute"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        synthesize(**kwargs)


def test_text_to_arpabet_gives_each_words_pronunciation():
    from facewire.audio.tts import text_to_arpabet

    words = text_to_arpabet("Bob's blue shoes, 42 -- don't!")
    assert [w for w, _ in words] == ["Bob's", "blue", "shoes", "42", "don't"]
    d = dict(words)
    assert d["blue"] == ["B", "L", "UW"] and d["shoes"] == ["SH", "UW", "Z"]
    assert d["Bob's"][0] == "B" and d["Bob's"][-1] == "Z"
    assert d["don't"][0] == "D" and d["don't"][-1] == "T"
    assert len(d["42"]) >= 5  # forty-two, spelled out by espeak-ng
    assert all(set(p) <= set(ARPABET) for _, p in words)
    # the same phones espeak-ng speaks in the sentence (function words aside, nothing is reduced alone)
    spoken = [p.label for p in synthesize("blue shoes").phones if p.label != SILENCE]
    assert spoken == d["blue"] + d["shoes"]
    assert text_to_arpabet("  ,;  ") == []
    with pytest.raises(InputError, match="no voice"):
        text_to_arpabet("hi", voice="xx-nonexistent")


def test_many_voice_changes_do_not_eat_the_next_synthesis():
    """Every voice change queues an espeak-ng event; dozens of them once pushed the first phonemes
    of the next synthesis out of its event buffer."""
    from facewire.audio.tts import text_to_arpabet

    for _ in range(40):
        for voice in ("en-us", "en-gb-x-rp"):
            text_to_arpabet("neighbour", voice=voice)
    s = synthesize("The quick brown fox.")
    assert [p.label for p in s.phones][:3] == ["SIL", "DH", "AH"]
