import csv
import io
import sys

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError, OutputError
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.pipeline import run
from facewire.takes import FORMATS, open_writer, read_take
from facewire.takes.csv import HEADER, CsvWriter, format_time_ns, read_csv
from facewire.takes.jsonl import JsonlWriter

TAIL = ("headYaw", "headPitch", "headRoll", "headX", "headY", "headZ",
        "leftEyeYaw", "leftEyePitch", "rightEyeYaw", "rightEyePitch")


def random_frames(n: int, seed: int = 0) -> list[FaceFrame]:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        weights = rng.random(arkit.COUNT, dtype=np.float32)
        weights[:3] = (0.0, 1.0, np.float32(1e-38))  # edges and a subnormal-ish tiny value
        frames.append(
            FaceFrame(
                t_ns=i * 33_333_333 + int(rng.integers(0, 1000)),
                seq=i,
                weights=weights,
                head=HeadPose(*rng.normal(0, 20, 6)),
                gaze=Gaze(*rng.normal(0, 10, 4)),
                tracked=bool(i % 5),
                confidence=float(rng.random()),
            )
        )
    return frames


def assert_same(a: FaceFrame, b: FaceFrame) -> None:
    assert a.t_ns == b.t_ns
    assert a.tracked == b.tracked and a.confidence == b.confidence
    assert a.weights.tobytes() == b.weights.tobytes()
    assert a.head == b.head and a.gaze == b.gaze


def write(path, frames):
    with CsvWriter(path) as sink:
        for f in frames:
            sink.send(f)


def test_header_is_exact():
    assert HEADER == ("time_s", "tracked", "confidence", *arkit.NAMES, *TAIL)
    assert len(HEADER) == 3 + 52 + 10


def test_round_trip_is_lossless(tmp_path):
    frames = random_frames(40)
    path = tmp_path / "take.csv"
    write(path, frames)
    rows = list(csv.reader(path.open(newline="")))
    assert tuple(rows[0]) == HEADER
    assert len(rows) == 41
    assert rows[1][0] == format_time_ns(frames[0].t_ns) and rows[1][1] == "0"
    back = list(read_csv(path))
    assert [f.seq for f in back] == list(range(40))
    for a, b in zip(frames, back):
        assert_same(a, b)


def test_time_format_is_exact():
    assert format_time_ns(0) == "0.000000000"
    assert format_time_ns(1_500_000_001) == "1.500000001"
    assert format_time_ns(-1) == "-0.000000001"
    assert format_time_ns(123_456_789_012_345_678) == "123456789.012345678"


def test_huge_and_negative_times_round_trip(tmp_path):
    frames = [FaceFrame(t_ns=t) for t in (-5, 0, 1, 123_456_789_012_345_678)]
    path = tmp_path / "t.csv"
    write(path, frames)
    assert [f.t_ns for f in read_csv(path)] == [f.t_ns for f in frames]


def test_shuffled_columns_with_extras_read_the_same(tmp_path):
    frames = random_frames(10, seed=3)
    path = tmp_path / "take.csv"
    write(path, frames)
    rows = list(csv.reader(path.open(newline="")))
    rng = np.random.default_rng(7)
    order = rng.permutation(len(HEADER))
    shuffled = tmp_path / "shuffled.csv"
    with shuffled.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["note"] + [rows[0][i] for i in order] + ["Timecode"])
        for k, row in enumerate(rows[1:]):
            w.writerow([f"free text, {k}"] + [row[i] for i in order] + ["00:00:01:02"])
    for a, b in zip(read_csv(path), read_csv(shuffled)):
        assert_same(a, b)


