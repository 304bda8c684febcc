"""VMC protocol: what one bundle holds, Unity's rotation convention, the receiver, and python-osc's
own server decoding our traffic."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.frame import FaceFrame, Gaze, HeadPose, euler_to_quaternion
from facewire.retarget import VRM_PRESETS
from facewire.sinks.osc import OscBundle, OscMessage, parse_packet
from facewire.sinks.vmc import (
    VmcReceiver,
    VmcSink,
    euler_from_quaternion,
    quat_multiply,
    quat_power,
    to_unity,
)


def sample_frame(seed: int = 0, t_ns: int = 1_500_000_000) -> FaceFrame:
    rng = np.random.default_rng(seed)
    return FaceFrame(t_ns=t_ns, weights=rng.random(arkit.COUNT, dtype=np.float32),
                     head=HeadPose(20.0, -10.0, 5.0), gaze=Gaze(8.0, -4.0, 6.0, -3.0))


def bundle_of(sink: VmcSink, frame: FaceFrame) -> OscBundle:
    (data,) = sink.encode(frame)
    packet = parse_packet(data)
    assert isinstance(packet, OscBundle)
    return packet


def test_one_bundle_per_frame_in_protocol_order() -> None:
    frame = sample_frame()
    messages = list(bundle_of(VmcSink(), frame).messages())
    addresses = [m.address for m in messages]
    assert addresses[:5] == ["/VMC/Ext/OK", "/VMC/Ext/T", "/VMC/Ext/Bone/Pos", "/VMC/Ext/Bone/Pos", "/VMC/Ext/Bone/Pos"]
    assert addresses[5:-1] == ["/VMC/Ext/Blend/Val"] * (52 + 12)
    assert addresses[-1] == "/VMC/Ext/Blend/Apply" and messages[-1].args == ()
    ok, t = messages[0], messages[1]
    assert (ok.tags, ok.args) == ("iiii", (1, 3, 0, 1))
    assert t.tags == "f" and t.args[0] == pytest.approx(1.5)
    assert [m.args[0] for m in messages[2:5]] == ["Head", "LeftEye", "RightEye"]
    assert all(m.tags == "sfffffff" for m in messages[2:5])
    blends = {m.args[0]: m.args[1] for m in messages[5:-1]}
    assert all(m.tags == "sf" for m in messages[5:-1])
    assert list(blends)[:52] == [arkit.pascal(n) for n in arkit.NAMES]  # Perfect Sync: exact case
    assert list(blends)[52:] == list(VRM_PRESETS)
    for name, value in zip(arkit.NAMES, frame.weights):
        assert blends[arkit.pascal(name)] == value  # float32 on the wire, exactly


def test_name_sets() -> None:
    frame = sample_frame()
    only_vrm = [m.args[0] for m in bundle_of(VmcSink(names="vrm"), frame).messages() if m.address.endswith("Val")]
    assert only_vrm == list(VRM_PRESETS)
    only_ps = [m.args[0] for m in bundle_of(VmcSink(names=["perfect_sync"]), frame).messages()
               if m.address.endswith("Val")]
    assert len(only_ps) == 52
    with pytest.raises(InputError) as info:
        VmcSink(names="arkit")
    assert str(info.value) == "vmc names: expected one or more of perfect_sync, vrm, got 'arkit'"


def test_no_face_keeps_the_last_pose() -> None:
    messages = list(bundle_of(VmcSink(), FaceFrame.untracked(t_ns=0)).messages())
    assert [m.address for m in messages] == ["/VMC/Ext/OK", "/VMC/Ext/T", "/VMC/Ext/Blend/Apply"]
    assert messages[0].args == (1, 3, 0, 0)
    receiver = VmcReceiver(port=0)
    (frame,) = receiver.decode(bytes(OscBundle(tuple(messages))))
    assert not frame.tracked


def _rotate(q, v):
    """v rotated by unit quaternion q = (x, y, z, w): the same algebra in either handedness."""
    x, y, z, w = q
    u = np.array([x, y, z])
    v = np.asarray(v, dtype=float)
    return 2 * np.dot(u, v) * u + (w * w - np.dot(u, u)) * v + 2 * w * np.cross(u, v)


def test_unity_rotation_convention() -> None:
    """Unity: x right, y up, z forward (left-handed); an avatar faces +z, its left is −x."""
    def unity(yaw=0.0, pitch=0.0, roll=0.0):
        return to_unity(HeadPose(yaw, pitch, roll).quaternion)

    nose, up = (0, 0, 1), (0, 1, 0)
    turned = _rotate(unity(yaw=30), nose)  # the subject turns to their left …
    assert turned[0] == pytest.approx(-math.sin(math.radians(30)))  # … so does the avatar (−x)
    assert unity(yaw=30)[1] < 0  # a negative rotation about Unity's Y
    raised = _rotate(unity(pitch=20), nose)  # nose up
    assert raised[1] == pytest.approx(math.sin(math.radians(20)))
    tilted = _rotate(unity(roll=15), up)  # counter-clockwise as the camera sees it: top towards the
    assert tilted[0] == pytest.approx(math.sin(math.radians(15)))  # subject's right = avatar's +x


def test_euler_from_quaternion_inverts() -> None:
    rng = np.random.default_rng(1)
    for yaw, pitch, roll in rng.uniform([-170, -80, -170], [170, 80, 170], size=(500, 3)):
        back = euler_from_quaternion(euler_to_quaternion(yaw, pitch, roll))
        assert back == pytest.approx((yaw, pitch, roll), abs=1e-9)


def test_receiver_inverts_the_sink() -> None:
    frame = sample_frame(t_ns=2_000_000_000)
    (back,) = VmcReceiver(port=0).decode(VmcSink().encode(frame)[0])
    np.testing.assert_array_equal(back.weights, frame.weights)
    assert back.t_ns == round(float(np.float32(2.0)) * 1e9)
    for name in ("yaw_deg", "pitch_deg", "roll_deg"):
        assert getattr(back.head, name) == pytest.approx(getattr(frame.head, name), abs=1e-4)
    for name in ("left_yaw_deg", "left_pitch_deg", "right_yaw_deg", "right_pitch_deg"):
        assert getattr(back.gaze, name) == pytest.approx(getattr(frame.gaze, name), abs=1e-4)


def test_quat_power_scales_the_angle_about_the_same_axis() -> None:
    q = euler_to_quaternion(0.0, 0.0, 90.0)  # 90° roll = about z
    half = quat_power(q, 0.5)
    assert half == pytest.approx((0.0, 0.0, math.sin(math.radians(22.5)), math.cos(math.radians(22.5))))
    assert quat_power(q, 0.0) == pytest.approx((0, 0, 0, 1))
    assert quat_multiply(half, half) == pytest.approx(q)
    assert quat_power(tuple(-v for v in q), 0.5) == pytest.approx(half)  # −q is the same rotation


def test_neck_carries_a_share_and_neck_times_head_is_the_pose() -> None:
    frame = sample_frame()
    sink = VmcSink(neck_share=0.4)
    bones = {m.args[0]: m.args for m in bundle_of(sink, frame).messages() if m.address == "/VMC/Ext/Bone/Pos"}
    assert list(bones)[:2] == ["Neck", "Head"]
    neck, head = tuple(bones["Neck"][4:8]), tuple(bones["Head"][4:8])
    total = to_unity(frame.head.quaternion)
    assert quat_multiply(neck, head) == pytest.approx(total, abs=1e-6)
    # the neck turns 40 % of the total angle
    angle = lambda q: 2 * math.degrees(math.acos(min(1.0, abs(q[3]))))
    assert angle(neck) == pytest.approx(0.4 * angle(total), abs=1e-3)
    (back,) = VmcReceiver(port=0).decode(sink.encode(frame)[0])
    for name in ("yaw_deg", "pitch_deg", "roll_deg"):
        assert getattr(back.head, name) == pytest.approx(getattr(frame.head, name), abs=1e-3)
    assert "Neck" not in {m.args[0] for m in bundle_of(VmcSink(), frame).messages() if m.address == "/VMC/Ext/Bone/Pos"}
    with pytest.raises(InputError, match="neck_share"):
        VmcSink(neck_share=1.5)


def test_receiver_takes_a_third_party_stream() -> None:
    """Unbundled messages, lower-case names (EVMC4U compares case-insensitively), unknown addresses,
    a 1-argument OK: one frame per Apply, values persisting between frames."""
    receiver = VmcReceiver(port=0)
    out = []
    for m in [OscMessage("/VMC/Ext/OK", (1,)), OscMessage("/VMC/Ext/Root/Pos", ("root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)),
              OscMessage("/VMC/Ext/Blend/Val", ("eyeblinkleft", 0.75)), OscMessage("/VMC/Ext/Blend/Val", ("Joy", 1.0)),
              OscMessage("/VMC/Ext/Blend/Apply"), OscMessage("/VMC/Ext/Blend/Val", ("JawOpen", 0.5)),
              OscMessage("/VMC/Ext/Blend/Apply")]:
        out += receiver.decode(bytes(m))
    assert len(out) == 2
    assert out[0].weight("eyeBlinkLeft") == 0.75 and out[0].weight("jawOpen") == 0.0
    assert out[1].weight("eyeBlinkLeft") == 0.75 and out[1].weight("jawOpen") == 0.5
    assert receiver.blends["Joy"] == 1.0


def test_receiver_rejects_non_finite_values() -> None:
    with pytest.raises(InputError) as info:
        VmcReceiver(port=0).decode(bytes(OscMessage("/VMC/Ext/Blend/Val", ("JawOpen", math.nan))))
    assert str(info.value) == "VMC /VMC/Ext/Blend/Val JawOpen: expected a finite value, got nan"


def test_python_osc_server_decodes_our_traffic() -> None:
    """python-osc's own UDP server, dispatcher and bundle parser receive what the VMC sink sends."""
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer

    got: list[tuple] = []
    lock = threading.Lock()

    def record(address, *args):
        with lock:
            got.append((address, args))

    dispatcher = Dispatcher()
    dispatcher.set_default_handler(record)
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        frames = [sample_frame(seed=i, t_ns=i * 16_666_667) for i in range(5)]
        with VmcSink("127.0.0.1", server.server_address[1], max_rate_hz=None) as sink:
            for frame in frames:
                sink.send(frame)
                time.sleep(0.02)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with lock:
                if sum(a == "/VMC/Ext/Blend/Apply" for a, _ in got) >= len(frames):
                    break
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()
    with lock:
        messages = list(got)
    by_address: dict[str, list[tuple]] = {}
    for address, args in messages:
        by_address.setdefault(address, []).append(args)
    assert set(by_address) == {"/VMC/Ext/OK", "/VMC/Ext/T", "/VMC/Ext/Bone/Pos", "/VMC/Ext/Blend/Val",
                               "/VMC/Ext/Blend/Apply"}
    assert len(by_address["/VMC/Ext/Blend/Apply"]) == 5 and by_address["/VMC/Ext/Blend/Apply"][0] == ()
    assert all(args == (1, 3, 0, 1) for args in by_address["/VMC/Ext/OK"])
    assert all(len(a) == 1 and type(a[0]) is float for a in by_address["/VMC/Ext/T"])
    for args in by_address["/VMC/Ext/Bone/Pos"]:
        assert args[0] in ("Head", "LeftEye", "RightEye")
        assert len(args) == 8 and all(type(v) is float for v in args[1:])
    blends = by_address["/VMC/Ext/Blend/Val"]
    assert len(blends) == 5 * 64
    assert all(type(name) is str and type(value) is float for name, value in blends)
    first = dict(blends[:64])
    for name, value in zip(arkit.NAMES, frames[0].weights):
        assert first[arkit.pascal(name)] == value
    assert set(first) >= set(VRM_PRESETS)
