#!/usr/bin/env python
"""The chapters on a GPU: the device tests, chapters 03, 04 and 05 with ``-p device cuda``, and
chapter 03's 'paper' preset (20,000 epochs) for three models, timed beside the CPU figures.

Run on a machine with a CUDA device, from the repository root, with the environment the book
uses there (``pip install -e .[book,test]`` beside the machine's own CUDA torch):

    python benchmarks/gpu.py [--steps tests,03,04,05,paper] [--timeout 3600]

Steps (each in a fresh process, one empty model cache for the whole call, so every model is
trained here):

* ``tests``: ``pytest tests/test_device.py`` (the device code path on CUDA, and that no
  training step waits for the device);
* ``03``, ``04``, ``05``: the chapter through papermill at its defaults with ``device='cuda'``
  (``ace_utils.book.rerun.run_one``: seed 0, the claims ledger collected; the chapters assert
  their claims there as on the CPU);
* ``paper``: chapter 03 with ``preset='paper'`` and ``n_models=3`` (the paper's schedule on
  its three models).

The CPU figures beside them are the committed ones: the chapters' cold times in
``results/run_all/amd-avx2.json`` and the long run's wall time in
``results/modular_paper_models/meta.json`` (both on a 2-core AMD EPYC). The record, with the
GPU's name, goes to ``benchmarks/results/gpu.{md,json}`` after every step (a stopped call
keeps the steps it finished). Where no CUDA device is present the script refuses at once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

if __name__ == "__main__" and not torch.cuda.is_available():
    sys.exit(f"benchmarks/gpu.py needs a CUDA device: torch {torch.__version__} sees none here "
             "(torch.cuda.is_available() is False)")

import _record  # noqa: E402

from ace_utils.book.rerun import run_one  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = {"03": "03_grokking_core", "04": "04_grokking_time", "05": "05_agreement_axis"}
TARGETS_S = {"03": 60, "paper": 600}  # the targets on one H100-class GPU


def cpu_figures() -> dict[str, dict]:
    """The committed CPU times: chapter -> {"seconds", "where"}; "paper" -> the long run's."""
    out: dict[str, dict] = {}
    run_all = ROOT / "results" / "run_all" / "amd-avx2.json"
    if run_all.exists():
        rec = json.loads(run_all.read_text())
        for row in rec["rows"]:
            for key, chapter in CHAPTERS.items():
                if row["step"].startswith(f"{chapter}: in make test's book build"):
                    out[key] = {"seconds": row["seconds"], "where": f"{rec['machine']} (results/run_all/amd-avx2.json, "
                                                                    "cold model cache, two chapters at a time)"}
    meta = ROOT / "results" / "modular_paper_models" / "meta.json"
    if meta.exists():
        rec = json.loads(meta.read_text())
        out["paper"] = {"seconds": rec["wall_s"], "where": "2-core AMD EPYC, 2 processes "
                                                           "(results/modular_paper_models/meta.json, sum of its calls)"}
    return out


def gpu_machine() -> dict:
    props = torch.cuda.get_device_properties(0)
    return _record.machine(1, gpu=torch.cuda.get_device_name(0), gpu_memory_gib=round(props.total_memory / 2**30, 1),
                           cuda=torch.version.cuda, gpu_count=torch.cuda.device_count())


def run_tests(timeout: float) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_device.py", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-300:]
    return {"step": "tests/test_device.py on CUDA", "seconds": round(time.perf_counter() - t0, 1),
            "result": "ok" if proc.returncode == 0 else "failed", "detail": tail,
            "output": proc.stdout[-4000:] if proc.returncode else ""}


def run_chapter(key: str, params: list[tuple[str, str]], cache: str, keep: Path, timeout: float) -> dict:
    notebook = NOTEBOOKS / f"{CHAPTERS['03' if key == 'paper' else key]}.ipynb"
    res = run_one(notebook, 0, [("device", "cuda"), *params], cache=cache, keep_dir=keep, timeout=timeout)
    asserted = [c for c in res.checks.values() if c.get("enforced")]
    return {"step": f"{notebook.stem} " + " ".join(f"-p {n} {v}" for n, v in [("device", "cuda"), *params]),
            "seconds": res.seconds, "result": res.status + (f": {res.error}" if res.error else ""),
            "claims": f"{sum(c['holds'] for c in res.checks.values())}/{len(res.checks)} hold, "
                      f"{sum(c['holds'] for c in asserted)}/{len(asserted)} asserted ones hold",
            "not_holding": sorted(i for i, c in res.checks.items() if not c["holds"])}


def save(machine: dict, rows: list[dict], started: str) -> None:
    cpu = cpu_figures()
    lines = [f"# The chapters on a GPU: {machine['gpu']}", "",
             f"{_record.machine_line(machine)}; GPU {machine['gpu']} ({machine['gpu_memory_gib']} GiB, CUDA "
             f"{machine['cuda']}). Started {started}; every model trained in this call (empty model cache).", "",
             "| step | GPU s | CPU s (committed record) | CPU / GPU | target | result | claims |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        key = r.get("key")
        c = cpu.get(key, {})
        ratio = f"{c['seconds'] / r['seconds']:.1f}x" if c and r["seconds"] else ""
        target = f"<= {TARGETS_S[key]} s" if key in TARGETS_S else ""
        lines.append(f"| {r['step']} | {r['seconds']:.0f} | {c.get('seconds', ''):} | {ratio} | {target} "
                     f"| {r['result']} | {r.get('claims', r.get('detail', ''))} |")
    lines += ["", "CPU figures: " + "; ".join(f"{k}: {v['where']}" for k, v in cpu.items()) + "."]
    _record.save("gpu", {"machine": machine, "started": started, "rows": rows, "cpu": cpu}, lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", default="tests,03,04,05,paper")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed per step")
    ap.add_argument("--keep", type=Path, default=None, help="folder for the executed notebooks (default: none kept)")
    args = ap.parse_args()
    machine = gpu_machine()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        cache = os.path.join(tmp, "model-cache")
        for step in args.steps.split(","):
            if step == "tests":
                row = run_tests(args.timeout)
            elif step in CHAPTERS:
                row = run_chapter(step, [], cache, args.keep, args.timeout)
            elif step == "paper":
                row = run_chapter("paper", [("preset", "paper"), ("n_models", "3")], cache, args.keep, args.timeout)
            else:
                raise SystemExit(f"unknown step {step!r}: choose from tests, 03, 04, 05, paper")
            row["key"] = step
            rows.append(row)
            print(f"{row['step']}: {row['seconds']:.0f} s, {row['result']}, {row.get('claims', row.get('detail', ''))}",
                  flush=True)
            save(machine, rows, started)


if __name__ == "__main__":
    main()
