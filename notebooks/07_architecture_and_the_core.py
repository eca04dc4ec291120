# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · No single design choice inflates the modular-addition core; the native model's four together do, and the Markov core barely changes
#
# **What this chapter shows.** The paper finds cores invariant across training runs. Chapter 03 found that
# they are not invariant across architectures: on modular addition the TransformerLens-native
# pre-LN models keep a ~44-D core that stops being necessary only at 52 dimensions, where the
# paper's post-LN models form a ~15-D core that is both necessary and sufficient. The native
# models differ from the paper's in four design choices. Changed one at a time on the paper's
# model (two models per setting, a committed study), none reproduces the inflation: every
# model still forms a compact core with a rotation that predicts held-out classes.
# LayerNorm placement matters most, the small initialisation less, the dropout sites and the
# readout bias hardly at all, and without dropout the core is smaller still. Only the four
# changes together give the native picture: grokking in about half the epochs, an energy
# dimension that does not fall, all $p-1$ directions necessary and no rotation that
# generalises. The inflation is an interaction of the four, not the work of one. On the
# Markov chain none of the settings tried (post-LN or pre-LN, with or without dropout)
# changes anything: every model has a 3-D core with the chain's spectrum, and the cores of
# different runs are as near-orthogonal and as linearly equivalent as in chapters 01 and 02;
# over ten seeds the few exceptions lie in the changed settings (the robustness page). The
# numbers are given where they are computed or read. **Runtime:** {glue:md}`runtime` (the timing records of the {doc}`status page <../book/status>`):
# the mod-add study is read from committed files, one setting is retrained here for 200 epochs,
# and 9 of the 12 Markov models are trained (the other 3 are chapter 01's); `preset="full"`
# trains the whole study.

# %% tags=["remove-cell"]
# Colab setup. In Colab only: fetch the book's repository and install ace_utils with what this
# page needs from its pyproject.toml, keeping Colab's torch. A second run does nothing.
import os
import subprocess
import sys

_EXTRAS = "dask"  # this page's extras of pyproject.toml ("" for none)


def _colab_setup(extras: str) -> None:
    from importlib import invalidate_caches, metadata

    class SetupStopped(Exception):
        def _render_traceback_(self):  # IPython shows this one line, not a traceback
            return [f"SetupStopped: {self}"]

    repo = os.environ.get("ACE_BOOK_REPO", "https://github.com/ace-book/ace-book")
    clone = os.environ.get("ACE_BOOK_CLONE", "/content/ace-book")
    if not os.path.isdir(os.path.join(clone, "ace_utils")):
        got = subprocess.run(["git", "clone", "-q", "--depth", "1", repo, clone], capture_output=True, text=True)
        if got.returncode != 0:
            lines = got.stderr.strip().splitlines() or [f"git exited with {got.returncode}"]
            why = next((line for line in lines if line.startswith("fatal:")), lines[-1])
            raise SetupStopped(f"cannot fetch {repo}: {why}")
    stamp = os.path.join(clone, f".colab-installed-{extras or 'base'}")
    if not os.path.exists(stamp):
        keep = os.path.join(clone, ".colab-constraints.txt")
        with open(keep, "w") as f:
            f.write(f"torch=={metadata.version('torch')}\n")  # pip must not replace Colab's torch
        target = f"{clone}[{extras}]" if extras else clone
        if subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", keep, "-e", target]).returncode != 0:
            raise SetupStopped(f"pip could not install {target} beside Colab's torch (pip's message is above)")
        open(stamp, "w").close()
        invalidate_caches()
    if clone not in sys.path:
        sys.path.insert(0, clone)


if "google.colab" in sys.modules:  # pragma: no cover - only in Colab
    _colab_setup(_EXTRAS)

