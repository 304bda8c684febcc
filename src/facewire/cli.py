"""`facewire <verb>`: a thin command line over the library; each flag is a constructor argument.

Errors facewire raises on purpose are printed as one line (``facewire: error: …``) with a non-zero
exit code; anything unexpected is reported the same way (set ``FACEWIRE_DEBUG=1`` for a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import __version__
from .errors import FacewireError
from .frame import FaceFrame
from .plugins import module_exists

__all__ = ["build_parser", "main"]

EXIT_ERROR = 2
EXIT_NO_FACE = 3
MAX_CONSECUTIVE_FAILURES = 30  # a stream survives bad frames, not a broken pipeline


# -- helpers ----------------------------------------------------------------------------------
def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stages_factory(args: argparse.Namespace):
    """Per-face stage list: calibration then One Euro filter, as the flags ask."""
    from .expression.calibration import CalibrationProfile, CalibrationStage
    from .expression.filters import OneEuroStage

    profile = CalibrationProfile.load(args.calibration) if args.calibration and Path(args.calibration).exists() else None

    def make() -> list:
        stages: list = []
        if args.calibrate:
            stages.append(CalibrationStage(mode="explicit", window_s=args.calibrate_s))
        elif profile is not None:
            stages.append(CalibrationStage(profile, mode="fixed"))
        elif not args.no_auto_calibrate:
            stages.append(CalibrationStage(mode="auto", window_s=args.calibrate_s))
        if not args.no_filter:
            kwargs = {}
            if args.min_cutoff is not None:
                kwargs["min_cutoff_hz"] = args.min_cutoff
            if args.beta is not None:
                kwargs["beta"] = args.beta
            stages.append(OneEuroStage(**kwargs))
        return stages

    return make


class _LiveStats:
    """Prints fps and latency percentiles (capture → output) once a second for live inputs."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.frames = 0
        self.lat_ms: list[float] = []
        self.proc_ms: list[float] = []
        self.faces = 0

    def add(self, capture_ns: int, proc_ms: float, faces: int) -> None:
        self.frames += 1
        self.faces = faces
        self.proc_ms.append(proc_ms)
        if capture_ns:
            self.lat_ms.append((time.monotonic_ns() - capture_ns) / 1e6)
        now = time.monotonic()
        if now - self.last >= 1.0:
            fps = self.frames / (now - self.last)
            lat = np.percentile(self.lat_ms, [50, 95, 99]) if self.lat_ms else [float("nan")] * 3
            proc = np.percentile(self.proc_ms, 50)
            _say(f"fps {fps:5.1f} | latency p50 {lat[0]:5.1f} p95 {lat[1]:5.1f} p99 {lat[2]:5.1f} ms"
                 f" | compute p50 {proc:4.1f} ms | faces {faces}")
            self.last, self.frames, self.lat_ms, self.proc_ms = now, 0, [], []


# -- track ------------------------------------------------------------------------------------
def cmd_track(args: argparse.Namespace) -> int:
    from .media import open_input
    from .vision.video import TrackerOptions, VideoTracker

    options = TrackerOptions(max_faces=args.max_faces, solver=args.solver, landmarks=True)
    source = open_input(args.input, fps=args.fps)
    tracker = VideoTracker(args.model, options, stages=_stages_factory(args))
    save_to = args.calibration if args.calibration and not Path(args.calibration).exists() else None
    sinks = _live_sinks(args.send)
    return _run_tracking(source, tracker, args.out or [], args.preview, quiet=args.quiet, calibration_out=save_to,
                         sinks=sinks)


def _live_sinks(urls: Sequence[str] | None) -> list:
    """The ``--send`` sinks, made (not yet opened) so that a bad URL fails before any work."""
    if not urls:
        return []
    from .sinks import open_sink

    return [open_sink(url) for url in urls]


