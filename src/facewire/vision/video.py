"""`VideoTracker`: images in, `FaceFrame`s out — detection, landmarks, pose, gaze, blendshapes, filter.

The one source for everything a camera or video file shows. Each image gives one frame per tracked
face; an image with no face gives one ``tracked=False`` frame so the stream keeps its clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import InputError
from ..frame import FaceFrame
from ..media import Image
from ..models import ModelPaths, resolve
from .blendshapes import BlendshapeSolver
from .mp_blendshapes import MediaPipeBlendshapes
from .pose import PoseResult, PoseSolver
from .tracker import LandmarkTracker

__all__ = ["Timing", "TrackerOptions", "VideoTracker"]

SolverName = Literal["auto", "facewire", "mediapipe"]


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    """How to track: faces to follow, thresholds, which blendshape solver, which stages follow."""

    max_faces: int = 1
    min_detection_score: float = 0.5
    min_presence: float = 0.5
    solver: SolverName = "auto"  # auto: MediaPipe's model when the official bundle is given
    landmarks: bool = True  # keep the 478 landmarks in each frame
    iris_every: int = 2  # 1: both eyes through the iris model every frame; 2: alternate eyes (half the cost)


@dataclass
class Timing:
    """Milliseconds spent in the last call, by part (for benchmarks and live read-outs)."""

    landmarks_ms: float = 0.0
    solve_ms: float = 0.0
    stages_ms: float = 0.0


class VideoTracker:
    """Stateful tracker over consecutive images; call `process` per image or `frames` on a source."""

    def __init__(
        self,
        models: ModelPaths | str | None = None,
        options: TrackerOptions = TrackerOptions(),
        stages: Callable[[], list] | None = None,
    ) -> None:
        self.models = models if isinstance(models, ModelPaths) else resolve(models)
        self.options = options
        self.tracker = LandmarkTracker(
            self.models,
            max_faces=options.max_faces,
            min_detection_score=options.min_detection_score,
            min_presence=options.min_presence,
            iris_every=options.iris_every,
        )
        self.pose = PoseSolver()
        use_mp = options.solver == "mediapipe" or (options.solver == "auto" and self.models.blendshapes is not None)
        if use_mp and self.models.blendshapes is None:
            raise InputError("solver 'mediapipe' needs MediaPipe's official .task bundle (--model PATH.task)")
        self._mp = MediaPipeBlendshapes(self.models.blendshapes) if use_mp else None
        self._solver = None if use_mp else BlendshapeSolver()
        self.solver_name = "mediapipe" if use_mp else "facewire"
        # stages are per face (each keeps its own filter state); built lazily from the factory
        self._stage_factory = stages or list
        self._stages: dict[int, list] = {}
        self.timing = Timing()
        self._seq = 0

    def reset(self) -> None:
        self.tracker.reset()
        self._stages.clear()

    def solve(self, landmarks: np.ndarray, pose: PoseResult) -> np.ndarray:
        """52 ARKit weights for one face."""
        if self._mp is not None:
            return self._mp(landmarks)
        return self._solver(pose)

    def process(self, image: Image, source: str = "video") -> list[FaceFrame]:
        rgb = image.rgb
        h, w = rgb.shape[:2]
        t0 = time.perf_counter()
        observations = self.tracker(rgb)
        t1 = time.perf_counter()
        frames = []
        for obs in observations:
            pose = self.pose(obs.landmarks, (w, h))
            weights = self.solve(obs.landmarks, pose)
            frames.append(FaceFrame(
                t_ns=image.t_ns, seq=self._seq, source=source, weights=weights, head=pose.head, gaze=pose.gaze,
                landmarks=obs.landmarks if self.options.landmarks else None, tracked=True,
                confidence=min(1.0, obs.presence), face=obs.face, capture_ns=image.capture_ns,
            ))
        t2 = time.perf_counter()
        if not frames:
            frames.append(FaceFrame.untracked(image.t_ns, seq=self._seq, source=source, capture_ns=image.capture_ns))
        out = []
        live = {f.face for f in frames if f.tracked}
        for face in list(self._stages):
            if face not in live:  # a lost face's filters must start fresh if it comes back
                del self._stages[face]
        for frame in frames:
            stages = []
            if frame.tracked:
                if frame.face not in self._stages:
                    self._stages[frame.face] = self._stage_factory()
                stages = self._stages[frame.face]
            for stage in stages:
                frame = stage.process(frame)
            out.append(frame)
        t3 = time.perf_counter()
        self.timing = Timing((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        self._seq += 1
        return out

    def frames(self, images: Iterable[Image], source: str = "video") -> Iterator[FaceFrame]:
        for image in images:
            yield from self.process(image, source)
