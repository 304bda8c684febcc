"""The photo avatar: one portrait photo of a consenting person, animated by the frame stream.

How: facewire's own tracker fits the 478-point mesh and head pose to the photo; the 52 weights move
the landmarks through a linear per-landmark basis (`facewire.render.photo_basis`) in the head
frame, the head pose turns them (2.5D: the mesh's own depth, clamped to ±25° yaw, ±15° pitch,
±20° roll) and the photo is warped piecewise-affinely from its landmarks to the moved ones: one
triangle index per output pixel (painter's order by depth), one affine map per triangle, one
``cv2.remap``. The mesh is a Delaunay triangulation of the 468 points plus two rings around the
face oval: an inner ring that follows the face a third of the way (the feathering) and a fixed
outer ring, so hair and background stay where they are and pixels beyond the ring are the photo's
own, bit for bit. What a photo cannot show is drawn: the mouth interior (a dark cavity, the upper
and lower teeth rows and the tongue, inside the inner lip contour as the jaw opens) and the
eyelids (skin-coloured lids, their colour sampled from the photo above each eye, sliding down over
the eye with a lash line as ``eyeBlink`` rises), the eyes' gaze (each iris disc, sampled from the
photo, redrawn turned on a 12 mm eyeball over sclera of the photo's own colour, clipped to the eye
opening) and the tongue put out past the lower lip (``tongueOut`` with the jaw open).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import cv2
import numpy as np

from .. import arkit
from ..errors import InputError, NoFaceError
from ..frame import FaceFrame
from .photo_basis import LOWER_LID, UPPER_LID, landmark_basis

__all__ = [
    "GAZE_LIMIT_DEG",
    "LOOK_DEG",
    "MAX_PHOTO_PIXELS",
    "MAX_PHOTO_SIDE",
    "PITCH_LIMIT_DEG",
    "ROLL_LIMIT_DEG",
    "YAW_LIMIT_DEG",
    "PhotoAvatar",
    "PhotoRenderer",
    "find_faces",
    "gaze_deg",
    "load_photo",
]

MAX_PHOTO_SIDE = 2048  # larger photos are downscaled: the output is at most a few hundred pixels of face
MAX_PHOTO_PIXELS = 100_000_000  # refused from the header, before decoding (as the likeness registry does)
MAX_FACES = 8
YAW_LIMIT_DEG, PITCH_LIMIT_DEG, ROLL_LIMIT_DEG = 25.0, 15.0, 20.0  # beyond these a 2.5D warp tears
FACE_FILL = 0.5  # the face's height (hairline to chin) as a share of the output height
INNER_RING, OUTER_RING = 1.15, 1.75  # ring radii as multiples of the face oval, about its centre
INNER_FOLLOW = 0.7  # how much of the face oval's motion the inner ring (ears, hairline) follows
HEAD_PIVOT_CM = np.array([0.0, -4.0, -8.0])  # head rotation centre in the head frame (about the atlas)
EYEBALL_MM, IRIS_MM = 12.0, 11.7  # an adult eyeball's radius and iris diameter: the iris sets the scale
LOOK_DEG = 25.0  # the gaze an eyeLook* weight of 1 stands for
GAZE_LIMIT_DEG = 40.0
IRIS = {"Right": (468, 469, 470, 471, 472), "Left": (473, 474, 475, 476, 477)}  # centre, then the rim

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER = (308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78)
EYE_CORNERS = {"Right": (33, 133), "Left": (263, 362)}  # (outer, inner)
LID_SKIN = {"Right": ((247, 30, 29, 27, 28, 56, 190), (113, 225, 224, 223, 222, 221, 189)),
            "Left": ((467, 260, 259, 257, 258, 286, 414), (342, 445, 444, 443, 442, 441, 413))}
# linear-ish sRGB colours of what the photo cannot show
CAVITY_RGB = (48, 16, 20)
THROAT_RGB = (22, 6, 8)
TONGUE_RGB = (170, 78, 84)
TONGUE_TIP_RGB = (190, 96, 100)
UPPER_TEETH_RGB = (232, 226, 212)
LOWER_TEETH_RGB = (206, 198, 186)
TOOTH_GAP_RGB = (176, 166, 156)
LASH_RGB = (38, 28, 26)
TOOTH_GAPS = (0.5, 0.4, 0.6, 0.31, 0.69, 0.22, 0.78)  # along the upper inner lip, 0..1
_SUB = 16  # sub-pixel precision of the polygon fills (shift = 4)


# -- reading the photo ----------------------------------------------------------------------------
def _header_pixels(path: Path) -> int | None:
    """Width × height from the file's header without decoding it (None if Pillow cannot tell)."""
    from PIL import Image as PilImage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilImage.DecompressionBombWarning)
        try:
            with PilImage.open(path) as im:
                return im.size[0] * im.size[1]
        except PilImage.DecompressionBombError as exc:  # beyond Pillow's own limit: its message says the size
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            return int(pixels.group(1)) if pixels else MAX_PHOTO_PIXELS + 1
        except (OSError, ValueError, SyntaxError, EOFError):
            return None


