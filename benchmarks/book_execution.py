"""Executing the book's notebooks two at a time against one after another, in one run.

    .venv/bin/python benchmarks/book_execution.py [--pages 00_ace_in_five_minutes,01_markov_cores,...]
        [--jobs 2] [--order serial-first|parallel-first]

Each mode runs ``scripts/execute_book.py`` on the chosen pages from an empty execution cache
and an empty model cache (its own temporary folders), so both train every model; the
chapters' numbers do not depend on the mode. Records the wall time of each, the machine and
the load, in ``benchmarks/results/book_execution.{md,json}``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _record import machine, machine_line, save  # noqa: E402

DEFAULT_PAGES = "00_ace_in_five_minutes,01_markov_cores,02_core_alignment,03_grokking_core,your_model"


def execute(pages: str, jobs: int) -> tuple[float, str]:
    """Wall seconds of executing ``pages`` with ``jobs`` at a time from empty caches, and the script's output."""
    with tempfile.TemporaryDirectory(prefix="book-exec-") as tmp:
        env = dict(os.environ, ACE_BOOK_CACHE=str(Path(tmp) / "models"))
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, str(ROOT / "scripts" / "execute_book.py"), "--jobs", str(jobs),
                              "--pages", pages, "--build", str(Path(tmp) / "build")],
                             env=env, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
    if out.returncode != 0 or "FAILED" in out.stdout:
        raise SystemExit(f"execute_book failed with --jobs {jobs}:\n{out.stdout}\n{out.stderr}")
    return wall, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", default=DEFAULT_PAGES, help="comma-separated page names (default: chapter 03, which trains on both cores, and four lighter pages)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--order", choices=("serial-first", "parallel-first"), default="serial-first")
    args = ap.parse_args()
    modes = [1, args.jobs] if args.order == "serial-first" else [args.jobs, 1]
    load_start = os.getloadavg()
    times, logs = {}, {}
    for jobs in modes:
        times[jobs], logs[jobs] = execute(args.pages, jobs)
        print(f"--jobs {jobs}: {times[jobs]:.0f} s", flush=True)
    m = machine(threads=1, loadavg_start=load_start)
    record = {"pages": args.pages.split(","), "seconds": {str(k): round(v, 1) for k, v in times.items()},
              "speedup": round(times[1] / times[args.jobs], 3), "order": args.order, "logs": logs, "machine": m}
    lines = [
        "# Executing the book's notebooks: two at a time vs one after another", "",
        f"`benchmarks/book_execution.py --pages {args.pages} --jobs {args.jobs} --order {args.order}`; "
        "each mode from an empty execution cache and an empty model cache.", "",
        "| mode | wall (s) |", "|---|---|",
        f"| one after another (`--jobs 1`) | {times[1]:.0f} |",
        f"| {args.jobs} at a time (`--jobs {args.jobs}`) | {times[args.jobs]:.0f} |", "",
        f"Speed-up {times[1] / times[args.jobs]:.2f}x. {machine_line(m)}; load average at the start "
        f"{tuple(round(x, 2) for x in load_start)}.", "",
    ]
    save("book_execution", record, lines)


if __name__ == "__main__":
    main()
