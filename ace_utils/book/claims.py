"""Recording a chapter's claims: checked, shown, asserted where they are made, saved.

Every chapter opens one :class:`Claims` after its parameters are validated, states each claim
in one call that carries its stable id, the measured value, the bound, its kind and its
sentence, e.g. ::

    claims.at_most("keep_gap", gap, 0.005, "sufficient: core-only accuracy within {bound} of the full model")

(the threshold is written once: the sentence may show it through ``{bound}``, ``{lo}``, ``{hi}``
or ``{target}``), shows a section's claims as one table with :meth:`Claims.ledger`, and calls
:meth:`Claims.save` at the end. Seed tables key on the id, so a reworded sentence changes nothing.

Kinds of claim (:data:`KINDS`):

* ``finding``: a result of the paper or beyond it, measured in this run, counted over seeds;
* ``sanity``: a check that the pipeline works, true by construction or nearly automatic (a known
  answer, an identity between two computations), not a result; counted over seeds like a finding
  but never reported as one;
* ``committed``: read from a committed long run or study (``source`` names the file): the same
  one run whatever the seed, so it is counted once, with its provenance, never over seeds.

Which claims are asserted. A claim that fails raises ``AssertionError`` only when (1) the
chapter runs at the settings its claims are made for (``strict=True``: its defaults, any
seed), (2) the chapter asks for it (``asserted=True``, the default) and (3) the chapter's
committed seed table (``results/robustness/<chapter>.csv``, made by ``python -m
ace_utils.book.rerun`` over seeds 0-9) backs it: a finding or sanity check held on at least
:data:`MIN_HELD` of at least :data:`MIN_SEEDS` seeds; a committed-run claim held in the one run
it reads (the rule and the table's rows: :mod:`ace_utils.book.seed_rule`). Every other claim is checked and reported, never dropped. If the environment
variable ``ACE_BOOK_CLAIMS`` names a directory, the ledger is written to
``<dir>/<chapter>.json`` after every claim (so a run that stops still leaves the claims it
made) and by :meth:`Claims.save` at the end, with the chapter's parameters and recorded values;
the seed runner collects it. Used in every chapter.
"""

from __future__ import annotations

import json
import operator
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping

# the seed tables' rows and the rule that reads them; re-exported, since chapters and tests import them from here
from ace_utils.book.seed_rule import (  # noqa: F401
    COMMITTED,
    FINDING,
    KIND_LABEL,
    KINDS,
    MIN_HELD,
    MIN_SEEDS,
    SANITY,
    SEED_TABLES,
    Support,
    passes,
    plain,
    seed_support,
    seed_values,
)

__all__ = ["Claims", "Support", "FINDING", "SANITY", "COMMITTED", "KINDS", "MIN_HELD", "MIN_SEEDS", "SEED_TABLES",
           "seed_support", "seed_values"]

_ID = re.compile(r"[a-z][a-z0-9_]*")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


