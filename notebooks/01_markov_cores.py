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
# # Markov-chain transformers learn a 3-D core that carries the chain's spectrum
#
# **What this chapter shows.** Transformers trained to predict the next state of the
# paper's 4-state lazy cyclic chain reach the Bayes limit; ACE finds a 3-dimensional
# core in each run that is sufficient (keeping only it keeps the accuracy) and
# necessary (removing it drops the accuracy to chance), while a random 3-D subspace
# removed changes nothing; a linear operator fitted in core coordinates recovers the
# chain's complex eigenvalue pair $0.75\pm0.25i$ closely and its real eigenvalue $0.5$
# with an upward bias that we trace to history leaking into the thinnest core
# direction. **Runtime:** 45-75 s on 2 CPU cores with a cold model cache
# (3 models x ~7 s of training, plus a random 5-state chain), 15-25 s when cached.

# %% tags=["remove-cell"]
# Colab setup: installs ace_utils and its pinned requirements there; does nothing elsewhere.
import subprocess
import sys

if "google.colab" in sys.modules:  # pragma: no cover - only in Colab
    subprocess.run(["git", "clone", "-q", "https://github.com/ace-book/ace-book", "/content/ace-book"], check=False)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/ace-book"], check=True)
    sys.path.insert(0, "/content/ace-book")

# %% tags=["parameters"]
seed = 0  # model i is seeded with seed + 100 * i (seed 0 gives the paper's 0, 100, 200)
n_models = 3  # independently trained models
chain = "paper"  # 'paper': the 4-state lazy cycle; 'random': a random chain with n_states states
n_states = 4  # number of states when chain == 'random' (3..8)
extra_n_states = 5  # the random chain of the "beyond the paper" section (0 skips it)
d_model = 64  # residual width (the paper's 64)
epochs = 0  # training epochs; 0 takes the preset's
preset = "default"  # 'default' (lr 1e-3, 10 epochs) or 'paper' (lr 1e-4, 40 epochs)
device = "cpu"  # 'cuda'/'auto' are accepted for a uniform interface, but these tiny models always run on the CPU

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ace_utils.claims import Claims
from ace_utils.interventions import random_subspace
from ace_utils.operators import markov_oracle_r2, match_eigenvalues
from ace_utils.params import Choice, Int, validate
from ace_utils.tasks import markov as mk

P = validate(
    {
        "seed": Int(0, 10**6),
        "n_models": Int(1, 12),
        "chain": Choice("paper", "random"),
        "n_states": Int(3, 8),
        "extra_n_states": Int(0, 8),
        "d_model": Choice(16, 32, 64, 128, 256),
        "epochs": Int(0, 400),
        "preset": Choice("default", "paper"),
        "device": Choice("cpu", "cuda", "auto"),
    },
    globals(),
)
if extra_n_states in (1, 2):
    raise ValueError(f"parameter 'extra_n_states' = {extra_n_states}: allowed 0 (skip) or 3..8")
torch.set_num_threads(1)  # these models are tiny: one thread is fastest and immune to a busy second core
t_start = time.perf_counter()
overrides = {"d_model": d_model} | ({"epochs": epochs} if epochs else {})
runs = [mk.MarkovRun(seed=seed + 100 * i, **(mk.PRESETS[preset] | overrides)) for i in range(n_models)]
T = mk.lazy_cycle() if chain == "paper" else mk.random_chain(n_states, seed=seed)
k = T.shape[0] - 1  # number of non-trivial eigenvalues: the expected core dimension
# The claims below are asserted at the paper's chain and the default training (any seed,
# any n_models); elsewhere they are checked and reported.
strict = chain == "paper" and preset == "default" and d_model == 64 and epochs == 0
claims = Claims("01_markov_cores", P, strict=strict)

# %% [markdown]
# ## The task
#
# States follow the chain $T$ below ({ref}`sources-markov`): stay with probability 0.75,
# step to the next state with 0.25. Sequences have 32 states; the model sees the
# first 31 and predicts the next state at every position. 3000 training and 3000
# test sequences, shared by all models. The Bayes-optimal predictor, which knows
# $T$, is right with probability $\max_j T_{x_t j}$: 0.75 here, computed from the
# chain. Chance is the frequency of the most common target in the test set.

