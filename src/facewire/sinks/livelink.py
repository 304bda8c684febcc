"""Live Link Face over UDP: the packet Epic's iPhone app sends and Unreal's Live Link (MetaHuman) reads.

Packet version 6, every field big-endian (Unreal's ``FNboSerializer``)::

    uint8    version               6
    int32    len(device id) = D    UTF-8 bytes, no NUL
    D bytes  device id             the app sends a UUID string
    int32    len(subject) = S
    S bytes  subject name          the Live Link subject Unreal shows
    int32    frame number          FQualifiedFrameTime: frame …
    float32  subframe              … fraction of a frame, 0 <= x < 1
    int32    fps numerator         … at this rate (e.g. 60/1)
    int32    fps denominator
    uint8    value count           61
    float32  values[61]            52 blendshapes (Unreal's EARFaceBlendShape order = ARKit order),
                                   HeadYaw, HeadPitch, HeadRoll, LeftEyeYaw, LeftEyePitch,
                                   LeftEyeRoll, RightEyeYaw, RightEyePitch, RightEyeRoll

270 + D + S bytes in all (312 for the app's 36-byte UUID and a 6-byte subject). With no face the
app sends the header alone (no count, no values); `LiveLinkPacket` with ``values=()`` is that
packet, and the sink sends it for a frame with ``tracked=False``.

Angles: the nine head/eye values are radians. Their signs are the app's, as `facewire.takes.llf`
established from the eye blendshapes of real takes: eye yaw > 0 looks to the subject's right, eye
pitch > 0 looks down, so facewire's yaw and pitch (> 0 to the subject's left, > 0 up) change sign
and roll does not; the head follows the eyes' convention (the real takes carry no head motion, so
that part is unverified). Eye roll, which `Gaze` has no field for, travels in the frame's
``extras`` as ``llf.LeftEyeRoll`` / ``llf.RightEyeRoll``, and blendshapes outside [0, 1] (the app
sends up to about 1.08) as ``unclipped.<name>``, the keys the Live Link Face CSV take uses, so a
take read from the app's CSV goes out exactly as the app would have sent it.
"""

from __future__ import annotations

import math
import socket
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

import numpy as np

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame, Gaze, HeadPose
from ..takes._extras import split_unclipped, unclipped_weights
from .udp import UdpReceiver, UdpSender

__all__ = [
    "DEFAULT_PORT",
    "PACKET_VERSION",
    "VALUE_NAMES",
    "LiveLinkPacket",
    "LiveLinkReceiver",
    "LiveLinkSink",
    "frame_to_packet",
    "packet_to_frame",
]

