"""The AU → ARKit table: codes, sides, intensity letters, combination, and reading AUs back."""

from __future__ import annotations

import numpy as np
import pytest

from facewire import arkit
from facewire.errors import InputError
from facewire.expression.facs import AU_TO_ARKIT, au_weights, estimate_aus, parse_au


def w(name: str, weights: np.ndarray) -> float:
    return float(weights[arkit.INDEX[name]])


def test_parse_codes():
    assert parse_au("12") == (12, None, None)
    assert parse_au("R12A") == (12, "R", 0.2)
    assert parse_au("l14e") == (14, "L", 1.0)
    assert parse_au("AU5B") == (5, None, 0.4)
    assert parse_au(26) == (26, None, None)


@pytest.mark.parametrize("bad", ["", "12Z", "X12", "99", 3.5, True, None])
def test_bad_codes_are_refused(bad):
    with pytest.raises(InputError, match="action unit"):
        parse_au(bad)


def test_every_table_name_is_arkit():
    for shapes in AU_TO_ARKIT.values():
        for name, gain in shapes.items():
            assert name in arkit.INDEX and 0 < gain <= 1


def test_bilateral_unilateral_and_letters():
    both = au_weights({"12": 0.5})
    assert w("mouthSmileLeft", both) == w("mouthSmileRight", both) == 0.5
    right = au_weights(["R12A"])
    assert w("mouthSmileRight", right) == pytest.approx(0.2) and w("mouthSmileLeft", right) == 0.0
    assert w("eyeWideLeft", au_weights({"5B": 0.5})) == pytest.approx(0.2)  # letter scales the value


def test_shared_shapes_combine_by_maximum():
    weights = au_weights({"6": 1.0, "7": 0.2})  # AU6 squints at 0.3, AU7 at 0.2: max, not sum
    assert w("eyeSquintLeft", weights) == pytest.approx(0.3)
    assert w("cheekSquintLeft", weights) == 1.0


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "high"])
def test_bad_intensity_is_refused(value):
    with pytest.raises(InputError, match="intensity"):
        au_weights({"12": value})


def test_estimate_reads_back_each_au():
    for au in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 24):
        aus = estimate_aus(au_weights({str(au): 0.6}))
        assert aus[au] == pytest.approx(0.6), au
    assert estimate_aus(au_weights({"26": 1.0}))[26] == pytest.approx(1.0)
    sides = estimate_aus(au_weights(["R14"]), sides=True)
    assert sides[14] == (0.0, 1.0)
    with pytest.raises(InputError, match="52"):
        estimate_aus(np.zeros(10))
