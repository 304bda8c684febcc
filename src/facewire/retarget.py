"""Other expression schemas computed from the ARKit-52 weights, by name, in one place.

* **VRM presets** (`vrm_presets`): the VRM 0.x ``BlendShapePreset`` clips every VRM model has —
  vowels ``A I U E O``, ``Blink Blink_L Blink_R``, emotions ``Joy Angry Sorrow Fun`` (VRM 1.0 calls
  them aa ih ou ee oh, blink blinkLeft blinkRight, happy angry sad relaxed). They are coarser than
  ARKit, so the mapping is a documented heuristic (see the function), not an identity.
* **VRCFaceTracking Unified Expressions v2** (`unified_expressions`): the base shapes VRCFaceTracking
  fills from ARKit (docs.vrcft.io, "ARKit compatibility"; the Live Link module does the same),
  its "simple" shapes and the combined parameters of ``UnifiedExpressionsParameters.cs`` with their
  ranges (`UNIFIED_RANGES`). `arkit_from_unified` inverts what can be inverted.
* **VRM 1.0 expressions** (`vrm1_expressions`): the 18 preset expressions of the VRM 1.0 spec
  (``VRMC_vrm`` expressions: ``happy angry sad relaxed surprised aa ih ou ee oh blink blinkLeft
  blinkRight lookUp lookDown lookLeft lookRight neutral``), the VRM 0.x heuristics renamed plus
  ``surprised``, the four look directions and ``neutral`` (see the function).
* **OVR visemes** (`ovr_visemes`): the 15 OVRLipSync visemes, from `facewire.mouth`.
* **MetaHuman-style curves** (`metahuman_curves`): ``CTRL_expressions_*`` names in the pattern of
  the MetaHuman face control rig (``CTRL_expressions_jawOpen``, ``CTRL_expressions_eyeBlinkL``).
  This is **facewire's approximation**: no primary source publishing the ARKit → MetaHuman curve
  table was at hand, so the names follow the rig's naming pattern and each curve takes the ARKit
  shape of the same meaning (`METAHUMAN_FROM_ARKIT`); check them against your rig, or write a
  mapping file (`facewire.expression.mapping`) for it.

`SCHEMAS` lists every target schema by name (``vrm0``, ``vrm1``, ``ovr``, ``unified``,
``metahuman``) with its names and a function of the frame, for `mapping.RetargetStage` and
``facewire retarget``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from . import arkit, mouth
from .frame import FaceFrame, Gaze

__all__ = [
    "METAHUMAN_FROM_ARKIT",
    "METAHUMAN_NAMES",
    "OVR_VISEMES",
    "SCHEMAS",
    "UNIFIED_FROM_ARKIT",
    "UNIFIED_NAMES",
    "UNIFIED_RANGES",
    "VRM1_EXPRESSIONS",
    "VRM_PRESETS",
    "Schema",
    "arkit_from_unified",
    "metahuman_curves",
    "ovr_visemes",
    "unified_expressions",
    "vrm1_expressions",
    "vrm_presets",
]

# -- VRM presets -------------------------------------------------------------------------------
VRM_PRESETS: tuple[str, ...] = ("A", "I", "U", "E", "O", "Blink", "Blink_L", "Blink_R", "Joy", "Angry", "Sorrow", "Fun")
"""VRM 0.x preset names as VMC sends them (exact case: receivers since UniVRM 0.56 compare it)."""


def _clip(x: float) -> float:
    return 0.0 if x < 0.0 else min(x, 1.0)


def vrm_presets(weights: np.ndarray) -> dict[str, float]:
    """The 12 VRM presets, each in [0, 1], from the 52 ARKit weights.

    Blink: ``Blink`` = min(eyeBlinkLeft, eyeBlinkRight) and ``Blink_L``/``Blink_R`` the rest of each
    eye, so that a model applying all three closes each eye exactly as far as ARKit says.
    Vowels, from jaw opening ``open``, lip rounding (``mouthFunnel``, ``mouthPucker``) and lip spread
    ``wide`` = max(mean mouthStretch, mean mouthSmile), with ``flat`` = 1 − max(funnel, pucker):
    ``O`` = funnel; ``U`` = pucker·(1 − funnel); ``A`` = open·(1 − wide)·flat;
    ``E`` = open·wide·flat; ``I`` = wide·(1 − open)·min(1, 4·open)·flat (spread lips, teeth almost
    closed; a closed-mouth smile is no vowel). If the five sum past 1 they are scaled to sum to 1.
    Emotions, from ``smile`` = mean mouthSmile and ``cheek`` = mean cheekSquint:
    ``Joy`` = smile·cheek (a full smile raises the cheeks); ``Fun`` = smile·(1 − cheek) (a relaxed
    smile); ``Angry`` = mean browDown·(1 − smile); ``Sorrow`` = (0.6·mean mouthFrown +
    0.4·browInnerUp)·(1 − smile).
    """
    v = np.asarray(weights, dtype=np.float64).tolist()
    idx = arkit.INDEX

    def w(name: str) -> float:
        return v[idx[name]]

    def mean(a: str, b: str) -> float:
        return 0.5 * (v[idx[a]] + v[idx[b]])

    left, right = w("eyeBlinkLeft"), w("eyeBlinkRight")
    both = min(left, right)
    open_, funnel, pucker = w("jawOpen"), w("mouthFunnel"), w("mouthPucker")
    smile = mean("mouthSmileLeft", "mouthSmileRight")
    wide = max(mean("mouthStretchLeft", "mouthStretchRight"), smile)
    flat = 1.0 - max(funnel, pucker)
    vowels = {
        "A": open_ * (1.0 - wide) * flat,
        "I": wide * (1.0 - open_) * min(1.0, 4.0 * open_) * flat,
        "U": pucker * (1.0 - funnel),
        "E": open_ * wide * flat,
        "O": funnel,
    }
    total = sum(vowels.values())
    if total > 1.0:
        vowels = {k: x / total for k, x in vowels.items()}
    cheek = mean("cheekSquintLeft", "cheekSquintRight")
    out = {
        **vowels,
        "Blink": both,
        "Blink_L": left - both,
        "Blink_R": right - both,
        "Joy": smile * cheek,
        "Angry": mean("browDownLeft", "browDownRight") * (1.0 - smile),
        "Sorrow": (0.6 * mean("mouthFrownLeft", "mouthFrownRight") + 0.4 * w("browInnerUp")) * (1.0 - smile),
        "Fun": smile * (1.0 - cheek),
    }
    return {name: _clip(out[name]) for name in VRM_PRESETS}


# -- Unified Expressions v2 --------------------------------------------------------------------
UNIFIED_FROM_ARKIT: tuple[tuple[str, str], ...] = (
    # (Unified Expressions base shape, ARKit source). A "blended" ARKit shape (cheekPuff,
    # mouthFunnel …) sets every Unified shape it covers. mouthLeft/Right are not in VRCFT's table;
    # every VRCFT module sets MouthUpper* = MouthLower* = mouth*. eyeBlink* and eyeLook* become eye
    # openness and gaze (see `unified_expressions`).
    ("EyeSquintRight", "eyeSquintRight"), ("EyeSquintLeft", "eyeSquintLeft"),
    ("EyeWideRight", "eyeWideRight"), ("EyeWideLeft", "eyeWideLeft"),
    ("BrowLowererRight", "browDownRight"), ("BrowLowererLeft", "browDownLeft"),
    ("BrowPinchRight", "browDownRight"), ("BrowPinchLeft", "browDownLeft"),
    ("BrowInnerUpRight", "browInnerUp"), ("BrowInnerUpLeft", "browInnerUp"),
    ("BrowOuterUpRight", "browOuterUpRight"), ("BrowOuterUpLeft", "browOuterUpLeft"),
    ("CheekSquintRight", "cheekSquintRight"), ("CheekSquintLeft", "cheekSquintLeft"),
    ("CheekPuffRight", "cheekPuff"), ("CheekPuffLeft", "cheekPuff"),
    ("JawOpen", "jawOpen"), ("JawRight", "jawRight"), ("JawLeft", "jawLeft"), ("JawForward", "jawForward"),
    ("MouthClosed", "mouthClose"),
    ("LipSuckUpperRight", "mouthRollUpper"), ("LipSuckUpperLeft", "mouthRollUpper"),
    ("LipSuckLowerRight", "mouthRollLower"), ("LipSuckLowerLeft", "mouthRollLower"),
    ("LipFunnelUpperRight", "mouthFunnel"), ("LipFunnelUpperLeft", "mouthFunnel"),
    ("LipFunnelLowerRight", "mouthFunnel"), ("LipFunnelLowerLeft", "mouthFunnel"),
    ("LipPuckerUpperRight", "mouthPucker"), ("LipPuckerUpperLeft", "mouthPucker"),
    ("LipPuckerLowerRight", "mouthPucker"), ("LipPuckerLowerLeft", "mouthPucker"),
    ("MouthUpperUpRight", "mouthUpperUpRight"), ("MouthUpperUpLeft", "mouthUpperUpLeft"),
    ("NoseSneerRight", "noseSneerRight"), ("NoseSneerLeft", "noseSneerLeft"),
    ("MouthLowerDownRight", "mouthLowerDownRight"), ("MouthLowerDownLeft", "mouthLowerDownLeft"),
    ("MouthUpperRight", "mouthRight"), ("MouthUpperLeft", "mouthLeft"),
    ("MouthLowerRight", "mouthRight"), ("MouthLowerLeft", "mouthLeft"),
    ("MouthCornerPullRight", "mouthSmileRight"), ("MouthCornerPullLeft", "mouthSmileLeft"),
    ("MouthCornerSlantRight", "mouthSmileRight"), ("MouthCornerSlantLeft", "mouthSmileLeft"),
    ("MouthFrownRight", "mouthFrownRight"), ("MouthFrownLeft", "mouthFrownLeft"),
    ("MouthStretchRight", "mouthStretchRight"), ("MouthStretchLeft", "mouthStretchLeft"),
    ("MouthDimpleRight", "mouthDimpleRight"), ("MouthDimpleLeft", "mouthDimpleLeft"),
    ("MouthRaiserUpper", "mouthShrugUpper"), ("MouthRaiserLower", "mouthShrugLower"),
    ("MouthPressRight", "mouthPressRight"), ("MouthPressLeft", "mouthPressLeft"),
    ("TongueOut", "tongueOut"),
)

_BASE = tuple(u for u, _ in UNIFIED_FROM_ARKIT)
_BASE_SRC = tuple(arkit.INDEX[a] for _, a in UNIFIED_FROM_ARKIT)

# Parameters whose range is −1…1 (differences and gaze); every other one is 0…1.
_SIGNED = frozenset({
    "EyeLeftX", "EyeLeftY", "EyeRightX", "EyeRightY", "EyeX", "EyeY",
    "BrowExpressionRight", "BrowExpressionLeft", "BrowExpression",
    "JawX", "JawZ", "CheekPuffSuckLeft", "CheekPuffSuckRight", "CheekPuffSuck",
    "MouthUpperX", "MouthLowerX", "MouthX",
    "LipSuckFunnelUpper", "LipSuckFunnelLower", "LipSuckFunnelUpperLeft", "LipSuckFunnelUpperRight",
    "LipSuckFunnelLowerLeft", "LipSuckFunnelLowerRight",
    "MouthTightenerStretch", "MouthTightenerStretchLeft", "MouthTightenerStretchRight",
    "MouthCornerYLeft", "MouthCornerYRight", "MouthCornerY",
    "SmileFrownRight", "SmileFrownLeft", "SmileFrown", "SmileSadRight", "SmileSadLeft", "SmileSad",
})


def _gaze_xy(yaw_deg: float, pitch_deg: float) -> tuple[float, float]:
    # VRCFT's gaze vector: x = tan(yaw), +x looking to the subject's right; y = tan(pitch), +y up
    # (its ToYaw() = atan(x), ToPitch() = −atan(y) in degrees). facewire's yaw is + to the left.
    x = math.tan(math.radians(max(-89.0, min(89.0, -yaw_deg))))
    y = math.tan(math.radians(max(-89.0, min(89.0, pitch_deg))))
    return max(-1.0, min(1.0, x)), max(-1.0, min(1.0, y))


def unified_expressions(weights: np.ndarray, gaze: Gaze | None = None) -> dict[str, float]:
    """Every Unified Expressions v2 parameter with an ARKit source, name (without ``v2/``) → value.

    Base shapes per `UNIFIED_FROM_ARKIT`; eye openness = 1 − eyeBlink (VRCFT's ARKit table);
    simple shapes and combined parameters with VRCFT's own formulas (``UnifiedSimpleExpressions.cs``,
    ``UnifiedExpressionsParameters.cs``), shapes ARKit lacks (CheekSuck, MouthTightener,
    JawBackward …) counting as 0. Gaze ``EyeLeftX/Y`` … = (tan yaw, tan pitch) clamped to −1…1,
    +X = looking to the subject's right, +Y = up. Values are clamped to `UNIFIED_RANGES`.
    """
    v = np.asarray(weights, dtype=np.float64).tolist()
    b = {u: v[i] for u, i in zip(_BASE, _BASE_SRC)}
    o = dict(b)
    # simple shapes (UnifiedSimplifier.ExpressionMap)
    for side in ("Right", "Left"):
        o["BrowUp" + side] = b["BrowOuterUp" + side] * 0.6 + b["BrowInnerUp" + side] * 0.4
        o["BrowDown" + side] = b["BrowLowerer" + side] * 0.75 + b["BrowPinch" + side] * 0.25
        o["MouthSmile" + side] = b["MouthCornerPull" + side] * 0.8 + b["MouthCornerSlant" + side] * 0.2
        o["MouthSad" + side] = max(b["MouthFrown" + side], b["MouthStretch" + side])
    # eyes
    open_l, open_r = 1.0 - v[arkit.INDEX["eyeBlinkLeft"]], 1.0 - v[arkit.INDEX["eyeBlinkRight"]]
    gaze = gaze or Gaze()
    lx, ly = _gaze_xy(gaze.left_yaw_deg, gaze.left_pitch_deg)
    rx, ry = _gaze_xy(gaze.right_yaw_deg, gaze.right_pitch_deg)
    o.update({
        "EyeLeftX": lx, "EyeLeftY": ly, "EyeRightX": rx, "EyeRightY": ry,
        "EyeX": (lx + rx) / 2, "EyeY": (ly + ry) / 2,
        "EyeOpenLeft": open_l, "EyeOpenRight": open_r, "EyeOpen": (open_l + open_r) / 2,
        "EyeClosedLeft": 1 - open_l, "EyeClosedRight": 1 - open_r, "EyeClosed": 1 - (open_l + open_r) / 2,
        "EyeWide": max(b["EyeWideLeft"], b["EyeWideRight"]),
        "EyeLidLeft": open_l * 0.75 + b["EyeWideLeft"] * 0.25,
        "EyeLidRight": open_r * 0.75 + b["EyeWideRight"] * 0.25,
        "EyeLid": (open_l + open_r) / 2 * 0.75 + (b["EyeWideRight"] + b["EyeWideLeft"]) / 2 * 0.25,
        "EyeSquint": max(b["EyeSquintLeft"], b["EyeSquintRight"]),
        "EyesSquint": max(b["EyeSquintLeft"], b["EyeSquintRight"]),
    })
    # brows
    expr = {s: min(1.0, b["BrowInnerUp" + s] * 0.5 + b["BrowOuterUp" + s] * 0.5) - o["BrowDown" + s]
            for s in ("Right", "Left")}
    o.update({
        "BrowUp": (o["BrowUpRight"] + o["BrowUpLeft"]) * 0.5,
        "BrowDown": (o["BrowDownRight"] + o["BrowDownLeft"]) * 0.5,
        "BrowInnerUp": (b["BrowInnerUpLeft"] + b["BrowInnerUpRight"]) / 2,
        "BrowOuterUp": (b["BrowOuterUpLeft"] + b["BrowOuterUpRight"]) / 2,
        "BrowExpressionRight": expr["Right"], "BrowExpressionLeft": expr["Left"],
        "BrowExpression": (expr["Right"] + expr["Left"]) * 0.5,
    })
    # jaw, cheeks, mouth direction
    o.update({
        "JawX": b["JawRight"] - b["JawLeft"],
        "JawZ": b["JawForward"],
        "CheekSquint": (b["CheekSquintLeft"] + b["CheekSquintRight"]) / 2,
        "CheekPuffSuckLeft": b["CheekPuffLeft"], "CheekPuffSuckRight": b["CheekPuffRight"],
        "CheekPuffSuck": (b["CheekPuffRight"] + b["CheekPuffLeft"]) / 2,
        "MouthUpperX": b["MouthUpperRight"] - b["MouthUpperLeft"],
        "MouthLowerX": b["MouthLowerRight"] - b["MouthLowerLeft"],
        "MouthX": (b["MouthUpperRight"] + b["MouthLowerRight"]) / 2 - (b["MouthUpperLeft"] + b["MouthLowerLeft"]) / 2,
    })
    # lips
    def avg(*names: str) -> float:
        return sum(b[n] for n in names) / len(names)

    o.update({
        "LipSuckUpper": avg("LipSuckUpperRight", "LipSuckUpperLeft"),
        "LipSuckLower": avg("LipSuckLowerRight", "LipSuckLowerLeft"),
        "LipSuck": avg("LipSuckUpperRight", "LipSuckUpperLeft", "LipSuckLowerRight", "LipSuckLowerLeft"),
        "LipFunnelUpper": avg("LipFunnelUpperRight", "LipFunnelUpperLeft"),
        "LipFunnelLower": avg("LipFunnelLowerRight", "LipFunnelLowerLeft"),
        "LipFunnel": avg("LipFunnelUpperRight", "LipFunnelUpperLeft", "LipFunnelLowerRight", "LipFunnelLowerLeft"),
        "LipPuckerUpper": avg("LipPuckerUpperRight", "LipPuckerUpperLeft"),
        "LipPuckerLower": avg("LipPuckerLowerRight", "LipPuckerLowerLeft"),
        "LipPuckerRight": avg("LipPuckerUpperRight", "LipPuckerLowerRight"),
        "LipPuckerLeft": avg("LipPuckerUpperLeft", "LipPuckerLowerLeft"),
        "LipPucker": avg("LipPuckerUpperRight", "LipPuckerUpperLeft", "LipPuckerLowerRight", "LipPuckerLowerLeft"),
    })
    for part in ("Upper", "Lower"):
        o["LipSuckFunnel" + part] = o["LipSuck" + part] - o["LipFunnel" + part]
        for s in ("Left", "Right"):
            o[f"LipSuckFunnel{part}{s}"] = b[f"LipSuck{part}{s}"] - b[f"LipFunnel{part}{s}"]
    # mouth
    o.update({
        "MouthUpperUp": b["MouthUpperUpRight"] * 0.5 + b["MouthUpperUpLeft"] * 0.5,
        "MouthLowerDown": b["MouthLowerDownRight"] * 0.5 + b["MouthLowerDownLeft"] * 0.5,
        "MouthOpen": avg("MouthUpperUpRight", "MouthUpperUpLeft", "MouthLowerDownRight", "MouthLowerDownLeft"),
        "MouthStretch": avg("MouthStretchRight", "MouthStretchLeft"),
        "MouthPress": avg("MouthPressRight", "MouthPressLeft"),
        "MouthDimple": avg("MouthDimpleRight", "MouthDimpleLeft"),
        "NoseSneer": avg("NoseSneerRight", "NoseSneerLeft"),
        "MouthTightenerStretch": -avg("MouthStretchRight", "MouthStretchLeft"),
        "MouthTightenerStretchLeft": -b["MouthStretchLeft"],
        "MouthTightenerStretchRight": -b["MouthStretchRight"],
    })
    # lip corners
    corner = {s: b["MouthCornerSlant" + s] - b["MouthFrown" + s] for s in ("Left", "Right")}
    smile_frown = {s: o["MouthSmile" + s] - b["MouthFrown" + s] for s in ("Left", "Right")}
    smile_sad = {s: o["MouthSmile" + s] - o["MouthSad" + s] for s in ("Left", "Right")}
    o.update({
        "MouthCornerYLeft": corner["Left"], "MouthCornerYRight": corner["Right"],
        "MouthCornerY": (corner["Left"] + corner["Right"]) * 0.5,
        "SmileFrownRight": smile_frown["Right"], "SmileFrownLeft": smile_frown["Left"],
        "SmileFrown": (smile_frown["Right"] + smile_frown["Left"]) * 0.5,
        "SmileSadRight": smile_sad["Right"], "SmileSadLeft": smile_sad["Left"],
        "SmileSad": (smile_sad["Right"] + smile_sad["Left"]) * 0.5,
    })
    return {n: (max(-1.0, min(1.0, x)) if n in _SIGNED else _clip(x)) for n, x in o.items()}


UNIFIED_NAMES: tuple[str, ...] = tuple(unified_expressions(np.zeros(arkit.COUNT, np.float32)))
"""Every parameter `unified_expressions` computes, in a fixed order."""

UNIFIED_RANGES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {n: ((-1.0, 1.0) if n in _SIGNED else (0.0, 1.0)) for n in UNIFIED_NAMES}
)
"""The documented range of each parameter."""

# For the way back: the first Unified shape listed for each ARKit name.
_ARKIT_SOURCE: Mapping[str, str] = MappingProxyType(
    {a: u for u, a in reversed(UNIFIED_FROM_ARKIT)}
)


def arkit_from_unified(params: Mapping[str, float]) -> tuple[np.ndarray, Gaze]:
    """ARKit weights and gaze recovered from Unified Expressions parameters (names without ``v2/``).

    Inverts `unified_expressions` where it can: each ARKit shape from its base shape, eyeBlink from
    EyeClosed (or 1 − EyeOpen), gaze from EyeLeftX/Y and EyeRightX/Y (exact within ±45°, where
    the vector is clamped). eyeLook* cannot be recovered (VRCFT turns them into gaze) and stay 0,
    as does any shape whose parameter is missing.
    """
    weights = np.zeros(arkit.COUNT, dtype=np.float32)
    for name, unified in _ARKIT_SOURCE.items():
        if unified in params:
            weights[arkit.INDEX[name]] = _clip(float(params[unified]))
    for side in ("Left", "Right"):
        if "EyeClosed" + side in params:
            weights[arkit.INDEX["eyeBlink" + side]] = _clip(float(params["EyeClosed" + side]))
        elif "EyeOpen" + side in params:
            weights[arkit.INDEX["eyeBlink" + side]] = _clip(1.0 - float(params["EyeOpen" + side]))

    def angles(side: str) -> tuple[float, float]:
        x = float(params.get(f"Eye{side}X", 0.0))
        y = float(params.get(f"Eye{side}Y", 0.0))
        return -math.degrees(math.atan(x)), math.degrees(math.atan(y))

    (ly, lp), (ry, rp) = angles("Left"), angles("Right")
    return weights, Gaze(left_yaw_deg=ly, left_pitch_deg=lp, right_yaw_deg=ry, right_pitch_deg=rp)


# -- VRM 1.0 expressions -----------------------------------------------------------------------
VRM1_EXPRESSIONS: tuple[str, ...] = (
    "happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh",
    "blink", "blinkLeft", "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral",
)
"""The preset expression names of VRM 1.0 (``VRMC_vrm`` ``expressions.preset``), in the spec's order."""

