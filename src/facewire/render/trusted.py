"""Trust wired into rendering: whose face is animated, whether they consented, what is logged, and the seal.

One `TrustedRender` session per render, in this order:

1. **Keys.** The trust home's identity (signs the audit log's checkpoints) and C2PA signing chain
   (``facewire keys init`` makes both). A photo avatar is rendered only signed: without keys, or
   with ``sign=False``, it is refused. A mesh avatar without keys renders unsigned, with a warning.
2. **Identity and consent** (photo avatars). The photo's face is embedded and matched against the
   likeness registry. A registered likeness needs its owner's consent grant for the use context,
   bound to the registered asset (``lik.sha256``) and subject, valid, unexpired, unrevoked; one use
   is counted. An unregistered photo needs an operator's signed attestation naming the photo file.
   Anything else is refused with one line saying what is missing, and the refusal is logged.
3. **Audit.** ``session-start`` (what is animated, in which context, under which grant), the
   ``consent-check`` the verifier writes, ``export`` (the output's path, SHA-256 and whether it
   was signed) and ``session-stop`` (frames, result), hash-chained in the home's ``audit.db``.
4. **Seal.** A `facewire.trust.seal.TrustSeal` that watermarks every frame with the session-start
   record's reference and signs the file with a C2PA manifest naming the grant and context.

Limits of this design (reviewed in issue 8), by intent rather than by accident:

* **The registry is matched by face, the attestation by file.** A registered person is found by
  the embedding of the pixels actually rendered, so a re-encoded, resized or cropped copy of a
  registered photo still needs that person's grant, and a grant (bound to the *registered* asset
  and subject) covers any photo of them. An attestation names one exact file (SHA-256 of its bytes):
  a re-encoded copy needs its own. A face that no longer matches (heavy disguise, distance above
  the registry threshold) counts as unregistered: see the registry's measured false-reject rate.
* **Every key the home trusts may sign a grant for any registered subject**, the home's own
  identity included: the registry does not record which key belongs to which subject. The operator
  who owns the trust home (its registry, keys and databases) is trusted; the checks stop careless
  use and outsiders, not that operator.
* **Consent is checked once, at session start.** A grant that expires or is revoked during a
  session does not stop it; the next session is refused. Revocations are local to this home's
  ``consent.db``: one made elsewhere must be repeated here.
* **The audience is ``facewire`` by default** for every installation, so a grant is bound to the
  keys that trust its signer, not to one operator; an owner who wants that names an audience.
* The photo is hashed and decoded by `facewire.render.photo.PhotoAvatar.from_image` in two reads
  of the file: whoever can rewrite the file between them can render other pixels under its hash.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from ..errors import InputError
from ..models import sha256_file
from ..trust.consent import CONTEXT_NAMES, ConsentError
from .mesh import AvatarMesh
from .photo import PhotoAvatar
from .seal import NoSeal, Seal

__all__ = ["KEYS_INIT", "Permit", "TrustedRender", "match_face", "read_token"]

KEYS_INIT = "facewire keys init"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Permit:
    """What the checks allowed: the seal to render through and what the manifest and log will say."""

    seal: Seal
    signed: bool
    context: str | None
    grant_id: str | None  # the grant or attestation's token id; None for a mesh avatar
    likeness: str | None  # "registered:<subject>" or "unregistered" for a photo; None for a mesh avatar
    audit_seq: int


def match_face(registry: Any, avatar: PhotoAvatar) -> tuple[bool, Any]:
    """(found, match) for the avatar's own face in the registry: ``found`` says whether the
    registry's embedder saw that face at all; ``match`` is the registered likeness it is, or None."""
    x0, y0, x1, y1 = avatar.box
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    best = None
    for embedding, match in registry.identify_all(avatar.rgb):
        bx0, by0, bx1, by1 = embedding.box
        inside = bx0 <= centre[0] <= bx1 and by0 <= centre[1] <= by1
        distance = ((bx0 + bx1) / 2 - centre[0]) ** 2 + ((by0 + by1) / 2 - centre[1]) ** 2
        if inside and (best is None or distance < best[0]):
            best = (distance, match)
    return (best is not None, best[1] if best is not None else None)


