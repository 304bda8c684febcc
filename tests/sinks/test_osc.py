"""OSC 1.0 messages and bundles: golden bytes written out from the spec, round trips, strict
rejection of malformed packets with exact messages, fuzzing, and agreement with python-osc."""

from __future__ import annotations

import random
import struct

import pytest

from facewire.errors import InputError
from facewire.sinks.osc import (
    IMMEDIATELY,
    MAX_PACKET_BYTES,
    OscBundle,
    OscMessage,
    parse_packet,
)

# -- golden bytes, written out by hand from the OSC 1.0 spec -------------------------------------
# OSC-string: the bytes, a NUL, then NULs up to a multiple of 4. Numbers big-endian.
BLEND_VAL = (
    b"/VMC/Ext/Blend/Val" + b"\0\0"  # 18 chars + 2 NUL = 20
    + b",sf\0"  # type tags
    + b"Joy\0"  # 3 chars + 1 NUL
    + struct.pack(">f", 0.5)  # 3f 00 00 00
)
EVERY_TYPE = (
    b"/x\0\0"
    + b",ifsbTFNhd" + b"\0\0"  # 10 chars + 2 NUL = 12
    + struct.pack(">i", -2)
    + struct.pack(">f", 1.5)
    + b"abcd" + b"\0\0\0\0"  # a string whose length is a multiple of 4 still gets 4 NULs
    + struct.pack(">i", 3) + b"xyz" + b"\0"  # blob: size, bytes, NUL padding to 4
    + struct.pack(">q", 2**40)
    + struct.pack(">d", 0.1)
)
OK_MSG = b"/VMC/Ext/OK\0" + b",i\0\0" + struct.pack(">i", 1)
APPLY_MSG = b"/VMC/Ext/Blend/Apply" + b"\0\0\0\0" + b",\0\0\0"  # no arguments: just ","
BUNDLE = (
    b"#bundle\0"
    + struct.pack(">Q", 1)  # timetag 1 = immediately
    + struct.pack(">i", len(OK_MSG)) + OK_MSG
    + struct.pack(">i", len(APPLY_MSG)) + APPLY_MSG
)


def test_golden_message() -> None:
    assert BLEND_VAL.hex() == (
        "2f564d432f4578742f426c656e642f56616c0000" "2c736600" "4a6f7900" "3f000000"
    )
    m = OscMessage("/VMC/Ext/Blend/Val", ("Joy", 0.5))
    assert m.tags == "sf"
    assert bytes(m) == BLEND_VAL
    assert OscMessage.parse(BLEND_VAL) == m


def test_golden_message_every_type() -> None:
    m = OscMessage("/x", (-2, 1.5, "abcd", b"xyz", True, False, None, 2**40, 0.1), "ifsbTFNhd")
    assert bytes(m) == EVERY_TYPE
    assert OscMessage.parse(EVERY_TYPE) == m
    assert parse_packet(EVERY_TYPE) == m


def test_golden_bundle() -> None:
    b = OscBundle((OscMessage("/VMC/Ext/OK", (1,)), OscMessage("/VMC/Ext/Blend/Apply")))
    assert b.timetag == IMMEDIATELY
    assert bytes(b) == BUNDLE
    assert OscBundle.parse(BUNDLE) == b
    assert parse_packet(BUNDLE) == b
    assert [m.address for m in b.messages()] == ["/VMC/Ext/OK", "/VMC/Ext/Blend/Apply"]


def test_nested_bundle_round_trip() -> None:
    inner = OscBundle((OscMessage("/a", ("é", 2)),), timetag=2**63)
    outer = OscBundle((OscMessage("/b"), inner, OscMessage("/c", (b"",))))
    assert OscBundle.parse(bytes(outer)) == outer
    assert [m.address for m in outer.messages()] == ["/b", "/a", "/c"]


