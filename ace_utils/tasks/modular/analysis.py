"""What one checkpoint of a modular-addition model holds: ACE at the readout's input, the
keep/remove scans and the core dimensions read from them, the "add 1" shift operator on class
prototypes and its rotational modes, the redundancy of a final model, and the grokking epoch."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ace_utils.method.ace import ace, observability_from_readout
from ace_utils.method.operators import fit_operator, rotational_mode_count
from ace_utils.models import readout_bias, readout_matrix
from ace_utils.models.device import model_device
from ace_utils.tasks.modular.data import ModData

__all__ = [
    "ACE_HOOK",
    "ENERGY_THRESHOLD",
    "analyse_checkpoint",
    "class_prototypes",
    "core_dimensions",
    "fourier_power_share",
    "grok_epoch",
    "in_sample_modes",
    "in_sample_r2",
    "last_position_activations",
    "readout_scorer",
    "redundancy_profile",
    "scan_keep_remove",
    "shift_operator",
]

ACE_HOOK = "unembed.hook_in"  # the readout's input (= ln_final.hook_out on the native models)
ENERGY_THRESHOLD = 0.99  # the reference code (joshseth/cores) uses 0.99 for mod-add


def last_position_activations(model, x: Tensor) -> Tensor:
    """(N, d_model) float32 activations at :data:`ACE_HOOK`, position -1, through the model's hooks."""
    from ace_utils.method.activations import collect_activations

    return collect_activations(model, x, [ACE_HOOK], positions=-1)[ACE_HOOK].reshape(x.shape[0], -1).float()


