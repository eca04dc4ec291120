#!/usr/bin/env python
"""The CPU path before and after a change of the training code: same work, same run, interleaved.

The package's training and analysis code takes a ``device``; on the CPU (the default, where the
book's claims are made) it must run the program it ran before, no slower. This script times
the CPU path of two versions of ``ace_utils``: the working tree and a git revision
(``--base``, extracted with ``git archive`` into a temporary folder). Each workload runs in a
fresh subprocess with one torch thread, importing ``ace_utils`` from one of the two trees; the
two versions alternate (base, new, new, base, ...) so that both see the same load on a shared
machine. The workloads are the CPU paths the chapters run:

* ``mod-add``: ``modular.run_main`` of one paper's model (chapter 03's one-model process,
  p = 53), ``--epochs`` epochs with accuracy every 10 and three checkpoint analyses;
* ``grok-time``: ``grokking_time.train_until_grokked`` of a stack of two paper's one-layer
  models, 300 steps (chapter 04);
* ``markov``: ``markov.train_markov_model`` of one paper's model at chapter 01's default
  preset (470 steps), then ACE and one intervention (chapters 01, 02);
* ``agreement``: ``agreement.train_agreement_model`` of a 2-layer, d_model-64 GPT-2 model for
  150 steps (chapter 05).

Each workload also hashes its numbers (parameters, logs, analyses); the script checks that both
versions give the same hash, i.e. the CPU numbers did not change.

Usage:  .venv/bin/python benchmarks/device_cpu_path.py --base <git revision> [--rounds 3] [--epochs 60]
Writes benchmarks/results/device_cpu_path.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import _record  # noqa: E402  (imports torch; the runs it times get OMP_WAIT_POLICY=PASSIVE below)

ROOT = Path(__file__).resolve().parents[1]

WORKLOAD = r'''
import hashlib, json, os, sys, tempfile, time
os.environ["ACE_BOOK_CACHE"] = tempfile.mkdtemp(prefix="bench-cache-")
os.environ["HF_HUB_OFFLINE"] = "1"
import ace_utils
import numpy as np, torch
torch.set_num_threads(1)
name, epochs = sys.argv[1], int(sys.argv[2])

def digest(obj):
    h = hashlib.sha256()
    def feed(o):
        if isinstance(o, dict):
            for k in sorted(o):
                if not str(k).endswith("_s"):
                    h.update(str(k).encode()); feed(o[k])
        elif isinstance(o, (list, tuple)):
            for v in o: feed(v)
        elif isinstance(o, torch.Tensor):
            h.update(o.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(o, np.ndarray):
            h.update(np.ascontiguousarray(o).tobytes())
        else:
            h.update(repr(o).encode())
    feed(obj)
    return h.hexdigest()[:16]

if name == "mod-add":
    from ace_utils.tasks import modular as mod
    run = mod.GrokRun(architecture="paper", n_models=1, epochs=epochs, eval_every=10,
                      checkpoint_epochs=(0, epochs // 2, epochs), branch_epoch=0)
    mod.make_data(run.p)
    t0, c0 = time.perf_counter(), time.process_time()
    out = mod.run_main(run)
    result = [out["main"], out["final_params"]]
elif name == "grok-time":
    from ace_utils.tasks import grokking_time as gt
    spec = gt.SweepSpec(p=53, omegas=(1.0, 2.0), seeds=(0, 1), max_steps=300, eval_every=10, architecture="paper")
    t0, c0 = time.perf_counter(), time.process_time()
    final = {}
    runs, _ = gt.train_until_grokked(spec, final_params=final)
    result = [[(r.step_mem, r.step_grok) for r in runs], [final[i] for i in sorted(final)]]
elif name == "markov":
    from ace_utils.tasks import markov as mk
    data = mk.make_data(mk.lazy_cycle())
    run = mk.chapter_runs(0, 1)[0]
    t0, c0 = time.perf_counter(), time.process_time()
    model = mk.train_markov_model(run, data, progress=False)
    res, H = mk.markov_core(model, data)
    acc = mk.intervention_accuracy(model, data, res.core(3), "remove")
    result = [model.state_dict(), res.basis, res.rank, acc]
elif name == "agreement":
    from ace_utils.tasks import agreement as ag
    run = ag.AgreementRun(n_layers=2, d_model=64, steps=150, n_sentences=4000)
    t0, c0 = time.perf_counter(), time.process_time()
    tm = ag.train_agreement_model(run)
    result = [tm.state_dict, tm.losses]
else:
    raise SystemExit(f"unknown workload {name}")
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"file": ace_utils.__file__, "wall_s": wall, "cpu_s": cpu, "hash": digest(result)}))
'''

WORKLOADS = ("mod-add", "grok-time", "markov", "agreement")


def extract(rev: str, into: Path) -> str:
    """``git archive rev`` unpacked into ``into``; returns the full commit id."""
    commit = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    archive = into / "tree.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "archive", commit], cwd=ROOT, stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return commit


def run_once(tree: Path, name: str, epochs: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_WAIT_POLICY="PASSIVE")
    out = subprocess.run([sys.executable, "-c", WORKLOAD, name, str(epochs)], env=env, capture_output=True, text=True,
                         cwd=tempfile.gettempdir())
    if out.returncode:
        raise RuntimeError(f"{name} under {tree} failed:\n{out.stderr[-3000:]}")
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    if not rec["file"].startswith(str(tree)):
        raise RuntimeError(f"{name}: imported {rec['file']}, not the tree {tree}")
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="git revision whose CPU path is the baseline")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=60, help="epochs of the mod-add workload")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    args = ap.parse_args()
    names = args.workloads.split(",")
    with tempfile.TemporaryDirectory(prefix="device-cpu-path-") as tmp:
        base_commit = extract(args.base, Path(tmp))
        trees = {"base": Path(tmp) / "tree", "new": ROOT}
        times: dict[str, dict[str, list]] = {n: {"base": [], "new": []} for n in names}
        hashes: dict[str, dict[str, set]] = {n: {"base": set(), "new": set()} for n in names}
        for r in range(args.rounds):
            for name in names:
                for which in (("base", "new") if r % 2 == 0 else ("new", "base")):
                    rec = run_once(trees[which], name, args.epochs)
                    times[name][which].append((rec["wall_s"], rec["cpu_s"]))
                    hashes[name][which].add(rec["hash"])
                    print(f"round {r + 1} {name:10s} {which:4s} {rec['wall_s']:7.2f} s wall {rec['cpu_s']:7.2f} s CPU "
                          f"{rec['hash']}", flush=True)
    rows = []
    for name in names:
        med = {w: (statistics.median(t[0] for t in times[name][w]), statistics.median(t[1] for t in times[name][w]))
               for w in ("base", "new")}
        rows.append({"workload": name, "base_wall_s": med["base"][0], "new_wall_s": med["new"][0],
                     "base_cpu_s": med["base"][1], "new_cpu_s": med["new"][1],
                     "ratio_wall": med["new"][0] / med["base"][0], "ratio_cpu": med["new"][1] / med["base"][1],
                     "same_numbers": hashes[name]["base"] == hashes[name]["new"] and len(hashes[name]["new"]) == 1,
                     "runs": times[name]})
    machine = _record.machine(1, base=base_commit)
    lines = [f"# The CPU path before ({base_commit[:7]}) and after (the working tree), interleaved in one run", "",
             _record.machine_line(machine) + f"; {args.rounds} rounds, medians.", "",
             "| workload | before: wall s | after: wall s | after / before (wall) | before: CPU s | after: CPU s "
             "| after / before (CPU) | same numbers |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['base_wall_s']:.2f} | {r['new_wall_s']:.2f} | {r['ratio_wall']:.3f} "
                     f"| {r['base_cpu_s']:.2f} | {r['new_cpu_s']:.2f} | {r['ratio_cpu']:.3f} "
                     f"| {'yes' if r['same_numbers'] else 'NO'} |")
    _record.save("device_cpu_path", {"machine": machine, "base": base_commit, "rounds": args.rounds,
                                     "epochs": args.epochs, "rows": rows}, lines)
    if not all(r["same_numbers"] for r in rows):
        raise SystemExit("the CPU numbers changed")


if __name__ == "__main__":
    main()
