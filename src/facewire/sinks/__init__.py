"""Live sinks: one module per protocol, each a sink that never blocks the pipeline and a receiver.

| scheme        | module     | sends                                              | default port |
| ------------- | ---------- | -------------------------------------------------- | ------------ |
| ``vmc://``      | `vmc`      | VMC protocol (OSC): Perfect Sync + VRM presets, head | 39539        |
| ``vrchat://``   | `vrchat`   | VRChat OSC, VRCFaceTracking Unified Expressions v2  | 9000         |
| ``livelink://`` | `livelink` | Live Link Face UDP packets, version 6              | 11111        |

`open_sink` makes a sink from a URL such as ``vmc://127.0.0.1:39539`` or
``livelink://192.168.1.20?subject=iPhone&fps=30``: host and port (defaults above), and constructor
options as query parameters (each sink class lists its ``URL_OPTIONS``). `open_receiver` makes the
matching receiver. Adding a protocol is one module plus one line in ``_PROTOCOLS``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from ..errors import InputError
from .livelink import LiveLinkReceiver, LiveLinkSink
from .udp import ReceiverStats, SenderStats, UdpReceiver, UdpSender
from .vmc import VmcReceiver, VmcSink
from .vrchat import VrchatReceiver, VrchatSink

__all__ = [
    "Protocol",
    "PROTOCOLS",
    "open_sink",
    "open_receiver",
    "LiveLinkSink",
    "LiveLinkReceiver",
    "VmcSink",
    "VmcReceiver",
    "VrchatSink",
    "VrchatReceiver",
    "SenderStats",
    "ReceiverStats",
]


class Protocol(NamedTuple):
    """One live protocol: its URL scheme, the sink class and the receiver class."""

    scheme: str
    sink: type[UdpSender]
    receiver: type[UdpReceiver]


_PROTOCOLS = (
    Protocol("vmc", VmcSink, VmcReceiver),
    Protocol("vrchat", VrchatSink, VrchatReceiver),
    Protocol("livelink", LiveLinkSink, LiveLinkReceiver),
)

PROTOCOLS: Mapping[str, Protocol] = MappingProxyType({p.scheme: p for p in _PROTOCOLS})
"""URL scheme → protocol."""

_NOT_YET: Mapping[str, str] = MappingProxyType({
    "ws": "the WebSocket sink is not implemented yet",
    "wss": "the WebSocket sink is not implemented yet",
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


def open_sink(url: str) -> UdpSender:
    """A sink (use it in a ``with`` block) for ``scheme://host:port?option=value``."""
    if not isinstance(url, str) or "://" not in url:
        raise InputError(f"sink URL: expected scheme://host:port (one of {_schemes()}), got {url!r}")
    parts = urlsplit(url)
    proto = protocol_for(parts.scheme or url.split("://", 1)[0])
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"{url}: expected a port number in 1..65535") from None
    if parts.path not in ("", "/") or parts.fragment or parts.username or parts.password:
        raise InputError(f"{url}: expected {proto.scheme}://host:port with optional ?options, nothing else")
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
    return proto.sink(parts.hostname or "127.0.0.1", port, **kwargs)


def open_receiver(scheme: str, host: str = "127.0.0.1", port: int | None = None, **kwargs) -> UdpReceiver:
    """A receiver (use it in a ``with`` block) for protocol ``scheme`` on ``host:port`` (port None:
    the protocol's default; 0: any free port)."""
    return protocol_for(scheme).receiver(host, port, **kwargs)
