"""VRChat OSC with Unified Expressions v2: the ARKit mapping and its ranges, changed-only sending,
the receiver's inverse, and python-osc's own server decoding our traffic."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.frame import FaceFrame, Gaze, HeadPose
from facewire.retarget import (
    UNIFIED_FROM_ARKIT,
    UNIFIED_NAMES,
    UNIFIED_RANGES,
    VRM_PRESETS,
    arkit_from_unified,
    unified_expressions,
    vrm_presets,
)
from facewire.sinks.osc import OscBundle, OscMessage, parse_packet
from facewire.sinks.vrchat import VrchatReceiver, VrchatSink

weights = arkit.weights_of


def random_frame(seed: int) -> FaceFrame:
    rng = np.random.default_rng(seed)
    return FaceFrame(t_ns=seed, weights=rng.random(arkit.COUNT, dtype=np.float32),
                     gaze=Gaze(*rng.uniform(-40, 40, 4)), head=HeadPose(5.0, 0.0, 0.0))


# -- the mapping ---------------------------------------------------------------------------------
def test_every_arkit_shape_has_a_destination() -> None:
    covered = {a for _, a in UNIFIED_FROM_ARKIT} | {n for n in arkit.NAMES if n.startswith(("eyeBlink", "eyeLook"))}
    assert covered == set(arkit.NAMES)


def test_base_shapes_and_combined_parameters() -> None:
    p = unified_expressions(weights(jawOpen=0.5, jawRight=0.75, jawLeft=0.25, mouthLeft=0.6, eyeBlinkLeft=0.2,
                                    eyeWideLeft=0.4, cheekPuff=0.3, mouthSmileRight=0.9, mouthFrownRight=0.1,
                                    browDownRight=0.8, mouthFunnel=0.7))
    assert p["JawOpen"] == 0.5
    assert p["JawX"] == pytest.approx(0.5)  # JawRight − JawLeft
    assert p["MouthUpperLeft"] == p["MouthLowerLeft"] == pytest.approx(0.6)
    assert p["MouthX"] == pytest.approx(-0.6)
    assert p["EyeOpenLeft"] == pytest.approx(0.8) and p["EyeClosedLeft"] == pytest.approx(0.2)
    assert p["EyeLidLeft"] == pytest.approx(0.8 * 0.75 + 0.4 * 0.25)
    assert p["EyeLidRight"] == pytest.approx(0.75)  # open, not widened: "relaxed open"
    assert p["CheekPuffLeft"] == p["CheekPuffRight"] == pytest.approx(0.3)
    assert p["MouthSmileRight"] == pytest.approx(0.9)  # 0.8·CornerPull + 0.2·CornerSlant
    assert p["SmileFrownRight"] == pytest.approx(0.8)
    assert p["BrowDownRight"] == pytest.approx(0.8) and p["BrowExpressionRight"] == pytest.approx(-0.8)
    assert p["LipFunnel"] == pytest.approx(0.7) and p["LipSuckFunnelUpper"] == pytest.approx(-0.7)


def test_gaze_vector() -> None:
    """+X looks to the subject's right, +Y up; x = tan(yaw), clamped at ±1 (±45°)."""
    p = unified_expressions(weights(), Gaze(left_yaw_deg=-20.0, left_pitch_deg=10.0, right_yaw_deg=60.0))
    assert p["EyeLeftX"] == pytest.approx(math.tan(math.radians(20)))
    assert p["EyeLeftY"] == pytest.approx(math.tan(math.radians(10)))
    assert p["EyeRightX"] == -1.0
    assert p["EyeX"] == pytest.approx((p["EyeLeftX"] - 1.0) / 2)


def test_values_stay_in_their_documented_ranges() -> None:
    assert set(UNIFIED_RANGES) == set(UNIFIED_NAMES)
    assert UNIFIED_RANGES["JawX"] == (-1.0, 1.0) and UNIFIED_RANGES["JawOpen"] == (0.0, 1.0)
    rng = np.random.default_rng(0)
    for _ in range(300):
        w = (rng.random(arkit.COUNT) < 0.5).astype(np.float32) * rng.random(arkit.COUNT, dtype=np.float32)
        p = unified_expressions(w, Gaze(*rng.uniform(-80, 80, 4)))
        assert list(p) == list(UNIFIED_NAMES)
        for name, value in p.items():
            lo, hi = UNIFIED_RANGES[name]
            assert lo <= value <= hi, (name, value)


def test_arkit_from_unified_inverts() -> None:
    frame = random_frame(4)
    w, gaze = arkit_from_unified(unified_expressions(frame.weights, frame.gaze))
    for name in arkit.NAMES:
        if name.startswith("eyeLook"):
            assert w[arkit.INDEX[name]] == 0.0  # turned into gaze, not recoverable
        else:
            assert w[arkit.INDEX[name]] == pytest.approx(frame.weight(name), abs=1e-6), name
    g = frame.gaze
    for name in ("left_yaw_deg", "left_pitch_deg", "right_yaw_deg", "right_pitch_deg"):
        assert getattr(gaze, name) == pytest.approx(getattr(g, name), abs=1e-6)


