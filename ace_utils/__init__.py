"""ace_utils: helpers for the ace-book chapters.

Modules: ``ace`` (the method), ``interventions``, ``alignment``, ``operators``,
``activations``, ``synthetic``, ``params``, ``models``, ``training``, ``runtime``
and ``tasks.*``. Each public function's docstring names the chapter that explains it.
"""

import os as _os

# Two busy-waiting OpenMP threads collapse when another process shares the
# cores (setup notes); passive waiting avoids it. Effective only if set before
# torch is imported, which importing ace_utils first guarantees.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
