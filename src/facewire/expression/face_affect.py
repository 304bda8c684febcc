"""Affect from the user's face: which of the seven expressions (or neutral) tracked blendshapes show.

Method: EMFACS rules on the shared AU table, no model trained on the real takes. The weights are
read back as action units (`facs.estimate_aus`) and compared with the EMFACS predictions:

* **prototypes**: for each emotion the pose of `emotion.PROTOTYPES` plus the other AU combinations
  EMFACS predicts for it (`VARIANTS`; FACS Investigator's Guide, Ekman, Friesen & Hager 2002,
  table 10-1: disgust as 9, 9+16+26, 9+17, 10, 10+16+26, 10+17; anger as 4+5+7+23, 4+5+7+17+24,
  4+5+7+10+23+26; sadness as 1+4+15, 6+15, 1+4+15+17; surprise 1+2+5B with and without the jaw;
  fear 1+2+4+5+26, 1+2+5, 5+20+26);
* **weights**: the jaw and the lip shapes that speech also makes (AU16, 18, 22, 26, 28) count
  `SPEECH_AU_WEIGHT` ×: every open-mouthed expression and every vowel opens the jaw, so it tells
  little, and it must not turn a talking face into surprise or fear;
* **masking** (Ekman, Friesen & O'Sullivan 1988, *J Pers Soc Psychol* 54:414; "miserable" and
  masking smiles): lip corners pulled up *together with* the AUs of a negative emotion — brow
  lowerer AU4, nose wrinkler AU9, upper-lip raiser AU10, lip-corner depressor AU15, chin raiser
  AU17, lip presser AU24 (`MASK_AUS`) — are not happiness. With ``m`` the norm of those AUs and
  the masking share ``k = clip((m − MASK_TRACE) / (MASK_FULL − MASK_TRACE), 0, 1)``, the happiness
  score is multiplied by ``1 − k`` and each negative emotion is also matched on the face *without*
  the smile (AU6, 12, 14 removed), gated by ``k``; a felt smile (AU6+12, no masking AUs beyond a
  trace) is untouched;
* activation ``a = ‖AUs‖`` (weighted; blinks, AU43, and gaze left out); score of each emotion
  ``cos(AUs, nearest prototype) · min(1, a / ACTIVATION_FULL)``, of neutral
  ``max(0, 1 − a / ACTIVATION_FULL)``; confidence: the winner's share of
  ``softmax(scores / TEMPERATURE)``.

Why rules: the only labelled real faces are the six calibrated holds in
``../shared/data/takes/neurosync`` — one performer, three labels (fearful, angry/disgusted, sad) —
too few to train eight categories. That performer's angry/disgusted hold is a grimace ARKit reports
largely as mouthSmile and cheekSquint, *with* nose wrinkle, upper-lip raise, brow lowering and chin
raise: the masking rule, not a fit to those takes, is what reads it as anger/disgust, and the
smiles of another performer (``../shared/data/takes/alexdjulin``: open-mouthed, no masking AUs)
stay happiness (``facewire bench affect`` prints both). `FaceAffectClassifier.fit` still adds
observed prototypes (the AU median of labelled frames) for a known user; fitted on this one
performer they also read other people's open-mouthed smiles as anger, so the default is rules only.

`FaceAffectStage` smooths the scores over time (exponential, `SMOOTHING_S`) with hysteresis, and
`EmpathyPolicy` turns the user's expression into the agent's: calm concern in response to anger or
disgust (never mirrored hostility), a smile back at a smile, concern at sadness or fear, shared
surprise (`RESPONSES`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame
from .emotion import EMOTIONS, AgentExpression, emotion_name, pose_weights
from .facs import au_weights, estimate_aus

__all__ = [
    "ACTIVATION_FULL",
    "FEATURE_AUS",
    "MASK_AUS",
    "MASK_FULL",
    "MASK_TRACE",
    "RESPONSES",
    "SMOOTHING_S",
    "SPEECH_AU_WEIGHT",
    "TEMPERATURE",
    "VARIANTS",
    "EmpathyPolicy",
    "FaceAffect",
    "FaceAffectClassifier",
    "FaceAffectStage",
    "au_features",
    "classify",
    "confusion",
]

FEATURE_AUS = tuple(a for a in sorted(estimate_aus(np.zeros(arkit.COUNT))) if a != 43)
"""AUs the classifier reads (every AU with its own ARKit shape but AU43, the blink)."""

ACTIVATION_FULL = 0.3
"""AU activation (norm) above which a face is fully expressive: **design**, a little under the
activation of the real holds' medians (0.35-0.8) and far above a calibrated neutral (< 0.05)."""

TEMPERATURE = 0.05
"""Softmax temperature of the confidence: **design**, cosine differences of 0.1 are decisive."""

