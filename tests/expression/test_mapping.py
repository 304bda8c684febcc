"""User mapping files: hand-computed evaluation, curves, chaining, validation messages, stage and CSV writer."""

import csv
import json

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.expression.mapping import (
    EXTRAS_PREFIX,
    RetargetCsvWriter,
    RetargetStage,
    RigMapping,
    load_mapping,
)
from facewire.frame import FaceFrame
from facewire.pipeline import Stage
from facewire.retarget import SCHEMAS

I = arkit.INDEX

RIG = {
    "version": 1,
    "targets": {
        "MouthOpen": {"sum": {"jawOpen": 1.0, "mouthLowerDownLeft": 0.5}, "gain": 2.0, "offset": -0.1, "clamp": [0, 0.9]},
        "Smile": {"sum": {"MouthSmileLeft": 0.5, "mouthSmileRight": 0.5}, "curve": {"gamma": 2.0}},
        "Blink": {"sum": {"eyeBlinkLeft": 1.0}, "curve": {"points": [[0, 0], [0.5, 0.1], [1, 1]]}},
        "HappyBlink": {"sum": {"Smile": 1.0, "Blink": 0.5}},
    },
}


weights = arkit.weights_of


def test_evaluation_by_hand():
    rig = RigMapping.from_dict(RIG)
    assert rig.names == ("MouthOpen", "Smile", "Blink", "HappyBlink")
    w = weights(jawOpen=0.2, mouthLowerDownLeft=0.2, mouthSmileLeft=0.6, mouthSmileRight=0.2, eyeBlinkLeft=0.75)
    out = rig.evaluate(FaceFrame(t_ns=0, weights=w))
    assert out["MouthOpen"] == pytest.approx(2.0 * (0.2 + 0.5 * 0.2) - 0.1)  # 0.5, inside the clamp
    assert out["Smile"] == pytest.approx(0.4 ** 2)
    assert out["Blink"] == pytest.approx(0.1 + (0.75 - 0.5) / 0.5 * 0.9)  # on the second segment
    assert out["HappyBlink"] == pytest.approx(0.16 + 0.5 * 0.55)  # chained, then clamped to [0, 1]
    assert rig.evaluate(FaceFrame(t_ns=0, weights=weights(jawOpen=1.0)))["MouthOpen"] == pytest.approx(0.9)  # clamp


def test_apply_vectorised_matches_frame_by_frame():
    rig = RigMapping.from_dict(RIG)
    rng = np.random.default_rng(0)
    w = rng.random((50, arkit.COUNT)).astype(np.float32)
    batch = rig.apply(w)
    assert batch.shape == (50, 4)
    for row, expected in zip(w, batch):
        np.testing.assert_allclose(list(rig.evaluate(FaceFrame(t_ns=0, weights=row)).values()), expected, atol=1e-12)


def test_json_and_yaml_files(tmp_path):
    j = tmp_path / "rig.json"
    j.write_text(json.dumps(RIG))
    y = tmp_path / "rig.yaml"
    y.write_text("version: 1\ntargets:\n  Open:\n    sum: {jawOpen: 1.0}\n    gain: 0.5\n")
    assert load_mapping(j).names == tuple(RIG["targets"])
    assert load_mapping(y).apply(weights(jawOpen=0.8)) == pytest.approx([0.4])


@pytest.mark.parametrize("targets, message", [
    ({"A": {"sum": {"jawOpn": 1}}}, r"rig\.json: target 'A' sum: unknown source 'jawOpn' \(did you mean 'jawOpen'\?\)"),
    ({"A": {"sum": {"jawOpen": "1"}}}, r"target 'A' sum\['jawOpen'\]: expected a finite number, got '1'"),
    ({"A": {"sum": {"jawOpen": 1}, "gain": float("nan")}}, r"target 'A' gain: expected a finite number"),
    ({"A": {"sum": {}}}, r"target 'A' sum: expected a non-empty object"),
    ({"A": {"sum": {"jawOpen": 1}, "gian": 2}}, r"target 'A': unknown field 'gian'"),
    ({"A": {"sum": {"jawOpen": 1}, "clamp": [1, 0]}}, r"target 'A' clamp: expected low ≤ high"),
    ({"A": {"sum": {"jawOpen": 1}, "curve": {"gamma": 0}}}, r"curve gamma: expected a number in \[0.05, 20\]"),
    ({"A": {"sum": {"jawOpen": 1}, "curve": {"points": [[0, 0], [0, 1]]}}}, r"curve points: expected strictly increasing x"),
    ({"A": {"sum": {"jawOpen": 1}, "curve": {"spline": 1}}}, r"curve: expected"),
    ({"A": {"sum": {"B": 1}}, "B": {"sum": {"C": 1}}, "C": {"sum": {"A": 1}}}, r"expected no cycles between targets, got A → B → C → A"),
    ({"jawOpen": {"sum": {"jawOpen": 1}}}, r"target 'jawOpen': expected a name that is not an ARKit shape"),
    ({}, r"targets: expected a non-empty object"),
])
def test_malformed_mappings_say_what_is_wrong(tmp_path, targets, message):
    path = tmp_path / "rig.json"
    path.write_text(json.dumps({"version": 1, "targets": targets}))
    with pytest.raises(InputError, match=message):
        load_mapping(path)


