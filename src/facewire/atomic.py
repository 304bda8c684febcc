"""All-or-nothing file output: a destination is either its old self or completely rewritten.

:func:`atomic_write` writes into a hidden temporary file next to the destination
(``.NAME.XXXX.part``), fsyncs it and renames it over the destination only when the ``with`` block
ends normally. Any exception, ``KeyboardInterrupt`` included, removes the temporary file and leaves
the destination untouched. A process killed outright (SIGKILL, power loss) may leave a stale
``.part`` file behind, never a half-written destination.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from .errors import InputError, OutputError

__all__ = ["STDIO", "atomic_write", "write_private"]

STDIO = "-"
"""The path that means standard output (writes to it are not atomic)."""


class _Guarded:
    """A file object whose write errors surface as `OutputError` naming the destination."""

    __slots__ = ("_file", "_label")

    def __init__(self, file: IO[Any], label: str) -> None:
        self._file = file
        self._label = label

    def _fail(self, exc: OSError) -> OutputError:
        return OutputError(f"cannot write {self._label}: {exc.strerror or exc}")

    def write(self, data: Any) -> int:
        try:
            return self._file.write(data)
        except OSError as exc:
            raise self._fail(exc) from exc

    def writelines(self, lines: Any) -> None:
        try:
            self._file.writelines(lines)
        except OSError as exc:
            raise self._fail(exc) from exc

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as exc:
            raise self._fail(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def _new_file_mode() -> int:
    """Permission bits a plain ``open(path, "w")`` would give a new file (0o666 minus umask)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no race-free way to read it elsewhere; restore at once
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(directory: str) -> None:
    """Make the rename durable (best effort; not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it is replaced all at once, or not at all.

    ``mode`` is ``"w"`` (text, ``encoding``/``newline`` as for :func:`open`) or ``"wb"``. The
    yielded object is file-like (``write``, ``writelines``, ``flush``, …). ``"-"`` means standard
    output, which is flushed, never closed, and not atomic. Symbolic links are followed, so the
    file they point at is replaced and the link kept. A new file gets the permissions ``open``
    would give it; a replaced file keeps its own. Failures to create, write, sync or rename raise
    `OutputError` naming ``path``.
    """
    if mode not in ("w", "wb"):
        raise InputError(f"atomic_write mode: expected 'w' or 'wb', got {mode!r}")
    binary = mode == "wb"
    label = os.fspath(path)

    if label == STDIO:
        stream: IO[Any] = sys.stdout.buffer if binary else sys.stdout
        out = _Guarded(stream, "stdout")
        yield out  # type: ignore[misc]
        out.flush()
        return

    target = os.path.realpath(label)
    directory, name = os.path.split(target)
    if os.path.isdir(target):
        raise OutputError(f"cannot write {label}: it is a directory")
    try:
        tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - open across the yield, closed or removed below
            mode=mode,
            dir=directory,
            prefix=f".{name}.",
            suffix=".part",
            delete=False,
            **({} if binary else {"encoding": encoding, "newline": newline}),
        )
    except OSError as exc:
        raise OutputError(f"cannot write {label}: {exc.strerror or exc}") from exc

    done = False
    try:
        yield _Guarded(tmp, label)  # type: ignore[misc]
        try:
            tmp.flush()
            os.fsync(tmp.fileno())
            tmp.close()
            try:
                keep = os.stat(target).st_mode & 0o7777
            except FileNotFoundError:
                keep = _new_file_mode()
            os.chmod(tmp.name, keep)
            os.replace(tmp.name, target)
        except OSError as exc:
            raise OutputError(f"cannot write {label}: {exc.strerror or exc}") from exc
        done = True
        _fsync_dir(directory)
    finally:
        if not done:
            with contextlib.suppress(OSError):
                tmp.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp.name)


def write_private(path: str | os.PathLike[str], data: bytes, *, replace: bool = False,
                  exists_hint: str = "remove it first") -> None:
    """Write a secret (a private key) to a file that is mode 0600 from its first byte on, fsynced.

    An existing file is an error (``exists_hint`` says what to do) unless ``replace``: then a
    temporary sibling is written and renamed over ``path``, so an old key is never half-replaced.
    """
    path = os.fspath(path)
    directory, name = os.path.split(path)
    target = os.path.join(directory, f".{name}.new") if replace else path
    if replace:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise OutputError(f"cannot write {path}: it already exists ({exists_hint})") from exc
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(target, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
