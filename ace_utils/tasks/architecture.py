"""What the architecture does to the core: the paper's models with one design choice changed.

Explained in chapter ``07_architecture_and_the_core``. A one-factor-at-a-time study around the
paper's models (:mod:`ace_utils.models.paper`). Each :class:`Setting` keeps the paper's model,
data and training and changes one of four design choices
(:class:`~ace_utils.models.paper.ModelVariant`: LayerNorm placement, dropout sites,
initialisation scale, readout bias; no dropout at all is ``dropout=0``), or all four at once
(close to the TransformerLens-native pre-LN models of this book). On modular addition a setting
is the chapter-03 run (:func:`ace_utils.tasks.modular.preset_run`, default preset, the paper's
models) with the change; the study summarises each model's checkpoint curves
(:func:`modadd_summary`). On the Markov chain a setting is the chapter-01 run with the change
(:func:`markov_run`), summarised by :func:`markov_summary`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from ace_utils.method.alignment import canonical_correlations, projector_overlap
from ace_utils.models.paper import ModelVariant
from ace_utils.tasks import markov as mk
from ace_utils.tasks import modular as mod

__all__ = [
    "Setting",
    "MODADD_SETTINGS",
    "MARKOV_SETTINGS",
    "setting_named",
    "modadd_run",
    "modadd_summary",
    "SUMMARY_KEYS",
    "markov_run",
    "markov_summary",
]


@dataclass(frozen=True)
class Setting:
    """One model of the study: ``name`` (a file-safe id), ``label`` (for tables and legends),
    ``factor`` (the design choice it changes), ``variant`` and ``dropout`` (the model)."""

    name: str
    label: str
    factor: str
    variant: ModelVariant = ModelVariant()
    dropout: float = 0.1


_ALL_FOUR = ModelVariant(norm="pre", dropout_sites="embed-resid", init="small", readout_bias=False)

MODADD_SETTINGS: tuple[Setting, ...] = (
    Setting("paper", "paper's model", "none (baseline)"),
    Setting("pre-ln", "pre-LN + final LN", "LayerNorm placement", ModelVariant(norm="pre")),
    Setting("no-dropout", "no dropout", "dropout sites", dropout=0.0),
    Setting("embed-resid-dropout", "dropout on embeddings + residual writes", "dropout sites",
            ModelVariant(dropout_sites="embed-resid")),
    Setting("small-init", "small init N(0, 0.8/sqrt(d))", "initialisation", ModelVariant(init="small")),
    Setting("no-readout-bias", "no readout bias", "readout bias", ModelVariant(readout_bias=False)),
    Setting("all-four", "all four changed", "all four", _ALL_FOUR),
)

MARKOV_SETTINGS: tuple[Setting, ...] = (
    MODADD_SETTINGS[0],
    MODADD_SETTINGS[1],
    MODADD_SETTINGS[2],
    Setting("pre-ln-no-dropout", "pre-LN + final LN, no dropout", "LayerNorm placement and dropout",
            ModelVariant(norm="pre"), dropout=0.0),
)


def setting_named(name: str, settings: Sequence[Setting] = MODADD_SETTINGS) -> Setting:
    """The setting called ``name``; ``ValueError`` naming the allowed names otherwise."""
    for s in settings:
        if s.name == name:
            return s
    raise ValueError(f"setting must be one of {tuple(s.name for s in settings)}, got {name!r}")


# --------------------------------------------------------------------------- modular addition


def modadd_run(setting: Setting, *, seed: int = 0, n_models: int = 2, epochs: int = 0) -> mod.GrokRun:
    """Chapter 03's default run on the paper's models (``seed``: models ``seed + 1000 i``),
    with ``setting``'s change. ``epochs`` > 0 trains only the first ``epochs`` (no
    weight-decay branch): the same numbers as the full run up to there."""
    run = mod.preset_run("default", seed=seed, n_models=n_models, architecture="paper", epochs=epochs,
                         branch_epoch=0 if epochs else -1)  # 0 / -1: the preset's epochs / branch
    return replace(run, variant=setting.variant, dropout=setting.dropout)


_AT_END = ("r_suf", "r_nec", "r_core", "core_only_acc", "core_removed_acc", "modes", "r2_in", "r2_h", "test_acc")
SUMMARY_KEYS = ("grok_epoch", "r_energy_init", "r_energy_grok", "r_energy_end") + _AT_END


def modadd_summary(curves: dict[str, np.ndarray], level: float = 0.99) -> dict[str, np.ndarray]:
    """Per model, the study's numbers from a main run's curves (:func:`ace_utils.tasks.modular.curves_record`).

    ``grok_epoch``: first logged epoch with test accuracy >= ``level`` (NaN if never);
    ``r_energy_init`` / ``_grok`` / ``_end``: the energy dimension at initialisation, at the
    first checkpoint at or after grokking (NaN if never) and at the last checkpoint; the
    other keys of :data:`SUMMARY_KEYS` at the last checkpoint. Returns key -> (M,) floats.
    """
    log_epoch, test_acc = curves["main/log/epoch"], curves["main/log/test_acc"]
    ck_epoch = curves["main/ckpt/epoch"]
    r_energy = curves["main/ckpt/r_energy"]
    n_models = test_acc.shape[1]
    out: dict[str, np.ndarray] = {k: np.full(n_models, np.nan) for k in SUMMARY_KEYS}
    for m in range(n_models):
        g = mod.grok_epoch(log_epoch, test_acc[:, m], level)
        if g is not None:
            out["grok_epoch"][m] = g
            at = np.flatnonzero(ck_epoch >= g)
            if at.size:
                out["r_energy_grok"][m] = r_energy[at[0], m]
    out["r_energy_init"] = r_energy[0].astype(float)
    out["r_energy_end"] = r_energy[-1].astype(float)
    for k in _AT_END:
        out[k] = curves[f"main/ckpt/{k}"][-1].astype(float)
    return out


# --------------------------------------------------------------------------- Markov chain


def markov_run(setting: Setting, seed: int) -> mk.MarkovRun:
    """Chapter 01's default run (the paper's model, default preset) at ``seed`` with
    ``setting``'s change."""
    return mk.MarkovRun(seed=seed, **mk.PRESETS["default"], dropout=setting.dropout, variant=setting.variant)


