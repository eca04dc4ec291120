"""Modular addition ``a + b mod p``: data, fast training of seeded models, and the
per-checkpoint core analyses (core dimension, keep/remove scans, the "add 1" shift operator
on class prototypes).

Explained in chapter ``03_grokking_core`` (core formation at grokking, the rotation,
inflation) and shared with ``04_grokking_time``.

Models and site. ``GrokRun.architecture`` chooses the model: ``"paper"``, the paper's
2-layer post-LN PyTorch encoder (:class:`ace_utils.models.paper.PaperTransformer`: dropout
0.1 at PyTorch's sites, a readout with bias), or ``"pre-ln"``, a TransformerLens-native
2-layer model (:func:`ace_utils.models.native.build_native_model`: pre-LN, final LayerNorm,
unbiased unembedding; dropout added as a training-time mask). Inputs are the two tokens
``[a, b]`` (no "=" token, vocabulary ``p``); the loss and the accuracy use the last position
only. ACE runs at ``unembed.hook_in``, position -1: the activation the readout reads
*linearly* (the paper's site), so the observability Gramian is exactly ``W_U^T W_U``, and a
keep/remove projection there changes the logits by an exact affine map.

Training speed. Training runs on the models' parameters stacked on a leading "model" axis
(``n_models`` independently seeded models; AdamW is elementwise, so one optimizer over the
stacked tensors is one optimizer per model). The paper's models run their own forward
(:func:`paper_last_logits`: ``torch.func.functional_call`` of the module on each slice,
with one dropout RNG stream per model). The native models use a functional forward
(:func:`forward_last`) that computes exactly the native model's logits at the last
position and skips the work the loss never sees. Tests check both against the modules.
The stacked parameters are written back into models for every analysis (:func:`to_models`),
which runs through the TransformerLens hooks. Chapter 03 trains each model in its own
process (:func:`run_models`: one-model runs, ``workers`` at a time, each cached); the main
run and the weight-decay branch are separate cached stages (:func:`run_main`,
:func:`run_branch`), and :func:`run_experiment_resumable` trains a long run in saved
segments. Training is float32 unless ``GrokRun.precision`` asks for bfloat16 autocast
(native models only).
"""

from __future__ import annotations

import functools
import io
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ace_utils.book.cache import cached
from ace_utils.book.processes import map_in_processes
from ace_utils.method.ace import ace, observability_from_readout
from ace_utils.method.operators import fit_operator, rotational_mode_count
from ace_utils.models import SmallModelConfig, readout_bias, readout_matrix, stacked
from ace_utils.models.device import (
    as_device,
    batched_default,
    cache_tag,
    forked_rng,
    get_rng_state,
    model_device,
    set_rng_state,
    synchronize,
    to_device,
)
from ace_utils.models.paper import (
    ARCHITECTURES,
    ModelVariant,
    PaperModelConfig,
    PaperTransformer,
    build_model,
    check_architecture,
    check_variant,
    stacked_last_logits,
    without_default_variant,
)
from ace_utils.models.training import move_model
from ace_utils.models.precision import autocast, check_precision
from ace_utils.models.training import Clock, Event, run_loop

__all__ = [
    "ACE_HOOK",
    "ENERGY_THRESHOLD",
    "PRESETS",
    "GrokRun",
    "ModData",
    "make_data",
    "model_config",
    "init_stacked",
    "forward_last",
    "ARCHITECTURES",
    "to_models",
    "bridge_last_logits",
    "train_stacked",
    "param_names",
    "evaluate_stacked",
    "last_position_activations",
    "scan_keep_remove",
    "core_dimensions",
    "class_prototypes",
    "shift_operator",
    "in_sample_r2",
    "checkpoint_schedule",
    "analyse_checkpoint",
    "grok_epoch",
    "run_main",
    "run_branch",
    "run_experiment",
    "run_experiment_resumable",
    "single_runs",
    "run_models",
    "run_models_resumable",
    "resumable_path",
    "preset_run",
    "curves_record",
    "save_curves",
    "load_curves",
]

ACE_HOOK = "unembed.hook_in"  # the readout's input (= ln_final.hook_out on the native models)
ENERGY_THRESHOLD = 0.99  # the reference code (joshseth/cores) uses 0.99 for mod-add
CACHE_VERSION = 3

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


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ModData:
    """All ``p^2`` pairs split once. ``train_x`` (n_train, 2) / ``test_x`` (n_test, 2) int64
    tokens ``[a, b]``; ``train_y`` / ``test_y`` the targets ``(a + b) mod p``."""

    p: int
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor

    def to(self, device: str | torch.device) -> "ModData":
        """The same split with its tensors on ``device`` (this object where they are there)."""
        moved = {k: to_device(getattr(self, k), device) for k in ("train_x", "train_y", "test_x", "test_y")}
        return self if all(moved[k] is getattr(self, k) for k in moved) else replace(self, **moved)


def make_data(p: int = 53, train_frac: float = 0.5, split_seed: int = 42) -> ModData:
    """The paper's split: a permutation of the ``p^2`` pairs from ``RandomState(split_seed)``,
    the first ``int(train_frac p^2)`` pairs train, the rest test (p = 53: 1404 / 1405)."""
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    x = np.stack([a.ravel(), b.ravel()], 1).astype(np.int64)
    y = (x[:, 0] + x[:, 1]) % p
    perm = np.random.RandomState(split_seed).permutation(p * p)
    n_train = int(train_frac * p * p)
    tr, te = perm[:n_train], perm[n_train:]
    t = torch.from_numpy
    return ModData(p, t(x[tr]), t(y[tr]), t(x[te]), t(y[te]))


# --------------------------------------------------------------------------- run spec