def _num(x: float) -> str:
    """A bound as the rule shows it: 0.005, 1e-06, 25, -1.5."""
    return f"{x:g}"


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
        self._shown = 0
        self._t0 = time.perf_counter()

    # -- one call per claim ------------------------------------------------------------------
    def _compare(self, cid: str, value: Any, op: str, bound: float, sentence: str, fmt: Mapping[str, Any],
                 **kw: Any) -> None:
        test = lambda x: _OPS[op](x, bound)  # noqa: E731
        ok = passes(value, test)  # NaN, None and "no number" fail
        self._add(cid, ok, value, f"{op} {_num(bound)}", sentence.format_map(fmt) if "{" in sentence else sentence,
                  _test=test, **kw)

    def at_most(self, cid: str, value: Any, bound: float, sentence: str, **kw: Any) -> None:
        """Claim that every number in ``value`` is <= ``bound`` (keywords: :meth:`holds`)."""
        self._compare(cid, value, "<=", bound, sentence, {"bound": _num(bound)}, **kw)

    def below(self, cid: str, value: Any, bound: float, sentence: str, **kw: Any) -> None:
        """Claim that every number in ``value`` is < ``bound``."""
        self._compare(cid, value, "<", bound, sentence, {"bound": _num(bound)}, **kw)

    def at_least(self, cid: str, value: Any, bound: float, sentence: str, **kw: Any) -> None:
        """Claim that every number in ``value`` is >= ``bound``."""
        self._compare(cid, value, ">=", bound, sentence, {"bound": _num(bound)}, **kw)

    def above(self, cid: str, value: Any, bound: float, sentence: str, **kw: Any) -> None:
        """Claim that every number in ``value`` is > ``bound``."""
        self._compare(cid, value, ">", bound, sentence, {"bound": _num(bound)}, **kw)

    def equal(self, cid: str, value: Any, target: float, sentence: str, **kw: Any) -> None:
        """Claim that every number in ``value`` equals ``target``."""
        self._compare(cid, value, "==", target, sentence, {"target": _num(target), "bound": _num(target)}, **kw)

    def between(self, cid: str, value: Any, lo: float, hi: float, sentence: str, *, open_: bool = False,
                **kw: Any) -> None:
        """Claim that every number in ``value`` lies in ``[lo, hi]`` (``(lo, hi)`` with ``open_``)."""
        inside = (lambda x: lo < x < hi) if open_ else (lambda x: lo <= x <= hi)
        rule = f"in ({_num(lo)}, {_num(hi)})" if open_ else f"in [{_num(lo)}, {_num(hi)}]"
        fmt = {"lo": _num(lo), "hi": _num(hi)}
        self._add(cid, passes(value, inside), value, rule,
                  sentence.format_map(fmt) if "{" in sentence else sentence, _test=inside, **kw)

    def holds(self, cid: str, ok: bool, value: Any, rule: str, sentence: str, **kw: Any) -> None:
        """Claim decided by the chapter's own test ``ok`` (a comparison between two measured
        quantities, a pattern over models); ``rule`` says in words what ``ok`` tested.

        Keywords of every claim call: ``kind`` (:data:`KINDS`, default ``finding``), ``asserted``
        (False: always reported), ``paper`` (the paper's value or statement it is compared
        with, with its source tag), ``source`` (required for ``committed``: the committed file
        it reads), ``reason`` (why the threshold is where it is, when it is looser than the
        paper's value or the seeds' spread)."""
        self._add(cid, bool(ok), value, rule, sentence, **kw)

    def _add(self, cid: str, ok: bool, value: Any, rule: str, sentence: str, *, kind: str = FINDING,
             asserted: bool = True, paper: str = "", source: str = "", reason: str = "",
             _test: Callable[[float], bool] | None = None) -> None:
        if not _ID.fullmatch(cid):
            raise ValueError(f"claim id {cid!r}: use lower-case letters, digits and '_', starting with a letter")
        if cid in self.checks:
            raise ValueError(f"claim id {cid!r} is used twice in {self.chapter}")
        if kind not in KINDS:
            raise ValueError(f"claim {cid!r}: kind {kind!r} is not one of {KINDS}")
        if kind == COMMITTED and not source:
            raise ValueError(f"claim {cid!r}: a committed-run claim names the file it reads (source=...)")
        sup = self.support.get(cid)
        if sup is not None and sup.kind != kind:  # a table of another kind does not back it
            sup = None
        table_rule = "" if sup is None else sup.rule
        if sup is not None:  # a table made under another rule backs it only through its values
            sup = sup.under(rule, _test)
        enforced = self.strict and asserted and sup is not None and sup.backed
        if not asserted:
            how = "reported"
        elif sup is None and table_rule:
            how = f"reported: the seed table made it under another rule ({table_rule})"
        elif sup is None:
            how = "reported: not in the seed table yet"
        else:
            how = f"{'asserted' if enforced else 'reported'}: {sup.describe()}"
        self.checks[cid] = {"sentence": sentence, "kind": kind, "holds": bool(ok), "value": plain(value),
                            "expected": rule, "asserted": asserted, "enforced": enforced, "how": how,
                            "seeds_held": "" if sup is None else f"{sup.held}/{sup.runs}",
                            "paper": paper, "source": source, "reason": reason}
        self._write(finished=False)
        if not ok and enforced:
            raise AssertionError(f"claim '{cid}' does not hold: {sentence}: value {plain(value)!r}, expected {rule} "
                                 f"({sup.describe()} in the committed table)")

    # -- what a chapter shows ----------------------------------------------------------------
    def ledger(self):
        """The claims made since the last call as one Markdown table (``IPython.display.Markdown``):
        per claim its kind, the value here against its rule, and how it is treated, with the
        seed table's range and the paper's value (:func:`ace_utils.book.ledger.section_table`)."""
        from ace_utils.book.ledger import section_table

        ids = list(self.checks)[self._shown:]
        self._shown = len(self.checks)
        return section_table(self, ids)

    def overview(self):
        """The chapter's claims counted by kind and treatment, as Markdown (closing summaries)."""
        from ace_utils.book.ledger import overview_table

        return overview_table(self)

    def record(self, **values: Any) -> None:
        """Record numbers that are reported but not claims (timings, sizes)."""
        self.values.update({k: plain(v) for k, v in values.items()})

    def summary(self, finished: bool = True) -> dict[str, Any]:
        """The ledger as a plain dict (``checks`` in the order the claims were made)."""
        return {
            "chapter": self.chapter,
            "params": plain(self.params),
            "strict": self.strict,
            "checks": [{"id": cid, **c} for cid, c in self.checks.items()],
            "values": self.values,
            "all_hold": all(c["holds"] for c in self.checks.values()),
            "finished": finished,
            "seconds": round(time.perf_counter() - self._t0, 2),
        }

    def _write(self, finished: bool, directory: str | os.PathLike[str] | None = None) -> Path | None:
        directory = directory or os.environ.get("ACE_BOOK_CLAIMS")
        if not directory:
            return None
        path = Path(directory) / f"{self.chapter}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.summary(finished), indent=1, sort_keys=True))
        os.replace(tmp, path)
        return path

    def save(self, directory: str | os.PathLike[str] | None = None) -> Path | None:
        """Write ``<directory or $ACE_BOOK_CLAIMS>/<chapter>.json``, marked finished; no-op if
        neither is set."""
        return self._write(True, directory)
