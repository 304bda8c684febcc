import io
import json
import sys

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError, OutputError
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.pipeline import Sink, run
from facewire.takes import open_writer, read_take
from facewire.takes.jsonl import JsonlWriter, read_jsonl


def random_frames(n: int, seed: int = 0) -> list[FaceFrame]:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        if i % 7 == 3:
            frames.append(FaceFrame.untracked(t_ns=i * 33_333_333, seq=i, source="cam0"))
            continue
        frames.append(
            FaceFrame(
                t_ns=i * 33_333_333 + int(rng.integers(0, 1000)),
                seq=i,
                source="cam0 «ünïcode»",
                weights=rng.random(arkit.COUNT, dtype=np.float32),
                head=HeadPose(*rng.normal(0, 20, 6)),
                gaze=Gaze(*rng.normal(0, 10, 4)),
                landmarks=rng.normal(0, 1, (478, 3)) if i % 2 else None,
                confidence=float(rng.random()),
                face=i % 2,
                capture_ns=int(rng.integers(0, 2**62)),
            )
        )
    return frames


def assert_same(a: FaceFrame, b: FaceFrame) -> None:
    assert a.t_ns == b.t_ns and a.seq == b.seq and a.source == b.source and a.face == b.face
    assert a.tracked == b.tracked and a.confidence == b.confidence and a.capture_ns == b.capture_ns
    assert a.weights.tobytes() == b.weights.tobytes()  # bit for bit
    assert a.head == b.head and a.gaze == b.gaze
    if a.landmarks is None:
        assert b.landmarks is None
    else:
        assert a.landmarks.tobytes() == b.landmarks.tobytes()


def test_round_trip_is_lossless(tmp_path):
    frames = random_frames(50)
    path = tmp_path / "take.jsonl"
    with JsonlWriter(path) as sink:
        assert isinstance(sink, Sink)
        for f in frames:
            sink.send(f)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(frames)
    assert json.loads(lines[0])["t_ns"] == frames[0].t_ns
    back = list(read_jsonl(path))
    assert len(back) == len(frames)
    for a, b in zip(frames, back):
        assert_same(a, b)


def test_dispatch_and_pipeline_run(tmp_path):
    frames = random_frames(10, seed=1)
    path = tmp_path / "take.JSONL"
    stats = run(frames, sinks=[open_writer(path)])
    assert stats.frames == 10
    for a, b in zip(frames, read_take(path)):
        assert_same(a, b)


def test_file_appears_only_on_close_and_not_after_failure(tmp_path):
    path = tmp_path / "take.jsonl"
    path.write_text("previous take\n")
    with pytest.raises(RuntimeError), JsonlWriter(path) as sink:
        sink.send(random_frames(1)[0])
        raise RuntimeError("source died")
    assert path.read_text() == "previous take\n"
    assert [p.name for p in tmp_path.iterdir()] == ["take.jsonl"]


def test_send_outside_with_is_output_error(tmp_path):
    with pytest.raises(OutputError, match="not open"):
        JsonlWriter(tmp_path / "x.jsonl").send(FaceFrame(t_ns=0))


def test_stdout_flushes_every_line(capsys):
    frames = random_frames(3)
    with JsonlWriter("-") as sink:
        sink.send(frames[0])
        assert capsys.readouterr().out == frames[0].to_json() + "\n"
        sink.send(frames[1])
        assert capsys.readouterr().out == frames[1].to_json() + "\n"


def test_read_stdin(monkeypatch):
    frames = random_frames(3)
    data = "".join(f.to_json() + "\n" for f in frames).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    for a, b in zip(frames, read_take("-")):
        assert_same(a, b)


def test_blank_lines_are_skipped(tmp_path):
    frames = random_frames(2)
    path = tmp_path / "take.jsonl"
    path.write_text("\n" + frames[0].to_json() + "\n\n   \n" + frames[1].to_json() + "\n")
    assert [f.seq for f in read_jsonl(path)] == [0, 1]


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{not json", "not valid JSON"),
        ('{"t_ns": 5}', "missing field 'weights'"),
        ('{"t_ns": 5, "weights": [0.5]}', "weights: expected shape 52"),
        ('{"t_ns": 5, "seq": "x", "weights": ' + json.dumps([0.0] * 52) + "}", ""),
        ('{"t_ns": 5, "weights": ' + json.dumps([0.0] * 52) + ', "head": {"bogus": 1}}', "bogus"),
        ("[1, 2]", "expected an object"),
        (b"\xff\xfe garbage", ""),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    path = tmp_path / "take.jsonl"
    good = random_frames(2)
    payload = (good[0].to_json() + "\n" + good[1].to_json() + "\n").encode()
    payload += bad if isinstance(bad, bytes) else bad.encode()
    path.write_bytes(payload + b"\n")
    frames = read_jsonl(path)
    assert next(frames).seq == 0 and next(frames).seq == 1
    with pytest.raises(InputError, match=f"take.jsonl:3: .*{message}"):
        next(frames)


def test_missing_file_is_input_error_at_once(tmp_path):
    with pytest.raises(InputError, match="nope.jsonl"):
        read_jsonl(tmp_path / "nope.jsonl")
