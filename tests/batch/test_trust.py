"""`BatchTrust` on a real trust home with passphrase-protected keys (no rendering): the passphrase is
required, each item's session is logged once however often it is tried, the worker's `SealSpec` points
at that record and never shows the passphrase, and sessions left open are closed as failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from facewire.batch.jobs import JobSpec, expand
from facewire.batch.trust import BatchTrust, sealed_params
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
