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
# # 04 · Grokking time: about 1/ω over the paper's range of weight decays, and falling with the modulus faster than its log law allows
#
# **What this chapter shows.** The paper turns its modular-addition findings into a
# predictive model of *when* a network groks: the delay $\tau$ between memorising the
# training pairs and generalising should scale as $1/\omega$ in the weight decay
# $\omega$, and should *fall* as the modulus $p$ grows, as
# $\tau(p) = -\Omega\log(1-p_\text{crit}/p)$. We derive the model in a few lines, train
# 13 of the paper's one-layer models (four of the paper's six weight decays at $p=53$, 2
# seeds each, and five of its seven moduli, one seed each) and test both laws out of sample.
# Both laws hold in direction and form, not in every detail. On the default grid of weight
# decays (1 to 3) the delay falls faster than $1/\omega$ (theory $-1$, paper $-1.02$), as
# memorisation itself comes later at large $\omega$; over the paper's whole grid (adding
# $\omega=0.3$ and $0.5$) the exponent is the paper's: $\log\tau$ is curved in $\log\omega$,
# and the default grid samples its steep end. The delay falls steeply with the modulus, and
# the log law fits that; but at large $p$ the delays fall faster than the law's form
# allows, so a fit without $p=79$ and $101$ can miss the delay at 101 by more than 30 %. The
# TransformerLens-native pre-LN models (`architecture="pre-ln"`) follow $1/\omega$ closely
# and show the same shape in $p$. The numbers of this run, of the ten seeds and of the
# paper's grid are given where they are computed. **Runtime:** {glue:md}`runtime` (the timing records of the {doc}`status page <../book/status>`):
# most of it is training the grid, two runs at a time.

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
seed = 0  # run j of every setting is seeded 1000 * seed + j (initial weights, batch order, dropout masks)
preset = "default"  # 'default' (a reduced grid: 2 seeds per weight decay, 1 per modulus, modulus sweep at weight decay 3) or 'paper' (12 seeds, the full grid, weight decay 1, evaluation every step: hours)
n_seeds = 0  # runs per setting, in both sweeps; 0 takes the preset's (default 2 per weight decay and 1 per modulus, paper 12)
omegas = []  # weight decays of the omega sweep at p = 53; [] takes the preset's (default 1, 1.5, 2, 3; paper also 0.3 and 0.5)
moduli = []  # moduli of the p sweep; [] takes the preset's (default 43, 53, 61, 79, 101; paper 31, 43, 53, 61, 79, 89, 101)
modulus_omega = 0.0  # weight decay of the modulus sweep; 0 takes the preset's (default 3, paper 1)
wd_max_steps = 0  # step budget of each omega-sweep run; 0 takes the preset's (default 8000, paper 60000)
p_max_steps = 0  # step budget of each modulus-sweep run; 0 takes the preset's (default 15000, paper 30000)
eval_every = 0  # optimizer steps between accuracy evaluations (the resolution of tau); 0 takes the preset's (10, paper 1)
workers = 2  # processes that train stacks of runs in parallel (one torch thread each)
architecture = "paper"  # 'paper' (the paper's one-layer post-LN encoder) or 'pre-ln' (TransformerLens-native, pre-LN; cheaper steps)
precision = "fp32"  # training arithmetic: 'fp32', or 'bf16' autocast (fast only on CPUs with native bf16; 'pre-ln' only)
device = "cpu"  # 'cpu' (where the seed tables were made), 'cuda' (runs of one setting train as one stack there; workers unused), or 'auto'

# %% tags=["hide-input"]
import time
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ace_utils.book import claims as ledger_rules
from ace_utils.book.chapter import open_chapter
from ace_utils.book.params import Choice, Device, Float, FloatList, Int, IntList
from ace_utils.book.tables import held_count as held_count_in
from ace_utils.book.tables import markdown_table, seed_span, span
from ace_utils.models import paper as paper_model
from ace_utils.tasks import grokking_time as gt

P, claims = open_chapter(
    "04_grokking_time",
    {
        "seed": Int(0, 10**6),
        "preset": Choice("default", "paper"),
        "n_seeds": Int(0, 64),
        "omegas": FloatList(0.05, 20.0, min_len=0, max_len=16),
        "moduli": IntList(11, 127, min_len=0, max_len=16),
        "modulus_omega": Float(0.0, 20.0),
        "wd_max_steps": Int(0, 1_000_000),
        "p_max_steps": Int(0, 1_000_000),
        "eval_every": Int(0, 1000),
        "workers": Int(1, 16),
        "architecture": Choice(*paper_model.ARCHITECTURES),
        "precision": Choice("fp32", "bf16"),
        "device": Device(),
    },
    globals(),
    # claims asserted at these settings (the defaults; any seed), checked and reported elsewhere
    asserted_at={"preset": "default", "precision": "fp32", "architecture": "paper", "n_seeds": 0, "omegas": [],
                 "moduli": [], "modulus_omega": 0.0, "eval_every": 0, "wd_max_steps": 0, "p_max_steps": 0},
    threads=1,
)
device = P["device"]  # 'auto' resolved: the sweeps train there
C_FIT, C_WD, C_COLLAPSE, C_P = "omega_exponent_paper", "omega_ci_contains_minus_one", "omega_collapse", "p_delay_falls"
C_R2, C_HW, C_HP, C_GROK = "log_law_r2", "omega_heldout", "p_heldout", "p_sweep_groks"
SEED_TABLES = ledger_rules.SEED_TABLES


