"""The audit log: its documented hash format, tampering done with sqlite3 directly, SIGKILL and concurrent writers."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from cryptography.hazmat.primitives import serialization

from facewire.errors import InputError
from facewire.trust.audit import AuditLog, verify_log
from facewire.trust.keys import generate_identity

EVERY = 10


@pytest.fixture(scope="module")
def signer():
    return generate_identity("auditor")


@pytest.fixture
def trusted(signer):
    return {signer.key_id: signer.public_key}


def _fill(path, signer, n: int, *, close: bool = True) -> AuditLog:
    log = AuditLog(path, signer, checkpoint_every=EVERY)
    for i in range(n):
        log.append("export" if i % 3 else "session-start", {"i": i, "file": f"out{i}.mp4"})
    if close:
        log.close()
    return log


def _raw(path) -> sqlite3.Connection:
    """A plain sqlite3 connection, as an attacker would use, with the append-only guards dropped."""
    conn = sqlite3.connect(path)
    for trigger in ("records_append_only_u", "records_append_only_d",
                    "checkpoints_append_only_u", "checkpoints_append_only_d"):
        conn.execute(f"DROP TRIGGER {trigger}")
    return conn


def _rehash(conn: sqlite3.Connection, from_seq: int) -> None:
    """Recompute the chain from ``from_seq`` on, as a careful forger would (the format is public)."""
    prev = conn.execute("SELECT hash FROM records WHERE seq = ?", (from_seq - 1,)).fetchone()[0]
    rows = conn.execute("SELECT seq, time_ns, kind, payload FROM records WHERE seq >= ? ORDER BY seq",
                        (from_seq,)).fetchall()
    for seq, time_ns, kind, payload in rows:
        digest = _hash(seq, time_ns, kind, json.loads(payload), prev)
        conn.execute("UPDATE records SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest


def _hash(seq, time_ns, kind, payload, prev) -> str:
    text = json.dumps({"seq": seq, "time_ns": time_ns, "kind": kind, "payload": payload, "prev_hash": prev},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_records_follow_the_documented_hash_chain(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    with AuditLog(db, signer, checkpoint_every=EVERY) as log:
        first = log.append("session-start", {"avatar": "a.glb", "context": "telepresence"})
        second = log.append("session-stop", {"frames": 300})
        assert (first.seq, second.seq) == (1, 2)
        log_id = sqlite3.connect(db).execute("SELECT value FROM meta WHERE key='log_id'").fetchone()[0]
        assert first.prev_hash == hashlib.sha256(f"facewire-audit-v1|{log_id}".encode()).hexdigest()
        assert first.hash == _hash(1, first.time_ns, "session-start", first.payload, first.prev_hash)
        assert second.prev_hash == first.hash
        assert second.hash == _hash(2, second.time_ns, "session-stop", {"frames": 300}, first.hash)
        assert [r.seq for r in log.records(kind="session-stop")] == [2]
        assert [r.seq for r in log.records(last=1)] == [2]
    report = verify_log(db, trusted)
    assert report.ok, report.problems
    assert (report.records, report.checkpoints, report.signed_seq) == (2, 1, 2)  # the close checkpoint


def test_untouched_log_verifies_and_reports_unsigned_tail(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    log = _fill(db, signer, 25, close=False)
    report = log.verify()
    assert report.ok and report.signed_seq == 20
    assert any("21..25" in note for note in report.notes)
    log.close()
    assert verify_log(db, trusted).notes == ()


def test_wal_and_full_sync(tmp_path, signer):
    db = tmp_path / "audit.db"
    with AuditLog(db, signer) as log:
        assert log._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert log._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_sqlite_refuses_updates_through_the_triggers(tmp_path, signer):
    db = tmp_path / "audit.db"
    _fill(db, signer, 3)
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE records SET payload = '{}' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM records WHERE seq = 3")


def _problems(db, trusted) -> str:
    report = verify_log(db, trusted)
    assert not report.ok
    return "\n".join(report.problems)


def test_edited_record_is_detected(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with _raw(db) as conn:
        conn.execute("""UPDATE records SET payload = '{"file":"innocent.mp4","i":4}' WHERE seq = 5""")
    assert "record 5: its contents do not match its hash" in _problems(db, trusted)


def test_edited_record_with_recomputed_hash_breaks_the_next_link(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with _raw(db) as conn:
        time_ns, prev = conn.execute("SELECT time_ns, prev_hash FROM records WHERE seq = 5").fetchone()
        payload = {"file": "innocent.mp4", "i": 4}
        conn.execute("UPDATE records SET payload = ?, hash = ? WHERE seq = 5",
                     (json.dumps(payload), _hash(5, time_ns, "export", payload, prev)))
    problems = _problems(db, trusted)
    assert "record 6: prev_hash does not link to record 5" in problems
    assert "record 5:" not in problems


def test_rewritten_chain_is_caught_by_the_signed_checkpoint(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with _raw(db) as conn:
        conn.execute("""UPDATE records SET payload = '{"file":"innocent.mp4","i":4}' WHERE seq = 5""")
        _rehash(conn, 5)
    problems = _problems(db, trusted)
    assert "checkpoint 1: signs hash" in problems and "for record 10" in problems
    assert "prev_hash" not in problems and "do not match" not in problems


def test_deleted_record_is_detected(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with _raw(db) as conn:
        conn.execute("DELETE FROM records WHERE seq = 12")
    problems = _problems(db, trusted)
    assert "record 12 missing (deleted?)" in problems
    assert "checkpoint 2: signs 20 records up to seq 20, the log has 19" in problems


def test_deleted_and_renumbered_records_are_detected(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with _raw(db) as conn:
        conn.execute("DELETE FROM records WHERE seq = 12")
        for seq in range(13, 26):  # close the gap
            conn.execute("UPDATE records SET seq = ? WHERE seq = ?", (seq - 1, seq))
    problems = _problems(db, trusted)
    assert "record 12: its contents do not match its hash" in problems
    assert "log truncated: signed checkpoint 3 covers 25 records up to seq 25, but the log ends at seq 24" in problems


def test_inserted_record_is_detected(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with _raw(db) as conn:
        rows = conn.execute("SELECT seq, time_ns, kind, payload, prev_hash, hash FROM records WHERE seq >= 8 "
                            "ORDER BY seq DESC").fetchall()
        for row in rows:  # make room at seq 8, from the end so that seq stays unique
            conn.execute("UPDATE records SET seq = ? WHERE seq = ?", (row[0] + 1, row[0]))
        prev = conn.execute("SELECT hash FROM records WHERE seq = 7").fetchone()[0]
        payload = {"file": "forged.mp4", "i": -1}
        time_ns = rows[-1][1] - 1
        conn.execute("INSERT INTO records VALUES (8, ?, 'export', ?, ?, ?)",
                     (time_ns, json.dumps(payload), prev, _hash(8, time_ns, "export", payload, prev)))
    problems = _problems(db, trusted)
    assert "record 9: its contents do not match its hash" in problems  # old record 8 under a new seq


def test_inserted_record_with_rewritten_chain_is_detected(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with _raw(db) as conn:
        for seq in range(25, 7, -1):
            conn.execute("UPDATE records SET seq = ? WHERE seq = ?", (seq + 1, seq))
        conn.execute("""INSERT INTO records VALUES (8, 1, 'export', '{"i":-1}', '', '')""")
        _rehash(conn, 8)
    problems = _problems(db, trusted)
    assert "checkpoint 1: signs hash" in problems
    assert "checkpoint 1: signs 10 records up to seq 10, the log has 10" not in problems


def test_reordered_records_are_detected(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with _raw(db) as conn:
        conn.execute("UPDATE records SET seq = -1 WHERE seq = 14")
        conn.execute("UPDATE records SET seq = 14 WHERE seq = 15")
        conn.execute("UPDATE records SET seq = 15 WHERE seq = -1")
    problems = _problems(db, trusted)
    assert "record 14: its contents do not match its hash" in problems
    assert "record 15: its contents do not match its hash" in problems


def test_truncation_before_the_last_checkpoint_is_detected(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with _raw(db) as conn:
        conn.execute("DELETE FROM records WHERE seq > 17")
    problems = _problems(db, trusted)
    assert "log truncated: signed checkpoint 2 covers 20 records up to seq 20, but the log ends at seq 17" in problems
    assert "log truncated: signed checkpoint 3" in problems


def test_truncation_after_the_last_checkpoint_is_only_noted(tmp_path, signer, trusted):
    """The documented limit: unsigned records can go without a trace; the report says how many are exposed."""
    db = tmp_path / "audit.db"
    _fill(db, signer, 25, close=False)  # a writer that died: checkpoints at 10 and 20 only
    with _raw(db) as conn:
        conn.execute("DELETE FROM records WHERE seq > 22")
    report = verify_log(db, trusted)
    assert report.ok
    assert any("21..22 come after the last signed checkpoint" in note for note in report.notes)


def test_forged_or_untrusted_checkpoints_are_detected(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 15)
    with _raw(db) as conn:
        body = conn.execute("SELECT body FROM checkpoints WHERE id = 1").fetchone()[0]
        conn.execute("UPDATE checkpoints SET body = ? WHERE id = 1", (body.replace('"records":10', '"records":9'),))
    assert "checkpoint 1 (seq 10): its signature does not verify" in _problems(db, trusted)
    other = generate_identity("someone else")
    assert "which is not trusted here" in _problems(db, {other.key_id: other.public_key})


def test_removed_checkpoint_is_detected(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with _raw(db) as conn:
        conn.execute("DELETE FROM checkpoints WHERE id = 2")
    assert "checkpoint 3: does not link to the checkpoint before it" in _problems(db, trusted)


def test_secrets_and_bad_kinds_are_refused(tmp_path, signer):
    with AuditLog(tmp_path / "audit.db", signer) as log:
        with pytest.raises(InputError, match="secrets never go into the audit log"):
            log.append("sign", {"key": {"passphrase": "hunter2"}})
        pem = signer.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()).decode()
        with pytest.raises(InputError, match="holds a private key"):
            log.append("sign", {"note": pem})
        with pytest.raises(InputError, match="lower-case slug"):
            log.append("Export; DROP TABLE", {})
        with pytest.raises(InputError, match="JSON-serialisable"):
            log.append("export", {"x": float("nan")})
        assert log.records() == []


def test_not_an_audit_log(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="junk.db"):
        AuditLog(junk)
    with pytest.raises(InputError, match="no such file"):
        verify_log(tmp_path / "missing.db", {})


# -- real processes -------------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys
    from facewire.trust.audit import AuditLog
    from facewire.trust.keys import Identity, load_private_key
    signer = Identity("writer", load_private_key(sys.argv[2]))
    log = AuditLog(sys.argv[1], signer, checkpoint_every=7)
    for i in range(int(sys.argv[3])):
        record = log.append("export", {"i": i, "writer": sys.argv[4]})
        print(record.seq, flush=True)  # only after the commit returned
    log.close()
""")


