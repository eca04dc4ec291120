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

Besides reading (:func:`read_long_run`) and the comparison rows (:func:`summary`,
:func:`comparison_table`): how a run was made (:func:`describe_run`), what changes from the
branch epoch to the end (:func:`branch_changes`), and the two figures the book draws of a run
(:func:`plot_long_run`, :func:`plot_long_run_accuracy`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ace_utils.tasks.modular import load_curves
from ace_utils.book.tables import markdown_table, mean_se

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["BRANCHES", "BRANCH_LABEL", "LATE_FROM", "LongRun", "BranchChanges", "read_long_run", "describe_run",
           "branch_changes", "plot_long_run", "plot_long_run_accuracy", "summary", "comparison_table"]

BRANCHES = ("main", "wd0")
BRANCH_LABEL = {"main": "WD = 1", "wd0": "WD 1→0"}
# r_core jumps by up to ~30 between neighbouring checkpoints late in a run: late values are means from here on
LATE_FROM = 15_000


@dataclass(frozen=True)
class LongRun:
    """One committed long run. ``ckpts[branch][name]``: (C,) for ``"epoch"``, (C, M) otherwise;
    ``logs[branch][name]`` likewise (empty dicts where the run logged only at checkpoints);
    ``finals``: one dict per model, ``{"label", "main": profile, "wd0": profile}``, of the models
    at epoch ``finals_epoch`` (None where the run has no ``final_states.json``)."""

    name: str
    ckpts: dict[str, dict[str, np.ndarray]]
    logs: dict[str, dict[str, np.ndarray]]
    meta: dict[str, Any]
    finals: list[dict[str, Any]]
    branch_epoch: int
    finals_epoch: int | None = None

    @property
    def n_models(self) -> int:
        return int(self.ckpts["main"]["r_core"].shape[1])

    @property
    def config(self) -> dict[str, Any]:
        """The run's configuration: ``meta["run"]`` where the writer nests it, else ``meta``."""
        return self.meta.get("run", self.meta)

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
    finals, finals_epoch = [], None
    if finals_path.exists():
        states = json.loads(finals_path.read_text())
        epoch = states.get("epoch")  # one epoch, or one per branch (the reference code's analysis)
        finals_epoch = None if epoch is None else int(min(epoch.values()) if isinstance(epoch, dict) else epoch)
        for m in states["models"]:
            label = f"seed {m['model_seed']}" if "model_seed" in m else str(m["model"])
            finals.append({"label": label, "main": m["main"], "wd0": m["wd0"]})
    branch_epoch = int(meta["run"]["branch_epoch"]) if "run" in meta else int(meta["branch_epoch"])
    return LongRun(directory.name if name is None else name, _split(curves, "ckpt"), _split(curves, "log"),
                   meta, finals, branch_epoch, finals_epoch)


@dataclass(frozen=True)
class BranchChanges:
    """What a run does after its branch epoch, per branch (``"main"``, ``"wd0"``) and model (M,):
    ``core_growth`` = r_core at the end minus r_core at the branch epoch, ``energy_drop`` =
    r_energy at the branch epoch minus r_energy at the end, ``min_acc`` = the lowest test
    accuracy after epoch ``after`` (logged every few epochs where the run has logs, else at the
    checkpoints); ``branch_index`` is the main run's checkpoint index of the branch epoch."""

    branch_index: int
    core_growth: dict[str, np.ndarray]
    energy_drop: dict[str, np.ndarray]
    min_acc: dict[str, np.ndarray]
    after: int


def branch_changes(run: LongRun, after: int = 1000) -> BranchChanges:
    """:class:`BranchChanges` of ``run``: both branches start from the main run's checkpoint at
    the branch epoch (the first ``wd0`` checkpoint) and end at their last checkpoint."""
    main = run.ckpts["main"]
    hit = np.flatnonzero(main["epoch"] == run.branch_epoch)
    if not hit.size:
        raise KeyError(f"{run.name}: no main checkpoint at the branch epoch {run.branch_epoch}")
    jb = int(hit[0])
    start = {"main": jb, "wd0": 0}
    growth = {b: run.ckpts[b]["r_core"][-1] - run.ckpts[b]["r_core"][start[b]] for b in BRANCHES}
    drop = {b: run.ckpts[b]["r_energy"][start[b]] - run.ckpts[b]["r_energy"][-1] for b in BRANCHES}
    source = "log" if run.logs["main"] else "ckpt"
    low = {b: run.min_accuracy(b, after, source=source)[0] for b in BRANCHES}
    return BranchChanges(jb, growth, drop, low, after)


def describe_run(run: LongRun) -> str:
    """How ``run`` was made (its command; its calls' start, commit, wall time and machines) and
    its first and last checkpoints per branch, as lines of text. A writer that records one call
    keeps it in ``meta`` itself, a resumable one a ``calls`` list."""
    meta = run.meta
    calls = meta.get("calls", [meta])
    machines = sorted({str(c.get("machine", "?")).split("; load")[0] for c in calls})
    wall = sum(float(c.get("wall_s", 0.0)) for c in calls)
    lines = [f"command: {meta.get('command', '?')}",
             f"{len(calls)} call(s) from {calls[0].get('started_utc', '?')} at commit {calls[0].get('git_commit', '?')}; "
             f"{wall / 60:.0f} min wall on: " + "; ".join(machines)]
    for b in BRANCHES:
        c = run.ckpts[b]
        for j in (0, -1):
            lines.append(f"{BRANCH_LABEL[b]:7s} epoch {int(c['epoch'][j]):6d}: test acc {np.round(c['test_acc'][j], 3).tolist()}, "
                         f"r_core {c['r_core'][j].astype(int).tolist()}, r_suf {c['r_suf'][j].astype(int).tolist()}, "
                         f"r_energy {c['r_energy'][j].astype(int).tolist()}, modes {c['modes'][j].astype(int).tolist()}, "
                         f"R²_h {np.round(c['r2_h'][j], 2).tolist()}")
    return "\n".join(lines)


PANELS = (("r_core", "core dimension r_core"), ("r_suf", "sufficient dimension r_suf"),
          ("r_energy", "energy dimension r_energy"), ("modes", "rotational modes"),
          ("r2_h", "held-out R²_h of the shift operator"))


def plot_long_run(run: LongRun) -> "Figure":
    """Five panels over the run (:data:`PANELS`: r_core, r_suf, r_energy, rotational modes,
    R²_h), mean ± SE over models, WD = 1 in black and WD 1→0 in purple; a dotted line at the
    branch epoch; R²_h's panel shows [-2.1, 1.05] with a line at 0.9. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(15, 3.1))
    for b, col in (("main", "k"), ("wd0", "purple")):
        c = run.ckpts[b]
        for ax, (key, _) in zip(axes, PANELS):
            m, se = mean_se(c[key])
            ax.plot(c["epoch"], m, color=col, label=BRANCH_LABEL[b])
            ax.fill_between(c["epoch"], m - se, m + se, color=col, alpha=0.15)
    p = run.config.get("p")
    for ax, (key, label) in zip(axes, PANELS):
        if key == "modes" and p:
            label = f"{label} (max {p // 2 + 1})"
        ax.axvline(run.branch_epoch, color="0.4", ls=":")
        ax.set(xlabel="epoch", ylabel=label)
    axes[-1].set_ylim(-2.1, 1.05)
    axes[-1].axhline(0.9, color="0.6", lw=0.8)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_long_run_accuracy(run: LongRun) -> "Figure":
    """Test accuracy over the run, one line per model, WD = 1 (left) and WD 1→0 (right), from
    the logs where the run has them, else from the checkpoints. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
    for ax, b in zip(axes, BRANCHES):
        c = run.logs[b] or run.ckpts[b]
        for i in range(c["test_acc"].shape[1]):
            ax.plot(c["epoch"], c["test_acc"][:, i], lw=0.7, label=f"model {i + 1}")
        title = BRANCH_LABEL[b] + (f" (from epoch {run.branch_epoch})" if b == "wd0" else "")
        ax.set(xlabel="epoch", title=title)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


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

    sums = {label: summary(run, start, acc_after) for label, run in runs.items()}
    names = [k for k in next(iter(sums.values()))]
    paper = paper or {}
    rows = [[name, *(s.get(name, "-") for s in sums.values()), paper.get(name, "not reported")] for name in names]
    return markdown_table(["quantity (values per model)", *runs, "paper"], rows)
