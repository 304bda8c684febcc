"""The ARKit-52 blendshape schema: names, canonical order, groups, mirror pairs and mappings.

The canonical order is Apple's documented grouping of ``ARFaceAnchor.BlendShapeLocation``, which is
identical to Unreal's ``EARFaceBlendShape`` enum (0..51) and so to Live Link Face's wire order.
Every other schema maps to this one **by name**, here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

__all__ = [
    "COUNT",
    "GROUPS",
    "INDEX",
    "MEDIAPIPE_NAMES",
    "MIRROR",
    "MIRROR_INDEX",
    "NAMES",
    "from_pascal",
    "index_of",
    "mediapipe_to_arkit",
    "mirror_weights",
    "pascal",
    "weights_of",
]

NAMES: tuple[str, ...] = (
    # Left eye
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    # Right eye
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    # Mouth and jaw
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    # Brows, cheeks, nose
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    # Tongue
    "tongueOut",
)
COUNT = len(NAMES)
INDEX: Mapping[str, int] = MappingProxyType({n: i for i, n in enumerate(NAMES)})


def index_of(name: str) -> int:
    """Index of an ARKit name (camelCase or PascalCase); raises KeyError naming the bad one."""
    key = name if name in INDEX else from_pascal(name)
    try:
        return INDEX[key]
    except KeyError:
        raise KeyError(f"unknown ARKit blendshape name {name!r}") from None


def _group(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in NAMES if n.startswith(prefixes))


GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "eyes": _group(("eye",)),
    "brows": _group(("brow",)),
    "jaw": _group(("jaw",)),
    "mouth": _group(("mouth",)),
    "cheeks": _group(("cheek",)),
    "nose": _group(("nose",)),
    "tongue": _group(("tongue",)),
})


def _mirror_name(name: str) -> str:
    # Swap whole-word Left/Right suffixes; eyeLookIn/Out stay In/Out because they are relative to
    # the nose, so mirroring the face maps eyeLookInLeft to eyeLookInRight.
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return name


MIRROR: Mapping[str, str] = MappingProxyType({n: _mirror_name(n) for n in NAMES})
# jawLeft/jawRight and mouthLeft/mouthRight are motions *towards* a side: mirroring swaps them too,
# which the suffix rule already does.
MIRROR_INDEX = np.array([INDEX[MIRROR[n]] for n in NAMES], dtype=np.intp)
MIRROR_INDEX.flags.writeable = False


def weights_of(**named: float) -> np.ndarray:
    """A float32 ARKit-order vector with the named shapes set and the rest 0: ``weights_of(jawOpen=0.5)``."""
    w = np.zeros(COUNT, np.float32)
    for name, value in named.items():
        w[index_of(name)] = value
    return w


def mirror_weights(weights: np.ndarray) -> np.ndarray:
    """The weights of the mirror-image face (left and right swapped)."""
    return np.asarray(weights)[..., MIRROR_INDEX]


def pascal(name: str) -> str:
    """ARKit camelCase → PascalCase as used by Live Link Face, Perfect Sync and Unreal."""
    return name[:1].upper() + name[1:]


def from_pascal(name: str) -> str:
    """PascalCase → ARKit camelCase."""
    return name[:1].lower() + name[1:]


# MediaPipe FaceLandmarker's 52 categories: `_neutral` then 51 ARKit names alphabetically, no
# tongueOut (mediapipe/tasks/cc/vision/face_landmarker/face_blendshapes_graph.cc).
MEDIAPIPE_NAMES: tuple[str, ...] = ("_neutral",) + tuple(sorted(n for n in NAMES if n != "tongueOut"))

_MP_TO_ARKIT = np.array([INDEX.get(n, -1) for n in MEDIAPIPE_NAMES], dtype=np.intp)


def mediapipe_to_arkit(scores: np.ndarray) -> np.ndarray:
    """Reorder MediaPipe's 52 scores into ARKit order by name (tongueOut = 0, `_neutral` dropped)."""
    scores = np.asarray(scores, dtype=np.float32)
    if scores.shape[-1] != len(MEDIAPIPE_NAMES):
        raise ValueError(f"MediaPipe blendshapes: expected {len(MEDIAPIPE_NAMES)} scores, got {scores.shape[-1]}")
    out = np.zeros(scores.shape[:-1] + (COUNT,), dtype=np.float32)
    keep = _MP_TO_ARKIT >= 0
    out[..., _MP_TO_ARKIT[keep]] = scores[..., keep]
    return out
