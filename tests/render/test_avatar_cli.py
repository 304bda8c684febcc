"""``facewire avatar export`` and ``facewire avatar inspect`` as a user runs them (real subprocesses)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from facewire import arkit
from facewire.render.glb import read_avatar


def facewire(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(check=False, args=[sys.executable, "-m", "facewire", *args], capture_output=True, text=True, timeout=120)


def test_export_then_inspect(tmp_path: Path) -> None:
    out = tmp_path / "default.glb"
    proc = facewire("avatar", "export", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stderr and "52 ARKit morph targets" in proc.stderr
    mesh, _ = read_avatar(out)
    assert set(mesh.morph_targets) == set(arkit.NAMES)
    proc = facewire("avatar", "inspect", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "ARKit shapes with their own morph target: 52 of 52" in proc.stdout
    assert not list(tmp_path.glob(".*.part"))  # written atomically


def test_inspect_bad_file_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00")
    proc = facewire("avatar", "inspect", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facewire: error: ") and "bad.glb" in lines[0]
