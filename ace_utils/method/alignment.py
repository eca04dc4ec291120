"""Comparing cores across runs: geometry (angles, overlap) vs statistics (CCA)."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import subspace_angles
from torch import Tensor

__all__ = [
    "principal_angles",
    "projector_overlap",
    "random_overlap_level",
    "canonical_correlations",
    "flat_parameters",
    "weight_cosine_similarity",
    "pairwise",
]


def _np(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=float)


def principal_angles(U1: Tensor, U2: Tensor) -> np.ndarray:
    """Principal angles (degrees, ascending) between span(U1) and span(U2).

    ``U1`` (D, k1), ``U2`` (D, k2); wraps ``scipy.linalg.subspace_angles``.
    """
    return np.sort(np.degrees(subspace_angles(_np(U1), _np(U2))))


def projector_overlap(U1: Tensor, U2: Tensor) -> float:
    """``||U1^T U2||_F^2 / sqrt(k1 k2)`` for orthonormal bases: 1 if equal, ~sqrt(k1 k2)/D if random."""
    A, B = _np(U1), _np(U2)
    return float(np.linalg.norm(A.T @ B) ** 2 / math.sqrt(A.shape[1] * B.shape[1]))


def random_overlap_level(k1: int, k2: int, d: int) -> float:
    """Expected ``projector_overlap`` of independent Haar-random subspaces: sqrt(k1 k2) / d.

    (E tr(P1 P2) = k1 k2 / d.)
    """
    return math.sqrt(k1 * k2) / d


def canonical_correlations(Z1: Tensor, Z2: Tensor, k: int | None = None, ridge: float = 1e-8) -> np.ndarray:
    """Canonical correlations (descending) between coordinates Z1 (N, a) and Z2 (N, b).

    Rows must be the same inputs. Centre, whiten each side with a Cholesky factor
    of its covariance (+ ``ridge`` times its mean variance), SVD of the whitened
    cross-covariance. Returns the top ``k`` (default min(a, b)).
    """
    X, Y = _np(Z1), _np(Z2)
    if X.shape[0] != Y.shape[0]:
        raise ValueError("Z1 and Z2 must have the same number of rows (same inputs)")
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    n = X.shape[0] - 1
    Cxx, Cyy, Cxy = X.T @ X / n, Y.T @ Y / n, X.T @ Y / n
    Cxx += ridge * np.trace(Cxx) / len(Cxx) * np.eye(len(Cxx))
    Cyy += ridge * np.trace(Cyy) / len(Cyy) * np.eye(len(Cyy))
    Lx, Ly = np.linalg.cholesky(Cxx), np.linalg.cholesky(Cyy)
    M = np.linalg.solve(Lx, Cxy) @ np.linalg.inv(Ly).T
    rho = np.clip(np.linalg.svd(M, compute_uv=False), 0.0, 1.0)
    return rho[: (k or len(rho))]


def flat_parameters(model: torch.nn.Module, skip_layernorm: bool = False) -> torch.Tensor:
    """The model's parameters as one float64 vector (P,), in ``model.parameters()`` order;
    ``skip_layernorm`` leaves out the gains and biases of its LayerNorm modules."""
    skip = {id(p) for m in model.modules() if isinstance(m, torch.nn.LayerNorm) for p in m.parameters()}
    return torch.cat([p.detach().flatten().double() for p in model.parameters()
                      if not (skip_layernorm and id(p) in skip)])


def weight_cosine_similarity(model_a: torch.nn.Module, model_b: torch.nn.Module, skip_layernorm: bool = False) -> float:
    """Cosine similarity of the two models' flattened parameter vectors (:func:`flat_parameters`)."""
    va, vb = flat_parameters(model_a, skip_layernorm), flat_parameters(model_b, skip_layernorm)
    if va.shape != vb.shape:
        raise ValueError("models must have the same parameter shapes")
    return float(va @ vb / (va.norm() * vb.norm()))


def pairwise(items: list, fn) -> np.ndarray:
    """Symmetric matrix ``M[i, j] = fn(items[i], items[j])`` (fn evaluated once per pair)."""
    n = len(items)
    M = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            M[i, j] = M[j, i] = fn(items[i], items[j])
    return M
