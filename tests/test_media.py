"""Tests for `facewire.media`: every fixture (videos, stills, folders) is written at test time."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data as skdata

from facewire.errors import DeviceError, FacewireError, InputError
from facewire.media import (
    DEFAULT_FPS,
    MAX_SIDE,
    Image,
    MediaSource,
    MediaWarning,
    open_input,
    probe_kind,
    read_image,
)

W, H, N, RATE = 320, 240, 64, 25


# -- fixture writers --------------------------------------------------------------------------


def moving_frames(n: int = N) -> list[np.ndarray]:
    """``n`` RGB frames of a 320×240 window sliding across the astronaut picture."""
    astro = skdata.astronaut()  # 512×512×3 uint8
    return [np.ascontiguousarray(astro[100 + i : 100 + i + H, 40 + 2 * i : 40 + 2 * i + W]) for i in range(n)]


def write_video(
    path: Path,
    frames: list[np.ndarray],
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    rotation: int = 0,
) -> Path:
    with av.open(str(path), "w", options=options or {}) as out:
        stream = out.add_stream(codec, rate=RATE)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        for arr in frames:
            fmt = "gray" if arr.ndim == 2 else "rgb24"
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format=fmt)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_png(path: Path, arr: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), arr)
    return path


def jpeg_with_orientation(bgr: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose EXIF (APP1) segment carries the given orientation tag."""
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    raw = buf.tobytes()
    return raw[:2] + app1 + raw[2:]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The video fixtures, written once for the module."""
    d = tmp_path_factory.mktemp("media")
    frames = moving_frames()
    out = {
        "mp4": write_video(d / "moving.mp4", frames),
        "faststart": write_video(d / "faststart.mp4", frames, options={"movflags": "+faststart"}),
        "gray": write_video(d / "gray.mkv", [f[:, :, 1].copy() for f in frames[:16]], codec="ffv1", pix_fmt="gray"),
        "rotated": write_video(d / "rotated.mp4", frames[:4], rotation=90),
    }
    with av.open(str(d / "audio.wav"), "w") as wav:
        stream = wav.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            wav.mux(packet)
    out["audio"] = d / "audio.wav"
    return out


def truncated(src: Path, dst: Path, size: int | None = None) -> Path:
    raw = src.read_bytes()
    dst.write_bytes(raw[: len(raw) // 2 if size is None else size])
    return dst


def expect_input_error(spec: str | Path, *needles: str) -> InputError:
    with pytest.raises(InputError) as info:
        open_input(spec)
    message = str(info.value)
    assert message.startswith(f"{spec}: "), message
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return info.value


# -- video ------------------------------------------------------------------------------------


def test_video_frames_timestamps_and_attributes(media: dict[str, Path]) -> None:
    frames = moving_frames()
    with open_input(media["mp4"]) as src:
        assert isinstance(src, MediaSource)
        assert (src.kind, src.fps, src.frame_count, src.size, src.live) == ("video", 25.0, N, (W, H), False)
        assert src.name == str(media["mp4"])
        images = list(src)
    assert len(images) == N
    assert [im.index for im in images] == list(range(N))
    assert [im.t_ns for im in images] == [i * 40_000_000 for i in range(N)]
    for im in images:
        assert im.rgb.shape == (H, W, 3) and im.rgb.dtype == np.uint8
        assert im.rgb.flags.c_contiguous and not im.rgb.flags.writeable
        assert im.capture_ns == 0
    # Lossy, but the picture (and its motion) must survive: compare to the source frames.
    for i in (0, N // 2, N - 1):
        err = np.abs(images[i].rgb.astype(int) - frames[i].astype(int)).mean()
        assert err < 12, (i, err)
    assert probe_kind(media["mp4"]) == "video"


def test_video_can_be_read_twice_and_not_after_close(media: dict[str, Path]) -> None:
    src = open_input(media["mp4"])
    first = [im.t_ns for im in src]
    second = [im.t_ns for im in src]
    assert first == second and len(first) == N
    src.close()
    with pytest.raises(InputError, match="closed"):
        iter(src)


def test_grayscale_video_becomes_rgb(media: dict[str, Path]) -> None:
    with av.open(str(media["gray"])) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "gray"  # really one channel
    expected = moving_frames(16)
    with open_input(media["gray"]) as src:
        images = list(src)
    assert len(images) == 16
    for im, want in zip(images, expected):
        assert im.rgb.shape == (H, W, 3)
        assert np.array_equal(im.rgb[..., 0], im.rgb[..., 1]) and np.array_equal(im.rgb[..., 1], im.rgb[..., 2])
        assert np.array_equal(im.rgb[..., 0], want[..., 1])  # ffv1 is lossless


def test_display_rotation_is_applied(media: dict[str, Path]) -> None:
    with open_input(media["rotated"]) as src:
        assert src.size == (H, W)
        images = list(src)
    want = np.rot90(moving_frames(1)[0], 1)  # 90° counter-clockwise, as the display matrix says
    assert images[0].rgb.shape == (W, H, 3)
    assert np.abs(images[0].rgb.astype(int) - want.astype(int)).mean() < 12


def test_truncated_video_yields_what_decodes_and_warns(media: dict[str, Path], tmp_path: Path) -> None:
    cut = truncated(media["faststart"], tmp_path / "cut.mp4")
    with open_input(cut) as src:
        assert src.frame_count == N  # as declared by the container
        with pytest.warns(MediaWarning, match=r"ended early after \d+ frames"):
            images = list(src)
    assert 0 < len(images) < N
    assert [im.index for im in images] == list(range(len(images)))


def test_truncated_video_without_index_is_an_input_error(media: dict[str, Path], tmp_path: Path) -> None:
    # moov atom at the end: the first half has no index at all.
    cut = truncated(media["mp4"], tmp_path / "cut.mp4")
    err = expect_input_error(cut, "not a video or image PyAV/OpenCV can decode")
    assert isinstance(err.__cause__, av.FFmpegError)


def test_truncated_video_with_no_decodable_frame_is_an_input_error(media: dict[str, Path], tmp_path: Path) -> None:
    raw = media["faststart"].read_bytes()
    cut = truncated(media["faststart"], tmp_path / "cut.mp4", raw.index(b"mdat") + 64)
    expect_input_error(cut, "no frame of its h264 video stream decodes", "truncated")


def test_corrupt_packet_mid_stream_is_skipped(media: dict[str, Path], tmp_path: Path) -> None:
    # Garble one P-frame: plain ``container.decode`` stops there (and frame threading would lose the
    # frames in flight); the source skips the bad packet and delivers the rest.
    raw = bytearray(media["faststart"].read_bytes())
    with av.open(str(media["faststart"])) as c:
        packets = [(p.size, p.pos) for p in c.demux(video=0) if p.size]
    size, pos = packets[20]
    raw[pos + 4 : pos + size] = np.random.default_rng(0).integers(0, 256, size - 4, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(raw))
    with open_input(bad) as src, pytest.warns(MediaWarning, match=r"1 packet\(s\) failed to decode"):
        images = list(src)
    assert N - 3 <= len(images) < N
    stamps = [im.t_ns for im in images]
    assert stamps == sorted(set(stamps)) and stamps[-1] == (N - 1) * 40_000_000
    assert [im.index for im in images] == list(range(len(images)))


def test_video_complete_file_does_not_warn(media: dict[str, Path], recwarn: pytest.WarningsRecorder) -> None:
    with open_input(media["faststart"]) as src:
        assert len(list(src)) == N
    assert not [w for w in recwarn if issubclass(w.category, MediaWarning)]


def test_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    expect_input_error(empty, "empty file")


@pytest.mark.parametrize("filename", ["notes.mp4", "notes.png"])
def test_text_file_with_media_name(tmp_path: Path, filename: str) -> None:
    fake = tmp_path / filename
    fake.write_text("this is not a video\n" * 20)
    expect_input_error(fake, "not a video or image PyAV/OpenCV can decode")
    with pytest.raises(InputError, match="not a video or image"):
        probe_kind(fake)


def test_file_without_video_stream(media: dict[str, Path]) -> None:
    expect_input_error(media["audio"], "video stream", "audio")


def test_missing_file(tmp_path: Path) -> None:
    err = expect_input_error(tmp_path / "nope.mp4", "no such file")
    assert isinstance(err, FacewireError) and isinstance(err, ValueError)


def test_bad_fps_and_max_side(media: dict[str, Path]) -> None:
    for fps in (0, -1, float("nan"), "fast"):
        with pytest.raises(InputError, match="fps"):
            open_input(media["mp4"], fps=fps)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="max_side"):
        open_input(media["mp4"], max_side=0)


def test_real_grid_clip(shared_file: Callable[[str], Path]) -> None:
    clip = shared_file("data/video/grid/bbaf2n.mpg")
    with open_input(clip) as src:
        assert (src.kind, src.fps, src.size, src.frame_count) == ("video", 25.0, (360, 288), 75)
        images = list(src)
    assert len(images) == 75
    assert images[0].t_ns == 0 and images[-1].t_ns == 74 * 40_000_000
    assert all(b.t_ns > a.t_ns for a, b in itertools.pairwise(images))
    assert images[37].rgb.shape == (288, 360, 3) and images[37].rgb.std() > 10


# -- stills -----------------------------------------------------------------------------------


def test_one_pixel_png(tmp_path: Path) -> None:
    png = write_png(tmp_path / "dot.png", np.array([[[10, 20, 30]]], np.uint8))  # BGR
    assert probe_kind(png) == "image"
    with open_input(png) as src:
        assert (src.kind, src.frame_count, src.size, src.fps, src.live) == ("image", 1, (1, 1), None, False)
        (im,) = list(src)
    assert im.t_ns == 0 and im.index == 0
    assert im.rgb.tolist() == [[[30, 20, 10]]]


def test_sixteen_bit_png_scaled_down(tmp_path: Path) -> None:
    bgr16 = np.zeros((4, 5, 3), np.uint16)
    bgr16[..., 0], bgr16[..., 1], bgr16[..., 2] = 0x1234, 0xFFFF, 0x00FF  # B, G, R
    png = write_png(tmp_path / "deep.png", bgr16)
    assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    rgb = read_image(png)
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 5, 3)
    assert rgb[0, 0].tolist() == [0x00, 0xFF, 0x12]  # >> 8, and BGR → RGB


def test_rgba_png_composited_over_black(tmp_path: Path) -> None:
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., :3] = (40, 80, 200)  # B, G, R
    bgra[0, :, 3] = 255  # opaque row
    bgra[1, 0, 3] = 0  # transparent: black whatever the colour
    bgra[1, 1:, 3] = 128  # half
    rgb = read_image(write_png(tmp_path / "alpha.png", bgra))
    assert rgb.shape == (2, 3, 3)
    assert rgb[0, 0].tolist() == [200, 80, 40]
    assert rgb[1, 0].tolist() == [0, 0, 0]
    assert rgb[1, 1].tolist() == [100, 40, 20]


def test_grayscale_png_replicated(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    rgb = read_image(write_png(tmp_path / "gray.png", gray))
    assert rgb.shape == (3, 4, 3)
    for c in range(3):
        assert np.array_equal(rgb[..., c], gray)


def test_8k_jpeg_is_downscaled(tmp_path: Path) -> None:
    big = np.zeros((4320, 7680, 3), np.uint8)
    big[:, :3840] = (0, 0, 255)  # red left half (BGR)
    jpg = tmp_path / "8k.jpg"
    assert cv2.imwrite(str(jpg), big)
    with open_input(jpg) as src:
        assert src.size == (MAX_SIDE, 2304)
        (im,) = list(src)
    assert im.rgb.shape == (2304, MAX_SIDE, 3)
    assert im.rgb[1000, 100].tolist()[0] > 240 and im.rgb[1000, 4000].tolist()[0] < 15
    assert read_image(jpg, max_side=None).shape == (4320, 7680, 3)
    assert read_image(jpg, max_side=1920).shape == (1080, 1920, 3)


def test_jpeg_exif_orientation_applied(tmp_path: Path) -> None:
    bgr = np.zeros((20, 40, 3), np.uint8)
    bgr[:, :20] = (0, 0, 255)  # red on the left; orientation 6 = rotate 90° clockwise to display
    jpg = tmp_path / "portrait.jpg"
    jpg.write_bytes(jpeg_with_orientation(bgr, 6))
    rgb = read_image(jpg)
    assert rgb.shape == (40, 20, 3)
    assert rgb[5, 10, 0] > 200 and rgb[35, 10, 0] < 50  # the left half is now on top


def test_read_image_errors(tmp_path: Path, media: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="not an image OpenCV can decode"):
        read_image(media["mp4"])
    with pytest.raises(InputError, match="folder"):
        read_image(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")


# -- folders ----------------------------------------------------------------------------------


def test_folder_natural_order_and_timestamps(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10, 3):
        write_png(folder / f"frame_{i}.png", np.full((6, 8, 3), i, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    (folder / "._frame_1.png").write_bytes(b"resource fork junk")  # hidden: ignored
    assert probe_kind(folder) == "folder"
    with open_input(folder) as src:
        assert (src.kind, src.frame_count, src.fps, src.size) == ("folder", 4, DEFAULT_FPS, (8, 6))
        images = list(src)
    assert [int(im.rgb[0, 0, 0]) for im in images] == [1, 2, 3, 10]
    assert [im.t_ns for im in images] == [round(i * 1e9 / 30) for i in range(4)]
    with open_input(folder, fps=10) as src:
        assert [im.t_ns for im in src] == [0, 100_000_000, 200_000_000, 300_000_000]


def test_folder_with_an_undecodable_image(tmp_path: Path) -> None:
    write_png(tmp_path / "a1.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "a2.png").write_text("broken")
    with open_input(tmp_path) as src, pytest.raises(InputError) as info:
        list(src)
    assert str(info.value).startswith(f"{tmp_path}/a2.png: ")


def test_folder_without_images(tmp_path: Path) -> None:
    expect_input_error(tmp_path, "found none")
    (tmp_path / "readme.txt").write_text("hi")
    expect_input_error(tmp_path, "found none")


# -- camera and Image -------------------------------------------------------------------------


def test_missing_camera() -> None:
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    assert probe_kind("camera:7") == "camera"
    with pytest.raises(DeviceError) as info:
        open_input("camera:7")
    assert isinstance(info.value, OSError)
    message = str(info.value)
    assert message.startswith("camera:7: cannot open camera 7 (") and message.endswith(")") and "\n" not in message


def test_malformed_camera_spec() -> None:
    with pytest.raises(InputError, match="camera:N"):
        open_input("camera:front")


def test_image_value_checks() -> None:
    arr = np.zeros((2, 2, 3), np.uint8)
    im = Image(t_ns=5, rgb=arr)
    assert not im.rgb.flags.writeable and arr.flags.writeable  # the caller's array is left alone
    assert (im.width, im.height, im.index, im.capture_ns) == (2, 2, 0, 0)
    with pytest.raises(ValueError):
        im.rgb[0, 0, 0] = 1
    with pytest.raises(InputError, match="uint8"):
        Image(t_ns=0, rgb=np.zeros((2, 2, 3), np.float32))
    with pytest.raises(InputError, match="H×W×3"):
        Image(t_ns=0, rgb=np.zeros((2, 2), np.uint8))
    with pytest.raises(InputError, match="t_ns"):
        Image(t_ns=0.5, rgb=arr)  # type: ignore[arg-type]
    assert Image(t_ns=0, rgb=arr[:, ::-1]).rgb.flags.c_contiguous


class FakeCapture:
    """Stands in for cv2.VideoCapture: three frames (colour, grey, colour), then the camera is gone."""

    def __init__(self, index: int) -> None:
        self.index, self.released = index, False
        self.frames = [
            np.full((6, 8, 3), (10, 20, 30), np.uint8),
            np.full((6, 8), 77, np.uint8),
            np.full((6, 8, 3), (1, 2, 3), np.uint8),
        ]

    def isOpened(self) -> bool:  # OpenCV's name
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: 8.0, cv2.CAP_PROP_FRAME_HEIGHT: 6.0}.get(prop, 0.0)

    def set(self, prop: int, value: float) -> bool:
        return True

    def grab(self) -> bool:
        return bool(self.frames)

    def retrieve(self) -> tuple[bool, np.ndarray]:
        return True, self.frames.pop(0)

    def release(self) -> None:
        self.released = True


def test_camera_frames_with_a_fake_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    with open_input("camera:0") as src:
        assert (src.kind, src.live, src.fps, src.size, src.frame_count) == ("camera", True, 30.0, (8, 6), None)
        with pytest.warns(MediaWarning, match="stopped delivering frames"):
            images = list(src)
        cap = src._cap  # type: ignore[attr-defined]
    assert cap.released  # released on exit
    assert [im.rgb[0, 0].tolist() for im in images] == [[30, 20, 10], [77, 77, 77], [3, 2, 1]]  # BGR → RGB
    assert images[0].t_ns == 0 and all(im.capture_ns > 0 for im in images)
    assert [im.t_ns for im in images] == sorted(im.t_ns for im in images)
    assert [im.index for im in images] == [0, 1, 2]
