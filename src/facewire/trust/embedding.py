"""Face embeddings for the likeness registry: dlib's 128-d ResNet face descriptor on aligned face chips.

Faces are found by facewire's own BlazeFace detector, each hit confirmed by the face mesh (3.5× faster
than dlib's HOG detector, without its false hits, giving the same embeddings; ``facewire bench likeness``),
aligned by dlib's 5-point shape predictor, and described by dlib's ResNet
(``dlib_face_recognition_resnet_model_v1``). Both dlib models come from the
``face-recognition-models`` package, run by ``dlib-bin``, and are checked against the SHA-256
digests pinned below before they are loaded. Two descriptors of the same person lie at a small
Euclidean distance; the registry (`facewire.trust.registry`) documents the threshold.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from ..errors import InputError, ModelError, NoFaceError
from ..models import sha256_file as _sha256

__all__ = [
    "EMBEDDING_DIM",
    "MODEL_FILES",
    "MODEL_ID",
    "MODEL_PACKAGE",
    "DetectorName",
    "FaceEmbedder",
    "FaceEmbedding",
    "face_distance",
    "model_dir",
    "pick_face",
    "verify_models",
]

#: The Python package (pip: ``face-recognition-models``) whose data files are the dlib models.
MODEL_PACKAGE = "face_recognition_models"

#: role -> (file inside ``<package>/models``, pinned SHA-256 of face-recognition-models 0.3.0).
MODEL_FILES: dict[str, tuple[str, str]] = {
    "descriptor": (
        "dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    ),
    "shape": (
        "shape_predictor_5_face_landmarks.dat",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    ),
}

#: Names the embedding space; vectors from another model are not comparable with these.
MODEL_ID = "dlib_face_recognition_resnet_model_v1"
EMBEDDING_DIM = 128

DetectorName = Literal["facewire", "dlib"]

_INSTALL_HINT = "install it with `pip install dlib-bin face-recognition-models`"
_CHIP_PX = 150  # the ResNet's input: dlib's aligned 150×150 face chip with 25 % padding
_DETECT_MAX_SIDE = 1280  # BlazeFace sees 128 px anyway; a smaller copy makes its resizes cheap

_FINE_TILE_PX = 240  # second tiling level: BlazeFace finds faces down to ~1/5 of a tile (≈ 50 px)
_MIN_PRESENCE = 0.5  # the face mesh's presence score that confirms a detection (the tracker's default)

_verified: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) already hashed in this process
_verified_lock = threading.Lock()


@dataclass(frozen=True)
class FaceEmbedding:
    """One face: its 128-d descriptor (float32, read-only, length ≈ 1), box and 5 landmarks in pixels.

    ``box`` is (x0, y0, x1, y1) in the pixels of the image given to `FaceEmbedder.embed`;
    ``landmarks`` are dlib's five points (5×2: eye corners and the base of the nose); ``score``
    is the detector's confidence.
    """

    vector: np.ndarray
    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    def __post_init__(self) -> None:
        vector = np.array(self.vector, dtype=np.float32).reshape(-1)
        if vector.shape != (EMBEDDING_DIM,) or not np.all(np.isfinite(vector)):
            raise InputError(f"face embedding: expected {EMBEDDING_DIM} finite floats, got shape {vector.shape}")
        points = np.array(self.landmarks, dtype=np.float32).reshape(-1, 2)
        vector.flags.writeable = False
        points.flags.writeable = False
        object.__setattr__(self, "vector", vector)
        object.__setattr__(self, "landmarks", points)

    def distance(self, other: FaceEmbedding | np.ndarray) -> float:
        """Euclidean distance to another embedding (or a bare vector)."""
        vector = other.vector if isinstance(other, FaceEmbedding) else other
        return face_distance(self.vector, vector)


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors: dlib's model was trained for this metric."""
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


# -- the model files ------------------------------------------------------------------------------
def model_dir() -> Path:
    """The ``models`` folder of the installed ``face_recognition_models`` package.

    Found by the import system without importing the package, whose ``__init__`` needs
    ``pkg_resources`` (gone from recent setuptools) only to compute these very paths.
    """
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelError(f"face recognition models: expected the {MODEL_PACKAGE} package, found none; {_INSTALL_HINT}")
    return Path(locations[0]) / "models"


