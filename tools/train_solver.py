"""Train facewire's blendshape solver (src/facewire/data/solver.npz) as a student of MediaPipe's model.

Reproducible: fixed seeds, inputs are the GRID clips in ../shared/data and skimage's astronaut,
the teacher is MediaPipe's official bundle in ../shared/models. Steps:

1. Real pairs. Every frame of the GRID training clips and the astronaut photo is seen by both
   pipelines: as it is, in ``REAL_VARIANTS - 1`` augmented copies (random in-plane rotation, scale,
   shift and mirror; a small perspective warp as from a turned head; brightness, contrast, gamma,
   white balance, blur, noise and JPEG loss; or all of these together), and, for the clips, once
   more tracked frame to frame (the region predicted from the previous frame's mesh, as in video).
   Input: facewire's package pipeline (468-point mesh + iris) → head-frame landmarks → `features`.
   Label: the official pipeline (its 478-point model + blendshape model) on the same image.
   These pairs teach the systematic gap between the two landmark models.
2. Synthetic expressions. A random combination of facial motions (smile, frown, stretch, pucker,
   jaw open/sideways, lip raise/lower/press, mouth sideways, brow raise/lower, blink, squint, wide
   eyes, cheek puff, sneer, gaze shifts), at random intensities, is added to both landmark sets of
   a real pair (in the head frame; moved into the official landmarks' image frame for the teacher).
   GRID speakers barely move their brows or smile: these samples cover what a webcam user does.
3. Networks: an ensemble of ``MEMBERS`` two-layer networks (ReLU, sigmoid output, MSE), fitted
   with Adam on the samples and their mirror images. Each network is split by face region: the
   eye, brow, mouth/jaw and cheek/nose channels have their own hidden units, which see only the
   landmarks of their part of the face (`REGIONS`). With five faces to learn the landmark-model
   gap from, a dense network also learns who is who (e.g. one speaker's mouth shape "predicts"
   their squint); local inputs keep it to what each part of the face shows.
4. Validation on the GRID clips held out of training (``HELD_OUT``), per frame (fresh detection)
   and tracked (as ``facewire bench accuracy`` runs them); ``--cv`` also reports leave-one-clip-out
   cross-validation over the training clips, the honest way to compare settings.

Run: python tools/train_solver.py [--seed 0] [--members 3] [--cv]
Samples are cached (``--cache``); the cache is rebuilt when the sampling settings or the features
change.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

from facewire import arkit
from facewire.bench.accuracy import blink_events
from facewire.models import ensure_package_models, load_task_bundle
from facewire.vision.blendshapes import (
    FEATURE_POINTS,
    BlendshapeSolver,
    features,
    mirror_features,
)
from facewire.vision.mp_blendshapes import MediaPipeBlendshapes
from facewire.vision.pose import RIGID, PoseSolver, canonical_face, umeyama
from facewire.vision.tracker import LandmarkTracker

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GRID = SHARED / "data" / "video" / "grid"
TASK = SHARED / "models" / "face_landmarker_v2_with_blendshapes.task"
OUT = ROOT / "src" / "facewire" / "data" / "solver.npz"
HELD_OUT = ("lbbc2a", "lwbsza")  # GRID clips kept out of training, for validation

# ---------------------------------------------------------------------------------------------
# Facial motions as displacement fields on the canonical mesh (head frame, cm)
# ---------------------------------------------------------------------------------------------
CANON, MIRROR, _ = canonical_face()
UPPER_LID = {"R": [246, 161, 160, 159, 158, 157, 173], "L": [466, 388, 387, 386, 385, 384, 398]}
LOWER_LID = {"R": [7, 163, 144, 145, 153, 154, 155], "L": [249, 390, 373, 374, 380, 381, 382]}
LOWER_LIP = [146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324]
UPPER_LIP = [185, 40, 39, 37, 0, 267, 269, 270, 409, 191, 80, 81, 82, 13, 312, 311, 310, 415]
LIPS = LOWER_LIP + UPPER_LIP + [61, 291, 78, 308]
SIDE = {"R": -1.0, "L": 1.0}


def _bump(centre: np.ndarray, sigma: float) -> np.ndarray:
    d2 = ((CANON - centre) ** 2).sum(1)
    return np.exp(-d2 / (2 * sigma**2))


def _field(points: list[int] | np.ndarray, vec, sigma: float = 0.0) -> np.ndarray:
    """Displacement of the listed points by ``vec``, spread to neighbours by a Gaussian of ``sigma`` cm."""
    disp = np.zeros_like(CANON)
    vec = np.asarray(vec, dtype=np.float64)
    if sigma > 0:
        wsum = np.zeros(len(CANON))
        for p in points:
            wsum = np.maximum(wsum, _bump(CANON[p], sigma))
        disp += wsum[:, None] * vec
    else:
        disp[list(points)] += vec
    return disp


def _jaw(angle_deg: float, side_cm: float = 0.0) -> np.ndarray:
    """Rotate the lower face about a pivot behind the ears; optionally slide it sideways."""
    y_cut = CANON[14, 1] + 0.05
    below = CANON[:, 1] < y_cut
    weight = np.clip((y_cut - CANON[:, 1]) / 1.0, 0, 1) * below
    weight[LOWER_LIP] = 1.0
    weight[[61, 291, 78, 308]] = 0.5
    pivot = np.array([0.0, -3.0, -8.0])
    a = math.radians(angle_deg)
    rot = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    moved = (CANON - pivot) @ rot.T + pivot
    disp = (moved - CANON) * weight[:, None]
    disp[:, 0] += side_cm * weight
    return disp


def _lid(side: str, amount: float) -> np.ndarray:
    """Upper lid towards the lower lid (amount 1 = closed; negative = wider)."""
    disp = np.zeros_like(CANON)
    for u, l in zip(UPPER_LID[side], LOWER_LID[side]):
        disp[u] = (CANON[l] - CANON[u]) * amount * 0.95
    # the skin above follows a little
    disp += _field([UPPER_LID[side][3]], [0, -0.25 * amount, 0], 0.8) * (np.abs(disp).sum(1) == 0)[:, None]
    return disp


def _squint(side: str, amount: float) -> np.ndarray:
    disp = np.zeros_like(CANON)
    for u, l in zip(UPPER_LID[side], LOWER_LID[side]):
        disp[l] = (CANON[u] - CANON[l]) * 0.35 * amount
    return disp + _field([205 if side == "R" else 425], [0, 0.35 * amount, 0], 1.2)


def _corner(side: str, vec, sigma: float = 1.0) -> np.ndarray:
    corner = 61 if side == "R" else 291
    v = np.array(vec, dtype=np.float64) * np.array([SIDE[side], 1.0, 1.0])
    return _field([corner], v, sigma)


def _contract_lips(amount: float, open_cm: float) -> np.ndarray:
    centre = CANON[[13, 14]].mean(0)
    disp = np.zeros_like(CANON)
    w = np.zeros(len(CANON))
    w[LIPS] = 1.0
    w = np.maximum(w, 0.6 * _bump(centre, 1.3))
    disp[:, 0] = (centre[0] - CANON[:, 0]) * amount * w
    disp[UPPER_LIP, 1] += open_cm
    disp[LOWER_LIP, 1] -= open_cm
    disp[:, 2] += 0.4 * amount * w
    return disp


def motions() -> dict[str, callable]:
    """Name → function(intensity in [0, 1], rng) → 468×3 displacement (cm)."""
    m: dict[str, callable] = {}
    for s in ("R", "L"):
        m[f"smile{s}"] = lambda k, r, s=s: _corner(s, [0.45 * k, 0.55 * k, -0.2 * k], 1.3)
        m[f"frown{s}"] = lambda k, r, s=s: _corner(s, [0.05 * k, -0.45 * k, 0], 1.0)
        m[f"stretch{s}"] = lambda k, r, s=s: _corner(s, [0.5 * k, -0.25 * k, 0], 1.2)
        m[f"dimple{s}"] = lambda k, r, s=s: _corner(s, [0.3 * k, 0.05 * k, -0.2 * k], 0.7)
        m[f"blink{s}"] = lambda k, r, s=s: _lid(s, k)
        m[f"wide{s}"] = lambda k, r, s=s: _lid(s, -0.45 * k)
        m[f"squint{s}"] = lambda k, r, s=s: _squint(s, k)
        brow_in, brow_out = (107, 70) if s == "R" else (336, 300)
        m[f"browOuterUp{s}"] = lambda k, r, p=brow_out: _field([p], [0, 0.6 * k, 0], 1.0)
        m[f"browDown{s}"] = lambda k, r, p=brow_in, s=s: _field([p], [-SIDE[s] * 0.25 * k, -0.45 * k, 0], 1.1)
        m[f"sneer{s}"] = lambda k, r, s=s: _field([64 if s == "R" else 294], [0, 0.35 * k, 0], 0.6)
        m[f"press{s}"] = lambda k, r, s=s: (_field([0, 37, 39] if s == "R" else [0, 267, 269], [0, -0.12 * k, 0], 0.5)
                                              + _field([17, 84, 181] if s == "R" else [17, 314, 405], [0, 0.12 * k, 0], 0.5))
    m["browInnerUp"] = lambda k, r: _field([107, 336, 9], [0, 0.55 * k, 0], 0.9)
    m["jawOpen"] = lambda k, r: _jaw(12 * k)
    m["jawSide"] = lambda k, r: _jaw(4 * abs(k), 0.6 * (2 * k - 1))
    m["mouthSide"] = lambda k, r: _field(LIPS, [0.7 * (2 * k - 1), 0, 0], 0.6)
    m["pucker"] = lambda k, r: _contract_lips(0.35 * k, 0.0)
    m["funnel"] = lambda k, r: _contract_lips(0.25 * k, 0.25 * k)
    m["upperUp"] = lambda k, r: _field(UPPER_LIP, [0, 0.3 * k, 0])
    m["lowerDown"] = lambda k, r: _field(LOWER_LIP, [0, -0.35 * k, 0])
    m["rollIn"] = lambda k, r: (_field([0, 37, 267, 39, 269], [0, -0.2 * k, 0]) + _field([17, 84, 314, 181, 405], [0, 0.2 * k, 0]))
    m["shrug"] = lambda k, r: _field(LOWER_LIP + [152, 175, 199, 200], [0, 0.3 * k, 0.1 * k], 0.6)
    m["cheekPuff"] = lambda k, r: (_field([205, 50, 187], [-0.45 * k, 0, 0.2 * k], 1.1) + _field([425, 280, 411], [0.45 * k, 0, 0.2 * k], 1.1))
    return m


MOTIONS = motions()



# ---------------------------------------------------------------------------------------------
# Samples: real faces as both pipelines see them, and the same faces performing motions
# ---------------------------------------------------------------------------------------------
REAL_VARIANTS = 24  # each base image as it is, plus augmented copies
SYNTHETIC = 4000  # synthetic samples per base face (4 GRID speakers, the astronaut)
REAL_WEIGHT = 1  # how often real pairs are repeated in training
IRIS_MOVE = 0.45  # cm: how far a full gaze shift moves the iris centre in the head frame
SAMPLING_VERSION = 2  # bump when the sampling changes, so that a stale cache is not used


class Sampler:
    """Runs both pipelines on base images and synthesises motions on the resulting landmark pairs."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.package = LandmarkTracker(ensure_package_models(progress=None))
        official = load_task_bundle(TASK)
        self.official = LandmarkTracker(official)
        self.teacher = MediaPipeBlendshapes(official.blendshapes)
        self.pose = PoseSolver()

    def _pair(self, rgb: np.ndarray, a, b):
        if not a or not b:
            return None
        pose = self.pose(a[0].landmarks, (rgb.shape[1], rgb.shape[0]))
        return features(pose.head_frame), self.teacher(b[0].landmarks), pose.head_frame, b[0].landmarks

    def observe(self, rgb: np.ndarray):
        """(features, teacher weights, package head-frame landmarks, official landmarks) or None: a fresh detection."""
        self.package.reset()
        self.official.reset()
        return self._pair(rgb, self.package(rgb), self.official(rgb))

    def track(self, frames: list[np.ndarray]) -> list:
        """`observe` for consecutive frames, each region predicted from the previous frame (as in video)."""
        self.package.reset()
        self.official.reset()
        return [self._pair(f, self.package(f), self.official(f)) for f in frames]

    def motion(self) -> tuple[np.ndarray, np.ndarray]:
        """A random combination of motions (468×3 cm) and an iris shift (2, cm) in the head frame."""
        rng = self.rng
        disp = np.zeros_like(CANON)
        for name in rng.choice(list(MOTIONS), size=rng.integers(1, 5), replace=False):
            disp += MOTIONS[name](float(rng.uniform(0.0, 1.0) ** 0.7), rng)
        if rng.random() < 0.3:  # symmetric pairs happen together more often than not
            disp = (disp + disp[MIRROR] * np.array([-1, 1, 1])) / 2 * rng.uniform(1.0, 1.8)
        gaze = rng.uniform(-1, 1, 2) * [IRIS_MOVE, 0.6 * IRIS_MOVE] if rng.random() < 0.5 else np.zeros(2)
        return disp, gaze

    def synthesise(self, base) -> tuple[np.ndarray, np.ndarray]:
        _, _, local, official = base
        disp, gaze = self.motion()
        moved = local.astype(np.float64).copy()
        moved[:468] += disp
        moved[468:478, :2] += gaze
        # the same motion on the official landmarks, taken from the head frame into image pixels
        cam = official.astype(np.float64) * np.array([1.0, -1.0, -1.0])
        s, r, _ = umeyama(CANON[RIGID], cam[RIGID])
        step = np.zeros((478, 3))
        step[:468] = disp
        step[468:478, :2] = gaze
        delta = s * step @ r.T * np.array([1.0, -1.0, -1.0])
        return features(moved), self.teacher(official + delta.astype(np.float32))


