"""Known-answer tests for the subspace baselines and the alternative ACE bases (ace_utils.method.baselines).

The planted-core known-answer test of the foundation (tests/test_ace.py) is called, not
copied; the rest pins down each finder on a system whose answer is known, and the tilt
study's measured behaviour (chapter 06).
"""

import math

import numpy as np
import pytest
import test_ace  # tests/ is on sys.path under pytest's default (prepend) import mode
import torch

from ace_utils.book.tables import dict_table
from ace_utils.method import baselines as bl
from ace_utils.method.ace import ace, observability_from_readout
from ace_utils.method.synthetic import planted_core_system
from ace_utils.models.training import torch_threads

F64 = torch.float64


def test_planted_core_ace_recovers_it_pca_and_sensitivity_do_not():
    # the foundation's known-answer test, as it stands
    test_ace.test_planted_core_is_recovered_and_single_gramians_fail()
    # ... and the chapter's own finders give the same verdict on the same system
    S = planted_core_system(n=4000, d=32, k=3, decorrelated=True, seed=0)
    Wo = observability_from_readout(S.C)
    assert bl.max_angle(bl.paper_basis(S.H, Wo, 3), S.core) < 1.0
    assert bl.max_angle(bl.pca_subspace(S.H, 3), S.core) > 60.0
    assert bl.max_angle(bl.pca_subspace(S.H, 3), S.decoy) < 1.0
    assert bl.max_angle(bl.sensitivity_subspace(Wo, 3), S.core) > 60.0


def test_paper_basis_is_the_basis_ace_returns():
    S = planted_core_system(n=3000, decorrelated=False, seed=3)
    Wo = observability_from_readout(S.C)
    Q = bl.paper_basis(S.H, Wo, 3)
    torch.testing.assert_close(Q, ace(S.H, Wo, rank=3).core(), atol=1e-10, rtol=0)
    torch.testing.assert_close(Q.T @ Q, torch.eye(3, dtype=F64), atol=1e-12, rtol=0)


def test_balanced_sides_are_biorthogonal():
    S = planted_core_system(n=3000, decorrelated=False, seed=2)
    T, O, sigma = bl.balanced_sides(S.H, observability_from_readout(S.C))
    torch.testing.assert_close(O.T @ T, torch.diag(sigma), atol=1e-8 * float(sigma[0]), rtol=0)


def test_whitening_first_gives_the_two_sides_again():
    S = planted_core_system(n=3000, decorrelated=False, seed=1)
    Wo = observability_from_readout(S.C)
    assert bl.max_angle(bl.whitened_core(S.H, Wo, 3, "pattern"), bl.paper_basis(S.H, Wo, 3)) < 1e-4
    assert bl.max_angle(bl.whitened_core(S.H, Wo, 3, "filter"), bl.observability_side_basis(S.H, Wo, 3)) < 1e-4
    with pytest.raises(ValueError):
        bl.whitened_core(S.H, Wo, 3, "both")


def test_observable_side_reads_silent_directions_and_interventions_cannot_tell():
    # Exact latents. With silent read-but-undriven directions (rows of C = core + 10 silent)
    # the observable side is the span of C's rows: atan(10) = 84.29 deg from the core ...
    S = planted_core_system(n=4000, decorrelated=True, seed=0)
    Wo = observability_from_readout(S.C)
    Q = bl.observability_side_basis(S.H, Wo, 3)
    assert bl.max_angle(Q, S.core) == pytest.approx(math.degrees(math.atan(10.0)), abs=0.01)
    # ... yet keeping only it reproduces the outputs exactly (the silent part is never driven)
    Y = S.outputs()
    assert float(((S.H @ Q @ Q.T @ S.C.T - Y) ** 2).sum() / (Y**2).sum()) < 1e-12
    # Without silent directions it is the core exactly.
    S0 = planted_core_system(n=4000, decorrelated=True, silent_ratio=0.0, seed=0)
    assert bl.max_angle(bl.observability_side_basis(S0.H, observability_from_readout(S0.C), 3), S0.core) < 1e-4


def test_class_mean_direction_of_two_gaussians():
    g = torch.Generator().manual_seed(0)
    D, n = 20, 40000
    u = torch.randn(D, generator=g, dtype=F64)
    u /= u.norm()
    y = torch.arange(n) % 2
    H = torch.randn(n, D, generator=g, dtype=F64) + 1.5 * y[:, None].double() * u  # isotropic noise
    d = bl.class_mean_direction(H, y)
    assert d.shape == (D, 1)
    # sampling error of the mean difference: sqrt(4 (D - 1) / n) / 1.5 rad = 1.7 deg
    assert bl.max_angle(d, u[:, None]) < 3.0
    assert float(d[:, 0] @ u) > 0.99  # it points from class 0 to class 1
    assert bl.max_angle(bl.class_mean_subspace(H, y, 1), d) < 1e-6
    with pytest.raises(ValueError):
        bl.class_mean_direction(H, torch.zeros(n))


