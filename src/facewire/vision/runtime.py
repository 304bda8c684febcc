"""A thin wrapper over LiteRT's interpreter: load a .tflite once, run it single-threaded on XNNPACK."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np

from ..errors import ModelError

__all__ = ["TfliteModel"]


class TfliteModel:
    """One .tflite model with one float32 input; ``__call__`` returns its outputs in declared order."""

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        try:
            # LiteRT prints an INFO line about XNNPACK on stderr from C++; silence it for clean CLIs.
            with _quiet_stderr():
                self._it = Interpreter(model_path=str(self.path), num_threads=num_threads)
                self._it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path.name}: cannot load the model ({exc})") from exc
        inp = self._it.get_input_details()[0]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self._in = inp["index"]
        self._outs = [d["index"] for d in self._it.get_output_details()]
        self.output_shapes = [tuple(int(v) for v in d["shape"]) for d in self._it.get_output_details()]
        self.invoke_s = 0.0  # total time inside the model (input copy, inference, output copy)
        self.calls = 0

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(self.input_shape)
        t0 = time.perf_counter()
        self._it.set_tensor(self._in, x)
        self._it.invoke()
        outs = [self._it.get_tensor(i) for i in self._outs]
        self.invoke_s += time.perf_counter() - t0
        self.calls += 1
        return outs


@contextlib.contextmanager
def _quiet_stderr():
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
