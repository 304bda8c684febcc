"""Avatars as binary glTF: write an `AvatarMesh` to ``.glb``, and read any ``.glb``/``.vrm`` whose
morph targets carry ARKit names (Perfect Sync) or whose VRM expressions can stand in for them.

Export: one node ``Head`` with one mesh; one primitive per `Part` (its own PBR metallic-roughness
material), all sharing the vertex accessors and the 52 morph targets (POSITION deltas, sparse where
a target moves few vertices), named in ``mesh.extras.targetNames`` in ARKit order — the convention
three.js's GLTFLoader and Blender read. What glTF has no slot for rides along: the head pivot and
eye centres in ``mesh.extras.facewire``, the head weight and eye membership as the application
attributes ``_HEAD_WEIGHT`` and ``_EYE`` (0 none, 1 left, 2 right).

Import: every triangle primitive of the default scene, placed by its node's world transform, merged
into one mesh. A morph target whose name matches an ARKit name in any case (``jawOpen``,
``JawOpen``, ``eyeBlink_L``) is that shape. Missing shapes fall back through the retarget maps: for
each missing shape, `facewire.retarget.vrm_presets` says which VRM presets that shape alone would
drive and how much, and the same mix of the avatar's VRM expressions (VRM 0.x ``blendShapeMaster``
or VRM 1.0 ``VRMC_vrm.expressions``) becomes its target. VRM 0.x models face −Z and are turned to
face +Z. Textures are not kept: a base-colour texture is sampled once per vertex into vertex colours.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from .. import arkit
from ..atomic import atomic_write
from ..errors import InputError
from ..retarget import VRM_PRESETS, vrm_presets
from .mesh import AvatarMesh, Part

__all__ = ["EXTRAS_KEY", "AvatarReport", "glb_bytes", "read_avatar", "write_glb"]

GLB_MAGIC, GLB_VERSION = 0x46546C67, 2
CHUNK_JSON, CHUNK_BIN = 0x4E4F534A, 0x004E4942
EXTRAS_KEY = "facewire"
_FLOAT, _UINT = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_COMPONENTS = {5120: (np.int8, 127.0), 5121: (np.uint8, 255.0), 5122: (np.int16, 32767.0),
               5123: (np.uint16, 65535.0), 5125: (np.uint32, None), 5126: (np.float32, None)}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}

# VRM 0.x presetName / VRM 1.0 preset key → the retarget map's preset name
_VRM_ALIASES = {
    "a": "A", "aa": "A", "i": "I", "ih": "I", "u": "U", "ou": "U", "e": "E", "ee": "E", "o": "O", "oh": "O",
    "blink": "Blink", "blink_l": "Blink_L", "blinkleft": "Blink_L", "blink_r": "Blink_R", "blinkright": "Blink_R",
    "joy": "Joy", "happy": "Joy", "angry": "Angry", "sorrow": "Sorrow", "sad": "Sorrow", "fun": "Fun",
    "relaxed": "Fun",
}
_VRM1_NAMES = {"A": "aa", "I": "ih", "U": "ou", "E": "ee", "O": "oh", "Blink": "blink", "Blink_L": "blinkLeft",
               "Blink_R": "blinkRight", "Joy": "happy", "Angry": "angry", "Sorrow": "sad", "Fun": "relaxed"}
_ARKIT_LOWER = {n.lower(): n for n in arkit.NAMES}


@dataclass(frozen=True)
class AvatarReport:
    """What an imported avatar offers: ARKit shapes found, shapes made from VRM expressions, gaps."""

    path: str
    source: str  # "arkit", "vrm0", "vrm1", "arkit+vrm0" …
    vertices: int
    triangles: int
    found: tuple[str, ...]  # ARKit shapes with their own morph target
    fallbacks: Mapping[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    # missing shape → ((VRM preset, weight), …) it was built from
    missing: tuple[str, ...] = ()  # no target and no fallback: the shape does nothing
    expressions: tuple[str, ...] = ()  # VRM presets the file has
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The report as text, one fact per line."""
        out = [f"{self.path}: {self.vertices} vertices, {self.triangles} triangles, source {self.source}",
               f"ARKit shapes with their own morph target: {len(self.found)} of {arkit.COUNT}"]
        if self.expressions:
            out.append("VRM expressions: " + ", ".join(self.expressions))
        absent = [n for n in arkit.NAMES if n not in self.found]
        if absent:
            out.append(f"missing: {len(absent)}")
        for name in absent:
            mix = self.fallbacks.get(name)
            how = " + ".join(f"{w:.2f}·{p} ({_VRM1_NAMES[p]})" for p, w in mix) if mix else "no fallback (stays still)"
            out.append(f"  {name} ← {how}")
        out += [f"note: {n}" for n in self.notes]
        return out


