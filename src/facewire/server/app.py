"""The studio's HTTP + WebSocket app (FastAPI): the page, three.js, avatars, takes and ``/ws``.

Routes: ``/`` the page; ``/static/…`` its script and style; ``/vendor/three/{build,examples/jsm}/…``
three.js from the npm package installed beside the page (`find_three`, `ensure_three`; never a CDN);
``/avatars`` the avatars on offer; ``/avatar/NAME.glb`` one avatar (``default`` is built on first
request and kept); ``PUT /avatar/NAME.glb`` adds one (checked by `facewire.render.glb.read_avatar`,
which reports the ARKit shapes it lacks); ``/takes/ID.FMT`` a recorded take; ``/health``; ``/metrics`` (sessions, tracker worker processes);
``/ws`` one `facewire.server.session.SessionRunner` per connection (its protocol is documented there;
``?avatar=NAME`` names the avatar it drives, for the audit log). With ``StudioConfig.trust_home`` the
studio audits (`facewire.server.trust`): session start/stop and take downloads are logged there, and
``POST /photo`` (multipart: ``photo`` + ``token``) admits a portrait as a photo avatar only with consent
(403 ``{"error": …}`` when refused); ``/photos`` lists those admitted; ``/photo/NAME/ws`` renders one:
the page sends it the frame messages it gets on ``/ws`` and gets back binary JPEGs of the photo (the
latest frame only, older ones dropped), watermarked as ``facewire render`` marks its frames.
Sessions track on this process's own pool of threads (shared by all sessions:
``StudioConfig.track_threads``), or with ``StudioConfig.workers`` in a pool of worker processes
(`facewire.server.workers`), each session pinned to one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response

from ..errors import FacewireError, InputError, ModelError
from ..frame import FaceFrame
from ..sinks.websocket import decode_message
from ..trust.consent import ConsentError
from .session import (
    CLOSE_FULL,
    CLOSE_INTERNAL,
    SessionLimits,
    SessionRunner,
    StudioSession,
    TakeStore,
    _reason,
    hello_message,
)
from .trust import StudioTrust, parse_form
from .workers import TrackerPool, WorkerGone, WorkerPool, default_track_threads

__all__ = ["STATIC_DIR", "Studio", "StudioConfig", "create_app", "ensure_three", "find_three", "listen_socket"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
_PAGE_FILES = {"app.js", "style.css", "pcm-worklet.js"}
_AVATAR_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TAKE_NAME = re.compile(r"^([0-9a-f]{16})\.(csv|glb|jsonl)$")
_MEDIA = {"csv": "text/csv", "glb": "model/gltf-binary", "jsonl": "application/x-ndjson"}
_PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_CLOSE_POLICY = 1008
_PHOTO_SIZE = (256, 256)  # streamed photo frames: small JPEGs, rendered on the CPU


# -- three.js -----------------------------------------------------------------------------------------
def _cache_npm_dir() -> Path:
    from ..models import cache_dir

    return cache_dir().parent / "studio"


def find_three() -> Path | None:
    """The installed ``three`` package: beside the page (``static/node_modules``) or in the cache."""
    for base in (STATIC_DIR, _cache_npm_dir()):
        three = base / "node_modules" / "three"
        if (three / "build" / "three.module.js").is_file():
            return three
    return None


def ensure_three(say: Callable[[str], None] | None = None) -> Path:
    """``three`` installed with ``npm ci`` from the page's ``package-lock.json`` when it is not yet.

    Installs beside the page when that directory is writable, else in facewire's cache directory.
    `ModelError` when npm is missing or fails.
    """
    found = find_three()
    if found is not None:
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise ModelError(f"the studio page needs three.js from npm, and npm is not on PATH (Debian: apt-get install "
                         f"npm), or run `npm ci` in {STATIC_DIR}")
    target = STATIC_DIR if os.access(STATIC_DIR, os.W_OK) else _cache_npm_dir()
    if target != STATIC_DIR:
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(STATIC_DIR / name, target / name)
    if say is not None:
        say(f"facewire: installing three.js for the studio page (npm ci in {target})…")
    proc = subprocess.run([npm, "ci", "--prefix", str(target), "--no-audit", "--no-fund", "--omit=dev"],
                          capture_output=True, text=True, check=False)
    found = find_three()
    if proc.returncode != 0 or found is None:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelError(f"npm ci in {target} failed (exit {proc.returncode}): {last[0]}")
    return found


# -- the listening socket ------------------------------------------------------------------------------
def listen_socket(host: str = "127.0.0.1", port: int = 0, backlog: int = 2048) -> socket.socket:
    """A TCP socket listening on ``host:port`` for uvicorn (``sockets=[…]``); `InputError` when it cannot.

    Its connections have Nagle's algorithm off. asyncio turns it off only for sockets whose ``proto``
    is TCP, and a plain ``socket.socket()`` says 0: with Nagle on, a reply written while the page's
    previous segment is not yet acknowledged waits for the page's delayed ACK, which rides on its next
    picture — every frame came back one camera period (33 ms) late.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets on Linux
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from exc
    return sock