def test_unreadable_files_and_syntax_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_mapping(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"targets": {')
    with pytest.raises(InputError, match="expected JSON, got a syntax error at line 1"):
        load_mapping(bad)
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("targets: [\n")
    with pytest.raises(InputError, match="expected YAML"):
        load_mapping(bad_yaml)
    with pytest.raises(InputError, match="version: expected 1, got 2"):
        RigMapping.from_dict({"version": 2, "targets": RIG["targets"]})
    with pytest.raises(InputError, match="top level: expected an object"):
        RigMapping.from_dict([1, 2])


def test_stage_puts_values_in_extras_and_never_mutates():
    stage = RetargetStage(RigMapping.from_dict(RIG))
    assert isinstance(stage, Stage)
    frame = FaceFrame(t_ns=5, weights=weights(jawOpen=0.3))
    before = frame.to_json()
    out = stage.process(frame)
    assert frame.to_json() == before
    np.testing.assert_array_equal(out.weights, frame.weights)
    assert out.extras[EXTRAS_PREFIX + "MouthOpen"] == pytest.approx(0.5)
    vrm = RetargetStage("vrm1").process(frame)
    assert vrm.extras["rig.aa"] > 0.2
    with pytest.raises(InputError, match="expected a RigMapping or one of vrm0, vrm1"):
        RetargetStage("fbx")


@pytest.mark.parametrize("target", ["custom", *SCHEMAS])
def test_csv_writer_has_the_rigs_columns(tmp_path, target):
    rig = RigMapping.from_dict(RIG) if target == "custom" else target
    path = tmp_path / "out.csv"
    frames = [FaceFrame(t_ns=i * 10**9 // 60, weights=weights(jawOpen=i / 10)) for i in range(10)]
    with RetargetCsvWriter(path, rig) as writer:
        for f in frames:
            writer.send(f)
    rows = list(csv.reader(path.open()))
    names = RigMapping.from_dict(RIG).names if target == "custom" else SCHEMAS[target].names
    assert rows[0] == ["time_s", *names] and len(rows) == 11
    assert float(rows[2][0]) == pytest.approx(1 / 60, abs=1e-6)


def test_csv_writer_discards_a_failed_take(tmp_path):
    path = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), RetargetCsvWriter(path, "vrm0") as writer:
        writer.send(FaceFrame(t_ns=0))
        raise RuntimeError("boom")
    assert not path.exists() and not list(tmp_path.iterdir())


# -- facewire retarget ------------------------------------------------------------------------------------
def test_cli_retarget_with_a_mapping_and_a_schema(tmp_path, capsys):
    from facewire.cli import main
    from facewire.takes import open_writer

    take, rig_file = tmp_path / "take.jsonl", tmp_path / "rig.json"
    rig_file.write_text(json.dumps(RIG))
    with open_writer(take) as writer:
        for i in range(30):
            writer.send(FaceFrame(t_ns=i * 10**9 // 30, seq=i, weights=weights(jawOpen=i / 30, eyeBlinkLeft=0.8)))
    out = tmp_path / "rig.csv"
    assert main(["retarget", str(take), str(out), "--map", str(rig_file)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["time_s", "MouthOpen", "Smile", "Blink", "HappyBlink"] and len(rows) == 31
    assert float(rows[16][1]) == pytest.approx(2.0 * 15 / 30 - 0.1, abs=1e-5)
    assert main(["retarget", str(take), str(tmp_path / "mh.csv"), "--to", "metahuman"]) == 0
    assert "CTRL_expressions_jawOpen" in (tmp_path / "mh.csv").read_text().splitlines()[0]
    capsys.readouterr()
    rig_file.write_text(json.dumps({"targets": {"A": {"sum": {"jawOpn": 1}}}}))
    assert main(["retarget", str(take), str(tmp_path / "bad.csv"), "--map", str(rig_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown source 'jawOpn' (did you mean 'jawOpen'?)" in err
    assert not (tmp_path / "bad.csv").exists()
    assert main(["retarget", str(take), str(tmp_path / "x.txt"), "--to", "vrm1"]) == 2
