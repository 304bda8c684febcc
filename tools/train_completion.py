"""Train facewire's headset-mode completion model (src/facewire/data/completion.npz) on the real takes.

Deterministic: fixed seeds, a fixed list of takes (every ``*.csv`` under ``../shared/data/takes``,
sorted) minus the held-back ones (`completion.HELD_BACK`, one per performer, never trained on), and a
model file written with fixed zip timestamps, so the same inputs give the same bytes and the same
SHA-256. After a retrain, paste the printed digest into `completion.DEFAULT_MODEL_SHA256`.
The model holds whole-take networks (`completion.OFFLINE_FEATURES` and, per mode,
`completion.MODE_TRAINING`, both chosen by ``tools/select_completion.py``; for files: ``facewire complete``)
and causal ones (``live``, for `CompletionStage`; per mode `completion.LIVE_MODE_TRAINING`, chosen by
``tools/select_completion.py --live``); about 2 minutes of CPU on one core. It prints the
held-back result of both once, after training: nothing here chooses settings from it.

Run: python tools/train_completion.py [--takes-dir ../shared/data/takes] [--out PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import replace
from pathlib import Path

from facewire.expression.completion import (
    HELD_BACK,
    LIVE_MODE_TRAINING,
    MODES,
    OFFLINE_FEATURES,
    CompletionModel,
    FeatureConfig,
    Take,
    TrainConfig,
    evaluate,
    mode_configs,
)

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--takes-dir", type=Path, default=REPO.parent / "shared" / "data" / "takes")
    ap.add_argument("--out", type=Path, default=REPO / "src" / "facewire" / "data" / "completion.npz")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--members", type=int, default=TrainConfig.members)
    ap.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    ap.add_argument("--scale-floor", type=float, default=OFFLINE_FEATURES.scale_floor,
                    help="per-take scaling of the whole-take inputs (0: levels only)")
    args = ap.parse_args(argv)

    paths = sorted(args.takes_dir.glob("*/*.csv"))
    names = [p.relative_to(args.takes_dir).as_posix() for p in paths]
    missing = [h for h in HELD_BACK if h not in names]
    if missing:
        print(f"train_completion: held-back takes not found under {args.takes_dir}: {missing}", file=sys.stderr)
        return 2
    # named by their path under takes/, as HELD_BACK names them, so the model's record can be checked
    train = [replace(Take.read(p), name=n) for p, n in zip(paths, names) if n not in HELD_BACK]
    held = [replace(Take.read(args.takes_dir / h), name=h) for h in HELD_BACK]
    print(f"training on {len(train)} takes: {', '.join(t.name for t in train)}")
    print(f"held back: {', '.join(HELD_BACK)}")
    config = TrainConfig(members=args.members, epochs=args.epochs, seed=args.seed)
    started = time.monotonic()
    cpu = time.process_time()
    # whole-take networks for files, and causal ones for live streams (CompletionStage)
    features = replace(OFFLINE_FEATURES, scale_floor=args.scale_floor)
    model = CompletionModel.train(train, tuple(MODES), features, config, live=FeatureConfig(),
                                  mode_configs=mode_configs(config), live_mode_configs=mode_configs(config, LIVE_MODE_TRAINING),
                                  progress=lambda m: print(f"  mode {m}: {time.monotonic() - started:.0f} s", flush=True))
    print(f"trained in {time.process_time() - cpu:.0f} s CPU")
    model.save(args.out)
    data = args.out.read_bytes()
    for label, which in (("whole take", model), ("live", model.causal())):
        print(f"held back, {label}:")
        for mode in MODES:
            scores = evaluate(which, held, mode)
            print(f"  {mode:11s}" + "  ".join(f"{g} {s.improvement:+.0%}" for g, s in scores.items()))
    print(f"wrote {args.out} ({len(data)} bytes), SHA-256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
