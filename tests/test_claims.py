"""The claim ledger: one call per claim, kinds, the rule for what is asserted, what it saves and shows."""

import json

import numpy as np
import pytest

from ace_utils.book.claims import Claims, seed_support, seed_values
from ace_utils.book.seed_tables import RunResult, write_tables


def _table(tmp_path, chapter: str, held: dict[str, int], n: int = 10, kinds: dict[str, str] | None = None,
           values=lambda s: s, rules: dict[str, str] | None = None):
    """A seed table for ``chapter``: claim ``cid`` held on the first ``held[cid]`` of ``n`` seeds,
    made under rule ``rules[cid]`` (default ``>= 0.4``, the rule of the calls below)."""
    kinds, rules = kinds or {}, rules or {}
    runs = [RunResult(s, "ok", 1.0, {k: {"holds": s < h, "value": values(s), "expected": rules.get(k, ">= 0.4"),
                                         "kind": kinds.get(k, "finding"),
                                         "source": "results/x.npz" if kinds.get(k) == "committed" else ""}
                                     for k, h in held.items()})
            for s in range(n)]
    write_tables(runs, tmp_path, chapter, {})
    return tmp_path


def test_each_comparison_decides_from_value_and_bound():
    c = Claims("xx", strict=False)
    c.at_most("a", [0.1, 0.2], 0.2, "every gap at most {bound}")
    c.below("b", 0.2, 0.2, "below {bound}")
    c.at_least("c", np.array([1.0, 2.0]), 1.0, "at least {bound}")
    c.above("d", {"x": 3, "y": 1}, 1, "above {bound}")
    c.equal("e", [3, 3, 3], 3, "all equal {target}")
    c.between("f", -0.4, -0.8, -0.3, "in ({lo}, {hi})", open_=True)
    c.between("g", -0.3, -0.8, -0.3, "in ({lo}, {hi})", open_=True)
    c.at_most("nan", float("nan"), 1.0, "a NaN fails")
    c.at_most("none", None, 1.0, "no number fails")
    c.at_least("some_nan", [1.0, float("nan")], 0.5, "one NaN among numbers fails")
    c.holds("own", True, {"a": 1}, "a > b", "a relation the chapter tests itself")
    got = {k: v["holds"] for k, v in c.checks.items()}
    assert got == {"a": True, "b": False, "c": True, "d": False, "e": True, "f": True, "g": False, "nan": False,
                   "none": False, "some_nan": False, "own": True}
    # the threshold is written once: the sentence and the rule both come from the bound
    assert c.checks["a"]["sentence"] == "every gap at most 0.2" and c.checks["a"]["expected"] == "<= 0.2"
    assert c.checks["f"]["sentence"] == "in (-0.8, -0.3)" and c.checks["f"]["expected"] == "in (-0.8, -0.3)"
    assert c.checks["e"]["expected"] == "== 3" and c.checks["c"]["value"] == [1.0, 2.0]


def test_ids_kinds_and_sources_are_checked():
    c = Claims("xx", strict=False)
    with pytest.raises(ValueError, match="claim id"):
        c.at_most("Not an id", 0.1, 1, "x")
    with pytest.raises(ValueError, match="kind"):
        c.at_most("a", 0.1, 1, "x", kind="result")
    with pytest.raises(ValueError, match="source"):
        c.at_most("a", 0.1, 1, "x", kind="committed")
    c.at_most("a", 0.1, 1, "x")
    with pytest.raises(ValueError, match="used twice"):
        c.at_least("a", 0.1, 0, "y")


