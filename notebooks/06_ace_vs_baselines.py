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
# # 06 · Simpler finders match ACE on each task, but no label-free one matches it on every task
#
# **What this chapter shows.** Is ACE needed, or would a simpler subspace finder do? On the chapters'
# own models (for the Markov chains and modular addition, the paper's post-LN models that
# chapters 01 and 03 train and cache; `architecture="pre-ln"` runs the comparison on the
# TransformerLens-native pre-LN versions instead), at the dimension of each ACE core, we compare ACE with PCA of the activations
# (reachability alone), the top output-sensitivity directions (observability alone), the class
# means, linear probes and random subspaces, using the chapters' keep / remove / flip
# interventions. The answer is mixed, and we report it as measured. On every task one
# label-free shortcut does about as well as ACE: PCA on the Markov chains and on agreement,
# the readout's own directions on modular addition, where on the paper's models nearly every
# finder lands within a few directions of ACE's small core. But each shortcut fails on
# another task, and ACE itself is held to the same tests (on modular addition at its energy
# dimension, which it can fail, not at a dimension read from its own removal scan); how
# often each finder passes everywhere is counted over ten seeds. The class means, which need
# the labels, are the reference. The least-squares probes decode the labels perfectly, yet
# find directions the model does not use. Then we turn to ACE's own failure mode. A loud
# direction that the output ignores tilts the paper's basis by about loudness/√n. Two
# alternatives built from the same Gramians avoid the tilt on a planted system, but each
# fails in another way. On the real tasks the tilt is small: two halves of the data give
# nearly the same core (Markov, agreement). On modular addition a larger indeterminacy
# swamps it: 1405 test pairs pin the core down only to tens of degrees, as far as the
# finders are from each other. What the architecture does to the
# core itself, which the paper does not ask, is the next chapter's question: on modular
# addition no single design choice of the pre-LN models inflates it, the four together do.
# **Runtime:** {glue:md}`runtime` (the timing records of the {doc}`status page <../book/status>`),
# in the book's order, where chapters 01, 03 and 05 have trained and cached every model it uses;
# alone with no models cached it first trains them all, about as long as those three chapters.

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
seed = 0  # the chapters' seed: chapters 01, 03 and 05 at their defaults train and cache the models reused here
n_random = 5  # Haar-random subspaces per model (the control); the tables show their mean
tilt_max_n = 64000  # largest sample size of the tilt study (sizes 1000, 4000, ... up to it)
tilt_seeds = 5  # planted systems drawn per grid point of the tilt study
architecture = "paper"  # the Markov and mod-add models: 'paper' (post-LN, chapters 01 and 03's default) or 'pre-ln' (TransformerLens-native)
device = "cpu"  # 'cpu' (where the seed tables were made), 'cuda' (models, activations, ACE and the baselines there), or 'auto'

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ace_utils.book import claims as ledger_rules
from ace_utils.book.baseline_tables import bar_plot, column_of, dimension_table, dimensions_text, mark, task_table
from ace_utils.book.chapter import open_chapter
from ace_utils.book.params import Choice, Device, Int
from ace_utils.book.tables import dict_table, per_model, span
from ace_utils.method import baselines as bl
from ace_utils.method.ace import ace, observability_from_gradients, observability_from_readout
from ace_utils.method.synthetic import planted_core_system
from ace_utils.models import readout_bias, readout_matrix
from ace_utils.tasks import agreement as ag
from ace_utils.tasks import agreement_corpus as ac
from ace_utils.tasks import markov as mk
from ace_utils.tasks import modular as mod

P, claims = open_chapter(
    "06_ace_vs_baselines",
    {
        "seed": Int(0, 10**6),
        "n_random": Int(1, 50),
        "tilt_max_n": Int(1000, 1_024_000),
        "tilt_seeds": Int(1, 50),
        "architecture": Choice(*mk.ARCHITECTURES),
        "device": Device(),
    },
    globals(),
    # claims asserted at these settings (seed 0 and the chapters' default models), checked and reported elsewhere
    asserted_at={"seed": 0, "n_random": lambda n: n >= 5, "tilt_max_n": 64000, "tilt_seeds": lambda n: n >= 5,
                 "architecture": "paper"},
    threads=1,  # small models and small matrices: one thread, immune to a busy second core
)
device = P["device"]  # 'auto' resolved: the models, their activations and every subspace finder run there
t_start = time.perf_counter()
RIDGES = (1e-4, 1.0, 100.0)  # probe ridges, in units of the mean eigenvalue of H_c^T H_c (bl.probe_subspace)


# %% [markdown]
# ## The contenders
#
# At the layer and position each chapter analyses, and at the dimension $k$ of its ACE core,
# every finder returns a $k$-dimensional subspace (`ace_utils.method.baselines`):
#
# | finder | what it uses | subspace |
# |---|---|---|
# | **ACE** | both Gramians | the paper's $\operatorname{orth}(L_c U_{:,1:k})$ ({ref}`method-balanced`) |
# | **PCA** | reachability $W_c$ alone | top-$k$ eigenvectors of the activation covariance |
# | **sensitivity** | observability $W_o$ alone | top-$k$ eigenvectors of $W_o$ ($W_U^\top W_U$, or the mean $gg^\top$ of margin gradients) |
# | **class means** | labels | the difference of the two class means (agreement), the top-$k$ directions of the class means (many classes) |
# | **probe** | labels | the weight directions of a ridge least-squares probe for the labels, at three ridge strengths |
# | **random** | nothing | Haar-random subspaces (the control; mean of `n_random`) |
# | ACE, observable side | both Gramians | $\operatorname{orth}(L_o V_{:,1:k})$ from the same SVD |
# | PCA ranked by output energy | both, cross terms dropped | the $k$ principal directions $u_i$ with the largest $\lambda_i\, u_i^\top W_o u_i$ |
#
# The last two are alternatives to the paper's basis, studied in the tilt section below. Each is
# then tested with the chapters' own interventions ({ref}`method-interventions`): keep only the
# subspace (sufficiency), remove it (necessity) and, for agreement, reflect it.
#
# ## Markov chains: PCA does as well as ACE
#
# Chapter 01's three models (the paper's post-LN models; `architecture="pre-ln"` takes the
# pre-LN TransformerLens-native versions of its architecture section instead), ACE at
# `unembed.hook_in`, the readout's input, over all 31
# positions of the 3000 test sequences,
# $k = 3$; labels are the next states. The readout is affine, so the keep and remove
# accuracies are computed in closed form (`modular.scan_keep_remove`, which needs only $H$,
# the readout's $W_U$ and bias, and the targets); one check against the model's hooks follows.

