"""VMC protocol (protocol.vmc.info): facewire as a Performer driving a Marionette (VSeeFace, VNyan,
Warudo, EVMC4U …) over OSC/UDP, default ``127.0.0.1:39539``.

One OSC bundle per frame, in this order::

    /VMC/Ext/OK   i 1, i 3, i 0, i tracked     loaded; calibrated; normal mode; tracking status (V2.7)
    /VMC/Ext/T    f seconds                    the frame's media time
    /VMC/Ext/Bone/Pos  s "Neck", f 0 0 0, f qx qy qz qw         (``neck_share`` > 0 only)
    /VMC/Ext/Bone/Pos  s "Head", f px py pz, f qx qy qz qw      (tracked frames only)
    /VMC/Ext/Bone/Pos  s "LeftEye" …, s "RightEye" …           (``eye_bones``)
    /VMC/Ext/Blend/Val s name, f value          Perfect Sync (the 52 ARKit names in PascalCase)
                                               and/or VRM presets (A I U E O Blink Blink_L Blink_R
                                               Joy Angry Sorrow Fun, see `facewire.retarget`)
    /VMC/Ext/Blend/Apply

A frame without a face sends OK (tracking 0), T and Apply only, so the avatar keeps its last pose.

Coordinates: Unity's, because Marionettes assign ``localRotation`` directly. Unity is left-handed
with x right, y up, z forward, and an avatar faces +z. facewire's camera frame (`HeadPose`) is
right-handed with x to the image's right (the subject's left), y up, z towards the camera, and
the subject faces +z. So the subject's own axes map to the avatar's by mirroring x:
X_unity = −x, Y_unity = y, Z_unity = z. Conjugating a rotation by that mirror turns the
quaternion (x, y, z, w) into (x, −y, −z, w): the avatar turns, nods and tilts its head the way the
subject does (anatomically, like Perfect Sync's EyeBlinkLeft = the avatar's left eye), e.g. yaw
towards the subject's left becomes a negative rotation about Unity's Y (towards the avatar's left).
The eye bones use the same conversion for gaze (yaw, pitch). ``head_position_m`` is sent as the
Head bone's local position (metres, Unity axes): receivers that apply bone positions place the
head there relative to the neck, so give your model's neck→head offset if it matters; facewire's
head translation (relative to the camera) is not a bone position and is not sent.

Neck: bone rotations are local, so with ``neck_share`` = s > 0 the head's rotation q is split into
a Neck rotation n = slerp(identity, q, s) and a Head rotation n⁻¹·q relative to the neck: the
avatar's neck carries part of the turn, as a real neck does, and n·(n⁻¹·q) = q keeps the head
exactly where the subject's is. The receiver composes Neck·Head back into the head pose.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Iterable, Sequence
from types import MappingProxyType

import numpy as np

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame, Gaze, HeadPose, euler_to_quaternion
from ..retarget import VRM_PRESETS, vrm_presets
from .osc import OscBundle, OscMessage, bundle_bytes, parse_packet
from .udp import UdpReceiver, UdpSender

__all__ = [
    "DEFAULT_PORT",
    "NAME_SETS",
    "VmcReceiver",
    "VmcSink",
    "euler_from_quaternion",
    "from_unity",
    "quat_multiply",
    "quat_power",
    "to_unity",
]

DEFAULT_PORT = 39539
NAME_SETS = ("perfect_sync", "vrm")
OK, TIME, BONE, BLEND, APPLY = "/VMC/Ext/OK", "/VMC/Ext/T", "/VMC/Ext/Bone/Pos", "/VMC/Ext/Blend/Val", "/VMC/Ext/Blend/Apply"

_F32 = struct.Struct(">f")
_PERFECT_SYNC = tuple(arkit.pascal(n) for n in arkit.NAMES)


def to_unity(q: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A rotation quaternion (x, y, z, w) in facewire's camera frame → the same motion in Unity."""
    x, y, z, w = q
    return (x, -y, -z, w)


