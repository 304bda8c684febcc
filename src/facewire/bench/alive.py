"""``facewire bench alive``: do the procedural eyes blink and look like people? Generated takes beside
real ones and beside published human ranges, measured with one ruler (`facewire.expression.stats`).

For each conversational state (rest, listening, speaking, thinking) a take of ``--minutes`` (10)
is generated at ``--fps`` (60) with `GazeStage` → `BlinkStage` in synthetic mode (large gaze shifts
may carry a blink, as in ``facewire animate``), one state per worker process. The same detectors
measure it and the real Live Link Face takes in ``../shared/data/takes`` of the closest activity
(`REAL_GROUPS`: rest ← the idle take and the silent emotion holds; listening ← the expression
performances, a face attending to the camera; speaking ← the word-like speech take; thinking has
no real take). Printed per state: blink rate, inter-blink interval and blink duration percentiles,
saccade count, the amplitude–peak-velocity main sequence and fixation durations, each with the
published range it is held against and whether the generated and the real number fall inside it.

The main sequence of the generated take is fitted to the saccades the stage itself made (their exact
amplitudes and peak velocities); the real takes, sampled at 30-60 fps by a tracker that smooths,
can only give a sampling-limited fit, printed for completeness and not judged.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Self

import numpy as np

HELP = "blink and gaze statistics of generated takes per state vs the real takes and published human ranges"

STATES = ("rest", "listening", "speaking", "thinking")
REAL_GROUPS = {"rest": ("rest", "emotion-hold"), "listening": ("performance",), "speaking": ("speech-like",),
               "thinking": ()}
"""Real-take activity groups (`stats.REAL_TAKES`) compared with each generated state."""

# -- published ranges -------------------------------------------------------------------------------
BLINK_RATE_PER_MIN = {
    # Doughty 2001 (Optom Vis Sci 78:712) review: study means 8.0-21.0/min in primary gaze,
    # 10.5-32.5/min in conversation; Bentivoglio et al. 1997 (Mov Disord 12:1028): 17/min at rest,
    # 26/min in conversation, 4.5/min reading.
    "rest": (8.0, 21.0, "8-21/min at rest (Doughty 2001; Bentivoglio 1997: 17)"),
    "listening": (10.5, 32.5, "10.5-32.5/min in conversation (Doughty 2001; Bentivoglio 1997: 26)"),
    "speaking": (10.5, 32.5, "10.5-32.5/min in conversation (Doughty 2001; Bentivoglio 1997: 26)"),
    "thinking": (8.0, 21.0, "8-21/min, primary gaze (Doughty 2001)"),
}
IBI_CV = (0.5, 1.0, "broad, right-skewed: CV ≈ 0.5-1 (Ponder & Kennedy 1927; Doughty 2001)")
BLINK_DURATION_MS = (100.0, 400.0, "100-400 ms (Evinger et al. 1991; VanderWerf et al. 2003)")
OPENING_OVER_CLOSING = (1.5, 3.0, "opening 1.5-3× the closing (Evinger et al. 1991)")
VMAX_DEG_S = (500.0, 700.0, "saturates at ≈ 500-700 °/s (Bahill et al. 1975; Baloh et al. 1975)")
REFERENCE_VMAX_DEG_S, REFERENCE_C_DEG = 500.0, 14.0
"""Reference main sequence Vpeak = 500·(1 − e^(−A/14°)) °/s (after Baloh et al. 1975; Bahill et al. 1975)."""
REFERENCE_TOLERANCE = 0.5
"""Band around the reference curve counted as inside: **design** (±50 %), since normative main
sequences differ between people and laboratories by tens of percent (Bahill, Brockenbrough &
Troost 1981); not a published number."""
FIXATION_MEDIAN_S = (0.2, 0.4, "≈ 200-400 ms in reading and scene viewing (Rayner 1998)")


def shared_takes() -> Path:
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "takes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=10.0, help="generated minutes per state (default 10)")
    p.add_argument("--fps", type=float, default=60.0, help="frame rate of the generated takes (default 60)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated takes (default 0)")
    p.add_argument("--takes", type=Path, default=None, help="directory of the real takes (default ../shared/data/takes)")
    p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="worker processes (default: up to 4)")


def generate(state: str, minutes: float, fps: float, seed: int) -> tuple[object, np.ndarray]:
    """A generated take of ``state`` as a `stats.Recording`, and its saccades (amplitude °, peak °/s)."""
    from ..expression import stats
    from ..expression.blink import BlinkStage
    from ..expression.gaze import GazeStage
    from ..frame import FaceFrame

    n = round(minutes * 60 * fps)
    blink = BlinkStage("synthetic", state=state, seed=seed)
    gaze = GazeStage("synthetic", state=state, seed=seed + 1, on_saccade=blink.gaze_shift, history=n)
    base = FaceFrame(t_ns=0)
    frames = [blink.process(gaze.process(base.replace(t_ns=round(i * 1e9 / fps)))) for i in range(n)]
    events = np.array([(s.amplitude_deg, s.peak_velocity_deg_s, s.duration_s) for s in gaze.saccades if not s.micro])
    return stats.Recording.from_frames(frames, name=f"generated {state}"), events.reshape(-1, 3)


def _inside(value: float, lo: float, hi: float) -> str:
    if not math.isfinite(value):
        return "—"
    return "in" if lo <= value <= hi else "OUT"


def _reference(a: float) -> float:
    return REFERENCE_VMAX_DEG_S * (1.0 - math.exp(-a / REFERENCE_C_DEG))


def _row(label: str, gen: str, real: str, published: str, verdict_gen: str, verdict_real: str) -> str:
    return f"  {label:<30} {gen:>22} {real:>22}  {verdict_gen:>4} {verdict_real:>4}  {published}"


def _pcts(p: dict, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    return "/".join(fmt.format(p[q] * scale) for q in (10, 50, 90))


def report(state: str, rec, events: np.ndarray, real: list, real_label: str) -> list[str]:
    """The lines of one state's table (see the module doc)."""
    from ..expression import stats

    gb, gg = stats.blink_stats([rec]), stats.gaze_stats([rec])
    rb = stats.blink_stats(real) if real else None
    rg = stats.gaze_stats(real) if real else None
    fit = stats.fit_main_sequence(events[:, 0], events[:, 2], events[:, 1])
    lines = [f"{state}: generated {gb.minutes:.1f} min at {rec.fps:.0f} fps  vs  real: {real_label}",
             _row("", "generated", "real", "published range", "gen", "real")]
    na = "—"
    lo, hi, src = BLINK_RATE_PER_MIN[state]
    lines.append(_row("blink rate (/min)", f"{gb.rate_per_min:.1f} ({gb.blinks})",
                      f"{rb.rate_per_min:.1f} ({rb.blinks})" if rb else na, src,
                      _inside(gb.rate_per_min, lo, hi), _inside(rb.rate_per_min, lo, hi) if rb else na))
    lines.append(_row("interval p10/50/90 (s)", _pcts(gb.ibi_pct_s), _pcts(rb.ibi_pct_s) if rb else na, "", "", ""))
    lo, hi, src = IBI_CV
    lines.append(_row("interval CV", f"{gb.ibi_cv:.2f}", f"{rb.ibi_cv:.2f}" if rb else na, src,
                      _inside(gb.ibi_cv, lo, hi), _inside(rb.ibi_cv, lo, hi) if rb else na))
    lo, hi, src = BLINK_DURATION_MS

    def durations_inside(b) -> str:
        return "in" if all(lo <= b.duration_ms[q] <= hi for q in (10, 50, 90)) else "OUT"

    lines.append(_row("blink duration p10/50/90 (ms)", _pcts(gb.duration_ms, fmt="{:.0f}"),
                      _pcts(rb.duration_ms, fmt="{:.0f}") if rb else na, src + ", onset → offset at 10 %",
                      durations_inside(gb), durations_inside(rb) if rb else na))
    lo, hi, src = OPENING_OVER_CLOSING
    ratio_g = gb.opening_ms[50] / gb.closing_ms[50]
    ratio_r = rb.opening_ms[50] / rb.closing_ms[50] if rb else float("nan")
    lines.append(_row("opening / closing (medians)", f"{ratio_g:.2f}", f"{ratio_r:.2f}" if rb else na, src,
                      _inside(ratio_g, lo, hi), _inside(ratio_r, lo, hi) if rb else na))
    lines.append(_row("saccades ≥ 1° (count, /s)", f"{gg.saccades} ({gg.rate_per_s:.2f}/s)",
                      f"{rg.saccades} ({rg.rate_per_s:.2f}/s)" if rg else na,
                      "no published rate for conversation: compare with the takes", "", ""))
    lines.append(_row("amplitude p10/50/90 (°)", _pcts(gg.amplitude_pct_deg, fmt="{:.1f}"),
                      _pcts(rg.amplitude_pct_deg, fmt="{:.1f}") if rg else na, "", "", ""))
    lo, hi, src = VMAX_DEG_S
    real_ms = (f"{rg.main_sequence['vmax_deg_s']:.0f}·(1−e^(−A/{rg.main_sequence['c_deg']:.0f}°))*" if rg else na)
    lines.append(_row("main sequence Vmax·(1−e^(−A/C))", f"{fit['vmax_deg_s']:.0f}·(1−e^(−A/{fit['c_deg']:.1f}°))",
                      real_ms, src, _inside(fit["vmax_deg_s"], lo, hi), na))
    amps = (5.0, 10.0, 20.0)
    ratios = [fit["vmax_deg_s"] * (1 - math.exp(-a / fit["c_deg"])) / _reference(a) for a in amps]
    band = "in" if all(abs(r - 1) <= REFERENCE_TOLERANCE for r in ratios) else "OUT"
    lines.append(_row("Vpeak / 500·(1−e^(−A/14)) 5/10/20°", "/".join(f"{r:.2f}" for r in ratios), na,
                      f"reference curve ±{REFERENCE_TOLERANCE:.0%} (design band)", band, na))
    lines.append(_row("duration = k·A + d (ms)", f"{fit['duration_slope_ms_per_deg']:.2f}·A + {fit['duration_intercept_ms']:.0f}",
                      na, "≈ 2.2·A + 21 ms (Carpenter 1988, after Bahill et al. 1975)", "", ""))
    lo, hi, src = FIXATION_MEDIAN_S
    lines.append(_row("fixation p10/50/90 (s)", _pcts(gg.fixation_pct_s), _pcts(rg.fixation_pct_s) if rg else na,
                      src + ", median", _inside(gg.fixation_pct_s[50], lo, hi),
                      _inside(rg.fixation_pct_s[50], lo, hi) if rg else na))
    return lines


