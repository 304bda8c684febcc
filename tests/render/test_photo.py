"""The photo avatar on real faces (skimage's astronaut, a GRID speaker): the mouth opens onto a dark
cavity, one eye closes alone, the irises follow the gaze, the tongue comes out, the head turns, the
background stays bit for bit; bad photos fail clearly."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError, NoFaceError
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.render.photo import YAW_LIMIT_DEG, PhotoAvatar, PhotoRenderer, load_photo
from facewire.render.photo_basis import LOWER_LID, UPPER_LID

SIZE = (192, 192)


def _frame(head: HeadPose | None = None, gaze: Gaze | None = None, **weights: float) -> FaceFrame:
    w = np.zeros(arkit.COUNT, np.float32)
    for name, value in weights.items():
        w[arkit.INDEX[name]] = value
    return FaceFrame(t_ns=0, seq=0, weights=w, head=head or HeadPose(), gaze=gaze or Gaze())


@pytest.fixture(scope="module")
def astronaut_avatar(astronaut, models) -> PhotoAvatar:
    return PhotoAvatar.from_image(astronaut, models=models, name="astronaut")


@pytest.fixture(scope="module")
def renderer(astronaut_avatar) -> PhotoRenderer:
    return PhotoRenderer(astronaut_avatar, SIZE)


def _box(points: np.ndarray, pad: float, shape: tuple[int, int]) -> tuple[slice, slice]:
    """A box around landmark pixels, grown by ``pad`` of its size."""
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    dx, dy = (x1 - x0) * pad + 2, (y1 - y0) * pad + 2
    h, w = shape
    return (slice(max(0, int(y0 - dy)), min(h, int(y1 + dy) + 1)), slice(max(0, int(x0 - dx)), min(w, int(x1 + dx) + 1)))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _far_background(shape: tuple[int, int]) -> np.ndarray:
    """Columns at the picture's left and right edges: far outside the face's warp."""
    mask = np.zeros(shape, bool)
    edge = shape[1] // 8
    mask[:, :edge] = mask[:, -edge:] = True
    return mask


def test_neutral_frame_is_the_photo(renderer):
    out = renderer.render(_frame())
    assert out.shape == (SIZE[1], SIZE[0], 3) and out.dtype == np.uint8
    assert np.array_equal(out, renderer.base)


def test_jaw_open_shows_a_dark_mouth(renderer):
    neutral = renderer.render(_frame())
    opened = renderer.render(_frame(jawOpen=1.0))
    lm = renderer.landmarks
    mouth = _box(lm[[61, 291, 13, 14, 17, 0], :2], 0.3, neutral.shape[:2])
    change = np.abs(opened[mouth].astype(int) - neutral[mouth].astype(int)).mean()
    assert change > 8, change
    dark = lambda img: int((_luma(img[mouth]) < 50).sum())
    assert dark(opened) > dark(neutral) + 20, (dark(opened), dark(neutral))
    # the jaw moves the lower face only: the eyes stay as they were
    eyes = _box(lm[[33, 133, 263, 362], :2], 0.2, neutral.shape[:2])
    assert np.array_equal(opened[eyes], neutral[eyes])


def test_blink_left_closes_the_subjects_left_eye_only(renderer):
    neutral = renderer.render(_frame())
    blink = renderer.render(_frame(eyeBlinkLeft=1.0))
    lm = renderer.landmarks
    left = _box(lm[[263, 362, 386, 374], :2], 0.15, neutral.shape[:2])  # the subject's left eye
    right = _box(lm[[33, 133, 159, 145], :2], 0.15, neutral.shape[:2])
    assert lm[263, 0] > lm[33, 0]  # the subject's left is the picture's right
    assert np.abs(blink[left].astype(int) - neutral[left].astype(int)).mean() > 6
    assert np.array_equal(blink[right], neutral[right])
    # the closed lid is skin: no dark iris left in the middle of the eye
    iris = _box(lm[[473], :2], 0.0, neutral.shape[:2])
    assert _luma(blink[iris]).mean() > _luma(neutral[iris]).mean() + 15


def test_background_far_from_the_face_stays_identical(renderer):
    neutral = renderer.render(_frame())
    far = _far_background(neutral.shape[:2])
    for frame in (_frame(jawOpen=1.0, mouthSmileLeft=1.0, mouthSmileRight=1.0), _frame(eyeBlinkRight=1.0),
                  _frame(HeadPose(yaw_deg=25.0, pitch_deg=15.0, roll_deg=-20.0), jawOpen=0.5)):
        out = renderer.render(frame)
        assert np.array_equal(out[far], neutral[far])
        assert not np.array_equal(out, neutral)


def test_head_yaw_moves_the_nose(renderer):
    neutral = renderer.render(_frame())
    nose_at = {}
    for yaw in (-20.0, 20.0):
        out = renderer.render(_frame(HeadPose(yaw_deg=yaw)))
        nose = _box(renderer.landmarks[[1, 4, 5, 195], :2], 0.5, neutral.shape[:2])
        assert np.abs(out[nose].astype(int) - neutral[nose].astype(int)).mean() > 5
        nose_at[yaw] = renderer.pose(_frame(HeadPose(yaw_deg=yaw)))[1][1, 0]
    assert abs(nose_at[20.0] - nose_at[-20.0]) > 0.03 * SIZE[0]  # opposite turns, opposite sides
    centre = renderer.landmarks[1, 0]
    assert (nose_at[20.0] - centre) * (nose_at[-20.0] - centre) < 0


def test_head_pose_beyond_the_range_is_clamped(renderer):
    at_limit = renderer.render(_frame(HeadPose(yaw_deg=YAW_LIMIT_DEG)))
    beyond = renderer.render(_frame(HeadPose(yaw_deg=YAW_LIMIT_DEG + 40)))
    assert np.array_equal(at_limit, beyond)


def test_smile_moves_the_mouth_corners_up(renderer):
    _local, image, _ = renderer.pose(_frame(mouthSmileLeft=1.0, mouthSmileRight=1.0))
    rest = renderer.landmarks
    for corner in (61, 291):
        assert image[corner, 1] < rest[corner, 1] - 1.0  # image y grows downwards
    assert image[291, 0] - image[61, 0] > rest[291, 0] - rest[61, 0]  # and wider


def test_a_grid_speaker(shared_file, models):
    import av

    with av.open(str(shared_file("data/video/grid/bbaf2n.mpg"))) as container:
        rgb = next(container.decode(video=0)).to_ndarray(format="rgb24")
    r = PhotoRenderer(PhotoAvatar.from_image(rgb, models=models), (128, 128))
    neutral, opened = r.render(_frame()), r.render(_frame(jawOpen=1.0))
    assert np.array_equal(neutral, r.base)
    mouth = _box(r.landmarks[[61, 291, 13, 14, 17], :2], 0.3, neutral.shape[:2])
    assert int((_luma(opened[mouth]) < 50).sum()) > int((_luma(neutral[mouth]) < 50).sum()) + 8


# -- the eyes' gaze and the tongue -------------------------------------------------------------------
EYES = {"Left": (263, 362), "Right": (33, 133)}  # (outer, inner) corners; the subject's left is the picture's right


@pytest.fixture(scope="module")
def eye_renderer(astronaut_avatar) -> PhotoRenderer:
    return PhotoRenderer(astronaut_avatar, (320, 320))  # the irises ~10 px across: room to see them move


def _opening(lm: np.ndarray, side: str) -> np.ndarray:
    outer, inner = EYES[side]
    return np.vstack([lm[[outer]], lm[list(UPPER_LID[side])], lm[[inner]], lm[list(LOWER_LID[side])[::-1]]])[:, :2]


def _iris_centroid(rgb: np.ndarray, lm: np.ndarray, side: str) -> np.ndarray:
    """(x, y) of the dark pixels' centre inside the photo's eye opening: the iris and pupil."""
    mask = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(_opening(lm, side)).astype(np.int32)], 1)
    luma = _luma(rgb)
    inside = mask.astype(bool)
    dark = np.clip(np.median(luma[inside]) - luma, 0, None) * inside
    ys, xs = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]]
    return np.array([(dark * xs).sum(), (dark * ys).sum()]) / dark.sum()


def _inside_eye_box(point: np.ndarray, lm: np.ndarray, side: str) -> bool:
    (x0, y0), (x1, y1) = _opening(lm, side).min(0), _opening(lm, side).max(0)
    return bool(x0 <= point[0] <= x1 and y0 <= point[1] <= y1)


def test_gaze_yaw_moves_both_irises_towards_the_subjects_left(eye_renderer):
    r, lm = eye_renderer, eye_renderer.landmarks
    neutral = r.render(_frame())
    looking = r.render(_frame(gaze=Gaze(left_yaw_deg=20.0, right_yaw_deg=20.0)))
    away = r.render(_frame(gaze=Gaze(left_yaw_deg=-20.0, right_yaw_deg=-20.0)))
    for side in ("Left", "Right"):
        before, after = _iris_centroid(neutral, lm, side), _iris_centroid(looking, lm, side)
        assert after[0] > before[0] + 1.0, (side, before, after)  # the subject's left is the picture's right
        assert _inside_eye_box(after, lm, side)
        assert _iris_centroid(away, lm, side)[0] < before[0] - 1.0
    # the gaze redraws inside the eyes only: the brows, the nose and the background stay
    rest = np.ones(neutral.shape[:2], bool)
    for side in ("Left", "Right"):
        rest[_box(_opening(lm, side), 0.15, neutral.shape[:2])] = False
    assert np.array_equal(looking[rest], neutral[rest])


def test_gaze_pitch_up_moves_the_irises_up(eye_renderer):
    r, lm = eye_renderer, eye_renderer.landmarks
    neutral = r.render(_frame())
    up = r.render(_frame(gaze=Gaze(left_pitch_deg=20.0, right_pitch_deg=20.0)))
    for side in ("Left", "Right"):
        before, after = _iris_centroid(neutral, lm, side), _iris_centroid(up, lm, side)
        assert after[1] < before[1] - 0.5, (side, before, after)  # image y grows downwards
        assert _inside_eye_box(after, lm, side)


def test_eye_look_out_left_turns_the_left_eye_outwards_alone(eye_renderer):
    r, lm = eye_renderer, eye_renderer.landmarks
    neutral = r.render(_frame())
    out = r.render(_frame(eyeLookOutLeft=1.0))
    before, after = _iris_centroid(neutral, lm, "Left"), _iris_centroid(out, lm, "Left")
    assert after[0] > before[0] + 1.0, (before, after)
    right = _box(_opening(lm, "Right"), 0.15, neutral.shape[:2])
    assert np.array_equal(out[right], neutral[right])
    # the right eye's "out" is the subject's right: the picture's left
    right_out = r.render(_frame(eyeLookOutRight=1.0))
    assert _iris_centroid(right_out, lm, "Right")[0] < _iris_centroid(neutral, lm, "Right")[0] - 1.0


def test_a_wild_gaze_keeps_the_iris_in_the_eye(eye_renderer):
    r, lm = eye_renderer, eye_renderer.landmarks
    neutral = r.render(_frame())
    far = r.render(_frame(gaze=Gaze(left_yaw_deg=89.0, right_yaw_deg=89.0, left_pitch_deg=-89.0)))
    for side in ("Left", "Right"):
        centroid = _iris_centroid(far, lm, side)
        assert _inside_eye_box(centroid, lm, side)
        assert centroid[0] > _iris_centroid(neutral, lm, side)[0] + 1.0  # turned, as far as the opening lets it


def test_tongue_out_shows_past_the_lower_lip(renderer):
    lm = renderer.landmarks
    opened = renderer.render(_frame(jawOpen=0.7))
    tongue = renderer.render(_frame(jawOpen=0.7, tongueOut=1.0))
    below = _box(lm[[17, 84, 314], :2], 0.4, opened.shape[:2])  # the lower lip's outside, above the chin
    red = lambda img: img[below][..., 0].astype(int) - img[below][..., 1].astype(int)
    assert (red(tongue) - red(opened)).mean() > 5
    # shut, the jaw holds it in
    assert np.array_equal(renderer.render(_frame(tongueOut=1.0)), renderer.base)


# -- bad photos -----------------------------------------------------------------------------------
def test_a_photo_without_a_face(models):
    import skimage.data

    with pytest.raises(NoFaceError, match=r"photo image: expected a face, found none"):
        PhotoAvatar.from_image(skimage.data.coffee(), models=models)


def test_two_faces_ask_which(astronaut, models, tmp_path):
    two = np.hstack([astronaut, astronaut[:, ::-1]])
    path = tmp_path / "two.png"
    cv2.imwrite(str(path), two[:, :, ::-1])
    with pytest.raises(InputError, match=r"found 2 faces; choose one with --face N"):
        PhotoAvatar.from_image(path, models=models)
    right = PhotoAvatar.from_image(path, face=2, models=models)
    assert right.faces == 2 and right.face == 2 and right.box[0] > astronaut.shape[1]
    assert right.asset_sha256 is not None and len(right.asset_sha256) == 64
    with pytest.raises(InputError, match=r"--face: expected a face number from 1 to 2, got 3"):
        PhotoAvatar.from_image(path, face=3, models=models)


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header claims ``width``×``height`` (the pixels never come)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 30_000, 30_000)
    with pytest.raises(InputError, match=r"bomb.png: expected at most 100 megapixels, got 900 MP"):
        load_photo(bomb)


def test_a_large_photo_is_downscaled(astronaut, tmp_path):
    big = tmp_path / "big.jpg"
    cv2.imwrite(str(big), cv2.resize(astronaut, (2600, 2600))[:, :, ::-1])
    assert load_photo(big).shape == (2048, 2048, 3)
    assert load_photo(big, max_side=640).shape == (640, 640, 3)


@pytest.mark.parametrize("content, needle", [(b"this is not a picture", "not an image"), (b"", "empty file")])
def test_unreadable_photos(tmp_path, content, needle):
    bad = tmp_path / "me.jpg"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=needle):
        PhotoAvatar.from_image(bad)
    with pytest.raises(InputError, match="no such file"):
        PhotoAvatar.from_image(tmp_path / "missing.jpg")


def test_bad_pixels_and_sizes(astronaut_avatar):
    with pytest.raises(InputError, match=r"expected uint8 H×W×3 RGB"):
        PhotoAvatar.from_image(np.zeros((64, 64), np.uint8))
    with pytest.raises(InputError, match=r"size: expected 16..8192 pixels a side, got 8x8"):
        PhotoRenderer(astronaut_avatar, (8, 8))
