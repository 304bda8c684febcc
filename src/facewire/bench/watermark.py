"""``facewire bench watermark``: bit accuracy of the invisible watermark after re-encoding, its PSNR and cost.

Stills (the astronaut at 512×512 and 256×256, the first frame of each GRID clip at 360×288) are
marked with random payloads and attacked: H.264 CRF 28 (libx264 through PyAV, decoded back), JPEG
quality 75 (OpenCV), a 50% resize (area) and all three in turn. Videos (the moving astronaut clip at
512×384 and the GRID talking heads) are marked frame by frame, encoded at CRF 28 and read both per
frame and as a whole. Cost is the median per-frame time to embed and to read, single thread.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

from ..samples import astronaut, astronaut_clip
from ..trust import watermark

GRID_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "video" / "grid"
TARGET_BITS = 0.95
HELP = "invisible watermark: bits read after H.264 CRF 28, JPEG q75, resize to half; PSNR; per-frame cost"


def h264(frames: list[np.ndarray], crf: int = 28, fps: int = 25) -> list[np.ndarray]:
    """Encode ``frames`` with libx264 at ``crf`` (yuv420p) and decode them back."""
    import av

    from ..render.video import h264_options

    buf = io.BytesIO()
    h, w = frames[0].shape[:2]
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        stream.options = h264_options(crf=str(crf))
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: h - h % 2, : w - w % 2]),
                                                             format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as inp:
        return [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def jpeg(rgb: np.ndarray, quality: int = 75) -> np.ndarray:
    _, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def half(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)


ATTACKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda f: f,
    "H.264 CRF 28": lambda f: h264([f])[0],
    "JPEG q75": jpeg,
    "resize 50%": half,
    "all three": lambda f: half(jpeg(h264([f])[0])),
}


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _grid_clips(limit: int) -> list[Path]:
    return sorted(GRID_DIR.glob("*.mpg"))[:limit] if GRID_DIR.is_dir() else []


def _decode(path: Path, frames: int) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) >= frames:
                break
    return out


def _stills(clips: Iterable[Path]) -> dict[str, np.ndarray]:
    photo = astronaut()
    stills = {"astronaut 512×512": photo,
              "astronaut 256×256": cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA)}
    for clip in clips:
        stills[f"GRID {clip.stem} 360×288"] = _decode(clip, 1)[0]
    return stills


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--payloads", type=int, default=6, help="random payloads per still image (default 6)")
    p.add_argument("--frames", type=int, default=50, help="frames per video clip (default 50)")
    p.add_argument("--clips", type=int, default=3, help="GRID clips to use, when the shared data is there (default 3)")
    p.add_argument("--strength", type=float, default=watermark.DEFAULT_STRENGTH,
                   help=f"quantisation step (default {watermark.DEFAULT_STRENGTH:g})")


def main(args: argparse.Namespace) -> int:
    cv2.setNumThreads(1)
    rng = np.random.default_rng(2024)
    strength = args.strength
    clips = _grid_clips(max(args.clips, 0))
    print(f"facewire bench watermark — 48-bit payload + CRC-16, strength {strength:g}, single thread")
    if not clips:
        print(f"  (no GRID clips at {GRID_DIR}: stills and video from the astronaut only)")

    print("stills: bit accuracy (mean over payloads), payload read correctly (CRC) / tries, PSNR")
    print(f"  {'image':28s}" + "".join(f"{k:>15s}" for k in ATTACKS) + "   PSNR dB")
    worst_h264 = 1.0
    for name, image in _stills(clips).items():
        accs: dict[str, list[float]] = {k: [] for k in ATTACKS}
        hits = dict.fromkeys(ATTACKS, 0)
        psnrs = []
        for _ in range(args.payloads):
            payload = rng.bytes(watermark.PAYLOAD_BYTES)
            marked = watermark.embed(image, payload, strength=strength)
            psnrs.append(psnr_db(image, marked))
            for k, attack in ATTACKS.items():
                read = watermark.extract(attack(marked), strength=strength)
                accs[k].append(watermark.bit_accuracy(read, payload))
                hits[k] += read.payload == payload
        worst_h264 = min(worst_h264, float(np.mean(accs["H.264 CRF 28"])))
        cells = "".join(f"{np.mean(accs[k]) * 100:8.1f}% {hits[k]:2d}/{args.payloads:<2d}" for k in ATTACKS)
        print(f"  {name:28s}{cells}   {np.median(psnrs):5.1f}")

    print(f"videos through H.264 CRF 28 ({args.frames} frames each, every frame marked)")
    videos = {"astronaut clip 512×384 (moving)": [im.rgb for im in astronaut_clip(frames=args.frames, size=(512, 384))]}
    for clip in clips:
        videos[f"GRID {clip.stem} 360×288"] = _decode(clip, args.frames)
    for name, frames in videos.items():
        payload = rng.bytes(watermark.PAYLOAD_BYTES)
        marked = [watermark.embed(f, payload, strength=strength) for f in frames]
        decoded = h264(marked)
        per_frame = [watermark.bit_accuracy(watermark.extract(f, strength=strength), payload) for f in decoded]
        whole = watermark.combine([watermark.evidence(f, strength) for f in decoded])
        worst_h264 = min(worst_h264, float(np.mean(per_frame)))
        print(f"  {name:34s} per frame: mean {np.mean(per_frame) * 100:5.1f}%  min {np.min(per_frame) * 100:5.1f}%"
              f"   whole video: {watermark.bit_accuracy(whole, payload) * 100:5.1f}% "
              f"({'payload read' if whole.payload == payload else 'NOT read'}, confidence {whole.confidence:.2f})"
              f"   PSNR {np.median([psnr_db(a, b) for a, b in zip(frames, marked)]):.1f} dB")

    print("cost per frame (median ms, single thread)")
    photo = astronaut()
    for label, image in (("512×512", photo), ("1280×720", cv2.resize(photo, (1280, 720))),
                         ("1920×1080", cv2.resize(photo, (1920, 1080)))):
        marked = watermark.embed(image, b"\x00" * watermark.PAYLOAD_BYTES, strength=strength)
        e = _median_ms(functools.partial(watermark.embed, image, b"\x00" * watermark.PAYLOAD_BYTES,
                                         strength=strength), 30)
        x = _median_ms(functools.partial(watermark.extract, marked, strength=strength), 30)
        print(f"  {label:10s} embed {e:6.2f} ms   extract {x:6.2f} ms")
    met = worst_h264 >= TARGET_BITS
    print(f"target ≥ {TARGET_BITS * 100:.0f}% bits after H.264 CRF 28: {'met' if met else 'NOT met'} "
          f"(worst mean {worst_h264 * 100:.1f}%)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(argparse.Namespace(payloads=6, frames=50, clips=3, strength=watermark.DEFAULT_STRENGTH)))
