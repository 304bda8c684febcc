"""Audio input: formats, rates, channels, broken files, repaired samples, flat memory on long files."""

from __future__ import annotations

import gc
import wave

import av
import numpy as np
import pytest

from facewire.audio.io import (
    SAMPLE_RATE,
    AudioWarning,
    Resampler,
    iter_audio,
    load_audio,
    write_wav,
)
from facewire.errors import InputError


def _wav(path, samples: np.ndarray, rate: int) -> None:
    """int16 WAV with the stdlib (samples: n × channels in [-1, 1])."""
    x = samples.reshape(len(samples), -1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(x * 32767).astype("<i2").tobytes())


def _float_wav(path, samples: np.ndarray, rate: int) -> None:
    """float32 WAV through PyAV (the stdlib cannot write float samples)."""
    with av.open(str(path), "w", format="wav") as c:
        s = c.add_stream("pcm_f32le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def _tone(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * hz * t)


def _peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE)[spec.argmax()])


def test_8khz_telephone_audio_is_resampled(tmp_path):
    _wav(tmp_path / "phone.wav", _tone(8000, 1.0, 300.0), 8000)
    x = load_audio(tmp_path / "phone.wav")
    assert x.dtype == np.float32 and abs(x.size - SAMPLE_RATE) <= 32
    assert _peak_hz(x) == pytest.approx(300.0, abs=2.0)


def test_96khz_six_channels_are_mixed_down(tmp_path):
    rng = np.random.default_rng(0)
    tone = _tone(96000, 0.5, 500.0)
    six = np.stack([tone] + [0.01 * rng.standard_normal(tone.size) for _ in range(5)], axis=1)
    _wav(tmp_path / "six.wav", six, 96000)
    x = load_audio(tmp_path / "six.wav")
    assert abs(x.size - SAMPLE_RATE // 2) <= 64
    assert _peak_hz(x) == pytest.approx(500.0, abs=3.0)


@pytest.mark.parametrize("codec,suffix", [("flac", ".flac"), ("libopus", ".ogg"), ("libmp3lame", ".mp3")])
def test_compressed_formats(tmp_path, codec, suffix):
    if codec not in av.codecs_available:
        pytest.skip(f"FFmpeg here has no {codec} encoder")
    path = tmp_path / f"tone{suffix}"
    with av.open(str(path), "w") as c:
        rate = 48000 if codec == "libopus" else 44100
        s = c.add_stream(codec, rate=rate, layout="stereo")
        fmt = s.codec_context.format.name
        tone = _tone(rate, 1.0, 1000.0).astype(np.float32)
        data = np.stack([tone, tone])
        frame = av.AudioFrame.from_ndarray(data if fmt.endswith("p") else data.T.reshape(1, -1).copy(),
                                           format="fltp" if fmt.endswith("p") else "flt", layout="stereo")
        frame.sample_rate = rate
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    x = load_audio(path)
    assert abs(x.size - SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert _peak_hz(x) == pytest.approx(1000.0, abs=5.0)


def test_video_audio_track(shared_file):
    x = load_audio(shared_file("data/video/grid/bbaf2n.mpg"))
    assert 2.5 * SAMPLE_RATE < x.size < 3.5 * SAMPLE_RATE
    assert np.abs(x).max() <= 1.0 and np.abs(x).max() > 0.05


def test_nan_and_inf_are_silenced_with_a_warning(tmp_path):
    x = _tone(16000, 0.5).astype(np.float32)
    x[100:200] = np.nan
    x[300] = np.inf
    x[400] = 7.0  # clipped float audio
    _float_wav(tmp_path / "bad.wav", x, 16000)
    with pytest.warns(AudioWarning, match="NaN/Inf"):
        y = load_audio(tmp_path / "bad.wav")
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    assert not y[100:200].any()


@pytest.mark.parametrize("content,message", [
    (b"", "empty file"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\xff" * 40, "not a readable audio file|no audio"),
    (b"this is a text file, not audio at all\n" * 10, "not a readable audio file|no audio"),
])
def test_broken_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        load_audio(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_video_without_sound_is_refused(tmp_path):
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height = 64, 64
        for _ in range(3):
            for p in s.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with pytest.raises(InputError, match="no audio stream"):
        load_audio(path)


def test_chunks_and_resampler_agree(tmp_path):
    x = _tone(22050, 2.3, 200.0)
    _wav(tmp_path / "t.wav", x, 22050)
    chunks = list(iter_audio(tmp_path / "t.wav", chunk_s=0.5))
    assert all(c.size == SAMPLE_RATE // 2 for c in chunks[:-1]) and 0 < chunks[-1].size <= SAMPLE_RATE // 2
    rs = Resampler(22050)
    pieces = [rs(x[i: i + 1000].astype(np.float32)) for i in range(0, x.size, 1000)] + [rs.flush()]
    streamed = np.concatenate(pieces)
    whole = np.concatenate(chunks)
    n = min(streamed.size, whole.size)
    assert abs(streamed.size - whole.size) <= 32
    np.testing.assert_allclose(streamed[1000:n - 1000], whole[1000:n - 1000], atol=2e-3)


def test_write_wav_round_trip(tmp_path):
    x = _tone(22050, 0.5).astype(np.float32)
    write_wav(tmp_path / "w.wav", x, 22050)
    with wave.open(str(tmp_path / "w.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (22050, 1, x.size)
    assert not list(tmp_path.glob(".*.part"))


def test_long_file_streams_with_flat_memory(tmp_path):
    psutil = pytest.importorskip("psutil")
    path = tmp_path / "long.wav"
    minutes = 10
    rng = np.random.default_rng(1)
    with wave.open(str(path), "wb") as w:  # written a minute at a time: the test itself stays small
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        for _ in range(minutes):
            w.writeframes((rng.standard_normal(60 * SAMPLE_RATE) * 3000).astype("<i2").tobytes())
    gc.collect()
    proc = psutil.Process()
    total = 0
    peak = 0
    base = None
    for i, chunk in enumerate(iter_audio(path, chunk_s=1.0)):
        total += chunk.size
        if i == 30:
            base = proc.memory_info().rss
        if base is not None and i % 30 == 0:
            peak = max(peak, proc.memory_info().rss - base)
    assert total == minutes * 60 * SAMPLE_RATE
    whole_file_mb = total * 4 / 2**20  # what loading it whole would cost (38 MB)
    assert peak / 2**20 < whole_file_mb / 4, f"RSS grew {peak / 2**20:.1f} MB while streaming"
