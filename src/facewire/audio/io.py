"""Audio input: any file PyAV reads (wav, flac, ogg, mp3, a video's audio track) as 16 kHz mono float32,
streamed in chunks so that a two-hour file costs no more memory than a two-second one.

Every input is decoded packet by packet, mixed down to mono (the mean of its channels), cleaned
(NaN/Inf → 0 with a warning, values clipped to [-1, 1]) and resampled to :data:`SAMPLE_RATE` by
FFmpeg's resampler. Unreadable inputs raise a one-line `InputError`; a bad packet in the middle of
a stream is skipped with a warning (the stream goes on).
"""

from __future__ import annotations

import os
import warnings
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import InputError

__all__ = [
    "SAMPLE_RATE",
    "AudioWarning",
    "Resampler",
    "audio_duration_s",
    "iter_audio",
    "load_audio",
    "sanitize",
    "to_mono_float",
    "write_wav",
]

SAMPLE_RATE = 16000
"""The rate every consumer (features, recognition, alignment) works at."""

_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


class AudioWarning(UserWarning):
    """Something in an audio stream was repaired (non-finite samples, an undecodable packet)."""


def sanitize(samples: np.ndarray, name: str = "audio") -> np.ndarray:
    """float32 samples with NaN/Inf replaced by 0 (warning once per call) and values clipped to [-1, 1]."""
    x = np.asarray(samples, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        warnings.warn(f"{name}: {int(bad.sum())} NaN/Inf samples replaced by silence", AudioWarning, stacklevel=2)
        x = np.where(bad, np.float32(0.0), x)
    return np.clip(x, -1.0, 1.0, out=x if x.flags.writeable and x is not samples else None)


def to_mono_float(arr: np.ndarray, fmt: str, channels: int, planar: bool) -> np.ndarray:
    """A decoded frame's ``to_ndarray()`` (any sample format, planar or packed) → float32 mono."""
    base = fmt.rstrip("p")
    x = np.asarray(arr)
    if base == "u8":
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif base in _INT_SCALE:
        x = x.astype(np.float32) / np.float32(_INT_SCALE[base])
    else:
        x = x.astype(np.float32, copy=False)
    if planar:
        x = x.reshape(channels, -1)
    else:
        x = x.reshape(-1, channels).T
    return x.mean(axis=0, dtype=np.float32) if channels > 1 else x[0]


class Resampler:
    """Streaming float32 mono resampler (FFmpeg's swresample through PyAV) from ``rate_in`` to ``rate_out``.

    Call it with consecutive chunks; :meth:`flush` returns what the filter still holds at the end.
    """

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE) -> None:
        if not (isinstance(rate_in, (int, np.integer)) and 1000 <= rate_in <= 768000):
            raise InputError(f"sample rate: expected an integer between 1000 and 768000 Hz, got {rate_in!r}")
        self.rate_in, self.rate_out = int(rate_in), int(rate_out)
        self._resampler = None
        self._pts = 0
        if self.rate_in != self.rate_out:
            import av

            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.rate_out)

    def _run(self, frame) -> np.ndarray:
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        if self._resampler is None or x.size == 0:
            return x.copy() if self._resampler is None else np.zeros(0, np.float32)
        import av

        frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.rate_in
        frame.pts = self._pts
        self._pts += x.size
        return self._run(frame)

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, np.float32)
        return self._run(None)


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "strerror", None) or exc).strip()
    return text.split(";")[0].split("\n")[0] or type(exc).__name__


def _open(path: Path, name: str):
    import av

    if not path.exists():
        raise InputError(f"{name}: no such file")
    if path.is_dir():
        raise InputError(f"{name}: expected an audio or video file, got a directory")
    if path.stat().st_size == 0:
        raise InputError(f"{name}: empty file (0 bytes); expected audio")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{name}: not a readable audio file ({_reason(exc)})") from exc
    if not container.streams.audio:
        container.close()
        raise InputError(f"{name}: no audio stream (expected a file with sound)")
    return container


