"""Text → a whole talking, blinking, looking, emoting take: TTS, lip sync, affect, blinks and gaze, mixed.

`animate_text` is what ``facewire animate`` runs. The text (or, with an LLM hook, the LLM's reply to
it) is spoken with `facewire.audio.tts.synthesize` and lip-synced with `facewire.audio.animate.animate`
(coarticulated visemes, loudness-driven jaw, prosody brows and nods, phrase ends). Its affect comes
from `facewire.expression.affect.analyse` (or the LLM's label) and shows as one `EmotionStage`
episode over the utterance, resting at the ``mood`` before and after. `GazeStage` and `BlinkStage`
animate the eyes in the conversational state of the moment — ``rest`` before the avatar speaks,
``speaking`` while it speaks (gaze aversion, more blinks, a blink chance at every phrase end),
``listening`` afterwards — and large gaze shifts may carry a blink. Everything is mixed by one
`LayerMixer`, lowest first: procedural eyes (idle), emotion, speech on the mouth (jaw, lips,
tongue, head nod; prosody brows added), the emotion's lip corners while speaking. Speech and the
two emotion blends fade in and out over the mixer's cross-fade, so nothing pops at the utterance's
edges.

Timing (**design**): the speech starts after ``lead_in_s`` (0.3 s: the face is seen at rest first);
the emotion's onset starts 0.2 s before the voice (expressions lead speech slightly), holds over the
utterance and falls over 1 s; the take ends ``tail_s`` (1 s) after the audio, unless a longer
``duration_s`` is asked for. The analyser's intensities are conservative (0.3-0.6 for clear
sentences); the face shows ``0.4 + 0.6 × intensity`` so that an expressive sentence reads on an
avatar. The procedural layers are seeded; espeak-ng's own output varies by a few samples between
calls (measured: 36 800-36 804 samples for the same sentence), so a take repeats exactly for the
same seed and the same synthesised `Speech` (``speech=``), not for the same text alone.

Without espeak-ng (`ModelError`), the take has the procedural layers and the emotion only, over an
estimated speaking time (0.33 s per word, 175 words per minute), and says so in `AnimatedTake.warnings`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, ModelError
from ..frame import FaceFrame
from .affect import MAX_TEXT_CHARS, analyse
from .blink import BlinkStage
from .emotion import AgentExpression, EmotionStage, emotion_layer, emotion_name
from .gaze import GazeStage
from .mixer import PRIORITY, Layer, LayerMixer

__all__ = ["EMOTION_LEAD_S", "LEAD_IN_S", "SOURCE", "TAIL_S", "AnimatedTake", "animate_text", "shown_intensity"]

SOURCE = "facewire-animate"
LEAD_IN_S = 0.3
"""Silence before the voice starts: **design** (the face is seen at rest first)."""
TAIL_S = 1.0
"""Take length after the audio ends: **design** (the emotion falls back to the mood, the eyes listen)."""
EMOTION_LEAD_S = 0.2
"""The emotion's onset starts this long before the voice: **design** (expressions lead speech slightly)."""
MAX_DURATION_S = 3600.0
_SECONDS_PER_WORD = 60.0 / 175.0


def shown_intensity(analysed: float) -> float:
    """Episode intensity for an analyser intensity (module doc: 0.4 + 0.6 × intensity)."""
    return min(1.0, 0.4 + 0.6 * float(analysed))


@dataclass(frozen=True)
class AnimatedTake:
    """The frames of a take and how they were made.

    ``speech_start_s``/``speech_end_s`` bound the voice in take time; ``samples`` (mono float32 at
    ``sample_rate``) is the audio of the whole take, silence included, or None without TTS.
    ``source`` says where the expression came from (``"local"`` analyser or ``"llm"``).
    """

    frames: tuple[FaceFrame, ...]
    fps: float
    spoken_text: str
    expression: AgentExpression
    source: str
    speech_start_s: float
    speech_end_s: float
    samples: np.ndarray | None = field(default=None, repr=False)
    sample_rate: int = 0
    blink_onsets_s: tuple[float, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return len(self.frames) / self.fps


def _check_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"text: expected something to say, got {text!r}")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"text: expected at most {MAX_TEXT_CHARS} characters, got {len(text)}")
    return text.strip()


