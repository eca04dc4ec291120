"""The modular-addition data set: all ``p^2`` pairs ``[a, b]`` with targets ``(a + b) mod p``,
split once into training and test pairs."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from ace_utils.models.device import to_device

__all__ = ["ModData", "make_data"]


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
