"""End-to-end tests of the ``facewire`` command line: the real CLI in a subprocess, the real models,
real files written at test time (and the GRID clips from the shared data directory).

Whatever the input, the CLI must either succeed or print one ``facewire: error: …`` line and exit
non-zero — never a Python traceback — and a failed or killed run must never leave a take behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data as skdata

from facewire import arkit
from facewire.expression.calibration import CalibrationProfile
from facewire.frame import FaceFrame
from facewire.samples import astronaut_clip
from facewire.takes import read_take

FACEWIRE = [sys.executable, "-m", "facewire"]
GRID_CLIP = "data/video/grid/bbaf2n.mpg"  # 75 frames, 360×288, 25 fps
OFFICIAL_TASK = "models/face_landmarker_v2_with_blendshapes.task"
HEADER = [
    "time_s",
    "tracked",
    "confidence",
    *arkit.NAMES,
    *["headYaw", "headPitch", "headRoll", "headX", "headY", "headZ",
      "leftEyeYaw", "leftEyePitch", "rightEyeYaw", "rightEyePitch"],
]


# -- running the CLI --------------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FACEWIRE_DEBUG"}
    env.update(extra)
    return env


def facewire(*args: object, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180):
    """Run ``python -m facewire ARGS`` to completion; never a traceback, whatever happened."""
    proc = subprocess.run(
        [*FACEWIRE, *map(str, args)],
        cwd=cwd,
        env=env or cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Exception ignored" not in proc.stderr, proc.stderr
    return proc


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stderr
    return proc


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("facewire: error:")]


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """A non-zero exit with exactly one ``facewire: error:`` line, the last thing on stderr."""
    assert proc.returncode != 0, proc.stderr
    errors = error_lines(proc.stderr)
    assert len(errors) == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1] == errors[0], proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary files a writer left in ``folder`` (atomic writers use hidden ``.NAME….part`` files)."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:] if line]


def tracked_column(path: Path) -> list[int]:
    header, rows = csv_rows(path)
    col = header.index("tracked")
    return [int(row[col]) for row in rows]


def video_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# -- fixture writers (everything but the GRID clips is made here) --------------------------------


def astronaut_bgr() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[:, :, ::-1])


def write_image(path: Path, arr: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), arr), path
    return path


def write_video(
    path: Path,
    frames,
    *,
    rate: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    stream_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB (H×W×3) or grey (H×W) uint8 frames with PyAV."""
    with av.open(str(path), "w", options=options or {}) as out:
        stream = None
        for arr in frames:
            if stream is None:
                stream = out.add_stream(codec, rate=rate)
                stream.height, stream.width = arr.shape[:2]
                stream.pix_fmt = pix_fmt
                stream.options = stream_options or {}
            fmt = "gray" if arr.ndim == 2 else "rgb24"
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def moving_frames(n: int) -> list[np.ndarray]:
    """``n`` RGB frames of a 320×240 window sliding across the astronaut picture."""
    astro = skdata.astronaut()
    return [np.ascontiguousarray(astro[100 + i : 100 + i + 240, 40 + 2 * i : 40 + 2 * i + 320]) for i in range(n)]