# %% tags=["parameters"]
seed = 0  # the Markov models' seeds are seed, seed + 100, ...; with preset 'full' also the mod-add models' (seed, seed + 1000)
preset = "default"  # 'default': the committed mod-add study, one setting retrained here; 'full': every setting trained here
live_setting = "pre-ln"  # the mod-add setting retrained here (a name of the settings table)
live_epochs = 200  # epochs of that retrain, compared with the committed study's first epochs (a multiple of 50)
markov_models = 3  # Markov models per setting (at least 2: the overlap is measured between runs)
workers = 2  # models trained at once, one process each (numbers do not depend on it)
device = "cpu"  # 'cpu' (where the study was made), 'cuda' (training and analyses there; the live check stays on the CPU), or 'auto'

# %% tags=["hide-input"]
import json
import time
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ace_utils.book import architecture_tables as at
from ace_utils.book import claims as ledger_rules
from ace_utils.book.chapter import open_chapter
from ace_utils.book.machine import fingerprint
from ace_utils.book.params import Choice, Device, Int
from ace_utils.book.plots import unit_circle
from ace_utils.book.tables import markdown_table, per_model, span
from ace_utils.tasks import architecture as arch
from ace_utils.tasks import markov as mk
from ace_utils.tasks import modular as mod

P, claims = open_chapter(
    "07_architecture_and_the_core",
    {"seed": Int(0, 10**6), "preset": Choice("default", "full"),
     "live_setting": Choice(*(s.name for s in arch.MODADD_SETTINGS)),
     "live_epochs": Choice(*range(50, 1001, 50)), "markov_models": Int(2, 10), "workers": Int(1, 16),
     "device": Device()},
    globals(),
    # claims asserted at these settings (the defaults; any seed), checked and reported elsewhere
    asserted_at={"preset": "default", "live_setting": "pre-ln", "live_epochs": 200, "markov_models": 3},
    threads=1,
)
device = P["device"]  # 'auto' resolved
t_start = time.perf_counter()
RESULTS = Path(arch.__file__).resolve().parents[2] / "results" / "architecture"

# %% [markdown]
# ## Seven versions of the paper's model
#
# The baseline is the paper's model as chapters 01 and 03 train it
# ({ref}`sources-reference-models`): PyTorch `TransformerEncoderLayer` blocks, post-LN with no
# final LayerNorm, dropout 0.1 where PyTorch puts it (the attention probabilities, the
# attention output, the FFN hidden activation and the FFN output), PyTorch's initialisation
# (token and position embeddings drawn from $\mathcal N(0,1)$) and a readout with a learned
# bias. The TransformerLens-native models of this book (`architecture="pre-ln"` in chapters
# 01-04 and 06) differ from it in four ways at once: pre-LN blocks with a final LayerNorm, dropout on
# the embeddings and on every residual write instead of PyTorch's sites, GPT-2-style weights
# $\mathcal N(0, 0.8/\sqrt{d})$ (embeddings about 14 times smaller), and no readout bias. Each
# setting below changes one of these (`ace_utils.models.paper.ModelVariant`); the last changes
# all four, which makes the model close to the native one. Everything else is chapter 03's
# run: $p = 53$, half of the pairs for training, 1000 epochs of AdamW with weight decay 1, two
# models per setting (seeds 0 and 1000), analysed every 50 epochs at the readout's input
# (`unembed.hook_in`; in the pre-LN settings, the final LayerNorm's output).

# %% tags=["hide-input"]
Markdown(at.settings_table(arch.MODADD_SETTINGS))

# %% [markdown]
# ## Modular addition: which choice inflates the core?
#
# Each setting's two models are trained for chapter 03's 1000 epochs by
# `scripts/architecture_study.py`, about 8 minutes per setting on 2 CPU cores and so too long
# for the book; the chapter reads the committed curves (`results/architecture/`) and retrains
# one setting below. The figure follows test accuracy, the energy dimension and the necessary
# dimension through training; the table gives each model's numbers at grokking and at epoch
# 1000 (both models of a setting, seed 0 / seed 1000).

# %%
if preset == "full":  # every setting trained here, as scripts/architecture_study.py does
    curves = {}
    for s in arch.MODADD_SETTINGS:
        out = mod.run_models_resumable(arch.modadd_run(s, seed=seed), workers=workers,
                                       segment_epochs=250, stop_after_main=True, device=device)
        curves[s.name] = mod.curves_record(out)
