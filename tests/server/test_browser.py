"""The studio page in real headless Chromium (Debian's, driven by playwright-python): a fake webcam
playing a real talking face (a GRID clip as .y4m) and a fake microphone playing its voice.

The page connects, tracked frames arrive at ≥ 15 fps, the avatar's morph-target influences (read back
from three.js by ARKit name) equal the server's recorded values, a take is recorded and downloaded,
text is spoken, a screenshot is kept, and four pages at once each get their own stream.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from facewire import arkit
from facewire.server.app import StudioConfig

CHROMIUM = "/usr/bin/chromium"
CLIP = "data/video/grid/bbaf2n.mpg"  # "bin blue at f two now", 3 s, 25 fps
SIZE = (320, 256)  # the clip's 5:4, small enough for 2 cores
WEIGHT_TOL = 0.01
MIN_FPS = 15.0


def make_fake_media(mpg: Path, y4m: Path, wav: Path) -> int:
    """The clip as a Y4M 4:2:0 file (Chromium's fake camera) and a 16 kHz mono WAV (its fake microphone)."""
    import av

    width, height = SIZE
    frames = 0
    with av.open(str(mpg)) as container, open(y4m, "wb") as out:
        rate = container.streams.video[0].average_rate
        out.write(f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode())
        for frame in container.decode(video=0):
            out.write(b"FRAME\n" + frame.reformat(width=width, height=height, format="yuv420p").to_ndarray().tobytes())
            frames += 1
    with av.open(str(mpg)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        chunks = [f.to_ndarray().reshape(-1) for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.concatenate(chunks).astype("<i2").tobytes())
    return frames


@pytest.fixture(scope="module")
def fake_media(shared_file, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fake-media")
    y4m, wav = folder / "face.y4m", folder / "face.wav"
    assert make_fake_media(shared_file(CLIP), y4m, wav) == 75
    return y4m, wav


@pytest.fixture(scope="module")
def browser(fake_media, skip_or_fail):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        skip_or_fail(f"playwright-python is not installed ({exc})")
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(f"{CHROMIUM} not found (Debian packages chromium and chromium-driver)")
    y4m, wav = fake_media
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}", f"--use-file-for-fake-audio-capture={wav}"]
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def studio(serve_studio, three):
    with serve_studio(StudioConfig()) as running:
        yield running


@contextlib.contextmanager
def open_pages(browser, studio, count: int = 1, **options):
    """``count`` pages of the studio with their avatar loaded; closed (their sessions ending) after."""
    context = browser.new_context(viewport={"width": 1100, "height": 760}, **options)
    errors: list[str] = []
    try:
        pages = [context.new_page() for _ in range(count)]
        for page in pages:
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(studio.http + "/")
        for page in pages:
            page.wait_for_function("window.facewire && window.facewire.avatar.ready", timeout=60_000)
        yield pages, errors
    finally:
        context.close()


def camera_fps(page, window_ms: int = 2000) -> float:
    """Tracked camera frames per second arriving at the page, on the page's own clock."""
    page.wait_for_timeout(window_ms)
    return page.evaluate(f"""(() => {{
        const now = performance.now();
        const recent = window.facewire.received.filter(r => r.source === 'camera' && now - r.at <= {window_ms});
        return recent.length / ({window_ms} / 1000);
    }})()""")


def keep_artifact(path: Path) -> None:
    target = os.environ.get("FACEWIRE_ARTIFACTS")
    if target:
        os.makedirs(target, exist_ok=True)
        shutil.copy(path, os.path.join(target, path.name))


def test_page_tracks_renders_records_and_speaks(browser, studio, tmp_path) -> None:
    with open_pages(browser, studio, accept_downloads=True) as ([page], errors):
        check_one_page(page, tmp_path)
        assert errors == []
    assert wait_for(lambda: not studio.studio.sessions)  # closing the page ended its session


def check_one_page(page, tmp_path: Path) -> None:
    from facewire.takes import read_take

    assert page.inner_text("#start") == "Start"
    page.click("#start")
    page.wait_for_function("window.facewire.received.filter(r => r.source === 'camera' && r.tracked).length >= 10",
                           timeout=30_000)
    assert page.evaluate("window.facewire.avatar.missing") == []  # the default avatar has all 52 targets
    fps = camera_fps(page)
    assert fps >= MIN_FPS, f"{fps:.1f} tracked frames per second arrived"
    assert page.evaluate("window.facewire.stats.latency_ms") > 0

    # record a take, stop, download it
    page.click("#record")
    page.wait_for_function("window.facewire.take && window.facewire.take.recording")
    page.wait_for_timeout(1500)
    page.click("#record")
    page.wait_for_selector("#download-csv", timeout=15_000)
    downloads = {}
    for fmt in ("csv", "glb"):
        with page.expect_download() as info:
            page.click(f"#download-{fmt}")
        downloads[fmt] = tmp_path / f"take.{fmt}"
        info.value.save_as(downloads[fmt])
    take = list(read_take(downloads["csv"]))
    assert len(take) == page.evaluate("window.facewire.take.frames") >= 15
    assert downloads["glb"].read_bytes()[:4] == b"glTF" and len(list(read_take(downloads["glb"]))) == len(take)
    tracked = [f for f in take if f.tracked]
    assert len(tracked) >= 0.8 * len(take)  # the fake camera shows a real face: it is tracked
    jaw = np.array([f.weight("jawOpen") for f in tracked])
    assert jaw.max() - jaw.min() > 0.02  # and it is talking

    # the avatar shows the server's values: morph influences read back from three.js, by ARKit name
    applied = {a["t_ns"]: a["weights"] for a in page.evaluate("window.facewire.applied")}
    matched = [(np.asarray(applied[f.t_ns], float), f.weights) for f in take if f.t_ns in applied]
    assert len(matched) >= 0.9 * len(take)
    worst = max(float(np.abs(shown - server).max()) for shown, server in matched)
    assert worst <= WEIGHT_TOL, f"avatar influences differ from the server's by {worst:.4f}"

    # text to speech: the avatar speaks it from the server's frames, on the audio clock
    page.fill("#say-text", "Hello there, I am so happy to see you!")
    page.click("#say")
    page.wait_for_function("window.facewire.lastSpeech && window.facewire.lastSpeech.played > 10", timeout=30_000)
    spoken = [a for a in page.evaluate("window.facewire.applied") if a["source"] == "tts"]
    assert max(w[arkit.index_of("jawOpen")] for w in (a["weights"] for a in spoken)) > 0.1
    assert page.inner_text("#emotion").startswith("happiness")

    shot = tmp_path / "studio.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    keep_artifact(shot)


def test_four_pages_each_get_their_own_stream(browser, studio, tmp_path) -> None:
    with open_pages(browser, studio, count=4) as (pages, errors):
        for page in pages:
            page.click("#start")
        for page in pages:
            page.wait_for_function("window.facewire.received.filter(r => r.tracked).length >= 15", timeout=45_000)
        assert len(studio.studio.sessions) == 4
        sessions = [page.evaluate("window.facewire.session") for page in pages]
        assert len(set(sessions)) == 4 and set(sessions) == set(studio.studio.sessions)
        for page in pages:
            seqs = page.evaluate("window.facewire.received.map(r => r.seq)")
            assert seqs[0] == 0 and seqs == sorted(set(seqs))  # a stream of its own, counted from 0
        # one page's command reaches its own session only
        pages[0].click("#record")
        pages[0].wait_for_function("window.facewire.take && window.facewire.take.recording")
        pages[0].wait_for_timeout(300)
        assert [p.evaluate("window.facewire.take") for p in pages[1:]] == [None, None, None]
        shot = tmp_path / "studio-four-pages.png"
        pages[3].screenshot(path=str(shot), full_page=True)
        keep_artifact(shot)
        assert errors == []
    assert wait_for(lambda: not studio.studio.sessions)  # every session was released with its page


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
