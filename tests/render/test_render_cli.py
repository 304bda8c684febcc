"""``facewire render`` end to end in a subprocess: a real take (the shared iPhone capture, or one
written here) onto the default avatar, with sound; and every bad input as one clear error line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facewire import arkit
from facewire.frame import FaceFrame, HeadPose
from facewire.takes import open_writer

FACEWIRE = [sys.executable, "-m", "facewire"]


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*FACEWIRE, *map(str, args)], check=False, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(autouse=True)
def trust_home(tmp_path, monkeypatch) -> Path:
    """Every render writes to the audit log of a trust home: a fresh one per test, never the user's."""
    home = tmp_path / "trust-home"
    monkeypatch.setenv("FACEWIRE_HOME", str(home))
    monkeypatch.setenv("FW_TEST_PASSPHRASE", "correct horse battery staple")
    return home


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facewire: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture()
def take(tmp_path) -> Path:
    """A 1 s take at 30 fps: the jaw opens and closes while the head turns."""
    path = tmp_path / "take.jsonl"
    with open_writer(path) as w:
        for i in range(31):
            weights = np.zeros(arkit.COUNT, np.float32)
            weights[arkit.INDEX["jawOpen"]] = np.sin(np.pi * i / 30)
            w.send(FaceFrame(t_ns=i * 33_333_333, seq=i, weights=weights, head=HeadPose(yaw_deg=i - 15)))
    return path


def _wav(path: Path, seconds: float, rate: int = 16_000) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=rate, layout="mono")
        t = np.arange(round(seconds * rate)) / rate
        frame = av.AudioFrame.from_ndarray((8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)[None, :],
                                           format="s16", layout="mono")
        frame.sample_rate = rate
        for p in [*s.encode(frame), *s.encode()]:
            c.mux(p)
    return path


def test_render_a_take_with_sound(tmp_path, take):
    out = tmp_path / "clip.mp4"
    proc = _run("render", take, "--avatar", "default", "--audio", _wav(tmp_path / "s.wav", 1.5), "--out", out,
                "--size", "128x96", "--fps", "24")
    assert proc.returncode == 0, proc.stderr
    assert "rendered 25 frames at 24 fps" in proc.stderr
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height) == (128, 96)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        audio_s = float(a.duration * a.time_base)
    assert len(frames) == 25
    assert abs(audio_s - 25 / 24) <= 1 / 24
    assert np.abs(frames[12].astype(int) - frames[0].astype(int)).mean() > 0.5  # the face moved


def test_render_one_frame_of_a_real_take_as_png(tmp_path, shared_file):
    csv = shared_file("data/takes/jmtechart/MySlate_3_Jason_Millers_iPhone.csv")
    out = tmp_path / "face.png"
    proc = _run("render", csv, "--out", out, "--at", "2.5", "--size", "96x128", "--background", "#ffffff")
    assert proc.returncode == 0, proc.stderr
    picture = cv2.imread(str(out))
    assert picture.shape == (128, 96, 3) and (picture[0, 0] == 255).all()


@pytest.mark.parametrize("args, needles", [
    (["--avatar", "me.jpg"], ["photo me.jpg", "no such file"]),
    (["--face", "2"], ["--face", "picks a face in a photo avatar"]),
    (["--avatar", "head.obj"], ["expected 'default' or a .glb/.vrm file"]),
    (["--size", "big"], ["--size", "WIDTHxHEIGHT"]),
    (["--background", "red"], ["#RRGGBB"]),
    (["--fps", "0"], ["fps", "between 1 and 240"]),
])
def test_bad_arguments(tmp_path, take, args, needles):
    _one_line_error(_run("render", take, "--out", tmp_path / "c.mp4", *args), *needles)
    assert not (tmp_path / "c.mp4").exists()


def test_corrupt_glb_avatar(tmp_path, take):
    glb = tmp_path / "broken.glb"
    glb.write_bytes(b"glTF\x02\x00\x00\x00garbage that is not a glTF container")
    proc = _run("render", take, "--avatar", glb, "--out", tmp_path / "c.mp4")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("facewire: error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c.mp4").exists()


def test_take_with_nan_is_a_clear_error(tmp_path):
    header = "time_s,tracked,confidence," + ",".join(arkit.NAMES)
    row = "0.0,1,1.0," + ",".join(["nan"] + ["0"] * (arkit.COUNT - 1))
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "\n" + row + "\n")
    proc = _run("render", bad, "--out", tmp_path / "c.mp4")
    _one_line_error(proc)
    assert "nan" in proc.stderr.lower() or "finite" in proc.stderr.lower()
    assert not (tmp_path / "c.mp4").exists()


