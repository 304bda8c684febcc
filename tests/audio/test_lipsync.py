"""`LipSync`: files with and without a transcript, the live push API and its latency."""

from __future__ import annotations

import numpy as np
import pytest

from facewire import arkit
from facewire.audio.io import SAMPLE_RATE, Resampler, write_wav
from facewire.audio.lipsync import LipSync, LipSyncWarning
from facewire.audio.prosody import LOOKAHEAD_S
from facewire.audio.tts import synthesize

J = arkit.INDEX["jawOpen"]


@pytest.fixture(scope="module")
def speech16():
    s = synthesize("Bob moved the blue shoes to my mirror at noon.")
    return s, Resampler(s.sample_rate)(s.samples)


def test_live_feed_latency_and_stamps(speech16):
    _, x = speech16
    lipsync = LipSync(fps=60)
    block = SAMPLE_RATE // 100  # 10 ms, as the microphone delivers
    lags_s, frames = [], []
    for i in range(0, x.size, block):
        arrival_ns = 1_000_000_000 + i * 62_500  # a fake clock: block i arrives when its last sample does
        out = lipsync.feed(x[i: i + block], arrival_ns)
        heard_s = min(x.size, i + block) / SAMPLE_RATE
        for f in out:
            lags_s.append(heard_s - f.t_s)  # audio that had to arrive past the frame's own instant
            assert f.capture_ns >= 1_000_000_000 + round(f.t_s * 1e9) - 10_000_000 - 1  # its block's arrival
        frames.extend(out)
    frames.extend(lipsync.finish())
    assert len(frames) == int(np.ceil(x.size / SAMPLE_RATE * 60))
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert max(lags_s) <= LOOKAHEAD_S + 0.01 + 0.02  # look-ahead + one block + a row's rounding
    jaw = np.array([f.weights[J] for f in frames])
    assert jaw.max() > 0.2  # the acoustic estimate opens the mouth on speech


