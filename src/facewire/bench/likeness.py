"""``facewire bench likeness``: false-accept / false-reject rates and cost of the likeness registry's face matching.

Real faces: the six GRID clips (one speaker each, see `SPEAKERS`), sampled at evenly spaced frames,
plus skimage's astronaut and cameraman; degraded copies (JPEG q=30, half size, mirrored, darker) of
the astronaut and of one frame per speaker add genuine pairs across conditions. Every pair of
embeddings is a genuine pair (same person) or an impostor pair (different people); the run prints
their distance distributions, FAR/FRR at the registry's threshold and nearby ones, an end-to-end
registry check (register from the first half of each clip, identify the second half), and the
embedding cost with facewire's detector against dlib's HOG detector on the same frames.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

HELP = "face matching for the likeness registry: false-accept/false-reject rates, distances, embed cost"

#: GRID clip → speaker. GRID file names encode the sentence, not the speaker, so identity was
#: established by looking at the faces: frames 5, 40 and 70 of each clip were saved as PNG crops
#: and compared by eye (hair, glasses, clothing, face shape, backdrop); all six are different
#: people. The embeddings agree: within a clip every distance is < 0.35, across clips > 0.55.
SPEAKERS = {
    "bbaf2n": "man, dark tousled hair, denim shirt, blue backdrop",
    "brbk7n": "young woman, long light-brown hair, black jacket, blue backdrop",
    "lbax4n": "young man, ginger hair, glasses, teal backdrop",
    "lbbc2a": "woman, dark hair tied back, pink top, blue backdrop",
    "lrwp9a": "young woman, long brown hair, earrings, green top, teal backdrop",
    "lwbsza": "older woman, grey curly hair, dark top, blue backdrop",
}
PACKAGE_FACES = ("astronaut", "camera")  # skimage.data stills with a detectable face (Eileen Collins; the cameraman)
DEGRADATIONS = ("jpeg30", "half", "mirror", "dark")
THRESHOLDS = (0.40, 0.45, 0.50, 0.55, 0.60, 0.65)


def _default_grid() -> Path:
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "video" / "grid"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", default=None, metavar="DIR",
                   help="folder with the GRID clips (default ../shared/data/video/grid beside the repository)")
    p.add_argument("--frames", type=int, default=15, help="frames sampled per clip (default 15)")
    p.add_argument("--threshold", type=float, default=None,
                   help="distance threshold to report FAR/FRR at (default: the registry's)")


@dataclass(frozen=True)
class _Sample:
    person: str
    label: str
    vector: np.ndarray


def _degrade(rgb: np.ndarray, how: str) -> np.ndarray:
    if how == "jpeg30":
        _ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 30])
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if how == "half":
        return cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if how == "mirror":
        return np.ascontiguousarray(rgb[:, ::-1])
    if how == "dark":
        return (255.0 * (rgb / 255.0) ** 1.8).astype(np.uint8)
    raise ValueError(how)


def _clip_frames(path: Path, count: int) -> list[tuple[int, np.ndarray]]:
    from ..media import open_input

    with open_input(path) as source:
        frames = [img.rgb for img in source]
    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    return [(int(i), frames[i]) for i in picks]


def _stats(d: np.ndarray) -> str:
    p5, p50, p95 = np.percentile(d, [5, 50, 95])
    return f"median {p50:.3f}  p5 {p5:.3f}  p95 {p95:.3f}  min {d.min():.3f}  max {d.max():.3f}"


def _ms(values: list[float]) -> str:
    a = np.array(values)
    return f"p50 {np.median(a):6.1f}  p95 {np.percentile(a, 95):6.1f} ms"


def main(args: argparse.Namespace) -> int:
    import skimage.data
    from tqdm import tqdm

    from ..trust.embedding import FaceEmbedder
    from ..trust.registry import DEFAULT_THRESHOLD, LikenessRegistry

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    grid = Path(args.grid) if args.grid else _default_grid()
    clips = {stem: grid / f"{stem}.mpg" for stem in SPEAKERS}
    missing = [str(p) for p in clips.values() if not p.is_file()]
    if missing:
        raise InputError(f"GRID clips: expected {len(clips)} clips in {grid}, missing {', '.join(missing)}")
    if args.frames < 4:
        raise InputError(f"--frames: expected at least 4, got {args.frames}")

    embedder = FaceEmbedder()
    hog = FaceEmbedder(detector="dlib")
    stills: list[tuple[str, str, np.ndarray]] = []  # (person, label, rgb)
    for stem, path in clips.items():
        for i, rgb in _clip_frames(path, args.frames):
            stills.append((stem, f"{stem}#{i}", rgb))
    firsts = {}
    for person, label, rgb in stills:
        firsts.setdefault(person, (label, rgb))
    stills += [("astronaut", "astronaut", skimage.data.astronaut()),
               ("camera", "camera", np.repeat(skimage.data.camera()[:, :, None], 3, axis=2))]
    firsts["astronaut"] = ("astronaut", stills[-2][2])
    for person, (label, rgb) in firsts.items():
        stills += [(person, f"{label}/{how}", _degrade(rgb, how)) for how in DEGRADATIONS]

    print(f"facewire bench likeness — {len(SPEAKERS)} GRID speakers × {args.frames} frames, "
          f"{len(PACKAGE_FACES)} skimage faces, {len(DEGRADATIONS)} degradations of {len(firsts)} faces")
    print("speakers (clip: who; identity established by eye, see SPEAKERS):")
    for stem, who in SPEAKERS.items():
        print(f"  {stem}: {who}")

    samples: list[_Sample] = []
    detect_ms, detect_hog_ms, embed_ms, misses, hog_misses, hog_extra = [], [], [], [], [], []
    pipeline_gap: list[float] = []
    embedder.embed(stills[0][2])  # load the detector models before timing
    for person, label, rgb in tqdm(stills, desc="embedding", unit="face", file=sys.stderr, leave=False):
        rgb = np.ascontiguousarray(rgb)
        t0 = time.perf_counter()
        embedder.detect(rgb)
        t1 = time.perf_counter()
        faces = embedder.embed(rgb)
        t2 = time.perf_counter()
        boxes_hog = hog.detect(rgb)
        t3 = time.perf_counter()
        detect_ms.append((t1 - t0) * 1e3)
        embed_ms.append((t2 - t1) * 1e3)
        detect_hog_ms.append((t3 - t2) * 1e3)
        if not boxes_hog:
            hog_misses.append(label)
        elif len(boxes_hog) > 1:
            hog_extra.append(label)
        if len(faces) != 1:
            misses.append(f"{label} ({len(faces)} faces)")
            continue
        samples.append(_Sample(person, label, faces[0].vector))
        if boxes_hog and label.endswith(("#0", "astronaut")):
            # same frame through dlib's own detector: how much the detector choice moves the embedding
            other = hog.embed(rgb)
            if other:
                pipeline_gap.append(min(float(np.linalg.norm(o.vector - faces[0].vector)) for o in other))

    genuine, impostor = [], []
    worst_genuine = closest_impostor = None
    for a, b in itertools.combinations(samples, 2):
        d = float(np.linalg.norm(a.vector - b.vector))
        if a.person == b.person:
            genuine.append(d)
            if worst_genuine is None or d > worst_genuine[0]:
                worst_genuine = (d, a.label, b.label)
        else:
            impostor.append(d)
            if closest_impostor is None or d < closest_impostor[0]:
                closest_impostor = (d, a.label, b.label)
    g, imp = np.array(genuine), np.array(impostor)

    print(f"faces embedded: {len(samples)} of {len(stills)} images"
          + (f"; not exactly one face in: {', '.join(misses)}" if misses else ""))
    print(f"genuine pairs  (same person)      n={len(g):5d}  {_stats(g)}")
    print(f"impostor pairs (different people) n={len(imp):5d}  {_stats(imp)}")
    print(f"farthest genuine pair: {worst_genuine[0]:.3f} ({worst_genuine[1]} vs {worst_genuine[2]})")
    print(f"closest impostor pair: {closest_impostor[0]:.3f} ({closest_impostor[1]} vs {closest_impostor[2]})")
    print("threshold   false-accept (impostors ≤ t)   false-reject (genuines > t)")
    for t in sorted({*THRESHOLDS, threshold}):
        fa, fr = int((imp <= t).sum()), int((g > t).sum())
        mark = "  ← registry default" if t == DEFAULT_THRESHOLD else ("  ← chosen" if t == threshold else "")
        print(f"  {t:.2f}      {fa:5d}/{len(imp)} = {fa / len(imp):7.3%}        "
              f"{fr:5d}/{len(g)} = {fr / len(g):7.3%}{mark}")

    # end to end through a real registry file: enroll from the first half of each clip, probe the rest
    with tempfile.TemporaryDirectory(prefix="facewire-bench-") as tmp:
        registry = LikenessRegistry(Path(tmp) / "likeness.db", embedder=embedder, threshold=threshold)
        by_person: dict[str, list[_Sample]] = {}
        for s in samples:
            if "/" not in s.label and "#" in s.label:
                by_person.setdefault(s.person, []).append(s)
        probes = []
        for person, group in by_person.items():
            half = len(group) // 2
            registry.add(person, [s.vector for s in group[:half]], asset_sha256=hashlib.sha256(person.encode()).hexdigest())
            probes += group[half:]
        probes += [s for s in samples if s.person not in by_person]  # unregistered people
        right = wrong = missed = rejected = 0
        for s in probes:
            m = registry.match(s.vector)
            if s.person in by_person:
                right += m is not None and m.subject == s.person
                wrong += m is not None and m.subject != s.person
                missed += m is None
            else:
                wrong += m is not None
                rejected += m is None
        registry.close()
    enrolled = sum(1 for s in probes if s.person in by_person)
    print(f"registry (enrolled from first half of each clip, threshold {threshold:.2f}): "
          f"{right}/{enrolled} later frames identified, {missed} missed, {wrong} matched the wrong person; "
          f"{rejected}/{len(probes) - enrolled} unregistered faces rejected")

    print("embed cost per image (single face, 360×288 GRID frames and 512×512 stills):")
    print(f"  facewire detector (BlazeFace + tiles + mesh check)   {_ms(detect_ms)}")
    print(f"  dlib HOG detector                                    {_ms(detect_hog_ms)}")
    print(f"  embed() total (detect + 5-point align + ResNet)      {_ms(embed_ms)}")
    print(f"  HOG / facewire detector (p50): {np.median(detect_hog_ms) / np.median(detect_ms):.1f}×; "
          f"HOG found no face in {len(hog_misses)} and extra faces in {len(hog_extra)} of {len(stills)} images"
          + (f" ({', '.join(hog_misses + hog_extra)})" if hog_misses or hog_extra else ""))
    small = FaceEmbedder(small_faces=True)
    camera = np.repeat(skimage.data.camera()[:, :, None], 3, axis=2)
    pair = np.concatenate([camera, skimage.data.astronaut()], axis=1)  # a 65 px face beside a 100 px one
    coarse_ms, fine_ms = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        n_coarse = len(embedder.detect(pair))
        t1 = time.perf_counter()
        n_fine = len(small.detect(pair))
        coarse_ms.append((t1 - t0) * 1e3)
        fine_ms.append((time.perf_counter() - t1) * 1e3)
    print(f"  1024×512 pair (cameraman + astronaut): default detector {n_coarse} face(s) "
          f"p50 {np.median(coarse_ms):.1f} ms; small_faces=True {n_fine} face(s) p50 {np.median(fine_ms):.1f} ms")
    if pipeline_gap:
        print(f"  same frame, facewire vs HOG detector: embedding distance median {np.median(pipeline_gap):.3f} "
              f"(max {max(pipeline_gap):.3f}, n={len(pipeline_gap)})")
    ok = closest_impostor[0] > threshold and worst_genuine[0] <= threshold
    print(f"separation at {threshold:.2f}: {'clean' if ok else 'NOT clean'} "
          f"(margin to closest impostor {closest_impostor[0] - threshold:+.3f}, "
          f"to farthest genuine {threshold - worst_genuine[0]:+.3f})")
    return 0