@dataclass(frozen=True)
class GrokRun:
    """Everything that determines one training run of ``n_models`` models (the cache key).

    Model ``i`` is initialised from ``seed + 1000 i`` and draws its batch order from
    generators seeded by ``seed + 1000 i`` and the epoch; the dropout masks of all models
    come from one generator seeded by ``seed`` (and the branch). The train/test split is
    the paper's fixed ``RandomState(split_seed)`` permutation, the same for every model.
    ``checkpoint_epochs`` are analysed (epoch 0 = initialisation); ``eval_every``: how
    often train/test accuracy is logged. ``branch_epoch`` > 0 also continues the run from
    that epoch with ``branch_weight_decay`` and a fresh AdamW (the paper's WD 1->0).
    ``precision``: ``"fp32"`` (default) or ``"bf16"`` autocast for the training
    forward/backward (:mod:`ace_utils.models.precision`; evaluation and analyses always run in
    float32). ``architecture``: ``"pre-ln"`` (TransformerLens-native models) or ``"paper"``
    (the paper's post-LN module; float32 only). ``variant``: the paper's model with some
    of its design choices changed (:class:`~ace_utils.models.paper.ModelVariant`;
    ``architecture="paper"`` only). Chapter 03 builds its runs with :func:`preset_run`.
    """

    seed: int = 0
    n_models: int = 2
    p: int = 53
    train_frac: float = 0.5
    split_seed: int = 42
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    lr: float = 1e-3
    weight_decay: float = 1.0
    batch_size: int = 512
    dropout: float = 0.1
    precision: str = "fp32"
    epochs: int = 800
    eval_every: int = 10
    checkpoint_epochs: tuple[int, ...] = tuple(range(0, 801, 50))
    branch_epoch: int = 500
    branch_weight_decay: float = 0.0
    architecture: str = "pre-ln"
    variant: ModelVariant = ModelVariant()

    def __post_init__(self) -> None:
        check_precision(self.precision)
        check_architecture(self.architecture)
        if self.architecture == "paper" and self.precision != "fp32":
            raise ValueError("precision must be 'fp32' with architecture='paper'")
        check_variant(self.variant, self.architecture)

    def to_dict(self) -> dict:
        """The fields as a plain dict, ``variant`` left out when it is the paper's (cache keys)."""
        return without_default_variant(asdict(self))

    def model_seeds(self) -> list[int]:
        return [self.seed + 1000 * i for i in range(self.n_models)]


def model_config(run: GrokRun, model_seed: int) -> SmallModelConfig | PaperModelConfig:
    """The model's shape for ``run`` with initial weights from ``model_seed``: the paper's
    post-LN model (64 learned positions, dropout ``run.dropout``) or the native pre-LN one."""
    sizes = dict(n_layers=run.n_layers, d_model=run.d_model, n_heads=run.n_heads, d_mlp=run.d_mlp, seed=int(model_seed))
    if run.architecture == "paper":
        return PaperModelConfig(d_vocab=run.p, dropout=run.dropout, variant=run.variant, **sizes)
    return SmallModelConfig(n_ctx=2, d_vocab=run.p, act_fn="relu", **sizes)


def _is_paper(params: dict[str, Tensor]) -> bool:
    """Whether stacked ``params`` are a :class:`~ace_utils.models.paper.PaperTransformer`'s (any variant)."""
    return "blocks.0.layer.linear1.weight" in params


# --------------------------------------------------------------------------- functional model


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


# --------------------------------------------------------------------------- training


def _batch_perms(run: GrokRun, epoch: int, n: int, offset: int = 0) -> Tensor:
    """(M, n) per-model permutations of the training rows for one epoch."""
    return torch.stack([
        torch.randperm(n, generator=torch.Generator().manual_seed(s * 100_003 + offset + epoch))
        for s in run.model_seeds()
    ])


def _stacked_forward(paper: bool, batched: bool, variant: ModelVariant) -> bool:
    """Whether the paper's models run :func:`~ace_utils.models.paper.stacked_last_logits` (the
    batched program, the paper's model only) rather than the module model by model."""
    return paper and batched and variant.is_paper


@torch.no_grad()
def _accuracy_loss(params: dict[str, Tensor], x: Tensor, y: Tensor, n_heads: int, variant: ModelVariant,
                   batched: bool) -> tuple[Tensor, Tensor]:
    """(accuracy, mean loss) per model, each an (M,) tensor on the parameters' device."""
    M = params["embed.weight"].shape[0]
    paper = _is_paper(params)
    if _stacked_forward(paper, batched, variant):
        logits = stacked_last_logits(params, x.expand(M, -1, -1), n_heads)
    elif paper:
        logits = paper_last_logits(params, x.expand(M, -1, -1), n_heads, variant=variant)
    else:
        logits = forward_last(params, x.expand(M, -1, -1), n_heads)
    acc = (logits.argmax(-1) == y).float().mean(1)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(M), reduction="none").reshape(M, -1).mean(1)
    return acc, loss


