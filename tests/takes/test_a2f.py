"""Audio2Face blendshape JSON: golden text, round trips to 1e-6, names by name, bad files."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError, OutputError
from facewire.frame import FaceFrame
from facewire.takes import format_for, open_writer, read_take
from facewire.takes.a2f import A2fWriter, read_a2f


def _frames(n: int, fps: float = 30.0, seed: int = 0) -> list[FaceFrame]:
    rng = np.random.default_rng(seed)
    return [FaceFrame(t_ns=round(i * 1e9 / fps), seq=i, weights=rng.random(52, dtype=np.float32)) for i in range(n)]


def test_golden_output(tmp_path):
    weights = np.zeros(52, dtype=np.float32)
    weights[arkit.INDEX["jawOpen"]] = 0.5
    weights[arkit.INDEX["tongueOut"]] = 0.1
    path = tmp_path / "g.a2f.json"
    with A2fWriter(path, fps=24, track_path="C:/audio/hi.wav") as sink:
        sink.send(FaceFrame(t_ns=0, weights=weights))
        sink.send(FaceFrame(t_ns=41_666_667))
    row0 = ["0.0"] * 52
    row0[17], row0[51] = "0.5", "0.1"
    names = ", ".join(f'"{n}"' for n in arkit.NAMES)
    expected = (
        "{\n"
        '  "exportFps": 24.0,\n'
        '  "trackPath": "C:/audio/hi.wav",\n'
        '  "numPoses": 52,\n'
        '  "numFrames": 2,\n'
        f'  "facsNames": [{names}],\n'
        '  "weightMat": [\n'
        f'    [{", ".join(row0)}],\n'
        f'    [{", ".join(["0.0"] * 52)}]\n'
        "  ]\n"
        "}\n"
    )
    assert path.read_text() == expected
    assert json.loads(expected)["facsNames"][17] == "jawOpen"


def test_empty_take_is_valid_json(tmp_path):
    path = tmp_path / "e.a2f.json"
    with A2fWriter(path):
        pass
    doc = json.loads(path.read_text())
    assert doc["numFrames"] == 0 and doc["weightMat"] == [] and doc["exportFps"] == 60.0
    assert list(read_a2f(path)) == []


def test_frames_round_trip_exactly(tmp_path):
    frames = _frames(50)
    path = tmp_path / "r.a2f.json"
    with open_writer(path) as sink:
        for f in frames:
            sink.send(f)
    assert json.loads(path.read_text())["exportFps"] == 30.0  # measured from the frame times
    back = list(read_take(path))
    assert len(back) == 50
    for a, b in zip(frames, back):
        assert a.t_ns == b.t_ns and a.seq == b.seq
        assert a.weights.tobytes() == b.weights.tobytes()  # float32 shortest text reads back bit for bit


def test_file_round_trips_within_1e6_by_name(tmp_path):
    # A hand-written export: PascalCase names in a shuffled order, values as double, out of range too,
    # a non-ARKit pose and the optional joint keys.
    rng = np.random.default_rng(1)
    names = list(arkit.NAMES)
    rng.shuffle(names)
    names = [arkit.pascal(n) if i % 2 else n for i, n in enumerate(names)] + ["TongueTipUp"]
    rows = rng.random((5, 53)).round(12).tolist()
    rows[2][names.index("jawOpen" if "jawOpen" in names else "JawOpen")] = 1.0625
    rows[3][0] = -0.015625
    doc = {"exportFps": 60.0, "trackPath": "x.wav", "numPoses": 53, "numFrames": 5, "facsNames": names,
           "weightMat": rows, "joints": ["jaw"], "rotations": [[[0, 0, 0, 1]]] * 5, "translations": [[[0, 0, 0]]] * 5}
    src, dst = tmp_path / "src.a2f.json", tmp_path / "dst.a2f.json"
    src.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="skipping 1 non-ARKit pose: TongueTipUp"):
        frames = list(read_take(src))
    assert [f.t_ns for f in frames] == [round(i * 1e9 / 60) for i in range(5)]
    with open_writer(dst) as sink:
        for f in frames:
            sink.send(f)
    out = json.loads(dst.read_text())
    assert out["exportFps"] == 60.0 and out["facsNames"] == list(arkit.NAMES) and out["numFrames"] == 5
    for src_row, dst_row in zip(rows, out["weightMat"]):
        by_name = {arkit.from_pascal(n): v for n, v in zip(names, src_row) if n != "TongueTipUp"}
        np.testing.assert_allclose(dst_row, [by_name[n] for n in arkit.NAMES], atol=1e-6, rtol=0)
    assert 1.0625 in out["weightMat"][2] and -0.015625 in out["weightMat"][3]  # raw values outside [0, 1] kept
    assert frames[2].weight("jawOpen") == 1.0


@pytest.mark.parametrize(
    "doc, message",
    [
        ([1, 2], "expected a JSON object"),
        ({"exportFps": 30}, "missing 'facsNames'"),
        ({"exportFps": 0, "facsNames": [], "weightMat": [], "numPoses": 0, "numFrames": 0}, "positive frame rate"),
        ({"exportFps": "30", "facsNames": [], "weightMat": [], "numPoses": 0, "numFrames": 0}, "exportFps: expected"),
        ({"exportFps": 30, "facsNames": ["jawOpen"], "weightMat": [[0.1]], "numPoses": 2, "numFrames": 1},
         "numPoses is 2 but facsNames has 1"),
        ({"exportFps": 30, "facsNames": ["jawOpen"], "weightMat": [[0.1]], "numPoses": 1, "numFrames": 3},
         "numFrames is 3 but weightMat has 1"),
        ({"exportFps": 30, "facsNames": ["jawOpen"], "weightMat": [[0.1, 0.2]], "numPoses": 1, "numFrames": 1},
         r"weightMat\[0\]: expected 1 values, got 2"),
        ({"exportFps": 30, "facsNames": ["jawOpen"], "weightMat": [["a"]], "numPoses": 1, "numFrames": 1},
         r"weightMat\[0\]: expected numbers"),
        ({"exportFps": 30, "facsNames": ["jawOpen", "JawOpen"], "weightMat": [], "numPoses": 2, "numFrames": 0},
         "'jawOpen' appears twice"),
        ({"exportFps": 30, "facsNames": ["browLowerL", "jawDrop"], "weightMat": [], "numPoses": 2, "numFrames": 0},
         "no ARKit blendshape names"),
    ],
)
def test_bad_documents_are_input_errors(tmp_path, doc, message):
    path = tmp_path / "bad.a2f.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=message):
        list(read_a2f(path))


def test_nan_garbage_and_truncation(tmp_path):
    path = tmp_path / "n.a2f.json"
    path.write_text('{"exportFps": 30, "numPoses": 1, "numFrames": 1, "facsNames": ["jawOpen"], "weightMat": [[NaN]]}')
    with pytest.raises(InputError, match="NaN is not a number JSON allows"):
        list(read_a2f(path))
    path.write_text('{"exportFps": 30, "numPoses": 1, "numFrames": 1, "facsNames": ["jawOpen"], "weightMat": [[1e999]]}')
    with pytest.raises(InputError, match="finite"):
        list(read_a2f(path))
    path.write_text('{"exportFps": 30, "numPoses": 1, "numFr')
    with pytest.raises(InputError, match=r"n\.a2f\.json:1: not valid Audio2Face JSON"):
        list(read_a2f(path))
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not valid Audio2Face JSON"):
        list(read_a2f(path))


def test_writer_misuse_and_failure(tmp_path):
    path = tmp_path / "f.a2f.json"
    with pytest.raises(OutputError, match="not open"):
        A2fWriter(path).send(FaceFrame(t_ns=0))
    with pytest.raises(RuntimeError), A2fWriter(path) as sink:
        sink.send(FaceFrame(t_ns=0))
        raise RuntimeError("boom")
    assert not list(tmp_path.iterdir())  # nothing left behind
    with pytest.raises(InputError, match="fps"):
        A2fWriter(path, fps=-1)


def test_plain_json_is_recognised_by_its_keys(tmp_path):
    path = tmp_path / "export_bsweight.json"
    path.write_text(json.dumps({"exportFps": 30, "trackPath": "", "numPoses": 1, "numFrames": 1,
                                "facsNames": ["jawOpen"], "weightMat": [[0.25]]}))
    assert format_for(path, reading=True).name == "a2f"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (frame,) = read_take(path)
    assert frame.weight("jawOpen") == 0.25
    with pytest.raises(InputError, match="unsupported take format"):
        open_writer(tmp_path / "out.json")
