"""Rerun a chapter over seeds with papermill and tabulate how often each claim held.

Command line (from the repository root)::

    python -m ace_utils.book.rerun notebooks/01_markov_cores.ipynb --seeds 0-9 --jobs 2 \\
        [-p n_models 3 ...] [--out results/robustness] [--cache DIR] [--scheduler ADDRESS]

The seeds are Dask tasks (:mod:`ace_utils.book.cluster`): ``--jobs N`` runs N at a time on a local
cluster of N worker processes (``--jobs 1``: one after another, no cluster), ``--scheduler``
sends them to an existing Dask cluster instead. Each seed runs the notebook in its own
process (papermill with ``seed=S``), with its
own ``$ACE_BOOK_CLAIMS`` folder, ``OMP_WAIT_POLICY=PASSIVE`` and one BLAS/OpenMP thread
(``OMP_NUM_THREADS=1``, so the numbers do not depend on ``--jobs``); the chapter's
:class:`ace_utils.book.claims.Claims` ledger writes ``<chapter>.json`` there after every claim.
A run whose notebook raises (a strict claim that fails, or any error) is kept and counted as
failed, with the error's first line. By default its remaining cells still run (papermill's
``allow_errors``), so the ledger still holds the claims after the failing one; the claims
of a cell after the point where it raised count as *not reached* (with ``--stop-at-error``,
every claim after it).

Writes, for chapter ``C`` (``C__name-value`` when ``-p`` is given), the seed table
``<out>/C.csv`` and ``<out>/C.md`` and the index ``<out>/all_chapters.md``
(:mod:`ace_utils.book.seed_tables`; the book's robustness page includes the index, so a new
chapter's table appears there by itself).

``--same-output SEED`` makes no table: it reruns one seed of the notebook as it is now and
compares its ledger with that seed's row of the committed table, claim by claim (id, kind,
outcome, asserted, value to the last bit). If they agree, the notebook's code hash is added to
the table's ``same output under code`` line, so the table counts as in step with the changed
code (``seed_tables.in_step``); if not, it prints the differences and exits 1: make the
table again.

A run is resumable: each finished seed is appended to ``<out>/.C.progress.jsonl`` (with the
notebook's code hash and the parameters), and the same command after an interruption skips
the seeds recorded there for the same code and parameters; the file is removed once the
tables are written. In the same way a call extends an existing table of the same code and
parameters in ``<out>`` (``--seeds 0-9`` after a table of seeds 0-4 runs seeds 5-9 only).

Used by ``book/robustness.md`` (the committed tables under ``results/robustness/``) and by
``tests/test_rerun.py`` (which reruns one committed (chapter, seed) entry exactly).
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from ace_utils.book.cluster import as_finished, open_client
from ace_utils.book.machine import describe, fingerprint, git_commit, machine_info
from ace_utils.book.seed_rule import CSV_FIELDS, RunResult, numbers, read_runs_csv, results_from_csv  # noqa: F401
from ace_utils.book.seed_tables import (  # noqa: F401  (re-exported: the runner's table helpers)
    INDEX_NAME,
    SAME_OUTPUT_KEY,
    code_hash,
    index_text,
    same_output_codes,
    summarise,
    table_header,
    write_index,
    write_tables,
)

__all__ = [
    "RunResult", "parse_seeds", "run_one", "run_seeds", "summarise", "write_tables", "write_index", "index_text",
    "read_runs_csv", "numbers", "code_hash", "progress_path",
    "load_progress", "results_from_csv", "table_header", "compare_runs", "same_output", "main",
]

LEDGER_FIELDS = CSV_FIELDS  # what the table keeps of each claim in a run


def parse_seeds(spec: str) -> list[int]:
    """'0-9' -> [0..9]; '0,3,5-6' -> [0, 3, 5, 6]. Duplicates removed, order kept."""
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)-(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ValueError(f"seed range {part!r} is empty")
            seeds.extend(range(a, b + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ValueError(f"cannot read seeds {spec!r}: use e.g. 0-9 or 0,3,5-6")
    if not seeds:
        raise ValueError("no seeds given")
    return list(dict.fromkeys(seeds))


def resolve_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value as papermill's command line reads it: bool, None, int, float, else
    str; and, for the list parameters papermill's ``-p`` cannot pass, a list literal
    (``"[0.3, 0.5, 1]"``) as that list."""
    if text.lstrip().startswith("["):
        value = ast.literal_eval(text)
        if not isinstance(value, list):
            raise ValueError(f"not a list literal: {text!r}")
        return value
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _papermill(notebook: str, output: str, cwd: str, params_json: str, keep_going: str) -> None:
    """Child-process entry: papermill with ``allow_errors`` when ``keep_going`` is '1'.

    With ``allow_errors`` every cell runs even after one raised; papermill still raises at
    the end (after saving the notebook), so the run counts as failed.
    """
    import papermill as pm

    pm.execute_notebook(notebook, output, parameters=json.loads(params_json), kernel_name="python3", cwd=cwd,
                        progress_bar=False, allow_errors=keep_going == "1")


