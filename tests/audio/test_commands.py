"""`facewire say`, `facewire lipsync` and `facewire listen` end to end through `facewire.cli.main`."""

from __future__ import annotations

import json
import wave

import pytest

from facewire.cli import main
from facewire.takes import read_take


def test_say_writes_take_and_audio(tmp_path, capsys):
    take, audio = tmp_path / "take.csv", tmp_path / "speech.wav"
    assert main(["say", "Hello there, Bob.", "--rate", "160", "--out", str(take), "--audio-out", str(audio)]) == 0
    with wave.open(str(audio)) as w:
        seconds = w.getnframes() / w.getframerate()
    frames = list(read_take(str(take)))
    assert abs(len(frames) - seconds * 60) <= 1
    assert max(f.weight("jawOpen") for f in frames) > 0.2
    assert "said" in capsys.readouterr().err


def test_say_refuses_bad_take_suffix_and_writes_nothing(tmp_path, capsys):
    assert main(["say", "hi", "--out", str(tmp_path / "take.xyz"), "--audio-out", str(tmp_path / "a.wav")]) == 2
    assert "unsupported take format" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_lipsync_file_to_stdout_and_csv(tmp_path, capsys):
    audio = tmp_path / "speech.wav"
    assert main(["say", "Move the map to Pam.", "--out", str(tmp_path / "t.jsonl"), "--audio-out", str(audio),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["lipsync", str(audio), "--out", "-", "--fps", "30"]) == 0
    lines = capsys.readouterr().out.splitlines()
    first = json.loads(lines[0])
    assert first["source"] == "lipsync" and len(first["weights"]) == 52
    text = tmp_path / "t.txt"
    text.write_text("Move the map to Pam.")
    assert main(["lipsync", str(audio), "--text-file", str(text), "--out", str(tmp_path / "l.csv")]) == 0
    assert abs(len(list(read_take(str(tmp_path / "l.csv")))) - 2 * len(lines)) <= 2


def test_lipsync_bad_input_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert main(["lipsync", str(empty), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "empty file" in err
    assert not (tmp_path / "x.csv").exists()


def test_listen_without_a_microphone_is_a_device_error(capsys):
    try:
        import sounddevice

        if any(d["max_input_channels"] > 0 for d in sounddevice.query_devices()):
            pytest.skip("this machine has a microphone")
    except OSError:
        pass  # no PortAudio: exactly the case under test
    assert main(["listen", "--duration", "0.5", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "microphone" in err


def test_lipsync_corrupt_header_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\xff" * 40)
    assert main(["lipsync", str(bad), "--text", "hello", "--out", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.wav" in err
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("flags,message", [
    (["--duration", "0"], "--duration: expected a number of seconds > 0, got 0"),
    (["--duration", "nan"], "--duration: expected a number of seconds > 0, got nan"),
    (["--out", "take.xyz"], "unsupported take format"),
])
def test_listen_bad_flags_fail_before_the_microphone_opens(capsys, flags, message):
    assert main(["listen", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "microphone" not in err
