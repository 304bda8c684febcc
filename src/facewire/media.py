"""Image and video input for ``facewire track INPUT``: video files, stills, image folders, cameras.

Every source yields read-only RGB `Image`s; every failure is an `InputError` (`DeviceError` for
cameras) whose one-line message starts with the input's name.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Self

import av
import cv2
import numpy as np

from .errors import DeviceError, InputError

__all__ = [
    "DEFAULT_FPS",
    "IMAGE_SUFFIXES",
    "MAX_SIDE",
    "Image",
    "MediaSource",
    "MediaWarning",
    "open_input",
    "probe_kind",
    "read_image",
]

DEFAULT_FPS = 30.0
"""Frame rate given to image folders (and to video frames without timestamps) when none is set."""

MAX_SIDE = 4096
"""Frames whose longer side exceeds this many pixels are downscaled (cv2.INTER_AREA) on input.

The tracker only ever looks at a 128/192 px face crop, while one 8K RGB frame costs ~100 MB and
every later copy or colour conversion of it costs as much again; area averaging keeps the detail
that survives to the crop and avoids aliasing. Pass ``max_side=None`` to keep full resolution.
"""

IMAGE_SUFFIXES = frozenset((
    ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".jp2", ".j2k",
    ".pbm", ".pgm", ".ppm", ".pnm", ".pxm", ".pfm", ".exr", ".hdr", ".pic", ".sr", ".ras", ".avif",
))
"""File name endings taken from an image folder (other files, and hidden ones, are ignored)."""

_CAMERA = re.compile(r"camera:(.*)", re.DOTALL)
_NATURAL = re.compile(r"(\d+)")
_CV2_FALLBACK_MAX_BYTES = 256 << 20  # files without an image signature are offered to OpenCV up to this size


class MediaWarning(UserWarning):
    """A recoverable problem with an input, e.g. a video that ends before its declared length."""


@dataclass(frozen=True, slots=True)
class Image:
    """One input picture at one media instant.

    ``t_ns`` is media time in integer nanoseconds from the start of the input; ``capture_ns`` the
    monotonic clock reading when a live frame was captured (0 for files); ``index`` counts frames
    from 0. ``rgb`` is H×W×3 uint8, C-contiguous and read-only.
    """

    t_ns: int
    rgb: np.ndarray
    capture_ns: int = 0
    index: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.t_ns, bool) or not isinstance(self.t_ns, (int, np.integer)):
            raise InputError(f"Image.t_ns: expected an integer number of nanoseconds, got {type(self.t_ns).__name__}")
        rgb = self.rgb
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            got = (
                f"{'×'.join(map(str, rgb.shape))} {rgb.dtype}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            )
            raise InputError(f"Image.rgb: expected an H×W×3 uint8 array, got {got}")
        rgb = np.ascontiguousarray(rgb)
        if rgb.flags.writeable:
            rgb = rgb.view()  # a read-only view; the caller's own array keeps its flags
            rgb.flags.writeable = False
        object.__setattr__(self, "t_ns", int(self.t_ns))
        object.__setattr__(self, "rgb", rgb)
        object.__setattr__(self, "capture_ns", int(self.capture_ns))
        object.__setattr__(self, "index", int(self.index))

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def t_s(self) -> float:
        return self.t_ns / 1e9


# -- pixel conversion -------------------------------------------------------------------------


def _to_rgb8(arr: np.ndarray, name: str, *, bgr: bool = True) -> np.ndarray:
    """Any OpenCV-decoded array as H×W×3 uint8 RGB.

    Depth: uint16 → uint8 by ``>> 8``; float → clip to [0, 1] then ×255 (HDR is clipped, not
    tone-mapped). Channels: 1 → replicated to 3; 3 → BGR reordered to RGB; 2 (grey + alpha) and 4
    (BGRA) → composited over black, i.e. colour × alpha, so fully transparent pixels become black
    whatever colour they happen to store.
    """
    if arr.dtype == np.uint8:
        pass
    elif arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype.kind == "f":
        arr = np.rint(np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise InputError(f"{name}: expected 8-bit, 16-bit or float samples, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name}: expected an image with 1 to 4 channels, got shape {'×'.join(map(str, arr.shape))}")
    channels = arr.shape[2]
    if channels in (2, 4):
        alpha = arr[:, :, -1:].astype(np.uint16)
        arr = ((arr[:, :, :-1].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
        channels -= 1
    if channels == 1:
        return np.ascontiguousarray(np.repeat(arr, 3, axis=2))
    if bgr:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(arr)


def _fit(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The (w, h) a frame of this size is delivered at under ``max_side``."""
    longer = max(width, height)
    if max_side is None or longer <= max_side:
        return width, height
    scale = max_side / longer
    return max(1, round(width * scale)), max(1, round(height * scale))


