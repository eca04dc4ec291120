"""Markov-chain transformers: the task, training, and the core analyses.

Explained in chapters ``01_markov_cores`` (cores, interventions, spectrum) and
``02_core_alignment`` (cores of independent runs compared).

A model reads a state sequence ``x_1..x_31`` and predicts ``x_2..x_32`` at every
position. Two architectures (:data:`ARCHITECTURES`): ``"paper"``, the paper's post-LN
PyTorch encoder layer (:class:`ace_utils.models.paper.PaperTransformer`), and ``"pre-ln"``,
a TransformerLens-native pre-LN model (:func:`ace_utils.models.native.build_native_model`).
The layer analysed is ``unembed.hook_in`` in both: the activation the readout reads
linearly (the last block's output for ``"paper"``, the final LayerNorm's output for
``"pre-ln"``), so the observability Gramian is exactly ``W_U^T W_U``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ace_utils.book.cache import cache_dir, cached, config_key
from ace_utils.book.processes import map_in_processes
from ace_utils.method.ace import ACEResult, ace, observability_from_readout
from ace_utils.method.activations import collect_activations
from ace_utils.method.interventions import subspace_hook
from ace_utils.method.operators import OperatorFit, fit_operator, markov_oracle_r2, match_eigenvalues
from ace_utils.models import SmallModelConfig, native_from_payload, native_to_payload, readout_matrix
from ace_utils.models.device import as_device, cache_tag, model_device, to_device
from ace_utils.models.paper import (
    ARCHITECTURES,
    ModelVariant,
    PaperModelConfig,
    build_model,
    check_architecture,
    check_variant,
    paper_from_payload,
    paper_optimizer,
    paper_to_payload,
    without_default_variant,
)
from ace_utils.models.training import move_model, train

__all__ = [
    "ACE_HOOK",
    "ARCHITECTURES",
    "chapter_runs",
    "lazy_cycle",
    "random_chain",
    "nontrivial_eigenvalues",
    "bayes_accuracy",
    "sample_sequences",
    "MarkovData",
    "make_data",
    "MarkovRun",
    "initial_model",
    "train_markov_model",
    "train_markov_models",
    "next_token_accuracy",
    "chance_accuracy",
    "markov_core",
    "core_coordinates",
    "core_dynamics",
    "CoreSpectrum",
    "core_spectrum",
    "intervention_accuracy",
    "state_conditional_mean",
    "state_explained_variance",
    "PRESETS",
]

ACE_HOOK = "unembed.hook_in"
CACHE_VERSION = 2


def lazy_cycle(n_states: int = 4, stay: float = 0.75) -> np.ndarray:
    """The paper's chain: stay with prob ``stay``, else step to the next state (cyclically).

    Circulant, so its eigenvalues are ``stay + (1 - stay) exp(2 pi i k / n)``;
    for n = 4, stay = 0.75: 1, 0.75 +/- 0.25i, 0.5.
    """
    return stay * np.eye(n_states) + (1 - stay) * np.roll(np.eye(n_states), 1, axis=1)


def nontrivial_eigenvalues(T: np.ndarray) -> np.ndarray:
    """Eigenvalues of T without the Perron eigenvalue 1, by decreasing modulus."""
    lam = np.linalg.eigvals(np.asarray(T, float))
    lam = np.delete(lam, np.argmin(np.abs(lam - 1)))
    return lam[np.argsort(-np.abs(lam), kind="stable")]


def random_chain(n_states: int, seed: int, stay: float = 0.5, min_gap: float = 0.1, min_modulus: float = 0.2) -> np.ndarray:
    """A random row-stochastic chain with well-separated non-trivial eigenvalues.

    ``T = stay I + (1 - stay) R`` with Dirichlet(1) rows R, redrawn (from a
    generator seeded by ``seed``) until every pair of non-trivial eigenvalues
    is at least ``min_gap`` apart and each has modulus at least ``min_modulus``,
    so that the spectrum is identifiable from a fit.
    """
    if not 3 <= n_states <= 8:
        raise ValueError(f"n_states must be in [3, 8], got {n_states}")
    rng = np.random.default_rng(seed)
    for _ in range(10_000):
        T = stay * np.eye(n_states) + (1 - stay) * rng.dirichlet(np.ones(n_states), size=n_states)
        lam = nontrivial_eigenvalues(T)
        gaps = np.abs(lam[:, None] - lam[None, :]) + np.eye(len(lam))
        if gaps.min() >= min_gap and np.abs(lam).min() >= min_modulus:
            return T
    raise RuntimeError("no chain with separated eigenvalues found")  # pragma: no cover


def sample_sequences(T: np.ndarray, n_seq: int, length: int, seed: int) -> Tensor:
    """(n_seq, length) int64 state sequences; first state uniform, then T."""
    rng = np.random.default_rng(seed)
    n = T.shape[0]
    cum = np.cumsum(np.asarray(T, float), axis=1)
    cum[:, -1] = 1.0
    x = np.empty((n_seq, length), dtype=np.int64)
    x[:, 0] = rng.integers(0, n, size=n_seq)
    u = rng.random((n_seq, length))
    for t in range(1, length):
        x[:, t] = (u[:, t][:, None] > cum[x[:, t - 1]]).sum(1)
    return torch.from_numpy(x)


def bayes_accuracy(T: np.ndarray, length: int = 32) -> float:
    """Expected accuracy of the optimal predictor ``argmax_j T[x_t, j]`` over positions 1..length-1.

    The state distribution at position t starts uniform and evolves by T; for the
    paper's chain this is 0.75. Computed from the chain, not typed in.
    """
    T = np.asarray(T, float)
    p = np.full(T.shape[0], 1.0 / T.shape[0])
    best = T.max(1)
    acc = []
    for _ in range(length - 1):
        acc.append(p @ best)
        p = p @ T
    return float(np.mean(acc))


@dataclass(frozen=True)
class MarkovData:
    """Train / test sequences (n, length) of one chain T (n_states, n_states)."""

    T: np.ndarray
    train: Tensor
    test: Tensor


def make_data(T: np.ndarray, n_train: int = 3000, n_test: int = 3000, length: int = 32, data_seed: int = 0) -> MarkovData:
    """The paper's data: train sequences from ``data_seed``, test from ``data_seed + 999``."""
    T = np.asarray(T, float)
    return MarkovData(T, sample_sequences(T, n_train, length, data_seed), sample_sequences(T, n_test, length, data_seed + 999))


