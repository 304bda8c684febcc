"""``facewire batch``: animate whole libraries on Ray — ``facewire batch JOB.yaml``, or from flags
``facewire batch lipsync 'voice/**/*.wav' --out takes/ --format llf.csv,a2f.json`` (likewise
``track`` for videos and ``render`` for takes).

Render items go through the trust home as ``facewire render`` does: each is logged to the audit log
(session-start, export, session-stop) and, when the home has keys, watermarked and signed (C2PA).

Exit status: 0 when every item is done (now or before); 4 when some items failed — the batch still
ran every other item, and each failure is in the summary and the manifest; 130 when interrupted
(run the same command again to do only what is left); 2 for a bad job (nothing ran).
"""

from __future__ import annotations

import argparse
import os

__all__ = ["EXIT_ITEMS_FAILED", "cmd_batch", "register"]

EXIT_ITEMS_FAILED = 4
EXIT_INTERRUPTED = 130
SHOW_FAILURES = 20  # the summary lists this many failed items; the manifest holds them all

_KIND_FLAGS = {
    "lipsync": ("text_from", "alive"),
    "track": ("max_faces", "solver", "model", "no_calibrate", "no_filter"),
    "render": ("avatar", "size", "background"),
}
_JOB_FLAGS = ("out", "formats", "fps", "manifest") + tuple(f for flags in _KIND_FLAGS.values() for f in flags)


def _flag(name: str) -> str:
    return "--" + {"formats": "format"}.get(name, name).replace("_", "-")


def _jobs_from_args(args: argparse.Namespace) -> list:
    from ..errors import InputError
    from .jobs import KINDS, JobSpec, load_jobs, with_overrides

    if args.spec in KINDS:
        if not args.inputs:
            raise InputError(f"batch {args.spec}: expected one or more input globs such as 'voice/**/*.wav'")
        if not args.out:
            raise InputError(f"batch {args.spec}: --out FOLDER is required")
        wrong = [_flag(f) for k, flags in _KIND_FLAGS.items() if k != args.spec for f in flags
                 if getattr(args, f) not in (None, False)]
        if wrong:
            raise InputError(f"batch {args.spec}: {', '.join(wrong)} do not apply to {args.spec} jobs")
        options: dict = {"fps": args.fps}
        if args.spec == "lipsync":
            options["alive"] = args.alive
        elif args.spec == "track":
            options.update(max_faces=args.max_faces, solver=args.solver, model=args.model,
                           calibrate="off" if args.no_calibrate else None, filter=False if args.no_filter else None)
        else:
            options.update(avatar=args.avatar, size=args.size, background=args.background)
        options = {k: v for k, v in options.items() if v is not None}
        return [JobSpec(kind=args.spec, inputs=tuple(args.inputs), out=args.out, formats=args.formats or (),
                        options=tuple(options.items()), text_from=args.text_from,
                        retries=args.retries if args.retries is not None else 2, manifest=args.manifest)]
    if args.inputs:
        raise InputError(f"batch {args.spec}: a job file takes no inputs after it (they are in the file); "
                         f"or the first word is a kind: {', '.join(KINDS)}")
    if not os.path.isfile(args.spec) and not os.path.splitext(args.spec)[1]:
        raise InputError(f"batch: expected a job file (.yaml, .json) or a kind ({', '.join(KINDS)}), got {args.spec!r}")
    given = [_flag(f) for f in _JOB_FLAGS if getattr(args, f) not in (None, False)]
    if given:
        raise InputError(f"batch {args.spec}: {', '.join(given)} belong in the job file; with a job file only "
                         "--workers, --address, --retries, --force, --serial, --quiet and the trust flags apply")
    return [with_overrides(job, retries=args.retries) for job in load_jobs(args.spec)]


def report(summary, say) -> None:
    """The end-of-run summary: counts, speed, each failure (up to `SHOW_FAILURES`), what is left."""
    where = "serially" if summary.mode == "serial" else \
        f"on {summary.workers} Ray worker{'s' if summary.workers != 1 else ''}"
    retried = f"; {summary.retried} retried" if summary.retried else ""
    say(f"facewire: batch: {summary.total} items: {summary.done} done, {summary.skipped} skipped (done and unchanged), "
        f"{summary.failed} failed, {summary.remaining} left; ran {summary.ran} in {summary.elapsed_s:.1f} s "
        f"({summary.items_per_s:.1f} items/s {where}){retried}")
    for item_id, error in summary.failures[:SHOW_FAILURES]:
        say(f"facewire: failed: {item_id}: {error}")
    if len(summary.failures) > SHOW_FAILURES:
        say(f"facewire: … and {len(summary.failures) - SHOW_FAILURES} more failures (see the manifest)")
    if summary.warned:
        item_id, message = summary.warned[0]
        say(f"facewire: {len(summary.warned)} items warned, e.g. {item_id}: {message}")
    if summary.renders:
        say(f"facewire: {summary.renders}")
    if summary.interrupted:
        say(f"facewire: interrupted: {summary.remaining} items left to do; run the same command again to resume")