def test_probe_is_the_fisher_direction_not_the_mean_difference():
    g = torch.Generator().manual_seed(1)
    D, n = 10, 20000
    A = torch.randn(D, D, generator=g, dtype=F64)
    Sigma = A @ A.T / D + 0.1 * torch.eye(D, dtype=F64)  # anisotropic within-class noise
    L = torch.linalg.cholesky(Sigma)
    mu = torch.randn(D, generator=g, dtype=F64)
    y = torch.arange(n) % 2
    H = torch.randn(n, D, generator=g, dtype=F64) @ L.T + y[:, None].double() * mu
    fisher = torch.linalg.solve(Sigma, mu)[:, None]
    w = bl.probe_subspace(H, y, 1)
    assert bl.max_angle(w, fisher) < 3.0
    # the class-mean direction is mu, far from Sigma^-1 mu for this Sigma
    assert bl.max_angle(bl.class_mean_direction(H, y), mu[:, None]) < 3.0
    assert bl.max_angle(fisher, mu[:, None]) > 30.0
    assert bl.max_angle(w, bl.class_mean_direction(H, y)) > 30.0


def test_multiclass_probe_and_class_means_span_the_planted_means():
    g = torch.Generator().manual_seed(2)
    D, C, n = 16, 4, 40000
    M = torch.linalg.qr(torch.randn(D, C - 1, generator=g, dtype=F64))[0]  # the class means live here
    centres = torch.cat([torch.zeros(1, C - 1, dtype=F64), 3 * torch.eye(C - 1, dtype=F64)]) @ M.T  # (C, D)
    y = torch.arange(n) % C
    H = centres[y] + torch.randn(n, D, generator=g, dtype=F64)
    assert bl.max_angle(bl.class_mean_subspace(H, y, C - 1), M) < 3.0
    assert bl.max_angle(bl.probe_subspace(H, y, C - 1), M) < 3.0
    Q = bl.probe_subspace(H, y, C - 1)
    torch.testing.assert_close(Q.T @ Q, torch.eye(C - 1, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(bl.probe_subspace(H, y, 2), Q[:, :2])  # nested
    with pytest.raises(ValueError):
        bl.probe_subspace(H, y, C)


def test_pca_and_sensitivity_are_nested_top_eigenvectors():
    S = planted_core_system(n=2000, seed=4)
    Wo = observability_from_readout(S.C)
    torch.testing.assert_close(bl.pca_subspace(S.H, 5)[:, :2], bl.pca_subspace(S.H, 2))
    torch.testing.assert_close(bl.sensitivity_subspace(Wo, 3)[:, :1], bl.sensitivity_subspace(Wo, 1))
    with pytest.raises(ValueError):
        bl.pca_subspace(S.H, 0)


def test_compare_subspaces_scores_every_basis_and_mode():
    calls = []

    def evaluate(Q, mode):
        calls.append((Q.shape[1], mode))
        return {"keep": 1.0, "remove": 0.0, "flip": -1.0}[mode] * Q.shape[1]

    out = bl.compare_subspaces({"a": torch.eye(4, 1), "b": torch.eye(4, 2)}, evaluate, ("keep", "remove", "flip"))
    assert out == {"a": {"keep": 1.0, "remove": 0.0, "flip": -1.0}, "b": {"keep": 2.0, "remove": 0.0, "flip": -2.0}}
    assert len(calls) == 6
    table = dict_table(out, ["keep", "flip"])
    assert table.splitlines()[0] == "| method | keep | flip |" and "| b | 2.000 | -2.000 |" in table


@pytest.fixture
def one_thread():
    """Small float64 matrices: one thread (two stall when another process shares the machine)."""
    with torch_threads(1):
        yield


def test_tilt_grows_with_decoy_and_shrinks_with_n_for_the_paper_basis_only(one_thread):
    st = bl.tilt_experiment(ns=(2000, 32000), decoy_ratios=(1.0, 3.0, 10.0), seeds=(0, 1, 2), silent_ratio=0.0)
    paper = st.median("ACE, paper basis orth(L_c U_r)")  # (n, decoy)
    assert np.all(np.diff(paper, axis=1) > 0), paper  # louder decoy: larger tilt
    assert np.all(paper[0] > paper[1]), paper  # more samples: smaller tilt
    assert paper[0, 2] > 15.0 and paper[1, 2] > 4.0, paper  # large, at a decoy 10x the core
    # ~ decoy / sqrt(n): 16x the samples shrink tan(angle) ~4x at the quietest decoy
    ratio = math.tan(math.radians(paper[0, 0])) / math.tan(math.radians(paper[1, 0]))
    assert 2.5 < ratio < 6.5, ratio
    # the observable side never sees the decoy (and there are no silent directions here)
    assert st.angle["ACE, observable side orth(L_o V_r)"].max() < 1e-4
    # PCA ranked by output energy: ~100x smaller tilt once the decoy is louder than the core ...
    ranked = st.median("PCA ranked by output energy")
    assert np.all(ranked[:, 1:] < paper[:, 1:] / 5), (ranked, paper)
    # ... but it fails when the decoy is exactly as loud as a core direction (degenerate PCA)
    assert ranked[0, 0] > 20.0, ranked
    # plain PCA picks the decoy whenever it is loudest
    assert st.median("PCA")[:, 1:].min() > 80.0
    # the paper basis's tilt lets the loud decoy into the kept output: error > 1 at decoy 10, n 2000
    assert st.median("ACE, paper basis orth(L_c U_r)", "keep_error")[0, 2] > 1.0
