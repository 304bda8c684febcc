"""The one mouth-shape table: OVR visemes and Rhubarb shapes ↔ ARKit weights."""

from __future__ import annotations

import numpy as np
import pytest

from facewire import arkit, mouth
from facewire.takes.llf import read_llf_csv


def test_table_is_well_formed():
    assert mouth.VISEMES == ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
    assert set(mouth.VISEME_POSES) == set(mouth.VISEMES)
    assert dict(mouth.VISEME_POSES["sil"]) == {}
    for pose in mouth.VISEME_POSES.values():
        assert all(n in arkit.INDEX and 0 < w <= 1 for n, w in pose.items())
        assert not any(n.startswith(("eye", "brow")) for n in pose)  # visemes move the mouth only
    assert set(mouth.RHUBARB_FROM_VISEME) == set(mouth.VISEMES)
    assert set(mouth.RHUBARB_FROM_VISEME.values()) == set(mouth.RHUBARB_SHAPES)
    assert set(mouth.RHUBARB_VISEME) == set(mouth.RHUBARB_SHAPES)


def test_poses_are_independent_so_the_fit_inverts():
    matrix = np.array([[mouth.VISEME_POSES[v].get(n, 0.0) for n in mouth.MOUTH_NAMES] for v in mouth.VISEMES[1:]])
    assert np.linalg.matrix_rank(matrix) == 14
    assert np.linalg.svd(matrix, compute_uv=False).min() > 0.04


def test_visemes_round_trip_within_1e6():
    rng = np.random.default_rng(7)
    for concentration in (0.05, 0.3, 1.0, 5.0):
        for _ in range(300):
            visemes = rng.dirichlet(np.full(15, concentration))
            back = mouth.arkit_to_visemes(mouth.visemes_to_arkit(visemes))
            np.testing.assert_allclose(back, visemes, atol=1e-6, rtol=0)
    one_hot = np.eye(15)
    for v in one_hot:
        np.testing.assert_allclose(mouth.arkit_to_visemes(mouth.visemes_to_arkit(v)), v, atol=1e-6)


def test_hand_computed_values():
    v = np.zeros(15)
    v[mouth.VISEMES.index("aa")] = 0.5
    v[mouth.VISEMES.index("ou")] = 0.5
    w = mouth.visemes_to_arkit(v)
    assert w[arkit.INDEX["jawOpen"]] == np.float32(0.5 * 0.7 + 0.5 * 0.15)
    assert w[arkit.INDEX["mouthPucker"]] == np.float32(0.5 * 0.75)
    assert w[arkit.INDEX["eyeBlinkLeft"]] == 0
    neutral = mouth.arkit_to_visemes(np.zeros(52))
    assert neutral[0] == 1.0 and not neutral[1:].any()
    strong = mouth.arkit_to_visemes(np.ones(52))  # more than any mix of poses: scaled to sum to 1
    assert strong[0] == 0.0 and strong.sum() == pytest.approx(1.0)
    eyes_only = np.zeros(52)
    eyes_only[arkit.INDEX["eyeBlinkLeft"]] = 1.0
    assert mouth.arkit_to_visemes(eyes_only)[0] == 1.0  # eyes say nothing about visemes


def test_nnls_matches_scipy():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(3)
    for _ in range(300):
        w = rng.random(52) * rng.random(52)
        ours = mouth._nnls(w[mouth._MOUTH])
        theirs, _ = scipy_optimize.nnls(mouth._A, w[mouth._MOUTH])
        np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_every_rhubarb_shape_classifies_back():
    for shape in mouth.RHUBARB_SHAPES:
        pose = mouth.rhubarb_to_arkit(shape)
        assert not pose.flags.writeable
        assert mouth.arkit_to_rhubarb(pose) == shape
    assert not mouth.rhubarb_to_arkit("X").any()
    with pytest.raises(ValueError, match="Rhubarb shape"):
        mouth.rhubarb_to_arkit("Z")


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="15 weights"):
        mouth.visemes_to_arkit(np.zeros(14))
    with pytest.raises(ValueError, match="52 ARKit weights"):
        mouth.arkit_to_visemes(np.zeros(51))


def test_a_calibrated_idle_take_is_mostly_silence(shared_file):
    # neurosync/default.csv: 51 s of a calibrated face at rest.
    frames = [f for f in read_llf_csv(shared_file("data/takes/neurosync/default.csv")) if f.tracked][::10]
    shapes = [mouth.arkit_to_rhubarb(f.weights) for f in frames]
    assert shapes.count("X") > 0.8 * len(shapes)
    sil = np.mean([mouth.arkit_to_visemes(f.weights)[0] for f in frames])
    assert sil > 0.7


def test_every_phone_has_a_viseme():
    from facewire.audio.phones import ARPABET, SILENCE

    assert set(mouth.PHONE_TO_VISEME) == set(ARPABET) | {SILENCE}
    assert set(mouth.PHONE_TO_VISEME.values()) == set(mouth.VISEMES)
    for phones, viseme in ((("P", "B", "M"), "PP"), (("F", "V"), "FF"), (("UW", "W"), "ou"), (("SIL",), "sil")):
        assert {mouth.PHONE_TO_VISEME[p] for p in phones} == {viseme}


def test_hh_takes_its_vowel():
    assert mouth.phone_visemes(["SIL", "HH", "UW", "HH"]) == ["sil", "ou", "ou", "ou"]
    assert mouth.phone_visemes(["HH"]) == ["kk"]
    with pytest.raises(ValueError, match="ARPABET"):
        mouth.phone_visemes(["XX"])
