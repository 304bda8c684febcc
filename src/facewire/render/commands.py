"""``facewire render``: a take onto an avatar, as an H.264 video (with the speech muxed) or one PNG.

Every render goes through the trust session (`facewire.render.trusted`): audit records, and a
C2PA manifest plus watermark when the trust home has signing keys. A photo avatar also needs a
use context and consent (a grant for a registered likeness, an attestation otherwise) and keys.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from ..errors import InputError
from ..models import sha256_file as _sha256
from .mesh import AvatarMesh

__all__ = ["cmd_render", "is_photo", "load_avatar", "parse_size", "register"]

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MESH_SUFFIXES = (".glb", ".vrm")


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` (or ``W×H``) → (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*[x×X]\s*(\d+)\s*", text)
    if not m:
        raise InputError(f"--size: expected WIDTHxHEIGHT such as 512x512, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def load_avatar(spec: str) -> AvatarMesh:
    """``default`` (facewire's own head) or a ``.glb``/``.vrm`` file. Photos are refused here: they
    render only through `cmd_render`, which checks consent first (`facewire.render.trusted`)."""
    if spec == "default":
        from .default_avatar import default_avatar

        return default_avatar()
    suffix = Path(spec).suffix.lower()
    if suffix in PHOTO_SUFFIXES:
        raise InputError(f"--avatar {spec}: a photo avatar renders only through 'facewire render', which checks "
                         "consent first; use 'default' or a .glb/.vrm file here")
    if suffix not in MESH_SUFFIXES:
        raise InputError(f"--avatar: expected 'default' or a .glb/.vrm file, got {spec!r}")
    if not os.path.isfile(spec):
        raise InputError(f"--avatar {spec}: no such file")
    from .glb import read_avatar

    mesh, report = read_avatar(spec)
    if report.missing:  # shapes with neither a target nor a fallback simply do nothing: say so once
        print(f"facewire: note: avatar {spec} has no morph target or fallback for {len(report.missing)} of 52 "
              f"ARKit shapes ({', '.join(report.missing[:6])}{', …' if len(report.missing) > 6 else ''})",
              file=sys.stderr, flush=True)
    return mesh


def is_photo(spec: str) -> bool:
    return Path(spec).suffix.lower() in PHOTO_SUFFIXES


def cmd_render(args: argparse.Namespace) -> int:
    from ..takes import format_for, read_take
    from ..trust.keys import read_passphrase
    from .renderer import parse_background
    from .trusted import TrustedRender, read_token
    from .video import IMAGE_SUFFIXES, check_output, render_take

    size = parse_size(args.size)
    check_output(args.out, size, args.fps)
    background = parse_background(args.background)  # a bad colour fails before any work
    if args.audio is not None and Path(args.out).suffix.lower() in IMAGE_SUFFIXES:
        raise InputError("--audio: a PNG has no sound; write a video (.mp4) or drop --audio")
    if args.take != "-" and not os.path.isfile(args.take):
        raise InputError(f"take {args.take}: no such file")
    photo = is_photo(args.avatar)
    if args.face is not None and not photo:
        raise InputError(f"--face: picks a face in a photo avatar, but --avatar is {args.avatar!r}")
    grant = read_token(args.grant, "--grant") if args.grant else None
    attestation = read_token(args.attest, "--attest") if args.attest else None
    passphrase = read_passphrase(args.passphrase_env, args.passphrase_file)
    fmt = format_for(args.take, reading=True)
    frames = list(read_take(args.take, fmt, fps=args.fps))  # a bad take fails before any consent is used
    if photo:
        from .photo import PhotoAvatar

        avatar = PhotoAvatar.from_image(args.avatar, face=args.face)
    else:
        avatar = load_avatar(args.avatar)
    take_sha256 = _sha256(args.take) if args.take != "-" else None
    info = {"take": args.take, "take_sha256": take_sha256} if take_sha256 else {"take": "-"}
    if args.audio is not None:
        info["audio"] = args.audio
    with TrustedRender(avatar, home=args.home, context=args.context, grant=grant, attestation=attestation,
                       passphrase=passphrase, sign=not args.no_sign, take=args.take, take_sha256=take_sha256,
                       out=args.out, warn=None if args.no_sign else _say) as trust:
        result = render_take(frames, avatar, args.out, size=size, fps=args.fps, audio=args.audio, seal=trust.seal,
                             background=background, at_s=args.at, progress=not args.quiet, info=info)
        trust.exported(result.path, frames=result.frames, duration_s=result.duration_s)
        permit = trust.permit
    if not args.quiet:
        what = (f"{result.frames} frames at {result.fps:g} fps ({result.duration_s:.2f} s"
                f"{', with sound' if result.audio else ''})" if result.frames > 1 or result.duration_s else
                f"the frame at {args.at:g} s")
        sealed = (f"signed (C2PA + watermark), audit record {permit.audit_seq}" if permit.signed
                  else f"unsigned, audit record {permit.audit_seq}")
        _say(f"facewire: rendered {what} of {args.take} onto avatar {avatar.name!r} → {result.path} ({sealed})")
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def register(sub: argparse._SubParsersAction) -> None:
    from .renderer import DEFAULT_BACKGROUND

    r = sub.add_parser("render", help="render a take onto an avatar: an H.264 video with its sound, or one PNG")
    r.add_argument("take", help="take to render (any format convert reads; '-' = JSONL on stdin)")
    r.add_argument("--avatar", default="default", metavar="default|FILE.glb|FILE.vrm|PHOTO.jpg",
                   help="facewire's default head, a .glb/.vrm with ARKit morph targets, or a portrait photo of a "
                        "consenting person (needs --context, consent and signing keys) (default: default)")
    r.add_argument("--face", type=int, metavar="N", help="with several faces in the photo: animate face N "
                                                          "(1 = leftmost)")
    r.add_argument("--out", required=True, metavar="FILE",
                   help="clip.mp4 (.mov, .mkv) for a video, face.png for one frame (see --at)")
    r.add_argument("--audio", metavar="SOUND", help="sound to mux (wav or anything PyAV decodes); it starts with "
                                                     "the take and is padded or cut to the take's length")
    r.add_argument("--size", default="512x512", metavar="WxH", help="picture size (default 512x512)")
    r.add_argument("--fps", type=float, default=30.0, help="video frame rate (default 30)")
    r.add_argument("--background", default=DEFAULT_BACKGROUND, metavar="#RRGGBB",
                   help=f"background colour, or 'transparent' for a PNG with alpha (default {DEFAULT_BACKGROUND})")
    r.add_argument("--at", type=float, default=0.0, metavar="SECONDS",
                   help="for a PNG: the instant to render, from the take's start (default 0)")
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    from ..trust.consent import CONTEXT_NAMES

    t = r.add_argument_group("trust", "consent, audit and signing (see 'facewire consent contexts')")
    t.add_argument("--context", choices=CONTEXT_NAMES, metavar="CONTEXT",
                   help=f"the use context ({', '.join(CONTEXT_NAMES)}); required for a photo avatar")
    tokens = t.add_mutually_exclusive_group()
    tokens.add_argument("--grant", metavar="TOKEN_FILE",
                        help="the likeness owner's consent grant (a photo of a registered likeness)")
    tokens.add_argument("--attest", metavar="TOKEN_FILE",
                        help="an operator's signed attestation (a photo that is not a registered likeness)")
    t.add_argument("--home", metavar="DIR", default=None,
                   help="trust home (default: $FACEWIRE_HOME, else the user data folder)")
    pp = t.add_mutually_exclusive_group()
    pp.add_argument("--passphrase-env", metavar="VAR", help="read the keys' passphrase from environment variable VAR")
    pp.add_argument("--passphrase-file", metavar="FILE", help="read the keys' passphrase from the first line of FILE")
    t.add_argument("--no-sign", action="store_true",
                   help="do not sign the output, and no warning when unsigned (not for photo avatars)")
    r.set_defaults(func=cmd_render)
