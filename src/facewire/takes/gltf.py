"""glTF 2.0 binary takes (``.glb``): a head mesh with the 52 ARKit morph targets, animated over time.

The file plays as-is in three.js, Blender and any glTF viewer (``../shared/reference/protocols.md`` §8):

* one node ``Head`` holding mesh ``Face``, whose one primitive has 52 morph targets (POSITION
  displacements, metres) in ARKit order, named in ``mesh.extras.targetNames`` (the de-facto
  convention Blender's and three.js's exporters write and three.js's ``GLTFLoader`` reads);
* one animation ``facewire`` with two LINEAR samplers sharing one input (frame times in seconds,
  float32, from 0): the morph weights (``path: "weights"``, 52 per keyframe, frame-major) and the
  head rotation (``path: "rotation"``, a unit quaternion per keyframe) — both on the ``Head`` node.

Axes: glTF is right-handed, +Y up, +Z out of the asset's front, metres. That is exactly facewire's
camera frame (`facewire.frame.HeadPose`: x to the image's right, y up, z towards the viewer) with
the face looking at the camera, so `HeadPose.quaternion` is written unchanged: positive yaw turns
the nose to +X, positive pitch raises it. The head pivots about the node's origin, at the bottom
of the mesh (roughly the neck). Head translation and gaze are not written.

Until facewire has an avatar the mesh is `procedural_head`: an ellipsoid with a nose whose 52
targets each move their own region (jawOpen drops the lower face, eyeBlinkLeft closes the upper
lid of the subject's left eye, at +X, mouthSmileLeft lifts that mouth corner, …). A writer takes any
`MorphMesh` instead.

What the core format cannot hold exactly rides in ``animations[0].extras.facewire`` (version 1):
the integer media times (``t0_ns`` plus ``fps`` when the frames are evenly spaced at that rate,
else the whole ``t_ns`` list), and the indices of ``untracked`` frames (written as neutral weights
and no rotation). Weights are stored as float32, so they round-trip exactly; raw values outside
[0, 1] kept in ``extras`` (``unclipped.<name>``) are written as they came. The rotation round-trips
to float32 precision. Only faces numbered ``face`` (default 0) are written: one head per file.

The reader takes any ``.glb`` whose mesh names its targets: it finds the mesh whose
``targetNames`` hold ARKit names (camelCase or PascalCase; others are skipped with one warning),
the animation channel driving that mesh's weights, and a rotation channel on the same node (or on
a node named ``Head``). Frames are the weights sampler's keyframes; a file without facewire's
extras gets times rounded from the float32 seconds. The weights are read straight from the file
(memory-mapped), so a long take is not loaded at once.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import math
import mmap
import os
import struct
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

import numpy as np

from .. import arkit
from ..atomic import STDIO
from ..errors import InputError, OutputError
from ..frame import FaceFrame, HeadPose
from ._document import DocumentWriter
from ._extras import split_unclipped, unclipped_weights
from ._files import arkit_columns, is_arkit_name, readable_take
from ._timing import FpsMeter

__all__ = ["SUFFIXES", "GltfWriter", "MorphMesh", "procedural_head", "quaternion_to_euler", "read_gltf"]

SUFFIXES = (".glb",)

GLB_MAGIC = 0x46546C67  # b"glTF" little-endian
GLB_VERSION = 2
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
EXTRAS_KEY = "facewire"
EXTRAS_VERSION = 1

_FLOAT, _UNSIGNED_SHORT, _UNSIGNED_INT = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_COMPONENTS = {  # componentType -> (numpy dtype, divisor of a normalized value, lower clamp)
    5120: (np.dtype("<i1"), 127.0, -1.0),
    5121: (np.dtype("<u1"), 255.0, 0.0),
    5122: (np.dtype("<i2"), 32767.0, -1.0),
    5123: (np.dtype("<u2"), 65535.0, 0.0),
    5125: (np.dtype("<u4"), None, 0.0),
    5126: (np.dtype("<f4"), None, None),
}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_SKIN = [0.87, 0.68, 0.58, 1.0]


# -- the mesh ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MorphMesh:
    """A triangle mesh with named morph targets, in glTF's axes (metres, +Y up, +Z front).

    ``positions``/``normals``: float32 (V, 3); ``indices``: (3T,) counter-clockwise triangles;
    ``targets``: float32 (K, V, 3) position displacements, one per name in ``names``.
    """

    positions: np.ndarray
    normals: np.ndarray
    indices: np.ndarray
    targets: np.ndarray
    names: tuple[str, ...]
    name: str = "Face"

    def __post_init__(self) -> None:
        v = self.positions.shape[0]
        if self.positions.shape != (v, 3) or self.normals.shape != (v, 3):
            raise InputError(f"mesh: expected positions and normals of shape V×3, got {self.positions.shape} "
                             f"and {self.normals.shape}")
        if self.targets.shape != (len(self.names), v, 3):
            raise InputError(f"mesh targets: expected shape {len(self.names)}×{v}×3, got "
                             f"{'×'.join(map(str, self.targets.shape))}")
        if self.indices.ndim != 1 or self.indices.size % 3 or self.indices.max(initial=0) >= v:
            raise InputError(f"mesh indices: expected 3T indices below {v}")


def _vertex_normals(positions: np.ndarray, indices: np.ndarray) -> np.ndarray:
    tri = indices.reshape(-1, 3)
    a, b, c = (positions[tri[:, k]] for k in range(3))
    face = np.cross(b - a, c - a)  # length = twice the area: larger triangles weigh more
    normals = np.zeros_like(positions)
    for k in range(3):
        np.add.at(normals, tri[:, k], face)
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)


@functools.lru_cache(maxsize=1)
def procedural_head(segments: int = 36, rings: int = 26) -> MorphMesh:
    """facewire's stand-in head: an ellipsoid (15 × 21 × 19 cm) with a nose, facing +Z, and 52
    ARKit morph targets, each a smooth displacement of its own region. The subject's left is +X."""
    # Unit sphere: a pole at the top and bottom, ``rings - 1`` rings of ``segments`` vertices.
    theta = np.linspace(0.0, math.pi, rings + 1)[1:-1]
    phi = np.arange(segments) * (2 * math.pi / segments)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1).reshape(-1, 3)
    unit = np.concatenate([[[0.0, 1.0, 0.0]], ring, [[0.0, -1.0, 0.0]]])
    top, bottom = 0, len(unit) - 1
    tris: list[tuple[int, int, int]] = []

    def at(r: int, j: int) -> int:
        return 1 + r * segments + j % segments

    for j in range(segments):
        tris.append((top, at(0, j), at(0, j + 1)))
        tris.append((bottom, at(rings - 2, j + 1), at(rings - 2, j)))
        for r in range(rings - 2):
            tris.append((at(r, j), at(r + 1, j), at(r, j + 1)))
            tris.append((at(r, j + 1), at(r + 1, j), at(r + 1, j + 1)))
    tri = np.array(tris, dtype=np.int64)
    # Counter-clockwise seen from outside, whichever way the loops above turned.
    a, b, c = unit[tri[:, 0]], unit[tri[:, 1]], unit[tri[:, 2]]
    inward = np.einsum("ij,ij->i", np.cross(b - a, c - a), a + b + c) < 0
    tri[inward] = tri[inward][:, ::-1]

    u, v, front = unit[:, 0], unit[:, 1], unit[:, 2]
    facing = np.clip((front - 0.15) / 0.35, 0.0, 1.0)  # 0 on the back and sides, 1 on the face

    def region(u0: float, v0: float, sigma: float) -> np.ndarray:
        return np.exp(-((u - u0) ** 2 + (v - v0) ** 2) / (2 * sigma**2)) * facing

    axes = np.array([0.075, 0.105, 0.095])
    base = unit * axes
    base[:, 0] *= 1.0 - 0.2 * np.minimum(v, 0.0) ** 2  # narrower jaw and chin
    base[:, 2] += 0.024 * region(0.0, -0.05, 0.09) - 0.006 * (region(0.36, 0.22, 0.1) + region(-0.36, 0.22, 0.1))
    base[:, 2] += 0.006 * region(0.0, -0.42, 0.12)  # lips
    base[:, 1] += 0.11  # the node's origin, the pivot, is near the neck
    indices = tri.reshape(-1).astype(np.uint16 if len(unit) < 65536 else np.uint32)
    normals = _vertex_normals(base, indices)

    jaw = np.clip((-0.38 - v) / 0.2, 0.0, 1.0) * np.clip((front + 0.2) / 0.5, 0.0, 1.0)  # below the upper lip
    lips = region(0.0, -0.42, 0.16)
    d: dict[str, np.ndarray] = {}

    def move(weight: np.ndarray, x: float, y: float, z: float) -> np.ndarray:
        return weight[:, None] * np.array([x, y, z])

    for side, s in (("Left", 1.0), ("Right", -1.0)):
        eye = (s * 0.36, 0.22)
        d[f"eyeBlink{side}"] = move(region(eye[0], eye[1] + 0.05, 0.08), 0, -0.010, -0.002)
        d[f"eyeLookDown{side}"] = move(region(*eye, 0.07), 0, -0.004, 0)
        d[f"eyeLookIn{side}"] = move(region(*eye, 0.07), -s * 0.004, 0, 0)
        d[f"eyeLookOut{side}"] = move(region(*eye, 0.07), s * 0.004, 0, 0)
        d[f"eyeLookUp{side}"] = move(region(*eye, 0.07), 0, 0.004, 0)
        d[f"eyeSquint{side}"] = move(region(eye[0], eye[1] - 0.06, 0.07), 0, 0.005, 0.001)
        d[f"eyeWide{side}"] = move(region(eye[0], eye[1] + 0.08, 0.08), 0, 0.006, 0.001)
        corner = (s * 0.3, -0.42)
        d[f"mouthSmile{side}"] = move(region(*corner, 0.09), s * 0.004, 0.007, -0.002)
        d[f"mouthFrown{side}"] = move(region(*corner, 0.09), 0, -0.006, 0)
        d[f"mouthDimple{side}"] = move(region(*corner, 0.08), s * 0.002, 0, -0.005)
        d[f"mouthStretch{side}"] = move(region(*corner, 0.1), s * 0.007, -0.002, 0)
        half = region(s * 0.15, -0.42, 0.09)
        d[f"mouthPress{side}"] = half[:, None] * np.stack([0 * v, -(v + 0.42) * 0.03, 0 * v - 0.003], axis=1)
        d[f"mouthLowerDown{side}"] = move(region(s * 0.15, -0.5, 0.08), 0, -0.006, 0)
        d[f"mouthUpperUp{side}"] = move(region(s * 0.15, -0.34, 0.08), 0, 0.006, 0)
        d[f"browDown{side}"] = move(region(s * 0.36, 0.44, 0.12), -s * 0.002, -0.007, 0)
        d[f"browOuterUp{side}"] = move(region(s * 0.55, 0.42, 0.09), 0, 0.007, 0)
        d[f"cheekSquint{side}"] = move(region(s * 0.42, -0.02, 0.1), 0, 0.005, 0.001)
        d[f"noseSneer{side}"] = move(region(s * 0.12, 0.0, 0.07), 0, 0.005, 0.002)
    d["jawForward"] = move(jaw, 0, 0, 0.008)
    d["jawLeft"] = move(jaw, 0.008, 0, 0)  # towards the subject's left, +X
    d["jawRight"] = move(jaw, -0.008, 0, 0)
    d["jawOpen"] = move(jaw, 0, -0.02, -0.004)
    d["mouthClose"] = move(region(0, -0.5, 0.08), 0, 0.006, 0) + move(region(0, -0.35, 0.08), 0, -0.003, 0)
    d["mouthFunnel"] = lips[:, None] * np.stack([0 * v, np.sign(v + 0.42) * 0.004, 0 * v + 0.006], axis=1)
    d["mouthPucker"] = lips[:, None] * np.stack([-u * 0.02, 0 * v, 0 * v + 0.008], axis=1)
    d["mouthLeft"] = move(lips, 0.007, 0, 0)
    d["mouthRight"] = move(lips, -0.007, 0, 0)
    d["mouthRollLower"] = move(region(0, -0.49, 0.08), 0, 0.002, -0.006)
    d["mouthRollUpper"] = move(region(0, -0.36, 0.08), 0, -0.002, -0.006)
    d["mouthShrugLower"] = move(region(0, -0.5, 0.1), 0, 0.005, 0.002)
    d["mouthShrugUpper"] = move(region(0, -0.35, 0.1), 0, 0.005, 0.001)
    d["browInnerUp"] = move(region(0.14, 0.42, 0.08) + region(-0.14, 0.42, 0.08), 0, 0.007, 0)
    d["cheekPuff"] = (region(0.45, -0.25, 0.14) + region(-0.45, -0.25, 0.14))[:, None] * unit * 0.01  # outwards
    d["tongueOut"] = move(region(0, -0.46, 0.05), 0, -0.004, 0.015)

    targets = np.stack([d[name] for name in arkit.NAMES]).astype(np.float32)
    targets[np.abs(targets) < 1e-6] = 0.0  # exact zeros outside each region
    return MorphMesh(base.astype(np.float32), normals.astype(np.float32), indices, targets, arkit.NAMES)