class _SendAll:
    """The live sinks of a run. One that cannot open or fails to take a frame is reported once and
    left out: a network sink's trouble never stops tracking."""

    def __init__(self, stack: contextlib.ExitStack, sinks: Sequence) -> None:
        self.sinks = []
        for sink in sinks:
            try:
                self.sinks.append(stack.enter_context(sink))
            except Exception as exc:  # noqa: BLE001 - a sink that cannot open is left out, tracking goes on
                _say(f"facewire: warning: cannot send to {sink} ({exc}); going on without it")

    def send(self, frames: Sequence[FaceFrame]) -> None:
        for sink in list(self.sinks):
            try:
                for frame in frames:
                    sink.send(frame)
            except Exception as exc:  # noqa: BLE001 - a failing sink is dropped, tracking goes on
                _say(f"facewire: warning: sending to {sink} failed ({type(exc).__name__}: {exc}); going on without it")
                self.sinks.remove(sink)

    def report(self) -> None:
        for sink in self.sinks:
            s = sink.statistics()
            _say(f"facewire: sent {s.frames_sent} frames to {sink} ({s.frames_dropped} dropped to keep up, "
                 f"{s.packets_dropped} datagrams refused)")


def _run_tracking(source, tracker, outs: Sequence[str], preview: str | None, quiet: bool = False,
                  calibration_out: str | None = None, sinks: Sequence = ()) -> int:
    from tqdm import tqdm

    from .preview import PreviewWriter
    from .takes import open_writer

    total = tracked = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(source)
        writers = [stack.enter_context(open_writer(out)) for out in outs]
        live_sinks = _SendAll(stack, sinks)
        pv = stack.enter_context(PreviewWriter(preview, fps=source.fps or 30.0)) if preview else None
        images = iter(source)
        live = _LiveStats() if source.live else None
        bar = None
        if not source.live and not quiet and (source.frame_count or 0) > 1:
            bar = stack.enter_context(tqdm(total=source.frame_count, unit="frame", desc=f"tracking {source.name}",
                                           file=sys.stderr, dynamic_ncols=True))
        failures = 0
        try:
            for image in images:
                t0 = time.perf_counter()
                try:
                    frames = tracker.process(image, source=str(source.name))
                    failures = 0
                except Exception as exc:  # one bad frame must not end a long stream
                    failures += 1
                    if failures > MAX_CONSECUTIVE_FAILURES:
                        raise
                    _say(f"facewire: warning: frame {image.index} skipped ({type(exc).__name__}: {exc})")
                    frames = [FaceFrame.untracked(image.t_ns, seq=image.index, source=str(source.name),
                                                  capture_ns=image.capture_ns)]
                for writer in writers:
                    for frame in frames:
                        writer.send(frame)
                live_sinks.send(frames)
                proc_ms = (time.perf_counter() - t0) * 1e3
                if pv is not None:
                    pv.send(image.rgb, frames)
                n_faces = sum(f.tracked for f in frames)
                total += 1
                tracked += n_faces > 0
                if live is not None:
                    live.add(image.capture_ns, proc_ms, n_faces)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"faces {n_faces}", refresh=False)
        except KeyboardInterrupt:
            if not source.live:
                raise  # a file run that is interrupted leaves no partial output
            _say("facewire: stopped; keeping what was recorded")  # Ctrl-C is how a live take ends
    if calibration_out:
        _save_calibration(tracker, calibration_out)
    if not quiet:
        live_sinks.report()
        where = "".join(f" → {out}" for out in outs if out != "-")
        extra = f", preview → {preview}" if preview else ""
        _say(f"facewire: tracked a face in {tracked} of {total} frames{where}{extra}")
    if total and not tracked:
        _say(f"facewire: no face found in {source.name}")
        return EXIT_NO_FACE
    return 0


def _save_calibration(tracker, path: str) -> None:
    from .expression.calibration import CalibrationStage

    for stages in tracker._stages.values():
        for stage in stages:
            if isinstance(stage, CalibrationStage) and stage.done and stage.mode != "fixed":
                stage.profile.save(path)
                _say(f"facewire: calibration saved to {path}")
                return


