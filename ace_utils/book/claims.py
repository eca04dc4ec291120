"""Recording a chapter's claims: checked, printed, asserted where they are made, saved.

Every chapter creates one :class:`Claims` after its parameters are validated,
calls :meth:`Claims.check` for each claim it makes, and :meth:`Claims.save` at
the end.

Which claims are asserted. A claim that fails raises ``AssertionError`` only when
(1) the chapter runs at the settings its claims are made for (``strict=True``: the
default parameters, any seed), (2) the chapter asks for it (``asserted=True``, the
default) and (3) the chapter's committed seed table
(``results/robustness/<chapter>.csv``, made by ``python -m ace_utils.book.rerun`` over
seeds 0-9) shows the claim holding on at least :data:`MIN_HELD` of at least
:data:`MIN_SEEDS` seeds. Every other claim is checked and reported, never dropped:
a claim that held at one seed is not promoted to an assertion, because it breaks on
the next seed, CPU or library version. Each printed line says which case applies
and the seed count behind it. If the environment variable
``ACE_BOOK_CLAIMS`` names a directory, :meth:`Claims.save` writes
``<dir>/<chapter>.json`` with every claim's outcome and numbers and the
chapter's parameters, which the seed-robustness runner collects.
Used in every chapter.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["Claims", "MIN_HELD", "MIN_SEEDS", "SEED_TABLES", "seed_support", "seed_values"]

MIN_SEEDS = 10  # seeds a claim's table must cover before it can be asserted
MIN_HELD = 9  # of which it must hold on at least this many
SEED_TABLES = Path(__file__).resolve().parents[2] / "results" / "robustness"


def seed_support(chapter: str, directory: str | os.PathLike[str] | None = None) -> dict[str, tuple[int, int]]:
    """``{claim: (seeds where it held, seeds run)}`` from ``<directory>/<chapter>.csv`` (default
    :data:`SEED_TABLES`); a claim not reached on a seed counts as not held there. ``{}`` if no table."""
    from ace_utils.book.rerun import read_runs_csv  # the table's reader (rerun imports this module)

    path = Path(directory or SEED_TABLES) / f"{chapter}.csv"
    if not path.exists():
        return {}
    runs = read_runs_csv(path)
    held: dict[str, int] = {}
    for run in runs.values():
        for name, c in run["checks"].items():
            held[name] = held.get(name, 0) + c["holds"]
    return {name: (h, len(runs)) for name, h in held.items()}


def seed_values(chapter: str, claim: str, directory: str | os.PathLike[str] | None = None) -> dict[int, Any]:
    """``{seed: value}`` of one claim in ``<directory>/<chapter>.csv`` (default
    :data:`SEED_TABLES`), over the seeds that reached it; ``{}`` if no table or no such claim.
    For closing tables that set another configuration's seed range beside this run."""
    from ace_utils.book.rerun import read_runs_csv

    path = Path(directory or SEED_TABLES) / f"{chapter}.csv"
    if not path.exists():
        return {}
    return {seed: run["checks"][claim]["value"] for seed, run in sorted(read_runs_csv(path).items())
            if claim in run["checks"]}


def _plain(x: Any) -> Any:
    """JSON-friendly copy: numpy scalars/arrays to Python, complex to [re, im], NaN to None."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (np.generic,)):
        return _plain(x.item())
    if isinstance(x, complex):
        return [_plain(x.real), _plain(x.imag)]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:  # 0-d torch tensor
        return _plain(x.item())
    return x


class Claims:
    """A chapter's claim ledger. ``Claims("01_markov_cores", params, strict=...)``."""

    def __init__(self, chapter: str, params: Mapping[str, Any] | None = None, *, strict: bool = True,
                 seed_tables: str | os.PathLike[str] | None = None) -> None:
        self.chapter = chapter
        self.params = dict(params or {})
        self.strict = strict
        self.support = seed_support(chapter, seed_tables)
        self.checks: dict[str, dict[str, Any]] = {}
        self.values: dict[str, Any] = {}
        self._t0 = time.perf_counter()

    def check(self, name: str, ok: bool, value: Any = None, *, expected: str = "", asserted: bool = True) -> None:
        """Record claim ``name``: whether it holds, the measured ``value``, the ``expected`` rule.

        Prints one line, ending in how the claim is treated here (module docstring). Raises
        ``AssertionError`` if it fails and it is enforced: ``self.strict``, ``asserted``, and
        held on >= :data:`MIN_HELD` of >= :data:`MIN_SEEDS` seeds in the chapter's table.
        Returns None, so a check that ends a notebook cell prints nothing more (read the
        outcome from :attr:`checks`).
        """
        ok = bool(ok)
        held, n = self.support.get(name, (0, 0))
        backed = n >= MIN_SEEDS and held >= MIN_HELD
        enforced = self.strict and asserted and backed
        if not asserted:
            how = "reported"
        elif n == 0:
            how = "reported: not in the seed table yet"
        else:
            how = f"{'asserted' if enforced else 'reported'}: held on {held}/{n} seeds"
        self.checks[name] = {"holds": ok, "value": _plain(value), "expected": expected, "asserted": asserted,
                             "enforced": enforced, "seeds_held": f"{held}/{n}"}
        status = "holds" if ok else "DOES NOT HOLD"
        print(f"{status}: {name}  (value {_plain(value)!r}; expected {expected or 'see text'})  [{how}]")
        if not ok and enforced:
            raise AssertionError(f"claim '{name}' does not hold: value {_plain(value)!r}, expected {expected} "
                                 f"(held on {held}/{n} seeds in the committed table)")

    def record(self, **values: Any) -> None:
        """Record numbers that are reported but not claims (timings, sizes)."""
        self.values.update({k: _plain(v) for k, v in values.items()})

    def summary(self) -> dict[str, Any]:
        """The ledger as a plain dict."""
        return {
            "chapter": self.chapter,
            "params": _plain(self.params),
            "strict": self.strict,
            "checks": self.checks,
            "values": self.values,
            "all_hold": all(c["holds"] for c in self.checks.values()),
            "seconds": round(time.perf_counter() - self._t0, 2),
        }

    def save(self, directory: str | os.PathLike[str] | None = None) -> Path | None:
        """Write ``<directory or $ACE_BOOK_CLAIMS>/<chapter>.json``; no-op if neither is set."""
        directory = directory or os.environ.get("ACE_BOOK_CLAIMS")
        if not directory:
            return None
        path = Path(directory) / f"{self.chapter}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.summary(), indent=1, sort_keys=True))
        os.replace(tmp, path)
        return path
