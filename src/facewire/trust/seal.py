"""`TrustSeal`: the renderer's `Seal` that watermarks every frame and signs the finished file with C2PA.

Each frame gets the invisible watermark pointing at the render's audit record; the finished PNG,
JPEG or MP4 gets a C2PA manifest (created by a trained algorithm, facewire and its version, the
take's hash, the consent grant and context, the audit record, the avatar kind and the watermark
payload) signed with the local or user-supplied signing chain.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from . import watermark
from .certs import SigningChain
from .provenance import AuditRef, RenderClaims, sign_file

__all__ = ["TrustSeal"]

_TAKE_KEYS = ("take_sha256", "take_hash", "take")  # what the renderer may call the take's hash
_RENDER_KEYS = ("avatar", "width", "height", "size", "fps", "frames", "frame_count", "duration_s", "at_s", "format")


class TrustSeal:
    """A `facewire.render.seal.Seal`: ``mark_frame`` embeds ``audit_ref``'s watermark payload,
    ``finish`` signs the file in place. ``grant_id``/``context`` are the consent grant the render
    was allowed by (``None`` for an unregistered likeness under an operator's attestation).
    ``stable``: manifest ids named by the content (see `facewire.trust.provenance.sign_file`)."""

    def __init__(self, chain: SigningChain, audit_ref: AuditRef, grant_id: str | None, context: str | None, *,
                 avatar: str | None = None, take_sha256: str | None = None, passphrase: bytes | None = None,
                 strength: float = watermark.DEFAULT_STRENGTH, stable: bool = False) -> None:
        if not isinstance(audit_ref, AuditRef):
            raise InputError(f"audit reference: expected an AuditRef, got {type(audit_ref).__name__}")
        chain.validate(passphrase)  # fail before rendering, not after
        self.chain = chain
        self.audit_ref = audit_ref
        self.grant_id = grant_id
        self.context = context
        self.avatar = avatar
        self.take_sha256 = take_sha256
        self.strength = strength
        self.stable = stable
        self._passphrase = passphrase
        self.payload = audit_ref.watermark_payload()
        self.frames_marked = 0

    def mark_frame(self, rgb: np.ndarray, index: int) -> np.ndarray:
        out = watermark.embed(rgb, self.payload, strength=self.strength)
        self.frames_marked += 1
        return out

    def claims(self, info: Mapping[str, Any]) -> RenderClaims:
        """What the manifest will state for a render described by ``info``."""
        take = self.take_sha256 or next((str(info[k]) for k in _TAKE_KEYS if info.get(k)), None)
        avatar = self.avatar or (str(info["avatar"]) if info.get("avatar") else None)
        render = {k: _plain(info[k]) for k in _RENDER_KEYS if k in info and _plain(info[k]) is not None}
        return RenderClaims(take_sha256=take, grant_id=self.grant_id, context=self.context, audit=self.audit_ref,
                            avatar=avatar, watermark=self.payload.hex() if self.frames_marked else None,
                            render=render)

    def finish(self, path: Path, info: dict[str, Any]) -> Path:
        path = Path(path)
        return sign_file(path, path, self.chain, self.claims(info), passphrase=self._passphrase,
                         title=str(info.get("title") or info.get("name") or _title(path)), stable=self.stable)


def _title(path: Path) -> str:
    """The destination's name when ``path`` is an `atomic_write` temporary (``.NAME.XXXXXXXX.part``)."""
    match = re.fullmatch(r"\.(.+)\.[A-Za-z0-9_]+\.part", path.name)
    return match.group(1) if match else path.name


def _plain(value: Any) -> Any:
    """A manifest-safe copy of a small value (number or string; a short sequence becomes ``"320x240"``,
    since c2pa's CBOR conversion mangles arrays of integers), else ``None``."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (list, tuple)) and 0 < len(value) <= 8:
        items = [_plain(v) for v in value]
        return "x".join(str(i) for i in items) if all(isinstance(i, (int, float, str)) for i in items) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return None