else:  # the committed study
    curves = {s.name: mod.load_curves(RESULTS / f"modadd-{s.name}-seed0.npz")
              for s in arch.MODADD_SETTINGS}
summary = {name: arch.modadd_summary(c) for name, c in curves.items()}
p_mod = arch.modadd_run(arch.MODADD_SETTINGS[0]).p
for name, s in summary.items():
    print(f"{name:>20}: grokking epoch {per_model(s['grok_epoch'])}, energy dimension at init / "
          f"grokking / end {per_model(s['r_energy_init'])}, {per_model(s['r_energy_grok'])}, "
          f"{per_model(s['r_energy_end'])}; r_suf {per_model(s['r_suf'])}, "
          f"r_nec {per_model(s['r_nec'])}")

# %% mystnb={"figure": {"caption": "Seven versions of the paper's mod-add model, two models each (solid: seed 0, dashed: seed 1000). Left: test accuracy; every model groks. Middle: the energy dimension of the ACE core falls under any single change and stays high only with all four. Right: the necessary dimension (the smallest r whose removal leaves at most 2/p accuracy); pre-LN blocks alone raise it, all four changes together to p - 1 = 52 (the numbers: the table below).", "name": "fig-arch-modadd"}}
colors = dict(zip([s.name for s in arch.MODADD_SETTINGS], plt.cm.tab10.colors))
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for s in arch.MODADD_SETTINGS:
    c = curves[s.name]
    for m in range(c["main/log/test_acc"].shape[1]):
        kw = dict(color=colors[s.name], lw=1.3, alpha=0.9, ls="-" if m == 0 else "--",
                  label=s.label if m == 0 else None)
        axes[0].plot(c["main/log/epoch"], c["main/log/test_acc"][:, m], **kw)
        axes[1].plot(c["main/ckpt/epoch"], c["main/ckpt/r_energy"][:, m], **kw)
        axes[2].plot(c["main/ckpt/epoch"], c["main/ckpt/r_nec"][:, m], **kw)
axes[0].set(xlabel="epoch", ylabel="test accuracy", title="grokking")
axes[1].set(xlabel="epoch", ylabel="dimensions", title="energy dimension (99 % of ACE's energy)")
axes[2].set(xlabel="epoch", ylabel="dimensions", title=f"necessary dimension (removal ≤ 2/p)")
axes[0].legend(fontsize=7, loc="lower right")
fig.tight_layout()

# %% tags=["hide-input"]
display(Markdown(at.study_table(arch.MODADD_SETTINGS, summary)))

# %%
single = [s.name for s in arch.MODADD_SETTINGS if s.name not in ("paper", "all-four")]
S = summary
# read from the committed study at the defaults (one run of two models per setting, whatever the seed)
study = dict(kind="committed", source="results/architecture/") if preset == "default" else {}

# %% tags=["hide-input"]
claims.holds("study_all_grok", all(np.isfinite(S[n]["grok_epoch"]).all() for n in S),
             {n: S[n]["grok_epoch"].tolist() for n in S}, "test accuracy >= 0.99 for every model",
             "study (2 models per setting): every model of every setting groks within 1000 epochs",
             paper="the paper's model groks near epoch 800 [TQ]", **study)
claims.holds("study_paper_energy_falls",
             bool((S["paper"]["r_energy_init"] >= 35).all() and (S["paper"]["r_energy_grok"] <= 25).all()),
             [S["paper"]["r_energy_init"].tolist(), S["paper"]["r_energy_grok"].tolist()], ">= 35, then <= 25",
             "study: on the paper's model the energy dimension falls from >= 35 at initialisation to <= 25 by grokking",
             paper="'~15D' at grokking [TS]", **study)
claims.at_most("study_single_change_compact", max(S[n]["r_energy_end"].max() for n in single), 25,
               "study: any one change leaves a compact core, energy dimension <= {bound} at the end (largest, five "
               "settings)", paper="not in the paper (beyond it)", **study)
claims.at_least("study_all_four_energy", S["all-four"]["r_energy_end"].min(), 35,
                "study: all four changes together keep the energy dimension >= {bound} at the end (smallest)",
                paper="not in the paper (beyond it)", **study)