# %%
T = mk.lazy_cycle()
mdata = mk.make_data(T)
m_runs = mk.chapter_runs(seed, 3, architecture=architecture)
# cached by chapter 01 at architecture='paper'
m_models = mk.train_markov_models(m_runs, mdata, workers=2, device=device)
chance_m = mk.chance_accuracy(mdata.test)
y_m = mdata.test[:, 1:].reshape(-1)
markov = []
for m in m_models:
    res, H = mk.markov_core(m, mdata)
    W, b = readout_matrix(m), readout_bias(m)
    Wo = observability_from_readout(W)
    k = res.rank
    bases = bl.baseline_bases(H, Wo, k, y_m, ace_basis=res.basis, ridges=RIDGES,
                              n_random=n_random, seed=seed)
    # accuracy, each kept / removed
    scores = bl.compare_subspaces(bases, mod.readout_scorer(H, W, y_m, b))
    markov.append(dict(model=m, res=res, H=H, W=W, Wo=Wo, k=k, bases=bases,
                       scores=bl.average_random(scores),
                       full=mk.next_token_accuracy(m, mdata.test)))
first = markov[0]
hook_check = max(abs(mk.intervention_accuracy(first["model"], mdata, first["bases"][n], mode)
                     - first["scores"][n][mode])
                 for n in ("ACE", "PCA") for mode in ("keep", "remove"))
print(f"core dimension per model: {[r['k'] for r in markov]}; "
      f"full accuracy {[round(r['full'], 4) for r in markov]}; chance {chance_m:.4f}; "
      f"closed form vs hooks (model 1, ACE and PCA): largest difference {hook_check:.1e}")


# %% tags=["hide-input"]
display(Markdown("Mean over the three models (range in brackets) of the next-state accuracy with only the "
                 f"subspace kept or with it removed (full model {np.mean([r['full'] for r in markov]):.4f}, "
                 f"chance {chance_m:.4f}), and the mean largest principal angle to the ACE core:\n\n"
                 + task_table(markov, ("keep", "remove"))))

# %% mystnb={"figure": {"caption": "Markov chains, k = 3: next-state accuracy with only each subspace kept (left bar) or with it removed (right bar), mean over the three models with one dot per model; dashed: the full model, dotted: chance, grey band: within 0.05 of chance. ACE, PCA, PCA ranked by output energy and the class means are all sufficient and necessary; the sensitivity directions, ACE's observable side and the probes are not.", "name": "fig-baselines-markov"}}
full_mean = np.mean([r["full"] for r in markov])
ax = bar_plot(markov, ("keep", "remove"), ("C0", "C1"), "next-state accuracy (test)",
              [(full_mean, "--", "full model"), (chance_m, ":", "chance")])
ax.axhspan(chance_m - 0.05, chance_m + 0.05, color="0.85", zorder=0)
ax.set_ylim(0, 0.8)
plt.gcf().tight_layout()
plt.show()

# %%
sc = [r["scores"] for r in markov]
full_m = [r["full"] for r in markov]

# %% tags=["hide-input"]
claims.at_most("closed_form_equals_hooks", hook_check, 1e-4,
               "closed-form keep/remove equal the model's hooks (largest difference, model 1)", kind="sanity",
               paper="an identity of two computations, not a result")
for name in ("ACE", "PCA"):
    claims.holds(f"markov_{name.lower()}_passes",
                 all(abs(s[name]["keep"] - f) <= 0.005 and s[name]["remove"] <= chance_m + 0.05 for s, f in zip(sc, full_m)),
                 {"keep gap": max(abs(s[name]["keep"] - f) for s, f in zip(sc, full_m)),
                  "remove - chance": max(s[name]["remove"] - chance_m for s in sc)}, "<= 0.005 and <= 0.05",
                 f"Markov: {name} is sufficient (keep within 0.005 of full) and necessary (remove <= chance + 0.05), "
                 "every model", paper="ACE: sufficient and necessary [A]; the baselines are beyond the paper")
claims.at_least("markov_sensitivity_remove_gap", [s["sensitivity"]["remove"] - s["ACE"]["remove"] for s in sc], 0.05,
                "Markov: removing the sensitivity directions leaves >= {bound} more accuracy than removing ACE's, "
                "every model", paper="not in the paper (beyond it)")
claims.below("markov_probe_not_necessary", [f - s["probe, ridge 0.0001"]["remove"] for s, f in zip(sc, full_m)], 0.05,
             "Markov: removing the least-squares probe (ridge 1e-4) costs < {bound} accuracy: not necessary, every model",
             paper="not in the paper (beyond it)")
display(claims.ledger())
ang = {n: [bl.max_angle(r["bases"][n], r["bases"]["ACE"]) for r in markov] for n in ("PCA", "sensitivity")}
sens_more = [s["sensitivity"]["remove"] - s["ACE"]["remove"] >= 0.05 for s in sc]
Markdown(
    f"**Reading.** PCA does as well as ACE here. Its {markov[0]['k']}-D subspace lies {span(ang['PCA'], '{:.1f}')}° "
    "from ACE's. Keeping only it keeps the accuracy, and removing it drops the accuracy to chance "
    f"({span([s['PCA']['remove'] for s in sc], '{:.2f}')}, chance {chance_m:.2f}); ACE's removal gives "
    f"{span([s['ACE']['remove'] for s in sc], '{:.2f}')}. PCA ranked by output energy, the next-state class means "
    "and the probes with a moderate or strong ridge (1 and 100; the latter becomes the class-mean subspace) are in the "
    "table above.\n\n"
    f"The two Gramians disagree where the other shortcut fails. The top-{markov[0]['k']} eigenvectors of $W_U^\\top "
    f"W_U$ lie {span(ang['sensitivity'], '{:.0f}')}° from ACE's core. Keeping only them keeps "
    f"{span([s['sensitivity']['keep'] for s in sc], '{:.2f}')}, and removing them leaves "
    f"{span([s['sensitivity']['remove'] for s in sc], '{:.2f}')}: at least 0.05 more than removing ACE's core in "
    f"{sum(sens_more)} of the {len(sc)} models. $W_o$ alone ranks the readout's directions by its weights, not by how "
    "much the activations use them; ACE ranks them by both.\n\n"
    "The least-squares probe (ridge $10^{-4}$) is the clearest failure. Its directions decode the next state, yet "
    f"removing them leaves the accuracy at {span([s['probe, ridge 0.0001']['remove'] for s in sc], '{:.3f}')}, and "
    f"keeping only them keeps {span([s['probe, ridge 0.0001']['keep'] for s in sc], '{:.2f}')}. A least-squares probe "
    "is Fisher's discriminant: it weights the quiet directions, where the classes separate cleanly, not the loud ones "
    "that the readout uses.")