def main(args: argparse.Namespace) -> int:
    from ..expression import stats

    if not (args.minutes > 0 and math.isfinite(args.minutes) and args.minutes <= 120):
        print(f"facewire bench alive: --minutes: expected (0, 120], got {args.minutes:g}", file=sys.stderr)
        return 2
    if not (10 <= args.fps <= 1000):
        print(f"facewire bench alive: --fps: expected 10..1000, got {args.fps:g}", file=sys.stderr)
        return 2
    takes_dir = args.takes if args.takes is not None else shared_takes()
    started = time.perf_counter()
    jobs = max(1, int(args.jobs))
    generated: dict[str, tuple] = {}
    with ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else _Inline() as pool:
        futures = {s: pool.submit(generate, s, args.minutes, args.fps, args.seed + 10 * k) for k, s in enumerate(STATES)}
        real: dict = {}
        if takes_dir.is_dir():  # read the real takes while the workers generate
            try:
                real = stats.real_takes(takes_dir)
            except (OSError, ValueError) as exc:
                print(f"  (real takes unreadable: {exc})")
        for s, fut in futures.items():
            generated[s] = fut.result()
    t_gen = time.perf_counter() - started
    print(f"facewire bench alive: {args.minutes:g} generated minutes per state at {args.fps:g} fps (seed {args.seed}); "
          f"real takes: {takes_dir if real else 'not found: ' + str(takes_dir)}")
    print("  'in'/'OUT': the number against the published range; real main sequence (*) is sampling-limited, not judged\n")
    outside = 0
    for state in STATES:
        groups = REAL_GROUPS[state]
        recs = [r for k, r in real.items() if stats.REAL_TAKES[k] in groups]
        label = f"{', '.join(groups)} ({sum(r.tracked_s for r in recs) / 60:.1f} min)" if recs else "no real take of this state"
        lines = report(state, *generated[state], recs, label)
        outside += sum(" OUT " in line for line in lines)
        print("\n".join(lines) + "\n")
    print(f"rows with a number outside its published range: {outside}; generation + measurement {time.perf_counter() - started:.1f} s "
          f"(generation {t_gen:.1f} s with {jobs} worker(s))")
    return 0


class _Inline:
    """A stand-in executor running each job at once (``--jobs 1``)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def submit(self, fn, *args):
        from concurrent.futures import Future

        f: Future = Future()
        f.set_result(fn(*args))
        return f
