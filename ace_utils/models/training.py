"""Seeding and the book's one training loop.

:func:`seed_everything` seeds Python, NumPy and PyTorch; :func:`deterministic` switches
PyTorch's deterministic algorithms on for a block; :func:`run_loop` is the loop every task
trains with (updates, :class:`Event` s such as evaluation and checkpoints, early stop, a
:class:`Clock` that leaves analyses out); :func:`train` runs it for one ``nn.Module`` over
epochs of batches with logging (:class:`TrainingLog`); :func:`move_model` moves a model
(TransformerBridge or plain module) to a device quietly.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from ace_utils.models.device import model_device, synchronize

__all__ = [
    "Clock",
    "Event",
    "LogRow",
    "TrainingLog",
    "deterministic",
    "move_model",
    "seed_everything",
    "run_loop",
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


# --------------------------------------------------------------------------- the loop


class Clock:
    """Wall and CPU seconds since it was made, less the seconds spent in :meth:`paused` blocks."""

    def __init__(self) -> None:
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        self._paused_wall = self._paused_cpu = 0.0

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """A block whose seconds :meth:`elapsed` leaves out (e.g. analyses at checkpoints)."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self._paused_wall += time.perf_counter() - wall
            self._paused_cpu += time.process_time() - cpu

    def elapsed(self) -> tuple[float, float]:
        """(wall, CPU) seconds so far, paused blocks left out."""
        wall, cpu = self.total()
        return wall - self._paused_wall, cpu - self._paused_cpu

    def total(self) -> tuple[float, float]:
        """(wall, CPU) seconds so far, paused blocks included."""
        return time.perf_counter() - self._wall0, time.process_time() - self._cpu0


@dataclass(frozen=True)
class Event:
    """``call(t)`` after update ``t`` of :func:`run_loop` when ``t`` is a multiple of ``every``
    (0: never), is in ``at``, or ``when(t)`` holds. ``timed=False``: its seconds are left out of
    the loop's :class:`Clock` (checkpoint analyses, not training)."""

    call: Callable[[int], Any]
    every: int = 0
    at: frozenset[int] = frozenset()
    when: Callable[[int], bool] | None = None
    timed: bool = True

    def due(self, t: int) -> bool:
        return bool((self.every and t % self.every == 0) or t in self.at or (self.when is not None and self.when(t)))


def run_loop(
    update: Callable[[int], Any],
    *,
    start: int,
    stop: int,
    events: Sequence[Event] = (),
    until: Callable[[], bool] | None = None,
    clock: Clock | None = None,
    progress: bool = False,
    desc: str = "training",
) -> int:
    """The book's training loop: ``update(t)`` for ``t = start + 1, ..., stop``, then the
    :class:`Event` s due at ``t``, in order; returns the last ``t`` run.

    ``update(t)`` is one unit of training (an optimizer step or an epoch of them; ``t``
    counts completed units, so a run continued from a saved state passes ``start`` = the units
    already done). ``until()`` is asked before every update and ends the loop when true (runs
    that all reached their goal). ``clock`` (default: a fresh one) leaves the seconds of the
    untimed events out. ``progress``: a tqdm bar named ``desc``. Every task trains through it:
    :func:`train` (one module), :func:`ace_utils.tasks.modular.train_stacked` (stacked
    mod-add models, per-model dropout streams, checkpoints),
    :func:`ace_utils.tasks.grokking_time.train_until_grokked` (models leave the stack as they
    grok) and :func:`ace_utils.tasks.agreement.train_agreement_model` (GPT-2 language models,
    resumable).
    """
    clock = clock or Clock()
    units: Iterable[int] = range(start + 1, stop + 1)
    if progress:
        from tqdm.auto import tqdm

        units = tqdm(units, desc=desc, leave=False, mininterval=1.0)
    last = start
    for t in units:
        if until is not None and until():
            break
        update(t)
        last = t
        for event in events:
            if event.due(t):
                if event.timed:
                    event.call(t)
                else:
                    with clock.paused():
                        event.call(t)
    if progress:
        units.close()
    return last


# --------------------------------------------------------------------------- one module


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


def train(
    model: M,
    loss_fn: Callable[[M, Any], Tensor],
    batches: Callable[[int], Iterable[Any]],
    *,
    epochs: int,
    optimizer_factory: Callable[[M], torch.optim.Optimizer],
    log_every: int = 1,
    seed: int | None = None,
    progress: bool = True,
    desc: str = "training",
) -> TrainingLog:
    """Train ``model`` in place, on the device its parameters are on, for ``epochs`` epochs of
    :func:`run_loop`; return a :class:`TrainingLog`.

    Epoch ``e`` (1-based) iterates ``batches(e - 1)`` and, per batch, runs ``loss =
    loss_fn(model, batch)`` (a scalar tensor), ``backward`` and one optimizer step
    (``optimizer_factory(model)`` is called once, e.g. ``lambda m: torch.optim.AdamW(
    m.parameters(), lr=1e-3)``). Every ``log_every`` epochs, and after the last, a row with
    the mean ``train_loss`` over that epoch's batches is logged (the loss is read once per
    logged epoch). ``seed`` (optional) calls :func:`seed_everything` first, which fixes
    dropout and any global-RNG shuffling (on every device). The batches should be on the
    model's device already; the epoch loss is summed there, so no step waits for the device.
    :mod:`ace_utils.tasks.markov` trains its models with it.
    """
    if epochs < 0:
        raise ValueError("epochs must be >= 0")
    if log_every < 1:
        raise ValueError("log_every must be >= 1")
    if seed is not None:
        seed_everything(seed)
    log = TrainingLog()
    clock = Clock()
    optimizer = optimizer_factory(model)
    model.train()
    where = model_device(model)
    loss_sum, n_batches = torch.zeros((), device=where), 0  # of the epoch just run

    def update(epoch: int) -> None:
        nonlocal loss_sum, n_batches
        loss_sum, n_batches = torch.zeros((), device=where), 0
        for batch in batches(epoch - 1):
            loss = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            n_batches += 1
            log.steps += 1
        log.epochs = epoch

    def record(epoch: int) -> None:
        mean = (loss_sum / n_batches).item() if n_batches else float("nan")
        log.rows.append(LogRow(epoch, log.steps, {"train_loss": mean}))

    run_loop(update, start=0, stop=epochs, clock=clock, progress=progress, desc=desc,
             events=[Event(record, every=log_every, at=frozenset({epochs}))])
    synchronize(where)
    log.wall_s = clock.total()[0]
    return log
