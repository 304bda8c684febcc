"""``facewire bench render``: frame time of the offscreen renderer at 512×512 and 1024×1024, split into
deform (morph targets on the CPU + upload), draw and readback, and the speed of video export.

Frames come from a real iPhone take (the range-of-motion take in ``../shared/data/takes``, every
shape moves) or, without the shared data, from a synthetic sweep of all 52 weights, head and gaze.
The avatar is facewire's default head when it is installed, else the procedural probe head.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..frame import FaceFrame, Gaze, HeadPose
from ..plugins import module_exists

HELP = "renderer fps at 512² and 1024² (deform / draw / readback) and H.264 export speed"
SIZES = ((512, 512), (1024, 1024))
WARMUP = 10
TARGET_FPS = 120.0
TAKE = "data/takes/alexdjulin/alex_rom_3.csv"


def _shared_take() -> Path | None:
    path = Path(__file__).resolve().parents[3].parent / "shared" / TAKE
    return path if path.is_file() else None


def _sweep(n: int) -> list[FaceFrame]:
    """All 52 weights, head and gaze swept by sines of different periods (a synthetic take)."""
    out = []
    phase = np.linspace(0, 2 * np.pi, 52, endpoint=False)
    for i in range(n):
        t = i / 30
        w = (0.5 + 0.5 * np.sin(2 * np.pi * t * (0.3 + 0.02 * np.arange(52)) + phase)).astype(np.float32)
        head = HeadPose(20 * math.sin(t * 1.3), 10 * math.sin(t * 0.9), 8 * math.sin(t * 0.7))
        gaze = Gaze(15 * math.sin(t * 2.1), 8 * math.sin(t * 1.7), 15 * math.sin(t * 2.1), 8 * math.sin(t * 1.7))
        out.append(FaceFrame(t_ns=round(t * 1e9), seq=i, weights=w, head=head, gaze=gaze))
    return out


def _frames(args: argparse.Namespace, n: int) -> tuple[list[FaceFrame], str]:
    from ..render.video import sample_take
    from ..takes import read_take

    path = Path(args.take) if args.take else _shared_take()
    if path is None:
        return _sweep(n), f"synthetic sweep of all 52 weights + head + gaze ({n} frames)"
    frames = sample_take(read_take(str(path)), 30.0)
    if len(frames) < n:
        frames = (frames * (n // len(frames) + 1))
    return frames[:n], f"{path.name} resampled at 30 fps ({n} frames)"


def _avatar(spec: str):
    from ..render.probe import probe_head

    if spec == "probe":
        return probe_head(), "probe head (procedural test mesh)"
    if spec == "default" and not module_exists("facewire.render.default_avatar"):
        return probe_head(), "probe head (procedural test mesh; the default avatar is not installed)"
    from ..render.commands import load_avatar

    return load_avatar(spec), ("default avatar" if spec == "default" else spec)


def _row(label: str, ms: np.ndarray) -> str:
    p50, p95 = np.percentile(ms, [50, 95])
    return f"  {label:22s} p50 {p50:7.3f}  p95 {p95:7.3f} ms"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=300, help="frames per size (default 300)")
    p.add_argument("--avatar", default="default", help="default, probe, or a .glb/.vrm (default: default)")
    p.add_argument("--take", default=None, metavar="TAKE", help="take to play (default: the shared range-of-motion take)")
    p.add_argument("--video-frames", type=int, default=150, help="frames for the export timing (default 150)")
    p.add_argument("--antialias", default="auto", choices=("auto", "msaa", "edge", "none"),
                   help="edge smoothing (default auto, as rendering uses: edge on llvmpipe, msaa on a GPU)")
    p.add_argument("--samples", type=int, default=4, help="MSAA samples when --antialias msaa (default 4)")


def main(args: argparse.Namespace) -> int:
    from ..render.renderer import Renderer
    from ..render.video import write_video

    n = max(args.frames, WARMUP + 20)
    avatar, avatar_label = _avatar(args.avatar)
    frames, frames_label = _frames(args, n)
    triangles = sum(len(p.indices) for p in avatar.parts)
    print(f"facewire bench render — avatar: {avatar_label}: {len(avatar.positions)} vertices, {triangles} triangles, "
          f"{len(avatar.morph_targets)} of 52 ARKit targets")
    print(f"frames: {frames_label}; {n - WARMUP} timed per size after {WARMUP} warm-up")
    fps_at = {}
    for size in SIZES:
        with Renderer(avatar, size, samples=args.samples, antialias=args.antialias, sync_timing=True) as r:
            total, parts = [], []
            for i, frame in enumerate(frames):
                t0 = time.perf_counter()
                r.render(frame)
                elapsed = (time.perf_counter() - t0) * 1e3
                if i >= WARMUP:
                    total.append(elapsed)
                    parts.append((r.timings.deform_ms, r.timings.draw_ms, r.timings.readback_ms))
            if size == SIZES[0]:
                aa = f"MSAA {r.samples}×" if r.antialias == "msaa" else r.antialias
                print(f"OpenGL: {r.info['renderer']} ({r.info['version']}), lighting {r.lighting}, antialias {aa}")
        total_ms, split = np.array(total), np.array(parts)
        fps_at[size] = 1000 / np.median(total_ms)
        print(f"{size[0]}×{size[1]}:  {fps_at[size]:7.1f} fps (from the median frame time)")
        print(_row("frame", total_ms))
        for k, label in enumerate(("deform + upload", "draw (+ edge pass)", "readback (resolve+read)")):
            print(_row(f"  {label}", split[:, k]))
    print(f"1024² / 512² frame time (p50): {fps_at[SIZES[0]] / fps_at[SIZES[1]]:.2f}×")

    m = max(10, args.video_frames)
    with Renderer(avatar, SIZES[0], samples=args.samples, antialias=args.antialias) as r, \
            tempfile.TemporaryDirectory() as tmp:
        pictures = [r.render(f) for f in frames[:m]]
        t0 = time.perf_counter()
        write_video(iter(pictures), Path(tmp) / "encode.mp4", 30.0, progress=False)
        encode_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_video((r.render(f) for f in frames[:m]), Path(tmp) / "export.mp4", 30.0, progress=False)
        export_s = time.perf_counter() - t0
    print(f"video export 512×512 H.264 ({m} frames): render + encode {m / export_s:6.1f} frames/s, "
          f"encode alone {m / encode_s:6.1f} frames/s")
    met = fps_at[SIZES[0]] >= TARGET_FPS
    print(f"target ≥ {TARGET_FPS:.0f} fps at 512×512: {'met' if met else 'NOT met'} ({fps_at[SIZES[0]]:.1f} fps)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(argparse.Namespace(frames=300, avatar="default", take=None, video_frames=150, samples=4,
                                       antialias="auto")))
