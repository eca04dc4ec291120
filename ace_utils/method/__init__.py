"""The method: ACE and what validates and compares its cores.

``ace`` (Gramians, square-root balanced truncation, the energy dimension), ``core`` (ACE on a
TransformerLens model in one call: ``find_core``),
``interventions`` (keep, remove or flip a subspace through a hook), ``activations``
(activations and output gradients at hook points), ``alignment`` (principal angles, CCA),
``operators`` (a linear map fitted in the core and its rotational modes), ``synthetic``
(linear systems with a planted core) and ``baselines`` (other ways of finding a subspace).
Model-agnostic: every function takes tensors or a model with TransformerLens hooks.
"""
