"""Face embeddings: the real dlib models from the face-recognition-models package, real images.

Expected boxes come from dlib's own HOG detector, never from the code under test.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import skimage.data

from facewire.errors import InputError, ModelError, NoFaceError
from facewire.trust import embedding
from facewire.trust.embedding import (
    EMBEDDING_DIM,
    MODEL_FILES,
    FaceEmbedder,
    face_distance,
    verify_models,
)
from facewire.trust.registry import DEFAULT_THRESHOLD


@pytest.fixture(scope="module")
def embedder(models) -> FaceEmbedder:  # ``models``: skips (fails under CI) without the BlazeFace models
    return FaceEmbedder()


@pytest.fixture(scope="module")
def small(models) -> FaceEmbedder:
    return FaceEmbedder(small_faces=True)


@pytest.fixture(scope="module")
def hog() -> FaceEmbedder:
    return FaceEmbedder(detector="dlib")


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


def test_public_surface():
    assert set(embedding.__all__) <= set(dir(embedding))


def test_astronaut_gives_one_face_where_dlib_finds_it(embedder, hog, astronaut):
    faces = embedder.embed(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.vector.shape == (EMBEDDING_DIM,) and face.vector.dtype == np.float32
    assert not face.vector.flags.writeable and not face.landmarks.flags.writeable
    assert face.landmarks.shape == (5, 2)
    reference = max(hog.detect(astronaut), key=lambda f: f[1])[0]  # HOG also fires weakly on her suit
    assert _iou(face.box, reference) > 0.6
    x0, y0, x1, y1 = face.box
    assert np.all((face.landmarks[:, 0] > x0) & (face.landmarks[:, 0] < x1))
    assert np.all((face.landmarks[:, 1] > y0) & (face.landmarks[:, 1] < y1))


def test_same_face_mirrored_or_recompressed_stays_close(embedder, astronaut):
    import cv2

    base = embedder.embed_one(astronaut)
    mirrored = embedder.embed_one(np.ascontiguousarray(astronaut[:, ::-1]))
    ok, buf = cv2.imencode(".jpg", astronaut, [cv2.IMWRITE_JPEG_QUALITY, 40])
    assert ok
    jpeg = embedder.embed_one(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))
    assert base.distance(mirrored) < DEFAULT_THRESHOLD
    assert base.distance(jpeg) < DEFAULT_THRESHOLD
    assert base.distance(base) == 0.0
    assert face_distance(base.vector, jpeg.vector) == pytest.approx(jpeg.distance(base.vector))


def test_detector_choice_barely_moves_the_embedding(embedder, hog, astronaut):
    ours = embedder.embed_one(astronaut)
    theirs = max(hog.embed(astronaut), key=lambda f: f.score)
    assert ours.distance(theirs) < 0.1


def test_two_faces_are_ordered_left_to_right_and_embed_one_asks_which(small, astronaut):
    other = skimage.data.camera()
    other = np.repeat(other[:, :, None], 3, axis=2)
    pair = np.concatenate([other, astronaut], axis=1)  # cameraman left (a 65 px face), astronaut right
    faces = small.embed(pair)
    assert len(faces) == 2
    assert faces[0].box[2] <= 512 < faces[1].box[0]
    alone = small.embed_one(astronaut)
    assert faces[1].distance(alone) < DEFAULT_THRESHOLD < faces[0].distance(alone)
    with pytest.raises(InputError, match=r"found 2; choose one with --face N \(1 to 2"):
        small.embed_one(pair)
    assert small.embed_one(pair, face=2).distance(alone) == pytest.approx(faces[1].distance(alone))
    with pytest.raises(InputError, match="from 1 to 2"):
        small.embed_one(pair, face=3)


def test_two_portraits_side_by_side_need_no_fine_pass(embedder, astronaut):
    pair = np.concatenate([astronaut, np.ascontiguousarray(astronaut[:, ::-1])], axis=1)
    faces = embedder.embed(pair)
    assert len(faces) == 2
    assert faces[0].box[2] <= 512 <= faces[1].box[0]


@pytest.mark.parametrize("name", ["blank", "chelsea", "coffee"])
def test_no_face(embedder, name):
    rgb = np.full((240, 320, 3), 128, np.uint8) if name == "blank" else getattr(skimage.data, name)()
    assert embedder.embed(rgb) == []
    with pytest.raises(NoFaceError, match="expected a face, found none"):
        embedder.embed_one(rgb, name="still.png")


def test_grey_and_non_contiguous_inputs_work(embedder, astronaut):
    grey = np.ascontiguousarray(astronaut.mean(axis=2).astype(np.uint8))
    assert len(embedder.embed(grey)) == 1
    strided = np.zeros((512, 1024, 3), np.uint8)
    strided[:, ::2] = astronaut
    assert len(embedder.embed(strided[:, ::2])) == 1


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64, 3), np.float32), "expected dtype uint8, got float32"),
        (np.zeros((64, 64, 4), np.uint8), r"expected shape H×W×3 \(RGB\), got \(64, 64, 4\)"),
        (np.zeros((4, 64, 3), np.uint8), "at least 8×8"),
        ([[0, 1], [2, 3]], "got list"),
    ],
)
def test_bad_images_are_input_errors(embedder, image, message):
    with pytest.raises(InputError, match=message):
        embedder.embed(image)


def test_bad_options():
    with pytest.raises(InputError, match="'facewire' or 'dlib'"):
        FaceEmbedder(detector="hog")
    with pytest.raises(InputError, match="min_score"):
        FaceEmbedder(min_score=1.5)


def _copy_models(tmp_path):
    source = embedding.model_dir()
    for name, _ in MODEL_FILES.values():
        shutil.copyfile(source / name, tmp_path / name)
    return tmp_path


def test_models_are_verified_by_sha256(tmp_path):
    folder = _copy_models(tmp_path)
    assert set(verify_models(folder)) == set(MODEL_FILES)
    name = MODEL_FILES["descriptor"][0]
    with open(folder / name, "r+b") as f:  # one flipped byte in the middle of the weights
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelError, match=rf"{name}: expected SHA-256 {MODEL_FILES['descriptor'][1]}, got [0-9a-f]{{64}}"):
        FaceEmbedder(folder)


def test_missing_model_is_a_model_error(tmp_path):
    folder = _copy_models(tmp_path)
    (folder / MODEL_FILES["shape"][0]).unlink()
    with pytest.raises(ModelError, match="expected the dlib shape model, found none"):
        verify_models(folder)
