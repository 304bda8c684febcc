"""Mouth-shape schemas mapped to ARKit by name, in one place: OVR's 15 visemes and Rhubarb's shapes.

**OVR visemes** (OVRLipSync ``Viseme`` enum, VRChat's ``Viseme`` parameter, same order):
``sil PP FF TH DD kk CH SS nn RR aa E ih oh ou``. :data:`VISEME_POSES` gives each one a
representative ARKit pose — facewire's own table, written from Meta's viseme reference (which
phonemes each viseme stands for, ``../shared/reference/protocols.md`` §7) and the ARKit shape
definitions; no primary source publishes such a table. ``sil`` is the neutral face (all zero).

- visemes → weights (:func:`visemes_to_arkit`): the weighted sum of the poses, clipped to [0, 1];
  ``sil`` contributes nothing. This is what lip sync from speech uses.
- weights → visemes (:func:`arkit_to_visemes`): the non-negative least-squares mix of the 14 poses
  that best explains the frame's mouth shapes (the :data:`MOUTH_NAMES` columns; eyes and brows
  are ignored); if the mix sums past 1 it is scaled to 1; ``sil`` = 1 − the rest. The 14 poses are
  linearly independent, so for any viseme distribution (weights summing to 1, as OVRLipSync
  outputs) the two functions are inverses to float32 precision (≈1e-7).

**Phones → visemes** (:data:`PHONE_TO_VISEME`, ARPABET as in `facewire.audio.phones`, plus ``SIL``):
Meta's own ARPABET → viseme table (protocols.md §7, rows marked M) with its gaps filled as marked
there: ``SIL``→sil; P B M→PP; F V→FF; TH DH→TH; T D→DD; K G NG→kk; CH JH SH ZH→CH; S Z→SS;
N L→nn; R ER→RR; AA AH AY AW→aa; EH AE EY→E; IH IY Y→ih; AO OW OY→oh; UH UW W→ou. (AE is
Meta's ``E``, "bed"/"bat" share the spread open front shape; the diphthongs take the viseme of
their first, longer part.) ``HH`` has no mouth shape of its own — the lips are already in the next
vowel's shape — so :func:`phone_visemes` gives it the next vowel's viseme (else the previous
one's, else ``kk``, Meta's fallback); the static table holds the fallback ``kk``.

**Rhubarb Lip Sync shapes** ``A``–``H`` and ``X`` (Rhubarb's README): each shape stands for a group
of visemes (:data:`RHUBARB_FROM_VISEME`, the mapping suggested in protocols.md §6, except that
``nn`` goes to ``H``, "tongue raised", which OVR's ``nn`` (n, l) shares, instead of ``B``) and is
drawn with the pose of one representative viseme (:data:`RHUBARB_VISEME`).

- shape → weights (:func:`rhubarb_to_arkit`): the representative viseme's pose (``X`` = neutral).
- weights → shape (:func:`arkit_to_rhubarb`): the shape of the frame's strongest viseme (``sil``
  → ``X``). (Not the visemes summed per shape: ``B`` draws six visemes and would win too often.)
  A shape's own pose always classifies back to that shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from . import arkit

__all__ = [
    "MOUTH_NAMES",
    "PHONE_TO_VISEME",
    "RHUBARB_FROM_VISEME",
    "RHUBARB_SHAPES",
    "RHUBARB_VISEME",
    "VISEMES",
    "VISEME_POSES",
    "arkit_to_rhubarb",
    "arkit_to_visemes",
    "phone_visemes",
    "rhubarb_to_arkit",
    "visemes_to_arkit",
]

VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
"""OVR's 15 visemes in enum order."""


def _pose(**weights: float) -> Mapping[str, float]:
    # A trailing underscore names a left/right pair: mouthPress_ = mouthPressLeft + mouthPressRight.
    out: dict[str, float] = {}
    for name, value in weights.items():
        names = (name[:-1] + "Left", name[:-1] + "Right") if name.endswith("_") else (name,)
        for n in names:
            arkit.index_of(n)  # a typo fails at import
            out[n] = value
    return MappingProxyType(out)


