"""LayerMixer: blend modes by hand, part names, ownership of groups, pose parts, validation, contract."""

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.expression.blink import BlinkStage
from facewire.expression.gaze import GazeStage
from facewire.expression.mixer import BLEND_MODES, Layer, LayerMixer, channels_of
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.pipeline import Stage

I = arkit.INDEX


def weights(**named: float) -> np.ndarray:
    w = np.zeros(arkit.COUNT, np.float32)
    for name, value in named.items():
        w[I[name]] = value
    return w


def const(**named: float):
    """A layer source: a function returning the same named weights for any frame."""
    return lambda frame: dict(named)


# -- blend modes, hand-computed ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode, alpha, expected", [
    ("override", 1.0, 0.8),
    ("override", 0.5, 0.2 + 0.5 * (0.8 - 0.2)),
    ("add", 1.0, 1.0),  # 0.2 + 0.8, clipped at 1
    ("add", 0.5, 0.2 + 0.5 * 0.8),
    ("max", 1.0, 0.8),
    ("max", 0.25, 0.2 + 0.25 * (0.8 - 0.2)),
    ("multiply", 1.0, 0.2 * 0.8),
    ("multiply", 0.5, 0.2 + 0.5 * (0.16 - 0.2)),
])
def test_blend_modes(mode, alpha, expected):
    mixer = LayerMixer([Layer("l", const(jawOpen=0.8), {"jawOpen": (mode, alpha)})])
    out = mixer.process(FaceFrame(t_ns=0, weights=weights(jawOpen=0.2)))
    assert out.weight("jawOpen") == pytest.approx(expected, abs=1e-6)
    assert set(BLEND_MODES) == {"override", "add", "max", "multiply"}


def test_max_never_lowers_and_override_can():
    frame = FaceFrame(t_ns=0, weights=weights(eyeBlinkLeft=0.9, jawOpen=0.9))
    out = LayerMixer([Layer("l", const(eyeBlinkLeft=0.3, jawOpen=0.3), {"eyeBlink": "max", "jaw": "override"})]).process(frame)
    assert out.weight("eyeBlinkLeft") == pytest.approx(0.9)
    assert out.weight("jawOpen") == pytest.approx(0.3)


# -- parts -------------------------------------------------------------------------------------------------
def test_part_names_resolve_to_groups_names_and_prefixes():
    assert channels_of("jaw") == tuple(I[n] for n in arkit.GROUPS["jaw"])
    assert channels_of("jawOpen") == (I["jawOpen"],)
    assert channels_of("eyeBlink") == (I["eyeBlinkLeft"], I["eyeBlinkRight"])
    assert len(channels_of("eyeLook")) == 8
    with pytest.raises(InputError, match="layer part 'lips'"):
        channels_of("lips")


def test_speech_owns_the_mouth_emotion_the_brows_blink_the_lids():
    tracked = FaceFrame(t_ns=0, weights=weights(jawOpen=0.1, mouthSmileLeft=0.6, browInnerUp=0.4,
                                                cheekSquintLeft=0.2, eyeBlinkLeft=0.05, noseSneerLeft=0.1))
    mixer = LayerMixer([
        Layer("speech", const(jawOpen=0.5, mouthFunnel=0.3), {"jaw": "override", "mouth": "override"}),
        Layer("emotion", const(browDownLeft=0.7, cheekSquintLeft=0.5, mouthSmileLeft=0.9),
              {"brows": "override", "cheeks": "override", "mouth": ("add", 0.5)}),
        Layer("blink", const(eyeBlinkLeft=1.0, eyeBlinkRight=1.0), {"eyeBlink": "max"}),
    ])
    out = mixer.process(tracked)
    assert out.weight("jawOpen") == pytest.approx(0.5)
    assert out.weight("mouthFunnel") == pytest.approx(0.3)
    assert out.weight("mouthSmileLeft") == pytest.approx(0.0 + 0.5 * 0.9)  # speech zeroed it, emotion added
    assert out.weight("browDownLeft") == pytest.approx(0.7)
    assert out.weight("browInnerUp") == 0.0  # owned by emotion, which leaves it at 0
    assert out.weight("cheekSquintLeft") == pytest.approx(0.5)
    assert out.weight("eyeBlinkLeft") == 1.0 and out.weight("eyeBlinkRight") == 1.0
    assert out.weight("noseSneerLeft") == pytest.approx(0.1)  # nobody owns the nose: the frame's own value


def test_later_keys_reassign_their_channels():
    layer = Layer("emotion", const(eyeBlinkLeft=0.2, eyeSquintLeft=0.6), {"eyes": "override", "eyeBlink": "max"})
    out = LayerMixer([layer]).process(FaceFrame(t_ns=0, weights=weights(eyeBlinkLeft=0.9, eyeWideLeft=0.5)))
    assert out.weight("eyeBlinkLeft") == pytest.approx(0.9)  # max, not override
    assert out.weight("eyeSquintLeft") == pytest.approx(0.6)
    assert out.weight("eyeWideLeft") == 0.0  # the rest of "eyes" is overridden


