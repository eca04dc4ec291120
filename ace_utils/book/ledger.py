"""A chapter's claims as the reader sees them: one table per section and a count at the close.

:func:`section_table` renders the claims a section made (what :meth:`Claims.ledger
<ace_utils.book.claims.Claims.ledger>` shows): each claim's kind, its value here against its
rule, whether it is asserted or reported and on what evidence (the seed table's count and the
range of its value over the seeds, or the committed file it reads), and the paper's value.
:func:`overview_table` counts a chapter's claims by kind and treatment for its closing summary.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from ace_utils.book.seed_rule import COMMITTED, FINDING, KIND_LABEL, KINDS, SANITY, numbers

if TYPE_CHECKING:  # pragma: no cover  (for annotations only: claims imports this module)
    from ace_utils.book.claims import Claims

__all__ = ["section_table", "overview_table", "short_value"]


def short_value(value: Any, digits: int = 4) -> str:
    """A claim value for a table cell: numbers to ``digits`` significant digits, lists and dicts
    compact, long ones cut."""
    def r(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, float):
            return float(f"{v:.{digits}g}")
        if isinstance(v, (list, tuple)):
            return [r(x) for x in v]
        if isinstance(v, dict):
            return {k: r(x) for k, x in v.items()}
        return v

    text = json.dumps(r(value), ensure_ascii=False).replace('"', "")
    return text if len(text) <= 70 else text[:69] + "…"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _spread(values: Iterable[Any]) -> str:
    xs = [x for v in values for x in numbers(v)]
    if not xs:
        return ""
    lo, hi = f"{min(xs):.4g}", f"{max(xs):.4g}"
    return lo if lo == hi else f"{lo} to {hi}"


def _evidence(claims: "Claims", cid: str) -> str:
    c = claims.checks[cid]
    sup = claims.support.get(cid)
    status = c["how"].split(":")[0]  # asserted / reported
    if c["kind"] == COMMITTED:
        return f"{status}; one run: `{c['source']}`" + ("" if sup is None else f" ({sup.describe()})")
    if sup is None or sup.kind != c["kind"] or sup.rule != c["expected"]:
        return c["how"]  # no table, or one made under another rule: what the claim's own check said of it
    spread = _spread(sup.values)
    return f"{status}: held on {sup.held}/{sup.runs} seeds" + (f", value {spread}" if spread else "")


def section_table(claims: "Claims", ids: list[str]):
    """The claims ``ids`` of ``claims`` as one Markdown table, with the reasons given for their
    thresholds below it; an ``IPython.display.Markdown`` object (plain text without IPython)."""
    head = "| claim | kind | here | rule | over seeds / source | paper |\n|---|---|---|---|---|---|"
    rows, reasons = [], []
    for cid in ids:
        c = claims.checks[cid]
        here = ("✓ " if c["holds"] else "✗ ") + short_value(c["value"])
        rows.append(f"| {_cell(c['sentence'])} <br>`{cid}` | {KIND_LABEL[c['kind']]} | {_cell(here)} | "
                    f"{_cell(c['expected'])} | {_cell(_evidence(claims, cid))} | {_cell(c['paper'] or '–')} |")
        if c["reason"]:
            reasons.append(f"- `{cid}`: {c['reason']}")
    text = "\n".join([head, *rows]) if rows else "*(no claims in this section)*"
    if reasons:
        text += "\n\nWhy these thresholds:\n\n" + "\n".join(reasons)
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover
        return text
    return Markdown(text)


def overview_table(claims: "Claims"):
    """The chapter's claims counted by kind: how many, asserted here, reported, holding in this
    run; then the reported ones by id. An ``IPython.display.Markdown`` object."""
    lines = ["| kind | claims | asserted | reported | hold in this run |", "|---|---|---|---|---|"]
    for kind in KINDS:
        mine = [c for c in claims.checks.values() if c["kind"] == kind]
        if mine:
            lines.append(f"| {KIND_LABEL[kind]} | {len(mine)} | {sum(c['enforced'] for c in mine)} | "
                         f"{sum(not c['enforced'] for c in mine)} | {sum(c['holds'] for c in mine)} |")
    reported = [f"`{cid}`" for cid, c in claims.checks.items() if not c["enforced"] and c["kind"] == FINDING]
    what = {FINDING: "results measured in this run and counted over ten seeds",
            SANITY: "checks that the pipeline works, true by construction or nearly so, not results",
            COMMITTED: "read from committed runs, one run each whatever the seed"}
    present = [k for k in KINDS if any(c["kind"] == k for c in claims.checks.values())]
    text = "\n".join(lines) + "\n\n" + "; ".join(f"*{KIND_LABEL[k]}s*: {what[k]}" for k in present) + "."
    if not claims.strict:
        text += " At these parameters no claim is asserted: every one is checked and reported."
    elif reported:
        text += " Findings reported, not asserted: " + ", ".join(reported) + "."
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover
        return text
    return Markdown(text)
