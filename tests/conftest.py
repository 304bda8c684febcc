"""Shared test fixtures: locating the shared data directory, skipping (or, under CI, failing) without it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

#: ``<repo>/../shared``: data (models, media) kept beside the repository rather than in it.
SHARED_DIR = (Path(__file__).resolve().parents[1] / "../shared").resolve()


def in_ci() -> bool:
    """True when the environment says CI (``CI=true``): missing test data is then a failure."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _skip_or_fail(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def skip_or_fail() -> Callable[[str], None]:
    """``skip_or_fail(reason)``: skip the test, or fail it under CI, where nothing may be silently skipped."""
    return _skip_or_fail


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared data directory; skips (fails under CI) when it is absent."""
    if not SHARED_DIR.is_dir():
        _skip_or_fail(f"shared data directory {SHARED_DIR} not found")
    return SHARED_DIR


@pytest.fixture(scope="session")
def shared_file(shared_dir: Path) -> Callable[[str], Path]:
    """``shared_file("models/x.task")``: a file under the shared directory, skipping (failing under CI) if absent."""

    def find(relative: str) -> Path:
        path = shared_dir / relative
        if not path.is_file():
            _skip_or_fail(f"shared file {path} not found")
        return path

    return find


@pytest.fixture(scope="session")
def models(skip_or_fail):
    """The verified package face models (fetched on first use)."""
    from facewire.errors import ModelError
    from facewire.models import ensure_package_models

    try:
        return ensure_package_models(progress=None)
    except ModelError as exc:
        skip_or_fail(f"package face models unavailable: {exc}")


@pytest.fixture(scope="session")
def astronaut():
    """skimage's astronaut portrait: a real face that ships with a package."""
    import skimage.data

    return skimage.data.astronaut()
