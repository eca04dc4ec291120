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
# # 05 · Subject-verb number sits on one axis: keep it, remove it, flip it
#
# **What this chapter shows.** Three small GPT-2-architecture language models that we
# train on a synthetic English corpus (2, 4 and 6 layers) get subject-verb agreement
# right across attractors ("the keys to the cabinet *are*"); at each layer, ACE with the
# number margin as the tail finds one direction whose reflection inverts the number the
# model predicts, from the middle layers on; that direction is a linear "knob" for the
# margin, flipping it during generation turns the verbs' number around, and the three
# models' coordinates on that axis agree. The same code runs GPT-2 Small/Medium/Large
# through TransformerBridge where the Hugging Face hub is reachable
# (`model_source="hub"`). **Runtime:** {glue:md}`runtime` (the timing records of the {doc}`status page <../book/status>`):
# training the three models, two at a time, is most of it.

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
seed = 0  # data (pair split, corpus, prompts) use seed; model i is seeded with seed + 100 * i
model_source = "trained"  # 'trained': our own small models (offline); 'hub': hub_models through TransformerBridge
hub_models = "gpt2,gpt2-medium,gpt2-large"  # comma-separated causal-LM ids, used when model_source == 'hub'
n_layers = [2, 4, 6]  # depth of each trained model
d_models = [64, 80, 96]  # width of each trained model (same length as n_layers)
train_steps = 600  # AdamW steps per trained model (batch 64 sentences)
n_prompts = 1200  # agreement prompts: half for ACE (training pairs), half for testing (held-out pairs)
n_generations = 24  # seeded generations per model, clean and flipped
gen_tokens = 24  # new tokens per generation (the paper: 50)
gen_strength = "adaptive"  # 'adaptive' (the reference code's recipe) or 'reflection' (s = 1 at every step)
device = "cpu"  # 'cpu' (where the seed tables were made), 'cuda' (training, ACE, interventions, generation there), or 'auto'

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from scipy import stats

from ace_utils.book import claims as ledger_rules
from ace_utils.book.chapter import open_chapter
from ace_utils.book.params import Choice, Device, Int, IntList, NameList
from ace_utils.book.tables import markdown_table, per_model, span
from ace_utils.tasks import agreement as ag
from ace_utils.tasks import agreement_corpus as ac

P, claims = open_chapter(
    "05_agreement_axis",
    {
        "seed": Int(0, 10**6),
        "model_source": Choice("trained", "hub"),
        "hub_models": NameList(),
        "n_layers": IntList(1, 12, 1, 4),
        "d_models": IntList(16, 512, 1, 4),
        "train_steps": Int(10, 20000),
        "n_prompts": Int(40, 4000),
        "n_generations": Int(2, 200),
        "gen_tokens": Int(4, 100),
        "gen_strength": Choice("adaptive", "reflection"),
        "device": Device(),
    },
    globals(),
    # claims asserted for our trained models at the default sizes and training (any seed),
    # checked and reported elsewhere and for hub models
    asserted_at={"model_source": "trained", "n_layers": [2, 4, 6], "d_models": [64, 80, 96], "train_steps": 600,
                 "n_prompts": lambda n: n >= 1200},
    threads=1,  # measured: 1 thread trains these small models ~2x faster than 2 on a busy machine
)
if len(n_layers) != len(d_models) or any(d % 4 for d in d_models):
    raise ValueError(f"n_layers {n_layers} and d_models {d_models} must have the same length; widths divisible by 4")
if n_prompts % 4:
    raise ValueError(f"parameter 'n_prompts' = {n_prompts} must be divisible by 4")
device = P["device"]  # 'auto' resolved: the models train and are read there
t_start, cpu_start = time.perf_counter(), time.process_time()

# %% [markdown]
# ## Prompts and corpus
#
# The prompts are the paper's ({ref}`sources-agreement`): a head noun (nine, with the irregular
# plurals children, men, women, mice), an attractor of the *opposite* number after one of
# six connectors, five styles (base, front, back, "There ...", relative clause) and, for
# half of them, the prefix "In the past," that asks for was/were instead of is/are. Each
# prompt stops right before the verb. Of the 81 (head, attractor) combinations, 54 are
# used for the prompts ACE sees (and for the training corpus), 27 are held out for the
# test prompts: the two sets share no (head, attractor) pair.
#
# Our models learn English agreement from a corpus generated here: prompt-like subjects
# (training pairs only, attractors of either number, or none) followed by the verb, a
# complement, and up to two more clauses with their own verbs, all in one tense:

