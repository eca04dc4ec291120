"""Grokking time on modular addition: batched sweeps over weight decay and modulus, the
delay ``tau`` of each run, and the fits of the paper's two laws.

Explained in chapter ``04_grokking_time``. The models and data are those of
:mod:`ace_utils.tasks.modular` with one layer: ``SweepSpec.architecture = "pre-ln"`` (the
default) the TransformerLens-native pre-LN model, ``"paper"`` the paper's post-LN encoder
(:mod:`ace_utils.models.paper`); the paper's split of the ``p^2`` pairs, the loss at the last
position. This module adds

* :func:`train_until_grokked`: many runs (any mix of weight decays and seeds at one
  modulus) trained as one stacked computation, each with its own batch order and dropout
  masks (so a run's numbers do not depend on which other runs share the stack), accuracy
  evaluated every ``eval_every`` optimizer steps, and each run dropped from the stack as
  soon as it has grokked;
* :func:`delay_steps`: ``tau = step(test >= 0.99) - step(train >= 0.99)``, as the reference code
  (joshseth/cores) measures it;
* the fits of the two laws, from :mod:`ace_utils.tasks.grokking_laws` (re-exported here):
  :func:`fit_power_law` (``tau = C omega^beta`` on log-log axes, with a t-interval for
  ``beta``) and :func:`fit_log_law` (``tau(p) = -Omega log(1 - p_crit / p)``).

Optimizer. AdamW with *decoupled* weight decay, written out so that each run in the stack
has its own ``omega``: every step multiplies a run's parameters by ``1 - lr omega`` and then
applies the Adam update, exactly ``torch.optim.AdamW``'s order (a test checks equality with
``torch.optim.AdamW`` for a single run). Per step the decay rate is ``lr * omega``: the
model's time scale (:func:`decay_time_units`).
"""

from __future__ import annotations

import time
from dataclasses import astuple, dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ace_utils.book.cache import cached
from ace_utils.book.processes import map_in_processes
from ace_utils.models.device import as_device, cache_tag, synchronize, to_device
from ace_utils.models.paper import check_architecture, stacked_last_logits
from ace_utils.models.precision import autocast, check_precision
from ace_utils.models.training import Clock, Event, run_loop
from ace_utils.tasks import modular as mod
from ace_utils.tasks.grokking_laws import fit_log_law, fit_power_law, heldout_log_law, heldout_power_law, log_law

__all__ = [
    "SweepSpec",
    "RunResult",
    "init_params",
    "train_until_grokked",
    "delay_steps",
    "fit_power_law",
    "fit_log_law",
    "log_law",
    "decay_time_units",
    "harmonics",
    "cached_sweep",
    "run_sweeps",
    "summarise",
    "heldout_power_law",
    "heldout_log_law",
    "PRESETS",
    "DEFAULT_PAPER_MODELS",
    "preset_config",
    "sweep_specs",
    "single_runs",
    "merge_stacks",
    "modulus_table",
]


@dataclass(frozen=True)
class SweepSpec:
    """One stacked computation: runs ``i = 0..len(omegas)-1`` at modulus ``p``, run ``i``
    with weight decay ``omegas[i]`` and seed ``seeds[i]`` (initial weights, batch order
    and dropout masks). ``batch_size = 0`` means full batch (one step per epoch).
    ``max_steps``: a run that has not grokked by then is reported as not grokked.
    ``eval_every``: steps between accuracy evaluations (the resolution of ``tau``).
    ``precision``: ``"fp32"`` (default) or ``"bf16"`` autocast for training
    (:mod:`ace_utils.models.precision`; the paper's models train in float32 only).
    ``architecture``: ``"pre-ln"`` or ``"paper"`` (``ace_utils.models.paper.ARCHITECTURES``).
    """

    p: int = 53
    omegas: tuple[float, ...] = (1.0,)
    seeds: tuple[int, ...] = (0,)
    lr: float = 1e-3
    batch_size: int = 512
    dropout: float = 0.1
    n_layers: int = 1
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    train_frac: float = 0.5
    split_seed: int = 42
    max_steps: int = 20_000
    eval_every: int = 10
    level: float = 0.99
    precision: str = "fp32"
    architecture: str = "pre-ln"

    def __post_init__(self) -> None:
        check_precision(self.precision)
        check_architecture(self.architecture)
        if self.architecture == "paper" and self.precision != "fp32":
            raise ValueError("precision must be 'fp32' with architecture='paper'")
        if len(self.omegas) != len(self.seeds):
            raise ValueError(f"omegas ({len(self.omegas)}) and seeds ({len(self.seeds)}) must have the same length")


