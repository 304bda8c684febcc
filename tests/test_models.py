"""Tests of the model store: real pip downloads, real bundles, real TFLite interpreters (no mocks)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from facewire import models
from facewire.errors import InputError, ModelError
from facewire.models import (
    BUNDLE_MEMBERS,
    OFFICIAL_SHA256,
    PACKAGE_MODELS,
    ModelPaths,
    ModelWarning,
)

BUNDLE = "models/face_landmarker_v2_with_blendshapes.task"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _allocate(path: Path) -> list[tuple[int, ...]]:
    """Load a model into a real interpreter; return its input shapes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return [tuple(int(n) for n in d["shape"]) for d in interpreter.get_input_details()]


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def package_cache(tmp_path_factory: pytest.TempPathFactory, skip_or_fail: Callable[[str], None]) -> Path:
    """A cache directory holding the package models, fetched for real once per module."""
    root = tmp_path_factory.mktemp("package-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEWIRE_CACHE_DIR", str(root))
        try:
            models.ensure_package_models(progress=None)
        except ModelError as exc:
            skip_or_fail(f"pip could not fetch {models.PACKAGE_SPEC}: {exc}")
    return root


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache for one test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("FACEWIRE_CACHE_DIR", str(root))
    return root


@pytest.fixture
def warm_cache(cache: Path, package_cache: Path) -> Path:
    """A private copy of the fetched package cache, safe to damage."""
    shutil.copytree(package_cache, cache)
    return cache


@pytest.fixture
def bundle(shared_file: Callable[[str], Path]) -> Path:
    return shared_file(BUNDLE)


# -- basics --------------------------------------------------------------------------------------
def test_cache_dir_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEWIRE_CACHE_DIR", str(tmp_path))
    assert models.cache_dir() == tmp_path
    monkeypatch.delenv("FACEWIRE_CACHE_DIR")
    default = models.cache_dir()
    assert default.name == "models" and "facewire" in default.parts


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert models.sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# -- package models ------------------------------------------------------------------------------
def test_package_models_fetched_and_verified(warm_cache: Path) -> None:
    messages: list[str] = []
    paths = models.ensure_package_models(fetch=False, progress=messages.append)
    assert messages == []  # already cached: no fetch, no message
    assert paths.source == "package" and paths.landmark_points == 468 and paths.blendshapes is None
    for role, (member, digest) in PACKAGE_MODELS.items():
        path = getattr(paths, role)
        assert path.parent.parent == warm_cache and path.name == Path(member).name
        assert _digest(path) == digest
    assert not list(warm_cache.rglob(".*.part")) and not list(warm_cache.rglob("*.whl"))


def test_package_models_run(warm_cache: Path) -> None:
    paths = models.ensure_package_models(fetch=False)
    assert _allocate(paths.detector) == [(1, 128, 128, 3)]
    assert _allocate(paths.landmarks) == [(1, 192, 192, 3)]
    assert paths.iris is not None and _allocate(paths.iris) == [(1, 64, 64, 3)]


def test_first_fetch_announces_itself(cache: Path, package_cache: Path) -> None:
    messages: list[str] = []
    paths = models.ensure_package_models(progress=messages.append)
    assert len(messages) == 1 and "mediapipe==0.10.21" in messages[0] and "first run only" in messages[0]
    assert _digest(paths.landmarks) == PACKAGE_MODELS["landmarks"][1]


def test_corrupt_cache_is_deleted_and_refetched(warm_cache: Path) -> None:
    target = models.ensure_package_models(fetch=False).landmarks
    target.write_bytes(b"\0" * 100)
    with pytest.warns(ModelWarning, match="deleted the corrupt cached model"):
        paths = models.ensure_package_models(progress=None)
    assert _digest(paths.landmarks) == PACKAGE_MODELS["landmarks"][1]