SMOOTHING_S = 0.4
"""Time constant (s) of `FaceAffectStage`'s score smoothing: **design**, shorter than an
expression's apex (≈ 0.5-4 s, Ekman 2003) so a real expression registers, longer than a blink."""

SPEECH_AU_WEIGHT = 0.35
"""Weight of the AUs speech shares (16, 18, 22, 26, 28) in the AU vector: **design**, a fully open
jaw (AU26 = 1) then counts like a marked (0.35) brow action, not three times one."""

MASK_AUS = (4, 9, 10, 15, 17, 24)
"""AUs of negative emotions that turn a smile into a masking or miserable one (module doc)."""

MASK_TRACE = 0.1
"""Norm of the masking AUs a smile may carry and still be a smile: **design**, below FACS trace
intensity (A ≈ 0.2) — trackers report a little brow or nose motion in most smiles."""

MASK_FULL = 0.35
"""Norm of the masking AUs at which a smile no longer reads as happiness at all: **design**, one
marked (≈ 0.35) negative AU, about `ACTIVATION_FULL`."""

_SMILE_AUS = (6, 12, 14)

VARIANTS: Mapping[str, tuple[Mapping[str, float], ...]] = MappingProxyType({
    "happiness": ({"12": 0.8},),
    "sadness": ({"1": 0.6, "4": 0.5, "15": 0.5}, {"6": 0.5, "15": 0.6}, {"1": 0.6, "4": 0.5, "15": 0.4, "17": 0.5}),
    "surprise": ({"1": 0.7, "2": 0.7, "5B": 1.0, "27": 0.6}, {"1": 0.7, "2": 0.7, "5B": 1.0}),
    "fear": ({"1": 0.6, "2": 0.6, "4": 0.5, "5": 0.6, "26": 0.5}, {"1": 0.6, "2": 0.6, "5": 0.8},
             {"5": 0.6, "20": 0.6, "26": 0.4}),
    "anger": ({"4": 0.7, "5": 0.4, "7": 0.6, "10": 0.4, "23": 0.5, "26": 0.4},
              {"4": 0.7, "5": 0.4, "7": 0.6, "17": 0.5, "24": 0.6}),
    "disgust": ({"9": 0.7}, {"9": 0.6, "16": 0.5, "26": 0.4}, {"9": 0.6, "17": 0.5}, {"10": 0.6},
                {"10": 0.6, "16": 0.5, "26": 0.4}, {"10": 0.6, "17": 0.5}),
    "contempt": (),
})
"""Further EMFACS predictions per emotion besides its `emotion.PROTOTYPES` pose (FACS Investigator's
Guide table 10-1; intensities **design**, marked ≈ 0.5-0.7)."""

HYSTERESIS = 0.1
"""Smoothed probability by which a new label must beat the current one to replace it: **design**."""


def au_features(weights: np.ndarray) -> np.ndarray:
    """The AU intensities (`FEATURE_AUS` order, sides averaged) of 52 ARKit weights, then one more
    feature: the one-sidedness ``|L12 − R12| + |L14 − R14|`` of the lip corners, which tells
    contempt's unilateral R12+R14 from a symmetric smile with dimples."""
    aus = estimate_aus(weights, sides=True)
    x = [(aus[a][0] + aus[a][1]) / 2 for a in FEATURE_AUS]
    x.append(abs(aus[12][0] - aus[12][1]) + abs(aus[14][0] - aus[14][1]))
    return np.array(x, dtype=np.float64)


_WEIGHT = np.array([SPEECH_AU_WEIGHT if a in (16, 18, 22, 26, 28) else 1.0 for a in FEATURE_AUS] + [1.0])
_MASK = np.array([a in MASK_AUS for a in FEATURE_AUS] + [False])
_NOT_SMILE = np.array([a not in _SMILE_AUS for a in FEATURE_AUS] + [True], dtype=np.float64)


@dataclass(frozen=True)
class FaceAffect:
    """One classification: the label, its confidence, every category's probability, the AU activation."""

    emotion: str
    confidence: float
    probabilities: Mapping[str, float]
    activation: float

    def to_json_dict(self) -> dict:
        return {"emotion": self.emotion, "confidence": round(self.confidence, 3), "activation": round(self.activation, 3),
                "probabilities": {e: round(p, 3) for e, p in self.probabilities.items()}}


