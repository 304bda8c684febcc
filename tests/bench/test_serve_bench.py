"""``facewire bench serve`` end to end at toy size: a real ``facewire serve`` subprocess, a short ramp,
a short soak and a few connect/disconnect cycles, with every figure it promises printed."""

from __future__ import annotations

import re
import subprocess
import sys


def test_bench_serve_prints_capacity_soak_and_leak_check(shared_file, skip_or_fail) -> None:
    from facewire.errors import ModelError
    from facewire.server.app import ensure_three

    shared_file("data/video/grid/bbaf2n.mpg")
    try:
        ensure_three()  # facewire serve needs the page's three.js installed
    except ModelError as exc:
        skip_or_fail(f"three.js for the studio page is unavailable: {exc}")
    proc = subprocess.run(
        [sys.executable, "-m", "facewire", "bench", "serve", "--workers", "1", "--step-s", "1", "--warmup-s", "0.5",
         "--max-sessions", "2", "--soak-s", "2", "--cycles", "5", "--p95-ms", "1000", "--min-fps", "1",
         "--retries", "0"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "320×240 quality 80" in out and "grid" in out
    rows = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%\s+(\d+)\s+(\d+)%"
                      r"\s+(\d+)\s+[\d.]+ ms\s+(held|NOT held)", out, re.MULTILINE)
    assert [int(r[0]) for r in rows] == [1, 2]
    for r in rows:
        p50, p95, p99 = float(r[3]), float(r[4]), float(r[5])
        assert 0 < p50 <= p95 <= p99
        assert int(r[9]) > 50  # RSS of the server and its worker, MB
    held = re.search(r"capacity with --workers 1: (\d+) sessions held", out)
    assert held and int(held[1]) == max([0] + [int(r[0]) for r in rows if r[10] == "held"])
    assert re.search(r"soak: \d+ sessions held for 2 s — \d+ frames/s .* p95 [\d.]+ p99 [\d.]+ ms", out)
    assert re.search(r"server RSS \(MB\) every 10 s: \d+", out)
    leak = re.search(r"leak check: 5 connect/send/receive/disconnect cycles .*\((\d+) frames back\)\n"
                     r"\s+server RSS [\d.]+ → [\d.]+ MB \([+-][\d.]+\), open FDs (\d+) → (\d+)", out)
    assert leak and int(leak[1]) == 5