# a claim's range over the seeds of a committed seed table, and on how many it held
over_seeds = partial(seed_span, "04_grokking_time", fmt="{:.2f}")
held_count = partial(held_count_in, "04_grokking_time")


OMEGA_GRID = ledger_rules.SEED_TABLES / "omega-grid"  # the paper's grid of weight decays, seed 0
OMEGA_GRID_NAME = "04_grokking_time__omegas-_0.3_0.5_1.0_1.5_2.0_3.0___wd_max_steps-20000"
t_start = time.perf_counter()
cfg = gt.preset_config(preset, architecture)
if n_seeds:
    cfg["n_seeds"] = cfg["modulus_seeds"] = n_seeds
cfg["omegas"] = tuple(omegas) or cfg["omegas"]
cfg["moduli"] = tuple(moduli) or cfg["moduli"]
cfg["modulus_omega"] = modulus_omega or cfg["modulus_omega"]
cfg["eval_every"] = eval_every or cfg["eval_every"]
cfg["wd_max_steps"] = wd_max_steps or cfg["wd_max_steps"]
cfg["p_max_steps"] = p_max_steps or cfg["p_max_steps"]
if architecture == "paper" and precision != "fp32":
    raise ValueError(f"precision must be 'fp32' with architecture='paper' (allowed with 'pre-ln': 'fp32', 'bf16'), got {precision!r}")
specs = gt.sweep_specs(seed=seed, precision=precision, architecture=architecture, **cfg)
LR = specs["wd"][0].lr
print(f"{architecture} models; omega sweep {cfg['omegas']} at p = 53 (batch 512), {cfg['n_seeds']} seeds each; "
      f"modulus sweep {cfg['moduli']} at omega = {cfg['modulus_omega']} (full batch), "
      f"{cfg.get('modulus_seeds') or cfg['n_seeds']} seed(s) each; tau resolved to "
      f"{cfg['eval_every']} steps")

# %% [markdown]
# ## A model of the delay
#
# The paper's derivation is not available to us (the {ref}`sources page <sources-grokking-time>`
# reconstructs it from the code's fitted forms and a third-party summary, [TS]), so here is
# the few-line version that produces exactly those forms. AdamW's weight decay is
# *decoupled*: every step multiplies
# each weight by $1-\eta\omega$ ($\eta$ the learning rate), so weights that the loss stops
# supporting decay on the time scale $1/(\eta\omega)$ steps, whatever the gradients are.
# After memorisation the training loss is nearly zero, and what changes is the balance
# between the memorising weights (which decay) and the generalising circuit: the rotation
# core of the modular-addition chapter ({numref}`fig-modadd-1c`), built from the
# $\lfloor p/2\rfloor+1$ Fourier harmonics of $\mathbb{Z}_p$. Write $m(t)$ for the
# generalisation margin (correct logit minus the best other, on unseen pairs) and let it
# relax towards a level set by how much *redundant* cyclic energy $\|\psi\|^2$ the
# network can carry:
#
# $$\frac{dm}{dt} = \eta\omega\,\big(c\,\|\psi\|^2 - m\big), \qquad m(t_\text{mem}) = 0 .$$
#
# Generalisation happens when the margin reaches a critical value $m_\text{crit}$:
#
# $$\tau = t_\text{grok}-t_\text{mem} = -\frac{1}{\eta\omega}\,\log\!\Big(1-\frac{m_\text{crit}}{c\,\|\psi\|^2}\Big).$$
#
# If the available cyclic energy grows with the number of harmonics, $\|\psi\|^2\propto p$,
# then $m_\text{crit}/(c\|\psi\|^2) = p_\text{crit}/p$ and
#
# $$\tau(\omega, p) = -\Omega\,\log\!\Big(1-\frac{p_\text{crit}}{p}\Big), \qquad \Omega = \frac{\kappa}{\eta\,\omega}.$$
#
# Two predictions follow, which we test:
#
# 1. at fixed $p$, $\tau \propto \omega^{-1}$: a log-log slope of $-1$, and
#    $\tau\,\eta\,\omega$ (the delay in units of the decay time) constant;
# 2. at fixed $\omega$, $\tau$ *decreases* with $p$, diverges as $p\downarrow p_\text{crit}$
#    (below it the network never groks) and falls like $\Omega\,p_\text{crit}/p$ for
#    $p\gg p_\text{crit}$: the paper's "inverse scaling law".
#
# The model is a caricature (one margin, one time scale), so the test is empirical: the
# exponent, the sign of the trend in $p$, and above all whether a fit on part of the grid
# predicts the rest.