def evaluate_stacked(params: dict[str, Tensor], x: Tensor, y: Tensor, n_heads: int,
                     variant: ModelVariant = ModelVariant(), batched: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy, mean loss) per model, each (M,), at the last position on (x, y); ``variant``
    for the paper's models' variants; ``batched``: the paper's models through the batched
    program (as :func:`train_stacked` with ``batched=True`` trains them)."""
    acc, loss = _accuracy_loss(params, x.to(params["embed.weight"].device), y.to(params["embed.weight"].device),
                               n_heads, variant, batched)
    return acc.cpu().numpy().astype(float), loss.cpu().numpy().astype(float)


def train_stacked(
    run: GrokRun,
    data: ModData,
    params: dict[str, Tensor],
    *,
    start_epoch: int,
    end_epoch: int,
    weight_decay: float,
    on_checkpoint=None,
    stream: int = 0,
    progress: bool = False,
    state: dict | None = None,
    batched: bool | None = None,
) -> dict[str, np.ndarray]:
    """Train the stacked models from ``start_epoch`` to ``end_epoch`` (completed epochs), in place.

    Everything runs on the device of ``params`` (``data`` is moved there once); no optimizer
    step waits for the device: the logged numbers stay there until the call returns.
    ``batched`` (default: :func:`ace_utils.models.device.batched_default`, True off the CPU):
    the paper's models (the paper's variant) train through
    :func:`~ace_utils.models.paper.stacked_last_logits`, one batched computation with one
    dropout generator per model on the device, and are evaluated on train and test pairs in
    one forward; without, each model runs the module's own forward in turn with its own
    global-RNG stream (the CPU program the committed results were made with). The native
    models are one batched computation either way.

    ``state`` continues an earlier call: pass a dict, empty for a fresh start; it is filled
    at the end with the optimizer state and the dropout RNG states, and a later call given
    that dict (and the same ``params``) from its ``end_epoch`` on continues exactly as one
    uninterrupted call would (the start epoch, already logged and checkpointed by the
    earlier call, is not again; segment ends must be multiples of ``run.eval_every``).

    AdamW (lr ``run.lr``, default betas, ``weight_decay``), created fresh here; batches of
    ``run.batch_size`` from per-model permutations (seeded by model seed, epoch and
    ``stream``); loss = cross-entropy at the last position. Every ``run.eval_every``
    epochs (and at ``end_epoch``) train and test accuracy/loss are logged;
    ``on_checkpoint(epoch, params)`` is called at ``run.checkpoint_epochs`` within range.
    Returns ``{"epoch": (T,), "train_acc", "test_acc", "train_loss", "test_loss": (T, M),
    "train_wall_s", "train_cpu_s": (T,) cumulative seconds of training and logging up to each
    logged epoch (checkpoint analyses excluded), "wall_s", "cpu_s": the whole call, analyses
    included}``.
    """
    device = params["embed.weight"].device
    batched = batched_default(device) if batched is None else batched
    data = data.to(device)
    for v in params.values():
        v.requires_grad_(True)
    opt = torch.optim.AdamW(list(params.values()), lr=run.lr, weight_decay=weight_decay)
    paper = _is_paper(params)
    stacked_forward = _stacked_forward(paper, batched, run.variant)
    gen = (torch.Generator(device=device).manual_seed(run.seed * 7919 + stream * 104_729 + start_epoch)
           if run.dropout > 0 else None)
    rng_states: list[Tensor] = []
    gens: list[torch.Generator] = []  # the batched program's: one per model, seeded like rng_states
    if stacked_forward:
        gens = [torch.Generator(device=device).manual_seed(model_seed * 7919 + stream * 104_729 + start_epoch)
                for model_seed in run.model_seeds()]
    elif paper:  # the modules' dropout draws from the global RNG: one state per model, seeded like gen
        with forked_rng(device):
            for model_seed in run.model_seeds():
                torch.manual_seed(model_seed * 7919 + stream * 104_729 + start_epoch)
                rng_states.append(get_rng_state(device))
    resuming = bool(state)
    if resuming:
        if start_epoch % run.eval_every:
            raise ValueError(f"a continued run must start at a multiple of eval_every = {run.eval_every}")
        opt.load_state_dict(state["optimizer"])
        if gen is not None:
            gen.set_state(state["gen"])
        if gens:
            for g, t in zip(gens, state["rng_states"]):
                g.set_state(t)
        else:
            rng_states = [t.clone() for t in state["rng_states"]]
    n = data.train_x.shape[0]
    log: dict[str, list] = {k: [] for k in ("epoch", "train_acc", "test_acc", "train_loss", "test_loss",
                                             "train_wall_s", "train_cpu_s")}
    ckpts = frozenset(run.checkpoint_epochs)
    clock = Clock()  # checkpoint analyses paused: train_*_s count training and logging only
    if batched:
        both_x, both_y = torch.cat([data.train_x, data.test_x]), torch.cat([data.train_y, data.test_y])

    def record(epoch: int) -> None:  # the numbers stay on the device until the end
        wall, cpu = clock.elapsed()
        log["train_wall_s"].append(wall)
        log["train_cpu_s"].append(cpu)
        if batched:  # train and test pairs in one forward, one mean each
            acc, loss = _accuracy_loss_split(params, both_x, both_y, n, run.n_heads, run.variant)
            (tr_acc, te_acc), (tr_loss, te_loss) = acc, loss
        else:
            tr_acc, tr_loss = _accuracy_loss(params, data.train_x, data.train_y, run.n_heads, run.variant, False)
            te_acc, te_loss = _accuracy_loss(params, data.test_x, data.test_y, run.n_heads, run.variant, False)
        for k, v in zip(("epoch", "train_acc", "test_acc", "train_loss", "test_loss"), (epoch, tr_acc, te_acc, tr_loss, te_loss)):
            log[k].append(v)

    def update(epoch: int) -> None:
        perms = to_device(_batch_perms(run, epoch - 1, n, offset=stream * 7_777_777), device)
        for s in range(0, n, run.batch_size):
            idx = perms[:, s : s + run.batch_size]
            if stacked_forward:
                logits = stacked_last_logits(params, data.train_x[idx], run.n_heads, run.dropout, gens)
            elif paper:
                with forked_rng(device):
                    logits = paper_last_logits(params, data.train_x[idx], run.n_heads, run.dropout, rng_states,
                                               run.variant)
            else:
                with autocast(run.precision, device.type):
                    logits = forward_last(params, data.train_x[idx], run.n_heads, run.dropout, gen)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), data.train_y[idx].reshape(-1))
            # mean over models of each model's mean loss: gradients per model are unchanged up to 1/M
            opt.zero_grad(set_to_none=True)
            (loss * logits.shape[0]).backward()
            opt.step()

    events = [Event(record, every=run.eval_every, at=frozenset({end_epoch}))]
    if on_checkpoint is not None:
        events.append(Event(lambda epoch: on_checkpoint(epoch, params), at=ckpts, timed=False))
    if start_epoch == 0 and not resuming:
        record(0)
    if on_checkpoint is not None and start_epoch in ckpts and not resuming:
        with clock.paused():
            on_checkpoint(start_epoch, params)
    run_loop(update, start=start_epoch, stop=end_epoch, events=events, clock=clock, progress=progress,
             desc="mod-add training")
    for v in params.values():
        v.requires_grad_(False)
    if state is not None:
        state.update(optimizer=opt.state_dict(), gen=None if gen is None else gen.get_state(),
                     rng_states=[g.get_state() for g in gens] if gens else [t.clone() for t in rng_states])
    synchronize(device)
    out = {k: np.asarray([_host(x) for x in v], dtype=float) for k, v in log.items()}
    out["wall_s"], out["cpu_s"] = clock.total()
    return out


def _host(x):
    """A logged value as the host has it: a tensor as a float64 NumPy array, anything else as is."""
    return x.cpu().numpy().astype(float) if isinstance(x, Tensor) else x


@torch.no_grad()
def _accuracy_loss_split(params: dict[str, Tensor], x: Tensor, y: Tensor, n_first: int, n_heads: int,
                         variant: ModelVariant) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Batched evaluation of :func:`train_stacked`: one forward over ``x`` (N, pos), then
    ((acc of rows < n_first, acc of the rest), (their mean losses)), each (M,)."""
    M = params["embed.weight"].shape[0]
    if _stacked_forward(_is_paper(params), True, variant):
        logits = stacked_last_logits(params, x.expand(M, -1, -1), n_heads)
    elif _is_paper(params):
        logits = paper_last_logits(params, x.expand(M, -1, -1), n_heads, variant=variant)
    else:
        logits = forward_last(params, x.expand(M, -1, -1), n_heads)
    hit = (logits.argmax(-1) == y).float()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(M), reduction="none").reshape(M, -1)
    return ((hit[:, :n_first].mean(1), hit[:, n_first:].mean(1)),
            (loss[:, :n_first].mean(1), loss[:, n_first:].mean(1)))


