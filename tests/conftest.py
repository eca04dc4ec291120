"""Pytest setup: import ace_utils before any test module imports torch, so that
OMP_WAIT_POLICY=PASSIVE is in place when torch starts its thread pool (two busy-waiting
OpenMP threads stall badly when another process shares the cores; see the setup notes).
``make test`` also exports it; this covers a bare ``pytest`` run."""

import ace_utils  # noqa: F401
