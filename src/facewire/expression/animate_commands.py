"""CLI verbs ``facewire animate`` (text → a talking, emoting take) and ``facewire retarget`` (a take →
a CSV in another schema or a custom rig's mapping). Heavy imports stay inside the commands."""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["cmd_animate", "cmd_retarget", "register"]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_animate(args: argparse.Namespace) -> int:
    import os

    from ..errors import InputError
    from ..takes import format_for, open_writer
    from .animate import animate_text

    format_for(args.out)  # an unsupported suffix fails before any work
    if args.audio_out is not None and args.audio_out == args.out:
        raise InputError(f"--audio-out: expected a file other than --out, got {args.audio_out!r} for both")
    llm = None
    if args.llm:
        from .llm import ENV_MODEL, LLMAffect, LLMConfig

        # Many local servers serve one model and ignore the name: fall back to "default".
        model = args.llm_model or os.environ.get(ENV_MODEL) or "default"
        llm = LLMAffect(LLMConfig.from_env(args.llm, model, timeout_s=args.llm_timeout))
    take = animate_text(args.text, mood=args.mood, mood_intensity=args.mood_intensity, duration_s=args.duration,
                        voice=args.voice, rate_wpm=args.rate, fps=args.fps, seed=args.seed, llm=llm)
    for warning in take.warnings:
        _say(f"facewire: warning: {warning}")
    sinks = []
    if args.send:
        from ..sinks import open_sink

        sinks = [open_sink(url) for url in args.send]
    with open_writer(args.out, fps=args.fps) as writer:
        opened = [sink.__enter__() for sink in sinks]
        started = time.monotonic()
        try:
            for frame in take.frames:
                writer.send(frame)
                for sink in opened:
                    sink.send(frame)
                if opened:  # live sinks get the frames in real time
                    time.sleep(max(0.0, started + frame.t_ns / 1e9 - time.monotonic()))
        finally:
            for sink in opened:
                sink.__exit__(None, None, None)
    if args.audio_out is not None:
        if take.samples is None:
            raise InputError("--audio-out: no speech was synthesised (espeak-ng missing), so there is no audio to write")
        from ..audio.io import write_wav

        write_wav(args.audio_out, take.samples, take.sample_rate)
    if not args.quiet:
        e = take.expression
        shown = "neutral" if e.emotion == "neutral" else f"{e.emotion} {e.intensity:.2f}"
        said = f"{take.spoken_text!r} ({take.speech_start_s:.2f}-{take.speech_end_s:.2f} s)"
        _say(f"facewire: animate: {len(take.frames)} frames at {args.fps:g} fps, said {said}, showed {shown} "
             f"({take.source}), {len(take.blink_onsets_s)} blinks → {args.out}"
             + (f" + {args.audio_out}" if args.audio_out else ""))
    return 0


def cmd_retarget(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import InputError
    from ..takes import read_take
    from .mapping import RetargetCsvWriter, load_mapping

    if (args.map is None) == (args.to is None):
        raise InputError("retarget: expected either --map FILE or --to SCHEMA, not both or neither")
    if args.output != "-" and Path(args.output).suffix.lower() != ".csv":
        raise InputError(f"retarget output: expected a .csv file (or - for stdout), got {args.output!r}")
    target = load_mapping(args.map) if args.map is not None else args.to
    count = 0
    with RetargetCsvWriter(args.output, target) as writer:
        for frame in read_take(args.input):
            writer.send(frame)
            count += 1
    if not count:
        raise InputError(f"retarget input {args.input}: expected at least one frame, got none")
    if not args.quiet:
        what = f"mapping {args.map}" if args.map is not None else f"schema {args.to}"
        _say(f"facewire: retarget: {count} frames through {what} ({len(writer.names)} columns) → {args.output}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..retarget import SCHEMAS

    a = sub.add_parser("animate", help="text → a talking, blinking, looking, emoting take (TTS + lip sync + affect)")
    a.add_argument("--text", required=True, help="what the avatar says (with --llm: the user's words it answers)")
    a.add_argument("--mood", default=None, help="the mood the face rests at: an emotion or calm (default neutral)")
    a.add_argument("--mood-intensity", type=float, default=0.25, help="0..1 (default 0.25)")
    a.add_argument("--duration", type=float, default=None, metavar="S",
                   help="take length (default: the speech + 1 s; at least the speech)")
    a.add_argument("--voice", default="en-us", help="espeak-ng voice (default en-us)")
    a.add_argument("--rate", type=int, default=175, metavar="WPM", help="speaking rate, words per minute (default 175)")
    a.add_argument("--out", required=True, help="take file (.csv, .jsonl, .llf.csv, .a2f.json, .glb) or - for stdout")
    a.add_argument("--audio-out", metavar="WAV", help="also write the take's audio (16-bit WAV)")
    a.add_argument("--fps", type=float, default=60.0, help="frame rate (default 60)")
    a.add_argument("--seed", type=int, default=0, help="seed of the blink and gaze layers (default 0)")
    a.add_argument("--llm", metavar="URL", help="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1): "
                   "the LLM's reply is spoken and its emotion shown")
    a.add_argument("--llm-model", metavar="NAME", help="model name (else FACEWIRE_LLM_MODEL, else 'default')")
    a.add_argument("--llm-timeout", type=float, default=10.0, metavar="S", help="per-request timeout (default 10 s)")
    a.add_argument("--send", action="append", metavar="URL", help="also send live, in real time (vmc://, llf://, …)")
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=cmd_animate)

    r = sub.add_parser("retarget", help="a take → CSV of another schema (VRM, OVR, Unified, MetaHuman) or a custom rig")
    r.add_argument("input", help="take to read (any format `facewire convert` reads)")
    r.add_argument("output", help="CSV to write (- for stdout): time_s, then one column per target")
    r.add_argument("--map", metavar="FILE", help="a mapping file (JSON, or YAML with PyYAML) for a custom rig")
    r.add_argument("--to", choices=sorted(SCHEMAS), help="a built-in schema: " +
                   "; ".join(f"{k} = {s.description}" for k, s in SCHEMAS.items()))
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_retarget)
