"""Keeps a batch's Ray on 127.0.0.1: the cluster a batch starts for itself, and the driver of one
at a loopback address, run in Ray's single-node mode, where every Ray server binds to 127.0.0.1.

Why a switch is needed (Ray 2.60, Linux): Ray takes the node's address from the interface that
routes outward (``ray._private.services.get_node_ip_address``) and rewrites ``127.0.0.1`` and
``localhost`` to it (``resolve_ip_for_localhost``), even in ``--node-ip-address=127.0.0.1``. A
plain ``ray init``/``ray start --head`` then has the GCS, the raylet, the object manager and every
worker listening on all interfaces (``0.0.0.0``) and the runtime-env agent on the node's address.
Ray's single-node mode (environment ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the default on
Windows and macOS) makes that address ``127.0.0.1`` instead, and then they all listen there only.
Its one limit is intended here: no second node can join such a cluster. A cluster of one's own on
loopback: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head --node-ip-address=127.0.0.1``, then
``facewire batch ... --address 127.0.0.1:PORT`` (a driver in this mode also joins a cluster that
listens on all interfaces through 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
from collections.abc import Iterator

__all__ = ["LOOPBACK_ENV", "is_loopback", "loopback_ray", "wants_loopback"]

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # for `ray start --head` and its drivers
_CONSTANTS = "ray._private.ray_constants"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (``localhost``, 127.x, ``::1``)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(address: str) -> str:
    """HOST of ``HOST:PORT`` (``[::1]:PORT`` too); an address without a port is all host."""
    if address.startswith("[") and "]" in address:
        return address[1:address.index("]")]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def wants_loopback(address: str | None) -> bool:
    """Whether a run joining ``address`` (None: a cluster of its own) should keep Ray on loopback:
    its own cluster always; a plain ``HOST:PORT`` (or ``auto``, Ray's record of the latest local
    cluster) when HOST is loopback. A driver in single-node mode still joins a cluster listening on
    all interfaces through 127.0.0.1, so this never breaks an address that worked without it."""
    if address is None:
        return True
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS") or _recorded_address() or ""
        if not address or address == "auto":
            return False
    if address.startswith("ray://"):
        return False  # Ray Client dials the given host itself; no local servers to bind
    return is_loopback(_host(address))


def _recorded_address() -> str | None:
    """The address ``ray start`` recorded for the latest local cluster (Ray's own file), or None."""
    try:
        from ray._private.services import find_bootstrap_address

        return find_bootstrap_address(None)
    except Exception:  # noqa: BLE001 - a private helper of Ray: without it, "auto" keeps Ray's default
        return None


@contextlib.contextmanager
def loopback_ray(enabled: bool = True) -> Iterator[None]:
    """Within: Ray started or joined from this process runs in single-node mode (the variable is
    inherited by the raylet and workers it starts); both are restored afterwards."""
    if not enabled:
        yield
        return
    name, value = next(iter(LOOPBACK_ENV.items()))
    before_env = os.environ.get(name)
    constants = sys.modules.get(_CONSTANTS)  # Ray already imported: its constant was read at import
    before_const = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[name] = value
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if before_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before_env
        constants = sys.modules.get(_CONSTANTS)
        if constants is not None:  # imported within: recompute from the restored environment, as Ray does
            constants.ENABLE_RAY_CLUSTER = before_const if before_const is not None else \
                constants.env_bool(name, not constants.IS_WINDOWS_OR_OSX)
