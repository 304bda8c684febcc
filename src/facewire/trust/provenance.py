"""C2PA provenance of what facewire renders: sign a PNG, JPEG or MP4 with a manifest, read and validate one.

The manifest says the file was *created* by an AI tool (``c2pa.actions``: ``c2pa.created`` with
IPTC digital source type ``trainedAlgorithmicMedia``), names facewire and its version as claim
generator, and carries an ``org.facewire.render`` assertion: the source take's SHA-256, the consent
grant's id and use context, the audit record (seq + hash) the render was logged as, the avatar
kind and the watermark payload. Signing and validation are c2pa-python's (c2pa-rs underneath);
this module only builds the manifest and reads the verdict. Nothing goes to the network: no
timestamp authority, no OCSP, no remote manifests. A verdict is c2pa's own validation state:
``Trusted`` (signature and hashes hold and the signer chains to a given trust anchor), ``Valid``
(they hold but the signer is not trusted) or ``Invalid`` (anything fails, or there is no manifest).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import atomic_write
from ..errors import InputError, OutputError
from .certs import SigningChain

__all__ = [
    "ASSERTION_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "AuditRef",
    "ProvenanceReport",
    "RenderClaims",
    "claims_json",
    "media_type",
    "read_manifest",
    "sign_file",
    "stable_ids",
]

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ASSERTION_LABEL = "org.facewire.render"
GENERATOR = "facewire"
TRUSTED, VALID, INVALID = "Trusted", "Valid", "Invalid"

# no network, ever: c2pa-rs may otherwise fetch OCSP responses and remote manifests
_OFFLINE = {"verify": {"ocsp_fetch": False, "remote_manifest_fetch": False}}
_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".mp4": "video/mp4",
             ".m4v": "video/mp4", ".mov": "video/quicktime"}


@dataclass(frozen=True)
class AuditRef:
    """A reference to one audit-log record: its sequence number and hash (hex SHA-256)."""

    seq: int
    hash: str

    def __post_init__(self) -> None:
        if not isinstance(self.seq, int) or self.seq < 0:
            raise InputError(f"audit reference seq: expected a non-negative integer, got {self.seq!r}")
        if not isinstance(self.hash, str) or len(self.hash) < 4 or any(c not in "0123456789abcdef" for c in self.hash):
            raise InputError(f"audit reference hash: expected lowercase hex digits, got {self.hash!r}")

    def watermark_payload(self) -> bytes:
        """The 6-byte watermark payload that points at this record."""
        from .watermark import audit_payload

        return audit_payload(self.seq, self.hash)


@dataclass(frozen=True)
class RenderClaims:
    """What facewire states about a render, as the ``org.facewire.render`` assertion holds it."""

    take_sha256: str | None = None
    grant_id: str | None = None
    context: str | None = None
    audit: AuditRef | None = None
    avatar: str | None = None
    watermark: str | None = None  # hex of the watermark payload embedded in the frames
    render: Mapping[str, Any] = field(default_factory=dict)  # size, fps, frames … as the renderer said

    def to_assertion(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": 1}
        for key in ("take_sha256", "grant_id", "context", "avatar", "watermark"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.audit is not None:
            data["audit"] = {"seq": self.audit.seq, "hash": self.audit.hash}
        if self.render:
            # c2pa's JSON → CBOR conversion mangles arrays of integers, so sequences travel as "320x240"
            data["render"] = {k: "x".join(map(str, v)) if isinstance(v, (list, tuple)) else v
                              for k, v in self.render.items()}
        return data

    @classmethod
    def from_assertion(cls, data: Mapping[str, Any]) -> RenderClaims:
        audit = data.get("audit")
        ref = None
        if isinstance(audit, Mapping):
            try:
                ref = AuditRef(int(audit.get("seq")), str(audit.get("hash")))
            except (InputError, TypeError, ValueError):
                ref = None
        text = {k: (str(data[k]) if data.get(k) is not None else None)
                for k in ("take_sha256", "grant_id", "context", "avatar", "watermark")}
        render = data.get("render")
        return cls(audit=ref, render=dict(render) if isinstance(render, Mapping) else {}, **text)


@dataclass(frozen=True)
class ProvenanceReport:
    """The verdict on one file. ``status`` is ``Trusted``, ``Valid`` or ``Invalid``; ``failures``
    and ``messages`` are c2pa's validation codes with their explanations (``code: explanation``)."""

    path: Path
    status: str
    has_manifest: bool
    generator: str | None = None
    digital_source_type: str | None = None
    signer: str | None = None
    claims: RenderClaims | None = None
    failures: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()

    @property
    def trusted(self) -> bool:
        return self.status == TRUSTED