claims.equal("study_all_four_r_nec", S["all-four"]["r_nec"].tolist(), p_mod - 1,
             "study: with all four changes the whole space is necessary, r_nec = p - 1 (both models)",
             paper="not in the paper (beyond it)", **study)
claims.below("study_all_four_no_rotation", S["all-four"]["r2_h"].max(), 0.5,
             "study: with all four changes the rotation does not generalise, R²_h < {bound} (largest)",
             paper="not in the paper (beyond it)", **study)
claims.holds("study_pre_ln_raises_r_nec", S["pre-ln"]["r_nec"].min() > S["paper"]["r_nec"].max(),
             [S["pre-ln"]["r_nec"].min(), S["paper"]["r_nec"].max()], "first > second",
             "study: pre-LN alone raises r_nec above every paper model's (smallest pre-LN, largest paper)",
             paper="not in the paper (beyond it)", **study)
claims.holds("study_no_dropout_smaller",
             bool((S["no-dropout"]["r_energy_end"] <= S["paper"]["r_energy_end"]).all()
                  and (S["no-dropout"]["r_nec"] <= S["paper"]["r_nec"]).all()),
             [S["no-dropout"]["r_energy_end"].tolist(), S["no-dropout"]["r_nec"].tolist()], "<= the paper model's",
             "study: without dropout the core is no larger than the paper model's (energy and r_nec, model by model)",
             paper="not in the paper (beyond it)", **study)
bias_energy = np.abs(S["no-readout-bias"]["r_energy_end"] - S["paper"]["r_energy_end"])
bias_nec = np.abs(S["no-readout-bias"]["r_nec"] - S["paper"]["r_nec"])
claims.equal("study_readout_bias_energy", bias_energy.tolist(), 0,
             "study: the readout bias does not change the energy dimension (difference from the paper model's, model by "
             "model)", paper="not in the paper (beyond it)", **study)
claims.at_most("study_readout_bias_r_nec", bias_nec.tolist(), 1,
               "study: nor the necessary dimension beyond one direction (difference from the paper model's, model by "
               "model)", paper="not in the paper (beyond it)",
               reason="r_nec is the first r whose removal leaves at most 2/p, a threshold one test pair can move by a "
                      "direction; the energy dimension, which has no such threshold, is held to 0", **study)
display(claims.ledger())
sm = summary
Markdown(
    "Read from the paper's model down (the committed study, `results/architecture/`, seed 0 / seed 1000). Pre-LN "
    f"blocks change grokking ({per_model(sm['pre-ln']['grok_epoch'])} against {per_model(sm['paper']['grok_epoch'])}) "
    f"and inflate the core in part: the energy dimension ends at {per_model(sm['pre-ln']['r_energy_end'])} instead of "
    f"{per_model(sm['paper']['r_energy_end'])} and the necessary dimension at {per_model(sm['pre-ln']['r_nec'])} "
    f"instead of {per_model(sm['paper']['r_nec'])}, while the rotation still generalises ($R^2_h$ "
    f"{per_model(sm['pre-ln']['r2_h'], '{:.2f}')}). Without dropout the models grok at "
    f"{per_model(sm['no-dropout']['grok_epoch'])} into cores of energy {per_model(sm['no-dropout']['r_energy_end'])}, "
    f"$r_\\text{{nec}}$ {per_model(sm['no-dropout']['r_nec'])} and {per_model(sm['no-dropout']['modes'])} rotational "
    "modes. Moving dropout to the embeddings and residual writes, or dropping the readout bias, leaves the core as it "
    f"is (without the bias: energy {per_model(sm['no-readout-bias']['r_energy_end'])}, $r_\\text{{nec}}$ "
    f"{per_model(sm['no-readout-bias']['r_nec'])}, grokking at {per_model(sm['no-readout-bias']['grok_epoch'])}). The "
    f"small initialisation gives $r_\\text{{nec}}$ {per_model(sm['small-init']['r_nec'])}. The four changes together "
    f"are another regime: the models grok at {per_model(sm['all-four']['grok_epoch'])}, the energy dimension never "
    f"falls ({per_model(sm['all-four']['r_energy_end'])} at the end), the whole {p_mod - 1}-dimensional space is "
    f"necessary, the sufficient dimension is {per_model(sm['all-four']['r_suf'])}, and the \"add 1\" operator fitted "
    f"on class prototypes is exact in sample ($R^2$ {per_model(sm['all-four']['r2_in'], '{:.2f}')}) but fails on "
    f"held-out classes ($R^2_h$ {per_model(sm['all-four']['r2_h'], '{:.2f}')}). The claims above are checked on these "
    "committed curves; they rest on the two models of each setting, one committed run, not on ten seeds.")

