"""A small acoustic viseme model: log-mel frames with context → the 15 OVR visemes, in numpy.

Features (:func:`log_mel`): 16 kHz audio, 25 ms Hann windows every 10 ms (frame ``t`` is centred on
``(t + 0.5) · 10 ms``, like PocketSphinx's frames), 40 mel bands 100–7600 Hz as the mean power per
FFT bin, floored at −40 dB of full-scale power-per-bin (a −60 dBFS noise floor reads the same as
digital silence) and log10. No mean normalisation: the training audio is augmented in gain, noise,
reverberation and band limits so the network learns what stays the same.

Network (:class:`VisemeModel`): the feature rows at :data:`CONTEXT` (frames relative to the frame
classified; the furthest ahead is the model's look-ahead) standardised and concatenated, then two
ReLU layers and a softmax over :data:`facewire.mouth.VISEMES`. The weights ship in
``facewire/data/visemes.npz`` (float16, SHA-256 pinned by :data:`MODEL_SHA256`), trained by
``tools/train_visemes.py`` on espeak-ng speech with exact timing (see there for the data and the
held-out voices and sentences). Size: 480 → 256 → 256 → 15, 0.39 MB. On the benchmark's 120
espeak sentences (never in training) it recognises visemes on 92.3% of frames (held-out voices
90.2%); PocketSphinx's allphone search managed 47.5%. Speed: features, network and decoding run
at about 480× real time on one core. Real speech was not in its training: on the GRID clips it
drives jawOpen at r 0.61 against the video (see `facewire.audio.recognize`).

Decoding (:func:`decode_visemes`): frame posteriors become viseme segments by Viterbi over a chain of
:data:`MIN_FRAMES` states per viseme (a viseme lasts at least that many frames) with a switch
penalty, so the output does not flicker. :class:`StreamingDecoder` runs the same search
incrementally and fixes a frame :data:`MAX_LAG_FRAMES` frames after it (the best path's choice
then; later evidence cannot change what was fixed).
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from ..errors import ModelError
from ..mouth import VISEMES

__all__ = [
    "CONTEXT",
    "HOP",
    "LOOKAHEAD_S",
    "MAX_LAG_FRAMES",
    "MIN_FRAMES",
    "MODEL_FILE",
    "MODEL_SHA256",
    "N_MELS",
    "FeatureStream",
    "StreamingDecoder",
    "VisemeModel",
    "decode_visemes",
    "log_mel",
    "viterbi_align",
]

HOP = 160
WIN = 400
N_FFT = 512
N_MELS = 40
FLOOR = 1e-4
CONTEXT = (-12, -8, -5, -3, -2, -1, 0, 1, 2, 3, 5, 8)
"""Feature rows fed to the network, relative to the frame it classifies (10 ms steps)."""
LOOKAHEAD_S = (max(CONTEXT) + 1) * HOP / 16000 + (WIN - HOP) / 2 / 16000
"""Audio needed past a frame's own 10 ms before it can be classified (context + half a window)."""

MIN_FRAMES = np.array([3 if v != "sil" else 4 for v in VISEMES])
"""Shortest segment per viseme, frames (30 ms; 40 ms for silence)."""
SWITCH_PENALTY = 4.0
"""Log-probability cost of starting a new viseme segment (nats)."""
PRIOR_SCALE = 0.6
"""Posteriors are divided by class prior^this (hybrid-decoding's scaled likelihood).

Measured on 60 benchmark sentences (viseme frame accuracy at 60 fps): frame-wise argmax 90.8%;
decoded, prior scale 0 / 0.3 / 0.6 / 1 with penalty 4 and 3-frame minimum 92.3 / 92.2 / 92.2 /
92.2%; penalty 0 / 2 / 4 / 8: 91.0 / 91.7 / 92.2 / 92.3%. The choice matters little on clean speech;
the minimum duration and penalty are what stop flicker."""
MAX_LAG_FRAMES = 4
"""Streaming: a frame is fixed this many frames after the newest one. Measured (60 benchmark
sentences): viseme frame accuracy with lag 0 → 89.1%, 2 → 87.9%, 4 → 92.1%, 8 → 92.2% = offline."""

MODEL_FILE = "visemes.npz"
MODEL_SHA256 = "e56444112ca0e3e068c49605ce1966ce9996fc0785e6b924827cf8c26f40f3c9"
"""SHA-256 of ``facewire/data/visemes.npz`` as shipped (written by tools/train_visemes.py)."""


