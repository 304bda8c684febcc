"""Retarget schemas: VRM 1.0 names and emotions, OVR visemes, MetaHuman-style curves, the schema table."""

import numpy as np
import pytest

from facewire import arkit, mouth
from facewire.expression.emotion import pose_weights
from facewire.frame import FaceFrame
from facewire.retarget import (
    METAHUMAN_FROM_ARKIT,
    METAHUMAN_NAMES,
    OVR_VISEMES,
    SCHEMAS,
    VRM1_EXPRESSIONS,
    metahuman_curves,
    ovr_visemes,
    vrm1_expressions,
    vrm_presets,
)

I = arkit.INDEX


weights = arkit.weights_of


def test_vrm1_has_every_preset_of_the_spec():
    spec = {"aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft", "blinkRight", "happy", "angry", "sad", "relaxed",
            "surprised", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral"}
    assert set(VRM1_EXPRESSIONS) == spec and len(VRM1_EXPRESSIONS) == 18
    out = vrm1_expressions(np.zeros(arkit.COUNT))
    assert set(out) == spec and out["neutral"] == 1.0 and sum(out.values()) == 1.0


def test_vrm1_agrees_with_the_vrm0_presets_it_renames():
    rng = np.random.default_rng(1)
    for _ in range(20):
        w = rng.random(arkit.COUNT).astype(np.float32)
        old, new = vrm_presets(w), vrm1_expressions(w)
        for a, b in (("A", "aa"), ("I", "ih"), ("U", "ou"), ("E", "ee"), ("O", "oh"), ("Blink", "blink"),
                     ("Blink_L", "blinkLeft"), ("Joy", "happy"), ("Sorrow", "sad"), ("Fun", "relaxed")):
            assert new[b] == pytest.approx(old[a])
        assert all(0.0 <= v <= 1.0 for v in new.values())


@pytest.mark.parametrize("emotion, preset", [("happiness", "happy"), ("sadness", "sad"), ("surprise", "surprised"),
                                             ("anger", "angry")])
def test_each_emotion_pose_reads_as_its_vrm1_expression(emotion, preset):
    out = vrm1_expressions(pose_weights(emotion))
    emotions = {k: out[k] for k in ("happy", "angry", "sad", "relaxed", "surprised")}
    assert max(emotions, key=emotions.get) == preset
    assert out["neutral"] == pytest.approx(1 - emotions[preset])


def test_vrm1_look_directions_follow_the_eyes():
    left = vrm1_expressions(weights(eyeLookOutLeft=0.8, eyeLookInRight=0.8))  # both eyes to the subject's left
    down = vrm1_expressions(weights(eyeLookDownLeft=0.6, eyeLookDownRight=0.4))
    assert left["lookLeft"] == pytest.approx(0.8) and left["lookRight"] == 0.0
    assert down["lookDown"] == pytest.approx(0.5) and down["lookUp"] == 0.0


def test_ovr_visemes_round_trip_a_viseme_pose():
    for k, name in enumerate(OVR_VISEMES[1:], start=1):
        one = np.zeros(len(OVR_VISEMES))
        one[k] = 1.0
        out = ovr_visemes(mouth.visemes_to_arkit(one))
        assert max(out, key=out.get) == name and sum(out.values()) == pytest.approx(1.0)


def test_metahuman_curves_name_pattern_and_values():
    assert all(n.startswith("CTRL_expressions_") for n in METAHUMAN_NAMES)
    assert len(set(METAHUMAN_NAMES)) == len(METAHUMAN_NAMES)
    for needed in ("jawOpen", "eyeBlinkL", "eyeBlinkR", "mouthCornerPullL", "browRaiseInL", "tongueOut"):
        assert "CTRL_expressions_" + needed in METAHUMAN_NAMES
    used = {a for _, shapes in METAHUMAN_FROM_ARKIT for a in shapes}
    assert used <= set(arkit.NAMES) and len(used) == arkit.COUNT  # every ARKit shape reaches some curve
    out = metahuman_curves(weights(jawOpen=0.7, eyeBlinkLeft=0.9, mouthSmileRight=0.4))
    assert out["CTRL_expressions_jawOpen"] == pytest.approx(0.7)
    assert out["CTRL_expressions_eyeBlinkL"] == pytest.approx(0.9) and out["CTRL_expressions_eyeBlinkR"] == 0.0
    assert out["CTRL_expressions_mouthCornerPullR"] == pytest.approx(0.4)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_computes_its_names_in_range(name):
    schema = SCHEMAS[name]
    frame = FaceFrame(t_ns=0, weights=np.random.default_rng(2).random(arkit.COUNT).astype(np.float32))
    out = schema.compute(frame)
    assert set(out) == set(schema.names)
    assert all(-1.0 <= v <= 1.0 and np.isfinite(v) for v in out.values())