# %% [markdown]
#
# ## Modular addition after grokking: most finders find the same small core
#
# Chapter 03's two models (the paper's, as chapter 03 trains them by default) at their
# last epoch (1000, after grokking), ACE at `unembed.hook_in`, the readout's input, last
# position, on the 1405 test pairs, labels $c=a+b \bmod 53$. Here
# the core has 10-20 directions, so instead of one $k$ we scan: for every finder and every
# $r$, keep only its first $r$ directions or remove them (uncentred, as in chapter 03), and
# read off the smallest sufficient dimension $r_\text{suf}$ (keep accuracy within $10^{-3}$
# of the model) and the smallest necessary one $r_\text{nec}$ (removal accuracy $\le 2/p$).
# The table also gives keep and remove accuracy at ACE's energy dimension $r_\text{energy}$
# (99 % of the balanced energy), a rank chosen by energy alone: chapter 03's reported
# $r_\text{core}$ is read from ACE's own removal scan, so at it ACE would pass necessity by
# construction.
# The class means and the probes have at most $p-1 = 52$ directions.

# %%
# chapter 03's models, cached by it
mrun = mod.preset_run("default", seed=seed, architecture=architecture)
mout = mod.run_models_resumable(mrun, workers=2, segment_epochs=250, stop_after_main=True,
                                device=device)
mdat = mod.make_data(mrun.p, mrun.train_frac, mrun.split_seed).to(device)
p_mod = mrun.p
modular = []
for m in mod.to_models(mout["final_params"], mrun, device):
    H = mod.last_position_activations(m, mdat.test_x)
    W = readout_matrix(m)
    Wo = observability_from_readout(W)
    res = ace(H, Wo, threshold=mod.ENERGY_THRESHOLD)
    b = readout_bias(m)
    keep, remove, base = mod.scan_keep_remove(H, res.basis, W, mdat.test_y, b)
    dims = mod.core_dimensions(keep, remove, base, res.rank, p_mod)
    bases = bl.baseline_bases(H, Wo, H.shape[1], mdat.test_y, ace_basis=res.basis, ridges=RIDGES,
                              n_random=n_random, seed=seed)
    curves = {n: mod.scan_keep_remove(H, Q, W, mdat.test_y, b)[:2] for n, Q in bases.items()}
    rnd = [curves.pop(n) for n in list(curves) if n.startswith("random ")]
    curves["random (mean)"] = tuple(np.mean([c[j] for c in rnd], 0) for j in (0, 1))
    modular.append(dict(H=H, W=W, Wo=Wo, res=res, base=base, dims=dims, bases=bases, curves=curves))
    print(f"model {len(modular)}: test accuracy {base:.4f}; ACE dimensions {dims}")


# %% tags=["hide-input"]
for run in modular:  # smallest sufficient / necessary dimension of every finder
    run["sn"] = {n: bl.sufficient_necessary(*c, run["base"], p_mod) for n, c in run["curves"].items()}
bases_acc = ", ".join(f"{r['base']:.4f}" for r in modular)
display(Markdown(f"Smallest sufficient and necessary dimensions of each finder (test accuracy of the models "
                 f"{bases_acc}; $2/p$ = {2 / p_mod:.4f}), keep and remove "
                 f"accuracy at ACE's energy dimension $r_\\text{{energy}}$, and the angle to ACE's first 15 directions:\n\n"
                 + dimension_table(modular, angle_r=15)))

# %% mystnb={"figure": {"caption": "Modular addition after grokking (model 1): test accuracy with only the first r directions of each finder kept (left) or removed (right), against r. Dotted: chance 1/p; dashed: 2/p (right) and the model's accuracy (left). ACE, the sensitivity directions, ACE's observable side and the class means overlap; PCA needs more directions on both counts, the probe and random directions (mean of 5) far more. Beyond r = 53 the sensitivity curve on the right is float round-off: its first 53 directions span everything the unembedding reads, and the logits left are ~1e-15.", "name": "fig-baselines-modular"}}
show = ["ACE", "sensitivity", "ACE, observable side", "class means", "PCA", "probe, ridge 0.0001",
        "random (mean)"]
fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.3), sharey=True)
run = modular[0]
for i, name in enumerate(show):
    keep, remove = run["curves"][name]
    r = np.arange(len(keep))
    a1.plot(r, keep, color=f"C{i}", lw=1.2, label=name)
    a2.plot(r, remove, color=f"C{i}", lw=1.2)
a1.axhline(run["base"], color="0.3", ls="--", lw=0.8)
a2.axhline(2 / p_mod, color="0.3", ls="--", lw=0.8)
for a in (a1, a2):
    a.axhline(1 / p_mod, color="0.3", ls=":", lw=0.8)
    a.set_xlabel("number of directions r")
    a.set_xlim(0, 80)
a1.set_ylabel("test accuracy, last position")
a1.set_title("only the first r kept", fontsize=9)
a2.set_title("the first r removed", fontsize=9)
a1.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %%
sn = [run["sn"] for run in modular]
d = bl.dimension_or  # None (never) after every dimension
beyond = dict(paper="not in the paper (beyond it)")

# %% tags=["hide-input"]
claims.holds("modular_sensitivity_suf_le_ace", all(d(s["sensitivity"][0]) <= d(s["ACE"][0]) for s in sn),
             [(s["sensitivity"][0], s["ACE"][0]) for s in sn], "sensitivity <= ACE",
             "modular: the sensitivity directions are sufficient with no more directions than ACE (r_suf), every model",
             **beyond)
claims.holds("modular_pca_suf_gt_ace", all(d(s["PCA"][0]) > d(s["ACE"][0]) for s in sn),
             [(s["PCA"][0], s["ACE"][0]) for s in sn], "PCA > ACE",
             "modular: PCA needs more directions than ACE to be sufficient (r_suf), every model", **beyond)