def test_corrupt_cache_is_deleted_and_reported_without_fetch(warm_cache: Path) -> None:
    target = models.ensure_package_models(fetch=False).iris
    assert target is not None
    with target.open("r+b") as f:  # flip one byte
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.warns(ModelWarning, match="expected SHA-256"), pytest.raises(ModelError, match="iris") as info:
        models.ensure_package_models(fetch=False)
    assert "facewire models fetch" in str(info.value)
    assert not target.exists()


def test_missing_without_fetch_is_one_line_error(cache: Path) -> None:
    with pytest.raises(ModelError) as info:
        models.ensure_package_models(fetch=False)
    message = str(info.value)
    assert "facewire models fetch" in message and "\n" not in message


def test_offline_fetch_fails_fast_with_one_line(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Cut pip off from every source: no config files, no extra indexes or find-links, and the one
    # index on a closed local port (9, "discard"), with no retries.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        models.ensure_package_models(progress=None)
    assert time.monotonic() - start < 60
    message = str(info.value)
    assert "facewire models fetch" in message and "\n" not in message
    assert "pip download mediapipe==0.10.21" in message and "ERROR" in message  # pip's own last error line
    assert not [p for p in cache.rglob("*") if p.is_file()]


# -- .task bundles -------------------------------------------------------------------------------
def test_load_shared_bundle(cache: Path, bundle: Path) -> None:
    assert models.sha256_file(bundle) == OFFICIAL_SHA256
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the known release loads without a warning
        paths = models.load_task_bundle(bundle)
        again = models.load_task_bundle(bundle)
    assert paths == again
    assert paths.source == "official" and paths.landmark_points == 478 and paths.iris is None
    assert paths.landmarks.parent == cache / "bundles" / OFFICIAL_SHA256[:16]
    for role, (member, digest) in BUNDLE_MEMBERS.items():
        path = getattr(paths, role)
        assert path.name == member and _digest(path) == digest


def test_shared_bundle_models_run(cache: Path, bundle: Path) -> None:
    paths = models.load_task_bundle(bundle)
    assert _allocate(paths.detector) == [(1, 128, 128, 3)]
    assert _allocate(paths.landmarks) == [(1, 192, 192, 3)]
    assert paths.blendshapes is not None and _allocate(paths.blendshapes) == [(1, 146, 2)]


def test_extracted_bundle_file_is_repaired(cache: Path, bundle: Path) -> None:
    paths = models.load_task_bundle(bundle)
    paths.landmarks.write_bytes(b"garbage")
    models.load_task_bundle(bundle)
    assert _digest(paths.landmarks) == BUNDLE_MEMBERS["landmarks"][1]


def test_repacked_bundle_with_known_members_loads_quietly(cache: Path, bundle: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(bundle) as z:
        members = {name: z.read(name) for name in z.namelist()}
    repacked = tmp_path / "repacked.task"
    with zipfile.ZipFile(repacked, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    assert models.sha256_file(repacked) != OFFICIAL_SHA256
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = models.load_task_bundle(repacked)
    assert _digest(paths.blendshapes) == BUNDLE_MEMBERS["blendshapes"][1]


def test_other_bundle_version_loads_with_warning(cache: Path, bundle: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(bundle) as z:
        members = {name: z.read(name) for name in z.namelist()}
    members["face_blendshapes.tflite"] += b"\0" * 16  # stands in for a different release
    other = _zip(tmp_path / "other.task", members)
    with pytest.warns(ModelWarning, match="face_blendshapes.tflite") as record:
        paths = models.load_task_bundle(other)
    assert len(record) == 1 and "face_detector" not in str(record[0].message)
    assert paths.blendshapes is not None and paths.blendshapes.read_bytes() == members["face_blendshapes.tflite"]
    assert paths.blendshapes.parent != cache / "bundles" / OFFICIAL_SHA256[:16]


def test_missing_bundle_file(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        models.load_task_bundle(tmp_path / "absent.task")


def test_text_file_is_not_a_bundle(cache: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.task"
    text.write_text("hello, I am not a zip\n")
    with pytest.raises(ModelError, match=r"\(a zip\)") as info:
        models.load_task_bundle(text)
    assert "\n" not in str(info.value)


def test_zip_missing_members(cache: Path, tmp_path: Path) -> None:
    partial = _zip(tmp_path / "partial.task", {"face_detector.tflite": b"\x1c\0\0\0TFL3rest"})
    with pytest.raises(ModelError, match="missing face_landmarks_detector.tflite, face_blendshapes.tflite"):
        models.load_task_bundle(partial)


def test_members_that_are_not_tflite(cache: Path, tmp_path: Path) -> None:
    junk = _zip(tmp_path / "junk.task", {member: b"not a model" for member, _ in BUNDLE_MEMBERS.values()})
    with pytest.raises(ModelError, match="expected a TFLite model"):
        models.load_task_bundle(junk)
    assert not (cache / "bundles").exists()


# -- official bundle -----------------------------------------------------------------------------
def test_fetch_official_from_file_url(cache: Path, bundle: Path) -> None:
    with pytest.raises(ModelError, match="facewire models fetch --official"):
        models.resolve("official")
    messages: list[str] = []
    stored = models.fetch_official(bundle.as_uri(), progress=messages.append)
    assert stored == models.official_path() and stored.is_relative_to(cache)
    assert models.sha256_file(stored) == OFFICIAL_SHA256
    assert len(messages) == 1 and bundle.as_uri() in messages[0]
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]  # no temporary left behind
    paths = models.resolve("official")
    assert paths.source == "official" and paths.landmark_points == 478
    assert _digest(paths.landmarks) == BUNDLE_MEMBERS["landmarks"][1]


def test_fetch_official_rejects_non_bundle(cache: Path, bundle: Path, tmp_path: Path) -> None:
    good = models.fetch_official(bundle.as_uri(), progress=None)
    text = tmp_path / "page.html"
    text.write_text("<html>not found</html>")
    with pytest.raises(ModelError, match="expected a face landmarker .task bundle") as info:
        models.fetch_official(text.as_uri(), progress=None)
    assert "\n" not in str(info.value)
    assert models.sha256_file(good) == OFFICIAL_SHA256  # the cached bundle survived
    assert [p.name for p in good.parent.iterdir()] == [good.name]


def test_fetch_official_unreachable(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="download of the official face model failed"):
        models.fetch_official((tmp_path / "absent.task").as_uri(), progress=None)
    assert not models.official_path().exists()


# -- resolve -------------------------------------------------------------------------------------
def test_resolve(warm_cache: Path, bundle: Path) -> None:
    assert models.resolve(None) == models.ensure_package_models(fetch=False)
    assert models.resolve("package").source == "package"
    by_path: ModelPaths = models.resolve(bundle)
    assert by_path == models.resolve(str(bundle)) and by_path.source == "official"
    with pytest.raises(InputError, match="a path to a .task bundle"):
        models.resolve("model.tflite")
    with pytest.raises(InputError, match="got int"):
        models.resolve(3)  # type: ignore[arg-type]


def test_shipped_data_is_checked_against_its_pin():
    from facewire.models import sha256_file, shipped_data

    path = Path(models.__file__).parent / "data" / "solver.npz"
    digest = sha256_file(path)
    assert shipped_data("solver.npz", digest, "the solver", "tools/train_solver.py") == path.read_bytes()
    with pytest.raises(ModelError, match="solver.npz: SHA-256 .* does not match the pinned 0000"):
        shipped_data("solver.npz", "0" * 64, "the solver", "tools/train_solver.py")
    with pytest.raises(ModelError, match="nothing.npz: the thing is missing from facewire/data; run tools/x.py"):
        shipped_data("nothing.npz", digest, "the thing", "tools/x.py")
