"""The web studio: an HTTP + WebSocket app (FastAPI on uvicorn) and the page it serves at ``/``.

The page streams webcam JPEGs and microphone PCM to the server; each WebSocket is one
`facewire.server.session.StudioSession` that tracks / lip-syncs and streams `FaceFrame`s back in
the WebSocket sink's JSON schema. ``facewire serve`` runs it (`facewire.server.commands`), its
sessions tracked in worker processes (`facewire.server.workers`); `facewire.server.loadgen` is a load
generator of many 30 fps webcam sessions (``facewire bench serve``).
Importing this package stays light: FastAPI is imported by `facewire.server.app` only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["StudioConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