# %% [markdown]
# ## Setup and speed
#
# The paper's one-layer model: one PyTorch post-LN encoder layer ($d_\text{model}=128$, 4
# heads, $d_\text{mlp}=512$, ReLU, dropout 0.1 where PyTorch puts it), learned positions and
# an untied readout with bias, in PyTorch's default initialisation, trained with AdamW
# (learning rate $10^{-3}$, weight decay on every parameter) on the paper's split of the
# $p^2$ pairs into halves, loss and accuracy at the last position (`architecture="pre-ln"`
# trains a TransformerLens-native pre-LN model of the same size instead). As in the paper
# ({ref}`sources-grokking-time`), $\tau$ is the first
# optimizer step with test accuracy $\ge 0.99$ minus the first with train accuracy
# $\ge 0.99$, measured **in steps**: the weight-decay sweep uses batches of 512 (3 steps
# per epoch at $p=53$), the modulus sweep full batches (one step per epoch, whatever $p$),
# so epochs would fake a trend in $p$.
#
# What the default changes, and why the predictions survive it:
#
# - **2 seeds per weight decay and 1 per modulus, not 12**, and **a reduced grid**: the weight
#   decays $1, 1.5, 2, 3$ (the paper's grid without $0.3$ and $0.5$, whose runs take longest,
#   since $\tau$ grows as $1/\omega$) and the moduli $43, 53, 61, 79, 101$ (without $31$,
#   whose runs took 10,000+ steps to grok at $\omega=3$ in the pre-LN models, and $89$), with
#   a step budget of 6000 steps per modulus run (every run grokked within it on seeds 0-9).
#   This keeps the chapter within its share of the book's 30 minutes on a 2-core CPU in
#   float32; `preset="paper"` runs the paper's full grid.
# - **The modulus sweep runs at $\omega = 3$, not 1.** The model predicts the same shape in
#   $p$ at any $\omega$ with $\Omega$ scaled by $1/\omega$, so this tests the same law three
#   times faster; the $\omega$ sweep checks the $1/\omega$ scaling itself.
# - **Accuracy every 10 steps, not every step**: $\tau$ is known to $\pm 10$ steps, a few
#   per cent of the delays (the most at $p=101$, whose delay is the shortest).
#
# Speed (`benchmarks/grokking_sweep.py --architecture paper`, record below): the runs of a
# setting are one stacked computation (the module's own forward, batched over runs, which a
# test checks against the module; one weight decay per run in a hand-written AdamW that a test
# checks against `torch.optim.AdamW`), each with its own batch order and dropout masks so
# that a run's result does not depend on its stack mates; the forward computes only the
# scored position; training is float32; a run leaves the stack as soon as it has grokked;
# two processes train in parallel, the slowest first: in the weight-decay sweep one run per
# stack (the two seeds of the smallest weight decay, the longest runs, side by side), in the
# modulus sweep one stack per modulus.

# %% tags=["hide-input"]
bench_name = "grokking_sweep_paper.md" if architecture == "paper" else "grokking_sweep.md"
bench = Path(gt.__file__).resolve().parents[2] / "benchmarks" / "results" / bench_name
if bench.exists():
    lines = bench.read_text().splitlines()
    display(Markdown("\n".join([f"**{lines[0].lstrip('# ')}**"] + lines[1:])))
else:
    print(f"no benchmark record (run benchmarks/grokking_sweep.py --architecture {architecture})")

# %%
# the weight-decay sweep: one run per stack, so that the two processes share the runs of a
# setting; the smallest weight decay's runs (they grok last) start first
wd_single = sorted(gt.single_runs(specs["wd"]), key=lambda s: s.omegas[0])
wd_runs, wd_cost = gt.run_sweeps(wd_single, workers=workers, device=device)
wd_runs = sorted(wd_runs, key=lambda r: (r.omega, r.seed))
print(f"weight-decay sweep: {len(wd_runs)} runs; {wd_cost['wall_s']:.0f} s for this call, "
      f"{wd_cost['train_cpu_s']:.0f} s of CPU when trained "
      f"({wd_cost['model_steps']:,} model-steps)")

# %%
# the modulus sweep, one run per stack, the larger moduli (the most CPU per step) first
p_single = gt.single_runs(sorted(specs["modulus"], key=lambda s: -s.p))
p_runs, p_cost = gt.run_sweeps(p_single, workers=workers, device=device)
p_runs = sorted(p_runs, key=lambda r: (r.p, r.seed))  # by modulus, as the specs
print(f"modulus sweep: {len(p_runs)} runs; {p_cost['wall_s']:.0f} s for this call, "
      f"{p_cost['train_cpu_s']:.0f} s of CPU when trained ({p_cost['model_steps']:,} model-steps)")
runs = wd_runs + p_runs
timing = {k: wd_cost[k] + p_cost[k] for k in ("wall_s", "train_cpu_s", "model_steps")}
not_grokked = [(r.p, r.omega, r.seed) for r in runs if r.tau is None]
print("runs that did not grok within their step budget (p, omega, seed):", not_grokked or "none")

# %% [markdown]
# ## Weight decay: the delay falls with $\omega$, on this grid faster than $1/\omega$
#
# Each point below is one run; the summary is the mean and standard deviation over the
# seeds at each $\omega$. The slope is a least-squares fit of $\log\tau$ on $\log\omega$
# over all runs, with a 95 % $t$-interval.

# %%
W = gt.summarise(wd_runs, "omega")
wd_ok = [r for r in wd_runs if r.tau is not None]
om_g = np.array([r.omega for r in wd_ok])
tau_w = np.array([r.tau for r in wd_ok], float)
fit_w = gt.fit_power_law(om_g, tau_w)
K = float(np.exp(np.mean(np.log(tau_w * om_g))))  # tau = K / omega, the theory's one-parameter form
units = gt.decay_time_units(W["mean"], LR, W["value"])
columns = zip(W["value"], W["n_grokked"], W["n"], W["mem"], W["mean"], W["std"], W["min"], W["max"],
              units)
Markdown(markdown_table(
    ["ω", "runs grokked", "memorised at step (mean)", "τ mean ± sd (steps)", "τ range",
     "τ·η·ω (decay times)"],
    [[f"{w:g}", f"{int(g)}/{int(n)}", f"{m:.0f}", f"{mu:.0f} ± {sd:.0f}", f"{lo:.0f}-{hi:.0f}",
      f"{u:.2f}"] for w, g, n, m, mu, sd, lo, hi, u in columns]))