def test_vrm_presets() -> None:
    assert VRM_PRESETS == ("A", "I", "U", "E", "O", "Blink", "Blink_L", "Blink_R", "Joy", "Angry", "Sorrow", "Fun")
    p = vrm_presets(weights(eyeBlinkLeft=0.9, eyeBlinkRight=0.6))
    assert (p["Blink"], p["Blink_L"], p["Blink_R"]) == pytest.approx((0.6, 0.3, 0.0))
    assert vrm_presets(weights(jawOpen=1.0))["A"] == 1.0
    assert vrm_presets(weights(mouthFunnel=0.8))["O"] == pytest.approx(0.8)
    assert vrm_presets(weights(mouthPucker=0.8))["U"] == pytest.approx(0.8)
    smile = vrm_presets(weights(mouthSmileLeft=1.0, mouthSmileRight=1.0, cheekSquintLeft=1.0, cheekSquintRight=1.0))
    assert smile["Joy"] == 1.0 and smile["Fun"] == 0.0 and smile["Angry"] == 0.0
    assert vrm_presets(weights(browDownLeft=1.0, browDownRight=1.0))["Angry"] == 1.0
    rng = np.random.default_rng(2)
    for _ in range(300):
        p = vrm_presets(rng.random(arkit.COUNT, dtype=np.float32))
        assert all(0.0 <= v <= 1.0 for v in p.values())
        assert sum(p[k] for k in "AIUEO") <= 1.0 + 1e-9


# -- the sink ------------------------------------------------------------------------------------
def decode_all(datagrams) -> dict[str, tuple[str, float]]:
    out = {}
    for d in datagrams:
        m = parse_packet(d)
        assert isinstance(m, OscMessage)
        out[m.address] = (m.tags, m.args[0])
    return out


def test_sends_every_parameter_then_only_changes() -> None:
    sink = VrchatSink(resend_s=None)
    frame = random_frame(1)
    first = decode_all(sink.encode(frame))
    assert len(first) == len(UNIFIED_NAMES)
    assert set(first) == {f"/avatar/parameters/FT/v2/{n}" for n in UNIFIED_NAMES}
    assert all(tag == "f" for tag, _ in first.values())
    assert first["/avatar/parameters/FT/v2/JawOpen"][1] == frame.weight("jawOpen")
    assert sink.encode(frame) == []  # nothing changed
    w = frame.weights.copy()
    w[arkit.INDEX["jawOpen"]] = min(1.0, w[arkit.INDEX["jawOpen"]] + 0.0005)  # below epsilon
    assert sink.encode(frame.replace(weights=w)) == []
    w[arkit.INDEX["jawOpen"]] = 0.01 if frame.weight("jawOpen") > 0.5 else 0.99
    changed = decode_all(sink.encode(frame.replace(weights=w)))
    assert set(changed) == {"/avatar/parameters/FT/v2/JawOpen"}
    assert sink.encode(FaceFrame.untracked(t_ns=5)) == []  # no face: the avatar keeps its expression


def test_prefix_parameters_bundle_and_resend() -> None:
    sink = VrchatSink(prefix="Nest/v2/", parameters=["JawOpen", "EyeLidLeft"], bundle=True, resend_s=0.05)
    frame = random_frame(2)
    (data,) = sink.encode(frame)
    bundle = parse_packet(data)
    assert isinstance(bundle, OscBundle)
    assert [m.address for m in bundle.messages()] == ["/avatar/parameters/Nest/v2/JawOpen",
                                                      "/avatar/parameters/Nest/v2/EyeLidLeft"]
    assert sink.encode(frame) == []
    time.sleep(0.06)
    assert len(parse_packet(sink.encode(frame)[0]).elements) == 2  # resent after resend_s


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: VrchatSink(parameters=["JawOpen", "Nope"]), "vrchat parameters: unknown Unified Expressions name(s) Nope"),
        (lambda: VrchatSink(prefix="/FT/v2/"), "vrchat prefix: expected a parameter path such as 'FT/v2/', got '/FT/v2/'"),
        (lambda: VrchatSink(epsilon=-1), "vrchat epsilon: expected a number >= 0, got -1"),
        (lambda: VrchatSink(port=70000), "vrchat port: expected an integer in 1..65535, got 70000"),
        (lambda: VrchatSink(max_rate_hz=0), "vrchat max_rate_hz: expected a positive number or None, got 0"),
    ],
)
def test_sink_rejects(make, message: str) -> None:
    with pytest.raises(InputError) as info:
        make()
    assert str(info.value) == message