# -- demo -------------------------------------------------------------------------------------
DEMO_LINE = "Hello! I am facewire. I turn a face, a voice or a few words into animation."


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: track the built-in sample, render it onto the default avatar, and make the
    avatar say a line (speech synthesis + lip sync), each to a video."""
    from .media import open_input
    from .samples import astronaut_clip
    from .takes import read_take
    from .vision.video import VideoTracker

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sample = out_dir / "sample.mp4"
    _say("facewire demo: making the sample clip from skimage's astronaut photo (moved, rolled, zoomed)…")
    _write_video(sample, (im.rgb for im in astronaut_clip(frames=args.frames)), fps=30)
    tracker = VideoTracker(args.model, stages=_stages_factory(_demo_flags()))
    takes, preview = [out_dir / "take.csv", out_dir / "take.jsonl"], out_dir / "preview.mp4"
    code = _run_tracking(open_input(str(sample)), tracker, [str(t) for t in takes], str(preview))
    results = [("sample input", sample), ("take (CSV)", takes[0]), ("take (JSONL)", takes[1]),
               ("preview video", preview)]
    if code == 0 and not args.no_render:
        from .render.default_avatar import default_avatar

        avatar = default_avatar()
        home = _demo_trust_home(out_dir / "trust")
        _say("facewire demo: rendering the take onto the default avatar (signed: C2PA + watermark, audited)…")
        tracked = out_dir / "avatar.mp4"
        _demo_render(list(read_take(takes[1])), avatar, tracked, home, take=takes[1])
        results.append(("avatar video", tracked))
        _say(f"facewire demo: the avatar says {DEMO_LINE!r}…")
        talking = out_dir / "talking.mp4"
        _demo_speech(out_dir, avatar, talking, home)
        results.append(("talking avatar", talking))
        results.append(("provenance", _demo_verdict(talking, home)))
        results.append(("trust home", f"{home} (check: facewire verify {talking} --home {home})"))
    if module_exists("facewire.server.commands"):
        results.append(("live studio", "bash run serve, then open http://127.0.0.1:8000/ in a browser"))
    width = max(len(label) for label, _ in results)
    for label, path in results:
        print(f"{label:{width}s} : {path}")
    return code


def _demo_trust_home(home: Path) -> Path:
    """A trust home for the demo's own outputs: an unencrypted identity and C2PA chain made once."""
    from .trust.store import trust_home

    if not trust_home(home).key_file.exists():
        _say(f"facewire demo: making a demo signing identity in {home} (not passphrase-protected)…")
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            code = main(["keys", "init", "--home", str(home), "--no-passphrase", "--subject", "facewire demo"])
        if code != 0:
            raise FacewireError(f"could not create the demo's signing identity in {home}")
    return home


def _demo_render(frames, avatar, out: Path, home: Path, *, take: Path, audio: Path | None = None) -> None:
    """Render through the trust session, as `facewire render` does: audit records and the seal."""
    import hashlib

    from .render.trusted import TrustedRender
    from .render.video import render_take

    take_sha256 = hashlib.sha256(take.read_bytes()).hexdigest()
    with TrustedRender(avatar, home=home, take=str(take), take_sha256=take_sha256, out=out) as trust:
        result = render_take(frames, avatar, out, size=(512, 512), fps=30, audio=audio, seal=trust.seal,
                             info={"take": str(take), "take_sha256": take_sha256})
        trust.exported(result.path, frames=result.frames, duration_s=result.duration_s)


def _demo_verdict(path: Path, home: Path) -> str:
    from .trust.provenance import read_manifest
    from .trust.store import trust_home

    report = read_manifest(path, trust_anchors=trust_home(home).c2pa_dir / "root.pem")
    return f"{path.name}: C2PA manifest {report.status}"


def _demo_speech(out_dir: Path, avatar, out: Path, home: Path) -> None:
    """Speech synthesis → lip-synced take (+ WAV) → the avatar speaking, with its sound."""
    from .audio.animate import animate
    from .audio.io import write_wav
    from .audio.tts import synthesize
    from .takes import open_writer

    speech = synthesize(DEMO_LINE)
    frames = animate(speech.phones, speech.samples, fps=60, sample_rate=speech.sample_rate)
    wav, take = out_dir / "speech.wav", out_dir / "speech.csv"
    write_wav(wav, speech.samples, speech.sample_rate)
    with open_writer(str(take)) as writer:
        for frame in frames:
            writer.send(frame)
    _demo_render(frames, avatar, out, home, take=take, audio=wav)


def _demo_flags() -> argparse.Namespace:
    return argparse.Namespace(calibration=None, calibrate=False, calibrate_s=2.0, no_auto_calibrate=False,
                              no_filter=False, min_cutoff=None, beta=None)


