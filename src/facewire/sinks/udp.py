"""What every UDP sink and receiver shares: a sender that never blocks, a receiver that never crashes.

`UdpSender` is the base of the live sinks. ``send(frame)`` only appends to a bounded queue (1 or 2
frames) that drops its oldest frame when full; a background thread takes frames from it no faster
than ``max_rate_hz`` on average, encodes each into datagrams (``encode``, the one method a protocol writes) and
sends them on a non-blocking socket, counting a datagram the kernel will not take (``EAGAIN``,
``ENOBUFS``, or ``ECONNREFUSED`` when nobody listens) as dropped rather than waiting. So a slow or
absent receiver costs the pipeline nothing but frames, and `statistics()` says how many.

`UdpReceiver` is the base of the receivers: a bound socket with a timeout, a maximum datagram size,
and ``decode`` (again the one protocol method) turning a datagram into frames. A datagram that does
not decode is counted and skipped, never raised: a receiver faces whatever the network sends.
"""

from __future__ import annotations

import collections
import errno
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Self

from ..errors import InputError, OutputError
from ..frame import FaceFrame

__all__ = ["ReceiverStats", "SenderStats", "UdpReceiver", "UdpSender"]

_DEFAULT: float = -1.0  # "the receiver's own timeout" (a sentinel: a real timeout is > 0 or None)
_DROP_ERRNOS = {errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.ECONNREFUSED, errno.EMSGSIZE}


