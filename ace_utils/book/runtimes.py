"""A chapter's runtime, read from the committed timing records rather than written by hand.

``benchmarks/run_all`` keeps one record per CPU kind in ``results/run_all/<maker>-<capability>.json``
(the status page shows them side by side). :func:`chapter_runtime` turns a chapter's rows of
those records into the one line its opening paragraph shows, e.g. ``"7.5-10 minutes on 2 CPU
cores from an empty model cache (in the book's test run, two chapters at a time), 15-25 s with
its models cached; 3 CPU kinds measured"``.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["RECORDS", "chapter_seconds", "chapter_runtime", "duration_range"]

RECORDS = Path(__file__).resolve().parents[2] / "results" / "run_all"
COLD = "in make test's book build (cold model cache)"
WARM = "papermill, warm model cache"


def chapter_seconds(chapter: str, records: Path = RECORDS) -> tuple[list[float], list[float]]:
    """Wall seconds of ``chapter`` (a notebook's stem) in every float32 record under ``records``:
    ``(cold, warm)``, one entry per record that has the row. A record's cold time is the
    chapter's time in a whole book's test run from an empty model cache (in the book's order, so
    a chapter may reuse models an earlier one trained, and two chapters at a time)."""
    cold, warm = [], []
    for path in sorted(Path(records).glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("training precision", "fp32") != "fp32":
            continue  # made before the chapters trained in float32: not the chapters of today
        steps = {row["step"]: float(row["seconds"]) for row in record["rows"]}
        for what, times in ((COLD, cold), (WARM, warm)):
            if f"{chapter}: {what}" in steps:
                times.append(steps[f"{chapter}: {what}"])
    return cold, warm


def duration_range(seconds: list[float]) -> str:
    """``[442, 594]`` -> ``"7.5-10 minutes"``; ``[38, 45]`` -> ``"40-45 s"``: seconds rounded to
    5 s below 90 s, else minutes rounded to half minutes (a lone or collapsed range gives one
    figure, "about ...")."""
    lo, hi = min(seconds), max(seconds)
    if hi < 90:
        a, b, unit = max(5, 5 * round(lo / 5)), max(5, 5 * round(hi / 5)), "s"
    else:
        a, b, unit = max(0.5, round(lo / 30) / 2), max(0.5, round(hi / 30) / 2), "minutes"
    return f"about {b:g} {unit}" if a == b else f"{a:g}-{b:g} {unit}"


def chapter_runtime(chapter: str, records: Path = RECORDS) -> str:
    """The runtime line of ``chapter``'s opening paragraph, from the committed records; says so
    when none holds the chapter (a chapter added since the last record)."""
    cold, warm = chapter_seconds(chapter, records)
    if not cold:
        return "not measured yet (no timing record on the status page holds this page)"
    line = (f"{duration_range(cold)} on 2 CPU cores from an empty model cache (in the book's test "
            "run, two chapters at a time)")
    if warm:
        line += f", {duration_range(warm)} with its models cached"
    return line + f"; {len(cold)} CPU kind{'s' if len(cold) > 1 else ''} measured"