@dataclass(frozen=True)
class MarkovRun:
    """Everything that determines one trained model (the cache key).

    Defaults are the paper's model (``architecture="paper"``: one post-LN PyTorch
    encoder layer with dropout 0.1 and a biased readout; 1 layer, d_model 64, 4 heads,
    d_mlp 256) and optimiser (AdamW on every parameter, batch 64, weight decay 0);
    ``architecture="pre-ln"`` is the TransformerLens-native pre-LN model of the same
    sizes. ``lr`` and ``epochs`` come from a preset (see :data:`PRESETS`). ``dropout``
    and ``variant`` (:class:`~ace_utils.models.paper.ModelVariant`) change the paper's
    model (``architecture="paper"`` only).
    """

    seed: int
    architecture: str = "paper"
    n_layers: int = 1
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    lr: float = 1e-4
    batch_size: int = 64
    epochs: int = 40
    weight_decay: float = 0.0
    dropout: float = 0.1
    variant: ModelVariant = ModelVariant()

    def __post_init__(self) -> None:
        check_architecture(self.architecture)
        check_variant(self.variant, self.architecture)
        if self.architecture != "paper" and self.dropout != 0.1:
            raise ValueError("dropout applies to architecture='paper' only")

    def to_dict(self) -> dict:
        """The fields as a plain dict; ``dropout`` and ``variant`` left out at the paper's
        values, so the paper's runs keep the cache keys they had before these fields."""
        d = without_default_variant(asdict(self))
        if d["dropout"] == 0.1:
            del d["dropout"]
        return d

    def model_config(self, n_states: int, length: int) -> SmallModelConfig | PaperModelConfig:
        """The model's shape and seed for ``n_states`` states and sequences of ``length``."""
        sizes = dict(n_layers=self.n_layers, d_model=self.d_model, n_heads=self.n_heads, d_mlp=self.d_mlp, seed=self.seed)
        if self.architecture == "paper":
            return PaperModelConfig(d_vocab=n_states, n_positions=max(64, length - 1), dropout=self.dropout,
                                    variant=self.variant, **sizes)
        return SmallModelConfig(n_ctx=length - 1, d_vocab=n_states, act_fn="relu", **sizes)


