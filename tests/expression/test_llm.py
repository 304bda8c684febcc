"""The LLM hook against a local OpenAI-compatible server on 127.0.0.1 (a real socket): success,
JSON mode, retries with backoff, and fallback to the local analyser for every failure."""

from __future__ import annotations

import json
import time

import pytest

from facewire.errors import InputError
from facewire.expression.llm import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
    LLMAffect,
    LLMConfig,
)

KEY = "sk-test-secret-123"


def completion(content: str) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "model": "m",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}]}).encode()


GOOD = completion('```json\n{"reply": "Oh wow, congratulations!", "emotion": "surprised", "intensity": 0.8}\n```')


BEHAVIOURS = {
    "ok": (200, GOOD), "slow": (200, GOOD), "500": (500, b'{"error": "boom"}'),
    "401": (401, b'{"error": {"message": "bad key"}}'),
    "garbage": (200, b"<html>not json"),
    "chatter": (200, completion("Sure! I feel happy about that.")),
    "label": (200, completion('{"reply": "Hm.", "emotion": "bemused"}')),
    "angry": (200, completion('{"reply": "How dare you.", "emotion": "anger", "intensity": 1}')),
    "huge": (200, completion('{"reply": "' + "a" * 300_000 + '", "emotion": "happiness"}')),
    "no-format": (400, b'{"error": {"message": "response_format is not supported"}}'),
}


def scripted(*behaviours: str):
    """Answers with the next scripted behaviour (the last one repeats); "close" drops the socket."""
    queue = list(behaviours)

    def respond(request: dict):
        what = queue.pop(0) if len(queue) > 1 else queue[0]
        if what == "close":
            return None
        if what == "slow":
            time.sleep(1.0)
        return BEHAVIOURS[what]

    return respond


@pytest.fixture
def server(request, chat_server):
    return chat_server(scripted(*request.param))


def hook(url: str, **options) -> tuple[LLMAffect, list[float]]:
    waits: list[float] = []
    config = LLMConfig(url, "test-model", KEY, **{"timeout_s": 0.3, "retries": 2, "backoff_s": 0.01, **options})
    return LLMAffect(config, sleep=waits.append), waits


@pytest.mark.parametrize("server", [("ok",)], indirect=True)
def test_success_speaks_the_protocol(server):
    llm, waits = hook(server.url)
    result = llm.respond("I won the lottery!")
    assert result.source == "llm" and result.reply == "Oh wow, congratulations!"
    assert result.expression.emotion == "surprise" and result.expression.intensity == pytest.approx(0.8)
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == f"Bearer {KEY}"
    assert sent["body"]["model"] == "test-model" and sent["body"]["response_format"] == {"type": "json_object"}
    assert sent["body"]["messages"][-1] == {"role": "user", "content": "I won the lottery!"}
    assert waits == [] and KEY not in repr(llm) and KEY not in repr(llm.config)
    assert KEY not in json.dumps(result.to_json_dict())


@pytest.mark.parametrize("server", [("500", "500", "ok")], indirect=True)
def test_500_is_retried_with_backoff_then_succeeds(server):
    llm, waits = hook(server.url)
    result = llm.respond("Hello there")
    assert result.source == "llm" and result.attempts == 3 and len(server.requests) == 3
    assert waits == [0.01, 0.02]


@pytest.mark.parametrize("server", [("slow",)], indirect=True)
def test_a_hanging_server_times_out_and_falls_back(server):
    llm, waits = hook(server.url, retries=1)
    result = llm.respond("Wow, it turns out I was adopted, I didn't know that!")
    assert result.source == "local" and "within" in result.error and result.attempts == 2 and waits == [0.01]
    assert result.expression.emotion == "surprise"  # the local rules still decide


@pytest.mark.parametrize("server", [("close",)], indirect=True)
def test_a_closed_socket_falls_back(server):
    llm, _ = hook(server.url)
    result = llm.respond("I'm furious with you!", "I'm sorry.")
    assert result.source == "local" and result.attempts == 3 and result.reply == "I'm sorry."
    assert result.expression.emotion not in ("anger", "contempt", "disgust")


@pytest.mark.parametrize("server, why", [(("garbage",), "not JSON"), (("chatter",), "no JSON object"),
                                         (("label",), "unknown emotion"), (("huge",), "over"),
                                         (("401",), "HTTP 401")], indirect=["server"])
def test_unusable_answers_fall_back_at_once(server, why):
    llm, waits = hook(server.url, max_response_bytes=100_000)
    result = llm.respond("Thank you, that's lovely!")
    assert result.source == "local" and why in result.error and result.attempts == 1 and waits == []
    assert result.expression.emotion == "happiness"


@pytest.mark.parametrize("server", [("no-format", "ok")], indirect=True)
def test_a_server_without_json_mode_is_asked_again_without_it(server):
    llm, _ = hook(server.url)
    assert llm.respond("Hi").source == "llm"
    assert "response_format" in server.requests[0]["body"] and "response_format" not in server.requests[1]["body"]


@pytest.mark.parametrize("server", [("angry",)], indirect=True)
def test_a_hostile_label_is_shown_calm(server):
    llm, _ = hook(server.url)
    result = llm.respond("You are useless.")
    assert result.source == "llm" and result.reply == "How dare you." and result.expression.emotion == "sadness"


def test_connection_refused_falls_back(chat_server):
    s = chat_server(scripted("ok"))
    url = s.url
    s.close()  # nothing listens on that port now
    llm, waits = hook(url, retries=1)
    result = llm.respond("I miss her so much.")
    assert result.source == "local" and "cannot reach" in result.error and len(waits) == 1


def test_config_from_environment_and_errors(monkeypatch):
    monkeypatch.setenv(ENV_BASE_URL, "http://127.0.0.1:9/v1")
    monkeypatch.setenv(ENV_MODEL, "m")
    monkeypatch.setenv(ENV_API_KEY, KEY)
    config = LLMConfig.from_env()
    assert config.endpoint == "http://127.0.0.1:9/v1/chat/completions" and config.api_key == KEY and KEY not in repr(config)
    assert LLMConfig.from_env(model="other").model == "other"
    monkeypatch.delenv(ENV_MODEL)
    with pytest.raises(InputError, match="FACEWIRE_LLM_MODEL"):
        LLMConfig.from_env()
    with pytest.raises(InputError, match="base URL"):
        LLMConfig("ftp://x", "m")
    with pytest.raises(InputError, match="retries"):
        LLMConfig("http://x", "m", retries=-1)
