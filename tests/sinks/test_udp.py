"""The shared UDP sender and receiver: a slow or absent receiver never stalls the sender, drops
are counted, pacing holds, and a receiver survives floods of garbage."""

from __future__ import annotations

import random
import socket
import threading
import time

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError, OutputError
from facewire.frame import FaceFrame
from facewire.sinks import (
    LiveLinkReceiver,
    LiveLinkSink,
    VmcReceiver,
    VmcSink,
    open_receiver,
)
from facewire.sinks.osc import OscMessage
from facewire.sinks.udp import UdpSender

FRAME = FaceFrame(t_ns=0, weights=np.full(arkit.COUNT, 0.5, np.float32))


def closed_port() -> int:
    """A port nobody listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_sends(sink, n: int) -> np.ndarray:
    durations = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        sink.send(FRAME.replace(t_ns=i * 16_666_667, seq=i))
        durations[i] = time.perf_counter() - t0
    return durations


def assert_never_stalled(durations: np.ndarray) -> None:
    assert durations.sum() < 2.0, durations.sum()
    assert np.percentile(durations, 99) < 0.002, np.percentile(durations, 99)
    assert durations.max() < 0.1, durations.max()


@pytest.mark.parametrize("sink_cls", [LiveLinkSink, VmcSink])
def test_absent_receiver_never_stalls_the_sender(sink_cls) -> None:
    with sink_cls("127.0.0.1", closed_port()) as sink:
        durations = timed_sends(sink, 10_000)
        time.sleep(0.1)  # let the sender thread try a few frames into the void
    assert_never_stalled(durations)
    stats = sink.statistics()
    assert stats.frames_in == 10_000 and stats.queued == 0
    assert stats.frames_sent + stats.frames_dropped == 10_000
    assert stats.frames_dropped > 9_000  # 120 Hz pacing: nearly every frame gives way to a newer one
    assert stats.packets_sent + stats.packets_dropped == stats.frames_sent
    assert stats.dropped == stats.frames_dropped + stats.packets_dropped
    assert stats.last_error == ""  # refused datagrams are drops, not errors


def test_slow_receiver_never_stalls_the_sender() -> None:
    """A receiver that never reads, with a tiny buffer: the kernel drops, the sender goes on."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as deaf:
        deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        deaf.bind(("127.0.0.1", 0))
        with VmcSink("127.0.0.1", deaf.getsockname()[1], max_rate_hz=None) as sink:
            durations = timed_sends(sink, 10_000)
    assert_never_stalled(durations)
    stats = sink.statistics()
    assert stats.frames_in == 10_000 and stats.frames_sent + stats.frames_dropped == 10_000
    assert stats.frames_sent >= 1  # the sender thread sent what it could; the kernel dropped the rest


def test_pacing_bounds_the_rate() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        with LiveLinkSink("127.0.0.1", sock.getsockname()[1], max_rate_hz=50) as sink:
            start = time.perf_counter()
            while time.perf_counter() - start < 1.0:
                sink.send(FRAME)
                time.sleep(0.001)
            sent = sink.statistics().frames_sent
    assert 45 <= sent <= 55, sent  # 50 per second, plus the bucket's burst of 2


def test_close_sends_what_is_queued_and_flush_waits() -> None:
    with LiveLinkReceiver("127.0.0.1", 0) as receiver:
        port = receiver.address[1]
        with LiveLinkSink("127.0.0.1", port, max_rate_hz=10, queue_size=2) as sink:
            start = time.perf_counter()
            for i in range(3):  # the burst takes two tokens; the third frame waits for pacing
                sink.send(FRAME.replace(seq=i, t_ns=i))
                assert sink.flush(2.0)
            assert sink.statistics().frames_sent == 3
            assert time.perf_counter() - start > 0.05
            sink.send(FRAME)
        assert sink.statistics().frames_sent == 4  # __exit__ drained the queue
        assert len(list(receiver.frames(timeout_s=0.2))) == 4
    with pytest.raises(OutputError) as info:
        sink.send(FRAME)
    assert str(info.value) == f"livelink://127.0.0.1:{port}: sink is not open (use it in a with block)"


def test_queue_of_one_drops_the_oldest() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sink = LiveLinkSink("127.0.0.1", sock.getsockname()[1], max_rate_hz=1, queue_size=1)
        with sink:
            for i in range(2):  # the bucket starts with two tokens: both go at once
                sink.send(FRAME.replace(seq=i))
                assert sink.flush(1.0)
            for i in range(2, 6):
                sink.send(FRAME.replace(seq=i))
            stats = sink.statistics()
            assert stats.queued == 1 and stats.frames_dropped == 3


def test_a_frame_that_cannot_be_encoded_is_counted_not_fatal() -> None:
    class Flaky(UdpSender):
        protocol = "flaky"

        def encode(self, frame):
            if frame.seq % 2:
                raise ValueError("odd frame")
            return [b"ok"]

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        with Flaky("127.0.0.1", sock.getsockname()[1], max_rate_hz=None) as sink:
            for i in range(10):
                sink.send(FRAME.replace(seq=i))
                sink.flush(1.0)
    stats = sink.statistics()
    assert (stats.frames_sent, stats.frames_failed) == (5, 5)
    assert stats.last_error == "encode: ValueError: odd frame"


def test_only_the_chosen_face_is_sent() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        with LiveLinkSink("127.0.0.1", sock.getsockname()[1], face=1) as sink:
            sink.send(FRAME)
            sink.send(FRAME.replace(face=1))
    assert sink.statistics().frames_in == 1