# -- rotations -----------------------------------------------------------------------------------
def quaternion_to_euler(x: float, y: float, z: float, w: float) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees of a quaternion, inverse of `HeadPose.quaternion`
    (R = Ry(yaw)·Rx(−pitch)·Rz(roll)); pitch is in [−90, 90]."""
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not n > 0 or not math.isfinite(n):
        raise InputError(f"rotation: expected a non-zero quaternion, got ({x}, {y}, {z}, {w})")
    x, y, z, w = x / n, y / n, z / n, w / n
    r02 = 2 * (x * z + w * y)
    r22 = 1 - 2 * (x * x + y * y)
    r12 = 2 * (y * z - w * x)
    r10 = 2 * (x * y + w * z)
    r11 = 1 - 2 * (x * x + z * z)
    b = math.asin(max(-1.0, min(1.0, -r12)))  # b = −pitch
    return math.degrees(math.atan2(r02, r22)), -math.degrees(b), math.degrees(math.atan2(r10, r11))


# -- writing -------------------------------------------------------------------------------------
class _Bin:
    """The BIN chunk being laid out: 4-byte aligned pieces, each one bufferView."""

    def __init__(self) -> None:
        self.pieces: list[tuple[int, Any]] = []  # (length, bytes or a spooled file)
        self.views: list[dict[str, Any]] = []
        self.length = 0

    def add(self, data: Any, length: int, target: int | None = None) -> int:
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.length, "byteLength": length}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        self.pieces.append((length, data))
        self.length += length + (-length % 4)
        return len(self.views) - 1

    def write(self, out: IO[bytes]) -> None:
        for length, data in self.pieces:
            if isinstance(data, (bytes, bytearray, memoryview)):
                out.write(data)
            else:
                data.seek(0)
                while chunk := data.read(1 << 20):
                    out.write(chunk)
            out.write(b"\0" * (-length % 4))


def _accessor(accessors: list[dict[str, Any]], view: int, count: int, kind: str, component: int = _FLOAT,
              values: np.ndarray | None = None) -> int:
    acc: dict[str, Any] = {"bufferView": view, "componentType": component, "count": count, "type": kind}
    if values is not None:  # min/max exactly as float32 reads them back
        acc["min"] = [float(x) for x in values.min(axis=0).reshape(-1)]
        acc["max"] = [float(x) for x in values.max(axis=0).reshape(-1)]
    accessors.append(acc)
    return len(accessors) - 1


def _exact_rate(t_ns: np.ndarray, fps: float) -> bool:
    """Whether every time is ``t_ns[0] + frame_time_ns(i, fps)`` (so fps + t0 rebuild them exactly)."""
    rate = Fraction(fps).limit_denominator(1_000_000)
    num, den = rate.numerator, rate.denominator
    t0 = int(t_ns[0])
    for i, t in enumerate(t_ns.tolist()):
        q, r = divmod(i * 1_000_000_000 * den, num)
        if 2 * r > num or (2 * r == num and q % 2):  # round half to even, as round(Fraction) does
            q += 1
        if t - t0 != q:
            return False
    return True


class GltfWriter(DocumentWriter):
    """A sink writing a ``.glb`` take: the mesh (default `procedural_head`) and its animation.

    Weights are spooled as they come (memory up to a few MiB, then a temporary file); the file
    appears atomically when the sink closes, and not at all if the ``with`` block ends with an
    exception. Frames must come in increasing time; frames of faces other than ``face`` are skipped.
    """

    def __init__(self, path: str | os.PathLike[str], *, mesh: MorphMesh | None = None, face: int = 0,
                 animation_name: str = "facewire") -> None:
        super().__init__(path)
        self.mesh = mesh
        self.face = int(face)
        self.animation_name = str(animation_name)
        self._t_ns = array("q")
        self._quats = array("f")
        self._untracked: list[int] = []
        self._last_s = np.float32(-1.0)

    binary = True

    def _opened(self) -> None:
        if self.mesh is None:
            self.mesh = procedural_head()
        self._t_ns, self._quats, self._untracked = array("q"), array("f"), []
        self._last_s = np.float32(-1.0)

    def _add(self, frame: FaceFrame, spool: IO[bytes]) -> bool:
        if frame.face != self.face:
            return False
        t0 = self._t_ns[0] if self._t_ns else frame.t_ns
        seconds = np.float32((frame.t_ns - t0) / 1e9)
        if self._t_ns and not seconds > self._last_s:
            previous = self._t_ns[-1]
            why = "after" if frame.t_ns > previous else "not after"
            raise InputError(f"{self.path}: frame {frame.seq} at t_ns={frame.t_ns} is {why} the previous one "
                             f"({previous}) in glTF's float32 seconds; expected strictly increasing times")
        weights = unclipped_weights(frame.weights, frame.extras).astype("<f4")
        if not np.isfinite(weights).all():
            raise InputError(f"{self.path}: frame {frame.seq}: weights must be finite")
        q = np.array(frame.head.quaternion if frame.tracked else (0.0, 0.0, 0.0, 1.0))
        q /= np.linalg.norm(q)
        if self._quats and float(np.dot(q, self._quats[-4:])) < 0:
            q = -q  # the same rotation, on the previous one's side, so that interpolation takes the short way
        spool.write(weights.tobytes())
        if not frame.tracked:
            self._untracked.append(self.frames)
        self._t_ns.append(frame.t_ns)
        self._quats.extend(q.astype(np.float32).tolist())
        self._last_s = seconds
        return True

    def _finish(self, out: IO[bytes], spool: IO[bytes]) -> None:
        mesh = self.mesh
        assert mesh is not None
        n, k = self.frames, len(mesh.names)
        weights_bytes = spool.tell()
        if weights_bytes != n * arkit.COUNT * 4:
            raise OutputError(f"cannot write {self.path}: spooled {weights_bytes} bytes, expected {n * arkit.COUNT * 4}")
        if k != arkit.COUNT:
            raise OutputError(f"cannot write {self.path}: the mesh has {k} targets, expected {arkit.COUNT}")
        order = np.array([arkit.index_of(name) for name in mesh.names], dtype=np.intp)
        if not np.array_equal(order, np.arange(arkit.COUNT)):
            raise OutputError(f"cannot write {self.path}: the mesh's targets must be the ARKit names in ARKit order")

        bin_ = _Bin()
        accessors: list[dict[str, Any]] = []
        pos = np.ascontiguousarray(mesh.positions, dtype="<f4")
        v = len(pos)
        position = _accessor(accessors, bin_.add(pos.tobytes(), pos.nbytes, _ARRAY_BUFFER), v, "VEC3", values=pos)
        nrm = np.ascontiguousarray(mesh.normals, dtype="<f4")
        normal = _accessor(accessors, bin_.add(nrm.tobytes(), nrm.nbytes, _ARRAY_BUFFER), v, "VEC3")
        idx = np.ascontiguousarray(mesh.indices, dtype="<u2" if v < 65536 else "<u4")
        indices = _accessor(accessors, bin_.add(idx.tobytes(), idx.nbytes, _ELEMENT_ARRAY_BUFFER), idx.size,
                            "SCALAR", _UNSIGNED_SHORT if idx.dtype.itemsize == 2 else _UNSIGNED_INT)
        targets = []
        for t in np.ascontiguousarray(mesh.targets, dtype="<f4"):
            view = bin_.add(t.tobytes(), t.nbytes, _ARRAY_BUFFER)
            targets.append({"POSITION": _accessor(accessors, view, v, "VEC3", values=t)})

        doc: dict[str, Any] = {
            "asset": {"version": "2.0", "generator": f"facewire {_version()}"},
            "scene": 0,
            "scenes": [{"name": "facewire", "nodes": [0]}],
            "nodes": [{"name": "Head", "mesh": 0}],
            "materials": [{"name": "Skin", "pbrMetallicRoughness": {
                "baseColorFactor": _SKIN, "metallicFactor": 0.0, "roughnessFactor": 0.6}}],
            "meshes": [{
                "name": mesh.name,
                "primitives": [{"attributes": {"POSITION": position, "NORMAL": normal}, "indices": indices,
                                "material": 0, "targets": targets}],
                "weights": [0.0] * k,
                "extras": {"targetNames": list(mesh.names)},
            }],
            "accessors": accessors,
            "bufferViews": bin_.views,
        }
        if n:
            t_ns = np.frombuffer(self._t_ns, dtype=np.int64)
            times = ((t_ns - t_ns[0]) / 1e9).astype("<f4")
            time_acc = _accessor(accessors, bin_.add(times.tobytes(), times.nbytes), n, "SCALAR",
                                 values=times.reshape(-1, 1))
            weight_acc = _accessor(accessors, bin_.add(spool, weights_bytes), n * k, "SCALAR")
            quats = np.frombuffer(self._quats, dtype=np.float32).astype("<f4")
            rot_acc = _accessor(accessors, bin_.add(quats.tobytes(), quats.nbytes), n, "VEC4")
            extras: dict[str, Any] = {"v": EXTRAS_VERSION, "t0_ns": int(t_ns[0])}
            meter = FpsMeter()
            for t in t_ns[: 1 + 1024].tolist():
                meter.add(t)
            fps = meter.fps(0.0) if n > 1 else 60.0
            if fps and _exact_rate(t_ns, fps):
                extras["fps"] = fps
            else:
                extras["t_ns"] = t_ns.tolist()
            if self._untracked:
                extras["untracked"] = self._untracked
            doc["animations"] = [{
                "name": self.animation_name,
                "samplers": [{"input": time_acc, "output": weight_acc, "interpolation": "LINEAR"},
                             {"input": time_acc, "output": rot_acc, "interpolation": "LINEAR"}],
                "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}},
                             {"sampler": 1, "target": {"node": 0, "path": "rotation"}}],
                "extras": {EXTRAS_KEY: extras},
            }]
        doc["buffers"] = [{"byteLength": bin_.length}]

        text = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
        text += b" " * (-len(text) % 4)
        total = 12 + 8 + len(text) + 8 + bin_.length
        if total >= 1 << 32:
            raise OutputError(f"cannot write {self.path}: {total} bytes is more than a GLB file can hold (4 GiB)")
        out.write(struct.pack("<III", GLB_MAGIC, GLB_VERSION, total))
        out.write(struct.pack("<II", len(text), CHUNK_JSON))
        out.write(text)
        out.write(struct.pack("<II", bin_.length, CHUNK_BIN))
        bin_.write(out)


def _version() -> str:
    from .. import __version__

    return __version__


# -- reading -------------------------------------------------------------------------------------
class _Glb:
    """A parsed GLB: its JSON document and its buffers (the BIN chunk memory-mapped)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._map: mmap.mmap | None = None
        if path == STDIO:
            data: Any = sys.stdin.buffer.read()
        else:
            try:
                self._file = open(path, "rb")  # noqa: SIM115 - kept open for the mmap, closed by close()
                size = os.fstat(self._file.fileno()).st_size
                data = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
                self._map = data if size else None
            except OSError as exc:
                self.close()
                raise InputError(f"cannot read take {path}: {exc.strerror or exc}") from exc
        self.data = memoryview(data)
        try:
            self.doc, self.bin = self._parse()
        except BaseException:
            self.close()
            raise

    def _parse(self) -> tuple[dict[str, Any], memoryview | None]:
        data, path, n = self.data, self.path, len(self.data)
        if n < 12:
            raise InputError(f"{path}: not a glTF binary: {n} bytes, expected a 12-byte header and chunks")
        magic, version, length = struct.unpack_from("<III", data, 0)
        if magic != GLB_MAGIC:
            raise InputError(f"{path}: not a glTF binary: expected magic b'glTF' at byte 0, got {bytes(data[:4])!r}")
        if version != GLB_VERSION:
            raise InputError(f"{path}: expected glTF binary version 2, got {version}")
        if length > n:
            raise InputError(f"{path}: truncated: the header says {length} bytes, the file has {n}")
        pos, chunks = 12, []
        while pos < length:
            if pos + 8 > length:
                raise InputError(f"{path}: truncated chunk header at byte {pos}")
            size, kind = struct.unpack_from("<II", data, pos)
            if pos + 8 + size > length:
                raise InputError(f"{path}: truncated: chunk at byte {pos} needs {size} bytes, {length - pos - 8} remain")
            chunks.append((kind, data[pos + 8 : pos + 8 + size]))
            pos += 8 + size + (-size % 4)
        if not chunks or chunks[0][0] != CHUNK_JSON:
            raise InputError(f"{path}: expected a JSON chunk first")
        try:
            doc = json.loads(bytes(chunks[0][1]).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: the JSON chunk is not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise InputError(f"{path}: the JSON chunk: expected an object, got {type(doc).__name__}")
        version_text = str(doc.get("asset", {}).get("version", "")) if isinstance(doc.get("asset"), dict) else ""
        if not version_text.startswith("2."):
            raise InputError(f"{path}: expected asset.version 2.x, got {version_text or 'none'!r}")
        binary = chunks[1][1] if len(chunks) > 1 and chunks[1][0] == CHUNK_BIN else None
        return doc, binary

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.data.release()
        if self._map is not None:
            with contextlib.suppress(BufferError):
                self._map.close()
        if self._file is not None:
            self._file.close()

    # -- lookups -----------------------------------------------------------------------------------
    def item(self, kind: str, index: Any) -> dict[str, Any]:
        items = self.doc.get(kind)
        if isinstance(index, bool) or not isinstance(index, int) or not isinstance(items, list) \
                or not 0 <= index < len(items) or not isinstance(items[index], dict):
            raise InputError(f"{self.path}: {kind}[{index!r}] does not exist")
        return items[index]

    @functools.cached_property
    def buffers(self) -> list[memoryview]:
        out = []
        for i, buf in enumerate(self.doc.get("buffers") or []):
            uri = buf.get("uri") if isinstance(buf, dict) else None
            if uri is None:
                if i != 0 or self.bin is None:
                    raise InputError(f"{self.path}: buffers[{i}] has no uri and there is no BIN chunk")
                out.append(self.bin)
            elif uri.startswith("data:"):
                try:
                    out.append(memoryview(base64.b64decode(uri.split(",", 1)[1], validate=True)))
                except (IndexError, ValueError):
                    raise InputError(f"{self.path}: buffers[{i}]: not a valid base64 data URI") from None
            else:
                if self.path == STDIO:
                    raise InputError(f"{self.path}: buffers[{i}] names a file ({uri}), which stdin cannot resolve")
                from urllib.parse import unquote

                target = os.path.join(os.path.dirname(os.path.abspath(self.path)), unquote(uri))
                try:
                    with open(target, "rb") as f:
                        out.append(memoryview(f.read()))
                except OSError as exc:
                    raise InputError(f"{self.path}: buffers[{i}] ({uri}): {exc.strerror or exc}") from None
        return out

    def accessor(self, index: Any) -> np.ndarray:
        """An accessor's elements as a (count, width) array (normalized integers as floats)."""
        acc = self.item("accessors", index)
        where = f"{self.path}: accessors[{index}]"
        try:
            dtype, divisor, low = _COMPONENTS[acc["componentType"]]
            width = _WIDTH[acc["type"]]
            count = int(acc["count"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: expected componentType, type and count as glTF defines them") from None
        if count < 0:
            raise InputError(f"{where}: count must not be negative")
        if "bufferView" in acc:
            out = self._view_elements(acc["bufferView"], int(acc.get("byteOffset", 0)), dtype, width, count, where)
        else:
            out = np.zeros((count, width), dtype=dtype)
        sparse = acc.get("sparse")
        if isinstance(sparse, dict):
            out = np.array(out)
            try:
                n, ind, val = int(sparse["count"]), sparse["indices"], sparse["values"]
                idx_dtype = _COMPONENTS[ind["componentType"]][0]
                rows = self._view_elements(ind["bufferView"], int(ind.get("byteOffset", 0)), idx_dtype, 1, n, where)
                vals = self._view_elements(val["bufferView"], int(val.get("byteOffset", 0)), dtype, width, n, where)
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{where}: malformed sparse storage") from None
            rows = rows.reshape(-1).astype(np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= count):
                raise InputError(f"{where}: sparse index out of range")
            out[rows] = vals
        if acc.get("normalized") and divisor is not None:
            return np.maximum(out.astype(np.float64) / divisor, low)
        return out

    def _view_elements(self, view_index: Any, offset: int, dtype: np.dtype, width: int, count: int,
                       where: str) -> np.ndarray:
        view = self.item("bufferViews", view_index)
        try:
            buffer = self.buffers[view["buffer"]]
            start = int(view.get("byteOffset", 0)) + offset
            length = int(view["byteLength"])
            stride = int(view.get("byteStride", 0)) or dtype.itemsize * width
        except (KeyError, TypeError, ValueError, IndexError):
            raise InputError(f"{where}: bufferViews[{view_index}] is malformed") from None
        element = dtype.itemsize * width
        need = offset + (stride * (count - 1) + element if count else 0)
        view_start = int(view.get("byteOffset", 0))
        if offset < 0 or start < 0 or need > length or view_start + length > len(buffer):
            raise InputError(f"{where}: needs {need} bytes of bufferViews[{view_index}], which holds {length}"
                             f" (or runs past its buffer)")
        if count == 0:
            return np.zeros((0, width), dtype=dtype)
        return np.ndarray((count, width), dtype=dtype, buffer=buffer, offset=start, strides=(stride, dtype.itemsize))


def read_gltf(path: str | os.PathLike[str]) -> Iterator[FaceFrame]:
    """Frames from a ``.glb``: the ARKit-named morph weights animation (and head rotation).

    The file is checked for readability at once and parsed when iteration starts. A file that is
    not a GLB, has no mesh naming ARKit targets, or whose animation data does not fit raises
    `InputError` naming the file and what was expected. A mesh with ARKit targets and no animation
    is an empty take.
    """
    path = readable_take(path)
    return _iter_gltf(path)


_Found = tuple[dict[str, Any] | None, int, dict[str, Any] | None, dict[str, Any] | None, list[str]]


def _find_animation(glb: _Glb) -> _Found:
    """(animation, mesh, weights sampler, rotation sampler, target names) of the animated ARKit mesh."""
    doc, path = glb.doc, glb.path
    names_of: dict[int, list[str]] = {}
    for m, mesh in enumerate(doc.get("meshes") or []):
        names = mesh.get("extras", {}).get("targetNames") if isinstance(mesh, dict) and \
            isinstance(mesh.get("extras"), dict) else None
        if isinstance(names, list) and any(is_arkit_name(x) for x in names):
            names_of[m] = names
    if not names_of:
        raise InputError(f"{path}: no mesh names ARKit morph targets (expected meshes[].extras.targetNames "
                         "holding names such as jawOpen)")
    nodes = doc.get("nodes") or []
    node_mesh = {n: node.get("mesh") for n, node in enumerate(nodes) if isinstance(node, dict)}
    best: tuple[dict, int, dict, dict | None] | None = None
    for anim in doc.get("animations") or []:
        samplers, channels = anim.get("samplers") or [], anim.get("channels") or []
        by_node: dict[tuple[int, str], dict] = {}
        for ch in channels:
            target = ch.get("target") if isinstance(ch, dict) else None
            if not isinstance(target, dict) or not isinstance(ch.get("sampler"), int) \
                    or not 0 <= ch["sampler"] < len(samplers):
                continue
            by_node.setdefault((target.get("node"), target.get("path")), samplers[ch["sampler"]])
        for (node, what), sampler in by_node.items():
            if what == "weights" and node_mesh.get(node) in names_of:
                rotation = by_node.get((node, "rotation"))
                if rotation is None:
                    heads = [n for n, nd in enumerate(nodes) if isinstance(nd, dict)
                             and str(nd.get("name", "")).lower() == "head"]
                    rotation = next((by_node[(n, "rotation")] for n in heads if (n, "rotation") in by_node), None)
                found = (anim, node_mesh[node], sampler, rotation)
                if best is None or len(names_of[found[1]]) > len(names_of[best[1]]):
                    best = found
        if best is not None:
            break
    if best is None:
        mesh = next(iter(names_of))
        return None, mesh, None, None, names_of[mesh]
    return best[0], best[1], best[2], best[3], names_of[best[1]]


def _keys(glb: _Glb, sampler: dict[str, Any], width: int, what: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(times, values (keys, width), interpolation) of a sampler; CUBICSPLINE keeps the values."""
    times = glb.accessor(sampler.get("input")).reshape(-1).astype(np.float64)
    interpolation = sampler.get("interpolation", "LINEAR")
    values = glb.accessor(sampler.get("output"))
    flat = values.reshape(-1)
    keys = len(times)
    per_key = 3 * width if interpolation == "CUBICSPLINE" else width
    if flat.size != keys * per_key:
        raise InputError(f"{glb.path}: {what} animation: expected {keys} keyframes × {per_key} values, "
                         f"got {flat.size} values")
    if not np.isfinite(times).all() or (keys > 1 and not (np.diff(times) > 0).all()):
        raise InputError(f"{glb.path}: {what} animation: expected finite, strictly increasing times")
    rows = flat.reshape(keys, per_key)
    if interpolation == "CUBICSPLINE":
        rows = rows[:, width : 2 * width]
    return times, rows, interpolation


def _sample_rotations(times: np.ndarray, key_times: np.ndarray, quats: np.ndarray, interpolation: str) -> np.ndarray:
    """Quaternions at ``times`` (normalized linear interpolation, or the previous key for STEP)."""
    if len(key_times) == len(times) and np.array_equal(key_times, times):
        return quats
    quats = quats.astype(np.float64)
    i = np.clip(np.searchsorted(key_times, times, side="right") - 1, 0, len(key_times) - 1)
    j = np.minimum(i + 1, len(key_times) - 1)
    if interpolation == "STEP":
        return quats[i]
    span = np.where(j > i, key_times[j] - key_times[i], 1.0)
    f = np.clip((times - key_times[i]) / span, 0.0, 1.0)[:, None]
    a, b = quats[i], quats[j]
    b = np.where(np.einsum("ij,ij->i", a, b)[:, None] < 0, -b, b)
    q = a * (1 - f) + b * f
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _iter_gltf(path: str) -> Iterator[FaceFrame]:
    glb = _Glb(path)
    try:
        yield from _frames(glb)
    finally:
        glb.close()


def _frames(glb: _Glb) -> Iterator[FaceFrame]:
    path = glb.path
    anim, mesh_index, sampler, rotation, names = _find_animation(glb)
    mesh = glb.item("meshes", mesh_index)
    primitives = mesh.get("primitives") or [{}]
    count = len(primitives[0].get("targets") or []) if isinstance(primitives[0], dict) else 0
    if len(names) != count:
        raise InputError(f"{path}: meshes[{mesh_index}]: {len(names)} targetNames for {count} morph targets")
    if sampler is None:
        return
    columns, dest = arkit_columns(names, path, "targetNames", "morph target")
    times, rows, _ = _keys(glb, sampler, count, "weights")
    n = len(times)
    quats = None
    if rotation is not None:
        rot_times, rot_values, rot_interp = _keys(glb, rotation, 4, "rotation")
        if len(rot_times):
            quats = _sample_rotations(times, rot_times, rot_values.astype(np.float64), rot_interp)
    extras = _facewire_extras(anim, n)
    t_ns = extras.get("times")
    if t_ns is None:
        t_ns = [round(float(t) * 1e9) for t in times]
    untracked = extras.get("untracked", set())
    cols = np.array(columns, dtype=np.intp)
    target = np.array(dest, dtype=np.intp)
    for i in range(n):
        if i in untracked:
            yield FaceFrame.untracked(t_ns[i], seq=i)
            continue
        values = np.asarray(rows[i], dtype=np.float64)
        if not np.isfinite(values).all():
            raise InputError(f"{path}: weights of keyframe {i}: expected finite numbers")
        full = np.zeros(arkit.COUNT, dtype=np.float64)
        full[target] = values[cols]
        frame_extras: dict[str, float] = {}
        weights = split_unclipped(full, frame_extras)
        head = HeadPose()
        if quats is not None:
            head = HeadPose(*quaternion_to_euler(*(float(c) for c in quats[i])))
        yield FaceFrame(t_ns=t_ns[i], seq=i, weights=weights, head=head, extras=frame_extras)


def _facewire_extras(anim: dict[str, Any] | None, n: int) -> dict[str, Any]:
    """Exact times and untracked frames from the animation's facewire extras, when present and sound."""
    extras = anim.get("extras") if isinstance(anim, dict) else None
    data = extras.get(EXTRAS_KEY) if isinstance(extras, dict) else None
    if isinstance(data, dict) and data.get("v") == EXTRAS_VERSION:
        out: dict[str, Any] = {}
        t0 = data.get("t0_ns")
        if isinstance(data.get("t_ns"), list) and len(data["t_ns"]) == n \
                and all(isinstance(t, int) and not isinstance(t, bool) for t in data["t_ns"]):
            out["times"] = data["t_ns"]
        elif isinstance(t0, int) and isinstance(data.get("fps"), (int, float)) and data["fps"] > 0:
            rate = Fraction(data["fps"]).limit_denominator(1_000_000)
            out["times"] = [t0 + round(Fraction(i * 1_000_000_000) / rate) for i in range(n)]
        untracked = data.get("untracked")
        if isinstance(untracked, list):
            out["untracked"] = {i for i in untracked if isinstance(i, int)}
        return out
    return {}