def _limit(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = _fit(w, h, max_side)
    if size == (w, h):
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _check_max_side(max_side: int | None) -> int | None:
    if max_side is None:
        return None
    if isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or max_side < 1:
        raise InputError(f"max_side: expected a positive number of pixels or None, got {max_side!r}")
    return int(max_side)


def _check_fps(fps: float | None) -> float | None:
    if fps is None:
        return None
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"fps: expected a positive frame rate, got {fps!r}")
    return value


# -- stills -----------------------------------------------------------------------------------

_JPEG = b"\xff\xd8\xff"


def _image_signature(head: bytes) -> bool:
    """Whether the first bytes of a file look like an image format OpenCV reads."""
    return (
        head.startswith((
            b"\x89PNG\r\n\x1a\n", _JPEG, b"BM", b"II*\x00", b"MM\x00*", b"\xff\x4f\xff\x51",
            b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"v/1\x01", b"#?RADIANCE", b"#?RGBE",
            b"\x59\xa6\x6a\x95",  # Sun raster
        ))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1"))
        or (len(head) > 2 and head[:1] == b"P" and head[1:2] in b"1234567fF" and head[2:3].isspace())
    )


def _read_head(path: Path, name: str, n: int = 32) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from exc


def _decode_image(path: Path, name: str, head: bytes) -> np.ndarray | None:
    """Decode a still with OpenCV as RGB uint8, or None when OpenCV cannot."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    # JPEG has no alpha, so it is decoded with flags that make OpenCV apply the EXIF orientation
    # (exactly IMREAD_UNCHANGED ignores it); everything else keeps alpha and 16-bit depth.
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH if head.startswith(_JPEG) else cv2.IMREAD_UNCHANGED
    try:
        arr = cv2.imdecode(data, flags)
    except cv2.error:
        return None
    if arr is None or arr.size == 0:
        return None
    return _to_rgb8(arr, name)


def read_image(path: str | Path, *, max_side: int | None = MAX_SIDE) -> np.ndarray:
    """A still image file as H×W×3 uint8 RGB (16-bit, grey, alpha and EXIF orientation handled)."""
    return _read_still(path, str(path), _check_max_side(max_side))


def _read_still(path: str | Path, name: str, max_side: int | None) -> np.ndarray:
    p = _existing(path, name)
    if p.is_dir():
        raise InputError(f"{name}: expected an image file, got a folder")
    head = _read_head(p, name)
    if not head:
        raise InputError(f"{name}: expected an image, got an empty file (0 bytes)")
    rgb = _decode_image(p, name, head)
    if rgb is None:
        raise InputError(f"{name}: not an image OpenCV can decode")
    return _limit(rgb, max_side)


def _existing(spec: str | Path, name: str | None = None) -> Path:
    p = Path(spec).expanduser()
    if not p.exists():
        raise InputError(f"{name or spec}: no such file or folder")
    return p


def _natural_key(p: Path) -> tuple[Any, ...]:
    parts = _NATURAL.split(p.name.casefold())
    return tuple(int(s) if i % 2 else s for i, s in enumerate(parts)) + (p.name,)


def _folder_images(folder: Path, name: str) -> list[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise InputError(f"{name}: cannot list folder ({exc.strerror or exc})") from exc
    files = [
        e
        for e in entries
        if e.suffix.lower() in IMAGE_SUFFIXES and not e.name.startswith(".") and e.is_file()
    ]
    return sorted(files, key=_natural_key)


# -- probing ----------------------------------------------------------------------------------


def _av_reason(exc: BaseException) -> str:
    """FFmpeg's own words for an error, on one line."""
    text = str(getattr(exc, "strerror", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _camera_index(spec: str) -> int | None:
    m = _CAMERA.fullmatch(spec)
    if m is None:
        return None
    text = m.group(1).strip()
    if not text.isdigit():
        raise InputError(f"{spec}: expected camera:N with N a camera index (0, 1, …), got {text!r}")
    return int(text)


def _probe(spec: str | Path) -> tuple[str, Any]:
    """(kind, payload): payload is the camera index, the folder's files, the decoded still, or an
    open video `_Decoder`."""
    name = str(spec)
    if isinstance(spec, str):
        index = _camera_index(spec)
        if index is not None:
            return "camera", index
    p = _existing(spec)
    if p.is_dir():
        return "folder", _folder_images(p, name)
    head = _read_head(p, name)
    if not head:
        raise InputError(f"{name}: expected a video or image, got an empty file (0 bytes)")
    tried_cv2 = _image_signature(head)
    if tried_cv2:
        rgb = _decode_image(p, name, head)
        if rgb is not None:
            return "image", rgb
    try:
        return "video", _open_decoder(p, name)
    except _NotMedia as exc:
        if not tried_cv2 and p.stat().st_size <= _CV2_FALLBACK_MAX_BYTES:
            rgb = _decode_image(p, name, head)
            if rgb is not None:
                return "image", rgb
        raise InputError(f"{name}: not a video or image PyAV/OpenCV can decode ({exc.reason})") from exc.__cause__


def probe_kind(spec: str | Path) -> str:
    """The kind of an input: "video", "image", "folder" or "camera", decided from the file's content.

    Image signatures are checked first and confirmed by decoding; anything else must open in PyAV
    with a decodable video stream. A ``camera:N`` spec is recognised but not opened.
    """
    kind, payload = _probe(spec)
    if isinstance(payload, _Decoder):
        payload.close()
    return kind


# -- sources ----------------------------------------------------------------------------------


class MediaSource:
    """An iterable of `Image`s and a context manager.

    Attributes: ``kind`` ("video", "image", "folder" or "camera"), ``fps`` (None when unknown),
    ``frame_count`` (for progress bars; None when unknown, an estimate for some video containers),
    ``size`` (w, h) of the delivered frames after any downscale (None when unknown), ``name``
    (the spec as given, which also starts every error message) and ``live`` (True for cameras).
    File sources may be iterated again from the start; a camera continues where it was.
    """

    kind: str = ""
    live: bool = False

    def __init__(self, name: str, max_side: int | None) -> None:
        self.name = name
        self.fps: float | None = None
        self.frame_count: int | None = None
        self.size: tuple[int, int] | None = None
        self._max_side = max_side
        self._closed = False

    def __iter__(self) -> Iterator[Image]:
        if self._closed:
            raise InputError(f"{self.name}: cannot read a closed source")
        return self._frames()

    def _frames(self) -> Iterator[Image]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} kind={self.kind} fps={self.fps} "
            f"frames={self.frame_count} size={self.size}>"
        )