# %%
print(f"fitted tau = {fit_w['C']:.0f} * omega^{fit_w['beta']:.3f}, 95% CI of the exponent "
      f"[{fit_w['beta_ci'][0]:.3f}, {fit_w['beta_ci'][1]:.3f}], R^2 = {fit_w['r2']:.3f} "
      f"over {fit_w['n']} runs")
print(f"one-parameter theory fit tau = K / omega: K = {K:.0f} steps, "
      f"i.e. tau * lr * omega = {K * LR:.2f} decay times")
spread = float(units.max() / units.min())

# %% tags=["hide-input"]
claims.holds("wd_sweep_groks", all(r.tau is not None for r in wd_runs), f"{len(wd_ok)}/{len(wd_runs)}", "all",
             "every run of the weight-decay sweep groks", paper="every run groks [C]")
claims.below("omega_delay_falls", round(fit_w["beta_ci"][1], 3), 0,
             "the delay falls with the weight decay: the 95% interval of the exponent of ω lies below {bound}",
             paper="τ ∝ ω^-1.02 [TS]; theory -1")
claims.between("omega_exponent_paper", round(fit_w["beta"], 3), -1.22, -0.82,
               "the paper's exponent: the fitted exponent of ω is within 0.2 of -1.02, in [{lo}, {hi}]",
               paper="-1.02 [TS]; theory -1")
claims.below("omega_exponent_steeper", round(fit_w["beta"], 3), -1,
             "what we find on this grid (ω 1 to 3): the delay falls faster than 1/ω, fitted exponent < {bound}",
             paper="-1.02 [TS], fitted over ω from 0.3 [C]")
claims.holds("omega_ci_contains_minus_one", fit_w["beta_ci"][0] <= -1 <= fit_w["beta_ci"][1],
             tuple(round(b, 3) for b in fit_w["beta_ci"]), "contains -1",
             "the theory's exponent: the 95% interval contains -1", asserted=False, paper="theory -1")
claims.below("omega_collapse", round(spread, 3), float(np.sqrt(W["value"].max() / W["value"].min())),
             "the 1/omega law collapses the delays: max/min of tau*lr*omega over the grid < sqrt(max/min omega) "
             f"(1 under the law, {W['value'].max() / W['value'].min():.0f} if tau did not depend on omega)",
             paper="τηω constant under the theory")
display(claims.ledger())
grid = ledger_rules.seed_values(OMEGA_GRID_NAME, "omega_exponent_paper", OMEGA_GRID)
grid_ci = ledger_rules.seed_values(OMEGA_GRID_NAME, "omega_ci_contains_minus_one", OMEGA_GRID)
Markdown(
    f"In this run the fitted exponent is {fit_w['beta']:.2f} (95 % interval [{fit_w['beta_ci'][0]:.2f}, "
    f"{fit_w['beta_ci'][1]:.2f}]; theory $-1$, paper $-1.02$), {over_seeds(C_FIT)} over the ten seeds of the committed "
    f"table, and memorisation itself comes later at large $\\omega$ (mean step {W['mem'][0]:.0f} at "
    f"$\\omega={W['value'][0]:g}$, {W['mem'][-1]:.0f} at $\\omega={W['value'][-1]:g}$). Over the paper's whole grid "
    "of weight decays (`omegas=[0.3, 0.5, 1, 1.5, 2, 3]`, seed 0, `results/robustness/omega-grid/`) the exponent is "
    + (f"{grid[0]:.2f} (interval [{grid_ci[0][0]:.2f}, {grid_ci[0][1]:.2f}])" if 0 in grid else "not recorded")
    + ": $\\log\\tau$ is curved in $\\log\\omega$, and the default grid samples its steep end. Asserted here is "
    "what holds on the default grid: the delay falls with $\\omega$, faster than $1/\\omega$; the paper's exponent is "
    "checked within 0.2 and reported.")

# %% [markdown]
# ## Modulus: the delay falls as $p$ grows
#
# Full batch, so one step is one epoch at every $p$. We fit the log law to the runs that
# grokked (each run one point, least squares on $\log\tau$, $0<p_\text{crit}<\min p$), and,
# model-free, a power law $\tau\propto p^{\gamma}$ whose interval says whether the trend is
# real.

# %%
Pm = gt.summarise(p_runs, "p")
p_ok = [r for r in p_runs if r.tau is not None]
p_g = np.array([r.p for r in p_ok], float)
tau_p = np.array([r.tau for r in p_ok], float)
fit_p = gt.fit_log_law(p_g, tau_p)
trend = gt.fit_power_law(p_g, tau_p)
okp = Pm["n_grokked"] > 0


Markdown(gt.modulus_table(Pm, fit_p))

# %%
budget = specs["modulus"][0].max_steps
decay_times = fit_p["Omega"] * LR * cfg["modulus_omega"]
print(f"log law: Omega = {fit_p['Omega']:.0f} steps, p_crit = {fit_p['p_crit']:.1f}, "
      f"R^2 = {fit_p['r2']:.3f} (log tau), {fit_p['r2_linear']:.3f} (tau); "
      f"Omega * lr * omega = {decay_times:.2f} decay times")
better = "better" if trend["r2"] > fit_p["r2"] else "worse"
print(f"trend: tau ~ p^{trend['beta']:.2f}, 95% CI [{trend['beta_ci'][0]:.2f}, "
      f"{trend['beta_ci'][1]:.2f}], R^2 = {trend['r2']:.3f} (log tau): a plain power law fits "
      f"{better} than the log law")
never = sorted({r.p for r in p_runs if r.tau is None})
print(f"moduli with runs that did not grok within {budget} steps: {never or 'none'}")

