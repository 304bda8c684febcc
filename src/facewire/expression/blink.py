"""Procedural blinks: a `BlinkStage` that blinks like the people in the real takes.

What a blink looks like and how often it comes were measured on the real Live Link Face takes in
``../shared/data/takes`` by ``tools/fit_blink_gaze.py`` (detectors in `facewire.expression.stats`)
and checked against published human ranges. Each constant below says where it comes from:
**data** (measured on the takes), **literature** (the cited study), or **design** (a choice where
neither pins the number; the reason is given).

Published ranges used as the yardstick:

* Spontaneous blink rate 17/min at rest, 26/min in conversation, 4.5/min while reading: means of
  150 healthy people, log-normally spread between them (Bentivoglio et al. 1997, *Mov Disord*
  12:1028). Normal adults' ranges (95 % CI over studies): 8.0-21.0/min in primary gaze,
  10.5-32.5/min in conversation, 1.4-14.4/min reading (Doughty 2001, *Optom Vis Sci* 78:712). Speakers blink more than listeners (Cummins 2012), and
  listeners' blinks gather at the speaker's pauses (Nakano & Kitazawa 2010, *Exp Brain Res* 205:577).
* Inter-blink intervals are broad and right-skewed (coefficient of variation ≈ 0.5-1), commonly
  described by log-normal or gamma laws (Ponder & Kennedy 1927; Doughty 2001).
* A blink lasts ≈ 100-400 ms (Harvard BioNumbers, after Schiffman 2001); the lid closes faster than it reopens (down-phase ≈ 70-100 ms,
  up-phase 1.5-3× longer; Evinger, Manning & Sibony 1991, *IOVS* 32:387; VanderWerf et al. 2003,
  *J Neurophysiol* 89:2784). The eye itself dips a few degrees down and in during a blink
  (Collewijn, van der Steen & Steinman 1985, *J Neurophysiol* 54:11).
* Large gaze shifts are often accompanied by a blink, the more often the larger the shift
  (Evinger et al. 1994, *Exp Brain Res* 100:337). The two lids move together within a few ms, with
  a small amplitude asymmetry (Kassem & Evinger 2006, *IOVS* 47:195).

Measured on the real takes (spontaneous-blink takes: idle, silent emotion holds, word-like mouth
bursts, expression performances; 160 blinks in 8.1 min; see the tool's output):

======================================  ============  =======================================
quantity                                measured      published
======================================  ============  =======================================
rate, idle + silent holds               22.4/min      17/min at rest; 8-21 (primary gaze)
rate, word-like speech take             20.9/min      26/min talking; 10.5-32.5 (conversation)
interval median / CV                    1.9 s / 0.93  broad, right-skewed
log-interval σ (within takes)           0.65          (log-normal)
double blinks (< 0.5 s apart)           6.2 %         occasional
closing (10 % → peak)                   76 ms         ≈ 70-100 ms
opening (peak → 10 %)                   127 ms        1.5-3× closing
onset → offset                          194 ms        100-400 ms
lid more than half closed (FWHM)        103 ms
left-right lag sd / amplitude sd        10 ms/0.068   a few ms
======================================  ============  =======================================

The blink shape is the median normalised blink of the 60 fps takes (88 blinks): the lid closes
along a half cosine of `CLOSING_S` and reopens along a stretched exponential
``exp(−(t/τ)^k)`` (`OPENING_TAU_S`, `OPENING_SHAPE`), which has the slow tail the data show.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame

__all__ = [
    "CLOSING_S",
    "DOUBLE_BLINK_FRACTION",
    "INTERVAL_LOG_SIGMA",
    "INTERVAL_LOG_SIGMA_BY_STATE",
    "OPENING_SHAPE",
    "OPENING_TAU_S",
    "RATES_PER_MIN",
    "STATES",
    "BlinkParams",
    "BlinkStage",
    "blink_curve",
]

STATES = ("rest", "listening", "speaking", "thinking")
"""Conversational states shared with `GazeStage`."""

# -- fitted and cited constants -------------------------------------------------------------------
RATES_PER_MIN: Mapping[str, float] = MappingProxyType({
    "rest": 17.0,
    "listening": 16.0,
    "speaking": 26.0,
    "thinking": 17.0,
})
"""Spontaneous blinks per minute (both blinks of a double counted) in each state.

