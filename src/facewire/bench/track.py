"""``facewire bench track``: per-frame latency of the whole tracking pipeline, single thread.

The pipeline (detector when lost, mesh + iris, pose, blendshape solver, calibration, One Euro filter)
runs on the built-in sample clip at 640×480 and 1280×720. In the same run it sums the time spent
inside the models, so the ratio pipeline/raw shows what our own code costs on top of inference.
With ``--mediapipe-python`` (a Python that has ``mediapipe`` installed) MediaPipe's FaceLandmarker
(Tasks API, VIDEO mode, blendshapes on) is timed on the same frames in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from ..expression.calibration import CalibrationStage
from ..expression.filters import OneEuroStage
from ..samples import astronaut_clip
from ..vision.video import VideoTracker

SIZES = ((640, 480), (1280, 720))
WARMUP = 10


def _models(tracker: VideoTracker) -> list:
    t = tracker.tracker
    return [m.model for m in (t.detector, t.mesh, t.iris) if m is not None]


def _time_facewire(frames, tracker: VideoTracker) -> dict[str, np.ndarray]:
    models = _models(tracker)
    total, raw = [], []
    for i, image in enumerate(frames):
        before = sum(m.invoke_s for m in models)
        t0 = time.perf_counter()
        tracker.process(image)
        elapsed = time.perf_counter() - t0
        if i >= WARMUP:
            total.append(elapsed * 1e3)
            raw.append((sum(m.invoke_s for m in models) - before) * 1e3)
    return {"total": np.array(total), "raw": np.array(raw)}


_MP_SCRIPT = textwrap.dedent(f"""
    import json, sys, time
    import numpy as np
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision
    frames = np.load(sys.argv[1])
    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=sys.argv[2]), running_mode=vision.RunningMode.VIDEO,
        num_faces=1, output_face_blendshapes=True)
    out = []
    with vision.FaceLandmarker.create_from_options(opts) as lm:
        for i, rgb in enumerate(frames):
            img = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
            t0 = time.perf_counter()
            res = lm.detect_for_video(img, int(i * 1000 / 30))
            out.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({{"ms": out[{WARMUP}:], "faces": len(res.face_landmarks)}}))
""")


def _time_mediapipe(python: str, frames: int, size: tuple[int, int], task: Path) -> np.ndarray | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npy"
        # the same frames, written straight to disk so that this process never holds them all
        stack = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(frames, size[1], size[0], 3))
        for i, image in enumerate(astronaut_clip(frames=frames, size=size)):
            stack[i] = image.rgb
        stack.flush()
        del stack
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.run([python, "-c", _MP_SCRIPT, str(path), str(task)], capture_output=True, text=True,
                              env=env, timeout=600, check=False)
    if proc.returncode != 0:
        print(f"  mediapipe run failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        return None
    return np.array(json.loads(proc.stdout.strip().splitlines()[-1])["ms"])


def _row(label: str, ms: np.ndarray) -> str:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"  {label:34s} p50 {p50:6.3f}  p95 {p95:6.3f}  p99 {p99:6.3f} ms   {1000 / ms.mean():7.1f} fps"


HELP = "per-frame tracking latency at 640×480 and 1280×720, against raw inference and MediaPipe"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=300, help="frames per resolution (default 300)")
    p.add_argument("--mediapipe-python", metavar="PYTHON",
                   help="a Python with mediapipe installed, to time MediaPipe's FaceLandmarker side by side")
    p.add_argument("--model", default=None, metavar="PATH.task",
                   help="official bundle for the MediaPipe side (default: ../shared/models copy)")


def main(args: argparse.Namespace) -> int:
    n = max(args.frames, WARMUP + 20)
    print(f"facewire bench track — {n - WARMUP} timed frames per size after {WARMUP} warm-up, single thread, one face")
    print("pipeline = detect-if-lost + mesh + iris + pose + blendshapes + calibration + One Euro filter")
    task = _official_task(args)
    results = {}
    for w, h in SIZES:
        tracker = VideoTracker(None, stages=lambda: [CalibrationStage(), OneEuroStage()])
        r = _time_facewire(astronaut_clip(frames=n, size=(w, h)), tracker)
        r["detections"] = tracker.tracker.detections
        results[(w, h)] = r
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for (w, h), r in results.items():
        print(f"{w}×{h}:")
        print(_row("facewire pipeline", r["total"]))
        print(_row("  of which model inference (raw)", r["raw"]))
        print(f"  {'pipeline / raw (p50)':34s} {np.median(r['total']) / np.median(r['raw']):.2f}×"
              f"   detector runs: {r['detections']}")
        if args.mediapipe_python and task is not None:
            mp_ms = _time_mediapipe(args.mediapipe_python, n, (w, h), task)
            if mp_ms is not None:
                print(_row("MediaPipe FaceLandmarker (Tasks)", mp_ms))
                print(f"  {'MediaPipe / facewire (p50)':34s} {np.median(mp_ms) / np.median(r['total']):.2f}×")
    print(f"peak RSS of the facewire runs: {rss_mb:.0f} MB")
    target = np.median(results[SIZES[0]]["total"])
    print(f"target p50 ≤ 2.0 ms at 640 px: {'met' if target <= 2.0 else 'NOT met'} ({target:.3f} ms)")
    if not args.mediapipe_python:
        print("(MediaPipe side by side: pass --mediapipe-python /path/to/venv/bin/python with mediapipe installed)")
    return 0


def _official_task(args: argparse.Namespace) -> Path | None:
    from ..models import official_path

    candidates = [Path(args.model)] if args.model else []
    candidates += [Path(__file__).resolve().parents[3].parent / "shared" / "models" / "face_landmarker_v2_with_blendshapes.task",
                   official_path()]
    return next((c for c in candidates if c.is_file()), None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(argparse.Namespace(frames=300, mediapipe_python=None, model=None)))
