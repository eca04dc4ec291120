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
# # 03 · Modular addition: at grokking a ~15-D core forms that is necessary, sufficient and a rotation; weight decay later inflates it
#
# **What this chapter shows.** Two independently seeded copies of the paper's 2-layer
# post-LN transformer learn $a+b \bmod 53$: they memorise the training pairs early and
# grok (test accuracy $\ge 0.99$) hundreds of epochs later. Following the ACE core through
# training, the core shrinks as the models generalise: its energy dimension falls from over
# 35 at initialisation to at most 25 at grokking, and the 99 %-energy subspace is then both
# necessary (removing it leaves at most $2/p$) and sufficient (keeping only it keeps the
# accuracy). In it the "add 1" map is a rotation: its eigenvalues lie on the unit circle
# and it predicts held-out classes. This is the paper's picture, and so is much of what
# follows over the paper's 20,000 epochs (a committed run of three models, as in the
# paper, read on {doc}`a page of its own <../book/long_runs>`): under continued weight
# decay the core at least doubles, mostly redundancy, with more rotational modes, though fewer than the paper's
# 27, while without weight decay the energy and the modes stay where grokking left them.
# Two differences: the models inflate at different times, and without weight decay the
# necessary dimension of some of them grows as well, in directions of almost no energy.
# Beyond the paper: pre-LN TransformerLens-native models of the same size (`architecture="pre-ln"`)
# grok too, but keep a ~44-D energy core, need $p-1$ directions removed to lose the answer
# and have no generalising rotation; and over 20,000 epochs their core inflates without
# weight decay instead of with it (a committed long run). **Runtime:** {glue:md}`runtime` (the timing records of the {doc}`status page <../book/status>`):
# most of it is training the two models, one per process, for 1000 epochs and a 200-epoch branch.

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
seed = 0  # model i is initialised (and its batches and dropout masks drawn) from seed + 1000 * i
n_models = 2  # independently seeded models, each trained in its own process
p = 53  # the modulus (the paper's 53)
architecture = "paper"  # 'paper': the paper's post-LN encoder layers; 'pre-ln': TransformerLens-native pre-LN models
epochs = 0  # training epochs; 0 takes the preset's (default: 1000 for 'paper' models, 800 for 'pre-ln'; paper 20000)
checkpoint_every = 0  # epochs between analysed checkpoints; 0 takes the preset's (default 50, paper 100)
weight_decay = 1.0  # AdamW weight decay of the main run (the paper's 1.0)
dropout = 0.1  # the paper's 0.1 (PyTorch's sites; for 'pre-ln' a mask on embeddings, attention and MLP outputs)
branch_epoch = -1  # epoch of the weight-decay-0 branch; -1 takes the preset's (default 800 / 500, paper 900), 0 = none
preset = "default"  # 'default' (1000 or 800 epochs) or 'paper' (the reference 20,000-epoch schedule)
precision = "fp32"  # training arithmetic: 'fp32', or 'bf16' autocast for 'pre-ln' models (fast only with native bf16)
workers = 2  # processes training the models in parallel, one model each (numbers do not depend on it)
device = "cpu"  # 'cpu' (where the seed tables were made), 'cuda' (the models train as one batched stack there; workers unused), or 'auto'

# %% tags=["hide-input"]
import time
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ace_utils.book.chapter import open_chapter
from ace_utils.book import claims as ledger_rules
from ace_utils.book.params import Choice, Device, Float, Int
from ace_utils.book.plots import eigenvalue_clock
from ace_utils.book.tables import (at_checkpoints, markdown_table, max_or_nan, mean_se, min_or_nan, range_of,
                                   seed_span, span)
from ace_utils.method.ace import ace, observability_from_readout
from ace_utils.method.interventions import subspace_hook
from ace_utils.models import readout_bias, readout_matrix
from ace_utils.tasks import modular as mod

P, claims = open_chapter(
    "03_grokking_core",
    {
        "seed": Int(0, 10**6),
        "n_models": Int(1, 8),
        "p": Int(11, 113),
        "architecture": Choice(*mod.ARCHITECTURES),
        "epochs": Int(0, 50_000),
        "checkpoint_every": Int(0, 5_000),
        "weight_decay": Float(0.0, 10.0),
        "dropout": Float(0.0, 0.5),
        "branch_epoch": Int(-1, 50_000),
        "preset": Choice("default", "paper"),
        "precision": Choice("fp32", "bf16"),
        "workers": Int(1, 16),
        "device": Device(),
    },
    globals(),
    # claims asserted at these settings (the defaults; any seed), checked and reported elsewhere
    asserted_at={"n_models": 2, "preset": "default", "p": 53, "epochs": 0, "checkpoint_every": 0, "weight_decay": 1.0,
                 "dropout": 0.1, "branch_epoch": -1, "precision": "fp32", "architecture": "paper"},
    threads=1,  # measured: 1 thread is faster than 2 for this small model on 2 shared cores
)
device = P["device"]  # 'auto' resolved: training, activations, ACE and interventions run there
t_start = time.perf_counter()
if architecture == "paper" and precision != "fp32":
    raise ValueError(f"parameter 'precision' = {precision!r}: allowed 'fp32' with architecture='paper' ('bf16' only with 'pre-ln')")
run = mod.preset_run(preset, seed=seed, n_models=n_models, p=p, epochs=epochs, checkpoint_every=checkpoint_every,
                     weight_decay=weight_decay, dropout=dropout, branch_epoch=branch_epoch, precision=precision,
                     architecture=architecture)
chance, chance2 = 1 / p, 2 / p
print(f"{n_models} models, {run.epochs} epochs, {len(run.checkpoint_epochs)} analysed checkpoints, "
      f"branch at epoch {run.branch_epoch or 'none'}")

# %% [markdown]
# ## Task, models and training
#
# All $53^2 = 2809$ pairs $(a, b)$ are split once into 1404 training and 1405 test pairs
# by a fixed permutation (`RandomState(42)`, as the paper, {ref}`sources-modular`). The model
# reads the two tokens $[a, b]$ (no "=" token) and predicts $c = a + b \bmod 53$ at the
# last position; loss and accuracy use that position only.
#
# The models are the paper's ({ref}`sources-reference-models`, `ace_utils.models.paper`): token
# and learned position embeddings, two PyTorch `TransformerEncoderLayer` blocks (post-LN,
# $d_\text{model}=128$, 4 heads, feed-forward width 512, ReLU, dropout 0.1 where PyTorch puts
# it: attention probabilities, attention output, feed-forward hidden and output) under a
# causal mask, and a linear readout with bias, in PyTorch's default initialisation. They
# are trained with AdamW on every parameter (lr $10^{-3}$, weight decay 1.0, batch 512, 3
# steps per epoch), float32, as in the paper. Evaluation and every analysis run the
# module in eval mode (no dropout), through TransformerLens hooks.
#
# **Speed.** A training step is tiny, so the training loop is built for it
# (`ace_utils.tasks.modular.train_stacked`): accuracy is logged every 10 epochs, not every
# step, and each model trains in its own process (`workers = 2` uses both cores; a model's
# numbers do not depend on how many run at once). The forward pass is the module's own
# (`torch.func.functional_call` of the `PaperTransformer` on the trained parameters; tests
# check that logits, gradients and a whole training run equal training the module
# directly). `benchmarks/modular_training.py` times it against a plain loop in one run;
# its last recorded table (with the machine it ran on) is printed below when present. Runs
# are cached on disk, keyed by the full configuration, and each cache entry holds the
# per-checkpoint analyses (curves, a few kB each) and the final parameters, not a
# state_dict per checkpoint: the analyses are what the chapters read. With `device="cuda"` the
# models train instead as one batched stack on the GPU (`ace_utils.models.paper.stacked_last_logits`,
# the same forward computed for all models at once, one dropout generator per model), the data
# placed there once and no step waiting for the host; the analyses run there too.

