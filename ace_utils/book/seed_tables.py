"""The committed seed tables: one chapter's claims over seeds, as files, and their tests of currency.

For chapter ``C`` (``C__name-value`` for other parameters) a table is two files in
``results/robustness/`` (or any folder):

* ``C.csv``: one row per (seed, claim id) and one ``<run>`` row per seed (the format and the rule
  that reads it: :mod:`ace_utils.book.seed_rule`);
* ``C.md``: a header (command, date, machine, commit, the code hash of the notebook it ran), then
  the claims by kind: findings and sanity checks counted over the seeds (how often each held,
  min / median / max of its numbers, the seeds where it failed or was not reached), committed-run
  claims once, with their file.

``all_chapters.md`` (:func:`write_index`) puts every table of a folder under one count of
findings, sanity checks and committed runs; the book's robustness page includes it.

A table is *in step* with its notebook when the notebook's :func:`code_hash` is the one the
table ran, or one for which a rerun of a seed was shown to give the table's row of that seed
claim for claim and bit for bit (a proof recorded in the header's ``same output under code``
line by ``python -m ace_utils.book.rerun NOTEBOOK --same-output SEED``). ``tests/test_claim_policy.py``
requires every chapter's table to be in step.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Sequence

from ace_utils.book.seed_rule import (  # noqa: F401  (RunResult, numbers and the CSV readers: re-exported)
    COMMITTED,
    FINDING,
    KINDS,
    MIN_HELD,
    MIN_SEEDS,
    SANITY,
    RunResult,
    meets_rule,
    numbers,
    read_runs_csv,
    results_from_csv,
    write_runs_csv,
)

__all__ = ["RunResult", "numbers", "summarise", "write_tables", "read_runs_csv", "results_from_csv", "table_header",
           "table_code", "same_output_codes", "in_step", "code_hash", "index_text", "write_index", "INDEX_NAME",
           "SAME_OUTPUT_KEY"]

INDEX_NAME = "all_chapters.md"
SAME_OUTPUT_KEY = "same output under code"


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def summarise(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """Per claim id (in first-seen order): kind, sentence, rule, held / failed / not-reached seeds
    and the spread of its numbers; for committed-run claims whether every seed gave the same value."""
    first: dict[str, dict[str, Any]] = {}
    asserted: dict[str, bool] = {}
    for r in results:
        for cid, c in r.checks.items():
            first.setdefault(cid, c)
            asserted[cid] = asserted.get(cid, False) or c.get("asserted", True)
    rows = []
    for cid, c in first.items():
        held = [r.seed for r in results if cid in r.checks and r.checks[cid]["holds"]]
        failed = [r.seed for r in results if cid in r.checks and not r.checks[cid]["holds"]]
        missing = [r.seed for r in results if cid not in r.checks]
        xs = [x for r in results if cid in r.checks for x in numbers(r.checks[cid]["value"])]
        values = {json.dumps(r.checks[cid]["value"]) for r in results if cid in r.checks}
        rows.append({
            "claim": cid, "kind": c.get("kind", FINDING), "sentence": c.get("sentence", cid),
            "expected": c.get("expected", ""), "source": c.get("source", ""), "asserted": asserted[cid],
            "n_runs": len(results), "n_held": len(held), "failed_seeds": failed, "not_reached_seeds": missing,
            "same_value": len(values) == 1 and not missing, "value": c["value"],
            "min": min(xs) if xs else None, "median": _median(xs) if xs else None, "max": max(xs) if xs else None,
        })
    return rows


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def _seeds(xs: list[int]) -> str:
    return ", ".join(map(str, xs)) if xs else "none"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _kind_lines(rows: list[dict[str, Any]], kind: str, n: int) -> list[str]:
    """The Markdown section of the claims of one kind."""
    mine = [r for r in rows if r["kind"] == kind]
    if not mine:
        return []
    if kind == COMMITTED:
        lines = [f"**Committed runs** ({len(mine)} claims): read from committed files, the same one run whatever "
                 "the seed, so each counts once.", "",
                 "| id | claim | rule | in the committed run | file | value |", "|---|---|---|---|---|---|"]
        for r in mine:
            if not r["same_value"]:
                outcome = "**value differs between seeds: not a committed-run claim**"
            else:
                outcome = ("holds" if r["n_held"] == n else "**does not hold**") + (
                    "" if r["asserted"] else " *(reported, not asserted)*")
            lines.append(f"| `{r['claim']}` | {_cell(r['sentence'])} | {_cell(r['expected'])} | {outcome} | "
                         f"`{_cell(r['source'])}` | {_cell(_short(r['value']))} |")
        return lines + [""]
    title = {FINDING: "**Findings**", SANITY: "**Sanity checks**"}[kind]
    what = {FINDING: "results of the paper or beyond it, measured in each run",
            SANITY: "evidence that the pipeline works, true by construction or nearly automatic: not results"}[kind]
    every = sum(r["n_held"] == n for r in mine)
    lines = [f"{title} ({len(mine)} claims, {what}): {every} held on every seed.", "",
             "| id | claim | rule | held | failed on seeds | not reached | min | median | max |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in mine:
        mark = "" if r["n_held"] == n else " **✗**"
        if not r["asserted"]:
            note = " *(reported, not asserted)*"
        elif not meets_rule(r["n_held"], n):
            note = f" *(reported: asserted only when held on >= {MIN_HELD} of >= {MIN_SEEDS} seeds)*"
        else:
            note = ""
        lines.append(f"| `{r['claim']}` | {_cell(r['sentence'])}{note} | {_cell(r['expected'])} | {r['n_held']}/{n}{mark} | "
                     f"{_seeds(r['failed_seeds'])} | {_seeds(r['not_reached_seeds']) if r['not_reached_seeds'] else ''} | "
                     f"{_fmt(r['min'])} | {_fmt(r['median'])} | {_fmt(r['max'])} |")
    return lines + [""]


def write_tables(results: Sequence[RunResult], out: Path, name: str, header: dict[str, str],
                 keep_going: bool = True) -> tuple[Path, Path]:
    """Write ``<out>/<name>.csv`` (per seed and claim) and ``<out>/<name>.md`` (summary); return both paths.

    ``keep_going`` says how the runs were made (for the text above the list of failed runs).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    write_runs_csv(results, csv_path)

    rows = summarise(results)
    n = len(results)
    n_ok = sum(r.status == "ok" for r in results)
    lines = [f"**{name}**: {n} runs (seeds {_seeds([r.seed for r in results])}), "
             f"{n_ok} finished, {n - n_ok} raised an error.", ""]
    lines += [f"- {k}: {v}" for k, v in header.items() if k != "per-seed data"]
    lines += [f"- per-seed data: `{csv_path.name}`", ""]
    failed_runs = [r for r in results if r.status != "ok"]
    if failed_runs:
        lines += ["Runs that raised an error (a claim asserted at these settings failed, or the code failed; "
                  + ("the later cells still ran, so only claims later in the failing cell were not reached"
                     if keep_going else "the run stopped there")
                  + "):", ""]
        lines += [f"- seed {r.seed}: `{r.error.replace('`', chr(39))}`" for r in failed_runs]
        lines.append("")
    for kind in KINDS:
        lines += _kind_lines(rows, kind, n)
    md_path.write_text("\n".join(lines).rstrip() + "\n")
    return csv_path, md_path