# %%
train_pairs, test_pairs = ac.split_pairs(seed)
train_prompts = ac.make_prompts(n_prompts // 2, train_pairs, seed=seed)
test_prompts = ac.make_prompts(n_prompts // 2, test_pairs, seed=seed + 1)
for s in ac.make_corpus(4, train_pairs, seed=seed):
    print("corpus:", s)
for p in test_prompts[:4]:
    print(f"test prompt: {p.text!r} -> {p.correct_verb}")

# %% [markdown]
# ## The models
#
# **Tokenizer.** We keep the real GPT-2 BPE tokenizer (it ships offline, see
# `ace_utils.models.hub.load_gpt2_tokenizer`): our models and GPT-2 then read the same token
# ids, " is"/" are"/" was"/" were" are the same four logits, and every step below, from
# prompt building to generation, is one code path for both. The price of GPT-2's 50257
# tokens would be a softmax that dwarfs our small models, so we train with a *compact*
# softmax over the ~110 ids the corpus uses plus one "any other token" class (its logit
# raised by $\log 50147$), then expand the model into an exact 50257-token
# `GPT2LMHeadModel` in which every unused id shares the "other" embedding row: its full
# softmax equals the compact one (a unit test checks it). The expanded model is saved
# with the tokenizer and loaded with `load_pretrained(folder)`, exactly as a hub
# checkpoint would be. A word-level tokenizer would be as cheap, but would split the code
# path in two.
#
# **Training.** GPT-2 architecture (pre-LN, GELU, tied embeddings, learned positions),
# 4 heads, MLP 4x width, no dropout; AdamW (lr $2\cdot10^{-3}$, warm-up and cosine decay,
# weight decay 0.01), batches of 64 sentences, one thread per model and two models at a
# time in worker processes, the largest first. Trained models are cached on disk keyed by
# their full configuration.

# %%
if model_source == "trained":
    sources = [("trained", f"{L}L-{d}d",
                ag.AgreementRun(L, d, steps=train_steps, data_seed=seed, seed=seed + 100 * i))
               for i, (L, d) in enumerate(zip(n_layers, d_models))]
else:
    sources = [("hub", name, None) for name in P["hub_models"]]
runs = [run for _, _, run in sources if run is not None]
t0 = time.perf_counter()
train_cpu = ag.train_models(runs, workers=2, device=device)  # the uncached ones
train_wall = time.perf_counter() - t0
if train_cpu:
    print(f"training: {train_wall:.0f} s wall (two worker processes); CPU s per model: "
          + ", ".join(f"{r.n_layers}L-{r.d_model}d {c:.0f}" for r, c in train_cpu.items()))
else:
    print("models cached")
models = {}
for src, name, run in sources:
    t0, c0 = time.perf_counter(), time.process_time()
    bridge, tok, tm = ag.load_agreement_model(src, name=name, run=run, device=device)
    models[name] = dict(model=bridge, tok=tok, tm=tm, L=bridge.cfg.n_layers, D=bridge.cfg.d_model,
                        load_s=time.perf_counter() - t0, load_cpu_s=time.process_time() - c0)
    extra = f", final loss {np.mean(tm.losses[-50:]):.3f} nats/token" if tm is not None else ""
    print(f"{name}: {bridge.cfg.n_layers} layers, d_model {bridge.cfg.d_model}; load "
          f"{models[name]['load_s']:.1f} s wall, {models[name]['load_cpu_s']:.1f} s CPU{extra}")
names = list(models)

# %% [markdown]
# ## Behaviour: the number margin separates plural from singular heads
#
# The margin $m = z_\text{are} + z_\text{were} - z_\text{is} - z_\text{was}$ at the last
# prompt token ({ref}`sources-method`) should be larger for plural heads, whatever the
# attractor. We score it by the ROC-AUC against the true label on the held-out test
# prompts (chance 0.5).

# %%
for name, M in models.items():
    M["v"] = ag.verb_token_ids(M["tok"])
    M["train"] = ag.prompt_batch(M["tok"], train_prompts)
    M["test"] = ag.prompt_batch(M["tok"], test_prompts)
    M["margin"] = ag.margins(M["model"], M["test"], M["v"])
    M["auc"] = ag.roc_auc(M["margin"], M["test"].labels)
    print(f"{name}: test AUC {M['auc']:.4f}")

# %% tags=["hide-input"]
claims.at_least("behaviour_auc", min(M["auc"] for M in models.values()), 0.95,
                "behaviour: margin AUC >= {bound} on held-out prompts with attractors (lowest model)",
                paper="GPT-2 gets agreement right [A]; its AUCs not retrieved")
claims.ledger()

# %% [markdown]
# ## ACE at every layer, and the layer sweep
#
# At each residual-stream site $h_\ell$, $\ell = 0..L$ (the input of block $\ell$, and
# the output of the last block before the final LayerNorm), at the last prompt token of
# the ACE prompts: $W_c$ is the activation covariance, $W_o$ the mean outer product of
# the margin's gradient $\partial m / \partial h_\ell$ taken through all later layers
# (one backward pass per batch gives every layer's gradient), and the core is the top
# balanced direction $q_\ell$ ({ref}`method-gramians`, {ref}`method-balanced`; $r=1$ as in
# the paper). On the test prompts we then keep only the core, remove it, or reflect it,
# centred on the ACE prompts' mean and at the last token only
# ({ref}`method-interventions`); the control reflects a random direction. The layer
# reported for each model is the one whose flip AUC is lowest, as in the paper, measured on
# the ACE prompts: the claims below are then tested on held-out prompts at a layer chosen
# without them (chosen on the test prompts, the flip claim would check the rule that picked
# the layer). In our well-trained models the flip AUC reaches exactly 0 at several layers;
# the paper's rule read literally (`np.argmin`) then takes the first of them. We break the
# tie instead by the standardised separation of the flipped margins (the difference of the
# class means over the pooled standard deviation: the AUC's continuous counterpart, which
# does not saturate), i.e. the layer where the inversion is strongest. Both choices, and
# the test prompts' own choice, are printed.

# %%
for name, M in models.items():
    M["cores"] = ag.ace_all_layers(M["model"], M["train"], M["v"])
    M["sweep"] = ag.layer_sweep(M["model"], M["cores"], M["test"], M["v"], seed=seed)
    # the choice, on the ACE prompts
    chosen = ag.layer_sweep(M["model"], M["cores"], M["train"], M["v"], seed=seed)
    sw, l = M["sweep"], chosen["layer"]
    M["layer"] = l
    print(f"{name}: ACE at {M['L'] + 1} layers in {M['cores'].seconds:.1f} s; chosen layer "
          f"{l}/{M['L']} (on the ACE prompts; first of the ties {chosen['layer_first_min']}; "
          f"on the test prompts {sw['layer']}): held-out base {sw['base']:.3f}, "
          f"core only {sw['keep'][l]:.3f}, core removed {sw['remove'][l]:.3f}, "
          f"core flipped {sw['flip'][l]:.4f}, random direction flipped {sw['random_flip'][l]:.3f}")

# %% mystnb={"figure": {"caption": "Layer sweep (the paper's panel A): ROC-AUC of the number margin on held-out prompts against normalised depth, with the 1-D ACE core of each layer kept alone, removed or reflected at the last prompt token, and a random direction reflected (control). Markers per model; the core-only and random-control curves lie on the base line near AUC 1 and hide each other. Open circles mark each model's chosen layer (lowest flip AUC, ties broken by the flipped margins' separation).", "name": "fig-agreement-sweep"}}
fig, ax = plt.subplots(figsize=(7, 3.8))
styles = {"keep": ("C0", "core only"), "remove": ("C1", "core removed"),
          "flip": ("C3", "core flipped"), "random_flip": ("0.5", "random dir. flipped")}
markers = ["o", "s", "^", "D", "v", "P"]
for key, (c, label) in styles.items():
    for i, (name, M) in enumerate(models.items()):
        ax.plot(M["sweep"]["depth"], M["sweep"][key], marker=markers[i % 6], color=c, lw=0.8,
                ms=4, alpha=0.8, label=label if i == 0 else None)
for i, (name, M) in enumerate(models.items()):
    l = M["layer"]
    ax.scatter(M["sweep"]["depth"][l], M["sweep"]["flip"][l], s=120, facecolors="none",
               edgecolors="k", lw=1)
    ax.plot([], [], marker=markers[i % 6], color="k", ls="", label=name)
base_mean = np.mean([M["sweep"]["base"] for M in models.values()])
ax.axhline(base_mean, color="k", ls="--", lw=0.8, label="base (mean)")
ax.axhline(0.5, color="0.7", ls=":", lw=0.8)
ax.set_xlabel("normalised depth ℓ / L (ℓ = 0: embeddings; ℓ = L: last block output)")
ax.set_ylabel("margin ROC-AUC (test prompts)")
ax.set_ylim(-0.03, 1.03)
ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
fig.tight_layout()
plt.show()

# %% [markdown]
# The sweep shows where the axis lives *at the last token*. At $\ell = 0$ the last token
# is just its embedding (an attractor noun, or a padding word): it carries no head
# number, and editing it changes nothing. From $\ell = 1$ on, attention has copied the
# head's number to the last token along one direction, and reflecting that direction
# inverts the prediction in every model. Removal is the fragile intervention: it
# needs *no other* route for number to reach the output. In the deepest model, removing
# the core at the last token at the first layers (where the flip already works) leaves
# the AUC near 1: number is still available elsewhere (at the head noun's position) and
# later layers read it again; only from the middle layers on does removal bring the AUC
# down toward chance.

# %%
sel = {name: (M["sweep"], M["layer"]) for name, M in models.items()}
gap_keep = max(abs(sw["keep"][l] - sw["base"]) for sw, l in sel.values())
worst_remove = max(sw["remove"][l] for sw, l in sel.values())
worst_flip = max(sw["flip"][l] for sw, l in sel.values())
gap_random = max(abs(sw["random_flip"][l] - sw["base"]) for sw, l in sel.values())
emb_flip = min(M["sweep"]["flip"][0] for M in models.values())
deep = models[names[-1]]["sweep"]
redundant = [l for l in range(len(deep["flip"]))
             if deep["flip"][l] <= 0.1 and deep["remove"][l] >= 0.9]

# %% tags=["hide-input"]
claims.at_most("keep_gap", gap_keep, 0.03, "sufficient: core-only AUC within {bound} of base at the chosen layer (largest gap)",
               paper="not retrieved")
claims.at_most("remove_auc", worst_remove, 0.6,
               "necessary: core-removed AUC <= {bound} at the chosen layer (highest; chance is 0.5)",
               paper="chance after removal [A]; values not retrieved")
claims.at_most("flip_auc", worst_flip, 0.1, "control: core-flipped AUC <= {bound} at the chosen layer (highest)",
               paper="number inverted [A]; values not retrieved")
claims.at_most("random_flip_change", gap_random, 0.02,
               "random 1-D direction flipped changes AUC by <= {bound} (largest change)", paper="not reported")
claims.at_least("embedding_flip_nothing", emb_flip, 0.9,
                "last-token flip at ℓ = 0 changes nothing: flip AUC >= {bound} (lowest model)", paper="not reported")
claims.holds("deep_model_redundant_layers", len(redundant) > 0, redundant, "some early layer",
             "deepest model: layers where the flip works (AUC <= 0.1) but removal does not (AUC >= 0.9)",
             asserted=False, paper="not in the paper (beyond it)")
claims.ledger()

# %% [markdown]
# ## The knob: the margin is an affine function of the core coordinate
#
# At the chosen layer, the core coordinate $z = (h - \mu)^\top q$ of each test prompt
# against its margin, both z-scored (the paper's panel B).

# %%
for name, M in models.items():
    l = M["layer"]
    res = M["cores"].results[l]
    M["z"] = ag.core_coordinate(M["model"], M["test"], M["cores"].hooks[l], M["cores"].q(l),
                                res.mean)
    M["knob"] = ag.knob_fit(M["z"], M["margin"])
    print(f"{name}: margin ~ core coordinate, R² = {M['knob']['r2']:.3f}, "
          f"slope {M['knob']['slope']:+.3f}")

# %% mystnb={"figure": {"caption": "The knob (panel B): z-scored margin against the z-scored 1-D core coordinate at each model's chosen layer, on the held-out prompts; singular heads blue, plural orange; lines are the affine fits, R\u00b2 in the legend.", "name": "fig-agreement-knob"}}
fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models), 3), sharey=True, squeeze=False)
for ax, (name, M) in zip(axes[0], models.items()):
    zs = (M["z"] - M["z"].mean()) / M["z"].std()
    ms = (M["margin"] - M["margin"].mean()) / M["margin"].std()
    lab = M["test"].labels
    ax.scatter(zs[lab == 0], ms[lab == 0], s=5, color="C0", alpha=0.5, label="singular head")
    ax.scatter(zs[lab == 1], ms[lab == 1], s=5, color="C1", alpha=0.5, label="plural head")
    xx = np.linspace(zs.min(), zs.max(), 2)
    ax.plot(xx, M["knob"]["slope"] * xx + M["knob"]["intercept"], "k-", lw=1,
            label=f"fit, R² = {M['knob']['r2']:.2f}")
    ax.set_title(f"{name} (layer {M['layer']})", fontsize=9)
    ax.set_xlabel("core coordinate (z-scored)")
    ax.legend(fontsize=7)