def test_unresolvable_host_is_an_output_error() -> None:
    with pytest.raises(OutputError) as info, LiveLinkSink("no-such-host.invalid", 11111):
        pass
    assert str(info.value).startswith("livelink://no-such-host.invalid:11111: cannot open a UDP socket (")


# -- receivers ------------------------------------------------------------------------------------
def test_receiver_counts_bad_packets_and_goes_on() -> None:
    with LiveLinkReceiver("127.0.0.1", 0, timeout_s=0.2) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        to = receiver.address
        tx.sendto(b"\x06garbage", to)
        tx.sendto(b"", to)
        tx.sendto(LiveLinkSink(subject_name="s", device_id="d").encode(FRAME)[0], to)
        frames = list(receiver.frames(timeout_s=0.2))
        stats = receiver.statistics()
    assert len(frames) == 1 and frames[0].source == "livelink:s"
    assert (stats.packets, stats.bad_packets, stats.frames, stats.unexpected) == (3, 2, 1, 0)
    assert stats.last_error == "Live Link packet: truncated at byte 0: version needs 1 byte, 0 remain"


def test_receiver_rejects_oversized_datagrams() -> None:
    with VmcReceiver("127.0.0.1", 0, max_datagram=64) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(bytes(OscMessage("/VMC/Ext/Blend/Val", ("x" * 100, 1.0))), receiver.address)
        assert list(receiver.frames(timeout_s=0.2)) == []
        assert receiver.statistics().last_error == "vmc datagram: oversized: more than 64 bytes"


def test_receiver_stops_at_count_and_on_timeout() -> None:
    with LiveLinkReceiver("127.0.0.1", 0) as receiver:
        start = time.perf_counter()
        assert list(receiver.frames(timeout_s=0.1)) == []
        assert 0.09 < time.perf_counter() - start < 1.0
        with LiveLinkSink("127.0.0.1", receiver.address[1], max_rate_hz=None) as sink:
            for i in range(5):
                sink.send(FRAME.replace(t_ns=i * 1_000_000_000 // 60))
                sink.flush(1.0)
        assert len(list(receiver.frames(count=3))) == 3
        assert len(list(receiver.frames(timeout_s=0.1))) == 2


@pytest.mark.parametrize("make, message", [
    (lambda: open_receiver("livelink", port=-1), "livelink port: expected an integer in 0..65535, got -1"),
    (lambda: open_receiver("vmc", timeout_s=0), "vmc timeout_s: expected a positive number or None, got 0"),
    (lambda: open_receiver("ftp"), "unknown sink scheme 'ftp'; expected one of livelink://, vmc://, vrchat://, ws://"),
])
def test_receiver_arguments(make, message: str) -> None:
    with pytest.raises(InputError) as info:
        make()
    assert str(info.value) == message


def test_port_in_use_is_a_clear_error() -> None:
    with LiveLinkReceiver("127.0.0.1", 0) as first:
        port = first.address[1]
        with pytest.raises(InputError) as info, LiveLinkReceiver("127.0.0.1", port):
            pass
    assert str(info.value) == f"cannot listen on 127.0.0.1:{port} (Address already in use)"


def garbage_pool(valid: bytes, n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pool = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            pool.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 400))))
        elif kind == 1:
            pool.append(valid[: rng.randrange(len(valid))])
        elif kind == 2:
            data = bytearray(valid)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            pool.append(bytes(data))
        else:
            pool.append(valid + bytes(rng.randrange(1, 64)))
    return pool


@pytest.mark.parametrize("protocol", ["livelink", "vmc"])
def test_flood_of_100k_packets(protocol: str) -> None:
    """100,000 datagrams, one in ten valid: the receiver counts what it could not decode, never
    raises, and still decodes a good packet afterwards."""
    sink = LiveLinkSink(subject_name="s", device_id="d") if protocol == "livelink" else VmcSink(names="vrm")
    valid = sink.encode(FRAME)[0]
    pool = garbage_pool(valid, 997, seed=1)
    # The exact datagrams, in order. VMC decoding is stateful (values accumulate until Apply), so
    # which datagrams make a frame is judged by a socket-less receiver fed the same sequence.
    flood = [valid if i % 10 == 0 else pool[i % len(pool)] for i in range(100_000)]
    judge = open_receiver(protocol, port=0)
    judged_frames = sum(bool(judge.process(p)) for p in flood)
    with open_receiver(protocol, "127.0.0.1", 0, timeout_s=1.0) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        got: list[FaceFrame] = []
        thread = threading.Thread(target=lambda: got.extend(receiver.frames(timeout_s=1.0)), daemon=True)
        thread.start()
        to = receiver.address
        for data in flood:
            try:
                tx.sendto(data, to)
            except OSError:  # a full send buffer: that datagram is simply not sent
                pass
        thread.join(60)
        assert not thread.is_alive()
        stats = receiver.statistics()
        # after the flood the receiver still works
        tx.sendto(valid, to)
        after = list(receiver.frames(count=1, timeout_s=2.0))
    judged = judge.statistics()
    assert stats.unexpected == 0, stats.last_error
    assert judged.unexpected == 0 and judged.bad_packets > 50_000
    assert stats.packets > 10_000  # the kernel may drop some of the flood, not most of it
    assert 1000 < stats.bad_packets <= judged.bad_packets
    if stats.packets == len(flood):  # nothing was dropped: the live receiver must agree exactly
        assert (stats.bad_packets, stats.frames) == (judged.bad_packets, judged_frames)
    else:
        assert 0 < stats.frames <= judged_frames + 100
    assert len(got) == stats.frames
    assert len(after) == 1