def _write_video(path: Path, pictures, fps: int = 30) -> None:
    import av

    from .render.video import h264_options

    tmp = path.with_name(f".{path.name}.part")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = None
            for i, rgb in enumerate(pictures):
                if stream is None:
                    stream = container.add_stream("libx264", rate=fps)
                    stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
                    stream.options = h264_options(crf="18", preset="veryfast")
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            if stream is not None:
                for packet in stream.encode():
                    container.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- receive ----------------------------------------------------------------------------------
def cmd_receive(args: argparse.Namespace) -> int:
    from .errors import InputError
    from .sinks import open_receiver
    from .takes import open_writer

    if args.count is not None and args.count < 1:
        raise InputError(f"--count: expected a positive number of frames, got {args.count}")
    if args.timeout is not None and not args.timeout > 0:
        raise InputError(f"--timeout: expected a positive number of seconds, got {args.timeout}")
    received = 0
    with contextlib.ExitStack() as stack:
        options = {"path": args.path} if args.protocol == "ws" else {}
        receiver = stack.enter_context(open_receiver(args.protocol, args.host, args.port, timeout_s=args.timeout,
                                                     **options))
        writer = stack.enter_context(open_writer(args.out)) if args.out else None
        host, port = receiver.address
        if args.protocol == "ws":
            _say(f"facewire: connected to {receiver.url}")
        else:
            _say(f"facewire: listening for {args.protocol} on {host}:{port}")
        try:
            for frame in receiver.frames(count=args.count, timeout_s=args.timeout):
                if writer is not None:
                    writer.send(frame)
                else:
                    print(_frame_line(frame), flush=True)
                received += 1
        except KeyboardInterrupt:
            _say("facewire: stopped; keeping what was received")
        if args.count is not None and received < args.count and args.timeout is not None:
            stats = receiver.statistics()
            raise InputError(f"only {received} of {args.count} frames arrived before nothing came for "
                             f"{args.timeout:g} s ({stats.bad_packets} bad packets)")
    stats = receiver.statistics()
    where = f" → {args.out}" if args.out and args.out != "-" else ""
    bad = f"; {stats.bad_packets} bad packets skipped (last: {stats.last_error})" if stats.bad_packets else ""
    _say(f"facewire: received {received} frames from {stats.packets} packets{where}{bad}")
    return 0


def _frame_line(frame: FaceFrame) -> str:
    """One human-readable line: time, head angles and the strongest blendshapes."""
    from . import arkit

    if not frame.tracked:
        return f"{frame.t_s:12.6f}s #{frame.seq:<6d} {frame.source}  no face"
    top = np.argsort(frame.weights)[::-1][:4]
    shapes = " ".join(f"{arkit.NAMES[i]}={frame.weights[i]:.3f}" for i in top)
    h = frame.head
    return (f"{frame.t_s:12.6f}s #{frame.seq:<6d} {frame.source}  head yaw {h.yaw_deg:+6.1f} "
            f"pitch {h.pitch_deg:+6.1f} roll {h.roll_deg:+6.1f}  {shapes}")


# -- play -------------------------------------------------------------------------------------
class _MediaClock:
    """Real-time pacing on `time.perf_counter`: media time ``t`` is due at ``start + (t - t0) / speed``.

    After a stall longer than `RESYNC_S` (a suspended laptop, a debugger) the clock starts over at
    the late frame instead of sending everything it missed in one burst.
    """

    RESYNC_S = 0.5

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.origin: tuple[float, int] | None = None

    def wait(self, t_ns: int) -> float:
        """Sleep until ``t_ns`` is due; returns how late it is then, in seconds."""
        now = time.perf_counter()
        if self.origin is None:
            self.origin = (now, t_ns)
        start, t0 = self.origin
        due = start + (t_ns - t0) / 1e9 / self.speed
        while now < due:
            time.sleep(due - now)
            now = time.perf_counter()
        late = now - due
        if late > self.RESYNC_S:
            self.origin, late = (now, t_ns), 0.0
        return late


