"""``facewire bench affect``: how well text and faces are read as the seven emotions plus neutral.

Text: agreement of `expression.affect.analyse` with each sentence table in ``tests/expression/data``
(``affect_*.tsv``, each with a header saying when and how it was written) and with any table given by
``--table PATH`` (repeatable: a table kept outside the checkout, e.g. one written blind), each with
its header's first line, a confusion matrix and the cost per sentence; then the pooled agreement.
Face (`expression.face_affect`, rules only): the emotion poses recognised back clean (intensity
0.8), with Gaussian noise (σ 0.05 on every weight), at partial intensity (0.4), blended with
speech (a random viseme's mouth under the emotion's upper face, lip corners at the speaking gain,
as `EmotionStage` blends while speaking) and at the apex of an `EmotionStage` episode (onset 0.3 s);
the real calibrated neurosync holds (every frame, accepted labels per hold), and whether fitted
prototypes generalise (leave-one-take-out); the smiles of another performer (alexdjulin
performance takes, neutral removed as `CalibrationStage` does, frames with both lip corners ≥ 0.4):
the share read as happiness; and the classifier's cost per frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HELP = "text and face affect: agreement with sentence tables, face confusion matrices, cost per frame"

NEUROSYNC = {"161": "fear", "162": "fear", "164": "anger", "165": "anger", "167": "sadness", "168": "sadness"}
"""Neurosync hold → label (the hold file names say Fearful, Angry/Disgusted, Sad)."""

ACCEPT = {"fear": ("fear",), "anger": ("anger", "disgust"), "sadness": ("sadness",)}
"""Labels that count as right for each hold ("Angry/Disgusted" accepts either)."""

SMILE_TAKES = ("S07-001", "S88-001", "facial")
"""alexdjulin performance takes (smiles and expressions); the range-of-motion takes include sneers."""

SMILE_MIN = 0.4
"""Both mouthSmile weights at least this (after neutral removal): a clear smile."""


def data_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "tests" / "expression" / "data"


def shared_takes() -> Path:
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "takes"


def load_table(path: str | Path) -> list[tuple[str, str]]:
    """(sentence, expected) rows of a tab-separated table: expected, role, sentence; ``#`` comments."""
    return [(sentence, expected) for sentence, expected, _ in load_rows(path)]


def load_rows(path: str | Path) -> list[tuple[str, str, str | None]]:
    """(sentence, expected, role) rows of a table; role None where the table says "-" (not given)."""
    from ..errors import InputError
    from ..expression.emotion import EMOTIONS

    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or parts[0] not in EMOTIONS:
            raise InputError(f"{path}:{n}: expected 'emotion<TAB>role<TAB>sentence', got {line[:60]!r}")
        rows.append((parts[2], parts[0], parts[1] if parts[1] in ("user", "reply") else None))
    return rows


def table_header(path: str | Path) -> str:
    """The first ``#`` line of a table (what it is and when it was written), without the ``#``."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def text_agreement(rows: Sequence[tuple]) -> tuple[float, list[str], list[str]]:
    """(agreement, truth, predicted) of the local analyser on (sentence, expected[, role]) rows."""
    from ..expression.affect import analyse

    truth = [row[1] for row in rows]
    seen = [analyse(row[0], role=row[2] if len(row) > 2 else None).emotion for row in rows]
    return sum(t == s for t, s in zip(truth, seen)) / len(rows), truth, seen


def calibrate(weights: np.ndarray) -> np.ndarray:
    """A take's neutral removed the way `CalibrationStage` learns it (20th percentile, gaze kept)."""
    from .. import arkit

    offset = np.minimum(np.percentile(weights, 20, axis=0), 0.6)
    offset[[n.startswith("eyeLook") for n in arkit.NAMES]] = 0.0
    return np.clip((weights - offset) / (1.0 - offset), 0.0, 1.0)


def _speaking(emotion_weights: np.ndarray, viseme_weights: np.ndarray) -> np.ndarray:
    from .. import arkit
    from ..expression.emotion import SPEAKING_MOUTH_GAIN

    mouth = np.array([n.startswith(("mouth", "jaw")) for n in arkit.NAMES])
    corners = np.array([n.startswith(("mouthSmile", "mouthFrown", "mouthDimple")) for n in arkit.NAMES])
    out = viseme_weights.copy()
    out[~mouth] = np.maximum(viseme_weights[~mouth], emotion_weights[~mouth])
    out[corners] = viseme_weights[corners] + SPEAKING_MOUTH_GAIN * emotion_weights[corners]
    return np.clip(out, 0.0, 1.0)