VISEME_POSES: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "sil": _pose(),                                                   # silence: neutral face
    "PP": _pose(jawOpen=0.05, mouthClose=0.05, mouthPress_=0.55,     # p b m: lips pressed together
                mouthRollLower=0.2, mouthRollUpper=0.25, cheekPuff=0.1),
    "FF": _pose(jawOpen=0.12, mouthRollLower=0.6, mouthUpperUp_=0.3,  # f v: lower lip under the teeth
                mouthShrugUpper=0.1),
    "TH": _pose(jawOpen=0.2, tongueOut=0.5, mouthLowerDown_=0.15,     # th: tongue between the teeth
                mouthUpperUp_=0.1),
    "DD": _pose(jawOpen=0.25, mouthLowerDown_=0.3, mouthUpperUp_=0.1,  # t d: jaw slightly open
                mouthStretch_=0.1),
    "kk": _pose(jawOpen=0.35, mouthStretch_=0.2, mouthShrugUpper=0.2,  # k g: open, corners back
                mouthDimple_=0.2),
    "CH": _pose(jawOpen=0.15, mouthFunnel=0.45, mouthPucker=0.2,      # ch j sh: lips flared forward
                mouthUpperUp_=0.25, mouthLowerDown_=0.2, jawForward=0.25, mouthShrugUpper=0.2),
    "SS": _pose(jawOpen=0.05, mouthStretch_=0.4, mouthSmile_=0.15,    # s z: teeth together, lips apart
                mouthUpperUp_=0.15, mouthLowerDown_=0.15),
    "nn": _pose(jawOpen=0.15, mouthShrugLower=0.25, mouthStretch_=0.1,  # n l: tongue up, lips relaxed
                mouthUpperUp_=0.15),
    "RR": _pose(jawOpen=0.2, mouthFunnel=0.25, mouthPucker=0.4,       # r: lips slightly rounded
                jawForward=0.1),
    "aa": _pose(jawOpen=0.7, mouthLowerDown_=0.35, mouthUpperUp_=0.15,  # a (car): wide open
                mouthStretch_=0.1),
    "E": _pose(jawOpen=0.45, mouthStretch_=0.3, mouthSmile_=0.25,     # e (bed): open and spread
               mouthLowerDown_=0.25, mouthUpperUp_=0.2),
    "ih": _pose(jawOpen=0.25, mouthSmile_=0.4, mouthStretch_=0.2,     # i (tip): spread, little open
                mouthUpperUp_=0.1, cheekSquint_=0.15),
    "oh": _pose(jawOpen=0.5, mouthFunnel=0.6, mouthPucker=0.2,        # o (toe): open and round
                mouthLowerDown_=0.1),
    "ou": _pose(jawOpen=0.15, mouthPucker=0.75, mouthFunnel=0.3,      # u (book): pursed
                mouthRollUpper=0.1),
})
"""Viseme → representative ARKit pose (names not listed are 0)."""

PHONE_TO_VISEME: Mapping[str, str] = MappingProxyType({
    "SIL": "sil",
    "P": "PP", "B": "PP", "M": "PP",
    "F": "FF", "V": "FF",
    "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD",
    "K": "kk", "G": "kk", "NG": "kk", "HH": "kk",
    "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH",
    "S": "SS", "Z": "SS",
    "N": "nn", "L": "nn",
    "R": "RR", "ER": "RR",
    "AA": "aa", "AH": "aa", "AY": "aa", "AW": "aa",
    "EH": "E", "AE": "E", "EY": "E",
    "IH": "ih", "IY": "ih", "Y": "ih",
    "AO": "oh", "OW": "oh", "OY": "oh",
    "UH": "ou", "UW": "ou", "W": "ou",
})
"""ARPABET (no stress digit) or ``SIL`` → OVR viseme name (see the module doc; ``HH`` by context)."""

_VOWELS = frozenset(("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"))


def phone_visemes(labels: Sequence[str]) -> list[str]:
    """The viseme of each phone label in a sequence, ``HH`` resolved by its neighbouring vowels."""
    out = []
    for i, label in enumerate(labels):
        try:
            viseme = PHONE_TO_VISEME[label]
        except KeyError:
            raise ValueError(f"phone label: expected ARPABET or SIL, got {label!r}") from None
        if label == "HH":
            nxt = labels[i + 1] if i + 1 < len(labels) else None
            prv = labels[i - 1] if i > 0 else None
            vowel = nxt if nxt in _VOWELS else prv if prv in _VOWELS else None
            viseme = PHONE_TO_VISEME[vowel] if vowel else viseme
        out.append(viseme)
    return out


_POSE_MATRIX = np.zeros((len(VISEMES), arkit.COUNT), dtype=np.float64)
for _v, _p in enumerate(VISEME_POSES[name] for name in VISEMES):
    for _n, _w in _p.items():
        _POSE_MATRIX[_v, arkit.index_of(_n)] = _w
_POSE_MATRIX.flags.writeable = False

_MOUTH = np.flatnonzero(_POSE_MATRIX.any(axis=0))
MOUTH_NAMES: tuple[str, ...] = tuple(arkit.NAMES[i] for i in _MOUTH)
"""The ARKit shapes the viseme fit looks at (every shape some pose uses)."""