def audio_duration_s(path: str | os.PathLike[str]) -> float | None:
    """The audio stream's duration from the container header, if it says (for progress bars)."""
    path = Path(path)
    container = _open(path, str(path))
    try:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1e6
        return None
    finally:
        container.close()


def iter_audio(path: str | Path, chunk_s: float = 1.0) -> Iterator[np.ndarray]:
    """The audio of ``path`` as consecutive float32 mono 16 kHz chunks of ``chunk_s`` seconds (the last shorter).

    Streamed: only one chunk and one decoded packet are held at a time.
    """
    if not (isinstance(chunk_s, (int, float)) and 0.001 <= chunk_s <= 3600):
        raise InputError(f"chunk_s: expected 0.001..3600 seconds, got {chunk_s!r}")
    import av

    path = Path(path)
    name = str(path)
    container = _open(path, name)
    chunk = max(1, round(chunk_s * SAMPLE_RATE))
    pending: list[np.ndarray] = []
    held = 0
    bad_samples = bad_packets = 0
    try:
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        resampler: Resampler | None = None
        decoded_any = False

        def frames():
            nonlocal bad_packets
            for packet in container.demux(stream):
                try:
                    yield from packet.decode()
                except (av.error.FFmpegError, ValueError) as exc:
                    if not decoded_any:
                        raise InputError(f"{name}: cannot decode its audio ({_reason(exc)})") from exc
                    bad_packets += 1

        try:
            for frame in frames():
                decoded_any = True
                rate = frame.sample_rate or stream.rate
                if resampler is None or resampler.rate_in != rate:
                    if resampler is not None:  # a rate change mid-stream: drain the old filter
                        pending.append(resampler.flush())
                    resampler = Resampler(int(rate))
                fmt = frame.format.name
                x = to_mono_float(frame.to_ndarray(), fmt, len(frame.layout.channels), frame.format.is_planar)
                finite = np.isfinite(x)
                if not finite.all():
                    bad_samples += int((~finite).sum())
                    x = np.where(finite, x, np.float32(0.0))
                np.clip(x, -1.0, 1.0, out=x)
                y = resampler(x)
                np.clip(y, -1.0, 1.0, out=y)  # the resampling filter overshoots a little near full scale
                if y.size:
                    pending.append(y)
                    held += y.size
                while held >= chunk:
                    joined = np.concatenate(pending)
                    yield joined[:chunk]
                    rest = joined[chunk:]
                    pending, held = ([rest] if rest.size else []), rest.size
        except av.error.FFmpegError as exc:
            if not decoded_any:
                raise InputError(f"{name}: cannot decode its audio ({_reason(exc)})") from exc
            warnings.warn(f"{name}: audio ends early ({_reason(exc)}); keeping what was decoded", AudioWarning,
                          stacklevel=2)
        if not decoded_any:
            raise InputError(f"{name}: its audio stream holds no decodable sound")
        if resampler is not None:
            tail = resampler.flush()
            if tail.size:
                pending.append(tail)
        if pending:
            joined = np.concatenate(pending)
            for start in range(0, joined.size, chunk):
                yield joined[start:start + chunk]
    finally:
        container.close()
        if bad_samples:
            warnings.warn(f"{name}: {bad_samples} NaN/Inf samples replaced by silence", AudioWarning, stacklevel=2)
        if bad_packets:
            warnings.warn(f"{name}: {bad_packets} undecodable audio packets skipped", AudioWarning, stacklevel=2)


def load_audio(path: str | Path) -> np.ndarray:
    """The whole audio of a (short) file as one float32 mono 16 kHz array."""
    chunks = list(iter_audio(path, chunk_s=10.0))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM mono WAV atomically (``"-"`` = stdout)."""
    x = np.clip(np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1)), -1.0, 1.0)
    pcm = np.round(x * 32767.0).astype("<i2").tobytes()
    with atomic_write(path, "wb") as f, wave.open(f, "wb") as w:  # type: ignore[arg-type]
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm)
