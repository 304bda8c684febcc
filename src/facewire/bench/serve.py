"""``facewire bench serve``: how many 30 fps webcam sessions one machine's studio holds, a soak, a leak check.

``facewire serve`` runs as a subprocess on 127.0.0.1; `facewire.server.loadgen` (in this process)
opens N real WebSocket sessions sending real face JPEGs at 30 fps and measures end-to-end latency
(send → the FaceFrame for that picture) and delivered fps. Sessions ramp 1, 2, 4, 8, … until a step
fails, then the gap is bisected. A session counts as held when p95 latency over all frames is under
``--p95-ms`` AND every session gets at least ``--min-fps`` frames back per second (a 30 fps webcam
served at a fraction of its rate is not held). A short step only predicts; the number reported is the
soak's: the ramp's capacity is soaked (``--soak-seconds``, RSS sampled, should stay flat) and, when
the soak breaks the bound, one step lower is soaked again (`backoff`, at most ``--soak-tries``
soaks; a soak already lost stops early, `soak_lost`) — "sustained" is the count that held a whole
soak. Then connect/disconnect cycles (server RSS and open FDs should return to their baseline).
The generator shares the machine with the server: its own lateness is printed beside each step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["HELP", "add_arguments", "backoff", "is_held", "main", "soak_counts", "soak_lost"]

HELP = "live capacity of the studio: 30 fps webcam sessions held under p95 < 50 ms, soak, leak check"


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)[x×](\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}")
    return int(match[1]), int(match[2])


def _workers(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected worker counts such as 2 or 0,2, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected worker counts ≥ 0 such as 2 or 0,2, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=_workers, default=None, metavar="N[,N…]",
                   help="tracker processes of the server; several (e.g. 0,2) compare them; 0 = threads "
                        "(default 0, as facewire serve)")
    p.add_argument("--track-threads", type=int, default=None, metavar="N",
                   help="with --workers 0: the server's tracking threads (default: facewire serve's, cores + 4)")
    p.add_argument("--step-s", type=float, default=10.0, help="measured seconds per ramp step (default 10)")
    p.add_argument("--warmup-s", type=float, default=1.5, help="unmeasured seconds before each step (default 1.5)")
    p.add_argument("--max-sessions", type=int, default=256, help="stop the ramp here (default 256)")
    p.add_argument("--retries", type=int, default=1,
                   help="run a failing step again this many times before it counts as failed (default 1)")
    p.add_argument("--p95-ms", type=float, default=50.0, help="latency bound for a held step (default 50)")
    p.add_argument("--min-fps", type=float, default=25.0,
                   help="frames back per second every session must get (default 25 of 30)")
    p.add_argument("--fps", type=float, default=30.0, help="camera rate of each session (default 30)")
    p.add_argument("--size", type=_size, default=(320, 240), help="JPEG size (default 320x240, as the page sends)")
    p.add_argument("--quality", type=int, default=80, help="JPEG quality (default 80, as the page sends)")
    p.add_argument("--soak-seconds", "--soak-s", dest="soak_s", type=float, default=300.0,
                   help="hold the capacity for this long, sampling RSS (default 300; 0 skips)")
    p.add_argument("--soak-sessions", type=int, default=None,
                   help="sessions in the first soak (default: the ramp's capacity)")
    p.add_argument("--soak-tries", type=int, default=4,
                   help="soaks at most, each one step lower than a soak that broke the bound (default 4)")
    p.add_argument("--cycles", type=int, default=200, help="connect/disconnect cycles of the leak check (default 200; "
                                                            "0 skips)")


# -- the server under test -------------------------------------------------------------------------------
class _Server:
    """``facewire serve`` in a subprocess on a free port, and its processes' CPU, RSS and FDs."""

    def __init__(self, workers: int, max_sessions: int, track_threads: int | None = None) -> None:
        self.workers = workers
        cmd = [sys.executable, "-m", "facewire", "serve", "--host", "127.0.0.1", "--port", "0", "--workers",
               str(workers), "--max-sessions", str(max_sessions), "--idle-timeout", "120"]
        if track_threads is not None:
            cmd += ["--track-threads", str(track_threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        lines = []
        while True:
            line = self.proc.stderr.readline()
            if not line:
                self.stop()
                raise InputError(f"facewire serve did not start: {' '.join(lines).strip()[-300:] or 'no output'}")
            lines.append(line)
            match = re.search(r"studio at http://127\.0\.0\.1:(\d+)/", line)
            if match:
                break
        self.port = int(match[1])
        self.http = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}/ws"
        deadline = time.monotonic() + 180
        while True:  # the app answers once its workers have loaded their models
            try:
                self.metrics()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise InputError("facewire serve did not answer within 180 s") from None
                time.sleep(0.2)
        import psutil

        self.processes = [psutil.Process(self.proc.pid)] + [psutil.Process(w["pid"]) for w in self.metrics()["workers"]]

    def metrics(self) -> dict[str, Any]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.http + "/metrics", timeout=10) as response:
            return json.loads(response.read())

    def cpu_s(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self.processes)

    def rss_mb(self) -> float:
        return sum(p.memory_info().rss for p in self.processes) / 2**20

    def fds(self) -> int:
        return sum(p.num_fds() for p in self.processes)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.metrics()["sessions"]:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stderr.close()