claims.holds("modular_probe_never_necessary", all(s["probe, ridge 0.0001"][1] is None for s in sn),
             [s["probe, ridge 0.0001"][1] for s in sn], "None (never <= 2/p)",
             "modular: the least-squares probe (ridge 1e-4) is never necessary (removal of all its 52 directions > 2/p)",
             **beyond)
display(claims.ledger())


near = [n for n in ("sensitivity", "ACE, observable side", "class means", "probe, ridge 100")
        if all(run["sn"][n][0] is not None and run["sn"][n][1] is not None
               and abs(run["sn"][n][0] - run["sn"]["ACE"][0]) <= 2 and abs(run["sn"][n][1] - d(run["sn"]["ACE"][1])) <= 2
               for run in modular)]
Markdown(
    "**Reading.** On the paper's models the core after grokking is small, and most finders find it. ACE is sufficient / "
    f"necessary with {dimensions_text(modular, 'ACE', p_mod)} directions (models 1 and 2; its energy dimension "
    f"{' and '.join(str(run['dims']['r_energy']) for run in modular)}). "
    + (f"{', '.join(near)} are sufficient and necessary with the same numbers to within two directions; " if near else "")
    + f"PCA needs {dimensions_text(modular, 'PCA', p_mod)}, and its first 15 directions lie "
    f"{bl.max_angle(modular[0]['bases']['PCA'][:, :15], modular[0]['bases']['ACE'][:, :15]):.0f}° from ACE's in model 1. "
    "What separates the finders in the summary below is often a direction or two.\n\n"
    "The weakly regularised probes are never necessary: removing all of the ridge-$10^{-4}$ probe's directions leaves "
    f"the accuracy at {per_model((run['curves']['probe, ridge 0.0001'][1][-1] for run in modular), '{:.3f}')}. The "
    f"ridge-1 probe is sufficient / necessary with {dimensions_text(modular, 'probe, ridge 1', p_mod)} directions.")

# %% [markdown]
# On the pre-LN models (`architecture="pre-ln"`) the picture differs, because their core
# fills most of the 53-dimensional space the readout can see (chapter 03): there any finder
# whose first directions fill the readout's row space is sufficient and, once removed,
# necessary, and the readout's own directions get there as fast as ACE. The angles to ACE
# in the last column say little on this task: as the last section shows, ACE's own subspace
# of these dimensions moves by tens of degrees between two halves of the data.
#
# ## Subject-verb agreement: PCA and the class means find ACE's axis, the gradient does not
#
# Chapter 05's three default models, at the layer that chapter chooses (lowest flip AUC on the
# ACE prompts), the last prompt token, $k=1$; labels are the head noun's number, on the 600
# ACE prompts.
# Interventions are centred on their mean and scored by the margin's ROC-AUC on the 600
# held-out test prompts; a reflection that inverts the number drives the AUC to 0.

# %%
train_pairs, test_pairs = ac.split_pairs(seed)
train_prompts = ac.make_prompts(600, train_pairs, seed=seed)
test_prompts = ac.make_prompts(600, test_pairs, seed=seed + 1)
a_runs = [ag.AgreementRun(L, dm, steps=600, data_seed=seed, seed=seed + 100 * i)
          for i, (L, dm) in enumerate(zip([2, 4, 6], [64, 80, 96]))]
ag.train_models(a_runs, workers=2, device=device)  # cached by chapter 05
agreement = []
for run in a_runs:
    name = f"{run.n_layers}L-{run.d_model}d"
    model, tok, _ = ag.load_agreement_model("trained", name=name, run=run, device=device)
    v = ag.verb_token_ids(tok)
    tr, te = ag.prompt_batch(tok, train_prompts), ag.prompt_batch(tok, test_prompts)
    cores = ag.ace_all_layers(model, tr, v)
    # chosen on the ACE prompts, as chapter 05 does
    layer = ag.layer_sweep(model, cores, tr, v, seed=seed)["layer"]
    hook = cores.hooks[layer]
    H, G = ag.margin_acts_and_grads(model, tr, v, hook)
    Wo = observability_from_gradients(G)
    res = ace(H, Wo, rank=1)
    bases = bl.baseline_bases(H, Wo, 1, tr.labels, ace_basis=res.basis, ridges=RIDGES,
                              n_random=n_random, seed=seed)
    # held-out margin AUC, kept / removed / flipped
    evaluate = ag.auc_scorer(model, te, v, hook, res.mean)
    Ht = ag.margin_acts_and_grads(model, te, v, hook)[0].double()
    probe_auc = {}
    for r in RIDGES:  # held-out decoding AUC of each probe direction (orientation-free)
        decoded = (Ht - res.mean) @ bases[f"probe, ridge {r:g}"][:, 0]
        a = ag.roc_auc(decoded.cpu().numpy(), te.labels)
        probe_auc[r] = max(a, 1 - a)
    scores = bl.compare_subspaces(bases, evaluate, ("keep", "remove", "flip"))
    agreement.append(dict(name=name, layer=layer, L=run.n_layers, H=H, G=G, res=res, bases=bases,
                          base=ag.roc_auc(ag.margins(model, te, v), te.labels), probe_auc=probe_auc,
                          same=bl.max_angle(res.core(1), cores.results[layer].core(1)),
                          scores=bl.average_random(scores)))
    print(f"{name}: layer {layer}/{run.n_layers}, base AUC {agreement[-1]['base']:.3f}, "
          f"ACE direction = chapter 05's (angle {agreement[-1]['same']:.1e} deg); "
          "held-out decoding AUC of the "
          "probes " + ", ".join(f"ridge {r:g}: {a:.3f}" for r, a in probe_auc.items()))

# %% tags=["hide-input"]
display(Markdown("Mean over the three models (range in brackets) of the margin's ROC-AUC on the held-out prompts "
                 f"(base {np.mean([r['base'] for r in agreement]):.3f}, chance 0.5) with only the direction kept, "
                 "removed or reflected, and the mean angle to the ACE direction:\n\n"
                 + task_table(agreement, ("keep", "remove", "flip"))))

# %% mystnb={"figure": {"caption": "Subject-verb agreement, k = 1 at each model's chosen layer: margin ROC-AUC on held-out prompts with only the direction kept, removed or reflected (mean over the three models, one dot per model); dotted: chance 0.5. Every finder except the weakly regularised probes and random directions inverts the number when reflected (AUC near 0); how far removing each brings the AUC toward chance is in the table above.", "name": "fig-baselines-agreement"}}
ax = bar_plot(agreement, ("keep", "remove", "flip"), ("C0", "C1", "C3"),
              "margin ROC-AUC (test prompts)", [(0.5, ":", "chance")])