axes[0][0].set_ylabel("margin (z-scored)")
fig.tight_layout()
plt.show()

# %%
r2_min = min(M["knob"]["r2"] for M in models.values())

# %% tags=["hide-input"]
claims.at_least("knob_r2", r2_min, 0.8, "knob: affine fit of the margin on the core coordinate, R² >= {bound} (lowest model)",
                paper="a linear knob [A]; R² not retrieved")
claims.ledger()

# %% [markdown]
# ## Agreement scores: removing and flipping the core
#
# The paper's panel C scores each prompt by
# $\log P(\text{correct set}) - \log \max_v P(v)$ over the four verbs (correct set
# {is, was} for singular heads, {are, were} for plural ones): at least 0 when a correct
# verb is the most likely of the four. We compare base, core removed and core flipped on
# all test prompts with paired Wilcoxon signed-rank tests, and combine the models'
# p-values with Fisher's method (the paper scored its six demo prompts; with 600 prompts
# the tests have more power).

# %%
for name, M in models.items():
    l, res = M["layer"], M["cores"].results[M["layer"]]
    hook, q = M["cores"].hooks[l], M["cores"].q(l)
    M["scores"] = {}
    for mode in ("base", "remove", "flip"):
        edit = None if mode == "base" else ag.edit_hooks_for(hook, q, res.mean, mode)
        logits = ag.last_logits(M["model"], M["test"], edit)
        M["scores"][mode] = ag.agreement_score(logits, M["v"], M["test"].labels.astype(bool))
    M["wilcoxon"] = {mode: stats.wilcoxon(M["scores"]["base"], M["scores"][mode]).pvalue
                     for mode in ("remove", "flip")}
    med = {mode: np.median(sc) for mode, sc in M["scores"].items()}
    print(f"{name}: median score base {med['base']:+.2f}, removed {med['remove']:+.2f}, "
          f"flipped {med['flip']:+.2f}; Wilcoxon p (removed) {M['wilcoxon']['remove']:.1e}, "
          f"(flipped) {M['wilcoxon']['flip']:.1e}")