@dataclass
class RunResult:
    """One run of a sweep. Steps are optimizer steps (evaluated every ``eval_every``);
    ``None`` where the level was never reached. ``tau = step_grok - step_mem``."""

    p: int
    omega: float
    seed: int
    lr: float
    step_mem: int | None
    step_grok: int | None
    steps_run: int
    tau: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.tau = delay_steps(self.step_mem, self.step_grok)


def delay_steps(step_mem: int | None, step_grok: int | None) -> int | None:
    """``tau = step_grok - step_mem`` (the reference code's delay), or None if either is missing."""
    if step_mem is None or step_grok is None:
        return None
    return int(step_grok - step_mem)


def harmonics(p: int) -> int:
    """Number of Fourier harmonics of Z_p available to a rotation core, ``floor(p/2) + 1``."""
    return p // 2 + 1


def decay_time_units(steps: np.ndarray, lr: float, omega: np.ndarray) -> np.ndarray:
    """Steps in units of the weight-decay time ``1 / (lr omega)``: ``steps * lr * omega``."""
    return np.asarray(steps, float) * lr * np.asarray(omega, float)


# --------------------------------------------------------------------------- training


def _run_cfg(spec: SweepSpec) -> mod.GrokRun:
    return mod.GrokRun(p=spec.p, n_layers=spec.n_layers, d_model=spec.d_model, n_heads=spec.n_heads,
                       d_mlp=spec.d_mlp, n_models=1, dropout=spec.dropout, architecture=spec.architecture)