# %%
data = mk.make_data(T)
bayes = mk.bayes_accuracy(T)
chance = mk.chance_accuracy(data.test)
true_eigs = mk.nontrivial_eigenvalues(T)
print("T =\n", np.round(T, 3))
print(f"Bayes accuracy {bayes:.4f}, chance {chance:.4f}, non-trivial eigenvalues {np.round(true_eigs, 4)}")

# %% [markdown]
# ## Training
#
# Our models are built with TransformerLens (`TransformerBridge.boot_native`, see
# `ace_utils.models`): one pre-LN block, $d_\text{model}=64$, 4 heads, MLP width 256,
# a final LayerNorm and an unembedding without bias. The paper used PyTorch's
# post-LN `TransformerEncoderLayer` with dropout 0.1 and a biased `lm_head`
# ({ref}`sources-reference-models`). Same task, different architecture: if the core is a property of
# the computation, it should appear here too. The default preset trains with
# learning rate $10^{-3}$ for 10 epochs (470 steps); `preset="paper"` uses the paper's
# $10^{-4}$ for 40 epochs (1880 steps). Trained models are cached on disk, keyed by
# their full configuration, and shared with the next chapter.

# %%
models = [mk.train_markov_model(run, data, progress=False) for run in runs]
full_acc = [mk.next_token_accuracy(m, data.test) for m in models]
print("full-model test accuracy:", np.round(full_acc, 4))

# %%
claims.check("every model reaches the Bayes limit (largest gap)", all(abs(a - bayes) <= 0.005 for a in full_acc),
             max(abs(a - bayes) for a in full_acc), expected="<= 0.005");

# %% [markdown]
# ## ACE finds a 3-D core in every run
#
# The analysed activation is `ln_final.hook_out`, the vector the unembedding reads
# linearly (the paper's site is likewise the input of its `lm_head`), at all 31
# positions of the 3000 test sequences (93,000 vectors of dimension 64). The
# observability Gramian is exactly $W_U^\top W_U$ ({ref}`method-gramians`); the core
# dimension is the smallest $r$ that holds 99.9% of the balanced energy.

# %%
cores = [mk.markov_core(m, data) for m in models]
ranks = [res.rank for res, _ in cores]
energy_top2 = [float(res.energy_fraction[1]) for res, _ in cores]
print("core dimension per model:", ranks)
print("energy share of the top 2 directions:", np.round(energy_top2, 4))

# %%
claims.check(f"the energy rule gives k = {k} for every model", all(r == k for r in ranks), ranks, expected=f"all == {k}");

# %% mystnb={"figure": {"caption": "Cumulative balanced energy of the ACE directions, one line per model. Two directions hold about 99% of the energy; the third brings it past the 0.999 threshold (dotted), the fourth adds almost nothing. The third direction is thin but, as the spectrum section shows, real.", "name": "fig-markov-energy"}}
fig, ax = plt.subplots(figsize=(5, 3))
for i, (res, _) in enumerate(cores):
    ef = res.energy_fraction.numpy()[:8]
    ax.plot(np.arange(1, 9), 1 - ef + 1e-9, "o-", ms=3, label=f"model {i + 1}")
ax.axhline(1e-3, color="0.5", ls=":", label="1 - threshold")
ax.set_yscale("log")
ax.set_xlabel("number of ACE directions r")
ax.set_ylabel("energy left out, 1 - cumulative share")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Necessary and sufficient; a random subspace is not
#
# Keep only the core ($h \leftarrow Ph$), remove it ($h \leftarrow h - Ph$), both
# uncentred as in the paper ({ref}`sources-method`), at every position; and, as the
# control, remove a random 3-D subspace of the same layer.

