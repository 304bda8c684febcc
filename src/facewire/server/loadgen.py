"""A load generator for the studio's WebSocket API: N sessions, each a 30 fps webcam of a real face.

Each session is a real WebSocket client (``websockets``, asyncio) that sends pre-encoded JPEGs on a
camera's clock — a frame every 1/fps s, phase-shifted per session as independent cameras are — each
stamped with its send time in ``capture_ms`` (the protocol echoes it back as ``capture_ns``). The
frame message that carries a stamp back gives the end-to-end latency (send → FaceFrame received); a
stamp never answered is a frame the server dropped. A session's stamps carry its own offset, so a
frame routed to the wrong session is caught, not counted. `run_load` returns a `LoadResult`;
`connect_cycles` opens and closes sessions one after another (for leak checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .session import HEADER, KIND_JPEG

__all__ = ["FrameSet", "LoadResult", "Progress", "SessionResult", "connect_cycles", "face_jpegs", "run_load"]

SESSION_OFFSET_MS = 1e7  # session i stamps its frames from i × 10⁷ ms: its stamps are its own
GRID_DIR = Path(__file__).resolve().parents[4] / "shared" / "data" / "video" / "grid"


@dataclass(frozen=True)
class FrameSet:
    """The JPEGs every session cycles through, their size and where they came from."""

    jpegs: tuple[bytes, ...]
    size: tuple[int, int]
    quality: int
    source: str

    @property
    def mean_bytes(self) -> float:
        return float(np.mean([len(j) for j in self.jpegs]))

    def describe(self) -> str:
        return (f"{len(self.jpegs)} JPEGs of a real face, {self.size[0]}×{self.size[1]} quality {self.quality} "
                f"(≈{self.mean_bytes / 1024:.1f} KiB each), from {self.source}")


def face_jpegs(size: tuple[int, int] = (320, 240), quality: int = 80, max_frames: int = 150,
               grid_dir: str | Path | None = None) -> FrameSet:
    """Frames of real talking faces (the shared GRID clips) as JPEGs, or the built-in astronaut clip
    when the shared data is absent. 320×240 at quality 80 is what the studio page sends."""
    import cv2

    w, h = size
    if w < 16 or h < 16 or w * h > 1920 * 1080:
        raise InputError(f"frame size: expected between 16×16 and 1920×1080 pixels, got {w}×{h}")
    if not 1 <= quality <= 100:
        raise InputError(f"JPEG quality: expected 1..100, got {quality}")
    folder = Path(grid_dir) if grid_dir is not None else GRID_DIR
    bgr: list[np.ndarray] = []
    clips = sorted(folder.glob("*.mpg")) if folder.is_dir() else []
    for clip in clips:
        cap = cv2.VideoCapture(str(clip))
        try:
            while len(bgr) < max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                bgr.append(cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA))
        finally:
            cap.release()
        if len(bgr) >= max_frames:
            break
    if bgr:
        used = clips[:max(1, -(-len(bgr) // 75))]
        source = f"{folder} ({', '.join(c.name for c in used)}; 360×288 at 25 fps, resized)"
    else:
        from ..samples import astronaut_clip

        bgr = [cv2.cvtColor(image.rgb, cv2.COLOR_RGB2BGR) for image in astronaut_clip(frames=max_frames, size=size)]
        source = "facewire.samples.astronaut_clip (the shared GRID clips are absent)"
    jpegs = []
    for frame in bgr:
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise InputError(f"cannot encode a {w}×{h} frame as JPEG")
        jpegs.append(data.tobytes())
    return FrameSet(tuple(jpegs), (w, h), quality, source)


@dataclass(frozen=True)
class SessionResult:
    """One session's run; counts and latencies cover the measured window (after the warm-up)."""

    index: int
    session_id: str
    sent: int  # frames sent in the window
    skipped: int  # camera ticks the client could not send in time (the client itself was late)
    received: int  # frames of this session that came back (in the window)
    foreign: int  # frame messages whose stamp this session never sent
    out_of_order: int  # frames whose seq did not increase
    latencies_ms: np.ndarray = field(repr=False)
    window_s: float = 0.0
    errors: tuple[str, ...] = ()
    close: str | None = None  # how the server closed the socket, when it did
    sent_s: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # each latency's send, s into the window

    def __post_init__(self) -> None:
        self.latencies_ms.flags.writeable = False
        self.sent_s.flags.writeable = False

    @property
    def delivered_fps(self) -> float:
        return self.received / self.window_s if self.window_s > 0 else 0.0

    @property
    def dropped(self) -> int:
        return self.sent + self.skipped - self.received


