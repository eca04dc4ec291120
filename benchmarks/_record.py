"""What every benchmark script records: the machine, and its results as JSON + Markdown.

Used by ``grokking_sweep.py`` and ``modular_training.py`` (``from _record import ...``; the
scripts run as files, so their own folder is on ``sys.path``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ace_utils.book.machine import cpu_capability, cpu_model, kernel_settings

RESULTS = Path(__file__).resolve().parent / "results"


def machine(threads: int, **extra) -> dict:
    """CPU model, core count, PyTorch's CPU capability (and kernel overrides), torch version,
    torch threads, load average now, plus ``extra``."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "capability": cpu_capability(),
            "kernel_settings": kernel_settings(), "torch": torch.__version__, "threads": threads,
            "loadavg_end": os.getloadavg(), **extra}


def machine_line(m: dict) -> str:
    """One sentence naming the machine of :func:`machine` (no final full stop)."""
    forced = "".join(f", {k}={v}" for k, v in m.get("kernel_settings", {}).items())
    return (f"Machine: {m['cpu']}, {m['cores']} cores, PyTorch CPU capability {m.get('capability', '?')}{forced}, "
            f"torch {m['torch']}, {m['threads']} thread(s), "
            f"load average at the end {tuple(round(x, 2) for x in m['loadavg_end'])}")


def save(name: str, record: dict, lines: list[str]) -> None:
    """Write ``results/<name>.json`` (``record``) and ``results/<name>.md`` (``lines``); print the latter."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2))
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
