"""Independent jobs in worker processes: how the chapters train models in parallel.

The chapters train independently seeded models two at a time on a 2-core machine. The
workers are the processes of a local Dask cluster (:func:`ace_utils.book.cluster.local_client`),
kept for the life of the calling process; each job's function sets one torch thread and
seeds everything it draws, so a model's numbers equal those of training it in the calling
process with one thread (the task modules' tests check this).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ace_utils.book.cluster import as_finished, local_client


def map_in_processes(fn: Callable[..., Any], arg_lists: Sequence[Sequence], workers: int) -> list:
    """``[fn(*args) for args in zip(*arg_lists)]``, up to ``workers`` calls at a time in worker
    processes, or in this process when ``workers <= 1`` or there is one call. ``fn`` must be
    importable (a module-level function); results come back in order, the calls start in
    order; the first exception a call raised is raised here once all have finished."""
    calls = list(zip(*arg_lists))
    if workers <= 1 or len(calls) <= 1:
        return [fn(*args) for args in calls]
    out: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []
    for i, result, exc in as_finished(local_client(workers), fn, calls, name=getattr(fn, "__name__", "job")):
        if exc is not None:
            errors.append(exc)
        out[i] = result
    if errors:
        raise errors[0]
    return out
