"""Emotion with dynamics: the seven universal expressions as FACS poses, timed episodes, a mood.

Poses. Each emotion is an EMFACS prototype — the action-unit combinations Ekman & Friesen's EMFACS
(Friesen & Ekman 1983; FACS Investigator's Guide, Ekman, Friesen & Hager 2002, table 10-1; the
prototypes as tabulated by Matsumoto & Ekman 2008 and used in Du, Tao & Martinez 2014, *PNAS*
111:E1454) predict for each of the seven universal expressions (Ekman 1992, *Cognition and Emotion*
6:169) — turned into ARKit weights through `facewire.expression.facs`. Intensities are **design**:
marked (≈ C-D) for the defining AUs, lighter for the accompanying ones, checked against the real
calibrated emotion holds in ``../shared/data/takes/neurosync`` (fearful: brows up, eyes wide, lips
stretched; sad: inner brows up with brows down, frown, chin raised):

===========  =================================  ======================================================
emotion      AUs (intensity)                    notes
===========  =================================  ======================================================
happiness    6 (0.6) 12 (0.85) 25 (0.3)         6+12 is the Duchenne smile; lips part a little (25)
sadness      1 (0.7) 4 (0.45) 15 (0.6) 17 (0.3) 1+4+15 with the chin raiser the takes show
surprise     1 (0.8) 2 (0.8) 5B 26 (0.7)        5B: the upper lid only slightly raised
fear         1 2 4 5 7 20 26                    brows raised and drawn together, lids up and tight
anger        4 (0.85) 5 (0.35) 7 (0.6) 23 (0.7) lowered brows, glaring lids, tightened lips
disgust      9 (0.75) 10 (0.4) 15 (0.45) 16     nose wrinkle with the upper-lip raise of the variant
contempt     R12 (0.5) R14 (0.7)                unilateral: only the right lip corner
===========  =================================  ======================================================

Contempt is R12A+R14A in EMFACS: trace intensity on a person, far too faint for an avatar's
rig, so it is raised to slight-marked here and scales with the episode's intensity like the others.

Blends. Poses combine in AU space, action unit by action unit, by maximum of each emotion's
weighted intensity: the compound expressions Du et al. measured (happily surprised = 1+2+12+25,
sadly angry, fearfully surprised …) are the union of their components' AUs, and the maximum keeps
an AU two components share (AU1 of sadness and surprise) from doubling.

Valence and arousal. `circumplex` maps a point of Russell's circumplex (1980, *J Pers Soc Psychol*
39:1161; valence −1..1 left to right, arousal −1..1 bottom to top) to a mix of the two nearest
emotions by angle, with the distance from the centre as intensity. Anchor angles follow Russell's
placement of the category words (happy ≈ 10-30°, astonished ≈ 70°, afraid ≈ 115°, angry ≈ 125°,
sad ≈ 210°); disgust and contempt, which his circle lacks, sit at negative valence and moderate
arousal between anger and sadness (Scherer 2005, *Soc Sci Inf* 44:695). Low arousal has no
universal expression: sleepy/tired (270°) is neutral and content/calm (330°) a faint smile
(happiness × 0.4). Emotions are placed at (cos θ, sin θ) by `CIRCUMPLEX`.

Dynamics. An episode (`EmotionStage.express`) rises over ``onset_s``, holds its apex for
``apex_s`` and falls over ``offset_s``, each ramp a raised-cosine ease (zero slope at both ends, so
no pop). Spontaneous expressions last about 0.5-4 s with onsets of a few tenths of a second
(Ekman 2003, *Emotions Revealed*; smiles: onset ≈ 0.5 s, Schmidt, Ambadar, Cohn & Reed 2006,
*J Nonverbal Behav* 30:37); the defaults are 0.4 s onset, 1.5 s apex, 1.0 s offset. A later episode
cross-fades over what was showing as it rises. Between episodes the face rests at the **mood**
(`EmotionStage.set_mood`), a low-intensity background expression that itself drifts to a new mood
with time constant `MOOD_TAU_S`, so an episode decays towards the mood, not to a blank face.

Speech. `EmotionStage.process` blends the emotion into the incoming frame (which may carry a
speech layer's mouth, or a tracked face):

* brows, eyes (squint, wide, blink), cheeks and nose: ``max(frame, emotion)`` — emotion owns the
  upper face, and never hides a raise the frame already has;
* jaw and mouth, not speaking: ``max(frame, emotion)`` too;
* jaw and mouth, speaking (``state == "speaking"``): speech keeps the mouth. Only the lip-corner
  shapes (mouthSmile, mouthFrown, mouthDimple) of the emotion are added, at `SPEAKING_MOUTH_GAIN`,
  ``frame + gain·emotion``, so a smile or a frown still shows around the visemes; every other
  emotional mouth and jaw shape (jaw drop, lip stretch, press, upper-lip raise) is left out, since it
  would fight the visemes. Entering and leaving speech cross-fades over `SPEECH_FADE_S`.

For `facewire.expression.mixer`, `emotion_layer` makes the same blend as a `Layer`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame
from .blink import ConversationalState
from .facs import au_weights
from .mixer import Layer

__all__ = [
    "ALIASES",
    "CIRCUMPLEX",
    "EMOTIONS",
    "MOOD_TAU_S",
    "PROTOTYPES",
    "SPEAKING_MOUTH_GAIN",
    "SPEECH_FADE_S",
    "AgentExpression",
    "EmotionStage",
    "Episode",
    "circumplex",
    "emotion_layer",
    "emotion_name",
    "envelope",
    "mix_aus",
    "pose_weights",
    "valence_arousal",
]

EMOTIONS = ("neutral", "happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt")
"""Neutral and Ekman's seven universal expressions, in this order everywhere."""

