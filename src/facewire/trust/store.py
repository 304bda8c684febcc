"""Where trust state lives: one directory (the *trust home*) holding the identity, consent and audit files.

The home is, in order of precedence, the ``--home`` flag, the ``FACEWIRE_HOME`` environment
variable, or ``platformdirs.user_data_dir("facewire")/trust``. It is created with mode 0700 so the
files in it (keys, the consent database, the audit log) are private to the user; those databases
are also created (and kept) 0600 themselves, because a home given with ``--home`` may already
exist with looser permissions, and ``consent.db`` holds grant tokens that work for whoever has them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ..errors import OutputError

__all__ = ["HOME_ENV", "TrustHome", "default_home", "private_db", "trust_home"]

HOME_ENV = "FACEWIRE_HOME"


def default_home() -> Path:
    """The trust home when neither ``--home`` nor ``FACEWIRE_HOME`` names one."""
    return Path(platformdirs.user_data_dir("facewire")) / "trust"


@dataclass(frozen=True)
class TrustHome:
    """The layout of a trust home; every path is derived from ``root``."""

    root: Path

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def key_file(self) -> Path:
        """The identity's private key (PKCS#8 PEM, mode 0600, encrypted when it has a passphrase)."""
        return self.keys_dir / "identity.key.pem"

    @property
    def public_key_file(self) -> Path:
        return self.keys_dir / "identity.pub.pem"

    @property
    def identity_file(self) -> Path:
        """Public facts about the identity (name, key id) as JSON: nothing secret."""
        return self.keys_dir / "identity.json"

    @property
    def trusted_dir(self) -> Path:
        """Other people's public keys whose grants this home accepts (``facewire keys trust``)."""
        return self.keys_dir / "trusted"

    @property
    def c2pa_dir(self) -> Path:
        return self.root / "c2pa"

    @property
    def consent_db(self) -> Path:
        return self.root / "consent.db"

    @property
    def audit_db(self) -> Path:
        return self.root / "audit.db"

    def ensure(self) -> TrustHome:
        """Create the home and its key folders (mode 0700) if missing; return self."""
        for directory in (self.root, self.keys_dir, self.trusted_dir):
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create trust home folder {directory}: {exc.strerror or exc}") from exc
        return self


def private_db(path: str | os.PathLike[str]) -> Path:
    """Make sure the SQLite file ``path`` (and its ``-wal``/``-shm`` files, if any) is readable by
    its owner only: created 0600 before SQLite opens it (SQLite gives its WAL and shared-memory files
    the database's mode), an existing one of ours tightened to 0600."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # umask only removes bits
        except FileExistsError:
            pass
        for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                info = os.stat(each)
            except FileNotFoundError:
                continue
            if info.st_mode & 0o077 and info.st_uid == os.getuid():
                os.chmod(each, info.st_mode & 0o600)
    except OSError as exc:
        raise OutputError(f"cannot create {path}: {exc.strerror or exc}") from exc
    return path


def trust_home(override: str | os.PathLike[str] | None = None) -> TrustHome:
    """The trust home: ``override`` (the ``--home`` flag), else ``$FACEWIRE_HOME``, else the default."""
    if override:
        return TrustHome(Path(override).expanduser())
    env = os.environ.get(HOME_ENV, "").strip()
    if env:
        return TrustHome(Path(env).expanduser())
    return TrustHome(default_home())