# -- the app ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudioConfig:
    """How the studio serves: per-session limits, how many sessions, where extra avatars live."""

    limits: SessionLimits = field(default_factory=SessionLimits)
    max_sessions: int = 16
    avatar_dir: str | None = None  # .glb/.vrm files offered besides the default and uploads
    max_avatar_bytes: int = 64 << 20
    max_uploads: int = 16
    work_dir: str | None = None  # where takes and uploads are kept (a temporary directory inside)
    workers: int = 0  # tracker processes; 0 tracks in this process's threads
    track_threads: int | None = None  # threads mode: tracking threads; None: `default_track_threads`
    tracker_factory: Callable[[Callable[[], list]], Any] | None = None  # picklable when workers > 0
    trust_home: str | None = None  # audit sessions and exports there, admit photo avatars; None: no trust
    context: str | None = None  # the studio's use context (facewire consent contexts); photos need one
    passphrase: bytes | None = field(default=None, repr=False)  # unlocks the trust home's keys

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise InputError(f"workers: expected a whole number ≥ 0, got {self.workers!r}")
        if self.track_threads is not None and (isinstance(self.track_threads, bool)
                                               or not isinstance(self.track_threads, int) or self.track_threads < 1):
            raise InputError(f"track_threads: expected a positive whole number or None, got {self.track_threads!r}")
        if isinstance(self.max_sessions, bool) or not isinstance(self.max_sessions, int) or self.max_sessions < 1:
            raise InputError(f"max_sessions: expected a positive whole number, got {self.max_sessions!r}")


