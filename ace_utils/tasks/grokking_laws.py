"""The paper's two laws of grokking time and their fits, on measured delays.

``tau = C omega^beta`` (weight decay ``omega``; the theory's ``beta = -1``), fitted on log-log
axes with a t-interval for ``beta`` (:func:`fit_power_law`), and ``tau(p) = -Omega log(1 -
p_crit / p)`` (modulus ``p``; :func:`log_law`, :func:`fit_log_law`), each also fitted with some
grid values held out and predicted (:func:`heldout_power_law`, :func:`heldout_log_law`). Delays
``tau`` in optimizer steps, as :mod:`ace_utils.tasks.grokking_time` measures them (chapter
``04_grokking_time``, through that module, which re-exports these names).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import optimize, stats

__all__ = ["fit_power_law", "log_law", "fit_log_law", "heldout_power_law", "heldout_log_law"]


def fit_power_law(x: np.ndarray, tau: np.ndarray, level: float = 0.95) -> dict:
    """Least-squares fit of ``log tau = log C + beta log x`` over all runs (each run one point).

    Returns ``{"beta", "beta_ci": (lo, hi)`` (t-interval at ``level``), ``"C"``, ``"r2"``,
    ``"n"}``.
    """
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(tau, float))
    res = stats.linregress(lx, ly)
    n = lx.size
    t = stats.t.ppf(0.5 + level / 2, n - 2)
    return {"beta": float(res.slope), "beta_ci": (float(res.slope - t * res.stderr), float(res.slope + t * res.stderr)),
            "C": float(math.exp(res.intercept)), "r2": float(res.rvalue ** 2), "n": int(n)}


def log_law(p: np.ndarray, Omega: float, p_crit: float) -> np.ndarray:
    """``tau(p) = -Omega log(1 - p_crit / p)``, the form the reference code fits."""
    return -Omega * np.log1p(-p_crit / np.asarray(p, float))


def fit_log_law(p: np.ndarray, tau: np.ndarray) -> dict:
    """Fit :func:`log_law` to (p, tau) in log space (``0 < p_crit < min p``).

    Returns ``{"Omega", "p_crit", "r2"`` (of log tau), ``"r2_linear"`` (of tau), ``"cov"}``.
    """
    p = np.asarray(p, float)
    tau = np.asarray(tau, float)
    pmin = p.min()

    def resid(theta: np.ndarray) -> np.ndarray:
        log_omega, frac = theta
        pc = pmin / (1 + math.exp(-frac))  # in (0, pmin)
        return np.log(log_law(p, math.exp(log_omega), pc)) - np.log(tau)

    best = None
    for frac0 in (-2.0, 0.0, 2.0):
        pc0 = pmin / (1 + math.exp(-frac0))
        om0 = float(np.median(tau / -np.log1p(-pc0 / p)))
        sol = optimize.least_squares(resid, x0=[math.log(om0), frac0])
        if best is None or sol.cost < best.cost:
            best = sol
    Omega = math.exp(best.x[0])
    p_crit = pmin / (1 + math.exp(-best.x[1]))
    pred = log_law(p, Omega, p_crit)
    ly = np.log(tau)
    r2 = 1 - np.sum((np.log(pred) - ly) ** 2) / np.sum((ly - ly.mean()) ** 2)
    r2_lin = 1 - np.sum((pred - tau) ** 2) / np.sum((tau - tau.mean()) ** 2)
    return {"Omega": Omega, "p_crit": p_crit, "r2": float(r2), "r2_linear": float(r2_lin)}


def heldout_power_law(omega: np.ndarray, tau: np.ndarray, held: Sequence[float]) -> dict:
    """Fit :func:`fit_power_law` on the runs whose ``omega`` is not in ``held``; predict the
    mean tau at each held value (geometric mean of the prediction = ``C omega^beta``) and
    compare with the measured mean. Returns ``{"fit", "held", "predicted", "measured",
    "rel_error"}`` (arrays over ``held``)."""
    omega, tau = np.asarray(omega, float), np.asarray(tau, float)
    held_arr = np.asarray(sorted(held), float)
    train = ~np.isin(omega, held_arr)
    fit = fit_power_law(omega[train], tau[train])
    pred = fit["C"] * held_arr ** fit["beta"]
    meas = np.array([tau[omega == h].mean() for h in held_arr])
    return {"fit": fit, "held": held_arr, "predicted": pred, "measured": meas, "rel_error": (pred - meas) / meas}


def heldout_log_law(p: np.ndarray, tau: np.ndarray, held: Sequence[int]) -> dict:
    """Fit :func:`fit_log_law` on the runs whose modulus is not in ``held``; predict the
    mean tau at each held modulus. Same keys as :func:`heldout_power_law`."""
    p, tau = np.asarray(p, float), np.asarray(tau, float)
    held_arr = np.asarray(sorted(held), float)
    train = ~np.isin(p, held_arr)
    fit = fit_log_law(p[train], tau[train])
    pred = log_law(held_arr, fit["Omega"], fit["p_crit"]) if np.all(held_arr > fit["p_crit"]) else \
        np.where(held_arr > fit["p_crit"], log_law(np.maximum(held_arr, fit["p_crit"] + 1e-9), fit["Omega"], fit["p_crit"]), np.inf)
    meas = np.array([tau[p == h].mean() for h in held_arr])
    return {"fit": fit, "held": held_arr, "predicted": pred, "measured": meas, "rel_error": (pred - meas) / meas}