def init_params(spec: SweepSpec, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Stacked initial parameters (name -> (M, ...)) on ``device``, slice ``i`` = the state of
    the model of seed ``spec.seeds[i]`` (:func:`ace_utils.tasks.modular.init_stacked`)."""
    return mod.init_stacked(_run_cfg(spec), spec.seeds, device=device)


class _StackedAdamW:
    """AdamW (torch's defaults: betas 0.9/0.999, eps 1e-8) over stacked parameters with one
    decoupled weight decay per model (``omega``: (M,)); models can be dropped."""

    def __init__(self, params: dict[str, Tensor], lr: float, omega: Tensor, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.omega, self.betas, self.eps = params, lr, omega.double(), betas, eps
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        decay = (1.0 - self.lr * self.omega).float()
        for k, p in self.params.items():
            g = p.grad
            self.m[k].lerp_(g, 1 - b1)
            self.v[k].mul_(b2).addcmul_(g, g, value=1 - b2)
            p.mul_(decay.view(-1, *([1] * (p.dim() - 1))))
            denom = (self.v[k] / bc2).sqrt_().add_(self.eps)
            p.addcdiv_(self.m[k], denom, value=-self.lr / bc1)
            p.grad = None

    def keep(self, idx: Tensor) -> None:
        """Keep only the models ``idx`` (in that order)."""
        for d in (self.m, self.v):
            for k in d:
                d[k] = d[k][idx].contiguous()
        for k in list(self.params):
            self.params[k] = self.params[k].detach()[idx].contiguous().requires_grad_(True)
        self.omega = self.omega[idx]


def train_until_grokked(
    spec: SweepSpec, *, progress: bool = False, final_params: dict[int, dict[str, Tensor]] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[list[RunResult], dict]:
    """Train every run of ``spec`` until it groks (or ``max_steps``); measure its delay.

    Each run's batches are drawn from its own permutation generator (seeded by its seed)
    and its dropout masks from its own generator, so its numbers do not depend on which
    other runs share the stack. Accuracy on the train and the test pairs is evaluated
    every ``eval_every`` steps (and at step 0); a run leaves the stack at its first
    evaluation with test accuracy >= ``level``. Returns the runs' :class:`RunResult` (in the
    order of ``spec``) and timing ``{"wall_s", "cpu_s", "model_steps"}``. ``final_params``, if
    given, is filled with run ``i`` -> its parameters (name -> tensor, one model's shapes) as
    they were when it left the stack, or after the last step (on the CPU).

    Everything trains on ``device`` (the data placed there once, the dropout generators there;
    the batch orders are drawn on the CPU, the same on every device, and moved there once an
    epoch). The host reads the accuracies at each evaluation (it decides which runs leave the
    stack), never between two evaluations.
    """
    device = as_device(device)
    data = mod.make_data(spec.p, spec.train_frac, spec.split_seed).to(device)
    n = data.train_x.shape[0]
    bs = n if spec.batch_size <= 0 else spec.batch_size
    M = len(spec.seeds)
    params = {k: v.requires_grad_(True) for k, v in init_params(spec, device).items()}
    opt = _StackedAdamW(params, spec.lr, to_device(torch.tensor(spec.omegas), device))
    active = list(range(M))
    batch_gens = [torch.Generator().manual_seed(1_000_003 * s + 17) for s in spec.seeds]
    drop_gens = [torch.Generator(device=device).manual_seed(1_000_003 * s + 29) for s in spec.seeds]
    # the paper's models: the modules' batched forward (stacked_last_logits, which a test
    # checks against the module), dropout masks from the runs' own generators
    forward = stacked_last_logits if spec.architecture == "paper" else mod.forward_last
    orders = [to_device(torch.randperm(n, generator=g), device) for g in batch_gens]
    cursor = 0  # position in the current epoch (the same for every run)
    mem: list[int | None] = [None] * M
    grok: list[int | None] = [None] * M
    steps_run = [spec.max_steps] * M
    clock = Clock()
    model_steps = 0

    @torch.no_grad()
    def accuracy(params: dict[str, Tensor], x: Tensor, y: Tensor) -> np.ndarray:
        logits = forward(params, x.expand(len(active), -1, -1), spec.n_heads)
        return (logits.argmax(-1) == y).float().mean(1).cpu().numpy().astype(float)

    def evaluate(step: int) -> None:
        nonlocal active
        tr, te = (accuracy(opt.params, x, y) for x, y in ((data.train_x, data.train_y), (data.test_x, data.test_y)))
        done = []
        for j, i in enumerate(active):
            if mem[i] is None and tr[j] >= spec.level:
                mem[i] = step
            if grok[i] is None and te[j] >= spec.level:
                grok[i] = step
                steps_run[i] = step
                done.append(j)
        if done:
            if final_params is not None:
                for j in done:
                    final_params[active[j]] = {k: v[j].detach().cpu().clone() for k, v in opt.params.items()}
            keep = [j for j in range(len(active)) if j not in done]
            active = [active[j] for j in keep]
            if keep:
                opt.keep(torch.tensor(keep))

    def update(step: int) -> None:
        nonlocal orders, cursor, model_steps
        if cursor >= n:  # new epoch: fresh permutations
            orders = [to_device(torch.randperm(n, generator=g), device) for g in batch_gens]
            cursor = 0
        idx = torch.stack([orders[i][cursor : cursor + bs] for i in active]) if bs < n else None
        cursor += bs
        x = data.train_x[idx] if idx is not None else data.train_x.expand(len(active), -1, -1)
        y = data.train_y[idx] if idx is not None else data.train_y.expand(len(active), -1)
        with autocast(spec.precision, device.type):
            logits = forward(opt.params, x, spec.n_heads, spec.dropout, [drop_gens[i] for i in active])
        loss = F.cross_entropy(logits.float().reshape(-1, spec.p), y.reshape(-1))
        (loss * len(active)).backward()
        opt.step()
        model_steps += len(active)

    evaluate(0)
    run_loop(update, start=0, stop=spec.max_steps, events=[Event(evaluate, every=spec.eval_every)],
             until=lambda: not active, clock=clock, progress=progress, desc=f"p={spec.p}")
    if final_params is not None:
        for j, i in enumerate(active):
            final_params[i] = {k: v[j].detach().cpu().clone() for k, v in opt.params.items()}
    results = [RunResult(spec.p, float(spec.omegas[i]), int(spec.seeds[i]), spec.lr, mem[i], grok[i], steps_run[i])
               for i in range(M)]
    synchronize(device)
    wall, cpu = clock.total()
    return results, {"wall_s": wall, "cpu_s": cpu, "model_steps": model_steps}


# --------------------------------------------------------------------------- sweeps

CACHE_VERSION = 2

# The chapter's presets. 'default' fits the budgets of a 2-core AVX2 CPU in float32
# (chapter 04 within 8 minutes, the whole book within 30): the paper's weight decays
# from 1 to 3 with 2 seeds each (without 0.3 and 0.5, whose runs take longest: tau grows
# as 1/omega), and the modulus sweep at omega = 3 (where the law predicts the same shape
# in p with Omega three times smaller) over five of the paper's moduli, without 31
# (10,000+ steps to grok at omega = 3) and 89, one seed each. 'paper' is the paper's grid
# (12 seeds, omega = 1 for the modulus sweep, evaluation after every step).
PRESETS = {
    "default": dict(n_seeds=2, modulus_seeds=1, omegas=(1.0, 1.5, 2.0, 3.0), moduli=(43, 53, 61, 79, 101),
                    modulus_omega=3.0, wd_max_steps=8000, p_max_steps=15000, eval_every=10),
    "paper": dict(n_seeds=12, omegas=(0.3, 0.5, 1.0, 1.5, 2.0, 3.0), moduli=(31, 43, 53, 61, 79, 89, 101),
                  modulus_omega=1.0, wd_max_steps=20000 * 3, p_max_steps=30000, eval_every=1),
}

# The default grid on the paper's one-layer post-LN model (the chapter's default), whose
# steps cost about twice the native model's here and whose delays are longer (2-core AMD
# EPYC, AVX2 kernels, float32, seed 0: at omega = 3, full batch, tau = 840, 540, 540, 360,
# 180 steps at p = 43, 53, 61, 79, 101; at p = 53, batch 512, tau = 1630-1780 steps at
# omega = 1): weight decays 1 to 3 with 2 seeds and the five moduli with one seed each (the
# default grid), with a shorter step budget for the modulus sweep (every run of seeds 0-9
# grokked within it). The chapter took 355-434 s per seed there (results/robustness/).
DEFAULT_PAPER_MODELS = dict(n_seeds=2, modulus_seeds=1, omegas=(1.0, 1.5, 2.0, 3.0), moduli=(43, 53, 61, 79, 101),
                            modulus_omega=3.0, wd_max_steps=8000, p_max_steps=6000, eval_every=10)


def preset_config(preset: str, architecture: str = "pre-ln") -> dict:
    """The sweep settings of ``preset`` (``"default"`` or ``"paper"``) for ``architecture``:
    keyword arguments of :func:`sweep_specs` without ``seed``. The paper's models at the
    default preset get :data:`DEFAULT_PAPER_MODELS`."""
    check_architecture(architecture)
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    return dict(DEFAULT_PAPER_MODELS if (preset, architecture) == ("default", "paper") else PRESETS[preset])


def sweep_specs(*, seed: int, n_seeds: int, modulus_seeds: int | None = None, omegas: Sequence[float], moduli: Sequence[int], modulus_omega: float,
                wd_max_steps: int, p_max_steps: int, eval_every: int, wd_p: int = 53, wd_batch: int = 512,
                lr: float = 1e-3, dropout: float = 0.1, precision: str = "fp32",
                architecture: str = "pre-ln") -> dict[str, list[SweepSpec]]:
    """The stacks of the two sweeps (the reference code's grids: book/sources.md). Seeds ``1000 seed + j``,
    j < ``n_seeds`` in the weight-decay sweep and j < ``modulus_seeds`` (default ``n_seeds``) in the modulus sweep.

    ``"wd"``: p = ``wd_p``, batch ``wd_batch``, one stack per weight decay, smallest (slowest)
    first; ``"modulus"``: full batch at ``modulus_omega``, one stack per modulus, smallest
    first.
    """
    seeds = tuple(1000 * seed + j for j in range(n_seeds))
    p_seeds = tuple(1000 * seed + j for j in range(n_seeds if modulus_seeds is None else modulus_seeds))
    om = sorted(float(w) for w in omegas)
    common = dict(lr=lr, dropout=dropout, eval_every=eval_every, precision=precision, architecture=architecture)
    wd = [SweepSpec(p=wd_p, omegas=(w,) * len(seeds), seeds=seeds, batch_size=wd_batch, max_steps=wd_max_steps,
                    **common) for w in om]
    mods = [SweepSpec(p=int(p), omegas=(float(modulus_omega),) * len(p_seeds), seeds=p_seeds, batch_size=0,
                      max_steps=p_max_steps, **common) for p in sorted(moduli)]
    return {"wd": wd, "modulus": mods}


def single_runs(specs: Sequence[SweepSpec]) -> list[SweepSpec]:
    """Each run of ``specs`` as a stack of its own (same settings, one omega and one seed), in
    order. A run's numbers do not depend on its stack mates, so this changes no result; it
    lets worker processes share the runs of one setting."""
    return [replace(s, omegas=(w,), seeds=(seed,)) for s in specs for w, seed in zip(s.omegas, s.seeds)]


def _result_payload(out: tuple[list[RunResult], dict]) -> dict:
    runs, timing = out
    return {"runs": [{k: getattr(r, k) for k in ("p", "omega", "seed", "lr", "step_mem", "step_grok", "steps_run")}
                     for r in runs], "timing": timing}


def _result_load(payload: dict) -> tuple[list[RunResult], dict]:
    return [RunResult(**r) for r in payload["runs"]], payload["timing"]


def cached_sweep(spec: SweepSpec, device: str | torch.device = "cpu") -> tuple[list[RunResult], dict]:
    """:func:`train_until_grokked` on ``device``, cached under ``grok-time`` keyed by the spec
    (and the device kind, off the CPU)."""
    from dataclasses import asdict

    key = {"task": "grok-time", "version": CACHE_VERSION, "torch": torch.__version__, "spec": asdict(spec),
           **cache_tag(device)}
    return cached(key, lambda: train_until_grokked(spec, device=device), name="grok-time", save=_result_payload,
                  load=_result_load)


def _sweep_in_worker(spec: SweepSpec, device: str = "cpu") -> tuple[list[RunResult], dict]:
    torch.set_num_threads(1)
    return cached_sweep(spec, device)


def merge_stacks(specs: Sequence[SweepSpec]) -> tuple[list[SweepSpec], list[list[int]]]:
    """The stacks of ``specs`` that differ only in their runs (omegas and seeds) merged into one
    stack each, in order of first appearance; and, per merged stack, the indices of the specs
    it holds. A run's numbers do not depend on its stack mates (its own batch order and
    dropout generators), so merging changes no result up to round-off; it runs a device's
    many small runs as one batched computation."""
    merged: dict[tuple, list[int]] = {}
    for i, s in enumerate(specs):
        merged.setdefault(astuple(replace(s, omegas=(), seeds=())), []).append(i)
    stacks = [replace(specs[idx[0]], omegas=tuple(w for i in idx for w in specs[i].omegas),
                      seeds=tuple(x for i in idx for x in specs[i].seeds)) for idx in merged.values()]
    return stacks, list(merged.values())


def run_sweeps(specs: Sequence[SweepSpec], workers: int = 2, first: Sequence[int] = (),
               device: str | torch.device = "cpu", merged: bool | None = None) -> tuple[list[RunResult], dict]:
    """Run (or read from the cache) every stack, ``workers`` at a time in fresh processes
    with one torch thread each, started in the order given except that the stacks with
    indices ``first`` start first (pass the longest, so the workers finish together). Results are identical to running them in
    one process. Returns all runs (in the order of ``specs``) and ``{"wall_s", "cpu_s",
    "model_steps"}`` summed over the stacks (the CPU time the stacks took when they were
    trained, cached or not). With ``merged`` (default: off the CPU) the stacks that differ
    only in their runs train as one stack on ``device`` (:func:`merge_stacks`), one stack after
    another in this process.
    """
    device = as_device(device)
    t0 = time.perf_counter()
    if device.type != "cpu" if merged is None else merged:
        stacks, members = merge_stacks(specs)
        done = [cached_sweep(st, device) for st in stacks]
        by_spec: dict[int, list[RunResult]] = {}
        for (stack_runs, _), idx in zip(done, members):
            pos = 0
            for i in idx:
                by_spec[i] = stack_runs[pos:pos + len(specs[i].seeds)]
                pos += len(specs[i].seeds)
        runs = [r for i in range(len(specs)) for r in by_spec[i]]
        return runs, {"wall_s": time.perf_counter() - t0, "train_cpu_s": sum(t["cpu_s"] for _, t in done),
                      "model_steps": sum(t["model_steps"] for _, t in done)}
    order = [i for i in first if 0 <= i < len(specs)] + [i for i in range(len(specs)) if i not in first]
    outs = dict(zip(order, map_in_processes(_sweep_in_worker, ([specs[i] for i in order], [str(device)] * len(order)),
                                            workers if device.type == "cpu" else 1)))
    runs = [r for i in range(len(specs)) for r in outs[i][0]]
    timing = {"wall_s": time.perf_counter() - t0,
              "train_cpu_s": sum(outs[i][1]["cpu_s"] for i in outs),
              "model_steps": sum(outs[i][1]["model_steps"] for i in outs)}
    return runs, timing


def summarise(runs: Sequence[RunResult], by: str) -> dict[str, np.ndarray]:
    """Per value of ``by`` (``"omega"`` or ``"p"``): ``value``, ``n`` runs, ``n_grokked``,
    and over the grokked runs the ``mean``, ``std`` (ddof 1; 0 for one run), ``min``,
    ``max`` of tau and the mean ``step_mem``."""
    vals = sorted({getattr(r, by) for r in runs})
    out = {k: [] for k in ("value", "n", "n_grokked", "mean", "std", "min", "max", "mem")}
    for v in vals:
        rs = [r for r in runs if getattr(r, by) == v]
        taus = np.array([r.tau for r in rs if r.tau is not None], float)
        mems = np.array([r.step_mem for r in rs if r.step_mem is not None], float)
        out["value"].append(v)
        out["n"].append(len(rs))
        out["n_grokked"].append(taus.size)
        out["mean"].append(taus.mean() if taus.size else np.nan)
        out["std"].append(taus.std(ddof=1) if taus.size > 1 else 0.0 if taus.size else np.nan)
        out["min"].append(taus.min() if taus.size else np.nan)
        out["max"].append(taus.max() if taus.size else np.nan)
        out["mem"].append(mems.mean() if mems.size else np.nan)
    return {k: np.asarray(v, float) for k, v in out.items()}


def modulus_table(summary: dict[str, np.ndarray], fit: dict) -> str:
    """The modulus sweep as a Markdown table, one row per modulus: harmonics, runs grokked,
    memorisation step, delay mean ± sd and range (steps), and the fitted log law's delay there.
    ``summary``: :func:`summarise` by ``"p"``; ``fit``: :func:`fit_log_law`."""
    rows = []
    for p, g, n, m, mu, sd, lo, hi in zip(summary["value"], summary["n_grokked"], summary["n"], summary["mem"],
                                          summary["mean"], summary["std"], summary["min"], summary["max"]):
        taus = f"{mu:.0f} ± {sd:.0f} | {lo:.0f}-{hi:.0f}" if g else "not grokked | -"
        law = f"{log_law(p, fit['Omega'], fit['p_crit']):.0f}" if p > fit["p_crit"] else "∞ (p ≤ p_crit)"
        rows.append(f"| {int(p)} | {harmonics(int(p))} | {int(g)}/{int(n)} | {m:.0f} | {taus} | {law} |")
    return ("| p | harmonics ⌊p/2⌋+1 | runs grokked | memorised at step (mean) | τ mean ± sd (steps) | τ range | log law |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows))
