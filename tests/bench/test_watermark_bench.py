"""Smoke test of ``facewire bench watermark``: it runs on a few frames and prints every section."""

import argparse

from facewire.bench import watermark as bench
from facewire.trust import watermark


def test_bench_runs_small(capsys):
    args = argparse.Namespace(payloads=1, frames=4, clips=1, strength=watermark.DEFAULT_STRENGTH)
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    for line in ("astronaut 512×512", "H.264 CRF 28", "JPEG q75", "resize 50%", "astronaut clip", "embed",
                 "target ≥ 95% bits after H.264 CRF 28"):
        assert line in out


def test_attacks_change_the_picture(astronaut):
    for name, attack in bench.ATTACKS.items():
        out = attack(astronaut)
        assert out.dtype == astronaut.dtype and out.ndim == 3
        if name == "none":
            assert out is astronaut
        elif name in ("resize 50%", "all three"):
            assert out.shape[:2] == (256, 256)
        else:
            assert out.shape == astronaut.shape and bench.psnr_db(astronaut, out) < 60