def from_unity(q: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Inverse of `to_unity` (the mirror is its own inverse)."""
    return to_unity(q)


def euler_from_quaternion(q: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a camera-frame quaternion, inverting `euler_to_quaternion`
    (R = Ry(yaw)·Rx(−pitch)·Rz(roll)); the quaternion need not be exactly unit length."""
    x, y, z, w = q
    n = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
    x, y, z, w = x / n, y / n, z / n, w / n
    r12 = 2.0 * (y * z - w * x)
    pitch = math.asin(max(-1.0, min(1.0, r12)))  # R[1][2] = −sin(−pitch)
    yaw = math.atan2(2.0 * (x * z + w * y), 1.0 - 2.0 * (x * x + y * y))
    roll = math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z))
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def quat_multiply(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Hamilton product a·b of (x, y, z, w) quaternions: rotate by b, then by a."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz)


def quat_power(q: tuple[float, float, float, float], s: float) -> tuple[float, float, float, float]:
    """slerp(identity, q, s): the same axis, s times the angle (shortest way round)."""
    x, y, z, w = q
    if w < 0.0:
        x, y, z, w = -x, -y, -z, -w
    half = math.acos(max(-1.0, min(1.0, w)))
    sin_half = math.sin(half)
    if sin_half < 1e-9:
        return (0.0, 0.0, 0.0, 1.0)
    k = math.sin(s * half) / sin_half
    return (x * k, y * k, z * k, math.cos(s * half))


def _conjugate(q: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    return (-q[0], -q[1], -q[2], q[3])


def _parse_names(names: str | Iterable[str]) -> tuple[str, ...]:
    items = [n.strip() for n in names.replace("+", ",").split(",")] if isinstance(names, str) else list(names)
    items = [n for n in items if n]
    bad = [n for n in items if n not in NAME_SETS]
    if bad or not items:
        raise InputError(f"vmc names: expected one or more of {', '.join(NAME_SETS)}, got {names!r}")
    return tuple(dict.fromkeys(items))


class VmcSink(UdpSender):
    """Sends frames over the VMC protocol; see the module docstring for what each bundle holds.

    ``names``: "perfect_sync", "vrm" or both (a list, or "perfect_sync,vrm"); ``eye_bones`` adds
    LeftEye/RightEye rotations from the gaze; ``head_position_m`` is the Head bone's local position;
    ``neck_share`` (0..1, default 0 = no Neck bone) is the part of the head's rotation the Neck
    bone carries.
    """

    default_port = DEFAULT_PORT
    protocol = "vmc"
    URL_OPTIONS = MappingProxyType({"names": str, "eye_bones": lambda s: s.lower() in ("1", "true", "yes", "on"),
                                    "max_rate_hz": float, "face": int, "neck_share": float})

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *,
                 names: str | Iterable[str] = ("perfect_sync", "vrm"), eye_bones: bool = True,
                 head_position_m: tuple[float, float, float] = (0.0, 0.0, 0.0), neck_share: float = 0.0,
                 **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        if not 0.0 <= neck_share <= 1.0:
            raise InputError(f"vmc neck_share: expected a number from 0 to 1, got {neck_share!r}")
        self.neck_share = float(neck_share)
        self.names = _parse_names(names)
        self.eye_bones = bool(eye_bones)
        self.head_position_m = tuple(float(v) for v in head_position_m)
        if len(self.head_position_m) != 3 or not all(map(math.isfinite, self.head_position_m)):
            raise InputError(f"vmc head_position_m: expected three finite numbers, got {head_position_m!r}")
        # Blend/Val messages differ only in their last 4 bytes: encode everything before once.
        self._blend_prefix = {n: bytes(OscMessage(BLEND, (n, 0.0)))[:-4] for n in (*_PERFECT_SYNC, *VRM_PRESETS)}
        self._apply = bytes(OscMessage(APPLY))
        self._time_prefix = bytes(OscMessage(TIME, (0.0,)))[:-4]

    def _bone(self, name: str, position: tuple[float, float, float], q: tuple[float, float, float, float]) -> bytes:
        return bytes(OscMessage(BONE, (name, *position, *q), "sfffffff"))

    def messages(self, frame: FaceFrame) -> list[bytes]:
        """The encoded OSC messages of one frame's bundle, in order."""
        out = [bytes(OscMessage(OK, (1, 3, 0, int(frame.tracked)), "iiii")),
               self._time_prefix + _F32.pack(frame.t_ns / 1e9)]
        if frame.tracked:
            q = to_unity(frame.head.quaternion)
            if self.neck_share > 0.0:
                neck = quat_power(q, self.neck_share)
                out.append(self._bone("Neck", (0.0, 0.0, 0.0), neck))
                q = quat_multiply(_conjugate(neck), q)
            out.append(self._bone("Head", self.head_position_m, q))
            if self.eye_bones:
                g = frame.gaze
                for bone, yaw, pitch in (("LeftEye", g.left_yaw_deg, g.left_pitch_deg),
                                         ("RightEye", g.right_yaw_deg, g.right_pitch_deg)):
                    out.append(self._bone(bone, (0.0, 0.0, 0.0), to_unity(euler_to_quaternion(yaw, pitch, 0.0))))
            prefix, pack = self._blend_prefix, _F32.pack
            if "perfect_sync" in self.names:
                out.extend(prefix[n] + pack(v) for n, v in zip(_PERFECT_SYNC, frame.weights.tolist()))
            if "vrm" in self.names:
                out.extend(prefix[n] + pack(v) for n, v in vrm_presets(frame.weights).items())
        out.append(self._apply)
        return out

    def encode(self, frame: FaceFrame) -> Sequence[bytes]:
        return [bundle_bytes(self.messages(frame))]


class VmcReceiver(UdpReceiver):
    """Receives VMC traffic (bundled or not) as frames: one frame per ``/VMC/Ext/Blend/Apply``.

    Blend/Val values accumulate until Apply and persist between frames, as in a Marionette.
    Perfect Sync names (any case) set the ARKit weights; VRM presets and other names are kept in
    ``blends`` but not turned into weights. Bone/Pos ``Head`` sets the head rotation and
    ``LeftEye``/``RightEye`` the gaze (inverting the sink's Unity conversion); a ``Neck`` rotation,
    when one arrives, is composed with the Head's (Neck·Head); ``/VMC/Ext/T`` sets
    the media time (else arrival order); ``/VMC/Ext/OK`` with a tracking status of 0 makes the next
    frame an untracked one. Unknown addresses are ignored, as the protocol asks.
    """

    default_port = DEFAULT_PORT
    protocol = "vmc"
    _LOOKUP = MappingProxyType({n.lower(): i for i, n in enumerate(_PERFECT_SYNC)})

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.blends: dict[str, float] = {}
        self._weights = np.zeros(arkit.COUNT, dtype=np.float32)
        self._head = HeadPose()
        self._neck_q = (0.0, 0.0, 0.0, 1.0)  # Unity axes, as sent
        self._eyes = [0.0, 0.0, 0.0, 0.0]
        self._t_ns: int | None = None
        self._tracked = True

    def decode(self, data: bytes) -> list[FaceFrame]:
        packet = parse_packet(data)
        messages = packet.messages() if isinstance(packet, OscBundle) else (packet,)
        frames = []
        for m in messages:
            frame = self._apply_message(m)
            if frame is not None:
                frames.append(frame)
        return frames

    def _apply_message(self, m: OscMessage) -> FaceFrame | None:
        a, tags = m.args, m.tags
        if m.address == BLEND and tags[:2] == "sf" and len(tags) == 2:
            name, value = a
            if not math.isfinite(value):
                raise InputError(f"VMC {BLEND} {name}: expected a finite value, got {value}")
            self.blends[name] = value
            i = self._LOOKUP.get(name.lower())
            if i is not None:
                self._weights[i] = min(1.0, max(0.0, value))
        elif m.address == BONE and tags == "sfffffff":
            name, q = a[0], from_unity(a[4:8])
            if not all(map(math.isfinite, a[1:])):
                raise InputError(f"VMC {BONE} {name}: expected finite numbers")
            if name == "Neck":
                self._neck_q = tuple(a[4:8])
            elif name == "Head":
                yaw, pitch, roll = euler_from_quaternion(from_unity(quat_multiply(self._neck_q, tuple(a[4:8]))))
                self._head = HeadPose(yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll)
            elif name in ("LeftEye", "RightEye"):
                yaw, pitch, _ = euler_from_quaternion(q)
                k = 0 if name == "LeftEye" else 2
                self._eyes[k : k + 2] = [yaw, pitch]
        elif m.address == TIME and tags in ("f", "d"):
            if math.isfinite(a[0]):
                self._t_ns = round(a[0] * 1e9)
        elif m.address == OK and tags and set(tags) == {"i"}:
            self._tracked = not (len(a) >= 4 and a[3] == 0)
        elif m.address == APPLY:
            return self._frame()
        return None

    def _frame(self) -> FaceFrame:
        seq = self.next_seq()
        t_ns = self._t_ns if self._t_ns is not None else time.monotonic_ns()  # a sender without /VMC/Ext/T
        if not self._tracked:
            return FaceFrame.untracked(t_ns, seq=seq, source="vmc")
        ly, lp, ry, rp = self._eyes
        return FaceFrame(t_ns=t_ns, seq=seq, source="vmc", weights=self._weights.copy(), head=self._head,
                         gaze=Gaze(left_yaw_deg=ly, left_pitch_deg=lp, right_yaw_deg=ry, right_pitch_deg=rp))