def cmd_play(args: argparse.Namespace) -> int:
    import math

    from .atomic import STDIO
    from .errors import InputError
    from .takes import format_for, read_take
    from .takes._timing import FpsMeter

    if not (math.isfinite(args.speed) and args.speed > 0):
        raise InputError(f"--speed: expected a positive number, got {args.speed:g}")
    if args.loop and args.take == STDIO:
        raise InputError("--loop: standard input can be played only once; give a file")
    fmt = format_for(args.take, reading=True)
    take = read_take(args.take, fmt)  # checks that the file opens before anything is served
    sinks = _live_sinks(args.send)
    clock = _MediaClock(args.speed)
    played = passes = 0
    offset_ns = seq_offset = 0
    first_ns: int | None = None
    last_ns = 0
    with contextlib.ExitStack() as stack:
        live_sinks = _SendAll(stack, sinks)
        if not live_sinks.sinks:
            raise InputError("none of the --send destinations could be opened")
        live = None if args.quiet else _LiveStats()
        if not args.quiet:
            _say(f"facewire: playing {args.take} ({fmt.name}) at {args.speed:g}× to "
                 f"{', '.join(map(str, live_sinks.sinks))}{' in a loop' if args.loop else ''}; Ctrl-C stops")
        try:
            while True:
                meter, count, instant = FpsMeter(), 0, None
                for frame in take if passes == 0 else read_take(args.take, fmt):
                    t_ns = frame.t_ns + offset_ns
                    late_s = clock.wait(t_ns)
                    t0 = time.perf_counter()
                    out = frame.replace(t_ns=t_ns, seq=frame.seq + seq_offset,
                                        capture_ns=time.monotonic_ns() - round(late_s * 1e9))
                    live_sinks.send([out])
                    if first_ns is None:
                        first_ns = t_ns
                    last_ns, played, count = t_ns, played + 1, count + 1
                    if t_ns != instant:  # several faces at one instant count once
                        instant = t_ns
                        meter.add(frame.t_ns)
                        if live is not None:
                            live.add(out.capture_ns, (time.perf_counter() - t0) * 1e3, int(out.tracked))
                passes += 1
                if not args.loop or count == 0:
                    break
                # The next pass starts one frame period after this one ends; times keep increasing.
                period_ns = meter.period_ns() or round(1e9 / 30)
                offset_ns = last_ns + period_ns - (meter.first_ns or 0)
                seq_offset += count
        except KeyboardInterrupt:
            _say("facewire: stopped")
    if not args.quiet:  # after the sinks closed, so that their counts include the last frames
        live_sinks.report()
        media_s = (last_ns - first_ns) / 1e9 if first_ns is not None else 0.0
        _say(f"facewire: played {played} frames ({media_s:.3f} s of media, {passes} pass{'es' * (passes != 1)}) "
             f"from {args.take}")
    return 0


# -- models -----------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from . import models

    if args.action == "fetch":
        if args.official:
            path = models.fetch_official(args.url or models.OFFICIAL_URL)
            print(f"official bundle: {path}")
        else:
            paths = models.ensure_package_models()
            for name in ("detector", "landmarks", "iris"):
                print(f"{name:10s}: {getattr(paths, name)}")
        return 0
    if args.action == "list":
        print(f"cache: {models.cache_dir()}")
        with contextlib.suppress(FacewireError):
            paths = models.ensure_package_models(fetch=False)
            print(f"package models ({models.PACKAGE_SPEC}): cached, verified")
            for name in ("detector", "landmarks", "iris"):
                print(f"  {name:10s}: {getattr(paths, name)}")
            return 0
        print("package models: not cached (run: facewire models fetch)")
        return 0
    raise AssertionError(args.action)


# -- convert ----------------------------------------------------------------------------------
_CONVERT_BAR_BYTES = 8 << 20  # inputs from this size get a progress bar


def cmd_convert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .atomic import STDIO
    from .takes import format_for, format_named, open_writer, read_take

    source = format_named(args.from_format) if args.from_format else format_for(args.input, reading=True)
    target = format_named(args.to_format) if args.to_format else format_for(args.output)
    if args.fps is not None and not (source.reader_fps or target.writer_fps):
        _say(f"facewire: warning: --fps has no effect from {source.name} to {target.name} (both keep their own times)")
    frames = read_take(args.input, source, fps=args.fps)
    size = 0 if args.input == STDIO else os.path.getsize(args.input)
    count = 0
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(open_writer(args.output, target, fps=args.fps))
        bar = None
        if not args.quiet and size >= _CONVERT_BAR_BYTES:
            total = _count_lines(args.input) if source.frame_lines else None
            bar = stack.enter_context(tqdm(total=total, unit="frame", desc=f"converting {Path(args.input).name}",
                                           file=sys.stderr, dynamic_ncols=True))
        for frame in frames:
            sink.send(frame)
            count += 1
            if bar is not None:
                bar.update(1)
    if not args.quiet and args.output != STDIO:
        _say(f"facewire: converted {count} frames: {args.input} ({source.name}) → {args.output} ({target.name})")
    return 0


