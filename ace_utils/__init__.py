"""ace_utils: helpers for the ace-book chapters.

Modules: ``ace`` (the method), ``interventions``, ``alignment``, ``operators``,
``activations``, ``synthetic``, ``baselines``; the models (``models``, ``paper_model``,
``stacked``) and their training (``training``, ``precision``); the tasks
(``tasks.markov``, ``tasks.modular``, ``tasks.grokking_time``, ``tasks.agreement``,
``tasks.agreement_corpus``, ``tasks.architecture``); independent runs as Dask tasks (``cluster``,
``processes``); and the book's tooling (``params``, ``claims``, ``tables``, ``rerun``,
``machine``).
The API page of the book lists them.
"""

import os as _os

# Two busy-waiting OpenMP threads collapse when another process shares the
# cores (setup notes); passive waiting avoids it. Effective only if set before
# torch is imported, which importing ace_utils first guarantees.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