@functools.lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    hz = np.fft.rfftfreq(N_FFT, 1 / 16000)
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    edges = 700.0 * (10 ** (np.linspace(mel(100.0), mel(7600.0), N_MELS + 2) / 2595.0) - 1.0)
    fb = np.zeros((N_MELS, hz.size), np.float32)
    for i in range(N_MELS):
        lo, mid, hi = edges[i: i + 3]
        fb[i] = np.clip(np.minimum((hz - lo) / (mid - lo), (hi - hz) / (hi - mid)), 0.0, None)
    fb /= fb.sum(axis=1, keepdims=True)
    return fb.T.copy()  # bins × mels


_WINDOW = np.hanning(WIN).astype(np.float32)


def log_mel(x: np.ndarray) -> np.ndarray:
    """16 kHz float samples → ``len(x) // 160`` rows of 40 log10 mel powers (float32)."""
    x = np.asarray(x, np.float32)
    n = x.size // HOP
    if n == 0:
        return np.zeros((0, N_MELS), np.float32)
    pad = (WIN - HOP) // 2
    xp = np.concatenate([np.zeros(pad, np.float32), x[: n * HOP], np.zeros(pad, np.float32)])
    frames = np.lib.stride_tricks.sliding_window_view(xp, WIN)[::HOP][:n] * _WINDOW
    return _mel_power_log(frames)