# --------------------------------------------------------------------------- analyses


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


# --------------------------------------------------------------------------- the experiment

# 'paper': the reference schedule (20,000 epochs; checkpoints every 100 epochs to 2,000,
# then every 500; the WD 1->0 branch from epoch 900). 'default': the first 800 epochs
# (our models grok near epoch 400; 800 keeps one model's training under 300 s on a 2-core
# AVX2 CPU) with checkpoints every 50 epochs and the WD 1->0 branch from epoch 500, about
# 100 epochs after grokking (as the paper's 900 is after its 800).
PRESETS = {
    "default": dict(epochs=800, checkpoint_every=50, branch_epoch=500),
    "paper": dict(epochs=20000, checkpoint_every=100, branch_epoch=900),
}
# The paper's models grok later (near epoch 700, as the reference code's do on a CPU), so
# their default preset runs 1000 epochs with the branch at 800 (the reference code's
# "quick" preset).
DEFAULT_PAPER_MODELS = dict(epochs=1000, checkpoint_every=50, branch_epoch=800)


def checkpoint_schedule(epochs: int, every: int, sparse_after: int = 2000, sparse_every: int = 500) -> tuple[int, ...]:
    """Epochs analysed: 0, every ``every`` epochs up to ``sparse_after``, then every
    ``sparse_every`` (the paper's 100 / 2,000 / 500), and the last epoch."""
    eps = set(range(0, min(epochs, sparse_after) + 1, every))
    eps |= set(range(sparse_after, epochs + 1, sparse_every)) if epochs > sparse_after else set()
    eps.add(epochs)
    return tuple(sorted(eps))


def _analyse_stacked(bridges: list, params: dict[str, Tensor], data: ModData) -> list[dict]:
    """Load model i's slice of the stacked ``params`` into ``bridges[i]`` and analyse each."""
    for i, model in enumerate(bridges):
        state = model.state_dict()
        state.update({k: v[i].detach().clone() for k, v in params.items()})
        model.load_state_dict(state, strict=True)
    return [analyse_checkpoint(m, data) for m in bridges]


def _stack_analyses(rows: list[list[dict]]) -> dict[str, np.ndarray]:
    """Per-checkpoint lists (one dict per model) -> arrays (n_ckpt, M, ...)."""
    out: dict[str, np.ndarray] = {}
    for key in rows[0][0]:
        if key == "eigenvalues":
            # ragged (k varies): pad with nan to the largest k
            kmax = max(len(d[key]) for row in rows for d in row)
            arr = np.full((len(rows), len(rows[0]), max(kmax, 1)), np.nan + 0j)
            for i, row in enumerate(rows):
                for j, d in enumerate(row):
                    arr[i, j, : len(d[key])] = d[key]
            out[key] = arr
        else:
            out[key] = np.array([[d[key] for d in row] for row in rows], dtype=float)
    return out


