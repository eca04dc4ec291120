"""Seeding and a small training loop for any ``nn.Module``.

:func:`seed_everything` seeds Python, NumPy and PyTorch; :func:`deterministic` switches
PyTorch's deterministic algorithms on for a block; :func:`train` runs epochs of a loss
over batches with logging (:class:`TrainingLog`); :func:`move_model` moves a model
(TransformerBridge or plain module) to a device quietly.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

import numpy as np
import torch
from torch import Tensor, nn


__all__ = [
    "LogRow",
    "TrainingLog",
    "deterministic",
    "move_model",
    "seed_everything",
    "torch_threads",
    "train",
]

M = TypeVar("M", bound=nn.Module)


# --------------------------------------------------------------------------- seeding


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device).

    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic(enabled: bool = True) -> Iterator[None]:
    """Context manager: ``torch.use_deterministic_algorithms(enabled)`` inside, restored after.

    On CUDA, cuBLAS also needs ``CUBLAS_WORKSPACE_CONFIG`` set before its first use;
    it is set here (``:4096:8``) if absent, which only helps when no CUDA matmul has
    run yet in the process. cuDNN autotuning is switched off inside the block.
    """
    was_enabled = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    was_benchmark = torch.backends.cudnn.benchmark
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(enabled)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_enabled, warn_only=was_warn_only)
        torch.backends.cudnn.benchmark = was_benchmark


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Context manager: ``torch.set_num_threads(n)`` inside (unchanged for ``None``), the
    previous count restored after, also when the block raises."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- training loop


@dataclass
class LogRow:
    """One log entry: ``epoch`` (epochs completed), ``step`` (optimizer steps so far), metrics."""

    epoch: int
    step: int
    metrics: dict[str, float]


@dataclass
class TrainingLog:
    """What :func:`train` returns: ``rows``, one :class:`LogRow` per logged epoch; ``epochs``
    and ``steps`` completed; ``wall_s`` seconds."""

    rows: list[LogRow] = field(default_factory=list)
    epochs: int = 0
    steps: int = 0
    wall_s: float = 0.0

    def series(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of one metric over the rows that have it, as float arrays."""
        pts = [(r.epoch, r.metrics[metric]) for r in self.rows if metric in r.metrics]
        if not pts:
            return np.zeros(0), np.zeros(0)
        e, v = zip(*pts)
        return np.asarray(e, dtype=float), np.asarray(v, dtype=float)

    def last(self, metric: str) -> float:
        """The latest logged value of ``metric`` (KeyError if never logged)."""
        for r in reversed(self.rows):
            if metric in r.metrics:
                return r.metrics[metric]
        raise KeyError(metric)


def move_model(model: M, device: str | torch.device) -> M:
    """``model.to(device)``, skipped when already there; silent for TransformerBridge.

    (``TransformerBridge.to`` prints "Moving model to device" unless told not to.)
    """
    device = torch.device(device)
    tensors = [*model.parameters(), *model.buffers()]
    if tensors and all(_same_device(t.device, device) for t in tensors):
        return model
    if type(model).__module__.startswith("transformer_lens"):
        return model.to(device, print_details=False)
    return model.to(device)


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if b.index is None and b.type == "cuda":
        return a.index == torch.cuda.current_device()
    return b.index is None or a.index == b.index


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def train(
    model: M,
    loss_fn: Callable[[M, Any], Tensor],
    batches: Callable[[int], Iterable[Any]],
    *,
    epochs: int,
    optimizer_factory: Callable[[M], torch.optim.Optimizer],
    log_every: int = 1,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "training",
) -> TrainingLog:
    """Train ``model`` in place for ``epochs`` epochs; return a :class:`TrainingLog`.

    Each epoch ``e`` (0-based) iterates ``batches(e)`` (tensors, tuples or dicts of
    tensors; moved to ``device``) and, per batch, runs ``loss = loss_fn(model, batch)``
    (a scalar tensor), ``backward`` and one optimizer step (``optimizer_factory(model)``
    is called once, e.g. ``lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3)``).
    Epochs are counted as *completed* epochs, 1..``epochs``. Every ``log_every`` epochs,
    and after the last, a row with the mean ``train_loss`` over that epoch's batches is
    logged. ``seed`` (optional) calls :func:`seed_everything` first, which fixes dropout
    and any global-RNG shuffling. No per-step synchronisation: the loss is read once per
    logged epoch. :mod:`ace_utils.tasks.markov` trains its models with it.
    """
    from tqdm.auto import tqdm

    if epochs < 0:
        raise ValueError("epochs must be >= 0")
    if log_every < 1:
        raise ValueError("log_every must be >= 1")
    if seed is not None:
        seed_everything(seed)
    device = torch.device(device)
    move_model(model, device)
    log = TrainingLog()
    t0 = time.perf_counter()
    optimizer = optimizer_factory(model)
    model.train()
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False, mininterval=0.5)
    for epoch in bar:
        loss_sum = torch.zeros((), device=device)
        n_batches = 0
        for batch in batches(epoch - 1):
            batch = _to_device(batch, device)
            loss = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            n_batches += 1
            log.steps += 1
        log.epochs = epoch
        if epoch == epochs or epoch % log_every == 0:
            metrics = {"train_loss": (loss_sum / max(n_batches, 1)).item() if n_batches else float("nan")}
            log.rows.append(LogRow(epoch, log.steps, metrics))
            if progress:
                bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
    bar.close()
    log.wall_s = time.perf_counter() - t0
    return log
