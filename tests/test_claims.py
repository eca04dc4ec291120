"""The claim ledger asserts where claims are made and saves what it found."""

import json

import numpy as np
import pytest

from ace_utils.claims import Claims


def test_strict_failure_raises_and_lenient_failure_is_recorded(tmp_path):
    strict = Claims("xx", {"seed": 1}, strict=True)
    strict.check("a", True, 0.5, expected=">= 0.4")
    assert strict.checks["a"]["holds"] is True
    with pytest.raises(AssertionError, match="claim 'b' does not hold"):
        strict.check("b", False, 0.1, expected=">= 0.4")
    strict.check("c", False, 0.1, asserted=False)  # reported, not asserted
    assert strict.checks["c"]["holds"] is False

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
