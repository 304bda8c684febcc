"""The learned text-affect model: pinned file, features, determinism of training, and its use in `analyse`."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from facewire.errors import ModelError
from facewire.expression import affect_model
from facewire.expression.affect import analyse, analyse_rules
from facewire.expression.emotion import EMOTIONS

ROOT = Path(__file__).resolve().parents[2]


def _train_module():
    spec = importlib.util.spec_from_file_location("train_affect", ROOT / "tools" / "train_affect.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_model_matches_its_pin_and_loads():
    blob = resources.files("facewire.data").joinpath(affect_model.DEFAULT_MODEL).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == affect_model.DEFAULT_MODEL_SHA256
    model = affect_model.load_default_model()
    assert model.w_text.shape == (len(model.rows), len(EMOTIONS)) and len(model.rows) > 1000
    assert int(model.meta["sentences"]) >= 1000  # trained on the corpus, not a toy


def test_a_changed_byte_is_refused(tmp_path):
    blob = bytearray(resources.files("facewire.data").joinpath(affect_model.DEFAULT_MODEL).read_bytes())
    with pytest.raises(ModelError, match="malformed|inconsistent|other features"):
        affect_model.TextAffectModel.from_bytes(bytes(blob[:200]), "cut")
    model = affect_model.load_default_model()
    bad = affect_model.TextAffectModel(model.rows[::-1].copy(), model.w_text, model.w_rule, model.bias, {})
    with pytest.raises(ModelError, match="unsorted"):
        affect_model.TextAffectModel.from_bytes(bad.to_bytes(), "reversed")


def test_round_trip_keeps_the_predictions():
    model = affect_model.load_default_model()
    again = affect_model.TextAffectModel.from_bytes(model.to_bytes())
    for text in ("Somebody keyed my car last night.", "Could you send me the invoice?"):
        assert again.probabilities(text) == pytest.approx(model.probabilities(text))


def test_features_are_the_same_in_another_process():
    """The hash is CRC-32, not Python's salted ``hash``: a model trained in one process works in the next."""
    text = "I'm not happy about the delay, honestly."
    here = sorted(affect_model.features(text)[0].items())
    code = ("from facewire.expression import affect_model as m; "
            f"print(sorted(m.features({text!r})[0].items()))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin"}).stdout.strip()
    assert repr(here) == there


def test_negation_scope_marks_words():
    plain, _ = affect_model.features("I am happy")
    negated, _ = affect_model.features("I am not happy")
    assert affect_model._hash("w:not_happy") in negated and affect_model._hash("w:not_happy") not in plain


def test_analyse_reports_probabilities_that_pick_the_emotion():
    a = analyse("The food was crawling with maggots, I nearly threw up.")
    assert sum(a.probabilities.values()) == pytest.approx(1.0)
    assert a.emotion == max(a.probabilities, key=a.probabilities.get)
    assert analyse_rules("The food was crawling with maggots, I nearly threw up.").probabilities == {}


def test_training_is_deterministic_and_learns(tmp_path):
    """Two fits of the same rows give identical weights, and the fit separates what it was shown."""
    train = _train_module()
    rows = [("I won the lottery, best day ever!", "happiness", "user"),
            ("My dog died this morning.", "sadness", "user"),
            ("Please send the report by Friday.", "neutral", "user"),
            ("There's someone outside my window, I'm terrified.", "fear", "user"),
            ("You lied to me again, I'm furious!", "anger", "user"),
            ("The fridge smells of rotten meat, gross.", "disgust", "user"),
            ("As if that amateur could ever manage it.", "contempt", "user"),
            ("Wait, you're moving to Japan? No way!", "surprise", "user")]
    y = np.array([EMOTIONS.index(label) for _, label, _ in rows])
    x, d = train.design(rows)
    first = train.fit(x, d, y, 1.0)
    second = train.fit(x, d, y, 1.0)
    for a, b in zip(first, second):
        assert np.array_equal(a, b)
    model = train.model_of(*first, {})
    assert np.array_equal(train.predict(model, x, d), y)
