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
# (your-model)=
# # ACE on your own model
#
# ACE needs three things from a model: a **hook point** (any activation of a TransformerLens
# `HookedRootModule` or `TransformerBridge`, named as TransformerLens names it), **inputs**, and
# a **behaviour**: a differentiable number per input that the model's output should keep. One
# call finds the core there:
#
# ```python
# import ace_utils as au
#
# core = au.find_core(model, tokens, hook="blocks.3.hook_resid_post", metric=behaviour)
# model.run_with_hooks(tokens, fwd_hooks=core.remove)  # or core.keep, core.flip
# ```
#
# This page runs that call on the Markov-chain models of chapter 01 (the paper's own post-LN
# PyTorch models, `ace_utils.models.paper`, hookable like any TransformerLens model; cached
# when that chapter has run, otherwise trained in a few seconds each), then validates the core
# by keeping, removing and reflecting it next to a random control, and aligns it with a second
# model's core. The last section shows the same call on GPT-2. The {ref}`API page <api-find-core>`
# lists every argument. **Runtime:** {glue:md}`runtime` (from the timing records on the
# {doc}`status page <status>`); chapter 01 caches the models.

# %% tags=["remove-cell"]
# Colab setup. In Colab only: fetch the book's repository and install ace_utils with what this
# page needs from its pyproject.toml, keeping Colab's torch. A second run does nothing.
import os
import subprocess
import sys

_EXTRAS = ""  # this page's extras of pyproject.toml ("" for none)


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
seed = 0  # seed of model A (model B: seed + 100) and of the random control; 0 and 100 are chapter 01's models 1 and 2
device = "cpu"  # where the models train and ACE runs: 'cpu', 'cuda', or 'auto' (cuda where present, else cpu)

# %% tags=["remove-cell"]
from ace_utils.book.chapter import glue_markdown
from ace_utils.book.runtimes import chapter_runtime

glue_markdown("runtime", chapter_runtime("your_model"))

# %% [markdown]
# ## 1. Model, hook point, behaviour
#
# Two models trained on the same 4-state Markov chain from different seeds. The hook point is
# the input of the readout. The behaviour is the log-probability the model gives the next
# state, summed over the positions of a sequence: one differentiable number per sequence, as
# `find_core` needs. Accuracy, which is piecewise constant and has no gradient, is what the
# interventions are scored by.

# %%
import torch
from IPython.display import Markdown

import ace_utils as au
from ace_utils.book.params import Device, Int, validate
from ace_utils.book.tables import dict_table
from ace_utils.method.activations import collect_activations
from ace_utils.method.alignment import (canonical_correlations, principal_angles, projector_overlap,
                                        random_overlap_level)
from ace_utils.tasks import markov as mk

params = validate({"seed": Int(0, 10**6), "device": Device()}, globals())
device = params["device"]  # 'auto' resolved
torch.set_num_threads(1)  # small model: one thread is fastest
chain = mk.lazy_cycle()  # the 4-state chain of chapter 01
data = mk.make_data(chain)  # 3000 test sequences
runs = [mk.MarkovRun(seed=s, **mk.PRESETS["default"], d_model=64) for s in (seed, seed + 100)]
model_a, model_b = (mk.train_markov_model(r, data, progress=False, device=device) for r in runs)

hook = "unembed.hook_in"  # the hook point: here, the input of the readout
tokens, targets = data.test[:, :-1].to(device), data.test[:, 1:].to(device)


def log_prob(logits, batch):
    """The behaviour: log-probability of the next state, summed over positions, (B,)."""
    return logits.log_softmax(-1).gather(-1, targets[batch][..., None]).sum((1, 2))


def accuracy(model, fwd_hooks=()):
    """Next-state accuracy over all positions, with optional hooks."""
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks))
    return (logits.argmax(-1) == targets).double().mean().item()


Markdown(f"Accuracy of model A {accuracy(model_a):.4f}, model B {accuracy(model_b):.4f}; "
         f"the Bayes limit of this chain is {mk.bayes_accuracy(chain):.4f}.")

# %% [markdown]
# ## 2. The core, in one call
#
# `find_core` reads the activations at the hook (the reachability Gramian,
# {ref}`method-gramians`) and the per-sample gradients of the behaviour there (the
# observability Gramian), then computes the balanced truncation ({ref}`method-balanced`) with
# the rank chosen by the energy rule. At the input of a linear readout, `metric="logits"` uses
# the readout itself, $W_o = W_U^\top W_U$, exactly: every logit instead of one behaviour.