# -- export ---------------------------------------------------------------------------------------
class _Bin:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.views: list[dict[str, Any]] = []

    def view(self, data: np.ndarray, target: int | None = None) -> int:
        raw = np.ascontiguousarray(data).tobytes()
        view = {"buffer": 0, "byteOffset": self.size, "byteLength": len(raw)}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        pad = -len(raw) % 4
        self.parts.append(raw + b"\0" * pad)
        self.size += len(raw) + pad
        return len(self.views) - 1


def glb_bytes(mesh: AvatarMesh, *, generator: str = "facewire") -> bytes:
    """The avatar as a glTF 2.0 binary file."""
    b = _Bin()
    accessors: list[dict[str, Any]] = []

    def accessor(data: np.ndarray, kind: str, target: int | None = _ARRAY_BUFFER, bounds: bool = False,
                 component: int = _FLOAT) -> int:
        acc: dict[str, Any] = {"bufferView": b.view(data, target), "componentType": component,
                               "count": len(data), "type": kind}
        if bounds:
            acc["min"] = [float(v) for v in data.min(axis=0)]
            acc["max"] = [float(v) for v in data.max(axis=0)]
        accessors.append(acc)
        return len(accessors) - 1

    n = len(mesh.positions)
    attributes = {"POSITION": accessor(mesh.positions, "VEC3", bounds=True),
                  "NORMAL": accessor(mesh.normals, "VEC3")}
    if mesh.colors is not None:
        attributes["COLOR_0"] = accessor(mesh.colors, "VEC4")
    if mesh.head_weight is not None:
        attributes["_HEAD_WEIGHT"] = accessor(mesh.head_weight.astype(np.float32), "SCALAR")
    eye = np.zeros(n, np.float32)
    for which, idx in enumerate(mesh.eye_vertices, start=1):
        eye[idx] = which
    if eye.any():
        attributes["_EYE"] = accessor(eye, "SCALAR")
    targets = []
    for name in arkit.NAMES:
        delta = mesh.morph_targets.get(name)
        if delta is None:
            delta = np.zeros((n, 3), np.float32)
        moved = np.nonzero(np.any(delta != 0, axis=1))[0].astype(np.uint32)
        bounds = {"min": [float(v) for v in delta.min(axis=0)], "max": [float(v) for v in delta.max(axis=0)]}
        if 0 < len(moved) < 0.6 * n:  # sparse: only the vertices this shape moves
            acc = {"componentType": _FLOAT, "count": n, "type": "VEC3", **bounds,
                   "sparse": {"count": len(moved),
                              "indices": {"bufferView": b.view(moved), "componentType": _UINT},
                              "values": {"bufferView": b.view(delta[moved])}}}
            accessors.append(acc)
            targets.append({"POSITION": len(accessors) - 1})
        elif len(moved) == 0:
            accessors.append({"componentType": _FLOAT, "count": n, "type": "VEC3", "min": [0.0] * 3, "max": [0.0] * 3})
            targets.append({"POSITION": len(accessors) - 1})
        else:
            targets.append({"POSITION": accessor(delta, "VEC3", bounds=True)})
    materials, primitives = [], []
    for part in mesh.parts:
        if not len(part.indices):
            continue
        materials.append({"name": part.name, "pbrMetallicRoughness": {
            "baseColorFactor": [float(c) for c in part.base_color],
            "metallicFactor": float(part.metallic), "roughnessFactor": float(part.roughness)}})
        indices = accessor(part.indices.reshape(-1), "SCALAR", _ELEMENT_ARRAY_BUFFER, component=_UINT)
        primitives.append({"attributes": attributes, "indices": indices, "material": len(materials) - 1,
                           "mode": 4, "targets": targets})
    extras = {"targetNames": list(arkit.NAMES), EXTRAS_KEY: {
        "v": 1, "headPivot": [float(v) for v in mesh.head_pivot],
        "eyeCenters": [[float(v) for v in c] for c in mesh.eye_centers]}}
    doc = {
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": "Head", "mesh": 0}],
        "meshes": [{"name": mesh.name, "primitives": primitives, "weights": [0.0] * arkit.COUNT, "extras": extras}],
        "materials": materials,
        "accessors": accessors,
        "bufferViews": b.views,
        "buffers": [{"byteLength": b.size}],
    }
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary = b"".join(b.parts)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join([struct.pack("<III", GLB_MAGIC, GLB_VERSION, total), struct.pack("<II", len(text), CHUNK_JSON),
                     text, struct.pack("<II", len(binary), CHUNK_BIN), binary])


