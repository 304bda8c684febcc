"""WebSocket JSON stream: facewire serves its frames to every connected client (browser, studio, script).

`WebSocketSink` runs a small WebSocket server (the ``websockets`` package, asyncio on a background
thread) on ``host:port`` and answers only on its ``path`` (``ws://127.0.0.1:8765/``). Each frame
is encoded once and broadcast to every client. ``send`` never blocks the pipeline: it appends to a
bounded queue (1 or 2 frames, oldest dropped) and wakes the server thread; every client has its own
bounded queue (1 or 2 messages, oldest dropped and counted) and its own writer, so a slow client
loses frames without slowing the others. The kernel buffer behind each client is kept small
(``send_buffer_bytes``), so a slow client lags by a fraction of a second, not by minutes.

Schema, version 1 — every message is one JSON text message with ``"v": 1`` and a ``"type"``:

Server → client
  ``{"v":1,"type":"hello","server":"facewire 0.1.0","names":[52 ARKit names],"landmarks":false}``
      first, once per connection: the order of ``weights`` and whether frames carry landmarks.
  ``{"v":1,"type":"frame","t_ns":…,"seq":…,"source":"…","face":0,"tracked":true,"confidence":1.0,
  "weights":[52 numbers],"head":{"yaw_deg":…,"pitch_deg":…,"roll_deg":…,"x":…,"y":…,"z":…},
  "gaze":{"left_yaw_deg":…,"left_pitch_deg":…,"right_yaw_deg":…,"right_pitch_deg":…}}``
      one per frame: the fields of `FaceFrame.to_json_dict` (frame schema 1) at top level, plus
      ``capture_ns``, ``extras`` when the frame has them and ``landmarks`` (478 × [x, y, z]) only
      when the sink was made with ``landmarks=True``. `decode_message` turns it back into an equal
      `FaceFrame` (weights are float32 values, written so that they read back bit for bit).
  ``{"v":1,"type":"pong","id":…}``
      the answer to a client's ping; ``id`` is echoed when the ping had one.

Client → server
  nothing, WebSocket ping frames (answered by the protocol), or ``{"v":1,"type":"ping","id":…}``
  (``id`` optional: a string or a number) — at most ``max_message_bytes`` (default 1024) each and
  ``max_client_messages_per_s`` (default 20) a second. Anything else closes that client: 1009
  (message too big) for an oversized message, 1008 (policy violation) for a binary message,
  malformed JSON, an unknown type or a flood. Other clients never notice.

`SCHEMA` holds the same as a JSON Schema. `WebSocketReceiver` is the matching client: it connects
to a facewire server (or anyone speaking this schema) and yields the frames it receives.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Self

from .. import arkit
from ..errors import InputError, OutputError
from ..frame import SCHEMA_VERSION as FRAME_SCHEMA_VERSION
from ..frame import FaceFrame
from .udp import ReceiverStats

__all__ = [
    "DEFAULT_PORT",
    "SCHEMA",
    "SCHEMA_VERSION",
    "ClientStats",
    "WebSocketReceiver",
    "WebSocketSink",
    "WebSocketStats",
    "decode_message",
    "encode_frame",
    "frame_message",
]

SCHEMA_VERSION = 1
DEFAULT_PORT = 8765
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009

# websockets logs refused handshakes and failed connections; they go here, silent unless the
# application configures logging (the statistics count what matters).
_LOG = logging.getLogger("facewire.sinks.websocket")
_LOG.addHandler(logging.NullHandler())

_DEG = {"type": "number"}
SCHEMA: Mapping[str, Any] = MappingProxyType({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "facewire WebSocket stream, version 1 (server to client)",
    "oneOf": [
        {"type": "object", "required": ["v", "type", "server", "names", "landmarks"], "properties": {
            "v": {"const": 1}, "type": {"const": "hello"}, "server": {"type": "string"},
            "names": {"type": "array", "items": {"type": "string"}, "minItems": 52, "maxItems": 52},
            "landmarks": {"type": "boolean"}}},
        {"type": "object",
         "required": ["v", "type", "t_ns", "seq", "source", "face", "tracked", "confidence", "weights", "head", "gaze"],
         "properties": {
             "v": {"const": 1}, "type": {"const": "frame"},
             "t_ns": {"type": "integer", "description": "media time, nanoseconds"},
             "seq": {"type": "integer"}, "source": {"type": "string"}, "face": {"type": "integer"},
             "tracked": {"type": "boolean"}, "confidence": {"type": "number", "minimum": 0, "maximum": 1},
             "weights": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1},
                         "minItems": 52, "maxItems": 52, "description": "ARKit order, as in hello.names"},
             "head": {"type": "object", "required": ["yaw_deg", "pitch_deg", "roll_deg", "x", "y", "z"],
                      "properties": {"yaw_deg": _DEG, "pitch_deg": _DEG, "roll_deg": _DEG,
                                     "x": _DEG, "y": _DEG, "z": _DEG}},
             "gaze": {"type": "object",
                      "required": ["left_yaw_deg", "left_pitch_deg", "right_yaw_deg", "right_pitch_deg"],
                      "properties": {"left_yaw_deg": _DEG, "left_pitch_deg": _DEG,
                                     "right_yaw_deg": _DEG, "right_pitch_deg": _DEG}},
             "capture_ns": {"type": "integer", "description": "monotonic capture time, for latency"},
             "landmarks": {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                                      "minItems": 3, "maxItems": 3}},
             "extras": {"type": "object", "additionalProperties": {"type": "number"}}}},
        {"type": "object", "required": ["v", "type"], "properties": {
            "v": {"const": 1}, "type": {"const": "pong"}, "id": {"type": ["string", "number"]}}},
    ],
    "$defs": {"client": {
        "description": "client to server: nothing, or this",
        "type": "object", "required": ["type"], "additionalProperties": False,
        "properties": {"v": {"const": 1}, "type": {"const": "ping"}, "id": {"type": ["string", "number"]}}}},
})
"""The stream's messages as a JSON Schema (``$defs.client``: what a client may send)."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def frame_message(frame: FaceFrame, landmarks: bool = False) -> dict[str, Any]:
    """The ``frame`` message for ``frame`` as a dict (landmarks only when asked)."""
    body = frame.to_json_dict()
    body.pop("v", None)
    if not landmarks:
        body.pop("landmarks", None)
    return {"v": SCHEMA_VERSION, "type": "frame", **body}


