"""``facewire play``: a take streamed in real time at its own frame times, into real receivers.

Timing is checked the way a loaded 2-core machine allows: order and count exactly, and durations
only from below (a player may run late, never early: playing N frames at F fps takes at least
(N - 1) / F / speed seconds). Arrival gaps get a generous slack for scheduling jitter.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from facewire import arkit
from facewire.cli import main
from facewire.errors import InputError
from facewire.frame import FaceFrame, HeadPose
from facewire.sinks import WebSocketReceiver, open_receiver
from facewire.takes import open_writer

FACEWIRE = [sys.executable, "-m", "facewire"]
JITTER_S = 0.25  # how much earlier than its schedule the first frame may seem to arrive (it was late)


def make_take(path: Path, n: int, fps: float) -> list[FaceFrame]:
    rng = np.random.default_rng(11)
    sent = [FaceFrame(t_ns=round(i * 1e9 / fps), seq=i, weights=rng.random(arkit.COUNT, dtype=np.float32),
                      head=HeadPose(yaw_deg=float(i))) for i in range(n)]
    with open_writer(path) as sink:
        for frame in sent:
            sink.send(frame)
    return sent


class Collect:
    """A receiver draining on a thread, noting when each frame arrived (perf_counter)."""

    def __init__(self, receiver, count: int) -> None:
        self.receiver, self.count = receiver, count
        self.frames: list[FaceFrame] = []
        self.arrived: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for frame in self.receiver.frames(count=self.count, timeout_s=20.0):
            self.frames.append(frame)
            self.arrived.append(time.perf_counter())

    def join(self) -> list[FaceFrame]:
        self.thread.join(60)
        assert not self.thread.is_alive()
        return self.frames


def play(*args: object, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "FACEWIRE_DEBUG"}
    return subprocess.Popen([*FACEWIRE, "play", *map(str, args)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # Ctrl-C must reach Python even when the test runner ignores SIGINT; the hook
                            # only resets one signal's disposition, taking no lock a thread could hold.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
                            **popen)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_play_to_live_link_in_real_time(tmp_path: Path) -> None:
    n, fps = 30, 30.0
    sent = make_take(tmp_path / "take.jsonl", n, fps)
    duration_s = (n - 1) / fps
    with open_receiver("livelink", "127.0.0.1", 0) as receiver:
        rx, port = Collect(receiver, n), receiver.address[1]
        started = time.perf_counter()
        proc = play(tmp_path / "take.jsonl", "--send", f"livelink://127.0.0.1:{port}?fps=30")
        _out, err = proc.communicate(timeout=60)
        wall_s = time.perf_counter() - started
        got = rx.join()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert f"facewire: played {n} frames ({duration_s:.3f} s of media, 1 pass) from {tmp_path / 'take.jsonl'}" in err
    assert f"sent {n} frames to livelink://127.0.0.1:{port} (0 dropped" in err
    assert len(got) == n
    assert [f.t_ns for f in got] == [f.t_ns for f in sent]  # 1/30 s frames are exact at fps=30
    np.testing.assert_array_equal(np.stack([f.weights for f in got]), np.stack([f.weights for f in sent]))
    assert wall_s >= duration_s
    assert rx.arrived[-1] - rx.arrived[0] >= duration_s - JITTER_S


def test_loop_at_double_speed_to_two_sinks_until_ctrl_c(tmp_path: Path) -> None:
    n, fps, speed = 10, 20.0, 2.0
    sent = make_take(tmp_path / "take.glb", n, fps)  # a glTF take plays like any other
    port = free_tcp_port()
    want = 25  # two and a half passes
    with open_receiver("livelink", "127.0.0.1", 0) as receiver:
        rx = Collect(receiver, want)
        proc = play(tmp_path / "take.glb", "--loop", "--speed", speed, "--send",
                    f"livelink://127.0.0.1:{receiver.address[1]}?fps=20", "--send", f"ws://127.0.0.1:{port}/take")
        ws_got: list[FaceFrame] = []
        deadline = time.monotonic() + 30
        while not ws_got and time.monotonic() < deadline:  # the player serves once it started
            try:
                with WebSocketReceiver("127.0.0.1", port, path="/take", timeout_s=5) as ws:
                    ws_got = list(ws.frames(count=5))
            except InputError:  # not serving yet
                time.sleep(0.1)
        got = rx.join()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "facewire: stopped" in err
    assert "facewire: playing" in err and "in a loop" in err
    assert len(got) == want and len(ws_got) == 5
    times = [f.t_ns for f in got]
    assert times == sorted(set(times))  # media time keeps increasing across passes
    period_ns = round(1e9 / fps)
    expected = [(i // n) * n * period_ns + round((i % n) * 1e9 / fps) for i in range(want)]
    np.testing.assert_allclose(times, expected, atol=1_000)  # float32 seconds in the glb: within 1 µs
    for i, frame in enumerate(got):
        np.testing.assert_array_equal(frame.weights, sent[i % n].weights)
    assert [f.seq for f in ws_got] == list(range(ws_got[0].seq, ws_got[0].seq + 5))  # seq goes on across passes
    for frame in ws_got:
        np.testing.assert_array_equal(frame.weights, sent[frame.seq % n].weights)
        assert frame.head.yaw_deg == pytest.approx(frame.seq % n, abs=1e-3)
    assert rx.arrived[-1] - rx.arrived[0] >= (want - 1) / fps / speed - JITTER_S


@pytest.mark.parametrize(
    "args, message",
    [
        (["--speed", "0"], "facewire: error: --speed: expected a positive number, got 0"),
        (["--speed", "nan"], "facewire: error: --speed: expected a positive number, got nan"),
        (["--loop", "--take-stdin"], "facewire: error: --loop: standard input can be played only once; give a file"),
        (["--missing"], "facewire: error: cannot read take"),
        (["--send-bad"], "facewire: error: unknown sink scheme 'udp'"),
    ],
)
def test_bad_arguments(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    take = tmp_path / "t.jsonl"
    make_take(take, 2, 30.0)
    argv = ["play", str(take), "--send", "livelink://127.0.0.1:9"]
    if "--take-stdin" in args:
        argv[1], args = "-", ["--loop"]
    if "--missing" in args:
        argv[1], args = str(tmp_path / "missing.jsonl"), []
    if "--send-bad" in args:
        argv[3], args = "udp://127.0.0.1:9", []
    assert main([*argv, *args]) == 2
    assert message in capsys.readouterr().err


def test_send_is_required(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["play", "take.jsonl"])
    assert info.value.code == 2
    assert "the following arguments are required: --send" in capsys.readouterr().err