# %% tags=["hide-input"]
claims.below("p_delay_falls", tuple(round(b, 2) for b in trend["beta_ci"]), 0,
             "tau decreases with p: the 95% interval of the exponent of p is below {bound}",
             paper="decreasing, ~1/p for p ≫ p_crit [TS]")
claims.at_least("log_law_r2", round(fit_p["r2"], 3), 0.8, "the log law fits the grokked runs: R^2 of log tau >= {bound}",
                paper="the law τ = -Ω log(1 - p_crit/p) [TS][C]; its fit quality not retrieved")
claims.holds("p_sweep_groks", not never, f"{len(p_ok)}/{len(p_runs)}", "all",
             "every run of the modulus sweep groks within its step budget", paper="none reported missing [C]")
at_bound = fit_p["p_crit"] > 0.99 * Pm["value"][okp].min() if okp.any() else False
print(f"fitted p_crit {'sits at its upper bound, just below' if at_bound else 'is below'} the smallest modulus "
      f"({Pm['value'][okp].min():.0f})")
display(claims.ledger())
Markdown(f"In this run the delay falls with the modulus from {Pm['mean'][okp][0]:.0f} steps at $p={Pm['value'][okp][0]:.0f}$ "
         f"to {Pm['mean'][okp][-1]:.0f} at $p={Pm['value'][okp][-1]:.0f}$, and the log law fits that ($R^2$ = "
         f"{fit_p['r2']:.2f} on $\\log\\tau$, {over_seeds(C_R2)} over the ten seeds of the committed table) with "
         f"$p_\\text{{crit}}$ = {fit_p['p_crit']:.0f}." if okp.any() else "No run of the modulus sweep grokked.")

# %% mystnb={"figure": {"caption": "The paper's two-panel figure. Left: grokking delay \u03c4 (optimizer steps) against weight decay \u03c9 at p = 53, each run a grey dot, mean \u00b1 sd over seeds in black; red: the fitted power law; dashed: the theory's slope -1 through the data. Right: \u03c4 against the modulus p at the modulus sweep's \u03c9 (full batch); red: the fitted log law \u03c4 = -\u03a9 log(1 - p_crit/p); dotted: p_crit; moduli where no run grokked within the step budget are marked at the top.", "name": "fig-grok-time"}}
fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
a.scatter(om_g, tau_w, s=12, color="0.6", zorder=1)
mean_sd = dict(fmt="o", color="k", capsize=3, zorder=2, label="mean ± sd")
a.errorbar(W["value"], W["mean"], yerr=W["std"], **mean_sd)
ww = np.geomspace(W["value"].min() * 0.9, W["value"].max() * 1.1, 50)
a.plot(ww, fit_w["C"] * ww ** fit_w["beta"], "r-", label=f"fit: ω^{fit_w['beta']:.2f}")
a.plot(ww, K / ww, "k--", lw=1, label="theory: ω^-1")
a.set(xscale="log", yscale="log", xlabel="weight decay ω", ylabel="delay τ (optimizer steps)",
      title="p = 53, batch 512")
a.legend(fontsize=8)
b.scatter(p_g, tau_p, s=12, color="0.6", zorder=1)
b.errorbar(Pm["value"][okp], Pm["mean"][okp], yerr=Pm["std"][okp], **mean_sd)
pp = np.linspace(max(fit_p["p_crit"] * 1.02, Pm["value"].min() * 0.95), Pm["value"].max() * 1.05,
                 200)
b.plot(pp, gt.log_law(pp, fit_p["Omega"], fit_p["p_crit"]), "r-",
       label=f"fit: Ω = {fit_p['Omega']:.0f}, p_crit = {fit_p['p_crit']:.1f}")
b.axvline(fit_p["p_crit"], color="r", ls=":", lw=1)
top = max(tau_p.max(), 1) * 2
for p in never:
    b.scatter([p], [top], marker="^", color="C3", zorder=3)
    b.annotate("not grokked", (p, top), textcoords="offset points", xytext=(4, -10), fontsize=8)
b.set(xscale="log", yscale="log", xlabel="modulus p", ylabel="delay τ (optimizer steps)",
      title=f"ω = {cfg['modulus_omega']:g}, full batch")
b.legend(fontsize=8)
for ax_, ticks in ((a, W["value"]), (b, Pm["value"])):
    ax_.xaxis.set_minor_locator(plt.NullLocator())
    ax_.set_xticks(ticks, [f"{t:g}" for t in ticks])
fig.tight_layout()

# %% [markdown]
# ## Out of sample: does a fit on part of the grid predict the rest?
#
# A law is predictive if, fitted without some settings, it predicts the delay there. For
# the weight decay we fit the power law on the middle values and extrapolate to both ends
# of the grid (at the defaults from $\omega=1.5$ and $2$ to $1$ and $3$; on the paper's grid
# from the four middle values to $0.3$ and $3$); for the modulus we fit the log law without
# $p=79$ (interpolation) and $p=101$ (extrapolation). The error is the predicted minus the
# measured mean delay, relative to the measured. We fixed the bound before looking at the
# results: within 30 %.

# %%
held_w = [w for w in (min(W["value"]), max(W["value"])) if len(W["value"]) >= 4]
held_p = [p for p in (79, 101) if p in Pm["value"][okp]] if okp.sum() >= 5 else []
rows = []
if held_w:
    hw = gt.heldout_power_law(om_g, tau_w, held_w)
    rows += [(f"ω = {h:g}", "power law on the other ω", pr, me, e) for h, pr, me, e in
             zip(hw["held"], hw["predicted"], hw["measured"], hw["rel_error"])]
