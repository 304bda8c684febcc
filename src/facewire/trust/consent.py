"""Consent grants and operator attestations: signed tokens that say who may animate a likeness, and for what.

A **grant** is signed by a likeness owner; an **attestation** is an operator's signed statement
"I have the right to animate this likeness for context X", used for a photo that is not in the
likeness registry. Both are compact JWS (RFC 7515) tokens signed with Ed25519 (``alg: EdDSA``)
through PyJWT — no cryptography of our own. Header: ``alg``, ``typ`` (`GRANT_TYP` or
`ATTESTATION_TYP`) and ``kid`` (the signer's RFC 7638 key thumbprint); nothing else is accepted.
Claims:

==========  ======================================================================================
``iss``     the issuer's name (the likeness owner, or the operator for an attestation)
``sub``     the subject id: whose likeness this is
``aud``     audience (string or list); a verifier accepts only tokens for its own (default facewire)
``iat``     issued at, ``nbf`` not before, ``exp`` expires: Unix seconds, checked with a leeway of
            `CLOCK_LEEWAY_S` seconds either way for clocks that disagree a little
``jti``     the token id (``g-…`` grants, ``a-…`` attestations), the key of revocation and use counts
``ctx``     the allowed use contexts, each from `USE_CONTEXTS`
``lik``     the likeness: ``{"sha256": asset digest, "emb_sha256": embedding digest, "emb": [...]}``
            (the embedding's digest is SHA-256 over its float32 little-endian bytes; the vector
            itself only when asked for)
``max_uses`` optional: how many times `ConsentVerifier.use` may accept it, counted in SQLite
``stmt``    attestations only: the statement the operator signed
==========  ======================================================================================

Verification (`ConsentVerifier`) checks, in order: the token's shape (three canonical base64url
parts), ``alg`` (only EdDSA: ``none``, HS256 keyed with the public key and every other algorithm
are refused before any key is used), ``typ``, that ``kid`` names a trusted key, the signature,
the claims, time, audience, issuer, context, likeness, revocation and (for `ConsentVerifier.use`)
the number of uses, which is incremented in one ``BEGIN IMMEDIATE`` transaction so that a replay
beyond ``max_uses`` is refused across processes. Every failure is a `ConsentError` saying exactly
what is wrong. The revocation list and use counts live in the trust home's ``consent.db``: they
protect against replay by others, not against someone who can write that file. That file also keeps
the tokens it has seen (for ``consent list``), and a token is a bearer credential, so it is created
0600 whatever the folder's mode (`facewire.trust.store.private_db`).

Limits a caller must know: `ConsentVerifier.verify` and `ConsentVerifier.use` bind a token to a
likeness only when given ``likeness_sha256`` (without it any likeness passes: a caller animating a
face must pass it, as `facewire.render.trusted` does); without a ``store`` nothing is revoked or
counted; the default audience (`DEFAULT_AUDIENCE`) is the same for every installation, so what
binds a grant to a verifier is that verifier trusting the signer's key; revocations are local to
one ``consent.db``; and a ``jti`` names a token across all trusted signers, so one trusted signer
can reuse another's ``jti``, which can only make that token refused sooner (a shared revocation and
use count), never accept anything. A time beyond the calendar is refused, shown in Unix seconds.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from ..errors import FacewireError, InputError, OutputError

if TYPE_CHECKING:  # only for hints: `facewire --help` lists contexts without loading cryptography
    from .keys import Identity, PublicKey

__all__ = [
    "ATTESTATION_TYP",
    "CLOCK_LEEWAY_S",
    "CONTEXT_NAMES",
    "DEFAULT_AUDIENCE",
    "DEFAULT_LIFETIME_S",
    "GRANT_TYP",
    "USE_CONTEXTS",
    "ConsentError",
    "ConsentStore",
    "ConsentVerifier",
    "Grant",
    "LikenessRef",
    "StoredGrant",
    "decode_token",
    "embedding_sha256",
    "home_verifier",
    "issue_attestation",
    "issue_grant",
    "likeness_reference",
    "parse_duration_s",
    "parse_time_s",
    "token_id",
]

USE_CONTEXTS: tuple[tuple[str, str], ...] = (
    ("telepresence", "a person's own avatar in live calls and meetings, driven by that person"),
    ("training-simulation", "role-play scenarios for training staff (sales, negotiation, de-escalation)"),
    ("customer-service", "a virtual agent speaking with customers on an organisation's behalf"),
    ("entertainment", "films, games, streams, music videos and other creative or commercial media"),
    ("healthcare-training", "simulated patients or clinicians for medical and care education"),
    ("legal-simulation", "mock witnesses, depositions or courtroom practice for legal education"),
)
"""The use-context vocabulary: ``(name, meaning)``. A grant lists which of these it allows."""

CONTEXT_NAMES: tuple[str, ...] = tuple(name for name, _ in USE_CONTEXTS)
GRANT_TYP = "facewire-grant+jwt"
ATTESTATION_TYP = "facewire-attestation+jwt"
DEFAULT_AUDIENCE = "facewire"
CLOCK_LEEWAY_S = 60
DEFAULT_LIFETIME_S = 30 * 86400
MAX_TOKEN_CHARS = 65536  # a 512-float embedding is ~12 kB; anything far larger is not ours

_ALG = "EdDSA"
_HEADER_KEYS = frozenset({"alg", "typ", "kid"})
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_JTI = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_JWS: Any = None  # one PyJWS, made on first use


class ConsentError(FacewireError, PermissionError):
    """A grant or attestation does not allow what was asked: the message says what is missing or wrong."""


# -- values -------------------------------------------------------------------------------------
def embedding_sha256(vector: Sequence[float] | np.ndarray) -> str:
    """SHA-256 (hex) of a face embedding as float32 little-endian bytes."""
    array = np.asarray(vector, dtype="<f4").ravel()
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise InputError(f"face embedding: expected a non-empty vector of finite numbers, got {array.size} values")
    return hashlib.sha256(array.tobytes()).hexdigest()


@dataclass(frozen=True)
class LikenessRef:
    """Which likeness a token is about: the asset's SHA-256 and optionally its face embedding."""

    asset_sha256: str
    embedding_sha256: str | None = None
    embedding: tuple[float, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("asset_sha256", "embedding_sha256"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and _HEX64.match(value)):
                raise InputError(f"likeness {name}: expected 64 lower-case hex digits, got {value!r}")

    def claim(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sha256": self.asset_sha256}
        if self.embedding_sha256:
            out["emb_sha256"] = self.embedding_sha256
        if self.embedding is not None:
            out["emb"] = [float(x) for x in self.embedding]
        return out

    @classmethod
    def from_claim(cls, claim: Any, label: str) -> LikenessRef:
        if not isinstance(claim, Mapping) or not isinstance(claim.get("sha256"), str):
            raise ConsentError(f"{label}: claim 'lik' must be an object with the likeness 'sha256'")
        emb = claim.get("emb")
        try:
            ref = cls(claim["sha256"], claim.get("emb_sha256"),
                      tuple(float(x) for x in emb) if isinstance(emb, list) else None)
        except (InputError, TypeError, ValueError) as exc:
            raise ConsentError(f"{label}: claim 'lik' is malformed ({exc})") from None
        if ref.embedding is not None and ref.embedding_sha256 and embedding_sha256(ref.embedding) != ref.embedding_sha256:
            raise ConsentError(f"{label}: the embedding vector does not match its 'emb_sha256'")
        return ref


def likeness_reference(asset: str | os.PathLike[str] | bytes, embedding: Sequence[float] | np.ndarray | None = None,
                       *, include_vector: bool = False) -> LikenessRef:
    """The `LikenessRef` of an asset (a file path, or its bytes) and optionally its face embedding."""
    if isinstance(asset, bytes):
        digest = hashlib.sha256(asset).hexdigest()
    else:
        h = hashlib.sha256()
        try:
            with open(asset, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError as exc:
            raise InputError(f"likeness {asset}: cannot read it ({exc.strerror or exc})") from exc
        digest = h.hexdigest()
    if embedding is None:
        return LikenessRef(digest)
    vector = np.asarray(embedding, dtype="<f4").ravel()
    return LikenessRef(digest, embedding_sha256(vector),
                       tuple(float(x) for x in vector) if include_vector else None)


@dataclass(frozen=True)
class Grant:
    """A verified grant or attestation (``typ`` says which)."""

    typ: str
    jti: str
    issuer: str
    subject: str
    audience: tuple[str, ...]
    contexts: tuple[str, ...]
    issued_at: int
    not_before: int
    expires: int
    key_id: str
    likeness: LikenessRef | None = None
    max_uses: int | None = None
    statement: str | None = None
    token: str = field(default="", repr=False)

    @property
    def is_attestation(self) -> bool:
        return self.typ == ATTESTATION_TYP

    @property
    def label(self) -> str:
        return f"{'attestation' if self.is_attestation else 'grant'} {self.jti}"


def _when(seconds: int) -> str:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):  # a signed time no calendar shows: still a clear refusal
        return f"{seconds} (Unix seconds)"


# -- time arguments -------------------------------------------------------------------------------
_DURATION = re.compile(r"^\+?(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration_s(text: str) -> int:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"`` → seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise InputError(f"duration: expected a number and a unit (s, m, h, d, w) such as 30d, got {text!r}")
    return int(float(match.group(1)) * _UNIT_S[match.group(2)])


def parse_time_s(text: str, now_s: float | None = None) -> int:
    """A moment as Unix seconds: a duration from now (``30d``, ``+1h``) or an ISO 8601 date/time
    (a time without a zone is UTC)."""
    now_s = time.time() if now_s is None else now_s
    if _DURATION.match(text.strip().lower()):
        return int(now_s) + parse_duration_s(text)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"time: expected a duration such as 30d or an ISO 8601 time such as "
                         f"2026-01-31T12:00Z, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


# -- issuing ------------------------------------------------------------------------------------
def _check_contexts(contexts: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(contexts))
    if not out:
        raise InputError(f"use contexts: expected at least one of {', '.join(CONTEXT_NAMES)}, got none")
    for context in out:
        _check_context(context)
    return out


def _check_context(context: str) -> None:
    if context not in CONTEXT_NAMES:
        raise InputError(f"use context: expected one of {', '.join(CONTEXT_NAMES)}, got {context!r}")


def _sign(identity: Identity, typ: str, claims: dict[str, Any]) -> str:
    import jwt  # PyJWT: imported here so `facewire --help` stays fast

    return jwt.encode(claims, identity.private_key, algorithm=_ALG, headers={"typ": typ, "kid": identity.key_id})


def _times(now_s: float | None, not_before_s: int | None, expires_s: int | None,
           lifetime_s: int | None) -> tuple[int, int, int]:
    now = int(time.time() if now_s is None else now_s)
    nbf = now if not_before_s is None else int(not_before_s)
    exp = int(expires_s) if expires_s is not None else nbf + int(lifetime_s or DEFAULT_LIFETIME_S)
    if exp <= nbf:
        raise InputError(f"expiry: expected a time after not-before ({_when(nbf)}), got {_when(exp)}")
    return now, nbf, exp


def issue_grant(identity: Identity, *, subject: str, likeness: LikenessRef, contexts: Iterable[str],
                expires_s: int | None = None, lifetime_s: int | None = None, not_before_s: int | None = None,
                max_uses: int | None = None, audience: str | Sequence[str] = DEFAULT_AUDIENCE,
                issuer: str | None = None, jti: str | None = None, now_s: float | None = None) -> str:
    """A consent grant signed by ``identity`` (the likeness owner), as a compact JWS.

    Valid from ``not_before_s`` (default now) until ``expires_s`` (Unix seconds), or for
    ``lifetime_s`` (default `DEFAULT_LIFETIME_S`) after it."""
    if not subject or not subject.strip():
        raise InputError("grant subject: expected a subject id, got an empty one")
    if max_uses is not None and (not isinstance(max_uses, int) or max_uses < 1):
        raise InputError(f"grant max uses: expected a whole number ≥ 1, got {max_uses!r}")
    now, nbf, exp = _times(now_s, not_before_s, expires_s, lifetime_s)
    claims: dict[str, Any] = {
        "iss": issuer or identity.name, "sub": subject.strip(), "aud": _audience_claim(audience),
        "iat": now, "nbf": nbf, "exp": exp, "jti": jti or f"g-{secrets.token_hex(8)}",
        "ctx": list(_check_contexts(contexts)), "lik": likeness.claim(),
    }
    if max_uses is not None:
        claims["max_uses"] = max_uses
    return _sign(identity, GRANT_TYP, claims)


def issue_attestation(identity: Identity, *, likeness: LikenessRef, contexts: Iterable[str],
                      operator: str | None = None, subject: str | None = None, expires_s: int | None = None,
                      lifetime_s: int | None = None, not_before_s: int | None = None,
                      audience: str | Sequence[str] = DEFAULT_AUDIENCE, jti: str | None = None,
                      now_s: float | None = None) -> str:
    """An operator's signed self-attestation that they may animate an unregistered likeness."""
    contexts = _check_contexts(contexts)
    operator = operator or identity.name
    now, nbf, exp = _times(now_s, not_before_s, expires_s, lifetime_s)
    statement = (f"I, {operator}, have the right to animate the likeness with SHA-256 {likeness.asset_sha256} "
                 f"for: {', '.join(contexts)}")
    claims = {
        "iss": operator, "sub": subject or f"sha256:{likeness.asset_sha256}", "aud": _audience_claim(audience),
        "iat": now, "nbf": nbf, "exp": exp, "jti": jti or f"a-{secrets.token_hex(8)}",
        "ctx": list(contexts), "lik": likeness.claim(), "stmt": statement,
    }
    return _sign(identity, ATTESTATION_TYP, claims)


def _audience_claim(audience: str | Sequence[str]) -> str | list[str]:
    if isinstance(audience, str):
        if not audience:
            raise InputError("audience: expected a name, got an empty one")
        return audience
    values = [a for a in audience if a]
    if not values:
        raise InputError("audience: expected at least one name, got none")
    return values[0] if len(values) == 1 else values


# -- parsing --------------------------------------------------------------------------------------
def _b64decode(part: str, what: str) -> bytes:
    """Strict base64url: only the alphabet, no padding, and re-encoding gives the same text, so that
    no two spellings of one token exist (flipping an unused low bit is refused, not ignored)."""
    if not _B64URL.match(part) or len(part) % 4 == 1:
        raise ConsentError(f"token {what}: not base64url")
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise ConsentError(f"token {what}: not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != part:
        raise ConsentError(f"token {what}: not canonical base64url (altered?)")
    return raw


def _split(token: str | bytes) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The token text, its header and its (unverified) claims."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise ConsentError("token: expected ASCII text, got other bytes") from None
    if not isinstance(token, str):
        raise ConsentError(f"token: expected text, got {type(token).__name__}")
    token = token.strip()
    if not token.isascii():
        raise ConsentError("token: expected ASCII text, got other characters")
    if len(token) > MAX_TOKEN_CHARS:
        raise ConsentError(f"token: expected at most {MAX_TOKEN_CHARS} characters, got {len(token)}")
    parts = token.split(".")
    if len(parts) != 3:
        raise ConsentError(f"token: expected a compact JWS (3 dot-separated parts), got {len(parts)} part(s)")
    objects = []
    for part, what in zip(parts[:2], ("header", "claims")):
        try:
            value = json.loads(_b64decode(part, what))
        except (ValueError, UnicodeDecodeError):
            raise ConsentError(f"token {what}: not JSON") from None
        if not isinstance(value, dict):
            raise ConsentError(f"token {what}: expected a JSON object")
        objects.append(value)
    _b64decode(parts[2], "signature")
    return token, objects[0], objects[1]


def token_id(token: str | bytes) -> str:
    """The ``jti`` of a token, read without verifying it (for revoking one you hold)."""
    _, _, claims = _split(token)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not _JTI.match(jti):
        raise ConsentError("token: it has no usable 'jti' claim")
    return jti


def _int_claim(claims: Mapping[str, Any], name: str, label: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConsentError(f"{label}: claim '{name}' must be a whole number of Unix seconds, got {value!r}")
    return value


def _str_claim(claims: Mapping[str, Any], name: str, label: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise ConsentError(f"{label}: claim '{name}' is missing or not text")
    return value


def _to_grant(token: str, header: Mapping[str, Any], claims: Mapping[str, Any]) -> Grant:
    jti = claims.get("jti")
    if not isinstance(jti, str) or not _JTI.match(jti):
        raise ConsentError("token: claim 'jti' is missing or malformed")
    typ = header["typ"]
    label = f"{'attestation' if typ == ATTESTATION_TYP else 'grant'} {jti}"
    aud = claims.get("aud")
    audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else None
    if not audience or not all(isinstance(a, str) for a in audience):
        raise ConsentError(f"{label}: claim 'aud' is missing or not text")
    ctx = claims.get("ctx")
    if not isinstance(ctx, list) or not ctx or not all(isinstance(c, str) for c in ctx):
        raise ConsentError(f"{label}: claim 'ctx' must be a non-empty list of use contexts")
    max_uses = claims.get("max_uses")
    if max_uses is not None and (isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1):
        raise ConsentError(f"{label}: claim 'max_uses' must be a whole number ≥ 1, got {max_uses!r}")
    statement = claims.get("stmt")
    if typ == ATTESTATION_TYP and not isinstance(statement, str):
        raise ConsentError(f"{label}: an attestation must carry its statement ('stmt')")
    return Grant(
        typ=typ, jti=jti, issuer=_str_claim(claims, "iss", label), subject=_str_claim(claims, "sub", label),
        audience=audience, contexts=tuple(ctx), issued_at=_int_claim(claims, "iat", label),
        not_before=_int_claim(claims, "nbf", label), expires=_int_claim(claims, "exp", label),
        key_id=str(header["kid"]), likeness=LikenessRef.from_claim(claims.get("lik"), label),
        max_uses=max_uses, statement=statement if isinstance(statement, str) else None, token=token,
    )


def decode_token(token: str | bytes, trusted_keys: Mapping[str, PublicKey], *, typ: str | None = None) -> Grant:
    """The token's grant once its shape, algorithm, type, key and signature check out; its time,
    audience, context and revocation are *not* checked here (`ConsentVerifier` does that)."""
    import jwt  # PyJWT: imported here so `facewire --help` stays fast

    global _JWS
    if _JWS is None:  # building one sets up every algorithm PyJWT knows: do it once
        _JWS = jwt.PyJWS(algorithms=[_ALG])
    text, header, claims = _split(token)
    alg = header.get("alg")
    if alg != _ALG:
        raise ConsentError(f"token: algorithm {alg!r} is not accepted (only {_ALG})")
    extra = sorted(set(header) - _HEADER_KEYS)
    if extra:
        raise ConsentError(f"token: unexpected header field(s) {', '.join(map(repr, extra))}")
    kind = header.get("typ")
    if kind not in (GRANT_TYP, ATTESTATION_TYP):
        raise ConsentError(f"token: type {kind!r} is not a facewire grant or attestation")
    if typ is not None and kind != typ:
        raise ConsentError(f"token: expected a {typ}, got a {kind}")
    kid = header.get("kid")
    key = trusted_keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise ConsentError(f"token: signed by key {kid!r}, which is not trusted here "
                           f"(trust it with 'facewire keys trust PUBKEY')")
    try:
        _JWS.decode_complete(text, key=key.key, algorithms=[_ALG])
    except jwt.exceptions.PyJWTError:
        raise ConsentError(f"token: its signature does not verify against key {kid} ({key.name}) "
                           f"(forged or altered)") from None
    return _to_grant(text, header, claims)


# -- the store: revocations and use counts ----------------------------------------------------
@dataclass(frozen=True)
class StoredGrant:
    """A token this trust home has issued or verified, with its revocation and use count."""

    jti: str
    typ: str
    issuer: str
    subject: str
    contexts: tuple[str, ...]
    expires: int
    max_uses: int | None
    uses: int
    revoked_ns: int | None
    token: str = field(default="", repr=False)

    def status(self, now_s: float | None = None) -> str:
        now = time.time() if now_s is None else now_s
        if self.revoked_ns is not None:
            return "revoked"
        if now > self.expires:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used up"
        return "active"


_STORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (
    jti TEXT PRIMARY KEY, typ TEXT NOT NULL, issuer TEXT NOT NULL, subject TEXT NOT NULL,
    contexts TEXT NOT NULL, expires INTEGER NOT NULL, max_uses INTEGER, key_id TEXT NOT NULL,
    token TEXT NOT NULL, recorded_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS revoked (jti TEXT PRIMARY KEY, revoked_ns INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uses (jti TEXT PRIMARY KEY, count INTEGER NOT NULL, last_ns INTEGER NOT NULL);
"""


class ConsentStore:
    """The trust home's ``consent.db``: known tokens, the revocation list and use counts (SQLite,
    WAL, ``synchronous=FULL``; shared safely by several processes)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        from .store import private_db

        private_db(self.path)  # 0600 before SQLite makes it (and its -wal): it holds usable grant tokens
        try:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript("BEGIN IMMEDIATE;" + _STORE_SCHEMA + "COMMIT;")
        except sqlite3.DatabaseError as exc:
            raise InputError(f"consent store {self.path}: not a facewire consent database ({exc})") from exc
        except OSError as exc:
            raise OutputError(f"cannot create {self.path}: {exc.strerror or exc}") from exc

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise InputError(f"consent store {self.path} is closed")
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, grant: Grant) -> None:
        """Remember a token (issued or verified here) so that `grants` lists it."""
        with self._lock:
            self._db().execute(
                "INSERT OR IGNORE INTO grants(jti, typ, issuer, subject, contexts, expires, max_uses, key_id, token,"
                " recorded_ns) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (grant.jti, grant.typ, grant.issuer, grant.subject, json.dumps(list(grant.contexts)), grant.expires,
                 grant.max_uses, grant.key_id, grant.token, time.time_ns()))

    def revoke(self, jti: str, reason: str = "") -> bool:
        """Add ``jti`` to the revocation list; False when it was already there."""
        if not _JTI.match(jti):
            raise InputError(f"token id: expected letters, digits and . _ : - (such as g-1a2b…), got {jti!r}")
        with self._lock:
            cursor = self._db().execute("INSERT OR IGNORE INTO revoked(jti, revoked_ns, reason) VALUES (?,?,?)",
                                        (jti, time.time_ns(), reason))
        return cursor.rowcount == 1

    def revoked(self, jti: str) -> tuple[int, str] | None:
        """``(revoked_ns, reason)`` when ``jti`` is revoked, else None."""
        with self._lock:
            row = self._db().execute("SELECT revoked_ns, reason FROM revoked WHERE jti = ?", (jti,)).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def uses(self, jti: str) -> int:
        with self._lock:
            row = self._db().execute("SELECT count FROM uses WHERE jti = ?", (jti,)).fetchone()
        return int(row[0]) if row else 0

    def consume(self, grant: Grant) -> int:
        """Count one use of ``grant`` and return the new count, atomically across processes; a
        revoked grant or one already used ``max_uses`` times is refused and not counted."""
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")  # the write lock first: two processes cannot both take the last use
            try:
                if conn.execute("SELECT 1 FROM revoked WHERE jti = ?", (grant.jti,)).fetchone():
                    raise ConsentError(f"{grant.label} has been revoked")
                row = conn.execute("SELECT count FROM uses WHERE jti = ?", (grant.jti,)).fetchone()
                count = int(row[0]) if row else 0
                if grant.max_uses is not None and count >= grant.max_uses:
                    raise ConsentError(f"{grant.label} has already been used {count} of {grant.max_uses} "
                                       f"allowed time(s)")
                conn.execute("INSERT INTO uses(jti, count, last_ns) VALUES (?, 1, ?) ON CONFLICT(jti) DO UPDATE "
                             "SET count = count + 1, last_ns = excluded.last_ns", (grant.jti, time.time_ns()))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return count + 1

    def grants(self) -> list[StoredGrant]:
        with self._lock:
            rows = self._db().execute(
                "SELECT g.jti, g.typ, g.issuer, g.subject, g.contexts, g.expires, g.max_uses,"
                " COALESCE(u.count, 0), r.revoked_ns, g.token FROM grants g"
                " LEFT JOIN uses u ON u.jti = g.jti LEFT JOIN revoked r ON r.jti = g.jti"
                " ORDER BY g.recorded_ns").fetchall()
        return [StoredGrant(jti, typ, iss, sub, tuple(json.loads(ctx)), exp, max_uses, uses, revoked, token)
                for jti, typ, iss, sub, ctx, exp, max_uses, uses, revoked, token in rows]


# -- verifying -------------------------------------------------------------------------------------
class ConsentVerifier:
    """Checks grants and attestations against trusted keys (key id → `PublicKey`), the revocation
    list and use counts in ``store``. With an ``audit`` log (`facewire.trust.audit.AuditLog`) every
    check is recorded there as a ``consent-check`` record, granted or refused."""

    def __init__(self, trusted_keys: Mapping[str, PublicKey], store: ConsentStore | None = None, *,
                 audience: str = DEFAULT_AUDIENCE, issuer: str | None = None,
                 leeway_s: int = CLOCK_LEEWAY_S, audit: Any = None) -> None:
        if leeway_s < 0:
            raise InputError(f"clock leeway: expected ≥ 0 seconds, got {leeway_s}")
        self.trusted_keys = dict(trusted_keys)
        self.store = store
        self.audience = audience
        self.issuer = issuer
        self.leeway_s = leeway_s
        self.audit = audit

    def verify(self, token: str | bytes, *, context: str, likeness_sha256: str | None = None,
               typ: str | None = None, now_s: float | None = None) -> Grant:
        """The grant (or attestation) if it allows ``context`` now, else `ConsentError`. Counts no use."""
        return self._checked(token, context, likeness_sha256, typ, now_s, use=False)

    def use(self, token: str | bytes, *, context: str, likeness_sha256: str | None = None,
            typ: str | None = None, now_s: float | None = None) -> Grant:
        """As `verify`, then count one use (needs a ``store``); refused beyond ``max_uses``."""
        if self.store is None:
            raise InputError("consent verifier: counting uses needs a consent store")
        return self._checked(token, context, likeness_sha256, typ, now_s, use=True)

    def _checked(self, token: str | bytes, context: str, likeness_sha256: str | None, typ: str | None,
                 now_s: float | None, *, use: bool) -> Grant:
        _check_context(context)  # an unknown context is a caller's mistake, not a refusal
        grant: Grant | None = None
        uses = None
        try:
            grant = decode_token(token, self.trusted_keys, typ=typ)  # authentic from here on: log its id
            self._check(grant, context, likeness_sha256, time.time() if now_s is None else now_s)
            if use:
                assert self.store is not None
                uses = self.store.consume(grant)
        except ConsentError as exc:
            self._log(grant, token, context, refused=str(exc))
            raise
        self._log(grant, token, context, uses=uses)
        return grant

    def _log(self, grant: Grant | None, token: str | bytes, context: str, *, refused: str | None = None,
             uses: int | None = None) -> None:
        if self.audit is None:
            return
        payload: dict[str, Any] = {"result": "refused" if refused else "granted", "context": context}
        if grant is not None:
            payload.update(jti=grant.jti, typ=grant.typ, subject=grant.subject, issuer=grant.issuer,
                           key_id=grant.key_id)
        else:  # the digest names the token without storing it
            raw = token.encode("utf-8", "replace") if isinstance(token, str) else bytes(token)
            payload["token_sha256"] = hashlib.sha256(raw.strip()).hexdigest()
        if refused:
            payload["reason"] = refused
        if uses is not None:
            payload["uses"] = uses
        self.audit.append("consent-check", payload)

    def _check(self, grant: Grant, context: str, likeness_sha256: str | None, now: float) -> None:
        label = grant.label
        if now > grant.expires + self.leeway_s:
            raise ConsentError(f"{label} expired at {_when(grant.expires)} (now {_when(int(now))})")
        if now + self.leeway_s < grant.not_before:
            raise ConsentError(f"{label} is not valid before {_when(grant.not_before)} (now {_when(int(now))})")
        if self.audience not in grant.audience:
            raise ConsentError(f"{label} is for audience {', '.join(map(repr, grant.audience))}, "
                               f"not {self.audience!r}")
        if self.issuer is not None and grant.issuer != self.issuer:
            raise ConsentError(f"{label} was issued by {grant.issuer!r}, expected {self.issuer!r}")
        if context not in grant.contexts:
            raise ConsentError(f"{label} does not allow context {context!r} (allowed: {', '.join(grant.contexts)})")
        if likeness_sha256 is not None and (grant.likeness is None or grant.likeness.asset_sha256 != likeness_sha256):
            have = grant.likeness.asset_sha256[:16] if grant.likeness else "none"
            raise ConsentError(f"{label} covers likeness sha256 {have}…, not {likeness_sha256[:16]}…")
        if self.store is not None:
            revoked = self.store.revoked(grant.jti)
            if revoked is not None:
                why = f": {revoked[1]}" if revoked[1] else ""
                raise ConsentError(f"{label} was revoked at {_when(revoked[0] // 10**9)}{why}")
            if grant.max_uses is not None:
                used = self.store.uses(grant.jti)
                if used >= grant.max_uses:
                    raise ConsentError(f"{label} has already been used {used} of {grant.max_uses} allowed time(s)")
            self.store.record(grant)


def home_verifier(home: str | os.PathLike[str] | None = None, *, audit: Any = None,
                  audience: str = DEFAULT_AUDIENCE, extra_keys: Iterable[PublicKey] = ()) -> ConsentVerifier:
    """A verifier for the trust home (``--home``, else ``$FACEWIRE_HOME``, else the user data dir):
    its own and trusted keys, its consent store; close it with ``verifier.store.close()``."""
    from .keys import trusted_keys
    from .store import trust_home

    place = trust_home(home).ensure()
    return ConsentVerifier(trusted_keys(place, extra_keys), ConsentStore(place.consent_db), audience=audience,
                           audit=audit)
