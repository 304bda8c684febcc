"""The batch manifest: one SQLite row per item — input hash, parameters hash, status, outputs,
attempts, error, timings — so that a re-run knows what is done and a crash loses nothing.

SQLite in WAL mode with ``synchronous=NORMAL``: every committed update survives the driver being
killed outright (SIGKILL); only a power cut may lose the last few commits, which a re-run redoes.
Only the driver writes it; readers (a progress watcher, a test) may read while it runs. A lock file
beside it keeps a second driver off the same manifest.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Self

from ..errors import InputError, OutputError

__all__ = ["STATUSES", "Manifest", "Record"]

STATUSES = ("pending", "running", "done", "failed")
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    input TEXT NOT NULL,
    input_sha256 TEXT,
    input_size INTEGER,
    input_mtime_ns INTEGER,
    params_sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    outputs TEXT NOT NULL DEFAULT '[]',
    output_sizes TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    worker TEXT,
    queued_at REAL,
    started_at REAL,
    finished_at REAL,
    compute_s REAL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS items_status ON items (status);
"""


@dataclass(frozen=True)
class Record:
    """One item's row. Times are wall-clock seconds (``time.time()``); ``compute_s`` is the
    worker's own time on its last attempt."""

    kind: str
    id: str
    input: str
    input_sha256: str | None
    input_size: int | None
    input_mtime_ns: int | None
    params_sha256: str
    status: str
    outputs: tuple[str, ...]
    output_sizes: tuple[int, ...]
    attempts: int
    error: str | None
    worker: str | None
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    compute_s: float | None

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Record:
        d = dict(row)
        d["outputs"] = tuple(json.loads(d["outputs"]))
        d["output_sizes"] = tuple(json.loads(d["output_sizes"]))
        return cls(**d)

    def outputs_present(self) -> bool:
        """Every recorded output exists with its recorded size."""
        if not self.outputs or len(self.outputs) != len(self.output_sizes):
            return False
        for path, size in zip(self.outputs, self.output_sizes):
            try:
                if os.stat(path).st_size != size:
                    return False
            except OSError:
                return False
        return True


class Manifest:
    """The manifest file at ``path`` (created with its folder). Use as a context manager; with
    ``lock=True`` (the driver) a second writer is refused with `OutputError`."""

    def __init__(self, path: str | os.PathLike[str], *, lock: bool = False) -> None:
        self.path = os.fspath(path)
        self._lock_fd: int | None = None
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            if lock:
                self._lock()
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            version = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except OutputError:  # the lock's own refusal (an OSError too): already says what is wrong
            self._unlock()
            raise
        except sqlite3.DatabaseError as exc:
            self._unlock()
            raise InputError(f"manifest {self.path}: not a facewire batch manifest ({exc})") from exc
        except OSError as exc:
            self._unlock()
            raise OutputError(f"manifest {self.path}: cannot open it ({exc.strerror or exc})") from exc
        if version is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif version[0] != str(SCHEMA_VERSION):
            self.close()
            raise InputError(f"manifest {self.path}: schema {version[0]}, this facewire reads {SCHEMA_VERSION}")

    def _lock(self) -> None:
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputError(f"manifest {self.path}: another batch is running on it (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # closing drops the flock; the file stays (harmless)
            self._lock_fd = None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._unlock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # disk full, read-only, locked for 30 s
            raise OutputError(f"manifest {self.path}: cannot write it ({exc})") from exc

    # -- reading ------------------------------------------------------------------------------
    def get(self, kind: str, item_id: str) -> Record | None:
        row = self._db.execute("SELECT * FROM items WHERE kind=? AND id=?", (kind, item_id)).fetchone()
        return Record._from_row(row) if row is not None else None

    def records(self, status: str | None = None) -> list[Record]:
        if status is not None and status not in STATUSES:
            raise InputError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")
        query = "SELECT * FROM items" + (" WHERE status=?" if status else "") + " ORDER BY kind, id"
        return [Record._from_row(r) for r in self._db.execute(query, (status,) if status else ())]

    def counts(self) -> dict[str, int]:
        """How many items have each status (every status present, 0 if none)."""
        got = dict(self._db.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall())
        return {s: int(got.get(s, 0)) for s in STATUSES}

    # -- writing ------------------------------------------------------------------------------
    def queue(self, kind: str, item_id: str, input_path: str, params_sha256: str, *, input_sha256: str | None,
              input_size: int | None, input_mtime_ns: int | None) -> None:
        """Record an item as pending (new, changed, or to be redone); attempts count from 0 again."""
        now = time.time()
        with self._write() as db:
            db.execute(
                """INSERT INTO items (kind, id, input, input_sha256, input_size, input_mtime_ns, params_sha256,
                                      status, queued_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)
                   ON CONFLICT (kind, id) DO UPDATE SET
                       attempts = 0,
                       input = excluded.input, input_sha256 = excluded.input_sha256,
                       input_size = excluded.input_size, input_mtime_ns = excluded.input_mtime_ns,
                       params_sha256 = excluded.params_sha256, status = 'pending', error = NULL,
                       queued_at = excluded.queued_at, started_at = NULL, finished_at = NULL""",
                (kind, item_id, input_path, input_sha256, input_size, input_mtime_ns, params_sha256, now))

    def started(self, kind: str, item_id: str, attempt: int) -> None:
        with self._write() as db:
            db.execute("UPDATE items SET status='running', attempts=?, started_at=? WHERE kind=? AND id=?",
                       (attempt, time.time(), kind, item_id))

    def done(self, kind: str, item_id: str, outputs: Sequence[str], output_sizes: Sequence[int], *,
             attempts: int, compute_s: float | None, worker: str | None) -> None:
        with self._write() as db:
            db.execute("""UPDATE items SET status='done', outputs=?, output_sizes=?, attempts=?, error=NULL,
                                 compute_s=?, worker=?, finished_at=? WHERE kind=? AND id=?""",
                       (json.dumps(list(outputs)), json.dumps([int(s) for s in output_sizes]), attempts,
                        compute_s, worker, time.time(), kind, item_id))

    def failed(self, kind: str, item_id: str, error: str, *, attempts: int, compute_s: float | None = None,
               worker: str | None = None) -> None:
        with self._write() as db:
            db.execute("""UPDATE items SET status='failed', error=?, attempts=?, compute_s=?, worker=?,
                                 finished_at=? WHERE kind=? AND id=?""",
                       (error, attempts, compute_s, worker, time.time(), kind, item_id))

    def touch_input(self, kind: str, item_id: str, input_size: int, input_mtime_ns: int) -> None:
        """The input's new size and mtime after it was hashed again and found unchanged."""
        with self._write() as db:
            db.execute("UPDATE items SET input_size=?, input_mtime_ns=? WHERE kind=? AND id=?",
                       (input_size, input_mtime_ns, kind, item_id))

    def requeue_running(self) -> int:
        """Items a killed driver left 'running' go back to 'pending'; returns how many."""
        with self._write() as db:
            return db.execute("UPDATE items SET status='pending' WHERE status='running'").rowcount
