"""Chapter 07's modular-addition study: the paper's models with one design choice changed.

For every setting of ``ace_utils.tasks.architecture.MODADD_SETTINGS`` (or those named with
``--settings``) this trains chapter 03's default run (p = 53, 2-layer models seeded
``seed`` and ``seed + 1000``, 1000 epochs, weight decay 1, analysed every 50 epochs) with
that setting's change, and writes ``<out>/modadd-<setting>.npz`` (the main run's curves,
``ace_utils.tasks.modular.curves_record``) and an entry in ``<out>/meta.json`` (the run, the
command, the machine, the git commit, wall and CPU time). The models train as Dask tasks,
``--jobs`` at a time, one process and one torch thread each (``--scheduler ADDRESS`` uses a
running cluster instead); every model is a resumable run whose state is saved every
``--segment-epochs`` in the ace-book cache, so an interrupted call continues where it
stopped when the same command is run again. Settings already written with the same run are
skipped. About 450 s of one core per model on a 2-core Intel Xeon, 2 models per setting.

    .venv/bin/python scripts/architecture_study.py [--settings paper pre-ln ...] [--seed 0]
        [--jobs 2] [--scheduler ADDRESS] [--out results/architecture] [--segment-epochs 250]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ace_utils  # noqa: E402,F401  (sets the thread env before torch starts)
from ace_utils.book.cache import write_bytes_atomic  # noqa: E402
from ace_utils.book.cluster import SCHEDULER_ENV  # noqa: E402
from ace_utils.book.machine import fingerprint, git_commit, machine_info  # noqa: E402
from ace_utils.tasks import architecture as arch  # noqa: E402
from ace_utils.tasks import modular as mod  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    names = [s.name for s in arch.MODADD_SETTINGS]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", nargs="+", choices=names, default=names)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="models trained at once (local Dask workers)")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    ap.add_argument("--out", default="results/architecture")
    ap.add_argument("--segment-epochs", type=int, default=250, help="epochs between two saves of a model's state")
    args = ap.parse_args(argv)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"settings": {}}
    cmd = "python scripts/architecture_study.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.scheduler:
        os.environ[SCHEDULER_ENV] = args.scheduler  # map_in_processes then submits to that cluster
    commit = git_commit(ROOT)  # the code that runs is the code at the start (modules are imported by now)
    for name in args.settings:
        setting = arch.setting_named(name)
        run = arch.modadd_run(setting, seed=args.seed)
        run_dict = json.loads(json.dumps(run.to_dict()))
        key = f"{name}/seed{args.seed}"
        npz = out / f"modadd-{name}-seed{args.seed}.npz"
        if npz.exists() and meta["settings"].get(key, {}).get("run") == run_dict:
            print(f"{key}: already written, skipped")
            continue
        started = dt.datetime.now(dt.timezone.utc)
        t0 = time.perf_counter()
        result = mod.run_models_resumable(run, workers=args.jobs, segment_epochs=args.segment_epochs,
                                          stop_after_main=True)
        curves = mod.curves_record(result)
        mod.save_curves(npz, curves)
        meta["settings"][key] = {
            "label": setting.label,
            "factor": setting.factor,
            "command": cmd.strip(),
            "started_utc": started.isoformat(timespec="seconds"),
            "git_commit": commit,
            "machine": machine_info(),
            "machine_fingerprint": fingerprint(1),
            "torch_threads": 1,
            "wall_s": round(time.perf_counter() - t0, 1),
            "train_cpu_s": round(float(result["train_cpu_s"]), 1),
            "run": run_dict,
        }
        write_bytes_atomic(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
        summary = arch.modadd_summary(curves)
        print(f"{key}: " + "  ".join(f"{k} {v}" for k, v in summary.items()), flush=True)


if __name__ == "__main__":
    main()
