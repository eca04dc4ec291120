"""ACE against simpler subspace finders, and where ACE's own basis goes wrong.

Each finder returns a subspace of a given dimension k, to be compared with the others at the
same k:

- ACE (the paper's basis ``orth(L_c U_r)``, :func:`ace_utils.method.ace.ace`);
- PCA of the activations, reachability alone (:func:`pca_subspace`);
- the top output-sensitivity directions, observability alone (:func:`sensitivity_subspace`);
- the difference of class means (:func:`class_mean_direction`, :func:`class_mean_subspace`);
- a linear probe's weight directions (:func:`probe_subspace`);
- Haar-random subspaces (:func:`ace_utils.method.interventions.random_subspace`);

and two alternatives to the paper's basis built from the same balanced SVD
(:func:`observability_side_basis`, :func:`output_ranked_pca`; :func:`whitened_core` shows
that whitening first gives nothing new). :func:`compare_subspaces` scores any dict of
bases with a caller-given evaluation (:func:`average_random` folds the random controls into their
mean; :func:`sufficient_necessary` reads the smallest sufficient and necessary dimensions off
keep/remove scans); :func:`tilt_experiment` measures how far each
basis lands from a planted core (:func:`ace_utils.method.synthetic.planted_core_system`) as the
sample size and the loudness of an output-irrelevant decoy vary.

Conventions as in :mod:`ace_utils.method.ace`: activations ``H`` (N, D); Gramians (D, D);
every basis returned is (D, k) float64 with orthonormal columns, nested (the first r
columns of a k-column answer are the r-column answer) and sign-fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ace_utils.method.ace import fix_signs, observability_from_readout, reachability_gramian, symmetric_factor
from ace_utils.method.alignment import principal_angles
from ace_utils.method.synthetic import planted_core_system

__all__ = [
    "pca_subspace",
    "sensitivity_subspace",
    "class_mean_direction",
    "class_mean_subspace",
    "probe_subspace",
    "balanced_sides",
    "paper_basis",
    "observability_side_basis",
    "whitened_core",
    "output_ranked_pca",
    "max_angle",
    "split_half_angle",
    "baseline_bases",
    "compare_subspaces",
    "TiltStudy",
    "tilt_experiment",
]

_F64 = torch.float64


def _orth(A: Tensor) -> Tensor:
    """Orthonormal columns spanning A's columns, nested (reduced QR), sign-fixed."""
    Q, _ = torch.linalg.qr(A.to(_F64))
    return fix_signs(Q)


def _top_eigvecs(W: Tensor, k: int) -> Tensor:
    """(D, k) eigenvectors of the symmetric W for its k largest eigenvalues, descending."""
    W = W.to(_F64)
    _, V = torch.linalg.eigh((W + W.T) / 2)
    return fix_signs(V[:, -k:].flip(1))


def _check_k(k: int, D: int) -> None:
    if not 1 <= k <= D:
        raise ValueError(f"k must be in [1, {D}], got {k}")


def pca_subspace(H: Tensor, k: int) -> Tensor:
    """Top-k principal directions of the activations (reachability alone).

    ``H`` (N, D). Returns (D, k): eigenvectors of the covariance ``W_c`` for its k
    largest eigenvalues, in decreasing order.
    """
    _check_k(k, H.shape[1])
    return _top_eigvecs(reachability_gramian(H), k)


def sensitivity_subspace(Wo: Tensor, k: int) -> Tensor:
    """Top-k output-sensitivity directions (observability alone).

    ``Wo`` (D, D) the observability Gramian (``W_U^T W_U`` for a linear readout, mean
    ``g g^T`` of metric gradients otherwise). Returns (D, k): its top-k eigenvectors.
    """
    _check_k(k, Wo.shape[0])
    return _top_eigvecs(Wo, k)


def _labels(labels) -> np.ndarray:
    y = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    return y.reshape(-1)


def class_mean_direction(H: Tensor, labels) -> Tensor:
    """Unit difference of the two class means, ``mean(H | 1) - mean(H | 0)``.

    ``H`` (N, D); ``labels`` (N,) with values 0 and 1 (e.g. singular / plural).
    Returns (D, 1), pointing from class 0 to class 1.
    """
    y = _labels(labels).astype(int)
    if set(np.unique(y)) != {0, 1}:
        raise ValueError("class_mean_direction needs binary labels 0/1 (both present)")
    H = H.to(_F64)
    d = H[torch.as_tensor(y == 1)].mean(0) - H[torch.as_tensor(y == 0)].mean(0)
    return (d / d.norm()).reshape(-1, 1)  # not sign-fixed: it points from class 0 to class 1