def test_type_inference() -> None:
    assert OscMessage("/a", (1, 2**40, 1.0, "s", b"b", True, False, None)).tags == "ihfsbTFN"
    assert OscMessage("/a", (1,), "f").args == (1.0,)  # an int given for a float tag becomes a float


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: OscMessage("a"), "OSC message address: expected a str starting with '/', got 'a'"),
        (lambda: OscMessage("/a", (1, 2), "i"), "OSC message /a: 1 type tags for 2 arguments"),
        (lambda: OscMessage("/a", ("x",), "f"), "OSC argument 0 ('f'): expected a float, got str"),
        (lambda: OscMessage("/a", (2**31,), "i"), "OSC argument 0 ('i'): expected a 32-bit integer, got 2147483648"),
        (lambda: OscMessage("/a", (1e39,), "f"), "OSC argument 0 ('f'): 1e+39 does not fit a float32"),
        (lambda: OscMessage("/a", ("a\0b",)), "OSC argument 0 ('s'): strings cannot contain NUL characters"),
        (lambda: OscMessage("/a", (1,), "x"), "OSC argument 0: unknown type tag 'x'; expected one of i, f, s, b, h, d, T, F, N"),
        (lambda: OscMessage("/a", ([],)), "OSC argument 0: expected int, float, str, bytes, bool or None, got list"),
        (lambda: OscBundle(("x",)), "OSC bundle element 0: expected OscMessage or OscBundle, got str"),
        (lambda: OscBundle((), timetag=-1), "OSC bundle timetag: expected an integer in [0, 2**64), got -1"),
    ],
)
def test_encoder_rejects(make, message: str) -> None:
    with pytest.raises(InputError) as info:
        make()
    assert str(info.value) == message


def test_encoder_rejects_oversized() -> None:
    with pytest.raises(InputError) as info:
        bytes(OscMessage("/a", (b"\0" * MAX_PACKET_BYTES,)))
    assert str(info.value) == "OSC packet: encodes to 65548 bytes, expected at most 65536"


# -- malformed packets: exact messages ---------------------------------------------------------
BLOB_PACKET = b"/a\0\0,b\0\0" + struct.pack(">i", 70000) + b"\0" * 70000

MALFORMED = [
    (OscMessage.parse, b"", "OSC message: empty packet"),
    (parse_packet, b"/a\0", "OSC packet: bad alignment: 3 bytes is not a multiple of 4"),
    (parse_packet, BLOB_PACKET, "OSC packet: oversized: 70012 bytes, expected at most 65536"),
    (parse_packet, b"abcd", "OSC packet: expected '/' (message) or '#bundle' at byte 0, got b'a'"),
    (OscMessage.parse, BUNDLE, "OSC message: expected '/' at byte 0, got b'#'"),
    (OscMessage.parse, b"/abc", "OSC message: truncated at byte 0: address has no NUL terminator"),
    (OscMessage.parse, b"/a\0\0", "OSC message: truncated at byte 4: expected a type tag string after the address"),
    (OscMessage.parse, b"/a\0x,\0\0\0", "OSC message: bad alignment at byte 2: address padding is not NUL bytes"),
    (OscMessage.parse, b"/a\0\0sf\0\0", "OSC message: expected a type tag string starting with ',' at byte 4, got b's'"),
    (OscMessage.parse, b"/a\0\0,x\0\0",
     "OSC message: unknown type tag 'x' for argument 0; expected one of i, f, s, b, h, d, T, F, N"),
    (OscMessage.parse, b"/a\0\0,f\0\0", "OSC message: truncated at byte 8: argument 0 ('f') needs 4 bytes, 0 remain"),
    (OscMessage.parse, b"/a\0\0,d\0\0\0\0\0\0",
     "OSC message: truncated at byte 8: argument 0 ('d') needs 8 bytes, 4 remain"),
    (OscMessage.parse, b"/a\0\0,s\0\0abcd", "OSC message: truncated at byte 8: argument 0 ('s') has no NUL terminator"),
    (OscMessage.parse, b"/a\0\0,b\0\0" + struct.pack(">i", 8) + b"abcd",
     "OSC message: truncated at byte 12: argument 0 ('b') needs 8 bytes, 4 remain"),
    (OscMessage.parse, b"/a\0\0,b\0\0" + struct.pack(">i", -4),
     "OSC message: argument 0 ('b') at byte 8 has a negative size -4"),
    (OscMessage.parse, b"/a\0\0,b\0\0" + struct.pack(">i", 1) + b"ab\0\0",
     "OSC message: bad alignment at byte 13: argument 0 ('b') padding is not NUL bytes"),
    (OscMessage.parse, b"/a\0\0,\0\0\0\0\0\0\0", "OSC message: 4 unexpected bytes after the last argument at byte 8"),
    (OscMessage.parse, b"/\xff\0\0,\0\0\0", "OSC message: address at byte 0 is not valid UTF-8"),
    (OscBundle.parse, b"#bundle\0", "OSC bundle: truncated at byte 8: timetag needs 8 bytes, 0 remain"),
    (OscBundle.parse, b"#bundlX\0" + b"\0" * 8, "OSC bundle: expected b'#bundle\\x00' at byte 0, got b'#bundlX\\x00'"),
    (OscBundle.parse, BUNDLE[:16] + struct.pack(">i", 5) + b"/a\0\0",
     "OSC bundle: bad alignment at byte 16: element 0 size 5 is not a positive multiple of 4"),
    (OscBundle.parse, BUNDLE[:16] + struct.pack(">i", 0),
     "OSC bundle: bad alignment at byte 16: element 0 size 0 is not a positive multiple of 4"),
    (OscBundle.parse, BUNDLE[:16] + struct.pack(">i", 16) + b"/a\0\0,\0\0\0",
     "OSC bundle: truncated at byte 16: element 0 declares 16 bytes, 8 remain"),
    (OscBundle.parse, BUNDLE[:16] + struct.pack(">i", 4) + b"xyz\0",
     "OSC bundle element 0: expected '/' (message) or '#bundle' at byte 20, got b'x'"),
]


