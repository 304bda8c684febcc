"""``facewire batch`` end to end in ``--serial`` mode through real subprocesses (no Ray; the exit-code
checks call the same ``facewire.cli.main`` in this process): the progress
bar and summary on stderr, exit codes 0 / 4 / 2, re-runs that skip, ``--force``; render items that
go through the trust home (audited; signed and watermarked once it has keys); and outputs that cannot
be written (a blocked or read-only folder, a size limit) failing alone, with no partial files."""

from __future__ import annotations

import hashlib
import os
import re
import resource
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from facewire.plugins import module_exists

HAS_RENDER = module_exists("facewire.render.video") and module_exists("facewire.render.default_avatar")
LINES = {"voice/en/a.wav": "the red house", "voice/en/b.wav": "a blue table", "voice/c.wav": "green garden"}


def _facewire(*args: str, cwd: Path, limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:  # CPython ignores SIGXFSZ, so an over-size write fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "facewire", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, check=False, preexec_fn=limit if limit_bytes else None)


def _summary(stderr: str) -> dict[str, int]:
    m = re.search(r"batch: (\d+) items: (\d+) done, (\d+) skipped \(done and unchanged\), (\d+) failed, (\d+) left",
                  stderr)
    assert m, stderr
    return dict(zip(("total", "done", "skipped", "failed", "left"), map(int, m.groups())))


def _rows(manifest: Path) -> dict[str, tuple]:
    with closing(sqlite3.connect(manifest)) as db:
        return {r[0]: r[1:] for r in db.execute("SELECT id, status, attempts, error FROM items")}


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def _speak(path: Path, text: str) -> None:
    from facewire.audio.io import write_wav
    from facewire.audio.tts import synthesize

    speech = synthesize(text, rate_wpm=300)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, speech.samples, speech.sample_rate)


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    for rel, text in LINES.items():
        _speak(root / rel, text)
    return root


# -- lipsync ------------------------------------------------------------------------------------
def test_a_serial_batch_shows_progress_and_a_summary_then_skips_and_force_redoes(voice):
    from facewire.audio.lipsync import LipSync
    from facewire.takes import open_writer

    run = _facewire("batch", "lipsync", "voice/**/*.wav", "--out", "takes", "--format", "llf.csv,jsonl", "--serial",
                    cwd=voice)
    assert run.returncode == 0, run.stderr
    assert re.search(r"batch: 100%\|.*\| 3/3 ", run.stderr), run.stderr  # tqdm's bar, on stderr
    assert run.stdout == ""
    assert _summary(run.stderr) == {"total": 3, "done": 3, "skipped": 0, "failed": 0, "left": 0}
    assert re.search(r"ran 3 in [\d.]+ s \([\d.]+ items/s serially\)", run.stderr)
    takes = voice / "takes"
    made = sorted(p.relative_to(takes).as_posix() for p in takes.rglob("*") if p.is_file()
                  and not p.name.startswith("."))
    assert made == ["c.jsonl", "c.llf.csv", "en/a.jsonl", "en/a.llf.csv", "en/b.jsonl", "en/b.llf.csv"]
    # the same bytes as the library's own LipSync, no batch code in between
    ref = voice / "ref.jsonl"
    with open_writer(ref, "jsonl", fps=60.0) as writer:
        for frame in LipSync(fps=60.0, source="en/a.wav").frames_from_file(voice / "voice/en/a.wav"):
            writer.send(frame)
    assert (takes / "en/a.jsonl").read_bytes() == ref.read_bytes()
    assert {s for s, *_ in _rows(takes / ".facewire-batch.sqlite").values()} == {"done"}

    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in takes.rglob("*.jsonl")}
    again = _facewire("batch", "lipsync", "voice/**/*.wav", "--out", "takes", "--format", "llf.csv,jsonl", "--serial",
                      cwd=voice)
    assert again.returncode == 0, again.stderr
    assert _summary(again.stderr) == {"total": 3, "done": 0, "skipped": 3, "failed": 0, "left": 0}
    assert "batch:" not in again.stderr.replace("facewire: batch:", "")  # nothing to do: no bar
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in takes.rglob("*.jsonl")} == before

    forced = _facewire("batch", "lipsync", "voice/**/*.wav", "--out", "takes", "--format", "llf.csv,jsonl",
                       "--serial", "--force", "--quiet", cwd=voice)
    assert forced.returncode == 0, forced.stderr
    assert _summary(forced.stderr)["done"] == 3
    assert "%|" not in forced.stderr  # --quiet: no bar
    for path, (data, mtime_ns) in before.items():
        assert path.read_bytes() == data and path.stat().st_mtime_ns != mtime_ns  # rewritten, same bytes