def class_mean_subspace(H: Tensor, labels, k: int) -> Tensor:
    """Top-k directions spanned by the class means (between-class PCA).

    ``H`` (N, D), ``labels`` (N,) integer classes. The (C, D) class means, centred on
    their class-size-weighted average, are decomposed by SVD; returns the top-k right
    singular vectors (D, k), k <= C - 1. For two classes this is
    :func:`class_mean_direction` (up to sign).
    """
    y = _labels(labels)
    classes = np.unique(y)
    if not 1 <= k <= len(classes) - 1:
        raise ValueError(f"k must be in [1, {len(classes) - 1}] for {len(classes)} classes, got {k}")
    H = H.to(_F64)
    means = torch.stack([H[torch.as_tensor(y == c)].mean(0) for c in classes])
    w = torch.tensor([(y == c).mean() for c in classes], dtype=_F64, device=H.device)
    M = (means - (w[:, None] * means).sum(0)) * w.sqrt()[:, None]
    _, _, Vh = torch.linalg.svd(M, full_matrices=False)
    return fix_signs(Vh[:k].T)


def probe_subspace(H: Tensor, labels, k: int, ridge: float = 1e-4) -> Tensor:
    """The weight directions of a least-squares linear probe for ``labels``.

    A ridge regression of the centred one-hot labels (N, C) on the centred activations
    ``H`` (N, D): ``W = (H_c^T H_c + lam I)^{-1} H_c^T Y_c`` (D, C), ``lam = ridge tr(H_c^T
    H_c) / D``. Its columns span at most C - 1 directions; they are ordered by how much of
    the probe's fitted output they carry (right singular vectors ``v_j`` of ``H_c W``,
    direction ``W v_j``) and orthonormalised. For two classes this is the
    least-squares (Fisher LDA) direction. Returns (D, k), k <= min(C - 1, D).
    """
    y = _labels(labels)
    classes = np.unique(y)
    if not 1 <= k <= min(len(classes) - 1, H.shape[1]):
        raise ValueError(f"k must be in [1, {min(len(classes) - 1, H.shape[1])}], got {k}")
    Hc = H.to(_F64) - H.to(_F64).mean(0)
    Y = torch.as_tensor((y[:, None] == classes[None, :]).astype(np.float64), device=H.device)
    Y = Y - Y.mean(0)
    G = Hc.T @ Hc
    lam = ridge * torch.trace(G) / G.shape[0]
    W = torch.linalg.solve(G + lam * torch.eye(G.shape[0], dtype=_F64, device=G.device), Hc.T @ Y)  # (D, C)
    _, _, Vh = torch.linalg.svd(Hc @ W, full_matrices=False)
    return _orth(W @ Vh[:k].T)


def balanced_sides(H: Tensor, Wo: Tensor, rel_jitter: float = 1e-8) -> tuple[Tensor, Tensor, Tensor]:
    """The two sides of ACE's balanced SVD: ``(L_c U, L_o V, sigma)``.

    ``L_c^T L_o = U diag(sigma) V^T`` with the factors of
    :func:`ace_utils.method.ace.symmetric_factor` (the same as :func:`ace_utils.method.ace.ace`).
    ``L_c U`` (D, D) are the reachable-side images (the paper's basis is their
    orthonormalisation), ``L_o V`` (D, D) the observable-side ones; the two are
    biorthogonal, ``(L_o V)^T (L_c U) = diag(sigma)``.
    """
    Lc = symmetric_factor(reachability_gramian(H), rel_jitter)
    Lo = symmetric_factor(Wo, rel_jitter)
    U, sigma, Vh = torch.linalg.svd(Lc.T @ Lo)
    return Lc @ U, Lo @ Vh.T, sigma


def paper_basis(H: Tensor, Wo: Tensor, r: int, rel_jitter: float = 1e-8) -> Tensor:
    """The paper's core basis ``orth(L_c U_r)`` (D, r): what :func:`ace_utils.method.ace.ace` returns."""
    _check_k(r, H.shape[1])
    return _orth(balanced_sides(H, Wo, rel_jitter)[0][:, :r])