# 'paper': the reference training budget (lr 1e-4, 40 epochs = 1880 steps).
# 'default': 10x the learning rate for a quarter of the epochs (470 steps); the
# chapter asserts every claim at it.
PRESETS = {
    "paper": dict(lr=1e-4, epochs=40),
    "default": dict(lr=1e-3, epochs=10),
}


def chapter_runs(seed: int, n_models: int, preset: str = "default", *, d_model: int = 64,
                 architecture: str = "paper", epochs: int = 0) -> list[MarkovRun]:
    """The runs of chapters 01, 02 and 06, hence their shared cache entries: model ``i`` seeded
    ``seed + 100 i``, the ``preset``'s learning rate and epochs (``epochs`` > 0 overrides them)."""
    overrides = {"d_model": d_model, "architecture": architecture} | ({"epochs": epochs} if epochs else {})
    return [MarkovRun(seed=seed + 100 * i, **(PRESETS[preset] | overrides)) for i in range(n_models)]


def initial_model(run: MarkovRun, n_states: int, length: int):
    """The untrained model of ``run`` for ``n_states`` states and sequences of ``length``:
    a :class:`~ace_utils.models.paper.PaperTransformer` (train mode, as PyTorch builds it)
    or a TransformerBridge, with the initial weights the training starts from."""
    return build_model(run.model_config(n_states, length))


def _loss(model: torch.nn.Module, batch: Tensor) -> Tensor:
    logits = model(batch[:, :-1])
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def train_markov_model(run: MarkovRun, data: MarkovData, *, progress: bool = True, refresh: bool = False,
                       device: str | torch.device = "cpu"):
    """Train (or load from the cache) one model on ``data`` on ``device``; returns it there, in eval mode.

    A :class:`~ace_utils.models.paper.PaperTransformer` for ``run.architecture ==
    "paper"`` (trained as it is, dropout on), a TransformerBridge for ``"pre-ln"``
    (trained through its underlying module: the same parameters without hook
    dispatch). Deterministic on the CPU: weights from ``run.seed``, batch order from
    a generator seeded by ``run.seed`` and the epoch, dropout from the global RNG
    seeded with ``run.seed`` before training. Chapters 01 and 02 share models through
    the cache. On another device the same program runs there (initial weights and batch
    orders are the CPU's; the data goes there once, each epoch's order once, dropout draws
    from that device's RNG); the cache keeps its models apart (:func:`_model_key`).
    """
    n_states, length = data.T.shape[0], data.train.shape[1]
    cfg = run.model_config(n_states, length)
    device = as_device(device)
    key = _model_key(run, data, device)

    paper = run.architecture == "paper"

    def build():
        model = move_model(initial_model(run, n_states, length), device)
        n = data.train.shape[0]
        train_seqs = to_device(data.train, device)

        def batches(epoch: int):
            g = torch.Generator().manual_seed(run.seed * 100_003 + epoch)
            perm = to_device(torch.randperm(n, generator=g), device)
            for s in range(0, n, run.batch_size):
                yield train_seqs[perm[s : s + run.batch_size]]

        train(
            model if paper else model.original_model, _loss, batches, epochs=run.epochs,
            optimizer_factory=lambda m: paper_optimizer(m, lr=run.lr, weight_decay=run.weight_decay),
            seed=run.seed, progress=progress, desc=f"markov seed {run.seed}",
        )
        model.eval()
        return model

    save = paper_to_payload if paper else (lambda m: native_to_payload(m, cfg))
    load = (lambda payload: paper_from_payload(payload, device)) if paper else (
        lambda payload: native_from_payload(payload, device))
    model = cached(key, build, name="markov", save=save, load=load, refresh=refresh)
    model.eval()
    return model


