"""The batch runner on a real local Ray cluster (``ray start --head`` on 127.0.0.1, 2 CPUs, token auth,
its own temp dir), driven by ``python -m facewire batch`` subprocesses: every Ray server (GCS, raylet,
workers, the driver's) listens on 127.0.0.1 only, also when the batch starts Ray itself; outputs
equal a plain serial loop byte for byte, a SIGKILLed worker's items are retried, SIGINT stops
cleanly and a re-run resumes, a corrupt file fails alone.

Ray rewrites 127.0.0.1 to the machine's outward address even in ``--node-ip-address=127.0.0.1``;
the cluster runs in Ray's single-node mode (`facewire.batch.loopback.LOOPBACK_ENV`) to stay on
loopback (see that module for why)."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from facewire.batch.loopback import LOOPBACK_ENV, is_loopback
from facewire.bench.batch import make_clips
from facewire.plugins import module_exists

_COLOURS = ("red", "blue", "green", "white", "black", "yellow", "purple", "orange", "silver", "golden")
_THINGS = ("house", "table", "garden", "window", "river", "bottle", "pillow", "ticket", "button", "letter",
           "rabbit", "candle", "mirror", "basket", "jacket", "kitten", "ladder", "pocket", "tunnel", "wagon")
GROUPS = 10  # voice/g0 … voice/g9, 20 files each
# Lines are lip-synced with their transcripts (forced alignment): alignment must not depend on what a
# worker process aligned before, or outputs would differ between 1 and N workers.
USE_TRANSCRIPTS = True
CLIP_FRAMES = 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the library: 200 spoken lines, 24 video clips, and what a plain loop makes of them ---------------
@pytest.fixture(scope="module")
def library(tmp_path_factory, shared_file):
    from facewire.audio.io import write_wav
    from facewire.audio.tts import synthesize

    root = tmp_path_factory.mktemp("library")
    rows = ["file,text"]
    for i in range(GROUPS * len(_THINGS)):
        text = f"the {_COLOURS[i % len(_COLOURS)]} {_THINGS[i // len(_COLOURS) % len(_THINGS)]}"
        speech = synthesize(text, rate_wpm=300)
        path = root / "voice" / f"g{i // 20}" / f"line{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, speech.samples, speech.sample_rate)
        rows.append(f"g{i // 20}/line{i:03d},{text}")
    (root / "transcripts.csv").write_text("\n".join(rows) + "\n")
    grid = shared_file("data/video/grid/bbaf2n.mpg").parent
    assert make_clips(root / "clips", 4 * len(list(grid.glob("*.mpg"))), grid) >= 20  # four 12-frame clips each
    ref = root / "ref"
    _serial_reference(root, ref)
    return root


LIPSYNC_FORMATS = (("llf", ".llf.csv"), ("a2f", ".a2f.json"), ("jsonl", ".jsonl"))
TRACK_FORMATS = (("jsonl", ".jsonl"), ("csv", ".csv"))


def _serial_reference(root: Path, ref: Path) -> None:
    """The plain loop: the library's own classes, no batch code, no Ray."""
    import csv

    from facewire.audio.lipsync import LipSync
    from facewire.batch.jobs import item_seed
    from facewire.expression.blink import BlinkStage
    from facewire.expression.calibration import CalibrationStage
    from facewire.expression.filters import OneEuroStage
    from facewire.expression.gaze import GazeStage
    from facewire.media import open_input
    from facewire.takes import open_writer
    from facewire.vision.video import TrackerOptions, VideoTracker

    with open(root / "transcripts.csv", newline="") as f:
        texts = {row["file"]: row["text"] for row in csv.DictReader(f)}
    for wav in sorted((root / "voice").rglob("*.wav")):
        item_id = wav.relative_to(root / "voice").as_posix()
        seed = item_seed(item_id)
        gaze = GazeStage(mode="synthetic", state="speaking", seed=seed)
        blink = BlinkStage(mode="synthetic", state="speaking", seed=seed ^ 1)
        lipsync = LipSync(fps=60, text=texts[item_id[:-4]] if USE_TRANSCRIPTS else None, source=item_id)
        frames = [blink.process(gaze.process(f)) for f in lipsync.frames_from_file(wav)]
        for fmt, suffix in LIPSYNC_FORMATS:
            out = ref / "takes" / f"{item_id[:-4]}{suffix}"
            out.parent.mkdir(parents=True, exist_ok=True)
            with open_writer(out, fmt, fps=60.0) as writer:
                for frame in frames:
                    writer.send(frame)
    (ref / "tracks").mkdir(parents=True)
    for clip in sorted((root / "clips").glob("*.mp4")):
        tracker = VideoTracker(None, TrackerOptions(landmarks=True),
                               stages=lambda: [CalibrationStage(mode="auto"), OneEuroStage()])
        with open_input(clip) as source:
            frames = [f for image in source for f in tracker.process(image, source=clip.name)]
        for fmt, suffix in TRACK_FORMATS:
            with open_writer(ref / "tracks" / f"{clip.stem}{suffix}", fmt) as writer:
                for frame in frames:
                    writer.send(frame)


