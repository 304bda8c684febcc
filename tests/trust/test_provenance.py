"""C2PA signing and validation of PNG, JPEG and MP4, checked by c2pa-python's own Reader as well as ours."""

import io
import json
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest

from facewire import __version__
from facewire.errors import InputError
from facewire.trust.certs import create_signing_chain
from facewire.trust.provenance import (
    ASSERTION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    AuditRef,
    RenderClaims,
    media_type,
    read_manifest,
    sign_file,
)

c2pa = pytest.importorskip("c2pa")

TAKE = "5f" * 32
AUDIT = AuditRef(41, "a1b2" * 16)
CLAIMS = RenderClaims(take_sha256=TAKE, grant_id="grant-7", context="telepresence", audit=AUDIT, avatar="photo",
                      render={"fps": 25, "frames": 8})
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".mp4": "video/mp4"}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return create_signing_chain(tmp_path_factory.mktemp("c2pa"))


@pytest.fixture(scope="module")
def media(tmp_path_factory, astronaut):
    """Unsigned files made here: a PNG and a JPEG of the astronaut, an 8-frame H.264 MP4."""
    d = tmp_path_factory.mktemp("media")
    small = cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(d / "still.png"), bgr)
    cv2.imwrite(str(d / "still.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    with av.open(str(d / "clip.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 128, "yuv420p"
        for i in range(8):
            frame = np.roll(small, 4 * i, axis=1)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return {s: d / f"{n}{s}" for s, n in ((".png", "still"), (".jpg", "still"), (".mp4", "clip"))}


@pytest.fixture(scope="module")
def signed(media, chain, tmp_path_factory):
    d = tmp_path_factory.mktemp("signed")
    return {s: sign_file(p, d / f"signed{s}", chain, CLAIMS) for s, p in media.items()}


def _c2pa_state(path, anchor_pem=None):
    """The verdict of c2pa-python's own Reader, configured here independently of our code."""
    settings = {"verify": {"ocsp_fetch": False, "remote_manifest_fetch": False}}
    if anchor_pem is not None:
        settings["trust"] = {"trust_anchors": anchor_pem.decode()}
    with c2pa.Context(c2pa.Settings.from_dict(settings)) as ctx:
        reader = c2pa.Reader.try_create(MIME[path.suffix], io.BytesIO(path.read_bytes()), context=ctx)
        if reader is None:
            return None, None
        with reader:
            return reader.get_validation_state(), json.loads(reader.json())


def _media_offset(data: bytes, suffix: str) -> int:
    """Where the picture data starts, found by walking the file's structure (never inside the manifest)."""
    if suffix == ".png":  # chunks: length, type, data, crc
        at = 8
        while data[at + 4:at + 8] != b"IDAT":
            at += 12 + int.from_bytes(data[at:at + 4], "big")
        return at + 8
    if suffix == ".jpg":  # segments up to start-of-scan, then entropy-coded data
        at = 2
        while data[at + 1] != 0xDA:
            at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
        return at + 2 + int.from_bytes(data[at + 2:at + 4], "big")
    at = 0  # MP4 top-level boxes: size, type
    while data[at + 4:at + 8] != b"mdat":
        at += int.from_bytes(data[at:at + 4], "big")
    return at + 8


def _flip_media_byte(data: bytes, suffix: str) -> bytes:
    """One bit of the picture itself changed: inside PNG IDAT, JPEG scan data or MP4 mdat."""
    at = _media_offset(data, suffix) + 20
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".mp4"])
def test_trusted_with_own_root_by_c2pa_reader(signed, chain, suffix):
    state, store = _c2pa_state(signed[suffix], chain.root_pem())
    assert state == "Trusted"
    manifest = store["manifests"][store["active_manifest"]]
    labels = {a["label"]: a["data"] for a in manifest["assertions"]}
    actions = next(v for k, v in labels.items() if k.startswith("c2pa.actions"))["actions"]
    assert {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA}.items() <= actions[0].items()
    assert labels[ASSERTION_LABEL]["take_sha256"] == TAKE
    assert labels[ASSERTION_LABEL]["audit"] == {"seq": 41, "hash": AUDIT.hash}
    assert manifest["claim_generator_info"][0]["name"] == "facewire"
    assert manifest["claim_generator_info"][0]["version"] == __version__


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".mp4"])
def test_read_manifest_reports_claims(signed, chain, suffix):
    report = read_manifest(signed[suffix], chain.root)
    assert report.status == "Trusted" and report.trusted and report.failures == ()
    assert report.generator == f"facewire {__version__}"
    assert report.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert report.claims == CLAIMS


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".mp4"])
def test_one_changed_byte_is_invalid(signed, chain, suffix, tmp_path):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(_flip_media_byte(signed[suffix].read_bytes(), suffix))
    assert _c2pa_state(bad, chain.root_pem())[0] == "Invalid"
    report = read_manifest(bad, chain.root)
    assert report.status == "Invalid" and report.failures