def markov_summary(models: Sequence[torch.nn.Module], data: mk.MarkovData, k: int = 3) -> dict[str, np.ndarray]:
    """The Markov numbers of the study for models trained on ``data`` (the paper's chain).

    Per model (M,): ``acc`` (next-token test accuracy), ``rank`` (ACE's energy rank at the
    chapter-01 threshold), ``real_error`` (distance of the fitted real eigenvalue from the
    chain's 0.5, in the ``k``-dimensional core), ``complex_error`` (the largest distance
    for the complex pair); ``eigenvalues`` (M, n_states - 1) complex, the fitted ones matched
    to the chain's (:func:`ace_utils.tasks.markov.nontrivial_eigenvalues` order). Per pair of
    models (P,), in ``itertools.combinations`` order:
    ``overlap`` (projector overlap of the ``k``-dimensional cores in activation space) and
    ``cca`` (the mean of the top ``k`` canonical correlations of the core coordinates on
    the same test sequences).
    """
    cores = [mk.markov_core(m, data) for m in models]
    true = mk.nontrivial_eigenvalues(data.T)
    real = np.abs(true.imag) <= 1e-9
    out: dict[str, list] = {k_: [] for k_ in ("acc", "rank", "real_error", "complex_error")}
    Zs, eigenvalues = [], []
    for m, (res, H) in zip(models, cores):
        spec = mk.core_spectrum(res, H, data, r=k)
        eigenvalues.append(spec.eigenvalues)
        out["acc"].append(mk.next_token_accuracy(m, data.test))
        out["rank"].append(res.rank)
        out["real_error"].append(float(spec.errors[real].max()))
        out["complex_error"].append(float(spec.errors[~real].max()))
        Zs.append(mk.core_coordinates(res, H, data.test.shape[0], r=k).reshape(-1, k))
    overlap, cca = [], []
    for i in range(len(models)):
        for j in range(i + 1, len(models)):
            overlap.append(projector_overlap(cores[i][0].core(k), cores[j][0].core(k)))
            cca.append(float(np.mean(canonical_correlations(Zs[i], Zs[j], k=k))))
    summary = {k_: np.asarray(v, dtype=float) for k_, v in out.items()}
    summary["overlap"] = np.asarray(overlap, dtype=float)
    summary["cca"] = np.asarray(cca, dtype=float)
    summary["eigenvalues"] = np.asarray(eigenvalues, dtype=complex)
    return summary
