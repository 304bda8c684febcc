"""`FaceFrame`: the one frozen value that flows from sources through stages to sinks.

A frame is one face at one instant: 52 ARKit weights, head pose, per-eye gaze, optionally the 478
landmarks it was solved from. "No face" is ``tracked=False`` with neutral values, never ``None``.
Arrays inside a frame are read-only; stages build new frames with :meth:`FaceFrame.replace`.

``extras`` is a small read-only map of named numbers that a file format carries and the frame's
own fields cannot (Live Link Face's eye roll, a take's raw weight above 1), so that converting a
take through facewire's lossless JSON Lines loses nothing. Keys are namespaced by who defines them
(``"llf.LeftEyeRoll"``, ``"unclipped.jawOpen"``); nothing in the pipeline reads them but the
writers of those formats. It is empty for almost every frame and absent from JSON when empty.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from . import arkit
from .errors import InputError

__all__ = ["SCHEMA_VERSION", "FaceFrame", "Gaze", "HeadPose"]

SCHEMA_VERSION = 1


def _frozen_array(value: Any, shape: tuple[int | None, ...], name: str) -> np.ndarray:
    frozen_own = (isinstance(value, np.ndarray) and value.dtype == np.float32
                  and not value.flags.writeable and value.flags.owndata)
    # An array already frozen and owned (e.g. shared by frames made with `replace`) needs no copy.
    arr = value if frozen_own else np.array(value, dtype=np.float32, copy=True)
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "×".join("N" if s is None else str(s) for s in shape)
        raise InputError(f"{name}: expected shape {want}, got {'×'.join(map(str, arr.shape)) or 'scalar'}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: expected finite values, got NaN or Inf")
    if arr.flags.writeable:
        arr.flags.writeable = False
    return arr


def _finite(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{name}: expected a finite number, got {value}")
    return value


def euler_to_quaternion(yaw_deg: float, pitch_deg: float, roll_deg: float) -> tuple[float, float, float, float]:
    """Quaternion (x, y, z, w) of R = Ry(yaw)·Rx(−pitch)·Rz(roll); see `HeadPose` for the frame."""
    y, p, r = (math.radians(v) / 2 for v in (yaw_deg, -pitch_deg, roll_deg))
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    # q = qy * qx * qz
    w = cy * cp * cr + sy * sp * sr
    x = cy * sp * cr + sy * cp * sr
    yq = sy * cp * cr - cy * sp * sr
    z = cy * cp * sr - sy * sp * cr
    return (x, yq, z, w)


@dataclass(frozen=True, slots=True)
class HeadPose:
    """Head rotation in degrees and translation in centimetres, in the camera frame.

    Camera frame: x to the image's right, y up, z towards the viewer. The rotation is
    R = Ry(yaw)·Rx(−pitch)·Rz(roll): positive yaw turns the nose towards the image's right (the
    subject's left), positive pitch raises the nose, positive roll turns the head counter-clockwise
    as the viewer sees it. ``x``/``y`` place the point between the eyes relative to the optical axis;
    ``z`` is its distance from the camera (assuming a focal length equal to the image width).
    """

    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _finite(getattr(self, f.name), f"head.{f.name}"))

    @property
    def quaternion(self) -> tuple[float, float, float, float]:
        """Rotation as a unit quaternion (x, y, z, w)."""
        return euler_to_quaternion(self.yaw_deg, self.pitch_deg, self.roll_deg)


@dataclass(frozen=True, slots=True)
class Gaze:
    """Per-eye gaze in degrees: positive yaw looks to the subject's left, positive pitch looks up."""

    left_yaw_deg: float = 0.0
    left_pitch_deg: float = 0.0
    right_yaw_deg: float = 0.0
    right_pitch_deg: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _finite(getattr(self, f.name), f"gaze.{f.name}"))


_NO_EXTRAS: Mapping[str, float] = MappingProxyType({})


def _frozen_extras(value: Any) -> Mapping[str, float]:
    if value is _NO_EXTRAS or (isinstance(value, MappingProxyType) and not value):
        return _NO_EXTRAS
    if not isinstance(value, Mapping):
        raise InputError(f"extras: expected a mapping of names to numbers, got {type(value).__name__}")
    out: dict[str, float] = {}
    for key, number in value.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"extras: expected non-empty string keys, got {key!r}")
        if isinstance(number, bool) or not isinstance(number, (int, float, np.integer, np.floating)):
            raise InputError(f"extras[{key!r}]: expected a number, got {type(number).__name__}")
        out[key] = _finite(number, f"extras[{key!r}]")
    return MappingProxyType(out) if out else _NO_EXTRAS


def _neutral_weights() -> np.ndarray:
    arr = np.zeros(arkit.COUNT, dtype=np.float32)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True)
