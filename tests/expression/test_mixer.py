"""LayerMixer: blend modes by hand, part names, ownership of groups, pose parts, validation, contract."""

import itertools
import math

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.expression.blink import BlinkStage
from facewire.expression.gaze import GazeStage
from facewire.expression.mixer import (
    BLEND_MODES,
    FADE_S,
    PRIORITY,
    Layer,
    LayerMixer,
    channels_of,
    tracking_layer,
)
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.pipeline import Stage

I = arkit.INDEX


weights = arkit.weights_of


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


# -- priorities, presence and hand-over ---------------------------------------------------------------------------
FPS = 60
DT_S = 1 / FPS


def stream(tracked_at, seconds: float, **named: float) -> list[FaceFrame]:
    """Frames at 60 fps carrying ``named`` weights and a gaze 25° to the left while ``tracked_at(t_s)``."""
    out = []
    for i in range(round(seconds * FPS)):
        t_s = i * DT_S
        if tracked_at(t_s):
            out.append(FaceFrame(t_ns=round(t_s * 1e9), weights=weights(**named), gaze=Gaze(25, 0, 25, 0)))
        else:
            out.append(FaceFrame.untracked(round(t_s * 1e9)))
    return out


def test_priority_orders_blending_whatever_the_insertion_order():
    low = Layer("emotion", const(jawOpen=0.2), {"jaw": "override"}, priority=10)
    high = Layer("speech", const(jawOpen=0.7), {"jaw": "override"}, priority=20)
    for layers in ([low, high], [high, low]):
        mixer = LayerMixer(layers)
        assert [layer.name for layer in mixer.layers] == ["emotion", "speech"]
        assert mixer.process(FaceFrame(t_ns=0)).weight("jawOpen") == pytest.approx(0.7)


def test_hand_over_from_a_lost_face_is_smooth_and_quick():
    """Tracked eyes (eyeLookOut 0.9) lost at 1 s: the idle layer (0.1) takes over; found again at 2 s."""
    lost_s, found_s = 1.0, 2.0
    frames = stream(lambda t: not lost_s <= t < found_s, 3.0, eyeLookOutLeft=0.9, jawOpen=0.5)
    idle = Layer("idle", const(eyeLookOutLeft=0.1), {"eyes": "override"}, priority=0)

    def run(fade_s: float) -> np.ndarray:
        mixer = LayerMixer([idle, tracking_layer(fade_s=fade_s)])
        return np.array([mixer.process(f).weight("eyeLookOutLeft") for f in frames])

    smooth, hard = run(FADE_S), run(0.0)
    t = np.arange(len(frames)) * DT_S
    pop = np.abs(np.diff(hard)).max()
    jump = np.abs(np.diff(smooth)).max()
    assert pop == pytest.approx(0.8, abs=1e-6)  # switching sources at once: the whole difference in one frame
    assert jump <= math.pi / 2 * DT_S / FADE_S * 0.8 + 1e-6 and jump < 0.25 * pop
    # take-over time: from the first untracked frame until the output is the idle layer's alone
    gone = t[(t >= lost_s) & (t < found_s) & np.isclose(smooth, 0.1, atol=1e-6)][0] - lost_s
    back = t[(t >= found_s) & np.isclose(smooth, 0.9, atol=1e-6)][0] - found_s
    assert 0.1 <= gone <= 0.2 and 0.1 <= back <= 0.2
    assert smooth[(t > lost_s) & (t < lost_s + 0.05)].min() > 0.5  # it did not drop to neutral on loss


def test_tracked_face_lost_to_the_procedural_eyes_and_blinks():
    lost_s = 2.0
    frames = stream(lambda t: t < lost_s, 6.0, eyeLookOutLeft=0.9, eyeLookInRight=0.9)

    def idle_chain(seed: int):
        gaze, blink = GazeStage("synthetic", seed=seed), BlinkStage("synthetic", seed=seed)
        return lambda f: blink.process(gaze.process(f))

    mixer = LayerMixer([tracking_layer(), Layer("idle", idle_chain(3), {"eyes": "override", "gaze": "override"},
                                                priority=PRIORITY["idle"])])
    reference = idle_chain(3)  # the same procedural layer alone
    out = [mixer.process(f) for f in frames]
    ref = [reference(f) for f in frames]
    t = np.arange(len(frames)) * DT_S
    look = [I[n] for n in arkit.NAMES if n.startswith("eyeLook")]
    w = np.array([o.weights[look] for o in out])
    r = np.array([o.weights[look] for o in ref])
    same = np.all(np.abs(w - r) < 1e-6, axis=1) & np.array([o.gaze == q.gaze for o, q in zip(out, ref)])
    assert not same[t < lost_s].any()
    took_over = t[(t >= lost_s) & same][0] - lost_s
    assert took_over <= 0.2 and same[t >= lost_s + took_over].all()
    handover = (t >= lost_s - DT_S) & (t <= lost_s + 0.25)
    jump = np.abs(np.diff(w, axis=0))[handover[1:]].max()
    assert jump < 0.25 * np.abs(w[t < lost_s][-1] - r[t >= lost_s][0]).max()
    yaw = np.array([o.gaze.left_yaw_deg for o in out])
    assert np.abs(np.diff(yaw))[handover[1:]].max() < 0.25 * 25


def test_a_source_with_nothing_now_fades_out_and_back_in():
    talking = {"on": True}
    speech = Layer("speech", lambda f: {"jawOpen": 0.6} if talking["on"] else None, {"jaw": "override"}, fade_s=0.1)
    mixer = LayerMixer([speech])
    levels, jaw = [], []
    for i in range(60):
        talking["on"] = not 10 <= i < 40
        jaw.append(mixer.process(FaceFrame(t_ns=round(i * DT_S * 1e9))).weight("jawOpen"))
        levels.append(mixer.levels["speech"])
    assert jaw[9] == pytest.approx(0.6) and jaw[10] < 0.6 and jaw[10] > 0.5  # holds its last output while fading
    assert jaw[20] == 0.0 and levels[20] == 0.0
    assert jaw[59] == pytest.approx(0.6) and levels[59] == 1.0
    assert max(abs(a - b) for a, b in itertools.pairwise(jaw)) < 0.6 * math.pi / 2 * DT_S / 0.1 + 1e-6
    mixer.reset()
    talking["on"] = False
    assert mixer.process(FaceFrame(t_ns=0)).weight("jawOpen") == 0.0  # after reset: nothing held


def test_time_going_backwards_restarts_the_fades():
    mixer = LayerMixer([tracking_layer()])
    mixer.process(FaceFrame(t_ns=10**9, weights=weights(jawOpen=0.9)))
    mixer.process(FaceFrame.untracked(10**9 + 16_000_000))
    assert 0 < mixer.levels["tracking"] < 1
    mixer.process(FaceFrame.untracked(0))  # a new take: no fade from the old one
    assert mixer.levels["tracking"] == 0.0


def test_new_layer_fields_are_validated():
    src = const(jawOpen=1)
    with pytest.raises(InputError, match="priority: expected an integer"):
        Layer("l", src, {"jaw": "add"}, priority=1.5)
    with pytest.raises(InputError, match="fade_s: expected seconds"):
        Layer("l", src, {"jaw": "add"}, fade_s=-1)
    with pytest.raises(InputError, match="active: expected a function"):
        Layer("l", src, {"jaw": "add"}, active=True)