def test_missing_take_and_png_with_audio(tmp_path, take):
    _one_line_error(_run("render", tmp_path / "none.csv", "--out", tmp_path / "c.mp4"), "no such file")
    _one_line_error(_run("render", take, "--out", tmp_path / "f.png", "--audio", "x.wav"), "PNG has no sound")


def test_render_onto_a_glb_avatar_matches_the_default(tmp_path, take):
    from facewire.render.default_avatar import default_avatar
    from facewire.render.glb import write_glb

    glb = tmp_path / "head.glb"
    write_glb(default_avatar(), glb)
    pictures = {}
    for avatar in ("default", glb):
        out = tmp_path / f"{Path(str(avatar)).stem}.png"
        proc = _run("render", take, "--avatar", avatar, "--out", out, "--at", "0.5", "--size", "96x96")
        assert proc.returncode == 0, proc.stderr
        pictures[str(avatar)] = cv2.imread(str(out)).astype(int)
    a, b = pictures.values()
    assert np.abs(a - b).mean() < 2.0  # the same head through the file: the same picture


# -- trust ----------------------------------------------------------------------------------------
def _keys_init() -> None:
    proc = _run("keys", "init", "--passphrase-env", "FW_TEST_PASSPHRASE", "--subject", "operator")
    assert proc.returncode == 0, proc.stderr


def test_default_avatar_render_is_trusted_and_audited(tmp_path, take):
    unsigned = _run("render", take, "--out", tmp_path / "u.mp4", "--size", "64x64", "--quiet")
    assert unsigned.returncode == 0, unsigned.stderr
    warning = [line for line in unsigned.stderr.splitlines() if "unsigned" in line]
    assert len(warning) == 1 and "run 'facewire keys init'" in warning[0] and "--no-sign" in warning[0]
    quiet = _run("render", take, "--out", tmp_path / "q.mp4", "--size", "64x64", "--quiet", "--no-sign")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr

    _keys_init()
    out = tmp_path / "clip.mp4"
    proc = _run("render", take, "--out", out, "--size", "128x128", "--passphrase-env", "FW_TEST_PASSPHRASE")
    assert proc.returncode == 0, proc.stderr
    assert "signed (C2PA + watermark)" in proc.stderr
    verify = _run("verify", out)
    assert verify.returncode == 0 and f"{out}: Trusted" in verify.stdout, verify.stdout + verify.stderr
    assert "matches the manifest's audit record" in verify.stdout
    audit = _run("audit", "verify")
    assert audit.returncode == 0 and "verifies" in audit.stdout, audit.stdout
    kinds = [line.split()[2] for line in _run("audit", "show").stdout.splitlines()]
    assert kinds.count("session-start") == 3 and kinds.count("export") == 3 and kinds.count("session-stop") == 3


def test_photo_avatar_render_needs_keys_context_and_consent(tmp_path, take, astronaut):
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut[:, :, ::-1])
    out = tmp_path / "photo.mp4"
    base = ["render", take, "--avatar", photo, "--out", out, "--size", "128x128"]
    _one_line_error(_run(*base, "--context", "entertainment"), "rendered only signed", "run 'facewire keys init'")
    _keys_init()
    signed = ["--passphrase-env", "FW_TEST_PASSPHRASE"]
    _one_line_error(_run(*base, *signed), "needs a use context: --context")
    _one_line_error(_run(*base, *signed, "--context", "entertainment"), "is not a registered likeness",
                    "attestation for context 'entertainment' is required (--attest FILE")
    token = tmp_path / "attest.jwt"
    made = _run("consent", "attest", "--likeness", photo, "--context", "entertainment", "--out", token, *signed)
    assert made.returncode == 0, made.stderr
    _one_line_error(_run(*base, *signed, "--context", "telepresence", "--attest", token),
                    "does not allow context 'telepresence'")
    assert not out.exists()
    proc = _run(*base, *signed, "--context", "entertainment", "--attest", token)
    assert proc.returncode == 0, proc.stderr
    verify = _run("verify", out)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "context entertainment" in verify.stdout and "avatar:       astronaut" in verify.stdout
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 31 or len(list(c.decode(video=0))) == 31
    shown = _run("audit", "show", "--kind", "consent-check").stdout
    assert shown.count('"result":"refused"') == 4 and shown.count('"result":"granted"') == 1


def test_photo_avatar_with_two_faces_asks_which(tmp_path, take, astronaut):
    photo = tmp_path / "two.png"
    cv2.imwrite(str(photo), np.hstack([astronaut, astronaut])[:, :, ::-1])
    _one_line_error(_run("render", take, "--avatar", photo, "--out", tmp_path / "c.mp4"),
                    "found 2 faces; choose one with --face N")
