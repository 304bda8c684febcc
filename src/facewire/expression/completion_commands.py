"""CLI verbs of headset mode: ``facewire complete`` (reconstruct the hidden face of a take) and
``facewire completion train`` (fit a completion model on full-face takes). Heavy imports stay inside."""

from __future__ import annotations

import argparse
import sys

__all__ = ["MODE_NAMES", "cmd_complete", "cmd_completion_train", "register"]

MODE_NAMES = ("lower", "eyes", "lower+eyes", "audio")
"""The ``--observed`` choices (`completion.MODES`; repeated here so ``--help`` imports nothing heavy)."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _mode(text: str) -> str:
    from ..errors import InputError

    if text not in MODE_NAMES:
        raise InputError(f"--observed: expected one of {', '.join(MODE_NAMES)}, got {text!r}")
    return text


def cmd_complete(args: argparse.Namespace) -> int:
    import os

    import numpy as np

    from .. import arkit
    from ..errors import InputError
    from ..frame import Gaze
    from ..takes import format_for, open_writer, read_take
    from .completion import (
        EYE_TRACKED,
        CompletionModel,
        complete_frames,
        load_default_model,
        mode_named,
    )

    mode = mode_named(_mode(args.observed))
    format_for(args.output)  # an unsupported output suffix fails before any work
    model = CompletionModel.load(args.model) if args.model else load_default_model()
    live = bool(getattr(args, "live", False))
    model.network(mode)  # a missing mode fails before the take is read
    if live:
        model.causal().network(mode)
    frames = list(read_take(args.input))
    tracked = [f for f in frames if f.tracked]
    if not tracked:
        raise InputError(f"{args.input}: expected tracked frames, got {len(frames)} frames and none with a face")
    observed = mode.observed_index
    seen = np.stack([f.weights[observed] for f in tracked])
    if not seen.any():
        raise InputError(f"{args.input}: expected the channels a '{mode.name}' headset observes "
                         f"({', '.join(mode.observed[:4])}, …, {len(mode.observed)} in all), got all zero or absent")
    keep = np.zeros(arkit.COUNT, dtype=bool)
    keep[observed] = True
    eyes_seen = set(EYE_TRACKED) <= set(mode.observed)
    kept_extras = {"unclipped." + n for n in mode.observed}
    # what the headset gives: the observed channels only (and gaze when the eyes are tracked)
    sparse = [frame.replace(weights=np.where(keep, frame.weights, 0.0).astype(np.float32),
                            gaze=frame.gaze if eyes_seen else Gaze(),
                            extras={k: v for k, v in frame.extras.items()
                                    if not k.startswith("unclipped.") or k in kept_extras})
              for frame in frames]
    # Live Link Face's *_cal takes have the performer's neutral taken off already (as training saw them)
    calibrated = os.path.basename(str(args.input)).split(".")[0].endswith("_cal")
    procedural = not args.no_procedural
    filled = complete_frames(sparse, mode, model, procedural=procedural, seed=args.seed,
                             neutral_known=calibrated, live=live)
    with open_writer(args.output) as sink:
        for frame in filled:
            sink.send(frame)
    if not args.quiet and args.output != "-":
        how = "causal" if live or not model.features.offline else "whole take"
        _say(f"facewire: complete ({mode.name}, {how}): {len(filled)} frames, {len(mode.hidden)} channels reconstructed"
             f"{', blinks and gaze generated' if procedural and mode.procedural else ''}: {args.input} → {args.output}")
    return 0


def cmd_completion_train(args: argparse.Namespace) -> int:
    import os

    from ..errors import InputError
    from .completion import (
        OFFLINE_FEATURES,
        CompletionModel,
        FeatureConfig,
        Take,
        TrainConfig,
    )

    modes = [_mode(m) for m in (args.observed or MODE_NAMES)]
    if args.members < 1 or args.epochs < 1:
        raise InputError(f"--members/--epochs: expected ≥ 1, got {args.members}/{args.epochs}")
    for path in args.takes:
        if not os.path.isfile(path):
            raise InputError(f"{path}: expected a take file, got {'a directory' if os.path.isdir(path) else 'nothing'}")
    takes = [Take.read(p) for p in args.takes]
    config = TrainConfig(members=args.members, epochs=args.epochs, seed=args.seed)
    progress = None if args.quiet else (lambda m: _say(f"facewire: completion: trained mode {m}"))
    live = None if getattr(args, "no_live", False) else FeatureConfig()
    model = CompletionModel.train(takes, dict.fromkeys(modes), OFFLINE_FEATURES, config, progress=progress, live=live)
    model.save(args.out)
    if not args.quiet:
        _say(f"facewire: completion model ({', '.join(model.networks)}) from {len(takes)} takes → {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("complete", help="headset mode: reconstruct the hidden face of a take from the observed channels")
    c.add_argument("input", help="a take (any format facewire reads)")
    c.add_argument("output", help="the reconstructed take (format from the suffix; '-' = JSON Lines on stdout)")
    c.add_argument("--observed", required=True, metavar="MODE",
                   help=f"what the headset sees: {', '.join(MODE_NAMES)}")
    c.add_argument("--model", metavar="FILE.npz", help="a completion model (default: the shipped one)")
    c.add_argument("--seed", type=int, default=0, help="seed of the generated blinks and gaze (default 0)")
    c.add_argument("--live", action="store_true",
                   help="reconstruct causally, frame by frame, as a live stream gets it (default: from the whole take)")
    c.add_argument("--no-procedural", action="store_true",
                   help="do not generate blinks and gaze in lower/audio mode (the eyes stay neutral)")
    c.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    c.set_defaults(func=cmd_complete)

    t = sub.add_parser("completion", help="headset-mode completion models")
    verbs = t.add_subparsers(dest="completion_verb", required=True, metavar="VERB")
    tr = verbs.add_parser("train", help="train a completion model on full-face takes")
    tr.add_argument("takes", nargs="+", metavar="TAKE", help="full-face takes (any format facewire reads)")
    tr.add_argument("--out", required=True, metavar="FILE.npz", help="where to write the model")
    tr.add_argument("--observed", action="append", metavar="MODE",
                    help=f"a mode to train (repeatable; default all: {', '.join(MODE_NAMES)})")
    tr.add_argument("--members", type=int, default=3, help="networks in each mode's ensemble (default 3)")
    tr.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    tr.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    tr.add_argument("--no-live", action="store_true",
                    help="train only the whole-take networks, not the causal ones live streams need (half the time)")
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    tr.set_defaults(func=cmd_completion_train)
