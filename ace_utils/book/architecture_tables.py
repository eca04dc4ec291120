"""The Markdown tables of chapter 07 (``07_architecture_and_the_core``): the study's settings,
its per-setting results on modular addition and on the Markov chain, and the closing columns
of the paper's model beside the other settings.

``summary`` is :func:`ace_utils.tasks.architecture`'s per-setting summary of the mod-add study
(``{setting name: {quantity: (M,) per model}}``); ``markov`` the same for the Markov study.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ace_utils.book.tables import markdown_table, per_model, span

__all__ = ["settings_table", "study_table", "markov_table", "paper_and_others", "markov_paper_and_others"]

Summary = Mapping[str, Mapping[str, Any]]


def settings_table(settings: Sequence[Any]) -> str:
    """One row per setting (:class:`ace_utils.tasks.architecture.Setting`): the design choice it
    changes, its LayerNorm placement, dropout sites and rate, initialisation and readout bias."""
    rows = []
    for s in settings:
        v = s.variant
        sites = ("none" if s.dropout == 0 else "attention probabilities, attention output, FFN hidden, FFN output"
                 if v.dropout_sites == "paper" else "embeddings, attention output, FFN output")
        rows.append([f"`{s.name}`", s.factor, "post-LN" if v.norm == "post" else "pre-LN + final LN",
                     sites + (f" (p = {s.dropout})" if s.dropout else ""),
                     "PyTorch default" if v.init == "pytorch" else "N(0, 0.8/√d)", "yes" if v.readout_bias else "no"])
    return markdown_table(["setting", "design choice changed", "LayerNorm", "dropout sites", "initialisation",
                           "readout bias"], rows)


def study_table(settings: Sequence[Any], summary: Summary) -> str:
    """The mod-add study, one row per setting, values per model: grokking epoch, energy
    dimension at init / grokking / end, r_suf, r_nec, core-removed accuracy, modes, R²."""
    rows = []
    for s in settings:
        v = summary[s.name]
        rows.append([s.label, per_model(v["grok_epoch"]),
                     " → ".join(per_model(v[k]) for k in ("r_energy_init", "r_energy_grok", "r_energy_end")),
                     per_model(v["r_suf"]), per_model(v["r_nec"]), per_model(v["core_removed_acc"], "{:.3f}"),
                     per_model(v["modes"]), per_model(v["r2_in"], "{:.2f}"), per_model(v["r2_h"], "{:.2f}")])
    return markdown_table(["setting", "grokking epoch", "energy dimension: init → grokking → end", "r_suf", "r_nec",
                           "core removed (at r_core: ≤ 2/p by its definition)", "rotational modes", "R² in-sample",
                           "R²_h held-out"], rows)


def markov_table(settings: Sequence[Any], markov: Summary, bayes: float) -> str:
    """The Markov study, one row per setting, ranges over its models: test accuracy (beside the
    Bayes limit ``bayes``), energy rank, eigenvalue errors, overlap and CCA across runs."""
    rows = [[s.label, span(markov[s.name]["acc"], "{:.4f}"), span(markov[s.name]["rank"], "{:.0f}"),
             span(markov[s.name]["real_error"]), span(markov[s.name]["complex_error"]), span(markov[s.name]["overlap"]),
             span(markov[s.name]["cca"], "{:.4f}")] for s in settings]
    return markdown_table(["setting", f"test accuracy (Bayes {bayes:.4f})", "energy rank", "real-eigenvalue error",
                           "complex-pair error", "projector overlap across runs", "mean CCA across runs"], rows)


def paper_and_others(summary: Summary, settings: Sequence[Any], key: str, fmt: str = "{:.0f}") -> list[str]:
    """Two closing-table cells of a mod-add quantity: the paper's model per model, and the range
    over the models of every other setting (``settings[1:]``; ``settings[0]`` is the paper's)."""
    return [per_model(summary["paper"][key], fmt), span([summary[s.name][key] for s in settings[1:]], fmt)]


def markov_paper_and_others(markov: Summary, settings: Sequence[Any], key: str, fmt: str = "{:.3f}") -> list[str]:
    """The same two cells for a Markov quantity, as ranges over models."""
    return [span(markov["paper"][key], fmt), span([markov[s.name][key] for s in settings[1:]], fmt)]