ALIASES: Mapping[str, str] = MappingProxyType({
    "happy": "happiness", "joy": "happiness", "smile": "happiness", "sad": "sadness",
    "surprised": "surprise", "afraid": "fear", "fearful": "fear", "scared": "fear",
    "angry": "anger", "disgusted": "disgust", "contemptuous": "contempt", "calm": "neutral",
})
"""Adjectives and near-synonyms accepted for the category names."""

PROTOTYPES: Mapping[str, Mapping[str, float]] = MappingProxyType({e: MappingProxyType(p) for e, p in {
    "neutral": {},
    "happiness": {"6": 0.6, "12": 0.85, "25": 0.3},
    "sadness": {"1": 0.7, "4": 0.45, "15": 0.6, "17": 0.3},
    "surprise": {"1": 0.8, "2": 0.8, "5B": 1.0, "26": 0.7},
    "fear": {"1": 0.75, "2": 0.55, "4": 0.4, "5": 0.7, "7": 0.3, "20": 0.6, "26": 0.4},
    "anger": {"4": 0.85, "5": 0.35, "7": 0.6, "23": 0.7},
    "disgust": {"9": 0.75, "10": 0.4, "15": 0.45, "16": 0.3},
    "contempt": {"R12": 0.5, "R14": 0.7},
}.items()})
"""Emotion → AU code → intensity at full expression (see the module table)."""

CIRCUMPLEX: Mapping[str, float] = MappingProxyType({
    "happiness": 30.0, "surprise": 75.0, "fear": 115.0, "anger": 130.0, "disgust": 150.0,
    "contempt": 165.0, "sadness": 210.0,
})
"""Emotion → angle (degrees) on the valence (0°) / arousal (90°) circle (see the module doc)."""

# The circle walked anticlockwise: (angle, emotion, gain). Low arousal has no universal expression.
_ANCHORS = tuple(sorted([(a, e, 1.0) for e, a in CIRCUMPLEX.items()] + [(270.0, "neutral", 0.0), (330.0, "happiness", 0.4)]))

MOOD_TAU_S = 2.0
"""Time constant (s) with which the mood drifts to a newly set one: **design**, moods change over
seconds where expressions change over tenths."""

SPEAKING_MOUTH_GAIN = 0.5
"""Share of the emotion's lip-corner shapes kept while speaking: **design**, enough for a smile to
read around the visemes (a 0.85 smile shows as ≈ 0.4) without pulling the corners off the phonemes."""

SPEECH_FADE_S = 0.15
"""Cross-fade (s) between the idle and the speaking mouth blend: **design**, about one syllable."""

