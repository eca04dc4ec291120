"""Dask clusters for sweeps of independent runs: the seed runner (:mod:`ace_utils.book.rerun`) and
the long preset runs.

:func:`open_client` yields a :class:`dask.distributed.Client`, either on a fresh
:class:`~dask.distributed.LocalCluster` of ``jobs`` single-threaded worker processes on this
machine, or connected to an existing scheduler (``scheduler="tcp://host:8786"``), for example
one that ``dask-jobqueue`` started on a SLURM cluster. :func:`as_finished` submits one task
per argument tuple and yields each result, or the exception its task raised, as soon as it is
ready, so a sweep can record finished runs while the others still run and one failing run
loses nothing else. :func:`local_client` keeps one local cluster per process for repeated
small maps (the chapters' model training, :func:`ace_utils.book.processes.map_in_processes`).

On another machine's workers the tasks see that machine's files: the notebooks, the package
and the model cache must be at the same paths there (a shared filesystem).
"""

from __future__ import annotations

import atexit
import logging
import os
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

__all__ = ["open_client", "as_finished", "local_client", "close_local_client", "SCHEDULER_ENV"]

_LOCAL: dict[str, Any] = {}  # the process's persistent local cluster: "key", "cluster", "client"


def _local_cluster(jobs: int):
    """A LocalCluster of ``jobs`` one-thread worker processes, no dashboard. Dask's nannies
    write their spawn settings (thread counts, a hash seed) into this process's environment;
    it is restored afterwards, so nothing started later here inherits them."""
    from dask.distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)  # no INFO lines in a notebook's output
    saved = dict(os.environ)
    try:
        return LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, silence_logs=logging.ERROR,
                            scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"})  # no dashboard; its HTTP port free
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def open_client(jobs: int = 2, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client: on ``jobs`` local worker processes (one thread each, no dashboard), or on
    the cluster whose scheduler listens at ``scheduler``. The local cluster is shut down on exit."""
    from dask.distributed import Client

    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with _local_cluster(jobs) as cluster, Client(cluster) as client:
        yield client


SCHEDULER_ENV = "ACE_BOOK_SCHEDULER"


def local_client(jobs: int) -> Any:
    """This process's Dask client for repeated maps: a local cluster of ``jobs``
    single-threaded workers, started on the first call and kept for later ones, so its
    workers import torch once; or, when ``$ACE_BOOK_SCHEDULER`` names a scheduler address,
    a client of that cluster (``jobs`` is then the caller's, the cluster's size its own).
    It is started anew when ``jobs`` or any environment variable has changed since (workers
    read the environment when they start, e.g. ``ACE_BOOK_CACHE`` or the thread settings),
    and shut down when the process exits."""
    from dask.distributed import Client

    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    key = (jobs, tuple(sorted(os.environ.items())))
    if _LOCAL.get("key") != key:
        close_local_client()
        address = os.environ.get(SCHEDULER_ENV)
        cluster = None if address else _local_cluster(jobs)
        _LOCAL.update(key=key, cluster=cluster, client=Client(address or cluster))
    return _LOCAL["client"]


@atexit.register
def close_local_client() -> None:
    """Shut down the cluster of :func:`local_client`, if one is running."""
    client, cluster = _LOCAL.pop("client", None), _LOCAL.pop("cluster", None)
    _LOCAL.clear()
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def as_finished(client: Any, fn: Callable[..., Any], arg_tuples: Sequence[tuple], name: str = "task",
                **kwargs: Any) -> Iterator[tuple[int, Any, BaseException | None]]:
    """Submit ``fn(*args, **kwargs)`` for each ``args`` of ``arg_tuples`` on ``client`` (in
    order) and yield ``(index, result, None)`` or ``(index, None, exception)`` per task, in
    the order they finish."""
    from dask.distributed import as_completed

    tag = uuid.uuid4().hex[:8]
    futures = [client.submit(fn, *args, key=f"{name}-{i}-{tag}", pure=False, **kwargs)
               for i, args in enumerate(arg_tuples)]
    index = {f.key: i for i, f in enumerate(futures)}
    for fut in as_completed(futures):
        try:
            yield index[fut.key], fut.result(), None
        except Exception as exc:  # the task raised, or its worker died: reported, the others go on
            yield index[fut.key], None, exc