# %%
core = au.find_core(model_a, tokens, hook=hook, metric=log_prob)
core_logits = au.find_core(model_a, tokens, hook=hook, metric="logits")
angle_between = principal_angles(core.basis, core_logits.basis).max()
energy = ", ".join(f"{e:.5f}" for e in core.energy_fraction[:4].tolist())
Markdown(f"Core dimension k = {core.rank} from the behaviour's gradients, {core_logits.rank} "
         f"from the readout; the two cores are {angle_between:.1f}° apart at most. "
         f"Cumulative energy of the first four directions: {energy}.")

# %% [markdown]
# ## 3. Keep, remove, flip, and a random control
#
# The core comes with its interventions as `fwd_hooks` for `run_with_hooks`
# ({ref}`method-interventions`), each centred on the mean activation: keep only the core,
# remove it, or reflect it about the mean. `core.control(mode)` does the same to a random
# subspace of the core's dimension.

# %%
scores = {"full model": accuracy(model_a)}
for mode in ("keep", "remove", "flip"):
    scores[f"core {mode}"] = accuracy(model_a, getattr(core, mode))
for mode in ("keep", "remove", "flip"):
    scores[f"random {mode}"] = accuracy(model_a, core.control(mode, seed=seed))
chance = mk.chance_accuracy(data.test)
table = dict_table({n: {"accuracy": a} for n, a in scores.items()}, ["accuracy"], fmt="{:.4f}")
Markdown(table + f"\n\nChance (always the most frequent state): {chance:.4f}.")

# %% [markdown]
# Keeping only the core keeps the model's accuracy, and removing it drops the accuracy to
# chance. Reflecting the core about the mean makes the model wrong almost everywhere: the
# reflected state code points at other states. The random subspace of the same size behaves
# very differently: keeping only it loses much of the accuracy, and removing or reflecting it
# changes little. Chapter 06 compares the core with what simpler finders (PCA, output
# sensitivity) give on these models (`ace_utils.method.baselines`).
#
# ## 4. Alignment with another model
#
# Compare the core with the core of the second, independently trained model
# ({ref}`method-alignment`): by geometry (principal angles, projector overlap against its level
# for random subspaces) and by statistics (canonical correlations of the two models' core
# coordinates on the same inputs).

# %%
core_b = au.find_core(model_b, tokens, hook=hook, metric=log_prob, rank=core.rank)
H, H_b = (collect_activations(m, tokens, [hook])[hook] for m in (model_a, model_b))  # (93000, 64)
k, d = core.rank, core.basis.shape[0]
angles = principal_angles(core.basis, core_b.basis)
overlap, level = projector_overlap(core.basis, core_b.basis), random_overlap_level(k, k, d)
cca = canonical_correlations(core.coords(H), core_b.coords(H_b))  # rows: the same inputs
Markdown(f"Principal angles {', '.join(f'{a:.1f}°' for a in angles)}; projector overlap "
         f"{overlap:.3f} (random subspaces: {level:.3f}); canonical correlations "
         f"{', '.join(f'{c:.4f}' for c in cca)}.")

