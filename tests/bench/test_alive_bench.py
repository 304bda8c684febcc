"""A small run of ``facewire bench alive``: every state and statistic printed, ranges judged, bad flags refused."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from facewire.bench import alive
from facewire.expression.blink import RATES_PER_MIN


def args(**changes) -> argparse.Namespace:
    base = {"minutes": 0.5, "fps": 60.0, "seed": 0, "takes": None, "jobs": 1}
    return argparse.Namespace(**{**base, **changes})


def test_generated_take_carries_its_own_saccades():
    rec, events = alive.generate("speaking", 0.5, 60.0, 1)
    assert len(rec.t_s) == 1800 and events.shape[1] == 3 and len(events) > 5
    amplitude, peak, duration = events.T
    np.testing.assert_allclose(duration, np.pi / 2 * amplitude / peak)  # half-cosine profile
    # the generated take is the stages' frame-by-frame output: the lids close in it and the eyes move
    assert rec.weights.max() > 0.9 and np.ptp(rec.gaze[:, 0]) > 5


def test_small_run_prints_every_state_beside_the_real_takes(shared_dir, capsys):
    # 2 minutes: enough blinks (≈ 30-50 per state) for the measured rates to mean something
    assert alive.main(args(takes=shared_dir / "data" / "takes", minutes=2.0)) == 0
    out = capsys.readouterr().out
    for state in alive.STATES:
        assert re.search(rf"^{state}: generated 2\.0 min at 60 fps", out, re.MULTILINE)
    for row in ("blink rate (/min)", "interval p10/50/90 (s)", "blink duration p10/50/90 (ms)", "saccades ≥ 1°",
                "peak velocity at 15°", "fit Vmax·(1−e^(−A/C))", "fixation p10/50/90 (s)", "Doughty 2001",
                "Rayner 1998", "Hopf et al. 2018", "Collewijn et al. 1988", "real takes p25-p75",
                "interval ÷ take's mean, p50", "(rate-free shape)"):
        assert row in out
    assert "blinks rest, emotion-hold (3.9 min), gaze rest (0.8 min)" in out  # the real takes were measured
    rates = {m[0]: float(m[1]) for m in re.findall(r"^(\w+): generated.*\n.*\n  blink rate \(/min\)\s+([\d.]+)", out, re.MULTILINE)}
    # the detectors find the generated blinks at about the rate each state is configured for
    assert set(rates) == set(alive.STATES)
    for state, rate in rates.items():
        assert rate == pytest.approx(RATES_PER_MIN[state], rel=0.5)
    # the closing line counts the judged rows the generated numbers are inside of
    inside, judged = (int(v) for v in re.search(r"generated rows in range: (\d+) of (\d+) judged", out).groups())
    # the generated number's verdict sits in a fixed column: 2 + 32 + 1 + 20 + 1 + 20 + 2 characters in
    verdicts = [v for line in out.splitlines() if line.startswith("  ") and (v := line[78:82].strip()) in ("in", "OUT")]
    assert judged == len(verdicts) > 15 and inside == verdicts.count("in")


def test_relative_intervals_take_out_each_takes_rate():
    slow, _ = alive.generate("listening", 3.0, 60.0, 2)
    fast, _ = alive.generate("speaking", 3.0, 60.0, 3)
    each = [alive.relative_intervals([r]) for r in (slow, fast)]
    for rel in each:
        assert len(rel) > 20 and np.mean(rel) == pytest.approx(1.0)
    # pooled, each take keeps its own scale: the result is the two takes' own ratios side by side
    np.testing.assert_allclose(alive.relative_intervals([slow, fast]), np.concatenate(each))
    assert len(alive.relative_intervals([])) == 0


def test_range_verdicts():
    r = alive.Range(1.0, 2.0, "x")
    assert (r.judge(1.0), r.judge(2.5), r.judge(float("nan"))) == ("in", "OUT", "—")
    assert (r.judge(2.0 + 2e-15), r.judge(2.001), r.judge(0.999)) == ("in", "OUT", "OUT")  # rounding is not OUT


def test_without_real_takes_it_still_reports(tmp_path, capsys):
    assert alive.main(args(takes=tmp_path / "missing", minutes=0.2)) == 0
    out = capsys.readouterr().out
    assert "real takes: not found" in out and "no real take of this state" in out


def test_bad_flags_are_refused(capsys):
    assert alive.main(args(minutes=0)) == 2
    assert alive.main(args(fps=5)) == 2
    assert "--minutes: expected" in capsys.readouterr().err