def _main(*args: str, cwd: Path, capsys) -> tuple[int, str]:
    """The same CLI in this process (no interpreter start-up): exit code and stderr."""
    from facewire.cli import main

    before = os.getcwd()
    os.chdir(cwd)
    try:
        code = main(list(args))
    finally:
        os.chdir(before)
    return code, capsys.readouterr().err


def test_a_failed_item_gives_exit_4_and_the_others_still_run(voice, tmp_path, capsys):
    (tmp_path / "voice").mkdir()
    for name in ("a", "b"):
        (tmp_path / f"voice/{name}.wav").write_bytes((voice / f"voice/en/{name}.wav").read_bytes())
    rng = np.random.default_rng(7)
    (tmp_path / "voice/noise.wav").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    args = ("batch", "lipsync", "voice/*.wav", "--out", "takes", "--serial", "--quiet")
    code, err = _main(*args, cwd=tmp_path, capsys=capsys)
    assert code == 4, err
    assert _summary(err) == {"total": 3, "done": 2, "skipped": 0, "failed": 1, "left": 0}
    assert re.search(r"facewire: failed: noise\.wav: .*noise\.wav: not a readable audio file", err)
    rows = _rows(tmp_path / "takes/.facewire-batch.sqlite")
    assert rows["noise.wav"][:2] == ("failed", 1)  # bad input is not retried
    assert sorted(p.name for p in (tmp_path / "takes").iterdir() if not p.name.startswith(".")) == \
        ["a.jsonl", "b.jsonl"]
    code, err = _main(*args, cwd=tmp_path, capsys=capsys)
    assert code == 4  # still failing, the done ones skipped
    assert _summary(err) == {"total": 3, "done": 0, "skipped": 2, "failed": 1, "left": 0}


