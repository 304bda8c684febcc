"""Smoke test of ``facewire bench render``: it runs end to end on few frames and prints every number."""

from __future__ import annotations

import re
import subprocess
import sys


def test_bench_render_prints_fps_split_and_export_speed():
    proc = subprocess.run([sys.executable, "-m", "facewire", "bench", "render", "--frames", "30", "--video-frames", "10",
                           "--avatar", "probe"], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "avatar: probe head" in out
    for size in ("512×512", "1024×1024"):
        m = re.search(rf"{size}:\s+([\d.]+) fps", out)
        assert m and float(m.group(1)) > 0, out
    for label in ("deform + upload", "draw", "readback"):
        assert re.search(rf"{re.escape(label)}.*p50\s+[\d.]+\s+p95\s+[\d.]+ ms", out), out
    assert re.search(r"render \+ encode\s+[\d.]+ frames/s, encode alone\s+[\d.]+ frames/s", out), out
    assert re.search(r"target ≥ 120 fps at 512×512: (met|NOT met)", out), out
