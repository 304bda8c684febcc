"""Where trust state lives: one directory (the *trust home*) holding the identity, consent and audit files.

The home is, in order of precedence, the ``--home`` flag, the ``FACEWIRE_HOME`` environment
variable, or ``platformdirs.user_data_dir("facewire")/trust``. It is created with mode 0700 so the
files in it (keys, the consent database, the audit log) are private to the user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ..errors import OutputError

__all__ = ["HOME_ENV", "TrustHome", "default_home", "trust_home"]

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


def trust_home(override: str | os.PathLike[str] | None = None) -> TrustHome:
    """The trust home: ``override`` (the ``--home`` flag), else ``$FACEWIRE_HOME``, else the default."""
    if override:
        return TrustHome(Path(override).expanduser())
    env = os.environ.get(HOME_ENV, "").strip()
    if env:
        return TrustHome(Path(env).expanduser())
    return TrustHome(default_home())
