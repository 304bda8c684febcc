"""``facewire bench accuracy``: facewire's solver (package models only) against MediaPipe's own.

Both pipelines run through facewire on the same frames with no filtering or calibration: the
default (package mesh + iris → facewire's solver) and the official bundle (its 478-point mesh →
MediaPipe's blendshape model). Printed: Pearson r per channel that moves (std > 0.05 in the
reference) and their mean, mean absolute error, and blink events (reference eyeBlink > 0.5)
matched by ours within ±2 frames. A blink event starts when eyeBlink rises above 0.5 and ends when
the lid reopens, i.e. falls below 0.3 (hysteresis): a closure that flickers around 0.5 without the
eye opening in between is one blink, not two (with a bare 0.5 threshold, lrwp9a's left eye counts
a one-frame 0.507 and, four frames later with the lid still at 0.47, a second "blink"). Inputs: the GRID clips in ../shared/data and the built-in
astronaut clip; clips held out of the solver's training are marked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .. import arkit
from ..media import open_input
from ..models import load_task_bundle
from ..samples import astronaut_clip
from ..vision.blendshapes import load_weights
from ..vision.video import TrackerOptions, VideoTracker

MOVING_STD = 0.05
BLINK = 0.5
BLINK_OPEN = 0.3  # an event ends when the lid reopens below this
BLINK_SLACK = 2  # frames


def shared_dir() -> Path:
    return Path(__file__).resolve().parents[3].parent / "shared"


def _weights(tracker: VideoTracker, images) -> np.ndarray:
    tracker.reset()
    out = []
    for image in images:
        frame = tracker.process(image)[0]
        out.append(frame.weights if frame.tracked else np.full(arkit.COUNT, np.nan, np.float32))
    return np.array(out)


def pearson_by_channel(ours: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Pearson r for each channel whose reference moves (std > 0.05), NaN rows dropped."""
    ok = ~(np.isnan(ours).any(1) | np.isnan(ref).any(1))
    ours, ref = ours[ok], ref[ok]
    out = {}
    for i, name in enumerate(arkit.NAMES):
        if ref[:, i].std() > MOVING_STD:
            out[name] = float(np.corrcoef(ours[:, i], ref[:, i])[0, 1]) if ours[:, i].std() > 0 else 0.0
    return out


def blink_events(x: np.ndarray, on: float = BLINK, off: float = BLINK_OPEN) -> list[tuple[int, int]]:
    """[start, end) frame ranges where ``x`` rose above ``on`` until it fell below ``off``."""
    events, start = [], None
    for k, v in enumerate(x):
        if start is None and v > on:
            start = k
        elif start is not None and v < off:
            events.append((start, k))
            start = None
    if start is not None:
        events.append((start, len(x)))
    return events


def blink_match(ours: np.ndarray, ref: np.ndarray) -> tuple[int, int, int]:
    """(reference blink events, of them matched by ours, our events with no reference event)."""
    total = matched = extra = 0
    for name in ("eyeBlinkLeft", "eyeBlinkRight"):
        i = arkit.INDEX[name]
        r, o = np.nan_to_num(ref[:, i]), np.nan_to_num(ours[:, i])
        ref_ev, our_ev = blink_events(r), blink_events(o)
        total += len(ref_ev)
        matched += sum(o[max(0, a - BLINK_SLACK): b + BLINK_SLACK].max() > BLINK for a, b in ref_ev)
        extra += sum(r[max(0, a - BLINK_SLACK): b + BLINK_SLACK].max() <= BLINK for a, b in our_ev)
    return total, matched, extra


HELP = "blendshape accuracy against MediaPipe's own model on real video, and blink events"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, metavar="PATH.task",
                   help="official bundle (default: ../shared/models copy)")


def main(args: argparse.Namespace) -> int:
    task = Path(args.model) if args.model else shared_dir() / "models" / "face_landmarker_v2_with_blendshapes.task"
    grid = shared_dir() / "data" / "video" / "grid"
    if not task.is_file():
        print(f"facewire bench accuracy needs MediaPipe's official bundle: {task} not found (pass --model)", file=sys.stderr)
        return 2
    ours_t = VideoTracker(None, TrackerOptions(solver="facewire"))
    ref_t = VideoTracker(load_task_bundle(task), TrackerOptions(solver="mediapipe"))
    held_out = {str(x) for x in load_weights().get("held_out", [])}
    inputs = [(p.stem, lambda p=p: open_input(str(p))) for p in sorted(grid.glob("*.mpg"))]
    if not inputs:
        print(f"note: no GRID clips in {grid}; only the built-in clip is measured", file=sys.stderr)
    inputs.append(("astronaut-clip", lambda: astronaut_clip(frames=150)))
    print("facewire bench accuracy — facewire solver (package models) vs MediaPipe blendshape model (official .task)")
    print(f"channels that move: reference std > {MOVING_STD}; blink: eyeBlink > {BLINK} until it reopens "
          f"below {BLINK_OPEN}, matched within ±{BLINK_SLACK} frames")
    all_ours, all_ref, held_ours, held_ref = [], [], [], []
    blinks = np.zeros(3, int)
    for name, make in inputs:
        with_src = make()
        images = list(with_src)
        ours, ref = _weights(ours_t, images), _weights(ref_t, images)
        tracked = float(np.mean(~np.isnan(ours[:, 0])))
        r = pearson_by_channel(ours, ref)
        b = blink_match(ours, ref)
        blinks += b
        tag = " (held out of training)" if name in held_out else ""
        mean_r = np.mean(list(r.values())) if r else float("nan")
        print(f"  {name:15s} frames {len(images):4d} tracked {tracked:6.1%}  moving {len(r):2d}  mean r {mean_r:5.3f}"
              f"  MAE {np.nanmean(np.abs(ours - ref)):.3f}  blinks {b[1]}/{b[0]} (+{b[2]} extra){tag}")
        if name.startswith("astronaut"):
            continue
        all_ours.append(ours)
        all_ref.append(ref)
        if name in held_out:
            held_ours.append(ours)
            held_ref.append(ref)
    for label, o, rf in (("all GRID clips", all_ours, all_ref), ("held-out GRID clips", held_ours, held_ref)):
        if not o:
            continue
        r = pearson_by_channel(np.concatenate(o), np.concatenate(rf))
        print(f"{label}: mean Pearson r over {len(r)} moving channels = {np.mean(list(r.values())):.3f}")
        print("   " + "  ".join(f"{k} {v:.2f}" for k, v in sorted(r.items(), key=lambda kv: -kv[1])))
    total, matched, extra = blinks
    rate = matched / total if total else float("nan")
    print(f"blink events matched: {matched}/{total} = {rate:.1%} ({extra} extra blinks of ours)")
    return 0
