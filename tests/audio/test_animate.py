"""Coarticulated lip sync: closures, rounding, silence, noise, prosody marks, speed-independent behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from facewire import arkit
from facewire.audio.animate import Animator, animate
from facewire.audio.io import SAMPLE_RATE
from facewire.audio.phones import Phone
from facewire.audio.prosody import PHRASE_END_KEY
from facewire.audio.tts import synthesize

W = arkit.INDEX


@pytest.fixture(scope="module")
def speech():
    return synthesize("Bob moved the blue shoes to my mirror. Please, Pam, move a map for Vivian, thank you.")


@pytest.fixture(scope="module")
def frames(speech):
    return animate(speech.phones, speech.samples, 60.0, sample_rate=speech.sample_rate)


def _arrays(frames):
    return np.array([f.t_s for f in frames]), np.array([f.weights for f in frames])


def test_one_frame_per_period_over_the_audio(speech, frames):
    t, _ = _arrays(frames)
    assert len(frames) == int(np.ceil(speech.duration_s * 60))
    np.testing.assert_allclose(np.diff(t), 1 / 60, atol=1e-9)
    assert all(f.source == "lipsync" and f.tracked for f in frames)
    assert [f.seq for f in frames] == list(range(len(frames)))


def test_lips_close_on_every_p_b_m(speech, frames):
    t, w = _arrays(frames)
    bilabials = [p for p in speech.phones if p.label in ("P", "B", "M")]
    assert len(bilabials) >= 8
    for p in bilabials:
        near = (t >= p.start_s - 0.03) & (t <= p.end_s + 0.03)
        closed = (w[near, W["jawOpen"]] <= 0.1) & (w[near, W["mouthPressLeft"]] > 0.3)
        assert closed.any(), f"{p.label} at {p.start_s:.3f}s not closed"


def _during(speech, frames, labels, name):
    t, w = _arrays(frames)
    vals = [w[(t >= p.start_s) & (t < p.end_s), W[name]].max() for p in speech.phones
            if p.label in labels and ((t >= p.start_s) & (t < p.end_s)).any()]
    return np.array(vals)


def test_rounding_on_oo_and_lip_to_teeth_on_f_v(speech, frames):
    assert _during(speech, frames, ("UW",), "mouthPucker").min() > 0.3
    assert _during(speech, frames, ("UW",), "mouthPucker").mean() > 2 * _during(speech, frames, ("IY", "EH"), "mouthPucker").mean()
    assert _during(speech, frames, ("F", "V"), "mouthRollLower").min() > 0.3
    assert _during(speech, frames, ("TH",), "tongueOut").max() > 0.05
    # open vowels open the jaw more than the closed ones
    assert _during(speech, frames, ("AA", "AE"), "jawOpen").mean() > _during(speech, frames, ("IY", "UW"), "jawOpen").mean()


def test_coarticulation_anticipates_rounding(speech, frames):
    # /uw/ of "blue": the /l/ before it is already rounded, more than an /l/ before a spread vowel
    t, w = _arrays(frames)
    labels = [p.label for p in speech.phones]
    i = next(k for k in range(1, len(labels)) if labels[k] == "UW" and labels[k - 1] == "L")
    before = speech.phones[i - 1]
    inside = (t >= before.start_s) & (t < before.end_s)
    assert w[inside, W["mouthPucker"]].max() > 0.1


def test_silence_is_a_neutral_mouth():
    frames = animate([], np.zeros(SAMPLE_RATE, np.float32))
    assert len(frames) == 60
    assert max(float(f.weights.max()) for f in frames) == 0.0


def test_white_noise_does_not_flap():
    noise = (np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE) * 0.2).astype(np.float32)
    phones = [Phone("AA", 0.1, 0.4), Phone("P", 0.4, 0.5), Phone("AA", 0.5, 1.0), Phone("SIL", 1.0, 2.0)]
    for ph in ([], phones):  # even when a recogniser hears phones in it
        _, w = _arrays(animate(ph, noise))
        assert w[:, W["jawOpen"]].max() < 0.1
        assert np.abs(np.diff(w[:, W["jawOpen"]])).sum() < 1.0


def test_phones_without_audio(speech):
    frames = animate(speech.phones, None, 30.0)
    t, w = _arrays(frames)
    assert len(frames) == int(np.ceil(speech.phones[-1].end_s * 30))
    assert w[:, W["jawOpen"]].max() > 0.3
    for p in speech.phones:  # the middle of a long pause is a closed, relaxed mouth
        if p.label == "SIL" and p.duration_s > 0.25:
            mid = (t > p.start_s + 0.1) & (t < p.end_s - 0.1)
            assert w[mid, W["jawOpen"]].max() < 0.05


def test_phrase_ends_are_marked(speech, frames):
    ends = [f.t_s for f in frames if f.extras.get(PHRASE_END_KEY)]
    pauses = [p for p in speech.phones if p.label == "SIL" and p.start_s > 0.2]  # sentence and comma pauses
    assert 2 <= len(ends) <= len(pauses)
    for e in ends:  # detected 300 ms into a pause
        assert any(p.start_s + 0.2 <= e <= p.end_s + 0.4 for p in pauses), e


def test_streaming_matches_offline(speech):
    from facewire.audio.io import Resampler

    x = Resampler(speech.sample_rate)(speech.samples)
    offline = animate(speech.phones, x)
    anim = Animator(60.0, phones="wait")
    streamed = []
    for i in range(0, x.size, 1234):
        anim.push_audio(x[i: i + 1234])
        final = [p for p in speech.phones if p.end_s <= (i + 1234) / SAMPLE_RATE and p not in anim._table.phones]
        anim.push_phones(final)
        streamed.extend(anim.frames())
    anim.end_phones()
    anim.end_audio()
    streamed.extend(anim.frames())
    assert len(streamed) == len(offline)
    np.testing.assert_allclose(np.array([f.weights for f in streamed]), np.array([f.weights for f in offline]), atol=1e-5)


def test_bad_input():
    from facewire.errors import InputError

    with pytest.raises(InputError, match="fps"):
        animate([], np.zeros(100, np.float32), fps=0)
    with pytest.raises(InputError, match="increasing"):
        animate([Phone("AA", 0.5, 0.6), Phone("AA", 0.1, 0.2)], None)
    with pytest.raises(InputError, match="mono"):
        animate([], np.zeros((100, 2), np.float32))
    frames = animate([], np.full(SAMPLE_RATE // 2, np.nan, np.float32))  # NaN: silenced, a warning, frames
    assert len(frames) == 30 and max(float(f.weights.max()) for f in frames) == 0.0
