"""Affect from the user's face: which of the seven expressions (or neutral) tracked blendshapes show.

Method: EMFACS-style rules on the shared AU table, chosen over a model trained on the real takes.
The weights are read back as action units (`facs.estimate_aus`); the expression is the EMFACS
prototype (`emotion.PROTOTYPES`) nearest by cosine in AU space, with an activation gate for neutral:

* activation ``a = ‖AUs‖`` (Euclidean norm of the AU intensities and the lip-corner one-sidedness of
  `au_features`; blinks, AU43, and gaze left out);
* score of each emotion ``cos(AUs, prototype) · min(1, a / ACTIVATION_FULL)``, of neutral
  ``max(0, 1 − a / ACTIVATION_FULL)``;
* confidence: the winner's share of ``softmax(scores / TEMPERATURE)``.

Why rules: the only labelled real faces are the six calibrated holds in
``../shared/data/takes/neurosync`` — one performer, three labels (fearful, angry/disgusted, sad) —
too few to train the eight categories. The rules recognise the fearful and sad holds (see the test
and ``facewire bench alive``); that performer's angry/disgusted hold is a grimace that ARKit reports
largely on mouthSmile and cheekSquint (an upper-lip raise pulling the corners back), which the rules
read as a smile. `FaceAffectClassifier.fit` adds observed prototypes (the AU median of labelled
frames) next to the EMFACS ones; fitted on one angry/disgusted hold it recognises the other
(leave-one-take-out in the test), but it then also reads other people's open-mouthed smiles
(``../shared/data/takes/alexdjulin``) as anger, so the default stays with the rules alone.

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
from .facs import estimate_aus

__all__ = [
    "ACTIVATION_FULL",
    "FEATURE_AUS",
    "RESPONSES",
    "SMOOTHING_S",
    "TEMPERATURE",
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
        self.prototypes: dict[str, list[np.ndarray]] = {e: [au_features(pose_weights(e))] for e in EMOTIONS[1:]}

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
        prototype = np.median(active, axis=0)
        self.prototypes[emotion].append(prototype)
        return prototype

    def scores(self, weights: np.ndarray) -> tuple[dict[str, float], float]:
        """(category → score, activation) for 52 ARKit weights."""
        x = au_features(weights)
        activation = float(np.linalg.norm(x))
        gate = min(1.0, activation / self.activation_full)
        scores = {"neutral": 1.0 - gate}
        for emotion, protos in self.prototypes.items():
            best = 0.0
            if activation > 0:
                for p in protos:
                    best = max(best, float(x @ p) / (activation * float(np.linalg.norm(p))))
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
    lines = ["truth \\ predicted".ljust(width + 2) + " ".join(c[:width].rjust(width) for c in cols)]
    for t in cols:
        if not any(tt == t for tt, _ in pairs):
            continue
        row = [sum(1 for tt, pp in pairs if tt == t and pp == p) for p in cols]
        lines.append(t.ljust(width + 2) + " ".join(str(n).rjust(width) for n in row))
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
