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
:class:`ace_utils.book.claims.Claims` ledger writes ``<chapter>.json`` there. A run whose
notebook raises (a strict claim that fails, or any error) is kept and counted as failed,
with the error's first line. By default its remaining cells still run (papermill's
``allow_errors``), so the ledger still saves the claims after the failing one; the claims
of a cell after the point where it raised count as *not reached*. (With ``--stop-at-error``,
or if the ledger is never saved, the claims are read from the executed notebook's printed
``holds: ...`` / ``DOES NOT HOLD: ...`` lines.)

Writes, for chapter ``C`` (``C__name-value`` when ``-p`` is given):

* ``<out>/C.csv``: one row per (seed, claim): whether it held and its value (JSON), plus
  one ``<run>`` row per seed with the run's status, seconds and error;
* ``<out>/C.md``: the command, date, machine and git commit, then per claim: how often it
  held over the seeds, min / median / max of its numbers, the seeds where it failed or was
  not reached;
* ``<out>/all_chapters.md``: every ``.md`` table of ``<out>``, rebuilt after each run (the
  book's robustness page includes it, so a new chapter's table appears there by itself).

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
import csv
import datetime as _dt
import hashlib
import io
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ace_utils.book.claims import MIN_HELD, MIN_SEEDS
from ace_utils.book.cluster import as_finished, open_client
from ace_utils.book.machine import cpu_model, describe, fingerprint  # noqa: F401  (cpu_model: re-exported)

__all__ = [
    "RunResult", "parse_seeds", "run_one", "run_seeds", "claims_from_output", "summarise",
    "write_tables", "write_index", "index_text", "read_runs_csv", "numbers", "cpu_model", "machine_info",
    "git_commit", "code_hash", "progress_path", "load_progress", "results_from_csv", "table_header", "main",
]

ROOT = Path(__file__).resolve().parents[2]
_LINE_RE = re.compile(r"^(holds|DOES NOT HOLD): (.*?)  \(value (.*); expected (.*)\)(?:  \[[^\]]*\])?$")


@dataclass
class RunResult:
    """One papermill run: ``status`` is 'ok' or 'failed'; ``checks`` maps claim name -> record."""

    seed: int
    status: str
    seconds: float
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str = ""


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


