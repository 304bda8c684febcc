"""Trust for batch renders, as `facewire render` does it for one: the driver opens the trust home once,
logs each render item's ``session-start`` / ``export`` / ``session-stop`` to the home's audit log, and
hands the worker a `SealSpec` from which it builds the `TrustSeal` (watermark + C2PA signature).

Only the driver writes the audit log (one writer, records in run order). The worker signs: it needs
the signing chain's files (the same paths: workers share the driver's file system, as they do for
inputs and outputs) and, for an encrypted signer key, the passphrase, which therefore travels to the
workers with each render task. Without a signing chain in the home, renders are unsigned with one
warning (``sign=False`` silences it), and still logged.

Signed renders are reproducible: an item rendered again with the same take, parameters, output
names and signer (a re-run with ``--force``, another output folder, serial or on any number of Ray
workers) is logged as a new session, but sealed as the first session that rendered it successfully
(its ``session-start`` says ``sealed_as``): the same watermark, the same manifest claims, and
manifest ids named by the content (`facewire.trust.provenance.stable_ids`). So the pixels and every
byte outside the C2PA manifest store are identical; inside it, c2pa-rs's random per-assertion salts
and the ECDSA signature differ from run to run (see `c2pa_span`), and the manifest still validates.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from ..errors import InputError
from ..models import sha256_file as _sha256

__all__ = ["BatchTrust", "SealSpec", "c2pa_span", "render_key", "sealed_params"]

_C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")  # the BMFF ``uuid`` box of a C2PA manifest store


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SealSpec:
    """What a worker needs to seal one render item: the signing chain, the audit record the item is
    sealed as (its first successful session) and what the C2PA manifest states (avatar, take hash)."""

    chain: Any  # facewire.trust.certs.SigningChain (paths only)
    audit_seq: int
    audit_hash: str
    avatar: str
    take_sha256: str | None
    passphrase: bytes | None = field(default=None, repr=False)

    def seal(self) -> Any:
        """A fresh `facewire.trust.seal.TrustSeal` (one per output file)."""
        from ..trust.provenance import AuditRef
        from ..trust.seal import TrustSeal

        return TrustSeal(self.chain, AuditRef(self.audit_seq, self.audit_hash), None, None, avatar=self.avatar,
                         take_sha256=self.take_sha256, passphrase=self.passphrase, stable=True)


def sealed_params(params_sha256: str, signer: str) -> str:
    """A render item's parameters hash with who seals it (``unsigned`` or the chain's SHA-256): a
    re-run after ``facewire keys init`` (or with other keys) redoes the renders."""
    return hashlib.sha256(f"{params_sha256}\0sealed-by\0{signer}".encode()).hexdigest()


def render_key(item: Any, take_sha256: str | None) -> str | None:
    """What makes a render item's sealed output: take bytes, parameters (with the signer, see
    `sealed_params`), avatar spec and output names. None when the take could not be read."""
    if take_sha256 is None:
        return None
    doc = {"take_sha256": take_sha256, "params_sha256": item.params_sha256, "avatar": item.opts.get("avatar"),
           "outputs": [os.path.basename(o.path) for o in item.outputs]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def c2pa_span(data: bytes) -> tuple[int, int] | None:
    """(start, end) of the C2PA manifest store in a PNG (its ``caBX`` chunk), MP4/MOV (its top-level
    C2PA ``uuid`` box) or JPEG (its APP11 segments, first to last), else None. What lies outside it
    is the file's essence, the part two signings of one render share byte for byte."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        at = 8
        while at + 8 <= len(data):
            size = int.from_bytes(data[at:at + 4], "big")
            if data[at + 4:at + 8] == b"caBX":
                return at, at + 12 + size
            at += 12 + size
        return None
    if data[4:8] == b"ftyp":
        at = 0
        while at + 8 <= len(data):
            size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
            header = 8
            if size == 1:
                size, header = int.from_bytes(data[at + 8:at + 16], "big"), 16
            elif size == 0:
                size = len(data) - at
            if kind == b"uuid" and data[at + header:at + header + 16] == _C2PA_UUID:
                return at, at + size
            if size < header:
                return None
            at += size
        return None
    if data.startswith(b"\xff\xd8"):
        at, first, last = 2, None, None
        while at + 4 <= len(data) and data[at] == 0xFF and data[at + 1] not in (0xD9, 0xDA):
            size = int.from_bytes(data[at + 2:at + 4], "big")
            if data[at + 1] == 0xEB:  # APP11: JUMBF
                first = at if first is None else first
                last = at + 2 + size
            at += 2 + size
        return (first, last) if first is not None else None
    return None


