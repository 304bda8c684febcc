"""A local OpenAI-compatible chat-completions server on 127.0.0.1 (a real socket), for the LLM hook's tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import pytest

Respond = Callable[[dict], "tuple[int, bytes] | None"]


def completion(content: str) -> bytes:
    """A chat-completions response whose assistant message is ``content``."""
    return json.dumps({"id": "x", "object": "chat.completion", "model": "m",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}]}).encode()


class ChatServer:
    """Answers every POST with ``respond(request)``: ``(status, body)``, or None to close the socket.
    ``request`` is ``{"path", "auth", "body"}``; all of them are kept in ``requests``."""

    def __init__(self, respond: Respond) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                outer.requests.append(request)
                answer = respond(request)
                if answer is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                status, payload = answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def chat_server() -> Iterator[Callable[[Respond], ChatServer]]:
    """Start servers with ``chat_server(respond)``; they are closed after the test."""
    started: list[ChatServer] = []

    def start(respond: Respond) -> ChatServer:
        started.append(ChatServer(respond))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def chat_completion() -> Callable[[str], bytes]:
    return completion
