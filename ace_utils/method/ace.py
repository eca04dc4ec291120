"""Algorithmic Core Extraction (ACE): Gramians, balanced truncation, rank rules.

The method page (``book/method.md``) derives every formula here.

Conventions: activations ``H`` have shape ``(N, D)`` (N samples of a D-dim
layer); Jacobians of a tail ``f: R^D -> R^K`` have shape ``(N, K, D)``; all
Gramians are ``(D, D)`` float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import Tensor

__all__ = [
    "ACEResult",
    "RankScan",
    "reachability_gramian",
    "observability_from_readout",
    "observability_from_gradients",
    "observability_gramian",
    "symmetric_factor",
    "fix_signs",
    "balanced_truncation",
    "energy_rank",
    "ace",
    "necessity_scan",
    "sufficiency_scan",
]

_F64 = torch.float64


def reachability_gramian(H: Tensor) -> Tensor:
    """Centred activation covariance ``W_c = H_c^T H_c / (N - 1)``.

    ``H``: (N, D) activations. Returns (D, D) float64.
    """
    if H.ndim != 2 or H.shape[0] < 2:
        raise ValueError(f"H must be (N, D) with N >= 2, got shape {tuple(H.shape)}")
    Hc = H.to(_F64) - H.to(_F64).mean(0, keepdim=True)
    return Hc.T @ Hc / (H.shape[0] - 1)


def observability_from_readout(W: Tensor) -> Tensor:
    """Exact observability Gramian ``W^T W`` of a linear (affine) readout.

    ``W``: (K, D) readout matrix, logits = ``h @ W.T + b``; the Jacobian is ``W``
    at every ``h``, so no sampling is needed.
    """
    W = W.detach().to(_F64)
    return W.T @ W


def observability_from_gradients(G: Tensor) -> Tensor:
    """``W_o = G^T G / N`` from per-sample gradients of a scalar tail.

    ``G``: (N, D), row i = d m(h_i) / d h.
    """
    G = G.detach().to(_F64)
    return G.T @ G / G.shape[0]


def observability_gramian(
    tail: Callable[[Tensor], Tensor],
    H: Tensor,
    *,
    n_samples: int | None = None,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Mean ``J(h)^T J(h)`` over (a random subsample of) the rows of ``H``.
    Derived on the method page; the book page "ACE on your own model" says when to use
    it rather than a closed form.

    ``tail`` maps one activation ``(D,)`` to outputs ``(K,)`` (or a scalar) and
    must be differentiable; Jacobians are batched with ``torch.func.vmap`` over
    ``torch.func.jacrev`` (no Python loop over samples). Returns (D, D) float64.
    """
    from torch.func import jacrev, vmap

    N, D = H.shape
    if n_samples is not None and n_samples < N:
        idx = torch.randperm(N, generator=generator)[:n_samples]
        H = H[idx]
    jac = vmap(jacrev(tail))
    Wo = torch.zeros(D, D, dtype=_F64, device=H.device)
    for start in range(0, H.shape[0], batch_size):
        J = jac(H[start : start + batch_size].detach())
        J = J.reshape(J.shape[0], -1, D).to(_F64)  # (B, K, D)
        Wo += torch.einsum("bkd,bke->de", J, J)
    return Wo / H.shape[0]


def symmetric_factor(W: Tensor, rel_jitter: float = 1e-8) -> Tensor:
    """``L`` with ``L L^T = W + eps I`` from ``eigh``; ``eps = rel_jitter tr(W)/D``.
    Step 1 of balanced truncation (method page).

    Negative eigenvalues (round-off) are clipped to 0 before the jitter.
    """
    W = W.to(_F64)
    W = (W + W.T) / 2
    D = W.shape[0]
    eps = rel_jitter * torch.trace(W).clamp_min(0) / D
    lam, U = torch.linalg.eigh(W)
    return U * torch.sqrt(lam.clamp_min(0) + eps)


def fix_signs(Q: Tensor) -> Tensor:
    """Make each column's largest-magnitude entry positive (deterministic basis)."""
    idx = Q.abs().argmax(0)
    signs = torch.sign(Q[idx, torch.arange(Q.shape[1], device=Q.device)])
    signs[signs == 0] = 1
    return Q * signs


def balanced_truncation(Wc: Tensor, Wo: Tensor, rel_jitter: float = 1e-8) -> tuple[Tensor, Tensor]:
    """Square-root balanced truncation of two empirical Gramians (derived on the method page).

    Returns ``(sigma, Q)``: sigma (D,) descending Hankel-like singular values of
    ``L_c^T L_o``; Q (D, D) orthonormal columns, ``Q[:, :r] = orth(L_c U[:, :r])``
    for every r (one QR of ``L_c U`` gives all nested cores at once).
    """
    Lc = symmetric_factor(Wc, rel_jitter)
    Lo = symmetric_factor(Wo, rel_jitter)
    U, sigma, _ = torch.linalg.svd(Lc.T @ Lo)
    Q, _ = torch.linalg.qr(Lc @ U)
    return sigma, fix_signs(Q)