class BatchTrust:
    """The trust session of one batch run's renders; use as a context manager, then `begin` each
    render item before it runs and `end` it once it is done, failed or abandoned."""

    def __init__(self, home: str | os.PathLike[str] | None = None, *, passphrase: bytes | None = None,
                 sign: bool = True, warn: Callable[[str], None] | None = _stderr) -> None:
        from ..trust.store import trust_home

        self.home = trust_home(home)
        self.passphrase = passphrase
        self.sign = sign
        self.warn = warn
        self.chain: Any = None
        self.log: Any = None
        self._open: dict[tuple[str, str], tuple[int, SealSpec | None, str | None]] = {}  # item → (seq, spec, key)
        self._avatars: dict[str, str] = {}
        self._origins: dict[str, tuple[int, str]] = {}  # render key → (seq, hash) of its first good session
        self.sessions = 0

    def __enter__(self) -> Self:
        from ..trust.audit import home_log
        from ..trust.certs import CHAIN_NAME, KEY_NAME, ROOT_NAME, SigningChain
        from ..trust.keys import key_is_encrypted, load_identity

        self.home.ensure()
        identity = None
        if self.home.key_file.exists():
            if self.passphrase is None and key_is_encrypted(self.home.key_file):
                raise InputError(f"the identity key in {self.home.root} is encrypted: give its passphrase with "
                                 "--passphrase-env VAR (or --passphrase-file FILE)")
            identity = load_identity(self.home, self.passphrase)
        c2pa = self.home.c2pa_dir
        if self.sign and (c2pa / CHAIN_NAME).is_file() and (c2pa / KEY_NAME).is_file():
            root = c2pa / ROOT_NAME
            self.chain = SigningChain(c2pa / CHAIN_NAME, c2pa / KEY_NAME, root if root.is_file() else None)
            self.chain.validate(self.passphrase)  # a wrong passphrase fails the run, not every item
        elif self.sign and self.warn is not None:
            from ..render.trusted import KEYS_INIT

            self.warn(f"facewire: warning: the rendered outputs are unsigned (no C2PA signing chain in "
                      f"{self.home.root}): run '{KEYS_INIT}' to sign renders (--no-sign silences this)")
        self.log = home_log(self.home.root, identity)
        if self.chain is not None:
            self._origins = self._find_origins()
        return self

    def _find_origins(self) -> dict[str, tuple[int, str]]:
        """Each render key's first signed batch session that ended well, from the audit log."""
        good = {r.payload.get("session") for r in self.log.records("session-stop") if r.payload.get("result") == "ok"}
        origins: dict[str, tuple[int, str]] = {}
        for record in self.log.records("session-start"):
            key = record.payload.get("render_key")
            if key and record.payload.get("signed") and record.seq in good and key not in origins:
                origins[key] = (record.seq, record.hash)
        return origins

    def __exit__(self, *exc: object) -> None:
        try:
            for seq, _, _ in self._open.values():  # begun but never ended: the driver stopped on an error
                self.log.append("session-stop", {"result": "failed", "error": "the batch stopped", "session": seq})
        finally:
            self._open.clear()
            self.log.close()

    @property
    def signed(self) -> bool:
        return self.chain is not None

    @property
    def signer(self) -> str:
        """``unsigned``, or the SHA-256 of the signing chain (see `sealed_params`)."""
        return hashlib.sha256(self.chain.chain_pem()).hexdigest() if self.chain is not None else "unsigned"

    def avatar_name(self, spec: str) -> str:
        """The name an avatar spec loads as (loaded once per spec: a bad avatar fails the run early)."""
        if spec not in self._avatars:
            from ..render.commands import load_avatar

            self._avatars[spec] = load_avatar(spec).name
        return self._avatars[spec]

    def begin(self, item: Any) -> SealSpec | None:
        """Log the item's ``session-start`` (once per run, however often it is tried) and return
        the worker's `SealSpec`, or None when renders are unsigned. An item rendered and signed
        before, identically (`render_key`), is sealed as that first session (``sealed_as``)."""
        key = (item.kind, item.id)
        if key in self._open:
            return self._open[key][1]
        avatar = self.avatar_name(item.opts["avatar"])
        try:
            take_sha256 = _sha256(item.input)
        except OSError:  # gone since it was planned: the worker will say so, the session is still logged
            take_sha256 = None
        rkey = render_key(item, take_sha256) if self.chain is not None else None
        origin = self._origins.get(rkey) if rkey is not None else None
        start = self.log.append("session-start", {
            "avatar": avatar, "kind": "mesh", "context": None, "grant": None, "likeness": None, "subject": None,
            "take": item.input, "take_sha256": take_sha256, "out": [o.path for o in item.outputs],
            "signed": self.signed, "batch_item": item.id, "render_key": rkey,
            "sealed_as": {"seq": origin[0], "hash": origin[1]} if origin else None})
        seq, digest = origin or (start.seq, start.hash)
        spec = SealSpec(self.chain, seq, digest, avatar, take_sha256, self.passphrase) \
            if self.chain is not None else None
        self._open[key] = (start.seq, spec, rkey)
        self.sessions += 1
        return spec

    def end(self, item: Any, ok: bool, *, outputs: Iterable[str] = (), frames: Iterable[int] = (),
            error: str | None = None) -> None:
        """Log each written output (``export``, with its SHA-256) and ``session-stop``."""
        opened = self._open.pop((item.kind, item.id), None)
        if opened is None:
            return
        seq, spec, rkey = opened
        if not ok:
            self.log.append("session-stop", {"result": "failed", "error": (error or "failed")[:300], "session": seq})
            return
        counts = list(frames)
        for path in outputs:
            self.log.append("export", {"path": os.path.abspath(path), "sha256": _sha256(path), "signed": self.signed,
                                       "session": seq, "grant": None, "context": None})
        fps = float(item.opts.get("fps") or 30.0)
        self.log.append("session-stop", {"result": "ok", "frames": max(counts, default=0),
                                         "duration_s": round(max(counts, default=0) / fps, 3), "session": seq})
        if rkey is not None and spec is not None:
            self._origins.setdefault(rkey, (spec.audit_seq, spec.audit_hash))
