"""Which Ray addresses keep a batch on loopback, and the single-node switch: set within, restored
after, and what Ray itself then takes as this node's address (the real sockets are checked on a
real cluster in test_runner.py)."""

from __future__ import annotations

import os

import pytest

from facewire.batch.loopback import (
    LOOPBACK_ENV,
    is_loopback,
    loopback_ray,
    wants_loopback,
)

NAME = next(iter(LOOPBACK_ENV))


@pytest.mark.parametrize(("host", "expected"), [
    ("127.0.0.1", True), ("127.3.2.1", True), ("localhost", True), ("LOCALHOST", True), ("::1", True),
    ("[::1]", True), ("192.0.2.2", False), ("0.0.0.0", False), ("example", False), ("", False)])
def test_loopback_hosts(host, expected):
    assert is_loopback(host) is expected


@pytest.mark.parametrize(("address", "expected"), [
    (None, True), ("127.0.0.1:6379", True), ("localhost:6379", True), ("[::1]:6379", True),
    ("192.0.2.2:6379", False), ("ray://127.0.0.1:10001", False), ("10.1.2.3", False)])
def test_which_runs_stay_on_loopback(address, expected):
    assert wants_loopback(address) is expected


def test_auto_follows_ray_address(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert wants_loopback("auto") is True
    monkeypatch.setenv("RAY_ADDRESS", "192.0.2.2:6379")
    assert wants_loopback("auto") is False


def test_the_switch_is_set_within_and_restored_after(monkeypatch):
    ray_constants = pytest.importorskip("ray._private.ray_constants")
    from ray._private.services import get_node_ip_address, resolve_ip_for_localhost

    monkeypatch.delenv(NAME, raising=False)
    before = ray_constants.ENABLE_RAY_CLUSTER
    with loopback_ray():
        assert os.environ[NAME] == LOOPBACK_ENV[NAME]
        assert ray_constants.ENABLE_RAY_CLUSTER is False
        assert get_node_ip_address() == "127.0.0.1"  # what Ray binds its servers to
        assert resolve_ip_for_localhost("127.0.0.1") == "127.0.0.1"  # no longer rewritten
    assert NAME not in os.environ and ray_constants.ENABLE_RAY_CLUSTER == before
    with loopback_ray(enabled=False):
        assert NAME not in os.environ


def test_a_callers_own_setting_survives(monkeypatch):
    monkeypatch.setenv(NAME, "1")
    with loopback_ray():
        assert os.environ[NAME] == "0"
    assert os.environ[NAME] == "1"
