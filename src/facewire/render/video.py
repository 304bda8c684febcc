"""Rendered pictures to files: H.264 + AAC video through PyAV, or one PNG, written atomically and
passed through the trust seam (`facewire.render.seal`) on the way. Mesh avatars go through the
moderngl renderer, photo avatars through the CPU photo warper (`facewire.render.photo`).

Timing: video time 0 is the take's first frame; frame i shows the take at ``t0 + i / fps``, its
weights, head angles and gaze interpolated linearly between the two nearest recorded frames
(frames without a face are skipped: the face holds its last tracked values). The audio starts at
video time 0 too. The take decides the length: the audio is padded with silence or cut to exactly
``frames / fps`` seconds, so picture and sound end together and stay in sync within a frame.

Same pictures, same bytes (issue 9): libx264's AVX-512 code lets uninitialised heap memory into the
bitstream. With PyAV 18.1 (x264 core 165) on an AVX-512 CPU, 9 identical noisy frames at 96×96 or
320×240 encode to different P-frames depending on ``MALLOC_PERTURB_`` (the I-frame and the AAC
packets stay the same), and one process encoding the same clip again on a reused heap (a worker)
can get other bytes too. The drift does not go away with ``threads=1``/``sliced-threads=0``, ``psy=0``,
``trellis=0`` or other ``me`` settings. It does go away with ``asm=0``, with ``mbtree=0``/``rc-lookahead=0`` (MB-tree
lookahead) and with the CPU flags minus AVX512. Every AVX2-or-lower encode gave the bytes the unperturbed
AVX-512 run gave. So `write_video` asks libx264 for the CPU features it detects, less AVX-512
(`x264_params`). That costs no quality (same bitstream) and about 10% more encode CPU. Where libx264 cannot be found
beside PyAV or on the system, the encoder keeps its defaults and AVX-512 machines may still drift.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError, OutputError
from ..frame import FaceFrame, Gaze, HeadPose
from .mesh import AvatarMesh
from .seal import NoSeal, Seal

if TYPE_CHECKING:
    from .photo import PhotoAvatar

__all__ = [
    "AUDIO_RATE",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Rendered",
    "check_output",
    "frame_at",
    "h264_options",
    "load_audio",
    "render_take",
    "sample_take",
    "write_png",
    "write_video",
    "x264_params",
]

AUDIO_RATE = 48_000
VIDEO_SUFFIXES = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
IMAGE_SUFFIXES = (".png",)
CRF, PRESET = "18", "veryfast"  # visually clean faces; encoding stays well ahead of rendering
X264_CPU_AVX512 = 1 << 16  # X264_CPU_AVX512 in x264.h: the code path that reads uninitialised memory


@dataclass(frozen=True)
class Rendered:
    """What `render_take` wrote: the path, the frame count, the frame rate and the duration."""

    path: Path
    frames: int
    fps: float
    duration_s: float
    audio: bool = False


# -- sampling the take --------------------------------------------------------------------------
def _arrays(frames: Iterable[FaceFrame]) -> dict[str, np.ndarray]:
    rows = [f for f in frames]
    if not rows:
        raise InputError("take: expected at least one frame, got an empty take")
    tracked = [f for f in rows if f.tracked] or rows[:1]
    t = np.array([f.t_ns for f in tracked], dtype=np.int64)
    if np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        tracked = [tracked[i] for i in order]
        t = t[order]
    return {
        "t0": np.int64(rows[0].t_ns),
        "t1": np.int64(max(f.t_ns for f in rows)),
        "t": t,
        "weights": np.stack([f.weights for f in tracked]).astype(np.float64),
        "head": np.array([[f.head.yaw_deg, f.head.pitch_deg, f.head.roll_deg] for f in tracked]),
        "gaze": np.array([[f.gaze.left_yaw_deg, f.gaze.left_pitch_deg, f.gaze.right_yaw_deg, f.gaze.right_pitch_deg]
                          for f in tracked]),
        "source": rows[0].source,
    }


def _interp(t: np.ndarray, at: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of each column of ``values`` (rows at times ``t``) at times ``at``, held at the ends."""
    if len(t) == 1:
        return np.repeat(values, len(at), axis=0)
    hi = np.clip(np.searchsorted(t, at, side="right"), 1, len(t) - 1)
    lo = hi - 1
    span = (t[hi] - t[lo]).astype(np.float64)
    alpha = np.clip(np.where(span > 0, (at - t[lo]) / np.where(span > 0, span, 1), 0.0), 0.0, 1.0)[:, None]
    return values[lo] * (1 - alpha) + values[hi] * alpha


