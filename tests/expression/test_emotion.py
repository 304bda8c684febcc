"""Emotion poses, episodes with onset/apex/offset, the mood, speech blending and the mixer layer."""

from __future__ import annotations

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.expression.emotion import (
    EMOTIONS,
    AgentExpression,
    EmotionStage,
    circumplex,
    emotion_layer,
    envelope,
    pose_weights,
)
from facewire.expression.face_affect import FaceAffectClassifier, confusion
from facewire.expression.mixer import LayerMixer
from facewire.frame import FaceFrame

FPS = 60
NS = round(1e9 / FPS)


def w(name: str, weights) -> float:
    return float(np.asarray(weights)[arkit.INDEX[name]])


def run(stage, seconds: float, base=None):
    base = np.zeros(arkit.COUNT, dtype=np.float32) if base is None else base
    return [stage.process(FaceFrame(t_ns=i * NS, seq=i, weights=base)) for i in range(round(seconds * FPS) + 1)]


def test_poses_show_their_defining_shapes():
    assert w("mouthSmileLeft", pose_weights("happiness")) > 0.5 and w("cheekSquintLeft", pose_weights("happy")) > 0.3
    sad = pose_weights("sadness")
    assert w("browInnerUp", sad) > 0.5 and w("mouthFrownLeft", sad) > 0.3 and w("mouthSmileLeft", sad) == 0
    surprise = pose_weights("surprise")
    assert w("browOuterUpLeft", surprise) > 0.5 and w("jawOpen", surprise) > 0.1
    fear = pose_weights("fear")
    assert w("eyeWideLeft", fear) > 0.5 and w("mouthStretchLeft", fear) > 0.3 and w("browDownLeft", fear) > 0
    assert w("browDownLeft", pose_weights("anger")) > 0.6
    assert w("noseSneerLeft", pose_weights("disgust")) > 0.5
    contempt = pose_weights("contempt")
    assert w("mouthDimpleRight", contempt) > 0 and w("mouthDimpleLeft", contempt) == 0
    assert not pose_weights("neutral").any()
    np.testing.assert_allclose(pose_weights("anger", 0.5), pose_weights("anger") * 0.5)


def test_blend_is_the_union_of_both_poses():
    both = pose_weights("happiness", blend=("surprise", 1.0))
    np.testing.assert_allclose(both, np.maximum(pose_weights("happiness"), pose_weights("surprise")))