# -- the verdicts (pure) ----------------------------------------------------------------------------------
def is_held(p95_ms: float, fps_min: float, failures: tuple[str, ...] | list[str], *, p95_limit_ms: float,
         min_fps: float) -> bool:
    """Whether a run held its sessions: p95 under the bound, every session served at least ``min_fps``,
    nothing misrouted, no error, no socket closed."""
    return bool(not failures and p95_ms < p95_limit_ms and fps_min >= min_fps)


def backoff(sessions: int) -> int:
    """The sessions of the next soak after one at ``sessions`` broke the bound: one ramp step lower
    (the ramp's resolution, an eighth, at least one session); 0 when nothing is left to try."""
    return max(0, sessions - max(1, sessions // 8))


def soak_counts(capacity: int, tries: int) -> list[int]:
    """The sessions of each soak, in order, until one holds: the ramp's ``capacity``, then one
    `backoff` step lower each time, at most ``tries`` soaks and never below one session."""
    out: list[int] = []
    n = capacity
    while n >= 1 and len(out) < tries:
        out.append(n)
        n = backoff(n)
    return out


def soak_lost(late: int, sessions: int, fps: float, duration_s: float, q: float = 95.0) -> bool:
    """True once a soak's ``q``-th percentile latency can no longer come under the bound: ``late``
    frames (answered at or over it) already exceed ``100 − q`` % of every frame the whole soak sends."""
    return late > (1.0 - q / 100.0) * sessions * fps * duration_s


# -- ramp ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Step:
    sessions: int
    fps_median: float
    fps_min: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    dropped_pct: float
    frames_per_s: float
    cpu_pct: float
    rss_mb: float
    client_late_ms: float
    failures: tuple[str, ...]
    held: bool
    cpu_ms_per_frame: float = float("nan")


_HEAD = ("  sessions  fps/session med   min   latency p50    p95    p99 ms  dropped  frames/s  server CPU   RSS MB"
         "  gen late p99")


def _row(s: _Step) -> str:
    return (f"  {s.sessions:8d}  {s.fps_median:15.1f} {s.fps_min:5.1f}  {s.p50_ms:11.1f} {s.p95_ms:6.1f} {s.p99_ms:6.1f}"
            f"    {s.dropped_pct:5.1f}%  {s.frames_per_s:8.0f}  {s.cpu_pct:9.0f}%  {s.rss_mb:7.0f}  {s.client_late_ms:9.1f} ms"
            f"  {'held' if s.held else 'NOT held'}  {s.cpu_ms_per_frame:.2f} ms CPU/frame"
            f"{'  ' + s.failures[0] if s.failures else ''}")


def _step(server: _Server, frames, sessions: int, args: argparse.Namespace) -> _Step:
    from ..server.loadgen import run_load

    cpu0, t0 = server.cpu_s(), time.monotonic()
    result = asyncio.run(run_load(server.ws, frames, sessions, args.step_s, fps=args.fps, warmup_s=args.warmup_s))
    cpu_s = server.cpu_s() - cpu0
    cpu_pct = 100.0 * cpu_s / (time.monotonic() - t0)
    # CPU per answered frame (warm-up included in both): robust to neighbours, unlike latency
    cpu_ms = 1e3 * cpu_s / max(1, result.answered)
    rss = server.rss_mb()
    server.wait_idle()
    fps = result.fps_per_session
    failures = tuple(result.failures)
    p95 = result.latency_ms(95)
    ok = is_held(p95, float(fps.min()), failures, p95_limit_ms=args.p95_ms, min_fps=args.min_fps)
    return _Step(sessions, float(np.median(fps)), float(fps.min()), result.latency_ms(50), p95, result.latency_ms(99),
                 result.dropped_pct, result.frames_per_s, cpu_pct, rss, result.client_late_ms_p99, failures, ok,
                 cpu_ms)


def _holds(server: _Server, frames, n: int, args: argparse.Namespace) -> bool:
    """One step, run again (up to ``--retries`` times) when it fails: a shared machine's neighbours
    can spoil one window; every run is printed."""
    for attempt in range(1 + args.retries):
        step = _step(server, frames, n, args)
        print(_row(step) + ("  (retry)" if attempt else ""), flush=True)
        if step.held:
            return True
    return False


def _ramp(server: _Server, frames, args: argparse.Namespace) -> int:
    print(_HEAD)
    held, failed, n = 0, None, 1
    while n <= args.max_sessions:
        if not _holds(server, frames, n, args):
            failed = n
            break
        held = n
        n *= 2
    while failed is not None and failed - held > max(1, held // 8):  # bisect the gap to within an eighth
        n = (held + failed) // 2
        held, failed = (n, failed) if _holds(server, frames, n, args) else (held, n)
    return held


# -- soak and leak check -----------------------------------------------------------------------------------
def _soak(server: _Server, frames, sessions: int, args: argparse.Namespace) -> bool:
    """One soak at ``sessions``, printed; whether it held (it stops early once it cannot)."""
    from ..server.loadgen import Progress, run_load

    samples: list[tuple[float, float]] = []

    def lost(progress: Progress) -> bool:
        late = int((progress.latencies_ms >= args.p95_ms).sum())
        return soak_lost(late, sessions, args.fps, args.soak_s)

    async def soak() -> Any:
        async def sample() -> None:
            t0 = time.monotonic()
            while True:
                samples.append((time.monotonic() - t0, server.rss_mb()))
                await asyncio.sleep(10.0)

        sampler = asyncio.create_task(sample())
        try:
            return await run_load(server.ws, frames, sessions, args.soak_s, fps=args.fps, warmup_s=args.warmup_s,
                                  stop_when=lost, check_every_s=min(10.0, max(1.0, args.soak_s / 10)))
        finally:
            sampler.cancel()

    cpu0, t0 = server.cpu_s(), time.monotonic()
    result = asyncio.run(soak())
    cpu_s = server.cpu_s() - cpu0
    cpu_pct = 100.0 * cpu_s / (time.monotonic() - t0)
    server.wait_idle()
    fps = result.fps_per_session
    p95 = result.latency_ms(95)
    ok = is_held(p95, float(fps.min()), result.failures, p95_limit_ms=args.p95_ms, min_fps=args.min_fps)
    stopped = result.window_s < args.soak_s - 0.5
    print(f"soak: {sessions} sessions {'held' if ok else 'NOT held'} for {result.window_s:.0f} s"
          f"{f' (stopped early: p95 can no longer come under {args.p95_ms:g} ms)' if stopped else ''} — "
          f"{result.frames_per_s:.0f} frames/s ({np.median(fps):.1f} per session, min {fps.min():.1f}), latency p50 "
          f"{result.latency_ms(50):.1f} p95 {p95:.1f} p99 {result.latency_ms(99):.1f} ms, dropped "
          f"{result.dropped_pct:.1f}%, server CPU {cpu_pct:.0f}% ({1e3 * cpu_s / max(1, result.answered):.2f} ms "
          f"CPU/frame), load average {os.getloadavg()[0]:.2f}")
    if result.failures:
        print(f"  problems: {'; '.join(result.failures[:5])}")
    slice_s = 60.0 if args.soak_s >= 120 else max(1.0, args.soak_s / 5)
    windows = result.latency_windows_ms(slice_s)
    if len(windows) > 1:
        print(f"  p95 ms per {slice_s:g} s: " + " ".join(f"{p:.1f}" for _, p, _ in windows))
    t = np.array([s[0] for s in samples])
    rss = np.array([s[1] for s in samples])
    print("  server RSS (MB) every 10 s: " + " ".join(f"{v:.0f}" for v in rss))
    later = t >= min(60.0, t[-1] / 3) if len(t) else t
    if later.sum() >= 3:
        slope = float(np.polyfit(t[later] / 60.0, rss[later], 1)[0])
        grew = rss[later][-1] - rss[later][0]
        flat = abs(slope) < 1.0 and grew < max(5.0, 0.02 * rss[later][0])
        print(f"  after warm-up: {rss[later][0]:.0f} → {rss[later][-1]:.0f} MB, slope {slope:+.2f} MB/min — "
              f"memory {'flat' if flat else 'GROWING'}")
    return ok


def _sustain(server: _Server, frames, sessions: int, args: argparse.Namespace) -> int:
    """Soak at ``sessions``, backing off one step after each soak that broke the bound; the count
    that held a whole soak (0: none within ``--soak-tries``)."""
    tried = []
    for n in soak_counts(sessions, args.soak_tries):
        if tried:
            print(f"  backing off to {n} sessions", flush=True)
        tried.append(n)
        if _soak(server, frames, n, args):
            print(f"sustained: {n} sessions held for the whole {args.soak_s:g} s soak", flush=True)
            return n
    print(f"sustained: no count held a whole {args.soak_s:g} s soak (tried {', '.join(map(str, tried))})")
    return 0


def _leak_check(server: _Server, frames, cycles: int) -> None:
    from ..server.loadgen import connect_cycles

    asyncio.run(connect_cycles(server.ws, frames.jpegs, 20))  # trackers made, allocator warmed
    server.wait_idle()
    rss0, fds0, m0 = server.rss_mb(), server.fds(), server.metrics()
    t0 = time.monotonic()
    got = asyncio.run(connect_cycles(server.ws, frames.jpegs, cycles))
    elapsed = time.monotonic() - t0
    idle = server.wait_idle()
    time.sleep(0.5)
    rss1, fds1, m1 = server.rss_mb(), server.fds(), server.metrics()
    made0 = m0["trackers_made"] + sum(w.get("trackers_made") or 0 for w in m0["workers"])
    made1 = m1["trackers_made"] + sum(w.get("trackers_made") or 0 for w in m1["workers"])
    worker_sessions = sum(w.get("sessions") or 0 for w in m1["workers"])
    print(f"leak check: {cycles} connect/send/receive/disconnect cycles in {elapsed:.1f} s ({got} frames back)")
    print(f"  server RSS {rss0:.1f} → {rss1:.1f} MB ({rss1 - rss0:+.1f}), open FDs {fds0} → {fds1} ({fds1 - fds0:+d}), "
          f"sessions after: {m1['sessions']} (workers hold {worker_sessions}), trackers made {made0} → {made1}")
    ok = idle and fds1 <= fds0 and rss1 - rss0 < max(5.0, 0.02 * rss0) and worker_sessions == 0
    print(f"  {'back to baseline' if ok else 'NOT back to baseline'}")


def _machine() -> str:
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs{' (' + model + ')' if model else ''}, load average {load}"


def main(args: argparse.Namespace) -> int:
    from ..server.loadgen import face_jpegs

    for name in ("step_s", "fps", "p95_ms"):
        if not getattr(args, name) > 0:
            raise InputError(f"--{name.replace('_', '-')}: expected a positive number, got {getattr(args, name):g}")
    if args.max_sessions < 1 or args.cycles < 0 or args.soak_s < 0 or args.warmup_s < 0 or args.retries < 0:
        raise InputError(f"expected --max-sessions ≥ 1, --cycles, --soak-seconds, --warmup-s and --retries ≥ 0, got "
                         f"{args.max_sessions}, {args.cycles}, {args.soak_s:g}, {args.warmup_s:g}, {args.retries}")
    if args.track_threads is not None and args.track_threads < 1:
        raise InputError(f"--track-threads: expected a positive whole number, got {args.track_threads}")
    if args.soak_tries < 1 or (args.soak_sessions is not None and args.soak_sessions < 1):
        raise InputError(f"expected --soak-tries ≥ 1 and --soak-sessions ≥ 1, got {args.soak_tries}, "
                         f"{args.soak_sessions}")
    workers = args.workers if args.workers is not None else [0]
    frames = face_jpegs(args.size, args.quality)
    print(f"facewire bench serve — {_machine()}")
    print(f"each session: a {args.fps:g} fps webcam of {frames.describe()}")
    print(f"held = p95 end-to-end latency < {args.p95_ms:g} ms over all frames AND every session ≥ {args.min_fps:g} "
          f"frames back per second; steps of {args.step_s:g} s after {args.warmup_s:g} s warm-up, a failed step "
          f"retried {args.retries}×; the load generator runs on the same machine (its send lateness is 'gen late')")
    capacity: dict[int, int] = {}
    for n in workers:
        threads = f" --track-threads {args.track_threads}" if args.track_threads and not n else ""
        mode = f"{n} tracker process{'es' if n != 1 else ''}" if n else "tracking in the server's threads"
        print(f"\nserver: facewire serve --workers {n}{threads} ({mode}); load average now "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        server = _Server(n, max(args.max_sessions, args.soak_sessions or 0) + 8, args.track_threads if not n else None)
        try:
            capacity[n] = _ramp(server, frames, args)
            print(f"capacity with --workers {n}: {capacity[n]} sessions held in the ramp's {args.step_s:g} s steps (load average "
                  f"{os.getloadavg()[0]:.2f})", flush=True)
            if n == workers[-1]:
                soak_n = args.soak_sessions or capacity[n]
                if args.soak_s > 0 and soak_n > 0:
                    _sustain(server, frames, soak_n, args)
                if args.cycles > 0:
                    _leak_check(server, frames, args.cycles)
        finally:
            server.stop()
    if len(capacity) > 1:
        print("\n" + ", ".join(f"--workers {n}: {c} sessions" for n, c in capacity.items()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser()
    add_arguments(p)
    sys.exit(main(p.parse_args()))
