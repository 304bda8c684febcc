"""``facewire bench alive``: do the procedural eyes blink and look like people? Generated takes beside
real ones and beside published human ranges, measured with one ruler (`facewire.expression.stats`).

For each conversational state (rest, listening, speaking, thinking) a take of ``--minutes`` (10)
is generated at ``--fps`` (60) with `GazeStage` → `BlinkStage` in synthetic mode (large gaze shifts
may carry a blink, as in ``facewire animate``) through the stages' whole-take ``render`` (the same
numbers as frame-by-frame processing), one state per worker process. The same detectors measure it
and the real Live Link Face takes in ``../shared/data/takes`` of the closest activity
(`REAL_BLINK_GROUPS`, `REAL_GAZE_GROUPS`; thinking has no real take).

Each row prints the generated number, the real takes' number, the range it is held against with
its source, and whether each number is inside (``in``/``OUT``; ``—`` where nothing is judged). A
range is a published human range where one fits the measurement; where none does, the row says so
and the generated number is held against the real takes' interquartile range instead (marked
"real takes p25-p75"), the real takes being real people measured the same way. The last line
counts the judged rows whose generated number is in range.

Blink intervals are judged by their shape: each take's intervals divided by its own mean interval
(`relative_intervals`). Their scale is the blink rate, already judged against the published range;
the one real performer blinks at 22.4/min at rest, above Doughty's 8-21/min, so holding raw
generated intervals against that performer's would judge the rate again against the opposite
yardstick: at rest only a rate at the top of the published range (20-21/min) passed both, with
sampling noise flipping one row or the other from seed to seed.

The main sequence of a generated take is read from the saccades the stage made (their exact
amplitudes and peak velocities). The real takes, sampled at 30-60 fps by a tracker that smooths, give
only a sampling-limited main sequence, printed for completeness and not judged.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np

HELP = "blink and gaze statistics of generated takes per state vs the real takes and published human ranges"

STATES = ("rest", "listening", "speaking", "thinking")

REAL_BLINK_GROUPS = {"rest": ("rest", "emotion-hold"), "listening": ("performance",), "speaking": ("speech-like",),
                     "thinking": ()}
"""Real-take activity groups (`stats.REAL_TAKES`) whose blinks each generated state is compared with:
rest ← the idle take and the silent emotion holds (their blink numbers agree: 23.6 and 22.1/min);
listening ← the expression performances (a face attending to the camera); speaking ← the word-like
speech take."""

REAL_GAZE_GROUPS = {"rest": ("rest",), "listening": ("performance",), "speaking": ("speech-like",), "thinking": ()}
"""As `REAL_BLINK_GROUPS` for the gaze rows, but rest ← the idle take alone: in the emotion holds the
performer's eyes roam while acting (fixations 0.35 s against 1.7 s idle)."""


@dataclass(frozen=True)
class Range:
    """A range a measurement is held against: low, high, and where it comes from (short form)."""

    low: float
    high: float
    source: str

    def judge(self, value: float) -> str:
        if not math.isfinite(value):
            return "—"
        # frame-quantised medians land on the bounds (24 frames at 60 fps = 0.4 s computes as 0.4000000000000021):
        # a rounding error is not a measurement outside the range
        tol = 1e-9 * max(1.0, abs(value))
        return "in" if self.low - tol <= value <= self.high + tol else "OUT"


