"""Markdown tables for the chapters: value ranges and the table text itself.

:func:`span` writes the range of a set of values the way the closing tables do ("12-14",
"-0.20 to 0.10", one value when they agree); :func:`seed_span` the range of one claim's value
over a committed seed table; :func:`markdown_table` writes a header and
rows as a Markdown table, which a notebook shows with ``IPython.display.Markdown``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ace_utils.book.seed_rule import numbers, seed_values

__all__ = ["span", "seed_span", "per_model", "markdown_table", "dict_table"]


def span(values: Iterable[float] | float, fmt: str = "{:.3f}", missing: str = "never") -> str:
    """The range of the finite ``values`` formatted with ``fmt``: ``"lo-hi"``, ``"lo to hi"``
    when ``lo`` is negative (a minus sign would read as a dash), one value when all agree
    after formatting; ``missing`` when none is finite (e.g. a model that never groks)."""
    v = np.asarray(values if np.isscalar(values) else list(values), dtype=float).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return missing
    lo, hi = fmt.format(v.min()), fmt.format(v.max())
    if lo == hi:
        return lo
    return f"{lo}{' to ' if v.min() < 0 else '-'}{hi}"


def seed_span(chapter: str, claim: str, directory: str | os.PathLike[str] | None = None, *,
              pick: Callable[[Any], Any] | None = None, scale: float = 1.0, fmt: str = "{:.3f}",
              missing: str = "n/a") -> str:
    """:func:`span` of one claim's value over the seeds of a committed seed table
    (``<directory>/<chapter>.csv``, default ``results/robustness``): ``pick`` (optional) takes
    the part of each seed's value to use, every finite number in it is multiplied by ``scale``;
    "not recorded" when the table or the claim is absent, ``missing`` when no number is finite.
    For closing tables that set another configuration's seeds beside the chapter's run."""
    values = list(seed_values(chapter, claim, directory).values())
    if not values:
        return "not recorded"
    xs = numbers([pick(v) for v in values] if pick is not None else values)
    return span([x * scale for x in xs], fmt, missing=missing)


def held_count(chapter: str, claim: str, directory: str | os.PathLike[str] | None = None) -> str:
    """On how many seeds of a committed seed table (``<directory>/<chapter>.csv``) a claim
    held: "7/10 seeds"; "not recorded" when the table or the claim is absent."""
    from ace_utils.book.seed_rule import seed_support

    sup = seed_support(chapter, directory).get(claim)
    return f"{sup.held}/{sup.runs} seeds" if sup else "not recorded"


def per_model(values: Iterable[float], fmt: str = "{:.0f}", missing: str = "–") -> str:
    """Each value formatted with ``fmt``, joined by " / " (one entry per model); ``missing`` for NaN."""
    return " / ".join(missing if not np.isfinite(x) else fmt.format(x) for x in np.asarray(list(values), float))


def range_of(values: Iterable[float] | float, fmt: str = "{:.0f}", missing: str = "n/a") -> str:
    """:func:`span` with defaults for dimensions and counts: whole numbers, "n/a" for none."""
    return span(values, fmt, missing=missing)


def mean_se(x: Iterable[Iterable[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over models of ``x`` (C, M): two (C,) arrays (SE 0 for one model)."""
    x = np.asarray(x, float)
    se = x.std(1, ddof=1) / np.sqrt(x.shape[1]) if x.shape[1] > 1 else np.zeros(x.shape[0])
    return x.mean(1), se


def min_or_nan(x: Iterable[float]) -> float:
    """The smallest value, NaN if there is none (a claim on no data then fails instead of crashing)."""
    x = np.asarray(x, float)
    return float(x.min()) if x.size else float("nan")


def max_or_nan(x: Iterable[float]) -> float:
    """The largest value, NaN if there is none."""
    x = np.asarray(x, float)
    return float(x.max()) if x.size else float("nan")


def at_checkpoints(epochs: Sequence[int], ckpt_epochs: Sequence[int], curves: Mapping[str, Any],
                   keys: Sequence[str]) -> str:
    """One line per wanted epoch: the nearest checkpoint of ``ckpt_epochs`` (C,) and, for each of
    ``keys``, ``curves[key]`` there (rows (C, M): one value per model, rounded to 3 digits)."""
    ckpt_epochs = np.asarray(ckpt_epochs)
    lines = []
    for e in epochs:
        j = int(np.argmin(np.abs(ckpt_epochs - e)))
        lines.append(f"epoch {int(ckpt_epochs[j]):5d}: "
                     + "  ".join(f"{k} {np.round(np.asarray(curves[k])[j], 3).tolist()}" for k in keys))
    return "\n".join(lines)


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table of ``head`` and ``rows`` (each as long as ``head``; cells as ``str``).
    ``ValueError`` if a row has another length."""
    lines = ["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
    for row in rows:
        row = list(row)
        if len(row) != len(head):
            raise ValueError(f"a row has {len(row)} cells, the header {len(head)}: {row}")
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines)


def dict_table(rows: Mapping[str, Mapping[str, object]], columns: Sequence[str], fmt: str = "{:.3f}",
               first: str = "method") -> str:
    """A Markdown table with one row per key of ``rows`` (its name in the first column, headed
    ``first``) and one column per name in ``columns`` (a missing entry is empty). Floats are
    formatted with ``fmt``, anything else with ``str``."""
    def cell(v: object) -> str:
        return fmt.format(v) if isinstance(v, (float, np.floating)) else str(v)

    return markdown_table([first, *columns], ([name, *(cell(r.get(c, "")) for c in columns)] for name, r in rows.items()))