@dataclass(frozen=True)
class LoadResult:
    """Every session of one run, with the summary figures a capacity test needs."""

    sessions: tuple[SessionResult, ...]
    fps: float
    window_s: float
    client_late_ms_p99: float  # how late the generator's own sends were (it shares the machine)
    answered: int = 0  # frames answered in the whole run, warm-up included (for CPU per frame)

    @property
    def latencies_ms(self) -> np.ndarray:
        parts = [s.latencies_ms for s in self.sessions]
        return np.concatenate(parts) if parts else np.zeros(0)

    def latency_ms(self, q: float) -> float:
        lat = self.latencies_ms
        return float(np.percentile(lat, q)) if lat.size else float("nan")

    def latency_windows_ms(self, window_s: float, q: float = 95.0) -> list[tuple[float, float, int]]:
        """(start s, q-th percentile latency ms, frames) of each ``window_s`` slice of the run, by send time:
        a soak whose latency creeps up shows it here even when the whole run's percentile passes."""
        sent = np.concatenate([s.sent_s for s in self.sessions]) if self.sessions else np.zeros(0)
        lat = self.latencies_ms
        if window_s <= 0 or sent.size != lat.size or not lat.size:
            return []
        out = []
        for k in range(max(1, math.ceil(self.window_s / window_s - 1e-9))):
            part = lat[(sent >= k * window_s) & (sent < (k + 1) * window_s)]
            out.append((k * window_s, float(np.percentile(part, q)) if part.size else float("nan"), int(part.size)))
        return out

    @property
    def fps_per_session(self) -> np.ndarray:
        return np.array([s.delivered_fps for s in self.sessions])

    @property
    def dropped_pct(self) -> float:
        due = sum(s.sent + s.skipped for s in self.sessions)
        return 100.0 * sum(s.dropped for s in self.sessions) / due if due else 0.0

    @property
    def frames_per_s(self) -> float:
        return sum(s.received for s in self.sessions) / self.window_s if self.window_s > 0 else 0.0

    @property
    def failures(self) -> list[str]:
        """What went wrong beyond slowness: misrouted or reordered frames, errors, closed sockets."""
        out = []
        for s in self.sessions:
            if s.foreign:
                out.append(f"session {s.index}: {s.foreign} frames of another session")
            if s.out_of_order:
                out.append(f"session {s.index}: {s.out_of_order} frames out of order")
            out.extend(f"session {s.index}: {e}" for e in s.errors[:3])
            if s.close:
                out.append(f"session {s.index}: closed by the server ({s.close})")
        return out


def _connect(url: str, timeout_s: float):
    from websockets.asyncio.client import connect

    return connect(url, max_size=None, compression=None, open_timeout=timeout_s, close_timeout=2,
                   ping_interval=None, proxy=None)


class _Client:
    """One webcam session: a sender on the camera clock and a receiver matching frames to stamps."""

    def __init__(self, index: int, frames: FrameSet, fps: float, origin: float) -> None:
        self.index = index
        self.frames = frames
        self.period_s = 1.0 / fps
        self.origin = origin
        self.offset_ms = (index + 1) * SESSION_OFFSET_MS
        self.pending: dict[int, tuple[float, bool]] = {}  # capture_ns → (sent at, in the window)
        self.latencies: list[float] = []
        self.sent_at: list[float] = []  # perf_counter of each measured frame's send, beside its latency
        self.sent = self.skipped = self.received = self.foreign = self.out_of_order = self.answered = 0
        self.late_s: list[float] = []
        self.errors: list[str] = []
        self.close: str | None = None
        self.session_id = ""
        self.last_seq = -1

    async def send(self, ws, start: float, phase_s: float, window: tuple[float, float], stop: asyncio.Event) -> None:
        k = 0
        jpegs = self.frames.jpegs
        while True:
            due = start + phase_s + k * self.period_s
            if due >= window[1] or stop.is_set():
                return
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            measured = window[0] <= due
            k += 1
            if now - due > self.period_s:  # a camera's frame is gone once the next one is due
                self.skipped += measured
                continue
            if measured:
                self.late_s.append(now - due)
            stamp_ms = self.offset_ms + (now - self.origin) * 1e3
            self.pending[round(stamp_ms * 1e6)] = (now, measured)  # the server's own rounding
            self.sent += measured
            await ws.send(HEADER.pack(KIND_JPEG, stamp_ms) + jpegs[(k + self.index * 7) % len(jpegs)])

    async def receive(self, ws) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                continue
            now = time.perf_counter()
            d = json.loads(message)
            kind = d.get("type")
            if kind == "frame":
                entry = self.pending.pop(d.get("capture_ns"), None)
                if entry is None:
                    self.foreign += 1
                    continue
                self.answered += 1
                seq = d.get("seq", -1)
                if seq <= self.last_seq:
                    self.out_of_order += 1
                self.last_seq = seq
                if entry[1]:
                    self.received += 1
                    self.latencies.append((now - entry[0]) * 1e3)
                    self.sent_at.append(entry[0])
            elif kind == "error":
                self.errors.append(str(d.get("message")))
            elif kind == "hello":
                self.session_id = str(d.get("session", ""))

    def result(self, window_s: float, window_start: float) -> SessionResult:
        return SessionResult(self.index, self.session_id, self.sent, self.skipped, self.received, self.foreign,
                             self.out_of_order, np.array(self.latencies, dtype=np.float64), window_s,
                             tuple(self.errors), self.close, np.array(self.sent_at, dtype=np.float64) - window_start)