_VRM0_TO_VRM1 = {"A": "aa", "I": "ih", "U": "ou", "E": "ee", "O": "oh", "Blink": "blink", "Blink_L": "blinkLeft",
                 "Blink_R": "blinkRight", "Joy": "happy", "Angry": "angry", "Sorrow": "sad", "Fun": "relaxed"}


def vrm1_expressions(weights: np.ndarray, gaze: Gaze | None = None) -> dict[str, float]:
    """The 18 VRM 1.0 preset expressions, each in [0, 1], from the 52 ARKit weights.

    The twelve VRM 0.x presets as `vrm_presets` computes them, renamed (A→aa, I→ih, U→ou, E→ee,
    O→oh, Blink→blink, Blink_L→blinkLeft, Blink_R→blinkRight, Joy→happy, Angry→angry, Sorrow→sad,
    Fun→relaxed), plus:

    * ``surprised`` = brow raise · (0.4 + 0.6·mean eyeWide), brow raise = 0.5·browInnerUp +
      0.5·mean browOuterUp (AU1+2 with AU5, the FACS surprise brows and lids), times (1 − smile);
    * ``lookUp``/``lookDown`` = mean of both eyes' eyeLookUp/eyeLookDown; ``lookLeft`` (to the
      avatar's own left) = mean(eyeLookOutLeft, eyeLookInRight), ``lookRight`` = mean(eyeLookInLeft,
      eyeLookOutRight). VRM 1.0 drives these from its lookAt; models whose lookAt uses bones ignore
      them. ``gaze`` is accepted for symmetry with `unified_expressions` and not needed: ARKit's
      eyeLook weights already carry the direction.
    * ``neutral`` = 1 − the strongest of happy, angry, sad, relaxed, surprised (the face at rest).
    """
    v = np.asarray(weights, dtype=np.float64).tolist()
    idx = arkit.INDEX

    def mean(a: str, b: str) -> float:
        return 0.5 * (v[idx[a]] + v[idx[b]])

    old = vrm_presets(weights)
    out = {_VRM0_TO_VRM1[k]: x for k, x in old.items()}
    smile = mean("mouthSmileLeft", "mouthSmileRight")
    brow_raise = 0.5 * v[idx["browInnerUp"]] + 0.5 * mean("browOuterUpLeft", "browOuterUpRight")
    out["surprised"] = brow_raise * (0.4 + 0.6 * mean("eyeWideLeft", "eyeWideRight")) * (1.0 - smile)
    out["lookUp"] = mean("eyeLookUpLeft", "eyeLookUpRight")
    out["lookDown"] = mean("eyeLookDownLeft", "eyeLookDownRight")
    out["lookLeft"] = mean("eyeLookOutLeft", "eyeLookInRight")
    out["lookRight"] = mean("eyeLookInLeft", "eyeLookOutRight")
    out["neutral"] = 1.0 - max(out[e] for e in ("happy", "angry", "sad", "relaxed", "surprised"))
    return {name: _clip(out[name]) for name in VRM1_EXPRESSIONS}


