"""Known answers for principal angles, projector overlap and CCA."""

import numpy as np
import pytest
import torch

from ace_utils.method.alignment import (
    canonical_correlations,
    pairwise,
    principal_angles,
    projector_overlap,
    random_overlap_level,
    flat_parameters,
    weight_cosine_similarity,
)
from ace_utils.method.interventions import random_subspace


def test_identical_subspaces():
    U = random_subspace(64, 3, torch.Generator().manual_seed(0))
    R = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    assert projector_overlap(U, U @ R) == pytest.approx(1.0, abs=1e-12)  # basis-independent
    np.testing.assert_allclose(principal_angles(U, U @ R), 0.0, atol=1e-5)


def test_orthogonal_subspaces():
    E = torch.eye(8, dtype=torch.float64)
    assert projector_overlap(E[:, :2], E[:, 2:4]) == 0.0
    np.testing.assert_allclose(principal_angles(E[:, :2], E[:, 2:4]), 90.0)


def test_random_subspaces_overlap_at_chance_level():
    g = torch.Generator().manual_seed(1)
    ov = [projector_overlap(random_subspace(64, 3, g), random_subspace(64, 3, g)) for _ in range(400)]
    assert random_overlap_level(3, 3, 64) == pytest.approx(3 / 64)
    assert np.mean(ov) == pytest.approx(3 / 64, rel=0.1)


def test_cca_invariant_to_invertible_maps_and_detects_independence():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(2000, 3))
    M = rng.normal(size=(3, 3)) + 3 * np.eye(3)
    np.testing.assert_allclose(canonical_correlations(Z, Z @ M + 5.0), 1.0, atol=1e-6)
    rho = canonical_correlations(Z, rng.normal(size=(2000, 3)))
    assert rho.max() < 0.15
    assert len(canonical_correlations(Z, Z, k=2)) == 2
    # partial dependence: one shared coordinate, two independent ones
    W = np.column_stack([Z[:, 0], rng.normal(size=(2000, 2))])
    rho = canonical_correlations(Z, W)
    assert rho[0] == pytest.approx(1.0, abs=1e-6) and rho[1] < 0.15


def test_weight_cosine_similarity():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(50, 50), torch.nn.Linear(50, 50)
    assert weight_cosine_similarity(a, a) == pytest.approx(1.0)
    assert abs(weight_cosine_similarity(a, b)) < 0.1


def test_flat_parameters_and_cosine_without_layernorm():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    b = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    assert flat_parameters(a).shape == (3 * 2 + 2 + 2 + 2,) and flat_parameters(a).dtype == torch.float64
    assert flat_parameters(a, skip_layernorm=True).shape == (8,)  # the LayerNorm's gain and bias left out
    # LayerNorm gains start at 1 and biases at 0 in both models: they alone pull the full cosine up
    va, vb = flat_parameters(a, True), flat_parameters(b, True)
    assert weight_cosine_similarity(a, b, skip_layernorm=True) == pytest.approx(float(va @ vb / (va.norm() * vb.norm())))
    assert weight_cosine_similarity(a, b) > weight_cosine_similarity(a, b, skip_layernorm=True)


def test_pairwise_is_symmetric():
    M = pairwise([1, 2, 3], lambda x, y: x * y)
    np.testing.assert_array_equal(M, M.T)
    assert M[0, 2] == 3
