"""`LipSync`: speech (a file, samples, or raw PCM pushed live) → the `FaceFrame` stream.

Offline, phones come from forced alignment when a transcript is given (`facewire.audio.align`; a
transcript that does not match warns and falls back), else from streaming phone recognition
(`facewire.audio.recognize.PhoneRecognizer`): frames wait until the phones around them are final,
so a long file is read and animated chunk by chunk with flat memory (offline frames also wait for
≤ 1 s of audio ahead of them: the speech gate, pre-speech breath and laughter look ahead): two hours
of speech to a 432,000-frame take peak at 2 MB more RSS than one minute (``test_lipsync_long.py``).
Without a recogniser installed the acoustic estimate of `facewire.audio.animate` drives the mouth
(with a warning).

Live (:meth:`LipSync.feed`): frames are emitted as soon as the audio covers them. **Look-ahead:**
a frame at media time t needs the feature row nearest t, whose analysis window reaches
`prosody.LOOKAHEAD_S` = 16 ms past it (+ ≤ 5 ms rounding to the 10 ms rows). Latency from a
sample's arrival to the frame that shows it = the input block (10 ms from the microphone) + that
look-ahead + compute (≈ 1 ms per 10 ms block) ≈ 30-45 ms, well inside 80 ms. Phone recognition
finalises phones hundreds of ms late, so live frames use the acoustic estimate unless
``recognize=True``: then frames wait until the phones around them are final, as offline (the
phones `animate.REACH_S` ahead of a frame shape it, and a phone is final `recognize.STABLE_LAG_S`
after it ends), for a latency of about 0.6 s (p50 0.58 s, at most 0.72 s on the test sentence)
instead of 30-45 ms: for a stream that may lag its audio (a recording, a broadcast whose sound is
delayed to match), not for a conversation. (Blending phones in only where already final, as
before, changed no live frame: a frame goes out long before the phones around it are final.)
Each live frame's ``capture_ns`` is the arrival time of the audio block holding its instant.
"""

from __future__ import annotations

import collections
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..frame import FaceFrame
from .animate import Animator, animate
from .io import SAMPLE_RATE, Resampler, iter_audio, load_audio, sanitize
from .phones import Phone

__all__ = ["LipSync", "LipSyncWarning", "animate"]


class LipSyncWarning(UserWarning):
    """Lip sync fell back to a weaker source of phones (transcript mismatch, no recogniser)."""


def _recognizer():
    """A new `PhoneRecognizer`, or None (with a warning) when recognition is not installed."""
    try:
        from .recognize import PhoneRecognizer
    except ImportError as exc:
        warnings.warn(f"phone recognition unavailable ({exc}); animating from the sound alone", LipSyncWarning,
                      stacklevel=3)
        return None
    return PhoneRecognizer()


def _recognize_all(samples: np.ndarray) -> list[Phone] | None:
    try:
        from .recognize import recognize
    except ImportError as exc:
        warnings.warn(f"phone recognition unavailable ({exc}); animating from the sound alone", LipSyncWarning,
                      stacklevel=3)
        return None
    return list(recognize(samples))


