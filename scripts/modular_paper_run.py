"""Chapter 03's 'paper' preset: 20,000 epochs of mod-add training (p = 53, weight decay 1,
dropout 0.1, two seeded 2-layer models trained as one batched computation) with the
weight-decay-0 branch from epoch 900, analysed at the paper's checkpoints.

Writes ``results/modular_paper/curves.npz`` (the curves the chapter plots and asserts its
inflation claims from: see ``ace_utils.tasks.modular.curves_record``) and
``results/modular_paper/README.md`` (the exact command, date, machine, git commit and
times). ``tests/test_modular_paper.py`` retrains the first epochs and checks they match the
file exactly.

    .venv/bin/python scripts/modular_paper_run.py [--seed 0] [--n-models 2] [--out results/modular_paper]

About 70 min on one core of a 2-core AMD EPYC (1 torch thread, no GPU).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ace_utils  # noqa: E402,F401  (sets the thread env before torch starts)
import torch  # noqa: E402

from ace_utils.machine import fingerprint  # noqa: E402
from ace_utils.rerun import machine_info  # noqa: E402
from ace_utils.tasks import modular as mod  # noqa: E402
from ace_utils.training import write_bytes_atomic  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-models", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="training arithmetic (bf16 is fast only on CPUs with native bf16 instructions)")
    ap.add_argument("--out", default="results/modular_paper")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    run = mod.preset_run("paper", seed=args.seed, n_models=args.n_models, precision=args.precision)
    started = dt.datetime.now(dt.timezone.utc)
    machine = machine_info()
    # the code that runs is the code at the start (modules are imported by now)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    commit += "+dirty" if dirty else ""
    t0 = time.perf_counter()
    result = mod.run_experiment(run, progress=False)
    wall = time.perf_counter() - t0
    record = mod.curves_record(result)
    mod.save_curves(out / "curves.npz", record)
    cmd = "python scripts/modular_paper_run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = {
        "command": cmd.strip(),
        "started_utc": started.isoformat(timespec="seconds"),
        "git_commit": commit,
        "machine": machine,
        "machine_fingerprint": fingerprint(args.threads),
        "torch_threads": args.threads,
        "wall_s": round(wall, 1),
        "train_cpu_s_main": round(float(result["main"]["log"]["cpu_s"]), 1),
        "train_cpu_s_wd0": round(float(result["branch"]["log"]["cpu_s"]), 1) if result["branch"] else None,
        "run": asdict(run),
    }
    write_bytes_atomic(out / "meta.json", (json.dumps(meta, indent=1) + "\n").encode())
    print(json.dumps({k: v for k, v in meta.items() if k != "run"}, indent=1))


if __name__ == "__main__":
    main()
