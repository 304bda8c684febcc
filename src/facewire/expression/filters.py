"""Temporal smoothing: the One Euro filter (Casiez, Roussel & Vogel, CHI 2012) and a stage using it.

The One Euro filter is a first-order low-pass whose cutoff rises with the signal's speed:
``cutoff = min_cutoff_hz + beta * |smoothed derivative|``. At rest the low ``min_cutoff_hz``
removes jitter; in motion the cutoff climbs and lag vanishes. ``beta`` is in 1/(signal unit), so
every kind of channel (weights in [0, 1], angles in degrees, translation in ≈ cm) needs its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import numpy as np

from ..errors import InputError
from ..frame import FaceFrame, Gaze, HeadPose

__all__ = [
    "GAZE",
    "HEAD_ROTATION",
    "HEAD_TRANSLATION",
    "WEIGHTS",
    "OneEuroFilter",
    "OneEuroParams",
    "OneEuroStage",
]


@dataclass(frozen=True, slots=True)
class OneEuroParams:
    """The three One Euro settings: cutoff at rest (Hz), speed coefficient (1/unit), derivative cutoff (Hz)."""

    min_cutoff_hz: float
    beta: float
    d_cutoff_hz: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff_hz", "d_cutoff_hz"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name}: expected a positive frequency in Hz, got {value!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise InputError(f"beta: expected a finite value >= 0, got {self.beta!r}")


# Defaults, chosen at 30 fps by sweeping (min_cutoff, beta) and measuring, as
# tests/expression/test_filters.py does, the cross-correlation lag of filtered pulses, trapezoids and
# sine bursts and the noise left on a static signal. Each is the lowest rest cutoff of 1, 1.5, 2, 3 Hz
# (most jitter removed) whose beta still keeps every "moderate motion" test signal within one frame, with a
# margin of ≥ 0.1 frame; raising beta further buys little lag and lets jitter lift the cutoff.
WEIGHTS = OneEuroParams(min_cutoff_hz=1.5, beta=10.0)
"""ARKit weights (unit 1). Moderate motion: ≥ 0.5/s (steps ≥ 0.1, blinks, smiles, speech at 3-4 Hz).
Measured: lag ≤ 0.7 frame (≤ 0.8 even for a slow 0.3/s drift); jitter σ 0.01 cut ≈ 2.2×."""
HEAD_ROTATION = OneEuroParams(min_cutoff_hz=1.0, beta=0.25)
"""Head yaw/pitch/roll (unit degree). Moderate motion: ≥ 20 °/s (turns, 1-2 Hz nods of ±5-10°).
Measured: lag ≤ 0.75 frame; jitter σ 0.5° cut ≈ 2.2×."""
HEAD_TRANSLATION = OneEuroParams(min_cutoff_hz=1.0, beta=1.5)
"""Head x/y/z (unit ≈ cm). Moderate motion: ≥ 3 cm/s. Measured: lag ≤ 0.7 frame; jitter σ 0.1 cut ≈ 2.1×."""
GAZE = OneEuroParams(min_cutoff_hz=1.0, beta=0.25)
"""Per-eye gaze yaw/pitch (unit degree). Saccades open the filter at once; pursuit ≥ 20 °/s keeps lag
≤ 0.8 frame; jitter σ 1° cut ≈ 1.9×."""


def _alpha(cutoff_hz: np.ndarray | float, dt_s: np.ndarray | float) -> np.ndarray:
    # Exact smoothing factor of a first-order low-pass sampled every dt: 1 / (1 + tau/dt)
    r = 2.0 * np.pi * np.asarray(cutoff_hz) * np.asarray(dt_s)
    return r / (r + 1.0)


class OneEuroFilter:
    """One Euro filter over a scalar or a fixed-shape vector, every element independently.

    Call ``f(x, t_ns)`` with each sample and its timestamp in integer nanoseconds; it returns the
    filtered value (a ``float`` for scalar input, else a new float64 array). The first sample passes
    unchanged. Per element: a NaN (or infinite) input is ignored (the previous output is returned and that
    element's state kept); a timestamp not after that element's last accepted one (duplicate or
    out-of-order) returns the previous output without updating. ``reset()`` forgets everything.
    """

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.0, d_cutoff_hz: float = 1.0) -> None:
        self.params = OneEuroParams(float(min_cutoff_hz), float(beta), float(d_cutoff_hz))
        self.reset()

    @classmethod
    def from_params(cls, params: OneEuroParams) -> OneEuroFilter:
        return cls(params.min_cutoff_hz, params.beta, params.d_cutoff_hz)

    def reset(self) -> None:
        self._x: np.ndarray | None = None  # last output (NaN where never initialised)
        self._dx: np.ndarray | None = None  # smoothed derivative
        self._t: np.ndarray | None = None  # last accepted timestamp per element (ns)

    @overload
    def __call__(self, x: float, t_ns: int) -> float: ...

    @overload
    def __call__(self, x: np.ndarray, t_ns: int) -> np.ndarray: ...

    def __call__(self, x, t_ns):
        scalar = np.ndim(x) == 0
        value = np.array(x, dtype=np.float64)  # a copy: never alias the caller's array
        t_ns = int(t_ns)
        if self._x is None:
            self._x = value.copy()
            self._dx = np.zeros_like(value)
            self._t = np.full(value.shape, t_ns, dtype=np.int64)
            out = self._x.copy()
            return float(out) if scalar else out
        if value.shape != self._x.shape:
            raise InputError(f"One Euro filter input: expected shape {self._x.shape}, got {value.shape}")
        assert self._dx is not None and self._t is not None

        valid = np.isfinite(value)
        fresh = valid & ~np.isfinite(self._x)  # first finite sample of an element: take as is
        self._x[fresh] = value[fresh]
        self._dx[fresh] = 0.0
        self._t[fresh] = t_ns

        dt = (t_ns - self._t) * 1e-9
        update = valid & ~fresh & (dt > 0)
        if np.any(update):
            p = self.params
            dt_u = dt[update]
            x_prev = self._x[update]
            dx = (value[update] - x_prev) / dt_u
            edx = self._dx[update] + _alpha(p.d_cutoff_hz, dt_u) * (dx - self._dx[update])
            cutoff = p.min_cutoff_hz + p.beta * np.abs(edx)
            self._x[update] = x_prev + _alpha(cutoff, dt_u) * (value[update] - x_prev)
            self._dx[update] = edx
            self._t[update] = t_ns
        out = self._x.copy()
        return float(out) if scalar else out

    filter = __call__


class _FaceState:
    """Filters for one face: weights, head rotation, head translation, gaze."""

    __slots__ = ("gaze", "rotation", "t_ns", "translation", "weights")

    def __init__(self, stage: OneEuroStage) -> None:
        self.t_ns: int | None = None
        self.weights = OneEuroFilter.from_params(stage.weights_params)
        self.rotation = OneEuroFilter.from_params(stage.head_rotation)
        self.translation = OneEuroFilter.from_params(stage.head_translation)
        self.gaze = OneEuroFilter.from_params(stage.gaze_params)


class OneEuroStage:
    """Smooths weights, head pose and gaze of tracked frames with One Euro filters.

    Defaults (see the module constants, each documented with its measurements at 30 fps):
    weights ``min_cutoff_hz=1.5, beta=10``; head rotation and gaze ``1 Hz, 0.25/°``; head
    translation ``1 Hz, 1.5/cm``; all with ``d_cutoff_hz=1``.

    Why: a one-pole low-pass at cutoff *f* lags a ramp by 1/(2πf) s, so staying within one 33 ms
    frame needs *f* ≳ 5 Hz while moving, and jitter removal needs *f* as low as possible at rest.
    With ``beta=10`` the weights' cutoff is 1.5 + 10·|speed| Hz: ≈ 4.5 Hz for a slow 0.3/s drift,
    10-40 Hz for speech (jaw ±0.2 at 3 Hz ≈ 3.8/s peak), smiles (0→0.8 in 0.3 s) and blinks, so the
    cross-correlation lag stays ≤ 0.7 frame for motion of ≥ 0.5/s (≤ 0.8 at 0.3/s), while at rest
    the 1.5 Hz floor cuts gaussian jitter of σ 0.01 about 2.2× (3 Hz / beta 5 lags about as much
    but cuts it only 1.9×). A larger beta lets the jitter's own derivative lift the cutoff; a lower
    min_cutoff or beta pushes slow-motion lag towards a frame once jitter is added. Head and gaze follow the same reasoning in
    degrees and centimetres.

    Per-channel filtering is independent; weights are clipped back to [0, 1]. Each ``face`` index
    keeps its own state. An untracked frame passes through unchanged and resets that face, so
    re-acquisition starts fresh; so does a gap longer than ``max_gap_s`` or a timestamp going
    backwards. A frame with the same ``t_ns`` as the previous one gets the previous output values.
    ``head``/``gaze`` = False leaves those untouched. Input frames are never mutated.
    """

    def __init__(
        self,
        min_cutoff_hz: float = WEIGHTS.min_cutoff_hz,
        beta: float = WEIGHTS.beta,
        d_cutoff_hz: float = WEIGHTS.d_cutoff_hz,
        head: bool = True,
        gaze: bool = True,
        *,
        head_rotation: OneEuroParams = HEAD_ROTATION,
        head_translation: OneEuroParams = HEAD_TRANSLATION,
        gaze_params: OneEuroParams = GAZE,
        max_gap_s: float = 0.5,
    ) -> None:
        self.weights_params = OneEuroParams(float(min_cutoff_hz), float(beta), float(d_cutoff_hz))
        self.head = bool(head)
        self.gaze = bool(gaze)
        self.head_rotation = head_rotation
        self.head_translation = head_translation
        self.gaze_params = gaze_params
        if not (math.isfinite(max_gap_s) and max_gap_s > 0):
            raise InputError(f"max_gap_s: expected a positive number of seconds, got {max_gap_s!r}")
        self.max_gap_ns = round(float(max_gap_s) * 1e9)
        self._faces: dict[int, _FaceState] = {}

    def reset(self) -> None:
        self._faces.clear()

    def process(self, frame: FaceFrame) -> FaceFrame:
        if not frame.tracked:
            self._faces.pop(frame.face, None)
            return frame
        state = self._faces.get(frame.face)
        if state is not None and state.t_ns is not None:
            dt = frame.t_ns - state.t_ns
            if dt < 0 or dt > self.max_gap_ns:
                state = None
        if state is None:
            state = self._faces[frame.face] = _FaceState(self)
        state.t_ns = frame.t_ns
        t = frame.t_ns

        weights = np.clip(state.weights(frame.weights, t), 0.0, 1.0).astype(np.float32)
        changes: dict[str, object] = {"weights": weights}
        if self.head:
            h = frame.head
            rot = state.rotation(np.array([h.yaw_deg, h.pitch_deg, h.roll_deg]), t)
            pos = state.translation(np.array([h.x, h.y, h.z]), t)
            changes["head"] = HeadPose(*(float(v) for v in rot), *(float(v) for v in pos))
        if self.gaze:
            g = frame.gaze
            eyes = state.gaze(np.array([g.left_yaw_deg, g.left_pitch_deg, g.right_yaw_deg, g.right_pitch_deg]), t)
            changes["gaze"] = Gaze(*(float(v) for v in eyes))
        return frame.replace(**changes)
