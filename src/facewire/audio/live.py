"""The microphone as a live audio source (``sounddevice`` over PortAudio) for ``facewire listen``,
and `LiveMeter`, which reports its fps, latency and CPU share once a second.

PortAudio's callback copies each 10 ms block with its arrival time (monotonic ns) into a bounded
queue; the consumer feeds them to `LipSync.feed`. A full queue drops its oldest block (a slow
consumer falls behind by at most the queue, never without bound). A missing PortAudio library,
no input device, a bad ``--device`` or a device that stops delivering audio (for `STALL_S`) is a
one-line `DeviceError`.

**Latency** (what ``listen`` prints each second, p50 and p95) runs from a sample's arrival — the
PortAudio callback that delivered its 10 ms block — to the moment the frame showing it has been
handed to every output. It is the look-ahead of `LipSync.feed` (a frame waits for the feature row
nearest it, whose window reaches `prosody.LOOKAHEAD_S` = 16 ms past it, + ≤ 5 ms rounding to the
10 ms rows; less the part of it already inside the frame's own block) plus compute (≈ 0.4 ms a
block). Before the callback a sample also waited for the rest of its block (≤ 10 ms) and in the
device's own buffer (hardware, not seen here). The stream asks PortAudio for its low-latency
setting, so the device delivers 10 ms periods instead of bunching blocks into 30 ms ones. Measured
through a real ALSA capture device (``tests/audio/test_live.py``), 2 shared cores under load:
latency p50 21 ms, p95 24 ms; 8-10 % of a core for the whole process (PortAudio's thread included).
CPU share is process CPU time over wall time.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Self

import numpy as np

from ..errors import DeviceError
from ..frame import FaceFrame
from .io import SAMPLE_RATE

__all__ = ["BLOCK_S", "STALL_S", "DeviceWarning", "LiveMeter", "LiveSecond", "Microphone", "open_sounddevice"]

BLOCK_S = 0.01
"""Audio block length: the first share of live latency."""

STALL_S = 2.0
"""A device that delivers nothing for this long is reported as stalled (a `DeviceError`), not waited on forever."""

_QUEUE_BLOCKS = 50  # 0.5 s
_CLOSE_S = 1.0
_HISTORY = 3600  # reports kept by `LiveMeter`: an hour of seconds


class DeviceWarning(UserWarning):
    """A capture device misbehaved in a way that did not stop the run (it would not close)."""


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


def _inputs(sd) -> list[str]:
    """``"index 'name'"`` for every device that can record."""
    try:
        devices = sd.query_devices()
    except sd.PortAudioError:
        return []
    return [f"{d['index']} {d['name']!r}" for d in devices if d["max_input_channels"] > 0]


class Microphone:
    """Context manager; iterating yields ``(samples float32 mono at `rate`, arrival_ns)`` blocks.

    ``device``: a PortAudio device index or (part of) its name; None = the system's default input.
    """

    def __init__(self, device: int | str | None = None, rate: int | None = None) -> None:
        self.device, self.requested_rate = device, rate
        self.rate = 0
        self.dropped = 0
        """Blocks thrown away here because the consumer fell behind by the whole queue."""
        self.overflows = 0
        """Callbacks whose block followed audio lost in the device (PortAudio's input overflow)."""
        self.name = ""
        self._failed = False
        self._queue: queue.Queue[tuple[np.ndarray, int]] = queue.Queue(_QUEUE_BLOCKS)
        self._stream = None

    def _label(self) -> str:
        return f"microphone {self.device!r}" if self.device is not None else "microphone (default)"

    def __enter__(self) -> Self:
        sd = open_sounddevice()
        try:
            info = sd.query_devices(self.device, "input")
        except (ValueError, sd.PortAudioError) as exc:
            inputs = _inputs(sd)
            have = f"inputs here: {', '.join(inputs)}" if inputs else "this machine has no audio input device"
            want = "no such input device" if self.device is not None else "no default input device"
            raise DeviceError(f"{self._label()}: {want} ({have})") from exc
        self.name = str(info["name"])
        rate = int(self.requested_rate or (SAMPLE_RATE if self._supports(sd, SAMPLE_RATE) else info["default_samplerate"]))
        self.rate = rate
        try:
            # latency="low": 10 ms periods; PortAudio's "high" default delivers blocks in bunches of 30+ ms.
            self._stream = sd.InputStream(device=self.device, channels=1, samplerate=rate, dtype="float32",
                                          blocksize=max(1, round(rate * BLOCK_S)), latency="low",
                                          callback=self._callback)
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._stream = None
            raise DeviceError(f"{self._label()}: cannot record from {self.name!r} at {rate} Hz mono "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc
        return self

    def _supports(self, sd, rate: int) -> bool:
        try:
            sd.check_input_settings(device=self.device, channels=1, samplerate=rate, dtype="float32")
            return True
        except (ValueError, sd.PortAudioError):
            return False

    def _callback(self, indata, frames, time_info, status) -> None:
        item = (indata[:, 0].copy(), time.monotonic_ns())
        if status.input_overflow:  # the device had to throw audio away before this block
            self.overflows += 1
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
        heard = time.monotonic()
        while self._stream is not None:
            try:
                item = self._queue.get(timeout=0.25)
            except queue.Empty:
                if self._stream is None or not self._stream.active:
                    self._failed = True
                    raise DeviceError(f"{self._label()}: the input stream stopped delivering audio") from None
                if time.monotonic() - heard > STALL_S:
                    self._failed = True
                    raise DeviceError(f"{self._label()}: no audio for {STALL_S:g} s (expected a block every "
                                      f"{BLOCK_S * 1e3:g} ms); the device stalled or was unplugged") from None
                continue
            heard = time.monotonic()
            yield item

    def __exit__(self, exc_type, exc, tb) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            # With an error in flight (or already raised from iterating), that error tells the story.
            _close(stream, warn=exc_type is None and not self._failed)


def _close(stream, warn: bool = True) -> None:
    """Abort and close ``stream``, giving up after `_CLOSE_S` on a device stuck inside its driver.

    abort, not stop: stop waits for the device to finish a period, which a stalled device never does.
    PortAudio cannot interrupt its thread while a driver read blocks, so the closing happens on a
    helper thread; if it does not return, the stream is left behind, and so is sounddevice's exit
    handler, which would wait on it forever and keep the process from exiting.
    """
    done = threading.Event()

    def shut() -> None:
        # A device failing while it is closed has nothing left to give: its error is not worth raising.
        with contextlib.suppress(Exception):
            stream.abort()
            stream.close()
        done.set()

    threading.Thread(target=shut, name="facewire-microphone-close", daemon=True).start()
    if not done.wait(_CLOSE_S):
        import sounddevice

        handler = getattr(sounddevice, "_exit_handler", None)
        if handler is not None:
            atexit.unregister(handler)
        if warn:
            warnings.warn(f"microphone: the device did not close within {_CLOSE_S:g} s; leaving it",
                          DeviceWarning, stacklevel=3)


@dataclass(frozen=True)
class LiveSecond:
    """One report of `LiveMeter`: the frames output over ``span_s`` seconds."""

    span_s: float
    frames: int
    latency_p50_ms: float
    latency_p95_ms: float
    cpu_percent: float
    """Process CPU time over wall time (100 = one core busy): every thread, PortAudio's included."""
    dropped_blocks: int

    @property
    def fps(self) -> float:
        return self.frames / self.span_s if self.span_s > 0 else 0.0

    def __str__(self) -> str:
        return (f"fps {self.fps:5.1f} | latency p50 {self.latency_p50_ms:5.1f} p95 {self.latency_p95_ms:5.1f} ms "
                f"(sample arrival → frame out) | cpu {self.cpu_percent:4.1f}% of a core | "
                f"dropped blocks {self.dropped_blocks}")


class LiveMeter:
    """Counts frames as they are output and, every ``period_s``, returns a `LiveSecond`.

    Latency of a frame = the moment it is counted − its ``capture_ns`` (its audio's arrival).
    ``clock_ns`` (monotonic, the same clock as ``capture_ns``) and ``cpu_s`` (process CPU seconds)
    are injectable for tests.
    """

    def __init__(self, period_s: float = 1.0, *, clock_ns: Callable[[], int] = time.monotonic_ns,
                 cpu_s: Callable[[], float] = time.process_time) -> None:
        self.period_s, self._clock_ns, self._cpu_s = float(period_s), clock_ns, cpu_s
        self._start_ns, self._start_cpu = clock_ns(), cpu_s()
        self._lat_ms: list[float] = []
        self._frames = 0
        self.history: collections.deque[LiveSecond] = collections.deque(maxlen=_HISTORY)
        """The reports of the last hour (bounded: a day-long session keeps flat memory)."""

    def add(self, frames: Iterable[FaceFrame], dropped_blocks: int = 0) -> LiveSecond | None:
        """Count ``frames`` as output now; a report when a period has passed, else None.
        ``dropped_blocks``: the source's running count of dropped audio blocks."""
        now_ns = self._clock_ns()
        for f in frames:
            self._frames += 1
            if f.capture_ns:
                self._lat_ms.append((now_ns - f.capture_ns) / 1e6)
        span_s = (now_ns - self._start_ns) / 1e9
        if span_s < self.period_s:
            return None
        cpu = self._cpu_s()
        lat = np.percentile(self._lat_ms, [50, 95]) if self._lat_ms else (float("nan"), float("nan"))
        report = LiveSecond(span_s, self._frames, float(lat[0]), float(lat[1]),
                            100.0 * (cpu - self._start_cpu) / span_s, int(dropped_blocks))
        self.history.append(report)
        self._start_ns, self._start_cpu, self._lat_ms, self._frames = now_ns, cpu, [], 0
        return report
