"""A run of ``facewire bench completion`` on the real takes (leave-one-take-out skipped: it trains 14 models)."""

from __future__ import annotations

import argparse
import re
from dataclasses import replace

from facewire.bench import completion as bench
from facewire.expression import completion as C


def test_held_back_table_matches_the_library(shared_dir, capsys):
    root = shared_dir / "data" / "takes"
    assert bench.main(argparse.Namespace(takes_dir=root, model=None, no_loto=True, no_ceiling=True, loto_epochs=1,
                                            loto_members=1)) == 0
    out = capsys.readouterr().out
    for needle in ("1. held-back takes", "2. smoothness", "3. generated eyes", "every mode and group ≥ 40%"):
        assert needle in out
    assert "trained on held-back takes" not in out
    # every (mode, group) row shows the improvement evaluate() computes, and says whether it reaches 40 %
    held = [replace(C.Take.read(root / h), name=h) for h in C.HELD_BACK]
    model = C.load_default_model()
    for mode in C.MODES:
        for group, score in C.evaluate(model, held, mode).items():
            row = re.search(rf"^  {re.escape(mode)} +{group} +([\d.]+) +([\d.]+) +([+-]\d+)% +(yes|NO)$", out, re.MULTILINE)
            assert row, (mode, group)
            assert float(row.group(1)) == round(score.error, 4)
            assert int(row.group(3)) == round(score.improvement * 100)
            assert (row.group(4) == "yes") == (score.improvement >= 0.40)
    # the reconstruction moves no faster than the real face (no jitter)
    for mode in C.MODES:
        row = re.search(rf"^  {re.escape(mode)} +([\d.]+) +([\d.]+) +([\d.]+)$", out, re.MULTILINE)
        assert row and float(row.group(3)) < 1.5, mode


def test_leave_one_out_on_two_takes_prints_a_row_per_group(shared_dir, capsys):
    root = shared_dir / "data" / "takes"
    names = ("jmtechart/MySlate_3_Jason_Millers_iPhone.csv", "neurosync/MySlate_165_iPhone_cal.csv")
    takes = {n: replace(C.Take.read(root / n), name=n) for n in names}
    bench.leave_one_out(takes, epochs=1, members=1)
    out = capsys.readouterr().out
    assert "leave-one-take-out over 2 takes" in out
    assert len(re.findall(r"^  (lower|eyes|lower\+eyes|audio) +\w+ +[+-]\d+%", out, re.MULTILINE)) == 16


def test_ceiling_trains_on_the_held_back_takes_too(shared_dir, capsys):
    root = shared_dir / "data" / "takes"
    takes = {n: replace(C.Take.read(root / n), name=n) for n in C.HELD_BACK}
    bench.ceiling(takes, epochs=1, members=1)
    out = capsys.readouterr().out
    assert "trained on all 3 takes, held-back ones included" in out and "in-sample" in out
    rows = re.findall(r"^  (lower|eyes|lower\+eyes|audio) +((?:\w+ [+-]\d+%\*? ?){4})$", out, re.MULTILINE)
    assert [r[0] for r in rows] == list(C.MODES)
