"""Known-answer tests for ACE (ace_utils.method.ace) on planted cores and linear systems."""

import numpy as np
import pytest
import torch
from scipy.linalg import solve_continuous_lyapunov

from ace_utils.method.ace import (
    ace,
    balanced_truncation,
    energy_rank,
    necessity_scan,
    observability_from_gradients,
    observability_from_readout,
    observability_gramian,
    reachability_gramian,
    sufficiency_scan,
)
from ace_utils.method.alignment import principal_angles
from ace_utils.method.synthetic import planted_core_system


def top_eigvecs(W: torch.Tensor, k: int) -> torch.Tensor:
    _, V = torch.linalg.eigh(W.to(torch.float64))
    return V[:, -k:]


def test_planted_core_is_recovered_and_single_gramians_fail():
    S = planted_core_system(n=4000, d=32, k=3, decorrelated=True, seed=0)
    Wo = observability_from_readout(S.C)
    res = ace(S.H, Wo, threshold=0.999)
    assert res.rank == 3
    assert principal_angles(res.core(), S.core).max() < 1.0
    # PCA alone (reachability) picks the loud decoy ...
    pca = top_eigvecs(reachability_gramian(S.H), 3)
    assert principal_angles(pca, S.core).max() > 60.0
    assert principal_angles(pca, S.decoy).max() < 1.0
    # ... output sensitivity alone (observability) picks the silent directions.
    sens = top_eigvecs(Wo, 3)
    assert principal_angles(sens, S.core).max() > 60.0
    # (its rows are core + 10 x silent, so it sits atan(1/10) = 5.71 deg off the silent span)
    assert principal_angles(sens, S.silent).max() == pytest.approx(np.degrees(np.arctan(0.1)), abs=0.01)
    # Hankel values are core std x gain (up to the 1e-8 relative jitter of the factors).
    np.testing.assert_allclose(res.sigma[:3].numpy(), [1.0, 0.7, 0.5], rtol=1e-4)


def test_core_basis_is_orthonormal_and_nested():
    S = planted_core_system(seed=1)
    res = ace(S.H, observability_from_readout(S.C))
    Q = res.basis
    torch.testing.assert_close(Q.T @ Q, torch.eye(Q.shape[1], dtype=torch.float64), atol=1e-10, rtol=0)
    P = res.projector()
    torch.testing.assert_close(P @ P, P, atol=1e-10, rtol=0)
    assert res.core(2).shape == (32, 2)


def test_finite_sample_tilt_shrinks_like_one_over_sqrt_n():
    """With i.i.d. (not decorrelated) latents, the decoy 10x louder than the core tilts
    orth(L_c U_r) by an angle that shrinks like 1/sqrt(n) (method page, 'When the basis tilts')."""

    def mean_error(n: int) -> float:
        errs = []
        for seed in range(5):
            S = planted_core_system(n=n, decorrelated=False, seed=seed)
            res = ace(S.H, observability_from_readout(S.C), rank=3)
            errs.append(principal_angles(res.core(), S.core).max())
        return float(np.mean(errs))

    e_small, e_large = mean_error(8_000), mean_error(128_000)
    assert e_large > 1.0, "the tilt is real: several degrees even at n = 128k"
    ratio = e_small / e_large  # 16x the samples: 4x smaller under a 1/sqrt(n) law
    assert 2.5 < ratio < 6.5, ratio
    # Without the loud decoy the same sample sizes give a much smaller tilt.
    quiet = planted_core_system(n=8_000, decorrelated=False, decoy_ratio=1.0, seed=0)
    res = ace(quiet.H, observability_from_readout(quiet.C), rank=3)
    assert principal_angles(res.core(), quiet.core).max() < e_small / 3


def test_hankel_singular_values_match_lyapunov_oracle():
    rng = np.random.default_rng(0)
    n, m, p = 8, 2, 3
    A = rng.normal(size=(n, n))
    A -= (np.max(np.linalg.eigvals(A).real) + 0.5) * np.eye(n)  # stable
    B, C = rng.normal(size=(n, m)), rng.normal(size=(p, n))
    Wc = solve_continuous_lyapunov(A, -B @ B.T)
    Wo = solve_continuous_lyapunov(A.T, -C.T @ C)
    hsv_oracle = np.sort(np.sqrt(np.abs(np.linalg.eigvals(Wc @ Wo))))[::-1]
    sigma, Q = balanced_truncation(torch.tensor(Wc), torch.tensor(Wo), rel_jitter=0.0)
    np.testing.assert_allclose(sigma.numpy(), hsv_oracle, rtol=1e-8, atol=1e-10)
    # The default jitter (1e-8 tr/D) perturbs them only at that level.
    sigma_j, _ = balanced_truncation(torch.tensor(Wc), torch.tensor(Wo))
    np.testing.assert_allclose(sigma_j.numpy(), hsv_oracle, rtol=1e-3, atol=1e-6)


def test_energy_rank_rule():
    sigma = torch.tensor([3.0, 2.0, 1.0, 0.1], dtype=torch.float64)  # energies 9, 4, 1, 0.01
    assert energy_rank(sigma, 9 / 14.01) == 1
    assert energy_rank(sigma, 0.99) == 3
    assert energy_rank(sigma, 0.9999) == 4
    with pytest.raises(ValueError):
        energy_rank(sigma, 0.0)


def test_observability_gramian_from_jacobians_matches_closed_form():
    torch.manual_seed(0)
    D, K, N = 6, 3, 50
    W = torch.randn(K, D, dtype=torch.float64)
    H = torch.randn(N, D, dtype=torch.float64)
    # Linear tail: exactly W^T W.
    Wo = observability_gramian(lambda h: h @ W.T, H, batch_size=16)
    torch.testing.assert_close(Wo, W.T @ W)
    # Nonlinear tail: mean over samples of J^T J with J = diag(1 - tanh^2(W h)) W.
    Wo_nl = observability_gramian(lambda h: torch.tanh(h @ W.T), H, batch_size=7)
    S = 1 - torch.tanh(H @ W.T) ** 2  # (N, K)
    expected = torch.einsum("nk,kd,nk,ke->de", S, W, S, W) / N
    torch.testing.assert_close(Wo_nl, expected)
    # Scalar tail through gradients: the same as the Jacobian route.
    v = torch.randn(D, dtype=torch.float64)
    f = lambda h: torch.tanh(h @ v)  # noqa: E731
    G = (1 - torch.tanh(H @ v) ** 2)[:, None] * v
    torch.testing.assert_close(observability_gramian(f, H), observability_from_gradients(G))


def test_rank_scans_pick_first_crossing_and_report_curve():
    removed = {1: 0.9, 2: 0.5, 3: 0.03, 4: 0.02}
    scan = necessity_scan(lambda r: removed[r], chance_level=2 / 53, ranks=range(1, 5))
    assert scan.rank == 3 and scan.ranks == [1, 2, 3]
    kept = {1: 0.3, 2: 0.999, 3: 1.0}
    scan = sufficiency_scan(lambda r: kept[r], target=0.999, ranks=range(1, 4))
    assert scan.rank == 2
    assert necessity_scan(lambda r: 1.0, 0.1, range(1, 3)).rank is None
