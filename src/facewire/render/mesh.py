"""The avatar as the renderer and the glTF exporter see it: one triangle mesh with material parts,
ARKit-named morph targets, and the pivots that head pose and gaze rotate about.

Coordinates follow glTF: metres, +Y up, +X to the avatar's left (the viewer's right when it faces
the camera), +Z out of the face towards the viewer. Every array is read-only after construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .. import arkit
from ..errors import InputError

__all__ = ["AvatarMesh", "Part"]


def _frozen(a, dtype, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        raise InputError(f"{what}: expected shape (N, {', '.join(map(str, shape_tail))}), got {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"{what}: contains NaN or Inf")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class Part:
    """One material group of triangles (skin, eye white, iris, teeth, tongue, mouth interior…)."""

    name: str
    indices: np.ndarray  # (M, 3) uint32 into AvatarMesh.positions
    base_color: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)  # linear RGBA
    roughness: float = 0.6
    metallic: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "indices", _frozen(self.indices, np.uint32, (3,), f"part {self.name!r} indices"))


@dataclass(frozen=True)
class AvatarMesh:
    """A head with ARKit morph targets (position deltas, same vertex order as ``positions``)."""

    name: str
    positions: np.ndarray  # (N, 3) float32
    normals: np.ndarray  # (N, 3) float32, unit length
    parts: tuple[Part, ...]
    morph_targets: Mapping[str, np.ndarray]  # ARKit name -> (N, 3) float32 deltas
    colors: np.ndarray | None = None  # (N, 4) float32 linear RGBA, multiplies the part's base colour
    head_pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)  # head pose rotates about this point
    head_weight: np.ndarray | None = None  # (N,) 0..1: how much of the head rotation a vertex follows
    eye_centers: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.03, 0.0, 0.0), (-0.03, 0.0, 0.0))
    eye_vertices: tuple[np.ndarray, np.ndarray] = field(default=(np.zeros(0, np.uint32), np.zeros(0, np.uint32)))
    # (left, right): eye centres and the vertex indices each eyeball's gaze rotates (left = avatar's left)

    def __post_init__(self) -> None:
        pos = _frozen(self.positions, np.float32, (3,), "positions")
        n = len(pos)
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "normals", _frozen(self.normals, np.float32, (3,), "normals"))
        if len(self.normals) != n:
            raise InputError(f"normals: expected {n} rows, got {len(self.normals)}")
        if self.colors is not None:
            object.__setattr__(self, "colors", _frozen(self.colors, np.float32, (4,), "colors"))
        if self.head_weight is not None:
            w = np.array(self.head_weight, np.float32)
            if w.shape != (n,):
                raise InputError(f"head_weight: expected shape ({n},), got {w.shape}")
            w.flags.writeable = False
            object.__setattr__(self, "head_weight", w)
        targets = {}
        for name, delta in self.morph_targets.items():
            if name not in arkit.INDEX:
                raise InputError(f"morph target {name!r} is not an ARKit blendshape name")
            d = _frozen(delta, np.float32, (3,), f"morph target {name}")
            if len(d) != n:
                raise InputError(f"morph target {name}: expected {n} rows, got {len(d)}")
            targets[name] = d
        object.__setattr__(self, "morph_targets", MappingProxyType(targets))
        eyes = tuple(_frozen(np.asarray(v).reshape(-1, 1), np.uint32, (1,), "eye_vertices")[:, 0] for v in self.eye_vertices)
        object.__setattr__(self, "eye_vertices", eyes)
        for part in self.parts:
            if len(part.indices) and int(part.indices.max()) >= n:
                raise InputError(f"part {part.name!r} refers to vertex {int(part.indices.max())}, mesh has {n}")

    @property
    def missing_shapes(self) -> tuple[str, ...]:
        """ARKit shapes this avatar has no morph target for, in ARKit order."""
        return tuple(name for name in arkit.NAMES if name not in self.morph_targets)