# -- OVR visemes -------------------------------------------------------------------------------
OVR_VISEMES: tuple[str, ...] = tuple(mouth.VISEMES)
"""OVRLipSync's 15 visemes (``sil PP FF TH DD kk CH SS nn RR aa E ih oh ou``)."""


def ovr_visemes(weights: np.ndarray) -> dict[str, float]:
    """The 15 OVR viseme weights (summing to 1) that best explain the frame's mouth (`mouth.arkit_to_visemes`)."""
    return {name: float(x) for name, x in zip(OVR_VISEMES, mouth.arkit_to_visemes(np.asarray(weights, dtype=np.float32)))}


# -- MetaHuman-style curves --------------------------------------------------------------------
def _mh_pairs() -> tuple[tuple[str, tuple[str, ...]], ...]:
    pairs: list[tuple[str, tuple[str, ...]]] = []
    sided = (  # (curve stem, ARKit stem): the curve gets L/R, ARKit Left/Right
        ("eyeBlink", "eyeBlink"), ("eyeWiden", "eyeWide"), ("eyeSquintInner", "eyeSquint"),
        ("eyeCheekRaise", "cheekSquint"), ("eyeLookUp", "eyeLookUp"), ("eyeLookDown", "eyeLookDown"),
        ("browDown", "browDown"), ("browRaiseOuter", "browOuterUp"), ("noseWrinkle", "noseSneer"),
        ("mouthCornerPull", "mouthSmile"), ("mouthCornerDepress", "mouthFrown"), ("mouthStretch", "mouthStretch"),
        ("mouthDimple", "mouthDimple"), ("mouthUpperLipRaise", "mouthUpperUp"), ("mouthLowerLipDepress", "mouthLowerDown"),
        ("mouthPress", "mouthPress"),
    )
    for curve, shape in sided:
        for s, side in (("L", "Left"), ("R", "Right")):
            pairs.append((f"{curve}{s}", (shape + side,)))
    # eye look left/right per eye: looking to the subject's left is the left eye out, the right eye in
    pairs += [("eyeLookLeftL", ("eyeLookOutLeft",)), ("eyeLookRightL", ("eyeLookInLeft",)),
              ("eyeLookLeftR", ("eyeLookInRight",)), ("eyeLookRightR", ("eyeLookOutRight",))]
    for s in ("L", "R"):  # one ARKit shape shared by both sides of the rig
        pairs += [(f"browRaiseIn{s}", ("browInnerUp",)), (f"mouthCheekBlow{s}", ("cheekPuff",))]
    for part in ("UL", "UR", "DL", "DR"):  # lip quadrants: upper/lower × left/right
        roll = "mouthRollUpper" if part[0] == "U" else "mouthRollLower"
        pairs += [(f"mouthLipsPurse{part}", ("mouthPucker",)), (f"mouthFunnel{part}", ("mouthFunnel",)),
                  (f"mouthLipsTogether{part}", ("mouthClose",)), (f"mouth{'Upper' if part[0] == 'U' else 'Lower'}LipRollIn{part[1]}", (roll,))]
    pairs += [("jawOpen", ("jawOpen",)), ("jawLeft", ("jawLeft",)), ("jawRight", ("jawRight",)),
              ("jawFwd", ("jawForward",)), ("mouthLeft", ("mouthLeft",)), ("mouthRight", ("mouthRight",)),
              ("mouthUpperLipShrug", ("mouthShrugUpper",)), ("mouthLowerLipShrug", ("mouthShrugLower",)),
              ("tongueOut", ("tongueOut",))]
    seen: dict[str, tuple[str, ...]] = {}
    for curve, shapes in pairs:
        seen.setdefault("CTRL_expressions_" + curve, shapes)  # the lip-roll rows repeat per quadrant
    return tuple(seen.items())


