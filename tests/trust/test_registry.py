"""The likeness registry: real SQLite files in tmp, real faces (GRID speakers, skimage's astronaut).

GRID speakers are told apart by `facewire.bench.likeness.SPEAKERS` (established by eye): each
clip is a different person, so frames of one clip must match its likeness and no other.
"""

from __future__ import annotations

import sqlite3
import stat
import struct
import zlib

import cv2
import numpy as np
import pytest

from facewire.errors import InputError, NoFaceError
from facewire.trust import registry as registry_module
from facewire.trust.embedding import FaceEmbedder
from facewire.trust.registry import (
    DEFAULT_THRESHOLD,
    LikenessRegistry,
    Match,
    read_frames,
)

# bbaf2n: a man; brbk7n and lrwp9a: the two most alike speakers (young women with brown hair)
CLIPS = ("bbaf2n", "brbk7n", "lrwp9a")


@pytest.fixture(scope="module")
def embedder(models) -> FaceEmbedder:
    return FaceEmbedder()


@pytest.fixture
def reg(tmp_path, embedder):
    with LikenessRegistry(tmp_path / "home" / "likeness.db", embedder=embedder) as r:
        yield r


@pytest.fixture
def astronaut_png(tmp_path, astronaut):
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    return path


def test_public_surface():
    assert set(registry_module.__all__) <= set(dir(registry_module))


def test_same_person_in_other_frames_matches_and_other_people_do_not(reg, shared_file, embedder):
    enrolled = {}
    for stem in CLIPS:
        clip = shared_file(f"data/video/grid/{stem}.mpg")
        # enroll from the first second (two samples), probe with the last frame of the clip (~3 s)
        lk = reg.register(stem, clip, max_samples=2, every_s=0.5)
        assert len(lk.samples) == 2 and lk.subject == stem
        enrolled[stem] = lk
    for stem in CLIPS:
        frames = list(read_frames(shared_file(f"data/video/grid/{stem}.mpg"), every_s=0.0, max_frames=100))
        t_ns, last = frames[-1]
        assert t_ns > 2_500_000_000
        probe = embedder.embed_one(last)
        match = reg.match(probe)
        assert match is not None, f"{stem}: its own later frame did not match"
        assert match.subject == stem and match.likeness_id == enrolled[stem].id
        assert match.distance <= DEFAULT_THRESHOLD == match.threshold
        for other in CLIPS:
            if other != stem:
                others = np.vstack([enrolled[other].mean[None], enrolled[other].samples])
                assert np.linalg.norm(others - probe.vector, axis=1).min() > DEFAULT_THRESHOLD
        found = reg.identify(last)
        assert found is not None and found.subject == stem and found.face == 1


def test_register_list_get_remove_and_reopen(tmp_path, embedder, astronaut_png, astronaut):
    path = tmp_path / "likeness.db"
    with LikenessRegistry(path, embedder=embedder) as reg:
        assert reg.list() == [] and reg.match(np.zeros(128, np.float32)) is None
        lk = reg.register("eileen", astronaut_png, name="Eileen Collins")
        assert lk.id.startswith("lk_") and len(lk.id) == 15
        assert lk.asset_sha256 == registry_module._file_sha256(astronaut_png)
        assert len(lk.samples) == 1 and np.allclose(lk.mean, lk.samples[0])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with LikenessRegistry(path, embedder=embedder) as reg:
        (again,) = reg.list()
        assert (again.id, again.subject, again.name, again.asset_sha256) == (lk.id, "eileen", "Eileen Collins",
                                                                             lk.asset_sha256)
        assert np.array_equal(again.mean, lk.mean) and again.embedding_sha256 == lk.embedding_sha256
        assert reg.get(lk.id).created_ns == lk.created_ns
        m = reg.identify(astronaut)
        assert isinstance(m, Match) and m.likeness_id == lk.id and m.embedding_sha256 == lk.embedding_sha256
        assert m.distance < 0.05
        assert reg.remove(lk.id).id == lk.id
        assert reg.list() == [] and reg.identify(astronaut) is None
        with pytest.raises(InputError, match="expected a registered id"):
            reg.remove(lk.id)
    rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM samples").fetchone()
    assert rows == (0,)  # samples went with their likeness


