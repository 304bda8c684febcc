"""The likeness registry: whose faces are registered (SQLite in the trust home), and whether a face is one of them.

Each likeness holds a subject id, a display name, the SHA-256 of the photo or video it was made
from, the face embeddings sampled from it (`facewire.trust.embedding`: dlib's 128-d ResNet
descriptor) and their mean. A face *matches* a likeness when its Euclidean distance to the closest
of that likeness's vectors is at most the threshold.

Threshold: ``DEFAULT_THRESHOLD = 0.50``. Measured by ``facewire bench likeness`` (facewire's
BlazeFace detector + dlib's 5-point alignment) on the six GRID speakers (one clip each, 15 frames
per clip), skimage's astronaut and cameraman, and degraded copies (JPEG q=30, half size, mirrored,
darker) of the astronaut and of one frame per speaker, 120 faces in all:

==================  =====  ===========================================
pairs               count  distance median [p5, p95] (min–max)
==================  =====  ===========================================
genuine             1,036  0.177 [0.109, 0.247]  (0.062–0.361)
impostor            6,104  0.794 [0.648, 0.899]  (0.576–0.953)
==================  =====  ===========================================

false-accept / false-reject: 0.40–0.55: 0 / 6,104 and 0 / 1,036; 0.60 (dlib's own LFW operating
point): 72 / 6,104 = 1.18 % false accepts (the two most alike speakers, young women with brown
hair, come as close as 0.576), 0 false rejects; 0.65: 5.16 % false accepts. 0.50 sits between the
farthest genuine pair (0.361) and the closest impostor pair (0.576) with margins 0.139 and 0.076.
Enrolled from the first half of each clip, 48 / 48 later frames were identified and 6 / 6
unregistered faces rejected. The genuine pairs come from one recording session per person, so
they are closer than two photos taken years apart (dlib reports LFW genuine pairs up to ~0.6):
expect a real-world false-reject rate above the 0 measured here; pass ``threshold=`` (or
``--threshold``) to trade it, and re-run the benchmark on your own faces before changing it.

Which error matters: a false reject lets a registered person's face pass as unregistered (it then
needs an operator's signed self-attestation, not the person's grant); a false accept asks an
unregistered person for someone else's grant. `register` therefore refuses a face that matches a
*different* subject's likeness, so nobody can register another person's face as their own.

Consent is enforced by the caller in one step: ``match = registry.identify(rgb)``; when ``match``
is not ``None``, require a grant for ``match.subject`` (bound to ``match.likeness_id``,
``match.asset_sha256`` and ``match.embedding_sha256``) in the requested use context.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import secrets
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from ..errors import InputError, ModelError, NoFaceError, OutputError
from ..models import sha256_file as _file_sha256
from .embedding import EMBEDDING_DIM, MODEL_ID, FaceEmbedder, FaceEmbedding, pick_face

__all__ = [
    "DB_NAME",
    "DEFAULT_THRESHOLD",
    "MAX_PIXELS",
    "Likeness",
    "LikenessRegistry",
    "Match",
    "default_path",
    "read_frames",
]

#: Largest face distance that still counts as the same person (see the module docstring).
DEFAULT_THRESHOLD = 0.50

#: The registry's file name inside the trust home.
DB_NAME = "likeness.db"

#: Stills with more pixels than this are refused before decoding (a decompression bomb decodes a
#: small file into gigabytes); 100 MP is above any camera's photo, 10× a 4K frame.
MAX_PIXELS = 100_000_000

_SCHEMA_VERSION = "1"
_ID_PREFIX = "lk_"
_ID = re.compile(r"lk_[0-9a-f]{12}")
_TEXT_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def default_path(home: str | os.PathLike[str] | None = None) -> Path:
    """The registry file in the trust home (``home``, else ``$FACEWIRE_HOME``, else the user data dir)."""
    from .store import trust_home

    return trust_home(home).root / DB_NAME


# -- values ---------------------------------------------------------------------------------------
def _vector_sha256(vector: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(vector, dtype="<f4").tobytes()).hexdigest()


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float32)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class Likeness:
    """A registered face: who (``subject``), from what (``asset_sha256``), and its embeddings.

    ``mean`` is the mean of ``samples`` (n×128, one per sampled frame); ``created_ns`` is Unix
    time in nanoseconds; ``model`` names the embedding model.
    """

    id: str
    subject: str
    name: str | None
    asset_sha256: str
    created_ns: int
    model: str
    mean: np.ndarray = field(repr=False)
    samples: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _frozen(self.mean))
        object.__setattr__(self, "samples", _frozen(self.samples))

    @property
    def embedding_sha256(self) -> str:
        """SHA-256 of the mean embedding (float32 little-endian): what a consent grant binds to."""
        return _vector_sha256(self.mean)

    @property
    def created_iso(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_ns / 1e9))


@dataclass(frozen=True)
class Match:
    """A face that is a registered likeness: which one, how close, and under which threshold.

    ``face`` is the face's number in its image (1-based, left to right) and ``box`` its box in
    pixels, when the match came from `LikenessRegistry.identify`.
    """

    likeness_id: str
    subject: str
    name: str | None
    distance: float
    threshold: float
    asset_sha256: str
    embedding_sha256: str
    face: int | None = None
    box: tuple[float, float, float, float] | None = None


# -- reading photos and videos --------------------------------------------------------------------
def _still_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a still's header without decoding it, or None if Pillow cannot tell."""
    from PIL import Image as PilImage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilImage.DecompressionBombWarning)
        try:
            with PilImage.open(path) as im:
                return im.size
        except PilImage.DecompressionBombError as exc:
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            got = f"{int(pixels.group(1)) / 1e6:.0f} MP" if pixels else "far more"
            raise InputError(
                f"{path}: expected an image of at most {MAX_PIXELS // 1_000_000} megapixels, got {got}"
                " (a possible decompression bomb); refused before decoding"
            ) from exc
        except (OSError, ValueError, SyntaxError, EOFError):
            return None


