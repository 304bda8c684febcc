"""Rhubarb Lip Sync cues (TSV and JSON): Rhubarb's own example byte for byte, sampling, bad files."""

from __future__ import annotations

import pytest

from facewire.errors import InputError, OutputError
from facewire.frame import FaceFrame
from facewire.mouth import arkit_to_rhubarb, rhubarb_to_arkit
from facewire.takes import format_for, open_writer, read_take
from facewire.takes.llf import read_llf_csv
from facewire.takes.rhubarb import (
    RhubarbJsonWriter,
    RhubarbTsvWriter,
    read_rhubarb_json,
    read_rhubarb_tsv,
)

# Rhubarb's README example ("hi.wav"), as `rhubarb -f tsv` and `rhubarb -f json` print it.
README_TSV = "0.00\tX\n0.05\tD\n0.27\tC\n0.31\tB\n0.43\tX\n0.47\tX\n"
README_JSON = """{
  "metadata": {
    "soundFile": "C:\\\\Users\\\\Daniel\\\\Desktop\\\\av\\\\hi.wav",
    "duration": 0.47
  },
  "mouthCues": [
    { "start": 0.00, "end": 0.05, "value": "X" },
    { "start": 0.05, "end": 0.27, "value": "D" },
    { "start": 0.27, "end": 0.31, "value": "C" },
    { "start": 0.31, "end": 0.43, "value": "B" },
    { "start": 0.43, "end": 0.47, "value": "X" }
  ]
}
"""
EXPECTED = "X" * 5 + "D" * 22 + "C" * 4 + "B" * 12 + "X" * 4  # one letter per centisecond


def _shapes(frames) -> str:
    return "".join(_shape(f) for f in frames)


_POSE_SHAPES = {rhubarb_to_arkit(s).tobytes(): s for s in "ABCDEFGHX"}


def _shape(frame: FaceFrame) -> str:
    """The shape of a frame read from cues (its weights are one shape's pose), else classified."""
    return _POSE_SHAPES.get(frame.weights.tobytes()) or arkit_to_rhubarb(frame.weights)


def test_tsv_reads_at_100_fps_and_writes_back_byte_for_byte(tmp_path):
    src, dst = tmp_path / "hi.rhubarb.tsv", tmp_path / "back.rhubarb.tsv"
    src.write_text(README_TSV)
    frames = list(read_take(src))
    assert [f.t_ns for f in frames] == [k * 10_000_000 for k in range(47)]
    assert _shapes(frames) == EXPECTED
    with open_writer(dst) as sink:
        for f in frames:
            sink.send(f)
    assert dst.read_text() == README_TSV


def test_json_reads_and_writes_back_byte_for_byte(tmp_path):
    src, dst = tmp_path / "hi.rhubarb.json", tmp_path / "back.rhubarb.json"
    src.write_text(README_JSON)
    frames = list(read_rhubarb_json(src))
    assert _shapes(frames) == EXPECTED
    with RhubarbJsonWriter(dst, sound_file="C:\\Users\\Daniel\\Desktop\\av\\hi.wav") as sink:
        for f in frames:
            sink.send(f)
    assert dst.read_text() == README_JSON


def test_json_and_tsv_agree(tmp_path):
    a, b = tmp_path / "a.rhubarb.json", tmp_path / "a.rhubarb.tsv"
    a.write_text(README_JSON)
    with open_writer(b) as sink:
        for f in read_take(a):
            sink.send(f)
    assert b.read_text() == README_TSV


def test_sampling_at_another_rate(tmp_path):
    src = tmp_path / "hi.tsv"  # a plain .tsv is Rhubarb's
    src.write_text(README_TSV)
    assert format_for(src).name == "rhubarb-tsv"
    frames = list(read_take(src, fps=30))
    assert len(frames) == 15  # t = k/30 < 0.47
    assert _shapes(frames) == "XXDDDDDDDCBBBXX"
    assert frames[9].t_ns == 300_000_000
    dst = tmp_path / "30.rhubarb.tsv"
    with open_writer(dst) as sink:
        for f in frames:
            sink.send(f)
    # Cue starts move to the frames that show them; the end is one frame after the last.
    assert dst.read_text() == "0.00\tX\n0.07\tD\n0.30\tC\n0.33\tB\n0.43\tX\n0.50\tX\n"


def test_gaps_between_json_cues_are_idle(tmp_path):
    path = tmp_path / "gap.rhubarb.json"
    path.write_text('{"mouthCues": [{"start": 0.02, "end": 0.04, "value": "A"}]}')
    assert _shapes(read_take(path)) == "XXAA"