def _frames_at(take: dict[str, np.ndarray], at_ns: np.ndarray) -> Iterator[FaceFrame]:
    weights = np.clip(_interp(take["t"], at_ns, take["weights"]), 0.0, 1.0).astype(np.float32)
    head = _interp(take["t"], at_ns, take["head"])
    gaze = _interp(take["t"], at_ns, take["gaze"])
    for i, t_ns in enumerate(at_ns):
        yield FaceFrame(t_ns=int(t_ns), seq=i, source=str(take["source"]), weights=weights[i],
                        head=HeadPose(*head[i]), gaze=Gaze(*gaze[i]))


def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not (math.isfinite(fps) and 1.0 <= fps <= 240.0):
        raise InputError(f"fps: expected a frame rate between 1 and 240, got {fps:g}")
    return fps


def sample_take(frames: Iterable[FaceFrame], fps: float) -> list[FaceFrame]:
    """The take resampled at ``fps`` from its first frame: frame i at ``t0 + i / fps`` (see the module doc)."""
    fps = _check_fps(fps)
    take = _arrays(frames)
    count = math.floor((take["t1"] - take["t0"]) / 1e9 * fps + 1e-6) + 1
    at_ns = take["t0"] + np.round(np.arange(count) * (1e9 / fps)).astype(np.int64)
    return list(_frames_at(take, at_ns))


def frame_at(frames: Iterable[FaceFrame], at_s: float) -> FaceFrame:
    """The take at ``at_s`` seconds after its first frame (interpolated like `sample_take`)."""
    take = _arrays(frames)
    duration_s = (take["t1"] - take["t0"]) / 1e9
    if not (math.isfinite(at_s) and 0.0 <= at_s <= duration_s + 1e-9):
        raise InputError(f"--at: expected a time between 0 and {duration_s:.3f} s (the take's length), got {at_s:g}")
    return next(_frames_at(take, np.array([take["t0"] + round(at_s * 1e9)], dtype=np.int64)))


# -- audio --------------------------------------------------------------------------------------
def load_audio(path: str | os.PathLike[str], rate: int = AUDIO_RATE) -> np.ndarray:
    """A sound file's first audio stream as float32 (channels, samples) at ``rate`` Hz (mono or stereo)."""
    import av

    name = os.fspath(path)
    if not os.path.isfile(name):
        raise InputError(f"audio {name}: expected an existing sound file, got no such file")
    try:
        with av.open(name) as container:
            if not container.streams.audio:
                raise InputError(f"audio {name}: expected a file with an audio stream, got none")
            stream = container.streams.audio[0]
            layout = "mono" if (stream.codec_context.channels or 1) == 1 else "stereo"
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            chunks = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except InputError:
        raise
    except (av.error.FFmpegError, ValueError) as exc:
        raise InputError(f"audio {name}: cannot decode it ({exc})") from exc
    if not chunks:
        raise InputError(f"audio {name}: expected sound, got no samples")
    return np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)