def test_only_claims_held_on_nine_of_ten_seeds_are_asserted(tmp_path):
    tables = _table(tmp_path, "xx", {"a": 10, "b": 9, "c": 10, "d": 8, "s": 10}, kinds={"s": "sanity"})
    strict = Claims("xx", {"seed": 1}, strict=True, seed_tables=tables)
    strict.at_least("a", 0.5, 0.4, "a")
    assert strict.checks["a"]["holds"] is True and strict.checks["a"]["enforced"] is True
    with pytest.raises(AssertionError, match=r"claim 'b' does not hold.*held on 9/10 seeds"):
        strict.at_least("b", 0.1, 0.4, "b")
    strict.at_least("c", 0.1, 0.4, "c", asserted=False)  # reported by the chapter's choice
    strict.at_least("d", 0.1, 0.4, "d")  # held on 8/10 seeds: reported, not asserted
    strict.at_least("e", 0.1, 0.4, "e")  # not in the table: reported
    strict.at_least("s", 0.1, 0.4, "s")  # a sanity check in the table, now called a finding: the table does not back it
    assert [strict.checks[k]["enforced"] for k in "cdes"] == [False, False, False, False]
    assert strict.checks["d"]["how"] == "reported: held on 8/10 seeds"
    assert strict.checks["e"]["how"] == "reported: not in the seed table yet"
    assert strict.checks["a"]["how"] == "asserted: held on 10/10 seeds"
    # a renamed sentence changes nothing: the table is keyed on the id
    again = Claims("xx", strict=True, seed_tables=tables)
    with pytest.raises(AssertionError):
        again.at_least("a", 0.1, 0.4, "a sentence reworded")
    # a table of fewer than 10 seeds backs nothing
    few = Claims("yy", strict=True, seed_tables=_table(tmp_path / "few", "yy", {"a": 5}, n=5))
    few.at_least("a", 0.0, 1, "a")
    assert few.checks["a"]["enforced"] is False


def test_a_table_made_under_another_rule(tmp_path):
    """A bound changed since the table was made: the table's values are judged by today's bound
    (the held count the table wrote is of the old bound); a rule the chapter tests itself, or a
    committed run, changed: the table backs nothing until it is made again."""
    values = [-1.29, -1.23, -1.31, -1.56, -1.38, -1.22, -1.48, -1.21, -1.17, -1.34]
    tables = _table(tmp_path, "rr", {"exp": 9, "steep": 8, "own": 10, "run": 10}, values=lambda s: values[s],
                    kinds={"run": "committed"},
                    rules={"exp": "in [-1.5, -0.5]", "steep": "< -1.2", "own": "first > second", "run": "in [-9, 0]"})
    c = Claims("rr", strict=True, seed_tables=tables)
    c.between("exp", -1.29, -1.22, -0.82, "within 0.2 of -1.02")  # fails; 3 of the 10 values inside: reported
    assert c.checks["exp"]["enforced"] is False
    assert c.checks["exp"]["how"] == "reported: held on 3/10 seeds under today's rule (the table's: in [-1.5, -0.5])"
    with pytest.raises(AssertionError, match=r"held on 10/10 seeds under today's rule \(the table's: < -1.2\)"):
        c.below("steep", -0.9, -1, "steeper than 1/omega")  # every value < -1: asserted, and -0.9 fails
    c.holds("own", False, 0, "first >= second", "a rule the chapter tests itself, changed")
    assert c.checks["own"]["enforced"] is False and "another rule (first > second)" in c.checks["own"]["how"]
    c.at_least("run", 0.5, 0.0, "a committed run's bound changed", kind="committed", source="results/x.npz")
    assert c.checks["run"]["enforced"] is False


def test_committed_run_claims_count_once(tmp_path):
    """A claim read from a committed file is one run whatever the seed: the table counts it once,
    and a value that differs between seeds is not a committed run at all."""
    tables = _table(tmp_path, "cc", {"held": 10, "failed": 0}, kinds={"held": "committed", "failed": "committed"},
                    values=lambda s: 7, rules={"held": ">= 5", "failed": ">= 5"})
    sup = seed_support("cc", tables)
    assert (sup["held"].held, sup["held"].runs, sup["held"].backed) == (1, 1, True)
    assert (sup["failed"].held, sup["failed"].runs, sup["failed"].backed) == (0, 1, False)
    md = (tables / "cc.md").read_text()
    assert "**Committed runs** (2 claims)" in md and "10/10" not in md
    c = Claims("cc", strict=True, seed_tables=tables)
    with pytest.raises(AssertionError, match="held in the committed run"):
        c.at_least("held", 1, 5, "x", kind="committed", source="results/x.npz")
    c.at_least("failed", 1, 5, "y", kind="committed", source="results/x.npz")
    assert c.checks["failed"]["how"] == "reported: did not hold in the committed run"
    moving = _table(tmp_path / "m", "mv", {"c": 10}, kinds={"c": "committed"})  # value = seed
    assert seed_support("mv", moving)["c"].backed is False
    assert "value differs between seeds" in (moving / "mv.md").read_text()


