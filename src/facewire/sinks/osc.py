"""OSC 1.0 messages and bundles (Open Sound Control, opensoundcontrol.stanford.edu/spec-1_0.html).

The wire format under VMC and VRChat: big-endian, every field padded to a multiple of 4 bytes.
A message is an address (``/a/b``), a type tag string (``,sf``) and the arguments; a bundle is
``#bundle\\0``, a 64-bit NTP timetag and size-prefixed elements (messages or bundles).

Argument types (tag → Python): ``i`` int32 → int, ``h`` int64 → int, ``f`` float32 → float,
``d`` float64 → float, ``s`` string → str, ``b`` blob → bytes, ``T``/``F`` → True/False (no data),
``N`` → None (no data). Strings are encoded as UTF-8 (OSC 1.0 says ASCII; UTF-8 is what VRChat and
python-osc use, and ASCII is a subset of it).

Decoders are strict: a packet whose size is not a multiple of 4, a truncated field, padding that is
not NUL bytes, an unknown type tag, trailing bytes or a packet over 64 KiB raise `InputError` naming
the byte offset, what was expected and what came.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Union

from ..errors import InputError

__all__ = [
    "IMMEDIATELY",
    "MAX_PACKET_BYTES",
    "TYPE_TAGS",
    "OscArg",
    "OscBundle",
    "OscMessage",
    "parse_packet",
]

MAX_PACKET_BYTES = 65536
"""Largest packet encoded or accepted (64 KiB; a UDP datagram carries at most 65,507 bytes)."""

IMMEDIATELY = 1
"""The OSC timetag meaning "now" (63 zero bits then a one)."""

TYPE_TAGS = "ifsbhdTFN"
_MAX_DEPTH = 8  # nested bundles; a bound so that a hostile packet cannot recurse deeply
_BUNDLE = b"#bundle\0"
_NUL4 = b"\0\0\0\0"

OscArg = int | float | str | bytes | bool | None
OscPacket = Union["OscMessage", "OscBundle"]

_I32, _I64, _F32, _F64, _U64 = (struct.Struct(f) for f in (">i", ">q", ">f", ">d", ">Q"))


# -- encoding ---------------------------------------------------------------------------------
def _pad(raw: bytes) -> bytes:
    """``raw`` followed by 1–4 NUL bytes so that the total is a multiple of 4 (OSC-string rule)."""
    return raw + _NUL4[: 4 - len(raw) % 4]


def _blob(raw: bytes) -> bytes:
    return _I32.pack(len(raw)) + raw + _NUL4[: -len(raw) % 4]


def osc_string(text: str) -> bytes:
    """An OSC-string: UTF-8, NUL-terminated, padded to a multiple of 4 bytes."""
    return _pad(text.encode("utf-8"))


def _tag_of(value: object, index: int) -> str:
    if value is True:
        return "T"
    if value is False:
        return "F"
    if value is None:
        return "N"
    if isinstance(value, int):
        return "i" if -(2**31) <= value < 2**31 else "h"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "b"
    raise InputError(f"OSC argument {index}: expected int, float, str, bytes, bool or None, got {type(value).__name__}")


def _check_arg(tag: str, value: object, index: int) -> object:
    """The value normalised for ``tag`` (e.g. int → float for ``f``); InputError if it cannot be."""
    where = f"OSC argument {index} ({tag!r})"
    if tag in "ih":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: expected an int, got {type(value).__name__}")
        bits = 32 if tag == "i" else 64
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise InputError(f"{where}: expected a {bits}-bit integer, got {value}")
        return value
    if tag in "fd":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: expected a float, got {type(value).__name__}")
        value = float(value)
        if tag == "f" and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
            raise InputError(f"{where}: {value} does not fit a float32")
        return value
    if tag == "s":
        if not isinstance(value, str):
            raise InputError(f"{where}: expected a str, got {type(value).__name__}")
        if "\0" in value:
            raise InputError(f"{where}: strings cannot contain NUL characters")
        return value
    if tag == "b":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise InputError(f"{where}: expected bytes, got {type(value).__name__}")
        return bytes(value)
    if tag == "T" and value is True or tag == "F" and value is False or tag == "N" and value is None:
        return value
    if tag in "TFN":
        want = {"T": "True", "F": "False", "N": "None"}[tag]
        raise InputError(f"{where}: expected {want}, got {value!r}")
    raise InputError(f"OSC argument {index}: unknown type tag {tag!r}; expected one of {', '.join(TYPE_TAGS)}")


def _encode_args(tags: str, args: tuple) -> bytes:
    out = [osc_string("," + tags)]
    for tag, value in zip(tags, args):
        if tag == "f":
            out.append(_F32.pack(value))
        elif tag == "i":
            out.append(_I32.pack(value))
        elif tag == "s":
            out.append(osc_string(value))
        elif tag == "b":
            out.append(_blob(value))
        elif tag == "h":
            out.append(_I64.pack(value))
        elif tag == "d":
            out.append(_F64.pack(value))
        # T, F, N carry no data
    return b"".join(out)


def _check_size(size: int) -> None:
    if size > MAX_PACKET_BYTES:
        raise InputError(f"OSC packet: encodes to {size} bytes, expected at most {MAX_PACKET_BYTES}")


@dataclass(frozen=True, slots=True)
class OscMessage:
    """One OSC message: ``address``, ``args`` and their type ``tags`` (without the leading comma).

    ``tags`` is inferred from ``args`` when left empty (int → ``i``, or ``h`` when it needs 64 bits;
    float → ``f``; str → ``s``; bytes → ``b``; True/False → ``T``/``F``; None → ``N``). Give it to
    send a float as ``d`` or an int as ``h``. Parsing always fills it, so ``parse(bytes(m)) == m``.
    """

    address: str
    args: tuple[OscArg, ...] = ()
    tags: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address.startswith("/"):
            raise InputError(f"OSC message address: expected a str starting with '/', got {self.address!r}")
        if "\0" in self.address:
            raise InputError("OSC message address: cannot contain NUL characters")
        args = tuple(self.args)
        tags = self.tags or "".join(_tag_of(v, i) for i, v in enumerate(args))
        if len(tags) != len(args):
            raise InputError(f"OSC message {self.address}: {len(tags)} type tags for {len(args)} arguments")
        object.__setattr__(self, "args", tuple(_check_arg(t, v, i) for i, (t, v) in enumerate(zip(tags, args))))
        object.__setattr__(self, "tags", tags)

    def __bytes__(self) -> bytes:
        data = osc_string(self.address) + _encode_args(self.tags, self.args)
        _check_size(len(data))
        return data

    @classmethod
    def parse(cls, data: bytes) -> OscMessage:
        """The message in ``data``; `InputError` if it is not exactly one well-formed OSC message."""
        data = _packet_bytes(data, "OSC message")
        if data[:1] != b"/":
            raise InputError(f"OSC message: expected '/' at byte 0, got {_show(data[:1])}")
        return _parse_message(data, 0, len(data))


@dataclass(frozen=True, slots=True)
class OscBundle:
    """An OSC bundle: a 64-bit NTP ``timetag`` (`IMMEDIATELY` = now) and its ``elements`` in order."""

    elements: tuple[OscPacket, ...] = ()
    timetag: int = IMMEDIATELY

    def __post_init__(self) -> None:
        elements = tuple(self.elements)
        for i, e in enumerate(elements):
            if not isinstance(e, (OscMessage, OscBundle)):
                raise InputError(f"OSC bundle element {i}: expected OscMessage or OscBundle, got {type(e).__name__}")
        if isinstance(self.timetag, bool) or not isinstance(self.timetag, int) or not 0 <= self.timetag < 2**64:
            raise InputError(f"OSC bundle timetag: expected an integer in [0, 2**64), got {self.timetag!r}")
        object.__setattr__(self, "elements", elements)

    def __bytes__(self) -> bytes:
        data = bundle_bytes([bytes(e) for e in self.elements], self.timetag)
        _check_size(len(data))
        return data

    @classmethod
    def parse(cls, data: bytes) -> OscBundle:
        """The bundle in ``data``; `InputError` if it is not exactly one well-formed OSC bundle."""
        data = _packet_bytes(data, "OSC bundle")
        return _parse_bundle(data, 0, len(data), 0)

    def messages(self):
        """Every message in the bundle and its nested bundles, depth first, in order."""
        for e in self.elements:
            if isinstance(e, OscBundle):
                yield from e.messages()
            else:
                yield e


def bundle_bytes(elements: list[bytes], timetag: int = IMMEDIATELY) -> bytes:
    """A bundle built from already encoded elements (the fast path the sinks use)."""
    parts = [_BUNDLE, _U64.pack(timetag)]
    for e in elements:
        parts.append(_I32.pack(len(e)))
        parts.append(e)
    return b"".join(parts)


def parse_packet(data: bytes) -> OscPacket:
    """A message or a bundle, whichever ``data`` holds; `InputError` for anything else."""
    data = _packet_bytes(data, "OSC packet")
    return _parse_element(data, 0, len(data), 0, "OSC packet")


# -- decoding ---------------------------------------------------------------------------------
def _show(raw: bytes) -> str:
    return repr(raw) if raw else "end of packet"


def _packet_bytes(data: object, what: str) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise InputError(f"{what}: expected bytes, got {type(data).__name__}")
    n = len(data)
    if n == 0:
        raise InputError(f"{what}: empty packet")
    if n > MAX_PACKET_BYTES:
        raise InputError(f"{what}: oversized: {n} bytes, expected at most {MAX_PACKET_BYTES}")
    if n % 4:
        raise InputError(f"{what}: bad alignment: {n} bytes is not a multiple of 4")
    return data


def _parse_element(data: bytes, start: int, end: int, depth: int, what: str) -> OscPacket:
    head = data[start : start + 1]
    if head == b"/":
        return _parse_message(data, start, end)
    if head == b"#":
        return _parse_bundle(data, start, end, depth)
    raise InputError(f"{what}: expected '/' (message) or '#bundle' at byte {start}, got {_show(head)}")


def _read_string(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    nul = data.find(b"\0", pos, end)
    if nul < 0:
        raise InputError(f"OSC message: truncated at byte {pos}: {what} has no NUL terminator")
    nxt = (nul + 4) & ~3
    if nxt > end:
        raise InputError(f"OSC message: truncated at byte {nul}: {what} padding runs past the end")
    if data[nul:nxt].count(0) != nxt - nul:
        raise InputError(f"OSC message: bad alignment at byte {nul}: {what} padding is not NUL bytes")
    try:
        return data[pos:nul].decode("utf-8"), nxt
    except UnicodeDecodeError:
        raise InputError(f"OSC message: {what} at byte {pos} is not valid UTF-8") from None


def _need(pos: int, size: int, end: int, what: str) -> None:
    if pos + size > end:
        raise InputError(f"OSC message: truncated at byte {pos}: {what} needs {size} bytes, {end - pos} remain")


def _parse_message(data: bytes, start: int, end: int) -> OscMessage:
    address, pos = _read_string(data, start, end, "address")
    if pos >= end:
        raise InputError(f"OSC message: truncated at byte {pos}: expected a type tag string after the address")
    if data[pos : pos + 1] != b",":
        raise InputError(f"OSC message: expected a type tag string starting with ',' at byte {pos}, "
                         f"got {_show(data[pos:pos + 1])}")
    tag_string, pos = _read_string(data, pos, end, "type tag string")
    tags = tag_string[1:]
    args: list[OscArg] = []
    for k, tag in enumerate(tags):
        what = f"argument {k} ({tag!r})"
        if tag == "f":
            _need(pos, 4, end, what)
            args.append(_F32.unpack_from(data, pos)[0])
            pos += 4
        elif tag == "i":
            _need(pos, 4, end, what)
            args.append(_I32.unpack_from(data, pos)[0])
            pos += 4
        elif tag == "s":
            value, pos = _read_string(data, pos, end, what)
            args.append(value)
        elif tag == "b":
            _need(pos, 4, end, what + " size")
            size = _I32.unpack_from(data, pos)[0]
            if size < 0:
                raise InputError(f"OSC message: {what} at byte {pos} has a negative size {size}")
            padded = size + (-size % 4)
            _need(pos + 4, padded, end, what)
            blob_end = pos + 4 + size
            if data[blob_end : pos + 4 + padded].count(0) != padded - size:
                raise InputError(f"OSC message: bad alignment at byte {blob_end}: {what} padding is not NUL bytes")
            args.append(data[pos + 4 : blob_end])
            pos += 4 + padded
        elif tag in "hd":
            _need(pos, 8, end, what)
            args.append((_I64 if tag == "h" else _F64).unpack_from(data, pos)[0])
            pos += 8
        elif tag in "TFN":
            args.append(True if tag == "T" else False if tag == "F" else None)
        else:
            raise InputError(f"OSC message: unknown type tag {tag!r} for argument {k}; "
                             f"expected one of {', '.join(TYPE_TAGS)}")
    if pos != end:
        raise InputError(f"OSC message: {end - pos} unexpected bytes after the last argument at byte {pos}")
    message = OscMessage.__new__(OscMessage)  # already validated field by field: skip __post_init__
    object.__setattr__(message, "address", address)
    object.__setattr__(message, "args", tuple(args))
    object.__setattr__(message, "tags", tags)
    return message


def _parse_bundle(data: bytes, start: int, end: int, depth: int) -> OscBundle:
    if depth >= _MAX_DEPTH:
        raise InputError(f"OSC bundle: nested deeper than {_MAX_DEPTH} bundles at byte {start}")
    if data[start : start + 8] != _BUNDLE:
        raise InputError(f"OSC bundle: expected b'#bundle\\x00' at byte {start}, got {_show(data[start:start + 8])}")
    if start + 16 > end:
        raise InputError(f"OSC bundle: truncated at byte {start + 8}: timetag needs 8 bytes, {end - start - 8} remain")
    timetag = _U64.unpack_from(data, start + 8)[0]
    pos = start + 16
    elements: list[OscPacket] = []
    while pos < end:
        k = len(elements)
        if pos + 4 > end:
            raise InputError(f"OSC bundle: truncated at byte {pos}: element {k} size needs 4 bytes, {end - pos} remain")
        size = _I32.unpack_from(data, pos)[0]
        if size <= 0 or size % 4:
            raise InputError(f"OSC bundle: bad alignment at byte {pos}: element {k} size {size} "
                             f"is not a positive multiple of 4")
        if pos + 4 + size > end:
            raise InputError(f"OSC bundle: truncated at byte {pos}: element {k} declares {size} bytes, "
                             f"{end - pos - 4} remain")
        elements.append(_parse_element(data, pos + 4, pos + 4 + size, depth + 1, f"OSC bundle element {k}"))
        pos += 4 + size
    bundle = OscBundle.__new__(OscBundle)
    object.__setattr__(bundle, "elements", tuple(elements))
    object.__setattr__(bundle, "timetag", timetag)
    return bundle
