"""The audit log: an append-only, hash-chained SQLite record of sessions, consent checks, exports and signing.

Every record holds ``seq`` (1, 2, 3, … without gaps), ``time_ns`` (wall clock, UTC), ``kind``, a
JSON ``payload``, ``prev_hash`` and ``hash`` = SHA-256 of the canonical JSON (sorted keys, no
spaces, UTF-8) of ``{"seq", "time_ns", "kind", "payload", "prev_hash"}``. The first record's
``prev_hash`` is SHA-256 of ``"facewire-audit-v1|" + log id`` (a random id kept in the ``meta``
table), so records cannot be spliced in from another log. Each append is one ``BEGIN IMMEDIATE``
transaction in WAL mode with ``synchronous=FULL``: several processes may append, and a record
whose ``append`` returned survives a crash of the process (and, with FULL, of the machine).

Every ``checkpoint_every`` records, and when the log is closed, a log with a ``signer`` writes a
**checkpoint**: the canonical JSON ``{"v", "log", "seq", "hash", "records", "time_ns", "key_id",
"prev"}`` (``records`` = how many records up to ``seq``; ``prev`` = SHA-256 of the previous
checkpoint's body, so checkpoints form their own chain) signed with Ed25519.

What :meth:`AuditLog.verify` detects:

* an **edited** record (its hash no longer matches, or, if the editor recomputed that hash, the
  next record's ``prev_hash`` no longer links; if the editor rewrote the whole chain after it, the
  hash a signed checkpoint holds no longer matches);
* a **deleted** record (a gap in ``seq`` and a broken link), an **inserted** one (a broken link or,
  after renumbering and rehashing, a checkpoint mismatch) and **reordered** records (broken links);
* a **truncated** log: a signed checkpoint names a ``seq`` (and a record count) beyond the last
  record that is left.

What it cannot detect: records *after the last checkpoint* are protected only by the hash chain,
which anyone with write access can recompute, so removing them (truncation after the last
checkpoint) or appending forged records there goes unnoticed — the report says how many such
unsigned records there are. Removing the newest checkpoints *together with* the records they cover
rolls the log back to an earlier consistent state; only a copy of the latest checkpoint kept
elsewhere (``facewire audit show --checkpoints``, given back as ``audit verify --anchor FILE``)
detects that. A cleanly closed log ends with a
checkpoint, so only the records of a process that died since its last checkpoint are exposed.
Deleting *every* checkpoint and rewriting the chain is the extreme case of that rollback: the
report then says only that no checkpoint signs the records, and again only a saved anchor catches it.
Triggers refuse ``UPDATE``/``DELETE`` through SQLite as a guard against accidents, not attackers.

A trust home's log (`home_log`) accepts checkpoints signed by the home's own identity only
(`checkpoint_keys`), not by the keys it trusts for consent grants. Payloads refuse secrets: keys
named like passphrases or private keys, PEM private keys, and signed tokens (grants and
attestations work for whoever holds them, so records name them by ``jti`` or SHA-256). The file
and its WAL are created 0600.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

from ..errors import InputError, OutputError
from .keys import PublicKey

__all__ = [
    "AUDIT_KINDS",
    "AuditLog",
    "AuditRecord",
    "AuditReport",
    "Checkpoint",
    "Signer",
    "canonical_json",
    "checkpoint_keys",
    "format_records",
    "home_log",
    "read_log",
    "verify_log",
]

AUDIT_KINDS: Mapping[str, str] = {
    "session-start": "a live or file session began (what is animated, in which context)",
    "session-stop": "a session ended (frames, duration)",
    "consent-check": "a consent grant or attestation was checked: granted or refused, and why",
    "export": "an output (video, image, take) was written",
    "sign": "something was signed: a consent grant, an attestation, a C2PA manifest",
    "revoke": "a consent grant was revoked",
    "key-init": "an identity was created in the trust home",
}
"""Known record kinds and what they mean. Other kinds are allowed if they are lower-case slugs."""

DEFAULT_CHECKPOINT_EVERY = 100
_DOMAIN = b"facewire-audit-checkpoint-v1\n"  # a checkpoint signature can never be mistaken for another
_KIND_RE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_SECRET_KEYS = ("passphrase", "password", "secret", "private_key", "privatekey", "private-key")
_MAX_PROBLEMS = 50
# a compact JWS (a consent grant or attestation) or a cut-off piece of one: header and claims are base64url
# JSON objects, so both begin "eyJ" ('{"'). A grant works for whoever holds it: only its id or digest is logged
_JWS_RE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL, signature BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS records_append_only_u BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_append_only_d BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_u BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_d BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class Signer(Protocol):
    """What signs checkpoints: `facewire.trust.keys.Identity` is one."""

    @property
    def key_id(self) -> str: ...

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, data: bytes) -> bytes: ...


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that is hashed: sorted keys, no spaces, no NaN, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _genesis(log_id: str) -> str:
    return _sha256(f"facewire-audit-v1|{log_id}")


def _record_hash(seq: int, time_ns: int, kind: str, payload: Any, prev_hash: str) -> str:
    return _sha256(canonical_json({"seq": seq, "time_ns": time_ns, "kind": kind, "payload": payload,
                                   "prev_hash": prev_hash}))


def _iso(time_ns: int) -> str:
    return dt.datetime.fromtimestamp(time_ns / 1e9, dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AuditRecord:
    """One record as stored; ``payload`` is parsed from ``payload_json`` on each access."""

    seq: int
    time_ns: int
    kind: str
    payload_json: str
    prev_hash: str
    hash: str

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.payload_json)

    @property
    def time_iso(self) -> str:
        return _iso(self.time_ns)


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "the log held ``records`` records, the last being ``seq`` with ``hash``"."""

    seq: int
    hash: str
    records: int
    time_ns: int
    key_id: str
    body: str
    signature: bytes