def write_glb(mesh: AvatarMesh, path: str | os.PathLike[str]) -> None:
    """Write the avatar to ``path`` atomically."""
    data = glb_bytes(mesh)
    with atomic_write(path, "wb") as out:
        out.write(data)


# -- import ---------------------------------------------------------------------------------------
class _Doc:
    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        if len(data) < 20:
            raise InputError(f"{path}: expected a binary glTF (.glb/.vrm), got {len(data)} bytes")
        magic, version, length = struct.unpack_from("<III", data, 0)
        if magic != GLB_MAGIC:
            raise InputError(f"{path}: expected a binary glTF starting with 'glTF', got {data[:4]!r}")
        if version != GLB_VERSION:
            raise InputError(f"{path}: expected glTF binary version 2, got {version}")
        if length > len(data):
            raise InputError(f"{path}: header says {length} bytes, file has {len(data)} (truncated?)")
        json_len, json_type = struct.unpack_from("<II", data, 12)
        if json_type != CHUNK_JSON or 20 + json_len > length:
            raise InputError(f"{path}: expected a JSON chunk of {json_len} bytes after the header")
        try:
            self.json = json.loads(data[20:20 + json_len])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: the JSON chunk is not valid JSON ({exc})") from exc
        if not isinstance(self.json, dict):
            raise InputError(f"{path}: the JSON chunk is not an object")
        self.bin = b""
        at = 20 + json_len
        if at + 8 <= length:
            bin_len, bin_type = struct.unpack_from("<II", data, at)
            if bin_type == CHUNK_BIN:
                if at + 8 + bin_len > length:
                    raise InputError(f"{path}: the BIN chunk says {bin_len} bytes, only {length - at - 8} follow")
                self.bin = data[at + 8:at + 8 + bin_len]

    def list(self, key: str) -> list:
        value = self.json.get(key, [])
        return value if isinstance(value, list) else []

    def item(self, key: str, index: Any) -> dict:
        items = self.list(key)
        if not isinstance(index, int) or not 0 <= index < len(items) or not isinstance(items[index], dict):
            raise InputError(f"{self.path}: {key}[{index}] does not exist")
        return items[index]

    def view_bytes(self, index: int) -> bytes:
        view = self.item("bufferViews", index)
        if view.get("buffer", 0) != 0 or "uri" in self.item("buffers", view.get("buffer", 0)):
            raise InputError(f"{self.path}: bufferViews[{index}] points outside the file (external buffers are not read)")
        start, length = int(view.get("byteOffset", 0)), int(view.get("byteLength", 0))
        if start + length > len(self.bin):
            raise InputError(f"{self.path}: bufferViews[{index}] needs {start + length} bytes, the BIN chunk has {len(self.bin)}")
        return self.bin[start:start + length]

    def _read(self, view_index: int, offset: int, component: int, width: int, count: int,
              stride: int | None = None) -> np.ndarray:
        dtype = np.dtype(_COMPONENTS[component][0]).newbyteorder("<")
        raw = self.view_bytes(view_index)
        elem = dtype.itemsize * width
        stride = stride or elem
        need = offset + stride * (count - 1) + elem if count else 0
        if need > len(raw):
            raise InputError(f"{self.path}: an accessor needs {need} bytes of bufferViews[{view_index}], which holds {len(raw)}")
        if stride == elem:
            return np.frombuffer(raw, dtype, count * width, offset).reshape(count, width)
        buf = np.frombuffer(raw, np.uint8)[offset:]
        rows = np.lib.stride_tricks.as_strided(buf, (count, elem), (stride, 1), writeable=False)
        return np.ascontiguousarray(rows).view(dtype).reshape(count, width)

    def accessor(self, index: Any) -> np.ndarray:
        acc = self.item("accessors", index)
        component, kind, count = acc.get("componentType"), acc.get("type"), acc.get("count")
        if component not in _COMPONENTS or kind not in _WIDTH or not isinstance(count, int) or count < 0:
            raise InputError(f"{self.path}: accessors[{index}] has an unknown type {kind}/{component} or count")
        width = _WIDTH[kind]
        if "bufferView" in acc:
            view = self.item("bufferViews", acc["bufferView"])
            data = self._read(acc["bufferView"], int(acc.get("byteOffset", 0)), component, width, count,
                              view.get("byteStride"))
        else:
            data = np.zeros((count, width), _COMPONENTS[component][0])
        scale = _COMPONENTS[component][1]
        out = data.astype(np.float64)
        if acc.get("normalized") and scale:
            out = np.maximum(out / scale, -1.0)
        sparse = acc.get("sparse")
        if isinstance(sparse, dict):
            n = int(sparse.get("count", 0))
            ind, val = sparse.get("indices", {}), sparse.get("values", {})
            idx = self._read(ind["bufferView"], int(ind.get("byteOffset", 0)), ind["componentType"], 1, n)[:, 0]
            values = self._read(val["bufferView"], int(val.get("byteOffset", 0)), component, width, n).astype(np.float64)
            if acc.get("normalized") and scale:
                values = np.maximum(values / scale, -1.0)
            if n and int(idx.max()) >= count:
                raise InputError(f"{self.path}: accessors[{index}] sparse index {int(idx.max())} ≥ count {count}")
            out = out.copy()
            out[idx.astype(np.int64)] = values
        if not np.isfinite(out).all():
            raise InputError(f"{self.path}: accessors[{index}] holds NaN or Inf")
        return out


