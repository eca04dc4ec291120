"""The claim ledger asserts where claims are made and saves what it found."""

import json

import numpy as np
import pytest

from ace_utils.book.claims import Claims


def _table(tmp_path, chapter: str, held: dict[str, int], n: int = 10):
    """A seed table for ``chapter``: claim ``name`` held on the first ``held[name]`` of ``n`` seeds."""
    from ace_utils.book.rerun import RunResult, write_tables

    runs = [RunResult(s, "ok", 1.0, {k: {"holds": s < h, "value": s, "expected": ""} for k, h in held.items()})
            for s in range(n)]
    write_tables(runs, tmp_path, chapter, {})
    return tmp_path


def test_only_claims_held_on_nine_of_ten_seeds_are_asserted(tmp_path, capsys):
    tables = _table(tmp_path, "xx", {"a": 10, "b": 9, "c": 10, "d": 8})
    strict = Claims("xx", {"seed": 1}, strict=True, seed_tables=tables)
    strict.check("a", True, 0.5, expected=">= 0.4")
    assert strict.checks["a"]["holds"] is True and strict.checks["a"]["enforced"] is True
    with pytest.raises(AssertionError, match=r"claim 'b' does not hold.*held on 9/10 seeds"):
        strict.check("b", False, 0.1, expected=">= 0.4")
    strict.check("c", False, 0.1, asserted=False)  # reported by the chapter's choice
    strict.check("d", False, 0.1)  # held on 8/10 seeds: reported, not asserted
    strict.check("e", False, 0.1)  # not in the table: reported
    assert [strict.checks[k]["enforced"] for k in "cde"] == [False, False, False]
    assert strict.checks["d"]["seeds_held"] == "8/10" and strict.checks["e"]["seeds_held"] == "0/0"
    out = capsys.readouterr().out
    assert "[asserted: held on 10/10 seeds]" in out and "[reported: held on 8/10 seeds]" in out
    assert "[reported: not in the seed table yet]" in out
    # a table of fewer than 10 seeds backs nothing
    few = Claims("yy", strict=True, seed_tables=_table(tmp_path / "few", "yy", {"a": 5}, n=5))
    few.check("a", False, 0.0)
    assert few.checks["a"]["enforced"] is False

    lenient = Claims("yy", {"seed": 2}, strict=False)
    lenient.check("b", False, np.float64(0.1), expected=">= 0.4")
    lenient.record(eigs=np.array([0.5 + 0.25j]), seconds=np.float32(1.5), nan=float("nan"))
    path = lenient.save(tmp_path)
    data = json.loads(path.read_text())
    assert data["chapter"] == "yy" and data["params"] == {"seed": 2}
    assert data["checks"]["b"]["holds"] is False and data["all_hold"] is False
    assert data["values"]["eigs"] == [[0.5, 0.25]] and data["values"]["nan"] is None


def test_save_uses_env_and_is_a_noop_without(tmp_path, monkeypatch):
    monkeypatch.delenv("ACE_BOOK_CLAIMS", raising=False)
    assert Claims("zz").save() is None
    monkeypatch.setenv("ACE_BOOK_CLAIMS", str(tmp_path / "claims"))
    c = Claims("zz")
    c.check("x", True, 1)
    assert c.save() == tmp_path / "claims" / "zz.json"
    assert json.loads((tmp_path / "claims" / "zz.json").read_text())["all_hold"] is True


def test_seed_values_reads_one_claim_over_seeds(tmp_path):
    from ace_utils.book.claims import seed_values
    from ace_utils.book.rerun import RunResult, write_tables

    runs = [RunResult(seed=s, status="ok", seconds=1.0, error="",
                      checks={"c": {"holds": True, "value": [s, 2 * s], "expected": "any", "asserted": True}})
            for s in (0, 1)]
    write_tables(runs, tmp_path, "ch", {"command": "x"})
    assert seed_values("ch", "c", tmp_path) == {0: [0, 0], 1: [1, 2]}
    assert seed_values("ch", "missing", tmp_path) == {} and seed_values("other", "c", tmp_path) == {}