PACKET_VERSION = 6
DEFAULT_PORT = 11111
VALUE_COUNT = 61
MAX_NAME_BYTES = 256  # Unreal's receive buffer leaves 2×256 TCHARs for the two names
VALUE_NAMES: tuple[str, ...] = tuple(arkit.pascal(n) for n in arkit.NAMES) + (
    "HeadYaw", "HeadPitch", "HeadRoll",
    "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)
MAX_PACKET_BYTES = 1 + 4 + MAX_NAME_BYTES + 4 + MAX_NAME_BYTES + 16 + 1 + 4 * VALUE_COUNT

_I32, _U8 = struct.Struct(">i"), struct.Struct(">B")
_TIME = struct.Struct(">ifii")
_VALUES = struct.Struct(f">{VALUE_COUNT}f")
_WHAT = "Live Link packet"
_LEFT_ROLL, _RIGHT_ROLL = "llf.LeftEyeRoll", "llf.RightEyeRoll"  # the keys facewire.takes.llf uses


def _default_device_id() -> str:
    """A UUID string like the app's, stable for this machine."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"facewire.{socket.gethostname()}")).upper()


@dataclass(frozen=True, slots=True)
class LiveLinkPacket:
    """One Live Link Face packet (version 6). ``values`` holds the 61 floats, or nothing (no face)."""

    device_id: str
    subject_name: str
    frame_number: int
    subframe: float
    fps_numerator: int
    fps_denominator: int
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("device_id", "subject_name"):
            text = getattr(self, name)
            if not isinstance(text, str):
                raise InputError(f"{_WHAT} {name}: expected a str, got {type(text).__name__}")
            if len(text.encode("utf-8")) > MAX_NAME_BYTES:
                raise InputError(f"{_WHAT} {name}: expected at most {MAX_NAME_BYTES} UTF-8 bytes, "
                                 f"got {len(text.encode('utf-8'))}")
        for name in ("frame_number", "fps_numerator", "fps_denominator"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not -(2**31) <= value < 2**31:
                raise InputError(f"{_WHAT} {name}: expected a 32-bit integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.fps_numerator <= 0 or self.fps_denominator <= 0:
            raise InputError(f"{_WHAT}: expected a positive frame rate, got {self.fps_numerator}/{self.fps_denominator}")
        subframe = float(self.subframe)
        if not 0.0 <= subframe < 1.0:
            raise InputError(f"{_WHAT} subframe: expected 0 <= subframe < 1, got {subframe}")
        object.__setattr__(self, "subframe", subframe)
        values = tuple(float(v) for v in self.values)
        if len(values) not in (0, VALUE_COUNT):
            raise InputError(f"{_WHAT} values: expected {VALUE_COUNT} (or none for no face), got {len(values)}")
        object.__setattr__(self, "values", values)

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_numerator, self.fps_denominator)

    def __bytes__(self) -> bytes:
        d, s = self.device_id.encode("utf-8"), self.subject_name.encode("utf-8")
        head = b"".join((
            _U8.pack(PACKET_VERSION), _I32.pack(len(d)), d, _I32.pack(len(s)), s,
            _TIME.pack(self.frame_number, self.subframe, self.fps_numerator, self.fps_denominator),
        ))
        if not self.values:
            return head
        return head + _U8.pack(VALUE_COUNT) + _VALUES.pack(*self.values)

    @classmethod
    def parse(cls, data: bytes) -> LiveLinkPacket:
        """The packet in ``data``; `InputError` naming the byte offset for anything malformed."""
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise InputError(f"{_WHAT}: expected bytes, got {type(data).__name__}")
        n = len(data)
        if n > MAX_PACKET_BYTES:
            raise InputError(f"{_WHAT}: oversized: {n} bytes, expected at most {MAX_PACKET_BYTES}")

        def need(pos: int, size: int, what: str) -> None:
            if pos + size > n:
                raise InputError(f"{_WHAT}: truncated at byte {pos}: {what} needs {size} byte{'s' * (size != 1)}, "
                                 f"{n - pos} remain")

        need(0, 1, "version")
        if data[0] != PACKET_VERSION:
            raise InputError(f"{_WHAT}: expected version {PACKET_VERSION} at byte 0, got {data[0]}")
        pos = 1
        names = []
        for what in ("device id", "subject name"):
            need(pos, 4, f"{what} length")
            size = _I32.unpack_from(data, pos)[0]
            if not 0 <= size <= MAX_NAME_BYTES:
                raise InputError(f"{_WHAT}: {what} length at byte {pos}: expected 0..{MAX_NAME_BYTES}, got {size}")
            pos += 4
            need(pos, size, what)
            try:
                names.append(data[pos : pos + size].decode("utf-8"))
            except UnicodeDecodeError:
                raise InputError(f"{_WHAT}: {what} at byte {pos} is not valid UTF-8") from None
            pos += size
        need(pos, _TIME.size, "frame time")
        frame, subframe, num, den = _TIME.unpack_from(data, pos)
        if num <= 0 or den <= 0:
            raise InputError(f"{_WHAT}: frame rate at byte {pos + 8}: expected a positive fraction, got {num}/{den}")
        if not 0.0 <= subframe < 1.0:  # also rejects NaN
            raise InputError(f"{_WHAT}: subframe at byte {pos + 4}: expected 0 <= subframe < 1, got {subframe}")
        pos += _TIME.size
        values: tuple[float, ...] = ()
        if pos < n:
            if data[pos] != VALUE_COUNT:
                raise InputError(f"{_WHAT}: value count at byte {pos}: expected {VALUE_COUNT}, got {data[pos]}")
            pos += 1
            need(pos, _VALUES.size, f"{VALUE_COUNT} values")
            values = _VALUES.unpack_from(data, pos)
            pos += _VALUES.size
            if pos != n:
                raise InputError(f"{_WHAT}: {n - pos} unexpected bytes after the values at byte {pos}")
        packet = cls.__new__(cls)  # every field validated above
        for name, value in zip(("device_id", "subject_name", "frame_number", "subframe", "fps_numerator",
                                "fps_denominator", "values"), (*names, frame, subframe, num, den, values)):
            object.__setattr__(packet, name, value)
        return packet


# -- frames <-> packets ------------------------------------------------------------------------
def _fps_fraction(fps: float | Fraction | str) -> Fraction:
    try:
        value = Fraction(fps) if not isinstance(fps, float) else Fraction(fps).limit_denominator(1001)
    except (ValueError, ZeroDivisionError, TypeError):
        raise InputError(f"livelink fps: expected a number such as 60 or 30000/1001, got {fps!r}") from None
    if value <= 0 or value > 1000:
        raise InputError(f"livelink fps: expected a rate in (0, 1000], got {fps!r}")
    return value


def frame_to_packet(frame: FaceFrame, device_id: str, subject_name: str, fps: Fraction) -> LiveLinkPacket:
    """The packet for ``frame``: its media time as a frame number + subframe at ``fps``.

    The frame number wraps at 2**31 (more than a year of frames at 60 fps).
    """
    unit = fps.denominator * 1_000_000_000
    whole, rest = divmod(frame.t_ns * fps.numerator, unit)
    subframe = float(np.float32(rest / unit))
    if subframe >= 1.0:  # rounding to float32 can reach 1.0: carry it
        whole, subframe = whole + 1, 0.0
    number = (whole + 2**31) % 2**32 - 2**31
    values: tuple[float, ...] = ()
    if frame.tracked:
        head, gaze, extras, rad = frame.head, frame.gaze, frame.extras, math.radians
        values = (*unclipped_weights(frame.weights, extras).tolist(),
                  -rad(head.yaw_deg), -rad(head.pitch_deg), rad(head.roll_deg),
                  -rad(gaze.left_yaw_deg), -rad(gaze.left_pitch_deg), extras.get(_LEFT_ROLL, 0.0),
                  -rad(gaze.right_yaw_deg), -rad(gaze.right_pitch_deg), extras.get(_RIGHT_ROLL, 0.0))
    return LiveLinkPacket(device_id, subject_name, number, subframe, fps.numerator, fps.denominator, values)


def packet_time_ns(packet: LiveLinkPacket) -> int:
    """Media time of a packet: (frame number + subframe) / fps, in integer nanoseconds."""
    unit = packet.fps_denominator * 1_000_000_000
    return round((packet.frame_number * unit + packet.subframe * unit) / packet.fps_numerator)


def packet_to_frame(packet: LiveLinkPacket, seq: int = 0, source: str = "livelink") -> FaceFrame:
    """The frame a packet carries (a header-only packet: an untracked frame). Blendshapes outside
    [0, 1] are clipped, their raw values kept in ``extras``; a non-finite value is an `InputError`."""
    t_ns = packet_time_ns(packet)
    if not packet.values:
        return FaceFrame.untracked(t_ns, seq=seq, source=source)
    values = np.asarray(packet.values, dtype=np.float64)
    if not np.isfinite(values).all():
        bad = VALUE_NAMES[int(np.flatnonzero(~np.isfinite(values))[0])]
        raise InputError(f"{_WHAT}: value {bad} is not a finite number")
    extras: dict[str, float] = {}
    weights = split_unclipped(values[: arkit.COUNT].astype(np.float32), extras)
    angles = values[arkit.COUNT:]
    for key, value in ((_LEFT_ROLL, angles[5]), (_RIGHT_ROLL, angles[8])):
        if value:
            extras[key] = float(value)
    deg = np.degrees(angles)
    return FaceFrame(
        t_ns=t_ns, seq=seq, source=source, weights=weights,
        head=HeadPose(yaw_deg=-deg[0], pitch_deg=-deg[1], roll_deg=deg[2]),
        gaze=Gaze(left_yaw_deg=-deg[3], left_pitch_deg=-deg[4], right_yaw_deg=-deg[6], right_pitch_deg=-deg[7]),
        extras=extras,
    )


# -- sink and receiver -------------------------------------------------------------------------
class LiveLinkSink(UdpSender):
    """Sends each frame as a Live Link Face v6 packet to ``host:port`` (default port 11111).

    ``subject_name`` is the Live Link subject Unreal lists; ``device_id`` defaults to a UUID string
    stable for this machine, like the app's. ``fps`` (e.g. 60, or "30000/1001") is the frame rate
    whose frame numbers carry the media time. Note: VRCFaceTracking's Live Link module reads only
    312-byte packets, i.e. a 36-byte device id (the default) and a 6-character subject name.
    """

    default_port = DEFAULT_PORT
    protocol = "livelink"
    URL_OPTIONS = MappingProxyType({"subject": str, "device_id": str, "fps": str, "max_rate_hz": float, "face": int})

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, subject_name: str = "facewire",
                 device_id: str | None = None, fps: float | Fraction | str = 60, subject: str | None = None,
                 **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.subject_name = subject if subject is not None else subject_name
        self.device_id = _default_device_id() if device_id is None else device_id
        self.fps = _fps_fraction(fps)
        # Validate the names now, not on the sender thread.
        LiveLinkPacket(self.device_id, self.subject_name, 0, 0.0, self.fps.numerator, self.fps.denominator)

    def encode(self, frame: FaceFrame) -> Sequence[bytes]:
        return [bytes(frame_to_packet(frame, self.device_id, self.subject_name, self.fps))]


class LiveLinkReceiver(UdpReceiver):
    """Receives Live Link Face v6 packets (from the app, facewire or anyone) as frames.

    ``source`` of each frame is ``livelink:<subject name>``; ``seq`` counts frames received.
    """

    default_port = DEFAULT_PORT
    protocol = "livelink"

    def decode(self, data: bytes) -> list[FaceFrame]:
        packet = LiveLinkPacket.parse(data)
        return [packet_to_frame(packet, seq=self.next_seq(), source=f"livelink:{packet.subject_name}")]
