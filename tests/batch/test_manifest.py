"""The batch manifest on real SQLite files: status transitions, what a killed driver leaves, the lock
that keeps a second driver off, a process SIGKILLed mid-write, and how a serial run (no Ray) uses
the stored input hashes and parameters hashes to skip or redo items."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from facewire.batch.jobs import JobSpec
from facewire.batch.manifest import STATUSES, Manifest
from facewire.batch.runner import RunOptions, run_batch, sha256_file
from facewire.errors import InputError, OutputError

HASH = "ab" * 32


def _queue(m: Manifest, item_id: str, params: str = HASH) -> None:
    m.queue("lipsync", item_id, f"/in/{item_id}", params, input_sha256="cd" * 32, input_size=10, input_mtime_ns=5)


# -- statuses -----------------------------------------------------------------------------------
def test_an_item_goes_pending_running_done_and_back_to_pending_when_queued_again(tmp_path):
    with Manifest(tmp_path / "m.sqlite") as m:
        _queue(m, "a.wav")
        assert m.get("lipsync", "a.wav").status == "pending"
        m.started("lipsync", "a.wav", 1)
        rec = m.get("lipsync", "a.wav")
        assert (rec.status, rec.attempts) == ("running", 1) and rec.started_at is not None
        m.started("lipsync", "a.wav", 2)
        m.done("lipsync", "a.wav", ["/out/a.jsonl", "/out/a.csv"], [120, 80], attempts=2, compute_s=0.5,
               worker="host:1")
        rec = m.get("lipsync", "a.wav")
        assert rec.status == "done" and rec.outputs == ("/out/a.jsonl", "/out/a.csv")
        assert rec.output_sizes == (120, 80) and rec.attempts == 2 and rec.worker == "host:1"
        assert rec.finished_at >= rec.started_at
        _queue(m, "a.wav", params="ef" * 32)  # changed parameters: to do again, from attempt 0
        rec = m.get("lipsync", "a.wav")
        assert (rec.status, rec.attempts, rec.params_sha256, rec.error) == ("pending", 0, "ef" * 32, None)


def test_a_failure_keeps_its_error_and_counts_cover_every_status(tmp_path):
    with Manifest(tmp_path / "m.sqlite") as m:
        for name in ("a", "b", "c", "d"):
            _queue(m, name)
        m.started("lipsync", "b", 1)
        m.started("lipsync", "c", 1)
        m.failed("lipsync", "c", "c.wav: not a readable audio file", attempts=1)
        m.started("lipsync", "d", 1)
        m.done("lipsync", "d", ["/o/d"], [1], attempts=1, compute_s=None, worker=None)
        assert m.counts() == {"pending": 1, "running": 1, "done": 1, "failed": 1}
        assert m.get("lipsync", "c").error == "c.wav: not a readable audio file"
        assert [r.id for r in m.records("failed")] == ["c"]
        assert m.get("lipsync", "nope") is None
        with pytest.raises(InputError, match=r"status: expected one of pending, running, done, failed, got 'finished'"):
            m.records("finished")
    assert STATUSES == ("pending", "running", "done", "failed")


def test_items_a_killed_driver_left_running_become_pending(tmp_path):
    path = tmp_path / "m.sqlite"
    script = textwrap.dedent(f"""
        import os, signal
        from facewire.batch.manifest import Manifest
        m = Manifest({str(path)!r}, lock=True)
        for name in ("a", "b", "c"):
            m.queue("track", name, "/in/" + name, "p", input_sha256=None, input_size=None, input_mtime_ns=None)
        m.started("track", "a", 1)
        m.done("track", "a", ["/o/a"], [3], attempts=1, compute_s=0.1, worker="w")
        m.started("track", "b", 1)
        m.started("track", "c", 2)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Manifest(path, lock=True) as m:  # the dead driver's lock went with it
        assert m.counts()["running"] == 2
        assert m.requeue_running() == 2
        assert {r.id: r.status for r in m.records()} == {"a": "done", "b": "pending", "c": "pending"}


# -- the lock -----------------------------------------------------------------------------------
def test_the_lock_refuses_a_second_driver_and_is_free_once_closed(tmp_path):
    path = tmp_path / "m.sqlite"
    probe = ("from facewire.batch.manifest import Manifest\n"
             f"Manifest({str(path)!r}, lock=True).close()\nprint('opened')")
    with Manifest(path, lock=True):
        other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
        assert other.returncode != 0
        assert f"manifest {path}: another batch is running on it (pid {os.getpid()})" in other.stderr
        with Manifest(path) as reader:  # readers need no lock
            assert reader.counts()["pending"] == 0
    again = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0 and again.stdout.strip() == "opened", again.stderr


