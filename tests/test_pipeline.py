"""The runner: stages in order, every sink gets every frame, sinks are closed even on error."""

import pytest

from facewire import FaceFrame
from facewire.pipeline import Chain, Sink, Stage, run


class AddJaw:
    def __init__(self, amount):
        self.amount = amount

    def process(self, frame):
        w = frame.weights.copy()
        w[17] = min(1.0, w[17] + self.amount)
        return frame.replace(weights=w)

    def reset(self):
        pass


class Collect:
    def __init__(self):
        self.frames, self.closed = [], False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True

    def send(self, frame):
        self.frames.append(frame)


def _source(n=5):
    return (FaceFrame(t_ns=i, seq=i) for i in range(n))


def test_stages_apply_in_order_and_never_mutate_inputs():
    inputs = list(_source())
    a, b = Collect(), Collect()
    stats = run(inputs, [AddJaw(0.25), AddJaw(0.5)], [a, b])
    assert stats.frames == 5 and stats.tracked == 5
    assert [f.weight("jawOpen") for f in a.frames] == [0.75] * 5
    assert a.frames == b.frames and a.closed and b.closed
    assert all(f.weight("jawOpen") == 0.0 for f in inputs)
    assert isinstance(AddJaw(0), Stage) and isinstance(a, Sink) and isinstance(Chain([]), Stage)


def test_sinks_close_when_a_stage_fails():
    class Boom:
        def process(self, frame):
            raise RuntimeError("boom")

        def reset(self):
            pass

    sink = Collect()
    with pytest.raises(RuntimeError):
        run(_source(), [Boom()], [sink])
    assert sink.closed and sink.frames == []
