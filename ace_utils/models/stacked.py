"""Batched per-model primitives for models stacked on a leading axis ``M``.

Parameters of ``M`` models of one shape are stacked name -> (M, ...) tensors; activations
are (M, N, ...), one batch per model. These are the pieces of the stacked forwards of
:mod:`ace_utils.tasks.modular` (the native pre-LN model) and :mod:`ace_utils.models.paper`
(the paper's post-LN model).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["layer_norm", "linear", "dropout"]


def layer_norm(x: Tensor, w: Tensor, b: Tensor, eps: float = 1e-5) -> Tensor:
    """LayerNorm over the last axis of ``x`` (M, N, D) with per-model gain ``w`` and bias ``b`` (M, D)."""
    return F.layer_norm(x, x.shape[-1:], eps=eps) * w[:, None] + b[:, None]


def linear(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``x @ w.T + b`` per model: ``x`` (M, N, d_in), ``w`` (M, d_out, d_in), ``b`` (M, d_out) -> (M, N, d_out)."""
    return torch.baddbmm(b[:, None], x, w.transpose(1, 2))


def dropout(x: Tensor, rate: float, gen: torch.Generator | Sequence[torch.Generator] | None) -> Tensor:
    """Inverted dropout of ``x`` (M, ...) at ``rate``; the identity when ``rate <= 0`` or ``gen`` is None.

    ``gen``: one generator for the whole stack, or one per model; with one per model the
    masks are drawn model by model, so a model's masks do not depend on the other models
    in the stack. The generators live on ``x``'s device (masks are drawn there).
    """
    if rate <= 0 or gen is None:
        return x
    if isinstance(gen, torch.Generator):
        keep = torch.rand(x.shape, generator=gen, device=x.device) >= rate
    else:
        keep = torch.stack([torch.rand(x.shape[1:], generator=g, device=x.device) >= rate for g in gen])
    return x * keep / (1 - rate)
