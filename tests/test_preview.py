"""Tests for `facewire.preview`: the drawn picture, and the all-or-nothing H.264 preview writer."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from facewire import arkit
from facewire.errors import OutputError
from facewire.frame import FaceFrame
from facewire.preview import PreviewWriter, draw

PANEL_W = 300  # the bar panel's width, px
PANEL_MIN_H = 11 * 27 + 40  # 52 bars in two columns of 26 rows, plus the status line


def picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def tracked_frame(h: int, w: int, t_ns: int = 0) -> FaceFrame:
    """A tracked face with 478 landmarks spread over the picture and a few non-zero weights."""
    rng = np.random.default_rng(1)
    landmarks = np.column_stack([rng.uniform(0, w - 1, 478), rng.uniform(0, h - 1, 478), np.zeros(478)])
    weights = np.zeros(arkit.COUNT, np.float32)
    weights[arkit.index_of("jawOpen")] = 0.8
    weights[arkit.index_of("eyeBlinkLeft")] = 0.3
    return FaceFrame(t_ns=t_ns, weights=weights, landmarks=landmarks, tracked=True, confidence=0.9)


def part_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def decode(path: Path) -> tuple[str, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return codec, frames


# -- draw -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w"), [(480, 640), (120, 160), (1080, 1920)])
def test_draw_adds_the_panel(h: int, w: int) -> None:
    rgb = picture(h, w)
    out = draw(rgb, [tracked_frame(h, w)])
    assert out.dtype == np.uint8
    assert out.shape == (max(h, PANEL_MIN_H), w + PANEL_W, 3)
    assert np.array_equal(rgb, picture(h, w)), "draw must not modify its input"


def test_draw_marks_landmarks_and_bars() -> None:
    h, w = 480, 640
    rgb = np.zeros((h, w, 3), np.uint8)
    plain = draw(rgb, [FaceFrame.untracked(0)])
    marked = draw(rgb, [tracked_frame(h, w)])
    assert not plain[:, :w].any(), "no face: the picture itself is unchanged"
    assert marked[:, :w].any(), "landmarks are drawn on the picture"
    assert not np.array_equal(plain[:, w:], marked[:, w:]), "the bars (and the status line) follow the weights"


def test_draw_accepts_a_read_only_picture() -> None:
    rgb = picture(100, 100)
    rgb.flags.writeable = False
    assert draw(rgb, [tracked_frame(100, 100)]).shape == (PANEL_MIN_H, 100 + PANEL_W, 3)


# -- PreviewWriter --------------------------------------------------------------------------------


def test_writer_makes_a_decodable_h264_mp4(tmp_path: Path) -> None:
    h, w, n = 240, 320, 12
    out = tmp_path / "preview.mp4"
    with PreviewWriter(out, fps=25.0) as writer:
        for i in range(n):
            frames = [tracked_frame(h, w, i * 40_000_000)] if i % 2 else [FaceFrame.untracked(i * 40_000_000)]
            writer.send(picture(h, w, i), frames)
        assert not out.exists(), "the file appears only when the writer closes"
    codec, decoded = decode(out)
    assert codec == "h264"
    assert len(decoded) == n
    want_h = max(h, PANEL_MIN_H)
    assert decoded[0].shape == (want_h - want_h % 2, w + PANEL_W, 3)
    with av.open(str(out)) as container:
        assert float(container.streams.video[0].average_rate) == pytest.approx(25.0)
    assert part_files(tmp_path) == []


def test_writer_odd_sizes_and_a_size_change(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    with PreviewWriter(out) as writer:
        writer.send(picture(401, 333), [])  # odd width and height: cropped to even for yuv420p
        writer.send(picture(300, 200), [])  # a later frame of another size is scaled to the first
    _, decoded = decode(out)
    assert [f.shape for f in decoded] == [(400, 632, 3)] * 2


def test_exception_inside_the_block_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "preview.mp4"
    with pytest.raises(RuntimeError, match="boom"), PreviewWriter(out) as writer:
        for i in range(5):
            writer.send(picture(120, 160, i), [])
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_exception_keeps_an_earlier_preview(tmp_path: Path) -> None:
    out = tmp_path / "preview.mp4"
    with PreviewWriter(out) as writer:
        writer.send(picture(120, 160), [])
    before = out.read_bytes()
    with pytest.raises(KeyboardInterrupt), PreviewWriter(out) as writer:
        writer.send(picture(240, 320), [])
        raise KeyboardInterrupt
    assert out.read_bytes() == before
    assert part_files(tmp_path) == []


def test_no_frames_no_file(tmp_path: Path) -> None:
    out = tmp_path / "empty.mp4"
    with PreviewWriter(out):
        pass
    assert list(tmp_path.iterdir()) == []


class _FailingClose:
    """Wraps an open container; closing it works but then reports an error (as a full disk would)."""

    def __init__(self, container: object) -> None:
        self._container = container

    def __getattr__(self, name: str) -> object:
        return getattr(self._container, name)

    def close(self) -> None:
        self._container.close()
        raise OSError(28, "No space left on device")


def test_failure_while_finishing_publishes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "preview.mp4"
    with pytest.raises(OutputError, match="No space left"), PreviewWriter(out) as writer:
        writer.send(picture(120, 160), [])
        writer._container = _FailingClose(writer._container)  # type: ignore[assignment]
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destination_is_an_output_error(tmp_path: Path) -> None:
    with (
        pytest.raises(OutputError, match="cannot write the preview video"),
        PreviewWriter(tmp_path / "no" / "such" / "dir" / "p.mp4"),
    ):
        pass