def _mel_power_log(frames: np.ndarray) -> np.ndarray:
    spec = np.fft.rfft(frames, N_FFT, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    with _one_blas_thread():
        mel = power @ _mel_filters()
    return np.log10(np.maximum(mel, FLOOR), dtype=np.float32)


class FeatureStream:
    """`log_mel` over a stream of chunks: the same rows as for the whole signal, as audio arrives."""

    def __init__(self) -> None:
        pad = (WIN - HOP) // 2
        self._buf = np.zeros(pad, np.float32)  # the zero padding before the first frame
        self.rows = 0

    def push(self, x: np.ndarray) -> np.ndarray:
        """Rows completed by ``x`` (row t needs samples up to (t + 1) · 160 + 120)."""
        self._buf = np.concatenate([self._buf, np.asarray(x, np.float32)])
        n = (self._buf.size - WIN) // HOP + 1 if self._buf.size >= WIN else 0
        if n <= 0:
            return np.zeros((0, N_MELS), np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(self._buf[: (n - 1) * HOP + WIN], WIN)[::HOP] * _WINDOW
        self._buf = self._buf[n * HOP:]
        self.rows += n
        return _mel_power_log(frames)

    def flush(self, total_rows: int) -> np.ndarray:
        """The rows left at the end of the stream (zero padded), up to ``total_rows`` in all."""
        need = total_rows - self.rows
        if need <= 0:
            return np.zeros((0, N_MELS), np.float32)
        return self.push(np.zeros(need * HOP + WIN, np.float32))[:need]


def context_stack(feats: np.ndarray, context: tuple[int, ...] = CONTEXT) -> np.ndarray:
    """T×F rows → T×(len(context)·F): row t holds rows t+c (edges repeat the first/last row)."""
    t = feats.shape[0]
    idx = np.clip(np.arange(t)[:, None] + np.asarray(context)[None, :], 0, max(t - 1, 0))
    return feats[idx].reshape(t, -1)


class VisemeModel:
    """The trained network: :meth:`log_posteriors` of standardised, context-stacked log-mel rows."""

    def __init__(self, weights: dict[str, np.ndarray] | None = None) -> None:
        w = weights if weights is not None else _load()
        self.mean = np.asarray(w["mean"], np.float32)
        self.std = np.asarray(w["std"], np.float32)
        self.layers = [(np.asarray(w[f"w{i}"], np.float32), np.asarray(w[f"b{i}"], np.float32))
                       for i in range(1, 10) if f"w{i}" in w]
        self.log_prior = np.asarray(w["log_prior"], np.float32)
        if self.layers[-1][0].shape[1] != len(VISEMES):
            raise ModelError(f"viseme model: expected {len(VISEMES)} outputs, got {self.layers[-1][0].shape[1]}")

    def log_posteriors(self, feats: np.ndarray) -> np.ndarray:
        """T×40 log-mel rows → T×15 log posteriors (natural log)."""
        h = (context_stack(feats) - self.mean) / self.std
        with _one_blas_thread():
            for i, (w, b) in enumerate(self.layers):
                h = h @ w + b
                if i + 1 < len(self.layers):
                    np.maximum(h, 0.0, out=h)
        h -= h.max(axis=1, keepdims=True)
        return h - np.log(np.exp(h).sum(axis=1, keepdims=True))

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """Scaled log-likelihoods for decoding: log posterior − PRIOR_SCALE · log prior."""
        return self.log_posteriors(feats) - PRIOR_SCALE * self.log_prior


@functools.lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def _one_blas_thread():
    """A context in which BLAS runs on one thread. These matrices are small: OpenBLAS's worker
    threads cost more than they save and, spinning, ~10× the CPU time on a busy machine (measured:
    the forward pass of 30 s of audio took 1.35 s of CPU with the default threads, 0.13 s with one)."""
    ctl = _blas_controller()
    return ctl.limit(limits=1, user_api="blas") if ctl is not None else contextlib.nullcontext()


@functools.lru_cache(maxsize=1)
def _load() -> dict[str, np.ndarray]:
    import io

    from ..models import shipped_data

    blob = shipped_data(MODEL_FILE, MODEL_SHA256, "the viseme model", "tools/train_visemes.py")

    with np.load(io.BytesIO(blob)) as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=1)
def default_model() -> VisemeModel:
    return VisemeModel()


# -- decoding ---------------------------------------------------------------------------------
def decode_visemes(scores: np.ndarray, *, penalty: float = SWITCH_PENALTY,
                   min_frames: np.ndarray = MIN_FRAMES) -> np.ndarray:
    """T×V frame scores → the best viseme index per frame with every segment ≥ its minimum length."""
    t_n, _v = scores.shape
    if t_n == 0:
        return np.zeros(0, np.intp)
    dec = StreamingDecoder(penalty=penalty, min_frames=min_frames, max_lag=t_n + 1)
    out = dec.push(scores)
    return np.concatenate([out, dec.finish()]).astype(np.intp)


class StreamingDecoder:
    """Incremental `decode_visemes`: `push` score rows, get the frames fixed so far (viseme indices)."""

    def __init__(self, *, penalty: float = SWITCH_PENALTY, min_frames: np.ndarray = MIN_FRAMES,
                 max_lag: int = MAX_LAG_FRAMES) -> None:
        self.penalty, self.mins, self.max_lag = float(penalty), np.asarray(min_frames), int(max_lag)
        v = len(self.mins)
        self._k = int(self.mins.max())
        self._vk = (v, self._k)
        # per viseme, chain states past its minimum are unreachable
        self._dead = np.arange(self._k)[None, :] >= self.mins[:, None]
        self._score: np.ndarray | None = None
        self._back: list[tuple[np.ndarray, np.ndarray]] = []  # per frame: (came-from viseme per viseme, state)
        self._fixed = 0  # frames already returned
        self._base = 0  # frame index of _back[0]

    def _step(self, emit: np.ndarray) -> None:
        v, k = self._vk
        if self._score is None:
            s = np.full((v, k), -np.inf)
            s[:, 0] = emit
            self._back.append((np.full(v, -1), np.zeros(v, bool)))
        else:
            prev = self._score
            done = prev[np.arange(v), self.mins - 1]
            order = np.argsort(done)
            top, second = order[-1], order[-2]
            best_other = np.full(v, done[top])
            best_other[top] = done[second]
            src = np.full(v, top)
            src[top] = second
            s = np.full((v, k), -np.inf)
            s[:, 1:] = prev[:, :-1]
            last = self.mins - 1
            stay = prev[np.arange(v), last]
            # state 0 of a viseme: a new segment (came from src); chain state last: stayed or arrived
            s[:, 0] = best_other - self.penalty
            arrived = s[np.arange(v), last]
            stayed = stay > arrived
            s[np.arange(v), last] = np.where(stayed, stay, arrived)
            s[self._dead] = -np.inf
            s += emit[:, None]
            self._back.append((src, stayed))
        self._score = s

    def _trace(self) -> np.ndarray:
        """The best path's viseme per stored frame."""
        v, _k = self._vk
        s = self._score
        end = s[np.arange(v), self.mins - 1]
        if np.all(np.isinf(end)):
            end = s.max(axis=1)
        vis = int(np.argmax(end))
        # walk back: in chain state j of viseme vis; state j>0 came from j-1 (or stayed at last)
        state = int(self.mins[vis] - 1) if np.isfinite(s[vis, self.mins[vis] - 1]) else int(np.argmax(s[vis]))
        n = len(self._back)
        out = np.empty(n, np.intp)
        for i in range(n - 1, -1, -1):
            out[i] = vis
            src, stayed = self._back[i]
            if state == self.mins[vis] - 1 and stayed[vis] and i > 0:
                continue
            if state > 0:
                state -= 1
                continue
            if i > 0:
                vis = int(src[vis])
                state = int(self.mins[vis] - 1)
        return out

    def push(self, scores: np.ndarray) -> np.ndarray:
        """Add T×V score rows; the viseme of each frame that became fixed (in order)."""
        for row in np.asarray(scores, np.float64):
            self._step(row)
        n = len(self._back)
        if n - 0 <= self.max_lag:
            return np.zeros(0, np.intp)
        path = self._trace()
        cut = n - self.max_lag
        out = path[:cut]
        self._commit(cut)
        return out

    def _commit(self, cut: int) -> None:
        # Frames before the cut are decided; the search keeps its scores (the decision is the best
        # path's now; later evidence cannot change what was returned).
        self._back = self._back[cut:]
        self._base += cut
        self._fixed += cut

    def finish(self) -> np.ndarray:
        """The frames not yet fixed; the decoder is then empty."""
        if not self._back:
            return np.zeros(0, np.intp)
        out = self._trace()
        self.__init__(penalty=self.penalty, min_frames=self.mins, max_lag=self.max_lag)
        return out


def viterbi_align(scores: np.ndarray, sequence: np.ndarray, min_frames: np.ndarray,
                  anchors: np.ndarray | None = None, anchor_cost: float = 0.0, band: int | None = None) -> np.ndarray:
    """Forced alignment: T×V frame scores and a sequence of N viseme indices (each lasting at least
    ``min_frames[i]`` frames) → the start frame of each of the N segments (first is 0).

    ``anchors`` (N frames, −1 for none): a segment starting ``d`` frames from its anchor costs
    ``anchor_cost · d`` nats (another aligner's opinion, held softly) and, with ``band``, may not
    start more than ``band`` frames from it (where the band leaves no path at all, it is dropped)."""
    t_n = scores.shape[0]
    seq = np.asarray(sequence, np.intp)
    n = seq.size
    mins = np.maximum(np.asarray(min_frames, np.intp), 1)
    if n == 0 or t_n < mins.sum():
        return np.round(np.linspace(0, t_n, n + 1)[:-1]).astype(np.intp)
    emit = scores[:, seq]  # T × N
    cum = np.vstack([np.zeros((1, n)), np.cumsum(emit, axis=0)])  # prefix sums per segment
    # best[t, i]: segments 0..i cover frames 0..t-1 exactly, segment i ends at t (exclusive)
    # recurrence with a segment's minimum duration: best[t, i] = max over s ≤ t - mins[i] of
    # best[s, i-1] + cum[t, i] - cum[s, i]; the running max over s makes it O(T·N).
    neg = -np.inf
    best = np.full((t_n + 1, n), neg)
    start = np.zeros((t_n + 1, n), np.intp)
    prev = np.full(t_n + 1, neg)
    prev[0] = 0.0  # "segment −1" ends at frame 0
    for i in range(n):
        m = mins[i]
        cand = prev - cum[:, i]  # value of starting segment i at frame s
        if anchors is not None and anchors[i] >= 0 and (anchor_cost or band is not None):
            dist = np.abs(np.arange(t_n + 1) - anchors[i])
            cand = cand - anchor_cost * dist
            if band is not None:
                cand = np.where(dist <= band, cand, -np.inf)
        run = np.full(t_n + 1, neg)
        arg = np.zeros(t_n + 1, np.intp)
        # run[t] = max over s ≤ t - m of cand[s]
        if t_n + 1 > m:
            acc = np.maximum.accumulate(cand[: t_n + 1 - m])
            idx = np.arange(t_n + 1 - m)
            am = np.maximum.accumulate(np.where(cand[: t_n + 1 - m] >= acc, idx, 0))
            run[m:] = acc
            arg[m:] = am
        best[:, i] = run + cum[:, i]
        start[:, i] = arg
        prev = best[:, i]
    if not np.isfinite(best[t_n, n - 1]):
        if band is not None:
            # The band leaves no path (anchors too close together for the minimum durations, seen on
            # espeak lines at 300 wpm): hold the anchors by their cost alone.
            return viterbi_align(scores, seq, mins, anchors, anchor_cost, None)
        return np.round(np.linspace(0, t_n, n + 1)[:-1]).astype(np.intp)
    starts = np.zeros(n, np.intp)
    t = t_n
    for i in range(n - 1, -1, -1):
        starts[i] = start[t, i]
        t = starts[i]
    return starts