def _node_matrix(node: dict) -> np.ndarray:
    if "matrix" in node:
        return np.array(node["matrix"], float).reshape(4, 4).T
    t = np.array(node.get("translation", [0, 0, 0]), float)
    x, y, z, w = node.get("rotation", [0, 0, 0, 1])
    s = np.array(node.get("scale", [1, 1, 1]), float)
    r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    m = np.eye(4)
    m[:3, :3] = r * s
    m[:3, 3] = t
    return m


def _world(doc: _Doc) -> dict[int, np.ndarray]:
    scenes = doc.list("scenes")
    roots = scenes[doc.json.get("scene", 0)].get("nodes", []) if scenes else list(range(len(doc.list("nodes"))))
    out: dict[int, np.ndarray] = {}
    stack = [(r, np.eye(4)) for r in roots]
    while stack:
        index, parent = stack.pop()
        if index in out:
            continue
        node = doc.item("nodes", index)
        out[index] = parent @ _node_matrix(node)
        stack += [(c, out[index]) for c in node.get("children", [])]
    return out


def _arkit_name(name: str) -> str | None:
    key = re.split(r"[.:|/]", str(name))[-1]
    key = re.sub(r"^(arkit|blendshape\d*|bs)_?", "", key, flags=re.IGNORECASE)
    key = re.sub(r"_L$", "Left", key)
    key = re.sub(r"_R$", "Right", key)
    return _ARKIT_LOWER.get(key.replace("_", "").lower())


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _texture_colours(doc: _Doc, material: dict, uv: np.ndarray | None) -> np.ndarray | None:
    info = material.get("pbrMetallicRoughness", {}).get("baseColorTexture")
    if uv is None or not isinstance(info, dict):
        return None
    try:
        from PIL import Image

        tex = doc.item("textures", info.get("index"))
        source = tex.get("source")
        if source is None:  # e.g. only an extension's image (webp, basisu)
            return None
        image = doc.item("images", source)
        raw = doc.view_bytes(image["bufferView"])
        with Image.open(io.BytesIO(raw)) as im:
            rgba = np.asarray(im.convert("RGBA"), np.float64) / 255.0
    except (InputError, KeyError, OSError, ValueError):
        return None
    h, w = rgba.shape[:2]
    px = np.clip((uv[:, 0] % 1.0) * w, 0, w - 1).astype(int)
    py = np.clip((uv[:, 1] % 1.0) * h, 0, h - 1).astype(int)
    col = rgba[py, px]
    col[:, :3] = _srgb_to_linear(col[:, :3])
    return col


