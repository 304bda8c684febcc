"""Train facewire's acoustic viseme model (src/facewire/data/visemes.npz, see facewire.audio.acoustic).

Reproducible (fixed seeds, single-threaded BLAS), numpy only. Data:

1. Sentences: random strings of 3–9 words, about a third of them common function words and the
   rest drawn from the CMU dictionary in the pocketsphinx wheel. The content words of the lip-sync
   benchmark's sentences (`facewire.bench.lipsync`) are removed from the vocabulary, so no
   benchmark sentence — nor any of its content words — is ever heard in training.
2. Speech: espeak-ng (`facewire.audio.tts.synthesize`) speaks each sentence with one of
   :data:`TRAIN_VOICES` × :data:`TRAIN_VARIANTS`, a random rate (110–280 wpm) and pitch (20–80);
   its phoneme events give the exact label of every 10 ms frame (HH takes its vowel's viseme, as
   `facewire.mouth.phone_visemes` says). **Held out**: the voice ``en-gb-x-rp`` and the variant
   ``+f3`` never occur in training; the benchmark speaks with both (``en-gb-x-rp``, ``en-us+f3``) and
   reports them apart from the seen voices.
3. Noise: every 20th item is 0.5–3 s of noise or hum without speech (all frames ``sil``), so
   noise does not make the mouth move.
4. Augmentation, each utterance one random chain: resampling from 22050 Hz to 16 kHz directly or
   through 8 kHz (telephone band) or 11025 Hz; reverberation (exponentially decaying noise, RT60
   0.1–0.6 s, wet mix 0–50%); a random spectral tilt; additive white or brown noise at 5–45 dB SNR
   (or none); gain −30..+3 dB; leading/trailing silence of 0–0.6 s.

Network: the features at `acoustic.CONTEXT` → 256 → 256 → 15 (ReLU, softmax), cross-entropy,
Adam with a step decay; weights stored as float16. Validation on separately generated
utterances in the held-out voice/variant (frame accuracy, raw and after `decode_visemes`).

Run: python tools/train_visemes.py [--utterances 2000] [--epochs 8] [--out src/facewire/data/visemes.npz]
then put the printed SHA-256 into ``facewire.audio.acoustic.MODEL_SHA256``. The shipped model was
made with the defaults: 2000 items (1900 sentences, 100 noise clips; 543,665 frames = 91 min of
audio, synthesised in about 2 minutes), 8 epochs (≈ 1–4 min each on 2 busy cores), final training
loss 0.23; on the held-out voices saying new sentences (100 items, every other one augmented)
84.7% of 10 ms frames right frame by frame, 86.6% after `decode_visemes`. Seeds are fixed; BLAS
summation order can still differ between machines, so a rerun may differ in the last bits (the
SHA-256 pins the shipped file, not the recipe).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import argparse
import hashlib
import io
import itertools
import re
import sys
import time
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import lfilter, resample_poly

from facewire.atomic import atomic_write
from facewire.audio import acoustic
from facewire.audio.sphinx import model_files
from facewire.audio.tts import synthesize
from facewire.bench import lipsync as bench
from facewire.mouth import VISEMES, phone_visemes

TRAIN_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
TRAIN_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f4", "f5", "klatt", "klatt2",
                  "klatt3", "klatt4", "andy", "annie", "linda", "steph", "john", "david", "max", "paul", "rob",
                  "belinda", "caleb", "ed", "edward", "grandma", "grandpa", "benjamin", "quincy", "victor")
HELD_OUT = ("en-gb-x-rp", "en-us+f3", "en-gb-x-rp+f3")
FUNCTION_WORDS = ["the", "a", "an", "of", "to", "in", "on", "at", "by", "for", "with", "from", "and", "or", "but", "is", "was", "are", "were", "be", "been", "has", "have", "had", "it", "he", "she", "we", "they", "you", "i", "me", "him", "her", "us", "them", "my", "your", "his", "its", "our", "their", "this", "that", "these", "those", "not", "no", "so", "if", "then", "than", "when", "where", "who", "what", "which", "how", "all", "some", "any", "each", "every", "very", "just", "will", "would", "can", "could", "should", "may", "might", "must", "do", "does", "did", "up", "down", "out", "over", "under", "about", "into"]


def vocabulary() -> list[str]:
    bench_words = {w for group in (bench._SUBJECTS, bench._VERBS, bench._OBJECTS, bench._ENDINGS)
                   for phrase in group for w in phrase.split()}
    words = []
    for line in model_files().dict.read_text().splitlines():
        w = line.split(" ", 1)[0]
        if re.fullmatch(r"[a-z]{2,10}", w) and w not in bench_words:
            words.append(w)
    return sorted(set(words) - set(FUNCTION_WORDS))


def make_sentences(n: int, rng: np.random.Generator, words: list[str]) -> list[str]:
    bench_set = set(bench.sentences(1000))
    out = []
    while len(out) < n:
        k = int(rng.integers(3, 10))
        s = " ".join(FUNCTION_WORDS[rng.integers(len(FUNCTION_WORDS))] if rng.random() < 0.35
                     else words[rng.integers(len(words))] for _ in range(k))
        if s not in bench_set:
            out.append(s)
    return out


def _resample(x: np.ndarray, a: int, b: int) -> np.ndarray:
    g = gcd(a, b)
    return resample_poly(x, b // g, a // g).astype(np.float32)


def augment(x: np.ndarray, rate: int, rng: np.random.Generator, clean: bool = False) -> tuple[np.ndarray, float]:
    """espeak audio at ``rate`` → augmented 16 kHz audio and the seconds of silence put in front."""
    route = rng.random()
    if clean or route < 0.6:
        y = _resample(x, rate, 16000)
    elif route < 0.85:
        y = _resample(_resample(x, rate, 8000), 8000, 16000)  # telephone band
    else:
        y = _resample(_resample(x, rate, 11025), 11025, 16000)
    if not clean:
        if rng.random() < 0.4:  # reverberation
            rt60 = rng.uniform(0.1, 0.6)
            n = int(rt60 * 16000)
            ir = rng.normal(0, 1, n) * np.exp(-6.9 * np.arange(n) / n)
            ir /= np.sqrt(np.sum(ir ** 2))
            wet = np.convolve(y, ir)[: y.size]
            mix = rng.uniform(0.1, 0.5)
            y = ((1 - mix) * y + mix * wet).astype(np.float32)
        if rng.random() < 0.5:  # spectral tilt (a first-order pre/de-emphasis)
            a = rng.uniform(-0.8, 0.8)
            y = lfilter([1.0, -a], [1.0], y).astype(np.float32)
        lead, tail = rng.uniform(0, 0.6), rng.uniform(0, 0.6)
        y = np.concatenate([np.zeros(int(lead * 16000), np.float32), y, np.zeros(int(tail * 16000), np.float32)])
        peak = np.max(np.abs(y)) + 1e-9
        y = y / peak * 10 ** (rng.uniform(-30, 0) / 20)
        if rng.random() < 0.75:
            snr = rng.uniform(5, 45)
            sig = np.sqrt(np.mean(y[np.abs(y) > 1e-4] ** 2)) if np.any(np.abs(y) > 1e-4) else 1e-3
            noise = rng.normal(0, 1, y.size)
            if rng.random() < 0.5:
                noise = np.cumsum(noise)
                noise -= lfilter([1.0], [1.0, -0.995], noise)  # brown, without drift
            noise /= np.std(noise) + 1e-12
            y = y + (sig * 10 ** (-snr / 20) * noise).astype(np.float32)
        return np.clip(y, -1, 1).astype(np.float32), lead
    return y, 0.0


def noise_clip(rng: np.random.Generator) -> np.ndarray:
    """0.5–3 s of white, brown or band-passed noise or a mains hum at −60..−6 dBFS (labelled silence)."""
    n = int(rng.uniform(0.5, 3.0) * 16000)
    kind = rng.integers(4)
    if kind == 0:
        y = rng.normal(0, 1, n)
    elif kind == 1:
        y = np.cumsum(rng.normal(0, 1, n))
        y -= lfilter([1.0], [1.0, -0.995], y)
    elif kind == 2:
        from scipy.signal import butter

        lo = rng.uniform(100, 2000)
        b, a = butter(2, [lo / 8000, min(0.99, lo * rng.uniform(1.5, 4) / 8000)], "band")
        y = lfilter(b, a, rng.normal(0, 1, n))
    else:
        t = np.arange(n) / 16000
        f0 = rng.choice([50.0, 60.0])
        y = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6)) + 0.1 * rng.normal(0, 1, n)
    y = y / (np.std(y) + 1e-12) * 10 ** (rng.uniform(-60, -6) / 20)
    return np.clip(y, -1, 1).astype(np.float32)


def frame_labels(phones, n_frames: int, offset_s: float) -> np.ndarray:
    vis = phone_visemes([p.label for p in phones])
    idx = {v: i for i, v in enumerate(VISEMES)}
    out = np.zeros(n_frames, np.int8)
    centres = (np.arange(n_frames) + 0.5) * 0.01 - offset_s
    starts = np.array([p.start_s for p in phones])
    ends = np.array([p.end_s for p in phones])
    k = np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, len(phones) - 1)
    inside = (centres >= starts[k]) & (centres < ends[k])
    labs = np.array([idx[v] for v in vis])
    out[inside] = labs[k[inside]]
    return out


def build(n: int, voices: list[str], seed: int, words: list[str], clean_every: int = 4, noise_every: int = 20):
    rng = np.random.default_rng(seed)
    sents = make_sentences(n, rng, words)
    feats, labels, utt = [], [], []
    for i, s in enumerate(sents):
        if i % noise_every == noise_every - 1:  # no speech at all: noise or hum, every frame sil
            f = acoustic.log_mel(noise_clip(rng))
            feats.append(f)
            labels.append(np.zeros(len(f), np.int8))
            utt.append(np.full(len(f), i, np.int32))
            continue
        voice = voices[int(rng.integers(len(voices)))]
        speech = synthesize(s, voice=voice, rate_wpm=int(rng.integers(110, 281)), pitch=int(rng.integers(20, 81)))
        y, lead = augment(speech.samples, speech.sample_rate, rng, clean=(i % clean_every == 0))
        f = acoustic.log_mel(y)
        feats.append(f)
        labels.append(frame_labels(list(speech.phones), len(f), lead))
        utt.append(np.full(len(f), i, np.int32))
        if (i + 1) % 200 == 0:
            print(f"  {i + 1}/{n} utterances", file=sys.stderr)
    return np.concatenate(feats), np.concatenate(labels), np.concatenate(utt)


def context_index(utt: np.ndarray) -> np.ndarray:
    """Row indices of each frame's context, clipped to its own utterance."""
    t = np.arange(utt.size)
    starts = np.searchsorted(utt, utt, side="left")
    ends = np.searchsorted(utt, utt, side="right") - 1
    return np.clip(t[:, None] + np.asarray(acoustic.CONTEXT)[None, :], starts[:, None], ends[:, None]).astype(np.int32)


