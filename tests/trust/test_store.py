"""The trust home's files: private even when the home folder itself is not."""

from __future__ import annotations

import os
import stat

import pytest

from facewire.trust.audit import AuditLog
from facewire.trust.consent import (
    ConsentStore,
    ConsentVerifier,
    issue_grant,
    likeness_reference,
)
from facewire.trust.keys import generate_identity
from facewire.trust.store import TrustHome, private_db


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_databases_are_0600_in_a_home_that_already_existed_world_readable(tmp_path, loose_umask):
    root = tmp_path / "home"
    root.mkdir(mode=0o755)
    home = TrustHome(root).ensure()  # exists already: ensure() leaves its mode alone
    assert _mode(root) == 0o755
    owner = generate_identity("alice")
    token = issue_grant(owner, subject="alice", likeness=likeness_reference(b"alice"), contexts=["telepresence"])
    with ConsentStore(home.consent_db) as store:
        ConsentVerifier({owner.key_id: owner.public_key}, store).use(token, context="telepresence")
        assert store.grants()[0].token == token  # the store keeps usable tokens: it must be private
        for path in (home.consent_db, home.consent_db.with_name("consent.db-wal")):
            assert _mode(path) == 0o600, path
    with AuditLog(home.audit_db, owner) as log:
        log.append("export", {"path": "/tmp/x.mp4"})
        for path in (home.audit_db, home.audit_db.with_name("audit.db-wal")):
            assert _mode(path) == 0o600, path


def test_private_db_tightens_an_existing_loose_file(tmp_path, loose_umask):
    path = tmp_path / "consent.db"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    private_db(path)
    assert _mode(path) == 0o600
    with ConsentStore(path) as store:
        assert store.grants() == []