def read_avatar(path: str | os.PathLike[str]) -> tuple[AvatarMesh, AvatarReport]:
    """Load a ``.glb``/``.vrm`` avatar; raises `InputError` when it is no glTF or has nothing to drive."""
    label = os.fspath(path)
    try:
        with open(label, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InputError(f"cannot read avatar {label}: {exc.strerror or exc}") from exc
    doc = _Doc(label, data)
    ext = doc.json.get("extensions", {}) if isinstance(doc.json.get("extensions"), dict) else {}
    vrm0, vrm1 = ext.get("VRM"), ext.get("VRMC_vrm")
    world = _world(doc)
    flip = np.diag([-1.0, 1.0, -1.0, 1.0]) if isinstance(vrm0, dict) else np.eye(4)

    positions, normals, colours, weights_head = [], [], [], []
    parts: dict[str, list[np.ndarray]] = {}
    part_style: dict[str, tuple] = {}
    named: dict[str, list[tuple[int, np.ndarray]]] = {}  # ARKit name → (vertex start, deltas)
    by_bind: dict[tuple[str, int, int], list[tuple[int, np.ndarray]]] = {}  # ("mesh"/"node", i, target)
    total_targets = 0
    eye_nodes = _eye_nodes(doc, vrm0, vrm1)
    eye_lists: list[list[np.ndarray]] = [[], []]
    offset = 0
    shared: dict[tuple, tuple[int, int]] = {}
    extras_own: dict | None = None
    for node_index, matrix in sorted(world.items()):
        node = doc.item("nodes", node_index)
        if "mesh" not in node:
            continue
        m = flip @ matrix
        lin = m[:3, :3]
        normal_m = np.linalg.inv(lin).T if abs(np.linalg.det(lin)) > 1e-12 else lin
        mesh_index = node["mesh"]
        gmesh = doc.item("meshes", mesh_index)
        mesh_names = (gmesh.get("extras") or {}).get("targetNames") if isinstance(gmesh.get("extras"), dict) else None
        for prim in gmesh.get("primitives", []):
            if prim.get("mode", 4) != 4 or "POSITION" not in prim.get("attributes", {}):
                continue
            attrs = prim["attributes"]
            shared_key = (node_index, json.dumps(attrs, sort_keys=True), json.dumps(prim.get("targets", [])))
            if shared_key in shared:  # primitives sharing one vertex set (one per material): add triangles only
                start, n = shared[shared_key]
                idx = doc.accessor(prim["indices"])[:, 0].astype(np.int64) if "indices" in prim else np.arange(n)
                if len(idx) % 3 or (len(idx) and (idx.max() >= n or idx.min() < 0)):
                    raise InputError(f"{label}: a primitive of mesh {mesh_index} has bad triangle indices")
                material = doc.item("materials", prim["material"]) if "material" in prim else {}
                _add_part(parts, part_style, material, prim, idx.reshape(-1, 3) + start)
                continue
            pos = doc.accessor(attrs["POSITION"])
            n = len(pos)
            shared[shared_key] = (offset, n)
            world_pos = pos @ m[:3, :3].T + m[:3, 3]
            if "NORMAL" in attrs:
                nrm = doc.accessor(attrs["NORMAL"]) @ normal_m.T
            else:
                nrm = np.zeros_like(pos)
            idx = doc.accessor(prim["indices"])[:, 0].astype(np.int64) if "indices" in prim else np.arange(n)
            if len(idx) % 3 or (len(idx) and (idx.max() >= n or idx.min() < 0)):
                raise InputError(f"{label}: a primitive of mesh {mesh_index} has bad triangle indices")
            tri = idx.reshape(-1, 3)
            if "NORMAL" not in attrs:
                nrm = _normals(world_pos, tri)
            material = doc.item("materials", prim["material"]) if "material" in prim else {}
            col = np.ones((n, 4))
            if "COLOR_0" in attrs:
                c = doc.accessor(attrs["COLOR_0"])
                col[:, :c.shape[1]] = c
            uv = doc.accessor(attrs["TEXCOORD_0"])[:, :2] if "TEXCOORD_0" in attrs else None
            tex = _texture_colours(doc, material, uv)
            if tex is not None:
                col *= tex
            _add_part(parts, part_style, material, prim, tri + offset)
            names = (prim.get("extras") or {}).get("targetNames") or mesh_names or []
            for t, target in enumerate(prim.get("targets", [])):
                total_targets += 1
                if "POSITION" not in target:
                    continue
                delta = doc.accessor(target["POSITION"]) @ lin.T
                if len(delta) != n:
                    raise InputError(f"{label}: mesh {mesh_index} morph target {t} has {len(delta)} rows, expected {n}")
                key = _arkit_name(names[t]) if t < len(names) else None
                if key:
                    named.setdefault(key, []).append((offset, delta))
                by_bind.setdefault(("mesh", mesh_index, t), []).append((offset, delta))
                by_bind.setdefault(("node", node_index, t), []).append((offset, delta))
            eye_w = _joint_weights(doc, node, attrs, eye_nodes, n)
            if "_EYE" in attrs:  # facewire's own export
                tag = doc.accessor(attrs["_EYE"])[:, 0]
                eye_w = [tag == 1, tag == 2]
            for k in range(2):
                if eye_w is not None:
                    eye_lists[k].append(np.nonzero(eye_w[k] > 0.5)[0] + offset)
            head_w = doc.accessor(attrs["_HEAD_WEIGHT"])[:, 0] if "_HEAD_WEIGHT" in attrs else np.ones(n)
            weights_head.append(head_w)
            own = (gmesh.get("extras") or {}).get(EXTRAS_KEY) if isinstance(gmesh.get("extras"), dict) else None
            if isinstance(own, dict):
                extras_own = own
            positions.append(world_pos)
            normals.append(nrm)
            colours.append(col)
            offset += n
    if not positions:
        raise InputError(f"{label}: no triangle meshes found")
    pos = np.vstack(positions)
    n_all = len(pos)
    if total_targets == 0:
        raise InputError(f"{label}: no morph targets; an avatar needs ARKit-named morph targets (Perfect Sync) "
                         f"or VRM expressions")

    def dense(items: list[tuple[int, np.ndarray]]) -> np.ndarray:
        out = np.zeros((n_all, 3))
        for start, delta in items:
            out[start:start + len(delta)] += delta
        return out

    targets = {name: dense(items) for name, items in named.items()}
    presets = _vrm_expressions(doc, vrm0, vrm1, by_bind, dense)
    fallbacks: dict[str, tuple[tuple[str, float], ...]] = {}
    missing = []
    for name in arkit.NAMES:
        if name in targets:
            continue
        unit = np.zeros(arkit.COUNT, np.float32)
        unit[arkit.INDEX[name]] = 1.0
        mix = tuple((p, round(w, 4)) for p, w in vrm_presets(unit).items() if w > 0 and p in presets)
        if mix:
            fallbacks[name] = mix
            targets[name] = sum(w * presets[p] for p, w in mix)
        else:
            missing.append(name)
    if not named and not fallbacks:
        raise InputError(f"{label}: none of its {total_targets} morph targets has an ARKit name (e.g. 'jawOpen') "
                         f"and it has no VRM expressions to fall back on")
    nrm = np.vstack(normals)
    length = np.linalg.norm(nrm, axis=1, keepdims=True)
    nrm = np.where(length > 1e-12, nrm / np.maximum(length, 1e-12), [0.0, 0.0, 1.0])
    source = "+".join(s for s, ok in (("arkit", bool(named)), ("vrm0", isinstance(vrm0, dict)),
                                      ("vrm1", isinstance(vrm1, dict))) if ok)
    eyes = tuple(np.concatenate(e) if e else np.zeros(0, np.int64) for e in eye_lists)
    centres = []
    for k, e in enumerate(eyes):
        node = eye_nodes[k]
        if node is not None and node in world:
            centres.append(tuple(float(v) for v in (flip @ world[node])[:3, 3]))
        elif len(e):
            centres.append(tuple(float(v) for v in pos[e].mean(axis=0)))
        else:
            centres.append((0.03 * (1 if k == 0 else -1), float(pos[:, 1].max() - 0.1), 0.0))
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    pivot = (float((lo[0] + hi[0]) / 2), float(lo[1]), float((lo[2] + hi[2]) / 2))
    try:
        if extras_own is not None:
            pivot = tuple(float(v) for v in extras_own["headPivot"])
            centres = [tuple(float(v) for v in c) for c in extras_own["eyeCenters"]]
    except (KeyError, TypeError, ValueError):
        pass
    mesh = AvatarMesh(
        name=os.path.splitext(os.path.basename(label))[0],
        positions=pos,
        normals=nrm,
        parts=tuple(Part(name, np.vstack(tris), *part_style[name]) for name, tris in parts.items()),
        morph_targets=targets,
        colors=np.clip(np.vstack(colours), 0, 1),
        head_pivot=pivot,
        head_weight=np.concatenate(weights_head),
        eye_centers=(centres[0], centres[1]),
        eye_vertices=eyes,
    )
    notes = []
    if doc.list("skins"):
        notes.append("skinned mesh read in its bind pose (bones are not used)")
    if doc.list("textures"):
        notes.append("textures sampled once per vertex into vertex colours")
    report = AvatarReport(path=label, source=source or "glTF", vertices=n_all,
                          triangles=sum(len(t) for p in parts.values() for t in p), found=tuple(
                              n for n in arkit.NAMES if n in named),
                          fallbacks=MappingProxyType(fallbacks), missing=tuple(missing),
                          expressions=tuple(p for p in VRM_PRESETS if p in presets), notes=tuple(notes))
    return mesh, report


def _add_part(parts: dict, style: dict, material: dict, prim: dict, tri: np.ndarray) -> None:
    name = str(material.get("name") or f"material{prim.get('material', 0)}")
    pbr = material.get("pbrMetallicRoughness", {})
    parts.setdefault(name, []).append(tri)
    style[name] = (tuple(float(v) for v in pbr.get("baseColorFactor", [1, 1, 1, 1])),
                   float(pbr.get("roughnessFactor", 1.0)), float(pbr.get("metallicFactor", 1.0)))


def _eye_nodes(doc: _Doc, vrm0: Any, vrm1: Any) -> list[int | None]:
    found: list[int | None] = [None, None]
    try:
        if isinstance(vrm1, dict):
            bones = vrm1.get("humanoid", {}).get("humanBones", {})
            for k, bone in enumerate(("leftEye", "rightEye")):
                if isinstance(bones.get(bone), dict):
                    found[k] = bones[bone].get("node")
        elif isinstance(vrm0, dict):
            for bone in vrm0.get("humanoid", {}).get("humanBones", []):
                if bone.get("bone") in ("leftEye", "rightEye"):
                    found[0 if bone["bone"] == "leftEye" else 1] = bone.get("node")
    except AttributeError:
        pass
    return found


def _joint_weights(doc: _Doc, node: dict, attrs: dict, eye_nodes: list[int | None], n: int) -> list | None:
    """Per vertex, the skin weight each eye bone has on it (None without a skin or eye bones)."""
    if "skin" not in node or "JOINTS_0" not in attrs or "WEIGHTS_0" not in attrs or eye_nodes == [None, None]:
        return None
    joints = doc.item("skins", node["skin"]).get("joints", [])
    j = doc.accessor(attrs["JOINTS_0"]).astype(np.int64)
    w = doc.accessor(attrs["WEIGHTS_0"])
    out = []
    for eye in eye_nodes:
        if eye is None or eye not in joints:
            out.append(np.zeros(n))
            continue
        slot = joints.index(eye)
        out.append((w * (j == slot)).sum(axis=1))
    return out


def _vrm_expressions(doc: _Doc, vrm0: Any, vrm1: Any, by_bind: dict, dense) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    try:
        if isinstance(vrm1, dict):
            for key, expr in (vrm1.get("expressions", {}).get("preset", {}) or {}).items():
                preset = _VRM_ALIASES.get(str(key).lower())
                if preset and isinstance(expr, dict):
                    items = [(s, float(b.get("weight", 1.0)) * d)
                             for b in expr.get("morphTargetBinds", [])
                             for s, d in by_bind.get(("node", b.get("node"), b.get("index")), [])]
                    if items:
                        out[preset] = dense(items)
        if isinstance(vrm0, dict):
            for group in vrm0.get("blendShapeMaster", {}).get("blendShapeGroups", []):
                preset = _VRM_ALIASES.get(str(group.get("presetName", "")).lower())
                if preset and preset not in out:
                    items = [(s, float(b.get("weight", 100.0)) / 100.0 * d)
                             for b in group.get("binds", [])
                             for s, d in by_bind.get(("mesh", b.get("mesh"), b.get("index")), [])]
                    if items:
                        out[preset] = dense(items)
    except (AttributeError, TypeError) as exc:
        raise InputError(f"{doc.path}: malformed VRM expressions ({exc})") from exc
    return out


def _normals(pos: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = pos[tri[:, 0]], pos[tri[:, 1]], pos[tri[:, 2]]
    face = np.cross(b - a, c - a)
    n = np.zeros_like(pos)
    for k in range(3):
        np.add.at(n, tri[:, k], face)
    return n
