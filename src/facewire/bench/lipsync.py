"""``facewire bench lipsync``: lip-sync accuracy and speed, each number beside its target.

1. Synthetic speech with exact phone timing: espeak-ng (`facewire.audio.tts`) speaks generated
   sentences in several voices and rates; its own phone events are the truth. Viseme frame accuracy
   at 60 fps with the transcript (`align`) and without (`recognize`; PocketSphinx allphone beside
   it for comparison), per voice and for the voices seen and held out of the acoustic viseme
   model's training (:data:`HELD_OUT_VOICES`; no sentence here, nor any of its content words, is
   in that training: see ``tools/train_visemes.py``), lips closed at P/B/M (`animate` on the
   aligned phones), median onset error.
2. GRID clips (voice + face): video ``jawOpen`` tracked by `VideoTracker` against audio-only
   lip sync; Pearson r at the best lag within ±100 ms, with and without transcript, and a
   loudness-envelope baseline.
3. LibriVox utterances: forced-alignment onsets within 50 ms of PocketSphinx's reference.
4. Speed on one core (BLAS/OpenMP pinned to one thread, process CPU time): offline real-time
   factors on the synthetic speech and, for alignment, on the real voices (LibriVox, GRID and
   PocketSphinx's samples: each aligned ``--reps`` times, the median counted); streaming
   `PhoneRecognizer` real-time factor and how long until a phone is final.

``--only`` runs a part (``synthetic``, ``grid``, ``librivox``, ``speed``; comma separated).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HELP = "lip-sync accuracy (synthetic, GRID video, LibriVox) and speed of recognition/alignment"

_SUBJECTS = ("the old man", "my sister", "a small dog", "the teacher", "every pilot", "the brown bear",
             "our neighbour", "a quiet boy", "the baker", "his mother", "the young queen", "a tired farmer")
_VERBS = ("bought", "painted", "moved", "found", "washed", "cooked", "lifted", "hid", "sold", "fixed", "shared")
_OBJECTS = ("a blue boat", "the heavy box", "some fresh bread", "five apples", "the wooden chair",
            "a map of the city", "the purple umbrella", "three warm blankets", "my phone", "the big mirror")
_ENDINGS = ("before lunch", "at the market", "in the morning", "with great care", "by the river",
            "after the storm", "very quickly", "for the party", "near the bridge")
VOICES = ("en-us", "en-gb-x-rp", "en", "en-us+f3")
HELD_OUT_VOICES = ("en-gb-x-rp", "en-us+f3")
"""Voices the acoustic viseme model never heard in training (tools/train_visemes.py holds out the
voice en-gb-x-rp and the variant +f3); the others were heard, saying other sentences."""
RATES_WPM = (150, 175, 210)
FPS = 60
PARTS = ("synthetic", "grid", "librivox", "speed")
CLOSE_SLACK_S = 0.03
ONSET_SLACK_S = 0.05


def sentences(n: int) -> list[str]:
    """``n`` different sentences, deterministically composed from the word lists."""
    out = []
    for i in range(n):
        s = _SUBJECTS[i % len(_SUBJECTS)]
        v = _VERBS[(i // len(_SUBJECTS) + i) % len(_VERBS)]
        o = _OBJECTS[(i * 7 + i // 3) % len(_OBJECTS)]
        e = _ENDINGS[(i * 5 + i // 11) % len(_ENDINGS)]
        out.append(f"{s} {v} {o} {e}")
    assert len(set(out)) == len(out)
    return out


def viseme_track(phones, n_frames: int, fps: float = FPS) -> np.ndarray:
    """The viseme at each frame time k/fps (``sil`` outside the phones)."""
    from ..mouth import phone_visemes

    vis = phone_visemes([p.label for p in phones])
    out = np.full(n_frames, "sil", dtype=object)
    for p, v in zip(phones, vis):
        a, b = int(np.ceil(p.start_s * fps - 1e-9)), int(np.ceil(p.end_s * fps - 1e-9))
        out[max(a, 0):min(b, n_frames)] = v
    return out


def frame_accuracy(ours, ref, duration_s: float, fps: float = FPS) -> float:
    n = max(1, int(duration_s * fps))
    return float(np.mean(viseme_track(ours, n, fps) == viseme_track(ref, n, fps)))


def onset_errors(ours, ref) -> tuple[np.ndarray, int]:
    """|onset difference| (s) of the reference's speech phones matched by label order, and how many
    reference phones there were (unmatched ones count as misses)."""
    r = [p for p in ref if p.label != "SIL"]
    o = [p for p in ours if p.label != "SIL"]
    sm = difflib.SequenceMatcher(a=[p.label for p in r], b=[p.label for p in o], autojunk=False)
    errs = [abs(r[i].start_s - o[j].start_s) for a, b, size in sm.get_matching_blocks()
            for i, j in zip(range(a, a + size), range(b, b + size))]
    return np.array(errs), len(r)


def lips_closed(frames, ref, fps: float = FPS) -> tuple[int, int]:
    """(P/B/M phones of ``ref``, of them with a closed-lips frame within ±30 ms)."""
    from .. import arkit

    w = np.array([f.weights for f in frames])
    if not len(w):
        return 0, 0
    press = (w[:, arkit.index_of("mouthPressLeft")] + w[:, arkit.index_of("mouthPressRight")]) / 2
    closed = ((w[:, arkit.index_of("mouthClose")] > 0.3) | (press > 0.3)) & (w[:, arkit.index_of("jawOpen")] <= 0.1)
    t = np.arange(len(w)) / fps
    total = hit = 0
    for p in ref:
        if p.label in ("P", "B", "M"):
            total += 1
            sel = (t >= p.start_s - CLOSE_SLACK_S) & (t <= p.end_s + CLOSE_SLACK_S)
            hit += bool(closed[sel].any())
    return total, hit


def _resample16(x: np.ndarray, rate: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, 16000)
    return resample_poly(x, 16000 // g, rate // g).astype(np.float32)


def _pct(x, qs=(50, 90, 99)) -> str:
    if not len(x):
        return "n/a"
    return "  ".join(f"p{q} {v * 1e3:.0f} ms" for q, v in zip(qs, np.percentile(x, qs)))


def _mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def synthetic(n: int, timers: dict[str, list[float]]) -> None:
    from ..audio.align import MISMATCH_NATS_PER_FRAME, Aligner, AlignmentError
    from ..audio.animate import animate
    from ..audio.recognize import recognize, recognize_allphone
    from ..audio.tts import synthesize
    from ..errors import InputError, ModelError

    aligner = Aligner()
    acc_a, acc_r, acc_ap, onsets, losses = [], [], [], [], []
    by_voice: dict[str, list[tuple[float, float]]] = {}
    closed = np.zeros(2, int)
    closed_r = np.zeros(2, int)
    failed = n_ref = 0
    voices = []
    for v in VOICES:
        try:
            synthesize("test", voice=v)
            voices.append(v)
        except (InputError, ModelError) as exc:  # a voice this espeak-ng lacks
            print(f"  (voice {v} unavailable: {exc})")
    for i, text in enumerate(sentences(n)):
        voice, rate = voices[i % len(voices)], RATES_WPM[(i // len(voices)) % len(RATES_WPM)]
        speech = synthesize(text, voice=voice, rate_wpm=rate)
        x = _resample16(speech.samples, speech.sample_rate)
        dur = len(x) / 16000
        ref = list(speech.phones)
        t0 = time.process_time()
        try:
            res = aligner.align_with_score(x, text)
            ours = list(res.phones)
            losses.append(res.loss_nats_per_frame)
            if not res.matches:
                failed += 1
        except AlignmentError:
            failed += 1
            ours = []
        t1 = time.process_time()
        rec = recognize(x)
        t2 = time.process_time()
        frames = animate(ours or rec, x, fps=FPS)
        t3 = time.process_time()
        allphone = recognize_allphone(x)
        timers["recognize (allphone)"].append(time.process_time() - t3)
        timers["align"].append(t1 - t0)
        timers["recognize"].append(t2 - t1)
        timers["lipsync (align + animate)"].append(t1 - t0 + t3 - t2)
        timers["audio"].append(dur)
        acc_a.append(frame_accuracy(ours, ref, dur))
        acc_r.append(frame_accuracy(rec, ref, dur))
        acc_ap.append(frame_accuracy(allphone, ref, dur))
        by_voice.setdefault(voice, []).append((acc_a[-1], acc_r[-1]))
        e, k = onset_errors(ours, ref)
        onsets.append(e)
        n_ref += k
        closed += lips_closed(frames, ref)
        closed_r += lips_closed(animate(rec, x, fps=FPS), ref)
    on = np.concatenate(onsets)
    print(f"1. synthetic speech: {n} sentences, voices {', '.join(voices)}, rates {RATES_WPM} wpm, {FPS} fps")
    print(f"   viseme frame accuracy with transcript (align):  mean {np.mean(acc_a):.1%}  median {np.median(acc_a):.1%}"
          f"  p10 {np.percentile(acc_a, 10):.1%}   target ≥ 85%: {_mark(np.mean(acc_a) >= 0.85)}")
    print(f"   viseme frame accuracy without (recognize):      mean {np.mean(acc_r):.1%}  median {np.median(acc_r):.1%}"
          f"  p10 {np.percentile(acc_r, 10):.1%}   target ≥ 70%: {_mark(np.mean(acc_r) >= 0.70)}")
    print(f"   (allphone, PocketSphinx without transcript:   mean {np.mean(acc_ap):.1%})")
    for v, rows in by_voice.items():
        a, r = np.mean(rows, axis=0)
        tag = "held out of training" if v in HELD_OUT_VOICES else "seen in training"
        print(f"   voice {v:11s} ({tag:20s}, {len(rows):3d} sentences): align {a:.1%}  recognize {r:.1%}")
    for name, group in (("seen", [v for v in by_voice if v not in HELD_OUT_VOICES]),
                        ("held-out", [v for v in by_voice if v in HELD_OUT_VOICES])):
        rows = [row for v in group for row in by_voice[v]]
        if rows:
            a, r = np.mean(rows, axis=0)
            print(f"   {name} voices: align {a:.1%}  recognize {r:.1%}")
    rate = closed[1] / max(closed[0], 1)
    print(f"   lips closed ±30 ms of P/B/M (aligned phones → animate): {closed[1]}/{closed[0]} = {rate:.1%}"
          f"   target ≥ 90%: {_mark(rate >= 0.9)}   (recognized phones: {closed_r[1] / max(closed_r[0], 1):.1%})")
    print(f"   onset error (aligned, {len(on)}/{n_ref} phones matched): median {np.median(on) * 1e3:.1f} ms"
          f"  p90 {np.percentile(on, 90) * 1e3:.1f} ms  within 50 ms {np.mean(on <= ONSET_SLACK_S):.1%}")
    print(f"   alignment fit of the right transcripts: median {np.median(losses):.2f}  max {np.max(losses):.2f}"
          f" nats/frame (threshold {MISMATCH_NATS_PER_FRAME}); taken for a mismatch: {failed}/{n}")


def _pearson_best_lag(audio_jaw_100: np.ndarray, video_jaw: np.ndarray, video_fps: float) -> tuple[float, float]:
    """Best Pearson r over lags in ±100 ms (10 ms steps) and that lag (positive: audio later)."""
    t = np.arange(len(video_jaw)) / video_fps
    grid = np.arange(len(audio_jaw_100)) / 100.0
    ok = ~np.isnan(video_jaw)
    best = (-2.0, 0.0)
    for lag_ms in range(-100, 101, 10):
        a = np.interp(t + lag_ms / 1000, grid, audio_jaw_100)
        if a[ok].std() == 0 or video_jaw[ok].std() == 0:
            continue
        r = float(np.corrcoef(a[ok], video_jaw[ok])[0, 1])
        if r > best[0]:
            best = (r, float(lag_ms))
    return best


def grid_clips(shared: Path, clips: int) -> None:
    from .. import arkit
    from ..audio.io import load_audio
    from ..audio.lipsync import LipSync
    from ..media import open_input
    from ..vision.video import VideoTracker

    paths = sorted((shared / "data" / "video" / "grid").glob("*.mpg"))[:clips]
    if not paths:
        print("2. GRID: no clips found, skipped")
        return
    jaw = arkit.index_of("jawOpen")
    tracker = VideoTracker(None)
    rows = {"with transcript": [], "without transcript": [], "loudness baseline": []}
    lags = {k: [] for k in rows}
    print("2. GRID clips (real voice + face, 25 fps video jawOpen as truth), best lag within ±100 ms:")
    for p in paths:
        tracker.reset()
        video = np.array([f.weights[jaw] if f.tracked else np.nan
                          for image in open_input(str(p)) for f in tracker.process(image)[:1]])
        x = load_audio(p)
        text = p.with_suffix(".txt").read_text().strip()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            series = {
                "with transcript": [f.weights[jaw] for f in LipSync(100, text).frames_from_samples(x)],
                "without transcript": [f.weights[jaw] for f in LipSync(100).frames_from_samples(x)],
            }
        frames = len(x) // 160
        rms = np.sqrt(np.array([np.mean(x[i * 160:(i + 1) * 160 + 240] ** 2) for i in range(frames)]))
        series["loudness baseline"] = np.clip(rms / (np.percentile(rms, 95) + 1e-9), 0, 1)
        line = []
        for k, s in series.items():
            r, lag = _pearson_best_lag(np.asarray(s, float), video, 25.0)
            rows[k].append(r)
            lags[k].append(lag)
            line.append(f"{k.split()[0]} r {r:.2f} @ {lag:+.0f} ms")
        print(f"   {p.stem}: " + "   ".join(line))
    targets = {"with transcript": 0.7, "without transcript": 0.6, "loudness baseline": None}
    for k, rs in rows.items():
        t = targets[k]
        tgt = f"   target ≥ {t}: {_mark(np.mean(rs) >= t)}" if t else "   (the floor to beat)"
        print(f"   mean r {k:20s} {np.mean(rs):.3f}  (median lag {np.median(lags[k]):+.0f} ms){tgt}")


def librivox(shared: Path) -> None:
    from ..audio.align import align
    from ..audio.io import load_audio
    from ..audio.phones import Phone
    from ..audio.sphinx import phone_label

    base = shared / "data" / "speech" / "librivox"
    errs, total = [], 0
    for ref_path in sorted(base.glob("*.phone.json")):
        stem = ref_path.name[: -len(".phone.json")]
        doc = json.loads(ref_path.read_text())
        ref = [Phone(phone_label(p["t"]), p["b"], p["b"] + p["d"]) for w in doc["w"] for p in w["w"]]
        ours = align(load_audio(base / f"{stem}.wav"), (base / f"{stem}.txt").read_text())
        e, n = onset_errors(ours, ref)
        errs.append(e)
        total += n
    if not total:
        print("3. LibriVox: no utterances found, skipped")
        return
    e = np.concatenate(errs)
    frac = np.sum(e <= ONSET_SLACK_S) / total
    print(f"3. LibriVox forced alignment: {np.sum(e <= ONSET_SLACK_S)}/{total} phone onsets within 50 ms = {frac:.1%}"
          f"   target ≥ 90%: {_mark(frac >= 0.9)}   (median error {np.median(e) * 1e3:.1f} ms)")


def real_voice_files(shared: Path) -> dict[str, list[tuple[Path, Path]]]:
    """Real recordings with a transcript beside them, by corpus: (audio, transcript) pairs."""
    data = shared / "data"
    pattern = {"LibriVox": (data / "speech" / "librivox", "*.wav"), "GRID": (data / "video" / "grid", "*.mpg"),
               "PocketSphinx samples": (data / "speech" / "pocketsphinx", "*.wav")}
    out = {}
    for name, (folder, glob) in pattern.items():
        pairs = [(p, p.with_suffix(".txt")) for p in sorted(folder.glob(glob)) if p.with_suffix(".txt").is_file()]
        if pairs:
            out[name] = pairs
    return out


def real_voice_speed(shared: Path, reps: int) -> None:
    """Forced alignment speed on real voices: each file aligned ``reps`` times, its median CPU time."""
    from ..audio.align import Aligner, AlignmentError
    from ..audio.io import load_audio

    corpora = real_voice_files(shared)
    if not corpora:
        print("   align, real voices: no recordings found, skipped")
        return
    aligner = Aligner()
    total_audio = total_cpu = 0.0
    rows = []
    for name, pairs in corpora.items():
        audio = cpu = 0.0
        for wav, txt in pairs:
            x, text = load_audio(wav), txt.read_text()
            times = []
            for _ in range(max(reps, 1) + 1):  # the first call warms caches (dictionary, network)
                t0 = time.process_time()
                try:
                    aligner.align_with_score(x, text)
                except AlignmentError:
                    pass
                times.append(time.process_time() - t0)
            audio += len(x) / 16000
            cpu += float(np.median(times[1:]))
        rows.append((name, len(pairs), audio, cpu))
        total_audio += audio
        total_cpu += cpu
    rtf = total_audio / max(total_cpu, 1e-9)
    print(f"   align, real voices ({total_audio:.0f} s, median of {reps}): {rtf:6.1f}× real time"
          f"   target ≥ 50×: {_mark(rtf >= 50)}")
    for name, n, audio, cpu in rows:
        print(f"     {name:22s} {n:2d} files {audio:5.1f} s: {audio / max(cpu, 1e-9):6.1f}× real time")


def speed(shared: Path, timers: dict[str, list[float]], chunk_ms: int, reps: int = 3) -> None:
    from ..audio.acoustic import LOOKAHEAD_S
    from ..audio.io import load_audio
    from ..audio.recognize import STABLE_LAG_S, PhoneRecognizer

    audio = sum(timers["audio"])
    print("4. speed on one core (process CPU time, BLAS/OpenMP on one thread):")
    if audio:
        print(f"   synthetic speech ({audio:.0f} s):")
    for k in ("recognize", "align", "lipsync (align + animate)", "recognize (allphone)"):
        if not audio:
            break
        rtf = audio / max(sum(timers[k]), 1e-9)
        tgt = "(comparison only)" if "allphone" in k else f"target ≥ 50×: {_mark(rtf >= 50)}"
        print(f"   {k:28s} {rtf:6.1f}× real time   {tgt}")
    real_voice_speed(shared, reps)
    wavs = sorted((shared / "data" / "speech").glob("*/*.wav"))
    rec = PhoneRecognizer()
    lat, cpu, total_s = [], 0.0, 0.0
    step = 16 * chunk_ms
    for w in wavs:
        x = load_audio(w)
        total_s += len(x) / 16000
        for i in range(0, len(x), step):
            t0 = time.process_time()
            out = rec.feed(x[i:i + step])
            cpu += time.process_time() - t0
            lat += [rec.position_s - p.end_s for p in out]
        t0 = time.process_time()
        rec.finish()
        cpu += time.process_time() - t0
    lat = np.array(lat)
    print(f"   streaming PhoneRecognizer ({chunk_ms} ms chunks, {total_s:.0f} s): {total_s / max(cpu, 1e-9):.1f}× real time"
          f" ({cpu / total_s * 100:.1f}% of a core)")
    print(f"   audio past a phone's end when it is final (≤ {STABLE_LAG_S * 1e3:.0f} ms + chunk; network look-ahead"
          f" {LOOKAHEAD_S * 1e3:.0f} ms): {_pct(lat)}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sentences", type=int, default=120, help="synthetic sentences (default 120, ≥ 100 for the target)")
    p.add_argument("--clips", type=int, default=6, help="GRID clips (default all 6)")
    p.add_argument("--chunk-ms", type=int, default=20, help="streaming chunk size (default 20 ms)")
    p.add_argument("--quick", action="store_true", help="12 sentences, 2 clips: a smoke run")
    p.add_argument("--reps", type=int, default=3, help="alignments per real recording for its speed (default 3)")
    p.add_argument("--only", default=",".join(PARTS),
                   help=f"comma-separated parts to run, of {', '.join(PARTS)} (default all)")


def _parts(only: str | None) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in (only or ",".join(PARTS)).split(",") if p.strip())
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        from ..errors import InputError

        raise InputError(f"--only: expected parts among {', '.join(PARTS)}, got {only!r}")
    return parts


def main(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    from .accuracy import shared_dir

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parts = _parts(getattr(args, "only", None))
    n = 12 if args.quick else args.sentences
    clips = 2 if args.quick else args.clips
    shared = shared_dir()
    print("facewire bench lipsync — acoustic viseme model + PocketSphinx 5 word alignment, espeak-ng truth, GRID,"
          " LibriVox")
    timers: dict[str, list[float]] = {"align": [], "recognize": [], "recognize (allphone)": [],
                                      "lipsync (align + animate)": [], "audio": []}
    t0 = time.perf_counter()
    # One core: numpy's BLAS (and any OpenMP pool) on one thread, so process CPU time is one core's.
    with threadpool_limits(limits=1):
        if "synthetic" in parts:
            synthetic(n, timers)
        if "grid" in parts:
            grid_clips(shared, clips)
        if "librivox" in parts:
            librivox(shared)
        if "speed" in parts:
            speed(shared, timers, args.chunk_ms, getattr(args, "reps", 3))
    print(f"(bench wall time {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(argparse.Namespace(sentences=120, clips=6, chunk_ms=20, quick=False, reps=3, only=",".join(PARTS))))
