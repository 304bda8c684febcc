"""Build facewire's canonical 3D face (src/facewire/data/canonical_face.npz) from real video.

Tracks the GRID talking-face clips in ../shared/data with the package models, aligns every
468-point mesh by generalised Procrustes, makes the mean left/right symmetric, and fixes an
anatomical frame: x from the subject's right eye to the left eye, y from chin to forehead, z out of
the face; units are centimetres (63 mm between the eye centres). Run: python tools/make_canonical_face.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np

from facewire.models import ensure_package_models
from facewire.vision.pose import umeyama
from facewire.vision.tracker import LandmarkTracker

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT.parent / "shared" / "data" / "video" / "grid"
OUT = ROOT / "src" / "facewire" / "data" / "canonical_face.npz"
EYE_DISTANCE_CM = 6.3


def collect() -> np.ndarray:
    tracker = LandmarkTracker(ensure_package_models())
    meshes = []
    for clip in sorted(GRID.glob("*.mpg")):
        tracker.reset()
        with av.open(str(clip)) as container:
            for frame in container.decode(video=0):
                obs = tracker(frame.to_ndarray(format="rgb24"))
                if obs:
                    meshes.append(obs[0].landmarks)
    if not meshes:
        sys.exit(f"no faces found in {GRID}")
    # image (x right, y down, z away) → camera frame (x right, y up, z towards the viewer)
    return np.array(meshes, dtype=np.float64) * np.array([1.0, -1.0, -1.0])


def procrustes_mean(meshes: np.ndarray, iterations: int = 10) -> np.ndarray:
    mean = meshes[0] - meshes[0].mean(0)
    for _ in range(iterations):
        aligned = []
        for mesh in meshes:
            s, r, t = umeyama(mesh, mean)
            aligned.append(s * mesh @ r.T + t)
        mean = np.mean(aligned, axis=0)
        mean -= mean.mean(0)
        mean /= np.sqrt((mean**2).sum(1).mean())
    return mean


def anatomical_frame(points: np.ndarray) -> np.ndarray:
    right_eye = points[[33, 133]].mean(0)
    left_eye = points[[362, 263]].mean(0)
    x = left_eye - right_eye
    x /= np.linalg.norm(x)
    up = points[10] - points[152]  # forehead - chin
    y = up - x * (up @ x)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    centre = (right_eye + left_eye) / 2
    local = (points - centre) @ np.stack([x, y, z]).T
    return local * (EYE_DISTANCE_CM / np.linalg.norm(left_eye - right_eye))


def mirror_pairs(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair each point with its mirror image by optimal assignment, refining the symmetry plane.

    Returns the pairing and the points rotated so that the plane of symmetry is x = 0.
    """
    from scipy.optimize import linear_sum_assignment

    flip = np.array([-1.0, 1.0, 1.0])
    pts = points.copy()
    for _ in range(5):
        cost = (((pts * flip)[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
        mirror = linear_sum_assignment(cost)[1]
        # the rigid motion taking the mirrored mesh onto itself is twice the plane's misalignment;
        # apply half of it (via the mean of the two) to centre the plane on x = 0
        _s, r, t = umeyama(pts[mirror] * flip, pts)
        half_u, _, half_vt = np.linalg.svd((r + np.eye(3)) / 2)
        half = half_u @ half_vt
        pts = (pts - t / 2) @ half
    return mirror, pts


def gaze_offsets(meshes: np.ndarray, canon: np.ndarray) -> np.ndarray:
    """Mean normalised iris offsets (right dx, dy, left dx, dy) of people looking at the camera."""
    from facewire.vision.pose import RIGID, iris_offsets

    offsets = []
    for mesh in meshes:
        s, r, t = umeyama(canon[RIGID], mesh[RIGID])
        offsets.append(iris_offsets(((mesh - t) @ r) / s))
    return np.mean(offsets, axis=0)


def main() -> None:
    meshes = collect()
    canon = anatomical_frame(procrustes_mean(meshes[:, :468]))
    mirror, canon = mirror_pairs(canon)
    if not np.array_equal(mirror[mirror], np.arange(len(mirror))):
        sys.exit("mirror pairing is not an involution; the mean face is too asymmetric")
    symmetric = (canon + canon[mirror] * np.array([-1.0, 1.0, 1.0])) / 2
    OUT.parent.mkdir(parents=True, exist_ok=True)
    offsets = gaze_offsets(meshes, symmetric)
    np.savez_compressed(OUT, points=symmetric.astype(np.float32), mirror=mirror.astype(np.int16),
                        gaze_offset=offsets.astype(np.float32))
    print(f"wrote {OUT}: {len(symmetric)} points, {int((mirror == np.arange(len(mirror))).sum())} on the midline,"
          f" gaze offsets {np.round(offsets, 3).tolist()}")


if __name__ == "__main__":
    main()