# -- published ranges (each with its source; the full references are in the stages' docstrings) -----------
BLINK_RATE_PER_MIN = {
    # Doughty 2001 (Optom Vis Sci 78:712), 95 % CI over published studies of normal adults.
    "rest": Range(8.0, 21.0, "8-21/min, primary gaze in silence (Doughty 2001)"),
    "listening": Range(10.5, 32.5, "10.5-32.5/min in conversation (Doughty 2001)"),
    "speaking": Range(10.5, 32.5, "10.5-32.5/min in conversation (Doughty 2001)"),
    "thinking": Range(10.5, 32.5, "10.5-32.5/min in conversation (Doughty 2001): thinking mid-conversation"),
}
BLINK_DURATION_MS = Range(100.0, 400.0, "100-400 ms (BioNumbers, after Schiffman 2001); p10, p50, p90")
HOPF_2018 = {5.0: (213.0, 29.0), 15.0: (352.0, 50.0), 30.0: (455.0, 67.0)}
"""Peak velocity (mean, SD °/s) of horizontal saccades to 5°, 15°, 30° targets: 100 healthy people aged
6-76 (Hopf et al. 2018, video-oculography at 220 Hz)."""
COLLEWIJN_1988 = Range(502.0 - 32.0, 502.0 + 32.0, "502 ± 32 °/s asymptote (Collewijn et al. 1988)")
FIXATION_MEDIAN_S = {
    "listening": Range(0.2, 0.4, "0.2-0.4 s, active viewing (Rayner 1998; no face-to-face fixation norms)"),
    "speaking": Range(0.2, 0.4, "0.2-0.4 s, active viewing (Rayner 1998; no face-to-face fixation norms)"),
}
"""Median fixation. Rayner 1998 (Psychol Bull 124:372) gives 200-400 ms for reading, search and scene
viewing, the tasks nearest to scanning a partner's face; face-to-face studies report gaze episodes
(mutual face gaze in instances of ≈ 2.2 s, Rogers et al. 2018), not fixations. Rest (an idle face) and
thinking (gaze aversion: Glenberg et al. 1998 and Doherty-Sneddon & Phelps 2005 report how often, not
how long) have no published fixation range."""
BAND_HALF = 0.2
"""Amplitudes within ±20 % of 5°, 15°, 30° stand for that amplitude when reading generated saccades'
peak velocities against `HOPF_2018` (**design**; at least `MIN_PER_BAND` saccades needed)."""
MIN_PER_BAND = 5


def shared_takes() -> Path:
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "takes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=10.0, help="generated minutes per state (default 10)")
    p.add_argument("--fps", type=float, default=60.0, help="frame rate of the generated takes (default 60)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated takes (default 0)")
    p.add_argument("--takes", type=Path, default=None, help="directory of the real takes (default ../shared/data/takes)")
    p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="worker processes (default: up to 4)")


def generate(state: str, minutes: float, fps: float, seed: int) -> tuple[object, np.ndarray]:
    """A generated take of ``state`` as a `stats.Recording`, and its saccades (amplitude °, peak °/s, duration s)."""
    from ..expression import stats
    from ..expression.blink import BlinkStage
    from ..expression.gaze import GazeStage

    n = round(minutes * 60 * fps)
    blink = BlinkStage("synthetic", state=state, seed=seed)
    gaze = GazeStage("synthetic", state=state, seed=seed + 1, on_saccade=blink.gaze_shift, history=n)
    t_ns = np.round(np.arange(n) * (1e9 / fps)).astype(np.int64)
    weights, eyes = gaze.render(t_ns, blink=blink)
    events = np.array([(s.amplitude_deg, s.peak_velocity_deg_s, s.duration_s) for s in gaze.saccades if not s.micro])
    rec = stats.Recording(t_s=(t_ns - t_ns[0]) / 1e9, weights=weights, gaze=eyes, tracked=np.ones(n, dtype=bool),
                          name=f"generated {state}")
    return rec, events.reshape(-1, 3)


def _iqr(values: np.ndarray) -> Range | None:
    if len(values) < 5:
        return None
    lo, hi = np.percentile(values, [25, 75])
    return Range(float(lo), float(hi), "")


def relative_intervals(recordings: list) -> np.ndarray:
    """Inter-blink intervals of each recording divided by that recording's mean interval, pooled.

    The shape of the interval distribution without its scale: the scale is the blink rate, judged
    on its own row against the published range, while one performer's takes differ in rate (5.8-39
    blinks/min in the emotion holds) and the real rest rate lies above that range. Comparing raw
    intervals would judge the rate a second time, against the one performer instead of the literature.
    """
    from ..expression import stats

    parts = []
    for rec in recordings:
        ibi = np.asarray(stats.blink_stats([rec]).ibi_s, dtype=float)
        if len(ibi) >= 2:
            parts.append(ibi / ibi.mean())
    return np.concatenate(parts) if parts else np.zeros(0)