ax.set_ylim(-0.02, 1.05)
plt.gcf().tight_layout()
plt.show()

# %% tags=["hide-input"]
sa = [r["scores"] for r in agreement]
for name in ("ACE", "PCA", "class means"):
    claims.holds(f"agreement_{name.replace(' ', '_').lower()}_passes",
                 all(abs(s[name]["keep"] - r["base"]) <= 0.03 and s[name]["remove"] <= 0.6 and s[name]["flip"] <= 0.1
                     for s, r in zip(sa, agreement)),
                 {m: max(s[name][m] for s in sa) for m in ("remove", "flip")}, "keep within 0.03, remove <= 0.6, flip <= 0.1",
                 f"agreement: {name} keeps (within 0.03 of base), removes (<= 0.6) and flips (<= 0.1) the number, "
                 "every model", paper="ACE: inversion and chance after removal [A]; the baselines are beyond the paper")

# %% tags=["hide-input"]
claims.holds("agreement_sensitivity_flips_not_necessary",
             all(s["sensitivity"]["flip"] <= 0.1 and s["sensitivity"]["remove"] >= 0.8 for s in sa),
             {"flip": max(s["sensitivity"]["flip"] for s in sa), "remove": min(s["sensitivity"]["remove"] for s in sa)},
             "flip <= 0.1, remove >= 0.8",
             "agreement: the sensitivity direction flips (<= 0.1) but is not necessary (removed AUC >= 0.8), every model",
             **beyond)
claims.holds("agreement_probe_decodes_not_flips",
             all(r["probe_auc"][1e-4] >= 0.99 and s["probe, ridge 0.0001"]["flip"] >= 0.9 for s, r in zip(sa, agreement)),
             {"decoding": min(r["probe_auc"][1e-4] for r in agreement), "flip": min(s["probe, ridge 0.0001"]["flip"] for s in sa)},
             "decoding >= 0.99, flip >= 0.9",
             "agreement: the ridge-1e-4 probe decodes number (held-out AUC >= 0.99) but reflecting it does nothing (flip AUC >= 0.9)",
             **beyond)
claims.at_most("agreement_random_nothing", max(abs(s["random (mean)"]["flip"] - r["base"]) for s, r in zip(sa, agreement)),
               0.05, "agreement: random directions leave the AUC within {bound} of base when reflected (mean of the controls)",
               **beyond)
display(claims.ledger())
ang_a = {n: [bl.max_angle(r["bases"][n], r["bases"]["ACE"]) for r in agreement]
         for n in ("PCA", "class means", "sensitivity", "probe, ridge 0.0001")}
Markdown(
    "**Reading.** At the chosen layers the number axis is the loudest direction. The top principal direction lies "
    f"{span(ang_a['PCA'], '{:.1f}')}° from ACE's axis and the class-mean difference {span(ang_a['class means'], '{:.1f}')}°; "
    "both are compared with ACE in the table above.\n\n"
    "The sensitivity direction (the dominant margin gradient) is where the two Gramians disagree: it lies "
    f"{span(ang_a['sensitivity'], '{:.0f}')}° from ACE's axis. Reflecting it drives the AUC to "
    f"{span([s['sensitivity']['flip'] for s in sa], '{:.2f}')}, because most of the axis is reflected with it. Removing it, "
    f"though, leaves the AUC at {span([s['sensitivity']['remove'] for s in sa], '{:.2f}')}. The part of the number axis "
    "orthogonal to the gradient remains, and the AUC, a rank statistic, needs no more than that. ACE's observable side "
    "behaves the same way.\n\n"
    "The probes show the probing problem in one table. At every ridge they decode number on the held-out prompts "
    f"(AUC {span([a for r in agreement for a in r['probe_auc'].values()], '{:.3f}')}). Yet the weakly regularised "
    f"probe ({span(ang_a['probe, ridge 0.0001'], '{:.0f}')}° from ACE) can be removed or reflected with the AUC staying "
    f"at {span([s['probe, ridge 0.0001'][m] for s in sa for m in ('remove', 'flip')], '{:.2f}')}. Decoding accuracy "
    "cannot choose among these probes; the interventions can.")

# %% [markdown]
# ## When does ACE itself go wrong? The tilt of the paper's basis
#
# The paper's basis is the image of the observed directions under the covariance,
# $\operatorname{orth}(L_cU_r) = \operatorname{orth}(W_c L_o V_r)$ ({ref}`method-tilt`): a
# direction the output ignores but that is much louder than the core leaks in through its
# finite-sample correlation with the core, by an angle $\tan\theta \sim (s_\text{loud}/s_\text{core})/\sqrt n$.
# We measure it on the planted system of chapter 00 (`planted_core_system`, $D=32$, a 3-D core
# with standard deviations 1, 0.7, 0.5, a 3-D decoy `decoy_ratio` times louder than the core's
# largest and never read, i.i.d. latents), against the sample size $n$ and the decoy's
# loudness, for the paper's basis and two alternatives from the same quantities:
#
# - **the observable side** $\operatorname{orth}(L_o V_r) = \operatorname{orth}(W_o L_c U_r)$, the
#   image under $W_o$ instead: it lies in the span of what the output reads, so a decoy never
#   enters it; but directions the output reads and the inputs never drive (the system's
#   "silent" directions, read `silent_ratio` = 10 times more strongly than the core) do.
#   Whitening the activations before the SVD is not a third option: mapped back as
#   activation patterns it gives exactly the paper's basis, as read-out filters exactly the
#   observable side (`whitened_core`; a test checks both);
# - **PCA ranked by output energy**: balanced truncation with $W_o$'s cross terms between
#   principal directions dropped, so a loud direction enters only through its own (tiny)
#   output energy.

# %%
tilt_ns = tuple(n for n in (1000, 4000, 16000, 64000, 256000, 1024000) if n <= tilt_max_n)
decoys = (1.0, 3.0, 10.0, 30.0)
t0 = time.perf_counter()
# the planted systems move with the chapter's seed
tilt_draws = tuple(1000 * seed + i for i in range(tilt_seeds))
tilt = {s: bl.tilt_experiment(ns=tilt_ns, decoy_ratios=decoys, seeds=tilt_draws, silent_ratio=s)
        for s in (10.0, 0.0)}
