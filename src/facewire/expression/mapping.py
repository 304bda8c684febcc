"""User mapping files for custom rigs, and the stage and CSV writer that retarget a stream to any schema.

A mapping file (JSON, or YAML when PyYAML is installed) names each target shape of a rig and says
how to compute it from the ARKit-52 weights::

    {
      "version": 1,
      "targets": {
        "MouthOpen":  {"sum": {"jawOpen": 1.0, "mouthLowerDownLeft": 0.1, "mouthLowerDownRight": 0.1},
                       "gain": 1.2, "clamp": [0, 1]},
        "Smile":      {"sum": {"mouthSmileLeft": 0.5, "mouthSmileRight": 0.5}, "curve": {"gamma": 0.7}},
        "Blink":      {"sum": {"eyeBlinkLeft": 0.5, "eyeBlinkRight": 0.5},
                       "curve": {"points": [[0, 0], [0.3, 0.1], [0.8, 1], [1, 1]]}},
        "HappyBlink": {"sum": {"Smile": 1.0, "Blink": 0.5}}
      }
    }

For each target, in this order: ``x = gain · Σ wᵢ·sourceᵢ + offset``; then the ``curve``:
``{"gamma": γ}`` gives ``max(x, 0)^γ`` and ``{"points": [[x₀, y₀], …]}`` the piecewise-linear curve
through the points (x strictly increasing, held flat outside them); then ``clamp`` ``[low, high]``
(default ``[0, 1]``). ``gain`` defaults to 1 and ``offset`` to 0. A source is an ARKit name
(camelCase, or PascalCase as Live Link writes it) or another target of the same file: targets may
chain, evaluated in dependency order; a cycle is an error naming it. A target may not reuse an
ARKit name. Every error is an `InputError` naming the file, the target and the field, and saying
what was expected and what came ("unknown source 'jawOpn' (did you mean 'jawOpen'?)").

`RetargetStage` applies a mapping or one of the built-in schemas of `facewire.retarget.SCHEMAS`
(``vrm0``, ``vrm1``, ``ovr``, ``unified``, ``metahuman``) to each frame. A `FaceFrame` carries
ARKit weights only, so the values travel in the frame's ``extras`` under ``"rig.<target>"``: the
JSON Lines take keeps them, and `RetargetCsvWriter` writes them as a CSV with the rig's own column
names (``facewire retarget IN OUT.csv --map rig.json``).
"""

from __future__ import annotations

import csv
import difflib
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self

import numpy as np

from .. import arkit
from ..atomic import atomic_write
from ..errors import InputError
from ..frame import FaceFrame

__all__ = [
    "EXTRAS_PREFIX",
    "MAPPING_VERSION",
    "RetargetCsvWriter",
    "RetargetStage",
    "RigMapping",
    "Target",
    "load_mapping",
]

MAPPING_VERSION = 1
EXTRAS_PREFIX = "rig."
"""Key prefix of the retargeted values in a frame's ``extras``."""

_TARGET_KEYS = frozenset({"sum", "gain", "offset", "clamp", "curve"})
_MAX_TARGETS = 10_000


@dataclass(frozen=True)
class Target:
    """One target shape: weighted sources, gain, offset, optional curve, clamp (see the module doc)."""

    name: str
    sources: Mapping[str, float]
    gain: float = 1.0
    offset: float = 0.0
    gamma: float | None = None
    points: tuple[tuple[float, float], ...] | None = None
    clamp: tuple[float, float] = (0.0, 1.0)

    def shape(self, x: np.ndarray) -> np.ndarray:
        """Gain, offset, curve and clamp applied to the weighted sum ``x``."""
        y = self.gain * x + self.offset
        if self.gamma is not None:
            y = np.maximum(y, 0.0) ** self.gamma
        elif self.points is not None:
            px, py = zip(*self.points)
            y = np.interp(y, px, py)
        return np.clip(y, *self.clamp)


