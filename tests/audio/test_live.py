"""`facewire listen` through real PortAudio: an ALSA capture device fed from a FIFO, bad devices,
a missing PortAudio library, and `LiveMeter`'s once-a-second report.

There is no microphone here, so the capture device is ALSA's ``file`` plugin over the ``null``
device, reading its samples from a named pipe that the test writes at real-time pace (the pipe is
the sound card's clock). PortAudio finds it through a private ALSA configuration
(``$XDG_CONFIG_HOME/alsa/asoundrc``, which alsa-lib reads for each process): nothing global is
touched, and ``facewire listen`` runs in a real subprocess exactly as it would on a laptop.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from facewire.audio.io import SAMPLE_RATE, Resampler
from facewire.audio.live import LiveMeter
from facewire.frame import FaceFrame
from facewire.takes import read_take

DEVICE = "facewiremic"

# The file plugin sits on top (no format conversion above it), so its infile is read in exactly the
# blocks PortAudio commits: raw float32 little-endian, 16 kHz mono, the format `Microphone` opens.
# (A `plug` layer above it would read ahead from the pipe and throw away what it could not convert.)
ASOUNDRC = """\
pcm.{name} {{
    type file
    slave.pcm "null"
    infile "{fifo}"
    file "/dev/null"
    format "raw"
}}
"""

_LINE = re.compile(r"fps\s+([\d.]+) \| latency p50\s+([\d.]+) p95\s+([\d.]+) ms .*\| cpu\s+([\d.]+)% of a core")


_RUNNING: list[subprocess.Popen] = []


def _facewire(*args: str, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "facewire", *args], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    _RUNNING.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    """A failed test must not leave a ``facewire listen`` running."""
    yield
    while _RUNNING:
        proc = _RUNNING.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class FifoMicrophone:
    """A real ALSA capture device whose samples are what this test writes into a named pipe."""

    def __init__(self, root) -> None:
        self.fifo = root / "mic.fifo"
        os.mkfifo(self.fifo)
        (root / "alsa").mkdir()
        (root / "alsa" / "asoundrc").write_text(ASOUNDRC.format(name=DEVICE, fifo=self.fifo))
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(root)}
        # Held open for reading too: the file plugin opens the pipe whenever PortAudio probes the
        # device, and an open with no writer would block; reads still block until we write.
        self.fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        self.index: int | None = None  # PortAudio's index for it

    def close(self) -> None:
        os.close(self.fd)

    def write(self, samples: np.ndarray, deadline: float) -> None:
        data = np.ascontiguousarray(samples, dtype="<f4").tobytes()
        while data:
            try:
                data = data[os.write(self.fd, data):]
            except BlockingIOError:  # the reader fell behind by a whole pipe (≈ 1 s): wait for it
                if time.monotonic() > deadline:
                    raise TimeoutError("the capture device is not being read") from None
                time.sleep(0.005)

    def play(self, proc: subprocess.Popen, signal: np.ndarray, *, started: threading.Event,
             timeout_s: float = 60.0) -> None:
        """Once ``started`` is set, stream ``signal`` and then silence at real-time pace until ``proc`` exits."""
        deadline = time.monotonic() + timeout_s
        while not started.wait(0.02):
            if proc.poll() is not None:
                return
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError("facewire listen did not start listening")
        block = SAMPLE_RATE // 100
        # One 100 ms write first: the stream's first read takes a whole buffer (2 periods), and a
        # short read would fill the rest with stale bytes.
        lead = np.zeros(SAMPLE_RATE // 10, np.float32)
        self.write(lead, deadline)
        t0, sent = time.monotonic(), 0
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError("facewire listen did not stop by itself")
            chunk = signal[sent: sent + block]
            self.write(chunk if chunk.size == block else np.zeros(block, np.float32), deadline)
            sent += block
            delay = t0 + sent / SAMPLE_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def _collect(proc: subprocess.Popen, lines: list[str], started: threading.Event) -> threading.Thread:
    def read() -> None:
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if "listening on" in line:
                started.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _portaudio_index(env: dict[str, str]) -> int | None:
    """The index PortAudio gives the device in a process with ``env``, None if it does not list it."""
    code = f"import sounddevice as sd; print([d['index'] for d in sd.query_devices() if d['name'] == {DEVICE!r}])"
    out = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=60)
    found = out.stdout.strip().strip("[]")
    return int(found) if found.isdigit() else None


@pytest.fixture
def mic(tmp_path):
    pytest.importorskip("sounddevice", exc_type=OSError)  # OSError: libportaudio2 missing
    device = FifoMicrophone(tmp_path)
    try:
        device.index = _portaudio_index(device.env)
        if device.index is None:
            pytest.skip("PortAudio here does not list ALSA's configured capture devices")
        yield device
    finally:
        device.close()


@pytest.fixture(scope="module")
def speech16():
    from facewire.audio.tts import synthesize

    s = synthesize("Bob moved the blue shoes to my mirror at noon.")
    rs = Resampler(s.sample_rate)
    return np.concatenate([rs(s.samples), rs.flush()]).astype(np.float32)


def test_listen_lip_syncs_speech_from_a_portaudio_device(mic, tmp_path, speech16):
    lead_s, tail_s = 0.6, 1.2  # silence before and after the sentence
    signal = np.concatenate([np.zeros(round(lead_s * SAMPLE_RATE), np.float32), speech16])
    duration_s = signal.size / SAMPLE_RATE + tail_s
    take = tmp_path / "take.csv"
    proc = _facewire("listen", "--device", DEVICE, "--out", str(take), "--duration", f"{duration_s:.2f}", env=mic.env)
    lines: list[str] = []
    started = threading.Event()
    reader = _collect(proc, lines, started)
    mic.play(proc, signal, started=started)
    reader.join(10)
    assert proc.wait() == 0, "\n".join(lines)

    assert f"listening on microphone '{DEVICE}" in lines[0] and "16000 Hz" in lines[0]
    seconds = [tuple(map(float, m.groups())) for m in map(_LINE.search, lines) if m]
    assert len(seconds) >= 3, "\n".join(lines)  # one line a second
    for fps, p50, p95, cpu in seconds:
        assert fps > 0 and 0 < p50 <= p95 and cpu > 0
    assert re.search(r"\d+ frames from the microphone \(\d+ audio blocks dropped, \d+ device overflows\); latency p50 [\d.]+ ms", lines[-1])

    frames = list(read_take(str(take)))
    t = np.array([f.t_s for f in frames])
    assert np.allclose(np.diff(t), 1 / 60, atol=1e-6)  # every frame of the stream, none lost
    jaw = np.array([f.weight("jawOpen") for f in frames])
    speech_from, speech_to = 0.1 + lead_s, 0.1 + signal.size / SAMPLE_RATE  # 0.1 s: the lead write
    assert t[-1] > speech_to + 0.6  # the whole sentence and some silence after it came through
    talking = jaw[(t > speech_from + 0.2) & (t < speech_to - 0.2)]
    assert talking.max() > 0.3 and np.mean(talking > 0.1) > 0.5
    assert jaw[t < speech_from - 0.05].max() < 0.05  # quiet before the sentence
    assert jaw[t > speech_to + 0.4].max() < 0.05  # and after it


@pytest.mark.parametrize("device,named", [("7", "microphone 7:"), ("no such mic", "microphone 'no such mic':")])
def test_listen_to_a_missing_device_is_one_line(mic, tmp_path, device, named):
    proc = _facewire("listen", "--device", device, "--duration", "1", "--out", str(tmp_path / "t.csv"), env=mic.env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    err = err.strip()
    assert err.count("\n") == 0, err
    assert named in err and "no such input device" in err and DEVICE in err
    assert not (tmp_path / "t.csv").exists()


def test_listen_to_a_device_that_stalls_keeps_the_take_and_says_so(mic, tmp_path, speech16):
    take = tmp_path / "take.csv"
    proc = _facewire("listen", "--device", str(mic.index), "--out", str(take), "--duration", "60", env=mic.env)
    lines: list[str] = []
    started = threading.Event()
    reader = _collect(proc, lines, started)
    assert started.wait(60), "\n".join(lines)
    mic.write(speech16[: SAMPLE_RATE // 2], time.monotonic() + 10)  # half a second, then nothing
    assert proc.wait(timeout=60) == 2
    reader.join(10)
    assert len(lines) == 2, "\n".join(lines)  # "listening on …" and one error line
    assert f"listening on microphone '{DEVICE}'" in lines[0]  # chosen by its index
    assert "no audio for 2 s" in lines[1] and "stalled" in lines[1] and f"in {take}" in lines[1]
    frames = list(read_take(str(take)))
    assert 0 < len(frames) <= 31 and f"kept the {len(frames)} frames" in lines[1]


# The real sounddevice module on a machine where the PortAudio library cannot be found; a Python
# without the sounddevice package.
_MISSING = {
    "PortAudio library not found": (
        ("import ctypes.util\n_find = ctypes.util.find_library\n"
         "ctypes.util.find_library = lambda name: None if name == 'portaudio' else _find(name)\n"),
        "libportaudio2",
    ),
    "sounddevice is not installed": ("import sys\nsys.modules['sounddevice'] = None\n", "pip install sounddevice"),
}


@pytest.mark.parametrize("what", sorted(_MISSING))
def test_listen_without_portaudio_is_one_line(tmp_path, what):
    hook, remedy = _MISSING[what]
    (tmp_path / "sitecustomize.py").write_text(hook)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    proc = _facewire("listen", "--duration", "1", env=env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    err = err.strip()
    assert err.count("\n") == 0, err
    assert what in err and remedy in err


# -- LiveMeter ------------------------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.ns, self.cpu_s = 1_000_000_000, 5.0

    def now(self) -> int:
        return self.ns

    def cpu(self) -> float:
        return self.cpu_s


def _frame(capture_ns: int) -> FaceFrame:
    return replace(FaceFrame.untracked(0), capture_ns=capture_ns)


def test_live_meter_reports_once_a_period():
    clock = _Clock()
    meter = LiveMeter(clock_ns=clock.now, cpu_s=clock.cpu)
    reports = []
    for i in range(100):  # 10 ms apart; frame i arrived 20 + (i % 5) ms before it is counted
        clock.ns += 10_000_000
        clock.cpu_s += 0.0005  # 0.5 ms of CPU per 10 ms: 5 % of a core
        r = meter.add([_frame(clock.ns - (20 + i % 5) * 1_000_000)], dropped_blocks=i // 50)
        if r is not None:
            reports.append((i, r))
    assert [i for i, _ in reports] == [99]  # the 100th step is the first a second after the start
    r = reports[0][1]
    assert r.frames == 100 and r.fps == pytest.approx(100.0)
    assert r.latency_p50_ms == pytest.approx(22.0) and r.latency_p95_ms == pytest.approx(24.0)
    assert r.cpu_percent == pytest.approx(5.0)
    assert r.dropped_blocks == 1
    assert "fps 100.0" in str(r) and "cpu  5.0% of a core" in str(r)
    assert list(meter.history) == [r]


def test_live_meter_without_capture_times_reports_nan_latency():
    clock = _Clock()
    meter = LiveMeter(period_s=0.5, clock_ns=clock.now, cpu_s=clock.cpu)
    clock.ns += 600_000_000
    r = meter.add([_frame(0), _frame(0)])
    assert r is not None and r.frames == 2 and np.isnan(r.latency_p50_ms)
    assert meter.add([]) is None  # a new period began