# %% tags=["hide-input"]
bench = Path(mod.__file__).resolve().parents[3] / "benchmarks" / "results" / "modular_training.md"
if bench.exists():  # shown as a table; its '#' title line becomes bold text (no new section)
    lines = bench.read_text().splitlines()
    display(Markdown("\n".join([f"**{lines[0].lstrip('# ')}**"] + lines[1:])))
else:
    print("no benchmark record (run benchmarks/modular_training.py)")

# %% [markdown]
# One call trains every model through the main run (the weight-decay branch follows in its
# section below), each model in its own process; every model's whole state is saved every
# `segment` epochs, so an interrupted call continues where it stopped, with the same numbers
# as one uninterrupted run. When the models are cached, the call only reads them.

# %%
segment = 250  # epochs between saved states; the numbers do not depend on it
t0 = time.perf_counter()
out = mod.run_models_resumable(run, workers=workers, segment_epochs=segment, stop_after_main=True,
                               device=device)
load_s = time.perf_counter() - t0
data = mod.make_data(run.p, run.train_frac, run.split_seed)
data_dev = data.to(device)  # the same split on the device, for the models
main = out["main"]
log, ck, ck_ep = main["log"], main["ckpt"], main["ckpt_epoch"]
print(f"built in {out['train_cpu_s']:.0f} s of CPU time (training every model and every "
      f"checkpoint analysis); this call took {load_s:.1f} s")
s_wall, s_cpu = log["train_wall_s"][-1] / run.epochs, log["train_cpu_s"][-1] / run.epochs
print(f"training alone: {s_wall:.3f} s wall (slowest model), {s_cpu:.3f} s CPU (all {n_models} "
      f"models) per epoch (wall depends on the machine's load when built)")
mem = [mod.grok_epoch(log["epoch"], log["train_acc"][:, i]) for i in range(n_models)]
grok = [mod.grok_epoch(log["epoch"], log["test_acc"][:, i]) for i in range(n_models)]
print("train accuracy >= 0.99 at epoch:", mem, "   test accuracy >= 0.99 (grokking) at epoch:",
      grok)
at = {g: log["epoch"] == g for g in grok}
grok_time = [(float(log["train_wall_s"][at[g]][0]), float(log["train_cpu_s"][at[g]][0]))
             if g is not None else None for g in grok]
print("training time to grokking (wall s, CPU s), models trained in parallel:",
      [None if t is None else (round(t[0], 1), round(t[1], 1)) for t in grok_time])

# %% tags=["hide-input"]
delay = [g - m for g, m in zip(grok, mem)] if all(g is not None for g in grok) else None
test_at_mem = [float(log["test_acc"][log["epoch"] == m, i][0]) for i, m in enumerate(mem)] if all(m is not None for m in mem) else None
claims.at_most("memorise_by_100", mem, 100, "every model memorises first: train accuracy >= 0.99 by epoch {bound}",
               paper="memorisation first, generalisation much later [A]")
claims.holds("groks", all(g is not None for g in grok), grok, "an epoch for every model",
             "every model groks: test accuracy reaches >= 0.99", paper="grokking near epoch 800 [TQ]")
claims.at_most("test_low_at_memorisation", test_at_mem, 0.2,
               "test accuracy stays low when the training set is memorised (test accuracy at that epoch)",
               paper="near chance before grokking [C-fig]")
claims.at_least("grokking_delay", delay, 200, "generalisation comes later: grokking >= {bound} epochs after memorisation",
                paper="hundreds of epochs (grokking near 800) [TQ]")
grok_all = max(grok) if all(g is not None for g in grok) else run.epochs
final_test = log["test_acc"][-1]
print("final test accuracy per model:", np.round(final_test, 4))
claims.ledger()

# %% mystnb={"figure": {"caption": "Grokking. Train (solid) and test (dashed) accuracy at the last position, every 10 epochs, one colour per model; dotted lines mark each model's grokking epoch (first test accuracy >= 0.99). The paper's models grok near epoch 800 (see the page on the paper's setup).", "name": "fig-modadd-grokking"}}
fig, ax = plt.subplots(figsize=(6.4, 3.2))
for i in range(n_models):
    style = dict(color=f"C{i}", lw=1.2)
    ax.plot(log["epoch"], log["train_acc"][:, i], **style, label=f"model {i + 1} train")
    ax.plot(log["epoch"], log["test_acc"][:, i], **style, ls="--", label=f"model {i + 1} test")
    if grok[i] is not None:
        ax.axvline(grok[i], color=f"C{i}", ls=":", lw=1)
