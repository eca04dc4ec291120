"""Independent runs as Dask tasks (ace_utils.book.cluster, ace_utils.book.processes): results in order,
a failing task reported without losing the others, one persistent local cluster per process."""

from __future__ import annotations

import math
import os

import pytest

from ace_utils.book import cluster
from ace_utils.book.processes import map_in_processes


def test_a_failing_task_is_reported_and_the_others_kept():
    with cluster.open_client(2) as client:
        got = {i: (r, None if e is None else type(e).__name__)
               for i, r, e in cluster.as_finished(client, math.sqrt, [(4.0,), (-1.0,), (9.0,)], name="sqrt")}
    assert got == {0: (2.0, None), 1: (None, "ValueError"), 2: (3.0, None)}


def test_map_in_processes_keeps_order_reuses_its_cluster_and_restarts_on_a_new_environment(monkeypatch):
    cluster.close_local_client()
    before = dict(os.environ)
    assert map_in_processes(math.sqrt, ([16.0, 1.0, 4.0],), 2) == [4.0, 1.0, 2.0]
    assert dict(os.environ) == before  # the nannies' writes (thread counts, a hash seed) were undone
    first = cluster.local_client(2)
    assert map_in_processes(math.sqrt, ([9.0, 25.0],), 2) == [3.0, 5.0] and cluster.local_client(2) is first
    monkeypatch.setenv("ACE_BOOK_TEST_VARIABLE", "1")  # workers must see it: a new cluster
    assert map_in_processes(os.getenv, (["ACE_BOOK_TEST_VARIABLE"] * 2,), 2) == ["1", "1"]
    assert cluster.local_client(2) is not first
    with pytest.raises(ValueError):
        map_in_processes(math.sqrt, ([1.0, -1.0],), 2)
    cluster.close_local_client()
