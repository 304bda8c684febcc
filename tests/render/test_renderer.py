"""The offscreen renderer on real pixels (EGL, llvmpipe or a GPU; no mocks): expressions change the
regions they should, head yaw turns the head, the GPU's rigid pose equals the CPU's, and the
default avatar (and the procedural probe head) match golden images within tolerances that allow
for llvmpipe-versus-GPU differences. ``FACEWIRE_UPDATE_GOLDEN=1`` rewrites the goldens.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.plugins import module_exists
from facewire.render.deform import Deformer
from facewire.render.probe import probe_head
from facewire.render.renderer import Camera, Renderer, parse_background

GOLDEN_DIR = Path(__file__).parent / "golden"
SIZE = (128, 128)
MAX_MEAN_ABS = 2.5  # of 255: llvmpipe and GPU rasterisers differ by rounding and edge coverage
MIN_PSNR_DB = 30.0


@pytest.fixture(scope="module", params=["probe", "default"])
def avatar(request):
    """The probe head always; facewire's default avatar as well once it is installed."""
    if request.param == "probe":
        return probe_head()
    if not module_exists("facewire.render.default_avatar"):
        pytest.skip("facewire.render.default_avatar is not installed")
    from facewire.render.default_avatar import default_avatar

    return default_avatar()


@pytest.fixture(scope="module")
def renderer(avatar):
    # one edge-smoothing method on every rasteriser, so the goldens compare like with like
    with Renderer(avatar, SIZE, lighting="vertex", antialias="edge") as r:
        yield r


def _frame(head: HeadPose | None = None, gaze: Gaze | None = None, **named: float) -> FaceFrame:
    w = np.zeros(arkit.COUNT, np.float32)
    for name, value in named.items():
        w[arkit.INDEX[name]] = value
    return FaceFrame(0, weights=w, head=head or HeadPose(), gaze=gaze or Gaze())


def _project(renderer: Renderer, points: np.ndarray) -> np.ndarray:
    """Pixel (column, row) of world points, top row 0."""
    w, h = renderer.size
    m = renderer.camera.view_proj(w / h)
    clip = np.c_[points, np.ones(len(points))] @ m.T
    ndc = clip[:, :2] / clip[:, 3:4]
    return np.stack([(ndc[:, 0] + 1) / 2 * w, (1 - ndc[:, 1]) / 2 * h], axis=1)


def _box(renderer: Renderer, points: np.ndarray, pad: int = 3) -> tuple[slice, slice]:
    px = _project(renderer, points)
    (c0, r0), (c1, r1) = px.min(axis=0), px.max(axis=0)
    h, w = renderer.size[1], renderer.size[0]
    return (slice(max(0, int(r0) - pad), min(h, int(r1) + pad + 1)),
            slice(max(0, int(c0) - pad), min(w, int(c1) + pad + 1)))


def _moved(avatar, name: str) -> np.ndarray:
    delta = np.linalg.norm(avatar.morph_targets[name], axis=1)
    return avatar.positions[delta > 0.5 * delta.max()]


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)


