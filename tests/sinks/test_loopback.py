"""Live over loopback: every sink into its own receiver over real UDP sockets on 127.0.0.1.

The issue asks for 10,000 frames at 60 fps with zero frames lost at 120 Hz pacing. Played in real
time that is 167 s per protocol, so it is split in two tests:

* ``test_10k_frames_lossless``: 10,000 frames with 60 fps time stamps, the producer going exactly
  as fast as the sink sends (`UdpSender.flush` after each frame) with the sink paced at a high rate
  (2,000 Hz for Live Link, 1,500 Hz for VMC, about 5–7 s each): nothing is lost between a sink and
  its receiver, and every value comes back equal within float32 precision. The WebSocket stream
  (JSON, lossless) does the same over a real connection and must give the frames back exactly.
* ``test_real_time_60fps_at_120hz``: 2 s of frames produced in real time at 60 fps into a sink
  paced at 120 Hz, the shipped default: zero frames dropped in the queue, zero lost on the wire.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from facewire import arkit
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.sinks import (
    LiveLinkReceiver,
    LiveLinkSink,
    VmcReceiver,
    VmcSink,
    WebSocketReceiver,
    WebSocketSink,
)

PROTOCOLS = {
    "livelink": (LiveLinkSink, LiveLinkReceiver, 2000.0),
    "vmc": (VmcSink, VmcReceiver, 1500.0),
}


def make_frames(n: int, seed: int = 0) -> list[FaceFrame]:
    rng = np.random.default_rng(seed)
    weights = rng.random((n, arkit.COUNT), dtype=np.float32)
    weights[:, 0] = 0.0  # the extremes travel too
    weights[:, 1] = 1.0
    angles = rng.uniform([-70, -60, -40, -30, -25, -30, -25], [70, 60, 40, 30, 25, 30, 25], size=(n, 7))
    return [FaceFrame(t_ns=round(i * 1e9 / 60), seq=i, source="test", weights=weights[i],
                      head=HeadPose(*angles[i, :3]), gaze=Gaze(*angles[i, 3:])) for i in range(n)]


class Collector:
    """A receiver draining its socket on a thread until ``count`` frames came or it fell quiet."""

    def __init__(self, receiver, count: int) -> None:
        self.receiver, self.frames = receiver, []
        self.thread = threading.Thread(target=lambda: self.frames.extend(receiver.frames(count=count, timeout_s=3.0)),
                                       daemon=True)
        self.thread.start()

    def join(self) -> list[FaceFrame]:
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.frames


def assert_same(sent: list[FaceFrame], got: list[FaceFrame], protocol: str) -> None:
    assert len(got) == len(sent)
    np.testing.assert_array_equal(np.stack([f.weights for f in got]), np.stack([f.weights for f in sent]))
    if protocol == "livelink":  # frame number + float32 subframe at 60 fps
        assert max(abs(g.t_ns - s.t_ns) for g, s in zip(got, sent)) <= 1
    else:  # /VMC/Ext/T carries float32 seconds
        assert [g.t_ns for g in got] == [round(float(np.float32(s.t_ns / 1e9)) * 1e9) for s in sent]
    # angles go through float32 radians (Live Link) or a float32 quaternion (VMC)
    fields = (("head", "yaw_deg"), ("head", "pitch_deg"), ("head", "roll_deg"), ("gaze", "left_yaw_deg"),
              ("gaze", "left_pitch_deg"), ("gaze", "right_yaw_deg"), ("gaze", "right_pitch_deg"))
    for part, name in fields:
        a = np.array([getattr(getattr(f, part), name) for f in got])
        b = np.array([getattr(getattr(f, part), name) for f in sent])
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4, err_msg=f"{part}.{name}")
    assert all(f.tracked for f in got)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_10k_frames_lossless(protocol: str) -> None:
    sink_cls, receiver_cls, rate = PROTOCOLS[protocol]
    frames = make_frames(10_000)
    with receiver_cls("127.0.0.1", 0) as receiver:
        collector = Collector(receiver, len(frames))
        with sink_cls("127.0.0.1", receiver.address[1], max_rate_hz=rate) as sink:
            for frame in frames:
                sink.send(frame)
                assert sink.flush(5.0)
        got = collector.join()
        rstats = receiver.statistics()
    stats = sink.statistics()
    assert (stats.frames_in, stats.frames_sent, stats.frames_dropped, stats.packets_dropped) == (10_000, 10_000, 0, 0)
    assert (rstats.packets, rstats.bad_packets, rstats.frames) == (10_000, 0, 10_000)
    assert_same(frames, got, protocol)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_real_time_60fps_at_120hz(protocol: str) -> None:
    sink_cls, receiver_cls, _ = PROTOCOLS[protocol]
    frames = make_frames(120, seed=1)
    with receiver_cls("127.0.0.1", 0) as receiver:
        collector = Collector(receiver, len(frames))
        with sink_cls("127.0.0.1", receiver.address[1], max_rate_hz=120.0) as sink:
            start = time.perf_counter()
            for i, frame in enumerate(frames):
                delay = start + i / 60 - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                t0 = time.perf_counter()
                sink.send(frame)
                assert time.perf_counter() - t0 < 0.05  # send() only queues
        got = collector.join()
    stats = sink.statistics()
    assert (stats.frames_sent, stats.frames_dropped, stats.packets_dropped) == (120, 0, 0)
    assert_same(frames, got, protocol)


def test_10k_frames_over_websocket_exactly() -> None:
    frames = make_frames(10_000, seed=2)
    with WebSocketSink("127.0.0.1", 0, path="/face") as sink:
        with WebSocketReceiver("127.0.0.1", sink.address[1], path="/face", timeout_s=5.0) as receiver:
            deadline = time.monotonic() + 10
            while sink.statistics().clients < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            collector = Collector(receiver, len(frames))
            for frame in frames:
                sink.send(frame)
                assert sink.flush(5.0)
            got = collector.join()
            rstats = receiver.statistics()
        stats = sink.statistics()
    assert stats.dropped == 0 and (rstats.bad_packets, rstats.frames) == (0, 10_000)
    # the JSON schema is lossless: every field, every bit
    assert [f.to_json() for f in got] == [f.to_json() for f in frames]


def test_10k_frames_over_vrchat_osc_exactly_what_the_protocol_carries() -> None:
    """VRChat OSC carries Unified Expressions parameters, not ARKit weights: with every change sent
    (epsilon 0) and one bundle per frame, each of 10,000 frames arrives, and the receiver's frame is
    exactly what the sent parameters (as float32) map back to."""
    import struct

    from facewire.retarget import arkit_from_unified, unified_expressions
    from facewire.sinks import VrchatReceiver, VrchatSink

    frames = make_frames(10_000, seed=3)
    with VrchatReceiver("127.0.0.1", 0) as receiver:
        collector = Collector(receiver, len(frames))
        with VrchatSink("127.0.0.1", receiver.address[1], max_rate_hz=2000.0, epsilon=0.0, resend_s=None,
                        bundle=True) as sink:
            for frame in frames:
                sink.send(frame)
                assert sink.flush(5.0)
        got = collector.join()
        rstats = receiver.statistics()
    stats = sink.statistics()
    assert (stats.frames_in, stats.frames_sent, stats.frames_dropped, stats.packets_dropped) == (10_000, 10_000, 0, 0)
    assert (rstats.packets, rstats.bad_packets, rstats.frames) == (10_000, 0, 10_000)
    f32 = struct.Struct(">f")
    state: dict[str, float] = {}
    for sent, back in zip(frames, got):
        state.update({k: f32.unpack(f32.pack(v))[0] for k, v in unified_expressions(sent.weights, sent.gaze).items()})
        weights, gaze = arkit_from_unified(state)
        np.testing.assert_array_equal(back.weights, weights)
        assert back.gaze == gaze