print(f"tilt study: {len(tilt_ns)} sizes x {len(decoys)} decoys x {tilt_seeds} seeds "
      f"x 2 silent settings in {time.perf_counter() - t0:.1f} s")
PAPER = "ACE, paper basis orth(L_c U_r)"
OBS = "ACE, observable side orth(L_o V_r)"
RANKED = "PCA ranked by output energy"

# %% mystnb={"figure": {"caption": "The tilt on the planted system (silent directions read 10x the core): largest principal angle between the recovered 3-D basis and the planted core (median over seeds) against the sample size, one colour per decoy loudness; solid: the paper's basis, dashed: PCA ranked by output energy. The paper's basis tilts like decoy/sqrt(n); the ranked PCA does not, except when the decoy is exactly as loud as a core direction (decoy 1x). The observable side (not drawn) sits at 84.3 deg at every point: it reads the silent directions.", "name": "fig-baselines-tilt"}}
fig, ax = plt.subplots(figsize=(6, 3.6))
st = tilt[10.0]
for j, dr in enumerate(decoys):
    ax.plot(tilt_ns, st.median(PAPER)[:, j], "o-", color=f"C{j}",
            label=f"decoy {dr:g}x, paper basis")
    ax.plot(tilt_ns, st.median(RANKED)[:, j], "s--", color=f"C{j}", ms=3, lw=0.9,
            label=f"decoy {dr:g}x, ranked PCA")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("samples n")
ax.set_ylabel("angle to the planted core (deg)")
ax.legend(fontsize=6.5, ncol=2, loc="lower left")
fig.tight_layout()
plt.show()

# %% tags=["hide-input"]
j4 = tilt_ns.index(4000) if 4000 in tilt_ns else 0
rows = {}
for s, st in tilt.items():
    for m in (PAPER, OBS, RANKED):
        rows[f"{m}, silent {s:g}x"] = {f"decoy {dr:g}x": f"{st.median(m)[j4, j]:.2f} deg / {st.median(m, 'keep_error')[j4, j]:.3g}"
                                       for j, dr in enumerate(decoys)}
display(Markdown(f"At n = {tilt_ns[j4]}: median angle to the planted core / median keep error "
                 "$\\lVert CPh - Ch\\rVert^2/\\lVert Ch\\rVert^2$ (the output error of keeping only the basis; "
                 "1 means as bad as keeping nothing):\n\n" + dict_table(rows, [f"decoy {dr:g}x" for dr in decoys],
                                                                                first="basis")))

# %%
paper10, ranked10 = tilt[10.0].median(PAPER), tilt[10.0].median(RANKED)
method = dict(paper="not in the paper (the method page's prediction)")

# %% tags=["hide-input"]
claims.holds("tilt_grows_with_decoy", bool(np.all(np.diff(paper10, axis=1) > 0)), np.round(paper10, 2).tolist(),
             "increasing along decoys", "tilt: the paper basis's angle grows with the decoy's loudness at every n (medians)",
             **method)
claims.holds("tilt_shrinks_with_n", bool(np.all(np.diff(paper10, axis=0) < 0)), np.round(paper10, 2).tolist(),
             "decreasing along n", "tilt: ... and shrinks with n at every loudness (medians)", **method)
loud = [j for j, dr in enumerate(decoys) if dr >= 10]
claims.above("tilt_keep_error", [float(tilt[10.0].median(PAPER, "keep_error")[j4, j]) for j in loud], 1,
             "tilt: at a decoy >= 10x the core, keeping the paper basis gives a keep error > {bound} at n = 4000 "
             "(worse than nothing)", **method)
claims.holds("tilt_observable_side_exact",
             bool(np.allclose(tilt[10.0].angle[OBS], np.degrees(np.arctan(10.0)), atol=0.01)
                  and tilt[0.0].angle[OBS].max() < 1e-3 and max(tilt[s].keep_error[OBS].max() for s in tilt) < 1e-9),
             {"silent 10": float(tilt[10.0].angle[OBS].mean()), "silent 0": float(tilt[0.0].angle[OBS].max())},
             "84.29 / < 1e-3 deg; keep error < 1e-9",
             "tilt: the observable side is 84.3 deg off with silent directions, exact without, and its keep error is 0 in both",
             kind="sanity", paper="exact by construction: arctan(10) = 84.29 deg for silent directions read 10x")
claims.holds("tilt_ranked_pca_small", bool(np.all(ranked10[:, 1:] < paper10[:, 1:] / 5)), np.round(ranked10, 2).tolist(),
             "< paper / 5", "tilt: PCA ranked by output energy tilts < 1/5 of the paper basis at decoys >= 3x, every n",
             **method)
claims.holds("tilt_ranked_pca_fails_at_1x", bool(np.all(ranked10[:, 0] > 20)), np.round(ranked10[:, 0], 1).tolist(),
             "> 20 deg", "tilt: ... but fails (> 20 deg) at every n when the decoy is exactly as loud as the core's top "
             "direction", **method)
display(claims.ledger())
j10, jn = decoys.index(10.0), len(tilt_ns) - 1
factor = paper10[:, 1:] / ranked10[:, 1:]
Markdown(
    "**Reading.** The paper's basis tilts as the method page predicts. With a decoy 10x the core, the median error is "
    f"{paper10[0, j10]:.0f}° at n = {tilt_ns[0]:,} and still {paper10[jn, j10]:.0f}° at n = {tilt_ns[jn]:,}, and the "
    f"keep error at n = {tilt_ns[j4]:,} is {tilt[10.0].median(PAPER, 'keep_error')[j4, j10]:.2f}: above 1, keeping the "
    "tilted core lets so much of the decoy into the output that it does worse than keeping nothing.\n\n"
    "The observable side is immune to the decoy: without silent directions it is exact (0°) at every n and every "
    "loudness. But once the output also reads undriven directions, it sits "
    f"{float(tilt[10.0].angle[OBS].mean()):.1f}° from the planted core (arctan 10, by construction), and no keep or "
    "remove intervention can detect this: its keep error is zero, because the silent directions never carry any "
    "activation. Interventions on the data distribution validate a subspace only up to directions the data never use. "
    "Angles to a planted core, or between runs, do see such directions.\n\n"
    f"PCA ranked by output energy cuts the tilt by a factor of {factor.min():.0f} to {factor.max():.0f} at decoys of "
    "3x and louder. It fails outright when the decoy is exactly as loud as a core direction (decoy 1x: "
    f"{span(ranked10[:, 0], '{:.0f}')}°): a degenerate eigenspace mixes core and decoy, and the ranking keeps the "
    "mixture.\n\n"
    "None of the three bases is better everywhere. The paper's basis is the only one that never fails outright: its "
    "error shrinks with n at every loudness.")