class _Where:
    """Formats error locations: ``rig.json: target 'Smile' gain``."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def error(self, where: str, message: str) -> InputError:
        return InputError(f"{self.origin}: {where}: {message}")


def _number(value: Any, where: str, at: _Where) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise at.error(where, f"expected a finite number, got {value!r}")
    return float(value)


def _source_name(name: Any, where: str, at: _Where, targets: Sequence[str]) -> str:
    if not isinstance(name, str) or not name:
        raise at.error(where, f"expected a source name, got {name!r}")
    if name in targets:
        return name
    try:
        return arkit.NAMES[arkit.index_of(name)]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, [*arkit.NAMES, *targets], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise at.error(where, f"unknown source {name!r}{hint}: expected an ARKit name or another target of the file")


def _parse_target(name: str, spec: Any, at: _Where, names: Sequence[str]) -> Target:
    where = f"target {name!r}"
    if not isinstance(spec, Mapping):
        raise at.error(where, f"expected an object with 'sum' (and optionally gain, offset, clamp, curve), got {type(spec).__name__}")
    unknown = sorted(set(spec) - _TARGET_KEYS)
    if unknown:
        raise at.error(where, f"unknown field {unknown[0]!r}: expected {', '.join(sorted(_TARGET_KEYS))}")
    total = spec.get("sum")
    if not isinstance(total, Mapping) or not total:
        raise at.error(f"{where} sum", f"expected a non-empty object of source name → weight, got {total!r}")
    sources: dict[str, float] = {}
    for src, weight in total.items():
        key = _source_name(src, f"{where} sum", at, names)
        sources[key] = sources.get(key, 0.0) + _number(weight, f"{where} sum[{src!r}]", at)
    gain = _number(spec.get("gain", 1.0), f"{where} gain", at)
    offset = _number(spec.get("offset", 0.0), f"{where} offset", at)
    clamp = spec.get("clamp", [0.0, 1.0])
    if not isinstance(clamp, (list, tuple)) or len(clamp) != 2:
        raise at.error(f"{where} clamp", f"expected [low, high], got {clamp!r}")
    low, high = (_number(c, f"{where} clamp", at) for c in clamp)
    if low > high:
        raise at.error(f"{where} clamp", f"expected low ≤ high, got {clamp!r}")
    gamma = points = None
    curve = spec.get("curve")
    if curve is not None:
        if not isinstance(curve, Mapping) or len(curve) != 1 or next(iter(curve)) not in ("gamma", "points"):
            raise at.error(f"{where} curve", f'expected {{"gamma": γ}} or {{"points": [[x, y], …]}}, got {curve!r}')
        if "gamma" in curve:
            gamma = _number(curve["gamma"], f"{where} curve gamma", at)
            if not 0.05 <= gamma <= 20:
                raise at.error(f"{where} curve gamma", f"expected a number in [0.05, 20], got {curve['gamma']!r}")
        else:
            raw = curve["points"]
            if not isinstance(raw, (list, tuple)) or len(raw) < 2 or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in raw):
                raise at.error(f"{where} curve points", f"expected at least two [x, y] pairs, got {raw!r}")
            points = tuple((_number(px, f"{where} curve points", at), _number(py, f"{where} curve points", at)) for px, py in raw)
            xs = [px for px, _ in points]
            if any(b <= a for a, b in itertools.pairwise(xs)):
                raise at.error(f"{where} curve points", f"expected strictly increasing x, got {xs}")
    return Target(name, MappingProxyType(sources), gain, offset, gamma, points, (low, high))


def _order(targets: Mapping[str, Target], at: _Where) -> tuple[str, ...]:
    """Targets in dependency order (sources first); `InputError` naming a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            raise at.error(f"target {name!r}", f"expected no cycles between targets, got {' → '.join(cycle)}")
        state[name] = 1
        for src in targets[name].sources:
            if src in targets:
                visit(src, [*path, name])
        state[name] = 2
        order.append(name)

    for name in targets:
        visit(name, [])
    return tuple(order)


class RigMapping:
    """A validated mapping from ARKit-52 to a custom rig's targets (module doc); `apply` evaluates it."""

    def __init__(self, targets: Mapping[str, Target], order: Sequence[str], origin: str = "mapping") -> None:
        self.targets = MappingProxyType(dict(targets))
        self.order = tuple(order)
        self.origin = origin
        self.names: tuple[str, ...] = tuple(targets)
        """Target names in the file's order (the CSV column order)."""

    def __repr__(self) -> str:
        return f"RigMapping({self.origin!r}, {len(self.names)} targets)"

    @classmethod
    def from_dict(cls, data: Any, origin: str = "mapping") -> RigMapping:
        at = _Where(origin)
        if not isinstance(data, Mapping):
            raise at.error("top level", f"expected an object with 'targets', got {type(data).__name__}")
        unknown = sorted(set(data) - {"version", "targets"})
        if unknown:
            raise at.error("top level", f"unknown field {unknown[0]!r}: expected version, targets")
        version = data.get("version", MAPPING_VERSION)
        if version != MAPPING_VERSION:
            raise at.error("version", f"expected {MAPPING_VERSION}, got {version!r}")
        raw = data.get("targets")
        if not isinstance(raw, Mapping) or not raw:
            raise at.error("targets", f"expected a non-empty object of target name → definition, got {raw!r}")
        if len(raw) > _MAX_TARGETS:
            raise at.error("targets", f"expected at most {_MAX_TARGETS} targets, got {len(raw)}")
        names = list(raw)
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise at.error("targets", f"expected non-empty target names, got {name!r}")
            if name in arkit.INDEX:
                raise at.error(f"target {name!r}", "expected a name that is not an ARKit shape (sources would be ambiguous)")
        targets = {name: _parse_target(name, raw[name], at, names) for name in names}
        return cls(targets, _order(targets, at), origin)

    def apply(self, weights: np.ndarray) -> np.ndarray:
        """Target values for 52 weights (→ T values) or N×52 weights (→ N×T), in `names` order."""
        w = np.asarray(weights, dtype=np.float64)
        single = w.ndim == 1
        w2 = w[None, :] if single else w
        if w2.ndim != 2 or w2.shape[1] != arkit.COUNT:
            raise InputError(f"{self.origin}: weights: expected {arkit.COUNT} or N×{arkit.COUNT} values, got shape {w.shape}")
        done: dict[str, np.ndarray] = {}
        for name in self.order:
            t = self.targets[name]
            x = np.zeros(len(w2))
            for src, k in t.sources.items():
                x += k * (done[src] if src in done else w2[:, arkit.INDEX[src]])
            done[name] = t.shape(x)
        out = np.stack([done[n] for n in self.names], axis=1)
        return out[0] if single else out

    def evaluate(self, frame: FaceFrame) -> dict[str, float]:
        """Target name → value for one frame."""
        return dict(zip(self.names, self.apply(frame.weights).tolist()))