def test_ledger_and_overview_show_kinds_and_evidence(tmp_path):
    tables = _table(tmp_path, "xx", {"a": 10, "b": 8}, rules={"a": "<= 1", "b": "<= 1"})
    c = Claims("xx", strict=True, seed_tables=tables)
    c.at_most("a", 0.5, 1, "a is small", paper="0.4 [TS]")
    c.at_most("b", 0.5, 1, "b is small", reason="why the bound is loose")
    first = c.ledger().data
    assert "a is small" in first and "finding" in first and "asserted: held on 10/10 seeds, value 0 to 9" in first
    assert "0.4 [TS]" in first and "Why these thresholds" in first and "why the bound is loose" in first
    c.holds("s", True, 1, "x", "a sanity check", kind="sanity")
    second = c.ledger().data
    assert "a sanity check" in second and "a is small" not in second and "sanity check" in second
    over = c.overview().data
    assert "| finding | 2 | 1 | 1 | 2 |" in over and "| sanity check | 1 | 0 | 1 | 1 |" in over and "`b`" in over


def test_ledger_shows_a_table_made_under_another_rule_as_such(tmp_path):
    """The ledger's evidence column gives the table's count only for the rule it was made under:
    a changed bound shows the count judged again, a changed test says the rule changed."""
    tables = _table(tmp_path, "rr", {"bound": 10, "own": 9}, rules={"bound": "<= 1", "own": "x among them"})
    c = Claims("rr", strict=True, seed_tables=tables)
    c.at_most("bound", 0.5, 0.5, "a bound made stricter")
    c.holds("own", True, 1, "x among them (criteria now named)", "the chapter's own test, changed")
    text = c.ledger().data
    assert "held on 1/10 seeds under today's rule (the table's: <= 1)" in text
    assert "the seed table made it under another rule (x among them)" in text and "9/10" not in text


def test_ledger_is_written_after_every_claim_and_saved(tmp_path, monkeypatch):
    monkeypatch.delenv("ACE_BOOK_CLAIMS", raising=False)
    assert Claims("zz").save() is None
    monkeypatch.setenv("ACE_BOOK_CLAIMS", str(tmp_path / "claims"))
    c = Claims("zz", {"seed": 2}, strict=False)
    c.at_most("x", 1, 2, "x")
    path = tmp_path / "claims" / "zz.json"
    data = json.loads(path.read_text())
    assert data["finished"] is False and [k["id"] for k in data["checks"]] == ["x"]  # a run that stops keeps it
    c.at_least("b", np.float64(0.1), 0.4, "b")
    c.record(eigs=np.array([0.5 + 0.25j]), seconds=np.float32(1.5), nan=float("nan"))
    assert c.save() == path
    data = json.loads(path.read_text())
    assert data["finished"] is True and data["params"] == {"seed": 2} and data["all_hold"] is False
    assert [k["id"] for k in data["checks"]] == ["x", "b"] and data["checks"][1]["kind"] == "finding"
    assert data["values"]["eigs"] == [[0.5, 0.25]] and data["values"]["nan"] is None


def test_seed_values_reads_one_claim_over_seeds(tmp_path):
    runs = [RunResult(seed=s, status="ok", seconds=1.0, error="",
                      checks={"c": {"holds": True, "value": [s, 2 * s], "expected": "any", "asserted": True}})
            for s in (0, 1)]
    write_tables(runs, tmp_path, "ch", {"command": "x"})
    assert seed_values("ch", "c", tmp_path) == {0: [0, 0], 1: [1, 2]}
    assert seed_values("ch", "missing", tmp_path) == {} and seed_values("other", "c", tmp_path) == {}
