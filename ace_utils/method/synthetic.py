"""A synthetic layer with a planted core: the known answer ACE must recover.

The known-answer tests use it, and the book's first chapter shows ACE recovering it.

The layer ``h = B diag(s) z`` (D dims) is driven by independent unit latents
``z``. Three groups of orthonormal directions are planted:

- **core** (k dims): driven by the input (std ``core_std``) *and* read by the
  output (weights ``core_gain``);
- **decoy** (k dims): driven ``decoy_ratio`` times louder than the core but
  ignored by the output (PCA's trap);
- **silent** (k dims): read ``silent_ratio`` times more strongly than the core
  but never driven by the input (output-sensitivity's trap);

and the remaining directions carry faint noise (std ``noise_std``) the output
ignores. The output is linear, ``y = C h`` with ``C`` (k, D).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["PlantedSystem", "planted_core_system"]


@dataclass(frozen=True)
class PlantedSystem:
    """Samples and ground truth of a planted-core layer (all float64).

    ``H`` (N, D) activations; ``C`` (k, D) linear readout; ``core``,
    ``decoy``, ``silent`` (D, k) orthonormal bases of the planted groups.
    """

    H: Tensor
    C: Tensor
    core: Tensor
    decoy: Tensor
    silent: Tensor

    def outputs(self, H: Tensor | None = None) -> Tensor:
        """``y = H C^T``: (N, k)."""
        return (self.H if H is None else H.to(torch.float64)) @ self.C.T


def _decorrelate(Z: Tensor) -> Tensor:
    """Columns centred, mutually uncorrelated and of unit sample variance, exactly."""
    Zc = Z - Z.mean(0)
    Q, R = torch.linalg.qr(Zc)
    Q = Q * torch.sign(torch.diagonal(R))
    return Q * (Z.shape[0] - 1) ** 0.5


def planted_core_system(
    n: int = 4000,
    d: int = 32,
    k: int = 3,
    *,
    core_std: tuple[float, ...] = (1.0, 0.7, 0.5),
    core_gain: tuple[float, ...] = (1.0, 1.0, 1.0),
    decoy_ratio: float = 10.0,
    silent_ratio: float = 10.0,
    noise_std: float = 0.05,
    decorrelated: bool = True,
    seed: int = 0,
) -> PlantedSystem:
    """Draw ``n`` samples of a planted-core layer (see the module docstring).

    With ``decorrelated=True`` the sample latents are exactly uncorrelated, so
    the empirical Gramians equal the population ones and ACE's answer is exact;
    with ``False`` they are i.i.d. Gaussian, and finite-sample correlations
    between the loud decoy and the core tilt ACE's basis by ~ decoy_ratio/sqrt(n)
    (see the method page).
    """
    if len(core_std) != k or len(core_gain) != k:
        raise ValueError("core_std and core_gain need k entries each")
    if 3 * k > d:
        raise ValueError(f"need d >= 3k (core, decoy, silent): d={d}, k={k}")
    g = torch.Generator().manual_seed(seed)
    B, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    core, decoy, silent, rest = B[:, :k], B[:, k : 2 * k], B[:, 2 * k : 3 * k], B[:, 3 * k :]
    stds = torch.cat(
        [
            torch.tensor(core_std, dtype=torch.float64),
            torch.full((k,), decoy_ratio * max(core_std), dtype=torch.float64),
            torch.zeros(k, dtype=torch.float64),
            torch.full((d - 3 * k,), noise_std, dtype=torch.float64),
        ]
    )
    Z = torch.randn(n, d, generator=g, dtype=torch.float64)
    if decorrelated:
        Z = _decorrelate(Z)
    H = (Z * stds) @ B.T
    gain = torch.tensor(core_gain, dtype=torch.float64)
    C = (core * gain).T + silent_ratio * max(core_gain) * silent.T  # (k, D)
    return PlantedSystem(H=H, C=C, core=core, decoy=decoy, silent=silent)