def observability_side_basis(H: Tensor, Wo: Tensor, r: int, rel_jitter: float = 1e-8) -> Tensor:
    """The observable side of the same SVD, ``orth(L_o V_r)`` (D, r).

    Since ``L_o V_r = W_o L_c U_r diag(sigma_r)^{-1}``, this is the image of the paper's
    core under the observability Gramian: it lies in the span of what the output reads,
    so an output-irrelevant direction, however loud, never enters it; but a direction
    the output reads strongly and the inputs never drive does.
    """
    _check_k(r, H.shape[1])
    return _orth(balanced_sides(H, Wo, rel_jitter)[1][:, :r])


def whitened_core(H: Tensor, Wo: Tensor, r: int, map_back: str = "pattern", rel_jitter: float = 1e-8) -> Tensor:
    """ACE after whitening the activations, mapped back to activation space.

    With ``S = W_c^{1/2}`` (symmetric), the whitened activations ``x = S^{-1}(h - mu)``
    have covariance I and observability Gramian ``S W_o S``; their ACE core is its top-r
    eigenvectors ``E`` (D, r). Mapped back as activation patterns (``map_back="pattern"``,
    ``orth(S E)``) this is exactly the paper's basis; as read-out filters
    (``map_back="filter"``, ``orth(S^{-1} E)``) it is exactly
    :func:`observability_side_basis`. Whitening first is therefore not a third basis
    (a test checks both identities).
    """
    if map_back not in ("pattern", "filter"):
        raise ValueError(f"map_back must be 'pattern' or 'filter', got {map_back!r}")
    Wc = reachability_gramian(H)
    D = Wc.shape[0]
    eps = rel_jitter * torch.trace(Wc).clamp_min(0) / D
    lam, U = torch.linalg.eigh((Wc + Wc.T) / 2)
    root = torch.sqrt(lam.clamp_min(0) + eps)
    S, S_inv = (U * root) @ U.T, (U / root) @ U.T
    Lo = symmetric_factor(Wo, rel_jitter)
    E = _top_eigvecs(S @ Lo @ Lo.T @ S, r)
    return _orth((S if map_back == "pattern" else S_inv) @ E)


def output_ranked_pca(H: Tensor, Wo: Tensor, k: int) -> Tensor:
    """Principal directions ranked by the output energy they carry, top k.

    The eigenvectors ``u_i`` of ``W_c`` (eigenvalue ``lambda_i``) scored by
    ``lambda_i u_i^T W_o u_i`` (the output variance each one carries on its own), the k
    best kept. Balanced truncation with the cross terms of ``W_o`` between principal
    directions ignored: a loud direction that the output reads only through a chance
    correlation scores ~ (that correlation)^2, instead of tilting the basis. It fails
    where a core direction shares its variance with an unread one (a degenerate
    eigenspace mixes them).
    """
    _check_k(k, H.shape[1])
    Wc = reachability_gramian(H)
    lam, U = torch.linalg.eigh((Wc + Wc.T) / 2)
    score = lam.clamp_min(0) * torch.einsum("di,de,ei->i", U, Wo.to(_F64), U)
    order = torch.argsort(score, descending=True)[:k]
    return fix_signs(U[:, order])


def max_angle(Q1: Tensor, Q2: Tensor) -> float:
    """Largest principal angle between span(Q1) and span(Q2), in degrees."""
    return float(principal_angles(Q1, Q2).max())