def train(x, y, idx, epochs: int, seed: int, hidden: int = 256, batch: int = 256, lr: float = 2e-3):
    rng = np.random.default_rng(seed)
    stacked_dim = x.shape[1] * len(acoustic.CONTEXT)
    sample = x[idx[rng.choice(len(y), min(len(y), 50000), replace=False)]].reshape(-1, stacked_dim)
    mean, std = sample.mean(0), sample.std(0) + 1e-3
    dims = [stacked_dim, hidden, hidden, len(VISEMES)]
    params = []
    for a, b in itertools.pairwise(dims):
        params += [(rng.normal(0, np.sqrt(2.0 / a), (a, b))).astype(np.float32), np.zeros(b, np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    counts = np.bincount(y, minlength=len(VISEMES)).astype(np.float64)
    log_prior = np.log(np.maximum(counts / counts.sum(), 1e-6)).astype(np.float32)
    for ep in range(epochs):
        t0 = time.time()
        order = rng.permutation(len(y))
        rate = lr * (0.5 ** max(0, ep - epochs // 2))
        loss_sum = 0.0
        for b0 in range(0, len(order), batch):
            bi = order[b0:b0 + batch]
            h0 = (x[idx[bi]].reshape(len(bi), -1) - mean) / std
            h0 += rng.normal(0, 0.05, h0.shape).astype(np.float32)
            w1, b1, w2, b2, w3, b3 = params
            z1 = h0 @ w1 + b1
            a1 = np.maximum(z1, 0)
            z2 = a1 @ w2 + b2
            a2 = np.maximum(z2, 0)
            z3 = a2 @ w3 + b3
            z3 -= z3.max(1, keepdims=True)
            p = np.exp(z3)
            p /= p.sum(1, keepdims=True)
            tgt = y[bi]
            loss_sum += -np.log(p[np.arange(len(bi)), tgt] + 1e-9).sum()
            g3 = p
            g3[np.arange(len(bi)), tgt] -= 1
            g3 /= len(bi)
            gw3, gb3 = a2.T @ g3, g3.sum(0)
            g2 = (g3 @ w3.T) * (z2 > 0)
            gw2, gb2 = a1.T @ g2, g2.sum(0)
            g1 = (g2 @ w2.T) * (z1 > 0)
            gw1, gb1 = h0.T @ g1, g1.sum(0)
            step += 1
            for k, g in enumerate((gw1, gb1, gw2, gb2, gw3, gb3)):
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                mh = m[k] / (1 - 0.9 ** step)
                vh = v[k] / (1 - 0.999 ** step)
                params[k] -= (rate * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
        print(f"  epoch {ep + 1}/{epochs}: loss {loss_sum / len(y):.3f}  ({time.time() - t0:.0f} s)", file=sys.stderr)
    w1, b1, w2, b2, w3, b3 = params
    return {"mean": mean, "std": std, "w1": w1, "b1": b1, "w2": w2, "b2": b2, "w3": w3, "b3": b3,
            "log_prior": log_prior, "context": np.asarray(acoustic.CONTEXT, np.int32)}


def evaluate(weights: dict, x, y, utt) -> tuple[float, float]:
    model = acoustic.VisemeModel(weights)
    raw = dec = 0
    for u in np.unique(utt):
        sel = utt == u
        s = model.scores(x[sel])
        raw += int(np.sum(np.argmax(s, 1) == y[sel]))
        dec += int(np.sum(acoustic.decode_visemes(s) == y[sel]))
    return raw / len(y), dec / len(y)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utterances", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="src/facewire/data/visemes.npz")
    args = ap.parse_args()
    words = vocabulary()
    voices = [b + (f"+{v}" if v else "") for b in TRAIN_VOICES for v in TRAIN_VARIANTS]
    t0 = time.time()
    print(f"vocabulary {len(words)} words; {len(voices)} training voices; synthesising…", file=sys.stderr)
    x, y, utt = build(args.utterances, voices, args.seed, words)
    print(f"  {len(y)} frames ({len(y) / 100 / 60:.1f} min) in {time.time() - t0:.0f} s", file=sys.stderr)
    xv, yv, uv = build(max(40, args.utterances // 20), list(HELD_OUT), args.seed + 1, words, clean_every=2)
    weights = train(x, y, context_index(utt), args.epochs, args.seed)
    raw, dec = evaluate(weights, xv, yv, uv)
    print(f"held-out voices ({', '.join(HELD_OUT)}), new sentences: frame accuracy {raw:.1%} raw, {dec:.1%} decoded")
    out = {k: (v.astype(np.float16) if k.startswith(("w", "b")) else v) for k, v in weights.items()}
    buf = io.BytesIO()
    np.savez(buf, **out)
    with atomic_write(Path(args.out), "wb") as fh:
        fh.write(buf.getvalue())
    print(f"wrote {args.out} ({len(buf.getvalue()) / 1e6:.2f} MB), SHA-256 {hashlib.sha256(buf.getvalue()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
