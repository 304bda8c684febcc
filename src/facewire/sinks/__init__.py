"""Live sinks: one module per protocol, each a sink that never blocks the pipeline and a receiver.

| scheme        | module     | sends                                              | default port |
| ------------- | ---------- | -------------------------------------------------- | ------------ |
| ``vmc://``      | `vmc`      | VMC protocol (OSC): Perfect Sync + VRM presets, head | 39539        |
| ``vrchat://``   | `vrchat`   | VRChat OSC, VRCFaceTracking Unified Expressions v2  | 9000         |
| ``livelink://`` | `livelink` | Live Link Face UDP packets, version 6              | 11111        |
| ``ws://``       | `websocket` | a WebSocket server streaming versioned JSON frames | 8765         |

`open_sink` makes a sink from a URL such as ``vmc://127.0.0.1:39539`` or
``livelink://192.168.1.20?subject=iPhone&fps=30``: host and port (defaults above), and constructor
options as query parameters (each sink class lists its ``URL_OPTIONS``). A ``ws://`` URL may also
name the path it serves on (``ws://0.0.0.0:8765/face``); its host and port are where facewire
listens, not where it sends. `open_receiver` makes the matching receiver (for ``ws``, a client that
connects to such a server). Adding a protocol is one module plus one line in ``_PROTOCOLS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

from ..errors import InputError
from .livelink import LiveLinkReceiver, LiveLinkSink
from .udp import ReceiverStats, SenderStats, UdpReceiver, UdpSender
from .vmc import VmcReceiver, VmcSink
from .vrchat import VrchatReceiver, VrchatSink
from .websocket import WebSocketReceiver, WebSocketSink, WebSocketStats

__all__ = [
    "PROTOCOLS",
    "LiveLinkReceiver",
    "LiveLinkSink",
    "Protocol",
    "ReceiverStats",
    "SenderStats",
    "VmcReceiver",
    "VmcSink",
    "VrchatReceiver",
    "VrchatSink",
    "WebSocketReceiver",
    "WebSocketSink",
    "WebSocketStats",
    "open_receiver",
    "open_sink",
]


class Protocol(NamedTuple):
    """One live protocol: its URL scheme, the sink class and the receiver class."""

    scheme: str
    sink: type[UdpSender | WebSocketSink]
    receiver: type[UdpReceiver | WebSocketReceiver]


_PROTOCOLS = (
    Protocol("vmc", VmcSink, VmcReceiver),
    Protocol("vrchat", VrchatSink, VrchatReceiver),
    Protocol("livelink", LiveLinkSink, LiveLinkReceiver),
    Protocol("ws", WebSocketSink, WebSocketReceiver),
)

PROTOCOLS: Mapping[str, Protocol] = MappingProxyType({p.scheme: p for p in _PROTOCOLS})
"""URL scheme → protocol."""

_NOT_YET: Mapping[str, str] = MappingProxyType({
    "wss": "secure WebSockets are not served directly; serve ws:// behind a TLS proxy",
})


def _schemes() -> str:
    return ", ".join(f"{s}://" for s in sorted(PROTOCOLS))


def protocol_for(scheme: str) -> Protocol:
    """The protocol named ``scheme`` (case-insensitive); `InputError` listing the choices."""
    key = scheme.lower()
    if key in _NOT_YET:
        raise InputError(f"{scheme}://: {_NOT_YET[key]}; available: {_schemes()}")
    try:
        return PROTOCOLS[key]
    except KeyError:
        raise InputError(f"unknown sink scheme {scheme!r}; expected one of {_schemes()}") from None


def open_sink(url: str) -> UdpSender | WebSocketSink:
    """A sink (use it in a ``with`` block) for ``scheme://host:port?option=value``."""
    if not isinstance(url, str) or "://" not in url:
        raise InputError(f"sink URL: expected scheme://host:port (one of {_schemes()}), got {url!r}")
    parts = urlsplit(url)
    proto = protocol_for(parts.scheme or url.split("://", 1)[0])
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"{url}: expected a port number in 1..65535") from None
    with_path = getattr(proto.sink, "URL_PATH", False)
    if (parts.path not in ("", "/") and not with_path) or parts.fragment or parts.username or parts.password:
        path = "/path" if with_path else ""
        raise InputError(f"{url}: expected {proto.scheme}://host:port{path} with optional ?options, nothing else")
    options = proto.sink.URL_OPTIONS
    kwargs = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in options:
            allowed = ", ".join(sorted(options)) or "none"
            raise InputError(f"{url}: unknown option {key!r} for {proto.scheme}://; expected one of {allowed}")
        try:
            kwargs[key] = options[key](value)
        except ValueError:
            raise InputError(f"{url}: option {key}={value!r} is not valid") from None
    if with_path:
        kwargs["path"] = parts.path or "/"
    return proto.sink(parts.hostname or "127.0.0.1", port, **kwargs)


def open_receiver(scheme: str, host: str = "127.0.0.1", port: int | None = None,
                  **kwargs) -> UdpReceiver | WebSocketReceiver:
    """A receiver (use it in a ``with`` block) for protocol ``scheme`` on ``host:port`` (port None:
    the protocol's default; 0: any free port)."""
    return protocol_for(scheme).receiver(host, port, **kwargs)
