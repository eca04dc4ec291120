"""Reading activations, and gradients of a scalar metric, at TransformerLens hook points.

One forward pass per batch reads every requested hook; for gradients, one
backward pass per batch gives every layer's per-sample gradient at once (the
metric of sample i depends only on sample i, so the gradient of the batch sum
with respect to sample i's activation is that sample's own gradient).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ace_utils.method.interventions import Positions

__all__ = ["gather_positions", "collect_activations", "collect_activations_and_gradients"]


def gather_positions(act: Tensor, positions: Positions) -> Tensor:
    """Select positions from a (batch, pos, D) activation.

    ``None`` → all positions flattened to (batch * pos, D); an int → (batch, D);
    a LongTensor (batch,) → one position per row, (batch, D); a sequence of
    ints → (batch * len, D).
    """
    if positions is None:
        return act.reshape(-1, act.shape[-1])
    if isinstance(positions, int):
        return act[:, positions]
    if isinstance(positions, Tensor):
        return act[torch.arange(act.shape[0], device=act.device), positions.to(act.device)]
    return act[:, list(positions)].reshape(-1, act.shape[-1])


def _batches(n: int, batch_size: int):
    for s in range(0, n, batch_size):
        yield slice(s, min(n, s + batch_size))


def _slice_positions(positions: Positions, sl: slice) -> Positions:
    return positions[sl] if isinstance(positions, Tensor) else positions


def collect_activations(
    model: Any,
    tokens: Tensor,
    hook_names: Sequence[str],
    *,
    positions: Positions = None,
    batch_size: int = 512,
    forward_kwargs: dict | None = None,
    fwd_hooks: Sequence = (),
) -> dict[str, Tensor]:
    """Activations at ``hook_names`` for ``tokens`` (N, T), gathered at ``positions``.

    Returns name -> (N', D) float32 tensors on the model's device (N' = N for a single
    position per row, N * T for all positions). ``forward_kwargs`` (e.g. ``attention_mask``)
    are sliced by batch when they are (N, ...) tensors. Extra ``fwd_hooks``
    (e.g. an intervention upstream) run before the reading hooks.
    """
    store: dict[str, list[Tensor]] = {n: [] for n in hook_names}
    cur: dict[str, Tensor] = {}

    def reader(name: str):
        def hook(act: Tensor, hook=None) -> Tensor:
            cur[name] = act
            return act

        return hook

    hooks = list(fwd_hooks) + [(n, reader(n)) for n in hook_names]
    with torch.no_grad():
        for sl in _batches(tokens.shape[0], batch_size):
            kw = _slice_kwargs(forward_kwargs, sl, tokens.shape[0])
            model.run_with_hooks(tokens[sl], fwd_hooks=hooks, **kw)
            pos = _slice_positions(positions, sl)
            for n in hook_names:
                store[n].append(gather_positions(cur[n], pos).detach().float())
    return {n: torch.cat(v) for n, v in store.items()}


def _slice_kwargs(kwargs: dict | None, sl: slice, n: int) -> dict:
    if not kwargs:
        return {}
    return {k: (v[sl] if isinstance(v, Tensor) and v.ndim and v.shape[0] == n else v) for k, v in kwargs.items()}


def collect_activations_and_gradients(
    model: Any,
    tokens: Tensor,
    hook_names: Sequence[str],
    metric: Callable[[Tensor, slice], Tensor],
    *,
    positions: Positions = None,
    batch_size: int = 64,
    forward_kwargs: dict | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Activations and per-sample gradients of ``metric`` at every hook, one backward per batch.

    ``metric(logits, batch_slice)`` returns (B,) per-sample scalars (e.g. the
    number margin at each prompt's last token). Gradients are taken with
    ``torch.autograd.grad`` with respect to the hooked activations only (no
    parameter gradients are accumulated). Returns ``(acts, grads)``, each
    name -> (N', D) float32 on the model's device, gathered at ``positions``.
    """
    acts: dict[str, list[Tensor]] = {n: [] for n in hook_names}
    grads: dict[str, list[Tensor]] = {n: [] for n in hook_names}
    cur: dict[str, Tensor] = {}

    def reader(name: str):
        def hook(act: Tensor, hook=None) -> Tensor:
            if not act.requires_grad:
                act = act.detach().requires_grad_(True)
            cur[name] = act
            return act

        return hook

    hooks = [(n, reader(n)) for n in hook_names]
    for sl in _batches(tokens.shape[0], batch_size):
        cur.clear()
        kw = _slice_kwargs(forward_kwargs, sl, tokens.shape[0])
        with torch.enable_grad():
            logits = model.run_with_hooks(tokens[sl], fwd_hooks=hooks, **kw)
            m = metric(logits, sl)
            names = list(hook_names)
            g = torch.autograd.grad(m.sum(), [cur[n] for n in names], allow_unused=True)
        pos = _slice_positions(positions, sl)
        for n, gn in zip(names, g):
            if gn is None:
                raise ValueError(f"the metric does not depend on hook {n!r}: it is not on the path to the output")
            acts[n].append(gather_positions(cur[n].detach(), pos).float())
            grads[n].append(gather_positions(gn.detach(), pos).float())
    return {n: torch.cat(v) for n, v in acts.items()}, {n: torch.cat(v) for n, v in grads.items()}