def encode_frame(frame: FaceFrame, landmarks: bool = False) -> str:
    """The ``frame`` message for ``frame`` as JSON text."""
    return _dumps(frame_message(frame, landmarks))


def decode_message(text: str | bytes) -> FaceFrame | dict[str, Any]:
    """A server message: a `FaceFrame` for ``frame``, the dict itself for ``hello`` and ``pong``.

    `InputError` for anything that is not a version-1 message of a known type.
    """
    try:
        d = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"ws message: not valid JSON ({exc})") from None
    if not isinstance(d, dict):
        raise InputError(f"ws message: expected an object, got {type(d).__name__}")
    if d.get("v") != SCHEMA_VERSION:
        raise InputError(f"ws message: expected schema version {SCHEMA_VERSION}, got {d.get('v')!r}")
    kind = d.get("type")
    if kind == "frame":
        body = {k: v for k, v in d.items() if k != "type"}
        body["v"] = FRAME_SCHEMA_VERSION  # stream version 1 carries frame schema 1
        return FaceFrame.from_json_dict(body)
    if kind in ("hello", "pong"):
        return d
    raise InputError(f"ws message: expected type frame, hello or pong, got {kind!r}")


def _client_problem(message: str | bytes) -> tuple[str | None, Any]:
    """(why the message breaks the rules or None, the ping id)."""
    if isinstance(message, bytes):
        return "binary messages are not accepted", None
    try:
        d = json.loads(message)
    except ValueError:
        return "not valid JSON", None
    if not isinstance(d, dict) or d.get("type") != "ping" or d.get("v", SCHEMA_VERSION) != SCHEMA_VERSION \
            or set(d) - {"v", "type", "id"}:
        return 'expected nothing or {"v":1,"type":"ping"}', None
    ping_id = d.get("id")
    if ping_id is not None and (isinstance(ping_id, bool) or not isinstance(ping_id, (str, int, float))):
        return "ping id: expected a string or a number", None
    return None, ping_id


