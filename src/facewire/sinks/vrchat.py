"""VRChat OSC with VRCFaceTracking's Unified Expressions v2 avatar parameters (default ``127.0.0.1:9000``).

Each parameter is one OSC message ``/avatar/parameters/<prefix><Name> f value``, e.g.
``/avatar/parameters/FT/v2/JawOpen f 0.42``; VRCFaceTracking avatars find their parameters by the
``v2/<Name>`` suffix, so any prefix ending in ``v2/`` works (``FT/v2/`` is the common one). The
values come from `facewire.retarget.unified_expressions`: base shapes, simple shapes and combined
parameters (``JawX``, ``EyeLidLeft``, ``MouthX``, ``EyeLeftX`` …) in their documented ranges
(0…1, or −1…1 for differences and gaze).

To spare VRChat (and the network) the sink sends a parameter only when it changed by more than
``epsilon`` since it was last sent, plus everything every ``resend_s`` seconds so that an avatar
loaded later catches up, and at most ``max_rate_hz`` frames a second (60 by default). A frame
without a face sends nothing, so the avatar keeps its last expression. Messages go one per datagram
(what VRCFaceTracking sends); ``bundle=True`` packs a frame's messages into one OSC bundle instead.
"""

from __future__ import annotations

import math
import struct
import time
from typing import Iterable, Sequence

from ..errors import InputError
from ..frame import FaceFrame
from ..retarget import UNIFIED_NAMES, arkit_from_unified, unified_expressions
from .osc import OscBundle, bundle_bytes, osc_string, parse_packet
from .udp import UdpReceiver, UdpSender

__all__ = ["VrchatSink", "VrchatReceiver", "DEFAULT_PORT", "DEFAULT_PREFIX", "PARAMETERS_ROOT"]

DEFAULT_PORT = 9000
DEFAULT_PREFIX = "FT/v2/"
PARAMETERS_ROOT = "/avatar/parameters/"
_F32 = struct.Struct(">f")
_FLOAT_TAG = osc_string(",f")


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or "\0" in prefix or prefix.startswith("/") or " " in prefix:
        raise InputError(f"vrchat prefix: expected a parameter path such as 'FT/v2/', got {prefix!r}")
    return prefix


def _flag(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


class VrchatSink(UdpSender):
    """Sends Unified Expressions v2 parameters to VRChat; see the module docstring.

    ``parameters`` limits what is sent (names without prefix, e.g. ``["JawOpen", "EyeLidLeft"]``;
    default: every name in `facewire.retarget.UNIFIED_NAMES`). ``resend_s=None`` never resends
    unchanged values.
    """

    default_port = DEFAULT_PORT
    protocol = "vrchat"
    URL_OPTIONS = {"prefix": str, "epsilon": float, "resend_s": float, "bundle": _flag, "max_rate_hz": float,
                   "face": int}

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, prefix: str = DEFAULT_PREFIX,
                 parameters: Iterable[str] | None = None, epsilon: float = 1e-3, resend_s: float | None = 5.0,
                 bundle: bool = False, max_rate_hz: float | None = 60.0, **kwargs) -> None:
        super().__init__(host, port, max_rate_hz=max_rate_hz, **kwargs)
        self.prefix = _check_prefix(prefix)
        names = UNIFIED_NAMES if parameters is None else tuple(parameters)
        unknown = sorted(set(names) - set(UNIFIED_NAMES))
        if unknown:
            raise InputError(f"vrchat parameters: unknown Unified Expressions name(s) {', '.join(unknown)}")
        if not (isinstance(epsilon, (int, float)) and epsilon >= 0):
            raise InputError(f"vrchat epsilon: expected a number >= 0, got {epsilon!r}")
        if resend_s is not None and not resend_s > 0:
            raise InputError(f"vrchat resend_s: expected a positive number or None, got {resend_s!r}")
        self.parameters, self.epsilon, self.resend_s, self.bundle = names, float(epsilon), resend_s, bool(bundle)
        self._head = {n: osc_string(PARAMETERS_ROOT + self.prefix + n) + _FLOAT_TAG for n in names}
        self._last: dict[str, float] = {}
        self._last_full = -math.inf

    def address(self, name: str) -> str:
        """The OSC address of parameter ``name``."""
        return PARAMETERS_ROOT + self.prefix + name

    def changed(self, frame: FaceFrame) -> dict[str, float]:
        """The parameters this frame sends (as float32 values), remembering them as sent."""
        if not frame.tracked:
            return {}
        values = unified_expressions(frame.weights, frame.gaze)
        now = time.monotonic()
        everything = self.resend_s is not None and now - self._last_full >= self.resend_s
        if everything:
            self._last_full = now
        out = {}
        last, eps = self._last, self.epsilon
        for name in self.parameters:
            value = _F32.unpack(_F32.pack(values[name]))[0]
            previous = last.get(name)
            if everything or previous is None or abs(value - previous) > eps:
                out[name] = last[name] = value
        return out

    def encode(self, frame: FaceFrame) -> Sequence[bytes]:
        messages = [self._head[n] + _F32.pack(v) for n, v in self.changed(frame).items()]
        if self.bundle and messages:
            return [bundle_bytes(messages)]
        return messages


class VrchatReceiver(UdpReceiver):
    """Listens like VRChat does (default port 9000) and turns Unified Expressions parameters back
    into frames with `facewire.retarget.arkit_from_unified`.

    ``parameters`` holds the latest value of every ``/avatar/parameters/<prefix>`` parameter seen
    (name without prefix; ints and bools as floats). A frame is the state after a burst: at the end
    of each bundle, or once no datagram came for ``idle_flush_s`` (5 ms) after single messages.
    Its ``t_ns`` is the arrival time on the monotonic clock (VRChat OSC carries no time).
    """

    default_port = DEFAULT_PORT
    protocol = "vrchat"
    idle_flush_s = 0.005

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, prefix: str = DEFAULT_PREFIX,
                 **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.prefix = _check_prefix(prefix)
        self._root = PARAMETERS_ROOT + self.prefix
        self.parameters: dict[str, float] = {}
        self._dirty = False

    def decode(self, data: bytes) -> list[FaceFrame]:
        packet = parse_packet(data)
        messages = packet.messages() if isinstance(packet, OscBundle) else (packet,)
        for m in messages:
            if not m.address.startswith(self._root) or len(m.args) != 1 or m.tags not in ("f", "d", "i", "T", "F"):
                continue
            value = float(m.args[0])
            if not math.isfinite(value):
                raise InputError(f"VRChat {m.address}: expected a finite value, got {value}")
            self.parameters[m.address[len(self._root):]] = value
            self._dirty = True
        if isinstance(packet, OscBundle) and self._dirty:
            return self.flush()
        return []

    def _pending(self) -> bool:
        return self._dirty

    def flush(self) -> list[FaceFrame]:
        if not self._dirty:
            return []
        self._dirty = False
        weights, gaze = arkit_from_unified(self.parameters)
        return [FaceFrame(t_ns=time.monotonic_ns(), seq=self.next_seq(), source="vrchat", weights=weights, gaze=gaze)]