_CORNERS = np.array([arkit.INDEX[n] for n in arkit.NAMES if n.startswith(("mouthSmile", "mouthFrown", "mouthDimple"))], dtype=np.intp)
_MOUTH = np.array([arkit.INDEX[n] for n in arkit.GROUPS["jaw"] + arkit.GROUPS["mouth"]], dtype=np.intp)
_MOUTH_OTHER = np.setdiff1d(_MOUTH, _CORNERS)
_UPPER = np.array(sorted(arkit.INDEX[n] for g in ("brows", "cheeks", "nose") for n in arkit.GROUPS[g])
                  + [arkit.INDEX[n] for n in arkit.NAMES if n.startswith(("eyeSquint", "eyeWide", "eyeBlink"))], dtype=np.intp)


def emotion_name(name: str) -> str:
    """The category for a name or alias (case-insensitive); `InputError` listing the choices."""
    if isinstance(name, str):
        key = name.strip().lower()
        key = ALIASES.get(key, key)
        if key in EMOTIONS:
            return key
    raise InputError(f"emotion: expected one of {', '.join(EMOTIONS)} (or {', '.join(ALIASES)}), got {name!r}")


def _unit(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputError(f"{what}: expected a number in [0, 1], got {value!r}")
    return float(value)


def _mix(emotion: str | Mapping[str, float], intensity: float = 1.0,
         blend: tuple[str, float] | None = None) -> dict[str, float]:
    """A validated emotion → weight mix, scaled by ``intensity``."""
    intensity = _unit(intensity, "emotion intensity")
    if isinstance(emotion, Mapping):
        mix = {emotion_name(k): _unit(v, f"emotion mix weight of {k!r}") for k, v in emotion.items()}
    else:
        mix = {emotion_name(emotion): 1.0}
    if blend is not None:
        if not (isinstance(blend, (tuple, list)) and len(blend) == 2):
            raise InputError(f"emotion blend: expected (emotion, weight), got {blend!r}")
        second = emotion_name(blend[0])
        mix[second] = max(mix.get(second, 0.0), _unit(blend[1], "emotion blend weight"))
    return {e: w * intensity for e, w in mix.items()}


def mix_aus(mix: Mapping[str, float]) -> dict[str, float]:
    """AU code → intensity of an emotion mix: AU-wise maximum of weight × prototype intensity."""
    aus: dict[str, float] = {}
    for emotion, weight in mix.items():
        for code, level in PROTOTYPES[emotion_name(emotion)].items():
            aus[code] = max(aus.get(code, 0.0), weight * level)
    return aus


def pose_weights(emotion: str | Mapping[str, float], intensity: float = 1.0, *,
                 blend: tuple[str, float] | None = None) -> np.ndarray:
    """52 ARKit weights (float64) of an emotion, a mix ``{emotion: weight}``, or one blended with a second."""
    return au_weights(mix_aus(_mix(emotion, intensity, blend)))


def circumplex(valence: float, arousal: float) -> tuple[dict[str, float], float]:
    """(emotion → share, intensity) for a point of the valence/arousal circle (see the module doc).

    The shares of the two anchors either side of the point's angle sum to 1 (their gains applied);
    intensity is the distance from the centre, at most 1.
    """
    for value, what in ((valence, "valence"), (arousal, "arousal")):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(value) or not -1.0 <= value <= 1.0:
            raise InputError(f"{what}: expected a number in [-1, 1], got {value!r}")
    intensity = min(1.0, math.hypot(valence, arousal))
    if intensity == 0.0:
        return {"neutral": 1.0}, 0.0
    angle = math.degrees(math.atan2(arousal, valence)) % 360.0
    anchors = _ANCHORS + ((_ANCHORS[0][0] + 360.0,) + _ANCHORS[0][1:],)
    if angle < anchors[0][0]:
        angle += 360.0
    for (a0, e0, g0), (a1, e1, g1) in itertools.pairwise(anchors):
        if a0 <= angle <= a1:
            t = (angle - a0) / (a1 - a0)
            mix: dict[str, float] = {}
            for e, share in ((e0, (1 - t) * g0), (e1, t * g1)):
                if share > 0:
                    mix[e] = mix.get(e, 0.0) + share
            return (mix or {"neutral": 1.0}), intensity
    raise AssertionError("unreachable: the anchors cover the circle")  # pragma: no cover


def valence_arousal(emotion: str) -> tuple[float, float]:
    """The unit-circle point (valence, arousal) where `CIRCUMPLEX` places an emotion (0, 0 for neutral)."""
    emotion = emotion_name(emotion)
    if emotion == "neutral":
        return 0.0, 0.0
    a = math.radians(CIRCUMPLEX[emotion])
    return math.cos(a), math.sin(a)


def envelope(t_s: float, onset_s: float, apex_s: float, offset_s: float) -> float:
    """Episode level at ``t_s`` after its start: raised-cosine rise, hold, raised-cosine fall."""
    if t_s <= 0.0:
        return 0.0
    if t_s < onset_s:
        return 0.5 - 0.5 * math.cos(math.pi * t_s / onset_s)
    t_s -= onset_s
    if t_s <= apex_s:
        return 1.0
    t_s -= apex_s
    if t_s < offset_s:
        return 0.5 + 0.5 * math.cos(math.pi * t_s / offset_s)
    return 0.0


@dataclass(frozen=True)
class Episode:
    """One scheduled expression: its mix (emotion → weight, intensity applied) and timing.

    ``start_ns`` is media time; None until the stage sees its first frame (the episode then starts there).
    """

    mix: Mapping[str, float]
    onset_s: float
    apex_s: float
    offset_s: float
    start_ns: int | None = None
    weights: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weights = au_weights(mix_aus(self.mix))
        weights.flags.writeable = False
        object.__setattr__(self, "weights", weights)

    @property
    def duration_s(self) -> float:
        return self.onset_s + self.apex_s + self.offset_s

    @property
    def apex_ns(self) -> int | None:
        """Media time the apex is reached (start + onset)."""
        return None if self.start_ns is None else self.start_ns + round(self.onset_s * 1e9)

    def level(self, t_ns: int) -> float:
        if self.start_ns is None:
            return 0.0
        return envelope((t_ns - self.start_ns) / 1e9, self.onset_s, self.apex_s, self.offset_s)


def _seconds(value: float, what: str, *, positive: bool) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise InputError(f"{what}: expected a {'positive' if positive else 'non-negative'} number of seconds, got {value!r}")
    return float(value)


class EmotionStage(ConversationalState):
    """Adds emotional expression, with onset/apex/offset dynamics and a mood, to a frame stream.

    ``express`` schedules an episode; ``set_mood`` sets the background the face rests at;
    ``state`` (``"speaking"`` or not, from `ConversationalState`) selects how the mouth blends with
    speech (module doc). Time comes from the frames (``t_ns``): the output does not depend on the
    frame rate. Frames must arrive in time order; one earlier than the last restarts the clocks
    (scheduled episodes and the mood stay). No randomness. ``reset()`` forgets episodes, mood and state.
    """

    _state_label = "emotion state"

    def __init__(self, *, mood: str | Mapping[str, float] | None = None, mood_intensity: float = 0.25,
                 state: str = "rest", speaking_mouth_gain: float = SPEAKING_MOUTH_GAIN,
                 mood_tau_s: float = MOOD_TAU_S, speech_fade_s: float = SPEECH_FADE_S) -> None:
        self.speaking_mouth_gain = _unit(speaking_mouth_gain, "speaking mouth gain")
        self.mood_tau_s = _seconds(mood_tau_s, "mood time constant", positive=True)
        self.speech_fade_s = _seconds(speech_fade_s, "speech fade", positive=False)
        self._check_state(state)
        self._initial = (state, mood, mood_intensity)
        self.reset()

    # -- control -------------------------------------------------------------------------------
    def reset(self) -> None:
        state, mood, mood_intensity = self._initial
        self._state = state
        self.episodes: list[Episode] = []
        self._last_ns: int | None = None
        self._speaking = 1.0 if state == "speaking" else 0.0
        self._mood_mix = _mix(mood, mood_intensity) if mood is not None else {}
        self._mood_target = au_weights(mix_aus(self._mood_mix))
        self._mood_now = self._mood_target.copy()  # the first mood is there from the start

    def set_state(self, state: str) -> None:
        self._check_state(state)
        self._state = state

    def set_mood(self, emotion: str | Mapping[str, float] | None = None, intensity: float = 0.25, *,
                 valence: float | None = None, arousal: float | None = None) -> dict[str, float]:
        """Set the mood the face rests at: an emotion (or mix) at ``intensity``, or a valence/arousal point.

        With valence and arousal the mix comes from `circumplex` and ``intensity`` scales its own
        (distance from the centre). The face drifts there with `MOOD_TAU_S`. Returns the mood's mix.
        """
        if (valence is None) != (arousal is None):
            raise InputError("mood: expected both valence and arousal, or neither")
        if valence is not None:
            if emotion is not None:
                raise InputError("mood: expected an emotion or a valence/arousal point, not both")
            mix, radius = circumplex(valence, arousal)
            mix = _mix(mix, _unit(intensity, "mood intensity") * radius)
        else:
            mix = _mix(emotion if emotion is not None else "neutral", intensity)
        self._mood_mix = {e: w for e, w in mix.items() if e != "neutral" and w > 0}
        self._mood_target = au_weights(mix_aus(self._mood_mix))
        return dict(self._mood_mix)

    @property
    def mood(self) -> dict[str, float]:
        """The mood set last (emotion → weight, intensity applied); empty for a neutral mood."""
        return dict(self._mood_mix)

    def express(self, emotion: str | Mapping[str, float], intensity: float = 1.0, *,
                blend: tuple[str, float] | None = None, onset_s: float = 0.4, apex_s: float = 1.5,
                offset_s: float = 1.0, at_ns: int | None = None) -> Episode:
        """Schedule an episode of ``emotion`` (or a mix) at ``intensity``, optionally blended with a second.

        It starts at media time ``at_ns`` (default: the last frame's time), reaches its apex
        ``onset_s`` later, holds for ``apex_s`` and returns to the mood over ``offset_s``.
        """
        mix = _mix(emotion, intensity, blend)
        if at_ns is not None and (isinstance(at_ns, bool) or not isinstance(at_ns, (int, np.integer))):
            raise InputError(f"episode start: expected integer nanoseconds of media time, got {at_ns!r}")
        episode = Episode(MappingProxyType(mix), _seconds(onset_s, "onset", positive=True),
                          _seconds(apex_s, "apex", positive=False), _seconds(offset_s, "offset", positive=True),
                          int(at_ns) if at_ns is not None else self._last_ns)
        self.episodes.append(episode)
        self.episodes.sort(key=lambda e: -1 if e.start_ns is None else e.start_ns)
        return episode

    def clear(self) -> None:
        """Drop every scheduled episode (the face returns to the mood at once)."""
        self.episodes.clear()

    # -- evaluation ------------------------------------------------------------------------------
    def _advance(self, t_ns: int) -> float:
        """Move the clocks to ``t_ns``; returns the elapsed seconds (0 on the first or a restarted frame)."""
        dt = 0.0 if self._last_ns is None or t_ns < self._last_ns else (t_ns - self._last_ns) / 1e9
        if self._last_ns is None:
            self.episodes = [e if e.start_ns is not None else Episode(e.mix, e.onset_s, e.apex_s, e.offset_s, t_ns)
                             for e in self.episodes]
        self._last_ns = t_ns
        if dt > 0:
            self._mood_now += (self._mood_target - self._mood_now) * (1.0 - math.exp(-dt / self.mood_tau_s))
            target = 1.0 if self._state == "speaking" else 0.0
            step = dt / self.speech_fade_s if self.speech_fade_s > 0 else 1.0
            self._speaking += max(-step, min(step, target - self._speaking))
        elif self.speech_fade_s == 0:
            self._speaking = 1.0 if self._state == "speaking" else 0.0
        self.episodes = [e for e in self.episodes if e.start_ns is None or (t_ns - e.start_ns) / 1e9 < e.duration_s]
        return dt

    def emotion_weights(self, t_ns: int) -> np.ndarray:
        """The emotion's own 52 weights at ``t_ns`` (mood plus episodes), advancing the clocks."""
        self._advance(int(t_ns))
        out = self._mood_now.copy()
        for episode in self.episodes:
            level = episode.level(t_ns)
            if level > 0.0:
                out += level * (episode.weights - out)
        return out

    def expressing(self, t_ns: int | None = None) -> dict[str, float]:
        """Emotion → weight showing at ``t_ns`` (default: the last frame), mood and episodes cross-faded.

        Read-only: it does not advance the clocks.
        """
        t_ns = self._last_ns if t_ns is None else int(t_ns)
        mix = dict(self._mood_mix)
        for episode in self.episodes:
            level = episode.level(t_ns) if t_ns is not None else 0.0
            if level > 0.0:
                mix = {e: (1 - level) * mix.get(e, 0.0) + level * episode.mix.get(e, 0.0)
                       for e in set(mix) | set(episode.mix)}
        return {e: w for e, w in mix.items() if w > 1e-6 and e != "neutral"}

    def process(self, frame: FaceFrame) -> FaceFrame:
        emo = self.emotion_weights(frame.t_ns)
        if not emo.any():
            return frame
        base = frame.weights.astype(np.float64)
        out = base.copy()
        out[_UPPER] = np.maximum(base[_UPPER], emo[_UPPER])
        idle = np.maximum(base[_MOUTH], emo[_MOUTH])
        if self._speaking > 0.0:
            speech = base.copy()
            speech[_CORNERS] += self.speaking_mouth_gain * emo[_CORNERS]
            s = self._speaking
            out[_MOUTH] = (1 - s) * idle + s * speech[_MOUTH]
        else:
            out[_MOUTH] = idle
        return frame.replace(weights=np.clip(out, 0.0, 1.0).astype(np.float32))


@dataclass(frozen=True)
class AgentExpression:
    """What an agent should show: an emotion at an intensity, optionally blended, and why.

    Made by the conversation rules (`facewire.expression.affect.ConversationAffect`) and by the
    empathy rules for the user's face (`facewire.expression.face_affect.EmpathyPolicy`).
    """

    emotion: str
    intensity: float
    blend: tuple[str, float] | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "emotion", emotion_name(self.emotion))
        object.__setattr__(self, "intensity", _unit(self.intensity, "agent expression intensity"))
        if self.blend is not None:
            _mix(self.emotion, 1.0, self.blend)  # validates the second emotion and its weight
            object.__setattr__(self, "blend", (emotion_name(self.blend[0]), float(self.blend[1])))

    def apply(self, stage: EmotionStage, **timing: float | None) -> Episode | None:
        """Schedule it on ``stage`` (``onset_s``/``apex_s``/``offset_s``/``at_ns`` pass through);
        a neutral expression schedules nothing and returns None."""
        if self.emotion == "neutral" and self.blend is None or self.intensity == 0.0:
            return None
        return stage.express(self.emotion, self.intensity, blend=self.blend, **timing)

    def to_json_dict(self) -> dict:
        d = {"emotion": self.emotion, "intensity": round(self.intensity, 3), "reason": self.reason}
        if self.blend is not None:
            d["blend"] = {"emotion": self.blend[0], "weight": round(self.blend[1], 3)}
        return d


def emotion_layer(stage: EmotionStage, *, name: str = "emotion", speaking: bool = False,
                  speaking_mouth_gain: float = SPEAKING_MOUTH_GAIN) -> Layer:
    """A `LayerMixer` layer of the stage's emotion, blending as `EmotionStage.process` does.

    ``speaking=True`` gives the speaking blend (lip corners added at ``speaking_mouth_gain``, the
    rest of the mouth left to the layers below); otherwise the emotion's mouth blends by maximum.
    Swap layers (or use two with `LayerMixer.set_weight`) to change between them.
    """
    blend: dict[str, str | tuple[str, float]] = {"brows": "max", "cheeks": "max", "nose": "max",
                                                 "eyeSquint": "max", "eyeWide": "max", "eyeBlink": "max"}
    if speaking:
        gain = _unit(speaking_mouth_gain, "speaking mouth gain")
        blend.update({"mouthSmile": ("add", gain), "mouthFrown": ("add", gain), "mouthDimple": ("add", gain)})
    else:
        blend.update({"jaw": "max", "mouth": "max"})
    return Layer(name, lambda frame: stage.emotion_weights(frame.t_ns), blend)
