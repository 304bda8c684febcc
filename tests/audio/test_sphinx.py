"""PocketSphinx setup: models verified by SHA-256, audio conversion, phone labels, words."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from facewire.audio import sphinx
from facewire.errors import InputError, ModelError


def test_installed_models_verify_and_decoder_starts():
    m = sphinx.model_files()
    assert m.hmm.is_dir() and m.dict.is_file() and m.phone_lm.is_file()
    d = sphinx.new_decoder(m)
    assert d.lookup_word("hello") is not None


def _linked_copy(tmp_path: Path) -> Path:
    import pocketsphinx

    src = Path(pocketsphinx.get_model_path())
    for rel in sphinx.MODEL_SHA256:
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src / rel, dst)
    return tmp_path


def test_corrupted_model_copy_raises_model_error(tmp_path):
    root = _linked_copy(tmp_path)
    assert sphinx.verify_models(root).hmm == root / "en-us/en-us"
    target = root / "en-us/en-us/noisedict"
    data = bytearray(target.read_bytes())
    data[0] ^= 1
    target.unlink()
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="noisedict: expected SHA-256"):
        sphinx.verify_models(root)


def test_missing_model_raises_model_error(tmp_path):
    root = _linked_copy(tmp_path)
    (root / "en-us/en-us/mdef").unlink()
    with pytest.raises(ModelError, match="mdef"):
        sphinx.verify_models(root)


def test_to_pcm16_scales_and_cleans():
    x = np.array([0.0, 0.5, -1.0, 2.0, np.nan, np.inf], np.float32)
    y = np.frombuffer(sphinx.to_pcm16(x), "<i2")
    assert y.tolist() == [0, 16384, -32768, 32767, 0, 0]
    ints = np.array([1, -2, 300], np.int16)
    assert np.frombuffer(sphinx.to_pcm16(ints), "<i2").tolist() == [1, -2, 300]


def test_to_pcm16_resamples_to_16k():
    t = np.arange(8000) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = np.frombuffer(sphinx.to_pcm16(tone, 8000), "<i2").astype(float) / 32768
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 s of audio: bin = Hz


@pytest.mark.parametrize("bad, rate, message", [
    (np.zeros((2, 10), np.float32), 16000, "1-D mono"),
    (np.zeros(10, np.float32), 0, "sample rate"),
    (np.array(["a"]), 16000, "dtype"),
])
def test_to_pcm16_rejects_bad_input(bad, rate, message):
    with pytest.raises(InputError, match=message):
        sphinx.to_pcm16(bad, rate)


@pytest.mark.parametrize("name, label", [("AH1", "AH"), ("iy", "IY"), ("SIL", "SIL"), ("+NSN+", "SIL"),
                                         ("+SPN+", "SIL"), ("+BREATH+", "SIL"), ("ZH", "ZH")])
def test_phone_label(name, label):
    assert sphinx.phone_label(name) == label


def test_normalize_words():
    assert sphinx.normalize_words("Go forward, 10 meters! It’s B2.") == [
        "go", "forward", "one", "zero", "meters", "it's", "b", "two"]


def test_guess_pronunciation_gives_arpabet_for_unknown_words():
    from facewire.audio.phones import ARPABET

    for word in ("blorfington", "facewire", "xq"):
        phones = sphinx.guess_pronunciation(word).split()
        assert phones and all(p in ARPABET for p in phones)
    assert sphinx.guess_pronunciation("ship").split() == ["SH", "IH", "P"]
