"""The WebSocket sink over real sockets on 127.0.0.1: frames arrive equal, a slow client loses frames
while a fast one gets them all, a client that breaks the rules is closed alone, and ``send`` never waits."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from facewire import arkit
from facewire.errors import InputError, OutputError
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.sinks import (
    PROTOCOLS,
    WebSocketReceiver,
    WebSocketSink,
    open_receiver,
    open_sink,
)
from facewire.sinks.websocket import SCHEMA, decode_message, encode_frame

SEND_NEVER_WAITS_S = 0.25  # generous: a blocking send would stall for seconds, not milliseconds


def make_frames(n: int, seed: int = 0) -> list[FaceFrame]:
    rng = np.random.default_rng(seed)
    weights = rng.random((n, arkit.COUNT), dtype=np.float32)
    angles = rng.uniform(-30, 30, size=(n, 7))
    return [FaceFrame(t_ns=round(i * 1e9 / 60), seq=i, source="test", weights=weights[i], head=HeadPose(*angles[i, :3]),
                      gaze=Gaze(*angles[i, 3:]), capture_ns=1_000_000 + i) for i in range(n)]


def same(a: FaceFrame, b: FaceFrame) -> bool:
    return a.to_json_dict() == b.to_json_dict()


def url(sink: WebSocketSink) -> str:
    return f"ws://127.0.0.1:{sink.address[1]}{sink.path}"


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


# -- URLs and schema ------------------------------------------------------------------------------
def test_ws_urls() -> None:
    assert PROTOCOLS["ws"].sink is WebSocketSink and PROTOCOLS["ws"].receiver is WebSocketReceiver
    sink = open_sink("ws://0.0.0.0:9001/face?queue_size=1&landmarks=yes&max_clients=3")
    assert (sink.host, sink.port, sink.path, sink.queue_size, sink.landmarks, sink.max_clients) == \
        ("0.0.0.0", 9001, "/face", 1, True, 3)
    default = open_sink("ws://localhost")
    assert (default.port, default.path) == (8765, "/")
    assert open_receiver("ws", port=9002).port == 9002
    for bad, message in [
        ("wss://h", ("wss://: secure WebSockets are not served directly; serve ws:// behind a TLS proxy; available: "
                     "livelink://, vmc://, vrchat://, ws://")),
        ("ws://h?queue_size=3", "ws queue_size: expected 1 or 2, got 3"),
        ("ws://h?landmarks=maybe", "ws://h?landmarks=maybe: option landmarks='maybe' is not valid"),
        ("ws://h#top", "ws://h#top: expected ws://host:port/path with optional ?options, nothing else"),
    ]:
        with pytest.raises(InputError) as info:
            open_sink(bad)
        assert str(info.value) == message


def test_messages_follow_the_schema() -> None:
    frame = make_frames(1)[0].replace(landmarks=np.zeros((478, 3)), extras={"llf.LeftEyeRoll": 0.1})
    message = json.loads(encode_frame(frame))
    frame_schema = next(s for s in SCHEMA["oneOf"] if s["properties"]["type"]["const"] == "frame")
    assert message["v"] == 1 and message["type"] == "frame"
    assert set(frame_schema["required"]) <= set(message) <= set(frame_schema["properties"])
    assert "landmarks" not in message and "landmarks" in json.loads(encode_frame(frame, landmarks=True))
    assert same(decode_message(encode_frame(frame, landmarks=True)), frame)
    assert same(decode_message(encode_frame(frame)), frame.replace(landmarks=None))
    for bad, error in [("[]", "ws message: expected an object, got list"),
                       ('{"v":2,"type":"frame"}', "ws message: expected schema version 1, got 2"),
                       ('{"v":1,"type":"bye"}', "ws message: expected type frame, hello or pong, got 'bye'"),
                       ('{"v":1,"type":"frame","t_ns":0}', "frame JSON: missing field 'weights'")]:
        with pytest.raises(InputError) as info:
            decode_message(bad)
        assert str(info.value) == error


# -- streaming ------------------------------------------------------------------------------------
def test_frames_arrive_equal_to_every_client() -> None:
    sent = make_frames(200)
    sent[5] = FaceFrame.untracked(sent[5].t_ns, seq=5, source="test")
    sent[6] = sent[6].replace(extras={"unclipped.jawOpen": 1.05}, landmarks=np.ones((478, 3)))
    with WebSocketSink("127.0.0.1", 0, path="/face", landmarks=True) as sink:
        with WebSocketReceiver("127.0.0.1", sink.address[1], path="/face", timeout_s=5) as a, \
                WebSocketReceiver("127.0.0.1", sink.address[1], path="/face", timeout_s=5) as b:
            assert a.hello == {"v": 1, "type": "hello", "server": a.hello["server"], "names": list(arkit.NAMES),
                               "landmarks": True}
            got: dict[str, list[FaceFrame]] = {"a": [], "b": []}
            readers = [threading.Thread(target=lambda r=r, k=k: got[k].extend(r.frames(count=len(sent))))
                       for k, r in (("a", a), ("b", b))]
            for t in readers:
                t.start()
            for frame in sent:
                sink.send(frame)
                assert sink.flush(10.0)
            for t in readers:
                t.join(30)
        stats = sink.statistics()
    for frames in got.values():
        assert len(frames) == len(sent)
        assert all(same(g, s) for g, s in zip(frames, sent))
    assert (stats.frames_in, stats.frames_sent, stats.frames_dropped, stats.messages_dropped) == (200, 200, 0, 0)
    assert stats.messages_sent == 400 and stats.clients_total == 2


def test_a_slow_client_loses_frames_and_a_fast_one_gets_all() -> None:
    n = 600
    sent = make_frames(n, seed=1)
    with WebSocketSink("127.0.0.1", 0, queue_size=2) as sink:
        # The slow client never reads: a tiny receive buffer and no read-ahead fill up quickly.
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", sink.address[1]))
        slow_port = raw.getsockname()[1]
        with connect(url(sink), sock=raw, compression=None, max_queue=1, max_size=None, proxy=None) as slow, \
                WebSocketReceiver("127.0.0.1", sink.address[1], timeout_s=10) as fast:
            assert wait_for(lambda: sink.statistics().clients == 2)
            fast_got: list[FaceFrame] = []
            arrived = threading.Condition()

            def read_fast() -> None:
                for frame in fast.frames(count=n):
                    with arrived:
                        fast_got.append(frame)
                        arrived.notify_all()

            reader = threading.Thread(target=read_fast, daemon=True)
            reader.start()
            slowest_send_s = 0.0
            for i, frame in enumerate(sent):
                t0 = time.perf_counter()
                sink.send(frame)
                slowest_send_s = max(slowest_send_s, time.perf_counter() - t0)
                with arrived:  # the producer keeps pace with the fast client, not the slow one
                    assert arrived.wait_for(lambda i=i: len(fast_got) > i, 10.0), f"fast client stuck at {i}"
            reader.join(10)
            clients = {c.address[1]: c for c in sink.clients()}
            assert clients[slow_port].messages_dropped > 0
            # the server counts a message once its write completes, which may be just after it arrived
            def fast_counts():
                fast = next(c for p, c in {c.address[1]: c for c in sink.clients()}.items() if p != slow_port)
                return fast.messages_sent, fast.messages_dropped

            assert wait_for(lambda: fast_counts() == (n, 0)), fast_counts()
            # Now the slow client reads: it gets what was not dropped, in order.
            slow_got = []
            with pytest.raises((TimeoutError, ConnectionClosed)):
                while True:
                    message = decode_message(slow.recv(timeout=2.0))
                    if isinstance(message, FaceFrame):
                        slow_got.append(message)
            slow_stats = {c.address[1]: c for c in sink.clients()}[slow_port]
    assert [f.seq for f in fast_got] == list(range(n)) and all(same(g, s) for g, s in zip(fast_got, sent))
    assert slowest_send_s < SEND_NEVER_WAITS_S
    seqs = [f.seq for f in slow_got]
    assert seqs == sorted(seqs) and len(seqs) < n
    assert slow_stats.messages_sent == len(slow_got) and slow_stats.messages_sent + slow_stats.messages_dropped == n
    stats = sink.statistics()
    assert stats.messages_dropped == slow_stats.messages_dropped and stats.frames_dropped == 0


def test_send_never_waits_without_clients_and_counts_what_it_drops() -> None:
    with WebSocketSink("127.0.0.1", 0, queue_size=1) as sink:
        t0 = time.perf_counter()
        for frame in make_frames(5000):
            sink.send(frame)
        elapsed = time.perf_counter() - t0
        assert sink.flush(10.0)
        stats = sink.statistics()
    assert elapsed < 5000 * SEND_NEVER_WAITS_S / 100  # well under a millisecond a frame
    assert stats.frames_in == 5000 and stats.frames_sent + stats.frames_dropped == 5000 and stats.queued == 0
    with pytest.raises(OutputError, match="sink is not open"):
        sink.send(make_frames(1)[0])


# -- clients that break the rules -------------------------------------------------------------------
def test_bad_client_messages_close_that_client_only() -> None:
    with WebSocketSink("127.0.0.1", 0, max_message_bytes=1024, max_client_messages_per_s=20) as sink:
        with WebSocketReceiver("127.0.0.1", sink.address[1], timeout_s=5) as good, contextlib.ExitStack() as stack:
            abusers = {kind: stack.enter_context(connect(url(sink), compression=None, proxy=None)) for kind in
                       ("binary", "garbage", "unknown", "oversized", "flood")}
            for conn in abusers.values():
                assert json.loads(conn.recv(timeout=5))["type"] == "hello"
            good.ping("p1")
            assert next(good.messages(timeout_s=5)) == {"v": 1, "type": "pong", "id": "p1"}
            abusers["binary"].send(b"\x00\x01")
            abusers["garbage"].send("{not json")
            abusers["unknown"].send('{"v":1,"type":"subscribe"}')
            abusers["oversized"].send('{"type":"ping","id":"' + "x" * 2000 + '"}')
            for _ in range(60):
                try:
                    abusers["flood"].send('{"type":"ping"}')
                except ConnectionClosed:  # the server may cut the flood off before it ends
                    break
            codes = {}
            for kind, conn in abusers.items():
                with pytest.raises((ConnectionClosed, ConnectionResetError)) as info:
                    while True:
                        conn.recv(timeout=5)
                close = getattr(info.value, "rcvd", None)
                if close is None:
                    # The client was still sending when the server closed it, so a TCP reset overtook
                    # the close frame: the server's own record says why it closed that client.
                    port = conn.local_address[1]
                    assert wait_for(lambda port=port: port in sink.closed_reasons), (kind, info.value)
                    why = sink.closed_reasons[port]
                    codes[kind] = (1009, "too big") if why.startswith("message over") else (1008, why)
                else:
                    too_big = close.code == 1009 and "1024 bytes" in close.reason
                    codes[kind] = (close.code, "too big" if too_big else close.reason)
            assert wait_for(lambda: sink.statistics().clients == 1)
            for frame in make_frames(20):
                sink.send(frame)
                assert sink.flush(10.0)
            got = list(good.frames(count=20, timeout_s=5))
        stats = sink.statistics()
    assert codes == {
        "binary": (1008, "binary messages are not accepted"),
        "garbage": (1008, "not valid JSON"),
        "unknown": (1008, 'expected nothing or {"v":1,"type":"ping"}'),
        "oversized": (1009, "too big"),  # websockets' own words, naming the limit
        "flood": (1008, "more than 20 messages a second"),
    }
    assert [f.seq for f in got] == list(range(20))
    assert (stats.clients_closed, stats.clients_total) == (5, 6), stats


def test_wrong_path_busy_server_and_taken_port() -> None:
    with WebSocketSink("127.0.0.1", 0, path="/face", max_clients=1) as sink:
        with pytest.raises(InvalidStatus, match="404"), connect(f"ws://127.0.0.1:{sink.address[1]}/other", proxy=None):
            pass
        with (
            WebSocketReceiver("127.0.0.1", sink.address[1], path="/face"),
            pytest.raises(InvalidStatus, match="503"),
            connect(url(sink), proxy=None),
        ):
            pass
        with (
            pytest.raises(OutputError, match=rf"ws://127\.0\.0\.1:{sink.address[1]}/: cannot serve"),
            WebSocketSink("127.0.0.1", sink.address[1]),
        ):
            pass
    with (
        pytest.raises(InputError, match="cannot connect to ws://127.0.0.1"),
        WebSocketReceiver("127.0.0.1", sink.address[1], timeout_s=2),
    ):
        pass