def split_half_angle(
    H: Tensor,
    r: int,
    *,
    Wo: Tensor | None = None,
    G: Tensor | None = None,
    basis: Callable[[Tensor, Tensor, int], Tensor] = paper_basis,
    seed: int = 0,
) -> float:
    """Largest principal angle (degrees) between the r-dim bases of two random halves of the rows.

    A model-free estimate of the basis's sampling error on real activations (the
    finite-sample tilt of the method page is one part of it). ``H`` (N, D); the
    observability Gramian is either a fixed ``Wo`` (a linear readout) or built per half
    from per-sample gradients ``G`` (N, D) (:func:`ace_utils.method.ace.observability_from_gradients`);
    ``basis(H, W_o, r)`` is the finder (default the paper's basis). The halves come from
    a permutation seeded by ``seed``.
    """
    from ace_utils.method.ace import observability_from_gradients

    if (Wo is None) == (G is None):
        raise ValueError("give exactly one of Wo (fixed) or G (per-sample gradients)")
    perm = torch.randperm(H.shape[0], generator=torch.Generator().manual_seed(seed))
    halves = perm[: H.shape[0] // 2], perm[H.shape[0] // 2 :]
    Qs = [basis(H[i], Wo if G is None else observability_from_gradients(G[i]), r) for i in halves]
    return max_angle(*Qs)


def baseline_bases(
    H: Tensor,
    Wo: Tensor,
    k: int,
    labels=None,
    *,
    ace_basis: Tensor | None = None,
    ridges: Sequence[float] = (1e-4, 100.0),
    n_random: int = 0,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Every finder above at dimension k, by name, in a fixed order.

    ``H`` (N, D) activations, ``Wo`` (D, D) observability Gramian, ``labels`` (N,) the
    task's classes (or None to skip the label-based finders). Returns name -> (D, k):
    "ACE" (``ace_basis[:, :k]`` if given, else :func:`paper_basis`), "ACE, observable
    side", "PCA ranked by output energy", "PCA", "sensitivity", "class means" and
    "probe, ridge <r>" for each ridge (at most C - 1 columns for C classes), and
    "random 1..n_random" (Haar-random, generators seeded ``1000 seed + i``, drawn on the CPU).
    Every basis is on ``H``'s device.
    """
    from ace_utils.method.interventions import random_subspace

    D = H.shape[1]
    out = {
        "ACE": ace_basis[:, :k].to(_F64) if ace_basis is not None else paper_basis(H, Wo, k),
        "ACE, observable side": observability_side_basis(H, Wo, k),
        "PCA ranked by output energy": output_ranked_pca(H, Wo, k),
        "PCA": pca_subspace(H, k),
        "sensitivity": sensitivity_subspace(Wo, k),
    }
    if labels is not None:
        n_classes = len(np.unique(_labels(labels)))
        kc = min(k, n_classes - 1)
        out["class means"] = class_mean_direction(H, labels) if n_classes == 2 else class_mean_subspace(H, labels, kc)
        for r in ridges:
            out[f"probe, ridge {r:g}"] = probe_subspace(H, labels, kc, ridge=r)
    for i in range(n_random):
        out[f"random {i + 1}"] = random_subspace(D, k, torch.Generator().manual_seed(1000 * seed + i)).to(H.device)
    return out


def compare_subspaces(
    bases: Mapping[str, Tensor],
    evaluate: Callable[[Tensor, str], float],
    modes: Sequence[str] = ("keep", "remove"),
) -> dict[str, dict[str, float]]:
    """Score every named basis with ``evaluate(Q, mode)`` for each mode.

    ``bases``: name -> (D, k) orthonormal basis; ``evaluate``: the task's metric (accuracy,
    AUC) with ``mode`` ("keep", "remove", "flip") applied to span(Q), supplied by the
    caller (e.g. through :func:`ace_utils.method.interventions.subspace_hook`). Returns
    name -> mode -> value, in the order given.
    """
    return {name: {mode: float(evaluate(Q, mode)) for mode in modes} for name, Q in bases.items()}


def average_random(scores: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """A :func:`compare_subspaces` result with its ``"random i"`` rows replaced by their mean.

    ``scores``: name -> mode -> value. The other rows keep their order; one row
    ``"random (mean)"`` (the per-mode mean of the random rows) is appended at the end.
    ``ValueError`` when there is no random row.
    """
    rnd = [v for n, v in scores.items() if n.startswith("random ")]
    if not rnd:
        raise ValueError("no 'random i' row to average")
    out = {n: dict(v) for n, v in scores.items() if not n.startswith("random ")}
    out["random (mean)"] = {m: float(np.mean([r[m] for r in rnd])) for m in rnd[0]}
    return out


def first_dimension(mask: np.ndarray) -> int | None:
    """The smallest r >= 1 with ``mask[r]`` true, or None; ``mask``: (R + 1,) booleans over
    r = 0..R directions (entry 0, no direction, is ignored)."""
    idx = np.flatnonzero(np.asarray(mask)[1:])
    return int(idx[0]) + 1 if idx.size else None


def sufficient_necessary(keep: np.ndarray, remove: np.ndarray, base: float, p: int,
                         tol: float = 1e-3) -> tuple[int | None, int | None]:
    """Smallest sufficient and necessary dimensions ``(r_suf, r_nec)`` from keep/remove scans.

    ``keep``, ``remove``: (R + 1,) accuracies with the first r directions kept / removed,
    r = 0..R (NaN in ``keep`` counts as failing); ``base``: the model's accuracy; ``p``:
    the number of classes. ``r_suf``: first r with keep >= base - ``tol``; ``r_nec``: first r
    with remove <= 2/p; None where no r qualifies.
    """
    suf = first_dimension(np.nan_to_num(keep, nan=-1) >= base - tol)
    return suf, first_dimension(np.asarray(remove) <= 2 / p)


def dimension_or(v: int | None, never: int = 10**6) -> int:
    """``v``, or ``never`` (larger than any dimension) when ``v`` is None: orders "never
    sufficient" after every dimension."""
    return never if v is None else v


# --------------------------------------------------------------------------- the tilt study


@dataclass(frozen=True)
class TiltStudy:
    """Angle errors of several bases against a planted core over a grid.

    ``angle[method]`` and ``keep_error[method]``: arrays (len(ns), len(decoy_ratios),
    len(seeds)); ``angle`` is the largest principal angle (degrees) to the planted core,
    ``keep_error`` the relative output error of keeping only the basis,
    ``||C P h - C h||^2 / ||C h||^2`` summed over the samples.
    """

    ns: tuple[int, ...]
    decoy_ratios: tuple[float, ...]
    seeds: tuple[int, ...]
    silent_ratio: float
    angle: dict[str, np.ndarray]
    keep_error: dict[str, np.ndarray]

    def median(self, method: str, what: str = "angle") -> np.ndarray:
        """(len(ns), len(decoy_ratios)) median over seeds."""
        return np.median(getattr(self, what)[method], axis=-1)


TILT_METHODS: dict[str, Callable[[Tensor, Tensor, int], Tensor]] = {
    "ACE, paper basis orth(L_c U_r)": paper_basis,
    "ACE, observable side orth(L_o V_r)": observability_side_basis,
    "PCA ranked by output energy": output_ranked_pca,
    "PCA": lambda H, Wo, k: pca_subspace(H, k),
}


def tilt_experiment(
    ns: Sequence[int] = (1000, 4000, 16000, 64000),
    decoy_ratios: Sequence[float] = (1.0, 3.0, 10.0, 30.0),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    *,
    silent_ratio: float = 10.0,
    methods: Mapping[str, Callable[[Tensor, Tensor, int], Tensor]] | None = None,
    d: int = 32,
    k: int = 3,
) -> TiltStudy:
    """Recovered-core error against sample size and decoy loudness on the planted system.

    For every ``n`` in ``ns``, decoy loudness in ``decoy_ratios`` (the decoy's std over
    the core's largest; the decoy is driven but never read) and seed, draws
    :func:`ace_utils.method.synthetic.planted_core_system` with i.i.d. latents
    (``decorrelated=False``: finite-sample correlations present) and ``silent_ratio`` (how
    strongly the output reads the undriven silent directions), finds a k-dim basis with
    each of ``methods`` (name -> ``f(H, W_o, k)``; default ``TILT_METHODS``) and
    records its largest principal angle to the planted core and its keep error.
    """
    methods = dict(methods or TILT_METHODS)
    shape = (len(ns), len(decoy_ratios), len(seeds))
    angle = {m: np.zeros(shape) for m in methods}
    keep_err = {m: np.zeros(shape) for m in methods}
    for i, n in enumerate(ns):
        for j, ratio in enumerate(decoy_ratios):
            for s, seed in enumerate(seeds):
                S = planted_core_system(n=n, d=d, k=k, decoy_ratio=ratio, silent_ratio=silent_ratio,
                                        decorrelated=False, seed=seed)
                Wo = observability_from_readout(S.C)
                Y = S.outputs()
                for m, f in methods.items():
                    Q = f(S.H, Wo, k)
                    angle[m][i, j, s] = max_angle(Q, S.core)
                    Yk = (S.H @ Q) @ (Q.T @ S.C.T)
                    keep_err[m][i, j, s] = float(((Yk - Y) ** 2).sum() / (Y**2).sum())
    return TiltStudy(tuple(ns), tuple(decoy_ratios), tuple(seeds), float(silent_ratio), angle, keep_err)
