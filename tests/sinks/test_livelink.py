"""Live Link Face v6 packets: golden bytes from the spec (protocols.md §2b), strict parsing with exact
messages, frame time from the media clock, and the frame ↔ packet mapping."""

from __future__ import annotations

import math
import random
import struct
from fractions import Fraction

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.sinks.livelink import (
    VALUE_NAMES,
    LiveLinkPacket,
    LiveLinkSink,
    frame_to_packet,
    packet_time_ns,
    packet_to_frame,
)

VALUES = [i / 100 for i in range(61)]
# version, then big-endian int32 length + UTF-8 bytes for device id and subject, then the frame
# time (int32 frame, float32 subframe, int32 fps numerator, int32 fps denominator), then a uint8
# count and 61 big-endian float32 — written out field by field, not by the encoder under test.
GOLDEN = (
    struct.pack(">B", 6)
    + struct.pack(">i", 3) + b"ABC"
    + struct.pack(">i", 6) + b"iPhone"
    + struct.pack(">i", 1096414) + struct.pack(">f", 0.25) + struct.pack(">i", 60) + struct.pack(">i", 1)
    + struct.pack(">B", 61)
    + b"".join(struct.pack(">f", v) for v in VALUES)
)
HEADER_ONLY = GOLDEN[: 1 + 4 + 3 + 4 + 6 + 16]


def golden_packet() -> LiveLinkPacket:
    return LiveLinkPacket("ABC", "iPhone", 1096414, 0.25, 60, 1, tuple(VALUES))


def test_value_names_follow_unreal() -> None:
    assert len(VALUE_NAMES) == 61
    assert VALUE_NAMES[:3] == ("EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft")
    assert VALUE_NAMES[15:18] == ("JawLeft", "JawRight", "JawOpen")
    assert VALUE_NAMES[21:23] == ("MouthLeft", "MouthRight")
    assert VALUE_NAMES[51:] == ("TongueOut", "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch",
                                "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll")


def test_golden_bytes() -> None:
    assert len(GOLDEN) == 270 + 3 + 6
    assert GOLDEN[:35].hex() == (
        "06" "00000003" "414243" "00000006" "6950686f6e65" "0010bade" "3e800000" "0000003c" "00000001" "3d"
    )
    assert bytes(golden_packet()) == GOLDEN
    parsed = LiveLinkPacket.parse(GOLDEN)
    assert parsed.device_id == "ABC" and parsed.subject_name == "iPhone"
    assert (parsed.frame_number, parsed.subframe, parsed.fps) == (1096414, 0.25, Fraction(60))
    assert parsed.values == tuple(float(np.float32(v)) for v in VALUES)
    assert bytes(parsed) == GOLDEN


def test_app_sized_packet_is_312_bytes() -> None:
    packet = LiveLinkPacket("8D2D5D8A-6D8E-4F0B-9C5E-1F2A3B4C5D6E", "iPhone", 0, 0.0, 60, 1, (0.0,) * 61)
    assert len(bytes(packet)) == 312  # what VRCFaceTracking's Live Link module insists on


def test_header_only_packet_means_no_face() -> None:
    packet = LiveLinkPacket("ABC", "iPhone", 1096414, 0.25, 60, 1)
    assert bytes(packet) == HEADER_ONLY
    assert LiveLinkPacket.parse(HEADER_ONLY) == packet
    frame = packet_to_frame(packet)
    assert not frame.tracked and frame.t_ns == packet_time_ns(packet)