def cmd_batch(args: argparse.Namespace) -> int:
    from ..cli import _say
    from ..trust.keys import read_passphrase
    from .runner import RunOptions, run_batch

    jobs = _jobs_from_args(args)
    passphrase = read_passphrase(args.passphrase_env, args.passphrase_file)
    options = RunOptions(workers=args.workers, address=args.address, serial=args.serial, force=args.force,
                         progress=not args.quiet, trust_home=args.home, passphrase=passphrase, sign=not args.no_sign)
    summary = run_batch(jobs, options, say=_say)
    report(summary, _say)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_ITEMS_FAILED if summary.failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``batch``."""
    b = sub.add_parser(
        "batch", help="animate whole libraries on Ray: lip sync, tracking or rendering of every matching file",
        description="facewire batch JOB.yaml | facewire batch lipsync|track|render GLOB... --out FOLDER [options]. "
                    "Items done and unchanged (same input SHA-256, same parameters, outputs present) are skipped; "
                    "exit status 4 when some items failed (all others still ran), 130 when interrupted.")
    b.add_argument("spec", metavar="JOB|KIND", help="a job file (.yaml/.json), or lipsync, track or render")
    b.add_argument("inputs", nargs="*", metavar="GLOB", help="input files for a kind ('**' recurses; quote it)")
    b.add_argument("--out", metavar="FOLDER", help="output folder; outputs mirror the inputs' paths below the glob")
    b.add_argument("--format", dest="formats", metavar="F,F",
                   help="take formats by name or suffix: jsonl, csv, llf.csv, a2f.json, rhubarb.json, visemes.json, "
                        "glb (default jsonl); render: mp4, mov, mkv, png (default mp4)")
    b.add_argument("--fps", type=float, default=None, help="frame rate (lipsync default 60; track: the video's; "
                                                           "render default 30)")
    b.add_argument("--manifest", metavar="FILE", help="SQLite manifest (default OUT/.facewire-batch.sqlite)")
    run = b.add_argument_group("running")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="Ray workers (default: every CPU here, or of the cluster)")
    run.add_argument("--address", metavar="A", help="join a Ray cluster: HOST:PORT, auto, or ray://HOST:PORT "
                                                    "(default: start Ray in this process, listening on 127.0.0.1 "
                                                    "only; so does a cluster joined at 127.0.0.1)")
    run.add_argument("--retries", type=int, default=None, metavar="N",
                     help="tries again after a failure or a lost worker (default 2; bad input is not retried)")
    run.add_argument("--force", action="store_true", help="redo items that are done and unchanged")
    run.add_argument("--serial", action="store_true", help="no Ray: one item after another in this process")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    ls = b.add_argument_group("lipsync")
    ls.add_argument("--text-from", metavar="CSV", help="transcripts: rows of file,text (forced alignment)")
    ls.add_argument("--alive", action="store_true", help="add blinks and gaze, seeded from each item's id")
    tr = b.add_argument_group("track")
    tr.add_argument("--max-faces", type=int, default=None, metavar="N", help="faces to track (default 1)")
    tr.add_argument("--solver", choices=("auto", "facewire", "mediapipe"), default=None, help="blendshape solver")
    tr.add_argument("--model", metavar="PATH", help="MediaPipe's face_landmarker.task bundle")
    tr.add_argument("--no-calibrate", action="store_true", help="no automatic neutral calibration")
    tr.add_argument("--no-filter", action="store_true", help="no One Euro filter")
    rd = b.add_argument_group("render")
    rd.add_argument("--avatar", metavar="default|FILE.glb", help="avatar (default: facewire's default head)")
    rd.add_argument("--size", metavar="WxH", help="picture size (default 512x512)")
    rd.add_argument("--background", metavar="#RRGGBB", help="background colour")
    t = b.add_argument_group("trust", "renders are audited, and signed (C2PA + watermark) when the home has keys")
    t.add_argument("--home", metavar="DIR", default=None,
                   help="trust home (default: $FACEWIRE_HOME, else the user data folder)")
    pp = t.add_mutually_exclusive_group()
    pp.add_argument("--passphrase-env", metavar="VAR", help="read the keys' passphrase from environment variable VAR")
    pp.add_argument("--passphrase-file", metavar="FILE", help="read the keys' passphrase from the first line of FILE")
    t.add_argument("--no-sign", action="store_true", help="do not sign renders, and no warning when unsigned")
    b.set_defaults(func=cmd_batch)