def _similarity(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random in-plane rotation, scale, shift and mirror of a whole image."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h),
                                float(rng.uniform(-30, 30)), float(rng.uniform(0.6, 1.3)))
    out = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return out[:, ::-1].copy() if rng.random() < 0.5 else out


def _perspective(rgb: np.ndarray, rng: np.random.Generator, amount: float = 0.08) -> np.ndarray:
    """A small homography, as if the (roughly planar) face turned a little left/right or up/down."""
    h, w = rgb.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    yaw, pitch = rng.uniform(-amount, amount, 2)
    dst = src.copy()
    dst[[1, 2], 1] += np.array([1, -1]) * yaw * h  # one side taller, the other shorter
    dst[[0, 3], 1] -= np.array([1, -1]) * yaw * h
    dst[[0, 1], 0] += np.array([1, -1]) * pitch * w  # top narrower or wider than the bottom
    dst[[3, 2], 0] -= np.array([1, -1]) * pitch * w
    dst += rng.normal(0, amount * 0.15 * w, dst.shape).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    return cv2.warpPerspective(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def _photometric(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast, brightness, gamma and white balance; sometimes blur, sensor noise and JPEG loss."""
    x = rgb.astype(np.float32) / 255
    x = np.clip((x - 0.5) * rng.uniform(0.6, 1.4) + 0.5 + rng.uniform(-0.2, 0.2), 0, 1) ** rng.uniform(0.7, 1.4)
    x = x * rng.uniform(0.85, 1.15, 3)
    out = np.clip(x * 255, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.5))
    if rng.random() < 0.3:
        out = np.clip(out + rng.normal(0, rng.uniform(2, 8), out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        _, buf = cv2.imencode(".jpg", np.ascontiguousarray(out[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
    return out


def _augment(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kind = ("similarity", "perspective", "photometric", "all")[rng.integers(4)]
    if kind in ("similarity", "all"):
        rgb = _similarity(rgb, rng)
    if kind in ("perspective", "all"):
        rgb = _perspective(rgb, rng)
    if kind in ("photometric", "all"):
        rgb = _photometric(rgb, rng)
    return rgb


def _clip_frames(name: str) -> list[np.ndarray]:
    with av.open(str(GRID / f"{name}.mpg")) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _training_clips() -> list[str]:
    return [p.stem for p in sorted(GRID.glob("*.mpg")) if p.stem not in HELD_OUT]


def _base_images(group: str) -> list[np.ndarray]:
    if group == "astronaut":
        import skimage.data

        return [skimage.data.astronaut()] * 40  # weighted like a short clip
    return _clip_frames(group)


def _work(task: tuple[int, str, int, int, bool, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Real pairs (variants ``first``..``last-1`` of each base image, tracked pass optional) and synthetic samples."""
    seed, group, first, last, tracked, synthetic = task
    sampler = Sampler(seed)
    images = _base_images(group)
    observed = []
    for k in range(first, last):
        for img in images:
            got = sampler.observe(img if k == 0 else _augment(img, sampler.rng))
            if got is not None:
                observed.append(got)
    if tracked:
        observed += [o for o in sampler.track(images) if o is not None]
    real_x, real_y = np.array([o[0] for o in observed]), np.array([o[1] for o in observed])
    syn = [sampler.synthesise(observed[sampler.rng.integers(len(observed))]) for _ in range(synthetic)]
    return real_x, real_y, np.array([s[0] for s in syn]), np.array([s[1] for s in syn])


def _tasks(variants: int, synthetic: int, sample_seed: int) -> list[tuple[str, tuple]]:
    """Work split into halves of similar size, with fixed seeds: the samples do not depend on scheduling."""
    tasks = []
    for g, group in enumerate(_training_clips() + ["astronaut"]):
        half = variants // 2
        for h, (first, last) in enumerate(((0, half), (half, variants))):
            seed = 1000 + 10 * g + h + 100 * sample_seed
            tasks.append((group, (seed, group, first, last, group != "astronaut" and h == 0, synthetic // 2)))
    return tasks


def _feature_fingerprint() -> str:
    """Changes when `features` changes (so that cached samples of old features are not reused)."""
    rng = np.random.default_rng(0)
    probe = np.concatenate([CANON, np.zeros((10, 3))]) + rng.normal(0, 0.1, (478, 3))
    return hashlib.sha256(features(probe).round(4).tobytes()).hexdigest()[:16]


def samples(cache: Path, variants: int, synthetic: int, workers: int, sample_seed: int) -> dict[str, np.ndarray]:
    """Real and synthetic samples with their base face (``real_g``/``syn_g``: index into ``groups``)."""
    key = f"v{SAMPLING_VERSION} variants={variants} synthetic={synthetic} seed={sample_seed} features={_feature_fingerprint()}"
    if cache.exists():
        data = dict(np.load(cache))
        if str(data.get("key", "")) == key:
            return data
        print(f"{cache}: made with other settings, rebuilding")
    tasks = _tasks(variants, synthetic, sample_seed)
    groups = list(dict.fromkeys(g for g, _ in tasks))
    with mp.get_context("spawn").Pool(workers) as pool:
        parts = pool.map(_work, [t for _, t in tasks], chunksize=1)
    gid = [groups.index(g) for g, _ in tasks]
    data = {
        "real_x": np.concatenate([p[0] for p in parts]), "real_y": np.concatenate([p[1] for p in parts]),
        "real_g": np.concatenate([np.full(len(p[0]), g) for p, g in zip(parts, gid)]),
        "syn_x": np.concatenate([p[2] for p in parts]), "syn_y": np.concatenate([p[3] for p in parts]),
        "syn_g": np.concatenate([np.full(len(p[2]), g) for p, g in zip(parts, gid)]),
        "groups": np.array(groups), "key": np.array(key),
    }
    np.savez(cache, **data)
    return data


# ---------------------------------------------------------------------------------------------
# The networks
# ---------------------------------------------------------------------------------------------
def _channels(prefixes: tuple[str, ...] = (), names: tuple[str, ...] = ()) -> list[str]:
    return [n for n in arkit.NAMES if n.startswith(prefixes) or n in names]


# (channels, which canonical-face points (head frame, cm: x to the subject's left, y up) they see,
# whether they see the iris features). Each eye's channels see both eyes (blinks, gaze and squints
# move together) and have hidden units of their own.
REGIONS = (
    ([n for n in _channels(("eye",)) if n.endswith("Right")], lambda p: p[1] > -3.0, True),
    ([n for n in _channels(("eye",)) if n.endswith("Left")], lambda p: p[1] > -3.0, True),
    (_channels(("brow",)), lambda p: p[1] > -2.0, False),
    (_channels(("jaw", "mouth")), lambda p: p[1] < -3.0, False),
    (_channels(("cheek", "nose")), lambda p: -10.0 < p[1] < 0.5, False),
)
HIDDEN_PER_REGION = 16
MEMBERS = 3


def region_masks(out_index: np.ndarray, hidden: int = HIDDEN_PER_REGION) -> tuple[np.ndarray, np.ndarray]:
    """0/1 masks of the first (features × hidden) and second (hidden × outputs) layer weights."""
    n_iris = 2  # the last two feature points are the iris centres
    m1 = np.zeros((3 * len(FEATURE_POINTS), hidden * len(REGIONS)), np.float32)
    m2 = np.zeros((hidden * len(REGIONS), len(out_index)), np.float32)
    column = {int(c): k for k, c in enumerate(out_index)}
    for r, (names, sees, iris) in enumerate(REGIONS):
        units = slice(r * hidden, (r + 1) * hidden)
        for k, p in enumerate(FEATURE_POINTS):
            if (iris if k >= len(FEATURE_POINTS) - n_iris else sees(CANON[p])):
                m1[3 * k:3 * k + 3, units] = 1.0
        for n in names:
            if arkit.INDEX[n] in column:
                m2[units, column[arkit.INDEX[n]]] = 1.0
    return m1, m2


def train(z: np.ndarray, t: np.ndarray, masks: tuple[np.ndarray, np.ndarray], epochs: int = 60, decay: float = 1e-4,
          seed: int = 0, loss: str = "mse") -> list[np.ndarray]:
    """One region-masked network on standardised inputs ``z`` and targets ``t``: [w1, b1, w2, b2].

    ``loss``: "bce" (cross-entropy against the teacher's soft targets; its gradient at the logit is
    p − t, so a saturated output still learns) or "mse" (through the sigmoid, whose gradient
    vanishes near 0 and 1 and pulls rare extremes such as a blink's peak towards the middle)."""
    rng = np.random.default_rng(seed)
    m1, m2 = masks
    w1 = (rng.standard_normal(m1.shape) * np.sqrt(2 / m1.sum(0, keepdims=True).clip(1))).astype(np.float32) * m1
    b1 = np.zeros(m1.shape[1], np.float32)
    w2 = (rng.standard_normal(m2.shape) * np.sqrt(1 / m2.sum(0, keepdims=True).clip(1))).astype(np.float32) * m2
    b2 = np.zeros(m2.shape[1], np.float32)
    params = [w1, b1, w2, b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, b1m, b2m, step = 2e-3, 0.9, 0.999, 0
    batch = 128
    for epoch in range(epochs):
        order = rng.permutation(len(z))
        rate = lr * (0.5 * (1 + math.cos(math.pi * epoch / epochs)))
        for i in range(0, len(z), batch):
            idx = order[i:i + batch]
            h_pre = z[idx] @ w1 + b1
            h = np.maximum(h_pre, 0)
            p = 1 / (1 + np.exp(-(h @ w2 + b2)))
            if loss == "bce":
                g_out = (p - t[idx]) * (1 / len(idx))
            else:
                g_out = (p - t[idx]) * p * (1 - p) * (2 / len(idx))  # MSE through the sigmoid
            g_h = (g_out @ w2.T) * (h_pre > 0)
            grads = [(z[idx].T @ g_h + decay * w1) * m1, g_h.sum(0), (h.T @ g_out + decay * w2) * m2, g_out.sum(0)]
            step += 1
            for k, (p_, g) in enumerate(zip(params, grads)):
                m[k] = b1m * m[k] + (1 - b1m) * g
                v[k] = b2m * v[k] + (1 - b2m) * g * g
                p_ -= rate * (m[k] / (1 - b1m**step)) / (np.sqrt(v[k] / (1 - b2m**step)) + 1e-8)
    return params


def fit(x: np.ndarray, y: np.ndarray, members: int = MEMBERS, epochs: int = 60, decay: float = 1e-4,
        seed: int = 0, loss: str = "mse") -> dict[str, np.ndarray]:
    """The ensemble, in the layout `BlendshapeSolver` reads."""
    out_index = np.array([i for i in range(arkit.COUNT) if arkit.NAMES[i] != "tongueOut"])
    mean, std = x.mean(0), x.std(0) + 1e-3
    z = ((x - mean) / std).astype(np.float32)
    t = y[:, out_index].astype(np.float32)
    masks = region_masks(out_index)
    nets = [train(z, t, masks, epochs, decay, seed=1000 * seed + e, loss=loss) for e in range(members)]
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32),
            **{k: np.stack([n[i] for n in nets]) for i, k in enumerate(("w1", "b1", "w2", "b2"))},
            "out_index": out_index.astype(np.int16)}


def training_set(data: dict[str, np.ndarray], groups: list[int], real_weight: int = REAL_WEIGHT):
    """Real pairs (repeated ``real_weight`` times) and synthetic samples of the given base faces, plus mirror images."""
    r, s = np.isin(data["real_g"], groups), np.isin(data["syn_g"], groups)
    x = np.concatenate([np.repeat(data["real_x"][r], real_weight, 0), data["syn_x"][s]])
    y = np.concatenate([np.repeat(data["real_y"][r], real_weight, 0), data["syn_y"][s]])
    return np.concatenate([x, mirror_features(x)]), np.concatenate([y, arkit.mirror_weights(y)])


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------
MOVING_STD = 0.05  # a channel "moves" when the reference's std exceeds this
BLINK = 0.5


def pearson(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Pearson r per channel that moves in the reference."""
    return {arkit.NAMES[i]: float(np.corrcoef(pred[:, i], ref[:, i])[0, 1]) if pred[:, i].std() > 0 else 0.0
            for i in range(arkit.COUNT) if ref[:, i].std() > MOVING_STD}


def blinks(pred: np.ndarray, ref: np.ndarray, slack: int = 2) -> tuple[int, int]:
    """(reference blink events, of them matched by a prediction > 0.5 within ±slack frames); events
    as `facewire bench accuracy` counts them (above 0.5 until the lid reopens below 0.3)."""
    total = matched = 0
    for name in ("eyeBlinkLeft", "eyeBlinkRight"):
        i = arkit.INDEX[name]
        for a, b in blink_events(ref[:, i]):
            total += 1
            matched += bool(pred[max(0, a - slack):b + slack, i].max() > BLINK)
    return total, matched


def clip_pairs(names: list[str], tracked: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """(features, teacher weights) per clip: frames tracked as in video, or each detected afresh."""
    sampler = Sampler(7)
    out = []
    for name in names:
        frames = _clip_frames(name)
        pairs = sampler.track(frames) if tracked else [sampler.observe(f) for f in frames]
        pairs = [p for p in pairs if p is not None]
        out.append((np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])))
    return out


def report(weights: dict[str, np.ndarray], clips: list[tuple[np.ndarray, np.ndarray]], label: str, detail: bool = True) -> float:
    solver = BlendshapeSolver(weights)
    preds = [solver.predict(x) for x, _ in clips]
    pred, ref = np.concatenate(preds), np.concatenate([y for _, y in clips])
    r = pearson(pred, ref)
    total, matched = (sum(v) for v in zip(*(blinks(p, y) for p, (_, y) in zip(preds, clips))))
    mean_r = float(np.mean(list(r.values()))) if r else float("nan")
    print(f"{label}: n={len(pred)} MAE={np.abs(pred - ref).mean():.4f} mean r over {len(r)} moving channels={mean_r:.3f}"
          f" blinks matched {matched}/{total}")
    if detail:
        for name, v in r.items():
            print(f"   {name:20s} r={v:.3f} std={ref[:, arkit.INDEX[name]].std():.3f}")
    return mean_r


def cross_validate(data: dict[str, np.ndarray], args: argparse.Namespace) -> None:
    """Leave one training clip out: fit on the rest, measure on its tracked frames, pooled over clips."""
    groups = [str(g) for g in data["groups"]]
    clips = [g for g in groups if g != "astronaut"]
    preds, refs, per = [], [], []
    for name, (x_clip, y_clip) in zip(clips, clip_pairs(clips, tracked=True)):
        keep = [k for k, g in enumerate(groups) if g != name]
        x, y = training_set(data, keep, args.real_weight)
        w = fit(x, y, members=args.members, epochs=args.epochs, decay=args.decay, seed=args.seed, loss=args.loss)
        per.append(report(w, [(x_clip, y_clip)], f"  cv {name}", detail=False))
        preds.append(BlendshapeSolver(w).predict(x_clip))
        refs.append(y_clip)
    r = pearson(np.concatenate(preds), np.concatenate(refs))
    print(f"leave-one-clip-out: mean r per clip {np.mean(per):.3f}, pooled {np.mean(list(r.values())):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=REAL_VARIANTS, help="views of each base image (1 = as it is)")
    ap.add_argument("--synthetic", type=int, default=SYNTHETIC, help="synthetic samples per base face")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--members", type=int, default=MEMBERS, help="networks in the ensemble")
    ap.add_argument("--real-weight", type=int, default=REAL_WEIGHT)
    ap.add_argument("--decay", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0, help="network initialisation and batch order")
    ap.add_argument("--sample-seed", type=int, default=0, help="augmentations and synthetic motions")
    ap.add_argument("--loss", choices=("bce", "mse"), default="mse",
                    help="training loss (see `train`; bce gave the same bench accuracy: r 0.885 vs 0.886)")
    ap.add_argument("--cv", action="store_true", help="also cross-validate over the training clips (slow)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/facewire-solver-samples.npz"))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if not TASK.exists():
        sys.exit(f"teacher bundle not found: {TASK}")
    t0 = time.time()
    data = samples(args.cache, args.variants, args.synthetic, args.workers, args.sample_seed)
    print(f"{len(data['real_x'])} real and {len(data['syn_x'])} synthetic samples in {time.time() - t0:.0f} s")
    x, y = training_set(data, list(range(len(data["groups"]))), args.real_weight)
    weights = fit(x, y, members=args.members, epochs=args.epochs, decay=args.decay, seed=args.seed, loss=args.loss)
    weights["held_out"] = np.array(HELD_OUT)
    print(f"fitted {args.members} networks in {time.time() - t0:.0f} s")
    report(weights, [(data["real_x"], data["real_y"])], "train (real)", detail=False)
    report(weights, clip_pairs(list(HELD_OUT), tracked=False), "held-out GRID clips, each frame detected afresh")
    report(weights, clip_pairs(list(HELD_OUT), tracked=True), "held-out GRID clips, tracked")
    np.savez_compressed(args.out, **weights)
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")
    if args.cv:
        cross_validate(data, args)


if __name__ == "__main__":
    main()
