"""Video and PNG output: real H.264/AAC files written by PyAV and decoded back, sync within a frame,
take resampling, the seal seam, and atomic writes (a failed render leaves nothing behind)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.render.probe import probe_head
from facewire.render.video import (
    AUDIO_RATE,
    frame_at,
    load_audio,
    render_take,
    sample_take,
    write_png,
    write_video,
)

FPS = 25.0


def _pictures(n: int, size=(64, 48)) -> list[np.ndarray]:
    """Frames whose brightness encodes their index (for order checks after decoding; n ≤ 30)."""
    return [np.full((size[1], size[0], 3), 10 + (8 * i) % 240, np.uint8) for i in range(n)]


def _decode(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"width": v.codec_context.width, "height": v.codec_context.height,
                "rate": float(v.average_rate), "audio": bool(c.streams.audio)}
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    info["frames"] = frames
    if info["audio"]:
        with av.open(str(path)) as c:
            a = c.streams.audio[0]
            info["audio_s"] = float(a.duration * a.time_base)
            info["audio_rate"] = a.rate
            samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(audio=0)])
            info["audio_samples"] = samples
    return info


def _tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * AUDIO_RATE)) / AUDIO_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None, :]


@pytest.mark.parametrize("audio_s", [0.7, 2.0])  # shorter (padded) and longer (cut) than the pictures
def test_video_with_audio_is_in_sync(tmp_path, audio_s):
    n = 30  # 1.2 s at 25 fps
    out = tmp_path / "clip.mp4"
    assert write_video(_pictures(n), out, FPS, audio=_tone(audio_s), progress=False) == n
    info = _decode(out)
    assert len(info["frames"]) == n and (info["width"], info["height"]) == (64, 48) and info["rate"] == FPS
    assert info["audio"] and info["audio_rate"] == AUDIO_RATE
    assert abs(info["audio_s"] - n / FPS) <= 1 / FPS
    # the pictures come out in order (brightness encodes the index)
    means = [f.mean() for f in info["frames"]]
    assert np.all(np.diff(means) > 0)
    # the tone ends where the sound ended (padded with silence), or plays to the end (cut)
    s = np.abs(info["audio_samples"])
    loud = np.flatnonzero(s > 0.05)
    last_loud_s = loud[-1] / AUDIO_RATE
    assert abs(last_loud_s - min(audio_s, n / FPS)) < 1 / FPS + 0.03  # AAC priming shifts by ~21 ms


def test_audio_file_is_decoded_and_resampled(tmp_path):
    wav = tmp_path / "tone.wav"
    rate = 16_000
    with av.open(str(wav), "w") as c:
        s = c.add_stream("pcm_s16le", rate=rate, layout="mono")
        t = np.arange(rate) / rate
        pcm = (12000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    sound = load_audio(wav)
    assert sound.shape[0] == 1 and abs(sound.shape[1] - AUDIO_RATE) <= 64
    assert 0.3 < np.abs(sound).max() < 0.4  # 12000 / 32768
    with pytest.raises(InputError, match="no such file"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(InputError, match="junk.wav"):
        load_audio(tmp_path / "junk.wav")


def test_failed_render_leaves_no_file(tmp_path):
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"old")

    def frames():
        yield from _pictures(3)
        raise RuntimeError("renderer died")

    with pytest.raises(RuntimeError):
        write_video(frames(), out, FPS, progress=False)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_bad_pictures_and_names_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="uint8"):
        write_video([np.zeros((4, 4, 3), np.float32)], tmp_path / "a.mp4", FPS, progress=False)
    with pytest.raises(InputError, match="even"):
        write_video([np.zeros((5, 4, 3), np.uint8)], tmp_path / "a.mp4", FPS, progress=False)
    with pytest.raises(InputError, match="like frame 0"):
        write_video([np.zeros((4, 4, 3), np.uint8), np.zeros((6, 4, 3), np.uint8)], tmp_path / "a.mp4", FPS,
                    progress=False)
    with pytest.raises(InputError, match=".mp4"):
        write_video(_pictures(2), tmp_path / "a.avi", FPS, progress=False)
    with pytest.raises(InputError, match="fps"):
        write_video(_pictures(2), tmp_path / "a.mp4", 0.0, progress=False)
    assert list(tmp_path.iterdir()) == []


class _Stamp:
    """A seal that paints a white corner on every frame and records what it was given."""

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.finished: list[tuple[Path, dict]] = []

    def mark_frame(self, rgb: np.ndarray, index: int) -> np.ndarray:
        self.indices.append(index)
        out = rgb.copy()
        out[:8, :8] = 255
        return out

    def finish(self, path: Path, info: dict) -> Path:
        self.finished.append((Path(path), dict(info)))
        assert Path(path).stat().st_size > 0  # the whole file is there to sign
        return path


def test_seal_marks_every_frame_and_finishes_the_file(tmp_path):
    seal = _Stamp()
    pictures = _pictures(5)
    write_video(pictures, tmp_path / "clip.mp4", FPS, seal=seal, info={"avatar": "probe"}, progress=False)
    assert seal.indices == [0, 1, 2, 3, 4]
    assert all(p[0, 0, 0] == 10 + 8 * i for i, p in enumerate(pictures))  # the seal did not touch the caller's pictures
    (tmp_path_used, info), = seal.finished
    assert tmp_path_used.parent == tmp_path and tmp_path_used.name != "clip.mp4"
    assert info["avatar"] == "probe" and info["frames"] == 5
    decoded = _decode(tmp_path / "clip.mp4")["frames"]
    assert all(f[:6, :6].min() > 230 for f in decoded)  # the mark is in the video


def test_png_keeps_alpha(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[5:15, 10:20] = (200, 100, 50, 255)
    write_png(rgba, tmp_path / "face.png")
    back = cv2.imread(str(tmp_path / "face.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA), rgba)


def _take(times_s, jaw, tracked=None, yaw=None) -> list[FaceFrame]:
    out = []
    for i, (t, j) in enumerate(zip(times_s, jaw)):
        w = np.zeros(arkit.COUNT, np.float32)
        w[arkit.INDEX["jawOpen"]] = j
        ok = True if tracked is None else tracked[i]
        if not ok:
            out.append(FaceFrame.untracked(round(t * 1e9) + 5_000_000_000))
            continue
        out.append(FaceFrame(t_ns=round(t * 1e9) + 5_000_000_000, weights=w,
                             head=HeadPose(yaw_deg=0 if yaw is None else yaw[i]), gaze=Gaze(left_yaw_deg=j * 10)))
    return out


def test_sample_take_interpolates_at_the_video_rate():
    take = _take([0.0, 0.1, 0.2], [0.0, 1.0, 0.0], yaw=[0.0, 20.0, 10.0])  # 10 fps
    frames = sample_take(take, 20.0)
    assert len(frames) == 5
    assert [f.t_ns - take[0].t_ns for f in frames] == [0, 50_000_000, 100_000_000, 150_000_000, 200_000_000]
    np.testing.assert_allclose([f.weight("jawOpen") for f in frames], [0, 0.5, 1, 0.5, 0], atol=1e-6)
    np.testing.assert_allclose([f.head.yaw_deg for f in frames], [0, 10, 20, 15, 10], atol=1e-6)
    np.testing.assert_allclose(frames[1].gaze.left_yaw_deg, 5.0, atol=1e-6)


def test_untracked_frames_hold_the_face():
    take = _take([0.0, 0.1, 0.2], [0.8, 0.0, 0.8], tracked=[True, False, True])
    frames = sample_take(take, 10.0)
    assert [round(f.weight("jawOpen"), 6) for f in frames] == [0.8, 0.8, 0.8]
    assert frame_at(take, 0.1).weight("jawOpen") == pytest.approx(0.8)
    with pytest.raises(InputError, match="between 0 and 0.200"):
        frame_at(take, 0.5)
    with pytest.raises(InputError, match="empty take"):
        sample_take([], 30.0)


def test_render_take_makes_a_video_and_a_png(tmp_path):
    take = _take(np.arange(12) / 12, np.linspace(0, 1, 12))  # 12 frames over 0.917 s
    result = render_take(take, probe_head(), tmp_path / "clip.mp4", size=(96, 96), fps=24.0,
                         audio=None, progress=False)
    info = _decode(tmp_path / "clip.mp4")
    assert result.frames == len(info["frames"]) == 23 and (info["width"], info["height"]) == (96, 96)
    assert not info["audio"]
    # the mouth opens over the clip: late frames differ from the first
    assert np.abs(info["frames"][-1].astype(int) - info["frames"][0].astype(int)).mean() > 0.3
    png = render_take(take, probe_head(), tmp_path / "face.png", size=(64, 80), at_s=0.5, background=None)
    picture = cv2.imread(str(png.path), cv2.IMREAD_UNCHANGED)
    assert picture.shape == (80, 64, 4) and picture[0, 0, 3] == 0 and picture[40, 32, 3] == 255


@pytest.mark.parametrize("out, size, fps, needle", [
    ("clip.avi", (64, 64), 30.0, "expected an output ending .mp4"),
    ("clip.mp4", (65, 64), 30.0, "even width and height"),
    ("clip.mp4", (64, 64), 0.5, "between 1 and 240"),
])
def test_check_output_refuses_before_any_work(tmp_path, out, size, fps, needle):
    from facewire.render.video import check_output

    with pytest.raises(InputError, match=needle):
        check_output(tmp_path / out, size, fps)
    assert check_output(tmp_path / "face.png", (65, 64), 30.0) == ".png"  # a PNG may have odd sides
