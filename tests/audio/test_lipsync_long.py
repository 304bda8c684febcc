"""Two hours of speech through the streamed decoder and ``facewire lipsync``: memory stays flat.

The two-hour file is a genuine MP3 (16 kHz mono, 24 kbit/s, CBR, no Xing/ID3 header): ten seconds
of espeak-ng speech encoded once and its frames repeated, so that building it costs a fraction of a
second while the decoder still reads and decodes every one of its 200,000 frames. Peak RSS comes
from ``wait4`` on each real subprocess and is compared with the same run over a one-minute file.

Cost (CPU per hour of audio, measured on 2 shared cores): decoding 1.6 s, phone recognition ≈ 9-11 s,
animation ≈ 5-9 s, writing the CSV take 5.5 s; so the decode test takes ≈ 4 s and the two-hour
``facewire lipsync`` ≈ 55-60 s of CPU, the bulk of this file.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys

import av
import numpy as np
import pytest

from facewire.audio.io import SAMPLE_RATE, Resampler, iter_audio
from facewire.audio.tts import synthesize

TWO_HOURS_S = 2 * 3600
SENTENCES = ("Bob moved the blue shoes to my mirror at noon.", "Set white at B nine again, please.",
             "Hello there, how are you today?")
# What holding the whole two hours would cost: the samples alone as float32 (460 MB), before any
# of its 432,000 frames. "Flat" = peak RSS grows by less than a sixteenth of that over one minute.
WHOLE_AUDIO_KB = TWO_HOURS_S * SAMPLE_RATE * 4 // 1024
FLAT_KB = WHOLE_AUDIO_KB // 16


def _mp3(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3", options={"write_xing": "0", "id3v2_version": "0"}) as c:
        stream = c.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = 24000
        planar = stream.codec_context.format.is_planar
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="fltp" if planar else "flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)
    return buf.getvalue()


@pytest.fixture(scope="module")
def long_files(tmp_path_factory):
    """(one-minute file, two-hour file, decoded samples per repeated segment, repeats in two hours)."""
    if "libmp3lame" not in av.codecs_available:
        pytest.skip("FFmpeg here has no MP3 encoder")
    parts = []
    for text in SENTENCES:
        speech = synthesize(text)
        rs = Resampler(speech.sample_rate)
        parts += [rs(speech.samples), rs.flush(), np.zeros(SAMPLE_RATE, np.float32)]
    segment = _mp3(np.concatenate(parts).astype(np.float32))
    root = tmp_path_factory.mktemp("long")
    (root / "segment.mp3").write_bytes(segment)
    # MP3 frames stand alone (no Xing header, the reservoir starts empty at each segment), so a
    # repeated segment is a valid stream; decoded, each repeat is a whole number of 576-sample frames.
    per_segment = sum(c.size for c in iter_audio(root / "segment.mp3"))
    repeats = math.ceil(TWO_HOURS_S * SAMPLE_RATE / per_segment)
    minute, hours = root / "minute.mp3", root / "two_hours.mp3"
    minute.write_bytes(segment * math.ceil(60 * SAMPLE_RATE / per_segment))
    with open(hours, "wb") as f:
        f.writelines(segment for _ in range(repeats))
    return minute, hours, per_segment, repeats


def _run(args: list[str], cwd) -> tuple[int, str, int]:
    """(exit status, stderr+stdout text, peak RSS in KB) of a real subprocess."""
    log = cwd / "log.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, log.read_text(errors="replace"), usage.ru_maxrss  # Linux: KB


_DECODE = ("import sys; from facewire.audio.io import iter_audio; "
           "print(sum(c.size for c in iter_audio(sys.argv[1], chunk_s=1.0)))")


def test_two_hour_file_decodes_end_to_end_with_flat_memory(long_files, tmp_path):
    minute, hours, per_segment, repeats = long_files
    rc, out, minute_kb = _run(["-c", _DECODE, str(minute)], tmp_path)
    assert rc == 0, out
    rc, out, hours_kb = _run(["-c", _DECODE, str(hours)], tmp_path)
    assert rc == 0, out
    assert int(out.split()[-1]) == repeats * per_segment  # every frame of the file decoded, none lost
    assert repeats * per_segment >= TWO_HOURS_S * SAMPLE_RATE
    assert hours_kb - minute_kb < FLAT_KB, f"peak RSS {minute_kb} KB for a minute, {hours_kb} KB for two hours"


def _tail_rows(path, n: int) -> tuple[list[str], list[list[str]], int]:
    """(header, last ``n`` rows, number of rows) of a big CSV take, without parsing all of it."""
    with open(path, "rb") as f:
        header = f.readline().decode().strip().split(",")
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 22), b""))
        f.seek(max(0, f.tell() - 1024 * (n + 1)))
        tail = f.read().decode().strip().split("\n")[-n:]
    return header, [line.split(",") for line in tail], rows


def test_lipsync_two_hours_to_a_take_with_flat_memory(long_files, tmp_path):
    minute, hours, per_segment, repeats = long_files
    rc, out, minute_kb = _run(["-m", "facewire", "lipsync", str(minute), "--out", str(tmp_path / "minute.csv"),
                               "--quiet"], tmp_path)
    assert rc == 0, out
    take = tmp_path / "two_hours.csv"
    rc, out, hours_kb = _run(["-m", "facewire", "lipsync", str(hours), "--out", str(take), "--quiet"], tmp_path)
    assert rc == 0, out
    assert hours_kb - minute_kb < FLAT_KB, f"peak RSS {minute_kb} KB for a minute, {hours_kb} KB for two hours"

    seconds = repeats * per_segment / SAMPLE_RATE
    segment_s = per_segment / SAMPLE_RATE
    header, tail, rows = _tail_rows(take, round(segment_s * 60))  # the last repeat of the sentences
    assert abs(rows - seconds * 60) <= 2  # 432,000+ frames, written as they came
    t = np.array([float(r[header.index("time_s")]) for r in tail])
    jaw = np.array([float(r[header.index("jawOpen")]) for r in tail])
    assert t[-1] == pytest.approx(seconds, abs=0.05)
    # Two hours in, the mouth still follows the speech: open on the sentences, shut in the pauses.
    assert jaw.max() > 0.3 and np.mean(jaw > 0.1) > 0.3 and np.mean(jaw < 0.02) > 0.1
