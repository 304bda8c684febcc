"""``facewire bench batch``: batch throughput on the same items in one process and on Ray in-process
with 1 and N workers, what Ray costs per item and to start, and how fast a re-run skips done items.

The items are real work: short synthesised lines (lip sync → JSONL + LLF CSV, with seeded blinks and
gaze) and short clips cut from the GRID videos in the shared data (tracking → JSONL). Each mode
writes its own folder and the outputs are compared byte for byte at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ..batch.jobs import JobSpec
from ..batch.loopback import loopback_ray
from ..batch.runner import OBJECT_STORE_MB, RunOptions, Summary, run_batch

__all__ = ["HELP", "add_arguments", "main", "make_clips"]

HELP = "batch items/s: one process vs Ray with 1 and N workers, Ray's per-item and start-up cost, manifest skips"

_COLOURS = ("red", "blue", "green", "white", "black", "yellow", "purple", "orange")
_THINGS = ("house", "table", "garden", "window", "river", "bottle", "pillow", "ticket", "button", "letter")
CLIP_FRAMES = 12
ROUND_TRIPS = 200


def _grid_default() -> Path:
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "video" / "grid"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lines", type=int, default=48, help="synthesised spoken lines (lip sync items; default 48)")
    p.add_argument("--clips", type=int, default=8, help=f"{CLIP_FRAMES}-frame video clips (tracking items; default 8; "
                                                        "0 = none)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="the N of the N-worker run (default: every CPU here)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per mode after a cold one (default 3)")
    p.add_argument("--grid", metavar="DIR", default=None,
                   help="folder of GRID .mpg videos to cut clips from (default: the shared data's video/grid)")


# -- the items --------------------------------------------------------------------------------
def _make_lines(folder: Path, count: int) -> None:
    from ..audio.io import write_wav
    from ..audio.tts import synthesize

    for i in range(count):
        text = f"the {_COLOURS[i % len(_COLOURS)]} {_THINGS[i // len(_COLOURS) % len(_THINGS)]}"
        speech = synthesize(text, rate_wpm=300)
        path = folder / f"g{i // 16}" / f"line{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, speech.samples, speech.sample_rate)


def make_clips(folder: Path, count: int, grid: Path) -> int:
    """Up to ``count`` H.264 clips of `CLIP_FRAMES` frames, four from each GRID video; how many."""
    import av

    from ..render.video import h264_options

    videos = sorted(grid.glob("*.mpg"))
    folder.mkdir(parents=True, exist_ok=True)
    made = 0
    for video in videos:
        if made >= count:
            break
        with av.open(str(video)) as container:
            pictures = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        for k in range(min(4, count - made, len(pictures) // (CLIP_FRAMES + 6))):
            part = pictures[k * (CLIP_FRAMES + 6): k * (CLIP_FRAMES + 6) + CLIP_FRAMES]
            with av.open(str(folder / f"{video.stem}_{k}.mp4"), "w") as dst:
                stream = dst.add_stream("libx264", rate=25)
                stream.width, stream.height, stream.pix_fmt = part[0].shape[1], part[0].shape[0], "yuv420p"
                stream.options = h264_options(preset="ultrafast")
                for i, rgb in enumerate(part):
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    frame.pts = i
                    for packet in stream.encode(frame):
                        dst.mux(packet)
                for packet in stream.encode():
                    dst.mux(packet)
            made += 1
    return made


def _jobs(root: Path, out: Path, clips: int) -> list[JobSpec]:
    jobs = [JobSpec(kind="lipsync", inputs=("voice/**/*.wav",), out=str(out / "takes"), formats=("jsonl", "llf.csv"),
                    options=(("alive", True),), root=str(root))]
    if clips:
        jobs.append(JobSpec(kind="track", inputs=("clips/*.mp4",), out=str(out / "tracks"), formats=("jsonl",),
                            root=str(root)))
    return jobs


# -- timing -----------------------------------------------------------------------------------
def _quiet(_: str) -> None:
    pass


def _runs(jobs: list[JobSpec], options: RunOptions, repeats: int) -> tuple[Summary, list[Summary]]:
    """A cold run, then ``repeats`` timed ones (all with force: every item is done each time)."""
    cold = run_batch(jobs, options, say=_quiet)
    warm = [run_batch(jobs, options, say=_quiet) for _ in range(repeats)]
    for summary in (cold, *warm):
        if summary.failed or summary.remaining:
            raise RuntimeError(f"bench batch: {summary.failed} items failed, e.g. {summary.failures[:1]}")
    return cold, warm


def _median_s(runs: list[Summary]) -> float:
    return statistics.median(s.elapsed_s for s in runs)


def _ray_mode(jobs: list[JobSpec], workers: int, repeats: int) -> dict:
    """Ray in this process with ``workers`` CPUs: start-up, empty-task round trip, batch runs."""
    import numpy as np
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    with loopback_ray():  # as `facewire batch` runs its own Ray: listening on 127.0.0.1 only
        ray.init(num_cpus=workers, object_store_memory=OBJECT_STORE_MB * 1024 * 1024, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR", _node_ip_address="127.0.0.1")
    try:
        noop = ray.remote(lambda item: item is not None)
        ray.get(noop.remote(None))
        startup_s = time.perf_counter() - t0
        payload = jobs[0]  # a small value of the batch's own types, pickled both ways like an item
        trips = []
        for _ in range(ROUND_TRIPS):
            t = time.perf_counter()
            ray.get(noop.remote(payload))
            trips.append((time.perf_counter() - t) * 1e3)
        # workers=None: the runner takes every CPU of this session and keeps 2 items per worker queued,
        # as `facewire batch` does on the cluster it starts for itself.
        cold, warm = _runs(jobs, RunOptions(workers=None, progress=False, force=True), repeats)
    finally:
        t = time.perf_counter()
        ray.shutdown()
        shutdown_s = time.perf_counter() - t
    return {"startup_s": startup_s, "shutdown_s": shutdown_s, "trip_ms": float(np.median(trips)), "cold": cold,
            "warm": warm}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def main(args: argparse.Namespace) -> int:
    if args.lines < 1 or args.clips < 0 or args.repeats < 1 or (args.workers is not None and args.workers < 1):
        print("facewire: error: bench batch: --lines and --repeats ≥ 1, --clips ≥ 0, --workers ≥ 1", file=sys.stderr)
        return 2
    n_workers = args.workers or os.cpu_count() or 1
    grid = Path(args.grid) if args.grid else _grid_default()
    with tempfile.TemporaryDirectory(prefix="fwbench-batch-") as tmp:
        root = Path(tmp)
        _make_lines(root / "voice", args.lines)
        clips = make_clips(root / "clips", args.clips, grid) if args.clips and grid.is_dir() else 0
        items = args.lines + clips
        print(f"facewire bench batch — {args.lines} spoken lines (lip sync → jsonl + llf.csv, seeded blinks and gaze)"
              f" + {clips} clips of {CLIP_FRAMES} frames (tracking → jsonl) = {items} items; {os.cpu_count()} CPUs "
              f"here; median of {args.repeats} runs after a cold one")
        if args.clips and not clips:
            print(f"  (no clips: no GRID videos in {grid}; pass --grid DIR)")

        serial_jobs = _jobs(root, root / "serial", clips)
        _, serial = _runs(serial_jobs, RunOptions(serial=True, progress=False, force=True), args.repeats)
        skips = [run_batch(serial_jobs, RunOptions(serial=True, progress=False), say=_quiet)
                 for _ in range(args.repeats)]
        assert all(s.skipped == items and s.ran == 0 for s in skips), "a re-run did work it should have skipped"
        modes = {}
        for workers in dict.fromkeys((1, n_workers)):
            modes[workers] = _ray_mode(_jobs(root, root / f"ray{workers}", clips), workers, args.repeats)

        base_s = _median_s(serial)
        print(f"  {'mode':34s} {'items/s':>8s} {'s/run':>7s} {'vs 1 process':>13s}  cold run (worker start-up)")
        print(f"  {'1 process (--serial)':34s} {items / base_s:8.1f} {base_s:7.2f} {1.0:12.2f}×")
        for workers, mode in modes.items():
            run_s = _median_s(mode["warm"])
            label = f"Ray in-process, {workers} worker{'s' if workers != 1 else ''}"
            print(f"  {label:34s} {items / run_s:8.1f} {run_s:7.2f} {base_s / run_s:12.2f}×  "
                  f"{mode['cold'].elapsed_s:.2f} s")
        if len(modes) > 1:
            one, many = (_median_s(modes[w]["warm"]) for w in modes)
            print(f"  speed-up of {n_workers} workers over 1 worker: {one / many:.2f}×")
        one = modes[1]
        per_item_ms = (_median_s(one["warm"]) - base_s) / items * 1e3
        print(f"  Ray's cost per item: {per_item_ms:+.1f} ms (1 worker − 1 process, per item); an empty task's round "
              f"trip: {one['trip_ms']:.2f} ms (median of {ROUND_TRIPS})")
        print("  Ray start-up (init → first task back): "
              + ", ".join(f"{w} worker{'s' if w != 1 else ''} {m['startup_s']:.2f} s" for w, m in modes.items())
              + f"; shutdown {one['shutdown_s']:.2f} s")
        skip_s = statistics.median(s.elapsed_s for s in skips)
        print(f"  manifest skip on a re-run (done and unchanged): {items / skip_s:.0f} items/s ({skip_s * 1e3:.1f} ms "
              f"for {items} items, median of {args.repeats})")
        reference = _files(root / "serial")
        same = all(_files(root / f"ray{w}") == reference for w in modes)
        print(f"  outputs byte-identical across 1 process and Ray (workers: {', '.join(map(str, modes))}): "
              f"{'yes' if same else 'NO'} ({len(reference)} files)")
    return 0 if same else 1