def _positive(value: float | None, what: str, *, upper: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value <= upper:
        raise InputError(f"{what}: expected a number of seconds in (0, {upper:g}], got {value!r}")
    return float(value)


def animate_text(text: str, *, mood: str | None = None, mood_intensity: float = 0.25, duration_s: float | None = None,
                 voice: str = "en-us", rate_wpm: int = 175, fps: float = 60.0, seed: int | None = 0,
                 llm=None, speech=None, lead_in_s: float = LEAD_IN_S, tail_s: float = TAIL_S,
                 progress: Callable[[int, int], None] | None = None) -> AnimatedTake:
    """A full take for ``text`` (module doc). ``llm`` is an `llm.LLMAffect`: the text is then the
    user's words and the LLM's reply is spoken; on any LLM failure the text itself is spoken with the
    local analyser's expression. ``speech`` is a `tts.Speech` of the text already synthesised (it is
    then spoken as it is). ``progress(done, total)`` is called now and then while mixing."""
    text = _check_text(text)
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 1 <= fps <= 240):
        raise InputError(f"fps: expected 1..240 frames per second, got {fps!r}")
    duration_s = _positive(duration_s, "duration", upper=MAX_DURATION_S)
    if mood is not None:
        mood = emotion_name(mood)
    warnings: list[str] = []

    # -- what to say and what to show
    source = "local"
    spoken = text
    expression: AgentExpression | None = None
    if llm is not None:
        result = llm.respond(text)
        source = result.source
        if result.reply:
            spoken = _check_text(result.reply)
            expression = result.expression
        elif result.error:
            warnings.append(f"{result.error}; speaking the text itself")
    if expression is None:
        a = analyse(spoken)
        expression = (AgentExpression("neutral", 0.0, reason="the text reads neutral") if a.emotion == "neutral"
                      else AgentExpression(a.emotion, shown_intensity(a.intensity), reason="the text's affect"))

    # -- speech
    lead = round(max(0.0, float(lead_in_s)) * fps)
    lip: Sequence[FaceFrame] = ()
    samples, rate = None, 0
    try:
        from ..audio.animate import animate
        from ..audio.tts import synthesize

        if speech is None:
            speech = synthesize(spoken, voice=voice, rate_wpm=rate_wpm)
        elif llm is not None or speech.text.strip() != spoken:
            raise InputError(f"speech: expected the synthesised text {spoken!r}, got {speech.text!r}")
        lip = animate(speech.phones, speech.samples, fps=fps, sample_rate=speech.sample_rate)
        speech_s, samples, rate = speech.duration_s, speech.samples, speech.sample_rate
    except ModelError as exc:
        warnings.append(f"no speech ({exc}); procedural layers and emotion only")
        speech_s = max(1.0, len(spoken.split()) * _SECONDS_PER_WORD)
    start_s = lead / fps
    end_s = start_s + speech_s
    natural = end_s + max(0.0, float(tail_s))
    if duration_s is not None and duration_s + 1e-9 < end_s:
        raise InputError(f"duration: expected at least the {end_s:.2f} s the speech needs (with its lead-in), got {duration_s:g}")
    total_s = duration_s if duration_s is not None else natural
    n = max(1, round(total_s * fps))

    # -- the stages and the mix
    blink = BlinkStage("synthetic", state="rest", seed=seed)
    gaze = GazeStage("synthetic", state="rest", seed=None if seed is None else seed + 1, on_saccade=blink.gaze_shift)
    emotion = EmotionStage(mood=mood, mood_intensity=mood_intensity)
    if expression.emotion != "neutral" or expression.blend is not None:
        apex_s = max(0.5, speech_s - EMOTION_LEAD_S)
        expression.apply(emotion, onset_s=0.4, apex_s=apex_s, offset_s=1.0,
                         at_ns=round(max(0.0, start_s - EMOTION_LEAD_S) * 1e9))
    now = {"i": 0}

    def speaking() -> bool:
        return 0 <= now["i"] - lead < len(lip) if lip else start_s <= now["i"] / fps < end_s

    def speech_source(frame: FaceFrame) -> FaceFrame | None:
        k = now["i"] - lead
        if not lip or not 0 <= k < len(lip):
            return None
        f = lip[k]
        if f.extras.get("lipsync.phraseEnd"):
            blink.phrase_end()
        return f

    mixer = LayerMixer([
        Layer("idle", lambda f: blink.process(gaze.process(f)), {"eyes": "override", "gaze": "override"},
              priority=PRIORITY["idle"]),
        dataclasses.replace(emotion_layer(emotion, speaking=False), priority=PRIORITY["emotion"],
                            active=lambda f: not speaking()),
        Layer("speech", speech_source, {"jaw": "override", "mouth": "override", "tongue": "override", "head": "override",
                                        "browInnerUp": "add", "browOuterUp": "add"}, priority=PRIORITY["speech"]),
        dataclasses.replace(emotion_layer(emotion, name="emotion-speaking", speaking=True),
                            priority=PRIORITY["speech"] + 1, active=lambda f: speaking()),
    ])
    frames: list[FaceFrame] = []
    state = "rest"
    for i in range(n):
        now["i"] = i
        t_s = i / fps
        want = "speaking" if speaking() else ("rest" if t_s < start_s else "listening")
        if want != state:
            state = want
            for stage in (blink, gaze, emotion):
                stage.set_state(state)
        frames.append(mixer.process(FaceFrame(t_ns=round(t_s * 1e9), seq=i, source=SOURCE)))
        if progress is not None and (i % 600 == 599 or i == n - 1):
            progress(i + 1, n)
    audio = None
    if samples is not None:
        audio = np.zeros(max(round(n / fps * rate), round(start_s * rate) + samples.size), np.float32)
        k0 = round(start_s * rate)
        audio[k0:k0 + samples.size] = samples
        audio = audio[:round(n / fps * rate)]
    return AnimatedTake(tuple(frames), float(fps), spoken, expression, source, start_s, end_s, audio, rate,
                        tuple(blink.onsets_s), tuple(warnings))
