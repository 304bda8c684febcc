"""An optional LLM hook: any OpenAI-compatible chat-completions endpoint writes the agent's reply
and names the emotion to show, with the local analyser as the fallback for every failure.

The request asks for one JSON object ``{"reply": str, "emotion": one of emotion.EMOTIONS,
"intensity": 0..1}`` (``response_format: {"type": "json_object"}``; a server that rejects that field
with a 400 is asked once more without it). The answer is parsed robustly: the first JSON object in
the message content, code fences and chatter around it ignored; emotion names go through
`emotion.emotion_name` (so "happy" is happiness).

Failures and what happens (stdlib ``urllib`` only, no extra dependency):

=============================================  ==============================================
failure                                        handling
=============================================  ==============================================
connection refused / reset / closed, timeout   retried up to ``retries`` times, backoff
HTTP 5xx, 429                                  ``backoff_s · 2^k`` between tries, then fallback
HTTP 4xx                                       fallback at once (the request will not improve)
not JSON, no reply, unknown emotion label      fallback
response over ``max_response_bytes``           fallback (reading stops at the limit)
=============================================  ==============================================

Fallback: `affect.ConversationAffect` on the user's text (and the reply the caller has, if any);
the result says ``source="local"`` and why. An LLM label of a hostile emotion (anger, contempt,
disgust) is shown as calm concern, as the conversation rules do. Configuration comes from arguments,
else ``FACEWIRE_LLM_BASE_URL``, ``FACEWIRE_LLM_MODEL`` and ``FACEWIRE_LLM_API_KEY``; the key is sent
as a bearer token and never printed (not in ``repr``, errors or results).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import InputError
from .affect import ConversationAffect
from .emotion import EMOTIONS, AgentExpression, emotion_name

__all__ = ["ENV_API_KEY", "ENV_BASE_URL", "ENV_MODEL", "SYSTEM_PROMPT", "LLMAffect", "LLMConfig", "LLMError", "LLMResult"]

ENV_BASE_URL = "FACEWIRE_LLM_BASE_URL"
ENV_MODEL = "FACEWIRE_LLM_MODEL"
ENV_API_KEY = "FACEWIRE_LLM_API_KEY"

SYSTEM_PROMPT = (
    "You are the voice of an animated avatar in a spoken conversation. Answer the user briefly and "
    "naturally. Respond with one JSON object only, no other text: "
    '{"reply": "<what the avatar says>", "emotion": "<one of: ' + ", ".join(EMOTIONS) + '>", '
    '"intensity": <0 to 1>}. The emotion is the facial expression the avatar should show while saying '
    "the reply: stay calm (neutral, or sadness at low intensity for concern) when the user is hostile, "
    "show surprise at unexpected information, smile back at warmth."
)


class LLMError(Exception):
    """Why one attempt failed (kept inside this module: callers get a fallback, not this)."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to ask. ``base_url`` includes the API prefix (``http://127.0.0.1:8000/v1``)."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 0.5
    max_response_bytes: int = 1 << 20
    json_mode: bool = True
    temperature: float = 0.7

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or urlsplit(self.base_url).scheme not in ("http", "https") \
                or not urlsplit(self.base_url).netloc:
            raise InputError(f"LLM base URL: expected http(s)://host[:port][/prefix], got {self.base_url!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise InputError(f"LLM model: expected a model name, got {self.model!r}")
        for name in ("timeout_s", "backoff_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (name == "timeout_s" and value == 0):
                raise InputError(f"LLM {name}: expected a {'positive' if name == 'timeout_s' else 'non-negative'} number of seconds, got {value!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or not 0 <= self.retries <= 10:
            raise InputError(f"LLM retries: expected an integer in 0..10, got {self.retries!r}")
        if isinstance(self.max_response_bytes, bool) or not isinstance(self.max_response_bytes, int) or self.max_response_bytes < 1024:
            raise InputError(f"LLM max_response_bytes: expected an integer ≥ 1024, got {self.max_response_bytes!r}")

    @classmethod
    def from_env(cls, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 **options: object) -> LLMConfig:
        """Arguments first, then the ``FACEWIRE_LLM_*`` environment variables; `InputError` naming what is missing."""
        base_url = base_url or os.environ.get(ENV_BASE_URL)
        model = model or os.environ.get(ENV_MODEL)
        api_key = api_key or os.environ.get(ENV_API_KEY) or None
        missing = [what for what, value in ((f"base URL ({ENV_BASE_URL})", base_url), (f"model ({ENV_MODEL})", model)) if not value]
        if missing:
            raise InputError(f"LLM hook: expected a {' and a '.join(missing)}, got none")
        return cls(base_url, model, api_key, **options)  # type: ignore[arg-type]

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class LLMResult:
    """The reply (None when the LLM failed and the caller had none), the expression, and where they came from."""

    reply: str | None
    expression: AgentExpression
    source: str  # "llm" or "local"
    attempts: int
    error: str | None = None

    def to_json_dict(self) -> dict:
        d = {"reply": self.reply, "expression": self.expression.to_json_dict(), "source": self.source,
             "attempts": self.attempts}
        if self.error:
            d["error"] = self.error
        return d


def _first_json_object(content: str) -> dict:
    decoder = json.JSONDecoder()
    start = content.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(content, start)
        except json.JSONDecodeError:
            start = content.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = content.find("{", start + 1)
    raise LLMError(f"the message holds no JSON object ({content[:60]!r}…)", retry=False)


def parse_completion(body: bytes) -> tuple[str, str, float]:
    """(reply, emotion, intensity) from a chat-completions response body; `LLMError` if unusable."""
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LLMError(f"the response is not JSON ({exc.__class__.__name__})", retry=False) from None
    except (KeyError, IndexError, TypeError):
        raise LLMError("the response has no choices[0].message.content", retry=False) from None
    if not isinstance(content, str):
        raise LLMError(f"the message content is {type(content).__name__}, expected text", retry=False)
    obj = _first_json_object(content)
    reply, label = obj.get("reply"), obj.get("emotion")
    if not isinstance(reply, str) or not reply.strip():
        raise LLMError("the JSON has no reply text", retry=False)
    try:
        emotion = emotion_name(label)
    except InputError:
        raise LLMError(f"unknown emotion label {label!r}", retry=False) from None
    intensity = obj.get("intensity", 0.7)
    if isinstance(intensity, bool) or not isinstance(intensity, (int, float)) or not math.isfinite(intensity):
        intensity = 0.7
    return reply.strip(), emotion, min(1.0, max(0.0, float(intensity)))


class LLMAffect:
    """Asks the LLM for the reply and the emotion; falls back to `ConversationAffect` on any failure.

    ``conversation`` keeps the tension across turns for the fallback (and its rules guard the
    LLM's hostile labels). ``sleep`` is the backoff's wait (``time.sleep``).
    """

    def __init__(self, config: LLMConfig, *, conversation: ConversationAffect | None = None, sleep=time.sleep) -> None:
        if not isinstance(config, LLMConfig):
            raise InputError(f"LLM hook: expected an LLMConfig, got {type(config).__name__}")
        self.config = config
        self.conversation = conversation if conversation is not None else ConversationAffect()
        self._sleep = sleep
        self._json_mode = config.json_mode

    def __repr__(self) -> str:
        return f"LLMAffect({self.config.endpoint}, model={self.config.model!r})"

    def _post(self, payload: dict) -> bytes:
        c = self.config
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if c.api_key:
            headers["Authorization"] = f"Bearer {c.api_key}"
        request = urllib.request.Request(c.endpoint, data=json.dumps(payload).encode(), headers=headers, method="POST")
        deadline = time.monotonic() + c.timeout_s
        try:
            with urllib.request.urlopen(request, timeout=c.timeout_s) as response:
                chunks, size = [], 0
                while chunk := response.read(65536):
                    size += len(chunk)
                    if size > c.max_response_bytes:
                        raise LLMError(f"the response is over {c.max_response_bytes} bytes", retry=False)
                    if time.monotonic() > deadline:
                        raise LLMError(f"no complete response within {c.timeout_s:g} s", retry=True)
                    chunks.append(chunk)
                return b"".join(chunks)
        except urllib.error.HTTPError as exc:
            detail = exc.read(2048).decode("utf-8", "replace") if exc.fp is not None else ""
            if exc.code == 400 and self._json_mode and "response_format" in detail:
                raise LLMError("the server does not take response_format", retry=True) from None
            raise LLMError(f"HTTP {exc.code}", retry=exc.code >= 500 or exc.code == 429) from None
        except TimeoutError:
            raise LLMError(f"no response within {c.timeout_s:g} s", retry=True) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise LLMError(f"no response within {c.timeout_s:g} s", retry=True) from None
            what = type(reason).__name__ if isinstance(reason, BaseException) else str(reason)
            raise LLMError(f"cannot reach the server ({what})", retry=isinstance(reason, OSError)) from None
        except (ConnectionError, OSError) as exc:  # reset or closed mid-response; http.client's own errors
            raise LLMError(f"the connection failed ({type(exc).__name__})", retry=True) from None
        except http.client.HTTPException as exc:  # BadStatusLine, IncompleteRead …
            raise LLMError(f"the server broke the protocol ({type(exc).__name__})", retry=True) from None

    def respond(self, user_text: str, reply_text: str | None = None, history: list[dict] | None = None) -> LLMResult:
        """The reply and expression for the user's words; never raises for the server's failures."""
        if not isinstance(user_text, str) or not user_text.strip():
            raise InputError(f"user text: expected some words, got {user_text!r}")
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, *(history or []), {"role": "user", "content": user_text}]
        attempts, error = 0, None
        tries = self.config.retries + 1
        while attempts < tries:
            payload = {"model": self.config.model, "messages": messages, "temperature": self.config.temperature}
            if self._json_mode:
                payload["response_format"] = {"type": "json_object"}
            attempts += 1
            try:
                reply, emotion, intensity = parse_completion(self._post(payload))
            except LLMError as exc:
                error = str(exc)
                if "response_format" in error and self._json_mode:
                    self._json_mode = False  # ask again without it; this try does not count
                    attempts -= 1
                    continue
                if not exc.retry or attempts >= tries:
                    break
                self._sleep(self.config.backoff_s * 2 ** (attempts - 1))
                continue
            expression = self._guarded(emotion, intensity)
            self.conversation.respond(user_text, reply)  # keep the tension up to date for later fallbacks
            return LLMResult(reply, expression, "llm", attempts)
        expression = self.conversation.respond(user_text, reply_text)
        return LLMResult(reply_text, expression, "local", attempts, f"LLM failed after {attempts} attempt(s): {error}; used the local analyser")

    @staticmethod
    def _guarded(emotion: str, intensity: float) -> AgentExpression:
        if emotion in ("anger", "contempt", "disgust"):
            return AgentExpression("sadness", 0.2, reason=f"the LLM asked for {emotion}; shown as calm concern")
        return AgentExpression(emotion, intensity, reason="the LLM's label")
