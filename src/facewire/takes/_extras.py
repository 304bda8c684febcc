"""Weights outside [0, 1]: how a take keeps the raw value that the frame has to clip.

A `FaceFrame` holds weights in [0, 1], but real files go past: Live Link Face takes reach 1.076,
Audio2Face solves dip below 0. A reader clips the weight and keeps the raw value in the frame's
``extras`` as ``"unclipped.<arkitName>"``; a writer that can carry it writes the raw value back,
but only while the frame's weight still equals the clipped raw value — a stage that changed the
weight since (a filter, a retarget) wins, and the stale raw value is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import arkit

__all__ = ["PREFIX", "split_unclipped", "unclipped_weights"]

PREFIX = "unclipped."
_KEYS = tuple(PREFIX + n for n in arkit.NAMES)


def split_unclipped(values: np.ndarray, extras: dict[str, float]) -> np.ndarray:
    """``values`` (52, ARKit order) clipped to [0, 1]; raw values outside go into ``extras``."""
    if values.min() >= 0.0 and values.max() <= 1.0:
        return values
    for i in np.flatnonzero((values < 0.0) | (values > 1.0)):
        extras[_KEYS[i]] = float(values[i])
    return np.clip(values, 0.0, 1.0)


def unclipped_weights(weights: np.ndarray, extras: Mapping[str, float]) -> np.ndarray:
    """The frame's weights as float64, with raw values restored where they still apply."""
    out = weights.astype(np.float64)
    if not extras:
        return out
    for i, key in enumerate(_KEYS):
        raw = extras.get(key)
        if raw is not None and np.float32(min(max(raw, 0.0), 1.0)) == weights[i]:
            out[i] = raw
    return out
