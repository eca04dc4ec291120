"""Modular addition ``a + b mod p``: data, fast training of seeded models, and the
per-checkpoint core analyses (core dimension, keep/remove scans, the "add 1" shift operator
on class prototypes).

Explained in chapter ``03_grokking_core`` (core formation at grokking, the rotation,
inflation) and shared with ``04_grokking_time``.

Models and site. ``GrokRun.architecture`` chooses the model: ``"paper"``, the paper's
2-layer post-LN PyTorch encoder (:class:`ace_utils.models.paper.PaperTransformer`: dropout
0.1 at PyTorch's sites, a readout with bias), or ``"pre-ln"``, a TransformerLens-native
2-layer model (:func:`ace_utils.models.native.build_native_model`: pre-LN, final LayerNorm,
unbiased unembedding; dropout added as a training-time mask). Inputs are the two tokens
``[a, b]`` (no "=" token, vocabulary ``p``); the loss and the accuracy use the last position
only. ACE runs at ``unembed.hook_in``, position -1: the activation the readout reads
*linearly* (the paper's site), so the observability Gramian is exactly ``W_U^T W_U``, and a
keep/remove projection there changes the logits by an exact affine map.

Training speed. Training runs on the models' parameters stacked on a leading "model" axis
(``n_models`` independently seeded models; AdamW is elementwise, so one optimizer over the
stacked tensors is one optimizer per model). The paper's models run their own forward
(:func:`paper_last_logits`: ``torch.func.functional_call`` of the module on each slice,
with one dropout RNG stream per model). The native models use a functional forward
(:func:`forward_last`) that computes exactly the native model's logits at the last
position and skips the work the loss never sees. Tests check both against the modules.
The stacked parameters are written back into models for every analysis (:func:`to_models`),
which runs through the TransformerLens hooks. Chapter 03 trains each model in its own
process (:func:`run_models`: one-model runs, ``workers`` at a time, each cached); the main
run and the weight-decay branch are separate cached stages (:func:`run_main`,
:func:`run_branch`), and :func:`run_experiment_resumable` trains a long run in saved
segments. Training is float32 unless ``GrokRun.precision`` asks for bfloat16 autocast
(native models only).

The package's modules, one job each (every name below is also importable from here):

- :mod:`ace_utils.tasks.modular.data`: the data set and its split (:class:`ModData`).
- :mod:`ace_utils.tasks.modular.config`: the run configuration (:class:`GrokRun`), presets
  and checkpoint schedules.
- :mod:`ace_utils.tasks.modular.stacked_models`: stacked parameters, their forwards, and the
  hooked models that hold them.
- :mod:`ace_utils.tasks.modular.training`: training and evaluation of the stacked models.
- :mod:`ace_utils.tasks.modular.analysis`: the per-checkpoint core analyses.
- :mod:`ace_utils.tasks.modular.runs`: the run entry points (cached, per-model processes,
  resumable).
- :mod:`ace_utils.tasks.modular.records`: the curves record and its ``.npz`` file.
"""

from __future__ import annotations

from ace_utils.models.paper import ARCHITECTURES
from ace_utils.tasks.modular.analysis import (
    ACE_HOOK,
    ENERGY_THRESHOLD,
    analyse_checkpoint,
    class_prototypes,
    core_dimensions,
    fourier_power_share,
    grok_epoch,
    in_sample_modes,
    in_sample_r2,
    last_position_activations,
    readout_scorer,
    redundancy_profile,
    scan_keep_remove,
    shift_operator,
)
from ace_utils.tasks.modular.config import (
    DEFAULT_PAPER_MODELS,
    PRESETS,
    GrokRun,
    checkpoint_schedule,
    model_config,
    preset_run,
    preset_run_from_record,
    single_runs,
)
from ace_utils.tasks.modular.data import ModData, make_data
from ace_utils.tasks.modular.records import CURVE_KEYS, LOG_KEYS, curves_record, load_curves, save_curves
from ace_utils.tasks.modular.runs import (
    CACHE_VERSION,
    resumable_path,
    run_branch,
    run_experiment,
    run_experiment_resumable,
    run_main,
    run_models,
    run_models_resumable,
)
from ace_utils.tasks.modular.stacked_models import (
    bridge_last_logits,
    forward_last,
    init_stacked,
    paper_last_logits,
    param_names,
    to_models,
)
from ace_utils.tasks.modular.training import evaluate_stacked, train_stacked

# Two internals the tests read (the program a device and ``batched`` choose, a model's batch order).
from ace_utils.tasks.modular.runs import _program  # noqa: E402,F401
from ace_utils.tasks.modular.training import _batch_perms  # noqa: E402,F401

__all__ = [
    "ACE_HOOK",
    "ENERGY_THRESHOLD",
    "PRESETS",
    "DEFAULT_PAPER_MODELS",
    "GrokRun",
    "ModData",
    "make_data",
    "model_config",
    "init_stacked",
    "forward_last",
    "paper_last_logits",
    "ARCHITECTURES",
    "to_models",
    "bridge_last_logits",
    "train_stacked",
    "param_names",
    "evaluate_stacked",
    "last_position_activations",
    "readout_scorer",
    "fourier_power_share",
    "scan_keep_remove",
    "core_dimensions",
    "class_prototypes",
    "shift_operator",
    "in_sample_r2",
    "in_sample_modes",
    "checkpoint_schedule",
    "analyse_checkpoint",
    "redundancy_profile",
    "grok_epoch",
    "run_main",
    "run_branch",
    "run_experiment",
    "run_experiment_resumable",
    "single_runs",
    "run_models",
    "run_models_resumable",
    "resumable_path",
    "preset_run",
    "preset_run_from_record",
    "CURVE_KEYS",
    "LOG_KEYS",
    "curves_record",
    "save_curves",
    "load_curves",
]
