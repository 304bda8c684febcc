"""CLI verbs of the speech path: ``facewire lipsync``, ``facewire say`` and ``facewire listen``.

Each flag is an argument of `LipSync`, `synthesize` or `Microphone`; heavy imports happen inside
the command functions so that ``facewire --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

__all__ = ["register"]

_BAR_MIN_S = 60.0  # files at least this long get a progress bar


def _text_arg(args: argparse.Namespace) -> str | None:
    from ..errors import InputError

    if args.text_file:
        try:
            text = Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--text-file {args.text_file}: cannot read it ({exc})") from exc
        if not text.strip():
            raise InputError(f"--text-file {args.text_file}: expected a transcript, the file is empty")
        return text
    return args.text


def cmd_lipsync(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..atomic import STDIO
    from ..cli import _live_sinks, _say, _SendAll
    from ..takes import format_for, open_writer
    from .io import audio_duration_s
    from .lipsync import LipSync

    format_for(args.out)  # a bad --out suffix fails before any work
    lipsync = LipSync(fps=args.fps, text=_text_arg(args))
    duration = audio_duration_s(args.audio)
    sinks = _live_sinks(args.send)
    count = 0
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(open_writer(args.out, fps=args.fps))
        live = _SendAll(stack, sinks)
        bar = None
        if not args.quiet and duration and duration >= _BAR_MIN_S:
            bar = stack.enter_context(tqdm(total=round(duration, 1), unit="s", desc=f"lip sync {Path(args.audio).name}",
                                           file=sys.stderr, dynamic_ncols=True))
        progress = (lambda s: bar.update(round(s, 3))) if bar is not None else None
        for frame in lipsync.frames_from_file(args.audio, progress=progress):
            writer.send(frame)
            live.send([frame])
            count += 1
    if not args.quiet:
        live.report()
        where = f" → {args.out}" if args.out != STDIO else ""
        ends = len(lipsync.phrase_ends_s)
        _say(f"facewire: lip-synced {count} frames at {args.fps:g} fps ({ends} phrase ends){where}")
    return 0


def cmd_say(args: argparse.Namespace) -> int:
    from ..atomic import STDIO
    from ..cli import _say
    from ..errors import InputError
    from ..takes import format_for, open_writer
    from .animate import animate
    from .io import write_wav
    from .tts import synthesize

    format_for(args.out)
    if args.out == STDIO and args.audio_out == STDIO:
        raise InputError("--out and --audio-out cannot both be '-' (stdout)")
    speech = synthesize(args.text, voice=args.voice, rate_wpm=args.rate, pitch=args.pitch)
    frames = animate(speech.phones, speech.samples, args.fps, sample_rate=speech.sample_rate)
    # Both outputs or neither: the take is committed only after the audio was written.
    with open_writer(args.out, fps=args.fps) as writer:
        for frame in frames:
            writer.send(frame)
        if args.audio_out:
            write_wav(args.audio_out, speech.samples, speech.sample_rate)
    if not args.quiet:
        extra = f", audio → {args.audio_out}" if args.audio_out and args.audio_out != STDIO else ""
        where = f" → {args.out}" if args.out != STDIO else ""
        _say(f"facewire: said {len(speech.phones)} phones in {speech.duration_s:.2f} s, {len(frames)} frames{where}{extra}")
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    import numpy as np

    from ..cli import _live_sinks, _say, _SendAll
    from ..errors import DeviceError, InputError
    from ..takes import format_for, open_writer
    from .io import SAMPLE_RATE
    from .lipsync import LipSync
    from .live import BLOCK_S, LiveMeter, Microphone

    if args.duration is not None and not args.duration > 0:
        raise InputError(f"--duration: expected a number of seconds > 0, got {args.duration:g}")
    if args.out:
        format_for(args.out)  # a bad --out suffix fails before the microphone opens
    device = int(args.device) if args.device is not None and str(args.device).isdigit() else args.device
    lipsync = LipSync(fps=args.fps, recognize=args.recognize)
    # The first block through a fresh process costs ~0.4 s (lazy imports, compiled kernels; more with
    # a recogniser to load): pay it before the microphone opens rather than as a first second of lag.
    LipSync(fps=args.fps, recognize=args.recognize).feed(np.zeros(2 * round(SAMPLE_RATE * BLOCK_S), np.float32), 0)
    sinks = _live_sinks(args.send)
    frames = 0
    meter = LiveMeter()
    with contextlib.ExitStack() as stack:
        mic = stack.enter_context(Microphone(device))
        writer = stack.enter_context(open_writer(args.out, fps=args.fps)) if args.out else None
        live = _SendAll(stack, sinks)
        if not args.quiet:
            _say(f"facewire: listening on microphone {mic.name!r} at {mic.rate} Hz; Ctrl-C stops")
            if args.recognize:
                _say("facewire: --recognize: frames wait for recognised phones, about 0.6 s behind the audio")
        started = time.monotonic()
        lost: DeviceError | None = None
        try:
            for block, arrival_ns in mic:
                out = lipsync.feed(block, arrival_ns, sample_rate=mic.rate)
                if writer is not None:
                    for frame in out:
                        writer.send(frame)
                live.send(out)
                frames += len(out)
                report = meter.add(out, mic.dropped)
                if report is not None and not args.quiet:
                    _say(str(report))
                if args.duration and time.monotonic() - started >= args.duration:
                    break
        except KeyboardInterrupt:
            _say("facewire: stopped; keeping what was recorded")
        except DeviceError as exc:  # the device died mid-stream: keep the take, then report it
            lost = exc
        # The audio has all arrived: the frames still held back for look-ahead, not live, not metered.
        tail = lipsync.finish()
        if writer is not None:
            for frame in tail:
                writer.send(frame)
        live.send(tail)
        frames += len(tail)
    if lost is not None:
        if writer is not None:
            raise DeviceError(f"{lost}; kept the {frames} frames heard before it in {args.out}") from lost
        raise lost
    if not args.quiet:
        live.report()
        seconds = meter.history
        summary = ""
        if seconds:
            p50 = float(np.median([s.latency_p50_ms for s in seconds]))
            p95 = max(s.latency_p95_ms for s in seconds)
            cpu = float(np.median([s.cpu_percent for s in seconds]))
            summary = f"; latency p50 {p50:.1f} ms, worst p95 {p95:.1f} ms, cpu {cpu:.1f}% of a core"
        _say(f"facewire: {frames} frames from the microphone ({mic.dropped} audio blocks dropped, "
             f"{mic.overflows} device overflows){summary}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``lipsync``, ``say`` and ``listen``."""
    send_help = ("also stream live to vmc://HOST:PORT, vrchat://HOST:PORT or livelink://HOST:PORT, "
                 "or serve ws://HOST:PORT/PATH; repeatable")
    p = sub.add_parser("lipsync", help="animate a face from speech in an audio or video file")
    p.add_argument("audio", help="audio file (wav, flac, ogg, mp3, …) or a video with sound")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--text", help="the transcript (forced alignment; recognition when it does not match)")
    g.add_argument("--text-file", metavar="FILE", help="read the transcript from FILE")
    p.add_argument("--out", required=True, metavar="FILE", help="take to write (.csv, .jsonl, …; '-' = JSONL on stdout)")
    p.add_argument("--fps", type=float, default=60.0, help="frame rate (default 60)")
    p.add_argument("--send", metavar="URL", action="append", help=send_help)
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_lipsync)

    s = sub.add_parser("say", help="speak text with espeak-ng and write the speech and its animation")
    s.add_argument("text", help="what to say")
    s.add_argument("--voice", default="en-us", help="espeak-ng voice (default en-us)")
    s.add_argument("--rate", type=int, default=175, help="words per minute (default 175)")
    s.add_argument("--pitch", type=int, default=None, help="pitch 0..99 (default: the voice's)")
    s.add_argument("--out", required=True, metavar="FILE", help="take to write (.csv, .jsonl, …; '-' = stdout)")
    s.add_argument("--audio-out", metavar="FILE.wav", help="write the speech as 16-bit WAV ('-' = stdout)")
    s.add_argument("--fps", type=float, default=60.0, help="frame rate (default 60)")
    s.add_argument("--quiet", action="store_true", help="no summary")
    s.set_defaults(func=cmd_say)

    ls = sub.add_parser("listen", help="lip-sync live from the microphone, printing fps and latency")
    ls.add_argument("--device", default=None, metavar="N", help="input device index or name (default: the system's)")
    ls.add_argument("--send", metavar="URL", action="append", help=send_help)
    ls.add_argument("--out", metavar="FILE", help="also record the take (.csv, .jsonl; '-' = stdout)")
    ls.add_argument("--fps", type=float, default=60.0, help="frame rate (default 60)")
    ls.add_argument("--recognize", action="store_true",
                    help="frames wait for recognised phones: better mouth shapes, about 0.6 s late (more CPU)")
    ls.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    ls.add_argument("--quiet", action="store_true", help="no fps/latency lines")
    ls.set_defaults(func=cmd_listen)
