"""Report the cell times the book build logged (``$ACE_CELL_TIMES``, written by the IPython
startup file ``scripts/ipython_cell_times.py``): ``python scripts/cell_times.py LOG`` matches
the logged sources to the cells of ``notebooks/*.ipynb`` and prints each chapter's total and
its slowest cells. Exits 1 if a cell ran longer than ``--limit`` seconds (default 300, the
book's per-cell budget, which ``execute.timeout`` in ``_config.yml`` also enforces).
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import jupytext


def book_pages(root: Path = Path(".")) -> list[str]:
    """The pages the book executes: ``notebooks/*.ipynb`` and the MyST text notebooks
    (``book/*.md`` with a kernelspec)."""
    text = [p for p in sorted(glob.glob(str(root / "book" / "*.md"))) if "kernelspec:" in Path(p).read_text(encoding="utf8")[:400]]
    return sorted(glob.glob(str(root / "notebooks" / "*.ipynb"))) + text


def cell_rows(log: str | Path, notebooks: list[str]) -> list[tuple[float, str, int, str]]:
    """The logged cells as ``(seconds, page stem, code cell number, first source line)``, the
    sources matched to the code cells of ``notebooks`` (``"(unmatched)"``, 0 where none fits)."""
    where: dict[str, tuple[str, int]] = {}
    for nb in notebooks:
        doc = jupytext.read(nb, fmt="md:myst" if nb.endswith(".md") else None)
        code = [c for c in doc.cells if c.cell_type == "code"]
        for i, c in enumerate(code):
            where.setdefault(c.source, (Path(nb).stem, i + 1))
    rows = []
    for line in Path(log).read_text(encoding="utf8").splitlines():
        r = json.loads(line)
        nb, i = where.get(r["source"], ("(unmatched)", 0))
        rows.append((r["seconds"], nb, i, r["source"].strip().splitlines()[0][:70] if r["source"].strip() else ""))
    return rows


def report(log: str, notebooks: list[str], limit: float, top: int = 12) -> int:
    """Print the per-chapter totals and the ``top`` slowest cells of ``log``; return the
    number of cells over ``limit`` seconds."""
    rows = cell_rows(log, notebooks)
    totals: dict[str, float] = {}
    for s, nb, _, _ in rows:
        totals[nb] = totals.get(nb, 0.0) + s
    print(f"cell times ({len(rows)} cells, {sum(totals.values()):.0f} s in all):")
    for nb in sorted(totals):
        print(f"  {nb}: {totals[nb]:.0f} s")
    print(f"slowest {min(top, len(rows))} cells (code cell number within its chapter):")
    for s, nb, i, first in sorted(rows, reverse=True)[:top]:
        print(f"  {s:7.1f} s  {nb} cell {i}: {first}")
    over = [r for r in rows if r[0] > limit]
    for s, nb, i, _ in over:
        print(f"OVER BUDGET: {nb} cell {i} ran {s:.0f} s > {limit:.0f} s")
    return len(over)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Report the cell times of a book build.")
    ap.add_argument("log", help="the JSON-lines file the kernels wrote ($ACE_CELL_TIMES)")
    ap.add_argument("--limit", type=float, default=300.0, help="seconds a cell may run (default 300)")
    ap.add_argument("--notebooks", nargs="*", default=book_pages())
    a = ap.parse_args()
    raise SystemExit(1 if report(a.log, a.notebooks, a.limit) else 0)