MALFORMED = [
    (b"", "Live Link packet: truncated at byte 0: version needs 1 byte, 0 remain"),
    (b"\x05" + GOLDEN[1:], "Live Link packet: expected version 6 at byte 0, got 5"),
    (GOLDEN[:3], "Live Link packet: truncated at byte 1: device id length needs 4 bytes, 2 remain"),
    (GOLDEN[:6], "Live Link packet: truncated at byte 5: device id needs 3 bytes, 1 remain"),
    (b"\x06" + struct.pack(">i", 5000), "Live Link packet: device id length at byte 1: expected 0..256, got 5000"),
    (b"\x06" + struct.pack(">i", -1), "Live Link packet: device id length at byte 1: expected 0..256, got -1"),
    (b"\x06" + struct.pack(">i", 1) + b"\xff", "Live Link packet: device id at byte 5 is not valid UTF-8"),
    (GOLDEN[:30], "Live Link packet: truncated at byte 18: frame time needs 16 bytes, 12 remain"),
    (GOLDEN[:26] + struct.pack(">i", 0) + GOLDEN[30:],
     "Live Link packet: frame rate at byte 26: expected a positive fraction, got 0/1"),
    (GOLDEN[:22] + struct.pack(">f", 1.0) + GOLDEN[26:],
     "Live Link packet: subframe at byte 22: expected 0 <= subframe < 1, got 1.0"),
    (GOLDEN[:22] + struct.pack(">f", math.nan) + GOLDEN[26:],
     "Live Link packet: subframe at byte 22: expected 0 <= subframe < 1, got nan"),
    (GOLDEN[:34] + b"\x34" + GOLDEN[35:], "Live Link packet: value count at byte 34: expected 61, got 52"),
    (GOLDEN[:35], "Live Link packet: truncated at byte 35: 61 values needs 244 bytes, 0 remain"),
    (GOLDEN[:-1], "Live Link packet: truncated at byte 35: 61 values needs 244 bytes, 243 remain"),
    (GOLDEN + b"\0\0\0\0", "Live Link packet: 4 unexpected bytes after the values at byte 279"),
    (GOLDEN + b"\0" * 600, "Live Link packet: oversized: 879 bytes, expected at most 782"),
]


@pytest.mark.parametrize("data, message", MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as info:
        LiveLinkPacket.parse(data)
    assert str(info.value) == message


def test_every_truncation_is_rejected() -> None:
    for n in range(len(GOLDEN)):
        if n == len(HEADER_ONLY):
            assert LiveLinkPacket.parse(GOLDEN[:n]).values == ()
            continue
        with pytest.raises(InputError):
            LiveLinkPacket.parse(GOLDEN[:n])


def test_fuzz_only_input_errors() -> None:
    rng = random.Random(11)
    for i in range(20000):
        data = bytearray(GOLDEN if i % 2 else HEADER_ONLY)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        if i % 5 == 0:
            data = data[: rng.randrange(len(data))]
        try:
            packet = LiveLinkPacket.parse(bytes(data))
            packet_to_frame(packet)
        except InputError:
            pass


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LiveLinkPacket("x" * 300, "s", 0, 0.0, 60, 1),
         "Live Link packet device_id: expected at most 256 UTF-8 bytes, got 300"),
        (lambda: LiveLinkPacket("d", "s", 2**31, 0.0, 60, 1),
         "Live Link packet frame_number: expected a 32-bit integer, got 2147483648"),
        (lambda: LiveLinkPacket("d", "s", 0, 0.0, 0, 1), "Live Link packet: expected a positive frame rate, got 0/1"),
        (lambda: LiveLinkPacket("d", "s", 0, 1.5, 60, 1),
         "Live Link packet subframe: expected 0 <= subframe < 1, got 1.5"),
        (lambda: LiveLinkPacket("d", "s", 0, 0.0, 60, 1, (0.0,) * 52),
         "Live Link packet values: expected 61 (or none for no face), got 52"),
        (lambda: LiveLinkSink(fps="abc"), "livelink fps: expected a number such as 60 or 30000/1001, got 'abc'"),
    ],
)
def test_constructors_reject(make, message: str) -> None:
    with pytest.raises(InputError) as info:
        make()
    assert str(info.value) == message


# -- frames ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [Fraction(60), Fraction(30000, 1001), Fraction(24)])
def test_frame_time_from_the_media_clock(fps: Fraction) -> None:
    for i in list(range(0, 2000, 7)) + [10**6, 5 * 10**6]:
        t_ns = round(i * 1e9 * fps.denominator / fps.numerator)
        packet = frame_to_packet(FaceFrame(t_ns=t_ns), "d", "s", fps)
        assert (packet.fps_numerator, packet.fps_denominator) == (fps.numerator, fps.denominator)
        assert packet.frame_number == i
        assert packet.subframe < 1e-6
        assert abs(packet_time_ns(packet) - t_ns) <= 1
    # between frames: the subframe carries the rest
    packet = frame_to_packet(FaceFrame(t_ns=25_000_000), "d", "s", Fraction(60))
    assert (packet.frame_number, packet.subframe) == (1, 0.5)