@dataclass(frozen=True)
class AuditReport:
    """What `AuditLog.verify` found: ``problems`` (tampering; empty when the log verifies) and ``notes``
    (limits of what could be checked, such as records not yet covered by a signed checkpoint)."""

    path: str
    records: int
    last_seq: int
    checkpoints: int
    signed_seq: int
    problems: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        state = "verifies" if self.ok else f"FAILS ({len(self.problems)} problem(s))"
        return (f"audit log {self.path}: {state}: {self.records} records (last seq {self.last_seq}), "
                f"{self.checkpoints} signed checkpoint(s) covering seq ≤ {self.signed_seq}")


def _check_payload(payload: Mapping[str, Any]) -> str:
    """Canonical JSON of ``payload``, refusing anything that looks like a secret."""
    if not isinstance(payload, Mapping):
        raise InputError(f"audit payload: expected a mapping, got {type(payload).__name__}")

    def walk(value: Any, where: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InputError(f"audit payload {where}: expected string keys, got {key!r}")
                if any(word in key.lower() for word in _SECRET_KEYS):
                    raise InputError(f"audit payload {where}.{key}: secrets never go into the audit log")
                walk(item, f"{where}.{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")
        elif isinstance(value, str) and "PRIVATE KEY" in value:
            raise InputError(f"audit payload {where}: holds a private key; secrets never go into the audit log")
        elif isinstance(value, str) and _JWS_RE.search(value):
            raise InputError(f"audit payload {where}: holds a signed token (a grant works for whoever holds it); "
                             "log its id ('jti') or SHA-256 instead: secrets never go into the audit log")

    walk(payload, "payload")
    try:
        return canonical_json(dict(payload))
    except (TypeError, ValueError) as exc:
        raise InputError(f"audit payload: expected JSON-serialisable values, got {exc}") from exc


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    try:
        if readonly:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0,
                                   isolation_level=None, check_same_thread=False)
        else:
            from .store import private_db

            private_db(path)  # 0600 before SQLite makes it (and its -wal): records name people and files
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error as exc:
        raise InputError(f"audit log {path}: cannot open it as SQLite ({exc})") from exc
    return conn


