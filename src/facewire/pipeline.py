"""Source, Stage and Sink protocols and the runner that joins them.

A source yields `FaceFrame`s, a stage maps one frame to a new frame (never mutating its input), a
sink consumes frames. Stages are plain synchronous objects; anything concurrent lives in the runner.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Self, runtime_checkable

import numpy as np

from .frame import FaceFrame

__all__ = ["Chain", "RunStats", "Sink", "Stage", "run"]


@runtime_checkable
class Stage(Protocol):
    """Turns one frame into a new frame; ``reset()`` forgets all state (e.g. between takes)."""

    def process(self, frame: FaceFrame) -> FaceFrame: ...

    def reset(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Consumes frames; a context manager so that files close and sockets shut down."""

    def send(self, frame: FaceFrame) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class Chain:
    """Several stages applied in order, itself a stage."""

    def __init__(self, stages: Sequence[Stage] = ()) -> None:
        self.stages = list(stages)

    def process(self, frame: FaceFrame) -> FaceFrame:
        for stage in self.stages:
            frame = stage.process(frame)
        return frame

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()


@dataclass
class RunStats:
    """What a run did: frame counts and per-frame processing time (stages + sinks) in ms."""

    frames: int = 0
    tracked: int = 0
    process_ms: list[float] = field(default_factory=list)

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.process_ms, q)) if self.process_ms else float("nan")


def run(source: Iterable[FaceFrame], stages: Sequence[Stage] = (), sinks: Sequence[Sink] = ()) -> RunStats:
    """Pull every frame from ``source`` through ``stages`` into every sink; returns statistics."""
    chain = Chain(stages)
    stats = RunStats()
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(s) for s in sinks]
        for frame in source:
            t0 = time.perf_counter()
            out = chain.process(frame)
            for sink in opened:
                sink.send(out)
            stats.process_ms.append((time.perf_counter() - t0) * 1e3)
            stats.frames += 1
            stats.tracked += out.tracked
    return stats


def iterate(source: Iterable[FaceFrame], stages: Sequence[Stage]) -> Iterator[FaceFrame]:
    """Lazily apply ``stages`` to ``source``."""
    chain = Chain(stages)
    for frame in source:
        yield chain.process(frame)