def load_mapping(path: str | os.PathLike[str]) -> RigMapping:
    """Read and validate a mapping file (``.json``, or ``.yaml``/``.yml`` with PyYAML installed)."""
    p = Path(path)
    label = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"mapping file {label}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"mapping file {label}: cannot read it ({exc})") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InputError(f"mapping file {label}: YAML needs PyYAML (pip install PyYAML), or write it as JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise InputError(f"mapping file {label}: expected YAML, got a syntax error{where}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"mapping file {label}: expected JSON, got a syntax error at line {exc.lineno} "
                             f"column {exc.colno} ({exc.msg})") from None
    return RigMapping.from_dict(data, origin=label)


def _schema(target: str | RigMapping):
    from ..retarget import SCHEMAS

    if isinstance(target, RigMapping):
        return target.names, target.evaluate
    if isinstance(target, str) and target in SCHEMAS:
        schema = SCHEMAS[target]
        return schema.names, schema.compute
    raise InputError(f"retarget target: expected a RigMapping or one of {', '.join(SCHEMAS)}, got {target!r}")


class RetargetStage:
    """Stage: puts each frame's values in a target schema into its ``extras`` (``"rig.<name>"``).

    ``target`` is a `RigMapping` or a name of `facewire.retarget.SCHEMAS`. The ARKit weights are
    left as they are; values are clipped to the schema's range by the schema itself.
    """

    def __init__(self, target: str | RigMapping) -> None:
        self.names, self._compute = _schema(target)
        self.target = target

    def values(self, frame: FaceFrame) -> dict[str, float]:
        """Target name → value for one frame (no frame is made)."""
        return self._compute(frame)

    def process(self, frame: FaceFrame) -> FaceFrame:
        values = self._compute(frame)
        extras = dict(frame.extras)
        extras.update({EXTRAS_PREFIX + name: float(values[name]) for name in self.names})
        return frame.replace(extras=extras)

    def reset(self) -> None:
        pass


class RetargetCsvWriter:
    """Sink: a CSV of ``time_s`` then one column per target name, written atomically.

    Frames are retargeted with ``target`` (a `RigMapping` or a schema name) unless they already carry
    the values in ``extras`` (from a `RetargetStage`). Values are written with 6 decimals.
    """

    def __init__(self, path: str | os.PathLike[str], target: str | RigMapping) -> None:
        self.path = path
        self.names, self._compute = _schema(target)
        self._cm = None
        self._file = None
        self.count = 0

    def __enter__(self) -> Self:
        self._cm = atomic_write(self.path, "w", newline="")
        self._file = self._cm.__enter__()
        self._csv = csv.writer(self._file, lineterminator="\n")  # quotes rig names with commas
        self._csv.writerow(["time_s", *self.names])
        return self

    def send(self, frame: FaceFrame) -> None:
        if self._file is None:
            raise InputError("retarget CSV writer: send() outside its with block")
        keys = [EXTRAS_PREFIX + n for n in self.names]
        if all(k in frame.extras for k in keys):
            row = [frame.extras[k] for k in keys]
        else:
            values = self._compute(frame)
            row = [values[n] for n in self.names]
        self._csv.writerow([f"{frame.t_ns / 1e9:.6f}", *(f"{float(v):.6f}" for v in row)])
        self.count += 1

    def __exit__(self, *exc_info) -> None:
        cm, self._cm, self._file = self._cm, None, None
        if cm is not None:
            cm.__exit__(*exc_info)
