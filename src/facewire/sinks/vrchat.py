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

``native_eyes=True`` also drives VRChat's own OSC eye tracking, for avatars without face-tracking
eye parameters: ``/tracking/eye/LeftRightPitchYaw`` (4 floats: left pitch, left yaw, right pitch,
right yaw, degrees; VRChat's convention is positive = down and to the user's right, the opposite
of facewire's `Gaze`, so both signs flip) and ``/tracking/eye/EyesClosedAmount`` (0…1, one value
for both eyes: the mean of the two blinks). VRChat falls back to its own idle eyes after 10 s
without these, so they are sent with every tracked frame rather than only on change.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Iterable, Sequence
from types import MappingProxyType

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame, Gaze
from ..retarget import UNIFIED_NAMES, arkit_from_unified, unified_expressions
from .osc import OscBundle, OscMessage, bundle_bytes, osc_string, parse_packet
from .udp import UdpReceiver, UdpSender

__all__ = ["DEFAULT_PORT", "DEFAULT_PREFIX", "EYES_CLOSED", "EYE_PITCH_YAW", "PARAMETERS_ROOT", "VrchatReceiver",
           "VrchatSink"]

DEFAULT_PORT = 9000
DEFAULT_PREFIX = "FT/v2/"
PARAMETERS_ROOT = "/avatar/parameters/"
EYE_PITCH_YAW = "/tracking/eye/LeftRightPitchYaw"
EYES_CLOSED = "/tracking/eye/EyesClosedAmount"
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
    unchanged values. ``native_eyes`` adds VRChat's own eye-tracking messages (module docstring).
    """

    default_port = DEFAULT_PORT
    protocol = "vrchat"
    URL_OPTIONS = MappingProxyType({"prefix": str, "epsilon": float, "resend_s": float, "bundle": _flag,
                                    "max_rate_hz": float, "face": int, "native_eyes": _flag})

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, prefix: str = DEFAULT_PREFIX,
                 parameters: Iterable[str] | None = None, epsilon: float = 1e-3, resend_s: float | None = 5.0,
                 bundle: bool = False, max_rate_hz: float | None = 60.0, native_eyes: bool = False,
                 **kwargs) -> None:
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
        self.native_eyes = bool(native_eyes)
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
        if self.native_eyes and frame.tracked:
            messages.extend(native_eye_messages(frame))
        if self.bundle and messages:
            return [bundle_bytes(messages)]
        return messages


def native_eye_messages(frame: FaceFrame) -> list[bytes]:
    """VRChat's own eye-tracking messages for a frame (signs flipped to VRChat's convention)."""
    g = frame.gaze
    w = frame.weights
    closed = 0.5 * (float(w[arkit.INDEX["eyeBlinkLeft"]]) + float(w[arkit.INDEX["eyeBlinkRight"]]))
    return [bytes(OscMessage(EYE_PITCH_YAW, (-g.left_pitch_deg, -g.left_yaw_deg, -g.right_pitch_deg, -g.right_yaw_deg),
                             "ffff")),
            bytes(OscMessage(EYES_CLOSED, (min(1.0, max(0.0, closed)),), "f"))]


class VrchatReceiver(UdpReceiver):
    """Listens like VRChat does (default port 9000) and turns Unified Expressions parameters back
    into frames with `facewire.retarget.arkit_from_unified`.

    ``parameters`` holds the latest value of every ``/avatar/parameters/<prefix>`` parameter seen
    (name without prefix; ints and bools as floats). A frame is the state after a burst: at the end
    of each bundle, or once no datagram came for ``idle_flush_s`` (5 ms) after single messages.
    Its ``t_ns`` is the arrival time on the monotonic clock (VRChat OSC carries no time).
    VRChat's native eye messages (``/tracking/eye/LeftRightPitchYaw``, ``EyesClosedAmount``) are
    kept in ``native_eyes`` / ``eyes_closed``; the gaze comes from them when no face-tracking eye
    parameter arrived.
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
        self.native_eyes: tuple[float, float, float, float] | None = None  # VRChat's signs, degrees
        self.eyes_closed: float | None = None
        self._dirty = False

    def decode(self, data: bytes) -> list[FaceFrame]:
        packet = parse_packet(data)
        messages = packet.messages() if isinstance(packet, OscBundle) else (packet,)
        for m in messages:
            if m.address == EYE_PITCH_YAW and m.tags == "ffff":
                if not all(map(math.isfinite, m.args)):
                    raise InputError(f"VRChat {m.address}: expected four finite angles, got {m.args}")
                self.native_eyes = tuple(m.args)
                self._dirty = True
                continue
            if m.address == EYES_CLOSED and m.tags == "f" and math.isfinite(m.args[0]):
                self.eyes_closed = min(1.0, max(0.0, m.args[0]))
                self._dirty = True
                continue
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
        if self.native_eyes is not None and not any(n.startswith("Eye") and n[-1] in "XY" for n in self.parameters):
            lp, ly, rp, ry = self.native_eyes
            gaze = Gaze(left_yaw_deg=-ly, left_pitch_deg=-lp, right_yaw_deg=-ry, right_pitch_deg=-rp)
        return [FaceFrame(t_ns=time.monotonic_ns(), seq=self.next_seq(), source="vrchat", weights=weights, gaze=gaze)]