def _model_key(run: MarkovRun, data: MarkovData, device: str | torch.device = "cpu") -> dict:
    """The cache key of the model :func:`train_markov_model` trains for ``run`` on ``data``
    (on ``device``: its kind enters the key off the CPU)."""
    cfg = run.model_config(data.T.shape[0], data.train.shape[1])
    return {
        "task": "markov", "version": CACHE_VERSION, "torch": torch.__version__, "run": run.to_dict(),
        "T": np.round(data.T, 12).tolist(), "train_sha": _tensor_digest(data.train), "model": cfg.to_dict(),
        **cache_tag(device),
    }


def _is_cached(run: MarkovRun, data: MarkovData, device: str | torch.device = "cpu") -> bool:
    return (cache_dir() / "markov" / f"{config_key(_model_key(run, data, device))}.pt").exists()


def _train_in_worker(run: MarkovRun, data: MarkovData, device: str = "cpu") -> None:
    torch.set_num_threads(1)
    train_markov_model(run, data, progress=False, device=device)


def train_markov_models(runs: Sequence[MarkovRun], datas: MarkovData | Sequence[MarkovData], *,
                        workers: int = 2, device: str | torch.device = "cpu") -> list:
    """:func:`train_markov_model` for every run (``datas``: one data set for all, or one per
    run), the uncached ones trained ``workers`` at a time in fresh processes with one torch
    thread each, then all loaded from the cache in this process: the same models as
    training them here one after another with one thread. Off the CPU the uncached ones
    train one after another on ``device`` in this process; the models come back there."""
    datas = [datas] * len(runs) if isinstance(datas, MarkovData) else list(datas)
    if len(datas) != len(runs):
        raise ValueError(f"{len(runs)} runs but {len(datas)} data sets")
    device = as_device(device)
    todo = [(r, d) for r, d in zip(runs, datas) if not _is_cached(r, d, device)]
    map_in_processes(_train_in_worker, ([r for r, _ in todo], [d for _, d in todo], [str(device)] * len(todo)),
                     workers if device.type == "cpu" else 1)
    return [train_markov_model(r, d, progress=False, device=device) for r, d in zip(runs, datas)]


def _tensor_digest(x: Tensor) -> str:
    import hashlib

    return hashlib.sha256(x.numpy().tobytes()).hexdigest()[:16]


@torch.no_grad()
def next_token_accuracy(model, tokens: Tensor, fwd_hooks: Sequence = (), batch_size: int = 1000) -> float:
    """Argmax next-token accuracy over all positions of ``tokens`` (n, length), counted on the
    model's device (one read by the host at the end)."""
    tokens = to_device(tokens, model_device(model))
    correct = torch.zeros((), dtype=torch.long, device=tokens.device)
    for s in range(0, tokens.shape[0], batch_size):
        x = tokens[s : s + batch_size]
        logits = model.run_with_hooks(x[:, :-1], fwd_hooks=list(fwd_hooks)) if fwd_hooks else model(x[:, :-1])
        correct += (logits.argmax(-1) == x[:, 1:]).sum()
    return int(correct) / (tokens.shape[0] * (tokens.shape[1] - 1))



def chance_accuracy(tokens: Tensor) -> float:
    """Accuracy of always predicting the most frequent target state in ``tokens``."""
    counts = torch.bincount(tokens[:, 1:].reshape(-1))
    return float(counts.max() / counts.sum())


def markov_core(model, data: MarkovData, threshold: float = 0.999) -> tuple[ACEResult, Tensor]:
    """ACE at ``unembed.hook_in`` (:data:`ACE_HOOK`) over all positions of the test sequences.

    Returns ``(result, H)`` with H (n_test * (length-1), d_model) the activations
    (row order: sequence-major, position-minor). ``W_o = W_U^T W_U`` exactly.
    """
    H = collect_activations(model, to_device(data.test[:, :-1], model_device(model)), [ACE_HOOK])[ACE_HOOK]
    return ace(H, observability_from_readout(readout_matrix(model)), threshold=threshold), H


def core_coordinates(result: ACEResult, H: Tensor, n_seq: int, r: int | None = None) -> np.ndarray:
    """Core coordinates (uncentred) reshaped to (n_seq, positions, r), on the host."""
    Z = (H.double() @ result.core(r).to(H.device)).cpu().numpy()
    return Z.reshape(n_seq, -1, Z.shape[-1])


