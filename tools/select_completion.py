"""Choose the completion model's settings per mode by leave-one-take-out on the training takes only.

Every candidate (feature and training settings) is trained once per training take without that take
and judged on it (pooled per channel group, time-weighted, % lower MAE than that fold's training
mean); the held-back takes (`completion.HELD_BACK`) are never read. Per mode the candidate with the
best worst group wins (the acceptance asks for every group), ties broken by the mean over groups.
What it prints is pasted into the completion module's docstring; ``tools/train_completion.py`` then
trains the shipped model with the chosen settings.

``--live`` judges the causal networks `CompletionStage` runs (`completion.FeatureConfig()` features,
the candidates' training changes only) instead of the whole-take ones.

Run: python tools/select_completion.py [--takes-dir ../shared/data/takes] [--modes audio eyes] [--only NAME...] [--live]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from facewire.expression.completion import (
    HELD_BACK,
    MODES,
    OFFLINE_FEATURES,
    CompletionModel,
    FeatureConfig,
    Take,
    TrainConfig,
    train_network,
)

REPO = Path(__file__).resolve().parents[1]
LOTO = TrainConfig(members=1, epochs=8)
CANDIDATES = {
    "scaled 0.05": (OFFLINE_FEATURES, LOTO),
    "levels only": (replace(OFFLINE_FEATURES, scale_floor=0.0), LOTO),
    "scaled 0.15": (replace(OFFLINE_FEATURES, scale_floor=0.15), LOTO),
    "scaled 0.3": (replace(OFFLINE_FEATURES, scale_floor=0.3), LOTO),
    "0.05, 32 units": (OFFLINE_FEATURES, replace(LOTO, hidden_units=32)),
    "0.05, decay 0.05": (OFFLINE_FEATURES, replace(LOTO, weight_decay=5e-2)),
    "0.05, absolute": (OFFLINE_FEATURES, replace(LOTO, loss="absolute")),
    "0.05, equal takes": (OFFLINE_FEATURES, replace(LOTO, take_weighting="equal")),
    "0.05, decay 0.05, absolute": (OFFLINE_FEATURES, replace(LOTO, weight_decay=5e-2, loss="absolute")),
}


def loto(takes: list[Take], mode: str, features, config) -> dict[str, float]:
    """Pooled leave-one-take-out improvement per group over ``takes``."""
    from facewire.expression.completion import evaluate

    pooled: dict[str, list[float]] = {}
    for i, take in enumerate(takes):
        net = train_network([t for j, t in enumerate(takes) if j != i], mode, features, config)
        model = CompletionModel({mode: net}, features)
        for group, s in evaluate(model, [take], mode).items():
            acc = pooled.setdefault(group, [0.0, 0.0])
            acc[0] += s.error * s.seconds
            acc[1] += s.baseline_error * s.seconds
    return {g: 1.0 - e / b for g, (e, b) in pooled.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--takes-dir", type=Path, default=REPO.parent / "shared" / "data" / "takes")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--only", nargs="+", default=None, choices=list(CANDIDATES), help="candidates to run")
    ap.add_argument("--live", action="store_true", help="the causal (live) networks: their features, the training changes")
    args = ap.parse_args(argv)

    paths = [p for p in sorted(args.takes_dir.glob("*/*.csv")) if p.relative_to(args.takes_dir).as_posix() not in HELD_BACK]
    if not paths:
        print(f"select_completion: no training takes under {args.takes_dir}", file=sys.stderr)
        return 2
    takes = [replace(Take.read(p), name=p.relative_to(args.takes_dir).as_posix()) for p in paths]
    print(f"leave-one-take-out over {len(takes)} training takes (held-back takes not read), "
          f"{'live (causal)' if args.live else 'whole-take'} networks; "
          f"% lower MAE than the fold's training mean")
    for mode in args.modes:
        rows = []
        for name in args.only or CANDIDATES:
            features, config = CANDIDATES[name]
            if args.live:
                if features != OFFLINE_FEATURES:
                    continue  # a whole-take feature setting: nothing to judge live
                features = FeatureConfig()
            t0 = time.process_time()
            imp = loto(takes, mode, features, config)
            rows.append((min(imp.values()), sum(imp.values()) / len(imp), name))
            print(f"  {mode:11s} {name:18s} " + " ".join(f"{g} {v:+.0%}" for g, v in imp.items())
                  + f"   worst {rows[-1][0]:+.0%}  ({time.process_time() - t0:.0f} s CPU)", flush=True)
        best = max(rows)
        print(f"  {mode:11s} chosen: {best[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
