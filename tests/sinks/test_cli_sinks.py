"""The command line's live side: ``facewire receive`` records or prints what arrives, ``facewire track
--send URL`` streams while it tracks, and a sink's trouble never stops tracking."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from facewire import arkit
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.samples import astronaut_clip
from facewire.sinks import LiveLinkReceiver, LiveLinkSink, VmcSink
from facewire.takes import read_take

FACEWIRE = [sys.executable, "-m", "facewire"]
CLIP_FRAMES = 30


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "FACEWIRE_DEBUG"}


def run(*args: object, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run([*FACEWIRE, *map(str, args)], cwd=cwd, env=env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


class Receiving:
    """``facewire receive …`` in the background, started on a free port it reports itself."""

    def __init__(self, *args: object, cwd: Path) -> None:
        self.proc = subprocess.Popen([*FACEWIRE, "receive", *map(str, args), "--port", "0"], cwd=cwd, env=env(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        first = self.proc.stderr.readline()
        match = re.search(r"listening for \w+ on 127\.0\.0\.1:(\d+)", first)
        assert match, first + self.proc.stderr.read()
        self.port = int(match.group(1))

    def wait(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        assert "Traceback" not in err, err
        return self.proc.returncode, out, err


def frames(n: int) -> list[FaceFrame]:
    rng = np.random.default_rng(7)
    return [FaceFrame(t_ns=round(i * 1e9 / 60), seq=i, weights=rng.random(arkit.COUNT, dtype=np.float32),
                      head=HeadPose(*rng.uniform(-30, 30, 3)), gaze=Gaze(*rng.uniform(-20, 20, 4))) for i in range(n)]


def send_all(sink, items) -> None:
    with sink:
        for frame in items:
            sink.send(frame)
            assert sink.flush(5.0)


# -- receive ----------------------------------------------------------------------------------------
def test_receive_records_a_take(tmp_path: Path) -> None:
    sent = frames(50)
    rx = Receiving("livelink", "--count", 50, "--timeout", 20, "--out", "take.jsonl", cwd=tmp_path)
    send_all(LiveLinkSink("127.0.0.1", rx.port, max_rate_hz=500, subject_name="cam"), sent)
    code, _, err = rx.wait()
    assert code == 0, err
    assert "facewire: received 50 frames from 50 packets → take.jsonl" in err
    got = list(read_take(tmp_path / "take.jsonl"))
    assert len(got) == 50 and all(f.source == "livelink:cam" for f in got)
    np.testing.assert_array_equal(np.stack([f.weights for f in got]), np.stack([f.weights for f in sent]))
    assert max(abs(g.t_ns - s.t_ns) for g, s in zip(got, sent)) <= 1


def test_receive_ws_records_a_take_from_a_websocket_stream(tmp_path: Path) -> None:
    import time

    from facewire.sinks import WebSocketSink

    sent = frames(40)
    with WebSocketSink("127.0.0.1", 0, path="/face") as sink:
        port = sink.address[1]
        proc = subprocess.Popen([*FACEWIRE, "receive", "ws", "--port", str(port), "--path", "/face", "--count", "40",
                                 "--timeout", "20", "--out", "take.jsonl"], cwd=tmp_path, env=env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while sink.statistics().clients < 1:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "no client"
            time.sleep(0.02)
        for frame in sent:
            sink.send(frame)
            assert sink.flush(5.0)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"facewire: connected to ws://127.0.0.1:{port}/face" in err
    got = list(read_take(tmp_path / "take.jsonl"))
    assert [f.seq for f in got] == [f.seq for f in sent]
    np.testing.assert_array_equal(np.stack([f.weights for f in got]), np.stack([f.weights for f in sent]))


def test_receive_prints_a_line_per_frame(tmp_path: Path) -> None:
    rx = Receiving("vmc", "--count", 3, "--timeout", 20, cwd=tmp_path)
    send_all(VmcSink("127.0.0.1", rx.port, max_rate_hz=None), frames(3))
    code, out, err = rx.wait()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and all(" vmc  head yaw " in line for line in lines)
    assert lines[0].lstrip().startswith("0.000000s #0")


def test_receive_ends_quietly_on_timeout(tmp_path: Path) -> None:
    rx = Receiving("vrchat", "--timeout", 0.3, "--out", "take.jsonl", cwd=tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(b"not osc", ("127.0.0.1", rx.port))
    code, _, err = rx.wait()
    assert code == 0, err
    assert "received 0 frames from 1 packets → take.jsonl; 1 bad packets skipped" in err
    assert (tmp_path / "take.jsonl").read_text() == ""


def test_receive_count_not_reached_is_an_error(tmp_path: Path) -> None:
    rx = Receiving("livelink", "--count", 5, "--timeout", 0.3, "--out", "take.jsonl", cwd=tmp_path)
    code, _, err = rx.wait()
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "facewire: error: only 0 of 5 frames arrived before nothing came for 0.3 s (0 bad packets)")
    assert not (tmp_path / "take.jsonl").exists()


def test_receive_bad_arguments(tmp_path: Path) -> None:
    proc = run("receive", "livelink", "--count", 0, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "facewire: error: --count: expected a positive number of frames, got 0"


# -- track --send -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, models) -> Path:
    path = tmp_path_factory.mktemp("sinks-cli") / "astronaut.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for image in astronaut_clip(frames=CLIP_FRAMES, size=(320, 240)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image.rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_track_sends_live_link(clip: Path, tmp_path: Path) -> None:
    with LiveLinkReceiver("127.0.0.1", 0) as receiver:
        port = receiver.address[1]
        got: list[FaceFrame] = []
        done = threading.Event()

        def collect() -> None:  # until the run is over and the socket has fallen quiet
            while not done.is_set():
                got.extend(receiver.frames(timeout_s=0.2))

        thread = threading.Thread(target=collect, daemon=True)
        thread.start()
        proc = run("track", clip, "--send", f"livelink://127.0.0.1:{port}?subject=astro", "--out", "take.jsonl",
                   cwd=tmp_path)
        done.set()
        thread.join(30)
        assert proc.returncode == 0, proc.stderr
    match = re.search(rf"sent (\d+) frames to livelink://127\.0\.0\.1:{port} \((\d+) dropped to keep up, "
                      r"(\d+) datagrams refused\)", proc.stderr)
    assert match, proc.stderr
    sent, dropped, refused = map(int, match.groups())
    take = {f.t_ns: f for f in read_take(tmp_path / "take.jsonl")}
    assert len(take) == CLIP_FRAMES
    # tracking a file outruns the 120 Hz pacing, so some frames may give way: never silently
    assert sent + dropped == CLIP_FRAMES and refused == 0 and sent >= 2
    assert len(got) == sent
    for frame in got:
        assert frame.source == "livelink:astro"
        original = take[min(take, key=lambda t: abs(t - frame.t_ns))]
        assert abs(original.t_ns - frame.t_ns) <= 1
        assert frame.tracked == original.tracked
        if frame.tracked:
            np.testing.assert_array_equal(frame.weights, original.weights)


def test_sending_to_nobody_never_stops_tracking(clip: Path, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run("track", clip, "--send", f"vmc://127.0.0.1:{port}", "--send", f"vrchat://127.0.0.1:{port}",
               "--send", "livelink://no-such-host.invalid", "--out", "take.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "facewire: warning: cannot send to livelink://no-such-host.invalid:11111" in proc.stderr
    assert len(list(read_take(tmp_path / "take.jsonl"))) == CLIP_FRAMES
    assert f"to vmc://127.0.0.1:{port}" in proc.stderr and f"to vrchat://127.0.0.1:{port}" in proc.stderr


def test_bad_send_url_fails_before_tracking(clip: Path, tmp_path: Path) -> None:
    proc = run("track", clip, "--send", "wss://localhost:8765", "--out", "take.jsonl", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "facewire: error: wss://: secure WebSockets are not served directly; serve ws:// behind a TLS proxy; "
        "available: livelink://, vmc://, vrchat://, ws://")
    assert not (tmp_path / "take.jsonl").exists()