def test_a_bad_job_gives_exit_2_and_runs_nothing(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    job.write_text("kind: lipsync\ninputs: 'voice/*.wav'\nout: takes\nalive: yes\nfps: 60\nformat: jsonl\nseed: 3\n")
    code, err = _main("batch", str(job), "--serial", cwd=tmp_path, capsys=capsys)
    assert code == 2
    assert err.strip() == (f"facewire: error: job file {job}: unknown key 'seed' for a lipsync job; expected "
                           "kind, inputs, out, formats, retries, manifest, text_from, fps, alive")
    code, err = _main("batch", "lipsync", "voice/*.wav", "--out", "takes", "--serial", cwd=tmp_path, capsys=capsys)
    assert code == 2
    assert err.strip() == f"facewire: error: inputs 'voice/*.wav': no files match (looked in {tmp_path / 'voice'})"
    code, err = _main("batch", str(job), "--out", "elsewhere", cwd=tmp_path, capsys=capsys)
    assert code == 2 and "--out belong in the job file" in err
    assert not (tmp_path / "takes").exists()


# -- unwritable outputs -------------------------------------------------------------------------
def test_an_unwritable_output_folder_fails_its_items_with_a_clear_error_and_no_partial_files(voice, tmp_path, capsys):
    for rel in ("voice/ok/a.wav", "voice/blocked/b.wav", "voice/blocked/c.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((voice / "voice/en/a.wav").read_bytes())
    out = tmp_path / "takes"
    blocked = out / "blocked"
    out.mkdir()
    if os.geteuid() == 0:  # root writes through any mode bits: a file stands where the folder should be
        blocked.write_text("not a folder")
        expected = rf"cannot write into {re.escape(str(blocked))}: {re.escape(str(blocked))} is a file, not a folder"
    else:
        blocked.mkdir(mode=0o555)
        expected = rf"cannot write {re.escape(str(blocked))}/[bc]\.jsonl: Permission denied"
    try:
        code, err = _main("batch", "lipsync", "voice/**/*.wav", "--out", "takes", "--serial", "--quiet",
                          "--retries", "1", cwd=tmp_path, capsys=capsys)
    finally:
        if blocked.is_dir():
            blocked.chmod(0o755)
    assert code == 4, err
    assert _summary(err) == {"total": 3, "done": 1, "skipped": 0, "failed": 2, "left": 0}
    for name in ("b", "c"):
        assert re.search(rf"facewire: failed: blocked/{name}\.wav: {expected}$", err, re.MULTILINE), err
    rows = _rows(out / ".facewire-batch.sqlite")
    assert rows["blocked/b.wav"][:2] == ("failed", 2)  # an output error may pass: tried again once
    assert rows["ok/a.wav"][0] == "done" and (out / "ok/a.jsonl").is_file()
    assert not _partials(tmp_path)
    assert not blocked.is_dir() or not any(blocked.iterdir())


def test_outputs_that_do_not_fit_fail_alone_and_leave_no_partial_files(voice, tmp_path):
    """A per-process file-size limit (RLIMIT_FSIZE) stands in for a full disk: writes past it fail
    with EFBIG as they would with ENOSPC, whoever runs the test."""
    from facewire.audio.io import write_wav

    (tmp_path / "voice").mkdir()
    (tmp_path / "voice/short.wav").write_bytes((voice / "voice/c.wav").read_bytes())
    rate = 16_000
    t = np.arange(int(rate * 4.0)) / rate
    write_wav(tmp_path / "voice/long.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), rate)
    run = _facewire("batch", "lipsync", "voice/*.wav", "--out", "takes", "--fps", "1000", "--serial", "--quiet",
                    "--retries", "0", cwd=tmp_path, limit_bytes=1_500_000)
    assert run.returncode == 4, run.stderr
    assert _summary(run.stderr) == {"total": 2, "done": 1, "skipped": 0, "failed": 1, "left": 0}
    assert re.search(r"facewire: failed: long\.wav: cannot write .*takes/long\.jsonl: File too large$", run.stderr,
                     re.MULTILINE), run.stderr
    takes = tmp_path / "takes"
    assert (takes / "short.jsonl").stat().st_size < 1_500_000
    assert not (takes / "long.jsonl").exists() and not _partials(tmp_path)
    assert _rows(takes / ".facewire-batch.sqlite")["long.wav"][0] == "failed"


# -- render items and trust -----------------------------------------------------------------------
def _audit(home: Path) -> list:
    from facewire.trust.audit import read_log, verify_log
    from facewire.trust.keys import trusted_keys
    from facewire.trust.store import TrustHome

    records, _ = read_log(home / "audit.db")
    report = verify_log(home / "audit.db", trusted_keys(TrustHome(home)))
    assert report.ok, report.problems
    return records


@pytest.mark.skipif(not HAS_RENDER, reason="facewire.render.video or the default avatar is not installed")
def test_render_items_are_audited_and_once_the_home_has_keys_signed_and_watermarked(voice, tmp_path):
    from facewire.audio.lipsync import LipSync
    from facewire.takes import open_writer
    from facewire.trust.provenance import read_manifest

    takes = tmp_path / "takes"
    takes.mkdir()
    for name in ("a", "b"):
        with open_writer(takes / f"{name}.jsonl", "jsonl", fps=60.0) as writer:
            for frame in LipSync(fps=60.0).frames_from_file(voice / f"voice/en/{name}.wav"):
                writer.send(frame)
    home = tmp_path / "home"
    render = ("batch", "render", "takes/*.jsonl", "--out", "videos", "--size", "96x96", "--fps", "15", "--serial",
              "--quiet", "--home", str(home))

    unsigned = _facewire(*render, cwd=tmp_path)
    assert unsigned.returncode == 0, unsigned.stderr
    assert f"facewire: warning: the rendered outputs are unsigned (no C2PA signing chain in {home})" in unsigned.stderr
    assert f"facewire: renders unsigned; 2 render sessions in the audit log of {home}" in unsigned.stderr
    videos = tmp_path / "videos"
    assert read_manifest(videos / "a.mp4").has_manifest is False
    records = _audit(home)
    assert [r.kind for r in records] == ["session-start", "export", "session-stop"] * 2
    assert records[1].payload["path"] == str(videos / "a.mp4")

    keys = _facewire("keys", "init", "--no-passphrase", "--home", str(home), cwd=tmp_path)
    assert keys.returncode == 0, keys.stderr
    signed = _facewire(*render, cwd=tmp_path)  # other sealing, other parameters: redone
    assert signed.returncode == 0, signed.stderr
    assert _summary(signed.stderr) == {"total": 2, "done": 2, "skipped": 0, "failed": 0, "left": 0}
    assert "warning" not in signed.stderr
    assert "facewire: renders signed (C2PA + watermark); 2 render sessions" in signed.stderr
    records = _audit(home)[6:]
    starts = {r.payload["batch_item"]: r for r in records if r.kind == "session-start"}
    exports = {r.payload["path"]: r.payload for r in records if r.kind == "export"}
    for name in ("a", "b"):
        video = videos / f"{name}.mp4"
        report = read_manifest(video, home / "c2pa/root.pem")
        assert report.status == "Trusted", report.failures
        start = starts[f"{name}.jsonl"]
        assert (report.claims.audit.seq, report.claims.audit.hash) == (start.seq, start.hash)
        payload = start.payload
        assert payload["signed"] is True and payload["take"] == str(takes / f"{name}.jsonl")
        assert report.claims.take_sha256 == payload["take_sha256"]
        assert exports[str(video)]["sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()
        assert exports[str(video)]["session"] == start.seq
    verify = _facewire("verify", str(videos / "b.mp4"), "--home", str(home), cwd=tmp_path)  # reads the pixels too
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"audit seq {starts['b.jsonl'].seq}" in verify.stdout and "matches the manifest's audit record" in \
        verify.stdout

    again = _facewire(*render, cwd=tmp_path)
    assert _summary(again.stderr)["skipped"] == 2
    assert [r.kind for r in _audit(home)].count("session-start") == 4  # skipped items make no new sessions