def core_dynamics(Z: np.ndarray) -> OperatorFit:
    """Centred least-squares fit ``z_{t+1} ~ A z_t`` over all consecutive pairs of Z (n, t, r).

    The Perron eigenvalue 1 belongs to the constant direction, which centring
    removes; the fit's eigenvalues estimate the chain's non-trivial ones.
    """
    X = Z[:, :-1].reshape(-1, Z.shape[-1])
    Y = Z[:, 1:].reshape(-1, Z.shape[-1])
    return fit_operator(X, Y, centre=True)


def intervention_accuracy(model, data: MarkovData, Q: Tensor, mode: str, centred: bool = False, mean: Tensor | None = None) -> float:
    """Test accuracy with ``mode`` (keep / remove / flip) applied to span(Q) at
    ``unembed.hook_in`` at every position. Uncentred (the paper's choice) by
    default; ``centred=True`` acts about ``mean`` (default: the test-set mean of
    the activation), which keeps the prior a non-uniform chain stores in the
    mean.
    """
    if centred and mean is None:
        tokens = to_device(data.test[:, :-1], model_device(model))
        mean = collect_activations(model, tokens, [ACE_HOOK])[ACE_HOOK].double().mean(0)
    hook = subspace_hook(Q, mode, mean=mean if centred else None)
    return next_token_accuracy(model, data.test, fwd_hooks=[(ACE_HOOK, hook)])


def state_conditional_mean(Z: np.ndarray, states: Tensor) -> np.ndarray:
    """Replace each core coordinate (n, t, r) by its mean over all positions with the
    same current state (states: (n, t)). Removes whatever the coordinates carry
    beyond the current state (e.g. history).
    """
    s = states.cpu().numpy().reshape(-1)
    flat = Z.reshape(-1, Z.shape[-1])
    means = np.stack([flat[s == j].mean(0) for j in range(int(s.max()) + 1)])
    return means[s].reshape(Z.shape)


def state_explained_variance(Z: np.ndarray, states: Tensor) -> np.ndarray:
    """Per core coordinate, the share of its variance explained by the current state (r,)."""
    flat = Z.reshape(-1, Z.shape[-1])
    resid = flat - state_conditional_mean(Z, states).reshape(flat.shape)
    return 1 - resid.var(0) / flat.var(0)


@dataclass(frozen=True)
class CoreSpectrum:
    """What the dynamics in one model's r-dimensional core say about the chain.

    ``eigenvalues`` (n-1,) complex: the fitted operator's eigenvalues matched one-to-one
    to ``true`` (the chain's non-trivial eigenvalues, by decreasing modulus); ``errors``
    (n-1,) their distances; ``r2_ratio`` the fit's R^2 over the chain's oracle R^2;
    ``state_r2`` (r,) the share of each core coordinate's variance explained by the
    current state; ``errors_state_mean`` (n-1,) the errors when every coordinate is
    replaced by its mean given the current state (no history left).
    """

    eigenvalues: np.ndarray
    true: np.ndarray
    errors: np.ndarray
    r2_ratio: float
    state_r2: np.ndarray
    errors_state_mean: np.ndarray

    @property
    def real_bias(self) -> np.ndarray:
        """Fitted minus true, for the chain's real eigenvalues (k,) (the paper chain: 0.5)."""
        real = np.abs(self.true.imag) < 1e-9
        return (self.eigenvalues[real] - self.true[real]).real


def core_spectrum(result: ACEResult, H: Tensor, data: MarkovData, r: int | None = None) -> CoreSpectrum:
    """Fit the core dynamics (:func:`core_dynamics`) of ``result``'s top-``r`` core
    (default: ``n_states - 1``) on the test activations ``H`` of :func:`markov_core` and
    compare them with the chain ``data.T``."""
    n_seq = data.test.shape[0]
    r = data.T.shape[0] - 1 if r is None else r
    true = nontrivial_eigenvalues(data.T)
    Z = core_coordinates(result, H, n_seq, r=r)
    fit = core_dynamics(Z)
    matched, err = match_eigenvalues(fit.eigenvalues, true)
    states = data.test[:, :-1]
    _, err_mean = match_eigenvalues(core_dynamics(state_conditional_mean(Z, states)).eigenvalues, true)
    return CoreSpectrum(matched, true, err, float(fit.r2 / markov_oracle_r2(data.T)), state_explained_variance(Z, states), err_mean)