class AuditLog:
    """An audit log file, opened for appending (and verifying). Use it as a context manager; closing
    writes a final signed checkpoint when there is a ``signer``.

    ``trusted_keys`` (key id → `PublicKey`) are the keys whose checkpoint signatures `verify`
    accepts; by default the signer's own public key.
    """

    def __init__(self, path: str | os.PathLike[str], signer: Signer | None = None, *,
                 checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
                 trusted_keys: Mapping[str, PublicKey] | None = None) -> None:
        if checkpoint_every < 1:
            raise InputError(f"checkpoint_every: expected ≥ 1, got {checkpoint_every}")
        self.path = Path(path)
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        if trusted_keys is None:
            trusted_keys = {signer.key_id: signer.public_key} if signer is not None else {}
        self.trusted_keys = dict(trusted_keys)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.path.parent}: {exc.strerror or exc}") from exc
        self._conn: sqlite3.Connection | None = _connect(self.path, readonly=False)
        try:
            # one script, one transaction: two processes creating the same log agree on one log id
            self._conn.executescript(
                "BEGIN IMMEDIATE;" + _SCHEMA
                + f"INSERT OR IGNORE INTO meta(key, value) VALUES ('log_id', '{uuid.uuid4().hex}');"
                + "INSERT OR IGNORE INTO meta(key, value) VALUES ('format', 'facewire-audit-v1');COMMIT;")
            self.log_id = self._meta_log_id(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            self._conn = None
            raise InputError(f"audit log {self.path}: not a facewire audit log ({exc})") from exc

    @staticmethod
    def _meta_log_id(conn: sqlite3.Connection) -> str:
        row = conn.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()
        if row is None:
            raise InputError("audit log: its log id is missing (not a facewire audit log?)")
        return str(row[0])

    # -- writing ---------------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise InputError(f"audit log {self.path} is closed")
        return self._conn

    def append(self, kind: str, payload: Mapping[str, Any] | None = None) -> AuditRecord:
        """Append one record in its own transaction; returns it once it is committed."""
        if not isinstance(kind, str) or not _KIND_RE.match(kind):
            raise InputError(f"audit record kind: expected a lower-case slug such as 'export', got {kind!r}")
        payload_json = _check_payload(payload or {})
        payload_obj = json.loads(payload_json)
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")  # takes the write lock now, so seq and prev_hash cannot race
            try:
                row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, _genesis(self.log_id))
                time_ns = time.time_ns()
                digest = _record_hash(seq, time_ns, kind, payload_obj, prev)
                conn.execute("INSERT INTO records(seq, time_ns, kind, payload, prev_hash, hash) VALUES (?,?,?,?,?,?)",
                             (seq, time_ns, kind, payload_json, prev, digest))
                if self.signer is not None and seq % self.checkpoint_every == 0:
                    self._write_checkpoint(conn, seq, digest)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return AuditRecord(seq, time_ns, kind, payload_json, prev, digest)

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current end of the log now (no-op without a signer or when already signed)."""
        if self.signer is None:
            return None
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
                last = conn.execute("SELECT MAX(seq) FROM checkpoints").fetchone()[0] or 0
                made = self._write_checkpoint(conn, row[0], row[1]) if row and row[0] > last else None
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return made

    def _write_checkpoint(self, conn: sqlite3.Connection, seq: int, digest: str) -> Checkpoint:
        assert self.signer is not None
        count = conn.execute("SELECT COUNT(*) FROM records WHERE seq <= ?", (seq,)).fetchone()[0]
        prev_row = conn.execute("SELECT body FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        time_ns = time.time_ns()
        body = canonical_json({"v": 1, "log": self.log_id, "seq": seq, "hash": digest, "records": count,
                               "time_ns": time_ns, "key_id": self.signer.key_id,
                               "prev": _sha256(prev_row[0]) if prev_row else ""})
        signature = self.signer.sign(_DOMAIN + body.encode("utf-8"))
        conn.execute("INSERT INTO checkpoints(seq, body, signature) VALUES (?,?,?)", (seq, body, signature))
        return Checkpoint(seq, digest, count, time_ns, self.signer.key_id, body, signature)

    def close(self) -> None:
        """Write a final checkpoint (with a signer) and close; closing twice is harmless."""
        if self._conn is None:
            return
        try:
            self.checkpoint()
        finally:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------------
    def records(self, kind: str | None = None, last: int | None = None) -> list[AuditRecord]:
        with self._lock:
            return _records(self._db(), kind, last)

    def checkpoints(self) -> list[Checkpoint]:
        with self._lock:
            return _checkpoints(self._db())

    def verify(self, trusted_keys: Mapping[str, PublicKey] | None = None, anchors: Sequence[str] = ()) -> AuditReport:
        """Check the whole log against its hash chain, its signed checkpoints and ``anchors`` (see `verify_log`)."""
        with self._lock:
            keys = self.trusted_keys if trusted_keys is None else trusted_keys
            return _verify(self._db(), str(self.path), keys, anchors)


def _records(conn: sqlite3.Connection, kind: str | None, last: int | None) -> list[AuditRecord]:
    query, params = "SELECT seq, time_ns, kind, payload, prev_hash, hash FROM records", []
    if kind:
        query += " WHERE kind = ?"
        params.append(kind)
    query += " ORDER BY seq DESC" if last else " ORDER BY seq"
    if last:
        query += " LIMIT ?"
        params.append(int(last))
    rows = [AuditRecord(*row) for row in conn.execute(query, params)]
    return rows[::-1] if last else rows


def _checkpoints(conn: sqlite3.Connection) -> list[Checkpoint]:
    out = []
    for seq, body, signature in conn.execute("SELECT seq, body, signature FROM checkpoints ORDER BY id"):
        try:
            data = json.loads(body)
            out.append(Checkpoint(int(data["seq"]), str(data["hash"]), int(data["records"]), int(data["time_ns"]),
                                  str(data["key_id"]), body, bytes(signature)))
        except (ValueError, KeyError, TypeError):
            out.append(Checkpoint(int(seq), "", -1, 0, "", body, bytes(signature or b"")))
    return out


def _parse_anchor(text: str) -> tuple[str, int, str]:
    try:
        data = json.loads(text)
        return str(data["log"]), int(data["seq"]), str(data["hash"])
    except (ValueError, KeyError, TypeError):
        raise InputError("audit anchor: expected a checkpoint line as 'facewire audit show --checkpoints' prints it, "
                         f"got {text[:60]!r}") from None


def _verify(conn: sqlite3.Connection, label: str, trusted: Mapping[str, PublicKey],
            anchors: Sequence[str] = ()) -> AuditReport:
    problems: list[str] = []
    notes: list[str] = []

    def problem(text: str) -> None:
        problems.append(text)

    conn.execute("BEGIN")  # one consistent snapshot while other processes append
    try:
        try:
            log_id = AuditLog._meta_log_id(conn)
            rows = conn.execute("SELECT seq, time_ns, kind, payload, prev_hash, hash FROM records ORDER BY seq")
            checkpoint_rows = conn.execute("SELECT id, seq, body, signature FROM checkpoints ORDER BY id").fetchall()
            parsed_anchors = [_parse_anchor(a) for a in anchors]
            wanted = {int(r[1]) for r in checkpoint_rows} | {seq for _, seq, _ in parsed_anchors}
            hash_at: dict[int, str] = {}
            expected, prev, count, last_seq = 1, _genesis(log_id), 0, 0
            for seq, time_ns, kind, payload_json, prev_hash, digest in rows:
                count += 1
                gap = seq != expected
                if gap:
                    span = f"record {expected}" if seq == expected + 1 else f"records {expected}..{seq - 1}"
                    problem(f"{span} missing (deleted?): record {seq} follows record {expected - 1}")
                try:
                    payload = json.loads(payload_json)
                    recomputed = _record_hash(seq, time_ns, kind, payload, prev_hash)
                except (TypeError, ValueError):
                    recomputed = None
                if recomputed != digest:
                    problem(f"record {seq}: its contents do not match its hash (edited?)")
                elif prev_hash != prev and not gap:
                    problem(f"record {seq}: prev_hash does not link to record {seq - 1} "
                            f"(a record before it was inserted, deleted, reordered or rewritten)")
                if seq in wanted:
                    hash_at[seq] = digest
                prev, expected, last_seq = digest, seq + 1, seq
        except sqlite3.DatabaseError as exc:
            raise InputError(f"audit log {label}: not a facewire audit log ({exc})") from exc
    finally:
        conn.execute("COMMIT")

    signed_seq, prev_body, n_checkpoints = 0, "", 0
    for cid, seq, body, signature in checkpoint_rows:
        n_checkpoints += 1
        try:
            data = json.loads(body)
            cp_seq, cp_hash, cp_records = int(data["seq"]), str(data["hash"]), int(data["records"])
            key_id, cp_log, cp_prev = str(data["key_id"]), str(data["log"]), str(data["prev"])
        except (ValueError, KeyError, TypeError):
            problem(f"checkpoint {cid}: unreadable body")
            prev_body = body
            continue
        key = trusted.get(key_id)
        if key is None:
            problem(f"checkpoint {cid} (seq {cp_seq}): signed by key {key_id}, which is not trusted here "
                    f"(give its public key with --key)")
        elif not key.verify(bytes(signature or b""), _DOMAIN + body.encode("utf-8")):
            problem(f"checkpoint {cid} (seq {cp_seq}): its signature does not verify (forged or edited)")
        if cp_seq != seq:
            problem(f"checkpoint {cid}: stored seq {seq} differs from the signed seq {cp_seq}")
        if cp_log != log_id:
            problem(f"checkpoint {cid}: signed for log {cp_log}, but this log is {log_id}")
        if cp_prev != (_sha256(prev_body) if prev_body else ""):
            problem(f"checkpoint {cid}: does not link to the checkpoint before it (one was removed or inserted)")
        prev_body = body
        if cp_seq > last_seq:
            problem(f"log truncated: signed checkpoint {cid} covers {cp_records} records up to seq {cp_seq}, "
                    f"but the log ends at seq {last_seq}")
        elif hash_at.get(cp_seq) is None:
            pass  # the record is missing: already reported as a gap
        elif hash_at[cp_seq] != cp_hash:
            problem(f"checkpoint {cid}: signs hash {cp_hash[:16]}… for record {cp_seq}, but that record now "
                    f"hashes to {hash_at[cp_seq][:16]}… (records up to it were rewritten)")
        if cp_seq <= last_seq:
            n = conn.execute("SELECT COUNT(*) FROM records WHERE seq <= ?", (cp_seq,)).fetchone()[0]
            if n != cp_records:
                problem(f"checkpoint {cid}: signs {cp_records} records up to seq {cp_seq}, the log has {n}")
        signed_seq = max(signed_seq, cp_seq)

    for anchor_log, anchor_seq, anchor_hash in parsed_anchors:
        if anchor_log != log_id:
            problem(f"the saved checkpoint is for log {anchor_log}, but this log is {log_id}")
        elif anchor_seq > last_seq:
            problem(f"log rolled back or truncated: the saved checkpoint covers records up to seq {anchor_seq}, "
                    f"but the log ends at seq {last_seq}")
        elif anchor_seq in hash_at and hash_at[anchor_seq] != anchor_hash:
            problem(f"the saved checkpoint signs hash {anchor_hash[:16]}… for record {anchor_seq}, but that "
                    f"record now hashes to {hash_at[anchor_seq][:16]}… (the log was rewritten)")
    if not trusted and checkpoint_rows:
        notes.append("no trusted key was given, so no checkpoint signature could be checked")
    if count and not checkpoint_rows:
        notes.append(f"no signed checkpoint: the {count} records are protected by the hash chain only, which "
                     f"does not detect a rewritten chain or a truncation")
    elif last_seq > signed_seq:
        notes.append(f"records {signed_seq + 1}..{last_seq} come after the last signed checkpoint: an edit among "
                     f"them is detected, but their removal (truncation) or forged appends after them are not")
    if len(problems) > _MAX_PROBLEMS:
        problems = problems[:_MAX_PROBLEMS] + [f"… and {len(problems) - _MAX_PROBLEMS} more problems"]
    return AuditReport(label, count, last_seq, n_checkpoints, signed_seq, tuple(problems), tuple(notes))


def verify_log(path: str | os.PathLike[str], trusted_keys: Mapping[str, PublicKey],
               anchors: Sequence[str] = ()) -> AuditReport:
    """Verify the audit log at ``path`` without writing to it. ``anchors`` are checkpoint bodies saved
    elsewhere earlier (``facewire audit show --checkpoints``): the log must still contain their records,
    which detects a rollback that removed the newest checkpoints together with their records."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"audit log {path}: no such file")
    conn = _connect(path, readonly=True)
    try:
        return _verify(conn, str(path), trusted_keys, anchors)
    finally:
        conn.close()