def test_live_recognition_waits_for_the_phones_and_follows_them(tmp_path, speech16):
    # recognised phones are final long after the audio of a frame arrives; live frames that used
    # them only where already final never used them, so with recognition they wait (see the doc)
    pytest.importorskip("pocketsphinx")
    from facewire.audio.animate import REACH_S
    from facewire.audio.recognize import STABLE_LAG_S

    s, x = speech16

    def live(recognize: bool) -> tuple[np.ndarray, np.ndarray]:
        lipsync, lags_s, frames = LipSync(fps=60, recognize=recognize), [], []
        for i in range(0, x.size, SAMPLE_RATE // 100):
            out = lipsync.feed(x[i: i + SAMPLE_RATE // 100], 0)
            lags_s += [min(x.size, i + SAMPLE_RATE // 100) / SAMPLE_RATE - f.t_s for f in out]
            frames += out
        frames += lipsync.finish()
        return np.array([f.weights for f in frames]), np.array(lags_s)

    acoustic, _ = live(False)
    recognized, lags_s = live(True)
    path = tmp_path / "speech.wav"
    write_wav(path, s.samples, s.sample_rate)
    offline = np.array([f.weights for f in LipSync(fps=60).frames_from_file(path)])  # recognition, whole file
    assert acoustic.shape == recognized.shape == offline.shape
    assert lags_s.min() >= REACH_S and np.median(lags_s) <= REACH_S + STABLE_LAG_S + 0.1
    # the phones shape the frames: near the offline recognition take, unlike the acoustic estimate
    assert np.abs(recognized - offline).mean() < np.abs(acoustic - offline).mean() / 5


def test_live_feed_accepts_int16_stereo_and_other_rates(speech16):
    s, _ = speech16
    pcm = np.round(np.stack([s.samples, s.samples], axis=1) * 32767).astype(np.int16)
    lipsync = LipSync(fps=30)
    frames = []
    for i in range(0, len(pcm), 441):
        frames += lipsync.feed(pcm[i: i + 441], 0, sample_rate=s.sample_rate)
    frames += lipsync.finish()
    assert abs(len(frames) - s.duration_s * 30) <= 2


def test_file_with_transcript_and_mismatch_fallback(tmp_path, speech16):
    s, _ = speech16
    pytest.importorskip("pocketsphinx")
    path = tmp_path / "speech.wav"
    write_wav(path, s.samples, s.sample_rate)
    good = list(LipSync(text=s.text).frames_from_file(path))
    assert len(good) == int(np.ceil(s.duration_s * 60))
    with pytest.warns(LipSyncWarning, match="does not match"):
        bad = list(LipSync(text="purple elephants dance quietly tonight everywhere").frames_from_file(path))
    assert len(bad) == len(good)
    assert max(f.weights[J] for f in bad) > 0.2


def test_file_streamed_without_transcript(tmp_path, speech16):
    s, _ = speech16
    path = tmp_path / "speech.wav"
    write_wav(path, np.concatenate([s.samples, np.zeros(s.sample_rate, np.float32), s.samples]), s.sample_rate)
    lipsync = LipSync(fps=50)
    seen = []
    frames = list(lipsync.frames_from_file(path, progress=seen.append))
    total_s = 2 * s.duration_s + 1.0
    assert len(frames) == int(np.ceil(total_s * 50 - 1e-6))
    assert sum(seen) == pytest.approx(total_s, abs=0.01)
    assert len(lipsync.phrase_ends_s) >= 2


def test_grid_jaw_follows_the_video(shared_file):
    """Real speech: audio-driven jawOpen correlates with the video-tracked jawOpen of the same clip."""
    from facewire.media import open_input
    from facewire.vision.video import TrackerOptions, VideoTracker

    clip = shared_file("data/video/grid/lwbsza.mpg")
    tracker = VideoTracker(None, TrackerOptions(solver="facewire"))
    vt, vj = [], []
    with open_input(str(clip)) as src:
        for image in src:
            f = tracker.process(image)[0]
            if f.tracked:
                vt.append(image.t_ns / 1e9)
                vj.append(f.weights[J])
    frames = list(LipSync(fps=25, text=clip.with_suffix(".txt").read_text()).frames_from_file(clip))
    audio = np.interp(vt, [f.t_s for f in frames], [f.weights[J] for f in frames])
    assert np.corrcoef(audio, vj)[0, 1] > 0.5


# -- bad and unusual input, end to end through files ------------------------------------------------
def _wav_int16(path, samples: np.ndarray, rate: int) -> None:
    import wave

    x = samples.reshape(len(samples), -1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def _jaw(frames) -> np.ndarray:
    return np.array([f.weights[J] for f in frames])


def test_telephone_8khz_file(tmp_path, speech16):
    _, x = speech16
    path = tmp_path / "phone.wav"
    _wav_int16(path, Resampler(SAMPLE_RATE, 8000)(x), 8000)
    frames = list(LipSync(fps=50).frames_from_file(path))
    assert abs(len(frames) - x.size / SAMPLE_RATE * 50) <= 2
    assert _jaw(frames).max() > 0.2


def test_96khz_six_channel_file(tmp_path, speech16):
    s, x = speech16  # with its transcript: alignment on audio that came in at 96 kHz
    voice = Resampler(SAMPLE_RATE, 96000)(x)
    rng = np.random.default_rng(4)
    six = np.stack([voice] + [0.005 * rng.standard_normal(voice.size) for _ in range(5)], axis=1)
    path = tmp_path / "six.wav"
    _wav_int16(path, six, 96000)
    frames = list(LipSync(fps=60, text=s.text).frames_from_file(path))
    assert abs(len(frames) - voice.size / 96000 * 60) <= 2
    assert _jaw(frames).max() > 0.2


def test_nan_and_inf_samples_in_a_file(tmp_path, speech16):
    import av

    from facewire.audio.io import AudioWarning

    _, x = speech16
    bad = x.copy()
    bad[4000:4400] = np.nan
    bad[9000] = np.inf
    path = tmp_path / "nan.wav"
    with av.open(str(path), "w", format="wav") as c:
        st = c.add_stream("pcm_f32le", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(bad.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for p in [*st.encode(frame), *st.encode(None)]:
            c.mux(p)
    with pytest.warns(AudioWarning, match="NaN/Inf"):
        frames = list(LipSync(fps=60).frames_from_file(path))
    assert len(frames) == int(np.ceil(x.size / SAMPLE_RATE * 60))
    assert _jaw(frames).max() > 0.2


def test_silence_and_noise_files_keep_the_mouth_still(tmp_path):
    rng = np.random.default_rng(5)
    for name, x in (("silence", np.zeros(2 * SAMPLE_RATE)), ("noise", 0.3 * rng.standard_normal(2 * SAMPLE_RATE))):
        path = tmp_path / f"{name}.wav"
        _wav_int16(path, x, SAMPLE_RATE)
        frames = list(LipSync(fps=60).frames_from_file(path))
        assert len(frames) == 120
        assert _jaw(frames).max() < 0.1, name


@pytest.mark.parametrize("content,message", [
    (b"", "empty file"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\xff" * 40, "not a readable audio file|no audio"),
])
def test_broken_files_are_one_line_errors(tmp_path, content, message):
    from facewire.errors import InputError

    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    for text in (None, "hello there"):
        with pytest.raises(InputError, match=message) as info:
            list(LipSync(text=text).frames_from_file(path))
        assert "\n" not in str(info.value)


def _take_csv(frames, path):
    from facewire.takes import open_writer

    with open_writer(str(path), fps=60) as writer:
        for f in frames:
            writer.send(f)
    return path.read_bytes()


def test_file_output_is_a_function_of_audio_and_text_alone(tmp_path, shared_file):
    """The same file gives the same take whatever the process lip-synced before, and in another process
    (the batch runner's outputs must not depend on how files are spread over workers)."""
    import subprocess
    import sys

    pytest.importorskip("pocketsphinx")
    history = [(shared_file(f"data/speech/pocketsphinx/{n}.wav"), shared_file(f"data/speech/pocketsphinx/{n}.txt").read_text())
               for n in ("cards_002", "goforward")]
    s = synthesize("she sells sea shells by the sea shore", voice="en-us+f3")
    write_wav(tmp_path / "espeak.wav", s.samples, s.sample_rate)
    history.append((tmp_path / "espeak.wav", s.text))
    target = shared_file("data/speech/pocketsphinx/cards_001.wav")
    text = shared_file("data/speech/pocketsphinx/cards_001.txt").read_text()
    for path, words in history:  # this process's history
        list(LipSync(text=words).frames_from_file(path))
        list(LipSync().frames_from_file(path))
    ours = {"text": _take_csv(LipSync(text=text).frames_from_file(target), tmp_path / "ours_text.csv"),
            "none": _take_csv(LipSync().frames_from_file(target), tmp_path / "ours_none.csv")}
    for kind, extra in (("text", ["--text", text]), ("none", [])):
        out = tmp_path / f"fresh_{kind}.csv"
        subprocess.run([sys.executable, "-m", "facewire", "lipsync", str(target), *extra, "--out", str(out), "--quiet"],
                       check=True, capture_output=True, timeout=120)
        assert out.read_bytes() == ours[kind], kind