def energy_rank(sigma: Tensor, threshold: float) -> int:
    """Smallest r with ``sum_{i<=r} sigma_i^2 / sum_i sigma_i^2 >= threshold``."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    e = sigma.to(_F64) ** 2
    cum = torch.cumsum(e, 0) / e.sum()
    return int(torch.searchsorted(cum, torch.tensor(threshold - 1e-12, dtype=_F64, device=cum.device)).item()) + 1


@dataclass(frozen=True)
class ACEResult:
    """What ACE found at one layer (returned by :func:`ace`).

    ``basis``: (D, D) float64 orthonormal columns in balanced order (the core of
    any rank r is ``basis[:, :r]``); ``sigma``: (D,) singular values;
    ``rank``: the chosen core dimension; ``mean``: (D,) training mean of H.
    """

    basis: Tensor
    sigma: Tensor
    rank: int
    mean: Tensor
    threshold: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def energies(self) -> Tensor:
        """``sigma^2`` (the paper's "energies")."""
        return self.sigma**2

    @property
    def energy_fraction(self) -> Tensor:
        """Cumulative energy fraction, (D,)."""
        e = self.energies
        return torch.cumsum(e, 0) / e.sum()

    def core(self, r: int | None = None) -> Tensor:
        """(D, r) orthonormal core basis (default r = ``rank``)."""
        return self.basis[:, : self.rank if r is None else r]

    def projector(self, r: int | None = None) -> Tensor:
        """(D, D) orthogonal projector onto the rank-r core."""
        Q = self.core(r)
        return Q @ Q.T

    def coords(self, H: Tensor, r: int | None = None, centred: bool = True) -> Tensor:
        """Core coordinates ``(H - mean) Q`` (or ``H Q``), shape (N, r), float64."""
        H = H.to(_F64)
        if centred:
            H = H - self.mean
        return H @ self.core(r)


def ace(
    H: Tensor,
    Wo: Tensor,
    *,
    threshold: float = 0.999,
    rank: int | None = None,
    rel_jitter: float = 1e-8,
) -> ACEResult:
    """Run ACE on activations ``H`` (N, D) and an observability Gramian ``Wo`` (D, D).

    The rank is ``rank`` if given, else the energy rule at ``threshold``. Computed on ``H``'s
    device (``Wo`` is moved there); the result's tensors live there too.
    """
    if Wo.shape != (H.shape[1], H.shape[1]):
        raise ValueError(f"Wo must be ({H.shape[1]}, {H.shape[1]}), got {tuple(Wo.shape)}")
    Wo = Wo.to(H.device)
    Wc = reachability_gramian(H)
    sigma, Q = balanced_truncation(Wc, Wo, rel_jitter)
    r = rank if rank is not None else energy_rank(sigma, threshold)
    return ACEResult(
        basis=Q,
        sigma=sigma,
        rank=r,
        mean=H.to(_F64).mean(0),
        threshold=None if rank is not None else threshold,
    )


@dataclass(frozen=True)
class RankScan:
    """Result of a rank scan: the chosen rank and the curve it was read from.
    Returned by the rank scans."""

    rank: int | None
    ranks: list[int]
    values: list[float]


def _first_rank(evaluate: Callable[[int], float], done: Callable[[float], bool], ranks: Sequence[int]) -> RankScan:
    """Evaluate ranks in order until ``done(value)``; the curve up to there and the rank."""
    tried, vals = [], []
    for r in ranks:
        v = float(evaluate(r))
        tried.append(r)
        vals.append(v)
        if done(v):
            return RankScan(r, tried, vals)
    return RankScan(None, tried, vals)


def necessity_scan(
    evaluate_removed: Callable[[int], float],
    chance_level: float,
    ranks: Sequence[int],
) -> RankScan:
    """Smallest r in ``ranks`` whose removal drops the metric to ``<= chance_level``.

    ``evaluate_removed(r)`` returns the metric with the top-r core directions
    removed. Scans in order and stops at the first success (``rank=None`` if
    none). We scan from r = 1; the reference code starts at the energy rank.
    """
    return _first_rank(evaluate_removed, lambda v: v <= chance_level, ranks)


def sufficiency_scan(
    evaluate_kept: Callable[[int], float],
    target: float,
    ranks: Sequence[int],
) -> RankScan:
    """Smallest r in ``ranks`` whose keeping alone gives a metric ``>= target``.

    ``evaluate_kept(r)`` returns the metric with only the top-r core kept.
    """
    return _first_rank(evaluate_kept, lambda v: v >= target, ranks)