def _literal(text: str) -> Any:
    """The value printed by the ledger (a Python repr) back as data, else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def claims_from_output(nb: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], str]:
    """(claims printed by the ledger, first line of the error) from an executed notebook dict."""
    checks: dict[str, dict[str, Any]] = {}
    error = ""
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text = out.get("text", "")
                text = "".join(text) if isinstance(text, list) else text
                for line in text.splitlines():
                    m = _LINE_RE.match(line)
                    if m:
                        checks[m.group(2)] = {"holds": m.group(1) == "holds", "value": _literal(m.group(3)),
                                              "expected": "" if m.group(4) == "see text" else m.group(4),
                                              "asserted": True}  # not printed by the ledger
            elif out.get("output_type") == "error" and not error:
                evalue = str(out.get("evalue", "")).strip().splitlines()
                error = f"{out.get('ename', 'Error')}: {evalue[0] if evalue else ''}".strip()
    return checks, error


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

    Returns its claims: from the ledger's JSON if ``claims.save()`` ran, else from the
    printed ledger lines of the executed notebook, with the error's first line. With
    ``keep_going`` (the default) the cells after a failing one still run (papermill's
    ``allow_errors``), so a claim that fails does not hide the claims after it; the run is
    still recorded as failed, with the first error.
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
        printed, error = {}, ""
        if out_nb.exists():
            try:
                printed, error = claims_from_output(json.loads(out_nb.read_text()))
            except (ValueError, OSError):
                pass
        if ledger.exists():  # claims.save() ran (at the end of the chapter)
            saved = json.loads(ledger.read_text())["checks"]  # the ledger's JSON has sorted keys:
            order = [n for n in printed if n in saved] + sorted(set(saved) - set(printed))  # chapter order
            checks = {n: {kk: saved[n][kk] for kk in ("holds", "value", "expected", "asserted")} for n in order}
            if rc == 0:
                return RunResult(seed, "ok", seconds, checks)
        else:
            checks = printed
        if not error:
            lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
            error = lines[-1] if lines else f"exit {rc}"
            if rc == 0:
                error = f"no claims ledger written ({ledger.name}): does the chapter call claims.save()?"
        return RunResult(seed, "failed", seconds, checks, error)


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


def numbers(value: Any) -> list[float]:
    """Every finite real number in a claim value (nested lists; bools excluded)."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)] if math.isfinite(value) else []
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in numbers(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers(v)]
    return []


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def summarise(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """Per claim (in first-seen order): held / failed / not-reached seeds and the spread of its numbers."""
    names: list[str] = []
    expected: dict[str, str] = {}
    asserted: dict[str, bool] = {}
    for r in results:
        for name, c in r.checks.items():
            if name not in expected:
                names.append(name)
                expected[name] = c.get("expected", "")
            asserted[name] = asserted.get(name, False) or c.get("asserted", True)
    rows = []
    for name in names:
        held = [r.seed for r in results if name in r.checks and r.checks[name]["holds"]]
        failed = [r.seed for r in results if name in r.checks and not r.checks[name]["holds"]]
        missing = [r.seed for r in results if name not in r.checks]
        xs = [x for r in results if name in r.checks for x in numbers(r.checks[name]["value"])]
        rows.append({
            "claim": name, "expected": expected[name], "asserted": asserted[name], "n_runs": len(results),
            "n_held": len(held),
            "failed_seeds": failed, "not_reached_seeds": missing,
            "min": min(xs) if xs else None, "median": _median(xs) if xs else None, "max": max(xs) if xs else None,
        })
    return rows


def code_hash(notebook: Path) -> str:
    """sha256 (16 hex digits) of a notebook's code-cell sources: unchanged by edits to its text."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    code = "\n\x00".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def git_commit(root: Path = ROOT) -> str:
    """HEAD commit (12 hex digits), with '+dirty' if tracked files differ from it; 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> str:
    """CPU model, logical cores, PyTorch's CPU capability, load average, GPU (or none), Python and
    torch versions, in one line."""
    try:
        load = "load %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load n/a"
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        tv = f"torch {torch.__version__}"
    except ImportError:  # pragma: no cover
        gpu, tv = "GPU unknown", "torch not installed"
    return f"{describe()}, {gpu}; {load} at the start; Python {platform.python_version()}, {tv}"


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def _seeds(xs: list[int]) -> str:
    return ", ".join(map(str, xs)) if xs else "none"


def write_tables(results: Sequence[RunResult], out: Path, name: str, header: dict[str, str],
                 keep_going: bool = True) -> tuple[Path, Path]:
    """Write ``<out>/<name>.csv`` (per seed and claim) and ``<out>/<name>.md`` (summary); return both paths.

    ``keep_going`` says how the runs were made (for the text above the list of failed runs).
    """
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["seed", "claim", "holds", "value", "expected", "asserted", "status", "seconds", "error"])
    for r in results:
        w.writerow([r.seed, "<run>", "", "", "", "", r.status, r.seconds, r.error])
        for cname, c in r.checks.items():
            w.writerow([r.seed, cname, c["holds"], json.dumps(c["value"]), c.get("expected", ""),
                        c.get("asserted", True), "", "", ""])
    csv_path.write_text(buf.getvalue())

    rows = summarise(results)
    n = len(results)
    n_ok = sum(r.status == "ok" for r in results)
    lines = [f"**{name}**: {n} runs (seeds {_seeds([r.seed for r in results])}), "
             f"{n_ok} finished, {n - n_ok} raised an error.", ""]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    lines += [f"- per-seed data: `{csv_path.name}`", ""]
    failed_runs = [r for r in results if r.status != "ok"]
    if failed_runs:
        lines += ["Runs that raised an error (a claim asserted at these settings failed, or the code failed; "
                  + ("the later cells still ran, so only claims later in the failing cell were not reached"
                     if keep_going else "the run stopped there")
                  + "):", ""]
        lines += [f"- seed {r.seed}: `{r.error.replace('`', chr(39))}`" for r in failed_runs]
        lines.append("")
    lines += ["| claim | held | failed on seeds | not reached | min | median | max |",
              "|---|---|---|---|---|---|---|"]
    for row in rows:
        mark = "" if row["n_held"] == n else " **✗**"
        if not row["asserted"]:
            note = " *(reported, not asserted)*"
        elif n < MIN_SEEDS or row["n_held"] < MIN_HELD:
            note = f" *(reported: asserted only when held on >= {MIN_HELD} of >= {MIN_SEEDS} seeds)*"
        else:
            note = ""
        claim = row["claim"].replace("|", "\\|") + note
        lines.append(f"| {claim} | {row['n_held']}/{n}{mark} | {_seeds(row['failed_seeds'])} | "
                     f"{_seeds(row['not_reached_seeds']) if row['not_reached_seeds'] else ''} | "
                     f"{_fmt(row['min'])} | {_fmt(row['median'])} | {_fmt(row['max'])} |")
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