@pytest.mark.parametrize("parse, data, message", MALFORMED, ids=[m for _, _, m in MALFORMED])
def test_malformed(parse, data: bytes, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse(data)
    assert str(info.value) == message


def test_nesting_is_bounded() -> None:
    packet = bytes(OscMessage("/deep"))
    for _ in range(9):
        packet = b"#bundle\0" + struct.pack(">Q", 1) + struct.pack(">i", len(packet)) + packet
    with pytest.raises(InputError) as info:
        parse_packet(packet)
    assert str(info.value) == "OSC bundle: nested deeper than 8 bundles at byte 160"


@pytest.mark.parametrize("packet", [BLEND_VAL, EVERY_TYPE, BUNDLE], ids=["message", "every-type", "bundle"])
def test_every_truncation_is_rejected(packet: bytes) -> None:
    # A bundle cut exactly between elements is a shorter, valid bundle: nothing in OSC says otherwise.
    boundaries = {16: 0, 16 + 4 + len(OK_MSG): 1} if packet is BUNDLE else {}
    for n in range(len(packet)):
        if n in boundaries:
            assert len(parse_packet(packet[:n]).elements) == boundaries[n]
            continue
        with pytest.raises(InputError):
            parse_packet(packet[:n])


def test_fuzz_only_input_errors() -> None:
    """Random bytes and random corruptions of valid packets: a parse or an `InputError`, nothing else."""
    rng = random.Random(5)
    seeds = [BLEND_VAL, EVERY_TYPE, BUNDLE]
    for i in range(20000):
        if i % 3 == 0:
            data = bytes(rng.getrandbits(8) for _ in range(rng.choice((4, 8, 12, 16, 20, 24, 32))))
            data = rng.choice((b"/", b"#bundle\0", b"")) + data
        else:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            data = bytes(data[: rng.randrange(len(data) + 1)] if i % 3 == 2 else data)
        try:
            parse_packet(data)
        except InputError:
            pass


# -- a third party agrees ----------------------------------------------------------------------
def test_python_osc_reads_ours_and_we_read_theirs() -> None:
    from pythonosc.osc_bundle import OscBundle as PyBundle
    from pythonosc.osc_bundle_builder import IMMEDIATELY as PY_IMMEDIATELY
    from pythonosc.osc_bundle_builder import OscBundleBuilder
    from pythonosc.osc_message import OscMessage as PyMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    theirs = PyMessage(EVERY_TYPE)
    assert theirs.address == "/x"
    assert theirs.params == [-2, 1.5, "abcd", b"xyz", True, False, None, 2**40, 0.1]
    bundle = PyBundle(BUNDLE)
    assert [m.address for m in bundle] == ["/VMC/Ext/OK", "/VMC/Ext/Blend/Apply"]

    builder = OscMessageBuilder("/avatar/parameters/FT/v2/JawOpen")
    builder.add_arg(0.25, "f")
    built = builder.build().dgram
    assert OscMessage.parse(built) == OscMessage("/avatar/parameters/FT/v2/JawOpen", (0.25,))
    bb = OscBundleBuilder(PY_IMMEDIATELY)
    bb.add_content(builder.build())
    assert parse_packet(bb.build().dgram) == OscBundle((OscMessage("/avatar/parameters/FT/v2/JawOpen", (0.25,)),))
