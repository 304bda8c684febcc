"""Smoke test of ``facewire bench batch``: a few items, one process and Ray in-process with 1 worker;
every number is printed and the outputs of both modes are byte-identical."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("ray")


def test_bench_batch_prints_items_per_s_overheads_skips_and_start_up(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "facewire", "bench", "batch", "--lines", "3", "--clips", "0",
                           "--repeats", "1", "--workers", "1"], cwd=tmp_path, check=False, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "= 3 items" in out, out
    for label in (r"1 process \(--serial\)", r"Ray in-process, 1 worker"):
        m = re.search(rf"{label}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)×", out)
        assert m and float(m.group(1)) > 0 and float(m.group(2)) > 0, out
    assert re.search(r"Ray's cost per item: [+-][\d.]+ ms .*an empty task's round trip: [\d.]+ ms", out), out
    assert re.search(r"Ray start-up \(init → first task back\): 1 worker [\d.]+ s; shutdown [\d.]+ s", out), out
    m = re.search(r"manifest skip on a re-run \(done and unchanged\): (\d+) items/s", out)
    assert m and int(m.group(1)) > 0, out
    assert re.search(r"outputs byte-identical across 1 process and Ray \(workers: 1\): yes \(6 files\)", out), out
