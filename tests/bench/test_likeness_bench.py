"""Smoke test of ``facewire bench likeness`` on few frames: it runs, prints its rates, and the faces separate."""

from __future__ import annotations

import argparse

import pytest

from facewire.bench import likeness
from facewire.errors import InputError


def test_bench_runs_and_separates_the_speakers(shared_file, models, capsys):
    grid = shared_file("data/video/grid/bbaf2n.mpg").parent
    assert likeness.main(argparse.Namespace(grid=str(grid), frames=4, threshold=None)) == 0
    out = capsys.readouterr().out
    for stem in likeness.SPEAKERS:
        assert stem in out
    assert "genuine pairs" in out and "impostor pairs" in out and "false-accept" in out
    assert "0 matched the wrong person" in out
    assert "separation at 0.50: clean" in out


def test_bench_names_missing_clips(tmp_path):
    with pytest.raises(InputError, match="expected 6 clips in"):
        likeness.main(argparse.Namespace(grid=str(tmp_path), frames=4, threshold=None))
