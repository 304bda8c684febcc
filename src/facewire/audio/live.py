"""The microphone as a live audio source (``sounddevice`` over PortAudio) for ``facewire listen``.

PortAudio's callback copies each 10 ms block with its arrival time (monotonic ns) into a bounded
queue; the consumer feeds them to `LipSync.feed`. A full queue drops its oldest block (a slow
consumer falls behind by at most the queue, never without bound). A missing PortAudio library,
no input device or a bad ``--device`` is a one-line `DeviceError`.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Self

import numpy as np

from ..errors import DeviceError
from .io import SAMPLE_RATE

__all__ = ["BLOCK_S", "Microphone", "open_sounddevice"]

BLOCK_S = 0.01
"""Audio block length: the first share of live latency."""

_QUEUE_BLOCKS = 50  # 0.5 s


def open_sounddevice():
    """The ``sounddevice`` module, or a `DeviceError` saying what is missing."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise DeviceError(f"microphone: PortAudio library not found ({exc}); install the Debian package "
                          "libportaudio2") from exc
    except ImportError as exc:
        raise DeviceError("microphone: the Python package sounddevice is not installed (pip install sounddevice)") from exc
    return sounddevice


class Microphone:
    """Context manager; iterating yields ``(samples float32 mono at `rate`, arrival_ns)`` blocks."""

    def __init__(self, device: int | str | None = None, rate: int | None = None) -> None:
        self.device, self.requested_rate = device, rate
        self.rate = 0
        self.dropped = 0
        self._queue: queue.Queue[tuple[np.ndarray, int]] = queue.Queue(_QUEUE_BLOCKS)
        self._stream = None

    def __enter__(self) -> Self:
        sd = open_sounddevice()
        try:
            info = sd.query_devices(self.device, "input")
        except (ValueError, sd.PortAudioError) as exc:
            raise DeviceError(f"microphone {self.device if self.device is not None else '(default)'}: "
                              f"no such input device ({exc})") from exc
        rate = int(self.requested_rate or (SAMPLE_RATE if self._supports(sd, SAMPLE_RATE) else info["default_samplerate"]))
        self.rate = rate
        try:
            self._stream = sd.InputStream(device=self.device, channels=1, samplerate=rate, dtype="float32",
                                          blocksize=max(1, round(rate * BLOCK_S)), callback=self._callback)
            self._stream.start()
        except sd.PortAudioError as exc:
            raise DeviceError(f"microphone {self.device if self.device is not None else '(default)'}: "
                              f"cannot open ({exc})") from exc
        return self

    def _supports(self, sd, rate: int) -> bool:
        try:
            sd.check_input_settings(device=self.device, channels=1, samplerate=rate, dtype="float32")
            return True
        except (ValueError, sd.PortAudioError):
            return False

    def _callback(self, indata, frames, time_info, status) -> None:
        item = (indata[:, 0].copy(), time.monotonic_ns())
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            try:
                self._queue.get_nowait()
                self.dropped += 1
            except queue.Empty:
                pass
            self._queue.put_nowait(item)

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        while self._stream is not None:
            try:
                yield self._queue.get(timeout=1.0)
            except queue.Empty:
                if self._stream is None or not self._stream.active:
                    raise DeviceError("microphone: the input stream stopped delivering audio") from None

    def __exit__(self, *exc: object) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()
