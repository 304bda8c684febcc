"""`facewire keys|consent|audit` end to end through the real CLI entry point, and no secret left anywhere."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization

from facewire.cli import main
from facewire.plugins import module_exists
from facewire.trust.keys import key_thumbprint, load_identity, load_public_key
from facewire.trust.store import TrustHome

PASSPHRASE = "tr0ub4dor & 3 — passphrase"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEWIRE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FW_PASS", PASSPHRASE)
    return TrustHome(tmp_path / "home")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "alice.jpg"
    path.write_bytes(b"\xff\xd8\xff not really a jpeg, but bytes to hash")
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _init(capsys) -> str:
    code, out, err = run(capsys, "keys", "init", "--passphrase-env", "FW_PASS", "--subject", "Alice")
    assert code == 0, err
    return out


def test_keys_init_and_show(home, capsys):
    out = _init(capsys)
    assert stat.S_IMODE(os.stat(home.key_file).st_mode) == 0o600
    key_id = key_thumbprint(load_public_key(home.public_key_file).key)
    assert out.strip() == f"identity Alice: key id {key_id}"
    assert load_identity(home, PASSPHRASE.encode()).key_id == key_id
    if module_exists("facewire.trust.certs"):
        assert (home.c2pa_dir / "root.pem").is_file()

    code, out, _ = run(capsys, "keys", "show")
    assert code == 0 and f"fingerprint  {key_id}" in out and "(encrypted)" in out

    code, _, err = run(capsys, "keys", "init", "--no-passphrase")
    assert code == 2 and "already exists" in err and err.count("\n") == 1


def test_passphrase_is_never_a_command_line_value(home, capsys):
    with pytest.raises(SystemExit):
        main(["keys", "init", "--passphrase", PASSPHRASE])
    capsys.readouterr()


def test_wrong_passphrase_is_one_clear_line(home, photo, tmp_path, capsys, monkeypatch):
    _init(capsys)
    monkeypatch.setenv("FW_PASS", "not it")
    code, _, err = run(capsys, "consent", "grant", "--subject", "alice", "--likeness", str(photo),
                       "--context", "telepresence", "--out", str(tmp_path / "g.jwt"), "--passphrase-env", "FW_PASS")
    assert code == 2
    assert err == f"facewire: error: wrong passphrase for {home.key_file}\n"
    assert not (tmp_path / "g.jwt").exists()


def test_grant_verify_use_revoke_list(home, photo, tmp_path, capsys):
    _init(capsys)
    grant = tmp_path / "grant.jwt"
    code, _, err = run(capsys, "consent", "grant", "--subject", "alice", "--likeness", str(photo),
                       "--context", "telepresence", "--context", "customer-service", "--max-uses", "2",
                       "--expires", "7d", "--out", str(grant), "--passphrase-env", "FW_PASS")
    assert code == 0, err
    assert grant.read_text().count(".") == 2

    code, out, _ = run(capsys, "consent", "verify", str(grant), "--context", "customer-service",
                       "--likeness", str(photo))
    assert code == 0 and out.startswith("valid: grant g-") and "subject alice" in out

    code, _, err = run(capsys, "consent", "verify", str(grant), "--context", "entertainment")
    assert code != 0
    assert err.endswith("does not allow context 'entertainment' (allowed: telepresence, customer-service)\n")

    code, _, err = run(capsys, "consent", "verify", str(grant), "--context", "telepresence", "--likeness", str(grant))
    assert code != 0 and "covers likeness sha256" in err

    assert [run(capsys, "consent", "verify", str(grant), "--context", "telepresence", "--use")[0]
            for _ in range(3)] == [0, 0, 2]

    code, out, _ = run(capsys, "consent", "list")
    assert code == 0 and "used up" in out and "2/2" in out

    code, out, _ = run(capsys, "consent", "revoke", str(grant), "--reason", "withdrawn")
    assert code == 0 and out.startswith("revoked g-")
    code, _, err = run(capsys, "consent", "verify", str(grant), "--context", "telepresence")
    assert code != 0 and "was revoked" in err and "withdrawn" in err
    assert "revoked" in run(capsys, "consent", "list")[1]


def test_attestation_and_foreign_keys(home, photo, tmp_path, capsys):
    _init(capsys)
    attest = tmp_path / "attest.jwt"
    code, _, err = run(capsys, "consent", "attest", "--likeness", str(photo), "--context", "entertainment",
                       "--operator", "studio", "--out", str(attest), "--passphrase-env", "FW_PASS")
    assert code == 0, err
    code, out, _ = run(capsys, "consent", "verify", str(attest), "--context", "entertainment")
    assert code == 0 and "statement: I, studio, have the right to animate" in out

    other = TrustHome(tmp_path / "other")  # another trust home does not trust Alice's key ...
    code, _, err = run(capsys, "consent", "verify", str(attest), "--context", "entertainment", "--home", str(other.root))
    assert code != 0 and "not trusted here" in err
    code, _, _ = run(capsys, "keys", "trust", str(home.public_key_file), "--home", str(other.root))
    assert code == 0  # ... until told to
    code, _, err = run(capsys, "consent", "verify", str(attest), "--context", "entertainment", "--home", str(other.root))
    assert code == 0, err


def test_audit_show_and_verify_then_tamper(home, photo, tmp_path, capsys):
    _init(capsys)
    run(capsys, "consent", "grant", "--subject", "alice", "--likeness", str(photo), "--context", "telepresence",
        "--out", str(tmp_path / "g.jwt"), "--passphrase-env", "FW_PASS")
    run(capsys, "consent", "verify", str(tmp_path / "g.jwt"), "--context", "entertainment")
    run(capsys, "consent", "verify", str(tmp_path / "g.jwt"), "--context", "telepresence", "--passphrase-env", "FW_PASS")

    code, out, _ = run(capsys, "audit", "show")
    kinds = [line.split()[2] for line in out.splitlines()]
    assert code == 0 and kinds == ["key-init", "sign", "consent-check", "consent-check"]
    code, out, _ = run(capsys, "audit", "show", "--kind", "consent-check", "--last", "1")
    assert len(out.splitlines()) == 1 and '"result":"granted"' in out

    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "verifies: 4 records" in out

    conn = sqlite3.connect(home.audit_db)
    conn.execute("DROP TRIGGER records_append_only_u")
    conn.execute("""UPDATE records SET payload = replace(payload, '"refused"', '"granted"') WHERE seq = 3""")
    conn.commit()
    conn.close()
    code, out, _ = run(capsys, "audit", "verify", "--db", str(home.audit_db))
    assert code == 1
    assert "TAMPERED: record 3: its contents do not match its hash (edited?)" in out


def test_no_secret_in_any_file_or_output(home, photo, tmp_path, capsys):
    """The passphrase and the private key appear nowhere but in the (encrypted) key file."""
    outputs = [_init(capsys)]
    grant = tmp_path / "g.jwt"
    for argv in (["consent", "grant", "--subject", "alice", "--likeness", str(photo), "--context", "telepresence",
                  "--out", str(grant), "--passphrase-env", "FW_PASS"],
                 ["consent", "verify", str(grant), "--context", "telepresence", "--passphrase-env", "FW_PASS"],
                 ["consent", "verify", str(grant), "--context", "entertainment", "--passphrase-env", "FW_PASS"],
                 ["consent", "revoke", str(grant), "--passphrase-env", "FW_PASS"],
                 ["audit", "show"], ["audit", "verify"], ["keys", "show"], ["consent", "list"]):
        _code, out, err = run(capsys, *argv)
        outputs += [out, err]
    identity = load_identity(home, PASSPHRASE.encode())
    secrets = {
        "passphrase": PASSPHRASE.encode(),
        "raw private key": identity.private_key.private_bytes(serialization.Encoding.Raw,
                                                              serialization.PrivateFormat.Raw,
                                                              serialization.NoEncryption()),
        "PEM private key": identity.private_key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()).split(b"\n")[1],
    }
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert home.audit_db in files and home.consent_db in files
    for path in files:
        data = path.read_bytes()
        for what, secret in secrets.items():
            assert secret not in data, f"{what} found in {path}"
    text = "".join(outputs).encode()
    for what, secret in secrets.items():
        assert secret not in text, f"{what} printed"


def test_help_lists_the_verbs_in_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "facewire", "consent", "--help"], check=False, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0
    for verb in ("grant", "verify", "revoke", "list", "attest"):
        assert verb in out.stdout
    out = subprocess.run([sys.executable, "-m", "facewire", "consent", "contexts"], check=False, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split("\n")[0].startswith("telepresence ")


def test_audit_verify_with_a_saved_anchor(home, capsys, tmp_path):
    _init(capsys)
    code, out, _ = run(capsys, "audit", "show", "--checkpoints")
    anchor = tmp_path / "anchor.txt"
    anchor.write_text(out)
    code, out, _ = run(capsys, "audit", "verify", "--anchor", str(anchor))
    assert code == 0, out
    conn = sqlite3.connect(home.audit_db)
    for trigger in ("records_append_only_d", "checkpoints_append_only_d"):
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DELETE FROM records")
    conn.execute("DELETE FROM checkpoints")
    conn.commit()
    conn.close()
    code, out, _ = run(capsys, "audit", "verify", "--anchor", str(anchor))
    assert code == 1 and "TAMPERED: log rolled back or truncated" in out
