"""Coarticulated lip sync: closures, rounding, silence, noise, prosody marks, speed-independent behaviour."""

from __future__ import annotations

import itertools

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
    from facewire.audio.io import AudioWarning

    with pytest.warns(AudioWarning, match="NaN/Inf"):  # NaN: silenced, a warning, frames
        frames = animate([], np.full(SAMPLE_RATE // 2, np.nan, np.float32))
    assert len(frames) == 30 and max(float(f.weights.max()) for f in frames) == 0.0


# -- what the face reads as, given exact phones ---------------------------------------------------
_SENTENCES = ("the old man bought a blue boat before lunch", "my sister painted the heavy box at the market",
              "a small dog moved some fresh bread in the morning", "the teacher found five apples with great care",
              "every pilot washed the wooden chair by the river", "the brown bear cooked a map of the city",
              "our neighbour lifted the purple umbrella very quickly", "a quiet boy hid three warm blankets for the party")


def _viseme_track(phones, n: int, fps: float = 60.0) -> np.ndarray:
    """The true viseme at each frame time k/fps (the phone holding it)."""
    from facewire.mouth import phone_visemes

    out = np.full(n, "sil", dtype=object)
    for p, v in zip(phones, phone_visemes([p.label for p in phones])):
        a, b = int(np.ceil(p.start_s * fps - 1e-9)), int(np.ceil(p.end_s * fps - 1e-9))
        out[max(a, 0):min(b, n)] = v
    return out


def test_frames_read_back_as_the_spoken_viseme():
    """With espeak-ng's own phones, the strongest viseme of each frame (`arkit_to_visemes`) is the one
    being spoken at ≥ 90 % of frames: coarticulation colours the edges but never takes them over."""
    from facewire.mouth import VISEMES, arkit_to_visemes

    hits = total = 0
    for i, text in enumerate(_SENTENCES):
        s = synthesize(text, voice=("en-us", "en-gb-x-rp")[i % 2], rate_wpm=(150, 175, 210)[i % 3])
        frames = animate(s.phones, s.samples, 60.0, sample_rate=s.sample_rate)
        ours = np.array([VISEMES[int(np.argmax(arkit_to_visemes(f.weights)))] for f in frames])
        truth = _viseme_track(s.phones, len(frames))
        hits += int(np.sum(ours == truth))
        total += len(frames)
    assert hits / total >= 0.90, f"{hits / total:.1%} of frames read as the spoken viseme"


def test_trusted_frames_equal_validated_ones(frames):
    """Frames are assembled without FaceFrame's per-frame checks: they must be what validation makes."""
    from dataclasses import fields

    from facewire.frame import FaceFrame

    for f in frames[::17]:
        again = FaceFrame(**{fl.name: getattr(f, fl.name) for fl in fields(FaceFrame)})
        assert again.to_json_dict() == f.to_json_dict()
        assert f.weights.dtype == np.float32 and not f.weights.flags.writeable
        assert f.head == again.head and type(f.extras) is type(again.extras)
    with pytest.raises(ValueError):
        frames[0].weights[0] = 1.0


def test_jaw_opens_ahead_of_the_lips():
    """JALI's jaw channel anticipates: across open vowels, the jaw gets halfway open tens of ms before
    the lips (their own viseme blend) do."""
    s = synthesize("Oh, I am awake. Bob, are you at home? Tim saw a cat.")
    t, w = _arrays(animate(s.phones, s.samples, 200.0, sample_rate=s.sample_rate))

    def half_rise(column: int, centre: int) -> float:
        v, i = w[:, column], centre
        while i > 0 and v[i] > 0.5 * v[centre]:
            i -= 1
        return t[i]

    leads = []
    for k, p in enumerate(s.phones):
        if k and p.label in ("AY", "AA", "AE", "OW", "AH", "EY", "AO") and p.duration_s > 0.06:
            c = int(np.argmin(np.abs(t - 0.5 * (p.start_s + p.end_s))))
            leads.append(half_rise(W["jawOpen"], c) - half_rise(W["mouthLowerDownLeft"], c))
    assert len(leads) >= 5
    assert np.median(leads) <= -0.02, leads


def test_open_vowels_open_the_jaw_wider():
    phones = [Phone("SIL", 0.0, 0.1)] + [Phone(v, 0.1 + 0.3 * k, 0.4 + 0.3 * k) for k, v in
                                         enumerate(("AA", "AE", "EH", "IH", "IY"))] + [Phone("SIL", 1.6, 1.8)]
    t, w = _arrays(animate(phones, None, 100.0))
    centres = [w[np.argmin(np.abs(t - 0.5 * (p.start_s + p.end_s))), W["jawOpen"]] for p in phones[1:-1]]
    assert all(a > b for a, b in itertools.pairwise(centres)), centres


# -- noises that are not speech ---------------------------------------------------------------------
def _laugh(bursts: int = 6, seed: int = 0) -> np.ndarray:
    """A synthetic laugh: "h-a" bursts (aspiration noise, then a falling voiced vowel) at ≈ 4.5 Hz."""
    rng = np.random.default_rng(seed)
    out = [np.zeros(int(0.4 * SAMPLE_RATE))]
    for k in range(bursts):
        period = 0.22 * (1 + 0.08 * rng.uniform(-1, 1))
        h = rng.standard_normal(int(0.06 * SAMPLE_RATE)) * 0.05
        n = int(0.11 * SAMPLE_RATE)
        f0 = 260 - 30 * np.linspace(0, 1, n) - 5 * k
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        vowel = sum(np.sin(j * phase) / j for j in range(1, 12)) * 0.25 * np.sqrt(np.hanning(n))
        out += [h, vowel, np.zeros(int(period * SAMPLE_RATE) - h.size - n)]
    out.append(np.zeros(int(0.5 * SAMPLE_RATE)))
    return np.concatenate(out).astype(np.float32)


def test_laughter_is_a_held_smile_not_a_flapping_mouth():
    x = _laugh()
    # what a recogniser hears in it: a syllable per burst
    heard = [Phone("SIL", 0.0, 0.4)]
    for k in range(6):
        c = 0.4 + 0.22 * k
        heard += [Phone("HH", c, c + 0.06), Phone("AA", c + 0.06, c + 0.17), Phone("SIL", c + 0.17, c + 0.22)]
    for phones in ([], heard):
        t, w = _arrays(animate(phones, x))
        laughing = (t > 0.45) & (t < 0.4 + 6 * 0.22)
        jaw = w[laughing, W["jawOpen"]]
        assert np.median(jaw) > 0.2 and w[laughing, W["mouthSmileLeft"]].min() > 0.4  # an open smile
        assert np.abs(np.diff(jaw)).sum() < 0.3, "the jaw flaps with the bursts"
        assert w[t < 0.2, W["jawOpen"]].max() < 0.05 and w[t > t[-1] - 0.1, W["jawOpen"]].max() < 0.05


def test_speech_is_not_taken_for_laughter(frames):
    _, w = _arrays(frames)
    assert w[:, W["cheekSquintLeft"]].max() < 0.3  # the laugh pose never shows in plain speech


def test_breaths_keep_the_mouth_still():
    """Breaths: band-limited (300-2500 Hz) noise swelling in and out — aperiodic, never a speech gate."""
    rng = np.random.default_rng(2)
    n = 3 * SAMPLE_RATE
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec[(f < 300) | (f > 2500)] = 0
    noise = np.fft.irfft(spec, n)
    swell = np.clip(np.sin(np.pi * np.arange(n) / SAMPLE_RATE / 0.75), 0, None)  # two 0.75 s breaths a second apart
    x = (noise / noise.std() * 0.15 * swell).astype(np.float32)
    phones = [Phone("SIL", 0.0, 0.2), Phone("HH", 0.2, 0.5), Phone("AA", 0.5, 0.7), Phone("SIL", 0.7, 3.0)]
    for ph in ([], phones):
        _, w = _arrays(animate(ph, x))
        assert w[:, W["jawOpen"]].max() < 0.1
        assert np.abs(np.diff(w[:, W["jawOpen"]])).sum() < 0.5


def test_clipped_speech_still_animates(speech):
    loud = np.clip(speech.samples * 12.0, -1.0, 1.0)  # hard-clipped, mostly a square wave
    frames = animate(speech.phones, loud, 60.0, sample_rate=speech.sample_rate)
    t, w = _arrays(frames)
    assert len(frames) == int(np.ceil(speech.duration_s * 60))
    assert np.isfinite(w).all() and w.min() >= 0 and w.max() <= 1
    assert w[:, W["jawOpen"]].max() > 0.3
    closed = 0
    bilabials = [p for p in speech.phones if p.label in ("P", "B", "M")]
    for p in bilabials:
        near = (t >= p.start_s - 0.03) & (t <= p.end_s + 0.03)
        closed += bool(((w[near, W["jawOpen"]] <= 0.1) & (w[near, W["mouthPressLeft"]] > 0.3)).any())
    assert closed == len(bilabials)


def test_streaming_memory_stays_flat():
    """Five minutes through the streaming animator: its buffers stay bounded (`facewire lipsync` on a
    2-hour file is measured outside the suite: peak RSS the same as for 10 minutes)."""
    s = synthesize("Bob moved the blue shoes to my mirror at noon, and Pam sang.")
    from facewire.audio.io import Resampler

    x = np.concatenate([Resampler(s.sample_rate)(s.samples), np.zeros(SAMPLE_RATE // 2, np.float32)])
    anim = Animator(30.0, phones="none", offline=True)
    frames = 0
    sizes = []
    for _ in range(int(300 * SAMPLE_RATE / x.size)):
        anim.push_audio(x)
        frames += len(anim.frames())
        sizes.append(anim._rows["gate"].size)
    anim.end_audio()
    frames += len(anim.frames())
    assert frames == int(np.ceil(anim.audio_s * 30 - 1e-9))
    assert max(sizes) < 10_000  # rows (10 ms each) held: ~1 minute at most, not the whole stream
