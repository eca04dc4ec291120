"""Pytest setup: OMP_WAIT_POLICY=PASSIVE before any test module imports torch, which reads it
when it loads (two busy-waiting OpenMP threads slowed a training step from 92 to 543 ms when
another process shared a 2-core Xeon). ``make test`` also exports it; this covers a bare
``pytest`` run. Importing ace_utils sets nothing."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The few tests that train for minutes start first, so that under pytest-xdist (make test runs two
# workers, which take the collected items in order) they run beside the many short tests instead
# of after them, one worker busy alone at the end (longest first; seconds of one core in a quiet
# make test: 345, 114 + 25, 48, 45, 29). Order only: every test is independent.
SLOW_FIRST = ("test_long_run_replays_through_grokking", "test_first_epochs_of_the_committed_run_reproduce",
              "test_hub_block_runs_on_a_local_gpt2", "test_local_dask_cluster_gives_the_in_process_table",
              "test_small_modulus_groks")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:  # the longest first, in SLOW_FIRST's order; the rest keep theirs
        return next((i for i, name in enumerate(SLOW_FIRST) if name in item.nodeid), len(SLOW_FIRST))

    items.sort(key=rank)
