"""CLI verb ``facewire serve``: the web studio on ``http://HOST:PORT/`` (FastAPI on uvicorn).

The studio always audits into the trust home (sessions, take downloads); ``--context`` names its use
context, without which photo avatars are refused.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["cmd_serve", "register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the live web studio (webcam + microphone → avatar) in the browser",
                       description="Serve the web studio: a page that streams the webcam and microphone to "
                                   "facewire, renders the avatar live with three.js, records takes and speaks text.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--avatars", metavar="DIR", help="a folder of .glb/.vrm avatars to offer besides the default")
    p.add_argument("--max-sessions", type=int, default=16, help="browser sessions served at once (default 16)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="tracker processes, each session pinned to one; 0 (the default) tracks in the server's "
                        "own threads: on 2 cores both cost ≈4 ms CPU per frame and threads held more sessions "
                        "(facewire bench serve --workers 0,N); on more cores, where one GIL caps threads, measure N")
    p.add_argument("--track-threads", type=int, default=None, metavar="N",
                   help="with --workers 0: tracking threads shared by all sessions (default: cores + 4)")
    p.add_argument("--idle-timeout", type=float, default=60.0, metavar="S",
                   help="close a session that sent nothing for S seconds (default 60)")
    from ..trust.consent import CONTEXT_NAMES

    t = p.add_argument_group("trust", "the studio's use context and audit log (see 'facewire consent contexts')")
    t.add_argument("--context", choices=CONTEXT_NAMES, metavar="CONTEXT",
                   help=f"the use context ({', '.join(CONTEXT_NAMES)}); photo avatars need one")
    t.add_argument("--home", metavar="DIR", default=None,
                   help="trust home: audit log, keys, likeness registry "
                        "(default: $FACEWIRE_HOME, else the user data folder)")
    pp = t.add_mutually_exclusive_group()
    pp.add_argument("--passphrase-env", metavar="VAR", help="read the keys' passphrase from environment variable VAR")
    pp.add_argument("--passphrase-file", metavar="FILE", help="read the keys' passphrase from the first line of FILE")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..cli import _say
    from ..errors import InputError
    from .app import StudioConfig, create_app, ensure_three, listen_socket
    from .session import SessionLimits
    from .workers import default_track_threads, single_threaded_kernels

    if not 0 <= args.port < 65536:
        raise InputError(f"--port: expected 0..65535, got {args.port}")
    if args.max_sessions < 1:
        raise InputError(f"--max-sessions: expected a positive number, got {args.max_sessions}")
    workers = args.workers
    if workers < 0:
        raise InputError(f"--workers: expected a whole number ≥ 0, got {workers}")
    if args.track_threads is not None and args.track_threads < 1:
        raise InputError(f"--track-threads: expected a positive whole number, got {args.track_threads}")
    if not (math.isfinite(args.idle_timeout) and args.idle_timeout > 0):
        raise InputError(f"--idle-timeout: expected a positive number of seconds, got {args.idle_timeout:g}")
    if args.avatars is not None:
        from pathlib import Path

        if not Path(args.avatars).is_dir():
            raise InputError(f"--avatars: expected a folder of .glb/.vrm files, got {args.avatars!r}")
    from ..trust.keys import read_passphrase
    from ..trust.store import trust_home

    passphrase = read_passphrase(args.passphrase_env, args.passphrase_file)
    home = trust_home(args.home).root
    ensure_three(_say)
    single_threaded_kernels()  # sessions already track in parallel: OpenCV's own pool only adds wake-ups
    limits = SessionLimits(idle_timeout_s=args.idle_timeout)
    app = create_app(StudioConfig(limits=limits, max_sessions=args.max_sessions, avatar_dir=args.avatars,
                                  workers=workers, track_threads=args.track_threads, trust_home=str(home),
                                  context=args.context, passphrase=passphrase))
    sock = listen_socket(args.host, args.port)  # connections wait in its backlog until uvicorn accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, ws_max_size=limits.max_message_bytes, ws_per_message_deflate=False,
                            log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    host = f"[{args.host}]" if ":" in args.host else args.host
    threads = args.track_threads or default_track_threads()
    mode = (f"{workers} tracker process{'es' if workers != 1 else ''}" if workers
            else f"tracking in {threads} thread{'s' if threads != 1 else ''}")
    _say(f"facewire: studio at http://{host}:{port}/ (open it in a browser; Ctrl-C stops; {mode})")
    _say(f"facewire: context {args.context or 'none (photo avatars refused)'}; audit log in {home}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
