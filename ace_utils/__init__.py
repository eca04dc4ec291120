"""ace_utils: the package the ace-book chapters import.

Four folders: ``method`` (ACE, interventions, activations, alignment, operators, synthetic
systems, baselines), ``models`` (the native and the paper's models, pretrained models, the
readout, stacked layers, precision, training), ``tasks`` (the chapters' tasks: markov,
modular, grokking_time, agreement, agreement_corpus, architecture) and ``book`` (the book's
tooling: parameters, claims, tables, the model cache, Dask runs, the seed runner, the
machine record). The API page of the book lists every module.

ACE on your own model is one call at the top level::

    import ace_utils as au
    core = au.find_core(model, tokens, hook="blocks.3.hook_resid_post", metric=margin)

(:func:`ace_utils.method.core.find_core`; loaded on first use, so that ``import ace_utils``
stays light and sets the thread policy below before torch is imported.)
"""

import os as _os

# Two busy-waiting OpenMP threads collapse when another process shares the
# cores (setup notes); passive waiting avoids it. Effective only if set before
# torch is imported, which importing ace_utils first guarantees.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["Core", "find_core", "__version__"]


def __getattr__(name: str):
    if name in ("Core", "find_core"):
        from ace_utils.method import core

        return getattr(core, name)
    raise AttributeError(f"module 'ace_utils' has no attribute {name!r}")