def run_one(notebook: Path, seed: int, params: Sequence[tuple[str, str]] = (), *, cache: str | None = None,
            keep_dir: Path | None = None, timeout: float = 3600, keep_going: bool = True) -> RunResult:
    """Execute ``notebook`` once with ``-p seed <seed>`` (and ``params``) in a fresh process.

    Returns its claims, from the ledger's JSON (written after every claim, so a run that
    stopped keeps the claims it made), and the error's first line. With ``keep_going`` (the
    default) the cells after a failing one still run (papermill's ``allow_errors``), so a
    claim that fails does not hide the claims after it; the run is still recorded as failed,
    with the first error. A run that ends without ``claims.save()`` counts as failed.
    """
    notebook = Path(notebook).resolve()
    chapter = notebook.stem
    with tempfile.TemporaryDirectory(prefix=f"rerun-{chapter}-{seed}-") as tmp:
        claims_dir = Path(tmp) / "claims"
        out_nb = (keep_dir / f"{chapter}__seed{seed}.ipynb") if keep_dir else Path(tmp) / "out.ipynb"
        env = dict(os.environ, ACE_BOOK_CLAIMS=str(claims_dir), OMP_WAIT_POLICY="PASSIVE",
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"),
                   PYTHONHASHSEED="0")
        if cache:
            env["ACE_BOOK_CACHE"] = str(Path(cache).resolve())
        values = {"seed": seed} | {name: resolve_value(value) for name, value in params}
        cmd = [sys.executable, "-c", "import sys; from ace_utils.book.rerun import _papermill; _papermill(*sys.argv[1:])",
               str(notebook), str(out_nb), str(notebook.parent), json.dumps(values), "1" if keep_going else "0"]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
            rc, stderr = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired:
            rc, stderr = -1, f"TimeoutError: no result after {timeout:.0f} s"
        seconds = round(time.perf_counter() - t0, 1)
        ledger = claims_dir / f"{chapter}.json"
        error = _first_error(out_nb)
        checks, finished = {}, False
        if ledger.exists():
            saved = json.loads(ledger.read_text())
            finished = saved.get("finished", True)
            checks = {c["id"]: {k: c[k] for k in LEDGER_FIELDS if k in c} for c in saved["checks"]}
        if rc == 0 and finished:
            return RunResult(seed, "ok", seconds, checks)
        if not error:
            lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
            error = lines[-1] if lines else f"exit {rc}"
            if rc == 0:
                error = f"the claims ledger was not saved ({ledger.name}): does the chapter end with claims.save()?"
        return RunResult(seed, "failed", seconds, checks, error)


