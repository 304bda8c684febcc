"""The one exception tree of facewire.

    FacewireError
    ├── InputError(ValueError)        bad media, bad arguments, malformed data
    │   └── NoFaceError               a still image in which no face was found
    ├── ModelError(RuntimeError)      a model is missing, corrupt or fails its SHA-256 check
    ├── DeviceError(OSError)          a camera or other device cannot be opened
    └── OutputError(OSError)          an output cannot be written

Each subclass also inherits the matching builtin so callers may catch either. Lower errors are
chained with ``raise ... from exc``; messages name the thing, what was expected and what came.
"""

from __future__ import annotations

__all__ = ["DeviceError", "FacewireError", "InputError", "ModelError", "NoFaceError", "OutputError"]


class FacewireError(Exception):
    """Root of every error facewire raises on purpose."""


class InputError(FacewireError, ValueError):
    """An input (file, frame, argument, message) is not what was expected."""


class NoFaceError(InputError):
    """A still image holds no detectable face."""


class ModelError(FacewireError, RuntimeError):
    """A model file is unavailable, corrupt or does not match its pinned digest."""


class DeviceError(FacewireError, OSError):
    """A capture device (camera, microphone) cannot be opened or read."""


class OutputError(FacewireError, OSError):
    """An output file or stream cannot be written."""