@dataclass(frozen=True)
class Progress:
    """What a run measured so far (for ``run_load``'s ``stop_when``): seconds into the window, frames
    sent and answered there, and the answers' end-to-end latencies."""

    elapsed_s: float
    sent: int
    received: int
    latencies_ms: np.ndarray = field(repr=False)


async def run_load(url: str, frames: FrameSet, sessions: int, duration_s: float, *, fps: float = 30.0,
                   warmup_s: float = 1.0, drain_s: float = 0.5, connect_timeout_s: float = 30.0,
                   stop_when: Callable[[Progress], bool] | None = None, check_every_s: float = 5.0) -> LoadResult:
    """``sessions`` webcams on ``url`` for ``warmup_s + duration_s``; what the last ``duration_s`` measured.

    Sessions connect first (concurrently), then all cameras start together. A frame not answered
    ``drain_s`` after the last send counts as dropped. ``stop_when`` (asked every ``check_every_s``
    of the window) ends the run early when it says so — a soak already lost need not run to its end;
    the result then covers the shorter window.
    """
    from websockets.exceptions import ConnectionClosed

    if sessions < 1 or duration_s <= 0 or fps <= 0 or warmup_s < 0:
        raise InputError(f"load: expected sessions ≥ 1, duration > 0, fps > 0, warm-up ≥ 0; got {sessions}, "
                         f"{duration_s:g} s, {fps:g}, {warmup_s:g} s")
    origin = time.perf_counter()
    clients = [_Client(i, frames, fps, origin) for i in range(sessions)]
    async with contextlib.AsyncExitStack() as stack:
        sockets = await asyncio.gather(*(stack.enter_async_context(_connect(url, connect_timeout_s))
                                          for _ in clients))
        receivers = [asyncio.create_task(c.receive(ws)) for c, ws in zip(clients, sockets, strict=True)]
        start = time.perf_counter() + 0.1
        window = (start + warmup_s, start + warmup_s + duration_s)
        period = 1.0 / fps
        stop = asyncio.Event()
        senders = [asyncio.create_task(c.send(ws, start, period * i / sessions, window, stop))
                   for i, (c, ws) in enumerate(zip(clients, sockets, strict=True))]
        watcher = asyncio.create_task(_watch(clients, window, stop, stop_when, check_every_s))
        done = await asyncio.gather(*senders, return_exceptions=True)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        ended = min(window[1], max(window[0], time.perf_counter())) if stop.is_set() else window[1]
        duration_s = max(ended - window[0], 1e-9)
        deadline = time.perf_counter() + drain_s
        while time.perf_counter() < deadline and any(any(m for _, m in c.pending.values()) for c in clients):
            await asyncio.sleep(0.01)
        for c, ws, outcome, receiver in zip(clients, sockets, done, receivers, strict=True):
            if isinstance(outcome, ConnectionClosed) or receiver.done():
                rcvd = ws.close_code
                c.close = f"code {rcvd}: {ws.close_reason}" if rcvd is not None else "connection lost"
            elif isinstance(outcome, BaseException):
                c.errors.append(f"send failed: {type(outcome).__name__}: {outcome}")
            receiver.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
    late = np.concatenate([np.array(c.late_s) for c in clients]) * 1e3
    return LoadResult(tuple(c.result(duration_s, window[0]) for c in clients), fps, duration_s,
                      float(np.percentile(late, 99)) if late.size else float("nan"), sum(c.answered for c in clients))


async def _watch(clients: list[_Client], window: tuple[float, float], stop: asyncio.Event,
                 stop_when: Callable[[Progress], bool] | None, every_s: float) -> None:
    if stop_when is None:
        return
    await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
    while True:
        await asyncio.sleep(every_s)
        lat = np.concatenate([np.asarray(c.latencies, np.float64) for c in clients])
        progress = Progress(time.perf_counter() - window[0], sum(c.sent for c in clients),
                            sum(c.received for c in clients), lat)
        if stop_when(progress):
            stop.set()
            return


async def connect_cycles(url: str, jpegs: Sequence[bytes], cycles: int, *, timeout_s: float = 30.0) -> int:
    """Open a session, send one picture, wait for its frame, close — ``cycles`` times; frames received."""
    got = 0
    for i in range(cycles):
        async with _connect(url, timeout_s) as ws:
            json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
            stamp_ms = 1000.0 + i
            await ws.send(HEADER.pack(KIND_JPEG, stamp_ms) + jpegs[i % len(jpegs)])
            while True:
                d = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
                if d.get("type") == "frame" and d.get("capture_ns") == round(stamp_ms * 1e6):
                    got += 1
                    break
    return got
