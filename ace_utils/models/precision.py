"""Arithmetic precision of training: float32 by default, bfloat16 autocast only on request.

bfloat16 is fast only where the CPU has native bf16 instructions (AVX-512 BF16, AMX);
on an AVX2-only CPU PyTorch emulates it, 6-50x slower than float32. Numbers therefore
never depend on a silent choice: every trainer takes a ``precision`` of
:data:`PRECISIONS`, ``"fp32"`` unless a caller asks for ``"bf16"``.
"""

from __future__ import annotations

import torch

__all__ = ["PRECISIONS", "DEFAULT_PRECISION", "check_precision", "autocast"]

PRECISIONS = ("fp32", "bf16")
DEFAULT_PRECISION = "fp32"


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of :data:`PRECISIONS`, else raise ``ValueError``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def autocast(precision: str, device_type: str = "cpu") -> torch.autocast:
    """An autocast context for ``device_type`` (``"cpu"``, ``"cuda"``): bfloat16 matrix products
    for ``"bf16"``, a no-op for ``"fp32"``."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=check_precision(precision) == "bf16")