def verify_models(directory: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Paths of the dlib models in ``directory`` (default `model_dir`), each checked by SHA-256.

    A missing or unreadable file, or one whose digest is not the pinned one, raises `ModelError`
    naming the file, the expected digest and the one found. A file already verified in this
    process (same size and modification time) is not hashed again.
    """
    folder = Path(directory).expanduser() if directory is not None else model_dir()
    paths: dict[str, Path] = {}
    for role, (name, digest) in MODEL_FILES.items():
        path = folder / name
        try:
            st = path.stat()
        except OSError as exc:
            raise ModelError(f"{path}: expected the dlib {role} model, found none; {_INSTALL_HINT}") from exc
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        with _verified_lock:
            known = key in _verified
        if not known:
            try:
                actual = _sha256(path)
            except OSError as exc:
                raise ModelError(f"{path}: cannot read the dlib {role} model ({exc.strerror or exc})") from exc
            if actual != digest:
                raise ModelError(
                    f"{path}: expected SHA-256 {digest}, got {actual}; the model is corrupt or another release,"
                    f" reinstall with `pip install --force-reinstall face-recognition-models`"
                )
            with _verified_lock:
                _verified.add(key)
        paths[role] = path
    return paths


# -- input ----------------------------------------------------------------------------------------
def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    """A C-contiguous H×W×3 uint8 image (grey H×W is widened), else `InputError`."""
    if not isinstance(rgb, np.ndarray):
        raise InputError(f"image: expected an H×W×3 uint8 numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise InputError(f"image: expected dtype uint8, got {rgb.dtype}")
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"image: expected shape H×W×3 (RGB), got {rgb.shape}")
    if rgb.shape[0] < 8 or rgb.shape[1] < 8:
        raise InputError(f"image: expected at least 8×8 pixels, got {rgb.shape[1]}×{rgb.shape[0]}")
    return np.ascontiguousarray(rgb)


def _starts(length: int, tile: int) -> list[int]:
    """Tile origins along one side: every half tile, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile // 2))
    return [*starts, length - tile]


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# -- the embedder ---------------------------------------------------------------------------------
class FaceEmbedder:
    """Finds every face in an RGB image and describes each with a 128-d vector.

    ``detector`` is ``"facewire"`` (BlazeFace, the tracker's own model: default, fast) or
    ``"dlib"`` (dlib's HOG detector, kept for comparison). ``models`` is a folder holding the two
    dlib files (default: the installed package's). ``small_faces`` adds a finer detection pass
    that finds faces down to ~50 px in a large photo (a group, two portraits side by side) at 3-5×
    the detection cost; without it faces under about a tenth of the image may be missed, as they
    are by the tracker. Faces are returned left to right.
    Not thread-safe: use one embedder per thread.
    """

    def __init__(
        self,
        models: str | os.PathLike[str] | None = None,
        *,
        detector: DetectorName = "facewire",
        min_score: float = 0.5,
        small_faces: bool = False,
    ) -> None:
        if detector not in ("facewire", "dlib"):
            raise InputError(f"detector: expected 'facewire' or 'dlib', got {detector!r}")
        if not 0.0 < min_score < 1.0:
            raise InputError(f"min_score: expected a confidence between 0 and 1, got {min_score!r}")
        paths = verify_models(models)
        try:
            import dlib
        except ImportError as exc:
            raise ModelError(f"face recognition: expected the dlib module, found none; {_INSTALL_HINT}") from exc
        self._dlib = dlib
        try:
            self._shape = dlib.shape_predictor(str(paths["shape"]))
            self._descriptor = dlib.face_recognition_model_v1(str(paths["descriptor"]))
        except RuntimeError as exc:
            raise ModelError(f"face recognition: cannot load the dlib models ({exc})") from exc
        self.detector_name: DetectorName = detector
        self.min_score = min_score
        self.small_faces = bool(small_faces)
        self._blazeface = None
        self._mesh = None
        self._hog = None

    def _load_facewire(self):
        if self._blazeface is None:
            from ..models import ensure_package_models
            from ..vision.detector import FaceDetector
            from ..vision.landmarks import MeshModel

            paths = ensure_package_models()
            self._blazeface = FaceDetector(paths.detector, min_score=self.min_score)
            self._mesh = MeshModel(paths.landmarks)
        return self._blazeface, self._mesh

    def detect(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        """Face boxes (x0, y0, x1, y1 px) with scores, left to right."""
        return self._detect(_as_rgb(rgb))

    def _detect(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        h, w = rgb.shape[:2]
        scale = min(1.0, _DETECT_MAX_SIDE / max(h, w))
        small = rgb if scale == 1.0 else cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        if self.detector_name == "dlib":
            found = self._detect_hog(small)
        else:
            found = self._detect_blazeface(small)
        found = [((x0 / scale, y0 / scale, x1 / scale, y1 / scale), s) for (x0, y0, x1, y1), s in found]
        return sorted(found, key=lambda f: (f[0][0] + f[0][2]) / 2)

    def _detect_hog(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        if self._hog is None:
            self._hog = self._dlib.get_frontal_face_detector()
        # one upsampling step lets HOG (80 px window) find faces down to ~40 px
        rects, scores, _ = self._hog.run(rgb, 1 if max(rgb.shape[:2]) <= 800 else 0, 0.0)
        return [((r.left(), r.top(), r.right() + 1.0, r.bottom() + 1.0), float(s)) for r, s in zip(rects, scores)]

    def _detect_blazeface(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        """BlazeFace on the whole image and on four overlapping tiles, each hit confirmed by the face mesh.

        The short-range model sees the image at 128 px and misses faces under about a fifth of
        the image (two portraits side by side, a group photo); tiles of 60 % give such faces 1.7×
        the pixels. Tiles also raise false hits on face-like texture (a helmet's reflection), which
        the mesh model's face-presence score (≈1 for faces, < 0.4 for those hits) rejects.
        """
        from ..vision.detector import Detection
        from ..vision.landmarks import roi_from_landmarks

        detector, mesh = self._load_facewire()
        candidates = list(detector(rgb))
        h, w = rgb.shape[:2]
        tiles: list[tuple[int, int, int, int]] = []
        if max(h, w) >= 256:
            th, tw = int(h * 0.6), int(w * 0.6)
            tiles += [(x0, y0, tw, th) for y0 in (0, h - th) for x0 in (0, w - tw)]
        if self.small_faces and max(h, w) > 2 * _FINE_TILE_PX:
            # faces of 50-100 px in a large photo (a group, two portraits side by side): fine tiles,
            # half overlapping, under 256 px so that the detector does not tile them again
            tiles += [(x0, y0, min(_FINE_TILE_PX, w), min(_FINE_TILE_PX, h))
                      for y0 in _starts(h, _FINE_TILE_PX) for x0 in _starts(w, _FINE_TILE_PX)]
        for x0, y0, tw, th in tiles:
            for d in detector(rgb[y0:y0 + th, x0:x0 + tw]):
                candidates.append(Detection(
                    box=(d.box[0] + x0, d.box[1] + y0, d.box[2] + x0, d.box[3] + y0),
                    keypoints=d.keypoints + np.array([x0, y0], np.float32), score=d.score))
        kept: list[tuple[tuple[float, float, float, float], float]] = []
        for det in sorted(candidates, key=lambda d: -d.score):
            if any(_iou(det.box, box) > 0.3 for box, _ in kept):
                continue
            roi = det.roi()
            presence = 0.0
            for _ in range(2):  # a second pass on the mesh's own region, as the tracker settles
                if roi.size < 8:
                    break
                points, presence = mesh(rgb, roi)
                roi = roi_from_landmarks(points)
            if presence >= _MIN_PRESENCE:
                kept.append((det.box, det.score))
        return kept

    def embed(self, rgb: np.ndarray) -> list[FaceEmbedding]:
        """One `FaceEmbedding` per face found, left to right; an empty list when there is none."""
        rgb = _as_rgb(rgb)
        h, w = rgb.shape[:2]
        out = []
        for (x0, y0, x1, y1), score in self._detect(rgb):
            # clip to the image: BlazeFace boxes may overhang the border for faces at the edge
            left, top = round(max(0.0, x0)), round(max(0.0, y0))
            right, bottom = round(min(w - 1.0, x1)), round(min(h - 1.0, y1))
            if right - left < 4 or bottom - top < 4:
                continue
            shape = self._shape(rgb, self._dlib.rectangle(left, top, right, bottom))
            vector = np.array(self._descriptor.compute_face_descriptor(rgb, shape), dtype=np.float32)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            out.append(FaceEmbedding(vector=vector, box=(float(x0), float(y0), float(x1), float(y1)),
                                     landmarks=points, score=float(score)))
        return out

    def embed_one(self, rgb: np.ndarray, face: int | None = None, *, name: str = "image") -> FaceEmbedding:
        """The one face in ``rgb``, or face number ``face`` (1-based, left to right) when there are several.

        No face raises `NoFaceError`; several faces without ``face`` raise `InputError` saying how
        many there are and asking which (``--face N``); a ``face`` beyond the count raises too.
        ``name`` starts the error messages (a file name, say).
        """
        faces = self.embed(rgb)
        return pick_face(faces, face, name)


def pick_face(faces: list[FaceEmbedding], face: int | None, name: str = "image") -> FaceEmbedding:
    """Face number ``face`` (1-based, left to right) of ``faces``, or the only one; see `FaceEmbedder.embed_one`."""
    if not faces:
        raise NoFaceError(f"{name}: expected a face, found none")
    if face is None:
        if len(faces) > 1:
            raise InputError(
                f"{name}: expected one face, found {len(faces)}; choose one with --face N"
                f" (1 to {len(faces)}, numbered left to right)"
            )
        return faces[0]
    if isinstance(face, bool) or not isinstance(face, (int, np.integer)) or not 1 <= face <= len(faces):
        raise InputError(f"{name}: --face expected a number from 1 to {len(faces)} (left to right), got {face!r}")
    return faces[int(face) - 1]