def load_photo(path: str | os.PathLike[str], max_side: int = MAX_PHOTO_SIDE) -> np.ndarray:
    """A photo file as RGB uint8, its longer side at most ``max_side`` (downscaled); a decompression
    bomb (over `MAX_PHOTO_PIXELS` by its header) is refused before decoding."""
    from ..media import read_image

    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"photo {path}: expected an image file, got {'a folder' if p.is_dir() else 'no such file'}")
    pixels = _header_pixels(p)
    if pixels is not None and pixels > MAX_PHOTO_PIXELS:
        raise InputError(f"photo {path}: expected at most {MAX_PHOTO_PIXELS // 1_000_000} megapixels, got "
                         f"{pixels / 1e6:.0f} MP (a possible decompression bomb); refused before decoding")
    return read_image(p, max_side=max_side)


def _load_hashed(path: Path, max_side: int) -> tuple[np.ndarray, str]:
    """The photo's pixels and the SHA-256 of the very bytes they were decoded from: the file is read
    once into a private copy, so rewriting it between hashing and decoding (to render other pixels
    under an attested hash) cannot work."""
    import hashlib
    import tempfile

    try:
        data = path.expanduser().read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return load_photo(path, max_side), ""  # load_photo words the error
    except OSError as exc:
        raise InputError(f"photo {path}: cannot read ({exc.strerror or exc})") from exc
    with tempfile.TemporaryDirectory(prefix="facewire-photo-") as folder:
        copy = Path(folder) / f"photo{path.suffix.lower()}"
        copy.write_bytes(data)
        try:
            rgb = load_photo(copy, max_side)
        except InputError as exc:
            raise InputError(str(exc).replace(str(copy), str(path))) from exc.__cause__
    return rgb, hashlib.sha256(data).hexdigest()


def _as_rgb(image: np.ndarray, max_side: int) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 16:
        raise InputError(f"photo: expected uint8 H×W×3 RGB of at least 16×16, got {arr.dtype} "
                         f"{'×'.join(map(str, arr.shape))}")
    h, w = arr.shape[:2]
    if max(h, w) > max_side:
        k = max_side / max(h, w)
        arr = cv2.resize(arr, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(arr)


def find_faces(rgb: np.ndarray, models: Any = None) -> list[np.ndarray]:
    """Every face in a still as 478×3 landmarks in image pixels, left to right."""
    from ..models import ensure_package_models
    from ..vision.tracker import LandmarkTracker

    tracker = LandmarkTracker(models if models is not None else ensure_package_models(progress=None),
                              max_faces=MAX_FACES, iris_every=1)
    faces = [o.landmarks.astype(np.float64) for o in tracker(rgb)]
    return sorted(faces, key=lambda lm: float(lm[:468, 0].mean()))


@dataclass(frozen=True)
class PhotoAvatar:
    """A portrait photo with the fitted mesh of the face it animates.

    ``face`` is that face's number (1 = leftmost) of ``faces`` found; ``asset_sha256`` is the
    photo file's SHA-256 (what consent grants and attestations name), ``None`` for an array.
    """

    name: str
    rgb: np.ndarray = field(repr=False)
    landmarks: np.ndarray = field(repr=False)  # (478, 3) image pixels, z scaled like x
    face: int = 1
    faces: int = 1
    asset_sha256: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        for name in ("rgb", "landmarks"):
            arr = np.array(getattr(self, name), copy=True)
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        if self.landmarks.shape != (478, 3):
            raise InputError(f"photo landmarks: expected shape (478, 3), got {self.landmarks.shape}")

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The face's box (x0, y0, x1, y1) in photo pixels."""
        xy = self.landmarks[:468, :2]
        return (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))

    @classmethod
    def from_image(cls, image: str | os.PathLike[str] | np.ndarray, face: int | None = None, *,
                   models: Any = None, name: str | None = None, max_side: int = MAX_PHOTO_SIDE) -> PhotoAvatar:
        """Fit the mesh to the face in a photo (a file or RGB uint8). With several faces, ``face``
        (1 = leftmost) says which; without one that is an `InputError` asking for it."""
        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
            rgb, asset = _load_hashed(path, max_side)
            label, source = str(image), str(path)
            name = name or path.stem
        else:
            rgb = _as_rgb(image, max_side)
            label, asset, source = "image", None, None
            name = name or "photo"
        faces = find_faces(rgb, models)
        if not faces:
            raise NoFaceError(f"photo {label}: expected a face, found none")
        if face is None and len(faces) > 1:
            raise InputError(f"photo {label}: found {len(faces)} faces; choose one with --face N "
                             f"(1 = leftmost … {len(faces)} = rightmost)")
        number = 1 if face is None else face
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(faces):
            raise InputError(f"--face: expected a face number from 1 to {len(faces)}, got {face!r}")
        return cls(name=name, rgb=rgb, landmarks=faces[number - 1], face=number, faces=len(faces),
                   asset_sha256=asset, source=source)


