#!/usr/bin/env python
"""Mod-add training speed: the chapter-03 training path vs a plain training loop.

The work (chapter 03's setting): two 2-layer native models (d_model 128, 4 heads,
d_mlp 512) trained on a + b mod 53 (1404 training pairs, batch 512, 3 AdamW steps per
epoch, lr 1e-3, weight decay 1), loss at the last position. Every variant trains both
models for ``--epochs`` epochs from the same initial weights and is timed in the same
run (wall and CPU seconds):

* ``plain``: the straightforward loop -- model after model, ``model.original_model(x)``
  (the bridge's underlying module: full forward at both positions), loss at the last
  position, train and test accuracy evaluated after every epoch, float32.
* ``plain, bridge forward``: the same through the TransformerBridge ``model(x)``.
* ``plain, eval every 10``: the plain loop evaluating every 10th epoch.
* ``last-position forward, 1 model at a time``: ``modular.forward_last`` (layer 2, final
  LN and unembedding only at the scored position), eval every 10, float32.
* ``stacked 2 models``: the same with both models as one batched computation.
* ``stacked 2 models, bf16``: plus bfloat16 autocast (``precision="bf16"``, never a default:
  fast only with native bf16 instructions, 6-50x slower where they are emulated).
* ``chapter path``: float32, dropout 0.1, each model in its own process, two processes at a
  time (``modular.train_stacked`` on one model, as ``modular.run_models`` runs it).

The same for the paper's own models (``architecture="paper"``: post-LN PyTorch encoder
layers with dropout 0.1 and a biased readout, ``ace_utils.models.paper``):

* ``paper's module, plain``: the module trained as it is, model after model, full forward,
  train and test accuracy after every epoch (the reference code's loop).
* ``paper's module, eval every 10``: the same, evaluating every 10th epoch.
* ``paper's module, chapter path``: ``modular.train_stacked`` (the module's forward through
  ``torch.func.functional_call`` on the stacked parameters, per-model dropout streams), one
  model per process, two processes at a time.

Usage:  .venv/bin/python benchmarks/modular_training.py [--epochs 30] [--threads 1]
Writes benchmarks/results/modular_training.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads: set before importing it

import torch  # noqa: E402
import torch.nn.functional as F

import _record
from ace_utils.tasks import modular as mod


def plain_loop(run, data, epochs: int, eval_every: int, through_bridge: bool) -> None:
    """Model after model: full forward, loss at the last position, optional eval."""
    for model in mod.to_models(mod.init_stacked(run), run):
        net = model if (through_bridge or run.architecture == "paper") else model.original_model
        for p in net.parameters():
            p.requires_grad_(True)
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=run.lr, weight_decay=run.weight_decay)
        g = torch.Generator().manual_seed(0)
        n = data.train_x.shape[0]
        net.train()
        for epoch in range(1, epochs + 1):
            perm = torch.randperm(n, generator=g)
            for s in range(0, n, run.batch_size):
                idx = perm[s : s + run.batch_size]
                logits = net(data.train_x[idx])[:, -1]
                loss = F.cross_entropy(logits, data.train_y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if epoch % eval_every == 0:
                with torch.no_grad():
                    for x, y in ((data.train_x, data.train_y), (data.test_x, data.test_y)):
                        (net(x)[:, -1].argmax(-1) == y).float().mean().item()


def fast_loop(run, data, epochs: int) -> None:
    """modular.train_stacked on run.n_models stacked models (one call per group)."""
    params = mod.init_stacked(run)
    mod.train_stacked(run, data, params, start_epoch=0, end_epoch=epochs, weight_decay=run.weight_decay)


def _one_model(run, epochs: int) -> None:
    torch.set_num_threads(1)
    fast_loop(run, mod.make_data(run.p, run.train_frac, run.split_seed), epochs)


def in_processes(runs, epochs: int) -> None:
    """Each run in its own process, two at a time (the chapter's ``workers = 2``)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_one_model, runs, [epochs] * len(runs)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1, help="time each variant this many times; report the minimum")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = mod.make_data(53, 0.5, 42)
    base = mod.GrokRun(n_models=2, eval_every=10, checkpoint_epochs=())
    fp32 = replace(base, dropout=0.0)
    one = replace(fp32, n_models=1)
    one_b = replace(one, seed=base.seed + 1000)  # the second model's seed, alone
    paper = replace(base, architecture="paper")

    variants = {
        "plain (original_model, eval every epoch, fp32)": lambda: plain_loop(fp32, data, args.epochs, 1, False),
        "plain, bridge forward": lambda: plain_loop(fp32, data, args.epochs, 1, True),
        "plain, eval every 10": lambda: plain_loop(fp32, data, args.epochs, 10, False),
        "last-position forward, 1 model at a time": lambda: (fast_loop(one, data, args.epochs), fast_loop(one_b, data, args.epochs)),
        "stacked 2 models, fp32": lambda: fast_loop(fp32, data, args.epochs),
        "stacked 2 models, bf16": lambda: fast_loop(replace(fp32, precision="bf16"), data, args.epochs),
        "chapter path (fp32, dropout 0.1, one model per process, 2 processes)":
            lambda: in_processes(mod.single_runs(base), args.epochs),
        "paper's module, plain (eval every epoch, dropout 0.1)": lambda: plain_loop(paper, data, args.epochs, 1, False),
        "paper's module, eval every 10": lambda: plain_loop(paper, data, args.epochs, 10, False),
        "paper's module, chapter path (one model per process, 2 processes)":
            lambda: in_processes(mod.single_runs(paper), args.epochs),
    }
    # warm-up (first-call allocations, lazy imports) so that the first variant is not penalised
    plain_loop(replace(fp32, n_models=1), data, 2, 1, False)
    fast_loop(replace(base, n_models=1), data, 2)
    rows = []
    for name, fn in variants.items():
        best = None
        for _ in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            w, c = time.perf_counter() - w0, time.process_time() - c0
            best = (w, c) if best is None or w < best[0] else best
        rows.append({"variant": name, "wall_s_per_epoch": best[0] / args.epochs, "cpu_s_per_epoch": best[1] / args.epochs})
        print(f"{name:48s} {1000 * best[0] / args.epochs:8.1f} ms/epoch wall  {1000 * best[1] / args.epochs:8.1f} ms/epoch CPU", flush=True)
    ref = rows[0]["wall_s_per_epoch"]
    for r in rows:  # wall time: the process variant's CPU time is spent in its workers
        r["speedup_wall_vs_plain"] = ref / r["wall_s_per_epoch"]
    machine = _record.machine(args.threads, epochs_timed=args.epochs)
    lines = [
        "# Mod-add training: ms per epoch for 2 models (p = 53, batch 512, 3 steps/epoch)", "",
        f"{_record.machine_line(machine)}, {args.epochs} epochs per variant.", "",
        "| variant | wall ms/epoch | CPU ms/epoch (this process) | wall speed-up vs plain |", "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['variant']} | {1000 * r['wall_s_per_epoch']:.1f} | {1000 * r['cpu_s_per_epoch']:.1f} | {r['speedup_wall_vs_plain']:.2f}x |")
    _record.save("modular_training", {"machine": machine, "rows": rows}, lines)


if __name__ == "__main__":
    main()
