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
# # TITLE
#
# **What this chapter shows.** SUMMARY
# **Runtime:** RUNTIME

# %% tags=["remove-cell"]
# Colab setup: installs ace_utils and its pinned requirements there; does nothing elsewhere.
import subprocess
import sys

if "google.colab" in sys.modules:  # pragma: no cover - only in Colab
    subprocess.run(["git", "clone", "-q", "https://github.com/ace-book/ace-book", "/content/ace-book"], check=False)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/ace-book"], check=True)
    sys.path.insert(0, "/content/ace-book")

# %% tags=["parameters"]
seed = 0  # the live runs' seed (mod-add models seed and seed + 1000; Markov models seed, seed + 100, ...)
preset = "default"  # 'default': the committed mod-add study and one setting retrained here; 'full': every setting trained here
live_setting = "LIVE"  # the mod-add setting retrained here (one of the settings table's names)
live_epochs = 200  # epochs of the live retrain (a multiple of 50); 'full' trains the study's 1000
markov_models = 3  # Markov models per setting
workers = 2  # models trained at once, one process each

# %% tags=["hide-input"]
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from ace_utils.claims import Claims
from ace_utils.machine import fingerprint
from ace_utils.params import Choice, Int, validate
from ace_utils.tasks import architecture as arch
from ace_utils.tasks import markov as mk
from ace_utils.tasks import modular as mod

P = validate(
    {
        "seed": Int(0, 10**6),
        "preset": Choice("default", "full"),
        "live_setting": Choice(*(s.name for s in arch.MODADD_SETTINGS)),
        "live_epochs": Choice(*range(50, 1001, 50)),
        "markov_models": Int(2, 10),
        "workers": Int(1, 16),
    },
    globals(),
)
torch.set_num_threads(1)
t_start = time.perf_counter()
RESULTS = Path(arch.__file__).resolve().parents[2] / "results" / "architecture"
strict = preset == "default" and live_setting == "LIVE" and live_epochs == 200 and markov_models == 3
claims = Claims("07_architecture_and_the_core", P, strict=strict)

# %% [markdown]
# ## Seven versions of the paper's model
#
# The baseline is the paper's model as chapters 01 and 03 train it
# ({ref}`sources-reference-models`): PyTorch `TransformerEncoderLayer` blocks, post-LN, no
# final LayerNorm, dropout 0.1 where PyTorch puts it (the attention probabilities, the
# attention output, the FFN hidden activation and the FFN output), PyTorch's initialisation
# (token and position embeddings $\mathcal N(0,1)$), and a readout with a learned bias. The
# TransformerLens-native models of this book (`architecture="pre-ln"` in chapters 01-06)
# differ from it in four ways at once: pre-LN blocks with a final LayerNorm, dropout on the
# embeddings and on every residual write instead of PyTorch's sites, GPT-2-style weights
# $\mathcal N(0, 0.8/\sqrt{d})$ (embeddings about 14 times smaller), and no readout bias.
# Each setting below changes one of these (`ace_utils.paper_model.ModelVariant`), and the
# last changes all four, which brings the model close to the native one. Everything else is
# chapter 03's run: $p = 53$, half the pairs for training, 1000 epochs of AdamW with weight
# decay 1, two models per setting (seeds 0 and 1000), analysed every 50 epochs at the
# readout's input (`unembed.hook_in`: for the pre-LN settings, the final LayerNorm's output).

# %% tags=["hide-input"]
rows = ["| setting | design choice changed | LayerNorm | dropout sites (p) | initialisation | readout bias |",
        "|---|---|---|---|---|---|"]
for s in arch.MODADD_SETTINGS:
    v = s.variant
    sites = "none" if s.dropout == 0 else ("attention, attention output, FFN hidden, FFN output"
                                           if v.dropout_sites == "paper" else "embeddings, attention output, FFN output")
    rows.append(f"| `{s.name}` | {s.factor} | {'post-LN' if v.norm == 'post' else 'pre-LN + final LN'} | {sites}"
                f"{f' ({s.dropout})' if s.dropout else ''} | {'PyTorch default' if v.init == 'pytorch' else 'N(0, 0.8/√d)'} | "
                f"{'yes' if v.readout_bias else 'no'} |")
Markdown("\n".join(rows))

# %% [markdown]
# ## Modular addition: which choice inflates the core?
#
# MODADD_TEXT

# %%
if preset == "full":  # every setting trained here, as scripts/architecture_study.py does
    curves = {}
    for s in arch.MODADD_SETTINGS:
        out = mod.run_models_resumable(arch.modadd_run(s, seed=seed), workers=workers, segment_epochs=250,
                                       stop_after_main=True)
        curves[s.name] = mod.curves_record(out)