@pytest.fixture
def key_file(tmp_path, signer):
    path = tmp_path / "writer.key.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(signer.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    return path


def test_sigkill_mid_burst_loses_no_committed_record(tmp_path, key_file, signer, trusted):
    db = tmp_path / "audit.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(key_file), "1000000", "w"],
                            stdout=subprocess.PIPE, text=True)
    committed = []
    try:
        for line in proc.stdout:
            committed.append(int(line))
            if len(committed) >= 60:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
    committed += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL
    assert len(committed) >= 60

    report = verify_log(db, trusted)
    assert report.ok, report.problems
    conn = sqlite3.connect(db)
    stored = dict(conn.execute("SELECT seq, payload FROM records").fetchall())
    for seq in committed:
        assert json.loads(stored[seq])["i"] == seq - 1
    assert report.last_seq >= committed[-1]
    assert report.last_seq <= committed[-1] + 1  # at most the one whose commit was not yet reported

    with AuditLog(db, signer, checkpoint_every=7) as log:  # the log goes on after the crash
        assert log.append("session-start", {}).seq == report.last_seq + 1
    assert verify_log(db, trusted).ok


def test_concurrent_writers_share_one_chain(tmp_path, key_file, trusted):
    db = tmp_path / "audit.db"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(key_file), "40", name],
                              stdout=subprocess.PIPE, text=True) for name in ("a", "b", "c")]
    seqs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        seqs += [int(x) for x in out.split()]
    assert sorted(seqs) == list(range(1, 121))
    report = verify_log(db, trusted)
    assert report.ok, report.problems
    assert report.records == 120 and report.signed_seq == 120
    writers = [json.loads(p)["writer"] for (p,) in sqlite3.connect(db).execute("SELECT payload FROM records")]
    assert sorted(set(writers)) == ["a", "b", "c"] and writers.count("a") == 40