class LipSync:
    """Speech → lip-synced frames. ``text``: the transcript (offline alignment); ``fps``: frame rate.

    ``recognize`` (live only): live frames wait for recognised phones, about 0.6 s late (see the
    module doc; costs CPU).
    """

    def __init__(self, fps: float = 60.0, text: str | None = None, *, recognize: bool = False,
                 source: str = "lipsync") -> None:
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise InputError(f"text: expected a transcript, got {text!r}")
        self.fps, self.text, self.source, self.recognize = float(fps), text, source, recognize
        Animator(fps)  # validates fps now, not at the first frame
        self._live: Animator | None = None
        self._live_rec = None
        self._resampler: Resampler | None = None
        self._arrivals: collections.deque[tuple[float, int]] = collections.deque()
        self._phrase_ends: list[float] = []

    @property
    def phrase_ends_s(self) -> list[float]:
        """Times (s) at which phrases ended in what was animated last (the blink layer's cue)."""
        return list(self._live.phrase_ends_s if self._live is not None else self._phrase_ends)

    # -- offline ------------------------------------------------------------------------------
    def frames_from_samples(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[FaceFrame]:
        """All frames for a whole utterance held in memory."""
        x = np.asarray(samples)
        if sample_rate != SAMPLE_RATE:
            rs = Resampler(int(sample_rate))
            x = np.concatenate([rs(sanitize(x, "samples")), rs.flush()])
        phones = self._phones_for(sanitize(x, "samples"))
        anim = Animator(self.fps, phones="wait" if phones else "none", source=self.source, offline=True)
        anim.push_phones(phones or [])
        anim.end_phones()
        frames: list[FaceFrame] = []
        step = 10 * SAMPLE_RATE
        for i in range(0, max(1, x.size), step):
            anim.push_audio(x[i: i + step])
            frames.extend(anim.frames())
        anim.end_audio()
        frames.extend(anim.frames())
        self._phrase_ends = anim.phrase_ends_s
        return frames

    def _phones_for(self, samples: np.ndarray) -> list[Phone] | None:
        if self.text is not None:
            try:
                from .align import AlignmentError, align
            except ImportError as exc:
                warnings.warn(f"forced alignment unavailable ({exc}); recognising phones instead", LipSyncWarning,
                              stacklevel=3)
            else:
                try:
                    return list(align(samples, self.text))
                except AlignmentError as exc:
                    warnings.warn(f"{exc}; recognising phones instead",
                                  LipSyncWarning, stacklevel=3)
        return _recognize_all(samples)

    def frames_from_file(self, path: str | Path, progress: Callable[[float], None] | None = None) -> Iterator[FaceFrame]:
        """Frames for an audio/video file. With a transcript the file is loaded whole (alignment needs
        it); without, it is streamed. ``progress(seconds)`` is called as audio is consumed."""
        if self.text is not None:
            samples = load_audio(path)
            frames = self.frames_from_samples(samples)
            if progress is not None:
                progress(samples.size / SAMPLE_RATE)
            yield from frames
            return
        rec = _recognizer()
        anim = Animator(self.fps, phones="wait" if rec is not None else "none", source=self.source, offline=True)
        self._live = None
        for chunk in iter_audio(path, chunk_s=1.0):
            anim.push_audio(chunk)
            if rec is not None:
                anim.push_phones(rec.feed(chunk))
            if progress is not None:
                progress(chunk.size / SAMPLE_RATE)
            yield from anim.frames()
        if rec is not None:
            anim.push_phones(rec.finish())
        anim.end_phones()
        anim.end_audio()
        yield from anim.frames()
        self._phrase_ends = anim.phrase_ends_s

    # -- live ---------------------------------------------------------------------------------
    def feed(self, samples: np.ndarray, capture_ns: int, *, sample_rate: int = SAMPLE_RATE) -> list[FaceFrame]:
        """Push a block of raw PCM (float32 in [-1, 1], or int16) that arrived at ``capture_ns``
        (monotonic ns); returns the frames now ready, each stamped with its audio's arrival time."""
        x = np.asarray(samples)
        if x.ndim == 2:  # frames × channels
            x = x.mean(axis=1)
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        x = sanitize(x.reshape(-1), "audio block")
        if self._live is None:
            self._live_rec = _recognizer() if self.recognize else None
            # with a recogniser, frames wait for their phones (they are never final in time for a
            # frame sent at once) but not for the offline audio look-ahead
            self._live = Animator(self.fps, phones="wait" if self._live_rec is not None else "none",
                                  source=self.source, offline=False)
        if sample_rate != SAMPLE_RATE:
            if self._resampler is None or self._resampler.rate_in != sample_rate:
                self._resampler = Resampler(int(sample_rate))
            x = self._resampler(x)
        anim = self._live
        anim.push_audio(x)
        self._arrivals.append((anim.audio_s, int(capture_ns)))
        if self._live_rec is not None:
            anim.push_phones(self._live_rec.feed(x))
        return self._stamp(anim.frames())

    def finish(self) -> list[FaceFrame]:
        """End of the live stream: the frames still held back (their audio has all arrived)."""
        if self._live is None:
            return []
        anim = self._live
        if self._live_rec is not None:
            anim.push_phones(self._live_rec.finish())
        anim.end_phones()
        anim.end_audio()
        return self._stamp(anim.frames())

    def reset(self) -> None:
        self._live = self._live_rec = self._resampler = None
        self._arrivals.clear()

    def _stamp(self, frames: Sequence[FaceFrame]) -> list[FaceFrame]:
        out = []
        arrivals = self._arrivals
        for f in frames:
            t = f.t_s
            while len(arrivals) > 1 and arrivals[0][0] <= t:
                arrivals.popleft()
            out.append(f.replace(capture_ns=arrivals[0][1]) if arrivals else f)
        return out

