"""Live Link Face CSV takes: the real app's files read, round-trip byte for byte, and bad files fail clearly."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError, OutputError
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.takes import format_for, open_writer, read_take
from facewire.takes.jsonl import JsonlWriter, read_jsonl
from facewire.takes.llf import (
    HEADER,
    VALUE_LABELS,
    LlfCsvWriter,
    format_timecode,
    parse_timecode,
    read_llf_csv,
)

# The header line of a real take (alexdjulin/S07-001.csv), typed out: the app's order swaps
# JawRight/JawLeft and MouthRight/MouthLeft relative to Unreal's enum.
APP_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,EyeLookUpLeft,"
    "EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,EyeLookOutRight,EyeLookUpRight,"
    "EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,JawOpen,MouthClose,MouthFunnel,MouthPucker,"
    "MouthRight,MouthLeft,MouthSmileLeft,MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,"
    "MouthDimpleRight,MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,MouthUpperUpLeft,"
    "MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,BrowOuterUpRight,CheekPuff,"
    "CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,TongueOut,HeadYaw,HeadPitch,HeadRoll,"
    "LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll"
)

# Every real take, with the rate its timecodes show (README: alexdjulin 30 fps, the rest 60).
REAL_TAKES = {
    "alexdjulin/S07-001.csv": 30,
    "alexdjulin/S88-001.csv": 30,
    "alexdjulin/alex_rom_3.csv": 30,
    "alexdjulin/alex_rom_4.csv": 30,
    "alexdjulin/apfel.csv": 30,
    "alexdjulin/facial.csv": 30,
    "jmtechart/MySlate_3_Jason_Millers_iPhone.csv": 60,
    "neurosync/MySlate_161_iPhone_cal.csv": 60,
    "neurosync/MySlate_162_iPhone_cal.csv": 60,
    "neurosync/MySlate_164_iPhone_cal.csv": 60,
    "neurosync/MySlate_165_iPhone_cal.csv": 60,
    "neurosync/MySlate_167_iPhone_cal.csv": 60,
    "neurosync/MySlate_168_iPhone_cal.csv": 60,
    "neurosync/default.csv": 60,
}


def test_header_is_the_apps():
    assert ",".join(HEADER) == APP_HEADER
    assert len(VALUE_LABELS) == 61
    assert VALUE_LABELS.index("JawRight") < VALUE_LABELS.index("JawLeft")
    assert VALUE_LABELS.index("MouthRight") < VALUE_LABELS.index("MouthLeft")


def test_every_real_take_is_listed(shared_dir):
    found = {str(p.relative_to(shared_dir / "data/takes")) for p in (shared_dir / "data/takes").rglob("*.csv")}
    assert found == set(REAL_TAKES)


# -- timecode ----------------------------------------------------------------------------------------
def test_timecode_hand_computed():
    # 12:27:47 is 44867 s; 47.169 frames at 60 fps is 47169/60000 s = 0.78615 s.
    assert parse_timecode("12:27:47:47.169") == 44_867_786_150_000
    assert format_timecode(44_867_786_150_000) == "12:27:47:47.169"
    # One thousandth of a frame is 1/60000 s = 16666.67 ns, rounded to the nanosecond.
    assert parse_timecode("00:00:00:00.001") == 16_667
    assert parse_timecode("00:00:00:00.002") == 33_333
    assert parse_timecode("00:00:01:00") == 1_000_000_000
    assert parse_timecode("23:59:59:59.999") == 86_399_999_983_333
    assert format_timecode(0) == "00:00:00:00.000"
    assert format_timecode(1_000_000_000 // 30) == "00:00:00:02.000"  # a 30 fps frame is 2 timecode frames


def test_timecode_round_trips_every_thousandth():
    for units in range(0, 60_000 * 3, 7):  # three seconds of thousandths of a frame
        seconds, sub = divmod(units, 60_000)
        text = f"00:00:{seconds:02d}:{sub // 1000:02d}.{sub % 1000:03d}"
        assert format_timecode(parse_timecode(text)) == text


def test_timecode_wraps_at_midnight_and_rejects_negatives():
    assert format_timecode(86_400 * 10**9 + 5 * 10**9) == "00:00:05:00.000"
    with pytest.raises(InputError, match="t_ns"):
        format_timecode(-1)


@pytest.mark.parametrize("bad", ["12:27:47", "12:27:47:60.000", "12:60:00:00.000", "aa:bb:cc:dd", "", "1:2:3:4.5x"])
def test_bad_timecodes_are_refused(bad):
    with pytest.raises(InputError, match="Timecode"):
        parse_timecode(bad)


def test_more_fraction_digits_round_exactly():
    assert parse_timecode("00:00:00:00.0005") == 8_333  # 0.0005/60 s = 8333.33 ns
    assert parse_timecode("00:00:00:30") == 500_000_000


# -- real takes --------------------------------------------------------------------------------------
def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()[1:] if line]


@pytest.mark.parametrize("name", sorted(REAL_TAKES))
def test_real_take_reads_with_times_from_its_timecodes(shared_file, name):
    path = shared_file(f"data/takes/{name}")
    rows = _rows(path)
    frames = list(read_take(path))  # a plain .csv: recognised as Live Link Face by its first line
    assert format_for(path, reading=True).name == "llf"
    assert len(frames) == len(rows)
    assert [f.seq for f in frames] == list(range(len(frames)))
    times = np.array([f.t_ns for f in frames])
    assert (np.diff(times) > 0).all()
    assert times[0] == parse_timecode(rows[0][0])
    fps = 1e9 / np.median(np.diff(times))
    assert abs(fps - REAL_TAKES[name]) < 0.2, fps
    # Frames with no face are the app's '<timecode>,0' rows.
    assert sum(not f.tracked for f in frames) == sum(r[1] == "0" for r in rows)
    # Values by name: each blendshape column lands on its ARKit weight (float32, clipped to 1).
    header = path.read_text().split("\n", 1)[0].split(",")
    row, frame = next((r, f) for r, f in zip(rows, frames) if f.tracked)
    for label, text in zip(header[2:], row[2:]):
        if label in VALUE_LABELS[52:]:  # head and eye angles, checked below
            continue
        assert frame.weight(label) == min(np.float32(text), 1.0), label
    radians = {label: float(np.float32(text)) for label, text in zip(header[2:], row[2:])}
    assert frame.gaze.left_yaw_deg == -math.degrees(radians["LeftEyeYaw"])
    assert frame.gaze.right_pitch_deg == -math.degrees(radians["RightEyePitch"])
    assert frame.head == HeadPose()  # the head columns are zero: the app's head option was off


@pytest.mark.parametrize("name", sorted(REAL_TAKES))
def test_real_take_round_trips_through_jsonl_byte_for_byte(shared_file, tmp_path, name):
    path = shared_file(f"data/takes/{name}")
    jsonl, back = tmp_path / "take.jsonl", tmp_path / "back.llf.csv"
    with JsonlWriter(jsonl) as sink:
        for frame in read_llf_csv(path):
            sink.send(frame)
    with LlfCsvWriter(back) as sink:
        for frame in read_jsonl(jsonl):
            sink.send(frame)
    original, rebuilt = path.read_bytes(), back.read_bytes()
    assert rebuilt.split(b"\n", 1)[0] == original.split(b"\n", 1)[0]  # header, count spelling included
    assert rebuilt == original  # every timecode and every value to 10 decimals


def test_values_above_one_survive_and_the_frame_is_clipped(shared_file):
    path = shared_file("data/takes/alexdjulin/alex_rom_4.csv")
    column = VALUE_LABELS.index
    for frame, row in zip(read_llf_csv(path), _rows(path)):
        over = [label for label, text in zip(VALUE_LABELS[:52], row[2:54]) if float(text) > 1]
        if over:
            label = over[0]
            assert frame.weight(label) == 1.0
            assert frame.extras[f"unclipped.{arkit.from_pascal(label)}"] == float(np.float32(row[2 + column(label)]))
            break
    else:
        pytest.fail("alex_rom_4 has weights above 1 (91 of them)")


def test_eye_signs_follow_the_eye_blendshapes(shared_file):
    # Checked on the data: the left eye looking out (to the subject's left) has negative LeftEyeYaw;
    # facewire's gaze yaw is positive to the subject's left.
    frames = [f for f in read_llf_csv(shared_file("data/takes/alexdjulin/S07-001.csv")) if f.tracked]
    out = np.array([f.weight("eyeLookOutLeft") for f in frames])
    up = np.array([f.weight("eyeLookUpLeft") for f in frames])
    yaw = np.array([f.gaze.left_yaw_deg for f in frames])
    pitch = np.array([f.gaze.left_pitch_deg for f in frames])
    assert np.corrcoef(out, yaw)[0, 1] > 0.8
    assert np.corrcoef(up, pitch)[0, 1] > 0.8


# -- writing -----------------------------------------------------------------------------------------
def _frame(t_ns: int, **kw) -> FaceFrame:
    weights = np.zeros(arkit.COUNT, dtype=np.float32)
    weights[arkit.INDEX["jawLeft"]] = 0.25
    weights[arkit.INDEX["mouthRight"]] = 0.5
    return FaceFrame(t_ns=t_ns, weights=weights, **kw)


def test_writer_puts_each_value_under_its_own_label(tmp_path):
    path = tmp_path / "t.llf.csv"
    gaze = Gaze(left_yaw_deg=10.0, left_pitch_deg=-5.0, right_yaw_deg=9.0, right_pitch_deg=-4.0)
    with open_writer(path) as sink:
        sink.send(_frame(1_000_000_000, head=HeadPose(yaw_deg=30.0, pitch_deg=15.0, roll_deg=-20.0), gaze=gaze))
        sink.send(FaceFrame.untracked(1_033_333_333))
    header, row, empty, end = path.read_text().split("\n")
    assert header == APP_HEADER and end == ""
    cells = dict(zip(header.split(","), row.split(",")))
    assert cells["Timecode"] == "00:00:01:00.000" and cells["BlendShapeCount"] == "61"
    assert cells["JawLeft"] == "0.2500000000" and cells["JawRight"] == "0.0000000000"
    assert cells["MouthRight"] == "0.5000000000" and cells["MouthLeft"] == "0.0000000000"
    assert cells["HeadYaw"] == f"{np.float32(math.radians(-30.0)):.10f}"
    assert cells["HeadPitch"] == f"{np.float32(math.radians(-15.0)):.10f}"
    assert cells["HeadRoll"] == f"{np.float32(math.radians(-20.0)):.10f}"
    assert cells["LeftEyeYaw"] == f"{np.float32(math.radians(-10.0)):.10f}"
    assert cells["LeftEyePitch"] == f"{np.float32(math.radians(5.0)):.10f}"
    assert cells["LeftEyeRoll"] == "0.0000000000"
    assert empty == "00:00:01:02.000,0"  # no face: timecode and a zero count, as the app writes
    back = list(read_take(path))
    assert back[0].weight("jawLeft") == 0.25 and back[0].weight("mouthRight") == 0.5
    assert math.isclose(back[0].head.yaw_deg, 30.0, rel_tol=1e-6) and math.isclose(back[0].gaze.left_pitch_deg, -5.0, rel_tol=1e-6)
    assert not back[1].tracked


def test_count_spelling_and_empty_take(tmp_path):
    path = tmp_path / "e.llf.csv"
    with LlfCsvWriter(path):
        pass
    assert path.read_text() == APP_HEADER + "\n"
    with LlfCsvWriter(path, count_label="BlendshapeCount") as sink:
        sink.send(_frame(0))
    assert path.read_text().startswith("Timecode,BlendshapeCount,EyeBlinkLeft,")
    with pytest.raises(InputError, match="count_label"):
        LlfCsvWriter(path, count_label="Count")


def test_stale_unclipped_value_is_ignored(tmp_path):
    frame = _frame(0).replace(extras={"unclipped.jawLeft": 1.5})
    path = tmp_path / "s.llf.csv"
    with LlfCsvWriter(path) as sink:
        sink.send(frame)  # weight 0.25 is not clip(1.5): a stage changed it, the raw value is stale
        weights = frame.weights.copy()
        weights[arkit.INDEX["jawLeft"]] = 1.0
        sink.send(frame.replace(t_ns=1, weights=weights))
    first, second = (dict(zip(VALUE_LABELS, row.split(",")[2:])) for row in path.read_text().splitlines()[1:])
    assert first["JawLeft"] == "0.2500000000" and second["JawLeft"] == "1.5000000000"


def test_writer_refuses_negative_time_and_failure_leaves_nothing(tmp_path):
    path = tmp_path / "n.llf.csv"
    with pytest.raises(InputError, match="t_ns"), LlfCsvWriter(path) as sink:
        sink.send(_frame(-5))
    assert not path.exists() and not list(tmp_path.iterdir())
    with pytest.raises(OutputError, match="not open"):
        LlfCsvWriter(path).send(_frame(0))


def test_plain_csv_is_still_facewire_csv(tmp_path):
    path = tmp_path / "mine.csv"
    with open_writer(path) as sink:
        sink.send(_frame(5))
    assert format_for(path, reading=True).name == "csv"
    assert format_for(tmp_path / "x.llf.csv").name == "llf" and format_for(tmp_path / "X.LLF.CSV").name == "llf"


# -- bad input ---------------------------------------------------------------------------------------
def _row(timecode: str = "00:00:00:00.000", value: str = "0.1000000000") -> str:
    return f"{timecode},61," + ",".join([value] * 61)


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "m.csv"
    labels = [h for h in HEADER if h not in ("JawOpen", "RightEyeRoll")]
    path.write_text(",".join(labels) + "\n")
    with pytest.raises(InputError, match=r"m\.csv:1: missing Live Link Face columns: JawOpen, RightEyeRoll"):
        list(read_take(path))


def test_nan_is_an_error_naming_file_line_and_column(tmp_path):
    path = tmp_path / "nan.llf.csv"
    cells = _row().split(",")
    cells[2 + VALUE_LABELS.index("MouthLeft")] = "nan"
    path.write_text(APP_HEADER + "\n" + _row() + "\n" + ",".join(cells) + "\n")
    frames = read_llf_csv(path)
    assert next(frames).tracked
    with pytest.raises(InputError, match=r"nan\.llf\.csv:3: MouthLeft: expected a finite number, got 'nan'"):
        next(frames)


@pytest.mark.parametrize(
    "body, message",
    [
        ("", "empty file"),
        ("time_s,tracked\n0,1\n", "expected a Live Link Face header starting 'Timecode,BlendShapeCount,'"),
        (APP_HEADER + "\n" + _row()[:-13] + "\n", ":2: expected 63 fields like the header, got 62"),
        (APP_HEADER + "\n" + _row(value="abc") + "\n", ":2: EyeBlinkLeft: expected a number, got 'abc'"),
        (APP_HEADER + "\n" + _row(value="inf") + "\n", ":2: EyeBlinkLeft: expected a finite number"),
        (APP_HEADER + "\n" + _row(timecode="1:2") + "\n", ":2: Timecode: expected HH:MM:SS:FF.fff"),
        (APP_HEADER + "\n12:00:00:00.000\n", ":2: expected a timecode and a count"),
        (APP_HEADER + "\n" + _row().replace(",61,", ",x,") + "\n", ":2: BlendShapeCount: expected a whole number"),
        (APP_HEADER + ",JawOpen\n", "column 'JawOpen' appears twice"),
    ],
)
def test_malformed_files_are_input_errors(tmp_path, body, message):
    path = tmp_path / "bad.llf.csv"
    path.write_text(body)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        list(read_llf_csv(path))


def test_garbage_bytes_are_input_errors(tmp_path):
    path = tmp_path / "g.llf.csv"
    path.write_bytes(os.urandom(4096).replace(b"\n", b"\xff"))
    with pytest.raises(InputError, match="g.llf.csv"):
        list(read_llf_csv(path))
    with pytest.raises(InputError, match="cannot read take"):
        read_llf_csv(tmp_path / "absent.llf.csv")


def test_bom_crlf_midnight_and_unknown_columns(tmp_path):
    path = tmp_path / "w.csv"
    lines = [APP_HEADER + ",Extra", _row("23:59:59:59.000") + ",7", _row("00:00:00:01.000") + ",7"]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    a, b = read_take(path)
    assert abs((b.t_ns - a.t_ns) - 2e9 / 60) <= 1  # the take ran past midnight: time keeps counting
    assert a.weight("jawOpen") == np.float32(0.1)


# -- size --------------------------------------------------------------------------------------------
def _rss_bytes() -> int:
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return psutil.Process().memory_info().rss


def test_a_200_mb_take_streams_in_bounded_memory(tmp_path):
    if not os.path.exists("/proc/self/statm"):
        try:
            import psutil  # noqa: F401
        except ImportError:
            pytest.skip("needs /proc or psutil to measure memory")
    path = tmp_path / "huge.llf.csv"
    values = ",".join("%.10f" % (i / 61) for i in range(61))
    rows = 0
    with open(path, "w") as f:  # written lazily, a chunk at a time
        f.write(APP_HEADER + "\n")
        while f.tell() < 200_000_000:
            f.write("".join(f"{format_timecode((rows + k) * 16_666_667)},61,{values}\n" for k in range(2000)))
            rows += 2000
    try:
        before = _rss_bytes()
        peak = before
        count = 0
        for frame in read_llf_csv(path):
            count += 1
            if count % 10_000 == 0:
                peak = max(peak, _rss_bytes())
        assert count == rows
        assert format_timecode(frame.t_ns) == format_timecode((rows - 1) * 16_666_667)
        assert peak - before < 32 * 2**20, f"reading grew memory by {(peak - before) / 2**20:.0f} MiB"
    finally:
        path.unlink()
