"""Rotational modes two ways (ace_utils.tasks.modular): the in-sample ridge-0 fit of the reference
code's mode sweep (in_sample_modes) and the ridge-1 held-out fit of the clock panels
(shift_operator's 'modes'), on class prototypes with known frequencies."""

from __future__ import annotations

import numpy as np
import pytest

from ace_utils.tasks import modular as mod


def _circle(p: int, freqs: tuple[int, ...], amplitude: float) -> np.ndarray:
    c = np.arange(p)[:, None]
    cols = [f(2 * np.pi * k * c / p) for k in freqs for f in (np.cos, np.sin)]
    return amplitude * np.hstack(cols)


@pytest.mark.parametrize("freqs", [(1,), (1, 5), (2, 7, 11)])
def test_in_sample_modes_count_the_planted_frequencies(freqs):
    protos = _circle(53, freqs, amplitude=3.0)
    assert mod.in_sample_modes(protos, 53) == len(freqs)
    assert mod.in_sample_r2(protos, 53) == pytest.approx(1.0, abs=1e-9)


def test_ridge_pulls_small_rotations_inside_the_circle():
    """The same exact rotation, at a small scale: the ridge-1 fit shrinks its eigenvalues below
    the unit circle's band and counts no mode, the in-sample ridge-0 fit counts all three."""
    protos = _circle(53, (1, 5, 9), amplitude=0.3)
    assert mod.in_sample_modes(protos, 53) == 3
    assert mod.shift_operator(protos, 53)["modes"] == 0
    # at a large scale the ridge no longer matters: both count three
    assert mod.shift_operator(_circle(53, (1, 5, 9), amplitude=30.0), 53)["modes"] == 3


def test_noise_adds_no_mode():
    rng = np.random.default_rng(0)
    protos = rng.standard_normal((53, 6))
    assert mod.in_sample_modes(protos, 53) <= 1
