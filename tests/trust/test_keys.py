"""Identities: key files private from their first byte, passphrases that work and fail clearly, RFC 7638 key ids."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from facewire.errors import InputError, OutputError
from facewire.trust.keys import (
    generate_identity,
    key_is_encrypted,
    key_thumbprint,
    load_identity,
    load_private_key,
    load_public_key,
    read_passphrase,
    save_identity,
    trust_public_key,
    trusted_keys,
)
from facewire.trust.store import TrustHome, trust_home

PASSPHRASE = b"correct horse battery staple"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _raw_private(identity) -> bytes:
    return identity.private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                              serialization.NoEncryption())


def test_thumbprint_matches_rfc8037_example():
    # RFC 8037 appendix A.2/A.3: the Ed25519 example key and its RFC 7638 thumbprint
    x = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    assert key_thumbprint(Ed25519PublicKey.from_public_bytes(x)) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_key_file_is_0600_even_with_a_permissive_umask(tmp_path):
    home = TrustHome(tmp_path / "home")
    old = os.umask(0)  # a plain open() would now make a world-readable file
    try:
        save_identity(generate_identity("alice"), home, PASSPHRASE)
    finally:
        os.umask(old)
    assert _mode(home.key_file) == 0o600
    assert _mode(home.root) == 0o700
    assert _mode(home.keys_dir) == 0o700


def test_encrypted_key_round_trip_and_wrong_passphrase(tmp_path):
    home = TrustHome(tmp_path)
    identity = generate_identity("alice")
    save_identity(identity, home, PASSPHRASE)
    assert key_is_encrypted(home.key_file)
    data = home.key_file.read_bytes()
    assert PASSPHRASE not in data and _raw_private(identity) not in data
    assert load_identity(home, PASSPHRASE).key_id == identity.key_id
    assert load_identity(home, PASSPHRASE).name == "alice"

    with pytest.raises(InputError) as wrong:
        load_identity(home, b"not the passphrase")
    assert str(wrong.value) == f"wrong passphrase for {home.key_file}"
    assert "\n" not in str(wrong.value)
    with pytest.raises(InputError, match="is encrypted: give its passphrase"):
        load_identity(home)


def test_unencrypted_key_loads_without_passphrase(tmp_path):
    home = TrustHome(tmp_path)
    identity = generate_identity("bob")
    save_identity(identity, home)
    assert not key_is_encrypted(home.key_file)
    assert _mode(home.key_file) == 0o600
    assert load_identity(home).key_id == identity.key_id


def test_existing_identity_is_kept_unless_forced(tmp_path):
    home = TrustHome(tmp_path)
    first, second = generate_identity("a"), generate_identity("b")
    save_identity(first, home)
    with pytest.raises(OutputError, match="already exists"):
        save_identity(second, home)
    assert load_identity(home).key_id == first.key_id
    save_identity(second, home, PASSPHRASE, force=True)
    assert load_identity(home, PASSPHRASE).key_id == second.key_id
    assert _mode(home.key_file) == 0o600
    assert [p.name for p in home.keys_dir.iterdir() if p.name.startswith(".")] == []


def test_own_key_file_and_wrong_key_types(tmp_path):
    own = Ed25519PrivateKey.generate()
    path = tmp_path / "mine.pem"
    path.write_bytes(own.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    identity = load_identity(TrustHome(tmp_path / "h"), key_file=path)
    assert identity.key_id == key_thumbprint(own.public_key())

    with pytest.raises(InputError, match="expected a public key, got a private key"):
        load_public_key(path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    with pytest.raises(InputError, match="expected a PEM private key"):
        load_private_key(garbage)
    with pytest.raises(InputError, match="no identity in trust home"):
        load_identity(TrustHome(tmp_path / "empty"))


def test_read_passphrase_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("FW_TEST_PASS", "from env")
    assert read_passphrase("FW_TEST_PASS") == b"from env"
    monkeypatch.delenv("FW_TEST_PASS")
    with pytest.raises(InputError, match="FW_TEST_PASS is not set"):
        read_passphrase("FW_TEST_PASS")
    f = tmp_path / "pass.txt"
    f.write_bytes(b"line one\nline two\n")
    assert read_passphrase(file=f) == b"line one"
    f.write_bytes(b"\n")
    with pytest.raises(InputError, match="empty passphrase"):
        read_passphrase(file=f)
    assert read_passphrase() is None


def test_trusted_keys_holds_own_and_added_keys(tmp_path):
    home = TrustHome(tmp_path / "home")
    me, friend = generate_identity("me"), generate_identity("friend")
    save_identity(me, home)
    friend_pub = tmp_path / "friend.pub.pem"
    friend_pub.write_bytes(friend.public_key.pem())
    trust_public_key(home, friend_pub, "friend")
    keys = trusted_keys(home)
    assert set(keys) == {me.key_id, friend.key_id}
    assert keys[friend.key_id].name == "friend"
    sig = friend.sign(b"data")
    assert keys[friend.key_id].verify(sig, b"data")
    assert not keys[me.key_id].verify(sig, b"data")


def test_trust_home_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEWIRE_HOME", str(tmp_path / "env"))
    assert trust_home().root == tmp_path / "env"
    assert trust_home(tmp_path / "flag").root == tmp_path / "flag"
    monkeypatch.delenv("FACEWIRE_HOME")
    assert trust_home().root.name == "trust"


def test_home_key_readable_by_others_is_refused(tmp_path):
    """Review (issue 8): a home key whose mode was loosened after creation (a copy, a restore) is refused."""
    home = TrustHome(tmp_path / "home")
    save_identity(generate_identity("me"), home, b"pass phrase")
    os.chmod(home.key_file, 0o644)
    with pytest.raises(InputError, match=r"readable by others \(mode 0644\): run 'chmod 600 .*identity\.key\.pem'"):
        load_identity(home, b"pass phrase")
    os.chmod(home.key_file, 0o600)
    assert load_identity(home, b"pass phrase").name == "me"