# %% [markdown]
# The two cores lie in almost unrelated directions of their models' residual streams: the
# angles are large and the overlap is near its level for random subspaces. Yet the two models'
# core coordinates are linear images of each other: the first canonical correlations are close
# to 1, the last one, for the thin third direction that chapter 01 finds carries a little of the
# sequence's history besides the current state, a little lower. This is chapter 02's finding,
# in a few lines.
#
# ## The same call on a hub model
#
# With access to the Hugging Face hub (or a local Hugging Face cache), `load_pretrained` wraps
# GPT-2 in a TransformerBridge. The behaviour is chapter 05's number margin at each prompt's
# last token, read through all later layers, and the interventions touch that token only
# (`positions=` one per prompt). This block is not executed here, because the book runs without
# hub access; `tests/test_your_model.py` runs it with chapter 05's locally trained
# GPT-2-architecture model, which loads through the same `load_pretrained` from a folder.
#
# ```python
# import torch
#
# import ace_utils as au
# from ace_utils.models import load_pretrained
# from ace_utils.tasks import agreement as ag
# from ace_utils.tasks import agreement_corpus as ac
#
# model = load_pretrained("gpt2")  # or "gpt2-medium", a local folder, any causal LM TransformerBridge supports
# tok = model.tokenizer
# tok.pad_token = tok.pad_token or tok.eos_token
# verbs = ag.verb_token_ids(tok)  # ids of " is", " are", " was", " were"
# train_pairs, test_pairs = ac.split_pairs(0)
# train = ag.prompt_batch(tok, ac.make_prompts(300, train_pairs, seed=0))
# test = ag.prompt_batch(tok, ac.make_prompts(300, test_pairs, seed=1))
#
#
# def margin(logits, batch):  # z(are) + z(were) - z(is) - z(was) at each prompt's last token
#     return ag.number_margin(logits[torch.arange(logits.shape[0]), train.last[batch]], verbs)
#
#
# core = au.find_core(model, train.tokens, hook="blocks.8.hook_resid_pre", metric=margin,
#                     positions=train.last, rank=1, batch_size=16)  # the 1-D number axis
#
#
# def auc(mode=None, control=False):  # margin ROC-AUC on held-out prompts, the intervention at the last token
#     def hooks(last):
#         return core.control(mode, positions=last) if control else core.hooks(mode, positions=last)
#     return ag.roc_auc(ag.margins(model, test, verbs, hooks if mode else None), test.labels)
#
#
# print({"base": auc(), **{f"core {m}": auc(m) for m in ("keep", "remove", "flip")},
#        "random flip": auc("flip", control=True)})
# ```
#
# To align this axis with GPT-2 Medium's, run the same lines on `load_pretrained("gpt2-medium")`
# and compare `core.coords(...)` on the same prompts with `canonical_correlations`, or compare
# the sign-aligned coordinates as chapter 05 does. The chapter itself (parameter
# `model_source="hub"`) runs the full layer sweep and the generation test on GPT-2 Small,
# Medium and Large.
#
# ## The API
#
# `find_core` is built on the functions of `ace_utils.method` (activations and gradients at
# hook points, the Gramians and the balanced truncation, the interventions), which can also be
# called one by one. Every function is documented, with the chapter that explains it, on the
# {ref}`API page <api>`.

# %% [markdown]
# ## Summary
#
# - `find_core` needs a hook point, inputs and a differentiable behaviour per input; it returns
#   the core with its keep, remove and flip hooks for `run_with_hooks` and a random control of
#   the same dimension.
# - On chapter 01's Markov model, keeping only the core keeps the accuracy, removing it drops the
#   accuracy to chance, reflecting it makes the model wrong almost everywhere, and a random
#   subspace of the same size behaves very differently. This page shows one run at its seed, a
#   demonstration rather than a claim checked over seeds; chapters 01 and 06 check such claims.
# - The cores of two independently trained models lie in almost unrelated directions, yet their
#   coordinates are linear images of each other: chapter 02's finding in a few lines.
# - The same call runs on GPT-2 through `load_pretrained`. That block is not executed in the
#   book; `tests/test_your_model.py` runs it on chapter 05's locally trained model.
#
# ## Exercises
#
# 1. Use other models: `papermill book/your_model.ipynb out.ipynb -p seed 1` (models 1 and 101,
#    trained in a few seconds each). Which numbers of the page move with the seed, and which
#    stay where they were?
# 2. Look for a core at another hook point. In the executed notebook:
#
#    ```python
#    core_in = au.find_core(model_a, tokens, hook="blocks.0.hook_in", metric=log_prob)
#    print(core_in.rank, accuracy(model_a, core_in.keep), accuracy(model_a, core_in.remove))
#    ```
#
#    `blocks.0.hook_in` is the residual stream entering the block, the token and position
#    embeddings. What dimension does the energy rule give there, and is that core sufficient and
#    necessary? What must the input keep for the block to predict the next state?
# 3. Test the thin third direction that {doc}`chapter 01 <../notebooks/01_markov_cores>` calls
#    real:
#
#    ```python
#    print(core.energy_fraction[:3])
#    keep2, remove2 = (core.hooks(mode, rank=2) for mode in ("keep", "remove"))
#    print(accuracy(model_a, keep2), accuracy(model_a, remove2))
#    ```
#
#    How much of the accuracy do the two strongest directions carry, against the share of the
#    energy they hold? What does that say about judging a direction by its energy alone?
# 4. Measure the spread of the control:
#    `[accuracy(model_a, core.control("remove", seed=s)) for s in range(10)]`. How widely do
#    random subspaces vary, and how large an effect of a random subspace would make you doubt
#    that the core's effect is specific to it?
