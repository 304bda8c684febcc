"""Layer mixing: one frame from several sources of expression, each owning part of the face.

A `LayerMixer` starts from the incoming frame and blends its layers on top, in order. A layer is a
source of weights (a stage, or a function of the frame) plus a blend specification: for each part of
the face it touches, a blend mode and an opacity. Parts are named by `arkit.GROUPS` (``"eyes"``,
``"brows"``, ``"jaw"``, ``"mouth"``, ``"cheeks"``, ``"nose"``, ``"tongue"``), by an ARKit name
(``"jawOpen"``), or by a prefix of ARKit names (``"eyeBlink"``, ``"eyeLook"``, ``"mouthSmile"``);
``"gaze"`` and ``"head"`` name the frame's gaze and head pose. Parts a layer does not name are left
as the layers below made them. Within one layer the keys apply in order, so a later, narrower key
re-assigns its channels (``{"eyes": "override", "eyeBlink": "max"}``).

For each channel, with ``x`` the value so far, ``y`` the layer's value and ``α`` the opacity (default 1):

============  =========================  =========================================================
mode          result                     typical use
============  =========================  =========================================================
override      x + α·(y − x)              speech owns the mouth and jaw; emotion owns the brows
add           x + α·y                    a procedural layer adds a little on top
max           x + α·(max(x, y) − x)      blinks over the tracked or emoted lids; never hides a blink
multiply      x + α·(x·y − x)            a layer that damps (``y`` < 1) what is below
============  =========================  =========================================================

Results are clipped to [0, 1] after every layer. ``"gaze"`` and ``"head"`` take ``override`` only
(angles and translation interpolated linearly by α). A layer's source always sees the mixer's input
frame, not the mix so far, so layers are independent of their order; only the blending is ordered.

Priorities and hand-over. Layers blend in order of ``priority`` (low first, so a higher priority
wins the parts it overrides; equal priorities keep the order they were added in): `PRIORITY` gives
the usual stack, procedural idle (gaze, blinks) < emotion < speech (on the mouth) < live tracking.
A layer is *present* while its source returns something (a source may return ``None``: "nothing
now", e.g. speech between utterances) and its ``active`` test, if any, accepts the frame (the
tracking layer: ``frame.tracked``). When a layer appears or disappears it does not switch: its level
moves between 0 and 1 over ``fade_s`` seconds of media time along a raised cosine (zero slope at
both ends), and while it fades out it holds its last present output. So when the face is lost the
tracked weights melt into the procedural eyes and blinks underneath within `FADE_S` (150 ms, inside
the 200 ms the issue asks for), and when it is found again tracking takes back over the same way;
the largest frame-to-frame step a hand-over adds is about ``(π/2)·(Δt/fade_s)`` times the difference
between the two sources (0.17 of it at 60 fps). The first frame, and a frame earlier than the last
(a new take), start every layer at its target level without a fade.

A typical avatar (speech and emotion as layers over a neutral or tracked frame)::

    LayerMixer([
        Layer("speech", lipsync_weights, {"jaw": "override", "mouth": "override", "tongue": "override"}),
        Layer("emotion", emotion_stage, {"brows": "override", "cheeks": "override", "nose": "override",
                                         "eyeSquint": "max", "eyeWide": "max", "mouth": ("add", 0.3)}),
        Layer("gaze", GazeStage("synthetic"), {"eyeLook": "override", "gaze": "override"}),
        Layer("blink", BlinkStage("synthetic"), {"eyeBlink": "max"}),
        tracking_layer(),  # a tracked face wins everything it has, with cross-fades when it comes and goes
    ])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame, Gaze, HeadPose

__all__ = ["BLEND_MODES", "FADE_S", "PRIORITY", "Layer", "LayerMixer", "channels_of", "tracking_layer"]

BLEND_MODES = ("override", "add", "max", "multiply")
POSE_PARTS = ("gaze", "head")

FADE_S = 0.15
"""Cross-fade (s) when a layer appears or disappears: **design**, under the 200 ms take-over the
issue asks for and over the ≈ 100 ms below which a change of source reads as a pop (a blink's
closing phase takes ≈ 80 ms)."""

PRIORITY: Mapping[str, int] = MappingProxyType({"idle": 0, "emotion": 10, "speech": 20, "tracking": 30})
"""The usual order of sources (higher wins the parts it overrides): live tracking > speech on the
mouth > emotion > procedural idle."""

BlendMode = Literal["override", "add", "max", "multiply"]
Source = Callable[[FaceFrame], object] | object  # a stage (``process``) or a function of the frame


def channels_of(part: str) -> tuple[int, ...]:
    """ARKit indices a part name covers: a group, a name, or a prefix of names; `InputError` if none."""
    if part in arkit.GROUPS:
        return tuple(arkit.INDEX[n] for n in arkit.GROUPS[part])
    if part in arkit.INDEX:
        return (arkit.INDEX[part],)
    covered = tuple(i for i, n in enumerate(arkit.NAMES) if n.startswith(part))
    if not covered:
        raise InputError(f"layer part {part!r}: expected an ARKit group ({', '.join(arkit.GROUPS)}), "
                         f"an ARKit name or prefix (e.g. 'eyeBlink'), or one of {', '.join(POSE_PARTS)}")
    return covered


@dataclass(frozen=True)
class Layer:
    """A named source of expression and how it blends: ``blend`` maps a part to a mode or (mode, α).

    ``source`` is a stage (anything with ``process(frame) -> FaceFrame``) or a function of the frame
    returning a `FaceFrame`, 52 weights in ARKit order, or a mapping of ARKit names to weights (the
    names left out are 0), or ``None`` when it has nothing now. ``weight`` scales every part's
    opacity (fade a whole layer in or out). ``priority`` orders the blending (module doc);
    ``active(frame)``, if given, says whether the layer is present for that frame; ``fade_s`` is its
    cross-fade when it appears or disappears (0: switch at once).
    """

    name: str
    source: Source
    blend: Mapping[str, str | tuple[str, float]]
    weight: float = 1.0
    priority: int = 0
    active: Callable[[FaceFrame], bool] | None = None
    fade_s: float = FADE_S
    _plan: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"layer name: expected a non-empty string, got {self.name!r}")
        if not (hasattr(self.source, "process") or callable(self.source)):
            raise InputError(f"layer {self.name!r} source: expected a stage or a function of the frame, got {type(self.source).__name__}")
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and 0 <= self.weight <= 1):
            raise InputError(f"layer {self.name!r} weight: expected a number in [0, 1], got {self.weight!r}")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise InputError(f"layer {self.name!r} priority: expected an integer, got {self.priority!r}")
        if self.active is not None and not callable(self.active):
            raise InputError(f"layer {self.name!r} active: expected a function of the frame or None, got {type(self.active).__name__}")
        if isinstance(self.fade_s, bool) or not (isinstance(self.fade_s, (int, float)) and math.isfinite(self.fade_s)
                                                 and 0 <= self.fade_s <= 60):
            raise InputError(f"layer {self.name!r} fade_s: expected seconds in [0, 60], got {self.fade_s!r}")
        if not self.blend:
            raise InputError(f"layer {self.name!r} blend: expected at least one part, got none")
        plan = []
        assigned: dict[int, tuple[str, float]] = {}  # channel → (mode, α): a later key re-assigns
        for part, spec in self.blend.items():
            if isinstance(spec, str):
                mode, alpha = spec, 1.0
            elif isinstance(spec, (tuple, list)) and len(spec) == 2:
                mode, alpha = spec
            else:
                mode, alpha = None, None
            if mode not in BLEND_MODES:
                raise InputError(f"layer {self.name!r} part {part!r}: expected a blend mode ({', '.join(BLEND_MODES)}) "
                                 f"or (mode, weight), got {spec!r}")
            if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (math.isfinite(alpha) and 0 <= alpha <= 1):
                raise InputError(f"layer {self.name!r} part {part!r} weight: expected a number in [0, 1], got {alpha!r}")
            if part in POSE_PARTS:
                if mode != "override":
                    raise InputError(f"layer {self.name!r} part {part!r}: only 'override' blends {part}, got {mode!r}")
                plan.append((part, mode, float(alpha), None))
            else:
                for i in channels_of(part):
                    assigned[i] = (mode, float(alpha))
        by_spec: dict[tuple[str, float], list[int]] = {}
        for i, spec in assigned.items():
            by_spec.setdefault(spec, []).append(i)
        plan.extend(("weights", mode, alpha, np.array(sorted(idx), dtype=np.intp)) for (mode, alpha), idx in by_spec.items())
        object.__setattr__(self, "blend", MappingProxyType(dict(self.blend)))
        object.__setattr__(self, "_plan", tuple(plan))

    def output(self, frame: FaceFrame) -> tuple[np.ndarray, FaceFrame | None] | None:
        """The layer's 52 weights for this input frame and its frame when the source made one;
        None when the source has nothing now."""
        out = self.source.process(frame) if hasattr(self.source, "process") else self.source(frame)
        if out is None:
            return None
        if isinstance(out, FaceFrame):
            return out.weights, out
        if isinstance(out, Mapping):
            weights = np.zeros(arkit.COUNT, dtype=np.float64)
            for name, value in out.items():
                try:
                    weights[arkit.index_of(name)] = float(value)
                except KeyError as exc:
                    raise InputError(f"layer {self.name!r} output: {exc.args[0]}") from None
            return self._checked(weights), None
        try:
            weights = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError):
            weights = np.zeros(0)
        if weights.shape != (arkit.COUNT,):
            raise InputError(f"layer {self.name!r} output: expected a FaceFrame, {arkit.COUNT} weights or a "
                             f"name → weight mapping, got {type(out).__name__} {getattr(weights, 'shape', '')}")
        return self._checked(weights), None

    def _checked(self, weights: np.ndarray) -> np.ndarray:
        if not np.isfinite(weights).all():
            raise InputError(f"layer {self.name!r} output: expected finite weights, got NaN or Inf")
        return weights


def _blend(mode: str, x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    if mode == "override":
        target = y
    elif mode == "add":
        return x + alpha * y
    elif mode == "max":
        target = np.maximum(x, y)
    else:  # multiply
        target = x * y
    return x + alpha * (target - x)


def _lerp(a: float, b: float, alpha: float) -> float:
    return a + alpha * (b - a)


def _ease(phase: float) -> float:
    """Raised cosine 0 → 1: zero slope at both ends, so a fade neither starts nor stops with a jolt."""
    return 0.5 - 0.5 * math.cos(math.pi * phase)


def tracking_layer(name: str = "tracking", *, fade_s: float = FADE_S, priority: int = PRIORITY["tracking"],
                   parts: Sequence[str] = (*arkit.GROUPS, *POSE_PARTS)) -> Layer:
    """A layer of the mixer's input frame itself, present while it is tracked: a live face wins.

    ``parts`` (default every group, gaze and head) are overridden by the tracked values; when the
    face is lost the layer holds the last tracked frame and fades out over ``fade_s``, so the
    layers underneath (procedural eyes and blinks) take over without a pop; when the face comes
    back tracking fades back in.
    """
    return Layer(name, lambda frame: frame, {part: "override" for part in parts}, priority=priority,
                 active=lambda frame: frame.tracked, fade_s=fade_s)


class LayerMixer:
    """A stage blending `Layer`s over each frame (see the module doc for the blend modes and fades).

    Untracked frames are mixed too (procedural layers can animate a face the tracker lost); the
    output keeps the input's ``tracked``, ``confidence``, time and identity fields. ``reset()`` resets
    every source that has a ``reset`` and forgets the fades. Input frames are never changed.
    """

    def __init__(self, layers: Sequence[Layer] = ()) -> None:
        self.layers: list[Layer] = []
        self._phase: dict[str, float] = {}  # fade phase 0..1 per layer name
        self._held: dict[str, tuple[np.ndarray, FaceFrame | None]] = {}  # last present output
        self._last_ns: int | None = None
        for layer in layers:
            self.add(layer)

    def add(self, layer: Layer) -> None:
        """Insert a layer above every layer of the same or a lower priority; names must be unique."""
        if not isinstance(layer, Layer):
            raise InputError(f"mixer layer: expected a Layer, got {type(layer).__name__}")
        if any(existing.name == layer.name for existing in self.layers):
            raise InputError(f"mixer layer {layer.name!r}: a layer with that name is already there")
        at = sum(1 for existing in self.layers if existing.priority <= layer.priority)
        self.layers.insert(at, layer)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise InputError(f"mixer layer {name!r}: no such layer; have {', '.join(l.name for l in self.layers) or 'none'}")

    def set_weight(self, name: str, weight: float) -> None:
        """Fade a whole layer: its overall weight in [0, 1] (0 leaves it out)."""
        old = self.layer(name)
        self.layers[self.layers.index(old)] = dataclasses.replace(old, weight=weight)

    @property
    def levels(self) -> dict[str, float]:
        """Each layer's present level 0..1 after the last frame (1 = fully in, 0 = faded out)."""
        return {layer.name: _ease(self._phase.get(layer.name, 1.0)) for layer in self.layers}

    def reset(self) -> None:
        self._phase.clear()
        self._held.clear()
        self._last_ns = None
        for layer in self.layers:
            reset = getattr(layer.source, "reset", None)
            if callable(reset):
                reset()

    def _level(self, layer: Layer, present: bool, dt_s: float | None) -> float:
        target = 1.0 if present else 0.0
        phase = self._phase.get(layer.name)
        if phase is None or dt_s is None or layer.fade_s == 0:
            phase = target
        else:
            step = dt_s / layer.fade_s
            phase = min(target, phase + step) if target > phase else max(target, phase - step)
        self._phase[layer.name] = phase
        return _ease(phase)

    def process(self, frame: FaceFrame) -> FaceFrame:
        x = frame.weights.astype(np.float64)
        gaze, head = frame.gaze, frame.head
        dt_s = None if self._last_ns is None or frame.t_ns < self._last_ns else (frame.t_ns - self._last_ns) / 1e9
        self._last_ns = frame.t_ns
        for layer in self.layers:
            out = layer.output(frame)  # every source runs, so stateful ones keep their clocks
            present = out is not None and (layer.active is None or bool(layer.active(frame)))
            if present:
                self._held[layer.name] = out  # type: ignore[assignment]
            level = self._level(layer, present, dt_s)
            held = self._held.get(layer.name)
            if layer.weight <= 0.0 or level <= 0.0 or held is None:
                continue
            y, made = held
            for part, mode, alpha, idx in layer._plan:
                a = alpha * layer.weight * level
                if a <= 0.0:
                    continue
                if idx is not None:
                    x[idx] = _blend(mode, x[idx], y[idx], a)
                elif made is None:
                    raise InputError(f"layer {layer.name!r} part {part!r}: the source must return a FaceFrame to blend {part}")
                elif part == "gaze":
                    g = made.gaze
                    gaze = Gaze(_lerp(gaze.left_yaw_deg, g.left_yaw_deg, a), _lerp(gaze.left_pitch_deg, g.left_pitch_deg, a),
                                _lerp(gaze.right_yaw_deg, g.right_yaw_deg, a), _lerp(gaze.right_pitch_deg, g.right_pitch_deg, a))
                else:
                    h = made.head
                    head = HeadPose(*(_lerp(getattr(head, f), getattr(h, f), a)
                                      for f in ("yaw_deg", "pitch_deg", "roll_deg", "x", "y", "z")))
            np.clip(x, 0.0, 1.0, out=x)
        return frame.replace(weights=x.astype(np.float32), gaze=gaze, head=head)