def test_rollback_is_detected_only_against_a_saved_checkpoint(tmp_path, signer, trusted):
    db = tmp_path / "audit.db"
    _fill(db, signer, 25)
    with AuditLog(db, signer) as log:
        anchor = log.checkpoints()[-1].body  # kept elsewhere by a careful operator
    with _raw(db) as conn:  # remove the newest checkpoints together with the records they cover
        conn.execute("DELETE FROM records WHERE seq > 15")
        conn.execute("DELETE FROM checkpoints WHERE id >= 2")
    assert verify_log(db, trusted).ok  # the documented limit: a consistent older log
    report = verify_log(db, trusted, [anchor])
    assert report.problems == (("log rolled back or truncated: the saved checkpoint covers records up to seq 25, "
                               "but the log ends at seq 15"),)


def test_home_log_signs_only_with_the_home_identity(tmp_path, signer):
    from facewire.trust.audit import home_log
    from facewire.trust.keys import save_identity
    from facewire.trust.store import TrustHome

    home = TrustHome(tmp_path / "home")
    save_identity(signer, home)
    with home_log(home.root, signer) as log:
        log.append("session-start", {"context": "telepresence"})
    with home_log(home.root, generate_identity("stranger")) as log:
        log.append("session-stop", {"frames": 1})
        assert log.signer is None
        report = log.verify()
    assert report.ok and report.checkpoints == 1 and report.signed_seq == 1


