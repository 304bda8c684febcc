"""Features and prosody: YIN pitch, noise detection, brows and nods on accents, phrase ends."""

from __future__ import annotations

import numpy as np
import pytest

from facewire.audio.io import SAMPLE_RATE
from facewire.audio.prosody import HOP_S, FeatureExtractor, Features, ProsodyTracker


def _features(x: np.ndarray, block: int = 777) -> Features:
    fe = FeatureExtractor()
    parts = [fe.push(x[i: i + block]) for i in range(0, x.size, block)] + [fe.flush()]
    return Features.concat(parts)


def _voice(f0: np.ndarray) -> np.ndarray:
    """A buzzy voiced source with harmonics following ``f0`` (per sample)."""
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    return sum(np.sin(k * phase) / k for k in range(1, 12)).astype(np.float32) * 0.2


@pytest.mark.parametrize("hz", [85.0, 140.0, 230.0, 360.0])
def test_yin_finds_the_pitch(hz):
    f = _features(_voice(np.full(SAMPLE_RATE, hz)))
    assert len(f) == 100  # one row per 10 ms, streamed in odd blocks
    mid = f.f0_hz[10:-10]
    assert np.median(mid) == pytest.approx(hz, rel=0.01)
    assert np.median(f.aperiodicity[10:-10]) < 0.1


def test_white_noise_is_aperiodic_and_flat():
    x = (np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32)
    f = _features(x)
    assert np.median(f.flatness) > 0.4 and np.median(f.aperiodicity) > 0.5
    p = ProsodyTracker().push(f)
    assert p.gate.max() < 0.05


def test_streaming_equals_one_push():
    x = _voice(np.linspace(100, 200, SAMPLE_RATE))
    a, b = _features(x, 160), _features(x, 10**6)
    np.testing.assert_allclose(a.f0_hz, b.f0_hz, rtol=1e-4)
    np.testing.assert_allclose(a.rms_db, b.rms_db, atol=1e-3)


def test_accents_raise_brows_and_nod_and_pauses_end_phrases():
    rng = np.random.default_rng(3)
    f0 = np.full(3 * SAMPLE_RATE, 110.0)
    amp = np.zeros(f0.size)
    t = np.arange(f0.size) / SAMPLE_RATE
    for c in np.arange(0.2, 1.3, 0.22):  # syllables at a level pitch
        amp += np.exp(-((t - c) / 0.05) ** 2)
    accent = 0.9
    f0 += 40 * np.exp(-((t - accent) / 0.08) ** 2)  # one pitch accent
    x = _voice(f0) * np.clip(amp, 0, 1) + rng.standard_normal(f0.size).astype(np.float32) * 1e-4
    tracker = ProsodyTracker()
    p = tracker.push(_features(x))
    rows = np.arange(len(p)) * HOP_S
    assert p.brow[(rows > accent) & (rows < accent + 0.4)].max() > 2 * p.brow[rows < accent - 0.15].max() + 0.05
    assert p.nod_deg[(rows > accent) & (rows < accent + 0.5)].min() < -0.3
    assert len(tracker.phrase_ends_s) == 1 and 1.1 < tracker.phrase_ends_s[0] < 1.3
    assert p.phrase_end.sum() == 1 and rows[p.phrase_end > 0][0] > tracker.phrase_ends_s[0]
