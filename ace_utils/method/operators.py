"""Linear operators fitted in core coordinates, and their spectra.

Two uses: dynamics ``z_{t+1} ~ A z_t`` of a Markov chain's core coordinates, and the
"add 1" shift between class prototypes of modular addition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "OperatorFit",
    "fit_operator",
    "r2_score",
    "markov_oracle_r2",
    "stationary_distribution",
    "match_eigenvalues",
    "rotational_mode_count",
]


@dataclass(frozen=True)
class OperatorFit:
    """A fitted ``y ~ A x`` (column convention) with its spectrum and in-sample R^2.

    ``A``: (r, r); ``eigenvalues``: (r,) complex sorted by decreasing modulus;
    ``r2``: mean over output coordinates of the coefficient of determination.
    """

    A: np.ndarray
    eigenvalues: np.ndarray
    r2: float
    x_mean: np.ndarray
    y_mean: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n, r) predictions for rows of X (centred as in the fit)."""
        return (np.asarray(X) - self.x_mean) @ self.A.T + self.y_mean


def r2_score(Y: np.ndarray, Y_hat: np.ndarray) -> float:
    """Mean over columns of ``1 - SS_res / SS_tot`` (Y, Y_hat: (n, r))."""
    Y, Y_hat = np.asarray(Y, float), np.asarray(Y_hat, float)
    ss_res = ((Y - Y_hat) ** 2).sum(0)
    ss_tot = ((Y - Y.mean(0)) ** 2).sum(0)
    return float(np.mean(1.0 - ss_res / ss_tot))


def fit_operator(X: np.ndarray, Y: np.ndarray, *, centre: bool = True, ridge: float = 0.0) -> OperatorFit:
    """Least-squares (optionally ridge) fit of ``y_i ~ A x_i`` over rows of X, Y (n, r).

    With ``centre=True`` both sides are centred separately (DMD-style): the
    constant (Perron) mode of a Markov chain then carries no variance and drops
    out, so the spectrum holds only the non-trivial eigenvalues.
    """
    X, Y = np.asarray(X, float), np.asarray(Y, float)
    xm = X.mean(0) if centre else np.zeros(X.shape[1])
    ym = Y.mean(0) if centre else np.zeros(Y.shape[1])
    Xc, Yc = X - xm, Y - ym
    if ridge > 0:
        G = Xc.T @ Xc + ridge * np.eye(X.shape[1])
        B = np.linalg.solve(G, Xc.T @ Yc)
    else:
        B, *_ = np.linalg.lstsq(Xc, Yc, rcond=None)
    A = B.T  # y = A x
    eig = np.linalg.eigvals(A)
    eig = eig[np.argsort(-np.abs(eig), kind="stable")]
    return OperatorFit(A=A, eigenvalues=eig, r2=r2_score(Yc, Xc @ B), x_mean=xm, y_mean=ym)


def stationary_distribution(T: np.ndarray) -> np.ndarray:
    """Stationary distribution pi (pi T = pi) of a row-stochastic matrix T."""
    w, V = np.linalg.eig(np.asarray(T, float).T)
    v = np.real(V[:, np.argmin(np.abs(w - 1))])
    return v / v.sum()


def markov_oracle_r2(T: np.ndarray, pi: np.ndarray | None = None) -> float:
    """Largest mean R^2 of the next-state one-hot explained by its conditional mean.

    ``1 - (1/n) sum_j [sum_i pi_i T_ij (1 - T_ij)] / [pi_j (1 - pi_j)]`` for a
    chain in stationarity. A reference, not a bound, for finite fits.
    """
    T = np.asarray(T, float)
    pi = stationary_distribution(T) if pi is None else np.asarray(pi, float)
    resid = (pi[:, None] * T * (1 - T)).sum(0)
    total = pi * (1 - pi)
    return float(1 - np.mean(resid / total))


def match_eigenvalues(estimated: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of estimated to reference eigenvalues.

    Minimises the total ``|lambda_est - lambda_ref|`` (Hungarian algorithm). Returns
    ``(matched_estimates, errors)`` aligned with ``reference``; needs
    ``len(estimated) >= len(reference)``.
    """
    est, ref = np.asarray(estimated, complex), np.asarray(reference, complex)
    if len(est) < len(ref):
        raise ValueError(f"need at least {len(ref)} estimated eigenvalues, got {len(est)}")
    cost = np.abs(ref[:, None] - est[None, :])
    rows, cols = linear_sum_assignment(cost)
    matched = np.empty(len(ref), complex)
    matched[rows] = est[cols]
    return matched, np.abs(matched - ref)


def rotational_mode_count(eigenvalues: np.ndarray, p: int, eps: float | None = None) -> int:
    """Distinct folded frequencies among eigenvalues near the unit circle.

    An eigenvalue counts if ``| |lambda| - 1 | <= eps`` (default ``sin(pi/p)``);
    its angle maps to bin ``k = round(p arg(lambda) / 2 pi) mod p``, folded to
    ``min(k, p - k)``. At most ``floor(p/2) + 1``.
    """
    lam = np.asarray(eigenvalues, complex)
    eps = math.sin(math.pi / p) if eps is None else eps
    near = lam[np.abs(np.abs(lam) - 1) <= eps]
    k = np.round(p * np.angle(near) / (2 * math.pi)).astype(int) % p
    return int(len(set(np.minimum(k, p - k).tolist())))
