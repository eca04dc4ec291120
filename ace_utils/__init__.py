"""ace_utils: the package the ace-book chapters import.

Four folders: ``method`` (ACE, interventions, activations, alignment, operators, synthetic
systems, baselines), ``models`` (the native and the paper's models, pretrained models, the
readout, stacked layers, precision, training), ``tasks`` (the chapters' tasks: markov,
modular, grokking_time, agreement, agreement_corpus, architecture) and ``book`` (the book's
tooling: parameters, claims, tables, the model cache, Dask runs, the seed runner, the
machine record). The API page of the book lists every module.
"""

import os as _os

# Two busy-waiting OpenMP threads collapse when another process shares the
# cores (setup notes); passive waiting avoids it. Effective only if set before
# torch is imported, which importing ace_utils first guarantees.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
