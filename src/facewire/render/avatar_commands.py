"""``facewire avatar export|inspect``: write the default avatar as ``.glb``; report what an avatar
file offers for the 52 ARKit shapes (found, built from VRM expressions, missing)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _export(args: argparse.Namespace) -> int:
    from .default_avatar import default_avatar
    from .glb import write_glb

    mesh = default_avatar()
    write_glb(mesh, args.out)
    triangles = sum(len(p.indices) for p in mesh.parts)
    _say(f"facewire: wrote {args.out}: {len(mesh.positions)} vertices, {triangles} triangles, "
         f"{len(mesh.morph_targets)} ARKit morph targets")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .glb import read_avatar

    _, report = read_avatar(args.file)
    print("\n".join(report.lines()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("avatar", help="export the default avatar (.glb) or inspect an avatar file")
    verbs = p.add_subparsers(dest="avatar_command", metavar="{export,inspect}")
    verbs.required = True
    e = verbs.add_parser("export", help="write facewire's default avatar as a .glb with the 52 ARKit morph targets")
    e.add_argument("out", help="output .glb path")
    e.set_defaults(func=_export)
    i = verbs.add_parser("inspect", help="list which ARKit shapes a .glb/.vrm has, and how missing ones fall back")
    i.add_argument("file", help="a .glb or .vrm avatar")
    i.set_defaults(func=_inspect)