# %%
abl = {"keep": [], "remove": [], "random removed": []}
for i, (m, (res, _)) in enumerate(zip(models, cores)):
    abl["keep"].append(mk.intervention_accuracy(m, data, res.core(k), "keep"))
    abl["remove"].append(mk.intervention_accuracy(m, data, res.core(k), "remove"))
    Q_rand = random_subspace(res.basis.shape[0], k, torch.Generator().manual_seed(seed + 7 + i))
    abl["random removed"].append(mk.intervention_accuracy(m, data, Q_rand, "remove"))
for name, v in abl.items():
    print(f"{name:15s}", np.round(v, 4))

# %%
claims.check("sufficient: core-only accuracy within 0.005 of the full model (largest gap)",
             all(abs(kp - f) <= 0.005 for kp, f in zip(abl["keep"], full_acc)),
             max(abs(kp - f) for kp, f in zip(abl["keep"], full_acc)), expected="<= 0.005")
claims.check("necessary: core-removed accuracy at most chance + 0.05 (largest excess over chance)",
             all(r <= chance + 0.05 for r in abl["remove"]), max(r - chance for r in abl["remove"]), expected="<= 0.05")
claims.check("control: a random 3-D subspace removed changes accuracy by <= 0.005 (largest change)",
             all(abs(r - f) <= 0.005 for r, f in zip(abl["random removed"], full_acc)),
             max(abs(r - f) for r, f in zip(abl["random removed"], full_acc)), expected="<= 0.005")
below_chance = [chance - r for r in abl["remove"]]
print("core removed: accuracy below chance by", np.round(below_chance, 3))

# %% [markdown]
# Removing the core does more than erase the state: accuracy lands a few points
# *below* chance (0.19-0.23 against 0.25 at the defaults; the paper's reference code
# gave 0.23-0.26 on its models when we ran it, {ref}`sources-markov`). What is left outside the core still
# reaches the logits, and it predicts against the current state. The issue asked
# for "within 0.05 of chance"; one of our three default models misses that by less
# than 0.01 on the low side, so the chapter asserts the necessity claim one-sidedly
# (at most chance + 0.05) and reports the gap.

# %% mystnb={"figure": {"caption": "Test accuracy of the full models, with only the core kept, with the core removed and with a random 3-D subspace removed (mean and per-model dots), against the Bayes limit and chance computed from the chain and the data.", "name": "fig-markov-ablations"}}
fig, ax = plt.subplots(figsize=(6, 3.2))
bars = {"Bayes": [bayes], "full model": full_acc, "core only": abl["keep"], "core removed": abl["remove"],
        "random removed": abl["random removed"], "chance": [chance]}
colors = ["0.6", "0.6", "C0", "C0", "C1", "0.6"]
for x, ((name, vals), c) in enumerate(zip(bars.items(), colors)):
    ax.bar(x, np.mean(vals), color=c, alpha=0.8)
    ax.scatter(np.full(len(vals), x), vals, color="k", s=8, zorder=3)
ax.set_xticks(range(len(bars)), list(bars), rotation=20)
ax.set_ylabel("next-state accuracy (test)")
ax.set_ylim(0, 0.85)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The core carries the chain's spectrum
#
# Project the activations on the core, $z_t = Q^\top h_t$, and fit
# $z_{t+1} \approx A z_t$ by least squares over all consecutive positions, both sides
# centred ({ref}`method-operators`). If $z_t$ is an affine image of the one-hot
# current state, $A$ is similar to $T^\top$ on the sum-zero subspace, so its
# eigenvalues are the chain's non-trivial ones; the Perron eigenvalue 1 belongs to
# the constant direction, which centring removes. $R^2$ is compared with the oracle
# $R^2_\text{oracle}$ of the chain ({ref}`sources-markov`).

# %%
oracle = markov_oracle_r2(T)
dyn = []
for res, H in cores:
    Z = mk.core_coordinates(res, H, data.test.shape[0], r=k)
    fit = mk.core_dynamics(Z)
    matched, err = match_eigenvalues(fit.eigenvalues, true_eigs)
    state_r2 = mk.state_explained_variance(Z, data.test[:, :-1])
    cond = mk.core_dynamics(mk.state_conditional_mean(Z, data.test[:, :-1]))
    _, err_cond = match_eigenvalues(cond.eigenvalues, true_eigs)
    dyn.append(dict(eigs=matched, err=err, r2_ratio=fit.r2 / oracle, state_r2=state_r2, err_cond=err_cond))
