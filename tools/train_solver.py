"""Train facewire's blendshape solver (src/facewire/data/solver.npz) as a student of MediaPipe's model.

Reproducible: fixed seeds, inputs are the GRID clips in ../shared/data and skimage's astronaut,
the teacher is MediaPipe's official bundle in ../shared/models. Steps:

1. Base faces: every 3rd frame of the GRID training clips, and the astronaut photo.
2. Synthetic expressions: each sample deforms a base face by a smooth image warp that acts out a
   random combination of facial motions (smile, frown, stretch, pucker, jaw open/sideways, lip
   raise/lower/press, mouth sideways, brow raise/lower, blink, squint, wide eyes, cheek puff,
   sneer, gaze shifts), at random intensities, then a random in-plane rotation and scale.
3. Labels: the official pipeline (its 478-point model + blendshape model) on the warped image.
   Input: facewire's package pipeline (468-point mesh + iris) on the same image → head-frame
   landmarks → `features`.
4. A two-layer network (ReLU, sigmoid output) fitted with Adam on the samples and their mirror
   images; validated on GRID clips held out of training.

Run: python tools/train_solver.py [--samples 6000] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

from facewire import arkit
from facewire.models import ensure_package_models, load_task_bundle
from facewire.vision.blendshapes import features, mirror_features
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
REAL_VARIANTS = 6  # each base image as it is, plus randomly rotated/scaled/mirrored copies
REAL_WEIGHT = 6  # real pairs are repeated this often in training: they teach the landmark-model gap
IRIS_MOVE = 0.45  # cm: how far a full gaze shift moves the iris centre in the head frame


class Sampler:
    """Runs both pipelines on base images and synthesises motions on the resulting landmark pairs."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.package = LandmarkTracker(ensure_package_models(progress=None))
        official = load_task_bundle(TASK)
        self.official = LandmarkTracker(official)
        self.teacher = MediaPipeBlendshapes(official.blendshapes)
        self.pose = PoseSolver()

    def observe(self, rgb: np.ndarray):
        """(features, teacher weights, package head-frame landmarks, official landmarks) or None."""
        self.package.reset()
        self.official.reset()
        a, b = self.package(rgb), self.official(rgb)
        if not a or not b:
            return None
        pose = self.pose(a[0].landmarks, (rgb.shape[1], rgb.shape[0]))
        return features(pose.head_frame), self.teacher(b[0].landmarks), pose.head_frame, b[0].landmarks

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
    """A random in-plane rotation, scale, shift and mirror of a whole image (real landmark noise)."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h),
                                float(rng.uniform(-30, 30)), float(rng.uniform(0.6, 1.3)))
    out = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return out[:, ::-1].copy() if rng.random() < 0.5 else out


def _grid_frames(held_out: bool, every: int = 3) -> list[np.ndarray]:
    frames = []
    for clip in sorted(GRID.glob("*.mpg")):
        if (clip.stem in HELD_OUT) != held_out:
            continue
        with av.open(str(clip)) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i % every == 0:
                    frames.append(f.to_ndarray(format="rgb24"))
    return frames


def _bases() -> list[np.ndarray]:
    import skimage.data

    astronaut = skimage.data.astronaut()
    return _grid_frames(held_out=False, every=1) + [astronaut] * 40


def _work(args: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Real samples (similarity-augmented base images) and synthetic ones from one worker."""
    seed, count = args
    sampler = Sampler(seed)
    bases = _bases()[seed % 2::2]
    observed = []
    for img in bases:
        for k in range(REAL_VARIANTS):
            got = sampler.observe(img if k == 0 else _similarity(img, sampler.rng))
            if got is not None:
                observed.append(got)
    real_x, real_y = np.array([o[0] for o in observed]), np.array([o[1] for o in observed])
    syn = [sampler.synthesise(observed[sampler.rng.integers(len(observed))]) for _ in range(count)]
    return real_x, real_y, np.array([s[0] for s in syn]), np.array([s[1] for s in syn])


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------
def train(x: np.ndarray, y: np.ndarray, out_index: np.ndarray, hidden: int = 96, epochs: int = 100, decay: float = 1e-4,
          seed: int = 0):
    rng = np.random.default_rng(seed)
    mean, std = x.mean(0), x.std(0) + 1e-3
    z = ((x - mean) / std).astype(np.float32)
    t = y[:, out_index].astype(np.float32)
    w1 = (rng.standard_normal((z.shape[1], hidden)) * math.sqrt(2 / z.shape[1])).astype(np.float32)
    b1 = np.zeros(hidden, np.float32)
    w2 = (rng.standard_normal((hidden, t.shape[1])) * math.sqrt(1 / hidden)).astype(np.float32)
    b2 = np.zeros(t.shape[1], np.float32)
    params = [w1, b1, w2, b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, b1m, b2m, step = 2e-3, 0.9, 0.999, 0
    batch = 128
    for epoch in range(epochs):
        order = rng.permutation(len(z))
        for i in range(0, len(z), batch):
            idx = order[i:i + batch]
            h_pre = z[idx] @ w1 + b1
            h = np.maximum(h_pre, 0)
            p = 1 / (1 + np.exp(-(h @ w2 + b2)))
            g_out = (p - t[idx]) * p * (1 - p) * (2 / len(idx))  # MSE through the sigmoid
            grads = [None] * 4
            grads[3] = g_out.sum(0)
            grads[2] = h.T @ g_out + decay * w2
            g_h = (g_out @ w2.T) * (h_pre > 0)
            grads[1] = g_h.sum(0)
            grads[0] = z[idx].T @ g_h + decay * w1
            step += 1
            rate = lr * (0.5 * (1 + math.cos(math.pi * epoch / epochs)))
            for k, (p_, g) in enumerate(zip(params, grads)):
                m[k] = b1m * m[k] + (1 - b1m) * g
                v[k] = b2m * v[k] + (1 - b2m) * g * g
                p_ -= rate * (m[k] / (1 - b1m**step)) / (np.sqrt(v[k] / (1 - b2m**step)) + 1e-8)
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32), "w1": w1, "b1": b1, "w2": w2, "b2": b2,
            "out_index": out_index.astype(np.int16)}