def test_a_second_batch_on_a_locked_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "voice").mkdir()
    (tmp_path / "voice/a.wav").write_bytes(b"RIFF")
    manifest = tmp_path / "m.sqlite"
    with Manifest(manifest, lock=True):
        proc = subprocess.run([sys.executable, "-m", "facewire", "batch", "lipsync", "voice/*.wav", "--out", "out",
                               "--manifest", str(manifest), "--serial", "--quiet"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == \
        f"facewire: error: manifest {manifest}: another batch is running on it (pid {os.getpid()})"


def test_a_file_that_is_not_a_manifest_is_refused(tmp_path):
    path = tmp_path / "m.sqlite"
    path.write_bytes(b"this is not SQLite at all " * 100)
    with pytest.raises(InputError, match=r"m\.sqlite: not a facewire batch manifest"):
        Manifest(path)
    other = tmp_path / "other.sqlite"
    with Manifest(other) as m:
        m._db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(InputError, match=r"other\.sqlite: schema 99, this facewire reads 1"):
        Manifest(other)


# -- crash safety -------------------------------------------------------------------------------
_WRITER = textwrap.dedent("""
    import sys
    from facewire.batch.manifest import Manifest
    m = Manifest(sys.argv[1], lock=True)
    i = 0
    while True:
        name = f"item{i:06d}"
        m.queue("lipsync", name, "/in/" + name, "p" * 64, input_sha256="c" * 64, input_size=i, input_mtime_ns=i)
        m.started("lipsync", name, 1)
        m.done("lipsync", name, ["/out/" + name + ".jsonl"], [i], attempts=1, compute_s=0.001, worker="w")
        print(name, flush=True)  # after the commit: every name printed is committed
        i += 1
""")


def test_sigkill_mid_write_leaves_a_manifest_that_opens_with_every_committed_item(tmp_path):
    path = tmp_path / "m.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    committed = []
    try:
        for line in proc.stdout:
            committed.append(line.strip())
            if len(committed) >= 150:
                break
        os.kill(proc.pid, signal.SIGKILL)  # while it is writing the next items
        committed += [line.strip() for line in proc.stdout]  # what it printed before it died
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert len(committed) >= 150
    with Manifest(path, lock=True) as m:
        records = {r.id: r for r in m.records()}
        assert set(committed) <= set(records)
        assert all(records[name].status == "done" for name in committed)
        assert len(records) - len(committed) <= 1  # at most the item in flight, never a torn one
        assert m.requeue_running() <= 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- what the runner makes of it (serial, no Ray) ------------------------------------------------
@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> Path:
    from facewire.audio.io import write_wav
    from facewire.audio.tts import synthesize

    root = tmp_path_factory.mktemp("wavs")
    for name, text in (("one", "the red house"), ("two", "a blue table")):
        speech = synthesize(text, rate_wpm=300)
        write_wav(root / f"{name}.wav", speech.samples, speech.sample_rate)
    return root


def _run(root: Path, out: Path, **options) -> object:
    job = JobSpec(kind="lipsync", inputs=("*.wav",), out=str(out), options=tuple(options.items()), root=str(root))
    return run_batch([job], RunOptions(serial=True, progress=False), say=lambda _: None)


def test_the_stored_input_hash_is_trusted_while_size_and_mtime_hold(tmp_path, wavs):
    root = tmp_path / "in"
    root.mkdir()
    for wav in wavs.glob("*.wav"):
        (root / wav.name).write_bytes(wav.read_bytes())
    out = tmp_path / "out"
    first = _run(root, out)
    assert (first.done, first.skipped) == (2, 0)
    manifest = out / ".facewire-batch.sqlite"
    one = root / "one.wav"
    with Manifest(manifest) as m:
        assert m.get("lipsync", "one.wav").input_sha256 == sha256_file(str(one))

    os.utime(one, ns=(one.stat().st_atime_ns, one.stat().st_mtime_ns + 10**9))  # touched, same bytes
    touched = _run(root, out)
    assert (touched.done, touched.skipped) == (0, 2)  # hashed again, found unchanged
    with Manifest(manifest) as m:
        assert m.get("lipsync", "one.wav").input_mtime_ns == one.stat().st_mtime_ns  # not hashed next time

    data = bytearray(one.read_bytes())
    data[-1] ^= 0xFF  # same size; the last sample changes
    st = one.stat()
    one.write_bytes(bytes(data))
    os.utime(one, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as recorded: the cache holds
    assert _run(root, out).skipped == 2
    os.utime(one, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    changed = _run(root, out)
    assert (changed.done, changed.skipped) == (1, 1)  # hashed again: new bytes, redone
    with Manifest(manifest) as m:
        assert m.get("lipsync", "one.wav").input_sha256 == sha256_file(str(one))


def test_changed_parameters_or_a_missing_output_redo_the_item(tmp_path, wavs):
    out = tmp_path / "out"
    assert _run(wavs, out, fps=60.0).done == 2
    before = (out / "one.jsonl").read_bytes()
    assert _run(wavs, out, fps=60.0).skipped == 2
    again = _run(wavs, out, fps=30.0)  # another frame rate: other bytes
    assert (again.done, again.skipped) == (2, 0)
    assert (out / "one.jsonl").read_bytes() != before
    (out / "two.jsonl").unlink()
    missing = _run(wavs, out, fps=30.0)
    assert (missing.done, missing.skipped) == (1, 1)
    assert (out / "two.jsonl").is_file()


def test_an_unwritable_manifest_stops_the_run_with_one_clear_error(tmp_path, wavs):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the manifest's folder should be")
    job = JobSpec(kind="lipsync", inputs=("*.wav",), out=str(tmp_path / "out"), root=str(wavs),
                  manifest=str(blocker / "m.sqlite"))
    with pytest.raises(OutputError, match=r"manifest .*not-a-folder/m\.sqlite: cannot open it"):
        run_batch([job], RunOptions(serial=True, progress=False), say=lambda _: None)
