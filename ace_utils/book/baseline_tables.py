"""Tables and bar charts that set subspace finders side by side.

A *run* here is one model's comparison, a mapping with ``"scores"`` (finder -> mode -> value,
as :func:`ace_utils.method.baselines.compare_subspaces` returns it) and ``"bases"`` (finder ->
(D, k) basis). :func:`task_table` and :func:`bar_plot` summarise such runs over models;
:func:`dimension_table` tabulates scans of nested bases (runs with ``"curves"``, ``"sn"``,
``"dims"`` and ``"bases"``), and :func:`dimension_text`, :func:`dimensions_text`,
:func:`mark` and :func:`column_of` write the pieces of text the tables and prose use.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ace_utils.book.tables import dict_table
from ace_utils.method.baselines import max_angle

__all__ = ["task_table", "bar_plot", "dimension_text", "dimensions_text", "dimension_table", "mark", "column_of"]

Run = Mapping[str, Any]
ANGLE = "angle to ACE (deg)"


def task_table(runs: Sequence[Run], modes: Sequence[str], angle_to: str = "ACE") -> str:
    """A Markdown table, one row per finder: each mode's mean over the models with its range
    ("0.912 (0.900-0.930)"), and the mean largest principal angle (degrees) to ``angle_to``'s
    basis ("~90 (random)" for the random controls)."""
    rows = {}
    for name in runs[0]["scores"]:
        row = {}
        for mode in modes:
            v = [r["scores"][name][mode] for r in runs]
            row[mode] = f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})"
        if not name.startswith("random"):
            row[ANGLE] = f"{np.mean([max_angle(r['bases'][name], r['bases'][angle_to]) for r in runs]):.1f}"
        else:
            row[ANGLE] = "~90 (random)"
        rows[name] = row
    return dict_table(rows, list(modes) + [ANGLE])


def bar_plot(runs: Sequence[Run], modes: Sequence[str], colors: Sequence[str], ylabel: str,
             lines: Sequence[tuple[float, str, str]], ax: plt.Axes | None = None,
             names: Sequence[str] | None = None) -> plt.Axes:
    """Grouped bars of each finder's score per mode (mean over the models, one dot per model).

    ``colors``: one per mode; ``lines``: (y, linestyle, label) reference lines (full model,
    chance); ``names``: the finders to draw (default all, in the scores' order). Draws on
    ``ax`` or a new (8 x 3.4 in) figure and returns the axes.
    """
    names = list(names or runs[0]["scores"])
    ax = ax or plt.subplots(figsize=(8, 3.4))[1]
    width = 0.8 / len(modes)
    for j, mode in enumerate(modes):
        for i, name in enumerate(names):
            v = [r["scores"][name][mode] for r in runs]
            x = i + (j - (len(modes) - 1) / 2) * width
            ax.bar(x, np.mean(v), width * 0.9, color=colors[j], label=mode if i == 0 else None)
            ax.scatter(np.full(len(v), x), v, s=6, color="k", zorder=3)
    for y, style, label in lines:
        ax.axhline(y, color="0.3", ls=style, lw=0.8, label=label)
    ax.set_xticks(range(len(names)), [n.replace(", ", ",\n") for n in names], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def dimension_text(v: int | None, n_max: int) -> str:
    """A dimension as text, ``"> n_max"`` when it was never reached (None)."""
    return f"> {n_max}" if v is None else str(v)


def dimensions_text(runs: Sequence[Run], name: str, n_max: int) -> str:
    """``"r_suf / r_nec"`` of finder ``name`` in each run (``run["sn"][name]``), joined by " and "."""
    return " and ".join(f"{dimension_text(run['sn'][name][0], n_max)} / {dimension_text(run['sn'][name][1], n_max)}"
                        for run in runs)


def dimension_table(runs: Sequence[Run], angle_r: int = 15) -> str:
    """A Markdown table, one row per finder, of nested-basis scans: per model its
    ``r_suf / r_nec`` (``run["sn"]``), its keep / remove accuracy at the model's energy
    dimension ``run["dims"]["r_energy"]`` (``run["curves"]``: finder -> (keep, remove), each
    (R + 1,) over r = 0..R; capped at R), and for model 1 the largest principal angle
    (degrees) between the finder's and ACE's first ``angle_r`` directions."""
    rows = {}
    for name in runs[0]["sn"]:
        row = {}
        for i, run in enumerate(runs):
            keep, remove = run["curves"][name]
            s, r = run["sn"][name]
            row[f"model {i + 1}: r_suf / r_nec"] = (f"{dimension_text(s, len(keep) - 1)} / "
                                                    f"{dimension_text(r, len(keep) - 1)}")
            kk = run["dims"]["r_energy"]
            kq = min(kk, len(keep) - 1)
            row[f"model {i + 1}: keep / remove at k = {kk}"] = f"{keep[kq]:.3f} / {remove[kq]:.3f}" + (
                f" (k = {kq})" if kq < kk else "")
            if i == 0 and not name.startswith("random"):
                a = max_angle(run["bases"][name][:, :angle_r], run["bases"]["ACE"][:, :angle_r])
                row[f"angle to ACE at r = {angle_r} (deg), model 1"] = f"{a:.1f}"
        rows[name] = row
    return dict_table(rows, list(next(iter(rows.values())).keys()))


def mark(passed: bool) -> str:
    """✓ or ✗."""
    return "✓" if passed else "✗"


def column_of(rows: Mapping[str, Mapping[str, Any]], prefix: str, key: str) -> list[Any]:
    """``row[key]`` of every row whose name starts with ``prefix``, in order."""
    return [v[key] for n, v in rows.items() if n.startswith(prefix)]
