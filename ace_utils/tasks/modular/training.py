"""Training of stacked modular-addition models: AdamW over the stacked parameters, per-model
batch orders and dropout streams, train/test accuracy and loss logged as it goes, checkpoint
callbacks, and continuation of a run from saved optimizer and RNG state."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ace_utils.models.device import batched_default, forked_rng, get_rng_state, synchronize, to_device
from ace_utils.models.paper import ModelVariant, stacked_last_logits
from ace_utils.models.precision import autocast
from ace_utils.models.training import Clock, Event, run_loop
from ace_utils.tasks.modular.config import GrokRun
from ace_utils.tasks.modular.data import ModData
from ace_utils.tasks.modular.stacked_models import forward_last, paper_last_logits

__all__ = ["evaluate_stacked", "train_stacked"]


def _is_paper(params: dict[str, Tensor]) -> bool:
    """Whether stacked ``params`` are a :class:`~ace_utils.models.paper.PaperTransformer`'s (any variant)."""
    return "blocks.0.layer.linear1.weight" in params



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