def pose_conditions(classifier, per_emotion: int = 20, seed: int = 0) -> dict[str, tuple[list[str], list[str]]]:
    """Condition → (truth, predicted) for the emotion poses: clean, noisy, partial, speech, episode."""
    from .. import arkit
    from ..expression.emotion import EMOTIONS, EmotionStage, pose_weights
    from ..frame import FaceFrame
    from ..mouth import VISEMES, visemes_to_arkit

    rng = np.random.default_rng(seed)
    out: dict[str, tuple[list[str], list[str]]] = {}
    for cond in ("clean", "noisy", "partial", "speech"):
        truth, seen = [], []
        for emotion in EMOTIONS[1:]:
            for _ in range(per_emotion if cond != "clean" else 1):
                w = pose_weights(emotion, 0.4 if cond == "partial" else 0.8)
                if cond == "noisy":
                    w = np.clip(w + rng.normal(0.0, 0.05, arkit.COUNT), 0.0, 1.0)
                elif cond == "speech":
                    v = np.zeros(len(VISEMES))
                    v[rng.integers(1, len(VISEMES))] = 1.0  # a spoken viseme, not the silence
                    w = _speaking(w, visemes_to_arkit(v))
                truth.append(emotion)
                seen.append(classifier.classify(w).emotion)
        out[cond] = (truth, seen)
    truth, seen = [], []
    onset_s = 0.3
    for emotion in EMOTIONS[1:]:
        stage = EmotionStage()
        stage.express(emotion, 0.7, onset_s=onset_s, apex_s=1.0, at_ns=0)
        frame = stage.process(FaceFrame(t_ns=round(onset_s * 1e9)))  # the apex is due at the onset's end
        truth.append(emotion)
        seen.append(classifier.classify(frame.weights).emotion)
    out["episode apex"] = (truth, seen)
    return out


def read_holds(takes: Path, step: int = 6) -> dict[str, np.ndarray]:
    """Hold → (frames, 52) weights of the calibrated neurosync holds, every ``step``-th frame."""
    from ..takes import read_take

    return {n: np.array([f.weights for f in read_take(takes / "neurosync" / f"MySlate_{n}_iPhone_cal.csv")])[::step]
            for n in NEUROSYNC}


def read_smiles(takes: Path) -> np.ndarray:
    """Smile frames (both lip corners ≥ `SMILE_MIN` after neutral removal) of the alexdjulin performances."""
    from .. import arkit
    from ..takes import read_take

    frames = []
    left, right = arkit.INDEX["mouthSmileLeft"], arkit.INDEX["mouthSmileRight"]
    for name in SMILE_TAKES:
        w = calibrate(np.array([f.weights for f in read_take(takes / "alexdjulin" / f"{name}.csv")]))
        frames.append(w[np.minimum(w[:, left], w[:, right]) >= SMILE_MIN])
    return np.concatenate(frames)


def hold_labels(classifier, holds: dict[str, np.ndarray]) -> dict[str, list[str]]:
    return {n: [classifier.classify(w).emotion for w in frames] for n, frames in holds.items()}


def hold_scores(labels: dict[str, list[str]]) -> dict[str, float]:
    """Hold → share of its frames given an accepted label."""
    return {n: float(np.mean([x in ACCEPT[NEUROSYNC[n]] for x in got])) for n, got in labels.items()}


def leave_one_take_out(holds: dict[str, np.ndarray], smiles: np.ndarray | None = None):
    """Per held-out hold, a classifier fitted on the other five: (labels per hold, smile labels per fold)."""
    from ..expression.face_affect import FaceAffectClassifier

    labels, smile_labels = {}, []
    for take, frames_in in holds.items():
        classifier = FaceAffectClassifier()
        for other, frames in holds.items():
            if other != take:
                classifier.fit(frames, NEUROSYNC[other])
        labels[take] = [classifier.classify(w).emotion for w in frames_in]
        if smiles is not None:
            smile_labels += [classifier.classify(w).emotion for w in smiles]
    return labels, smile_labels


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--takes", type=Path, default=None, help="directory of the real takes (default ../shared/data/takes)")
    p.add_argument("--tables", type=Path, default=None, help="directory of the affect_*.tsv sentence tables "
                   "(default tests/expression/data of the checkout)")
    p.add_argument("--table", type=Path, action="append", default=[], metavar="PATH",
                   help="an extra sentence table (expected<TAB>role<TAB>sentence) to measure; repeatable")
    p.add_argument("--text-only", action="store_true", help="measure the sentence tables only, no faces")
    p.add_argument("--seed", type=int, default=0, help="seed of the noisy and speech poses (default 0)")


def _counts(labels: Sequence[str]) -> str:
    return ", ".join(f"{k} {labels.count(k)}" for k in sorted(set(labels), key=lambda k: -labels.count(k)))


