"""Committed 20,000-epoch mod-add runs: read them, summarise them per model, compare them.

A long run is a folder under ``results/`` holding ``curves.npz`` (the
:func:`ace_utils.tasks.modular.save_curves` format: ``"{branch}/ckpt/{name}"`` arrays of shape
(C,) for ``epoch`` and (C, M) otherwise, optionally ``"{branch}/log/{name}"`` logged every few
epochs), ``meta.json`` (how it was made) and ``final_states.json`` (the
:func:`~ace_utils.tasks.modular.redundancy_profile` of every final model). Branches: ``"main"``
(weight decay 1 throughout) and ``"wd0"`` (weight decay 0 from the branch epoch; its first
checkpoint is the main run's at that epoch). Two writers make such folders: this book's
``scripts/modular_paper_run.py`` (+ ``scripts/long_run_final_states.py``) and
``scripts/reference_run_analysis.py`` (the reference code's own checkpoints, analysed here;
no ``log/`` arrays: the reference code evaluates only at its checkpoints).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ace_utils.tasks.modular import load_curves

__all__ = ["BRANCHES", "LATE_FROM", "LongRun", "read_long_run", "summary", "comparison_table"]

BRANCHES = ("main", "wd0")
# r_core jumps by up to ~30 between neighbouring checkpoints late in a run: late values are means from here on
LATE_FROM = 15_000


@dataclass(frozen=True)
class LongRun:
    """One committed long run. ``ckpts[branch][name]``: (C,) for ``"epoch"``, (C, M) otherwise;
    ``logs[branch][name]`` likewise (empty dicts where the run logged only at checkpoints);
    ``finals``: one dict per model, ``{"label", "main": profile, "wd0": profile}``."""

    name: str
    ckpts: dict[str, dict[str, np.ndarray]]
    logs: dict[str, dict[str, np.ndarray]]
    meta: dict[str, Any]
    finals: list[dict[str, Any]]
    branch_epoch: int

    @property
    def n_models(self) -> int:
        return int(self.ckpts["main"]["r_core"].shape[1])

    def at(self, branch: str, key: str, epoch: int) -> np.ndarray:
        """``key`` at checkpoint ``epoch`` of ``branch``, per model (M,)."""
        c = self.ckpts[branch]
        hit = np.flatnonzero(c["epoch"] == epoch)
        if not hit.size:
            raise KeyError(f"{self.name}: no {branch} checkpoint at epoch {epoch}")
        return c[key][hit[0]]

    def late(self, branch: str, key: str, start: int = LATE_FROM) -> np.ndarray:
        """Mean of ``key`` over the checkpoints at epochs >= ``start``, per model (M,)."""
        c = self.ckpts[branch]
        return c[key][c["epoch"] >= start].mean(0)

    def min_accuracy(self, branch: str, after: int = 1000, *, source: str = "ckpt") -> tuple[np.ndarray, np.ndarray]:
        """Lowest test accuracy after epoch ``after`` per model and the epochs where it falls,
        read from the checkpoints (``source="ckpt"``, every run has them) or the logs (``"log"``)."""
        c = self.ckpts[branch] if source == "ckpt" else self.logs[branch]
        if not c:
            raise KeyError(f"{self.name}: no {source} accuracy for {branch}")
        mask = c["epoch"] > after
        if not mask.any():
            raise ValueError(f"{self.name}: no {branch} {source} accuracy after epoch {after}")
        acc = c["test_acc"][mask]
        j = acc.argmin(0)
        return acc.min(0), c["epoch"][mask][j]


def _split(curves: dict[str, np.ndarray], kind: str) -> dict[str, dict[str, np.ndarray]]:
    return {b: {k.split("/", 2)[2]: v for k, v in curves.items() if k.startswith(f"{b}/{kind}/")} for b in BRANCHES}


def read_long_run(directory: Path | str, name: str | None = None) -> LongRun:
    """Read a committed long-run folder (see the module docstring)."""
    directory = Path(directory)
    curves = load_curves(directory / "curves.npz")
    meta = json.loads((directory / "meta.json").read_text())
    finals_path = directory / "final_states.json"
    finals = []
    if finals_path.exists():
        for m in json.loads(finals_path.read_text())["models"]:
            label = f"seed {m['model_seed']}" if "model_seed" in m else str(m["model"])
            finals.append({"label": label, "main": m["main"], "wd0": m["wd0"]})
    branch_epoch = int(meta["run"]["branch_epoch"]) if "run" in meta else int(meta["branch_epoch"])
    return LongRun(directory.name if name is None else name, _split(curves, "ckpt"), _split(curves, "log"),
                   meta, finals, branch_epoch)


def _ints(x: np.ndarray) -> str:
    return ", ".join(f"{v:.0f}" for v in np.asarray(x, float))


def _floats(x: np.ndarray, digits: int) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in np.asarray(x, float))


def summary(run: LongRun, start: int = LATE_FROM, acc_after: int = 1000) -> dict[str, str]:
    """The comparison rows of one run, each a string with one value per model (in model order).
    Late values are means over the checkpoints at epochs >= ``start``; the lowest accuracy is
    taken over the checkpoints after epoch ``acc_after``."""
    b = run.branch_epoch
    wd1 = {k: run.late("main", k, start) for k in ("r_core", "r_nec", "r_suf", "r_energy", "modes", "r2_h")}
    wd0 = {k: run.late("wd0", k, start) for k in wd1}
    low, low_at = run.min_accuracy("main", acc_after)
    rows = {
        "r_core WD = 1: at branch; late; at end": "; ".join(
            (_ints(run.at("main", "r_core", b)), _ints(wd1["r_core"]), _ints(run.ckpts["main"]["r_core"][-1]))),
        "r_core WD 1->0 late": _ints(wd0["r_core"]),
        "r_suf WD = 1 late (r_nec - r_suf)": f"{_ints(wd1['r_suf'])} ({_ints(wd1['r_nec'] - wd1['r_suf'])})",
        "r_energy late: WD = 1; WD 1->0": f"{_ints(wd1['r_energy'])}; {_ints(wd0['r_energy'])}",
        "rotational modes late: WD = 1; WD 1->0 (at branch)":
            f"{_ints(wd1['modes'])}; {_ints(wd0['modes'])} ({_ints(run.at('main', 'modes', b))})",
        "R²_h late: WD = 1; WD 1->0": f"{_floats(wd1['r2_h'], 2)}; {_floats(wd0['r2_h'], 2)}",
        f"lowest test acc. at checkpoints after {acc_after}, WD = 1 (epoch)":
            ", ".join(f"{a:.3f} ({e:.0f})" for a, e in zip(low, low_at)),
    }
    if "modes_in" in run.ckpts["main"]:
        rows["rotational modes late, in-sample ridge-0 fit: WD = 1; WD 1->0"] = (
            f"{_ints(run.late('main', 'modes_in', start))}; {_ints(run.late('wd0', 'modes_in', start))}")
    if run.finals and "modes_in" in run.finals[0]["main"]:
        rows["rotational modes at the end, held-out ridge-1 fit -> in-sample ridge-0 fit: WD = 1; WD 1->0"] = "; ".join(
            ", ".join(f"{f[b]['modes']} -> {f[b]['modes_in']}" for f in run.finals) for b in BRANCHES)
    if run.finals:
        rows["final: acc. without the r_energy directions, WD = 1; WD 1->0"] = (
            _floats([f["main"]["acc_without_energy"] for f in run.finals], 2) + "; "
            + _floats([f["wd0"]["acc_without_energy"] for f in run.finals], 2))
        rows["final parameter norm, WD = 1; WD 1->0"] = (
            _ints([f["main"]["param_norm"] for f in run.finals]) + "; "
            + _ints([f["wd0"]["param_norm"] for f in run.finals]))
    return rows


def comparison_table(runs: dict[str, LongRun], paper: dict[str, str] | None = None, start: int = LATE_FROM,
                     acc_after: int = 1000) -> str:
    """A Markdown table: one row per quantity of :func:`summary`, one column per run (values per
    model), and a last column with the paper's value where ``paper`` gives one."""
    from ace_utils.book.tables import markdown_table

    sums = {label: summary(run, start, acc_after) for label, run in runs.items()}
    names = [k for k in next(iter(sums.values()))]
    paper = paper or {}
    rows = [[name, *(s.get(name, "-") for s in sums.values()), paper.get(name, "not reported")] for name in names]
    return markdown_table(["quantity (values per model)", *runs, "paper"], rows)
