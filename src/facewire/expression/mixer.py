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

A typical avatar (speech and emotion as layers over a neutral or tracked frame)::

    LayerMixer([
        Layer("speech", lipsync_weights, {"jaw": "override", "mouth": "override", "tongue": "override"}),
        Layer("emotion", emotion_stage, {"brows": "override", "cheeks": "override", "nose": "override",
                                         "eyeSquint": "max", "eyeWide": "max", "mouth": ("add", 0.3)}),
        Layer("gaze", GazeStage("synthetic"), {"eyeLook": "override", "gaze": "override"}),
        Layer("blink", BlinkStage("synthetic"), {"eyeBlink": "max"}),
    ])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np

from .. import arkit
from ..errors import InputError
from ..frame import FaceFrame, Gaze, HeadPose

__all__ = ["BLEND_MODES", "Layer", "LayerMixer", "channels_of"]

BLEND_MODES = ("override", "add", "max", "multiply")
POSE_PARTS = ("gaze", "head")

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
    names left out are 0). ``weight`` scales every part's opacity (fade a whole layer in or out).
    """

    name: str
    source: Source
    blend: Mapping[str, str | tuple[str, float]]
    weight: float = 1.0
    _plan: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"layer name: expected a non-empty string, got {self.name!r}")
        if not (hasattr(self.source, "process") or callable(self.source)):
            raise InputError(f"layer {self.name!r} source: expected a stage or a function of the frame, got {type(self.source).__name__}")
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and 0 <= self.weight <= 1):
            raise InputError(f"layer {self.name!r} weight: expected a number in [0, 1], got {self.weight!r}")
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

    def output(self, frame: FaceFrame) -> tuple[np.ndarray, FaceFrame | None]:
        """The layer's 52 weights for this input frame, and its frame when the source made one."""
        out = self.source.process(frame) if hasattr(self.source, "process") else self.source(frame)
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


class LayerMixer:
    """A stage blending `Layer`s over each frame (see the module doc for the blend modes).

    Untracked frames are mixed too (procedural layers can animate a face the tracker lost); the
    output keeps the input's ``tracked``, ``confidence``, time and identity fields. ``reset()`` resets
    every source that has a ``reset``. Input frames are never changed.
    """

    def __init__(self, layers: Sequence[Layer] = ()) -> None:
        self.layers: list[Layer] = []
        for layer in layers:
            self.add(layer)

    def add(self, layer: Layer) -> None:
        """Append a layer on top; names must be unique."""
        if not isinstance(layer, Layer):
            raise InputError(f"mixer layer: expected a Layer, got {type(layer).__name__}")
        if any(existing.name == layer.name for existing in self.layers):
            raise InputError(f"mixer layer {layer.name!r}: a layer with that name is already there")
        self.layers.append(layer)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise InputError(f"mixer layer {name!r}: no such layer; have {', '.join(l.name for l in self.layers) or 'none'}")

    def set_weight(self, name: str, weight: float) -> None:
        """Fade a whole layer: its overall weight in [0, 1] (0 leaves it out)."""
        old = self.layer(name)
        new = Layer(old.name, old.source, old.blend, weight)
        self.layers[self.layers.index(old)] = new

    def reset(self) -> None:
        for layer in self.layers:
            reset = getattr(layer.source, "reset", None)
            if callable(reset):
                reset()

    def process(self, frame: FaceFrame) -> FaceFrame:
        x = frame.weights.astype(np.float64)
        gaze, head = frame.gaze, frame.head
        for layer in self.layers:
            y, made = layer.output(frame)  # every source runs, so stateful ones keep their clocks
            if layer.weight <= 0.0:
                continue
            for part, mode, alpha, idx in layer._plan:
                a = alpha * layer.weight
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