# %% [markdown]
# ## Does any of it matter on the real tasks?
#
# For each task: the angle between the paper's core and each alternative, the keep / remove
# accuracies of the alternatives (from the tables above), and a model-free estimate of the
# paper basis's own sampling error: ACE run separately on two random halves of the samples
# (`split_half_angle`; for agreement the gradient Gramian is split too).

# %%
rows = {}
for task, runs, k_of in (("Markov", markov, lambda r: r["k"]),
                         ("modular", modular, lambda r: r["dims"]["r_suf"]),
                         ("agreement", agreement, lambda r: 1)):
    for i, r in enumerate(runs):
        k = k_of(r)
        kw = dict(Wo=r["Wo"]) if task != "agreement" else dict(G=r["G"])
        row = {"k": k,
               "split-half angle of ACE (deg)": bl.split_half_angle(r["H"], k, seed=seed, **kw)}
        Q = r["bases"]["ACE"][:, :k]
        for alt in ("ACE, observable side", "PCA ranked by output energy"):
            row[f"angle to {alt} (deg)"] = bl.max_angle(Q, r["bases"][alt][:, :k])
        rows[f"{task}, model {i + 1}"] = row
real = rows
columns = list(next(iter(real.values())))
display(Markdown(dict_table(real, columns, fmt="{:.1f}", first="task, model")))

# %%
split = {t: max(v["split-half angle of ACE (deg)"] for n, v in real.items() if n.startswith(t))
         for t in ("Markov", "modular", "agreement")}
obs_angle = {t: min(v["angle to ACE, observable side (deg)"]
                    for n, v in real.items() if n.startswith(t))
             for t in ("Markov", "modular", "agreement")}

# %% tags=["hide-input"]
claims.holds("split_half_small", split["Markov"] < 5 and split["agreement"] < 5, split, "< 5 deg",
             "real tasks: ACE's split-half angle is below 5 deg for Markov and agreement (largest)", **beyond)
claims.holds("split_half_modular_large",
             split["modular"] >= 30 and min(v["split-half angle of ACE (deg)"] for n, v in real.items()
                                           if n.startswith("modular")) >= 30,
             [v["split-half angle of ACE (deg)"] for n, v in real.items() if n.startswith("modular")], ">= 30 deg",
             "real tasks: on modular addition two halves of the test pairs give ACE subspaces >= 30 deg apart at r_suf",
             **beyond)
claims.at_least("observable_side_angle", obs_angle, 10,
                "real tasks: the observable side is >= {bound} deg from ACE's core on every task (smallest)", **beyond)
display(claims.ledger())
OBS_KEY, RANKED_KEY, SPLIT_KEY = "angle to ACE, observable side (deg)", "angle to PCA ranked by output energy (deg)", \
    "split-half angle of ACE (deg)"
obs, ranked, halves = ({t: column_of(real, t, key) for t in ("Markov", "modular", "agreement")}
                       for key in (OBS_KEY, RANKED_KEY, SPLIT_KEY))
Markdown(
    "**Reading.** On the Markov models and in agreement, the data pin down the paper's basis: two random halves give "
    f"cores within {split['Markov']:.1f}° (Markov, 93,000 vectors) and {split['agreement']:.1f}° (agreement, 600 "
    f"prompts). The observable side differs from ACE's core by {span(obs['Markov'], '{:.0f}')}° and "
    f"{span(obs['agreement'], '{:.0f}')}°, and it fails necessity in agreement (table above). So the "
    "difference between the two sides is real, and on these tasks the paper's side is the right one. PCA ranked by "
    f"output energy lies {span(ranked['Markov'] + ranked['agreement'], '{:.0f}')}° from "
    "ACE on both tasks.\n\n"
    "On modular addition the problem is different, and it is not a tilt. There are only 1405 test pairs (about 26 per "
    f"class), and two halves of them give ACE subspaces {span(halves['modular'], '{:.0f}')}° apart at "
    f"$r_\\text{{suf}}$ ({' and '.join(str(run['dims']['r_suf']) for run in modular)} directions). The keep and remove "
    "accuracies are stable, but this data determines which directions form \"the core\" only to that angle, for ACE "
    "or for any other finder, and the angles between finders on this task "
    f"({span(obs['modular'] + ranked['modular'], '{:.0f}')}° to the alternatives here) "
    "should be read against it.")

# %% [markdown]
# ## Summary
#
# Pass (✓) or fail (✗) of each finder on each task. Markov: keep within 0.005 of the full
# model and removal at most chance + 0.05, every model, $k=3$. Modular addition: sufficient
# and necessary within ACE's energy dimension $r_\text{energy}$ (99 % of the balanced energy),
# every model: a rank chosen by energy, not by anyone's removal scan, so ACE can fail it too
# (at chapter 03's $r_\text{core}$, read from ACE's own removal scan, ACE would pass
# necessity by construction). Agreement: keep within 0.03 of base, removal $\le 0.6$ (chance
# is 0.5) and reflection $\le 0.1$, every model, $k=1$. Planted system: within 1° of the
# planted core (exact latents; chapter 00 and the known-answer test).

# %% tags=["hide-input"]
names = ["ACE", "PCA", "sensitivity", "class means", "probe, ridge 0.0001", "probe, ridge 100", "ACE, observable side",
         "PCA ranked by output energy", "random (mean)"]
summary = {}
for n in names:
    mk_ok = all(abs(s[n]["keep"] - f) <= 0.005 and s[n]["remove"] <= chance_m + 0.05 for s, f in zip(sc, full_m))
    mod_ok = all(run["sn"][n][0] is not None and run["sn"][n][1] is not None
                 and max(run["sn"][n]) <= run["dims"]["r_energy"] for run in modular)
    ag_ok = all(abs(s[n]["keep"] - r["base"]) <= 0.03 and s[n]["remove"] <= 0.6 and s[n]["flip"] <= 0.1
                for s, r in zip(sa, agreement))
    summary[n] = {"Markov chains": mark(mk_ok), "modular addition": mark(mod_ok), "agreement": mark(ag_ok)}
