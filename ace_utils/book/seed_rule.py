"""The per-seed rows of a seed table and the rule that reads them: which claims a table backs.

A seed table's ``<chapter>.csv`` (in ``results/robustness/`` by default, :data:`SEED_TABLES`)
holds one row per (seed, claim id) with the claim's kind, sentence, whether it held, its value
(JSON), rule, whether the chapter asserts it, the committed file it reads and the paper's value,
and one ``<run>`` row per seed with the run's status, seconds and error
(:func:`write_runs_csv`, :func:`results_from_csv`).

The rule (:func:`meets_rule`): a finding or sanity check is backed, and may be asserted, when it
held on at least :data:`MIN_HELD` of at least :data:`MIN_SEEDS` seeds; a committed-run claim
when it held in the one run it reads, with the same value on every seed. :func:`seed_support`
reads what a table says of each claim (:class:`Support`). The claims ledger
(:mod:`ace_utils.book.claims`), the tables' Markdown (:mod:`ace_utils.book.seed_tables`) and
the seed runner (:mod:`ace_utils.book.rerun`) all read the rows and the rule from here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = ["FINDING", "SANITY", "COMMITTED", "KINDS", "KIND_LABEL", "MIN_SEEDS", "MIN_HELD", "SEED_TABLES",
           "CSV_FIELDS", "RunResult", "Support", "meets_rule", "plain", "numbers", "passes", "write_runs_csv",
           "results_from_csv", "read_runs_csv", "seed_support", "seed_values"]

MIN_SEEDS = 10  # seeds a claim's table must cover before a finding or sanity check can be asserted
MIN_HELD = 9  # of which it must hold on at least this many
SEED_TABLES = Path(__file__).resolve().parents[2] / "results" / "robustness"
FINDING, SANITY, COMMITTED = "finding", "sanity", "committed"
KINDS = (FINDING, SANITY, COMMITTED)
KIND_LABEL = {FINDING: "finding", SANITY: "sanity check", COMMITTED: "committed run"}
CSV_FIELDS = ("kind", "sentence", "holds", "value", "expected", "asserted", "source", "paper")  # per claim


def meets_rule(held: int, runs: int) -> bool:
    """Whether a finding or sanity check that held on ``held`` of ``runs`` seeds may be asserted:
    at least :data:`MIN_HELD` of at least :data:`MIN_SEEDS`."""
    return runs >= MIN_SEEDS and held >= MIN_HELD


# --------------------------------------------------------------------------- claim values


def plain(x: Any) -> Any:
    """JSON-friendly copy: numpy scalars/arrays to Python, complex to [re, im], NaN to None."""
    if isinstance(x, Mapping):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return plain(x.tolist())
    if isinstance(x, (np.generic,)):
        return plain(x.item())
    if isinstance(x, complex):
        return [plain(x.real), plain(x.imag)]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:  # 0-d torch tensor
        return plain(x.item())
    return x


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


def _flat(value: Any) -> list[float | None]:
    """Every number in a plain claim value (nested lists and dicts; bools and text left out), a
    missing or non-finite one as None, so that a comparison with it fails."""
    if isinstance(value, bool) or isinstance(value, str):
        return []
    if value is None:
        return [None]
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    if isinstance(value, Mapping):
        return [x for v in value.values() for x in _flat(v)]
    return []


def passes(value: Any, test: Callable[[float], bool]) -> bool:
    """Whether ``value`` has a number and every number in it passes ``test`` (None, NaN fail)."""
    xs = _flat(plain(value))
    return bool(xs) and all(x is not None and test(x) for x in xs)


# --------------------------------------------------------------------------- the per-seed CSV


@dataclass
class RunResult:
    """One papermill run: ``status`` is 'ok' or 'failed'; ``checks`` maps claim id -> record
    (``holds``, ``value``, ``expected`` and, where known, ``kind``, ``sentence``, ``asserted``,
    ``source``, ``paper``)."""

    seed: int
    status: str
    seconds: float
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str = ""


def write_runs_csv(results: Sequence[RunResult], path: Path) -> Path:
    """Write the runs as a seed table's CSV at ``path`` (module docstring); return ``path``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["seed", "claim", *CSV_FIELDS, "status", "seconds", "error"])
    for r in results:
        w.writerow([r.seed, "<run>", *[""] * len(CSV_FIELDS), r.status, r.seconds, r.error])
        for cid, c in r.checks.items():
            w.writerow([r.seed, cid, c.get("kind", FINDING), c.get("sentence", cid), c["holds"], json.dumps(c["value"]),
                        c.get("expected", ""), c.get("asserted", True), c.get("source", ""), c.get("paper", ""),
                        "", "", ""])
    Path(path).write_text(buf.getvalue())
    return Path(path)