for i, d in enumerate(dyn):
    print(f"model {i + 1}: eigenvalues {np.round(d['eigs'], 3)}  |error| {np.round(d['err'], 3)}  "
          f"R2/R2_oracle {d['r2_ratio']:.3f}  share of each core coordinate explained by the current state "
          f"{np.round(d['state_r2'], 3)}  |error| with z replaced by its state mean {np.round(d['err_cond'], 4)}")

# %%
complex_idx = np.abs(true_eigs.imag) > 1e-9
if chain == "paper":
    claims.check("the complex pair 0.75±0.25i is recovered within 0.03 (largest error)",
                 all(d["err"][complex_idx].max() <= 0.03 for d in dyn),
                 max(float(d["err"][complex_idx].max()) for d in dyn), expected="<= 0.03")
    # the real eigenvalue 0.5: NOT within 0.03 in our models; biased upward (finding, see text)
    real_err = [float(d["eigs"][~complex_idx][0].real - 0.5) for d in dyn]
    claims.check("the real eigenvalue 0.5 comes back biased upward by less than 0.1 (fitted - 0.5)",
                 all(0 < e < 0.1 for e in real_err), real_err, expected="0 < bias < 0.1 for every model")
    # the bias is the history in the third coordinate: the state-conditional mean recovers everything
    claims.check("with z replaced by its state mean, all eigenvalues within 0.01 (largest error)",
                 all(d["err_cond"].max() <= 0.01 for d in dyn), max(float(d["err_cond"].max()) for d in dyn),
                 expected="<= 0.01")
    claims.check("the third core coordinate is < 0.95 the current state, the first two > 0.95 (state R² of the third)",
                 all(d["state_r2"][-1] < 0.95 < min(d["state_r2"][:-1]) for d in dyn),
                 [float(d["state_r2"][-1]) for d in dyn], expected="third < 0.95 < first two, every model")
claims.check("core dynamics R² / R²_oracle >= 0.95 (smallest)", all(d["r2_ratio"] >= 0.95 for d in dyn),
             min(d["r2_ratio"] for d in dyn), expected=">= 0.95");

# %% [markdown]
# The complex pair $0.75\pm0.25i$ comes back within about 0.01 in every run. The real
# eigenvalue $0.5$ comes back at 0.55-0.58: this part of the paper's claim
# ("eigenvalue error < 1%", an unverified third-party number, {ref}`sources-markov`) does
# **not** reproduce on our models. The cause is visible in the last printed column:
# the first two core coordinates are explained by the current state to 99.5%, the
# third only to 88-91%: our models let a little history (earlier states, read by
# attention) into the thinnest core direction, and a persistent history component
# makes that coordinate look more persistent than the chain. Replacing each core
# coordinate by its mean given the current state removes the history and recovers
# all three eigenvalues to 0.001, so the core does hold the chain's spectrum; the
# plain dynamics fit on our models overestimates its smallest eigenvalue. The
# paper's post-LN models with dropout apparently carry less history (the reference
# code recovered 0.5 within ~0.02 on a CPU, {ref}`sources-markov`).
#
# Over seeds 0-9 ({doc}`robustness page <../book/robustness>`) this explanation is
# less uniform than at the default seed. The upward bias is there in 29 of the 30
# models, but one model (seed 7) recovers 0.5 to 0.004; and in 3 of the 10 runs (seeds
# 3, 5, 8) a model's third coordinate is more than 95% the current state, so the check
# in the cell above fails there. The two go together as the explanation predicts: at
# seed 5 all three third coordinates are 96-97% the state, and the biases are the
# smallest of all runs (0.007-0.015). The state-mean check cannot tell
# models apart: once each coordinate is replaced by its mean given the state, the fit
# is the transition matrix of the test sequences seen through any invertible map, so it
# gives the same error (0.0007, the sampling error of the test data, which all seeds
# share) for every model whose core separates the four states.