def read_frames(path: str | os.PathLike[str], *, every_s: float = 0.5, max_frames: int = 8
                ) -> Iterator[tuple[int, np.ndarray]]:
    """(t_ns, RGB) of a still (one frame) or of a video (one frame every ``every_s``, at most ``max_frames``).

    Stills over `MAX_PIXELS` are refused from their header before any decoding; larger sides
    than `facewire.media.MAX_SIDE` are downscaled. Unreadable or corrupt files raise `InputError`.
    """
    from ..media import open_input

    p = Path(path).expanduser()
    if p.is_file():
        size = _still_size(p)
        if size is not None and size[0] * size[1] > MAX_PIXELS:
            raise InputError(
                f"{path}: expected an image of at most {MAX_PIXELS // 1_000_000} megapixels, got {size[0]}×{size[1]}"
                f" ({size[0] * size[1] / 1e6:.0f} MP); downscale it first"
            )
    source = open_input(p)
    try:
        next_ns = 0
        taken = 0
        for image in source:
            if image.t_ns < next_ns:
                continue
            yield image.t_ns, image.rgb
            taken += 1
            if taken >= max_frames:
                return
            next_ns = image.t_ns + round(every_s * 1e9)
    finally:
        source.close()


def _check_text(label: str, value: str | None, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{label}: expected a non-empty string, got {value!r}")
    if len(value) > _TEXT_MAX or _CONTROL.search(value):
        raise InputError(f"{label}: expected at most {_TEXT_MAX} printable characters, got {value[:40]!r}…")
    return value.strip()


# -- the registry ---------------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS likenesses (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    name TEXT,
    asset_sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    mean BLOB NOT NULL,
    created_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS likenesses_subject ON likenesses (subject);
CREATE TABLE IF NOT EXISTS samples (
    likeness_id TEXT NOT NULL REFERENCES likenesses (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    t_ns INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (likeness_id, idx)
);
"""


class LikenessRegistry:
    """The registered likenesses in one SQLite file; create with a path (see `default_path`).

    ``embedder`` is made on first need (a `FaceEmbedder` with facewire's detector).
    ``threshold`` is the largest distance that matches. One registry may be shared by threads.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        embedder: FaceEmbedder | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 2:
            raise InputError(f"threshold: expected a face distance between 0 and 2, got {threshold!r}")
        self.path = Path(path).expanduser()
        self.threshold = float(threshold)
        self._embedder = embedder
        self._lock = threading.RLock()
        self._index: tuple[np.ndarray, list[Likeness]] | None = None
        self._db = self._open()

    # -- storage ------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise InputError(f"{self.path}: expected a likeness registry file, got a folder")
        new = not self.path.exists()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise OutputError(f"{self.path}: cannot open the likeness registry ({exc})") from exc
        try:
            if new:
                os.chmod(self.path, 0o600)  # face embeddings are biometric data: private to the user
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            with db:
                db.execute("BEGIN IMMEDIATE")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
                if not meta:
                    db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                   [("schema", _SCHEMA_VERSION), ("model", MODEL_ID)])
                    meta = {"schema": _SCHEMA_VERSION, "model": MODEL_ID}
        except sqlite3.DatabaseError as exc:
            db.close()
            raise InputError(f"{self.path}: expected a facewire likeness registry (SQLite), got {exc}") from exc
        except OSError as exc:
            db.close()
            raise OutputError(f"{self.path}: cannot open the likeness registry ({exc.strerror or exc})") from exc
        if meta.get("schema") != _SCHEMA_VERSION:
            db.close()
            raise InputError(f"{self.path}: expected registry schema {_SCHEMA_VERSION}, got {meta.get('schema')!r}")
        if meta.get("model") != MODEL_ID:
            db.close()
            raise ModelError(f"{self.path}: holds embeddings of model {meta.get('model')!r}, expected {MODEL_ID}")
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _vector(self, blob: bytes, where: str) -> np.ndarray:
        if not isinstance(blob, bytes) or len(blob) != EMBEDDING_DIM * 4:
            raise InputError(f"{self.path}: {where}: expected a {EMBEDDING_DIM}-float embedding, got a corrupt value")
        return np.frombuffer(blob, dtype="<f4").astype(np.float32)

    def _rows(self, where: str = "", args: tuple = ()) -> list[Likeness]:
        try:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT id, subject, name, asset_sha256, created_ns, model, mean FROM likenesses {where}"
                    " ORDER BY created_ns, id", args).fetchall()
                samples: dict[str, list[np.ndarray]] = {}
                for lid, blob in self._db.execute("SELECT likeness_id, vector FROM samples ORDER BY likeness_id, idx"):
                    samples.setdefault(lid, []).append(self._vector(blob, f"likeness {lid} sample"))
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: cannot read the likeness registry ({exc})") from exc
        out = []
        for lid, subject, name, asset, created, model, mean in rows:
            vectors = samples.get(lid) or []
            out.append(Likeness(
                id=lid, subject=subject, name=name, asset_sha256=asset, created_ns=created, model=model,
                mean=self._vector(mean, f"likeness {lid}"),
                samples=np.stack(vectors) if vectors else np.zeros((0, EMBEDDING_DIM), np.float32),
            ))
        return out

    # -- public -------------------------------------------------------------------------------
    @property
    def embedder(self) -> FaceEmbedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = FaceEmbedder()
            return self._embedder

    def list(self) -> list[Likeness]:
        """Every registered likeness, oldest first."""
        return self._rows()

    def get(self, likeness_id: str) -> Likeness:
        """The likeness with this id, else `InputError`."""
        rows = self._rows("WHERE id = ?", (likeness_id,))
        if not rows:
            raise InputError(f"likeness: expected a registered id (lk_ and 12 hex digits), got {likeness_id!r};"
                             " `facewire likeness list` shows them")
        return rows[0]

    def remove(self, likeness_id: str) -> Likeness:
        """Delete a likeness and its samples; returns what was deleted."""
        with self._lock:
            gone = self.get(likeness_id)
            try:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute("DELETE FROM likenesses WHERE id = ?", (likeness_id,))
            except sqlite3.Error as exc:
                raise OutputError(f"{self.path}: cannot remove {likeness_id} ({exc})") from exc
            self._index = None
        return gone

    def add(
        self,
        subject: str,
        embeddings: list[FaceEmbedding] | list[np.ndarray],
        *,
        asset_sha256: str,
        name: str | None = None,
        times_ns: list[int] | None = None,
    ) -> Likeness:
        """Register already computed embeddings of one face (see `register` for files).

        Refused with `InputError`: no embeddings, samples that are not all one person, the same
        asset already registered for this subject, or a face that matches another subject's
        likeness (a face belongs to one subject only).
        """
        subject = _check_text("subject", subject, required=True)
        name = _check_text("name", name, required=False)
        if not isinstance(asset_sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", asset_sha256):
            raise InputError(f"asset_sha256: expected 64 lowercase hex digits, got {asset_sha256!r}")
        vectors = [e.vector if isinstance(e, FaceEmbedding) else np.asarray(e, np.float32) for e in embeddings]
        if not vectors:
            raise NoFaceError("likeness: expected at least one face embedding, got none")
        if any(v.shape != (EMBEDDING_DIM,) or not np.all(np.isfinite(v)) for v in vectors):
            raise InputError(f"likeness: expected embeddings of {EMBEDDING_DIM} finite floats")
        samples = np.stack(vectors).astype(np.float32)
        mean = samples.mean(axis=0)
        # every two samples must match each other, or the clip shows (or switched to) someone else
        spread = float(np.linalg.norm(samples[:, None] - samples[None], axis=2).max())
        if spread > self.threshold:
            raise InputError(
                f"likeness: expected every sampled face to be the same person, but two lie {spread:.2f} apart"
                f" (threshold {self.threshold:.2f}); use a clip or photo showing only that face"
            )
        times = list(times_ns) if times_ns is not None else [0] * len(vectors)
        if len(times) != len(vectors):
            raise InputError(f"times_ns: expected {len(vectors)} times, got {len(times)}")
        with self._lock:
            for other in self.list():
                if other.subject == subject and other.asset_sha256 == asset_sha256:
                    raise InputError(f"likeness: this asset is already registered for {subject!r} as {other.id}")
            clash = self._closest(mean, subject_other_than=subject)
            if clash is not None and clash.distance <= self.threshold:
                raise InputError(
                    f"likeness: this face matches {clash.likeness_id} of subject {clash.subject!r}"
                    f" (distance {clash.distance:.2f} ≤ {self.threshold:.2f}); a face can be registered"
                    " to one subject only"
                )
            likeness = Likeness(
                id=_ID_PREFIX + secrets.token_hex(6), subject=subject, name=name, asset_sha256=asset_sha256,
                created_ns=time.time_ns(), model=MODEL_ID, mean=mean, samples=samples,
            )
            try:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute(
                        "INSERT INTO likenesses (id, subject, name, asset_sha256, model, mean, created_ns)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (likeness.id, subject, name, asset_sha256, MODEL_ID, mean.astype("<f4").tobytes(),
                         likeness.created_ns))
                    self._db.executemany(
                        "INSERT INTO samples (likeness_id, idx, t_ns, vector) VALUES (?, ?, ?, ?)",
                        [(likeness.id, i, int(t), v.astype("<f4").tobytes())
                         for i, (t, v) in enumerate(zip(times, samples))])
            except sqlite3.Error as exc:
                raise OutputError(f"{self.path}: cannot register the likeness ({exc})") from exc
            self._index = None
        return likeness

    def register(
        self,
        subject: str,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        face: int | None = None,
        max_samples: int = 8,
        every_s: float = 0.5,
    ) -> Likeness:
        """Register the face in a photo, or in a video (one sample every ``every_s``, up to ``max_samples``).

        A photo must show one face, or ``face`` picks one (1-based, left to right); in a video the
        same rule applies to every sampled frame (frames without a face are skipped).
        """
        if not isinstance(max_samples, int) or max_samples < 1:
            raise InputError(f"max_samples: expected a positive integer, got {max_samples!r}")
        if not (isinstance(every_s, (int, float)) and math.isfinite(every_s) and every_s >= 0):
            raise InputError(f"every_s: expected seconds ≥ 0, got {every_s!r}")
        subject = _check_text("subject", subject, required=True)
        p = Path(path).expanduser()
        if not p.exists():
            raise InputError(f"{path}: no such file")
        if not p.is_file():
            raise InputError(f"{path}: expected a photo or video file, got a folder or special file")
        vectors: list[FaceEmbedding] = []
        times: list[int] = []
        frames = 0
        for t_ns, rgb in read_frames(p, every_s=every_s, max_frames=max_samples * 4):
            frames += 1
            faces = self.embedder.embed(rgb)
            if not faces:
                continue
            label = str(path) if frames == 1 and t_ns == 0 else f"{path} at {t_ns / 1e9:.2f} s"
            vectors.append(pick_face(faces, face, label))
            times.append(t_ns)
            if len(vectors) >= max_samples:
                break
        if not vectors:
            what = "a face" if frames <= 1 else f"a face in {frames} sampled frames"
            raise NoFaceError(f"{path}: expected {what}, found none")
        return self.add(subject, vectors, asset_sha256=_file_sha256(p), name=name, times_ns=times)

    def _vectors(self) -> tuple[np.ndarray, list[Likeness], np.ndarray]:
        """All stored vectors (means and samples) as one matrix, with their owners."""
        with self._lock:
            if self._index is None:
                likenesses = self.list()
                blocks, owners = [], []
                for i, lk in enumerate(likenesses):
                    block = np.vstack([lk.mean[None], lk.samples])
                    blocks.append(block)
                    owners.extend([i] * len(block))
                matrix = np.vstack(blocks) if blocks else np.zeros((0, EMBEDDING_DIM), np.float32)
                self._index = (matrix, likenesses, np.array(owners, dtype=np.int64))
            return self._index  # type: ignore[return-value]

    def _closest(self, vector: np.ndarray, subject_other_than: str | None = None) -> Match | None:
        matrix, likenesses, owners = self._vectors()
        if subject_other_than is not None:
            keep = np.array([likenesses[o].subject != subject_other_than for o in owners], dtype=bool)
            matrix, owners = matrix[keep] if len(keep) else matrix, owners[keep] if len(keep) else owners
        if len(matrix) == 0:
            return None
        distances = np.linalg.norm(matrix - np.asarray(vector, np.float32)[None], axis=1)
        i = int(np.argmin(distances))
        lk = likenesses[int(owners[i])]
        return Match(likeness_id=lk.id, subject=lk.subject, name=lk.name, distance=float(distances[i]),
                     threshold=self.threshold, asset_sha256=lk.asset_sha256, embedding_sha256=lk.embedding_sha256)

    def closest(self, embedding: FaceEmbedding | np.ndarray) -> Match | None:
        """The nearest registered likeness whatever the distance (``None`` only when the registry is empty)."""
        vector = embedding.vector if isinstance(embedding, FaceEmbedding) else embedding
        found = self._closest(vector)
        if found is not None and isinstance(embedding, FaceEmbedding):
            found = _with_face(found, None, embedding.box)
        return found

    def match(self, embedding: FaceEmbedding | np.ndarray, threshold: float | None = None) -> Match | None:
        """The registered likeness this face is, or ``None`` when none lies within the threshold."""
        found = self.closest(embedding)
        limit = self.threshold if threshold is None else float(threshold)
        if found is None or found.distance > limit:
            return None
        return dataclasses.replace(found, threshold=limit)

    def identify_all(self, rgb: np.ndarray) -> list[tuple[FaceEmbedding, Match | None]]:
        """Every face in an image (left to right) with its match, or ``None`` for an unregistered face."""
        out = []
        for number, emb in enumerate(self.embedder.embed(rgb), start=1):
            found = self.match(emb)
            out.append((emb, _with_face(found, number, emb.box) if found is not None else None))
        return out

    def identify(self, rgb: np.ndarray) -> Match | None:
        """Whether any face in the image is a registered likeness: the closest such match, else ``None``.

        This is the check a renderer or server runs before animating a face; an image without a
        face gives ``None``.
        """
        matches = [m for _, m in self.identify_all(rgb) if m is not None]
        return min(matches, key=lambda m: m.distance) if matches else None


def _with_face(match: Match, face: int | None, box: tuple[float, float, float, float]) -> Match:
    return dataclasses.replace(match, face=face, box=box)
