"""FACS action units → ARKit blendshapes: the one table that emotion poses and face affect share.

The Facial Action Coding System (Ekman & Friesen 1978; Ekman, Friesen & Hager 2002, *FACS Manual*
and *Investigator's Guide*) names each visible muscle action an action unit (AU). ARKit's 52
blendshapes are close to AUs by design, most one to one with a left/right pair, so a pose written
in AUs (as EMFACS writes emotions, see `facewire.expression.emotion`) becomes ARKit weights here,
and `estimate_aus` reads AUs back from ARKit weights for `facewire.expression.face_affect`.

=====  ========================  ============================================================
AU     FACS name                 ARKit (gain; ``*`` = the Left and Right pair)
=====  ========================  ============================================================
1      inner brow raiser         browInnerUp
2      outer brow raiser         browOuterUp*
4      brow lowerer              browDown*
5      upper lid raiser          eyeWide*
6      cheek raiser              cheekSquint*, eyeSquint* 0.3
7      lid tightener             eyeSquint*
9      nose wrinkler             noseSneer*, browDown* 0.2
10     upper lip raiser          mouthUpperUp*
12     lip corner puller         mouthSmile*
13     cheek puffer              cheekPuff
14     dimpler                   mouthDimple*
15     lip corner depressor      mouthFrown*
16     lower lip depressor       mouthLowerDown*
17     chin raiser               mouthShrugLower, mouthShrugUpper 0.3
18     lip pucker                mouthPucker
20     lip stretcher             mouthStretch*
22     lip funneler              mouthFunnel
23     lip tightener             mouthPress* 0.6, mouthRollLower 0.3, mouthRollUpper 0.3
24     lip presser               mouthPress*, mouthClose 0.2
25     lips part                 mouthLowerDown* 0.15, jawOpen 0.05
26     jaw drop                  jawOpen 0.35
27     mouth stretch             jawOpen 0.8
28     lip suck                  mouthRollLower, mouthRollUpper
43     eyes closed               eyeBlink*
=====  ========================  ============================================================

Gains are **design**: 1 where an ARKit shape is the AU itself; the smaller gains give the secondary
appearance changes the FACS Manual lists for that AU (AU6 narrows the eye from below, AU9 pulls the
brows down, AU17 pushes the upper lip up, AU24 closes the lips, AU23 narrows the red of the lips),
and the jaw gains keep AU25/26 (parted lips, a relaxed jaw drop) much smaller than AU27 (a stretched
mouth), as their FACS descriptions rank them.

An AU code is a number with an optional side prefix ``L``/``R`` (unilateral: only that side's shape,
for pairs) and an optional FACS intensity letter A-E (trace, slight, marked, severe, maximum → 0.2,
0.4, 0.6, 0.8, 1.0): ``"12"``, ``"R12A"``, ``"5B"``. Sides are the face's own (ARKit's Left is the
subject's left). Several AUs driving one shape combine by maximum, so shared shapes never add up
beyond what either AU asks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np

from .. import arkit
from ..errors import InputError

__all__ = ["AU_NAMES", "AU_TO_ARKIT", "INTENSITY_LETTERS", "au_weights", "estimate_aus", "parse_au"]


def _pair(stem: str, gain: float = 1.0) -> dict[str, float]:
    return {f"{stem}Left": gain, f"{stem}Right": gain}


AU_TO_ARKIT: Mapping[int, Mapping[str, float]] = MappingProxyType({au: MappingProxyType(shapes) for au, shapes in {
    1: {"browInnerUp": 1.0},
    2: _pair("browOuterUp"),
    4: _pair("browDown"),
    5: _pair("eyeWide"),
    6: {**_pair("cheekSquint"), **_pair("eyeSquint", 0.3)},
    7: _pair("eyeSquint"),
    9: {**_pair("noseSneer"), **_pair("browDown", 0.2)},
    10: _pair("mouthUpperUp"),
    12: _pair("mouthSmile"),
    13: {"cheekPuff": 1.0},
    14: _pair("mouthDimple"),
    15: _pair("mouthFrown"),
    16: _pair("mouthLowerDown"),
    17: {"mouthShrugLower": 1.0, "mouthShrugUpper": 0.3},
    18: {"mouthPucker": 1.0},
    20: _pair("mouthStretch"),
    22: {"mouthFunnel": 1.0},
    23: {**_pair("mouthPress", 0.6), "mouthRollLower": 0.3, "mouthRollUpper": 0.3},
    24: {**_pair("mouthPress"), "mouthClose": 0.2},
    25: {**_pair("mouthLowerDown", 0.15), "jawOpen": 0.05},
    26: {"jawOpen": 0.35},
    27: {"jawOpen": 0.8},
    28: {"mouthRollLower": 1.0, "mouthRollUpper": 1.0},
    43: _pair("eyeBlink"),
}.items()})
"""AU number → ARKit name → gain (see the module table)."""

AU_NAMES: Mapping[int, str] = MappingProxyType({
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
    12: "lip corner puller", 13: "cheek puffer", 14: "dimpler", 15: "lip corner depressor",
    16: "lower lip depressor", 17: "chin raiser", 18: "lip pucker", 20: "lip stretcher",
    22: "lip funneler", 23: "lip tightener", 24: "lip presser", 25: "lips part", 26: "jaw drop",
    27: "mouth stretch", 28: "lip suck", 43: "eyes closed",
})

INTENSITY_LETTERS: Mapping[str, float] = MappingProxyType({"A": 0.2, "B": 0.4, "C": 0.6, "D": 0.8, "E": 1.0})
"""FACS intensity letters (trace … maximum) as weights."""

_CODE = re.compile(r"^\s*(?:AU)?\s*([LR]?)\s*(\d{1,2})\s*([A-E]?)\s*$", re.IGNORECASE)


def parse_au(code: str | int) -> tuple[int, str | None, float | None]:
    """``"R12A"`` → (12, "R", 0.2): AU number, side (None for both) and intensity (None if no letter)."""
    if isinstance(code, bool) or not isinstance(code, (str, int)):
        raise InputError(f"action unit: expected a code such as '12', 'R12A' or 5, got {code!r}")
    m = _CODE.match(str(code))
    if m is None:
        raise InputError(f"action unit: expected a code such as '12', 'R12A' or 5, got {code!r}")
    side, number, letter = m.group(1).upper() or None, int(m.group(2)), m.group(3).upper()
    if number not in AU_TO_ARKIT:
        raise InputError(f"action unit {code!r}: AU{number} is not in the table; expected one of "
                         f"{', '.join(str(a) for a in AU_TO_ARKIT)}")
    return number, side, INTENSITY_LETTERS[letter] if letter else None


def au_weights(aus: Mapping[str | int, float] | Iterable[str | int]) -> np.ndarray:
    """52 ARKit weights (float64, ARKit order) of a set of AUs.

    ``aus`` maps AU codes to intensities in [0, 1], or lists codes (each at its letter's intensity,
    1 without a letter). A letter in a mapped code scales the mapped intensity.
    """
    items = aus.items() if isinstance(aus, Mapping) else ((code, None) for code in aus)
    out = np.zeros(arkit.COUNT, dtype=np.float64)
    for code, value in items:
        number, side, letter = parse_au(code)
        if value is None:
            value = 1.0
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InputError(f"action unit {code!r} intensity: expected a number in [0, 1], got {value!r}")
        level = float(value) * (letter if letter is not None else 1.0)
        for name, gain in AU_TO_ARKIT[number].items():
            if side == "L" and name.endswith("Right") or side == "R" and name.endswith("Left"):
                continue
            i = arkit.INDEX[name]
            out[i] = max(out[i], gain * level)
    return out


# For reading AUs back, each AU is measured on its own shapes of gain 1 (its primary shapes): the
# secondary, smaller-gain effects overlap other AUs (AU6's squint is AU7's shape) and would blur them.
_PRIMARY: Mapping[int, tuple[np.ndarray, np.ndarray]] = MappingProxyType({
    au: (np.array([arkit.INDEX[n] for n, g in shapes.items() if g == 1.0 and not n.endswith("Right")], dtype=np.intp),
         np.array([arkit.INDEX[n] for n, g in shapes.items() if g == 1.0 and not n.endswith("Left")], dtype=np.intp))
    for au, shapes in AU_TO_ARKIT.items() if any(g == 1.0 for g in shapes.values())
})
_JAW = arkit.INDEX["jawOpen"]


def estimate_aus(weights: np.ndarray, *, sides: bool = False) -> dict[int, float] | dict[int, tuple[float, float]]:
    """AU intensities read back from 52 ARKit weights (the mean of each AU's primary shapes).

    AU23, AU25 and AU27 have no shape of their own and are left out; the jaw is read as AU26 =
    jawOpen / 0.35 (clipped to 1). With ``sides=True`` each value is a (left, right) pair, for telling
    unilateral actions (contempt's R12A+R14A) from bilateral ones; unpaired shapes give equal sides.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (arkit.COUNT,):
        raise InputError(f"weights: expected {arkit.COUNT} ARKit weights, got shape {w.shape}")
    out: dict = {}
    for au, (left, right) in _PRIMARY.items():
        pair = (float(w[left].mean()), float(w[right].mean()))
        out[au] = pair if sides else (pair[0] + pair[1]) / 2
    jaw = min(1.0, float(w[_JAW]) / AU_TO_ARKIT[26]["jawOpen"])
    out[26] = (jaw, jaw) if sides else jaw
    return out