# %% mystnb={"figure": {"caption": "Eigenvalues of the operator fitted in the core of model 1 (red crosses) against the chain's eigenvalues (blue circles; the Perron eigenvalue 1, removed by centring, shown hollow), with the unit circle.", "name": "fig-markov-spectrum"}}
fig, ax = plt.subplots(figsize=(4.2, 4.2))
th = np.linspace(0, 2 * np.pi, 300)
ax.plot(np.cos(th), np.sin(th), color="0.7", lw=0.8)
ax.scatter(true_eigs.real, true_eigs.imag, s=90, facecolors="none", edgecolors="C0", lw=1.5, label="chain T")
ax.scatter([1], [0], s=90, facecolors="none", edgecolors="C0", lw=0.8, ls="--", label="Perron 1 (centred out)")
ax.scatter(dyn[0]["eigs"].real, dyn[0]["eigs"].imag, marker="x", color="C3", s=60, label="fitted in core")
ax.set_xlabel("Re λ")
ax.set_ylabel("Im λ")
ax.set_aspect("equal")
ax.set_xlim(-1.1, 1.1)
ax.set_ylim(-1.1, 1.1)
ax.legend(fontsize=8, loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Beyond the paper: a random chain with more states
#
# If the core is the chain's state code, a chain with $n$ states should give an
# $(n-1)$-dimensional core whose dynamics carry its $n-1$ non-trivial eigenvalues.
# We draw a random 5-state chain with well-separated eigenvalues
# (`random_chain`), train one model on it at the same settings, and repeat the
# analysis. Because its stationary distribution is not uniform, the mean of the
# activation now carries the prior over states, so interventions here are centred on
# the mean (an uncentred "keep" would also throw away that prior).

# %%
extra = None
if extra_n_states:
    T5 = mk.random_chain(extra_n_states, seed=seed)
    data5 = mk.make_data(T5)
    m5 = mk.train_markov_model(mk.MarkovRun(seed=seed, **(mk.PRESETS[preset] | overrides)), data5, progress=False)
    res5, H5 = mk.markov_core(m5, data5)
    k5 = extra_n_states - 1
    Z5 = mk.core_coordinates(res5, H5, data5.test.shape[0], r=k5)
    fit5 = mk.core_dynamics(Z5)
    eig5, err5 = match_eigenvalues(fit5.eigenvalues, mk.nontrivial_eigenvalues(T5))
    cond5 = mk.core_dynamics(mk.state_conditional_mean(Z5, data5.test[:, :-1]))
    _, err5c = match_eigenvalues(cond5.eigenvalues, mk.nontrivial_eigenvalues(T5))
    extra = dict(
        rank=res5.rank, energy_at_k=float(res5.energy_fraction[k5 - 1]), acc=mk.next_token_accuracy(m5, data5.test),
        bayes=mk.bayes_accuracy(T5), chance=mk.chance_accuracy(data5.test),
        keep=mk.intervention_accuracy(m5, data5, res5.core(k5), "keep", centred=True),
        remove=mk.intervention_accuracy(m5, data5, res5.core(k5), "remove", centred=True),
        err=err5, err_cond=err5c, eigs=eig5, true=mk.nontrivial_eigenvalues(T5),
    )
    print({key: (np.round(v, 3) if not isinstance(v, int) else v) for key, v in extra.items()})

# %%
if extra is not None:
    claims.check("random chain: the model reaches the Bayes limit (gap)", abs(extra["acc"] - extra["bayes"]) <= 0.01,
                 abs(extra["acc"] - extra["bayes"]), expected="<= 0.01")
    claims.check("random chain: n - 1 directions hold >= 99% of the energy", extra["energy_at_k"] >= 0.99,
                 extra["energy_at_k"], expected=">= 0.99")
    claims.check("random chain: core-only accuracy within 0.01 of the full model (gap)",
                 abs(extra["keep"] - extra["acc"]) <= 0.01, abs(extra["keep"] - extra["acc"]), expected="<= 0.01")
    claims.check("random chain: core-removed accuracy at most chance + 0.05 (excess over chance)",
                 extra["remove"] <= extra["chance"] + 0.05, extra["remove"] - extra["chance"], expected="<= 0.05")
    claims.check("random chain: state-mean dynamics recover the spectrum within 0.02 (largest error)",
                 extra["err_cond"].max() <= 0.02, float(extra["err_cond"].max()), expected="<= 0.02")
    claims.check("random chain: plain-fit eigenvalue error <= 0.1 (same upward bias; largest error)",
                 extra["err"].max() <= 0.1, float(extra["err"].max()), expected="<= 0.1")

# %% [markdown]
# On the 5-state chain the picture repeats: the model reaches the Bayes limit,
# $n-1=4$ directions hold at least 99% of the energy (the 0.999 rule may add a fifth,
# thin one: see the printed rank), keeping them keeps the accuracy and removing them
# drops it to chance, and the state-conditional core dynamics recover all four
# non-trivial eigenvalues; the plain fit shows the same history bias as above.

# %% [markdown]
# ## Our numbers beside the paper's
#
# The table is computed from this run (paper values as collected on the
# {ref}`sources page <sources-markov>`, with their source tags, {ref}`sources-tags`;
# [TS] marks unverified third-party summaries, "ref. code" the reference code run
# unchanged on a CPU).

# %% tags=["hide-input"]
from IPython.display import Markdown

rows = [
    ("full-model accuracy", f"{np.min(full_acc):.4f}-{np.max(full_acc):.4f} (Bayes {bayes:.3f})", "≈0.75, just under the Bayes limit (ref. code)"),
    ("core dimension (0.999 energy)", ", ".join(map(str, ranks)), "3 in every run [A]"),
    ("energy in top 2 directions", f"{np.min(energy_top2):.4f}-{np.max(energy_top2):.4f}", "99.1-99.3% (ref. code)"),
    ("core-only accuracy", f"{np.min(abl['keep']):.4f}-{np.max(abl['keep']):.4f}", "equal to full (0.7501 [TS])"),
    ("core-removed accuracy", f"{np.min(abl['remove']):.3f}-{np.max(abl['remove']):.3f} (chance {chance:.3f})", "near chance [TS]; 0.23-0.26 (ref. code)"),
    ("random 3-D removed", f"{np.min(abl['random removed']):.4f}-{np.max(abl['random removed']):.4f}", "not reported"),
    ("eigenvalue error, 0.75±0.25i", f"≤ {max(d['err'][complex_idx].max() for d in dyn):.3f}" if complex_idx.any() else "n/a", "'<1%' [TS]; ~0.02 (ref. code)"),
    ("eigenvalue error, 0.5", f"{min(d['err'][~complex_idx].max() for d in dyn):.3f}-{max(d['err'][~complex_idx].max() for d in dyn):.3f} (state-mean fit ≤ {max(d['err_cond'].max() for d in dyn):.4f})", "'<1%' [TS]; ~0.02 (ref. code)"),
    ("R² / R²_oracle", f"{min(d['r2_ratio'] for d in dyn):.3f}-{max(d['r2_ratio'] for d in dyn):.3f}", "> 0.98 [TS]; can exceed 1 (ref. code)"),
]
Markdown("| quantity | ours | paper |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows))

# %% [markdown]
# **What differs and why.** Our models are TransformerLens-native pre-LN blocks without
# dropout, trained 4x shorter at a 10x larger learning rate by default (the paper preset
# reproduces the same picture but some runs then need a thin 4th direction to pass
# 99.9%). The core's dimension, its sufficiency and necessity, and the complex part of
# the spectrum are invariant to these changes; the accuracy of the plain dynamics fit
# for the smallest eigenvalue is not.

# %%
claims.record(full_acc=full_acc, bayes=bayes, chance=chance, ranks=ranks, keep=abl["keep"], remove=abl["remove"],
              random_removed=abl["random removed"], eig_err_max=max(float(d["err"].max()) for d in dyn),
              r2_ratio=[d["r2_ratio"] for d in dyn], seconds=time.perf_counter() - t_start)
claims.save()
