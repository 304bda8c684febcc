"""Trust wired into rendering, through the library with real trust homes: real keys, a real likeness
registry (dlib embeddings), real signed grants and attestations, C2PA checked by c2pa-python's Reader,
and the hash-chained audit log verified after every render."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.frame import FaceFrame
from facewire.render.photo import PhotoAvatar
from facewire.render.seal import NoSeal
from facewire.render.trusted import TrustedRender
from facewire.render.video import render_take
from facewire.trust.audit import read_log, verify_log
from facewire.trust.certs import ROOT_NAME, create_signing_chain
from facewire.trust.consent import (
    ConsentError,
    ConsentStore,
    issue_attestation,
    issue_grant,
    likeness_reference,
)
from facewire.trust.keys import generate_identity, save_identity, trusted_keys
from facewire.trust.provenance import read_manifest
from facewire.trust.registry import LikenessRegistry, default_path
from facewire.trust.store import TrustHome

PASSPHRASE = b"correct horse battery staple"


def _take() -> list[FaceFrame]:
    frames = []
    for i in range(3):
        w = np.zeros(arkit.COUNT, np.float32)
        w[arkit.INDEX["jawOpen"]] = 0.5 * i
        frames.append(FaceFrame(t_ns=i * 33_333_333, seq=i, weights=w))
    return frames


def _home(root: Path, *, keys: bool = True) -> TrustHome:
    home = TrustHome(root).ensure()
    if keys:
        identity = generate_identity("operator")
        save_identity(identity, home, PASSPHRASE)
        create_signing_chain(home.c2pa_dir, subject="operator", passphrase=PASSPHRASE)
    return home


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut) -> Path:
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    cv2.imwrite(str(path), astronaut[:, :, ::-1])
    return path


@pytest.fixture(scope="module")
def avatar(photo, models) -> PhotoAvatar:
    return PhotoAvatar.from_image(photo, models=models)


@pytest.fixture(scope="module")
def registered(tmp_path_factory, photo) -> TrustHome:
    """A home with keys in which the astronaut is the registered likeness of subject 'alice'."""
    home = _home(tmp_path_factory.mktemp("registered"))
    with LikenessRegistry(default_path(home.root)) as registry:
        registry.register("alice", photo, name="Alice")
    return home


@pytest.fixture(scope="module")
def unregistered(tmp_path_factory) -> TrustHome:
    return _home(tmp_path_factory.mktemp("unregistered"))


def _identity(home: TrustHome):
    from facewire.trust.keys import load_identity

    return load_identity(home, PASSPHRASE)


def _render(avatar, home: TrustHome, out: Path, **trust) -> TrustedRender:
    with TrustedRender(avatar, home=home.root, passphrase=PASSPHRASE, out=out, take_sha256="ab" * 32, **trust) as t:
        result = render_take(_take(), avatar, out, size=(128, 128), seal=t.seal, progress=False)
        t.exported(result.path, frames=result.frames, duration_s=result.duration_s)
    return t


def _records(home: TrustHome) -> list:
    records, _ = read_log(home.audit_db)
    report = verify_log(home.audit_db, trusted_keys(home))
    assert report.ok, report.problems
    return records


def _trusted(path: Path, home: TrustHome):
    report = read_manifest(path, home.c2pa_dir / ROOT_NAME)
    assert report.status == "Trusted", report.failures
    return report.claims


def test_default_avatar_is_signed_and_audited(tmp_path):
    from facewire.render.default_avatar import default_avatar

    home = _home(tmp_path / "home")
    out = tmp_path / "face.png"
    t = _render(default_avatar(), home, out)
    claims = _trusted(out, home)
    records = _records(home)
    kinds = [r.kind for r in records]
    assert kinds[-3:] == ["session-start", "export", "session-stop"]
    start = records[-3]
    assert claims.audit.seq == start.seq and claims.audit.hash == start.hash and t.permit.signed
    assert records[-2].payload["signed"] is True and records[-1].payload["result"] == "ok"


def test_default_avatar_without_keys_warns_and_still_logs(tmp_path):
    from facewire.render.default_avatar import default_avatar

    home = _home(tmp_path / "home", keys=False)
    said: list[str] = []
    with TrustedRender(default_avatar(), home=home.root, warn=said.append) as t:
        assert isinstance(t.seal, NoSeal) and not t.permit.signed
    assert len(said) == 1 and "unsigned" in said[0] and "facewire keys init" in said[0]
    records = _records(home)
    assert [r.kind for r in records] == ["session-start", "session-stop"]
    assert records[-1].payload["result"] == "failed"  # nothing was exported


def test_photo_needs_keys(tmp_path, avatar):
    home = _home(tmp_path / "home", keys=False)
    with pytest.raises(ConsentError, match=r"rendered only signed.*run 'facewire keys init' first"):
        TrustedRender(avatar, home=home.root, context="entertainment").__enter__()
    assert [r.payload["result"] for r in _records(home)] == ["refused"]


def test_photo_refuses_no_sign_and_a_missing_context(unregistered, avatar):
    with pytest.raises(ConsentError, match="always signed"):
        TrustedRender(avatar, home=unregistered.root, context="entertainment", sign=False,
                      passphrase=PASSPHRASE).__enter__()
    with pytest.raises(ConsentError, match="needs a use context: --context one of telepresence"):
        TrustedRender(avatar, home=unregistered.root, passphrase=PASSPHRASE).__enter__()
    with pytest.raises(InputError, match="--context: expected one of"):
        TrustedRender(avatar, home=unregistered.root, context="parties")


def test_registered_photo_without_a_grant_is_refused_and_logged(registered, avatar, tmp_path):
    out = tmp_path / "alice.png"
    with pytest.raises(ConsentError) as info:
        _render(avatar, registered, out, context="entertainment")
    message = str(info.value)
    assert "matches registered likeness 'Alice' (distance" in message
    assert "a consent grant for context 'entertainment' is required (--grant FILE)" in message
    assert not out.exists()
    last = _records(registered)[-1]
    assert last.kind == "consent-check" and last.payload["result"] == "refused"
    assert last.payload["reason"] == message


def test_registered_photo_with_a_grant_is_rendered_signed_and_counted(registered, avatar, photo, tmp_path):
    token = issue_grant(_identity(registered), subject="alice", likeness=likeness_reference(photo),
                        contexts=["entertainment"], max_uses=1)
    out = tmp_path / "alice.png"
    t = _render(avatar, registered, out, context="entertainment", grant=token)
    claims = _trusted(out, registered)
    assert claims.grant_id == t.permit.grant_id and claims.grant_id.startswith("g-")
    assert claims.context == "entertainment"
    records = _records(registered)
    check = [r for r in records if r.kind == "consent-check"][-1]
    assert check.payload["result"] == "granted" and check.payload["jti"] == claims.grant_id
    start = [r for r in records if r.kind == "session-start"][-1]
    assert start.payload["likeness"] == "registered:alice" and start.seq == claims.audit.seq
    with ConsentStore(registered.consent_db) as store:
        assert store.uses(claims.grant_id) == 1
    with pytest.raises(ConsentError, match="already been used 1 of 1"):  # max_uses holds across renders
        _render(avatar, registered, tmp_path / "again.png", context="entertainment", grant=token)


def test_registered_photo_with_the_wrong_context_or_subject_or_an_attestation(registered, avatar, photo, tmp_path):
    identity = _identity(registered)
    token = issue_grant(identity, subject="alice", likeness=likeness_reference(photo), contexts=["telepresence"])
    with pytest.raises(ConsentError, match=r"does not allow context 'entertainment' \(allowed: telepresence\)"):
        _render(avatar, registered, tmp_path / "a.png", context="entertainment", grant=token)
    someone = issue_grant(identity, subject="bob", likeness=likeness_reference(photo), contexts=["entertainment"])
    with pytest.raises(ConsentError, match="the grant is for subject 'bob', not 'alice'"):
        _render(avatar, registered, tmp_path / "b.png", context="entertainment", grant=someone)
    attest = issue_attestation(identity, likeness=likeness_reference(photo), contexts=["entertainment"])
    with pytest.raises(ConsentError, match="an attestation is not enough"):
        _render(avatar, registered, tmp_path / "c.png", context="entertainment", attestation=attest)
    refused = [r for r in _records(registered)[-3:]]
    assert [r.payload["result"] for r in refused] == ["refused"] * 3
    assert not any((tmp_path / n).exists() for n in ("a.png", "b.png", "c.png"))


def test_unregistered_photo_needs_an_attestation(unregistered, avatar, photo, tmp_path):
    with pytest.raises(ConsentError, match=r"is not a registered likeness: an operator's signed attestation for "
                                            r"context 'training-simulation' is required \(--attest FILE"):
        _render(avatar, unregistered, tmp_path / "x.png", context="training-simulation")
    assert _records(unregistered)[-1].payload["result"] == "refused"
    other = tmp_path / "other.png"
    other.write_bytes(photo.read_bytes() + b"\0")  # another file: the attestation names exactly one photo
    identity = _identity(unregistered)
    wrong = issue_attestation(identity, likeness=likeness_reference(other), contexts=["training-simulation"])
    with pytest.raises(ConsentError, match="covers likeness sha256"):
        _render(avatar, unregistered, tmp_path / "y.png", context="training-simulation", attestation=wrong)
    attest = issue_attestation(identity, likeness=likeness_reference(photo), contexts=["training-simulation"])
    out = tmp_path / "ok.png"
    t = _render(avatar, unregistered, out, context="training-simulation", attestation=attest)
    claims = _trusted(out, unregistered)
    assert claims.grant_id == t.permit.grant_id and claims.grant_id.startswith("a-")
    assert claims.context == "training-simulation" and t.permit.likeness == "unregistered"


def test_a_photo_cannot_bypass_the_checks(avatar, tmp_path):
    with pytest.raises(InputError, match="renders only through a trust seal"):
        render_take(_take(), avatar, tmp_path / "x.png", size=(128, 128), progress=False)
    assert not (tmp_path / "x.png").exists()


# -- review findings (issue 8) ------------------------------------------------------------------------
def test_a_reencoded_copy_of_a_registered_photo_is_still_matched(registered, photo, models, tmp_path):
    """Re-encoding (JPEG q75) and resizing change every byte of the file, not the face: the registry
    still finds alice, an attestation for the copy is not enough, and a grant bound to the copy's
    bytes instead of alice's registered asset is refused."""
    rgb = cv2.imread(str(photo))
    copy = tmp_path / "copy.jpg"
    small = cv2.resize(rgb, (rgb.shape[1] * 9 // 10, rgb.shape[0] * 9 // 10), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(copy), small, [cv2.IMWRITE_JPEG_QUALITY, 75])
    avatar = PhotoAvatar.from_image(copy, models=models)
    assert avatar.asset_sha256 != likeness_reference(photo).asset_sha256
    identity = _identity(registered)
    attest = issue_attestation(identity, likeness=likeness_reference(copy), contexts=["entertainment"])
    with pytest.raises(ConsentError, match=r"matches registered likeness 'Alice'.*an attestation is not enough"):
        _render(avatar, registered, tmp_path / "a.png", context="entertainment", attestation=attest)
    wrong = issue_grant(identity, subject="alice", likeness=likeness_reference(copy), contexts=["entertainment"])
    with pytest.raises(ConsentError, match="covers likeness sha256"):
        _render(avatar, registered, tmp_path / "b.png", context="entertainment", grant=wrong)
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()
    assert [r.payload["result"] for r in _records(registered)[-2:]] == ["refused", "refused"]


def test_a_failed_session_is_logged_even_when_its_error_quotes_a_token(tmp_path):
    """The audit log refuses signed tokens; a crash whose message quotes one must still end its session."""
    from facewire.render.default_avatar import default_avatar

    home = _home(tmp_path / "home")
    token = issue_grant(_identity(home), subject="alice", likeness=likeness_reference(b"x"), contexts=["telepresence"])
    with pytest.raises(RuntimeError, match="boom"), TrustedRender(default_avatar(), home=home.root,
                                                                  passphrase=PASSPHRASE):
        raise RuntimeError(f"boom while using {token}")
    stop = _records(home)[-1]
    assert stop.kind == "session-stop" and stop.payload["result"] == "failed"
    assert "RuntimeError" in stop.payload["error"] and token not in stop.payload_json
