"""Fixtures for the studio tests: the real app on uvicorn, on a real socket on 127.0.0.1, in a thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from facewire.server.app import StudioConfig, create_app, listen_socket


@dataclass
class RunningStudio:
    app: Any
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def studio(self) -> Any:
        return self.app.state.studio


@contextlib.contextmanager
def serve(config: StudioConfig) -> Iterator[RunningStudio]:
    """The studio app served by uvicorn (as ``facewire serve`` runs it) until the block ends."""
    import uvicorn

    app = create_app(config)
    sock = listen_socket("127.0.0.1", 0)  # Nagle off, as `facewire serve` does
    server = uvicorn.Server(uvicorn.Config(app, ws_max_size=config.limits.max_message_bytes,
                                           ws_per_message_deflate=False, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield RunningStudio(app, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def serve_studio():
    """``with serve_studio(StudioConfig(...)) as running:`` the app on uvicorn until the block ends."""
    return serve


@pytest.fixture(scope="session")
def three(skip_or_fail) -> Path:
    """three.js installed beside the page (``npm ci`` the first time), as ``facewire serve`` does."""
    from facewire.errors import ModelError
    from facewire.server.app import ensure_three

    try:
        return ensure_three()
    except ModelError as exc:
        skip_or_fail(f"three.js for the studio page is unavailable: {exc}")
