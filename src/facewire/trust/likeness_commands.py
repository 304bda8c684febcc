"""CLI verbs of the likeness registry: ``facewire likeness register|list|match|remove``.

A thin layer over `facewire.trust.registry`; heavy imports (dlib, the models) happen inside the
command functions so that ``facewire --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["EXIT_NO_MATCH", "register"]

EXIT_NO_MATCH = 1  # `likeness match` ran and found no registered likeness (bad input exits 2)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _registry(args: argparse.Namespace, *, small_faces: bool = False):
    from .embedding import FaceEmbedder
    from .registry import DEFAULT_THRESHOLD, LikenessRegistry, default_path
    from .store import trust_home

    if args.home is not None or not getattr(args, "db", None):
        trust_home(args.home).ensure()
    path = args.db or default_path(args.home)
    threshold = getattr(args, "threshold", None)
    embedder = FaceEmbedder(small_faces=True) if small_faces else None
    return LikenessRegistry(path, embedder=embedder, threshold=DEFAULT_THRESHOLD if threshold is None else threshold)


def _likeness_json(lk) -> dict:
    return {"id": lk.id, "subject": lk.subject, "name": lk.name, "asset_sha256": lk.asset_sha256,
            "embedding_sha256": lk.embedding_sha256, "samples": len(lk.samples), "created": lk.created_iso,
            "model": lk.model}


def cmd_register(args: argparse.Namespace) -> int:
    # the fine detection pass, so that a small second face in the photo is asked about, not missed
    with _registry(args, small_faces=True) as registry:
        lk = registry.register(args.subject, args.input, name=args.name, face=args.face, max_samples=args.samples)
    if args.json:
        print(json.dumps(_likeness_json(lk)))
    else:
        print(f"registered {lk.id}  subject {lk.subject!r}" + (f"  name {lk.name!r}" if lk.name else "")
              + f"  {len(lk.samples)} sample(s)  asset sha256 {lk.asset_sha256}  embedding sha256 {lk.embedding_sha256}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        likenesses = registry.list()
    if args.json:
        print(json.dumps([_likeness_json(lk) for lk in likenesses]))
        return 0
    if not likenesses:
        _say(f"facewire: no likeness registered in {registry.path}")
        return 0
    print(f"{'ID':16s} {'SUBJECT':20s} {'NAME':20s} {'SAMPLES':>7s}  {'CREATED':20s} ASSET SHA-256")
    for lk in likenesses:
        print(f"{lk.id:16s} {lk.subject[:20]:20s} {(lk.name or '-')[:20]:20s} {len(lk.samples):7d}  "
              f"{lk.created_iso:20s} {lk.asset_sha256[:16]}…")
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    from ..errors import NoFaceError
    from .embedding import pick_face
    from .registry import read_frames

    frames = list(read_frames(args.input, max_frames=1))
    if not frames:
        raise NoFaceError(f"{args.input}: expected a photo or a video with frames, got none")
    with _registry(args, small_faces=True) as registry:  # a photo to check may be a group photo
        faces = registry.embedder.embed(frames[0][1])
        if not faces:
            raise NoFaceError(f"{args.input}: expected a face, found none")
        numbered = list(enumerate(faces, start=1))
        if args.face is not None:
            chosen = pick_face(faces, args.face, args.input)
            numbered = [(args.face, chosen)]
        rows = []
        for number, emb in numbered:
            closest = registry.closest(emb)
            hit = closest is not None and closest.distance <= registry.threshold
            rows.append((number, emb, closest, hit))
    if args.json:
        print(json.dumps([{
            "face": n, "box": [round(v, 1) for v in emb.box], "match": hit,
            "likeness_id": c.likeness_id if c else None, "subject": c.subject if c else None,
            "distance": round(c.distance, 4) if c else None, "threshold": registry.threshold,
        } for n, emb, c, hit in rows]))
    else:
        for n, emb, c, hit in rows:
            where = f"face {n} of {len(faces)} at ({emb.box[0]:.0f}, {emb.box[1]:.0f})"
            if hit:
                print(f"{where}: MATCH {c.likeness_id}  subject {c.subject!r}"
                      + (f"  name {c.name!r}" if c.name else "")
                      + f"  distance {c.distance:.3f} ≤ {registry.threshold:.3f}")
            elif c is None:
                print(f"{where}: no match (the registry is empty)")
            else:
                print(f"{where}: no match (closest {c.likeness_id} of {c.subject!r} at distance "
                      f"{c.distance:.3f} > {registry.threshold:.3f})")
    return 0 if any(hit for *_, hit in rows) else EXIT_NO_MATCH


def cmd_remove(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        gone = registry.remove(args.id)
    print(f"removed {gone.id}  subject {gone.subject!r}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", metavar="DIR", default=None,
                   help="trust home holding likeness.db (default: $FACEWIRE_HOME, else the user data folder)")
    p.add_argument("--db", metavar="FILE", default=None, help="registry file to use instead of HOME/likeness.db")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``facewire likeness`` and its verbs."""
    lk = sub.add_parser("likeness", help="the likeness registry: register faces, list them, match a photo against them")
    verbs = lk.add_subparsers(dest="likeness_verb", required=True, metavar="VERB")

    r = verbs.add_parser("register", help="register the face in a photo or video as a subject's likeness")
    r.add_argument("input", metavar="PHOTO_OR_VIDEO", help="a photo or a video showing the subject's face")
    r.add_argument("--subject", required=True, metavar="ID", help="the subject (the person) this face belongs to")
    r.add_argument("--name", metavar="NAME", default=None, help="display name")
    r.add_argument("--face", type=int, default=None, metavar="N",
                   help="which face when there are several (1 = leftmost)")
    r.add_argument("--samples", type=int, default=8, metavar="N",
                   help="for a video: faces sampled, one every 0.5 s (default 8)")
    r.add_argument("--json", action="store_true", help="print the new likeness as JSON")
    _common(r)
    r.set_defaults(func=cmd_register)

    ls = verbs.add_parser("list", help="list the registered likenesses")
    ls.add_argument("--json", action="store_true", help="print them as JSON")
    _common(ls)
    ls.set_defaults(func=cmd_list)

    m = verbs.add_parser("match", help="whether the faces in a photo are registered likenesses (exit 0: a match)")
    m.add_argument("input", metavar="PHOTO", help="a photo (or a video: its first frame)")
    m.add_argument("--face", type=int, default=None, metavar="N", help="match only face N (1 = leftmost)")
    m.add_argument("--threshold", type=float, default=None, metavar="D",
                   help="largest face distance that matches (default: the registry's threshold)")
    m.add_argument("--json", action="store_true", help="print the result as JSON")
    _common(m)
    m.set_defaults(func=cmd_match)

    rm = verbs.add_parser("remove", help="delete a registered likeness")
    rm.add_argument("id", metavar="ID", help="the likeness id (lk_…), as `facewire likeness list` shows")
    _common(rm)
    rm.set_defaults(func=cmd_remove)