# -- writing ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _sealed_output(path: str | os.PathLike[str], seal: Seal, info: dict[str, Any]) -> Iterator[Path]:
    """A temporary path beside ``path``; on success the seal finishes it and it replaces ``path`` at once."""
    target = Path(os.path.realpath(os.fspath(path)))
    if target.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory")
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    leftovers = {tmp}
    try:
        yield tmp
        sealed = Path(seal.finish(tmp, info))
        leftovers.add(sealed)
        with open(sealed, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(sealed, 0o666 & ~_umask())
        os.replace(sealed, target)
        leftovers.discard(sealed)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        for p in leftovers:
            with contextlib.suppress(OSError):
                p.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _rgb(picture: np.ndarray, index: int, size: tuple[int, int] | None) -> np.ndarray:
    arr = np.asarray(picture)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"frame {index}: expected uint8 H×W×3 RGB, got {arr.dtype} {'×'.join(map(str, arr.shape))}")
    if size is not None and arr.shape[:2] != size:
        raise InputError(f"frame {index}: expected {size[1]}×{size[0]} like frame 0, got {arr.shape[1]}×{arr.shape[0]}")
    return arr


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike[str], fps: float,
                audio: str | os.PathLike[str] | np.ndarray | None = None, seal: Seal | None = None, *,
                info: dict[str, Any] | None = None, total: int | None = None, progress: bool = True) -> int:
    """Encode RGB pictures (uint8 H×W×3, even sizes) as H.264 (yuv420p) at ``fps``, with AAC sound.

    ``audio`` is a sound file or float32 (channels, samples) at `AUDIO_RATE`; it is padded with
    silence or cut to the pictures' length. Each picture passes ``seal.mark_frame`` before encoding
    and the finished file ``seal.finish`` before it replaces ``path``. Returns the frame count.
    """
    import av
    from tqdm import tqdm

    fps = _check_fps(fps)
    seal = seal or NoSeal()
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise InputError(f"{path}: expected a video file name ending {', '.join(VIDEO_SUFFIXES)}, got {suffix or 'no suffix'!r}")
    sound = load_audio(audio) if audio is not None and not isinstance(audio, np.ndarray) else audio
    if sound is not None:
        sound = np.atleast_2d(np.asarray(sound, np.float32))
        if sound.shape[0] not in (1, 2):
            raise InputError(f"audio: expected 1 or 2 channels, got {sound.shape[0]}")
    rate_q = _fraction(fps)
    meta = dict(info or {})
    count = 0
    with _sealed_output(path, seal, meta) as tmp:
        try:
            container = av.open(str(tmp), mode="w", format=VIDEO_SUFFIXES[suffix])
        except av.error.FFmpegError as exc:
            raise OutputError(f"cannot write {path}: {exc}") from exc
        with container, tqdm(total=total, unit="frame", desc=f"rendering {Path(path).name}", file=sys.stderr,
                             dynamic_ncols=True, disable=not progress, leave=False) as bar:
            video = audio_stream = None
            size = None
            fed = 0  # audio samples sent so far
            for index, picture in enumerate(frames):
                rgb = _rgb(picture, index, size)
                if video is None:
                    size = rgb.shape[:2]
                    if size[0] % 2 or size[1] % 2:
                        raise InputError(f"video size: expected even width and height for yuv420p, got "
                                         f"{size[1]}×{size[0]}")
                    video = container.add_stream("libx264", rate=rate_q)
                    video.width, video.height, video.pix_fmt = size[1], size[0], "yuv420p"
                    video.options = h264_options(crf=CRF, preset=PRESET)
                    if sound is not None:
                        layout = "mono" if sound.shape[0] == 1 else "stereo"
                        audio_stream = container.add_stream("aac", rate=AUDIO_RATE, layout=layout)
                marked = seal.mark_frame(rgb, index)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_rgb(marked, index, size)), format="rgb24")
                frame.pts = index
                container.mux(video.encode(frame))
                count += 1
                if audio_stream is not None:  # keep the sound interleaved: up to the end of this picture
                    fed = _feed_audio(container, audio_stream, sound, fed, round(count * AUDIO_RATE / fps))
                bar.update(1)
            if video is None:
                raise InputError("video: expected at least one frame, got none")
            container.mux(video.encode())
            if audio_stream is not None:
                _feed_audio(container, audio_stream, sound, fed, round(count * AUDIO_RATE / fps), final=True)
                container.mux(audio_stream.encode())
        meta.setdefault("frames", count)
        meta.setdefault("fps", fps)
    return count


