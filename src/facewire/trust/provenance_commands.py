"""``facewire verify FILE``: validate a render's C2PA manifest and read its watermark.

Exit status: 0 when the manifest is **Trusted** (signature and hashes hold and the signer chains to
the trust anchor: ``--trust-anchor``, else the root in the trust home's ``c2pa/`` folder) and the
watermark, when one is read, points at the same audit record as the manifest; 1 otherwise —
including **Valid** (intact, but signed by a certificate nobody here trusts: anyone can make one,
so what it claims is not vouched for) unless ``--allow-untrusted`` is given, and any **Invalid**
file (changed after signing, or no manifest). 2 for bad input (an unreadable file or anchor).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["EXIT_NOT_VERIFIED", "register"]

EXIT_NOT_VERIFIED = 1
_DESCRIPTION = ("Exit status 0 when the manifest is Trusted (it validates and its signer chains to the trust "
                "anchor: --trust-anchor, else the root in the trust home's c2pa/ folder) and any watermark read "
                "points at the manifest's audit record; 1 when it is only Valid (intact, but signed by a "
                "certificate not trusted here; --allow-untrusted accepts that), Invalid (changed after signing, "
                "or no manifest) or the watermark disagrees; 2 for bad input.")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _anchor(args: argparse.Namespace) -> Path | None:
    if args.trust_anchor:
        return Path(args.trust_anchor)
    from .certs import ROOT_NAME
    from .store import trust_home

    root = trust_home(args.home).c2pa_dir / ROOT_NAME
    return root if root.is_file() else None


def _read_watermark(path: Path, mime: str):
    from .watermark import extract, extract_video

    if mime.startswith("video/"):
        return extract_video(path)
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    return extract(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def cmd_verify(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from .provenance import (
        TRAINED_ALGORITHMIC_MEDIA,
        claims_json,
        media_type,
        read_manifest,
    )

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"{path}: expected a file to verify, got {'a directory' if path.is_dir() else 'nothing'}")
    anchor = _anchor(args)
    report = read_manifest(path, anchor)
    expected = report.claims.audit.watermark_payload() if report.claims and report.claims.audit else None
    read = None if args.no_watermark else _read_watermark(path, media_type(path))
    mark = None if read is None else {"valid": read.valid, "confidence": round(read.confidence, 3),
                                      "payload": read.payload.hex() if read.payload else None,
                                      "matches_audit": (read.payload == expected) if read.valid and expected else None}
    out = print
    if args.json:
        out = _say  # the human-readable lines go to stderr, the JSON object alone to stdout
        print(claims_json(report, watermark=mark), flush=True)

    out(f"{path}: {report.status}" + ("" if report.has_manifest else " (no C2PA manifest)"))
    if anchor is None:
        out("  trust anchor: none (no --trust-anchor and no root in the trust home): at best Valid")
    else:
        out(f"  trust anchor: {anchor}")
    if report.has_manifest:
        out(f"  generator:    {report.generator or '-'}   signer: {report.signer or '-'}")
        source = report.digital_source_type or "-"
        ai = " (AI-generated: trained algorithmic media)" if source == TRAINED_ALGORITHMIC_MEDIA else ""
        out(f"  source type:  {source}{ai}")
        c = report.claims
        if c is not None:
            out(f"  take sha256:  {c.take_sha256 or '-'}")
            out(f"  consent:      grant {c.grant_id or '-'}   context {c.context or '-'}")
            out("  audit record: " + (f"seq {c.audit.seq}   hash {c.audit.hash}" if c.audit else "-"))
            out(f"  avatar:       {c.avatar or '-'}")
        else:
            out("  claims:       no facewire render assertion")
    for failure in report.failures:
        out(f"  failure:      {failure}")

    watermark_ok = True
    if read is not None and not read.valid:
        claimed = report.claims.watermark if report.claims else None
        out(f"  watermark:    none readable (confidence {read.confidence:.2f})"
            + (f"; the manifest says {claimed} was embedded (re-encoded too hard, or not this render's frames?)"
               if claimed else ""))
    elif read is not None:
        seq = int.from_bytes(read.payload[:4], "big")
        line = f"  watermark:    {read.payload.hex()} → audit seq {seq} (confidence {read.confidence:.2f})"
        if expected is None:
            out(line + "; the manifest names no audit record to compare with")
        elif expected == read.payload:
            out(line + "; matches the manifest's audit record")
        else:
            watermark_ok = False
            out(line + f"; does NOT match the manifest's audit record ({expected.hex()})")

    if report.status == "Valid" and not args.allow_untrusted:
        _say("facewire: not verified: the manifest is intact but its signer is not trusted here "
             "(pass --trust-anchor ROOT.pem, or --allow-untrusted to accept it)")
        return EXIT_NOT_VERIFIED
    if report.status == "Invalid":
        _say("facewire: not verified: " + ("no C2PA manifest" if not report.has_manifest
                                           else "the manifest does not validate (the file changed after signing?)"))
        return EXIT_NOT_VERIFIED
    if not watermark_ok:
        _say("facewire: not verified: the watermark points at a different audit record than the manifest")
        return EXIT_NOT_VERIFIED
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="validate a file's C2PA manifest (Trusted/Valid/Invalid) and read its watermark",
                       description=_DESCRIPTION)
    p.add_argument("file", metavar="FILE", help="a rendered .mp4, .png or .jpg")
    p.add_argument("--trust-anchor", metavar="PEM",
                   help="root certificate(s) to trust (default: the root in the trust home's c2pa/ folder)")
    p.add_argument("--home", metavar="DIR", default=None,
                   help="trust home (default: $FACEWIRE_HOME, else the user data folder)")
    p.add_argument("--allow-untrusted", action="store_true",
                   help="exit 0 for a Valid manifest whose signer is not trusted")
    p.add_argument("--no-watermark", action="store_true", help="do not read the watermark")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    p.set_defaults(func=cmd_verify)
