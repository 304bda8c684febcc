"""Frame-rate helpers shared by the take formats that store a rate instead of per-frame times."""

from __future__ import annotations

import math
from fractions import Fraction

from ..errors import InputError

__all__ = ["COMMON_FPS", "FpsMeter", "check_fps", "frame_time_ns", "snap_fps"]

#: Whole rates a measured rate snaps to when within 0.5 % (the phone's clock drifts: Live Link
#: Face takes measure 29.997 and 59.88 frames per second for the app's 30 and 60).
COMMON_FPS = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 72.0, 90.0, 100.0, 120.0, 240.0)
#: NTSC rates, 0.1 % below whole ones: chosen only when the measurement is within 0.02 % of them.
NTSC_FPS = (24000 / 1001, 30000 / 1001, 60000 / 1001, 120000 / 1001)

_INTERVALS = 1024  # intervals kept for the median: enough to ignore dropped frames, bounded memory


def snap_fps(fps: float) -> float:
    """``fps`` snapped to a common rate (see :data:`COMMON_FPS`), else rounded to 3 decimals."""
    ntsc = min(NTSC_FPS, key=lambda c: abs(c - fps))
    if abs(ntsc - fps) <= 0.0002 * ntsc:
        return ntsc
    best = min(COMMON_FPS, key=lambda c: abs(c - fps))
    if abs(best - fps) <= 0.005 * best:
        return best
    return round(fps, 3)


def check_fps(fps: float, what: str) -> float:
    """A positive, finite frame rate, or `InputError` naming ``what``."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"{what}: expected a frame rate in frames per second, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{what}: expected a positive frame rate, got {fps!r}")
    return value


def frame_time_ns(index: int, fps: float) -> int:
    """Time of frame ``index`` at ``fps``, rounded to the nanosecond (exact for rational rates)."""
    rate = Fraction(fps).limit_denominator(1_000_000)
    return round(Fraction(index * 1_000_000_000) / rate)


class FpsMeter:
    """Measures a stream's frame rate in constant memory: the median of its first frame intervals
    (a mean would count a dropped frame), snapped by `snap_fps`."""

    __slots__ = ("_intervals", "count", "first_ns", "last_ns")

    def __init__(self) -> None:
        self.first_ns: int | None = None
        self.last_ns = 0
        self.count = 0
        self._intervals: list[int] = []

    def add(self, t_ns: int) -> None:
        if self.first_ns is None:
            self.first_ns = t_ns
        elif len(self._intervals) < _INTERVALS:
            self._intervals.append(t_ns - self.last_ns)
        self.last_ns = t_ns
        self.count += 1

    def period_ns(self) -> int:
        """The median frame interval, 0 with fewer than two frames or no elapsed time."""
        positive = sorted(i for i in self._intervals if i > 0)
        return positive[len(positive) // 2] if positive else 0

    def fps(self, default: float) -> float:
        """The snapped rate, or ``default`` when it cannot be measured."""
        period = self.period_ns()
        return snap_fps(1e9 / period) if period else default
