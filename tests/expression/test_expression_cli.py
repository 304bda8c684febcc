"""``facewire emote`` and ``facewire affect``: takes written and read back, JSON out, one-line errors."""

from __future__ import annotations

import json

import numpy as np

from facewire import arkit
from facewire.cli import main
from facewire.expression.face_affect import classify
from facewire.takes import read_take


def test_emote_writes_a_take_with_the_episode_blinks_and_gaze(tmp_path, capsys):
    out = tmp_path / "take.csv"
    rc = main(["emote", "surprise", "--intensity", "0.9", "--onset", "0.3", "--apex", "1", "--offset", "0.5",
               "--start", "0.2", "--fps", "30", "--duration", "3", "--seed", "3", "--out", str(out)])
    assert rc == 0
    frames = list(read_take(out))
    assert len(frames) == 91 and frames[1].t_ns == round(1e9 / 30)
    apex = [f for f in frames if 0.55 <= f.t_s <= 1.45]
    assert all(classify(f.weights)[0] == "surprise" for f in apex if f.weight("eyeBlinkLeft") < 0.1)
    assert frames[0].weight("browOuterUpLeft") == 0 and frames[-1].weight("browOuterUpLeft") < 0.01
    look = np.array([[f.weight(n) for n in arkit.NAMES if n.startswith("eyeLook")] for f in frames])
    assert look.any()  # the gaze layer moved the eyes
    assert "read back as surprise" in capsys.readouterr().err


def test_emote_blend_and_layers_off(tmp_path):
    out = tmp_path / "take.jsonl"
    assert main(["emote", "happy", "--blend", "surprise:0.7", "--no-blink", "--no-gaze", "--quiet",
                 "--start", "0", "--onset", "0.2", "--out", str(out)]) == 0
    frames = list(read_take(out))
    top = max(frames, key=lambda f: f.weight("mouthSmileLeft"))
    assert top.weight("mouthSmileLeft") > 0.8 and top.weight("browOuterUpLeft") > 0.5
    assert all(f.weight("eyeBlinkLeft") == 0 for f in frames)


def test_emote_errors_are_one_line(tmp_path, capsys):
    for argv, words in ((["emote", "rage"], "emotion"), (["emote", "fear", "--intensity", "2"], "intensity"),
                        (["emote", "fear", "--blend", "surprise:x"], "--blend"),
                        (["emote", "fear", "--fps", "0"], "--fps")):
        assert main([*argv, "--out", str(tmp_path / "x.csv")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("facewire: error:") and words in err and "\n" not in err
    assert main(["emote", "fear", "--out", str(tmp_path / "x.weird")]) == 2
    assert not (tmp_path / "x.csv").exists()


def test_affect_prints_json(capsys):
    assert main(["affect", "Wow, I didn't know that!", "--reply", "Neither did I."]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["affect"]["emotion"] == "surprise" and out["agent"]["emotion"] == "surprise" and out["source"] == "local"


def test_affect_demo_is_calm_when_tense_and_surprised_at_news(capsys):
    assert main(["affect", "--demo"]) == 0
    turns = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    hostile = [t for t in turns if t["user_affect"]["emotion"] in ("anger", "contempt")]
    assert hostile and all(t["agent"]["emotion"] not in ("anger", "contempt", "disgust") for t in hostile)
    assert any(t["user_affect"]["emotion"] == "surprise" and t["agent"]["emotion"] == "surprise" for t in turns)
    assert turns[0]["agent"]["emotion"] == "happiness"


def test_affect_llm_falls_back_when_nothing_listens(capsys, monkeypatch):
    import socket

    with socket.socket() as s:  # a port that is free, so the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FACEWIRE_LLM_MODEL", "m")
    assert main(["affect", "I'm scared.", "--llm-url", f"http://127.0.0.1:{port}/v1", "--llm-timeout", "0.5"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["source"] == "local" and "cannot reach" in out["error"] and "warning" in captured.err
    assert main(["affect", ""]) == 2