def _resolve(host: str, port: int, passive: bool = False):
    """(family, type, proto, address) for a UDP endpoint, IPv4 first so that ``localhost`` means the
    same address to a sender and a receiver whatever order the resolver lists it in."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE if passive else 0)
    family, kind, proto, _, address = next((i for i in infos if i[0] == socket.AF_INET), infos[0])
    return family, kind, proto, address


@dataclass(frozen=True)
class SenderStats:
    """What a sender did. ``frames_in`` = frames given to ``send``; each ends up ``frames_sent``,
    ``frames_dropped`` (pushed out of the queue by a newer one) or ``frames_failed`` (could not be
    encoded), or is still ``queued``. ``packets_dropped`` counts datagrams the socket refused."""

    frames_in: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    frames_failed: int = 0
    queued: int = 0
    packets_sent: int = 0
    packets_dropped: int = 0
    bytes_sent: int = 0
    last_error: str = ""

    @property
    def dropped(self) -> int:
        """Everything that did not reach the wire: dropped frames plus dropped datagrams."""
        return self.frames_dropped + self.packets_dropped


class UdpSender:
    """Base of the UDP sinks; a subclass implements ``encode(frame) -> list[bytes]``.

    ``max_rate_hz`` bounds the frames sent per second (``None``: as fast as they come; short
    bursts of `PACING_BURST` frames pass at once, so that jitter does not cost frames);
    ``queue_size`` (1 or 2) is how many frames may wait. Only frames of face ``face`` are sent.
    The socket is opened on ``__enter__`` and the thread stops on ``__exit__``, after sending what is
    still queued.
    """

    default_port: int = 0
    protocol: str = "udp"
    PACING_BURST = 2
    """Frames that may go out back to back after a pause (the token bucket's depth)."""
    URL_OPTIONS: Mapping[str, Callable[[str], object]] = {}
    """Options `facewire.sinks.open_sink` accepts in a URL's query: name → converter from text."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, max_rate_hz: float | None = 120.0,
                 queue_size: int = 2, face: int = 0) -> None:
        port = self.default_port if port is None else port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InputError(f"{self.protocol} port: expected an integer in 1..65535, got {port!r}")
        if max_rate_hz is not None and not (isinstance(max_rate_hz, (int, float)) and max_rate_hz > 0):
            raise InputError(f"{self.protocol} max_rate_hz: expected a positive number or None, got {max_rate_hz!r}")
        if queue_size not in (1, 2):
            raise InputError(f"{self.protocol} queue_size: expected 1 or 2, got {queue_size!r}")
        self.host, self.port, self.face = str(host), port, int(face)
        self.max_rate_hz = None if max_rate_hz is None else float(max_rate_hz)
        self.queue_size = queue_size
        self._queue: collections.deque[FaceFrame] = collections.deque()
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # the sender thread waits here for frames
        self._idle = threading.Condition(lock)  # `flush` waits here for the queue to empty
        self._busy = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._counts = {"frames_in": 0, "frames_sent": 0, "frames_dropped": 0, "frames_failed": 0,
                        "packets_sent": 0, "packets_dropped": 0, "bytes_sent": 0}
        self._last_error = ""

    # -- the one method a protocol writes -------------------------------------------------------
    def encode(self, frame: FaceFrame) -> Sequence[bytes]:
        """The datagrams that carry ``frame`` (runs on the sender thread, in frame order)."""
        raise NotImplementedError

    # -- sink protocol ----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self._thread is not None:
            raise OutputError(f"{self}: sender is already open")
        try:
            family, kind, proto, address = _resolve(self.host, self.port)
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise OutputError(f"{self}: cannot open a UDP socket ({exc.strerror or exc})") from exc
        try:
            sock.setblocking(False)
            # connect() only sets the default destination; it lets ICMP "port unreachable" come back
            # as ECONNREFUSED on a later send, which is counted as a dropped datagram.
            sock.connect(address)
        except OSError as exc:
            sock.close()
            raise OutputError(f"{self}: cannot reach {self.host}:{self.port} ({exc.strerror or exc})") from exc
        self._sock, self._closing = sock, False
        self._thread = threading.Thread(target=self._run, name=f"facewire-{self.protocol}-sender", daemon=True)
        self._thread.start()
        return self

    def send(self, frame: FaceFrame) -> None:
        """Queue ``frame`` for sending and return at once; the oldest waiting frame gives way."""
        if frame.face != self.face:
            return
        with self._cond:
            if self._thread is None:
                raise OutputError(f"{self}: sink is not open (use it in a with block)")
            self._counts["frames_in"] += 1
            if len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self._counts["frames_dropped"] += 1
            self._queue.append(frame)
            self._cond.notify()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued frame has been sent; False if ``timeout_s`` ran out first.

        Never needed in a pipeline (``send`` never waits); it lets a producer go no faster than the
        sink, e.g. to measure that nothing is lost between a sink and its receiver.
        """
        with self._cond:
            if self._thread is None:
                return not self._queue
            return self._idle.wait_for(lambda: not self._queue and not self._busy, timeout_s)

    def __exit__(self, *exc: object) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            with self._cond:
                self._closing = True
                self._cond.notify()
            thread.join(timeout=5.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def statistics(self) -> SenderStats:
        with self._cond:
            return SenderStats(queued=len(self._queue), last_error=self._last_error, **self._counts)

    def __repr__(self) -> str:
        return f"{self.protocol}://{self.host}:{self.port}"

    # -- the sender thread ------------------------------------------------------------------------
    def _run(self) -> None:
        # Pacing is a token bucket: one token per frame, refilled at max_rate_hz, holding at most
        # PACING_BURST tokens. The average rate never exceeds max_rate_hz, yet a frame that comes
        # early after a late one (scheduling jitter) goes out at once instead of waiting a period.
        rate = self.max_rate_hz
        tokens, last = float(self.PACING_BURST), time.monotonic()
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                if rate is not None and not self._closing:  # closing: send what is left at once
                    while True:
                        now = time.monotonic()
                        tokens = min(float(self.PACING_BURST), tokens + (now - last) * rate)
                        last = now
                        if tokens >= 1.0 or not self._queue or self._closing:
                            break
                        # Frames that arrive meanwhile push out older ones (drop the oldest).
                        self._cond.wait((1.0 - tokens) / rate)
                    if not self._queue:
                        continue
                    tokens = max(0.0, tokens - 1.0)
                frame = self._queue.popleft()
                self._busy = True
            try:
                self._send_frame(frame)
            finally:
                with self._cond:
                    self._busy = False
                    self._idle.notify_all()

    def _send_frame(self, frame: FaceFrame) -> None:
        try:
            packets = self.encode(frame)
        except Exception as exc:  # noqa: BLE001 - a frame that cannot be encoded must not stop the stream
            with self._cond:
                self._counts["frames_failed"] += 1
                self._last_error = f"encode: {type(exc).__name__}: {exc}"
            return
        sent = dropped = nbytes = 0
        error = ""
        sock = self._sock
        for packet in packets:
            try:
                sock.send(packet)
                sent += 1
                nbytes += len(packet)
            except OSError as exc:
                dropped += 1
                if exc.errno not in _DROP_ERRNOS:
                    error = f"send: {exc.strerror or exc}"
        with self._cond:
            self._counts["frames_sent"] += 1
            self._counts["packets_sent"] += sent
            self._counts["packets_dropped"] += dropped
            self._counts["bytes_sent"] += nbytes
            if error:
                self._last_error = error


@dataclass(frozen=True)
class ReceiverStats:
    """What a receiver saw: datagrams, the ones that did not decode, and the frames they made.

    ``last_error`` is the message of the latest bad datagram; ``unexpected`` counts bad datagrams
    whose decoder failed with something other than `InputError` (a bug, never a network condition).
    """

    packets: int = 0
    bad_packets: int = 0
    frames: int = 0
    unexpected: int = 0
    last_error: str = ""


class UdpReceiver:
    """Base of the receivers; a subclass implements ``decode(datagram) -> list[FaceFrame]``.

    Binds ``host:port`` (port 0 picks a free one; see `address`) on ``__enter__``. `frames` yields
    decoded frames until ``count`` arrived or nothing came for ``timeout_s`` seconds.
    A subclass whose frames span several datagrams sets ``idle_flush_s``: after that long without a
    datagram it calls ``flush()`` for what has accumulated.
    """

    default_port: int = 0
    protocol: str = "udp"
    idle_flush_s: float | None = None

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, timeout_s: float | None = 1.0,
                 max_datagram: int = 65536, recv_buffer_bytes: int = 4 << 20) -> None:
        port = self.default_port if port is None else port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
            raise InputError(f"{self.protocol} port: expected an integer in 0..65535, got {port!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise InputError(f"{self.protocol} timeout_s: expected a positive number or None, got {timeout_s!r}")
        if not 1 <= max_datagram <= 65536:
            raise InputError(f"{self.protocol} max_datagram: expected 1..65536 bytes, got {max_datagram!r}")
        self.host, self.port = str(host), port
        self.timeout_s, self.max_datagram, self.recv_buffer_bytes = timeout_s, max_datagram, recv_buffer_bytes
        self._sock: socket.socket | None = None
        self._buf = bytearray(max_datagram + 1)  # one spare byte tells an oversized datagram
        self._counts = {"packets": 0, "bad_packets": 0, "frames": 0, "unexpected": 0}
        self._last_error = ""
        self._seq = 0

    # -- the protocol methods ---------------------------------------------------------------------
    def decode(self, data: bytes) -> list[FaceFrame]:
        """Frames completed by one datagram; `InputError` when it is malformed."""
        raise NotImplementedError

    def flush(self) -> list[FaceFrame]:
        """Frames still accumulating when the sender fell quiet (see ``idle_flush_s``)."""
        return []

    # -- context manager ----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self._sock is not None:
            raise InputError(f"{self.protocol} receiver is already open")
        try:
            family, kind, proto, address = _resolve(self.host, self.port, passive=True)
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise InputError(f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc})") from exc
        try:
            try:  # a deep buffer rides out bursts; the kernel caps it at net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.recv_buffer_bytes)
            except OSError:
                pass
            sock.bind(address)
        except OSError as exc:
            sock.close()
            raise InputError(f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc})") from exc
        self._sock = sock
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): the real port when 0 was asked for."""
        if self._sock is None:
            return self.host, self.port
        host, port = self._sock.getsockname()[:2]
        return host, port

    def statistics(self) -> ReceiverStats:
        return ReceiverStats(last_error=self._last_error, **self._counts)

    # -- receiving ----------------------------------------------------------------------------------
    def receive(self, timeout_s: float | None = None) -> bytes | None:
        """One raw datagram, or None when none came within ``timeout_s`` (default: the receiver's)."""
        if self._sock is None:
            raise InputError(f"{self.protocol} receiver is not open (use it in a with block)")
        self._sock.settimeout(self.timeout_s if timeout_s is None else timeout_s)
        while True:
            try:
                n = self._sock.recv_into(self._buf)
            except (TimeoutError, BlockingIOError):
                return None
            except ConnectionRefusedError:  # an ICMP error about an earlier send: not data
                continue
            return bytes(memoryview(self._buf)[:n])

    def process(self, data: bytes) -> list[FaceFrame]:
        """Decode one datagram, counting instead of raising when it is bad."""
        self._counts["packets"] += 1
        try:
            if len(data) > self.max_datagram:
                raise InputError(f"{self.protocol} datagram: oversized: more than {self.max_datagram} bytes")
            frames = self.decode(data)
        except InputError as exc:
            self._counts["bad_packets"] += 1
            self._last_error = str(exc)
            return []
        except Exception as exc:  # noqa: BLE001 - garbage must never end a receiver; counted apart so tests see it
            self._counts["bad_packets"] += 1
            self._counts["unexpected"] += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            return []
        self._counts["frames"] += len(frames)
        return frames

    def frames(self, count: int | None = None, timeout_s: float | None = _DEFAULT) -> Iterator[FaceFrame]:
        """Decoded frames as they arrive: stops after ``count`` frames, or when no datagram came for
        ``timeout_s`` seconds (default: the receiver's ``timeout_s``; None waits forever)."""
        idle = self.timeout_s if timeout_s is _DEFAULT else timeout_s
        produced = 0
        pending = False
        while count is None or produced < count:
            wait = self.idle_flush_s if pending and self.idle_flush_s is not None else idle
            data = self.receive(wait)
            if data is None:
                if pending:
                    pending = False
                    out = self.flush()
                    self._counts["frames"] += len(out)
                else:
                    return
            else:
                out = self.process(data)
                pending = self.idle_flush_s is not None and self._pending()
            for frame in out:
                yield frame
                produced += 1
                if count is not None and produced >= count:
                    return

    def _pending(self) -> bool:
        """Whether ``flush()`` would return something (subclasses with ``idle_flush_s`` override)."""
        return False

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq - 1