def truncate(src: Path, dst: Path) -> Path:
    raw = src.read_bytes()
    dst.write_bytes(raw[: len(raw) // 2])
    return dst


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every generated input, written once for the module."""
    d = tmp_path_factory.mktemp("cli-media")
    bgr = astronaut_bgr()
    frames = moving_frames(32)
    out: dict[str, Path] = {}
    out["astronaut"] = write_image(d / "astronaut.png", bgr)
    # moov atom at the end (the default): the first half holds no index at all
    out["truncated"] = truncate(write_video(d / "moving.mp4", frames), d / "truncated.mp4")
    # moov atom first: the index survives, the frames in the second half do not
    whole = write_video(d / "faststart.mp4", frames, options={"movflags": "+faststart"})
    out["truncated-tail"] = truncate(whole, d / "truncated-tail.mp4")
    (d / "empty.mp4").touch()
    out["zero-byte"] = d / "empty.mp4"
    (d / "notes.mp4").write_text("this is not a video\n" * 20)
    out["text-as-mp4"] = d / "notes.mp4"
    out["1x1"] = write_image(d / "dot.png", np.array([[[10, 20, 30]]], np.uint8))
    out["16-bit-png"] = write_image(d / "deep.png", bgr.astype(np.uint16) * 257)
    assert cv2.imread(str(out["16-bit-png"]), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    alpha = np.full(bgr.shape[:2], 255, np.uint8)
    alpha[:, :80] = 0  # a transparent strip: composited over black
    alpha[:, 80:140] = 128
    out["rgba"] = write_image(d / "alpha.png", np.dstack([bgr, alpha]))
    assert cv2.imread(str(out["rgba"]), cv2.IMREAD_UNCHANGED).shape[2] == 4
    big = np.full((4320, 7680, 3), 128, np.uint8)
    big[:, 1680:6000] = cv2.resize(bgr, (4320, 4320), interpolation=cv2.INTER_CUBIC)
    out["8k"] = write_image(d / "8k.jpg", big)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[:16]]
    out["grayscale-video"] = write_video(d / "gray.mkv", grey, codec="ffv1", pix_fmt="gray")
    with av.open(str(out["grayscale-video"])) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "gray"
    folder = d / "stills"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"frame_{i + 1}.png", np.roll(bgr, 4 * i, axis=1))
    (folder / "notes.txt").write_text("not an image")
    out["folder"] = folder
    crop = bgr[0:400, 40:420]  # two astronauts side by side, each face large enough for the detector
    out["two-faces"] = write_image(d / "two.png", np.hstack([crop, crop]))
    return out


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 frames (20 s at 30 fps) of the moving astronaut: long enough to kill a run mid-write."""
    d = tmp_path_factory.mktemp("cli-long")
    pictures = (im.rgb for im in astronaut_clip(frames=600, size=(640, 480)))
    return write_video(d / "long.mp4", pictures, rate=30, stream_options={"preset": "ultrafast"})


@pytest.fixture(scope="module")
def grid_clip(shared_file: Callable[[str], Path]) -> Path:
    return shared_file(GRID_CLIP)


# -- entry points ---------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["facewire", "facewire.cli"])
def test_python_dash_m(module: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("facewire ")


def test_no_verb_is_a_usage_error(tmp_path: Path) -> None:
    proc = facewire(cwd=tmp_path)
    assert proc.returncode == 2 and "usage: facewire" in proc.stderr


# -- 1. bad input -------------------------------------------------------------------------------

# case -> (input, extra args, what may happen, needles for the error message)
FAIL, NO_FACE, TRACKED, EITHER = "fail", "no-face", "tracked", "either"
BAD_INPUTS = {
    "truncated": ("truncated", [], FAIL, ["truncated.mp4: ", "not a video or image"]),
    "truncated-tail": ("truncated-tail", [], EITHER, ["truncated-tail.mp4: "]),
    "zero-byte": ("zero-byte", [], FAIL, ["empty.mp4: ", "empty file"]),
    "text-as-mp4": ("text-as-mp4", [], FAIL, ["notes.mp4: ", "not a video or image"]),
    "1x1-image": ("1x1", [], NO_FACE, []),
    "16-bit-png": ("16-bit-png", [], TRACKED, []),
    "rgba": ("rgba", [], TRACKED, []),
    "8k-jpeg": ("8k", [], TRACKED, []),
    "grayscale-video": ("grayscale-video", [], TRACKED, []),
    "missing-camera": ("camera:7", [], FAIL, ["camera:7: cannot open camera 7"]),
    "missing-file": ("missing", [], FAIL, ["no such file"]),
    "unknown-out-extension": ("astronaut", ["--out", "x.xyz"], FAIL, ["x.xyz: unsupported take format", ".csv"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(case: str, media: dict[str, Path], tmp_path: Path) -> None:
    key, extra, expect, needles = BAD_INPUTS[case]
    if key == "camera:7":
        if Path("/dev/video7").exists():
            pytest.skip("this machine has a /dev/video7")
        spec = key
    elif key == "missing":
        spec = str(tmp_path / "nope.mp4")
    else:
        spec = str(media[key])
    proc = facewire("track", spec, "--out", "take.csv", "--preview", "p.mp4", *extra, cwd=tmp_path)
    take, preview = tmp_path / "take.csv", tmp_path / "p.mp4"
    assert leftovers(tmp_path) == []
    if expect == EITHER:
        expect = FAIL if proc.returncode not in (0, 3) else (TRACKED if proc.returncode == 0 else NO_FACE)
    if expect == FAIL:
        assert_one_line_error(proc, *needles)
        assert proc.returncode == 2
        assert not take.exists() and not preview.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == []
        return
    assert error_lines(proc.stderr) == [], proc.stderr
    assert take.exists() and preview.exists()
    header, rows = csv_rows(take)
    assert header == HEADER and rows
    if expect == NO_FACE:
        assert proc.returncode == 3, proc.stderr
        assert "no face found" in proc.stderr
        assert tracked_column(take) == [0] * len(rows)
    else:
        assert proc.returncode == 0, proc.stderr
        assert tracked_column(take) == [1] * len(rows)
        if case == "grayscale-video":
            assert len(rows) == 16
        elif case != "truncated-tail":
            assert len(rows) == 1
    if case == "truncated-tail":
        assert "warning:" in proc.stderr and "truncated" in proc.stderr  # said so, on stderr


def test_failed_run_keeps_an_earlier_take(media: dict[str, Path], tmp_path: Path) -> None:
    take = tmp_path / "take.csv"
    take.write_text("an earlier take\n")
    proc = facewire("track", media["zero-byte"], "--out", "take.csv", cwd=tmp_path)
    assert_one_line_error(proc, "empty file")
    assert take.read_text() == "an earlier take\n"
    proc = facewire("track", media["astronaut"], "--out", "take.csv", "--out", "x.xyz", cwd=tmp_path)
    assert_one_line_error(proc, "unsupported take format")
    assert take.read_text() == "an earlier take\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.csv"]


def test_unwritable_preview_fails_before_tracking(media: dict[str, Path], tmp_path: Path) -> None:
    proc = facewire(
        "track", media["grayscale-video"], "--out", "take.csv", "--preview", tmp_path / "no" / "dir" / "p.mp4",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(proc, "p.mp4: cannot write the preview video")
    assert "tracked a face" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- 2. killed mid-write --------------------------------------------------------------------------


def kill_mid_write(clip: Path, cwd: Path, *args: object, sig: int = signal.SIGKILL) -> subprocess.Popen:
    """Start ``track CLIP --out take.csv …``, wait until rows are being written, send ``sig``."""
    proc = subprocess.Popen(
        [*FACEWIRE, "track", str(clip), "--out", "take.csv", *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        start = time.monotonic()
        deadline = start + 120
        while time.monotonic() < deadline and proc.poll() is None:
            parts = [p for p in cwd.glob(".take.csv.*.part") if p.stat().st_size > 0]
            if parts and time.monotonic() - start >= 1.5:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
        assert parts, "the take was never being written"
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc


def test_sigkill_mid_write_leaves_no_take(long_clip: Path, tmp_path: Path) -> None:
    proc = kill_mid_write(long_clip, tmp_path, "--out", "take.jsonl", "--preview", "p.mp4")
    assert proc.returncode == -signal.SIGKILL
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "take.csv" not in names and "take.jsonl" not in names and "p.mp4" not in names
    assert all(n.startswith(".") and n.endswith(".part") for n in names), names  # only stale temp files


def test_sigkill_mid_write_keeps_an_earlier_take(long_clip: Path, media: dict[str, Path], tmp_path: Path) -> None:
    ok(facewire("track", media["astronaut"], "--out", "take.csv", cwd=tmp_path))
    before = (tmp_path / "take.csv").read_bytes()
    assert tracked_column(tmp_path / "take.csv") == [1]
    proc = kill_mid_write(long_clip, tmp_path)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / "take.csv").read_bytes() == before


def test_sigterm_mid_write_cleans_up(long_clip: Path, tmp_path: Path) -> None:
    proc = kill_mid_write(long_clip, tmp_path, "--preview", "p.mp4", sig=signal.SIGTERM)
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "facewire: terminated" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no take, no preview, no temp file


def test_ctrl_c_mid_write_cleans_up(long_clip: Path, tmp_path: Path) -> None:
    proc = kill_mid_write(long_clip, tmp_path, sig=signal.SIGINT)
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 130, stderr
    assert "facewire: interrupted" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- 3. happy paths ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid_run(grid_clip: Path, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("cli-grid")
    proc = facewire("track", grid_clip, "--out", "take.csv", "--out", "take.jsonl", "--preview", "p.mp4", cwd=d)
    return ok(proc), d


def test_grid_csv(grid_run) -> None:
    proc, d = grid_run
    header, rows = csv_rows(d / "take.csv")
    assert header == HEADER
    assert len(header) == 3 + 52 + 10
    assert len(rows) == 75 and all(len(row) == len(HEADER) for row in rows)
    tracked = tracked_column(d / "take.csv")
    assert sum(tracked) >= 0.99 * 75
    times = [float(row[0]) for row in rows]
    assert times[0] == 0.0 and times == sorted(times) and times[-1] == pytest.approx(74 * 0.04)
    assert "tracked a face in" in proc.stderr and proc.stdout == ""
    assert leftovers(d) == []


def test_grid_jsonl_matches_csv(grid_run) -> None:
    _, d = grid_run
    from_jsonl = list(read_take(d / "take.jsonl"))
    from_csv = list(read_take(d / "take.csv"))
    assert len(from_jsonl) == len(from_csv) == 75
    for a, b in zip(from_jsonl, from_csv):
        assert a.tracked == b.tracked
        assert a.t_ns == b.t_ns
        if a.tracked:
            assert a.landmarks is not None and a.landmarks.shape == (478, 3)
        np.testing.assert_array_equal(np.float32(a.weights), np.float32(b.weights))
        assert a.confidence == pytest.approx(b.confidence, rel=1e-6, abs=1e-7)
        for field in ("yaw_deg", "pitch_deg", "roll_deg", "x", "y", "z"):
            assert getattr(a.head, field) == pytest.approx(getattr(b.head, field), rel=1e-6, abs=1e-5)
        for field in ("left_yaw_deg", "left_pitch_deg", "right_yaw_deg", "right_pitch_deg"):
            assert getattr(a.gaze, field) == pytest.approx(getattr(b.gaze, field), rel=1e-6, abs=1e-5)
    weights = np.stack([f.weights for f in from_jsonl if f.tracked])
    assert weights.std(axis=0).max() > 0.01  # the talker's face moves: not a constant take


def test_grid_preview(grid_run) -> None:
    _, d = grid_run
    with av.open(str(d / "p.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    frames = video_frames(d / "p.mp4")
    assert len(frames) == 75
    assert frames[0].shape[1] > 360  # the input's width plus the bar panel
    assert frames[0].shape[0] >= 288


def test_stdout_is_json_lines_only(grid_clip: Path, tmp_path: Path) -> None:
    proc = ok(facewire("track", grid_clip, "--out", "-", cwd=tmp_path))
    lines = proc.stdout.splitlines()
    assert len(lines) == 75
    frames = [FaceFrame.from_json(line) for line in lines]  # every line, nothing else
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert [f.t_ns for f in frames] == [i * 40_000_000 for i in range(75)]
    assert sum(f.tracked for f in frames) >= 74
    assert "frame" in proc.stderr and "tracked a face in" in proc.stderr  # progress and summary: stderr
    assert list(tmp_path.iterdir()) == []


def test_stdout_reader_going_away_is_quiet(grid_clip: Path, tmp_path: Path) -> None:
    """``facewire track … --out - | head -n 1``: a closed pipe ends the run quietly."""
    proc = subprocess.Popen(
        [*FACEWIRE, "track", str(grid_clip), "--out", "-", "--quiet"],
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert FaceFrame.from_json(first).t_ns == 0
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert error_lines(stderr) == [], stderr
    assert proc.returncode == 0


def test_folder_of_images(media: dict[str, Path], tmp_path: Path) -> None:
    ok(facewire("track", media["folder"], "--fps", "10", "--out", "take.jsonl", cwd=tmp_path))
    frames = list(read_take(tmp_path / "take.jsonl"))
    assert [f.t_ns for f in frames] == [0, 100_000_000, 200_000_000]
    assert all(f.tracked for f in frames)


def test_two_faces(media: dict[str, Path], tmp_path: Path) -> None:
    ok(facewire("track", media["two-faces"], "--max-faces", "2", "--out", "take.jsonl", cwd=tmp_path))
    frames = list(read_take(tmp_path / "take.jsonl"))
    assert len(frames) == 2 and all(f.tracked for f in frames)
    assert sorted(f.face for f in frames) == [0, 1]
    centres = sorted(float(f.landmarks[:, 0].mean()) for f in frames)
    width = cv2.imread(str(media["two-faces"])).shape[1]
    assert centres[0] < width / 2 < centres[1]  # one face in each half


# -- 4. demo ------------------------------------------------------------------------------------


def test_demo(tmp_path: Path) -> None:
    out_dir = tmp_path / "D"
    proc = ok(facewire("demo", "--out-dir", out_dir, "--frames", "40", cwd=tmp_path))
    names = ["sample.mp4", "take.csv", "take.jsonl", "preview.mp4", "avatar.mp4", "speech.wav", "speech.csv",
             "talking.mp4", "trust"]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(names)
    for name in ("sample.mp4", "take.csv", "take.jsonl", "preview.mp4", "avatar.mp4", "talking.mp4"):
        assert str(out_dir / name) in proc.stdout
    assert tracked_column(out_dir / "take.csv") == [1] * 40
    assert len(list(read_take(out_dir / "take.jsonl"))) == 40
    for name in ("sample.mp4", "preview.mp4", "avatar.mp4"):
        assert len(video_frames(out_dir / name)) == 40, name
    speech = list(read_take(out_dir / "speech.csv"))
    jaw = np.array([f.weight("jawOpen") for f in speech])
    assert jaw.max() > 0.1 and jaw[:3].max() < 0.05  # it talks, from a closed mouth
    with av.open(str(out_dir / "talking.mp4")) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        seconds = float(c.streams.video[0].duration * c.streams.video[0].time_base)
    assert abs(seconds - len(speech) / 60) < 0.1
    # every rendered output is signed and audited, checked by the verifier's own commands
    assert "talking.mp4: C2PA manifest Trusted" in proc.stdout
    for video in ("avatar.mp4", "talking.mp4"):
        verdict = facewire("verify", out_dir / video, "--home", out_dir / "trust", cwd=tmp_path)
        assert verdict.returncode == 0 and "Trusted" in verdict.stdout, verdict.stdout + verdict.stderr
    assert facewire("audit", "verify", "--home", out_dir / "trust", cwd=tmp_path).returncode == 0


def test_demo_without_rendering(tmp_path: Path) -> None:
    out_dir = tmp_path / "D"
    ok(facewire("demo", "--out-dir", out_dir, "--frames", "20", "--no-render", cwd=tmp_path))
    assert sorted(p.name for p in out_dir.iterdir()) == ["preview.mp4", "sample.mp4", "take.csv", "take.jsonl"]


# -- 5. models ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official_cache(shared_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory):
    """A private model cache holding the official bundle, fetched from the shared copy by file:// URL."""
    bundle = shared_file(OFFICIAL_TASK)
    cache = tmp_path_factory.mktemp("cli-cache")
    env = cli_env(FACEWIRE_CACHE_DIR=str(cache))
    proc = ok(facewire("models", "fetch", "--official", "--url", bundle.as_uri(), cwd=cache, env=env))
    cached = cache / "official" / "face_landmarker.task"
    assert proc.stdout.strip() == f"official bundle: {cached}"
    assert cached.read_bytes() == bundle.read_bytes()
    return cache, env


def test_track_with_the_official_model(official_cache, media: dict[str, Path], tmp_path: Path) -> None:
    _, env = official_cache
    takes = {}
    for solver in ("auto", "mediapipe", "facewire"):
        take = tmp_path / f"{solver}.jsonl"
        ok(facewire("track", media["astronaut"], "--model", "official", "--solver", solver, "--out", take,
                    cwd=tmp_path, env=env))  # fmt: skip
        (frame,) = read_take(take)
        assert frame.tracked and frame.landmarks.shape == (478, 3)
        takes[solver] = frame.weights
    # with the official bundle, 'auto' is MediaPipe's own blendshape model, not facewire's solver
    np.testing.assert_array_equal(takes["auto"], takes["mediapipe"])
    assert np.abs(takes["auto"] - takes["facewire"]).max() > 0.01


def test_mediapipe_solver_needs_the_bundle(media: dict[str, Path], tmp_path: Path) -> None:
    proc = facewire("track", media["astronaut"], "--solver", "mediapipe", "--out", "take.csv", cwd=tmp_path)
    assert_one_line_error(proc, "official")
    assert list(tmp_path.iterdir()) == []


def test_models_list(official_cache, grid_run, tmp_path: Path) -> None:
    cache, env = official_cache
    proc = ok(facewire("models", "list", cwd=tmp_path, env=env))
    assert proc.stdout.splitlines()[0] == f"cache: {cache}"
    assert "package models: not cached" in proc.stdout
    proc = ok(facewire("models", "list", cwd=tmp_path))  # the default cache: fetched by the runs above
    assert "package models (mediapipe==" in proc.stdout and "cached, verified" in proc.stdout
    for role in ("detector", "landmarks", "iris"):
        assert role in proc.stdout


def test_models_fetch_non_zip_url(official_cache, tmp_path: Path) -> None:
    cache, env = official_cache
    cached = cache / "official" / "face_landmarker.task"
    before = cached.read_bytes()
    junk = tmp_path / "junk.task"
    junk.write_text("<html>not found</html>\n")
    proc = facewire("models", "fetch", "--official", "--url", junk.as_uri(), cwd=tmp_path, env=env)
    assert_one_line_error(proc, "not a zip", junk.as_uri())
    assert proc.returncode == 2 and proc.stdout == ""
    assert cached.read_bytes() == before  # a failed fetch leaves the cached bundle alone
    assert leftovers(cached.parent) == []
    proc = facewire("models", "fetch", "--official", "--url", (tmp_path / "nope.task").as_uri(), cwd=tmp_path, env=env)
    assert_one_line_error(proc, "download of the official face model failed")


# -- 6. calibration -----------------------------------------------------------------------------


def test_calibration_saved_and_applied(grid_clip: Path, tmp_path: Path) -> None:
    cal = tmp_path / "cal.json"
    proc = ok(facewire("track", grid_clip, "--calibrate", "--calibration", cal, "--out", "first.csv", cwd=tmp_path))
    assert f"calibration saved to {cal}" in proc.stderr
    saved = json.loads(cal.read_text())
    assert sorted(saved["offset"]) == sorted(arkit.NAMES) and len(saved["offset"]) == 52
    offsets = np.array([saved["offset"][n] for n in arkit.NAMES])
    assert offsets.max() > 0.01 and offsets.min() >= 0.0  # a neutral face is not all zeros
    assert all(saved["offset"][n] == 0.0 for n in arkit.NAMES if n.startswith("eyeLook"))

    ok(facewire("track", grid_clip, "--calibration", cal, "--no-filter", "--out", "calibrated.jsonl", cwd=tmp_path))
    ok(facewire("track", grid_clip, "--no-auto-calibrate", "--no-filter", "--out", "raw.jsonl", cwd=tmp_path))
    assert json.loads(cal.read_text()) == saved  # applied, not overwritten
    calibrated = [f for f in read_take(tmp_path / "calibrated.jsonl") if f.tracked]
    raw = [f for f in read_take(tmp_path / "raw.jsonl") if f.tracked]
    assert len(calibrated) == len(raw) >= 74
    w_cal = np.stack([f.weights for f in calibrated])
    w_raw = np.stack([f.weights for f in raw])
    assert np.abs(w_cal - w_raw).max() > 0.01
    profile = CalibrationProfile.load(cal)
    np.testing.assert_allclose(w_cal, np.stack([profile.apply(w) for w in w_raw]), atol=1e-6)
