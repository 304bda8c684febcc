"""Per-user calibration: a neutral baseline and per-shape gain, learnt automatically or explicitly.

Faces differ at rest: one person's resting eyelids read as a little squint, another's mouth as a
little press. Calibration subtracts each shape's neutral value and rescales the remaining range:
``w' = clip(gain · (w − offset) / (1 − offset), 0, 1)``.

* Automatic (default): over the first ``window_s`` seconds of tracked frames the stage collects
  the weights and takes each shape's 20th percentile as its neutral — robust to a blink or a word in
  that window. Until then it passes frames through unchanged.
* Explicit: ``mode="explicit"`` takes the median over the window (the user holds a neutral face,
  e.g. ``facewire track --calibrate``), or a saved `CalibrationProfile` is applied as it is.

Gaze shapes (``eyeLook*``) are never offset: looking into the camera is their neutral by definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .. import arkit
from ..atomic import atomic_write
from ..errors import InputError
from ..frame import FaceFrame

__all__ = ["CalibrationProfile", "CalibrationStage"]

_NOT_OFFSET = np.array([n.startswith("eyeLook") for n in arkit.NAMES])
MAX_OFFSET = 0.6  # a "neutral" above this is an expression held during calibration, not a resting face


@dataclass(frozen=True)
class CalibrationProfile:
    """Per-shape neutral offset and gain (52 each, ARKit order); saved as JSON keyed by name."""

    offset: np.ndarray = field(default_factory=lambda: np.zeros(arkit.COUNT, np.float32))
    gain: np.ndarray = field(default_factory=lambda: np.ones(arkit.COUNT, np.float32))

    def __post_init__(self) -> None:
        for name in ("offset", "gain"):
            arr = np.array(getattr(self, name), dtype=np.float32)
            if arr.shape != (arkit.COUNT,) or not np.all(np.isfinite(arr)):
                raise InputError(f"calibration {name}: expected {arkit.COUNT} finite values, got shape {arr.shape}")
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        if np.any(self.offset < 0) or np.any(self.offset >= 1):
            raise InputError("calibration offset: expected values in [0, 1)")
        if np.any(self.gain <= 0):
            raise InputError("calibration gain: expected positive values")

    def apply(self, weights: np.ndarray) -> np.ndarray:
        return np.clip(self.gain * (weights - self.offset) / (1.0 - self.offset), 0.0, 1.0).astype(np.float32)

    def to_json(self) -> str:
        return json.dumps({"offset": dict(zip(arkit.NAMES, map(float, self.offset))),
                           "gain": dict(zip(arkit.NAMES, map(float, self.gain)))}, indent=1)

    def save(self, path: str | Path) -> None:
        with atomic_write(path) as fh:
            fh.write(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> CalibrationProfile:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            offset = np.zeros(arkit.COUNT, np.float32)
            gain = np.ones(arkit.COUNT, np.float32)
            for name, value in data.get("offset", {}).items():
                offset[arkit.index_of(name)] = value
            for name, value in data.get("gain", {}).items():
                gain[arkit.index_of(name)] = value
        except OSError as exc:
            raise InputError(f"{path}: cannot read calibration ({exc.strerror or exc})") from exc
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            raise InputError(f"{path}: not a facewire calibration file ({exc})") from exc
        return cls(offset=offset, gain=gain)


class CalibrationStage:
    """Applies a profile; with ``mode`` "auto" or "explicit" it first learns the offsets."""

    def __init__(
        self,
        profile: CalibrationProfile | None = None,
        mode: Literal["auto", "explicit", "fixed"] = "auto",
        window_s: float = 2.0,
    ) -> None:
        if mode not in ("auto", "explicit", "fixed"):
            raise InputError(f"calibration mode: expected auto, explicit or fixed, got {mode!r}")
        if window_s <= 0:
            raise InputError(f"window_s: expected a positive duration, got {window_s}")
        self.mode = mode
        self.window_ns = int(window_s * 1e9)
        self.base = profile or CalibrationProfile()
        self.profile = self.base if mode == "fixed" else None
        self._samples: list[np.ndarray] = []
        self._start_ns: int | None = None

    def reset(self) -> None:
        self.profile = self.base if self.mode == "fixed" else None
        self._samples.clear()
        self._start_ns = None

    @property
    def done(self) -> bool:
        return self.profile is not None

    def process(self, frame: FaceFrame) -> FaceFrame:
        if not frame.tracked:
            return frame
        if self.profile is None:
            if self._start_ns is None:
                self._start_ns = frame.t_ns
            self._samples.append(frame.weights)
            if frame.t_ns - self._start_ns < self.window_ns:
                return frame
            self.profile = self._learn()
        return frame.replace(weights=self.profile.apply(frame.weights))

    def _learn(self) -> CalibrationProfile:
        stack = np.stack(self._samples)
        self._samples.clear()
        neutral = np.median(stack, axis=0) if self.mode == "explicit" else np.percentile(stack, 20, axis=0)
        offset = np.where(_NOT_OFFSET, 0.0, np.clip(neutral, 0.0, MAX_OFFSET))
        return CalibrationProfile(offset=offset, gain=self.base.gain)