INDEX_NAME = "all_chapters.md"


def index_text(out: Path) -> str:
    """Every table in ``out`` (``*.md`` but the index), sorted by name, each under a ``###`` heading."""
    parts = []
    for md in sorted(p for p in Path(out).glob("*.md") if p.name != INDEX_NAME):
        parts += [f"### {md.stem}", "", md.read_text().rstrip(), ""]
    return "\n".join(parts)


def write_index(out: Path) -> Path:
    """Write ``<out>/all_chapters.md`` (what the book's robustness page includes); return its path."""
    path = Path(out) / INDEX_NAME
    path.write_text(index_text(out))
    return path


def read_runs_csv(path: Path) -> dict[int, dict[str, Any]]:
    """Read a ``write_tables`` CSV back: seed -> {'status', 'error', 'checks': {claim: {holds, value, asserted}}}."""
    return {r.seed: {"status": r.status, "error": r.error,
                     "checks": {n: {k: c[k] for k in ("holds", "value", "asserted")} for n, c in r.checks.items()}}
            for r in results_from_csv(path)}


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


def results_from_csv(path: Path) -> list[RunResult]:
    """The runs of a :func:`write_tables` CSV as :class:`RunResult` objects (sorted by seed)."""
    runs: dict[int, RunResult] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            seed = int(row["seed"])
            if row["claim"] == "<run>":
                runs[seed] = RunResult(seed, row["status"], float(row["seconds"] or 0), {}, row["error"])
            else:
                runs[seed].checks[row["claim"]] = {"holds": row["holds"] == "True", "value": json.loads(row["value"]),
                                                   "expected": row["expected"],
                                                   "asserted": row.get("asserted", "True") != "False"}
    return sorted(runs.values(), key=lambda r: r.seed)


def table_header(md_path: Path) -> dict[str, str]:
    """The ``- key: value`` lines of a table's Markdown header."""
    out = {}
    for line in Path(md_path).read_text().splitlines():
        if line.startswith("- ") and ": " in line:
            k, v = line[2:].split(": ", 1)
            out.setdefault(k, v)
        elif line.startswith("|"):
            break
    return out


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
    args = ap.parse_args(argv)
    if not args.notebook.exists():
        ap.error(f"no such notebook: {args.notebook}")
    if any(n == "seed" for n, _ in args.parameter):
        ap.error("give seeds with --seeds, not -p seed")
    seeds = parse_seeds(args.seeds)
    params = [tuple(p) for p in args.parameter]
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
