"""`BatchTrust` on a real trust home with passphrase-protected keys (no rendering): the passphrase is
required, each item's session is logged once however often it is tried, the worker's `SealSpec` points
at that record and never shows the passphrase, and sessions left open are closed as failed. An item
rendered again identically is sealed as its first good session; two seals of one picture differ only
inside the C2PA manifest store (c2pa-rs's random salts and the ECDSA signature), and still validate."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facewire.batch.jobs import JobSpec, expand
from facewire.batch.trust import BatchTrust, c2pa_span, render_key, sealed_params
from facewire.errors import InputError
from facewire.trust.audit import read_log, verify_log
from facewire.trust.certs import create_signing_chain
from facewire.trust.keys import generate_identity, save_identity, trusted_keys
from facewire.trust.store import TrustHome

PASSPHRASE = b"batch of many faces"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> TrustHome:
    home = TrustHome(tmp_path_factory.mktemp("home")).ensure()
    save_identity(generate_identity("operator"), home, PASSPHRASE)
    create_signing_chain(home.c2pa_dir, subject="operator", passphrase=PASSPHRASE)
    return home


def _items(tmp_path: Path) -> list:
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_text(f"{name}\n")
    return expand(JobSpec(kind="render", inputs=("*.jsonl",), out="videos", formats=("mp4", "png"),
                          root=str(tmp_path)))


def test_encrypted_keys_need_their_passphrase(home):
    with pytest.raises(InputError, match=rf"the identity key in {home.root} is encrypted: give its passphrase with "
                                         r"--passphrase-env VAR \(or --passphrase-file FILE\)"):
        BatchTrust(home.root).__enter__()


def test_each_item_is_one_logged_session_and_its_seal_points_at_it(home, tmp_path):
    a, b = _items(tmp_path)
    for out in a.outputs:
        Path(out.path).parent.mkdir(parents=True, exist_ok=True)
        Path(out.path).write_bytes(b"rendered " + out.format.encode())
    before = len(read_log(home.audit_db)[0]) if home.audit_db.is_file() else 0
    with BatchTrust(home.root, passphrase=PASSPHRASE) as trust:
        assert trust.signed and trust.signer != "unsigned"
        spec = trust.begin(a)
        assert trust.begin(a) is spec  # a retry is the same session, the same watermark
        assert PASSPHRASE.decode() not in repr(spec)
        trust.end(a, True, outputs=[o.path for o in a.outputs], frames=[30, 1])
        trust.begin(b)  # never ended: the batch stopped
    records = read_log(home.audit_db)[0][before:]
    assert [r.kind for r in records] == ["session-start", "export", "export", "session-stop", "session-start",
                                         "session-stop"]
    start = records[0]
    assert (spec.audit_seq, spec.audit_hash) == (start.seq, start.hash)
    assert start.payload["take"] == a.input and start.payload["take_sha256"] == spec.take_sha256
    assert [r.payload["path"] for r in records[1:3]] == [o.path for o in a.outputs]
    assert records[3].payload == {"result": "ok", "frames": 30, "duration_s": 1.0, "session": start.seq}
    assert records[5].payload["result"] == "failed" and records[5].payload["session"] == records[4].seq
    assert verify_log(home.audit_db, trusted_keys(home)).ok
    seal = spec.seal()  # what a worker builds: the watermark carries the item's record
    assert seal.payload == seal.audit_ref.watermark_payload() and seal.audit_ref.seq == start.seq


def test_who_seals_a_render_is_part_of_its_parameters(home, tmp_path):
    with BatchTrust(home.root, passphrase=PASSPHRASE) as trust:
        signer = trust.signer
    assert sealed_params("ab" * 32, signer) != sealed_params("ab" * 32, "unsigned")
    warned: list[str] = []
    with BatchTrust(tmp_path / "empty", warn=warned.append) as bare:
        assert not bare.signed and bare.signer == "unsigned"
        assert bare.begin(_items(tmp_path)[0]) is None  # unsigned: no seal, still a logged session
    assert len(warned) == 1 and "the rendered outputs are unsigned" in warned[0]
    with BatchTrust(tmp_path / "empty", sign=False, warn=warned.append):
        pass
    assert len(warned) == 1  # --no-sign: no warning


def _sealed_items(tmp_path: Path, trust: BatchTrust) -> list:
    return [replace(item, params_sha256=sealed_params(item.params_sha256, trust.signer)) for item in _items(tmp_path)]


def _done(trust: BatchTrust, item) -> None:
    for out in item.outputs:
        Path(out.path).parent.mkdir(parents=True, exist_ok=True)
        Path(out.path).write_bytes(b"rendered")
    trust.end(item, True, outputs=[o.path for o in item.outputs], frames=[3])


def test_an_item_rendered_again_identically_is_sealed_as_its_first_good_session(home, tmp_path):
    with BatchTrust(home.root, passphrase=PASSPHRASE) as trust:
        a, b = _sealed_items(tmp_path, trust)
        first_a, first_b = trust.begin(a), trust.begin(b)
        _done(trust, a)
        trust.end(b, False, error="the renderer failed")
    with BatchTrust(home.root, passphrase=PASSPHRASE) as trust:  # a later run, e.g. on Ray workers
        again_a, again_b = trust.begin(a), trust.begin(b)
        _done(trust, a)
        _done(trust, b)
    assert (again_a.audit_seq, again_a.audit_hash) == (first_a.audit_seq, first_a.audit_hash)
    assert again_b.audit_seq != first_b.audit_seq  # its first session failed: the new one is its origin
    starts = {r.seq: r for r in read_log(home.audit_db, "session-start")[0]}
    latest_a = max(seq for seq, r in starts.items() if r.payload["batch_item"] == "a.jsonl")
    assert latest_a != first_a.audit_seq  # the re-run is logged as a session of its own …
    assert starts[latest_a].payload["sealed_as"] == {"seq": first_a.audit_seq, "hash": first_a.audit_hash}  # … sealed so
    assert starts[latest_a].payload["render_key"] == render_key(a, first_a.take_sha256)
    assert starts[again_b.audit_seq].payload["sealed_as"] is None

    Path(a.input).write_text("a, changed\n")  # other take bytes: other output, a new origin
    with BatchTrust(home.root, passphrase=PASSPHRASE) as trust:
        changed = trust.begin(a)
        trust.end(a, False, error="stopped")
    assert changed.audit_seq not in (first_a.audit_seq, latest_a) and changed.take_sha256 != first_a.take_sha256
    assert verify_log(home.audit_db, trusted_keys(home)).ok


def test_two_seals_of_one_picture_differ_only_inside_the_manifest_store_and_both_validate(home, tmp_path):
    import cv2

    from facewire.trust.provenance import read_manifest

    with BatchTrust(home.root, passphrase=PASSPHRASE) as trust:
        item = _sealed_items(tmp_path, trust)[0]
        spec = trust.begin(item)
        trust.end(item, False, error="not rendered")
    picture = np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    files = []
    for name in ("one", "two"):
        seal = spec.seal()
        marked = seal.mark_frame(picture, 0)
        path = tmp_path / name / "a.png"  # same name: the manifest's title is the file's name
        path.parent.mkdir()
        cv2.imwrite(str(path), cv2.cvtColor(marked, cv2.COLOR_RGB2BGR))
        files.append(seal.finish(path, {"size": (64, 64), "frames": 1}))
    one, two = (f.read_bytes() for f in files)
    span = c2pa_span(one)
    assert span is not None and span == c2pa_span(two) and len(one) == len(two)
    assert one != two  # c2pa-rs salts each assertion and ECDSA signs with a random nonce …
    differing = np.flatnonzero(np.frombuffer(one, np.uint8) != np.frombuffer(two, np.uint8))
    assert span[0] <= differing.min() and differing.max() < span[1]  # … all of it inside the manifest store
    reports = [read_manifest(f, home.c2pa_dir / "root.pem") for f in files]
    assert [r.status for r in reports] == ["Trusted", "Trusted"], [r.failures for r in reports]
    assert reports[0].claims == reports[1].claims and reports[0].claims.audit.seq == spec.audit_seq
    assert _manifest_json(files[0]) == _manifest_json(files[1])  # the same label, instance id and assertions

    tampered = tmp_path / "tampered.png"
    shutil.copy(files[1], tampered)
    data = bytearray(tampered.read_bytes())
    data[span[1] + 40] ^= 1  # one byte of the picture, outside the manifest store
    tampered.write_bytes(bytes(data))
    assert read_manifest(tampered, home.c2pa_dir / "root.pem").status == "Invalid"


def _manifest_json(path: Path) -> dict:
    import json

    import c2pa

    with open(path, "rb") as f, c2pa.Reader("image/png", f) as reader:
        store = json.loads(reader.json())
    return store["manifests"][store["active_manifest"]] | {"active": store["active_manifest"]}