METAHUMAN_FROM_ARKIT: tuple[tuple[str, tuple[str, ...]], ...] = _mh_pairs()
"""(MetaHuman-style curve, ARKit shapes averaged into it): facewire's approximation (module doc)."""

METAHUMAN_NAMES: tuple[str, ...] = tuple(c for c, _ in METAHUMAN_FROM_ARKIT)
_MH_SRC = [tuple(arkit.INDEX[a] for a in shapes) for _, shapes in METAHUMAN_FROM_ARKIT]


def metahuman_curves(weights: np.ndarray) -> dict[str, float]:
    """MetaHuman-style ``CTRL_expressions_*`` curve values in [0, 1] (`METAHUMAN_FROM_ARKIT`)."""
    v = np.asarray(weights, dtype=np.float64)
    return {name: _clip(float(v[list(src)].mean())) for name, src in zip(METAHUMAN_NAMES, _MH_SRC)}


# -- every target schema by name -----------------------------------------------------------------
class Schema(NamedTuple):
    """A target schema: its output names, in order, and the function of a frame that computes them."""

    names: tuple[str, ...]
    compute: Callable[[FaceFrame], dict[str, float]]
    description: str


SCHEMAS: Mapping[str, Schema] = MappingProxyType({
    "vrm0": Schema(VRM_PRESETS, lambda f: vrm_presets(f.weights), "VRM 0.x BlendShape presets"),
    "vrm1": Schema(VRM1_EXPRESSIONS, lambda f: vrm1_expressions(f.weights, f.gaze), "VRM 1.0 preset expressions"),
    "ovr": Schema(OVR_VISEMES, lambda f: ovr_visemes(f.weights), "OVRLipSync visemes"),
    "unified": Schema(UNIFIED_NAMES, lambda f: unified_expressions(f.weights, f.gaze), "VRCFaceTracking Unified Expressions v2"),
    "metahuman": Schema(METAHUMAN_NAMES, lambda f: metahuman_curves(f.weights), "MetaHuman-style CTRL_expressions curves (approximation)"),
})
"""Target schema name → `Schema`."""
