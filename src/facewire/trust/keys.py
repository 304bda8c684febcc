"""Ed25519 identities: the key that signs consent grants and audit checkpoints, kept private on disk.

The private key is PKCS#8 PEM, encrypted with the passphrase when one is given
(``BestAvailableEncryption``), in a file created with mode 0600 by ``os.open`` (never readable by
others, not even between creation and a later chmod); a home's key found readable by others later is
refused, as ssh does. A key is named by its RFC 7638 JWK
thumbprint (SHA-256 over ``{"crv":"Ed25519","kty":"OKP","x":…}``, base64url): the ``kid`` of the
tokens it signs and the fingerprint ``facewire keys show`` prints. Passphrases come from an
environment variable, a file or a prompt, never from a command-line value, and are never logged.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ..atomic import atomic_write, write_private
from ..errors import InputError, OutputError
from .store import TrustHome

__all__ = [
    "Identity",
    "PublicKey",
    "generate_identity",
    "key_is_encrypted",
    "key_thumbprint",
    "load_identity",
    "load_private_key",
    "load_public_key",
    "read_passphrase",
    "save_identity",
    "trust_public_key",
    "trusted_keys",
]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(jwk.encode("ascii")).digest())


@dataclass(frozen=True)
class PublicKey:
    """A public key that may verify signatures, with the name its owner gave it."""

    name: str
    key: Ed25519PublicKey = field(repr=False, compare=False)
    key_id: str = ""

    def __post_init__(self) -> None:
        if not self.key_id:
            object.__setattr__(self, "key_id", key_thumbprint(self.key))

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Identity:
    """A named Ed25519 key pair; the private half never appears in ``repr`` or logs."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(self.name, self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return key_thumbprint(self.private_key.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


def generate_identity(name: str) -> Identity:
    """A fresh Ed25519 identity called ``name``."""
    if not name.strip():
        raise InputError("identity name: expected a non-empty name, got an empty one")
    return Identity(name.strip(), Ed25519PrivateKey.generate())


# -- passphrases --------------------------------------------------------------------------------
def read_passphrase(env_var: str | None = None, file: str | os.PathLike[str] | None = None, *,
                    prompt: str | None = None, confirm: bool = False) -> bytes | None:
    """The passphrase from environment variable ``env_var``, the first line of ``file``, or (when
    ``prompt`` is given and stdin is a terminal) typed at a hidden prompt; ``None`` when none of
    these is asked for. An empty passphrase is refused rather than silently meaning "no encryption"."""
    if env_var and file:
        raise InputError("passphrase: expected one of --passphrase-env or --passphrase-file, got both")
    if env_var:
        value = os.environ.get(env_var)
        if value is None:
            raise InputError(f"passphrase: environment variable {env_var} is not set")
        secret = value.encode("utf-8")
        where = f"environment variable {env_var}"
    elif file:
        try:
            text = Path(file).read_bytes()
        except OSError as exc:
            raise InputError(f"passphrase file {file}: cannot read it ({exc.strerror or exc})") from exc
        secret = text.splitlines()[0] if text.strip() else b""
        where = f"passphrase file {file}"
    elif prompt and sys.stdin.isatty():
        secret = getpass.getpass(prompt).encode("utf-8")
        if confirm and getpass.getpass("again: ").encode("utf-8") != secret:
            raise InputError("passphrase: the two entries differ")
        where = "the prompt"
    else:
        return None
    if not secret:
        raise InputError(f"passphrase: {where} gave an empty passphrase")
    return secret


# -- files --------------------------------------------------------------------------------------
def save_identity(identity: Identity, home: TrustHome, passphrase: bytes | None = None, *,
                  force: bool = False) -> None:
    """Write ``identity`` into ``home``: the private key (0600), the public key and identity.json."""
    home.ensure()
    if home.key_file.exists() and not force:
        raise OutputError(f"cannot write {home.key_file}: an identity already exists there "
                          f"(use --force to replace it)")
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    pem = identity.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             encryption)
    write_private(home.key_file, pem, replace=home.key_file.exists(),
                  exists_hint="use --force to replace the identity")
    with atomic_write(home.public_key_file, "wb") as f:
        f.write(identity.public_key.pem())
    with atomic_write(home.identity_file) as f:
        json.dump({"name": identity.name, "key_id": identity.key_id, "algorithm": "Ed25519",
                   "encrypted": passphrase is not None}, f, indent=2)
        f.write("\n")