def media_type(path: str | os.PathLike[str], head: bytes | None = None) -> str:
    """The MIME type c2pa needs, from the file's first bytes (so temporary names work), else its suffix."""
    path = Path(path)
    if head is None:
        try:
            with open(path, "rb") as f:
                head = f.read(12)
        except OSError as exc:
            raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    suffix = path.suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    raise InputError(f"{path}: expected a PNG, JPEG or MP4/MOV file, got something else")


def _manifest(title: str, claims: RenderClaims) -> dict[str, Any]:
    return {
        "claim_generator_info": [{"name": GENERATOR, "version": __version__}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                 "softwareAgent": {"name": GENERATOR, "version": __version__}}]}},
            {"label": ASSERTION_LABEL, "data": claims.to_assertion()},
        ],
    }


def stable_ids(mime: str, data: bytes, manifest: Mapping[str, Any], chain_pem: bytes) -> tuple[str, str]:
    """(manifest label, instance id) named by what is signed: the unsigned file, the manifest and
    the signer's chain. The same render signed twice gets the same ids; anything else, other ids."""
    digest = hashlib.sha256()
    for part in (mime.encode(), data, json.dumps(manifest, sort_keys=True).encode(), chain_pem):
        digest.update(len(part).to_bytes(8, "big") + part)
    # c2pa-rs accepts only version-4 claim GUIDs: the digest's first 16 bytes with v4's version bits
    name = uuid.UUID(bytes=digest.digest()[:16], version=4)
    return f"urn:c2pa:{name}", f"xmp.iid:{name}"  # c2pa-rs's own forms


def sign_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], chain: SigningChain,
              claims: RenderClaims, *, passphrase: bytes | None = None, title: str | None = None,
              stable: bool = False) -> Path:
    """Write ``dst``: ``src`` with an embedded C2PA manifest signed by ``chain`` (``dst`` may be
    ``src``; it is replaced atomically). Returns ``dst``.

    ``stable``: the manifest's label and instance id come from `stable_ids` instead of c2pa's random
    UUIDs. Even then two signings differ in c2pa's own random bytes: the 16-byte salt c2pa-rs puts
    in every assertion box (``c2sh``, no setting turns it off), the claim's hashes of those boxes,
    and the ECDSA (ES256) signature; everything outside the manifest store is the same."""
    import c2pa

    src, dst = Path(src), Path(dst)
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise InputError(f"{src}: cannot read it ({exc.strerror or exc})") from exc
    mime = media_type(src, data[:12])
    try:
        alg = getattr(c2pa.C2paSigningAlg, chain.algorithm().upper())
    except AttributeError as exc:
        raise InputError(f"certificate {chain.chain}: its key algorithm is not one c2pa signs with") from exc
    key_pem = chain.private_key_pem(passphrase)
    manifest = _manifest(title or dst.name, claims)
    if stable:
        manifest["label"], manifest["instance_id"] = stable_ids(mime, data, manifest, chain.chain_pem())
    settings = dict(_OFFLINE, builder={"thumbnail": {"enabled": False}})
    out = io.BytesIO()
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg, chain.chain_pem(), key_pem, None))
        with signer, c2pa.Context(c2pa.Settings.from_dict(settings)) as ctx, \
                c2pa.Builder(manifest, context=ctx) as builder:
            builder.sign(signer, mime, io.BytesIO(data), out)
    except c2pa.C2paError as exc:
        raise OutputError(f"cannot sign {src}: c2pa refused it ({exc})") from exc
    with atomic_write(dst, "wb") as f:
        f.write(out.getvalue())
    return dst


