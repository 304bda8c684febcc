"""facewire: real-time AI facial animation.

Sense a face (video, audio, text), map it to one stream of ARKit-52 `FaceFrame`s, show it on the
avatars and tools people already use.
"""

from . import arkit
from .errors import (
    DeviceError,
    FacewireError,
    InputError,
    ModelError,
    NoFaceError,
    OutputError,
)
from .frame import FaceFrame, Gaze, HeadPose

__version__ = "0.1.0"

__all__ = [
    "DeviceError",
    "FaceFrame",
    "FacewireError",
    "Gaze",
    "HeadPose",
    "InputError",
    "ModelError",
    "NoFaceError",
    "OutputError",
    "__version__",
    "arkit",
]