# -- statistics ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClientStats:
    """One connected client: its address, messages sent to it, messages dropped because it was slow."""

    address: tuple[str, int]
    messages_sent: int
    messages_dropped: int
    queued: int


@dataclass(frozen=True)
class WebSocketStats:
    """What the sink did. ``frames_in`` = frames given to ``send``; each is ``frames_sent`` (broadcast
    to the clients connected then), ``frames_dropped`` (pushed out of the sink's queue by a newer
    one), ``frames_failed`` (could not be encoded) or still ``queued``. Per client, a message is
    sent or dropped (``messages_dropped``: that client was too slow). ``clients_closed`` counts
    clients closed for breaking the rules (oversized, malformed or too many messages)."""

    frames_in: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    frames_failed: int = 0
    queued: int = 0
    clients: int = 0
    clients_total: int = 0
    clients_closed: int = 0
    messages_sent: int = 0
    messages_dropped: int = 0
    bytes_sent: int = 0
    last_error: str = ""

    @property
    def packets_dropped(self) -> int:
        """Messages dropped for slow clients (the name the UDP senders' statistics use)."""
        return self.messages_dropped

    @property
    def dropped(self) -> int:
        return self.frames_dropped + self.messages_dropped


# -- the server ------------------------------------------------------------------------------------
class _Client:
    __slots__ = ("address", "busy", "conn", "control", "dropped", "queue", "sent", "wake", "window_count",
                 "window_start")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        address = conn.remote_address or ("", 0)
        self.address = (str(address[0]), int(address[1]))
        self.queue: collections.deque[str] = collections.deque()
        self.control: collections.deque[str] = collections.deque(maxlen=4)
        self.wake = asyncio.Event()
        self.busy = False
        self.sent = self.dropped = 0
        self.window_start, self.window_count = time.monotonic(), 0


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