# -- rendering ------------------------------------------------------------------------------------
def _frame_crop(avatar: PhotoAvatar, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the photo shown: the output's aspect, the face at `FACE_FILL` of the height."""
    h_img, w_img = avatar.rgb.shape[:2]
    out_w, out_h = size
    lm = avatar.landmarks
    face_h = float(np.linalg.norm(lm[10, :2] - lm[152, :2])) * 1.15  # hairline to chin, forehead included
    crop_h = face_h / FACE_FILL
    crop_w = crop_h * out_w / out_h
    k = min(1.0, w_img / crop_w, h_img / crop_h)
    crop_w, crop_h = crop_w * k, crop_h * k
    cx = float(lm[:468, 0].mean())
    cy = float(lm[:468, 1].mean()) - 0.08 * crop_h  # a little more room above the face than below
    x0 = min(max(cx - crop_w / 2, 0.0), w_img - crop_w)
    y0 = min(max(cy - crop_h / 2, 0.0), h_img - crop_h)
    return round(x0), round(y0), round(x0 + crop_w), round(y0 + crop_h)


def _aa_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Anti-aliased fill of one polygon (pixel coordinates) as float32 0..1."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * _SUB).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return mask.astype(np.float32) / 255.0


def _blend(out: np.ndarray, box: tuple[int, int, int, int], paint: np.ndarray, alpha: np.ndarray) -> None:
    x0, y0, x1, y1 = box
    region = out[y0:y1, x0:x1].astype(np.float32)
    a = alpha[:, :, None]
    out[y0:y1, x0:x1] = np.clip(region * (1 - a) + paint * a + 0.5, 0, 255).astype(np.uint8)


def _box(points: np.ndarray, shape: tuple[int, int], pad: int = 3) -> tuple[int, int, int, int] | None:
    h, w = shape
    x0, y0 = np.floor(points.min(0)).astype(int) - pad
    x1, y1 = np.ceil(points.max(0)).astype(int) + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return (int(x0), int(y0), int(x1), int(y1)) if x1 > x0 and y1 > y0 else None


def _eye_opening(xy: np.ndarray, side: str) -> np.ndarray:
    """One eye's opening as a polygon: outer corner, upper lid margin, inner corner, lower lid margin."""
    outer, inner = EYE_CORNERS[side]
    return np.vstack([xy[[outer]], xy[list(UPPER_LID[side])], xy[[inner]], xy[list(LOWER_LID[side])[::-1]]])


def gaze_deg(frame: FaceFrame, side: str) -> tuple[float, float]:
    """One eye's (yaw, pitch) in degrees: the frame's gaze where it has one, else its eyeLook* weights
    (`LOOK_DEG` at 1; "out" is towards that eye's own side), clamped to `GAZE_LIMIT_DEG`."""
    g = frame.gaze
    yaw, pitch = (g.left_yaw_deg, g.left_pitch_deg) if side == "Left" else (g.right_yaw_deg, g.right_pitch_deg)
    if yaw == 0.0 and pitch == 0.0:  # no gaze tracked: the weights say where the eye looks
        w = np.clip(np.nan_to_num(np.asarray(frame.weights, np.float64)), 0.0, 1.0)
        look = {d: float(w[arkit.INDEX[f"eyeLook{d}{side}"]]) for d in ("In", "Out", "Up", "Down")}
        outwards = 1.0 if side == "Left" else -1.0  # the subject's left is positive yaw
        yaw = LOOK_DEG * outwards * (look["Out"] - look["In"])
        pitch = LOOK_DEG * (look["Up"] - look["Down"])
    return (float(np.clip(yaw, -GAZE_LIMIT_DEG, GAZE_LIMIT_DEG)),
            float(np.clip(pitch, -GAZE_LIMIT_DEG, GAZE_LIMIT_DEG)))


class PhotoRenderer:
    """Renders a `PhotoAvatar` at ``size`` (width, height) for each `FaceFrame`: RGB uint8 pictures.

    Usable like `facewire.render.renderer.Renderer` (``render(frame)``, a context manager); CPU only.
    """

    def __init__(self, avatar: PhotoAvatar, size: tuple[int, int] = (512, 512)) -> None:
        from scipy.spatial import Delaunay

        from ..vision.pose import RIGID, canonical_face, umeyama

        width, height = (int(v) for v in size)
        if not (16 <= width <= 8192 and 16 <= height <= 8192):
            raise InputError(f"size: expected 16..8192 pixels a side, got {width}x{height}")
        self.avatar = avatar
        self.size = (width, height)
        x0, y0, x1, y1 = _frame_crop(avatar, self.size)
        crop = avatar.rgb[y0:y1, x0:x1]
        shrink = crop.shape[1] > width
        self.base = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        self.base.flags.writeable = False
        sx, sy = width / (x1 - x0), height / (y1 - y0)
        lm = (avatar.landmarks - [x0, y0, 0.0]) * [sx, sy, (sx + sy) / 2]
        self.landmarks = lm
        # the photo's head: camera = s·R·local + t (camera axes: x right, y up, z towards the viewer)
        cam = lm * [1.0, -1.0, -1.0]
        canon = canonical_face()[0]
        self._s, self._r, self._t = umeyama(canon[RIGID], cam[RIGID])
        self.local = ((cam - self._t) @ self._r) / self._s
        self._basis = landmark_basis().reshape(arkit.COUNT, -1).astype(np.float64)

        # the mesh: 468 face points, an inner ring that follows partly, a fixed outer ring
        oval = lm[list(FACE_OVAL), :2]
        centre = oval.mean(0)
        self._inner_src = centre + INNER_RING * (oval - centre)
        self._outer_src = centre + OUTER_RING * (oval - centre)
        self.src = np.vstack([lm[:468, :2], self._inner_src, self._outer_src])
        self.triangles = Delaunay(self.src).simplices.astype(np.int32)
        self._n_face = 468

        # what the drawn parts need from the photo
        self._lid_rgb = {side: self._lid_colour(side) for side in UPPER_LID}
        self._gap_src = float(np.linalg.norm(lm[13, :2] - lm[14, :2]))
        self._eyes = {side: self._eye_source(side) for side in IRIS}
        self.last_pose_deg = (0.0, 0.0, 0.0)

    def _lid_colour(self, side: str) -> np.ndarray:
        """The skin just above the eye (between the lid's second and third rings): median RGB."""
        near, far = LID_SKIN[side]
        polygon = np.vstack([self.landmarks[list(near), :2], self.landmarks[list(far)[::-1], :2]])
        mask = _aa_mask(self.base.shape[:2], polygon) > 0.5
        pixels = self.base[mask] if mask.sum() >= 4 else self.base.reshape(-1, 3)
        luma = pixels.astype(np.float32) @ [0.299, 0.587, 0.114]
        lit = pixels[luma >= np.median(luma)]  # the lit half: lashes, brow hairs and the crease's shadow are darker
        return np.median(lit, axis=0).astype(np.float32)

    def _eye_source(self, side: str) -> dict[str, Any] | None:
        """What redrawing one eye's iris needs from the photo: its disc, colours and the eyeball's
        radius in head-frame centimetres (from the iris's own size); None where the mesh has no iris."""
        lm = self.landmarks[:, :2]
        centre, rim = IRIS[side][0], list(IRIS[side][1:])
        radius_px = float(np.linalg.norm(lm[rim] - lm[centre], axis=1).mean())
        radius_cm = float(np.linalg.norm(self.local[rim] - self.local[centre], axis=1).mean())
        if radius_px < 1.0 or radius_cm <= 0:
            return None
        opening = _eye_opening(lm, side)
        shown = _aa_mask(self.base.shape[:2], opening)
        ys, xs = np.mgrid[0:shown.shape[0], 0:shown.shape[1]]
        dist = np.hypot(xs - lm[centre, 0], ys - lm[centre, 1])
        pixels = self.base.astype(np.float32)
        iris = pixels[(shown > 0.5) & (dist <= radius_px)]
        sclera = pixels[(shown > 0.5) & (dist > 1.15 * radius_px)]
        iris_rgb = np.median(iris, axis=0) if len(iris) else pixels[int(lm[centre, 1]), int(lm[centre, 0])]
        if len(sclera) >= 3:  # the lit white: lashes, lid edges and the corners' shadow are darker
            luma = sclera @ np.array([0.299, 0.587, 0.114], np.float32)
            sclera_rgb = np.median(sclera[luma >= np.percentile(luma, 85)], axis=0)
        else:
            sclera_rgb = np.array([225.0, 215.0, 205.0])
        return {"centre": lm[centre].copy(), "radius_px": radius_px, "shown": shown,
                "eyeball_cm": radius_cm * 2 * EYEBALL_MM / IRIS_MM,
                "iris_rgb": iris_rgb.astype(np.float32), "sclera_rgb": sclera_rgb.astype(np.float32)}

    # -- geometry ------------------------------------------------------------------------------
    def _project(self, local: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """Head-frame points (cm) → output pixels (x, y) and depth (z, larger = farther)."""
        s, r0, t = self._s, self._r, self._t
        cam = s * (local - HEAD_PIVOT_CM) @ (rot @ r0).T + s * HEAD_PIVOT_CM @ r0.T + t
        return cam * [1.0, -1.0, -1.0]

    @staticmethod
    def head_rotation(frame: FaceFrame) -> tuple[np.ndarray, tuple[float, float, float]]:
        """The frame's head rotation, clamped to the range a photo can turn, and the angles used."""
        from ..vision.pose import euler_to_rotation

        head = frame.head
        yaw = float(np.clip(head.yaw_deg, -YAW_LIMIT_DEG, YAW_LIMIT_DEG))
        pitch = float(np.clip(head.pitch_deg, -PITCH_LIMIT_DEG, PITCH_LIMIT_DEG))
        roll = float(np.clip(head.roll_deg, -ROLL_LIMIT_DEG, ROLL_LIMIT_DEG))
        angles = tuple(0.0 if not math.isfinite(a) else a for a in (yaw, pitch, roll))
        return euler_to_rotation(*angles), angles  # type: ignore[return-value]

    def pose(self, frame: FaceFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(local, image, rotation): the frame's 478 landmarks in the head frame (cm) and in output
        pixels + depth, and the (clamped) head rotation applied."""
        weights = np.clip(np.nan_to_num(np.asarray(frame.weights, np.float64)), 0.0, 1.0)
        local = self.local + (weights @ self._basis).reshape(-1, 3)
        rot, self.last_pose_deg = self.head_rotation(frame)
        return local, self._project(local, rot), rot

    # -- one picture ---------------------------------------------------------------------------
    def render(self, frame: FaceFrame) -> np.ndarray:
        """The photo animated to ``frame``: RGB uint8 (height, width, 3)."""
        local, image, rot = self.pose(frame)
        out = self.base.copy()
        self._warp(image, out)
        weights = np.clip(np.nan_to_num(np.asarray(frame.weights, np.float64)), 0.0, 1.0)
        for side in ("Left", "Right"):
            self._iris(side, *gaze_deg(frame, side), local, rot, image, out)
        self._mouth(image, out)
        self._tongue(float(weights[arkit.INDEX["tongueOut"]]), image, out)
        for side in ("Left", "Right"):
            self._lid(side, float(weights[arkit.INDEX[f"eyeBlink{side}"]]), local, rot, out)
        return out

    def _warp(self, image: np.ndarray, out: np.ndarray) -> None:
        n = self._n_face
        face_moved = image[:n, :2] - self.src[:n]
        oval_moved = face_moved[list(FACE_OVAL)]
        dst = np.vstack([image[:n, :2], self._inner_src + INNER_FOLLOW * oval_moved, self._outer_src])
        depth = np.concatenate([image[:n, 2], image[list(FACE_OVAL), 2] + 1.0,
                                np.full(len(self._outer_src), image[:n, 2].max() + 2.0)])
        tri = self.triangles
        moved = np.abs(dst - self.src).max(1) > 1e-3
        live = moved[tri].any(1)
        if not live.any():
            return
        tri = tri[live]
        d, s = dst[tri], self.src[tri]  # (T, 3, 2)
        m = np.concatenate([d, np.ones((len(tri), 3, 1))], axis=2)
        det = np.linalg.det(m)
        ok = np.abs(det) > 1e-6
        tri, d, s, m = tri[ok], d[ok], s[ok], m[ok]
        affine = np.linalg.solve(m, s)  # (T, 3, 2): [x y 1] @ A = source (x, y)
        order = np.argsort(-depth[tri].mean(1), kind="stable")  # far first: near triangles overwrite
        box = _box(d.reshape(-1, 2), out.shape[:2], pad=1)
        if box is None:
            return
        x0, y0, x1, y1 = box
        ids = np.full((y1 - y0, x1 - x0), -1, np.int32)
        pts = np.round((d - [x0, y0]) * _SUB).astype(np.int32)
        for k in order:
            cv2.fillConvexPoly(ids, pts[k], int(k), 8, 4)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        inside = ids >= 0
        a = affine[ids[inside]].astype(np.float32)
        px, py = xs[inside], ys[inside]
        map_x, map_y = xs.copy(), ys.copy()
        map_x[inside] = px * a[:, 0, 0] + py * a[:, 1, 0] + a[:, 2, 0]
        map_y[inside] = px * a[:, 0, 1] + py * a[:, 1, 1] + a[:, 2, 1]
        out[y0:y1, x0:x1] = cv2.remap(self.base, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def _mouth(self, image: np.ndarray, out: np.ndarray) -> None:
        """The open mouth's interior inside the inner lip contour, as far as the jaw opened beyond the photo."""
        xy = image[:, :2]
        gap = float(np.linalg.norm(xy[13] - xy[14]))
        width = float(np.linalg.norm(xy[61] - xy[291]))
        if width < 4:
            return
        opening = gap - self._gap_src
        strength = float(np.clip(opening / (0.06 * width), 0.0, 1.0))
        if strength < 0.01:
            return
        polygon = np.vstack([xy[list(INNER_UPPER)], xy[list(INNER_LOWER[1:-1])]])
        box = _box(polygon, out.shape[:2])
        if box is None:
            return
        x0, y0, x1, y1 = box
        origin = np.array([x0, y0], np.float64)
        shape = (y1 - y0, x1 - x0)
        down = xy[14] - xy[13]
        down = down / max(np.linalg.norm(down), 1e-6)
        paint = np.empty((*shape, 3), np.float32)
        paint[:] = CAVITY_RGB

        def fill(poly: np.ndarray, colour) -> None:
            cv2.fillPoly(paint, [np.round((poly - origin) * _SUB).astype(np.int32)], colour, cv2.LINE_AA, 4)

        centre = (xy[13] + xy[14]) / 2 - origin
        throat_axes = (max(1, round(0.22 * width * _SUB)), max(1, round(0.35 * gap * _SUB)))
        cv2.ellipse(paint, tuple(np.round(centre * _SUB).astype(int)), throat_axes, 0, 0, 360, THROAT_RGB, -1,
                    cv2.LINE_AA, 4)
        paint = cv2.GaussianBlur(paint, (0, 0), max(0.6, 0.12 * gap))
        # the tongue: the upper half of an ellipse resting on the lower lip, turned with the mouth
        tongue = xy[14] - origin
        across = xy[291] - xy[61]
        cv2.ellipse(paint, tuple(np.round(tongue * _SUB).astype(int)),
                    (max(1, round(0.3 * width * _SUB)), max(1, round(0.4 * gap * _SUB))),
                    float(np.degrees(np.arctan2(across[1], across[0]))), 180, 360, TONGUE_RGB, -1, cv2.LINE_AA, 4)
        lower = xy[list(INNER_LOWER[2:-2])]
        fill(np.vstack([lower, (lower - down * 0.07 * width)[::-1]]), LOWER_TEETH_RGB)
        upper = xy[list(INNER_UPPER[1:-1])]
        tooth = 0.11 * width
        fill(np.vstack([upper, (upper + down * tooth)[::-1]]), UPPER_TEETH_RGB)
        # gaps between the upper teeth along the lip line: wide central incisors, narrower ones beside
        length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(upper, axis=0), axis=1))])
        for f in TOOTH_GAPS:
            p = np.array([np.interp(f * length[-1], length, upper[:, i]) for i in (0, 1)])
            a, b = p - origin, p - origin + down * tooth
            cv2.line(paint, tuple(np.round(a * _SUB).astype(int)), tuple(np.round(b * _SUB).astype(int)),
                     TOOTH_GAP_RGB, 1, cv2.LINE_AA, 4)
        # the mouth is darker towards its corners: the teeth curve away into the cheeks
        mid = (xy[61] + xy[291]) / 2 - origin
        axis = (xy[291] - xy[61]) / max(width, 1e-6)
        ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
        along = ((xs - mid[0]) * axis[0] + (ys - mid[1]) * axis[1]) / (width / 2)
        paint *= np.clip(1.0 - 0.75 * along**2, 0.3, 1.0)[:, :, None]
        paint = cv2.GaussianBlur(paint, (0, 0), 0.5)  # as soft as the photo around it
        alpha = _aa_mask(shape, polygon - origin) * strength
        _blend(out, box, paint, alpha)

    def _iris(self, side: str, yaw_deg: float, pitch_deg: float, local: np.ndarray, rot: np.ndarray,
              image: np.ndarray, out: np.ndarray) -> None:
        """The iris turned ``yaw_deg``/``pitch_deg`` on its eyeball: the photo's iris erased with
        sclera colour and its disc redrawn where the turned eye puts it, all inside the eye opening;
        the turn is cut short where the iris centre would leave the opening."""
        eye = self._eyes[side]
        if eye is None or (abs(yaw_deg) < 1e-3 and abs(pitch_deg) < 1e-3):
            return
        centre, rim = IRIS[side][0], list(IRIS[side][1:])
        y, p = math.radians(yaw_deg), math.radians(pitch_deg)
        turn = eye["eyeball_cm"] * np.array([math.sin(y) * math.cos(p), math.sin(p), 0.0])
        xy = self._project(np.vstack([local[[centre]], local[[centre]] + turn, local[rim]]), rot)[:, :2]
        at, to = xy[0], xy[1]
        radius = float(np.linalg.norm(xy[2:] - at, axis=1).mean())
        opening = _eye_opening(image[:, :2], side)
        box = _box(opening, out.shape[:2])
        if box is None or radius < 0.5:
            return
        poly = opening.astype(np.float32)
        depth = lambda pt: cv2.pointPolygonTest(poly, (float(pt[0]), float(pt[1])), True)
        need = min(0.35 * radius, depth(at))  # the centre stays as deep inside as the photo's was
        for t in np.linspace(1.0, 0.0, 21):
            if depth(at + t * (to - at)) >= need:
                break
        to = at + t * (to - at)
        if np.abs(to - at).max() < 0.05:
            return
        x0, y0, x1, y1 = box
        origin = np.array([x0, y0], np.float64)
        shape = (y1 - y0, x1 - x0)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        region = out[y0:y1, x0:x1].astype(np.float32)
        # the sclera darkens towards the corners, where the eyeball curves away
        corners = image[list(EYE_CORNERS[side]), :2]
        mid, half = corners.mean(0), max(float(np.linalg.norm(corners[0] - corners[1])) / 2, 1.0)
        off = np.hypot(xs - mid[0], ys - mid[1]) / half
        sclera = eye["sclera_rgb"] * np.clip(1.0 - 0.15 * off**2, 0.75, 1.0)[:, :, None]
        ring = max(1.0, 0.2 * radius)  # a soft edge: the photo's limbal shadow fades into the new white
        erase = np.clip((1.2 * radius + ring / 2 - np.hypot(xs - at[0], ys - at[1])) / ring, 0, 1)[:, :, None]
        paint = region * (1 - erase) + sclera * erase
        # the disc sampled from the photo; what the photo's lids hid of it is the iris's median colour
        k = eye["radius_px"] / radius
        map_x = (eye["centre"][0] + (xs - to[0]) * k).astype(np.float32)
        map_y = (eye["centre"][1] + (ys - to[1]) * k).astype(np.float32)
        disc = cv2.remap(self.base, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        seen = cv2.remap(eye["shown"], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[:, :, None]
        disc = disc * seen + eye["iris_rgb"] * (1 - seen)
        iris = np.clip(radius + 0.5 - np.hypot(xs - to[0], ys - to[1]), 0, 1)[:, :, None]
        paint = paint * (1 - iris) + disc * iris
        _blend(out, box, paint, _aa_mask(shape, opening - origin))

    def _tongue(self, amount: float, image: np.ndarray, out: np.ndarray) -> None:
        """The tongue put out over the lower lip, as far as ``amount`` and the jaw's opening allow."""
        xy = image[:, :2]
        width = float(np.linalg.norm(xy[61] - xy[291]))
        opening = float(np.linalg.norm(xy[13] - xy[14])) - self._gap_src
        open_share = float(np.clip(opening / (0.06 * width), 0.0, 1.0)) if width >= 4 else 0.0
        reach = amount * open_share
        if reach < 0.02:
            return
        down = xy[14] - xy[13]
        down = down / max(float(np.linalg.norm(down)), 1e-6)
        lip = float(np.linalg.norm(xy[17] - xy[14]))  # the lower lip's height: the tongue reaches past it
        length = reach * (lip + 0.22 * width)
        half_w = 0.26 * width
        centre = xy[14] - down * 0.05 * width
        angle = float(np.degrees(np.arctan2(-down[0], down[1])))  # the mouth's turn from level
        corners = np.array([centre + down * length, centre - down * 2, centre + [half_w, 0], centre - [half_w, 0]])
        box = _box(corners, out.shape[:2], pad=int(half_w) + 3)
        if box is None:
            return
        x0, y0, x1, y1 = box
        shape = (y1 - y0, x1 - x0)
        c = tuple(np.round((centre - [x0, y0]) * _SUB).astype(int))
        axes = (max(1, round(half_w * _SUB)), max(1, round((length + 0.05 * width) * _SUB)))
        mask = np.zeros(shape, np.uint8)
        cv2.ellipse(mask, c, axes, angle, 0, 180, 255, -1, cv2.LINE_AA, 4)  # the lower half: out of the mouth
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.6)
        # lighter along its middle groove's sides and at the tip, darker at the edges: a rounded body
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        across = np.array([-down[1], down[0]])
        u = ((xs - centre[0]) * across[0] + (ys - centre[1]) * across[1]) / half_w
        v = ((xs - centre[0]) * down[0] + (ys - centre[1]) * down[1]) / max(length, 1.0)
        tip = np.clip(v, 0, 1)[:, :, None]
        paint = np.array(TONGUE_RGB, np.float32) * (1 - tip) + np.array(TONGUE_TIP_RGB, np.float32) * tip
        paint = paint * np.clip(1.0 - 0.35 * u**2 - 0.12 * np.exp(-(u / 0.12) ** 2), 0.5, 1.0)[:, :, None]
        _blend(out, box, paint, alpha * min(1.0, 2.0 * reach))

    def _lid(self, side: str, blink: float, local: np.ndarray, rot: np.ndarray, out: np.ndarray) -> None:
        """The upper lid slid ``blink`` of the way down to the lower lid, skin-coloured, with a lash line."""
        if blink < 0.02:
            return
        upper, lower = list(UPPER_LID[side]), list(LOWER_LID[side])
        closed = local[upper] + blink * (local[lower] - local[upper])
        xy = self._project(np.vstack([local[upper], closed, local[list(EYE_CORNERS[side])]]), rot)[:, :2]
        n = len(upper)
        open_line, lid_line, corners = xy[:n], xy[n:2 * n], xy[2 * n:]
        polygon = np.vstack([corners[:1], open_line, corners[1:], lid_line[::-1]])
        box = _box(polygon, out.shape[:2])
        if box is None:
            return
        x0, y0, x1, y1 = box
        origin = np.array([x0, y0], np.float64)
        shape = (y1 - y0, x1 - x0)
        # the lid darkens a little towards its margin, as a lid curving away from the light does
        top, bottom = open_line.mean(0) - origin, lid_line.mean(0) - origin
        span = bottom - top
        ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
        t = np.clip(((xs - top[0]) * span[0] + (ys - top[1]) * span[1]) / max(float(span @ span), 1e-6), 0, 1)
        paint = self._lid_rgb[side] * (1.0 - 0.14 * t)[:, :, None]
        alpha = cv2.GaussianBlur(_aa_mask(shape, polygon - origin), (0, 0), 0.7)
        width = float(np.linalg.norm(corners[0] - corners[1]))
        margin = np.vstack([corners[:1], lid_line, corners[1:]]) - origin
        lash = np.zeros(shape, np.uint8)
        cv2.polylines(lash, [np.round(margin * _SUB).astype(np.int32)], False, 255,
                      max(1, round(width / 28)), cv2.LINE_AA, 4)
        lash_alpha = (lash.astype(np.float32) / 255.0) * 0.8 * blink**2
        paint = paint * (1 - lash_alpha[:, :, None]) + np.array(LASH_RGB, np.float32) * lash_alpha[:, :, None]
        _blend(out, box, paint, np.maximum(alpha, lash_alpha))

    def close(self) -> None:
        """Nothing to release (CPU only); here so the renderer is used like the mesh renderer."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
