"""Chapter 03's 'paper' preset: 20,000 epochs of mod-add training (p = 53, weight decay 1,
dropout 0.1, the paper's three seeded 2-layer models) with the weight-decay-0 branch from epoch 900,
analysed at the paper's checkpoints. Resumable: the run is trained in segments and its
whole state (parameters, optimizer moments, dropout RNG states, logs, analyses) is written
to ``--state`` after each; if the command is interrupted, run it again and it continues
from the last finished segment, with the same numbers as an uninterrupted run.

When the run is complete it writes ``<out>/curves.npz`` (the curves chapter 03 plots and
asserts its inflation claims from: ``ace_utils.tasks.modular.curves_record``) and
``<out>/meta.json`` (the command, the run, and one entry per call: start, machine, git
commit, wall and CPU time, epochs reached). ``tests/test_modular_paper.py`` retrains the
first epochs and checks them against the file.

    .venv/bin/python scripts/modular_paper_run.py [--architecture paper] [--seed 0] [--n-models 3]
        [--out results/modular_paper_models] [--state PATH] [--segment-epochs 500] [--max-segments N]

``--architecture pre-ln --n-models 2`` is the TransformerLens-native run committed under
``results/modular_paper`` (made in one uninterrupted call before this script resumed runs).
The paper's models cost about 0.15-0.2 s per epoch and model on one core of a 2-core CPU:
about 1 hour per model for the main run and as much for the branch when the models train one
after another in this process (``--jobs 1``, one torch thread, the state in ``--state``). With
``--jobs N`` (N > 1) each model is a Dask task on N local worker processes, or on the cluster
at ``--scheduler ADDRESS``, with its own resumable state in the ace-book cache
(:func:`ace_utils.tasks.modular.run_models_resumable`; a model's numbers do not depend on how
many train at once): on 2 cores two models take about half the time. A run keeps the mode
it was started with (``meta.json`` records it). In that mode a finished run can be given more
models (``--n-models`` larger than the recorded run's, same ``--out``): the earlier models are
read from their finished states and only the added ones train.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ace_utils  # noqa: E402,F401  (sets the thread env before torch starts)
import torch  # noqa: E402

from ace_utils.book.machine import fingerprint, machine_info  # noqa: E402
from ace_utils.models.paper import ARCHITECTURES  # noqa: E402
from ace_utils.tasks import modular as mod  # noqa: E402
from ace_utils.book.cache import cache_dir, write_bytes_atomic  # noqa: E402


def _git_commit() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return commit + ("+dirty" if dirty else "")


def _adds_models(recorded: dict, wanted: dict, parallel: bool) -> bool:
    """Whether ``wanted`` is the ``recorded`` run with more models, trained as separate tasks:
    its first models are then the recorded ones (same seeds, same resumable states) and only
    the added models train."""
    return parallel and wanted["n_models"] > recorded["n_models"] and {**recorded, "n_models": wanted["n_models"]} == wanted


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--architecture", choices=ARCHITECTURES, default="paper")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-models", type=int, default=3,
                    help="models, seeded seed + 1000 i (the paper trains 3); with --jobs > 1, a finished run's "
                         "--out can be given more models: the earlier ones are read from their states")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="training arithmetic of pre-LN models (bf16 is fast only with native bf16 instructions)")
    ap.add_argument("--out", default="results/modular_paper_models")
    ap.add_argument("--state", default=None, help="the resumable state file (default: in the ace-book cache)")
    ap.add_argument("--segment-epochs", type=int, default=500, help="epochs between two saves of the state")
    ap.add_argument("--max-segments", type=int, default=None, help="stop after this many segments (continue later)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="1: the models one after another in this process; N > 1: each model a Dask task, N at a time")
    ap.add_argument("--scheduler", default=None, help="with --jobs > 1: the address of a running Dask scheduler")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.jobs > 1 and args.state:
        ap.error("--state is for --jobs 1; with --jobs > 1 every model keeps its state in the ace-book cache")
    if args.scheduler and args.jobs == 1:
        ap.error("--scheduler needs --jobs > 1 (the models as Dask tasks)")
    if args.scheduler:
        os.environ["ACE_BOOK_SCHEDULER"] = args.scheduler
    parallel = args.jobs > 1
    torch.set_num_threads(args.threads)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    run = mod.preset_run("paper", seed=args.seed, n_models=args.n_models, precision=args.precision,
                         architecture=args.architecture)
    state = Path(args.state) if args.state else cache_dir() / "modular_long" / f"{args.architecture}-seed{args.seed}.pt"
    state.parent.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    this_run = json.loads(json.dumps(run.to_dict()))
    if meta.get("run") not in (None, this_run) and not _adds_models(meta["run"], this_run, parallel):
        raise SystemExit(f"{meta_path} describes another run; choose another --out")
    if meta.get("models_as_tasks", parallel) != parallel:
        raise SystemExit(f"{meta_path} is a run started with --jobs {'> 1' if meta['models_as_tasks'] else '1'}; "
                         "continue it the same way (the two keep their states in different places)")
    started = dt.datetime.now(dt.timezone.utc)
    commit = _git_commit()  # the code that runs is the code at the start (modules are imported by now)
    t0, c0 = time.perf_counter(), time.process_time()
    if parallel:
        result = mod.run_models_resumable(run, workers=args.jobs, segment_epochs=args.segment_epochs,
                                          max_segments=args.max_segments)
        states = [torch.load(mod.resumable_path(r), weights_only=False) for r in mod.single_runs(run)]
        order = {"main": 0, "branch": 1, "done": 2}
        saved = min(states, key=lambda st: (order[st["stage"]], st["epoch"]))  # the model furthest behind
    else:
        result = mod.run_experiment_resumable(run, state, segment_epochs=args.segment_epochs,
                                              max_segments=args.max_segments)
        saved = torch.load(state, weights_only=False)
    call = {
        "started_utc": started.isoformat(timespec="seconds"),
        "git_commit": commit,
        "machine": machine_info(),
        "machine_fingerprint": fingerprint(args.threads),
        "torch_threads": args.threads if not parallel else 1,
        "jobs": args.jobs,
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
        "reached": f"{saved['stage']} epoch {saved['epoch']}",
    }
    cmd = "python scripts/modular_paper_run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    call.update(command=cmd.strip(), n_models=args.n_models)
    meta = {
        "command": cmd.strip(),
        "note": "resumable run: one entry in 'calls' per invocation of the command; every model keeps its own "
                "state, so a call with more models than the earlier calls trains only the added ones",
        "calls": meta.get("calls", []) + [call],
        "run": run.to_dict(),
        "models_as_tasks": parallel,
    }
    if result is not None:
        mod.save_curves(out / "curves.npz", mod.curves_record(result))
        meta["wall_s"] = round(sum(c["wall_s"] for c in meta["calls"]), 1)
        meta["train_cpu_s"] = round(float(result["train_cpu_s"]), 1)
    write_bytes_atomic(meta_path, (json.dumps(meta, indent=1) + "\n").encode())
    print(json.dumps({k: v for k, v in meta.items() if k != "run"}, indent=1))
    if result is None:
        print(f"unfinished ({call['reached']}): run the same command again to continue")


if __name__ == "__main__":
    main()