def test_untrusted_signer_is_valid_not_trusted(signed, tmp_path):
    other_root = create_signing_chain(tmp_path).root
    for anchor in (None, other_root):
        report = read_manifest(signed[".png"], anchor)
        assert report.status == "Valid"
        assert any(f.startswith("signingCredential.untrusted") for f in report.failures)


def test_no_manifest_is_invalid(media, chain):
    assert _c2pa_state(media[".mp4"], chain.root_pem()) == (None, None)
    report = read_manifest(media[".mp4"], chain.root)
    assert report.status == "Invalid" and not report.has_manifest and report.claims is None


def test_media_type_sniffs_content_not_name(signed, tmp_path):
    renamed = tmp_path / ".out.mp4.x1y2.part"
    renamed.write_bytes(signed[".mp4"].read_bytes())
    assert media_type(renamed) == "video/mp4"
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(InputError, match="expected a PNG, JPEG or MP4"):
        media_type(junk)


def test_sign_in_place_and_bad_anchor(media, chain, tmp_path):
    target = tmp_path / "inplace.png"
    target.write_bytes(media[".png"].read_bytes())
    assert sign_file(target, target, chain, RenderClaims()) == target
    assert read_manifest(target, chain.root_pem()).status == "Trusted"
    not_pem = tmp_path / "anchor.pem"
    not_pem.write_text("nothing here")
    with pytest.raises(InputError, match="trust anchor"):
        read_manifest(target, not_pem)


def test_audit_ref_validation():
    with pytest.raises(InputError, match="seq"):
        AuditRef(-1, "ab" * 32)
    with pytest.raises(InputError, match="hash"):
        AuditRef(1, "XYZ")


def _verify(*args, env=None):
    return subprocess.run([sys.executable, "-m", "facewire", "verify", *map(str, args)], check=False,
                          capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_verify_exit_codes(signed, chain, tmp_path):
    ok = _verify(signed[".png"], "--trust-anchor", chain.root, "--json")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["status"] == "Trusted" and data["claims"]["grant_id"] == "grant-7"
    assert "trainedAlgorithmicMedia" in ok.stderr and "seq 41" in ok.stderr

    home = tmp_path / "empty-home"
    untrusted = _verify(signed[".png"], "--home", home)
    assert untrusted.returncode == 1 and "Valid" in untrusted.stdout
    assert _verify(signed[".png"], "--home", home, "--allow-untrusted").returncode == 0

    bad = tmp_path / "bad.png"
    bad.write_bytes(_flip_media_byte(signed[".png"].read_bytes(), ".png"))
    tampered = _verify(bad, "--trust-anchor", chain.root)
    assert tampered.returncode == 1 and "Invalid" in tampered.stdout
    missing = _verify(tmp_path / "nope.png")
    assert missing.returncode == 2 and "nope.png" in missing.stderr


def test_a_foreign_chain_carrying_our_root_is_not_trusted(media, chain, tmp_path):
    """Review (issue 8): an attacker's chain that merely *includes* facewire's root certificate (after
    their own signer and root) must not validate as Trusted against that root, in c2pa's Reader or ours."""
    from facewire.trust.certs import SigningChain

    theirs = create_signing_chain(tmp_path / "attacker", subject="facewire local signer")
    forged = tmp_path / "forged-chain.pem"
    forged.write_bytes(theirs.chain_pem() + (theirs.root_pem() or b"") + chain.root_pem())
    out = sign_file(media[".png"], tmp_path / "forged.png", SigningChain(forged, theirs.key), CLAIMS)
    state, _ = _c2pa_state(out, chain.root_pem())
    assert state == "Valid"  # the signature holds; the signer just does not chain to our root
    assert read_manifest(out, chain.root).status == "Valid"
