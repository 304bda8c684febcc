"""The acoustic viseme model: features, streaming features, Viterbi decoding and alignment, the shipped weights."""

from __future__ import annotations

import numpy as np
import pytest

from facewire.audio import acoustic
from facewire.errors import ModelError
from facewire.mouth import VISEMES


def _chirp(seconds: float = 1.3) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t) + 0.01 * np.random.default_rng(1).normal(size=t.size)).astype(np.float32)


def test_log_mel_shape_and_floor():
    f = acoustic.log_mel(np.zeros(16000 + 55, np.float32))
    assert f.shape == (100, acoustic.N_MELS) and f.dtype == np.float32
    assert np.all(f == np.log10(acoustic.FLOOR).astype(np.float32))  # silence sits on the floor
    assert acoustic.log_mel(np.zeros(100, np.float32)).shape == (0, acoustic.N_MELS)
    tone = acoustic.log_mel(_chirp())
    assert tone.max() > np.log10(acoustic.FLOOR) + 2


def test_feature_stream_matches_whole_signal():
    x = _chirp()
    whole = acoustic.log_mel(x)
    fs = acoustic.FeatureStream()
    rows, i = [], 0
    rng = np.random.default_rng(0)
    while i < x.size:
        n = int(rng.integers(0, 700))
        rows.append(fs.push(x[i:i + n]))
        i += n
    rows.append(fs.flush(len(whole)))
    streamed = np.concatenate(rows)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed[:-1], whole[:-1], atol=1e-4)  # the last row sees the partial frame


def _segments(path):
    cuts = np.flatnonzero(np.diff(path)) + 1
    return np.diff(np.concatenate([[0], cuts, [path.size]]))


def test_decode_keeps_minimum_durations_and_follows_clear_evidence():
    rng = np.random.default_rng(2)
    noisy = rng.normal(0, 3, (400, len(VISEMES)))
    path = acoustic.decode_visemes(noisy)
    lengths = _segments(path)
    mins = acoustic.MIN_FRAMES[path[np.concatenate([[0], np.flatnonzero(np.diff(path)) + 1])]]
    assert np.all(lengths[1:-1] >= mins[1:-1])  # inner segments (the ends may be cut by the edges)
    truth = np.repeat([0, 3, 10, 1, 0], [20, 6, 12, 5, 20])
    clear = np.full((truth.size, len(VISEMES)), -8.0)
    clear[np.arange(truth.size), truth] = 0.0
    np.testing.assert_array_equal(acoustic.decode_visemes(clear), truth)
    assert acoustic.decode_visemes(np.zeros((0, len(VISEMES)))).size == 0


def test_streaming_decoder_agrees_with_offline():
    rng = np.random.default_rng(3)
    truth = np.repeat(rng.integers(0, len(VISEMES), 40), rng.integers(3, 12, 40))
    scores = rng.normal(0, 1.5, (truth.size, len(VISEMES)))
    scores[np.arange(truth.size), truth] += 3.0
    offline = acoustic.decode_visemes(scores)
    dec = acoustic.StreamingDecoder()
    parts, i = [], 0
    while i < truth.size:
        n = int(rng.integers(1, 9))
        parts.append(dec.push(scores[i:i + n]))
        i += n
    parts.append(dec.finish())
    streamed = np.concatenate(parts)
    assert streamed.size == truth.size
    assert np.mean(streamed == offline) >= 0.95


def test_viterbi_align_recovers_boundaries():
    seq = np.array([0, 5, 10, 7, 0])
    starts_true = np.array([0, 10, 14, 30, 37])
    t_n = 50
    lab = np.repeat(seq, np.diff(np.append(starts_true, t_n)))
    rng = np.random.default_rng(4)
    scores = rng.normal(0, 0.5, (t_n, len(VISEMES)))
    scores[np.arange(t_n), lab] += 2.0
    starts = acoustic.viterbi_align(scores, seq, np.full(seq.size, 2))
    assert np.max(np.abs(starts - starts_true)) <= 1
    # minimum durations win over the evidence: every segment gets ≥ 8 frames
    forced = acoustic.viterbi_align(scores, seq, np.full(seq.size, 8))
    assert np.all(np.diff(np.append(forced, t_n)) >= 8)


def test_shipped_model_classifies_silence_as_sil():
    model = acoustic.default_model()
    post = model.log_posteriors(acoustic.log_mel(np.zeros(16000, np.float32)))
    assert post.shape == (100, len(VISEMES))
    np.testing.assert_allclose(np.exp(post).sum(axis=1), 1.0, atol=1e-4)
    assert np.all(np.argmax(post, axis=1) == 0)


def test_model_with_wrong_outputs_or_digest_is_refused(monkeypatch):
    w = {k: v for k, v in acoustic._load().items()}
    w["w3"], w["b3"] = w["w3"][:, :5], w["b3"][:5]
    with pytest.raises(ModelError, match="15 outputs"):
        acoustic.VisemeModel(w)
    monkeypatch.setattr(acoustic, "MODEL_SHA256", "0" * 64)
    acoustic._load.cache_clear()
    try:
        with pytest.raises(ModelError, match="does not match the pinned"):
            acoustic._load()
    finally:
        acoustic._load.cache_clear()
