"""``facewire animate``: speech on the mouth while the audio is voiced, plausible blinks, the text's
emotion on brows and cheeks, repeatable with a seed, and the LLM hook against a local server."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from facewire import arkit
from facewire.cli import main
from facewire.errors import InputError
from facewire.expression import stats
from facewire.expression.animate import animate_text
from facewire.takes import read_take

I = arkit.INDEX
SURPRISE = "I can't believe you did that!"
NEUTRAL = "The box is on the table by the door."
HAPPY = "That is wonderful, thank you so much, I love it!"


def w(take, name: str) -> np.ndarray:
    return np.array([f.weights[I[name]] for f in take.frames], dtype=np.float64)


def during_speech(take) -> np.ndarray:
    t = np.arange(len(take.frames)) / take.fps
    return (t >= take.speech_start_s + 0.4) & (t < take.speech_end_s)


@pytest.fixture(scope="module")
def takes():
    return {text: animate_text(text) for text in (SURPRISE, NEUTRAL, HAPPY)}


def test_speech_moves_the_mouth_while_the_audio_is_voiced(takes):
    take = takes[SURPRISE]
    hop = take.sample_rate / take.fps
    rms = np.array([np.sqrt(np.mean(take.samples[round(i * hop):round((i + 1) * hop)] ** 2) + 1e-12)
                    for i in range(len(take.frames))])
    voiced = rms > 0.1 * rms.max()
    jaw = w(take, "jawOpen")
    t = np.arange(len(take.frames)) / take.fps
    assert voiced.sum() > 0.3 * take.fps  # the voice is there
    assert not voiced[t < take.speech_start_s - 0.02].any()  # and starts after the lead-in
    assert jaw[voiced].mean() > 0.15 and jaw[t < take.speech_start_s - 0.1].max() < 0.02
    assert np.corrcoef(jaw, rms)[0, 1] > 0.4
    calm = takes[NEUTRAL]  # (the surprise itself drops the jaw once the speech is over)
    t = np.arange(len(calm.frames)) / calm.fps
    assert w(calm, "jawOpen")[t > calm.speech_end_s + 0.2].max() < 0.05  # the mouth settles after the utterance


def test_the_texts_emotion_shows_on_brows_and_cheeks(takes):
    surprise, neutral, happy = takes[SURPRISE], takes[NEUTRAL], takes[HAPPY]
    assert (surprise.expression.emotion, neutral.expression.emotion, happy.expression.emotion) == \
        ("surprise", "neutral", "happiness")
    brow = lambda take: w(take, "browInnerUp")[during_speech(take)].mean()
    wide = lambda take: w(take, "eyeWideLeft")[during_speech(take)].mean()
    cheek = lambda take: w(take, "cheekSquintLeft")[during_speech(take)].mean()
    assert brow(surprise) > brow(neutral) + 0.2
    assert wide(surprise) > wide(neutral) + 0.1
    assert cheek(happy) > cheek(neutral) + 0.2


def test_blinks_at_a_plausible_rate_and_phrase_end_blinks():
    take = animate_text(NEUTRAL, duration_s=60.0, seed=4)
    rec = stats.Recording.from_frames(take.frames)
    rate = stats.blink_stats([rec]).rate_per_min
    assert 8.0 <= rate <= 32.5  # conversation, Doughty 2001
    assert len(take.blink_onsets_s) == pytest.approx(rate, rel=0.3)


def test_a_seed_repeats_the_take_and_another_differs():
    from facewire.audio.tts import synthesize

    speech = synthesize("Hello there, how are you?")  # espeak-ng varies by a few samples between calls
    a, b, c = (animate_text(speech.text, speech=speech, duration_s=8.0, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(np.array([f.weights for f in a.frames]), np.array([f.weights for f in b.frames]))
    assert [f.gaze for f in a.frames] == [f.gaze for f in b.frames]
    assert not np.array_equal(np.array([f.weights for f in a.frames]), np.array([f.weights for f in c.frames]))


def test_bad_input_says_what_is_wrong():
    with pytest.raises(InputError, match="text: expected something to say"):
        animate_text("   ")
    with pytest.raises(InputError, match="duration: expected at least the"):
        animate_text("This sentence takes more than half a second to say.", duration_s=0.5)
    with pytest.raises(InputError, match="emotion: expected one of"):
        animate_text("Hello.", mood="grumpy")
    with pytest.raises(InputError, match="at most 20000 characters"):
        animate_text("word " * 5000)


# -- the CLI, and the LLM hook against a local OpenAI-compatible server ----------------------------------------
def wav_seconds(path) -> float:
    with wave.open(str(path)) as f:
        return f.getnframes() / f.getframerate()


def test_cli_writes_the_take_and_its_audio(tmp_path, capsys):
    out, audio = tmp_path / "take.csv", tmp_path / "speech.wav"
    assert main(["animate", "--text", SURPRISE, "--mood", "calm", "--seed", "3", "--out", str(out),
                 "--audio-out", str(audio)]) == 0
    frames = list(read_take(out))
    assert len(frames) / 60 == pytest.approx(wav_seconds(audio), abs=0.05)
    assert max(f.weight("jawOpen") for f in frames) > 0.3
    assert "showed surprise" in capsys.readouterr().err
    assert main(["animate", "--text", "Hi.", "--out", str(out), "--audio-out", str(out)]) == 2


def test_cli_llm_reply_is_spoken_with_its_emotion(tmp_path, capsys, chat_server, chat_completion):
    reply = "Oh wow, that is wonderful news, congratulations on winning!"
    out, audio = tmp_path / "take.jsonl", tmp_path / "speech.wav"
    answer = chat_completion(json.dumps({"reply": reply, "emotion": "happy", "intensity": 0.9}))
    with chat_server(lambda request: (200, answer)) as server:
        assert main(["animate", "--text", "Guess what, I won.", "--llm", server.url, "--llm-model", "m",
                     "--out", str(out), "--audio-out", str(audio)]) == 0
    assert server.requests[0]["body"]["messages"][-1] == {"role": "user", "content": "Guess what, I won."}
    err = capsys.readouterr().err
    assert repr(reply) in err and "happiness 0.90 (llm)" in err
    frames = list(read_take(out))
    assert wav_seconds(audio) > 3.0  # the long reply was spoken, not the three-word question
    cheeks = [f.weight("cheekSquintLeft") for f in frames]
    assert max(cheeks) > 0.4


def test_cli_llm_failure_falls_back_to_the_text_itself(tmp_path, capsys, chat_server):
    out = tmp_path / "take.csv"
    with chat_server(lambda request: (401, b'{"error": {"message": "nope"}}')) as server:
        assert main(["animate", "--text", SURPRISE, "--llm", server.url, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: LLM failed" in err and repr(SURPRISE) in err and "(local)" in err
    assert len(list(read_take(out))) > 60