def _x264_library() -> ctypes.CDLL | None:
    """The libx264 PyAV's encoder uses: the one its wheel bundles, else the system's; None if neither loads."""
    import av

    here = Path(av.__file__).resolve().parent
    candidates: list[str] = [str(p) for p in (*sorted(here.parent.glob("av.libs/libx264*")),
                                              *sorted(here.glob(".dylibs/libx264*")))]
    system = ctypes.util.find_library("x264")
    if system:
        candidates.append(system)
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
            detect = lib.x264_cpu_detect
        except (OSError, AttributeError):
            continue
        detect.restype, detect.argtypes = ctypes.c_uint32, []
        return lib
    return None


@functools.cache
def _x264_cpu_flags() -> int | None:
    """The CPU features libx264 detects and would use by default (``X264_CPU_*`` bits), or None."""
    lib = _x264_library()
    return None if lib is None else int(lib.x264_cpu_detect())


@functools.cache
def x264_params() -> str:
    """The ``x264-params`` that make H.264 encoding byte-reproducible: the CPU features libx264
    detects less AVX-512 (see the module doc); empty where AVX-512 is absent or unknown."""
    flags = _x264_cpu_flags()
    if flags is None or not flags & X264_CPU_AVX512:
        return ""
    return f"asm={flags & ~X264_CPU_AVX512}"


def h264_options(**options: str) -> dict[str, str]:
    """libx264 ``options`` plus `x264_params`: every H.264 file facewire writes is reproducible."""
    params = x264_params()
    return {**options, "x264-params": params} if params else dict(options)


def _fraction(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


def _feed_audio(container: Any, stream: Any, sound: np.ndarray, fed: int, until: int, final: bool = False) -> int:
    """Encode sound samples [fed, until) in encoder-sized frames (silence past the end of ``sound``);
    a shorter remainder waits for the next call unless this is the ``final`` one."""
    import av

    size = stream.codec_context.frame_size or 1024
    layout = "mono" if sound.shape[0] == 1 else "stereo"
    while until - fed >= size or (final and until > fed):
        n = min(size, until - fed)
        chunk = np.zeros((sound.shape[0], n), np.float32)
        have = max(0, min(n, sound.shape[1] - fed))
        if have:
            chunk[:, :have] = sound[:, fed:fed + have]
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = AUDIO_RATE
        frame.pts = fed
        container.mux(stream.encode(frame))
        fed += n
    return fed


def write_png(picture: np.ndarray, path: str | os.PathLike[str], seal: Seal | None = None, *,
              info: dict[str, Any] | None = None) -> None:
    """Write one RGB or RGBA picture (uint8, top row first) as PNG, sealed and atomically."""
    import cv2

    seal = seal or NoSeal()
    arr = np.asarray(picture)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InputError(f"picture: expected uint8 H×W×3 or H×W×4, got {arr.dtype} {'×'.join(map(str, arr.shape))}")
    rgb = seal.mark_frame(np.ascontiguousarray(arr[:, :, :3]), 0)
    arr = np.concatenate([rgb, arr[:, :, 3:]], axis=2) if arr.shape[2] == 4 else rgb
    code = cv2.COLOR_RGBA2BGRA if arr.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(arr), code))
    if not ok:
        raise OutputError(f"cannot encode {path} as PNG")
    with _sealed_output(path, seal, dict(info or {}, frames=1)) as tmp:
        tmp.write_bytes(data.tobytes())


