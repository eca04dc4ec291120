"""Benchmark: a chapter's seed sweep as Dask tasks on 2 local workers vs one seed after another.

    python benchmarks/dask_seed_sweep.py [--notebook notebooks/01_markov_cores.ipynb] [--seeds 0-3]

Runs the sweep twice in one process, each time with its own empty model cache (so both train
every model): first one after another from this process (``ace_utils.book.rerun.run_seeds`` with
``jobs=1``), then on a local Dask cluster of 2 worker processes (``jobs=2``). Also times the
cluster's start and 200 empty tasks, the scheduling overhead per task. Writes
``benchmarks/results/dask_seed_sweep.{json,md}``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _record import machine, machine_line, save

from ace_utils.book.cluster import as_finished, open_client
from ace_utils.book.rerun import parse_seeds, run_seeds

ROOT = Path(__file__).resolve().parents[1]


def _nothing(i: int) -> int:
    return i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notebook", type=Path, default=ROOT / "notebooks" / "01_markov_cores.ipynb")
    ap.add_argument("--seeds", default="0-3")
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    rows = {}
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory(prefix="dask-bench-cache-") as cache:
            t0 = time.perf_counter()
            results = run_seeds(args.notebook, seeds, jobs=jobs, cache=cache, log=print)
            rows[jobs] = {"wall_s": time.perf_counter() - t0, "run_s": [r.seconds for r in results],
                          "status": [r.status for r in results],
                          "checks": [{n: c["holds"] for n, c in r.checks.items()} for r in results]}
    same = rows[1]["checks"] == rows[2]["checks"]
    t0 = time.perf_counter()
    with open_client(2) as client:
        start_s = time.perf_counter() - t0
        n_tasks = 200
        t1 = time.perf_counter()
        done = sum(1 for _ in as_finished(client, _nothing, [(i,) for i in range(n_tasks)], name="nothing"))
        per_task_ms = 1000 * (time.perf_counter() - t1) / done
    m = machine(threads=1, load_note="each papermill run uses 1 thread (OMP_NUM_THREADS=1)")
    ratio = rows[1]["wall_s"] / rows[2]["wall_s"]
    record = {"notebook": args.notebook.name, "seeds": seeds, "machine": m, "one_after_another": rows[1],
              "dask_2_workers": rows[2], "speed_up": ratio, "same_claim_outcomes": same,
              "cluster_start_s": start_s, "empty_task_ms": per_task_ms}
    lines = [f"# Seed sweep of {args.notebook.stem} over seeds {args.seeds}: Dask (2 local workers) vs one after another",
             "", machine_line(m) + ".", "",
             "| variant | wall s | seconds per run | claim outcomes |", "|---|---|---|---|",
             f"| one after another (jobs 1) | {rows[1]['wall_s']:.1f} | {', '.join(f'{s:.0f}' for s in rows[1]['run_s'])} | reference |",
             f"| Dask LocalCluster, 2 workers (jobs 2) | {rows[2]['wall_s']:.1f} | "
             f"{', '.join(f'{s:.0f}' for s in rows[2]['run_s'])} | {'the same' if same else 'DIFFERENT'} |",
             "", f"Speed-up {ratio:.2f}x. Starting the 2-worker cluster took {start_s:.1f} s; an empty task costs "
             f"{per_task_ms:.1f} ms (200 tasks), against about {sum(rows[1]['run_s']) / len(seeds):.0f} s per run."]
    save("dask_seed_sweep", record, lines)


if __name__ == "__main__":
    main()