def test_frame_round_trip() -> None:
    rng = np.random.default_rng(3)
    frame = FaceFrame(t_ns=123_456_789, weights=rng.random(arkit.COUNT, dtype=np.float32),
                      head=HeadPose(12.0, -7.5, 3.25, 1.0, 2.0, 50.0), gaze=Gaze(4.0, -2.0, 5.0, 1.0))
    packet = LiveLinkPacket.parse(bytes(frame_to_packet(frame, "dev", "subj", Fraction(60))))
    back = packet_to_frame(packet, seq=7, source="x")
    assert back.seq == 7 and back.source == "x" and back.tracked
    np.testing.assert_array_equal(back.weights, frame.weights)
    assert abs(back.t_ns - frame.t_ns) <= 1
    for name in ("yaw_deg", "pitch_deg", "roll_deg"):
        assert getattr(back.head, name) == pytest.approx(getattr(frame.head, name), abs=1e-5)
    for name in ("left_yaw_deg", "left_pitch_deg", "right_yaw_deg", "right_pitch_deg"):
        assert getattr(back.gaze, name) == pytest.approx(getattr(frame.gaze, name), abs=1e-5)
    assert (back.head.x, back.head.y, back.head.z) == (0.0, 0.0, 0.0)  # not carried by the protocol
    assert not back.extras


def test_angle_signs_follow_the_app() -> None:
    """Eye yaw > 0 looks to the subject's right and pitch > 0 down in the app's data; facewire's
    yaw > 0 is to the subject's left and pitch > 0 up, so both flip; roll does not."""
    frame = FaceFrame(t_ns=0, head=HeadPose(10.0, 20.0, 30.0), gaze=Gaze(5.0, 6.0, 7.0, 8.0))
    v = frame_to_packet(frame, "d", "s", Fraction(60)).values
    expected = [-10, -20, 30, -5, -6, 0, -7, -8, 0]
    assert v[52:] == pytest.approx([math.radians(d) for d in expected])


def test_app_values_survive_in_extras() -> None:
    """Weights past 1 and eye roll, which a frame cannot hold, travel in ``extras`` and go out again."""
    values = [0.0] * 61
    values[arkit.INDEX["jawOpen"]] = 1.0759999752044678
    values[57], values[60] = 0.125, -0.25  # LeftEyeRoll, RightEyeRoll
    packet = LiveLinkPacket("d", "s", 5, 0.0, 60, 1, tuple(values))
    frame = packet_to_frame(packet)
    assert frame.weight("jawOpen") == 1.0
    assert dict(frame.extras) == {"unclipped.jawOpen": 1.0759999752044678, "llf.LeftEyeRoll": 0.125,
                                  "llf.RightEyeRoll": -0.25}
    assert bytes(frame_to_packet(frame, "d", "s", Fraction(60))) == bytes(packet)


def test_non_finite_values_are_rejected() -> None:
    values = [0.0] * 61
    values[arkit.INDEX["jawOpen"]] = math.nan
    with pytest.raises(InputError) as info:
        packet_to_frame(LiveLinkPacket("d", "s", 0, 0.0, 60, 1, tuple(values)))
    assert str(info.value) == "Live Link packet: value JawOpen is not a finite number"


def test_untracked_frame_sends_the_header_alone() -> None:
    sink = LiveLinkSink(subject_name="cam", device_id="dev", fps=30)
    (data,) = sink.encode(FaceFrame.untracked(t_ns=1_000_000_000))
    assert data == struct.pack(">B", 6) + struct.pack(">i", 3) + b"dev" + struct.pack(">i", 3) + b"cam" + struct.pack(
        ">ifii", 30, 0.0, 30, 1)


def test_default_device_id_looks_like_the_apps() -> None:
    device = LiveLinkSink().device_id
    assert len(device) == 36 and device.count("-") == 4 and device == device.upper()