def _count_lines(path: str) -> int:
    """Lines in a file (a frame count to within the header), read in chunks."""
    lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            lines += chunk.count(b"\n")
    return lines


# -- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facewire", description="Real-time AI facial animation.")
    p.add_argument("--version", action="version", version=f"facewire {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def tracking_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", default=None, metavar="PATH",
                        help="MediaPipe face_landmarker .task bundle, or 'official' (default: the package models)")
        g = sp.add_argument_group("stages")
        g.add_argument("--no-filter", action="store_true", help="turn the One Euro filter off")
        g.add_argument("--min-cutoff", type=float, default=None, metavar="HZ", help="One Euro min cutoff for weights")
        g.add_argument("--beta", type=float, default=None, help="One Euro speed coefficient for weights")
        g.add_argument("--calibrate", action="store_true",
                       help="hold a neutral face for the first seconds: its median becomes each shape's zero")
        g.add_argument("--calibrate-s", type=float, default=2.0, metavar="S", help="calibration window (default 2 s)")
        g.add_argument("--calibration", metavar="FILE.json",
                       help="apply this saved calibration, or save the learnt one here when it does not exist")
        g.add_argument("--no-auto-calibrate", action="store_true", help="no automatic neutral over the first seconds")

    t = sub.add_parser("track", help="track faces in a video, image, folder of images or camera:N")
    t.add_argument("input", help="video file, image, folder of images, or camera:N")
    t.add_argument("--out", metavar="FILE", action="append",
                   help="take to write: .jsonl (lossless) or .csv; '-' = JSONL on stdout; repeatable")
    t.add_argument("--preview", metavar="VIDEO.mp4", help="write the input with landmarks and coefficient bars")
    t.add_argument("--max-faces", type=int, default=1, metavar="N", help="faces to track (default 1)")
    t.add_argument("--solver", choices=("auto", "facewire", "mediapipe"), default="auto",
                   help="blendshape solver; auto = MediaPipe's model when --model gives its bundle")
    t.add_argument("--fps", type=float, default=None, help="frame rate for a folder of images (default 30)")
    t.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    t.add_argument("--send", metavar="URL", action="append",
                   help="also stream live to vmc://HOST:PORT, vrchat://HOST:PORT or livelink://HOST:PORT, "
                        "or serve ws://HOST:PORT/PATH (options as ?name=value); repeatable")
    tracking_flags(t)
    t.set_defaults(func=cmd_track)

    r = sub.add_parser("receive", help="listen for VMC, VRChat OSC or Live Link Face (or connect to a facewire "
                                       "WebSocket stream) and record or print frames")
    r.add_argument("protocol", choices=("vmc", "vrchat", "livelink", "ws"))
    r.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 = all); for ws, the server to connect to")
    r.add_argument("--port", type=int, default=None,
                   help="UDP port (default: the protocol's, 39539 / 9000 / 11111; 0 = any free port); "
                        "for ws, the server's port (default 8765)")
    r.add_argument("--path", default="/", help="for ws: the stream's path on the server (default /)")
    r.add_argument("--out", metavar="FILE", help="take to write (.jsonl, .csv, '-' = JSONL on stdout); "
                                                 "default: one line per frame on stdout")
    r.add_argument("--count", type=int, default=None, metavar="N", help="stop after N frames")
    r.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="stop when nothing arrived for S seconds (default: wait until Ctrl-C)")
    r.set_defaults(func=cmd_receive)

    pl = sub.add_parser("play", help="stream a take in real time at its own frame times to live sinks")
    pl.add_argument("take", help="take to play (any format convert reads; '-' = JSONL on stdin)")
    pl.add_argument("--send", metavar="URL", action="append", required=True,
                    help="vmc://HOST:PORT, vrchat://HOST:PORT, livelink://HOST:PORT or ws://HOST:PORT/PATH "
                         "(served here; options as ?name=value); repeatable")
    pl.add_argument("--loop", action="store_true", help="start over at the end until Ctrl-C")
    pl.add_argument("--speed", type=float, default=1.0, metavar="X", help="play X times as fast (default 1)")
    pl.add_argument("--quiet", action="store_true", help="no fps/latency lines or summary")
    pl.set_defaults(func=cmd_play)

    d = sub.add_parser("demo", help="track a built-in sample, render it and a speaking avatar to video")
    d.add_argument("--out-dir", default="facewire-demo", help="where to write (default ./facewire-demo)")
    d.add_argument("--frames", type=int, default=150, help="length of the sample clip in frames")
    d.add_argument("--model", default=None, metavar="PATH", help="as for track")
    d.add_argument("--no-render", action="store_true", help="only track: no avatar videos")
    d.set_defaults(func=cmd_demo)

    m = sub.add_parser("models", help="fetch or list face models")
    m.add_argument("action", choices=("fetch", "list"))
    m.add_argument("--official", action="store_true", help="download MediaPipe's official face_landmarker.task")
    m.add_argument("--url", help="download the official bundle from this URL instead (file:// works)")
    m.set_defaults(func=cmd_models)

    from . import bench

    bench.register(sub)

    c = sub.add_parser("convert", help="convert a take between formats (jsonl, csv, llf, a2f, rhubarb, visemes, gltf)")
    c.add_argument("input", help="take to read ('-' = JSONL on stdin); format from its suffix or first line")
    c.add_argument("output", help="take to write ('-' = JSONL on stdout); format from its suffix")
    c.add_argument("--from", dest="from_format", metavar="FMT",
                   help="input format: jsonl, csv, llf, a2f, rhubarb-json, rhubarb-tsv, visemes or gltf")
    c.add_argument("--to", dest="to_format", metavar="FMT", help="output format (same names)")
    c.add_argument("--fps", type=float, default=None, metavar="F",
                   help="frame rate where a format needs one: sampling Rhubarb cues (default 100), "
                        "Audio2Face exportFps (default: measured)")
    c.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    c.set_defaults(func=cmd_convert)

    for name in _PLUGINS:
        if module_exists(name):
            importlib.import_module(name).register(sub)
    return p