def test_zero_length_cues_collapse_and_untracked_frames_are_idle(tmp_path):
    path = tmp_path / "z.rhubarb.tsv"
    with RhubarbTsvWriter(path) as sink:
        sink.send(FaceFrame(t_ns=0, weights=rhubarb_to_arkit("A")))
        sink.send(FaceFrame(t_ns=4_000_000, weights=rhubarb_to_arkit("B")))  # same centisecond: B replaces A
        sink.send(FaceFrame(t_ns=12_000_000, weights=rhubarb_to_arkit("C")))
        sink.send(FaceFrame(t_ns=13_000_000, weights=rhubarb_to_arkit("B")))  # rounds to C's start: C is gone,
        sink.send(FaceFrame(t_ns=20_000_000, weights=rhubarb_to_arkit("B")))  # and B merges with the first B
        sink.send(FaceFrame.untracked(30_000_000))
    assert path.read_text() == "0.00\tB\n0.03\tX\n0.04\tX\n"


def test_empty_take_gets_rhubarbs_dummy_cue(tmp_path):
    tsv, js = tmp_path / "e.rhubarb.tsv", tmp_path / "e.rhubarb.json"
    with RhubarbTsvWriter(tsv):
        pass
    with RhubarbJsonWriter(js):
        pass
    assert tsv.read_text() == "0.00\tX\n0.00\tX\n"
    assert '{ "start": 0.00, "end": 0.01, "value": "X" }' in js.read_text()
    assert list(read_take(tsv)) == []


def test_real_take_to_cues_and_back(shared_file, tmp_path):
    take = shared_file("data/takes/alexdjulin/alex_rom_3.csv")
    path = tmp_path / "rom.rhubarb.json"
    frames = list(read_llf_csv(take))
    with open_writer(path) as sink:
        for f in frames:
            sink.send(f)
    back = list(read_take(path))
    duration = (frames[-1].t_ns - frames[0].t_ns) / 1e9
    assert abs(len(back) / 100 - duration) < 0.05
    # Each cue shape holds at the frame times it was made from (cue starts snap to centiseconds).
    t0 = frames[0].t_ns
    agree = sum(arkit_to_rhubarb(f.weights) == _shape(back[min(round((f.t_ns - t0) / 1e7), len(back) - 1)])
                for f in frames if f.tracked)
    assert agree > 0.95 * sum(f.tracked for f in frames)
    assert len(set(_shapes(back))) >= 5  # a range-of-motion take uses most shapes


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty file"),
        ("0.00\tX\n0.10\tZ\n", r":2: shape: expected a mouth shape A/B/C/D/E/F/G/H/X, got 'Z'"),
        ("0.00\tX\nabc\tA\n", r":2: start: expected seconds, got 'abc'"),
        ("0.00\tX\n-1\tA\n", r":2: start: expected a time in seconds ≥ 0"),
        ("0.50\tX\n0.10\tA\n0.60\tX\n", "cue 1 starts before the cue before it"),
        ("0.00 X extra\n", "expected 'start<TAB>shape'"),
    ],
)
def test_bad_tsv(tmp_path, text, message):
    path = tmp_path / "bad.rhubarb.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        list(read_rhubarb_tsv(path))


@pytest.mark.parametrize(
    "text, message",
    [
        ("[]", "expected an object with a 'mouthCues' list"),
        ('{"mouthCues": [{"start": 0}]}', r"mouthCues\[0\]: expected an object with start, end and value"),
        ('{"mouthCues": [{"start": 0.2, "end": 0.1, "value": "A"}]}', "ends .* before it starts"),
        ('{"mouthCues": [{"start": 0, "end": 0.1, "value": "Q"}]}', "expected a mouth shape"),
        ('{"mouthCues": [{"start": true, "end": 0.1, "value": "A"}]}', "start: expected a time"),
        ('{"mouthCues": [', "not valid Rhubarb JSON"),
    ],
)
def test_bad_json(tmp_path, text, message):
    path = tmp_path / "bad.rhubarb.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        list(read_rhubarb_json(path))


def test_bad_fps_and_writer_misuse(tmp_path):
    path = tmp_path / "x.rhubarb.tsv"
    path.write_text(README_TSV)
    with pytest.raises(InputError, match="positive frame rate"):
        read_rhubarb_tsv(path, fps=0)
    with pytest.raises(OutputError, match="not open"):
        RhubarbTsvWriter(path).send(FaceFrame(t_ns=0))
    with pytest.raises(OutputError, match="must not go back"), RhubarbTsvWriter(tmp_path / "y.rhubarb.tsv") as sink:
        sink.send(FaceFrame(t_ns=10))
        sink.send(FaceFrame(t_ns=5))
    assert not (tmp_path / "y.rhubarb.tsv").exists()
