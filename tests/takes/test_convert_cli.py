"""``facewire convert`` end to end: the real CLI in a subprocess, real takes, every format pair."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from facewire.takes import FORMAT_NAMES, read_take
from facewire.takes.llf import HEADER, format_timecode

FACEWIRE = [sys.executable, "-m", "facewire", "convert"]
README_TSV = "0.00\tX\n0.05\tD\n0.27\tC\n0.31\tB\n0.43\tX\n0.47\tX\n"
SUFFIX = {"jsonl": ".jsonl", "csv": ".csv", "llf": ".llf.csv", "a2f": ".a2f.json", "rhubarb-json": ".rhubarb.json",
          "rhubarb-tsv": ".rhubarb.tsv", "visemes": ".visemes.json", "gltf": ".glb"}


def convert(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FACEWIRE, *map(str, args)], input=stdin, capture_output=True, timeout=120, check=False)


def test_real_take_llf_to_jsonl_and_back_is_byte_exact(shared_file, tmp_path):
    take = shared_file("data/takes/neurosync/MySlate_161_iPhone_cal.csv")
    jsonl, back = tmp_path / "take.jsonl", tmp_path / "back.llf.csv"
    first = convert(take, jsonl)
    assert first.returncode == 0, first.stderr
    assert f"(llf) → {jsonl} (jsonl)" in first.stderr.decode()
    second = convert(jsonl, back)
    assert second.returncode == 0, second.stderr
    assert back.read_bytes() == take.read_bytes()


def test_every_pair_of_formats(shared_file, tmp_path):
    # The first second of a real take through the CLI into every format, then every format into
    # every format in-process (49 subprocess start-ups would only test the same code slower).
    lines = shared_file("data/takes/jmtechart/MySlate_3_Jason_Millers_iPhone.csv").read_text().splitlines(True)
    take = tmp_path / "short.csv"
    take.write_text("".join(lines[:61]))
    firsts = {}
    for name, suffix in SUFFIX.items():
        out = tmp_path / f"first{suffix}"
        result = convert(take, out, "--quiet")
        assert result.returncode == 0, (name, result.stderr)
        firsts[name] = out
    from facewire.takes import open_writer

    for (a, src), b in itertools.product(firsts.items(), SUFFIX):
        out = tmp_path / f"{a}-to-{b}{SUFFIX[b]}"
        with open_writer(out) as sink:
            n = sum(sink.send(f) is None for f in read_take(src))
        assert n > 0 and out.stat().st_size > 0, (a, b)
        assert len(list(read_take(out))) > 0, (a, b)


def test_from_to_flags_and_stdio(tmp_path):
    cues = tmp_path / "cues.txt"  # a suffix no format claims: --from names it
    cues.write_text(README_TSV)
    result = convert(cues, "-", "--from", "rhubarb-tsv", "--to", "rhubarb-json", "--fps", "100")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [c["value"] for c in doc["mouthCues"]] == ["X", "D", "C", "B", "X"]
    assert doc["metadata"]["duration"] == 0.47
    back = convert("-", tmp_path / "back.rhubarb.tsv", "--from", "rhubarb-json", stdin=result.stdout)
    assert back.returncode == 0, back.stderr
    assert (tmp_path / "back.rhubarb.tsv").read_text() == README_TSV
    sampled = convert(cues, tmp_path / "s.jsonl", "--from", "rhubarb-tsv", "--fps", "30")
    assert sampled.returncode == 0 and len(list(read_take(tmp_path / "s.jsonl"))) == 15


def test_fps_sets_audio2face_rate_and_warns_where_useless(tmp_path):
    src = tmp_path / "c.rhubarb.tsv"
    src.write_text(README_TSV)
    result = convert(src, tmp_path / "o.a2f.json", "--fps", "25")
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "o.a2f.json").read_text())
    assert doc["exportFps"] == 25.0 and doc["numFrames"] == 12  # sampled at 25 fps, stored as 25 fps
    jsonl = tmp_path / "o.jsonl"
    result = convert(tmp_path / "o.a2f.json", jsonl, "--fps", "50")
    assert result.returncode == 0 and "--fps has no effect from a2f to jsonl" in result.stderr.decode()


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, ("in.fbx", "out.jsonl"), "unsupported take format ('.fbx')"),
        ("in.jsonl", ("in.jsonl", "out.obj"), "unsupported take format ('.obj')"),
        ("in.jsonl", ("in.jsonl", "out.json"), "name the format with a suffix such as .a2f.json"),
        ("in.jsonl", ("in.jsonl", "out.jsonl", "--to", "fbx"), "unknown take format 'fbx'"),
        (None, ("missing.llf.csv", "out.jsonl"), "cannot read take missing.llf.csv"),
        ("bad.llf.csv", ("bad.llf.csv", "out.jsonl"), "bad.llf.csv:1: missing Live Link Face column: JawOpen"),
        ("bad.llf.csv", ("bad.llf.csv", "out.jsonl", "--from", "a2f"), "not valid Audio2Face JSON"),
    ],
)
def test_errors_are_one_line_and_leave_nothing(tmp_path, make, args, message):
    if make == "in.jsonl":
        (tmp_path / make).write_text('{"t_ns": 0, "weights": [' + ",".join(["0"] * 52) + "]}\n")
    elif make == "bad.llf.csv":
        (tmp_path / make).write_text(",".join(h for h in HEADER if h != "JawOpen") + "\n")
    result = subprocess.run([*FACEWIRE, *args], cwd=tmp_path, capture_output=True, timeout=60, check=False)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.startswith("facewire: error: ") and message in err and "Traceback" not in err
    assert not any(p.name.startswith(("out", ".out")) for p in tmp_path.iterdir())


def test_large_input_shows_progress(tmp_path):
    path = tmp_path / "big.llf.csv"
    values = ",".join(["0.1000000000"] * 61)
    with open(path, "w") as f:
        f.write(",".join(HEADER) + "\n")
        f.writelines(f"{format_timecode(i * 16_666_667)},61,{values}\n" for i in range(11_000))  # ~8.7 MB
    assert path.stat().st_size >= 8 << 20
    result = convert(path, tmp_path / "big.jsonl")
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert "converting big.llf.csv" in err and "11000/" in err
    assert "converted 11000 frames" in err
    quiet = convert(path, tmp_path / "q.jsonl", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == b""


def test_every_format_has_a_cli_name():
    assert set(FORMAT_NAMES) == set(SUFFIX)
    help_text = subprocess.run([*FACEWIRE, "--help"], capture_output=True, timeout=60, check=True).stdout.decode()
    for name in SUFFIX:
        assert name in help_text
    assert Path(__file__).exists()
