"""The models of a run as parameters stacked on a leading "model" axis: their initial values,
the last-position forwards that training runs on them (the native pre-LN model's own
functional forward, the paper's module called on each slice), and the hooked modules that hold
each slice for the analyses."""

from __future__ import annotations

import functools
import math
from typing import Sequence

import torch
from torch import Tensor

from ace_utils.models import stacked
from ace_utils.models.device import get_rng_state, set_rng_state, to_device
from ace_utils.models.paper import ModelVariant, PaperModelConfig, PaperTransformer, build_model
from ace_utils.models.training import move_model
from ace_utils.tasks.modular.config import GrokRun, model_config

__all__ = [
    "bridge_last_logits",
    "forward_last",
    "init_stacked",
    "paper_last_logits",
    "param_names",
    "to_models",
]

# Parameter names of the bridge's canonical state_dict that are trained (the unembedding
# bias is a constant zero buffer of the native model and is not).
_LAYER_KEYS = (
    "ln1.weight", "ln1.bias", "attn.q.weight", "attn.q.bias", "attn.k.weight", "attn.k.bias",
    "attn.v.weight", "attn.v.bias", "attn.o.weight", "attn.o.bias", "ln2.weight", "ln2.bias",
    "mlp.in.weight", "mlp.in.bias", "mlp.out.weight", "mlp.out.bias",
)


def param_names(n_layers: int) -> list[str]:
    """Trained parameter names in the bridge's state_dict order."""
    names = ["embed.weight", "pos_embed.weight"]
    for layer in range(n_layers):
        names += [f"blocks.{layer}.{k}" for k in _LAYER_KEYS]
    return names + ["ln_final.weight", "ln_final.bias", "unembed.weight"]


def init_stacked(run: GrokRun, seeds: Sequence[int] | None = None, device: str | torch.device = "cpu"
                 ) -> dict[str, Tensor]:
    """Initial parameters of ``run``'s models, stacked on a leading axis.

    Slice ``i`` is exactly the state_dict of the model of ``model_config(run, seeds[i])``
    (the trained parameters of a native bridge, :func:`param_names`; every parameter of
    the paper's module, in its own order); ``seeds`` defaults to ``run.model_seeds()`` (a
    seed may repeat: each distinct seed is built once). Returns name -> (len(seeds), ...)
    float32 leaf tensors (no grad yet) on ``device`` (the weights are drawn on the CPU, so
    they are the same on every device).
    """
    seeds = run.model_seeds() if seeds is None else list(seeds)
    states = {s: build_model(model_config(run, s)).state_dict() for s in dict.fromkeys(seeds)}
    names = list(states[seeds[0]]) if run.architecture == "paper" else param_names(run.n_layers)
    return {k: to_device(torch.stack([states[s][k].detach().float() for s in seeds]).contiguous(), device)
            for k in names}