def report(weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, label: str) -> None:
    from facewire.vision.blendshapes import BlendshapeSolver

    pred = BlendshapeSolver(weights).predict(x)
    moving = [i for i in range(arkit.COUNT) if y[:, i].std() > 0.05]
    rs = [np.corrcoef(pred[:, i], y[:, i])[0, 1] for i in moving]
    mae = np.abs(pred - y).mean()
    print(f"{label}: n={len(x)} MAE={mae:.4f} mean r over {len(moving)} moving channels={np.mean(rs) if rs else float('nan'):.3f}")
    for i, r in zip(moving, rs):
        print(f"   {arkit.NAMES[i]:20s} r={r:.3f} std={y[:, i].std():.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=40000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--real-weight", type=int, default=REAL_WEIGHT)
    ap.add_argument("--decay", type=float, default=1e-4)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/facewire-solver-samples.npz"))
    args = ap.parse_args()
    if not TASK.exists():
        sys.exit(f"teacher bundle not found: {TASK}")
    t0 = time.time()
    if args.cache.exists():
        data = np.load(args.cache)
    else:
        per = args.samples // args.workers
        with mp.get_context("spawn").Pool(args.workers) as pool:
            parts = pool.map(_work, [(1000 + k, per) for k in range(args.workers)])
        np.savez(args.cache, real_x=np.concatenate([p[0] for p in parts]), real_y=np.concatenate([p[1] for p in parts]),
                 syn_x=np.concatenate([p[2] for p in parts]), syn_y=np.concatenate([p[3] for p in parts]))
        data = np.load(args.cache)
    real_x, real_y, syn_x, syn_y = data["real_x"], data["real_y"], data["syn_x"], data["syn_y"]
    print(f"{len(real_x)} real and {len(syn_x)} synthetic samples in {time.time() - t0:.0f} s")
    x = np.concatenate([np.repeat(real_x, args.real_weight, 0), syn_x])
    y = np.concatenate([np.repeat(real_y, args.real_weight, 0), syn_y])
    xm, ym = mirror_features(x), arkit.mirror_weights(y)
    x_all, y_all = np.concatenate([x, xm]), np.concatenate([y, ym])
    out_index = np.array([i for i in range(arkit.COUNT) if arkit.NAMES[i] != "tongueOut"])
    weights = train(x_all, y_all, out_index, hidden=args.hidden, epochs=args.epochs, decay=args.decay)
    report(weights, real_x, real_y, "train (real)")
    sampler = Sampler(7)
    val = [sampler.observe(f) for f in _grid_frames(held_out=True, every=1)]
    val = [v for v in val if v is not None]
    report(weights, np.array([v[0] for v in val]), np.array([v[1] for v in val]), "held-out GRID clips")
    np.savez_compressed(OUT, **weights)
    print(f"wrote {OUT} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
