"""A small smoke run of the lip-sync benchmark's measures on real data."""

from __future__ import annotations

import argparse

import pytest

from facewire.audio.phones import Phone
from facewire.bench import lipsync as bench


def test_sentences_are_distinct_and_deterministic():
    s = bench.sentences(150)
    assert len(set(s)) == 150 and s == bench.sentences(150)


def test_measures_on_hand_made_phones():
    ref = [Phone("SIL", 0, 0.1), Phone("M", 0.1, 0.2), Phone("AA", 0.2, 0.5), Phone("SIL", 0.5, 0.6)]
    late = [Phone("SIL", 0, 0.13), Phone("M", 0.13, 0.2), Phone("AA", 0.2, 0.5), Phone("SIL", 0.5, 0.6)]
    assert bench.frame_accuracy(ref, ref, 0.6) == 1.0
    assert bench.frame_accuracy(late, ref, 0.6) == pytest.approx(34 / 36)  # frames 6, 7 differ
    errs, n = bench.onset_errors(late, ref)
    assert n == 2 and sorted(errs.round(3).tolist()) == [0.0, 0.03]


def test_training_never_hears_a_benchmark_sentence():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "tools" / "train_visemes.py"
    spec = importlib.util.spec_from_file_location("train_visemes", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    import numpy as np

    words = tool.vocabulary()
    made = tool.make_sentences(300, np.random.default_rng(0), words)
    bench_content = {w for s in bench.sentences(200) for w in s.split()} - set(tool.FUNCTION_WORDS)
    assert not bench_content & {w for s in made for w in s.split()}
    assert not set(bench.HELD_OUT_VOICES) & {v.split("+")[0] for v in tool.TRAIN_VOICES}
    assert "f3" not in tool.TRAIN_VARIANTS  # the +f3 variant is held out too


def test_small_run_prints_every_section(shared_dir, capsys):
    if not (shared_dir / "data/video/grid").is_dir():
        pytest.skip("GRID clips missing")
    bench.main(argparse.Namespace(sentences=3, clips=1, chunk_ms=40, quick=False, reps=1, only=None))
    out = capsys.readouterr().out
    for needle in ("1. synthetic speech: 3 sentences", "with transcript (align)", "lips closed", "allphone",
                   "held out of training", "seen voices", "held-out voices",
                   "2. GRID", "loudness baseline", "3. LibriVox", "4. speed", "streaming PhoneRecognizer",
                   "align, real voices", "LibriVox ", "GRID "):
        assert needle in out


def test_only_runs_the_parts_asked_for(shared_dir, capsys):
    if not (shared_dir / "data/speech/librivox").is_dir():
        pytest.skip("LibriVox utterances missing")
    bench.main(argparse.Namespace(sentences=3, clips=1, chunk_ms=40, quick=False, reps=1, only="librivox"))
    out = capsys.readouterr().out
    assert "3. LibriVox" in out
    assert "1. synthetic" not in out and "2. GRID" not in out and "4. speed" not in out


def test_only_rejects_an_unknown_part():
    from facewire.errors import InputError

    with pytest.raises(InputError, match="--only"):
        bench.main(argparse.Namespace(sentences=3, clips=1, chunk_ms=40, quick=False, reps=1, only="librivox,nope"))