class WebSocketSink:
    """Serves frames as the version-1 JSON stream on ``ws://host:port/path`` (default port 8765).

    ``port`` 0 picks a free port (see `address`). ``queue_size`` (1 or 2) bounds the frames
    waiting in the sink and the messages waiting per client. ``landmarks`` adds the 478 landmarks
    to each frame (about 15 KB more per message). ``face``: only that face's frames (None: all).
    The server starts on ``__enter__`` (`OutputError` when it cannot listen) and stops on
    ``__exit__``, after giving clients up to ``linger_s`` seconds to take what is queued.
    """

    default_port = DEFAULT_PORT
    protocol = "ws"
    URL_PATH = True
    """`facewire.sinks.open_sink` passes the URL's path (``ws://host:port/path``) as ``path``."""
    URL_OPTIONS = MappingProxyType({"queue_size": int, "landmarks": _flag, "max_clients": int,
                                    "max_message_bytes": int, "face": int, "linger_s": float})

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, path: str = "/", queue_size: int = 2,
                 landmarks: bool = False, max_clients: int = 32, max_message_bytes: int = 1024,
                 max_client_messages_per_s: float = 20.0, send_buffer_bytes: int = 64 << 10,
                 face: int | None = None, linger_s: float = 1.0) -> None:
        port = self.default_port if port is None else port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
            raise InputError(f"ws port: expected an integer in 0..65535, got {port!r}")
        if queue_size not in (1, 2):
            raise InputError(f"ws queue_size: expected 1 or 2, got {queue_size!r}")
        if not isinstance(path, str) or not path.startswith("/"):
            raise InputError(f"ws path: expected a path starting with '/', got {path!r}")
        for name, value in (("max_clients", max_clients), ("max_message_bytes", max_message_bytes),
                            ("send_buffer_bytes", send_buffer_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"ws {name}: expected a positive integer, got {value!r}")
        for name, value in (("max_client_messages_per_s", max_client_messages_per_s), ("linger_s", linger_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(f"ws {name}: expected a non-negative number, got {value!r}")
        self.host, self.port, self.path = str(host), port, path
        self.queue_size, self.landmarks, self.face = queue_size, bool(landmarks), None if face is None else int(face)
        self.max_clients, self.max_message_bytes = max_clients, max_message_bytes
        self.max_client_messages_per_s, self.send_buffer_bytes = float(max_client_messages_per_s), send_buffer_bytes
        self.linger_s = float(linger_s)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending: collections.deque[FaceFrame] = collections.deque()
        self._scheduled = False
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._bound: tuple[str, int] | None = None
        self._counts = {"frames_in": 0, "frames_sent": 0, "frames_dropped": 0, "frames_failed": 0,
                        "clients_total": 0, "clients_closed": 0, "messages_sent": 0, "messages_dropped": 0,
                        "bytes_sent": 0}
        self._last_error = ""
        # why each client this sink closed was closed, by the client's port: the close frame can be
        # overtaken by a TCP reset when the client is still sending, so the client may never see it
        self.closed_reasons: dict[int, str] = {}
        from .. import __version__

        self._hello = _dumps({"v": SCHEMA_VERSION, "type": "hello", "server": f"facewire {__version__}",
                              "names": list(arkit.NAMES), "landmarks": self.landmarks})

    def __repr__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.address[1]}{self.path}"

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on: the real port once open, when 0 was asked for."""
        return self._bound or (self.host, self.port)

    # -- sink protocol ---------------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self._thread is not None:
            raise OutputError(f"{self}: sink is already open")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def main() -> None:
            try:
                loop.run_until_complete(self._serve(ready, failure))
            except BaseException as exc:  # noqa: BLE001 - reported to __enter__ or kept as last_error
                failure.append(exc)
            finally:
                ready.set()
                loop.close()

        self._thread = threading.Thread(target=main, name="facewire-ws-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join(5.0)
            self._thread = self._loop = None
            exc = failure[0]
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise OutputError(f"ws://{self.host}:{self.port}{self.path}: cannot serve ({detail})") from exc
        return self

    def send(self, frame: FaceFrame) -> None:
        """Queue ``frame`` for every client and return at once; the oldest waiting frame gives way."""
        if self.face is not None and frame.face != self.face:
            return
        with self._lock:
            loop = self._loop
            if loop is None or self._stop is None:
                raise OutputError(f"{self}: sink is not open (use it in a with block)")
            self._counts["frames_in"] += 1
            if len(self._pending) >= self.queue_size:
                self._pending.popleft()
                self._counts["frames_dropped"] += 1
            self._pending.append(frame)
            schedule, self._scheduled = not self._scheduled, True
        if schedule:
            try:
                loop.call_soon_threadsafe(self._dispatch)
            except RuntimeError:  # the loop is closing: the frame is counted as queued, not lost silently
                pass

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued frame reached every client's socket; False if ``timeout_s`` ran out."""
        with self._idle:
            if self._loop is None:
                return not self._pending
            return self._idle.wait_for(self._all_idle, timeout_s)

    def _all_idle(self) -> bool:
        return not self._pending and not self._scheduled and all(not c.queue and not c.busy for c in self._clients)

    def __exit__(self, *exc: object) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if self.linger_s > 0:
            self.flush(self.linger_s)
        with self._lock:
            stop, self._stop = self._stop, None
            self._loop = None
        if stop is not None:
            with _suppress_closed_loop():
                loop.call_soon_threadsafe(stop.set)
        thread.join(10.0)
        self._thread = None

    def statistics(self) -> WebSocketStats:
        with self._lock:
            return WebSocketStats(queued=len(self._pending), clients=len(self._clients), last_error=self._last_error,
                                  **self._counts)

    def clients(self) -> list[ClientStats]:
        """Each connected client's own counts."""
        with self._lock:
            return [ClientStats(c.address, c.sent, c.dropped, len(c.queue)) for c in self._clients]

    # -- the server thread -------------------------------------------------------------------------
    async def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        from websockets.asyncio.server import serve

        self._stop = asyncio.Event()
        try:
            server = await serve(
                self._handle, self.host, self.port, process_request=self._check_request,
                max_size=self.max_message_bytes, compression=None, max_queue=4, write_limit=16 << 10,
                ping_interval=20, ping_timeout=20, close_timeout=1.0, open_timeout=5.0,
                logger=_LOG,
            )
        except Exception as exc:  # noqa: BLE001 - any failure to start is handed to __enter__, which reports it
            failure.append(exc)
            self._stop = None
            ready.set()
            return
        host, port = server.sockets[0].getsockname()[:2]
        self._bound = (host, port)
        ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            await server.wait_closed()

    def _check_request(self, conn: Any, request: Any) -> Any:
        if request.path.split("?", 1)[0] != self.path:
            return conn.respond(404, f"facewire streams on {self.path}\n")
        if len(self._clients) >= self.max_clients:
            return conn.respond(503, f"facewire: at most {self.max_clients} clients\n")
        return None

    def _dispatch(self) -> None:
        with self._lock:
            frames = list(self._pending)
            self._pending.clear()
            self._scheduled = False
        for frame in frames:
            try:
                text = encode_frame(frame, self.landmarks)
            except Exception as exc:  # noqa: BLE001 - a frame that cannot be encoded must not stop the stream
                with self._lock:
                    self._counts["frames_failed"] += 1
                    self._last_error = f"encode: {type(exc).__name__}: {exc}"
                continue
            with self._lock:
                self._counts["frames_sent"] += 1
                for client in self._clients:
                    if len(client.queue) >= self.queue_size:
                        client.queue.popleft()
                        client.dropped += 1
                        self._counts["messages_dropped"] += 1
                    client.queue.append(text)
                    client.wake.set()
        with self._idle:
            self._idle.notify_all()

    async def _handle(self, conn: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with _suppress_os_error():  # a small kernel buffer: a slow client lags a little, not a lot
            sock = conn.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)
        client = _Client(conn)
        client.control.append(self._hello)
        client.wake.set()
        with self._lock:
            self._clients.add(client)
            self._counts["clients_total"] += 1
        writer = asyncio.ensure_future(self._write(client))
        try:
            async for message in conn:
                problem, ping_id = _client_problem(message)
                if problem is None:
                    problem = self._flooding(client)
                if problem is not None:
                    self._closed_client(client, problem)
                    await conn.close(CLOSE_POLICY, problem[:120])
                    break
                pong = {"v": SCHEMA_VERSION, "type": "pong"}
                if ping_id is not None:
                    pong["id"] = ping_id
                client.control.append(_dumps(pong))
                client.wake.set()
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == CLOSE_TOO_BIG:
                self._closed_client(client, f"message over {self.max_message_bytes} bytes")
        finally:
            with self._idle:
                self._clients.discard(client)
                self._idle.notify_all()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _flooding(self, client: _Client) -> str | None:
        now = time.monotonic()
        if now - client.window_start >= 1.0:
            client.window_start, client.window_count = now, 0
        client.window_count += 1
        if client.window_count > max(1.0, self.max_client_messages_per_s):
            return f"more than {self.max_client_messages_per_s:g} messages a second"
        return None

    def _closed_client(self, client: _Client, why: str) -> None:
        with self._lock:
            self._counts["clients_closed"] += 1
            self._last_error = f"closed client {client.address[0]}:{client.address[1]}: {why}"
            self.closed_reasons[client.address[1]] = why

    async def _write(self, client: _Client) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await client.wake.wait()
                client.wake.clear()
                while True:
                    with self._lock:
                        control = bool(client.control)
                        if control:
                            text = client.control.popleft()
                        elif client.queue:
                            text = client.queue.popleft()
                        else:
                            break
                        client.busy = True
                    try:
                        # Waits while this client's socket is full; its queue drops meanwhile.
                        await client.conn.send(text)
                    finally:
                        with self._idle:
                            client.busy = False
                            if not control:
                                client.sent += 1
                                self._counts["messages_sent"] += 1
                            self._counts["bytes_sent"] += len(text)
                            self._idle.notify_all()
        except ConnectionClosed:
            return


class _suppress_os_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> bool:
        return kind is not None and issubclass(kind, OSError)


class _suppress_closed_loop:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> bool:
        return kind is not None and issubclass(kind, RuntimeError)


# -- the client ------------------------------------------------------------------------------------
_DEFAULT: float = -1.0


class WebSocketReceiver:
    """Connects to a stream of this schema on ``ws://host:port/path`` and yields its frames.

    Frames keep the ``seq`` and ``source`` they were sent with. A message that does not decode is
    counted and skipped (see `statistics`), never raised. ``max_message_bytes`` bounds what the
    server may send (frames with landmarks are about 16 KB).
    """

    default_port = DEFAULT_PORT
    protocol = "ws"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, path: str = "/",
                 timeout_s: float | None = 1.0, max_message_bytes: int = 1 << 20) -> None:
        port = self.default_port if port is None else port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InputError(f"ws port: expected an integer in 1..65535, got {port!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise InputError(f"ws timeout_s: expected a positive number or None, got {timeout_s!r}")
        self.host, self.port, self.path = str(host), port, path
        self.timeout_s, self.max_message_bytes = timeout_s, max_message_bytes
        self.hello: dict[str, Any] | None = None
        self._conn: Any = None
        self._counts = {"packets": 0, "bad_packets": 0, "frames": 0, "unexpected": 0}
        self._last_error = ""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{self.path}"

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def __enter__(self) -> Self:
        from websockets.sync.client import connect

        if self._conn is not None:
            raise InputError(f"{self.url}: receiver is already open")
        try:
            conn = connect(self.url, open_timeout=self.timeout_s or 10.0, compression=None,
                           max_size=self.max_message_bytes, proxy=None, close_timeout=1.0)
            self._conn = conn.__enter__()  # websockets wants its context manager; __exit__ leaves it
        except Exception as exc:
            raise InputError(f"cannot connect to {self.url} ({exc})") from exc
        # The hello comes once the server counts this client: frames sent after it reach us.
        try:
            first = decode_message(self._conn.recv(timeout=self.timeout_s or 10.0))
        except Exception as exc:
            self.__exit__()
            raise InputError(f"{self.url}: expected a facewire stream's hello message ({exc})") from exc
        if not isinstance(first, dict) or first.get("type") != "hello":
            self.__exit__()
            raise InputError(f"{self.url}: expected a hello message first, got a {type(first).__name__}")
        self.hello = first
        return self

    def __exit__(self, *exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.__exit__(None, None, None)

    def statistics(self) -> ReceiverStats:
        return ReceiverStats(last_error=self._last_error, **self._counts)

    def ping(self, ping_id: str | int | None = None) -> None:
        """Send an application ping; the server answers with a ``pong`` message."""
        message: dict[str, Any] = {"v": SCHEMA_VERSION, "type": "ping"}
        if ping_id is not None:
            message["id"] = ping_id
        self._conn.send(_dumps(message))

    def messages(self, timeout_s: float | None = _DEFAULT) -> Iterator[FaceFrame | dict[str, Any]]:
        """Every decoded message (frames, hello, pong) until none came for ``timeout_s`` or the
        server closed."""
        from websockets.exceptions import ConnectionClosed

        if self._conn is None:
            raise InputError(f"{self.url}: receiver is not open (use it in a with block)")
        idle = self.timeout_s if timeout_s is _DEFAULT else timeout_s
        while True:
            try:
                text = self._conn.recv(timeout=idle)
            except TimeoutError:
                return
            except ConnectionClosed:
                return
            self._counts["packets"] += 1
            try:
                message = decode_message(text)
            except InputError as exc:
                self._counts["bad_packets"] += 1
                self._last_error = str(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - garbage must never end a receiver; counted apart
                self._counts["bad_packets"] += 1
                self._counts["unexpected"] += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                continue
            if isinstance(message, FaceFrame):
                self._counts["frames"] += 1
            elif message.get("type") == "hello":
                self.hello = message
            yield message

    def frames(self, count: int | None = None, timeout_s: float | None = _DEFAULT) -> Iterator[FaceFrame]:
        """Frames as they arrive: stops after ``count`` frames, when nothing came for ``timeout_s``
        seconds (default: the receiver's), or when the server closes."""
        produced = 0
        if count is not None and count <= 0:
            return
        for message in self.messages(timeout_s):
            if isinstance(message, FaceFrame):
                yield message
                produced += 1
                if count is not None and produced >= count:
                    return
