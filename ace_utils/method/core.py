"""ACE on a TransformerLens model in one call: :func:`find_core` and the :class:`Core` it returns.

::

    import ace_utils as au

    core = au.find_core(model, tokens, hook="blocks.3.hook_resid_post", metric=margin)
    core.rank, core.energies                                  # the core's dimension, sigma^2
    logits = model.run_with_hooks(tokens, fwd_hooks=core.remove)  # or core.keep, core.flip

``model`` is a TransformerLens ``HookedRootModule`` (the paper's models in
:mod:`ace_utils.models.paper` are one) or a ``TransformerBridge``; ``hook`` is a hook name as
TransformerLens spells it, or a tuple for ``transformer_lens.utilities.get_act_name``
(``("resid_post", 3)``), as ``ActivationCache`` indexing takes it. The activations at the hook
give ACE's reachability Gramian; the observability Gramian comes from the per-sample gradients
of a behaviour ``metric`` there, or, at the readout's input with ``metric="logits"``, from the
readout matrix exactly. The computations are those of :mod:`ace_utils.method.activations`,
:mod:`ace_utils.method.ace` and :mod:`ace_utils.method.interventions`; this module checks the
inputs, so that a wrong one fails before any work with one line that names it, and wires the
three together.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence, Union

import torch
from torch import Tensor

from ace_utils.method.ace import ACEResult, ace, observability_from_gradients, observability_from_readout
from ace_utils.method.activations import collect_activations, collect_activations_and_gradients, gather_positions
from ace_utils.method.interventions import Mode, Positions, random_subspace, subspace_hook
from ace_utils.models.readout import readout_matrix

__all__ = ["Core", "FwdHooks", "Metric", "find_core", "resolve_hook"]

# A behaviour: ``metric(logits, batch)`` -> (B,) one differentiable scalar per sequence of the
# batch ``tokens[batch]`` (``batch`` is a slice, to index per-sequence targets); or "logits": every
# logit, through a linear readout (the hook must be the readout's input).
Metric = Union[Callable[[Tensor, slice], Tensor], Literal["logits"]]
# what ``run_with_hooks(..., fwd_hooks=...)`` takes: [(hook name, hook function)]
FwdHooks = list[tuple[str, Callable[[Tensor, Any], Tensor]]]
# hooks whose activation is what a linear readout reads (the bridges', the paper's models')
READOUT_INPUTS = ("unembed.hook_in", "ln_final.hook_out")


@dataclass(frozen=True)
class Core:
    """The core ACE found at one hook of a model, with its interventions ready to run.

    ``hook``: the hook name; ``result``: the :class:`~ace_utils.method.ace.ACEResult` (the
    full balanced basis, for other ranks); ``positions``: the token positions it was read at
    (``None``: all; an int; a list; a (N,) tensor, one per sequence), which the ready
    interventions edit.
    ``keep``, ``remove`` and ``flip`` are ``fwd_hooks`` for ``model.run_with_hooks``: keep only
    the core, remove it, or reflect it, each about the mean activation.
    """

    hook: str
    result: ACEResult
    positions: Positions = None

    @property
    def rank(self) -> int:
        """k, the core's dimension (the energy rule's, or the ``rank`` asked for)."""
        return self.result.rank

    @property
    def basis(self) -> Tensor:
        """(D, k) float64 orthonormal basis of the core, in balanced order."""
        return self.result.core()

    @property
    def energies(self) -> Tensor:
        """(D,) float64 energies sigma_i^2 of every balanced direction, descending."""
        return self.result.energies

    @property
    def energy_fraction(self) -> Tensor:
        """(D,) cumulative fraction of the energy in the first i + 1 directions."""
        return self.result.energy_fraction

    @property
    def mean(self) -> Tensor:
        """(D,) float64 mean activation at the hook, the centre of the interventions."""
        return self.result.mean

    def coords(self, H: Tensor) -> Tensor:
        """Core coordinates ``(H - mean) @ basis`` of activations ``H`` (N, D): (N, k) float64."""
        return self.result.coords(H)

    def hooks(self, mode: Mode, *, rank: int | None = None, positions: Positions | str = "found",
              centred: bool = True, strength: float = 1.0) -> FwdHooks:
        """``fwd_hooks`` applying ``mode`` (keep, remove, flip) to the rank-``rank`` core
        (default k) at ``positions`` (default: where the core was read; ``None`` = all)."""
        Q = self.result.core(rank)
        pos = self.positions if isinstance(positions, str) and positions == "found" else positions
        mean = self.mean if centred else None
        return [(self.hook, subspace_hook(Q, mode, mean=mean, positions=pos, strength=strength))]

    @property
    def keep(self) -> FwdHooks:
        """Keep only the core: ``h <- mean + P (h - mean)``."""
        return self.hooks("keep")

    @property
    def remove(self) -> FwdHooks:
        """Remove the core: ``h <- mean + (I - P)(h - mean)``."""
        return self.hooks("remove")

    @property
    def flip(self) -> FwdHooks:
        """Reflect the core: ``h <- mean + (I - 2P)(h - mean)`` (core coordinates negated)."""
        return self.hooks("flip")

    def control(self, mode: Mode, seed: int = 0, *, positions: Positions | str = "found") -> FwdHooks:
        """The same intervention on a Haar-random subspace of the core's dimension (the
        control), drawn from ``seed``; ``positions`` as in :meth:`hooks`."""
        Q = random_subspace(self.basis.shape[0], self.rank, torch.Generator().manual_seed(seed))
        pos = self.positions if isinstance(positions, str) and positions == "found" else positions
        return [(self.hook, subspace_hook(Q, mode, mean=self.mean, positions=pos))]


def resolve_hook(model: Any, hook: str | Sequence) -> str:
    """The model's name for ``hook`` (a full name, a ``get_act_name`` shorthand or a tuple
    ``(name, layer[, layer_type])``); ``blocks.{l}.hook_resid_pre`` / ``hook_resid_post`` fall
    back to ``blocks.{l}.hook_in`` / ``hook_out``. Raises ``ValueError`` naming it if the model
    has none."""
    from transformer_lens.utilities import get_act_name

    names = model.hook_dict
    if isinstance(hook, str):
        candidates = [hook] if hook in names else [get_act_name(hook)]
    elif isinstance(hook, (tuple, list)) and hook and isinstance(hook[0], str):
        candidates = [get_act_name(*hook)]
    else:
        raise TypeError(f"hook must be a hook name or a (name, layer[, layer_type]) tuple, got {hook!r}")
    # the bridges' canonical names for the residual stream, which models built like them
    # (ace_utils.models.paper) use without the classic aliases
    candidates.append(candidates[0].replace(".hook_resid_pre", ".hook_in").replace(".hook_resid_post", ".hook_out"))
    for name in candidates:
        if name in names:
            return name
    close = difflib.get_close_matches(candidates[0], list(names), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else f"; it has {len(names)} hooks (model.hook_dict)"
    raise ValueError(f"unknown hook {hook!r}: the model has no hook point {candidates[0]!r}{hint}")


def _check_model(model: Any) -> None:
    if not (hasattr(model, "hook_dict") and hasattr(model, "run_with_hooks")):
        raise TypeError(f"model must be a TransformerLens HookedRootModule or TransformerBridge, got {type(model).__name__}")


def _check_inputs(tokens: Tensor | None, positions: Positions, n: int | None) -> None:
    if tokens is not None and (not isinstance(tokens, Tensor) or tokens.ndim < 1 or tokens.shape[0] < 2):
        got = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must be a tensor (N, ...) of N >= 2 inputs, as the model takes them (N, T); got {got}")
    if tokens is not None and tokens.ndim == 1:
        raise ValueError(f"tokens must be a batch (N, T) of token sequences, got shape {tuple(tokens.shape)}: add a batch axis")
    if isinstance(positions, Tensor) and n is not None and tuple(positions.shape) != (n,):
        raise ValueError(f"positions must be an int, a list of ints or a tensor ({n},) (one per sequence), got shape {tuple(positions.shape)}")


def _check_activation(act: Tensor, hook: str) -> None:
    if act.ndim not in (2, 3):
        raise ValueError(f"the activation at {hook!r} has shape {tuple(act.shape)}: find_core needs (batch, pos, d) or "
                         "(batch, d); a hook with a head axis (hook_z, hook_pattern, ...) is not a vector space ACE can read")


def _checked_metric(metric: Callable[[Tensor, slice], Tensor]) -> Callable[[Tensor, slice], Tensor]:
    def checked(logits: Tensor, batch: slice) -> Tensor:
        m = metric(logits, batch)
        n = batch.stop - batch.start
        if not isinstance(m, Tensor) or tuple(m.shape) != (n,):
            got = tuple(m.shape) if isinstance(m, Tensor) else type(m).__name__
            raise ValueError(f"metric must return one value per sequence, shape ({n},), got {got}")
        if not m.requires_grad:
            raise ValueError("metric returned no gradient: its value is not a differentiable function of the logits "
                             "(computed under torch.no_grad, detached, or from argmax/.item()?)")
        return m

    return checked


def _cached(cache: Mapping[str, Tensor] | Any, hook: str, n: int | None) -> Tensor:
    try:
        act = cache[hook]
    except KeyError:
        raise ValueError(f"the cache holds no activation at {hook!r} (run_with_cache with a names_filter that keeps it)") from None
    _check_activation(act, hook)
    if n is not None and act.shape[0] != n:
        raise ValueError(f"cache[{hook!r}] has {act.shape[0]} sequences but tokens has {n}: they must be the same inputs")
    return act


def find_core(
    model: Any,
    tokens: Tensor | None,
    *,
    hook: str | Sequence,
    metric: Metric,
    cache: Mapping[str, Tensor] | Any = None,
    positions: Positions = None,
    rank: int | None = None,
    threshold: float = 0.999,
    batch_size: int = 64,
    forward_kwargs: dict | None = None,
) -> Core:
    """The algorithmic core of ``model`` at ``hook`` for the behaviour ``metric``.

    ``tokens``: (N, T) inputs, N >= 2 (``None`` only with ``cache`` and ``metric="logits"``).
    ``metric(logits, batch)`` returns (B,) differentiable per-sequence scalars for
    ``tokens[batch]`` (logits (B, T, V)), e.g. a logit margin or a log-probability summed over
    positions; ACE's observability Gramian is the mean outer product of its gradients at the
    hook. ``metric="logits"`` uses the readout matrix ``W`` (``W^T W``, exact) and needs the
    hook the readout reads (``unembed.hook_in``). ``cache``: an ``ActivationCache`` (or dict)
    of these tokens; the activations are read from it (with a callable metric the forward and
    backward pass still runs for the gradients, and must reproduce the cached activations).
    ``positions``: which positions to read and later edit (``None``: all, flattened to N * T
    samples; an int; a list; a (N,) tensor, one per sequence). ``rank``: the core dimension, or
    the smallest with ``threshold`` of the energy. The model runs in eval mode (dropout off);
    its mode is restored. Returns a :class:`Core`.
    """
    _check_model(model)
    name = resolve_hook(model, hook)
    n = tokens.shape[0] if isinstance(tokens, Tensor) else None
    _check_inputs(tokens, positions, n)
    if rank is not None and rank < 1:
        raise ValueError(f"rank must be a positive int or None (energy rule), got {rank}")
    if metric == "logits":
        by_name = {model.hook_dict.get(h) for h in READOUT_INPUTS} - {None}
        if model.hook_dict[name] not in by_name:
            raise ValueError(f"metric='logits' reads the readout exactly, at its input {READOUT_INPUTS[0]!r}; "
                             f"at {name!r} pass a metric function")
    elif not callable(metric):
        raise TypeError(f"metric must be a function (logits, batch) -> (B,) or 'logits', got {metric!r}")
    if tokens is None and (cache is None or metric != "logits"):
        raise ValueError("tokens is None: it may be left out only with a cache and metric='logits'")

    was_training = getattr(model, "training", False)
    model.eval()
    try:
        d = _probe(model, tokens, name, forward_kwargs) if tokens is not None else None
        H = None if cache is None else gather_positions(_cached(cache, name, n), positions).float()
        d = H.shape[1] if d is None else d
        if rank is not None and rank > d:
            raise ValueError(f"rank must be at most the hook's dimension {d}, got {rank}")
        if metric == "logits" and readout_matrix(model).shape[1] != d:
            raise ValueError(f"the readout reads {readout_matrix(model).shape[1]} dimensions but the activation at {name!r} has {d}")
        if metric == "logits":
            if H is None:
                H = collect_activations(model, tokens, [name], positions=positions, batch_size=batch_size,
                                        forward_kwargs=forward_kwargs)[name]
            Wo = observability_from_readout(readout_matrix(model))
        else:
            acts, grads = collect_activations_and_gradients(model, tokens, [name], _checked_metric(metric),
                                                            positions=positions, batch_size=batch_size,
                                                            forward_kwargs=forward_kwargs)
            tol = 1e-4 * float(H.abs().max()) if H is not None else 0.0
            if H is not None and not torch.allclose(acts[name].to(H.device), H, rtol=1e-3, atol=tol):
                raise ValueError(f"cache[{name!r}] differs from the model's activations for these tokens: "
                                 "was the cache made from other inputs, another model state, or in train mode?")
            H = acts[name] if H is None else H
            Wo = observability_from_gradients(grads[name])
            if not torch.any(Wo != 0):
                raise ValueError(f"the metric's gradient at {name!r} is zero for every input: use a differentiable "
                                 "behaviour (a logit margin, a log-probability), not a piecewise-constant one (accuracy)")
    finally:
        model.train(was_training)
    return Core(hook=name, result=ace(H, Wo, threshold=threshold, rank=rank), positions=positions)


def _probe(model: Any, tokens: Tensor, name: str, forward_kwargs: dict | None) -> int:
    """One forward pass on the first two sequences: the hook fires and its activation is a
    vector. Returns its dimension D."""
    seen: dict[str, Tensor] = {}

    def look(act: Tensor, hook: Any = None) -> Tensor:  # noqa: ARG001 (TransformerLens passes the HookPoint)
        seen["act"] = act
        return act

    n = tokens.shape[0]
    kwargs = {k: (v[:2] if isinstance(v, Tensor) and v.ndim and v.shape[0] == n else v) for k, v in (forward_kwargs or {}).items()}
    with torch.no_grad():
        model.run_with_hooks(tokens[:2], fwd_hooks=[(name, look)], **kwargs)
    if "act" not in seen:
        raise ValueError(f"the hook {name!r} did not fire in a forward pass of the model")
    _check_activation(seen["act"], name)
    return int(seen["act"].shape[-1])