def test_sources_may_return_frames_arrays_or_mappings():
    frame = FaceFrame(t_ns=0)
    array = weights(tongueOut=0.4)
    mixer = LayerMixer([
        Layer("array", lambda f: array, {"tongue": "override"}),
        Layer("frame", lambda f: f.replace(weights=weights(cheekPuff=0.3)), {"cheekPuff": "override"}),
    ])
    out = mixer.process(frame)
    assert out.weight("tongueOut") == pytest.approx(0.4) and out.weight("cheekPuff") == pytest.approx(0.3)


def test_gaze_and_head_from_a_stage_frame():
    class Looker:
        def process(self, frame):
            return frame.replace(gaze=Gaze(10, -4, 12, -4), head=HeadPose(yaw_deg=20))

        def reset(self):
            self.was_reset = True

    looker = Looker()
    mixer = LayerMixer([Layer("look", looker, {"gaze": ("override", 0.5), "head": "override"})])
    out = mixer.process(FaceFrame(t_ns=0, gaze=Gaze(0, 0, 0, 0)))
    assert out.gaze == Gaze(5, -2, 6, -2)
    assert out.head.yaw_deg == pytest.approx(20)
    mixer.reset()
    assert looker.was_reset


def test_set_weight_fades_a_layer():
    frame = FaceFrame(t_ns=0, weights=weights(jawOpen=0.2))
    mixer = LayerMixer([Layer("speech", const(jawOpen=0.8), {"jaw": "override"})])
    mixer.set_weight("speech", 0.25)
    assert mixer.process(frame).weight("jawOpen") == pytest.approx(0.2 + 0.25 * 0.6)
    mixer.set_weight("speech", 0.0)
    np.testing.assert_array_equal(mixer.process(frame).weights, frame.weights)
    with pytest.raises(InputError, match="no such layer"):
        mixer.set_weight("emotion", 1.0)


# -- with the procedural stages -------------------------------------------------------------------------------
def test_procedural_layers_over_a_tracked_face():
    mixer = LayerMixer([
        Layer("gaze", GazeStage("synthetic", state="listening", seed=1), {"eyeLook": "override", "gaze": "override"}),
        Layer("blink", BlinkStage("synthetic", seed=1), {"eyeBlink": "max"}),
    ])
    base = weights(jawOpen=0.3, eyeBlinkLeft=0.1, eyeBlinkRight=0.1)
    frames = [FaceFrame(t_ns=round(i * 1e9 / 60), weights=base) for i in range(1800)]
    out = [mixer.process(f) for f in frames]
    w = np.array([o.weights for o in out])
    assert w.min() >= 0 and w.max() <= 1
    assert np.all(w[:, I["jawOpen"]] == np.float32(0.3))
    assert w[:, I["eyeBlinkLeft"]].min() >= np.float32(0.1) and w[:, I["eyeBlinkLeft"]].max() > 0.85
    assert np.ptp([o.gaze.left_yaw_deg for o in out]) > 2
    assert all(f.weights is base or np.array_equal(f.weights, base) for f in frames)  # inputs untouched


# -- contract and validation ------------------------------------------------------------------------------------
def test_is_a_stage_never_mutates_and_keeps_untracked():
    mixer = LayerMixer([Layer("speech", const(jawOpen=0.8), {"jaw": "override"})])
    assert isinstance(mixer, Stage)
    frame = FaceFrame.untracked(5, seq=3, source="cam")
    before = frame.to_json()
    out = mixer.process(frame)
    assert frame.to_json() == before
    assert (out.tracked, out.confidence, out.t_ns, out.seq, out.source) == (False, 0.0, 5, 3, "cam")
    assert out.weight("jawOpen") == pytest.approx(0.8)


def test_validation_names_what_is_wrong():
    src = const(jawOpen=1)
    with pytest.raises(InputError, match="blend mode"):
        Layer("l", src, {"jaw": "screen"})
    with pytest.raises(InputError, match="part 'jaw' weight"):
        Layer("l", src, {"jaw": ("add", 1.5)})
    with pytest.raises(InputError, match="at least one part"):
        Layer("l", src, {})
    with pytest.raises(InputError, match="only 'override' blends gaze"):
        Layer("l", src, {"gaze": "add"})
    with pytest.raises(InputError, match="layer weight|weight: expected"):
        Layer("l", src, {"jaw": "add"}, weight=2)
    with pytest.raises(InputError, match="source"):
        Layer("l", 42, {"jaw": "add"})
    with pytest.raises(InputError, match="already there"):
        LayerMixer([Layer("l", src, {"jaw": "add"}), Layer("l", src, {"mouth": "add"})])
    bad_shape = LayerMixer([Layer("l", lambda f: np.zeros(10), {"jaw": "add"})])
    with pytest.raises(InputError, match="expected a FaceFrame, 52 weights"):
        bad_shape.process(FaceFrame(t_ns=0))
    bad_name = LayerMixer([Layer("l", const(jawOpn=1), {"jaw": "add"})])
    with pytest.raises(InputError, match="jawOpn"):
        bad_name.process(FaceFrame(t_ns=0))
    no_frame = LayerMixer([Layer("l", src, {"gaze": "override"})])
    with pytest.raises(InputError, match="must return a FaceFrame to blend gaze"):
        no_frame.process(FaceFrame(t_ns=0))
    nan = LayerMixer([Layer("l", lambda f: np.full(52, np.nan), {"jaw": "add"})])
    with pytest.raises(InputError, match="finite"):
        nan.process(FaceFrame(t_ns=0))