def test_one_face_one_subject(reg, astronaut_png, tmp_path, astronaut):
    reg.register("eileen", astronaut_png)
    with pytest.raises(InputError, match="already registered for 'eileen'"):
        reg.register("eileen", astronaut_png)
    mirrored = tmp_path / "mirrored.jpg"
    cv2.imwrite(str(mirrored), cv2.cvtColor(np.ascontiguousarray(astronaut[:, ::-1]), cv2.COLOR_RGB2BGR))
    with pytest.raises(InputError, match=r"matches lk_[0-9a-f]{12} of subject 'eileen'.*one subject only"):
        reg.register("mallory", mirrored)
    second = reg.register("eileen", mirrored)  # the same person may have several likenesses
    assert len(reg.list()) == 2 and second.subject == "eileen"


def test_samples_of_two_people_are_refused(reg, embedder, astronaut, shared_file):
    frame = next(read_frames(shared_file("data/video/grid/bbaf2n.mpg")))[1]
    vectors = [embedder.embed_one(astronaut).vector, embedder.embed_one(frame).vector]
    with pytest.raises(InputError, match="expected every sampled face to be the same person"):
        reg.add("x", vectors, asset_sha256="0" * 64)
    assert reg.list() == []


def test_threshold_decides(reg, embedder, astronaut, astronaut_png):
    reg.register("eileen", astronaut_png)
    dark = (255.0 * (astronaut / 255.0) ** 2.2).astype(np.uint8)
    probe = embedder.embed_one(dark)
    d = reg.closest(probe).distance
    assert 0 < d < DEFAULT_THRESHOLD
    assert reg.match(probe, threshold=d * 0.99) is None
    assert reg.match(probe, threshold=d * 1.01).distance == pytest.approx(d)


def test_no_face_and_bad_files(reg, tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 300, 3), 90, np.uint8))
    with pytest.raises(NoFaceError, match="blank.png: expected a face, found none"):
        reg.register("x", blank)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 8)
    with pytest.raises(InputError, match="garbage.jpg: not a video or image"):
        reg.register("x", garbage)
    with pytest.raises(InputError, match="missing.png: no such file"):
        reg.register("x", tmp_path / "missing.png")
    with pytest.raises(InputError, match="subject: expected a non-empty string"):
        reg.register("  ", blank)
    assert reg.identify(np.zeros((100, 100, 3), np.uint8)) is None


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header claims width×height but whose data is a few rows: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width * 3 + 1) * 4, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("side", "message"), [(12_000, r"got 12000×12000 \(144 MP\)"),
                                               (40_000, r"got 1600 MP \(a possible decompression bomb\)")])
def test_oversized_stills_are_refused_before_decoding(tmp_path, side, message):
    path = tmp_path / "huge.png"
    _png_header_only(path, side, side)
    with pytest.raises(InputError, match=rf"expected an image of at most 100 megapixels, {message}"):
        list(read_frames(path))


def test_large_photo_is_downscaled_and_still_matches(reg, tmp_path, astronaut, astronaut_png):
    reg.register("eileen", astronaut_png)
    big = cv2.resize(astronaut, (5000, 5000), interpolation=cv2.INTER_LINEAR)
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    (_t_ns, rgb), = read_frames(path)
    assert max(rgb.shape[:2]) <= 4096
    m = reg.identify(rgb)
    assert m is not None and m.subject == "eileen"


def test_a_file_that_is_not_a_registry(tmp_path):
    path = tmp_path / "likeness.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="expected a facewire likeness registry"):
        LikenessRegistry(path)
    with pytest.raises(InputError, match="threshold"):
        LikenessRegistry(tmp_path / "other.db", threshold=0)


def test_corrupt_vector_is_an_input_error(reg, astronaut_png):
    lk = reg.register("eileen", astronaut_png)
    with sqlite3.connect(reg.path) as db:
        db.execute("UPDATE likenesses SET mean = ? WHERE id = ?", (b"\x00" * 10, lk.id))
    with pytest.raises(InputError, match=rf"likeness {lk.id}: expected a 128-float embedding"):
        reg.list()
