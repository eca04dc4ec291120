"""Where the book computes: the ``device`` parameter resolved once, and the few placement helpers.

Every chapter takes ``device`` = ``"cpu"`` (the default: the book's claims and seed tables are
made there), ``"cuda"`` or ``"auto"`` (CUDA where present, else the CPU). :func:`resolve_device`
is the one function that turns it into a device; the chapters call it through their parameter
check (``Device`` in ``book/params.py``), the task functions accept its result.

On a CUDA device the tasks train their stacked models as one batched program
(:func:`batched_default`), with the data placed on the device once, no host synchronisation per
optimizer step and every analysis on the device; results come back to the host for tables and
figures only. The CPU path is the program the committed results were made with, unchanged.
A model trained on one device kind is never served as the other's: :func:`cache_tag` enters the
cache keys of everything trained off the CPU.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor

__all__ = [
    "DEVICES",
    "resolve_device",
    "as_device",
    "model_device",
    "cache_tag",
    "batched_default",
    "to_device",
    "synchronize",
    "rng_devices",
    "forked_rng",
    "get_rng_state",
    "set_rng_state",
]

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device: str, name: str = "device") -> str:
    """``"cpu"`` or ``"cuda"`` for a requested ``device`` of :data:`DEVICES`.

    ``"auto"`` is ``"cuda"`` where ``torch.cuda.is_available()``, else ``"cpu"``. Raises
    ``ValueError`` with one line naming the parameter ``name``: for a value not in
    :data:`DEVICES` (naming the allowed values), and for ``"cuda"`` where no CUDA device is
    present (at once, before any work)."""
    if not isinstance(device, str) or device not in DEVICES:
        allowed = ", ".join(repr(d) for d in DEVICES)
        raise ValueError(f"parameter {name!r} = {device!r} is not allowed: choose one of {allowed}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"parameter {name!r} = 'cuda' but no CUDA device is available here "
                         f"(torch {torch.__version__}, torch.cuda.is_available() is False): use 'cpu' or 'auto'")
    return device


def as_device(device: str | torch.device) -> torch.device:
    """``torch.device`` of a resolved device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, or a device)."""
    return device if isinstance(device, torch.device) else torch.device(device)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model`` keeps its parameters (the CPU for a model without any)."""
    return next((t.device for t in model.parameters()), torch.device("cpu"))


def cache_tag(device: str | torch.device) -> dict[str, str]:
    """What a cache key adds for results computed on ``device``: nothing on the CPU (the keys
    the CPU results always had), ``{"device": kind}`` elsewhere (e.g. ``"cuda"``)."""
    kind = as_device(device).type
    return {} if kind == "cpu" else {"device": kind}


def batched_default(device: str | torch.device) -> bool:
    """Whether the tasks train a run's models as one batched stack on ``device`` by default:
    True off the CPU (launches, not arithmetic, bound small models there), False on the CPU,
    where each model trains in its own process with the program the committed results use."""
    return as_device(device).type != "cpu"


def to_device(x: Tensor, device: str | torch.device) -> Tensor:
    """``x`` on ``device``: the same tensor if it is there; from the CPU to CUDA through pinned
    memory without blocking the host (no synchronisation with the device's queue)."""
    device = as_device(device)
    if x.device.type == device.type and (device.index is None or x.device.index == device.index):
        return x
    if x.device.type == "cpu" and device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def synchronize(device: str | torch.device) -> None:
    """Wait for the work queued on a CUDA ``device`` (for wall-clock timings); a no-op on the CPU."""
    device = as_device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rng_devices(device: str | torch.device) -> list:
    """The ``devices`` argument of ``torch.random.fork_rng`` that forks ``device``'s global RNG
    besides the CPU's (``[]`` on the CPU)."""
    device = as_device(device)
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def get_rng_state(device: str | torch.device) -> Tensor:
    """The global RNG state of ``device`` (the one its ``nn.Dropout`` draws from), a CPU tensor."""
    device = as_device(device)
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def set_rng_state(state: Tensor, device: str | torch.device) -> None:
    """Set the global RNG state of ``device`` (from :func:`get_rng_state`)."""
    device = as_device(device)
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


@contextlib.contextmanager
def forked_rng(device: str | torch.device) -> Iterator[None]:
    """``torch.random.fork_rng`` of the CPU's and ``device``'s global RNGs: restored after the block."""
    with torch.random.fork_rng(devices=rng_devices(device)):
        yield
