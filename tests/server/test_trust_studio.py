"""Trust in the studio over real sockets: a real trust home made by ``facewire keys init``, real signed
grants and attestations from ``facewire consent``, a likeness registered with ``facewire likeness
register``; the audit log read back from its SQLite file and checked by ``facewire audit verify``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from facewire import arkit
from facewire.frame import FaceFrame
from facewire.server.app import StudioConfig
from facewire.sinks.websocket import frame_message
from facewire.trust.audit import read_log

CONTEXT = "telepresence"


# -- helpers ----------------------------------------------------------------------------------------
def facewire(*argv: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "facewire", *argv], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False, timeout=300)
    assert proc.returncode == 0, (argv, proc.stderr)
    return proc


def keyed_home(root: Path) -> Path:
    facewire("keys", "init", "--no-passphrase", "--home", str(root))
    return root


def token(home: Path, kind: str, photo: Path, out: Path, context: str = CONTEXT, *extra: str) -> str:
    facewire("consent", kind, "--home", str(home), "--likeness", str(photo), "--context", context,
             "--out", str(out), *extra)
    return out.read_text().strip()


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str) -> tuple[int, bytes]:
    try:
        with opener().open(urllib.request.Request(url), timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post_photo(base: str, photo: bytes, filename: str, token_text: str | None = None) -> tuple[int, dict]:
    """``POST /photo`` as a browser's FormData sends it: multipart with ``photo`` and ``token``."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="{filename}"\r\n'
             f"Content-Type: image/png\r\n\r\n".encode() + photo + b"\r\n"]
    if token_text is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n{token_text}\r\n'.encode())
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(base + "/photo", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with opener().open(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def records(home: Path, kind: str | None = None) -> list:
    found, _ = read_log(home / "audit.db", kind)
    return found


def recv_type(conn, kind: str, timeout_s: float = 60.0) -> dict:
    """The next message of type ``kind`` (stats and others skipped); an ``error`` fails the test."""
    end = time.monotonic() + timeout_s
    while True:
        message = json.loads(conn.recv(timeout=max(0.01, end - time.monotonic())))
        if message["type"] == "error":
            pytest.fail(message["message"])
        if message["type"] == kind:
            return message


def talking_frames() -> tuple[FaceFrame, FaceFrame]:
    """A closed mouth, then a wide open one."""
    shut = np.zeros(arkit.COUNT, np.float32)
    wide = shut.copy()
    wide[arkit.INDEX["jawOpen"]] = 1.0
    return FaceFrame(t_ns=0, seq=0, weights=shut), FaceFrame(t_ns=33_333_333, seq=1, weights=wide)


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def studio(tmp_path: Path, home: Path, context: str | None = CONTEXT) -> StudioConfig:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return StudioConfig(trust_home=str(home), context=context, work_dir=str(work))


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut) -> Path:
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    assert cv2.imwrite(str(path), astronaut[:, :, ::-1])
    return path


@pytest.fixture(scope="module")
def registered(tmp_path_factory, photo) -> Path:
    """A home with keys in which the astronaut is the registered likeness of subject 'alice'."""
    home = keyed_home(tmp_path_factory.mktemp("registered") / "home")
    facewire("likeness", "register", str(photo), "--subject", "alice", "--name", "Alice", "--home", str(home))
    return home


@pytest.fixture(scope="module")
def face_jpegs(astronaut) -> list[bytes]:
    bgr = cv2.cvtColor(cv2.resize(astronaut, (320, 320)), cv2.COLOR_RGB2BGR)
    out = []
    for dx in (0, 4):
        ok, data = cv2.imencode(".jpg", np.roll(bgr, dx, axis=1), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        out.append(data.tobytes())
    return out


# -- sessions and exports ---------------------------------------------------------------------------
def test_sessions_and_take_downloads_are_audited(tmp_path, serve_studio, face_jpegs) -> None:
    import struct

    home = keyed_home(tmp_path / "home")
    with serve_studio(studio(tmp_path, home)) as running:
        with connect(running.ws + "?avatar=default", proxy=None, open_timeout=10) as conn:
            session_id = json.loads(conn.recv(timeout=10))["session"]
            starts = records(home, "session-start")
            assert [r.payload["session_id"] for r in starts] == [session_id]
            assert starts[0].payload["context"] == CONTEXT and starts[0].payload["avatar"] == "default"
            conn.send(json.dumps({"v": 1, "type": "record", "on": True}))
            for i, jpeg in enumerate(face_jpegs):  # one at a time: the studio keeps only the latest picture
                conn.send(struct.pack("<Bd", 1, 100.0 + 40 * i) + jpeg)
                recv_type(conn, "frame")
            conn.send(json.dumps({"v": 1, "type": "record", "on": False}))
            take = recv_type(conn, "take")
            assert take["recording"] is False and take["frames"] == len(face_jpegs)
        assert wait_for(lambda: len(records(home, "session-stop")) == 1)
        stop = records(home, "session-stop")[0].payload
        assert stop["session_id"] == session_id and stop["session"] == starts[0].seq and stop["result"] == "ok"

        downloaded = {}
        for fmt, path in take["files"].items():
            status, data = get(running.http + path)
            assert status == 200, data[:200]
            downloaded[fmt] = hashlib.sha256(data).hexdigest()
        exports = records(home, "export")
        assert {r.payload["format"]: r.payload["sha256"] for r in exports} == downloaded
        assert all(r.payload["context"] == CONTEXT for r in exports)
        assert get(running.http + "/takes/0123456789abcdef.csv")[0] == 404
        assert len(records(home, "export")) == len(downloaded)  # a missing take exports nothing

        with connect(running.ws + "?avatar=../x", proxy=None, open_timeout=10) as conn, \
                pytest.raises(ConnectionClosed):
            conn.recv(timeout=10)
        assert conn.close_code == 1008 and "avatar" in conn.close_reason
    verified = facewire("audit", "verify", "--home", str(home))
    assert ": verifies: " in verified.stdout


# -- photo avatars ----------------------------------------------------------------------------------
def test_photo_without_keys_is_refused_naming_keys_init(tmp_path, serve_studio, photo) -> None:
    home = tmp_path / "bare"
    with serve_studio(studio(tmp_path, home)) as running:
        status, body = post_photo(running.http, photo.read_bytes(), "astronaut.png")
    assert status == 403 and "facewire keys init" in body["error"]
    refused = records(home, "consent-check")
    assert refused and refused[-1].payload["result"] == "refused"
    assert refused[-1].payload["reason"] == body["error"]


def test_unregistered_photo_needs_an_attestation_for_the_context(tmp_path, serve_studio, photo) -> None:
    home = keyed_home(tmp_path / "home")
    with serve_studio(studio(tmp_path, home)) as running:
        status, body = post_photo(running.http, photo.read_bytes(), "astronaut.png")
        assert status == 403, body
        assert "not a registered likeness" in body["error"] and "attestation" in body["error"]
        assert records(home, "consent-check")[-1].payload["result"] == "refused"
        assert json.loads(get(running.http + "/photos")[1]) == {"context": CONTEXT, "photos": []}

        other = token(home, "attest", photo, tmp_path / "other.jwt", "entertainment")
        status, body = post_photo(running.http, photo.read_bytes(), "astronaut.png", other)
        assert status == 403 and CONTEXT in body["error"], body

        attestation = token(home, "attest", photo, tmp_path / "attest.jwt")
        status, body = post_photo(running.http, photo.read_bytes(), "astronaut.png", attestation)
        assert status == 200, body
        assert body["likeness"] == "unregistered" and body["context"] == CONTEXT and body["signed"] is True
        assert body["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
        start = [r for r in records(home, "session-start") if r.seq == body["audit_seq"]]
        assert start and start[0].payload["kind"] == "photo" and start[0].payload["grant"] == body["grant"]
        assert [p["name"] for p in json.loads(get(running.http + "/photos")[1])["photos"]] == ["astronaut"]

        # a session driving the admitted photo says so in its session-start
        with connect(running.ws + "?avatar=astronaut", proxy=None, open_timeout=10) as conn:
            session_id = json.loads(conn.recv(timeout=10))["session"]
        session = [r for r in records(home, "session-start") if r.payload.get("session_id") == session_id]
        assert session[0].payload["kind"] == "photo" and session[0].payload["grant"] == body["grant"]

        # the admitted photo is rendered on the server: frame messages in, JPEGs of the animated photo out
        from facewire.render.photo import PhotoAvatar, PhotoRenderer

        shut, open_ = talking_frames()
        with connect(running.http.replace("http", "ws") + "/photo/astronaut/ws", proxy=None, open_timeout=10,
                     max_size=None) as conn:
            pictures = []
            for frame in (shut, open_):
                conn.send(json.dumps(frame_message(frame)))
                pictures.append(cv2.imdecode(np.frombuffer(conn.recv(timeout=60), np.uint8), cv2.IMREAD_COLOR))
            conn.send(json.dumps({"v": 1, "type": "pong"}))
            assert json.loads(conn.recv(timeout=10))["type"] == "error"  # answered; the stream goes on
            conn.send(json.dumps(frame_message(shut)))
            assert isinstance(conn.recv(timeout=60), bytes)
        with PhotoRenderer(PhotoAvatar.from_image(photo), (256, 256)) as local:
            expected = [local.render(f)[:, :, ::-1].astype(np.int16) for f in (shut, open_)]
        mouth = np.abs(expected[1] - expected[0]).sum(axis=2) > 60  # where the two frames differ locally
        assert mouth.sum() > 100
        diff = [[np.abs(p.astype(np.int16) - e)[mouth].mean() for e in expected] for p in pictures]
        assert 2 * diff[0][0] < diff[0][1] and 2 * diff[1][1] < diff[1][0], diff  # each is its frame, not the other
        whole = [np.abs(p.astype(np.int16) - e).mean() for p, e in zip(pictures, expected, strict=True)]
        assert max(whole) < 6.0, whole  # the same photo and crop: only JPEG and the watermark between them

        with connect(running.http.replace("http", "ws") + "/photo/nobody/ws", proxy=None, open_timeout=10) as conn, \
                pytest.raises(ConnectionClosed):
            conn.recv(timeout=10)
        assert conn.close_code == 1008 and "not admitted" in conn.close_reason
    facewire("audit", "verify", "--home", str(home))


def test_registered_likeness_needs_its_owners_grant(tmp_path, serve_studio, photo, registered) -> None:
    attestation = token(registered, "attest", photo, tmp_path / "attest.jwt")
    grant = token(registered, "grant", photo, tmp_path / "grant.jwt", CONTEXT, "--subject", "alice")
    with serve_studio(studio(tmp_path, registered)) as running:
        status, body = post_photo(running.http, photo.read_bytes(), "astronaut.png")
        assert status == 403 and "registered likeness 'Alice'" in body["error"] and "grant" in body["error"]
        assert records(registered, "consent-check")[-1].payload["reason"] == body["error"]

        status, body = post_photo(running.http, photo.read_bytes(), "astronaut.png", attestation)
        assert status == 403 and "attestation is not enough" in body["error"], body

        status, body = post_photo(running.http, photo.read_bytes(), "astronaut.png", grant)
        assert status == 200, body
        assert body["likeness"] == "registered:alice" and body["context"] == CONTEXT
    facewire("audit", "verify", "--home", str(registered))


def test_a_grant_for_another_context_is_refused(tmp_path, serve_studio, photo, registered) -> None:
    grant = token(registered, "grant", photo, tmp_path / "grant.jwt", CONTEXT, "--subject", "alice")
    with serve_studio(studio(tmp_path, registered, context="entertainment")) as running:
        status, body = post_photo(running.http, photo.read_bytes(), "astronaut.png", grant)
    assert status == 403 and "entertainment" in body["error"], body
    last = records(registered, "consent-check")[-1].payload
    assert last["result"] == "refused"


def test_a_studio_without_context_refuses_photos(tmp_path, serve_studio, photo) -> None:
    home = keyed_home(tmp_path / "home")
    attestation = token(home, "attest", photo, tmp_path / "attest.jwt")
    with serve_studio(studio(tmp_path, home, context=None)) as running:
        status, body = post_photo(running.http, photo.read_bytes(), "astronaut.png", attestation)
        assert status == 403 and "--context" in body["error"], body
        status, body = post_photo(running.http, b"not a picture", "astronaut.png", attestation)
        assert status == 400 and "astronaut.png" in body["error"], body
    assert records(home, "consent-check")[-1].payload["result"] == "refused"


def test_photo_upload_needs_a_trust_home(tmp_path, serve_studio, photo) -> None:
    with serve_studio(StudioConfig(work_dir=str(tmp_path))) as running:
        status, body = post_photo(running.http, photo.read_bytes(), "astronaut.png")
    assert status == 403 and "--context" in body["error"]
