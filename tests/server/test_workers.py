"""Tracking in a worker process answers exactly as tracking in the server's threads, and the pool's
processes and the server keep OpenCV and BLAS to one thread each (the studio runs one picture per core)."""

from __future__ import annotations

import json
import struct

import pytest
from websockets.sync.client import connect

from facewire.server.app import StudioConfig
from facewire.server.loadgen import face_jpegs


@pytest.fixture(scope="module")
def jpegs(shared_file):
    shared_file("data/video/grid/bbaf2n.mpg")
    return face_jpegs((320, 240), 80, max_frames=12).jpegs


def _frames(url: str, jpegs: tuple[bytes, ...]) -> list[dict]:
    """Each picture sent once its predecessor's frame came back: the same inputs, in the same order."""
    out = []
    with connect(url, proxy=None, open_timeout=60, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=60))["type"] == "hello"
        for i, jpeg in enumerate(jpegs):
            ws.send(struct.pack("<Bd", 1, 1000.0 + 33.0 * i) + jpeg)
            while (message := json.loads(ws.recv(timeout=60)))["type"] != "frame":
                pass
            out.append(message)
    return out


def test_a_worker_process_tracks_exactly_as_the_server_threads(serve_studio, jpegs) -> None:
    with serve_studio(StudioConfig(workers=0)) as running:
        threads = _frames(running.ws, jpegs)
    with serve_studio(StudioConfig(workers=1)) as running:
        assert len(running.studio.pool.pids) == 1
        processes = _frames(running.ws, jpegs)
    assert [m["capture_ns"] for m in threads] == [round((1000.0 + 33.0 * i) * 1e6) for i in range(len(jpegs))]
    assert all(m["tracked"] for m in threads)
    # weights, head pose and gaze: the same numbers, whichever side of the pipe tracked them
    for a, b in zip(threads, processes, strict=True):
        assert a["weights"] == b["weights"] and a["head"] == b["head"] and a.get("gaze") == b.get("gaze")
        assert (a["seq"], a["t_ns"], a["capture_ns"]) == (b["seq"], b["t_ns"], b["capture_ns"])
    assert len({json.dumps(m["weights"]) for m in threads}) > 1  # the face moved: not one constant answer


def test_single_threaded_kernels_cuts_opencv_and_blas_to_one_thread() -> None:
    import subprocess
    import sys

    # in a fresh interpreter: the setting is process-wide, and this test process must keep its pools
    code = ("import cv2, threadpoolctl; from facewire.server.workers import single_threaded_kernels; "
            "before = cv2.getNumThreads(); single_threaded_kernels(); "
            "blas = [p['num_threads'] for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']; "
            "print(before, cv2.getNumThreads(), max(blas, default=1))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    before, after, blas = map(int, out.stdout.split())
    assert (after, blas) == (1, 1)
    assert before >= 1