# %% [markdown]
# ## One setting retrained here
#
# The study's files were made by `scripts/architecture_study.py`; the command, machine, git
# commit and time of each setting are in `results/architecture/meta.json`. Here the first
# `live_epochs` epochs of the `live_setting` models (seeds 0 and 1000) are trained again and
# compared with the file, as chapter 03 does for its long run. On the machine that made the
# file (same CPU kind, kernels, thread count and PyTorch) the numbers must be identical. On
# another CPU kind the matrix kernels round differently, and the float32 trajectories drift
# apart over training; the comparison then allows the largest differences we measured
# between AVX2 and AVX-512 kernels on one machine, with a margin: over the first 200 epochs
# of the pre-LN setting, 0.0014 in test accuracy (two of the 1405 test pairs), 0.0008 in
# training loss and none in the energy and necessary dimensions; allowed are 0.003, 0.002
# and one dimension.

# %%
live = arch.setting_named(live_setting)
# on the CPU whatever `device` is: a file made by the CPU program is reproduced only by that program
live_run = arch.modadd_run(live, seed=0, epochs=live_epochs)
live_out = mod.run_models(live_run, "main", workers=workers, device="cpu")
again = mod.curves_record(live_out)
committed = mod.load_curves(RESULTS / f"modadd-{live.name}-seed0.npz")
meta = json.loads((RESULTS / "meta.json").read_text())["settings"][f"{live.name}/seed0"]
made_here = meta["machine_fingerprint"] == fingerprint(1)
# tolerances on another CPU kind: twice the largest differences measured between AVX2 and AVX-512 kernels
# (pre-LN setting, 200 epochs: 0.0014 and 0.0008; none in the dimensions, which may move by one)
other_cpu_tol = {"main/log/test_acc": 0.003, "main/log/train_loss": 0.002, "main/ckpt/r_energy": 1,
                 "main/ckpt/r_nec": 1}
diffs = {key: float(np.max(np.abs(again[key] - committed[key][: len(again[key])])))
         for key in other_cpu_tol}
where = ("on this machine (same CPU kind, kernels, threads and PyTorch)" if made_here
         else f"on another machine: {meta['machine']}")
print("the committed study was made", where)
for key, d in diffs.items():
    print(f"{key}: largest difference from the committed study over epochs 0-{live_epochs}: "
          f"{d:.3g}")

# %%
tol = {k: 0.0 if made_here else t for k, t in other_cpu_tol.items()}

# %% tags=["hide-input"]
claims.holds("study_replayed", all(diffs[k] <= tol[k] for k in diffs), diffs, f"differences <= {tol}",
             f"the first {live_epochs} epochs retrained here reproduce the committed study (exactly on the machine that "
             "made it, within the measured tolerances elsewhere)", kind="sanity",
             paper="a check that the committed study comes from this code, not a result")
claims.ledger()

# %% [markdown]
# ## The Markov chain: the same core whatever the architecture
#
# The same question on chapter 01's task, where a model trains in seconds: the paper's lazy
# 4-state cycle, one-layer models with $d_\text{model}=64$ and chapter 01's default training,
# `markov_models` models per setting (seeds `seed`, `seed + 100`, ...; at the defaults the
# paper-model runs are chapter 01's own). The settings are the two choices that matter on
# modular addition: post-LN against pre-LN with a final LayerNorm, each with and without
# dropout. For each model: the test accuracy against the Bayes limit, ACE's energy rank at
# chapter 01's threshold (0.999), and, in the 3-dimensional core, how far the fitted
# dynamics' real eigenvalue lies from the chain's 0.5 (and the complex pair from
# $0.75 \pm 0.25i$); for each pair of models of a setting, the projector overlap of their
# cores in activation space (random 3-D subspaces of $\mathbb R^{64}$ give about
# $3/64 \approx 0.047$) and the mean canonical correlation of their core coordinates
# (chapter 02's two measures).