class FaceAffectClassifier:
    """Nearest EMFACS prototype in AU space with a neutral gate (module doc); optionally fitted prototypes."""

    def __init__(self, *, activation_full: float = ACTIVATION_FULL, temperature: float = TEMPERATURE) -> None:
        if not (math.isfinite(activation_full) and activation_full > 0 and math.isfinite(temperature) and temperature > 0):
            raise InputError(f"face affect: expected positive activation_full and temperature, got {activation_full!r}, {temperature!r}")
        self.activation_full = float(activation_full)
        self.temperature = float(temperature)
        self.prototypes: dict[str, list[np.ndarray]] = {
            e: [au_features(pose_weights(e)) * _WEIGHT] + [au_features(au_weights(v)) * _WEIGHT for v in VARIANTS[e]]
            for e in EMOTIONS[1:]}

    def fit(self, frames: Iterable[FaceFrame | np.ndarray], emotion: str) -> np.ndarray:
        """Add the AU median of expressive labelled frames as another prototype of ``emotion``; returns it.

        Frames below half the full activation (rests, blinks between holds) are left out of the median.
        """
        emotion = emotion_name(emotion)
        if emotion == "neutral":
            raise InputError("face affect fit: neutral is the activation gate, not a prototype; expected an emotion")
        feats = np.array([au_features(f.weights if isinstance(f, FaceFrame) else f) for f in frames])
        if feats.size == 0:
            raise InputError(f"face affect fit: expected frames labelled {emotion}, got none")
        active = feats[np.linalg.norm(feats, axis=1) >= self.activation_full / 2]
        if len(active) == 0:
            raise InputError(f"face affect fit: none of the {len(feats)} frames labelled {emotion} is expressive "
                             f"(AU activation ≥ {self.activation_full / 2:g})")
        prototype = np.median(active, axis=0) * _WEIGHT
        self.prototypes[emotion].append(prototype)
        return prototype

    def scores(self, weights: np.ndarray) -> tuple[dict[str, float], float]:
        """(category → score, activation) for 52 ARKit weights (module doc: prototypes, masking)."""
        x = au_features(weights) * _WEIGHT
        activation = float(np.linalg.norm(x))
        gate = min(1.0, activation / self.activation_full)
        mask = min(1.0, max(0.0, float(np.linalg.norm(x[_MASK])) - MASK_TRACE) / (MASK_FULL - MASK_TRACE))
        unsmiling = x * _NOT_SMILE
        scores = {"neutral": 1.0 - gate}
        for emotion, protos in self.prototypes.items():
            best = max(_cosine(x, p) for p in protos)
            if emotion == "happiness":
                best *= 1.0 - mask
            elif emotion != "contempt" and mask > 0:  # the negative emotion behind a masking smile
                best = max(best, mask * max(_cosine(unsmiling, p) for p in protos))
            scores[emotion] = best * gate
        return scores, activation

    def probabilities(self, scores: Mapping[str, float]) -> dict[str, float]:
        s = np.array([scores[e] for e in EMOTIONS])
        p = np.exp((s - s.max()) / self.temperature)
        p /= p.sum()
        return {e: float(v) for e, v in zip(EMOTIONS, p)}

    def classify(self, weights: np.ndarray | FaceFrame) -> FaceAffect:
        """The expression of one face (52 ARKit weights or a frame)."""
        w = weights.weights if isinstance(weights, FaceFrame) else np.asarray(weights, dtype=np.float64)
        if w.shape != (arkit.COUNT,) or not np.isfinite(w).all():
            raise InputError(f"face affect: expected {arkit.COUNT} finite ARKit weights, got shape {w.shape}")
        scores, activation = self.scores(w)
        probs = self.probabilities(scores)
        best = max(probs, key=probs.get)
        return FaceAffect(best, probs[best], MappingProxyType(probs), activation)


def _cosine(x: np.ndarray, p: np.ndarray) -> float:
    nx, np_ = float(np.linalg.norm(x)), float(np.linalg.norm(p))
    return float(x @ p) / (nx * np_) if nx > 0 and np_ > 0 else 0.0


_DEFAULT = FaceAffectClassifier()


def classify(weights: np.ndarray | FaceFrame) -> tuple[str, float]:
    """(emotion, confidence) of 52 ARKit weights with the default (rules-only) classifier."""
    result = _DEFAULT.classify(weights)
    return result.emotion, result.confidence


def confusion(truth: Iterable[str], predicted: Iterable[str], labels: tuple[str, ...] = EMOTIONS) -> str:
    """A confusion table (rows: truth, columns: prediction) as text, for tests and benchmarks."""
    pairs = list(zip(truth, predicted))
    cols = [label for label in labels if any(p == label for _, p in pairs) or any(t == label for t, _ in pairs)]
    width = max(9, *(len(c) for c in cols))
    first = max(width, len("truth \\ predicted")) + 2
    lines = ["truth \\ predicted".ljust(first) + " ".join(c[:width].rjust(width) for c in cols)]
    for t in cols:
        if not any(tt == t for tt, _ in pairs):
            continue
        row = [sum(1 for tt, pp in pairs if tt == t and pp == p) for p in cols]
        lines.append(t.ljust(first) + " ".join(str(n).rjust(width) for n in row))
    return "\n".join(lines)