def forward_last(
    params: dict[str, Tensor],
    x: Tensor,
    n_heads: int,
    dropout: float = 0.0,
    gen: torch.Generator | Sequence[torch.Generator] | None = None,
) -> Tensor:
    """Logits at the last position of the stacked native models.

    ``params``: name -> (M, ...) stacked parameters (:func:`init_stacked`); ``x``
    (M, N, 2) int64 tokens, one batch per model. Returns (M, N, p) float32. Pre-LN blocks,
    causal attention with scale ``1/sqrt(d_head)``, ReLU MLP, final LN, unbiased
    unembedding: the native model's forward, but the last block is computed only where
    the loss reads it (its keys/values still see both positions). With ``dropout > 0``
    and a generator (one for the stack, or a list of one per model), dropout is applied to
    the embeddings and to every attention and MLP output (the paper's post-LN encoder has dropout 0.1; the native model has none, so
    this is a training-time addition).
    """
    M, N, _ = x.shape
    D = params["embed.weight"].shape[-1]
    H, dh = n_heads, D // n_heads
    n_layers = sum(1 for k in params if k.endswith(".ln1.weight"))
    emb = torch.gather(params["embed.weight"], 1, x.reshape(M, -1, 1).expand(-1, -1, D)).reshape(M, N, 2, D)
    h = emb + params["pos_embed.weight"][:, None, :2]
    h = stacked.dropout(h, dropout, gen).reshape(M, N * 2, D)
    scale = 1.0 / math.sqrt(dh)
    for layer in range(n_layers):
        pre = f"blocks.{layer}."
        g = lambda k: params[pre + k]  # noqa: E731
        last = layer == n_layers - 1
        a = stacked.layer_norm(h, g("ln1.weight"), g("ln1.bias"))
        k = stacked.linear(a, g("attn.k.weight"), g("attn.k.bias")).reshape(M, N, 2, H, dh)
        v = stacked.linear(a, g("attn.v.weight"), g("attn.v.bias")).reshape(M, N, 2, H, dh)
        if last:
            a_q = a.reshape(M, N, 2, D)[:, :, 1]
            q = stacked.linear(a_q, g("attn.q.weight"), g("attn.q.bias")).reshape(M, N, H, dh)
            s = torch.einsum("mnhd,mnkhd->mnhk", q, k) * scale  # position 1 sees keys 0, 1
            z = torch.einsum("mnhk,mnkhd->mnhd", s.softmax(-1), v).reshape(M, N, D)
            h = h.reshape(M, N, 2, D)[:, :, 1]
        else:
            q = stacked.linear(a, g("attn.q.weight"), g("attn.q.bias")).reshape(M, N, 2, H, dh)
            s = torch.einsum("mnqhd,mnkhd->mnhqk", q, k) * scale
            s = s.masked_fill(torch.ones(2, 2, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            z = torch.einsum("mnhqk,mnkhd->mnqhd", s.softmax(-1), v).reshape(M, N * 2, D)
        h = h + stacked.dropout(stacked.linear(z, g("attn.o.weight"), g("attn.o.bias")), dropout, gen)
        m = torch.relu(stacked.linear(stacked.layer_norm(h, g("ln2.weight"), g("ln2.bias")), g("mlp.in.weight"), g("mlp.in.bias")))
        h = h + stacked.dropout(stacked.linear(m, g("mlp.out.weight"), g("mlp.out.bias")), dropout, gen)
    h = stacked.layer_norm(h, params["ln_final.weight"], params["ln_final.bias"])
    return torch.bmm(h, params["unembed.weight"].transpose(1, 2))


def to_models(params: dict[str, Tensor], run: GrokRun, device: str | torch.device = "cpu") -> list:
    """The models (eval mode, on ``device``) holding each slice of stacked ``params``:
    PaperTransformers for ``run.architecture == "paper"``, TransformerBridges otherwise."""
    models = []
    for i, s in enumerate(run.model_seeds()):
        model = move_model(build_model(model_config(run, s)), device)
        state = model.state_dict()
        state.update({k: v[i].detach().clone() for k, v in params.items()})
        model.load_state_dict(state, strict=True)
        model.eval()
        models.append(model)
    return models


@functools.lru_cache(maxsize=8)
def _paper_template(cfg: PaperModelConfig) -> PaperTransformer:
    """One module per shape: :func:`paper_last_logits` calls it with other parameters."""
    return PaperTransformer(cfg)


def paper_last_logits(
    params: dict[str, Tensor], x: Tensor, n_heads: int, dropout: float = 0.0, rng_states: list[Tensor] | None = None,
    variant: ModelVariant = ModelVariant(),
) -> Tensor:
    """Last-position logits (M, N, n_outputs) of stacked PaperTransformer ``params`` on ``x`` (M, N, pos).

    Model ``i`` is the module's own forward (``torch.func.functional_call`` of a
    :class:`~ace_utils.models.paper.PaperTransformer` with slice ``i`` of every parameter),
    so logits and gradients (into the stacked tensors) are the module's. With
    ``rng_states`` (one RNG state of ``x``'s device per model, updated in place) the module
    runs in train mode with dropout ``dropout``, drawing model ``i``'s masks from its own
    state: a model's numbers do not depend on the other models of the stack. This sets the
    device's global RNG; callers restore it (:func:`ace_utils.models.device.forked_rng`).
    Without, eval mode. The models run one after another: :func:`train_stacked`'s batched
    program uses :func:`ace_utils.models.paper.stacked_last_logits` instead. ``variant``: the
    models' :class:`~ace_utils.models.paper.ModelVariant` (its parameter names must be
    those of ``params``).
    """
    layers = sum(1 for k in params if k.endswith(".layer.linear1.weight"))
    cfg = PaperModelConfig(
        n_layers=layers, d_model=params["embed.weight"].shape[-1], n_heads=n_heads,
        d_mlp=params["blocks.0.layer.linear1.weight"].shape[1], d_vocab=params["embed.weight"].shape[1],
        d_vocab_out=params["unembed.weight"].shape[1], n_positions=params["pos_embed.weight"].shape[1],
        dropout=float(dropout), variant=variant,
    )
    model = _paper_template(cfg).train(rng_states is not None)
    out = []
    for i in range(x.shape[0]):
        if rng_states is not None:
            set_rng_state(rng_states[i], x.device)
        out.append(torch.func.functional_call(model, {k: v[i] for k, v in params.items()}, (x[i],), strict=True)[:, -1])
        if rng_states is not None:
            rng_states[i] = get_rng_state(x.device)
    return torch.stack(out)


@torch.no_grad()
def bridge_last_logits(model, x: Tensor, fwd_hooks: Sequence = ()) -> Tensor:
    """(N, p) logits at the last position through the model's hooks (any hooked model)."""
    out = model.run_with_hooks(x, fwd_hooks=list(fwd_hooks)) if fwd_hooks else model(x)
    return out[:, -1]
