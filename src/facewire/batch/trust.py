"""Trust for batch renders, as `facewire render` does it for one: the driver opens the trust home once,
logs each render item's ``session-start`` / ``export`` / ``session-stop`` to the home's audit log, and
hands the worker a `SealSpec` from which it builds the `TrustSeal` (watermark + C2PA signature).

Only the driver writes the audit log (one writer, records in run order). The worker signs: it needs
the signing chain's files (the same paths: workers share the driver's file system, as they do for
inputs and outputs) and, for an encrypted signer key, the passphrase, which therefore travels to the
workers with each render task. Without a signing chain in the home, renders are unsigned with one
warning (``sign=False`` silences it), and still logged.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from ..errors import InputError
from ..models import sha256_file as _sha256

__all__ = ["BatchTrust", "SealSpec", "sealed_params"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SealSpec:
    """What a worker needs to seal one render item: the signing chain, the item's audit record and
    what the C2PA manifest states (avatar, take hash)."""

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
                         take_sha256=self.take_sha256, passphrase=self.passphrase)


def sealed_params(params_sha256: str, signer: str) -> str:
    """A render item's parameters hash with who seals it (``unsigned`` or the chain's SHA-256): a
    re-run after ``facewire keys init`` (or with other keys) redoes the renders."""
    return hashlib.sha256(f"{params_sha256}\0sealed-by\0{signer}".encode()).hexdigest()


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
        self._open: dict[tuple[str, str], tuple[int, SealSpec | None]] = {}  # item → (session seq, spec)
        self._avatars: dict[str, str] = {}
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
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for seq, _ in self._open.values():  # begun but never ended: the driver stopped on an error
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
        the worker's `SealSpec`, or None when renders are unsigned."""
        key = (item.kind, item.id)
        if key in self._open:
            return self._open[key][1]
        avatar = self.avatar_name(item.opts["avatar"])
        try:
            take_sha256 = _sha256(item.input)
        except OSError:  # gone since it was planned: the worker will say so, the session is still logged
            take_sha256 = None
        start = self.log.append("session-start", {
            "avatar": avatar, "kind": "mesh", "context": None, "grant": None, "likeness": None, "subject": None,
            "take": item.input, "take_sha256": take_sha256, "out": [o.path for o in item.outputs],
            "signed": self.signed, "batch_item": item.id})
        spec = SealSpec(self.chain, start.seq, start.hash, avatar, take_sha256, self.passphrase) \
            if self.chain is not None else None
        self._open[key] = (start.seq, spec)
        self.sessions += 1
        return spec

    def end(self, item: Any, ok: bool, *, outputs: Iterable[str] = (), frames: Iterable[int] = (),
            error: str | None = None) -> None:
        """Log each written output (``export``, with its SHA-256) and ``session-stop``."""
        opened = self._open.pop((item.kind, item.id), None)
        if opened is None:
            return
        seq = opened[0]
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
