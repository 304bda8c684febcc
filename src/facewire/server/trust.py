"""The studio's trust: its use context, its audit records (sessions, exports) and photo avatar consent.

`StudioTrust` is what ``facewire serve --context C --home DIR`` runs with: one open audit log in the
trust home for ``session-start``/``session-stop``/``export`` records, and `check_photo`, which runs
an uploaded portrait through the same checks as ``facewire render --avatar PHOTO`` (keys, likeness
registry, grant or attestation, logged refusals) by running `facewire.render.trusted.TrustedRender`.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models import sha256_file

__all__ = ["PhotoPermit", "PhotoStream", "StudioTrust", "parse_form", "token_typ"]


@dataclass(frozen=True)
class PhotoPermit:
    """An accepted photo avatar: whose face, under which token, and the audit record that admitted it."""

    name: str
    photo_sha256: str
    context: str
    grant_id: str
    likeness: str  # "registered:<subject>" or "unregistered"
    audit_seq: int
    signed: bool


def token_typ(token: str) -> str | None:
    """The ``typ`` in a compact JWS's header (unverified: it only routes the token to the right check)."""
    head = token.strip().split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    typ = header.get("typ") if isinstance(header, dict) else None
    return typ if isinstance(typ, str) else None


def parse_form(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """A ``multipart/form-data`` body as field name → (file name or None, bytes); `InputError` when it is not one."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise InputError(f"expected a multipart/form-data upload (photo + token), got {content_type or 'no type'!r}")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
                                                  + body)
    if not message.is_multipart():
        raise InputError("expected a multipart/form-data upload with a boundary, got a body without parts")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and name not in fields:
            payload = part.get_payload(decode=True)
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


class PhotoStream:
    """An admitted photo avatar rendered on the CPU per `FaceFrame` (the page cannot warp a photo), each
    picture watermarked with the admitting session-start record as ``facewire render`` marks its frames."""

    def __init__(self, avatar: Any, seal: Any, size: tuple[int, int], quality: int = 80) -> None:
        from ..render.photo import PhotoRenderer

        self.renderer = PhotoRenderer(avatar, size)
        self.seal = seal
        self.quality = quality
        self.frames = 0

    def jpeg(self, frame: Any) -> bytes:
        import cv2

        rgb = self.seal.mark_frame(self.renderer.render(frame), self.frames)
        self.frames += 1
        ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise InputError("photo stream: the picture could not be encoded as JPEG")
        return data.tobytes()

    def close(self) -> None:
        self.renderer.close()


class StudioTrust:
    """The studio's side of a trust home: its audit records and admitted photos; its methods block (call
    them off the event loop).

    ``context`` is the studio's use context (None: photo avatars are refused, saying so); ``passphrase``
    unlocks the home's keys. Without keys the log still records, with no signed checkpoints.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, context: str | None = None,
                 passphrase: bytes | None = None) -> None:
        from ..trust.audit import home_log
        from ..trust.consent import CONTEXT_NAMES
        from ..trust.keys import key_is_encrypted, load_identity
        from ..trust.store import trust_home

        if context is not None and context not in CONTEXT_NAMES:
            raise InputError(f"--context: expected one of {', '.join(CONTEXT_NAMES)}, got {context!r}")
        self.home = trust_home(home).ensure()
        self.context = context
        self.passphrase = passphrase
        identity = None
        if self.home.key_file.exists():
            if passphrase is None and key_is_encrypted(self.home.key_file):
                raise InputError(f"the identity key in {self.home.root} is encrypted: give its passphrase with "
                                 "--passphrase-env VAR")
            identity = load_identity(self.home, passphrase)
        self._identity = identity
        home_log(self.home.root, identity).close()  # a log that cannot be opened fails at startup, not mid-session
        self.photos: dict[str, PhotoPermit] = {}
        self._avatars: dict[str, tuple[Any, Any]] = {}  # name → (PhotoAvatar, the seal that marks its frames)
        self._lock = threading.Lock()

    def record(self, kind: str, payload: dict[str, Any]) -> int:
        """Append one record (the studio's context added); its sequence number."""
        from ..trust.audit import home_log

        # opened per record, not held for the server's life: every open runs `trust.store.private_db`,
        # which opens and closes the file and so drops this process's SQLite locks on it; a connection
        # held open then read a WAL that other processes had reset ("disk I/O error", broken chains)
        with self._lock, home_log(self.home.root, self._identity) as log:
            return log.append(kind, {"context": self.context, **payload}).seq

    def session_start(self, session_id: str, avatar: str) -> int:
        photo = self.photos.get(avatar)
        return self.record("session-start", {
            "session_id": session_id, "avatar": avatar, "kind": "photo" if photo else "mesh", "studio": True,
            "grant": photo.grant_id if photo else None, "likeness": photo.likeness if photo else None})

    def session_stop(self, session_id: str, avatar: str, start_seq: int, result: str = "ok") -> int:
        return self.record("session-stop", {"session_id": session_id, "avatar": avatar, "session": start_seq,
                                            "result": result, "studio": True})

    def export(self, path: str, take: str, fmt: str) -> tuple[int, str]:
        """Log a take download: (record seq, the file's SHA-256)."""
        sha = sha256_file(path)
        seq = self.record("export", {"path": os.path.abspath(path), "take": take, "format": fmt, "sha256": sha,
                                     "signed": False, "studio": True})
        return seq, sha

    def check_photo(self, photo: Path, name: str, token: str | None) -> PhotoPermit:
        """Admit a portrait as checked by ``facewire render --avatar PHOTO --context C --grant/--attest``.

        `facewire.trust.consent.ConsentError` (logged) when refused; `InputError` when the file is no
        photo of one face. The token goes as a grant or an attestation by its header's ``typ``.
        """
        from ..render.photo import PhotoAvatar
        from ..render.trusted import TrustedRender
        from ..trust.consent import GRANT_TYP

        avatar = PhotoAvatar.from_image(photo, name=name)
        grant = attestation = None
        if token:
            if token_typ(token) == GRANT_TYP:
                grant = token
            else:
                attestation = token
        with TrustedRender(avatar, home=self.home.root, context=self.context, grant=grant, attestation=attestation,
                           passphrase=self.passphrase, out=None, warn=None) as trusted:
            permit = trusted.permit
            assert permit is not None and permit.grant_id is not None and permit.likeness is not None
            # the render's session ends here: what follows are the studio sessions that use this avatar
            trusted.stop(frames=0, studio="photo avatar admitted")
        accepted = PhotoPermit(name, avatar.asset_sha256 or "", self.context or "", permit.grant_id,
                               permit.likeness, permit.audit_seq, permit.signed)
        with self._lock:
            self.photos[name] = accepted
            self._avatars[name] = (avatar, permit.seal)
        return accepted

    def photo_stream(self, name: str, size: tuple[int, int]) -> PhotoStream:
        """A renderer of an admitted photo avatar's frames as watermarked JPEGs; `InputError` when not admitted."""
        with self._lock:
            found = self._avatars.get(name)
        if found is None:
            raise InputError(f"photo avatar {name!r}: not admitted here; upload it with its consent token first")
        return PhotoStream(*found, size)

    def close(self) -> None:
        """Nothing is held open between records; kept so the studio's shutdown reads the same for any state."""
