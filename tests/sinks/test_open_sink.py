"""`open_sink(url)`: schemes, defaults, options in the query, and one clear error for anything else."""

from __future__ import annotations

from fractions import Fraction

import pytest

from facewire import sinks
from facewire.errors import InputError
from facewire.sinks import (
    PROTOCOLS,
    LiveLinkSink,
    VmcSink,
    VrchatSink,
    open_receiver,
    open_sink,
)


def test_public_surface() -> None:
    for name in sinks.__all__:
        assert hasattr(sinks, name), name
    assert sorted(PROTOCOLS) == ["livelink", "vmc", "vrchat", "ws"]
    with pytest.raises(TypeError):
        PROTOCOLS["x"] = PROTOCOLS["vmc"]  # read-only, not a registry to mutate at import


@pytest.mark.parametrize(
    "url, cls, host, port",
    [
        ("vmc://127.0.0.1:39540", VmcSink, "127.0.0.1", 39540),
        ("vmc://localhost", VmcSink, "localhost", 39539),
        ("VRChat://10.0.0.2", VrchatSink, "10.0.0.2", 9000),
        ("livelink://192.168.1.20", LiveLinkSink, "192.168.1.20", 11111),
        ("livelink://[::1]:11112", LiveLinkSink, "::1", 11112),
        ("livelink://:12000", LiveLinkSink, "127.0.0.1", 12000),
    ],
)
def test_schemes_and_defaults(url: str, cls, host: str, port: int) -> None:
    sink = open_sink(url)
    assert type(sink) is cls and (sink.host, sink.port) == (host, port)


def test_options_in_the_query() -> None:
    ll = open_sink("livelink://h?subject=iPhone&fps=30000/1001&device_id=DEV&max_rate_hz=60")
    assert (ll.subject_name, ll.device_id, ll.fps, ll.max_rate_hz) == ("iPhone", "DEV", Fraction(30000, 1001), 60.0)
    vmc = open_sink("vmc://h?names=vrm&eye_bones=0")
    assert vmc.names == ("vrm",) and vmc.eye_bones is False
    vrc = open_sink("vrchat://h?prefix=Nest/v2/&bundle=1&epsilon=0.01&resend_s=2")
    assert (vrc.prefix, vrc.bundle, vrc.epsilon, vrc.resend_s) == ("Nest/v2/", True, 0.01, 2.0)


@pytest.mark.parametrize(
    "url, message",
    [
        ("wss://localhost:8765", ("wss://: secure WebSockets are not served directly; serve ws:// behind a TLS proxy; "
                                  "available: livelink://, vmc://, vrchat://, ws://")),
        ("http://example.com", "unknown sink scheme 'http'; expected one of livelink://, vmc://, vrchat://, ws://"),
        ("127.0.0.1:9000", ("sink URL: expected scheme://host:port (one of livelink://, vmc://, vrchat://, ws://), "
                            "got '127.0.0.1:9000'")),
        ("vmc://h:99999", "vmc://h:99999: expected a port number in 1..65535"),
        ("vmc://h:0", "vmc port: expected an integer in 1..65535, got 0"),
        ("vmc://h/path", "vmc://h/path: expected vmc://host:port with optional ?options, nothing else"),
        ("vmc://h?bogus=1", "vmc://h?bogus=1: unknown option 'bogus' for vmc://; expected one of eye_bones, face, max_rate_hz, names, neck_share"),
        ("vrchat://h?epsilon=x", "vrchat://h?epsilon=x: option epsilon='x' is not valid"),
        ("livelink://h?fps=abc", "livelink fps: expected a number such as 60 or 30000/1001, got 'abc'"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        open_sink(url)
    assert str(info.value) == message


def test_open_receiver_defaults() -> None:
    assert open_receiver("livelink").port == 11111
    assert open_receiver("vmc").port == 39539
    assert open_receiver("vrchat", port=0).port == 0