else:  # the committed study (seed 0)
    curves = {s.name: mod.load_curves(RESULTS / f"modadd-{s.name}-seed0.npz") for s in arch.MODADD_SETTINGS}
study_meta = json.loads((RESULTS / "meta.json").read_text())
summary = {name: arch.modadd_summary(c) for name, c in curves.items()}
p_mod = arch.modadd_run(arch.MODADD_SETTINGS[0]).p
for name, s in summary.items():
    print(f"{name:>20}: grokking epoch {s['grok_epoch']}, energy dimension init/grok/end "
          f"{s['r_energy_init']}/{s['r_energy_grok']}/{s['r_energy_end']}, r_suf {s['r_suf']}, r_nec {s['r_nec']}")

# %% mystnb={"figure": {"caption": "CAPTION_MODADD", "name": "fig-arch-modadd"}}
colors = dict(zip([s.name for s in arch.MODADD_SETTINGS], plt.cm.tab10.colors))
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for s in arch.MODADD_SETTINGS:
    c = curves[s.name]
    for m in range(c["main/log/test_acc"].shape[1]):
        kw = dict(color=colors[s.name], lw=1.4, alpha=0.9, label=s.label if m == 0 else None)
        axes[0].plot(c["main/log/epoch"], c["main/log/test_acc"][:, m], **kw)
        axes[1].plot(c["main/ckpt/epoch"], c["main/ckpt/r_energy"][:, m], **kw)
        axes[2].plot(c["main/ckpt/epoch"], c["main/ckpt/r_nec"][:, m], **kw)
axes[0].set(xlabel="epoch", ylabel="test accuracy", title="grokking")
axes[1].set(xlabel="epoch", ylabel="energy dimension", title="ACE energy dimension (99%)")
axes[2].set(xlabel="epoch", ylabel="necessary dimension", title="necessary dimension r_nec")
axes[0].legend(fontsize=7, loc="lower right")
fig.tight_layout()

# %% tags=["hide-input"]
def pair(x, fmt="{:.0f}"):
    return " / ".join("–" if np.isnan(v) else fmt.format(v) for v in x)


head = ["setting", "grokking epoch", "energy dim. init / grok / end", "r_suf", "r_nec", "core removed",
        "rotational modes", "R² in-sample", "R²_h"]
rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
for s in arch.MODADD_SETTINGS:
    v = summary[s.name]
    rows.append("| " + " | ".join([
        s.label, pair(v["grok_epoch"]),
        f"{pair(v['r_energy_init'])} → {pair(v['r_energy_grok'])} → {pair(v['r_energy_end'])}",
        pair(v["r_suf"]), pair(v["r_nec"]), pair(v["core_removed_acc"], "{:.3f}"), pair(v["modes"]),
        pair(v["r2_in"], "{:.2f}"), pair(v["r2_h"], "{:.2f}")]) + " |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# TABLE_TEXT

# %%
CLAIMS_MODADD = None

# %% [markdown]
# ## One setting retrained here
#
# The study's files were made by `scripts/architecture_study.py` (the command, machine, git
# commit and time of each setting are in `results/architecture/meta.json`). Here the
# first `live_epochs` epochs of one setting are trained again, with the same seeds, and
# compared with the file: on the machine that made it the numbers must be identical; on
# another CPU kind (other matrix kernels) float32 round-off grows over training, and the
# comparison allows for what we measured between AVX2 and AVX-512 kernels.

# %%
live = arch.setting_named(live_setting)
live_run = arch.modadd_run(live, seed=seed, epochs=live_epochs)
live_out = mod.run_models(live_run, "main", workers=workers)
again = mod.curves_record(live_out)

# %% tags=["hide-input"]
committed = mod.load_curves(RESULTS / f"modadd-{live.name}-seed0.npz")
made_here = study_meta["settings"][f"{live.name}/seed0"]["machine_fingerprint"] == fingerprint(1)
diffs = {}
if seed == 0:
    for key, value in again.items():
        n = value.shape[0]
        diffs[key] = float(np.nanmax(np.abs(value - committed[key][:n]))) if n else 0.0
    for key in ("main/log/test_acc", "main/log/train_loss", "main/ckpt/r_energy", "main/ckpt/r_nec"):
        print(f"{key}: largest difference from the committed study {diffs[key]:.3g}")
print("the committed study was made", "on this machine (same CPU kind, kernels, threads and torch)" if made_here
      else "on another machine: " + study_meta["settings"][f"{live.name}/seed0"]["machine"])

# %% [markdown]
# ## The Markov chain: the same core whatever the architecture
#
# The same question on chapter 01's task, where a model trains in seconds: the paper's
# lazy 4-state cycle, one-layer models ($d_\text{model}=64$), chapter 01's default training,
# `markov_models` models per setting (seeds `seed`, `seed + 100`, ...). The settings are the
# two choices that differ most visibly in the activations: post-LN against pre-LN with a
# final LayerNorm, each with and without dropout. For each model: ACE's energy rank at
# chapter 01's threshold (0.999), and, in the 3-dimensional core, how far the fitted
# dynamics' real eigenvalue lies from the chain's 0.5 (and the complex pair from
# $0.75 \pm 0.25i$); for each pair of models of a setting, the projector overlap of their
# cores in activation space (random 3-D subspaces of $\mathbb R^{64}$: about
# $3/64 \approx 0.047$) and the mean canonical correlation of their core coordinates
# (chapter 02's measures).

# %%
T = mk.lazy_cycle()
data = mk.make_data(T)
markov = {}
for s in arch.MARKOV_SETTINGS:
    runs = [arch.markov_run(s, seed + 100 * i) for i in range(markov_models)]
    markov[s.name] = arch.markov_summary(mk.train_markov_models(runs, data, workers=workers), data)
    v = markov[s.name]
    print(f"{s.name:>20}: accuracy {np.round(v['acc'], 4)}, energy rank {v['rank']}, real-eigenvalue error "
          f"{np.round(v['real_error'], 3)}, projector overlap {np.round(v['overlap'], 3)}, CCA {np.round(v['cca'], 4)}")

# %% tags=["hide-input"]
bayes = mk.bayes_accuracy(T)
head = ["setting", "test accuracy (Bayes %.4f)" % bayes, "energy rank", "real eigenvalue error", "complex pair error",
        "projector overlap across runs", "mean CCA across runs"]
rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def rng_(x, fmt="{:.3f}"):
    x = np.asarray(x, float)
    return fmt.format(x.min()) if x.min() == x.max() else f"{fmt.format(x.min())}-{fmt.format(x.max())}"


for s in arch.MARKOV_SETTINGS:
    v = markov[s.name]
    rows.append("| " + " | ".join([s.label, rng_(v["acc"], "{:.4f}"), rng_(v["rank"], "{:.0f}"), rng_(v["real_error"]),
                                   rng_(v["complex_error"]), rng_(v["overlap"]), rng_(v["cca"], "{:.4f}")]) + " |")
display(Markdown("\n".join(rows)))

# %%
mk_all = {k: np.concatenate([markov[s.name][k] for s in arch.MARKOV_SETTINGS]) for k in markov[arch.MARKOV_SETTINGS[0].name]}
claims.check("Markov: every model of every setting reaches the Bayes limit (largest gap)",
             np.abs(mk_all["acc"] - bayes).max() <= 0.005, float(np.abs(mk_all["acc"] - bayes).max()), expected="<= 0.005")
claims.check("Markov: the energy rule gives a 3-D core for every model of every setting",
             bool(np.all(mk_all["rank"] == 3)), {s.name: markov[s.name]["rank"].tolist() for s in arch.MARKOV_SETTINGS},
             expected="all == 3")
claims.check("Markov: the real eigenvalue 0.5 is recovered within 0.03 by every model of every setting (largest error)",
             mk_all["real_error"].max() <= 0.03, float(mk_all["real_error"].max()), expected="<= 0.03")
claims.check("Markov: cores of different runs are near-orthogonal in every setting (largest overlap)",
             mk_all["overlap"].max() <= 0.15, float(mk_all["overlap"].max()), expected="<= 0.15")
claims.check("Markov: core coordinates of different runs are linearly equivalent in every setting (smallest mean CCA)",
             mk_all["cca"].min() >= 0.97, float(mk_all["cca"].min()), expected=">= 0.97")

# %% [markdown]
# ## What decides compactness
#
# CONCLUSION_TEXT
#
# ## Ours beside the paper
#
# CLOSING_TEXT

# %%
claims.record(modadd={n: {k: v.tolist() for k, v in s.items()} for n, s in summary.items()},
              markov={n: {k: v.tolist() for k, v in s.items()} for n, s in markov.items()},
              live_differences=diffs, seconds=time.perf_counter() - t_start)
print(f"total {time.perf_counter() - t_start:.0f} s")
claims.save()