fisher = {mode: stats.combine_pvalues([M["wilcoxon"][mode] for M in models.values()],
                                      method="fisher").pvalue
          for mode in ("remove", "flip")}
print("Fisher-combined p:", {k: f"{v:.1e}" for k, v in fisher.items()})

# %% mystnb={"figure": {"caption": "Agreement score log P(correct set) \u2212 log max P(verb) on the held-out prompts (panel C), for the base model, the core removed and the core flipped at the chosen layer; boxes per model. Above 0: a correct verb is the most likely of the four.", "name": "fig-agreement-scores"}}
fig, ax = plt.subplots(figsize=(7, 3.2))
modes = [("base", "0.6"), ("remove", "C1"), ("flip", "C3")]
for i, (name, M) in enumerate(models.items()):
    for j, (mode, c) in enumerate(modes):
        bp = ax.boxplot(M["scores"][mode], positions=[i * 4 + j], widths=0.7, patch_artist=True,
                        showfliers=False)
        bp["boxes"][0].set_facecolor(c)
ax.set_xticks([i * 4 + 1 for i in range(len(models))], names)
ax.axhline(0, color="k", lw=0.6)
ax.set_ylabel("agreement score (nats)")
legend = {"base": "base model", "remove": "core removed", "flip": "core flipped"}
for mode, c in modes:
    ax.bar([0], [0], color=c, label=legend[mode])
