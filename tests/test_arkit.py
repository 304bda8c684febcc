"""The ARKit-52 schema: order, groups, mirror pairs, MediaPipe mapping by name."""

import numpy as np
import pytest

from facewire import arkit


def test_canonical_order_matches_unreal_enum_landmarks():
    # fixed points of Apple's documented grouping = EARFaceBlendShape (see shared/reference/protocols.md)
    assert arkit.COUNT == 52 and len(set(arkit.NAMES)) == 52
    assert arkit.NAMES[0] == "eyeBlinkLeft" and arkit.NAMES[7] == "eyeBlinkRight"
    assert arkit.NAMES[14:18] == ("jawForward", "jawLeft", "jawRight", "jawOpen")
    assert arkit.NAMES[21:23] == ("mouthLeft", "mouthRight")
    assert arkit.NAMES[41] == "browDownLeft" and arkit.NAMES[51] == "tongueOut"


def test_groups_partition_the_names():
    members = [n for g in arkit.GROUPS.values() for n in g]
    assert sorted(members) == sorted(arkit.NAMES)
    assert arkit.GROUPS["tongue"] == ("tongueOut",)


def test_mirror_is_an_involution_swapping_sides():
    for name, other in arkit.MIRROR.items():
        assert arkit.MIRROR[other] == name
    assert arkit.MIRROR["eyeLookInLeft"] == "eyeLookInRight"
    assert arkit.MIRROR["mouthSmileLeft"] == "mouthSmileRight"
    assert arkit.MIRROR["jawOpen"] == "jawOpen"
    w = np.arange(52, dtype=np.float32)
    assert np.array_equal(arkit.mirror_weights(arkit.mirror_weights(w)), w)


def test_mediapipe_mapping_is_by_name():
    scores = np.arange(52, dtype=np.float32) / 100  # MediaPipe order: _neutral then alphabetical
    out = arkit.mediapipe_to_arkit(scores)
    for i, name in enumerate(arkit.MEDIAPIPE_NAMES):
        if name != "_neutral":
            assert out[arkit.INDEX[name]] == pytest.approx(scores[i])
    assert out[arkit.INDEX["tongueOut"]] == 0.0
    assert arkit.MEDIAPIPE_NAMES[9] == "eyeBlinkLeft" and arkit.MEDIAPIPE_NAMES[10] == "eyeBlinkRight"


def test_bad_inputs():
    with pytest.raises(ValueError, match="expected 52 scores"):
        arkit.mediapipe_to_arkit(np.zeros(51))
    with pytest.raises(KeyError, match="unknown ARKit blendshape name 'smile'"):
        arkit.index_of("smile")
    assert arkit.index_of("EyeBlinkLeft") == 0 and arkit.pascal("jawOpen") == "JawOpen"


def test_weights_of_sets_shapes_by_name() -> None:
    w = arkit.weights_of(jawOpen=0.5, eyeBlinkLeft=1.0)
    assert w.dtype == np.float32 and w.shape == (arkit.COUNT,)
    assert w[arkit.INDEX["jawOpen"]] == 0.5 and w[arkit.INDEX["eyeBlinkLeft"]] == 1.0 and w.sum() == 1.5
    with pytest.raises(KeyError, match="jawOpn"):
        arkit.weights_of(jawOpn=1.0)