ax.axhline(chance, color="0.6", lw=0.8, ls="-.", label="chance 1/p")
ax.set_xlabel("epoch")
ax.set_ylabel("accuracy (last position)")
ax.legend(fontsize=7, ncol=3, loc="center right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The core through training
#
# At every checkpoint ACE runs at `unembed.hook_in`, position $-1$: the output of block 2,
# which the readout reads linearly (the paper's site), so $W_o = W_U^\top W_U$ exactly
# ({ref}`method-gramians`). Activations are those of the 1405 test pairs. For every $r$ we keep only the top-$r$ ACE directions ($h\leftarrow Ph$) or
# remove them ($h\leftarrow h-Ph$), uncentred as the paper ({ref}`sources-method`), and score
# test accuracy ({ref}`method-rank-scans`, {ref}`method-interventions`), the readout's bias
# kept as the paper's hooks keep it. Because the tail is affine these scans are exact
# closed forms (a test checks them against hooks on the model; one check follows below).
# From the scans:
#
# - $r_\text{energy}$: the smallest $r$ holding 99% of the balanced energy ({ref}`sources-method`);
# - $r_\text{nec}$: the smallest $r\ge1$ whose removal gives accuracy $\le 2/p$
#   (scanned from 1; the reference code starts at $r_\text{energy}$);
# - $r_\text{suf}$: the smallest $r\ge1$ whose keeping alone gives accuracy within $10^{-3}$
#   of the full model;
# - the paper's reported **core dimension** $r_\text{core}=\max(r_\text{energy}, \text{first } r\ge r_\text{energy}
#   \text{ with removal} \le 2/p)$, and core-only / core-removed accuracy at $r_\text{core}$.
#
# Before grokking the full model is itself near chance on the test set, so "removal gives
# $\le 2/p$" is then trivially true; $r_\text{nec}$ means something only once the full
# model is well above $2/p$, and we plot it only where test accuracy is $\ge 0.5$.

# %%
# the final model 1, for a check through hooks
model_chk = mod.to_models(out["final_params"], run, device)[0]
H = mod.last_position_activations(model_chk, data_dev.test_x)
res = ace(H, observability_from_readout(readout_matrix(model_chk)), threshold=mod.ENERGY_THRESHOLD)
keep_fast, remove_fast, _ = mod.scan_keep_remove(H, res.basis, readout_matrix(model_chk),
                                                 data_dev.test_y, readout_bias(model_chk))
r_chk = int(ck["r_core"][-1, 0])
hook_acc = {}
for mode in ("keep", "remove"):
    hook = subspace_hook(res.core(r_chk).float(), mode, positions=-1)
    logits = mod.bridge_last_logits(model_chk, data_dev.test_x, [(mod.ACE_HOOK, hook)])
    hook_acc[mode] = float((logits.argmax(1) == data_dev.test_y).float().mean())
print(f"final model 1, r = {r_chk}: keep {hook_acc['keep']:.4f} via hooks vs "
      f"{keep_fast[r_chk]:.4f} closed form; remove {hook_acc['remove']:.4f} "
      f"vs {remove_fast[r_chk]:.4f}")

# %% tags=["hide-input"]
claims.at_most("closed_form_equals_hooks",
               max(abs(hook_acc["keep"] - keep_fast[r_chk]), abs(hook_acc["remove"] - remove_fast[r_chk])),
               1.5 / len(data.test_y), "closed-form scans equal hook interventions on the model (largest difference, "
               "at most one test pair)", kind="sanity", paper="an identity of two computations, not a result")
display(claims.ledger())

# the range over seeds 0-9 of a claim's value on the pre-LN models (their committed seed table)
pre_ln = partial(seed_span, "03_grokking_core", directory=ledger_rules.SEED_TABLES / "pre-ln", fmt="{:.0f}")

print(at_checkpoints([0, 100, 200, 300, grok_all, grok_all + 100, run.epochs], ck_ep, ck,
                     ["test_acc", "r_energy", "r_nec", "r_suf", "r_core", "core_only_acc", "core_removed_acc"]))

# %% mystnb={"figure": {"caption": "Paper figure 1A, 'Mod Add Core Forms at Grokking'. Test accuracy (dashed red, left axis) and core dimension r_core (black, right axis), mean \u00b1 SE over models; dotted line: the epoch by which every model has grokked.", "name": "fig-modadd-1a"}}
fig, ax = plt.subplots(figsize=(6.4, 3.2))
acc_m, acc_se = mean_se(ck["test_acc"])
ax.plot(ck_ep, acc_m, "--", color="C3", label="test accuracy")
ax.fill_between(ck_ep, acc_m - acc_se, acc_m + acc_se, color="C3", alpha=0.2)
ax.set_xlabel("epoch")
ax.set_ylabel("test accuracy", color="C3")
ax.set_ylim(0, 1.05)
ax2 = ax.twinx()
d_m, d_se = mean_se(ck["r_core"])
ax2.plot(ck_ep, d_m, color="k", label="core dimension")
ax2.fill_between(ck_ep, d_m - d_se, d_m + d_se, color="k", alpha=0.15)
ax2.set_ylabel("core dimension r_core")
ax2.set_ylim(0, max(p, float(np.max(d_m + d_se))) + 3)
ax.axvline(grok_all, color="0.4", ls=":", label="grokked")
fig.legend(fontsize=8, loc="lower right", ncol=1, bbox_to_anchor=(0.88, 0.2))
fig.tight_layout()
plt.show()

# %% mystnb={"figure": {"caption": "Paper figure 1B, 'Core is Necessary and Sufficient'. Test accuracy with only the core kept (blue) and with the core removed (orange), at r_core, mean \u00b1 SE over models; grey: the full model (hidden under the blue line where they agree); chance 1/p and the necessity level 2/p dotted.", "name": "fig-modadd-1b"}}
fig, ax = plt.subplots(figsize=(6.4, 3.2))
for key, c, lab in (("test_acc", "0.5", "full model"), ("core_only_acc", "C0", "core only"),
                    ("core_removed_acc", "C1", "core removed")):
    m_, s_ = mean_se(ck[key])
    ax.plot(ck_ep, m_, color=c, label=lab)
    ax.fill_between(ck_ep, m_ - s_, m_ + s_, color=c, alpha=0.2)
ax.axhline(chance, color="0.3", ls=":", lw=1, label="chance 1/p")
ax.axhline(chance2, color="0.6", ls=":", lw=1, label="2/p")
ax.axvline(grok_all, color="0.4", ls=":")
ax.set_xlabel("epoch")
ax.set_ylabel("test accuracy")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% tags=["hide-input"]
post = ck_ep >= grok_all
gap = np.abs(ck["core_only_acc"][post] - ck["test_acc"][post])
# necessity measured, not defined: accuracy with the top r_energy directions (the 99 %-energy core) removed
r_e = ck["r_energy"].astype(int)
removed_energy = np.take_along_axis(ck["remove_acc"], r_e[..., None], axis=2)[..., 0]  # (checkpoints, models)
claims.at_most("keep_gap", max_or_nan(gap), 0.005,
               "after grokking, keeping only the core keeps the full model's accuracy within {bound} (largest gap)",
               paper="≈ full accuracy [C-fig]")
claims.at_most("energy_core_necessary", max_or_nan(removed_energy[post]), chance2,
               "after grokking, removing the top r_energy directions (the 99 %-energy core) leaves test accuracy "
               "<= 2/p (largest)", paper="removing the core gives chance [A][C-fig]")
claims.at_most("core_removed_at_r_core", max_or_nan(ck["core_removed_acc"][post]), chance2,
               "after grokking, core-removed test accuracy at the reported r_core <= 2/p (largest): true by the "
               "definition of r_core wherever it exists", kind="sanity",
               paper="r_core is defined by this rule: it checks that the rule found a rank")
claims.at_least("core_only_every_checkpoint", min_or_nan(ck["core_only_acc"][post]), 0.98,
                "the strict reading: core-only test accuracy >= {bound} at every checkpoint after grokking (smallest)",
                asserted=False, paper="≈ full accuracy [C-fig]")
print("core dimension r_core after grokking:", ck["r_core"][post].T.astype(int).tolist())
print("r_energy after grokking:", r_e[post].T.tolist())
print("test accuracy with the top r_energy directions removed, after grokking:", np.round(removed_energy[post].T, 4).tolist())
claims.ledger()

# %% tags=["hide-input"]
Markdown(
    f"After grokking, keeping only the core keeps the model's accuracy (largest gap {max_or_nan(gap):.4f}) and removing "
    f"the 99 %-energy core, the top r_energy directions, leaves at most {max_or_nan(removed_energy[post]):.4f} test "
    f"accuracy against $2/p$ = {chance2:.4f}, at every checkpoint after grokking"
    + (", as in the paper." if max_or_nan(removed_energy[post]) <= chance2 else
       ": above $2/p$ at some checkpoint, so in this run the energy core alone is not always necessary.")
    + " The paper's reported core dimension $r_\\text{core}$ (printed above for every checkpoint after grokking) "
    "passes the removal test by its definition, so its removal accuracy is a sanity check, not evidence; the "
    "evidence is the energy core, chosen by energy alone and then tested by removal.")

# %% [markdown]
# ### When does a small subspace become necessary and sufficient?
#
# The energy dimension is one question; whether a *small* subspace is causally both
# necessary and sufficient is another. The next figure shows all three dimensions for
# every model. $r_\text{suf}$ is defined at every checkpoint; $r_\text{nec}$ only where the
# model is well above chance.

# %% mystnb={"figure": {"caption": "When the core forms. Energy dimension r_energy (black), sufficient dimension r_suf (blue: smallest kept subspace that keeps full accuracy; shown where test accuracy >= 3/p) and necessary dimension r_nec (orange: smallest removed subspace that drops accuracy to 2/p, scanned from r = 1; shown where test accuracy >= 0.5), one line style per model; dotted: grokking.", "name": "fig-modadd-when"}}
fig, ax = plt.subplots(figsize=(6.4, 3.4))
ls = ["-", "--", "-.", ":"]
for i in range(n_models):
    ok = ck["test_acc"][:, i] >= 0.5
    # at chance, "keeping r directions keeps the accuracy" is trivial
    above = ck["test_acc"][:, i] >= 3 / p
    line = dict(ls=ls[i % 4], lw=1)
    ax.plot(ck_ep, ck["r_energy"][:, i], color="k", **line, label=f"r_energy, model {i + 1}")
    ax.plot(ck_ep[above], ck["r_suf"][above, i], color="C0", **line, label=f"r_suf, model {i + 1}")
    ax.plot(ck_ep[ok], ck["r_nec"][ok, i], "o", color="C1", ms=3, **line,
            label=f"r_nec, model {i + 1}")
ax.axvline(grok_all, color="0.4", ls=":")
ax.set_ylim(0, None)
ax.set_xlabel("epoch")
ax.set_ylabel("dimension")
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()
plt.show()

# %%
g0 = min(g for g in grok if g is not None) if all(g is not None for g in grok) else run.epochs
pre = (ck_ep >= 50) & (ck_ep < g0)
jg = int(np.argmin(np.abs(ck_ep - grok_all)))
print("r_energy at initialisation:", ck["r_energy"][0], " at grokking:", ck["r_energy"][jg],
      " at the end:", ck["r_energy"][-1])
print("r_suf before grokking (epochs 50 .. grokking):", ck["r_suf"][pre].T.astype(int).tolist())
print("r_suf after grokking:", ck["r_suf"][post].T.astype(int).tolist())
print("r_nec after grokking:", ck["r_nec"][post].T.astype(int).tolist())

# %% tags=["hide-input"]
claims.holds("energy_dimension_falls", bool((ck["r_energy"][0] >= 35).all() and (ck["r_energy"][jg] <= 25).all()),
             {"init": ck["r_energy"][0].tolist(), "grokking": ck["r_energy"][jg].tolist()}, ">= 35 -> <= 25",
             "the energy dimension falls from >= 35 at initialisation to <= 25 by grokking, every model",
             paper="'~15D' at grokking [TS]; the reference code on a CPU: ~43 -> ~15")
claims.at_most("r_nec_small", max_or_nan(ck["r_nec"][post]), 20,
               "a small necessary subspace after grokking: r_nec <= {bound} at every checkpoint (largest)",
               paper="'~15D' at grokking [TS]",
               reason="above the paper's ~15: the necessary dimension exceeds the sufficient one by the redundancy "
                      "(the paper's figure 2B) and moves by a few directions between checkpoints")
claims.at_most("r_suf_small", max_or_nan(ck["r_suf"][post]), 15,
               "a small sufficient subspace after grokking: r_suf <= {bound} at every checkpoint (largest)",
               paper="'~15D' at grokking [TS]")
display(claims.ledger())

# %% tags=["hide-input"]
Markdown(
    "**When does the core form?** Gradually, with generalisation. The energy dimension falls from "
    f"{range_of(ck['r_energy'][0])} at initialisation (the reference code on a CPU: ~43, {{ref}}`sources-modular`) while "
    f"test accuracy rises, and is {range_of(ck['r_energy'][jg])} at grokking (the paper's \"~15D\") and "
    f"{range_of(ck['r_energy'][-1])} at epoch {run.epochs}. A small subspace is causally meaningful only once the model is "
    "well above chance: from then on the necessary and sufficient dimensions track the energy dimension from below "
    f"(after grokking r_nec is {range_of(ck['r_nec'][post])} and r_suf {range_of(ck['r_suf'][post])} in this run). The gap "
    "between the sufficient and the necessary dimension (directions each of which can go without harm, but not all "
    "together) is the paper's \"redundancy\".\n\n"
    "With the TransformerLens-native pre-LN models of the same size (`architecture=\"pre-ln\"`, their seed table "
    "kept in `results/robustness/pre-ln/`) only the sufficient dimension falls, abruptly at grokking (median "
    f"r_suf after grokking {pre_ln('sufficient_appears_at_grokking', pick=lambda v: v[1])} over their ten "
    "seeds); the energy dimension does not fall (initialisation minus grokking "
    f"{pre_ln('energy_dimension_does_not_fall')}) and removing fewer than $p-1 = {p - 1}$ directions "
    "never brings accuracy down to $2/p$ (smallest r_nec after grokking "
    f"{pre_ln('no_small_necessary_subspace')}). What the architecture changes (LayerNorm placement, "
    "dropout sites, initialisation, the readout bias) and which of these decides is the subject of "
    "{doc}`chapter 07 <07_architecture_and_the_core>`.")

# %% [markdown]
# ## The mechanism is a rotation
#
# Class prototypes $r_c$ are the mean core coordinates (at $r_\text{core}$) of the test
# activations whose answer is $c$. After centring and an SVD truncation, the operator $A$
# with $r_c A \approx r_{c+1 \bmod p}$ (the "add 1" map) is fitted by ridge regression
# (ridge 1) leaving out a contiguous block of $\mathrm{round}(0.075p)=4$ classes, whose
# pairs give the held-out $R^2_h$ ({ref}`sources-modular`, {ref}`method-operators`). Beside it,
# the reference code's own number: the in-sample $R^2$ of a plain least-squares fit on all
# $p$ pairs (`modular.in_sample_r2`), which a large enough core can make high without any
# structure, so the held-out one is the test. If the network computes with Fourier
# features, $A$ is a rotation: its eigenvalues lie on the unit circle (within
# $\sin(\pi/p)$) at angles $2\pi k/p$, one frequency $k$ per rotational mode
# (`ace_utils.method.operators.rotational_mode_count`).

# %%
print(at_checkpoints([0, grok_all, run.epochs], ck_ep, ck, ["r2_h", "r2_in", "modes", "k"]))

# %% tags=["hide-input"]
claims.at_least("rotational_modes", min_or_nan(ck["modes"][post]), 3,
                "after grokking, the shift operator has >= {bound} rotational modes (smallest count)",
                paper="eigenvalues 'snap onto the unit circle' at grokking [TQ]; the reference code: 5-7",
                reason="the paper gives no count; three or more modes is a rotation by several frequencies")
claims.holds("init_no_rotation", bool((ck["r2_h"][0] < 0.5).all() and (ck["modes"][0] == 0).all()),
             {"r2_h": ck["r2_h"][0].tolist(), "modes": ck["modes"][0].tolist()}, "R²_h < 0.5, 0 modes",
             "at initialisation there is no rotation: R²_h < 0.5 and no rotational mode", paper="R²_h ≈ 0 before [TS]")
claims.at_least("r2_h_after_grokking", min_or_nan(ck["r2_h"][post]), 0.9,
                "after grokking the rotation predicts held-out classes: R²_h >= {bound} at every checkpoint (smallest)",
                paper="≈0 → ≈1 at grokking [TS]")
claims.at_least("r2_in_after_grokking", min_or_nan(ck["r2_in"][post]), 0.95,
                "after grokking, the in-sample R² (the reference code's definition) >= {bound} (smallest)",
                paper="the reference code: ~0.98")
display(claims.ledger())

# %% [markdown]
# The eigenvalues move onto the unit circle as the models generalise, and the fit in the
# core predicts the held-out block of classes: the "add 1" map in the core is a rotation
# by a few frequencies, the paper's cyclic mechanism. Below, the same held-out fit on the
# final models in the top-$r$ ACE directions for other $r$: how small can the core be
# and still carry the rotation, and does a larger one still generalise?

# %%
r_grid = [4, 6, 8, 10, 15, 20, 30, 40, 52]
r2_vs_r = np.zeros((n_models, len(r_grid)))
for i, model_i in enumerate(mod.to_models(out["final_params"], run, device)):
    H_i = mod.last_position_activations(model_i, data_dev.test_x)
    Wo_i = observability_from_readout(readout_matrix(model_i))
    res_i = ace(H_i, Wo_i, threshold=mod.ENERGY_THRESHOLD)
    for j, r in enumerate(r_grid):
        protos = mod.class_prototypes(res_i.coords(H_i, r).cpu().numpy(), data.test_y.numpy(), p)
        r2_vs_r[i, j] = mod.shift_operator(protos, p)["r2_h"]
print("final models: R²_h of the shift operator in the top-r ACE directions")
print("r      ", r_grid)
for i in range(n_models):
    print(f"model {i + 1}", np.round(r2_vs_r[i], 2).tolist())
from15 = r2_vs_r[:, r_grid.index(15):]

# %% tags=["hide-input"]
claims.at_least("r2_h_top15_at_end", float(from15.min()), 0.9,
                "at the end, the rotation generalises in the top r >= 15 ACE directions: R²_h >= {bound}, every model "
                "(smallest)", paper="not in the paper (beyond it)")
display(claims.ledger())
below15 = r2_vs_r[:, : r_grid.index(15)]
Markdown(f"From 15 directions up, the rotation predicts the held-out classes with $R^2_h$ {span(from15, '{:.2f}')} in "
         f"this run's models; in the first {r_grid[0]}-{r_grid[r_grid.index(15) - 1]} ACE directions it reaches "
         f"{span(below15, '{:.2f}')}: those hold only some of the rotation's frequencies, so the map restricted to them "
         "is not closed. Adding directions beyond the core changes little, because the fit's SVD truncation drops what "
         "the prototypes do not use.")


# %% [markdown]
# Where is the Fourier structure, then? A quick look at the weights (not an ACE
# quantity): the share of the power of the token embedding $W_E$ and of the unembedding
# $W_U$ (each centred over the $p$ classes, Fourier-transformed along the class index)
# that lies in their 5 strongest of the $\lfloor p/2\rfloor = 26$ non-zero frequencies.
# A uniform spread gives $5/26\approx0.19$; the "clock" algorithm gives nearly 1.


# %%
fp = out["final_params"]
share_E = [mod.fourier_power_share(w.double().numpy(), top=5) for w in fp["embed.weight"]]
share_U = [mod.fourier_power_share(w.double().numpy(), top=5) for w in fp["unembed.weight"]]
print("top-5 frequency power share, embedding W_E:", np.round(share_E, 3),
      "  unembedding W_U:", np.round(share_U, 3), f"  uniform: {5 / (p // 2):.3f}")

# %% tags=["hide-input"]
claims.above("fourier_embedding", min(share_E), 0.4,
             "the embedding is Fourier-sparse: top-5 frequency share of W_E > {bound} (smallest)",
             paper="not in the paper (beyond it; uniform: 5/26 = 0.19)")
claims.above("fourier_readout", min(share_U), 0.4,
             "the readout is Fourier-sparse: top-5 frequency share of W_U > {bound} (smallest)",
             paper="not in the paper (beyond it; uniform: 5/26 = 0.19)")
display(claims.ledger())
pre_ln_wu = ledger_rules.seed_values("03_grokking_core", "readout_not_fourier_sparse", ledger_rules.SEED_TABLES / "pre-ln")
Markdown("Both the embedding and the readout are concentrated on a few frequencies (top-5 shares "
         f"{span(share_E)} and {span(share_U)} in this run): the models read the inputs and write the answer as a few "
         "waves over the residues, the \"clock\" representation, and at the site ACE reads the \"add 1\" map is then a "
         "rotation by those frequencies, which is why it predicts held-out classes. (In pre-LN models the embedding is "
         "as concentrated but the readout is spread almost uniformly, a top-5 share below 0.4 on "
         f"{sum(v < 0.4 for v in pre_ln_wu.values())} of {len(pre_ln_wu)} seeds of their seed table: a dense code for "
         "the class, which need not be shift-equivariant.)")

# %%
first_grok_ck = ck_ep[ck_ep >= grok_all][0] if (ck_ep >= grok_all).any() else ck_ep[-1]
before = int(round(0.75 * grok_all / 50) * 50)
clock_epochs = [0, before, int(first_grok_ck), int(first_grok_ck) + 100, run.epochs]
print("clock epochs (the paper's 0, 300, 800, 900, 2000 scaled to our grokking epoch):",
      clock_epochs)

# %% mystnb={"figure": {"caption": "Paper figure 1C, 'Cyclic Mechanism Emerges in Core at Grokking': eigenvalues of the fitted shift operator of model 1 in the complex plane at five epochs (blue: within sin(\u03c0/p) of the unit circle; grey: not), with test accuracy, held-out R\u00b2_h and core dimension.", "name": "fig-modadd-1c"}}
fig, axes = plt.subplots(1, len(clock_epochs), figsize=(11, 2.7))
for ax, e in zip(axes, clock_epochs):
    j = int(np.argmin(np.abs(ck_ep - e)))
    title = (f"epoch {int(ck_ep[j])}\nacc {ck['test_acc'][j, 0]:.2f}, "
             f"R²_h {ck['r2_h'][j, 0]:.2f}, dim {int(ck['r_core'][j, 0])}")
    eigenvalue_clock(ax, ck["eigenvalues"][j, 0], p, title)
    ax.set_xlabel("Re λ", fontsize=8)
axes[0].set_ylabel("Im λ", fontsize=8)
fig.tight_layout()
plt.show()

# %% mystnb={"figure": {"caption": "The rotation appears with generalisation: held-out R\u00b2_h of the shift operator (left) and the number of rotational modes (right) over training, one line per model; dotted: grokking.", "name": "fig-modadd-rotation"}}
fig, (a1, a2) = plt.subplots(1, 2, figsize=(8.5, 3))
for i in range(n_models):
    a1.plot(ck_ep, np.clip(ck["r2_h"][:, i], -1, 1), color=f"C{i}", label=f"model {i + 1}")
    a2.plot(ck_ep, ck["modes"][:, i], color=f"C{i}", label=f"model {i + 1}")
for a in (a1, a2):
    a.axvline(grok_all, color="0.4", ls=":")
    a.set_xlabel("epoch")
a1.set_ylabel("held-out R²_h (clipped at -1)")
a2.set_ylabel(f"rotational modes (max {p // 2 + 1})")
a1.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## After grokking: weight decay 1 vs a weight-decay-0 branch
#
# The paper continues training to epoch 20,000 and reports that with weight decay the
# core keeps growing ("inflation", to ~60 dimensions) through redundant copies of the
# computation in more frequency modes, while a branch continued from a post-grokking
# checkpoint with weight decay 0 does not (numbers from third-party summaries, tagged [TS]
# on the {ref}`sources page <sources-modular>`). The branch here starts at epoch
# `branch_epoch` with a fresh AdamW.

# %%
t0 = time.perf_counter()
out_branch = mod.run_models_resumable(run, workers=workers, segment_epochs=segment,
                                      # the branch, from the main run's epoch-branch_epoch state
                                      device=device)
branch = out_branch["branch"] if out_branch is not None else None
print(f"branch: {time.perf_counter() - t0:.1f} s for this call")
if branch is not None:
    b_ck, b_ep = branch["ckpt"], branch["ckpt_epoch"]
    both = np.isin(ck_ep, b_ep)
    print("epochs:", ck_ep[both].astype(int).tolist())
    for name, c in (("WD = 1", ck), ("WD 1->0", b_ck)):
        sel = both if name == "WD = 1" else slice(None)
        print(f"{name:8s} r_core {c['r_core'][sel].T.astype(int).tolist()}\n"
              f"         modes  {c['modes'][sel].T.astype(int).tolist()}")
    print("branch final test accuracy:", np.round(branch["log"]["test_acc"][-1], 4))

# %% mystnb={"figure": {"caption": "Paper figure 2A/2D in the window we trained: core dimension r_core (left) and number of rotational modes (right) for continued weight decay 1 (black) and the weight-decay-0 branch (purple), mean \u00b1 SE over models; dotted: the branch point.", "name": "fig-modadd-2ad"}}
fig, (a1, a2) = plt.subplots(1, 2, figsize=(8.5, 3))
curves = [(ck, ck_ep, "k", "WD = 1")]
if branch is not None:
    curves.append((b_ck, b_ep, "purple", "WD 1→0"))
for c, ep, col, lab in curves:
    for a, key in ((a1, "r_core"), (a2, "modes")):
        m_, s_ = mean_se(c[key])
        a.plot(ep, m_, color=col, label=lab)
        a.fill_between(ep, m_ - s_, m_ + s_, color=col, alpha=0.15)
for a in (a1, a2):
    a.set_xlabel("epoch")
    if run.branch_epoch:
        a.axvline(run.branch_epoch, color="0.4", ls=":")
a1.set_ylabel("core dimension r_core")
a2.set_ylabel(f"rotational modes (max {p // 2 + 1})")
a1.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% mystnb={"figure": {"caption": "Paper figure 2B, 'Core Inflation is Driven by Redundancy' (WD = 1 run, mean over models): sufficient dimension r_suf (shown where test accuracy >= 3/p) and necessary dimension r_nec (scanned from r = 1, shown where test accuracy >= 0.5); purple: the WD 1\u21920 branch; the shaded gap is redundancy: directions each of which can be removed without harm, but not all together.", "name": "fig-modadd-2b"}}
fig, ax = plt.subplots(figsize=(6.4, 3.2))
ok_all = (ck["test_acc"] >= 0.5).all(1)
suf_m, nec_m = ck["r_suf"].mean(1), ck["r_nec"].mean(1)
above_all = (ck["test_acc"] >= 3 / p).all(1)
ax.plot(ck_ep[above_all], suf_m[above_all], color="C0", label="sufficient r_suf")
ax.plot(ck_ep[ok_all], nec_m[ok_all], color="C1", label="necessary r_nec")
ax.fill_between(ck_ep[ok_all], suf_m[ok_all], nec_m[ok_all], where=nec_m[ok_all] >= suf_m[ok_all],
                color="C1", alpha=0.2, label="redundancy")
if branch is not None:
    okb = (b_ck["test_acc"] >= 0.5).all(1)
    ax.plot(b_ep[okb], b_ck["r_nec"].mean(1)[okb], color="purple", ls="--",
            label="necessary, WD 1→0")
    ax.plot(b_ep, b_ck["r_suf"].mean(1), color="purple", ls=":", label="sufficient, WD 1→0")
ax.axvline(grok_all, color="0.4", ls=":")
ax.set_xlabel("epoch")
ax.set_ylabel("dimension")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% mystnb={"figure": {"caption": "Paper figure 2C: clocks of model 1 at the last epoch, continued weight decay 1 (left) and the weight-decay-0 branch (right).", "name": "fig-modadd-2c"}}
fig, axes = plt.subplots(1, 2, figsize=(5.6, 2.9))
for a, name, c, ep in ((axes[0], "WD = 1", ck, ck_ep),) + (((axes[1], "WD 1→0", b_ck, b_ep),)
                                                            if branch is not None else ()):
    eigenvalue_clock(a, c["eigenvalues"][-1, 0], p,
                     f"{name}, epoch {int(ep[-1])}\nR²_h {c['r2_h'][-1, 0]:.2f}, "
                     f"modes {int(c['modes'][-1, 0])}, dim {int(c['r_core'][-1, 0])}")
for a in axes:
    a.set_xlabel("Re λ", fontsize=8)
axes[0].set_ylabel("Im λ", fontsize=8)
fig.tight_layout()
plt.show()

# %% tags=["hide-input"]
if branch is not None:
    jb = int(np.flatnonzero(ck_ep == run.branch_epoch)[0])
    growth_wd1 = ck["r_core"][-1] - ck["r_core"][jb]
    growth_wd0 = b_ck["r_core"][-1] - b_ck["r_core"][0]
    print("r_core growth from the branch point to the end: WD = 1", growth_wd1.tolist(), " WD 1->0", growth_wd0.tolist())
    claims.holds("window_inflation", bool((growth_wd1 > growth_wd0).all()),
                 {"WD=1": growth_wd1.tolist(), "WD 1->0": growth_wd0.tolist()}, "WD=1 growth > WD 1->0 growth",
                 "the paper's inflation, in this window: r_core grows more under WD = 1 than under WD 1→0 (growth per model)",
                 asserted=False, paper="inflation over 20,000 epochs [TS]: not expected in this window")
    display(claims.ledger())
    modes_growth = {"WD = 1": ck["modes"][-1] - ck["modes"][jb], "WD 1→0": b_ck["modes"][-1] - b_ck["modes"][0]}
    display(Markdown(
        f"**Inflation is not shown in this window.** The run stops at epoch {run.epochs}, "
        f"{run.epochs - run.branch_epoch} epochs after the branch; the paper's inflation unfolds over 20,000 epochs. In "
        f"this short window r_core changes by {range_of(growth_wd1)} directions per model under weight decay 1 and by "
        f"{range_of(growth_wd0)} without it, and the number of rotational modes by {range_of(modes_growth['WD = 1'])} and "
        f"{range_of(modes_growth['WD 1→0'])}. The next section says where the same models are followed over the "
        "whole schedule."))

# %% [markdown]
# ## Over the paper's 20,000 epochs
#
# Inflation needs the paper's whole schedule, hours of training on 2 CPU cores, so the book
# reads it from two committed runs of that schedule, on a page of its own:
# {doc}`03 · The paper's 20,000 epochs <../book/long_runs>`. On the paper's models continued
# weight decay inflates the core, mostly as redundancy, while without it the energy and the
# rotational modes stay where grokking left them; on the pre-LN models the core inflates the
# other way, without weight decay.

# %% [markdown]
# ## Our numbers beside the paper's
#
# Four columns: this run; the pre-LN models (`architecture="pre-ln"`) over seeds 0-9, each
# entry the range over seeds of what their committed seed table (`results/robustness/pre-ln`)
# holds (per model, or the extreme over a seed's checkpoints after grokking); the author's
# reference code run unchanged on a 2-core CPU
# (its "quick" preset: 2 models, 1000 epochs); and the paper's values as collected on the
# {ref}`sources page <sources-modular>`, with their source tags ({ref}`sources-tags`; [TS]:
# unverified third-party summaries; "not retrieved": not available to us). The numbers of the
# paper's 20,000 epochs are in the closing table of {doc}`their own page <../book/long_runs>`.

# %% tags=["hide-input"]
jg = int(np.argmin(np.abs(ck_ep - grok_all)))
na = "not recorded"
rows = [
    ("grokking epoch (test acc ≥ 0.99)", ", ".join(str(g) for g in grok),
     pre_ln("groks"), "~700", "800 [TQ]"),
    ("train acc ≥ 0.99 at epoch", ", ".join(str(m) for m in mem),
     pre_ln("memorise_by_100"), na, "not retrieved"),
    ("energy dimension at init / grokking / end",
     f"{range_of(ck['r_energy'][0])} / {range_of(ck['r_energy'][jg])} / {range_of(ck['r_energy'][-1])}",
     "~44 throughout (init minus grokking: "
     + pre_ln("energy_dimension_does_not_fall") + ")", "~43 / ~15 / 12-14", "not retrieved"),
    ("core dimension r_core at grokking / end", f"{range_of(ck['r_core'][jg])} / {range_of(ck['r_core'][-1])}", na, na,
     "'~15D' at grokking [TS]"),
    ("sufficient / necessary dim. after grokking", f"{range_of(ck['r_suf'][post])} / {range_of(ck['r_nec'][post])}",
     pre_ln("sufficient_appears_at_grokking", pick=lambda v: v[1])
     + " (median per seed) / smallest per seed "
     + pre_ln("no_small_necessary_subspace"),
     "8-10 / 12-14 (epoch 1000)", "not retrieved"),
    ("core-only acc. after grokking", range_of(ck["core_only_acc"][post], "{:.3f}"),
     "largest gap to full per seed "
     + pre_ln("keep_gap", fmt="{:.4f}"), "≈ full accuracy", "≈ full accuracy [C-fig]"),
    ("acc. with the 99 %-energy core removed, after grokking", range_of(removed_energy[post], "{:.3f}") + f" (2/p = {chance2:.3f})",
     na, na, "≈ chance [A][C-fig]"),
    ("core-removed acc. at r_core after grokking (≤ 2/p by r_core's definition)",
     range_of(ck["core_removed_acc"][post], "{:.3f}") + f" (2/p = {chance2:.3f})",
     "largest per seed " + pre_ln("core_removed_at_r_core", fmt="{:.3f}"),
     "0.002-0.014",
     "≈ chance [A][C-fig]"),
    ("R²_h at init / after grokking", f"{range_of(ck['r2_h'][0], '{:.2f}')} / {range_of(ck['r2_h'][post], '{:.2f}')}",
     "largest per seed after grokking " + pre_ln("r2_h_after_grokking_largest", fmt="{:.2f}"),
     na, "≈0 → ≈1 at grokking [TS]"),
    ("in-sample R² after grokking (reference definition)", range_of(ck["r2_in"][post], "{:.3f}"), na, "~0.98", "not retrieved"),
    ("rotational modes at init / after grokking", f"{range_of(ck['modes'][0])} / {range_of(ck['modes'][post])}",
     "0 / smallest per seed " + pre_ln("rotational_modes"), "5-7 after grokking",
     "eigenvalues 'snap onto the unit circle' at grokking [TQ]"),
    ("core dim. at the end of this run, WD = 1 / WD 1→0",
     f"{range_of(ck['r_core'][-1])} / {range_of(b_ck['r_core'][-1]) if branch is not None else 'no branch'} (epoch {run.epochs})",
     na, "12-14 / no inflation yet (epoch 1000)", "not retrieved"),
    ("rotational modes at the end of this run, WD = 1 / WD 1→0",
     f"{range_of(ck['modes'][-1])} / {range_of(b_ck['modes'][-1]) if branch is not None else 'no branch'}", na,
     "5-7 after grokking / not recorded", "not retrieved"),
]
rows.append(("the paper's 20,000 epochs: r_core under WD = 1 / WD 1→0",
             "committed runs, on {doc}`their own page <../book/long_runs>`", "the same page (one run)",
             "not run (20,000 epochs)", "~60 / no inflation [TS]"))
ours = f"ours, the paper's models (seed {seed})" if architecture == "paper" else f"ours, {architecture} models (seed {seed})"
head = ["quantity", ours, "ours, pre-LN models (seeds 0-9)", "reference code on a CPU", "paper"]
Markdown(markdown_table(head, rows))

# %% [markdown]
# The claims of this chapter, by kind:

# %% tags=["hide-input"]
claims.overview()

# %% [markdown]
# **What differs and why.**
#
# - *Models.* The paper's own: PyTorch post-LN encoder layers with dropout 0.1 and a
#   biased readout, PyTorch's initialisation, AdamW on every parameter, float32. Their
#   seeds are ours (model $i$ from `seed + 1000 i`), not the reference code's
#   `seed_all(1031)`, and each model draws its own batch order and dropout masks.
# - *Schedule.* The default preset trains 1000 epochs (not 20,000), analyses every 50th
#   epoch (the paper: every 100th) and branches at epoch 800, about 100 epochs after the
#   first model groks, as the paper's 900 is after its 800 (the reference code's "quick"
#   preset on a CPU: grokking by epoch 700, the branch at 800). Core formation, necessity,
#   sufficiency and the rotation need only the epochs up to shortly after grokking, so the
#   short schedule does not change them; inflation is not tested by it, but by the
#   committed 20,000-epoch run of the same seeds (a separate script; hours of CPU time),
#   read on {doc}`its own page <../book/long_runs>` with how it differs from the paper's.
# - *Evaluation.* Accuracy is logged every 10 epochs (the reference code: every epoch), so
#   grokking epochs are multiples of 10.
# - *Scans.* $r_\text{nec}$ is scanned from $r=1$ (the reference code starts at
#   $r_\text{energy}$); the reported core dimension uses the paper's rule. $R^2_h$ holds
#   out a contiguous block of 4 classes starting at class 0 (the reference code draws the
#   block's start from a seed).
# - *Beyond the paper.* TransformerLens-native pre-LN models (`architecture="pre-ln"`) give
#   another picture at the same settings: a sufficient core of ~15 dimensions, but a
#   ~44-dimensional energy core, no necessary subspace smaller than $p-1$, and no
#   generalising rotation; over 20,000 epochs their core inflates without weight decay,
#   not with it ({doc}`the long runs' page <../book/long_runs>`).
#
# ## Summary
#
# - Both models memorise the training pairs early and grok hundreds of epochs later
#   ({numref}`fig-modadd-grokking`); asserted, and it holds on all ten seeds of the
#   {doc}`robustness page <../book/robustness>`.
# - The energy dimension falls from initialisation to grokking, and after grokking keeping only
#   the core keeps the accuracy; both are asserted ({numref}`fig-modadd-1a`,
#   {numref}`fig-modadd-1b`, {numref}`fig-modadd-when`). Necessity is tested by removing the
#   99 %-energy core, chosen by energy alone, against $2/p$; removal at the reported
#   $r_\text{core}$ passes by the definition of $r_\text{core}$ and is only a sanity check.
# - In the core the "add 1" map becomes a rotation: its eigenvalues move onto the unit circle as
#   the models generalise, with several rotational modes after grokking and none at
#   initialisation ({numref}`fig-modadd-1c`, {numref}`fig-modadd-rotation`), and the embedding
#   and readout are concentrated on a few frequencies. That the rotation predicts held-out classes at every checkpoint after grokking
#   holds on most seeds but not all, so it is reported, not asserted.
# - The paper's inflation is not visible in the 200 epochs after the weight-decay branch
#   ({numref}`fig-modadd-2ad`, {numref}`fig-modadd-2b`, {numref}`fig-modadd-2c`; reported). It
#   is read from one committed 20,000-epoch run of three models on {doc}`its own page
#   <../book/long_runs>`: under weight decay the core at least doubles, mostly as redundancy,
#   but with fewer rotational modes than the paper reports, and without weight decay the
#   necessary dimension of some models grows too, which the paper does not report.
# - Pre-LN models of the same size grok too, but keep a large energy core, have no small
#   necessary subspace and no generalising rotation (their ten-seed table).
#
# ## Exercises
#
# 1. Train the pre-LN models: `papermill notebooks/03_grokking_core.ipynb out.ipynb -p
#    architecture pre-ln`. In {numref}`fig-modadd-when`, which of the three dimensions falls at
#    grokking? What does a small sufficient subspace without a small necessary one say about
#    how the answer is stored? (Away from its defaults the chapter reports its claims instead of
#    asserting them.)
# 2. Train without dropout: `-p dropout 0.0`. These are the models of the "no dropout" setting
#    of {doc}`chapter 07 <07_architecture_and_the_core>`'s committed study (the same run and
#    seeds); compare your numbers with its table. Dropout zeroes random units during training:
#    why might it reward a model for keeping copies of its answer in more directions?
# 3. Lengthen the window after the branch: `-p epochs 2000` (the branch stays at epoch 800).
#    Does $r_\text{core}$ now grow more under weight decay 1 than in the branch
#    ({numref}`fig-modadd-2ad`)? Compare with the epochs at which the committed long-run models
#    inflate on {doc}`their page <../book/long_runs>`.
# 4. Change the modulus: `-p p 97`. {doc}`Chapter 04 <04_grokking_time>` finds that the delay
#    falls as $p$ grows; does it here? The number of possible rotational modes is
#    $\lfloor p/2\rfloor + 1$: does the energy dimension at grokking, or the number of modes,
#    grow with $p$?

# %% tags=["hide-input"]
claims.record(grok_epochs=grok, memorise_epochs=mem, final_test_acc=final_test.tolist(),
              r_energy=ck["r_energy"].tolist(), r_core=ck["r_core"].tolist(), r_suf=ck["r_suf"].tolist(),
              r_nec=ck["r_nec"].tolist(), checkpoint_epochs=ck_ep.tolist(), r2_h=ck["r2_h"].tolist(),
              modes=ck["modes"].tolist(), train_cpu_s=out_branch["train_cpu_s"] if out_branch else out["train_cpu_s"], seconds=time.perf_counter() - t_start)
claims.save()