class _StillSource(MediaSource):
    kind = "image"

    def __init__(self, name: str, rgb: np.ndarray, max_side: int | None) -> None:
        super().__init__(name, max_side)
        self._rgb = _limit(rgb, max_side)
        self.frame_count = 1
        self.size = (self._rgb.shape[1], self._rgb.shape[0])

    def _frames(self) -> Iterator[Image]:
        yield Image(t_ns=0, rgb=self._rgb, index=0)


class _FolderSource(MediaSource):
    kind = "folder"

    def __init__(self, name: str, files: list[Path], fps: float | None, max_side: int | None) -> None:
        super().__init__(name, max_side)
        if not files:
            raise InputError(f"{name}: expected a folder of images ({', '.join(sorted(IMAGE_SUFFIXES))}), found none")
        self._files = files
        self.fps = fps or DEFAULT_FPS
        self.frame_count = len(files)
        self._first: np.ndarray | None = self._read(0)
        self.size = (self._first.shape[1], self._first.shape[0])

    def _read(self, i: int) -> np.ndarray:
        path = self._files[i]
        return _read_still(path, os.path.join(self.name, path.name), self._max_side)

    def _frames(self) -> Iterator[Image]:
        step = 1e9 / self.fps
        for i in range(len(self._files)):
            if i == 0 and self._first is not None:
                rgb, self._first = self._first, None  # decoded while opening; don't hold it longer
            else:
                rgb = self._read(i)
            yield Image(t_ns=round(i * step), rgb=rgb, index=i)


