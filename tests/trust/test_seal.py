"""TrustSeal through the renderer's Seal seam: watermarked frames, a signed file that verifies, marks that match."""

import io
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest

from facewire.errors import InputError
from facewire.render.seal import Seal
from facewire.samples import astronaut_clip
from facewire.trust.certs import create_signing_chain
from facewire.trust.provenance import AuditRef, read_manifest
from facewire.trust.seal import TrustSeal
from facewire.trust.watermark import extract, extract_video

c2pa = pytest.importorskip("c2pa")

AUDIT = AuditRef(1234, "9f3e" + "0" * 60)
TAKE = "c0ffee" + "0" * 58


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return create_signing_chain(tmp_path_factory.mktemp("c2pa"))


def _seal(chain) -> Seal:
    return TrustSeal(chain, AUDIT, "grant-42", "training-simulation", avatar="photo", take_sha256=TAKE)


def _render_video(seal: Seal, path, frames: int = 24, size=(320, 240)):
    """What the renderer does: mark each frame, encode, then hand the finished file to the seal."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "28"}
        for i, image in enumerate(astronaut_clip(frames=frames, size=size, fps=25)):
            rgb = seal.mark_frame(image.rgb, i)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return seal.finish(path, {"take_sha256": TAKE, "avatar": "photo", "fps": 25, "frames": frames,
                              "size": list(size)})


def _c2pa_state(path, mime, anchor):
    settings = {"trust": {"trust_anchors": anchor.decode()},
                "verify": {"ocsp_fetch": False, "remote_manifest_fetch": False}}
    with c2pa.Context(c2pa.Settings.from_dict(settings)) as ctx, \
            c2pa.Reader(mime, io.BytesIO(path.read_bytes()), context=ctx) as reader:
        return reader.get_validation_state()


def test_video_verifies_and_watermark_matches(chain, tmp_path):
    tmp = tmp_path / ".clip.mp4.ab12cd34.part"  # the renderer hands over a temporary name
    sealed = _render_video(_seal(chain), tmp)
    assert _c2pa_state(sealed, "video/mp4", chain.root_pem()) == "Trusted"
    report = read_manifest(sealed, chain.root)
    assert report.status == "Trusted"
    claims = report.claims
    assert (claims.take_sha256, claims.grant_id, claims.context, claims.audit, claims.avatar) == (
        TAKE, "grant-42", "training-simulation", AUDIT, "photo")
    assert claims.render["frames"] == 24 and claims.render["size"] == "320x240"
    read = extract_video(sealed)
    assert read.valid and read.payload == AUDIT.watermark_payload()
    assert claims.watermark == read.payload.hex()
    with av.open(str(sealed)) as c:
        assert c.streams.video[0].frames in (0, 24) and c.streams.video[0].width == 320


def test_still_image(chain, tmp_path, astronaut):
    seal = _seal(chain)
    marked = seal.mark_frame(astronaut, 0)
    assert not np.array_equal(marked, astronaut)
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), cv2.cvtColor(marked, cv2.COLOR_RGB2BGR))
    sealed = seal.finish(path, {"avatar": "photo"})
    assert _c2pa_state(sealed, "image/png", chain.root_pem()) == "Trusted"
    back = cv2.cvtColor(cv2.imread(str(sealed)), cv2.COLOR_BGR2RGB)
    assert extract(back).payload == AUDIT.watermark_payload()


def test_bad_construction(chain, tmp_path):
    with pytest.raises(InputError, match="AuditRef"):
        TrustSeal(chain, (1, "ab"), None, None)
    other = create_signing_chain(tmp_path)
    mixed = type(chain)(chain.chain, other.key, chain.root)
    with pytest.raises(InputError, match="different key"):
        TrustSeal(mixed, AUDIT, None, None)


def _verify(*args):
    return subprocess.run([sys.executable, "-m", "facewire", "verify", *map(str, args)], check=False,
                          capture_output=True, text=True, timeout=120)


def test_cli_verify_reports_matching_and_foreign_watermark(chain, tmp_path, astronaut):
    path = tmp_path / "render.png"
    cv2.imwrite(str(path), cv2.cvtColor(_seal(chain).mark_frame(astronaut, 0), cv2.COLOR_RGB2BGR))
    _seal(chain).finish(path, {})
    ok = _verify(path, "--trust-anchor", chain.root)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "matches the manifest's audit record" in ok.stdout and "seq 1234" in ok.stdout

    # frames marked for one audit record, the file signed claiming another: caught by the watermark
    foreign = tmp_path / "foreign.png"
    cv2.imwrite(str(foreign), cv2.cvtColor(_seal(chain).mark_frame(astronaut, 0), cv2.COLOR_RGB2BGR))
    TrustSeal(chain, AuditRef(77, "ab" * 32), "grant-42", "telepresence").finish(foreign, {})
    bad = _verify(foreign, "--trust-anchor", chain.root)
    assert bad.returncode == 1 and "does NOT match" in bad.stdout
