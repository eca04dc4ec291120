"""Report the cell times the chapters' kernels logged (``$ACE_CELL_TIMES``, written by the
IPython startup file ``scripts/ipython_cell_times.py``): ``python scripts/cell_times.py LOG``
matches the logged sources to the code cells of the book's executable pages and prints each
page's total, its slowest cells (``Cell N``: N counts a page's code cells from 0, as nbval names
its items) and how many times each page was executed (the kernels that ran its cells: one kernel
runs one page). Exits 1 if a cell ran longer than ``--limit`` seconds (default: the book's
per-cell ``execute.timeout`` in ``_config.yml``), or, with ``--once``, if a page was executed
other than exactly once.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import yaml

import execute_book as eb

ROOT = Path(__file__).resolve().parents[1]


def book_pages(root: Path = ROOT) -> list[str]:
    """The pages the book executes (``_toc.yml``'s notebooks and MyST text notebooks)."""
    return [str(p) for p in eb.executable_pages(Path(root)).values()]


def _cell_index(notebooks: list[str]) -> dict[str, tuple[str, int]]:
    """code cell source -> (page stem, code cell number from 0); the first page wins a tie."""
    where: dict[str, tuple[str, int]] = {}
    for nb in notebooks:
        code = [c for c in eb.read_page(Path(nb)).cells if c.cell_type == "code"]
        for i, c in enumerate(code):
            where.setdefault(c.source, (Path(nb).stem, i))
    return where


def _records(log: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(log).read_text(encoding="utf8").splitlines() if line.strip()]


def cell_rows(log: str | Path, notebooks: list[str]) -> list[tuple[float, str, int, str]]:
    """The logged cells as ``(seconds, page stem, code cell number, first source line)``, the
    sources matched to the code cells of ``notebooks`` (``"(unmatched)"``, -1 where none fits)."""
    where = _cell_index(notebooks)
    rows = []
    for r in _records(log):
        nb, i = where.get(r["source"], ("(unmatched)", -1))
        rows.append((r["seconds"], nb, i, r["source"].strip().splitlines()[0][:70] if r["source"].strip() else ""))
    return rows


def executions(log: str | Path, notebooks: list[str]) -> dict[str, int]:
    """How many kernels executed each page of ``notebooks`` (0 for a page never run): a kernel
    counts for the page that holds the most of the sources it ran (a source may be in several
    pages, e.g. a chapter's imports)."""
    pages_of: dict[str, set[str]] = {}
    for nb in notebooks:
        for c in eb.read_page(Path(nb)).cells:
            if c.cell_type == "code":
                pages_of.setdefault(c.source, set()).add(Path(nb).stem)
    by_kernel: dict[str, Counter] = {}
    for r in _records(log):
        for page in pages_of.get(r["source"], ()):
            by_kernel.setdefault(r.get("kernel", "(unknown)"), Counter())[page] += 1
    counts = {Path(nb).stem: 0 for nb in notebooks}
    for pages in by_kernel.values():
        counts[pages.most_common(1)[0][0]] += 1
    return counts


def book_timeout(root: Path = ROOT) -> float:
    """``execute.timeout`` of the book's ``_config.yml``: seconds a cell may run."""
    cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf8")) or {}
    return float(cfg.get("execute", {}).get("timeout", 30))


def report(log: str, notebooks: list[str], limit: float, top: int = 12, once: bool = False) -> int:
    """Print the per-page totals, the ``top`` slowest cells of ``log`` and each page's number of
    executions; return the number of problems (cells over ``limit`` seconds, and with ``once``
    pages not executed exactly once)."""
    rows = cell_rows(log, notebooks)
    totals: dict[str, float] = {}
    for s, nb, _, _ in rows:
        totals[nb] = totals.get(nb, 0.0) + s
    print(f"cell times ({len(rows)} cells, {sum(totals.values()):.0f} s in all):")
    for nb in sorted(totals):
        print(f"  {nb}: {totals[nb]:.0f} s")
    print(f"slowest {min(top, len(rows))} cells:")
    for s, nb, i, first in sorted(rows, reverse=True)[:top]:
        print(f"  {s:7.1f} s  {nb} Cell {i}: {first}")
    problems = 0
    for s, nb, i, _ in (r for r in rows if r[0] > limit):
        print(f"OVER BUDGET: {nb} Cell {i} ran {s:.0f} s > {limit:.0f} s")
        problems += 1
    runs = executions(log, notebooks)
    print("executions per page (kernels that ran its cells): "
          + ", ".join(f"{nb} {n}" for nb, n in sorted(runs.items())))
    if once:
        for nb, n in sorted(runs.items()):
            if n != 1:
                print(f"NOT EXECUTED ONCE: {nb} was executed {n} times")
                problems += 1
    return problems


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Report the cell times of the chapters' kernels.")
    ap.add_argument("log", help="the JSON-lines file the kernels wrote ($ACE_CELL_TIMES)")
    ap.add_argument("--limit", type=float, default=None,
                    help="seconds a cell may run (default: execute.timeout in _config.yml)")
    ap.add_argument("--notebooks", nargs="*", default=None, help="the pages (default: the book's executable pages)")
    ap.add_argument("--once", action="store_true", help="fail unless every page was executed exactly once")
    a = ap.parse_args()
    notebooks = a.notebooks if a.notebooks is not None else book_pages()
    limit = a.limit if a.limit is not None else book_timeout()
    raise SystemExit(1 if report(a.log, notebooks, limit, once=a.once) else 0)