def results_from_csv(path: Path) -> list[RunResult]:
    """The runs of a seed table's CSV as :class:`RunResult` objects (sorted by seed)."""
    runs: dict[int, RunResult] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            seed = int(row["seed"])
            if row["claim"] == "<run>":
                runs[seed] = RunResult(seed, row["status"], float(row["seconds"] or 0), {}, row["error"])
            else:
                runs[seed].checks[row["claim"]] = {
                    "kind": row.get("kind") or FINDING, "sentence": row.get("sentence") or row["claim"],
                    "holds": row["holds"] == "True", "value": json.loads(row["value"]), "expected": row["expected"],
                    "asserted": row.get("asserted", "True") != "False", "source": row.get("source") or "",
                    "paper": row.get("paper") or ""}
    return sorted(runs.values(), key=lambda r: r.seed)


def read_runs_csv(path: Path) -> dict[int, dict[str, Any]]:
    """A seed table's CSV: seed -> {'status', 'error', 'checks': {id: {kind, holds, value, asserted}}}."""
    return {r.seed: {"status": r.status, "error": r.error,
                     "checks": {n: {k: c[k] for k in ("kind", "holds", "value", "asserted")} for n, c in r.checks.items()}}
            for r in results_from_csv(path)}


# --------------------------------------------------------------------------- what a table backs


@dataclass(frozen=True)
class Support:
    """What a committed seed table says of one claim: its ``kind``, the runs it ``held`` in out
    of ``runs`` (for a committed-run claim: 1 or 0 of 1, the one committed run), the ``values``
    over seeds, whether a committed-run claim had the ``same`` value on every row, the ``rule``
    the table made it under and whether ``held`` was ``rejudged`` under another rule."""

    kind: str
    held: int
    runs: int
    values: tuple = ()
    same: bool = True
    rule: str = ""
    rejudged: bool = False

    @property
    def backed(self) -> bool:
        """Whether the table backs asserting the claim (:func:`meets_rule`; a committed-run claim:
        held in its one run, with the same value on every seed)."""
        if self.kind == COMMITTED:
            return self.runs == 1 and self.held == 1 and self.same
        return meets_rule(self.held, self.runs)

    def describe(self) -> str:
        """'held on 9/10 seeds', 'held in the committed run', ..."""
        if self.kind == COMMITTED:
            if not self.same:
                return "value not the same on every seed: not a committed-run claim"
            return f"{'held' if self.held else 'did not hold'} in the committed run"
        if self.rejudged:
            return f"held on {self.held}/{self.runs} seeds under today's rule (the table's: {self.rule})"
        return f"held on {self.held}/{self.runs} seeds"

    def under(self, rule: str, test: Callable[[float], bool] | None) -> "Support | None":
        """This support for a claim whose rule is now ``rule``: itself when the table made the
        claim under the same rule; the table's values judged again by ``test`` (the claim's own
        comparison) when the bound changed; None (no backing) when the rule changed and cannot
        be judged from the values (a claim decided by the chapter's own test, a committed run)."""
        if rule == self.rule:
            return self
        if test is None or self.kind == COMMITTED:
            return None
        held = sum(passes(v, test) for v in self.values)
        return Support(self.kind, held, self.runs, self.values, self.same, self.rule, rejudged=True)


def _read_rows(chapter: str, directory: str | os.PathLike[str] | None) -> list[RunResult]:
    path = Path(directory or SEED_TABLES) / f"{chapter}.csv"
    return results_from_csv(path) if path.exists() else []


def seed_support(chapter: str, directory: str | os.PathLike[str] | None = None) -> dict[str, Support]:
    """``{claim id: Support}`` from ``<directory>/<chapter>.csv`` (default :data:`SEED_TABLES`);
    a claim not reached on a seed counts as not held there. ``{}`` if no table."""
    runs = _read_rows(chapter, directory)
    out: dict[str, Support] = {}
    ids = list(dict.fromkeys(i for r in runs for i in r.checks))
    for i in ids:
        rows = [r.checks[i] for r in runs if i in r.checks]
        kind = rows[0].get("kind", FINDING)
        values = tuple(json.dumps(c["value"]) for c in rows)
        rules = {c.get("expected", "") for c in rows}
        rule = rows[0].get("expected", "") if len(rules) == 1 else "(rules differ between seeds)"
        if kind == COMMITTED:
            same = len(set(values)) == 1 and len(rows) == len(runs)
            out[i] = Support(kind, int(same and all(c["holds"] for c in rows)), 1, values[:1], same, rule)
        else:
            out[i] = Support(kind, sum(c["holds"] for c in rows), len(runs), tuple(c["value"] for c in rows),
                             rule=rule)
    return out


def seed_values(chapter: str, claim: str, directory: str | os.PathLike[str] | None = None) -> dict[int, Any]:
    """``{seed: value}`` of claim ``claim`` (its id) in ``<directory>/<chapter>.csv`` (default
    :data:`SEED_TABLES`), over the seeds that reached it; ``{}`` if no table or no such claim.
    For closing tables that set another configuration's seed range beside this run."""
    return {r.seed: r.checks[claim]["value"] for r in _read_rows(chapter, directory) if claim in r.checks}