ax.legend(fontsize=8, loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# The paper's six flip-demo prompts ({ref}`sources-agreement`), which our models have not seen
# as such (two use held-out-style pairs, two the odd "There" frame): the margin, clean and
# with the core flipped, per model.

# %%
demo = [ac.Prompt(t, bool(y), False, "demo", 0, 0, "") for t, y in ac.FLIP_DEMO_PROMPTS]
demo_rows = []
for name, M in models.items():
    l, res = M["layer"], M["cores"].results[M["layer"]]
    b = ag.prompt_batch(M["tok"], demo)
    clean = ag.margins(M["model"], b, M["v"])
    flip = ag.edit_hooks_for(M["cores"].hooks[l], M["cores"].q(l), res.mean, "flip")
    flipped = ag.margins(M["model"], b, M["v"], flip)
    M["demo_inverted"] = float(np.mean(np.sign(clean) != np.sign(flipped)))
    y = np.array([y for _, y in ac.FLIP_DEMO_PROMPTS])
    M["demo_toward_opposite"] = float(np.mean(np.where(y == 1, flipped < clean, flipped > clean)))
    demo_rows.append((name, clean, flipped))
Markdown("Margin $m$ (clean → flipped); positive = plural verb preferred.\n\n| prompt | head | "
         + " | ".join(n for n, _, _ in demo_rows) + " |\n|---|---|" + "---|" * len(demo_rows) + "\n"
         + "\n".join(f"| {t} | {'plural' if y else 'singular'} | "
                     + " | ".join(f"{c[i]:+.1f} → {f[i]:+.1f}" for _, c, f in demo_rows) + " |"
                     for i, (t, y) in enumerate(ac.FLIP_DEMO_PROMPTS)))

# %% [markdown]
# The AUC only ranks prompts; whether the single most likely verb is right also depends
# on where the margin crosses 0: a model can rank every prompt right and still lean to one
# number. The shares of prompts whose most likely verb is right are therefore reported, not
# asserted (their numbers follow the claims below).
#
# The flip pushes the demo margins toward the other number; where a model was unsure
# to begin with (a clean margin near 0, or of the wrong sign, which happens for the
# smallest model), the reflection about the mean can leave the sign where it was, or even
# push the margin the other way. Six prompts are a demonstration, not a test: the share is
# reported, not asserted; the 600 held-out prompts above are the test.
#
# Note what this score can and cannot see: it is 0 both for a confident correct answer
# and for a 50/50 split between "is" and "are" (the correct verb is then still tied for
# the most likely), so removing the core, which drives the margin toward 0, moves it only
# a little (the paired tests still detect the shift); the flip, which makes the wrong
# verb the most likely, drives it far below 0.

# %%
base_ok = min(float(np.mean(M["scores"]["base"] >= 0)) for M in models.values())
flip_ok = max(float(np.mean(M["scores"]["flip"] >= 0)) for M in models.values())

# %% tags=["hide-input"]
claims.at_least("base_correct_share", base_ok, 0.9,
                "base: a correct verb is the most likely for >= 90% of test prompts (lowest model)", asserted=False,
                paper="not retrieved")
claims.at_most("flip_correct_share", flip_ok, 0.1,
               "flipped: a correct verb is the most likely for <= 10% of test prompts (highest model)", asserted=False,
               paper="not retrieved")
claims.below("wilcoxon_p", max(fisher.values()), 1e-6,
             "paired Wilcoxon, Fisher-combined: removal and flip change the scores (largest p < {bound})", kind="sanity",
             paper="the paper scored six prompts; with 600 prompts any shift gives a tiny p: a check that the "
                   "interventions act, not a result")
claims.equal("demo_toward_opposite", min(M["demo_toward_opposite"] for M in models.values()), 1.0,
             "the paper's six demo prompts: the flip moves every margin toward the opposite number (lowest share)",
             asserted=False, paper="the six demos invert [A]")
claims.record(demo_sign_changed={n: M["demo_inverted"] for n, M in models.items()})
display(claims.ledger())
base_sup = ledger_rules.seed_support("05_agreement_axis").get("base_correct_share")
Markdown(f"In this run a correct verb is the most likely one for {per_model((np.mean(M['scores']['base'] >= 0) for M in models.values()), '{:.0%}')} "
         f"of the test prompts ({' / '.join(names)}), while the margin AUCs are "
         f"{per_model((M['auc'] for M in models.values()), '{:.3f}')}"
         + (f"; over the ten seeds of the committed table the lowest model's share reaches 90 % on {base_sup.held} of "
            f"{base_sup.runs} seeds ({span(base_sup.values, '{:.0%}')})." if base_sup else "."))

# %% [markdown]
# ## Flipping the axis throughout generation
#
# We sample continuations of held-out prompts (temperature 1, top-k 50, seeded; the same
# random numbers for the clean and the flipped run of a prompt) and, in the flipped run,
# reflect the core at the chosen layer at every step, at the newest token. With
# `gen_strength="adaptive"` (the paper's recipe, {ref}`sources-agreement`) the strength
# $s \in [0, 50]$ of $h \leftarrow h + s\,[(I-2P)(h-\mu) - (h-\mu)]$ is set at each step by a
# finite-difference probe so that the margin $\log\sum e^{z_\text{are}, z_\text{were}} -
# \log\sum e^{z_\text{is}, z_\text{was}}$ lands at $\mp 1$, the opposite sign of its clean
# value. Each generated finite verb (is/are/was/were) is then parsed with its own
# subject, using the corpus grammar (`parse_verbs`), and counted as wrong when its number
# is not its subject's. The prompt's own verb (the first generated verb, whose subject
# is the prompt's head) is counted separately.

# %%
gen_prompts = test_prompts[:n_generations]
strength = "adaptive" if gen_strength == "adaptive" else 1.0
for name, M in models.items():
    l, res = M["layer"], M["cores"].results[M["layer"]]
    t0 = time.perf_counter()
    kw = dict(n_new=gen_tokens, seed=seed, temperature=1.0, top_k=50)
    texts = [p.text for p in gen_prompts]
    M["gen_clean"] = ag.generate(M["model"], M["tok"], texts, **kw)
    M["gen_flip"] = ag.generate(M["model"], M["tok"], texts, hook=M["cores"].hooks[l],
                                q=M["cores"].q(l), mean=res.mean, strength=strength, **kw)
    M["inv_clean"] = ag.verb_inversion(gen_prompts, M["gen_clean"].full)
    M["inv_flip"] = ag.verb_inversion(gen_prompts, M["gen_flip"].full)
    s_used = np.append(M["gen_flip"].strengths[M["gen_flip"].strengths > 0], 0.0)
    clean, flip = M["inv_clean"], M["inv_flip"]
    print(f"{name} ({time.perf_counter() - t0:.1f} s): wrong-number verbs clean "
          f"{clean['all_wrong']:.2f} of {clean['n_verbs']}, flipped {flip['all_wrong']:.2f} of "
          f"{flip['n_verbs']}; prompt's own verb inverted: clean {clean['main_wrong']:.2f}, "
          f"flipped {flip['main_wrong']:.2f} ({flip['main_found']}/{len(gen_prompts)} found); "
          f"strength median {np.median(s_used):.2f}, max {s_used.max():.2f}")

# %% [markdown]
# A few clean / flipped pairs from the deepest model (same prompt, same random numbers):

# %% tags=["hide-input"]
M = models[names[-1]]
rows = [f"| {p.text} | {c.strip()} | {f.strip()} |"
        for p, c, f in zip(gen_prompts[:6], M["gen_clean"].texts[:6], M["gen_flip"].texts[:6])]
Markdown("| prompt | clean continuation | flipped continuation |\n|---|---|---|\n" + "\n".join(rows))

# %% [markdown]
# With hub models, the paper's own open-ended prompts ({ref}`sources-agreement`; 50 tokens) are
# generated too. Our trained models only know the corpus vocabulary, so this cell shows
# nothing for them.

# %% tags=["hide-input"]
PAPER_GEN_PROMPTS = ["As a new field of research, artificial intelligence", "We hold these truths to be self-evident:",
                     "Scientific research"]
if model_source == "hub":
    out = []
    for name, M in models.items():
        l, res = M["layer"], M["cores"].results[M["layer"]]
        kw = dict(n_new=50, seed=seed, temperature=1.0, top_k=50, stop_at_eos=False)
        c = ag.generate(M["model"], M["tok"], PAPER_GEN_PROMPTS, **kw)
        f = ag.generate(M["model"], M["tok"], PAPER_GEN_PROMPTS, hook=M["cores"].hooks[l], q=M["cores"].q(l),
                        mean=res.mean, strength=strength, **kw)
        def cell(t):
            return " ".join(t.split()).replace("|", "/")

        out += [f"| {name} | {p} | {cell(a)} | {cell(b)} |" for p, a, b in zip(PAPER_GEN_PROMPTS, c.texts, f.texts)]
    display(Markdown("| model | prompt | clean | flipped |\n|---|---|---|---|\n" + "\n".join(out)))

# %% [markdown]
# Do strong flips just break the text? We count the continuations that end a sentence
# and contain at least one parsable verb, clean and flipped.

# %%
def well_formed(texts):
    return float(np.mean([t.strip().endswith(".") and len(ac.parse_verbs(t)) > 0 for t in texts]))


for name, M in models.items():
    M["well_formed"] = (well_formed(M["gen_clean"].texts), well_formed(M["gen_flip"].texts))
    print(f"{name}: well-formed clean {M['well_formed'][0]:.2f}, flipped {M['well_formed'][1]:.2f}")

# %%
clean_wrong = max(M["inv_clean"]["all_wrong"] for M in models.values())
flip_wrong = min(M["inv_flip"]["all_wrong"] for M in models.values())
main_wrong = min(M["inv_flip"]["main_wrong"] for M in models.values())

# %% tags=["hide-input"]
claims.at_most("clean_wrong", clean_wrong, 0.05, "clean generation: wrong-number verbs <= {bound} (highest model)",
               paper="near 0 [A]")
claims.at_least("flip_wrong", flip_wrong, 0.8,
                "flipped generation: verbs of opposite number to their subject >= {bound} (lowest model)",
                paper="'inverts grammatical number throughout generation' [A]")
claims.at_least("flip_main_verb", main_wrong, 0.9,
                "flipped generation: the prompt subject's verb inverted >= {bound} (lowest model)",
                paper="'inverts grammatical number throughout generation' [A]")
claims.at_least("flip_well_formed", min(M["well_formed"][1] for M in models.values()), 0.8,
                "flipped text stays well formed: >= {bound} of continuations (lowest model)", paper="not retrieved")
display(claims.ledger())
gen_sup = {cid: ledger_rules.seed_support("05_agreement_axis").get(cid) for cid in ("clean_wrong", "flip_main_verb")}
strengths = np.concatenate([M["gen_flip"].strengths[M["gen_flip"].strengths > 0] for M in models.values()])
Markdown(
    f"In this run the clean text has {per_model((M['inv_clean']['all_wrong'] for M in models.values()), '{:.0%}')} "
    "wrong-number verbs and the flip inverts "
    f"{per_model((M['inv_flip']['all_wrong'] for M in models.values()), '{:.0%}')} of the generated verbs and "
    f"{per_model((M['inv_flip']['main_wrong'] for M in models.values()), '{:.0%}')} of the prompts' own verbs "
    f"({' / '.join(names)}), with {per_model((M['well_formed'][1] for M in models.values()), '{:.0%}')} of the "
    "flipped continuations well formed; the adaptive strength has median "
    f"{np.median(strengths) if strengths.size else float('nan'):.2f} (1 is the exact reflection) and reaches the "
    f"cap of 50 at {int((strengths >= 50).sum())} of {strengths.size} steps. **Seed dependence, found and not "
    "hidden:** on some seeds one model, whose margin AUC is still near 1, leans to one number (the shares above); "
    "its clean generations then carry wrong-number verbs and the flip inverts fewer of the prompts' own verbs"
    + (f" (over the ten seeds of the committed table: clean wrong-number verbs at most 5 % on "
       f"{gen_sup['clean_wrong'].held} of {gen_sup['clean_wrong'].runs} seeds, the prompts' own verbs inverted for "
       f"90 % or more on {gen_sup['flip_main_verb'].held})" if all(gen_sup.values()) else "")
    + ". The generation claims are therefore reported, not asserted.")

# %% [markdown]
# ## Across scales: the same axis?
#
# The paper compares the 1-D core coordinates of models of different size on the same
# prompts (its "Table 6"; {ref}`sources-agreement`): sign-aligned Pearson and Spearman
# correlations. Because the coordinate splits into a singular and a plural cluster, a
# high Pearson is nearly automatic; the stricter test is the correlation *within* each
# number class, and what the within-class variation tracks.

# %%
if len(names) < 2:
    raise ValueError("the cross-scale comparison needs at least two models")
rows = []
for i in range(len(names)):
    for j in range(i + 1, len(names)):
        za, zb = models[names[i]]["z"], models[names[j]]["z"]
        sign = np.sign(stats.pearsonr(za, zb)[0])
        zb = sign * zb
        lab = models[names[i]]["test"].labels
        within = [stats.pearsonr(za[lab == c], zb[lab == c])[0] for c in (0, 1)]
        pearson, spearman = stats.pearsonr(za, zb)[0], stats.spearmanr(za, zb)[0]
        rows.append((names[i], names[j], pearson, spearman, *within))
align = np.array([r[2:] for r in rows])
Markdown(markdown_table(["model A", "model B", "Pearson", "Spearman", "within singular",
                         "within plural"],
                        [[a, b, f"{p:.3f}", f"{s:.3f}", f"{w0:.3f}", f"{w1:.3f}"]
                         for a, b, p, s, w0, w1 in rows]))

# %%
factors = {"tense": [p.past for p in test_prompts], "style": [p.style for p in test_prompts],
           "head noun": [p.i_head for p in test_prompts],
           "attractor": [p.i_attr for p in test_prompts],
           "connector": [p.connector for p in test_prompts]}
share_rows = []
for name, M in models.items():
    lab = M["test"].labels
    for c, cname in ((0, "singular"), (1, "plural")):
        idx = lab == c
        levels = {k: np.asarray(v, dtype=object)[idx].astype(str) for k, v in factors.items()}
        share_rows.append((name, cname, ag.factor_share(M["z"][idx], levels)))
Markdown("Share of the within-class variance of the core coordinate explained by each factor "
         "alone (η²):\n\n"
         + markdown_table(["model", "class", *factors],
                          [[n, c, *(f"{sh[k]:.2f}" for k in factors)] for n, c, sh in share_rows]))

# %% tags=["hide-input"]
claims.at_least("cross_scale_pearson", align[:, 0].min(), 0.9,
                "cross-scale: sign-aligned Pearson >= {bound} for every pair (lowest)",
                paper="'aligns across scales' [A]; values not retrieved")
claims.holds("within_class_below_overall", bool(np.all(align[:, 2:].max(1) < align[:, 0])), align[:, 2:].tolist(),
             "< overall Pearson", "within a number class the models agree much less: within-class Pearson < overall "
             "(every pair)", kind="sanity",
             paper="nearly automatic: the overall Pearson includes the split into two number clusters")
claims.record(within_class_pearson=align[:, 2:].tolist(), spearman=align[:, 1].tolist())
display(claims.ledger())
style_max = max(sh["style"] for _, _, sh in share_rows)
pearson_sup = ledger_rules.seed_support("05_agreement_axis").get("cross_scale_pearson")
Markdown(
    "**How much do the models share beyond the number split?** The overall Pearson correlations "
    f"({span(align[:, 0])} in this run) are mostly the two clusters: within one number class the models' coordinates "
    f"correlate far less ({span(align[:, 2:], '{:.2f}')}, varying by pair and class), and the Spearman correlation "
    f"({span(align[:, 1])}), which weighs the within-cluster order more, is lower than the Pearson. What variation "
    "there is within a class follows the prompt's *style* (the front/back padding phrases, the \"There\" and "
    f"relative-clause frames) by up to {style_max:.2f} of the within-class variance, and the other factors by the "
    "amounts in the table above. So the models share the axis and, partly, how confidently each construction is "
    "read off it; they do not share a fine-grained per-prompt code. (Nine head nouns or attractors give η² ≈ 0.03 by "
    "chance on 300 prompts; five styles ≈ 0.01.) A model that leans to one number (the generation section) lowers "
    "its pairs' Pearson"
    + (f": over the ten seeds of the committed table the lowest pair reaches 0.9 on {pearson_sup.held} of "
       f"{pearson_sup.runs} seeds ({span(pearson_sup.values)}), so the claim is reported." if pearson_sup else "."))

# %% [markdown]
# The claims of this chapter, by kind:

# %% tags=["hide-input"]
claims.overview()

# %% [markdown]
# ## Our numbers beside the paper's
#
# Paper values as collected on the {ref}`sources page <sources-agreement>`, with their
# source tags ({ref}`sources-tags`); the paper's GPT-2 numbers were
# not retrieved, so only the qualitative claims can be compared.

# %% tags=["hide-input"]

mv = list(models.values())
rows = [
    ("models", ", ".join(names), "GPT-2 Small / Medium / Large [A]"),
    ("margin AUC, held-out prompts", span(M["auc"] for M in mv), "not retrieved"),
    ("core dimension", "1 (fixed, as in the paper)", "1 in all three GPT-2 sizes [A]"),
    ("chosen layer (ℓ / L)", ", ".join(f"{M['layer']}/{M['L']}" for M in mv), "'late layers' [TS]; indices not retrieved"),
    ("core-only AUC (chosen layer)", span(M["sweep"]["keep"][M["layer"]] for M in mv), "not retrieved"),
    ("core-removed AUC", span(M["sweep"]["remove"][M["layer"]] for M in mv), "not retrieved"),
    ("core-flipped AUC", span((M["sweep"]["flip"][M["layer"]] for M in mv), "{:.4f}"), "not retrieved (inversion [A])"),
    ("random direction flipped AUC", span(M["sweep"]["random_flip"][M["layer"]] for M in mv), "not reported"),
    ("knob R²", span(M["knob"]["r2"] for M in mv), "not retrieved"),
    ("Wilcoxon (Fisher) p, removed / flipped", f"{fisher['remove']:.1e} / {fisher['flip']:.1e}", "not retrieved"),
    ("generated verbs with wrong number, clean → flipped",
     f"{span((M['inv_clean']['all_wrong'] for M in mv), '{:.2f}')} → {span((M['inv_flip']['all_wrong'] for M in mv), '{:.2f}')}",
     "'inverts grammatical number throughout generation' [A]"),
    ("prompt's own verb inverted (flipped)", span((M["inv_flip"]["main_wrong"] for M in mv), "{:.2f}"), "not retrieved"),
    ("cross-scale Pearson / Spearman", f"{span(align[:, 0])} / {span(align[:, 1])}", "'aligns across scales' [A]; values not retrieved"),
    ("within-class Pearson", span(align[:, 2:].ravel()), "not reported"),
]
Markdown(markdown_table(["quantity", "ours", "paper"], rows))

# %% [markdown]
# **What differs and why.** Our default models are small GPT-2-architecture models
# trained here on a synthetic corpus, not GPT-2; the hub path runs the same code on
# GPT-2 Small/Medium/Large where a hub is reachable. On a 2-core CPU, GPT-2 Small would take
# about 20-25 minutes (timed on a randomly initialised GPT-2-Small-shaped model through the
# same code, one thread: ACE on 600 prompts ~75 s, one 600-prompt forward pass ~20 s, so
# the sweep's 53 passes dominate, generation ~3 min); Medium and Large belong on a GPU
# (`device="cuda"`). We read and edit the residual stream before the final LayerNorm at
# $\ell = L$ (the paper reads Hugging Face's `hidden_states[L]`, which is after it, but edits
# before it). Agreement scores are computed on all held-out prompts, not the six demo
# prompts. Generations are shorter (24 tokens, one or two sentences of the corpus
# grammar) and are parsed with that grammar, which is what makes the per-verb count
# possible; on GPT-2 the parser only finds verbs whose subject is one of our nouns.
#
# ## Summary
#
# - Three small GPT-2-architecture models (2, 4 and 6 layers), trained here on a synthetic
#   corpus, rank plural above singular heads on held-out prompts with attractors; asserted.
# - At each layer ACE finds one direction at the last token. From the first layer on,
#   reflecting it inverts the number the model predicts, keeping it alone keeps the margin's
#   AUC, and reflecting a random direction does nothing; at the embeddings it does nothing.
#   Removal is the fragile intervention: it works only where no other route for number
#   remains ({numref}`fig-agreement-sweep`).
# - At the chosen layer the core coordinate is a linear knob for the margin
#   ({numref}`fig-agreement-knob`). Paired tests on the agreement scores detect removal and
#   flip ({numref}`fig-agreement-scores`), a sanity check with 600 prompts rather than a result.
# - Flipping the axis at every step of generation turns the generated verbs' number around,
#   but the generation claims are reported, not asserted: on some seeds one model leans to one
#   number.
# - Across scales, the models' coordinates agree mostly through the split into two number
#   clusters; within a class they agree far less, and the cross-scale correlation claim is
#   reported, not asserted.
#
# ## Exercises
#
# 1. Reflect exactly instead of adaptively: `papermill notebooks/05_agreement_axis.ipynb out.ipynb
#    -p gen_strength reflection` ($s = 1$ at every step). How do the shares of inverted verbs and
#    of well-formed continuations change? Later layers can read number again from the head
#    noun's position: why might an exact reflection at the newest token then not be enough?
# 2. Train shallower models: `-y "n_layers: [1, 2]" -y "d_models: [64, 64]"` (papermill passes
#    lists with `-y`). The flip does nothing at the embeddings; is there a layer of the one-layer
#    model where both the flip and the removal work, and what does the answer say about where
#    the routes for number run? (Away from its defaults the chapter reports its claims instead
#    of asserting them.)
# 3. Train for less: `-p train_steps 150`. Does the axis appear before agreement is learnt
#    well? Compare the behaviour AUC, the knob's $R^2$ and {numref}`fig-agreement-sweep` with
#    the default run's.
# 4. Run GPT-2 Small where the Hugging Face hub is reachable: `export HF_HUB_OFFLINE=0`, then
#    `-p model_source hub -p hub_models gpt2` (about 20-25 minutes on a 2-core CPU, by the
#    estimate above). At what normalised depth is its chosen layer, compared with our models'
#    and with the paper's "late layers"?

# %% tags=["hide-input"]
claims.record(
    auc={n: M["auc"] for n, M in models.items()}, layer={n: M["layer"] for n, M in models.items()},
    sweep={n: {k: np.asarray(M["sweep"][k]).tolist() for k in ("keep", "remove", "flip", "random_flip")}
           for n, M in models.items()},
    knob_r2={n: M["knob"]["r2"] for n, M in models.items()}, fisher_p=fisher,
    gen={n: {"clean": M["inv_clean"], "flip": M["inv_flip"], "well_formed": M["well_formed"]} for n, M in models.items()},
    alignment=align.tolist(), load_seconds={n: M["load_s"] for n, M in models.items()},
    load_cpu_seconds={n: M["load_cpu_s"] for n, M in models.items()},
    seconds=time.perf_counter() - t_start, cpu_seconds=time.process_time() - cpu_start,
)
print(f"total {time.perf_counter() - t_start:.0f} s wall, {time.process_time() - cpu_start:.0f} s CPU")
claims.save()
