"""Known answers for operator fits, spectra and the Markov oracle R^2."""

import math

import numpy as np
import pytest

from ace_utils.method.operators import (
    fit_operator,
    markov_oracle_r2,
    match_eigenvalues,
    rotational_mode_count,
    stationary_distribution,
)

LAZY_CYCLE = np.array([[0.75, 0.25, 0, 0], [0, 0.75, 0.25, 0], [0, 0, 0.75, 0.25], [0.25, 0, 0, 0.75]])


def test_fit_recovers_a_known_linear_map_and_its_spectrum():
    rng = np.random.default_rng(0)
    A = np.array([[0.75, -0.25, 0.0], [0.25, 0.75, 0.0], [0.0, 0.0, 0.5]])
    X = rng.normal(size=(5000, 3)) + 4.0
    Y = (X - X.mean(0)) @ A.T + 0.01 * rng.normal(size=(5000, 3)) - 2.0
    fit = fit_operator(X, Y)
    np.testing.assert_allclose(fit.A, A, atol=2e-3)
    _, err = match_eigenvalues(fit.eigenvalues, [0.75 + 0.25j, 0.75 - 0.25j, 0.5])
    assert err.max() < 2e-3
    assert fit.r2 > 0.99


def test_centring_removes_a_constant_offset_mode():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 2)) + 10
    Y = 0.3 * X + 7
    assert fit_operator(X, Y).r2 == pytest.approx(1.0)
    np.testing.assert_allclose(sorted(fit_operator(X, Y).eigenvalues.real), [0.3, 0.3], atol=1e-10)


def test_ridge_shrinks():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3))
    Y = X @ np.diag([1.0, 2.0, 3.0])
    assert np.abs(fit_operator(X, Y, ridge=100.0).A).max() < np.abs(fit_operator(X, Y).A).max()


def test_markov_facts_of_the_lazy_cycle():
    np.testing.assert_allclose(stationary_distribution(LAZY_CYCLE), 0.25)
    assert markov_oracle_r2(LAZY_CYCLE) == pytest.approx(0.5)
    # a deterministic chain's next state is fully explained
    assert markov_oracle_r2(np.roll(np.eye(3), 1, axis=1)) == pytest.approx(1.0)


def test_match_eigenvalues_is_optimal_not_greedy():
    est = np.array([1.0, 0.0])
    ref = np.array([0.4, 1.2])
    matched, err = match_eigenvalues(est, ref)
    np.testing.assert_allclose(matched, [0.0, 1.0])
    with pytest.raises(ValueError):
        match_eigenvalues(est[:1], ref)


def test_rotational_mode_count():
    p = 53
    lam = np.exp(2j * math.pi * np.array([1, -1, 5, -5, 5]) / p)  # frequencies 1 and 5, conjugates fold
    assert rotational_mode_count(lam, p) == 2
    assert rotational_mode_count(0.5 * lam, p) == 0  # inside the circle: not rotational
    all_modes = np.exp(2j * math.pi * np.arange(p) / p)
    assert rotational_mode_count(all_modes, p) == p // 2 + 1
