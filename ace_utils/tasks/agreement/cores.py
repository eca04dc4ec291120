"""The number margin and the agreement core at every layer: margins and their AUC, ACE with the
margin's gradients at each layer, keep/remove/flip interventions, the layer sweep that picks
the core's layer, and the core coordinate of each prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ace_utils.method.ace import ACEResult, ace, observability_from_gradients
from ace_utils.method.activations import collect_activations_and_gradients
from ace_utils.method.interventions import subspace_hook
from ace_utils.models.device import model_device, to_device
from ace_utils.tasks.agreement.prompts import VERB_WORDS, PromptBatch, layer_hooks

__all__ = ["LayerCores", "ace_all_layers", "agreement_score", "core_coordinate", "edit_hooks_for",
           "intervention_margins", "auc_scorer", "knob_fit", "last_logits", "last_token_logits", "layer_sweep",
           "margin_acts_and_grads", "margins", "number_margin", "roc_auc", "separation"]

def number_margin(logits_last: Tensor, verb_ids: dict[str, int]) -> Tensor:
    """``z(are) + z(were) - z(is) - z(was)`` from last-token logits (..., V)."""
    v = verb_ids
    return logits_last[..., v["are"]] + logits_last[..., v["were"]] - logits_last[..., v["is"]] - logits_last[..., v["was"]]


def _gather_last(last: Tensor) -> Callable:
    """Hook for ``unembed.hook_in``: keep only each row's last position (B, 1, D).

    The unembedding then computes V logits for one position per row instead of all T.
    """

    def hook(act: Tensor, hook=None) -> Tensor:  # noqa: ARG001
        return act[torch.arange(act.shape[0], device=act.device), last.to(act.device)][:, None]

    return hook


def _device_of(model) -> torch.device:
    """Where a model (or the model a :class:`_LastTokenModel` wraps) keeps its parameters."""
    return model_device(model.model if isinstance(model, _LastTokenModel) else model)


def last_token_logits(model, tokens: Tensor, last: Tensor, fwd_hooks: Sequence = ()) -> Tensor:
    """(B, V) logits at each row's last position, computing only those logits (on the model's device)."""
    tokens = to_device(tokens, _device_of(model))
    out = model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks) + [("unembed.hook_in", _gather_last(last))])
    return out[:, 0]


def margins(model, batch: PromptBatch, verb_ids: dict[str, int], fwd_hooks_for: Callable | None = None,
            batch_size: int = 256) -> np.ndarray:
    """Number margin per prompt (N,), optionally with hooks ``fwd_hooks_for(last_pos_batch)``;
    computed on the model's device, returned to the host."""
    out = []
    with torch.no_grad():
        for s in range(0, len(batch.labels), batch_size):
            sl = slice(s, s + batch_size)
            hooks = fwd_hooks_for(batch.last[sl]) if fwd_hooks_for is not None else ()
            out.append(number_margin(last_token_logits(model, batch.tokens[sl], batch.last[sl], hooks), verb_ids))
    return torch.cat(out).double().cpu().numpy()


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC of ``scores`` for binary ``labels`` (Mann-Whitney form, ties count 1/2)."""
    from scipy.stats import rankdata

    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    n1, n0 = labels.sum(), (~labels).sum()
    if n1 == 0 or n0 == 0:
        raise ValueError("roc_auc needs both classes")
    r = rankdata(scores)
    return float((r[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# --------------------------------------------------------------------------- ACE at every layer


class _LastTokenModel:
    """Wraps a bridge so that ``run_with_hooks(..., last=...)`` returns last-token logits (B, 1, V)."""

    def __init__(self, model) -> None:
        self.model = model

    def run_with_hooks(self, tokens, fwd_hooks=(), last=None, **kw):
        return self.model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks) + [("unembed.hook_in", _gather_last(last))],
                                         **kw)


def margin_acts_and_grads(model, batch: PromptBatch, verb_ids: dict[str, int], hook: str,
                          batch_size: int = 100) -> tuple[Tensor, Tensor]:
    """Activations ``H`` and number-margin gradients ``G`` at ``hook``, last prompt token.

    The margin is :func:`number_margin`. Returns two (N, D) float32 tensors, the quantities
    :func:`ace_all_layers` computes for every layer (``W_o = G^T G / N``), for one layer, as
    the baselines of chapter 06 need them.
    """
    acts, grads = collect_activations_and_gradients(
        _LastTokenModel(model), to_device(batch.tokens, _device_of(model)), [hook],
        lambda logits, sl: number_margin(logits[:, 0], verb_ids),
        positions=batch.last, batch_size=batch_size, forward_kwargs={"last": batch.last},
    )
    return acts[hook], grads[hook]


@dataclass
class LayerCores:
    """ACE results per layer l = 0..L: ``results[l]`` (rank 1), hook names, train activations."""

    hooks: list[str]
    results: list[ACEResult]
    seconds: float

    @property
    def n_layers(self) -> int:
        return len(self.hooks) - 1

    def q(self, layer: int) -> Tensor:
        """(D,) the 1-D core direction at ``layer``."""
        return self.results[layer].core(1)[:, 0]


def ace_all_layers(model, batch: PromptBatch, verb_ids: dict[str, int], batch_size: int = 100) -> LayerCores:
    """1-D ACE core at every ``hidden_states[l]``, margin tail, one backward per batch.

    Activations and margin gradients at each prompt's last token for all layers come from
    :func:`collect_activations_and_gradients` (gradients through all later layers);
    ``W_o = mean g g^T``; rank fixed to 1, as in the paper and the reference code (joshseth/cores).
    """
    import time

    t0 = time.perf_counter()
    n_layers = model.cfg.n_layers
    hooks = layer_hooks(n_layers)

    def metric(logits: Tensor, sl: slice) -> Tensor:
        return number_margin(logits[:, 0], verb_ids)

    acts, grads = collect_activations_and_gradients(
        _LastTokenModel(model), to_device(batch.tokens, _device_of(model)), hooks, metric, positions=batch.last,
        batch_size=batch_size,
        forward_kwargs={"last": batch.last},
    )
    results = [ace(acts[h], observability_from_gradients(grads[h]), rank=1) for h in hooks]
    return LayerCores(hooks, results, time.perf_counter() - t0)


def edit_hooks_for(hook: str, q: Tensor, mean: Tensor, mode: str, strength: float = 1.0) -> Callable:
    """``last -> [(hook, fn)]``: keep/remove/flip of ``q`` about ``mean`` at each row's last token.

    For the ``fwd_hooks_for`` argument of :func:`margins` and :func:`last_logits`.
    """
    Q = q.reshape(-1, 1)
    return lambda last: [(hook, subspace_hook(Q, mode, mean=mean, positions=last, strength=strength))]


def intervention_margins(model, batch: PromptBatch, verb_ids: dict[str, int], hook: str, q: Tensor, mean: Tensor,
                         mode: str, strength: float = 1.0) -> np.ndarray:
    """Margins with keep/remove/flip of direction ``q`` about ``mean`` at ``hook``, last token only."""
    return margins(model, batch, verb_ids, edit_hooks_for(hook, q, mean, mode, strength))


def auc_scorer(model, batch: PromptBatch, verb_ids: dict[str, int], hook: str,
               mean: Tensor) -> Callable[[Tensor, str], float]:
    """``evaluate(Q, mode)`` for :func:`ace_utils.method.baselines.compare_subspaces`: the
    margin's ROC-AUC on ``batch`` with the direction ``Q[:, 0]`` (``Q`` (D, 1)) kept, removed or
    reflected about ``mean`` at ``hook`` (:func:`intervention_margins`)."""

    def evaluate(Q: Tensor, mode: str) -> float:
        return roc_auc(intervention_margins(model, batch, verb_ids, hook, Q[:, 0], mean, mode), batch.labels)

    return evaluate


def layer_sweep(model, cores: LayerCores, test: PromptBatch, verb_ids: dict[str, int], seed: int = 0) -> dict[str, Any]:
    """Base / keep / remove / flip / random-flip AUC at every layer, and the chosen layer.

    Interventions are centred on the training mean and touch the last prompt token only
    (as in the reference code, joshseth/cores). The random control flips one Haar-random direction (seeded by
    ``seed`` and the layer). The chosen layer minimises the flip AUC (the paper's rule);
    when several layers tie (the AUC saturates at 0), the tie is broken by the lowest
    :func:`separation` of the flipped margins, the AUC's continuous counterpart
    (``layer_first_min`` is the first tied layer, the rule read literally).
    Returns a dict of (L+1,) arrays (``keep``, ``remove``, ``flip``, ``random_flip`` AUCs
    and ``*_sep`` separations) plus ``base`` (float), ``layer`` (int), ``depth``.
    """
    base_m = margins(model, test, verb_ids)
    out: dict[str, Any] = {"base": roc_auc(base_m, test.labels), "base_margin": base_m}
    y = np.asarray(test.labels).astype(bool)
    for mode in ("keep", "remove", "flip"):
        ms = [intervention_margins(model, test, verb_ids, h, cores.q(l), cores.results[l].mean, mode)
              for l, h in enumerate(cores.hooks)]
        out[mode] = np.array([roc_auc(m, y) for m in ms])
        out[mode + "_sep"] = np.array([separation(m, y) for m in ms])
    rnd = []
    for l, h in enumerate(cores.hooks):
        g = torch.Generator().manual_seed(seed * 1000 + l)
        qr = torch.randn(cores.q(l).shape[0], generator=g, dtype=torch.float64)
        rnd.append(roc_auc(intervention_margins(model, test, verb_ids, h, qr / qr.norm(), cores.results[l].mean,
                                                "flip"), test.labels))
    out["random_flip"] = np.array(rnd)
    tied = np.flatnonzero(out["flip"] <= out["flip"].min() + 1e-12)
    out["layer_first_min"] = int(tied[0])  # the paper's rule read literally (np.argmin: first of the ties)
    out["layer"] = int(tied[np.argmin(out["flip_sep"][tied])])
    out["depth"] = np.arange(len(cores.hooks)) / cores.n_layers
    return out


def separation(m: np.ndarray, labels: np.ndarray) -> float:
    """Standardised difference of the class means, ``(mean_1 - mean_0) / pooled sd``.

    Positive when plural prompts get larger margins; unlike the AUC it does not saturate.
    """
    m, y = np.asarray(m, float), np.asarray(labels).astype(bool)
    return float((m[y].mean() - m[~y].mean()) / np.sqrt(0.5 * (m[y].var() + m[~y].var())))


def agreement_score(logits_last: Tensor, verb_ids: dict[str, int], plural: np.ndarray, past: np.ndarray | None = None
                    ) -> np.ndarray:
    """``log P(correct set) - log max_v P(v)`` over the four verbs (the reference code's
    agreement score).

    Correct set: {is, was} for singular heads, {are, were} for plural ones (tense ignored,
    as in the paper). Zero or positive when a correct verb is the most likely of the four.
    """
    z = torch.stack([logits_last[:, verb_ids[w]] for w in VERB_WORDS], 1).double()  # is, are, was, were
    pl = torch.as_tensor(np.asarray(plural, bool), device=z.device)
    correct = torch.where(pl[:, None], z[:, [1, 3]], z[:, [0, 2]])
    return (torch.logsumexp(correct, 1) - z.max(1).values).cpu().numpy()


def last_logits(model, batch: PromptBatch, fwd_hooks_for: Callable | None = None) -> Tensor:
    """(N, V) last-token logits, optionally with hooks ``fwd_hooks_for(last)``."""
    with torch.no_grad():
        hooks = fwd_hooks_for(batch.last) if fwd_hooks_for is not None else ()
        return last_token_logits(model, batch.tokens, batch.last, hooks)



def knob_fit(z: np.ndarray, m: np.ndarray) -> dict[str, float]:
    """Affine fit ``m ~ a z + b`` (z-scored both): slope, intercept, R^2."""
    zs = (z - z.mean()) / z.std()
    ms = (m - m.mean()) / m.std()
    a, b = np.polyfit(zs, ms, 1)
    r2 = 1 - ((ms - (a * zs + b)) ** 2).sum() / ((ms - ms.mean()) ** 2).sum()
    return {"slope": float(a), "intercept": float(b), "r2": float(r2)}


def core_coordinate(model, batch: PromptBatch, hook: str, q: Tensor, mean: Tensor) -> np.ndarray:
    """``z = (h - mu) . q`` at each prompt's last token at ``hook`` (N,)."""
    from ace_utils.method.activations import collect_activations

    H = collect_activations(_LastTokenModel(model), to_device(batch.tokens, _device_of(model)), [hook],
                            positions=batch.last, batch_size=256, forward_kwargs={"last": batch.last})[hook]
    return ((H.double() - mean.to(H.device).double()) @ q.to(H.device).double()).cpu().numpy()
