"""The C2PA signing chain: a local root CA and the end-entity certificate that signs manifests.

C2PA validators (c2pa-rs ``certificate_profile.rs``) reject a self-signed signer, a CA used as
signer, a signer without AuthorityKeyIdentifier or without an allowed extended key usage, so
:func:`create_signing_chain` makes two certificates: a root CA (the trust anchor a verifier is
given) and an ES256 end-entity signer with ``digitalSignature``, EKU ``emailProtection`` +
``documentSigning`` (c2pa-rs 0.91 rejects ``documentSigning`` alone), SKI and AKI. The root's key
signs the end-entity certificate once and is then discarded: a stolen trust home can sign, but
cannot mint further signers under the same root. Users with their own certificate chain use
:meth:`SigningChain.from_files`.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from ..atomic import atomic_write, write_private
from ..errors import InputError, OutputError

__all__ = ["CHAIN_NAME", "KEY_NAME", "ROOT_NAME", "SigningChain", "create_signing_chain"]

ROOT_NAME = "root.pem"
CHAIN_NAME = "chain.pem"
KEY_NAME = "signer.key"

ROOT_VALIDITY_DAYS = 3650
SIGNER_VALIDITY_DAYS = 730
CLOCK_SKEW = dt.timedelta(minutes=5)  # so a verifier whose clock is a little behind still accepts it
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")


@dataclass(frozen=True)
class SigningChain:
    """Where a signing chain lives: ``chain`` (PEM, end-entity first, then any intermediates),
    ``key`` (the end-entity's PEM private key) and ``root`` (the anchoring CA, or ``None`` when a
    user's own chain came without it)."""

    chain: Path
    key: Path
    root: Path | None = None

    @classmethod
    def from_files(cls, chain: str | os.PathLike[str], key: str | os.PathLike[str],
                   root: str | os.PathLike[str] | None = None) -> SigningChain:
        """A user's own certificate chain and key; checks that they exist and belong together."""
        made = cls(Path(chain), Path(key), Path(root) if root is not None else None)
        made.validate()
        return made

    def chain_pem(self) -> bytes:
        return _read(self.chain, "certificate chain")

    def root_pem(self) -> bytes | None:
        return _read(self.root, "root certificate") if self.root is not None else None

    def certificates(self) -> list[x509.Certificate]:
        try:
            certs = x509.load_pem_x509_certificates(self.chain_pem())
        except ValueError as exc:
            raise InputError(f"certificate chain {self.chain}: expected PEM certificates, got unreadable data ({exc})") from exc
        return certs

    def private_key(self, passphrase: bytes | None = None):
        """The signer's private key; ``passphrase`` for an encrypted PEM."""
        data = _read(self.key, "private key")
        try:
            return serialization.load_pem_private_key(data, password=passphrase)
        except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a plain key
            raise InputError(f"private key {self.key}: {exc}") from exc
        except ValueError as exc:
            raise InputError(f"private key {self.key}: expected a PEM private key (or the right passphrase), "
                             f"got one that cannot be loaded") from exc

    def private_key_pem(self, passphrase: bytes | None = None) -> bytes:
        """The key as unencrypted PKCS#8 PEM, in memory only (what the C2PA signer takes)."""
        return self.private_key(passphrase).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def algorithm(self) -> str:
        """The C2PA signing algorithm name of the end-entity key: ``es256``, ``es384``, ``es512``,
        ``ps256`` or ``ed25519``."""
        key = self.certificates()[0].public_key()
        if isinstance(key, ed25519.Ed25519PublicKey):
            return "ed25519"
        if isinstance(key, ec.EllipticCurvePublicKey):
            names = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
            if key.curve.name not in names:
                raise InputError(f"certificate {self.chain}: expected an EC key on P-256/P-384/P-521, got {key.curve.name}")
            return names[key.curve.name]
        if isinstance(key, rsa.RSAPublicKey):
            return "ps256"
        raise InputError(f"certificate {self.chain}: expected an EC, Ed25519 or RSA key, got {type(key).__name__}")

    def validate(self, passphrase: bytes | None = None) -> None:
        """Raise `InputError` unless the chain parses, its first certificate is the key's and the
        key algorithm is one C2PA signs with."""
        certs = self.certificates()
        if not certs:
            raise InputError(f"certificate chain {self.chain}: expected at least one PEM certificate, got none")
        self.algorithm()
        pub = self.private_key(passphrase).public_key()
        fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if pub.public_bytes(*fmt) != certs[0].public_key().public_bytes(*fmt):
            raise InputError(f"private key {self.key}: expected the key of the first certificate in {self.chain}, "
                             f"got a different key")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from exc


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "facewire")])


def create_signing_chain(directory: str | os.PathLike[str], *, subject: str = "facewire local signer",
                         passphrase: bytes | None = None, now: dt.datetime | None = None) -> SigningChain:
    """Make a root CA and an ES256 signer in ``directory`` (``root.pem``, ``chain.pem``,
    ``signer.key`` with mode 0600, encrypted when ``passphrase`` is given) and return their paths.

    Refuses to overwrite an existing key (`OutputError`).
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    if not subject.strip():
        raise InputError("signing chain subject: expected a non-empty name, got an empty one")
    key_path = directory / KEY_NAME
    if key_path.exists():
        raise OutputError(f"cannot write {key_path}: it already exists (remove it to make a new chain)")

    start = (now or dt.datetime.now(dt.UTC)) - CLOCK_SKEW
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{subject} root CA")
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=ROOT_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(root_ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name(subject)).issuer_name(root_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=SIGNER_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    write_private(key_path, signer_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     encryption), exists_hint="remove it to make a new chain")
    with atomic_write(directory / ROOT_NAME, "wb") as f:
        f.write(root.public_bytes(serialization.Encoding.PEM))
    with atomic_write(directory / CHAIN_NAME, "wb") as f:
        f.write(signer.public_bytes(serialization.Encoding.PEM))
    return SigningChain(chain=directory / CHAIN_NAME, key=key_path, root=directory / ROOT_NAME)