# %%
T = mk.lazy_cycle()
data = mk.make_data(T)
markov = {}
for s in arch.MARKOV_SETTINGS:
    runs_s = [arch.markov_run(s, seed + 100 * i) for i in range(markov_models)]
    models = mk.train_markov_models(runs_s, data, workers=workers, device=device)
    markov[s.name] = v = arch.markov_summary(models, data)
    print(f"{s.name:>20}: accuracy {np.round(v['acc'], 4)}, energy rank {v['rank'].astype(int)}, "
          f"real-eigenvalue error {np.round(v['real_error'], 3)}, "
          f"projector overlap {np.round(v['overlap'], 3)}, mean CCA {np.round(v['cca'], 4)}")

# %% mystnb={"figure": {"caption": "The fitted eigenvalues of the dynamics in the 3-D core (red, every model) beside the chain's (circles): the same spectrum in all four settings.", "name": "fig-arch-markov"}}
true_eigs = mk.nontrivial_eigenvalues(T)
n_settings = len(arch.MARKOV_SETTINGS)
fig, axes = plt.subplots(1, n_settings, figsize=(3.2 * n_settings, 3.3), sharey=True)
for ax, s in zip(axes, arch.MARKOV_SETTINGS):
    unit_circle(ax, xlim=(-0.1, 1.05), ylim=(-0.55, 0.55), color="0.85", lw=1, ylabel=None)
    ax.scatter(true_eigs.real, true_eigs.imag, s=90, facecolors="none", edgecolors="k",
               label="the chain's")
    ev = markov[s.name]["eigenvalues"]
    ax.scatter(ev.real.ravel(), ev.imag.ravel(), s=14, color="tab:red", label="fitted, each model")
    ax.set_title(s.label)
axes[0].set_ylabel("Im λ")
axes[0].legend(fontsize=7, loc="lower left")
fig.tight_layout()

# %% tags=["hide-input"]
bayes = mk.bayes_accuracy(T)


display(Markdown(at.markov_table(arch.MARKOV_SETTINGS, markov, bayes)))

# %%
every = {k: np.concatenate([markov[s.name][k] for s in arch.MARKOV_SETTINGS])
         for k in ("acc", "rank", "real_error", "overlap", "cca")}

# %% tags=["hide-input"]
claims.at_most("markov_bayes_gap", float(np.abs(every["acc"] - bayes).max()), 0.001,
               "Markov: every model of every setting reaches the Bayes limit (largest gap)",
               paper="the Bayes limit, 0.7501 [TS] (the paper's model)")
claims.equal("markov_rank_3", {s.name: markov[s.name]["rank"].astype(int).tolist() for s in arch.MARKOV_SETTINGS}, 3,
             "Markov: the energy rule gives a 3-D core for every model of every setting",
             paper="3-D core [A] (the paper's model)")
claims.at_most("markov_real_eig_error", float(every["real_error"].max()), 0.03,
               "Markov: every model of every setting recovers the real eigenvalue 0.5 within {bound} (largest error)",
               paper="'<1%' [TS] (the paper's model)",
               reason="as chapter 01's real eigenvalue: the thin third core direction carries history, which biases the "
                      "plain fit of 0.5")
claims.at_most("markov_overlap", float(every["overlap"].max()), 0.15,
               "Markov: the cores of different runs are near-orthogonal in every setting (largest overlap)",
               paper="0.02-0.04 [TS] (the paper's model)",
               reason="as chapter 02: the largest of a setting's pairs of random 3-D subspaces often exceeds 0.1")
claims.at_least("markov_cca", float(every["cca"].min()), 0.97,
                "Markov: the core coordinates of different runs are linearly equivalent in every setting (smallest "
                "mean CCA)", paper="'0.93-0.99' [TS] (the paper's model)")
