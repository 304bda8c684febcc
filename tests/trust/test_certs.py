"""The C2PA signing chain: what validators require of the certificates, key file mode, user chains."""

import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from facewire.errors import InputError, OutputError
from facewire.trust.certs import SigningChain, create_signing_chain

DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return create_signing_chain(tmp_path_factory.mktemp("c2pa"), subject="test signer")


def _ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def test_files_and_key_mode(chain):
    assert chain.chain.is_file() and chain.root.is_file() and chain.key.is_file()
    assert stat.S_IMODE(chain.key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in chain.key.read_bytes()
    assert b"PRIVATE KEY" not in chain.chain.read_bytes() + chain.root.read_bytes()


def test_signer_certificate_profile(chain):
    (signer,) = chain.certificates()
    root = x509.load_pem_x509_certificate(chain.root.read_bytes())
    assert signer.version == x509.Version.v3
    assert isinstance(signer.public_key(), ec.EllipticCurvePublicKey) and signer.public_key().curve.name == "secp256r1"
    assert chain.algorithm() == "es256"
    assert _ext(signer, x509.BasicConstraints).value.ca is False
    ku = _ext(signer, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    eku = _ext(signer, x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku and DOCUMENT_SIGNING in eku
    assert ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
    # the signer is issued by the root, not self-signed, and names it by key id
    assert signer.issuer == root.subject != signer.subject
    signer.verify_directly_issued_by(root)
    aki = _ext(signer, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == _ext(root, x509.SubjectKeyIdentifier).value.digest
    assert _ext(signer, x509.SubjectKeyIdentifier).value.digest
    assert signer.not_valid_before_utc < signer.not_valid_after_utc <= root.not_valid_after_utc


def test_root_is_a_ca(chain):
    root = x509.load_pem_x509_certificate(chain.root.read_bytes())
    assert _ext(root, x509.BasicConstraints).value.ca is True
    assert _ext(root, x509.KeyUsage).value.key_cert_sign
    root.verify_directly_issued_by(root)


def test_refuses_to_overwrite(chain):
    with pytest.raises(OutputError, match="already exists"):
        create_signing_chain(chain.key.parent)


def test_passphrase_protects_the_key(tmp_path):
    made = create_signing_chain(tmp_path, passphrase=b"correct horse")
    assert b"ENCRYPTED" in made.key.read_bytes()
    made.validate(b"correct horse")
    with pytest.raises(InputError, match="private key"):
        made.private_key(b"wrong")
    with pytest.raises(InputError, match="private key"):
        made.private_key()


def test_from_files_checks_the_pair(chain, tmp_path):
    mine = SigningChain.from_files(chain.chain, chain.key)
    assert mine.root is None and mine.algorithm() == "es256"
    other = create_signing_chain(tmp_path / "other")
    with pytest.raises(InputError, match="different key"):
        SigningChain.from_files(chain.chain, other.key)
    with pytest.raises(InputError, match="cannot read"):
        SigningChain.from_files(tmp_path / "missing.pem", chain.key)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(InputError, match="certificate"):
        SigningChain.from_files(bad, chain.key)