def scan_keep_remove(
    H: Tensor, Q: Tensor, W: Tensor, y: Tensor, b: Tensor | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Test accuracy with only the top-r directions kept / with them removed, for r = 0..D.

    ``H`` (N, D) activations the readout reads (``unembed.hook_in``); ``Q`` (D, D) or
    (D, k) orthonormal columns in ACE order; ``W`` (K, D) the readout and ``b`` (K,) its
    bias (logits = h W^T + b; ``None``: no bias); ``y`` (N,) targets. Uncentred
    projections, as in the reference code (joshseth/cores): keep ``h <- Q_r Q_r^T h``,
    remove ``h <- h - Q_r Q_r^T h``; the bias is kept in both, as the reference code's
    hooks keep it. Because the readout is affine, the logits of every r come from one
    cumulative sum over directions, equal (to float64 rounding) to running the model with
    :func:`ace_utils.method.interventions.subspace_hook` at this site (a test checks this).
    Returns ``(keep_acc (k+1,), remove_acc (k+1,), base_acc)``; ``keep_acc[0]`` is NaN
    (nothing kept). Computed on ``H``'s device; the accuracies come to the host once, at the end.
    """
    H = H.double()
    Q, W, y = Q.to(H), W.to(H), y.to(H.device)
    bias = torch.zeros(W.shape[0], dtype=torch.float64, device=H.device) if b is None else b.to(H)
    Z = H @ Q  # (N, k) uncentred coordinates
    C = Q.T @ W.T  # (k, K): logit contribution of each direction per unit coordinate
    full = H @ W.T  # without the bias: keep + remove = full at every r
    keep = torch.zeros_like(full)
    keep_acc, remove_acc = [], [((full + bias).argmax(1) == y).double().mean()]
    for i in range(Q.shape[1]):
        keep = keep + Z[:, i : i + 1] * C[i]
        keep_acc.append(((keep + bias).argmax(1) == y).double().mean())
        remove_acc.append(((full - keep + bias).argmax(1) == y).double().mean())
    keep_np = np.array([float("nan")] + (torch.stack(keep_acc).tolist() if keep_acc else []))
    remove_np = np.array(torch.stack(remove_acc).tolist())
    return keep_np, remove_np, float(remove_np[0])


def core_dimensions(keep_acc: np.ndarray, remove_acc: np.ndarray, base: float, r_energy: int, p: int) -> dict[str, int]:
    """Core dimensions read from the scans of :func:`scan_keep_remove`; the reference code's
    rules are listed on the book's page *What we know of the paper's setup* (book/sources.md).

    ``r_nec``: smallest r >= 1 with removal accuracy <= 2/p (scanned from 1, not from the
    energy rank as the reference code does); ``r_suf``: smallest r >= 1 with keep
    accuracy >= base - 1e-3; ``r_core``: the paper's reported core dimension,
    ``max(r_energy, smallest r >= r_energy with removal <= 2/p)``. A dimension that is
    never reached is ``D + 1``.
    """
    D = len(keep_acc) - 1
    chance2 = 2.0 / p

    def first(mask: np.ndarray, start: int) -> int:
        idx = [r for r in range(start, D + 1) if mask[r]]
        return idx[0] if idx else D + 1

    r_nec = first(remove_acc <= chance2, 1)
    r_suf = first(np.nan_to_num(keep_acc, nan=-1.0) >= base - 1e-3, 1)
    r_core = max(r_energy, first(remove_acc <= chance2, r_energy))
    return {"r_energy": int(r_energy), "r_nec": int(r_nec), "r_suf": int(r_suf), "r_core": int(r_core)}


def class_prototypes(Z: np.ndarray, y: np.ndarray, p: int) -> np.ndarray:
    """(p, r) mean core coordinates per target class."""
    return np.stack([Z[y == c].mean(0) for c in range(p)])


def shift_operator(protos: np.ndarray, p: int, *, holdout: int | None = None, ridge: float = 1.0, holdout_start: int = 0) -> dict:
    """Fit the "add 1" map ``r_c A ~ r_{(c+1) mod p}`` on class prototypes, as the reference code
    (joshseth/cores) does.

    A contiguous block of ``holdout`` classes (default ``round(0.075 p)``, 4 for p = 53)
    starting at ``holdout_start`` is held out: the fit uses the pairs ``c -> c+1`` with
    neither class in the block, and ``R2_h`` is measured on the pairs whose source class is
    in the block, as ``1 - sum ||pred - target||^2 / sum ||target - train mean||^2`` (pooled
    over coordinates). Prototypes are centred with the mean of the training classes and
    projected on the right singular vectors of the centred training prototypes with
    ``s >= 1e-3 s_max`` (at most p - 1). Ridge ``ridge`` (paper: 1). Returns
    ``{"eigenvalues", "r2_h", "r2_train", "k", "modes"}`` (``modes`` from
    :func:`ace_utils.method.operators.rotational_mode_count`).
    """
    holdout = int(round(0.075 * p)) if holdout is None else holdout
    block = {(holdout_start + j) % p for j in range(holdout)}
    src = np.arange(p)
    dst = (src + 1) % p
    train = np.array([c not in block and (c + 1) % p not in block for c in src])
    test = np.array([c in block for c in src])
    train_classes = np.array([c not in block for c in src])
    mu = protos[train_classes].mean(0)
    Pc = protos - mu
    _, s, Vt = np.linalg.svd(Pc[train_classes], full_matrices=False)
    k = int(min((s >= 1e-3 * s[0]).sum(), p - 1)) if s.size and s[0] > 0 else 0
    if k == 0:
        return {"eigenvalues": np.zeros(0, complex), "r2_h": float("nan"), "r2_train": float("nan"), "k": 0, "modes": 0}
    X = Pc @ Vt[:k].T  # (p, k)
    fit = fit_operator(X[src[train]], X[dst[train]], centre=False, ridge=ridge)
    pred = X[src[test]] @ fit.A.T
    target = X[dst[test]]
    r2_h = 1.0 - float(((pred - target) ** 2).sum() / ((target - X[train_classes].mean(0)) ** 2).sum())
    return {
        "eigenvalues": fit.eigenvalues,
        "r2_h": r2_h,
        "r2_train": fit.r2,
        "k": k,
        "modes": rotational_mode_count(fit.eigenvalues, p),
    }


def in_sample_r2(protos: np.ndarray, p: int, svd_tol: float = 1e-3) -> float:
    """In-sample R^2 of the "add 1" map on all ``p`` class prototypes (p, r), the reference
    code's definition (joshseth/cores, the mode sweep's fit: ridge 0, no held-out classes).

    Prototypes centred with their mean, projected on the right singular vectors with
    ``s >= svd_tol s_max`` (at most ``min(p - 1, r)``), least squares ``x_c A ~ x_{c+1}``
    over all ``p`` pairs, and ``1 - SSE / SST`` pooled over coordinates (SST about the
    targets' mean).
    """
    X = np.asarray(protos, float)
    X = X - X.mean(0)
    Y = np.roll(X, -1, axis=0)  # row c holds the prototype of c + 1 (mod p)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    if not s.size or s[0] <= 0:
        return float("nan")
    k = max(1, min(int((s >= svd_tol * s[0]).sum()), p - 1, X.shape[1]))
    Xk, Yk = X @ Vt[:k].T, Y @ Vt[:k].T
    A, *_ = np.linalg.lstsq(Xk, Yk, rcond=None)
    return float(1.0 - ((Yk - Xk @ A) ** 2).sum() / (((Yk - Yk.mean(0)) ** 2).sum() + 1e-12))


def in_sample_modes(protos: np.ndarray, p: int, svd_tol: float = 1e-3) -> int:
    """Rotational modes of the in-sample "add 1" map (the fit of :func:`in_sample_r2`: ridge 0,
    all ``p`` classes, no held-out block), counted by
    :func:`ace_utils.method.operators.rotational_mode_count`. This is the reference code's mode
    sweep (the paper's figure 2D); ``modes`` of :func:`shift_operator` counts the eigenvalues of
    the ridge-1 fit with held-out classes (the paper's clock panels), which pulls eigenvalues
    inside the unit circle and so counts fewer. ``protos`` (p, r)."""
    X = np.asarray(protos, float)
    X = X - X.mean(0)
    Y = np.roll(X, -1, axis=0)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    if not s.size or s[0] <= 0:
        return 0
    k = max(1, min(int((s >= svd_tol * s[0]).sum()), p - 1, X.shape[1]))
    Xk, Yk = X @ Vt[:k].T, Y @ Vt[:k].T
    A, *_ = np.linalg.lstsq(Xk, Yk, rcond=None)
    return rotational_mode_count(np.linalg.eigvals(A), p)


def _core_scan(model, data: ModData, threshold: float) -> tuple:
    """The part of a checkpoint analysis every reader of it shares: test-pair activations ``H``
    (N, D) at :data:`ACE_HOOK`, readout ``W`` (K, D) and bias ``b`` (K,), the ACE result, the
    keep/remove scans with the base accuracy, and the core dimensions, all on the model's device."""
    data = data.to(model_device(model))
    H = last_position_activations(model, data.test_x)
    W = readout_matrix(model)
    b = readout_bias(model)
    res = ace(H, observability_from_readout(W), threshold=threshold)
    keep, remove, base = scan_keep_remove(H, res.basis, W, data.test_y, b)
    return H, W, b, res, keep, remove, base, core_dimensions(keep, remove, base, res.rank, data.p)


def analyse_checkpoint(model, data: ModData, threshold: float = ENERGY_THRESHOLD) -> dict:
    """Every per-checkpoint quantity of chapter 03 for one model (bridge or paper's module).

    ACE at :data:`ACE_HOOK` (the readout's input, position -1) on the test pairs with
    ``W_o = W_U^T W_U``; energy rank at ``threshold``; keep/remove scans for all r, the
    readout bias kept; core dimensions (:func:`core_dimensions`); core-only and
    core-removed accuracy at ``r_core``; the shift operator (:func:`shift_operator`, with
    held-out classes) and its in-sample R^2 (:func:`in_sample_r2`, ``r2_in``) on
    prototypes in the ``r_core``-dimensional core, and the rotational modes of that in-sample
    fit (:func:`in_sample_modes`, ``modes_in``). Arrays: ``energies`` (D,),
    ``keep_acc`` / ``remove_acc`` (D+1,), ``eigenvalues``. ACE and the scans run on the
    model's device; the operator fits on the (p, r) class prototypes, on the host.
    """
    H, W, b, res, keep, remove, base, dims = _core_scan(model, data, threshold)
    r = min(dims["r_core"], H.shape[1])
    Z = res.coords(H, r).cpu().numpy()
    protos = class_prototypes(Z, data.test_y.cpu().numpy(), data.p)
    op = shift_operator(protos, data.p)
    return {
        "test_acc": base,
        "energies": res.energies.cpu().numpy(),
        **dims,
        "keep_acc": keep,
        "remove_acc": remove,
        "core_only_acc": float(keep[r]),
        "core_removed_acc": float(remove[r]),
        **op,
        "r2_in": in_sample_r2(protos, data.p),
        "modes_in": in_sample_modes(protos, data.p),
    }


def redundancy_profile(model, data: ModData, threshold: float = ENERGY_THRESHOLD) -> dict:
    """Where a model's necessary dimension sits relative to its activation energy, for one model.

    The scans of :func:`analyse_checkpoint` (same site, basis and rules; its operator fits
    are not needed here): ``r_energy``, ``r_nec``,
    ``r_suf``; ``acc_without_energy`` the test accuracy with the top ``r_energy`` ACE
    directions removed (the readout bias kept), ``energy_beyond`` the share of the ACE energy
    (the paper's energies sigma^2, summed) outside those directions; ``param_norm`` the Euclidean norm of
    all parameters, ``readout_norm`` the Frobenius norm of ``W_U`` (K, D), and
    ``median_margin`` the median over test pairs of the top logit minus the runner-up (logits,
    no unit). A necessary dimension far above ``r_energy`` with ``acc_without_energy`` well
    above chance means copies of the answer in directions of little energy. Not used in
    training; it reads a model, e.g. the final states of a long run.
    """
    H, W, b, res, _, remove, base, dims = _core_scan(model, data, threshold)
    r_e = dims["r_energy"]
    e = res.energies.double()
    W = W.double()
    top2 = (H.double() @ W.T + b.double()).topk(2, dim=1).values
    return {
        "r_energy": r_e, "r_nec": dims["r_nec"], "r_suf": dims["r_suf"], "test_acc": base,
        "acc_without_energy": float(remove[r_e]),
        "energy_beyond": float(e[r_e:].sum() / e.sum()),
        "param_norm": float(torch.sqrt(sum((q.detach().double() ** 2).sum() for q in model.parameters()))),
        "readout_norm": float(W.norm()),
        "median_margin": float((top2[:, 0] - top2[:, 1]).median()),
    }


def grok_epoch(epochs: np.ndarray, acc: np.ndarray, level: float = 0.99) -> int | None:
    """First logged epoch with ``acc >= level`` (None if never)."""
    hit = np.flatnonzero(np.asarray(acc) >= level)
    return int(epochs[hit[0]]) if hit.size else None


def readout_scorer(H: Tensor, W: Tensor, y: Tensor, b: Tensor | None = None) -> Callable[[Tensor, str], float]:
    """``evaluate(Q, mode)`` for :func:`ace_utils.method.baselines.compare_subspaces`: the test
    accuracy with all of span(Q) (``Q`` (D, k)) kept (``mode="keep"``) or removed
    (``"remove"``) at the readout's input, by :func:`scan_keep_remove` on ``H`` (N, D), ``W``
    (K, D), ``b`` (K,) and targets ``y`` (N,)."""

    def evaluate(Q: Tensor, mode: str) -> float:
        keep, remove, _ = scan_keep_remove(H, Q, W, y, b)
        return float({"keep": keep, "remove": remove}[mode][-1])

    return evaluate


def fourier_power_share(M: np.ndarray, top: int = 5) -> float:
    """Share of the power of ``M`` (p, D), centred over its p rows (one per residue), in its
    ``top`` strongest non-zero frequencies along the rows: about ``top / (p // 2)`` for a
    uniform spread, near 1 for the "clock" code of a few waves over the residues."""
    F = np.fft.rfft(M - M.mean(0), axis=0)
    power = np.sort((np.abs(F) ** 2).sum(1)[1:])[::-1]
    return float(power[:top].sum() / power.sum())
