"""``facewire complete`` and ``facewire completion train`` through the real CLI entry point."""

from __future__ import annotations

import numpy as np
import pytest

from facewire import arkit
from facewire.cli import main
from facewire.expression import completion as C
from facewire.frame import FaceFrame
from facewire.takes import open_writer, read_take

SHORT_TAKE = "data/takes/jmtechart/MySlate_3_Jason_Millers_iPhone.csv"  # 5.5 s: brows, sneer, smile, funnel


def _frames(path) -> list[FaceFrame]:
    return list(read_take(str(path)))


@pytest.mark.parametrize("mode", ["lower", "eyes", "lower+eyes", "audio"])
def test_complete_keeps_observed_channels_and_reconstructs_hidden_ones(shared_file, tmp_path, capsys, mode):
    src = shared_file(SHORT_TAKE)
    out = tmp_path / "out.jsonl"
    assert main(["complete", str(src), str(out), "--observed", mode]) == 0
    assert f"complete ({mode}, whole take)" in capsys.readouterr().err
    before, after = _frames(src), _frames(out)
    assert len(before) == len(after)
    m = C.MODES[mode]
    w_in = np.array([f.weights for f in before])
    w_out = np.array([f.weights for f in after])
    np.testing.assert_array_equal(w_out[:, m.observed_index], w_in[:, m.observed_index])
    assert w_out[:, m.hidden_index].max() > 0.05  # something was reconstructed
    rest = sorted(set(range(arkit.COUNT)) - set(m.observed_index) - set(m.hidden_index)
                  - {arkit.INDEX[n] for n in m.procedural})
    assert not w_out[:, rest].any()  # what is neither observed nor reconstructed stays neutral
    if m.procedural:
        assert w_out[:, [arkit.INDEX[n] for n in m.procedural]].any()  # generated gaze and blinks


def test_complete_writes_other_formats(shared_file, tmp_path):
    out = tmp_path / "out.llf.csv"
    assert main(["complete", str(shared_file(SHORT_TAKE)), str(out), "--observed", "lower+eyes", "-q"]) == 0
    assert out.read_text().startswith("Timecode,")


def test_unknown_mode_is_a_clear_error(shared_file, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert main(["complete", str(shared_file(SHORT_TAKE)), str(out), "--observed", "brows"]) != 0
    err = capsys.readouterr().err
    assert "--observed: expected one of lower, eyes, lower+eyes, audio, got 'brows'" in err
    assert not out.exists()


def test_a_take_without_the_observed_channels_is_a_clear_error(tmp_path, capsys):
    take = tmp_path / "eyes_only.jsonl"
    with open_writer(take) as sink:
        for i in range(30):
            w = np.zeros(arkit.COUNT, np.float32)
            w[arkit.INDEX["eyeBlinkLeft"]] = 0.3
            sink.send(FaceFrame(t_ns=i * 33_333_333, weights=w))
    out = tmp_path / "out.jsonl"
    assert main(["complete", str(take), str(out), "--observed", "lower"]) != 0
    err = capsys.readouterr().err
    assert "expected the channels a 'lower' headset observes" in err and "got all zero or absent" in err
    assert not out.exists()
    assert main(["complete", str(take), str(out), "--observed", "eyes", "-q"]) == 0


def test_a_malformed_model_is_a_clear_error(shared_file, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 garbage")
    out = tmp_path / "out.jsonl"
    assert main(["complete", str(shared_file(SHORT_TAKE)), str(out), "--observed", "eyes", "--model", str(bad)]) != 0
    assert "not a facewire completion model" in capsys.readouterr().err
    assert not out.exists()


def test_train_then_complete_with_the_new_model(shared_file, tmp_path, capsys):
    src = shared_file(SHORT_TAKE)
    model = tmp_path / "m.npz"
    assert main(["completion", "train", str(src), "--out", str(model), "--observed", "eyes",
                 "--members", "1", "--epochs", "2"]) == 0
    assert "completion model (eyes) from 1 takes" in capsys.readouterr().err
    assert list(C.CompletionModel.load(model).networks) == ["eyes"]
    out = tmp_path / "out.jsonl"
    assert main(["complete", str(src), str(out), "--observed", "eyes", "--model", str(model), "-q"]) == 0
    assert main(["complete", str(src), str(out), "--observed", "lower", "--model", str(model)]) != 0
    assert "no network for mode 'lower'" in capsys.readouterr().err


def test_live_completion_streams_the_causal_networks(shared_file, tmp_path, capsys):
    src = shared_file(SHORT_TAKE)
    whole, live = tmp_path / "whole.jsonl", tmp_path / "live.jsonl"
    assert main(["complete", str(src), str(whole), "--observed", "lower+eyes", "-q"]) == 0
    assert main(["complete", str(src), str(live), "--observed", "lower+eyes", "--live"]) == 0
    assert "complete (lower+eyes, causal)" in capsys.readouterr().err
    m = C.MODES["lower+eyes"]
    a = np.array([f.weights for f in _frames(whole)])[:, m.hidden_index]
    b = np.array([f.weights for f in _frames(live)])[:, m.hidden_index]
    # the same networks' causal twin, streamed frame by frame as CompletionStage runs them
    stage = C.CompletionStage("lower+eyes")
    keep = np.zeros(arkit.COUNT, bool)
    keep[m.observed_index] = True
    streamed = np.array([stage.process(f.replace(weights=np.where(keep, f.weights, 0.0).astype(np.float32))).weights
                         for f in _frames(src)])[:, m.hidden_index]
    np.testing.assert_allclose(b, streamed, atol=1e-6)
    assert np.abs(a - b).max() > 0.01  # the whole-take reconstruction is another one


def test_a_model_without_live_networks_cannot_stream(shared_file, tmp_path, capsys):
    src = shared_file(SHORT_TAKE)
    model = tmp_path / "m.npz"
    assert main(["completion", "train", str(src), "--out", str(model), "--observed", "eyes",
                 "--members", "1", "--epochs", "1", "--no-live", "-q"]) == 0
    assert C.CompletionModel.load(model).live is None
    out = tmp_path / "out.jsonl"
    assert main(["complete", str(src), str(out), "--observed", "eyes", "--model", str(model), "--live"]) != 0
    assert "offline only" in capsys.readouterr().err
    assert not out.exists()


def test_train_rejects_a_missing_take(tmp_path, capsys):
    assert main(["completion", "train", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m.npz")]) != 0
    assert "expected a take file, got nothing" in capsys.readouterr().err
