"""Tracker worker processes for the studio: sessions pinned to a fixed pool, so tracking scales past the GIL.

`WorkerPool` starts N processes (spawned, not forked: the server runs threads). Each new session is
pinned to the least-busy worker for its whole life, so its `StudioSession` — tracker ROI, filters,
calibration, recording — lives in one process. The event loop only moves bytes: it sends a step
(command, audio blocks, the newest JPEG) down a pipe and awaits the replies, already serialised to JSON
in the worker. A worker runs video and audio steps one at a time (no GIL contention, no oversubscribed
cores) and ``say`` on a side thread so speech synthesis never stalls the other sessions' cameras.
`TrackerPool` keeps a worker's idle trackers for the next session: connecting costs no model loading,
and memory stays at the peak number of sessions however many come and go. Workers (and ``facewire
serve``) keep OpenCV and BLAS single-threaded (`single_threaded_kernels`): their own pools cost a
thread's wake-ups per frame and parallelise nothing the studio does not already run in parallel.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import multiprocessing
import os
import pickle
import secrets
import signal
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import InputError

__all__ = ["RemoteSession", "Reply", "TrackerPool", "WorkerGone", "WorkerPool", "default_track_threads",
           "default_workers", "single_threaded_kernels"]

log = logging.getLogger("facewire.server")

TrackerFactory = Callable[[Callable[[], list]], Any]


class Reply(NamedTuple):
    """One server → page message already serialised: its ``type`` and its JSON text."""

    kind: str
    text: str


class WorkerGone(RuntimeError):
    """The worker process holding a session stopped (killed, crashed); the session cannot go on."""


def default_workers() -> int:
    """One worker per CPU this process may use."""
    with contextlib.suppress(AttributeError):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_track_threads() -> int:
    """Tracking threads of a studio without worker processes: more than the cores (as asyncio's own
    pool), so a core never idles while a thread waits for the GIL; the model runs without it.

    Measured on 2 loaded cores (6 sessions): 2 threads lost more frames under the neighbours' load
    than 6, and 6 cost no more CPU per frame (3.7 vs 3.8–4.1 ms).
    """
    return min(32, default_workers() + 4)


def single_threaded_kernels() -> None:
    """OpenCV's and BLAS's own thread pools cut to one thread in this process.

    The studio already tracks sessions in parallel (tracking threads or worker processes); OpenCV's
    ``warpAffine`` (the tracker's crops) spreading one small crop over every core only adds a pool
    thread's wake-ups: measured under load, 0.5–0.7 ms CPU per frame in a second thread of each process.
    Process-wide, so only `facewire serve` and its workers call it.
    """
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    threadpool_limits(limits=1, user_api="blas")


# -- trackers kept for the next session ------------------------------------------------------------------
class _StagesSwitch:
    """The stages factory a pooled tracker calls: it points at the current session's own factory."""

    def __init__(self) -> None:
        self.target: Callable[[], list] = list

    def __call__(self) -> list:
        return self.target()


class TrackerPool:
    """Trackers reused across sessions: `acquire` (a `StudioSession` tracker factory) and `release`.

    A released tracker is `reset` (no ROI, no filter state) before its next session gets it; at most
    ``keep`` idle trackers are kept. Thread-safe.
    """

    def __init__(self, factory: TrackerFactory | None = None, keep: int = 64) -> None:
        self.factory = factory or _default_tracker
        self.keep = int(keep)
        self._idle: list[tuple[Any, _StagesSwitch]] = []
        self._switch: dict[int, _StagesSwitch] = {}
        self._lock = threading.Lock()
        self.created = 0

    def acquire(self, stages: Callable[[], list]) -> Any:
        with self._lock:
            found = self._idle.pop() if self._idle else None
        if found is None:
            switch = _StagesSwitch()
            tracker = self.factory(switch)
            with self._lock:
                self.created += 1
        else:
            tracker, switch = found
            tracker.reset()
        switch.target = stages
        with self._lock:
            self._switch[id(tracker)] = switch
        return tracker

    def release(self, tracker: Any) -> None:
        with self._lock:
            switch = self._switch.pop(id(tracker), None)
            if switch is None:
                return
            switch.target = list  # the finished session's stages are not kept alive by the pool
            if len(self._idle) < self.keep:
                self._idle.append((tracker, switch))

    @property
    def idle(self) -> int:
        return len(self._idle)

    def warm(self) -> None:
        """Make one tracker and run it once, so the first session pays no imports or model loading."""
        import numpy as np

        from ..media import Image

        tracker = self.acquire(list)
        tracker.process(Image(0, np.zeros((240, 320, 3), np.uint8)), source="camera")
        self.release(tracker)


def _default_tracker(stages: Callable[[], list]) -> Any:
    from ..vision.video import TrackerOptions, VideoTracker

    return VideoTracker(options=TrackerOptions(landmarks=False), stages=stages)


# -- the worker process --------------------------------------------------------------------------------
class _WorkerTakes:
    """The worker's view of the server's `TakeStore`: the same folder; the server registers a take when
    the reply announcing it passes through (`RemoteSession`)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def new_id(self) -> str:
        return secrets.token_hex(8)

    def path(self, take_id: str, fmt: str) -> str:
        return os.path.join(self.root, f"{take_id}.{fmt}")

    def add(self, take_id: str, formats: tuple[str, ...]) -> dict[str, str]:
        return {fmt: f"/takes/{take_id}.{fmt}" for fmt in formats}


def _serialise(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    from .session import _dumps

    return [(m.get("type", ""), _dumps(m)) for m in messages]


def _worker_main(conn: Any, takes_root: str, factory: TrackerFactory | None, warm: bool) -> None:
    """A worker's life: sessions by id, requests in arrival order, replies as ``(request id, result)``."""
    from .session import StudioSession

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, and the server stops us
    single_threaded_kernels()
    pool = TrackerPool(factory)
    if warm:
        pool.warm()
    sessions: dict[str, StudioSession] = {}
    slow: set[str] = set()  # sessions with a step on the side thread (speech)
    send_lock = threading.Lock()

    def send(message: Any) -> None:
        with send_lock, contextlib.suppress(OSError, ValueError):
            conn.send(message)

    def requests() -> Iterator[tuple]:
        # Read on this thread: the server never waits on us (it writes through a buffered
        # transport), and a hand-off from a reader thread would cost a GIL switch per picture.
        while True:
            try:
                yield conn.recv()
            except (EOFError, OSError):
                return

    def step(req: int, session: StudioSession, args: tuple) -> None:
        try:
            replies = session.step(*args)
        except InputError as exc:
            send((req, ("error", str(exc))))
        except Exception as exc:  # one failing step must not stop the worker
            log.exception("session %s: step failed", session.id)
            send((req, ("error", f"step failed ({type(exc).__name__}: {exc})")))
        else:
            compute = session.compute_ms[-1] if session.compute_ms else None
            send((req, ("ok", _serialise(replies), session.frames_out, compute)))
        finally:
            slow.discard(session.id)

    def close(req: int, session: StudioSession) -> None:
        session.close()
        sessions.pop(session.id, None)
        send((req, ("ok", [], session.frames_out, None)))

    side = ThreadPoolExecutor(2, thread_name_prefix="facewire-worker-slow")
    send((0, ("ready", os.getpid())))
    for message in requests():
        op, req = message[0], message[1]
        if op == "open":
            _, _, session_id, limits = message
            sessions[session_id] = StudioSession(session_id, _WorkerTakes(takes_root), limits=limits,  # type: ignore[arg-type]
                                                 tracker_factory=pool.acquire, tracker_release=pool.release)
            send((req, ("ok", [], 0, None)))
        elif op == "step":
            _, _, session_id, command, blocks, picture = message
            session = sessions.get(session_id)
            if session is None:
                send((req, ("error", f"session {session_id} is closed")))
            elif session_id in slow or (command is not None and command.get("type") == "say"):
                slow.add(session_id)
                side.submit(step, req, session, (command, blocks, picture))
            else:
                step(req, session, (command, blocks, picture))
        elif op == "close":
            session = sessions.get(message[2])
            if session is None:
                send((req, ("ok", [], 0, None)))
            elif session.id in slow:  # its speech is still being made: close after it, off this thread
                side.submit(close, req, session)
            else:
                close(req, session)
        elif op == "stats":
            send((req, ("stats", {"pid": os.getpid(), "sessions": len(sessions), "trackers_idle": pool.idle,
                                  "trackers_made": pool.created})))
        elif op == "stop":
            break
    side.shutdown(wait=True, cancel_futures=True)
    for session in list(sessions.values()):
        session.close()


# -- the server's side ---------------------------------------------------------------------------------
_HEADER = struct.Struct("!i")  # multiprocessing.Connection's framing: a signed 32-bit big-endian length


@dataclass
class _Worker:
    index: int
    process: Any
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pid: int
    sessions: int = 0
    alive: bool = True


class WorkerPool:
    """N tracker processes; `open` pins a new session to the least-busy one. `start` waits until every
    worker has loaded its models; `close` stops them.

    The server's end of each worker's pipe is an asyncio stream speaking `multiprocessing.Connection`'s
    framing: requests are written without waiting and replies are read by one task per worker, so the
    event loop never blocks on a worker and no thread hands replies over.
    """

    def __init__(self, workers: int, takes_root: str, *, tracker_factory: TrackerFactory | None = None,
                 warm: bool = True, start_timeout_s: float = 120.0) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InputError(f"workers: expected a positive whole number, got {workers!r}")
        self.size = workers
        self.takes_root = takes_root
        self.tracker_factory = tracker_factory
        self.warm = warm
        self.start_timeout_s = float(start_timeout_s)
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._readers: list[asyncio.Task] = []
        self._pending: dict[int, tuple[_Worker, asyncio.Future]] = {}
        self._ids = itertools.count(1)
        self._respawn = asyncio.Lock()
        self.closed = False

    # -- life ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every worker (concurrently) and wait until each is ready."""
        started = await asyncio.gather(*(asyncio.to_thread(self._launch, i) for i in range(self.size)),
                                       return_exceptions=True)
        failed = next((r for r in started if isinstance(r, BaseException)), None)
        for r in started:
            if not isinstance(r, BaseException):
                self._workers.append(await self._attach(*r))
        if failed is not None:
            await self.aclose()
            raise failed

    def _launch(self, index: int) -> tuple[int, Any, socket.socket, int]:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=_worker_main, name=f"facewire-tracker-{index}", daemon=True,
                                    args=(child, self.takes_root, self.tracker_factory, self.warm))
        process.start()
        child.close()
        try:
            if not parent.poll(self.start_timeout_s):
                process.kill()
                raise WorkerGone(f"tracker worker {index} did not start within {self.start_timeout_s:g} s")
            try:
                _, (state, pid) = parent.recv()
            except (EOFError, OSError):
                raise WorkerGone(f"tracker worker {index} stopped while starting (exit code "
                                 f"{process.exitcode})") from None
            if state != "ready":
                raise WorkerGone(f"tracker worker {index} said {state!r} instead of ready")
            sock = socket.socket(fileno=os.dup(parent.fileno()))
        finally:
            parent.close()
        return index, process, sock, pid

    async def _attach(self, index: int, process: Any, sock: socket.socket, pid: int) -> _Worker:
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 22)
        worker = _Worker(index, process, reader, writer, pid)
        self._readers.append(asyncio.create_task(self._read(worker), name=f"facewire-pool-reader-{index}"))
        return worker

    def _join(self, timeout_s: float) -> None:
        for worker in self._workers:
            worker.process.join(timeout_s)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)

    def close(self) -> None:
        """Stop every worker at once (SIGTERM, then SIGKILL): for a pool whose event loop is gone."""
        self.closed = True
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
        self._join(5)

    async def aclose(self) -> None:
        """Stop every worker: ask each to stop (it closes its sessions), kill what is left after 5 s."""
        if self.closed:
            return
        self.closed = True
        for worker in self._workers:
            if not worker.writer.is_closing():
                worker.writer.write(_frame(("stop", 0)))
        await asyncio.to_thread(self._join, 5)
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for worker in self._workers:
            worker.writer.close()

    # -- requests --------------------------------------------------------------------------------
    async def _read(self, worker: _Worker) -> None:
        try:
            while True:
                (size,) = _HEADER.unpack(await worker.reader.readexactly(_HEADER.size))
                if size == -1:  # over 2 GiB: an 8-byte length follows
                    (size,) = struct.unpack("!Q", await worker.reader.readexactly(8))
                req, result = pickle.loads(await worker.reader.readexactly(size))
                entry = self._pending.pop(req, None)
                if entry is not None and not entry[1].done():
                    entry[1].set_result(result)
        except (asyncio.IncompleteReadError, OSError):
            pass
        except Exception:  # a reply that does not unpickle: a broken worker
            log.exception("tracker worker %d sent a bad reply", worker.index)
        finally:
            self._lost(worker)

    def _lost(self, worker: _Worker) -> None:
        worker.alive = False
        if not self.closed:
            log.error("tracker worker %d (pid %d) stopped, exit code %s", worker.index, worker.pid,
                      worker.process.exitcode)
        for req, (owner, future) in list(self._pending.items()):
            if owner is worker:
                del self._pending[req]
                if not future.done():
                    future.set_exception(WorkerGone(f"the tracking worker (pid {worker.pid}) stopped"))

    async def _request(self, worker: _Worker, *message: Any) -> Any:
        if not worker.alive or worker.writer.is_closing():
            raise WorkerGone(f"the tracking worker (pid {worker.pid}) stopped")
        req = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[req] = (worker, future)
        worker.writer.write(_frame((message[0], req, *message[1:])))  # buffered: never waits on the worker
        try:
            return await future
        finally:
            self._pending.pop(req, None)

    async def open(self, session_id: str, limits: Any, takes: Any) -> RemoteSession:
        """A new session on the least-busy worker (a dead worker is replaced first)."""
        if self.closed:
            raise WorkerGone("the worker pool is closed")
        if not all(w.alive for w in self._workers):
            async with self._respawn:  # one replacement per dead worker, however many pages connect
                for i, worker in enumerate(self._workers):
                    if not worker.alive:
                        worker.writer.close()
                        self._workers[i] = await self._attach(*await asyncio.to_thread(self._launch, worker.index))
        worker = min(self._workers, key=lambda w: (w.sessions, w.index))
        worker.sessions += 1
        try:
            await self._request(worker, "open", session_id, limits)
        except BaseException:
            worker.sessions -= 1
            raise
        return RemoteSession(self, worker, session_id, takes)

    async def stats(self) -> list[dict[str, Any]]:
        out = []
        for worker in self._workers:
            try:
                _, stats = await asyncio.wait_for(self._request(worker, "stats"), 5.0)
            except (WorkerGone, TimeoutError):
                stats = {"pid": worker.pid, "sessions": None}
            out.append({**stats, "alive": worker.alive, "assigned": worker.sessions})
        return out

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self._workers]