@pytest.mark.parametrize("call, match", [
    (lambda: pose_weights("rage"), "emotion"),
    (lambda: pose_weights("happiness", 1.2), "intensity"),
    (lambda: pose_weights("happiness", blend=("surprise", -1)), "blend weight"),
    (lambda: EmotionStage().express("fear", onset_s=0), "onset"),
    (lambda: EmotionStage().express("fear", apex_s=float("nan")), "apex"),
    (lambda: EmotionStage().express("fear", at_ns=1.5), "episode start"),
    (lambda: circumplex(2.0, 0.0), "valence"),
    (lambda: EmotionStage().set_mood(valence=0.5), "both"),
])
def test_bad_input_is_refused_clearly(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_envelope_rises_holds_and_falls_smoothly():
    t = np.linspace(0, 2.0, 2001)
    e = np.array([envelope(x, 0.4, 0.5, 0.6) for x in t])
    assert e[0] == 0 and envelope(0.4, 0.4, 0.5, 0.6) == 1.0 and envelope(1.5, 0.4, 0.5, 0.6) == 0.0
    rise = e[t <= 0.4]
    assert (np.diff(rise) >= 0).all() and envelope(0.39, 0.4, 0.5, 0.6) < 1.0
    assert np.abs(np.diff(e)).max() < 0.01  # no jump anywhere: the ease has no step


@pytest.mark.parametrize("emotion", EMOTIONS[1:])
def test_each_expression_reaches_its_apex_within_the_onset(emotion):
    onset_s = 0.3
    stage = EmotionStage()
    stage.express(emotion, onset_s=onset_s, apex_s=0.5, offset_s=0.4, at_ns=6 * NS)
    frames = run(stage, 1.5)
    target = pose_weights(emotion)
    apex = next(f for f in frames if np.allclose(f.weights, target, atol=1e-6))
    assert apex.t_ns <= 6 * NS + onset_s * 1e9 + NS
    assert not frames[6].weights.any()  # nothing before the start
    assert not frames[-1].weights.any()  # back to the (neutral) mood after the offset


def test_expressions_are_recognised_back_by_the_face_classifier():
    classifier = FaceAffectClassifier()
    truth, seen = [], []
    for emotion in EMOTIONS[1:]:
        stage = EmotionStage(mood="happiness", mood_intensity=0.1)  # a faint mood under each episode
        stage.express(emotion, 0.8, onset_s=0.25, apex_s=0.5, at_ns=0)
        apex = run(stage, 0.3)[-1]
        truth.append(emotion)
        seen.append(classifier.classify(apex.weights).emotion)
    print("\n" + confusion(truth, seen))
    assert sum(t == s for t, s in zip(truth, seen)) >= 6


def test_stage_never_mutates_input_and_neutral_is_identity():
    base = np.full(arkit.COUNT, 0.1, dtype=np.float32)
    frame = FaceFrame(t_ns=0, weights=base)
    assert EmotionStage().process(frame) is frame
    stage = EmotionStage(mood="sadness", mood_intensity=0.5)
    out = stage.process(frame)
    assert out is not frame and np.array_equal(frame.weights, base)
    assert w("browInnerUp", out.weights) == pytest.approx(0.35)


def test_episode_decays_towards_the_mood():
    stage = EmotionStage(mood="happiness", mood_intensity=0.3)
    stage.express("surprise", onset_s=0.2, apex_s=0.2, offset_s=0.3, at_ns=0)
    frames = run(stage, 1.5)
    mood = pose_weights("happiness", 0.3)
    np.testing.assert_allclose(frames[-1].weights, mood, atol=1e-6)
    assert w("browOuterUpLeft", frames[round(0.3 * FPS)].weights) > 0.5
    assert stage.expressing() == pytest.approx({"happiness": 0.3})


def test_mood_drifts_rather_than_jumps():
    stage = EmotionStage()
    run(stage, 0.1)
    stage.set_mood("sadness", 0.6)
    frames = [stage.process(FaceFrame(t_ns=round((0.1 + k / FPS) * 1e9))) for k in range(1, 600)]
    inner = [w("browInnerUp", f.weights) for f in frames]
    full = 0.6 * 0.7
    assert 0 < inner[0] < 0.05 * full and inner[-1] == pytest.approx(full, rel=0.01)
    assert (np.diff(inner) >= -1e-7).all()


def test_valence_arousal_mood_and_circumplex():
    mix, r = circumplex(0.8, 0.45)
    assert max(mix, key=mix.get) == "happiness" and r == pytest.approx(np.hypot(0.8, 0.45))
    mix, _ = circumplex(-0.3, 0.8)  # 111°: between surprise (75°) and fear (115°), near fear
    assert set(mix) == {"surprise", "fear"} and mix["fear"] > 0.8
    mix, _ = circumplex(-0.7, -0.4)
    assert max(mix, key=mix.get) == "sadness"
    assert circumplex(0.0, -0.8)[0] == {"neutral": 1.0}  # sleepy: no expression
    assert circumplex(0.0, 0.0) == ({"neutral": 1.0}, 0.0)
    stage = EmotionStage()
    mood = stage.set_mood(valence=0.9, arousal=0.3)
    assert max(mood, key=mood.get) == "happiness" and mood["happiness"] < 0.25
    # 18° lies between the content anchor (330°, a 0.4 smile) and happiness (30°): 0.4 + 0.6·48.4/60
    mix, r = circumplex(0.9, 0.3)
    assert mix["happiness"] == pytest.approx(0.4 + 0.6 * (np.degrees(np.arctan2(0.3, 0.9)) + 30) / 60)
    assert mood["happiness"] == pytest.approx(0.25 * r * mix["happiness"])


def test_speech_keeps_the_mouth_and_a_smile_still_shows():
    base = np.zeros(arkit.COUNT, dtype=np.float32)
    base[arkit.INDEX["jawOpen"]] = 0.5  # a viseme from the speech layer
    base[arkit.INDEX["mouthFunnel"]] = 0.4
    quiet, talking = EmotionStage(), EmotionStage(state="speaking", speech_fade_s=0.0)
    for stage in (quiet, talking):
        stage.express("happiness", blend=("surprise", 1.0), onset_s=0.1, apex_s=2.0, at_ns=0)
    q, s = run(quiet, 0.5, base)[-1].weights, run(talking, 0.5, base)[-1].weights
    assert w("jawOpen", s) == pytest.approx(0.5) and w("mouthFunnel", s) == pytest.approx(0.4)
    assert w("mouthLowerDownLeft", s) == 0.0  # the smile's parted lips left to speech
    assert w("mouthSmileLeft", s) == pytest.approx(0.5 * w("mouthSmileLeft", q))
    assert w("browOuterUpLeft", s) == w("browOuterUpLeft", q) > 0.5  # emotion keeps the brows
    assert w("mouthSmileLeft", q) == pytest.approx(0.85)


def test_entering_speech_cross_fades():
    stage = EmotionStage(speech_fade_s=0.15)
    stage.express("happiness", onset_s=0.1, apex_s=5, at_ns=0)
    run(stage, 0.5)
    stage.state = "speaking"
    smiles = [w("mouthSmileLeft", stage.process(FaceFrame(t_ns=round((0.5 + k / FPS) * 1e9))).weights) for k in range(1, 20)]
    assert smiles[0] > 0.8 and smiles[-1] == pytest.approx(0.425) and (np.diff(smiles) <= 1e-7).all()


def test_mixer_layer_blends_like_the_stage():
    stage = EmotionStage()
    stage.express("anger", onset_s=0.1, apex_s=2, at_ns=0)
    base = np.zeros(arkit.COUNT, dtype=np.float32)
    base[arkit.INDEX["jawOpen"]] = 0.3
    mixer = LayerMixer([emotion_layer(stage, speaking=True)])
    out = [mixer.process(FaceFrame(t_ns=i * NS, weights=base)) for i in range(30)][-1]
    assert w("browDownLeft", out.weights) == pytest.approx(0.85) and w("jawOpen", out.weights) == pytest.approx(0.3)
    assert w("mouthPressLeft", out.weights) == 0.0


def test_agent_expression_applies_to_a_stage():
    stage = EmotionStage()
    assert AgentExpression("neutral", 0.5).apply(stage) is None
    episode = AgentExpression("happy", 0.5, ("surprise", 0.4)).apply(stage, at_ns=0)
    assert dict(episode.mix) == {"happiness": 0.5, "surprise": pytest.approx(0.2)}
    with pytest.raises(InputError):
        AgentExpression("happiness", 2.0)