def _run_branch(run: GrokRun, data: ModData, params: dict[str, Tensor], start: int, end: int, weight_decay: float,
                stream: int, progress: bool, batched: bool = False) -> dict:
    bridges = to_models(params, run, params["embed.weight"].device)
    rows: list[list[dict]] = []
    epochs: list[int] = []

    def on_ckpt(epoch: int, p: dict[str, Tensor]) -> None:
        rows.append(_analyse_stacked(bridges, p, data))
        epochs.append(epoch)

    log = train_stacked(run, data, params, start_epoch=start, end_epoch=end, weight_decay=weight_decay,
                        on_checkpoint=on_ckpt, stream=stream, progress=progress, batched=batched)
    return {"log": log, "ckpt_epoch": np.array(epochs, dtype=float), "ckpt": _stack_analyses(rows)}


def _program(device: str | torch.device, batched: bool | None) -> tuple[torch.device, bool, dict]:
    """(device, batched, what the cache keys add): nothing for the CPU program the committed
    results use, the device kind and ``"program": "batched"`` otherwise."""
    device = as_device(device)
    batched = batched_default(device) if batched is None else batched
    return device, batched, {**cache_tag(device), **({"program": "batched"} if batched else {})}


def _on_host(params: dict[str, Tensor] | None) -> dict[str, Tensor] | None:
    """Detached CPU copies of stacked parameters (what the cache stores and the chapters read)."""
    return None if params is None else {k: v.detach().cpu().clone() for k, v in params.items()}


def _branch_run(run: GrokRun) -> GrokRun:
    """``run`` with the branch point added to its checkpoints (its parameters are kept there)."""
    ck = set(run.checkpoint_epochs) | ({run.branch_epoch} if run.branch_epoch > 0 else set())
    return replace(run, checkpoint_epochs=tuple(sorted(ck)))


def run_main(run: GrokRun, *, progress: bool = False, refresh: bool = False, device: str | torch.device = "cpu",
             batched: bool | None = None) -> dict:
    """Train the main run of ``run`` (cached) and analyse its checkpoints, on ``device``
    (``batched``: :func:`train_stacked`'s; parameters come back on the CPU).

    Returns ``{"main": branch record, "final_params", "branch_params" (the parameters at
    ``run.branch_epoch``, or None), "train_cpu_s"}``; a branch record is ``{"log":
    train_stacked's log, "ckpt_epoch": (C,), "ckpt": {name: (C, M, ...)}}`` with the keys of
    :func:`analyse_checkpoint`. Cached under ``modular`` keyed by ``run``, the torch version and
    (off the CPU program) the device kind and program.
    """
    device, batched, tag = _program(device, batched)
    key = {"task": "modular-main", "version": CACHE_VERSION, "torch": torch.__version__, "run": run.to_dict(), **tag}

    def build() -> dict:
        torch.manual_seed(run.seed)
        t_cpu = time.process_time()
        data = make_data(run.p, run.train_frac, run.split_seed).to(device)
        params = init_stacked(run, device=device)
        keep_epoch = run.branch_epoch if run.branch_epoch > 0 else None
        bridges = to_models(params, run, device)
        rows: list[list[dict]] = []
        epochs: list[int] = []
        saved: dict[str, dict] = {}

        def on_ckpt(epoch: int, p: dict[str, Tensor]) -> None:
            if epoch == keep_epoch:
                saved["branch"] = {k: v.detach().clone() for k, v in p.items()}
            if epoch in run.checkpoint_epochs:
                rows.append(_analyse_stacked(bridges, p, data))
                epochs.append(epoch)

        log = train_stacked(_branch_run(run), data, params, start_epoch=0, end_epoch=run.epochs,
                            weight_decay=run.weight_decay, on_checkpoint=on_ckpt, progress=progress, batched=batched)
        return {
            "main": {"log": log, "ckpt_epoch": np.array(epochs, dtype=float), "ckpt": _stack_analyses(rows)},
            "final_params": _on_host(params),
            "branch_params": _on_host(saved.get("branch")),
            "train_cpu_s": time.process_time() - t_cpu,
        }

    return cached(key, build, name="modular", refresh=refresh)


def run_branch(run: GrokRun, *, progress: bool = False, refresh: bool = False, device: str | torch.device = "cpu",
               batched: bool | None = None) -> dict | None:
    """The weight-decay branch of ``run`` (cached; None if ``run.branch_epoch`` is 0), on
    ``device`` (the main run's, cached under the same device and program).

    Continues the main run's parameters at ``run.branch_epoch`` (:func:`run_main`, cached)
    with ``run.branch_weight_decay`` and a fresh AdamW to ``run.epochs``; its checkpoints
    are those of the main run from the branch point on. Returns ``{"branch": branch
    record, "train_cpu_s"}``.
    """
    if run.branch_epoch <= 0:
        return None
    device, batched, tag = _program(device, batched)
    key = {"task": "modular-branch", "version": CACHE_VERSION, "torch": torch.__version__, "run": run.to_dict(), **tag}

    def build() -> dict:
        start = run_main(run, progress=progress, device=device, batched=batched)["branch_params"]
        t_cpu = time.process_time()
        data = make_data(run.p, run.train_frac, run.split_seed).to(device)
        params = {k: to_device(v.clone(), device) for k, v in start.items()}
        branch_run = replace(run, checkpoint_epochs=tuple(e for e in run.checkpoint_epochs if e >= run.branch_epoch))
        branch = _run_branch(branch_run, data, params, run.branch_epoch, run.epochs, run.branch_weight_decay, 1, progress,
                             batched)
        return {"branch": branch, "train_cpu_s": time.process_time() - t_cpu}

    return cached(key, build, name="modular", refresh=refresh)