class Studio:
    """The app's state: live sessions, finished takes, avatars. Owned by one app; `close` frees it."""

    def __init__(self, config: StudioConfig) -> None:
        self.config = config
        self.takes = TakeStore(config.work_dir)
        self.uploads = Path(tempfile.mkdtemp(prefix="facewire-avatars-", dir=config.work_dir))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.uploads), True)
        self.sessions: dict[str, SessionRunner] = {}
        self._default_glb: bytes | None = None
        self._default_lock = asyncio.Lock()
        self.trackers = TrackerPool(config.tracker_factory)  # threads mode: trackers kept between sessions
        # threads mode: steps run on the studio's own pool, a session's one at a time; speech, audit
        # and photo work go to asyncio's pool and never hold a camera's picture back
        self.executor = ThreadPoolExecutor(config.track_threads or default_track_threads(),
                                           thread_name_prefix="facewire-track")
        self.pool: WorkerPool | None = None
        self._pool_lock = asyncio.Lock()
        self.trust: StudioTrust | None = None
        if config.trust_home is not None:
            try:
                self.trust = StudioTrust(config.trust_home, config.context, config.passphrase)
            except BaseException:
                self.close()
                raise

    async def workers(self) -> WorkerPool | None:
        """The worker pool, started on first need (the app's startup starts it when served)."""
        if self.config.workers < 1:
            return None
        async with self._pool_lock:
            if self.pool is None:
                pool = WorkerPool(self.config.workers, self.takes.root, tracker_factory=self.config.tracker_factory)
                await pool.start()
                self.pool = pool
            return self.pool

    async def stop_workers(self) -> None:
        async with self._pool_lock:
            pool, self.pool = self.pool, None
        if pool is not None:
            await pool.aclose()

    async def default_glb(self) -> bytes:
        async with self._default_lock:
            if self._default_glb is None:
                self._default_glb = await asyncio.to_thread(_build_default_glb)
            return self._default_glb

    def avatar_path(self, name: str) -> Path | None:
        for folder in (self.uploads, Path(self.config.avatar_dir) if self.config.avatar_dir else None):
            if folder is None:
                continue
            for suffix in (".glb", ".vrm"):
                path = folder / f"{name}{suffix}"
                if path.is_file():
                    return path
        return None

    def avatars(self) -> list[dict[str, str]]:
        out = [{"name": "default", "url": "/avatar/default.glb"}]
        seen = {"default"}
        for folder in (self.uploads, Path(self.config.avatar_dir) if self.config.avatar_dir else None):
            if folder is None or not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in (".glb", ".vrm") and _AVATAR_NAME.match(path.stem) and path.stem not in seen:
                    seen.add(path.stem)
                    out.append({"name": path.stem, "url": f"/avatar/{path.stem}.glb"})
        return out

    def close(self) -> None:
        self.executor.shutdown(wait=False)  # sessions' closes still queued there run
        if self.trust is not None:
            self.trust.close()
        self.takes.close()
        self._finalizer()


def _build_default_glb() -> bytes:
    from ..render.default_avatar import default_avatar
    from ..render.glb import glb_bytes

    return glb_bytes(default_avatar())


def _check_avatar(path: str) -> dict[str, Any]:
    from ..render.glb import read_avatar

    _, report = read_avatar(path)
    return {"found": len(report.found), "missing": list(report.missing), "fallbacks": sorted(report.fallbacks),
            "source": report.source}