if held_p:
    hp = gt.heldout_log_law(p_g, tau_p, held_p)
    rows += [(f"p = {int(h)}", "log law on the other p", pr, me, e) for h, pr, me, e in
             zip(hp["held"], hp["predicted"], hp["measured"], hp["rel_error"])]
errors = np.array([r[4] for r in rows])
Markdown(markdown_table(["held out", "fitted on", "predicted τ", "measured τ (mean)", "error"],
                        [[a_, b_, f"{c_:.0f}", f"{d_:.0f}", f"{100 * e_:+.0f} %"]
                         for a_, b_, c_, d_, e_ in rows]))

# %%
err_w = np.abs(hw["rel_error"]) if held_w else np.array([])
err_p = np.abs(hp["rel_error"]) if held_p else np.array([])

# %% tags=["hide-input"]
claims.at_most("omega_heldout", None if not err_w.size else round(float(err_w.max()), 3), 0.30,
               "the omega law predicts both held-out ends of the grid within 30 % (largest |error|)",
               paper="a predictive model of grokking time [A]; held-out errors not reported")
claims.at_most("p_heldout", None if not err_p.size else round(float(err_p.max()), 3), 0.30,
               "the log law predicts the held-out moduli within 30 % (largest |error|)", asserted=False,
               paper="a predictive model of grokking time [A]; held-out errors not reported")
if held_p:
    # the law's own log-log slope between the two largest held-out moduli vs the data's
    lo_, hi_ = hp["held"][0], hp["held"][-1]
    law_slope = float(np.log(hp["predicted"][-1] / hp["predicted"][0]) / np.log(hi_ / lo_))
    data_slope = float(np.log(hp["measured"][-1] / hp["measured"][0]) / np.log(hi_ / lo_))
    print(f"between p = {lo_:.0f} and {hi_:.0f}: the fitted law falls as p^{law_slope:.2f}, the data as p^{data_slope:.2f}")
    claims.holds("p_falls_faster", data_slope < law_slope, {"data": round(data_slope, 2), "law": round(law_slope, 2)},
                 "data slope below the law's",
                 "what we find instead: at large p the delays fall faster than the log law can (data slope < law slope)",
                 paper="the log law [TS]")
display(claims.ledger())
if held_p:
    hp_sup = ledger_rules.seed_support("04_grokking_time").get(C_HP)
    display(Markdown(
        f"Between $p={lo_:.0f}$ and ${hi_:.0f}$ the fitted law falls as $p^{{{law_slope:.2f}}}$, the data as "
        f"$p^{{{data_slope:.2f}}}$ in this run, so a fit without those moduli misses them by up to "
        f"{100 * float(err_p.max()):.0f} %" + (f" (by more than 30 % on {hp_sup.runs - hp_sup.held} of the "
                                               f"{hp_sup.runs} seeds of the committed table)." if hp_sup else ".")))

# %% [markdown]
# ## Our numbers beside the paper's
#
# Paper values as collected on the {ref}`sources page <sources-grokking-time>`, with their
# source tags ({ref}`sources-tags`; [TS]: an unverified
# third-party summary; [C]: the public reference code; "not retrieved": not available to us).

# %% tags=["hide-input"]
def seed_columns(directory: Path) -> dict[str, str]:
    """The closing table's entries of one committed seed table (seeds 0-9), keyed by quantity."""
    return {
        "exponent of τ in ω [95 % CI]": f"{over_seeds(C_FIT, directory)}; interval contains -1 on "
                                        f"{held_count(C_WD, directory)}",
        "τ·η·ω (delay in decay times)": f"collapse ratio max/min {over_seeds(C_COLLAPSE, directory)} "
                                        f"(1 under the law)",
        "moduli that did not grok": f"all grokked on {held_count(C_GROK, directory)}",
        "log law Ω, p_crit, R² (log τ)": f"R² {over_seeds(C_R2, directory)}",
        "exponent of τ in p [95 % CI]": f"upper end {over_seeds(C_P, directory, pick=lambda v: v[1])}",
        "held-out prediction error (largest)": f"ω ends {over_seeds(C_HW, directory, fmt='{:.0%}')}; moduli "
                                               f"{over_seeds(C_HP, directory, fmt='{:.0%}')}",
    }


