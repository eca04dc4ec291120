"""Independent jobs in worker processes: the one process pool of the package.

The chapters train independently seeded models two at a time on a 2-core machine. Each
worker is a fresh (spawned) process whose caller sets one torch thread, so a model's
numbers equal those of training it in the notebook process with one thread.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence


def map_in_processes(fn: Callable[..., Any], arg_lists: Sequence[Sequence], workers: int) -> list:
    """``[fn(*args) for args in zip(*arg_lists)]``, ``workers`` calls at a time in fresh
    (spawned) processes, or in this process when ``workers <= 1`` or there is one call.
    ``fn`` must be importable (a module-level function); results come back in order."""
    calls = list(zip(*arg_lists))
    if workers <= 1 or len(calls) <= 1:
        return [fn(*args) for args in calls]
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(max_workers=min(workers, len(calls)), mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(fn, *arg_lists))
