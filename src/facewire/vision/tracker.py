"""Landmark tracking across frames, as MediaPipe does it: detect once, then follow.

A face found by the detector is followed by predicting next frame's region from this frame's mesh;
the detector runs again only when a face is lost (presence below threshold) or, with
``max_faces > 1``, every few frames while fewer faces than allowed are tracked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..models import ModelPaths
from .detector import FaceDetector
from .landmarks import IrisModel, MeshModel, roi_from_landmarks
from .roi import Roi

__all__ = ["LandmarkTracker", "Observation"]


@dataclass(frozen=True, slots=True)
class Observation:
    """One face in one image: 478×3 landmarks in image pixels (z scaled like x), presence, region."""

    landmarks: np.ndarray
    presence: float
    roi: Roi
    face: int
    next_roi: Roi | None = None  # where to look in the next frame (the mesh's own region)


class LandmarkTracker:
    """Image in, one `Observation` per tracked face out. Stateful: call with consecutive frames."""

    def __init__(
        self,
        models: ModelPaths,
        max_faces: int = 1,
        min_detection_score: float = 0.5,
        min_presence: float = 0.5,
        redetect_every: int = 10,
        iris_every: int = 1,
    ) -> None:
        if max_faces < 1:
            raise ValueError(f"max_faces: expected at least 1, got {max_faces}")
        if iris_every not in (1, 2):
            raise ValueError(f"iris_every: expected 1 (both eyes every frame) or 2 (alternate eyes), got {iris_every}")
        self.iris_every = iris_every
        self._iris_carry: dict[int, dict] = {}
        self._frame = 0
        self.detector = FaceDetector(models.detector, min_score=min_detection_score)
        self.mesh = MeshModel(models.landmarks)
        # The official bundle's mesh already has 478 points with refined eyes and irises.
        self.iris = IrisModel(models.iris) if models.iris is not None and self.mesh.points == 468 else None
        self.max_faces = max_faces
        self.min_presence = min_presence
        self.redetect_every = redetect_every
        self._tracks: dict[int, Roi] = {}
        self._since_detect = 0
        self.detections = 0  # how often the detector ran (for benchmarks and tests)

    def reset(self) -> None:
        self._tracks.clear()
        self._iris_carry.clear()
        self._since_detect = 0
        self._frame = 0  # the eye alternation restarts too: a reset tracker answers as a new one

    def __call__(self, rgb: np.ndarray) -> list[Observation]:
        h, w = rgb.shape[:2]
        if h < 8 or w < 8:
            self.reset()
            return []
        self._frame += 1
        observations: list[Observation] = []
        for face, roi in list(self._tracks.items()):
            obs = self._landmarks(rgb, roi, face)
            if obs is None:
                del self._tracks[face]
                self._iris_carry.pop(face, None)
            else:
                observations.append(obs)
        self._since_detect += 1
        short = len(observations) < self.max_faces
        if short and (not observations or self._since_detect >= self.redetect_every):
            observations += self._detect(rgb, observations)
        for obs in observations:
            self._tracks[obs.face] = obs.next_roi or roi_from_landmarks(obs.landmarks)
        observations.sort(key=lambda o: o.face)
        return observations

    def _landmarks(self, rgb: np.ndarray, roi: Roi, face: int, passes: int = 2, tolerance: float = 0.1
                   ) -> Observation | None:
        """Mesh (and iris) in ``roi``; if the mesh says the face sits elsewhere, look again there.

        A face that moved far since the last frame, or a coarse detector box, leaves the face off
        centre in the crop and the mesh degrades; re-cropping on the mesh's own region (up to
        ``passes`` times, while the region moves by more than ``tolerance`` of its size) fixes it.
        """
        mesh = None
        for _ in range(passes):
            if roi.size < 8:
                return None
            mesh, presence = self.mesh(rgb, roi)
            if presence < self.min_presence:
                return None
            settled = roi_from_landmarks(mesh)
            if not _moved(roi, settled, tolerance):
                break
            roi = settled
        full = mesh
        if self.iris is not None:
            eyes = (0, 1) if self.iris_every == 1 else (self._frame % 2,)
            full, self._iris_carry[face] = self.iris(rgb, mesh, eyes, self._iris_carry.get(face))
        return Observation(landmarks=full, presence=presence, roi=roi, face=face, next_roi=settled)

    def _free_id(self, taken: set[int]) -> int:
        face = 0
        while face in taken:
            face += 1
        return face

    def _detect(self, rgb: np.ndarray, existing: list[Observation]) -> list[Observation]:
        self._since_detect = 0
        self.detections += 1
        found: list[Observation] = []
        taken = [o.roi for o in existing]
        ids = {o.face for o in existing}
        for det in self.detector(rgb):
            if len(existing) + len(found) >= self.max_faces:
                break
            roi = det.roi()
            if any(roi.iou(t) > 0.3 for t in taken):
                continue
            # the detector's box is coarse: let the mesh settle on its own region
            obs = self._landmarks(rgb, roi, self._free_id(ids), passes=8, tolerance=0.005)
            if obs is None:
                continue
            ids.add(obs.face)
            found.append(obs)
            taken.append(obs.roi)
        return found


def _moved(a: Roi, b: Roi, tolerance: float) -> bool:
    """Whether region b differs from a by more than ``tolerance`` (of a's size, or in radians ×2)."""
    shift = math.hypot(b.cx - a.cx, b.cy - a.cy) / a.size
    scale = abs(b.size / a.size - 1.0)
    turn = abs(math.atan2(math.sin(b.rotation - a.rotation), math.cos(b.rotation - a.rotation)))
    return max(shift, scale, turn / 2) > tolerance