def key_is_encrypted(path: str | os.PathLike[str]) -> bool:
    """True when the PEM private key at ``path`` is passphrase-protected (PKCS#8 encrypted)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise InputError(f"private key {path}: cannot read it ({exc.strerror or exc})") from exc
    return b"ENCRYPTED" in head


def load_private_key(path: str | os.PathLike[str], passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file ``path``; a wrong or missing passphrase is an `InputError`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"private key {path}: cannot read it ({exc.strerror or exc})") from exc
    encrypted = b"ENCRYPTED PRIVATE KEY" in data
    if encrypted and passphrase is None:
        raise InputError(f"private key {path} is encrypted: give its passphrase with --passphrase-env VAR "
                         f"or --passphrase-file FILE")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise InputError(f"wrong passphrase for {path}") from None  # the library text adds nothing
        raise InputError(f"private key {path}: expected a PEM private key, got unreadable data") from exc
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"private key {path}: cannot load it ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"private key {path}: expected an Ed25519 key, got {type(key).__name__}")
    return key


def load_identity(home: TrustHome, passphrase: bytes | None = None, *,
                  key_file: str | os.PathLike[str] | None = None, name: str | None = None) -> Identity:
    """The identity of ``home`` (or the key in ``key_file``, a user's own Ed25519 PEM key)."""
    path = Path(key_file) if key_file else home.key_file
    if not key_file and not path.exists():
        raise InputError(f"no identity in trust home {home.root}: run 'facewire keys init' first")
    if not key_file:
        _check_private_mode(path)
    key = load_private_key(path, passphrase)
    if name is None:
        name = _identity_name(home) if not key_file else path.stem
    return Identity(name or "facewire", key)


def _check_private_mode(path: Path) -> None:
    """Refuse the home's key once others may read it (as ssh does): it was created 0600, so a looser
    mode means someone changed it (a copy, a restore) and the key may already be exposed."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise InputError(f"private key {path}: cannot read it ({exc.strerror or exc})") from exc
    if mode & 0o077:
        raise InputError(f"private key {path} is readable by others (mode {mode:04o}): run 'chmod 600 {path}' "
                         f"and consider the key exposed")


def _identity_name(home: TrustHome) -> str:
    try:
        return str(json.loads(home.identity_file.read_text(encoding="utf-8"))["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return "facewire"


def load_public_key(path: str | os.PathLike[str], name: str | None = None) -> PublicKey:
    """The Ed25519 public key in PEM file ``path`` (a private key file also works: its public half)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"public key {path}: cannot read it ({exc.strerror or exc})") from exc
    if b"PRIVATE KEY" in data:
        raise InputError(f"public key {path}: expected a public key, got a private key (use its .pub.pem)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(f"public key {path}: expected a PEM public key, got unreadable data") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"public key {path}: expected an Ed25519 key, got {type(key).__name__}")
    return PublicKey(name or Path(path).name.split(".")[0], key)


def trust_public_key(home: TrustHome, path: str | os.PathLike[str], name: str | None = None) -> PublicKey:
    """Copy the public key at ``path`` into ``home``'s trusted keys, so grants it signs verify here."""
    public = load_public_key(path, name)
    home.ensure()
    with atomic_write(home.trusted_dir / f"{public.key_id}.pub.pem", "wb") as f:
        f.write(public.pem())
    with atomic_write(home.trusted_dir / f"{public.key_id}.json") as f:
        json.dump({"name": public.name, "key_id": public.key_id}, f)
    return public


def trusted_keys(home: TrustHome | None = None, extra: Iterable[PublicKey] = ()) -> Mapping[str, PublicKey]:
    """Keys whose signatures this home accepts, by key id: its own identity, the keys added with
    `trust_public_key`, and ``extra``."""
    keys: dict[str, PublicKey] = {}
    if home is not None:
        if home.public_key_file.exists():
            own = load_public_key(home.public_key_file, _identity_name(home))
            keys[own.key_id] = own
        if home.trusted_dir.is_dir():
            for pem in sorted(home.trusted_dir.glob("*.pub.pem")):
                meta = pem.with_name(pem.name.replace(".pub.pem", ".json"))
                try:
                    name = json.loads(meta.read_text(encoding="utf-8"))["name"]
                except (OSError, ValueError, KeyError, TypeError):
                    name = None
                public = load_public_key(pem, name)
                keys[public.key_id] = public
    for public in extra:
        keys[public.key_id] = public
    return keys