# -- receiver and a third party --------------------------------------------------------------------
def test_loopback_into_the_receiver() -> None:
    """Single-message datagrams, changed values only: the receiver's state tracks the sender's
    within epsilon, and each burst becomes one frame."""
    frames = [random_frame(i) for i in range(30)]
    with VrchatReceiver("127.0.0.1", 0, timeout_s=1.0) as receiver:
        got = []
        thread = threading.Thread(target=lambda: got.extend(receiver.frames(timeout_s=0.5)), daemon=True)
        thread.start()
        with VrchatSink("127.0.0.1", receiver.address[1], max_rate_hz=50, resend_s=None) as sink:
            for frame in frames:
                sink.send(frame)
                time.sleep(0.025)
        thread.join(10)
        stats = receiver.statistics()
    assert stats.bad_packets == 0 and stats.packets == sink.statistics().packets_sent
    assert len(got) >= 20  # one per burst (timing can merge two)
    expected = unified_expressions(frames[-1].weights, frames[-1].gaze)
    assert set(receiver.parameters) == set(UNIFIED_NAMES)
    for name, value in receiver.parameters.items():
        assert value == pytest.approx(expected[name], abs=1e-3 + 1e-7), name
    last = got[-1]
    for name in arkit.NAMES:
        if not name.startswith("eyeLook"):
            assert last.weight(name) == pytest.approx(frames[-1].weight(name), abs=2e-3), name


def test_python_osc_server_decodes_our_traffic() -> None:
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer

    got: dict[str, tuple] = {}
    lock = threading.Lock()

    def record(address, *args):
        with lock:
            got[address] = args

    dispatcher = Dispatcher()
    dispatcher.map("/avatar/parameters/FT/v2/*", record)
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    frame = random_frame(9)
    try:
        with VrchatSink("127.0.0.1", server.server_address[1]) as sink:
            sink.send(frame)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with lock:
                if len(got) == len(UNIFIED_NAMES):
                    break
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()
    expected = unified_expressions(frame.weights, frame.gaze)
    assert set(got) == {f"/avatar/parameters/FT/v2/{n}" for n in UNIFIED_NAMES}
    for address, args in got.items():
        name = address.rsplit("/", 1)[1]
        assert len(args) == 1 and type(args[0]) is float
        lo, hi = UNIFIED_RANGES[name]
        assert lo <= args[0] <= hi
        assert args[0] == pytest.approx(expected[name], abs=1e-6)
    for name in ("JawX", "EyeLidLeft", "EyeLidRight", "MouthX", "EyeLeftX", "EyeLeftY", "JawOpen", "EyeOpenLeft"):
        assert f"/avatar/parameters/FT/v2/{name}" in got


def test_native_eye_messages_golden_bytes_and_signs() -> None:
    """VRChat's eye OSC: positive pitch looks down and positive yaw to the user's right (VRChat's
    OSC eye-tracking page), the opposite of facewire's Gaze; bytes laid out by hand from OSC 1.0."""
    import struct

    w = np.zeros(arkit.COUNT, np.float32)
    w[arkit.INDEX["eyeBlinkLeft"]], w[arkit.INDEX["eyeBlinkRight"]] = 0.5, 0.25
    frame = FaceFrame(t_ns=0, weights=w, gaze=Gaze(left_yaw_deg=10.0, left_pitch_deg=5.0,
                                                   right_yaw_deg=8.0, right_pitch_deg=4.0))
    sink = VrchatSink(parameters=["JawOpen"], native_eyes=True)
    messages = sink.encode(frame)
    address = b"/tracking/eye/LeftRightPitchYaw"  # 31 bytes + NUL = 32, already aligned
    expected = address + b"\0" + b",ffff\0\0\0" + struct.pack(">4f", -5.0, -10.0, -4.0, -8.0)
    assert messages[-2] == expected
    closed = b"/tracking/eye/EyesClosedAmount"  # 30 bytes + NUL, padded to 32
    assert messages[-1] == closed + b"\0\0" + b",f\0\0" + struct.pack(">f", 0.375)
    assert len(VrchatSink(parameters=["JawOpen"]).encode(frame)) == 1  # off by default
    assert VrchatSink(native_eyes=True).encode(FaceFrame.untracked(0)) == []


def test_receiver_takes_gaze_from_native_eyes() -> None:
    frame = FaceFrame(t_ns=0, weights=np.zeros(arkit.COUNT, np.float32),
                      gaze=Gaze(left_yaw_deg=-12.0, left_pitch_deg=6.0, right_yaw_deg=-11.0, right_pitch_deg=7.0))
    receiver = VrchatReceiver(port=0)
    for data in VrchatSink(parameters=["JawOpen"], native_eyes=True, bundle=True).encode(frame):
        (back,) = receiver.decode(data)
    assert (back.gaze.left_yaw_deg, back.gaze.left_pitch_deg) == pytest.approx((-12.0, 6.0))
    assert (back.gaze.right_yaw_deg, back.gaze.right_pitch_deg) == pytest.approx((-11.0, 7.0))
    assert receiver.eyes_closed == 0.0
    with pytest.raises(InputError, match="four finite angles"):
        receiver.decode(bytes(OscMessage("/tracking/eye/LeftRightPitchYaw", (math.nan, 0.0, 0.0, 0.0), "ffff")))
