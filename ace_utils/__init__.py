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
stays light.) Importing ``ace_utils`` changes no environment variable.

Threads: the book's commands (``make book``, ``make test``, the seed runner) run with
``OMP_WAIT_POLICY=PASSIVE``, because two busy-waiting OpenMP threads slowed a small model's
training step from 92 to 543 ms when another process shared a 2-core Xeon. The variable is read
when torch loads, so a chapter cannot set it (its first cell imports torch); chapters 01-07 run
torch on one thread instead, which that slowdown does not touch. To run torch on several threads
on a shared machine elsewhere, set ``OMP_WAIT_POLICY=PASSIVE`` before starting Python or Jupyter.
"""

__version__ = "0.1.0"

__all__ = ["Core", "find_core", "__version__"]


def __getattr__(name: str):
    if name in ("Core", "find_core"):
        from ace_utils.method import core

        return getattr(core, name)
    raise AttributeError(f"module 'ace_utils' has no attribute {name!r}")
