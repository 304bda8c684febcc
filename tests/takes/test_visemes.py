"""OVR viseme timelines: golden text, round trips within 1e-6, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facewire.errors import InputError
from facewire.frame import FaceFrame
from facewire.mouth import VISEMES, visemes_to_arkit
from facewire.takes import format_for, open_writer, read_take
from facewire.takes.visemes import VisemesWriter, read_visemes


def _doc(frames, names=VISEMES, start_ns=0) -> str:
    return json.dumps({"format": "facewire-visemes", "version": 1, "visemes": list(names),
                       "start_ns": start_ns, "frames": frames})


def test_golden_output(tmp_path):
    path = tmp_path / "g.visemes.json"
    aa = np.zeros(15)
    aa[VISEMES.index("aa")] = 1.0
    with VisemesWriter(path) as sink:
        sink.send(FaceFrame(t_ns=5_000_000_000))
        sink.send(FaceFrame(t_ns=5_033_333_333, weights=visemes_to_arkit(aa)))
        sink.send(FaceFrame.untracked(5_066_666_667))
    names = ", ".join(f'"{v}"' for v in VISEMES)
    sil = "1.0, " + ", ".join(["0.0"] * 14)
    only_aa = ", ".join(["0.0"] * 10 + ["1.0"] + ["0.0"] * 4)
    assert path.read_text() == (
        "{\n"
        '"format": "facewire-visemes", "version": 1,\n'
        f'"visemes": [{names}],\n'
        '"start_ns": 5000000000,\n'
        '"frames": [\n'
        f'  {{"t": 0.000000000, "w": [{sil}]}},\n'
        f'  {{"t": 0.033333333, "w": [{only_aa}]}},\n'
        f'  {{"t": 0.066666667, "w": [{sil}]}}\n'
        "]\n}\n"
    )
    back = list(read_take(path))
    assert [f.t_ns for f in back] == [5_000_000_000, 5_033_333_333, 5_066_666_667]


def test_timeline_round_trips_within_1e6(tmp_path):
    rng = np.random.default_rng(11)
    rows = [rng.dirichlet(np.full(15, c)).tolist() for c in (0.05, 0.2, 1.0, 4.0) for _ in range(25)]
    src, dst = tmp_path / "src.visemes.json", tmp_path / "dst.visemes.json"
    src.write_text(_doc([{"t": round(i / 60, 9), "w": w} for i, w in enumerate(rows)], start_ns=123))
    with open_writer(dst) as sink:
        for frame in read_take(src):
            sink.send(frame)
    out = json.loads(dst.read_text())
    assert out["start_ns"] == 123
    assert [f["t"] for f in out["frames"]] == [round(i / 60, 9) for i in range(len(rows))]
    np.testing.assert_allclose([f["w"] for f in out["frames"]], rows, atol=1e-6, rtol=0)


def test_names_by_name_and_missing_names_read_as_zero(tmp_path):
    path = tmp_path / "n.visemes.json"
    path.write_text(_doc([{"t": 0, "w": [0.25, 0.75]}], names=["ou", "sil"]))
    (frame,) = read_visemes(path)
    expected = np.zeros(15)
    expected[VISEMES.index("ou")] = 0.25
    assert frame.weights.tobytes() == visemes_to_arkit(expected).tobytes()


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"format": "other"}', 'expected "format": "facewire-visemes"'),
        ('{"format": "facewire-visemes", "version": 2}', "version 1, got 2"),
        (_doc([], names=["sil", "xx"]), "unknown viseme name 'xx'"),
        (_doc([], names=["sil", "sil"]), "appears twice"),
        (_doc([{"t": 0}]), r"frames\[0\]: expected an object with 't' and 'w'"),
        (_doc([{"t": "0", "w": [0] * 15}]), r"frames\[0\]\.t: expected seconds"),
        (_doc([{"t": 0, "w": [0] * 14}]), r"frames\[0\]\.w: expected 15 weights"),
        (_doc([{"t": 0, "w": [-1] + [0] * 14}]), r"expected finite weights ≥ 0"),
        (_doc([{"t": 0, "w": [True] + [0] * 14}]), r"expected finite weights ≥ 0"),
        ('{"format": "facewire-visemes", "version": 1, "visemes": [], "frames": [], "start_ns": 1.5}', "start_ns"),
        ('{"format": ', "not valid viseme timeline JSON"),
    ],
)
def test_bad_files(tmp_path, text, message):
    path = tmp_path / "bad.visemes.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        list(read_visemes(path))


def test_plain_json_is_recognised(tmp_path):
    path = tmp_path / "speech.json"
    path.write_text(_doc([{"t": 0, "w": [1] + [0] * 14}]))
    assert format_for(path, reading=True).name == "visemes"
    assert len(list(read_take(path))) == 1