def _frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


class RemoteSession:
    """The server's handle on a `StudioSession` living in a worker: what `SessionRunner` needs of one."""

    def __init__(self, pool: WorkerPool, worker: _Worker, session_id: str, takes: Any) -> None:
        self.pool = pool
        self.worker = worker
        self.id = session_id
        self.takes = takes
        self.closed = False
        self.frames_out = 0
        self.compute_ms: collections.deque[float] = collections.deque(maxlen=120)

    async def step_async(self, command: dict[str, Any] | None, blocks: list[tuple[bytes, int]],
                         picture: tuple[bytes, int] | None) -> list[Reply]:
        """One round in the worker (see `StudioSession.step`); `InputError` for a failed round."""
        result = await self.pool._request(self.worker, "step", self.id, command, blocks, picture)
        if result[0] == "error":
            raise InputError(result[1])
        _, replies, frames_out, compute_ms = result
        self.frames_out = frames_out
        if compute_ms is not None:
            self.compute_ms.append(compute_ms)
        out = []
        for kind, text in replies:
            if kind == "take" and '"files"' in text:
                self._register_take(json.loads(text)["files"])
            out.append(Reply(kind, text))
        return out

    def _register_take(self, files: dict[str, str]) -> None:
        take_id = next(iter(files.values())).rsplit("/", 1)[-1].split(".", 1)[0]
        self.takes.add(take_id, tuple(files))

    async def close_async(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.worker.sessions -= 1
        with contextlib.suppress(WorkerGone):
            await self.pool._request(self.worker, "close", self.id)