def read_log(path: str | os.PathLike[str], kind: str | None = None,
             last: int | None = None) -> tuple[list[AuditRecord], list[Checkpoint]]:
    """The records (filtered by ``kind``, the ``last`` N) and checkpoints of the log at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"audit log {path}: no such file")
    conn = _connect(path, readonly=True)
    try:
        return _records(conn, kind, last), _checkpoints(conn)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"audit log {path}: not a facewire audit log ({exc})") from exc
    finally:
        conn.close()


def checkpoint_keys(home: str | os.PathLike[str] | None = None,
                    extra: Sequence[PublicKey] = ()) -> dict[str, PublicKey]:
    """The keys whose checkpoint signatures a trust home's audit log accepts: its own identity (the only
    key that signs them) and ``extra`` (e.g. ``audit verify --key``), *not* the keys trusted for consent
    grants: a likeness owner's key must not be able to vouch for a rewritten log."""
    from .keys import load_public_key
    from .store import trust_home

    place = trust_home(home)
    keys: dict[str, PublicKey] = {}
    if place.public_key_file.exists():
        own = load_public_key(place.public_key_file)
        keys[own.key_id] = own
    for public in extra:
        keys[public.key_id] = public
    return keys


def home_log(home: str | os.PathLike[str] | None = None, signer: Signer | None = None, **kwargs: Any) -> AuditLog:
    """The trust home's audit log (``--home``, else ``$FACEWIRE_HOME``, else the user data dir), trusting
    the home's own identity for checkpoints (see `checkpoint_keys`). A ``signer`` that is not the home's
    own identity signs no checkpoints."""
    from .store import trust_home

    place = trust_home(home).ensure()
    keys = checkpoint_keys(place.root)
    if signer is not None and signer.key_id not in keys:
        signer = None
    return AuditLog(place.audit_db, signer, trusted_keys=keys, **kwargs)


def format_records(records: Sequence[AuditRecord]) -> list[str]:
    """One line per record, for ``facewire audit show``."""
    return [f"{r.seq:>6}  {r.time_iso}  {r.kind:<14} {r.payload_json}" for r in records]