def table_header(md_path: Path) -> dict[str, str]:
    """The ``- key: value`` lines of a table's Markdown header (the first block of such lines)."""
    out: dict[str, str] = {}
    for line in Path(md_path).read_text().splitlines():
        if line.startswith("- ") and ": " in line:
            k, v = line[2:].split(": ", 1)
            out.setdefault(k, v)
        elif out:
            break
    return out


def table_code(md_path: Path) -> str:
    """The code hash of the notebook a table ran (its header's ``code sha256``)."""
    return table_header(md_path).get("code sha256", "").split(" ")[0]


def same_output_codes(md_path: Path) -> list[str]:
    """The code hashes shown to give the table's output (header line :data:`SAME_OUTPUT_KEY`)."""
    return re.findall(r"`([0-9a-f]{16})`", table_header(md_path).get(SAME_OUTPUT_KEY, ""))


def code_hash(notebook: Path) -> str:
    """sha256 (16 hex digits) of a notebook's code cells: unchanged by edits to its text and to
    its environment-setup cell (a code cell tagged ``remove-cell`` or one that checks for Colab),
    which computes nothing the chapter shows."""
    cells = json.loads(Path(notebook).read_text())["cells"]

    def setup(c: dict) -> bool:
        src = "".join(c["source"])
        return "remove-cell" in c.get("metadata", {}).get("tags", []) or "google.colab" in src

    code = "\n\x00".join("".join(c["source"]) for c in cells if c["cell_type"] == "code" and not setup(c))
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def in_step(notebook: Path, md_path: Path) -> bool:
    """Whether the table ran the notebook's code, or a proof shows that code gives its output."""
    code = code_hash(notebook)
    return code == table_code(md_path) or code in same_output_codes(md_path)


def _counts(path: Path) -> list[str]:
    """One row of the index's summary for the table at ``path`` (its ``.md``)."""
    runs = results_from_csv(path.with_suffix(".csv"))
    n = len(runs)
    rows = summarise(runs)

    def backed(r: dict[str, Any]) -> bool:
        return r["asserted"] and meets_rule(r["n_held"], n)

    out = [f"{path.stem}", str(n)]
    for kind in (FINDING, SANITY):
        mine = [r for r in rows if r["kind"] == kind]
        out.append(f"{len(mine)}: {sum(backed(r) for r in mine)} asserted, {sum(not backed(r) for r in mine)} reported; "
                   f"{sum(r['n_held'] == n for r in mine)} held on every seed" if mine else "none")
    mine = [r for r in rows if r["kind"] == COMMITTED]
    hold = [r for r in mine if r["n_held"] == n and r["same_value"]]
    out.append(f"{len(mine)}: {len(hold)} hold in their run ({sum(r['asserted'] for r in hold)} asserted), "
               f"{len(mine) - len(hold)} do not" if mine else "none")
    return out


def index_text(out: Path) -> str:
    """A count per table of findings, sanity checks and committed-run claims, then every table in
    ``out`` (``*.md`` but the index), sorted by name, each under a ``###`` heading."""
    tables = sorted(p for p in Path(out).glob("*.md") if p.name != INDEX_NAME)
    parts = []
    if tables:
        parts += ["| table | seeds | findings | sanity checks | committed-run claims (one run each) |",
                  "|---|---|---|---|---|"]
        parts += ["| " + " | ".join(_counts(md)) + " |" for md in tables if md.with_suffix(".csv").exists()]
        parts.append("")
    for md in tables:
        parts += [f"### {md.stem}", "", md.read_text().rstrip(), ""]
    return "\n".join(parts)


def write_index(out: Path) -> Path:
    """Write ``<out>/all_chapters.md`` (what the book's robustness page includes); return its path."""
    path = Path(out) / INDEX_NAME
    path.write_text(index_text(out))
    return path

