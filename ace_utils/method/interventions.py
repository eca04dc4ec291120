"""Causal interventions on a subspace: keep, remove, flip (centred or not).

Pure tensor maps plus TransformerLens hook functions for ``run_with_hooks``.

With ``P = Q Q^T`` the projector onto the subspace spanned by the orthonormal
columns of ``Q`` (D, k) and ``mu`` a reference mean (zero when uncentred):

- keep:   ``h <- mu + P (h - mu)``
- remove: ``h <- mu + (I - P)(h - mu)``
- flip:   ``h <- mu + (I - 2P)(h - mu)``  (reflection: core coordinates negated)
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence, Union

import torch
from torch import Tensor

__all__ = [
    "Mode",
    "apply_subspace",
    "subspace_hook",
    "random_subspace",
    "Positions",
]

Mode = Literal["keep", "remove", "flip"]
# Which token positions to edit in a (batch, pos, D) activation:
#   None: all; int: that position (negative counts from the end);
#   sequence of ints: those positions; LongTensor (batch,): one position per row
#   (e.g. each prompt's last non-pad token).
Positions = Union[None, int, Sequence[int], Tensor]


def apply_subspace(
    h: Tensor,
    Q: Tensor,
    mode: Mode,
    mean: Tensor | None = None,
    strength: float = 1.0,
) -> Tensor:
    """Apply keep / remove / flip to the last dim of ``h`` (..., D).

    ``Q``: (D, k) orthonormal columns. ``strength`` interpolates between the
    clean activation (0) and the full intervention (1):
    ``h + strength * (T(h) - h)``. Computed in float64, returned in h's dtype.
    """
    if mode not in ("keep", "remove", "flip"):
        raise ValueError(f"mode must be one of 'keep', 'remove', 'flip'; got {mode!r}")
    dtype = h.dtype
    x = h.to(torch.float64)
    Q = Q.to(device=h.device, dtype=torch.float64)
    mu = torch.zeros(x.shape[-1], dtype=torch.float64, device=h.device) if mean is None else mean.to(x)
    core_part = ((x - mu) @ Q) @ Q.T  # P (h - mu)
    if mode == "keep":
        delta = -((x - mu) - core_part)
    elif mode == "remove":
        delta = -core_part
    else:
        delta = -2.0 * core_part
    return (x + strength * delta).to(dtype)


def _position_index(positions: Positions, batch: int, seq: int, device) -> tuple[Tensor, Tensor]:
    """(rows, cols) index tensors of the positions to edit."""
    if isinstance(positions, Tensor):
        if positions.shape != (batch,):
            raise ValueError(f"per-row positions must have shape ({batch},), got {tuple(positions.shape)}")
        cols = positions.to(device).long() % seq
        return torch.arange(batch, device=device), cols
    if isinstance(positions, int):
        positions = [positions]
    cols = torch.tensor([p % seq for p in positions], device=device, dtype=torch.long)
    rows = torch.arange(batch, device=device).repeat_interleave(len(cols))
    return rows, cols.repeat(batch)


def subspace_hook(
    Q: Tensor,
    mode: Mode,
    *,
    mean: Tensor | None = None,
    positions: Positions = None,
    strength: float = 1.0,
) -> Callable[[Tensor, object], Tensor]:
    """A TransformerLens hook function applying ``apply_subspace`` to chosen positions.

    Use as ``model.run_with_hooks(tokens, fwd_hooks=[(hook_name, subspace_hook(Q, "remove"))])``
    on a hook whose activation is (batch, pos, D) or (batch, D). Positions not
    named are left bit-for-bit unchanged.
    """

    def hook(act: Tensor, hook=None) -> Tensor:  # noqa: ARG001 (TL passes the HookPoint)
        if positions is None or act.ndim == 2:
            return apply_subspace(act, Q, mode, mean, strength)
        rows, cols = _position_index(positions, act.shape[0], act.shape[1], act.device)
        out = act.clone()
        out[rows, cols] = apply_subspace(act[rows, cols], Q, mode, mean, strength)
        return out

    return hook


def random_subspace(d: int, k: int, generator: torch.Generator | None = None) -> Tensor:
    """A Haar-random k-dim subspace of R^d: (d, k) float64 orthonormal columns.

    The control of equal dimension for every intervention.
    """
    G = torch.randn(d, k, generator=generator, dtype=torch.float64)
    Q, R = torch.linalg.qr(G)
    return Q * torch.sign(torch.diagonal(R))