# Feature packages add their verbs here: each module has ``register(subparsers)`` and imports its
# heavy dependencies only inside the command functions, so ``facewire --help`` stays fast.
_PLUGINS = (
    "facewire.audio.commands",
    "facewire.expression.commands",
    "facewire.expression.completion_commands",
    "facewire.expression.animate_commands",
    "facewire.render.commands",
    "facewire.render.avatar_commands",
    "facewire.trust.commands",
    "facewire.trust.provenance_commands",
    "facewire.trust.likeness_commands",
    "facewire.server.commands",
    "facewire.batch.commands",
)


class _Terminated(BaseException):
    """SIGTERM (``kill``, ``timeout``, a service manager) turned into an exception, so that every
    ``with`` block unwinds: partial outputs are discarded, never left behind as ``.part`` files."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated


def _quiet_stdout() -> None:
    """The reader of stdout went away (``facewire track … --out - | head``): point stdout at
    /dev/null so that the interpreter's final flush does not complain about the broken pipe."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = os.environ.get("FACEWIRE_DEBUG") == "1"
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if on_main_thread else None
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.simplefilter("ignore", ResourceWarning)
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except FacewireError as exc:
        if isinstance(exc.__cause__, BrokenPipeError):  # writes to stdout surface as OutputError
            _quiet_stdout()
            return 0
        if debug:
            raise
        _say(f"facewire: error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _say("facewire: interrupted")
        return 130
    except _Terminated:
        _say("facewire: terminated")
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except Exception as exc:  # never a traceback for users; FACEWIRE_DEBUG=1 shows it
        if debug:
            raise
        _say(f"facewire: error: unexpected {type(exc).__name__}: {exc} (FACEWIRE_DEBUG=1 for details)")
        return 1
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say(f"facewire: warning: {message}")


if __name__ == "__main__":
    sys.exit(main())