def create_app(config: StudioConfig | None = None) -> FastAPI:
    """The FastAPI app; ``app.state.studio`` is its `Studio`."""
    config = config or StudioConfig()
    studio = Studio(config)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            await studio.workers()  # models load before the first page connects
            yield
        finally:
            await studio.stop_workers()
            studio.close()

    app = FastAPI(title="facewire studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.studio = studio

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/")
    async def page() -> Any:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico")
    async def favicon() -> Any:
        return Response(status_code=204)

    @app.get("/static/{name}")
    async def static(name: str) -> Any:
        if name not in _PAGE_FILES:
            return error(404, f"/static/{name}: no such file; the page has {', '.join(sorted(_PAGE_FILES))}")
        return FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})

    @app.get("/vendor/three/{path:path}")
    async def three(path: str) -> Any:
        root = find_three()
        if root is None:
            return error(503, f"three.js is not installed: run `npm ci` in {STATIC_DIR} (facewire serve does it)")
        if not (path.startswith(("build/", "examples/jsm/"))) or not path.endswith(".js"):
            return error(404, f"/vendor/three/{path}: only build/ and examples/jsm/ scripts are served")
        target = (root / path).resolve()
        if root.resolve() not in target.parents or not target.is_file():
            return error(404, f"/vendor/three/{path}: no such file")
        return FileResponse(target, media_type="text/javascript")

    @app.get("/health")
    async def health() -> Any:
        return {"ok": True, "sessions": len(studio.sessions), "takes": len(studio.takes)}

    @app.get("/metrics")
    async def metrics() -> Any:
        pool = studio.pool
        return {"pid": os.getpid(), "sessions": len(studio.sessions), "takes": len(studio.takes),
                "mode": "processes" if config.workers else "threads",
                "trackers_idle": studio.trackers.idle, "trackers_made": studio.trackers.created,
                "workers": await pool.stats() if pool is not None else []}

    @app.get("/avatars")
    async def avatars() -> Any:
        return {"avatars": studio.avatars()}

    @app.get("/avatar/{file}")
    async def avatar(file: str) -> Any:
        name = file.removesuffix(".glb")
        if name == "default":
            return Response(await studio.default_glb(), media_type="model/gltf-binary")
        path = studio.avatar_path(name) if _AVATAR_NAME.match(name) else None
        if path is None:
            return error(404, f"no avatar {name!r}; see /avatars")
        return FileResponse(path, media_type="model/gltf-binary")

    @app.put("/avatar/{file}")
    async def upload(file: str, request: Request) -> Any:
        name = file[:-4] if file.endswith(".glb") else file.removesuffix(".vrm")
        data = bytearray()  # read first: a client still sending would see a reset, not our answer
        async for chunk in request.stream():
            data += chunk
            if len(data) > config.max_avatar_bytes:
                return error(413, f"avatar: expected at most {config.max_avatar_bytes} bytes, got more")
        if not _AVATAR_NAME.match(name) or name == "default":
            return error(400, f"avatar name: expected 1-64 letters, digits, '-' or '_' (not 'default'), got {name!r}")
        if sum(1 for _ in studio.uploads.iterdir()) >= config.max_uploads and studio.avatar_path(name) is None:
            return error(400, f"avatars: at most {config.max_uploads} uploads per server")
        fd, tmp = tempfile.mkstemp(suffix=".glb", dir=studio.uploads, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            try:
                report = await asyncio.to_thread(_check_avatar, tmp)
            except FacewireError as exc:
                return error(400, str(exc).replace(tmp, f"{name}.glb"))
            os.replace(tmp, studio.uploads / f"{name}.glb")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return {"name": name, "url": f"/avatar/{name}.glb", **report}

    @app.get("/takes/{file}")
    async def take(file: str) -> Any:
        match = _TAKE_NAME.match(file)
        path = studio.takes.find(match[1], match[2]) if match else None
        if path is None or not os.path.isfile(path):
            return error(404, f"no take {file!r} (takes are kept while the server runs)")
        if studio.trust is not None:  # every download is an export: logged with the bytes' SHA-256
            await asyncio.to_thread(studio.trust.export, path, match[1], match[2])
        return FileResponse(path, media_type=_MEDIA[match[2]], filename=f"take-{file}")

    @app.post("/photo")
    async def photo(request: Request) -> Any:
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > config.max_avatar_bytes:
                return error(413, f"photo: expected at most {config.max_avatar_bytes} bytes, got more")
        trust = studio.trust
        if trust is None:
            return error(403, "photo avatars need the studio's trust context: serve with facewire serve --context C")
        try:
            fields = parse_form(request.headers.get("content-type", ""), bytes(data))
        except InputError as exc:
            return error(400, str(exc))
        filename, image = fields.get("photo", (None, b""))
        if not image:
            return error(400, "photo: expected a multipart field 'photo' holding a portrait image, got none")
        suffix = Path(filename or "photo.png").suffix.lower()
        if suffix not in _PHOTO_SUFFIXES:
            return error(400, f"photo: expected a {', '.join(_PHOTO_SUFFIXES)} file, got {filename!r}")
        name = fields.get("name", (None, b""))[1].decode("utf-8", "replace").strip() or Path(filename or "photo").stem
        if not _AVATAR_NAME.match(name) or name == "default":
            return error(400, f"photo name: expected 1-64 letters, digits, '-' or '_' (not 'default'), got {name!r}")
        token = next((fields[k][1].decode("ascii", "replace").strip() for k in ("token", "grant", "attestation")
                      if k in fields and fields[k][1].strip()), None)
        folder = studio.uploads / "photos"
        folder.mkdir(exist_ok=True)
        target = folder / f"{name}{suffix}"
        fd, tmp = tempfile.mkstemp(suffix=suffix, dir=folder, prefix=".upload-")
        with os.fdopen(fd, "wb") as out:
            out.write(image)
        os.replace(tmp, target)
        try:
            permit = await asyncio.to_thread(trust.check_photo, target, name, token)
        except ConsentError as exc:  # logged by the checks
            target.unlink(missing_ok=True)
            return error(403, str(exc))
        except FacewireError as exc:
            target.unlink(missing_ok=True)
            return error(400, str(exc).replace(str(target), filename or name))
        return {"name": permit.name, "context": permit.context, "grant": permit.grant_id,
                "likeness": permit.likeness, "audit_seq": permit.audit_seq, "signed": permit.signed,
                "sha256": permit.photo_sha256}

    @app.get("/photos")
    async def photos() -> Any:
        admitted = studio.trust.photos if studio.trust is not None else {}
        return {"context": config.context,
                "photos": [{"name": p.name, "likeness": p.likeness, "grant": p.grant_id} for p in admitted.values()]}

    @app.websocket("/photo/{name}/ws")
    async def photo_ws(websocket: WebSocket, name: str) -> None:
        await websocket.accept()
        try:
            if studio.trust is None:
                raise InputError("photo avatars need the studio's trust context: serve with --context C")
            stream = await asyncio.to_thread(studio.trust.photo_stream, name, _PHOTO_SIZE)
        except InputError as exc:
            await websocket.close(_CLOSE_POLICY, _reason(str(exc)))
            return
        latest: list[str] = []
        ready = asyncio.Event()

        async def reader() -> None:
            with contextlib.suppress(Exception):
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    if message.get("text"):
                        latest[:] = [message["text"]]  # the newest frame only: a slow render drops older ones
                        ready.set()
            latest[:] = [""]
            ready.set()

        task = asyncio.create_task(reader())
        try:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):  # the page left while we wrote
                while True:
                    await ready.wait()
                    ready.clear()
                    text = latest[0] if latest else ""
                    if not text:
                        break
                    try:
                        frame = decode_message(text)
                        if not isinstance(frame, FaceFrame):
                            raise InputError(f"photo stream: expected frame messages, got {frame.get('type')!r}")
                        jpeg = await asyncio.to_thread(stream.jpeg, frame)
                    except FacewireError as exc:  # one bad message is answered, the stream goes on
                        await websocket.send_json({"v": 1, "type": "error", "message": str(exc)})
                        continue
                    await websocket.send_bytes(jpeg)
        finally:
            task.cancel()
            stream.close()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        avatar_name = websocket.query_params.get("avatar") or "default"
        if not _AVATAR_NAME.match(avatar_name):
            await websocket.close(_CLOSE_POLICY, _reason(f"avatar: expected 1-64 letters, digits, '-' or '_', "
                                                         f"got {avatar_name!r}"))
            return
        if len(studio.sessions) >= config.max_sessions:
            await websocket.close(CLOSE_FULL, f"the studio is full ({config.max_sessions} sessions); try again later")
            return
        session_id = secrets.token_hex(6)
        session: Any
        start_seq: int | None = None
        result = "failed"
        studio.sessions[session_id] = None  # type: ignore[assignment]  # counted while it opens
        try:
            try:
                pool = await studio.workers()
                session = None if pool is None else await pool.open(session_id, config.limits, studio.takes)
            except WorkerGone as exc:
                await websocket.close(CLOSE_INTERNAL, _reason(f"no tracking worker: {exc}"))
                return
            if session is None:
                session = StudioSession(session_id, studio.takes, limits=config.limits,
                                        tracker_factory=studio.trackers.acquire,
                                        tracker_release=studio.trackers.release)
            runner = SessionRunner(websocket, session, config.limits, executor=studio.executor)
            studio.sessions[session_id] = runner
            if studio.trust is not None:
                start_seq = await asyncio.to_thread(studio.trust.session_start, session_id, avatar_name)
            await runner.run(hello_message(session_id, config.limits))
            result = "ok"
        finally:
            studio.sessions.pop(session_id, None)
            if start_seq is not None and studio.trust is not None:
                await asyncio.to_thread(studio.trust.session_stop, session_id, avatar_name, start_seq, result)

    return app