claims.ledger()

# %% [markdown]
# ## What decides compactness

# %% tags=["hide-input"]
sup07 = {cid: ledger_rules.seed_support("07_architecture_and_the_core").get(cid)
         for cid in ("markov_rank_3", "markov_real_eig_error")}
Markdown(
    "None of the four design choices in which the native models differ from the paper's decides on its own the "
    "inflation that chapter 03 found. Each alone leaves a compact core that is necessary, sufficient and carries a "
    "rotation; the largest single effect, pre-LN blocks, raises the necessary dimension but stays far from $p - 1$. "
    "The four together reproduce the native models' picture in full, so the inflation comes from their combination. "
    "How sure we are: two models per setting (`results/architecture/`). The pre-LN effect on the necessary dimension "
    f"({per_model(sm['pre-ln']['r_nec'])} against {per_model(sm['paper']['r_nec'])}) and the all-four regime (energy "
    f"{per_model(sm['all-four']['r_energy_end'])}, all {p_mod - 1} directions necessary) lie far outside the spread "
    "between the two models of a setting; the effects of the small initialisation "
    f"($r_\\text{{nec}}$ {per_model(sm['small-init']['r_nec'])}) and of removing dropout "
    f"({per_model(sm['no-dropout']['r_nec'])}) are about one such spread and are suggestive only. Which pair or triple "
    "of changes is enough for the inflation is the next question; a setting added to `ace_utils.tasks.architecture` "
    "and `preset=\"full\"` answer it. On the Markov chain the answer is simpler: the core is the same 3-D core with "
    "the chain's spectrum in every setting tried"
    + (f" (over the ten seeds of the committed table every model of every setting is 3-D on "
       f"{sup07['markov_rank_3'].held} seeds and recovers 0.5 within 0.03 on {sup07['markov_real_eig_error'].held}; "
       "the robustness page names the exceptions)" if all(sup07.values()) else "") + ".")

# %% [markdown]
# The claims of this chapter, by kind (the study's claims read the committed study: one run
# of two models per setting, whatever the seed):

# %% tags=["hide-input"]
claims.overview()

# %% [markdown]
# ## Ours beside the paper
#
# Our numbers for the paper's model beside those of the reference code run on a CPU
# (its quick preset: 1000 epochs, 2 models) and the paper's. The other settings have no
# counterpart in the paper, which does not vary the architecture. What differs: our seeds and
# batch orders (model $i$ from `seed + 1000 i`, not the reference code's one global seed);
# accuracy logged every 10 epochs; 1000 epochs rather than the paper's 20,000, so the late
# inflation under weight decay (chapter 03) lies outside this study. The source tags are
# explained on the page {ref}`sources-tags`.

# %% tags=["hide-input"]
ours = partial(at.paper_and_others, summary, arch.MODADD_SETTINGS)  # ours("r_suf"): the paper's model, the others
markov_ours = partial(at.markov_paper_and_others, markov, arch.MARKOV_SETTINGS)


closing = [
    ["mod-add: grokking epoch", *ours("grok_epoch"), "~700", "800 [TQ]"],
    ["mod-add: energy dimension at initialisation", *ours("r_energy_init"), "43", "not retrieved"],
    ["mod-add: energy dimension at grokking", *ours("r_energy_grok"), "15-16", "'~15D' core at grokking [TS]"],
    ["mod-add: energy dimension at the end (epoch 1000)", *ours("r_energy_end"), "12-14", "not retrieved"],
    ["mod-add: sufficient dimension r_suf at the end", *ours("r_suf"), "8-10", "not retrieved"],
    ["mod-add: core-removed accuracy at r_core, the end", *ours("core_removed_acc", "{:.3f}"), "0.002-0.014",
     "≈ chance [A][C-fig]"],
    ["mod-add: rotational modes at the end", *ours("modes"), "5-7", "eigenvalues on the unit circle [TQ]"],
    ["mod-add: in-sample operator R² at the end", *ours("r2_in", "{:.2f}"), "~0.98", "not retrieved"],
    ["Markov: energy rank", *markov_ours("rank", "{:.0f}"), "3", "3-D core [A]"],
    ["Markov: real-eigenvalue error", *markov_ours("real_error"), "not run", "transition spectrum recovered [A]"],
    ["Markov: projector overlap across runs", *markov_ours("overlap"), "not run", "near-orthogonal [A]"],
    ["Markov: mean CCA across runs", *markov_ours("cca"), "not run", "~1 [A]"],
]
Markdown(markdown_table(["quantity", "ours: the paper's model", "ours: the other settings (range)",
                         "reference code on a CPU", "paper"], closing))

