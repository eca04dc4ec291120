#!/usr/bin/env python
"""Grokking-time sweep speed: the chapter-04 path vs the same runs done the straightforward way.

The work: runs of the chapter's weight-decay sweep (1-layer native models, p = 53,
batch 512, lr 1e-3, dropout 0.1), each trained until it groks, tau measured. Every variant
trains the same runs (``--omegas`` x ``--seeds``) in the same process and is timed in the
same run (wall and CPU seconds):

* ``straightforward``: one run at a time, float32, train and test accuracy evaluated after
  every step (the paper's protocol), stopping when the run groks;
* ``one at a time, eval every 10``: the same, accuracy every 10th step;
* ``stacked, fp32``: all runs as one batched computation (each with its own weight decay,
  batch order and dropout masks), a run leaving the stack when it groks, eval every 10;
* ``chapter path``: stacked, float32 (``grokking_time.train_until_grokked`` exactly as the
  chapter calls it);
* ``stacked, bf16``: plus bfloat16 autocast (``precision="bf16"``, never a default: fast
  only with native bf16 instructions).

All variants use the last-position forward (``modular.forward_last``; its speed-up over the
full bridge forward is measured in ``benchmarks/modular_training.py``). The chapter also
trains two stacks at a time in two processes; that is not included here.

With ``--architecture paper`` the runs are the paper's one-layer post-LN model instead,
and the variants are

* ``plain module loop``: one run at a time, the ``PaperTransformer`` module itself trained
  with ``torch.optim.AdamW`` (PyTorch's dropout), accuracy every 10th step from the module
  in eval mode, stopping when the run groks: the obvious way to train it;
* ``chapter path``: ``grokking_time.train_until_grokked`` as the chapter calls it (the
  batched forward ``paper_model.stacked_last_logits``, stacked runs, eval every 10).

Usage:  .venv/bin/python benchmarks/grokking_sweep.py [--omegas 2,3] [--seeds 0,1] [--threads 1] [--architecture paper]
Writes benchmarks/results/grokking_sweep.{md,json} (grokking_sweep_paper.* for the paper's model).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads: set before importing it

import torch  # noqa: E402

import _record
from ace_utils.models.paper import PaperModelConfig, PaperTransformer
from ace_utils.tasks import grokking_time as gt
from ace_utils.tasks import modular as mod


def plain_module_run(spec: gt.SweepSpec) -> gt.RunResult:
    """One run of ``spec`` (one omega, one seed): the paper's module and torch's AdamW, the
    batch order of ``train_until_grokked``, accuracy every ``eval_every`` steps."""
    (omega,), (seed,) = spec.omegas, spec.seeds
    data = mod.make_data(spec.p, spec.train_frac, spec.split_seed)
    n = data.train_x.shape[0]
    model = PaperTransformer(PaperModelConfig(n_layers=spec.n_layers, d_model=spec.d_model, n_heads=spec.n_heads,
                                              d_mlp=spec.d_mlp, d_vocab=spec.p, dropout=spec.dropout, seed=seed))
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=omega)
    batches = torch.Generator().manual_seed(1_000_003 * seed + 17)
    order, cursor = torch.randperm(n, generator=batches), 0
    mem = grok = None

    def accuracy(x, y) -> float:
        model.eval()
        with torch.no_grad():
            acc = (model(x)[:, -1].argmax(-1) == y).float().mean().item()
        model.train()
        return acc

    step = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1_000_003 * seed + 29)
        while step < spec.max_steps and grok is None:
            if cursor >= n:
                order, cursor = torch.randperm(n, generator=batches), 0
            idx = order[cursor : cursor + spec.batch_size]
            cursor += spec.batch_size
            loss = torch.nn.functional.cross_entropy(model(data.train_x[idx])[:, -1], data.train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % spec.eval_every == 0:
                if mem is None and accuracy(data.train_x, data.train_y) >= spec.level:
                    mem = step
                if accuracy(data.test_x, data.test_y) >= spec.level:
                    grok = step
    return gt.RunResult(spec.p, omega, seed, spec.lr, mem, grok, step)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--omegas", default="2,3")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--architecture", default="pre-ln", choices=("pre-ln", "paper"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    oms = [float(x) for x in args.omegas.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    pairs = [(w, s) for w in oms for s in seeds]
    base = gt.SweepSpec(p=53, omegas=tuple(w for w, _ in pairs), seeds=tuple(s for _, s in pairs), batch_size=512,
                        max_steps=4000, eval_every=10, architecture=args.architecture)

    def one_at_a_time(precision: str, every: int):
        out = []
        for w, s in pairs:
            out += gt.train_until_grokked(replace(base, omegas=(w,), seeds=(s,), precision=precision, eval_every=every))[0]
        return out

    variants = {
        "plain module loop (one run at a time, PaperTransformer + torch AdamW, eval every 10)":
            lambda: [plain_module_run(replace(base, omegas=(w,), seeds=(s,))) for w, s in pairs],
        "chapter path (stacked_last_logits, stacked, eval every 10)": lambda: gt.train_until_grokked(base)[0],
    } if args.architecture == "paper" else {
        "straightforward (one run at a time, fp32, eval every step)": lambda: one_at_a_time("fp32", 1),
        "one run at a time, fp32, eval every 10": lambda: one_at_a_time("fp32", 10),
        "chapter path (stacked, fp32, eval every 10)": lambda: gt.train_until_grokked(base)[0],
        "stacked, bf16, eval every 10": lambda: gt.train_until_grokked(replace(base, precision="bf16"))[0],
    }
    gt.train_until_grokked(replace(base, omegas=(8.0,), seeds=(0,), max_steps=20))  # warm-up
    rows = []
    for name, fn in variants.items():
        w0, c0 = time.perf_counter(), time.process_time()
        runs = fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        taus = [r.tau for r in runs]
        rows.append({"variant": name, "wall_s": w, "cpu_s": c, "tau": taus})
        print(f"{name:60s} {w:7.1f} s wall {c:7.1f} s CPU  tau {taus}", flush=True)
    ref = rows[0]["wall_s"]
    for r in rows:
        r["speedup_wall"] = ref / r["wall_s"]
    machine = _record.machine(args.threads)
    lines = [
        f"# Grokking-time sweep: {len(pairs)} runs to grokking (p = 53, batch 512, omega {oms}, seeds {seeds}"
        + (", the paper's one-layer model)" if args.architecture == "paper" else ")"), "",
        _record.machine_line(machine) + ".", "",
        "| variant | wall s | CPU s | speed-up (wall) vs the first row | tau per run (steps) |", "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['speedup_wall']:.2f}x | {r['tau']} |")
    name = "grokking_sweep_paper" if args.architecture == "paper" else "grokking_sweep"
    _record.save(name, {"machine": machine, "omegas": oms, "seeds": seeds, "rows": rows}, lines)


if __name__ == "__main__":
    main()
