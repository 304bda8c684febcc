"""The tracking loop of the CLI: a bad frame is skipped, Ctrl-C ends a live take and keeps it."""

import contextlib

import pytest

from facewire.cli import _run_tracking
from facewire.samples import astronaut_clip
from facewire.takes import read_take
from facewire.vision.video import VideoTracker


class LiveClip(contextlib.AbstractContextManager):
    """A live source (like a camera) made of real frames; optionally stops with Ctrl-C."""

    live = True
    fps = 30.0
    frame_count = None
    name = "live-test"

    def __init__(self, frames, interrupt_at=None):
        self.frames, self.interrupt_at = frames, interrupt_at

    def __exit__(self, *exc):
        return None

    def __iter__(self):
        for i, image in enumerate(self.frames):
            if i == self.interrupt_at:
                raise KeyboardInterrupt
            yield image


class FailsOnce(VideoTracker):
    """The real tracker, except that one frame's processing blows up."""

    def process(self, image, source="video"):
        if image.index == 3:
            raise RuntimeError("simulated failure")
        return super().process(image, source)


@pytest.fixture(scope="module")
def frames():
    return list(astronaut_clip(frames=12))


def test_bad_frame_is_skipped_and_stream_goes_on(tmp_path, frames, capsys):
    out = tmp_path / "take.jsonl"
    code = _run_tracking(LiveClip(frames), FailsOnce(), [str(out)], None)
    taken = list(read_take(out))
    assert code == 0 and len(taken) == 12
    assert not taken[3].tracked and all(f.tracked for i, f in enumerate(taken) if i != 3)
    assert "frame 3 skipped" in capsys.readouterr().err


def test_ctrl_c_on_live_source_keeps_the_take(tmp_path, frames, capsys):
    out = tmp_path / "take.csv"
    code = _run_tracking(LiveClip(frames, interrupt_at=8), VideoTracker(), [str(out)], None)
    assert code == 0 and len(list(read_take(out))) == 8
    assert "keeping what was recorded" in capsys.readouterr().err
