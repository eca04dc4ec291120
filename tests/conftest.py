"""Pytest setup: OMP_WAIT_POLICY=PASSIVE before any test module imports torch, which reads it
when it loads (two busy-waiting OpenMP threads slowed a training step from 92 to 543 ms when
another process shared a 2-core Xeon). ``make test`` also exports it; this covers a bare
``pytest`` run. Importing ace_utils sets nothing."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