table = [
    ("model, optimizer", ("1-layer pre-LN native transformer" if architecture == "pre-ln" else
                          "1-layer post-LN encoder (the paper's module)") + ", dropout 0.1, AdamW lr 1e-3",
     "1-layer post-LN encoder", "1-layer pre-LN native transformer", "1-layer post-LN encoder, dropout 0.1, AdamW lr 1e-3 [C]"),
    ("seeds per setting", f"{cfg['n_seeds']} (ω sweep), {cfg.get('modulus_seeds') or cfg['n_seeds']} (modulus sweep)",
     "as this run, seeds 0-9", "as this run, seeds 0-9", "12 (3 in 'quick' mode) [C]"),
    ("accuracy evaluated every", f"{cfg['eval_every']} steps", "10 steps", "10 steps", "step [C]"),
    ("ω sweep grid (p = 53, batch 512)", ", ".join(f"{w:g}" for w in W["value"]), "1, 1.5, 2, 3", "1, 1.5, 2, 3",
     "0.3, 0.5, 1, 1.5, 2, 3 [C]"),
    ("exponent of τ in ω [95 % CI]", f"{fit_w['beta']:.2f} [{fit_w['beta_ci'][0]:.2f}, {fit_w['beta_ci'][1]:.2f}]", None, None, "-1.02 [TS]; theory -1"),
    ("τ·η·ω (delay in decay times)", f"{K * LR:.2f} (one-parameter fit); collapse ratio max/min {spread:.2f}", None, None,
     "not retrieved"),
    ("modulus sweep", f"p = {', '.join(str(int(p)) for p in Pm['value'])}, ω = {cfg['modulus_omega']:g}, full batch",
     "p = 43, 53, 61, 79, 101, ω = 3", "p = 43, 53, 61, 79, 101, ω = 3", "p = 31 ... 101, ω = 1, full batch [C]"),
    ("moduli that did not grok", ", ".join(map(str, never)) or "none", None, None,
     "none reported (the fit requires p_crit < min p) [C]"),
    ("log law Ω, p_crit, R² (log τ)", f"{fit_p['Omega']:.0f} steps, {fit_p['p_crit']:.1f}, {fit_p['r2']:.2f}", None, None,
     "not retrieved"),
    ("exponent of τ in p [95 % CI]", f"{trend['beta']:.2f} [{trend['beta_ci'][0]:.2f}, {trend['beta_ci'][1]:.2f}]", None, None, "≈ -1 for p ≫ p_crit [TS]"),
    ("held-out prediction error (largest)", f"{100 * np.abs(errors).max():.0f} %" if errors.size else "n/a", None, None,
     "not reported"),
]
# the committed seed tables (python -m ace_utils.book.rerun ... --seeds 0-9): this chapter's
# defaults on the paper's models, and the pre-LN models (architecture='pre-ln')
cols = [seed_columns(SEED_TABLES), seed_columns(SEED_TABLES / "pre-ln")]
table = [(q, ours, paper_m or cols[0][q], pre_ln or cols[1][q], "not run", paper)
         for q, ours, paper_m, pre_ln, paper in table]
models_name = "the paper's" if architecture == "paper" else "pre-LN"
ours_head = f"ours, {models_name} models (seed {seed})"
display(Markdown(markdown_table(["quantity", ours_head, "ours, the paper's models (seeds 0-9)",
                                 "ours, pre-LN models (seeds 0-9)", "reference code on a CPU", "paper"], table)))

# %% [markdown]
# **What differs and why.**
#
# - *Models.* The paper's one-layer model and optimizer, trained through a batched forward of
#   the module that a test checks against it; our seeds, not the reference code's, and each
#   run draws its own batch order and dropout masks. The next paragraph compares the
#   paper's models with the pre-LN ones (`architecture="pre-ln"`, fourth column; the
#   chapter's default before the paper's models had their own ten-seed table) and with the
#   paper's whole grid of weight decays.
# - *Grid.* 2 seeds per weight decay and one per modulus, four of the six weight decays (no
#   $0.3$ or $0.5$), five of the seven moduli (no 31 or 89), the modulus sweep at $\omega=3$
#   and accuracy every 10 steps, to keep the chapter within the book's time budget on a 2-core
#   CPU (see "Setup and speed");
#   `preset="paper"` runs the paper's grid (12 seeds, $\omega=1$, every step), which takes
#   hours on a CPU and was not run here. Without $p=31$ the fitted $p_\text{crit}$ is
#   bounded by 43 instead; on the pre-LN models with $p=31$ in the grid (in bfloat16), every
#   run at 31 grokked only after ~10,600 steps and $p_\text{crit}$ sat just below 31.
# - *The modulus law's shape.* Our delays fall with $p$, as the paper's law says, and rise
#   towards the smallest modulus, with $p_\text{crit}$ fitted below it. But away from
#   $p_\text{crit}$ the fall is steeper than $-\Omega\log(1-p_\text{crit}/p)$ allows (the
#   held-out section above), so the law extrapolates badly. One reason the model leaves
#   out: with a fixed train fraction the number of training pairs grows as $p^2$, and a
#   full-batch step at $p=101$ averages over 5100 pairs, at $p=43$ over 924.
# - How each claim fares over seeds 0-9 on both kinds of model is on the
#   {doc}`robustness page <../book/robustness>`.

# %% tags=["hide-input"]
PRE = SEED_TABLES / "pre-ln"
grid_tau = ledger_rules.seed_values(OMEGA_GRID_NAME, "omega_exponent_paper", OMEGA_GRID)
Markdown(
    "**The paper's models, the pre-LN models and the paper's grid** (the committed seed tables "
    "`results/robustness/04_grokking_time.csv`, `results/robustness/pre-ln/04_grokking_time.csv` and "
    "`results/robustness/omega-grid/`). The pre-LN models give shorter delays at the same settings and follow the "
    f"$1/\\omega$ law closely (exponent {over_seeds(C_FIT, PRE)}, collapse ratio {over_seeds(C_COLLAPSE, PRE)}, "
    f"held-out ends of the $\\omega$ grid missed by {over_seeds(C_HW, PRE, fmt='{:.0%}')} over their ten seeds). "
    f"On the paper's models the exponent is steeper ({over_seeds(C_FIT)}), the delay in decay times "
    f"$\\tau\\eta\\omega$ is not flat (collapse ratio {over_seeds(C_COLLAPSE)}; in this run "
    + ", ".join(f"{u:.2f}" for u in units) + " at $\\omega = " + ", ".join(f"{w:g}" for w in W["value"]) + "$), "
    f"and a power law fitted on the middle of the grid predicts both ends within 30 % on {held_count(C_HW)}. The "
    "paper's $-1.02$ (a third-party summary, unverified) comes from its full grid, $\\omega$ from 0.3. With those "
    "weight decays added (`omegas=[0.3, 0.5, 1, 1.5, 2, 3]`, `wd_max_steps=20000`, seed 0) the exponent is "
    + (f"{grid_tau[0]:.2f}" if 0 in grid_tau else "not recorded")
    + ", the paper's value, from the same models: the relation is curved rather than a power law, so the exponent "
    "depends on the range it is fitted over. The default leaves out 0.3 and 0.5 because their runs would more than "
    "double the chapter's training time. On the modulus, the log law misses the held-out moduli by more than 30 % on "
    f"{ledger_rules.seed_support('04_grokking_time').get(C_HP).runs - ledger_rules.seed_support('04_grokking_time').get(C_HP).held} "
    f"of the ten seeds of the paper's models and {ledger_rules.seed_support('04_grokking_time', PRE).get(C_HP).runs - ledger_rules.seed_support('04_grokking_time', PRE).get(C_HP).held} "
    "of the pre-LN models'.")