def main(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..expression.face_affect import FaceAffectClassifier, confusion

    tables = args.tables if args.tables is not None else data_dir()
    takes = args.takes if args.takes is not None else shared_takes()
    extra = list(getattr(args, "table", None) or [])
    for path in extra:  # refuse a bad --table before measuring anything
        if not path.is_file():
            print(f"facewire bench affect: --table: expected a sentence table file, got {str(path)!r} (not a file)",
                  file=sys.stderr)
            return 2
    print("facewire bench affect")
    print("\n== text: local analyser (expression.affect.analyse) ==")
    paths = (sorted(tables.glob("affect_*.tsv")) if tables.is_dir() else []) + extra
    if not paths:
        print(f"  no sentence tables found in {tables}")
    from ..expression.affect import analyse

    analyse("warm up")  # load the lexicons outside the timed runs
    right = total = 0
    for path in paths:
        try:
            rows = load_rows(path)
            header = table_header(path)
        except InputError as exc:
            print(f"facewire bench affect: {exc}", file=sys.stderr)
            return 1
        except (OSError, UnicodeDecodeError) as exc:
            print(f"facewire bench affect: {path}: expected a readable UTF-8 sentence table, got {exc}", file=sys.stderr)
            return 1
        if not rows:
            print(f"facewire bench affect: {path}: expected sentence rows, got none", file=sys.stderr)
            return 1
        started = time.process_time()
        agreement, truth, seen = text_agreement(rows)
        cost_ms = (time.process_time() - started) / len(rows) * 1e3
        hits = sum(t == s for t, s in zip(truth, seen))
        right, total = right + hits, total + len(rows)
        name = path.name if path not in extra else str(path)
        print(f"\n{name}: {agreement:.1%} agreement ({hits}/{len(rows)}; {cost_ms:.2f} ms CPU per sentence)")
        if header:
            print(f"  ({header})")
        print(confusion(truth, seen))
    if total:
        print(f"\nall tables: {right / total:.1%} agreement ({right}/{total})")
    if getattr(args, "text_only", False):
        return 0

    classifier = FaceAffectClassifier()
    print("\n== face: emotion poses recognised back (rules only) ==")
    for cond, (truth, seen) in pose_conditions(classifier, seed=args.seed).items():
        per = {e: np.mean([s == e for t, s in zip(truth, seen) if t == e]) for e in dict.fromkeys(truth)}
        diagonal = sum(v >= 0.5 for v in per.values())
        print(f"\n{cond}: {np.mean([t == s for t, s in zip(truth, seen)]):.0%} of {len(truth)} frames; "
              f"{diagonal} of {len(per)} emotions recognised (plurality)")
        print(confusion(truth, seen))

    if not (takes / "neurosync").is_dir():
        print(f"\nreal takes not found in {takes}: neurosync and alexdjulin checks skipped")
    else:
        holds = read_holds(takes)
        smiles = read_smiles(takes) if (takes / "alexdjulin").is_dir() else np.zeros((0, 52))
        print("\n== face: real neurosync holds (calibrated, 10 Hz) ==")
        for name, labels in (("rules only", hold_labels(classifier, holds)),
                             ("leave-one-take-out fitted prototypes", leave_one_take_out(holds)[0])):
            scores = hold_scores(labels)
            print(f"\n{name}: " + ", ".join(f"{n} {NEUROSYNC[n]} {v:.0%}" for n, v in scores.items()))
            truth = [NEUROSYNC[n] for n, got in labels.items() for _ in got]
            print(confusion(truth, [x for got in labels.values() for x in got]))
        if len(smiles):
            rules = [classifier.classify(w).emotion for w in smiles]
            _, fitted = leave_one_take_out(holds, smiles)
            print(f"\n== face: alexdjulin smiles ({len(smiles)} frames of {', '.join(SMILE_TAKES)}) ==")
            print(f"rules only: {rules.count('happiness') / len(rules):.0%} happiness ({_counts(rules)})")
            print(f"fitted on the neurosync holds (6 folds): {fitted.count('happiness') / len(fitted):.0%} "
                  f"happiness ({_counts(fitted)})")

    rng = np.random.default_rng(args.seed)
    frames = np.clip(rng.random((2000, 52)) * 0.5, 0.0, 1.0)
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for w in frames:
            classifier.classify(w)
        runs.append((time.perf_counter() - t0) / len(frames))
    print(f"\n== cost ==\nclassify: median {np.median(runs) * 1e6:.0f} µs per frame over 5 × {len(frames)} frames "
          f"({1 / np.median(runs) / 60:.0f}× a 60 fps stream on one core)")
    return 0