def _first_error(out_nb: Path) -> str:
    """'Name: first line' of the first error output of an executed notebook ('' if none or unreadable)."""
    try:
        nb = json.loads(Path(out_nb).read_text())
    except (ValueError, OSError):
        return ""
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                evalue = str(out.get("evalue", "")).strip().splitlines()
                return f"{out.get('ename', 'Error')}: {evalue[0] if evalue else ''}".strip()
    return ""


def run_seeds(notebook: Path, seeds: Iterable[int], params: Sequence[tuple[str, str]] = (), *, jobs: int = 1,
              scheduler: str | None = None, cache: str | None = None, keep_dir: Path | None = None,
              timeout: float = 3600, keep_going: bool = True, log=print, on_result=None) -> list[RunResult]:
    """Run every seed; results sorted by seed. ``on_result(r)`` is called as each seed finishes.

    With ``jobs`` = 1 and no ``scheduler`` the seeds run one after another from this process;
    otherwise each seed is a Dask task (:mod:`ace_utils.book.cluster`), on a local cluster of
    ``jobs`` worker processes or on the cluster at ``scheduler``. A task that raises (or whose
    worker dies) is recorded as a failed run with its error; the other seeds are kept.
    """
    seeds = list(seeds)
    kw = dict(cache=cache, keep_dir=keep_dir, timeout=timeout, keep_going=keep_going)
    results = []

    def finished(r: RunResult) -> None:
        n_fail = sum(not c["holds"] for c in r.checks.values())
        log(f"seed {r.seed}: {r.status} in {r.seconds:.0f} s, {len(r.checks)} claims, {n_fail} failing"
            + (f"; {r.error}" if r.error else ""))
        if on_result is not None:
            on_result(r)
        results.append(r)

    if jobs <= 1 and not scheduler:
        for seed in seeds:
            finished(run_one(notebook, seed, params, **kw))
    else:
        with open_client(jobs, scheduler) as client:
            for i, r, exc in as_finished(client, run_one, [(notebook, seed, params) for seed in seeds],
                                         name=f"rerun-{Path(notebook).stem}", **kw):
                finished(r if exc is None else RunResult(seeds[i], "failed", 0.0, {}, f"{type(exc).__name__}: {exc}"))
    return sorted(results, key=lambda r: r.seed)


def _seeds(xs: list[int]) -> str:
    return ", ".join(map(str, xs)) if xs else "none"


def progress_path(out: Path, name: str) -> Path:
    """The progress file of table ``name`` in ``out``: one JSON line per finished seed."""
    return Path(out) / f".{name}.progress.jsonl"


def load_progress(path: Path, code: str, params: Sequence[tuple[str, str]]) -> dict[int, RunResult]:
    """The seeds recorded in progress file ``path`` for code hash ``code`` and ``params``
    (lines of other code or parameters are ignored; the last line of a seed wins)."""
    done: dict[int, RunResult] = {}
    if not Path(path).exists():
        return done
    for line in Path(path).read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:  # a line cut off by the interruption
            continue
        if rec.get("code") == code and rec.get("params") == [list(p) for p in params]:
            done[int(rec["result"]["seed"])] = RunResult(**rec["result"])
    return done


def compare_runs(again: RunResult, committed: RunResult) -> list[str]:
    """The differences between a rerun of a seed and that seed's committed row: run status, the
    claim ids and their order, and per claim its kind, outcome, whether it is asserted and its
    value (to the last bit); [] when they agree."""
    diffs = []
    if again.status != committed.status:
        diffs.append(f"run status {again.status!r} (committed {committed.status!r}: {committed.error})")
    if list(again.checks) != list(committed.checks):
        diffs.append(f"claims {list(again.checks)} (committed {list(committed.checks)})")
    for cid in again.checks.keys() & committed.checks.keys():
        a, c = again.checks[cid], committed.checks[cid]
        for key in ("kind", "holds", "asserted"):
            if a.get(key) != c.get(key):
                diffs.append(f"{cid}: {key} {a.get(key)!r} (committed {c.get(key)!r})")
        if json.dumps(a["value"]) != json.dumps(c["value"]):
            diffs.append(f"{cid}: value {json.dumps(a['value'])} (committed {json.dumps(c['value'])})")
    return diffs