def _pcts(p: dict, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    return "/".join(fmt.format(p[q] * scale) for q in (10, 50, 90))


class Table:
    """The rows of one state: label, generated, real, range and verdicts; counts the judged ones."""

    def __init__(self, title: str) -> None:
        self.lines = [title, self._fmt("", "generated", "real takes", "gen", "real", "range held against (source)")]
        self.judged = 0
        self.inside = 0

    @staticmethod
    def _fmt(label: str, gen: str, real: str, v_gen: str, v_real: str, source: str) -> str:
        return f"  {label:<32} {gen:>20} {real:>20}  {v_gen:>4} {v_real:>4}  {source}"

    def row(self, label: str, gen: str, real: str, source: str = "", v_gen: str = "", v_real: str = "") -> None:
        if v_gen in ("in", "OUT"):
            self.judged += 1
            self.inside += v_gen == "in"
        self.lines.append(self._fmt(label, gen, real, v_gen, v_real, source))


def _band_velocity(events: np.ndarray, amplitude: float) -> float:
    a, v = events[:, 0], events[:, 1]
    near = np.abs(a - amplitude) <= BAND_HALF * amplitude
    return float(np.median(v[near])) if near.sum() >= MIN_PER_BAND else float("nan")


def report(state: str, rec, events: np.ndarray, real_blinks: list, real_gaze: list, label: str) -> Table:
    """One state's table (see the module doc)."""
    from ..expression import stats

    na = "—"
    gb, gg = stats.blink_stats([rec]), stats.gaze_stats([rec])
    rb = stats.blink_stats(real_blinks) if real_blinks else None
    rg = stats.gaze_stats(real_gaze) if real_gaze else None
    tab = Table(f"{state}: generated {gb.minutes:.1f} min at {rec.fps:.0f} fps  vs  real: {label}")

    # -- blinks
    rng = BLINK_RATE_PER_MIN[state]
    tab.row("blink rate (/min)", f"{gb.rate_per_min:.1f} ({gb.blinks})", f"{rb.rate_per_min:.1f} ({rb.blinks})" if rb else na,
            rng.source, rng.judge(gb.rate_per_min), rng.judge(rb.rate_per_min) if rb else na)
    tab.row("interval p10/50/90 (s)", _pcts(gb.ibi_pct_s), _pcts(rb.ibi_pct_s) if rb else na,
            "set by the rate (judged above) and the spread (judged below); no published percentiles")
    gen_shape = relative_intervals([rec])
    real_shape = relative_intervals(real_blinks) if real_blinks else np.zeros(0)
    iqr = _iqr(real_shape)
    gen_median = float(np.median(gen_shape)) if len(gen_shape) else float("nan")
    tab.row("  interval ÷ take's mean, p50", f"{gen_median:.2f}",
            f"{np.median(real_shape):.2f}" if len(real_shape) else na,
            f"median in real takes p25-p75 {iqr.low:.2f}-{iqr.high:.2f} (rate-free shape)" if iqr
            else "no real take", iqr.judge(gen_median) if iqr else na)
    tab.row("interval CV", f"{gb.ibi_cv:.2f}", f"{rb.ibi_cv:.2f}" if rb else na, "right-skewed, log-normal-like (no cited range)")
    rng = BLINK_DURATION_MS

    def durations(b) -> str:
        return "in" if all(rng.low <= b.duration_ms[q] <= rng.high for q in (10, 50, 90)) else "OUT"

    tab.row("blink duration p10/50/90 (ms)", _pcts(gb.duration_ms, fmt="{:.0f}"),
            _pcts(rb.duration_ms, fmt="{:.0f}") if rb else na, rng.source + ", onset → offset at 10 %",
            durations(gb), durations(rb) if rb else na)
    tab.row("  lid > half closed (FWHM, ms)", _pcts(gb.fwhm_ms, fmt="{:.0f}"), _pcts(rb.fwhm_ms, fmt="{:.0f}") if rb else na,
            "the time the lid is more than half closed")
    tab.row("  closing / opening, median (ms)", f"{gb.closing_ms[50]:.0f} / {gb.opening_ms[50]:.0f}",
            f"{rb.closing_ms[50]:.0f} / {rb.opening_ms[50]:.0f}" if rb else na, "the lid closes faster than it reopens")

    # -- saccades
    tab.row("saccades ≥ 1° (count, /s)", f"{gg.saccades} ({gg.rate_per_s:.2f}/s)",
            f"{rg.saccades} ({rg.rate_per_s:.2f}/s)" if rg else na, "no published rate for these states")
    tab.row("amplitude p10/50/90 (°)", _pcts(gg.amplitude_pct_deg, fmt="{:.1f}"),
            _pcts(rg.amplitude_pct_deg, fmt="{:.1f}") if rg else na)
    for amplitude, (mean, sd) in HOPF_2018.items():
        v = _band_velocity(events, amplitude)
        band = Range(mean - sd, mean + sd, f"{mean:.0f} ± {sd:.0f} °/s (Hopf et al. 2018, mean ± SD)")
        tab.row(f"peak velocity at {amplitude:.0f}° (°/s)", f"{v:.0f} (±{BAND_HALF:.0%} of A)" if math.isfinite(v) else
                "too few saccades", na, band.source, band.judge(v))
    fit = stats.fit_main_sequence(events[:, 0], events[:, 2], events[:, 1])
    large = int((events[:, 0] >= 20.0).sum())
    real_fit = (f"{rg.main_sequence['vmax_deg_s']:.0f}·(1−e^(−A/{rg.main_sequence['c_deg']:.0f}°))*" if rg else na)
    tab.row("fit Vmax·(1−e^(−A/C)) (°/s)", f"{fit['vmax_deg_s']:.0f}·(1−e^(−A/{fit['c_deg']:.1f}°))", real_fit,
            COLLEWIJN_1988.source + (f"; Vmax judged with {large} saccades ≥ 20°" if large >= MIN_PER_BAND
                                     else "; too few saccades ≥ 20° to pin Vmax"),
            COLLEWIJN_1988.judge(fit["vmax_deg_s"]) if large >= MIN_PER_BAND else na)
    tab.row("duration ≈ k·A + d (ms)", f"{fit['duration_slope_ms_per_deg']:.2f}·A + {fit['duration_intercept_ms']:.0f}",
            na, "(π/2)·A/Vpeak; textbook line 2.2·A + 21 (Carpenter 1988)")

    # -- fixations
    published = FIXATION_MEDIAN_S.get(state)
    real_iqr = _iqr(rg.fixation_s) if rg else None
    gen_median = gg.fixation_pct_s[50]
    if published is not None:
        tab.row("fixation p10/50/90 (s)", _pcts(gg.fixation_pct_s), _pcts(rg.fixation_pct_s) if rg else na,
                published.source + ", median", published.judge(gen_median),
                published.judge(rg.fixation_pct_s[50]) if rg else na)
    if real_iqr is not None:
        tab.row("fixation median vs real" if published is not None else "fixation p10/50/90 (s)",
                f"{gen_median:.2f}" if published is not None else _pcts(gg.fixation_pct_s),
                f"{rg.fixation_pct_s[50]:.2f}" if published is not None else _pcts(rg.fixation_pct_s),
                f"median in real takes p25-p75 {real_iqr.low:.2f}-{real_iqr.high:.2f} s"
                + ("" if published is not None else " (no published range at rest)"), real_iqr.judge(gen_median))
    if published is None and real_iqr is None:
        tab.row("fixation p10/50/90 (s)", _pcts(gg.fixation_pct_s), na,
                "no published durations (Glenberg 1998; Doherty-Sneddon & Phelps 2005: how often, not how long)")
    return tab


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
    print("  gen/real: the number against the range on its row ('—': not judged); real main sequence (*) is "
          "sampling-limited, not judged\n")
    judged = inside = 0
    for state in STATES:
        def recs(groups: tuple[str, ...]) -> list:
            return [r for k, r in real.items() if stats.REAL_TAKES[k] in groups]

        rb, rg = recs(REAL_BLINK_GROUPS[state]), recs(REAL_GAZE_GROUPS[state])
        if rb:
            label = (f"blinks {', '.join(REAL_BLINK_GROUPS[state])} ({sum(r.tracked_s for r in rb) / 60:.1f} min), "
                     f"gaze {', '.join(REAL_GAZE_GROUPS[state])} ({sum(r.tracked_s for r in rg) / 60:.1f} min)")
        else:
            label = "no real take of this state"
        tab = report(state, *generated[state], rb, rg, label)
        judged += tab.judged
        inside += tab.inside
        print("\n".join(tab.lines) + "\n")
    print(f"generated rows in range: {inside} of {judged} judged; generation + measurement "
          f"{time.perf_counter() - started:.1f} s (generation {t_gen:.1f} s with {jobs} worker(s))")
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
