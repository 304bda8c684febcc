"""CLI verbs of the expression package: ``facewire emote`` (an emotion take) and ``facewire affect``
(text → affect and the agent's expression, as JSON). Heavy imports stay inside the commands."""

from __future__ import annotations

import argparse
import json
import sys
import time

__all__ = ["cmd_affect", "cmd_emote", "register"]

# A scripted exchange for ``facewire affect --demo``: tension builds, then unexpected news, then warmth.
DEMO = (
    ("Hi! I just wanted to say thanks for your help yesterday.", "You're welcome, glad it worked out."),
    ("This is the third time your product broke. I'm furious!", "I'm sorry, let's get this fixed for you."),
    ("Whatever. Your support is pathetic.", "I understand, I'll escalate it right now."),
    ("Oh, actually it turns out the cable was unplugged, I didn't know that!", "Ah, that explains it!"),
    ("That's wonderful, everything works now. Thank you so much!", "I'm so happy to hear that!"),
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _blend(text: str) -> tuple[str, float]:
    from ..errors import InputError

    name, sep, weight = text.partition(":")
    try:
        return name, float(weight) if sep else 1.0
    except ValueError:
        raise InputError(f"--blend: expected EMOTION:WEIGHT such as surprise:0.6, got {text!r}") from None


def cmd_emote(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import InputError
    from ..frame import FaceFrame
    from ..takes import format_for, open_writer
    from .blink import BlinkStage
    from .emotion import EmotionStage
    from .face_affect import FaceAffectClassifier
    from .gaze import GazeStage

    if not (args.fps > 0 and np.isfinite(args.fps)):
        raise InputError(f"--fps: expected a positive frame rate, got {args.fps:g}")
    if not (args.start >= 0 and np.isfinite(args.start)):
        raise InputError(f"--start: expected seconds ≥ 0, got {args.start:g}")
    emotion = EmotionStage(mood=args.mood, mood_intensity=args.mood_intensity, state=args.state)
    episode = emotion.express(args.emotion, args.intensity, blend=_blend(args.blend) if args.blend else None,
                              onset_s=args.onset, apex_s=args.apex, offset_s=args.offset, at_ns=round(args.start * 1e9))
    duration = args.duration if args.duration is not None else args.start + episode.duration_s + 0.5
    if not (duration > 0 and np.isfinite(duration)):
        raise InputError(f"--duration: expected a positive number of seconds, got {duration:g}")
    format_for(args.out)  # an unsupported suffix fails before any work
    stages: list = [emotion]
    if not args.no_gaze:
        stages.append(GazeStage("synthetic", state=args.state, seed=args.seed))
    if not args.no_blink:
        stages.append(BlinkStage("synthetic", state=args.state, seed=args.seed))
    sinks = []
    if args.send:
        from ..sinks import open_sink

        sinks = [open_sink(url) for url in args.send]
    classifier = FaceAffectClassifier()
    apex_ns = episode.apex_ns
    read_back = None
    count = round(duration * args.fps)
    started = time.monotonic()
    with open_writer(args.out, fps=args.fps) as writer:
        opened = [sink.__enter__() for sink in sinks]
        try:
            for i in range(count + 1):
                t_ns = round(i * 1e9 / args.fps)
                frame = FaceFrame(t_ns=t_ns, seq=i, source="facewire-emote")
                for stage in stages:
                    frame = stage.process(frame)
                writer.send(frame)
                for sink in opened:
                    sink.send(frame)
                if read_back is None and t_ns >= apex_ns:
                    read_back = classifier.classify(emotion.emotion_weights(t_ns))
                if opened:  # live sinks get the frames in real time
                    time.sleep(max(0.0, started + t_ns / 1e9 - time.monotonic()))
        finally:
            for sink in opened:
                sink.__exit__(None, None, None)
    if not args.quiet:
        seen = f"read back as {read_back.emotion} ({read_back.confidence:.2f})" if read_back else "apex after the end"
        _say(f"facewire: emote {'+'.join(episode.mix)}: {count + 1} frames at {args.fps:g} fps, apex at "
             f"{apex_ns / 1e9:.2f} s, {seen} → {args.out}")
    return 0


def cmd_affect(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from .affect import ConversationAffect, analyse

    if args.demo:
        conversation = ConversationAffect()
        for user, reply in DEMO:
            agent = conversation.respond(user, reply)
            print(json.dumps({"user": user, "user_affect": analyse(user).to_json_dict(), "reply": reply,
                              "tension": round(conversation.tension, 3), "agent": agent.to_json_dict()}))
        return 0
    if args.text is None:
        raise InputError("affect: expected a text (or --demo)")
    out: dict = {"text": args.text, "affect": analyse(args.text).to_json_dict()}
    if args.reply is not None:
        out["reply_affect"] = analyse(args.reply).to_json_dict()
    if args.llm or args.llm_url:
        from .llm import LLMAffect, LLMConfig

        config = LLMConfig.from_env(args.llm_url, args.llm_model, timeout_s=args.llm_timeout)
        result = LLMAffect(config).respond(args.text, args.reply)
        out.update({"reply": result.reply, "agent": result.expression.to_json_dict(), "source": result.source})
        if result.error:
            out["error"] = result.error
            _say(f"facewire: warning: {result.error}")
    else:
        out.update({"agent": ConversationAffect().respond(args.text, args.reply).to_json_dict(), "source": "local"})
    print(json.dumps(out, ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from .emotion import EMOTIONS

    e = sub.add_parser("emote", help="write a take of an emotion episode (with blinks and gaze)")
    e.add_argument("emotion", help=f"one of {', '.join(EMOTIONS)} (or happy, sad, angry, …)")
    e.add_argument("--intensity", type=float, default=1.0, help="0..1 (default 1)")
    e.add_argument("--onset", type=float, default=0.4, metavar="S", help="rise to the apex (default 0.4 s)")
    e.add_argument("--apex", type=float, default=1.5, metavar="S", help="hold at the apex (default 1.5 s)")
    e.add_argument("--offset", type=float, default=1.0, metavar="S", help="fall back to the mood (default 1 s)")
    e.add_argument("--start", type=float, default=0.5, metavar="S", help="episode start (default 0.5 s)")
    e.add_argument("--blend", metavar="EMOTION:W", help="blend a second emotion, e.g. surprise:0.6")
    e.add_argument("--mood", default=None, help="the mood the face rests at (default neutral)")
    e.add_argument("--mood-intensity", type=float, default=0.25, help="0..1 (default 0.25)")
    e.add_argument("--state", default="rest", help="rest, listening, speaking or thinking (default rest)")
    e.add_argument("--out", required=True, help="take file (.csv, .jsonl, .llf.csv, .a2f.json, .glb) or - for stdout")
    e.add_argument("--fps", type=float, default=60.0, help="frame rate (default 60)")
    e.add_argument("--duration", type=float, default=None, metavar="S", help="take length (default: the episode + 0.5 s)")
    e.add_argument("--seed", type=int, default=0, help="seed of the blink and gaze layers (default 0)")
    e.add_argument("--no-blink", action="store_true", help="no blink layer")
    e.add_argument("--no-gaze", action="store_true", help="no gaze layer")
    e.add_argument("--send", action="append", metavar="URL", help="also send live, in real time (vmc://, llf://, …)")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_emote)

    a = sub.add_parser("affect", help="text → emotion, valence, arousal and the agent's expression (JSON)")
    a.add_argument("text", nargs="?", help="the user's words")
    a.add_argument("--reply", help="the agent's reply")
    a.add_argument("--demo", action="store_true", help="a scripted conversation: calm when tense, surprise at news")
    a.add_argument("--llm", action="store_true", help="ask the LLM (FACEWIRE_LLM_BASE_URL, FACEWIRE_LLM_MODEL, FACEWIRE_LLM_API_KEY)")
    a.add_argument("--llm-url", metavar="URL", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    a.add_argument("--llm-model", metavar="NAME", help="model name (else FACEWIRE_LLM_MODEL)")
    a.add_argument("--llm-timeout", type=float, default=10.0, metavar="S", help="per-request timeout (default 10 s)")
    a.set_defaults(func=cmd_affect)