class FaceFrame:
    """One face at one media instant.

    ``t_ns`` is media time (integer nanoseconds); ``capture_ns`` the monotonic clock reading when
    the input was captured (for end-to-end latency), 0 when unknown. ``face`` numbers faces when
    several are tracked. ``weights`` are the 52 ARKit coefficients in canonical order, in [0, 1].
    ``extras`` holds named numbers a take format needs to be rebuilt exactly (see the module doc).
    """

    t_ns: int
    seq: int = 0
    source: str = ""
    weights: np.ndarray = field(default_factory=_neutral_weights)
    head: HeadPose = field(default_factory=HeadPose)
    gaze: Gaze = field(default_factory=Gaze)
    landmarks: np.ndarray | None = None
    tracked: bool = True
    confidence: float = 1.0
    face: int = 0
    capture_ns: int = 0
    extras: Mapping[str, float] = field(default_factory=lambda: _NO_EXTRAS)

    def __post_init__(self) -> None:
        if isinstance(self.t_ns, bool) or not isinstance(self.t_ns, (int, np.integer)):
            raise InputError(f"t_ns: expected an integer number of nanoseconds, got {type(self.t_ns).__name__}")
        object.__setattr__(self, "t_ns", int(self.t_ns))
        object.__setattr__(self, "seq", int(self.seq))
        object.__setattr__(self, "face", int(self.face))
        object.__setattr__(self, "capture_ns", int(self.capture_ns))
        weights = _frozen_array(self.weights, (arkit.COUNT,), "weights")
        if weights.min() < 0.0 or weights.max() > 1.0:
            raise InputError(f"weights: expected values in [0, 1], got range [{weights.min():g}, {weights.max():g}]")
        object.__setattr__(self, "weights", weights)
        if self.landmarks is not None:
            object.__setattr__(self, "landmarks", _frozen_array(self.landmarks, (None, 3), "landmarks"))
        if not isinstance(self.head, HeadPose):
            raise InputError(f"head: expected HeadPose, got {type(self.head).__name__}")
        if not isinstance(self.gaze, Gaze):
            raise InputError(f"gaze: expected Gaze, got {type(self.gaze).__name__}")
        confidence = _finite(self.confidence, "confidence")
        if not 0.0 <= confidence <= 1.0:
            raise InputError(f"confidence: expected a value in [0, 1], got {confidence:g}")
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "tracked", bool(self.tracked))
        object.__setattr__(self, "extras", _frozen_extras(self.extras))

    # -- convenience -------------------------------------------------------------------------
    def weight(self, name: str) -> float:
        """One coefficient by ARKit name."""
        return float(self.weights[arkit.index_of(name)])

    def as_dict(self) -> dict[str, float]:
        """The 52 coefficients keyed by ARKit name."""
        return {n: float(v) for n, v in zip(arkit.NAMES, self.weights)}

    def replace(self, **changes: Any) -> FaceFrame:
        """A new frame with some fields changed (validated like a fresh one)."""
        return dataclasses.replace(self, **changes)

    @property
    def t_s(self) -> float:
        return self.t_ns / 1e9

    @classmethod
    def untracked(cls, t_ns: int, seq: int = 0, source: str = "", face: int = 0, capture_ns: int = 0) -> FaceFrame:
        """The frame for an instant with no face: neutral values, ``tracked=False``, confidence 0."""
        return cls(t_ns=t_ns, seq=seq, source=source, tracked=False, confidence=0.0, face=face, capture_ns=capture_ns)

    # -- JSON --------------------------------------------------------------------------------
    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; float32 values survive the round trip bit for bit."""
        d: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "t_ns": self.t_ns,
            "seq": self.seq,
            "source": self.source,
            "face": self.face,
            "tracked": self.tracked,
            "confidence": self.confidence,
            "weights": [float(v) for v in self.weights],
            "head": dataclasses.asdict(self.head),
            "gaze": dataclasses.asdict(self.gaze),
        }
        if self.capture_ns:
            d["capture_ns"] = self.capture_ns
        if self.landmarks is not None:
            d["landmarks"] = [[float(c) for c in p] for p in self.landmarks]
        if self.extras:
            d["extras"] = dict(self.extras)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json_dict(cls, d: Any) -> FaceFrame:
        if not isinstance(d, dict):
            raise InputError(f"frame JSON: expected an object, got {type(d).__name__}")
        version = d.get("v", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise InputError(f"frame JSON: expected schema version {SCHEMA_VERSION}, got {version!r}")
        try:
            head = HeadPose(**d.get("head", {}))
            gaze = Gaze(**d.get("gaze", {}))
            return cls(
                t_ns=d["t_ns"],
                seq=d.get("seq", 0),
                source=str(d.get("source", "")),
                face=d.get("face", 0),
                tracked=d.get("tracked", True),
                confidence=d.get("confidence", 1.0),
                weights=d["weights"],
                head=head,
                gaze=gaze,
                landmarks=d.get("landmarks"),
                capture_ns=d.get("capture_ns", 0),
                extras=d.get("extras", _NO_EXTRAS),
            )
        except KeyError as exc:
            raise InputError(f"frame JSON: missing field {exc.args[0]!r}") from exc
        except TypeError as exc:
            raise InputError(f"frame JSON: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> FaceFrame:
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"frame JSON: not valid JSON ({exc})") from exc
        return cls.from_json_dict(d)