S = planted_core_system(n=4000, d=32, k=3, decorrelated=True, seed=0)  # chapter 00's system, exact latents
pl = bl.baseline_bases(S.H, observability_from_readout(S.C), 3, n_random=1, seed=seed)
pl["random (mean)"] = pl.pop("random 1")
for n in names:
    summary[n]["planted core"] = mark(bl.max_angle(pl[n], S.core) < 1.0) if n in pl else "n/a (no labels)"
display(Markdown(dict_table(summary, ["planted core", "Markov chains", "modular addition", "agreement"],
                                   first="finder")))
label_free = [n for n in names if n in pl]
all_pass = [n for n in names if all(v == "✓" for k_, v in summary[n].items() if k_ != "planted core")]
only = [n for n in label_free if all(v == "✓" for v in summary[n].values())]
# the rules name the pass criteria above, so that a table made under other criteria is seen as made under another rule
criteria = ("Markov keep within 0.005, remove <= chance + 0.05; modular r_suf, r_nec <= r_energy; agreement keep "
            "within 0.03, remove <= 0.6, flip <= 0.1; planted core within 1 deg; every model")
only_rule = f"['ACE'] ({criteria})"
claims.holds("only_ace_passes_everywhere", only == ["ACE"], only, only_rule,
             "of the label-free finders, only ACE passes on the planted core and on every task", **beyond)
claims.holds("class_means_pass_everywhere", "class means" in all_pass, all_pass, f"'class means' among them ({criteria})",
             "the class means pass on all three real tasks too (they need the labels)", **beyond)
display(claims.ledger())
fails = {n: [t for t, v in summary[n].items() if v == "✗"] for n in names}
sup06 = ledger_rules.seed_support("06_ace_vs_baselines")
Markdown(
    ("Of the label-free finders, only ACE passes on the planted system and on every task in this run."
     if only == ["ACE"] else
     f"Label-free finders that pass on the planted system and on every task in this run: {', '.join(only) or 'none'}"
     + (f"; ACE fails on {', '.join(fails['ACE'])}" if fails["ACE"] else "") + ".")
    + " Each finder's failures: " + "; ".join(f"{n}: {', '.join(f) or 'none'}" for n, f in fails.items()) + ". "
    + (f"Over seeds 0-9 of the committed table ACE is the only label-free finder to pass everywhere on "
       f"{sup06['only_ace_passes_everywhere'].held} of {sup06['only_ace_passes_everywhere'].runs} seeds"
       + ("." if sup06["only_ace_passes_everywhere"].rule == only_rule else
          ", a table made under earlier pass criteria.")
       if "only_ace_passes_everywhere" in sup06 else "")
    + " Given the labels, the class means are the reference any label-free finder is measured against.")

# %% [markdown]
# What ACE adds is that it does not need to know in advance which Gramian to trust:
#
# - where the activations' loudest directions are the ones the output reads (Markov,
#   agreement), it follows PCA;
# - on modular addition, where every finder that sees the readout lands within a few
#   directions of the same small core, it is as small as the best of them;
# - on the planted system, where each Gramian alone falls into its trap, it finds the core.
#
# ACE's own weakness, the tilt toward loud directions the output does not read, can be
# measured (for example with split halves), and it is small on these tasks. On your own model
# (see the page *ACE on your own model*), run the label-free baselines next to ACE. When they
# agree, the core does not depend on the choice of finder; when they disagree, the
# interventions decide.
#
# The claims of this chapter, by kind:

# %% tags=["hide-input"]
claims.overview()

# %% [markdown]
# ## Exercises
#
# 1. Run another seed: `papermill notebooks/06_ace_vs_baselines.ipynb out.ipynb -p seed 2`
#    (with a cold cache it first trains the models of chapters 01, 03 and 05 at that seed,
#    about as long as those three chapters; away from seed 0 the chapter reports its claims
#    instead of asserting them). The {doc}`robustness page <../book/robustness>` names seed 2
#    as one where PCA ranked by output energy passes everywhere too. Which finders pass every
#    column of the summary table in your run? Why can a finder that drops $W_o$'s cross terms do
#    this well, and what does its failure in {numref}`fig-baselines-tilt` at a decoy exactly as
#    loud as a core direction tell you about the tasks on which it would not?
# 2. Compare the finders on pre-LN models: `-p architecture pre-ln`. On modular addition their
#    core fills most of the readout's row space. Look at {numref}`fig-baselines-modular`: why
#    do keep and remove tests stop separating finders once any subspace that fills that row
#    space passes them?
# 3. Extend the tilt study: `-p tilt_max_n 1024000`. Does the paper basis's error in
#    {numref}`fig-baselines-tilt` keep falling like $n^{-1/2}$ at every loudness? Does PCA
#    ranked by output energy at a decoy of 1x improve with $n$, and would you expect more
#    samples to resolve a degenerate eigenspace?
# 4. Test the split-half estimate where the answer is known, on chapter 00's planted system with
#    i.i.d. samples:
#
#    ```python
#    from ace_utils.method import baselines as bl
#    from ace_utils.method.ace import observability_from_readout
#    from ace_utils.method.synthetic import planted_core_system
#    S = planted_core_system(n=4000, decorrelated=False, seed=0)
#    Wo = observability_from_readout(S.C)
#    for basis in (bl.paper_basis, bl.observability_side_basis):
#        error = bl.max_angle(basis(S.H, Wo, 3), S.core)
#        print(bl.split_half_angle(S.H, 3, Wo=Wo, basis=basis), error)
#    ```
#
#    How does each basis's split-half angle compare with its true error to the planted core?
#    Can two halves of the same data reveal an error that both halves share, and what does the
#    answer mean for the split-half angles of the last section?

# %% tags=["hide-input"]
claims.record(
    markov={n: {m: [s[n][m] for s in sc] for m in ("keep", "remove")} for n in sc[0]},
    modular={n: [run["sn"][n] for run in modular] for n in modular[0]["sn"]},
    agreement={n: {m: [s[n][m] for s in sa] for m in ("keep", "remove", "flip")} for n in sa[0]},
    tilt_paper=paper10.tolist(), tilt_ranked=ranked10.tolist(), real=real,
    seconds=time.perf_counter() - t_start,
)
print(f"total {time.perf_counter() - t_start:.0f} s")
claims.save()