def same_output(notebook: Path, out: Path, name: str, seed: int, params: Sequence[tuple[str, str]] = (), *,
                cache: str | None = None, timeout: float = 3600, log=print) -> bool:
    """Rerun ``seed`` of ``notebook`` and compare it with that seed's row of the table ``<out>/<name>``
    (:func:`compare_runs`). If they agree, record the notebook's code hash in the table's
    ``same output under code`` header line (with the date, commit and machine of the proof) and
    rebuild the table's Markdown and the folder's index; return whether they agreed."""
    md_path, csv_path = Path(out) / f"{name}.md", Path(out) / f"{name}.csv"
    committed = {r.seed: r for r in results_from_csv(csv_path)}
    if seed not in committed:
        raise ValueError(f"seed {seed} is not in {csv_path}")
    code = code_hash(notebook)
    header = table_header(md_path)
    if code == header.get("code sha256", "").split(" ")[0] or code in same_output_codes(md_path):
        log(f"{md_path} is already in step with code {code}")
        return True
    again = run_one(notebook, seed, params, cache=cache, timeout=timeout)
    diffs = compare_runs(again, committed[seed])
    if diffs:
        log(f"seed {seed} under code {code} differs from its committed row in {md_path}:\n  " + "\n  ".join(diffs))
        return False
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    proof = (f"`{code}` (seed {seed} rerun on {date} at commit {git_commit()} on {describe()}, fingerprint "
             f"{fingerprint(1)}, in {again.seconds:.0f} s: every claim's id, kind, outcome and value identical to the "
             "committed row)")
    earlier = header.get(SAME_OUTPUT_KEY)
    header[SAME_OUTPUT_KEY] = f"{earlier}; {proof}" if earlier else proof
    keep_going = "stops at its first error" not in header.get("each run", "")
    write_tables(list(committed.values()), Path(out), name, header, keep_going=keep_going)
    write_index(Path(out))
    log(f"seed {seed} under code {code}: the same output as the committed row; recorded in {md_path}")
    return True