# -- the whole job ------------------------------------------------------------------------------
def check_output(out: str | os.PathLike[str], size: tuple[int, int], fps: float) -> str:
    """Refuse an output `render_take` cannot write (its suffix, an odd video size, the frame rate)
    before any work; returns the suffix."""
    suffix = Path(out).suffix.lower()
    if suffix not in VIDEO_SUFFIXES and suffix not in IMAGE_SUFFIXES:
        raise InputError(f"{out}: expected an output ending {', '.join([*VIDEO_SUFFIXES, *IMAGE_SUFFIXES])}, "
                         f"got {suffix or 'no suffix'!r}")
    _check_fps(fps)
    if suffix in VIDEO_SUFFIXES and (size[0] % 2 or size[1] % 2):
        raise InputError(f"--size: expected an even width and height for H.264, got {size[0]}x{size[1]}")
    return suffix


def _renderer(avatar: AvatarMesh | PhotoAvatar, size: tuple[int, int], background: Any) -> Any:
    """The mesh renderer (moderngl) for a mesh avatar, the photo warper (CPU) for a photo avatar."""
    from .photo import PhotoAvatar, PhotoRenderer

    if isinstance(avatar, PhotoAvatar):
        return PhotoRenderer(avatar, size)
    from .renderer import Renderer

    return Renderer(avatar, size, background)


def render_take(take_frames: Iterable[FaceFrame], avatar: AvatarMesh | PhotoAvatar, out: str | os.PathLike[str],
                size: tuple[int, int] = (512, 512), fps: float = 30.0, audio: str | os.PathLike[str] | None = None,
                seal: Seal | None = None, *, background: Any = "default", at_s: float = 0.0,
                progress: bool = True, info: dict[str, Any] | None = None) -> Rendered:
    """Render a take onto an avatar: a video (``.mp4``, ``.mov``, ``.mkv``; with ``audio`` muxed) or,
    for ``.png``, the one frame at ``at_s`` seconds. The seal marks every picture and the file;
    ``info`` (e.g. the take's SHA-256) goes to ``seal.finish`` with the avatar, size, fps and frames.

    A `facewire.render.photo.PhotoAvatar` animates a real person's photo: it needs a real seal
    (`facewire.render.trusted` makes one after the consent checks) and keeps the photo as its
    background (``background`` is ignored)."""
    from .photo import PhotoAvatar
    from .renderer import DEFAULT_BACKGROUND

    if isinstance(avatar, PhotoAvatar) and (seal is None or isinstance(seal, NoSeal)):
        raise InputError(f"avatar {avatar.name!r} is a photo of a real person: it renders only through a trust seal "
                         "(consent checked, output signed; see facewire.render.trusted)")
    seal = seal or NoSeal()
    out_path = Path(out)
    suffix = check_output(out_path, size, fps)
    bg = DEFAULT_BACKGROUND if background == "default" else background
    info = {**(info or {}), "avatar": avatar.name, "size": list(size), "fps": fps}
    if suffix in IMAGE_SUFFIXES:
        frame = frame_at(take_frames, at_s)
        with _renderer(avatar, size, bg) as renderer:
            transparent = getattr(renderer, "background", "photo") is None
            picture = renderer.render_rgba(frame) if transparent else renderer.render(frame)
        write_png(picture, out_path, seal, info=dict(info, at_s=at_s))
        return Rendered(out_path, 1, fps, 0.0)
    sound = load_audio(audio) if audio is not None else None  # a bad sound file fails before any rendering
    frames = sample_take(take_frames, fps)
    with _renderer(avatar, size, bg) as renderer:
        pictures = (renderer.render(f) for f in frames)
        count = write_video(pictures, out_path, fps, sound, seal, info=dict(info, frames=len(frames)),
                            total=len(frames), progress=progress)
    return Rendered(out_path, count, fps, count / fps, sound is not None)