# %% [markdown]
# ## Summary
#
# - Changed one at a time on the paper's modular-addition model, none of the four design choices
#   in which the native models differ inflates the core: every model still forms a compact core
#   with a rotation that generalises. Pre-LN blocks, the largest single effect, raise the
#   necessary dimension but stay far from $p-1$ ({numref}`fig-arch-modadd`).
# - Only the four changes together give the native picture: the energy dimension does not fall,
#   the whole $(p-1)$-dimensional space is necessary, and the rotation fails on held-out classes.
# - These claims read the committed study, one run of two models per setting, not ten seeds;
#   the effects of the small initialisation and of removing dropout are about as large as the
#   spread between a setting's two models and are suggestive only. Retraining one setting's
#   first epochs reproduces the committed study (a sanity check).
# - On the Markov chain every setting tried gives a 3-D core carrying the chain's spectrum
#   ({numref}`fig-arch-markov`), and the cores of different runs are near-orthogonal yet
#   linearly equivalent, as in chapters 01 and 02. Over ten seeds the exceptions lie in the
#   changed settings, and the recovery of the real eigenvalue within its bound is reported, not
#   asserted ({doc}`robustness page <../book/robustness>`).
#
# ## Exercises
#
# 1. Train the whole study from other seeds: `papermill
#    notebooks/07_architecture_and_the_core.ipynb out.ipynb -p preset full -p seed 1` (about an
#    hour). Do the small initialisation and the removal of dropout move the necessary dimension
#    in the same direction as in the committed study? What would you need before calling them
#    effects rather than spread? (Away from its defaults the chapter reports its claims instead
#    of asserting them.)
# 2. Which pair of changes is enough? In a notebook, train a setting of your own as the chapter
#    does for `preset="full"` (about 8 minutes per setting on 2 CPU cores):
#
#    ```python
#    from ace_utils.models.paper import ModelVariant
#    from ace_utils.tasks import architecture as arch, modular as mod
#    s = arch.Setting("pre-ln-small-init", "pre-LN + small init", "two changes",
#                     ModelVariant(norm="pre", init="small"))
#    out = mod.run_models_resumable(arch.modadd_run(s), workers=2, segment_epochs=250,
#                                   stop_after_main=True)
#    print(arch.modadd_summary(mod.curves_record(out)))
#    ```
#
#    Compare `r_energy_end`, `r_nec` and `r2_h` with the study table. Which pairs would you try
#    next, and how many settings does the full interaction of four choices need?
# 3. Compare more Markov runs per setting: `-p markov_models 6`. The largest projector overlap
#    is taken over more pairs: does it grow, as the largest of more random pairs would (chapter
#    02)? Does the mean CCA move?
# 4. Retrain another setting in full: `-p live_setting all-four -p live_epochs 1000` (two models,
#    about 8 minutes). On the machine that made the study the numbers must be identical; on
#    another CPU kind the chapter allows the differences measured over 200 epochs. Do they
#    suffice over 1000 epochs, and why might float32 trajectories drift further apart through
#    grokking?

# %% tags=["hide-input"]
claims.record(modadd={n: {k: v.tolist() for k, v in s.items()} for n, s in summary.items()},
              markov={n: {k: (np.stack([v.real, v.imag], -1) if np.iscomplexobj(v) else v).tolist()
                          for k, v in s.items()} for n, s in markov.items()},
              live_differences=diffs, seconds=time.perf_counter() - t_start)
print(f"total {time.perf_counter() - t_start:.0f} s")
claims.save()
