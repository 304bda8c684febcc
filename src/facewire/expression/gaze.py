"""Procedural gaze: a `GazeStage` whose saccades, fixations and eyelids move like a person's.

The eyes hold a fixation, jump (a saccade) to the next point and hold again, with microsaccades in
between; where the next point lies depends on the target (the camera/user, a point, or free
wandering) and on the conversational state (listeners look at the speaker, speakers and thinkers
look away). Each constant below says where it comes from: **data** (measured on the real Live Link
Face takes by ``tools/fit_blink_gaze.py`` with `facewire.expression.stats`), **literature** (cited),
or **design** (a choice where neither pins the number; the reason is given).

Published ranges used:

* Saccade main sequence, peak velocity Vp = Vmax·(1 − e^(−A/C)) (the exponential form of Bahill,
  Clark & Stark 1975, *Math Biosci* 24:191). Values: horizontal reflexive saccades of 100 healthy
  people aged 6-76 peak at 213 ± 29, 352 ± 50 and 455 ± 67 °/s (mean ± SD) for 5°, 15° and 30°
  targets (Hopf, Liesenfeld, Schmidtmann, Ashayer & Pitz 2018, video-oculography at 220 Hz,
  PMC6143243); peak velocities saturate at 502 ± 32 °/s for saccades of 40° and more (Collewijn,
  Erkelens & Steinman 1988, *J Physiol* 404:157, scleral coils, 3 subjects). The durations follow
  from the half-cosine profile, D = (π/2)·A/Vp, close to the textbook line 2.2 ms/°·A + 21 ms
  (Carpenter 1988). Microsaccades (< 1°, ≈ 1-2/s during fixation) lie on the same main sequence
  (Zuber, Stark & Cook 1965, *Science* 150:1459; Martinez-Conde, Macknik & Hubel 2004, *Nat Rev
  Neurosci* 5:229).
* Fixations last ≈ 200-400 ms in reading and scene viewing (Rayner 1998, *Psychol Bull* 124:372).
* In conversation listeners look at the speaker ≈ 75 % of the time, speakers at the listener
  ≈ 40 % (Argyle & Cook 1976; Kendon 1967, *Acta Psychol* 26:22); people avert their gaze while
  thinking, the more the harder the question (Glenberg, Schroeder & Robertson 1998, *Mem Cognit*
  26:651; Doherty-Sneddon & Phelps 2005, *Mem Cognit* 33:727).
* Vergence: each eye turns in by atan(IPD / 2d) for a target at distance d; adult IPD ≈ 63 mm
  (Dodgson 2004, *Proc SPIE* 5291). The upper lid follows the eye in vertical gaze (Becker & Fuchs
  1988, *J Neurophysiol* 60:1227). A saccade starts ≈ 200 ms after a new target appears.

Measured on the real takes (all 14; detectors at 30-60 fps, so saccade durations and peak velocities
there are limits of the sampling and the tracker's smoothing and are not used):

==============================================  =======================================
quantity                                        measured
==============================================  =======================================
saccades ≥ 1°, all takes                        757 in 752 s (1.0/s)
amplitude, all takes                            median 3.4°, log-normal 3.8°, σ 0.91
fixation, all takes                             median 0.40 s, log-normal 0.45 s, σ 1.15
fixation / amplitude, idle take                 log-normal 1.8 s, σ 1.11 / median 1.9°
eyeLook weight 1 at (out / in / up / down)      43° / 31° / 25° / 35°
eyeBlink gained looking down                    0.018 per °
eyeWide gained looking up                       0.035 per °
==============================================  =======================================

Weights from angles (per eye, `Gaze` conventions: yaw > 0 to the subject's left, pitch > 0 up):
``eyeLookOutLeft = yaw_left / 43°`` for yaw_left > 0, ``eyeLookInLeft = −yaw_left / 31°`` for
yaw_left < 0, mirrored for the right eye (``eyeLookInRight`` rises with positive yaw),
``eyeLookUp = pitch / 25°``, ``eyeLookDown = −pitch / 35°``, each clipped to [0, 1]: lines through
zero fitted to the takes, where the tracker reports both the angles and the weights.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, NamedTuple

import numpy as np

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame, Gaze
from .blink import STATES, BlinkStage, ConversationalState

__all__ = [
    "BEHAVIOUR",
    "LOOK_FULL_DEG",
    "GazeBehaviour",
    "GazeParams",
    "GazeStage",
    "SaccadeEvent",
    "eye_look_weights",
    "main_sequence_peak_velocity_deg_s",
    "saccade_duration_s",
    "saccade_peak_velocity_deg_s",
    "vergence_deg",
]

# -- main sequence and microsaccades (literature) ----------------------------------------------------
MAIN_SEQUENCE_VMAX_DEG_S = 495.0
"""Vmax of the peak-velocity main sequence Vp = Vmax·(1 − e^(−A/C)): **literature**, the weighted
(1/SD²) least-squares fit of that curve to Hopf et al. 2018's horizontal means (213/352/455 °/s at
5/15/30°) and Collewijn et al. 1988's asymptote (502 °/s, put at 60°). The fit passes within 0.75 SD
of each (198/389/472 °/s; 494 °/s at 60°); ``tools/fit_blink_gaze.py`` repeats the fit."""

MAIN_SEQUENCE_C_DEG = 9.7
"""C of the same main sequence (°): **literature**, same fit."""

PEAK_VELOCITY_LOG_SIGMA = 0.1
"""Saccade-to-saccade spread of the peak velocity around the main sequence, σ of a log-normal
factor: **design**, below the between-person SD of ≈ 14 % of the mean that Hopf et al. 2018 report
(one face is one person; its own saccades scatter less than a population's means)."""

MICROSACCADE_RATE_HZ = 1.5
"""Microsaccades per second of fixation, Poisson: **literature** (≈ 1-2/s, Martinez-Conde et al. 2004).
The takes cannot show them: the tracker does not resolve < 1°."""

MICROSACCADE_AMPLITUDE = (0.35, 0.4, 1.0)
"""(median °, log σ, maximum °) of microsaccade amplitudes: **literature** (typically 0.2-0.6°, < 1°)."""

MIN_FIXATION_S = 0.1
"""Shortest fixation: **literature** (fixations under ≈ 100 ms are rare: saccadic refractory period)."""

SACCADE_LATENCY_S = 0.2
"""Delay from a new target or state to the first saccade: **literature** (saccadic latency ≈ 200 ms)."""

# -- geometry --------------------------------------------------------------------------------------
IPD_M = 0.063
"""Interpupillary distance: **literature** (adult mean ≈ 63 mm, Dodgson 2004)."""

CAMERA_DISTANCE_M = 0.6
"""Distance of the camera/user target: **design** (a desktop camera or a person across a table)."""

AWAY_DISTANCE_M = 2.0
"""Distance of averted and free gaze points: **design** (looking into the room)."""

LOOK_FULL_DEG: Mapping[str, float] = MappingProxyType({"out": 43.1, "in": 31.0, "up": 24.8, "down": 35.1})
"""Eye rotation (°) at which each eyeLook direction reaches weight 1: **data** (least-squares lines
through zero over 26 502 open-eyed frames of all takes; ``stats.fit_eye_look``)."""

LID_FOLLOW_DOWN_PER_DEG = 0.018
"""eyeBlink added per degree of downward gaze: **data** (``stats.lid_coupling``; the lid follows the
eye, Becker & Fuchs 1988)."""

LID_RAISE_UP_PER_DEG = 0.035
"""eyeWide added per degree of upward gaze: **data** (same fit)."""

YAW_LIMIT_DEG = 35.0
"""Largest eye yaw produced: **design**, inside the ≈ ±45° oculomotor range and where eyes stop
and the head turns in natural gaze shifts."""

PITCH_LIMITS_DEG = (-30.0, 25.0)
"""Lowest and highest eye pitch produced: **design**, as above (the eye rotates further down than up)."""

# -- free wandering (data) ---------------------------------------------------------------------------
FREE_AMPLITUDE = (3.3, 0.91)
"""(median °, log σ) of saccade amplitudes (≥ 1°) when wandering freely: **data**. The takes measure a
log-normal median of 3.8°, σ 0.91 (all takes, saccades ≥ 1°); drawing from 3.3° is what makes the
same detector measure 3.8° on the generated stream (it sees the truncation at 1°)."""

FREE_FIXATION = (0.39, 1.15)
"""(median s, log σ) of fixation durations when wandering freely: **data**. The takes measure a
log-normal median of 0.45 s, σ 1.15; drawing from 0.39 s makes the detector, which counts a fixation
from the last fast sample of one saccade to the first of the next at 60 fps, measure 0.45 s."""

FREE_RANGE_DEG = (20.0, 12.0)
"""Half-widths (yaw, pitch) of the region free gaze wanders in: **design** (the takes' gaze stays
within about ±20° yaw, ±12° pitch, 1st-99th percentiles)."""


@dataclass(frozen=True)
class GazeBehaviour:
    """How the eyes treat the target in one conversational state.

    ``fixation`` is (median s, log σ) of a log-normal; ``away_fraction`` the share of fixations spent
    looking away from the target; ``scatter_deg`` the sd of on-target fixations around the target
    (the eyes scan a face: eyes, mouth); ``aversion`` (median °, log σ) the distance of averted
    fixations from the target and ``aversion_up`` the share of those that go upward (the others go
    sideways and down).
    """

    fixation: tuple[float, float]
    away_fraction: float
    scatter_deg: float
    aversion: tuple[float, float] = (10.0, 0.35)
    aversion_up: float = 0.25

    def __post_init__(self) -> None:
        median, sigma = self.fixation
        if not (median > 0 and sigma >= 0):
            raise InputError(f"fixation: expected (median s > 0, log σ ≥ 0), got {self.fixation!r}")
        for name in ("away_fraction", "aversion_up"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(f"{name}: expected a fraction in [0, 1], got {getattr(self, name)!r}")
        if not self.scatter_deg >= 0:
            raise InputError(f"scatter_deg: expected ≥ 0, got {self.scatter_deg!r}")
        if not (self.aversion[0] > 0 and self.aversion[1] >= 0):
            raise InputError(f"aversion: expected (median ° > 0, log σ ≥ 0), got {self.aversion!r}")


BEHAVIOUR: Mapping[str, GazeBehaviour] = MappingProxyType({
    # data: the idle take (saccades ≥ 1°: amplitude median 1.9°; fixations log-normal 1.8 s, σ 1.1).
    # The generative numbers (scatter σ 1.0°, fixations 1.3 s) are those with which the same
    # detector, which like the take misses refixations under 1° and so joins their fixations,
    # measures ≈ 2.1° and ≈ 1.7 s on generated streams. design: 5 % glances away.
    "rest": GazeBehaviour(fixation=(1.3, 1.1), away_fraction=0.05, scatter_deg=1.0),
    # data: the expression-performance takes (a face attending to the camera) measure fixations of
    # median 0.40 s (p10/p90 0.10/2.27 s); drawing 0.33 s (σ 1.15, the takes' spread) makes the same
    # detector measure 0.38-0.40 s on generated streams, inside 0.2-0.4 s for active viewing (Rayner
    # 1998). literature: listeners look at the speaker ≈ 75 % of the time (Argyle & Cook 1976);
    # design: a face at 60 cm spans ≈ ±6°, scatter σ 2°.
    "listening": GazeBehaviour(fixation=(0.33, 1.15), away_fraction=0.25, scatter_deg=2.0),
    # data: the word-like speech take measures fixations of median 0.30 s (p10/p90 0.10/1.17 s);
    # drawing 0.25 s makes the detector measure 0.30 s. literature: speakers look at the listener
    # ≈ 40 % of the time (Argyle & Cook 1976; Kendon 1967).
    "speaking": GazeBehaviour(fixation=(0.25, 1.15), away_fraction=0.6, scatter_deg=2.0, aversion_up=0.3),
    # literature: gaze aversion while thinking (Glenberg et al. 1998; Doherty-Sneddon & Phelps 2005);
    # design: 80 % away, longer holds (0.8 s), mostly upward.
    "thinking": GazeBehaviour(fixation=(0.8, 1.0), away_fraction=0.8, scatter_deg=2.0, aversion=(12.0, 0.3),
                              aversion_up=0.6),
})
"""Per-state gaze behaviour (each line's source in the comment above it)."""


@dataclass(frozen=True)
class GazeParams:
    """Every number `GazeStage` uses; the defaults are the module constants (see each one's source)."""

    behaviour: Mapping[str, GazeBehaviour] = field(default_factory=lambda: BEHAVIOUR)
    vmax_deg_s: float = MAIN_SEQUENCE_VMAX_DEG_S
    c_deg: float = MAIN_SEQUENCE_C_DEG
    peak_velocity_log_sigma: float = PEAK_VELOCITY_LOG_SIGMA
    microsaccade_rate_hz: float = MICROSACCADE_RATE_HZ
    microsaccade_amplitude: tuple[float, float, float] = MICROSACCADE_AMPLITUDE
    min_fixation_s: float = MIN_FIXATION_S
    latency_s: float = SACCADE_LATENCY_S
    ipd_m: float = IPD_M
    camera_distance_m: float = CAMERA_DISTANCE_M
    away_distance_m: float = AWAY_DISTANCE_M
    look_full_deg: Mapping[str, float] = field(default_factory=lambda: LOOK_FULL_DEG)
    lid_follow_down_per_deg: float = LID_FOLLOW_DOWN_PER_DEG
    lid_raise_up_per_deg: float = LID_RAISE_UP_PER_DEG
    free_amplitude: tuple[float, float] = FREE_AMPLITUDE
    free_fixation: tuple[float, float] = FREE_FIXATION
    free_range_deg: tuple[float, float] = FREE_RANGE_DEG
    yaw_limit_deg: float = YAW_LIMIT_DEG
    pitch_limits_deg: tuple[float, float] = PITCH_LIMITS_DEG

    def __post_init__(self) -> None:
        behaviour = dict(self.behaviour)
        for state in STATES:
            if not isinstance(behaviour.get(state), GazeBehaviour):
                raise InputError(f"behaviour[{state!r}]: expected a GazeBehaviour, got {behaviour.get(state)!r}")
        object.__setattr__(self, "behaviour", MappingProxyType(behaviour))
        full = dict(self.look_full_deg)
        for key in ("out", "in", "up", "down"):
            value = full.get(key)
            if value is None or not (math.isfinite(value) and value > 0):
                raise InputError(f"look_full_deg[{key!r}]: expected a positive angle in degrees, got {value!r}")
        object.__setattr__(self, "look_full_deg", MappingProxyType(full))
        for name in ("vmax_deg_s", "c_deg", "min_fixation_s", "ipd_m",
                     "camera_distance_m", "away_distance_m", "yaw_limit_deg"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name}: expected a positive number, got {value!r}")
        for name in ("microsaccade_rate_hz", "latency_s", "lid_follow_down_per_deg", "lid_raise_up_per_deg",
                     "peak_velocity_log_sigma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{name}: expected a number ≥ 0, got {value!r}")
        low, high = self.pitch_limits_deg
        if not low < 0 < high:
            raise InputError(f"pitch_limits_deg: expected (down < 0 < up), got {self.pitch_limits_deg!r}")


# -- pure functions -----------------------------------------------------------------------------------
def main_sequence_peak_velocity_deg_s(amplitude_deg: float | np.ndarray, vmax_deg_s: float = MAIN_SEQUENCE_VMAX_DEG_S,
                                      c_deg: float = MAIN_SEQUENCE_C_DEG) -> float | np.ndarray:
    """The main sequence's peak velocity for ``amplitude_deg``: Vmax·(1 − e^(−A/C))."""
    return vmax_deg_s * (1.0 - np.exp(-np.abs(amplitude_deg) / c_deg))


def saccade_duration_s(amplitude_deg: float | np.ndarray, peak_velocity_deg_s: float | np.ndarray | None = None,
                       vmax_deg_s: float = MAIN_SEQUENCE_VMAX_DEG_S, c_deg: float = MAIN_SEQUENCE_C_DEG) -> float | np.ndarray:
    """Duration of a half-cosine saccade of ``amplitude_deg`` peaking at ``peak_velocity_deg_s``
    (the main sequence's when not given): (π/2)·A/Vp, which tends to (π/2)·C/Vmax for tiny ones."""
    a = np.abs(amplitude_deg)
    if peak_velocity_deg_s is None:
        # the limit form keeps A → 0 finite: A / (1 − e^(−A/C)) → C
        ratio = np.where(a > 1e-9, a / np.maximum(-np.expm1(-a / c_deg), 1e-300), c_deg)
        return math.pi / 2 * ratio / vmax_deg_s
    return math.pi / 2 * a / peak_velocity_deg_s


def saccade_peak_velocity_deg_s(amplitude_deg: float | np.ndarray, vmax_deg_s: float = MAIN_SEQUENCE_VMAX_DEG_S,
                                c_deg: float = MAIN_SEQUENCE_C_DEG) -> float | np.ndarray:
    """Peak velocity of a saccade of ``amplitude_deg`` without spread (alias of the main sequence)."""
    return main_sequence_peak_velocity_deg_s(amplitude_deg, vmax_deg_s, c_deg)


def vergence_deg(distance_m: float, ipd_m: float = IPD_M) -> float:
    """Total convergence (left eye in + right eye in, °) for a target ``distance_m`` straight ahead."""
    if not (math.isfinite(distance_m) and distance_m > 0):
        return 0.0  # at infinity the eyes are parallel
    return 2.0 * math.degrees(math.atan(ipd_m / (2.0 * distance_m)))


_I = arkit.INDEX
_LOOK = np.array([_I[n] for n in ("eyeLookOutLeft", "eyeLookInLeft", "eyeLookUpLeft", "eyeLookDownLeft",
                                  "eyeLookOutRight", "eyeLookInRight", "eyeLookUpRight", "eyeLookDownRight")])


def eye_look_weights(gaze: Gaze, look_full_deg: Mapping[str, float] = LOOK_FULL_DEG) -> dict[str, float]:
    """The eight eyeLook weights of a per-eye gaze (the module doc gives the mapping)."""
    out, inward, up, down = (look_full_deg[k] for k in ("out", "in", "up", "down"))
    clip = lambda v: min(1.0, max(0.0, v))
    ly, lp, ry, rp = gaze.left_yaw_deg, gaze.left_pitch_deg, gaze.right_yaw_deg, gaze.right_pitch_deg
    return {
        "eyeLookOutLeft": clip(ly / out), "eyeLookInLeft": clip(-ly / inward),
        "eyeLookUpLeft": clip(lp / up), "eyeLookDownLeft": clip(-lp / down),
        "eyeLookOutRight": clip(-ry / out), "eyeLookInRight": clip(ry / inward),
        "eyeLookUpRight": clip(rp / up), "eyeLookDownRight": clip(-rp / down),
    }


class SaccadeEvent(NamedTuple):
    """A generated saccade: onset (s since the first frame), amplitude (°), duration (s), peak velocity (°/s)."""

    t_s: float
    amplitude_deg: float
    duration_s: float
    peak_velocity_deg_s: float
    micro: bool


Target = str | tuple[float, float] | tuple[float, float, float]
Mode = Literal["auto", "synthetic"]
MODES = ("auto", "synthetic")


class _Move:
    """One saccade: from (yaw, pitch, vergence) to another along a half cosine."""

    __slots__ = ("duration", "end", "start", "t0")

    def __init__(self, t0: float, duration: float, start: np.ndarray, end: np.ndarray) -> None:
        self.t0, self.duration, self.start, self.end = t0, duration, start, end

    def at(self, t: float) -> np.ndarray:
        u = (t - self.t0) / self.duration
        if u >= 1.0:
            return self.end
        if u <= 0.0:
            return self.start
        return self.start + (self.end - self.start) * (0.5 - 0.5 * math.cos(math.pi * u))


class GazeStage(ConversationalState):
    """Generates per-eye gaze, the eyeLook weights and the lids that follow vertical gaze.

    ``mode``: ``"auto"`` (default) leaves tracked frames alone (a real face looks by itself; the
    clock still runs) and animates untracked ones; ``"synthetic"`` animates every frame (avatars).
    An animated frame gets ``gaze`` (per eye, with vergence for the target's distance), the eight
    ``eyeLook*`` weights (replaced; mapping in the module doc), and lids following the eye:
    ``eyeBlink += (1 − eyeBlink)·0.018/° × down-gaze``, ``eyeWide += (1 − eyeWide)·0.035/° × up-gaze``.

    ``target`` (also `look_at`): ``"camera"`` or ``"user"`` (straight ahead, 0°/0°, at
    ``camera_distance_m``), ``"free"`` (wandering with the takes' amplitudes and fixations), or a point
    ``(yaw_deg, pitch_deg)`` / ``(yaw_deg, pitch_deg, distance_m)`` in head-relative degrees. With
    ``compensate_head`` the target is fixed in the camera's frame instead and the eyes counter-rotate
    against ``frame.head`` yaw/pitch (clipped to the eyes' range), as they do to keep eye contact.
    ``state`` (also `set_state`): one of `blink.STATES`, choosing the `GazeBehaviour`.

    Saccades follow the main sequence (peak velocity `MAIN_SEQUENCE_VMAX_DEG_S`·(1 − e^(−A/`MAIN_SEQUENCE_C_DEG`))
    with a log-normal spread `PEAK_VELOCITY_LOG_SIGMA`, half-cosine profile, duration (π/2)·A/Vp); the
    eyes hold still between them apart from microsaccades. ``on_saccade(amplitude_deg, t_ns)`` is
    called for every saccade (not microsaccade) as it starts, e.g. with `BlinkStage.gaze_shift`.
    `saccades` keeps the most recent generated ones (microsaccades flagged). Timing is continuous
    and seeded, as in `BlinkStage`; input frames are never changed.
    """

    _state_label = "gaze state"

    def __init__(self, mode: Mode = "auto", *, state: str = "rest", target: Target = "camera",
                 seed: int | None = None, params: GazeParams | None = None,
                 on_saccade: Callable[[float, int], object] | None = None, compensate_head: bool = False,
                 history: int = 10_000) -> None:
        if mode not in MODES:
            raise InputError(f"gaze mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.params = params if params is not None else GazeParams()
        self.seed = seed
        self.on_saccade = on_saccade
        self.compensate_head = bool(compensate_head)
        self._check_state(state)
        self._initial_state = state
        self._initial_target = self._parse_target(target)
        self.saccades: deque[SaccadeEvent] = deque(maxlen=int(history))
        self.reset()

    # -- control -------------------------------------------------------------------------------
    def _parse_target(self, target: Target) -> tuple[str, np.ndarray]:
        if isinstance(target, str):
            if target in ("camera", "user"):
                return "point", np.array([0.0, 0.0, self.params.camera_distance_m])
            if target == "free":
                return "free", np.array([0.0, 0.0, self.params.away_distance_m])
            raise InputError(f"gaze target: expected 'camera', 'user', 'free' or (yaw_deg, pitch_deg[, distance_m]), got {target!r}")
        try:
            values = [float(v) for v in target]
        except (TypeError, ValueError):
            raise InputError(f"gaze target: expected 'camera', 'user', 'free' or (yaw_deg, pitch_deg[, distance_m]), got {target!r}") from None
        if len(values) not in (2, 3) or not all(math.isfinite(v) for v in values):
            raise InputError(f"gaze target: expected 2 or 3 finite numbers (yaw_deg, pitch_deg[, distance_m]), got {target!r}")
        distance = values[2] if len(values) == 3 else self.params.camera_distance_m
        if distance <= 0:
            raise InputError(f"gaze target distance_m: expected > 0, got {distance!r}")
        return "point", np.array([values[0], values[1], distance])

    def set_state(self, state: str) -> None:
        """Switch state; the current fixation ends after the saccadic latency so the change shows."""
        self._check_state(state)
        if state != self._state:
            self._state = state
            self._cut_fixation()

    @property
    def target(self) -> tuple[str, tuple[float, float, float]]:
        """("point" or "free", (yaw °, pitch °, distance m))."""
        kind, point = self._target
        return kind, tuple(float(v) for v in point)  # type: ignore[return-value]

    def look_at(self, target: Target) -> None:
        """Change the target; the eyes go there after the saccadic latency."""
        self._target = self._parse_target(target)
        self._cut_fixation(towards_target=self._target[0] == "point")

    def _cut_fixation(self, towards_target: bool = False) -> None:
        if self._now is not None and self._fix_end is not None:
            self._fix_end = min(self._fix_end, max(self._now, self._move_end()) + self.params.latency_s)
            self._force_target = towards_target

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._state = self._initial_state
        self._target = self._initial_target
        self.saccades.clear()
        self._restart_clock()

    def _restart_clock(self) -> None:
        self._t0_ns: int | None = None
        self._now: float | None = None
        self._fix_end: float | None = None
        self._next_micro = math.inf
        self._center: np.ndarray | None = None  # intended fixation point (yaw, pitch, vergence)
        self._move: _Move | None = None
        self._away = False
        self._force_target = False

    # -- drawing -------------------------------------------------------------------------------
    def _lognormal(self, median: float, sigma: float) -> float:
        return float(median * math.exp(self._rng.normal(0.0, sigma)))

    def _fixation_s(self) -> float:
        median, sigma = self.params.free_fixation if self._target[0] == "free" else self.params.behaviour[self._state].fixation
        return max(self.params.min_fixation_s, self._lognormal(median, sigma))

    def _vergence(self, distance_m: float) -> float:
        return vergence_deg(distance_m, self.params.ipd_m)

    def _next_point(self, current: np.ndarray) -> np.ndarray:
        """The next fixation point (yaw °, pitch °, vergence °) in the camera/head frame."""
        p, rng = self.params, self._rng
        kind, target = self._target
        if kind == "free" and not self._force_target:
            median, sigma = p.free_amplitude
            amplitude = 0.0
            while not 1.0 <= amplitude <= 40.0:  # the fit saw saccades of 1° and more only
                amplitude = self._lognormal(median, sigma)
            hw, hh = p.free_range_deg
            inside = lambda q: (q[0] / hw) ** 2 + (q[1] / hh) ** 2 <= 1.0
            for _ in range(20):  # a direction that stays in the region
                angle = rng.uniform(0.0, 2.0 * math.pi)
                nxt = current[:2] + amplitude * np.array([math.cos(angle), math.sin(angle)])
                if inside(nxt):
                    break
            else:  # far out (a target change, a long jump): head back towards the middle
                nxt = current[:2] * max(0.0, 1.0 - amplitude / max(float(np.hypot(*current[:2])), 1e-9))
            self._away = False
            return np.array([nxt[0], nxt[1], self._vergence(p.away_distance_m)])
        b = p.behaviour[self._state]
        away = not self._force_target and rng.random() < b.away_fraction
        self._force_target = False
        self._away = away
        if away:
            distance = min(self._lognormal(*b.aversion), 30.0)
            if rng.random() < b.aversion_up:
                angle = rng.uniform(math.radians(30), math.radians(150))  # up, up-left, up-right
            else:  # sideways or down
                angle = rng.choice([rng.uniform(math.radians(-30), math.radians(20)),
                                    rng.uniform(math.radians(160), math.radians(210)),
                                    rng.uniform(math.radians(220), math.radians(320))])
            yaw = target[0] + distance * math.cos(angle)
            pitch = target[1] + distance * math.sin(angle)
            return np.array([yaw, pitch, self._vergence(p.away_distance_m)])
        yaw, pitch = target[:2] + rng.normal(0.0, b.scatter_deg, 2)
        return np.array([yaw, pitch, self._vergence(target[2])])

    def _move_end(self) -> float:
        return self._move.t0 + self._move.duration if self._move is not None else -math.inf

    def _position(self, t: float) -> np.ndarray:
        assert self._center is not None
        return self._move.at(t) if self._move is not None else self._center

    def _draw_duration(self, amplitude: float) -> tuple[float, float]:
        """(duration s, peak velocity °/s) of a saccade of ``amplitude``: main sequence × spread."""
        p = self.params
        peak = float(main_sequence_peak_velocity_deg_s(amplitude, p.vmax_deg_s, p.c_deg))
        peak *= math.exp(self._rng.normal(0.0, p.peak_velocity_log_sigma)) if p.peak_velocity_log_sigma > 0 else 1.0
        if amplitude <= 0 or peak <= 0:
            return float(saccade_duration_s(0.0, None, p.vmax_deg_s, p.c_deg)), 0.0
        return math.pi / 2 * amplitude / peak, peak

    def _saccade(self, t: float, start: np.ndarray, end: np.ndarray, micro: bool,
                 drawn: tuple[float, float] | None = None) -> float:
        amplitude = float(math.hypot(*(end[:2] - start[:2])))
        duration, peak = drawn if drawn is not None else self._draw_duration(amplitude)
        self._move = _Move(t, duration, start, end)
        self.saccades.append(SaccadeEvent(t, amplitude, duration, peak, micro))
        if not micro and self.on_saccade is not None and self._t0_ns is not None:
            self.on_saccade(amplitude, self._t0_ns + round(t * 1e9))
        return duration

    def _draw_micro(self, after: float) -> float:
        rate = self.params.microsaccade_rate_hz
        return after + float(self._rng.exponential(1.0 / rate)) if rate > 0 else math.inf

    def _advance(self, now: float) -> None:
        p = self.params
        if self._center is None:  # first frame: already fixating a point of the plan
            self._center = self._next_point(np.array([0.0, 0.0, 0.0]))
            self._fix_end = now + self._fixation_s() * float(self._rng.uniform(0.0, 1.0))
            self._next_micro = self._draw_micro(now)
        assert self._fix_end is not None
        while True:
            if self._fix_end <= now and self._fix_end <= self._next_micro:
                t = self._fix_end
                here = self._position(t).copy()
                self._center = self._next_point(here)
                duration = self._saccade(t, here, self._center, micro=False)
                self._fix_end = t + duration + self._fixation_s()
                self._next_micro = self._draw_micro(t + duration)
            elif self._next_micro <= now:
                t = self._next_micro
                median, sigma, limit = p.microsaccade_amplitude
                amplitude = min(self._lognormal(median, sigma), limit)
                drawn = self._draw_duration(amplitude)
                duration = drawn[0]
                if t >= self._move_end() and t + duration < self._fix_end:
                    here = self._position(t).copy()
                    back = self._center[:2] - here[:2]  # microsaccades keep the eye near its fixation point
                    heading = math.atan2(back[1], back[0]) if np.hypot(*back) > 0.05 else self._rng.uniform(0, 2 * math.pi)
                    heading += self._rng.normal(0.0, math.radians(60))
                    end = here.copy()
                    end[:2] += amplitude * np.array([math.cos(heading), math.sin(heading)])
                    self._saccade(t, here, end, micro=True, drawn=drawn)
                self._next_micro = self._draw_micro(t + duration)
            else:
                break

    # -- the stage -------------------------------------------------------------------------------
    def _tick(self, t_ns: int) -> float:
        """Move the clock to ``t_ns`` (a new take if time went backwards) and the plan with it."""
        if self._t0_ns is not None and self._now is not None and t_ns < self._t0_ns + round(self._now * 1e9):
            self._restart_clock()  # time went backwards: a new take
        if self._t0_ns is None:
            self._t0_ns = t_ns
        now = (t_ns - self._t0_ns) / 1e9
        self._now = now
        self._advance(now)
        return now

    def process(self, frame: FaceFrame) -> FaceFrame:
        now = self._tick(frame.t_ns)
        if self.mode == "auto" and frame.tracked:
            return frame
        eyes = self._position(now)[None, :]
        head = np.array([[frame.head.yaw_deg, frame.head.pitch_deg]])
        w, g = self._apply(frame.weights.astype(np.float64)[None, :], eyes, head)
        return frame.replace(gaze=Gaze(*(float(v) for v in g[0])), weights=w[0])

    def _apply(self, w: np.ndarray, eyes: np.ndarray, head: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """N×52 weights (float64, changed in place) and N×3 planned (yaw, pitch, vergence) → weights
        (float32) and per-eye gaze N×4 (`Gaze` order)."""
        p = self.params
        yaw, pitch, vergence = eyes[:, 0].copy(), eyes[:, 1].copy(), eyes[:, 2]
        if self.compensate_head and head is not None:
            yaw -= head[:, 0]
            pitch -= head[:, 1]
        low, high = p.pitch_limits_deg
        yaw = np.clip(yaw, -p.yaw_limit_deg, p.yaw_limit_deg)
        pitch = np.clip(pitch, low, high)
        half = vergence / 2.0  # each eye turns in: the left one to the subject's right (yaw < 0)
        gaze = np.stack([yaw - half, pitch, yaw + half, pitch], axis=1)
        out, inward, up, down = (p.look_full_deg[k] for k in ("out", "in", "up", "down"))
        ly, lp, ry, rp = gaze.T
        looks = {
            "eyeLookOutLeft": ly / out, "eyeLookInLeft": -ly / inward,
            "eyeLookUpLeft": lp / up, "eyeLookDownLeft": -lp / down,
            "eyeLookOutRight": -ry / out, "eyeLookInRight": ry / inward,
            "eyeLookUpRight": rp / up, "eyeLookDownRight": -rp / down,
        }
        for name, value in looks.items():
            w[:, _I[name]] = np.clip(value, 0.0, 1.0)
        lid_down = np.minimum(1.0, p.lid_follow_down_per_deg * np.maximum(0.0, -pitch))
        lid_up = np.minimum(1.0, p.lid_raise_up_per_deg * np.maximum(0.0, pitch))
        for side in ("Left", "Right"):
            i_blink, i_wide = _I["eyeBlink" + side], _I["eyeWide" + side]
            w[:, i_blink] += (1.0 - w[:, i_blink]) * lid_down
            w[:, i_wide] += (1.0 - w[:, i_wide]) * lid_up
        return np.clip(w, 0.0, 1.0).astype(np.float32), gaze

    def render(self, t_ns: np.ndarray, weights: np.ndarray | None = None,
               blink: BlinkStage | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`process` (then ``blink.process``) for a whole synthetic take at once.

        Returns N×52 weights (float32) and N×4 per-eye gaze (`Gaze` order) at the times ``t_ns``: the
        same numbers as processing untracked frames with these times and weights one by one through
        this stage and then ``blink`` (same seeds, same saccades and blinks, the ``on_saccade`` hook
        called as it would be), without building frames. The head is taken as still.
        """
        from .blink import _check_render

        t_ns, w = _check_render(t_ns, weights)
        if blink is not None and blink.watch_gaze:
            raise InputError("gaze render: the blink stage's watch_gaze reads frames' gaze; process frames instead")
        eyes = np.empty((len(t_ns), 3))
        lids = np.zeros((len(t_ns), 2))
        for i, t in enumerate(t_ns):  # the event clocks step frame by frame, as process would
            eyes[i] = self._position(self._tick(int(t)))
            if blink is not None:
                lids[i] = blink._lids(blink._tick(int(t)))
        weights_out, gaze = self._apply(w, eyes, None)
        if blink is not None:
            weights_out = blink._apply(weights_out.astype(np.float64), lids)
        return weights_out, gaze

    @property
    def looking_away(self) -> bool:
        """True while the current fixation is an aversion from the target."""
        return self._away