def run_experiment(run: GrokRun, *, progress: bool = False, refresh: bool = False, device: str | torch.device = "cpu",
                   batched: bool | None = None) -> dict:
    """Both parts of ``run`` trained as one stack of ``run.n_models`` models: :func:`run_main`
    and :func:`run_branch` merged into ``{"main", "branch" (or None), "final_params",
    "branch_params", "train_cpu_s"}``."""
    main = run_main(run, progress=progress, refresh=refresh, device=device, batched=batched)
    branch = run_branch(run, progress=progress, refresh=refresh, device=device, batched=batched)
    return {**main, "branch": branch["branch"] if branch else None,
            "train_cpu_s": main["train_cpu_s"] + (branch["train_cpu_s"] if branch else 0.0)}


def _concat_logs(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Segment logs of :func:`train_stacked` -> one log (cumulative times continued)."""
    out: dict[str, np.ndarray] = {}
    for k in parts[0]:
        if k in ("wall_s", "cpu_s"):
            out[k] = float(sum(p[k] for p in parts))
        elif k in ("train_wall_s", "train_cpu_s"):
            offsets = np.cumsum([0.0] + [p[k][-1] if len(p[k]) else 0.0 for p in parts[:-1]])
            out[k] = np.concatenate([p[k] + o for p, o in zip(parts, offsets)])
        else:
            out[k] = np.concatenate([p[k] for p in parts])
    return out


def run_experiment_resumable(
    run: GrokRun, path, *, segment_epochs: int = 500, max_segments: int | None = None, stop_after_main: bool = False,
    progress: bool = False, device: str | torch.device = "cpu", batched: bool | None = None,
) -> dict | None:
    """:func:`run_experiment` (main run and weight-decay branch), trained in segments of
    ``segment_epochs`` with the whole state written to ``path`` (a ``.pt`` file) after each.

    A call finds the file and continues from its last segment, so a long run (the paper
    preset: 20,000 epochs) survives interruptions: rerun the same command. Optimizer
    moments, dropout RNG states, logs and checkpoint analyses are carried across segments,
    so the result equals one uninterrupted run's (a test checks this). ``max_segments``
    stops after that many segments in this call and returns None (the run is unfinished);
    otherwise returns the dict of :func:`run_experiment` (``train_cpu_s`` summed over
    calls). With ``stop_after_main`` the call stops once the main run is finished and returns
    its result with ``"branch": None`` (a later call trains the branch). ``segment_epochs``
    must be a multiple of ``run.eval_every``. Trains on ``device`` (``batched``: as
    :func:`train_stacked`); the state file names them, so a run is continued only with the
    program and device kind it started on.
    """
    from pathlib import Path

    from ace_utils.book.cache import write_bytes_atomic
    if segment_epochs < 1 or segment_epochs % run.eval_every:
        raise ValueError(f"segment_epochs must be a positive multiple of eval_every = {run.eval_every}")
    path = Path(path)
    device, batched, tag = _program(device, batched)
    key = {"version": CACHE_VERSION, "torch": torch.__version__, "run": run.to_dict(), **tag}
    if path.exists():
        saved = torch.load(path, weights_only=False, map_location="cpu")
        if saved["key"] != key:
            raise ValueError(f"{path} holds another run ({saved['key']['run']}); remove it or choose another path")
        saved["params"] = {k: to_device(v, device) for k, v in saved["params"].items()}
    else:
        saved = {"key": key, "stage": "main", "epoch": 0, "params": init_stacked(run, device=device), "state": {},
                 "logs": {"main": [], "branch": []}, "rows": {"main": [], "branch": []},
                 "ckpt_epoch": {"main": [], "branch": []}, "branch_params": None, "cpu_s": 0.0}
    data = make_data(run.p, run.train_frac, run.split_seed).to(device)
    models = to_models(saved["params"], run, device)
    done = 0
    while (saved["stage"] != "done" and (max_segments is None or done < max_segments)
           and not (stop_after_main and saved["stage"] != "main")):
        stage, start = saved["stage"], saved["epoch"]
        end = min(run.epochs, (start // segment_epochs + 1) * segment_epochs)
        main = stage == "main"
        seg_run = _branch_run(run) if main else replace(
            run, checkpoint_epochs=tuple(e for e in run.checkpoint_epochs if e >= run.branch_epoch))

        def on_ckpt(epoch: int, p: dict[str, Tensor], stage: str = stage) -> None:
            if stage == "main" and epoch == run.branch_epoch:
                saved["branch_params"] = _on_host(p)
            if epoch in run.checkpoint_epochs:
                saved["rows"][stage].append(_analyse_stacked(models, p, data))
                saved["ckpt_epoch"][stage].append(epoch)

        c0 = time.process_time()
        log = train_stacked(seg_run, data, saved["params"], start_epoch=start, end_epoch=end,
                            weight_decay=run.weight_decay if main else run.branch_weight_decay, on_checkpoint=on_ckpt,
                            stream=0 if main else 1, progress=progress, state=saved["state"], batched=batched)
        saved["cpu_s"] += time.process_time() - c0
        saved["logs"][stage].append(log)
        saved["epoch"] = end
        if end == run.epochs:
            saved["final_params" if main else "branch_final"] = _on_host(saved["params"])
            if main and run.branch_epoch > 0:  # the branch: from the kept parameters, a fresh AdamW
                saved.update(stage="branch", epoch=run.branch_epoch, state={},
                             params={k: to_device(v.clone(), device) for k, v in saved["branch_params"].items()})
            else:
                saved["stage"] = "done"
        buf = io.BytesIO()
        torch.save(saved, buf)
        write_bytes_atomic(path, buf.getvalue())
        done += 1
    if saved["stage"] == "main" or (saved["stage"] == "branch" and not stop_after_main):
        return None

    def record(stage: str) -> dict:
        return {"log": _concat_logs(saved["logs"][stage]), "ckpt_epoch": np.array(saved["ckpt_epoch"][stage], dtype=float),
                "ckpt": _stack_analyses(saved["rows"][stage])}

    with_branch = saved["stage"] == "done" and run.branch_epoch > 0
    return {"main": record("main"), "branch": record("branch") if with_branch else None,
            "final_params": saved["final_params"], "branch_params": saved["branch_params"], "train_cpu_s": saved["cpu_s"]}


def single_runs(run: GrokRun) -> list[GrokRun]:
    """``run`` as ``run.n_models`` one-model runs, model ``i`` seeded ``run.seed + 1000 i``."""
    return [replace(run, seed=s, n_models=1) for s in run.model_seeds()]


def _stage_in_worker(stage: str, run: GrokRun, device: str = "cpu") -> dict | None:
    torch.set_num_threads(1)
    return run_main(run, device=device, batched=False) if stage == "main" else run_branch(run, device=device, batched=False)


def _merge_records(records: list[dict]) -> dict:
    """One-model branch records -> one record with models on axis 1 (wall: the longest, CPU: summed)."""
    log = {}
    for k, v in records[0]["log"].items():
        vals = [r["log"][k] for r in records]
        if k == "epoch":
            log[k] = vals[0]
        elif k in ("train_cpu_s", "cpu_s"):
            log[k] = np.sum(vals, axis=0)
        elif k in ("train_wall_s", "wall_s"):
            log[k] = np.max(vals, axis=0)
        else:
            log[k] = np.concatenate(vals, axis=1)
    ckpt = {}
    for k in records[0]["ckpt"]:
        arrs = [r["ckpt"][k] for r in records]
        if k == "eigenvalues":  # ragged: pad to the widest
            width = max(a.shape[-1] for a in arrs)
            arrs = [np.concatenate([a, np.full(a.shape[:-1] + (width - a.shape[-1],), np.nan + 0j)], -1) for a in arrs]
        ckpt[k] = np.concatenate(arrs, axis=1)
    return {"log": log, "ckpt_epoch": records[0]["ckpt_epoch"], "ckpt": ckpt}


def _cat_params(outs: list[dict], key: str) -> dict[str, Tensor] | None:
    """One-model runs' stacked parameters ``outs[i][key]`` -> one stack (None if absent)."""
    return None if outs[0][key] is None else {n: torch.cat([o[key][n] for o in outs]) for n in outs[0][key]}


def run_models(run: GrokRun, stage: str, *, workers: int = 2, device: str | torch.device = "cpu",
               batched: bool | None = None) -> dict | None:
    """One stage (``"main"`` or ``"branch"``) of ``run`` with every model trained on its own,
    ``workers`` models at a time in fresh processes with one torch thread each (cached per
    model). A model's numbers do not depend on ``workers`` or on the other models.

    On ``device`` with ``batched`` (default: off the CPU) the models train instead as one
    batched stack in this process (:func:`run_main`, :func:`run_branch`); off the CPU without
    it, one after another in this process.

    ``"main"`` returns :func:`run_main`'s keys, ``"branch"`` :func:`run_branch`'s (None
    without a branch), with the models stacked on the model axis.
    """
    if stage not in ("main", "branch"):
        raise ValueError(f"stage must be 'main' or 'branch', got {stage!r}")
    if stage == "branch" and run.branch_epoch <= 0:
        return None
    device, batched, _ = _program(device, batched)
    if batched:
        stage_fn = run_main if stage == "main" else run_branch
        return stage_fn(run, device=device, batched=True)
    runs = single_runs(run)
    workers = workers if device.type == "cpu" else 1
    outs = map_in_processes(_stage_in_worker, ([stage] * len(runs), runs, [str(device)] * len(runs)), workers)
    merged: dict = {"train_cpu_s": float(sum(o["train_cpu_s"] for o in outs))}
    merged[stage] = _merge_records([o[stage] for o in outs])
    if stage == "main":
        for k in ("final_params", "branch_params"):
            merged[k] = _cat_params(outs, k)
    return merged


def _resumable_in_worker(run: GrokRun, path: str, segment_epochs: int, max_segments: int | None,
                         stop_after_main: bool, device: str = "cpu") -> dict | None:
    torch.set_num_threads(1)
    return run_experiment_resumable(run, path, segment_epochs=segment_epochs, max_segments=max_segments,
                                    stop_after_main=stop_after_main, device=device, batched=False)


def resumable_path(run: GrokRun, device: str | torch.device = "cpu", batched: bool | None = None):
    """Where :func:`run_models_resumable` keeps the state of ``run`` (a one-model run, or the
    whole stack of the batched program on ``device``): in the ace-book cache, named by the
    run's configuration (and, off the CPU program, the device kind and program)."""
    from ace_utils.book.cache import cache_dir, config_key
    _, _, tag = _program(device, batched)
    key = {"task": "modular-resumable", "version": CACHE_VERSION, "torch": torch.__version__, "run": run.to_dict(),
           **tag}
    return cache_dir() / "modular" / f"resumable-{config_key(key)[:24]}.pt"


def run_models_resumable(
    run: GrokRun, *, workers: int = 2, segment_epochs: int = 500, max_segments: int | None = None,
    stop_after_main: bool = False, device: str | torch.device = "cpu", batched: bool | None = None,
) -> dict | None:
    """The main run and the weight-decay branch of ``run``, every model on its own (as
    :func:`run_models`, ``workers`` processes with one torch thread each), each model a
    resumable run (:func:`run_experiment_resumable`) whose state lives in the cache
    (:func:`resumable_path`).

    With ``max_segments`` each model trains at most that many segments of ``segment_epochs``
    in this call, and the call returns None while any model is unfinished: a chapter can
    spread a long training over several cells, each continuing where the last stopped.
    ``stop_after_main`` returns as soon as the main runs are finished (``"branch": None``).
    A finished run is read from its state file. Returns the keys of
    :func:`run_experiment` with the models stacked on the model axis; the numbers equal
    :func:`run_models`'s. On ``device`` with ``batched`` (default: off the CPU) the models are
    one resumable batched stack trained in this process.
    """
    device, batched, _ = _program(device, batched)
    if batched:
        path = resumable_path(run, device, True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return run_experiment_resumable(run, path, segment_epochs=segment_epochs, max_segments=max_segments,
                                        stop_after_main=stop_after_main, device=device, batched=True)
    runs = single_runs(run)
    paths = [resumable_path(r, device, False) for r in runs]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    n = len(runs)
    workers = workers if device.type == "cpu" else 1
    outs = map_in_processes(_resumable_in_worker, (runs, [str(pth) for pth in paths], [segment_epochs] * n,
                                                    [max_segments] * n, [stop_after_main] * n, [str(device)] * n),
                            workers)
    if any(o is None for o in outs):
        return None
    merged: dict = {"train_cpu_s": float(sum(o["train_cpu_s"] for o in outs)),
                    "main": _merge_records([o["main"] for o in outs]),
                    "branch": None if any(o["branch"] is None for o in outs) else _merge_records([o["branch"] for o in outs])}
    for k in ("final_params", "branch_params"):
        merged[k] = _cat_params(outs, k)
    return merged


def preset_run(
    preset: str = "default",
    *,
    seed: int = 0,
    n_models: int = 2,
    p: int = 53,
    epochs: int = 0,
    checkpoint_every: int = 0,
    weight_decay: float = 1.0,
    dropout: float = 0.1,
    branch_epoch: int = -1,
    precision: str = "fp32",
    architecture: str = "pre-ln",
) -> GrokRun:
    """The :class:`GrokRun` of chapter 03's parameters: ``epochs = 0``, ``checkpoint_every
    = 0`` and ``branch_epoch = -1`` take the preset's values (:data:`PRESETS`); checkpoints
    follow :func:`checkpoint_schedule`. Raises ``ValueError`` if the branch is not before
    the last epoch."""
    cfg = dict(DEFAULT_PAPER_MODELS if (preset, architecture) == ("default", "paper") else PRESETS[preset])
    n_epochs = epochs or cfg["epochs"]
    every = checkpoint_every or cfg["checkpoint_every"]
    branch = cfg["branch_epoch"] if branch_epoch < 0 else branch_epoch
    if branch >= n_epochs:
        raise ValueError(f"branch_epoch = {branch} must be below epochs = {n_epochs} (or 0 for no branch)")
    return GrokRun(
        seed=seed, n_models=n_models, p=p, weight_decay=weight_decay, dropout=dropout, epochs=n_epochs,
        checkpoint_epochs=checkpoint_schedule(n_epochs, every), branch_epoch=branch, precision=precision,
        architecture=architecture,
    )


def preset_run_from_record(record: dict, preset: str = "paper") -> GrokRun:
    """The :class:`GrokRun` of a committed run's ``meta.json`` ``"run"`` record, rebuilt from
    ``preset`` with the record's seed, model count, precision and architecture. Raises
    ``ValueError`` if the record is not that preset's run (other epochs, schedule or decay)."""
    run = preset_run(preset, seed=record["seed"], n_models=record["n_models"], precision=record["precision"],
                     architecture=record["architecture"])
    if json.loads(json.dumps(run.to_dict())) != record:
        raise ValueError(f"the run record is not the {preset!r} preset's run: {record}")
    return run


# per-checkpoint scalars kept in a curves record (the full scans and spectra are dropped)
CURVE_KEYS = ("test_acc", "r_energy", "r_nec", "r_suf", "r_core", "core_only_acc", "core_removed_acc",
              "r2_h", "r2_train", "k", "modes", "r2_in")
LOG_KEYS = ("epoch", "train_acc", "test_acc", "train_loss", "test_loss")


def curves_record(result: dict) -> dict[str, np.ndarray]:
    """The small, exactly reproducible part of a :func:`run_experiment` result, flat.

    Keys ``"{branch}/log/{name}"`` for ``name`` in :data:`LOG_KEYS` ((T,) epochs, else
    (T, M)) and ``"{branch}/ckpt/{name}"`` for ``"epoch"`` (C,) and :data:`CURVE_KEYS`
    (C, M), with ``branch`` in ``main`` and (if present) ``wd0`` (the weight-decay-0
    branch). Timings are left out: they are not reproducible.
    """
    out: dict[str, np.ndarray] = {}
    for name, br in (("main", result["main"]), ("wd0", result.get("branch"))):
        if br is None:
            continue
        for k in LOG_KEYS:
            out[f"{name}/log/{k}"] = np.asarray(br["log"][k])
        out[f"{name}/ckpt/epoch"] = np.asarray(br["ckpt_epoch"])
        for k in CURVE_KEYS:
            out[f"{name}/ckpt/{k}"] = np.asarray(br["ckpt"][k])
    return out


def save_curves(path, record: dict[str, np.ndarray]) -> None:
    """Write a :func:`curves_record` as a compressed ``.npz`` (atomically)."""
    import io

    from ace_utils.book.cache import write_bytes_atomic
    buf = io.BytesIO()
    np.savez_compressed(buf, **record)
    write_bytes_atomic(path, buf.getvalue())


def load_curves(path) -> dict[str, np.ndarray]:
    """Read a record written by :func:`save_curves`."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