# -- review findings (issue 8) ------------------------------------------------------------------------
def test_grant_tokens_are_refused_as_secrets(tmp_path, signer):
    """A consent grant works for whoever holds it: the log names it by id or digest, never in full."""
    from facewire.trust.consent import issue_grant, likeness_reference

    token = issue_grant(signer, subject="alice", likeness=likeness_reference(b"alice"), contexts=["telepresence"])
    with AuditLog(tmp_path / "audit.db", signer) as log:
        with pytest.raises(InputError, match=r"payload\.grant: holds a signed token"):
            log.append("session-start", {"grant": token})
        with pytest.raises(InputError, match=r"payload\.notes\[0\]: holds a signed token"):
            log.append("session-start", {"notes": [f"checked {token} just now"]})
        assert log.records() == []
        digest = hashlib.sha256(token.encode()).hexdigest()
        log.append("consent-check", {"jti": "g-0123456789abcdef", "token_sha256": digest, "note": "a.b.c"})
        assert len(log.records()) == 1


def test_a_grant_signers_key_cannot_vouch_for_the_home_audit_log(tmp_path, signer):
    """Keys trusted for consent grants (likeness owners) are not trusted for audit checkpoints."""
    from facewire.trust.audit import checkpoint_keys, home_log
    from facewire.trust.keys import save_identity, trust_public_key
    from facewire.trust.store import TrustHome

    home = TrustHome(tmp_path / "home")
    save_identity(signer, home)
    owner = generate_identity("alice")
    pub = tmp_path / "alice.pub.pem"
    pub.write_bytes(owner.public_key.pem())
    trust_public_key(home, pub)  # alice's grants verify here from now on
    with AuditLog(home.audit_db, owner, checkpoint_every=5) as forged:  # someone holding alice's key rewrites it
        for i in range(5):
            forged.append("export", {"i": i})
    assert set(checkpoint_keys(home.root)) == {signer.key_id}
    with home_log(home.root) as log:
        report = log.verify()
    assert not report.ok
    assert any(f"signed by key {owner.key_id}, which is not trusted here" in p for p in report.problems)
    with home_log(home.root, owner) as log:  # and alice's identity signs no checkpoint in this home
        assert log.signer is None