class FaceAffectStage:
    """Watches a tracked face and keeps a smoothed, hysteretic reading of its expression.

    Frames pass through unchanged; ``current`` is the latest `FaceAffect` (smoothed probabilities).
    Untracked frames leave the reading as it was. ``reset()`` forgets it.
    """

    def __init__(self, classifier: FaceAffectClassifier | None = None, *, smoothing_s: float = SMOOTHING_S,
                 hysteresis: float = HYSTERESIS) -> None:
        if not (math.isfinite(smoothing_s) and smoothing_s >= 0 and math.isfinite(hysteresis) and 0 <= hysteresis < 1):
            raise InputError(f"face affect stage: expected smoothing_s ≥ 0 and hysteresis in [0, 1), got {smoothing_s!r}, {hysteresis!r}")
        self.classifier = classifier if classifier is not None else FaceAffectClassifier()
        self.smoothing_s = float(smoothing_s)
        self.hysteresis = float(hysteresis)
        self.reset()

    def reset(self) -> None:
        self._p: np.ndarray | None = None
        self._last_ns: int | None = None
        self.current = FaceAffect("neutral", 0.0, MappingProxyType({e: float(e == "neutral") for e in EMOTIONS}), 0.0)

    def process(self, frame: FaceFrame) -> FaceFrame:
        if not frame.tracked:
            return frame
        raw = self.classifier.classify(frame.weights)
        p = np.array([raw.probabilities[e] for e in EMOTIONS])
        if self._p is None or self._last_ns is None or frame.t_ns < self._last_ns or self.smoothing_s == 0:
            self._p = p
        else:
            k = 1.0 - math.exp(-(frame.t_ns - self._last_ns) / 1e9 / self.smoothing_s)
            self._p = self._p + k * (p - self._p)
        self._last_ns = frame.t_ns
        probs = {e: float(v) for e, v in zip(EMOTIONS, self._p)}
        label = self.current.emotion
        best = max(probs, key=probs.get)
        if self.current.confidence == 0.0 or probs[best] >= probs[label] + self.hysteresis:
            label = best
        self.current = FaceAffect(label, probs[label], MappingProxyType(probs), raw.activation)
        return frame


RESPONSES: Mapping[str, AgentExpression] = MappingProxyType({
    "neutral": AgentExpression("neutral", 0.0, reason="nothing to answer"),
    "happiness": AgentExpression("happiness", 0.7, reason="smile back at a smile"),
    "sadness": AgentExpression("sadness", 0.35, reason="concern at sadness: soft inner brows, not full grief"),
    "surprise": AgentExpression("surprise", 0.5, reason="share the surprise, a little less"),
    "fear": AgentExpression("sadness", 0.3, reason="reassuring concern at fear, not mirrored alarm"),
    "anger": AgentExpression("sadness", 0.2, reason="calm concern in response to anger, never mirrored anger"),
    "disgust": AgentExpression("sadness", 0.15, reason="calm concern at disgust"),
    "contempt": AgentExpression("neutral", 0.0, reason="stay calm at contempt"),
})
"""User's expression → the agent's (design; "concern" is a light sadness: inner brows up, a slight frown)."""


class EmpathyPolicy:
    """Maps the user's expression to the agent's (`RESPONSES`), scaled by confidence.

    Below ``min_confidence`` the agent stays neutral; above it the response's intensity is scaled by
    the confidence, so an uncertain reading gets a faint answer.
    """

    def __init__(self, responses: Mapping[str, AgentExpression] = RESPONSES, *, min_confidence: float = 0.5) -> None:
        missing = [e for e in EMOTIONS if e not in responses]
        if missing:
            raise InputError(f"empathy responses: expected one for every category, missing {', '.join(missing)}")
        if not (math.isfinite(min_confidence) and 0 <= min_confidence <= 1):
            raise InputError(f"empathy min_confidence: expected a number in [0, 1], got {min_confidence!r}")
        self.responses = dict(responses)
        self.min_confidence = float(min_confidence)

    def respond(self, user: FaceAffect | tuple[str, float]) -> AgentExpression:
        emotion, confidence = (user.emotion, user.confidence) if isinstance(user, FaceAffect) else user
        emotion = emotion_name(emotion)
        if confidence < self.min_confidence:
            return AgentExpression("neutral", 0.0, reason=f"unsure of the user's expression ({emotion}, {confidence:.2f})")
        r = self.responses[emotion]
        return AgentExpression(r.emotion, r.intensity * float(confidence), r.blend, r.reason)