class _NotMedia(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _ThreadedDecodeError(Exception):
    """A decode error under frame threading, which loses the frames still inside the threads."""


class _Decoder:
    """An open PyAV container on its first video stream, with the first frame already decoded.

    Packets are decoded one by one so that a bad packet (a truncated tail, a corrupt slice) is
    skipped and counted rather than ending the stream. ``after`` skips frames already delivered:
    (pts, count), pts compared when known, else the first ``count`` frames.
    """

    def __init__(
        self, path: Path, name: str, *, threads: str = "AUTO", after: tuple[int | None, int] | None = None
    ) -> None:
        self.name = name
        self.failed: set[object] = set()  # which packets failed (pts, else byte position)
        self.reason: str | None = None  # the first error, in FFmpeg's words
        self.error: BaseException | None = None
        self._threads = threads
        try:
            self.container = av.open(str(path), metadata_errors="ignore")
        except av.FFmpegError as exc:
            raise _NotMedia(_av_reason(exc)) from exc
        except OSError as exc:  # PermissionError and friends outside FFmpeg
            raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from exc
        try:
            streams = self.container.streams
            if not streams.video:
                found = ", ".join(sorted({s.type for s in streams})) or "no streams"
                raise InputError(f"{name}: expected a video stream, found {found}")
            self.stream = streams.video[0]
            self.stream.thread_type = threads
            if after is not None and after[0] is not None:
                after = (after[0], 0)  # timestamps known: skip by pts, after a seek if the file allows one
                try:
                    self.container.seek(after[0], stream=self.stream)  # to the keyframe at or before
                except av.FFmpegError:
                    pass  # decode from the start instead
            self._frames = self._decode(after)
            self.first: av.VideoFrame | None = next(self._frames, None)
            if self.first is None:
                fmt = self.container.format.name
                if self.reason is not None and ("image2" in fmt or fmt.endswith("_pipe")):
                    raise _NotMedia(self.reason) from self.error  # FFmpeg guessed a picture format from the name
                codec = self.stream.codec_context.name
                why = f": {self.reason}" if self.reason else ""
                raise InputError(
                    f"{name}: no frame of its {codec} video stream decodes (truncated or corrupt?{why})"
                ) from self.error
        except BaseException:
            self.close()
            raise

    def _decode(self, after: tuple[int | None, int] | None) -> Iterator[av.VideoFrame]:
        skip_pts, skip_count = after if after is not None else (None, 0)
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:  # the demuxer itself gave up: nothing more to read
                self._note(exc, "demux")
                return
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                self._note(exc, packet.pts if packet.pts is not None else ("pos", packet.pos))
                if self._threads != "SLICE":
                    raise _ThreadedDecodeError from exc
                continue
            for frame in frames:
                if skip_count > 0:
                    skip_count -= 1
                    continue
                if skip_pts is not None and frame.pts is not None and frame.pts <= skip_pts:
                    continue
                yield frame

    def _note(self, exc: BaseException, key: object) -> None:
        self.failed.add(key)
        self.error = self.error or exc
        self.reason = self.reason or _av_reason(exc)

    def __iter__(self) -> Iterator[av.VideoFrame]:
        first, self.first = self.first, None
        if first is not None:
            yield first
        yield from self._frames

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001, S110 - closing must not mask the error being reported
            pass


def _open_decoder(path: Path, name: str, after: tuple[int | None, int] | None = None) -> _Decoder:
    """A `_Decoder` with frame threading, or single-threaded when threading trips on a bad packet."""
    try:
        return _Decoder(path, name, after=after)
    except _ThreadedDecodeError:
        return _Decoder(path, name, threads="SLICE", after=after)


class _VideoSource(MediaSource):
    kind = "video"

    def __init__(self, name: str, path: Path, decoder: _Decoder, fps: float | None, max_side: int | None) -> None:
        super().__init__(name, max_side)
        self._path = path
        self._decoder: _Decoder | None = decoder  # opened by probing, used by the first pass
        self._active: _Decoder | None = None  # the one a running pass reads
        stream = decoder.stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else fps
        tb = stream.time_base
        self._start = Fraction(stream.start_time or 0) * tb if tb else Fraction(0)
        self._duration: Fraction | None = None
        if stream.duration and tb:
            self._duration = Fraction(stream.duration) * tb
        elif decoder.container.duration:
            self._duration = Fraction(decoder.container.duration, av.time_base)
        self._exact_count = int(stream.frames) or None  # from the container's index, when it has one
        if self._exact_count:
            self.frame_count = self._exact_count
        elif self._duration is not None and self.fps:
            self.frame_count = max(1, int(self._duration * Fraction(self.fps) + Fraction(1, 2)))
        first = decoder.first
        w, h = (first.width, first.height) if first is not None else (0, 0)
        if first is not None and (first.rotation or 0) % 180:
            w, h = h, w
        self.size = _fit(w, h, max_side)

    def close(self) -> None:
        super().close()
        for decoder in (self._decoder, self._active):
            if decoder is not None:
                decoder.close()
        self._decoder = self._active = None

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")  # grey, 10-bit and YUV all arrive as 8-bit RGB
        quarter_turns = round((frame.rotation or 0) / 90) % 4  # display matrix, counter-clockwise
        if quarter_turns:
            rgb = np.rot90(rgb, quarter_turns)
        return _limit(np.ascontiguousarray(rgb), self._max_side)

    def _t_ns(self, frame: av.VideoFrame, index: int) -> int:
        if frame.pts is not None and frame.time_base:
            return round((frame.pts * frame.time_base - self._start) * 1_000_000_000)
        return round(index * 1e9 / (self.fps or DEFAULT_FPS))

    def _decoded(self, decoder: _Decoder) -> Iterator[av.VideoFrame]:
        """Every decodable frame; a decode error under frame threading reopens the file
        single-threaded just after the last frame delivered, so the frames the threads held are not
        lost."""
        count, last_pts, failed, reason, threaded_error = 0, None, set(), None, False
        while True:
            self._active = decoder
            try:
                for frame in decoder:
                    count, last_pts = count + 1, frame.pts
                    yield frame
                break
            except _ThreadedDecodeError:
                # Frame threads report a bad packet's error late, so which packet failed is unknown here;
                # the single-threaded decoder meets the bad packet again and counts it exactly.
                reason, threaded_error = reason or decoder.reason, True
                decoder.close()
                try:
                    decoder = _Decoder(self._path, self.name, threads="SLICE", after=(last_pts, count))
                except (_NotMedia, InputError):
                    decoder = None
                    break
        if decoder is not None:
            failed, reason = failed | decoder.failed, reason or decoder.reason
            decoder.close()
        self._active = None
        self._errors, self._reason = len(failed) or int(threaded_error), reason

    def _frames(self) -> Iterator[Image]:
        decoder, self._decoder = self._decoder, None
        if decoder is None:  # a second pass: open the file again
            try:
                decoder = _open_decoder(self._path, self.name)
            except _NotMedia as exc:
                raise InputError(f"{self.name}: cannot reopen video ({exc.reason})") from exc.__cause__
        self._errors, self._reason = 0, None
        index = 0
        last_t: int | None = None
        for frame in self._decoded(decoder):
            t_ns = self._t_ns(frame, index)
            yield Image(t_ns=t_ns, rgb=self._rgb(frame), index=index)
            last_t = t_ns
            index += 1
        because = f"; {self._errors} packet(s) failed to decode: {self._reason}" if self._errors else ""
        if self._ended_early(index, last_t):
            of = f"{float(self._duration):.2f} s" if self._duration is not None else f"{self._exact_count} frames"
            warnings.warn(
                f"{self.name}: video ended early after {index} frames ({(last_t or 0) / 1e9:.2f} s of {of}); "
                f"the file may be truncated{because}",
                MediaWarning,
                stacklevel=2,
            )
        elif self._errors:
            warnings.warn(f"{self.name}: skipped undecodable data{because}", MediaWarning, stacklevel=2)

    def _ended_early(self, count: int, last_t: int | None) -> bool:
        if self._duration is not None and last_t is not None:
            period = 1 / self.fps if self.fps else 1 / DEFAULT_FPS
            slack = max(2 * period, 0.1)
            return last_t / 1e9 + slack < float(self._duration)
        return self._exact_count is not None and count < self._exact_count


class _CameraSource(MediaSource):
    kind = "camera"
    live = True

    def __init__(self, name: str, index: int, fps: float | None, max_side: int | None) -> None:
        super().__init__(name, max_side)
        self._index = index
        log = cv2.utils.logging
        level = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_SILENT)  # OpenCV prints a backend warning per failed open
        try:
            self._cap: cv2.VideoCapture | None = cv2.VideoCapture(index)
            opened = self._cap.isOpened()
        except cv2.error as exc:
            raise DeviceError(f"{name}: cannot open camera {index} ({str(exc).strip().splitlines()[-1]})") from exc
        finally:
            log.setLogLevel(level)
        if not opened:
            self._cap.release()
            self._cap = None
            raise DeviceError(f"{name}: cannot open camera {index} ({self._why_not(index)})")
        if fps:
            self._cap.set(cv2.CAP_PROP_FPS, fps)
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or fps
        w, h = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = _fit(w, h, max_side) if w > 0 and h > 0 else None

    @staticmethod
    def _why_not(index: int) -> str:
        if sys.platform.startswith("linux"):
            dev = Path(f"/dev/video{index}")
            if not dev.exists():
                return f"no device {dev}"
            return f"{dev} exists but could not be opened; busy, or no permission?"
        return "no such camera, or it is busy"

    def close(self) -> None:
        super().close()
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _frames(self) -> Iterator[Image]:
        cap = self._cap
        if cap is None:
            raise DeviceError(f"{self.name}: camera {self._index} is closed")
        index = 0
        t0: int | None = None
        while self._cap is not None:
            if not cap.grab():
                break
            capture_ns = time.monotonic_ns()
            ok, bgr = cap.retrieve()
            if not ok or bgr is None:
                break
            t0 = capture_ns if t0 is None else t0
            rgb = _limit(_to_rgb8(bgr, self.name), self._max_side)
            yield Image(t_ns=capture_ns - t0, rgb=rgb, capture_ns=capture_ns, index=index)
            index += 1
        if self._cap is None:  # closed by the consumer
            return
        if index == 0:
            raise DeviceError(f"{self.name}: camera {self._index} opened but delivered no frame")
        warnings.warn(f"{self.name}: camera {self._index} stopped delivering frames", MediaWarning, stacklevel=2)


def open_input(spec: str | Path, *, fps: float | None = None, max_side: int | None = MAX_SIDE) -> MediaSource:
    """Open a video file, a still image, a folder of images or ``camera:N`` as a `MediaSource`.

    ``fps`` sets the rate of an image folder (default 30), the rate requested from a camera, and
    the rate assumed for video frames that carry no timestamps; a video's own timestamps win.
    Frames with a side longer than ``max_side`` are downscaled (see `MAX_SIDE`).
    """
    fps = _check_fps(fps)
    max_side = _check_max_side(max_side)
    kind, payload = _probe(spec)
    name = str(spec)
    if kind == "camera":
        return _CameraSource(name, payload, fps, max_side)
    if kind == "folder":
        return _FolderSource(name, payload, fps, max_side)
    if kind == "image":
        return _StillSource(name, payload, max_side)
    try:
        return _VideoSource(name, Path(spec).expanduser(), payload, fps, max_side)
    except BaseException:
        payload.close()
        raise