* rest — **literature**: 17/min, the mean of 150 healthy people resting quietly (Bentivoglio et al.
  1997), inside the 8.0-21.0/min that Doughty 2001 (*Optom Vis Sci* 78:712) derives for primary-gaze
  blinking in normal adults. The real takes' one performer blinks 22.4/min at rest (the idle take and
  the silent emotion holds pooled, 88 blinks in 3.9 min), above that range: one person in a widely
  spread (log-normal) population, so the population mean is the avatar's default. ``bench alive``
  judges this rate against the published range and the intervals' rate-free shape against the takes.
* speaking — **literature**: 26/min while talking (Bentivoglio 1997), inside Doughty 2001's
  conversational 10.5-32.5/min. The one speech-like take (word-like mouth bursts, not a
  conversation) measures 20.9/min.
* listening — **data**: the expression-performance takes, a face attending to the camera, measure
  16.1/min (50 blinks in 3.1 min), inside the conversational range; listeners' extra blinks come from
  `BlinkStage.phrase_end` at the speaker's pauses (Nakano & Kitazawa 2010).
* thinking — **design**: as at rest (gaze aversion, not blinking, marks thinking in `GazeStage`).
"""

INTERVAL_LOG_SIGMA = 0.65
"""σ of log(inter-blink interval): **data**, pooled deviations from each take's own mean log interval
(double blinks left out), so that rate differences between takes do not widen it. Log-normal CV
sqrt(e^σ² − 1) ≈ 0.73. The fallback of `INTERVAL_LOG_SIGMA_BY_STATE` for a state it lacks."""

INTERVAL_LOG_SIGMA_BY_STATE: Mapping[str, float] = MappingProxyType({
    "rest": 0.71,
    "listening": 0.56,
    "speaking": 0.63,
    "thinking": 0.71,
})
"""σ of log(inter-blink interval) per state: **data**, `stats.blink_stats`' ``ibi_log_sigma`` (as for
`INTERVAL_LOG_SIGMA`) on the takes ``bench alive`` compares each state with: rest ← the idle take and
the silent emotion holds (0.71), listening ← the expression performances (0.56: their blinks come
regularly, CV 0.53), speaking ← the word-like speech take (0.63, 16 intervals only); thinking as at
rest (**design**). With the one pooled σ the generated listening intervals were more irregular than
the performances' and their median too short (2.7 s against the performances' 2.8-4.5 s
interquartile range)."""

DOUBLE_BLINK_FRACTION = 0.062
"""Fraction of blinks followed by another within 0.5 s: **data** (pooled spontaneous takes, 160 blinks;
5 % idle, 12 % in the emotion holds, 2 % in performances)."""

DOUBLE_BLINK_GAP_S = (0.17, 0.40)
"""Peak-to-peak gap of a double blink, uniform: **data** (the short intervals measure 0.15-0.47 s,
most near 0.2 s)."""

CLOSING_S = 0.089
"""Duration of the half-cosine closing phase, lid open → closed: **data** (``stats.fit_blink_shape``:
least squares to the median normalised blink of the 60 fps takes, 88 blinks; its 10 %→peak time is
0.795 × this ≈ 71 ms)."""

OPENING_TAU_S = 0.075
"""Time constant τ of the reopening ``exp(−(t/τ)^k)``: **data** (same fit)."""

OPENING_SHAPE = 1.4
"""Exponent k of the reopening: **data** (same fit); with τ the lid is 90 % open after
τ·ln(10)^(1/k) ≈ 136 ms, closing (10 % → peak) being about 1.9× faster than opening."""

DURATION_LOG_SIGMA = 0.2
"""Blink-to-blink spread of the phase durations, σ of a log-normal factor: **data** (the closing
phase's interquartile range, 62-92 ms at 60 fps, is ≈ ±0.2 in log)."""

LAG_SD_S = 0.0046
"""Left/right onset lag per blink, normal sd: **data**, the expression-performance takes (4.6 ms; the
idle take reads 0.8 ms, the emotion holds 13.5 ms with their flutter and winks); lids move together
within a few ms (Kassem & Evinger 2006)."""

AMPLITUDE_ASYMMETRY_SD = 0.068
"""(left − right)/mean amplitude per blink, normal sd: **data** (pooled spontaneous takes; 0.012 idle)."""

AMPLITUDE_RANGE = (0.9, 1.0)
"""Peak closure, uniform: **design**. The takes peak at 0.3-1.0 because the tracker rarely reports a
fully closed lid; an avatar's lid should close."""

BLINK_LOOK_DOWN = 0.1
"""eyeLookDown added per unit of blink: **literature**, the eye dips a few degrees during a blink
(Collewijn et al. 1985); 0.1 ≈ 3.5° with `gaze.LOOK_FULL_DEG`. The takes read 0.4-0.85 per unit, but
there the tracker loses the iris behind the lid and reports a large roll down."""

BLINK_SQUINT = 0.05
"""eyeSquint added per unit of blink: **design** (the lower lid rises slightly as orbicularis oculi
closes the eye). The takes do not show it: their eyeSquint changes by −0.16…+0.09 per unit blink."""

# eyeLookUp and eyeWide are scaled by (1 − blink): a closing lid cannot stay raised. **data**: the
# takes' eyeWide falls by 0.3-1.0 and eyeLookUp by 0.2-0.9 per unit blink.

GAZE_SHIFT_BLINK = (15.0, 45.0, 0.7)
"""(start °, full °, probability): a gaze shift of A degrees triggers a blink with probability rising
linearly from 0 at the first to the last value at the second: **design** after Evinger et al. 1994
(most large gaze shifts carry a blink, small ones rarely)."""

PHRASE_END_BLINK: Mapping[str, float] = MappingProxyType({
    "rest": 0.3, "listening": 0.45, "speaking": 0.5, "thinking": 0.3,
})
"""Probability that `BlinkStage.phrase_end` triggers a blink, per state: **design** (speakers blink
at phrase boundaries, listeners entrain to the speaker's pauses: Nakano & Kitazawa 2010)."""

PHRASE_END_DELAY_S = (0.05, 0.25)
"""Delay from a phrase end to its blink, uniform: **design**."""

REFRACTORY_S = 0.5
"""No triggered blink starts within this long of another blink's onset: **design** (keeps triggers
from stacking into flutter; the double blinks are drawn on purpose)."""


DOUBLE_GAP_MIN_S = 0.5
"""Shortest spontaneous interval between blink events; anything closer is a drawn double blink
(this is `stats.DOUBLE_BLINK_GAP_S`, the detectors' definition of a double)."""


def blink_curve(t_s: np.ndarray | float, closing_s: float = CLOSING_S, opening_tau_s: float = OPENING_TAU_S,
                opening_shape: float = OPENING_SHAPE, end: float = 0.01) -> np.ndarray:
    """Lid closure (0 open … 1 closed) at ``t_s`` seconds after the blink's onset.

    Half-cosine closing over ``closing_s``, then ``exp(−(t/τ)^k)`` reopening, rescaled so that it
    reaches 0 exactly where the exponential falls to ``end`` (a blink has a finite end).
    """
    t = np.asarray(t_s, dtype=np.float64)
    y = np.zeros_like(t)
    closing = (t > 0) & (t < closing_s)
    y[closing] = 0.5 * (1.0 - np.cos(np.pi * t[closing] / closing_s))
    s = t - closing_s
    s_end = opening_tau_s * (-math.log(end)) ** (1.0 / opening_shape)
    opening = (s >= 0) & (s < s_end)
    y[opening] = (np.exp(-(s[opening] / opening_tau_s) ** opening_shape) - end) / (1.0 - end)
    return y


def blink_length_s(closing_s: float, opening_tau_s: float, opening_shape: float, end: float = 0.01) -> float:
    """Onset-to-end length of `blink_curve`."""
    return closing_s + opening_tau_s * (-math.log(end)) ** (1.0 / opening_shape)


@dataclass(frozen=True)
class BlinkParams:
    """Every number `BlinkStage` uses; the defaults are the module constants (see each one's source)."""

    rates_per_min: Mapping[str, float] = field(default_factory=lambda: RATES_PER_MIN)
    interval_log_sigma: float = INTERVAL_LOG_SIGMA
    interval_log_sigmas: Mapping[str, float] = field(default_factory=lambda: INTERVAL_LOG_SIGMA_BY_STATE)
    double_fraction: float = DOUBLE_BLINK_FRACTION
    double_gap_s: tuple[float, float] = DOUBLE_BLINK_GAP_S
    closing_s: float = CLOSING_S
    opening_tau_s: float = OPENING_TAU_S
    opening_shape: float = OPENING_SHAPE
    duration_log_sigma: float = DURATION_LOG_SIGMA
    lag_sd_s: float = LAG_SD_S
    amplitude_asymmetry_sd: float = AMPLITUDE_ASYMMETRY_SD
    amplitude_range: tuple[float, float] = AMPLITUDE_RANGE
    look_down: float = BLINK_LOOK_DOWN
    squint: float = BLINK_SQUINT
    gaze_shift: tuple[float, float, float] = GAZE_SHIFT_BLINK
    phrase_end: Mapping[str, float] = field(default_factory=lambda: PHRASE_END_BLINK)
    phrase_end_delay_s: tuple[float, float] = PHRASE_END_DELAY_S
    refractory_s: float = REFRACTORY_S

    def __post_init__(self) -> None:
        rates = dict(self.rates_per_min)
        for state in STATES:
            rate = rates.get(state)
            if rate is None or not (math.isfinite(rate) and 0 < rate <= 120):
                raise InputError(f"rates_per_min[{state!r}]: expected a rate in (0, 120] blinks per minute, got {rate!r}")
        object.__setattr__(self, "rates_per_min", MappingProxyType(rates))
        phrase = dict(self.phrase_end)
        for state in STATES:
            p = phrase.get(state)
            if p is None or not 0 <= p <= 1:
                raise InputError(f"phrase_end[{state!r}]: expected a probability in [0, 1], got {p!r}")
        object.__setattr__(self, "phrase_end", MappingProxyType(phrase))
        sigmas = dict(self.interval_log_sigmas)
        for state, sigma in sigmas.items():
            if state not in STATES or not (math.isfinite(sigma) and 0 < sigma <= 3):
                raise InputError(f"interval_log_sigmas[{state!r}]: expected a state of {', '.join(STATES)} "
                                 f"with σ in (0, 3], got {sigma!r}")
        object.__setattr__(self, "interval_log_sigmas", MappingProxyType(sigmas))
        positive = ("interval_log_sigma", "closing_s", "opening_tau_s", "opening_shape", "refractory_s")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name}: expected a positive number, got {value!r}")
        for name in ("duration_log_sigma", "lag_sd_s", "amplitude_asymmetry_sd", "look_down", "squint"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{name}: expected a number ≥ 0, got {value!r}")
        if not 0 <= self.double_fraction < 0.5:
            raise InputError(f"double_fraction: expected a fraction in [0, 0.5), got {self.double_fraction!r}")
        for name, lo_min, hi_max in (("double_gap_s", 0.05, 1.0), ("amplitude_range", 0.0, 1.0),
                                     ("phrase_end_delay_s", 0.0, 5.0)):
            lo, hi = getattr(self, name)
            if not lo_min <= lo <= hi <= hi_max:
                raise InputError(f"{name}: expected {lo_min} ≤ low ≤ high ≤ {hi_max}, got {(lo, hi)!r}")
        start, full, p = self.gaze_shift
        if not (0 <= start < full and 0 <= p <= 1):
            raise InputError(f"gaze_shift: expected (start°, full°, probability) with start < full, got {self.gaze_shift!r}")


@dataclass
class _Blink:
    onset_s: tuple[float, float]  # left, right
    amplitude: tuple[float, float]
    closing_s: float
    opening_tau_s: float
    end_s: float = field(init=False)
    opening_shape: float = OPENING_SHAPE

    def __post_init__(self) -> None:
        self.end_s = max(self.onset_s) + blink_length_s(self.closing_s, self.opening_tau_s, self.opening_shape)

    def lids(self, t_s: float) -> tuple[float, float]:
        return tuple(float(a * blink_curve(t_s - o, self.closing_s, self.opening_tau_s, self.opening_shape))
                     for o, a in zip(self.onset_s, self.amplitude))  # type: ignore[return-value]


_I = arkit.INDEX
_EYES = (
    (_I["eyeBlinkLeft"], _I["eyeLookUpLeft"], _I["eyeLookDownLeft"], _I["eyeSquintLeft"], _I["eyeWideLeft"]),
    (_I["eyeBlinkRight"], _I["eyeLookUpRight"], _I["eyeLookDownRight"], _I["eyeSquintRight"], _I["eyeWideRight"]),
)

Mode = Literal["auto", "synthetic", "augment"]
MODES = ("auto", "synthetic", "augment")


class ConversationalState:
    """Mixin for stages whose behaviour depends on the conversational state (one of `STATES`).

    ``state`` reads it; assigning it calls the stage's own ``set_state``, which reacts to the change.
    """

    _state: str
    _state_label = "state"

    @classmethod
    def _check_state(cls, state: str) -> None:
        if state not in STATES:
            raise InputError(f"{cls._state_label}: expected one of {', '.join(STATES)}, got {state!r}")

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        self.set_state(value)

    def set_state(self, state: str) -> None:  # pragma: no cover - each stage defines its own
        raise NotImplementedError


class BlinkStage(ConversationalState):
    """Adds spontaneous and triggered blinks to a frame stream.

    ``mode`` says which frames get blinks and how they combine with the frame's own lids:

    * ``"auto"`` (default): a tracked face blinks by itself, so tracked frames pass through unchanged
      (the clock still runs); untracked frames get synthetic blinks.
    * ``"synthetic"``: every frame, for avatars driven by speech or text. The blink closes what the
      incoming lid leaves open, ``lid + (1 − lid)·blink``, so a squint or a lid following the gaze down
      stays and the eye still shuts fully.
    * ``"augment"``: every frame, never overriding a real blink: ``max(lid, blink)`` (for a tracker
      that misses blinks).

    With a blink the eye dips (eyeLookDown + `BLINK_LOOK_DOWN`·b, eyeLookUp and eyeWide × (1 − b)) and
    the lower lid rises a little (eyeSquint + `BLINK_SQUINT`·b), where b is the part of the opening
    the blink closed. ``frame.gaze`` is left as it is.

    Timing is continuous: blinks start at their drawn times, between frames if need be, so the result
    does not depend on the frame rate, and a ``seed`` makes it repeatable for the same frame times.
    Spontaneous blinks come at the current state's rate (`set_state`) with log-normal intervals of at
    least 0.5 s; with probability ``double_fraction/(1 − double_fraction)`` a blink is followed by a
    second one (a double blink). Triggers: `phrase_end` (call it at the end of a phrase, the
    speaker's or the one being listened to), `gaze_shift` (give it to ``GazeStage(on_saccade=…)``),
    and with ``watch_gaze=True`` gaze shifts read from the frames' own ``gaze`` (frame-to-frame speed
    above ``watch_gaze_velocity_deg_s``; the blink can start only once the shift has ended). A
    triggered blink restarts the spontaneous interval. ``reset()`` forgets everything and reseeds.

    Frames must arrive in time order; a frame earlier than the previous one restarts the clock.
    """

    _state_label = "blink state"

    def __init__(self, mode: Mode = "auto", *, state: str = "rest", seed: int | None = None,
                 params: BlinkParams | None = None, watch_gaze: bool = False,
                 watch_gaze_velocity_deg_s: float = 100.0) -> None:
        if mode not in MODES:
            raise InputError(f"blink mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.params = params if params is not None else BlinkParams()
        self.seed = seed
        self.watch_gaze = bool(watch_gaze)
        self.watch_gaze_velocity_deg_s = float(watch_gaze_velocity_deg_s)
        self._check_state(state)
        self._initial_state = state
        self.reset()

    # -- control -------------------------------------------------------------------------------
    def set_state(self, state: str) -> None:
        """Switch state; the time left to the next spontaneous blink scales with the rate change."""
        self._check_state(state)
        if self._now is not None and self._next_s is not None and state != self._state:
            ratio = self.params.rates_per_min[self._state] / self.params.rates_per_min[state]
            self._next_s = self._now + max(0.0, self._next_s - self._now) * ratio
        self._state = state

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._state = self._initial_state
        self.onsets_s: list[float] = []
        """Onset times (s since the first frame) of every blink started, spontaneous or triggered."""
        self._restart_clock()

    def _restart_clock(self) -> None:
        self._now: float | None = None  # seconds of the last frame since the first
        self._t0_ns: int | None = None
        self._next_s: float | None = None  # next spontaneous blink onset
        self._pending: list[tuple[float, bool]] = []  # (onset, second of a double) not yet started
        self._blinks: list[_Blink] = []
        self._last_onset = -math.inf
        self._gaze_prev: tuple[float, float, float] | None = None  # t, yaw, pitch
        self._gaze_start: tuple[float, float] | None = None

    def blink(self, delay_s: float = 0.0) -> None:
        """Blink now (at the last frame's time) or ``delay_s`` later, whatever the timers say."""
        self._pending.append(((self._now or 0.0) + max(0.0, float(delay_s)), False))

    def phrase_end(self) -> bool:
        """A phrase ended: blink shortly after with the state's probability; True when one is coming."""
        p = self.params.phrase_end[self._state]
        if self._rng.random() >= p:
            return False
        lo, hi = self.params.phrase_end_delay_s
        return self._trigger((self._now or 0.0) + self._rng.uniform(lo, hi))

    def gaze_shift(self, amplitude_deg: float, t_ns: int | None = None) -> bool:
        """A gaze shift of ``amplitude_deg`` started (at ``t_ns``, else now): maybe blink with it."""
        start, full, p_max = self.params.gaze_shift
        p = p_max * min(1.0, max(0.0, (abs(float(amplitude_deg)) - start) / (full - start)))
        if p <= 0 or self._rng.random() >= p:
            return False
        at = (self._now or 0.0) if t_ns is None or self._t0_ns is None else (int(t_ns) - self._t0_ns) / 1e9
        return self._trigger(at)

    def _trigger(self, at_s: float) -> bool:
        gap = self.params.refractory_s
        if at_s - self._last_onset < gap or any(abs(at_s - t) < gap for t, _ in self._pending):
            return False
        self._pending.append((at_s, False))
        return True

    # -- timing --------------------------------------------------------------------------------
    def _interval_s(self) -> float:
        """A spontaneous interval (s) between blink events (a double blink is one event)."""
        p = self.params
        rate = p.rates_per_min[self._state] / 60.0  # blinks per second
        p_double = p.double_fraction / (1.0 - p.double_fraction)
        mean = (1.0 + p_double) / rate  # seconds between events
        sigma = p.interval_log_sigmas.get(self._state, p.interval_log_sigma)
        mu = _lognormal_mu_for_mean(mean, sigma, DOUBLE_GAP_MIN_S)
        while True:
            x = float(np.exp(self._rng.normal(mu, sigma)))
            if x >= DOUBLE_GAP_MIN_S:
                return x

    def _start(self, at_s: float, allow_double: bool) -> None:
        p, rng = self.params, self._rng
        lag = rng.normal(0.0, p.lag_sd_s)
        amp = rng.uniform(*p.amplitude_range)
        asym = float(np.clip(rng.normal(0.0, p.amplitude_asymmetry_sd), -0.5, 0.5))
        scale = float(np.exp(rng.normal(0.0, p.duration_log_sigma)))
        opening_scale = float(np.exp(rng.normal(0.0, p.duration_log_sigma)))
        amps = (min(1.0, amp * (1 + asym / 2)), min(1.0, amp * (1 - asym / 2)))
        self._blinks.append(_Blink(onset_s=(at_s + max(lag, 0.0), at_s + max(-lag, 0.0)), amplitude=amps,
                                   closing_s=p.closing_s * scale, opening_tau_s=p.opening_tau_s * scale * opening_scale,
                                   opening_shape=p.opening_shape))
        self._last_onset = at_s
        self.onsets_s.append(at_s)
        if allow_double and rng.random() < p.double_fraction / (1.0 - p.double_fraction):
            self._pending.append((at_s + rng.uniform(*p.double_gap_s), True))

    def _advance(self, now: float) -> None:
        if self._next_s is None:  # first frame: start part-way through an interval
            self._next_s = now + self._interval_s() * float(self._rng.uniform(0.0, 1.0))
        while True:
            first = min(self._pending) if self._pending else (math.inf, False)
            if min(self._next_s, first[0]) > now:
                break
            if first[0] <= self._next_s:
                self._pending.remove(first)
                self._start(first[0], allow_double=not first[1])
            else:
                self._start(self._next_s, allow_double=True)
            self._next_s = self._last_onset + self._interval_s()
        self._blinks = [b for b in self._blinks if b.end_s > now]

    def _watch(self, frame: FaceFrame, now: float) -> None:
        g = frame.gaze
        yaw, pitch = (g.left_yaw_deg + g.right_yaw_deg) / 2, (g.left_pitch_deg + g.right_pitch_deg) / 2
        prev, self._gaze_prev = self._gaze_prev, (now, yaw, pitch)
        if prev is None or now <= prev[0]:
            return
        speed = math.hypot(yaw - prev[1], pitch - prev[2]) / (now - prev[0])
        if speed > self.watch_gaze_velocity_deg_s:
            if self._gaze_start is None:
                self._gaze_start = (prev[1], prev[2])
        elif self._gaze_start is not None:
            amplitude = math.hypot(yaw - self._gaze_start[0], pitch - self._gaze_start[1])
            self._gaze_start = None
            self.gaze_shift(amplitude)

    # -- the stage -------------------------------------------------------------------------------
    def _tick(self, t_ns: int) -> float:
        """Move the clock to ``t_ns`` (a new take if time went backwards); seconds since the first frame."""
        if self._t0_ns is not None and self._now is not None and t_ns < self._t0_ns + round(self._now * 1e9):
            self._restart_clock()  # time went backwards: a new take
        if self._t0_ns is None:
            self._t0_ns = t_ns
        self._now = (t_ns - self._t0_ns) / 1e9
        return self._now

    def _lids(self, now: float) -> tuple[float, float]:
        """Closure (left, right) of the blinks under way at ``now``."""
        self._advance(now)
        left = right = 0.0
        for b in self._blinks:
            bl, br = b.lids(now)
            left, right = max(left, bl), max(right, br)
        return left, right

    def process(self, frame: FaceFrame) -> FaceFrame:
        now = self._tick(frame.t_ns)
        if self.watch_gaze:
            self._watch(frame, now)
        left, right = self._lids(now)
        if (self.mode == "auto" and frame.tracked) or (left <= 0.0 and right <= 0.0):
            return frame
        w = self._apply(frame.weights.astype(np.float64)[None, :], np.array([[left, right]]))[0]
        return frame.replace(weights=w)

    def _apply(self, w: np.ndarray, lids: np.ndarray) -> np.ndarray:
        """N×52 weights (float64, changed in place) with N×2 blink closures applied, as float32."""
        p = self.params
        for (i_blink, i_up, i_down, i_squint, i_wide), b in zip(_EYES, lids.T):
            lid = w[:, i_blink].copy()
            out = np.maximum(lid, b) if self.mode == "augment" else lid + (1.0 - lid) * b
            open_part = 1.0 - lid
            # part of the opening this blink shut
            closed = np.divide(out - lid, open_part, out=np.zeros_like(lid), where=open_part > 0.0)
            w[:, i_blink] = out
            w[:, i_up] *= 1.0 - closed
            w[:, i_wide] *= 1.0 - closed
            w[:, i_down] += (1.0 - w[:, i_down]) * p.look_down * closed
            w[:, i_squint] += (1.0 - w[:, i_squint]) * p.squint * closed
        return np.clip(w, 0.0, 1.0).astype(np.float32)

    def render(self, t_ns: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """`process` for a whole synthetic take at once: N×52 weights (float32) at the times ``t_ns``.

        The same as processing untracked frames with these times and weights one by one (same seed,
        same blinks, same numbers), without building frames; the stage's clock and state move on.
        """
        t_ns, w = _check_render(t_ns, weights)
        if self.watch_gaze:
            raise InputError("blink render: watch_gaze reads frames' gaze; process frames instead")
        lids = np.array([self._lids(self._tick(int(t))) for t in t_ns]).reshape(-1, 2)
        return self._apply(w, lids)


def _check_render(t_ns: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Validated (times int64, weights N×52 float64 copy) for the stages' ``render``."""
    t = np.asarray(t_ns)
    if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer):
        raise InputError(f"render t_ns: expected a 1-D array of integer nanoseconds, got {t.dtype} of shape {t.shape}")
    if weights is None:
        return t.astype(np.int64), np.zeros((len(t), arkit.COUNT))
    w = np.asarray(weights, dtype=np.float32)
    if w.shape != (len(t), arkit.COUNT) or not np.isfinite(w).all():
        raise InputError(f"render weights: expected finite {len(t)}×{arkit.COUNT} values, got shape {w.shape}")
    return t.astype(np.int64), w.astype(np.float64)


def _lognormal_mu_for_mean(mean: float, sigma: float, floor: float) -> float:
    """μ of a log-normal whose part above ``floor`` (what `_interval_s` keeps) has the given mean."""
    phi = lambda z: 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    mu = math.log(mean) - sigma ** 2 / 2
    for _ in range(50):  # fixed point: E[X | X > floor] = e^(μ+σ²/2)·Φ((μ+σ²−ln f)/σ)/Φ((μ−ln f)/σ)
        lf = math.log(floor)
        m = math.exp(mu + sigma ** 2 / 2) * phi((mu + sigma ** 2 - lf) / sigma) / max(phi((mu - lf) / sigma), 1e-12)
        mu += math.log(mean / m)
        if abs(math.log(mean / m)) < 1e-9:
            break
    return mu