def test_picture_shape_and_background(renderer):
    rgb = renderer.render(_frame())
    assert rgb.shape == (SIZE[1], SIZE[0], 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    bg = np.round(np.array(parse_background("#2b3038")) * 255)
    np.testing.assert_array_equal(rgb[0, 0], bg)  # corners show the background
    assert np.abs(rgb[SIZE[1] // 2, SIZE[0] // 2].astype(int) - bg).sum() > 30  # the face fills the middle


def test_jaw_open_changes_the_mouth_region(renderer, avatar):
    neutral, opened = renderer.render(_frame()), renderer.render(_frame(jawOpen=1.0))
    d = _diff(neutral, opened) > 12
    rows, cols = _box(renderer, _moved(avatar, "jawOpen"), pad=4)
    inside = d[rows, cols].sum()
    assert inside > 40, f"jawOpen changed only {inside} pixels around the mouth"
    assert inside >= 0.8 * d.sum()  # and little elsewhere


def test_blink_left_closes_the_left_eye_only(renderer, avatar):
    neutral, blink = renderer.render(_frame()), renderer.render(_frame(eyeBlinkLeft=1.0))
    d = _diff(neutral, blink) > 12
    left = _box(renderer, avatar.positions[np.asarray(avatar.eye_vertices[0], np.intp)], pad=3)
    right = _box(renderer, avatar.positions[np.asarray(avatar.eye_vertices[1], np.intp)], pad=3)
    assert d[left].sum() > 20
    assert d[right].sum() == 0
    # the subject's left eye is on the image's right
    assert _project(renderer, np.array([avatar.eye_centers[0]]))[0, 0] > SIZE[0] / 2


def _left_eye_column(renderer, head: HeadPose) -> float:
    """Where the left eye is, found on pixels: the centroid of what blinking it changes."""
    d = _diff(renderer.render(_frame(head=head)), renderer.render(_frame(head=head, eyeBlinkLeft=1.0))) > 12
    rows, cols = np.nonzero(d)
    assert len(cols) > 10
    return float(cols.mean()), float(rows.mean())


def test_head_yaw_and_pitch_move_the_face_their_way(renderer):
    x0, y0 = _left_eye_column(renderer, HeadPose())
    xr, _ = _left_eye_column(renderer, HeadPose(yaw_deg=25))
    xl, _ = _left_eye_column(renderer, HeadPose(yaw_deg=-25))
    _, yu = _left_eye_column(renderer, HeadPose(pitch_deg=20))
    assert xr > x0 + 2 and xl < x0 - 2  # +yaw turns the face towards the image's right
    assert yu < y0 - 1  # +pitch raises it (rows grow downwards)


def test_gpu_pose_equals_cpu_pose(renderer, avatar):
    frame = _frame(jawOpen=0.6, mouthSmileLeft=0.8, head=HeadPose(18, -8, 6), gaze=Gaze(12, 6, 10, 6))
    gpu = renderer.render(frame)
    posed = Deformer(avatar).pose(frame)
    still = dataclasses.replace(avatar, positions=posed.positions, normals=posed.normals, morph_targets={})
    with Renderer(still, SIZE, camera=renderer.camera, lighting="vertex", antialias="edge") as cpu_renderer:
        cpu = cpu_renderer.render(_frame())
    assert np.abs(gpu.astype(int) - cpu.astype(int)).mean() < 0.5


def test_pixel_and_vertex_lighting_agree(avatar, renderer):
    with Renderer(avatar, SIZE, lighting="pixel", camera=renderer.camera, antialias="edge") as pixel:
        a = pixel.render(_frame(jawOpen=0.3))
    b = renderer.render(_frame(jawOpen=0.3))
    assert _psnr(a, b) > 24.0


@pytest.mark.parametrize("method", ["msaa", "edge"])
def test_antialiasing_softens_edges_and_nothing_else(avatar, renderer, method):
    """Against the aliased picture: more in-between shades along the silhouette, the same inside."""
    frame = _frame(head=HeadPose(yaw_deg=25))
    with Renderer(avatar, SIZE, lighting="vertex", antialias="none", camera=renderer.camera) as r:
        hard = r.render(frame)
    with Renderer(avatar, SIZE, lighting="vertex", antialias=method, camera=renderer.camera) as r:
        soft = r.render(frame)
        assert r.antialias == method
    bg = hard[0, 0].astype(int)
    face = np.any(hard != bg, axis=2)
    edge = face ^ cv2.erode(face.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    # the silhouette's pixels move towards the background (partly covered), the flat middle stays
    moved = np.abs(soft.astype(int) - hard.astype(int)).max(axis=2)
    assert (moved[edge] > 8).mean() > 0.2
    inner = cv2.erode(face.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert np.median(moved[inner]) <= 2


def test_transparent_background_keeps_alpha(avatar):
    with Renderer(avatar, (64, 64), background="transparent") as r:
        rgba = r.render_rgba(_frame())
    assert rgba.shape == (64, 64, 4)
    assert rgba[0, 0, 3] == 0 and rgba[32, 32, 3] == 255


def test_bad_arguments_are_clear_errors(avatar):
    with pytest.raises(InputError, match="size"):
        Renderer(avatar, (8, 8))
    with pytest.raises(InputError, match="#RRGGBB"):
        Renderer(avatar, (64, 64), background="#12345")
    with pytest.raises(InputError, match="lighting"):
        Renderer(avatar, (64, 64), lighting="flat")
    with pytest.raises(InputError, match="antialias"):
        Renderer(avatar, (64, 64), antialias="ssaa")
    with Renderer(avatar, (64, 64)) as r, pytest.raises(InputError, match="FaceFrame"):
        r.render(np.zeros(52))


# -- golden images ------------------------------------------------------------------------------
GOLDEN_CASES = {
    "neutral": {},
    "jaw_open": {"jawOpen": 1.0},
    "blink_left": {"eyeBlinkLeft": 1.0},
    "smile": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "browInnerUp": 0.6},
    "yaw_gaze": {"head": HeadPose(yaw_deg=-20, pitch_deg=6), "gaze": Gaze(-15, 5, -15, 5)},
    "talk": {"jawOpen": 0.4, "mouthFunnel": 0.5, "eyeBlinkRight": 0.5, "head": HeadPose(roll_deg=8)},
}


def _golden(avatar, case: str) -> Path:
    return GOLDEN_DIR / f"{avatar.name.lower().replace(' ', '_')}_{case}.png"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_images(renderer, avatar, case):
    named = dict(GOLDEN_CASES[case])
    head, gaze = named.pop("head", None), named.pop("gaze", None)
    rgb = renderer.render(_frame(head=head, gaze=gaze, **named))
    path = _golden(avatar, case)
    if os.environ.get("FACEWIRE_UPDATE_GOLDEN") == "1":
        GOLDEN_DIR.mkdir(exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not path.is_file():
        pytest.fail(f"no golden image {path.name} for avatar {avatar.name!r}: run with FACEWIRE_UPDATE_GOLDEN=1")
    golden = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert golden.shape == rgb.shape
    mean_abs = np.abs(golden.astype(int) - rgb.astype(int)).mean()
    assert mean_abs <= MAX_MEAN_ABS and _psnr(golden, rgb) >= MIN_PSNR_DB, (
        f"{case}: mean abs diff {mean_abs:.2f}, PSNR {_psnr(golden, rgb):.1f} dB against {path.name}")


def test_goldens_tell_the_expressions_apart(avatar):
    """The tolerance is far tighter than the differences it must catch."""
    paths = [_golden(avatar, case) for case in sorted(GOLDEN_CASES)]
    if not all(p.is_file() for p in paths):
        pytest.fail(f"golden images for {avatar.name!r} missing: run with FACEWIRE_UPDATE_GOLDEN=1")
    images = [cv2.imread(str(p)).astype(int) for p in paths]
    neutral = images[sorted(GOLDEN_CASES).index("neutral")]
    for p, img in zip(paths, images):
        if p.name.endswith("_neutral.png"):
            continue
        assert _psnr(img.astype(np.uint8), neutral.astype(np.uint8)) < MIN_PSNR_DB + 8, p.name


def test_camera_frames_the_whole_head(avatar):
    cam = Camera.framing(avatar, 1.0)
    with Renderer(avatar, (96, 96), camera=cam) as r:
        rgb = r.render(_frame())
    fg = np.any(rgb != rgb[0, 0], axis=2)
    rows, cols = np.nonzero(fg)
    assert rows.min() > 0 and cols.min() > 0 and cols.max() < 95  # the head's top and sides are inside