def _anchors_pem(trust_anchors: bytes | str | os.PathLike[str] | None) -> str | None:
    if trust_anchors is None:
        return None
    if isinstance(trust_anchors, bytes):
        return trust_anchors.decode("ascii")
    if isinstance(trust_anchors, str) and "-----BEGIN CERTIFICATE-----" in trust_anchors:
        return trust_anchors
    path = Path(trust_anchors)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"trust anchor {path}: cannot read it as a PEM certificate ({exc})") from exc
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise InputError(f"trust anchor {path}: expected a PEM certificate, got no 'BEGIN CERTIFICATE' block")
    return text


def _codes(entries: Any) -> tuple[str, ...]:
    return tuple(f"{e.get('code', '?')}: {e.get('explanation', '')}".rstrip(": ")
                 for e in entries or () if isinstance(e, Mapping))


def read_manifest(path: str | os.PathLike[str],
                  trust_anchors: bytes | str | os.PathLike[str] | None = None) -> ProvenanceReport:
    """Read and validate the C2PA manifest of ``path``; ``trust_anchors`` is a PEM (bytes, text or
    a file) of root certificates whose signers count as ``Trusted``."""
    import c2pa

    path = Path(path)
    mime = media_type(path)
    settings: dict[str, Any] = dict(_OFFLINE)
    anchors = _anchors_pem(trust_anchors)
    if anchors is not None:
        settings["trust"] = {"trust_anchors": anchors}
    try:
        with open(path, "rb") as stream, c2pa.Context(c2pa.Settings.from_dict(settings)) as ctx:
            reader = c2pa.Reader.try_create(mime, stream, context=ctx)
            if reader is None:
                return ProvenanceReport(path, INVALID, False, failures=("no C2PA manifest in the file",))
            with reader:
                state = reader.get_validation_state() or INVALID
                results = reader.get_validation_results() or {}
                manifest = reader.get_active_manifest() or {}
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    except c2pa.C2paError as exc:
        return ProvenanceReport(path, INVALID, True, failures=(f"manifest unreadable: {exc}",))
    active = results.get("activeManifest") or {}
    failures = _codes(active.get("failure"))
    messages = _codes(active.get("success")) + _codes(active.get("informational"))
    generator = None
    for info in manifest.get("claim_generator_info") or ():
        if isinstance(info, Mapping) and info.get("name"):
            generator = f"{info['name']} {info.get('version', '')}".strip()
            break
    source_type, claims = None, None
    for assertion in manifest.get("assertions") or ():
        label, data = assertion.get("label", ""), assertion.get("data") or {}
        if label.startswith("c2pa.actions"):
            for action in data.get("actions") or ():
                if action.get("action") == "c2pa.created":
                    source_type = action.get("digitalSourceType")
        elif label == ASSERTION_LABEL and isinstance(data, Mapping):
            claims = RenderClaims.from_assertion(data)
    signer = (manifest.get("signature_info") or {}).get("common_name")
    status = state if state in (TRUSTED, VALID) else INVALID
    return ProvenanceReport(path, status, True, generator=generator, digital_source_type=source_type,
                            signer=signer, claims=claims, failures=failures, messages=messages)


def claims_json(report: ProvenanceReport, **extra: Any) -> str:
    """The report (and any ``extra`` keys) as one JSON object, for ``facewire verify --json``."""
    claims = report.claims.to_assertion() if report.claims is not None else None
    return json.dumps({"path": str(report.path), "status": report.status, "has_manifest": report.has_manifest,
                       "generator": report.generator, "digital_source_type": report.digital_source_type,
                       "signer": report.signer, "claims": claims, "failures": list(report.failures), **extra},
                      sort_keys=True)