def test_missing_columns_default(tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("jawOpen,time_s,headYaw\n0.5,1.25,10\n0.25,1.5,-3.5\n")
    frames = list(read_csv(path))
    assert [f.t_ns for f in frames] == [1_250_000_000, 1_500_000_000]
    assert frames[0].weight("jawOpen") == 0.5 and frames[0].weights.sum() == 0.5
    assert frames[1].head == HeadPose(yaw_deg=-3.5)
    assert frames[0].gaze == Gaze()
    assert frames[0].tracked and frames[0].confidence == 1.0


def test_untracked_without_confidence_column_has_zero_confidence(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("time_s,tracked\n0,0\n0.1,true\n")
    a, b = read_csv(path)
    assert (a.tracked, a.confidence) == (False, 0.0)
    assert (b.tracked, b.confidence) == (True, 1.0)


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefftime_s,jawOpen\r\n0.5,0.75\r\n".encode("utf-8"))
    (frame,) = read_csv(path)
    assert frame.t_ns == 500_000_000 and frame.weight("jawOpen") == 0.75


def test_atomic_and_failure_keeps_old(tmp_path):
    path = tmp_path / "take.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), CsvWriter(path) as sink:
        sink.send(random_frames(1)[0])
        raise RuntimeError("interrupted")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["take.csv"]


def test_empty_take_is_header_only(tmp_path):
    path = tmp_path / "empty.csv"
    with CsvWriter(path):
        pass
    assert path.read_text() == ",".join(HEADER) + "\n"
    assert list(read_csv(path)) == []


def test_stdout_flushes_per_row(capsys):
    frame = random_frames(1)[0]
    with CsvWriter("-") as sink:
        assert capsys.readouterr().out == ",".join(HEADER) + "\n"
        sink.send(frame)
        out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(format_time_ns(frame.t_ns) + ",0,")


def test_read_stdin(monkeypatch, tmp_path):
    frames = random_frames(4, seed=9)
    path = tmp_path / "t.csv"
    write(path, frames)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    for a, b in zip(frames, read_csv("-")):
        assert_same(a, b)


def test_send_outside_with_is_output_error(tmp_path):
    with pytest.raises(OutputError, match="not open"):
        CsvWriter(tmp_path / "x.csv").send(FaceFrame(t_ns=0))


@pytest.mark.parametrize(
    "content, message",
    [
        ("hello world\nthis is not a take\n", r"garbage.csv:1: expected a facewire CSV header with a 'time_s'"),
        ("", "empty file"),
        ("time_s,jawOpen\n0.0,0.5\n0.1,abc\n", r"garbage.csv:3: jawOpen: expected a number, got 'abc'"),
        ("time_s,jawOpen\n0.0,0.5\n0.1\n", r"garbage.csv:3: expected 2 fields"),
        ("time_s,jawOpen\n0.0,0.5\nsoon,0.1\n", r"garbage.csv:3: time_s: expected seconds"),
        ("time_s,jawOpen\n0.0,0.5\n0.1,1.5\n", r"garbage.csv:3: weights: expected values in \[0, 1\]"),
        ("time_s,jawOpen\n0.0,0.5\n0.1,nan\n", r"garbage.csv:3: weights: expected finite"),
        ("time_s,tracked\n0.0,1\n0.1,maybe\n", r"garbage.csv:3: tracked: expected 0 or 1"),
        ("time_s,jawOpen\n0.0,0.5\n0.1,\n", r"garbage.csv:3: jawOpen: empty value"),
        ("time_s,time_s\n0,0\n", "appears twice"),
        ('time_s,jawOpen\n0.0,0.5\n0.1,"0.5\n', r"garbage.csv:\d+: malformed CSV"),
    ],
)
def test_malformed_files_are_input_errors(tmp_path, content, message):
    path = tmp_path / "garbage.csv"
    path.write_text(content)
    frames = read_csv(path)
    with pytest.raises(InputError, match=message):
        list(frames)


def test_binary_garbage_is_input_error(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="garbage.csv"):
        list(read_csv(path))


def test_missing_file_is_input_error_at_once(tmp_path):
    with pytest.raises(InputError, match="nope.csv"):
        read_csv(tmp_path / "nope.csv")


def test_dispatch_by_extension(tmp_path):
    assert {".jsonl", ".csv"} <= set(FORMATS)
    assert isinstance(open_writer(tmp_path / "a.CSV"), CsvWriter)
    assert isinstance(open_writer(tmp_path / "a.jsonl"), JsonlWriter)
    assert isinstance(open_writer("-"), JsonlWriter)
    for bad in ("take.fbx", "take"):
        with pytest.raises(InputError, match=r"\.csv, (\.\w+, )*\.jsonl"):
            open_writer(tmp_path / bad)
        with pytest.raises(InputError, match=r"\.csv, (\.\w+, )*\.jsonl"):
            read_take(tmp_path / bad)


def test_convert_jsonl_to_csv_through_pipeline(tmp_path):
    frames = random_frames(12, seed=5)
    src, dst = tmp_path / "a.jsonl", tmp_path / "b.csv"
    run(frames, sinks=[open_writer(src)])
    run(read_take(src), sinks=[open_writer(dst)])
    for a, b in zip(frames, read_take(dst)):
        assert_same(a, b)