_A = _POSE_MATRIX[1:, _MOUTH].T  # mouth shapes × 14 spoken visemes
_GRAM = _A.T @ _A
_TOL = 1e-12


def _nnls(b: np.ndarray) -> np.ndarray:
    """Lawson–Hanson non-negative least squares min ‖A x − b‖, x ≥ 0, on the normal equations."""
    n = _GRAM.shape[0]
    atb = _A.T @ b
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    for _ in range(3 * n):
        gradient = atb - _GRAM @ x
        free = ~passive
        if not free.any() or gradient[free].max() <= _TOL:
            break
        passive[int(np.argmax(np.where(free, gradient, -np.inf)))] = True
        while True:
            z = np.zeros(n)
            idx = np.flatnonzero(passive)
            z[idx] = np.linalg.solve(_GRAM[np.ix_(idx, idx)], atb[idx])
            if (z[idx] > 0).all():
                break
            bad = idx[z[idx] <= 0]
            alpha = np.min(x[bad] / (x[bad] - z[bad]))
            x = x + alpha * (z - x)
            passive &= x > _TOL
            x[~passive] = 0.0
        x = z
    return x


def visemes_to_arkit(visemes: np.ndarray) -> np.ndarray:
    """15 viseme weights (OVR order) → 52 ARKit weights (float32, clipped to [0, 1])."""
    v = np.asarray(visemes, dtype=np.float64)
    if v.shape != (len(VISEMES),):
        raise ValueError(f"visemes: expected {len(VISEMES)} weights in OVR order, got shape {v.shape}")
    return np.clip(v @ _POSE_MATRIX, 0.0, 1.0).astype(np.float32)


def arkit_to_visemes(weights: np.ndarray) -> np.ndarray:
    """52 ARKit weights → 15 viseme weights (float64, ≥ 0, summing to 1; see the module doc)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (arkit.COUNT,):
        raise ValueError(f"weights: expected {arkit.COUNT} ARKit weights, got shape {w.shape}")
    spoken = _nnls(w[_MOUTH])
    total = float(spoken.sum())
    if total > 1.0:
        spoken /= total
        total = 1.0
    return np.concatenate(([max(0.0, 1.0 - total)], spoken))


# -- Rhubarb --------------------------------------------------------------------------------------
RHUBARB_SHAPES: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G", "H", "X")

RHUBARB_FROM_VISEME: Mapping[str, str] = MappingProxyType({
    "sil": "X", "PP": "A", "FF": "G", "TH": "B", "DD": "B", "kk": "B", "CH": "B", "SS": "B",
    "nn": "H", "RR": "E", "aa": "D", "E": "C", "ih": "B", "oh": "E", "ou": "F",
})
"""Viseme → the Rhubarb shape that draws it."""

RHUBARB_VISEME: Mapping[str, str] = MappingProxyType({
    "A": "PP",   # closed, slight pressure (P B M)
    "B": "SS",   # slightly open, clenched teeth (most consonants, EE)
    "C": "E",    # open (EH, AE)
    "D": "aa",   # wide open (AA)
    "E": "oh",   # slightly rounded (AO, ER)
    "F": "ou",   # puckered (UW, OW, W)
    "G": "FF",   # upper teeth on the lower lip (F, V)
    "H": "nn",   # tongue raised (long L)
    "X": "sil",  # idle
})
"""Rhubarb shape → the viseme whose pose draws it."""

_SHAPE_OF_VISEME = np.array([RHUBARB_SHAPES.index(RHUBARB_FROM_VISEME[v]) for v in VISEMES], dtype=np.intp)
_SHAPE_POSES = {s: _POSE_MATRIX[VISEMES.index(v)].astype(np.float32) for s, v in RHUBARB_VISEME.items()}
for _pose_array in _SHAPE_POSES.values():
    _pose_array.flags.writeable = False
assert all(RHUBARB_FROM_VISEME[v] == s for s, v in RHUBARB_VISEME.items())  # shapes classify back


def rhubarb_to_arkit(shape: str) -> np.ndarray:
    """A Rhubarb shape letter → its 52 ARKit weights (read-only float32)."""
    try:
        return _SHAPE_POSES[shape]
    except KeyError:
        raise ValueError(f"Rhubarb shape: expected one of {' '.join(RHUBARB_SHAPES)}, got {shape!r}") from None


def arkit_to_rhubarb(weights: np.ndarray) -> str:
    """52 ARKit weights → the Rhubarb shape letter that draws them best."""
    return RHUBARB_SHAPES[_SHAPE_OF_VISEME[int(np.argmax(arkit_to_visemes(weights)))]]