# -- the cluster --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    """A head node of 2 CPUs in its own session; stopped (its processes by id) even on failure."""
    temp = tempfile.mkdtemp(prefix="fwray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    token = Path(temp) / "token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_memory_monitor_refresh_ms": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0", **LOOPBACK_ENV}
    port = _free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false",
         f"--temp-dir={temp}", "--object-store-memory=100000000", "--disable-usage-stats",
         f"--dashboard-agent-listen-port={_free_port()}", f"--metrics-export-port={_free_port()}",
         f"--runtime-env-agent-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            if head.poll() is not None:
                pytest.fail(f"ray start --head exited with {head.returncode}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            if time.monotonic() > deadline:
                pytest.fail("the Ray head did not come up in 120 s")
            time.sleep(0.2)
        yield {"address": f"127.0.0.1:{port}", "env": env, "head": head}
    finally:
        _stop_cluster(head)
        shutil.rmtree(temp, ignore_errors=True)


def _stop_cluster(head: subprocess.Popen) -> None:
    """SIGTERM then SIGKILL to the head's process tree, each process by its id (workers run in
    sessions of their own, so a process group would miss them)."""
    try:
        tree = [psutil.Process(head.pid), *psutil.Process(head.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(tree, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(5)


def _batch(cluster, *args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "facewire", "batch", *args, "--address", cluster["address"], "--quiet"]


def _run(cluster, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_batch(cluster, *args, cwd=cwd), cwd=cwd, env=cluster["env"], capture_output=True,
                          text=True, timeout=300, check=False)


def _summary(stderr: str) -> dict[str, int]:
    m = re.search(r"batch: (\d+) items: (\d+) done, (\d+) skipped \(done and unchanged\), (\d+) failed, (\d+) left",
                  stderr)
    assert m, stderr
    return dict(zip(("total", "done", "skipped", "failed", "left"), map(int, m.groups())))


def _statuses(manifest: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(manifest)) as db:
        return dict(db.execute("SELECT id, status FROM items").fetchall())


def _same_files(out: Path, ref: Path, ids_suffixes: list[str]) -> None:
    for rel in ids_suffixes:
        assert (out / rel).read_bytes() == (ref / rel).read_bytes(), rel


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def _lipsync_rels(groups) -> list[str]:
    return [f"g{g}/line{i:03d}{suffix}" for g in groups for i in range(g * 20, g * 20 + 20)
            for _, suffix in LIPSYNC_FORMATS]


TEXT_KEY = "    text_from: transcripts.csv\n" if USE_TRANSCRIPTS else ""
TEXT_FLAGS = ("--text-from", "transcripts.csv") if USE_TRANSCRIPTS else ()


def _job_file(root: Path, name: str, out: str, voice_glob: str, clip_glob: str | None) -> Path:
    jobs = [(f"  - kind: lipsync\n    inputs: '{voice_glob}'\n    out: {out}/takes\n"
             f"    formats: [llf.csv, a2f.json, jsonl]\n{TEXT_KEY}    alive: true\n")]
    if clip_glob:
        jobs.append(f"  - kind: track\n    inputs: ['{clip_glob}']\n    out: {out}/tracks\n    formats: jsonl,csv\n")
    path = root / name
    path.write_text("jobs:\n" + "".join(jobs))
    return path


# -- the tests ----------------------------------------------------------------------------------------
def test_cluster_batch_equals_the_serial_loop_byte_for_byte(cluster, library):
    job = _job_file(library, "all.yaml", "all", "voice/**/*.wav", "clips/*.mp4")
    done = _run(cluster, str(job), cwd=library)
    assert done.returncode == 0, done.stderr
    assert _summary(done.stderr) == {"total": 224, "done": 224, "skipped": 0, "failed": 0, "left": 0}
    ref, out = library / "ref", library / "all"
    _same_files(out / "takes", ref / "takes", _lipsync_rels(range(GROUPS)))
    clips = sorted(p.name for p in (ref / "tracks").iterdir())
    assert len(clips) == 48
    _same_files(out / "tracks", ref / "tracks", clips)
    assert not _partials(out)
    statuses = _statuses(out / "takes/.facewire-batch.sqlite")
    assert len(statuses) == 200 and set(statuses.values()) == {"done"}
    assert set(_statuses(out / "tracks/.facewire-batch.sqlite").values()) == {"done"}
    again = _run(cluster, str(job), cwd=library)  # done and unchanged: nothing runs
    assert again.returncode == 0, again.stderr
    assert _summary(again.stderr) == {"total": 224, "done": 0, "skipped": 224, "failed": 0, "left": 0}


def test_one_worker_gives_the_same_bytes(cluster, library):
    job = _job_file(library, "one.yaml", "one", "voice/g[0]/*.wav", "clips/bbaf2n_*.mp4")
    done = _run(cluster, str(job), "--workers", "1", cwd=library)
    assert done.returncode == 0, done.stderr
    assert _summary(done.stderr)["done"] == 24
    _same_files(library / "one/takes", library / "ref/takes", _lipsync_rels([0]))
    _same_files(library / "one/tracks", library / "ref/tracks",
                [f"bbaf2n_{k}{s}" for k in range(4) for _, s in TRACK_FORMATS])
    # On a shared cluster --workers 1 means one item at a time (Ray may still hand consecutive tasks
    # to different idle worker processes of its pool, so the worker ids may differ).
    spans = []
    for name in ("takes", "tracks"):
        with contextlib.closing(sqlite3.connect(library / f"one/{name}/.facewire-batch.sqlite")) as db:
            spans += db.execute("SELECT started_at, finished_at FROM items").fetchall()
    spans.sort()
    assert len(spans) == 24 and all(a < b for a, b in spans)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))  # none overlaps the next


def _listening(*roots: int) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every TCP socket listening in the trees of ``roots``."""
    found = []
    for root in roots:
        with contextlib.suppress(psutil.Error):
            for proc in [psutil.Process(root), *psutil.Process(root).children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    name = proc.name()
                    for conn in proc.net_connections(kind="tcp"):
                        if conn.status == psutil.CONN_LISTEN:
                            found.append((name, conn.laddr.ip, conn.laddr.port))
    return found


def _on_loopback(ip: str) -> bool:
    return is_loopback(ip.removeprefix("::ffff:"))  # a dual-stack socket shows 127.0.0.1 as ::ffff:127.0.0.1


def _assert_loopback_while_running(cmd: list[str], cwd: Path, env: dict, manifest: Path, roots) -> None:
    """Run ``cmd`` (a batch) and, once items are done and workers busy, check every listening
    socket of ``roots(proc)``; then let the batch finish."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_done(manifest, 2, proc)
        listening = _listening(*roots(proc))
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    names = {name for name, _, _ in listening}
    assert {"gcs_server", "raylet"} <= names and any(n.startswith("ray::") for n in names), listening
    assert [entry for entry in listening if not _on_loopback(entry[1])] == []


def test_the_cluster_its_workers_and_the_driver_listen_on_127_0_0_1_only(cluster, library):
    out = library / "loopback"
    cmd = _batch(cluster, "lipsync", "voice/g[0]/*.wav", *TEXT_FLAGS, "--out", str(out), "--format", "jsonl",
                 "--alive", cwd=library)
    _assert_loopback_while_running(cmd, library, cluster["env"], out / ".facewire-batch.sqlite",
                                   lambda proc: (cluster["head"].pid, proc.pid))
    _same_files(out, library / "ref/takes", [f"g0/line{i:03d}.jsonl" for i in range(20)])


def test_a_batch_that_starts_ray_itself_keeps_it_on_127_0_0_1(library):
    out = library / "own"
    env = {k: v for k, v in os.environ.items() if k not in LOOPBACK_ENV and k != "RAY_ADDRESS"}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_memory_monitor_refresh_ms="0")
    cmd = [sys.executable, "-m", "facewire", "batch", "lipsync", "voice/g[1]/*.wav", *TEXT_FLAGS, "--out", str(out),
           "--format", "jsonl", "--alive", "--workers", "1", "--quiet"]  # no --address: Ray in the driver
    _assert_loopback_while_running(cmd, library, env, out / ".facewire-batch.sqlite", lambda proc: (proc.pid,))
    _same_files(out, library / "ref/takes", [f"g1/line{i:03d}.jsonl" for i in range(20, 40)])


# -- signed renders: the same on the cluster as serially ---------------------------------------------
HAS_RENDER = module_exists("facewire.render.video") and module_exists("facewire.render.default_avatar")


def _manifest_store(path: Path) -> dict:
    import json

    import c2pa

    from facewire.trust.provenance import media_type

    with open(path, "rb") as f, c2pa.Reader(media_type(path), f) as reader:
        store = json.loads(reader.json())
    return store["manifests"][store["active_manifest"]] | {"active": store["active_manifest"]}


@pytest.mark.skipif(not HAS_RENDER, reason="facewire.render.video or the default avatar is not installed")
def test_signed_renders_on_the_cluster_equal_a_serial_run_outside_the_manifest_store(cluster, tmp_path):
    """Pictures: every byte outside the C2PA manifest store, and the manifest as c2pa reads it (label,
    instance id, assertions, signer). Inside the store c2pa-rs's random per-assertion salts and the
    ECDSA signature differ from run to run. Videos: the same claims, watermark and audit record; their
    H.264 bytes are not compared: under CPU load, libx264 (through PyAV, in render_take) now and then
    wrote other bytes for frames that were identical as they entered the encoder."""
    from facewire.audio.io import write_wav
    from facewire.audio.lipsync import LipSync
    from facewire.audio.tts import synthesize
    from facewire.batch.trust import c2pa_span
    from facewire.takes import open_writer
    from facewire.trust.audit import read_log
    from facewire.trust.provenance import read_manifest

    (tmp_path / "takes").mkdir()
    for name, text in (("a", "the red house"), ("b", "a blue table")):
        speech = synthesize(text, rate_wpm=300)
        write_wav(tmp_path / f"{name}.wav", speech.samples, speech.sample_rate)
        with open_writer(tmp_path / "takes" / f"{name}.jsonl", "jsonl", fps=30.0) as writer:
            for frame in LipSync(fps=30.0).frames_from_file(tmp_path / f"{name}.wav"):
                writer.send(frame)
    home = tmp_path / "home"
    keys = subprocess.run([sys.executable, "-m", "facewire", "keys", "init", "--no-passphrase", "--home", str(home)],
                          env=cluster["env"], capture_output=True, text=True, timeout=120, check=False)
    assert keys.returncode == 0, keys.stderr
    render = ("render", "takes/*.jsonl", "--format", "png,mp4", "--size", "96x96", "--fps", "15", "--home", str(home))
    serial = subprocess.run([sys.executable, "-m", "facewire", "batch", *render, "--out", "serial", "--serial",
                             "--quiet"], cwd=tmp_path, env=cluster["env"], capture_output=True, text=True, timeout=300,
                            check=False)
    assert serial.returncode == 0, serial.stderr
    ray_run = _run(cluster, *render, "--out", "ray", cwd=tmp_path)
    assert ray_run.returncode == 0, ray_run.stderr
    assert "renders signed (C2PA + watermark)" in ray_run.stderr

    starts = read_log(home / "audit.db", "session-start")[0]
    first = {r.payload["batch_item"]: r for r in starts if "/serial/" in r.payload["out"][0]}
    again = {r.payload["batch_item"]: r for r in starts if "/ray/" in r.payload["out"][0]}
    for name in ("a", "b"):
        origin = first[f"{name}.jsonl"]
        assert again[f"{name}.jsonl"].payload["sealed_as"] == {"seq": origin.seq, "hash": origin.hash}
        png = [(tmp_path / run / f"{name}.png").read_bytes() for run in ("serial", "ray")]
        spans = [c2pa_span(data) for data in png]
        assert spans[0] is not None and spans[0] == spans[1], spans
        (a0, a1), (b0, b1) = spans
        assert png[0][:a0] + png[0][a1:] == png[1][:b0] + png[1][b1:]  # the picture itself: byte for byte
        for suffix in ("png", "mp4"):
            files = [tmp_path / run / f"{name}.{suffix}" for run in ("serial", "ray")]
            reports = [read_manifest(f, home / "c2pa/root.pem") for f in files]
            assert [r.status for r in reports] == ["Trusted", "Trusted"], [r.failures for r in reports]
            assert reports[0].claims == reports[1].claims
            assert (reports[0].claims.audit.seq, reports[0].claims.audit.hash) == (origin.seq, origin.hash)
        assert _manifest_store(tmp_path / "serial" / f"{name}.png") == _manifest_store(tmp_path / "ray" / f"{name}.png")


def _wait_done(manifest: Path, at_least: int, proc: subprocess.Popen, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the batch ended before {at_least} items were done: {proc.communicate()[1]}")
        if manifest.exists():
            with contextlib.suppress(sqlite3.Error):
                if list(_statuses(manifest).values()).count("done") >= at_least:
                    return at_least
        time.sleep(0.05)
    pytest.fail(f"fewer than {at_least} items done in {timeout_s} s")


def _busy_workers(cluster) -> list[psutil.Process]:
    head = psutil.Process(cluster["head"].pid)
    busy = []
    for proc in head.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            title = " ".join(proc.cmdline())
            if title.startswith("ray::") and "facewire-batch" in title:  # a worker running one of our tasks
                busy.append(proc)
    return busy


def test_a_killed_worker_is_retried_and_nothing_is_lost(cluster, library):
    out = library / "killed"
    manifest = out / ".facewire-batch.sqlite"
    cmd = _batch(cluster, "lipsync", "voice/g[1-5]/*.wav", *TEXT_FLAGS, "--out", str(out),
                 "--format", "llf.csv,a2f.json,jsonl", "--alive", cwd=library)
    proc = subprocess.Popen(cmd, cwd=library, env=cluster["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_done(manifest, 5, proc)
        victims = []
        deadline = time.monotonic() + 30
        while not victims and time.monotonic() < deadline:
            victims = _busy_workers(cluster)
        assert victims, "no busy Ray worker found"
        os.kill(victims[0].pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert _summary(err) == {"total": 100, "done": 100, "skipped": 0, "failed": 0, "left": 0}
    _same_files(out, library / "ref/takes", _lipsync_rels(range(1, 6)))
    assert not _partials(out)
    assert sorted(p.name for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")) == \
        sorted(Path(r).name for r in _lipsync_rels(range(1, 6)))  # none missing, none extra
    assert set(_statuses(manifest).values()) == {"done"}


def test_sigint_stops_cleanly_and_a_rerun_does_only_the_rest(cluster, library):
    out = library / "interrupted"
    manifest = out / ".facewire-batch.sqlite"
    args = ("lipsync", "voice/g[6-9]/*.wav", *TEXT_FLAGS, "--out", str(out),
            "--format", "llf.csv,a2f.json,jsonl", "--alive")
    proc = subprocess.Popen(_batch(cluster, *args, cwd=library), cwd=library, env=cluster["env"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_done(manifest, 8, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    first = _summary(err)
    assert "interrupted" in err and first["left"] > 0 and first["failed"] == 0
    statuses = _statuses(manifest)
    finished = sorted(i for i, s in statuses.items() if s == "done")
    assert len(finished) == first["done"] and "running" not in statuses.values()
    assert not _partials(out)
    _same_files(out, library / "ref/takes", [f"{i[:-4]}{s}" for i in finished for _, s in LIPSYNC_FORMATS])

    again = _run(cluster, *args, cwd=library)
    assert again.returncode == 0, again.stderr
    second = _summary(again.stderr)
    assert second == {"total": 80, "done": 80 - len(finished), "skipped": len(finished), "failed": 0, "left": 0}
    _same_files(out, library / "ref/takes", _lipsync_rels(range(6, 10)))


def test_a_corrupt_and_a_missing_file_fail_alone(cluster, library, tmp_path):
    voice = tmp_path / "voice"
    voice.mkdir()
    for i in range(3):
        shutil.copy(library / f"voice/g0/line{i:03d}.wav", voice / f"good{i}.wav")
    (voice / "corrupt.wav").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (voice / "gone.wav").symlink_to(tmp_path / "nowhere.wav")  # listed, unreadable
    done = _run(cluster, "lipsync", "voice/*.wav", "--out", "takes", "--format", "jsonl", cwd=tmp_path)
    assert done.returncode == 4, done.stderr  # some items failed; the others still ran
    assert _summary(done.stderr) == {"total": 5, "done": 3, "skipped": 0, "failed": 2, "left": 0}
    assert re.search(r"failed: corrupt\.wav: .*corrupt\.wav: not a readable audio file", done.stderr)
    assert re.search(r"failed: gone\.wav: cannot read .*gone\.wav", done.stderr)
    with contextlib.closing(sqlite3.connect(tmp_path / "takes/.facewire-batch.sqlite")) as db:
        rows = {i: (s, a, e) for i, s, a, e in db.execute("SELECT id, status, attempts, error FROM items")}
    assert rows["corrupt.wav"][0] == "failed" and rows["corrupt.wav"][1] == 1  # bad input: not retried
    assert "not a readable audio file" in rows["corrupt.wav"][2]
    assert rows["gone.wav"][0] == "failed" and rows["good0.wav"][0] == "done"
    assert sorted(p.name for p in (tmp_path / "takes").glob("*.jsonl")) == ["good0.jsonl", "good1.jsonl", "good2.jsonl"]
