"""The studio's HTTP and WebSocket protocol over real sockets: uvicorn on 127.0.0.1, a websockets client.

Frames are checked against the library run locally on the same input (tracker, lip sync, speech), bad
input against its one-line errors and close codes, and the server against staying up and leaking no
sessions.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave

import cv2
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from facewire import arkit
from facewire.frame import FaceFrame
from facewire.server.app import StudioConfig
from facewire.server.session import SessionLimits
from facewire.sinks.websocket import decode_message


# -- helpers ----------------------------------------------------------------------------------------
def ws_connect(url: str):
    return connect(url, proxy=None, max_size=None, open_timeout=10, close_timeout=2)


def recv_json(conn, timeout_s: float = 10.0) -> dict:
    return json.loads(conn.recv(timeout=timeout_s))


def recv_type(conn, kind: str, timeout_s: float = 10.0) -> dict:
    """The next message of type ``kind``, skipping stats (sent once a second) and others."""
    end = time.monotonic() + timeout_s
    while True:
        message = recv_json(conn, max(0.01, end - time.monotonic()))
        if message["type"] == kind:
            return message


def binary(kind: int, capture_ms: float, payload: bytes) -> bytes:
    return struct.pack("<Bd", kind, capture_ms) + payload


def get(url: str) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def put(url: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, method="PUT")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(scope="module")
def server(serve_studio):
    with serve_studio(StudioConfig()) as running:
        yield running


@pytest.fixture(scope="module")
def face_jpegs(astronaut) -> list[bytes]:
    """Five JPEGs of a real face, shifted a little from one to the next (a moving head)."""
    bgr = cv2.cvtColor(cv2.resize(astronaut, (320, 320)), cv2.COLOR_RGB2BGR)
    out = []
    for dx in range(0, 10, 2):
        moved = np.roll(bgr, dx, axis=1)
        ok, data = cv2.imencode(".jpg", moved, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        out.append(data.tobytes())
    return out


def local_tracker():
    from facewire.vision.video import TrackerOptions, VideoTracker

    return VideoTracker(options=TrackerOptions(landmarks=False))


def decoded_rgb(jpeg: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# -- HTTP ---------------------------------------------------------------------------------------------
def test_page_and_scripts_are_served_locally(server, three) -> None:
    status, body, headers = get(server.http + "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    assert re.search(r'<button id="start"[^>]*>Start</button>', page)
    assert "/vendor/three/build/three.module.js" in page and "http" not in page.replace("http-equiv", "")
    for path in ("/static/app.js", "/static/style.css", "/static/pcm-worklet.js",
                 "/vendor/three/build/three.module.js", "/vendor/three/build/three.core.js",
                 "/vendor/three/examples/jsm/loaders/GLTFLoader.js"):
        status, body, headers = get(server.http + path)
        assert status == 200 and body, path
    assert get(server.http + "/vendor/three/build/three.module.js")[1] == \
        (three / "build" / "three.module.js").read_bytes()
    status, body, _ = get(server.http + "/vendor/three/package.json")
    assert status == 404 and json.loads(body)["error"] == \
        "/vendor/three/package.json: only build/ and examples/jsm/ scripts are served"
    status, body, _ = get(server.http + "/vendor/three/build/..%2F..%2F..%2Fpackage.json")
    assert status == 404
    status, body, _ = get(server.http + "/static/secret.py")
    assert status == 404 and "no such file" in json.loads(body)["error"]


def test_default_avatar_is_a_glb_with_the_52_arkit_targets(server) -> None:
    status, data, headers = get(server.http + "/avatar/default.glb")
    assert status == 200 and headers["content-type"] == "model/gltf-binary"
    magic, version, total = struct.unpack_from("<III", data)
    assert magic == 0x46546C67 and version == 2 and total == len(data)
    (length,) = struct.unpack_from("<I", data, 12)
    doc = json.loads(data[20:20 + length])
    assert doc["meshes"][0]["extras"]["targetNames"] == list(arkit.NAMES)
    assert get(server.http + "/avatar/default.glb")[1] == data  # built once, kept
    status, body, _ = get(server.http + "/avatars")
    assert json.loads(body)["avatars"][0] == {"name": "default", "url": "/avatar/default.glb"}
    status, body, _ = get(server.http + "/avatar/nobody.glb")
    assert status == 404 and json.loads(body)["error"] == "no avatar 'nobody'; see /avatars"


def test_avatar_upload_is_checked_and_listed(server) -> None:
    glb = get(server.http + "/avatar/default.glb")[1]
    status, body = put(server.http + "/avatar/broken.glb", b"glTF" + b"\x00" * 40)
    assert status == 400 and "\n" not in body["error"] and "broken.glb" in body["error"]
    status, body = put(server.http + "/avatar/flat.glb", glb[:len(glb) // 2])
    assert status == 400 and body["error"]
    status, body = put(server.http + "/avatar/default.glb", glb)
    assert status == 400 and body["error"].startswith("avatar name: expected")
    status, body = put(server.http + "/avatar/mine.glb", glb)
    assert status == 200, body
    assert (body["name"], body["url"], body["found"], body["missing"]) == ("mine", "/avatar/mine.glb", 52, [])
    names = [a["name"] for a in json.loads(get(server.http + "/avatars")[1])["avatars"]]
    assert names == ["default", "mine"]  # the failed uploads left nothing behind
    assert get(server.http + "/avatar/mine.glb")[1] == glb


# -- the WebSocket: frames ----------------------------------------------------------------------------
def test_hello_then_tracked_frames_equal_to_the_library(server, face_jpegs) -> None:
    tracker = local_tracker()
    with ws_connect(server.ws) as conn:
        hello = recv_json(conn)
        assert hello["type"] == "hello" and hello["v"] == 1 and hello["names"] == list(arkit.NAMES)
        assert re.fullmatch(r"[0-9a-f]{12}", hello["session"]) and hello["limits"]["max_message_bytes"] == 1 << 20
        for i, jpeg in enumerate(face_jpegs[:3]):
            capture_ms = 5000.25 + 33.3 * i
            conn.send(binary(1, capture_ms, jpeg))
            message = recv_type(conn, "frame")
            frame = decode_message(json.dumps(message))
            assert isinstance(frame, FaceFrame) and frame.tracked and frame.source == "camera"
            assert frame.seq == i and frame.capture_ns == round(capture_ms * 1e6)
            assert frame.t_ns == round(33.3 * i * 1e6)  # media time from the session's first input
            if i == 0:  # the first frame passes the filter and the auto-calibration unchanged
                expected = tracker.process(_image(decoded_rgb(jpeg)))[0]
                np.testing.assert_allclose(frame.weights, expected.weights, atol=1e-6)
                assert frame.head.yaw_deg == pytest.approx(expected.head.yaw_deg, abs=1e-4)


def _image(rgb: np.ndarray):
    from facewire.media import Image

    return Image(0, rgb)


def test_neutral_calibration_takes_the_held_face_as_rest(server, face_jpegs) -> None:
    looks = np.array([n.startswith("eyeLook") for n in arkit.NAMES])
    with ws_connect(server.ws) as conn:
        recv_json(conn)
        conn.send(binary(1, 0.0, face_jpegs[0]))
        raw = decode_message(json.dumps(recv_type(conn, "frame"))).weights
        conn.send(json.dumps({"v": 1, "type": "calibrate"}))
        assert recv_type(conn, "calibration") == {"v": 1, "type": "calibration", "state": "learning", "window_s": 1.0}
        for capture_ms in (100.0, 600.0):  # the same face held for the one-second window
            conn.send(binary(1, capture_ms, face_jpegs[0]))
            recv_type(conn, "frame")
        conn.send(binary(1, 1150.0, face_jpegs[0]))
        seen = {}
        while set(seen) != {"frame", "calibration"}:  # control messages may overtake frames
            message = recv_json(conn)
            seen[message["type"]] = message
        assert seen["calibration"]["state"] == "done"
        conn.send(binary(1, 1200.0, face_jpegs[0]))
        calibrated = decode_message(json.dumps(recv_type(conn, "frame"))).weights
    rest = ~looks & (raw <= 0.6)  # offsets stop at 0.6: a higher "neutral" is an expression
    assert raw[rest].max() > 0.05  # the resting face reads as something before calibration…
    assert calibrated[rest].max() < 0.01  # …and as neutral after it
    np.testing.assert_allclose(calibrated[looks], raw[looks], atol=0.02)  # gaze is never offset


def test_microphone_frames_equal_the_library_lipsync(server, shared_file) -> None:
    from facewire.audio.io import load_audio
    from facewire.audio.lipsync import LipSync

    samples = load_audio(shared_file("data/speech/pocketsphinx/goforward.wav"))[:12800]
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    blocks = [pcm[i:i + 320] for i in range(0, pcm.size, 320)]
    local = LipSync(fps=30.0, source="mic")
    expected = []
    for k, block in enumerate(blocks):
        expected += local.feed(block.astype(np.float32) / 32768.0, round((1000 + 20 * k) * 1e6))
    assert len(expected) > 20
    received: list[FaceFrame] = []
    with ws_connect(server.ws) as conn:
        recv_json(conn)
        for k, block in enumerate(blocks):
            conn.send(binary(2, 1000 + 20 * k, block.tobytes()))
        while len(received) < len(expected):
            message = recv_type(conn, "frame")
            received.append(decode_message(json.dumps(message)))
    assert [f.source for f in received] == ["mic"] * len(expected)
    assert [f.seq for f in received] == list(range(len(expected)))
    np.testing.assert_allclose(np.stack([f.weights for f in received]), np.stack([f.weights for f in expected]),
                               atol=1e-6)
    assert [f.capture_ns for f in received] == [f.capture_ns for f in expected]  # the page's clock, echoed
    assert all(b.t_ns > a.t_ns for a, b in itertools.pairwise(received))
    assert max(f.weight("jawOpen") for f in received) > 0.1  # "go forward" opens the mouth


def test_say_sends_speech_frames_audio_and_emotion(server) -> None:
    from facewire.audio.animate import animate
    from facewire.audio.tts import synthesize
    from facewire.expression.affect import analyse

    text = "I am so happy to see you!"
    with ws_connect(server.ws) as conn:
        recv_json(conn)
        conn.send(json.dumps({"v": 1, "type": "say", "text": text}))
        speech = recv_type(conn, "speech", 30)
        conn.send(json.dumps({"v": 1, "type": "say", "text": "   "}))
        error = recv_type(conn, "error")
    assert error["message"] == "say: expected \"text\" with something to say, got '   '"
    local = synthesize(text)
    with wave.open(io.BytesIO(base64.b64decode(speech["wav"]))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, local.sample_rate)
        duration_s = w.getnframes() / w.getframerate()
    assert speech["duration_s"] == round(duration_s, 3)
    assert duration_s == pytest.approx(local.duration_s, rel=0.05)  # espeak-ng varies by a few samples
    frames = [decode_message(json.dumps(m)) for m in speech["frames"]]
    assert [f.seq for f in frames] == list(range(len(frames))) and {f.source for f in frames} == {"tts"}
    assert len(frames) == pytest.approx(duration_s * 30, abs=1)  # the frames cover the audio at 30 fps
    assert all(b.t_ns - a.t_ns == pytest.approx(1e9 / 30, abs=1) for a, b in itertools.pairwise(frames))
    plain = animate(local.phones, local.samples, 30.0, sample_rate=local.sample_rate)
    assert speech["emotion"]["emotion"] == analyse(text).emotion == "happiness"
    smile = arkit.index_of("mouthSmileLeft")
    # the emotion layer adds a smile on top of the lip sync
    assert max(f.weights[smile] for f in frames) > max(f.weights[smile] for f in plain) + 0.05


def test_record_a_take_and_download_it(server, face_jpegs) -> None:
    from facewire.takes import read_take

    sent: list[FaceFrame] = []
    with ws_connect(server.ws) as conn:
        recv_json(conn)
        conn.send(json.dumps({"v": 1, "type": "record", "on": False}))
        assert recv_type(conn, "error")["message"].startswith("record: not recording")
        conn.send(json.dumps({"v": 1, "type": "record", "on": True}))
        assert recv_type(conn, "take") == {"v": 1, "type": "take", "recording": True, "frames": 0}
        for i, jpeg in enumerate(face_jpegs):
            conn.send(binary(1, 100.0 + 40 * i, jpeg))
            sent.append(decode_message(json.dumps(recv_type(conn, "frame"))))
        conn.send(json.dumps({"v": 1, "type": "record", "on": False}))
        take = recv_type(conn, "take")
    assert take["recording"] is False and take["frames"] == len(face_jpegs)
    assert set(take["files"]) == {"csv", "glb", "jsonl"}
    for fmt, path in take["files"].items():
        status, data, headers = get(server.http + path)
        assert status == 200, (fmt, data[:200])
        assert "attachment" in headers["content-disposition"]
        local = os.path.join(server.studio.takes.root, f"downloaded.{fmt}")
        with open(local, "wb") as f:
            f.write(data)
        frames = list(read_take(local))
        assert len(frames) == len(sent), fmt
        if fmt in ("csv", "jsonl"):  # lossless for weights and times
            assert [f.t_ns for f in frames] == [f.t_ns for f in sent]
            np.testing.assert_array_equal(np.stack([f.weights for f in frames]), np.stack([f.weights for f in sent]))
        os.unlink(local)
    status, _body, _ = get(server.http + "/takes/0123456789abcdef.csv")
    assert status == 404


# -- the WebSocket: bad input -------------------------------------------------------------------------
BAD_MESSAGES = [
    (b"\x01\x02", "binary message: expected a 9-byte header (kind, capture_ms) and a payload, got 2 bytes"),
    (binary(7, 1.0, b"xx"), "binary message: expected kind 1 (JPEG) or 2 (PCM), got 7"),
    (binary(1, float("nan"), b"\xff\xd8"), "binary message: expected capture_ms ≥ 0 on the page's clock, got nan"),
    (binary(1, 1.0, b"GIF89a...."), "video frame: expected a JPEG image (starting FF D8), got 47 49 46 38"),
    (binary(1, 1.0, b"\xff\xd8\xff\xe0\x00\x10JFIF"),
     "video frame: expected a JPEG image with a frame header, got a truncated or corrupt one"),
    (binary(2, 1.0, b"\x00\x01\x02"), "audio block: expected 16-bit PCM (an even, non-zero byte count), got 3 bytes"),
    ("not json", "text message: expected JSON, got 'not json'"),
    ("[1, 2]", "text message: expected a JSON object, got list"),
    ('{"v": 2, "type": "ping"}', "text message: expected schema version 1, got 2"),
    ('{"type": "dance"}', "text message: expected type ping, calibrate, record or say, got 'dance'"),
    ('{"type": "record", "on": "yes"}', "record: expected \"on\": true or false, got 'yes'"),
]


def test_garbage_gets_one_line_errors_and_the_stream_goes_on(server, face_jpegs) -> None:
    with ws_connect(server.ws) as conn:
        recv_json(conn)
        for message, why in BAD_MESSAGES:
            conn.send(message)
            assert recv_type(conn, "error")["message"] == why
        # a JPEG with a valid header that does not decode is answered too
        corrupt = face_jpegs[0][:200] + b"\x00" * 50
        conn.send(binary(1, 1.0, corrupt))
        assert recv_type(conn, "error")["message"].startswith("video frame: expected a decodable JPEG image")
        conn.send(binary(1, 2.0, face_jpegs[0]))
        assert recv_type(conn, "frame")["tracked"] is True
        conn.send(json.dumps({"v": 1, "type": "ping", "id": 7}))
        assert recv_type(conn, "pong") == {"v": 1, "type": "pong", "id": 7}


def test_a_huge_picture_is_refused_before_decoding(server) -> None:
    header = (b"\xff\xd8" + b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 20000, 30000, 1) + b"\x01\x11\x00")
    with ws_connect(server.ws) as conn:
        recv_json(conn)
        conn.send(binary(1, 1.0, header))
        assert recv_type(conn, "error")["message"] == \
            "video frame: expected at most 2073600 pixels, got 30000×20000"


def test_oversized_garbage_silence_and_a_full_studio_close_alone(serve_studio) -> None:
    limits = SessionLimits(max_message_bytes=64 << 10, idle_timeout_s=0.5, max_bad_messages=3)
    with serve_studio(StudioConfig(limits=limits, max_sessions=2)) as server:
        # oversized: 1009, from the server's own limit
        with ws_connect(server.ws) as conn:
            recv_json(conn)
            conn.send(binary(1, 1.0, b"\xff\xd8" + b"\x00" * (70 << 10)))
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    conn.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        # garbage in a row: 1008 with the reason
        with ws_connect(server.ws) as conn:
            recv_json(conn)
            for _ in range(3):
                conn.send(b"\x09nonsense")
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    conn.recv(timeout=5)
            assert info.value.rcvd.code == 1008
            assert info.value.rcvd.reason == \
                "3 bad messages in a row (last: binary message: expected kind 1 (JPEG) or 2 (PCM), got 9)"
        # nothing at all: a raw TCP connection that never speaks, and a WebSocket that stays silent
        raw = socket.create_connection(("127.0.0.1", server.port))
        try:
            with ws_connect(server.ws) as silent, ws_connect(server.ws) as _:
                recv_json(silent)
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        silent.recv(timeout=5)
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (1008, "nothing received for 0.5 s")
            # two sessions at most: the third is told so
            with ws_connect(server.ws) as a, ws_connect(server.ws) as b:
                recv_json(a), recv_json(b)
                with ws_connect(server.ws) as c:
                    with pytest.raises(ConnectionClosed) as info:
                        c.recv(timeout=5)
                    assert info.value.rcvd.code == 1013 and "the studio is full (2 sessions)" in info.value.rcvd.reason
        finally:
            raw.close()
        # the server is still up, and every session was released
        assert json.loads(get(server.http + "/health")[1])["ok"] is True
        assert wait_for(lambda: not server.studio.sessions)
        with ws_connect(server.ws) as conn:
            assert recv_json(conn)["type"] == "hello"


def test_sessions_do_not_interfere_and_are_released(server, face_jpegs) -> None:
    with ws_connect(server.ws) as a, ws_connect(server.ws) as b:
        ha, hb = recv_json(a), recv_json(b)
        assert ha["session"] != hb["session"]
        assert wait_for(lambda: len(server.studio.sessions) == 2)
        a.send(json.dumps({"v": 1, "type": "record", "on": True}))
        assert recv_type(a, "take")["recording"] is True
        for i in range(3):
            a.send(binary(1, 10.0 + 40 * i, face_jpegs[i]))
            b.send(binary(1, 900.0 + 40 * i, face_jpegs[-1 - i]))
            fa, fb = recv_type(a, "frame"), recv_type(b, "frame")
            assert (fa["seq"], fb["seq"]) == (i, i)  # each session counts its own frames
            assert (fa["capture_ns"], fb["capture_ns"]) == (round((10.0 + 40 * i) * 1e6), round((900.0 + 40 * i) * 1e6))
        runners = list(server.studio.sessions.values())
    assert wait_for(lambda: not server.studio.sessions)
    assert all(r.session.closed and r.session._tracker is None for r in runners)
    # a's take was recording when it left: discarded, not left half-written on disk
    assert not [n for n in os.listdir(server.studio.takes.root) if n.endswith(".part")]


# -- the command line ---------------------------------------------------------------------------------
def test_facewire_serve_runs_the_studio(three, tmp_path) -> None:
    env = {**os.environ, "FACEWIRE_HOME": str(tmp_path / "trust")}  # the studio's audit log goes here
    proc = subprocess.Popen([sys.executable, "-m", "facewire", "serve", "--port", "0"], stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        line = proc.stderr.readline()
        match = re.search(r"studio at (http://127\.0\.0\.1:(\d+)/)", line)
        assert match, line
        status, body, _ = get(match[1] + "health")
        assert status == 200 and json.loads(body) == {"ok": True, "sessions": 0, "takes": 0}
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()
    bad = subprocess.run([sys.executable, "-m", "facewire", "serve", "--port", "70000"], check=False, capture_output=True,
                         text=True, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and bad.stderr.strip() == "facewire: error: --port: expected 0..65535, got 70000"