# %% [markdown]
# The claims of this chapter, by kind:

# %% tags=["hide-input"]
claims.overview()

# %% [markdown]
# ## Summary
#
# - A few-line model built on AdamW's decoupled weight decay gives the paper's two laws: a delay
#   $\tau \propto 1/\omega$ at fixed $p$, and a delay that falls with $p$ as
#   $-\Omega\log(1-p_\text{crit}/p)$. The model is a caricature, so the tests are empirical.
# - Every run of both sweeps groks, and the delay falls with the weight decay; on the default
#   grid ($\omega$ from 1 to 3) it falls faster than $1/\omega$, on every seed of the
#   {doc}`robustness page <../book/robustness>` (left of {numref}`fig-grok-time`). The paper's
#   exponent is checked and reported; over the paper's whole grid, one committed run of seed 0,
#   the fit gives the paper's value, because $\log\tau$ is curved in $\log\omega$.
# - Measured in decay times, $\tau\eta\omega$, the delay is not constant over the default grid,
#   as the $1/\omega$ law would have it; memorisation itself comes later at large $\omega$.
# - The delay falls with the modulus and the log law fits the sweep (right of
#   {numref}`fig-grok-time`; asserted). On most seeds, though, the delays at large $p$ fall
#   faster than the law allows, and neither law reliably predicts held-out settings within the
#   bound fixed in advance; these out-of-sample results are reported, not asserted.
# - The pre-LN models follow the $1/\omega$ law closely and show the same shape in $p$ (their
#   ten-seed table).
#
# ## Exercises
#
# 1. Run the paper's whole grid of weight decays: `papermill notebooks/04_grokking_time.ipynb
#    out.ipynb -y "omegas: [0.3, 0.5, 1, 1.5, 2, 3]" -p wd_max_steps 20000` (papermill passes
#    lists with `-y`; the committed run in `results/robustness/omega-grid/` used these settings,
#    and the chapter notes that the two small weight decays more than double its training time).
#    Is $\log\tau$ a straight line in $\log\omega$ in {numref}`fig-grok-time`? Fit the two ends
#    separately in the executed notebook:
#
#    ```python
#    low = om_g <= 1
#    print([gt.fit_power_law(om_g[m], tau_w[m])["beta"] for m in (low, ~low)])
#    ```
#
#    What does a curved relation mean for quoting one exponent, the paper's or ours?
# 2. Train the pre-LN models: `-p architecture pre-ln`. The derivation starts the margin at
#    memorisation and assumes nothing else depends on $\omega$. Compare the "memorised at step"
#    column of the $\omega$ table in both runs: could a memorisation step that grows with
#    $\omega$ explain an exponent steeper than $-1$? (Away from its defaults the chapter reports
#    its claims instead of asserting them.)
# 3. Run the modulus sweep at the paper's weight decay: `-p modulus_omega 1 -p p_max_steps 30000`
#    (the paper preset's step budget; the chapter runs at $\omega = 3$ to test the same law three
#    times faster). The model predicts the same shape with $\Omega$ scaled by $1/\omega$: is
#    $\Omega\eta\omega$, printed in decay times, the same as at $\omega = 3$, and does
#    $p_\text{crit}$ move? If a modulus does not grok within the budget, what does the law say
#    about where $p_\text{crit}$ lies?
# 4. Use more seeds: `-p n_seeds 4` (four runs per weight decay and per modulus). Does the 95 %
#    interval of the exponent of $\omega$ narrow as you would expect from more runs, and does it
#    now contain $-1$? What does the spread of $\tau$ at one setting tell you about how many
#    seeds a law of this kind needs?

# %% tags=["hide-input"]
claims.record(
    omegas=W["value"].tolist(), tau_mean_by_omega=W["mean"].tolist(), tau_sd_by_omega=W["std"].tolist(),
    moduli=Pm["value"].tolist(), tau_mean_by_p=Pm["mean"].tolist(), n_grokked_by_p=Pm["n_grokked"].tolist(),
    beta_omega=fit_w["beta"], beta_omega_ci=list(fit_w["beta_ci"]), K_steps=K,
    Omega=fit_p["Omega"], p_crit=fit_p["p_crit"], r2_log_law=fit_p["r2"], beta_p=trend["beta"], beta_p_ci=list(trend["beta_ci"]),
    heldout_rel_errors=errors.tolist(), train_cpu_s=timing["train_cpu_s"], seconds=time.perf_counter() - t_start,
)
claims.save()