def _table_name(chapter: str, params: Sequence[tuple[str, str]]) -> str:
    return chapter + "".join(f"__{n}-{re.sub(r'[^A-Za-z0-9.]+', '_', v)}" for n, v in params)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ace_utils.book.rerun", description=__doc__.split("\n\n")[0])
    ap.add_argument("notebook", type=Path, help="the chapter's .ipynb")
    ap.add_argument("--seeds", default="0-9", help="seeds, e.g. 0-9 or 0,3,5-6 (default 0-9)")
    ap.add_argument("--jobs", type=int, default=2,
                    help="runs at a time: Dask worker processes on this machine (default 2; 1: one after another)")
    ap.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run on the existing Dask cluster at ADDRESS (e.g. tcp://host:8786) instead of local workers")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="another papermill parameter, fixed for all seeds (repeatable)")
    ap.add_argument("--out", type=Path, default=Path("results/robustness"), help="folder of the tables")
    ap.add_argument("--cache", default=None, help="model cache folder (default: $ACE_BOOK_CACHE or the user cache)")
    ap.add_argument("--keep-notebooks", type=Path, default=None, help="save the executed notebooks here")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run (default 3600)")
    ap.add_argument("--stop-at-error", action="store_true",
                    help="stop a run at its first error, as papermill does (default: run the remaining cells "
                         "too, so claims after a failing one are still recorded; the run still counts as failed)")
    ap.add_argument("--same-output", type=int, default=None, metavar="SEED",
                    help="make no table: rerun SEED and, if its claims equal that seed's row of the existing table, "
                         "record the notebook's code as giving the table's output (module docstring)")
    args = ap.parse_args(argv)
    if not args.notebook.exists():
        ap.error(f"no such notebook: {args.notebook}")
    if any(n == "seed" for n, _ in args.parameter):
        ap.error("give seeds with --seeds, not -p seed")
    seeds = parse_seeds(args.seeds)
    params = [tuple(p) for p in args.parameter]
    if args.same_output is not None:
        ok = same_output(args.notebook, args.out, _table_name(args.notebook.stem, params), args.same_output, params,
                         cache=args.cache, timeout=args.timeout)
        return 0 if ok else 1
    command = "python -m ace_utils.book.rerun " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    started = _dt.datetime.now(_dt.timezone.utc)
    header = {"command": f"`{command}`", "date": started.strftime("%Y-%m-%d %H:%M UTC"),
              "machine": machine_info(),
              "machine fingerprint": f"{fingerprint(1)} (bit-identical reruns are expected only where this matches; "
                                     "runs use 1 thread)",
              "git commit": git_commit(),
              "code sha256": f"{code_hash(args.notebook)} (of the notebook's code cells)",
              "each run": "own process, `OMP_NUM_THREADS=1`, `OMP_WAIT_POLICY=PASSIVE`; "
                          + ("stops at its first error" if args.stop_at_error else
                             "cells after an error still run (the run still counts as failed)")}
    if args.keep_notebooks:
        args.keep_notebooks.mkdir(parents=True, exist_ok=True)
    name = _table_name(args.notebook.stem, params)
    progress = progress_path(args.out, name)
    code = code_hash(args.notebook)
    done = {s: r for s, r in load_progress(progress, code, params).items() if s in seeds}
    old_md, old_csv = args.out / f"{name}.md", args.out / f"{name}.csv"
    earlier = {}
    if old_md.exists() and old_csv.exists():  # an existing table of the same code: extend it
        earlier = table_header(old_md)
        if earlier.get("code sha256", "").split(" ")[0] == code:
            done = {r.seed: r for r in results_from_csv(old_csv) if r.seed in seeds} | done
        else:
            earlier = {}
    todo = [s for s in seeds if s not in done]
    print(f"{command}: {len(todo)} runs, {args.jobs} at a time"
          + (f"; seeds {_seeds(sorted(done))} done in earlier calls (the existing table or {progress})" if done else ""),
          flush=True)
    args.out.mkdir(parents=True, exist_ok=True)

    def record(r: RunResult) -> None:
        with open(progress, "a") as f:
            f.write(json.dumps({"code": code, "params": [list(p) for p in params], "result": asdict(r)}) + "\n")

    t0 = time.perf_counter()
    fresh = run_seeds(args.notebook, todo, params, jobs=args.jobs, scheduler=args.scheduler, cache=args.cache,
                      keep_dir=args.keep_notebooks, timeout=args.timeout, keep_going=not args.stop_at_error,
                      log=lambda s: print(s, flush=True), on_result=record)
    results = sorted(list(done.values()) + fresh, key=lambda r: r.seed)
    header["wall time"] = (f"{time.perf_counter() - t0:.0f} s for all runs" if not done else
                           f"{time.perf_counter() - t0:.0f} s for seeds {_seeds(todo)} in the last call; seeds "
                           f"{_seeds(sorted(done))} ran in earlier calls ({sum(r.seconds for r in done.values()):.0f} s "
                           "of run time)")
    if earlier:
        header["earlier seeds"] = (f"from the table this one extends: {earlier.get('command', '?')} on "
                                   f"{earlier.get('date', '?')}, {earlier.get('machine', '?')}")
    csv_path, md_path = write_tables(results, args.out, name, header, keep_going=not args.stop_at_error)
    progress.unlink(missing_ok=True)
    index = write_index(args.out)
    print(md_path.read_text())
    print(f"wrote {csv_path}, {md_path} and {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
