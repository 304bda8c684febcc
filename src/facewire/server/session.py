"""One studio session per WebSocket: the page's camera and microphone in, `FaceFrame`s out.

`StudioSession` holds one page's state (its own `VideoTracker`, `LipSync`, calibration, recording)
and is called from one worker thread at a time. `SessionRunner` is its asyncio side: it reads the
socket, keeps bounded queues that drop the oldest item when the page sends faster than the server
tracks (video: the latest picture only; audio: one second), runs the work off the event loop, and
writes replies through an outgoing queue that drops the oldest *frame* when the page reads slowly
(control messages are never dropped). Everything a session owns is released when its socket closes.

Wire protocol (version 1; server → page messages reuse `facewire.sinks.websocket`'s schema):

Page → server
  binary ``[kind: u8][capture_ms: f64 LE][payload]``: ``capture_ms`` is the page's
  ``performance.now()`` when it captured the input (echoed back in ``capture_ns`` so the page
  measures end-to-end latency on its own clock). kind 1: one JPEG picture; kind 2: mono PCM,
  signed 16-bit little-endian at 16 kHz, at most one second.
  text ``{"v":1,"type":…}``: ``ping`` (``id`` optional), ``calibrate`` (hold a neutral face for
  `CALIBRATE_S`), ``record`` (``"on": true|false``), ``say`` (``"text"``: the avatar speaks it).
Server → page
  ``hello`` (the sink's, plus ``session`` and ``limits``), ``frame`` (the sink's frame message),
  ``pong``, ``speech`` (``frames``: the frame messages of the utterance from t=0, ``wav``: base64
  16-bit WAV, ``emotion``: the text's affect), ``take`` (``recording``, ``frames``, ``files``:
  format → download path), ``calibration`` (``state``: learning | done), ``stats`` (once a
  second), ``error`` (``message``: one line). A bad message is answered by an ``error`` and the
  stream goes on; `SessionLimits.max_bad_messages` of them in a row close the socket (1008), as
  does silence for ``idle_timeout_s``; an oversized message closes it with 1009, a tracking worker
  process that stopped (`facewire.server.workers`) with 1011.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import contextlib
import io
import json
import logging
import math
import os
import secrets
import shutil
import struct
import tempfile
import threading
import time
import wave
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import __version__, arkit
from ..errors import InputError
from ..frame import FaceFrame
from ..sinks.websocket import SCHEMA_VERSION, frame_message

__all__ = [
    "CALIBRATE_S",
    "KIND_JPEG",
    "KIND_PCM",
    "PCM_RATE",
    "SessionLimits",
    "SessionRunner",
    "StudioSession",
    "TakeStore",
    "hello_message",
    "jpeg_size",
    "parse_command",
    "parse_input",
]

KIND_JPEG = 1
KIND_PCM = 2
PCM_RATE = 16_000
CALIBRATE_S = 1.0
HEADER = struct.Struct("<Bd")
TAKE_FORMATS = ("csv", "glb", "jsonl")
FPS = 30.0  # lip-sync and speech frames per second
FACE_HOLD_NS = 500_000_000  # the camera drives the avatar while it saw a face this recently
RECORD_STEP_NS = 1_000_000  # takes store times as float32 seconds (glTF): keep frames ≥ 1 ms apart
CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_INTERNAL, CLOSE_FULL = 1008, 1009, 1011, 1013

log = logging.getLogger("facewire.server")


@dataclass(frozen=True)
class SessionLimits:
    """What one page may send and how long it may stay silent (``idle_timeout_s``)."""

    max_message_bytes: int = 1 << 20
    max_image_pixels: int = 1920 * 1080
    max_pcm_samples: int = PCM_RATE
    max_text_chars: int = 500
    idle_timeout_s: float = 60.0
    max_bad_messages: int = 50
    audio_queue_s: float = 1.0
    out_queue: int = 8

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "max_image_pixels", "max_pcm_samples", "max_text_chars",
                     "max_bad_messages", "out_queue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: expected a positive integer, got {value!r}")
        for name in ("idle_timeout_s", "audio_queue_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise InputError(f"{name}: expected a positive number of seconds, got {value!r}")

    def to_json_dict(self) -> dict[str, Any]:
        return {"max_message_bytes": self.max_message_bytes, "max_image_pixels": self.max_image_pixels,
                "max_pcm_samples": self.max_pcm_samples, "max_text_chars": self.max_text_chars,
                "idle_timeout_s": self.idle_timeout_s}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


# -- parsing what the page sends --------------------------------------------------------------------
@dataclass(frozen=True)
class Input:
    """One binary message: its kind, capture time (the page's clock, ns) and payload."""

    kind: int
    capture_ns: int
    payload: bytes


def parse_input(data: bytes, limits: SessionLimits = SessionLimits()) -> Input:
    """The binary message ``data`` checked against the protocol; `InputError` says what is wrong."""
    if len(data) < HEADER.size:
        raise InputError(f"binary message: expected a {HEADER.size}-byte header (kind, capture_ms) and a payload, "
                         f"got {len(data)} bytes")
    kind, capture_ms = HEADER.unpack_from(data)
    if kind not in (KIND_JPEG, KIND_PCM):
        raise InputError(f"binary message: expected kind {KIND_JPEG} (JPEG) or {KIND_PCM} (PCM), got {kind}")
    if not math.isfinite(capture_ms) or capture_ms < 0 or capture_ms > 1e13:
        raise InputError(f"binary message: expected capture_ms ≥ 0 on the page's clock, got {capture_ms!r}")
    payload = bytes(data[HEADER.size:])
    if kind == KIND_PCM:
        if not payload or len(payload) % 2:
            raise InputError(f"audio block: expected 16-bit PCM (an even, non-zero byte count), got {len(payload)} bytes")
        if len(payload) // 2 > limits.max_pcm_samples:
            raise InputError(f"audio block: expected at most {limits.max_pcm_samples} samples, got {len(payload) // 2}")
    else:
        width, height = jpeg_size(payload)
        if width * height > limits.max_image_pixels:
            raise InputError(f"video frame: expected at most {limits.max_image_pixels} pixels, "
                             f"got {width}×{height}")
    return Input(kind, round(capture_ms * 1e6), payload)


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header, read before decoding so a huge picture costs nothing."""
    if data[:2] != b"\xff\xd8":
        raise InputError(f"video frame: expected a JPEG image (starting FF D8), got {data[:4].hex(' ') or 'nothing'}")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _SOF and i + 9 <= len(data):
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            if width and height:
                return width, height
            break
        i += 2 + length
    raise InputError("video frame: expected a JPEG image with a frame header, got a truncated or corrupt one")


def parse_command(text: str, limits: SessionLimits = SessionLimits()) -> dict[str, Any]:
    """A text message as a command dict; `InputError` for anything the protocol does not define."""
    try:
        d = json.loads(text)
    except ValueError:
        raise InputError(f"text message: expected JSON, got {text[:40]!r}") from None
    if not isinstance(d, dict):
        raise InputError(f"text message: expected a JSON object, got {type(d).__name__}")
    if d.get("v", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise InputError(f"text message: expected schema version {SCHEMA_VERSION}, got {d.get('v')!r}")
    kind = d.get("type")
    if kind == "ping":
        ping_id = d.get("id")
        if ping_id is not None and (isinstance(ping_id, bool) or not isinstance(ping_id, (str, int, float))):
            raise InputError("ping id: expected a string or a number")
    elif kind == "record":
        if not isinstance(d.get("on"), bool):
            raise InputError(f"record: expected \"on\": true or false, got {d.get('on')!r}")
    elif kind == "say":
        words = d.get("text")
        if not isinstance(words, str) or not words.strip():
            raise InputError(f"say: expected \"text\" with something to say, got {words!r}")
        if len(words) > limits.max_text_chars:
            raise InputError(f"say: expected at most {limits.max_text_chars} characters, got {len(words)}")
    elif kind != "calibrate":
        raise InputError(f"text message: expected type ping, calibrate, record or say, got {kind!r}")
    return d


# -- recorded takes ----------------------------------------------------------------------------------
class TakeStore:
    """Finished takes on disk for download, under one temporary directory the server owns.

    Keeps the newest ``max_takes``; older ones are deleted. `close` removes the directory.
    """

    def __init__(self, root: str | None = None, max_takes: int = 32) -> None:
        self.root = tempfile.mkdtemp(prefix="facewire-takes-", dir=root)
        # removed with the store even when the server never ran its shutdown (an app built, not served)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.root, True)
        self.max_takes = int(max_takes)
        self._lock = threading.Lock()
        self._takes: collections.OrderedDict[str, dict[str, str]] = collections.OrderedDict()

    def new_id(self) -> str:
        return secrets.token_hex(8)

    def path(self, take_id: str, fmt: str) -> str:
        return os.path.join(self.root, f"{take_id}.{fmt}")

    def add(self, take_id: str, formats: tuple[str, ...]) -> dict[str, str]:
        with self._lock:
            self._takes[take_id] = {fmt: self.path(take_id, fmt) for fmt in formats}
            while len(self._takes) > self.max_takes:
                _, old = self._takes.popitem(last=False)
                for path in old.values():
                    with contextlib.suppress(OSError):
                        os.unlink(path)
        return {fmt: f"/takes/{take_id}.{fmt}" for fmt in formats}

    def find(self, take_id: str, fmt: str) -> str | None:
        with self._lock:
            return self._takes.get(take_id, {}).get(fmt)

    def __len__(self) -> int:
        return len(self._takes)

    def close(self) -> None:
        self._finalizer()


# -- the session's state ---------------------------------------------------------------------------
def _wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    pcm = np.round(np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm)
    return out.getvalue()


class StudioSession:
    """One page's state. Every public method takes the session's lock: the runner calls them from
    worker threads, and `close` waits for the call in flight."""

    def __init__(self, session_id: str, takes: TakeStore, *, limits: SessionLimits = SessionLimits(),
                 tracker_factory: Callable[[Callable[[], list]], Any] | None = None,
                 tracker_release: Callable[[Any], None] | None = None) -> None:
        self.id = session_id
        self.takes = takes
        self.limits = limits
        self._tracker_factory = tracker_factory or _default_tracker
        self._tracker_release = tracker_release  # hands the tracker back to a pool when the session ends
        self._lock = threading.Lock()
        self._tracker: Any = None
        self._lipsync: Any = None
        self._explicit_calibration = False
        self._calibration: Any = None
        self._calibration_announced = True
        self._origin_ns: int | None = None
        self._last_mic_ns = -(1 << 62)
        self._last_face_ns = -(1 << 62)
        self._last_audio_ns = -(1 << 62)
        self._seq = 0
        self._speech_id = 0
        self._recording: dict[str, Any] | None = None
        self._take_id = ""
        self._recorded = 0
        self._recorded_last_ns: int | None = None
        self._notes: list[dict[str, Any]] = []
        self.closed = False
        self.frames_out = 0
        self.compute_ms: collections.deque[float] = collections.deque(maxlen=120)

    # -- helpers ----------------------------------------------------------------------------
    def _media_ns(self, capture_ns: int) -> int:
        if self._origin_ns is None:
            self._origin_ns = capture_ns
        return capture_ns - self._origin_ns

    def _stages(self) -> list:
        from ..expression.calibration import CalibrationStage
        from ..expression.filters import OneEuroStage

        if self._explicit_calibration:
            calibration = CalibrationStage(mode="explicit", window_s=CALIBRATE_S)
        else:
            calibration = CalibrationStage(mode="auto", window_s=2.0)
        self._calibration = calibration
        return [calibration, OneEuroStage()]

    def _emit(self, frame: FaceFrame) -> dict[str, Any]:
        frame = frame.replace(seq=self._seq)
        self._seq += 1
        self.frames_out += 1
        last = self._recorded_last_ns
        if self._recording is not None and (last is None or frame.t_ns >= last + RECORD_STEP_NS):
            try:
                for writer in self._recording.values():
                    writer.send(frame)
            except Exception as exc:  # noqa: BLE001 - a failing take must not stop the stream
                writers, self._recording = self._recording, None
                self._abort(writers)
                self._notes.append({"v": SCHEMA_VERSION, "type": "error",
                                    "message": f"record: the take was discarded ({type(exc).__name__}: {exc})"})
                self._notes.append({"v": SCHEMA_VERSION, "type": "take", "recording": False, "frames": 0})
            else:
                self._recorded += 1
                self._recorded_last_ns = frame.t_ns
        return frame_message(frame)

    def _flush_notes(self, out: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._notes:
            out.extend(self._notes)
            self._notes.clear()
        return out

    # -- inputs -----------------------------------------------------------------------------
    def video(self, jpeg: bytes, capture_ns: int) -> list[dict[str, Any]]:
        """Track one JPEG picture; the frame messages to send (none while the microphone drives)."""
        import cv2

        from ..media import Image

        with self._lock:
            self._check_open()
            t0 = time.perf_counter()
            bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputError(f"video frame: expected a decodable JPEG image, got {len(jpeg)} bytes that are not")
            if self._tracker is None:
                self._tracker = self._tracker_factory(self._stages)
            t_ns = self._media_ns(capture_ns)
            frames = self._tracker.process(Image(t_ns, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), capture_ns=capture_ns),
                                           source="camera")
            out: list[dict[str, Any]] = []
            frame = frames[0]
            if frame.tracked:
                self._last_face_ns = t_ns
            mic_drives = not frame.tracked and t_ns - self._last_audio_ns < FACE_HOLD_NS
            if not mic_drives:
                out.append(self._emit(frame))
            if not self._calibration_announced and self._calibration is not None and self._calibration.done:
                self._calibration_announced = True
                out.append({"v": SCHEMA_VERSION, "type": "calibration", "state": "done"})
            self.compute_ms.append((time.perf_counter() - t0) * 1e3)
            return self._flush_notes(out)

    def audio(self, blocks: list[tuple[bytes, int]]) -> list[dict[str, Any]]:
        """Lip-sync PCM blocks (in arrival order); frame messages while no face is tracked."""
        from ..audio.lipsync import LipSync

        with self._lock:
            self._check_open()
            if self._lipsync is None:
                self._lipsync = LipSync(fps=FPS, source="mic")
            out: list[dict[str, Any]] = []
            for pcm, capture_ns in blocks:
                t_ns = self._media_ns(capture_ns)
                self._last_audio_ns = t_ns
                if t_ns - self._last_face_ns < FACE_HOLD_NS:
                    continue  # the camera sees a face: it drives the avatar, the microphone rests
                samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
                for frame in self._lipsync.feed(samples, capture_ns, sample_rate=PCM_RATE):
                    # Media time is the capture time of the frame's audio, on the clock the camera's
                    # frames use, so a take switching between the two stays in time order.
                    frame_ns = max(self._media_ns(frame.capture_ns), self._last_mic_ns + RECORD_STEP_NS)
                    self._last_mic_ns = frame_ns
                    out.append(self._emit(frame.replace(t_ns=frame_ns)))
            return self._flush_notes(out)

    def command(self, cmd: dict[str, Any]) -> list[dict[str, Any]]:
        """Run a page command (see `parse_command`); the messages that answer it."""
        with self._lock:
            self._check_open()
            kind = cmd["type"]
            if kind == "calibrate":
                self._explicit_calibration = True
                self._calibration_announced = False
                if self._tracker is not None:
                    self._tracker.reset()  # the stages are rebuilt, with explicit calibration
                return [{"v": SCHEMA_VERSION, "type": "calibration", "state": "learning", "window_s": CALIBRATE_S}]
            if kind == "record":
                return [self._start_recording() if cmd["on"] else self._stop_recording()]
            if kind == "say":
                return [self._say(cmd["text"])]
            raise InputError(f"command: unknown type {kind!r}")

    def step(self, command: dict[str, Any] | None, blocks: list[tuple[bytes, int]],
             picture: tuple[bytes, int] | None) -> list[dict[str, Any]]:
        """One round of the runner: a command, the audio blocks, a picture (any may be absent).

        A part that fails with `InputError` is answered by an ``error`` message; the others still run.
        """
        parts: list[tuple[Callable[..., list[dict[str, Any]]], tuple]] = []
        if command is not None:
            parts.append((self.command, (command,)))
        if blocks:
            parts.append((self.audio, (blocks,)))
        if picture is not None:
            parts.append((self.video, picture))
        out: list[dict[str, Any]] = []
        for run, args in parts:
            try:
                out.extend(run(*args))
            except InputError as exc:
                out.append({"v": SCHEMA_VERSION, "type": "error", "message": str(exc)})
        return out

    # -- recording --------------------------------------------------------------------------
    def _start_recording(self) -> dict[str, Any]:
        from ..takes import open_writer

        if self._recording is not None:
            return {"v": SCHEMA_VERSION, "type": "take", "recording": True, "frames": self._recorded}
        self._take_id = self.takes.new_id()
        writers: dict[str, Any] = {}
        try:
            for fmt in TAKE_FORMATS:
                writers[fmt] = open_writer(self.takes.path(self._take_id, fmt)).__enter__()
        except BaseException:
            self._abort(writers)
            raise
        self._recording, self._recorded, self._recorded_last_ns = writers, 0, None
        return {"v": SCHEMA_VERSION, "type": "take", "recording": True, "frames": 0}

    def _stop_recording(self) -> dict[str, Any]:
        writers, self._recording = self._recording, None
        if writers is None:
            raise InputError("record: not recording (send {\"type\":\"record\",\"on\":true} first)")
        if not self._recorded:
            self._abort(writers)
            raise InputError("record: nothing was recorded (no frames arrived while recording)")
        try:
            for writer in writers.values():
                writer.__exit__(None, None, None)
        except BaseException:
            self._abort(writers)
            raise
        files = self.takes.add(self._take_id, tuple(writers))
        return {"v": SCHEMA_VERSION, "type": "take", "recording": False, "frames": self._recorded, "files": files}

    @staticmethod
    def _abort(writers: dict[str, Any]) -> None:
        aborted = InputError("take aborted")
        for writer in writers.values():
            with contextlib.suppress(Exception):
                writer.__exit__(InputError, aborted, None)  # an exception leaves no file behind

    # -- speech -----------------------------------------------------------------------------
    def _say(self, text: str) -> dict[str, Any]:
        from ..audio.animate import animate
        from ..audio.tts import synthesize
        from ..expression.affect import analyse
        from ..expression.emotion import EmotionStage

        affect = analyse(text)
        speech = synthesize(text)
        frames = animate(speech.phones, speech.samples, FPS, sample_rate=speech.sample_rate)
        stage = EmotionStage(state="speaking")
        if affect.emotion != "neutral" and affect.intensity > 0:
            stage.express(affect.emotion, affect.intensity, at_ns=0, onset_s=0.3,
                          apex_s=max(0.0, speech.duration_s - 0.8), offset_s=0.5)
        self._speech_id += 1
        messages = [frame_message(stage.process(f.replace(source="tts", seq=i))) for i, f in enumerate(frames)]
        return {"v": SCHEMA_VERSION, "type": "speech", "id": self._speech_id, "text": text,
                "emotion": affect.to_json_dict(), "sample_rate": speech.sample_rate,
                "duration_s": round(speech.duration_s, 3), "fps": FPS, "frames": messages,
                "wav": base64.b64encode(_wav_bytes(speech.samples, speech.sample_rate)).decode("ascii")}

    # -- life -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise InputError(f"session {self.id} is closed")

    def close(self) -> None:
        """Release everything (waits for the call in flight); an unfinished take is discarded."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            writers, self._recording = self._recording, None
            if writers:
                self._abort(writers)
            if self._tracker is not None and self._tracker_release is not None:
                self._tracker_release(self._tracker)
            self._tracker = self._lipsync = self._calibration = None


def _default_tracker(stages: Callable[[], list]) -> Any:
    from ..vision.video import TrackerOptions, VideoTracker

    return VideoTracker(options=TrackerOptions(landmarks=False), stages=stages)


# -- the asyncio side -------------------------------------------------------------------------------
class DropOldest:
    """A bounded FIFO that drops its oldest item to make room, counting what it dropped."""

    def __init__(self, size: int) -> None:
        self.items: collections.deque[Any] = collections.deque()
        self.size = int(size)
        self.dropped = 0

    def push(self, item: Any) -> None:
        if len(self.items) >= self.size:
            self.items.popleft()
            self.dropped += 1
        self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class SessionRunner:
    """Serves one accepted WebSocket (Starlette's) with its `StudioSession` until either side ends.

    The session runs on ``executor``'s threads (the studio's tracking pool; asyncio's default pool
    without one, and always for ``say``, which is slow), or lives in a worker process (a
    `facewire.server.workers.RemoteSession`, whose ``step_async`` and ``close_async`` are awaited).
    Either way one step is in flight at a time and the video queue holds only the newest picture, so
    a session the server cannot keep up with drops stale pictures (counted in ``stats``) instead of
    answering ever later.
    """

    def __init__(self, websocket: Any, session: StudioSession, limits: SessionLimits,
                 executor: concurrent.futures.Executor | None = None) -> None:
        self.ws = websocket
        self.session = session
        self.limits = limits
        self.executor = executor  # where steps run (the studio's pool, shared by sessions); None: asyncio's
        self.video = DropOldest(1)  # only the newest picture is worth tracking
        self.audio = DropOldest(max(1, math.ceil(limits.audio_queue_s * 50)))  # 20 ms blocks
        self.commands = DropOldest(8)
        self.frames_out = DropOldest(limits.out_queue)
        self.control_out: collections.deque[str] = collections.deque()
        self._work = asyncio.Event()
        self._send = asyncio.Event()
        self.bad_in_row = 0
        self.bad_total = 0
        self.close_code: int | None = None
        self.close_reason = ""

    # -- outgoing -------------------------------------------------------------------------------
    def _queue(self, message: dict[str, Any] | Any) -> None:
        # a worker process sends its replies already serialised (`facewire.server.workers.Reply`)
        kind, text = (message.get("type"), _dumps(message)) if isinstance(message, dict) else message
        if kind == "frame":
            self.frames_out.push(text)
        elif len(self.control_out) < 64:
            self.control_out.append(text)
        self._send.set()

    def _error(self, message: str) -> None:
        self._queue({"v": SCHEMA_VERSION, "type": "error", "message": message})

    async def _writer(self) -> None:
        while True:
            await self._send.wait()
            self._send.clear()
            while self.control_out or self.frames_out:
                text = self.control_out.popleft() if self.control_out else self.frames_out.items.popleft()
                await self.ws.send_text(text)

    # -- work -----------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            # One round serves every kind that waits, in one trip to a worker thread, so a steady
            # microphone never starves the camera and a busy machine pays one hand-off per round.
            while self.commands or self.audio or self.video:
                command = self.commands.items.popleft() if self.commands else None
                blocks = list(self.audio.items)
                self.audio.items.clear()
                item = self.video.items.popleft() if self.video else None
                await self._step(command, blocks, None if item is None else (item.payload, item.capture_ns))

    async def _step(self, *args: Any) -> None:
        from .workers import WorkerGone

        step_async = getattr(self.session, "step_async", None)  # a session living in a worker process
        try:
            if step_async is not None:
                replies = await step_async(*args)
            elif self.executor is None or (args[0] is not None and args[0].get("type") == "say"):
                # speech synthesis takes a while: never on a tracking thread, where it would stall
                # the cameras of the sessions queued behind it
                replies = await asyncio.to_thread(self.session.step, *args)
            else:
                replies = await asyncio.get_running_loop().run_in_executor(self.executor, self.session.step, *args)
        except InputError as exc:
            self._error(str(exc))
            return
        except WorkerGone as exc:
            self._error(f"{exc}; reconnect to start a new session")
            raise _Closed(CLOSE_INTERNAL, "the tracking worker stopped") from None
        except Exception as exc:
            log.exception("session %s: step failed", self.session.id)
            self._error(f"step failed ({type(exc).__name__}: {exc})")
            return
        # One input can make several frames at once (a batch of audio blocks): they all fit, and
        # only frames older than the batch are dropped for a page that reads slowly.
        self.frames_out.size = max(self.limits.out_queue, sum(_kind(r) == "frame" for r in replies))
        for reply in replies:
            self._queue(reply)

    async def _ticker(self) -> None:
        last_frames, last_t = self.session.frames_out, time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now, frames = time.monotonic(), self.session.frames_out
            compute = sorted(self.session.compute_ms)
            self._queue({"v": SCHEMA_VERSION, "type": "stats", "fps": round((frames - last_frames) / (now - last_t), 2),
                         "frames": frames, "compute_ms": round(compute[len(compute) // 2], 2) if compute else None,
                         "dropped_video": self.video.dropped, "dropped_audio": self.audio.dropped,
                         "dropped_out": self.frames_out.dropped, "bad_messages": self.bad_total})
            last_frames, last_t = frames, now

    # -- incoming -------------------------------------------------------------------------------
    def _bad(self, why: str) -> None:
        self.bad_in_row += 1
        self.bad_total += 1
        if self.bad_in_row >= self.limits.max_bad_messages:
            raise _Closed(CLOSE_POLICY, f"{self.bad_in_row} bad messages in a row (last: {why})")
        self._error(why)

    def _take(self, message: dict[str, Any]) -> None:
        data, text = message.get("bytes"), message.get("text")
        size = len(data) if data is not None else len((text or "").encode("utf-8"))
        if size > self.limits.max_message_bytes:
            raise _Closed(CLOSE_TOO_BIG, f"message of {size} bytes; expected at most {self.limits.max_message_bytes}")
        try:
            if data is not None:
                item = parse_input(data, self.limits)
                (self.video if item.kind == KIND_JPEG else self.audio).push(
                    item if item.kind == KIND_JPEG else (item.payload, item.capture_ns))
            else:
                cmd = parse_command(text or "", self.limits)
                if cmd["type"] == "ping":
                    pong = {"v": SCHEMA_VERSION, "type": "pong"}
                    if cmd.get("id") is not None:
                        pong["id"] = cmd["id"]
                    self._queue(pong)
                else:
                    self.commands.push(cmd)
        except InputError as exc:
            self._bad(str(exc))
            return
        self.bad_in_row = 0
        self._work.set()

    async def run(self, hello: dict[str, Any]) -> None:
        """Say hello, then serve until the page leaves, breaks the rules or stays silent too long."""
        self._queue(hello)
        tasks = [asyncio.create_task(c()) for c in (self._writer, self._worker, self._ticker)]
        try:
            while True:
                try:
                    message = await asyncio.wait_for(self.ws.receive(), self.limits.idle_timeout_s)
                except TimeoutError:
                    raise _Closed(CLOSE_POLICY, f"nothing received for {self.limits.idle_timeout_s:g} s") from None
                if message["type"] == "websocket.disconnect":
                    self.close_code = int(message.get("code") or 1000)
                    return
                self._take(message)
                if any(t.done() for t in tasks):  # the writer failed (the socket is gone), or the worker
                    closed = tasks[1].exception() if tasks[1].done() and not tasks[1].cancelled() else None
                    if isinstance(closed, _Closed):
                        raise closed
                    return
        except _Closed as closed:
            self.close_code, self.close_reason = closed.code, closed.reason
            await self._flush(tasks[0])
            with contextlib.suppress(Exception):
                await self.ws.close(closed.code, _reason(closed.reason))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            close_async = getattr(self.session, "close_async", None)
            if close_async is not None:
                await close_async()
            elif self.executor is not None:  # queued behind this session's last step, ahead of a new one's
                await asyncio.get_running_loop().run_in_executor(self.executor, self.session.close)
            else:
                await asyncio.to_thread(self.session.close)

    async def _flush(self, writer: asyncio.Task) -> None:
        """Give the writer a moment to send the error that explains the close."""
        for _ in range(20):
            if not self.control_out or writer.done():
                return
            await asyncio.sleep(0.005)


def _kind(reply: dict[str, Any] | Any) -> str | None:
    return reply.get("type") if isinstance(reply, dict) else reply[0]


def _reason(text: str) -> str:
    """A close reason within the protocol's 123 bytes."""
    data = text.encode("utf-8")
    return text if len(data) <= 123 else data[:120].decode("utf-8", "ignore") + "…"


def hello_message(session_id: str, limits: SessionLimits) -> dict[str, Any]:
    """The sink's hello plus this session's id and limits."""
    return {"v": SCHEMA_VERSION, "type": "hello", "server": f"facewire {__version__}", "names": list(arkit.NAMES),
            "landmarks": False, "session": session_id, "limits": limits.to_json_dict()}
