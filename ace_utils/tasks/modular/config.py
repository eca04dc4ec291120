"""The configuration of a modular-addition run: :class:`GrokRun` (everything that determines one
training run, the cache key), the model each seed builds, and the presets and checkpoint
schedules the runs are made from."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from ace_utils.models import SmallModelConfig
from ace_utils.models.paper import (
    ModelVariant,
    PaperModelConfig,
    check_architecture,
    check_variant,
    without_default_variant,
)
from ace_utils.models.precision import check_precision

__all__ = [
    "DEFAULT_PAPER_MODELS",
    "PRESETS",
    "GrokRun",
    "checkpoint_schedule",
    "model_config",
    "preset_run",
    "preset_run_from_record",
    "single_runs",
]

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


def checkpoint_schedule(epochs: int, every: int, sparse_after: int = 2000, sparse_every: int = 500) -> tuple[int, ...]:
    """Epochs analysed: 0, every ``every`` epochs up to ``sparse_after``, then every
    ``sparse_every`` (the paper's 100 / 2,000 / 500), and the last epoch."""
    eps = set(range(0, min(epochs, sparse_after) + 1, every))
    eps |= set(range(sparse_after, epochs + 1, sparse_every)) if epochs > sparse_after else set()
    eps.add(epochs)
    return tuple(sorted(eps))


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



def single_runs(run: GrokRun) -> list[GrokRun]:
    """``run`` as ``run.n_models`` one-model runs, model ``i`` seeded ``run.seed + 1000 i``."""
    return [replace(run, seed=s, n_models=1) for s in run.model_seeds()]
