"""``facewire likeness``: the real CLI in a subprocess, a real trust home in tmp, real faces.

Whatever the input, the CLI either succeeds or prints one ``facewire: error: …`` line (no
traceback) and exits non-zero.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

FACEWIRE = [sys.executable, "-m", "facewire", "likeness"]


def _run(*args: str, home) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FACEWIRE_DEBUG"}
    return subprocess.run([*FACEWIRE, *args, "--home", str(home)], check=False, capture_output=True,
                          text=True, env=env, timeout=120)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("facewire:")]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def photos(tmp_path, astronaut):
    import skimage.data

    camera = np.repeat(skimage.data.camera()[:, :, None], 3, axis=2)
    paths = {
        "astronaut": tmp_path / "astronaut.png",
        "two": tmp_path / "two.jpg",
        "blank": tmp_path / "blank.png",
        "corrupt": tmp_path / "corrupt.png",
    }
    cv2.imwrite(str(paths["astronaut"]), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(paths["two"]), cv2.cvtColor(np.concatenate([camera, astronaut], axis=1), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(paths["blank"]), np.full((240, 320, 3), 70, np.uint8))
    data = paths["astronaut"].read_bytes()
    paths["corrupt"].write_bytes(data[: len(data) // 4])
    return paths


def test_register_list_match_remove(tmp_path, photos, shared_file, models):
    home = tmp_path / "home"
    clip = shared_file("data/video/grid/bbaf2n.mpg")
    r = _run("register", "--subject", "grid-speaker", "--name", "GRID speaker", "--json", str(clip), home=home)
    assert r.returncode == 0, r.stderr
    speaker = json.loads(r.stdout)
    assert speaker["subject"] == "grid-speaker" and speaker["samples"] >= 2
    # two faces: asks which; --face 2 (the astronaut, rightmost) registers her
    r = _run("register", "--subject", "eileen", str(photos["two"]), home=home)
    assert r.returncode == 2 and "found 2; choose one with --face N" in _error_line(r)
    r = _run("register", "--subject", "eileen", "--face", "2", "--json", str(photos["two"]), home=home)
    assert r.returncode == 0, r.stderr
    eileen = json.loads(r.stdout)

    r = _run("list", "--json", home=home)
    assert r.returncode == 0
    assert [lk["id"] for lk in json.loads(r.stdout)] == [speaker["id"], eileen["id"]]
    assert (home / "likeness.db").is_file()

    r = _run("match", "--json", str(photos["astronaut"]), home=home)
    assert r.returncode == 0, r.stderr
    (face,) = json.loads(r.stdout)
    assert face["match"] and face["likeness_id"] == eileen["id"] and face["distance"] <= face["threshold"]

    # the photo with two faces: the cameraman is not registered, the astronaut is
    r = _run("match", str(photos["two"]), home=home)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith("face 1 of 2") and "no match" in lines[0]
    assert lines[1].startswith("face 2 of 2") and f"MATCH {eileen['id']}" in lines[1]

    r = _run("match", "--face", "1", str(photos["two"]), home=home)
    assert r.returncode == 1 and "no match (closest" in r.stdout

    r = _run("remove", eileen["id"], home=home)
    assert r.returncode == 0 and eileen["id"] in r.stdout
    r = _run("match", str(photos["astronaut"]), home=home)
    assert r.returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("register", "--subject", "x", "{blank}"), "blank.png: expected a face, found none"),
        (("register", "--subject", "x", "{corrupt}"), "corrupt.png: not a video or image"),
        (("register", "--subject", "x", "{missing}"), "missing.png: no such file"),
        (("match", "{blank}"), "blank.png: expected a face, found none"),
        (("remove", "lk_0123456789ab"), "expected a registered id"),
    ],
)
def test_errors_are_one_line(tmp_path, photos, models, args, message):
    paths = {**{k: str(v) for k, v in photos.items()}, "missing": str(tmp_path / "missing.png")}
    r = _run(*(a.format(**paths) for a in args), home=tmp_path / "home")
    assert r.returncode == 2
    assert message in _error_line(r)