class TrustedRender:
    """The trust session around one render; use as a context manager, then `permit` and `exported`.

    ``grant``/``attestation`` are token texts (compact JWS); ``passphrase`` unlocks the home's keys.
    ``warn`` receives the one-line warning for unsigned output (default: stderr).
    """

    def __init__(self, avatar: AvatarMesh | PhotoAvatar, *, home: str | os.PathLike[str] | None = None,
                 context: str | None = None, grant: str | None = None, attestation: str | None = None,
                 passphrase: bytes | None = None, sign: bool = True, take: str | None = None,
                 take_sha256: str | None = None, out: str | os.PathLike[str] | None = None,
                 warn: Callable[[str], None] | None = _stderr) -> None:
        from ..trust.store import trust_home

        if context is not None and context not in CONTEXT_NAMES:
            raise InputError(f"--context: expected one of {', '.join(CONTEXT_NAMES)}, got {context!r}")
        self.avatar = avatar
        self.photo = isinstance(avatar, PhotoAvatar)
        self.home = trust_home(home)
        self.context = context
        self.grant = grant
        self.attestation = attestation
        self.passphrase = passphrase
        self.sign = sign
        self.take = take
        self.take_sha256 = take_sha256
        self.out = os.fspath(out) if out is not None else None
        self.warn = warn
        self.log: Any = None
        self.permit: Permit | None = None
        self._stopped = False

    # -- the session ---------------------------------------------------------------------------
    def __enter__(self) -> Self:
        from ..trust.audit import home_log

        self.home.ensure()
        identity = self._identity()
        self.log = home_log(self.home.root, identity)
        try:
            self.permit = self._check()
        except BaseException:
            self.log.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if self.permit is not None and not self._stopped:
                reason = "interrupted" if exc_type is KeyboardInterrupt else (str(exc)[:300] if exc else "")
                try:
                    self.log.append("session-stop", {"result": "failed", "error": reason})
                except InputError:  # the message quoted something secret-looking: log the stop without it
                    self.log.append("session-stop", {"result": "failed",
                                                     "error": f"{type(exc).__name__} (message withheld: it looked "
                                                              "like a secret)"})
        finally:
            self.log.close()

    @property
    def seal(self) -> Seal:
        if self.permit is None:
            raise InputError("trusted render: enter the session (with TrustedRender(...) as t) before rendering")
        return self.permit.seal

    def exported(self, path: str | os.PathLike[str], *, frames: int, duration_s: float) -> None:
        """Log the written output (``export``) and the end of the session (``session-stop``)."""
        assert self.permit is not None
        self.log.append("export", {"path": os.path.abspath(path), "sha256": sha256_file(path),
                                   "signed": self.permit.signed, "session": self.permit.audit_seq,
                                   "grant": self.permit.grant_id, "context": self.permit.context})
        self.stop(frames=frames, duration_s=round(duration_s, 3))

    def stop(self, **facts: Any) -> None:
        """Log the end of a session that succeeded (``session-stop``, with ``facts``); without it the
        session is logged as failed when the ``with`` block ends."""
        assert self.permit is not None
        self.log.append("session-stop", {"result": "ok", **facts, "session": self.permit.audit_seq})
        self._stopped = True

    # -- the checks ----------------------------------------------------------------------------
    def _identity(self) -> Any:
        from ..trust.keys import key_is_encrypted, load_identity

        if not self.home.key_file.exists():
            return None
        if self.passphrase is None and key_is_encrypted(self.home.key_file):
            raise InputError(f"the identity key in {self.home.root} is encrypted: give its passphrase with "
                             "--passphrase-env VAR (or --passphrase-file FILE)")
        return load_identity(self.home, self.passphrase)

    def _chain(self) -> Any:
        from ..trust.certs import CHAIN_NAME, KEY_NAME, ROOT_NAME, SigningChain

        c2pa = self.home.c2pa_dir
        if not ((c2pa / CHAIN_NAME).is_file() and (c2pa / KEY_NAME).is_file()):
            return None
        root = c2pa / ROOT_NAME
        return SigningChain(c2pa / CHAIN_NAME, c2pa / KEY_NAME, root if root.is_file() else None)

    def _refuse(self, message: str, **facts: Any) -> ConsentError:
        """Log a refusal that no token check logged (nothing to check, or the wrong likeness) and return it."""
        self.log.append("consent-check", {"result": "refused", "context": self.context, "reason": message,
                                          "avatar": self.avatar.name, **facts})
        return ConsentError(message)

    def _check(self) -> Permit:
        chain = self._chain() if self.sign else None
        what = f"photo {self.avatar.name!r}"
        if self.photo:
            if not self.sign:
                raise self._refuse(f"{what}: photo avatars are always signed; drop --no-sign")
            if chain is None or self.log.signer is None:
                raise self._refuse(f"{what}: photo avatars are rendered only signed, and trust home {self.home.root} "
                                   f"has no signing keys: run '{KEYS_INIT}' first")
            if self.context is None:
                raise self._refuse(f"{what}: animating a real person's photo needs a use context: "
                                   f"--context one of {', '.join(CONTEXT_NAMES)}")
            grant_id, likeness, subject = self._consent()
        else:
            grant_id, likeness, subject = None, None, None
            if chain is None and self.sign and self.warn is not None:
                self.warn(f"facewire: warning: the output is unsigned (no C2PA signing chain in {self.home.root}): "
                          f"run '{KEYS_INIT}' to sign renders (--no-sign silences this)")
        start = self.log.append("session-start", {
            "avatar": self.avatar.name, "kind": "photo" if self.photo else "mesh", "context": self.context,
            "grant": grant_id, "likeness": likeness, "subject": subject, "take": self.take,
            "take_sha256": self.take_sha256, "out": self.out, "signed": chain is not None,
            "photo_sha256": self.avatar.asset_sha256 if self.photo else None})
        seal: Seal = NoSeal()
        if chain is not None:
            from ..trust.provenance import AuditRef
            from ..trust.seal import TrustSeal

            seal = TrustSeal(chain, AuditRef(start.seq, start.hash), grant_id, self.context,
                             avatar=self.avatar.name, take_sha256=self.take_sha256, passphrase=self.passphrase)
        return Permit(seal, chain is not None, self.context, grant_id, likeness, start.seq)

    def _consent(self) -> tuple[str, str, str | None]:
        """(token id, likeness, subject) once the photo's consent checks out; else a logged refusal."""
        from ..trust.consent import (
            ATTESTATION_TYP,
            GRANT_TYP,
            decode_token,
            home_verifier,
        )
        from ..trust.registry import LikenessRegistry, default_path

        assert isinstance(self.avatar, PhotoAvatar) and self.context is not None
        what = f"photo {self.avatar.name!r}"
        match = None
        path = default_path(self.home.root)
        if path.is_file():
            with LikenessRegistry(path) as registry:
                if registry.list():
                    seen, match = match_face(registry, self.avatar)
                    if not seen:  # fail closed: an unchecked face is not an unregistered one
                        raise self._refuse(f"{what}: the likeness registry's face embedder finds no face where the "
                                           "photo's face is, so it cannot be checked; use a clearer, frontal photo")
        verifier = home_verifier(self.home.root, audit=self.log)
        try:
            if match is not None:
                who = match.name or match.subject
                label = f"{what} matches registered likeness {who!r} (distance {match.distance:.2f})"
                facts = {"likeness_id": match.likeness_id, "subject": match.subject}
                if not self.grant:
                    hint = " (an attestation is not enough for a registered likeness)" if self.attestation else ""
                    raise self._refuse(f"{label}: a consent grant for context {self.context!r} is required "
                                       f"(--grant FILE){hint}", **facts)
                try:  # the signature first, so the subject and embedding below are the signer's word
                    token = decode_token(self.grant, verifier.trusted_keys)
                except ConsentError as exc:
                    raise self._refuse(f"{label}: {exc}", **facts) from None
                if token.typ != GRANT_TYP:
                    raise self._refuse(f"{label}: --grant holds an attestation, but a registered likeness needs its "
                                       "owner's consent grant", jti=token.jti, **facts)
                if token.subject != match.subject:
                    raise self._refuse(f"{label}: the grant is for subject {token.subject!r}, not {match.subject!r}",
                                       jti=token.jti, **facts)
                emb = token.likeness.embedding_sha256 if token.likeness else None
                if emb is not None and emb != match.embedding_sha256:
                    raise self._refuse(f"{label}: the grant names a different face embedding than the registered "
                                       "likeness", jti=token.jti, **facts)
                try:
                    grant = verifier.use(self.grant, context=self.context, likeness_sha256=match.asset_sha256,
                                         typ=GRANT_TYP)
                except ConsentError as exc:
                    raise ConsentError(f"{label}: {exc}") from None
                return grant.jti, f"registered:{match.subject}", match.subject
            if not self.attestation:
                extra = " (a grant is for a registered likeness; this photo matches none)" if self.grant else ""
                raise self._refuse(f"{what} is not a registered likeness: an operator's signed attestation for "
                                   f"context {self.context!r} is required (--attest FILE, made with 'facewire consent "
                                   f"attest --likeness PHOTO --context {self.context}'){extra}")
            if self.avatar.asset_sha256 is None:
                raise self._refuse(f"{what}: an attestation names a photo file, and this photo came as pixels")
            try:
                attestation = verifier.use(self.attestation, context=self.context,
                                           likeness_sha256=self.avatar.asset_sha256, typ=ATTESTATION_TYP)
            except ConsentError as exc:
                raise ConsentError(f"{what} (unregistered): {exc}") from None
            return attestation.jti, "unregistered", None
        finally:
            if verifier.store is not None:
                verifier.store.close()


def read_token(path: str | os.PathLike[str], flag: str) -> str:
    """A token file's text (``flag`` names the option in errors)."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot read it ({exc.strerror or exc})") from exc
    if not text:
        raise InputError(f"{flag} {path}: expected a token, got an empty file")
    return text
